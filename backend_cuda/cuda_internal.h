/*
 * cuda_internal.h - shared by cuda_backend.c and cuda_ops.c: the backend context, error helpers and
 * the ops. The same two files build both plugins: "cuda" (over dev_cuda.c) and "cuda-emu" (over
 * dev_emu.cc, the SIMT emulator); AWQ_CUDA_NAME is the plugin's name.
 */
#ifndef AWQ_CUDA_INTERNAL_H
#define AWQ_CUDA_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "awq_backend.h"
#include "dev.h"
#include "kernels/launch.h"

#ifndef AWQ_CUDA_NAME
#define AWQ_CUDA_NAME "cuda"
#endif

/* Which kernel family serves an op: chosen by size (AUTO) or forced for tests and benchmarks
 * through AWQ_CUDA_W4=gemv|tc|dequant and AWQ_CUDA_DENSE=gemv|simt|blas. */
typedef enum { CU_AUTO = 0, CU_GEMV, CU_TC, CU_DEQUANT, CU_SIMT, CU_BLAS } cu_family;

/* Default size of the one device workspace (fp16 activation copies, split-K partials, dequantized
 * weight panels, split-KV partials); AWQ_CUDA_WS_MB overrides. Ops tile their work to fit it. */
#define CU_WS_DEFAULT_MB 64
/* M above which W4A16 goes through dequantize + cuBLAS (vLLM's threshold; AutoAWQ uses 1024). */
#define CU_W4_TC_MAX_M 256
/* Rows handled by one GEMV launch. */
#define CU_GEMV_MAX_M 8
/* Queries per sequence up to which attention uses the split-KV decode kernel. */
#define CU_ATT_DECODE_MAX_T 4

struct awq_backend_ctx {
    awq_backend_config cfg;
    cudev *d;
    awqk_ctx *kc;
    cudev_props props;
    void *ws; /* workspace */
    size_t ws_bytes;
    double *partial;   /* AWQK_SCALAR_PARTS doubles (scalar) */
    int *flag;         /* get_rows: an id was out of range */
    bool flag_pending; /* a get_rows inside a captured step: check at the next download */
    bool in_step;      /* between step_begin and step_end */
    bool graphs;       /* capture decode steps into CUDA Graphs (AWQ_CUDA_GRAPHS=0 turns off) */
    cu_family force_w4, force_dense;
    int w4_tc_max_m;
    char name[200];
};

awq_status cu_fail(awq_backend_ctx *c, awq_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* A failed launcher: the kernel's message from kc->err. */
awq_status cu_kfail(awq_backend_ctx *c);
/* A failed device-layer call: the message from cudev_error. */
awq_status cu_dfail(awq_backend_ctx *c, awq_status st);

awq_status cu_matmul(awq_backend_ctx *c, awq_tensor *y, const awq_tensor *x, const awq_tensor *w,
                     const awq_tensor *bias);
awq_status cu_matmul_w4a16(awq_backend_ctx *c, awq_tensor *y, const awq_tensor *x, const awq_qlinear *w);
awq_status cu_matmul_w4a16_multi(awq_backend_ctx *c, int32_t n, awq_tensor *const *y, const awq_tensor *x,
                                 const awq_qlinear *const *w);
awq_status cu_weight_prepare(awq_backend_ctx *c, awq_qlinear *w);
void cu_weight_release(awq_backend_ctx *c, awq_qlinear *w);
awq_status cu_rmsnorm(awq_backend_ctx *c, awq_tensor *y, const awq_tensor *x, const awq_tensor *gamma,
                      float eps);
awq_status cu_rope(awq_backend_ctx *c, awq_tensor *x, const awq_tensor *pos, const awq_tensor *inv_freq,
                   float attn_factor);
awq_status cu_attention(awq_backend_ctx *c, awq_tensor *out, const awq_tensor *q, const awq_tensor *k,
                        const awq_tensor *v, int32_t n_past, float scale, int32_t window);
awq_status cu_attention_softcap(awq_backend_ctx *c, awq_tensor *out, const awq_tensor *q, const awq_tensor *k,
                                const awq_tensor *v, int32_t n_past, float scale, int32_t window, float cap);
awq_status cu_silu_mul(awq_backend_ctx *c, awq_tensor *y, const awq_tensor *gate, const awq_tensor *up);
awq_status cu_act_mul(awq_backend_ctx *c, awq_tensor *y, const awq_tensor *gate, const awq_tensor *up,
                      awq_act act);
awq_status cu_softcap(awq_backend_ctx *c, awq_tensor *x, float cap);
awq_status cu_binop(awq_backend_ctx *c, awq_tensor *y, const awq_tensor *a, const awq_tensor *b,
                    awq_binop op);
awq_status cu_get_rows(awq_backend_ctx *c, awq_tensor *y, const awq_tensor *table, const awq_tensor *ids);
awq_status cu_convert(awq_backend_ctx *c, awq_tensor *y, const awq_tensor *x);
awq_status cu_fake_quant(awq_backend_ctx *c, awq_tensor *wq, const awq_tensor *w, const awq_tensor *s,
                         const awq_tensor *clip, const awq_quant_desc *q);
awq_status cu_quantize_w4(awq_backend_ctx *c, awq_tensor *codes, awq_tensor *scales, awq_tensor *zeros,
                          const awq_tensor *w, const awq_quant_desc *q);
awq_status cu_reduce(awq_backend_ctx *c, awq_tensor *y, const awq_tensor *x, awq_reduce_op op, int32_t group);
awq_status cu_scalar(awq_backend_ctx *c, double *out, const awq_tensor *a, const awq_tensor *b,
                     awq_scalar_op op);
awq_status cu_clip_search(awq_backend_ctx *c, awq_tensor *best_max, const awq_tensor *w, const awq_tensor *x,
                          const awq_quant_desc *q, int32_t n_grid, int32_t n_steps);
awq_status cu_gram(awq_backend_ctx *c, awq_tensor *g, const awq_tensor *x, bool accumulate);
/* Checks the get_rows flag of a captured step (after its work has run). */
awq_status cu_check_flag(awq_backend_ctx *c);

#endif
