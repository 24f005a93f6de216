/* config.c - config.json -> awq_model_config. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "json.h"

/* Architectures as data. */
static awq_status get_i32(awq_runtime *rt, const cJSON *o, const char *what, const char *key, bool req,
                          int64_t def, int64_t lo, int64_t hi, int32_t *out);

typedef enum gemma_kind { NOT_GEMMA = 0, GEMMA1, GEMMA2, GEMMA3 } gemma_kind;
typedef enum moe_kind { NOT_MOE = 0, MOE_MIXTRAL, MOE_QWEN2, MOE_QWEN3 } moe_kind;

typedef struct arch_desc {
    const char *model_type;
    bool qkv_bias_default;    /* Qwen2 always has q/k/v biases */
    bool qk_norm;             /* Qwen3, Gemma 3 */
    bool sliding_from_cfg;    /* honours sliding_window (Mistral always; Qwen2 if use_sliding_window) */
    const char *sliding_flag; /* key that must be true for the window to apply, or NULL */
    gemma_kind gemma;         /* Gemma block: (1 + w) norms, sandwich norms, scaled embeddings,
                                      GELU-tanh, query_pre_attn_scalar, interleaved sliding layers */
    moe_kind moe;             /* mixture-of-experts feed-forward blocks (parse_moe) */
} arch_desc;

static const arch_desc archs[] = {
    {"llama", false, false, false, NULL, NOT_GEMMA, NOT_MOE},
    {"mistral", false, false, true, NULL, NOT_GEMMA, NOT_MOE},
    {"qwen2", true, false, true, "use_sliding_window", NOT_GEMMA, NOT_MOE},
    {"qwen3", false, true, true, "use_sliding_window", NOT_GEMMA, NOT_MOE},
    {"gemma", false, false, false, NULL, GEMMA1, NOT_MOE},
    {"gemma2", false, false, false, NULL, GEMMA2, NOT_MOE},
    {"gemma3_text", false, true, false, NULL, GEMMA3, NOT_MOE},
    {"phi3", false, false, true, NULL, NOT_GEMMA,
     NOT_MOE}, /* fused qkv/gate_up, longrope: awq_config_parse */
    {"mixtral", false, false, true, NULL, NOT_GEMMA, MOE_MIXTRAL},
    {"qwen2_moe", true, false, true, "use_sliding_window", NOT_GEMMA, MOE_QWEN2},
    {"qwen3_moe", false, true, true, "use_sliding_window", NOT_GEMMA, MOE_QWEN3},
};

const char *awq_config_supported(void) {
    return "llama, mistral, qwen2, qwen3, gemma, gemma2, gemma3_text, phi3, mixtral, qwen2_moe, qwen3_moe "
           "(SmolLM2 is llama; Phi-3, Phi-3.5 and Phi-4-mini are phi3)";
}

/* Mixture of experts (transformers' MixtralSparseMoeBlock, Qwen2MoeSparseMoeBlock,
 * Qwen3MoeSparseMoeBlock): the expert count, the router's top-k, each expert's width, the
 * renormalization of the top-k weights, Qwen2-MoE's shared expert, and which layers stay dense
 * (Qwen: layer l is sparse unless l is in mlp_only_layers or (l + 1) % decoder_sparse_step != 0). */
