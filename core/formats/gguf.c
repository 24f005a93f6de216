/*
 * gguf.c - GGUF v2/v3 reader: header, metadata, tensor infos. Every count, length and offset is
 * checked against the file size with overflow-safe arithmetic before it is used; errors name the
 * file and the field. The data stays in the read-only mapping (zero copy).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"

#define GGUF_MAGIC             0x46554747u /* "GGUF" little-endian */
#define GGUF_MAX_DIMS          4
#define GGUF_DEFAULT_ALIGNMENT 32

typedef struct cursor {
    awq_runtime *rt;
    const char *path;
    const uint8_t *p;
    uint64_t size, off;
} cursor;

static awq_status trunc_err(cursor *c, const char *what) {
    return awq_set_error(c->rt, AWQ_ERR_FORMAT,
                         "%s: truncated: %s at byte %llu runs past the end "
                         "of the file (%llu bytes)",
                         c->path, what, (unsigned long long)c->off, (unsigned long long)c->size);
}

static awq_status need(cursor *c, uint64_t n, const char *what) {
    if (n > c->size || c->off > c->size - n) return trunc_err(c, what);
    return AWQ_OK;
}

#define RD(T, name)                                                    \
    static awq_status rd_##name(cursor *c, T *out, const char *what) { \
        awq_status st = need(c, sizeof(T), what);                      \
        if (st != AWQ_OK) return st;                                   \
        memcpy(out, c->p + c->off, sizeof(T));                         \
        c->off += sizeof(T);                                           \
        return AWQ_OK;                                                 \
    }
RD(uint32_t, u32)
RD(uint64_t, u64)

static awq_status rd_str(cursor *c, awq_gguf_str *s, const char *what) {
    uint64_t len;
    awq_status st = rd_u64(c, &len, what);
    if (st != AWQ_OK) return st;
    if (len > c->size - c->off)
        return awq_set_error(c->rt, AWQ_ERR_FORMAT,
                             "%s: %s: string length %llu at byte %llu runs past the end of the file", c->path,
                             what, (unsigned long long)len, (unsigned long long)(c->off - 8));
    s->ptr = (const char *)(c->p + c->off);
    s->len = len;
    c->off += len;
    return AWQ_OK;
}

