/* runtime.c - awq_runtime: logger, backends, device selection. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

awq_runtime_params awq_runtime_params_default(void) {
    awq_runtime_params p = {
        .log = NULL,
        .log_user = NULL,
        .backend_dir = NULL,
        .load_plugins = true,
        .n_threads = 0,
    };
    return p;
}

awq_status awq_runtime_create(awq_runtime **out, const awq_runtime_params *params) {
    if (!out) return AWQ_ERR_INVALID_ARG;
    *out = NULL;
    awq_runtime_params p = params ? *params : awq_runtime_params_default();
    awq_runtime *rt = awq_calloc(1, sizeof *rt);
    if (!rt) return AWQ_ERR_OUT_OF_MEMORY;
    rt->log = p.log;
    rt->log_user = p.log_user;
    rt->n_threads = p.n_threads > 0 ? p.n_threads : 0;
    awq_status st = awq_registry_init(rt, p.backend_dir, p.load_plugins);
    if (st != AWQ_OK) {
        awq_runtime_destroy(rt);
        return st;
    }
    *out = rt;
    return AWQ_OK;
}

void awq_runtime_destroy(awq_runtime *rt) {
    if (!rt) return;
    awq_registry_free(rt);
    awq_free(rt);
}

/* Enumerates (backend, device) pairs in registration order. */
int32_t awq_runtime_device_count(const awq_runtime *rt) {
    if (!rt) return 0;
    int32_t n = 0;
    for (int i = 0; i < rt->n_backends; i++) n += rt->backends[i].ops->device_count();
    return n;
}

awq_status awq_runtime_device_get(const awq_runtime *rt, int32_t i, awq_device_desc *out) {
    if (!rt || !out || i < 0) return AWQ_ERR_INVALID_ARG;
    for (int b = 0; b < rt->n_backends; b++) {
        const awq_backend_entry *e = &rt->backends[b];
        int32_t nd = e->ops->device_count();
        if (i < nd) {
            awq_device_info info;
            memset(&info, 0, sizeof info);
            awq_status st = e->ops->device_info(i, &info);
            if (st != AWQ_OK) return st;
            memset(out, 0, sizeof *out);
            snprintf(out->backend, sizeof out->backend, "%s", e->ops->name);
            out->index = i;
            snprintf(out->name, sizeof out->name, "%s", info.name);
            out->memory_bytes = info.memory_bytes;
            out->score = e->score + (info.is_gpu ? 100 : 0);
            return AWQ_OK;
        }
        i -= nd;
    }
    return AWQ_ERR_INVALID_ARG;
}

int32_t awq_runtime_skipped_count(const awq_runtime *rt) { return rt ? rt->n_skipped : 0; }

const char *awq_runtime_skipped_get(const awq_runtime *rt, int32_t i) {
    if (!rt || i < 0 || i >= rt->n_skipped) return NULL;
    return rt->skipped[i];
}

static awq_status open_on(awq_runtime *rt, const awq_backend_entry *e, int32_t index, int64_t max_ctx,
                          int32_t prec, bool int8_act, awq_device *out) {
    int32_t nd = e->ops->device_count();
    if (index < 0 || index >= nd)
        return awq_set_error(rt, AWQ_ERR_NO_BACKEND, "backend '%s' has %d device(s), index %d requested",
                             e->ops->name, nd, index);
    memset(out, 0, sizeof *out);
    out->ops = e->ops;
    out->index = index;
    awq_status st = e->ops->device_info(index, &out->info);
    if (st != AWQ_OK) return awq_set_error(rt, st, "%s:%d: device_info failed", e->ops->name, index);
    awq_backend_config cfg = awq_runtime_backend_config(rt, max_ctx);
    cfg.matmul_precision = prec;
    cfg.w4_act_int8 = int8_act;
    awq_clear_error(rt);
    st = e->ops->create(index, &cfg, &out->ctx);
    if (st != AWQ_OK) {
        if (!rt->last_error[0])
            awq_set_error(rt, st, "%s:%d: cannot create backend instance", e->ops->name, index);
        else
            awq_error_prefix(rt, "%s:%d", e->ops->name, index);
        return st;
    }
    snprintf(out->label, sizeof out->label, "%s:%d", e->ops->name, index);
    awq_device_caps_fill(out);
    AWQ_LOG_INFO(rt, "using device %s (%s)", out->label, out->info.name);
    return AWQ_OK;
}