static awq_status parse_moe(awq_runtime *rt, const cJSON *root, const char *what, moe_kind k,
                            awq_model_config *c) {
    awq_status st;
    const char *ne_key = k == MOE_MIXTRAL ? "num_local_experts" : "num_experts";
    if ((st = get_i32(rt, root, what, ne_key, true, 0, 1, 4096, &c->n_experts)) ||
        (st = get_i32(rt, root, what, "num_experts_per_tok", true, 0, 1, c->n_experts, &c->n_experts_used)))
        return st;
    c->moe_mixtral_names = k == MOE_MIXTRAL;
    if (k == MOE_MIXTRAL) {
        c->moe_ff = c->d_ff; /* Mixtral's experts are intermediate_size wide; it always renormalizes */
        c->moe_norm_topk = true;
        return AWQ_OK;
    }
    if ((st = get_i32(rt, root, what, "moe_intermediate_size", true, 0, 8, 1 << 20, &c->moe_ff)) ||
        (st = awq_json_get_bool(rt, root, what, "norm_topk_prob", false, false, &c->moe_norm_topk)))
        return st;
    if (k == MOE_QWEN2 &&
        (st =
             get_i32(rt, root, what, "shared_expert_intermediate_size", false, 0, 0, 1 << 20, &c->shared_ff)))
        return st;
    int32_t step = 1;
    if ((st = get_i32(rt, root, what, "decoder_sparse_step", false, 1, 0, 4096, &step))) return st;
    for (int32_t l = 0; l < c->n_layers; l++)
        if (step <= 0 || (l + 1) % step != 0) c->layer_dense[l / 8] |= (uint8_t)(1u << (l % 8));
    const cJSON *ml = cJSON_GetObjectItemCaseSensitive(root, "mlp_only_layers");
    if (ml && !cJSON_IsNull(ml)) {
        if (!cJSON_IsArray(ml))
            return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: 'mlp_only_layers' must be a list of layer indices",
                                 what);
        const cJSON *e;
        cJSON_ArrayForEach(e, ml) {
            if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble >= c->n_layers ||
                e->valuedouble != floor(e->valuedouble))
                return awq_set_error(rt, AWQ_ERR_FORMAT,
                                     "%s: 'mlp_only_layers': entries must be layer "
                                     "indices in [0, %d)",
                                     what, c->n_layers);
            int32_t l = (int32_t)e->valuedouble;
            c->layer_dense[l / 8] |= (uint8_t)(1u << (l % 8));
        }
    }
    return AWQ_OK;
}

bool awq_config_layer_moe(const awq_model_config *c, int32_t l) {
    return c->n_experts > 0 && l >= 0 && l < c->n_layers && !(c->layer_dense[l / 8] >> (l % 8) & 1u);
}

/* hidden_activation / hidden_act -> awq_act. */
static awq_status parse_act(awq_runtime *rt, const cJSON *root, const char *what, bool gemma, awq_act *out) {
    const char *key =
        cJSON_GetObjectItemCaseSensitive(root, "hidden_activation") ? "hidden_activation" : "hidden_act";
    const char *a = NULL;
    awq_status st = awq_json_get_string(rt, root, what, key, false, gemma ? "gelu_pytorch_tanh" : "silu", &a);
    if (st != AWQ_OK) return st;
    if (!strcmp(a, "silu") || !strcmp(a, "swish"))
        *out = AWQ_ACT_SILU;
    else if (!strcmp(a, "gelu_pytorch_tanh") || !strcmp(a, "gelu_new") || !strcmp(a, "gelu_tanh") ||
             (gemma && !strcmp(a, "gelu"))) /* Gemma 1 configs say "gelu"; it was trained with tanh */
        *out = AWQ_ACT_GELU_TANH;
    else
        return awq_set_error(rt, AWQ_ERR_UNSUPPORTED,
                             "%s: '%s' = '%s' is not supported (silu, "
                             "gelu_pytorch_tanh)",
                             what, key, a);
    return AWQ_OK;
}

