/*
 * convert.c - awq_convert_gguf(): a Llama-family GGUF -> a Hugging Face-layout directory
 * (config.json, model.safetensors, tokenizer.json, tokenizer_config.json,
 * generation_config.json), written into a temporary directory beside out_dir and renamed into
 * place at the end.
 *
 * llama.cpp's converter permutes the rows of attn_q/attn_k of Llama-architecture models for its
 * interleaved-pair RoPE; we undo that permutation so the output works with the Hugging Face
 * rotate-half RoPE (Qwen2/Qwen3 GGUFs use NeoX RoPE and are not permuted).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "awq_pack.h"
#include "awq_pack.h"
#include "gguf.h"
#include "json.h"
#include "safetensors.h"
#include "tokenizer.h"


typedef struct arch_map {
    const char *gguf_arch, *model_type, *hf_class;
    bool permute_qk; /* llama.cpp permuted q/k rows for interleaved RoPE */
    int gemma;       /* 2, 3: llama.cpp stored every norm weight as 1 + w (norm_shift) and
                               the block has Gemma's sandwich norms; 0 otherwise */
} arch_map;

static const arch_map arches[] = {
    {"llama", "llama", "LlamaForCausalLM", true, 0},
    {"mistral", "mistral", "MistralForCausalLM", true, 0},
    {"qwen2", "qwen2", "Qwen2ForCausalLM", false, 0},
    {"qwen3", "qwen3", "Qwen3ForCausalLM", false, 0},
    {"gemma2", "gemma2", "Gemma2ForCausalLM", false, 2},
    {"gemma3", "gemma3_text", "Gemma3ForCausalLM", false, 3},
};

/* The chat templates of Google's instruction-tuned Gemma 3 and Gemma 2 checkpoints
 * (tokenizer_config.json), for GGUF files that carry none. */
static const char gemma3_chat_template[] =
    "{{ bos_token }}\n"
    "{%- if messages[0]['role'] == 'system' -%}\n"
    "    {%- if messages[0]['content'] is string -%}\n"
    "        {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}\n"
    "    {%- else -%}\n"
    "        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}\n"
    "    {%- endif -%}\n"
    "    {%- set loop_messages = messages[1:] -%}\n"
    "{%- else -%}\n"
    "    {%- set first_user_prefix = \"\" -%}\n"
    "    {%- set loop_messages = messages -%}\n"
    "{%- endif -%}\n"
    "{%- for message in loop_messages -%}\n"
    "    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}\n"
    "        {{ raise_exception(\"Conversation roles must alternate user/assistant/user/assistant/...\") }}\n"
    "    {%- endif -%}\n"
    "    {%- if (message['role'] == 'assistant') -%}\n"
    "        {%- set role = \"model\" -%}\n"
    "    {%- else -%}\n"
    "        {%- set role = message['role'] -%}\n"
    "    {%- endif -%}\n"
    "    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else \"\") }}\n"
    "    {%- if message['content'] is string -%}\n"
    "        {{ message['content'] | trim }}\n"
    "    {%- elif message['content'] is iterable -%}\n"
    "        {%- for item in message['content'] -%}\n"
    "            {%- if item['type'] == 'image' -%}\n"
    "                {{ '<start_of_image>' }}\n"
    "            {%- elif item['type'] == 'text' -%}\n"
    "                {{ item['text'] | trim }}\n"
    "            {%- endif -%}\n"
    "        {%- endfor -%}\n"
    "    {%- else -%}\n"
    "        {{ raise_exception(\"Invalid content type\") }}\n"
    "    {%- endif -%}\n"
    "    {{ '<end_of_turn>\n' }}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "    {{'<start_of_turn>model\n'}}\n"
    "{%- endif -%}\n";

static const char gemma2_chat_template[] =
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not "
    "supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != "
    "(loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate "
    "user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') %}{% "
    "set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ "
    "'<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor "
    "%}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}";

awq_convert_params awq_convert_params_default(void) {
    awq_convert_params p = {.dtype = AWQ_DTYPE_F16, .force = false, .progress = NULL, .progress_user = NULL};
    return p;
}

