/*
 * attn_x86.c - the attention row (k_attn_row, see simd.h) with explicit AVX-512 and AVX2 code:
 * keys in blocks of 16 (8 on AVX2), the block's dot products reduced together by a transpose-add
 * tree (one horizontal sum per block, not per key), a vectorized exp (Cody-Waite range
 * reduction, degree-7 polynomial: relative error ~1e-7), and the online softmax of the generic
 * version. Falls back to the generic loop (simd.c) for head sizes that are not a multiple of 16
 * (AVX-512) / 8 (AVX2), and on other machines.
 */
#include <math.h>

#include "kcommon.h"

#if K_X86
#include <immintrin.h>

#define T512   __attribute__((target("avx512f,avx2,fma,f16c")))
#define T256   __attribute__((target("avx2,fma,f16c")))

#define LN2_HI 0.693145751953125f
#define LN2_LO 1.428606765330187e-06f
#define LOG2E  1.44269504088896341f
/* e^r on [-ln2/2, ln2/2]: Taylor coefficients 1/k!, k = 0..7 */
#define EXP_POLY(FMA, SET1, r)                                                                             \
    FMA(FMA(FMA(FMA(FMA(FMA(FMA(SET1(1.0f / 5040.0f), r, SET1(1.0f / 720.0f)), r, SET1(1.0f / 120.0f)), r, \
                        SET1(1.0f / 24.0f)),                                                               \
                    r, SET1(1.0f / 6.0f)),                                                                 \
                r, SET1(0.5f)),                                                                            \
            r, SET1(1.0f)),                                                                                \
        r, SET1(1.0f))

/* e^x for x <= 0 (lanes below -87 give ~0). */
T512 static inline __m512 exp512(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(LOG2E)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_HI), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_LO), r);
    __m512 p = EXP_POLY(_mm512_fmadd_ps, _mm512_set1_ps, r);
    return _mm512_scalef_ps(p, n);
}

T256 static inline __m256 exp256(__m256 x) {
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(LOG2E)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_HI), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_LO), r);
    __m256 p = EXP_POLY(_mm256_fmadd_ps, _mm256_set1_ps, r);
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

