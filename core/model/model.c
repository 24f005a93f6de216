/*
 * model.c - loading a Hugging Face-layout directory onto a device: config, tensor-by-tensor
 * validation (names, shapes, dtypes) with messages naming the tensor, upload, and the
 * linear-layer dispatch (dense matmul or W4A16).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "awq_pack.h"
#include "model.h"
#include "pack.h"
#include "safetensors.h"

/* ---- buffers and views ----------------------------------------------------------------- */

awq_status awq_buflist_alloc(awq_runtime *rt, const awq_device *dev, awq_buflist *list, size_t nbytes,
                             void **buf) {
    if (list->n == list->cap) {
        int32_t cap = list->cap ? list->cap * 2 : 64;
        void **b = awq_realloc(list->bufs, (size_t)cap * sizeof *b);
        if (!b) return awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "out of host memory");
        list->bufs = b;
        list->cap = cap;
    }
    awq_clear_error(rt);
    awq_status st = dev->ops->buffer_alloc(dev->ctx, nbytes, buf);
    if (st != AWQ_OK) {
        if (!awq_runtime_last_error(rt)[0])
            awq_set_error(rt, st, "%s: cannot allocate %zu bytes", dev->label, nbytes);
        return st;
    }
    list->bufs[list->n++] = *buf;
    return AWQ_OK;
}

void awq_buflist_free(const awq_device *dev, awq_buflist *list) {
    if (dev && dev->ops && dev->ctx)
        for (int32_t i = 0; i < list->n; i++) dev->ops->buffer_free(dev->ctx, list->bufs[i]);
    awq_free(list->bufs);
    memset(list, 0, sizeof *list);
}

awq_status awq_tensor_alloc(awq_runtime *rt, const awq_device *dev, awq_buflist *list, awq_dtype type,
                            int ndim, const int64_t *ne, awq_tensor *out) {
    uint64_t n = awq_dtype_size(type);
    for (int i = 0; i < ndim; i++)
        if (ne[i] < 0 || awq_mul_overflow_u64(n, (uint64_t)ne[i], &n))
            return awq_set_error(rt, AWQ_ERR_INVALID_ARG, "tensor size overflow");
    void *buf = NULL;
    awq_status st = awq_buflist_alloc(rt, dev, list, (size_t)(n ? n : 1), &buf);
    if (st != AWQ_OK) return st;
    *out = awq_tensor_make(type, buf, 0, ndim, ne);
    return AWQ_OK;
}

awq_tensor awq_view_rows(const awq_tensor *t, int64_t r0, int64_t n) {
    awq_tensor v = *t;
    int64_t cols = awq_tensor_cols(t);
    int64_t stride = awq_tensor_row_stride(t);
    v.ndim = 2;
    v.ne[0] = n;
    v.ne[1] = cols;
    v.nb[0] = stride;
    v.nb[1] = (int64_t)awq_dtype_size(t->type);
    v.ne[2] = v.ne[3] = 1;
    v.nb[2] = v.nb[3] = v.nb[1];
    v.offs = t->offs + (size_t)(r0 * stride);
    return v;
}

awq_tensor awq_view_reshape(const awq_tensor *t, int ndim, const int64_t *ne) {
    return awq_tensor_make(t->type, t->data, t->offs, ndim, ne);
}

awq_status awq_linear_forward(const awq_device *dev, awq_tensor *y, const awq_tensor *x,
                              const awq_linear *l) {
    if (l->quantized) return dev->ops->matmul_w4a16(dev->ctx, y, x, &l->q);
    if (l->q8) return dev->ops->matmul_q8(dev->ctx, y, x, &l->q8_qs, &l->q8_d);
    return dev->ops->matmul(dev->ctx, y, x, &l->w, l->bias.data ? &l->bias : NULL);
}

/* ---- loading --------------------------------------------------------------------------- */

typedef struct loader {
    awq_model *m;
    awq_safetensors *st;
    awq_progress_fn progress;
    void *progress_user;
    int32_t done, total;
    awq_lm_head_format lm_head; /* awq_model_params.lm_head */
} loader;

static bool is_float(awq_dtype t) { return t == AWQ_DTYPE_F32 || t == AWQ_DTYPE_F16 || t == AWQ_DTYPE_BF16; }

static void shape_str(char *buf, size_t cap, int ndim, const int64_t *ne) {
    size_t o = (size_t)snprintf(buf, cap, "(");
    for (int i = 0; i < ndim && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, i ? ", %lld" : "%lld", (long long)ne[i]);
    if (ndim == 1 && o < cap) o += (size_t)snprintf(buf + o, cap - o, ",");
    if (o < cap) snprintf(buf + o, cap - o, ")");
}

