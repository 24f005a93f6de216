/*
 * w4gemv.c - the small-batch (decode) path of matmul_w4a16: exact fp32 W4A16 arithmetic on a
 * repacked copy of the AWQ weight made once by weight_prepare.
 *
 * Prepared layout (k_w4_prep): output columns in chunks of 64 (8 packed words); per chunk all
 * `in` rows of 8 words are contiguous, q[c][k][0..8) - one sequential stream per chunk, and two
 * consecutive rows fill one 64-byte cache line. Word l of a row keeps the AWQ nibble order, so
 * nibble slot i of word l is output 64c + 8l + ORDER[i] (docs/formats.md 4.1). Scales and zero
 * points per (chunk, group) are stored as fp32 in the same slot order: s[i*8 + l] and zs = z * s.
 *
 * Math per output o and group g (X_g = sum_{k in g} x[k], computed once per call):
 *   y[o] = sum_g ( s[g][o] * sum_{k in g} x[k] q[k][o]  -  z[g][o] s[g][o] * X_g ) + bias[o]
 * which is sum_k x[k] (q - z) s exactly in real arithmetic; the fp32 rounding differs from the
 * reference's per-element dequantization by far less than the matmul tolerance (1e-5 relative
 * to sum |x w|, tests/backends). No int8 activations anywhere.
 *
 * Versions: AVX-512 (two rows per 512-bit register, up to 3 activation rows per weight pass),
 * AVX2 (one row per 256-bit register, one activation row per pass), scalar; see k_isa().
 */
#include <stdlib.h>

#include <omp.h>

#include "kcommon.h"
#include "../threadpool.h"

#if K_X86
#include <immintrin.h>
#endif

#define K_W4_MAGIC 0x50473457u /* "W4GP" */

struct k_w4_prep {
    uint32_t magic;
    int64_t in, out, gs, G, nc; /* nc = chunks of 64 outputs (the last one zero-padded) */
    int32_t *q;                 /* (nc, in, 8) words */
    float *s, *zs;              /* (nc, G, 64) slot-ordered */
};

static const int ORDER[8] = {0, 2, 4, 6, 1, 3, 5, 7};

awq_status awq_cpu_weight_prepare(awq_backend_ctx *ctx, awq_qlinear *w) {
    int64_t in = w->in, out = w->out, gs = w->group_size;
    w->prepared = NULL;
    /* anything unusual stays on the generic path (the op validates it) */
    if (in <= 0 || out <= 0 || out % 8 || gs <= 0 || gs % 2 || in % gs || w->qweight.type != AWQ_DTYPE_I32 ||
        w->qzeros.type != AWQ_DTYPE_I32 || w->scales.type != AWQ_DTYPE_F16 ||
        !awq_tensor_is_contiguous(&w->qweight) || !awq_tensor_is_contiguous(&w->qzeros) ||
        !awq_tensor_is_contiguous(&w->scales) || awq_tensor_nelem(&w->qweight) != in * (out / 8) ||
        awq_tensor_nelem(&w->qzeros) != in / gs * (out / 8) || awq_tensor_nelem(&w->scales) != in / gs * out)
        return AWQ_OK;
    if (k_w4a8_wanted(ctx)) return k_w4a8_prepare(ctx, w);
    int64_t G = in / gs, ow = out / 8, nc = (ow + 7) / 8;
    struct k_w4_prep *p = calloc(1, sizeof *p);
    size_t qbytes = (size_t)nc * (size_t)in * 8 * sizeof(int32_t),
           sbytes = (size_t)nc * (size_t)G * 64 * sizeof(float);
    if (!p || posix_memalign((void **)&p->q, 64, qbytes) || posix_memalign((void **)&p->s, 64, sbytes) ||
        posix_memalign((void **)&p->zs, 64, sbytes)) {
        if (p) {
            free(p->q);
            free(p->s);
            free(p->zs);
        }
        free(p);
        awq_cpu_error(ctx, "weight_prepare: cannot allocate %zu bytes", qbytes + 2 * sbytes);
        return AWQ_ERR_OUT_OF_MEMORY;
    }
    *p = (struct k_w4_prep){K_W4_MAGIC, in, out, gs, G, nc, p->q, p->s, p->zs};
    const int32_t *qw = (const int32_t *)awq_cpu_ptr(&w->qweight);
    const int32_t *qz = (const int32_t *)awq_cpu_ptr(&w->qzeros);
    const uint16_t *sc = (const uint16_t *)awq_cpu_ptr(&w->scales);
#pragma omp parallel for schedule(static) num_threads(ctx->n_threads)
    for (int64_t c = 0; c < nc; c++) {
        for (int64_t k = 0; k < in; k++)
            for (int l = 0; l < 8; l++) {
                int64_t word = 8 * c + l;
                p->q[(c * in + k) * 8 + l] = word < ow ? qw[k * ow + word] : 0;
            }
        for (int64_t g = 0; g < G; g++)
            for (int i = 0; i < 8; i++)
                for (int l = 0; l < 8; l++) {
                    int64_t word = 8 * c + l, o = 8 * word + ORDER[i];
                    float s = 0.0f, z = 0.0f;
                    if (word < ow) {
                        s = awq_f16_to_f32(sc[g * out + o]);
                        z = (float)(((uint32_t)qz[g * ow + word] >> (4 * i)) & 15u);
                    }
                    p->s[(c * G + g) * 64 + i * 8 + l] = s;
                    p->zs[(c * G + g) * 64 + i * 8 + l] = z * s;
                }
    }
    w->prepared = p;
    return AWQ_OK;
}

