/*
 * quantize.c - AWQ quantization ops: the pseudo-quantizer (docs/algorithm.md 7.2), the final fp16
 * quantization (7.4), the clip search (6), column scaling, statistics and scalar reductions.
 */
#include <stdlib.h>

#include <omp.h>

#include "kcommon.h"

/* Group-wise asymmetric pseudo-quantization of v[0..gs) in place (docs/algorithm.md 7.2, fp32). */
static void pseudo_quant_group(float *v, int64_t gs, int qmax) {
    float mx = v[0], mn = v[0];
    for (int64_t k = 1; k < gs; k++) {
        mx = v[k] > mx ? v[k] : mx;
        mn = v[k] < mn ? v[k] : mn;
    }
    float d = mx - mn;
    float s = (d > 1e-5f ? d : 1e-5f) / (float)qmax;
    float z = -nearbyintf(mn / s);
    z = z < 0.0f ? 0.0f : z > (float)qmax ? (float)qmax : z;
    for (int64_t k = 0; k < gs; k++) {
        float q = nearbyintf(v[k] / s) + z;
        q = q < 0.0f ? 0.0f : q > (float)qmax ? (float)qmax : q;
        v[k] = (q - z) * s;
    }
}

static awq_status check_quant(awq_backend_ctx *ctx, const awq_quant_desc *q, int64_t in) {
    K_REQUIRE(ctx, q && q->bits >= 2 && q->bits <= 8 && q->zero_point,
              "quantization: only asymmetric 2..8-bit is supported");
    K_REQUIRE(ctx, q->group_size > 0 && in % q->group_size == 0,
              "quantization: in_features %lld not divisible by group size %d", (long long)in,
              q ? q->group_size : 0);
    return AWQ_OK;
}

awq_status awq_cpu_fake_quant(awq_backend_ctx *ctx, awq_tensor *wq, const awq_tensor *w, const awq_tensor *s,
                              const awq_tensor *clip, const awq_quant_desc *q) {
    int64_t out = awq_tensor_rows(w), in = awq_tensor_cols(w);
    awq_status st = check_quant(ctx, q, in);
    if (st != AWQ_OK) return st;
    int64_t gs = q->group_size, G = in / gs;
    K_REQUIRE(ctx,
              w->type == AWQ_DTYPE_F32 && wq->type == AWQ_DTYPE_F32 && awq_tensor_rows(wq) == out &&
                  awq_tensor_cols(wq) == in && awq_tensor_is_rowwise(w) && awq_tensor_is_rowwise(wq),
              "fake_quant: w, wq (out, in) F32");
    K_REQUIRE(ctx, !s || (s->type == AWQ_DTYPE_F32 && awq_tensor_nelem(s) == in), "fake_quant: s (in,) F32");
    K_REQUIRE(ctx,
              !clip ||
                  (clip->type == AWQ_DTYPE_F32 && awq_tensor_rows(clip) == out &&
                   awq_tensor_cols(clip) == G && awq_tensor_is_rowwise(clip)),
              "fake_quant: clip (out, in/gs) F32");
    const float *sv = s ? (const float *)((const char *)s->data + s->offs) : NULL;
    int qmax = (1 << q->bits) - 1;
#pragma omp parallel for num_threads(ctx->n_threads)
    for (int64_t o = 0; o < out; o++) {
        const float *wr = (const float *)k_row(w, o);
        float *qr = (float *)k_row(wq, o);
        const float *cr = clip ? (const float *)k_row(clip, o) : NULL;
        float buf[4096];
        for (int64_t g = 0; g < G; g++) {
            float *v = gs <= 4096 ? buf : qr + g * gs; /* large groups: work in place */
            for (int64_t k = 0; k < gs; k++) {
                float x = wr[g * gs + k];
                if (sv) x *= sv[g * gs + k];
                if (cr) x = x > cr[g] ? cr[g] : x < -cr[g] ? -cr[g] : x;
                v[k] = x;
            }
            pseudo_quant_group(v, gs, qmax);
            for (int64_t k = 0; k < gs; k++) qr[g * gs + k] = sv ? v[k] / sv[g * gs + k] : v[k];
        }
    }
    return AWQ_OK;
}

/* fp16 arithmetic: every operation rounded to binary16. */
static inline float h(float x) { return awq_round_f16(x); }

