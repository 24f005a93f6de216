/*
 * test_gguf.c - the GGUF reader: dequantization of every supported block type against the
 * `gguf` Python package's own dequantization (tests/data/gguf_blocks.gguf, made by
 * tools/make_gguf_blocks.py), the real vocabulary and model files, and malformed files built
 * here byte by byte - each must give a specific error naming the field, never a crash.
 */
#include <unistd.h>

#include "awq_pack.h"
#include "gguf.h"
#include "test.h"

static awq_runtime *rt;
static char tmpdir[128];

TEST(dequantize_matches_reference) {
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/data/gguf_blocks.gguf", AWQ_TEST_SOURCE_DIR);
    awq_gguf *g = NULL;
    ASSERT_OK_RT(awq_gguf_open(rt, path, &g), rt);
    const char *types[] = {"F32",  "F16",  "BF16", "Q4_0", "Q4_1", "Q5_0",
                           "Q5_1", "Q8_0", "Q4_K", "Q5_K", "Q6_K"};
    static float a[4 * 512], b[4 * 512];
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        char ref[32];
        snprintf(ref, sizeof ref, "%s.ref", types[i]);
        const awq_gguf_tensor *t = awq_gguf_find_tensor(g, types[i]), *r = awq_gguf_find_tensor(g, ref);
        ASSERT(t && r);
        ASSERT_STREQ(awq_ggml_type_name(t->type), types[i]);
        ASSERT_EQ(awq_gguf_tensor_nelem(t), 2048);
        ASSERT_EQ(t->ne[0], 512);
        ASSERT_OK_RT(awq_gguf_dequantize(rt, g, t, a), rt);
        ASSERT_OK_RT(awq_gguf_dequantize(rt, g, r, b), rt);
        double maxd = 0;
        for (int k = 0; k < 2048; k++) {
            double d = fabs((double)a[k] - b[k]) / (1e-6 + fabs(b[k]));
            maxd = d > maxd ? d : maxd;
        }
        printf("  %-5s max relative difference %.2e\n", types[i], maxd);
        ASSERT(maxd < 1e-5);
    }
    awq_gguf_close(g);
}

TEST(real_files) {
    char path[1024];
    const char *vocabs[][2] = {{"gpt-2", "gpt2"}, {"starcoder", "gpt2"}, {"llama-spm", "llama"}};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/tokenizer-tests/ggml-vocab-%s.gguf", test_shared_data(),
                 vocabs[i][0]);
        awq_gguf *g = NULL;
        ASSERT_OK_RT(awq_gguf_open(rt, path, &g), rt);
        char *model = NULL;
        ASSERT_OK_RT(awq_gguf_get_str(rt, g, "tokenizer.ggml.model", true, &model), rt);
        ASSERT_STREQ(model, vocabs[i][1]);
        awq_free(model);
        const awq_gguf_kv *toks = awq_gguf_find_kv(g, "tokenizer.ggml.tokens");
        ASSERT(toks && toks->type == AWQ_GGUF_ARRAY && toks->arr_type == AWQ_GGUF_STRING &&
               toks->arr_n > 1000);
        awq_gguf_close(g);
    }
    const char *model = getenv("AWQ_TEST_GGUF");
    if (!model) return;
    awq_gguf *g = NULL;
    ASSERT_OK_RT(awq_gguf_open(rt, model, &g), rt);
    uint64_t blocks = 0, heads = 0;
    ASSERT_OK(awq_gguf_get_u64(rt, g, "llama.block_count", true, 0, &blocks));
    ASSERT_OK(awq_gguf_get_u64(rt, g, "llama.attention.head_count_kv", true, 0, &heads));
    ASSERT_EQ(blocks, 30);
    ASSERT_EQ(heads, 3);
    ASSERT_EQ(g->n_tensors, 272);
    const awq_gguf_tensor *t = awq_gguf_find_tensor(g, "blk.0.attn_q.weight");
    ASSERT(t && t->type == AWQ_GGML_Q4_1 && t->ne[0] == 576 && t->ne[1] == 576);
    float *w = malloc(576 * 576 * sizeof(float));
    ASSERT_OK_RT(awq_gguf_dequantize(rt, g, t, w), rt);
    double ss = 0;
    for (int i = 0; i < 576 * 576; i++) ss += (double)w[i] * w[i];
    ASSERT(ss > 1 && isfinite(ss));
    free(w);
    double eps = 0;
    ASSERT_OK(awq_gguf_get_f64(rt, g, "llama.attention.layer_norm_rms_epsilon", true, 0, &eps));
    ASSERT_NEAR(eps, 1e-5, 1e-9);
    /* wrong-type access is an error naming the key */
    ASSERT_ERR_RT(awq_gguf_get_bool(rt, g, "llama.block_count", true, false, &(bool){0}), rt, AWQ_ERR_FORMAT,
                  "llama.block_count");
    awq_gguf_close(g);
}

