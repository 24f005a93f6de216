/*
 * launch_gemm.cuh - the launchers of launch.h's "W4A16 and dense GEMM" section (extern "C"), for
 * the kernels in gemm_w4.cuh and dense.cuh. Included once, by launch.cu (nvcc: plugin "cuda"; host
 * compiler through launch_emu.cc: plugin "cuda-emu"), or directly by tests/cuda/test_k_gemm.cc.
 * AWQK_LAUNCH returns from the function it is in, so every launch has its own small helper.
 * Launchers rely on the preconditions cuda_ops.c checks (launch.h); they never allocate or sync.
 */
#ifndef AWQ_CUDA_LAUNCH_GEMM_CUH
#define AWQ_CUDA_LAUNCH_GEMM_CUH

#include <stdio.h>
#include <string.h>

#include "dense.cuh"
#include "gemm_w4.cuh"
#include "launch.h"

static inline bool gk_aligned16(const void *p) { return ((uintptr_t)p & 15u) == 0; }
static inline unsigned gk_blocks(long long n, int per) { return (unsigned)((n + per - 1) / per); }
static inline size_t gk_align256(size_t n) { return (n + 255) / 256 * 256; }
static int gk_fail(awqk_ctx *kc, const char *what) {
    snprintf(kc->err, sizeof kc->err, "%s", what);
    return -1;
}

/* ---- W4A16 GEMV ------------------------------------------------------------------------------- */

extern "C" size_t awqk_w4_prepared_bytes(int K, int N, int gs) {
    (void)gs;
    return (size_t)K * (size_t)(N / 8) * sizeof(int32_t);
}

static int gk_launch_prepare(awqk_ctx *kc, const int32_t *qw, int32_t *dst, int K, int nwc) {
    dim3 grid(gk_blocks(nwc, 32), gk_blocks(K, 32)), block(32, 8);
    AWQK_LAUNCH(kc, "awqk_w4_prepare", awqk_w4_prepare_kernel, grid, block, 32 * 33 * sizeof(int32_t), qw,
                dst, K, nwc);
}

extern "C" int awqk_w4_prepare(awqk_ctx *kc, const awqk_w4 *w, void *dst) {
    if (w->K <= 0 || w->N <= 0) return 0;
    if (!gk_aligned16(dst)) return gk_fail(kc, "awqk_w4_prepare: destination not 16-byte aligned");
    return gk_launch_prepare(kc, w->qweight, static_cast<int32_t *>(dst), w->K, w->N / 8);
}

template <int M, bool PREP>
static int gk_launch_w4_gemv_m(awqk_ctx *kc, const w4_gemv_args &a, unsigned nblk) {
    AWQK_LAUNCH(kc, "awqk_w4_gemv", (awqk_w4_gemv_kernel<M, PREP>), dim3(nblk), dim3(W4_GEMV_THREADS),
                w4_gemv_smem(M, !PREP), a);
}
template <bool PREP> static int gk_launch_w4_gemv(awqk_ctx *kc, int M, const w4_gemv_args &a, unsigned nblk) {
    switch (M) {
    case 1: return gk_launch_w4_gemv_m<1, PREP>(kc, a, nblk);
    case 2: return gk_launch_w4_gemv_m<2, PREP>(kc, a, nblk);
    case 3: return gk_launch_w4_gemv_m<3, PREP>(kc, a, nblk);
    case 4: return gk_launch_w4_gemv_m<4, PREP>(kc, a, nblk);
    case 5: return gk_launch_w4_gemv_m<5, PREP>(kc, a, nblk);
    case 6: return gk_launch_w4_gemv_m<6, PREP>(kc, a, nblk);
    case 7: return gk_launch_w4_gemv_m<7, PREP>(kc, a, nblk);
    default: return gk_launch_w4_gemv_m<8, PREP>(kc, a, nblk);
    }
}

/* One launch for the weights with a prepared copy, one for those without (normally all have one
 * or none). */
