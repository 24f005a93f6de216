/*
 * dnnl_internal.h - the cpu-dnnl plugin: the cpu reference kernels, with matmul, gram and the
 * prefill path of matmul_w4a16 computed by oneDNN 2.6 f32 matmul primitives.
 *
 * State per instance (ctx->ext): the oneDNN engine and stream, a small cache of matmul
 * primitives keyed by shape and strides, and a host scratch buffer for weight tiles converted
 * (F16/BF16) or dequantized (AWQ 4-bit) to fp32. A mutex serializes the oneDNN ops of one
 * instance (the scratch is shared); oneDNN itself runs them on ctx->n_threads OpenMP threads.
 */
#ifndef AWQ_CPU_DNNL_INTERNAL_H
#define AWQ_CPU_DNNL_INTERNAL_H

#include <pthread.h>

#include <dnnl.h>

#include "cpu_backend.h"

/* Batch sizes (rows of x) from which oneDNN is used; below them the reference kernels are
 * faster (they convert/dequantize weights inside the dot products, oneDNN needs an fp32 copy).
 * Measured on a 2-core Zen 4 (bench/ops_bench.sh). */
#define DNNL_MIN_ROWS_F32 5
#define DNNL_MIN_ROWS_F16 12
#define DNNL_MIN_ROWS_W4  32
/* Weight tiles converted to fp32 at once, in bytes. */
#define DNNL_TILE_BYTES ((size_t)8 << 20)
#define DNNL_CACHE_SIZE 32

/* What a cached primitive computes; all strides in elements. */
typedef struct dnnl_mm_key {
    int64_t M, K, N;
    int64_t sa0, sa1; /* src (M, K) strides */
    int64_t sb0, sb1; /* weights (K, N) strides */
    int64_t ldc;      /* dst (M, N) row stride */
    int32_t bias;     /* 1: f32 bias (1, N) */
    int32_t sum;      /* 1: dst += result (post-op sum) */
    int32_t bf16;     /* 1: src and weights are bf16 (dst, bias f32) */
} dnnl_mm_key;

typedef struct dnnl_mm_entry {
    dnnl_mm_key key;
    dnnl_primitive_t prim;
    uint64_t used; /* LRU stamp */
} dnnl_mm_entry;

typedef struct dnnl_state {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    pthread_mutex_t lock;
    dnnl_mm_entry cache[DNNL_CACHE_SIZE];
    uint64_t clock;
    float *scratch;        /* weight tile, fp32 */
    size_t scratch_cap;    /* floats */
    float *bias;           /* bias converted to fp32 */
    size_t bias_cap;       /* floats */
    bool bf16;             /* AWQ_PRECISION_BF16 asked for and the CPU has a bf16 unit */
    uint16_t *xb, *wb;     /* bf16 copies of x and of a weight tile */
    size_t xb_cap, wb_cap; /* elements */
} dnnl_state;

static inline dnnl_state *dnnl_st(awq_backend_ctx *ctx) { return (dnnl_state *)ctx->ext; }

/* dnnl_ops.c */
awq_status awq_dnnl_matmul(awq_backend_ctx *ctx, awq_tensor *y, const awq_tensor *x, const awq_tensor *w,
                           const awq_tensor *bias);
awq_status awq_dnnl_matmul_w4a16(awq_backend_ctx *ctx, awq_tensor *y, const awq_tensor *x,
                                 const awq_qlinear *w);
/* Decode-sized batches: awq_cpu_matmul_w4a16_multi; prefill: one awq_dnnl_matmul_w4a16 each. */
awq_status awq_dnnl_matmul_w4a16_multi(awq_backend_ctx *ctx, int32_t nw, awq_tensor *const *y,
                                       const awq_tensor *x, const awq_qlinear *const *w);
awq_status awq_dnnl_gram(awq_backend_ctx *ctx, awq_tensor *g, const awq_tensor *x, bool accumulate);
void awq_dnnl_cache_clear(dnnl_state *s);

#endif