awq_status awq_cpu_quantize_w4(awq_backend_ctx *ctx, awq_tensor *codes, awq_tensor *scales, awq_tensor *zeros,
                               const awq_tensor *w, const awq_quant_desc *q) {
    int64_t out = awq_tensor_rows(w), in = awq_tensor_cols(w);
    awq_status st = check_quant(ctx, q, in);
    if (st != AWQ_OK) return st;
    int64_t gs = q->group_size, G = in / gs;
    K_REQUIRE(ctx, q->bits == 4, "quantize_w4: bits must be 4");
    K_REQUIRE(ctx,
              w->type == AWQ_DTYPE_F16 && codes->type == AWQ_DTYPE_U8 && scales->type == AWQ_DTYPE_F16 &&
                  zeros->type == AWQ_DTYPE_U8,
              "quantize_w4: w F16, codes U8, scales F16, zeros U8");
    K_REQUIRE(ctx,
              awq_tensor_rows(codes) == out && awq_tensor_cols(codes) == in &&
                  awq_tensor_rows(scales) == out && awq_tensor_cols(scales) == G &&
                  awq_tensor_rows(zeros) == out && awq_tensor_cols(zeros) == G && awq_tensor_is_rowwise(w) &&
                  awq_tensor_is_rowwise(codes) && awq_tensor_is_rowwise(scales) &&
                  awq_tensor_is_rowwise(zeros),
              "quantize_w4: shape mismatch");
    const float min_range = h(1e-5f); /* clamp_min(1e-5) on an fp16 tensor */
#pragma omp parallel for num_threads(ctx->n_threads)
    for (int64_t o = 0; o < out; o++) {
        const uint16_t *wr = (const uint16_t *)k_row(w, o);
        uint8_t *cr = (uint8_t *)k_row(codes, o), *zr = (uint8_t *)k_row(zeros, o);
        uint16_t *sr = (uint16_t *)k_row(scales, o);
        for (int64_t g = 0; g < G; g++) {
            const uint16_t *v = wr + g * gs;
            float mx = awq_f16_to_f32(v[0]), mn = mx;
            for (int64_t k = 1; k < gs; k++) {
                float x = awq_f16_to_f32(v[k]);
                mx = x > mx ? x : mx;
                mn = x < mn ? x : mn;
            }
            float range = h(mx - mn);
            if (range < min_range) range = min_range;
            float S = h(range / 15.0f);
            float Z = -nearbyintf(h(mn / S));
            Z = Z < 0.0f ? 0.0f : Z > 15.0f ? 15.0f : Z;
            sr[g] = awq_f32_to_f16(S);
            zr[g] = (uint8_t)Z;
            for (int64_t k = 0; k < gs; k++) {
                float qv = h(nearbyintf(h(awq_f16_to_f32(v[k]) / S)) + Z);
                qv = qv < 0.0f ? 0.0f : qv > 15.0f ? 15.0f : qv;
                cr[g * gs + k] = (uint8_t)qv;
            }
        }
    }
    return AWQ_OK;
}

awq_status awq_cpu_reduce(awq_backend_ctx *ctx, awq_tensor *y, const awq_tensor *x, awq_reduce_op op,
                          int32_t group) {
    int64_t n = awq_tensor_rows(x), c = awq_tensor_cols(x);
    K_REQUIRE(ctx,
              x->type == AWQ_DTYPE_F32 && y->type == AWQ_DTYPE_F32 && awq_tensor_nelem(y) == c &&
                  awq_tensor_is_rowwise(x) && awq_tensor_is_contiguous(y),
              "reduce: x (n, c) F32 -> y (c,) F32");
    K_REQUIRE(ctx, op != AWQ_REDUCE_WMEAN_GROUPS || (group > 0 && c % group == 0),
              "reduce: group %d must divide %lld", group, (long long)c);
    float *yv = (float *)((char *)y->data + y->offs);
    int nt = ctx->n_threads;
    double *part = calloc((size_t)nt * (size_t)c, sizeof(double));
    if (!part) {
        awq_cpu_error(ctx, "reduce: out of memory");
        return AWQ_ERR_OUT_OF_MEMORY;
    }
#pragma omp parallel num_threads(nt)
    {
        int tid = omp_get_thread_num();
        double *acc = part + (size_t)tid * (size_t)c;
        if (op == AWQ_REDUCE_MAX_ABS_COLS)
            for (int64_t j = 0; j < c; j++) acc[j] = 0.0;
#pragma omp for
        for (int64_t i = 0; i < n; i++) {
            const float *r = (const float *)k_row(x, i);
            if (op == AWQ_REDUCE_MEAN_ABS_COLS) {
                for (int64_t j = 0; j < c; j++) acc[j] += fabsf(r[j]);
            } else if (op == AWQ_REDUCE_MAX_ABS_COLS) {
                for (int64_t j = 0; j < c; j++) acc[j] = fabsf(r[j]) > acc[j] ? fabsf(r[j]) : acc[j];
            } else {
                for (int64_t g0 = 0; g0 < c; g0 += group) {
                    float m = 0.0f;
                    for (int64_t j = g0; j < g0 + group; j++) m = fabsf(r[j]) > m ? fabsf(r[j]) : m;
                    float inv = 1.0f / (m + 1e-6f);
                    for (int64_t j = g0; j < g0 + group; j++) acc[j] += fabsf(r[j]) * inv;
                }
            }
        }
    }
    for (int64_t j = 0; j < c; j++) {
        double v = 0;
        for (int t = 0; t < nt; t++) {
            double p = part[(size_t)t * (size_t)c + (size_t)j];
            v = op == AWQ_REDUCE_MAX_ABS_COLS ? (p > v ? p : v) : v + p;
        }
        yv[j] = (float)(op == AWQ_REDUCE_MAX_ABS_COLS ? v : v / (double)n);
    }
    free(part);
    return AWQ_OK;
}