void awq_cpu_weight_release(awq_backend_ctx *ctx, awq_qlinear *w) {
    if (k_w4a8_release(w)) return;
    struct k_w4_prep *p = w->prepared;
    if (p && p->magic == K_W4_MAGIC) {
        p->magic = 0;
        free(p->q);
        free(p->s);
        free(p->zs);
        free(p);
    }
    w->prepared = NULL;
}

/* ---- chunk kernels: tot (nr, 64) slot-ordered partial outputs of chunk c ---------------- */

/* x rows r < nr at x + r * ldx; xs (nr, G) group sums of x. */
static void chunk_c(const struct k_w4_prep *p, int64_t c, const float *x, int64_t ldx, int nr,
                    const float *xs, float *tot) {
    int64_t in = p->in, gs = p->gs, G = p->G;
    for (int r = 0; r < nr; r++)
        for (int j = 0; j < 64; j++) tot[r * 64 + j] = 0.0f;
    for (int r = 0; r < nr; r++) {
        for (int64_t g = 0; g < G; g++) {
            float a[64] = {0};
            for (int64_t k = g * gs; k < (g + 1) * gs; k++) {
                const uint32_t *v = (const uint32_t *)(p->q + (c * in + k) * 8);
                float xk = x[r * ldx + k];
                for (int i = 0; i < 8; i++)
                    for (int l = 0; l < 8; l++) a[i * 8 + l] += xk * (float)((v[l] >> (4 * i)) & 15u);
            }
            const float *s = p->s + (c * G + g) * 64, *zs = p->zs + (c * G + g) * 64;
            for (int j = 0; j < 64; j++) tot[r * 64 + j] += s[j] * a[j] - zs[j] * xs[r * G + g];
        }
    }
}

#if K_X86
#define T512 __attribute__((target("avx512f,avx2,fma,f16c")))
#define T256 __attribute__((target("avx2,fma,f16c")))

/* NR activation rows per pass; rows k and k+1 of the chunk share one zmm (lanes 0-7, 8-15). */
#define CHUNK512(NAME, NR)                                                                                   \
    T512 static void NAME(const struct k_w4_prep *p, int64_t c, const float *x, int64_t ldx,                 \
                          const float *xs, float *tot) {                                                     \
        int64_t in = p->in, gs = p->gs, G = p->G;                                                            \
        const __m512i m15 = _mm512_set1_epi32(15);                                                           \
        const __m512i pair = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);              \
        __m256 t[NR][8];                                                                                     \
        _Pragma("GCC unroll 8") for (int r = 0; r < NR; r++)                                                 \
            _Pragma("GCC unroll 8") for (int i = 0; i < 8; i++) t[r][i] = _mm256_setzero_ps();               \
        for (int64_t g = 0; g < G; g++) {                                                                    \
            __m512 a[NR][8];                                                                                 \
            _Pragma("GCC unroll 8") for (int r = 0; r < NR; r++)                                             \
                _Pragma("GCC unroll 8") for (int i = 0; i < 8; i++) a[r][i] = _mm512_setzero_ps();           \
            const int32_t *q = p->q + (c * in + g * gs) * 8;                                                 \
            for (int64_t k = g * gs; k < (g + 1) * gs; k += 2, q += 16) {                                    \
                __m512i v = _mm512_load_si512((const void *)q);                                              \
                __m512 xv[NR];                                                                               \
                _Pragma("GCC unroll 8") for (int r = 0; r < NR; r++) {                                       \
                    __m128 x2 =                                                                              \
                        _mm_castsi128_ps(_mm_loadl_epi64((const __m128i *)(const void *)(x + r * ldx + k))); \
                    xv[r] = _mm512_permutexvar_ps(pair, _mm512_castps128_ps512(x2));                         \
                }                                                                                            \
                _Pragma("GCC unroll 8") for (int i = 0; i < 8; i++) {                                        \
                    __m512i n = i == 7 ? _mm512_srli_epi32(v, 28)                                            \
                                       : _mm512_and_si512(_mm512_srli_epi32(v, 4 * i), m15);                 \
                    __m512 qf = _mm512_cvtepi32_ps(n);                                                       \
                    _Pragma("GCC unroll 8") for (int r = 0; r < NR; r++) a[r][i] =                           \
                        _mm512_fmadd_ps(xv[r], qf, a[r][i]);                                                 \
                }                                                                                            \
            }                                                                                                \
            const float *s = p->s + (c * G + g) * 64, *zs = p->zs + (c * G + g) * 64;                        \
            _Pragma("GCC unroll 8") for (int r = 0; r < NR; r++) {                                           \
                __m256 xg = _mm256_set1_ps(xs[r * G + g]);                                                   \
                _Pragma("GCC unroll 8") for (int i = 0; i < 8; i++) {                                        \
                    __m256 lo = _mm512_castps512_ps256(a[r][i]);                                             \
                    __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a[r][i]), 1));      \
                    __m256 sum = _mm256_add_ps(lo, hi);                                                      \
                    t[r][i] = _mm256_fmadd_ps(_mm256_load_ps(s + 8 * i), sum, t[r][i]);                      \
                    t[r][i] = _mm256_fnmadd_ps(_mm256_load_ps(zs + 8 * i), xg, t[r][i]);                     \
                }                                                                                            \
            }                                                                                                \
        }                                                                                                    \
        _Pragma("GCC unroll 8") for (int r = 0; r < NR; r++)                                                 \
            _Pragma("GCC unroll 8") for (int i = 0; i < 8; i++)                                              \
                _mm256_storeu_ps(tot + r * 64 + 8 * i, t[r][i]);                                             \
    }
