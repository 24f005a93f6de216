/* forward.c - one decoder layer as a straight list of backend calls. */
#include <math.h>
#include <string.h>

#include "forward.h"


/* n linears on the same input: one matmul_w4a16_multi call when the backend has it and all are
 * 4-bit with the same group size (fused q/k/v and gate/up), else one call each. */
static awq_status linears_forward(const awq_device *dev, int n, awq_tensor *const *y, const awq_tensor *x,
                                  const awq_linear *const *l) {
    bool fuse = dev->can.multi;
    for (int i = 0; i < n && fuse; i++) fuse = l[i]->quantized && l[i]->q.group_size == l[0]->q.group_size;
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
    /* rows of g/u: with experts, n * top-k routed rows, then n rows of the shared expert */
    int64_t nk = c->n_experts > 0 ? n * c->n_experts_used : n;
    int64_t ng = c->n_experts > 0 && c->shared_ff > 0 ? nk + n : nk;
    if (c->n_experts > 0) {
        ff = c->moe_ff > ff ? c->moe_ff : ff;
        ff = c->shared_ff > ff ? c->shared_ff : ff;
    }
    struct {
        awq_tensor *t;
        int64_t rows, cols;
    } plan[] = {
        {&s->x, n, d},       {&s->xb, n, d},     {&s->q, n, qd},
        {&s->k, n, kvd},     {&s->v, n, kvd},    {&s->att, n, qd},
        {&s->xo, n, d},      {&s->g, ng, ff},    {&s->u, ng, ff},
        {&s->moe_x, nk, d},  {&s->moe_y, nk, d}, {&s->moe_w, nk, d},
        {&s->moe_tmp, n, d}, {&s->moe_gw, n, d}, {&s->moe_logits, n, c->n_experts},
        {&s->moe_sg, n, 1},
    };
    size_t np = sizeof plan / sizeof plan[0];
    if (c->n_experts == 0) np -= 7; /* the mixture-of-experts buffers last */
    for (size_t i = 0; i < np; i++) {
        int64_t ne[2] = {plan[i].rows, plan[i].cols};
        TRY(awq_tensor_alloc(rt, dev, list, AWQ_DTYPE_F32, 2, ne, plan[i].t));
    }
    TRY(awq_tensor_alloc(rt, dev, list, AWQ_DTYPE_I32, 1, &n, &s->pos));
    TRY(awq_tensor_alloc(rt, dev, list, AWQ_DTYPE_I32, 1, &n, &s->ids));
    if (c->n_experts > 0) {
        TRY(awq_tensor_alloc(rt, dev, list, AWQ_DTYPE_I32, 1, &nk, &s->moe_slot));
        TRY(awq_tensor_alloc(rt, dev, list, AWQ_DTYPE_I32, 1, &nk, &s->moe_inv));
    }
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
        return awq_fallback_attention_softcap(f->dev, out, q, k, v, n_past, (float)c->attn_scale, w->window,
                                              (float)c->attn_softcap);
    if (c->attn_softcap > 0)
        return ops->attention_softcap(f->dev->ctx, out, q, k, v, n_past, (float)c->attn_scale, w->window,
                                      (float)c->attn_softcap);
    return ops->attention(f->dev->ctx, out, q, k, v, n_past, (float)c->attn_scale, w->window);
}