/* Finds name, checks its shape (and dtype class), uploads it. want_type: a concrete dtype, or
 * AWQ_DTYPE_COUNT_ for "any float". required=false: absent -> out->data = NULL, AWQ_OK. */
static awq_status upload(loader *L, const char *name, awq_dtype want_type, int ndim, const int64_t *ne,
                         bool required, awq_tensor *out) {
    awq_model *m = L->m;
    awq_runtime *rt = m->rt;
    memset(out, 0, sizeof *out);
    const awq_st_tensor *t = awq_st_find(L->st, name);
    if (!t) {
        if (!required) return AWQ_OK;
        return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: tensor '%s' is missing", m->dir, name);
    }
    bool dt_ok = want_type == AWQ_DTYPE_COUNT_ ? is_float(t->dtype) : t->dtype == want_type;
    bool shape_ok = t->ndim == ndim;
    for (int i = 0; shape_ok && i < ndim; i++) shape_ok = t->shape[i] == ne[i];
    if (!dt_ok || !shape_ok) {
        char want[96], got[96];
        shape_str(want, sizeof want, ndim, ne);
        shape_str(got, sizeof got, t->ndim, t->shape);
        return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: %s: expected %s %s, got %s %s",
                             awq_st_file_path(L->st, t->file), name, want,
                             want_type == AWQ_DTYPE_COUNT_ ? "F16/BF16/F32" : awq_dtype_name(want_type), got,
                             awq_dtype_name(t->dtype));
    }
    awq_status st = awq_tensor_alloc(rt, &m->dev, &m->buffers, t->dtype, ndim, ne, out);
    if (st != AWQ_OK) return st;
    st = m->dev.ops->upload(m->dev.ctx, out->data, 0, t->data, t->nbytes);
    if (st != AWQ_OK) return awq_set_error(rt, st, "%s: upload of %s failed", m->dev.label, name);
    awq_st_release(L->st, t);
    m->weight_bytes += (int64_t)t->nbytes;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= ne[i];
    m->n_params += t->dtype == AWQ_DTYPE_I32 && want_type == AWQ_DTYPE_I32 ? n * 8 : n;
    return AWQ_OK;
}

void awq_norm_effective(const awq_model_config *c, float *w, int64_t n) {
    if (c->norm_plus_one)
        for (int64_t i = 0; i < n; i++) w[i] += 1.0f;
}

/* Uploads F32 host data as a new (n,) tensor. */
static awq_status upload_f32(awq_model *m, const float *h, int64_t n, awq_tensor *out) {
    awq_status st = awq_tensor_alloc(m->rt, &m->dev, &m->buffers, AWQ_DTYPE_F32, 1, &n, out);
    if (st == AWQ_OK) st = m->dev.ops->upload(m->dev.ctx, out->data, 0, h, (size_t)n * sizeof *h);
    return st;
}

/* A norm weight (n,): uploaded unchanged, or as the F32 1 + w when the family applies (1 + w). */
static awq_status upload_norm(loader *L, const char *name, int64_t n, bool required, awq_tensor *out) {
    awq_model *m = L->m;
    if (!m->cfg.norm_plus_one) return upload(L, name, AWQ_DTYPE_COUNT_, 1, &n, required, out);
    memset(out, 0, sizeof *out);
    const awq_st_tensor *t = awq_st_find(L->st, name);
    if (!t) {
        if (!required) return AWQ_OK;
        return awq_set_error(m->rt, AWQ_ERR_FORMAT, "%s: tensor '%s' is missing", m->dir, name);
    }
    if (t->ndim != 1 || t->shape[0] != n || !is_float(t->dtype))
        return awq_set_error(m->rt, AWQ_ERR_FORMAT, "%s: %s: expected (%lld,) F16/BF16/F32",
                             awq_st_file_path(L->st, t->file), name, (long long)n);
    float *h = awq_malloc((size_t)n * sizeof *h);
    if (!h) return awq_set_error(m->rt, AWQ_ERR_OUT_OF_MEMORY, "out of host memory");
    awq_status st = awq_st_read_f32(m->rt, L->st, t, h);
    if (st == AWQ_OK) {
        awq_norm_effective(&m->cfg, h, n);
        st = upload_f32(m, h, n, out);
    }
    awq_free(h);
    if (st != AWQ_OK) return st;
    awq_st_release(L->st, t);
    m->weight_bytes += (int64_t)t->nbytes;
    m->n_params += n;
    return AWQ_OK;
}

