/*
 * test_quantize.c - awq_quantize end to end on a tiny synthetic Llama (2 layers, d 64, GQA,
 * random weights, the SmolLM2 tokenizer): the written checkpoint's layout and config, that it
 * loads and computes nearly the same logits as the fp16 model (AWQ, RTN, GEMM and GEMV layouts,
 * excluded modules), and the refusals: wrong group size, existing OUT_DIR, already quantized,
 * too little calibration text, NaN weights, cancellation - each leaving no output behind.
 */
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "awq_pack.h"
#include "json.h"
#include "safetensors.h"
#include "test.h"

static char root[512], fp_dir[600];
static awq_runtime *rt;

enum { D = 64, FF = 128, H = 4, HKV = 2, LAYERS = 2, VOCAB = 49152 };

static void copy(const char *src, const char *dst) {
    FILE *a = fopen(src, "rb"), *b = fopen(dst, "wb");
    char buf[1 << 16];
    size_t n;
    while (a && b && (n = fread(buf, 1, sizeof buf, a)) > 0) fwrite(buf, 1, n, b);
    if (a) fclose(a);
    if (b) fclose(b);
}

static int make_model(const char *dir, const char *model_src, bool nan_in_layer1) {
    mkdir(dir, 0755);
    char p[700];
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "model_type", "llama");
    cJSON_AddNumberToObject(c, "num_hidden_layers", LAYERS);
    cJSON_AddNumberToObject(c, "hidden_size", D);
    cJSON_AddNumberToObject(c, "num_attention_heads", H);
    cJSON_AddNumberToObject(c, "num_key_value_heads", HKV);
    cJSON_AddNumberToObject(c, "intermediate_size", FF);
    cJSON_AddNumberToObject(c, "vocab_size", VOCAB);
    cJSON_AddNumberToObject(c, "max_position_embeddings", 2048);
    cJSON_AddNumberToObject(c, "rms_norm_eps", 1e-5);
    cJSON_AddNumberToObject(c, "rope_theta", 10000);
    cJSON_AddBoolToObject(c, "tie_word_embeddings", true);
    cJSON_AddStringToObject(c, "torch_dtype", "float16");
    snprintf(p, sizeof p, "%s/config.json", dir);
    if (awq_json_write_file(rt, p, c) != AWQ_OK) return 1;
    cJSON_Delete(c);
    const char *files[] = {"tokenizer.json", "tokenizer_config.json"};
    for (int i = 0; i < 2; i++) {
        char s[700];
        snprintf(s, sizeof s, "%s/%s", model_src, files[i]);
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        copy(s, p);
    }
    awq_st_writer *w = NULL;
    if (awq_st_writer_create(rt, &w, dir, 0, NULL) != AWQ_OK) return 1;
    struct {
        char name[128];
        int64_t r, c;
        float scale;
    } t[64];
    int nt = 0;
    snprintf(t[nt].name, 128, "model.embed_tokens.weight");
    t[nt].r = VOCAB;
    t[nt].c = D;
    t[nt++].scale = 1.0f;
    const char *lin[7] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                          "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj"};
    const int64_t sh[7][2] = {{D, D}, {HKV * 16, D}, {HKV * 16, D}, {D, D}, {FF, D}, {FF, D}, {D, FF}};
    for (int l = 0; l < LAYERS; l++) {
        snprintf(t[nt].name, 128, "model.layers.%d.input_layernorm.weight", l);
        t[nt].r = D;
        t[nt].c = 0;
        t[nt++].scale = -1;
        snprintf(t[nt].name, 128, "model.layers.%d.post_attention_layernorm.weight", l);
        t[nt].r = D;
        t[nt].c = 0;
        t[nt++].scale = -1;
        for (int k = 0; k < 7; k++) {
            snprintf(t[nt].name, 128, "model.layers.%d.%s.weight", l, lin[k]);
            t[nt].r = sh[k][0];
            t[nt].c = sh[k][1];
            t[nt++].scale = 0.125f;
        }
    }
    snprintf(t[nt].name, 128, "model.norm.weight");
    t[nt].r = D;
    t[nt].c = 0;
    t[nt++].scale = -1;
    for (int i = 0; i < nt; i++) {
        int64_t shape[2] = {t[i].r, t[i].c};
        if (awq_st_writer_add(w, t[i].name, AWQ_DTYPE_F16, t[i].c ? 2 : 1, shape) != AWQ_OK) return 1;
    }
    if (awq_st_writer_begin(w) != AWQ_OK) return 1;
    unsigned long long rng = 777;
    for (int i = 0; i < nt; i++) {
        int64_t n = t[i].r * (t[i].c ? t[i].c : 1);
        uint16_t *buf = malloc((size_t)n * 2);
        for (int64_t j = 0; j < n; j++) {
            float v =
                t[i].scale < 0 ? 1.0f + 0.1f * test_rng_uniform(&rng) : t[i].scale * test_rng_normal(&rng);
            /* a few large input channels, as real models have */
            if (t[i].scale > 0 && t[i].c == D && (j % D == 5 || j % D == 17)) v *= 4.0f;
            buf[j] = awq_f32_to_f16(v);
        }
        if (nan_in_layer1 && !strcmp(t[i].name, "model.layers.1.mlp.up_proj.weight")) buf[7] = 0x7e00;
        if (awq_st_writer_write(w, t[i].name, buf, (uint64_t)n * 2) != AWQ_OK) return 1;
        free(buf);
    }
    if (awq_st_writer_finish(w) != AWQ_OK) return 1;
    awq_st_writer_destroy(w);
    return 0;
}

