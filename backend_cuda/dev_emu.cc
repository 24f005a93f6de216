/*
 * dev_emu.cc - the device layer (dev.h) on the host, for the "cuda-emu" plugin: the backend's real
 * kernels run on the SIMT emulator (emu/), device memory is host memory, copies are memcpy, and a
 * host GEMM (oneDNN's sgemm when available, else a plain loop) stands in for cuBLAS.
 *
 * The emulated device: compute capability AWQ_CUDA_EMU_SM (default 80; 75 selects the Turing code
 * paths), AWQ_CUDA_EMU_NSM multiprocessors (default 8, which drives split-K decisions),
 * AWQ_CUDA_EMU_MEM_MB of memory (default 8192; allocations beyond it are refused like on a GPU).
 * Work is executed in order at the time it is issued (or recorded while a graph is captured and
 * replayed by cudev_graph_end), so "asynchronous" ops are complete when they return.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <atomic>
#include <functional>
#include <vector>

#ifdef AWQ_HAVE_DNNL
#include <dnnl.h>
#endif

#include "dev.h"
#include "emu/emu.h"

struct cudev {
    cudev_props props;
    awqk_ctx kc;
    emu_stream *stream;
    bool capturing;
    size_t used;
    char err[512];
};

static void seterr(cudev *d, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->err, sizeof d->err, fmt, ap);
    va_end(ap);
}

static long env_long(const char *name, long def, long lo, long hi) {
    const char *e = getenv(name);
    if (!e || !*e) return def;
    char *end = NULL;
    long v = strtol(e, &end, 10);
    return end && *end == 0 && v >= lo && v <= hi ? v : def;
}

extern "C" const char *cudev_backend_name(void) { return "cuda-emu"; }

extern "C" int cudev_count(char *why, size_t cap) {
    (void)why;
    (void)cap;
    return 1;
}

extern "C" awq_status cudev_props_get(int device, cudev_props *p, char *err, size_t cap) {
    memset(p, 0, sizeof *p);
    if (device != 0) {
        snprintf(err, cap, "cuda-emu: no device %d (the emulator has one)", device);
        return AWQ_ERR_NO_BACKEND;
    }
    p->sm = (int)env_long("AWQ_CUDA_EMU_SM", 80, 75, 120);
    p->n_sm = (int)env_long("AWQ_CUDA_EMU_NSM", 8, 1, 1024);
    p->total_mem = (size_t)env_long("AWQ_CUDA_EMU_MEM_MB", 8192, 1, 1L << 24) << 20;
    p->free_mem = p->total_mem;
    p->smem_per_block = 48 * 1024;
    snprintf(p->name, sizeof p->name, "CUDA emulator (sm_%d, %d SMs, SIMT fibers on the host CPU)", p->sm,
             p->n_sm);
    return AWQ_OK;
}

extern "C" awq_status cudev_open(int device, cudev **out, char *err, size_t cap) {
    *out = NULL;
    cudev *d = new (std::nothrow) cudev();
    if (!d) return AWQ_ERR_OUT_OF_MEMORY;
    awq_status st = cudev_props_get(device, &d->props, err, cap);
    if (st != AWQ_OK) {
        delete d;
        return st;
    }
    d->stream = emu_stream_create();
    if (!d->stream) {
        delete d;
        snprintf(err, cap, "cuda-emu: cannot create a stream");
        return AWQ_ERR_OUT_OF_MEMORY;
    }
    d->kc.stream = d->stream;
    d->kc.sm = d->props.sm;
    d->kc.n_sm = d->props.n_sm;
    *out = d;
    return AWQ_OK;
}

extern "C" void cudev_close(cudev *d) {
    if (!d) return;
    emu_stream_destroy(d->stream);
    delete d;
}

extern "C" const char *cudev_error(const cudev *d) { return d->err; }
extern "C" awqk_ctx *cudev_kctx(cudev *d) { return &d->kc; }
extern "C" const cudev_props *cudev_get_props(const cudev *d) { return &d->props; }

/* Allocation header: the size, so cudev_free can account for it (256-byte aligned payload). */
enum { HDR = 256 };

extern "C" awq_status cudev_malloc(cudev *d, size_t n, void **p) {
    *p = NULL;
    size_t fr = d->props.total_mem - d->used;
    if (n > fr) {
        seterr(d,
               "cuda-emu: cannot allocate %zu bytes (%.1f MiB) on %s: only %zu bytes (%.1f MiB) of %zu are "
               "free",
               n, n / 1048576.0, d->props.name, fr, fr / 1048576.0, d->props.total_mem);
        return AWQ_ERR_DEVICE_MEMORY;
    }
    unsigned char *b = (unsigned char *)aligned_alloc(HDR, HDR + ((n + HDR - 1) / HDR) * HDR);
    if (!b) {
        seterr(d, "cuda-emu: cudaMalloc(%zu) failed: cudaErrorMemoryAllocation: out of host memory", n);
        return AWQ_ERR_DEVICE_MEMORY;
    }
    memcpy(b, &n, sizeof n);
    d->used += n;
    *p = b + HDR;
    return AWQ_OK;
}

extern "C" void cudev_free(cudev *d, void *p) {
    if (!p) return;
    unsigned char *b = (unsigned char *)p - HDR;
    size_t n;
    memcpy(&n, b, sizeof n);
    d->used -= n;
    free(b);
}

/* Runs (or, while capturing, records) one host-side stream operation. */
static awq_status enqueue(cudev *d, std::function<int(char *, size_t)> fn) {
    if (emu_stream_enqueue(d->stream, std::move(fn), d->err, sizeof d->err) != 0) return AWQ_ERR_BACKEND;
    return AWQ_OK;
}