static awq_status load_linear(loader *L, const char *prefix, int64_t out_f, int64_t in_f, bool has_bias,
                              awq_linear *l) {
    awq_model *m = L->m;
    awq_runtime *rt = m->rt;
    char name[256];
    memset(l, 0, sizeof *l);
    l->in = in_f;
    l->out = out_f;
    snprintf(name, sizeof name, "%s.qweight", prefix);
    bool quant = awq_st_find(L->st, name) != NULL;
    awq_status st;
    if (quant) {
        if (!m->cfg.quantized)
            return awq_set_error(rt, AWQ_ERR_FORMAT,
                                 "%s: %s.qweight present but config.json has no quantization_config", m->dir,
                                 prefix);
        int64_t gs = m->cfg.q_group_size > 0 ? m->cfg.q_group_size : in_f;
        if (in_f % gs)
            return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: in_features %lld not divisible by group_size %lld",
                                 prefix, (long long)in_f, (long long)gs);
        if (out_f % 8)
            return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: out_features %lld not a multiple of 8", prefix,
                                 (long long)out_f);
        int64_t G = in_f / gs;
        l->quantized = true;
        l->q.in = in_f;
        l->q.out = out_f;
        l->q.group_size = gs;
        if (!strcmp(m->cfg.q_version, "gemv")) {
            st = awq_model_load_gemv_linear(rt, &m->dev, &m->buffers, L->st, prefix, l);
            if (st != AWQ_OK) return st;
        } else {
            int64_t qw[2] = {in_f, out_f / 8}, qz[2] = {G, out_f / 8}, sc[2] = {G, out_f};
            if ((st = upload(L, name, AWQ_DTYPE_I32, 2, qw, true, &l->q.qweight))) return st;
            snprintf(name, sizeof name, "%s.qzeros", prefix);
            if ((st = upload(L, name, AWQ_DTYPE_I32, 2, qz, true, &l->q.qzeros))) return st;
            snprintf(name, sizeof name, "%s.scales", prefix);
            if ((st = upload(L, name, AWQ_DTYPE_F16, 2, sc, true, &l->q.scales))) return st;
        }
    } else {
        int64_t ne[2] = {out_f, in_f};
        snprintf(name, sizeof name, "%s.weight", prefix);
        if ((st = upload(L, name, AWQ_DTYPE_COUNT_, 2, ne, true, &l->w))) return st;
    }
    snprintf(name, sizeof name, "%s.bias", prefix);
    if ((st = upload(L, name, AWQ_DTYPE_COUNT_, 1, &out_f, has_bias, &l->bias))) return st;
    if (quant) l->q.bias = l->bias;
    if (quant && m->dev.can.prepare) {
        st = m->dev.ops->weight_prepare(m->dev.ctx, &l->q);
        if (st != AWQ_OK) return awq_set_error(rt, st, "%s: weight_prepare failed", prefix);
    }
    return AWQ_OK;
}

/* Columns [c0, c0 + nc) of a row-major (rows, cols) tensor of es-byte elements, uploaded as a
 * new contiguous (rows, nc) tensor of dtype. */
static awq_status upload_cols(loader *L, const awq_st_tensor *t, awq_dtype dtype, int64_t rows, int64_t cols,
                              int64_t c0, int64_t nc, awq_tensor *out) {
    awq_model *m = L->m;
    size_t es = awq_dtype_size(dtype);
    char *h = awq_malloc((size_t)(rows * nc) * es);
    if (!h) return awq_set_error(m->rt, AWQ_ERR_OUT_OF_MEMORY, "out of host memory");
    for (int64_t r = 0; r < rows; r++)
        memcpy(h + (size_t)(r * nc) * es, (const char *)t->data + (size_t)(r * cols + c0) * es,
               (size_t)nc * es);
    int64_t ne[2] = {rows, nc};
    awq_status st = awq_tensor_alloc(m->rt, &m->dev, &m->buffers, dtype, 2, ne, out);
    if (st == AWQ_OK) st = m->dev.ops->upload(m->dev.ctx, out->data, 0, h, (size_t)(rows * nc) * es);
    awq_free(h);
    m->weight_bytes += (int64_t)((size_t)(rows * nc) * es);
    return st;
}

/* A fused linear of the checkpoint (Phi-3 qkv_proj = q | k | v rows, gate_up_proj = gate | up)
 * loaded as its parts: dense rows, or the matching columns of qweight/qzeros/scales. */
