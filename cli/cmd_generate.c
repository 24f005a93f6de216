/* cmd_generate.c - `awq-cli generate`: prompt -> tokens -> prefill -> sample loop, streamed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "args.h"
#include "cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: awq-cli generate MODEL_DIR -p PROMPT [options]\n"
            "\n"
            "  -p, --prompt TEXT   the prompt (or -f FILE)\n"
            "  -f, --file FILE     read the prompt from a file\n"
            "  -n, --n-predict N   tokens to generate (default 128)\n"
            "      --temp T        temperature, 0 = greedy (default 0.8)\n"
            "      --top-k K       top-k, 0 = off (default 40)\n"
            "      --top-p P       top-p, 1 = off (default 0.95)\n"
            "      --seed S        sampler seed (default 0x5eed)\n"
            "      --min-p P       min-p, 0 = off (default 0)\n"
            "      --repeat-penalty R      repetition penalty, 1 = off (default 1)\n"
            "      --frequency-penalty F   OpenAI frequency penalty, 0 = off (default 0)\n"
            "      --presence-penalty P    OpenAI presence penalty, 0 = off (default 0)\n"
            "      --repeat-last-n N       tokens the penalties look back on, 0 = all (default 64)\n"
            "      --stop TEXT     stop before TEXT (repeatable, up to 8)\n"
            "      --chat          format the prompt as a user message with the chat template\n"
            "      --system TEXT   system message for --chat\n"
            "  -c, --ctx N         context size (default: prompt + n-predict)\n"
            "      --backend B     auto | cpu | cpu-dnnl | opencl[:N] | cuda[:N] (default auto)\n"
            "      --lm-head F     stored (default) | q8: the fp16 lm_head re-quantized to 8 bits\n"
            "                      at load (llama.cpp Q8_0; cpu and cpu-dnnl backends)\n"
            "      --precision P   fp32 (default, exact) | bf16: prefill GEMMs in bfloat16 with\n"
            "                      fp32 accumulation where the backend has a bf16 unit (cpu-dnnl)\n"
            "      --int8-act      4-bit matmuls with int8 activations (VNNI / AVX2; cpu backends)\n"
            "  -t, --threads N     CPU threads (default: all cores)\n"
            "  -v, --verbose       more log output\n"
            "\n"
            "Generated text goes to stdout as it is produced; speed statistics go to stderr.\n");
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static char *read_all(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t r;
    while (buf && (r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (cap - n < 2) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                buf = NULL;
            } else
                buf = nb;
        }
    }
    fclose(f);
    if (buf) buf[n] = '\0';
    return buf;
}

int cmd_generate(int argc, char **argv) {
    const char *dir = NULL, *prompt = NULL, *file = NULL, *backend = "auto", *system_msg = NULL;
    awq_lm_head_format lm_head = AWQ_LM_HEAD_AS_STORED;
    awq_precision prec = AWQ_PRECISION_FP32;
    bool int8_act = false;
    int64_t n_predict = 128, ctx = 0, threads = 0;
    double temp = 0.8, top_p = 0.95;
    int64_t top_k = 40;
    uint64_t seed = 0x5eed;
    bool chat = false;
    double min_p = 0, rep_pen = 1, freq_pen = 0, pres_pen = 0;
    int64_t last_n = 64;
    const char *stops[8];
    int n_stops = 0;
    cli_args a = {.argc = argc, .argv = argv, .cmd = "generate"};
    for (a.i = 1; a.i < argc; a.i++) {
        if (cli_flag(&a, "-h", "--help")) {
            usage(stdout);
            return 0;
        } else if (cli_flag(&a, "-v", "--verbose"))
            cli_verbosity++;
        else if (cli_flag(&a, NULL, "--chat"))
            chat = true;
        else if (cli_opt(&a, "-p", "--prompt", &prompt)) {
        } else if (cli_opt(&a, "-f", "--file", &file)) {
        } else if (cli_opt(&a, NULL, "--system", &system_msg)) {
        } else if (cli_opt(&a, NULL, "--backend", &backend)) {
        } else if (cli_opt_lm_head(&a, &lm_head)) {
        } else if (cli_opt_precision(&a, "--precision", &prec)) {
        } else if (cli_flag(&a, NULL, "--int8-act"))
            int8_act = true;
        else if (cli_opt_int(&a, "-n", "--n-predict", 0, 1 << 20, &n_predict)) {
        } else if (cli_opt_int(&a, "-c", "--ctx", 0, 1 << 22, &ctx)) {
        } else if (cli_opt_int(&a, "-t", "--threads", 0, 4096, &threads)) {
        } else if (cli_opt_int(&a, NULL, "--top-k", 0, 1 << 24, &top_k)) {
        } else if (cli_opt_float(&a, NULL, "--temp", 0, 100, &temp)) {
        } else if (cli_opt_float(&a, NULL, "--top-p", 0, 1, &top_p)) {
        } else if (cli_opt_u64(&a, NULL, "--seed", &seed)) {
        } else if (cli_opt_float(&a, NULL, "--min-p", 0, 1, &min_p)) {
        } else if (cli_opt_float(&a, NULL, "--repeat-penalty", 0.01, 100, &rep_pen)) {
        } else if (cli_opt_float(&a, NULL, "--frequency-penalty", -2, 2, &freq_pen)) {
        } else if (cli_opt_float(&a, NULL, "--presence-penalty", -2, 2, &pres_pen)) {
        } else if (cli_opt_int(&a, NULL, "--repeat-last-n", 0, 1 << 24, &last_n)) {
        } else if (cli_opt(&a, NULL, "--stop", &stops[n_stops < 8 ? n_stops : 7])) {
            if (n_stops == 8) {
                fprintf(stderr, "awq-cli generate: at most 8 --stop strings\n");
                return 2;
            }
            n_stops++;
        } else if (argv[a.i][0] == '-' && argv[a.i][1]) {
            fprintf(stderr, "awq-cli generate: unknown option '%s'\n", argv[a.i]);
            return 2;
        } else if (!dir)
            dir = argv[a.i];
        else {
            fprintf(stderr, "awq-cli generate: unexpected argument '%s'\n", argv[a.i]);
            return 2;
        }
        if (a.error) return 2;
    }
    if (!dir || (!prompt && !file)) {
        usage(stderr);
        return 2;
    }
    char *prompt_buf = NULL;
    if (file) {
        prompt_buf = read_all(file);
        if (!prompt_buf) {
            fprintf(stderr, "awq-cli generate: cannot read prompt file '%s'\n", file);
            return 1;
        }
        prompt = prompt_buf;
    }

    int rc = 1;
    awq_status st;
    awq_tokenizer *tok = NULL;
    awq_model *model = NULL;
    awq_session *sess = NULL;
    awq_sampler *smp = NULL;
    awq_detok *dt = NULL;
    awq_stop *stop = NULL;
    int32_t *ids = NULL;
    float *logits = NULL;
    char *chat_text = NULL;
    awq_runtime *rt = cli_runtime((int)threads);
    if (!rt) goto out;
    if ((st = awq_tokenizer_load(&tok, rt, dir)) != AWQ_OK) {
        rc = cli_fail(rt, "generate", st);
        goto out;
    }
    awq_model_params mp = awq_model_params_default();
    mp.device = backend;
    mp.lm_head = lm_head;
    mp.precision = prec;
    mp.int8_activations = int8_act;
    if ((st = awq_model_load(&model, rt, dir, &mp)) != AWQ_OK) {
        rc = cli_fail(rt, "generate", st);
        goto out;
    }
    awq_model_info info;
    awq_model_get_info(model, &info);

    const char *text = prompt;
    bool add_special = true;
    if (chat) {
        awq_chat_message msgs[2];
        int32_t nm = 0;
        if (system_msg) msgs[nm++] = (awq_chat_message){"system", system_msg};
        msgs[nm++] = (awq_chat_message){"user", prompt};
        if ((st = awq_tokenizer_apply_chat(tok, msgs, nm, true, &chat_text)) != AWQ_OK) {
            rc = cli_fail(rt, "generate", st);
            goto out;
        }
        text = chat_text;
        add_special = false; /* the template writes its own BOS, as HF apply_chat_template does */
    }
    int64_t n_prompt = 0;
    if ((st = awq_tokenizer_encode(tok, text, strlen(text), add_special, NULL, 0, &n_prompt)) != AWQ_OK) {
        rc = cli_fail(rt, "generate", st);
        goto out;
    }
    ids = malloc((size_t)(n_prompt + 1) * sizeof *ids);
    logits = malloc((size_t)info.vocab_size * sizeof *logits);
    if (!ids || !logits) {
        fprintf(stderr, "awq-cli generate: out of memory\n");
        goto out;
    }
    if ((st = awq_tokenizer_encode(tok, text, strlen(text), add_special, ids, n_prompt, &n_prompt)) !=
        AWQ_OK) {
        rc = cli_fail(rt, "generate", st);
        goto out;
    }
    if (n_prompt == 0) {
        fprintf(stderr, "awq-cli generate: the prompt is empty\n");
        goto out;
    }
    int64_t n_ctx = ctx > 0 ? ctx : n_prompt + n_predict;
    if (n_ctx > info.max_ctx) n_ctx = info.max_ctx;
    if (n_prompt + 1 > n_ctx) {
        fprintf(stderr, "awq-cli generate: the prompt has %lld tokens, the context only %lld\n",
                (long long)n_prompt, (long long)n_ctx);
        goto out;
    }
    if ((st = awq_session_create(&sess, model, (int32_t)n_ctx)) != AWQ_OK) {
        rc = cli_fail(rt, "generate", st);
        goto out;
    }
    awq_sampler_params sp = awq_sampler_params_default();
    sp.temperature = (float)temp;
    sp.top_k = (int32_t)top_k;
    sp.top_p = (float)top_p;
    sp.seed = seed;
    sp.min_p = (float)min_p;
    sp.repeat_penalty = (float)rep_pen;
    sp.frequency_penalty = (float)freq_pen;
    sp.presence_penalty = (float)pres_pen;
    sp.penalty_last_n = (int32_t)last_n;
    if ((st = awq_sampler_create(&smp, &sp)) != AWQ_OK || (st = awq_detok_create(&dt, tok, true)) != AWQ_OK ||
        (st = awq_stop_create(&stop, stops, n_stops)) != AWQ_OK) {
        rc = cli_fail(rt, "generate", st);
        goto out;
    }
    if (!chat) {
        fputs(prompt, stdout);
        fflush(stdout);
    }

    double t0 = now_s();
    if ((st = awq_session_eval(sess, ids, (int32_t)n_prompt, logits, false)) != AWQ_OK) {
        rc = cli_fail(rt, "generate", st);
        goto out;
    }
    double t1 = now_s();
    int64_t n_gen = 0;
    char piece[512];
    size_t plen, olen;
    const char *out_text;
    bool stopped = false;
    for (; n_gen < n_predict && awq_session_n_past(sess) < n_ctx;) {
        int32_t id = awq_sampler_sample(smp, logits, info.vocab_size);
        n_gen++;
        if (awq_tokenizer_is_eog(tok, id)) break;
        if (awq_detok_push(dt, id, piece, sizeof piece, &plen) == AWQ_OK && plen &&
            awq_stop_push(stop, piece, plen, &out_text, &olen, &stopped) == AWQ_OK && olen) {
            fwrite(out_text, 1, olen, stdout);
            fflush(stdout);
        }
        if (stopped) break;
        if (n_gen >= n_predict || awq_session_n_past(sess) >= n_ctx) break;
        if ((st = awq_session_eval(sess, &id, 1, logits, false)) != AWQ_OK) {
            rc = cli_fail(rt, "generate", st);
            goto out;
        }
    }
    if (!stopped && awq_detok_flush(dt, piece, sizeof piece, &plen) == AWQ_OK && plen &&
        awq_stop_push(stop, piece, plen, &out_text, &olen, &stopped) == AWQ_OK && olen)
        fwrite(out_text, 1, olen, stdout);
    if (!stopped && awq_stop_flush(stop, &out_text, &olen) == AWQ_OK && olen)
        fwrite(out_text, 1, olen, stdout);
    fputc('\n', stdout);
    double t2 = now_s();
    fprintf(
        stderr,
        "\nawq-cli generate: %s on %s | prompt %lld tokens, %.1f tok/s | generated %lld tokens, %.1f tok/s\n",
        info.arch, info.device, (long long)n_prompt, n_prompt / (t1 - t0), (long long)n_gen,
        n_gen > 1 ? (n_gen - 1) / (t2 - t1) : 0.0);
    rc = 0;
out:
    awq_detok_destroy(dt);
    awq_stop_destroy(stop);
    awq_sampler_destroy(smp);
    awq_session_destroy(sess);
    awq_model_destroy(model);
    awq_tokenizer_destroy(tok);
    awq_free(chat_text);
    awq_runtime_destroy(rt);
    free(ids);
    free(logits);
    free(prompt_buf);
    return rc;
}