/* GGUF tensor name -> Hugging Face name; false if the tensor is not part of the model. */
static bool hf_name(const arch_map *a, const char *g, char *out, size_t cap) {
    static const struct {
        const char *gg, *hf;
    } glob[] = {
        {"token_embd.weight", "model.embed_tokens.weight"},
        {"output_norm.weight", "model.norm.weight"},
        {"output.weight", "lm_head.weight"},
    };
    for (size_t i = 0; i < sizeof glob / sizeof glob[0]; i++)
        if (!strcmp(g, glob[i].gg)) {
            snprintf(out, cap, "%s", glob[i].hf);
            return true;
        }
    static const struct {
        const char *gg, *hf;
    } blk[] = {
        {"attn_norm.weight", "input_layernorm.weight"},
        {"ffn_norm.weight", "post_attention_layernorm.weight"},
        {"attn_q.weight", "self_attn.q_proj.weight"},
        {"attn_q.bias", "self_attn.q_proj.bias"},
        {"attn_k.weight", "self_attn.k_proj.weight"},
        {"attn_k.bias", "self_attn.k_proj.bias"},
        {"attn_v.weight", "self_attn.v_proj.weight"},
        {"attn_v.bias", "self_attn.v_proj.bias"},
        {"attn_output.weight", "self_attn.o_proj.weight"},
        {"attn_q_norm.weight", "self_attn.q_norm.weight"},
        {"attn_k_norm.weight", "self_attn.k_norm.weight"},
        {"ffn_gate.weight", "mlp.gate_proj.weight"},
        {"ffn_up.weight", "mlp.up_proj.weight"},
        {"ffn_down.weight", "mlp.down_proj.weight"},
    };
    /* Gemma: ffn_norm is the pre-feed-forward norm, and two more norms follow the modules */
    static const struct {
        const char *gg, *hf;
    } gemma_blk[] = {
        {"ffn_norm.weight", "pre_feedforward_layernorm.weight"},
        {"post_attention_norm.weight", "post_attention_layernorm.weight"},
        {"post_ffw_norm.weight", "post_feedforward_layernorm.weight"},
    };
    int layer, n = 0;
    if (sscanf(g, "blk.%d.%n", &layer, &n) != 1 || n == 0) return false;
    for (size_t i = 0; a->gemma && i < sizeof gemma_blk / sizeof gemma_blk[0]; i++)
        if (!strcmp(g + n, gemma_blk[i].gg)) {
            snprintf(out, cap, "model.layers.%d.%s", layer, gemma_blk[i].hf);
            return true;
        }
    for (size_t i = 0; i < sizeof blk / sizeof blk[0]; i++)
        if (!strcmp(g + n, blk[i].gg)) {
            snprintf(out, cap, "model.layers.%d.%s", layer, blk[i].hf);
            return true;
        }
    return false;
}

/* Inverse of llama.cpp's permute(w, n_head): rows are grouped per head as
 * [half0 pairs interleaved] -> HF rotate-half order. w (rows, cols) F32, rows = n_head * hd. */
static awq_status unpermute(awq_runtime *rt, float *w, int64_t rows, int64_t cols, int64_t n_head) {
    if (n_head <= 0 || rows % (2 * n_head))
        return awq_set_error(rt, AWQ_ERR_FORMAT, "cannot un-permute %lld rows for %lld heads",
                             (long long)rows, (long long)n_head);
    int64_t hd = rows / n_head, half = hd / 2;
    float *tmp = awq_malloc((size_t)(hd * cols) * sizeof(float));
    if (!tmp) return awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
    for (int64_t h = 0; h < n_head; h++) {
        float *blk = w + h * hd * cols;
        /* GGUF row 2i+j (pair i, element j) is HF row j*half + i */
        for (int64_t i = 0; i < half; i++)
            for (int64_t j = 0; j < 2; j++)
                memcpy(tmp + (j * half + i) * cols, blk + (2 * i + j) * cols, (size_t)cols * sizeof(float));
        memcpy(blk, tmp, (size_t)(hd * cols) * sizeof(float));
    }
    awq_free(tmp);
    return AWQ_OK;
}

/* Gemma 2/3 keys of config.json, as llama.cpp's graph uses the GGUF (it hard-codes what the
 * file does not say: Gemma 3's 5 local : 1 global pattern and local RoPE base 10000, the
 * 27B models' query scale n_embd / n_head). */
