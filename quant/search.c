/*
 * search.c - the AWQ search for one decoder layer (docs/algorithm.md 2-6), through backend ops:
 * capture the full-precision inputs/outputs, grid-search per-channel scales per group, fold them
 * into the norms/linears, then search clipping thresholds.
 *
 * Deliberate differences from AutoAWQ (also in the README): the search runs in fp32 (AutoAWQ:
 * the checkpoint dtype, usually bf16); single-linear groups (o_proj, down_proj) evaluate the
 * exact same MSE through the Gram matrix X^T X computed once (loss = tr(D G D^T) / (N out),
 * D = W - Q(W s)/s) instead of re-running the linear over every calibration token.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model.h"
#include "quant.h"
#include "quant_ops.h"


#define AWQ_N_GRID      20   /* alpha = r / 20, r = 0..19 (1.0 never tried) */
#define AWQ_CLIP_GRID   20   /* shrink candidates m * (1 - i / 20) */
#define AWQ_CLIP_STEPS  10   /* i = 0..9 (max_shrink 0.5) */
#define AWQ_CLIP_TOKENS 512  /* n_sample_token */
#define AWQ_CHUNK_ROWS  4096 /* calibration rows per forward call */

/* ---- activations ----------------------------------------------------------------------- */

awq_status awq_acts_alloc(awq_runtime *rt, const awq_device *dev, const awq_model_config *c, int64_t B,
                          int64_t T, awq_acts *a) {
    memset(a, 0, sizeof *a);
    a->B = B;
    a->T = T;
    a->N = B * T;
    a->chunk_blocks = AWQ_CHUNK_ROWS / T > 0 ? AWQ_CHUNK_ROWS / T : 1;
    if (a->chunk_blocks > B) a->chunk_blocks = B;
    int64_t d = c->d_model, qd = (int64_t)c->n_heads * c->head_dim, ff = c->d_ff, N = a->N;
    struct {
        awq_tensor *t;
        int64_t cols;
    } plan[] = {
        {&a->x, d},        {&a->xnext, d},     {&a->inp_qkv, d}, {&a->inp_o, qd},
        {&a->inp_gate, d}, {&a->inp_down, ff}, {&a->fp_attn, d}, {&a->fp_mlp, d},
    };
    for (size_t i = 0; i < sizeof plan / sizeof plan[0]; i++) {
        int64_t ne[2] = {N, plan[i].cols};
        TRY(awq_tensor_alloc(rt, dev, &a->bufs, AWQ_DTYPE_F32, 2, ne, plan[i].t));
    }
    if (c->n_experts > 0) {
        int64_t nk = N * c->n_experts_used, e1[2] = {nk, d}, e2[2] = {nk, c->moe_ff},
                e3[2] = {N, c->shared_ff};
        a->moe_off = awq_calloc((size_t)c->n_experts + 1, sizeof *a->moe_off);
        if (!a->moe_off) return awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
        TRY(awq_tensor_alloc(rt, dev, &a->bufs, AWQ_DTYPE_F32, 2, e1, &a->moe_in));
        TRY(awq_tensor_alloc(rt, dev, &a->bufs, AWQ_DTYPE_F32, 2, e2, &a->moe_down));
        if (c->shared_ff > 0) TRY(awq_tensor_alloc(rt, dev, &a->bufs, AWQ_DTYPE_F32, 2, e3, &a->sh_down));
    }
    return awq_fwd_scratch_alloc(rt, dev, &a->bufs, c, a->chunk_blocks * T, &a->s);
}

void awq_acts_free(const awq_device *dev, awq_acts *a) {
    awq_buflist_free(dev, &a->bufs);
    awq_free(a->moe_off);
    memset(a, 0, sizeof *a);
}

void awq_acts_advance(awq_acts *a) {
    awq_tensor t = a->x;
    a->x = a->xnext;
    a->xnext = t;
}

static awq_fwd_ctx fwd_ctx(awq_search *S) {
    awq_fwd_ctx f = {.cfg = S->cfg,
                     .dev = S->dev,
                     .inv_freq = S->inv_freq,
                     .s = &S->acts->s,
                     .inv_freq_local = S->inv_freq_local};
    return f;
}

static bool cancelled(awq_search *S, float frac, const char *stage) {
    if (!S->progress) return false;
    char msg[160];
    snprintf(msg, sizeof msg, "%s: %s", S->stage_prefix ? S->stage_prefix : "", stage);
    return !S->progress(S->progress_base + S->progress_span * frac, msg, S->progress_user);
}

/* FLOPs of the self-attention module / MLP over n = B*T rows. */
static double attn_flops(const awq_model_config *c, int64_t B, int64_t T) {
    double n = (double)B * T, d = c->d_model, hd = c->head_dim, H = c->n_heads,
           kvd = (double)c->n_kv_heads * hd, qd = H * hd;
    return 2 * n * d * (qd + 2 * kvd) + 2 * n * qd * d + 4.0 * B * (T * (T + 1) / 2.0) * H * hd;
}
static double mlp_flops(const awq_model_config *c, int64_t n) {
    return 6.0 * (double)n * c->d_model * c->d_ff;
}

