/*
 * test_tok_edge.c - documented behaviour at the edges: empty input, invalid UTF-8 (replaced by
 * U+FFFD per maximal subpart), a 1 MB single "word", special-token strings inside text, buffer
 * sizes, streaming decode of split UTF-8, and malformed tokenizer.json files whose errors must
 * name the field.
 */
#include <unistd.h>

#include "awq.h"
#include "test.h"
#include "tok_test_util.h"
#include "tokenizer.h"

static awq_runtime *g_rt;
static awq_tokenizer *g_llama3, *g_qwen3;

static awq_tokenizer *load_dir(const char *dir) {
    char d[1024];
    snprintf(d, sizeof d, "%s/tokenizers/%s", test_shared_data(), dir);
    awq_tokenizer *t = NULL;
    if (awq_tokenizer_load(&t, g_rt, d) != AWQ_OK) printf("load %s: %s\n", d, awq_runtime_last_error(g_rt));
    return t;
}

/* Encodes into a malloc'ed array. */
static int32_t *enc(awq_tokenizer *t, const char *s, size_t n, bool special, int64_t *cnt) {
    *cnt = 0;
    if (awq_tokenizer_encode(t, s, n, special, NULL, 0, cnt) != AWQ_OK) return NULL;
    int32_t *ids = malloc(sizeof *ids * (size_t)(*cnt + 1));
    if (awq_tokenizer_encode(t, s, n, special, ids, *cnt, cnt) != AWQ_OK) {
        free(ids);
        return NULL;
    }
    return ids;
}

static bool same_ids(const int32_t *a, int64_t na, const int32_t *b, int64_t nb) {
    return na == nb && (na == 0 || memcmp(a, b, sizeof *a * (size_t)na) == 0);
}

TEST(empty_input) {
    int64_t n = -1;
    ASSERT_OK_RT(awq_tokenizer_encode(g_llama3, "", 0, false, NULL, 0, &n), g_rt);
    ASSERT_EQ(n, 0);
    ASSERT_OK_RT(awq_tokenizer_encode(g_llama3, NULL, 0, true, NULL, 0, &n), g_rt);
    ASSERT_EQ(n, 0); /* this Llama 3 tokenizer.json has a ByteLevel post-processor: no BOS */
    size_t len = 7;
    char buf[4];
    ASSERT_OK_RT(awq_tokenizer_decode(g_llama3, NULL, 0, false, buf, sizeof buf, &len), g_rt);
    ASSERT_EQ(len, 0);
    ASSERT_EQ(buf[0], 0);
}

TEST(invalid_utf8_is_replaced) {
    /* bytes: 'a' FF 'b' E2 82 'c' ED A0 80 F0 9F (truncated at the end)
     * Unicode maximal subparts: FF | E2 82 | ED | A0 | 80 | F0 9F  -> 6 x U+FFFD */
    const char bad[] = "a\xFF"
                       "b\xE2\x82"
                       "c\xED\xA0\x80\xF0\x9F";
    const char good[] = "a\xEF\xBF\xBD"
                        "b\xEF\xBF\xBD"
                        "c\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD";
    for (int k = 0; k < 2; k++) {
        awq_tokenizer *t = k ? g_qwen3 : g_llama3;
        int64_t na, nb;
        int32_t *a = enc(t, bad, sizeof bad - 1, false, &na);
        int32_t *b = enc(t, good, sizeof good - 1, false, &nb);
        ASSERT(a && b);
        ASSERT(same_ids(a, na, b, nb));
        char out[256];
        size_t len;
        ASSERT_OK_RT(awq_tokenizer_decode(t, a, na, false, out, sizeof out, &len), g_rt);
        ASSERT_EQ(len, sizeof good - 1);
        ASSERT(memcmp(out, good, len) == 0);
        free(a);
        free(b);
    }
}

