/* fuzz_server_request.c - `awq-cli serve`'s request handling without HTTP or a model: the input
 * is the body of a POST, parsed (cJSON) and turned into a request (cli/serve_request.c) once as
 * /v1/chat/completions and once as /v1/completions. What a request then becomes on the server is
 * done as the scheduler does it, with a fixed template and the tiny test tokenizer in place of a
 * model's: the messages rendered by the chat-template engine, the text tokenized, the sampler
 * created from the request's parameters and the text streamed through the request's stop
 * strings. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "serve_request.h"
#include "tokenizer.h"
#include "jinja.h"

#ifndef AWQ_TEST_SOURCE_DIR
#define AWQ_TEST_SOURCE_DIR "."
#endif

/* ChatML with a leading system message, the roles it knows and an error for the others. */
static const char TEMPLATE[] =
    "{%- if messages[0]['role'] == 'system' -%}{%- set sys = messages[0]['content'] -%}"
    "{%- set loop_messages = messages[1:] -%}{%- else -%}{%- set sys = '' -%}"
    "{%- set loop_messages = messages -%}{%- endif -%}{{ bos_token }}"
    "{%- if sys %}<|im_start|>system\n{{ sys | trim }}<|im_end|>\n{% endif -%}"
    "{%- for m in loop_messages -%}"
    "{%- if m['role'] not in ['user', 'assistant', 'tool'] -%}"
    "{{ raise_exception('unknown role: ' ~ m['role']) }}{%- endif -%}"
    "<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{%- endfor -%}{%- if add_generation_prompt %}<|im_start|>assistant\n{% endif -%}";

static awq_tokenizer *tiny_tokenizer(awq_runtime *rt) {
    static awq_tokenizer *tok; /* loaded once, kept for every input */
    static bool tried;
    if (!tried) {
        tried = true;
        const char *src = getenv("AWQ_SOURCE_DIR") ? getenv("AWQ_SOURCE_DIR") : AWQ_TEST_SOURCE_DIR;
        char path[1024];
        snprintf(path, sizeof path, "%s/tests/data/tiny/gemma/tokenizer.json", src);
        if (awq_tokenizer_load_files(rt, path, NULL, &tok) != AWQ_OK) tok = NULL;
    }
    return tok;
}

/* AWQ_FUZZ_VERBOSE (test_fuzz_replay): what each request became */
static bool verbose(void) {
    static int v = -1;
    if (v < 0) v = getenv("AWQ_FUZZ_VERBOSE") != NULL;
    return v;
}

/* The request's text through the tokenizer, the sampler and the stop strings. */
static void use_request(awq_runtime *rt, const serve_req *q) {
    char *text = NULL;
    const char *src = q->prompt;
    if (q->chat) {
        jinja_limits lim = {.max_loop_iterations = 100000,
                            .max_depth = 128,
                            .max_output_bytes = 4 << 20,
                            .max_seconds = 1.0,
                            .max_memory_bytes = 64 << 20};
        jinja_vars v = {.bos_token = "<bos>", .eos_token = "<eos>", .limits = &lim};
        awq_status st = awq_jinja_render_chat(rt, TEMPLATE, q->msgs, q->n_msgs, true, &v, &text);
        if (verbose())
            printf("      chat template: %s\n", st == AWQ_OK ? "rendered" : awq_runtime_last_error(rt));
        if (st != AWQ_OK) return;
        src = text;
    }
    awq_tokenizer *tok = tiny_tokenizer(rt);
    size_t len = strlen(src);
    int64_t n = 0;
    if (tok && awq_tokenizer_encode(tok, src, len, !q->chat, NULL, 0, &n) == AWQ_OK && n > 0 && n < 1000000) {
        int32_t *ids = malloc((size_t)n * sizeof *ids);
        if (ids) (void)awq_tokenizer_encode(tok, src, len, !q->chat, ids, n, &n);
        free(ids);
    }
    awq_sampler *smp = NULL;
    if (awq_sampler_create(&smp, &q->sp) == AWQ_OK) awq_sampler_destroy(smp);
    awq_stop *stop = NULL;
    if (awq_stop_create(&stop, (const char *const *)q->stops, q->n_stops) == AWQ_OK) {
        /* in pieces of 1, 2, 3, ... bytes, as detokenized text arrives */
        bool stopped = false;
        const char *out;
        size_t out_len, off = 0;
        for (size_t k = 1; off < len && !stopped; off += k, k++) {
            size_t m = len - off < k ? len - off : k;
            if (awq_stop_push(stop, src + off, m, &out, &out_len, &stopped) != AWQ_OK) break;
        }
        if (!stopped) (void)awq_stop_flush(stop, &out, &out_len);
        awq_stop_destroy(stop);
    }
    awq_free(text);
}

int awq_fuzz_server_request(const uint8_t *data, size_t size) {
    awq_runtime *rt = awq_fuzz_runtime();
    cJSON *body = cJSON_ParseWithLength((const char *)data, size);
    if (!body) return 0;
    for (int chat = 1; chat >= 0; chat--) {
        serve_req q;
        serve_err e = {{0}, NULL};
        serve_req_init(&q, chat);
        bool ok = serve_parse_request(body, 42, &q, &e);
        if (verbose())
            printf("      as %s: %s%s%s\n", chat ? "chat" : "completion", ok ? "accepted" : e.msg,
                   ok || !e.param ? "" : " param=", ok || !e.param ? "" : e.param);
        if (ok)
            use_request(rt, &q);
        else if (!e.msg[0])
            abort(); /* a refusal always says why */
        serve_req_free(&q);
    }
    cJSON_Delete(body);
    return 0;
}

#ifdef AWQ_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return awq_fuzz_server_request(data, size); }
#endif