/* Mixture of experts: the experts' inputs per expert (AutoAWQ hooks each expert's linears, so
 * each sees only the rows routed to it). Two passes over the chunks of the captured feed-forward
 * input: the first counts the rows of each expert, the second gathers them expert by expert
 * into a->moe_in / a->moe_down (and the shared expert's down input into a->sh_down). */
static awq_status capture_moe(awq_search *S, awq_qlayer *L) {
    awq_acts *a = S->acts;
    const awq_backend_ops *ops = S->dev->ops;
    awq_backend_ctx *ctx = S->dev->ctx;
    const awq_model_config *c = S->cfg;
    awq_fwd_ctx f = fwd_ctx(S);
    int32_t E = L->n_experts;
    int64_t k = c->n_experts_used, d = c->d_model;
    int64_t *rows = awq_calloc((size_t)(2 * (E + 1)), sizeof *rows), *fill = rows + E + 1;
    if (!rows) return awq_set_error(S->rt, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
    awq_status st = AWQ_OK;
    for (int32_t e = 0; e < E; e++) L->expert_tokens[e] = 0;
    for (int pass = 0; pass < 2 && st == AWQ_OK; pass++) {
        if (pass == 1) {
            a->moe_off[0] = 0;
            for (int32_t e = 0; e < E; e++) {
                a->moe_off[e + 1] = a->moe_off[e] + L->expert_tokens[e];
                fill[e] = a->moe_off[e];
            }
        }
        for (int64_t b0 = 0; b0 < a->B && st == AWQ_OK; b0 += a->chunk_blocks) {
            int64_t nb = a->B - b0 < a->chunk_blocks ? a->B - b0 : a->chunk_blocks;
            int64_t n = nb * a->T, r0 = b0 * a->T;
            awq_tensor in = awq_view_rows(&a->inp_gate, r0, n), xb = awq_view_rows(&a->s.xb, 0, n),
                       out = awq_view_rows(&a->s.xo, 0, n);
            if ((st = ops->convert(ctx, &xb, &in)) || (st = awq_fwd_moe_ex(&f, &L->dw, &xb, &out, rows)))
                break;
            S->flops += 6.0 * (double)n * k * d * c->moe_ff;
            for (int32_t e = 0; e < E && st == AWQ_OK; e++) {
                int64_t m = rows[e + 1] - rows[e];
                if (pass == 0 || m == 0) {
                    L->expert_tokens[e] += pass == 0 ? m : 0;
                    continue;
                }
                awq_tensor src_x = awq_view_rows(&a->s.moe_x, rows[e], m),
                           dst_x = awq_view_rows(&a->moe_in, fill[e], m);
                awq_tensor src_g = awq_view_rows(&a->s.g, rows[e], m),
                           dst_g = awq_view_rows(&a->moe_down, fill[e], m);
                src_g.ne[1] = c->moe_ff;
                if ((st = ops->convert(ctx, &dst_x, &src_x)) || (st = ops->convert(ctx, &dst_g, &src_g)))
                    break;
                fill[e] += m;
            }
            if (st == AWQ_OK && pass == 1 && c->shared_ff > 0) {
                awq_tensor src = awq_view_rows(&a->s.g, n * k, n), dst = awq_view_rows(&a->sh_down, r0, n);
                src.ne[1] = c->shared_ff;
                st = ops->convert(ctx, &dst, &src);
            }
        }
    }
    awq_free(rows);
    return st;
}

awq_status awq_capture(awq_search *S, awq_qlayer *L) {
    awq_acts *a = S->acts;
    const awq_backend_ops *ops = S->dev->ops;
    awq_backend_ctx *ctx = S->dev->ctx;
    awq_fwd_ctx f = fwd_ctx(S);
    float eps = (float)S->cfg->rms_eps;
    for (int64_t b0 = 0; b0 < a->B; b0 += a->chunk_blocks) {
        int64_t nb = a->B - b0 < a->chunk_blocks ? a->B - b0 : a->chunk_blocks;
        int64_t n = nb * a->T, r0 = b0 * a->T;
        awq_tensor x = awq_view_rows(&a->x, r0, n), xn = awq_view_rows(&a->xnext, r0, n);
        awq_tensor xb = awq_view_rows(&a->s.xb, 0, n);
        awq_tensor att = awq_view_rows(&a->s.att, 0, n), g = awq_view_rows(&a->s.g, 0, n);
        awq_tensor iqkv = awq_view_rows(&a->inp_qkv, r0, n), io = awq_view_rows(&a->inp_o, r0, n),
                   igate = awq_view_rows(&a->inp_gate, r0, n), idown = awq_view_rows(&a->inp_down, r0, n);
        awq_tensor fpa = awq_view_rows(&a->fp_attn, r0, n), fpm = awq_view_rows(&a->fp_mlp, r0, n);
        TRY(awq_fwd_set_positions(&f, nb, a->T, 0));
        // attention rmsnorm -> self-attention (records the inputs of q/k/v and o_proj)
        TRY(ops->rmsnorm(ctx, &iqkv, &x, &L->dw.attn_norm, eps));
        TRY(awq_fwd_attention(&f, &L->dw, &iqkv, nb, a->T, 0, NULL, NULL, &fpa));
        TRY(ops->convert(ctx, &io, &att));
        if (L->dw.post_attn_norm.data) { /* Gemma: the residual adds the normed module output */
            awq_tensor xo = awq_view_rows(&a->s.xo, 0, n);
            TRY(ops->rmsnorm(ctx, &xo, &fpa, &L->dw.post_attn_norm, eps));
            TRY(ops->binop(ctx, &xn, &x, &xo, AWQ_BINOP_ADD));
        } else {
            TRY(ops->binop(ctx, &xn, &x, &fpa, AWQ_BINOP_ADD));
        }
        // ffn rmsnorm -> MLP (records the inputs of gate/up and down_proj)
        TRY(ops->rmsnorm(ctx, &igate, &xn, &L->dw.ffn_norm, eps));
        TRY(ops->convert(ctx, &xb, &igate));
        TRY(awq_fwd_mlp(&f, &L->dw, &xb, &fpm));
        TRY(ops->convert(ctx, &idown, &g));
        if (L->dw.post_ffn_norm.data) {
            awq_tensor xo = awq_view_rows(&a->s.xo, 0, n);
            TRY(ops->rmsnorm(ctx, &xo, &fpm, &L->dw.post_ffn_norm, eps));
            TRY(ops->binop(ctx, &xn, &xn, &xo, AWQ_BINOP_ADD));
        } else {
            TRY(ops->binop(ctx, &xn, &xn, &fpm, AWQ_BINOP_ADD));
        }
        S->flops += attn_flops(S->cfg, nb, a->T) + mlp_flops(S->cfg, n);
        if (cancelled(S, 0.0f, "capture")) return awq_set_error(S->rt, AWQ_ERR_CANCELLED, "cancelled");
    }
    if (L->n_experts > 0) TRY(capture_moe(S, L));
    return ops->synchronize(ctx);
}

/* ---- scale search ------------------------------------------------------------------------ */

typedef enum group_kind { G_ATTN, G_MLP, G_LINEAR } group_kind;

typedef struct group_def {
    const char *name; /* "qkv", "o", "gate_up", "down" */
    const int *lins;  /* linears whose input columns get s */
    int n_lins;
    int prev;           /* linear whose output rows get 1/s, or -1 (attn norm), -2 (ffn norm) */
    awq_tensor *inp;    /* (N, C) */
    awq_tensor *fp_out; /* G_ATTN / G_MLP reference output (N, d) */
    group_kind kind;
    bool moe_in;    /* the experts' gate/up: the full-precision router and shared
                                      gate read the same input (columns scaled by s, exactly) */
    char label[48]; /* name storage for per-expert groups */
    awq_phase ph;   /* the phase its search time is counted in */
} group_def;

/* Computes the AutoAWQ scale candidate for alpha (docs/algorithm.md 3.3) into s (C,). */
static void scale_candidate(const float *xbar, const float *wbar, int64_t C, double alpha, bool duo,
                            float *s) {
    float mx = -INFINITY, mn = INFINITY;
    for (int64_t j = 0; j < C; j++) {
        float v = duo ? (float)(pow(xbar[j], alpha) / (pow(wbar[j], 1.0 - alpha) + 1e-4))
                      : (float)pow(xbar[j], alpha);
        if (v < 1e-4f) v = 1e-4f;
        s[j] = v;
        mx = v > mx ? v : mx;
        mn = v < mn ? v : mn;
    }
    float norm = sqrtf(mx * mn);
    for (int64_t j = 0; j < C; j++) {
        float v = s[j] / norm;
        s[j] = isfinite(v) ? v : 1.0f;
    }
}

/* Loss of one candidate for the group (fake-quantized weights already in L->fq). */
static awq_status group_loss(awq_search *S, awq_qlayer *L, const group_def *g, const awq_tensor *gram,
                             awq_tensor *tmp_d, awq_tensor *tmp_dg, double *loss) {
    awq_acts *a = S->acts;
    const awq_backend_ops *ops = S->dev->ops;
    awq_backend_ctx *ctx = S->dev->ctx;
    int64_t Nr = awq_tensor_rows(g->inp); /* the rows routed to an expert, else all N */
    if (g->kind == G_LINEAR) {
        int l = g->lins[0];
        awq_linear *lin = awq_layer_lin(&L->dw, l);
        int64_t O = L->out[l], C = L->in[l];
        awq_tensor D = awq_view_rows(tmp_d, 0, O);
        TRY(ops->binop(ctx, &D, &lin->w, &L->fq[l], AWQ_BINOP_SUB));
        double dot = 0;
        if (gram->data) {
            /* sum over tokens of |x D^T|^2 = tr(D G D^T) with G = X^T X */
            awq_tensor DG = awq_view_rows(tmp_dg, 0, O);
            TRY(ops->matmul(ctx, &DG, &D, gram, NULL));
            TRY(awq_qop_scalar(S, &dot, &DG, &D, AWQ_SCALAR_DOT));
            S->flops += 2.0 * O * C * C + 3.0 * O * C;
        } else {
            /* few tokens: the output difference x D^T directly, chunk by chunk */
            if (a->s.n_max * O > awq_tensor_nelem(&a->s.g))
                return awq_set_error(S->rt, AWQ_ERR_UNSUPPORTED,
                                     "layer %d: out_features %lld of linear %d "
                                     "exceed the scratch",
                                     L->index, (long long)O, l);
            for (int64_t r0 = 0; r0 < Nr; r0 += a->s.n_max) {
                int64_t n = Nr - r0 < a->s.n_max ? Nr - r0 : a->s.n_max;
                awq_tensor in = awq_view_rows(g->inp, r0, n);
                awq_tensor Y = awq_tensor_2d(AWQ_DTYPE_F32, a->s.g.data, a->s.g.offs, n, O);
                double part = 0;
                TRY(ops->matmul(ctx, &Y, &in, &D, NULL));
                TRY(awq_qop_scalar(S, &part, &Y, &Y, AWQ_SCALAR_DOT));
                dot += part;
            }
            S->flops += 2.0 * Nr * C * O + 3.0 * O * C;
        }
        *loss = dot / ((double)Nr * (double)O);
        return AWQ_OK;
    }
    awq_layer_weights w = L->dw;
    awq_linear *experts = NULL; /* the candidate's own copy (w.experts would alias L->dw's) */
    if (w.n_experts > 0) {
        experts = awq_malloc((size_t)(3 * w.n_experts) * sizeof *experts);
        if (!experts) return awq_set_error(S->rt, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
        memcpy(experts, w.experts, (size_t)(3 * w.n_experts) * sizeof *experts);
        w.experts = experts;
    }
    for (int i = 0; i < g->n_lins; i++)
        if (!L->excluded[g->lins[i]]) awq_layer_lin(&w, g->lins[i])->w = L->fq[g->lins[i]];
    awq_status st = AWQ_OK;
    awq_fwd_ctx f = fwd_ctx(S);
    double sse = 0;
    for (int64_t b0 = 0; b0 < a->B; b0 += a->chunk_blocks) {
        int64_t nb = a->B - b0 < a->chunk_blocks ? a->B - b0 : a->chunk_blocks;
        int64_t n = nb * a->T, r0 = b0 * a->T;
        awq_tensor in = awq_view_rows(g->inp, r0, n), ref = awq_view_rows(g->fp_out, r0, n);
        awq_tensor out = awq_view_rows(&a->s.xo, 0, n);
        if (g->kind == G_ATTN) {
            if ((st = awq_fwd_set_positions(&f, nb, a->T, 0)) ||
                (st = awq_fwd_attention(&f, &w, &in, nb, a->T, 0, NULL, NULL, &out)))
                break;
            S->flops += attn_flops(S->cfg, nb, a->T);
        } else {
            if ((st = awq_fwd_mlp(&f, &w, &in, &out))) break;
            S->flops += mlp_flops(S->cfg, n);
        }
        double part = 0;
        if ((st = awq_qop_scalar(S, &part, &out, &ref, AWQ_SCALAR_SSE))) break;
        sse += part;
    }
    awq_free(experts);
    *loss = sse / ((double)a->N * (double)S->cfg->d_model);
    return st;
}

/* Grid search of docs/algorithm.md 3 for one group; best_s (C,) receives the scales. */
static awq_status search_group(awq_search *S, awq_qlayer *L, const group_def *g, float *best_s, float frac0,
                               float frac1) {
    awq_runtime *rt = S->rt;
    const awq_backend_ops *ops = S->dev->ops;
    awq_backend_ctx *ctx = S->dev->ctx;
    int64_t C = L->in[g->lins[0]];
    awq_status st = AWQ_OK;
    awq_buflist tmp = {0};
    float *xbar = awq_malloc((size_t)C * sizeof *xbar), *wbar = awq_calloc((size_t)C, sizeof *wbar),
          *wtmp = awq_malloc((size_t)C * sizeof *wtmp), *s = awq_malloc((size_t)C * sizeof *s);
    if (!xbar || !wbar || !wtmp || !s) {
        st = awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }

    // x-bar: mean |x| per input channel over all calibration tokens
    if ((st = awq_qop_reduce(S, xbar, g->inp, AWQ_REDUCE_MEAN_ABS_COLS, 0))) goto done;
    // w-bar: mean over the group's rows of |w| / max|w| of its quantization group
    int64_t rows = 0;
    for (int i = 0; i < g->n_lins; i++) {
        int l = g->lins[i];
        if (L->excluded[l]) continue;
        awq_linear *lin = awq_layer_lin(&L->dw, l);
        if ((st = awq_qop_reduce(S, wtmp, &lin->w, AWQ_REDUCE_WMEAN_GROUPS, S->qd.group_size))) goto done;
        for (int64_t j = 0; j < C; j++) wbar[j] += wtmp[j] * (float)L->out[l];
        rows += L->out[l];
    }
    for (int64_t j = 0; j < C; j++) wbar[j] /= (float)(rows ? rows : 1);

    awq_tensor sdev, gram = {0}, td = {0}, tdg = {0};
    if ((st = awq_tensor_alloc(rt, S->dev, &tmp, AWQ_DTYPE_F32, 1, &C, &sdev))) goto done;
    if (g->kind == G_LINEAR) {
        int l = g->lins[0];
        int64_t gg[2] = {C, C}, wd[2] = {L->out[l], C};
        if ((st = awq_tensor_alloc(rt, S->dev, &tmp, AWQ_DTYPE_F32, 2, wd, &td))) goto done;
        /* The Gram form costs 2 N C^2 once + 2 O C^2 per candidate, the direct one 2 N C O per
         * candidate: take the cheaper (the Gram form once there are more tokens than inputs). */
        double n = (double)awq_tensor_rows(g->inp);
        if (n * C * C + AWQ_N_GRID * (double)L->out[l] * C * C < AWQ_N_GRID * n * C * L->out[l]) {
            if ((st = awq_tensor_alloc(rt, S->dev, &tmp, AWQ_DTYPE_F32, 2, gg, &gram)) ||
                (st = awq_tensor_alloc(rt, S->dev, &tmp, AWQ_DTYPE_F32, 2, wd, &tdg)))
                goto done;
            if ((st = awq_qop_gram(S, &gram, g->inp))) goto done;
            S->flops += 2.0 * n * C * C;
        }
    }
    double best = INFINITY;
    int best_r = -1;
    for (int r = 0; r < AWQ_N_GRID; r++) {
        double alpha = (double)r / AWQ_N_GRID;
        scale_candidate(xbar, wbar, C, alpha, S->duo_scaling, s);
        if ((st = ops->upload(ctx, sdev.data, sdev.offs, s, (size_t)C * sizeof *s))) goto done;
        for (int i = 0; i < g->n_lins; i++) {
            int l = g->lins[i];
            if (L->excluded[l]) continue;
            awq_linear *lin = awq_layer_lin(&L->dw, l);
            if ((st = ops->fake_quant(ctx, &L->fq[l], &lin->w, &sdev, NULL, &S->qd))) goto done;
            S->flops += 8.0 * L->out[l] * C;
        }
        double loss = NAN;
        if ((st = group_loss(S, L, g, &gram, &td, &tdg, &loss))) goto done;
        if (loss < best) { /* strict: keeps the first of equal losses; NaN never wins */
            best = loss;
            best_r = r;
            memcpy(best_s, s, (size_t)C * sizeof *s);
        }
        char stage[64];
        snprintf(stage, sizeof stage, "scale search %s %d/%d", g->name, r + 1, AWQ_N_GRID);
        if (cancelled(S, frac0 + (frac1 - frac0) * (float)(r + 1) / AWQ_N_GRID, stage)) {
            st = awq_set_error(rt, AWQ_ERR_CANCELLED, "cancelled");
            goto done;
        }
    }
    if (best_r < 0) {
        st = awq_set_error(rt, AWQ_ERR_NUMERIC,
                           "layer %d, group %s: no scale candidate gave a finite loss "
                           "(non-finite activations or weights)",
                           L->index, g->name);
        goto done;
    }
    AWQ_LOG_DEBUG(rt, "layer %d group %s: best alpha %.2f loss %.6g", L->index, g->name,
                  (double)best_r / AWQ_N_GRID, best);
done:
    awq_buflist_free(S->dev, &tmp);
    awq_free(xbar);
    awq_free(wbar);
    awq_free(wtmp);
    awq_free(s);
    return st;
}

awq_status awq_search_scales_linear(awq_search *S, awq_qlayer *L, int l, awq_tensor *inp, float *best_s) {
    int lins[1] = {l};
    group_def g = {"linear", lins, 1, -1, inp, NULL, G_LINEAR, false, "", AWQ_PH_SEARCH_O};
    return search_group(S, L, &g, best_s, 0.0f, 1.0f);
}

/* ---- folding (docs/algorithm.md 5), on the host master weights ------------------------------- */

static void scale_cols(float *w, int64_t rows, int64_t cols, const float *s) {
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < cols; j++) w[r * cols + j] *= s[j];
}

static void fold_group(awq_qlayer *L, const group_def *g, const float *s) {
    int64_t C = L->in[g->lins[0]];
    if (g->prev == -1 || g->prev == -2) {
        float *norm = g->prev == -1 ? L->attn_norm : L->ffn_norm;
        for (int64_t j = 0; j < C; j++) norm[j] /= s[j];
    } else {
        /* A linear prev_op: its last C output rows (and bias) are divided by s. */
        int p = g->prev;
        int64_t r0 = L->out[p] - C;
        for (int64_t j = 0; j < C; j++) {
            float *row = L->w[p] + (r0 + j) * L->in[p];
            for (int64_t k = 0; k < L->in[p]; k++) row[k] /= s[j];
            if (L->b[p]) L->b[p][r0 + j] /= s[j];
        }
    }
    for (int i = 0; i < g->n_lins; i++) scale_cols(L->w[g->lins[i]], L->out[g->lins[i]], C, s);
    if (g->moe_in) { /* x / s into the router and the shared gate: their columns times s */
        if (L->router) scale_cols(L->router, L->n_experts, C, s);
        if (L->shared_gate) scale_cols(L->shared_gate, 1, C, s);
    }
}

static bool all_finite(const float *v, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(v[i])) return false;
    return true;
}