static awq_status gemma_config(awq_runtime *rt, const awq_gguf *g, const arch_map *a, cJSON *c, uint64_t d,
                               uint64_t heads, uint64_t key_len, uint64_t layers) {
    char key[128];
    uint64_t window = 4096, pattern = a->gemma == 3 ? 6 : 2;
    snprintf(key, sizeof key, "%s.attention.sliding_window", a->gguf_arch);
    TRY(awq_gguf_get_u64(rt, g, key, false, 4096, &window));
    snprintf(key, sizeof key, "%s.attention.sliding_window_pattern", a->gguf_arch);
    TRY(awq_gguf_get_u64(rt, g, key, false, pattern, &pattern));
    if (pattern == 0) return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: %s must be > 0", g->path, key);
    /* Gemma 2 27B (46 layers) and Gemma 3 27B (62 layers) scale queries by n_embd / n_head */
    bool big = (a->gemma == 2 && layers == 46) || (a->gemma == 3 && layers == 62);
    cJSON_AddNumberToObject(c, "query_pre_attn_scalar", big ? (double)(d / heads) : (double)key_len);
    cJSON_AddNumberToObject(c, "sliding_window", (double)window);
    cJSON_AddStringToObject(c, "hidden_activation", "gelu_pytorch_tanh");
    cJSON *lt = cJSON_AddArrayToObject(c, "layer_types");
    for (uint64_t l = 0; l < layers; l++) {
        bool slide = a->gemma == 2 ? l % 2 == 0 : (l + 1) % pattern != 0;
        cJSON_AddItemToArray(lt, cJSON_CreateString(slide ? "sliding_attention" : "full_attention"));
    }
    if (a->gemma == 3) {
        double local = 10000.0;
        snprintf(key, sizeof key, "%s.rope.freq_base_swa", a->gguf_arch);
        TRY(awq_gguf_get_f64(rt, g, key, false, 10000.0, &local));
        cJSON_AddNumberToObject(c, "rope_local_base_freq", local);
        cJSON_AddNullToObject(c, "attn_logit_softcapping");
        cJSON_AddNullToObject(c, "final_logit_softcapping");
    } else {
        double acap = 50.0, fcap = 30.0;
        snprintf(key, sizeof key, "%s.attn_logit_softcapping", a->gguf_arch);
        TRY(awq_gguf_get_f64(rt, g, key, false, 50.0, &acap));
        snprintf(key, sizeof key, "%s.final_logit_softcapping", a->gguf_arch);
        TRY(awq_gguf_get_f64(rt, g, key, false, 30.0, &fcap));
        cJSON_AddNumberToObject(c, "attn_logit_softcapping", acap);
        cJSON_AddNumberToObject(c, "final_logit_softcapping", fcap);
    }
    return AWQ_OK;
}

/* Adds the family's chat template to tokenizer_config.json when the GGUF carried none. */
static awq_status default_chat_template(awq_runtime *rt, const arch_map *a, const char *dir) {
    const char *tmpl = a->gemma == 3 ? gemma3_chat_template : a->gemma == 2 ? gemma2_chat_template : NULL;
    if (!tmpl) return AWQ_OK;
    char path[4096];
    awq_path_join(path, sizeof path, dir, "tokenizer_config.json");
    cJSON *root = NULL;
    TRY(awq_json_parse_file(rt, path, &root));
    awq_status st = AWQ_OK;
    if (!cJSON_GetObjectItemCaseSensitive(root, "chat_template")) {
        cJSON_AddStringToObject(root, "chat_template", tmpl);
        st = awq_json_write_file(rt, path, root);
    }
    cJSON_Delete(root);
    return st;
}

