/* tok_roundtrip.h - WikiText-2 and write_hf round-trip helpers shared by the GGUF tests.
 * They use the globals g_rt, g_wiki and g_wiki_len that the including test defines. */
#ifndef AWQ_TESTS_TOK_ROUNDTRIP_H
#define AWQ_TESTS_TOK_ROUNDTRIP_H

#include <sys/stat.h>
#include <unistd.h>

#include "awq.h"
#include "test.h"
#include "tok_test_util.h"
#include "gguf.h"
#include "tokenizer.h"

static awq_runtime *g_rt;
static char *g_wiki;
static size_t g_wiki_len;

static inline int32_t *encode_all(awq_tokenizer *t, const char *s, size_t n, bool special, int64_t *cnt) {
    *cnt = 0;
    if (awq_tokenizer_encode(t, s, n, special, NULL, 0, cnt) != AWQ_OK) return NULL;
    int32_t *ids = malloc(sizeof *ids * (size_t)(*cnt + 1));
    if (awq_tokenizer_encode(t, s, n, special, ids, *cnt, cnt) != AWQ_OK) {
        free(ids);
        return NULL;
    }
    return ids;
}

static inline uint64_t fnv64_ids(const int32_t *ids, int64_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (int64_t i = 0; i < n; i++)
        for (int b = 0; b < 4; b++) {
            h ^= ((uint32_t)ids[i] >> (8 * b)) & 0xFF;
            h *= 0x100000001b3ull;
        }
    return h;
}

static inline bool golden(const char *name, long long *count, uint64_t *hash) {
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
static inline int32_t *check_wiki(awq_tokenizer *t, const char *name, int64_t *cnt, int *bad) {
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
static inline int roundtrip_hf(awq_tokenizer *t, const char *name, const int32_t *ids, int64_t n) {
    char dir[64];
    if (test_tmpdir(dir, sizeof dir, "tok-hf")) return 1;
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
    test_rmtree(dir);
    return bad;
}


static inline bool load_wiki(void) {
    char path[1024];
    snprintf(path, sizeof path, "%s/wikitext-2/wiki.test.raw", test_shared_data());
    g_wiki = tt_read_file(path, &g_wiki_len);
    return g_wiki != NULL;
}


/* Loads a tokenizer from a GGUF vocabulary (the library's own GGUF reader), runs the optional
 * published vectors, the WikiText-2 ids/golden hash and the write_hf round trip. */
static inline int run_gguf(const char *path, const char *name,
                           int (*vectors)(awq_tokenizer *t, const char *name)) {
    awq_gguf *g = NULL;
    if (awq_gguf_open(g_rt, path, &g) != AWQ_OK) {
        printf("  %s: %s\n", path, awq_runtime_last_error(g_rt));
        return 1;
    }
    awq_tokenizer *t = NULL;
    int bad = 0;
    if (awq_tokenizer_from_gguf(g_rt, g, &t) != AWQ_OK) {
        printf("  %s: %s\n", path, awq_runtime_last_error(g_rt));
        awq_gguf_close(g);
        return 1;
    }
    if (vectors) bad += vectors(t, name);
    int64_t n = 0;
    int32_t *ids = check_wiki(t, vectors ? name : NULL, &n, &bad);
    if (ids) bad += roundtrip_hf(t, name, ids, n);
    printf("  %s: %lld WikiText ids\n", name, (long long)n);
    free(ids);
    awq_tokenizer_destroy(t);
    awq_gguf_close(g);
    return bad;
}

#endif
