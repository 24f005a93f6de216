/*
 * matmul.c - y = x W^T (+ bias) for dense F32/F16/BF16 weights and for AWQ 4-bit weights
 * (dequantized on the fly), and the Gram matrix x^T x.
 *
 * Blocking: threads take tiles of TILE weight rows (output columns); a tile is converted (or
 * dequantized) to fp32 once into a per-thread buffer and reused for every x row, so the cost of
 * conversion is amortised over the batch.
 */
#include <stdlib.h>

#include "kcommon.h"
#include "../threadpool.h"

#define TILE 8
/* With a prepared weight, the repacked kernel (w4gemv.c) takes every batch on AVX-512 (it
 * reuses each unpacked weight for 3 rows: ~80 GFLOP/s per Zen 4 core vs ~40 for the tiles) and
 * batches up to this many rows elsewhere. */
#define W4_GEMV_MAX_ROWS 16

/* Converts weight rows [o0, o0+nr) into tile (nr, in) F32. */
typedef void (*tile_fn)(const void *w, int64_t o0, int64_t nr, int64_t in, float *tile);

static void dense_tile(const void *wv, int64_t o0, int64_t nr, int64_t in, float *tile) {
    const awq_tensor *w = wv;
    for (int64_t r = 0; r < nr; r++) k_row_to_f32(tile + r * in, k_row(w, o0 + r), w->type, in);
}

/* Dequantizes 8 output columns 8c..8c+7 of an AWQ GEMM linear: (q - z) * s. */
static void w4_tile(const void *wv, int64_t o0, int64_t nr, int64_t in, float *tile) {
    const awq_qlinear *w = wv;
    int64_t c = o0 / 8, ow = w->out / 8, gs = w->group_size;
    const int32_t *qw = (const int32_t *)((const char *)w->qweight.data + w->qweight.offs);
    const int32_t *qz = (const int32_t *)((const char *)w->qzeros.data + w->qzeros.offs);
    const uint16_t *sc = (const uint16_t *)((const char *)w->scales.data + w->scales.offs);
    for (int64_t g = 0; g < in / gs; g++) {
        int32_t zw = qz[g * ow + c];
        float s[8], z[8];
        for (int j = 0; j < 8; j++) {
            s[j] = awq_f16_to_f32(sc[g * w->out + 8 * c + j]);
            z[j] = (float)awq_unpack_nibble(zw, j);
        }
        for (int64_t k = g * gs; k < (g + 1) * gs; k++) {
            int32_t word = qw[k * ow + c];
            for (int j = 0; j < nr; j++) tile[j * in + k] = ((float)awq_unpack_nibble(word, j) - z[j]) * s[j];
        }
    }
}

static awq_status tiled_matmul(awq_backend_ctx *ctx, awq_tensor *y, const awq_tensor *x, const void *w,
                               tile_fn fn, int64_t out, int64_t in, const awq_tensor *bias) {
    int64_t n = awq_tensor_rows(x);
    int64_t n_tiles = (out + TILE - 1) / TILE;
    int fail = 0;
#pragma omp parallel num_threads(ctx->n_threads)
    {
        float *tile = malloc((size_t)(TILE * in) * sizeof(float));
        if (!tile) {
#pragma omp atomic write
            fail = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t ti = 0; ti < n_tiles; ti++) {
            if (fail) continue;
            int64_t o0 = ti * TILE, nr = out - o0 < TILE ? out - o0 : TILE;
            fn(w, o0, nr, in, tile);
            float b[TILE] = {0};
            if (bias && bias->data)
                for (int64_t r = 0; r < nr; r++)
                    b[r] = k_load((const char *)bias->data + bias->offs, bias->type, o0 + r);
            for (int64_t i = 0; i < n; i++) {
                const float *xi = (const float *)k_row(x, i);
                float *yi = (float *)k_row(y, i);
                if (nr == TILE) {
                    float acc[TILE];
                    k_dot8(xi, tile, in, in, acc);
                    for (int64_t r = 0; r < nr; r++) yi[o0 + r] = acc[r] + b[r];
                } else {
                    for (int64_t r = 0; r < nr; r++) yi[o0 + r] = k_dot(xi, tile + r * in, in) + b[r];
                }
            }
        }
        free(tile);
    }
    if (fail) {
        awq_cpu_error(ctx, "matmul: cannot allocate a %lld-float tile", (long long)(TILE * in));
        return AWQ_ERR_OUT_OF_MEMORY;
    }
    return AWQ_OK;
}

