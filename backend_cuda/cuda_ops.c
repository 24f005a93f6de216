/*
 * cuda_ops.c - the ops of the CUDA backend: argument checks (the contracts of awq_backend.h, as the
 * cpu reference enforces them), the choice of kernel family, workspace tiling, and the launchers of
 * kernels/launch.h. Tensor data are device pointers; views become (pointer + offset, row stride in
 * elements) before they reach a launcher.
 *
 * W4A16 (matmul_w4a16): M <= 8 rows -> CUDA-core GEMV (awqk_w4_gemv); M <= 256 -> fused Tensor-Core
 * GEMM (awqk_w4_gemm); larger -> the weight dequantized to fp16 panel by panel (awqk_w4_dequant) and
 * multiplied by cuBLAS (cudev_gemm, fp32 accumulation) -- the dispatch of vLLM (256) and AutoAWQ
 * (1024). Dense matmul: GEMV for M <= 8; cuBLAS for F32 weights (fp32 SGEMM, the search's path), F16
 * weights (x rounded to fp16, GemmEx with fp32 compute); the SIMT GEMM kernel (fp32 x) for BF16
 * weights. AWQ_CUDA_W4 / AWQ_CUDA_DENSE force a family (tests run every family).
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_internal.h"

#define REQUIRE(c, cond, ...)                                                                  \
    do {                                                                                       \
        if (!(cond)) return cu_fail((c), AWQ_ERR_UNSUPPORTED, AWQ_CUDA_NAME ": " __VA_ARGS__); \
    } while (0)
#define TRY(x)                         \
    do {                               \
        awq_status st_ = (x);          \
        if (st_ != AWQ_OK) return st_; \
    } while (0)
/* A launcher call: 0 or the kernel's failure. */
#define KL(c, call)                          \
    do {                                     \
        if ((call) != 0) return cu_kfail(c); \
    } while (0)
#define DL(c, call)                                   \
    do {                                              \
        awq_status st_ = (call);                      \
        if (st_ != AWQ_OK) return cu_dfail((c), st_); \
    } while (0)

static bool is_float(awq_dtype t) { return t == AWQ_DTYPE_F32 || t == AWQ_DTYPE_F16 || t == AWQ_DTYPE_BF16; }
static int64_t esize(const awq_tensor *t) { return (int64_t)awq_dtype_size_inline(t->type); }

/* Rowwise, element-aligned offset and stride, sizes that fit the kernels' int. */
static bool usable(const awq_tensor *t) {
    int64_t es = esize(t);
    return es > 0 && t->data && awq_tensor_is_rowwise(t) && t->offs % (size_t)es == 0 &&
        awq_tensor_row_stride(t) % es == 0 && awq_tensor_rows(t) < INT_MAX && awq_tensor_cols(t) < INT_MAX;
}
/* Device address of the first element, and the row stride in elements. */
static void *ptr(const awq_tensor *t) { return (char *)t->data + t->offs; }
static long long ld(const awq_tensor *t) { return (long long)(awq_tensor_row_stride(t) / esize(t)); }
static float *fptr(const awq_tensor *t) { return (float *)ptr(t); }
static size_t align_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

awq_status cu_check_flag(awq_backend_ctx *c) {
    if (!c->flag_pending) return AWQ_OK;
    c->flag_pending = false;
    int bad = 0;
    DL(c, cudev_d2h(c->d, &bad, c->flag, sizeof bad));
    if (bad) return cu_fail(c, AWQ_ERR_INVALID_ARG, AWQ_CUDA_NAME ": get_rows: an id was out of range");
    return AWQ_OK;
}

/* ---- dense matmul ------------------------------------------------------------------------ */

/* y (M x N) = x w^T (+ y when beta = 1) through cuBLAS: cuBLAS is column-major, so the row-major
 * y^T (N x M) = w (N x K, row-major = K x N col-major, transposed) * x^T. x of dtype xdt. */
static awq_status blas_xwT(awq_backend_ctx *c, int M, int K, int N, const void *x, long long ldx,
                           const void *w, long long ldw, int dt, float beta, float *y, long long ldy) {
    DL(c, cudev_gemm(c->d, true, false, N, M, K, w, dt, ldw, x, ldx, beta, y, ldy));
    return AWQ_OK;
}

/* Dense matmul through cuBLAS: F32 weights directly; F16/BF16 weights with x converted to the
 * weight's type in the workspace, in chunks of rows that fit. */
static awq_status dense_blas(awq_backend_ctx *c, int M, int K, int N, const float *x, long long ldx,
                             const awq_tensor *w, float *y, long long ldy) {
    if (w->type == AWQ_DTYPE_F32) return blas_xwT(c, M, K, N, x, ldx, ptr(w), ld(w), AWQK_F32, 0.0f, y, ldy);
    int rows = (int)(c->ws_bytes / ((size_t)K * 2));
    if (rows < 1)
        return cu_fail(c, AWQ_ERR_UNSUPPORTED, AWQ_CUDA_NAME ": matmul: K %d too large for the workspace", K);
    for (int m0 = 0; m0 < M; m0 += rows) {
        int mc = M - m0 < rows ? M - m0 : rows;
        uint16_t *xh = (uint16_t *)c->ws;
        KL(c, awqk_convert(c->kc, mc, K, xh, (int)w->type, K, x + (long long)m0 * ldx, AWQK_F32, ldx));
        TRY(blas_xwT(c, mc, K, N, xh, K, ptr(w), ld(w), (int)w->type, 0.0f, y + (long long)m0 * ldy, ldy));
    }
    return AWQ_OK;
}

