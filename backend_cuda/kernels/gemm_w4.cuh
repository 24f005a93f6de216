/*
 * gemm_w4.cuh - the W4A16 kernel bodies (AWQ int4 weights in the AutoAWQ GEMM layout, fp32
 * activations): the CUDA-core GEMV for 1..8 rows (also fused over up to 3 weights sharing x), the
 * Tensor-Core GEMM for any M with its split-K reduction, the one-time repack for the GEMV, and the
 * dequantization to fp16 for the dequantize + cuBLAS path. Single source: nvcc and the host
 * emulator (intrin.cuh). Launchers: launch_gemm.cuh.
 *
 * Layout (launch.h awqk_w4): W[n][k] = (q[k][n] - z[k/gs][n]) * s[k/gs][n]; qweight (K, N/8) and
 * qzeros (K/gs, N/8) int32 with nibble slot i of word j holding column 8j + W4_ORDER[i]
 * ([0,2,4,6,1,3,5,7], awq_pack.h), scales (K/gs, N) fp16.
 *
 * Prepared layout (awqk_w4_prepare): qweight transposed, (N/8, K) int32 - word column j is one
 * contiguous stream along K, so a 128-bit load gives one lane 4 consecutive k of 8 columns.
 */
#ifndef AWQ_CUDA_GEMM_W4_CUH
#define AWQ_CUDA_GEMM_W4_CUH

#include "common.cuh"

/* Nibble slot i of a packed word holds logical column W4_ORDER(i) of its 8 (awq_pack.h). */
#define W4_ORDER(i) ((i) < 4 ? 2 * (i) : 2 * (i)-7)

/* ---- dequantization helpers ------------------------------------------------------------------ */

/* fp32 magic-number dequantization (the fp32 analog of the 0x6400 trick, docs/kernels.md 3):
 * one lop3 puts nibble slot I of w (slots 4..7 from hi = w >> 16) into the mantissa of 2^23, giving
 * exactly 2^23 + q * 2^P with P = 4 * (I & 3). No shifts for slots 0-3, one shift per word for
 * 4-7, no int->float conversion. (f - (2^23 + z * 2^P)) * (s * 2^-P) == (q - z) * s exactly. */
template <int I> __device__ __forceinline__ float w4_mag(uint32_t w, uint32_t hi) {
    return awqk_uint_as_float(awqk_lop3<0xea>(I < 4 ? w : hi, 0xfu << (4 * (I & 3)), 0x4b000000u));
}
#define W4_MAG_P(i) (4 * ((i)&3))

/* AutoAWQ / FasterTransformer int4 -> fp16 (dequantize.cuh): with the [0,2,4,6,1,3,5,7] packing,
 * h[p] = (q of column 2p, q of column 2p + 1) as an fp16 pair, exact (0..15). (a & b) | c with
 * 0x6400 = 1024.0 gives 1024 + q (slots 0, 4) or 1024 + 16 q (slots 1, 5, no shift needed): the
 * first is corrected with sub 1024, the second with fma(x, 1/16, -64). One shift per 8 values. */
__device__ __forceinline__ void w4_deq8_h2(uint32_t q, uint32_t h[4]) {
    const uint32_t top = q >> 8;
    h[0] = awqk_hsub2(awqk_lop3<0xea>(q, 0x000f000fu, 0x64006400u), 0x64006400u);
    h[1] = awqk_hfma2(awqk_lop3<0xea>(q, 0x00f000f0u, 0x64006400u), 0x2c002c00u, 0xd400d400u);
    h[2] = awqk_hsub2(awqk_lop3<0xea>(top, 0x000f000fu, 0x64006400u), 0x64006400u);
    h[3] = awqk_hfma2(awqk_lop3<0xea>(top, 0x00f000f0u, 0x64006400u), 0x2c002c00u, 0xd400d400u);
}

/* The 8 weights of one packed word as fp16 pairs in natural column order:
 * out[p] = fp16((q - z) * s) for columns 2p, 2p + 1 (q - z exact in fp16, one rounding in the
 * multiply). zw: the zero-point word of the same 8 columns; sc: their 8 fp16 scales. */
__device__ __forceinline__ void w4_dequant8_f16(uint32_t qw, uint32_t zw, uint4 sc, uint32_t out[4]) {
    uint32_t q[4], z[4];
    w4_deq8_h2(qw, q);
    w4_deq8_h2(zw, z);
    out[0] = awqk_hmul2(awqk_hsub2(q[0], z[0]), sc.x);
    out[1] = awqk_hmul2(awqk_hsub2(q[1], z[1]), sc.y);
    out[2] = awqk_hmul2(awqk_hsub2(q[2], z[2]), sc.z);
    out[3] = awqk_hmul2(awqk_hsub2(q[3], z[3]), sc.w);
}

/* Per-slot fp32 constants of one group for the magic dequantization: zf[i] = 2^23 + z_i 2^P,
 * sf[i] = s_i 2^-P for slot i (column W4_ORDER(i)). */
