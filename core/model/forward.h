/*
 * forward.h - the Llama-family forward pass as straight-line backend calls, written once and
 * used by inference (with a KV cache) and by the quantizer (batches of independent blocks).
 */
#ifndef AWQ_CORE_FORWARD_H
#define AWQ_CORE_FORWARD_H

#include "model.h"

/* Device scratch for up to n_max tokens at once. */
typedef struct awq_fwd_scratch {
    int64_t n_max;
    awq_tensor x;   /* (n_max, d) residual stream */
    awq_tensor xb;  /* (n_max, d) normed input of q/k/v and gate/up */
    awq_tensor q;   /* (n_max, H*hd) */
    awq_tensor k;   /* (n_max, Hkv*hd) */
    awq_tensor v;   /* (n_max, Hkv*hd) */
    awq_tensor att; /* (n_max, H*hd) attention output = input of o_proj */
    awq_tensor xo;  /* (n_max, d) output of o_proj / down_proj */
    awq_tensor g;   /* (n_max, d_ff) gate, then silu(gate)*up = input of down_proj */
    awq_tensor u;   /* (n_max, d_ff) up */
    awq_tensor pos; /* (n_max,) I32 positions */
    awq_tensor ids; /* (n_max,) I32 token ids */
    /* mixture of experts (data NULL for dense models); g and u then hold n_max * top-k rows (+
     * n_max rows of the shared expert) of the widest of d_ff, moe_ff and shared_ff */
    awq_tensor moe_x;      /* (n_max * k, d) rows routed to the experts, grouped by expert */
    awq_tensor moe_y;      /* (n_max * k, d) the experts' outputs, same order, then weighted */
    awq_tensor moe_w;      /* (n_max * k, d) each routed row's weight, broadcast over d */
    awq_tensor moe_tmp;    /* (n_max, d) */
    awq_tensor moe_gw;     /* (n_max, d) sigmoid(shared-expert gate) of each row, broadcast over d */
    awq_tensor moe_logits; /* (n_max, n_experts) router logits */
    awq_tensor moe_sg;     /* (n_max, 1) shared-expert gate logits */
    awq_tensor moe_slot;   /* (n_max * k,) I32 token of each routed row */
    awq_tensor moe_inv;    /* (k * n_max,) I32 routed row of token t's j-th choice at j * n + t */
} awq_fwd_scratch;

awq_status awq_fwd_scratch_alloc(awq_runtime *rt, const awq_device *dev, awq_buflist *list,
                                 const awq_model_config *c, int64_t n_max, awq_fwd_scratch *s);

/* Everything one decoder layer needs besides its weights. */
typedef struct awq_fwd_ctx {
    const awq_model_config *cfg;
    const awq_device *dev;
    const awq_tensor *inv_freq; /* (hd/2,) F32 */
    awq_fwd_scratch *s;
    /* Batched decoding (NULL otherwise): B sequences with one new token each (T == 1), n_past of
     * sequence b in seq_n_past[b]; kc/vc of awq_fwd_attention/awq_fwd_layer are then arrays of
     * B caches, kc[b] the one of sequence b. s->pos must hold the rows' positions. */
    const int32_t *seq_n_past;        /* (B,) */
    const awq_tensor *inv_freq_local; /* (hd/2,) F32 of local_rope layers, or NULL */
} awq_fwd_ctx;

/* Self-attention module on n = B*T normed rows xin (n, d): q/k/v projections, q/k norm, RoPE at
 * positions s->pos, causal attention, o_proj -> out (n, d). Without a cache (kc == NULL) the rows
 * are B independent sequences of T tokens starting at position 0. With a cache (B == 1), k/v of
 * the T new tokens are stored at rows [n_past, n_past+T) of kc/vc ((n_ctx, Hkv*hd) F32) and
 * attention runs over all n_past+T cached positions. */
awq_status awq_fwd_attention(const awq_fwd_ctx *f, const awq_layer_weights *w, const awq_tensor *xin,
                             int64_t B, int64_t T, int32_t n_past, awq_tensor *kc, awq_tensor *vc,
                             awq_tensor *out);
/* MLP on n normed rows xin (n, d): down(silu(gate(x)) * up(x)) -> out (n, d). Leaves
 * silu(gate)*up (the input of down_proj) in s->g. */
awq_status awq_fwd_mlp(const awq_fwd_ctx *f, const awq_layer_weights *w, const awq_tensor *xin,
                       awq_tensor *out);
/* Routing of n tokens by a mixture-of-experts router (host side, exposed for tests and the
 * quantizer): logits (n, E) -> for each token the top-k experts (highest softmax probability
 * first, ties to the lower index) and their weights (the softmax probabilities, renormalized to
 * sum 1 when norm_topk). experts/weights are (n, k). */
void awq_moe_route(const float *logits, int64_t n, int32_t E, int32_t k, bool norm_topk, int32_t *experts,
                   float *weights);
/* Mixture-of-experts block on n normed rows xin (n, d) -> out (n, d): router logits (dense,
 * full precision) downloaded and routed on the host (awq_moe_route); the rows of each expert
 * gathered (get_rows) and its gate/up/down run once over them; outputs weighted and gathered
 * back per token; plus Qwen2-MoE's shared expert times sigmoid(shared_expert_gate(x)). */
awq_status awq_fwd_moe(const awq_fwd_ctx *f, const awq_layer_weights *w, const awq_tensor *xin,
                       awq_tensor *out);
/* awq_fwd_moe, and for the quantizer: expert_rows (n_experts + 1) receives the first routed row
 * of each expert (rows [expert_rows[e], expert_rows[e + 1]) of s->moe_x are expert e's inputs,
 * the same rows of s->g (moe_ff wide) the inputs of its down projection); the shared expert's
 * down input is left in s->g rows [n * top-k, n * top-k + n). */
awq_status awq_fwd_moe_ex(const awq_fwd_ctx *f, const awq_layer_weights *w, const awq_tensor *xin,
                          awq_tensor *out, int64_t *expert_rows);
/* One decoder layer on s->x (n = B*T rows) in place. */
awq_status awq_fwd_layer(const awq_fwd_ctx *f, const awq_layer_weights *w, int64_t B, int64_t T,
                         int32_t n_past, awq_tensor *kc, awq_tensor *vc);
/* x (n, d) F32 = the embeddings of ids (n,) I32, times cfg.embed_scale (Gemma). */
awq_status awq_fwd_embed(const awq_model *m, awq_tensor *x, const awq_tensor *ids);
/* logits (n, vocab) F32 = lm_head(final_norm(x (n, d))), soft-capped when the family caps them;
 * xb (n, d) F32 scratch. */
awq_status awq_fwd_logits(const awq_model *m, awq_tensor *logits, awq_tensor *xb, const awq_tensor *x);
/* Fills s->pos with B blocks of positions n_past..n_past+T-1 (host -> device). */
awq_status awq_fwd_set_positions(const awq_fwd_ctx *f, int64_t B, int64_t T, int32_t n_past);

#endif
