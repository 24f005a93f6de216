/* test_config.c - config.json parsing: architectures, defaults, rope scaling, errors that name
 * the key, and the RoPE inverse frequencies against a double-precision evaluation of the
 * formulas in transformers' rope utilities. */
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

#define BASE                                                                 \
    "\"model_type\":\"llama\",\"num_hidden_layers\":30,\"hidden_size\":576," \
    "\"num_attention_heads\":9,\"intermediate_size\":1536,"                  \
    "\"vocab_size\":49152,\"rms_norm_eps\":1e-5,\"rope_theta\":100000,"      \
    "\"tie_word_embeddings\":true"
#define SMOL BASE ",\"num_key_value_heads\":3"

TEST(smollm2_llama) {
    awq_model_config c;
    ASSERT_OK(parse(NULL, "{" SMOL "}", &c));
    ASSERT_STREQ(c.model_type, "llama");
    ASSERT_EQ(c.head_dim, 64);
    ASSERT_EQ(c.n_kv_heads, 3);
    ASSERT(c.tie_embeddings);
    ASSERT(!c.qkv_bias && !c.qk_norm && !c.quantized);
    ASSERT_EQ(c.sliding_window, 0);
    ASSERT_EQ(c.torch_dtype, AWQ_DTYPE_F16);
}

TEST(qwen2_bias_qwen3_norm_mistral_window) {
    awq_model_config c;
    ASSERT_OK(parse(NULL,
                    "{\"model_type\":\"qwen2\",\"num_hidden_layers\":2,\"hidden_size\":64,"
                    "\"num_attention_heads\":4,\"num_key_value_heads\":2,"
                    "\"intermediate_size\":128,\"vocab_size\":100,\"sliding_window\":32,"
                    "\"use_sliding_window\":false,\"torch_dtype\":\"bfloat16\"}",
                    &c));
    ASSERT(c.qkv_bias);
    ASSERT_EQ(c.sliding_window, 0);
    ASSERT_EQ(c.torch_dtype, AWQ_DTYPE_BF16);
    ASSERT_OK(parse(NULL,
                    "{\"model_type\":\"qwen3\",\"num_hidden_layers\":2,\"hidden_size\":64,"
                    "\"num_attention_heads\":4,\"head_dim\":32,\"intermediate_size\":128,"
                    "\"vocab_size\":100}",
                    &c));
    ASSERT(c.qk_norm && !c.qkv_bias);
    ASSERT_EQ(c.head_dim, 32);
    ASSERT_OK(parse(NULL,
                    "{\"model_type\":\"mistral\",\"num_hidden_layers\":2,\"hidden_size\":64,"
                    "\"num_attention_heads\":4,\"intermediate_size\":128,\"vocab_size\":100,"
                    "\"sliding_window\":4096}",
                    &c));
    ASSERT_EQ(c.sliding_window, 4096);
}

TEST(errors_name_the_key) {
    awq_runtime *rt = NULL;
    ASSERT_OK(awq_runtime_create(&rt, NULL));
    awq_model_config c;
    ASSERT_EQ(parse(rt, "{\"model_type\":\"gpt2\"}", &c), AWQ_ERR_UNSUPPORTED);
    ASSERT(strstr(awq_runtime_last_error(rt), "gpt2") && strstr(awq_runtime_last_error(rt), "llama"));
    ASSERT_ERR_RT(parse(rt, "{\"model_type\":\"llama\",\"hidden_size\":64}", &c), rt, AWQ_ERR_FORMAT,
                  "num_hidden_layers");
    ASSERT_ERR_RT(parse(rt, "{" BASE ",\"num_key_value_heads\":\"three\"}", &c), rt, AWQ_ERR_FORMAT,
                  "num_key_value_heads");
    ASSERT_EQ(parse(rt, "{" BASE ",\"num_key_value_heads\":4}", &c), AWQ_ERR_FORMAT);
    ASSERT_EQ(parse(rt, "{" SMOL ",\"rope_scaling\":{\"rope_type\":\"yarn\",\"factor\":4}}", &c),
              AWQ_ERR_UNSUPPORTED);
    ASSERT(strstr(awq_runtime_last_error(rt), "yarn"));
    ASSERT_EQ(parse(rt, "{" SMOL ",\"quantization_config\":{\"quant_method\":\"gptq\"}}", &c),
              AWQ_ERR_UNSUPPORTED);
    ASSERT_EQ(parse(rt, "{" SMOL ",\"quantization_config\":{\"quant_method\":\"awq\",\"bits\":8}}", &c),
              AWQ_ERR_UNSUPPORTED);
    awq_runtime_destroy(rt);
}

TEST(awq_quantization_config) {
    awq_model_config c;
    ASSERT_OK(parse(NULL,
                    "{" SMOL ",\"quantization_config\":{\"quant_method\":\"awq\",\"bits\":4,"
                    "\"group_size\":64,\"zero_point\":true,\"version\":\"GEMM\","
                    "\"modules_to_not_convert\":[\"gate\"]}}",
                    &c));
    ASSERT(c.quantized);
    ASSERT_EQ(c.q_group_size, 64);
    ASSERT_STREQ(c.q_version, "gemm");
    ASSERT_EQ(c.n_exclude, 1);
    ASSERT(awq_config_is_excluded(&c, "model.layers.0.mlp.gate_proj"));
    ASSERT(!awq_config_is_excluded(&c, "model.layers.0.mlp.up_proj"));
    /* legacy keys */
    ASSERT_OK(parse(NULL,
                    "{" SMOL ",\"quantization_config\":{\"quant_method\":\"awq\",\"w_bit\":4,"
                    "\"q_group_size\":128,\"zero_point\":true,\"version\":\"gemv\"}}",
                    &c));
    ASSERT_EQ(c.q_group_size, 128);
    ASSERT_STREQ(c.q_version, "gemv");
}

TEST(rope_inv_freq_llama3) {
    awq_model_config c;
    ASSERT_OK(parse(NULL,
                    "{\"model_type\":\"llama\",\"num_hidden_layers\":1,\"hidden_size\":4096,"
                    "\"num_attention_heads\":32,\"num_key_value_heads\":8,"
                    "\"intermediate_size\":14336,\"vocab_size\":128256,\"rope_theta\":500000,"
                    "\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8.0,"
                    "\"low_freq_factor\":1.0,\"high_freq_factor\":4.0,"
                    "\"original_max_position_embeddings\":8192}}",
                    &c));
    float inv[64];
    awq_config_inv_freq(&c, inv);
    int n_low = 0, n_high = 0, n_mid = 0;
    for (int i = 0; i < 64; i++) {
        double base = pow(500000.0, -(2.0 * i) / 128.0), wl = 2 * M_PI / base, want;
        if (wl < 8192 / 4.0) {
            want = base;
            n_high++;
        } else if (wl > 8192 / 1.0) {
            want = base / 8;
            n_low++;
        } else {
            double sm = (8192 / wl - 1.0) / (4.0 - 1.0);
            want = (1 - sm) * base / 8 + sm * base;
            n_mid++;
        }
        ASSERT_NEAR(inv[i], want, 1e-6 * want);
    }
    ASSERT(n_low > 0 && n_high > 0 && n_mid > 0); /* all three branches exercised */
}

int main(void) {
    RUN(smollm2_llama);
    RUN(qwen2_bias_qwen3_norm_mistral_window);
    RUN(errors_name_the_key);
    RUN(awq_quantization_config);
    RUN(rope_inv_freq_llama3);
    return TEST_EXIT();
}