static double opt_double(const cJSON *root, const char *key, double def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (cJSON_IsNull(v)) return 0; /* explicitly disabled (softcapping: null) */
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

/* Gemma: (1 + w) norms, scaled embeddings; Gemma 2/3 also: sandwich norms, which layers slide
 * (layer_types, else the pattern), query scale, soft-capping. */
static awq_status parse_gemma(awq_runtime *rt, const cJSON *root, const char *what, gemma_kind g,
                              awq_model_config *c) {
    awq_status st;
    c->norm_plus_one = true;
    c->embed_scale = sqrt((double)c->d_model);
    if (g == GEMMA1) return AWQ_OK; /* otherwise a Llama block: scores scaled by head_dim^-0.5 */
    c->sandwich_norms = true;
    double qs = 256;
    if ((st = awq_json_get_double(rt, root, what, "query_pre_attn_scalar", false, 256, &qs))) return st;
    if (!(qs > 0)) return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: 'query_pre_attn_scalar' must be > 0", what);
    c->attn_scale = 1.0 / sqrt(qs);
    c->attn_softcap = opt_double(root, "attn_logit_softcapping", g == GEMMA2 ? 50.0 : 0);
    c->final_softcap = opt_double(root, "final_logit_softcapping", g == GEMMA2 ? 30.0 : 0);
    if (c->attn_softcap < 0 || c->final_softcap < 0)
        return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: soft-capping values must be >= 0", what);
    int32_t w = 4096;
    if ((st = get_i32(rt, root, what, "sliding_window", false, 4096, 0, 1 << 24, &w))) return st;
    c->sliding_window = w;
    c->per_layer_window = true;
    if (g == GEMMA3) {
        if ((st = awq_json_get_double(rt, root, what, "rope_local_base_freq", false, 10000.0,
                                      &c->rope_local_theta)))
            return st;
        if (!(c->rope_local_theta > 0))
            return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: 'rope_local_base_freq' must be > 0", what);
    }
    const cJSON *lt = cJSON_GetObjectItemCaseSensitive(root, "layer_types");
    if (lt && !cJSON_IsNull(lt)) {
        if (!cJSON_IsArray(lt) || cJSON_GetArraySize(lt) != c->n_layers)
            return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: 'layer_types' must be a list of %d strings", what,
                                 c->n_layers);
        int32_t l = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, lt) {
            if (!cJSON_IsString(e) ||
                (strcmp(e->valuestring, "sliding_attention") && strcmp(e->valuestring, "full_attention")))
                return awq_set_error(rt, AWQ_ERR_UNSUPPORTED,
                                     "%s: layer_types[%d]: expected "
                                     "'sliding_attention' or 'full_attention'",
                                     what, l);
            if (!strcmp(e->valuestring, "sliding_attention"))
                c->layer_sliding[l / 8] |= (uint8_t)(1u << (l % 8));
            l++;
        }
        return AWQ_OK;
    }
    int32_t pattern = 2;
    if (g == GEMMA3) {
        const char *key = cJSON_GetObjectItemCaseSensitive(root, "sliding_window_pattern")
            ? "sliding_window_pattern"
            : "_sliding_window_pattern";
        if ((st = get_i32(rt, root, what, key, false, 6, 1, 4096, &pattern))) return st;
    }
    /* transformers: Gemma 2 slides on even layers, Gemma 3 on all but every pattern-th */
    for (int32_t l = 0; l < c->n_layers; l++) {
        bool slide = g == GEMMA2 ? l % 2 == 0 : (l + 1) % pattern != 0;
        if (slide) c->layer_sliding[l / 8] |= (uint8_t)(1u << (l % 8));
    }
    return AWQ_OK;
}

static awq_status get_i32(awq_runtime *rt, const cJSON *o, const char *what, const char *key, bool req,
                          int64_t def, int64_t lo, int64_t hi, int32_t *out) {
    int64_t v;
    awq_status st = awq_json_get_int(rt, o, what, key, req, def, &v);
    if (st != AWQ_OK) return st;
    if (v < lo || v > hi)
        return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: '%s' = %lld is out of range [%lld, %lld]", what, key,
                             (long long)v, (long long)lo, (long long)hi);
    *out = (int32_t)v;
    return AWQ_OK;
}

/* Phi-3's longrope (transformers _compute_longrope_parameters): inv_freq[i] = 1 / (factor[i] *
 * theta^(2i/rope_dim)), factors short or long, cos/sin scaled by attention_factor (default
 * sqrt(1 + ln(max_pos / original_max_pos) / ln(original_max_pos)) when the ratio exceeds 1). */
