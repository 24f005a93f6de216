/*
 * pack.c - AutoAWQ GEMM / GEMV packing (docs/formats.md 4.1, 4.2). The nibble orders themselves
 * live in awq_pack.h (shared with the backends); this file applies them to whole matrices.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "awq_pack.h"
#include "pack.h"

awq_status awq_pack_check(awq_runtime *rt, awq_quant_format fmt, int64_t out, int64_t in, int64_t gs,
                          awq_pack_shapes *shapes) {
    if (fmt != AWQ_FORMAT_GEMM && fmt != AWQ_FORMAT_GEMV)
        return awq_set_error(rt, AWQ_ERR_UNSUPPORTED, "pack: unknown AWQ format %d", (int)fmt);
    if (out <= 0 || in <= 0)
        return awq_set_error(rt, AWQ_ERR_INVALID_ARG, "pack: bad shape (out %lld, in %lld)", (long long)out,
                             (long long)in);
    uint64_t n;
    if (awq_mul_overflow_u64((uint64_t)out, (uint64_t)in, &n) || n > (uint64_t)INT64_MAX / 2)
        return awq_set_error(rt, AWQ_ERR_INVALID_ARG, "pack: shape (%lld, %lld) is too large", (long long)out,
                             (long long)in);
    if (gs <= 0)
        return awq_set_error(rt, AWQ_ERR_INVALID_ARG, "pack: group size %lld must be positive",
                             (long long)gs);
    if (in % gs != 0)
        return awq_set_error(rt, AWQ_ERR_INVALID_ARG,
                             "pack: in_features %lld is not divisible by the group size %lld", (long long)in,
                             (long long)gs);
    if (out % 8 != 0)
        return awq_set_error(rt, AWQ_ERR_INVALID_ARG, "pack: out_features %lld is not a multiple of 8",
                             (long long)out);
    int64_t G = in / gs;
    if (fmt == AWQ_FORMAT_GEMM) {
        if (shapes) {
            *shapes = (awq_pack_shapes){{in, out / 8}, {G, out / 8}, {G, out}};
        }
        return AWQ_OK;
    }
    if (in % 8 != 0)
        return awq_set_error(rt, AWQ_ERR_INVALID_ARG,
                             "pack: GEMV layout needs in_features %lld to be a multiple of 8", (long long)in);
    int64_t zw = awq_gemv_zeros_width(in, gs);
    if (zw == 0)
        return awq_set_error(rt, AWQ_ERR_UNSUPPORTED,
                             "pack: group size %lld is not supported by the GEMV layout (32, 64 "
                             "or >= 128)",
                             (long long)gs);
    if (shapes) *shapes = (awq_pack_shapes){{out, in / 8}, {out, zw}, {out, zw * 8}};
    return AWQ_OK;
}

/* Reports the first value above 15 in a (rows, cols) uint8 matrix. */
static awq_status bad_nibble(awq_runtime *rt, const char *what, const uint8_t *v, int64_t rows,
                             int64_t cols) {
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++)
            if (v[r * cols + c] > 15)
                return awq_set_error(rt, AWQ_ERR_INVALID_ARG,
                                     "pack: %s[%lld][%lld] = %d is not a 4-bit value", what, (long long)r,
                                     (long long)c, v[r * cols + c]);
    return AWQ_OK;
}

static bool any_above_15(const uint8_t *v, int64_t n) {
    uint8_t acc = 0;
    for (int64_t i = 0; i < n; i++) acc |= v[i];
    return acc > 15;
}

/* ---- GEMM ------------------------------------------------------------------------------- */