static awq_status load_fused(loader *L, const char *prefix, int n, const int64_t *outs, int64_t in_f,
                             awq_linear *const *parts) {
    awq_model *m = L->m;
    awq_runtime *rt = m->rt;
    char name[256];
    int64_t tot = 0;
    for (int i = 0; i < n; i++) tot += outs[i];
    snprintf(name, sizeof name, "%s.bias", prefix);
    if (awq_st_find(L->st, name))
        return awq_set_error(rt, AWQ_ERR_UNSUPPORTED, "%s: a bias on a fused linear is not supported", name);
    snprintf(name, sizeof name, "%s.qweight", prefix);
    const awq_st_tensor *qw = awq_st_find(L->st, name);
    awq_status st;
    if (!qw) {
        snprintf(name, sizeof name, "%s.weight", prefix);
        const awq_st_tensor *t = awq_st_find(L->st, name);
        if (!t) return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: tensor '%s' is missing", m->dir, name);
        if (t->ndim != 2 || t->shape[0] != tot || t->shape[1] != in_f || !is_float(t->dtype))
            return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: %s: expected (%lld, %lld) F16/BF16/F32",
                                 awq_st_file_path(L->st, t->file), name, (long long)tot, (long long)in_f);
        int64_t r0 = 0;
        for (int i = 0; i < n; i++) {
            memset(parts[i], 0, sizeof *parts[i]);
            parts[i]->in = in_f;
            parts[i]->out = outs[i];
            /* rows of a row-major tensor are columns [r0 * in, ...) of its (1, tot * in) view */
            if ((st = upload_cols(L, t, t->dtype, 1, tot * in_f, r0 * in_f, outs[i] * in_f, &parts[i]->w)))
                return st;
            parts[i]->w = awq_tensor_2d(t->dtype, parts[i]->w.data, 0, outs[i], in_f);
            m->n_params += outs[i] * in_f;
            r0 += outs[i];
        }
        awq_st_release(L->st, t);
        return AWQ_OK;
    }
    if (!m->cfg.quantized)
        return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: %s present but config.json has no quantization_config",
                             m->dir, name);
    if (strcmp(m->cfg.q_version, "gemm"))
        return awq_set_error(rt, AWQ_ERR_UNSUPPORTED,
                             "%s: fused linears in the GEMV layout are not supported", prefix);
    int64_t gs = m->cfg.q_group_size > 0 ? m->cfg.q_group_size : in_f, G = in_f / gs;
    const awq_st_tensor *qz, *sc;
    snprintf(name, sizeof name, "%s.qzeros", prefix);
    qz = awq_st_find(L->st, name);
    snprintf(name, sizeof name, "%s.scales", prefix);
    sc = awq_st_find(L->st, name);
    if (in_f % gs || tot % 8 || !qz || !sc || qw->dtype != AWQ_DTYPE_I32 || qz->dtype != AWQ_DTYPE_I32 ||
        sc->dtype != AWQ_DTYPE_F16 || qw->ndim != 2 || qw->shape[0] != in_f || qw->shape[1] != tot / 8 ||
        qz->ndim != 2 || qz->shape[0] != G || qz->shape[1] != tot / 8 || sc->ndim != 2 || sc->shape[0] != G ||
        sc->shape[1] != tot)
        return awq_set_error(rt, AWQ_ERR_FORMAT,
                             "%s: expected qweight (%lld, %lld) I32, qzeros (%lld, %lld) "
                             "I32, scales (%lld, %lld) F16",
                             prefix, (long long)in_f, (long long)(tot / 8), (long long)G,
                             (long long)(tot / 8), (long long)G, (long long)tot);
    int64_t c0 = 0;
    for (int i = 0; i < n; i++) {
        awq_linear *l = parts[i];
        memset(l, 0, sizeof *l);
        l->in = l->q.in = in_f;
        l->out = l->q.out = outs[i];
        l->q.group_size = gs;
        l->quantized = true;
        if (outs[i] % 8)
            return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: part %d has %lld outputs, not a multiple of 8",
                                 prefix, i, (long long)outs[i]);
        if ((st = upload_cols(L, qw, AWQ_DTYPE_I32, in_f, tot / 8, c0 / 8, outs[i] / 8, &l->q.qweight)) ||
            (st = upload_cols(L, qz, AWQ_DTYPE_I32, G, tot / 8, c0 / 8, outs[i] / 8, &l->q.qzeros)) ||
            (st = upload_cols(L, sc, AWQ_DTYPE_F16, G, tot, c0, outs[i], &l->q.scales)))
            return st;
        m->n_params += outs[i] * in_f;
        if (m->dev.can.prepare && (st = m->dev.ops->weight_prepare(m->dev.ctx, &l->q)))
            return awq_set_error(rt, st, "%s: weight_prepare failed", prefix);
        c0 += outs[i];
    }
    return AWQ_OK;
}

/* AWQ_LM_HEAD_Q8: the output projection (lm_head.weight, or the tied embedding) re-quantized
 * row by row to Q8_0 (awq_q8_0_quantize_row) and uploaded in chunks as m->lm_head.q8_qs (V, d)
 * I8 and q8_d (V, d/32) F16; the floating-point lm_head is not uploaded. */