awq_status cu_matmul(awq_backend_ctx *c, awq_tensor *y, const awq_tensor *x, const awq_tensor *w,
                     const awq_tensor *bias) {
    int64_t n = awq_tensor_rows(x), in = awq_tensor_cols(x), out = awq_tensor_rows(w);
    if (bias && !bias->data) bias = NULL;
    REQUIRE(c, x->type == AWQ_DTYPE_F32 && y->type == AWQ_DTYPE_F32 && is_float(w->type),
            "matmul: x, y F32 and w F32/F16/BF16");
    REQUIRE(c, awq_tensor_cols(w) == in && awq_tensor_rows(y) == n && awq_tensor_cols(y) == out,
            "matmul: shape mismatch (x %lld x %lld, w %lld x %lld, y %lld x %lld)", (long long)n,
            (long long)in, (long long)out, (long long)awq_tensor_cols(w), (long long)awq_tensor_rows(y),
            (long long)awq_tensor_cols(y));
    REQUIRE(c, usable(x) && usable(y) && usable(w), "matmul: tensors must be rowwise and element-aligned");
    REQUIRE(c, !bias || (is_float(bias->type) && awq_tensor_nelem(bias) == out && usable(bias)),
            "matmul: bias (out,) float");
    if (n == 0 || out == 0) return AWQ_OK;
    int M = (int)n, K = (int)in, N = (int)out;
    const void *bp = bias ? ptr(bias) : NULL;
    int bdt = bias ? (int)bias->type : 0;
    cu_family f = c->force_dense;
    if (f == CU_AUTO) {
        /* BF16 weights: rounding x to bf16 for cuBLAS would cost 3 decimal digits; the SIMT GEMM keeps x
         * in fp32 */
        bool blas_ok = cudev_has_blas(c->d) && w->type != AWQ_DTYPE_BF16;
        f = M <= CU_GEMV_MAX_M ? CU_GEMV : blas_ok ? CU_BLAS : CU_SIMT;
    }
    if (f == CU_BLAS && (!cudev_has_blas(c->d) || w->type == AWQ_DTYPE_BF16)) f = CU_SIMT;
    if (f == CU_GEMV) {
        for (int m0 = 0; m0 < M; m0 += CU_GEMV_MAX_M) {
            int mc = M - m0 < CU_GEMV_MAX_M ? M - m0 : CU_GEMV_MAX_M;
            KL(c,
               awqk_dense_gemv(c->kc, mc, K, N, fptr(x) + (long long)m0 * ld(x), ld(x), ptr(w), (int)w->type,
                               ld(w), bp, bdt, fptr(y) + (long long)m0 * ld(y), ld(y)));
        }
        return AWQ_OK;
    }
    if (f == CU_SIMT) {
        KL(c,
           awqk_dense_gemm(c->kc, M, K, N, fptr(x), ld(x), ptr(w), (int)w->type, ld(w), bp, bdt, fptr(y),
                           ld(y)));
        return AWQ_OK;
    }
    TRY(dense_blas(c, M, K, N, fptr(x), ld(x), w, fptr(y), ld(y)));
    if (bias) KL(c, awqk_binop(c->kc, M, N, AWQ_BINOP_ADD, fptr(y), ld(y), fptr(y), ld(y), bp, bdt, 0));
    return AWQ_OK;
}

awq_status cu_gram(awq_backend_ctx *c, awq_tensor *g, const awq_tensor *x, bool accumulate) {
    int64_t n = awq_tensor_rows(x), C = awq_tensor_cols(x);
    REQUIRE(c,
            x->type == AWQ_DTYPE_F32 && g->type == AWQ_DTYPE_F32 && awq_tensor_rows(g) == C &&
                awq_tensor_cols(g) == C && usable(x) && usable(g),
            "gram: g (c, c) and x (n, c) F32");
    if (C == 0) return AWQ_OK;
    bool blas = c->force_dense == CU_BLAS || (c->force_dense == CU_AUTO && cudev_has_blas(c->d) && n >= 64);
    if (blas) {
        /* column-major: X^T (C x n, ld ldx) times its transpose; G is symmetric */
        DL(c,
           cudev_gemm(c->d, false, true, (int)C, (int)C, (int)n, ptr(x), AWQK_F32, ld(x), ptr(x), ld(x),
                      accumulate ? 1.0f : 0.0f, fptr(g), ld(g)));
        return AWQ_OK;
    }
    KL(c, awqk_gram(c->kc, (int)n, (int)C, fptr(x), ld(x), fptr(g), ld(g), accumulate));
    return AWQ_OK;
}

/* ---- W4A16 --------------------------------------------------------------------------------- */

