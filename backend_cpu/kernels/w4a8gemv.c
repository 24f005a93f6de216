/*
 * w4a8gemv.c - the int8-activation decode path of matmul_w4a16 (opt-in: AWQ_CPU_W4_ACT=int8 when
 * the weight is prepared; the exact fp32 path of w4gemv.c stays the default and is what the
 * op tests check at 1e-5).
 *
 * Activations: each row of x is quantized per weight group g (gs inputs) to int8 with
 *   dx_g = max_{k in g} |x_k| / 127,  xq_k = round_to_nearest_even(x_k / dx_g),
 * so |x_k - dx_g xq_k| <= dx_g / 2. The weight codes q (0..15) are unsigned bytes, the natural
 * left operand of vpdpbusd (u8 x s8) and of vpmaddubsw. Per output o and group g:
 *   y[o] = sum_g s[g][o] dx_g (sum_{k in g} q[k][o] xq_k - z[g][o] sum_{k in g} xq_k) + bias[o]
 * with integer inner sums (exact), i.e. the exact product of W with the dequantized int8 x.
 *
 * Prepared layout (k_w4a8_prep): outputs in chunks of 64 (natural order, 4 tiles of 16); per chunk
 * and block of 8 inputs, 4 tiles x 16 outputs x 4 bytes = 256 bytes, one sequential stream per
 * chunk. Byte b of output o's 4-byte lane holds q[8j + b][o] in its low nibble and q[8j + 4 + b][o]
 * in its high nibble, so one 64-byte load feeds two vpdpbusd with the broadcast activation bytes
 * 8j..8j+3 and 8j+4..8j+7. Scales and zero points per (chunk, group) as fp32, natural order.
 *
 * Versions: AVX-512 VNNI (vpdpbusd), AVX2 (vpmaddubsw + vpmaddwd; also AVX-512 machines without
 * VNNI), scalar; AWQ_CPU_ISA=avx2|scalar forces the lower ones as for every kernel.
 */
#include <stdlib.h>

#include "kcommon.h"
#include "../threadpool.h"

#if K_X86
#include <immintrin.h>
#endif

#define K_W4A8_MAGIC 0x38413457u /* "W4A8" */

struct k_w4a8_prep {
    uint32_t magic;
    int64_t in, out, gs, G, nc; /* nc = chunks of 64 outputs (the last one zero-padded) */
    uint8_t *q;                 /* (nc, in/8, 256) bytes */
    float *s, *z;               /* (nc, G, 64) */
};

bool k_w4a8_wanted(const awq_backend_ctx *ctx) {
    if (ctx->cfg.w4_act_int8) return true; /* awq_model_params.int8_activations */
    const char *e = getenv("AWQ_CPU_W4_ACT");
    return e && strcmp(e, "int8") == 0;
}

bool k_w4a8_prepared_ok(const awq_qlinear *w) {
    const struct k_w4a8_prep *p = w->prepared;
    return p && p->magic == K_W4A8_MAGIC && p->in == w->in && p->out == w->out && p->gs == w->group_size;
}

