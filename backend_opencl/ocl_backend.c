/*
 * ocl_backend.c - the "opencl" backend plugin (libawq-backend-opencl.so): device enumeration,
 * contexts (one in-order queue each), buffers, program building and the kernel cache, error
 * reporting, and the ops table. The ops are in ocl_ops.c, the kernels in kernels/\*.cl (embedded
 * at build time).
 *
 * Devices: every device of every platform that reports OpenCL 1.2 or newer, numbered in platform
 * order ("opencl:N"). Older devices are skipped and the reason is logged at create() and given
 * by the probe when nothing is left. The probe scores 50: `auto` prefers a GPU device of this
 * plugin to the cpu backends (the runtime adds 100 for GPUs); a CPU OpenCL device such as PoCL
 * is used only when asked for.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ocl_internal.h"

#include "cl_common.h"
#include "cl_matmul.h"
#include "cl_ops.h"
#include "cl_quant.h"

#ifdef AWQ_HAVE_CLBLAST
#include <clblast_c.h>
#endif

#define MAX_DEVICES 32

/* ---- errors ------------------------------------------------------------------------------ */

/* clang-format off */
const char *ocl_err_name(cl_int err) {
    switch (err) {
#define E(x) case x: return #x;
    E(CL_SUCCESS) E(CL_DEVICE_NOT_FOUND) E(CL_DEVICE_NOT_AVAILABLE) E(CL_COMPILER_NOT_AVAILABLE)
    E(CL_MEM_OBJECT_ALLOCATION_FAILURE) E(CL_OUT_OF_RESOURCES) E(CL_OUT_OF_HOST_MEMORY)
    E(CL_PROFILING_INFO_NOT_AVAILABLE) E(CL_MEM_COPY_OVERLAP) E(CL_IMAGE_FORMAT_MISMATCH)
    E(CL_IMAGE_FORMAT_NOT_SUPPORTED) E(CL_BUILD_PROGRAM_FAILURE) E(CL_MAP_FAILURE)
    E(CL_MISALIGNED_SUB_BUFFER_OFFSET) E(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST)
    E(CL_COMPILE_PROGRAM_FAILURE) E(CL_LINKER_NOT_AVAILABLE) E(CL_LINK_PROGRAM_FAILURE)
    E(CL_DEVICE_PARTITION_FAILED) E(CL_KERNEL_ARG_INFO_NOT_AVAILABLE) E(CL_INVALID_VALUE)
    E(CL_INVALID_DEVICE_TYPE) E(CL_INVALID_PLATFORM) E(CL_INVALID_DEVICE) E(CL_INVALID_CONTEXT)
    E(CL_INVALID_QUEUE_PROPERTIES) E(CL_INVALID_COMMAND_QUEUE) E(CL_INVALID_HOST_PTR)
    E(CL_INVALID_MEM_OBJECT) E(CL_INVALID_IMAGE_FORMAT_DESCRIPTOR) E(CL_INVALID_IMAGE_SIZE)
    E(CL_INVALID_SAMPLER) E(CL_INVALID_BINARY) E(CL_INVALID_BUILD_OPTIONS) E(CL_INVALID_PROGRAM)
    E(CL_INVALID_PROGRAM_EXECUTABLE) E(CL_INVALID_KERNEL_NAME) E(CL_INVALID_KERNEL_DEFINITION)
    E(CL_INVALID_KERNEL) E(CL_INVALID_ARG_INDEX) E(CL_INVALID_ARG_VALUE) E(CL_INVALID_ARG_SIZE)
    E(CL_INVALID_KERNEL_ARGS) E(CL_INVALID_WORK_DIMENSION) E(CL_INVALID_WORK_GROUP_SIZE)
    E(CL_INVALID_WORK_ITEM_SIZE) E(CL_INVALID_GLOBAL_OFFSET) E(CL_INVALID_EVENT_WAIT_LIST)
    E(CL_INVALID_EVENT) E(CL_INVALID_OPERATION) E(CL_INVALID_GL_OBJECT) E(CL_INVALID_BUFFER_SIZE)
    E(CL_INVALID_MIP_LEVEL) E(CL_INVALID_GLOBAL_WORK_SIZE) E(CL_INVALID_PROPERTY)
    E(CL_INVALID_IMAGE_DESCRIPTOR) E(CL_INVALID_COMPILER_OPTIONS) E(CL_INVALID_LINKER_OPTIONS)
    E(CL_INVALID_DEVICE_PARTITION_COUNT)
#undef E
    case -1001: return "CL_PLATFORM_NOT_FOUND_KHR";
    default: return "unknown OpenCL error";
    }
}
/* clang-format on */