extern "C" awq_status cudev_h2d(cudev *d, void *dst, const void *src, size_t n) {
    if (!n) return AWQ_OK;
    if (d->capturing) {
        seterr(d,
               "cuda-emu: cudaMemcpyAsync(H2D) from pageable memory while capturing a graph: "
               "cudaErrorStreamCaptureUnsupported");
        return AWQ_ERR_BACKEND;
    }
    memcpy(dst, src, n);
    return AWQ_OK;
}

extern "C" awq_status cudev_d2h(cudev *d, void *dst, const void *src, size_t n) {
    if (!n) return AWQ_OK;
    if (d->capturing) {
        seterr(d,
               "cuda-emu: synchronous cudaMemcpy(D2H) while capturing a graph: "
               "cudaErrorStreamCaptureImplicit");
        return AWQ_ERR_BACKEND;
    }
    memcpy(dst, src, n);
    return AWQ_OK;
}

extern "C" awq_status cudev_memset0(cudev *d, void *dst, size_t n) {
    if (!n) return AWQ_OK;
    return enqueue(d, [dst, n](char *, size_t) {
        memset(dst, 0, n);
        return 0;
    });
}

extern "C" awq_status cudev_sync(cudev *d) {
    if (d->capturing) {
        seterr(d,
               "cuda-emu: cudaStreamSynchronize while capturing a graph: cudaErrorStreamCaptureUnsupported");
        return AWQ_ERR_BACKEND;
    }
    return AWQ_OK;
}

extern "C" bool cudev_has_blas(const cudev *d) {
    (void)d;
    return true;
}

/* ---- the cuBLAS stand-in ------------------------------------------------------------------- */

static float ld_any(const void *p, int dt, long long i) {
    if (dt == AWQK_F32) return ((const float *)p)[i];
    uint16_t h = ((const uint16_t *)p)[i];
    if (dt == AWQK_BF16) {
        uint32_t u = (uint32_t)h << 16;
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    return awqk_h2f(h);
}

/* Column-major op(X) (rows x cols) copied into a dense row-major fp32 matrix. */
static void pack(std::vector<float> &dst, bool t, int rows, int cols, const void *X, int dt, long long ld) {
    dst.resize((size_t)rows * cols);
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) /* op(X)[i][j] = t ? X[j + i*ld] : X[i + j*ld] */
            dst[(size_t)i * cols + j] =
                ld_any(X, dt, t ? (long long)j + (long long)i * ld : (long long)i + (long long)j * ld);
}

static void host_gemm(bool ta, bool tb, int m, int n, int k, const void *A, int dt, long long lda,
                      const void *B, long long ldb, float beta, float *C, long long ldc) {
    std::vector<float> a, b; /* a: op(A) m x k, b: op(B) k x n, both row-major */
    pack(a, ta, m, k, A, dt, lda);
    pack(b, tb, k, n, B, dt, ldb);
#ifdef AWQ_HAVE_DNNL
    /* column-major C = a b  <=>  row-major C^T (n x m) = b^T a^T */
    std::vector<float> ct((size_t)n * m);
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) ct[(size_t)j * m + i] = beta != 0.0f ? C[i + (long long)j * ldc] : 0.0f;
    if (dnnl_sgemm('T', 'T', n, m, k, 1.0f, b.data(), n, a.data(), k, beta != 0.0f ? beta : 0.0f, ct.data(),
                   m) == dnnl_success) {
        for (int j = 0; j < n; j++)
            for (int i = 0; i < m; i++) C[i + (long long)j * ldc] = ct[(size_t)j * m + i];
        return;
    }
#endif
    std::vector<float> bt((size_t)n * k);
    for (int p = 0; p < k; p++)
        for (int j = 0; j < n; j++) bt[(size_t)j * k + p] = b[(size_t)p * n + j];
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            const float *x = &a[(size_t)i * k], *y = &bt[(size_t)j * k];
            float s = 0.0f;
            for (int p = 0; p < k; p++) s += x[p] * y[p];
            float *c = &C[i + (long long)j * ldc];
            *c = beta != 0.0f ? s + beta * *c : s;
        }
}

extern "C" awq_status cudev_gemm(cudev *d, bool ta, bool tb, int m, int n, int k, const void *A, int ab_dt,
                                 long long lda, const void *B, long long ldb, float beta, float *C,
                                 long long ldc) {
    if (m <= 0 || n <= 0) return AWQ_OK;
    return enqueue(d, [=](char *, size_t) {
        if (k <= 0) {
            for (int j = 0; j < n; j++)
                for (int i = 0; i < m; i++) C[i + (long long)j * ldc] *= beta;
        } else {
            host_gemm(ta, tb, m, n, k, A, ab_dt, lda, B, ldb, beta, C, ldc);
        }
        return 0;
    });
}

/* ---- graphs --------------------------------------------------------------------------------- */

extern "C" awq_status cudev_graph_begin(cudev *d) {
    if (emu_stream_begin_capture(d->stream, d->err, sizeof d->err) != 0) return AWQ_ERR_BACKEND;
    d->capturing = true;
    return AWQ_OK;
}

extern "C" awq_status cudev_graph_end(cudev *d) {
    if (!d->capturing) return AWQ_OK;
    d->capturing = false;
    emu_graph *g = NULL;
    if (emu_stream_end_capture(d->stream, &g, d->err, sizeof d->err) != 0) return AWQ_ERR_BACKEND;
    int rc = emu_graph_launch(&d->kc, g);
    if (rc != 0) seterr(d, "cuda-emu: graph replay: %s", d->kc.err);
    emu_graph_destroy(g);
    return rc == 0 ? AWQ_OK : AWQ_ERR_BACKEND;
}

extern "C" bool cudev_capturing(const cudev *d) { return d->capturing; }
