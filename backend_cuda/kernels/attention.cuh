/*
 * attention.cuh - causal grouped-query attention, fp32 throughout: a flash-style kernel for any
 * T (prefill) and the same kernel split over the keys plus a combine kernel for small T (decode).
 * Single source (nvcc and the host SIMT emulator, see intrin.cuh); launchers in launch_ops.cuh.
 * Contract: awq_backend.h's attention op; oracle: backend_cpu/kernels/attention.c (online
 * softmax over blocks of keys, fp32, reciprocal of the sum at the end).
 *
 * Anchors. attn_tile follows FlashAttention-2 (Dao, 2023): a block owns a tile of query rows,
 * loops over key tiles staged in shared memory, keeps a running max and sum per row (online
 * softmax) and rescales its fp32 accumulators when the max grows; tiles outside every row's
 * causal/window range are never visited and a warp skips tiles outside its own rows' range.
 * It runs on CUDA cores in fp32 (the SIMT organisation of llama.cpp's fattn-tile kernels), as
 * the contract asks for fp32. The decode path is flash-decoding (Dao et al., "Flash-Decoding
 * for long-context inference", 2023): the key range is split into chunks owned by different
 * blocks, each writes (max, sum, unnormalised accumulator) to a workspace, attn_combine merges.
 *
 * Layout of the work. The H/Hkv query heads that share a kv head are packed together (as
 * FlashAttention's "pack GQA" does): for sequence b and kv head hk the rows are
 * rr = t * group + (h - hk * group), R = T * group of them, so K/V tiles are loaded once for
 * all heads of the group. Block (tile, hk, b) owns rows [tile * BQ, tile * BQ + BQ). 4 warps,
 * RW rows each (BQ = 4 * RW). Two mappings of a warp's lanes:
 *   scores:  lane -> key (lane % BK) of the tile, rows {lane / BK + m * (32 / BK)}; q.k as
 *            float4 dot products from shared memory (K rows padded to an odd number of 16-byte
 *            units: conflict-free), running max per row via xor-shuffles over the BK lanes,
 *            p = exp(s - max) written to shared memory;
 *   output:  lane -> dims {lane + 32 i, i < NI}; acc[row][i] += p * V[key][dim].
 * Configurations (shared memory <= 48 KiB): hd <= 128: NI <= 4, RW = 4, BK = 32;
 * hd <= 256: NI <= 8, RW = 2, BK = 16.
 */
#ifndef AWQ_CUDA_ATTENTION_CUH
#define AWQ_CUDA_ATTENTION_CUH

#include <math.h>
#include <stddef.h>

#include "common.cuh"

/* the geometry helpers below are used by the kernels and by the launchers */
#ifdef AWQ_CUDA_EMU
#define ATT_HD inline
#else
#define ATT_HD __host__ __device__ inline
#endif

#define ATT_THREADS 128
#define ATT_WARPS   4
/* 4 resident blocks per SM = a budget of 128 registers per thread: without it ptxas aims at
 * about 64-80 registers for these kernels and spills a few bytes; with it, none (94-118). */
#define ATT_MIN_BLOCKS 4

/* Host and device: padded sizes (in floats) of one configuration. */
struct attn_geom {
    int hdp; /* hd rounded up to a multiple of 4 (Q row stride) */
    int kst; /* K row stride: hdp rounded to an odd number of float4 (bank-conflict free) */
    int vst; /* V row stride: 32 * NI (every lane's dims in range, padding zero) */
};
ATT_HD attn_geom attn_geometry(int hd, int ni) {
    attn_geom g;
    g.hdp = (hd + 3) & ~3;
    g.kst = 4 * ((g.hdp / 4) | 1);
    g.vst = 32 * ni;
    return g;
}
/* Shared memory bytes of attn_tile<NI, RW, BK>: Q tile, K tile, V tile, P, alpha, final sums, maxima. */
ATT_HD size_t attn_smem_bytes(int hd, int ni, int rw, int bk) {
    attn_geom g = attn_geometry(hd, ni);
    size_t f = (size_t)ATT_WARPS * rw * g.hdp + (size_t)bk * g.kst + (size_t)bk * g.vst +
        (size_t)ATT_WARPS * rw * bk + 3 * (size_t)ATT_WARPS * rw;
    return f * sizeof(float);
}

/* Copies rows [j0, j0 + BK) of K and V (kv head hk of sequence b) into shared memory; rows at or
 * beyond kend become zeros (p is 0 there, and 0 * poison would be NaN). */