awq_status ocl_fail(awq_backend_ctx *c, awq_status st, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    (void)n;
    if (c && c->cfg.set_error) c->cfg.set_error(c->cfg.host, msg);
    return st;
}

static awq_status status_of(cl_int err) {
    switch (err) {
    case CL_SUCCESS: return AWQ_OK;
    case CL_MEM_OBJECT_ALLOCATION_FAILURE:
    case CL_OUT_OF_RESOURCES:
    case CL_INVALID_BUFFER_SIZE: return AWQ_ERR_DEVICE_MEMORY;
    case CL_OUT_OF_HOST_MEMORY: return AWQ_ERR_OUT_OF_MEMORY;
    default: return AWQ_ERR_BACKEND;
    }
}

awq_status ocl_check(awq_backend_ctx *c, cl_int err, const char *call) {
    if (err == CL_SUCCESS) return AWQ_OK;
    awq_status st = status_of(err);
    return ocl_fail(c, st, "opencl: %s failed: %s (%d)%s", call, ocl_err_name(err), (int)err,
                    st == AWQ_ERR_DEVICE_MEMORY ? " - the device is out of memory" : "");
}

static void ocl_log(awq_backend_ctx *c, awq_log_level lvl, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static void ocl_log(awq_backend_ctx *c, awq_log_level lvl, const char *fmt, ...) {
    if (!c || !c->cfg.log) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->cfg.log(c->cfg.host, lvl, msg);
}

/* ---- devices ----------------------------------------------------------------------------- */

static struct {
    pthread_once_t once;
    int n;
    cl_device_id dev[MAX_DEVICES];
    cl_platform_id plat[MAX_DEVICES];
    char why[512]; /* why there are none, or which devices were skipped */
} g_dev = {PTHREAD_ONCE_INIT, 0, {0}, {0}, ""};

static void why_append(const char *fmt, ...) {
    size_t len = strlen(g_dev.why);
    if (len + 1 >= sizeof g_dev.why) return;
    if (len) {
        g_dev.why[len++] = ';';
        g_dev.why[len++] = ' ';
        g_dev.why[len] = 0;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_dev.why + len, sizeof g_dev.why - len, fmt, ap);
    va_end(ap);
}

static void enumerate(void) {
    cl_platform_id plats[16];
    cl_uint np = 0;
    cl_int err = clGetPlatformIDs(16, plats, &np);
    if (err != CL_SUCCESS || np == 0) {
        why_append("no OpenCL platform (clGetPlatformIDs: %s; is an ICD such as PoCL installed?)",
                   err != CL_SUCCESS ? ocl_err_name(err) : "0 platforms");
        return;
    }
    if (np > 16) np = 16;
    for (cl_uint p = 0; p < np; p++) {
        cl_device_id devs[MAX_DEVICES];
        cl_uint nd = 0;
        if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, MAX_DEVICES, devs, &nd) != CL_SUCCESS) continue;
        if (nd > MAX_DEVICES) nd = MAX_DEVICES;
        for (cl_uint d = 0; d < nd && g_dev.n < MAX_DEVICES; d++) {
            char ver[128] = "", name[128] = "";
            clGetDeviceInfo(devs[d], CL_DEVICE_VERSION, sizeof ver, ver, NULL);
            clGetDeviceInfo(devs[d], CL_DEVICE_NAME, sizeof name, name, NULL);
            int major = 0, minor = 0;
            cl_bool avail = CL_FALSE, compiler = CL_FALSE;
            clGetDeviceInfo(devs[d], CL_DEVICE_AVAILABLE, sizeof avail, &avail, NULL);
            clGetDeviceInfo(devs[d], CL_DEVICE_COMPILER_AVAILABLE, sizeof compiler, &compiler, NULL);
            if (sscanf(ver, "OpenCL %d.%d", &major, &minor) != 2 || major * 10 + minor < 12) {
                why_append("%s skipped: %s, OpenCL 1.2 required", name, ver[0] ? ver : "no version");
                continue;
            }
            if (!avail || !compiler) {
                why_append("%s skipped: %s", name, !avail ? "not available" : "no OpenCL C compiler");
                continue;
            }
            g_dev.dev[g_dev.n] = devs[d];
            g_dev.plat[g_dev.n] = plats[p];
            g_dev.n++;
        }
    }
    if (g_dev.n == 0 && !g_dev.why[0]) why_append("no OpenCL device on %u platform(s)", np);
}