/* r[j] = sum of the lanes of v[j], j < 16. */
T512 static inline __m512 hsum16(const __m512 *v) {
    __m512 t[8], u[4];
    _Pragma("GCC unroll 8") for (int i = 0; i < 8; i++) t[i] =
        _mm512_add_ps(_mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]), _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]));
    _Pragma("GCC unroll 8") for (int i = 0; i < 4; i++) u[i] =
        _mm512_add_ps(_mm512_shuffle_ps(t[2 * i], t[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                      _mm512_shuffle_ps(t[2 * i], t[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    __m512 x = _mm512_add_ps(_mm512_shuffle_f32x4(u[0], u[1], _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_f32x4(u[0], u[1], _MM_SHUFFLE(3, 1, 3, 1)));
    __m512 y = _mm512_add_ps(_mm512_shuffle_f32x4(u[2], u[3], _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_f32x4(u[2], u[3], _MM_SHUFFLE(3, 1, 3, 1)));
    return _mm512_add_ps(_mm512_shuffle_f32x4(x, y, _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(x, y, _MM_SHUFFLE(3, 1, 3, 1)));
}

/* r[j] = sum of the lanes of v[j], j < 8. */
T256 static inline __m256 hsum8(const __m256 *v) {
    __m256 t[4], u[2];
    _Pragma("GCC unroll 8") for (int i = 0; i < 4; i++) t[i] =
        _mm256_add_ps(_mm256_unpacklo_ps(v[2 * i], v[2 * i + 1]), _mm256_unpackhi_ps(v[2 * i], v[2 * i + 1]));
    _Pragma("GCC unroll 8") for (int i = 0; i < 2; i++) u[i] =
        _mm256_add_ps(_mm256_shuffle_ps(t[2 * i], t[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                      _mm256_shuffle_ps(t[2 * i], t[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    /* u[i] 128-bit half h holds the sums over half h of v[4i..4i+3] */
    return _mm256_add_ps(_mm256_permute2f128_ps(u[0], u[1], 0x20), _mm256_permute2f128_ps(u[0], u[1], 0x31));
}

/* Block of up to 16 keys; HD > 0 is the head size known at compile time (accumulators in
 * registers), 0 means hd at run time (accumulators in out[]). */
#define ATTN512(NAME, HD)                                                                                \
    T512 static void NAME(const float *q, const char *kb, int64_t ks, const char *vb, int64_t vs,        \
                          int64_t lo, int64_t hi, int64_t hd_rt, float scale, float *out) {              \
        const int64_t hd = HD > 0 ? HD : hd_rt, nd = hd / 16;                                            \
        __m512 o[HD > 0 ? HD / 16 : 1];                                                                  \
        float m = -INFINITY, l = 0.0f, pb[16];                                                           \
        if (HD > 0)                                                                                      \
            for (int64_t d = 0; d < nd; d++) o[d] = _mm512_setzero_ps();                                 \
        else                                                                                             \
            for (int64_t d = 0; d < hd; d++) out[d] = 0.0f;                                              \
        for (int64_t j0 = lo; j0 <= hi; j0 += 16) {                                                      \
            int nb = hi - j0 + 1 < 16 ? (int)(hi - j0 + 1) : 16;                                         \
            __m512 acc[16];                                                                              \
            _Pragma("GCC unroll 16") for (int jj = 0; jj < 16; jj++) {                                   \
                acc[jj] = _mm512_setzero_ps();                                                           \
                /* keys past the block end read the last valid key (masked out below) */                 \
                const float *kv = (const float *)(kb + (j0 + (jj < nb ? jj : nb - 1)) * ks);             \
                _Pragma("GCC unroll 8") for (int64_t d = 0; d < nd; d++) acc[jj] =                       \
                    _mm512_fmadd_ps(_mm512_loadu_ps(q + 16 * d), _mm512_loadu_ps(kv + 16 * d), acc[jj]); \
            }                                                                                            \
            __mmask16 valid = (__mmask16)((1u << nb) - 1u);                                              \
            __m512 sc = _mm512_mask_blend_ps(valid, _mm512_set1_ps(-INFINITY),                           \
                                             _mm512_mul_ps(hsum16(acc), _mm512_set1_ps(scale)));         \
            float bm = _mm512_reduce_max_ps(sc);                                                         \
            if (bm > m) {                                                                                \
                float c = expf(m - bm); /* rescale what was accumulated so far */                        \
                l *= c;                                                                                  \
                if (HD > 0)                                                                              \
                    for (int64_t d = 0; d < nd; d++) o[d] = _mm512_mul_ps(o[d], _mm512_set1_ps(c));      \
                else                                                                                     \
                    for (int64_t d = 0; d < hd; d++) out[d] *= c;                                        \
                m = bm;                                                                                  \
            }                                                                                            \
            __m512 p = _mm512_maskz_mov_ps(valid, exp512(_mm512_sub_ps(sc, _mm512_set1_ps(m))));         \
            l += _mm512_reduce_add_ps(p);                                                                \
            _mm512_storeu_ps(pb, p);                                                                     \
            for (int jj = 0; jj < nb; jj++) {                                                            \
                const float *vv = (const float *)(vb + (j0 + jj) * vs);                                  \
                __m512 pj = _mm512_set1_ps(pb[jj]);                                                      \
                if (HD > 0)                                                                              \
                    _Pragma("GCC unroll 8") for (int64_t d = 0; d < nd; d++) o[d] =                      \
                        _mm512_fmadd_ps(pj, _mm512_loadu_ps(vv + 16 * d), o[d]);                         \
                else                                                                                     \
                    for (int64_t d = 0; d < nd; d++)                                                     \
                        _mm512_storeu_ps(out + 16 * d,                                                   \
                                         _mm512_fmadd_ps(pj, _mm512_loadu_ps(vv + 16 * d),               \
                                                         _mm512_loadu_ps(out + 16 * d)));                \
            }                                                                                            \
        }                                                                                                \
        __m512 inv = _mm512_set1_ps(1.0f / l);                                                           \
        if (HD > 0)                                                                                      \
            for (int64_t d = 0; d < nd; d++) _mm512_storeu_ps(out + 16 * d, _mm512_mul_ps(o[d], inv));   \
        else                                                                                             \
            for (int64_t d = 0; d < nd; d++)                                                             \
                _mm512_storeu_ps(out + 16 * d, _mm512_mul_ps(_mm512_loadu_ps(out + 16 * d), inv));       \
    }
ATTN512(attn512_64, 64)
ATTN512(attn512_128, 128)
ATTN512(attn512_any, 0)

T256 static void attn256(const float *q, const char *kb, int64_t ks, const char *vb, int64_t vs, int64_t lo,
                         int64_t hi, int64_t hd, float scale, float *out) {
    const int64_t nd = hd / 8;
    float m = -INFINITY, l = 0.0f, pb[8];
    for (int64_t d = 0; d < hd; d++) out[d] = 0.0f;
    for (int64_t j0 = lo; j0 <= hi; j0 += 8) {
        int nb = hi - j0 + 1 < 8 ? (int)(hi - j0 + 1) : 8;
        __m256 acc[8];
        _Pragma("GCC unroll 8") for (int jj = 0; jj < 8; jj++) {
            acc[jj] = _mm256_setzero_ps();
            const float *kv = (const float *)(kb + (j0 + (jj < nb ? jj : nb - 1)) * ks);
            for (int64_t d = 0; d < nd; d++)
                acc[jj] = _mm256_fmadd_ps(_mm256_loadu_ps(q + 8 * d), _mm256_loadu_ps(kv + 8 * d), acc[jj]);
        }
        float s[8];
        _mm256_storeu_ps(s, _mm256_mul_ps(hsum8(acc), _mm256_set1_ps(scale)));
        float bm = -INFINITY;
        for (int jj = 0; jj < nb; jj++) bm = s[jj] > bm ? s[jj] : bm;
        for (int jj = nb; jj < 8; jj++) s[jj] = -INFINITY;
        if (bm > m) {
            float c = expf(m - bm);
            l *= c;
            for (int64_t d = 0; d < hd; d++) out[d] *= c;
            m = bm;
        }
        __m256 p = exp256(_mm256_sub_ps(_mm256_loadu_ps(s), _mm256_set1_ps(m)));
        _mm256_storeu_ps(pb, p);
        for (int jj = 0; jj < nb; jj++) {
            const float *vv = (const float *)(vb + (j0 + jj) * vs);
            __m256 pj = _mm256_set1_ps(pb[jj]);
            l += pb[jj];
            for (int64_t d = 0; d < nd; d++)
                _mm256_storeu_ps(
                    out + 8 * d,
                    _mm256_fmadd_ps(pj, _mm256_loadu_ps(vv + 8 * d), _mm256_loadu_ps(out + 8 * d)));
        }
    }
    float inv = 1.0f / l;
    for (int64_t d = 0; d < hd; d++) out[d] *= inv;
}
#endif /* K_X86 */

void k_attn_row(const float *q, const char *kbase, int64_t kstride, const char *vbase, int64_t vstride,
                int64_t lo, int64_t hi, int64_t hd, float scale, float *out) {
#if K_X86
    int isa = k_isa();
    if (isa == K_ISA_AVX512 && hd % 16 == 0) {
        if (hd == 64)
            attn512_64(q, kbase, kstride, vbase, vstride, lo, hi, hd, scale, out);
        else if (hd == 128)
            attn512_128(q, kbase, kstride, vbase, vstride, lo, hi, hd, scale, out);
        else
            attn512_any(q, kbase, kstride, vbase, vstride, lo, hi, hd, scale, out);
        return;
    }
    if (isa >= K_ISA_AVX2 && hd % 8 == 0) {
        attn256(q, kbase, kstride, vbase, vstride, lo, hi, hd, scale, out);
        return;
    }
#endif
    k_attn_row_generic(q, kbase, kstride, vbase, vstride, lo, hi, hd, scale, out);
}
