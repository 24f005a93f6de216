/*
 * cpu_backend.h - shared by the cpu reference backend and the cpu-dnnl plugin.
 * Declares the backend context, the device/memory functions and every kernel.
 */
#ifndef AWQ_BACKEND_CPU_H
#define AWQ_BACKEND_CPU_H

#include <stdio.h>

#include "awq_backend.h"
#include "awq_pack.h"

struct awq_backend_ctx {
    awq_backend_config cfg;
    int32_t n_threads;      /* threads used by kernels (the pool's and OpenMP's) */
    struct awq_tpool *pool; /* decode-path workers (threadpool.h); NULL: serial */
    void *ext;              /* extension state (cpu-dnnl: oneDNN engine/stream/cache) */
};

/* Records an error through cfg.set_error (printf-style). */
void awq_cpu_error(awq_backend_ctx *ctx, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void awq_cpu_describe(char *buf, size_t cap); /* "AMD EPYC (2 threads, avx512)" */
int64_t awq_cpu_total_memory(void);
int32_t awq_cpu_threads(int32_t requested); /* 0 -> all cores */

/* device and memory (cpu_backend.c) */
int32_t awq_cpu_device_count(void);
awq_status awq_cpu_device_info(int32_t device, awq_device_info *out);
awq_status awq_cpu_create(int32_t device, const awq_backend_config *cfg, awq_backend_ctx **out);
void awq_cpu_destroy(awq_backend_ctx *ctx);
awq_status awq_cpu_buffer_alloc(awq_backend_ctx *ctx, size_t nbytes, void **buf);
void awq_cpu_buffer_free(awq_backend_ctx *ctx, void *buf);
awq_status awq_cpu_upload(awq_backend_ctx *ctx, void *buf, size_t offs, const void *src, size_t nbytes);
awq_status awq_cpu_download(awq_backend_ctx *ctx, void *dst, const void *buf, size_t offs, size_t nbytes);
awq_status awq_cpu_synchronize(awq_backend_ctx *ctx);
awq_status awq_cpu_memset_zero(awq_backend_ctx *ctx, void *buf, size_t offs, size_t nbytes);

/* Host address of a tensor element base. */
static inline char *awq_cpu_ptr(const awq_tensor *t) { return (char *)t->data + t->offs; }

#endif