static awq_quant_params params(const char *out) {
    awq_quant_params p = awq_quant_params_default();
    p.model_dir = fp_dir;
    p.out_dir = out;
    p.group_size = 32;
    p.calib_samples = 24;
    p.calib_seqlen = 128;
    p.device = "auto";
    return p;
}

/* Logits of a fixed token sequence. */
static int logits_of(const char *dir, float *out, int n) {
    awq_model *m = NULL;
    awq_session *s = NULL;
    awq_model_params mp = awq_model_params_default();
    if (awq_model_load(&m, rt, dir, &mp) != AWQ_OK) return 1;
    if (awq_session_create(&s, m, 64) != AWQ_OK) return 1;
    int32_t ids[16];
    for (int i = 0; i < n; i++) ids[i] = 100 + 37 * i;
    awq_status st = awq_session_eval(s, ids, n, out, true);
    awq_session_destroy(s);
    awq_model_destroy(m);
    return st != AWQ_OK;
}

static double rel_err(const float *a, const float *b, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    return sqrt(num / den);
}

static bool leftovers(void) {
    DIR *d = opendir(root);
    struct dirent *e;
    bool found = false;
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, ".tmp-") || strstr(e->d_name, ".old-")) found = true;
    if (d) closedir(d);
    return found;
}

static float ref_logits[16 * VOCAB], q_logits[16 * VOCAB], q2_logits[16 * VOCAB];
static double awq_err = -1;

