/*
 * eval.c - perplexity as AutoAWQ (awq/evaluation/eval_utils.py) and quantization papers report
 * it: the whole text tokenized once, non-overlapping windows of ctx tokens, the mean negative
 * log-likelihood of every predicted token (ctx-1 per window), exp of that.
 */
#include <math.h>
#include <string.h>

#include "model.h"
#include "session.h"

typedef struct nll_ctx {
    const int32_t *window; /* (ctx,) tokens of the current window */
    int64_t        ctx;
    int32_t        vocab;
    double         nll;    /* sum over this window */
    int64_t        n;
} nll_ctx;

/* Row r predicts window[r+1]; the last row predicts nothing. log-softmax in double. */
static awq_status accumulate(int64_t row0, int64_t n, const float *logits, void *user) {
    nll_ctx *c = user;
    for (int64_t i = 0; i < n; i++) {
        int64_t r = row0 + i;
        if (r + 1 >= c->ctx) continue;
        const float *l = logits + (size_t)i * (size_t)c->vocab;
        float mx = l[0];
        for (int32_t j = 1; j < c->vocab; j++) mx = l[j] > mx ? l[j] : mx;
        double sum = 0;
        for (int32_t j = 0; j < c->vocab; j++) sum += exp((double)l[j] - mx);
        int32_t target = c->window[r + 1];
        c->nll += -((double)l[target] - mx - log(sum));
        c->n++;
    }
    return AWQ_OK;
}

awq_status awq_eval_perplexity(awq_model *m, awq_tokenizer *tok, const char *text, size_t len,
                               int32_t ctx, int32_t max_chunks, awq_ppl_chunk_fn cb, void *user,
                               awq_ppl_result *out) {
    if (!m || !tok || !text || !out || ctx < 2) return AWQ_ERR_INVALID_ARG;
    awq_runtime *rt = m->rt;
    memset(out, 0, sizeof *out);
    int64_t n_tok = 0;
    awq_status st = awq_tokenizer_encode(tok, text, len, true, NULL, 0, &n_tok);
    if (st != AWQ_OK) return st;
    int32_t *ids = awq_malloc((size_t)(n_tok ? n_tok : 1) * sizeof *ids);
    if (!ids) return awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "out of memory for %lld tokens",
                                   (long long)n_tok);
    st = awq_tokenizer_encode(tok, text, len, true, ids, n_tok, &n_tok);
    if (st != AWQ_OK) goto done;
    int64_t n_chunks = n_tok / ctx;
    if (n_chunks == 0) {
        st = awq_set_error(rt, AWQ_ERR_INVALID_ARG,
                           "text has %lld tokens, fewer than one window of %d", (long long)n_tok, ctx);
        goto done;
    }
    if (max_chunks > 0 && n_chunks > max_chunks) n_chunks = max_chunks;
    out->n_tokens = n_tok;
    awq_session *s = NULL;
    st = awq_session_create(&s, m, ctx);
    if (st != AWQ_OK) goto done;
    for (int64_t c = 0; c < n_chunks; c++) {
        nll_ctx nc = {.window = ids + c * ctx, .ctx = ctx, .vocab = m->cfg.vocab_size};
        awq_session_reset(s);
        st = awq_session_run(s, nc.window, ctx, AWQ_LOGITS_ALL, accumulate, &nc);
        if (st != AWQ_OK) break;
        out->nll_sum += nc.nll;
        out->n_pred += nc.n;
        out->n_chunks = (int32_t)(c + 1);
        if (!isfinite(out->nll_sum)) {
            st = awq_set_error(rt, AWQ_ERR_NUMERIC, "non-finite log-likelihood in window %lld",
                               (long long)c);
            break;
        }
        if (cb && !cb((int32_t)c, (int32_t)n_chunks, out->nll_sum, out->n_pred, user)) {
            st = awq_set_error(rt, AWQ_ERR_CANCELLED, "perplexity evaluation cancelled");
            break;
        }
    }
    awq_session_destroy(s);
    if (out->n_pred > 0) out->ppl = exp(out->nll_sum / (double)out->n_pred);
done:
    awq_free(ids);
    return st;
}