/* ---- malformed files ------------------------------------------------------------------- */

typedef struct buf {
    uint8_t d[4096];
    size_t n;
} buf;
static void put(buf *b, const void *p, size_t n) {
    memcpy(b->d + b->n, p, n);
    b->n += n;
}
static void u32(buf *b, uint32_t v) { put(b, &v, 4); }
static void u64(buf *b, uint64_t v) { put(b, &v, 8); }
static void str(buf *b, const char *s) {
    u64(b, strlen(s));
    put(b, s, strlen(s));
}

/* A small valid file: 1 kv, 2 F32 tensors of 8 elements. Fields can be overridden. */
typedef struct spec {
    const char *key0;
    uint32_t magic, version, n_dims1, type1;
    uint64_t n_tensors, n_kv, off1, arr_n, strlen_override;
} spec;
static spec good(void) {
    spec s = {.key0 = "general.name",
              .magic = 0x46554747,
              .version = 3,
              .n_dims1 = 1,
              .type1 = 0,
              .n_tensors = 2,
              .n_kv = 2,
              .off1 = 32,
              .arr_n = 3,
              .strlen_override = 0};
    return s;
}
static void build(buf *b, spec s) {
    b->n = 0;
    u32(b, s.magic);
    u32(b, s.version);
    u64(b, s.n_tensors);
    u64(b, s.n_kv);
    str(b, s.key0);
    u32(b, 8);
    if (s.strlen_override) {
        u64(b, s.strlen_override);
        put(b, "x", 1);
    } else
        str(b, "tiny");
    str(b, "test.arr");
    u32(b, 9);
    u32(b, 5);
    u64(b, s.arr_n);
    for (int i = 0; i < 3; i++) u32(b, (uint32_t)i);
    str(b, "a");
    u32(b, 1);
    u64(b, 8);
    u32(b, 0);
    u64(b, 0);
    str(b, "b");
    u32(b, s.n_dims1);
    for (uint32_t i = 0; i < s.n_dims1 && i < 8; i++) u64(b, i == 0 ? 8 : 1);
    u32(b, s.type1);
    u64(b, s.off1);
    while (b->n % 32) b->d[b->n++] = 0;
    float f[16];
    for (int i = 0; i < 16; i++) f[i] = (float)i;
    put(b, f, sizeof f);
}
static char last_path[256];
static awq_status open_bytes(const buf *b, size_t n) {
    char *path = last_path;
    snprintf(path, sizeof last_path, "%s/t.gguf", tmpdir);
    FILE *f = fopen(path, "wb");
    fwrite(b->d, 1, n, f);
    fclose(f);
    awq_gguf *g = NULL;
    awq_status st = awq_gguf_open(rt, path, &g);
    awq_gguf_close(g);
    return st;
}

static bool expect(spec s, awq_status want, const char *needle) {
    buf b;
    build(&b, s);
    awq_status st = open_bytes(&b, b.n);
    const char *e = awq_runtime_last_error(rt);
    bool ok = st == want && (!needle || strstr(e, needle));
    if (!ok)
        printf("  expected %s '%s', got %s: %s\n", awq_status_str(want), needle ? needle : "",
               awq_status_str(st), e);
    return ok;
}