__device__ __forceinline__ void w4_group_consts(uint32_t zw, uint4 sc, float zf[8], float sf[8]) {
    const uint32_t zhi = zw >> 16;
    const uint32_t s2[4] = {sc.x, sc.y, sc.z, sc.w};
    zf[0] = w4_mag<0>(zw, zhi);
    zf[1] = w4_mag<1>(zw, zhi);
    zf[2] = w4_mag<2>(zw, zhi);
    zf[3] = w4_mag<3>(zw, zhi);
    zf[4] = w4_mag<4>(zw, zhi);
    zf[5] = w4_mag<5>(zw, zhi);
    zf[6] = w4_mag<6>(zw, zhi);
    zf[7] = w4_mag<7>(zw, zhi);
#pragma unroll
    for (int i = 0; i < 8; i++) {
        const int c = W4_ORDER(i);
        const uint32_t h = (c & 1) ? (s2[c >> 1] >> 16) : (s2[c >> 1] & 0xffffu);
        sf[i] = awqk_h2f((uint16_t)h) * awqk_uint_as_float((uint32_t)(127 - W4_MAG_P(i)) << 23);
    }
}

/* The 8 exact fp32 weights of one packed word, in slot order: w[i] = (q_i - z_i) * s_i. */
__device__ __forceinline__ void w4_dequant8_f32(uint32_t qw, const float zf[8], const float sf[8],
                                                float w[8]) {
    const uint32_t hi = qw >> 16;
    w[0] = (w4_mag<0>(qw, hi) - zf[0]) * sf[0];
    w[1] = (w4_mag<1>(qw, hi) - zf[1]) * sf[1];
    w[2] = (w4_mag<2>(qw, hi) - zf[2]) * sf[2];
    w[3] = (w4_mag<3>(qw, hi) - zf[3]) * sf[3];
    w[4] = (w4_mag<4>(qw, hi) - zf[4]) * sf[4];
    w[5] = (w4_mag<5>(qw, hi) - zf[5]) * sf[5];
    w[6] = (w4_mag<6>(qw, hi) - zf[6]) * sf[6];
    w[7] = (w4_mag<7>(qw, hi) - zf[7]) * sf[7];
}

/* Half a word for the GEMV's 4-slot threads: slots 4h .. 4h + 3 (h = 0: columns 0, 2, 4, 6; h = 1:
 * columns 1, 3, 5, 7), same magic-number arithmetic as above with h a run-time value. */
__device__ __forceinline__ void w4_group_consts4(uint32_t zw, uint4 sc, int h, float zf[4], float sf[4]) {
    const uint32_t zs = h ? zw >> 16 : zw, sh = h ? 16u : 0u;
    zf[0] = w4_mag<0>(zs, zs);
    zf[1] = w4_mag<1>(zs, zs);
    zf[2] = w4_mag<2>(zs, zs);
    zf[3] = w4_mag<3>(zs, zs);
    sf[0] = awqk_h2f((uint16_t)((sc.x >> sh) & 0xffffu));
    sf[1] = awqk_h2f((uint16_t)((sc.y >> sh) & 0xffffu)) * (1.0f / 16.0f);
    sf[2] = awqk_h2f((uint16_t)((sc.z >> sh) & 0xffffu)) * (1.0f / 256.0f);
    sf[3] = awqk_h2f((uint16_t)((sc.w >> sh) & 0xffffu)) * (1.0f / 4096.0f);
}
__device__ __forceinline__ void w4_dequant4_f32(uint32_t qw, int h, const float zf[4], const float sf[4],
                                                float w[4]) {
    const uint32_t q = h ? qw >> 16 : qw;
    w[0] = (w4_mag<0>(q, q) - zf[0]) * sf[0];
    w[1] = (w4_mag<1>(q, q) - zf[1]) * sf[1];
    w[2] = (w4_mag<2>(q, q) - zf[2]) * sf[2];
    w[3] = (w4_mag<3>(q, q) - zf[3]) * sf[3];
}

/* ---- GEMV (M = 1..8) ------------------------------------------------------------------------- */

#define W4_GEMV_THREADS    128
#define W4_GEMV_WARPS      (W4_GEMV_THREADS / 32)
#define W4_GEMV_CANON_COLS 32 /* word columns per block on the canonical layout (one per lane) */

struct w4_gemv_one {
    const int32_t *qw;   /* canonical (K, N/8) */
    const int32_t *qz;   /* (K/gs, N/8) */
    const uint16_t *sc;  /* (K/gs, N) */
    const int32_t *prep; /* (N/8, K) or NULL */
    float *y;
    long long ldy;
    const void *bias;
    int bias_dt;
    int N;
    int nblk; /* blocks of this weight */
};
struct w4_gemv_args {
    int nw, K, gs;
    const float *x;
    int ldx; /* (M - 1) * ldx + K < 2^31 */
    w4_gemv_one w[3];
};

