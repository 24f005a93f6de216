/* fuzz_gguf.c - one GGUF file as `awq-cli convert` reads it: header, metadata key/values (arrays
 * and strings included), tensor infos, alignment, then the typed getters the converter uses,
 * the dequantization of every small tensor, and the tokenizer built from tokenizer.ggml.*. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "gguf.h"
#include "tokenizer.h"

int awq_fuzz_gguf(const uint8_t *data, size_t size) {
    awq_runtime *rt = awq_fuzz_runtime();
    char path[64];
    int fd = awq_fuzz_memfile(data, size, path, sizeof path);
    if (fd < 0) return 0;
    awq_gguf *g = NULL;
    if (awq_gguf_open(rt, path, &g) == AWQ_OK) {
        uint64_t u;
        double f;
        bool b;
        char *s = NULL;
        (void)awq_gguf_get_u64(rt, g, "llama.block_count", false, 0, &u);
        (void)awq_gguf_get_f64(rt, g, "llama.rope.freq_base", false, 0, &f);
        (void)awq_gguf_get_bool(rt, g, "tokenizer.ggml.add_bos_token", false, false, &b);
        if (awq_gguf_get_str(rt, g, "general.architecture", false, &s) == AWQ_OK) awq_free(s);
        for (uint64_t i = 0; i < g->n_tensors; i++) {
            const awq_gguf_tensor *t = &g->tensors[i];
            if (awq_gguf_find_tensor(g, t->name) == NULL) abort();
            uint64_t n = awq_gguf_tensor_nelem(t);
            if (n == 0 || n > (1u << 16)) continue;
            float *out = malloc((size_t)n * sizeof *out);
            if (out) (void)awq_gguf_dequantize(rt, g, t, out);
            free(out);
        }
        awq_tokenizer *tok = NULL;
        if (awq_tokenizer_from_gguf(rt, g, &tok) == AWQ_OK) {
            static const char text[] = "Hello world! 123 <s> \xc3\xa9\xe2\x82\xac \xf0\x9f\x98\x80";
            int32_t ids[256];
            int64_t n = 0;
            if (awq_tokenizer_encode(tok, text, sizeof text - 1, true, ids, 256, &n) == AWQ_OK) {
                char buf[2048];
                size_t len = 0;
                (void)awq_tokenizer_decode(tok, ids, n, false, buf, sizeof buf, &len);
            }
            awq_tokenizer_destroy(tok);
        }
        awq_gguf_close(g);
    }
    close(fd);
    return 0;
}

#ifdef AWQ_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return awq_fuzz_gguf(data, size); }
#endif