TEST(awq_gemm_checkpoint) {
    char out[700];
    snprintf(out, sizeof out, "%s/awq", root);
    awq_quant_params p = params(out);
    awq_quant_report rep;
    ASSERT_OK_RT(awq_quantize(rt, &p, &rep), rt);
    ASSERT_EQ(rep.n_linears, 7 * LAYERS);
    ASSERT(rep.n_blocks > 0 && rep.search_flops > 0);
    ASSERT(!leftovers());
    /* config */
    char path[800];
    snprintf(path, sizeof path, "%s/config.json", out);
    cJSON *c = NULL;
    ASSERT_OK_RT(awq_json_parse_file(rt, path, &c), rt);
    cJSON *q = cJSON_GetObjectItem(c, "quantization_config");
    ASSERT(q);
    ASSERT_STREQ(cJSON_GetObjectItem(q, "quant_method")->valuestring, "awq");
    ASSERT_STREQ(cJSON_GetObjectItem(q, "version")->valuestring, "gemm");
    ASSERT_EQ(cJSON_GetObjectItem(q, "bits")->valueint, 4);
    ASSERT_EQ(cJSON_GetObjectItem(q, "group_size")->valueint, 32);
    ASSERT(cJSON_IsTrue(cJSON_GetObjectItem(q, "zero_point")));
    ASSERT(cJSON_IsNull(cJSON_GetObjectItem(q, "modules_to_not_convert")));
    cJSON_Delete(c);
    /* tensors */
    awq_safetensors *st = NULL;
    ASSERT_OK_RT(awq_st_open(rt, out, &st), rt);
    const awq_st_tensor *t = awq_st_find(st, "model.layers.1.mlp.down_proj.qweight");
    ASSERT(t && t->dtype == AWQ_DTYPE_I32 && t->shape[0] == FF && t->shape[1] == D / 8);
    t = awq_st_find(st, "model.layers.1.mlp.down_proj.qzeros");
    ASSERT(t && t->dtype == AWQ_DTYPE_I32 && t->shape[0] == FF / 32 && t->shape[1] == D / 8);
    t = awq_st_find(st, "model.layers.0.self_attn.k_proj.scales");
    ASSERT(t && t->dtype == AWQ_DTYPE_F16 && t->shape[0] == D / 32 && t->shape[1] == HKV * 16);
    ASSERT(!awq_st_find(st, "model.layers.0.self_attn.q_proj.weight"));
    ASSERT(!awq_st_find(st, "lm_head.weight"));
    t = awq_st_find(st, "model.layers.0.input_layernorm.weight");
    ASSERT(t && t->dtype == AWQ_DTYPE_F16);
    awq_st_close(st);
    /* the quantized model computes nearly the fp16 model's logits */
    ASSERT_EQ(logits_of(fp_dir, ref_logits, 16), 0);
    ASSERT_EQ(logits_of(out, q_logits, 16), 0);
    double e = rel_err(q_logits, ref_logits, 16 * (int64_t)VOCAB);
    printf("  AWQ g32 logits relative error vs fp16: %.4f\n", e);
    ASSERT(e < 0.25); /* random weights quantize badly; the comparison with RTN is below */
    awq_err = e;
}

TEST(rtn_gemm_and_gemv_agree) {
    char a[700], b[700];
    snprintf(a, sizeof a, "%s/rtn-gemm", root);
    snprintf(b, sizeof b, "%s/rtn-gemv", root);
    awq_quant_params p = params(a);
    p.method = AWQ_METHOD_RTN;
    ASSERT_OK_RT(awq_quantize(rt, &p, NULL), rt);
    p.out_dir = b;
    p.format = AWQ_FORMAT_GEMV;
    ASSERT_OK_RT(awq_quantize(rt, &p, NULL), rt);
    ASSERT_EQ(logits_of(a, q_logits, 16), 0);
    ASSERT_EQ(logits_of(b, q2_logits, 16), 0);
    /* identical integers and scales in two layouts -> identical logits */
    ASSERT(memcmp(q_logits, q2_logits, sizeof(float) * 16 * VOCAB) == 0);
    double e = rel_err(q_logits, ref_logits, 16 * (int64_t)VOCAB);
    printf("  RTN g32 logits relative error vs fp16: %.4f\n", e);
    ASSERT(e < 0.4);
    ASSERT(awq_err >= 0 && awq_err < e); /* the search beats round-to-nearest */
}

TEST(exclude_keeps_module_in_fp16) {
    char out[700];
    snprintf(out, sizeof out, "%s/excl", root);
    awq_quant_params p = params(out);
    const char *ex[] = {"down_proj", NULL};
    p.exclude = ex;
    ASSERT_OK_RT(awq_quantize(rt, &p, NULL), rt);
    awq_safetensors *st = NULL;
    ASSERT_OK_RT(awq_st_open(rt, out, &st), rt);
    ASSERT(awq_st_find(st, "model.layers.0.mlp.down_proj.weight"));
    ASSERT(!awq_st_find(st, "model.layers.0.mlp.down_proj.qweight"));
    ASSERT(awq_st_find(st, "model.layers.0.mlp.up_proj.qweight"));
    awq_st_close(st);
    ASSERT_EQ(logits_of(out, q_logits, 16), 0);
    ASSERT(rel_err(q_logits, ref_logits, 16 * (int64_t)VOCAB) < 0.25);
}