template <int BK>
__device__ __forceinline__ void attn_load_kv(const awqk_attn &a, int b, int hk, int j0, int kend, bool vec,
                                             const attn_geom &g, float *Ks, float *Vs) {
    const int hd = a.hd;
    const float *kb = a.k + (long long)b * a.k0 + (long long)hk * a.k2;
    const float *vb = a.v + (long long)b * a.v0 + (long long)hk * a.v2;
    if (vec) { /* every row 16-byte aligned, hd % 4 == 0 */
        const int h4 = hd >> 2;
        for (int e = threadIdx.x; e < BK * h4; e += ATT_THREADS) {
            const int jj = e / h4, c = (e - jj * h4) << 2, j = j0 + jj;
            float4 kv, vv;
            if (j < kend) {
                kv = *reinterpret_cast<const float4 *>(kb + (long long)j * a.k1 + c);
                vv = *reinterpret_cast<const float4 *>(vb + (long long)j * a.v1 + c);
            } else {
                kv.x = kv.y = kv.z = kv.w = 0.0f;
                vv = kv;
            }
            *reinterpret_cast<float4 *>(Ks + jj * g.kst + c) = kv;
            *reinterpret_cast<float4 *>(Vs + jj * g.vst + c) = vv;
        }
    } else {
        for (int e = threadIdx.x; e < BK * hd; e += ATT_THREADS) {
            const int jj = e / hd, c = e - jj * hd, j = j0 + jj;
            const bool in = j < kend;
            Ks[jj * g.kst + c] = in ? kb[(long long)j * a.k1 + c] : 0.0f;
            Vs[jj * g.vst + c] = in ? vb[(long long)j * a.v1 + c] : 0.0f;
        }
    }
}

/* One block: query rows [tile * BQ, +BQ) of (b, hk) against keys [kbeg, kend) (the block's whole
 * causal range, or one chunk of it when SPLIT). Not SPLIT: writes the normalised output rows.
 * SPLIT: writes (max, sum, acc[hd]) of each row for chunk `chunk` into ws (see attn_combine). */