TEST(malformed_files) {
    spec s = good();
    ASSERT(expect(s, AWQ_OK, NULL));
    s = good();
    s.magic = 0x12345678;
    ASSERT(expect(s, AWQ_ERR_FORMAT, "magic"));
    s = good();
    s.version = 1;
    ASSERT(expect(s, AWQ_ERR_UNSUPPORTED, "version 1"));
    s = good();
    s.version = 99;
    ASSERT(expect(s, AWQ_ERR_UNSUPPORTED, "version 99"));
    s = good();
    s.n_tensors = 1ull << 40;
    ASSERT(expect(s, AWQ_ERR_FORMAT, "tensor count"));
    s = good();
    s.n_kv = 1ull << 40;
    ASSERT(expect(s, AWQ_ERR_FORMAT, "metadata count"));
    s = good();
    s.strlen_override = 1ull << 40;
    ASSERT(expect(s, AWQ_ERR_FORMAT, "general.name"));
    s = good();
    s.arr_n = 1ull << 62;
    ASSERT(expect(s, AWQ_ERR_FORMAT, "test.arr"));
    s = good();
    s.n_dims1 = 5;
    ASSERT(expect(s, AWQ_ERR_FORMAT, "n_dims"));
    s = good();
    s.type1 = 77;
    ASSERT(expect(s, AWQ_ERR_UNSUPPORTED, "'b'"));
    s = good();
    s.type1 = 8;
    ASSERT(expect(s, AWQ_ERR_FORMAT, "block")); /* 8 elements of Q8_0 */
    s = good();
    s.off1 = 33;
    ASSERT(expect(s, AWQ_ERR_FORMAT, "aligned"));
    s = good();
    s.off1 = 4096;
    ASSERT(expect(s, AWQ_ERR_FORMAT, "past the end"));
    s = good();
    s.off1 = 0;
    ASSERT(expect(s, AWQ_ERR_FORMAT, "overlap"));
    /* every truncation of a valid file is an error, never a crash */
    buf b;
    build(&b, good());
    for (size_t n = 0; n < b.n; n++) {
        awq_status st = open_bytes(&b, n);
        ASSERT_MSG(st == AWQ_ERR_FORMAT || st == AWQ_ERR_IO, "truncated to %zu bytes: %s", n,
                   awq_status_str(st));
    }
    /* and random corruption of the header never crashes */
    unsigned long long rng = 99;
    for (int it = 0; it < 2000; it++) {
        build(&b, good());
        for (int k = 0; k < 3; k++) b.d[test_rng_next(&rng) % 200] = (uint8_t)test_rng_next(&rng);
        (void)open_bytes(&b, b.n);
    }
}

/* ---- convert ------------------------------------------------------------------------------ */

#include "safetensors.h"

