/*
 * cmd_chat.c - `awq-cli chat`: an interactive terminal chat.
 *
 * Line editing and history through libedit (Debian's libedit-dev, BSD-licensed, readline-
 * compatible interface). Each turn renders the whole conversation with the model's chat
 * template, evaluates only the tokens that are new since the last turn (the KV cache keeps the
 * rest), and streams the answer. Ctrl-C stops the answer being written (it stays in the
 * conversation as far as it got) and not the program; Ctrl-D on an empty line exits.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <editline/readline.h>

#include "args.h"
#include "cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: awq-cli chat MODEL_DIR [options]\n"
            "\n"
            "  --system TEXT          system message\n"
            "  -n, --n-predict N      longest answer in tokens (default 1024)\n"
            "  -c, --ctx N            context size (default min(model, 4096))\n"
            "      --temp T           temperature, 0 = greedy (default 0.8)\n"
            "      --top-k K          top-k, 0 = off (default 40)\n"
            "      --top-p P          top-p, 1 = off (default 0.95)\n"
            "      --min-p P          min-p, 0 = off (default 0)\n"
            "      --repeat-penalty R repetition penalty, 1 = off (default 1)\n"
            "      --seed S           sampler seed\n"
            "      --backend B        auto | cpu | cpu-dnnl | opencl[:N] | cuda[:N]\n"
            "      --lm-head F        stored (default) | q8: the fp16 lm_head re-quantized to 8\n"
            "                         bits at load (llama.cpp Q8_0; cpu and cpu-dnnl backends)\n"
            "  -t, --threads N        CPU threads\n"
            "\n"
            "In the chat: /reset forgets the conversation, /system TEXT sets the system message\n"
            "(and resets), /quit exits. Ctrl-C stops the current answer, Ctrl-D exits.\n");
}

static volatile sig_atomic_t stop_answer = 0;

static void on_sigint(int sig) {
    (void)sig;
    stop_answer = 1;
}

typedef struct chat {
    awq_runtime *rt;
    awq_tokenizer *tok;
    awq_model *model;
    awq_session *sess;
    awq_sampler *smp;
    int32_t vocab, n_ctx;
    int64_t n_predict;
    awq_chat_message *msgs; /* (n_msgs,) contents owned */
    int32_t n_msgs, cap_msgs;
    char *system;
    int32_t *cached; /* (n_cached,) tokens in the session's cache */
    int32_t n_cached;
    float *logits; /* (vocab,) */
} chat;

static void clear_msgs(chat *c) {
    for (int32_t i = 0; i < c->n_msgs; i++) free((char *)c->msgs[i].content);
    c->n_msgs = 0;
    if (c->system) {
        c->msgs[0] = (awq_chat_message){"system", strdup(c->system)};
        c->n_msgs = 1;
    }
}

static bool add_msg(chat *c, const char *role, const char *text) {
    if (c->n_msgs == c->cap_msgs) {
        int32_t cap = c->cap_msgs ? c->cap_msgs * 2 : 16;
        awq_chat_message *m = realloc(c->msgs, (size_t)cap * sizeof *m);
        if (!m) return false;
        c->msgs = m;
        c->cap_msgs = cap;
    }
    char *t = strdup(text);
    if (!t) return false;
    c->msgs[c->n_msgs++] = (awq_chat_message){role, t};
    return true;
}

