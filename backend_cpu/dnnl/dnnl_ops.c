/*
 * dnnl_ops.c - matmul, matmul_w4a16 (prefill) and gram of the cpu-dnnl backend on oneDNN 2.6
 * f32 matmul primitives (brgemm on AVX-512/AVX2 machines).
 *
 * Weights that are not fp32 are converted (F16/BF16) or dequantized (AWQ 4-bit) into an fp32
 * scratch tile of at most DNNL_TILE_BYTES, one tile of output columns at a time, and each tile
 * is one primitive execution writing its columns of y. Everything stays fp32 by default; with
 * AWQ_PRECISION_BF16 (awq_backend_config.matmul_precision) on a CPU with bf16 dot products
 * (AVX512-BF16, AMX) x and the weight tiles are rounded to bfloat16 (nearest even) and oneDNN
 * multiplies them with fp32 accumulation: about twice the fp32 throughput, outside the exact
 * contract (its rounding exceeds the fp32 matmul tolerance ~100x), so only on request.
 * Small batches, unusual layouts and anything oneDNN declines go to the reference kernels.
 */
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "dnnl_internal.h"
#include "kernels.h"
#include "kernels/kcommon.h"

/* ---- primitive cache ------------------------------------------------------------------- */

void awq_dnnl_cache_clear(dnnl_state *s) {
    for (int i = 0; i < DNNL_CACHE_SIZE; i++) {
        if (s->cache[i].prim) dnnl_primitive_destroy(s->cache[i].prim);
        memset(&s->cache[i], 0, sizeof s->cache[i]);
    }
}

static dnnl_status_t mdt(dnnl_memory_desc_t *md, int64_t d0, int64_t d1, int64_t s0, int64_t s1,
                         dnnl_data_type_t t) {
    dnnl_dims_t dims = {d0, d1}, strides = {s0, s1};
    return dnnl_memory_desc_init_by_strides(md, 2, dims, t, strides);
}
static dnnl_status_t md2(dnnl_memory_desc_t *md, int64_t d0, int64_t d1, int64_t s0, int64_t s1) {
    return mdt(md, d0, d1, s0, s1, dnnl_f32);
}

/* Creates the matmul primitive for k (NULL when oneDNN declines; *why gets the status). */
static dnnl_primitive_t mm_create(dnnl_state *s, const dnnl_mm_key *k, dnnl_status_t *why) {
    dnnl_memory_desc_t a, b, bias, c;
    dnnl_matmul_desc_t mm;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t prim = NULL;
    dnnl_data_type_t ab = k->bf16 ? dnnl_bf16 : dnnl_f32;
    dnnl_status_t st = mdt(&a, k->M, k->K, k->sa0, k->sa1, ab);
    if (st == dnnl_success) st = mdt(&b, k->K, k->N, k->sb0, k->sb1, ab);
    if (st == dnnl_success) st = md2(&bias, 1, k->N, k->N, 1);
    if (st == dnnl_success) st = md2(&c, k->M, k->N, k->ldc, 1);
    if (st == dnnl_success) st = dnnl_matmul_desc_init(&mm, &a, &b, k->bias ? &bias : NULL, &c);
    if (st == dnnl_success) st = dnnl_primitive_attr_create(&attr);
    if (st == dnnl_success && k->sum) {
        st = dnnl_post_ops_create(&po);
        if (st == dnnl_success) st = dnnl_post_ops_append_sum(po, 1.0f);
        if (st == dnnl_success) st = dnnl_primitive_attr_set_post_ops(attr, po);
    }
    if (st == dnnl_success) st = dnnl_primitive_desc_create(&pd, &mm, attr, s->engine, NULL);
    if (st == dnnl_success) st = dnnl_primitive_create(&prim, pd);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    *why = st;
    return st == dnnl_success ? prim : NULL;
}

