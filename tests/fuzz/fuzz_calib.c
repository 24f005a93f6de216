/* fuzz_calib.c - the calibration readers: the first byte picks the format (bit 0: .jsonl, else
 * blank-line separated .txt) and the options (bits 1-3: samples 2..16, bits 4-7: seqlen 32..512,
 * the second byte: the shuffle seed), the rest is the file. Tokenized with a small test
 * tokenizer (tests/tokenizer/data/tiny_metaspace.json). */
#include <stdio.h>
#include <stdlib.h>

#include "fuzz.h"
#include "quant.h"
#include "tokenizer.h"

#ifndef AWQ_TEST_SOURCE_DIR
#define AWQ_TEST_SOURCE_DIR "."
#endif

int awq_fuzz_calib(const uint8_t *data, size_t size) {
    awq_runtime *rt = awq_fuzz_runtime();
    static awq_tokenizer *tok;
    if (!tok) {
        const char *src = getenv("AWQ_SOURCE_DIR") ? getenv("AWQ_SOURCE_DIR") : AWQ_TEST_SOURCE_DIR;
        char path[1024];
        snprintf(path, sizeof path, "%s/tests/tokenizer/data/tiny_metaspace.json", src);
        if (awq_tokenizer_load_files(rt, path, NULL, &tok) != AWQ_OK) {
            fprintf(stderr, "fuzz_calib: %s: %s (set AWQ_SOURCE_DIR)\n", path, awq_runtime_last_error(rt));
            abort();
        }
    }
    if (size < 2) return 0;
    bool jsonl = data[0] & 1;
    int32_t samples = 2 * (1 + ((data[0] >> 1) & 7)), seqlen = 32 * (1 + (data[0] >> 4));
    uint64_t seed = data[1];
    awq_calib cal;
    if (awq_calib_build_text(rt, tok, jsonl ? "fuzz.jsonl" : "fuzz.txt", (const char *)data + 2, size - 2,
                             jsonl, samples, seqlen, seed, &cal) == AWQ_OK) {
        if ((int64_t)cal.n_blocks * cal.seqlen > cal.n_tokens) abort();
        for (int64_t i = 0; i < (int64_t)cal.n_blocks * cal.seqlen; i++)
            if (cal.tokens[i] < 0 || cal.tokens[i] >= awq_tokenizer_vocab_size(tok)) abort();
        awq_calib_free(&cal);
    }
    return 0;
}

#ifdef AWQ_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return awq_fuzz_calib(data, size); }
#endif