static awq_status parse_longrope(awq_runtime *rt, const cJSON *root, const cJSON *rs, const char *what,
                                 awq_model_config *c) {
    c->rope_kind = AWQ_ROPE_LONGROPE;
    int32_t half = c->rope_dim / 2;
    const char *keys[2] = {"short_factor", "long_factor"};
    float *dst[2] = {c->rope_short, c->rope_long};
    for (int k = 0; k < 2; k++) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(rs, keys[k]);
        if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != half)
            return awq_set_error(rt, AWQ_ERR_FORMAT,
                                 "%s: rope_scaling.%s must be a list of %d numbers "
                                 "(rotary dims / 2)",
                                 what, keys[k], half);
        int32_t i = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, a) {
            if (!cJSON_IsNumber(e) || !(e->valuedouble > 0 && e->valuedouble <= 3.4e38)) /* a float */
                return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: rope_scaling.%s[%d] must be > 0", what, keys[k],
                                     i);
            dst[k][i++] = (float)e->valuedouble;
        }
    }
    c->rope_orig_max_pos = c->max_pos;
    const cJSON *om = cJSON_GetObjectItemCaseSensitive(root, "original_max_position_embeddings");
    if (cJSON_IsNumber(om)) {
        if (!(om->valuedouble >= 1 && om->valuedouble <= 2147483647.0))
            return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: 'original_max_position_embeddings' must be >= 1",
                                 what);
        c->rope_orig_max_pos = (int32_t)om->valuedouble;
    }
    double factor = (double)c->max_pos / c->rope_orig_max_pos;
    c->rope_attn_factor = factor <= 1.0 ? 1.0 : sqrt(1.0 + log(factor) / log((double)c->rope_orig_max_pos));
    const cJSON *af = cJSON_GetObjectItemCaseSensitive(rs, "attention_factor");
    if (cJSON_IsNumber(af)) c->rope_attn_factor = af->valuedouble;
    return AWQ_OK;
}

static awq_status parse_rope_scaling(awq_runtime *rt, const cJSON *root, const char *what,
                                     awq_model_config *c) {
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(root, "rope_scaling");
    c->rope_kind = AWQ_ROPE_DEFAULT;
    c->rope_factor = 1.0;
    if (!rs || cJSON_IsNull(rs)) return AWQ_OK;
    if (!cJSON_IsObject(rs))
        return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: 'rope_scaling' must be an object or null", what);
    const char *type = NULL;
    awq_status st = awq_json_get_string(rt, rs, what, "rope_type", false, NULL, &type);
    if (st != AWQ_OK) return st;
    if (!type) {
        st = awq_json_get_string(rt, rs, what, "type", false, NULL, &type);
        if (st != AWQ_OK) return st;
    }
    if (!type)
        return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: 'rope_scaling' has no 'rope_type' or 'type'", what);
    if (!strcmp(type, "default")) return AWQ_OK;
    if (!strcmp(type, "longrope") || !strcmp(type, "su")) return parse_longrope(rt, root, rs, what, c);
    st = awq_json_get_double(rt, rs, what, "factor", true, 1.0, &c->rope_factor);
    if (st != AWQ_OK) return st;
    if (!(c->rope_factor > 0))
        return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: 'rope_scaling.factor' must be > 0", what);
    if (!strcmp(type, "linear")) {
        c->rope_kind = AWQ_ROPE_LINEAR;
        return AWQ_OK;
    }
    if (!strcmp(type, "llama3")) {
        c->rope_kind = AWQ_ROPE_LLAMA3;
        if ((st = awq_json_get_double(rt, rs, what, "low_freq_factor", true, 1, &c->rope_low_freq_factor)) ||
            (st =
                 awq_json_get_double(rt, rs, what, "high_freq_factor", true, 4, &c->rope_high_freq_factor)) ||
            (st = get_i32(rt, rs, what, "original_max_position_embeddings", true, 8192, 1, 1 << 24,
                          &c->rope_orig_max_pos)))
            return st;
        if (!(c->rope_high_freq_factor > c->rope_low_freq_factor))
            return awq_set_error(rt, AWQ_ERR_FORMAT,
                                 "%s: rope_scaling high_freq_factor must exceed low_freq_factor", what);
        return AWQ_OK;
    }
    return awq_set_error(rt, AWQ_ERR_UNSUPPORTED,
                         "%s: rope_scaling type '%s' is not supported (supported: default, linear, llama3, "
                         "longrope)",
                         what, type);
}

