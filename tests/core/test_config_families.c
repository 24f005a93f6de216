/* test_config_families.c - config.json of the families beyond Llama (issue 10): Gemma's block
 * description, which layers slide and with which RoPE base, soft-capping defaults, Phi-3's
 * longrope factors and partial rotary dims against the formulas of transformers'
 * _compute_longrope_parameters, and the refusals (mixture-of-experts, unknown activations,
 * malformed lists) naming the key. */
#include <cjson/cJSON.h>

#include "config.h"
#include "test.h"

static awq_status parse(awq_runtime *rt, const char *json, awq_model_config *c) {
    cJSON *root = cJSON_Parse(json);
    if (!root) return AWQ_ERR_FORMAT;
    awq_status st = awq_config_parse(rt, root, "config.json", c);
    cJSON_Delete(root);
    return st;
}

#define DIMS                                                                  \
    "\"hidden_size\":64,\"num_attention_heads\":4,\"num_key_value_heads\":2," \
    "\"intermediate_size\":128,\"vocab_size\":320"

TEST(gemma3_pattern_and_block) {
    awq_model_config c;
    ASSERT_OK(parse(NULL,
                    "{\"model_type\":\"gemma3_text\",\"num_hidden_layers\":8," DIMS ","
                    "\"head_dim\":32,\"query_pre_attn_scalar\":24,\"sliding_window\":512,"
                    "\"rope_theta\":1000000,\"rope_local_base_freq\":10000}",
                    &c));
    ASSERT(c.norm_plus_one && c.sandwich_norms && c.qk_norm && c.tie_embeddings);
    ASSERT_EQ(c.act, AWQ_ACT_GELU_TANH);
    ASSERT_NEAR(c.embed_scale, 8.0, 1e-12);
    ASSERT_NEAR(c.attn_scale, 1.0 / sqrt(24.0), 1e-12);
    ASSERT(c.attn_softcap == 0 && c.final_softcap == 0);
    /* 5 local : 1 global: layers 5 is global, 0-4 and 6-7 slide with the local base */
    for (int l = 0; l < 8; l++) {
        ASSERT_EQ(awq_config_layer_window(&c, l), l == 5 ? 0 : 512);
        ASSERT_EQ(awq_config_layer_local_rope(&c, l), l != 5);
    }
    float loc[16], glob[16];
    awq_config_inv_freq_local(&c, loc);
    awq_config_inv_freq(&c, glob);
    ASSERT_NEAR(loc[1], 1.0 / pow(10000.0, 2.0 / 32), 1e-7);
    ASSERT_NEAR(glob[1], 1.0 / pow(1e6, 2.0 / 32), 1e-7);
    awq_norm_names nn = awq_config_norm_names(&c);
    ASSERT_STREQ(nn.ffn, "pre_feedforward_layernorm.weight");
    ASSERT_STREQ(nn.post_ffn, "post_feedforward_layernorm.weight");
}

TEST(gemma3_layer_types_and_gemma2_defaults) {
    awq_model_config c;
    ASSERT_OK(parse(NULL,
                    "{\"model_type\":\"gemma3_text\",\"num_hidden_layers\":3," DIMS ","
                    "\"sliding_window\":4,\"layer_types\":[\"full_attention\","
                    "\"sliding_attention\",\"full_attention\"]}",
                    &c));
    ASSERT(awq_config_layer_window(&c, 0) == 0 && awq_config_layer_window(&c, 1) == 4 &&
           awq_config_layer_window(&c, 2) == 0);
    ASSERT_OK(parse(NULL, "{\"model_type\":\"gemma2\",\"num_hidden_layers\":4," DIMS "}", &c));
    ASSERT(c.attn_softcap == 50.0 && c.final_softcap == 30.0 && !c.qk_norm);
    ASSERT(awq_config_layer_window(&c, 0) == 4096 && awq_config_layer_window(&c, 1) == 0);
    ASSERT(!awq_config_layer_local_rope(&c, 0)); /* one RoPE base */
    ASSERT_OK(parse(NULL,
                    "{\"model_type\":\"gemma2\",\"num_hidden_layers\":4," DIMS ","
                    "\"attn_logit_softcapping\":null,\"final_logit_softcapping\":null}",
                    &c));
    ASSERT(c.attn_softcap == 0 && c.final_softcap == 0);
    ASSERT_OK(parse(NULL, "{\"model_type\":\"gemma\",\"num_hidden_layers\":2," DIMS ",\"head_dim\":32}", &c));
    ASSERT(c.norm_plus_one && !c.sandwich_norms && !c.per_layer_window);
    ASSERT_NEAR(c.attn_scale, 1.0 / sqrt(32.0), 1e-12);
}

