/*
 * test_forward_ref.c - the forward pass on the converted SmolLM2 (GGUF -> HF f16 by awq-cli
 * convert) against an independent float64 numpy reference that runs the original GGUF with
 * llama.cpp's conventions (tools/ref_smollm2.py -> tests/data/smollm2_ref.json).
 *
 * This checks the GGUF dequantization, the q/k un-permutation of the converter, config.json,
 * the safetensors reader and every forward op together. The converted weights are fp16-rounded
 * dequantized Q4_1 values, so logits agree to ~1e-2, not bit-exactly.
 */
#include <cjson/cJSON.h>

#include "awq.h"
#include "test.h"

static cJSON *load_ref(void) {
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/data/smollm2_ref.json", AWQ_TEST_SOURCE_DIR);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return cJSON_Parse(buf);
}

static const char *device = "cpu";

TEST(logits_and_greedy_match_reference) {
    const char *dir = test_model_dir();
    cJSON *ref = load_ref();
    ASSERT(ref);
    awq_runtime_params rp = awq_runtime_params_default();
    awq_runtime *rt = NULL;
    ASSERT_OK(awq_runtime_create(&rt, &rp));
    awq_model_params mp = awq_model_params_default();
    mp.device = device;
    awq_model *m = NULL;
    ASSERT_OK_RT(awq_model_load(&m, rt, dir, &mp), rt);
    awq_model_info info;
    ASSERT_OK(awq_model_get_info(m, &info));
    ASSERT_EQ(info.vocab_size, 49152);
    float *logits = malloc((size_t)info.vocab_size * 64 * sizeof(float));
    const cJSON *cases = cJSON_GetObjectItem(ref, "cases"), *c;
    int ci = 0;
    cJSON_ArrayForEach(c, cases) {
        int32_t ids[64];
        int n = 0;
        const cJSON *v;
        cJSON_ArrayForEach(v, cJSON_GetObjectItem(c, "ids")) ids[n++] = v->valueint;
        awq_session *s = NULL;
        ASSERT_OK_RT(awq_session_create(&s, m, 128), rt);
        ASSERT_OK_RT(awq_session_eval(s, ids, n, logits, true), rt);
        /* Prompt NLL over all positions (all-logits path). */
        double nll = 0;
        for (int i = 0; i + 1 < n; i++) {
            const float *l = logits + (size_t)i * info.vocab_size;
            double mx = l[0], sum = 0;
            for (int j = 1; j < info.vocab_size; j++) mx = l[j] > mx ? l[j] : mx;
            for (int j = 0; j < info.vocab_size; j++) sum += exp(l[j] - mx);
            nll += mx + log(sum) - l[ids[i + 1]];
        }
        double ref_nll = cJSON_GetObjectItem(c, "prompt_nll_sum")->valuedouble;
        printf("  case %d: prompt NLL %.4f (reference %.4f)\n", ci, nll, ref_nll);
        /* measured on cpu: |diff| 0.0024, 0.0090, 0.0023 */
        ASSERT_NEAR(nll, ref_nll, 1e-3 * fabs(ref_nll) + 0.03);
        /* Last-position logits on the reference's top-20 ids. */
        const float *last = logits + (size_t)(n - 1) * info.vocab_size;
        const cJSON *tid = cJSON_GetObjectItem(c, "top_ids"), *tl = cJSON_GetObjectItem(c, "top_logits");
        double maxdiff = 0;
        for (int k = 0; k < cJSON_GetArraySize(tid); k++) {
            int id = cJSON_GetArrayItem(tid, k)->valueint;
            double d = fabs(last[id] - cJSON_GetArrayItem(tl, k)->valuedouble);
            maxdiff = d > maxdiff ? d : maxdiff;
        }
        printf("  case %d: max |logit - reference| over the top 20: %.4f\n", ci, maxdiff);
        ASSERT(maxdiff < 0.05); /* measured 0.012, 0.008, 0.010 */
        /* Greedy continuation through the KV cache (decode path), token by token. */
        int32_t greedy[16];
        int ng = 0;
        cJSON_ArrayForEach(v, cJSON_GetObjectItem(c, "greedy")) greedy[ng++] = v->valueint;
        awq_session_reset(s);
        ASSERT_OK_RT(awq_session_eval(s, ids, n, logits, false), rt);
        int match = 0;
        for (int t = 0; t < ng; t++) {
            int best = 0;
            for (int j = 1; j < info.vocab_size; j++) best = logits[j] > logits[best] ? j : best;
            if (best != greedy[t]) break;
            match++;
            ASSERT_OK_RT(awq_session_eval(s, &best, 1, logits, false), rt);
        }
        printf("  case %d: greedy tokens matching the reference: %d/%d\n", ci, match, ng);
        ASSERT_EQ(match, ng); /* measured 16/16 on every case */
        awq_session_destroy(s);
        ci++;
    }
    free(logits);
    awq_model_destroy(m);
    awq_runtime_destroy(rt);
    cJSON_Delete(ref);
}

int main(int argc, char **argv) {
    if (argc > 1) device = argv[1];
    if (!test_model_dir()) return test_skip_or_fail("AWQ_TEST_MODEL_DIR not set");
    RUN(logits_and_greedy_match_reference);
    return TEST_EXIT();
}
