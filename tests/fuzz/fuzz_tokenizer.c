/* fuzz_tokenizer.c - a model's tokenizer files: the input is tokenizer.json, optionally followed
 * by "\n%%\n" + tokenizer_config.json and "\n%%\n" + a text. The tokenizer is loaded (model,
 * normalizer, pre-tokenizer, decoder, added tokens, post-processor), then the text is encoded
 * with and without special tokens, decoded at once and token by token, and the config's chat
 * template (if any) rendered. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "tokenizer.h"

int awq_fuzz_tokenizer(const uint8_t *data, size_t size) {
    awq_runtime *rt = awq_fuzz_runtime();
    char *part[3] = {0};
    size_t len[3] = {0};
    int np = awq_fuzz_split(data, size, part, len, 3);
    const char *dir = awq_fuzz_dir();
    char tj[400], tc[400];
    snprintf(tj, sizeof tj, "%s/tokenizer.json", dir);
    snprintf(tc, sizeof tc, "%s/tokenizer_config.json", dir);
    awq_tokenizer *tok = NULL;
    if (awq_fuzz_write(dir, "tokenizer.json", part[0], len[0]) == 0 &&
        (np < 2 || awq_fuzz_write(dir, "tokenizer_config.json", part[1], len[1]) == 0) &&
        awq_tokenizer_load_files(rt, tj, np >= 2 ? tc : NULL, &tok) == AWQ_OK) {
        const char *text = np >= 3 ? part[2] : "Hello world! 123 <|im_start|> \xc3\xa9\xff\xfe";
        size_t tl = np >= 3 ? len[2] : strlen(text);
        for (int special = 0; special < 2; special++) {
            int64_t n = 0;
            if (awq_tokenizer_encode(tok, text, tl, special, NULL, 0, &n) != AWQ_OK || n > 100000) continue;
            int32_t *ids = malloc((size_t)(n ? n : 1) * sizeof *ids);
            if (ids && awq_tokenizer_encode(tok, text, tl, special, ids, n, &n) == AWQ_OK) {
                size_t bytes = 0;
                if (awq_tokenizer_decode(tok, ids, n, special, NULL, 0, &bytes) == AWQ_OK || bytes > 0) {
                    char *buf = malloc(bytes + 1);
                    if (buf) (void)awq_tokenizer_decode(tok, ids, n, special, buf, bytes + 1, &bytes);
                    free(buf);
                }
                awq_detok *d = NULL;
                if (awq_detok_create(&d, tok, special) == AWQ_OK) {
                    char piece[256];
                    size_t pl;
                    for (int64_t i = 0; i < n; i++) (void)awq_detok_push(d, ids[i], piece, sizeof piece, &pl);
                    (void)awq_detok_flush(d, piece, sizeof piece, &pl);
                    awq_detok_destroy(d);
                }
            }
            free(ids);
        }
        int32_t v = awq_tokenizer_vocab_size(tok);
        for (int32_t id = -1; id <= v && id < 64; id++) {
            (void)awq_tokenizer_is_eog(tok, id);
            (void)awq_tokenizer_token_text(tok, id);
        }
        awq_chat_message m[2] = {{"system", "Be brief."}, {"user", text}};
        char *out = NULL;
        if (awq_tokenizer_apply_chat(tok, m, 2, true, &out) == AWQ_OK) awq_free(out);
        awq_tokenizer_destroy(tok);
    }
    for (int i = 0; i < np; i++) free(part[i]);
    return 0;
}

#ifdef AWQ_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return awq_fuzz_tokenizer(data, size); }
#endif