static awq_status load_lm_head_q8(loader *L, int64_t V, int64_t d) {
    awq_model *m = L->m;
    awq_runtime *rt = m->rt;
    awq_linear *l = &m->lm_head;
    memset(l, 0, sizeof *l);
    l->in = d;
    l->out = V;
    if (awq_st_find(L->st, "lm_head.qweight"))
        return awq_set_error(rt, AWQ_ERR_UNSUPPORTED,
                             "%s: the lm_head is 4-bit already; lm_head q8 re-quantizes a floating-point "
                             "lm_head only",
                             m->dir);
    if (d % 32)
        return awq_set_error(
            rt, AWQ_ERR_UNSUPPORTED,
            "%s: lm_head q8 needs hidden_size to be a multiple of 32 (Q8_0 blocks), not %lld", m->dir,
            (long long)d);
    bool own = awq_st_find(L->st, "lm_head.weight") != NULL;
    const char *name = own ? "lm_head.weight" : "model.embed_tokens.weight";
    const awq_st_tensor *t = awq_st_find(L->st, name);
    if (!t) return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: tensor '%s' is missing", m->dir, name);
    if (t->ndim != 2 || t->shape[0] != V || t->shape[1] != d || !is_float(t->dtype))
        return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: %s: expected (%lld, %lld) F16/BF16/F32",
                             awq_st_file_path(L->st, t->file), name, (long long)V, (long long)d);
    int64_t nb = d / 32, neq[2] = {V, d}, ned[2] = {V, nb};
    awq_status st;
    if ((st = awq_tensor_alloc(rt, &m->dev, &m->buffers, AWQ_DTYPE_I8, 2, neq, &l->q8_qs)) ||
        (st = awq_tensor_alloc(rt, &m->dev, &m->buffers, AWQ_DTYPE_F16, 2, ned, &l->q8_d)))
        return st;
    enum { CHUNK = 512 }; /* rows quantized and uploaded at a time */
    float *row = awq_malloc((size_t)d * sizeof *row);
    int8_t *qs = awq_malloc((size_t)(CHUNK * d));
    uint16_t *dd = awq_malloc((size_t)(CHUNK * nb) * sizeof *dd);
    if (!row || !qs || !dd) {
        awq_free(row);
        awq_free(qs);
        awq_free(dd);
        return awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    size_t es = awq_dtype_size(t->dtype);
    for (int64_t r0 = 0; r0 < V && st == AWQ_OK; r0 += CHUNK) {
        int64_t nr = V - r0 < CHUNK ? V - r0 : CHUNK;
        for (int64_t r = 0; r < nr; r++) {
            awq_row_to_f32(row, (const char *)t->data + (size_t)((r0 + r) * d) * es, t->dtype, d);
            awq_q8_0_quantize_row(row, d, qs + r * d, dd + r * nb);
        }
        st = m->dev.ops->upload(m->dev.ctx, l->q8_qs.data, (size_t)(r0 * d), qs, (size_t)(nr * d));
        if (st == AWQ_OK)
            st = m->dev.ops->upload(m->dev.ctx, l->q8_d.data, (size_t)(r0 * nb) * sizeof *dd, dd,
                                    (size_t)(nr * nb) * sizeof *dd);
        if (st != AWQ_OK) awq_set_error(rt, st, "%s: upload of the 8-bit lm_head failed", m->dev.label);
    }
    awq_free(row);
    awq_free(qs);
    awq_free(dd);
    if (st != AWQ_OK) return st;
    awq_st_release(L->st, t);
    l->q8 = true;
    m->weight_bytes += V * d + V * nb * (int64_t)sizeof *dd;
    if (own) m->n_params += V * d;
    return AWQ_OK;
}

/* Checkpoint names of a mixture-of-experts block's parts (layer-relative): the router, expert
 * e's gate/up/down (printf format with %d), the shared expert and its gate (Qwen2-MoE). */
const char *awq_moe_router_name(const awq_model_config *c) {
    return c->moe_mixtral_names ? "block_sparse_moe.gate" : "mlp.gate";
}

void awq_moe_expert_name(const awq_model_config *c, int32_t e, int part, char *buf, size_t cap) {
    static const char *const mixtral[3] = {"w1", "w3", "w2"}; /* gate, up, down */
    static const char *const qwen[3] = {"gate_proj", "up_proj", "down_proj"};
    if (c->moe_mixtral_names)
        snprintf(buf, cap, "block_sparse_moe.experts.%d.%s", e, mixtral[part]);
    else
        snprintf(buf, cap, "mlp.experts.%d.%s", e, qwen[part]);
}

const char *awq_moe_shared_name(int part) {
    static const char *const n[4] = {"mlp.shared_expert.gate_proj", "mlp.shared_expert.up_proj",
                                     "mlp.shared_expert.down_proj", "mlp.shared_expert_gate"};
    return n[part];
}

