/*
 * test_tok_smollm2.c - the real default model's vocabulary: the SmolLM2-135M-Instruct GGUF named
 * by $AWQ_TEST_GGUF (exit 77 when unset). BOS must follow its tokenizer.ggml.add_bos_token, and
 * awq_tokenizer_write_hf -> awq_tokenizer_load must give identical ids on all of WikiText-2, a
 * byte-exact decode, and the same chat prompt.
 */
#include "awq.h"
#include "test.h"
#include "tok_roundtrip.h"
#include "tokenizer.h"


TEST(smollm2_real_gguf) {
    const char *path = getenv("AWQ_TEST_GGUF");
    awq_gguf *g = NULL;
    ASSERT_OK_RT(awq_gguf_open(g_rt, path, &g), g_rt);
    awq_tokenizer *t = NULL;
    ASSERT_OK_RT(awq_tokenizer_from_gguf(g_rt, g, &t), g_rt);
    bool want_bos = false;
    ASSERT_OK(awq_gguf_get_bool(g_rt, g, "tokenizer.ggml.add_bos_token", false, false, &want_bos));
    ASSERT_EQ(awq_tokenizer_adds_bos(t), want_bos);
    int64_t n1, n2;
    int32_t *a = encode_all(t, "Hello", 5, true, &n1), *b = encode_all(t, "Hello", 5, false, &n2);
    ASSERT(a && b);
    ASSERT_EQ(n1, n2 + (want_bos ? 1 : 0));
    free(a);
    free(b);
    awq_tokenizer_destroy(t);
    awq_gguf_close(g);
    ASSERT_EQ(run_gguf(path, "smollm2", NULL), 0);
}

int main(void) {
    const char *path = getenv("AWQ_TEST_GGUF");
    if (!path || !path[0]) {
        return test_skip_or_fail("AWQ_TEST_GGUF is not set");
    }
    if (!test_shared_data()) return 77;
    awq_runtime_params p = awq_runtime_params_default();
    p.load_plugins = false;
    if (awq_runtime_create(&g_rt, &p) != AWQ_OK) return 1;
    if (!load_wiki()) return 1;
    RUN(smollm2_real_gguf);
    free(g_wiki);
    awq_runtime_destroy(g_rt);
    return TEST_EXIT();
}
