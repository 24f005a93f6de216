/*
 * generate.c - load a model (fp16/bf16/fp32 or AWQ 4-bit) and stream generated text, through the
 * public API (awq.h) only.
 *
 *   awq-example-generate MODEL_DIR PROMPT [-n N] [--device D] [--temp T] [--chat]
 *
 * Shows: the backends and devices the runtime found (built-in cpu, plugins), the tokenizer
 * (plain prompt or the model's chat template), a session with its KV cache, a sampler, and
 * streaming through the incremental detokenizer so that multi-byte UTF-8 characters split
 * across tokens come out whole. Build: see examples/README.md.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <awq.h>

/* Prints the status and the runtime's detail of the last failure, returns the exit code. */
static int fail(awq_runtime *rt, const char *what, awq_status st) {
    fprintf(stderr, "%s: %s: %s\n", what, awq_status_str(st), awq_runtime_last_error(rt));
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr,
                "usage: awq-example-generate MODEL_DIR PROMPT [-n N] [--device D] "
                "[--temp T] [--chat]\n");
        return 2;
    }
    const char *dir = argv[1], *prompt = argv[2], *device = "auto";
    int n_predict = 32;
    float temp = 0.0f; /* greedy by default: the same text on every run */
    bool chat = false;
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
            n_predict = atoi(argv[++i]);
        else if (strcmp(argv[i], "--device") == 0 && i + 1 < argc)
            device = argv[++i];
        else if (strcmp(argv[i], "--temp") == 0 && i + 1 < argc)
            temp = (float)atof(argv[++i]);
        else if (strcmp(argv[i], "--chat") == 0)
            chat = true;
        else {
            fprintf(stderr, "unknown argument '%s'\n", argv[i]);
            return 2;
        }
    }

    /* Every handle starts NULL, so the single cleanup path below may destroy all of them:
     * awq_*_destroy(NULL) is a no-op. */
    int rc = 1;
    awq_status st;
    awq_runtime *rt = NULL;
    awq_tokenizer *tok = NULL;
    awq_model *model = NULL;
    awq_session *sess = NULL;
    awq_sampler *smp = NULL;
    awq_detok *dt = NULL;
    char *chat_prompt = NULL; /* owned by us, released with awq_free */
    int32_t *ids = NULL;
    float *logits = NULL;

    if ((st = awq_runtime_create(&rt, NULL)) != AWQ_OK) { /* NULL: default parameters */
        fprintf(stderr, "awq_runtime_create: %s\n", awq_status_str(st));
        return 1;
    }
    /* What was found: the built-in cpu backend, and every plugin that loaded (or why not). */
    for (int32_t i = 0; i < awq_runtime_device_count(rt); i++) {
        awq_device_desc d;
        if (awq_runtime_device_get(rt, i, &d) == AWQ_OK)
            fprintf(stderr, "device %s:%d  %s\n", d.backend, d.index, d.name);
    }
    for (int32_t i = 0; i < awq_runtime_skipped_count(rt); i++)
        fprintf(stderr, "skipped plugin %s\n", awq_runtime_skipped_get(rt, i));

    if ((st = awq_tokenizer_load(&tok, rt, dir)) != AWQ_OK) {
        rc = fail(rt, "tokenizer", st);
        goto out;
    }
    awq_model_params mp = awq_model_params_default();
    mp.device = device; /* "auto": a GPU if a plugin found one, else the best CPU backend */
    if ((st = awq_model_load(&model, rt, dir, &mp)) != AWQ_OK) {
        rc = fail(rt, "model", st);
        goto out;
    }
    awq_model_info info;
    if ((st = awq_model_get_info(model, &info)) != AWQ_OK) {
        rc = fail(rt, "model info", st);
        goto out;
    }
    fprintf(stderr, "model: %s, %d layers, %s, on %s\n", info.arch, info.n_layers,
            info.quantized ? "AWQ 4-bit" : "unquantized", info.device);

    /* With --chat the prompt becomes a user message rendered by the model's chat template; the
     * rendered text carries its own BOS, so it is encoded without adding special tokens. */
    const char *text = prompt;
    bool add_special = true;
    if (chat) {
        awq_chat_message msg = {"user", prompt};
        if ((st = awq_tokenizer_apply_chat(tok, &msg, 1, true, &chat_prompt)) != AWQ_OK) {
            rc = fail(rt, "chat template", st);
            goto out;
        }
        text = chat_prompt;
        add_special = false;
    }
    /* Query the token count first (ids = NULL), then fill. */
    int64_t n_prompt = 0;
    if ((st = awq_tokenizer_encode(tok, text, strlen(text), add_special, NULL, 0, &n_prompt)) != AWQ_OK) {
        rc = fail(rt, "encode", st);
        goto out;
    }
    ids = malloc((size_t)(n_prompt > 0 ? n_prompt : 1) * sizeof *ids);
    logits = malloc((size_t)info.vocab_size * sizeof *logits);
    if (!ids || !logits) {
        fprintf(stderr, "out of memory\n");
        goto out;
    }
    if ((st = awq_tokenizer_encode(tok, text, strlen(text), add_special, ids, n_prompt, &n_prompt)) !=
        AWQ_OK) {
        rc = fail(rt, "encode", st);
        goto out;
    }
    if (n_prompt == 0) {
        fprintf(stderr, "the prompt is empty\n");
        goto out;
    }

    /* One session = one token stream and its KV cache, sized for prompt + answer. */
    if ((st = awq_session_create(&sess, model, (int32_t)(n_prompt + n_predict))) != AWQ_OK) {
        rc = fail(rt, "session", st);
        goto out;
    }
    awq_sampler_params sp = awq_sampler_params_default();
    sp.temperature = temp;
    if ((st = awq_sampler_create(&smp, &sp)) != AWQ_OK || (st = awq_detok_create(&dt, tok, true)) != AWQ_OK) {
        rc = fail(rt, "sampler", st);
        goto out;
    }

    if (!chat) fputs(prompt, stdout);
    /* Prefill: the whole prompt in one call; logits receive the last position's (vocab,) row. */
    if ((st = awq_session_eval(sess, ids, (int32_t)n_prompt, logits, false)) != AWQ_OK) {
        rc = fail(rt, "eval", st);
        goto out;
    }
    char piece[256];
    size_t len;
    for (int i = 0; i < n_predict; i++) {
        int32_t id = awq_sampler_sample(smp, logits, info.vocab_size);
        if (awq_tokenizer_is_eog(tok, id)) break; /* EOS or an end-of-turn token */
        /* Only complete UTF-8 comes out; an incomplete character waits for the next token. */
        if (awq_detok_push(dt, id, piece, sizeof piece, &len) == AWQ_OK && len) {
            fwrite(piece, 1, len, stdout);
            fflush(stdout);
        }
        /* Decode: one token appended to the session, logits for the next. */
        if (i + 1 < n_predict && (st = awq_session_eval(sess, &id, 1, logits, false)) != AWQ_OK) {
            rc = fail(rt, "eval", st);
            goto out;
        }
    }
    if (awq_detok_flush(dt, piece, sizeof piece, &len) == AWQ_OK && len) fwrite(piece, 1, len, stdout);
    fputc('\n', stdout);
    rc = 0;
out:
    /* Reverse order of creation; every destroy accepts NULL. */
    awq_detok_destroy(dt);
    awq_sampler_destroy(smp);
    awq_session_destroy(sess);
    awq_model_destroy(model);
    awq_tokenizer_destroy(tok);
    awq_free(chat_prompt);
    awq_runtime_destroy(rt);
    free(ids);
    free(logits);
    return rc;
}