struct dense_job {
    awq_tensor *y;
    const awq_tensor *x, *w, *bias;
    int64_t n, in;
};

/* Weight rows (outputs) [lo, hi) of a small-batch dense matmul, one stream per row. */
static void dense_rows(void *arg, int64_t lo, int64_t hi) {
    const struct dense_job *j = arg;
    const awq_tensor *w = j->w, *bias = j->bias;
    int64_t in = j->in;
    for (int64_t o = lo; o < hi; o++) {
        const char *wr = k_row(w, o);
        float b = bias && bias->data ? k_load((const char *)bias->data + bias->offs, bias->type, o) : 0.0f;
        for (int64_t i = 0; i < j->n; i++) {
            const float *xi = (const float *)k_row(j->x, i);
            float d = w->type == AWQ_DTYPE_F16 ? k_dot_f16(xi, (const uint16_t *)wr, in)
                : w->type == AWQ_DTYPE_BF16    ? k_dot_bf16(xi, (const uint16_t *)wr, in)
                                               : k_dot_f32(xi, (const float *)wr, in);
            ((float *)k_row(j->y, i))[o] = d + b;
        }
    }
}

awq_status awq_cpu_matmul(awq_backend_ctx *ctx, awq_tensor *y, const awq_tensor *x, const awq_tensor *w,
                          const awq_tensor *bias) {
    int64_t in = awq_tensor_cols(x), out = awq_tensor_rows(w);
    K_REQUIRE(ctx, x->type == AWQ_DTYPE_F32 && y->type == AWQ_DTYPE_F32 && k_is_float(w->type),
              "matmul: x and y must be F32, w F32/F16/BF16");
    K_REQUIRE(ctx, awq_tensor_is_rowwise(x) && awq_tensor_is_rowwise(y) && awq_tensor_is_rowwise(w),
              "matmul: tensors must be rowwise");
    K_REQUIRE(ctx,
              awq_tensor_cols(w) == in && awq_tensor_cols(y) == out &&
                  awq_tensor_rows(y) == awq_tensor_rows(x),
              "matmul: shape mismatch: x (%lld, %lld), w (%lld, %lld), y (%lld, %lld)",
              (long long)awq_tensor_rows(x), (long long)in, (long long)out, (long long)awq_tensor_cols(w),
              (long long)awq_tensor_rows(y), (long long)awq_tensor_cols(y));
    K_REQUIRE(ctx, !bias || !bias->data || (k_is_float(bias->type) && awq_tensor_nelem(bias) == out),
              "matmul: bias must have out elements");
    int64_t n = awq_tensor_rows(x);
    if (n <= 4) {
        /* Decode: stream each weight row once, converting inside the dot product. Dynamic blocks
         * of rows so that a preempted thread's share is taken over (results do not depend on
         * the split). */
        struct dense_job j = {y, x, w, bias, n, in};
        awq_tpool_for(ctx->pool, out, 128, dense_rows, &j);
        return AWQ_OK;
    }
    return tiled_matmul(ctx, y, x, w, dense_tile, out, in, bias);
}

