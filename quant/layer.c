/* layer.c - one decoder layer's weights for quantization: host F32 masters + device copies. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model.h"
#include "quant.h"
#include "safetensors.h"

const char *const awq_lin_names[AWQ_LIN_COUNT] = {
    "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
    "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj",
};

const char *awq_lin_ckpt_name(const awq_model_config *c, int l, int64_t *row0) {
    int64_t qd = (int64_t)c->n_heads * c->head_dim, kvd = (int64_t)c->n_kv_heads * c->head_dim;
    *row0 = 0;
    if (c->fused_qkv && l <= AWQ_LIN_V) {
        *row0 = l == AWQ_LIN_Q ? 0 : l == AWQ_LIN_K ? qd : qd + kvd;
        return "self_attn.qkv_proj";
    }
    if (c->fused_gate_up && (l == AWQ_LIN_GATE || l == AWQ_LIN_UP)) {
        *row0 = l == AWQ_LIN_GATE ? 0 : c->d_ff;
        return "mlp.gate_up_proj";
    }
    return awq_lin_names[l];
}

bool awq_name_excluded(const char *full_name, const char *const *exclude) {
    for (const char *const *e = exclude; e && *e; e++)
        if ((*e)[0] && strstr(full_name, *e)) return true;
    return false;
}

/* Reads name (shape (rows, cols) or (rows,) when cols == 0) into a new F32 array. */
static awq_status read_f32(awq_runtime *rt, const awq_safetensors *st, const char *name,
                           int64_t rows, int64_t cols, bool required, float **out) {
    *out = NULL;
    const awq_st_tensor *t = awq_st_find(st, name);
    if (!t) {
        if (!required) return AWQ_OK;
        return awq_set_error(rt, AWQ_ERR_FORMAT, "tensor '%s' is missing", name);
    }
    int want_nd = cols ? 2 : 1;
    if (t->ndim != want_nd || t->shape[0] != rows || (cols && t->shape[1] != cols))
        return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: %s: expected shape (%lld%s%lld), got %d dims",
                             awq_st_file_path(st, t->file), name, (long long)rows, cols ? ", " : ",",
                             (long long)cols, t->ndim);
    if (t->dtype != AWQ_DTYPE_F32 && t->dtype != AWQ_DTYPE_F16 && t->dtype != AWQ_DTYPE_BF16)
        return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: %s: dtype %s is not F16/BF16/F32",
                             awq_st_file_path(st, t->file), name, awq_dtype_name(t->dtype));
    size_t n = (size_t)rows * (size_t)(cols ? cols : 1);
    float *buf = awq_malloc(n * sizeof *buf);
    if (!buf) return awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "%s: out of memory (%zu floats)", name, n);
    awq_status s = awq_st_read_f32(rt, st, t, buf);
    if (s != AWQ_OK) {
        awq_free(buf);
        return s;
    }
    awq_st_release(st, t);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(buf[i])) {
            awq_status e = awq_set_error(rt, AWQ_ERR_NUMERIC, "%s: %s: element [%zu] is %g",
                                         awq_st_file_path(st, t->file), name, i, (double)buf[i]);
            awq_free(buf);
            return e;
        }
    *out = buf;
    return AWQ_OK;
}

awq_status awq_qlayer_read(awq_runtime *rt, const awq_safetensors *st, const awq_model_config *c,
                           int32_t i, const char *const *exclude, awq_qlayer *L) {
    memset(L, 0, sizeof *L);
    L->index = i;
    int64_t d = c->d_model, hd = c->head_dim, qd = (int64_t)c->n_heads * hd,
            kvd = (int64_t)c->n_kv_heads * hd, ff = c->d_ff;
    const int64_t shapes[AWQ_LIN_COUNT][2] = {{qd, d}, {kvd, d}, {kvd, d}, {d, qd},
                                              {ff, d}, {ff, d}, {d, ff}};
    const bool bias[AWQ_LIN_COUNT] = {c->qkv_bias, c->qkv_bias, c->qkv_bias, c->o_bias,
                                      c->mlp_bias, c->mlp_bias, c->mlp_bias};
    char name[256];
    awq_status s;
    for (int l = 0; l < AWQ_LIN_COUNT; l++) {
        L->out[l] = shapes[l][0];
        L->in[l] = shapes[l][1];
        int64_t row0 = 0;
        const char *ck = awq_lin_ckpt_name(c, l, &row0);
        snprintf(name, sizeof name, "model.layers.%d.%s", i, ck);
        L->excluded[l] = awq_name_excluded(name, exclude);
        snprintf(name, sizeof name, "model.layers.%d.%s.weight", i, ck);
        if (ck != awq_lin_names[l]) {
            /* a part of a fused linear: its rows of the whole tensor */
            const awq_st_tensor *t = awq_st_find(st, name);
            int64_t tot = t && t->ndim == 2 ? t->shape[0] : 0;
            float *all = NULL;
            if ((s = read_f32(rt, st, name, tot ? tot : 1, shapes[l][1], true, &all))) return s;
            if (row0 + shapes[l][0] > tot) {
                awq_free(all);
                return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: %lld rows, expected at least %lld", name,
                                     (long long)tot, (long long)(row0 + shapes[l][0]));
            }
            L->w[l] = awq_malloc((size_t)(shapes[l][0] * shapes[l][1]) * sizeof(float));
            if (L->w[l])
                memcpy(L->w[l], all + row0 * shapes[l][1],
                       (size_t)(shapes[l][0] * shapes[l][1]) * sizeof(float));
            awq_free(all);
            if (!L->w[l]) return awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "%s: out of memory", name);
            continue; /* fused linears have no bias (config.c) */
        }
        if ((s = read_f32(rt, st, name, shapes[l][0], shapes[l][1], true, &L->w[l]))) return s;
        snprintf(name, sizeof name, "model.layers.%d.%s.bias", i, awq_lin_names[l]);
        if ((s = read_f32(rt, st, name, shapes[l][0], 0, bias[l], &L->b[l]))) return s;
    }
    awq_norm_names nn = awq_config_norm_names(c);
    struct { const char *n; int64_t len; float **dst; } norms[] = {
        {nn.attn, d, &L->attn_norm}, {nn.ffn, d, &L->ffn_norm},
        {nn.post_attn, d, &L->post_attn_norm}, {nn.post_ffn, d, &L->post_ffn_norm},
        {c->qk_norm ? "self_attn.q_norm.weight" : NULL, hd, &L->q_norm},
        {c->qk_norm ? "self_attn.k_norm.weight" : NULL, hd, &L->k_norm},
    };
    for (size_t k = 0; k < sizeof norms / sizeof norms[0]; k++) {
        if (!norms[k].n) continue;
        snprintf(name, sizeof name, "model.layers.%d.%s", i, norms[k].n);
        if ((s = read_f32(rt, st, name, norms[k].len, 0, true, norms[k].dst))) return s;
        awq_norm_effective(c, *norms[k].dst, norms[k].len);
    }
    L->dw.window = awq_config_layer_window(c, i);
    L->dw.local_rope = awq_config_layer_local_rope(c, i);
    return AWQ_OK;
}