/* Dynamic shared memory of the GEMV for M rows on the canonical or the prepared layout. */
static inline size_t w4_gemv_smem(int M, bool canonical) {
    return canonical ? (size_t)(W4_GEMV_WARPS - 1) * 32 * 8 * M * sizeof(float)
                     : (size_t)W4_GEMV_WARPS * 8 * M * sizeof(float);
}

/* Reduce-scatter of acc[m][slot] over a warp: 9 M shuffles instead of 40 M for eight butterflies.
 * Afterwards acc[m][0] of every lane holds the warp's sum for slot 4 b16 + 2 b8 + b4 (the lane's
 * bits 4, 3, 2). Indices stay compile-time (no local memory). */
template <int M> __device__ __forceinline__ int w4_warp_reduce_scatter(float (&acc)[M][8], int lane) {
    const bool b16 = lane & 16, b8 = lane & 8, b4 = lane & 4;
#pragma unroll
    for (int m = 0; m < M; m++) {
#pragma unroll
        for (int i = 0; i < 4; i++) {
            float send = b16 ? acc[m][i] : acc[m][i + 4], keep = b16 ? acc[m][i + 4] : acc[m][i];
            acc[m][i] = keep + __shfl_xor_sync(0xffffffffu, send, 16);
        }
#pragma unroll
        for (int i = 0; i < 2; i++) {
            float send = b8 ? acc[m][i] : acc[m][i + 2], keep = b8 ? acc[m][i + 2] : acc[m][i];
            acc[m][i] = keep + __shfl_xor_sync(0xffffffffu, send, 8);
        }
        {
            float send = b4 ? acc[m][0] : acc[m][1], keep = b4 ? acc[m][1] : acc[m][0];
            acc[m][0] = keep + __shfl_xor_sync(0xffffffffu, send, 4);
        }
        acc[m][0] += __shfl_xor_sync(0xffffffffu, acc[m][0], 2);
        acc[m][0] += __shfl_xor_sync(0xffffffffu, acc[m][0], 1);
    }
    return (b16 ? 4 : 0) + (b8 ? 2 : 0) + (b4 ? 1 : 0);
}
/* The same for 4-slot threads (lane bit 0 = the half h, see w4_group_consts4): reduce-scatter over
 * bits 4 and 3, butterflies over bits 2 and 1; returns the slot 4 h + 2 b16 + b8 of acc[m][0]. */
template <int M> __device__ __forceinline__ int w4_warp_reduce_scatter(float (&acc)[M][4], int lane) {
    const bool b16 = lane & 16, b8 = lane & 8;
#pragma unroll
    for (int m = 0; m < M; m++) {
#pragma unroll
        for (int i = 0; i < 2; i++) {
            float send = b16 ? acc[m][i] : acc[m][i + 2], keep = b16 ? acc[m][i + 2] : acc[m][i];
            acc[m][i] = keep + __shfl_xor_sync(0xffffffffu, send, 16);
        }
        {
            float send = b8 ? acc[m][0] : acc[m][1], keep = b8 ? acc[m][1] : acc[m][0];
            acc[m][0] = keep + __shfl_xor_sync(0xffffffffu, send, 8);
        }
        acc[m][0] += __shfl_xor_sync(0xffffffffu, acc[m][0], 4);
        acc[m][0] += __shfl_xor_sync(0xffffffffu, acc[m][0], 2);
    }
    return 4 * (lane & 1) + (b16 ? 2 : 0) + (b8 ? 1 : 0);
}

/* acc[m][i] += x[m][k] * w[i] for the rows of x. */
template <int M, int S>
__device__ __forceinline__ void w4_fma_rows(float (&acc)[M][S], const float *w, const float *x, int ldx,
                                            int k) {
#pragma unroll
    for (int m = 0; m < M; m++) {
        const float xv = x[m * ldx + k]; /* 32-bit offsets (the launcher checks they fit): fewer registers */
#pragma unroll
        for (int i = 0; i < S; i++) acc[m][i] = fmaf(xv, w[i], acc[m][i]);
    }
}

/* Prepared layout: the block owns word column j (8 outputs); its threads take the 4-k chunks
 * (one 128-bit load each, a warp reading contiguous bytes) in turn. The 4 k of a chunk lie in one
 * group (gs % 8 == 0). M <= 4: a thread takes all 8 slots of its chunks (chunks t, t + 128, ...)
 * and loads the next chunk before using the current one. M > 4: a thread takes 4 slots (the half
 * t & 1 of chunks t / 2, t / 2 + 64, ...; a lane pair shares each load), so that 8 M accumulators
 * stay within 128 registers. */
