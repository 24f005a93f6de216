/*
 * dev_cuda.c - the device layer (dev.h) on the CUDA runtime and cuBLAS, for the "cuda" plugin.
 *
 * The runtime is linked statically (libcudart_static), so the plugin loads on machines without a
 * driver and the probe can say why there is no device (cudaGetDeviceCount's error). cuBLAS is
 * linked dynamically. This is the only file of the backend that CI never executes (no GPU there);
 * it is kept to thin wrappers for that reason.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "dev.h"

struct cudev {
    int device;
    cudaStream_t stream;
    cublasHandle_t blas;
    cudev_props props;
    awqk_ctx kc;
    bool capturing;
    cudaGraphExec_t exec; /* the step graph, kept between steps */
    char err[512];
};

static void seterr(cudev *d, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->err, sizeof d->err, fmt, ap);
    va_end(ap);
}

static awq_status status_of(cudaError_t e) {
    return e == cudaErrorMemoryAllocation ? AWQ_ERR_DEVICE_MEMORY : AWQ_ERR_BACKEND;
}

/* Checks a runtime call: records "cuda: <call>: <name>: <string>" on failure. */
static awq_status ck(cudev *d, cudaError_t e, const char *call) {
    if (e == cudaSuccess) return AWQ_OK;
    seterr(d, "cuda: %s failed: %s: %s", call, cudaGetErrorName(e), cudaGetErrorString(e));
    return status_of(e);
}

static const char *blas_name(cublasStatus_t s) {
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
    default: return "unknown cuBLAS status";
    }
}

const char *cudev_backend_name(void) { return "cuda"; }

int cudev_count(char *why, size_t cap) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        snprintf(why, cap, "cudaGetDeviceCount: %s: %s%s", cudaGetErrorName(e), cudaGetErrorString(e),
                 e == cudaErrorInsufficientDriver || e == cudaErrorNoDevice
                     ? " (no NVIDIA driver or GPU on this machine)"
                     : "");
        cudaGetLastError(); /* clear the sticky error */
        return 0;
    }
    int usable = 0;
    for (int i = 0; i < n; i++) {
        int major = 0;
        if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, i) == cudaSuccess && major >= 7)
            usable++;
    }
    if (n == 0)
        snprintf(why, cap, "no CUDA device");
    else if (usable < n)
        snprintf(why, cap, "%d of %d CUDA devices are older than sm_75 (Turing)", n - usable, n);
    return usable;
}

awq_status cudev_props_get(int device, cudev_props *p, char *err, size_t cap) {
    memset(p, 0, sizeof *p);
    struct cudaDeviceProp dp;
    cudaError_t e = cudaGetDeviceProperties(&dp, device);
    if (e != cudaSuccess) {
        snprintf(err, cap, "cuda: cudaGetDeviceProperties(%d) failed: %s: %s", device, cudaGetErrorName(e),
                 cudaGetErrorString(e));
        return AWQ_ERR_NO_BACKEND;
    }
    snprintf(p->name, sizeof p->name, "%s", dp.name);
    p->sm = dp.major * 10 + dp.minor;
    p->n_sm = dp.multiProcessorCount;
    p->total_mem = dp.totalGlobalMem;
    p->smem_per_block = (int)dp.sharedMemPerBlock;
    int clock_khz = 0, bus_bits = 0;
    cudaDeviceGetAttribute(&clock_khz, cudaDevAttrMemoryClockRate, device);
    cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, device);
    p->mem_bw_gbs = 2.0 * clock_khz * 1e3 * (bus_bits / 8.0) / 1e9; /* DDR */
    int prev = 0;
    size_t fr = 0, tot = 0;
    if (cudaGetDevice(&prev) == cudaSuccess && cudaSetDevice(device) == cudaSuccess &&
        cudaMemGetInfo(&fr, &tot) == cudaSuccess)
        p->free_mem = fr;
    cudaSetDevice(prev);
    cudaGetLastError();
    return AWQ_OK;
}

awq_status cudev_open(int device, cudev **out, char *err, size_t cap) {
    *out = NULL;
    cudev *d = calloc(1, sizeof *d);
    if (!d) return AWQ_ERR_OUT_OF_MEMORY;
    d->device = device;
    awq_status st = cudev_props_get(device, &d->props, err, cap);
    if (st == AWQ_OK) st = ck(d, cudaSetDevice(device), "cudaSetDevice");
    if (st == AWQ_OK)
        st = ck(d, cudaStreamCreateWithFlags(&d->stream, cudaStreamNonBlocking), "cudaStreamCreate");
    if (st == AWQ_OK) {
        cublasStatus_t bs = cublasCreate(&d->blas);
        if (bs != CUBLAS_STATUS_SUCCESS) {
            seterr(d, "cuda: cublasCreate failed: %s", blas_name(bs));
            st = bs == CUBLAS_STATUS_ALLOC_FAILED ? AWQ_ERR_DEVICE_MEMORY : AWQ_ERR_BACKEND;
        }
    }
    if (st == AWQ_OK) {
        cublasSetStream(d->blas, d->stream);
        cublasSetMathMode(d->blas, CUBLAS_DEFAULT_MATH); /* no TF32: the search stays fp32 */
    }
    if (st != AWQ_OK) {
        if (d->err[0]) snprintf(err, cap, "%s", d->err);
        cudev_close(d);
        return st;
    }
    d->kc.stream = d->stream;
    d->kc.sm = d->props.sm;
    d->kc.n_sm = d->props.n_sm;
    *out = d;
    return AWQ_OK;
}

