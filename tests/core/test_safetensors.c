/*
 * test_safetensors.c - safetensors writer -> reader round trips (single file and sharded) and
 * malformed files, each of which must give AWQ_ERR_FORMAT with a message naming the file and
 * the field, and never a crash (this test also runs under ASan + UBSan).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "awq_pack.h"
#include "json.h"
#include "safetensors.h"
#include "test.h"

static awq_runtime *rt;
static char tmpdir[256];

static void mkpath(char *buf, size_t cap, const char *name) { snprintf(buf, cap, "%s/%s", tmpdir, name); }

/* Writes a raw safetensors file: 8-byte little-endian hlen (header length unless hlen_override
 * != UINT64_MAX), the header bytes and data_len bytes of data. */
static void write_raw_len(const char *path, const char *header, uint64_t hlen_override, const void *data,
                          size_t data_len) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    uint64_t hl = hlen_override != UINT64_MAX ? hlen_override : strlen(header);
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(hl >> (8 * i));
    fwrite(len8, 1, 8, f);
    fwrite(header, 1, strlen(header), f);
    if (data_len) fwrite(data, 1, data_len, f);
    fclose(f);
}
static void write_raw(const char *path, const char *header, size_t data_len) {
    unsigned char *zeros = calloc(1, data_len + 1);
    write_raw_len(path, header, UINT64_MAX, zeros, data_len);
    free(zeros);
}

static char *slurp(const char *path, size_t *len) {
    char *d = NULL;
    if (awq_read_file(NULL, path, &d, len) != AWQ_OK) return NULL;
    return d;
}

/* ---- round trips -------------------------------------------------------------------------- */

/* Reference values: fp16 and bf16 bit patterns written out by hand (sign|exp|mantissa). */
static const float ref_vals[4] = {0.5f, -2.0f, 1.25f, 65504.0f};
static const uint16_t ref_f16[4] = {0x3800, 0xC000, 0x3D00, 0x7BFF};
static const uint16_t ref_bf16[4] = {0x3F00, 0xC000, 0x3FA0, 0x477F}; /* 65280 for the last */