static awq_status check_w4(awq_backend_ctx *c, const awq_qlinear *w) {
    REQUIRE(c,
            w->out % 8 == 0 && w->group_size > 0 && w->group_size % 8 == 0 && w->in % w->group_size == 0 &&
                w->in < INT_MAX && w->out < INT_MAX,
            "matmul_w4a16: out %% 8, in %% group_size and group_size %% 8 must be 0");
    REQUIRE(c,
            w->qweight.type == AWQ_DTYPE_I32 && w->qzeros.type == AWQ_DTYPE_I32 &&
                w->scales.type == AWQ_DTYPE_F16 && awq_tensor_is_contiguous(&w->qweight) &&
                awq_tensor_is_contiguous(&w->qzeros) && awq_tensor_is_contiguous(&w->scales) &&
                usable(&w->qweight) && usable(&w->qzeros) && usable(&w->scales),
            "matmul_w4a16: qweight/qzeros I32 and scales F16, contiguous");
    REQUIRE(c,
            awq_tensor_rows(&w->qweight) == w->in && awq_tensor_cols(&w->qweight) == w->out / 8 &&
                awq_tensor_rows(&w->qzeros) == w->in / w->group_size &&
                awq_tensor_cols(&w->qzeros) == w->out / 8 &&
                awq_tensor_rows(&w->scales) == w->in / w->group_size && awq_tensor_cols(&w->scales) == w->out,
            "matmul_w4a16: qweight (in, out/8), qzeros (in/gs, out/8), scales (in/gs, out)");
    REQUIRE(c,
            ((uintptr_t)ptr(&w->qweight) | (uintptr_t)ptr(&w->qzeros) | (uintptr_t)ptr(&w->scales)) % 16 == 0,
            "matmul_w4a16: qweight, qzeros and scales must start 16-byte aligned");
    const awq_tensor *bias = w->bias.data ? &w->bias : NULL;
    REQUIRE(c, !bias || (is_float(bias->type) && awq_tensor_nelem(bias) == w->out && usable(bias)),
            "matmul_w4a16: bias (out,) float");
    return AWQ_OK;
}

static awqk_w4 kw4(const awq_qlinear *w) {
    awqk_w4 k = {(int)w->in,
                 (int)w->out,
                 (int)w->group_size,
                 (const int32_t *)ptr(&w->qweight),
                 (const int32_t *)ptr(&w->qzeros),
                 (const uint16_t *)ptr(&w->scales),
                 w->prepared};
    return k;
}

/* dequantize + cuBLAS: K panels of the weight dequantized to fp16 in the workspace, x converted
 * to fp16 per row chunk, products accumulated into y (beta = 1 after the first panel). */
static awq_status w4_dequant_blas(awq_backend_ctx *c, const awqk_w4 *w, int M, const float *x, long long ldx,
                                  float *y, long long ldy) {
    int K = w->K, N = w->N, gs = w->gs;
    /* a panel of kp rows (a multiple of gs) of the weight, and up to mc rows of x, in the workspace */
    size_t half_ws = c->ws_bytes / 2;
    int kp = (int)(half_ws / ((size_t)N * 2)) / gs * gs;
    if (kp > K) kp = K;
    if (kp < gs)
        return cu_fail(c, AWQ_ERR_UNSUPPORTED,
                       AWQ_CUDA_NAME ": matmul_w4a16: N %d too large for the workspace", N);
    uint16_t *wp = (uint16_t *)c->ws;
    uint16_t *xh = (uint16_t *)((char *)c->ws + align_up((size_t)kp * N * 2, 256));
    int rows = (int)((c->ws_bytes - align_up((size_t)kp * N * 2, 256)) / ((size_t)kp * 2));
    if (rows < 1) return cu_fail(c, AWQ_ERR_UNSUPPORTED, AWQ_CUDA_NAME ": matmul_w4a16: workspace too small");
    for (int k0 = 0; k0 < K; k0 += kp) {
        int nk = K - k0 < kp ? K - k0 : kp;
        KL(c, awqk_w4_dequant(c->kc, w, k0, nk, wp, N));
        for (int m0 = 0; m0 < M; m0 += rows) {
            int mc = M - m0 < rows ? M - m0 : rows;
            KL(c, awqk_convert(c->kc, mc, nk, xh, AWQK_F16, nk, x + (long long)m0 * ldx + k0, AWQK_F32, ldx));
            /* column-major y^T (N x mc) (+)= Wp^T... wp is (nk, N) row-major = N x nk col-major */
            DL(c,
               cudev_gemm(c->d, false, false, N, mc, nk, wp, AWQK_F16, N, xh, nk, k0 ? 1.0f : 0.0f,
                          y + (long long)m0 * ldy, ldy));
        }
    }
    return AWQ_OK;
}