TEST(one_megabyte_word) {
    size_t n = 1 << 20;
    char *s = malloc(n + 1);
    /* letters only: one regex piece of 1 MB, BPE over a million symbols */
    for (size_t i = 0; i < n; i++) s[i] = (char)('a' + (i * 7 + i / 13) % 26);
    for (int k = 0; k < 2; k++) {
        awq_tokenizer *t = k ? g_qwen3 : g_llama3;
        int64_t cnt;
        int32_t *ids = enc(t, s, n, false, &cnt);
        ASSERT(ids);
        ASSERT(cnt > 1000 && cnt < (int64_t)n);
        char *out = malloc(n + 1);
        size_t len = 0;
        ASSERT_OK_RT(awq_tokenizer_decode(t, ids, cnt, false, out, n + 1, &len), g_rt);
        ASSERT_EQ(len, n);
        ASSERT(memcmp(out, s, n) == 0);
        free(out);
        free(ids);
    }
    /* and 1 MB of one emoji (4-byte sequences, no letters) */
    for (size_t i = 0; i + 4 <= n; i += 4) memcpy(s + i, "\xF0\x9F\xA6\x99", 4);
    int64_t cnt;
    int32_t *ids = enc(g_llama3, s, n, false, &cnt);
    ASSERT(ids && cnt > 0);
    free(ids);
    free(s);
}

TEST(special_token_strings) {
    /* Qwen3: added tokens are recognised inside text ("<|im_start|>" is id 151644 and
     * "<|im_end|>" 151645 in tokenizer.json's added_tokens) */
    const char *txt = "<|im_start|>user\nhi<|im_end|>";
    int64_t n;
    int32_t *ids = enc(g_qwen3, txt, strlen(txt), false, &n);
    ASSERT(ids && n >= 4);
    ASSERT_EQ(ids[0], 151644);
    ASSERT_EQ(ids[n - 1], 151645);
    /* the text in between encodes as it does alone */
    int64_t m;
    int32_t *mid = enc(g_qwen3, "user\nhi", 7, false, &m);
    ASSERT(same_ids(ids + 1, n - 2, mid, m));
    /* decode with and without the special tokens */
    char out[128];
    size_t len;
    ASSERT_OK_RT(awq_tokenizer_decode(g_qwen3, ids, n, false, out, sizeof out, &len), g_rt);
    ASSERT_STREQ(out, txt);
    ASSERT_OK_RT(awq_tokenizer_decode(g_qwen3, ids, n, true, out, sizeof out, &len), g_rt);
    ASSERT_STREQ(out, "user\nhi");
    ASSERT(awq_tokenizer_is_eog(g_qwen3, 151645));
    ASSERT(!awq_tokenizer_is_eog(g_qwen3, 151644));
    ASSERT_EQ(awq_tokenizer_eos(g_qwen3), 151645); /* tokenizer_config: eos_token <|im_end|> */
    ASSERT_EQ(awq_tokenizer_bos(g_qwen3), -1);
    free(ids);
    free(mid);
}

TEST(buffer_sizes) {
    int64_t n = 0;
    int32_t ids[2];
    awq_status st = awq_tokenizer_encode(g_llama3, "Hello world, again", 18, false, ids, 2, &n);
    ASSERT_EQ(st, AWQ_ERR_INVALID_ARG);
    ASSERT(n > 2);
    int32_t all[16];
    ASSERT_OK_RT(awq_tokenizer_encode(g_llama3, "Hello world, again", 18, false, all, 16, &n), g_rt);
    char small[4];
    size_t len = 0;
    st = awq_tokenizer_decode(g_llama3, all, n, false, small, sizeof small, &len);
    ASSERT_EQ(st, AWQ_ERR_INVALID_ARG);
    ASSERT_EQ(len, 18);
    /* a size query remembers its result for the fill call of the same text only */
    static char a[5000], b[5000];
    memset(a, 'a', sizeof a);
    memset(b, 'b', sizeof b);
    int64_t na = 0, nb = 0;
    ASSERT_OK(awq_tokenizer_encode(g_llama3, a, sizeof a, false, NULL, 0, &na));
    ASSERT_OK(awq_tokenizer_encode(g_llama3, b, sizeof b, false, NULL, 0, &nb));
    int32_t *ib = malloc(sizeof *ib * (size_t)nb), *ib2 = malloc(sizeof *ib2 * (size_t)nb);
    ASSERT_OK(awq_tokenizer_encode(g_llama3, b, sizeof b, false, ib, nb, &nb));
    ASSERT_OK(awq_tokenizer_encode(g_llama3, a, sizeof a, false, NULL, 0, &na));
    int64_t nb2 = 0;
    ASSERT_OK(awq_tokenizer_encode(g_llama3, b, sizeof b, false, ib2, nb, &nb2)); /* not a's ids */
    ASSERT(nb2 == nb && memcmp(ib, ib2, sizeof *ib * (size_t)nb) == 0);
    free(ib);
    free(ib2);
    int32_t bad_id = 1 << 29;
    ASSERT_EQ(awq_tokenizer_decode(g_llama3, &bad_id, 1, false, NULL, 0, &len), AWQ_ERR_INVALID_ARG);
}