/* Renders the conversation, brings the cache up to date and streams one answer. */
static awq_status answer(chat *c) {
    char *text = NULL;
    awq_status st = awq_tokenizer_apply_chat(c->tok, c->msgs, c->n_msgs, true, &text);
    if (st != AWQ_OK) return st;
    int64_t n = 0;
    st = awq_tokenizer_encode(c->tok, text, strlen(text), false, NULL, 0, &n);
    int32_t *ids = st == AWQ_OK ? malloc((size_t)(n ? n : 1) * sizeof *ids) : NULL;
    if (ids) st = awq_tokenizer_encode(c->tok, text, strlen(text), false, ids, n, &n);
    awq_free(text);
    if (st != AWQ_OK || !ids) {
        free(ids);
        return st != AWQ_OK ? st : AWQ_ERR_OUT_OF_MEMORY;
    }
    if (n + 1 >= c->n_ctx) {
        fprintf(stderr, "[the conversation (%lld tokens) fills the context of %d: /reset to start over]\n",
                (long long)n, c->n_ctx);
        free(ids);
        free((char *)c->msgs[--c->n_msgs].content); /* the question that did not fit */
        return AWQ_OK;
    }
    // keep the cached prefix the new prompt shares, evaluate the rest
    int32_t keep = 0;
    while (keep < c->n_cached && keep < n - 1 && c->cached[keep] == ids[keep]) keep++;
    if ((st = awq_session_truncate(c->sess, keep)) == AWQ_OK)
        st = awq_session_eval(c->sess, ids + keep, (int32_t)(n - keep), c->logits, false);
    int32_t *cached = realloc(c->cached, (size_t)c->n_ctx * sizeof *cached);
    if (st != AWQ_OK || !cached) {
        free(ids);
        c->n_cached = 0;
        return st != AWQ_OK ? st : AWQ_ERR_OUT_OF_MEMORY;
    }
    c->cached = cached;
    memcpy(c->cached, ids, (size_t)n * sizeof *ids);
    c->n_cached = (int32_t)n;
    free(ids);

    awq_detok *dt = NULL;
    if ((st = awq_detok_create(&dt, c->tok, true)) != AWQ_OK) return st;
    size_t cap = 256, len = 0;
    char *reply = malloc(cap), piece[256];
    size_t plen;
    stop_answer = 0;
    bool interrupted = false, full = false;
    for (int64_t i = 0; reply && i < c->n_predict; i++) {
        if (stop_answer) {
            interrupted = true;
            break;
        }
        int32_t id = awq_sampler_sample(c->smp, c->logits, c->vocab);
        if (awq_tokenizer_is_eog(c->tok, id)) break;
        if (awq_detok_push(dt, id, piece, sizeof piece, &plen) == AWQ_OK && plen) {
            fwrite(piece, 1, plen, stdout);
            fflush(stdout);
            if (len + plen + 1 > cap) {
                char *r = realloc(reply, cap = 2 * (len + plen + 1));
                if (!r) break;
                reply = r;
            }
            memcpy(reply + len, piece, plen);
            len += plen;
        }
        if (c->n_cached + 1 >= c->n_ctx) {
            full = true;
            break;
        }
        if ((st = awq_session_eval(c->sess, &id, 1, c->logits, false)) != AWQ_OK) break;
        c->cached[c->n_cached++] = id;
    }
    if (awq_detok_flush(dt, piece, sizeof piece, &plen) == AWQ_OK && plen && reply && len + plen + 1 <= cap) {
        fwrite(piece, 1, plen, stdout);
        memcpy(reply + len, piece, plen);
        len += plen;
    }
    awq_detok_destroy(dt);
    if (reply) {
        reply[len] = '\0';
        add_msg(c, "assistant", reply);
    }
    free(reply);
    fputs(interrupted ? " [stopped]\n" : "\n", stdout);
    if (full) fprintf(stderr, "[context full (%d tokens): /reset to start over]\n", c->n_ctx);
    fflush(stdout);
    stop_answer = 0;
    return st;
}