/* One linear through the chosen family; y rows [0, M). */
static awq_status w4_run(awq_backend_ctx *c, cu_family f, const awqk_w4 *w, int M, const float *x,
                         long long ldx, float *y, long long ldy, const void *bp, int bdt) {
    switch (f) {
    case CU_GEMV:
        for (int m0 = 0; m0 < M; m0 += CU_GEMV_MAX_M) {
            int mc = M - m0 < CU_GEMV_MAX_M ? M - m0 : CU_GEMV_MAX_M;
            KL(c,
               awqk_w4_gemv(c->kc, w, mc, x + (long long)m0 * ldx, ldx, y + (long long)m0 * ldy, ldy, bp,
                            bdt));
        }
        return AWQ_OK;
    case CU_TC: {
        /* rows per launch so that the workspace holds what the kernel needs */
        int mc = M;
        while (mc > 16 && awqk_w4_gemm_ws_bytes(c->kc, mc, w->K, w->N) > c->ws_bytes) mc = (mc + 1) / 2;
        if (awqk_w4_gemm_ws_bytes(c->kc, mc, w->K, w->N) > c->ws_bytes)
            return cu_fail(c, AWQ_ERR_UNSUPPORTED,
                           AWQ_CUDA_NAME ": matmul_w4a16: workspace of %zu bytes too small "
                                         "for K %d, N %d",
                           c->ws_bytes, w->K, w->N);
        for (int m0 = 0; m0 < M; m0 += mc) {
            int n = M - m0 < mc ? M - m0 : mc;
            KL(c,
               awqk_w4_gemm(c->kc, w, n, x + (long long)m0 * ldx, ldx, y + (long long)m0 * ldy, ldy, bp, bdt,
                            c->ws, c->ws_bytes));
        }
        return AWQ_OK;
    }
    default:
        TRY(w4_dequant_blas(c, w, M, x, ldx, y, ldy));
        if (bp) KL(c, awqk_binop(c->kc, M, w->N, AWQ_BINOP_ADD, y, ldy, y, ldy, bp, bdt, 0));
        return AWQ_OK;
    }
}

static cu_family w4_family(const awq_backend_ctx *c, int M) {
    if (c->force_w4 != CU_AUTO) return c->force_w4;
    return M <= CU_GEMV_MAX_M ? CU_GEMV : M <= c->w4_tc_max_m ? CU_TC : CU_DEQUANT;
}

static awq_status check_xy(awq_backend_ctx *c, const awq_tensor *y, const awq_tensor *x,
                           const awq_qlinear *w) {
    REQUIRE(c, x->type == AWQ_DTYPE_F32 && y->type == AWQ_DTYPE_F32, "matmul_w4a16: x and y must be F32");
    REQUIRE(c,
            awq_tensor_cols(x) == w->in && awq_tensor_cols(y) == w->out &&
                awq_tensor_rows(y) == awq_tensor_rows(x),
            "matmul_w4a16: shape mismatch (x %lld x %lld, w %lld -> %lld, y %lld x %lld)",
            (long long)awq_tensor_rows(x), (long long)awq_tensor_cols(x), (long long)w->in, (long long)w->out,
            (long long)awq_tensor_rows(y), (long long)awq_tensor_cols(y));
    REQUIRE(c, usable(x) && usable(y), "matmul_w4a16: tensors must be rowwise and element-aligned");
    return AWQ_OK;
}

awq_status cu_matmul_w4a16(awq_backend_ctx *c, awq_tensor *y, const awq_tensor *x, const awq_qlinear *w) {
    TRY(check_w4(c, w));
    TRY(check_xy(c, y, x, w));
    int M = (int)awq_tensor_rows(x);
    if (M == 0) return AWQ_OK;
    awqk_w4 k = kw4(w);
    const awq_tensor *bias = w->bias.data ? &w->bias : NULL;
    return w4_run(c, w4_family(c, M), &k, M, fptr(x), ld(x), fptr(y), ld(y), bias ? ptr(bias) : NULL,
                  bias ? (int)bias->type : 0);
}

awq_status cu_matmul_w4a16_multi(awq_backend_ctx *c, int32_t nw, awq_tensor *const *y, const awq_tensor *x,
                                 const awq_qlinear *const *w) {
    REQUIRE(c, nw >= 1 && nw <= 3, "matmul_w4a16_multi: 1..3 linears");
    for (int i = 0; i < nw; i++) {
        TRY(check_w4(c, w[i]));
        TRY(check_xy(c, y[i], x, w[i]));
        REQUIRE(c, w[i]->in == w[0]->in && w[i]->group_size == w[0]->group_size,
                "matmul_w4a16_multi: the linears must share in and group_size");
    }
    int M = (int)awq_tensor_rows(x);
    if (M == 0) return AWQ_OK;
    cu_family f = w4_family(c, M);
    awqk_w4 k[3];
    const awqk_w4 *kp[3];
    float *yp[3];
    long long ldy[3];
    const void *bp[3];
    int bdt[3];
    for (int i = 0; i < nw; i++) {
        k[i] = kw4(w[i]);
        kp[i] = &k[i];
        yp[i] = fptr(y[i]);
        ldy[i] = ld(y[i]);
        bp[i] = w[i]->bias.data ? ptr(&w[i]->bias) : NULL;
        bdt[i] = w[i]->bias.data ? (int)w[i]->bias.type : 0;
    }
    if (f == CU_GEMV && M <= CU_GEMV_MAX_M) {
        KL(c, awqk_w4_gemv_multi(c->kc, nw, kp, M, fptr(x), ld(x), yp, ldy, bp, bdt));
        return AWQ_OK;
    }
    for (int i = 0; i < nw; i++) TRY(w4_run(c, f, &k[i], M, fptr(x), ld(x), yp[i], ldy[i], bp[i], bdt[i]));
    return AWQ_OK;
}

