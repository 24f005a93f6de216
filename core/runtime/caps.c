/*
 * caps.c - what a backend can run, and the per-op fallbacks for what it cannot.
 *
 * A backend says what it can do in two ways (docs/backends.md, "Capabilities"): an optional
 * member of awq_backend_ops is NULL, or its supports_op() declines a case (an activation, a
 * reduction, a weight type). The core asks before it loads or quantizes a model
 * (awq_device_plan) and logs, once per op, what it does instead:
 *   - matmul_w4a16_multi, weight_prepare, step_begin/step_end: a slower path on the device
 *     (separate calls, the stored layout, op-by-op submission);
 *   - act_mul with silu: silu_mul on the device;
 *   - act_mul, softcap, attention_softcap otherwise: the built-in cpu backend over host copies
 *     of the operands (download, cpu kernel, upload), bit-identical to the cpu backend;
 *   - reduce, scalar, clip_search, gram (quantization): also the cpu backend over host copies
 *     (quant/quant_ops.c);
 *   - matmul_q8: the lm_head stays as stored (floating point).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "internal.h"

static const char *const op_names[AWQ_OP_COUNT_] = {
    [AWQ_OP_MATMUL] = "matmul",
    [AWQ_OP_MATMUL_W4A16] = "matmul_w4a16",
    [AWQ_OP_RMSNORM] = "rmsnorm",
    [AWQ_OP_ROPE] = "rope",
    [AWQ_OP_ATTENTION] = "attention",
    [AWQ_OP_SILU_MUL] = "silu_mul",
    [AWQ_OP_BINOP] = "binop",
    [AWQ_OP_GET_ROWS] = "get_rows",
    [AWQ_OP_CONVERT] = "convert",
    [AWQ_OP_FAKE_QUANT] = "fake_quant",
    [AWQ_OP_QUANTIZE_W4] = "quantize_w4",
    [AWQ_OP_REDUCE] = "reduce",
    [AWQ_OP_SCALAR] = "scalar",
    [AWQ_OP_CLIP_SEARCH] = "clip_search",
    [AWQ_OP_GRAM] = "gram",
    [AWQ_OP_WEIGHT_PREPARE] = "weight_prepare",
    [AWQ_OP_MATMUL_W4A16_MULTI] = "matmul_w4a16_multi",
    [AWQ_OP_STEP_GRAPH] = "step_begin/step_end",
    [AWQ_OP_ACT_MUL] = "act_mul",
    [AWQ_OP_SOFTCAP] = "softcap",
    [AWQ_OP_ATTENTION_SOFTCAP] = "attention_softcap",
    [AWQ_OP_MATMUL_Q8] = "matmul_q8",
};

const char *awq_op_name(awq_op op) {
    return (unsigned)op < AWQ_OP_COUNT_ && op_names[op] ? op_names[op] : "?";
}

/* "act_mul(gelu_tanh)" etc.: the op and, where it has cases, the case. */
static void op_label(char *buf, size_t cap, awq_op op, int32_t param) {
    const char *c = NULL;
    if (op == AWQ_OP_ACT_MUL)
        c = param == AWQ_ACT_SILU ? "silu" : param == AWQ_ACT_GELU_TANH ? "gelu_tanh" : "?";
    if (op == AWQ_OP_REDUCE)
        c = param == AWQ_REDUCE_MEAN_ABS_COLS  ? "mean_abs_cols"
            : param == AWQ_REDUCE_WMEAN_GROUPS ? "wmean_groups"
            : param == AWQ_REDUCE_MAX_ABS_COLS ? "max_abs_cols"
                                               : "?";
    if (op == AWQ_OP_SCALAR) c = param == AWQ_SCALAR_SSE ? "sse" : param == AWQ_SCALAR_DOT ? "dot" : "?";
    if (c)
        snprintf(buf, cap, "%s(%s)", awq_op_name(op), c);
    else
        snprintf(buf, cap, "%s", awq_op_name(op));
}

