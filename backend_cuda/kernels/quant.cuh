/*
 * quant.cuh - the quantization kernels used by the AWQ search (quant/): fake_quant
 * (docs/algorithm.md 7.2), quantize_w4 (7.4, bit-exact with the cpu), reduce (the x-bar / w-bar
 * statistics), scalar (double partial sums), clip_search (docs/algorithm.md 6). Single source
 * (nvcc and the host SIMT emulator, see intrin.cuh); launchers in launch_ops.cuh. Oracle:
 * backend_cpu/kernels/quantize.c,
 * whose operation order every kernel here repeats (the cpu is built as ISO C11: no FMA
 * contraction, so products that feed a sum are rounded separately here too, see q_mul).
 *
 * Anchors: the group-wise pseudo-quantizer is AutoAWQ's pseudo_quantize_tensor (awq/quantize/
 * quantizer.py) done by one warp per group (min/max by warp shuffles, as TinyChat's
 * quantization kernels reduce a group); clip_search is AutoAWQ's _compute_best_clip with one
 * block per (row, group) and the candidate errors in registers.
 */
#ifndef AWQ_CUDA_QUANT_CUH
#define AWQ_CUDA_QUANT_CUH

#include <math.h>
#include <stddef.h>

#include "common.cuh"

#define Q_THREADS     128 /* fake_quant, quantize_w4, clip_search */
#define Q_RED_THREADS 256 /* reduce, scalar */
#define Q_RED_COLS    64  /* reduce: columns per block (2 per lane) */
#define Q_RED_WARPS   (Q_RED_THREADS / 32)

/* a * b rounded on its own, never contracted with a following add into an FMA (nvcc contracts
 * by default; the host build is ISO C++ without contraction). */
__device__ __forceinline__ float q_mul(float a, float b) {
#ifdef AWQ_CUDA_EMU
    return a * b;
#else
    return __fmul_rn(a, b);
#endif
}

/* max / min over a group as the cpu computes them: start from v[0] and take v[k] when
 * v[k] > max (v[k] < min). NaN elements are skipped, except a NaN first element, which sticks.
 * Here: lanes fold with fmaxf/fminf (which skip NaN), then the v[0] rule. */
__device__ __forceinline__ void q_group_minmax(float lo_lane, float hi_lane, float v0, float *mn, float *mx) {
    hi_lane = awqk_warp_max(hi_lane);
    for (int o = 16; o > 0; o >>= 1) lo_lane = fminf(lo_lane, __shfl_xor_sync(0xffffffffu, lo_lane, o));
    *mx = v0 != v0 ? v0 : hi_lane;
    *mn = v0 != v0 ? v0 : lo_lane;
}

/* ---- fake_quant ---------------------------------------------------------------------------
 * wq = Q(clamp(w * s, -clip, clip)) / s per group of gs (docs/algorithm.md 7.2, fp32, round half
 * to even, zero point clamped). One warp per (row, group); the second pass recomputes the scaled and
 * clamped value, so wq may alias w (each element is read and written by the same lane, after
 * the whole warp has finished the first pass at the shuffles). */
__device__ __forceinline__ float q_fq_in(const float *wr, const float *s, const float *cr, int g, int gs,
                                         int k) {
    float x = wr[k];
    if (s) x *= s[(long long)g * gs + k];
    if (cr) {
        const float c = cr[g];
        x = x > c ? c : x < -c ? -c : x;
    }
    return x;
}