/* w's shape was checked by weight_prepare (out % 8 == 0, in % gs == 0, contiguous I32/F16). */
awq_status k_w4a8_prepare(awq_backend_ctx *ctx, awq_qlinear *w) {
    int64_t in = w->in, out = w->out, gs = w->group_size, G = in / gs, ow = out / 8;
    if (gs % 8) return AWQ_OK; /* stays on the exact path (w->prepared NULL) */
    int64_t nc = (out + 63) / 64;
    struct k_w4a8_prep *p = calloc(1, sizeof *p);
    size_t qbytes = (size_t)nc * (size_t)in * 32, sbytes = (size_t)nc * (size_t)G * 64 * sizeof(float);
    if (!p || posix_memalign((void **)&p->q, 64, qbytes) || posix_memalign((void **)&p->s, 64, sbytes) ||
        posix_memalign((void **)&p->z, 64, sbytes)) {
        if (p) {
            free(p->q);
            free(p->s);
            free(p->z);
        }
        free(p);
        awq_cpu_error(ctx, "weight_prepare: cannot allocate %zu bytes", qbytes + 2 * sbytes);
        return AWQ_ERR_OUT_OF_MEMORY;
    }
    *p = (struct k_w4a8_prep){K_W4A8_MAGIC, in, out, gs, G, nc, p->q, p->s, p->z};
    const int32_t *qw = (const int32_t *)awq_cpu_ptr(&w->qweight);
    const int32_t *qz = (const int32_t *)awq_cpu_ptr(&w->qzeros);
    const uint16_t *sc = (const uint16_t *)awq_cpu_ptr(&w->scales);
    for (int64_t c = 0; c < nc; c++) {
        for (int64_t j = 0; j < in / 8; j++)
            for (int64_t l = 0; l < 64; l++) {
                int64_t o = 64 * c + l;
                for (int b = 0; b < 4; b++) {
                    uint8_t lo = 0, hi = 0;
                    if (o < out) {
                        lo = (uint8_t)awq_unpack_nibble(qw[(8 * j + b) * ow + o / 8], (int)(o % 8));
                        hi = (uint8_t)awq_unpack_nibble(qw[(8 * j + 4 + b) * ow + o / 8], (int)(o % 8));
                    }
                    p->q[((c * (in / 8) + j) * 64 + l) * 4 + b] = (uint8_t)(lo | hi << 4);
                }
            }
        for (int64_t g = 0; g < G; g++)
            for (int64_t l = 0; l < 64; l++) {
                int64_t o = 64 * c + l;
                p->s[(c * G + g) * 64 + l] = o < out ? awq_f16_to_f32(sc[g * out + o]) : 0.0f;
                p->z[(c * G + g) * 64 + l] =
                    o < out ? (float)awq_unpack_nibble(qz[g * ow + o / 8], (int)(o % 8)) : 0.0f;
            }
    }
    w->prepared = p;
    return AWQ_OK;
}

bool k_w4a8_release(awq_qlinear *w) {
    struct k_w4a8_prep *p = w->prepared;
    if (!p || p->magic != K_W4A8_MAGIC) return false;
    p->magic = 0;
    free(p->q);
    free(p->s);
    free(p->z);
    free(p);
    w->prepared = NULL;
    return true;
}

/* ---- chunk kernels: tot[64] = outputs 64c.. of one activation row (before bias) ------------ */

/* xq (in) int8, dx (G) scales, sx (G) sums of xq. */
static void chunk_c(const struct k_w4a8_prep *p, int64_t c, const int8_t *xq, const float *dx,
                    const int32_t *sx, float *tot) {
    int64_t in = p->in, gs = p->gs, G = p->G;
    for (int l = 0; l < 64; l++) tot[l] = 0.0f;
    for (int64_t g = 0; g < G; g++) {
        int32_t acc[64] = {0};
        for (int64_t j = g * gs / 8; j < (g + 1) * gs / 8; j++) {
            const uint8_t *v = p->q + (c * (in / 8) + j) * 256;
            for (int l = 0; l < 64; l++)
                for (int b = 0; b < 4; b++)
                    acc[l] += (v[l * 4 + b] & 15) * xq[8 * j + b] + (v[l * 4 + b] >> 4) * xq[8 * j + 4 + b];
        }
        const float *s = p->s + (c * G + g) * 64, *z = p->z + (c * G + g) * 64;
        for (int l = 0; l < 64; l++) tot[l] += s[l] * dx[g] * ((float)acc[l] - z[l] * (float)sx[g]);
    }
}

#if K_X86
#define T512V __attribute__((target("avx512f,avx512bw,avx512vnni,avx2,fma")))
#define T256  __attribute__((target("avx2,fma")))

