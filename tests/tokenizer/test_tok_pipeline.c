/*
 * test_tok_pipeline.c - the pipeline pieces the real tokenizer files do not exercise, on the tiny
 * fixture data/tiny_metaspace.json: NFKC + Lowercase + Strip normalizers, Digits and Metaspace
 * (prepend_scheme "first", split) pre-tokenizers, byte fallback with fuse_unk, added tokens with
 * lstrip / rstrip / single_word, a TemplateProcessing BOS, and the Metaspace + ByteFallback + Fuse
 * decoder. Expected ids and texts are what Hugging Face `tokenizers` gives for the same file
 * (golden/gen_tiny_cases.py prints them).
 */
#include <unistd.h>

#include "awq.h"
#include "test.h"
#include "tokenizer.h"

static const struct {
    const char *text;
    int32_t ids[12];
    int n;
    const char *decoded;
} cases[] = {
    {"ab ab", {1, 3, 21, 3, 21}, 5, "<s> ab ab"},
    {"Ab 12 ", {1, 3, 21, 3, 17, 18}, 6, "<s> ab 12"},
    {"\xEF\xAC\x81 on", {1, 28, 3, 30}, 4, "<s> fi on"},                        /* U+FB01 -> "fi" (NFKC) */
    {"x <mask> y", {1, 3, 14, 289, 3, 15}, 6, "<s> x<mask> y"},                 /* lstrip eats the space */
    {"xy axy xy. xy", {1, 291, 20, 14, 15, 291, 79, 291}, 8, "<s>xy axyxy.xy"}, /* single_word */
    {"a[SEP]  b", {1, 20, 290, 5}, 4, "<s> a[SEP]b"},                           /* rstrip eats both spaces */
    {"\xC3\xA9!", {1, 3, 228, 202, 66}, 5, "<s> \xC3\xA9!"},                    /* byte fallback */
    {"", {1}, 1, "<s>"},
    {"  ab", {1, 3, 3, 21}, 4, "<s>  ab"},
    {"<s>ab", {1, 1, 21}, 3, "<s><s>ab"}, /* no prefix after <s> */
};

TEST(tiny_metaspace_pipeline) {
    awq_runtime *rt = NULL;
    awq_runtime_params p = awq_runtime_params_default();
    p.load_plugins = false;
    ASSERT_OK(awq_runtime_create(&rt, &p));
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/tokenizer/data/tiny_metaspace.json", AWQ_TEST_SOURCE_DIR);
    awq_tokenizer *t = NULL;
    ASSERT_OK_RT(awq_tokenizer_load_files(rt, path, NULL, &t), rt);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int32_t ids[64];
        int64_t n = 0;
        ASSERT_OK_RT(awq_tokenizer_encode(t, cases[i].text, strlen(cases[i].text), true, ids, 64, &n), rt);
        bool same = n == cases[i].n && memcmp(ids, cases[i].ids, sizeof(int32_t) * (size_t)n) == 0;
        if (!same) {
            printf("  case '%s': got", cases[i].text);
            for (int64_t k = 0; k < n; k++) printf(" %d", ids[k]);
            printf("\n");
        }
        ASSERT_MSG(same, "case %zu ids", i);
        char out[128];
        size_t len;
        ASSERT_OK_RT(awq_tokenizer_decode(t, ids, n, false, out, sizeof out, &len), rt);
        ASSERT_STREQ(out, cases[i].decoded);
    }
    awq_tokenizer_destroy(t);
    awq_runtime_destroy(rt);
}

/* Replace with Regex patterns (normalizer and decoder); expected as `tokenizers` gives them:
 * "a  b\t\na" -> [4, 2, 0] -> "a b a", "é é" -> [5, 2, 5] -> "é é". */
TEST(regex_replace) {
    static const char json[] =
        "{\"version\": \"1.0\", \"added_tokens\": [], \"normalizer\": {\"type\": \"Replace\", \"pattern\": "
        "{\"Regex\": \"\\\\s+\"}, \"content\": \"_\"}, \"pre_tokenizer\": null, \"post_processor\": null, "
        "\"decoder\": {\"type\": \"Replace\", \"pattern\": {\"Regex\": \"_+\"}, \"content\": \" \"}, "
        "\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"_\": 2, \"a_\": 3, \"a_b\": 4, "
        "\"\\u00e9\": 5}, \"merges\": [\"a _\", \"a_ b\"]}}";
    char path[] = "/tmp/awq_tok_re_XXXXXX";
    int fd = mkstemp(path);
    ASSERT(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs(json, f);
    fclose(f);
    awq_runtime *rt = NULL;
    awq_runtime_params p = awq_runtime_params_default();
    p.load_plugins = false;
    ASSERT_OK(awq_runtime_create(&rt, &p));
    awq_tokenizer *t = NULL;
    awq_status st = awq_tokenizer_load_files(rt, path, NULL, &t);
    unlink(path);
    ASSERT_OK_RT(st, rt);
    int32_t ids[16];
    int64_t n;
    char out[64];
    size_t len;
    ASSERT_OK(awq_tokenizer_encode(t, "a  b\t\na", 7, true, ids, 16, &n));
    ASSERT(n == 3 && ids[0] == 4 && ids[1] == 2 && ids[2] == 0);
    ASSERT_OK(awq_tokenizer_decode(t, ids, n, false, out, sizeof out, &len));
    ASSERT_STREQ(out, "a b a");
    ASSERT_OK(awq_tokenizer_encode(t, "\xC3\xA9 \xC3\xA9", 5, true, ids, 16, &n));
    ASSERT(n == 3 && ids[0] == 5 && ids[1] == 2 && ids[2] == 5);
    ASSERT_OK(awq_tokenizer_decode(t, ids, n, false, out, sizeof out, &len));
    ASSERT_STREQ(out, "\xC3\xA9 \xC3\xA9");
    awq_tokenizer_destroy(t);
    awq_runtime_destroy(rt);
}

int main(void) {
    RUN(tiny_metaspace_pipeline);
    RUN(regex_replace);
    return TEST_EXIT();
}
