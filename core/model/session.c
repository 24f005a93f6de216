/*
 * session.c - awq_session: KV cache, scratch sized once, micro-batched evaluation.
 */
#include <stdio.h>
#include <string.h>

#include "session.h"


#define SESSION_UBATCH 512 /* tokens per forward call; bounds scratch memory */

struct awq_session {
    awq_model *m;
    int32_t n_ctx;
    int32_t n_past;
    int64_t n_ub;
    awq_buflist bufs;
    awq_fwd_scratch s;
    awq_tensor *kc, *vc; /* (n_layers) each (n_ctx, Hkv*hd) F32 */
    awq_tensor logits;   /* (n_ub, vocab) F32 */
    float *host;         /* (n_ub, vocab) host copy of logits */
};

awq_status awq_session_create(awq_session **out, awq_model *m, int32_t n_ctx) {
    if (!out || !m) return AWQ_ERR_INVALID_ARG;
    *out = NULL;
    awq_runtime *rt = m->rt;
    const awq_model_config *c = &m->cfg;
    if (n_ctx <= 0) n_ctx = c->max_pos < 4096 ? c->max_pos : 4096;
    if (n_ctx > c->max_pos)
        AWQ_LOG_WARN(rt, "context %d exceeds the model's max_position_embeddings %d", n_ctx, c->max_pos);
    awq_session *s = awq_calloc(1, sizeof *s);
    if (!s) return awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "out of host memory");
    s->m = m;
    s->n_ctx = n_ctx;
    s->n_ub = n_ctx < SESSION_UBATCH ? n_ctx : SESSION_UBATCH;
    awq_status st = awq_fwd_scratch_alloc(rt, &m->dev, &s->bufs, c, s->n_ub, &s->s);
    if (st != AWQ_OK) goto fail;
    s->kc = awq_calloc((size_t)c->n_layers, sizeof *s->kc);
    s->vc = awq_calloc((size_t)c->n_layers, sizeof *s->vc);
    s->host = awq_calloc((size_t)s->n_ub * (size_t)c->vocab_size, sizeof(float));
    if (!s->kc || !s->vc || !s->host) {
        st = awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "out of host memory for the session");
        goto fail;
    }
    int64_t kv[2] = {n_ctx, (int64_t)c->n_kv_heads * c->head_dim};
    for (int32_t l = 0; l < c->n_layers; l++) {
        if ((st = awq_tensor_alloc(rt, &m->dev, &s->bufs, AWQ_DTYPE_F32, 2, kv, &s->kc[l])) ||
            (st = awq_tensor_alloc(rt, &m->dev, &s->bufs, AWQ_DTYPE_F32, 2, kv, &s->vc[l])))
            goto fail;
    }
    int64_t lg[2] = {s->n_ub, c->vocab_size};
    st = awq_tensor_alloc(rt, &m->dev, &s->bufs, AWQ_DTYPE_F32, 2, lg, &s->logits);
    if (st != AWQ_OK) goto fail;
    *out = s;
    return AWQ_OK;
fail:
    awq_session_destroy(s);
    return st;
}

void awq_session_destroy(awq_session *s) {
    if (!s) return;
    awq_buflist_free(&s->m->dev, &s->bufs);
    awq_free(s->kc);
    awq_free(s->vc);
    awq_free(s->host);
    awq_free(s);
}

void awq_session_reset(awq_session *s) {
    if (s) s->n_past = 0;
}

int32_t awq_session_n_past(const awq_session *s) { return s ? s->n_past : 0; }

awq_status awq_session_truncate(awq_session *s, int32_t n_past) {
    if (!s) return AWQ_ERR_INVALID_ARG;
    if (n_past < 0 || n_past > s->n_past)
        return awq_set_error(s->m->rt, AWQ_ERR_INVALID_ARG, "truncate to %d tokens: %d are cached", n_past,
                             s->n_past);
    s->n_past = n_past; /* rows past n_past are overwritten by the next tokens */
    return AWQ_OK;
}

/* RoPE frequencies of the session: longrope's long factors when its context exceeds the
 * model's original one (awq_config_rope_long), else the model's. */
static const awq_tensor *session_inv_freq(const awq_session *s) {
    const awq_model *m = s->m;
    return m->inv_freq_long.data && awq_config_rope_long(&m->cfg, s->n_ctx) ? &m->inv_freq_long
                                                                            : &m->inv_freq;
}

/* Embeddings, decoder layers, and the final norm + lm_head on logits rows [lr0, lr0+ln): device
 * work only, nothing synchronous. */
static awq_status forward_tokens(awq_session *s, const awq_fwd_ctx *f, awq_tensor *x, const awq_tensor *ids,
                                 int64_t n, int64_t lr0, int64_t ln) {
    awq_model *m = s->m;
    const awq_model_config *c = &m->cfg;
    TRY(awq_fwd_embed(m, x, ids));
    for (int32_t l = 0; l < c->n_layers; l++)
        TRY(awq_fwd_layer(f, &m->layers[l], 1, n, s->n_past, &s->kc[l], &s->vc[l]));
    if (ln > 0) {
        awq_tensor xr = awq_view_rows(&s->s.x, lr0, ln), xb = awq_view_rows(&s->s.xb, 0, ln);
        awq_tensor lg = awq_view_rows(&s->logits, 0, ln);
        TRY(awq_fwd_logits(m, &lg, &xb, &xr));
    }
    return AWQ_OK;
}