template <int M>
__device__ __forceinline__ void w4_gemv_prepared(const w4_gemv_args &a, const w4_gemv_one &w, int j) {
    constexpr int SPT = M <= 4 ? 8 : 4; /* slots per thread */
    constexpr int TPC = 8 / SPT;        /* threads per chunk */
    constexpr int CSTEP = W4_GEMV_THREADS / TPC;
    AWQK_SMEM(float, red); /* [warp][m][slot] */
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, h = TPC == 2 ? (tid & 1) : 0;
    const int K = a.K, gs = a.gs, nwc = w.N / 8, nch = K / 4;
    const int32_t *col = w.prep + (long long)j * K;
    float acc[M][SPT];
#pragma unroll
    for (int m = 0; m < M; m++)
#pragma unroll
        for (int i = 0; i < SPT; i++) acc[m][i] = 0.0f;

    /* group of k = 4 c kept incrementally (g, r: k = g gs + r): no division in the loop */
    const int c0 = tid / TPC, gstep = 4 * CSTEP / gs, rstep = 4 * CSTEP % gs;
    int g = 4 * c0 / gs, r = 4 * c0 % gs;
    uint4 q = c0 < nch ? awqk_ldg128(col + 4 * c0) : make_uint4(0u, 0u, 0u, 0u);
    for (int c = c0; c < nch; c += CSTEP) {
        const int cn = c + CSTEP, k = 4 * c;
        const uint4 qn = SPT == 8 && cn < nch ? awqk_ldg128(col + 4 * cn) : make_uint4(0u, 0u, 0u, 0u);
        const uint32_t zw = (uint32_t)w.qz[(long long)g * nwc + j];
        const uint4 sc = awqk_ldg128(w.sc + (long long)g * w.N + 8 * j);
        float zf[SPT], sf[SPT], wv[SPT];
        const uint32_t qv[4] = {q.x, q.y, q.z, q.w};
        if (SPT == 8) {
            w4_group_consts(zw, sc, zf, sf);
#pragma unroll
            for (int u = 0; u < 4; u++) {
                w4_dequant8_f32(qv[u], zf, sf, wv);
                w4_fma_rows<M, SPT>(acc, wv, a.x, a.ldx, k + u);
            }
        } else {
            w4_group_consts4(zw, sc, h, zf, sf);
#pragma unroll
            for (int u = 0; u < 4; u++) {
                w4_dequant4_f32(qv[u], h, zf, sf, wv);
                w4_fma_rows<M, SPT>(acc, wv, a.x, a.ldx, k + u);
            }
        }
        q = SPT == 8 ? qn : cn < nch ? awqk_ldg128(col + 4 * cn) : make_uint4(0u, 0u, 0u, 0u);
        g += gstep;
        r += rstep;
        if (r >= gs) {
            r -= gs;
            g++;
        }
    }
    const int slot = w4_warp_reduce_scatter<M>(acc, lane);
    if ((lane & (SPT == 8 ? 3 : 6)) == 0)
#pragma unroll
        for (int m = 0; m < M; m++) red[(warp * M + m) * 8 + slot] = acc[m][0];
    __syncthreads();
    if (tid < 8 * M) {
        const int m = tid >> 3, s = tid & 7;
        float v = 0.0f;
#pragma unroll
        for (int wp = 0; wp < W4_GEMV_WARPS; wp++) v += red[(wp * M + m) * 8 + s];
        const int n = 8 * j + W4_ORDER(s);
        if (w.bias) v += awqk_ld(w.bias, w.bias_dt, n);
        w.y[(long long)m * w.ldy + n] = v;
    }
}

/* Canonical layout (no repack): lane l owns word column jb + l (a warp reads 128 contiguous bytes
 * of a qweight row per k); warp wp takes groups wp, wp + 4, ...; the warps' partial sums meet in
 * shared memory. */
template <int M>
__device__ __forceinline__ void w4_gemv_canonical(const w4_gemv_args &a, const w4_gemv_one &w, int jb) {
    AWQK_SMEM(float, red); /* [warp - 1][m][slot][lane] */
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int K = a.K, gs = a.gs, nwc = w.N / 8, G = K / gs;
    const int j = jb + lane;
    const bool active = j < nwc;
    float acc[M][8];
#pragma unroll
    for (int m = 0; m < M; m++)
#pragma unroll
        for (int i = 0; i < 8; i++) acc[m][i] = 0.0f;
    if (active) {
        for (int g = warp; g < G; g += W4_GEMV_WARPS) {
            float zf[8], sf[8], wv[8];
            w4_group_consts((uint32_t)w.qz[(long long)g * nwc + j],
                            awqk_ldg128(w.sc + (long long)g * w.N + 8 * j), zf, sf);
            const int32_t *q = w.qw + (long long)g * gs * nwc + j;
            for (int k = g * gs; k < (g + 1) * gs; k++, q += nwc) {
                w4_dequant8_f32((uint32_t)*q, zf, sf, wv);
                w4_fma_rows<M, 8>(acc, wv, a.x, a.ldx, k);
            }
        }
    }
    if (warp > 0)
#pragma unroll
        for (int m = 0; m < M; m++)
#pragma unroll
            for (int i = 0; i < 8; i++) red[(((warp - 1) * M + m) * 8 + i) * 32 + lane] = acc[m][i];
    __syncthreads();
    if (warp == 0 && active) {
#pragma unroll
        for (int m = 0; m < M; m++)
#pragma unroll
            for (int i = 0; i < 8; i++) {
                float v = acc[m][i];
#pragma unroll
                for (int wp = 1; wp < W4_GEMV_WARPS; wp++) v += red[(((wp - 1) * M + m) * 8 + i) * 32 + lane];
                const int n = 8 * j + W4_ORDER(i);
                if (w.bias) v += awqk_ld(w.bias, w.bias_dt, n);
                w.y[(long long)m * w.ldy + n] = v;
            }
    }
}