static awq_status write_config(awq_runtime *rt, const awq_gguf *g, const arch_map *a, const char *dir,
                               awq_dtype dtype, bool tied, int64_t vocab) {
    char key[128];
    const char *ar = a->gguf_arch;
    uint64_t layers, d, ff, heads, kv_heads, ctx, rope_dim, key_len, bos, eos;
    double eps, theta;
#define U(name, req, def, out) \
    (snprintf(key, sizeof key, "%s." name, ar), awq_gguf_get_u64(rt, g, key, req, def, out))
    TRY(U("block_count", true, 0, &layers));
    TRY(U("embedding_length", true, 0, &d));
    TRY(U("feed_forward_length", true, 0, &ff));
    TRY(U("attention.head_count", true, 0, &heads));
    TRY(U("attention.head_count_kv", false, heads, &kv_heads));
    TRY(U("context_length", false, 4096, &ctx));
    TRY(U("rope.dimension_count", false, heads ? d / heads : 0, &rope_dim));
    TRY(U("attention.key_length", false, rope_dim, &key_len));
#undef U
    snprintf(key, sizeof key, "%s.attention.layer_norm_rms_epsilon", ar);
    TRY(awq_gguf_get_f64(rt, g, key, true, 1e-6, &eps));
    snprintf(key, sizeof key, "%s.rope.freq_base", ar);
    TRY(awq_gguf_get_f64(rt, g, key, false, 10000.0, &theta));
    TRY(awq_gguf_get_u64(rt, g, "tokenizer.ggml.bos_token_id", false, UINT64_MAX, &bos));
    TRY(awq_gguf_get_u64(rt, g, "tokenizer.ggml.eos_token_id", false, UINT64_MAX, &eos));
    if (heads == 0 || kv_heads == 0 || heads % kv_heads)
        return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: %s.attention.head_count %llu / head_count_kv %llu",
                             g->path, ar, (unsigned long long)heads, (unsigned long long)kv_heads);
    if (awq_gguf_find_tensor(g, "rope_freqs.weight"))
        return awq_set_error(rt, AWQ_ERR_UNSUPPORTED,
                             "%s: tensor 'rope_freqs.weight' (Llama 3.1-style RoPE scaling factors) "
                             "cannot be converted to a rope_scaling entry yet",
                             g->path);
    char *scaling = NULL;
    snprintf(key, sizeof key, "%s.rope.scaling.type", ar);
    TRY(awq_gguf_get_str(rt, g, key, false, &scaling));
    cJSON *c = cJSON_CreateObject();
    cJSON *archs = cJSON_AddArrayToObject(c, "architectures");
    cJSON_AddItemToArray(archs, cJSON_CreateString(a->hf_class));
    cJSON_AddStringToObject(c, "model_type", a->model_type);
    cJSON_AddNumberToObject(c, "hidden_size", (double)d);
    cJSON_AddNumberToObject(c, "intermediate_size", (double)ff);
    cJSON_AddNumberToObject(c, "num_hidden_layers", (double)layers);
    cJSON_AddNumberToObject(c, "num_attention_heads", (double)heads);
    cJSON_AddNumberToObject(c, "num_key_value_heads", (double)kv_heads);
    cJSON_AddNumberToObject(c, "head_dim", (double)key_len);
    cJSON_AddNumberToObject(c, "max_position_embeddings", (double)ctx);
    cJSON_AddNumberToObject(c, "rms_norm_eps", eps);
    cJSON_AddNumberToObject(c, "rope_theta", theta);
    awq_status st = AWQ_OK;
    if (scaling && strcmp(scaling, "none")) {
        double factor = 1;
        snprintf(key, sizeof key, "%s.rope.scaling.factor", ar);
        st = awq_gguf_get_f64(rt, g, key, true, 1, &factor);
        if (st == AWQ_OK && strcmp(scaling, "linear"))
            st = awq_set_error(rt, AWQ_ERR_UNSUPPORTED,
                               "%s: rope scaling type '%s' is not supported "
                               "(linear only)",
                               g->path, scaling);
        if (st == AWQ_OK) {
            cJSON *rs = cJSON_AddObjectToObject(c, "rope_scaling");
            cJSON_AddStringToObject(rs, "rope_type", "linear");
            cJSON_AddNumberToObject(rs, "factor", factor);
        }
    }
    awq_free(scaling);
    if (st != AWQ_OK) {
        cJSON_Delete(c);
        return st;
    }
    if (!cJSON_GetObjectItemCaseSensitive(c, "rope_scaling")) cJSON_AddNullToObject(c, "rope_scaling");
    if (a->gemma && st == AWQ_OK) st = gemma_config(rt, g, a, c, d, heads, key_len, layers);
    if (st != AWQ_OK) {
        cJSON_Delete(c);
        return st;
    }
    cJSON_AddNumberToObject(c, "vocab_size", (double)vocab);
    cJSON_AddBoolToObject(c, "tie_word_embeddings", tied);
    if (!strcmp(a->model_type, "qwen2"))
        cJSON_AddBoolToObject(c, "attention_bias", true);
    else
        cJSON_AddBoolToObject(c, "attention_bias", false);
    cJSON_AddStringToObject(c, "torch_dtype",
                            dtype == AWQ_DTYPE_BF16      ? "bfloat16"
                                : dtype == AWQ_DTYPE_F32 ? "float32"
                                                         : "float16");
    if (bos != UINT64_MAX) cJSON_AddNumberToObject(c, "bos_token_id", (double)bos);
    if (eos != UINT64_MAX) cJSON_AddNumberToObject(c, "eos_token_id", (double)eos);
    char path[4096];
    awq_path_join(path, sizeof path, dir, "config.json");
    st = awq_json_write_file(rt, path, c);
    cJSON_Delete(c);
    if (st != AWQ_OK) return st;
    /* generation_config.json */
    cJSON *gc = cJSON_CreateObject();
    if (bos != UINT64_MAX) cJSON_AddNumberToObject(gc, "bos_token_id", (double)bos);
    if (eos != UINT64_MAX) cJSON_AddNumberToObject(gc, "eos_token_id", (double)eos);
    awq_path_join(path, sizeof path, dir, "generation_config.json");
    st = awq_json_write_file(rt, path, gc);
    cJSON_Delete(gc);
    return st;
}