awq_status cu_weight_prepare(awq_backend_ctx *c, awq_qlinear *w) {
    TRY(check_w4(c, w));
    size_t n = awqk_w4_prepared_bytes((int)w->in, (int)w->out, (int)w->group_size);
    if (n == 0) return AWQ_OK;
    if (w->prepared) cu_weight_release(c, w);
    void *p = NULL;
    DL(c, cudev_malloc(c->d, n, &p));
    awqk_w4 k = kw4(w);
    k.prepared = NULL;
    if (awqk_w4_prepare(c->kc, &k, p) != 0) {
        cudev_free(c->d, p);
        return cu_kfail(c);
    }
    w->prepared = p;
    return AWQ_OK;
}

void cu_weight_release(awq_backend_ctx *c, awq_qlinear *w) {
    if (!w->prepared) return;
    cudev_sync(c->d);
    cudev_free(c->d, w->prepared);
    w->prepared = NULL;
}

/* ---- row and element-wise ops ------------------------------------------------------------- */

awq_status cu_rmsnorm(awq_backend_ctx *c, awq_tensor *y, const awq_tensor *x, const awq_tensor *gamma,
                      float eps) {
    int64_t n = awq_tensor_rows(x), d = awq_tensor_cols(x);
    REQUIRE(c, x->type == AWQ_DTYPE_F32 && y->type == AWQ_DTYPE_F32 && is_float(gamma->type),
            "rmsnorm: x, y F32; gamma float");
    REQUIRE(c, awq_tensor_rows(y) == n && awq_tensor_cols(y) == d && awq_tensor_nelem(gamma) == d,
            "rmsnorm: shape mismatch");
    REQUIRE(c, usable(x) && usable(y) && usable(gamma), "rmsnorm: rowwise tensors");
    if (n == 0) return AWQ_OK;
    KL(c,
       awqk_rmsnorm(c->kc, (int)n, (int)d, fptr(x), ld(x), ptr(gamma), (int)gamma->type, eps, fptr(y),
                    ld(y)));
    return AWQ_OK;
}

awq_status cu_rope(awq_backend_ctx *c, awq_tensor *x, const awq_tensor *pos, const awq_tensor *inv_freq,
                   float attn_factor) {
    REQUIRE(c,
            x->type == AWQ_DTYPE_F32 && x->ndim == 3 && x->nb[2] == 4 && pos->type == AWQ_DTYPE_I32 &&
                inv_freq->type == AWQ_DTYPE_F32,
            "rope: x (n_tok, n_heads, head_dim) F32, pos I32, inv_freq F32");
    int64_t nt = x->ne[0], nh = x->ne[1], hd = x->ne[2], half = hd / 2;
    REQUIRE(c, hd % 2 == 0 && awq_tensor_nelem(pos) == nt && awq_tensor_nelem(inv_freq) == half,
            "rope: shape mismatch");
    REQUIRE(c,
            x->offs % 4 == 0 && x->nb[0] % 4 == 0 && x->nb[1] % 4 == 0 && usable(pos) && usable(inv_freq) &&
                awq_tensor_is_contiguous(pos) && awq_tensor_is_contiguous(inv_freq) && nt < INT_MAX &&
                nh < INT_MAX,
            "rope: element-aligned tensors");
    if (nt == 0 || nh == 0) return AWQ_OK;
    KL(c,
       awqk_rope(c->kc, (int)nt, (int)nh, (int)half, fptr(x), x->nb[0] / 4, x->nb[1] / 4,
                 (const int32_t *)ptr(pos), fptr(inv_freq), attn_factor));
    return AWQ_OK;
}

awq_status cu_attention(awq_backend_ctx *c, awq_tensor *out, const awq_tensor *q, const awq_tensor *k,
                        const awq_tensor *v, int32_t n_past, float scale, int32_t window) {
    return cu_attention_softcap(c, out, q, k, v, n_past, scale, window, 0.0f);
}