static bool has_member(const awq_backend_ops *o, awq_op op) {
    switch (op) {
    case AWQ_OP_MATMUL: return o->matmul;
    case AWQ_OP_MATMUL_W4A16: return o->matmul_w4a16;
    case AWQ_OP_RMSNORM: return o->rmsnorm;
    case AWQ_OP_ROPE: return o->rope;
    case AWQ_OP_ATTENTION: return o->attention;
    case AWQ_OP_SILU_MUL: return o->silu_mul;
    case AWQ_OP_BINOP: return o->binop;
    case AWQ_OP_GET_ROWS: return o->get_rows;
    case AWQ_OP_CONVERT: return o->convert;
    case AWQ_OP_FAKE_QUANT: return o->fake_quant;
    case AWQ_OP_QUANTIZE_W4: return o->quantize_w4;
    case AWQ_OP_REDUCE: return o->reduce;
    case AWQ_OP_SCALAR: return o->scalar;
    case AWQ_OP_CLIP_SEARCH: return o->clip_search;
    case AWQ_OP_GRAM: return o->gram;
    case AWQ_OP_WEIGHT_PREPARE: return o->weight_prepare && o->weight_release;
    case AWQ_OP_MATMUL_W4A16_MULTI: return o->matmul_w4a16_multi;
    case AWQ_OP_STEP_GRAPH: return o->step_begin && o->step_end;
    case AWQ_OP_ACT_MUL: return o->act_mul;
    case AWQ_OP_SOFTCAP: return o->softcap;
    case AWQ_OP_ATTENTION_SOFTCAP: return o->attention_softcap;
    case AWQ_OP_MATMUL_Q8: return o->matmul_q8;
    default: return false;
    }
}

bool awq_backend_can(const awq_backend_ops *o, int32_t device, awq_op op, int32_t param) {
    if (!o || !has_member(o, op)) return false;
    if (!o->supports_op) return true;
    awq_op_query q = {.op = op, .param = param};
    return o->supports_op(device, &q);
}

/* ---- the optional ops a caller may lack, with the fallback each one takes ---------------------- */

typedef struct opt_case {
    awq_op op;
    int32_t param;
    const char *instead; /* what runs instead */
} opt_case;

static const opt_case opt_cases[] = {
    {AWQ_OP_MATMUL_W4A16_MULTI, 0, "one matmul_w4a16 per linear"},
    {AWQ_OP_WEIGHT_PREPARE, 0, "4-bit weights used in the stored layout"},
    {AWQ_OP_STEP_GRAPH, 0, "decode ops submitted one by one"},
    {AWQ_OP_ACT_MUL, AWQ_ACT_SILU, "silu_mul"},
    {AWQ_OP_ACT_MUL, AWQ_ACT_GELU_TANH, "the cpu backend over host copies"},
    {AWQ_OP_SOFTCAP, 0, "the cpu backend over host copies"},
    {AWQ_OP_ATTENTION_SOFTCAP, 0, "the cpu backend over host copies"},
    {AWQ_OP_MATMUL_Q8, 0, "the lm_head kept as stored"},
    {AWQ_OP_REDUCE, AWQ_REDUCE_MEAN_ABS_COLS, "the cpu backend over host copies"},
    {AWQ_OP_REDUCE, AWQ_REDUCE_WMEAN_GROUPS, "the cpu backend over host copies"},
    {AWQ_OP_REDUCE, AWQ_REDUCE_MAX_ABS_COLS, "the cpu backend over host copies"},
    {AWQ_OP_SCALAR, AWQ_SCALAR_SSE, "the cpu backend over host copies"},
    {AWQ_OP_SCALAR, AWQ_SCALAR_DOT, "the cpu backend over host copies"},
    {AWQ_OP_CLIP_SEARCH, 0, "the cpu backend over host copies"},
    {AWQ_OP_GRAM, 0, "the cpu backend over host copies"},
};

awq_status awq_runtime_device_fallbacks(const awq_runtime *rt, int32_t i, char *buf, size_t cap) {
    if (!rt || !buf || cap == 0 || i < 0) return AWQ_ERR_INVALID_ARG;
    buf[0] = '\0';
    for (int b = 0; b < rt->n_backends; b++) {
        const awq_backend_ops *o = rt->backends[b].ops;
        int32_t nd = o->device_count();
        if (i >= nd) {
            i -= nd;
            continue;
        }
        size_t len = 0;
        for (size_t k = 0; k < sizeof opt_cases / sizeof opt_cases[0]; k++) {
            const opt_case *c = &opt_cases[k];
            if (awq_backend_can(o, i, c->op, c->param)) continue;
            char label[64];
            op_label(label, sizeof label, c->op, c->param);
            int n = snprintf(buf + len, cap - len, "%s%s -> %s", len ? "; " : "", label, c->instead);
            if (n < 0 || (size_t)n >= cap - len) return AWQ_ERR_INVALID_ARG; /* buf too small */
            len += (size_t)n;
        }
        return AWQ_OK;
    }
    return AWQ_ERR_INVALID_ARG;
}

