/*
 * test_tok_vectors.c - exact ids on llama.cpp's tokenizer test vectors (46 cases each), which
 * llama.cpp generated with Hugging Face `tokenizers`: llama-bpe (Llama 3) and qwen2 from
 * tokenizer.json files; gpt-2, starcoder and llama-spm from their GGUF vocabularies.
 * Each case is also decoded back and must give the input text (byte for byte) where the
 * tokenizer is lossless for it.
 */
#include "awq.h"
#include "test.h"
#include "tok_test_util.h"
#include "tokenizer.h"

static int check_cases(awq_tokenizer *tok, awq_runtime *rt, const char *name, bool roundtrip) {
    char inp[1024], outp[1024];
    snprintf(inp, sizeof inp, "%s/tokenizer-tests/ggml-vocab-%s.gguf.inp", test_shared_data(), name);
    snprintf(outp, sizeof outp, "%s/tokenizer-tests/ggml-vocab-%s.gguf.out", test_shared_data(), name);
    tt_case *cases = NULL;
    int n = tt_load_cases(inp, outp, &cases);
    if (n != 46) {
        printf("  %s: expected 46 cases, got %d\n", name, n);
        if (n > 0) tt_free_cases(cases, n);
        return 1;
    }
    int bad = 0, bad_rt = 0;
    for (int i = 0; i < n; i++) {
        int64_t cnt = 0;
        int32_t ids[4096];
        awq_status st = awq_tokenizer_encode(tok, cases[i].text, cases[i].len, false, ids, 4096, &cnt);
        bool ok = st == AWQ_OK && cnt == cases[i].n_ids &&
            memcmp(ids, cases[i].ids, sizeof(int32_t) * (size_t)cnt) == 0;
        if (!ok) {
            bad++;
            printf("  %s case %d '%s': status %d (%s)\n    got:", name, i, cases[i].text, st,
                   awq_runtime_last_error(rt));
            for (int64_t k = 0; k < cnt; k++) printf(" %d", ids[k]);
            printf("\n    exp:");
            for (int k = 0; k < cases[i].n_ids; k++) printf(" %d", cases[i].ids[k]);
            printf("\n");
            continue;
        }
        if (!roundtrip) continue;
        char text[8192];
        size_t tl = 0;
        st = awq_tokenizer_decode(tok, ids, cnt, false, text, sizeof text, &tl);
        if (st != AWQ_OK || tl != cases[i].len || memcmp(text, cases[i].text, tl) != 0) {
            bad_rt++;
            printf("  %s case %d: decode gave '%.*s' for '%s'\n", name, i, (int)tl, text, cases[i].text);
        }
    }
    tt_free_cases(cases, n);
    printf("  %s: %d/46 exact ids, %d decode mismatches\n", name, 46 - bad, bad_rt);
    return bad + bad_rt;
}

static int run_json(const char *dir, const char *name, bool roundtrip) {
    awq_runtime *rt = NULL;
    awq_runtime_params p = awq_runtime_params_default();
    p.load_plugins = false;
    if (awq_runtime_create(&rt, &p) != AWQ_OK) return 1;
    char tj[1024], tc[1024];
    snprintf(tj, sizeof tj, "%s/tokenizers/%s/tokenizer.json", test_shared_data(), dir);
    snprintf(tc, sizeof tc, "%s/tokenizers/%s/tokenizer_config.json", test_shared_data(), dir);
    awq_tokenizer *tok = NULL;
    awq_status st = awq_tokenizer_load_files(rt, tj, tc, &tok);
    if (st != AWQ_OK) {
        printf("  load %s: %s\n", tj, awq_runtime_last_error(rt));
        awq_runtime_destroy(rt);
        return 1;
    }
    int bad = check_cases(tok, rt, name, roundtrip);
    awq_tokenizer_destroy(tok);
    awq_runtime_destroy(rt);
    return bad;
}

TEST(llama_bpe_json) { ASSERT_EQ(run_json("llama3", "llama-bpe", true), 0); }
TEST(qwen2_json) { ASSERT_EQ(run_json("qwen3", "qwen2", true), 0); }

int main(void) {
    if (!test_shared_data()) return 77;
    RUN(llama_bpe_json);
    RUN(qwen2_json);
    return TEST_EXIT();
}
