/*
 * test_tok_smollm2.c - the real default model's vocabulary: the SmolLM2-135M-Instruct GGUF named
 * by $AWQ_TEST_GGUF (exit 77 when unset). BOS must follow its tokenizer.ggml.add_bos_token, and
 * awq_tokenizer_write_hf -> awq_tokenizer_load must give identical ids on all of WikiText-2, a
 * byte-exact decode, and the same chat prompt.
 */
#include "awq.h"
#include "mini_gguf.h"
#include "test.h"
#include "tok_roundtrip.h"
#include "tokenizer.h"

static int check_vectors(awq_tokenizer *tok, const char *name) {
    (void)tok;
    (void)name;
    return 0; /* no published vectors for this vocabulary */
}

static int run_gguf(const char *path, const char *name, bool vectors) {
    mini_gguf *m = mini_gguf_open(path);
    if (!m) {
        printf("  cannot read %s\n", path);
        return 1;
    }
    awq_tokenizer *t = NULL;
    int bad = 0;
    if (awq_tokenizer_from_gguf(g_rt, &m->g, &t) != AWQ_OK) {
        printf("  %s: %s\n", path, awq_runtime_last_error(g_rt));
        mini_gguf_close(m);
        return 1;
    }
    if (vectors) bad += check_vectors(t, name);
    int64_t n = 0;
    int32_t *ids = check_wiki(t, vectors ? name : NULL, &n, &bad);
    if (ids) bad += roundtrip_hf(t, name, ids, n);
    printf("  %s: %lld WikiText ids\n", name, (long long)n);
    free(ids);
    awq_tokenizer_destroy(t);
    mini_gguf_close(m);
    return bad;
}

TEST(smollm2_real_gguf) {
    const char *path = getenv("AWQ_TEST_GGUF");
    mini_gguf *m = mini_gguf_open(path);
    ASSERT(m);
    awq_tokenizer *t = NULL;
    ASSERT_OK_RT(awq_tokenizer_from_gguf(g_rt, &m->g, &t), g_rt);
    const awq_gguf_kv *ab = NULL;
    for (uint64_t i = 0; i < m->g.n_kv; i++)
        if (!strcmp(m->g.kv[i].key, "tokenizer.ggml.add_bos_token")) ab = &m->g.kv[i];
    bool want_bos = ab && ab->v.b;
    ASSERT_EQ(awq_tokenizer_adds_bos(t), want_bos);
    int64_t n1, n2;
    int32_t *a = encode_all(t, "Hello", 5, true, &n1), *b = encode_all(t, "Hello", 5, false, &n2);
    ASSERT(a && b);
    ASSERT_EQ(n1, n2 + (want_bos ? 1 : 0));
    free(a);
    free(b);
    awq_tokenizer_destroy(t);
    mini_gguf_close(m);
    ASSERT_EQ(run_gguf(path, "smollm2", false), 0);
}

int main(void) {
    const char *path = getenv("AWQ_TEST_GGUF");
    if (!path || !path[0]) {
        printf("SKIP: AWQ_TEST_GGUF is not set\n");
        return 77;
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