__global__ void __launch_bounds__(Q_THREADS)
    q_fake_quant(int out, int G, int gs, int qmax, float *wq, long long ldq, const float *w, long long ldw,
                 const float *s, const float *clip, long long ldc) {
    const int lane = threadIdx.x & 31, wpb = Q_THREADS / 32;
    const long long groups = (long long)out * G;
    const float fq = (float)qmax;
    for (long long gi = (long long)blockIdx.x * wpb + (threadIdx.x >> 5); gi < groups;
         gi += (long long)gridDim.x * wpb) {
        const int o = (int)(gi / G), g = (int)(gi % G);
        const float *wr = w + (long long)o * ldw + (long long)g * gs;
        float *qr = wq + (long long)o * ldq + (long long)g * gs;
        const float *cr = clip ? clip + (long long)o * ldc : nullptr;
        float lo = INFINITY, hi = -INFINITY;
        for (int k = lane; k < gs; k += 32) {
            const float x = q_fq_in(wr, s, cr, g, gs, k);
            lo = fminf(lo, x);
            hi = fmaxf(hi, x);
        }
        float mn, mx;
        q_group_minmax(lo, hi, q_fq_in(wr, s, cr, g, gs, 0), &mn, &mx);
        const float d = mx - mn;
        const float sc = (d > 1e-5f ? d : 1e-5f) / fq;
        float z = -nearbyintf(mn / sc);
        z = z < 0.0f ? 0.0f : z > fq ? fq : z;
        for (int k = lane; k < gs; k += 32) {
            const float x = q_fq_in(wr, s, cr, g, gs, k);
            float q = nearbyintf(x / sc) + z;
            q = q < 0.0f ? 0.0f : q > fq ? fq : q;
            const float v = (q - z) * sc;
            qr[k] = s ? v / s[(long long)g * gs + k] : v;
        }
    }
}

/* ---- quantize_w4 --------------------------------------------------------------------------
 * docs/algorithm.md 7.4 with every operation rounded to fp16, exactly the cpu's sequence:
 *   range = max(h(max - min), h(1e-5)); S = h(range / 15); Z = clamp(-rint(h(min / S)), 0, 15);
 *   code = clamp(h(rint(h(w / S)) + Z), 0, 15)
 * (fp32 operations, each result rounded to fp16; '/' is IEEE round-to-nearest in CUDA, rint
 * rounds half to even). One warp per (row, group). */
__device__ __forceinline__ float q_h(float x) { return awqk_h2f(awqk_f2h(x)); }

__global__ void __launch_bounds__(Q_THREADS)
    q_quantize_w4(int out, int G, int gs, uint8_t *codes, long long ldc, uint16_t *scales, long long lds,
                  uint8_t *zeros, long long ldz, const uint16_t *w, long long ldw) {
    const int lane = threadIdx.x & 31, wpb = Q_THREADS / 32;
    const long long groups = (long long)out * G;
    const float min_range = q_h(1e-5f);
    for (long long gi = (long long)blockIdx.x * wpb + (threadIdx.x >> 5); gi < groups;
         gi += (long long)gridDim.x * wpb) {
        const int o = (int)(gi / G), g = (int)(gi % G);
        const uint16_t *v = w + (long long)o * ldw + (long long)g * gs;
        float lo = INFINITY, hi = -INFINITY;
        for (int k = lane; k < gs; k += 32) {
            const float x = awqk_h2f(v[k]);
            lo = fminf(lo, x);
            hi = fmaxf(hi, x);
        }
        float mn, mx;
        q_group_minmax(lo, hi, awqk_h2f(v[0]), &mn, &mx);
        float range = q_h(mx - mn);
        if (range < min_range) range = min_range;
        const float S = q_h(range / 15.0f);
        float Z = -nearbyintf(q_h(mn / S));
        Z = Z < 0.0f ? 0.0f : Z > 15.0f ? 15.0f : Z;
        if (lane == 0) {
            scales[(long long)o * lds + g] = awqk_f2h(S);
            zeros[(long long)o * ldz + g] = (uint8_t)Z;
        }
        uint8_t *cr = codes + (long long)o * ldc + (long long)g * gs;
        for (int k = lane; k < gs; k += 32) {
            float q = q_h(nearbyintf(q_h(awqk_h2f(v[k]) / S)) + Z);
            q = q < 0.0f ? 0.0f : q > 15.0f ? 15.0f : q;
            cr[k] = (uint8_t)q;
        }
    }
}

/* ---- reduce -------------------------------------------------------------------------------
 * y (c,) over the rows of x (n, c): op 0 mean |x|, 1 mean |x| / (max |x| of its group in the row
 * + 1e-6), 2 max |x|. A block owns 64 columns (2 per lane, coalesced), its 8 warps split the
 * rows; per-lane sums in double (as the cpu), then the warps' partials are added in warp order
 * through shared memory, so the result does not depend on scheduling. Op 1: the max of each
 * group that meets the block's columns is reduced by the warp over the whole group (groups of
 * 32 or fewer: each lane scans its own group). */
