/*
 * model.h - a loaded model: config, device, weights (dense or AWQ 4-bit) resident on the
 * device, and the forward pass building blocks shared by inference and the quantizer.
 */
#ifndef AWQ_CORE_MODEL_H
#define AWQ_CORE_MODEL_H

#include "config.h"
#include "internal.h"

/* A linear layer y = x W^T + b, dense or AWQ 4-bit. */
typedef struct awq_linear {
    int64_t in, out;
    bool quantized;
    awq_tensor w;     /* (out, in) F16/BF16/F32 when !quantized */
    awq_tensor bias;  /* (out,) or data == NULL; for quantized linears also copied into q.bias */
    awq_qlinear q;    /* when quantized */
    bool q8;          /* Q8_0 (the lm_head under AWQ_LM_HEAD_Q8): y = x dequant(q8_qs, q8_d)^T */
    awq_tensor q8_qs; /* (out, in) I8 codes, when q8 */
    awq_tensor q8_d;  /* (out, in/32) F16 block scales, when q8 */
} awq_linear;

typedef struct awq_layer_weights {
    awq_tensor attn_norm;      /* (d_model,) input_layernorm */
    awq_tensor ffn_norm;       /* (d_model,) post_attention_layernorm */
    awq_tensor q_norm, k_norm; /* (head_dim,) Qwen3, data NULL otherwise */
    awq_linear q, k, v, o;     /* q (H*hd, d), k/v (Hkv*hd, d), o (d, H*hd) */
    awq_linear gate, up, down; /* gate/up (d_ff, d), down (d, d_ff) */
    /* Gemma (sandwich_norms): norms of the attention and MLP outputs, data NULL otherwise */
    awq_tensor post_attn_norm, post_ffn_norm; /* (d_model,) */
    int32_t window;                           /* sliding window of this layer, 0 = full attention */
    bool local_rope;                          /* RoPE with the local base (awq_fwd_ctx.inv_freq_local) */
    /* Mixture of experts (cfg.n_experts > 0 and awq_config_layer_moe): gate/up/down are unused;
     * the router and the shared expert's gate stay dense (full precision). */
    int32_t n_experts;      /* 0 = a dense MLP (gate/up/down above) */
    awq_linear router;      /* (n_experts, d) */
    awq_linear *experts;    /* (n_experts * 3): expert e's gate, up, down at 3e, 3e+1, 3e+2 */
    awq_linear shared[3];   /* Qwen2-MoE shared expert gate, up, down (in == 0: none) */
    awq_linear shared_gate; /* (1, d) Qwen2-MoE shared_expert_gate */
} awq_layer_weights;

/* Device buffers owned by a model or session. */
typedef struct awq_buflist {
    void **bufs;
    int32_t n, cap;
} awq_buflist;

struct awq_model {
    awq_runtime *rt;
    awq_device dev;
    awq_model_config cfg;
    char *dir;
    awq_tensor embed;          /* (vocab, d_model) */
    awq_tensor final_norm;     /* (d_model,) */
    awq_linear lm_head;        /* (vocab, d_model); shares embed when tied */
    awq_layer_weights *layers; /* (n_layers) */
    awq_tensor inv_freq;       /* (rope_dim/2,) F32 */
    awq_tensor inv_freq_local; /* (head_dim/2,) F32 of sliding layers (Gemma 3), or data NULL */
    awq_tensor embed_scale;    /* (d_model,) F32 filled with cfg.embed_scale, or data NULL */
    awq_tensor inv_freq_long;  /* (rope_dim/2,) F32 longrope long factors, or data NULL */
    awq_buflist buffers;       /* every device buffer the model owns */
    int64_t weight_bytes;
    int64_t n_params;
};

/* Allocates a device buffer of nbytes and records it in list (freed by awq_buflist_free). */
awq_status awq_buflist_alloc(awq_runtime *rt, const awq_device *dev, awq_buflist *list, size_t nbytes,
                             void **buf);
void awq_buflist_free(const awq_device *dev, awq_buflist *list);

/* Allocates a contiguous device tensor (outermost-first shape) recorded in list. */
awq_status awq_tensor_alloc(awq_runtime *rt, const awq_device *dev, awq_buflist *list, awq_dtype type,
                            int ndim, const int64_t *ne, awq_tensor *out);

/* y (n, out) F32 = x (n, in) F32 * W^T + b on the model's device. */
awq_status awq_linear_forward(const awq_device *dev, awq_tensor *y, const awq_tensor *x, const awq_linear *l);

struct awq_safetensors;
/* Loads an AutoAWQ GEMV-layout linear (prefix.qweight (out, in/8), .qzeros, .scales) and converts
 * it to the canonical GEMM layout on the device (model_gemv.c). l->q.in/out/group_size are set. */
awq_status awq_model_load_gemv_linear(awq_runtime *rt, const awq_device *dev, awq_buflist *list,
                                      const struct awq_safetensors *st, const char *prefix, awq_linear *l);

/* Checkpoint names (layer-relative, without ".weight") of a mixture-of-experts block: the
 * router; expert e's part 0 = gate, 1 = up, 2 = down (Mixtral w1/w3/w2, Qwen gate/up/down_proj);
 * the shared expert's part 0..2 and 3 = its sigmoid gate (Qwen2-MoE). */
const char *awq_moe_router_name(const awq_model_config *c);
void awq_moe_expert_name(const awq_model_config *c, int32_t e, int part, char *buf, size_t cap);
const char *awq_moe_shared_name(int part);


/* Host F32 copy of a norm weight as the forward pass applies it: w, or 1 + w when
 * c->norm_plus_one. */
void awq_norm_effective(const awq_model_config *c, float *w, int64_t n);

/* A 2-D row view of rows [r0, r0+n) of t (rowwise tensor) reshaped to (n, cols). */
awq_tensor awq_view_rows(const awq_tensor *t, int64_t r0, int64_t n);
/* Reinterprets a contiguous tensor with a new outermost-first shape (same element count). */
awq_tensor awq_view_reshape(const awq_tensor *t, int ndim, const int64_t *ne);

#endif
