/*
 * ops.cuh - row and element-wise kernels of the CUDA backend: rmsnorm, rope, silu_mul,
 * binop, get_rows, convert. Single source (nvcc and the host SIMT emulator, see
 * intrin.cuh); the launchers are in launch_ops.cuh. Semantics: awq_backend.h, with the cpu
 * backend (backend_cpu/kernels/elementwise.c) as the oracle.
 *
 * Two shapes of kernel, both grid-stride so the grid can stay a few blocks per SM (cheap on the
 * GPU, and few fibers on the emulator):
 *  - reductions over a row (rmsnorm): one warp per row, 4 warps per block, warp-shuffle
 *    reductions only (no __syncthreads), as ggml-cuda's rms_norm_f32 / soft_max_f32 do for short
 *    rows;
 *  - element-wise ops: "units" of (row, 1024-column chunk), one block of 256 threads per unit,
 *    consecutive threads on consecutive columns (coalesced), so a single long row (decode) still
 *    spreads over several blocks.
 */
#ifndef AWQ_CUDA_OPS_CUH
#define AWQ_CUDA_OPS_CUH

#include <math.h>

#include "common.cuh"

#define OPS_ROW_THREADS 128 /* 4 warps, one row each */
#define OPS_EW_THREADS  256
#define OPS_EW_CHUNK    1024 /* columns per element-wise unit (4 per thread) */

/* ---- rmsnorm ------------------------------------------------------------------------------
 * y = x * r * gamma, r = 1 / sqrt(mean(x^2) + eps). The sum of squares is accumulated in double
 * (each product (double)x * x is exact), as the cpu does, so r is the cpu's r up to the order of
 * a double sum. y may alias x: each lane reads and writes only its own elements after the
 * reduction. */
__global__ void __launch_bounds__(OPS_ROW_THREADS)
    ops_rmsnorm(int n, int d, const float *x, long long ldx, const void *gamma, int gamma_dt, float eps,
                float *y, long long ldy) {
    const int lane = threadIdx.x & 31;
    const int wpb = blockDim.x >> 5;
    for (int r = blockIdx.x * wpb + (threadIdx.x >> 5); r < n; r += gridDim.x * wpb) {
        const float *xr = x + (long long)r * ldx;
        float *yr = y + (long long)r * ldy;
        double ss = 0.0;
        for (int j = lane; j < d; j += 32) {
            double v = (double)xr[j];
            ss += v * v;
        }
        for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
        const float rs = (float)(1.0 / sqrt(ss / (double)d + (double)eps));
        for (int j = lane; j < d; j += 32) yr[j] = xr[j] * rs * awqk_ld(gamma, gamma_dt, j);
    }
}

/* ---- element-wise units ---------------------------------------------------------------------- */

/* Unit u of an (n, d) element-wise op: row *r, columns [*c0, *c1). */
__device__ __forceinline__ void ops_unit(long long u, int nch, int d, int *r, int *c0, int *c1) {
    *r = (int)(u / nch);
    *c0 = (int)(u % nch) * OPS_EW_CHUNK;
    *c1 = d - *c0 < OPS_EW_CHUNK ? d : *c0 + OPS_EW_CHUNK;
}

/* y = silu(gate) * up = gate / (1 + exp(-gate)) * up (the cpu's expression). */
__global__ void __launch_bounds__(OPS_EW_THREADS)
    ops_silu_mul(int n, int d, float *y, long long ldy, const float *gate, long long ldg, const float *up,
                 long long ldu) {
    const int nch = (d + OPS_EW_CHUNK - 1) / OPS_EW_CHUNK;
    const long long units = (long long)n * nch;
    for (long long u = blockIdx.x; u < units; u += gridDim.x) {
        int r, c0, c1;
        ops_unit(u, nch, d, &r, &c0, &c1);
        const float *g = gate + (long long)r * ldg, *up_r = up + (long long)r * ldu;
        float *yr = y + (long long)r * ldy;
        for (int j = c0 + (int)threadIdx.x; j < c1; j += blockDim.x) {
            const float gv = g[j];
            yr[j] = gv / (1.0f + expf(-gv)) * up_r[j];
        }
    }
}

/* y = gelu_tanh(gate) * up = 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3))) * up (the cpu's
 * expression; Gemma's gelu_pytorch_tanh). */