static int gk_w4_gemv(awqk_ctx *kc, int nw, const awqk_w4 *const *w, int M, const float *x, long long ldx,
                      float *const *y, const long long *ldy, const void *const *bias, const int *bias_dt) {
    if (M <= 0) return 0;
    if (M > 8 || nw < 1 || nw > 3) return gk_fail(kc, "awqk_w4_gemv: M must be 1..8 and nw 1..3");
    const int K = w[0]->K, gs = w[0]->gs;
    if (K <= 0) return gk_fail(kc, "awqk_w4_gemv: K must be positive");
    if ((long long)(M - 1) * ldx + K >= 0x7fffffffLL || ldx < 0)
        return gk_fail(kc, "awqk_w4_gemv: x larger than 2^31 elements");
    for (int pass = 0; pass < 2; pass++) { /* pass 0: prepared weights, 1: canonical */
        w4_gemv_args a;
        memset(&a, 0, sizeof a);
        a.K = K;
        a.gs = gs;
        a.x = x;
        a.ldx = (int)ldx;
        long long nblk = 0;
        for (int i = 0; i < nw; i++) {
            if (w[i]->K != K || w[i]->gs != gs)
                return gk_fail(kc, "awqk_w4_gemv_multi: the weights must share K and gs");
            const bool prep = w[i]->prepared && gk_aligned16(w[i]->prepared);
            if (prep != (pass == 0) || w[i]->N <= 0) continue;
            w4_gemv_one &o = a.w[a.nw++];
            o.qw = w[i]->qweight;
            o.qz = w[i]->qzeros;
            o.sc = w[i]->scales;
            o.prep = prep ? static_cast<const int32_t *>(w[i]->prepared) : NULL;
            o.y = y[i];
            o.ldy = ldy[i];
            o.bias = bias ? bias[i] : NULL;
            o.bias_dt = bias && bias_dt ? bias_dt[i] : AWQK_F32;
            o.N = w[i]->N;
            o.nblk = prep ? o.N / 8 : (int)gk_blocks(o.N / 8, W4_GEMV_CANON_COLS);
            nblk += o.nblk;
        }
        if (a.nw == 0) continue;
        if (nblk > 0x7fffffffLL) return gk_fail(kc, "awqk_w4_gemv: too many output columns");
        const int rc = pass == 0 ? gk_launch_w4_gemv<true>(kc, M, a, (unsigned)nblk)
                                 : gk_launch_w4_gemv<false>(kc, M, a, (unsigned)nblk);
        if (rc) return rc;
    }
    return 0;
}

extern "C" int awqk_w4_gemv(awqk_ctx *kc, const awqk_w4 *w, int M, const float *x, long long ldx, float *y,
                            long long ldy, const void *bias, int bias_dt) {
    const awqk_w4 *ws[1] = {w};
    float *ys[1] = {y};
    const long long lds[1] = {ldy};
    const void *bs[1] = {bias};
    const int bd[1] = {bias_dt};
    return gk_w4_gemv(kc, 1, ws, M, x, ldx, ys, lds, bs, bd);
}

extern "C" int awqk_w4_gemv_multi(awqk_ctx *kc, int nw, const awqk_w4 *const *w, int M, const float *x,
                                  long long ldx, float *const *y, const long long *ldy,
                                  const void *const *bias, const int *bias_dt) {
    return gk_w4_gemv(kc, nw, w, M, x, ldx, y, ldy, bias, bias_dt);
}

/* ---- W4A16 Tensor-Core GEMM ------------------------------------------------------------------- */

/* The GEMM's shape choices: rows per block, k splits, and the workspace they need. Split-K when
 * the BM x 128 output tiles leave multiprocessors idle: enough splits to cover n_sm, each split
 * keeping at least 4 k tiles (128 k), at most 16 splits. */
struct gk_w4_plan {
    int bm, splits, nkt;
    size_t xh_bytes, part_bytes;
};
static gk_w4_plan gk_w4_plan_for(const awqk_ctx *kc, int M, int K, int N) {
    gk_w4_plan p;
    p.bm = M <= 16 ? 16 : M <= 32 ? 32 : 64;
    p.nkt = (K + W4TC_BK - 1) / W4TC_BK;
    const long long tiles = (long long)((M + p.bm - 1) / p.bm) * ((N + W4TC_BN - 1) / W4TC_BN);
    const int n_sm = kc && kc->n_sm > 0 ? kc->n_sm : 1;
    p.splits = 1;
    if (tiles > 0 && tiles < n_sm) {
        long long s = (n_sm + tiles - 1) / tiles;
        const int smax = p.nkt / 4 > 1 ? p.nkt / 4 : 1;
        if (s > smax) s = smax;
        if (s > 16) s = 16;
        p.splits = (int)s;
    }
    p.xh_bytes = gk_align256((size_t)M * (size_t)K * 2);
    p.part_bytes = p.splits > 1 ? (size_t)p.splits * (size_t)M * (size_t)N * sizeof(float) : 0;
    return p;
}

extern "C" size_t awqk_w4_gemm_ws_bytes(const awqk_ctx *kc, int M, int K, int N) {
    if (M <= 0 || K <= 0 || N <= 0) return 0;
    const gk_w4_plan p = gk_w4_plan_for(kc, M, K, N);
    return p.xh_bytes + p.part_bytes;
}

