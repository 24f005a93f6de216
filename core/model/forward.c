/* forward.c - one decoder layer as a straight list of backend calls. */
#include <math.h>
#include <string.h>

#include "forward.h"


/* n linears on the same input: one matmul_w4a16_multi call when the backend has it and all are
 * 4-bit with the same group size (fused q/k/v and gate/up), else one call each. */
static awq_status linears_forward(const awq_device *dev, int n, awq_tensor *const *y,
                                  const awq_tensor *x, const awq_linear *const *l) {
    bool fuse = dev->can.multi;
    for (int i = 0; i < n && fuse; i++)
        fuse = l[i]->quantized && l[i]->q.group_size == l[0]->q.group_size;
    if (fuse) {
        const awq_qlinear *q[3];
        for (int i = 0; i < n; i++) q[i] = &l[i]->q;
        return dev->ops->matmul_w4a16_multi(dev->ctx, n, y, x, q);
    }
    for (int i = 0; i < n; i++) TRY(awq_linear_forward(dev, y[i], x, l[i]));
    return AWQ_OK;
}

awq_status awq_fwd_scratch_alloc(awq_runtime *rt, const awq_device *dev, awq_buflist *list,
                                 const awq_model_config *c, int64_t n, awq_fwd_scratch *s) {
    memset(s, 0, sizeof *s);
    s->n_max = n;
    int64_t d = c->d_model, qd = (int64_t)c->n_heads * c->head_dim,
            kvd = (int64_t)c->n_kv_heads * c->head_dim, ff = c->d_ff;
    struct { awq_tensor *t; awq_dtype ty; int64_t cols; } plan[] = {
        {&s->x, AWQ_DTYPE_F32, d},    {&s->xb, AWQ_DTYPE_F32, d},   {&s->q, AWQ_DTYPE_F32, qd},
        {&s->k, AWQ_DTYPE_F32, kvd},  {&s->v, AWQ_DTYPE_F32, kvd},  {&s->att, AWQ_DTYPE_F32, qd},
        {&s->xo, AWQ_DTYPE_F32, d},   {&s->g, AWQ_DTYPE_F32, ff},   {&s->u, AWQ_DTYPE_F32, ff},
    };
    for (size_t i = 0; i < sizeof plan / sizeof plan[0]; i++) {
        int64_t ne[2] = {n, plan[i].cols};
        TRY(awq_tensor_alloc(rt, dev, list, plan[i].ty, 2, ne, plan[i].t));
    }
    TRY(awq_tensor_alloc(rt, dev, list, AWQ_DTYPE_I32, 1, &n, &s->pos));
    TRY(awq_tensor_alloc(rt, dev, list, AWQ_DTYPE_I32, 1, &n, &s->ids));
    return AWQ_OK;
}

awq_status awq_fwd_set_positions(const awq_fwd_ctx *f, int64_t B, int64_t T, int32_t n_past) {
    int64_t n = B * T;
    int32_t buf[1024];
    for (int64_t r0 = 0; r0 < n; r0 += 1024) {
        int64_t m = n - r0 < 1024 ? n - r0 : 1024;
        for (int64_t i = 0; i < m; i++) buf[i] = n_past + (int32_t)((r0 + i) % T);
        TRY(f->dev->ops->upload(f->dev->ctx, f->s->pos.data, f->s->pos.offs + (size_t)r0 * 4, buf,
                                (size_t)m * 4));
    }
    return AWQ_OK;
}

/* The attention op with the layer's window, the family's score scale and soft-capping. */
static awq_status layer_attention(const awq_fwd_ctx *f, const awq_layer_weights *w, awq_tensor *out,
                                  const awq_tensor *q, const awq_tensor *k, const awq_tensor *v,
                                  int32_t n_past) {
    const awq_model_config *c = f->cfg;
    const awq_backend_ops *ops = f->dev->ops;
    if (c->attn_softcap > 0 && !f->dev->can.attention_softcap)
        return awq_fallback_attention_softcap(f->dev, out, q, k, v, n_past, (float)c->attn_scale,
                                              w->window, (float)c->attn_softcap);
    if (c->attn_softcap > 0)
        return ops->attention_softcap(f->dev->ctx, out, q, k, v, n_past, (float)c->attn_scale,
                                      w->window, (float)c->attn_softcap);
    return ops->attention(f->dev->ctx, out, q, k, v, n_past, (float)c->attn_scale, w->window);
}