static size_t scalar_size(uint32_t type) {
    switch (type) {
    case AWQ_GGUF_UINT8:
    case AWQ_GGUF_INT8:
    case AWQ_GGUF_BOOL: return 1;
    case AWQ_GGUF_UINT16:
    case AWQ_GGUF_INT16: return 2;
    case AWQ_GGUF_UINT32:
    case AWQ_GGUF_INT32:
    case AWQ_GGUF_FLOAT32: return 4;
    case AWQ_GGUF_UINT64:
    case AWQ_GGUF_INT64:
    case AWQ_GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

/* Reads one scalar of a fixed-size type into kv->v. */
static void scalar_value(awq_gguf_kv *kv, uint32_t type, const uint8_t *p) {
    switch (type) {
    case AWQ_GGUF_UINT8: kv->v.u64 = p[0]; break;
    case AWQ_GGUF_INT8: kv->v.i64 = (int8_t)p[0]; break;
    case AWQ_GGUF_BOOL: kv->v.b = p[0] != 0; break;
    case AWQ_GGUF_UINT16: {
        uint16_t x;
        memcpy(&x, p, 2);
        kv->v.u64 = x;
        break;
    }
    case AWQ_GGUF_INT16: {
        int16_t x;
        memcpy(&x, p, 2);
        kv->v.i64 = x;
        break;
    }
    case AWQ_GGUF_UINT32: {
        uint32_t x;
        memcpy(&x, p, 4);
        kv->v.u64 = x;
        break;
    }
    case AWQ_GGUF_INT32: {
        int32_t x;
        memcpy(&x, p, 4);
        kv->v.i64 = x;
        break;
    }
    case AWQ_GGUF_FLOAT32: {
        float x;
        memcpy(&x, p, 4);
        kv->v.f64 = x;
        break;
    }
    case AWQ_GGUF_UINT64: memcpy(&kv->v.u64, p, 8); break;
    case AWQ_GGUF_INT64: memcpy(&kv->v.i64, p, 8); break;
    case AWQ_GGUF_FLOAT64: memcpy(&kv->v.f64, p, 8); break;
    default: break;
    }
}

static awq_status read_kv(cursor *c, awq_gguf_kv *kv, uint64_t index) {
    awq_gguf_str key;
    char what[64];
    snprintf(what, sizeof what, "metadata key %llu", (unsigned long long)index);
    awq_status st = rd_str(c, &key, what);
    if (st != AWQ_OK) return st;
    if (key.len == 0 || key.len > 65535)
        return awq_set_error(c->rt, AWQ_ERR_FORMAT, "%s: metadata key %llu has length %llu", c->path,
                             (unsigned long long)index, (unsigned long long)key.len);
    kv->key = awq_strndup(key.ptr, (size_t)key.len);
    if (!kv->key) return awq_set_error(c->rt, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
    uint32_t type;
    if ((st = rd_u32(c, &type, kv->key))) return st;
    kv->type = (awq_gguf_type)type;
    if (type == AWQ_GGUF_STRING) return rd_str(c, &kv->v.str, kv->key);
    if (type == AWQ_GGUF_ARRAY) {
        uint32_t at;
        uint64_t n;
        if ((st = rd_u32(c, &at, kv->key)) || (st = rd_u64(c, &n, kv->key))) return st;
        kv->arr_type = (awq_gguf_type)at;
        kv->arr_n = n;
        if (at == AWQ_GGUF_STRING) {
            /* each string needs at least its 8-byte length */
            if (n > (c->size - c->off) / 8)
                return awq_set_error(c->rt, AWQ_ERR_FORMAT,
                                     "%s: '%s': array of %llu strings cannot fit in the file", c->path,
                                     kv->key, (unsigned long long)n);
            kv->arr_str = awq_calloc((size_t)(n ? n : 1), sizeof *kv->arr_str);
            if (!kv->arr_str) return awq_set_error(c->rt, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
            for (uint64_t i = 0; i < n; i++)
                if ((st = rd_str(c, &kv->arr_str[i], kv->key))) return st;
            return AWQ_OK;
        }
        size_t es = scalar_size(at);
        if (!es)
            return awq_set_error(c->rt, AWQ_ERR_FORMAT, "%s: '%s': unsupported array element type %u",
                                 c->path, kv->key, at);
        uint64_t bytes;
        if (awq_mul_overflow_u64(n, es, &bytes) || bytes > c->size - c->off)
            return awq_set_error(c->rt, AWQ_ERR_FORMAT,
                                 "%s: '%s': array of %llu elements runs past the end of the file", c->path,
                                 kv->key, (unsigned long long)n);
        kv->arr_data = c->p + c->off;
        c->off += bytes;
        return AWQ_OK;
    }
    size_t es = scalar_size(type);
    if (!es)
        return awq_set_error(c->rt, AWQ_ERR_FORMAT, "%s: '%s': unknown value type %u", c->path, kv->key,
                             type);
    if ((st = need(c, es, kv->key))) return st;
    scalar_value(kv, type, c->p + c->off);
    c->off += es;
    return AWQ_OK;
}

/* Block geometry of a ggml type: elements per block and bytes per block (0 if unknown). */
static bool type_block(uint32_t t, uint64_t *elems, uint64_t *bytes) {
    static const struct {
        uint32_t t;
        uint32_t e, b;
    } tab[] = {
        {AWQ_GGML_F32, 1, 4},      {AWQ_GGML_F16, 1, 2},      {AWQ_GGML_BF16, 1, 2},
        {AWQ_GGML_Q4_0, 32, 18},   {AWQ_GGML_Q4_1, 32, 20},   {AWQ_GGML_Q5_0, 32, 22},
        {AWQ_GGML_Q5_1, 32, 24},   {AWQ_GGML_Q8_0, 32, 34},   {AWQ_GGML_Q8_1, 32, 36},
        {AWQ_GGML_Q2_K, 256, 84},  {AWQ_GGML_Q3_K, 256, 110}, {AWQ_GGML_Q4_K, 256, 144},
        {AWQ_GGML_Q5_K, 256, 176}, {AWQ_GGML_Q6_K, 256, 210}, {AWQ_GGML_Q8_K, 256, 292},
    };
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (tab[i].t == t) {
            *elems = tab[i].e;
            *bytes = tab[i].b;
            return true;
        }
    return false;
}

const char *awq_ggml_type_name(uint32_t type) {
    switch (type) {
    case AWQ_GGML_F32: return "F32";
    case AWQ_GGML_F16: return "F16";
    case AWQ_GGML_BF16: return "BF16";
    case AWQ_GGML_Q4_0: return "Q4_0";
    case AWQ_GGML_Q4_1: return "Q4_1";
    case AWQ_GGML_Q5_0: return "Q5_0";
    case AWQ_GGML_Q5_1: return "Q5_1";
    case AWQ_GGML_Q8_0: return "Q8_0";
    case AWQ_GGML_Q8_1: return "Q8_1";
    case AWQ_GGML_Q2_K: return "Q2_K";
    case AWQ_GGML_Q3_K: return "Q3_K";
    case AWQ_GGML_Q4_K: return "Q4_K";
    case AWQ_GGML_Q5_K: return "Q5_K";
    case AWQ_GGML_Q6_K: return "Q6_K";
    case AWQ_GGML_Q8_K: return "Q8_K";
    default: return "unknown";
    }
}

static awq_status read_tensor_info(cursor *c, awq_gguf_tensor *t, uint64_t index) {
    awq_gguf_str name;
    char what[64];
    snprintf(what, sizeof what, "tensor info %llu", (unsigned long long)index);
    awq_status st = rd_str(c, &name, what);
    if (st != AWQ_OK) return st;
    if (name.len == 0 || name.len > 4096)
        return awq_set_error(c->rt, AWQ_ERR_FORMAT, "%s: tensor %llu: name length %llu", c->path,
                             (unsigned long long)index, (unsigned long long)name.len);
    t->name = awq_strndup(name.ptr, (size_t)name.len);
    if (!t->name) return awq_set_error(c->rt, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
    if ((st = rd_u32(c, &t->n_dims, t->name))) return st;
    if (t->n_dims == 0 || t->n_dims > GGUF_MAX_DIMS)
        return awq_set_error(c->rt, AWQ_ERR_FORMAT, "%s: tensor '%s': n_dims = %u (must be 1..%d)", c->path,
                             t->name, t->n_dims, GGUF_MAX_DIMS);
    for (int i = 0; i < GGUF_MAX_DIMS; i++) t->ne[i] = 1;
    for (uint32_t i = 0; i < t->n_dims; i++)
        if ((st = rd_u64(c, &t->ne[i], t->name))) return st;
    if ((st = rd_u32(c, &t->type, t->name)) || (st = rd_u64(c, &t->offset, t->name))) return st;
    uint64_t be, bb, n = 1;
    if (!type_block(t->type, &be, &bb))
        return awq_set_error(c->rt, AWQ_ERR_UNSUPPORTED, "%s: tensor '%s': unknown ggml type %u", c->path,
                             t->name, t->type);
    for (int i = 0; i < GGUF_MAX_DIMS; i++)
        if (t->ne[i] == 0 || (int64_t)t->ne[i] < 0 || awq_mul_overflow_u64(n, t->ne[i], &n) ||
            n > (1ull << 48))
            return awq_set_error(c->rt, AWQ_ERR_FORMAT, "%s: tensor '%s': bad dimension ne[%d] = %llu",
                                 c->path, t->name, i, (unsigned long long)t->ne[i]);
    if (t->ne[0] % be)
        return awq_set_error(c->rt, AWQ_ERR_FORMAT,
                             "%s: tensor '%s': row length %llu is not a multiple of the %s block (%llu)",
                             c->path, t->name, (unsigned long long)t->ne[0], awq_ggml_type_name(t->type),
                             (unsigned long long)be);
    t->nbytes = n / be * bb;
    return AWQ_OK;
}

static int cmp_tensor_offset(const void *a, const void *b) {
    const awq_gguf_tensor *x = *(const awq_gguf_tensor *const *)a, *y = *(const awq_gguf_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static awq_status parse(awq_runtime *rt, awq_gguf *g) {
    cursor c = {.rt = rt, .path = g->path, .p = g->map.data, .size = g->map.size};
    uint32_t magic;
    awq_status st;
    if ((st = rd_u32(&c, &magic, "magic"))) return st;
    if (magic != GGUF_MAGIC)
        return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: not a GGUF file (bad magic 0x%08x)", g->path, magic);
    if ((st = rd_u32(&c, &g->version, "version"))) return st;
    if (g->version == 1)
        return awq_set_error(rt, AWQ_ERR_UNSUPPORTED,
                             "%s: GGUF version 1 is not supported (only 2 and 3); re-convert the model "
                             "with a current llama.cpp",
                             g->path);
    if (g->version != 2 && g->version != 3)
        return awq_set_error(rt, AWQ_ERR_UNSUPPORTED, "%s: GGUF version %u is not supported (2 and 3)",
                             g->path, g->version);
    if ((st = rd_u64(&c, &g->n_tensors, "tensor count")) || (st = rd_u64(&c, &g->n_kv, "metadata count")))
        return st;
    /* every tensor info takes >= 8+1+4+8+4+8 bytes, every kv >= 8+1+4 */
    if (g->n_tensors > c.size / 33 || g->n_tensors > (1u << 24))
        return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: tensor count %llu is impossible for a %llu-byte file",
                             g->path, (unsigned long long)g->n_tensors, (unsigned long long)c.size);
    if (g->n_kv > c.size / 13 || g->n_kv > (1u << 24))
        return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: metadata count %llu is impossible for a %llu-byte file",
                             g->path, (unsigned long long)g->n_kv, (unsigned long long)c.size);
    g->kv = awq_calloc((size_t)(g->n_kv ? g->n_kv : 1), sizeof *g->kv);
    g->tensors = awq_calloc((size_t)(g->n_tensors ? g->n_tensors : 1), sizeof *g->tensors);
    if (!g->kv || !g->tensors) return awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
    for (uint64_t i = 0; i < g->n_kv; i++)
        if ((st = read_kv(&c, &g->kv[i], i))) return st;
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    const awq_gguf_kv *al = awq_gguf_find_kv(g, "general.alignment");
    if (al) {
        if (al->type != AWQ_GGUF_UINT32 || al->v.u64 == 0 || (al->v.u64 & (al->v.u64 - 1)))
            return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: general.alignment must be a power-of-two uint32",
                                 g->path);
        g->alignment = al->v.u64;
    }
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if ((st = read_tensor_info(&c, &g->tensors[i], i))) return st;
    uint64_t data = (c.off + g->alignment - 1) / g->alignment * g->alignment;
    if (data > c.size && g->n_tensors)
        return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: tensor data section starts past the end of the file",
                             g->path);
    g->data_offset = data;
    uint64_t avail = c.size > data ? c.size - data : 0;
    awq_gguf_tensor **order = awq_malloc((size_t)(g->n_tensors ? g->n_tensors : 1) * sizeof *order);
    if (!order) return awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        awq_gguf_tensor *t = &g->tensors[i];
        order[i] = t;
        if (t->offset % g->alignment) {
            st = awq_set_error(rt, AWQ_ERR_FORMAT, "%s: tensor '%s': data offset %llu is not aligned to %llu",
                               g->path, t->name, (unsigned long long)t->offset,
                               (unsigned long long)g->alignment);
            break;
        }
        if (t->offset > avail || t->nbytes > avail - t->offset) {
            st = awq_set_error(rt, AWQ_ERR_FORMAT,
                               "%s: tensor '%s': data offset %llu + %llu bytes runs past the end of "
                               "the file (%llu bytes of data)",
                               g->path, t->name, (unsigned long long)t->offset, (unsigned long long)t->nbytes,
                               (unsigned long long)avail);
            break;
        }
        t->data = g->map.data + data + t->offset;
    }
    if (st == AWQ_OK && g->n_tensors > 1) {
        qsort(order, (size_t)g->n_tensors, sizeof *order, cmp_tensor_offset);
        for (uint64_t i = 1; i < g->n_tensors; i++)
            if (order[i - 1]->offset + order[i - 1]->nbytes > order[i]->offset) {
                st = awq_set_error(rt, AWQ_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap", g->path,
                                   order[i - 1]->name, order[i]->name);
                break;
            }
    }
    awq_free(order);
    return st;
}

awq_status awq_gguf_open(awq_runtime *rt, const char *path, awq_gguf **out) {
    *out = NULL;
    awq_gguf *g = awq_calloc(1, sizeof *g);
    if (!g) return awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
    g->path = awq_strdup(path);
    awq_status st = g->path ? awq_mmap_open(rt, path, &g->map) : AWQ_ERR_OUT_OF_MEMORY;
    if (st == AWQ_OK) st = parse(rt, g);
    if (st != AWQ_OK) {
        awq_gguf_close(g);
        return st;
    }
    *out = g;
    return AWQ_OK;
}

void awq_gguf_close(awq_gguf *g) {
    if (!g) return;
    if (g->kv)
        for (uint64_t i = 0; i < g->n_kv; i++) {
            awq_free(g->kv[i].key);
            awq_free(g->kv[i].arr_str);
        }
    if (g->tensors)
        for (uint64_t i = 0; i < g->n_tensors; i++) awq_free(g->tensors[i].name);
    awq_free(g->kv);
    awq_free(g->tensors);
    awq_mmap_close(&g->map);
    awq_free(g->path);
    awq_free(g);
}

const awq_gguf_kv *awq_gguf_find_kv(const awq_gguf *g, const char *key) {
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (g->kv[i].key && !strcmp(g->kv[i].key, key)) return &g->kv[i];
    return NULL;
}

const awq_gguf_tensor *awq_gguf_find_tensor(const awq_gguf *g, const char *name) {
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (!strcmp(g->tensors[i].name, name)) return &g->tensors[i];
    return NULL;
}

uint64_t awq_gguf_tensor_nelem(const awq_gguf_tensor *t) { return t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]; }

/* ---- typed getters ----------------------------------------------------------------------- */

static bool is_int_type(awq_gguf_type t) {
    return t == AWQ_GGUF_UINT8 || t == AWQ_GGUF_INT8 || t == AWQ_GGUF_UINT16 || t == AWQ_GGUF_INT16 ||
        t == AWQ_GGUF_UINT32 || t == AWQ_GGUF_INT32 || t == AWQ_GGUF_UINT64 || t == AWQ_GGUF_INT64;
}
static bool is_signed(awq_gguf_type t) {
    return t == AWQ_GGUF_INT8 || t == AWQ_GGUF_INT16 || t == AWQ_GGUF_INT32 || t == AWQ_GGUF_INT64;
}

awq_status awq_gguf_get_u64(awq_runtime *rt, const awq_gguf *g, const char *key, bool required, uint64_t def,
                            uint64_t *out) {
    const awq_gguf_kv *kv = awq_gguf_find_kv(g, key);
    if (!kv) {
        if (required) return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: metadata '%s' is missing", g->path, key);
        *out = def;
        return AWQ_OK;
    }
    if (!is_int_type(kv->type) || (is_signed(kv->type) && kv->v.i64 < 0))
        return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: metadata '%s': expected a non-negative integer",
                             g->path, key);
    *out = kv->v.u64;
    return AWQ_OK;
}

