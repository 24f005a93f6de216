/*
 * cuda_backend.c - the "cuda" backend plugin (libawq-backend-cuda.so) and, compiled a second time
 * over the emulated device layer, the "cuda-emu" plugin (libawq-backend-cuda-emu.so): probe,
 * device info, contexts, memory, decode-step graphs and the ops table. The ops are in cuda_ops.c,
 * the kernels in kernels/ (launch.h), the device layer in dev.h.
 *
 * Probe: "cuda" scores 60 when the CUDA runtime finds a device of compute capability 7.5 or newer
 * (auto prefers it to OpenCL's 50; the runtime adds 100 for GPUs) and otherwise returns 0 with the
 * runtime's reason (no driver, no device), which `awq-cli info` shows. "cuda-emu" always loads,
 * reports is_gpu = false, so `auto` never picks it: it is for tests (--backend cuda-emu).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_internal.h"

/* ---- errors ------------------------------------------------------------------------------ */

awq_status cu_fail(awq_backend_ctx *c, awq_status st, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c && c->cfg.set_error) c->cfg.set_error(c->cfg.host, msg);
    return st;
}

awq_status cu_kfail(awq_backend_ctx *c) {
    return cu_fail(c, AWQ_ERR_BACKEND, AWQ_CUDA_NAME ": kernel launch failed: %s", c->kc->err);
}

awq_status cu_dfail(awq_backend_ctx *c, awq_status st) { return cu_fail(c, st, "%s", cudev_error(c->d)); }