/* W4A16 GEMV, M = 1..8 rows, fp32 (anchors: AutoAWQ GEMV gemv_cuda.cu and TinyChat GEMV
 * quantization_new/gemv: 128-bit weight loads, magic-number int4 dequantization in registers,
 * fp32 accumulation, warp-shuffle reduction, batch as a template parameter). The weights are the
 * exact fp32 values (q - z) * s, x is read in fp32. Blocks of all nw weights share one grid.
 * PREP: every weight of the launch has its prepared copy (else all use the canonical layout);
 * the two paths are separate instances to keep M = 8 within 128 registers. */
template <int M, bool PREP>
__global__ void __launch_bounds__(W4_GEMV_THREADS, 4) awqk_w4_gemv_kernel(w4_gemv_args a) {
    int b = blockIdx.x, i = 0;
    while (i < a.nw - 1 && b >= a.w[i].nblk) b -= a.w[i++].nblk;
    const w4_gemv_one &w = a.w[i];
    if (PREP)
        w4_gemv_prepared<M>(a, w, b);
    else
        w4_gemv_canonical<M>(a, w, b * W4_GEMV_CANON_COLS);
}

/* Repack for the GEMV: prep (N/8, K) = qweight (K, N/8) transposed, through a 32 x 33 tile in
 * shared memory so both sides are coalesced. Block (32, 8). */
__global__ void __launch_bounds__(256)
    awqk_w4_prepare_kernel(const int32_t *qw, int32_t *prep, int K, int nwc) {
    AWQK_SMEM(int32_t, t); /* [32][33] */
    const int k0 = blockIdx.y * 32, j0 = blockIdx.x * 32, tx = threadIdx.x, ty = threadIdx.y;
    for (int r = ty; r < 32; r += 8)
        if (k0 + r < K && j0 + tx < nwc) t[r * 33 + tx] = qw[(long long)(k0 + r) * nwc + j0 + tx];
    __syncthreads();
    for (int r = ty; r < 32; r += 8)
        if (j0 + r < nwc && k0 + tx < K) prep[(long long)(j0 + r) * K + k0 + tx] = t[tx * 33 + r];
}

/* dst[k][n] = fp16((q - z) * s) for rows k0 .. k0 + nk - 1 (AutoAWQ dequantize_weights_cuda; the
 * same fp16 rounding as the Tensor-Core GEMM). One thread per packed word; 16-byte stores when
 * dst rows are 16-byte aligned (vec). */
__global__ void __launch_bounds__(256)
    awqk_w4_dequant_kernel(const int32_t *qw, const int32_t *qz, const uint16_t *sc, int N, int gs, int k0,
                           int nk, uint16_t *dst, long long ld, int vec) {
    const int nwc = N / 8;
    const long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= (long long)nk * nwc) return;
    const int r = (int)(e / nwc), j = (int)(e % nwc), k = k0 + r, g = k / gs;
    uint32_t h[4];
    w4_dequant8_f16((uint32_t)qw[(long long)k * nwc + j], (uint32_t)qz[(long long)g * nwc + j],
                    awqk_ldg128(sc + (long long)g * N + 8 * j), h);
    uint16_t *d = dst + (long long)r * ld + 8 * j;
    if (vec) {
        *reinterpret_cast<uint4 *>(d) = make_uint4(h[0], h[1], h[2], h[3]);
    } else {
#pragma unroll
        for (int p = 0; p < 4; p++) {
            d[2 * p] = (uint16_t)(h[p] & 0xffffu);
            d[2 * p + 1] = (uint16_t)(h[p] >> 16);
        }
    }
}

/* ---- Tensor-Core GEMM ------------------------------------------------------------------------ */

#define W4TC_THREADS 128
#define W4TC_BN      128 /* output columns per block; each of the 4 warps owns 32 */
#define W4TC_BK      32  /* k per pipeline stage */
#define W4TC_AS      40  /* fp16 row stride of the A tile: 32 + 8 pad (ldmatrix conflict-free) */
#define W4TC_BS      136 /* fp16 row stride of the dequantized B tile: 128 + 8 */
#define W4TC_GMAX    4   /* groups one 32-row k tile can touch (gs >= 8, tiles 32-aligned) */
#define W4TC_QW      (W4TC_BN / 8)