TEST(write_read_single) {
    char dir[512];
    mkpath(dir, sizeof dir, "single");
    ASSERT(mkdir(dir, 0755) == 0);
    const char *meta[] = {"format", "pt", "note", "q\"uote", NULL};
    awq_st_writer *w = NULL;
    ASSERT_OK_RT(awq_st_writer_create(rt, &w, dir, 0, meta), rt);
    int64_t s23[2] = {2, 3}, s4[1] = {4}, s22[2] = {2, 2}, s03[2] = {0, 3}, s1[1] = {1};
    ASSERT_OK_RT(awq_st_writer_add(w, "w.f32", AWQ_DTYPE_F32, 2, s23), rt);
    ASSERT_OK_RT(awq_st_writer_add(w, "w.f16", AWQ_DTYPE_F16, 1, s4), rt);
    ASSERT_OK_RT(awq_st_writer_add(w, "a.bf16", AWQ_DTYPE_BF16, 2, s22), rt);
    ASSERT_OK_RT(awq_st_writer_add(w, "empty", AWQ_DTYPE_F32, 2, s03), rt);
    ASSERT_OK_RT(awq_st_writer_add(w, "idx", AWQ_DTYPE_I64, 1, s1), rt);
    ASSERT_OK_RT(awq_st_writer_add(w, "scalar", AWQ_DTYPE_I32, 0, NULL), rt);
    ASSERT_ERR_RT(awq_st_writer_add(w, "bad", AWQ_DTYPE_F32, 1, (int64_t[]){-1}), rt, AWQ_ERR_INVALID_ARG,
                  "negative");
    ASSERT_OK_RT(awq_st_writer_begin(w), rt);
    float f32[6] = {1, 2, 3, 4, 5, -6.5f};
    int64_t i64 = -1234567890123LL;
    int32_t i32 = 77;
    /* Any order. */
    ASSERT_OK_RT(awq_st_writer_write(w, "idx", &i64, 8), rt);
    ASSERT_OK_RT(awq_st_writer_write(w, "a.bf16", ref_bf16, 8), rt);
    ASSERT_ERR_RT(awq_st_writer_write(w, "w.f32", f32, 20), rt, AWQ_ERR_INVALID_ARG, "24 planned");
    ASSERT_ERR_RT(awq_st_writer_write(w, "nope", f32, 4), rt, AWQ_ERR_INVALID_ARG, "not planned");
    ASSERT_OK_RT(awq_st_writer_write(w, "w.f32", f32, 24), rt);
    ASSERT_OK_RT(awq_st_writer_write(w, "empty", NULL, 0), rt);
    ASSERT_OK_RT(awq_st_writer_write(w, "scalar", &i32, 4), rt);
    ASSERT_ERR_RT(awq_st_writer_finish(w), rt, AWQ_ERR_INVALID_ARG, "'w.f16'");
    ASSERT_OK_RT(awq_st_writer_write(w, "w.f16", ref_f16, 8), rt);
    ASSERT_OK_RT(awq_st_writer_finish(w), rt);
    awq_st_writer_destroy(w);

    /* The exact bytes: header as the reference implementation lays it out, space padded. */
    char path[600];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    size_t len = 0;
    char *raw = slurp(path, &len);
    ASSERT(raw && len > 8);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | (unsigned char)raw[i];
    const char *expect_header = "{\"__metadata__\":{\"format\":\"pt\",\"note\":\"q\\\"uote\"},"
                                "\"w.f32\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
                                "\"w.f16\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[24,32]},"
                                "\"a.bf16\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[32,40]},"
                                "\"empty\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[40,40]},"
                                "\"idx\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[40,48]},"
                                "\"scalar\":{\"dtype\":\"I32\",\"shape\":[],\"data_offsets\":[48,52]}}";
    size_t el = strlen(expect_header);
    ASSERT_EQ(hlen % 8, 0);
    ASSERT_EQ(hlen, (el + 7) / 8 * 8);
    ASSERT(memcmp(raw + 8, expect_header, el) == 0);
    for (size_t i = el; i < hlen; i++) ASSERT_EQ(raw[8 + i], ' ');
    ASSERT_EQ(len, 8 + hlen + 52);
    ASSERT(memcmp(raw + 8 + hlen, f32, 24) == 0);
    awq_free(raw);

    /* Read back through the directory. */
    awq_safetensors *st = NULL;
    ASSERT_OK_RT(awq_st_open(rt, dir, &st), rt);
    ASSERT_EQ(awq_st_count(st), 6);
    ASSERT_STREQ(awq_st_get(st, 0)->name, "a.bf16"); /* sorted by name */
    ASSERT_STREQ(awq_st_get(st, 5)->name, "w.f32");
    ASSERT_STREQ(awq_st_metadata(st, "format"), "pt");
    ASSERT_STREQ(awq_st_metadata(st, "note"), "q\"uote");
    ASSERT(awq_st_metadata(st, "nope") == NULL);
    ASSERT(awq_st_find(st, "nope") == NULL);
    const awq_st_tensor *t = awq_st_find(st, "w.f32");
    ASSERT(t && t->dtype == AWQ_DTYPE_F32 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3);
    ASSERT_EQ(t->nbytes, 24);
    ASSERT(memcmp(t->data, f32, 24) == 0);
    ASSERT(strstr(awq_st_file_path(st, t->file), "single/model.safetensors"));
    float out[6];
    ASSERT_OK_RT(awq_st_read_f32(rt, st, t, out), rt);
    for (int i = 0; i < 6; i++) ASSERT(out[i] == f32[i]);
    t = awq_st_find(st, "w.f16");
    ASSERT(t && t->dtype == AWQ_DTYPE_F16);
    ASSERT_OK_RT(awq_st_read_f32(rt, st, t, out), rt);
    for (int i = 0; i < 4; i++) ASSERT(out[i] == ref_vals[i]);
    t = awq_st_find(st, "a.bf16");
    ASSERT(t && t->dtype == AWQ_DTYPE_BF16 && t->shape[0] == 2 && t->shape[1] == 2);
    ASSERT_OK_RT(awq_st_read_f32(rt, st, t, out), rt);
    for (int i = 0; i < 3; i++) ASSERT(out[i] == ref_vals[i]);
    ASSERT(out[3] == 65280.0f);
    t = awq_st_find(st, "idx");
    int64_t i64b;
    memcpy(&i64b, t->data, 8);
    ASSERT_EQ(i64b, i64);
    ASSERT_ERR_RT(awq_st_read_f32(rt, st, t, out), rt, AWQ_ERR_UNSUPPORTED, "'idx'");
    t = awq_st_find(st, "empty");
    ASSERT(t && t->nbytes == 0 && t->shape[0] == 0 && t->shape[1] == 3);
    t = awq_st_find(st, "scalar");
    ASSERT(t && t->ndim == 0 && t->nbytes == 4);
    awq_st_release(st, awq_st_find(st, "w.f32")); /* must not crash */
    awq_st_close(st);

    /* The file path itself opens too. */
    ASSERT_OK_RT(awq_st_open(rt, path, &st), rt);
    ASSERT_EQ(awq_st_count(st), 6);
    awq_st_close(st);
}