static awq_status parse_dtype(awq_runtime *rt, const cJSON *root, const char *what, awq_dtype *out) {
    const char *s = NULL;
    awq_status st = awq_json_get_string(rt, root, what, "torch_dtype", false, "float16", &s);
    if (st != AWQ_OK) return st;
    if (!strcmp(s, "float16") || !strcmp(s, "half"))
        *out = AWQ_DTYPE_F16;
    else if (!strcmp(s, "bfloat16"))
        *out = AWQ_DTYPE_BF16;
    else if (!strcmp(s, "float32") || !strcmp(s, "float"))
        *out = AWQ_DTYPE_F32;
    else
        return awq_set_error(rt, AWQ_ERR_UNSUPPORTED,
                             "%s: 'torch_dtype' = '%s' is not supported "
                             "(float16, bfloat16, float32)",
                             what, s);
    return AWQ_OK;
}

static awq_status parse_quant(awq_runtime *rt, const cJSON *root, const char *what, awq_model_config *c) {
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(root, "quantization_config");
    c->quantized = false;
    if (!q || cJSON_IsNull(q)) return AWQ_OK;
    if (!cJSON_IsObject(q))
        return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: 'quantization_config' must be an object", what);
    const char *method = NULL;
    awq_status st = awq_json_get_string(rt, q, what, "quant_method", false, "awq", &method);
    if (st != AWQ_OK) return st;
    if (strcmp(method, "awq") != 0)
        return awq_set_error(rt, AWQ_ERR_UNSUPPORTED,
                             "%s: quantization_config.quant_method '%s' is not supported (only awq)", what,
                             method);
    int64_t bits = 4, gs = 128;
    /* AutoAWQ writes bits/group_size; legacy files use w_bit/q_group_size. */
    if (cJSON_GetObjectItemCaseSensitive(q, "w_bit"))
        st = awq_json_get_int(rt, q, what, "w_bit", true, 4, &bits);
    else
        st = awq_json_get_int(rt, q, what, "bits", false, 4, &bits);
    if (st != AWQ_OK) return st;
    if (cJSON_GetObjectItemCaseSensitive(q, "q_group_size"))
        st = awq_json_get_int(rt, q, what, "q_group_size", true, 128, &gs);
    else
        st = awq_json_get_int(rt, q, what, "group_size", false, 128, &gs);
    if (st != AWQ_OK) return st;
    if (bits != 4)
        return awq_set_error(rt, AWQ_ERR_UNSUPPORTED,
                             "%s: quantization_config.bits = %lld is not supported (only 4)", what,
                             (long long)bits);
    if (gs != -1 && (gs < 8 || gs > 4096 || gs % 8))
        return awq_set_error(rt, AWQ_ERR_UNSUPPORTED,
                             "%s: quantization_config.group_size = %lld is not supported", what,
                             (long long)gs);
    st = awq_json_get_bool(rt, q, what, "zero_point", false, true, &c->q_zero_point);
    if (st != AWQ_OK) return st;
    if (!c->q_zero_point)
        return awq_set_error(rt, AWQ_ERR_UNSUPPORTED,
                             "%s: quantization_config.zero_point = false (symmetric AWQ, 'marlin') "
                             "is not supported",
                             what);
    const char *ver = NULL;
    st = awq_json_get_string(rt, q, what, "version", false, "gemm", &ver);
    if (st != AWQ_OK) return st;
    size_t i = 0;
    for (; ver[i] && i + 1 < sizeof c->q_version; i++)
        c->q_version[i] = (char)(ver[i] >= 'A' && ver[i] <= 'Z' ? ver[i] + 32 : ver[i]);
    c->q_version[i] = '\0';
    if (strcmp(c->q_version, "gemm") && strcmp(c->q_version, "gemv"))
        return awq_set_error(rt, AWQ_ERR_UNSUPPORTED,
                             "%s: quantization_config.version '%s' is not supported (gemm, gemv)", what, ver);
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(q, "modules_to_not_convert");
    c->n_exclude = 0;
    if (ex && !cJSON_IsNull(ex)) {
        if (!cJSON_IsArray(ex))
            return awq_set_error(rt, AWQ_ERR_FORMAT,
                                 "%s: quantization_config.modules_to_not_convert must be a list", what);
        const cJSON *e;
        cJSON_ArrayForEach(e, ex) {
            if (!cJSON_IsString(e) || c->n_exclude >= AWQ_MAX_EXCLUDE ||
                strlen(e->valuestring) >= sizeof c->exclude[0])
                return awq_set_error(rt, AWQ_ERR_FORMAT,
                                     "%s: quantization_config.modules_to_not_convert: bad entry", what);
            snprintf(c->exclude[c->n_exclude++], sizeof c->exclude[0], "%s", e->valuestring);
        }
    }
    c->quantized = true;
    c->q_bits = (int32_t)bits;
    c->q_group_size = (int32_t)gs; /* -1 resolved per layer (= in) by the loader */
    return AWQ_OK;
}