TEST(stream_never_splits_utf8) {
    /* "🦙" is several byte-level tokens in Llama 3: no push may emit part of it */
    const char *txt = "a🦙é漢字 ok";
    int64_t n;
    int32_t *ids = enc(g_llama3, txt, strlen(txt), false, &n);
    ASSERT(ids);
    awq_detok *d = NULL;
    ASSERT_OK(awq_detok_create(&d, g_llama3, false));
    char all[128] = "";
    size_t total = 0;
    for (int64_t i = 0; i < n; i++) {
        char piece[64];
        size_t got;
        ASSERT_OK(awq_detok_push(d, ids[i], piece, sizeof piece, &got));
        /* every emitted chunk is complete UTF-8 */
        for (size_t k = 0; k < got;) {
            size_t l = 1;
            unsigned char c = (unsigned char)piece[k];
            if (c >= 0xF0)
                l = 4;
            else if (c >= 0xE0)
                l = 3;
            else if (c >= 0xC0)
                l = 2;
            ASSERT(k + l <= got);
            k += l;
        }
        memcpy(all + total, piece, got);
        total += got;
    }
    /* a too small buffer keeps the bytes for the next call */
    char tiny[1];
    size_t got = 0;
    ASSERT_OK(awq_detok_flush(d, tiny, sizeof tiny, &got));
    ASSERT_EQ(got, 0);
    awq_detok_destroy(d);
    ASSERT_EQ(total, strlen(txt));
    ASSERT(memcmp(all, txt, total) == 0);
    /* a lone lead byte at the end comes out as U+FFFD on flush */
    ASSERT_OK(awq_detok_create(&d, g_llama3, false));
    int32_t e2 = -1;
    int64_t one;
    ASSERT_OK(awq_tokenizer_encode(g_llama3, "\xE2\x82\xAC", 3, false, NULL, 0, &one)); /* € */
    int32_t euro[4];
    ASSERT_OK(awq_tokenizer_encode(g_llama3, "\xE2\x82\xAC", 3, false, euro, 4, &one));
    e2 = euro[0];
    if (one > 1) { /* € is split into byte tokens: push only the first */
        char buf[16];
        ASSERT_OK(awq_detok_push(d, e2, buf, sizeof buf, &got));
        ASSERT_EQ(got, 0);
        ASSERT_OK(awq_detok_flush(d, buf, sizeof buf, &got));
        ASSERT_STREQ(buf, "\xEF\xBF\xBD");
    }
    awq_detok_destroy(d);
    free(ids);
}

/* Random texts from pieces whose replacement is known piece by piece (no piece starts with a
 * continuation byte, so ill-formed pieces never join their neighbours): decode(encode(x)) must
 * equal x with each ill-formed piece replaced by U+FFFD, and streaming must give the same. */
