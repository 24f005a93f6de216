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
static awq_status read_f32(awq_runtime *rt, const awq_safetensors *st, const char *name, int64_t rows,
                           int64_t cols, bool required, float **out) {
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

int32_t awq_qlayer_count(const awq_model_config *c, int32_t i) {
    if (!awq_config_layer_moe(c, i)) return AWQ_LIN_COUNT;
    return 4 + 3 * c->n_experts + (c->shared_ff > 0 ? 3 : 0);
}

const char *awq_qlin_name(const awq_model_config *c, const awq_qlayer *L, int l, char *buf, size_t cap) {
    if (L->n_experts == 0 || l < 4) {
        snprintf(buf, cap, "%s", awq_lin_names[l]);
    } else if (l < awq_qlin_shared(L, 0)) {
        awq_moe_expert_name(c, (l - 4) / 3, (l - 4) % 3, buf, cap);
    } else {
        snprintf(buf, cap, "%s", awq_moe_shared_name(l - awq_qlin_shared(L, 0)));
    }
    return buf;
}

awq_status awq_qlayer_read(awq_runtime *rt, const awq_safetensors *st, const awq_model_config *c, int32_t i,
                           const char *const *exclude, awq_qlayer *L) {
    memset(L, 0, sizeof *L);
    L->index = i;
    int64_t d = c->d_model, hd = c->head_dim, qd = (int64_t)c->n_heads * hd,
            kvd = (int64_t)c->n_kv_heads * hd, ff = c->d_ff;
    int32_t n = awq_qlayer_count(c, i);
    L->n_lin = n;
    L->n_experts = awq_config_layer_moe(c, i) ? c->n_experts : 0;
    L->out = awq_calloc((size_t)n, sizeof *L->out);
    L->in = awq_calloc((size_t)n, sizeof *L->in);
    L->w = awq_calloc((size_t)n, sizeof *L->w);
    L->b = awq_calloc((size_t)n, sizeof *L->b);
    L->excluded = awq_calloc((size_t)n, sizeof *L->excluded);
    L->fq = awq_calloc((size_t)n, sizeof *L->fq);
    if (L->n_experts) {
        L->dw.experts = awq_calloc((size_t)(3 * L->n_experts), sizeof *L->dw.experts);
        L->expert_tokens = awq_calloc((size_t)L->n_experts, sizeof *L->expert_tokens);
        L->dw.n_experts = L->n_experts;
    }
    if (!L->out || !L->in || !L->w || !L->b || !L->excluded || !L->fq ||
        (L->n_experts && (!L->dw.experts || !L->expert_tokens)))
        return awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "layer %d: out of memory", i);
    const int64_t shapes[AWQ_LIN_COUNT][2] = {{qd, d}, {kvd, d}, {kvd, d}, {d, qd},
                                              {ff, d}, {ff, d},  {d, ff}};
    const bool bias[AWQ_LIN_COUNT] = {c->qkv_bias, c->qkv_bias, c->qkv_bias, c->o_bias,
                                      c->mlp_bias, c->mlp_bias, c->mlp_bias};
    char name[256], lname[160];
    awq_status s;
    for (int l = 0; l < n; l++) {
        if (L->n_experts && l >= 4) {
            int part = (l - 4) % 3;
            int64_t w_ff = l < awq_qlin_shared(L, 0) ? c->moe_ff : c->shared_ff;
            L->out[l] = part == 2 ? d : w_ff;
            L->in[l] = part == 2 ? w_ff : d;
            awq_qlin_name(c, L, l, lname, sizeof lname);
            snprintf(name, sizeof name, "model.layers.%d.%s", i, lname);
            L->excluded[l] = awq_name_excluded(name, exclude);
            snprintf(name, sizeof name, "model.layers.%d.%s.weight", i, lname);
            if ((s = read_f32(rt, st, name, L->out[l], L->in[l], true, &L->w[l]))) return s;
            continue;
        }
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
    if (L->n_experts) {
        snprintf(name, sizeof name, "model.layers.%d.%s.weight", i, awq_moe_router_name(c));
        if ((s = read_f32(rt, st, name, c->n_experts, d, true, &L->router))) return s;
        if (c->shared_ff > 0) {
            snprintf(name, sizeof name, "model.layers.%d.%s.weight", i, awq_moe_shared_name(3));
            if ((s = read_f32(rt, st, name, 1, d, true, &L->shared_gate))) return s;
        }
    }
    awq_norm_names nn = awq_config_norm_names(c);
    struct {
        const char *n;
        int64_t len;
        float **dst;
    } norms[] = {
        {nn.attn, d, &L->attn_norm},
        {nn.ffn, d, &L->ffn_norm},
        {nn.post_attn, d, &L->post_attn_norm},
        {nn.post_ffn, d, &L->post_ffn_norm},
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

static awq_status upload_vec(awq_runtime *rt, const awq_device *dev, awq_buflist *bufs, const float *h,
                             int64_t n, awq_tensor *t) {
    if (!t->data) {
        awq_status s = awq_tensor_alloc(rt, dev, bufs, AWQ_DTYPE_F32, 1, &n, t);
        if (s != AWQ_OK) return s;
    }
    return dev->ops->upload(dev->ctx, t->data, t->offs, h, (size_t)n * sizeof(float));
}

/* A dense F32 linear (out, in) from host data (allocated on first use). */
static awq_status upload_dense(awq_runtime *rt, const awq_device *dev, awq_buflist *bufs, const float *h,
                               int64_t out, int64_t in, awq_linear *lin) {
    if (!lin->w.data) {
        int64_t ne[2] = {out, in};
        lin->in = in;
        lin->out = out;
        awq_status s = awq_tensor_alloc(rt, dev, bufs, AWQ_DTYPE_F32, 2, ne, &lin->w);
        if (s != AWQ_OK) return s;
    }
    return dev->ops->upload(dev->ctx, lin->w.data, lin->w.offs, h, (size_t)(out * in) * sizeof(float));
}

awq_status awq_qlayer_upload(awq_runtime *rt, const awq_device *dev, const awq_model_config *c,
                             awq_qlayer *L) {
    awq_status s;
    for (int l = 0; l < L->n_lin; l++) {
        awq_linear *lin = awq_layer_lin(&L->dw, l);
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
    if (L->router &&
        (s = upload_dense(rt, dev, &L->bufs, L->router, L->n_experts, c->d_model, &L->dw.router)))
        return s;
    if (L->shared_gate &&
        (s = upload_dense(rt, dev, &L->bufs, L->shared_gate, 1, c->d_model, &L->dw.shared_gate)))
        return s;
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
    for (int l = 0; l < L->n_lin; l++) {
        if (L->w) awq_free(L->w[l]);
        if (L->b) awq_free(L->b[l]);
    }
    awq_free(L->out);
    awq_free(L->in);
    awq_free(L->w);
    awq_free(L->b);
    awq_free(L->excluded);
    awq_free(L->fq);
    awq_free(L->dw.experts);
    awq_free(L->expert_tokens);
    awq_free(L->router);
    awq_free(L->shared_gate);
    awq_free(L->attn_norm);
    awq_free(L->ffn_norm);
    awq_free(L->q_norm);
    awq_free(L->k_norm);
    awq_free(L->post_attn_norm);
    awq_free(L->post_ffn_norm);
    awq_buflist_free(dev, &L->bufs);
    memset(L, 0, sizeof *L);
}