/* A token id from JSON: a non-negative integer that fits int32, else -1 ("none"); converting an
 * out-of-range double is undefined behaviour. */
static int32_t token_id(double v) { return v >= 0 && v <= 2147483647.0 && v == floor(v) ? (int32_t)v : -1; }

awq_status awq_config_parse(awq_runtime *rt, const cJSON *root, const char *what, awq_model_config *c) {
    memset(c, 0, sizeof *c);
    if (!cJSON_IsObject(root))
        return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: top level must be a JSON object", what);
    const char *mt = NULL;
    awq_status st = awq_json_get_string(rt, root, what, "model_type", true, NULL, &mt);
    if (st != AWQ_OK) return st;
    const arch_desc *a = NULL;
    for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++)
        if (!strcmp(archs[i].model_type, mt)) a = &archs[i];
    if (!a)
        return awq_set_error(rt, AWQ_ERR_UNSUPPORTED, "%s: model_type '%s' is not supported (supported: %s)",
                             what, mt, awq_config_supported());
    snprintf(c->model_type, sizeof c->model_type, "%s", mt);
    if (!a->moe &&
        (cJSON_GetObjectItemCaseSensitive(root, "num_local_experts") ||
         cJSON_GetObjectItemCaseSensitive(root, "num_experts")))
        return awq_set_error(rt, AWQ_ERR_UNSUPPORTED,
                             "%s: a mixture-of-experts '%s' checkpoint is not "
                             "supported (mixture-of-experts families: mixtral, qwen2_moe, qwen3_moe)",
                             what, mt);

    const int32_t BIG = 1 << 20;
    if ((st = get_i32(rt, root, what, "num_hidden_layers", true, 0, 1, 4096, &c->n_layers)) ||
        (st = get_i32(rt, root, what, "hidden_size", true, 0, 8, BIG, &c->d_model)) ||
        (st = get_i32(rt, root, what, "num_attention_heads", true, 0, 1, 4096, &c->n_heads)) ||
        (st = get_i32(rt, root, what, "num_key_value_heads", false, c->n_heads, 1, 4096, &c->n_kv_heads)) ||
        (st = get_i32(rt, root, what, "intermediate_size", true, 0, 8, BIG, &c->d_ff)) ||
        (st = get_i32(rt, root, what, "vocab_size", true, 0, 1, 1 << 24, &c->vocab_size)) ||
        (st = get_i32(rt, root, what, "max_position_embeddings", false, 4096, 1, 1 << 24, &c->max_pos)))
        return st;
    if (c->d_model % c->n_heads && !cJSON_GetObjectItemCaseSensitive(root, "head_dim"))
        return awq_set_error(rt, AWQ_ERR_FORMAT,
                             "%s: hidden_size %d is not divisible by num_attention_heads %d", what,
                             c->d_model, c->n_heads);
    const cJSON *hd = cJSON_GetObjectItemCaseSensitive(root, "head_dim");
    if (hd && !cJSON_IsNull(hd)) {
        if ((st = get_i32(rt, root, what, "head_dim", true, 0, 2, 4096, &c->head_dim))) return st;
    } else {
        c->head_dim = c->d_model / c->n_heads;
    }
    if (c->head_dim % 2)
        return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: head_dim %d must be even", what, c->head_dim);
    if (c->n_heads % c->n_kv_heads)
        return awq_set_error(rt, AWQ_ERR_FORMAT,
                             "%s: num_attention_heads %d is not a multiple of num_key_value_heads %d", what,
                             c->n_heads, c->n_kv_heads);
    if ((st = awq_json_get_double(rt, root, what, "rms_norm_eps", false, 1e-6, &c->rms_eps)) ||
        (st = awq_json_get_double(rt, root, what, "rope_theta", false, 10000.0, &c->rope_theta)) ||
        (st = awq_json_get_bool(rt, root, what, "tie_word_embeddings", false, a->gemma != NOT_GEMMA,
                                &c->tie_embeddings)))
        return st;
    if (!(c->rms_eps > 0) || !(c->rope_theta > 0))
        return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: rms_norm_eps and rope_theta must be > 0", what);
    bool attn_bias = false;
    if ((st = awq_json_get_bool(rt, root, what, "attention_bias", false, false, &attn_bias)) ||
        (st = awq_json_get_bool(rt, root, what, "mlp_bias", false, false, &c->mlp_bias)))
        return st;
    c->qkv_bias = a->qkv_bias_default || attn_bias;
    if (a->moe == MOE_QWEN2 &&
        (st = awq_json_get_bool(rt, root, what, "qkv_bias", false, true, &c->qkv_bias)))
        return st;
    /* attention_bias also puts a bias on o_proj (Llama, Qwen3-MoE) */
    c->o_bias = attn_bias && (!strcmp(mt, "llama") || a->moe == MOE_QWEN3);
    c->qk_norm = a->qk_norm;
    c->sliding_window = 0;
    if (a->sliding_from_cfg) {
        bool use = true;
        if (a->sliding_flag && (st = awq_json_get_bool(rt, root, what, a->sliding_flag, false, false, &use)))
            return st;
        int32_t w = 0;
        if ((st = get_i32(rt, root, what, "sliding_window", false, 0, 0, 1 << 24, &w))) return st;
        if (use) c->sliding_window = w;
    }
    c->rope_dim = c->head_dim;
    c->rope_attn_factor = 1.0;
    const cJSON *prf = cJSON_GetObjectItemCaseSensitive(root, "partial_rotary_factor");
    if (cJSON_IsNumber(prf)) {
        if (!(prf->valuedouble > 0 && prf->valuedouble <= 1))
            return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: 'partial_rotary_factor' must be in (0, 1]", what);
        c->rope_dim = (int32_t)(c->head_dim * prf->valuedouble);
        if (c->rope_dim % 2 || c->rope_dim < 2)
            return awq_set_error(rt, AWQ_ERR_FORMAT,
                                 "%s: partial_rotary_factor * head_dim = %d must be "
                                 "even",
                                 what, c->rope_dim);
    }
    if (c->rope_dim / 2 > AWQ_MAX_ROPE_HALF)
        return awq_set_error(rt, AWQ_ERR_UNSUPPORTED, "%s: %d rotary dims per head exceed %d", what,
                             c->rope_dim, 2 * AWQ_MAX_ROPE_HALF);
    if (!strcmp(mt, "phi3")) {
        c->fused_qkv = c->fused_gate_up = c->clip_qk = true;
        if (c->qkv_bias || c->mlp_bias)
            return awq_set_error(rt, AWQ_ERR_UNSUPPORTED, "%s: phi3 with biases is not supported", what);
    }
    if ((st = parse_rope_scaling(rt, root, what, c)) || (st = parse_dtype(rt, root, what, &c->torch_dtype)))
        return st;
    c->embed_scale = 1.0;
    c->attn_scale = 1.0 / sqrt((double)c->head_dim);
    if ((st = parse_act(rt, root, what, a->gemma != NOT_GEMMA, &c->act))) return st;
    if (a->gemma != NOT_GEMMA && (st = parse_gemma(rt, root, what, a->gemma, c))) return st;
    if (a->moe != NOT_MOE && (st = parse_moe(rt, root, what, a->moe, c))) return st;
    c->bos_id = c->eos_id = -1;
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(root, "bos_token_id");
    if (cJSON_IsNumber(b)) c->bos_id = token_id(b->valuedouble);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "eos_token_id");
    if (cJSON_IsNumber(e))
        c->eos_id = token_id(e->valuedouble);
    else if (cJSON_IsArray(e) && cJSON_GetArraySize(e) > 0 && cJSON_IsNumber(cJSON_GetArrayItem(e, 0)))
        c->eos_id = token_id(cJSON_GetArrayItem(e, 0)->valuedouble);
    return parse_quant(rt, root, what, c);
}