T512V static void chunk_vnni(const struct k_w4a8_prep *p, int64_t c, const int8_t *xq, const float *dx,
                             const int32_t *sx, float *tot) {
    int64_t in = p->in, gs = p->gs, G = p->G;
    const __m512i m15 = _mm512_set1_epi8(15);
    __m512 t[4];
    for (int i = 0; i < 4; i++) t[i] = _mm512_setzero_ps();
    const uint8_t *v = p->q + c * (in / 8) * 256;
    for (int64_t g = 0; g < G; g++) {
        __m512i a[4];
        for (int i = 0; i < 4; i++) a[i] = _mm512_setzero_si512();
        for (int64_t j = g * gs / 8; j < (g + 1) * gs / 8; j++, v += 256) {
            int32_t x0, x1;
            memcpy(&x0, xq + 8 * j, 4);
            memcpy(&x1, xq + 8 * j + 4, 4);
            __m512i xl = _mm512_set1_epi32(x0), xh = _mm512_set1_epi32(x1);
            _Pragma("GCC unroll 4") for (int i = 0; i < 4; i++) {
                __m512i w = _mm512_load_si512((const void *)(v + 64 * i));
                a[i] = _mm512_dpbusd_epi32(a[i], _mm512_and_si512(w, m15), xl);
                a[i] = _mm512_dpbusd_epi32(a[i], _mm512_and_si512(_mm512_srli_epi16(w, 4), m15), xh);
            }
        }
        const float *s = p->s + (c * G + g) * 64, *z = p->z + (c * G + g) * 64;
        __m512 vdx = _mm512_set1_ps(dx[g]), vsx = _mm512_set1_ps((float)sx[g]);
        for (int i = 0; i < 4; i++) {
            __m512 f = _mm512_fnmadd_ps(_mm512_load_ps(z + 16 * i), vsx, _mm512_cvtepi32_ps(a[i]));
            t[i] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_load_ps(s + 16 * i), vdx), f, t[i]);
        }
    }
    for (int i = 0; i < 4; i++) _mm512_storeu_ps(tot + 16 * i, t[i]);
}

T256 static void chunk_avx2(const struct k_w4a8_prep *p, int64_t c, const int8_t *xq, const float *dx,
                            const int32_t *sx, float *tot) {
    int64_t in = p->in, gs = p->gs, G = p->G;
    const __m256i m15 = _mm256_set1_epi8(15), ones = _mm256_set1_epi16(1);
    __m256 t[8];
    for (int i = 0; i < 8; i++) t[i] = _mm256_setzero_ps();
    const uint8_t *v = p->q + c * (in / 8) * 256;
    for (int64_t g = 0; g < G; g++) {
        __m256i a[8];
        for (int i = 0; i < 8; i++) a[i] = _mm256_setzero_si256();
        for (int64_t j = g * gs / 8; j < (g + 1) * gs / 8; j++, v += 256) {
            int32_t x0, x1;
            memcpy(&x0, xq + 8 * j, 4);
            memcpy(&x1, xq + 8 * j + 4, 4);
            __m256i xl = _mm256_set1_epi32(x0), xh = _mm256_set1_epi32(x1);
            _Pragma("GCC unroll 8") for (int i = 0; i < 8; i++) {
                __m256i w = _mm256_load_si256((const __m256i *)(const void *)(v + 32 * i));
                /* u8 x s8 pairs -> s16 (|.| <= 2 * 15 * 128, no saturation), then pairs -> s32 */
                __m256i lo = _mm256_maddubs_epi16(_mm256_and_si256(w, m15), xl);
                __m256i hi = _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(w, 4), m15), xh);
                a[i] = _mm256_add_epi32(a[i], _mm256_madd_epi16(_mm256_add_epi16(lo, hi), ones));
            }
        }
        const float *s = p->s + (c * G + g) * 64, *z = p->z + (c * G + g) * 64;
        __m256 vdx = _mm256_set1_ps(dx[g]), vsx = _mm256_set1_ps((float)sx[g]);
        for (int i = 0; i < 8; i++) {
            __m256 f = _mm256_fnmadd_ps(_mm256_load_ps(z + 8 * i), vsx, _mm256_cvtepi32_ps(a[i]));
            t[i] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_load_ps(s + 8 * i), vdx), f, t[i]);
        }
    }
    for (int i = 0; i < 8; i++) _mm256_storeu_ps(tot + 8 * i, t[i]);
}
#endif /* K_X86 */

