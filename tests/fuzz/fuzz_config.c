/* fuzz_config.c - config.json: JSON parsing, then the model configuration (architectures,
 * dimensions, heads, RoPE scaling, quantization_config, ...) and the RoPE inverse frequencies
 * derived from it. */
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "fuzz.h"
#include "json.h"

int awq_fuzz_config(const uint8_t *data, size_t size) {
    awq_runtime *rt = awq_fuzz_runtime();
    cJSON *root = NULL;
    if (awq_json_parse(rt, "config.json", (const char *)data, size, &root) != AWQ_OK) return 0;
    awq_model_config *c = calloc(1, sizeof *c);
    if (c && awq_config_parse(rt, root, "config.json", c) == AWQ_OK) {
        if (c->head_dim > 0 && c->head_dim <= 8192) {
            float *inv = malloc((size_t)(c->head_dim / 2 + 1) * sizeof *inv);
            if (inv) awq_config_inv_freq(c, inv);
            free(inv);
        }
        (void)awq_config_is_excluded(c, "model.layers.0.mlp.down_proj");
    }
    free(c);
    cJSON_Delete(root);
    return 0;
}

#ifdef AWQ_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return awq_fuzz_config(data, size); }
#endif