TEST(phi3_longrope_partial_rotary) {
    awq_model_config c;
    ASSERT_OK(parse(NULL,
                    "{\"model_type\":\"phi3\",\"num_hidden_layers\":2," DIMS ","
                    "\"max_position_embeddings\":256,\"original_max_position_embeddings\":64,"
                    "\"partial_rotary_factor\":0.75,\"rope_theta\":10000,"
                    "\"rope_scaling\":{\"type\":\"longrope\","
                    "\"short_factor\":[1,1.25,1.5,1.75,2,2.25],"
                    "\"long_factor\":[2,2.5,3,3.5,4,4.5]}}",
                    &c));
    ASSERT(c.fused_qkv && c.fused_gate_up && c.clip_qk);
    ASSERT_EQ(c.rope_dim, 12);
    ASSERT_NEAR(c.rope_attn_factor, sqrt(1.0 + log(4.0) / log(64.0)), 1e-12);
    float s[6], l[6];
    awq_config_inv_freq(&c, s);
    awq_config_inv_freq_long(&c, l);
    for (int i = 0; i < 6; i++) {
        double base = pow(10000.0, 2.0 * i / 12.0);
        ASSERT_NEAR(s[i], 1.0 / ((1.0 + 0.25 * i) * base), 1e-6 / base);
        ASSERT_NEAR(l[i], 1.0 / ((2.0 + 0.5 * i) * base), 1e-6 / base);
    }
    ASSERT(!awq_config_rope_long(&c, 64) && awq_config_rope_long(&c, 65));
}

/* transformers: Qwen layer l is sparse unless l is in mlp_only_layers or (l + 1) %
 * decoder_sparse_step != 0; Mixtral's experts are intermediate_size wide and always renormalized. */
TEST(moe_rows) {
    awq_model_config c;
    ASSERT_OK(parse(NULL,
                    "{\"model_type\":\"qwen2_moe\",\"num_hidden_layers\":8," DIMS ",\"num_experts\":60,"
                    "\"num_experts_per_tok\":4,\"moe_intermediate_size\":32,\"decoder_sparse_step\":2,"
                    "\"shared_expert_intermediate_size\":256,\"mlp_only_layers\":[3]}",
                    &c));
    ASSERT(c.n_experts == 60 && c.n_experts_used == 4 && c.moe_ff == 32 && c.shared_ff == 256);
    ASSERT(!c.moe_norm_topk && !c.moe_mixtral_names && c.qkv_bias && !c.o_bias);
    const bool sparse[8] = {false, true, false, false, false, true, false, true};
    for (int l = 0; l < 8; l++) ASSERT_EQ(awq_config_layer_moe(&c, l), sparse[l]);
    ASSERT_OK(parse(NULL,
                    "{\"model_type\":\"qwen3_moe\",\"num_hidden_layers\":2," DIMS ",\"num_experts\":8,"
                    "\"num_experts_per_tok\":2,\"moe_intermediate_size\":32,\"norm_topk_prob\":true,"
                    "\"attention_bias\":true}",
                    &c));
    ASSERT(c.moe_norm_topk && c.shared_ff == 0 && c.qk_norm && c.o_bias && c.qkv_bias);
    ASSERT(awq_config_layer_moe(&c, 0) && awq_config_layer_moe(&c, 1));
    ASSERT_OK(parse(NULL,
                    "{\"model_type\":\"mixtral\",\"num_hidden_layers\":2," DIMS ",\"num_local_experts\":8,"
                    "\"num_experts_per_tok\":2}",
                    &c));
    ASSERT(c.n_experts == 8 && c.moe_ff == c.d_ff && c.moe_norm_topk && c.moe_mixtral_names);
    ASSERT(awq_config_layer_moe(&c, 0) && awq_config_layer_moe(&c, 1) && !awq_config_layer_moe(&c, 2));
    ASSERT_OK(parse(NULL, "{\"model_type\":\"llama\",\"num_hidden_layers\":2," DIMS "}", &c));
    ASSERT(c.n_experts == 0 && !awq_config_layer_moe(&c, 0));
}

