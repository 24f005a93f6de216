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


#define AWQ_N_GRID 20          /* alpha = r / 20, r = 0..19 (1.0 never tried) */
#define AWQ_CLIP_GRID 20       /* shrink candidates m * (1 - i / 20) */
#define AWQ_CLIP_STEPS 10      /* i = 0..9 (max_shrink 0.5) */
#define AWQ_CLIP_TOKENS 512    /* n_sample_token */
#define AWQ_CHUNK_ROWS 4096    /* calibration rows per forward call */

/* ---- activations ----------------------------------------------------------------------- */

awq_status awq_acts_alloc(awq_runtime *rt, const awq_device *dev, const awq_model_config *c,
                          int64_t B, int64_t T, awq_acts *a) {
    memset(a, 0, sizeof *a);
    a->B = B;
    a->T = T;
    a->N = B * T;
    a->chunk_blocks = AWQ_CHUNK_ROWS / T > 0 ? AWQ_CHUNK_ROWS / T : 1;
    if (a->chunk_blocks > B) a->chunk_blocks = B;
    int64_t d = c->d_model, qd = (int64_t)c->n_heads * c->head_dim, ff = c->d_ff, N = a->N;
    struct { awq_tensor *t; int64_t cols; } plan[] = {
        {&a->x, d}, {&a->xnext, d}, {&a->inp_qkv, d}, {&a->inp_o, qd}, {&a->inp_gate, d},
        {&a->inp_down, ff}, {&a->fp_attn, d}, {&a->fp_mlp, d},
    };
    for (size_t i = 0; i < sizeof plan / sizeof plan[0]; i++) {
        int64_t ne[2] = {N, plan[i].cols};
        TRY(awq_tensor_alloc(rt, dev, &a->bufs, AWQ_DTYPE_F32, 2, ne, plan[i].t));
    }
    return awq_fwd_scratch_alloc(rt, dev, &a->bufs, c, a->chunk_blocks * T, &a->s);
}

void awq_acts_free(const awq_device *dev, awq_acts *a) {
    awq_buflist_free(dev, &a->bufs);
    memset(a, 0, sizeof *a);
}

void awq_acts_advance(awq_acts *a) {
    awq_tensor t = a->x;
    a->x = a->xnext;
    a->xnext = t;
}

static awq_fwd_ctx fwd_ctx(awq_search *S) {
    awq_fwd_ctx f = {.cfg = S->cfg, .dev = S->dev, .inv_freq = S->inv_freq, .s = &S->acts->s,
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
                   igate = awq_view_rows(&a->inp_gate, r0, n),
                   idown = awq_view_rows(&a->inp_down, r0, n);
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
    return ops->synchronize(ctx);
}

/* ---- scale search ------------------------------------------------------------------------ */

typedef enum group_kind { G_ATTN, G_MLP, G_LINEAR } group_kind;

typedef struct group_def {
    const char *name;              /* "qkv", "o", "gate_up", "down" */
    int         lins[3];           /* linears whose input columns get s */
    int         n_lins;
    int         prev;              /* linear whose output rows get 1/s, or -1 (attn norm), -2 (ffn norm) */
    awq_tensor *inp;               /* (N, C) */
    awq_tensor *fp_out;            /* G_ATTN / G_MLP reference output (N, d) */
    group_kind  kind;
    awq_phase   ph;                /* the phase its search time is counted in */
} group_def;

/* Computes the AutoAWQ scale candidate for alpha (docs/algorithm.md 3.3) into s (C,). */
static void scale_candidate(const float *xbar, const float *wbar, int64_t C, double alpha,
                            bool duo, float *s) {
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
static awq_status group_loss(awq_search *S, awq_qlayer *L, const group_def *g,
                             const awq_tensor *gram, awq_tensor *tmp_d, awq_tensor *tmp_dg,
                             double *loss) {
    awq_acts *a = S->acts;
    const awq_backend_ops *ops = S->dev->ops;
    awq_backend_ctx *ctx = S->dev->ctx;
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
            if (O > awq_tensor_cols(&a->s.g))
                return awq_set_error(S->rt, AWQ_ERR_UNSUPPORTED, "%s: out_features > intermediate_size",
                                     awq_lin_names[l]);
            for (int64_t r0 = 0; r0 < a->N; r0 += a->s.n_max) {
                int64_t n = a->N - r0 < a->s.n_max ? a->N - r0 : a->s.n_max;
                awq_tensor in = awq_view_rows(g->inp, r0, n);
                awq_tensor Y = awq_tensor_2d(AWQ_DTYPE_F32, a->s.g.data, a->s.g.offs, n, O);
                double part = 0;
                TRY(ops->matmul(ctx, &Y, &in, &D, NULL));
                TRY(awq_qop_scalar(S, &part, &Y, &Y, AWQ_SCALAR_DOT));
                dot += part;
            }
            S->flops += 2.0 * a->N * C * O + 3.0 * O * C;
        }
        *loss = dot / ((double)a->N * (double)O);
        return AWQ_OK;
    }
    awq_layer_weights w = L->dw;
    for (int i = 0; i < g->n_lins; i++)
        if (!L->excluded[g->lins[i]]) awq_layer_lin(&w, g->lins[i])->w = L->fq[g->lins[i]];
    awq_fwd_ctx f = fwd_ctx(S);
    double sse = 0;
    for (int64_t b0 = 0; b0 < a->B; b0 += a->chunk_blocks) {
        int64_t nb = a->B - b0 < a->chunk_blocks ? a->B - b0 : a->chunk_blocks;
        int64_t n = nb * a->T, r0 = b0 * a->T;
        awq_tensor in = awq_view_rows(g->inp, r0, n), ref = awq_view_rows(g->fp_out, r0, n);
        awq_tensor out = awq_view_rows(&a->s.xo, 0, n);
        if (g->kind == G_ATTN) {
            TRY(awq_fwd_set_positions(&f, nb, a->T, 0));
            TRY(awq_fwd_attention(&f, &w, &in, nb, a->T, 0, NULL, NULL, &out));
            S->flops += attn_flops(S->cfg, nb, a->T);
        } else {
            TRY(awq_fwd_mlp(&f, &w, &in, &out));
            S->flops += mlp_flops(S->cfg, n);
        }
        double part = 0;
        TRY(awq_qop_scalar(S, &part, &out, &ref, AWQ_SCALAR_SSE));
        sse += part;
    }
    *loss = sse / ((double)a->N * (double)S->cfg->d_model);
    return AWQ_OK;
}

