/* fuzz_jinja.c - the chat-template engine on an arbitrary template (the input), rendered over a
 * small conversation with tight resource limits (so a slow input is a limit error, not a hang). */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "jinja.h"

int awq_fuzz_jinja(const uint8_t *data, size_t size) {
    awq_runtime *rt = awq_fuzz_runtime();
    char *tmpl = malloc(size + 1);
    if (!tmpl) return 0;
    if (size) memcpy(tmpl, data, size);
    tmpl[size] = '\0';
    static const awq_chat_message msgs[] = {
        {"system", "You are terse."},
        {"user", "Hi \xc3\xa9 there"},
        {"assistant", "Hello!"},
        {"user", "2+2?"},
    };
    jinja_limits lim = {.max_loop_iterations = 20000,
                        .max_depth = 128,
                        .max_output_bytes = 1 << 20,
                        .max_seconds = 1.0,
                        .max_memory_bytes = 64 << 20};
    jinja_vars v = {.bos_token = "<s>", .eos_token = "</s>", .limits = &lim};
    char *out = NULL;
    if (awq_jinja_render_chat(rt, tmpl, msgs, 4, size & 1, &v, &out) == AWQ_OK) awq_free(out);
    free(tmpl);
    return 0;
}

#ifdef AWQ_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return awq_fuzz_jinja(data, size); }
#endif