awq_status awq_pack_gemm(awq_runtime *rt, int64_t out, int64_t in, int64_t gs, const uint8_t *codes,
                         const uint16_t *scales, const uint8_t *zeros, int32_t *qweight, int32_t *qzeros,
                         uint16_t *scales_gemm) {
    awq_status st = awq_pack_check(rt, AWQ_FORMAT_GEMM, out, in, gs, NULL);
    if (st != AWQ_OK) return st;
    const int64_t G = in / gs, nc = out / 8;
    if (any_above_15(codes, out * in)) return bad_nibble(rt, "codes", codes, out, in);
    if (any_above_15(zeros, out * G)) return bad_nibble(rt, "zeros", zeros, out, G);

        /* qweight (in, nc): word [k][c] packs codes[8c + j][k], j = 0..7, in GEMM nibble order. */
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < nc; c++) {
        const uint8_t *rows[8];
        for (int j = 0; j < 8; j++) rows[j] = codes + (8 * c + j) * in;
        uint8_t v[8];
        for (int64_t k = 0; k < in; k++) {
            for (int j = 0; j < 8; j++) v[j] = rows[j][k];
            qweight[k * nc + c] = awq_pack_word(v);
        }
        for (int64_t g = 0; g < G; g++) {
            for (int j = 0; j < 8; j++) v[j] = zeros[(8 * c + j) * G + g];
            qzeros[g * nc + c] = awq_pack_word(v);
        }
    }
    /* scales (G, out) = scales^T */
    for (int64_t o = 0; o < out; o++)
        for (int64_t g = 0; g < G; g++) scales_gemm[g * out + o] = scales[o * G + g];
    return AWQ_OK;
}

awq_status awq_unpack_gemm(awq_runtime *rt, int64_t out, int64_t in, int64_t gs, const int32_t *qweight,
                           const int32_t *qzeros, const uint16_t *scales_gemm, uint8_t *codes,
                           uint16_t *scales, uint8_t *zeros) {
    awq_status st = awq_pack_check(rt, AWQ_FORMAT_GEMM, out, in, gs, NULL);
    if (st != AWQ_OK) return st;
    const int64_t G = in / gs, nc = out / 8;
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < nc; c++) {
        uint8_t v[8];
        for (int64_t k = 0; k < in; k++) {
            awq_unpack_word(qweight[k * nc + c], v);
            for (int j = 0; j < 8; j++) codes[(8 * c + j) * in + k] = v[j];
        }
        for (int64_t g = 0; g < G; g++) {
            awq_unpack_word(qzeros[g * nc + c], v);
            for (int j = 0; j < 8; j++) zeros[(8 * c + j) * G + g] = v[j];
        }
    }
    for (int64_t o = 0; o < out; o++)
        for (int64_t g = 0; g < G; g++) scales[o * G + g] = scales_gemm[g * out + o];
    return AWQ_OK;
}

awq_status awq_dequant_gemm(awq_runtime *rt, int64_t out, int64_t in, int64_t gs, const int32_t *qweight,
                            const int32_t *qzeros, const uint16_t *scales_gemm, float *w) {
    awq_status st = awq_pack_check(rt, AWQ_FORMAT_GEMM, out, in, gs, NULL);
    if (st != AWQ_OK) return st;
    const int64_t nc = out / 8;
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < nc; c++) {
        uint8_t q[8], z[8];
        float s[8];
        for (int64_t k = 0; k < in; k++) {
            int64_t g = k / gs;
            if (k % gs == 0) {
                awq_unpack_word(qzeros[g * nc + c], z);
                for (int j = 0; j < 8; j++) s[j] = awq_f16_to_f32(scales_gemm[g * out + 8 * c + j]);
            }
            awq_unpack_word(qweight[k * nc + c], q);
            for (int j = 0; j < 8; j++) w[(8 * c + j) * in + k] = (float)((int)q[j] - (int)z[j]) * s[j];
        }
    }
    return AWQ_OK;
}

/* ---- GEMV ------------------------------------------------------------------------------- */

awq_status awq_pack_gemv(awq_runtime *rt, int64_t out, int64_t in, int64_t gs, const uint8_t *codes,
                         const uint16_t *scales, const uint8_t *zeros, int32_t *qweight, int32_t *qzeros,
                         uint16_t *scales_gemv) {
    awq_pack_shapes sh;
    awq_status st = awq_pack_check(rt, AWQ_FORMAT_GEMV, out, in, gs, &sh);
    if (st != AWQ_OK) return st;
    const int64_t G = in / gs, nw = in / 8, zw = sh.qzeros[1];
    if (any_above_15(codes, out * in)) return bad_nibble(rt, "codes", codes, out, in);
    if (any_above_15(zeros, out * G)) return bad_nibble(rt, "zeros", zeros, out, G);
#pragma omp parallel for schedule(static)
    for (int64_t o = 0; o < out; o++) {
        for (int64_t j = 0; j < nw; j++) qweight[o * nw + j] = awq_pack_word_seq(codes + o * in + 8 * j);
        for (int64_t j = 0; j < zw; j++) {
            uint8_t v[8] = {0};
            for (int i = 0; i < 8; i++)
                if (8 * j + i < G) v[i] = zeros[o * G + 8 * j + i];
            qzeros[o * zw + j] = awq_pack_word_seq(v);
        }
        for (int64_t g = 0; g < zw * 8; g++) scales_gemv[o * zw * 8 + g] = g < G ? scales[o * G + g] : 0;
    }
    return AWQ_OK;
}