struct w4_gemm_args {
    const uint16_t *xh;     /* (M, K) fp16, row stride K (workspace) */
    const int32_t *qw, *qz; /* canonical layout */
    const uint16_t *sc;
    float *y;
    long long ldy;
    const void *bias;
    int bias_dt;
    float *part; /* splits > 1: (splits, M, N) fp32 partial sums */
    int M, K, N, gs, splits, nkt;
    int aligned; /* N % 32 == 0: qweight/qzeros rows 16-byte aligned, cp.async for them */
};

/* Bytes of one pipeline stage and of the whole dynamic shared memory of the kernel. */
__host__ __device__ constexpr int w4tc_stage_bytes(int BM) {
    return BM * W4TC_AS * 2 + W4TC_BK * W4TC_QW * 4 + W4TC_GMAX * W4TC_BN * 2 + W4TC_GMAX * W4TC_QW * 4;
}
__host__ __device__ constexpr int w4tc_stages(bool sm80) { return sm80 ? 3 : 2; }
__host__ __device__ constexpr int w4tc_smem(bool sm80, int BM) {
    return w4tc_stages(sm80) * w4tc_stage_bytes(BM) + W4TC_BK * W4TC_BS * 2;
}

/* 16 bytes global -> shared: cp.async (zero-filled when !pred) on sm80, a plain copy on sm75. */
template <bool SM80> __device__ __forceinline__ void w4tc_copy16(void *dst, const void *src, bool pred) {
    if (SM80)
        awqk_cp_async16_zfill(dst, src, pred);
    else
        *reinterpret_cast<uint4 *>(dst) =
            pred ? *reinterpret_cast<const uint4 *>(src) : make_uint4(0u, 0u, 0u, 0u);
}

/* Issues the copies of k tile kt into a stage: A (BM x 32 fp16 of x), the packed words (32 x 16),
 * and the scales / zero words of the groups the tile touches. Outside M, N, K: zeros. */
template <bool SM80, int BM>
__device__ __forceinline__ void w4tc_load_stage(const w4_gemm_args &a, unsigned char *st, int kt, int m0,
                                                int n0) {
    uint16_t *As = reinterpret_cast<uint16_t *>(st);
    uint32_t *Qs = reinterpret_cast<uint32_t *>(st + BM * W4TC_AS * 2);
    uint16_t *Ss = reinterpret_cast<uint16_t *>(st + BM * W4TC_AS * 2 + W4TC_BK * W4TC_QW * 4);
    uint32_t *Zs =
        reinterpret_cast<uint32_t *>(st + BM * W4TC_AS * 2 + W4TC_BK * W4TC_QW * 4 + W4TC_GMAX * W4TC_BN * 2);
    const int tid = threadIdx.x, k0 = kt * W4TC_BK, nwc = a.N / 8, j0 = n0 / 8;
#pragma unroll
    for (int c = tid; c < BM * 4; c += W4TC_THREADS) { /* A: 4 chunks of 8 fp16 per row */
        const int r = c >> 2, kc = (c & 3) * 8, m = m0 + r, k = k0 + kc;
        const bool p = m < a.M && k < a.K;
        w4tc_copy16<SM80>(As + r * W4TC_AS + kc, p ? a.xh + (long long)m * a.K + k : a.xh, p);
    }
    const int g0 = k0 / a.gs, klast = (k0 + W4TC_BK < a.K ? k0 + W4TC_BK : a.K) - 1;
    const int ng = klast / a.gs - g0 + 1;
    if (a.aligned) {
        { /* packed words: 32 rows x 4 chunks = one chunk per thread */
            const int r = tid >> 2, wc = (tid & 3) * 4, k = k0 + r, j = j0 + wc;
            const bool p = k < a.K && j < nwc;
            w4tc_copy16<SM80>(Qs + r * W4TC_QW + wc, p ? a.qw + (long long)k * nwc + j : a.qw, p);
        }
        for (int c = tid; c < ng * (W4TC_QW / 4); c += W4TC_THREADS) {
            const int gi = c / (W4TC_QW / 4), wc = (c % (W4TC_QW / 4)) * 4, j = j0 + wc;
            const bool p = j < nwc;
            w4tc_copy16<SM80>(Zs + gi * W4TC_QW + wc, p ? a.qz + (long long)(g0 + gi) * nwc + j : a.qz, p);
        }
    } else { /* rows not 16-byte aligned (N % 32 != 0): 4-byte loads and plain shared stores */
#pragma unroll
        for (int e = tid; e < W4TC_BK * W4TC_QW; e += W4TC_THREADS) {
            const int r = e / W4TC_QW, wc = e % W4TC_QW, k = k0 + r, j = j0 + wc;
            Qs[r * W4TC_QW + wc] = k < a.K && j < nwc ? (uint32_t)a.qw[(long long)k * nwc + j] : 0u;
        }
        for (int e = tid; e < ng * W4TC_QW; e += W4TC_THREADS) {
            const int gi = e / W4TC_QW, wc = e % W4TC_QW, j = j0 + wc;
            Zs[gi * W4TC_QW + wc] = j < nwc ? (uint32_t)a.qz[(long long)(g0 + gi) * nwc + j] : 0u;
        }
    }
    for (int c = tid; c < ng * (W4TC_BN / 8); c += W4TC_THREADS) { /* scales: rows are 16-byte aligned */
        const int gi = c / (W4TC_BN / 8), nc = (c % (W4TC_BN / 8)) * 8, n = n0 + nc;
        const bool p = n < a.N;
        w4tc_copy16<SM80>(Ss + gi * W4TC_BN + nc, p ? a.sc + (long long)(g0 + gi) * a.N + n : a.sc, p);
    }
}

