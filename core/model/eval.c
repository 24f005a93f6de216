/*
 * eval.c - perplexity as AutoAWQ (awq/evaluation/eval_utils.py) and quantization papers report
 * it: the whole text tokenized once, non-overlapping windows of ctx tokens, the mean negative
 * log-likelihood of every predicted token (ctx-1 per window), exp of that. And the KL divergence
 * from a base model over the same windows (below).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "awq_pack.h"
#include "model.h"
#include "session.h"

typedef struct nll_ctx {
    const int32_t *window; /* (ctx,) tokens of the current window */
    int64_t ctx;
    int32_t vocab;
    double nll; /* sum over this window */
    int64_t n;
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

awq_status awq_eval_perplexity(awq_model *m, awq_tokenizer *tok, const char *text, size_t len, int32_t ctx,
                               int32_t max_chunks, awq_ppl_chunk_fn cb, void *user, awq_ppl_result *out) {
    if (!m || !tok || !text || !out || ctx < 2) return AWQ_ERR_INVALID_ARG;
    awq_runtime *rt = m->rt;
    memset(out, 0, sizeof *out);
    int64_t n_tok = 0;
    awq_status st = awq_tokenizer_encode(tok, text, len, true, NULL, 0, &n_tok);
    if (st != AWQ_OK) return st;
    int32_t *ids = awq_malloc((size_t)(n_tok ? n_tok : 1) * sizeof *ids);
    if (!ids)
        return awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "out of memory for %lld tokens", (long long)n_tok);
    st = awq_tokenizer_encode(tok, text, len, true, ids, n_tok, &n_tok);
    if (st != AWQ_OK) goto done;
    int64_t n_chunks = n_tok / ctx;
    if (n_chunks == 0) {
        st = awq_set_error(rt, AWQ_ERR_INVALID_ARG, "text has %lld tokens, fewer than one window of %d",
                           (long long)n_tok, ctx);
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
            st = awq_set_error(rt, AWQ_ERR_NUMERIC, "non-finite log-likelihood in window %lld", (long long)c);
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

/* ---- KL divergence from a base model -------------------------------------------------------
 *
 * The base model's log-probabilities of every predicted row go through fp16 (a window of them
 * in memory, or the logits file), so a run with both models and a run from the file give the
 * same numbers. Logits file layout (little-endian):
 *   "AWQLOGP1", int32 version (1), int32 vocab, int32 ctx, int32 n_chunks, int64 n_tokens,
 *   int32 tokens[n_chunks * ctx], then per window (ctx-1) rows of vocab fp16 log-probabilities.
 */

#define LOGP_MAGIC  "AWQLOGP1"
#define LOGP_HEADER 32

typedef struct kld_ctx {
    const int32_t *window; /* (ctx,) */
    int64_t ctx;
    int32_t vocab;
    bool score;     /* false: fill base from the logits; true: compare with base */
    uint16_t *base; /* (ctx-1, vocab) fp16 log-probs of the base */
    double nll, base_nll;
    int64_t n;
    double *kld; /* per scored token, appended at kld[n_kld] */
    int64_t n_kld;
    int64_t agree;
} kld_ctx;

static double log_sum_exp(const float *l, int32_t vocab) {
    float mx = l[0];
    for (int32_t j = 1; j < vocab; j++) mx = l[j] > mx ? l[j] : mx;
    double sum = 0;
    for (int32_t j = 0; j < vocab; j++) sum += exp((double)l[j] - mx);
    return (double)mx + log(sum);
}

static awq_status kld_rows(int64_t row0, int64_t n, const float *logits, void *user) {
    kld_ctx *c = user;
    for (int64_t i = 0; i < n; i++) {
        int64_t r = row0 + i;
        if (r + 1 >= c->ctx) continue;
        const float *l = logits + (size_t)i * (size_t)c->vocab;
        uint16_t *b = c->base + (size_t)r * (size_t)c->vocab;
        int32_t target = c->window[r + 1];
        double lse = log_sum_exp(l, c->vocab);
        if (!c->score) {
            for (int32_t j = 0; j < c->vocab; j++) b[j] = awq_f32_to_f16((float)((double)l[j] - lse));
            c->base_nll += -(double)awq_f16_to_f32(b[target]);
            c->n++;
            continue;
        }
        double kl = 0;
        int32_t top_b = 0, top_m = 0;
        float best_b = -INFINITY, best_m = -INFINITY;
        for (int32_t j = 0; j < c->vocab; j++) {
            double lb = awq_f16_to_f32(b[j]);
            kl += exp(lb) * (lb - ((double)l[j] - lse));
            if ((float)lb > best_b) {
                best_b = (float)lb;
                top_b = j;
            }
            if (l[j] > best_m) {
                best_m = l[j];
                top_m = j;
            }
        }
        c->nll += -((double)l[target] - lse);
        c->base_nll += -(double)awq_f16_to_f32(b[target]);
        c->n++;
        c->kld[c->n_kld++] = kl;
        c->agree += top_b == top_m;
    }
    return AWQ_OK;
}

/* Tokenizes text and counts the windows (shared by the two entry points). Owned: *ids. */
static awq_status tokenize_windows(awq_model *m, awq_tokenizer *tok, const char *text, size_t len,
                                   int32_t ctx, int32_t max_chunks, int32_t **ids, int64_t *n_tok,
                                   int64_t *n_chunks) {
    awq_runtime *rt = m->rt;
    *ids = NULL;
    awq_status st = awq_tokenizer_encode(tok, text, len, true, NULL, 0, n_tok);
    if (st != AWQ_OK) return st;
    *ids = awq_malloc((size_t)(*n_tok ? *n_tok : 1) * sizeof **ids);
    if (!*ids)
        return awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "out of memory for %lld tokens", (long long)*n_tok);
    st = awq_tokenizer_encode(tok, text, len, true, *ids, *n_tok, n_tok);
    if (st != AWQ_OK) return st;
    *n_chunks = *n_tok / ctx;
    if (*n_chunks == 0)
        return awq_set_error(rt, AWQ_ERR_INVALID_ARG, "text has %lld tokens, fewer than one window of %d",
                             (long long)*n_tok, ctx);
    if (max_chunks > 0 && *n_chunks > max_chunks) *n_chunks = max_chunks;
    return AWQ_OK;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Linear interpolation between the closest ranks of a sorted array. */
static double percentile(const double *v, int64_t n, double q) {
    if (n == 0) return 0;
    double pos = q * (double)(n - 1);
    int64_t i = (int64_t)pos;
    if (i + 1 >= n) return v[n - 1];
    return v[i] + (pos - (double)i) * (v[i + 1] - v[i]);
}

static awq_status read_exact(awq_runtime *rt, FILE *f, void *buf, size_t n, const char *path,
                             const char *what) {
    if (fread(buf, 1, n, f) != n)
        return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: truncated (reading %s)", path, what);
    return AWQ_OK;
}

awq_status awq_eval_kld(awq_model *m, awq_model *base, const char *logits_path, awq_tokenizer *tok,
                        const char *text, size_t len, int32_t ctx, int32_t max_chunks, awq_ppl_chunk_fn cb,
                        void *user, awq_kld_result *out) {
    if (!m || !tok || !text || !out || ctx < 2 || (!base == !logits_path)) return AWQ_ERR_INVALID_ARG;
    awq_runtime *rt = m->rt;
    memset(out, 0, sizeof *out);
    int32_t vocab = m->cfg.vocab_size;
    if (base && base->cfg.vocab_size != vocab)
        return awq_set_error(rt, AWQ_ERR_INVALID_ARG, "base model vocabulary %d differs from %d",
                             base->cfg.vocab_size, vocab);
    int32_t *ids = NULL, *ftok = NULL;
    int64_t n_tok = 0, n_chunks = 0;
    FILE *f = NULL;
    awq_session *s = NULL, *sb = NULL;
    kld_ctx kc = {.ctx = ctx, .vocab = vocab};
    awq_status st = tokenize_windows(m, tok, text, len, ctx, max_chunks, &ids, &n_tok, &n_chunks);
    if (st != AWQ_OK) goto done;
    if (logits_path) {
        f = fopen(logits_path, "rb");
        if (!f) {
            st = awq_set_error(rt, AWQ_ERR_IO, "%s: cannot open the logits file", logits_path);
            goto done;
        }
        unsigned char h[LOGP_HEADER];
        if ((st = read_exact(rt, f, h, sizeof h, logits_path, "the header")) != AWQ_OK) goto done;
        int32_t fv[4];
        memcpy(fv, h + 8, sizeof fv);
        if (memcmp(h, LOGP_MAGIC, 8) || fv[0] != 1) {
            st = awq_set_error(rt, AWQ_ERR_FORMAT, "%s: not an awq logits file (version 1)", logits_path);
            goto done;
        }
        if (fv[1] != vocab || fv[2] != ctx || fv[3] < n_chunks) {
            st = awq_set_error(rt, AWQ_ERR_INVALID_ARG,
                               "%s: written for vocab %d, ctx %d, %d windows; this run needs vocab %d, "
                               "ctx %d, %lld windows",
                               logits_path, fv[1], fv[2], fv[3], vocab, ctx, (long long)n_chunks);
            goto done;
        }
        size_t nt = (size_t)fv[3] * (size_t)ctx;
        ftok = awq_malloc(nt * sizeof *ftok);
        if (!ftok) {
            st = awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "out of host memory");
            goto done;
        }
        if ((st = read_exact(rt, f, ftok, nt * sizeof *ftok, logits_path, "the tokens")) != AWQ_OK) goto done;
        if (memcmp(ftok, ids, (size_t)n_chunks * (size_t)ctx * sizeof *ids)) {
            st = awq_set_error(rt, AWQ_ERR_INVALID_ARG,
                               "%s: the file's tokens differ from this text's (another text or tokenizer)",
                               logits_path);
            goto done;
        }
    }
    kc.base = awq_malloc((size_t)(ctx - 1) * (size_t)vocab * sizeof *kc.base);
    kc.kld = awq_malloc((size_t)n_chunks * (size_t)(ctx - 1) * sizeof *kc.kld);
    if (!kc.base || !kc.kld) {
        st = awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "out of host memory for %d x %d base log-probs",
                           ctx - 1, vocab);
        goto done;
    }
    if ((st = awq_session_create(&s, m, ctx)) != AWQ_OK) goto done;
    if (base && (st = awq_session_create(&sb, base, ctx)) != AWQ_OK) goto done;
    out->ppl.n_tokens = out->base_ppl.n_tokens = n_tok;
    for (int64_t c = 0; c < n_chunks; c++) {
        kc.window = ids + c * ctx;
        if (base) {
            kc.score = false;
            awq_session_reset(sb);
            if ((st = awq_session_run(sb, kc.window, ctx, AWQ_LOGITS_ALL, kld_rows, &kc)) != AWQ_OK) break;
            kc.base_nll = 0; /* counted again while scoring */
            kc.n = 0;
        } else {
            size_t nb = (size_t)(ctx - 1) * (size_t)vocab;
            if ((st = read_exact(rt, f, kc.base, nb * sizeof *kc.base, logits_path, "log-probs")) != AWQ_OK)
                break;
        }
        kc.score = true;
        kc.nll = kc.base_nll = 0;
        kc.n = 0;
        awq_session_reset(s);
        if ((st = awq_session_run(s, kc.window, ctx, AWQ_LOGITS_ALL, kld_rows, &kc)) != AWQ_OK) break;
        out->ppl.nll_sum += kc.nll;
        out->base_ppl.nll_sum += kc.base_nll;
        out->ppl.n_pred += kc.n;
        out->base_ppl.n_pred += kc.n;
        out->ppl.n_chunks = out->base_ppl.n_chunks = (int32_t)(c + 1);
        if (!isfinite(out->ppl.nll_sum)) {
            st = awq_set_error(rt, AWQ_ERR_NUMERIC, "non-finite log-likelihood in window %lld", (long long)c);
            break;
        }
        if (cb && !cb((int32_t)c, (int32_t)n_chunks, out->ppl.nll_sum, out->ppl.n_pred, user)) {
            st = awq_set_error(rt, AWQ_ERR_CANCELLED, "evaluation cancelled");
            break;
        }
    }
    if (out->ppl.n_pred > 0) {
        out->ppl.ppl = exp(out->ppl.nll_sum / (double)out->ppl.n_pred);
        out->base_ppl.ppl = exp(out->base_ppl.nll_sum / (double)out->base_ppl.n_pred);
    }
    if (kc.n_kld > 0) {
        double sum = 0;
        for (int64_t i = 0; i < kc.n_kld; i++) sum += kc.kld[i];
        qsort(kc.kld, (size_t)kc.n_kld, sizeof *kc.kld, cmp_double);
        out->n = kc.n_kld;
        out->kld_mean = sum / (double)kc.n_kld;
        out->kld_median = percentile(kc.kld, kc.n_kld, 0.5);
        out->kld_p99 = percentile(kc.kld, kc.n_kld, 0.99);
        out->kld_max = kc.kld[kc.n_kld - 1];
        out->top1_agree = (double)kc.agree / (double)kc.n_kld;
    }