void cudev_close(cudev *d) {
    if (!d) return;
    if (d->stream) cudaStreamSynchronize(d->stream);
    if (d->exec) cudaGraphExecDestroy(d->exec);
    if (d->blas) cublasDestroy(d->blas);
    if (d->stream) cudaStreamDestroy(d->stream);
    free(d);
}

const char *cudev_error(const cudev *d) { return d->err; }
awqk_ctx *cudev_kctx(cudev *d) { return &d->kc; }
const cudev_props *cudev_get_props(const cudev *d) { return &d->props; }

awq_status cudev_malloc(cudev *d, size_t n, void **p) {
    *p = NULL;
    size_t fr = 0, tot = 0;
    awq_status st = ck(d, cudaMemGetInfo(&fr, &tot), "cudaMemGetInfo");
    if (st != AWQ_OK) return st;
    if (n > fr) {
        seterr(d,
               "cuda: cannot allocate %zu bytes (%.1f MiB) on %s: only %zu bytes (%.1f MiB) of %zu are "
               "free",
               n, n / 1048576.0, d->props.name, fr, fr / 1048576.0, tot);
        return AWQ_ERR_DEVICE_MEMORY;
    }
    st = ck(d, cudaMalloc(p, n ? n : 16), "cudaMalloc");
    if (st != AWQ_OK) {
        char why[400];
        snprintf(why, sizeof why, "%s", d->err);
        seterr(d, "%s (%zu bytes requested, %zu free)", why, n, fr);
    }
    return st;
}

void cudev_free(cudev *d, void *p) {
    (void)d;
    if (p) cudaFree(p);
}

awq_status cudev_h2d(cudev *d, void *dst, const void *src, size_t n) {
    if (!n) return AWQ_OK;
    /* pageable source: cudaMemcpyAsync returns once src has been staged, so src may be reused */
    return ck(d, cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, d->stream), "cudaMemcpyAsync(H2D)");
}

awq_status cudev_d2h(cudev *d, void *dst, const void *src, size_t n) {
    if (!n) return AWQ_OK;
    awq_status st =
        ck(d, cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, d->stream), "cudaMemcpyAsync(D2H)");
    if (st == AWQ_OK) st = ck(d, cudaStreamSynchronize(d->stream), "cudaStreamSynchronize");
    return st;
}

awq_status cudev_memset0(cudev *d, void *dst, size_t n) {
    if (!n) return AWQ_OK;
    return ck(d, cudaMemsetAsync(dst, 0, n, d->stream), "cudaMemsetAsync");
}

awq_status cudev_sync(cudev *d) { return ck(d, cudaStreamSynchronize(d->stream), "cudaStreamSynchronize"); }

bool cudev_has_blas(const cudev *d) { return d->blas != NULL; }

awq_status cudev_gemm(cudev *d, bool ta, bool tb, int m, int n, int k, const void *A, int ab_dt,
                      long long lda, const void *B, long long ldb, float beta, float *C, long long ldc) {
    const float alpha = 1.0f;
    cudaDataType_t t = ab_dt == AWQK_F16 ? CUDA_R_16F : ab_dt == AWQK_BF16 ? CUDA_R_16BF : CUDA_R_32F;
    cublasStatus_t s = cublasGemmEx(d->blas, ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                                    m, n, k, &alpha, A, t, (int)lda, B, t, (int)ldb, &beta, C, CUDA_R_32F,
                                    (int)ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    if (s == CUBLAS_STATUS_SUCCESS) return AWQ_OK;
    seterr(d, "cuda: cublasGemmEx(%c%c, m %d, n %d, k %d, %s) failed: %s", ta ? 'T' : 'N', tb ? 'T' : 'N', m,
           n, k,
           ab_dt == AWQK_F16        ? "f16"
               : ab_dt == AWQK_BF16 ? "bf16"
                                    : "f32",
           blas_name(s));
    return s == CUBLAS_STATUS_ALLOC_FAILED ? AWQ_ERR_DEVICE_MEMORY : AWQ_ERR_BACKEND;
}

awq_status cudev_graph_begin(cudev *d) {
    awq_status st =
        ck(d, cudaStreamBeginCapture(d->stream, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
    d->capturing = st == AWQ_OK;
    return st;
}

awq_status cudev_graph_end(cudev *d) {
    if (!d->capturing) return AWQ_OK;
    d->capturing = false;
    cudaGraph_t g = NULL;
    awq_status st = ck(d, cudaStreamEndCapture(d->stream, &g), "cudaStreamEndCapture");
    if (st != AWQ_OK) return st;
    if (d->exec) { /* same topology as the last step: update its parameters in place */
        cudaGraphExecUpdateResultInfo info;
        if (cudaGraphExecUpdate(d->exec, g, &info) != cudaSuccess) {
            cudaGetLastError();
            cudaGraphExecDestroy(d->exec);
            d->exec = NULL;
        }
    }
    if (!d->exec) st = ck(d, cudaGraphInstantiate(&d->exec, g, 0), "cudaGraphInstantiate");
    if (st == AWQ_OK) st = ck(d, cudaGraphLaunch(d->exec, d->stream), "cudaGraphLaunch");
    cudaGraphDestroy(g);
    return st;
}

bool cudev_capturing(const cudev *d) { return d->capturing; }