/* ---- the plan: what a model on this device needs, and what falls back ------------------------ */

static void note(awq_runtime *rt, const awq_device *dev, awq_op op, int32_t param, const char *why) {
    char label[64];
    op_label(label, sizeof label, op, param);
    const opt_case *c = NULL;
    for (size_t k = 0; k < sizeof opt_cases / sizeof opt_cases[0]; k++)
        if (opt_cases[k].op == op && opt_cases[k].param == param) c = &opt_cases[k];
    AWQ_LOG_WARN(rt, "%s cannot run %s (%s): using %s instead", dev->label, label, why,
                 c ? c->instead : "a fallback");
}

void awq_device_caps_fill(awq_device *dev) {
    const awq_backend_ops *o = dev->ops;
    int32_t d = dev->index;
    memset(&dev->can, 0, sizeof dev->can);
    dev->can.multi = awq_backend_can(o, d, AWQ_OP_MATMUL_W4A16_MULTI, 0);
    dev->can.prepare = awq_backend_can(o, d, AWQ_OP_WEIGHT_PREPARE, 0);
    dev->can.graph = awq_backend_can(o, d, AWQ_OP_STEP_GRAPH, 0);
    dev->can.act_mul[AWQ_ACT_SILU] = awq_backend_can(o, d, AWQ_OP_ACT_MUL, AWQ_ACT_SILU);
    dev->can.act_mul[AWQ_ACT_GELU_TANH] = awq_backend_can(o, d, AWQ_OP_ACT_MUL, AWQ_ACT_GELU_TANH);
    dev->can.softcap = awq_backend_can(o, d, AWQ_OP_SOFTCAP, 0);
    dev->can.attention_softcap = awq_backend_can(o, d, AWQ_OP_ATTENTION_SOFTCAP, 0);
    dev->can.reduce[0] = awq_backend_can(o, d, AWQ_OP_REDUCE, AWQ_REDUCE_MEAN_ABS_COLS);
    dev->can.reduce[1] = awq_backend_can(o, d, AWQ_OP_REDUCE, AWQ_REDUCE_WMEAN_GROUPS);
    dev->can.reduce[2] = awq_backend_can(o, d, AWQ_OP_REDUCE, AWQ_REDUCE_MAX_ABS_COLS);
    dev->can.scalar[0] = awq_backend_can(o, d, AWQ_OP_SCALAR, AWQ_SCALAR_SSE);
    dev->can.scalar[1] = awq_backend_can(o, d, AWQ_OP_SCALAR, AWQ_SCALAR_DOT);
    dev->can.clip_search = awq_backend_can(o, d, AWQ_OP_CLIP_SEARCH, 0);
    dev->can.gram = awq_backend_can(o, d, AWQ_OP_GRAM, 0);
}

awq_status awq_device_plan(awq_runtime *rt, awq_device *dev, const awq_model_config *c, bool quantize,
                           bool *lm_head_q8) {
    const awq_backend_ops *o = dev->ops;
    int32_t d = dev->index;
    const char *model = c->model_type;
    bool host = false;
    if (c->act != AWQ_ACT_SILU && !dev->can.act_mul[c->act]) {
        note(rt, dev, AWQ_OP_ACT_MUL, c->act, model);
        host = true;
    }
    if (c->final_softcap > 0 && !dev->can.softcap) {
        note(rt, dev, AWQ_OP_SOFTCAP, 0, "final logit soft-capping");
        host = true;
    }
    if (c->attn_softcap > 0 && !dev->can.attention_softcap) {
        note(rt, dev, AWQ_OP_ATTENTION_SOFTCAP, 0, "attention logit soft-capping");
        host = true;
    }
    if (lm_head_q8 && *lm_head_q8 && !awq_backend_can(o, d, AWQ_OP_MATMUL_Q8, 0)) {
        note(rt, dev, AWQ_OP_MATMUL_Q8, 0, "lm_head q8 was asked for");
        *lm_head_q8 = false;
    }
    if (quantize) {
        static const awq_op qops[] = {AWQ_OP_REDUCE, AWQ_OP_SCALAR, AWQ_OP_CLIP_SEARCH, AWQ_OP_GRAM};
        for (size_t k = 0; k < sizeof opt_cases / sizeof opt_cases[0]; k++)
            for (size_t j = 0; j < sizeof qops / sizeof qops[0]; j++)
                if (opt_cases[k].op == qops[j] && !awq_backend_can(o, d, opt_cases[k].op, opt_cases[k].param))
                    note(rt, dev, opt_cases[k].op, opt_cases[k].param, "the AWQ search");
    }
    if (host && !dev->host_ctx) {
        const awq_backend_ops *cpu = awq_backend_cpu_ops();
        awq_backend_config cfg = awq_runtime_backend_config(rt, 0);
        awq_status st = cpu->create(0, &cfg, &dev->host_ctx);
        if (st != AWQ_OK)
            return awq_set_error(rt, st, "%s: cannot create the host (cpu) instance for fallbacks",
                                 dev->label);
    }
    return AWQ_OK;
}