/* Grid search of docs/algorithm.md 3 for one group; best_s (C,) receives the scales. */
static awq_status search_group(awq_search *S, awq_qlayer *L, const group_def *g, float *best_s,
                               float frac0, float frac1) {
    awq_runtime *rt = S->rt;
    const awq_backend_ops *ops = S->dev->ops;
    awq_backend_ctx *ctx = S->dev->ctx;
    int64_t C = L->in[g->lins[0]];
    awq_status st = AWQ_OK;
    awq_buflist tmp = {0};
    float *xbar = awq_malloc((size_t)C * sizeof *xbar), *wbar = awq_calloc((size_t)C, sizeof *wbar),
          *wtmp = awq_malloc((size_t)C * sizeof *wtmp), *s = awq_malloc((size_t)C * sizeof *s);
    if (!xbar || !wbar || !wtmp || !s) { st = awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "out of memory"); goto done; }

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
        double n = (double)S->acts->N;
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
                           "(non-finite activations or weights)", L->index, g->name);
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

awq_status awq_search_scales_linear(awq_search *S, awq_qlayer *L, int l, awq_tensor *inp,
                                    float *best_s) {
    group_def g = {"linear", {l}, 1, -1, inp, NULL, G_LINEAR, AWQ_PH_SEARCH_O};
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
    int64_t N = S->acts->N, C = L->in[l], O = L->out[l], gs = S->qd.group_size, G = C / gs;
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
        st = awq_set_error(rt, AWQ_ERR_NUMERIC, "layer %d, %s: non-finite clip threshold",
                           L->index, awq_lin_names[l]);
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

awq_status awq_search_layer(awq_search *S, awq_qlayer *L, bool clip) {
    awq_acts *a = S->acts;
    const awq_model_config *c = S->cfg;
    const awq_backend_ops *ops = S->dev->ops;
    awq_backend_ctx *ctx = S->dev->ctx;
    awq_runtime *rt = S->rt;
    group_def groups[4];
    int ng = 0;
    groups[ng++] = (group_def){"qkv", {AWQ_LIN_Q, AWQ_LIN_K, AWQ_LIN_V}, 3, -1, &a->inp_qkv,
                               &a->fp_attn, G_ATTN, AWQ_PH_SEARCH_QKV};
    /* v -> o only when v_proj and o_proj have the same shape (not under GQA;
     * docs/algorithm.md 4.1). */
    if (L->out[AWQ_LIN_V] == L->out[AWQ_LIN_O] && L->in[AWQ_LIN_V] == L->in[AWQ_LIN_O])
        groups[ng++] = (group_def){"o", {AWQ_LIN_O}, 1, AWQ_LIN_V, &a->inp_o, NULL, G_LINEAR,
                                   AWQ_PH_SEARCH_O};
    groups[ng++] = (group_def){"gate_up", {AWQ_LIN_GATE, AWQ_LIN_UP}, 2, -2, &a->inp_gate,
                               &a->fp_mlp, G_MLP, AWQ_PH_SEARCH_GATE_UP};
    groups[ng++] = (group_def){"down", {AWQ_LIN_DOWN}, 1, AWQ_LIN_UP, &a->inp_down, NULL, G_LINEAR,
                               AWQ_PH_SEARCH_DOWN};

    float *scales[4] = {0};
    awq_status st = AWQ_OK;
    double t_fold = 0, t_clip = 0; /* start of the fold / clip regions while open */
    // 1. every group searched on the unmodified layer
    for (int i = 0; i < ng; i++) {
        const group_def *g = &groups[i];
        bool any = false;
        for (int k = 0; k < g->n_lins; k++) any |= !L->excluded[g->lins[k]];
        if (!any) continue; /* nothing of this group is quantized: no scaling */
        int64_t C = L->in[g->lins[0]];
        scales[i] = awq_malloc((size_t)C * sizeof(float));
        if (!scales[i]) { st = awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "out of memory"); goto done; }
        double t0 = awq_time_now();
        st = search_group(S, L, g, scales[i], 0.05f + 0.7f * i / ng, 0.05f + 0.7f * (i + 1) / ng);
        awq_phase_add(S->times, g->ph, t0);
        if (st != AWQ_OK) goto done;
        if (!all_finite(scales[i], C)) {
            st = awq_set_error(rt, AWQ_ERR_NUMERIC, "layer %d, group %s: non-finite scales",
                               L->index, g->name);
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
        awq_tensor sdev;
        if ((st = awq_tensor_alloc(rt, S->dev, &tmp, AWQ_DTYPE_F32, 1, &C, &sdev)) ||
            (st = ops->upload(ctx, sdev.data, sdev.offs, scales[i], (size_t)C * sizeof(float))) ||
            (st = ops->binop(ctx, g->inp, g->inp, &sdev, AWQ_BINOP_DIV))) {
            awq_buflist_free(S->dev, &tmp);
            goto done;
        }
    }
    st = ops->synchronize(ctx);
    awq_buflist_free(S->dev, &tmp);
    if (st != AWQ_OK) goto done;
    for (int l = 0; l < AWQ_LIN_COUNT; l++)
        if (!all_finite(L->w[l], L->out[l] * L->in[l])) {
            st = awq_set_error(rt, AWQ_ERR_NUMERIC, "layer %d, %s: non-finite weights after scaling",
                               L->index, awq_lin_names[l]);
            goto done;
        }
    if (!all_finite(L->attn_norm, c->d_model) || !all_finite(L->ffn_norm, c->d_model)) {
        st = awq_set_error(rt, AWQ_ERR_NUMERIC, "layer %d: non-finite norm weights after scaling",
                           L->index);
        goto done;
    }
    awq_phase_add(S->times, AWQ_PH_FOLD, t_fold);
    t_fold = 0;
    if (!clip) goto done;
    t_clip = awq_time_now();
    // 3. clip search on the scaled weights and scaled inputs; q/k are skipped (docs/algorithm.md 6)
    if ((st = awq_qlayer_upload(rt, S->dev, c, L))) goto done;
    /* q/k too when the checkpoint fuses them with v (AutoAWQ clips a fused qkv_proj whole) */
    const struct { int l; awq_tensor *inp; } clips[] = {
        {AWQ_LIN_V, &a->inp_qkv}, {AWQ_LIN_O, &a->inp_o}, {AWQ_LIN_GATE, &a->inp_gate},
        {AWQ_LIN_UP, &a->inp_gate}, {AWQ_LIN_DOWN, &a->inp_down},
        {AWQ_LIN_Q, &a->inp_qkv}, {AWQ_LIN_K, &a->inp_qkv},
    };
    size_t n_clips = c->clip_qk ? 7 : 5;
    for (size_t i = 0; i < n_clips; i++) {
        if (L->excluded[clips[i].l]) continue;
        if ((st = clip_linear(S, L, clips[i].l, clips[i].inp))) goto done;
        char stage[64];
        snprintf(stage, sizeof stage, "clip %s", awq_lin_names[clips[i].l]);
        if (cancelled(S, 0.75f + 0.2f * (float)(i + 1) / (float)n_clips, stage)) {
            st = awq_set_error(rt, AWQ_ERR_CANCELLED, "cancelled");
            goto done;
        }
    }
done:
    if (t_fold > 0) awq_phase_add(S->times, AWQ_PH_FOLD, t_fold); /* failed while folding */
    if (t_clip > 0) awq_phase_add(S->times, AWQ_PH_CLIP, t_clip);
    for (int i = 0; i < 4; i++) awq_free(scales[i]);
    return st;
}
