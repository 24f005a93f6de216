/*
 * config.h - config.json -> awq_model_config. Architectures are data: one table row per
 * supported model_type says which optional features its checkpoints have.
 */
#ifndef AWQ_CORE_CONFIG_H
#define AWQ_CORE_CONFIG_H

#include "internal.h"

typedef enum awq_rope_kind {
    AWQ_ROPE_DEFAULT = 0,
    AWQ_ROPE_LINEAR  = 1, /* positions divided by factor */
    AWQ_ROPE_LLAMA3  = 2, /* Llama 3.1 frequency-dependent scaling */
} awq_rope_kind;

#define AWQ_MAX_EXCLUDE 32

typedef struct awq_model_config {
    char      model_type[32];     /* "llama", "mistral", "qwen2", "qwen3" */
    int32_t   n_layers;           /* num_hidden_layers */
    int32_t   d_model;            /* hidden_size */
    int32_t   n_heads;            /* num_attention_heads */
    int32_t   n_kv_heads;         /* num_key_value_heads (= n_heads if absent) */
    int32_t   head_dim;           /* head_dim or hidden_size / num_attention_heads */
    int32_t   d_ff;               /* intermediate_size */
    int32_t   vocab_size;
    int32_t   max_pos;            /* max_position_embeddings */
    double    rms_eps;            /* rms_norm_eps */
    double    rope_theta;
    awq_rope_kind rope_kind;
    double    rope_factor;        /* linear / llama3 */
    double    rope_low_freq_factor, rope_high_freq_factor; /* llama3 */
    int32_t   rope_orig_max_pos;  /* llama3 original_max_position_embeddings */
    bool      tie_embeddings;     /* tie_word_embeddings */
    bool      qkv_bias;           /* q/k/v projections have biases (Qwen2, attention_bias) */
    bool      o_bias;             /* o_proj has a bias (attention_bias on llama) */
    bool      mlp_bias;           /* gate/up/down have biases (mlp_bias on llama) */
    bool      qk_norm;            /* per-head RMSNorm on q and k (Qwen3) */
    int32_t   sliding_window;     /* 0 = full attention */
    awq_dtype torch_dtype;        /* F16/BF16/F32 ("float16" if absent) */
    int32_t   bos_id, eos_id;     /* -1 if absent */
    /* quantization_config (AWQ) */
    bool      quantized;
    int32_t   q_bits;
    int32_t   q_group_size;
    bool      q_zero_point;
    char      q_version[16];      /* "gemm" or "gemv" (lower-cased) */
    int32_t   n_exclude;
    char      exclude[AWQ_MAX_EXCLUDE][64]; /* modules_to_not_convert */
} awq_model_config;

/* Reads dir/config.json. Errors name the file and the key; an unsupported model_type lists the
 * supported ones. */
awq_status awq_config_load(awq_runtime *rt, const char *dir, awq_model_config *out);
/* Same from an already parsed JSON object (what = file name for messages). */
struct cJSON;
awq_status awq_config_parse(awq_runtime *rt, const struct cJSON *root, const char *what,
                            awq_model_config *out);
/* Comma-separated supported model_type values. */
const char *awq_config_supported(void);
/* RoPE inverse frequencies (head_dim/2,) for the config (handles rope_scaling). */
void awq_config_inv_freq(const awq_model_config *c, float *inv_freq);
/* True if a linear named `name` (layer-relative, e.g. "mlp.gate_proj") is excluded from
 * quantization by modules_to_not_convert (substring match, as AutoAWQ/vLLM do). */
bool awq_config_is_excluded(const awq_model_config *c, const char *full_name);

#endif