static int32_t ocl_device_count(void) {
    pthread_once(&g_dev.once, enumerate);
    return g_dev.n;
}

static awq_status ocl_device_info(int32_t device, awq_device_info *out) {
    if (device < 0 || device >= ocl_device_count()) return AWQ_ERR_NO_BACKEND;
    memset(out, 0, sizeof *out);
    cl_device_id d = g_dev.dev[device];
    char name[128] = "", pname[64] = "";
    clGetDeviceInfo(d, CL_DEVICE_NAME, sizeof name, name, NULL);
    clGetPlatformInfo(g_dev.plat[device], CL_PLATFORM_NAME, sizeof pname, pname, NULL);
    snprintf(out->name, sizeof out->name, "%s (%s)", name, pname);
    cl_ulong mem = 0, alloc = 0;
    cl_device_type type = 0;
    clGetDeviceInfo(d, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof mem, &mem, NULL);
    clGetDeviceInfo(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof alloc, &alloc, NULL);
    clGetDeviceInfo(d, CL_DEVICE_TYPE, sizeof type, &type, NULL);
    out->memory_bytes = (int64_t)mem;
    out->max_alloc_bytes = (int64_t)alloc;
    out->is_gpu = (type & (CL_DEVICE_TYPE_GPU | CL_DEVICE_TYPE_ACCELERATOR)) != 0;
    return AWQ_OK;
}

/* ---- programs ---------------------------------------------------------------------------- */

static const char *const prog_src[P_COUNT] = {awq_cl_matmul, awq_cl_ops, awq_cl_quant};
static const char *const prog_name[P_COUNT] = {"matmul.cl", "ops.cl", "quant.cl"};

static awq_status build_program(awq_backend_ctx *c, int p, const char *opts) {
    const char *srcs[2] = {awq_cl_common, prog_src[p]};
    cl_int err;
    c->prog[p] = clCreateProgramWithSource(c->cl, 2, srcs, NULL, &err);
    if (err != CL_SUCCESS) return ocl_check(c, err, "clCreateProgramWithSource");
    err = clBuildProgram(c->prog[p], 1, &c->dev, opts, NULL, NULL);
    if (err == CL_SUCCESS) return AWQ_OK;
    size_t len = 0;
    clGetProgramBuildInfo(c->prog[p], c->dev, CL_PROGRAM_BUILD_LOG, 0, NULL, &len);
    char *log = malloc(len + 1);
    if (log) {
        log[0] = 0;
        clGetProgramBuildInfo(c->prog[p], c->dev, CL_PROGRAM_BUILD_LOG, len, log, NULL);
        log[len] = 0;
        ocl_log(c, AWQ_LOG_LEVEL_ERROR, "opencl: build log of %s on %s:\n%s", prog_name[p], c->name, log);
    }
    awq_status st = ocl_fail(
        c, AWQ_ERR_BACKEND, "opencl: clBuildProgram(%s, \"%s\") on %s failed: %s (%d)%s%.600s", prog_name[p],
        opts, c->name, ocl_err_name(err), (int)err, log ? "; build log: " : "", log ? log : "");
    free(log);
    return st;
}

static const struct {
    const char *name;
    int prog;
} kernel_def[K_COUNT] = {
#define OCL_KDEF(name, prog) {#name, prog},
    OCL_KERNELS(OCL_KDEF)};