/* Layer i's mixture-of-experts block: the router (kept as stored: the quantizer never converts
 * it), n_experts gated MLPs of moe_ff, and Qwen2-MoE's shared expert with its (1, d) gate. */
static awq_status load_moe(loader *L, int32_t i, awq_layer_weights *w) {
    awq_model *m = L->m;
    const awq_model_config *c = &m->cfg;
    int64_t d = c->d_model, E = c->n_experts, ff = c->moe_ff;
    char p[192], part[128];
    awq_status st;
    w->experts = awq_calloc((size_t)(3 * E), sizeof *w->experts);
    if (!w->experts) return awq_set_error(m->rt, AWQ_ERR_OUT_OF_MEMORY, "out of host memory");
    w->n_experts = (int32_t)E;
    snprintf(p, sizeof p, "model.layers.%d.%s", i, awq_moe_router_name(c));
    if ((st = load_linear(L, p, E, d, false, &w->router))) return st;
    for (int32_t e = 0; e < E; e++)
        for (int k = 0; k < 3; k++) {
            awq_moe_expert_name(c, e, k, part, sizeof part);
            snprintf(p, sizeof p, "model.layers.%d.%s", i, part);
            if ((st = load_linear(L, p, k == 2 ? d : ff, k == 2 ? ff : d, false, &w->experts[3 * e + k])))
                return st;
        }
    if (c->shared_ff > 0) {
        int64_t sf = c->shared_ff;
        for (int k = 0; k < 3; k++) {
            snprintf(p, sizeof p, "model.layers.%d.%s", i, awq_moe_shared_name(k));
            if ((st = load_linear(L, p, k == 2 ? d : sf, k == 2 ? sf : d, false, &w->shared[k]))) return st;
        }
        snprintf(p, sizeof p, "model.layers.%d.%s", i, awq_moe_shared_name(3));
        if ((st = load_linear(L, p, 1, d, false, &w->shared_gate))) return st;
    }
    return AWQ_OK;
}

static bool report(loader *L, const char *what) {
    L->done++;
    if (!L->progress) return true;
    return L->progress((float)L->done / (float)L->total, what, L->progress_user);
}