awq_status cu_attention_softcap(awq_backend_ctx *c, awq_tensor *out, const awq_tensor *q, const awq_tensor *k,
                                const awq_tensor *v, int32_t n_past, float scale, int32_t window, float cap) {
    REQUIRE(c, cap >= 0, "attention: soft-cap must be >= 0");
    REQUIRE(c, q->ndim == 4 && k->ndim == 4 && v->ndim == 4 && out->ndim == 4,
            "attention: 4-D tensors (B, T, H, hd)");
    REQUIRE(c,
            q->type == AWQ_DTYPE_F32 && k->type == AWQ_DTYPE_F32 && v->type == AWQ_DTYPE_F32 &&
                out->type == AWQ_DTYPE_F32,
            "attention: F32 tensors");
    int64_t B = q->ne[0], T = q->ne[1], H = q->ne[2], hd = q->ne[3], S = k->ne[1], Hkv = k->ne[2];
    REQUIRE(c,
            k->ne[0] == B && v->ne[0] == B && k->ne[3] == hd && v->ne[3] == hd && v->ne[1] == S &&
                v->ne[2] == Hkv && Hkv > 0 && H % Hkv == 0 && n_past >= 0 && S >= n_past + T &&
                out->ne[0] == B && out->ne[1] == T && out->ne[2] == H && out->ne[3] == hd,
            "attention: shape mismatch");
    REQUIRE(c, hd <= 256 && B < INT_MAX && T < INT_MAX && S < INT_MAX && H < INT_MAX,
            "attention: head_dim %lld > 256", (long long)hd);
    const awq_tensor *ts[4] = {q, k, v, out};
    for (int i = 0; i < 4; i++)
        REQUIRE(c,
                ts[i]->data && ts[i]->nb[3] == 4 && ts[i]->offs % 4 == 0 && ts[i]->nb[0] % 4 == 0 &&
                    ts[i]->nb[1] % 4 == 0 && ts[i]->nb[2] % 4 == 0,
                "attention: innermost dimension must be contiguous, strides element-aligned");
    if (B == 0 || T == 0 || H == 0) return AWQ_OK;
    awqk_attn a = {(int)B,         (int)T,       (int)H,       (int)Hkv,     (int)hd,        (int)S,
                   n_past,         window,       scale,        fptr(q),      q->nb[0] / 4,   q->nb[1] / 4,
                   q->nb[2] / 4,   fptr(k),      k->nb[0] / 4, k->nb[1] / 4, k->nb[2] / 4,   fptr(v),
                   v->nb[0] / 4,   v->nb[1] / 4, v->nb[2] / 4, fptr(out),    out->nb[0] / 4, out->nb[1] / 4,
                   out->nb[2] / 4, cap};
    const char *e = getenv("AWQ_CUDA_ATTN");
    bool decode = T <= CU_ATT_DECODE_MAX_T;
    if (e && strcmp(e, "prefill") == 0) decode = false;
    if (e && strcmp(e, "decode") == 0) decode = true;
    if (decode && awqk_attention_decode_ws_bytes(c->kc, &a) <= c->ws_bytes) {
        KL(c, awqk_attention_decode(c->kc, &a, c->ws, c->ws_bytes));
        return AWQ_OK;
    }
    KL(c, awqk_attention_prefill(c->kc, &a));
    return AWQ_OK;
}

awq_status cu_silu_mul(awq_backend_ctx *c, awq_tensor *y, const awq_tensor *gate, const awq_tensor *up) {
    int64_t n = awq_tensor_rows(gate), d = awq_tensor_cols(gate);
    REQUIRE(c, y->type == AWQ_DTYPE_F32 && gate->type == AWQ_DTYPE_F32 && up->type == AWQ_DTYPE_F32,
            "silu_mul: F32 tensors");
    REQUIRE(c,
            awq_tensor_rows(up) == n && awq_tensor_cols(up) == d && awq_tensor_rows(y) == n &&
                awq_tensor_cols(y) == d && usable(y) && usable(gate) && usable(up),
            "silu_mul: shape mismatch");
    if (n == 0) return AWQ_OK;
    KL(c, awqk_silu_mul(c->kc, (int)n, (int)d, fptr(y), ld(y), fptr(gate), ld(gate), fptr(up), ld(up)));
    return AWQ_OK;
}

awq_status cu_act_mul(awq_backend_ctx *c, awq_tensor *y, const awq_tensor *gate, const awq_tensor *up,
                      awq_act act) {
    REQUIRE(c, act == AWQ_ACT_SILU || act == AWQ_ACT_GELU_TANH, "act_mul: unknown activation %d", (int)act);
    if (act == AWQ_ACT_SILU) return cu_silu_mul(c, y, gate, up);
    int64_t n = awq_tensor_rows(gate), d = awq_tensor_cols(gate);
    REQUIRE(c, y->type == AWQ_DTYPE_F32 && gate->type == AWQ_DTYPE_F32 && up->type == AWQ_DTYPE_F32,
            "act_mul: F32 tensors");
    REQUIRE(c,
            awq_tensor_rows(up) == n && awq_tensor_cols(up) == d && awq_tensor_rows(y) == n &&
                awq_tensor_cols(y) == d && usable(y) && usable(gate) && usable(up),
            "act_mul: shape mismatch");
    if (n == 0) return AWQ_OK;
    KL(c, awqk_gelu_mul(c->kc, (int)n, (int)d, fptr(y), ld(y), fptr(gate), ld(gate), fptr(up), ld(up)));
    return AWQ_OK;
}

awq_status cu_softcap(awq_backend_ctx *c, awq_tensor *x, float cap) {
    REQUIRE(c, x->type == AWQ_DTYPE_F32 && usable(x), "softcap: rowwise F32");
    REQUIRE(c, cap > 0, "softcap: cap must be > 0");
    if (awq_tensor_rows(x) == 0) return AWQ_OK;
    KL(c, awqk_softcap(c->kc, (int)awq_tensor_rows(x), (int)awq_tensor_cols(x), fptr(x), ld(x), cap));
    return AWQ_OK;
}