CHUNK512(chunk512_1, 1)
CHUNK512(chunk512_2, 2)
CHUNK512(chunk512_3, 3)

T256 static void chunk256(const struct k_w4_prep *p, int64_t c, const float *x, const float *xs, float *tot) {
    int64_t in = p->in, gs = p->gs, G = p->G;
    const __m256i m15 = _mm256_set1_epi32(15);
    __m256 t[8];
    for (int i = 0; i < 8; i++) t[i] = _mm256_setzero_ps();
    for (int64_t g = 0; g < G; g++) {
        __m256 a[8];
        for (int i = 0; i < 8; i++) a[i] = _mm256_setzero_ps();
        const int32_t *q = p->q + (c * in + g * gs) * 8;
        for (int64_t k = g * gs; k < (g + 1) * gs; k++, q += 8) {
            __m256i v = _mm256_load_si256((const __m256i *)(const void *)q);
            __m256 xb = _mm256_broadcast_ss(x + k);
            _Pragma("GCC unroll 8") for (int i = 0; i < 8; i++) {
                __m256i n =
                    i == 7 ? _mm256_srli_epi32(v, 28) : _mm256_and_si256(_mm256_srli_epi32(v, 4 * i), m15);
                a[i] = _mm256_fmadd_ps(xb, _mm256_cvtepi32_ps(n), a[i]);
            }
        }
        const float *s = p->s + (c * G + g) * 64, *zs = p->zs + (c * G + g) * 64;
        __m256 xg = _mm256_set1_ps(xs[g]);
        for (int i = 0; i < 8; i++) {
            t[i] = _mm256_fmadd_ps(_mm256_load_ps(s + 8 * i), a[i], t[i]);
            t[i] = _mm256_fnmadd_ps(_mm256_load_ps(zs + 8 * i), xg, t[i]);
        }
    }
    for (int i = 0; i < 8; i++) _mm256_storeu_ps(tot + 8 * i, t[i]);
}
#endif /* K_X86 */

/* ---- the op ------------------------------------------------------------------------------- */

bool k_w4_prepared_ok(const awq_qlinear *w) {
    const struct k_w4_prep *p = w->prepared;
    return p && p->magic == K_W4_MAGIC && p->in == w->in && p->out == w->out && p->gs == w->group_size;
}

/* One call of k_w4_gemv_multi, shared by the threads that run its chunks. */
struct w4_job {
    const struct k_w4_prep *pp[3];
    int64_t c0[4], outs[3], boff[4];
    int nw, isa;
    int64_t n, G, ldx;
    const float *x0, *xs, *bias;
    awq_tensor *const *y;
};

