/*
 * test_tok_gguf.c - GGUF vocabularies: exact ids on llama.cpp's 46 test cases for gpt-2,
 * starcoder and llama-spm; WikiText-2 ids equal to Hugging Face `tokenizers` (golden hash) with
 * a byte-exact round trip; and awq_tokenizer_write_hf -> awq_tokenizer_load_files gives the same
 * ids again (also for the Llama 3 / Qwen3 tokenizer.json files). test_tok_smollm2.c does the
 * same for the real SmolLM2 GGUF.
 */
#include <sys/stat.h>
#include <unistd.h>

#include "awq.h"
#include "test.h"
#include "tok_test_util.h"
#include "tokenizer.h"
#include "tok_roundtrip.h"

static int check_vectors(awq_tokenizer *tok, const char *name) {
    char inp[1024], outp[1024];
    snprintf(inp, sizeof inp, "%s/tokenizer-tests/ggml-vocab-%s.gguf.inp", test_shared_data(), name);
    snprintf(outp, sizeof outp, "%s/tokenizer-tests/ggml-vocab-%s.gguf.out", test_shared_data(), name);
    tt_case *cases = NULL;
    int n = tt_load_cases(inp, outp, &cases), bad = 0;
    if (n != 46) return 1;
    for (int i = 0; i < n; i++) {
        int64_t cnt;
        int32_t *ids = encode_all(tok, cases[i].text, cases[i].len, false, &cnt);
        if (!ids || cnt != cases[i].n_ids || memcmp(ids, cases[i].ids, sizeof *ids * (size_t)cnt)) {
            bad++;
            printf("  %s case %d '%s':\n    got:", name, i, cases[i].text);
            for (int64_t k = 0; ids && k < cnt; k++) printf(" %d", ids[k]);
            printf("\n    exp:");
            for (int k = 0; k < cases[i].n_ids; k++) printf(" %d", cases[i].ids[k]);
            printf("\n");
        }
        free(ids);
    }
    tt_free_cases(cases, n);
    printf("  %s: %d/46 exact\n", name, 46 - bad);
    return bad;
}


static int run_vocab(const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/tokenizer-tests/ggml-vocab-%s.gguf", test_shared_data(), name);
    return run_gguf(path, name, check_vectors);
}

TEST(gpt2) { ASSERT_EQ(run_vocab("gpt-2"), 0); }
TEST(starcoder) { ASSERT_EQ(run_vocab("starcoder"), 0); }
TEST(llama_spm) { ASSERT_EQ(run_vocab("llama-spm"), 0); }

static int run_json_roundtrip(const char *dir) {
    char d[1024];
    snprintf(d, sizeof d, "%s/tokenizers/%s", test_shared_data(), dir);
    awq_tokenizer *t = NULL;
    if (awq_tokenizer_load(&t, g_rt, d) != AWQ_OK) return 1;
    int bad = 0;
    int64_t n;
    int32_t *ids = check_wiki(t, dir, &n, &bad);
    if (ids) bad += roundtrip_hf(t, dir, ids, n);
    free(ids);
    awq_tokenizer_destroy(t);
    return bad;
}

TEST(llama3_write_hf) { ASSERT_EQ(run_json_roundtrip("llama3"), 0); }
TEST(qwen3_write_hf) { ASSERT_EQ(run_json_roundtrip("qwen3"), 0); }

int main(void) {
    if (!test_shared_data()) return 77;
    awq_runtime_params p = awq_runtime_params_default();
    p.load_plugins = false;
    if (awq_runtime_create(&g_rt, &p) != AWQ_OK) return 1;
    if (!load_wiki()) return 1;
    RUN(gpt2);
    RUN(starcoder);
    RUN(llama_spm);
    RUN(llama3_write_hf);
    RUN(qwen3_write_hf);
    free(g_wiki);
    awq_runtime_destroy(g_rt);
    return TEST_EXIT();
}