static awq_status make_kernels(awq_backend_ctx *c) {
    for (int i = 0; i < K_COUNT; i++) {
        cl_int err;
        c->k[i] = clCreateKernel(c->prog[kernel_def[i].prog], kernel_def[i].name, &err);
        if (err != CL_SUCCESS) {
            char call[96];
            snprintf(call, sizeof call, "clCreateKernel(%s)", kernel_def[i].name);
            return ocl_check(c, err, call);
        }
        size_t kwg = 0;
        clGetKernelWorkGroupInfo(c->k[i], c->dev, CL_KERNEL_WORK_GROUP_SIZE, sizeof kwg, &kwg, NULL);
        /* the work-group size each kernel is launched with (0: left to the runtime) */
        size_t need = 0;
        switch (i) {
        case K_gemm_dense:
        case K_gemm_w4: need = (size_t)(c->ts * c->ts / c->rt); break;
        case K_gram: need = (size_t)(c->ts * c->ts); break;
        case K_gemv_dense:
        case K_gemv_w4:
        case K_gemv_w4x4:
        case K_rmsnorm:
        case K_attention:
        case K_scalar_partial:
        case K_clip_search: need = (size_t)c->ls; break;
        case K_reduce_cols: need = c->ls < 64 ? (size_t)c->ls : 64; break;
        case K_gemm_blk:
        case K_gemm_w4_blk: need = 16; break;
        default: break;
        }
        if (kwg && kwg < need)
            return ocl_fail(c, AWQ_ERR_UNSUPPORTED,
                            "opencl: kernel %s allows work-groups of %zu items on %s, %zu needed",
                            kernel_def[i].name, kwg, c->name, need);
    }
    return AWQ_OK;
}

/* ---- contexts ---------------------------------------------------------------------------- */

static void ocl_destroy(awq_backend_ctx *c) {
    if (!c) return;
    if (c->queue) clFinish(c->queue);
    for (int i = 0; i < K_COUNT; i++)
        if (c->k[i]) clReleaseKernel(c->k[i]);
    for (int p = 0; p < P_COUNT; p++)
        if (c->prog[p]) clReleaseProgram(c->prog[p]);
    if (c->partial) clReleaseMemObject(c->partial);
    if (c->queue) clReleaseCommandQueue(c->queue);
    if (c->cl) clReleaseContext(c->cl);
    free(c);
}

static awq_status ocl_create(int32_t device, const awq_backend_config *cfg, awq_backend_ctx **out) {
    *out = NULL;
    awq_backend_ctx *c = calloc(1, sizeof *c);
    if (!c) return AWQ_ERR_OUT_OF_MEMORY;
    if (cfg) c->cfg = *cfg;
    int32_t n = ocl_device_count();
    if (device < 0 || device >= n) {
        awq_status st = ocl_fail(c, AWQ_ERR_NO_BACKEND, "opencl: no device %d (%d found%s%s)", device, n,
                                 g_dev.why[0] ? "; " : "", g_dev.why);
        free(c);
        return st;
    }
    if (g_dev.why[0]) ocl_log(c, AWQ_LOG_LEVEL_INFO, "opencl: %s", g_dev.why);
    c->device = device;
    c->dev = g_dev.dev[device];
    awq_device_info info;
    ocl_device_info(device, &info);
    snprintf(c->name, sizeof c->name, "%s", info.name);
    c->max_alloc = (size_t)info.max_alloc_bytes;

    cl_int err;
    cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)g_dev.plat[device], 0};
    c->cl = clCreateContext(props, 1, &c->dev, NULL, NULL, &err);
    awq_status st = ocl_check(c, err, "clCreateContext");
    if (st == AWQ_OK) {
        c->queue = clCreateCommandQueue(c->cl, c->dev, 0, &err);
        st = ocl_check(c, err, "clCreateCommandQueue");
    }
    /* work-group shapes from the device limits */
    size_t max_wg = 0, max_items[3] = {0, 0, 0};
    cl_ulong local_mem = 0;
    cl_device_fp_config fp = 0;
    clGetDeviceInfo(c->dev, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof max_wg, &max_wg, NULL);
    clGetDeviceInfo(c->dev, CL_DEVICE_MAX_WORK_ITEM_SIZES, sizeof max_items, max_items, NULL);
    clGetDeviceInfo(c->dev, CL_DEVICE_LOCAL_MEM_SIZE, sizeof local_mem, &local_mem, NULL);
    clGetDeviceInfo(c->dev, CL_DEVICE_SINGLE_FP_CONFIG, sizeof fp, &fp, NULL);
    size_t lim = max_wg < max_items[0] ? max_wg : max_items[0];
    c->ls = 8;
    while (c->ls * 2 <= 256 && (size_t)c->ls * 2 <= lim) c->ls *= 2;
    c->ts = 16;
    c->rt = 4;
    if (max_wg < 256 || max_items[1] < 16) { /* gram needs TS x TS items */
        c->ts = 8;
        c->rt = 2;
    }
    if (st == AWQ_OK && (c->ls < 32 || local_mem < 24 * 1024))
        st = ocl_fail(c, AWQ_ERR_UNSUPPORTED,
                      "opencl: %s is too small (work-groups of %zu items, %llu bytes of local memory; "
                      "32 items and 24 KiB needed)",
                      c->name, max_wg, (unsigned long long)local_mem);
    char ext[4096] = "";
    clGetDeviceInfo(c->dev, CL_DEVICE_EXTENSIONS, sizeof ext, ext, NULL);
    bool fp16 = strstr(ext, "cl_khr_fp16") != NULL;
    char opts[256];
    for (int p = 0; p < P_COUNT && st == AWQ_OK; p++) {
        snprintf(opts, sizeof opts, "-cl-std=CL1.2 -DTS=%d -DRT=%d -DLS=%d%s%s", c->ts, c->rt, c->ls,
                 fp16 ? " -DAWQ_FP16" : "",
                 p == P_QUANT && (fp & CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT)
                     ? " -cl-fp32-correctly-rounded-divide-sqrt"
                     : "");
        st = build_program(c, p, opts);
    }
    if (st == AWQ_OK && !(fp & CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT))
        ocl_log(c, AWQ_LOG_LEVEL_WARN,
                "opencl: %s has no correctly rounded fp32 division: quantization "
                "results may differ from the cpu backend in rare last-bit ties",
                c->name);
    if (st == AWQ_OK) st = make_kernels(c);
    if (st == AWQ_OK) {
        c->partial = clCreateBuffer(c->cl, CL_MEM_READ_WRITE, OCL_SCALAR_GROUPS * sizeof(float), NULL, &err);
        st = ocl_check(c, err, "clCreateBuffer(scratch)");
    }
    /* kernel family: barrier-free blocked kernels on CPU-class devices, local-memory tiles on
     * GPUs; AWQ_OPENCL_KERNELS=tiled|blocked overrides (the tests run both on PoCL) */
    cl_device_type type = 0;
    clGetDeviceInfo(c->dev, CL_DEVICE_TYPE, sizeof type, &type, NULL);
    c->blocked = (type & CL_DEVICE_TYPE_CPU) != 0;
    const char *kf = getenv("AWQ_OPENCL_KERNELS");
    if (kf && strcmp(kf, "tiled") == 0) c->blocked = false;
    if (kf && strcmp(kf, "blocked") == 0) c->blocked = true;