template <int NI, int RW, int BK, bool SPLIT>
__global__ void __launch_bounds__(ATT_THREADS, ATT_MIN_BLOCKS)
    attn_tile(awqk_attn a, int ntiles, int nchunk, int chunk_len, float *ws) {
    constexpr int BQ = ATT_WARPS * RW;
    constexpr int GROUPS = 32 / BK;  /* lane groups in the score mapping */
    constexpr int RPL = RW / GROUPS; /* rows per lane in the score mapping */
    AWQK_SMEM(float, smem);
    const int hd = a.hd, group = a.H / a.Hkv, R = a.T * group;
    const attn_geom g = attn_geometry(hd, NI);
    float *Qs = smem;                     /* [BQ][hdp]  */
    float *Ks = Qs + BQ * g.hdp;          /* [BK][kst]  */
    float *Vs = Ks + BK * g.kst;          /* [BK][vst]  */
    float *Ps = Vs + BK * g.vst;          /* [warps][RW][BK] */
    float *Al = Ps + ATT_WARPS * RW * BK; /* [warps][RW] rescale factor of the current tile */
    float *Ls = Al + ATT_WARPS * RW;      /* [warps][RW] final sums */
    float *Ms = Ls + ATT_WARPS * RW;      /* [warps][RW] final maxima */

    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int chunk = SPLIT ? (int)blockIdx.x % nchunk : 0;
    const int tile = ntiles - 1 - (SPLIT ? (int)blockIdx.x / nchunk : (int)blockIdx.x); /* long rows first */
    const int hk = blockIdx.y, b = blockIdx.z;
    const int row0 = tile * BQ;
    const int rlast = (row0 + BQ < R ? row0 + BQ : R) - 1;

    /* the block's key range: union of its rows' [lo, hi] (contiguous, lo and hi grow with t) */
    const int hi_blk = a.n_past + rlast / group;
    int lo_blk = 0;
    if (a.window > 0) {
        lo_blk = a.n_past + row0 / group - a.window + 1;
        lo_blk = lo_blk > 0 ? lo_blk : 0;
    }
    int kbeg = lo_blk, kend = hi_blk + 1;
    if (SPLIT) {
        kbeg = lo_blk + chunk * chunk_len;
        kend = kbeg + chunk_len < kend ? kbeg + chunk_len : kend;
    }

    /* zero the padding columns once (never written by the tile loads) */
    for (int e = tid; e < BK * (g.kst - hd); e += ATT_THREADS)
        Ks[(e / (g.kst - hd)) * g.kst + hd + e % (g.kst - hd)] = 0.0f;
    for (int e = tid; e < BK * (g.vst - hd); e += ATT_THREADS)
        Vs[(e / (g.vst - hd)) * g.vst + hd + e % (g.vst - hd)] = 0.0f;
    /* Q tile: row r of the block -> (t, h); rows past R and padding columns are zero */
    for (int e = tid; e < BQ * g.hdp; e += ATT_THREADS) {
        const int r = e / g.hdp, c = e - r * g.hdp, rr = row0 + r;
        float v = 0.0f;
        if (rr < R && c < hd) {
            const int t = rr / group, h = hk * group + (rr - t * group);
            v = a.q[(long long)b * a.q0 + (long long)t * a.q1 + (long long)h * a.q2 + c];
        }
        Qs[e] = v;
    }

    /* this warp's rows and their key range (for skipping tiles) */
    const int wr0 = row0 + warp * RW;
    const int wr1 = (wr0 + RW < R ? wr0 + RW : R) - 1; /* < wr0: no valid rows */
    const int w_hi = a.n_past + wr1 / group;
    const int w_lo = a.window > 0 ? a.n_past + wr0 / group - a.window + 1 : 0;

    /* score-mapping state: rows k = lane / BK + m * GROUPS of this warp */
    const int jj = lane % BK, lg = lane / BK;
    float m_run[RPL], l_part[RPL];
    int qpos[RPL]; /* query position, or -1 for a row past R */
#pragma unroll
    for (int m = 0; m < RPL; m++) {
        const int rr = wr0 + lg + m * GROUPS;
        m_run[m] = -INFINITY;
        l_part[m] = 0.0f;
        qpos[m] = rr < R ? a.n_past + rr / group : -1;
    }
    float acc[RW][NI];
#pragma unroll
    for (int k = 0; k < RW; k++)
#pragma unroll
        for (int i = 0; i < NI; i++) acc[k][i] = 0.0f;

    const bool vec = (hd & 3) == 0 && ((uintptr_t)a.k & 15) == 0 && ((uintptr_t)a.v & 15) == 0 &&
        ((a.k0 | a.k1 | a.k2 | a.v0 | a.v1 | a.v2) & 3) == 0;
    float *Pw = Ps + warp * RW * BK;
    float *Aw = Al + warp * RW;

    for (int j0 = kbeg; j0 < kend; j0 += BK) {
        attn_load_kv<BK>(a, b, hk, j0, kend, vec, g, Ks, Vs);
        __syncthreads();
        /* warp-uniform skip: no valid row, or the tile outside the warp's rows' key range */
        if (wr1 >= wr0 && j0 <= w_hi && j0 + BK - 1 >= w_lo) {
            /* ---- scores, online softmax ---- */
            float s[RPL];
#pragma unroll
            for (int m = 0; m < RPL; m++) s[m] = 0.0f;
            const float4 *kr = reinterpret_cast<const float4 *>(Ks + jj * g.kst);
#pragma unroll 2
            for (int c4 = 0; c4 < (g.hdp >> 2); c4++) {
                const float4 kv = kr[c4];
#pragma unroll
                for (int m = 0; m < RPL; m++) {
                    const float4 qv =
                        reinterpret_cast<const float4 *>(Qs + (warp * RW + lg + m * GROUPS) * g.hdp)[c4];
                    s[m] += qv.x * kv.x + qv.y * kv.y + qv.z * kv.z + qv.w * kv.w;
                }
            }
            const int j = j0 + jj;
#pragma unroll
            for (int m = 0; m < RPL; m++) {
                const int qp = qpos[m];
                const bool ok = qp >= 0 && j < kend && j <= qp && (a.window <= 0 || j > qp - a.window);
                float sc = s[m] * a.scale;
                if (a.softcap > 0.0f) sc = a.softcap * tanhf(sc / a.softcap); /* Gemma 2 */
                sc = ok ? sc : -INFINITY;
                float mt = sc;
#pragma unroll
                for (int o = BK / 2; o > 0; o >>= 1) mt = fmaxf(mt, __shfl_xor_sync(0xffffffffu, mt, o));
                const float mn = fmaxf(m_run[m], mt);
                float alpha = 1.0f, p = 0.0f;
                if (mn != -INFINITY) { /* some key of this row seen so far */
                    alpha = expf(m_run[m] - mn);
                    p = ok ? expf(sc - mn) : 0.0f;
                }
                l_part[m] = l_part[m] * alpha + p;
                m_run[m] = mn;
                Pw[(lg + m * GROUPS) * BK + jj] = p;
                if (jj == 0) Aw[lg + m * GROUPS] = alpha;
            }
            __syncwarp();
            /* ---- acc = acc * alpha + P V ---- */
#pragma unroll
            for (int k = 0; k < RW; k++) {
                const float al = Aw[k];
#pragma unroll
                for (int i = 0; i < NI; i++) acc[k][i] *= al;
            }
#pragma unroll 2
            for (int t = 0; t < BK; t++) {
                float v[NI];
#pragma unroll
                for (int i = 0; i < NI; i++) v[i] = Vs[t * g.vst + lane + 32 * i];
#pragma unroll
                for (int k = 0; k < RW; k++) {
                    const float p = Pw[k * BK + t];
#pragma unroll
                    for (int i = 0; i < NI; i++) acc[k][i] += p * v[i];
                }
            }
        }
        __syncthreads(); /* before the next tile overwrites K, V (and P) */
    }

    /* row sums over the BK lanes of each row; publish sums (and maxima) per row */
#pragma unroll
    for (int m = 0; m < RPL; m++) {
        float l = l_part[m];
#pragma unroll
        for (int o = BK / 2; o > 0; o >>= 1) l += __shfl_xor_sync(0xffffffffu, l, o);
        if (jj == 0) {
            Ls[warp * RW + lg + m * GROUPS] = l;
            Ms[warp * RW + lg + m * GROUPS] = m_run[m];
        }
    }
    __syncwarp();
#pragma unroll
    for (int k = 0; k < RW; k++) {
        const int rr = wr0 + k;
        if (rr >= R) break;
        const int t = rr / group, h = hk * group + (rr - t * group);
        if (SPLIT) {
            float *p = ws + ((((long long)b * a.Hkv + hk) * R + rr) * nchunk + chunk) * (long long)(hd + 2);
            if (lane == 0) {
                p[0] = Ms[warp * RW + k];
                p[1] = Ls[warp * RW + k];
            }
#pragma unroll
            for (int i = 0; i < NI; i++)
                if (lane + 32 * i < hd) p[2 + lane + 32 * i] = acc[k][i];
        } else {
            const float inv = 1.0f / Ls[warp * RW + k];
            float *o = a.o + (long long)b * a.o0 + (long long)t * a.o1 + (long long)h * a.o2;
#pragma unroll
            for (int i = 0; i < NI; i++)
                if (lane + 32 * i < hd) o[lane + 32 * i] = acc[k][i] * inv;
        }
    }
}

