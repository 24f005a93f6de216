/*
 * launch.h - the C interface of the CUDA kernels: one launcher per kernel family. Defined once
 * in launch.cu, which nvcc compiles for the device (plugin "cuda") and the host C++ compiler
 * compiles over the SIMT emulator (plugin "cuda-emu", launch_emu.cc). cuda_ops.c calls only
 * these; it validates shapes first, so launchers may assume the documented preconditions.
 *
 * Conventions
 *  - Every pointer is a device pointer already advanced to the first element of the view.
 *  - ld* / strides are in ELEMENTS of the tensor's own dtype. Sizes are int (the ops reject
 *    larger), strides long long.
 *  - Float dtypes are AWQK_F32 / AWQK_F16 / AWQK_BF16 (equal to awq_dtype's values); bias and
 *    other optional tensors are NULL when absent.
 *  - Launchers are asynchronous on kc->stream, never allocate, never synchronize, and return 0,
 *    or -1 with kc->err describing the failure ("<kernel>: <CUDA error name>: <string>").
 *  - Workspace comes from the caller; a family that needs some has a *_ws_bytes() query.
 */
#ifndef AWQ_CUDA_LAUNCH_H
#define AWQ_CUDA_LAUNCH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { AWQK_F32 = 0, AWQK_F16 = 1, AWQK_BF16 = 2 }; /* = AWQ_DTYPE_F32/F16/BF16 */

typedef struct awqk_ctx {
    void *stream;  /* cudaStream_t; NULL under the emulator */
    int sm;        /* compute capability, major * 10 + minor (75, 80, 86, 89, 90, ...) */
    int n_sm;      /* number of multiprocessors (grid sizing, split-K) */
    char err[256]; /* the last failure */
} awqk_ctx;

/* Records "name: <last CUDA error>" after a launch; 0 when there was none (launch.cu). */
int awqk_check_launch(awqk_ctx *kc, const char *name);

/* =========================== W4A16 and dense GEMM (gemm_*.cuh) ============================ */

/* An AWQ 4-bit linear in the AutoAWQ GEMM layout (docs/formats.md 4.1):
 *   W[n][k] = (q[k][n] - z[k/gs][n]) * scales[k/gs][n], q and z packed 8 per int32 in the
 *   order [0,2,4,6,1,3,5,7] (nibble i of word j holds column 8j + order[i]). */
typedef struct awqk_w4 {
    int K, N, gs;           /* N % 8 == 0, K % gs == 0, gs % 8 == 0 */
    const int32_t *qweight; /* (K, N/8) */
    const int32_t *qzeros;  /* (K/gs, N/8) */
    const uint16_t *scales; /* (K/gs, N) fp16 */
    const void *prepared;   /* repacked copy made by awqk_w4_prepare, or NULL */
} awqk_w4;

/* Bytes of the repacked form of a K x N weight (0: this family needs none). */
size_t awqk_w4_prepared_bytes(int K, int N, int gs);
/* Writes the repacked form of w into dst (awqk_w4_prepared_bytes bytes). */
int awqk_w4_prepare(awqk_ctx *kc, const awqk_w4 *w, void *dst);

/* y (M, N) F32 = x (M, K) F32 * W^T + bias, M = 1..8, on CUDA cores: 128-bit weight loads,
 * lop3/0x6400 dequantization, exact fp32 weights ((q - z) * s), fp32 accumulation, warp
 * reduction. Uses w->prepared when set. Within 1e-4 * max|row| of the cpu backend. */
int awqk_w4_gemv(awqk_ctx *kc, const awqk_w4 *w, int M, const float *x, long long ldx, float *y,
                 long long ldy, const void *bias, int bias_dt);
/* Several linears sharing x (fused q/k/v or gate/up), one launch: y[i] = x * W_i^T + bias[i],
 * nw = 1..3, all w[i] with the same K and gs. */
int awqk_w4_gemv_multi(awqk_ctx *kc, int nw, const awqk_w4 *const *w, int M, const float *x, long long ldx,
                       float *const *y, const long long *ldy, const void *const *bias, const int *bias_dt);

/* Workspace of awqk_w4_gemm for these sizes (fp16 copy of x, split-K partials). */
size_t awqk_w4_gemm_ws_bytes(const awqk_ctx *kc, int M, int K, int N);
/* y (M, N) F32 = x * W^T + bias for any M >= 1 on Tensor Cores: x rounded to fp16, weights
 * dequantized to fp16 in registers (lop3/0x6400 + hfma2, as AutoAWQ), fp32 accumulation.
 * sm >= 80: ldmatrix + mma.m16n8k16, cp.async multi-stage pipeline; sm 75: two m16n8k8 per
 * k16 step, synchronous loads. Split-K (deterministic: partials in ws, then a reduction
 * kernel) when the output tiles do not fill the device. */
int awqk_w4_gemm(awqk_ctx *kc, const awqk_w4 *w, int M, const float *x, long long ldx, float *y,
                 long long ldy, const void *bias, int bias_dt, void *ws, size_t ws_bytes);
/* dst (nk, N) fp16 row-major, leading dimension ld_dst = the weight rows k0 .. k0+nk-1
 * transposed back: dst[k][n] = fp16((q - z) * s) for input index k0 + k (k0, nk multiples of
 * gs). For the dequantize + cuBLAS path of large batches. */
int awqk_w4_dequant(awqk_ctx *kc, const awqk_w4 *w, int k0, int nk, uint16_t *dst, long long ld_dst);

/* Dense linear y (M, N) F32 = x (M, K) F32 * w (N, K)^T + bias, w F32/F16/BF16, fp32 math.
 * gemv: M = 1..8 (one warp per output row group, 128-bit loads); gemm: any M (SIMT tiles in
 * shared memory). */