awq_status awq_config_load(awq_runtime *rt, const char *dir, awq_model_config *out) {
    char path[4096];
    awq_path_join(path, sizeof path, dir, "config.json");
    cJSON *root = NULL;
    awq_status st = awq_json_parse_file(rt, path, &root);
    if (st != AWQ_OK) return st;
    st = awq_config_parse(rt, root, path, out);
    cJSON_Delete(root);
    return st;
}

bool awq_config_rope_long(const awq_model_config *c, int64_t n_ctx) {
    return c->rope_kind == AWQ_ROPE_LONGROPE && n_ctx > c->rope_orig_max_pos;
}

void awq_config_inv_freq_long(const awq_model_config *c, float *inv_freq) {
    int32_t half = c->rope_dim / 2;
    for (int32_t i = 0; i < half; i++)
        inv_freq[i] =
            (float)(1.0 /
                    ((double)c->rope_long[i] * pow(c->rope_theta, (double)(2 * i) / (double)c->rope_dim)));
}

void awq_config_inv_freq(const awq_model_config *c, float *inv_freq) {
    int32_t half = c->rope_dim / 2;
    for (int32_t i = 0; i < half; i++) {
        double f = 1.0 / pow(c->rope_theta, (double)(2 * i) / (double)c->rope_dim);
        if (c->rope_kind == AWQ_ROPE_LONGROPE) {
            f /= c->rope_short[i];
        } else if (c->rope_kind == AWQ_ROPE_LINEAR) {
            f /= c->rope_factor;
        } else if (c->rope_kind == AWQ_ROPE_LLAMA3) {
            /* transformers _compute_llama3_parameters */
            double low_wl = c->rope_orig_max_pos / c->rope_low_freq_factor;
            double high_wl = c->rope_orig_max_pos / c->rope_high_freq_factor;
            double wl = 2.0 * M_PI / f;
            if (wl > low_wl) {
                f = f / c->rope_factor;
            } else if (wl >= high_wl) {
                double smooth = (c->rope_orig_max_pos / wl - c->rope_low_freq_factor) /
                    (c->rope_high_freq_factor - c->rope_low_freq_factor);
                f = (1.0 - smooth) * f / c->rope_factor + smooth * f;
            }
        }
        inv_freq[i] = (float)f;
    }
}