static awq_status upload_vec(awq_runtime *rt, const awq_device *dev, awq_buflist *bufs,
                             const float *h, int64_t n, awq_tensor *t) {
    if (!t->data) {
        awq_status s = awq_tensor_alloc(rt, dev, bufs, AWQ_DTYPE_F32, 1, &n, t);
        if (s != AWQ_OK) return s;
    }
    return dev->ops->upload(dev->ctx, t->data, t->offs, h, (size_t)n * sizeof(float));
}

awq_status awq_qlayer_upload(awq_runtime *rt, const awq_device *dev, const awq_model_config *c,
                             awq_qlayer *L) {
    awq_status s;
    awq_linear *lins[AWQ_LIN_COUNT] = {&L->dw.q, &L->dw.k, &L->dw.v, &L->dw.o,
                                       &L->dw.gate, &L->dw.up, &L->dw.down};
    for (int l = 0; l < AWQ_LIN_COUNT; l++) {
        awq_linear *lin = lins[l];
        int64_t ne[2] = {L->out[l], L->in[l]};
        if (!lin->w.data) {
            lin->in = L->in[l];
            lin->out = L->out[l];
            if ((s = awq_tensor_alloc(rt, dev, &L->bufs, AWQ_DTYPE_F32, 2, ne, &lin->w)) ||
                (s = awq_tensor_alloc(rt, dev, &L->bufs, AWQ_DTYPE_F32, 2, ne, &L->fq[l])))
                return s;
        }
        if ((s = dev->ops->upload(dev->ctx, lin->w.data, lin->w.offs, L->w[l],
                                  (size_t)(ne[0] * ne[1]) * sizeof(float))))
            return s;
        if (L->b[l] && (s = upload_vec(rt, dev, &L->bufs, L->b[l], L->out[l], &lin->bias))) return s;
    }
    if ((s = upload_vec(rt, dev, &L->bufs, L->attn_norm, c->d_model, &L->dw.attn_norm)) ||
        (s = upload_vec(rt, dev, &L->bufs, L->ffn_norm, c->d_model, &L->dw.ffn_norm)))
        return s;
    if (L->q_norm &&
        ((s = upload_vec(rt, dev, &L->bufs, L->q_norm, c->head_dim, &L->dw.q_norm)) ||
         (s = upload_vec(rt, dev, &L->bufs, L->k_norm, c->head_dim, &L->dw.k_norm))))
        return s;
    if (L->post_attn_norm &&
        ((s = upload_vec(rt, dev, &L->bufs, L->post_attn_norm, c->d_model, &L->dw.post_attn_norm)) ||
         (s = upload_vec(rt, dev, &L->bufs, L->post_ffn_norm, c->d_model, &L->dw.post_ffn_norm))))
        return s;
    return dev->ops->synchronize(dev->ctx);
}

void awq_qlayer_free(const awq_device *dev, awq_qlayer *L) {
    for (int l = 0; l < AWQ_LIN_COUNT; l++) {
        awq_free(L->w[l]);
        awq_free(L->b[l]);
    }
    awq_free(L->attn_norm);
    awq_free(L->ffn_norm);
    awq_free(L->q_norm);
    awq_free(L->k_norm);
    awq_free(L->post_attn_norm);
    awq_free(L->post_ffn_norm);
    awq_buflist_free(dev, &L->bufs);
    memset(L, 0, sizeof *L);
}