__device__ __forceinline__ float q_group_absmax(const float *xr, int g0, int group, int lane) {
    float m = 0.0f;
    for (int j = g0 + lane; j < g0 + group; j += 32) m = fmaxf(m, fabsf(xr[j]));
    return awqk_warp_max(m);
}

__global__ void __launch_bounds__(Q_RED_THREADS)
    q_reduce(int n, int c, int op, int group, const float *x, long long ldx, float *y) {
    AWQK_SMEM(double, part); /* [warps][Q_RED_COLS] */
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int c0 = blockIdx.x * Q_RED_COLS;
    const int ja = c0 + lane, jb = c0 + 32 + lane; /* this lane's columns */
    double acc_a = 0.0, acc_b = 0.0;
    for (int r = warp; r < n; r += Q_RED_WARPS) {
        const float *xr = x + (long long)r * ldx;
        const float xa = ja < c ? fabsf(xr[ja]) : 0.0f, xb = jb < c ? fabsf(xr[jb]) : 0.0f;
        if (op == 0) {
            acc_a += xa;
            acc_b += xb;
        } else if (op == 2) {
            acc_a = xa > acc_a ? xa : acc_a;
            acc_b = xb > acc_b ? xb : acc_b;
        } else {
            float ma = 0.0f, mb = 0.0f;
            if (group <= 32) { /* own group, at most 32 loads per element */
                if (ja < c)
                    for (int j = ja - ja % group, e = j + group; j < e; j++) ma = fmaxf(ma, fabsf(xr[j]));
                if (jb < c)
                    for (int j = jb - jb % group, e = j + group; j < e; j++) mb = fmaxf(mb, fabsf(xr[j]));
            } else { /* the groups meeting [c0, c0 + 64): at most 3, each reduced by the warp */
                const int cl = (c0 + Q_RED_COLS < c ? c0 + Q_RED_COLS : c) - 1;
                for (int g0 = c0 - c0 % group; g0 <= cl; g0 += group) {
                    const float m = q_group_absmax(xr, g0, group, lane);
                    if (ja >= g0 && ja < g0 + group) ma = m;
                    if (jb >= g0 && jb < g0 + group) mb = m;
                }
            }
            acc_a += xa * (1.0f / (ma + 1e-6f));
            acc_b += xb * (1.0f / (mb + 1e-6f));
        }
    }
    part[warp * Q_RED_COLS + lane] = acc_a;
    part[warp * Q_RED_COLS + 32 + lane] = acc_b;
    __syncthreads();
    if (threadIdx.x < Q_RED_COLS && c0 + (int)threadIdx.x < c) {
        double v = 0.0;
        for (int w2 = 0; w2 < Q_RED_WARPS; w2++) {
            const double p = part[w2 * Q_RED_COLS + threadIdx.x];
            v = op == 2 ? (p > v ? p : v) : v + p;
        }
        y[c0 + threadIdx.x] = (float)(op == 2 ? v : v / (double)n);
    }
}

/* ---- scalar -------------------------------------------------------------------------------
 * partial[s], s < AWQK_SCALAR_PARTS: the sum (double) of op over elements [s*N/P, (s+1)*N/P) of
 * the row-major flattening of (n, c), N = n*c; op 0 (a - b)^2, 1 a * b. Slot s is always summed
 * by one block of Q_RED_THREADS threads in the same order (thread-strided, then a fixed tree),
 * whatever the grid, so the caller's in-order sum of the slots is deterministic. */
__global__ void __launch_bounds__(Q_RED_THREADS)
    q_scalar(long long n, int c, int op, const float *a, long long lda, const float *b, long long ldb,
             double *partial) {
    AWQK_SMEM(double, red); /* [Q_RED_THREADS] */
    const long long N = n * c;
    const int tid = threadIdx.x;
    const long long dr = Q_RED_THREADS / c, dc = Q_RED_THREADS % c; /* one stride in (row, col) */
    for (int slot = blockIdx.x; slot < AWQK_SCALAR_PARTS; slot += gridDim.x) {
        const long long lo =
            N / AWQK_SCALAR_PARTS * slot + (N % AWQK_SCALAR_PARTS) * slot / AWQK_SCALAR_PARTS;
        const long long hi =
            N / AWQK_SCALAR_PARTS * (slot + 1) + (N % AWQK_SCALAR_PARTS) * (slot + 1) / AWQK_SCALAR_PARTS;
        double s = 0.0;
        if (lo + tid < hi) {
            long long r = (lo + tid) / c, col = (lo + tid) % c;
            for (long long e = lo + tid; e < hi; e += Q_RED_THREADS) {
                const float av = a[r * lda + col], bv = b[r * ldb + col];
                if (op == 0) {
                    const double d = (double)av - (double)bv;
                    s += d * d;
                } else {
                    s += (double)av * (double)bv;
                }
                r += dr;
                col += dc;
                if (col >= c) {
                    col -= c;
                    r++;
                }
            }
        }
        red[tid] = s;
        __syncthreads();
        for (int h = Q_RED_THREADS / 2; h > 0; h >>= 1) {
            if (tid < h) red[tid] += red[tid + h];
            __syncthreads();
        }
        if (tid == 0) partial[slot] = red[0];
        __syncthreads(); /* red is reused by the next slot */
    }
}