#ifdef AWQ_HAVE_CLBLAST
    const char *no = getenv("AWQ_OPENCL_NO_CLBLAST");
    c->use_clblast = !c->blocked && !(no && no[0] && strcmp(no, "0") != 0);
#endif
    if (st != AWQ_OK) {
        ocl_destroy(c);
        return st;
    }
    ocl_log(c, AWQ_LOG_LEVEL_INFO, "opencl: %s: %s kernels (tiles %dx%d, work-groups of %d), %s", c->name,
            c->blocked ? "blocked" : "tiled", c->ts, c->ts, c->ls,
            c->use_clblast ? "CLBlast for large F32 GEMMs" : "own GEMM kernels only");
    *out = c;
    return AWQ_OK;
}

/* ---- memory ------------------------------------------------------------------------------ */

static awq_status ocl_buffer_alloc(awq_backend_ctx *c, size_t nbytes, void **buf) {
    *buf = NULL;
    if (c->max_alloc && nbytes > c->max_alloc)
        return ocl_fail(c, AWQ_ERR_DEVICE_MEMORY,
                        "opencl: a buffer of %zu bytes (%.1f MiB) exceeds the largest allocation of %s "
                        "(%zu bytes)",
                        nbytes, (double)nbytes / 1048576.0, c->name, c->max_alloc);
    cl_int err;
    cl_mem m = clCreateBuffer(c->cl, CL_MEM_READ_WRITE, nbytes ? nbytes : 16, NULL, &err);
    if (err != CL_SUCCESS) {
        awq_status st = ocl_check(c, err, "clCreateBuffer");
        return ocl_fail(c, st, "opencl: cannot allocate %.1f MiB on %s: %s", (double)nbytes / 1048576.0,
                        c->name, ocl_err_name(err));
    }
    *buf = m;
    return AWQ_OK;
}

static void ocl_buffer_free(awq_backend_ctx *c, void *buf) {
    (void)c;
    if (buf) clReleaseMemObject((cl_mem)buf);
}