awq_status awq_fwd_attention(const awq_fwd_ctx *f, const awq_layer_weights *w,
                             const awq_tensor *xin, int64_t B, int64_t T, int32_t n_past,
                             awq_tensor *kc, awq_tensor *vc, awq_tensor *out) {
    const awq_model_config *c = f->cfg;
    const awq_backend_ops *ops = f->dev->ops;
    awq_backend_ctx *ctx = f->dev->ctx;
    awq_fwd_scratch *s = f->s;
    int64_t n = B * T, H = c->n_heads, Hkv = c->n_kv_heads, hd = c->head_dim;
    const awq_tensor *xb = xin;
    awq_tensor q = awq_view_rows(&s->q, 0, n), k = awq_view_rows(&s->k, 0, n),
               v = awq_view_rows(&s->v, 0, n), att = awq_view_rows(&s->att, 0, n);
    awq_tensor pos = awq_tensor_1d(AWQ_DTYPE_I32, s->pos.data, s->pos.offs, n);

    // qkv projections
    awq_tensor *qkv_y[3] = {&q, &k, &v};
    const awq_linear *qkv_w[3] = {&w->q, &w->k, &w->v};
    TRY(linears_forward(f->dev, 3, qkv_y, xb, qkv_w));
    // per-head q/k rmsnorm (Qwen3)
    if (w->q_norm.data) {
        int64_t qs[2] = {n * H, hd}, ks[2] = {n * Hkv, hd};
        awq_tensor qh = awq_view_reshape(&q, 2, qs), kh = awq_view_reshape(&k, 2, ks);
        TRY(ops->rmsnorm(ctx, &qh, &qh, &w->q_norm, (float)c->rms_eps));
        TRY(ops->rmsnorm(ctx, &kh, &kh, &w->k_norm, (float)c->rms_eps));
    }
    // rope
    int64_t q3[3] = {n, H, hd}, k3[3] = {n, Hkv, hd};
    awq_tensor qr = awq_view_reshape(&q, 3, q3), kr = awq_view_reshape(&k, 3, k3);
    qr.ne[2] = kr.ne[2] = c->rope_dim; /* partial rotary (Phi-4-mini): the first rope_dim dims */
    const awq_tensor *inv = w->local_rope && f->inv_freq_local ? f->inv_freq_local : f->inv_freq;
    TRY(ops->rope(ctx, &qr, &pos, inv, (float)c->rope_attn_factor));
    TRY(ops->rope(ctx, &kr, &pos, inv, (float)c->rope_attn_factor));
    // attention over the cache or over the fresh blocks
    int64_t q4[4] = {B, T, H, hd};
    awq_tensor q4v = awq_view_reshape(&q, 4, q4), o4 = awq_view_reshape(&att, 4, q4);
    awq_tensor k4, v4;
    if (kc && f->seq_n_past) {
        // batched decoding: each row is the next token of its own sequence and cache
        int64_t q1[4] = {1, 1, H, hd};
        for (int64_t b = 0; b < B; b++) {
            int32_t np = f->seq_n_past[b];
            awq_tensor kb = awq_view_rows(&k, b, 1), vb = awq_view_rows(&v, b, 1);
            awq_tensor kdst = awq_view_rows(&kc[b], np, 1), vdst = awq_view_rows(&vc[b], np, 1);
            TRY(ops->convert(ctx, &kdst, &kb));
            TRY(ops->convert(ctx, &vdst, &vb));
            int64_t kv4[4] = {1, (int64_t)np + 1, Hkv, hd};
            awq_tensor qr1 = awq_view_rows(&q, b, 1), or1 = awq_view_rows(&att, b, 1);
            awq_tensor qb = awq_view_reshape(&qr1, 4, q1), ob = awq_view_reshape(&or1, 4, q1);
            k4 = awq_view_reshape(&kc[b], 4, kv4);
            v4 = awq_view_reshape(&vc[b], 4, kv4);
            TRY(layer_attention(f, w, &ob, &qb, &k4, &v4, np));
        }
        return awq_linear_forward(f->dev, out, &att, &w->o);
    }
    if (kc) {
        awq_tensor kdst = awq_view_rows(kc, n_past, T), vdst = awq_view_rows(vc, n_past, T);
        TRY(ops->convert(ctx, &kdst, &k));
        TRY(ops->convert(ctx, &vdst, &v));
        int64_t kv4[4] = {1, n_past + T, Hkv, hd};
        k4 = awq_view_reshape(kc, 4, kv4);
        v4 = awq_view_reshape(vc, 4, kv4);
    } else {
        int64_t kv4[4] = {B, T, Hkv, hd};
        k4 = awq_view_reshape(&k, 4, kv4);
        v4 = awq_view_reshape(&v, 4, kv4);
    }
    TRY(layer_attention(f, w, &o4, &q4v, &k4, &v4, n_past));
    // output projection
    return awq_linear_forward(f->dev, out, &att, &w->o);
}