/* ---- clip_search --------------------------------------------------------------------------
 * docs/algorithm.md 6 for one (row o, group g) per block iteration: m = max|w|; candidate
 * i < n_steps: c_i = m (1 - i / n_grid), wc = clamp(w, -c_i, c_i), dq_i = Q(wc) - w (7.2); err_i =
 * sum_t (sum_k x[t,k] dq_i[k])^2 (the cpu's k_sq_err16: fp32 inner sums in k order, products
 * rounded separately, squares accumulated in double); best = the c_i with the strictly smallest
 * err_i / n, starting from 1e9 (ties keep the larger clip).
 * max(clamp(w)) = clamp(max(w)) (clamp is monotonic), so one min/max/absmax reduction gives every
 * candidate's scale and zero point. dq for CB candidates at a time lives in shared memory as
 * [gs][CB]; a thread takes tokens t = tid, tid + 128, ... and keeps the CB running sums and CB
 * double errors in registers; warps combine by shuffles, then in warp order. CB = 16 for
 * gs <= 512, 8 for gs <= 1024 (32 KiB of dq). */
template <int CB>
__global__ void __launch_bounds__(Q_THREADS, 4) /* 128-register budget, see attention.cuh */
    q_clip_search(int out, int G, int gs, int n, int qmax, int n_grid, int n_steps, const float *w,
                  long long ldw, const float *x, long long ldx, float *best, long long ldb) {
    AWQK_SMEM(float, smem);
    float *Ds = smem;                                   /* [gs][CB] */
    float *Cc = Ds + (size_t)gs * CB;                   /* [16] candidate clip */
    float *Cs = Cc + 16;                                /* [16] scale */
    float *Cz = Cs + 16;                                /* [16] zero point */
    float *Red = Cz + 16;                               /* [3 * warps] min, max, absmax */
    double *Err = reinterpret_cast<double *>(Red + 16); /* [16] errors; [warps][CB] partials after */
    double *Wp = Err + 16;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, nw = Q_THREADS / 32;
    const float fq = (float)qmax;
    const long long groups = (long long)out * G;
    for (long long gi = blockIdx.x; gi < groups; gi += gridDim.x) {
        const int o = (int)(gi / G), g = (int)(gi % G);
        const float *wg = w + (long long)o * ldw + (long long)g * gs;
        const float *xg = x + (long long)g * gs;
        /* min, max, max|w| of the group */
        float lo = INFINITY, hi = -INFINITY, am = 0.0f;
        for (int k = tid; k < gs; k += Q_THREADS) {
            const float v = wg[k];
            lo = fminf(lo, v);
            hi = fmaxf(hi, v);
            am = fmaxf(am, fabsf(v));
        }
        hi = awqk_warp_max(hi);
        am = awqk_warp_max(am);
        for (int o2 = 16; o2 > 0; o2 >>= 1) lo = fminf(lo, __shfl_xor_sync(0xffffffffu, lo, o2));
        if (lane == 0) {
            Red[warp] = lo;
            Red[nw + warp] = hi;
            Red[2 * nw + warp] = am;
        }
        __syncthreads();
        if (tid < 16) {
            float mn = Red[0], mx = Red[nw], m = Red[2 * nw];
            for (int i = 1; i < nw; i++) {
                mn = fminf(mn, Red[i]);
                mx = fmaxf(mx, Red[nw + i]);
                m = fmaxf(m, Red[2 * nw + i]);
            }
            const float v0 = wg[0]; /* the cpu's min/max start from element 0 (NaN sticks) */
            if (v0 != v0) mn = mx = v0;
            const int i = tid;
            const float cc = m * (1.0f - (float)i / (float)n_grid);
            const float ch = mx > cc ? cc : mx < -cc ? -cc : mx; /* = max of the clamped group */
            const float cl = mn > cc ? cc : mn < -cc ? -cc : mn;
            const float d = ch - cl;
            const float sc = (d > 1e-5f ? d : 1e-5f) / fq;
            float z = -nearbyintf(cl / sc);
            z = z < 0.0f ? 0.0f : z > fq ? fq : z;
            Cc[i] = cc;
            Cs[i] = sc;
            Cz[i] = z;
            Err[i] = 0.0;
        }
        __syncthreads();
        for (int i0 = 0; i0 < n_steps; i0 += CB) {
            /* dq[k][ii] for candidates i0 + ii (0 past n_steps) */
            for (int e = tid; e < gs * CB; e += Q_THREADS) {
                const int k = e / CB, ii = e % CB, i = i0 + ii;
                float dq = 0.0f;
                if (i < n_steps) {
                    const float v = wg[k], cc = Cc[i], sc = Cs[i], z = Cz[i];
                    const float wc = v > cc ? cc : v < -cc ? -cc : v;
                    float q = nearbyintf(wc / sc) + z;
                    q = q < 0.0f ? 0.0f : q > fq ? fq : q;
                    dq = q_mul(q - z, sc) - v;
                }
                Ds[e] = dq;
            }
            __syncthreads();
            double err[CB];
#pragma unroll
            for (int ii = 0; ii < CB; ii++) err[ii] = 0.0;
            for (int t = tid; t < n; t += Q_THREADS) {
                const float *xt = xg + (long long)t * ldx;
                float sacc[CB];
#pragma unroll
                for (int ii = 0; ii < CB; ii++) sacc[ii] = 0.0f;
#pragma unroll 2
                for (int k = 0; k < gs; k++) {
                    const float xk = xt[k];
                    const float4 *d4 = reinterpret_cast<const float4 *>(Ds + k * CB);
#pragma unroll
                    for (int q4 = 0; q4 < CB / 4; q4++) {
                        const float4 dv = d4[q4];
                        sacc[4 * q4 + 0] += q_mul(xk, dv.x);
                        sacc[4 * q4 + 1] += q_mul(xk, dv.y);
                        sacc[4 * q4 + 2] += q_mul(xk, dv.z);
                        sacc[4 * q4 + 3] += q_mul(xk, dv.w);
                    }
                }
#pragma unroll
                for (int ii = 0; ii < CB; ii++) err[ii] += (double)sacc[ii] * (double)sacc[ii];
            }
#pragma unroll
            for (int ii = 0; ii < CB; ii++) {
                double e = err[ii];
                for (int o2 = 16; o2 > 0; o2 >>= 1) e += __shfl_xor_sync(0xffffffffu, e, o2);
                if (lane == 0) Wp[warp * CB + ii] = e;
            }
            __syncthreads();
            if (tid < CB && i0 + tid < n_steps) {
                double e = 0.0;
                for (int w2 = 0; w2 < nw; w2++) e += Wp[w2 * CB + tid];
                Err[i0 + tid] = e;
            }
            __syncthreads(); /* Ds and Wp are rewritten by the next batch / group */
        }
        if (tid == 0) {
            double bst = 1e9;
            float bc = Cc[0]; /* = m, the cpu's start */
            for (int i = 0; i < n_steps; i++) {
                const double e = Err[i] / (double)n;
                if (e < bst) {
                    bst = e;
                    bc = Cc[i];
                }
            }
            best[(long long)o * ldb + g] = bc;
        }
        /* no barrier needed here: the next group writes Red (last read before this group's
         * second barrier) and then Cc/Err only after a barrier thread 0 reaches after this read */
    }
}

/* Shared memory bytes of q_clip_search<CB> (host only, for the launcher). */
static inline size_t q_clip_smem_bytes(int gs, int cb) {
    return (size_t)gs * cb * sizeof(float) + 64 * sizeof(float) +
        (16 + (Q_THREADS / 32) * cb) * sizeof(double);
}

#endif /* AWQ_CUDA_QUANT_CUH */