awq_status awq_unpack_gemv(awq_runtime *rt, int64_t out, int64_t in, int64_t gs, const int32_t *qweight,
                           const int32_t *qzeros, const uint16_t *scales_gemv, uint8_t *codes,
                           uint16_t *scales, uint8_t *zeros) {
    awq_pack_shapes sh;
    awq_status st = awq_pack_check(rt, AWQ_FORMAT_GEMV, out, in, gs, &sh);
    if (st != AWQ_OK) return st;
    const int64_t G = in / gs, nw = in / 8, zw = sh.qzeros[1];
#pragma omp parallel for schedule(static)
    for (int64_t o = 0; o < out; o++) {
        for (int64_t k = 0; k < in; k++)
            codes[o * in + k] = awq_unpack_nibble_seq(qweight[o * nw + k / 8], (int)(k % 8));
        for (int64_t g = 0; g < G; g++) {
            zeros[o * G + g] = awq_unpack_nibble_seq(qzeros[o * zw + g / 8], (int)(g % 8));
            scales[o * G + g] = scales_gemv[o * zw * 8 + g];
        }
    }
    return AWQ_OK;
}

awq_status awq_gemv_to_gemm(awq_runtime *rt, int64_t out, int64_t in, int64_t gs, const int32_t *qweight_gemv,
                            const int32_t *qzeros_gemv, const uint16_t *scales_gemv, int32_t *qweight,
                            int32_t *qzeros, uint16_t *scales_gemm) {
    awq_pack_shapes sh;
    awq_status st = awq_pack_check(rt, AWQ_FORMAT_GEMV, out, in, gs, &sh);
    if (st != AWQ_OK) return st;
    const int64_t G = in / gs, nw = in / 8, zw = sh.qzeros[1], nc = out / 8;
    /* Each block of 8 output rows c: 8 sequential GEMV words (one per row, inputs 8kw..8kw+7)
     * become 8 GEMM words (one per input, outputs 8c..8c+7). */
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < nc; c++) {
        uint8_t v[8];
        for (int64_t kw = 0; kw < nw; kw++) {
            int32_t rw[8];
            for (int j = 0; j < 8; j++) rw[j] = qweight_gemv[(8 * c + j) * nw + kw];
            for (int kk = 0; kk < 8; kk++) {
                for (int j = 0; j < 8; j++) v[j] = awq_unpack_nibble_seq(rw[j], kk);
                qweight[(8 * kw + kk) * nc + c] = awq_pack_word(v);
            }
        }
        for (int64_t g = 0; g < G; g++) {
            for (int j = 0; j < 8; j++)
                v[j] = awq_unpack_nibble_seq(qzeros_gemv[(8 * c + j) * zw + g / 8], (int)(g % 8));
            qzeros[g * nc + c] = awq_pack_word(v);
        }
    }
    for (int64_t o = 0; o < out; o++)
        for (int64_t g = 0; g < G; g++) scales_gemm[g * out + o] = scales_gemv[o * zw * 8 + g];
    return AWQ_OK;
}

void awq_q8_0_quantize_row(const float *w, int64_t n, int8_t *qs, uint16_t *d16) {
    for (int64_t b = 0; b < n / 32; b++) {
        const float *x = w + 32 * b;
        float amax = 0.0f;
        for (int k = 0; k < 32; k++) {
            float a = fabsf(x[k]);
            if (a > amax && a <= 3.4028234663852886e38f) amax = a; /* skips NaN and inf */
        }
        float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        d16[b] = awq_f32_to_f16(d);
        for (int k = 0; k < 32; k++) {
            float v = roundf(x[k] * id);
            qs[32 * b + k] = v >= -127.0f && v <= 127.0f ? (int8_t)v : (int8_t)0;
        }
    }
}