__global__ void __launch_bounds__(OPS_EW_THREADS)
    ops_gelu_mul(int n, int d, float *y, long long ldy, const float *gate, long long ldg, const float *up,
                 long long ldu) {
    const int nch = (d + OPS_EW_CHUNK - 1) / OPS_EW_CHUNK;
    const long long units = (long long)n * nch;
    for (long long u = blockIdx.x; u < units; u += gridDim.x) {
        int r, c0, c1;
        ops_unit(u, nch, d, &r, &c0, &c1);
        const float *g = gate + (long long)r * ldg, *up_r = up + (long long)r * ldu;
        float *yr = y + (long long)r * ldy;
        for (int j = c0 + (int)threadIdx.x; j < c1; j += blockDim.x) {
            const float gv = g[j];
            const float t = tanhf(0.7978845608028654f * (gv + 0.044715f * gv * gv * gv));
            yr[j] = 0.5f * gv * (1.0f + t) * up_r[j];
        }
    }
}

/* x = cap * tanh(x / cap) in place (logit soft-capping). */
__global__ void __launch_bounds__(OPS_EW_THREADS)
    ops_softcap(int n, int d, float *x, long long ldx, float cap) {
    const int nch = (d + OPS_EW_CHUNK - 1) / OPS_EW_CHUNK;
    const long long units = (long long)n * nch;
    const float inv = 1.0f / cap;
    for (long long u = blockIdx.x; u < units; u += gridDim.x) {
        int r, c0, c1;
        ops_unit(u, nch, d, &r, &c0, &c1);
        float *xr = x + (long long)r * ldx;
        for (int j = c0 + (int)threadIdx.x; j < c1; j += blockDim.x) xr[j] = cap * tanhf(xr[j] * inv);
    }
}

/* y = a op b (op: 0 add, 1 sub, 2 mul, 3 div), b of any float dtype, ldb == 0 broadcasts b's
 * single row. y may alias a (each element is read and written by the same thread). */
__global__ void __launch_bounds__(OPS_EW_THREADS)
    ops_binop(int n, int d, int op, float *y, long long ldy, const float *a, long long lda, const void *b,
              int b_dt, long long ldb) {
    const int nch = (d + OPS_EW_CHUNK - 1) / OPS_EW_CHUNK;
    const long long units = (long long)n * nch;
    for (long long u = blockIdx.x; u < units; u += gridDim.x) {
        int r, c0, c1;
        ops_unit(u, nch, d, &r, &c0, &c1);
        const float *ar = a + (long long)r * lda;
        const long long boff = (long long)r * ldb;
        float *yr = y + (long long)r * ldy;
        for (int j = c0 + (int)threadIdx.x; j < c1; j += blockDim.x) {
            const float av = ar[j], bv = awqk_ld(b, b_dt, boff + j);
            float v;
            switch (op) {
            case 0: v = av + bv; break;
            case 1: v = av - bv; break;
            case 2: v = av * bv; break;
            default: v = av / bv; break; /* IEEE division (CUDA's default '/') */
            }
            yr[j] = v;
        }
    }
}

/* y row i = table row ids[i] as F32; an id outside [0, V) gives a zero row and *bad = 1 (the
 * table is never read out of bounds). */
__global__ void __launch_bounds__(OPS_EW_THREADS)
    ops_get_rows(int n, int d, float *y, long long ldy, const void *table, int table_dt, long long ldt,
                 const int32_t *ids, int V, int *bad) {
    const int nch = (d + OPS_EW_CHUNK - 1) / OPS_EW_CHUNK;
    const long long units = (long long)n * nch;
    for (long long u = blockIdx.x; u < units; u += gridDim.x) {
        int r, c0, c1;
        ops_unit(u, nch, d, &r, &c0, &c1);
        const int id = ids[r];
        float *yr = y + (long long)r * ldy;
        if (id < 0 || id >= V) {
            if (threadIdx.x == 0 && c0 == 0) atomicExch(bad, 1); /* several blocks may store it */
            for (int j = c0 + (int)threadIdx.x; j < c1; j += blockDim.x) yr[j] = 0.0f;
            continue;
        }
        const long long toff = (long long)id * ldt;
        for (int j = c0 + (int)threadIdx.x; j < c1; j += blockDim.x)
            yr[j] = awqk_ld(table, table_dt, toff + j);
    }
}