int awqk_dense_gemv(awqk_ctx *kc, int M, int K, int N, const float *x, long long ldx, const void *w, int w_dt,
                    long long ldw, const void *bias, int bias_dt, float *y, long long ldy);
int awqk_dense_gemm(awqk_ctx *kc, int M, int K, int N, const float *x, long long ldx, const void *w, int w_dt,
                    long long ldw, const void *bias, int bias_dt, float *y, long long ldy);
/* g (C, C) F32 (+)= x (n, C)^T x (n, C), fp32 (SIMT tiles). */
int awqk_gram(awqk_ctx *kc, int n, int C, const float *x, long long ldx, float *g, long long ldg,
              int accumulate);

/* ============================ row / element-wise ops (ops.cuh) ============================= */

int awqk_rmsnorm(awqk_ctx *kc, int n, int d, const float *x, long long ldx, const void *gamma, int gamma_dt,
                 float eps, float *y, long long ldy);
/* x (nt, nh, 2*half) F32 in place, rows at x + t*s0 + h*s1; rotate-half RoPE (awq_backend.h). */
int awqk_rope(awqk_ctx *kc, int nt, int nh, int half, float *x, long long s0, long long s1,
              const int32_t *pos, const float *inv_freq, float attn_factor);
int awqk_silu_mul(awqk_ctx *kc, int n, int d, float *y, long long ldy, const float *gate, long long ldg,
                  const float *up, long long ldu);
/* y = gelu_tanh(gate) * up (Gemma's gelu_pytorch_tanh). */
int awqk_gelu_mul(awqk_ctx *kc, int n, int d, float *y, long long ldy, const float *gate, long long ldg,
                  const float *up, long long ldu);
/* x (n, d) F32 = cap * tanh(x / cap) in place. */
int awqk_softcap(awqk_ctx *kc, int n, int d, float *x, long long ldx, float cap);
/* op: 0 add, 1 sub, 2 mul, 3 div (awq_binop). ldb == 0: b is one row broadcast over n. */
int awqk_binop(awqk_ctx *kc, int n, int d, int op, float *y, long long ldy, const float *a, long long lda,
               const void *b, int b_dt, long long ldb);
/* y (n, d) F32 = table rows ids; an id outside [0, V) writes a zero row and sets *bad = 1
 * (bad: one device int the caller zeroed). */
int awqk_get_rows(awqk_ctx *kc, int n, int d, float *y, long long ldy, const void *table, int table_dt,
                  long long ldt, const int32_t *ids, int V, int *bad);
/* y = x cast between F32/F16/BF16, rounding to nearest even. */
int awqk_convert(awqk_ctx *kc, int n, int d, void *y, int y_dt, long long ldy, const void *x, int x_dt,
                 long long ldx);

/* Causal GQA attention, awq_backend.h's contract. q (B, T, H, hd), k/v (B, S, Hkv, hd),
 * out (B, T, H, hd), all F32 with contiguous innermost dim; strides in elements. */
typedef struct awqk_attn {
    int B, T, H, Hkv, hd, S, n_past, window;
    float scale;
    const float *q;
    long long q0, q1, q2;
    const float *k;
    long long k0, k1, k2;
    const float *v;
    long long v0, v1, v2;
    float *o;
    long long o0, o1, o2;
    float softcap; /* > 0: scores s -> softcap * tanh(s / softcap) (Gemma 2); 0: none */
} awqk_attn;
/* Flash-style (tiles of keys in shared memory, online softmax), fp32; any T, hd <= 256. */
int awqk_attention_prefill(awqk_ctx *kc, const awqk_attn *a);
/* Split-KV decode (T small): chunks of keys per block, partial (max, sum, acc) in ws, then a
 * combine kernel. */
size_t awqk_attention_decode_ws_bytes(const awqk_ctx *kc, const awqk_attn *a);
int awqk_attention_decode(awqk_ctx *kc, const awqk_attn *a, void *ws, size_t ws_bytes);

/* ============================= quantization ops (quant.cuh) ================================ */
/* awq_backend.h's contracts; s and clip may be NULL. fp32 as the cpu backend. */
int awqk_fake_quant(awqk_ctx *kc, int out, int G, int gs, int qmax, float *wq, long long ldq, const float *w,
                    long long ldw, const float *s, const float *clip, long long ldc);
/* Bit-exact with the cpu backend (fp16 rounding after every operation, docs/algorithm.md 7.4). */
int awqk_quantize_w4(awqk_ctx *kc, int out, int G, int gs, uint8_t *codes, long long ldc, uint16_t *scales,
                     long long lds, uint8_t *zeros, long long ldz, const uint16_t *w, long long ldw);
/* op: awq_reduce_op; y (c,) F32. */
int awqk_reduce(awqk_ctx *kc, int n, int c, int op, int group, const float *x, long long ldx, float *y);
/* Partial sums (in double) of op over a and b (n, c): AWQK_SCALAR_PARTS doubles in partial,
 * summed on the host in index order (deterministic). op: awq_scalar_op. */
#define AWQK_SCALAR_PARTS 256
int awqk_scalar(awqk_ctx *kc, long long n, int c, int op, const float *a, long long lda, const float *b,
                long long ldb, double *partial);
int awqk_clip_search(awqk_ctx *kc, int out, int G, int gs, int n, int qmax, int n_grid, int n_steps,
                     const float *w, long long ldw, const float *x, long long ldx, float *best,
                     long long ldb);

#ifdef __cplusplus
}
#endif

#endif
