/*
 * config.h - config.json -> awq_model_config. Architectures are data: one table row per
 * supported model_type says which optional features its checkpoints have.
 */
#ifndef AWQ_CORE_CONFIG_H
#define AWQ_CORE_CONFIG_H

#include "internal.h"

typedef enum awq_rope_kind {
    AWQ_ROPE_DEFAULT = 0,
    AWQ_ROPE_LINEAR = 1,   /* positions divided by factor */
    AWQ_ROPE_LLAMA3 = 2,   /* Llama 3.1 frequency-dependent scaling */
    AWQ_ROPE_LONGROPE = 3, /* Phi-3 longrope / su: per-frequency short/long factors + cos/sin scale */
} awq_rope_kind;

#define AWQ_MAX_ROPE_HALF 256 /* rotary pairs per head (longrope factor lists) */

#define AWQ_MAX_EXCLUDE   160

typedef struct awq_model_config {
    char model_type[32]; /* "llama", "mistral", "qwen2", "qwen3" */
    int32_t n_layers;    /* num_hidden_layers */
    int32_t d_model;     /* hidden_size */
    int32_t n_heads;     /* num_attention_heads */
    int32_t n_kv_heads;  /* num_key_value_heads (= n_heads if absent) */
    int32_t head_dim;    /* head_dim or hidden_size / num_attention_heads */
    int32_t d_ff;        /* intermediate_size */
    int32_t vocab_size;
    int32_t max_pos; /* max_position_embeddings */
    double rms_eps;  /* rms_norm_eps */
    double rope_theta;
    awq_rope_kind rope_kind;
    double rope_factor;                                 /* linear / llama3 */
    double rope_low_freq_factor, rope_high_freq_factor; /* llama3 */
    int32_t rope_orig_max_pos;                          /* llama3 original_max_position_embeddings */
    bool tie_embeddings;                                /* tie_word_embeddings */
    bool qkv_bias;          /* q/k/v projections have biases (Qwen2, attention_bias) */
    bool o_bias;            /* o_proj has a bias (attention_bias on llama) */
    bool mlp_bias;          /* gate/up/down have biases (mlp_bias on llama) */
    bool qk_norm;           /* per-head RMSNorm on q and k (Qwen3) */
    int32_t sliding_window; /* 0 = full attention */
    awq_dtype torch_dtype;  /* F16/BF16/F32 ("float16" if absent) */
    int32_t bos_id, eos_id; /* -1 if absent */
    /* quantization_config (AWQ) */
    bool quantized;
    int32_t q_bits;
    int32_t q_group_size;
    bool q_zero_point;
    char q_version[16]; /* "gemm" or "gemv" (lower-cased) */
    int32_t n_exclude;
    char exclude[AWQ_MAX_EXCLUDE][64]; /* modules_to_not_convert */
    /* ---- the block's shape beyond Llama (Gemma 2/3); defaults describe Llama ---- */
    bool norm_plus_one;              /* RMSNorm weights are applied as (1 + w) (Gemma) */
    bool sandwich_norms;             /* post-attention and post-feed-forward norms on the module
                                     outputs; the feed-forward norm is pre_feedforward_layernorm */
    awq_act act;                     /* gated-MLP activation (hidden_activation / hidden_act) */
    double embed_scale;              /* embeddings multiplied by this (Gemma: sqrt(hidden_size)); 1 */
    double attn_scale;               /* attention score scale (query_pre_attn_scalar^-0.5 on Gemma);
                                     1/sqrt(head_dim) */
    double attn_softcap;             /* attn_logit_softcapping (Gemma 2), 0 = none */
    double final_softcap;            /* final_logit_softcapping (Gemma 2), 0 = none */
    double rope_local_theta;         /* RoPE base of sliding-window layers (Gemma 3
                                     rope_local_base_freq), 0 = rope_theta */
    bool per_layer_window;           /* sliding_window applies only to the layers marked below */
    uint8_t layer_sliding[4096 / 8]; /* bit l: layer l uses the sliding window (per_layer_window) */
    /* ---- Phi-3 / Phi-3.5 / Phi-4-mini ---- */
    bool fused_qkv;          /* checkpoint stores self_attn.qkv_proj (q | k | v rows) */
    bool fused_gate_up;      /* checkpoint stores mlp.gate_up_proj (gate | up rows) */
    bool clip_qk;            /* clip search also on q/k (AutoAWQ clips a fused qkv_proj whole) */
    int32_t rope_dim;        /* rotated dims per head (partial_rotary_factor * head_dim) */
    double rope_attn_factor; /* cos/sin scale (longrope attention_factor), 1 */
    float rope_short[AWQ_MAX_ROPE_HALF], rope_long[AWQ_MAX_ROPE_HALF]; /* longrope factors */
    /* ---- mixture of experts (Mixtral, Qwen2-MoE, Qwen3-MoE); n_experts = 0: dense ---- */
    int32_t n_experts;             /* num_local_experts (Mixtral) / num_experts (Qwen) */
    int32_t n_experts_used;        /* num_experts_per_tok: the router's top-k */
    int32_t moe_ff;                /* an expert's intermediate size (Qwen moe_intermediate_size,
                                     Mixtral intermediate_size) */
    int32_t shared_ff;             /* Qwen2-MoE shared_expert_intermediate_size, 0 = no shared expert */
    bool moe_norm_topk;            /* top-k weights renormalized to sum 1 (Mixtral always; Qwen
                                     norm_topk_prob) */
    bool moe_mixtral_names;        /* block_sparse_moe.{gate, experts.N.w1/w3/w2} (Mixtral), else
                                     mlp.{gate, experts.N.gate_proj/up_proj/down_proj} (Qwen) */
    uint8_t layer_dense[4096 / 8]; /* bit l: layer l of an MoE model has a dense MLP of d_ff
                                     (Qwen mlp_only_layers / decoder_sparse_step) */
} awq_model_config;