static dnnl_primitive_t mm_get(dnnl_state *s, const dnnl_mm_key *k, dnnl_status_t *why) {
    int victim = 0;
    for (int i = 0; i < DNNL_CACHE_SIZE; i++) {
        dnnl_mm_entry *e = &s->cache[i];
        if (e->prim && memcmp(&e->key, k, sizeof *k) == 0) {
            e->used = ++s->clock;
            return e->prim;
        }
        if (!e->prim || (s->cache[victim].prim && e->used < s->cache[victim].used)) victim = i;
    }
    dnnl_primitive_t p = mm_create(s, k, why);
    if (!p) return NULL;
    dnnl_mm_entry *e = &s->cache[victim];
    if (e->prim) dnnl_primitive_destroy(e->prim);
    e->key = *k;
    e->prim = p;
    e->used = ++s->clock;
    return p;
}

/* Runs c (M, N) (+)= a (M, K) b (K, N) (+ bias) with the cached primitive for k. */
static dnnl_status_t mm_run(awq_backend_ctx *ctx, const dnnl_mm_key *k, const void *a, const void *b,
                            const float *bias, float *c) {
    dnnl_state *s = dnnl_st(ctx);
    int saved = omp_get_max_threads();
    omp_set_num_threads(ctx->n_threads); /* oneDNN sizes its OpenMP regions from this */
    dnnl_status_t st;
    dnnl_primitive_t p = mm_get(s, k, &st);
    if (p) {
        dnnl_memory_desc_t ma, mb, mbias, mc;
        mdt(&ma, k->M, k->K, k->sa0, k->sa1, k->bf16 ? dnnl_bf16 : dnnl_f32);
        mdt(&mb, k->K, k->N, k->sb0, k->sb1, k->bf16 ? dnnl_bf16 : dnnl_f32);
        md2(&mbias, 1, k->N, k->N, 1);
        md2(&mc, k->M, k->N, k->ldc, 1);
        dnnl_memory_t m[4] = {NULL, NULL, NULL, NULL};
        st = dnnl_memory_create(&m[0], &ma, s->engine, (void *)a);
        if (st == dnnl_success) st = dnnl_memory_create(&m[1], &mb, s->engine, (void *)b);
        if (st == dnnl_success) st = dnnl_memory_create(&m[2], &mc, s->engine, c);
        if (st == dnnl_success && k->bias) st = dnnl_memory_create(&m[3], &mbias, s->engine, (void *)bias);
        if (st == dnnl_success) {
            dnnl_exec_arg_t args[4] = {
                {DNNL_ARG_SRC, m[0]}, {DNNL_ARG_WEIGHTS, m[1]}, {DNNL_ARG_DST, m[2]}, {DNNL_ARG_BIAS, m[3]}};
            st = dnnl_primitive_execute(p, s->stream, k->bias ? 4 : 3, args);
            if (st == dnnl_success) st = dnnl_stream_wait(s->stream);
        }
        for (int i = 0; i < 4; i++)
            if (m[i]) dnnl_memory_destroy(m[i]);
    }
    omp_set_num_threads(saved);
    return st;
}

/* ---- scratch ---------------------------------------------------------------------------- */

static float *grow(awq_backend_ctx *ctx, float **p, size_t *cap, size_t n) {
    if (*cap >= n) return *p;
    float *q = NULL;
    if (posix_memalign((void **)&q, 64, n * sizeof(float)) != 0 || !q) {
        awq_cpu_error(ctx, "cpu-dnnl: cannot allocate %zu bytes of scratch", n * sizeof(float));
        return NULL;
    }
    free(*p);
    *p = q;
    *cap = n;
    return q;
}

static uint16_t *grow16(awq_backend_ctx *ctx, uint16_t **p, size_t *cap, size_t n) {
    if (*cap >= n) return *p;
    uint16_t *q = NULL;
    if (posix_memalign((void **)&q, 64, n * sizeof(uint16_t)) != 0 || !q) {
        awq_cpu_error(ctx, "cpu-dnnl: cannot allocate %zu bytes of scratch", n * sizeof(uint16_t));
        return NULL;
    }
    free(*p);
    *p = q;
    *cap = n;
    return q;
}