/* ---- the op -------------------------------------------------------------------------------- */

enum { A8_SCALAR, A8_AVX2, A8_VNNI };

static int a8_isa(void) {
#if K_X86
    int isa = k_isa();
    if (isa == K_ISA_AVX512 && __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw"))
        return A8_VNNI;
    if (isa >= K_ISA_AVX2) return A8_AVX2;
#endif
    return A8_SCALAR;
}

struct a8_job {
    const struct k_w4a8_prep *pp[3];
    int64_t c0[4], boff[4];
    int nw, isa;
    int64_t n, in, G;
    const int8_t *xq;  /* (n, in) */
    const float *dx;   /* (n, G) */
    const int32_t *sx; /* (n, G) */
    const float *bias; /* concatenated, boff[nw] */
    awq_tensor *const *y;
};

static void a8_chunks(void *arg, int64_t lo, int64_t hi) {
    const struct a8_job *j = arg;
    for (int64_t ct = lo; ct < hi; ct++) {
        int wi = ct >= j->c0[1] ? (ct >= j->c0[2] && j->nw > 2 ? 2 : 1) : 0;
        const struct k_w4a8_prep *p = j->pp[wi];
        int64_t c = ct - j->c0[wi], out = p->out;
        const float *bw = j->bias + j->boff[wi];
        float tot[64];
        for (int64_t r = 0; r < j->n; r++) {
            const int8_t *xq = j->xq + r * j->in;
            const float *dx = j->dx + r * j->G;
            const int32_t *sx = j->sx + r * j->G;
#if K_X86
            if (j->isa == A8_VNNI)
                chunk_vnni(p, c, xq, dx, sx, tot);
            else if (j->isa == A8_AVX2)
                chunk_avx2(p, c, xq, dx, sx, tot);
            else
#endif
                chunk_c(p, c, xq, dx, sx, tot);
            float *yr = (float *)k_row(j->y[wi], r);
            int64_t o0 = 64 * c, m = out - o0 < 64 ? out - o0 : 64;
            for (int64_t l = 0; l < m; l++) yr[o0 + l] = tot[l] + bw[o0 + l];
        }
    }
}

/* Row x (in) to int8 per group of gs: xq, dx (G), sx (G). */
static void quantize_row(const float *x, int64_t in, int64_t gs, int8_t *xq, float *dx, int32_t *sx) {
    for (int64_t g = 0; g < in / gs; g++) {
        const float *xg = x + g * gs;
        float amax = 0.0f;
        for (int64_t k = 0; k < gs; k++) amax = fabsf(xg[k]) > amax ? fabsf(xg[k]) : amax;
        float d = amax / 127.0f, inv = amax > 0.0f ? 127.0f / amax : 0.0f;
        int32_t s = 0;
        for (int64_t k = 0; k < gs; k++) {
            long v = lrintf(xg[k] * inv); /* round to nearest even (the default mode) */
            v = v > 127 ? 127 : v < -127 ? -127 : v;
            xq[g * gs + k] = (int8_t)v;
            s += (int32_t)v;
        }
        dx[g] = d;
        sx[g] = s;
    }
}

#if K_X86
/* quantize_row for gs % 16 == 0: the same fp32 operations (vcvtps2dq rounds to nearest even, as
 * lrintf in the default mode; |x * inv| <= 127 up to one rounding, so no clamp is reached). */
T512V static void quantize_row_512(const float *x, int64_t in, int64_t gs, int8_t *xq, float *dx,
                                   int32_t *sx) {
    const __m512i sign = _mm512_set1_epi32(0x7fffffff);
    for (int64_t g = 0; g < in / gs; g++) {
        const float *xg = x + g * gs;
        __m512 m = _mm512_setzero_ps();
        for (int64_t k = 0; k < gs; k += 16)
            m = _mm512_max_ps(
                m, _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(_mm512_loadu_ps(xg + k)), sign)));
        float amax = _mm512_reduce_max_ps(m);
        __m512 inv = _mm512_set1_ps(amax > 0.0f ? 127.0f / amax : 0.0f);
        __m512i s = _mm512_setzero_si512();
        for (int64_t k = 0; k < gs; k += 16) {
            __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(xg + k), inv));
            v = _mm512_max_epi32(_mm512_min_epi32(v, _mm512_set1_epi32(127)), _mm512_set1_epi32(-127));
            _mm_storeu_si128((__m128i *)(void *)(xq + g * gs + k), _mm512_cvtepi32_epi8(v));
            s = _mm512_add_epi32(s, v);
        }
        dx[g] = amax / 127.0f;
        sx[g] = _mm512_reduce_add_epi32(s);
    }
}
#endif