/* Dequantizes the stage's packed 32 x 128 weight tile into Bs (k-major fp16, stride W4TC_BS):
 * thread t handles word column t % 16 of rows t / 16 + 8 i. Rows at or beyond K become zeros (x
 * is zero there too, but garbage * 0 could be NaN). */
template <int BM>
__device__ __forceinline__ void w4tc_dequant_stage(const w4_gemm_args &a, const unsigned char *st,
                                                   uint16_t *Bs, int kt) {
    const uint32_t *Qs = reinterpret_cast<const uint32_t *>(st + BM * W4TC_AS * 2);
    const uint16_t *Ss = reinterpret_cast<const uint16_t *>(st + BM * W4TC_AS * 2 + W4TC_BK * W4TC_QW * 4);
    const uint32_t *Zs = reinterpret_cast<const uint32_t *>(st + BM * W4TC_AS * 2 + W4TC_BK * W4TC_QW * 4 +
                                                            W4TC_GMAX * W4TC_BN * 2);
    const int tid = threadIdx.x, wc = tid % W4TC_QW, r0 = tid / W4TC_QW, k0 = kt * W4TC_BK;
    const int g0 = k0 / a.gs;
    int gi = (k0 + r0) / a.gs - g0;
    int gend = (g0 + gi + 1) * a.gs; /* first k of the next group */
#pragma unroll
    for (int i = 0; i < W4TC_BK / (W4TC_THREADS / W4TC_QW); i++) {
        const int r = r0 + i * (W4TC_THREADS / W4TC_QW), k = k0 + r;
        while (k >= gend) {
            gi++;
            gend += a.gs;
        } /* at most once per step (gs >= 8) */
        uint32_t h[4] = {0u, 0u, 0u, 0u};
        if (k < a.K)
            w4_dequant8_f16(Qs[r * W4TC_QW + wc], Zs[gi * W4TC_QW + wc],
                            *reinterpret_cast<const uint4 *>(Ss + gi * W4TC_BN + wc * 8), h);
        *reinterpret_cast<uint4 *>(Bs + r * W4TC_BS + wc * 8) = make_uint4(h[0], h[1], h[2], h[3]);
    }
}

/* Fused W4A16 GEMM on Tensor Cores (anchor: AutoAWQ gemm_forward_4bit_cuda_m16n128k32 - 16 x 128 x 32
 * tiles, the packed weights dequantized with lop3/0x6400 + hsub2/hmul2 into a padded k-major fp16
 * tile, ldmatrix for A, ldmatrix.trans for B, mma with fp32 accumulators, split-K; plus the
 * cp.async multi-stage pipeline of TinyChat v2 / Marlin on sm80). Block: 128 threads, BM x 128
 * outputs (BM = 16, 32, 64), warp w owns columns 32w .. 32w + 31 of all BM rows.
 * SM80: mma.m16n8k16, 3-stage cp.async pipeline. !SM80 (sm75): two mma.m16n8k8 per k16 step,
 * plain copies, 2 stages. blockIdx.z = split: k tiles [z nkt / splits, (z + 1) nkt / splits). */