static void cu_log(awq_backend_ctx *c, awq_log_level lvl, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static void cu_log(awq_backend_ctx *c, awq_log_level lvl, const char *fmt, ...) {
    if (!c || !c->cfg.log) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->cfg.log(c->cfg.host, lvl, msg);
}

/* ---- devices ----------------------------------------------------------------------------- */

static int32_t cu_device_count(void) {
    char why[256];
    return cudev_count(why, sizeof why);
}

static awq_status cu_device_info(int32_t device, awq_device_info *out) {
    memset(out, 0, sizeof *out);
    if (device < 0 || device >= cu_device_count()) return AWQ_ERR_NO_BACKEND;
    cudev_props p;
    char err[256];
    awq_status st = cudev_props_get(device, &p, err, sizeof err);
    if (st != AWQ_OK) return st;
    snprintf(out->name, sizeof out->name, "%s", p.name);
    out->memory_bytes = (int64_t)p.total_mem;
    out->max_alloc_bytes = (int64_t)p.total_mem;
#ifdef AWQ_CUDA_EMU
    out->is_gpu = false; /* never chosen by auto */
#else
    out->is_gpu = true;
#endif
    return AWQ_OK;
}

/* ---- contexts ---------------------------------------------------------------------------- */

static cu_family env_family(const char *name, const char *const *names, const cu_family *fams, int n) {
    const char *e = getenv(name);
    if (!e || !*e) return CU_AUTO;
    for (int i = 0; i < n; i++)
        if (strcmp(e, names[i]) == 0) return fams[i];
    return CU_AUTO;
}

static void cu_destroy(awq_backend_ctx *c) {
    if (!c) return;
    if (c->d) {
        cudev_sync(c->d);
        cudev_free(c->d, c->ws);
        cudev_free(c->d, c->partial);
        cudev_free(c->d, c->flag);
        cudev_close(c->d);
    }
    free(c);
}

static awq_status cu_create(int32_t device, const awq_backend_config *cfg, awq_backend_ctx **out) {
    *out = NULL;
    awq_backend_ctx *c = calloc(1, sizeof *c);
    if (!c) return AWQ_ERR_OUT_OF_MEMORY;
    if (cfg) c->cfg = *cfg;
    char why[512] = "";
    int n = cudev_count(why, sizeof why);
    if (device < 0 || device >= n) {
        awq_status st = cu_fail(c, AWQ_ERR_NO_BACKEND, AWQ_CUDA_NAME ": no device %d (%d found%s%s)", device,
                                n, why[0] ? "; " : "", why);
        free(c);
        return st;
    }
    awq_status st = cudev_open(device, &c->d, why, sizeof why);
    if (st != AWQ_OK) {
        cu_fail(c, st, AWQ_CUDA_NAME ": cannot open device %d: %s", device, why);
        free(c);
        return st;
    }
    c->kc = cudev_kctx(c->d);
    c->props = *cudev_get_props(c->d);
    snprintf(c->name, sizeof c->name, "%s", c->props.name);
    const char *wsmb = getenv("AWQ_CUDA_WS_MB");
    long mb = wsmb && *wsmb ? strtol(wsmb, NULL, 10) : CU_WS_DEFAULT_MB;
    if (mb < 4) mb = 4;
    c->ws_bytes = (size_t)mb << 20;
    st = cudev_malloc(c->d, c->ws_bytes, &c->ws);
    if (st == AWQ_OK) st = cudev_malloc(c->d, AWQK_SCALAR_PARTS * sizeof(double), (void **)&c->partial);
    if (st == AWQ_OK) st = cudev_malloc(c->d, 256, (void **)&c->flag);
    if (st != AWQ_OK) {
        cu_dfail(c, st);
        cu_destroy(c);
        return st;
    }
    static const char *const w4n[] = {"gemv", "tc", "dequant"};
    static const cu_family w4f[] = {CU_GEMV, CU_TC, CU_DEQUANT};
    static const char *const dn[] = {"gemv", "simt", "blas"};
    static const cu_family df[] = {CU_GEMV, CU_SIMT, CU_BLAS};
    c->force_w4 = env_family("AWQ_CUDA_W4", w4n, w4f, 3);
    c->force_dense = env_family("AWQ_CUDA_DENSE", dn, df, 3);
    c->w4_tc_max_m = CU_W4_TC_MAX_M;
    const char *g = getenv("AWQ_CUDA_GRAPHS");
    c->graphs = !(g && strcmp(g, "0") == 0);
    cu_log(c, AWQ_LOG_LEVEL_INFO,
           AWQ_CUDA_NAME ": %s, sm_%d, %d SMs, %.1f GiB; workspace %ld MiB; W4A16: GEMV <= %d rows, "
                         "Tensor Cores <= %d, dequantize + cuBLAS above%s%s",
           c->name, c->props.sm, c->props.n_sm, (double)c->props.total_mem / (1 << 30), mb, CU_GEMV_MAX_M,
           c->w4_tc_max_m, c->force_w4 ? " (family forced by AWQ_CUDA_W4)" : "",
           c->graphs ? "; decode steps as CUDA Graphs" : "");
    *out = c;
    return AWQ_OK;
}

/* ---- memory ------------------------------------------------------------------------------ */

static awq_status cu_buffer_alloc(awq_backend_ctx *c, size_t nbytes, void **buf) {
    awq_status st = cudev_malloc(c->d, nbytes, buf);
    return st == AWQ_OK ? AWQ_OK : cu_dfail(c, st);
}

static void cu_buffer_free(awq_backend_ctx *c, void *buf) { cudev_free(c->d, buf); }

static awq_status cu_upload(awq_backend_ctx *c, void *buf, size_t offs, const void *src, size_t n) {
    awq_status st = cudev_h2d(c->d, (char *)buf + offs, src, n);
    return st == AWQ_OK ? AWQ_OK : cu_dfail(c, st);
}

static awq_status cu_download(awq_backend_ctx *c, void *dst, const void *buf, size_t offs, size_t n) {
    awq_status st = cudev_d2h(c->d, dst, (const char *)buf + offs, n);
    if (st != AWQ_OK) return cu_dfail(c, st);
    return cu_check_flag(c);
}

static awq_status cu_synchronize(awq_backend_ctx *c) {
    awq_status st = cudev_sync(c->d);
    if (st != AWQ_OK) return cu_dfail(c, st);
    return cu_check_flag(c);
}

static awq_status cu_memset_zero(awq_backend_ctx *c, void *buf, size_t offs, size_t n) {
    awq_status st = cudev_memset0(c->d, (char *)buf + offs, n);
    return st == AWQ_OK ? AWQ_OK : cu_dfail(c, st);
}

/* ---- decode steps as graphs -------------------------------------------------------------- */

static awq_status cu_step_begin(awq_backend_ctx *c) {
    if (c->in_step) return cu_fail(c, AWQ_ERR_INVALID_ARG, AWQ_CUDA_NAME ": step_begin inside a step");
    c->in_step = true;
    if (!c->graphs) return AWQ_OK;
    awq_status st = cudev_graph_begin(c->d);
    if (st != AWQ_OK) {
        c->in_step = false;
        return cu_dfail(c, st);
    }
    return AWQ_OK;
}

static awq_status cu_step_end(awq_backend_ctx *c) {
    if (!c->in_step) return AWQ_OK;
    c->in_step = false;
    awq_status st = cudev_graph_end(c->d); /* launches the captured step */
    return st == AWQ_OK ? AWQ_OK : cu_dfail(c, st);
}

/* ---- the table --------------------------------------------------------------------------- */

static const awq_backend_ops cu_ops_table = {
    .abi_version = AWQ_BACKEND_ABI_VERSION,
    .struct_size = sizeof(awq_backend_ops),
    .name = AWQ_CUDA_NAME,
    .device_count = cu_device_count,
    .device_info = cu_device_info,
    .create = cu_create,
    .destroy = cu_destroy,
    .buffer_alloc = cu_buffer_alloc,
    .buffer_free = cu_buffer_free,
    .upload = cu_upload,
    .download = cu_download,
    .synchronize = cu_synchronize,
    .memset_zero = cu_memset_zero,
    .matmul = cu_matmul,
    .matmul_w4a16 = cu_matmul_w4a16,
    .rmsnorm = cu_rmsnorm,
    .rope = cu_rope,
    .attention = cu_attention,
    .silu_mul = cu_silu_mul,
    .binop = cu_binop,
    .get_rows = cu_get_rows,
    .convert = cu_convert,
    .fake_quant = cu_fake_quant,
    .quantize_w4 = cu_quantize_w4,
    .reduce = cu_reduce,
    .scalar = cu_scalar,
    .clip_search = cu_clip_search,
    .gram = cu_gram,
    .weight_prepare = cu_weight_prepare,
    .weight_release = cu_weight_release,
    .matmul_w4a16_multi = cu_matmul_w4a16_multi,
    .step_begin = cu_step_begin,
    .step_end = cu_step_end,
    .act_mul = cu_act_mul,
    .softcap = cu_softcap,
    .attention_softcap = cu_attention_softcap,
};

static int cu_probe(char *why, size_t cap) {
    char buf[512] = "";
    int n = cudev_count(buf, sizeof buf);
    if (n > 0) return 60;
    snprintf(why, cap, "%s", buf[0] ? buf : "no CUDA device");
    return 0;
}

AWQ_BACKEND_PLUGIN(cu_ops_table, cu_probe)