/* Chunks [lo, hi) of the concatenated weights (chunk ct of weight wi is ct - c0[wi]). */
static void w4_chunks(void *arg, int64_t lo, int64_t hi) {
    const struct w4_job *j = arg;
    int64_t n = j->n, G = j->G, ldx = j->ldx;
    for (int64_t ct = lo; ct < hi; ct++) {
        int wi = ct >= j->c0[1] ? (ct >= j->c0[2] && j->nw > 2 ? 2 : 1) : 0;
        const struct k_w4_prep *p = j->pp[wi];
        int64_t c = ct - j->c0[wi], out = j->outs[wi];
        const float *bw = j->bias + j->boff[wi], *xs = j->xs;
        awq_tensor *yw = j->y[wi];
        float tot[3 * 64];
        for (int64_t r0 = 0; r0 < n;) {
            int nr = 1;
            const float *xr = j->x0 + r0 * ldx;
#if K_X86
            if (j->isa == K_ISA_AVX512) {
                nr = n - r0 >= 3 ? 3 : (int)(n - r0);
                if (nr == 3)
                    chunk512_3(p, c, xr, ldx, xs + r0 * G, tot);
                else if (nr == 2)
                    chunk512_2(p, c, xr, ldx, xs + r0 * G, tot);
                else
                    chunk512_1(p, c, xr, ldx, xs + r0 * G, tot);
            } else if (j->isa == K_ISA_AVX2) {
                chunk256(p, c, xr, xs + r0 * G, tot);
            } else
#endif
                chunk_c(p, c, xr, ldx, 1, xs + r0 * G, tot);
            for (int r = 0; r < nr; r++) {
                float *yr = (float *)k_row(yw, r0 + r);
                for (int i = 0; i < 8; i++)
                    for (int l = 0; l < 8; l++) {
                        int64_t o = 64 * c + 8 * l + ORDER[i];
                        if (o < out) yr[o] = tot[r * 64 + i * 8 + l] + bw[o];
                    }
            }
            r0 += nr;
        }
    }
}

/* y[i] (n, w[i]->out) = x (n, in) w[i]^T + bias for nw <= 3 prepared weights with the same in and
 * group size (shapes already checked), in one parallel loop over the chunks of all of them:
 * fused q/k/v and gate/up cost one pool wake-up instead of nw. Each output is computed exactly
 * as by a single-weight call (same chunk kernels, same group sums), whichever thread runs it. */
awq_status k_w4_gemv_multi(awq_backend_ctx *ctx, int nw, awq_tensor *const *y, const awq_tensor *x,
                           const awq_qlinear *const *w) {
    struct w4_job j = {.nw = nw, .y = y, .isa = k_isa()};
    for (int i = 0; i < nw; i++) {
        j.pp[i] = w[i]->prepared;
        j.c0[i + 1] = j.c0[i] + j.pp[i]->nc;
        j.outs[i] = j.pp[i]->out;
        j.boff[i + 1] = j.boff[i] + j.outs[i];
    }
    int64_t n = awq_tensor_rows(x), G = j.pp[0]->G, gs = j.pp[0]->gs, nct = j.c0[nw];
    j.n = n;
    j.G = G;
    j.ldx = awq_tensor_row_stride(x) / (int64_t)sizeof(float);
    float *xs = malloc((size_t)(n * G) * sizeof(float));
    float *bias = malloc((size_t)j.boff[nw] * sizeof(float));
    if (!xs || !bias) {
        free(xs);
        free(bias);
        awq_cpu_error(ctx, "matmul_w4a16: out of memory");
        return AWQ_ERR_OUT_OF_MEMORY;
    }
    for (int64_t r = 0; r < n; r++) {
        const float *xr = (const float *)k_row(x, r);
        for (int64_t g = 0; g < G; g++) {
            float s = 0.0f;
            for (int64_t k = g * gs; k < (g + 1) * gs; k++) s += xr[k];
            xs[r * G + g] = s;
        }
    }
    for (int i = 0; i < nw; i++)
        for (int64_t o = 0; o < j.outs[i]; o++)
            bias[j.boff[i] + o] =
                w[i]->bias.data ? k_load(awq_cpu_ptr(&w[i]->bias), w[i]->bias.type, o) : 0.0f;
    j.x0 = (const float *)k_row(x, 0);
    j.xs = xs;
    j.bias = bias;
    /* one chunk at a time from a shared counter: a thread the OS preempts (a busy machine)
     * leaves its chunks to the others instead of holding them until it runs again */
    awq_tpool_for(ctx->pool, nct, 1, w4_chunks, &j);
    free(xs);
    free(bias);
    return AWQ_OK;
}

/* y (n, out) = x (n, in) W^T + bias via the prepared weight (shapes already checked). */
awq_status k_w4_gemv(awq_backend_ctx *ctx, awq_tensor *y, const awq_tensor *x, const awq_qlinear *w) {
    return k_w4_gemv_multi(ctx, 1, &y, x, &w);
}