TEST(write_read_sharded) {
    char dir[512];
    mkpath(dir, sizeof dir, "sharded");
    ASSERT(mkdir(dir, 0755) == 0);
    awq_st_writer *w = NULL;
    /* 5 tensors of 40, 40, 40, 100, 8 bytes with a 96-byte limit: shards {a,b}, {c}, {d}, {e}. */
    ASSERT_OK_RT(awq_st_writer_create(rt, &w, dir, 96, NULL), rt);
    const char *names[5] = {"t.a", "t.b", "t.c", "t.d", "t.e"};
    const int64_t n[5] = {10, 10, 10, 25, 2};
    for (int i = 0; i < 5; i++) ASSERT_OK_RT(awq_st_writer_add(w, names[i], AWQ_DTYPE_F32, 1, &n[i]), rt);
    ASSERT_OK_RT(awq_st_writer_begin(w), rt);
    float buf[25];
    for (int i = 4; i >= 0; i--) {
        for (int k = 0; k < n[i]; k++) buf[k] = (float)(100 * i + k);
        ASSERT_OK_RT(awq_st_writer_write(w, names[i], buf, (uint64_t)n[i] * 4), rt);
    }
    ASSERT_OK_RT(awq_st_writer_finish(w), rt);
    awq_st_writer_destroy(w);

    char path[600];
    static const char *const shard_files[4] = {
        "model-00001-of-00004.safetensors", "model-00002-of-00004.safetensors",
        "model-00003-of-00004.safetensors", "model-00004-of-00004.safetensors"};
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, shard_files[i]);
        ASSERT_MSG(awq_file_exists(path), "%s missing", path);
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    ASSERT(!awq_file_exists(path));

    /* The index. */
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    cJSON *idx = NULL;
    ASSERT_OK_RT(awq_json_parse_file(rt, path, &idx), rt);
    int64_t total = 0;
    ASSERT_OK_RT(
        awq_json_get_int(rt, cJSON_GetObjectItem(idx, "metadata"), "index", "total_size", true, 0, &total),
        rt);
    ASSERT_EQ(total, 4 * (10 + 10 + 10 + 25 + 2));
    const cJSON *wm = cJSON_GetObjectItem(idx, "weight_map");
    const int expect_shard[5] = {0, 0, 1, 2, 3};
    for (int i = 0; i < 5; i++) {
        const char *f = NULL;
        ASSERT_OK_RT(awq_json_get_string(rt, wm, "weight_map", names[i], true, NULL, &f), rt);
        ASSERT_STREQ(f, shard_files[expect_shard[i]]);
    }
    cJSON_Delete(idx);

    awq_safetensors *st = NULL;
    ASSERT_OK_RT(awq_st_open(rt, dir, &st), rt);
    ASSERT_EQ(awq_st_count(st), 5);
    for (int i = 0; i < 5; i++) {
        const awq_st_tensor *t = awq_st_find(st, names[i]);
        ASSERT(t && t->shape[0] == n[i]);
        ASSERT(strstr(awq_st_file_path(st, t->file), shard_files[expect_shard[i]]));
        float v[25];
        ASSERT_OK_RT(awq_st_read_f32(rt, st, t, v), rt);
        for (int k = 0; k < n[i]; k++) ASSERT(v[k] == (float)(100 * i + k));
    }
    awq_st_close(st);
}