static awq_status convert(awq_runtime *rt, awq_gguf *g, const arch_map *a, const char *tmp,
                          const awq_convert_params *p) {
    uint64_t heads = 0, kv_heads = 0;
    char key[128];
    snprintf(key, sizeof key, "%s.attention.head_count", a->gguf_arch);
    TRY(awq_gguf_get_u64(rt, g, key, true, 0, &heads));
    snprintf(key, sizeof key, "%s.attention.head_count_kv", a->gguf_arch);
    TRY(awq_gguf_get_u64(rt, g, key, false, heads, &kv_heads));
    uint64_t experts = 0; /* Mixtral GGUFs say "llama" and carry expert tensors */
    snprintf(key, sizeof key, "%s.expert_count", a->gguf_arch);
    TRY(awq_gguf_get_u64(rt, g, key, false, 0, &experts));
    if (experts > 0)
        return awq_set_error(
            rt, AWQ_ERR_UNSUPPORTED,
            "%s: %s = %llu: converting mixture-of-experts GGUFs "
            "is not supported (supported: dense llama, mistral, qwen2, qwen3, gemma2, gemma3); "
            "Mixtral, Qwen2-MoE and Qwen3-MoE load and quantize from their Hugging Face "
            "checkpoints",
            g->path, key, (unsigned long long)experts);
    const awq_gguf_tensor *emb = awq_gguf_find_tensor(g, "token_embd.weight");
    if (!emb || emb->n_dims != 2)
        return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: tensor 'token_embd.weight' is missing", g->path);
    bool tied = awq_gguf_find_tensor(g, "output.weight") == NULL;

    // tokenizer first: a vocabulary we cannot convert stops the conversion early
    awq_tokenizer *tok = NULL;
    TRY(awq_tokenizer_from_gguf(rt, g, &tok));
    awq_status st = awq_tokenizer_write_hf(rt, tok, tmp);
    awq_tokenizer_destroy(tok);
    if (st == AWQ_OK) st = default_chat_template(rt, a, tmp);
    if (st != AWQ_OK) return st;
    TRY(write_config(rt, g, a, tmp, p->dtype, tied, (int64_t)emb->ne[1]));

    // plan the safetensors file: every model tensor, in GGUF order
    awq_st_writer *w = NULL;
    const char *meta[] = {"format", "pt", NULL};
    TRY(awq_st_writer_create(rt, &w, tmp, 0, meta));
    char name[256];
    uint64_t total = 0, maxn = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const awq_gguf_tensor *t = &g->tensors[i];
        if (!hf_name(a, t->name, name, sizeof name)) {
            st = awq_set_error(rt, AWQ_ERR_UNSUPPORTED,
                               "%s: tensor '%s' has no Hugging Face "
                               "counterpart in a %s model",
                               g->path, t->name, a->model_type);
            goto done;
        }
        int64_t shape[4];
        for (uint32_t k = 0; k < t->n_dims; k++) shape[k] = (int64_t)t->ne[t->n_dims - 1 - k];
        if ((st = awq_st_writer_add(w, name, p->dtype, (int32_t)t->n_dims, shape))) goto done;
        uint64_t n = awq_gguf_tensor_nelem(t);
        total += n;
        maxn = n > maxn ? n : maxn;
    }
    if ((st = awq_st_writer_begin(w))) goto done;
    float *buf = awq_malloc((size_t)maxn * sizeof(float));
    uint16_t *half = awq_malloc((size_t)maxn * sizeof(uint16_t));
    if (!buf || !half) {
        awq_free(buf);
        awq_free(half);
        st = awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    uint64_t done_n = 0;
    for (uint64_t i = 0; i < g->n_tensors && st == AWQ_OK; i++) {
        const awq_gguf_tensor *t = &g->tensors[i];
        hf_name(a, t->name, name, sizeof name);
        uint64_t n = awq_gguf_tensor_nelem(t);
        if ((st = awq_gguf_dequantize(rt, g, t, buf))) break;
        if (a->permute_qk && t->n_dims == 2) {
            size_t ln = strlen(t->name);
            if (ln > 14 && !strcmp(t->name + ln - 14, ".attn_q.weight"))
                st = unpermute(rt, buf, (int64_t)t->ne[1], (int64_t)t->ne[0], (int64_t)heads);
            else if (ln > 14 && !strcmp(t->name + ln - 14, ".attn_k.weight"))
                st = unpermute(rt, buf, (int64_t)t->ne[1], (int64_t)t->ne[0], (int64_t)kv_heads);
            if (st != AWQ_OK) break;
        }
        if (a->gemma) { /* llama.cpp added 1 to every Gemma norm weight: HF stores w */
            size_t ln = strlen(t->name);
            if (ln > 11 && !strcmp(t->name + ln - 11, "norm.weight"))
                for (uint64_t k = 0; k < n; k++) buf[k] -= 1.0f;
        }
        if (p->dtype == AWQ_DTYPE_F32) {
            st = awq_st_writer_write(w, name, buf, n * 4);
        } else {
            awq_row_from_f32(half, p->dtype, buf, (int64_t)n);
            st = awq_st_writer_write(w, name, half, n * 2);
        }
        done_n += n;
        if (st == AWQ_OK && p->progress &&
            !p->progress((float)((double)done_n / (double)total), name, p->progress_user))
            st = awq_set_error(rt, AWQ_ERR_CANCELLED, "conversion cancelled");
    }
    awq_free(buf);
    awq_free(half);
    if (st == AWQ_OK) st = awq_st_writer_finish(w);
done:
    awq_st_writer_destroy(w);
    return st;
}