static awq_status w4_check(awq_backend_ctx *ctx, const awq_tensor *y, const awq_tensor *x,
                           const awq_qlinear *w) {
    int64_t in = w->in, out = w->out;
    K_REQUIRE(ctx, x->type == AWQ_DTYPE_F32 && y->type == AWQ_DTYPE_F32, "matmul_w4a16: x and y must be F32");
    K_REQUIRE(ctx, out % 8 == 0 && w->group_size > 0 && in % w->group_size == 0,
              "matmul_w4a16: out %% 8 and in %% group_size must be 0");
    K_REQUIRE(ctx,
              awq_tensor_cols(x) == in && awq_tensor_cols(y) == out &&
                  awq_tensor_rows(y) == awq_tensor_rows(x),
              "matmul_w4a16: shape mismatch");
    K_REQUIRE(ctx,
              w->qweight.type == AWQ_DTYPE_I32 && w->qzeros.type == AWQ_DTYPE_I32 &&
                  w->scales.type == AWQ_DTYPE_F16 && awq_tensor_is_contiguous(&w->qweight) &&
                  awq_tensor_is_contiguous(&w->qzeros) && awq_tensor_is_contiguous(&w->scales),
              "matmul_w4a16: qweight/qzeros I32 and scales F16, contiguous");
    K_REQUIRE(ctx, awq_tensor_is_rowwise(x) && awq_tensor_is_rowwise(y),
              "matmul_w4a16: tensors must be rowwise");
    return AWQ_OK;
}

awq_status awq_cpu_matmul_w4a16(awq_backend_ctx *ctx, awq_tensor *y, const awq_tensor *x,
                                const awq_qlinear *w) {
    awq_status st = w4_check(ctx, y, x, w);
    if (st != AWQ_OK) return st;
    int64_t in = w->in, out = w->out;
    if (k_w4a8_prepared_ok(w)) return k_w4a8_gemv_multi(ctx, 1, &y, x, &w);
    if (k_w4_prepared_ok(w) && (k_isa() == K_ISA_AVX512 || awq_tensor_rows(x) <= W4_GEMV_MAX_ROWS))
        return k_w4_gemv(ctx, y, x, w);
    return tiled_matmul(ctx, y, x, w, w4_tile, out, in, &w->bias);
}

awq_status awq_cpu_matmul_w4a16_multi(awq_backend_ctx *ctx, int32_t nw, awq_tensor *const *y,
                                      const awq_tensor *x, const awq_qlinear *const *w) {
    K_REQUIRE(ctx, nw >= 1 && nw <= 3 && y && w, "matmul_w4a16_multi: 1..3 linears");
    bool fast = k_isa() == K_ISA_AVX512 || awq_tensor_rows(x) <= W4_GEMV_MAX_ROWS;
    bool a8 = true;
    for (int32_t i = 0; i < nw; i++) {
        awq_status st = w4_check(ctx, y[i], x, w[i]);
        if (st != AWQ_OK) return st;
        K_REQUIRE(ctx, w[i]->in == w[0]->in && w[i]->group_size == w[0]->group_size,
                  "matmul_w4a16_multi: the linears must share in and group_size");
        fast = fast && k_w4_prepared_ok(w[i]);
        a8 = a8 && k_w4a8_prepared_ok(w[i]);
    }
    if (a8) return k_w4a8_gemv_multi(ctx, nw, y, x, w);
    if (fast) return k_w4_gemv_multi(ctx, nw, y, x, w);
    for (int32_t i = 0; i < nw; i++) {
        awq_status st = awq_cpu_matmul_w4a16(ctx, y[i], x, w[i]);
        if (st != AWQ_OK) return st;
    }
    return AWQ_OK;
}

/* ---- Q8_0 weights (matmul_q8) -------------------------------------------------------------- */

typedef struct q8_weight {
    const awq_tensor *qs, *d; /* (out, in) I8, (out, in/32) F16 */
} q8_weight;