/* ---- malformed files ---------------------------------------------------------------------- */

/* Opens path and expects st with a message containing the file name and sub. */
#define EXPECT_BAD(path, code, sub)                                      \
    do {                                                                 \
        awq_safetensors *st_ = (awq_safetensors *)1;                     \
        ASSERT_ERR_RT(awq_st_open(rt, (path), &st_), rt, (code), (sub)); \
        ASSERT(st_ == NULL);                                             \
    } while (0)
#define EXPECT_BAD_FILE(path, code, sub)                                                 \
    do {                                                                                 \
        EXPECT_BAD(path, code, sub);                                                     \
        ASSERT_MSG(strstr(awq_runtime_last_error(rt), (path)) != NULL,                   \
                   "message \"%s\" does not name the file", awq_runtime_last_error(rt)); \
    } while (0)

TEST(malformed_headers) {
    char p[512];
    mkpath(p, sizeof p, "bad.safetensors");
    const char *ok_t = "\"x\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}";
    char h[1024];

    /* Truncated: shorter than the 8-byte length field. */
    FILE *f = fopen(p, "wb");
    fwrite("\x10\0\0", 1, 3, f);
    fclose(f);
    EXPECT_BAD_FILE(p, AWQ_ERR_FORMAT, "truncated");
    /* Empty file. */
    f = fopen(p, "wb");
    fclose(f);
    EXPECT_BAD_FILE(p, AWQ_ERR_FORMAT, "truncated");

    /* Header length past EOF. */
    snprintf(h, sizeof h, "{%s}", ok_t);
    write_raw_len(p, h, strlen(h) + 100, NULL, 0);
    EXPECT_BAD_FILE(p, AWQ_ERR_FORMAT, "header length");
    EXPECT_BAD_FILE(p, AWQ_ERR_FORMAT, "past the end");
    /* Absurd header length (would overflow 8 + hlen arithmetic). */
    write_raw_len(p, h, UINT64_MAX - 3, NULL, 0);
    EXPECT_BAD_FILE(p, AWQ_ERR_FORMAT, "absurd");
    write_raw_len(p, h, 200ull * 1024 * 1024, NULL, 0);
    EXPECT_BAD_FILE(p, AWQ_ERR_FORMAT, "absurd");

    /* Bad JSON, non-object header. */
    write_raw(p, "{\"x\":{\"dtype\":\"F32\",", 16);
    EXPECT_BAD_FILE(p, AWQ_ERR_FORMAT, "invalid JSON");
    write_raw(p, "[1, 2, 3]", 0);
    EXPECT_BAD_FILE(p, AWQ_ERR_FORMAT, "expected a JSON object");
    write_raw(p, "{\"x\": 5}", 0);
    EXPECT_BAD_FILE(p, AWQ_ERR_FORMAT, "tensor 'x': expected an object");

    /* Unknown dtype; a valid-but-unsupported one. */
    write_raw(p, "{\"x\":{\"dtype\":\"F31\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", 16);
    EXPECT_BAD_FILE(p, AWQ_ERR_FORMAT, "tensor 'x': dtype: unknown dtype 'F31'");
    write_raw(p, "{\"x\":{\"dtype\":7,\"shape\":[2,2],\"data_offsets\":[0,16]}}", 16);
    EXPECT_BAD_FILE(p, AWQ_ERR_FORMAT, "tensor 'x': dtype");
    write_raw(p, "{\"x\":{\"dtype\":\"U16\",\"shape\":[2,2],\"data_offsets\":[0,8]}}", 8);
    EXPECT_BAD_FILE(p, AWQ_ERR_UNSUPPORTED, "dtype 'U16'");
    write_raw(p, "{\"x\":{\"shape\":[2,2],\"data_offsets\":[0,16]}}", 16);
    EXPECT_BAD_FILE(p, AWQ_ERR_FORMAT, "tensor 'x': missing 'dtype'");

    /* Shapes: negative, fractional, not an array, missing, too many dims, overflowing. */
    write_raw(p, "{\"x\":{\"dtype\":\"F32\",\"shape\":[2,-2],\"data_offsets\":[0,16]}}", 16);
    EXPECT_BAD_FILE(p, AWQ_ERR_FORMAT, "tensor 'x': shape[1]");
    write_raw(p, "{\"x\":{\"dtype\":\"F32\",\"shape\":[2.5,2],\"data_offsets\":[0,16]}}", 16);
    EXPECT_BAD_FILE(p, AWQ_ERR_FORMAT, "tensor 'x': shape[0]");
    write_raw(p, "{\"x\":{\"dtype\":\"F32\",\"shape\":[\"2\",2],\"data_offsets\":[0,16]}}", 16);
    EXPECT_BAD_FILE(p, AWQ_ERR_FORMAT, "tensor 'x': shape[0]");
    write_raw(p, "{\"x\":{\"dtype\":\"F32\",\"shape\":4,\"data_offsets\":[0,16]}}", 16);
    EXPECT_BAD_FILE(p, AWQ_ERR_FORMAT, "tensor 'x': shape: expected an array");
    write_raw(p, "{\"x\":{\"dtype\":\"F32\",\"data_offsets\":[0,16]}}", 16);
    EXPECT_BAD_FILE(p, AWQ_ERR_FORMAT, "tensor 'x': missing 'shape'");
    write_raw(p, "{\"x\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,4],\"data_offsets\":[0,16]}}", 16);
    EXPECT_BAD_FILE(p, AWQ_ERR_UNSUPPORTED, "tensor 'x': shape has 9 dims");
    write_raw(p,
              "{\"x\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4],"
              "\"data_offsets\":[0,16]}}",
              16);
    EXPECT_BAD_FILE(p, AWQ_ERR_FORMAT, "tensor 'x': shape");
    EXPECT_BAD_FILE(p, AWQ_ERR_FORMAT, "overflows");
    /* A zero dim makes an empty tensor even if the other dims are huge. */
    write_raw(p,
              "{\"x\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,0],"
              "\"data_offsets\":[0,0]}}",
              0);
    awq_safetensors *st = NULL;
    ASSERT_OK_RT(awq_st_open(rt, p, &st), rt);
    ASSERT_EQ(awq_st_find(st, "x")->nbytes, 0);
    awq_st_close(st);

    /* Byte length != dtype size x shape. */
    write_raw(p, "{\"x\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", 16);
    EXPECT_BAD_FILE(p, AWQ_ERR_FORMAT,
                    "tensor 'x': data_offsets [0, 16) span 16 bytes but dtype F16 x shape needs 8");

    /* Offsets: out of range, end before begin, wrong arity, missing, negative, overlapping. */
    write_raw(p, "{\"x\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[8,24]}}", 16);
    EXPECT_BAD_FILE(p, AWQ_ERR_FORMAT, "tensor 'x': data_offsets [8, 24) out of range");
    write_raw(p, "{\"x\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[20,20]}}", 16);
    EXPECT_BAD_FILE(p, AWQ_ERR_FORMAT, "tensor 'x': data_offsets [20, 20) out of range");
    write_raw(p, "{\"x\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[16,0]}}", 16);
    EXPECT_BAD_FILE(p, AWQ_ERR_FORMAT, "tensor 'x': data_offsets [16, 0): end before begin");
    write_raw(p, "{\"x\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16,32]}}", 32);
    EXPECT_BAD_FILE(p, AWQ_ERR_FORMAT, "tensor 'x': data_offsets");
    write_raw(p, "{\"x\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[-16,0]}}", 16);
    EXPECT_BAD_FILE(p, AWQ_ERR_FORMAT, "tensor 'x': data_offsets");
    write_raw(p, "{\"x\":{\"dtype\":\"F32\",\"shape\":[2,2]}}", 16);
    EXPECT_BAD_FILE(p, AWQ_ERR_FORMAT, "tensor 'x': missing 'data_offsets'");
    write_raw(p,
              "{\"x\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
              "\"y\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}",
              20);
    EXPECT_BAD_FILE(p, AWQ_ERR_FORMAT, "tensor 'y': data_offsets [12, 20) overlap tensor 'x' [0, 16)");
    /* Duplicate name. */
    write_raw(p,
              "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
              "\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
              16);
    EXPECT_BAD_FILE(p, AWQ_ERR_FORMAT, "tensor 'x' appears twice");

    /* __metadata__ must be an object of strings. */
    write_raw(p,
              "{\"__metadata__\":{\"format\":\"pt\",\"n\":3},"
              "\"x\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}",
              16);
    EXPECT_BAD_FILE(p, AWQ_ERR_FORMAT, "__metadata__: 'n': expected a string");
    write_raw(p, "{\"__metadata__\":[1]}", 0);
    EXPECT_BAD_FILE(p, AWQ_ERR_FORMAT, "__metadata__: expected an object");

    /* The same header with a data section of the right size opens. */
    snprintf(h, sizeof h, "{%s}", ok_t);
    write_raw(p, h, 16);
    ASSERT_OK_RT(awq_st_open(rt, p, &st), rt);
    awq_st_close(st);

    /* Missing file: an I/O error naming it. */
    mkpath(p, sizeof p, "missing.safetensors");
    EXPECT_BAD_FILE(p, AWQ_ERR_IO, "cannot open");
}

