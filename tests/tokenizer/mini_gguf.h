/*
 * mini_gguf.h - a test-only reader of GGUF metadata (header + key/values, no tensors) that fills
 * the awq_gguf struct of core/gguf.h, so the tokenizer tests do not depend on the full reader.
 * The file stays in memory (buf) because strings point into it.
 */
#ifndef AWQ_TESTS_MINI_GGUF_H
#define AWQ_TESTS_MINI_GGUF_H

#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "tok_test_util.h"

typedef struct mini_gguf {
    awq_gguf g;
    char    *buf;
} mini_gguf;

static size_t mg_scalar_size(uint32_t t) {
    switch (t) {
    case AWQ_GGUF_UINT8: case AWQ_GGUF_INT8: case AWQ_GGUF_BOOL: return 1;
    case AWQ_GGUF_UINT16: case AWQ_GGUF_INT16: return 2;
    case AWQ_GGUF_UINT32: case AWQ_GGUF_INT32: case AWQ_GGUF_FLOAT32: return 4;
    case AWQ_GGUF_UINT64: case AWQ_GGUF_INT64: case AWQ_GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

static void mini_gguf_close(mini_gguf *m) {
    if (!m) return;
    for (uint64_t i = 0; i < m->g.n_kv; i++) {
        free(m->g.kv[i].key);
        free(m->g.kv[i].arr_str);
    }
    free(m->g.kv);
    free(m->g.path);
    free(m->buf);
    free(m);
}

static mini_gguf *mini_gguf_open(const char *path) {
    size_t n;
    char *b = tt_read_file(path, &n);
    if (!b || n < 24 || memcmp(b, "GGUF", 4)) {
        free(b);
        return NULL;
    }
    mini_gguf *m = calloc(1, sizeof *m);
    m->buf = b;
    m->g.path = strdup(path);
    size_t p = 4;
#define RD(dst, sz) do { if (p + (sz) > n) goto bad; memcpy((dst), b + p, (sz)); p += (sz); } while (0)
    RD(&m->g.version, 4);
    RD(&m->g.n_tensors, 8);
    uint64_t nkv;
    RD(&nkv, 8);
    if (nkv > 100000) goto bad;
    m->g.kv = calloc(nkv ? nkv : 1, sizeof *m->g.kv);
    for (uint64_t i = 0; i < nkv; i++) {
        awq_gguf_kv *kv = &m->g.kv[i];
        uint64_t kl;
        RD(&kl, 8);
        if (p + kl > n) goto bad;
        kv->key = strndup(b + p, kl);
        p += kl;
        m->g.n_kv = i + 1;
        uint32_t t;
        RD(&t, 4);
        kv->type = (awq_gguf_type)t;
        if (t == AWQ_GGUF_STRING) {
            RD(&kv->v.str.len, 8);
            if (p + kv->v.str.len > n) goto bad;
            kv->v.str.ptr = b + p;
            p += kv->v.str.len;
        } else if (t == AWQ_GGUF_ARRAY) {
            uint32_t at;
            RD(&at, 4);
            kv->arr_type = (awq_gguf_type)at;
            RD(&kv->arr_n, 8);
            if (at == AWQ_GGUF_STRING) {
                kv->arr_str = calloc(kv->arr_n ? kv->arr_n : 1, sizeof *kv->arr_str);
                for (uint64_t k = 0; k < kv->arr_n; k++) {
                    RD(&kv->arr_str[k].len, 8);
                    if (p + kv->arr_str[k].len > n) goto bad;
                    kv->arr_str[k].ptr = b + p;
                    p += kv->arr_str[k].len;
                }
            } else {
                size_t es = mg_scalar_size(at);
                if (!es || kv->arr_n > (n - p) / es) goto bad;
                kv->arr_data = b + p;
                p += es * kv->arr_n;
            }
        } else {
            size_t es = mg_scalar_size(t);
            if (!es) goto bad;
            unsigned char raw[8] = {0};
            RD(raw, es);
            if (t == AWQ_GGUF_BOOL) kv->v.b = raw[0] != 0;
            else if (t == AWQ_GGUF_FLOAT32) { float f; memcpy(&f, raw, 4); kv->v.f64 = f; }
            else if (t == AWQ_GGUF_FLOAT64) memcpy(&kv->v.f64, raw, 8);
            else if (t == AWQ_GGUF_INT8) kv->v.i64 = (int8_t)raw[0];
            else if (t == AWQ_GGUF_INT16) { int16_t x; memcpy(&x, raw, 2); kv->v.i64 = x; }
            else if (t == AWQ_GGUF_INT32) { int32_t x; memcpy(&x, raw, 4); kv->v.i64 = x; }
            else if (t == AWQ_GGUF_INT64) memcpy(&kv->v.i64, raw, 8);
            else memcpy(&kv->v.u64, raw, es); /* unsigned, little-endian */
        }
    }
#undef RD
    return m;
bad:
    mini_gguf_close(m);
    return NULL;
}

#endif
