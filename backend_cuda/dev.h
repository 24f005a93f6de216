/*
 * dev.h - the device layer of the CUDA backend: everything cuda_backend.c and cuda_ops.c need from
 * the CUDA runtime and cuBLAS, behind one small C interface with two implementations:
 *
 *   dev_cuda.c  the real thing: CUDA runtime (static cudart) + cuBLAS   -> plugin "cuda"
 *   dev_emu.cc  the host stand-in: malloc/memcpy, kernels on the SIMT emulator (emu/), a
 *               reference GEMM in place of cuBLAS                       -> plugin "cuda-emu"
 *
 * Only dev_cuda.c is never executed on machines without a GPU; everything above it (op selection,
 * launch geometry, workspace, split-K, graphs) runs in CI through dev_emu.cc.
 *
 * Every function returning awq_status writes a message naming the CUDA/cuBLAS call and its error
 * string into cudev_error(d) on failure.
 */
#ifndef AWQ_CUDA_DEV_H
#define AWQ_CUDA_DEV_H

#include <stdbool.h>
#include <stddef.h>

#include "awq.h"
#include "kernels/launch.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cudev cudev;

typedef struct cudev_props {
    char name[128];
    int sm;             /* major * 10 + minor */
    int n_sm;           /* multiprocessors */
    size_t total_mem;   /* bytes */
    size_t free_mem;    /* bytes, at the time of the query */
    double mem_bw_gbs;  /* theoretical memory bandwidth, GB/s (0 if unknown) */
    int smem_per_block; /* bytes usable without opt-in */
} cudev_props;

/* The plugin's name ("cuda" or "cuda-emu"). */
const char *cudev_backend_name(void);
/* Number of usable devices; 0 with the reason in why (driver missing, no device, ...). */
int cudev_count(char *why, size_t cap);
awq_status cudev_props_get(int device, cudev_props *p, char *err, size_t cap);

awq_status cudev_open(int device, cudev **out, char *err, size_t cap);
void cudev_close(cudev *d);
const char *cudev_error(const cudev *d);
awqk_ctx *cudev_kctx(cudev *d); /* the launch context (stream, sm) of this device */
const cudev_props *cudev_get_props(const cudev *d);

/* Device memory. cudev_malloc refuses (AWQ_ERR_DEVICE_MEMORY, naming both sizes) a request larger
 * than the device's free memory before trying it. Plain device memory, never managed. */
awq_status cudev_malloc(cudev *d, size_t n, void **p);
void cudev_free(cudev *d, void *p);
/* Host -> device: returns when src may be reused. Device -> host: synchronous. */
awq_status cudev_h2d(cudev *d, void *dst, const void *src, size_t n);
awq_status cudev_d2h(cudev *d, void *dst, const void *src, size_t n);
awq_status cudev_memset0(cudev *d, void *dst, size_t n); /* asynchronous */
awq_status cudev_sync(cudev *d);

/* Whether cudev_gemm is available (cuBLAS on the device; the reference GEMM under emulation). */
bool cudev_has_blas(const cudev *d);
/* Column-major C (m x n, ldc) = op(A) * op(B) + beta * C, op = transpose when ta/tb; A and B both
 * F32, both F16 or both BF16 (AWQK_*); C F32; fp32 compute (cublasGemmEx with CUBLAS_COMPUTE_32F,
 * never TF32). */
awq_status cudev_gemm(cudev *d, bool ta, bool tb, int m, int n, int k, const void *A, int ab_dt,
                      long long lda, const void *B, long long ldb, float beta, float *C, long long ldc);

/* Stream capture of one step into a graph, replayed by cudev_graph_end (which launches it;
 * an executable graph is kept and updated in place while the step's topology is unchanged). */
awq_status cudev_graph_begin(cudev *d);
awq_status cudev_graph_end(cudev *d);
bool cudev_capturing(const cudev *d);

#ifdef __cplusplus
}
#endif

#endif