/* dst (rows, cols) contiguous bf16 = src rows (stride lds floats) rounded to nearest even. */
static void rows_to_bf16(awq_backend_ctx *ctx, uint16_t *dst, const float *src, int64_t rows, int64_t cols,
                         int64_t lds) {
#pragma omp parallel for schedule(static) num_threads(ctx->n_threads) if (rows * cols > 65536)
    for (int64_t r = 0; r < rows; r++) awq_row_from_f32(dst + r * cols, AWQ_DTYPE_BF16, src + r * lds, cols);
}

/* x (n, in) rounded to bf16 into s->xb (contiguous); NULL when out of memory. */
static const uint16_t *x_bf16(awq_backend_ctx *ctx, const float *x, int64_t n, int64_t in, int64_t ldx) {
    dnnl_state *s = dnnl_st(ctx);
    uint16_t *xb = grow16(ctx, &s->xb, &s->xb_cap, (size_t)(n * in));
    if (xb) rows_to_bf16(ctx, xb, x, n, in, ldx);
    return xb;
}

/* Bias (out,) of any float type as fp32 in s->bias; NULL when there is none. */
static awq_status load_bias(awq_backend_ctx *ctx, const awq_tensor *bias, int64_t out, const float **b) {
    dnnl_state *s = dnnl_st(ctx);
    *b = NULL;
    if (!bias || !bias->data) return AWQ_OK;
    if (!grow(ctx, &s->bias, &s->bias_cap, (size_t)out)) return AWQ_ERR_OUT_OF_MEMORY;
    k_row_to_f32(s->bias, (const char *)bias->data + bias->offs, bias->type, out);
    *b = s->bias;
    return AWQ_OK;
}

static awq_status dnnl_fail(awq_backend_ctx *ctx, const char *op, dnnl_status_t st) {
    awq_cpu_error(ctx, "cpu-dnnl: %s: oneDNN failed (status %d)", op, (int)st);
    return AWQ_ERR_BACKEND;
}

/* ---- matmul ----------------------------------------------------------------------------- */

/* True when the shapes and types are the ones the reference would accept and oneDNN takes. */
static bool mm_fits(const awq_tensor *y, const awq_tensor *x, const awq_tensor *w, const awq_tensor *bias) {
    int64_t in = awq_tensor_cols(x), out = awq_tensor_rows(w);
    return x->type == AWQ_DTYPE_F32 && y->type == AWQ_DTYPE_F32 && k_is_float(w->type) &&
        awq_tensor_is_rowwise(x) && awq_tensor_is_rowwise(y) && awq_tensor_is_rowwise(w) &&
        awq_tensor_cols(w) == in && awq_tensor_cols(y) == out && awq_tensor_rows(y) == awq_tensor_rows(x) &&
        in > 0 && out > 0 && awq_tensor_rows(x) > 0 &&
        (!bias || !bias->data ||
         (k_is_float(bias->type) && awq_tensor_nelem(bias) == out && awq_tensor_is_contiguous(bias))) &&
        awq_tensor_row_stride(x) % 4 == 0 && awq_tensor_row_stride(y) % 4 == 0 &&
        awq_tensor_row_stride(w) % (int64_t)awq_dtype_size_inline(w->type) == 0;
}