template <bool SM80, int BM>
__global__ void __launch_bounds__(W4TC_THREADS) awqk_w4_gemm_tc_kernel(w4_gemm_args a) {
    constexpr int S = w4tc_stages(SM80), SB = w4tc_stage_bytes(BM), FM = BM / 16;
    AWQK_SMEM(unsigned char, smem);
    uint16_t *Bs = reinterpret_cast<uint16_t *>(smem + S * SB);
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int n0 = blockIdx.x * W4TC_BN, m0 = blockIdx.y * BM, z = blockIdx.z;
    const int kt0 = (int)((long long)z * a.nkt / a.splits),
              kt1 = (int)((long long)(z + 1) * a.nkt / a.splits);
    const int nt = kt1 - kt0;

    float acc[FM][4][4];
#pragma unroll
    for (int f = 0; f < FM; f++)
#pragma unroll
        for (int j = 0; j < 4; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) acc[f][j][e] = 0.0f;

#pragma unroll
    for (int s = 0; s < S - 1; s++) {
        if (s < nt) w4tc_load_stage<SM80, BM>(a, smem + s * SB, kt0 + s, m0, n0);
        if (SM80) awqk_cp_async_commit();
    }
    for (int t = 0; t < nt; t++) {
        if (SM80) awqk_cp_async_wait<S - 2>(); /* this thread's copies of tile t have landed */
        __syncthreads();                       /* everyone's copies visible; everyone done with tile t - 1 */
        if (t + S - 1 < nt)
            w4tc_load_stage<SM80, BM>(a, smem + ((t + S - 1) % S) * SB, kt0 + t + S - 1, m0, n0);
        if (SM80) awqk_cp_async_commit();
        const unsigned char *st = smem + (t % S) * SB;
        w4tc_dequant_stage<BM>(a, st, Bs, kt0 + t);
        __syncthreads();
        const uint16_t *As = reinterpret_cast<const uint16_t *>(st);
#pragma unroll
        for (int kk = 0; kk < W4TC_BK; kk += 16) {
            uint32_t af[FM][4], bf[2][4];
#pragma unroll
            for (int f = 0; f < FM; f++)
                awqk_ldsm_x4(af[f], As + (f * 16 + (lane & 15)) * W4TC_AS + kk + (lane >> 4) * 8);
#pragma unroll
            for (int h = 0; h < 2; h++)
                awqk_ldsm_x4_trans(bf[h],
                                   Bs + (kk + (lane & 15)) * W4TC_BS + warp * 32 + h * 16 + (lane >> 4) * 8);
#pragma unroll
            for (int f = 0; f < FM; f++)
#pragma unroll
                for (int j = 0; j < 4; j++) {
                    const uint32_t b[2] = {bf[j >> 1][(j & 1) * 2], bf[j >> 1][(j & 1) * 2 + 1]};
                    if (SM80) {
                        awqk_mma_m16n8k16(acc[f][j], af[f], b);
                    } else {
                        const uint32_t a0[2] = {af[f][0], af[f][1]}, a1[2] = {af[f][2], af[f][3]};
                        awqk_mma_m16n8k8(acc[f][j], a0, &b[0]);
                        awqk_mma_m16n8k8(acc[f][j], a1, &b[1]);
                    }
                }
        }
    }
    if (SM80) awqk_cp_async_wait<0>(); /* nothing may be in flight when the block exits */

    /* epilogue: c0, c1 = C[g][2t, 2t + 1], c2, c3 = C[g + 8][2t, 2t + 1] */
    const int g = lane >> 2, tq = lane & 3;
#pragma unroll
    for (int j = 0; j < 4; j++) {
        const int n = n0 + warp * 32 + j * 8 + 2 * tq;
        if (n >= a.N) continue;
        float b0 = 0.0f, b1 = 0.0f;
        if (a.splits == 1 && a.bias) {
            b0 = awqk_ld(a.bias, a.bias_dt, n);
            b1 = awqk_ld(a.bias, a.bias_dt, n + 1);
        }
#pragma unroll
        for (int f = 0; f < FM; f++)
#pragma unroll
            for (int hr = 0; hr < 2; hr++) {
                const int m = m0 + f * 16 + g + 8 * hr;
                if (m >= a.M) continue;
                const float v0 = acc[f][j][2 * hr], v1 = acc[f][j][2 * hr + 1];
                if (a.splits == 1) {
                    float *yr = a.y + (long long)m * a.ldy + n;
                    yr[0] = v0 + b0;
                    yr[1] = v1 + b1;
                } else {
                    *reinterpret_cast<float2 *>(a.part + ((long long)z * a.M + m) * a.N + n) =
                        make_float2(v0, v1);
                }
            }
    }
}

/* x (M, K) F32 -> xh (M, K) fp16 rounded to nearest even: the A operand of the GEMM (AutoAWQ and
 * vLLM take fp16 activations; here the cast is one small pass into the workspace). */
__global__ void __launch_bounds__(256)
    awqk_w4_gemm_xh_kernel(const float *x, long long ldx, int M, int K, uint16_t *xh) {
    const long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= (long long)M * K) return;
    const int m = (int)(e / K), k = (int)(e % K);
    xh[e] = awqk_f2h(x[(long long)m * ldx + k]);
}

/* Split-K reduction: y = sum over splits of the partials, in split order (deterministic), + bias
 * (AutoAWQ's split-K partials summed by a separate pass, there torch's .sum(0)). */
__global__ void __launch_bounds__(256)
    awqk_w4_gemm_reduce_kernel(const float *part, int splits, int M, int N, float *y, long long ldy,
                               const void *bias, int bias_dt) {
    const long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    const long long MN = (long long)M * N;
    if (e >= MN) return;
    const int m = (int)(e / N), n = (int)(e % N);
    float v = part[e];
    for (int z = 1; z < splits; z++) v += part[z * MN + e];
    if (bias) v += awqk_ld(bias, bias_dt, n);
    y[(long long)m * ldy + n] = v;
}

#endif /* AWQ_CUDA_GEMM_W4_CUH */