/* Merges the nchunk partials of every row (one warp per row): M = max m_c,
 * out = sum_c e^(m_c - M) acc_c / sum_c e^(m_c - M) l_c. Chunks that saw no key of the row have
 * m_c = -inf and weigh 0. */
__global__ void __launch_bounds__(ATT_THREADS) attn_combine(awqk_attn a, int nchunk, const float *ws) {
    const int group = a.H / a.Hkv, R = a.T * group, hd = a.hd;
    const long long rows = (long long)a.B * a.Hkv * R;
    const int lane = threadIdx.x & 31, wpb = ATT_THREADS / 32;
    for (long long row = (long long)blockIdx.x * wpb + (threadIdx.x >> 5); row < rows;
         row += (long long)gridDim.x * wpb) {
        const float *p = ws + row * nchunk * (long long)(hd + 2);
        float M = -INFINITY;
        for (int c = 0; c < nchunk; c++) M = fmaxf(M, p[(long long)c * (hd + 2)]);
        float L = 0.0f;
        for (int c = 0; c < nchunk; c++) {
            const float *pc = p + (long long)c * (hd + 2);
            L += expf(pc[0] - M) * pc[1];
        }
        const float inv = 1.0f / L;
        const int rr = (int)(row % R);
        const long long bh = row / R;
        const int hk = (int)(bh % a.Hkv), b = (int)(bh / a.Hkv);
        const int t = rr / group, h = hk * group + (rr - t * group);
        float *o = a.o + (long long)b * a.o0 + (long long)t * a.o1 + (long long)h * a.o2;
        for (int d = lane; d < hd; d += 32) {
            float s = 0.0f;
            for (int c = 0; c < nchunk; c++) {
                const float *pc = p + (long long)c * (hd + 2);
                s += expf(pc[0] - M) * pc[2 + d];
            }
            o[d] = s * inv;
        }
    }
}

#endif /* AWQ_CUDA_ATTENTION_CUH */