/* A valid file cut at every length is rejected, never read past its end. */
TEST(truncated_everywhere) {
    char dir[512], src[600], p[512];
    mkpath(dir, sizeof dir, "trunc");
    ASSERT(mkdir(dir, 0755) == 0);
    awq_st_writer *w = NULL;
    ASSERT_OK_RT(awq_st_writer_create(rt, &w, dir, 0, NULL), rt);
    int64_t s[2] = {3, 5};
    ASSERT_OK_RT(awq_st_writer_add(w, "a", AWQ_DTYPE_F16, 2, s), rt);
    ASSERT_OK_RT(awq_st_writer_add(w, "b", AWQ_DTYPE_F32, 1, s), rt);
    ASSERT_OK_RT(awq_st_writer_begin(w), rt);
    uint16_t a[15] = {0};
    float b[3] = {1, 2, 3};
    ASSERT_OK_RT(awq_st_writer_write(w, "a", a, 30), rt);
    ASSERT_OK_RT(awq_st_writer_write(w, "b", b, 12), rt);
    ASSERT_OK_RT(awq_st_writer_finish(w), rt);
    awq_st_writer_destroy(w);
    snprintf(src, sizeof src, "%s/model.safetensors", dir);
    size_t len = 0;
    char *raw = slurp(src, &len);
    ASSERT(raw);
    mkpath(p, sizeof p, "cut.safetensors");
    for (size_t cut = 0; cut < len; cut++) {
        FILE *f = fopen(p, "wb");
        fwrite(raw, 1, cut, f);
        fclose(f);
        awq_safetensors *st = NULL;
        awq_status r = awq_st_open(rt, p, &st);
        awq_st_close(st);
        ASSERT_MSG(r == AWQ_ERR_FORMAT, "cut at %zu of %zu: %s (%s)", cut, len, awq_status_str(r),
                   awq_runtime_last_error(rt));
    }
    awq_free(raw);
}

