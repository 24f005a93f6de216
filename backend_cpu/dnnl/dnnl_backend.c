/*
 * dnnl_backend.c - the "cpu-dnnl" backend plugin (libawq-backend-cpu-dnnl.so): the cpu reference
 * backend's memory model and kernels, compiled into the plugin itself (it does not link libawq),
 * with matmul, gram and the prefill path of matmul_w4a16 on oneDNN 2.6 (dnnl_ops.c).
 * The probe scores 10 (above the built-in cpu's 1) when oneDNN can create a CPU engine.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnnl_internal.h"
#include "kernels.h"

static const char *isa_name(dnnl_cpu_isa_t isa) {
    switch (isa) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx512_mic: return "avx512_mic";
    case dnnl_cpu_isa_avx512_mic_4ops: return "avx512_mic_4ops";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    default: return "generic";
    }
}

static awq_status dnnl_device_info(int32_t device, awq_device_info *out) {
    awq_status st = awq_cpu_device_info(device, out);
    if (st != AWQ_OK) return st;
    const dnnl_version_t *v = dnnl_version();
    size_t n = strlen(out->name);
    snprintf(out->name + n, sizeof out->name - n, " + oneDNN %d.%d.%d %s", v->major, v->minor, v->patch,
             isa_name(dnnl_get_effective_cpu_isa()));
    return AWQ_OK;
}

static void dnnl_destroy(awq_backend_ctx *ctx) {
    if (!ctx) return;
    dnnl_state *s = dnnl_st(ctx);
    if (s) {
        awq_dnnl_cache_clear(s);
        if (s->stream) dnnl_stream_destroy(s->stream);
        if (s->engine) dnnl_engine_destroy(s->engine);
        pthread_mutex_destroy(&s->lock);
        free(s->scratch);
        free(s->bias);
        free(s->xb);
        free(s->wb);
        free(s);
    }
    awq_cpu_destroy(ctx);
}

static awq_status dnnl_create(int32_t device, const awq_backend_config *cfg, awq_backend_ctx **out) {
    awq_backend_ctx *ctx = NULL;
    awq_status st = awq_cpu_create(device, cfg, &ctx);
    if (st != AWQ_OK) return st;
    dnnl_state *s = calloc(1, sizeof *s);
    if (!s) {
        awq_cpu_destroy(ctx);
        return AWQ_ERR_OUT_OF_MEMORY;
    }
    ctx->ext = s;
    pthread_mutex_init(&s->lock, NULL);
    dnnl_status_t ds = dnnl_engine_create(&s->engine, dnnl_cpu, 0);
    if (ds == dnnl_success) ds = dnnl_stream_create(&s->stream, s->engine, dnnl_stream_default_flags);
    if (ds != dnnl_success) {
        awq_cpu_error(ctx, "cpu-dnnl: oneDNN cannot create a CPU engine/stream (status %d)", (int)ds);
        dnnl_destroy(ctx);
        return AWQ_ERR_BACKEND;
    }
    /* bf16 matmuls only where oneDNN has bf16 dot products (AVX512-BF16, AMX): elsewhere it
     * would emulate them, slower than fp32 */
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    s->bf16 = cfg->matmul_precision == AWQ_PRECISION_BF16 &&
        (isa == dnnl_cpu_isa_avx512_core_bf16 || isa == dnnl_cpu_isa_avx512_core_amx);
    if (cfg->matmul_precision == AWQ_PRECISION_BF16 && !s->bf16 && cfg->log)
        cfg->log(cfg->host, AWQ_LOG_LEVEL_WARN,
                 "cpu-dnnl: bf16 matmuls asked for, but this CPU has no bf16 unit: fp32 instead");
    *out = ctx;
    return AWQ_OK;
}

static const awq_backend_ops dnnl_ops = {
    .abi_version = AWQ_BACKEND_ABI_VERSION,
    .struct_size = sizeof(awq_backend_ops),
    .name = "cpu-dnnl",
    .device_count = awq_cpu_device_count,
    .device_info = dnnl_device_info,
    .create = dnnl_create,
    .destroy = dnnl_destroy,
    AWQ_CPU_MEMORY_OPS.matmul = awq_dnnl_matmul,
    .matmul_w4a16 = awq_dnnl_matmul_w4a16,
    .matmul_w4a16_multi = awq_dnnl_matmul_w4a16_multi,
    .matmul_q8 = awq_cpu_matmul_q8, /* the cpu kernel: Q8 x F32 GEMV, tiled for batches */
    .rmsnorm = awq_cpu_rmsnorm,
    .rope = awq_cpu_rope,
    .attention = awq_cpu_attention,
    .silu_mul = awq_cpu_silu_mul,
    .binop = awq_cpu_binop,
    .get_rows = awq_cpu_get_rows,
    .convert = awq_cpu_convert,
    .fake_quant = awq_cpu_fake_quant,
    .quantize_w4 = awq_cpu_quantize_w4,
    .reduce = awq_cpu_reduce,
    .scalar = awq_cpu_scalar,
    .clip_search = awq_cpu_clip_search,
    .gram = awq_dnnl_gram,
    .weight_prepare = awq_cpu_weight_prepare,
    .weight_release = awq_cpu_weight_release,
    .act_mul = awq_cpu_act_mul,
    .softcap = awq_cpu_softcap,
    .attention_softcap = awq_cpu_attention_softcap,
};

static int dnnl_probe(char *why, size_t cap) {
    dnnl_engine_t e = NULL;
    dnnl_status_t ds = dnnl_engine_create(&e, dnnl_cpu, 0);
    if (ds != dnnl_success || !e) {
        snprintf(why, cap, "oneDNN cannot create a CPU engine (dnnl_engine_create status %d)", (int)ds);
        return 0;
    }
    dnnl_engine_destroy(e);
    return 10;
}

AWQ_BACKEND_PLUGIN(dnnl_ops, dnnl_probe)