awq_status awq_device_open(awq_runtime *rt, const char *spec, int64_t max_ctx, awq_device *out) {
    return awq_device_open_prec(rt, spec, max_ctx, AWQ_PRECISION_FP32, out);
}

awq_status awq_device_open_prec(awq_runtime *rt, const char *spec, int64_t max_ctx, int32_t prec,
                                awq_device *out) {
    return awq_device_open_ex(rt, spec, max_ctx, prec, false, out);
}

awq_status awq_device_open_ex(awq_runtime *rt, const char *spec, int64_t max_ctx, int32_t prec, bool int8_act,
                              awq_device *out) {
    if (prec != AWQ_PRECISION_FP32 && prec != AWQ_PRECISION_BF16)
        return awq_set_error(rt, AWQ_ERR_INVALID_ARG, "unknown matmul precision %d", (int)prec);
    if (!spec || !spec[0] || strcmp(spec, "auto") == 0) {
        /* A GPU device first (highest probe score), then cpu-dnnl, then cpu. */
        const awq_backend_entry *best = NULL;
        for (int i = 0; i < rt->n_backends; i++) {
            const awq_backend_entry *e = &rt->backends[i];
            if (e->ops->device_count() <= 0) continue;
            awq_device_info info;
            memset(&info, 0, sizeof info);
            if (e->ops->device_info(0, &info) != AWQ_OK || !info.is_gpu) continue;
            if (!best || e->score > best->score) best = e;
        }
        if (best && open_on(rt, best, 0, max_ctx, prec, int8_act, out) == AWQ_OK) return AWQ_OK;
        const awq_backend_entry *dnnl = awq_registry_find(rt, "cpu-dnnl");
        if (dnnl && open_on(rt, dnnl, 0, max_ctx, prec, int8_act, out) == AWQ_OK) return AWQ_OK;
        return open_on(rt, awq_registry_find(rt, "cpu"), 0, max_ctx, prec, int8_act, out);
    }
    char name[64];
    int32_t index = 0;
    const char *colon = strchr(spec, ':');
    size_t nl = colon ? (size_t)(colon - spec) : strlen(spec);
    if (nl >= sizeof name) return awq_set_error(rt, AWQ_ERR_INVALID_ARG, "bad device '%s'", spec);
    memcpy(name, spec, nl);
    name[nl] = '\0';
    if (colon) {
        char *end = NULL;
        long v = strtol(colon + 1, &end, 10);
        if (!colon[1] || *end || v < 0 || v > 1024)
            return awq_set_error(rt, AWQ_ERR_INVALID_ARG, "bad device index in '%s'", spec);
        index = (int32_t)v;
    }
    const awq_backend_entry *e = awq_registry_find(rt, name);
    if (!e) {
        char avail[256] = "";
        for (int i = 0; i < rt->n_backends; i++) {
            strncat(avail, i ? ", " : "", sizeof avail - strlen(avail) - 1);
            strncat(avail, rt->backends[i].ops->name, sizeof avail - strlen(avail) - 1);
        }
        return awq_set_error(rt, AWQ_ERR_NO_BACKEND,
                             "backend '%s' is not loaded (available: %s; see `awq-cli info`)", name, avail);
    }
    return open_on(rt, e, index, max_ctx, prec, int8_act, out);
}

void awq_device_close(awq_device *dev) {
    if (dev && dev->ops && dev->ctx) dev->ops->destroy(dev->ctx);
    if (dev && dev->host_ctx) awq_backend_cpu_ops()->destroy(dev->host_ctx);
    if (dev) dev->ctx = dev->host_ctx = NULL;
}