static awq_status load_weights(loader *L) {
    awq_model *m = L->m;
    const awq_model_config *c = &m->cfg;
    awq_runtime *rt = m->rt;
    int64_t d = c->d_model, hd = c->head_dim, qd = (int64_t)c->n_heads * hd,
            kvd = (int64_t)c->n_kv_heads * hd, ff = c->d_ff, V = c->vocab_size;
    int64_t emb[2] = {V, d};
    awq_status st;
    if ((st = upload(L, "model.embed_tokens.weight", AWQ_DTYPE_COUNT_, 2, emb, true, &m->embed))) return st;
    if ((st = upload_norm(L, "model.norm.weight", d, true, &m->final_norm))) return st;
    bool has_head = awq_st_find(L->st, "lm_head.weight") || awq_st_find(L->st, "lm_head.qweight");
    if (L->lm_head == AWQ_LM_HEAD_Q8 && (has_head || c->tie_embeddings)) {
        if ((st = load_lm_head_q8(L, V, d))) return st;
    } else if (has_head) {
        if ((st = load_linear(L, "lm_head", V, d, false, &m->lm_head))) return st;
    } else if (c->tie_embeddings) {
        memset(&m->lm_head, 0, sizeof m->lm_head);
        m->lm_head.in = d;
        m->lm_head.out = V;
        m->lm_head.w = m->embed;
    } else {
        return awq_set_error(rt, AWQ_ERR_FORMAT,
                             "%s: tensor 'lm_head.weight' is missing and tie_word_embeddings is false",
                             m->dir);
    }
    m->layers = awq_calloc((size_t)c->n_layers, sizeof *m->layers);
    if (!m->layers) return awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "out of host memory");
    for (int32_t i = 0; i < c->n_layers; i++) {
        awq_layer_weights *w = &m->layers[i];
        char p[128], n[192];
#define LP(name) (snprintf(n, sizeof n, "model.layers.%d.%s", i, name), n)
        awq_norm_names nn = awq_config_norm_names(c);
        if ((st = upload_norm(L, LP(nn.attn), d, true, &w->attn_norm)) ||
            (st = upload_norm(L, LP(nn.ffn), d, true, &w->ffn_norm)))
            return st;
        if (c->sandwich_norms &&
            ((st = upload_norm(L, LP(nn.post_attn), d, true, &w->post_attn_norm)) ||
             (st = upload_norm(L, LP(nn.post_ffn), d, true, &w->post_ffn_norm))))
            return st;
        if (c->qk_norm &&
            ((st = upload_norm(L, LP("self_attn.q_norm.weight"), hd, true, &w->q_norm)) ||
             (st = upload_norm(L, LP("self_attn.k_norm.weight"), hd, true, &w->k_norm))))
            return st;
        w->window = awq_config_layer_window(c, i);
        w->local_rope = awq_config_layer_local_rope(c, i);
#undef LP
#define LIN(field, name, o, in, bias)                     \
    snprintf(p, sizeof p, "model.layers.%d.%s", i, name); \
    if ((st = load_linear(L, p, o, in, bias, &w->field))) return st;
        if (c->fused_qkv) {
            const int64_t outs[3] = {qd, kvd, kvd};
            awq_linear *parts[3] = {&w->q, &w->k, &w->v};
            snprintf(p, sizeof p, "model.layers.%d.self_attn.qkv_proj", i);
            if ((st = load_fused(L, p, 3, outs, d, parts))) return st;
        } else {
            LIN(q, "self_attn.q_proj", qd, d, c->qkv_bias)
            LIN(k, "self_attn.k_proj", kvd, d, c->qkv_bias)
            LIN(v, "self_attn.v_proj", kvd, d, c->qkv_bias)
        }
        LIN(o, "self_attn.o_proj", d, qd, c->o_bias)
        if (awq_config_layer_moe(c, i)) {
            if ((st = load_moe(L, i, w))) return st;
        } else if (c->fused_gate_up) {
            const int64_t outs[2] = {ff, ff};
            awq_linear *parts[2] = {&w->gate, &w->up};
            snprintf(p, sizeof p, "model.layers.%d.mlp.gate_up_proj", i);
            if ((st = load_fused(L, p, 2, outs, d, parts))) return st;
        } else {
            LIN(gate, "mlp.gate_proj", ff, d, c->mlp_bias)
            LIN(up, "mlp.up_proj", ff, d, c->mlp_bias)
        }
        if (!awq_config_layer_moe(c, i)) {
            LIN(down, "mlp.down_proj", d, ff, c->mlp_bias)
        }
#undef LIN
        char stage[64];
        snprintf(stage, sizeof stage, "loading layer %d/%d", i + 1, c->n_layers);
        if (!report(L, stage)) return awq_set_error(rt, AWQ_ERR_CANCELLED, "model load cancelled");
    }
    /* RoPE table. */
    int64_t half = c->rope_dim / 2;
    float *inv = awq_malloc((size_t)half * sizeof *inv);
    if (!inv) return awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "out of host memory");
    awq_config_inv_freq(c, inv);
    st = upload_f32(m, inv, half, &m->inv_freq);
    if (st == AWQ_OK && c->rope_local_theta > 0) {
        awq_config_inv_freq_local(c, inv);
        st = upload_f32(m, inv, half, &m->inv_freq_local);
    }
    if (st == AWQ_OK && c->rope_kind == AWQ_ROPE_LONGROPE) {
        awq_config_inv_freq_long(c, inv);
        st = upload_f32(m, inv, half, &m->inv_freq_long);
    }
    awq_free(inv);
    if (st == AWQ_OK && c->embed_scale != 1.0) {
        float *es = awq_malloc((size_t)d * sizeof *es);
        if (!es) return awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "out of host memory");
        for (int64_t j = 0; j < d; j++) es[j] = (float)c->embed_scale;
        st = upload_f32(m, es, d, &m->embed_scale);
        awq_free(es);
    }
    if (st == AWQ_OK) st = m->dev.ops->synchronize(m->dev.ctx);
    return st;
}

awq_model_params awq_model_params_default(void) {
    awq_model_params p = {.device = "auto",
                          .progress = NULL,
                          .progress_user = NULL,
                          .lm_head = AWQ_LM_HEAD_AS_STORED,
                          .precision = AWQ_PRECISION_FP32,
                          .int8_activations = false};
    return p;
}