/* ---- clip search (docs/algorithm.md 6) ------------------------------------------------------- */

static awq_status clip_linear(awq_search *S, awq_qlayer *L, int l, const awq_tensor *inp) {
    awq_runtime *rt = S->rt;
    const awq_backend_ops *ops = S->dev->ops;
    awq_backend_ctx *ctx = S->dev->ctx;
    int64_t N = awq_tensor_rows(inp), C = L->in[l], O = L->out[l], gs = S->qd.group_size, G = C / gs;
    int64_t stride = N / AWQ_CLIP_TOKENS > 1 ? N / AWQ_CLIP_TOKENS : 1;
    int64_t ns = (N + stride - 1) / stride;
    awq_buflist tmp = {0};
    awq_status st;
    float *best = awq_malloc((size_t)(O * G) * sizeof *best);
    if (!best) return awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
    awq_tensor xs, bm;
    int64_t xe[2] = {ns, C}, be[2] = {O, G};
    if ((st = awq_tensor_alloc(rt, S->dev, &tmp, AWQ_DTYPE_F32, 2, xe, &xs)) ||
        (st = awq_tensor_alloc(rt, S->dev, &tmp, AWQ_DTYPE_F32, 2, be, &bm)))
        goto done;
    // every stride-th token, the first one kept
    awq_tensor sub = awq_view_rows(inp, 0, ns);
    sub.nb[0] = awq_tensor_row_stride(inp) * stride;
    if ((st = ops->convert(ctx, &xs, &sub))) goto done;
    awq_linear *lin = awq_layer_lin(&L->dw, l);
    if ((st = awq_qop_clip_search(S, &bm, &lin->w, &xs, AWQ_CLIP_GRID, AWQ_CLIP_STEPS))) goto done;
    if ((st = ops->download(ctx, best, bm.data, bm.offs, (size_t)(O * G) * sizeof *best))) goto done;
    S->flops += 2.0 * ns * O * C * (1 + AWQ_CLIP_STEPS);
    if (!all_finite(best, O * G)) {
        char ln[128];
        st = awq_set_error(rt, AWQ_ERR_NUMERIC, "layer %d, %s: non-finite clip threshold", L->index,
                           awq_qlin_name(S->cfg, L, l, ln, sizeof ln));
        goto done;
    }
    for (int64_t o = 0; o < O; o++)
        for (int64_t k = 0; k < C; k++) {
            float m = best[o * G + k / gs], *w = &L->w[l][o * C + k];
            *w = *w > m ? m : *w < -m ? -m : *w;
        }
done:
    awq_buflist_free(S->dev, &tmp);
    awq_free(best);
    return st;
}

