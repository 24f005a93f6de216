/*
 * convert.c - half/bfloat16 -> float conversion and the mixed-precision dot products of the
 * decode path (and the fp32 dot product), with explicit AVX-512 / AVX2+F16C versions chosen at run time (k_isa()).
 * GCC 12 cannot vectorize _Float16 conversions without AVX512-FP16, so the generic loops in
 * simd.c would run one element at a time. Results are identical across versions for the
 * conversions (exact) and differ only in summation order for the dot products.
 */
#include <stdlib.h>
#include <string.h>

#include "kcommon.h"

#if K_X86
#include <cpuid.h>
#include <immintrin.h>
#endif

/* ---- ISA selection ---------------------------------------------------------------------- */

int k_isa(void) {
    static int cached = -1;
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v >= 0) return v;
    v = K_ISA_SCALAR;
#if K_X86
    __builtin_cpu_init();
    /* F16C from CPUID leaf 1 (clang 14's __builtin_cpu_supports does not know "f16c") */
    unsigned int c1 = 0, ea, eb, ed;
    bool f16c = __get_cpuid(1, &ea, &eb, &c1, &ed) && (c1 & bit_F16C);
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c) v = K_ISA_AVX2;
    if (v == K_ISA_AVX2 && __builtin_cpu_supports("avx512f")) v = K_ISA_AVX512;
#endif
    /* AWQ_CPU_ISA=avx2|scalar selects a lower level (tests use it to cover every version) */
    const char *e = getenv("AWQ_CPU_ISA");
    if (e && strcmp(e, "avx2") == 0 && v > K_ISA_AVX2) v = K_ISA_AVX2;
    if (e && strcmp(e, "scalar") == 0) v = K_ISA_SCALAR;
    __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    return v;
}

/* ---- scalar versions -------------------------------------------------------------------- */

static void f16_to_f32_c(float *dst, const uint16_t *src, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = awq_f16_to_f32(src[i]);
}
static void bf16_to_f32_c(float *dst, const uint16_t *src, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = awq_bf16_to_f32(src[i]);
}
static float dot_f16_c(const float *a, const uint16_t *b, int64_t n) {
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++) s += a[i] * awq_f16_to_f32(b[i]);
    return s;
}
static float dot_f32_c(const float *a, const float *b, int64_t n) {
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}
static float dot_bf16_c(const float *a, const uint16_t *b, int64_t n) {
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++) s += a[i] * awq_bf16_to_f32(b[i]);
    return s;
}

#if K_X86
/* ---- AVX-512 ---------------------------------------------------------------------------- */

#define T512 __attribute__((target("avx512f,avx2,fma,f16c")))

T512 static inline __m512 ld_f16_512(const uint16_t *p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)p));
}
T512 static inline __m512 ld_bf16_512(const uint16_t *p) {
    __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(const void *)p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
}

T512 static void f16_to_f32_512(float *dst, const uint16_t *src, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, ld_f16_512(src + i));
    for (; i < n; i++) dst[i] = _cvtsh_ss(src[i]);
}
T512 static void bf16_to_f32_512(float *dst, const uint16_t *src, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, ld_bf16_512(src + i));
    for (; i < n; i++) dst[i] = awq_bf16_to_f32(src[i]);
}

/* Four independent accumulators hide the FMA latency. */
#define DOT512(name, load, tail)                                                                     \
    T512 static float name(const float *a, const uint16_t *b, int64_t n) {                           \
        __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;                                  \
        int64_t i = 0;                                                                               \
        for (; i + 64 <= n; i += 64) {                                                               \
            s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), load(b + i), s0);                           \
            s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), load(b + i + 16), s1);                 \
            s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), load(b + i + 32), s2);                 \
            s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), load(b + i + 48), s3);                 \
        }                                                                                            \
        for (; i + 16 <= n; i += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), load(b + i), s0);  \
        float s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3))); \
        for (; i < n; i++) s += a[i] * tail(b[i]);                                                   \
        return s;                                                                                    \
    }
DOT512(dot_f16_512, ld_f16_512, _cvtsh_ss)
DOT512(dot_bf16_512, ld_bf16_512, awq_bf16_to_f32)
T512 static float dot_f32_512(const float *a, const float *b, int64_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), s3);
    }
    for (; i + 16 <= n; i += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    float s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

/* ---- AVX2 + F16C ------------------------------------------------------------------------ */

#define T256 __attribute__((target("avx2,fma,f16c")))

T256 static inline __m256 ld_f16_256(const uint16_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)p));
}
T256 static inline __m256 ld_bf16_256(const uint16_t *p) {
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}
T256 static void f16_to_f32_256(float *dst, const uint16_t *src, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, ld_f16_256(src + i));
    for (; i < n; i++) dst[i] = _cvtsh_ss(src[i]);
}
T256 static void bf16_to_f32_256(float *dst, const uint16_t *src, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, ld_bf16_256(src + i));
    for (; i < n; i++) dst[i] = awq_bf16_to_f32(src[i]);
}
T256 static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
#define DOT256(name, load, tail)                                                                  \
    T256 static float name(const float *a, const uint16_t *b, int64_t n) {                        \
        __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;                               \
        int64_t i = 0;                                                                            \
        for (; i + 32 <= n; i += 32) {                                                            \
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), load(b + i), s0);                        \
            s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), load(b + i + 8), s1);                \
            s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), load(b + i + 16), s2);              \
            s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), load(b + i + 24), s3);              \
        }                                                                                         \
        for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), load(b + i), s0); \
        float s = hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));           \
        for (; i < n; i++) s += a[i] * tail(b[i]);                                                \
        return s;                                                                                 \
    }
DOT256(dot_f16_256, ld_f16_256, _cvtsh_ss)
DOT256(dot_bf16_256, ld_bf16_256, awq_bf16_to_f32)
T256 static float dot_f32_256(const float *a, const float *b, int64_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    float s = hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}
#endif /* K_X86 */

/* ---- dispatch --------------------------------------------------------------------------- */

#if K_X86
#define DISPATCH(f512, f256, fc, ...)                \
    (k_isa() == K_ISA_AVX512     ? f512(__VA_ARGS__) \
         : k_isa() == K_ISA_AVX2 ? f256(__VA_ARGS__) \
                                 : fc(__VA_ARGS__))
#else
#define DISPATCH(f512, f256, fc, ...) fc(__VA_ARGS__)
#endif

void k_f16_to_f32(float *dst, const uint16_t *src, int64_t n) {
    DISPATCH(f16_to_f32_512, f16_to_f32_256, f16_to_f32_c, dst, src, n);
}
void k_bf16_to_f32(float *dst, const uint16_t *src, int64_t n) {
    DISPATCH(bf16_to_f32_512, bf16_to_f32_256, bf16_to_f32_c, dst, src, n);
}
float k_dot_f16(const float *a, const uint16_t *b, int64_t n) {
    return DISPATCH(dot_f16_512, dot_f16_256, dot_f16_c, a, b, n);
}
float k_dot_f32(const float *a, const float *b, int64_t n) {
    return DISPATCH(dot_f32_512, dot_f32_256, dot_f32_c, a, b, n);
}
float k_dot_bf16(const float *a, const uint16_t *b, int64_t n) {
    return DISPATCH(dot_bf16_512, dot_bf16_256, dot_bf16_c, a, b, n);
}