awq_status awq_fwd_mlp(const awq_fwd_ctx *f, const awq_layer_weights *w, const awq_tensor *xin,
                       awq_tensor *out) {
    awq_fwd_scratch *s = f->s;
    int64_t n = awq_tensor_rows(xin);
    awq_tensor g = awq_view_rows(&s->g, 0, n), u = awq_view_rows(&s->u, 0, n);
    awq_tensor *gu_y[2] = {&g, &u};
    const awq_linear *gu_w[2] = {&w->gate, &w->up};
    TRY(linears_forward(f->dev, 2, gu_y, xin, gu_w));
    if (f->cfg->act == AWQ_ACT_SILU) TRY(f->dev->ops->silu_mul(f->dev->ctx, &g, &g, &u));
    else if (f->dev->can.act_mul[f->cfg->act]) TRY(f->dev->ops->act_mul(f->dev->ctx, &g, &g, &u, f->cfg->act));
    else TRY(awq_fallback_act_mul(f->dev, &g, &g, &u, f->cfg->act));
    return awq_linear_forward(f->dev, out, &g, &w->down);
}

awq_status awq_fwd_layer(const awq_fwd_ctx *f, const awq_layer_weights *w, int64_t B, int64_t T,
                         int32_t n_past, awq_tensor *kc, awq_tensor *vc) {
    const awq_backend_ops *ops = f->dev->ops;
    awq_backend_ctx *ctx = f->dev->ctx;
    awq_fwd_scratch *s = f->s;
    int64_t n = B * T;
    float eps = (float)f->cfg->rms_eps;
    awq_tensor x = awq_view_rows(&s->x, 0, n), xb = awq_view_rows(&s->xb, 0, n),
               xo = awq_view_rows(&s->xo, 0, n);
    // attention rmsnorm -> attention (-> post-attention norm, Gemma) -> residual
    TRY(ops->rmsnorm(ctx, &xb, &x, &w->attn_norm, eps));
    TRY(awq_fwd_attention(f, w, &xb, B, T, n_past, kc, vc, &xo));
    if (w->post_attn_norm.data) TRY(ops->rmsnorm(ctx, &xo, &xo, &w->post_attn_norm, eps));
    TRY(ops->binop(ctx, &x, &x, &xo, AWQ_BINOP_ADD));
    // ffn rmsnorm -> mlp (-> post-feed-forward norm, Gemma) -> residual
    TRY(ops->rmsnorm(ctx, &xb, &x, &w->ffn_norm, eps));
    TRY(awq_fwd_mlp(f, w, &xb, &xo));
    if (w->post_ffn_norm.data) TRY(ops->rmsnorm(ctx, &xo, &xo, &w->post_ffn_norm, eps));
    return ops->binop(ctx, &x, &x, &xo, AWQ_BINOP_ADD);
}

awq_status awq_fwd_embed(const awq_model *m, awq_tensor *x, const awq_tensor *ids) {
    TRY(m->dev.ops->get_rows(m->dev.ctx, x, &m->embed, ids));
    if (!m->embed_scale.data) return AWQ_OK;
    return m->dev.ops->binop(m->dev.ctx, x, x, &m->embed_scale, AWQ_BINOP_MUL);
}

awq_status awq_fwd_logits(const awq_model *m, awq_tensor *logits, awq_tensor *xb,
                          const awq_tensor *x) {
    const awq_model_config *c = &m->cfg;
    TRY(m->dev.ops->rmsnorm(m->dev.ctx, xb, x, &m->final_norm, (float)c->rms_eps));
    TRY(awq_linear_forward(&m->dev, logits, xb, &m->lm_head));
    if (c->final_softcap > 0 && m->dev.can.softcap)
        TRY(m->dev.ops->softcap(m->dev.ctx, logits, (float)c->final_softcap));
    else if (c->final_softcap > 0)
        TRY(awq_fallback_softcap(&m->dev, logits, (float)c->final_softcap));
    return AWQ_OK;
}