/* One micro-batch of n <= n_ub tokens. Logits rows [lr0, lr0+ln) of this batch are computed. */
static awq_status run_ubatch(awq_session *s, const int32_t *tokens, int64_t n, int64_t lr0, int64_t ln) {
    awq_model *m = s->m;
    const awq_model_config *c = &m->cfg;
    const awq_backend_ops *ops = m->dev.ops;
    awq_backend_ctx *ctx = m->dev.ctx;
    awq_fwd_ctx f = {.cfg = c,
                     .dev = &m->dev,
                     .inv_freq = session_inv_freq(s),
                     .s = &s->s,
                     .inv_freq_local = m->inv_freq_local.data ? &m->inv_freq_local : NULL};
    for (int64_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= c->vocab_size)
            return awq_set_error(m->rt, AWQ_ERR_INVALID_ARG, "token id %d out of range [0, %d)", tokens[i],
                                 c->vocab_size);
    TRY(ops->upload(ctx, s->s.ids.data, s->s.ids.offs, tokens, (size_t)n * sizeof(int32_t)));
    awq_tensor ids = awq_tensor_1d(AWQ_DTYPE_I32, s->s.ids.data, s->s.ids.offs, n);
    awq_tensor x = awq_view_rows(&s->s.x, 0, n);
    TRY(awq_fwd_set_positions(&f, 1, n, s->n_past));
    // a single-token decode step is the same op sequence every time: let the backend record it
    // and submit it as one unit (a CUDA Graph); not with experts, whose routing downloads the
    // router logits in the middle of the step
    bool step = n == 1 && m->dev.can.graph && c->n_experts == 0;
    if (step) TRY(ops->step_begin(ctx));
    awq_status st = forward_tokens(s, &f, &x, &ids, n, lr0, ln);
    if (step) {
        awq_status st2 = ops->step_end(ctx);
        if (st == AWQ_OK) st = st2;
    }
    TRY(st);
    if (ln > 0) {
        TRY(ops->download(ctx, s->host, s->logits.data, s->logits.offs,
                          (size_t)ln * (size_t)c->vocab_size * sizeof(float)));
    } else {
        TRY(ops->synchronize(ctx));
    }
    s->n_past += (int32_t)n;
    return AWQ_OK;
}

awq_status awq_session_run(awq_session *s, const int32_t *tokens, int32_t n, awq_logits_mode mode,
                           awq_logits_fn cb, void *user) {
    if (!s || (!tokens && n > 0) || n < 0) return AWQ_ERR_INVALID_ARG;
    awq_runtime *rt = s->m->rt;
    if ((int64_t)s->n_past + n > s->n_ctx)
        return awq_set_error(rt, AWQ_ERR_INVALID_ARG,
                             "context full: %d cached + %d new tokens > context size %d", s->n_past, n,
                             s->n_ctx);
    for (int32_t i0 = 0; i0 < n; i0 += (int32_t)s->n_ub) {
        int64_t nb = n - i0 < s->n_ub ? n - i0 : s->n_ub;
        int64_t lr0 = 0, ln = 0;
        if (mode == AWQ_LOGITS_ALL) {
            ln = nb;
        } else if (mode == AWQ_LOGITS_LAST && i0 + nb == n) {
            lr0 = nb - 1;
            ln = 1;
        }
        awq_status st = run_ubatch(s, tokens + i0, nb, lr0, ln);
        if (st != AWQ_OK) {
            s->n_past = 0; /* the cache is inconsistent after a failed batch */
            return st;
        }
        if (ln > 0 && cb) {
            st = cb(i0 + lr0, ln, s->host, user);
            if (st != AWQ_OK) return st;
        }
    }
    return AWQ_OK;
}

typedef struct copy_ctx {
    float *dst;
    int32_t vocab;
    bool all;
} copy_ctx;

static awq_status copy_logits(int64_t row0, int64_t n, const float *logits, void *user) {
    copy_ctx *cc = user;
    size_t row = (size_t)cc->vocab * sizeof(float);
    if (cc->all)
        memcpy(cc->dst + (size_t)row0 * (size_t)cc->vocab, logits, (size_t)n * row);
    else
        memcpy(cc->dst, logits + (size_t)(n - 1) * (size_t)cc->vocab, row);
    return AWQ_OK;
}

awq_status awq_session_eval(awq_session *s, const int32_t *tokens, int32_t n, float *logits,
                            bool all_logits) {
    if (!s) return AWQ_ERR_INVALID_ARG;
    copy_ctx cc = {.dst = logits, .vocab = s->m->cfg.vocab_size, .all = all_logits};
    awq_logits_mode mode = !logits ? AWQ_LOGITS_NONE : all_logits ? AWQ_LOGITS_ALL : AWQ_LOGITS_LAST;
    return awq_session_run(s, tokens, n, mode, logits ? copy_logits : NULL, &cc);
}