/* ---- the layer ---------------------------------------------------------------------------- */

typedef struct clip_item {
    int l;          /* linear */
    awq_tensor inp; /* its (scaled) input rows */
} clip_item;

awq_status awq_search_layer(awq_search *S, awq_qlayer *L, bool clip) {
    awq_acts *a = S->acts;
    const awq_model_config *c = S->cfg;
    const awq_backend_ops *ops = S->dev->ops;
    awq_backend_ctx *ctx = S->dev->ctx;
    awq_runtime *rt = S->rt;
    int32_t E = L->n_experts;
    bool shared = E > 0 && c->shared_ff > 0;
    /* groups: qkv, o, then gate_up + down (dense) or, with experts (AutoAWQ's mixtral /
     * qwen3_moe): every expert's gate/up (+ the shared expert's) as one group after the
     * feed-forward norm, and each expert's down after its up (experts that received calibration
     * rows), the shared expert's down after its up */
    int max_groups = 4 + E + 1;
    group_def *groups = awq_calloc((size_t)max_groups, sizeof *groups);
    float **scales = awq_calloc((size_t)max_groups, sizeof *scales);
    int *lins = awq_malloc((size_t)(8 + 3 * E + 6) * sizeof *lins), nl = 0;
    awq_tensor *views = awq_calloc((size_t)(E + 1), sizeof *views);
    awq_status st = AWQ_OK;
    double t_fold = 0, t_clip = 0; /* start of the fold / clip regions while open */
    if (!groups || !scales || !lins || !views) {
        st = awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    int ng = 0;
    lins[nl++] = AWQ_LIN_Q;
    lins[nl++] = AWQ_LIN_K;
    lins[nl++] = AWQ_LIN_V;
    groups[ng++] =
        (group_def){"qkv", lins, 3, -1, &a->inp_qkv, &a->fp_attn, G_ATTN, false, "", AWQ_PH_SEARCH_QKV};
    /* v -> o only when v_proj and o_proj have the same shape (not under GQA;
     * docs/algorithm.md 4.1). */
    if (L->out[AWQ_LIN_V] == L->out[AWQ_LIN_O] && L->in[AWQ_LIN_V] == L->in[AWQ_LIN_O]) {
        lins[nl] = AWQ_LIN_O;
        groups[ng++] = (group_def){"o",  &lins[nl++], 1,     AWQ_LIN_V, &a->inp_o,
                                   NULL, G_LINEAR,    false, "",        AWQ_PH_SEARCH_O};
    }
    if (E == 0) {
        lins[nl] = AWQ_LIN_GATE;
        lins[nl + 1] = AWQ_LIN_UP;
        groups[ng++] = (group_def){"gate_up",  &lins[nl], 2,     -2, &a->inp_gate,
                                   &a->fp_mlp, G_MLP,     false, "", AWQ_PH_SEARCH_GATE_UP};
        nl += 2;
        lins[nl] = AWQ_LIN_DOWN;
        groups[ng++] = (group_def){"down", &lins[nl++], 1,     AWQ_LIN_UP, &a->inp_down,
                                   NULL,   G_LINEAR,    false, "",         AWQ_PH_SEARCH_DOWN};
    } else {
        int first = nl;
        for (int32_t e = 0; e < E; e++) {
            lins[nl++] = awq_qlin_expert(e, 0);
            lins[nl++] = awq_qlin_expert(e, 1);
        }
        if (shared) {
            lins[nl++] = awq_qlin_shared(L, 0);
            lins[nl++] = awq_qlin_shared(L, 1);
        }
        groups[ng++] = (group_def){"experts gate_up", &lins[first], nl - first, -2, &a->inp_gate,
                                   &a->fp_mlp,        G_MLP,        true,       "", AWQ_PH_SEARCH_GATE_UP};
        for (int32_t e = 0; e < E; e++) {
            int64_t m = a->moe_off[e + 1] - a->moe_off[e];
            if (m == 0) {
                /* AutoAWQ has no input for this expert (it fails or produces NaN); ours: no scale
                 * search, no clipping, the plain round-to-nearest of its (group-scaled) weights */
                AWQ_LOG_WARN(rt,
                             "layer %d: expert %d received no calibration token: quantized "
                             "round-to-nearest (no scale search for its down projection, no clipping)",
                             L->index, e);
                continue;
            }
            views[e] = awq_view_rows(&a->moe_down, a->moe_off[e], m);
            lins[nl] = awq_qlin_expert(e, 2);
            group_def *g = &groups[ng++];
            *g = (group_def){NULL,     &lins[nl++], 1,  awq_qlin_expert(e, 1), &views[e], NULL,
                             G_LINEAR, false,       "", AWQ_PH_SEARCH_DOWN};
            snprintf(g->label, sizeof g->label, "expert %d down", e);
            g->name = g->label;
        }
        if (shared) {
            lins[nl] = awq_qlin_shared(L, 2);
            groups[ng++] =
                (group_def){"shared down", &lins[nl++], 1,  awq_qlin_shared(L, 1), &a->sh_down, NULL,
                            G_LINEAR,      false,       "", AWQ_PH_SEARCH_DOWN};
        }
    }

    // 1. every group searched on the unmodified layer
    for (int i = 0; i < ng; i++) {
        const group_def *g = &groups[i];
        bool any = false;
        for (int k = 0; k < g->n_lins; k++) any |= !L->excluded[g->lins[k]];
        if (!any) continue; /* nothing of this group is quantized: no scaling */
        int64_t C = L->in[g->lins[0]];
        scales[i] = awq_malloc((size_t)C * sizeof(float));
        if (!scales[i]) {
            st = awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
            goto done;
        }
        double t0 = awq_time_now();
        st = search_group(S, L, g, scales[i], 0.05f + 0.7f * i / ng, 0.05f + 0.7f * (i + 1) / ng);
        awq_phase_add(S->times, g->ph, t0);
        if (st != AWQ_OK) goto done;
        if (!all_finite(scales[i], C)) {
            st = awq_set_error(rt, AWQ_ERR_NUMERIC, "layer %d, group %s: non-finite scales", L->index,
                               g->name);
            goto done;
        }
    }
    // 2. fold all scales (norms / previous linears / following linears) and scale the inputs
    t_fold = awq_time_now();
    awq_buflist tmp = {0};
    for (int i = 0; i < ng; i++) {
        if (!scales[i]) continue;
        const group_def *g = &groups[i];
        int64_t C = L->in[g->lins[0]];
        fold_group(L, g, scales[i]);
        awq_tensor sdev, routed = {0};
        if (g->moe_in) routed = awq_view_rows(&a->moe_in, 0, a->moe_off[E]); /* the experts' copies */
        if ((st = awq_tensor_alloc(rt, S->dev, &tmp, AWQ_DTYPE_F32, 1, &C, &sdev)) ||
            (st = ops->upload(ctx, sdev.data, sdev.offs, scales[i], (size_t)C * sizeof(float))) ||
            (st = ops->binop(ctx, g->inp, g->inp, &sdev, AWQ_BINOP_DIV)) ||
            (g->moe_in && a->moe_off[E] > 0 &&
             (st = ops->binop(ctx, &routed, &routed, &sdev, AWQ_BINOP_DIV)))) {
            awq_buflist_free(S->dev, &tmp);
            goto done;
        }
    }
    st = ops->synchronize(ctx);
    awq_buflist_free(S->dev, &tmp);
    if (st != AWQ_OK) goto done;
    for (int l = 0; l < L->n_lin; l++)
        if (!all_finite(L->w[l], L->out[l] * L->in[l])) {
            char ln[128];
            st = awq_set_error(rt, AWQ_ERR_NUMERIC, "layer %d, %s: non-finite weights after scaling",
                               L->index, awq_qlin_name(c, L, l, ln, sizeof ln));
            goto done;
        }
    if (!all_finite(L->attn_norm, c->d_model) || !all_finite(L->ffn_norm, c->d_model)) {
        st = awq_set_error(rt, AWQ_ERR_NUMERIC, "layer %d: non-finite norm weights after scaling", L->index);
        goto done;
    }
    awq_phase_add(S->times, AWQ_PH_FOLD, t_fold);
    t_fold = 0;
    if (!clip) goto done;
    t_clip = awq_time_now();
    // 3. clip search on the scaled weights and scaled inputs; q/k are skipped (docs/algorithm.md 6)
    if ((st = awq_qlayer_upload(rt, S->dev, c, L))) goto done;
    /* q/k too when the checkpoint fuses them with v (AutoAWQ clips a fused qkv_proj whole) */
    clip_item *clips = awq_malloc((size_t)(8 + 3 * E + 3) * sizeof *clips);
    if (!clips) {
        st = awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    int n_clips = 0;
    clips[n_clips++] = (clip_item){AWQ_LIN_V, a->inp_qkv};
    clips[n_clips++] = (clip_item){AWQ_LIN_O, a->inp_o};
    if (E == 0) {
        clips[n_clips++] = (clip_item){AWQ_LIN_GATE, a->inp_gate};
        clips[n_clips++] = (clip_item){AWQ_LIN_UP, a->inp_gate};
        clips[n_clips++] = (clip_item){AWQ_LIN_DOWN, a->inp_down};
    } else {
        /* each expert on the rows routed to it (AutoAWQ's hooks); none: round-to-nearest */
        for (int32_t e = 0; e < E; e++) {
            int64_t m = a->moe_off[e + 1] - a->moe_off[e];
            if (m == 0) continue;
            awq_tensor xin = awq_view_rows(&a->moe_in, a->moe_off[e], m);
            clips[n_clips++] = (clip_item){awq_qlin_expert(e, 0), xin};
            clips[n_clips++] = (clip_item){awq_qlin_expert(e, 1), xin};
            clips[n_clips++] = (clip_item){awq_qlin_expert(e, 2), views[e]};
        }
        if (shared) {
            clips[n_clips++] = (clip_item){awq_qlin_shared(L, 0), a->inp_gate};
            clips[n_clips++] = (clip_item){awq_qlin_shared(L, 1), a->inp_gate};
            clips[n_clips++] = (clip_item){awq_qlin_shared(L, 2), a->sh_down};
        }
    }
    if (c->clip_qk) {
        clips[n_clips++] = (clip_item){AWQ_LIN_Q, a->inp_qkv};
        clips[n_clips++] = (clip_item){AWQ_LIN_K, a->inp_qkv};
    }
    for (int i = 0; i < n_clips; i++) {
        if (L->excluded[clips[i].l]) continue;
        if ((st = clip_linear(S, L, clips[i].l, &clips[i].inp))) break;
        char stage[160], ln[128];
        snprintf(stage, sizeof stage, "clip %s", awq_qlin_name(c, L, clips[i].l, ln, sizeof ln));
        if (cancelled(S, 0.75f + 0.2f * (float)(i + 1) / (float)n_clips, stage)) {
            st = awq_set_error(rt, AWQ_ERR_CANCELLED, "cancelled");
            break;
        }
    }
    awq_free(clips);
done:
    if (t_fold > 0) awq_phase_add(S->times, AWQ_PH_FOLD, t_fold); /* failed while folding */
    if (t_clip > 0) awq_phase_add(S->times, AWQ_PH_CLIP, t_clip);
    for (int i = 0; scales && i < max_groups; i++) awq_free(scales[i]);
    awq_free(scales);
    awq_free(groups);
    awq_free(lins);
    awq_free(views);
    return st;
}