awq_status awq_dnnl_matmul(awq_backend_ctx *ctx, awq_tensor *y, const awq_tensor *x, const awq_tensor *w,
                           const awq_tensor *bias) {
    if (!mm_fits(y, x, w, bias)) return awq_cpu_matmul(ctx, y, x, w, bias);
    int64_t n = awq_tensor_rows(x), in = awq_tensor_cols(x), out = awq_tensor_rows(w);
    if (n < (w->type == AWQ_DTYPE_F32 ? DNNL_MIN_ROWS_F32 : DNNL_MIN_ROWS_F16))
        return awq_cpu_matmul(ctx, y, x, w, bias);
    dnnl_state *s = dnnl_st(ctx);
    int64_t ldx = awq_tensor_row_stride(x) / 4, ldy = awq_tensor_row_stride(y) / 4;
    const float *xp = (const float *)awq_cpu_ptr(x);
    float *yp = (float *)awq_cpu_ptr(y);
    pthread_mutex_lock(&s->lock);
    const float *b = NULL;
    awq_status st = load_bias(ctx, bias, out, &b);
    dnnl_status_t ds = dnnl_success;
    const uint16_t *xb = NULL;
    if (st == AWQ_OK && s->bf16 && !(xb = x_bf16(ctx, xp, n, in, ldx))) st = AWQ_ERR_OUT_OF_MEMORY;
    if (st == AWQ_OK && w->type == AWQ_DTYPE_F32 && !s->bf16) {
        int64_t ldw = awq_tensor_row_stride(w) / 4;
        dnnl_mm_key k = {.M = n,
                         .K = in,
                         .N = out,
                         .sa0 = ldx,
                         .sa1 = 1,
                         .sb0 = 1,
                         .sb1 = ldw,
                         .ldc = ldy,
                         .bias = b != NULL,
                         .sum = 0};
        ds = mm_run(ctx, &k, xp, (const float *)awq_cpu_ptr(w), b, yp);
    } else if (st == AWQ_OK) {
        /* tiles of nt weight rows converted to fp32 (nt, in) */
        int64_t nt = (int64_t)(DNNL_TILE_BYTES / sizeof(float)) / in;
        nt = nt < 16 ? 16 : nt / 16 * 16;
        nt = nt > out ? out : nt;
        float *t = grow(ctx, &s->scratch, &s->scratch_cap, (size_t)(nt * in));
        uint16_t *tb = s->bf16 ? grow16(ctx, &s->wb, &s->wb_cap, (size_t)(nt * in)) : NULL;
        if (!t || (s->bf16 && !tb)) st = AWQ_ERR_OUT_OF_MEMORY;
        for (int64_t o0 = 0; o0 < out && st == AWQ_OK && ds == dnnl_success; o0 += nt) {
            int64_t nr = out - o0 < nt ? out - o0 : nt;
#pragma omp parallel for schedule(static) num_threads(ctx->n_threads) if (nr * in > 65536)
            for (int64_t r = 0; r < nr; r++) k_row_to_f32(t + r * in, k_row(w, o0 + r), w->type, in);
            if (tb) rows_to_bf16(ctx, tb, t, nr, in, in);
            dnnl_mm_key k = {.M = n,
                             .K = in,
                             .N = nr,
                             .sa0 = tb ? in : ldx,
                             .sa1 = 1,
                             .sb0 = 1,
                             .sb1 = in,
                             .ldc = ldy,
                             .bias = b != NULL,
                             .sum = 0,
                             .bf16 = tb != NULL};
            ds = mm_run(ctx, &k, tb ? (const void *)xb : xp, tb ? (const void *)tb : t, b ? b + o0 : NULL,
                        yp + o0);
        }
    }
    pthread_mutex_unlock(&s->lock);
    if (st != AWQ_OK) return st;
    if (ds == dnnl_unimplemented) return awq_cpu_matmul(ctx, y, x, w, bias);
    return ds == dnnl_success ? AWQ_OK : dnnl_fail(ctx, "matmul", ds);
}

/* ---- matmul_w4a16 ----------------------------------------------------------------------- */

static bool w4_fits(const awq_tensor *y, const awq_tensor *x, const awq_qlinear *w) {
    int64_t in = w->in, out = w->out;
    return x->type == AWQ_DTYPE_F32 && y->type == AWQ_DTYPE_F32 && out > 0 && out % 8 == 0 &&
        w->group_size > 0 && in > 0 && in % w->group_size == 0 && awq_tensor_cols(x) == in &&
        awq_tensor_cols(y) == out && awq_tensor_rows(y) == awq_tensor_rows(x) &&
        w->qweight.type == AWQ_DTYPE_I32 && w->qzeros.type == AWQ_DTYPE_I32 &&
        w->scales.type == AWQ_DTYPE_F16 && awq_tensor_is_contiguous(&w->qweight) &&
        awq_tensor_is_contiguous(&w->qzeros) && awq_tensor_is_contiguous(&w->scales) &&
        awq_tensor_nelem(&w->qweight) == in * (out / 8) &&
        awq_tensor_nelem(&w->qzeros) == in / w->group_size * (out / 8) &&
        awq_tensor_nelem(&w->scales) == in / w->group_size * out &&
        (!w->bias.data ||
         (k_is_float(w->bias.type) && awq_tensor_nelem(&w->bias) == out &&
          awq_tensor_is_contiguous(&w->bias))) &&
        awq_tensor_is_rowwise(x) && awq_tensor_is_rowwise(y) && awq_tensor_row_stride(x) % 4 == 0 &&
        awq_tensor_row_stride(y) % 4 == 0;
}