awq_status awq_gguf_get_f64(awq_runtime *rt, const awq_gguf *g, const char *key, bool required, double def,
                            double *out) {
    const awq_gguf_kv *kv = awq_gguf_find_kv(g, key);
    if (!kv) {
        if (required) return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: metadata '%s' is missing", g->path, key);
        *out = def;
        return AWQ_OK;
    }
    if (kv->type == AWQ_GGUF_FLOAT32 || kv->type == AWQ_GGUF_FLOAT64)
        *out = kv->v.f64;
    else if (is_int_type(kv->type))
        *out = is_signed(kv->type) ? (double)kv->v.i64 : (double)kv->v.u64;
    else
        return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: metadata '%s': expected a number", g->path, key);
    return AWQ_OK;
}

awq_status awq_gguf_get_bool(awq_runtime *rt, const awq_gguf *g, const char *key, bool required, bool def,
                             bool *out) {
    const awq_gguf_kv *kv = awq_gguf_find_kv(g, key);
    if (!kv) {
        if (required) return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: metadata '%s' is missing", g->path, key);
        *out = def;
        return AWQ_OK;
    }
    if (kv->type != AWQ_GGUF_BOOL)
        return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: metadata '%s': expected a bool", g->path, key);
    *out = kv->v.b;
    return AWQ_OK;
}

awq_status awq_gguf_get_str(awq_runtime *rt, const awq_gguf *g, const char *key, bool required, char **out) {
    *out = NULL;
    const awq_gguf_kv *kv = awq_gguf_find_kv(g, key);
    if (!kv) {
        if (required) return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: metadata '%s' is missing", g->path, key);
        return AWQ_OK;
    }
    if (kv->type != AWQ_GGUF_STRING)
        return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: metadata '%s': expected a string", g->path, key);
    *out = awq_strndup(kv->v.str.ptr, (size_t)kv->v.str.len);
    return *out ? AWQ_OK : awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
}