TEST(random_roundtrip) {
    static const struct {
        const char *in, *out;
    } pieces[] = {
        {"a", "a"},
        {"Z", "Z"},
        {" ", " "},
        {"  ", "  "},
        {"\n", "\n"},
        {"\t", "\t"},
        {"7", "7"},
        {"123", "123"},
        {"'s", "'s"},
        {"'LL", "'LL"},
        {"hello", "hello"},
        {" world", " world"},
        {"\xC3\xA9", "\xC3\xA9"},
        {"\xF0\x9F\xA6\x99", "\xF0\x9F\xA6\x99"},
        {"\xE6\xBC\xA2", "\xE6\xBC\xA2"},
        {"\xFF", "\xEF\xBF\xBD"},
        {"\xE2\x82", "\xEF\xBF\xBD"},
        {"\xC0", "\xEF\xBF\xBD"},
        {"<|begin_of_text|>", "<|begin_of_text|>"},
        {"<|eot_id|>", "<|eot_id|>"},
        {"!!", "!!"},
        {"\r\n", "\r\n"},
        {"\xC2\xA0", "\xC2\xA0"},
    };
    const int np = (int)(sizeof pieces / sizeof pieces[0]);
    unsigned long long rng = 12345;
    char in[2048], exp[4096], out[8192], stream[8192];
    for (int iter = 0; iter < 300; iter++) {
        size_t il = 0, el = 0;
        int k = (int)(test_rng_next(&rng) % 40);
        for (int i = 0; i < k; i++) {
            int j = (int)(test_rng_next(&rng) % (unsigned long long)np);
            size_t a = strlen(pieces[j].in), b = strlen(pieces[j].out);
            memcpy(in + il, pieces[j].in, a);
            memcpy(exp + el, pieces[j].out, b);
            il += a;
            el += b;
        }
        int64_t n;
        int32_t *ids = enc(g_llama3, in, il, false, &n);
        ASSERT(ids);
        size_t len;
        ASSERT_OK(awq_tokenizer_decode(g_llama3, ids, n, false, out, sizeof out, &len));
        ASSERT_MSG(len == el && memcmp(out, exp, el) == 0, "iteration %d", iter);
        awq_detok *d = NULL;
        ASSERT_OK(awq_detok_create(&d, g_llama3, false));
        size_t sl = 0, got;
        for (int64_t i = 0; i < n; i++) {
            ASSERT_OK(awq_detok_push(d, ids[i], stream + sl, sizeof stream - sl, &got));
            sl += got;
        }
        ASSERT_OK(awq_detok_flush(d, stream + sl, sizeof stream - sl, &got));
        sl += got;
        awq_detok_destroy(d);
        ASSERT_MSG(sl == el && memcmp(stream, exp, el) == 0, "stream, iteration %d", iter);
        free(ids);
    }
}

/* Writes text to a temporary tokenizer.json and returns the load error detail. */
static awq_status load_text(const char *json, char *err, size_t cap) {
    char path[] = "/tmp/awq_tok_test_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return AWQ_ERR_IO;
    ssize_t w = write(fd, json, strlen(json));
    close(fd);
    if (w < 0) return AWQ_ERR_IO;
    awq_tokenizer *t = NULL;
    awq_status st = awq_tokenizer_load_files(g_rt, path, NULL, &t);
    snprintf(err, cap, "%s", awq_runtime_last_error(g_rt));
    awq_tokenizer_destroy(t);
    unlink(path);
    return st;
}