/* Dequantizes output columns [o0, o0 + nt) of w into t (in, nt) row-major (W^T tile), using
 * zs (G, nt) zero points and ss (G, nt) scales as floats. */
static void w4_dequant_tile(awq_backend_ctx *ctx, const awq_qlinear *w, int64_t o0, int64_t nt, float *t,
                            float *zs, float *ss) {
    int64_t in = w->in, gs = w->group_size, G = in / gs, ow = w->out / 8, c0 = o0 / 8;
    const int32_t *qw = (const int32_t *)awq_cpu_ptr(&w->qweight);
    const int32_t *qz = (const int32_t *)awq_cpu_ptr(&w->qzeros);
    const uint16_t *sc = (const uint16_t *)awq_cpu_ptr(&w->scales);
    for (int64_t g = 0; g < G; g++) {
        k_f16_to_f32(ss + g * nt, sc + g * w->out + o0, nt);
        for (int64_t c = 0; c < nt / 8; c++)
            for (int j = 0; j < 8; j++)
                zs[g * nt + 8 * c + j] = (float)awq_unpack_nibble(qz[g * ow + c0 + c], j);
    }
#pragma omp parallel for schedule(static) num_threads(ctx->n_threads) if (in * nt > 65536)
    for (int64_t k = 0; k < in; k++) {
        int64_t g = k / gs;
        k_w4_dequant_words(t + k * nt, qw + k * ow + c0, nt / 8, zs + g * nt, ss + g * nt);
    }
}

awq_status awq_dnnl_matmul_w4a16(awq_backend_ctx *ctx, awq_tensor *y, const awq_tensor *x,
                                 const awq_qlinear *w) {
    if (!w4_fits(y, x, w) || awq_tensor_rows(x) < DNNL_MIN_ROWS_W4) return awq_cpu_matmul_w4a16(ctx, y, x, w);
    dnnl_state *s = dnnl_st(ctx);
    int64_t n = awq_tensor_rows(x), in = w->in, out = w->out, G = in / w->group_size;
    int64_t ldx = awq_tensor_row_stride(x) / 4, ldy = awq_tensor_row_stride(y) / 4;
    const float *xp = (const float *)awq_cpu_ptr(x);
    float *yp = (float *)awq_cpu_ptr(y);
    int64_t nt = (int64_t)(DNNL_TILE_BYTES / sizeof(float)) / (in + 2 * G);
    nt = nt < 16 ? 16 : nt / 16 * 16;
    nt = nt > out ? out : nt;
    pthread_mutex_lock(&s->lock);
    const float *b = NULL;
    awq_status st = load_bias(ctx, &w->bias, out, &b);
    dnnl_status_t ds = dnnl_success;
    float *t = st == AWQ_OK ? grow(ctx, &s->scratch, &s->scratch_cap, (size_t)(nt * (in + 2 * G))) : NULL;
    uint16_t *tb = st == AWQ_OK && s->bf16 ? grow16(ctx, &s->wb, &s->wb_cap, (size_t)(nt * in)) : NULL;
    const uint16_t *xb = st == AWQ_OK && s->bf16 ? x_bf16(ctx, xp, n, in, ldx) : NULL;
    if (st == AWQ_OK && (!t || (s->bf16 && (!tb || !xb)))) st = AWQ_ERR_OUT_OF_MEMORY;
    for (int64_t o0 = 0; o0 < out && st == AWQ_OK && ds == dnnl_success; o0 += nt) {
        int64_t nr = out - o0 < nt ? out - o0 : nt; /* a multiple of 8 */
        w4_dequant_tile(ctx, w, o0, nr, t, t + nr * in, t + nr * in + G * nr);
        if (tb) rows_to_bf16(ctx, tb, t, in, nr, nr);
        dnnl_mm_key k = {.M = n,
                         .K = in,
                         .N = nr,
                         .sa0 = tb ? in : ldx,
                         .sa1 = 1,
                         .sb0 = nr,
                         .sb1 = 1,
                         .ldc = ldy,
                         .bias = b != NULL,
                         .sum = 0,
                         .bf16 = tb != NULL};
        ds = mm_run(ctx, &k, tb ? (const void *)xb : xp, tb ? (const void *)tb : t, b ? b + o0 : NULL,
                    yp + o0);
    }
    pthread_mutex_unlock(&s->lock);
    if (st != AWQ_OK) return st;
    if (ds == dnnl_unimplemented) return awq_cpu_matmul_w4a16(ctx, y, x, w);
    return ds == dnnl_success ? AWQ_OK : dnnl_fail(ctx, "matmul_w4a16", ds);
}