done:
    if (f) fclose(f);
    awq_session_destroy(s);
    awq_session_destroy(sb);
    awq_free(kc.base);
    awq_free(kc.kld);
    awq_free(ftok);
    awq_free(ids);
    return st;
}

awq_status awq_eval_save_logits(awq_model *m, awq_tokenizer *tok, const char *text, size_t len, int32_t ctx,
                                int32_t max_chunks, const char *path, awq_ppl_chunk_fn cb, void *user,
                                awq_ppl_result *out) {
    if (!m || !tok || !text || !path || ctx < 2) return AWQ_ERR_INVALID_ARG;
    awq_runtime *rt = m->rt;
    awq_ppl_result r = {0};
    int32_t vocab = m->cfg.vocab_size;
    int32_t *ids = NULL;
    int64_t n_tok = 0, n_chunks = 0;
    awq_session *s = NULL;
    FILE *f = NULL;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    kld_ctx kc = {.ctx = ctx, .vocab = vocab};
    awq_status st = tokenize_windows(m, tok, text, len, ctx, max_chunks, &ids, &n_tok, &n_chunks);
    if (st != AWQ_OK) goto done;
    size_t nb = (size_t)(ctx - 1) * (size_t)vocab;
    kc.base = awq_malloc(nb * sizeof *kc.base);
    if (!kc.base) {
        st = awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "out of host memory for %d x %d log-probs", ctx - 1,
                           vocab);
        goto done;
    }
    if ((st = awq_session_create(&s, m, ctx)) != AWQ_OK) goto done;
    f = fopen(tmp, "wb");
    if (!f) {
        st = awq_set_error(rt, AWQ_ERR_IO, "%s: cannot create", tmp);
        goto done;
    }
    unsigned char h[LOGP_HEADER] = {0};
    int32_t hv[4] = {1, vocab, ctx, (int32_t)n_chunks};
    memcpy(h, LOGP_MAGIC, 8);
    memcpy(h + 8, hv, sizeof hv);
    memcpy(h + 24, &n_tok, sizeof n_tok);
    if (fwrite(h, 1, sizeof h, f) != sizeof h ||
        fwrite(ids, sizeof *ids, (size_t)n_chunks * (size_t)ctx, f) != (size_t)n_chunks * (size_t)ctx) {
        st = awq_set_error(rt, AWQ_ERR_IO, "%s: write failed", tmp);
        goto done;
    }
    r.n_tokens = n_tok;
    for (int64_t c = 0; c < n_chunks; c++) {
        kc.window = ids + c * ctx;
        kc.score = false;
        kc.base_nll = 0;
        kc.n = 0;
        awq_session_reset(s);
        if ((st = awq_session_run(s, kc.window, ctx, AWQ_LOGITS_ALL, kld_rows, &kc)) != AWQ_OK) goto done;
        if (fwrite(kc.base, sizeof *kc.base, nb, f) != nb) {
            st = awq_set_error(rt, AWQ_ERR_IO, "%s: write failed (disk full?)", tmp);
            goto done;
        }
        r.nll_sum += kc.base_nll;
        r.n_pred += kc.n;
        r.n_chunks = (int32_t)(c + 1);
        if (cb && !cb((int32_t)c, (int32_t)n_chunks, r.nll_sum, r.n_pred, user)) {
            st = awq_set_error(rt, AWQ_ERR_CANCELLED, "evaluation cancelled");
            goto done;
        }
    }
    if (fclose(f) != 0) {
        f = NULL;
        st = awq_set_error(rt, AWQ_ERR_IO, "%s: write failed", tmp);
        goto done;
    }
    f = NULL;
    if (rename(tmp, path) != 0) {
        st = awq_set_error(rt, AWQ_ERR_IO, "%s: cannot rename to %s", tmp, path);
        goto done;
    }
    if (r.n_pred > 0) r.ppl = exp(r.nll_sum / (double)r.n_pred);
    if (out) *out = r;
done:
    if (f) fclose(f);
    if (st != AWQ_OK) unlink(tmp);
    awq_session_destroy(s);
    awq_free(kc.base);
    awq_free(ids);
    return st;
}