int cmd_chat(int argc, char **argv) {
    const char *dir = NULL, *backend = "auto", *system_msg = NULL;
    awq_lm_head_format lm_head = AWQ_LM_HEAD_AS_STORED;
    int64_t n_predict = 1024, ctx = 0, threads = 0, top_k = 40;
    double temp = 0.8, top_p = 0.95, min_p = 0, rep = 1;
    uint64_t seed = 0x5eed;
    cli_args a = {.argc = argc, .argv = argv, .cmd = "chat"};
    for (a.i = 1; a.i < argc; a.i++) {
        if (cli_flag(&a, "-h", "--help")) {
            usage(stdout);
            return 0;
        } else if (cli_flag(&a, "-v", "--verbose"))
            cli_verbosity++;
        else if (cli_opt(&a, NULL, "--system", &system_msg)) {
        } else if (cli_opt(&a, NULL, "--backend", &backend)) {
        } else if (cli_opt_lm_head(&a, &lm_head)) {
        } else if (cli_opt_int(&a, "-n", "--n-predict", 1, 1 << 20, &n_predict)) {
        } else if (cli_opt_int(&a, "-c", "--ctx", 0, 1 << 22, &ctx)) {
        } else if (cli_opt_int(&a, "-t", "--threads", 0, 4096, &threads)) {
        } else if (cli_opt_int(&a, NULL, "--top-k", 0, 1 << 24, &top_k)) {
        } else if (cli_opt_float(&a, NULL, "--temp", 0, 100, &temp)) {
        } else if (cli_opt_float(&a, NULL, "--top-p", 0, 1, &top_p)) {
        } else if (cli_opt_float(&a, NULL, "--min-p", 0, 1, &min_p)) {
        } else if (cli_opt_float(&a, NULL, "--repeat-penalty", 0.01, 100, &rep)) {
        } else if (cli_opt_u64(&a, NULL, "--seed", &seed)) {
        } else if (argv[a.i][0] == '-') {
            fprintf(stderr, "awq-cli chat: unknown option '%s'\n", argv[a.i]);
            return 2;
        } else if (!dir)
            dir = argv[a.i];
        else {
            fprintf(stderr, "awq-cli chat: unexpected argument '%s'\n", argv[a.i]);
            return 2;
        }
        if (a.error) return 2;
    }
    if (!dir) {
        usage(stderr);
        return 2;
    }

    int rc = 1;
    awq_status st;
    chat c = {.n_predict = n_predict};
    c.rt = cli_runtime((int)threads);
    if (!c.rt) return 1;
    awq_model_params mp = awq_model_params_default();
    mp.device = backend;
    mp.lm_head = lm_head;
    if ((st = awq_tokenizer_load(&c.tok, c.rt, dir)) != AWQ_OK ||
        (st = awq_model_load(&c.model, c.rt, dir, &mp)) != AWQ_OK) {
        rc = cli_fail(c.rt, "chat", st);
        goto out;
    }
    awq_model_info info;
    awq_model_get_info(c.model, &info);
    c.vocab = info.vocab_size;
    c.n_ctx = ctx > 0 ? (int32_t)ctx : (info.max_ctx < 4096 ? info.max_ctx : 4096);
    awq_sampler_params sp = awq_sampler_params_default();
    sp.temperature = (float)temp;
    sp.top_k = (int32_t)top_k;
    sp.top_p = (float)top_p;
    sp.min_p = (float)min_p;
    sp.repeat_penalty = (float)rep;
    sp.seed = seed;
    c.logits = malloc((size_t)c.vocab * sizeof *c.logits);
    c.msgs = calloc(16, sizeof *c.msgs);
    c.cap_msgs = 16;
    if (!c.logits || !c.msgs) goto out;
    if ((st = awq_session_create(&c.sess, c.model, c.n_ctx)) != AWQ_OK ||
        (st = awq_sampler_create(&c.smp, &sp)) != AWQ_OK) {
        rc = cli_fail(c.rt, "chat", st);
        goto out;
    }
    // the template must work before the first question
    char *probe = NULL;
    awq_chat_message pm = {"user", "hi"};
    if ((st = awq_tokenizer_apply_chat(c.tok, &pm, 1, true, &probe)) != AWQ_OK) {
        rc = cli_fail(c.rt, "chat", st);
        goto out;
    }
    awq_free(probe);
    if (system_msg) c.system = strdup(system_msg);
    clear_msgs(&c);

    // Ctrl-C sets a flag (no SA_RESTART: a blocked read returns); libedit must not take it over
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);
    rl_catch_signals = 0;
    using_history();
    bool tty = isatty(STDIN_FILENO);
    fprintf(stderr,
            "awq-cli chat: %s (%s, %s on %s, context %d)\n"
            "/reset forgets the conversation, /system TEXT sets the system message, /quit exits;\n"
            "Ctrl-C stops an answer, Ctrl-D exits.\n",
            dir, info.arch, info.quantized ? "AWQ 4-bit" : "fp", info.device, c.n_ctx);
    for (;;) {
        stop_answer = 0;
        errno = 0;
        char *line = readline(tty ? "> " : "");
        if (!line) {
            if (stop_answer || errno == EINTR) { // Ctrl-C at the prompt: a fresh line
                fputs("\n", stdout);
                continue;
            }
            fputs("\n", stdout);
            break; // Ctrl-D
        }
        char *s = line;
        while (*s == ' ' || *s == '\t') s++;
        size_t n = strlen(s);
        while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
            s[--n] = '\0';
        if (!*s) {
            free(line);
            continue;
        }
        add_history(s);
        if (!strcmp(s, "/quit") || !strcmp(s, "/exit")) {
            free(line);
            break;
        }
        if (!strcmp(s, "/reset")) {
            clear_msgs(&c);
            awq_sampler_reset(c.smp);
            printf("[conversation reset]\n");
        } else if (!strncmp(s, "/system", 7) && (s[7] == ' ' || s[7] == '\0')) {
            const char *t = s + 7;
            while (*t == ' ') t++;
            free(c.system);
            c.system = *t ? strdup(t) : NULL;
            clear_msgs(&c);
            awq_sampler_reset(c.smp);
            printf(*t ? "[system message set; conversation reset]\n"
                      : "[system message cleared; conversation reset]\n");
        } else if (s[0] == '/' && strncmp(s, "//", 2)) {
            printf("[unknown command %s: /reset, /system TEXT, /quit]\n", s);
        } else {
            if (!add_msg(&c, "user", s[0] == '/' ? s + 1 : s)) {
                free(line);
                goto out;
            }
            if ((st = answer(&c)) != AWQ_OK) {
                cli_fail(c.rt, "chat", st);
                c.n_msgs--; /* forget the question that failed */
                free((char *)c.msgs[c.n_msgs].content);
            }
        }
        fflush(stdout);
        free(line);
    }
    rc = 0;
out:
    for (int32_t i = 0; i < c.n_msgs; i++) free((char *)c.msgs[i].content);
    free(c.msgs);
    free(c.system);
    free(c.cached);
    free(c.logits);
    awq_sampler_destroy(c.smp);
    awq_session_destroy(c.sess);
    awq_model_destroy(c.model);
    awq_tokenizer_destroy(c.tok);
    awq_runtime_destroy(c.rt);
    return rc;
}