TEST(refusals_leave_nothing_behind) {
    char out[700];
    snprintf(out, sizeof out, "%s/refused", root);
    awq_quant_params p = params(out);
    /* group size that does not divide hidden_size 64: suggests one that does */
    p.group_size = 128;
    ASSERT_ERR_RT(awq_quantize(rt, &p, NULL), rt, AWQ_ERR_UNSUPPORTED, "--group-size 64");
    p.group_size = 32;
    /* too little calibration text */
    char calib[700];
    snprintf(calib, sizeof calib, "%s/short.txt", root);
    FILE *f = fopen(calib, "w");
    fputs("Just a few words.\n", f);
    fclose(f);
    p.calib_path = calib;
    ASSERT_ERR_RT(awq_quantize(rt, &p, NULL), rt, AWQ_ERR_INVALID_ARG, "too short");
    p.calib_path = NULL;
    /* existing OUT_DIR */
    mkdir(out, 0755);
    ASSERT_EQ(awq_quantize(rt, &p, NULL), AWQ_ERR_EXISTS);
    rmdir(out);
    /* an already quantized model */
    char awq_dir[700];
    snprintf(awq_dir, sizeof awq_dir, "%s/awq", root);
    p.model_dir = awq_dir;
    ASSERT_ERR_RT(awq_quantize(rt, &p, NULL), rt, AWQ_ERR_UNSUPPORTED, "already quantized");
    ASSERT(!awq_file_exists(out) && !awq_dir_exists(out));
    ASSERT(!leftovers());
}

static int calls;
static bool cancel_after_layer0(float done, const char *stage, void *user) {
    (void)stage;
    (void)user;
    calls++;
    return done < 0.5f;
}

TEST(cancel_and_nan) {
    char out[700];
    snprintf(out, sizeof out, "%s/cancelled", root);
    awq_quant_params p = params(out);
    p.progress = cancel_after_layer0;
    ASSERT_EQ(awq_quantize(rt, &p, NULL), AWQ_ERR_CANCELLED);
    ASSERT(calls > 1);
    ASSERT(!awq_dir_exists(out));
    ASSERT(!leftovers());
    /* a NaN weight in layer 1 is reported, naming the layer */
    char bad[700];
    snprintf(bad, sizeof bad, "%s/nan-model", root);
    ASSERT_EQ(make_model(bad, test_model_dir(), true), 0);
    p = params(out);
    p.model_dir = bad;
    awq_status st = awq_quantize(rt, &p, NULL);
    printf("  NaN weight: %s\n", awq_runtime_last_error(rt));
    ASSERT_EQ(st, AWQ_ERR_NUMERIC);
    ASSERT(strstr(awq_runtime_last_error(rt), "layers.1.mlp.up_proj") ||
           strstr(awq_runtime_last_error(rt), "layer 1"));
    ASSERT(!awq_dir_exists(out));
    ASSERT(!leftovers());
}

int main(void) {
    if (!test_model_dir()) return test_skip_or_fail("AWQ_TEST_MODEL_DIR not set (tokenizer source)");
    if (test_tmpdir(root, sizeof root, "test-quantize")) return 1;
    snprintf(fp_dir, sizeof fp_dir, "%s/fp16", root);
    awq_runtime_params rp = awq_runtime_params_default();
    if (awq_runtime_create(&rt, &rp) != AWQ_OK) return 1;
    if (make_model(fp_dir, test_model_dir(), false)) {
        printf("cannot build the synthetic model: %s\n", awq_runtime_last_error(rt));
        return 1;
    }
    RUN(awq_gemm_checkpoint);
    RUN(rtn_gemm_and_gemv_agree);
    RUN(exclude_keeps_module_in_fp16);
    RUN(refusals_leave_nothing_behind);
    RUN(cancel_and_nan);
    awq_runtime_destroy(rt);
    if (test_rmtree(root) != 0) printf("warning: could not remove %s\n", root);
    return TEST_EXIT();
}
