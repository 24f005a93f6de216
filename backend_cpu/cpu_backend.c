/*
 * cpu_backend.c - the built-in "cpu" reference backend: host memory, C kernels with per-ISA hot
 * loops (backend_cpu/kernels/, kernels.h), OpenMP over output rows. It is the oracle every other
 * backend is tested against. Compiled into libawq, and (with AWQ_CPU_PLUGIN) into the cpu-dnnl
 * plugin.
 */
#include <stdlib.h>
#include <string.h>

#include "cpu_backend.h"
#include "threadpool.h"

int32_t awq_cpu_device_count(void) { return 1; }

awq_status awq_cpu_device_info(int32_t device, awq_device_info *out) {
    if (device != 0) return AWQ_ERR_INVALID_ARG;
    memset(out, 0, sizeof *out);
    awq_cpu_describe(out->name, sizeof out->name);
    out->memory_bytes = awq_cpu_total_memory();
    out->max_alloc_bytes = out->memory_bytes;
    out->is_gpu = false;
    return AWQ_OK;
}

#ifndef AWQ_CPU_PLUGIN
bool awq_alloc_fault(void); /* core/runtime/alloc.c: the fault tests' allocation-failure hook */
#else
static bool awq_alloc_fault(void) { return false; }
#endif

awq_status awq_cpu_create(int32_t device, const awq_backend_config *cfg, awq_backend_ctx **out) {
    if (device != 0) return AWQ_ERR_INVALID_ARG;
    awq_backend_ctx *ctx = awq_alloc_fault() ? NULL : calloc(1, sizeof *ctx);
    if (!ctx) return AWQ_ERR_OUT_OF_MEMORY;
    ctx->cfg = *cfg;
    ctx->n_threads = awq_cpu_threads(cfg->n_threads);
    ctx->pool = awq_tpool_create(ctx->n_threads); /* NULL: the kernels run serially */
    *out = ctx;
    return AWQ_OK;
}

void awq_cpu_destroy(awq_backend_ctx *ctx) {
    if (!ctx) return;
    awq_tpool_destroy(ctx->pool);
    free(ctx);
}

awq_status awq_cpu_buffer_alloc(awq_backend_ctx *ctx, size_t nbytes, void **buf) {
    /* 64-byte aligned so SIMD kernels may use aligned loads on buffer starts. */
    size_t n = (nbytes + 63) & ~(size_t)63;
    void *p = NULL;
    if (n == 0) n = 64;
    if (awq_alloc_fault() || posix_memalign(&p, 64, n) != 0 || !p) {
        awq_cpu_error(ctx, "cannot allocate %zu bytes of host memory", nbytes);
        return AWQ_ERR_OUT_OF_MEMORY;
    }
    *buf = p;
    return AWQ_OK;
}

void awq_cpu_buffer_free(awq_backend_ctx *ctx, void *buf) { free(buf); }

awq_status awq_cpu_upload(awq_backend_ctx *ctx, void *buf, size_t offs, const void *src, size_t nbytes) {
    if (nbytes) memcpy((char *)buf + offs, src, nbytes);
    return AWQ_OK;
}

awq_status awq_cpu_download(awq_backend_ctx *ctx, void *dst, const void *buf, size_t offs, size_t nbytes) {
    if (nbytes) memcpy(dst, (const char *)buf + offs, nbytes);
    return AWQ_OK;
}

awq_status awq_cpu_synchronize(awq_backend_ctx *ctx) { return AWQ_OK; }

awq_status awq_cpu_memset_zero(awq_backend_ctx *ctx, void *buf, size_t offs, size_t nbytes) {
    if (nbytes) memset((char *)buf + offs, 0, nbytes);
    return AWQ_OK;
}