/* ---- batched decoding ---------------------------------------------------------------------- */

/* One forward pass for n <= ss[0]->n_ub sessions, one token each; logits rows to ss[0]->host. */
static awq_status run_batch(awq_session *const *ss, int32_t n, const int32_t *tokens, int32_t *n_past,
                            awq_tensor *kv) {
    awq_session *s0 = ss[0];
    awq_model *m = s0->m;
    const awq_model_config *c = &m->cfg;
    const awq_backend_ops *ops = m->dev.ops;
    awq_backend_ctx *ctx = m->dev.ctx;
    awq_fwd_ctx f = {.cfg = c,
                     .dev = &m->dev,
                     .inv_freq = session_inv_freq(s0),
                     .s = &s0->s,
                     .inv_freq_local = m->inv_freq_local.data ? &m->inv_freq_local : NULL,
                     .seq_n_past = n_past};
    for (int32_t i = 0; i < n; i++) n_past[i] = ss[i]->n_past;
    TRY(ops->upload(ctx, s0->s.ids.data, s0->s.ids.offs, tokens, (size_t)n * sizeof(int32_t)));
    TRY(ops->upload(ctx, s0->s.pos.data, s0->s.pos.offs, n_past, (size_t)n * sizeof(int32_t)));
    awq_tensor ids = awq_tensor_1d(AWQ_DTYPE_I32, s0->s.ids.data, s0->s.ids.offs, n);
    awq_tensor x = awq_view_rows(&s0->s.x, 0, n);
    TRY(awq_fwd_embed(m, &x, &ids));
    awq_tensor *kcb = kv, *vcb = kv + n;
    for (int32_t l = 0; l < c->n_layers; l++) {
        for (int32_t i = 0; i < n; i++) {
            kcb[i] = ss[i]->kc[l];
            vcb[i] = ss[i]->vc[l];
        }
        TRY(awq_fwd_layer(&f, &m->layers[l], n, 1, 0, kcb, vcb));
    }
    awq_tensor xb = awq_view_rows(&s0->s.xb, 0, n), lg = awq_view_rows(&s0->logits, 0, n);
    TRY(awq_fwd_logits(m, &lg, &xb, &x));
    return ops->download(ctx, s0->host, s0->logits.data, s0->logits.offs,
                         (size_t)n * (size_t)c->vocab_size * sizeof(float));
}

awq_status awq_session_decode_batch(awq_session *const *sessions, int32_t n, const int32_t *tokens,
                                    float *logits) {
    if (!sessions || !tokens || n <= 0 || !sessions[0]) return AWQ_ERR_INVALID_ARG;
    awq_model *m = sessions[0]->m;
    awq_runtime *rt = m->rt;
    int32_t vocab = m->cfg.vocab_size;
    for (int32_t i = 0; i < n; i++) {
        const awq_session *s = sessions[i];
        if (!s || s->m != m)
            return awq_set_error(rt, AWQ_ERR_INVALID_ARG,
                                 "decode_batch: session %d is NULL or of another model", i);
        for (int32_t j = 0; j < i; j++)
            if (sessions[j] == s)
                return awq_set_error(rt, AWQ_ERR_INVALID_ARG,
                                     "decode_batch: session %d appears twice (also at %d)", i, j);
        if (s->n_past + 1 > s->n_ctx)
            return awq_set_error(rt, AWQ_ERR_INVALID_ARG,
                                 "decode_batch: session %d: context full (%d tokens)", i, s->n_ctx);
        if (tokens[i] < 0 || tokens[i] >= vocab)
            return awq_set_error(rt, AWQ_ERR_INVALID_ARG, "decode_batch: token id %d out of range [0, %d)",
                                 tokens[i], vocab);
    }
    // a single sequence takes the single-token path (and its CUDA Graph)
    if (n == 1) return awq_session_eval(sessions[0], tokens, 1, logits, false);
    int32_t *n_past = awq_malloc((size_t)n * sizeof *n_past);
    awq_tensor *kv = awq_malloc((size_t)n * 2 * sizeof *kv);
    awq_status st = AWQ_OK;
    if (!n_past || !kv) st = awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "out of host memory");
    for (int32_t i0 = 0, nb; i0 < n && st == AWQ_OK; i0 += nb) {
        // a group runs in the scratch of its first session
        nb = n - i0 < sessions[i0]->n_ub ? n - i0 : (int32_t)sessions[i0]->n_ub;
        st = run_batch(sessions + i0, nb, tokens + i0, n_past, kv);
        if (st == AWQ_OK && logits)
            memcpy(logits + (size_t)i0 * (size_t)vocab, sessions[i0]->host,
                   (size_t)nb * (size_t)vocab * sizeof(float));
    }
    if (st == AWQ_OK)
        for (int32_t i = 0; i < n; i++) sessions[i]->n_past++;
    awq_free(n_past);
    awq_free(kv);
    return st;
}
