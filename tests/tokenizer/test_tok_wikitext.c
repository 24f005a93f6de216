/*
 * test_tok_wikitext.c - the whole WikiText-2 test file through each tokenizer:
 *  - the ids equal Hugging Face `tokenizers`' ids: same count and FNV-1a-64 hash as
 *    golden/wikitext_ids.txt (written by golden/gen_wikitext_golden.py, which builds the GGUF
 *    vocabularies into `tokenizers` objects independently of this code);
 *  - decode(encode(x)) == x byte for byte;
 *  - streaming decode (awq_detok, one id at a time) gives the same bytes.
 */
#include "awq.h"
#include "test.h"
#include "tok_test_util.h"
#include "tokenizer.h"

static uint64_t fnv64_ids(const int32_t *ids, int64_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (int64_t i = 0; i < n; i++) {
        uint32_t v = (uint32_t)ids[i];
        for (int b = 0; b < 4; b++) {
            h ^= (v >> (8 * b)) & 0xFF;
            h *= 0x100000001b3ull;
        }
    }
    return h;
}

static bool golden(const char *name, long long *count, uint64_t *hash) {
    char path[1024], line[256];
    snprintf(path, sizeof path, "%s/tests/tokenizer/golden/wikitext_ids.txt", AWQ_TEST_SOURCE_DIR);
    FILE *f = fopen(path, "r");
    if (!f) return false;
    bool found = false;
    while (fgets(line, sizeof line, f)) {
        char n[64];
        unsigned long long h;
        if (sscanf(line, "%63s %lld %llx", n, count, &h) == 3 && !strcmp(n, name)) {
            *hash = h;
            found = true;
            break;
        }
    }
    fclose(f);
    return found;
}

/* Returns the number of failed checks. */
int tt_check_wikitext(awq_tokenizer *tok, awq_runtime *rt, const char *name);
int tt_check_wikitext(awq_tokenizer *tok, awq_runtime *rt, const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/wikitext-2/wiki.test.raw", test_shared_data());
    size_t len;
    char *text = tt_read_file(path, &len);
    if (!text) {
        printf("  cannot read %s\n", path);
        return 1;
    }
    int bad = 0;
    int64_t n = 0;
    int32_t *ids = NULL;
    char *dec = NULL, *stream = NULL;
    long long exp_n = -1;
    uint64_t exp_h = 0;
    if (!golden(name, &exp_n, &exp_h)) {
        printf("  %s: no golden entry\n", name);
        bad++;
    }
    if (awq_tokenizer_encode(tok, text, len, false, NULL, 0, &n) != AWQ_OK ||
        !(ids = malloc(sizeof *ids * (size_t)n)) ||
        awq_tokenizer_encode(tok, text, len, false, ids, n, &n) != AWQ_OK) {
        printf("  %s: encode failed: %s\n", name, awq_runtime_last_error(rt));
        bad++;
        goto done;
    }
    uint64_t h = fnv64_ids(ids, n);
    if (n != exp_n || h != exp_h) {
        printf("  %s: %lld ids hash %016llx, expected %lld ids hash %016llx\n", name, (long long)n,
               (unsigned long long)h, exp_n, (unsigned long long)exp_h);
        bad++;
    }
    size_t dl = 0;
    dec = malloc(len * 2 + 16);
    if (awq_tokenizer_decode(tok, ids, n, false, dec, len * 2 + 16, &dl) != AWQ_OK || dl != len ||
        memcmp(dec, text, len) != 0) {
        size_t k = 0;
        while (k < dl && k < len && dec[k] == text[k]) k++;
        printf("  %s: decode differs at byte %zu (len %zu vs %zu)\n", name, k, dl, len);
        bad++;
    }
    awq_detok *d = NULL;
    stream = malloc(len * 2 + 16);
    size_t sl = 0;
    if (awq_detok_create(&d, tok, false) != AWQ_OK) {
        bad++;
        goto done;
    }
    for (int64_t i = 0; i < n; i++) {
        size_t got = 0;
        char piece[512];
        if (awq_detok_push(d, ids[i], piece, sizeof piece, &got) != AWQ_OK) {
            bad++;
            break;
        }
        memcpy(stream + sl, piece, got);
        sl += got;
    }
    size_t got = 0;
    char piece[64];
    if (awq_detok_flush(d, piece, sizeof piece, &got) == AWQ_OK) {
        memcpy(stream + sl, piece, got);
        sl += got;
    }
    awq_detok_destroy(d);
    if (sl != len || memcmp(stream, text, len) != 0) {
        printf("  %s: streaming decode differs (%zu vs %zu bytes)\n", name, sl, len);
        bad++;
    }
    printf("  %s: %lld ids, decode %s\n", name, (long long)n, bad ? "FAILED" : "byte-exact");
done:
    free(ids);
    free(dec);
    free(stream);
    free(text);
    return bad;
}

static awq_runtime *new_rt(void) {
    awq_runtime *rt = NULL;
    awq_runtime_params p = awq_runtime_params_default();
    p.load_plugins = false;
    return awq_runtime_create(&rt, &p) == AWQ_OK ? rt : NULL;
}

static int run_dir(const char *dir) {
    awq_runtime *rt = new_rt();
    char d[1024];
    snprintf(d, sizeof d, "%s/tokenizers/%s", test_shared_data(), dir);
    awq_tokenizer *tok = NULL;
    if (awq_tokenizer_load(&tok, rt, d) != AWQ_OK) {
        printf("  load %s: %s\n", d, awq_runtime_last_error(rt));
        awq_runtime_destroy(rt);
        return 1;
    }
    int bad = tt_check_wikitext(tok, rt, dir);
    awq_tokenizer_destroy(tok);
    awq_runtime_destroy(rt);
    return bad;
}

TEST(llama3) { ASSERT_EQ(run_dir("llama3"), 0); }
TEST(qwen3) { ASSERT_EQ(run_dir("qwen3"), 0); }

int main(void) {
    if (!test_shared_data()) return 77;
    RUN(llama3);
    RUN(qwen3);
    return TEST_EXIT();
}