awq_status awq_convert_gguf(awq_runtime *rt, const char *gguf_path, const char *out_dir,
                            const awq_convert_params *params) {
    if (!rt || !gguf_path || !out_dir) return AWQ_ERR_INVALID_ARG;
    awq_convert_params p = params ? *params : awq_convert_params_default();
    if (p.dtype != AWQ_DTYPE_F16 && p.dtype != AWQ_DTYPE_BF16 && p.dtype != AWQ_DTYPE_F32)
        return awq_set_error(rt, AWQ_ERR_INVALID_ARG, "convert: dtype must be f16, bf16 or f32");
    char out[4096];
    snprintf(out, sizeof out, "%s", out_dir);
    size_t ol = strlen(out);
    while (ol > 1 && out[ol - 1] == '/') out[--ol] = '\0';
    if ((awq_dir_exists(out) || awq_file_exists(out)) && !p.force)
        return awq_set_error(rt, AWQ_ERR_EXISTS, "%s already exists (use --force to replace it)", out);
    awq_gguf *g = NULL;
    TRY(awq_gguf_open(rt, gguf_path, &g));
    char *arch = NULL;
    awq_status st = awq_gguf_get_str(rt, g, "general.architecture", true, &arch);
    const arch_map *a = NULL;
    for (size_t i = 0; st == AWQ_OK && i < sizeof arches / sizeof arches[0]; i++)
        if (!strcmp(arches[i].gguf_arch, arch)) a = &arches[i];
    if (st == AWQ_OK && !a)
        st = awq_set_error(rt, AWQ_ERR_UNSUPPORTED,
                           "%s: general.architecture '%s' is not supported (supported: llama, "
                           "mistral, qwen2, qwen3, gemma2, gemma3)",
                           gguf_path, arch);
    awq_free(arch);
    char tmp[4200] = "";
    if (st == AWQ_OK) {
        snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", out);
        if (!mkdtemp(tmp)) {
            st = awq_set_error(rt, AWQ_ERR_IO, "%s: cannot create a temporary directory: %s", tmp,
                               strerror(errno));
            tmp[0] = '\0';
        }
    }
    if (st == AWQ_OK) st = convert(rt, g, a, tmp, &p);
    awq_gguf_close(g);
    if (st == AWQ_OK) st = awq_dir_publish(rt, tmp, out, p.force);
    if (st != AWQ_OK && tmp[0]) awq_rmtree(tmp);
    return st;
}