int32_t awq_config_layer_window(const awq_model_config *c, int32_t l) {
    if (!c->per_layer_window) return c->sliding_window;
    bool slide = l >= 0 && l < 4096 && (c->layer_sliding[l / 8] >> (l % 8) & 1u);
    return slide ? c->sliding_window : 0;
}

bool awq_config_layer_local_rope(const awq_model_config *c, int32_t l) {
    return c->rope_local_theta > 0 && c->per_layer_window && awq_config_layer_window(c, l) > 0;
}

void awq_config_inv_freq_local(const awq_model_config *c, float *inv_freq) {
    int32_t half = c->rope_dim / 2;
    double theta = c->rope_local_theta > 0 ? c->rope_local_theta : c->rope_theta;
    for (int32_t i = 0; i < half; i++)
        inv_freq[i] = (float)(1.0 / pow(theta, (double)(2 * i) / (double)c->rope_dim));
}

awq_norm_names awq_config_norm_names(const awq_model_config *c) {
    awq_norm_names n = {"input_layernorm.weight", "post_attention_layernorm.weight", NULL, NULL};
    if (c->sandwich_norms) {
        n.ffn = "pre_feedforward_layernorm.weight";
        n.post_attn = "post_attention_layernorm.weight";
        n.post_ffn = "post_feedforward_layernorm.weight";
    }
    return n;
}

bool awq_config_is_excluded(const awq_model_config *c, const char *full_name) {
    for (int32_t i = 0; i < c->n_exclude; i++)
        if (c->exclude[i][0] && strstr(full_name, c->exclude[i])) return true;
    return false;
}