/* y[i] = x w[i]^T + bias for nw <= 3 int8-prepared weights sharing in and group size (shapes
 * checked by the op), one pool loop over the chunks of all of them. */
awq_status k_w4a8_gemv_multi(awq_backend_ctx *ctx, int nw, awq_tensor *const *y, const awq_tensor *x,
                             const awq_qlinear *const *w) {
    struct a8_job j = {.nw = nw, .y = y, .isa = a8_isa()};
    for (int i = 0; i < nw; i++) {
        j.pp[i] = w[i]->prepared;
        j.c0[i + 1] = j.c0[i] + j.pp[i]->nc;
        j.boff[i + 1] = j.boff[i] + j.pp[i]->out;
    }
    int64_t n = awq_tensor_rows(x), in = j.pp[0]->in, G = j.pp[0]->G, gs = j.pp[0]->gs;
    j.n = n;
    j.in = in;
    j.G = G;
    int8_t *xq = malloc((size_t)(n * in));
    float *dx = malloc((size_t)(n * G) * sizeof(float)), *bias = malloc((size_t)j.boff[nw] * sizeof(float));
    int32_t *sx = malloc((size_t)(n * G) * sizeof(int32_t));
    if (!xq || !dx || !bias || !sx) {
        free(xq);
        free(dx);
        free(bias);
        free(sx);
        awq_cpu_error(ctx, "matmul_w4a16: out of memory");
        return AWQ_ERR_OUT_OF_MEMORY;
    }
    for (int64_t r = 0; r < n; r++) {
        const float *xr = (const float *)k_row(x, r);
#if K_X86
        if (j.isa == A8_VNNI && gs % 16 == 0) {
            quantize_row_512(xr, in, gs, xq + r * in, dx + r * G, sx + r * G);
            continue;
        }
#endif
        quantize_row(xr, in, gs, xq + r * in, dx + r * G, sx + r * G);
    }
    for (int i = 0; i < nw; i++)
        for (int64_t o = 0; o < j.pp[i]->out; o++)
            bias[j.boff[i] + o] =
                w[i]->bias.data ? k_load(awq_cpu_ptr(&w[i]->bias), w[i]->bias.type, o) : 0.0f;
    j.xq = xq;
    j.dx = dx;
    j.sx = sx;
    j.bias = bias;
    awq_tpool_for(ctx->pool, j.c0[nw], 1, a8_chunks, &j);
    free(xq);
    free(dx);
    free(bias);
    free(sx);
    return AWQ_OK;
}