static awq_status ocl_upload(awq_backend_ctx *c, void *buf, size_t offs, const void *src, size_t n) {
    if (!n) return AWQ_OK;
    /* blocking: the caller may free src as soon as this returns */
    return ocl_check(c, clEnqueueWriteBuffer(c->queue, (cl_mem)buf, CL_TRUE, offs, n, src, 0, NULL, NULL),
                     "clEnqueueWriteBuffer");
}

static awq_status ocl_download(awq_backend_ctx *c, void *dst, const void *buf, size_t offs, size_t n) {
    if (!n) return AWQ_OK;
    return ocl_check(c, clEnqueueReadBuffer(c->queue, (cl_mem)buf, CL_TRUE, offs, n, dst, 0, NULL, NULL),
                     "clEnqueueReadBuffer");
}

static awq_status ocl_synchronize(awq_backend_ctx *c) { return ocl_check(c, clFinish(c->queue), "clFinish"); }

static awq_status ocl_memset_zero(awq_backend_ctx *c, void *buf, size_t offs, size_t n) {
    if (!n) return AWQ_OK;
    const cl_uchar zero = 0;
    return ocl_check(c, clEnqueueFillBuffer(c->queue, (cl_mem)buf, &zero, 1, offs, n, 0, NULL, NULL),
                     "clEnqueueFillBuffer");
}

awq_status ocl_launch(awq_backend_ctx *c, int kid, cl_uint dims, const size_t *gws, const size_t *lws,
                      size_t nargs, const ocl_arg *args) {
    for (size_t i = 0; i < nargs; i++) {
        cl_int err = clSetKernelArg(c->k[kid], (cl_uint)i, args[i].size, args[i].ptr);
        if (err != CL_SUCCESS) {
            return ocl_fail(c, status_of(err), "opencl: clSetKernelArg(%s, %zu) failed: %s",
                            kernel_def[kid].name, i, ocl_err_name(err));
        }
    }
    size_t g[3];
    for (cl_uint d = 0; d < dims; d++) {
        if (gws[d] == 0) return AWQ_OK; /* nothing to do */
        g[d] = lws ? (gws[d] + lws[d] - 1) / lws[d] * lws[d] : gws[d];
    }
    cl_int err = clEnqueueNDRangeKernel(c->queue, c->k[kid], dims, NULL, g, lws, 0, NULL, NULL);
    if (err != CL_SUCCESS)
        return ocl_fail(c, status_of(err), "opencl: clEnqueueNDRangeKernel(%s) failed: %s (%d)%s",
                        kernel_def[kid].name, ocl_err_name(err), (int)err,
                        status_of(err) == AWQ_ERR_DEVICE_MEMORY ? " - the device is out of memory" : "");
    return AWQ_OK;
}

/* ---- the table --------------------------------------------------------------------------- */

static const awq_backend_ops ocl_ops_table = {
    .abi_version = AWQ_BACKEND_ABI_VERSION,
    .struct_size = sizeof(awq_backend_ops),
    .name = "opencl",
    .device_count = ocl_device_count,
    .device_info = ocl_device_info,
    .create = ocl_create,
    .destroy = ocl_destroy,
    .buffer_alloc = ocl_buffer_alloc,
    .buffer_free = ocl_buffer_free,
    .upload = ocl_upload,
    .download = ocl_download,
    .synchronize = ocl_synchronize,
    .memset_zero = ocl_memset_zero,
    .matmul = ocl_matmul,
    .matmul_w4a16 = ocl_matmul_w4a16,
    .rmsnorm = ocl_rmsnorm,
    .rope = ocl_rope,
    .attention = ocl_attention,
    .silu_mul = ocl_silu_mul,
    .binop = ocl_binop,
    .get_rows = ocl_get_rows,
    .convert = ocl_convert,
    .fake_quant = ocl_fake_quant,
    .quantize_w4 = ocl_quantize_w4,
    .reduce = ocl_reduce,
    .scalar = ocl_scalar,
    .clip_search = ocl_clip_search,
    .gram = ocl_gram,
    .act_mul = ocl_act_mul,
    .softcap = ocl_softcap,
    .attention_softcap = ocl_attention_softcap,
};

static int ocl_probe(char *why, size_t cap) {
    if (ocl_device_count() > 0) return 50;
    snprintf(why, cap, "%s", g_dev.why[0] ? g_dev.why : "no OpenCL device");
    return 0;
}

AWQ_BACKEND_PLUGIN(ocl_ops_table, ocl_probe)