TEST(convert_smollm2) {
    const char *model = getenv("AWQ_TEST_GGUF");
    if (!model) {
        ASSERT_MSG(!test_required("AWQ_REQUIRE_MODEL"), "AWQ_TEST_GGUF not set (AWQ_REQUIRE_MODEL=1)");
        printf("  (AWQ_TEST_GGUF not set: skipped)\n");
        return;
    }
    char out[256];
    snprintf(out, sizeof out, "%s/smol", tmpdir);
    awq_convert_params p = awq_convert_params_default();
    ASSERT_OK_RT(awq_convert_gguf(rt, model, out, &p), rt);
    /* refuses to overwrite without force, replaces with force */
    ASSERT_ERR_RT(awq_convert_gguf(rt, model, out, &p), rt, AWQ_ERR_EXISTS, "--force");
    awq_safetensors *st = NULL;
    ASSERT_OK_RT(awq_st_open(rt, out, &st), rt);
    ASSERT_EQ(awq_st_count(st), 272);
    ASSERT(!awq_st_find(st, "lm_head.weight")); /* tied */
    const awq_st_tensor *q = awq_st_find(st, "model.layers.3.self_attn.q_proj.weight");
    const awq_st_tensor *k = awq_st_find(st, "model.layers.3.self_attn.k_proj.weight");
    ASSERT(q && q->dtype == AWQ_DTYPE_F16 && q->shape[0] == 576 && q->shape[1] == 576);
    ASSERT(k && k->shape[0] == 192 && k->shape[1] == 576);
    /* q/k rows are llama.cpp's interleaved pairs undone: HF row (h, j*32 + i) = GGUF row (h, 2i + j) */
    awq_gguf *g = NULL;
    ASSERT_OK_RT(awq_gguf_open(rt, model, &g), rt);
    const awq_gguf_tensor *gq = awq_gguf_find_tensor(g, "blk.3.attn_q.weight");
    const awq_gguf_tensor *gk = awq_gguf_find_tensor(g, "blk.3.attn_k.weight");
    float *wq = malloc(576 * 576 * 4), *hq = malloc(576 * 576 * 4), *wk = malloc(192 * 576 * 4),
          *hk = malloc(192 * 576 * 4);
    ASSERT_OK(awq_gguf_dequantize(rt, g, gq, wq));
    ASSERT_OK(awq_gguf_dequantize(rt, g, gk, wk));
    ASSERT_OK(awq_st_read_f32(rt, st, q, hq));
    ASSERT_OK(awq_st_read_f32(rt, st, k, hk));
    int bad = 0;
    for (int h = 0; h < 9; h++)
        for (int i = 0; i < 32; i++)
            for (int j = 0; j < 2; j++)
                for (int c = 0; c < 576; c++) {
                    float ref = awq_round_f16(wq[(h * 64 + 2 * i + j) * 576 + c]);
                    bad += hq[(h * 64 + j * 32 + i) * 576 + c] != ref;
                    if (h < 3) {
                        float rk = awq_round_f16(wk[(h * 64 + 2 * i + j) * 576 + c]);
                        bad += hk[(h * 64 + j * 32 + i) * 576 + c] != rk;
                    }
                }
    ASSERT_EQ(bad, 0);
    /* other tensors are not permuted */
    const awq_st_tensor *v = awq_st_find(st, "model.layers.3.self_attn.v_proj.weight");
    ASSERT_OK(awq_st_read_f32(rt, st, v, hk));
    ASSERT_OK(awq_gguf_dequantize(rt, g, awq_gguf_find_tensor(g, "blk.3.attn_v.weight"), wk));
    for (int i = 0; i < 192 * 576; i++) bad += hk[i] != awq_round_f16(wk[i]);
    ASSERT_EQ(bad, 0);
    free(wq);
    free(hq);
    free(wk);
    free(hk);
    awq_gguf_close(g);
    awq_st_close(st);
    /* the written config and tokenizer load */
    awq_tokenizer *tok = NULL;
    ASSERT_OK_RT(awq_tokenizer_load(&tok, rt, out), rt);
    ASSERT_EQ(awq_tokenizer_vocab_size(tok), 49152);
    awq_tokenizer_destroy(tok);
    p.force = true;
    p.dtype = AWQ_DTYPE_BF16;
    ASSERT_OK_RT(awq_convert_gguf(rt, model, out, &p), rt);
    ASSERT_OK_RT(awq_st_open(rt, out, &st), rt);
    ASSERT_EQ(awq_st_find(st, "model.norm.weight")->dtype, AWQ_DTYPE_BF16);
    awq_st_close(st);
}

TEST(convert_refusals) {
    spec s = good();
    s.key0 = "general.architecture";
    buf b;
    build(&b, s);
    ASSERT_EQ(open_bytes(&b, b.n), AWQ_OK);
    char out[256];
    snprintf(out, sizeof out, "%s/tiny-out", tmpdir);
    awq_convert_params p = awq_convert_params_default();
    ASSERT_EQ(awq_convert_gguf(rt, last_path, out, &p), AWQ_ERR_UNSUPPORTED);
    ASSERT(strstr(awq_runtime_last_error(rt), "'tiny'") && strstr(awq_runtime_last_error(rt), "llama"));
    ASSERT(!awq_dir_exists(out));
    /* a broken file: the error names it; nothing is left behind */
    snprintf(out, sizeof out, "%s/broken-out", tmpdir);
    build(&b, good());
    ASSERT_EQ(open_bytes(&b, 40), AWQ_ERR_FORMAT);
    ASSERT_ERR_RT(awq_convert_gguf(rt, last_path, out, &p), rt, AWQ_ERR_FORMAT, "t.gguf");
    ASSERT(!awq_dir_exists(out));
}

int main(void) {
    if (test_tmpdir(tmpdir, sizeof tmpdir, "test-gguf")) return 1;
    awq_runtime_params p = awq_runtime_params_default();
    p.load_plugins = false;
    if (awq_runtime_create(&rt, &p) != AWQ_OK) return 1;
    RUN(dequantize_matches_reference);
    RUN(real_files);
    RUN(malformed_files);
    RUN(convert_smollm2);
    RUN(convert_refusals);
    awq_runtime_destroy(rt);
    if (test_rmtree(tmpdir)) return 1;
    return TEST_EXIT();
}