static int gk_launch_xh(awqk_ctx *kc, const float *x, long long ldx, int M, int K, uint16_t *xh) {
    AWQK_LAUNCH(kc, "awqk_w4_gemm(x to fp16)", awqk_w4_gemm_xh_kernel, dim3(gk_blocks((long long)M * K, 256)),
                dim3(256), 0, x, ldx, M, K, xh);
}
static int gk_launch_reduce(awqk_ctx *kc, const float *part, int splits, int M, int N, float *y,
                            long long ldy, const void *bias, int bias_dt) {
    AWQK_LAUNCH(kc, "awqk_w4_gemm(split-K reduction)", awqk_w4_gemm_reduce_kernel,
                dim3(gk_blocks((long long)M * N, 256)), dim3(256), 0, part, splits, M, N, y, ldy, bias,
                bias_dt);
}
template <bool SM80, int BM> static int gk_launch_tc(awqk_ctx *kc, const w4_gemm_args &a) {
    const dim3 grid(gk_blocks(a.N, W4TC_BN), gk_blocks(a.M, BM), (unsigned)a.splits);
    AWQK_LAUNCH(kc, "awqk_w4_gemm", (awqk_w4_gemm_tc_kernel<SM80, BM>), grid, dim3(W4TC_THREADS),
                w4tc_smem(SM80, BM), a);
}

extern "C" int awqk_w4_gemm(awqk_ctx *kc, const awqk_w4 *w, int M, const float *x, long long ldx, float *y,
                            long long ldy, const void *bias, int bias_dt, void *ws, size_t ws_bytes) {
    if (M <= 0 || w->N <= 0) return 0;
    const int K = w->K, N = w->N;
    gk_w4_plan p = gk_w4_plan_for(kc, M, K, N);
    if (K <= 0) p.splits = 1;
    if (!ws || !gk_aligned16(ws) || ws_bytes < p.xh_bytes)
        return gk_fail(kc,
                       "awqk_w4_gemm: workspace missing, unaligned or smaller than awqk_w4_gemm_ws_bytes");
    if (p.splits > 1 && ws_bytes < p.xh_bytes + p.part_bytes) { /* fewer splits in a smaller workspace */
        const size_t per = (size_t)M * (size_t)N * sizeof(float);
        size_t s = (ws_bytes - p.xh_bytes) / per;
        p.splits = s < 2 ? 1 : (int)(s < (size_t)p.splits ? s : (size_t)p.splits);
    }
    if (p.nkt > 0x7fffffff / 16 || (long long)(M + p.bm - 1) / p.bm > 65535)
        return gk_fail(kc, "awqk_w4_gemm: M or K too large");
    uint16_t *xh = static_cast<uint16_t *>(ws);
    w4_gemm_args a;
    memset(&a, 0, sizeof a);
    a.xh = xh;
    a.qw = w->qweight;
    a.qz = w->qzeros;
    a.sc = w->scales;
    a.y = y;
    a.ldy = ldy;
    a.bias = bias;
    a.bias_dt = bias_dt;
    a.part = p.splits > 1 ? reinterpret_cast<float *>(static_cast<char *>(ws) + p.xh_bytes) : NULL;
    a.M = M;
    a.K = K;
    a.N = N;
    a.gs = w->gs;
    a.splits = p.splits;
    a.nkt = p.nkt;
    a.aligned = N % 32 == 0 && gk_aligned16(w->qweight) && gk_aligned16(w->qzeros);
    if (K > 0 && gk_launch_xh(kc, x, ldx, M, K, xh)) return -1;
    int rc;
    const bool sm80 = kc->sm >= 80;
    if (sm80) {
        rc = p.bm == 16  ? gk_launch_tc<true, 16>(kc, a)
            : p.bm == 32 ? gk_launch_tc<true, 32>(kc, a)
                         : gk_launch_tc<true, 64>(kc, a);
    } else {
        rc = p.bm == 16  ? gk_launch_tc<false, 16>(kc, a)
            : p.bm == 32 ? gk_launch_tc<false, 32>(kc, a)
                         : gk_launch_tc<false, 64>(kc, a);
    }
    if (rc || p.splits == 1) return rc;
    return gk_launch_reduce(kc, a.part, p.splits, M, N, y, ldy, bias, bias_dt);
}

/* ---- W4 dequantization (for dequantize + cuBLAS) ---------------------------------------------- */

static int gk_launch_dequant(awqk_ctx *kc, const awqk_w4 *w, int k0, int nk, uint16_t *dst, long long ld,
                             int vec) {
    AWQK_LAUNCH(kc, "awqk_w4_dequant", awqk_w4_dequant_kernel,
                dim3(gk_blocks((long long)nk * (w->N / 8), 256)), dim3(256), 0, w->qweight, w->qzeros,
                w->scales, w->N, w->gs, k0, nk, dst, ld, vec);
}