/* Random single-byte corruptions of a valid header: any outcome but a crash is acceptable, and
 * an accepted file still has every tensor inside the mapping. */
TEST(corrupted_headers) {
    char dir[512], src[600], p[512];
    mkpath(dir, sizeof dir, "corrupt");
    ASSERT(mkdir(dir, 0755) == 0);
    awq_st_writer *w = NULL;
    ASSERT_OK_RT(awq_st_writer_create(rt, &w, dir, 0, NULL), rt);
    int64_t s[2] = {4, 2};
    ASSERT_OK_RT(awq_st_writer_add(w, "a", AWQ_DTYPE_F16, 2, s), rt);
    ASSERT_OK_RT(awq_st_writer_add(w, "b", AWQ_DTYPE_F32, 2, s), rt);
    ASSERT_OK_RT(awq_st_writer_begin(w), rt);
    uint8_t zero[32] = {0};
    ASSERT_OK_RT(awq_st_writer_write(w, "a", zero, 16), rt);
    ASSERT_OK_RT(awq_st_writer_write(w, "b", zero, 32), rt);
    ASSERT_OK_RT(awq_st_writer_finish(w), rt);
    awq_st_writer_destroy(w);
    snprintf(src, sizeof src, "%s/model.safetensors", dir);
    size_t len = 0;
    char *raw = slurp(src, &len);
    ASSERT(raw);
    mkpath(p, sizeof p, "corrupt.safetensors");
    unsigned long long rng = 12345;
    const char repl[] = "0123456789[]{}\",:-.eE \x01\xff";
    int accepted = 0;
    for (int iter = 0; iter < 3000; iter++) {
        char *mod = malloc(len);
        memcpy(mod, raw, len);
        int nflip = 1 + (int)(test_rng_next(&rng) % 3);
        for (int k = 0; k < nflip; k++) {
            size_t pos = (size_t)(test_rng_next(&rng) % (len - 48)); /* header bytes, length incl. */
            mod[pos] = repl[test_rng_next(&rng) % (sizeof repl - 1)];
        }
        FILE *f = fopen(p, "wb");
        fwrite(mod, 1, len, f);
        fclose(f);
        free(mod);
        awq_safetensors *st = NULL;
        awq_status r = awq_st_open(rt, p, &st);
        if (r == AWQ_OK) {
            accepted++;
            for (int32_t i = 0; i < awq_st_count(st); i++) {
                const awq_st_tensor *t = awq_st_get(st, i);
                float tmp[64];
                if (t->nbytes <= sizeof tmp && awq_dtype_size(t->dtype) &&
                    (t->dtype == AWQ_DTYPE_F16 || t->dtype == AWQ_DTYPE_F32 || t->dtype == AWQ_DTYPE_BF16))
                    awq_st_read_f32(rt, st, t, tmp); /* ASan checks the bounds */
            }
        } else {
            ASSERT_MSG(r == AWQ_ERR_FORMAT || r == AWQ_ERR_UNSUPPORTED, "iter %d: %s (%s)", iter,
                       awq_status_str(r), awq_runtime_last_error(rt));
        }
        awq_st_close(st);
    }
    awq_free(raw);
    printf("  %d of 3000 corrupted files were still valid\n", accepted);
}