awq_status awq_cpu_scalar(awq_backend_ctx *ctx, double *out, const awq_tensor *a, const awq_tensor *b,
                          awq_scalar_op op) {
    int64_t n = awq_tensor_rows(a), c = awq_tensor_cols(a);
    K_REQUIRE(ctx,
              a->type == AWQ_DTYPE_F32 && b->type == AWQ_DTYPE_F32 && awq_tensor_rows(b) == n &&
                  awq_tensor_cols(b) == c && awq_tensor_is_rowwise(a) && awq_tensor_is_rowwise(b),
              "scalar: a, b same shape F32");
    double total = 0;
#pragma omp parallel for reduction(+ : total) num_threads(ctx->n_threads)
    for (int64_t i = 0; i < n; i++) {
        const float *ar = (const float *)k_row(a, i), *br = (const float *)k_row(b, i);
        double s = 0;
        if (op == AWQ_SCALAR_SSE)
            for (int64_t j = 0; j < c; j++) {
                double d = (double)ar[j] - br[j];
                s += d * d;
            }
        else
            for (int64_t j = 0; j < c; j++) s += (double)ar[j] * br[j];
        total += s;
    }
    *out = total;
    return AWQ_OK;
}

awq_status awq_cpu_clip_search(awq_backend_ctx *ctx, awq_tensor *best_max, const awq_tensor *w,
                               const awq_tensor *x, const awq_quant_desc *q, int32_t n_grid,
                               int32_t n_steps) {
    int64_t out = awq_tensor_rows(w), in = awq_tensor_cols(w), n = awq_tensor_rows(x);
    awq_status st = check_quant(ctx, q, in);
    if (st != AWQ_OK) return st;
    int64_t gs = q->group_size, G = in / gs;
    K_REQUIRE(ctx,
              w->type == AWQ_DTYPE_F32 && x->type == AWQ_DTYPE_F32 && best_max->type == AWQ_DTYPE_F32 &&
                  awq_tensor_cols(x) == in && awq_tensor_rows(best_max) == out &&
                  awq_tensor_cols(best_max) == G && awq_tensor_is_rowwise(w) && awq_tensor_is_rowwise(x) &&
                  awq_tensor_is_rowwise(best_max) && gs <= 1024 && n_grid > 0,
              "clip_search: w (out, in), x (n, in), best_max (out, in/gs) F32, gs <= 1024");
    int qmax = (1 << q->bits) - 1;
    K_REQUIRE(ctx, n_steps <= 16, "clip_search: at most 16 steps");
    const float *xg0 = (const float *)k_row(x, 0);
    int64_t ldx = awq_tensor_row_stride(x) / (int64_t)sizeof(float);
#pragma omp parallel for schedule(dynamic, 4) num_threads(ctx->n_threads)
    for (int64_t o = 0; o < out; o++) {
        const float *wr = (const float *)k_row(w, o);
        float *br = (float *)k_row(best_max, o);
        float dqbuf[16 * 1024];
        float wc[1024];
        for (int64_t g = 0; g < G; g++) {
            const float *wg = wr + g * gs;
            float m = 0.0f;
            for (int64_t k = 0; k < gs; k++) m = fabsf(wg[k]) > m ? fabsf(wg[k]) : m;
            /* dq[k][c] = Q(clamp(w, -t_c, t_c))[k] - w[k] for each candidate t_c (columns >= n_steps 0) */
            float *dq = dqbuf;
            float cand[16];
            memset(dq, 0, sizeof(float) * 16 * (size_t)gs);
            for (int32_t i = 0; i < n_steps; i++) {
                float c = m * (1.0f - (float)i / (float)n_grid);
                cand[i] = c;
                for (int64_t k = 0; k < gs; k++) wc[k] = wg[k] > c ? c : wg[k] < -c ? -c : wg[k];
                pseudo_quant_group(wc, gs, qmax);
                for (int64_t k = 0; k < gs; k++) dq[k * 16 + i] = wc[k] - wg[k];
            }
            /* err_c = mean over tokens of (x . (Q(clamp(w)) - w))^2 over this group */
            double err[16] = {0};
            k_sq_err16(xg0 + g * gs, ldx, n, dq, gs, err);
            double best = 1e9;
            float best_c = m;
            for (int32_t i = 0; i < n_steps; i++) {
                double e = err[i] / (double)n;
                if (e < best) {
                    best = e;
                    best_c = cand[i];
                }
            }
            br[g] = best_c;
        }
    }
    return AWQ_OK;
}