/* y = x cast between F32/F16/BF16 (round to nearest even; NaN stays NaN). Equal dtypes copy the
 * bits, so NaN payloads survive as in the cpu's memmove. */
__global__ void __launch_bounds__(OPS_EW_THREADS)
    ops_convert(int n, int d, void *y, int y_dt, long long ldy, const void *x, int x_dt, long long ldx) {
    const int nch = (d + OPS_EW_CHUNK - 1) / OPS_EW_CHUNK;
    const long long units = (long long)n * nch;
    for (long long u = blockIdx.x; u < units; u += gridDim.x) {
        int r, c0, c1;
        ops_unit(u, nch, d, &r, &c0, &c1);
        const long long xo = (long long)r * ldx, yo = (long long)r * ldy;
        if (x_dt == y_dt && x_dt != AWQK_F32) {
            const uint16_t *xs = static_cast<const uint16_t *>(x) + xo;
            uint16_t *ys = static_cast<uint16_t *>(y) + yo;
            for (int j = c0 + (int)threadIdx.x; j < c1; j += blockDim.x) ys[j] = xs[j];
        } else if (x_dt == y_dt) {
            const uint32_t *xs = static_cast<const uint32_t *>(x) + xo;
            uint32_t *ys = static_cast<uint32_t *>(y) + yo;
            for (int j = c0 + (int)threadIdx.x; j < c1; j += blockDim.x) ys[j] = xs[j];
        } else {
            for (int j = c0 + (int)threadIdx.x; j < c1; j += blockDim.x)
                awqk_st(y, y_dt, yo + j, awqk_ld(x, x_dt, xo + j));
        }
    }
}

/* ---- rope -------------------------------------------------------------------------------------
 * sin and cos of an fp32 angle without CUDA's sinf/cosf: their slow path for large arguments
 * (Payne-Hanek) keeps a table in local memory, which the resource gates forbid. The angle is
 * reduced by pi/2 in double (exact enough for |th| < 2^30, far beyond any position * inv_freq),
 * then short Taylor polynomials on [-pi/4, pi/4] in fp32 (truncation < 2e-9): within a few ulp
 * of the cpu's sinf/cosf. Inf/NaN angles give NaN, as sinf/cosf do. */
__device__ __forceinline__ void ops_sincos(float th, float *sn, float *cs) {
    if (!(fabsf(th) < 1.0e9f)) {
        *sn = *cs = th - th; /* NaN for inf and NaN */
        return;
    }
    const double k = rint((double)th * 0.63661977236758134308);       /* 2 / pi */
    const float r = (float)((double)th - k * 1.57079632679489661923); /* pi / 2 */
    const int q = (int)((long long)k & 3);
    const float r2 = r * r;
    const float s = r + r * r2 * (-1.0f / 6 + r2 * (1.0f / 120 + r2 * (-1.0f / 5040 + r2 * (1.0f / 362880))));
    const float c6 = 1.0f / 40320 + r2 * (-1.0f / 3628800);
    const float c = 1.0f + r2 * (-0.5f + r2 * (1.0f / 24 + r2 * (-1.0f / 720 + r2 * c6)));
    *sn = q == 0 ? s : q == 1 ? c : q == 2 ? -s : -c;
    *cs = q == 0 ? c : q == 1 ? -s : q == 2 ? -c : s;
}

/* x (nt, nh, 2*half) in place, row (t, h) at x + t*s0 + h*s1. One thread per (t, i) pair: the
 * angle and its sin/cos are computed once and applied to every head. */
__global__ void __launch_bounds__(OPS_ROW_THREADS)
    ops_rope(int nt, int nh, int half, float *x, long long s0, long long s1, const int32_t *pos,
             const float *inv_freq, float attn_factor) {
    const long long total = (long long)nt * half;
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < total;
         e += (long long)gridDim.x * blockDim.x) {
        const int t = (int)(e / half), i = (int)(e % half);
        const float th = (float)pos[t] * inv_freq[i];
        float sn, cs;
        ops_sincos(th, &sn, &cs);
        const float c = cs * attn_factor, s = sn * attn_factor;
        float *xt = x + (long long)t * s0 + i;
        for (int h = 0; h < nh; h++) {
            float *v = xt + (long long)h * s1;
            const float a = v[0], b = v[half];
            v[0] = a * c - b * s;
            v[half] = b * c + a * s;
        }
    }
}

#endif /* AWQ_CUDA_OPS_CUH */