/* ---- sharded checkpoints with bad indexes ------------------------------------------------- */

static void write_file_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

TEST(bad_index) {
    char dir[512], p[700], idx[700];
    mkpath(dir, sizeof dir, "badidx");
    ASSERT(mkdir(dir, 0755) == 0);
    snprintf(p, sizeof p, "%s/s1.safetensors", dir);
    write_raw(p,
              "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
              "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
              12);
    snprintf(p, sizeof p, "%s/s2.safetensors", dir);
    write_raw(p, "{\"c\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8);
    snprintf(idx, sizeof idx, "%s/model.safetensors.index.json", dir);

    /* Good index. */
    write_file_text(idx,
                    "{\"metadata\":{\"total_size\":20},\"weight_map\":"
                    "{\"a\":\"s1.safetensors\",\"b\":\"s1.safetensors\",\"c\":\"s2.safetensors\"}}");
    awq_safetensors *st = NULL;
    ASSERT_OK_RT(awq_st_open(rt, dir, &st), rt);
    ASSERT_EQ(awq_st_count(st), 3);
    ASSERT(strstr(awq_st_file_path(st, awq_st_find(st, "c")->file), "s2.safetensors"));
    awq_st_close(st);
    /* The index path itself works too. */
    ASSERT_OK_RT(awq_st_open(rt, idx, &st), rt);
    awq_st_close(st);

    /* A shard that does not exist. */
    write_file_text(idx,
                    "{\"weight_map\":{\"a\":\"s1.safetensors\",\"b\":\"s1.safetensors\","
                    "\"c\":\"s3.safetensors\"}}");
    EXPECT_BAD(dir, AWQ_ERR_FORMAT, "tensor 'c': shard file 's3.safetensors' does not exist");
    EXPECT_BAD(dir, AWQ_ERR_FORMAT, "model.safetensors.index.json");
    /* A listed tensor missing from its shard. */
    write_file_text(idx,
                    "{\"weight_map\":{\"a\":\"s1.safetensors\",\"b\":\"s1.safetensors\","
                    "\"c\":\"s2.safetensors\",\"d\":\"s2.safetensors\"}}");
    EXPECT_BAD(dir, AWQ_ERR_FORMAT, "tensor 'd' is not in its shard 's2.safetensors'");
    /* A tensor listed under the wrong shard. */
    write_file_text(idx,
                    "{\"weight_map\":{\"a\":\"s2.safetensors\",\"b\":\"s1.safetensors\","
                    "\"c\":\"s2.safetensors\"}}");
    EXPECT_BAD(dir, AWQ_ERR_FORMAT, "tensor 'a' is listed in 's2.safetensors' but stored in");
    /* Structure errors. */
    write_file_text(idx, "{\"metadata\":{}}");
    EXPECT_BAD(dir, AWQ_ERR_FORMAT, "missing key 'weight_map'");
    write_file_text(idx, "{\"weight_map\":[]}");
    EXPECT_BAD(dir, AWQ_ERR_FORMAT, "'weight_map': expected a non-empty object");
    write_file_text(idx, "{\"weight_map\":{\"a\":1}}");
    EXPECT_BAD(dir, AWQ_ERR_FORMAT, "weight_map: tensor 'a': expected a relative file name");
    write_file_text(idx, "{\"weight_map\":{\"a\":\"../s1.safetensors\"}}");
    EXPECT_BAD(dir, AWQ_ERR_FORMAT, "tensor 'a': expected a relative file name");
    write_file_text(idx, "{\"weight_map\":{\"a\":\"s1.safetensors\",}}");
    EXPECT_BAD(dir, AWQ_ERR_FORMAT, "model.safetensors.index.json: invalid JSON");
    /* The same tensor in two shards. */
    snprintf(p, sizeof p, "%s/s2.safetensors", dir);
    write_raw(p,
              "{\"c\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
              "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
              16);
    write_file_text(idx,
                    "{\"weight_map\":{\"a\":\"s1.safetensors\",\"b\":\"s1.safetensors\","
                    "\"c\":\"s2.safetensors\"}}");
    EXPECT_BAD(dir, AWQ_ERR_FORMAT, "tensor 'a' is in two shards");
    /* A malformed shard is reported with the shard's name. */
    write_raw(p, "{\"c\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,9]}}", 9);
    EXPECT_BAD(dir, AWQ_ERR_FORMAT, "s2.safetensors: tensor 'c': data_offsets");

    /* A directory with several .safetensors files and no index is ambiguous. */
    remove(idx);
    EXPECT_BAD(dir, AWQ_ERR_FORMAT, "no model.safetensors");
    /* An empty directory. */
    mkpath(p, sizeof p, "emptydir");
    ASSERT(mkdir(p, 0755) == 0);
    EXPECT_BAD(p, AWQ_ERR_IO, "no .safetensors file");
}

int main(void) {
    awq_runtime_params p = awq_runtime_params_default();
    p.load_plugins = false;
    if (awq_runtime_create(&rt, &p) != AWQ_OK) return 1;
    if (test_tmpdir(tmpdir, sizeof tmpdir, "test-st")) return 1;
    RUN(write_read_single);
    RUN(write_read_sharded);
    RUN(malformed_headers);
    RUN(truncated_everywhere);
    RUN(corrupted_headers);
    RUN(bad_index);
    if (test_rmtree(tmpdir) != 0) printf("warning: could not remove %s\n", tmpdir);
    awq_runtime_destroy(rt);
    return TEST_EXIT();
}