extern "C" int awqk_w4_dequant(awqk_ctx *kc, const awqk_w4 *w, int k0, int nk, uint16_t *dst,
                               long long ld_dst) {
    if (nk <= 0 || w->N <= 0) return 0;
    const int vec = gk_aligned16(dst) && ld_dst % 8 == 0;
    return gk_launch_dequant(kc, w, k0, nk, dst, ld_dst, vec);
}

/* ---- dense GEMV / GEMM, Gram ------------------------------------------------------------------ */

template <int WT, int M> static int gk_launch_dense_gemv_m(awqk_ctx *kc, const dn_gemv_args &a) {
    const unsigned nblk = gk_blocks(a.N, (DN_GEMV_THREADS / 32) * DN_GEMV_ROWS);
    AWQK_LAUNCH(kc, "awqk_dense_gemv", (awqk_dense_gemv_kernel<WT, M>), dim3(nblk), dim3(DN_GEMV_THREADS), 0,
                a);
}
template <int WT> static int gk_launch_dense_gemv(awqk_ctx *kc, int M, const dn_gemv_args &a) {
    switch (M) {
    case 1: return gk_launch_dense_gemv_m<WT, 1>(kc, a);
    case 2: return gk_launch_dense_gemv_m<WT, 2>(kc, a);
    case 3: return gk_launch_dense_gemv_m<WT, 3>(kc, a);
    case 4: return gk_launch_dense_gemv_m<WT, 4>(kc, a);
    case 5: return gk_launch_dense_gemv_m<WT, 5>(kc, a);
    case 6: return gk_launch_dense_gemv_m<WT, 6>(kc, a);
    case 7: return gk_launch_dense_gemv_m<WT, 7>(kc, a);
    default: return gk_launch_dense_gemv_m<WT, 8>(kc, a);
    }
}

extern "C" int awqk_dense_gemv(awqk_ctx *kc, int M, int K, int N, const float *x, long long ldx,
                               const void *w, int w_dt, long long ldw, const void *bias, int bias_dt,
                               float *y, long long ldy) {
    if (M <= 0 || N <= 0) return 0;
    if (M > 8) return gk_fail(kc, "awqk_dense_gemv: M must be 1..8");
    const int es = w_dt == AWQK_F32 ? 4 : 2;
    dn_gemv_args a = {K, N, x, ldx, w, ldw, bias, bias_dt, y, ldy, 0};
    a.vec = gk_aligned16(w) && (ldw * es) % 16 == 0 && gk_aligned16(x) && ldx % 4 == 0;
    if (w_dt == AWQK_F16) return gk_launch_dense_gemv<AWQK_F16>(kc, M, a);
    if (w_dt == AWQK_BF16) return gk_launch_dense_gemv<AWQK_BF16>(kc, M, a);
    return gk_launch_dense_gemv<AWQK_F32>(kc, M, a);
}

template <int WT, bool GRAM> static int gk_launch_dense_gemm(awqk_ctx *kc, const dn_gemm_args &a) {
    const dim3 grid(gk_blocks(a.N, DN_TILE), gk_blocks(a.M, DN_TILE));
    AWQK_LAUNCH(kc, GRAM ? "awqk_gram" : "awqk_dense_gemm", (awqk_dense_gemm_kernel<WT, GRAM>), grid,
                dim3(DN_THREADS), 2 * DN_BK * DN_LDS * sizeof(float), a);
}

extern "C" int awqk_dense_gemm(awqk_ctx *kc, int M, int K, int N, const float *x, long long ldx,
                               const void *w, int w_dt, long long ldw, const void *bias, int bias_dt,
                               float *y, long long ldy) {
    if (M <= 0 || N <= 0) return 0;
    if ((M + DN_TILE - 1) / DN_TILE > 65535) return gk_fail(kc, "awqk_dense_gemm: M too large");
    const dn_gemm_args a = {M, N, K, x, ldx, w, ldw, bias, bias_dt, y, ldy, 0};
    if (w_dt == AWQK_F16) return gk_launch_dense_gemm<AWQK_F16, false>(kc, a);
    if (w_dt == AWQK_BF16) return gk_launch_dense_gemm<AWQK_BF16, false>(kc, a);
    return gk_launch_dense_gemm<AWQK_F32, false>(kc, a);
}

extern "C" int awqk_gram(awqk_ctx *kc, int n, int C, const float *x, long long ldx, float *g, long long ldg,
                         int accumulate) {
    if (C <= 0) return 0;
    if ((C + DN_TILE - 1) / DN_TILE > 65535) return gk_fail(kc, "awqk_gram: C too large");
    const dn_gemm_args a = {C, C, n > 0 ? n : 0, x, ldx, NULL, 0, NULL, 0, g, ldg, accumulate};
    return gk_launch_dense_gemm<AWQK_F32, true>(kc, a);
}

#endif /* AWQ_CUDA_LAUNCH_GEMM_CUH */
