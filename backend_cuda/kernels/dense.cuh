/*
 * dense.cuh - the dense fp32 kernel bodies: GEMV for 1..8 rows (y = x w^T + bias with w F32, F16 or
 * BF16), a SIMT GEMM for any M in shared-memory tiles, and the Gram matrix g (+)= x^T x. All math in
 * fp32 (weights converted on load), matching the cpu backend within fp32 rounding. Single source:
 * nvcc and the host emulator (intrin.cuh). Launchers: launch_gemm.cuh.
 */
#ifndef AWQ_CUDA_DENSE_CUH
#define AWQ_CUDA_DENSE_CUH

#include "common.cuh"

/* ---- GEMV ------------------------------------------------------------------------------------ */

#define DN_GEMV_THREADS 128
#define DN_GEMV_ROWS    2 /* weight rows (outputs) per warp */

struct dn_gemv_args {
    int K, N;
    const float *x;
    long long ldx;
    const void *w;
    long long ldw;
    const void *bias;
    int bias_dt;
    float *y;
    long long ldy;
    int vec; /* w rows and x rows 16-byte aligned: 128-bit loads */
};

/* 8 consecutive weights of dtype WT from a 16-byte aligned address, as fp32 (F32: two loads). */
template <int WT> __device__ __forceinline__ void dn_load8(const void *p, float v[8]) {
    if (WT == AWQK_F32) {
        const uint4 a = awqk_ldg128(p), b = awqk_ldg128(static_cast<const float *>(p) + 4);
        v[0] = awqk_uint_as_float(a.x);
        v[1] = awqk_uint_as_float(a.y);
        v[2] = awqk_uint_as_float(a.z);
        v[3] = awqk_uint_as_float(a.w);
        v[4] = awqk_uint_as_float(b.x);
        v[5] = awqk_uint_as_float(b.y);
        v[6] = awqk_uint_as_float(b.z);
        v[7] = awqk_uint_as_float(b.w);
    } else {
        const uint4 a = awqk_ldg128(p);
        const uint32_t u[4] = {a.x, a.y, a.z, a.w};
#pragma unroll
        for (int i = 0; i < 4; i++) {
            if (WT == AWQK_F16) {
                v[2 * i] = awqk_h2f((uint16_t)(u[i] & 0xffffu));
                v[2 * i + 1] = awqk_h2f((uint16_t)(u[i] >> 16));
            } else {
                v[2 * i] = awqk_uint_as_float(u[i] << 16);
                v[2 * i + 1] = awqk_uint_as_float(u[i] & 0xffff0000u);
            }
        }
    }
}

/* Dense GEMV, M = 1..8 (anchor: the cpu backend's decode loop and the AutoAWQ GEMV's warp-per-row
 * structure): warp w of the block owns weight rows 2 (4 b + w) + {0, 1}; lanes stride over K in
 * chunks of 8 (128-bit loads of w and x when aligned), fp32 FMA, warp-shuffle reduction. */
template <int WT, int M>
__global__ void __launch_bounds__(DN_GEMV_THREADS) awqk_dense_gemv_kernel(dn_gemv_args a) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int nb = (blockIdx.x * (DN_GEMV_THREADS / 32) + warp) * DN_GEMV_ROWS;
    if (nb >= a.N) return; /* whole warps only: no collective below is split */
    const int es = WT == AWQK_F32 ? 4 : 2;
    const char *wb = static_cast<const char *>(a.w);
    float acc[M][DN_GEMV_ROWS];
#pragma unroll
    for (int m = 0; m < M; m++)
#pragma unroll
        for (int r = 0; r < DN_GEMV_ROWS; r++) acc[m][r] = 0.0f;
    int kv = 0;
    if (a.vec) {
        kv = a.K / 8 * 8;
        for (int k = lane * 8; k < kv; k += 32 * 8) {
            float wv[DN_GEMV_ROWS][8];
#pragma unroll
            for (int r = 0; r < DN_GEMV_ROWS; r++) {
                const int n = nb + r < a.N ? nb + r : a.N - 1; /* a clamped row: computed, not stored */
                dn_load8<WT>(wb + ((long long)n * a.ldw + k) * es, wv[r]);
            }
#pragma unroll
            for (int m = 0; m < M; m++) {
                const float *xr = a.x + (long long)m * a.ldx + k;
                const float4 x0 = *reinterpret_cast<const float4 *>(xr),
                             x1 = *reinterpret_cast<const float4 *>(xr + 4);
                const float xv[8] = {x0.x, x0.y, x0.z, x0.w, x1.x, x1.y, x1.z, x1.w};
#pragma unroll
                for (int r = 0; r < DN_GEMV_ROWS; r++)
#pragma unroll
                    for (int i = 0; i < 8; i++) acc[m][r] = fmaf(xv[i], wv[r][i], acc[m][r]);
            }
        }
    }
    for (int k = kv + lane; k < a.K; k += 32) { /* scalar path, and the tail of the vector path */
        float wv[DN_GEMV_ROWS];
#pragma unroll
        for (int r = 0; r < DN_GEMV_ROWS; r++) {
            const int n = nb + r < a.N ? nb + r : a.N - 1;
            wv[r] = awqk_ld(a.w, WT, (long long)n * a.ldw + k);
        }
#pragma unroll
        for (int m = 0; m < M; m++) {
            const float xv = a.x[(long long)m * a.ldx + k];
#pragma unroll
            for (int r = 0; r < DN_GEMV_ROWS; r++) acc[m][r] = fmaf(xv, wv[r], acc[m][r]);
        }
    }