TEST(refusals_name_the_key) {
    awq_runtime_params rp = awq_runtime_params_default();
    awq_runtime *rt = NULL;
    ASSERT_OK(awq_runtime_create(&rt, &rp));
    awq_model_config c;
    ASSERT_EQ(parse(rt, "{\"model_type\":\"deepseek_v2\",\"num_hidden_layers\":2," DIMS "}", &c),
              AWQ_ERR_UNSUPPORTED);
    ASSERT(strstr(awq_runtime_last_error(rt), "deepseek_v2") &&
           strstr(awq_runtime_last_error(rt), "qwen3_moe"));
    ASSERT_EQ(parse(rt, "{\"model_type\":\"mixtral\",\"num_hidden_layers\":2," DIMS "}", &c), AWQ_ERR_FORMAT);
    ASSERT(strstr(awq_runtime_last_error(rt), "num_local_experts"));
    ASSERT_EQ(parse(rt,
                    "{\"model_type\":\"qwen3_moe\",\"num_hidden_layers\":2," DIMS ",\"num_experts\":4,"
                    "\"num_experts_per_tok\":5,\"moe_intermediate_size\":32}",
                    &c),
              AWQ_ERR_FORMAT);
    ASSERT(strstr(awq_runtime_last_error(rt), "num_experts_per_tok"));
    ASSERT_EQ(parse(rt,
                    "{\"model_type\":\"qwen2_moe\",\"num_hidden_layers\":2," DIMS ",\"num_experts\":4,"
                    "\"num_experts_per_tok\":2,\"moe_intermediate_size\":32,\"mlp_only_layers\":[2]}",
                    &c),
              AWQ_ERR_FORMAT);
    ASSERT(strstr(awq_runtime_last_error(rt), "mlp_only_layers"));
    ASSERT_EQ(parse(rt, "{\"model_type\":\"qwen2\",\"num_hidden_layers\":2," DIMS ",\"num_experts\":8}", &c),
              AWQ_ERR_UNSUPPORTED);
    ASSERT(strstr(awq_runtime_last_error(rt), "mixture-of-experts"));
    ASSERT_EQ(
        parse(rt, "{\"model_type\":\"llama\",\"num_hidden_layers\":2," DIMS ",\"hidden_act\":\"relu\"}", &c),
        AWQ_ERR_UNSUPPORTED);
    ASSERT(strstr(awq_runtime_last_error(rt), "hidden_act"));
    ASSERT_EQ(parse(rt,
                    "{\"model_type\":\"gemma3_text\",\"num_hidden_layers\":3," DIMS ","
                    "\"layer_types\":[\"full_attention\"]}",
                    &c),
              AWQ_ERR_FORMAT);
    ASSERT(strstr(awq_runtime_last_error(rt), "layer_types"));
    ASSERT_EQ(parse(rt,
                    "{\"model_type\":\"phi3\",\"num_hidden_layers\":2," DIMS ","
                    "\"rope_scaling\":{\"type\":\"su\",\"short_factor\":[1],\"long_factor\":[1]}}",
                    &c),
              AWQ_ERR_FORMAT);
    ASSERT(strstr(awq_runtime_last_error(rt), "short_factor"));
    ASSERT_EQ(
        parse(rt, "{\"model_type\":\"phi3\",\"num_hidden_layers\":2," DIMS ",\"partial_rotary_factor\":1.5}",
              &c),
        AWQ_ERR_FORMAT);
    ASSERT(strstr(awq_runtime_last_error(rt), "partial_rotary_factor"));
    awq_runtime_destroy(rt);
}

int main(void) {
    RUN(gemma3_pattern_and_block);
    RUN(gemma3_layer_types_and_gemma2_defaults);
    RUN(phi3_longrope_partial_rotary);
    RUN(moe_rows);
    RUN(refusals_name_the_key);
    return TEST_EXIT();
}
