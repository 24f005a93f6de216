/*
 * test_tok_gguf.c - GGUF vocabularies: exact ids on llama.cpp's 46 test cases for gpt-2,
 * starcoder and llama-spm; WikiText-2 ids equal to Hugging Face `tokenizers` (golden hash) with
 * a byte-exact round trip; and awq_tokenizer_write_hf -> awq_tokenizer_load_files gives the same
 * ids again (also for the Llama 3 / Qwen3 tokenizer.json files). The real SmolLM2 GGUF is used
 * when AWQ_TEST_GGUF names it (skipped otherwise): round trip through tokenizer.json with
 * identical WikiText-2 ids, and BOS as its tokenizer.ggml.add_bos_token says.
 */
#include <sys/stat.h>
#include <unistd.h>

#include "awq.h"
#include "mini_gguf.h"
#include "test.h"
#include "tok_test_util.h"
#include "tokenizer.h"

static awq_runtime *g_rt;
static char *g_wiki;
static size_t g_wiki_len;

static int32_t *encode_all(awq_tokenizer *t, const char *s, size_t n, bool special, int64_t *cnt) {
    *cnt = 0;
    if (awq_tokenizer_encode(t, s, n, special, NULL, 0, cnt) != AWQ_OK) return NULL;
    int32_t *ids = malloc(sizeof *ids * (size_t)(*cnt + 1));
    if (awq_tokenizer_encode(t, s, n, special, ids, *cnt, cnt) != AWQ_OK) {
        free(ids);
        return NULL;
    }
    return ids;
}

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

/* tt_check_wikitext from test_tok_wikitext.c is a separate program: a compact copy here. */
static uint64_t fnv64_ids(const int32_t *ids, int64_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (int64_t i = 0; i < n; i++)
        for (int b = 0; b < 4; b++) {
            h ^= ((uint32_t)ids[i] >> (8 * b)) & 0xFF;
            h *= 0x100000001b3ull;
        }
    return h;
}

static bool golden(const char *name, long long *count, uint64_t *hash) {
    char path[1024], line[256];
    snprintf(path, sizeof path, "%s/tests/tokenizer/golden/wikitext_ids.txt", AWQ_TEST_SOURCE_DIR);
    FILE *f = fopen(path, "r");
    bool found = false;
    while (f && fgets(line, sizeof line, f)) {
        char nm[64];
        unsigned long long h;
        long long cnt;
        if (sscanf(line, "%63s %lld %llx", nm, &cnt, &h) == 3 && !strcmp(nm, name)) {
            *count = cnt;
            *hash = h;
            found = true;
        }
    }
    if (f) fclose(f);
    return found;
}

/* WikiText ids (vs golden when name != NULL) and byte-exact decode; returns ids. */
static int32_t *check_wiki(awq_tokenizer *t, const char *name, int64_t *cnt, int *bad) {
    int32_t *ids = encode_all(t, g_wiki, g_wiki_len, false, cnt);
    if (!ids) {
        (*bad)++;
        return NULL;
    }
    long long en;
    uint64_t eh;
    if (name && (!golden(name, &en, &eh) || en != *cnt || eh != fnv64_ids(ids, *cnt))) {
        printf("  %s: WikiText ids differ from golden (%lld ids)\n", name, (long long)*cnt);
        (*bad)++;
    }
    char *dec = malloc(g_wiki_len * 2 + 16);
    size_t dl = 0;
    if (awq_tokenizer_decode(t, ids, *cnt, false, dec, g_wiki_len * 2 + 16, &dl) != AWQ_OK ||
        dl != g_wiki_len || memcmp(dec, g_wiki, dl)) {
        printf("  %s: WikiText decode is not byte-exact\n", name ? name : "?");
        (*bad)++;
    }
    free(dec);
    return ids;
}

/* write_hf into a fresh directory, load it back, compare WikiText ids and the vectors. */
static int roundtrip_hf(awq_tokenizer *t, const char *name, const int32_t *ids, int64_t n) {
    char dir[] = "/tmp/awq_tok_hf_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    int bad = 0;
    awq_tokenizer *t2 = NULL;
    if (awq_tokenizer_write_hf(g_rt, t, dir) != AWQ_OK || awq_tokenizer_load(&t2, g_rt, dir) != AWQ_OK) {
        printf("  %s: write_hf/load: %s\n", name, awq_runtime_last_error(g_rt));
        bad++;
    } else {
        int64_t n2;
        int32_t *ids2 = encode_all(t2, g_wiki, g_wiki_len, false, &n2);
        if (!ids2 || n2 != n || memcmp(ids, ids2, sizeof *ids * (size_t)n)) {
            printf("  %s: ids differ after write_hf -> load\n", name);
            bad++;
        }
        free(ids2);
        if (awq_tokenizer_adds_bos(t) != awq_tokenizer_adds_bos(t2) ||
            awq_tokenizer_bos(t) != awq_tokenizer_bos(t2) || awq_tokenizer_eos(t) != awq_tokenizer_eos(t2)) {
            printf("  %s: BOS/EOS settings differ after write_hf\n", name);
            bad++;
        }
        /* the same chat prompt */
        awq_chat_message m[2] = {{"user", "Hi"}, {"assistant", "Hello"}};
        char *c1 = NULL, *c2 = NULL;
        awq_status s1 = awq_tokenizer_apply_chat(t, m, 2, true, &c1);
        awq_status s2 = awq_tokenizer_apply_chat(t2, m, 2, true, &c2);
        if (s1 != s2 || (c1 && (!c2 || strcmp(c1, c2)))) {
            printf("  %s: chat template differs after write_hf\n", name);
            bad++;
        }
        awq_free(c1);
        awq_free(c2);
    }
    awq_tokenizer_destroy(t2);
    char p[1200];
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/tokenizer_config.json", dir);
    unlink(p);
    rmdir(dir);
    return bad;
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

static int run_vocab(const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/tokenizer-tests/ggml-vocab-%s.gguf", test_shared_data(), name);
    return run_gguf(path, name, true);
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
    if (!test_shared_data()) return 77;
    awq_runtime_params p = awq_runtime_params_default();
    p.load_plugins = false;
    if (awq_runtime_create(&g_rt, &p) != AWQ_OK) return 1;
    char path[1024];
    snprintf(path, sizeof path, "%s/wikitext-2/wiki.test.raw", test_shared_data());
    g_wiki = tt_read_file(path, &g_wiki_len);
    if (!g_wiki) return 1;
    RUN(gpt2);
    RUN(starcoder);
    RUN(llama_spm);
    RUN(llama3_write_hf);
    RUN(qwen3_write_hf);
    if (getenv("AWQ_TEST_GGUF")) RUN(smollm2_real_gguf);
    else printf("skip smollm2_real_gguf (AWQ_TEST_GGUF not set)\n");
    free(g_wiki);
    awq_runtime_destroy(g_rt);
    return TEST_EXIT();
}
