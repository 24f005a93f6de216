/*
 * ocl_internal.h - shared by the OpenCL plugin's files: the backend context, the kernel table,
 * error reporting and the kernel launch helper.
 */
#ifndef AWQ_OCL_INTERNAL_H
#define AWQ_OCL_INTERNAL_H

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#include <CL/cl.h>
#include <stdbool.h>
#include <stddef.h>

#include "awq_backend.h"

/* Every kernel, created once per context (the kernel cache). */
/* clang-format off */
#define OCL_KERNELS(X)                                                                          \
    X(gemm_dense, P_MATMUL) X(gemm_w4, P_MATMUL) X(gemv_dense, P_MATMUL) X(gemv_w4, P_MATMUL)   \
    X(gemv_w4x4, P_MATMUL) X(gram, P_MATMUL) X(gemm_blk, P_MATMUL) X(gemm_w4_blk, P_MATMUL)     \
    X(attention_row, P_OPS) X(rmsnorm, P_OPS) X(rope, P_OPS) X(attention, P_OPS)               \
    X(silu_mul, P_OPS) X(binop, P_OPS) X(get_rows, P_OPS) X(convert, P_OPS)                    \
    X(fake_quant, P_QUANT) X(quantize_w4, P_QUANT) X(reduce_cols, P_QUANT)                     \
    X(scalar_partial, P_QUANT) X(clip_search, P_QUANT) X(clip_search_row, P_QUANT)             \
    X(gelu_mul, P_OPS) X(softcap, P_OPS)
/* clang-format on */

enum { P_MATMUL, P_OPS, P_QUANT, P_COUNT };

#define OCL_KENUM(name, prog) K_##name,
enum { OCL_KERNELS(OCL_KENUM) K_COUNT };

/* Build-time constants of the programs (see kernels/common.cl). */
#define OCL_GEMV_MAX_ROWS   4   /* matmul.cl GEMV_MAX_ROWS */
#define OCL_ATT_NPER        4   /* ops.cl ATT_NPER */
#define OCL_CLIP_MAX_GS     256 /* quant.cl MAX_GS */
#define OCL_CLIP_ROW_MAX_GS 128 /* quant.cl ROW_MAX_GS */
#define OCL_ATT_ROW_MAX_HD  256 /* ops.cl ATT_ROW_MAX_HD */
#define OCL_SCALAR_GROUPS   64  /* work-groups of scalar_partial */

struct awq_backend_ctx {
    awq_backend_config cfg;
    int32_t device;
    cl_device_id dev;
    cl_context cl;
    cl_command_queue queue;
    cl_program prog[P_COUNT];
    cl_kernel k[K_COUNT];
    int ts, rt, ls; /* GEMM tile edge, rows per item, reduction group size */
    size_t max_alloc;
    cl_mem partial;   /* OCL_SCALAR_GROUPS floats for scalar_partial */
    bool use_clblast; /* Sgemm for F32 weights and large batches */
    bool blocked;     /* barrier-free kernels (CPU-class device), see matmul.cl */
    char name[128];
};

/* Records a failure through cfg.set_error (printf-style) and returns st. */
awq_status ocl_fail(awq_backend_ctx *c, awq_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* The CL_* name of an OpenCL error code. */
const char *ocl_err_name(cl_int err);
/* Maps a failed OpenCL call to an awq_status and records "<call>: <CL_ERROR_NAME>". */
awq_status ocl_check(awq_backend_ctx *c, cl_int err, const char *call);

/* One kernel argument. */
typedef struct ocl_arg {
    size_t size;
    const void *ptr;
} ocl_arg;
#define OA(v) ((ocl_arg){sizeof(v), &(v)})

/* Sets the arguments of kernel kid and enqueues it over gws (rounded up to lws multiples). */
awq_status ocl_launch(awq_backend_ctx *c, int kid, cl_uint dims, const size_t *gws, const size_t *lws,
                      size_t nargs, const ocl_arg *args);

/* The ops (ocl_ops.c). */
awq_status ocl_matmul(awq_backend_ctx *c, awq_tensor *y, const awq_tensor *x, const awq_tensor *w,
                      const awq_tensor *bias);
awq_status ocl_matmul_w4a16(awq_backend_ctx *c, awq_tensor *y, const awq_tensor *x, const awq_qlinear *w);
awq_status ocl_rmsnorm(awq_backend_ctx *c, awq_tensor *y, const awq_tensor *x, const awq_tensor *gamma,
                       float eps);
awq_status ocl_rope(awq_backend_ctx *c, awq_tensor *x, const awq_tensor *pos, const awq_tensor *inv_freq,
                    float attn_factor);
awq_status ocl_attention(awq_backend_ctx *c, awq_tensor *out, const awq_tensor *q, const awq_tensor *k,
                         const awq_tensor *v, int32_t n_past, float scale, int32_t window);
awq_status ocl_attention_softcap(awq_backend_ctx *c, awq_tensor *out, const awq_tensor *q,
                                 const awq_tensor *k, const awq_tensor *v, int32_t n_past, float scale,
                                 int32_t window, float cap);
awq_status ocl_silu_mul(awq_backend_ctx *c, awq_tensor *y, const awq_tensor *gate, const awq_tensor *up);
awq_status ocl_act_mul(awq_backend_ctx *c, awq_tensor *y, const awq_tensor *gate, const awq_tensor *up,
                       awq_act act);
awq_status ocl_softcap(awq_backend_ctx *c, awq_tensor *x, float cap);
awq_status ocl_binop(awq_backend_ctx *c, awq_tensor *y, const awq_tensor *a, const awq_tensor *b,
                     awq_binop op);
awq_status ocl_get_rows(awq_backend_ctx *c, awq_tensor *y, const awq_tensor *table, const awq_tensor *ids);
awq_status ocl_convert(awq_backend_ctx *c, awq_tensor *y, const awq_tensor *x);
awq_status ocl_fake_quant(awq_backend_ctx *c, awq_tensor *wq, const awq_tensor *w, const awq_tensor *s,
                          const awq_tensor *clip, const awq_quant_desc *q);
awq_status ocl_quantize_w4(awq_backend_ctx *c, awq_tensor *codes, awq_tensor *scales, awq_tensor *zeros,
                           const awq_tensor *w, const awq_quant_desc *q);
awq_status ocl_reduce(awq_backend_ctx *c, awq_tensor *y, const awq_tensor *x, awq_reduce_op op,
                      int32_t group);
awq_status ocl_scalar(awq_backend_ctx *c, double *out, const awq_tensor *a, const awq_tensor *b,
                      awq_scalar_op op);
awq_status ocl_clip_search(awq_backend_ctx *c, awq_tensor *best_max, const awq_tensor *w, const awq_tensor *x,
                           const awq_quant_desc *q, int32_t n_grid, int32_t n_steps);
awq_status ocl_gram(awq_backend_ctx *c, awq_tensor *g, const awq_tensor *x, bool accumulate);

#endif