TEST(malformed_json) {
    char err[1024];
    ASSERT_EQ(load_text("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0,}}}", err, sizeof err),
              AWQ_ERR_FORMAT);
    ASSERT_MSG(strstr(err, "invalid JSON"), "%s", err);
    ASSERT_EQ(load_text("{\"version\": \"1.0\"}", err, sizeof err), AWQ_ERR_FORMAT);
    ASSERT_MSG(strstr(err, "model"), "%s", err);
    ASSERT_EQ(load_text("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": \"x\"}, \"merges\": []}}", err,
                        sizeof err),
              AWQ_ERR_FORMAT);
    ASSERT_MSG(strstr(err, "model.vocab") && strstr(err, "'a'"), "%s", err);
    ASSERT_EQ(load_text("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2},"
                        " \"merges\": [\"a b\", \"a c\"]}}",
                        err, sizeof err),
              AWQ_ERR_FORMAT);
    ASSERT_MSG(strstr(err, "model.merges[1]"), "%s", err);
    ASSERT_EQ(load_text("{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}", err, sizeof err),
              AWQ_ERR_UNSUPPORTED);
    ASSERT_MSG(strstr(err, "model.type") && strstr(err, "Unigram"), "%s", err);
    ASSERT_EQ(load_text("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []},"
                        " \"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"(\"}, "
                        "\"behavior\": \"Isolated\"}}",
                        err, sizeof err),
              AWQ_ERR_FORMAT);
    ASSERT_MSG(strstr(err, "pre_tokenizer") && strstr(err, "regex"), "%s", err);
    ASSERT_EQ(load_text("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []},"
                        " \"normalizer\": {\"type\": \"Precompiled\"}}",
                        err, sizeof err),
              AWQ_ERR_UNSUPPORTED);
    ASSERT_MSG(strstr(err, "normalizer") && strstr(err, "Precompiled"), "%s", err);
    ASSERT_EQ(load_text("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []},"
                        " \"added_tokens\": [{\"id\": -3, \"content\": \"<x>\"}]}",
                        err, sizeof err),
              AWQ_ERR_FORMAT);
    ASSERT_MSG(strstr(err, "added_tokens[0]"), "%s", err);
}

/* A tiny hand-made SentencePiece-style tokenizer: every expected id follows from the merge
 * ranks written here (lowest rank first, leftmost on ties), byte fallback for unknown chars. */
TEST(tiny_spm_byte_fallback) {
    const char *json =
        "{\"normalizer\": {\"type\": \"Sequence\", \"normalizers\": ["
        "  {\"type\": \"Prepend\", \"prepend\": \"\\u2581\"},"
        "  {\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"\\u2581\"}]},"
        " \"decoder\": {\"type\": \"Sequence\", \"decoders\": ["
        "  {\"type\": \"Replace\", \"pattern\": {\"String\": \"\\u2581\"}, \"content\": \" \"},"
        "  {\"type\": \"ByteFallback\"}, {\"type\": \"Fuse\"},"
        "  {\"type\": \"Strip\", \"content\": \" \", \"start\": 1, \"stop\": 0}]},"
        " \"added_tokens\": [{\"id\": 1, \"content\": \"<s>\", \"special\": true}],"
        " \"post_processor\": {\"type\": \"TemplateProcessing\","
        "  \"single\": [{\"SpecialToken\": {\"id\": \"<s>\", \"type_id\": 0}}, {\"Sequence\": {\"id\": "
        "\"A\", \"type_id\": 0}}],"
        "  \"special_tokens\": {\"<s>\": {\"id\": \"<s>\", \"ids\": [1], \"tokens\": [\"<s>\"]}}},"
        " \"model\": {\"type\": \"BPE\", \"byte_fallback\": true, \"unk_token\": \"<unk>\", \"fuse_unk\": "
        "true,"
        "  \"vocab\": {\"<unk>\": 0, \"<s>\": 1, \"<0xC3>\": 2, \"<0xA9>\": 3, \"\\u2581\": 4, \"a\": 5, "
        "\"b\": 6,"
        "             \"ab\": 7, \"\\u2581a\": 8, \"\\u2581ab\": 9, \"ba\": 10},"
        "  \"merges\": [\"a b\", \"\\u2581 ab\", \"\\u2581 a\", \"b a\"]}}";
    char path[] = "/tmp/awq_tok_spm_XXXXXX";
    int fd = mkstemp(path);
    ASSERT(fd >= 0);
    ASSERT(write(fd, json, strlen(json)) == (ssize_t)strlen(json));
    close(fd);
    awq_tokenizer *t = NULL;
    awq_status st = awq_tokenizer_load_files(g_rt, path, NULL, &t);
    unlink(path);
    ASSERT_OK_RT(st, g_rt);
    /* "ab aba é": normalized "▁ab▁aba▁é"; one word (no pre-tokenizer).
     * symbols ▁ a b ▁ a b a ▁ é(unknown -> <0xC3> <0xA9>)
     * rank 0 "a b" at both places (leftmost first): ▁ ab ▁ ab a ▁ C3 A9
     * rank 1 "▁ ab": ▁ab ▁ab a ▁ C3 A9 ; "▁ a" needs a following a: none ; "b a": b is merged.
     * expected: <s> ▁ab ▁ab a ▁ <0xC3> <0xA9> */
    int32_t ids[32];
    int64_t n;
    ASSERT_OK_RT(awq_tokenizer_encode(t, "ab aba \xC3\xA9", 9, true, ids, 32, &n), g_rt);
    int32_t exp[] = {1, 9, 9, 5, 4, 2, 3};
    ASSERT(same_ids(ids, n, exp, 7));
    char out[64];
    size_t len;
    ASSERT_OK_RT(awq_tokenizer_decode(t, ids, n, true, out, sizeof out, &len), g_rt);
    ASSERT_STREQ(out, "ab aba \xC3\xA9");
    ASSERT(awq_tokenizer_adds_bos(t));
    ASSERT_EQ(awq_tokenizer_bos(t), 1);
    awq_tokenizer_destroy(t);
}

/* BOS/EOS: a TemplateProcessing post-processor adds BOS; tokenizer_config.json's add_bos_token /
 * add_eos_token override it (Llama 3's tokenizer.json with the official template spliced in). */
static void write_str(const char *path, const char *s) {
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(s, 1, strlen(s), f);
        fclose(f);
    }
}

