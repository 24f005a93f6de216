/*
 * gguf_dequant.c - ggml block formats to F32 (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
 * Q4_K, Q5_K, Q6_K). Layouts as defined by ggml (ggml-common.h); the code is our own.
 */
#include <string.h>

#include "awq_pack.h"
#include "gguf.h"

static float h2f(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return awq_f16_to_f32(h);
}

/* 32-element blocks */
static void deq_q4_0(const uint8_t *b, float *y) { /* d f16, qs[16] */
    float d = h2f(b);
    const uint8_t *qs = b + 2;
    for (int j = 0; j < 16; j++) {
        y[j] = (float)((qs[j] & 0xF) - 8) * d;
        y[j + 16] = (float)((qs[j] >> 4) - 8) * d;
    }
}
static void deq_q4_1(const uint8_t *b, float *y) { /* d, m f16, qs[16] */
    float d = h2f(b), m = h2f(b + 2);
    const uint8_t *qs = b + 4;
    for (int j = 0; j < 16; j++) {
        y[j] = (float)(qs[j] & 0xF) * d + m;
        y[j + 16] = (float)(qs[j] >> 4) * d + m;
    }
}
static void deq_q5_0(const uint8_t *b, float *y) { /* d f16, qh u32, qs[16] */
    float d = h2f(b);
    uint32_t qh;
    memcpy(&qh, b + 2, 4);
    const uint8_t *qs = b + 6;
    for (int j = 0; j < 16; j++) {
        int x0 = (qs[j] & 0xF) | (int)(((qh >> j) & 1u) << 4);
        int x1 = (qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1u) << 4);
        y[j] = (float)(x0 - 16) * d;
        y[j + 16] = (float)(x1 - 16) * d;
    }
}
static void deq_q5_1(const uint8_t *b, float *y) { /* d, m f16, qh u32, qs[16] */
    float d = h2f(b), m = h2f(b + 2);
    uint32_t qh;
    memcpy(&qh, b + 4, 4);
    const uint8_t *qs = b + 8;
    for (int j = 0; j < 16; j++) {
        int x0 = (qs[j] & 0xF) | (int)(((qh >> j) & 1u) << 4);
        int x1 = (qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1u) << 4);
        y[j] = (float)x0 * d + m;
        y[j + 16] = (float)x1 * d + m;
    }
}
static void deq_q8_0(const uint8_t *b, float *y) { /* d f16, qs[32] int8 */
    float d = h2f(b);
    const int8_t *qs = (const int8_t *)(b + 2);
    for (int j = 0; j < 32; j++) y[j] = (float)qs[j] * d;
}

/* 6-bit scale and min j (0..7) of a K-quant super-block. */
static void scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* 256-element super-blocks */
static void deq_q4_k(const uint8_t *b, float *y) { /* d, dmin f16, scales[12], qs[128] */
    float d = h2f(b), dmin = h2f(b + 2);
    const uint8_t *sc = b + 4, *q = b + 16;
    for (int j = 0, is = 0; j < 256; j += 64, is += 2, q += 32) {
        uint8_t s, m;
        scale_min_k4(is, sc, &s, &m);
        float d1 = d * s, m1 = dmin * m;
        scale_min_k4(is + 1, sc, &s, &m);
        float d2 = d * s, m2 = dmin * m;
        for (int l = 0; l < 32; l++) y[j + l] = d1 * (float)(q[l] & 0xF) - m1;
        for (int l = 0; l < 32; l++) y[j + 32 + l] = d2 * (float)(q[l] >> 4) - m2;
    }
}
static void deq_q5_k(const uint8_t *b, float *y) { /* d, dmin, scales[12], qh[32], qs[128] */
    float d = h2f(b), dmin = h2f(b + 2);
    const uint8_t *sc = b + 4, *qh = b + 16, *ql = b + 48;
    uint8_t u1 = 1, u2 = 2;
    for (int j = 0, is = 0; j < 256; j += 64, is += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
        uint8_t s, m;
        scale_min_k4(is, sc, &s, &m);
        float d1 = d * s, m1 = dmin * m;
        scale_min_k4(is + 1, sc, &s, &m);
        float d2 = d * s, m2 = dmin * m;
        for (int l = 0; l < 32; l++) y[j + l] = d1 * (float)((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
        for (int l = 0; l < 32; l++) y[j + 32 + l] = d2 * (float)((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
    }
}
static void deq_q6_k(const uint8_t *b, float *y) { /* ql[128], qh[64], scales[16] int8, d f16 */
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    float d = h2f(b + 208);
    for (int n = 0; n < 256; n += 128, ql += 64, qh += 32, sc += 8) {
        for (int l = 0; l < 32; l++) {
            int is = l / 16;
            int q1 = (int)((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
            int q2 = (int)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
            int q3 = (int)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            int q4 = (int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[n + l] = d * sc[is] * (float)q1;
            y[n + l + 32] = d * sc[is + 2] * (float)q2;
            y[n + l + 64] = d * sc[is + 4] * (float)q3;
            y[n + l + 96] = d * sc[is + 6] * (float)q4;
        }
    }
}

awq_status awq_gguf_dequantize(awq_runtime *rt, const awq_gguf *g, const awq_gguf_tensor *t, float *out) {
    uint64_t n = awq_gguf_tensor_nelem(t);
    const uint8_t *p = t->data;
    void (*blk)(const uint8_t *, float *) = NULL;
    uint64_t be = 0, bb = 0;
    switch (t->type) {
    case AWQ_GGML_F32: memcpy(out, p, n * 4); return AWQ_OK;
    case AWQ_GGML_F16:
        for (uint64_t i = 0; i < n; i++) out[i] = h2f(p + 2 * i);
        return AWQ_OK;
    case AWQ_GGML_BF16:
        for (uint64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            out[i] = awq_bf16_to_f32(h);
        }
        return AWQ_OK;
    case AWQ_GGML_Q4_0:
        blk = deq_q4_0;
        be = 32;
        bb = 18;
        break;
    case AWQ_GGML_Q4_1:
        blk = deq_q4_1;
        be = 32;
        bb = 20;
        break;
    case AWQ_GGML_Q5_0:
        blk = deq_q5_0;
        be = 32;
        bb = 22;
        break;
    case AWQ_GGML_Q5_1:
        blk = deq_q5_1;
        be = 32;
        bb = 24;
        break;
    case AWQ_GGML_Q8_0:
        blk = deq_q8_0;
        be = 32;
        bb = 34;
        break;
    case AWQ_GGML_Q4_K:
        blk = deq_q4_k;
        be = 256;
        bb = 144;
        break;
    case AWQ_GGML_Q5_K:
        blk = deq_q5_k;
        be = 256;
        bb = 176;
        break;
    case AWQ_GGML_Q6_K:
        blk = deq_q6_k;
        be = 256;
        bb = 210;
        break;
    default:
        return awq_set_error(rt, AWQ_ERR_UNSUPPORTED,
                             "%s: tensor '%s': dequantization of %s is not supported (supported: F32, "
                             "F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K)",
                             g->path, t->name, awq_ggml_type_name(t->type));
    }
    for (uint64_t i = 0; i < n / be; i++) blk(p + i * bb, out + i * be);
    return AWQ_OK;
}
