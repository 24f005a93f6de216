/* fuzz_safetensors.c - one safetensors file as the reader gets it from a model directory:
 * header length, header JSON (dtypes, shapes, data_offsets, __metadata__), then every tensor's
 * data read back as F32 (small ones) the way the quantizer and the model loader read it. */
#include <stdlib.h>
#include <unistd.h>

#include "fuzz.h"
#include "safetensors.h"

int awq_fuzz_safetensors(const uint8_t *data, size_t size) {
    awq_runtime *rt = awq_fuzz_runtime();
    char path[64];
    int fd = awq_fuzz_memfile(data, size, path, sizeof path);
    if (fd < 0) return 0;
    awq_safetensors *st = NULL;
    if (awq_st_open(rt, path, &st) == AWQ_OK) {
        (void)awq_st_metadata(st, "format");
        for (int32_t i = 0; i < awq_st_count(st); i++) {
            const awq_st_tensor *t = awq_st_get(st, i);
            if (awq_st_find(st, t->name) != t) abort(); /* the name index must find every tensor */
            uint64_t es = awq_dtype_size(t->dtype);
            if (!es || t->nbytes > (1u << 20)) continue;
            float *buf = malloc((size_t)(t->nbytes / es) * sizeof(float) + 1);
            if (buf && awq_st_read_f32(rt, st, t, buf) == AWQ_OK) {
                volatile float sink = t->nbytes >= es ? buf[0] : 0.0f;
                (void)sink;
            }
            free(buf);
            awq_st_release(st, t);
        }
        awq_st_close(st);
    }
    close(fd);
    return 0;
}

#ifdef AWQ_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return awq_fuzz_safetensors(data, size); }
#endif