#pragma unroll
    for (int m = 0; m < M; m++)
#pragma unroll
        for (int r = 0; r < DN_GEMV_ROWS; r++) acc[m][r] = awqk_warp_sum(acc[m][r]);
    if (lane < M * DN_GEMV_ROWS) {
        /* lane -> (m, r) with compile-time indices: pick the lane's value with a select chain */
        float v = 0.0f;
#pragma unroll
        for (int m = 0; m < M; m++)
#pragma unroll
            for (int r = 0; r < DN_GEMV_ROWS; r++)
                if (lane == m * DN_GEMV_ROWS + r) v = acc[m][r];
        const int m = lane / DN_GEMV_ROWS, n = nb + lane % DN_GEMV_ROWS;
        if (n < a.N) {
            if (a.bias) v += awqk_ld(a.bias, a.bias_dt, n);
            a.y[(long long)m * a.ldy + n] = v;
        }
    }
}

/* ---- SIMT GEMM and Gram ---------------------------------------------------------------------- */

#define DN_TILE    64  /* output tile 64 x 64 */
#define DN_BK      16  /* k per step */
#define DN_LDS     68  /* shared row stride in floats (64 + 4: rows stay 16-byte aligned) */
#define DN_THREADS 256 /* 16 x 16 threads, 4 x 4 outputs each */

struct dn_gemm_args {
    int M, N, K;
    const float *x; /* dense: (M, K); gram: (K, M) with M == N == C, K == n */
    long long ldx;
    const void *w; /* dense: (N, K) of dtype WT; gram: unused (x again) */
    long long ldw;
    const void *bias;
    int bias_dt;
    float *y;
    long long ldy;
    int accumulate; /* gram: y += result */
};

/* Loads a DN_TILE x DN_BK tile of op(P) (row i, column k) into S[k][i] (converted to fp32, zero
 * outside rows / K). KMAJOR: element (i, k) at p[i * ld + k] (rows of x or w, coalesced along k);
 * otherwise at p[k * ld + i] (columns of x for the Gram matrix, coalesced along i). */
template <int WT, bool KMAJOR>
__device__ __forceinline__ void dn_load_tile(float *S, const void *p, long long ld, int i0, int rows, int k0,
                                             int K) {
#pragma unroll
    for (int e = threadIdx.x; e < DN_TILE * DN_BK; e += DN_THREADS) {
        const int kk = KMAJOR ? (e & (DN_BK - 1)) : (e / DN_TILE),
                  ii = KMAJOR ? (e / DN_BK) : (e & (DN_TILE - 1));
        const int i = i0 + ii, k = k0 + kk;
        float v = 0.0f;
        if (i < rows && k < K) v = awqk_ld(p, WT, KMAJOR ? (long long)i * ld + k : (long long)k * ld + i);
        S[kk * DN_LDS + ii] = v;
    }
}

/* C (M x N) = A B^T in 64 x 64 tiles, 16 x 16 threads with 4 x 4 outputs each (rows ty + 16 i,
 * columns tx + 16 j: conflict-free shared reads), fp32 FMA (the classic SIMT shared-memory GEMM,
 * as in the CUDA samples / CUTLASS SIMT). GRAM = false: y = x w^T + bias (dense matmul);
 * GRAM = true: y (+)= x^T x. */
template <int WT, bool GRAM>
__global__ void __launch_bounds__(DN_THREADS) awqk_dense_gemm_kernel(dn_gemm_args a) {
    AWQK_SMEM(float, As); /* [DN_BK][DN_LDS], then Bs */
    float *Bs = As + DN_BK * DN_LDS;
    const int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;
    const int n0 = blockIdx.x * DN_TILE, m0 = blockIdx.y * DN_TILE;
    float acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = 0.0f;
    for (int k0 = 0; k0 < a.K; k0 += DN_BK) {
        if (GRAM) {
            dn_load_tile<AWQK_F32, false>(As, a.x, a.ldx, m0, a.M, k0, a.K);
            dn_load_tile<AWQK_F32, false>(Bs, a.x, a.ldx, n0, a.N, k0, a.K);
        } else {
            dn_load_tile<AWQK_F32, true>(As, a.x, a.ldx, m0, a.M, k0, a.K);
            dn_load_tile<WT, true>(Bs, a.w, a.ldw, n0, a.N, k0, a.K);
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < DN_BK; kk++) {
            float av[4], bv[4];
#pragma unroll
            for (int i = 0; i < 4; i++) av[i] = As[kk * DN_LDS + ty + 16 * i];
#pragma unroll
            for (int j = 0; j < 4; j++) bv[j] = Bs[kk * DN_LDS + tx + 16 * j];
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int j = 0; j < 4; j++) {
        const int n = n0 + tx + 16 * j;
        if (n >= a.N) continue;
        const float b = !GRAM && a.bias ? awqk_ld(a.bias, a.bias_dt, n) : 0.0f;
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const int m = m0 + ty + 16 * i;
            if (m >= a.M) continue;
            float *yp = a.y + (long long)m * a.ldy + n;
            *yp = GRAM && a.accumulate ? *yp + acc[i][j] : acc[i][j] + b;
        }
    }
}

#endif /* AWQ_CUDA_DENSE_CUH */
