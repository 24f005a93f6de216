/*
 * kernels.h - the reference cpu kernels (backend_cpu/kernels/): C loops with OpenMP over output
 * rows; the hot loops are compiled per x86-64 level (simd.h: AVX-512, AVX2, baseline, chosen at
 * load time) and a few have explicit AVX-512/AVX2 intrinsics (convert.c, w4gemv.c, attn_x86.c;
 * AWQ_CPU_ISA=avx2|scalar forces a lower level). Every op follows the contract documented in
 * awq_backend.h; this is the oracle the other backends are tested against (docs/kernels.md).
 */
#ifndef AWQ_BACKEND_CPU_KERNELS_H
#define AWQ_BACKEND_CPU_KERNELS_H

#include "cpu_backend.h"

awq_status awq_cpu_matmul(awq_backend_ctx *ctx, awq_tensor *y, const awq_tensor *x, const awq_tensor *w,
                          const awq_tensor *bias);
awq_status awq_cpu_matmul_w4a16(awq_backend_ctx *ctx, awq_tensor *y, const awq_tensor *x,
                                const awq_qlinear *w);
/* Fused q/k/v or gate/up: one parallel region over every weight's chunks when all are prepared
 * (the same results as nw matmul_w4a16 calls), else nw calls. */
awq_status awq_cpu_matmul_w4a16_multi(awq_backend_ctx *ctx, int32_t nw, awq_tensor *const *y,
                                      const awq_tensor *x, const awq_qlinear *const *w);
/* Q8_0 weight (the 8-bit lm_head): the contract of awq_backend_ops.matmul_q8. */
awq_status awq_cpu_matmul_q8(awq_backend_ctx *ctx, awq_tensor *y, const awq_tensor *x, const awq_tensor *qs,
                             const awq_tensor *d);
awq_status awq_cpu_rmsnorm(awq_backend_ctx *ctx, awq_tensor *y, const awq_tensor *x, const awq_tensor *gamma,
                           float eps);
awq_status awq_cpu_rope(awq_backend_ctx *ctx, awq_tensor *x, const awq_tensor *pos,
                        const awq_tensor *inv_freq, float attn_factor);
awq_status awq_cpu_attention(awq_backend_ctx *ctx, awq_tensor *out, const awq_tensor *q, const awq_tensor *k,
                             const awq_tensor *v, int32_t n_past, float scale, int32_t window);
awq_status awq_cpu_attention_softcap(awq_backend_ctx *ctx, awq_tensor *out, const awq_tensor *q,
                                     const awq_tensor *k, const awq_tensor *v, int32_t n_past, float scale,
                                     int32_t window, float cap);
awq_status awq_cpu_silu_mul(awq_backend_ctx *ctx, awq_tensor *y, const awq_tensor *gate,
                            const awq_tensor *up);
awq_status awq_cpu_act_mul(awq_backend_ctx *ctx, awq_tensor *y, const awq_tensor *gate, const awq_tensor *up,
                           awq_act act);
awq_status awq_cpu_softcap(awq_backend_ctx *ctx, awq_tensor *x, float cap);
awq_status awq_cpu_binop(awq_backend_ctx *ctx, awq_tensor *y, const awq_tensor *a, const awq_tensor *b,
                         awq_binop op);
awq_status awq_cpu_get_rows(awq_backend_ctx *ctx, awq_tensor *y, const awq_tensor *table,
                            const awq_tensor *ids);
awq_status awq_cpu_convert(awq_backend_ctx *ctx, awq_tensor *y, const awq_tensor *x);
awq_status awq_cpu_fake_quant(awq_backend_ctx *ctx, awq_tensor *wq, const awq_tensor *w, const awq_tensor *s,
                              const awq_tensor *clip, const awq_quant_desc *q);
awq_status awq_cpu_quantize_w4(awq_backend_ctx *ctx, awq_tensor *codes, awq_tensor *scales, awq_tensor *zeros,
                               const awq_tensor *w, const awq_quant_desc *q);
awq_status awq_cpu_reduce(awq_backend_ctx *ctx, awq_tensor *y, const awq_tensor *x, awq_reduce_op op,
                          int32_t group);
awq_status awq_cpu_scalar(awq_backend_ctx *ctx, double *out, const awq_tensor *a, const awq_tensor *b,
                          awq_scalar_op op);
awq_status awq_cpu_clip_search(awq_backend_ctx *ctx, awq_tensor *best_max, const awq_tensor *w,
                               const awq_tensor *x, const awq_quant_desc *q, int32_t n_grid, int32_t n_steps);
awq_status awq_cpu_gram(awq_backend_ctx *ctx, awq_tensor *g, const awq_tensor *x, bool accumulate);
/* Repacks an AWQ linear for the small-batch matmul_w4a16 path (kernels/w4gemv.c); leaves
 * w->prepared NULL (and succeeds) for layouts that path does not take. */
awq_status awq_cpu_weight_prepare(awq_backend_ctx *ctx, awq_qlinear *w);
void awq_cpu_weight_release(awq_backend_ctx *ctx, awq_qlinear *w);

/* Designated initializers for the host-memory members of an ops table (cpu, cpu-dnnl, and the
 * test plugin cpu-lite share them). */
#define AWQ_CPU_MEMORY_OPS                                                                              \
    .buffer_alloc = awq_cpu_buffer_alloc, .buffer_free = awq_cpu_buffer_free, .upload = awq_cpu_upload, \
    .download = awq_cpu_download, .synchronize = awq_cpu_synchronize, .memset_zero = awq_cpu_memset_zero,

/* Designated initializers for the kernel members of an ops table. */
#define AWQ_CPU_KERNEL_OPS                                                                          \
    .matmul = awq_cpu_matmul, .matmul_w4a16 = awq_cpu_matmul_w4a16, .rmsnorm = awq_cpu_rmsnorm,     \
    .rope = awq_cpu_rope, .attention = awq_cpu_attention, .silu_mul = awq_cpu_silu_mul,             \
    .binop = awq_cpu_binop, .get_rows = awq_cpu_get_rows, .convert = awq_cpu_convert,               \
    .fake_quant = awq_cpu_fake_quant, .quantize_w4 = awq_cpu_quantize_w4, .reduce = awq_cpu_reduce, \
    .scalar = awq_cpu_scalar, .clip_search = awq_cpu_clip_search, .gram = awq_cpu_gram,             \
    .weight_prepare = awq_cpu_weight_prepare, .weight_release = awq_cpu_weight_release,             \
    .act_mul = awq_cpu_act_mul, .softcap = awq_cpu_softcap, .attention_softcap = awq_cpu_attention_softcap,

#endif