awq_status cu_binop(awq_backend_ctx *c, awq_tensor *y, const awq_tensor *a, const awq_tensor *b,
                    awq_binop op) {
    int64_t n = awq_tensor_rows(a), d = awq_tensor_cols(a);
    REQUIRE(c, y->type == AWQ_DTYPE_F32 && a->type == AWQ_DTYPE_F32 && is_float(b->type),
            "binop: y, a F32; b float");
    REQUIRE(c, op >= AWQ_BINOP_ADD && op <= AWQ_BINOP_DIV, "binop: unknown op %d", (int)op);
    bool bcast = awq_tensor_nelem(b) == d && awq_tensor_rows(b) == 1;
    REQUIRE(c,
            awq_tensor_cols(b) == d && (bcast || awq_tensor_rows(b) == n) && awq_tensor_rows(y) == n &&
                awq_tensor_cols(y) == d,
            "binop: b must be (n, d) or (1, d)/(d,) with a (n, d)");
    REQUIRE(c, usable(y) && usable(a) && usable(b), "binop: rowwise tensors");
    if (n == 0) return AWQ_OK;
    KL(c,
       awqk_binop(c->kc, (int)n, (int)d, (int)op, fptr(y), ld(y), fptr(a), ld(a), ptr(b), (int)b->type,
                  bcast ? 0 : ld(b)));
    return AWQ_OK;
}

awq_status cu_get_rows(awq_backend_ctx *c, awq_tensor *y, const awq_tensor *table, const awq_tensor *ids) {
    int64_t n = awq_tensor_nelem(ids), V = awq_tensor_rows(table), d = awq_tensor_cols(table);
    REQUIRE(c, ids->type == AWQ_DTYPE_I32 && is_float(table->type) && y->type == AWQ_DTYPE_F32,
            "get_rows: ids I32, table float, y F32");
    REQUIRE(c,
            awq_tensor_rows(y) == n && awq_tensor_cols(y) == d && usable(y) && usable(table) && usable(ids) &&
                awq_tensor_is_contiguous(ids) && V < INT_MAX,
            "get_rows: shape mismatch");
    if (n == 0) return AWQ_OK;
    /* out-of-range ids: the kernel writes a zero row and raises the flag, checked here (or, inside a
     * captured step, at the next download / synchronize) */
    DL(c, cudev_memset0(c->d, c->flag, sizeof(int)));
    KL(c,
       awqk_get_rows(c->kc, (int)n, (int)d, fptr(y), ld(y), ptr(table), (int)table->type, ld(table),
                     (const int32_t *)ptr(ids), (int)V, c->flag));
    c->flag_pending = true;
    if (cudev_capturing(c->d)) return AWQ_OK;
    return cu_check_flag(c);
}

awq_status cu_convert(awq_backend_ctx *c, awq_tensor *y, const awq_tensor *x) {
    int64_t n = awq_tensor_rows(x), d = awq_tensor_cols(x);
    REQUIRE(c, is_float(x->type) && is_float(y->type), "convert: float dtypes only");
    REQUIRE(c, awq_tensor_rows(y) == n && awq_tensor_cols(y) == d, "convert: shape mismatch");
    REQUIRE(c, usable(x) && usable(y), "convert: rowwise tensors");
    if (n == 0) return AWQ_OK;
    KL(c, awqk_convert(c->kc, (int)n, (int)d, ptr(y), (int)y->type, ld(y), ptr(x), (int)x->type, ld(x)));
    return AWQ_OK;
}

/* ---- quantization ops ---------------------------------------------------------------------- */

static awq_status check_quant(awq_backend_ctx *c, const awq_quant_desc *q, int64_t in) {
    REQUIRE(c, q && q->bits >= 2 && q->bits <= 8 && q->zero_point,
            "quantization: only asymmetric 2..8-bit is supported");
    REQUIRE(c, q->group_size > 0 && in % q->group_size == 0,
            "quantization: in_features %lld not divisible by group size %d", (long long)in, q->group_size);
    return AWQ_OK;
}

awq_status cu_fake_quant(awq_backend_ctx *c, awq_tensor *wq, const awq_tensor *w, const awq_tensor *s,
                         const awq_tensor *clip, const awq_quant_desc *q) {
    int64_t out = awq_tensor_rows(w), in = awq_tensor_cols(w);
    TRY(check_quant(c, q, in));
    int64_t G = in / q->group_size;
    REQUIRE(c,
            w->type == AWQ_DTYPE_F32 && wq->type == AWQ_DTYPE_F32 && awq_tensor_rows(wq) == out &&
                awq_tensor_cols(wq) == in && usable(w) && usable(wq),
            "fake_quant: w, wq (out, in) F32");
    REQUIRE(c,
            !s ||
                (s->type == AWQ_DTYPE_F32 && awq_tensor_nelem(s) == in && usable(s) &&
                 awq_tensor_is_contiguous(s)),
            "fake_quant: s (in,) F32");
    REQUIRE(c,
            !clip ||
                (clip->type == AWQ_DTYPE_F32 && awq_tensor_rows(clip) == out && awq_tensor_cols(clip) == G &&
                 usable(clip)),
            "fake_quant: clip (out, in/gs) F32");
    if (out == 0) return AWQ_OK;
    KL(c,
       awqk_fake_quant(c->kc, (int)out, (int)G, q->group_size, (1 << q->bits) - 1, fptr(wq), ld(wq), fptr(w),
                       ld(w), s ? fptr(s) : NULL, clip ? fptr(clip) : NULL, clip ? ld(clip) : 0));
    return AWQ_OK;
}

