/*
 * q8gemv.c - the small-batch (decode) path of matmul_q8: y = x W^T for a weight in llama.cpp's
 * Q8_0 form (int8 codes, one fp16 scale per block of 32 inputs), the 8-bit lm_head of
 * AWQ_LM_HEAD_Q8. Activations stay fp32 ("Q8 x F32"): per output o and block b
 *   y[o] = sum_b d[o][b] * sum_{k in b} x[k] * q[o][k]
 * with fp32 accumulation; the codes are widened to fp32 in registers, so each weight byte is
 * read once per call (one stream per output row). Larger batches go through the tiled matmul
 * (matmul.c), which dequantizes 8 rows at a time and reuses them for every x row.
 *
 * Versions: AVX-512 (16 codes per vpmovsxbd), AVX2+F16C (8 codes), scalar; see k_isa().
 */
#include "kcommon.h"
#include "../threadpool.h"

#if K_X86
#include <immintrin.h>
#endif

#define Q8_BLK           32  /* inputs per scale (Q8_0) */
#define Q8_ROWS_PER_TASK 64  /* output rows per scheduling unit */
#define Q8_SEG           256 /* blocks (8192 inputs) whose scales are converted at a time */

/* sum_b d[b] * (q[b*32..] . x[b*32..]) over nb <= Q8_SEG blocks of one weight row, d fp16. The
 * SIMD versions convert the row's nb scales to fp32 first. One row at a time: interleaving
 * several rows (four streams 576 bytes apart) measured 3x slower from DRAM on Zen 4, the
 * hardware prefetcher following one sequential stream per thread best. */
static float q8_row_c(const float *x, const int8_t *q, const uint16_t *d, int64_t nb) {
    float acc = 0.0f;
    for (int64_t b = 0; b < nb; b++) {
        const int8_t *qb = q + b * Q8_BLK;
        const float *xb = x + b * Q8_BLK;
        float s = 0.0f;
        for (int k = 0; k < Q8_BLK; k++) s += (float)qb[k] * xb[k];
        acc += awq_f16_to_f32(d[b]) * s;
    }
    return acc;
}

#if K_X86
#define T512 __attribute__((target("avx512f,avx2,fma,f16c")))
#define T256 __attribute__((target("avx2,fma,f16c")))

#define Q8_CVT256(p) \
    _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(p))))
#define Q8_CVT512(p) \
    _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(p))))

T256 static float q8_row_avx2(const float *x, const int8_t *q, const uint16_t *d16, int64_t nb) {
    float d[Q8_SEG];
    int64_t b = 0;
    for (; b + 8 <= nb; b += 8)
        _mm256_storeu_ps(d + b, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(d16 + b))));
    for (; b < nb; b++) d[b] = _cvtsh_ss(d16[b]);
    __m256 acc = _mm256_setzero_ps();
    for (b = 0; b < nb; b++) {
        const float *xb = x + b * Q8_BLK;
        const int8_t *qb = q + b * Q8_BLK;
        __m256 s = _mm256_mul_ps(Q8_CVT256(qb), _mm256_loadu_ps(xb));
        s = _mm256_fmadd_ps(Q8_CVT256(qb + 8), _mm256_loadu_ps(xb + 8), s);
        s = _mm256_fmadd_ps(Q8_CVT256(qb + 16), _mm256_loadu_ps(xb + 16), s);
        s = _mm256_fmadd_ps(Q8_CVT256(qb + 24), _mm256_loadu_ps(xb + 24), s);
        acc = _mm256_fmadd_ps(_mm256_broadcast_ss(d + b), s, acc);
    }
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

T512 static float q8_row_avx512(const float *x, const int8_t *q, const uint16_t *d16, int64_t nb) {
    float d[Q8_SEG];
    int64_t b = 0;
    for (; b + 16 <= nb; b += 16)
        _mm512_storeu_ps(d + b,
                         _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(d16 + b))));
    for (; b < nb; b++) d[b] = _cvtsh_ss(d16[b]);
    __m512 acc = _mm512_setzero_ps();
    for (b = 0; b < nb; b++) {
        const float *xb = x + b * Q8_BLK;
        const int8_t *qb = q + b * Q8_BLK;
        __m512 s = _mm512_mul_ps(Q8_CVT512(qb), _mm512_loadu_ps(xb));
        s = _mm512_fmadd_ps(Q8_CVT512(qb + 16), _mm512_loadu_ps(xb + 16), s);
        acc = _mm512_fmadd_ps(_mm512_set1_ps(d[b]), s, acc);
    }
    return _mm512_reduce_add_ps(acc);
}
#endif /* K_X86 */

/* One weight row against one x row, with the version k_isa() picked. */
static float q8_row(int isa, const float *x, const int8_t *q, const uint16_t *d, int64_t nb) {
#if K_X86
    if (isa == K_ISA_AVX512) return q8_row_avx512(x, q, d, nb);
    if (isa == K_ISA_AVX2) return q8_row_avx2(x, q, d, nb);
#endif
    (void)isa;
    return q8_row_c(x, q, d, nb);
}

struct q8_job {
    const awq_tensor *y, *x, *qs, *d;
    int64_t n, nb, out;
    int isa;
};

/* Tasks [lo, hi): output rows [lo * Q8_ROWS_PER_TASK, hi * Q8_ROWS_PER_TASK) for every x row. */
static void q8_tasks(void *arg, int64_t lo, int64_t hi) {
    const struct q8_job *j = arg;
    int64_t nb = j->nb;
    int64_t o1 = hi * Q8_ROWS_PER_TASK < j->out ? hi * Q8_ROWS_PER_TASK : j->out;
    for (int64_t o = lo * Q8_ROWS_PER_TASK; o < o1; o++) {
        const int8_t *qr = (const int8_t *)k_row(j->qs, o);
        const uint16_t *dr = (const uint16_t *)k_row(j->d, o);
        for (int64_t i = 0; i < j->n; i++) {
            const float *xi = (const float *)k_row(j->x, i);
            float acc = 0.0f; /* segments of up to Q8_SEG blocks (the kernels' scale buffer) */
            for (int64_t b0 = 0; b0 < nb; b0 += Q8_SEG)
                acc += q8_row(j->isa, xi + b0 * Q8_BLK, qr + b0 * Q8_BLK, dr + b0,
                              nb - b0 < Q8_SEG ? nb - b0 : Q8_SEG);
            ((float *)k_row(j->y, i))[o] = acc;
        }
    }
}

awq_status k_q8_gemv(awq_backend_ctx *ctx, awq_tensor *y, const awq_tensor *x, const awq_tensor *qs,
                     const awq_tensor *d) {
    int64_t out = awq_tensor_rows(qs), ntask = (out + Q8_ROWS_PER_TASK - 1) / Q8_ROWS_PER_TASK;
    struct q8_job j = {.y = y,
                       .x = x,
                       .qs = qs,
                       .d = d,
                       .n = awq_tensor_rows(x),
                       .nb = awq_tensor_cols(x) / Q8_BLK,
                       .out = out,
                       .isa = k_isa()};
    /* dynamic: a preempted thread's rows are taken over (each output is computed the same way
     * whichever thread does it) */
    awq_tpool_for(ctx->pool, ntask, 4, q8_tasks, &j);
    return AWQ_OK;
}