awq_status awq_model_load(awq_model **out, awq_runtime *rt, const char *dir, const awq_model_params *params) {
    if (!out || !rt || !dir) return awq_set_error(rt, AWQ_ERR_INVALID_ARG, "awq_model_load: NULL argument");
    *out = NULL;
    awq_model_params p = params ? *params : awq_model_params_default();
    awq_model *m = awq_calloc(1, sizeof *m);
    if (!m) return awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "out of host memory");
    m->rt = rt;
    m->dir = awq_strdup(dir);
    awq_status st = awq_config_load(rt, dir, &m->cfg);
    if (st != AWQ_OK) goto fail;
    loader L = {.m = m,
                .progress = p.progress,
                .progress_user = p.progress_user,
                .total = m->cfg.n_layers,
                .lm_head = p.lm_head};
    if (p.lm_head != AWQ_LM_HEAD_AS_STORED && p.lm_head != AWQ_LM_HEAD_Q8) {
        st = awq_set_error(rt, AWQ_ERR_INVALID_ARG, "awq_model_load: unknown lm_head format %d",
                           (int)p.lm_head);
        goto fail;
    }
    st = awq_st_open(rt, dir, &L.st);
    if (st != AWQ_OK) goto fail;
    int64_t max_ctx = m->cfg.max_pos;
    st = awq_device_open_ex(rt, p.device, max_ctx, p.precision, p.int8_activations, &m->dev);
    bool q8 = p.lm_head == AWQ_LM_HEAD_Q8; /* cleared (and logged) when the device lacks matmul_q8 */
    if (st == AWQ_OK) st = awq_device_plan(rt, &m->dev, &m->cfg, false, &q8);
    if (!q8) L.lm_head = AWQ_LM_HEAD_AS_STORED;
    if (st == AWQ_OK) st = load_weights(&L);
    awq_st_close(L.st);
    if (st != AWQ_OK) goto fail;
    AWQ_LOG_INFO(rt, "loaded %s: %s, %d layers, %s%s, %.1f MiB of weights on %s", dir, m->cfg.model_type,
                 m->cfg.n_layers, m->cfg.quantized ? "AWQ 4-bit" : awq_dtype_name(m->cfg.torch_dtype),
                 m->lm_head.q8 ? ", lm_head Q8_0" : "", (double)m->weight_bytes / (1 << 20), m->dev.label);
    *out = m;
    return AWQ_OK;
fail:
    awq_model_destroy(m);
    return st;
}

void awq_model_destroy(awq_model *m) {
    if (!m) return;
    if (m->dev.ops && m->dev.ctx && m->dev.ops->weight_release && m->layers) {
        for (int32_t i = 0; i < m->cfg.n_layers; i++) {
            awq_linear *ls[7] = {&m->layers[i].q,    &m->layers[i].k,  &m->layers[i].v,   &m->layers[i].o,
                                 &m->layers[i].gate, &m->layers[i].up, &m->layers[i].down};
            for (int j = 0; j < 7; j++)
                if (ls[j]->quantized && ls[j]->q.prepared) m->dev.ops->weight_release(m->dev.ctx, &ls[j]->q);
            awq_layer_weights *w = &m->layers[i];
            for (int32_t j = 0; w->experts && j < 3 * w->n_experts; j++)
                if (w->experts[j].quantized && w->experts[j].q.prepared)
                    m->dev.ops->weight_release(m->dev.ctx, &w->experts[j].q);
            for (int j = 0; j < 3; j++)
                if (w->shared[j].quantized && w->shared[j].q.prepared)
                    m->dev.ops->weight_release(m->dev.ctx, &w->shared[j].q);
            if (w->router.quantized && w->router.q.prepared)
                m->dev.ops->weight_release(m->dev.ctx, &w->router.q);
        }
    }
    for (int32_t i = 0; m->layers && i < m->cfg.n_layers; i++) awq_free(m->layers[i].experts);
    awq_buflist_free(&m->dev, &m->buffers);
    awq_device_close(&m->dev);
    awq_free(m->layers);
    awq_free(m->dir);
    awq_free(m);
}

awq_status awq_model_get_info(const awq_model *m, awq_model_info *out) {
    if (!m || !out) return AWQ_ERR_INVALID_ARG;
    memset(out, 0, sizeof *out);
    const awq_model_config *c = &m->cfg;
    snprintf(out->arch, sizeof out->arch, "%s", c->model_type);
    snprintf(out->device, sizeof out->device, "%s", m->dev.label);
    out->n_layers = c->n_layers;
    out->d_model = c->d_model;
    out->n_heads = c->n_heads;
    out->n_kv_heads = c->n_kv_heads;
    out->head_dim = c->head_dim;
    out->d_ff = c->d_ff;
    out->vocab_size = c->vocab_size;
    out->max_ctx = c->max_pos;
    out->quantized = c->quantized;
    out->group_size = c->quantized ? c->q_group_size : 0;
    out->n_params = m->n_params;
    out->weight_bytes = m->weight_bytes;
    {
        int64_t embed_bytes = m->embed.data ? m->embed.ne[0] * m->embed.nb[0] : 0;
        int64_t row_bytes = m->embed.data ? m->embed.nb[0] : 0;
        /* the lm_head reads the whole embedding when tied (and not re-quantized to q8) */
        bool tied = !m->lm_head.q8 && m->lm_head.w.data && m->lm_head.w.data == m->embed.data;
        out->decode_weight_bytes = m->weight_bytes - (tied ? 0 : embed_bytes) + row_bytes;
        out->kv_bytes_per_pos = 2 * (int64_t)c->n_layers * c->n_kv_heads * c->head_dim * 4;
    }
    return AWQ_OK;
}