/* Dequantizes weight rows [o0, o0+nr): tile[r][k] = qs[o0+r][k] * d[o0+r][k/32]. */
static void q8_tile(const void *wv, int64_t o0, int64_t nr, int64_t in, float *tile) {
    const q8_weight *w = wv;
    for (int64_t r = 0; r < nr; r++) {
        const int8_t *q = (const int8_t *)k_row(w->qs, o0 + r);
        const uint16_t *d = (const uint16_t *)k_row(w->d, o0 + r);
        for (int64_t b = 0; b < in / 32; b++) {
            float s = awq_f16_to_f32(d[b]);
            for (int64_t k = 32 * b; k < 32 * b + 32; k++) tile[r * in + k] = (float)q[k] * s;
        }
    }
}

awq_status awq_cpu_matmul_q8(awq_backend_ctx *ctx, awq_tensor *y, const awq_tensor *x, const awq_tensor *qs,
                             const awq_tensor *d) {
    K_REQUIRE(ctx, x && y && qs && d && qs->data && d->data, "matmul_q8: NULL tensor");
    int64_t in = awq_tensor_cols(x), out = awq_tensor_rows(qs), n = awq_tensor_rows(x);
    K_REQUIRE(ctx,
              x->type == AWQ_DTYPE_F32 && y->type == AWQ_DTYPE_F32 && qs->type == AWQ_DTYPE_I8 &&
                  d->type == AWQ_DTYPE_F16,
              "matmul_q8: x and y must be F32, qs I8, d F16");
    K_REQUIRE(ctx,
              awq_tensor_is_rowwise(x) && awq_tensor_is_rowwise(y) && awq_tensor_is_rowwise(qs) &&
                  awq_tensor_is_rowwise(d),
              "matmul_q8: tensors must be rowwise");
    K_REQUIRE(ctx,
              in > 0 && in % 32 == 0 && awq_tensor_cols(qs) == in && awq_tensor_rows(d) == out &&
                  awq_tensor_cols(d) == in / 32 && awq_tensor_cols(y) == out && awq_tensor_rows(y) == n,
              "matmul_q8: shape mismatch: x (%lld, %lld), qs (%lld, %lld), d (%lld, %lld), y (%lld, %lld) "
              "(in must be a multiple of 32)",
              (long long)n, (long long)in, (long long)out, (long long)awq_tensor_cols(qs),
              (long long)awq_tensor_rows(d), (long long)awq_tensor_cols(d), (long long)awq_tensor_rows(y),
              (long long)awq_tensor_cols(y));
    if (n <= 4) return k_q8_gemv(ctx, y, x, qs, d);
    q8_weight w = {qs, d};
    return tiled_matmul(ctx, y, x, &w, q8_tile, out, in, NULL);
}

awq_status awq_cpu_gram(awq_backend_ctx *ctx, awq_tensor *g, const awq_tensor *x, bool accumulate) {
    int64_t n = awq_tensor_rows(x), c = awq_tensor_cols(x);
    K_REQUIRE(ctx,
              x->type == AWQ_DTYPE_F32 && g->type == AWQ_DTYPE_F32 && awq_tensor_rows(g) == c &&
                  awq_tensor_cols(g) == c && awq_tensor_is_rowwise(x) && awq_tensor_is_rowwise(g),
              "gram: g (c, c) and x (n, c) F32");
    /* Each thread owns a block of rows of g and streams over all tokens (rank-1 updates). */
#pragma omp parallel for schedule(dynamic, 1) num_threads(ctx->n_threads)
    for (int64_t i0 = 0; i0 < c; i0 += 16) {
        int64_t i1 = i0 + 16 < c ? i0 + 16 : c;
        for (int64_t i = i0; i < i1; i++) {
            float *gi = (float *)k_row(g, i);
            if (!accumulate) memset(gi, 0, (size_t)c * sizeof(float));
        }
        for (int64_t t = 0; t < n; t++) {
            const float *xt = (const float *)k_row(x, t);
            for (int64_t i = i0; i < i1; i++) {
                k_axpy((float *)k_row(g, i), xt[i], xt, c);
            }
        }
    }
    return AWQ_OK;
}