/* ---- gram ------------------------------------------------------------------------------- */

awq_status awq_dnnl_gram(awq_backend_ctx *ctx, awq_tensor *g, const awq_tensor *x, bool accumulate) {
    int64_t n = awq_tensor_rows(x), c = awq_tensor_cols(x);
    if (!(x->type == AWQ_DTYPE_F32 && g->type == AWQ_DTYPE_F32 && awq_tensor_rows(g) == c &&
          awq_tensor_cols(g) == c && awq_tensor_is_rowwise(x) && awq_tensor_is_rowwise(g) && n > 0 && c > 0 &&
          awq_tensor_row_stride(x) % 4 == 0 && awq_tensor_row_stride(g) % 4 == 0))
        return awq_cpu_gram(ctx, g, x, accumulate);
    dnnl_state *s = dnnl_st(ctx);
    int64_t ldx = awq_tensor_row_stride(x) / 4, ldg = awq_tensor_row_stride(g) / 4;
    const float *xp = (const float *)awq_cpu_ptr(x);
    /* g (c, c) = x^T (c, n) x (n, c): the transposed source is a strided view of x */
    dnnl_mm_key k = {.M = c,
                     .K = n,
                     .N = c,
                     .sa0 = 1,
                     .sa1 = ldx,
                     .sb0 = ldx,
                     .sb1 = 1,
                     .ldc = ldg,
                     .bias = 0,
                     .sum = accumulate};
    pthread_mutex_lock(&s->lock);
    const void *src = xp;
    dnnl_status_t ds = dnnl_success;
    if (s->bf16) { /* x rounded once to a contiguous bf16 (n, c) copy */
        src = x_bf16(ctx, xp, n, c, ldx);
        k.sa1 = k.sb0 = c;
        k.bf16 = 1;
        if (!src) ds = dnnl_out_of_memory;
    }
    if (ds == dnnl_success) ds = mm_run(ctx, &k, src, src, NULL, (float *)awq_cpu_ptr(g));
    pthread_mutex_unlock(&s->lock);
    if (ds == dnnl_unimplemented) return awq_cpu_gram(ctx, g, x, accumulate);
    return ds == dnnl_success ? AWQ_OK : dnnl_fail(ctx, "gram", ds);
}

awq_status awq_dnnl_matmul_w4a16_multi(awq_backend_ctx *ctx, int32_t nw, awq_tensor *const *y,
                                       const awq_tensor *x, const awq_qlinear *const *w) {
    if (awq_tensor_rows(x) < DNNL_MIN_ROWS_W4) return awq_cpu_matmul_w4a16_multi(ctx, nw, y, x, w);
    if (nw < 1 || nw > 3 || !y || !w) {
        awq_cpu_error(ctx, "matmul_w4a16_multi: 1..3 linears");
        return AWQ_ERR_UNSUPPORTED;
    }
    for (int32_t i = 0; i < nw; i++) {
        awq_status st = awq_dnnl_matmul_w4a16(ctx, y[i], x, w[i]);
        if (st != AWQ_OK) return st;
    }
    return AWQ_OK;
}