awq_status cu_quantize_w4(awq_backend_ctx *c, awq_tensor *codes, awq_tensor *scales, awq_tensor *zeros,
                          const awq_tensor *w, const awq_quant_desc *q) {
    int64_t out = awq_tensor_rows(w), in = awq_tensor_cols(w);
    TRY(check_quant(c, q, in));
    int64_t G = in / q->group_size;
    REQUIRE(c, q->bits == 4, "quantize_w4: bits must be 4");
    REQUIRE(c,
            w->type == AWQ_DTYPE_F16 && codes->type == AWQ_DTYPE_U8 && scales->type == AWQ_DTYPE_F16 &&
                zeros->type == AWQ_DTYPE_U8,
            "quantize_w4: w F16, codes U8, scales F16, zeros U8");
    REQUIRE(c,
            awq_tensor_rows(codes) == out && awq_tensor_cols(codes) == in && awq_tensor_rows(scales) == out &&
                awq_tensor_cols(scales) == G && awq_tensor_rows(zeros) == out &&
                awq_tensor_cols(zeros) == G && usable(w) && usable(codes) && usable(scales) && usable(zeros),
            "quantize_w4: shape mismatch");
    if (out == 0) return AWQ_OK;
    KL(c,
       awqk_quantize_w4(c->kc, (int)out, (int)G, q->group_size, (uint8_t *)ptr(codes), ld(codes),
                        (uint16_t *)ptr(scales), ld(scales), (uint8_t *)ptr(zeros), ld(zeros),
                        (const uint16_t *)ptr(w), ld(w)));
    return AWQ_OK;
}

awq_status cu_reduce(awq_backend_ctx *c, awq_tensor *y, const awq_tensor *x, awq_reduce_op op,
                     int32_t group) {
    int64_t n = awq_tensor_rows(x), C = awq_tensor_cols(x);
    REQUIRE(c,
            x->type == AWQ_DTYPE_F32 && y->type == AWQ_DTYPE_F32 && awq_tensor_nelem(y) == C && usable(x) &&
                usable(y) && awq_tensor_is_contiguous(y),
            "reduce: x (n, c) F32 -> y (c,) F32");
    REQUIRE(c, op != AWQ_REDUCE_WMEAN_GROUPS || (group > 0 && C % group == 0),
            "reduce: group %d must divide %lld", group, (long long)C);
    REQUIRE(c,
            op == AWQ_REDUCE_MEAN_ABS_COLS || op == AWQ_REDUCE_WMEAN_GROUPS || op == AWQ_REDUCE_MAX_ABS_COLS,
            "reduce: unknown op %d", (int)op);
    if (C == 0) return AWQ_OK;
    KL(c, awqk_reduce(c->kc, (int)n, (int)C, (int)op, group > 0 ? group : 1, fptr(x), ld(x), fptr(y)));
    return AWQ_OK;
}

awq_status cu_scalar(awq_backend_ctx *c, double *out, const awq_tensor *a, const awq_tensor *b,
                     awq_scalar_op op) {
    int64_t n = awq_tensor_rows(a), C = awq_tensor_cols(a);
    REQUIRE(c,
            a->type == AWQ_DTYPE_F32 && b->type == AWQ_DTYPE_F32 && awq_tensor_rows(b) == n &&
                awq_tensor_cols(b) == C && usable(a) && usable(b),
            "scalar: a, b same shape F32");
    REQUIRE(c, op == AWQ_SCALAR_SSE || op == AWQ_SCALAR_DOT, "scalar: unknown op %d", (int)op);
    REQUIRE(c, !cudev_capturing(c->d), "scalar: a synchronous op inside a captured step");
    *out = 0;
    if (n == 0 || C == 0) return AWQ_OK;
    KL(c, awqk_scalar(c->kc, (long long)n, (int)C, (int)op, fptr(a), ld(a), fptr(b), ld(b), c->partial));
    double part[AWQK_SCALAR_PARTS];
    DL(c, cudev_d2h(c->d, part, c->partial, sizeof part));
    double s = 0;
    for (int i = 0; i < AWQK_SCALAR_PARTS; i++) s += part[i];
    *out = s;
    return cu_check_flag(c);
}

awq_status cu_clip_search(awq_backend_ctx *c, awq_tensor *best_max, const awq_tensor *w, const awq_tensor *x,
                          const awq_quant_desc *q, int32_t n_grid, int32_t n_steps) {
    int64_t out = awq_tensor_rows(w), in = awq_tensor_cols(w), n = awq_tensor_rows(x);
    TRY(check_quant(c, q, in));
    int64_t gs = q->group_size, G = in / gs;
    REQUIRE(c,
            w->type == AWQ_DTYPE_F32 && x->type == AWQ_DTYPE_F32 && best_max->type == AWQ_DTYPE_F32 &&
                awq_tensor_cols(x) == in && awq_tensor_rows(best_max) == out &&
                awq_tensor_cols(best_max) == G && usable(w) && usable(x) && usable(best_max) && gs <= 1024 &&
                n_grid > 0 && n_steps > 0 && n_steps <= 16 && n > 0,
            "clip_search: w (out, in), x (n, in), best_max (out, in/gs) F32, gs <= 1024, 1..16 steps");
    if (out == 0) return AWQ_OK;
    KL(c,
       awqk_clip_search(c->kc, (int)out, (int)G, (int)gs, (int)n, (1 << q->bits) - 1, n_grid, n_steps,
                        fptr(w), ld(w), fptr(x), ld(x), fptr(best_max), ld(best_max)));
    return AWQ_OK;
}
