/*
 * fuzz.h - the fuzz targets' entry points. Each fuzz_<name>.c defines awq_fuzz_<name>(), which
 * feeds one input to a parser the way untrusted files reach it, and - built with AWQ_LIBFUZZER
 * (scripts/fuzz.sh, clang -fsanitize=fuzzer) - LLVMFuzzerTestOneInput calling it. The same
 * functions are linked into test_fuzz_replay (the normal compiler, a ctest test) to replay the
 * committed seed corpora and regression inputs (tests/fuzz/corpus/<name>/, regressions/<name>/).
 * An entry point returns 0 whatever the parser answered; a bug shows as a crash, a sanitizer
 * report, a leak or a hang.
 */
#ifndef AWQ_TESTS_FUZZ_H
#define AWQ_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "awq.h"

/* name, one-line description */
#define AWQ_FUZZ_TARGETS(X)                                                                  \
    X(safetensors, "safetensors file: header JSON, dtypes, shapes, offsets, data")           \
    X(st_index, "model.safetensors.index.json over two small valid shards")                  \
    X(gguf, "GGUF file: metadata, tensor infos, dequantization, the GGUF tokenizer")         \
    X(config, "config.json -> model configuration")                                          \
    X(tokenizer, "tokenizer.json + tokenizer_config.json, then encode/decode/chat template") \
    X(jinja, "chat-template engine: parse and render with bounded resources")                \
    X(calib, "calibration readers (.txt paragraphs, .jsonl) into token blocks")              \
    X(server_request, "serve: an HTTP request body -> request, chat template, tokens, stop strings")

#define AWQ_FUZZ_DECLARE(name, desc) int awq_fuzz_##name(const uint8_t *data, size_t size);
AWQ_FUZZ_TARGETS(AWQ_FUZZ_DECLARE)

/* ---- helpers (fuzz_common.c) ---- */

/* A runtime shared by all inputs (built-in cpu backend only, silent). */
awq_runtime *awq_fuzz_runtime(void);
/* A file holding data: an anonymous memory file, named /proc/self/fd/N in path (cap >= 64).
 * Returns the descriptor to close after use, -1 on failure. */
int awq_fuzz_memfile(const uint8_t *data, size_t size, char *path, size_t cap);
/* A private scratch directory (created once, under /dev/shm when it exists). */
const char *awq_fuzz_dir(void);
/* Writes data to dir/name; 0 on success. */
int awq_fuzz_write(const char *dir, const char *name, const void *data, size_t size);
/* Splits data at the separator bytes "\n%%\n" into at most max parts (NUL-terminated copies in
 * part[i], lengths in len[i]); returns the number of parts. Free each part with free(). */
int awq_fuzz_split(const uint8_t *data, size_t size, char **part, size_t *len, int max);

#endif