/* ---- host fallbacks: the built-in cpu kernels over host copies -------------------------------- */

/* Bytes from t->offs to the end of t's last element. */
static size_t extent(const awq_tensor *t) {
    size_t es = awq_dtype_size_inline(t->type), n = es;
    for (int i = 0; i < t->ndim; i++) {
        if (t->ne[i] == 0) return 0;
        n += (size_t)(t->ne[i] - 1) * (size_t)t->nb[i];
    }
    return n;
}

typedef struct host_copy {
    awq_tensor view; /* the same view over the host copy */
    void *mem;
    size_t n;
} host_copy;

static awq_status to_host(const awq_device *dev, const awq_tensor *t, host_copy *h) {
    h->n = extent(t);
    h->mem = malloc(h->n ? h->n : 1);
    if (!h->mem) return AWQ_ERR_OUT_OF_MEMORY;
    h->view = *t;
    h->view.data = h->mem;
    h->view.offs = 0;
    return h->n ? dev->ops->download(dev->ctx, h->mem, t->data, t->offs, h->n) : AWQ_OK;
}

static awq_status from_host(const awq_device *dev, const awq_tensor *t, const host_copy *h) {
    return h->n ? dev->ops->upload(dev->ctx, t->data, t->offs, h->mem, h->n) : AWQ_OK;
}

static awq_status no_host(const awq_device *dev) {
    (void)dev;
    return AWQ_ERR_UNSUPPORTED; /* awq_device_plan did not run: a bug in the caller */
}

awq_status awq_fallback_act_mul(const awq_device *dev, awq_tensor *y, const awq_tensor *gate,
                                const awq_tensor *up, awq_act act) {
    if (!dev->host_ctx) return no_host(dev);
    host_copy hy = {0}, hg = {0}, hu = {0};
    awq_status st = to_host(dev, y, &hy);
    if (st == AWQ_OK) st = to_host(dev, gate, &hg);
    if (st == AWQ_OK) st = to_host(dev, up, &hu);
    if (st == AWQ_OK) st = awq_backend_cpu_ops()->act_mul(dev->host_ctx, &hy.view, &hg.view, &hu.view, act);
    if (st == AWQ_OK) st = from_host(dev, y, &hy);
    free(hy.mem);
    free(hg.mem);
    free(hu.mem);
    return st;
}

awq_status awq_fallback_softcap(const awq_device *dev, awq_tensor *x, float cap) {
    if (!dev->host_ctx) return no_host(dev);
    host_copy hx = {0};
    awq_status st = to_host(dev, x, &hx);
    if (st == AWQ_OK) st = awq_backend_cpu_ops()->softcap(dev->host_ctx, &hx.view, cap);
    if (st == AWQ_OK) st = from_host(dev, x, &hx);
    free(hx.mem);
    return st;
}

awq_status awq_fallback_attention_softcap(const awq_device *dev, awq_tensor *out, const awq_tensor *q,
                                          const awq_tensor *k, const awq_tensor *v, int32_t n_past,
                                          float scale, int32_t window, float cap) {
    if (!dev->host_ctx) return no_host(dev);
    host_copy ho = {0}, hq = {0}, hk = {0}, hv = {0};
    awq_status st = to_host(dev, out, &ho);
    if (st == AWQ_OK) st = to_host(dev, q, &hq);
    if (st == AWQ_OK) st = to_host(dev, k, &hk);
    if (st == AWQ_OK) st = to_host(dev, v, &hv);
    if (st == AWQ_OK)
        st = awq_backend_cpu_ops()->attention_softcap(dev->host_ctx, &ho.view, &hq.view, &hk.view, &hv.view,
                                                      n_past, scale, window, cap);
    if (st == AWQ_OK) st = from_host(dev, out, &ho);
    free(ho.mem);
    free(hq.mem);
    free(hk.mem);
    free(hv.mem);
    return st;
}
