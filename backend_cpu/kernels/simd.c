/* simd.c - hot loops compiled for several x86-64 levels (see simd.h). */
#include <string.h>

#include "simd.h"

K_CLONES void k_dot8(const float *x, const float *w, int64_t ld, int64_t n, float *y) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
    const float *w0 = w, *w1 = w + ld, *w2 = w + 2 * ld, *w3 = w + 3 * ld, *w4 = w + 4 * ld, *w5 = w + 5 * ld,
                *w6 = w + 6 * ld, *w7 = w + 7 * ld;
#pragma omp simd reduction(+ : s0, s1, s2, s3, s4, s5, s6, s7)
    for (int64_t k = 0; k < n; k++) {
        float xk = x[k];
        s0 += xk * w0[k];
        s1 += xk * w1[k];
        s2 += xk * w2[k];
        s3 += xk * w3[k];
        s4 += xk * w4[k];
        s5 += xk * w5[k];
        s6 += xk * w6[k];
        s7 += xk * w7[k];
    }
    y[0] = s0;
    y[1] = s1;
    y[2] = s2;
    y[3] = s3;
    y[4] = s4;
    y[5] = s5;
    y[6] = s6;
    y[7] = s7;
}

K_CLONES void k_axpy(float *g, float a, const float *x, int64_t n) {
#pragma omp simd
    for (int64_t j = 0; j < n; j++) g[j] += a * x[j];
}

#include <math.h>

#define ATT_BLOCK 64

K_CLONES void k_attn_row_generic(const float *q, const char *kbase, int64_t kstride, const char *vbase,
                                 int64_t vstride, int64_t lo, int64_t hi, int64_t hd, float scale,
                                 float *out) {
    float sc[ATT_BLOCK];
    float m = -INFINITY, l = 0.0f;
    for (int64_t d = 0; d < hd; d++) out[d] = 0.0f;
    for (int64_t j0 = lo; j0 <= hi; j0 += ATT_BLOCK) {
        int64_t nb = hi - j0 + 1 < ATT_BLOCK ? hi - j0 + 1 : ATT_BLOCK;
        float bm = -INFINITY;
        for (int64_t jj = 0; jj < nb; jj++) {
            const float *kv = (const float *)(kbase + (j0 + jj) * kstride);
            float s = 0.0f;
#pragma omp simd reduction(+ : s)
            for (int64_t d = 0; d < hd; d++) s += q[d] * kv[d];
            sc[jj] = s * scale;
            bm = sc[jj] > bm ? sc[jj] : bm;
        }
        if (bm > m) {
            float c = expf(m - bm); /* rescale what was accumulated so far */
            l *= c;
            for (int64_t d = 0; d < hd; d++) out[d] *= c;
            m = bm;
        }
        for (int64_t jj = 0; jj < nb; jj++) {
            float p = expf(sc[jj] - m);
            const float *vv = (const float *)(vbase + (j0 + jj) * vstride);
            l += p;
#pragma omp simd
            for (int64_t d = 0; d < hd; d++) out[d] += p * vv[d];
        }
    }
    float inv = 1.0f / l;
    for (int64_t d = 0; d < hd; d++) out[d] *= inv;
}

K_CLONES void k_sq_err16(const float *x, int64_t ldx, int64_t n, const float *dqt, int64_t gs, double *err) {
    /* dqt is (gs, 16): candidate c of element k at dqt[k * 16 + c], so each k is one 16-wide FMA */
    double e[16] = {0};
    for (int64_t t = 0; t < n; t++) {
        const float *xt = x + t * ldx;
        float s[16] = {0};
        for (int64_t k = 0; k < gs; k++) {
            float xk = xt[k];
            const float *d = dqt + k * 16;
#pragma omp simd
            for (int c = 0; c < 16; c++) s[c] += xk * d[c];
        }
        for (int c = 0; c < 16; c++) e[c] += (double)s[c] * s[c];
    }
    for (int c = 0; c < 16; c++) err[c] += e[c];
}

K_CLONES void k_w4_dequant_words(float *dst, const int32_t *words, int64_t nw, const float *z,
                                 const float *s) {
    /* logical column j sits in nibble slot {0, 4, 1, 5, 2, 6, 3, 7}[j] */
    static const uint32_t shift[8] = {0, 16, 4, 20, 8, 24, 12, 28};
    for (int64_t c = 0; c < nw; c++) {
        uint32_t w = (uint32_t)words[c];
        float *d = dst + 8 * c;
        const float *zc = z + 8 * c, *sc = s + 8 * c;
#pragma omp simd
        for (int j = 0; j < 8; j++) d[j] = ((float)((w >> shift[j]) & 15u) - zc[j]) * sc[j];
    }
}