/* True when decoder layer l's feed-forward block is a mixture of experts. */
bool awq_config_layer_moe(const awq_model_config *c, int32_t l);

/* Longrope: true when a context of n_ctx tokens uses the long factors (n_ctx beyond the original
 * context, as llama.cpp chooses per context; transformers switches once the sequence is longer). */
bool awq_config_rope_long(const awq_model_config *c, int64_t n_ctx);
/* RoPE inverse frequencies (rope_dim/2,) with the long factors (longrope only). */
void awq_config_inv_freq_long(const awq_model_config *c, float *inv_freq);

/* Attention of decoder layer l: its sliding window (0 = full attention) and whether it uses the
 * local RoPE base (rope_local_theta). */
int32_t awq_config_layer_window(const awq_model_config *c, int32_t l);
bool awq_config_layer_local_rope(const awq_model_config *c, int32_t l);
/* RoPE inverse frequencies of the local (sliding-window) layers: rope_local_theta, no scaling. */
void awq_config_inv_freq_local(const awq_model_config *c, float *inv_freq);
/* Hugging Face names of the layer norms (layer-relative, "input_layernorm.weight"):
 * the attention input norm, the feed-forward input norm, and with sandwich_norms the norms of
 * the attention and feed-forward outputs (NULL otherwise). */
typedef struct awq_norm_names {
    const char *attn, *ffn, *post_attn, *post_ffn;
} awq_norm_names;
awq_norm_names awq_config_norm_names(const awq_model_config *c);

/* Reads dir/config.json. Errors name the file and the key; an unsupported model_type lists the
 * supported ones. */
awq_status awq_config_load(awq_runtime *rt, const char *dir, awq_model_config *out);
/* Same from an already parsed JSON object (what = file name for messages). */
struct cJSON;
awq_status awq_config_parse(awq_runtime *rt, const struct cJSON *root, const char *what,
                            awq_model_config *out);
/* Comma-separated supported model_type values. */
const char *awq_config_supported(void);
/* RoPE inverse frequencies (rope_dim/2,) for the config (handles rope_scaling; longrope: the
 * short factors). */
void awq_config_inv_freq(const awq_model_config *c, float *inv_freq);
/* True if a linear named `name` (layer-relative, e.g. "mlp.gate_proj") is excluded from
 * quantization by modules_to_not_convert (substring match, as AutoAWQ/vLLM do). */
bool awq_config_is_excluded(const awq_model_config *c, const char *full_name);

#endif