awq_status awq_fwd_attention(const awq_fwd_ctx *f, const awq_layer_weights *w, const awq_tensor *xin,
                             int64_t B, int64_t T, int32_t n_past, awq_tensor *kc, awq_tensor *vc,
                             awq_tensor *out) {
    const awq_model_config *c = f->cfg;
    const awq_backend_ops *ops = f->dev->ops;
    awq_backend_ctx *ctx = f->dev->ctx;
    awq_fwd_scratch *s = f->s;
    int64_t n = B * T, H = c->n_heads, Hkv = c->n_kv_heads, hd = c->head_dim;
    const awq_tensor *xb = xin;
    awq_tensor q = awq_view_rows(&s->q, 0, n), k = awq_view_rows(&s->k, 0, n), v = awq_view_rows(&s->v, 0, n),
               att = awq_view_rows(&s->att, 0, n);
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

/* A gated MLP (gate, up, down) on the rows of xin -> out, through g/u rows [r0, r0 + n). */
static awq_status gated_mlp(const awq_fwd_ctx *f, const awq_linear *gate, const awq_linear *up,
                            const awq_linear *down, const awq_tensor *xin, int64_t r0, awq_tensor *out) {
    awq_fwd_scratch *s = f->s;
    int64_t n = awq_tensor_rows(xin);
    awq_tensor g = awq_view_rows(&s->g, r0, n), u = awq_view_rows(&s->u, r0, n);
    g.ne[1] = u.ne[1] = gate->out; /* g/u may be wider (mixture of experts) */
    awq_tensor *gu_y[2] = {&g, &u};
    const awq_linear *gu_w[2] = {gate, up};
    TRY(linears_forward(f->dev, 2, gu_y, xin, gu_w));
    if (f->cfg->act == AWQ_ACT_SILU)
        TRY(f->dev->ops->silu_mul(f->dev->ctx, &g, &g, &u));
    else if (f->dev->can.act_mul[f->cfg->act])
        TRY(f->dev->ops->act_mul(f->dev->ctx, &g, &g, &u, f->cfg->act));
    else
        TRY(awq_fallback_act_mul(f->dev, &g, &g, &u, f->cfg->act));
    return awq_linear_forward(f->dev, out, &g, down);
}

awq_status awq_fwd_mlp(const awq_fwd_ctx *f, const awq_layer_weights *w, const awq_tensor *xin,
                       awq_tensor *out) {
    if (w->n_experts > 0) return awq_fwd_moe(f, w, xin, out);
    return gated_mlp(f, &w->gate, &w->up, &w->down, xin, 0, out);
}

void awq_moe_route(const float *logits, int64_t n, int32_t E, int32_t k, bool norm_topk, int32_t *experts,
                   float *weights) {
    for (int64_t t = 0; t < n; t++) {
        const float *l = logits + t * E;
        /* softmax in double (transformers: float32 softmax of the logits) */
        double mx = l[0], sum = 0;
        for (int32_t e = 1; e < E; e++) mx = l[e] > mx ? l[e] : mx;
        for (int32_t e = 0; e < E; e++) sum += exp((double)l[e] - mx);
        int32_t *ex = experts + t * k;
        float *wt = weights + t * k;
        double tot = 0;
        for (int32_t j = 0; j < k; j++) {
            int32_t best = -1;
            for (int32_t e = 0; e < E; e++) {
                bool taken = false;
                for (int32_t i = 0; i < j && !taken; i++) taken = ex[i] == e;
                if (!taken && (best < 0 || l[e] > l[best])) best = e;
            }
            ex[j] = best;
            double p = exp((double)l[best] - mx) / sum;
            wt[j] = (float)p;
            tot += p;
        }
        if (norm_topk)
            for (int32_t j = 0; j < k; j++) wt[j] = (float)((double)wt[j] / tot);
    }
}

awq_status awq_fwd_moe(const awq_fwd_ctx *f, const awq_layer_weights *w, const awq_tensor *xin,
                       awq_tensor *out) {
    return awq_fwd_moe_ex(f, w, xin, out, NULL);
}

awq_status awq_fwd_moe_ex(const awq_fwd_ctx *f, const awq_layer_weights *w, const awq_tensor *xin,
                          awq_tensor *out, int64_t *expert_rows) {
    const awq_model_config *c = f->cfg;
    const awq_backend_ops *ops = f->dev->ops;
    awq_backend_ctx *ctx = f->dev->ctx;
    awq_fwd_scratch *s = f->s;
    int64_t n = awq_tensor_rows(xin), d = c->d_model;
    int32_t E = w->n_experts, k = c->n_experts_used;
    int64_t nk = n * k;
    awq_tensor logits = awq_view_rows(&s->moe_logits, 0, n), sg = awq_view_rows(&s->moe_sg, 0, n);
    // router (and the shared expert's gate) in full precision, routed on the host
    TRY(awq_linear_forward(f->dev, &logits, xin, &w->router));
    bool shared = w->shared[0].in > 0;
    if (shared) TRY(awq_linear_forward(f->dev, &sg, xin, &w->shared_gate));
    /* host: logits (n, E), shared gate logits (n), experts/weights (n, k), routed row -> token
     * (nk), (j, t) -> routed row (k, n), row weights (nk, d), shared gate weights (n, d),
     * first routed row of each expert (E + 1) */
    size_t hbytes =
        ((size_t)n * (size_t)E + (size_t)n + 4 * (size_t)nk + (size_t)(nk + n) * (size_t)d) * sizeof(float) +
        (size_t)(E + 1) * sizeof(int64_t);
    char *h = awq_malloc(hbytes);
    if (!h) return AWQ_ERR_OUT_OF_MEMORY; /* no runtime here: the caller names it */
    int64_t *off = (int64_t *)h;          /* first: the only 8-byte elements stay aligned */
    float *hl = (float *)(off + E + 1), *hsg = hl + n * E;
    int32_t *hex = (int32_t *)(hsg + n), *hslot = hex + nk, *hinv = hslot + nk;
    float *hwt = (float *)(hinv + nk), *hw = hwt + nk, *hgw = hw + nk * d;
    // the download drains the queue, so the uploads below overwrite nothing still in use
    awq_status st = ops->download(ctx, hl, logits.data, logits.offs, (size_t)(n * E) * sizeof(float));
    if (st == AWQ_OK && shared) st = ops->download(ctx, hsg, sg.data, sg.offs, (size_t)n * sizeof(float));
    if (st == AWQ_OK) {
        awq_moe_route(hl, n, E, k, c->moe_norm_topk, hex, hwt);
        // routed rows grouped by expert, tokens in order within each expert
        for (int32_t e = 0; e <= E; e++) off[e] = 0;
        for (int64_t i = 0; i < nk; i++) off[hex[i] + 1]++;
        for (int32_t e = 0; e < E; e++) off[e + 1] += off[e];
        for (int32_t e = 0; e < E; e++) {
            int64_t r = off[e];
            for (int64_t t = 0; t < n; t++)
                for (int32_t j = 0; j < k; j++)
                    if (hex[t * k + j] == e) {
                        hslot[r] = (int32_t)t;
                        hinv[j * n + t] = (int32_t)r;
                        for (int64_t q = 0; q < d; q++) hw[r * d + q] = hwt[t * k + j];
                        r++;
                    }
        }
        for (int64_t t = 0; shared && t < n; t++) {
            float gt = (float)(1.0 / (1.0 + exp(-(double)hsg[t])));
            for (int64_t q = 0; q < d; q++) hgw[t * d + q] = gt;
        }
        st = ops->upload(ctx, s->moe_slot.data, s->moe_slot.offs, hslot, (size_t)nk * sizeof(int32_t));
        if (st == AWQ_OK)
            st = ops->upload(ctx, s->moe_inv.data, s->moe_inv.offs, hinv, (size_t)nk * sizeof(int32_t));
        if (st == AWQ_OK)
            st = ops->upload(ctx, s->moe_w.data, s->moe_w.offs, hw, (size_t)(nk * d) * sizeof(float));
        if (st == AWQ_OK && shared)
            st = ops->upload(ctx, s->moe_gw.data, s->moe_gw.offs, hgw, (size_t)(n * d) * sizeof(float));
    }
    awq_tensor xs = awq_view_rows(&s->moe_x, 0, nk), ys = awq_view_rows(&s->moe_y, 0, nk),
               wv = awq_view_rows(&s->moe_w, 0, nk);
    awq_tensor slot = awq_tensor_1d(AWQ_DTYPE_I32, s->moe_slot.data, s->moe_slot.offs, nk);
    // gather the routed rows, then each expert once over its rows
    if (st == AWQ_OK) st = ops->get_rows(ctx, &xs, xin, &slot);
    for (int32_t e = 0; st == AWQ_OK && e < E; e++) {
        int64_t m = off[e + 1] - off[e];
        if (m == 0) continue;
        awq_tensor xe = awq_view_rows(&xs, off[e], m), ye = awq_view_rows(&ys, off[e], m);
        const awq_linear *ex = &w->experts[3 * e];
        st = gated_mlp(f, &ex[0], &ex[1], &ex[2], &xe, off[e], &ye);
    }
    // weight the outputs and sum each token's k rows
    if (st == AWQ_OK) st = ops->binop(ctx, &ys, &ys, &wv, AWQ_BINOP_MUL);
    for (int32_t j = 0; st == AWQ_OK && j < k; j++) {
        awq_tensor ids = awq_tensor_1d(AWQ_DTYPE_I32, s->moe_inv.data,
                                       s->moe_inv.offs + (size_t)(j * n) * sizeof(int32_t), n);
        awq_tensor tmp = awq_view_rows(&s->moe_tmp, 0, n);
        if (j == 0) {
            st = ops->get_rows(ctx, out, &ys, &ids);
        } else {
            st = ops->get_rows(ctx, &tmp, &ys, &ids);
            if (st == AWQ_OK) st = ops->binop(ctx, out, out, &tmp, AWQ_BINOP_ADD);
        }
    }
    // Qwen2-MoE: + sigmoid(shared_expert_gate(x)) * shared_expert(x)
    if (st == AWQ_OK && shared) {
        awq_tensor tmp = awq_view_rows(&s->moe_tmp, 0, n), gw = awq_view_rows(&s->moe_gw, 0, n);
        st = gated_mlp(f, &w->shared[0], &w->shared[1], &w->shared[2], xin, nk, &tmp);
        if (st == AWQ_OK) st = ops->binop(ctx, &tmp, &tmp, &gw, AWQ_BINOP_MUL);
        if (st == AWQ_OK) st = ops->binop(ctx, out, out, &tmp, AWQ_BINOP_ADD);
    }
    if (expert_rows && st == AWQ_OK)
        for (int32_t e = 0; e <= E; e++) expert_rows[e] = off[e];
    awq_free(h);
    return st;
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

awq_status awq_fwd_logits(const awq_model *m, awq_tensor *logits, awq_tensor *xb, const awq_tensor *x) {
    const awq_model_config *c = &m->cfg;
    TRY(m->dev.ops->rmsnorm(m->dev.ctx, xb, x, &m->final_norm, (float)c->rms_eps));
    TRY(awq_linear_forward(&m->dev, logits, xb, &m->lm_head));
    if (c->final_softcap > 0 && m->dev.can.softcap)
        TRY(m->dev.ops->softcap(m->dev.ctx, logits, (float)c->final_softcap));
    else if (c->final_softcap > 0)
        TRY(awq_fallback_softcap(&m->dev, logits, (float)c->final_softcap));
    return AWQ_OK;
}
