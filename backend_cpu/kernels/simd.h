/*
 * simd.h - the few hot loops of the reference kernels, written in plain C and compiled three
 * times (x86-64-v4 = AVX-512, x86-64-v3 = AVX2/FMA/F16C, baseline) with the best clone chosen at
 * load time (GCC target_clones / ifunc). Same arithmetic as the scalar code; only the
 * vectorisation and the summation order differ.
 */
#ifndef AWQ_CPU_SIMD_H
#define AWQ_CPU_SIMD_H

#include <stdint.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(AWQ_NO_CLONES)
#define K_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define K_CLONES
#endif

#if defined(__x86_64__) && defined(__GNUC__)
#define K_X86 1
#else
#define K_X86 0
#endif

/* Instruction set of the explicitly vectorized kernels (convert.c, w4gemv.c), detected once;
 * $AWQ_CPU_ISA=avx2|scalar selects a lower one (the tests cover every version that way). */
enum { K_ISA_SCALAR = 0, K_ISA_AVX2 = 1, K_ISA_AVX512 = 2 };
int k_isa(void);

/* (convert.c) dst[i] = (float) half src[i] */
void k_f16_to_f32(float *dst, const uint16_t *src, int64_t n);
/* (convert.c) dst[i] = (float) bfloat16 src[i] */
void k_bf16_to_f32(float *dst, const uint16_t *src, int64_t n);
/* (convert.c) sum_i a[i] * b[i] */
float k_dot_f32(const float *a, const float *b, int64_t n);
/* (convert.c) sum_i a[i] * half b[i] */
float k_dot_f16(const float *a, const uint16_t *b, int64_t n);
/* (convert.c) sum_i a[i] * bfloat16 b[i] */
float k_dot_bf16(const float *a, const uint16_t *b, int64_t n);
/* y[r] = x . w[r] for 8 rows w (8, n) stored with row stride ld (floats) */
void k_dot8(const float *x, const float *w, int64_t ld, int64_t n, float *y);
/* g[j] += a * x[j] */
void k_axpy(float *g, float a, const float *x, int64_t n);

/* One attention row: out (hd) = softmax_j(scale * q . k_j) v_j over keys j = lo..hi, where key j
 * is at kbase + j * kstride bytes (and value at vbase + j * vstride); online softmax in blocks.
 * k_attn_row (attn_x86.c) picks an explicitly vectorized version; k_attn_row_generic (simd.c)
 * is the plain loop it falls back to. */
void k_attn_row(const float *q, const char *kbase, int64_t kstride, const char *vbase, int64_t vstride,
                int64_t lo, int64_t hi, int64_t hd, float scale, float *out);
void k_attn_row_generic(const float *q, const char *kbase, int64_t kstride, const char *vbase,
                        int64_t vstride, int64_t lo, int64_t hi, int64_t hd, float scale, float *out);
/* err[c] += sum_t (x_t . dq_c)^2 for 16 candidate vectors given transposed, dqt (gs, 16),
 * against n rows of x (row stride ldx floats), each row segment of length gs. */
void k_sq_err16(const float *x, int64_t ldx, int64_t n, const float *dqt, int64_t gs, double *err);

/* AWQ GEMM-order words to floats: for c < nw and logical column j < 8,
 * dst[8c + j] = (nibble of column j in words[c] - z[8c + j]) * s[8c + j] (docs/formats.md 4.1). */
void k_w4_dequant_words(float *dst, const int32_t *words, int64_t nw, const float *z, const float *s);

#endif