TEST(bos_eos_from_template_and_config) {
    char src[1024];
    snprintf(src, sizeof src, "%s/tokenizers/llama3/tokenizer.json", test_shared_data());
    size_t n;
    char *j = tt_read_file(src, &n);
    ASSERT(j);
    char *a = strstr(j, "\"post_processor\": {"), *b = a ? strstr(a, "\"decoder\": {") : NULL;
    ASSERT(a && b);
    static const char tp[] =
        "\"post_processor\": {\"type\": \"Sequence\", \"processors\": ["
        "{\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"trim_offsets\": false, \"use_regex\": true},"
        "{\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<|begin_of_text|>\", "
        "\"type_id\": 0}},"
        "{\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}], \"pair\": [], \"special_tokens\": "
        "{\"<|begin_of_text|>\": {\"id\": \"<|begin_of_text|>\", \"ids\": [128000], \"tokens\": "
        "[\"<|begin_of_text|>\"]}}}]},\n  ";
    char *m = malloc(n + sizeof tp);
    size_t k = (size_t)(a - j);
    memcpy(m, j, k);
    memcpy(m + k, tp, sizeof tp - 1);
    strcpy(m + k + sizeof tp - 1, b);
    char dir[64];
    ASSERT(test_tmpdir(dir, sizeof dir, "tok-bos") == 0);
    char tj[256], tc[256];
    snprintf(tj, sizeof tj, "%s/tokenizer.json", dir);
    snprintf(tc, sizeof tc, "%s/tokenizer_config.json", dir);
    write_str(tj, m);
    free(m);
    free(j);
    static const struct {
        const char *cfg;
        int32_t first, last;
        bool bos;
    } cases[] = {
        {NULL, 128000, -1, true},
        {"{\"add_bos_token\": false, \"bos_token\": \"<|begin_of_text|>\"}", -1, -1, false},
        {"{\"add_eos_token\": true, \"eos_token\": {\"content\": \"<|end_of_text|>\"}}", 128000, 128001,
         true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unlink(tc);
        if (cases[i].cfg) write_str(tc, cases[i].cfg);
        awq_tokenizer *t = NULL;
        ASSERT_OK_RT(awq_tokenizer_load(&t, g_rt, dir), g_rt);
        int32_t ids[16];
        int64_t cnt = 0, plain = 0;
        ASSERT_OK(awq_tokenizer_encode(t, "Hi", 2, true, ids, 16, &cnt));
        ASSERT_OK(awq_tokenizer_encode(t, "Hi", 2, false, NULL, 0, &plain));
        ASSERT_EQ(cnt, plain + (cases[i].first >= 0) + (cases[i].last >= 0));
        if (cases[i].first >= 0) ASSERT_EQ(ids[0], cases[i].first);
        if (cases[i].last >= 0) ASSERT_EQ(ids[cnt - 1], cases[i].last);
        ASSERT_EQ(awq_tokenizer_adds_bos(t), cases[i].bos);
        awq_tokenizer_destroy(t);
    }
    test_rmtree(dir);
}

int main(void) {
    if (!test_shared_data()) return 77;
    awq_runtime_params p = awq_runtime_params_default();
    p.load_plugins = false;
    if (awq_runtime_create(&g_rt, &p) != AWQ_OK) return 1;
    g_llama3 = load_dir("llama3");
    g_qwen3 = load_dir("qwen3");
    if (!g_llama3 || !g_qwen3) return 1;
    RUN(empty_input);
    RUN(invalid_utf8_is_replaced);
    RUN(one_megabyte_word);
    RUN(special_token_strings);
    RUN(buffer_sizes);
    RUN(stream_never_splits_utf8);
    RUN(random_roundtrip);
    RUN(malformed_json);
    RUN(tiny_spm_byte_fallback);
    RUN(bos_eos_from_template_and_config);
    awq_tokenizer_destroy(g_llama3);
    awq_tokenizer_destroy(g_qwen3);
    awq_runtime_destroy(g_rt);
    return TEST_EXIT();
}
