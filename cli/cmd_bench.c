/* cmd_bench.c - `awq-cli bench MODEL_DIR`: prefill and decode speed, peak memory, bytes streamed
 * per decoded token against the machine's measured read bandwidth. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "args.h"
#include "bwprobe.h"
#include "cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: awq-cli bench MODEL_DIR [options]\n"
            "\n"
            "  -p, --prompt N     prefill length in tokens (default 512)\n"
            "  -n, --n-gen N      decoded tokens (default 64)\n"
            "  -r, --reps N       repetitions; the best is reported (default 3)\n"
            "      --parallel N   decode N sequences together (batched decoding, one forward\n"
            "                     pass per step); decode tok/s counts all N (default 1)\n"
            "      --backend B    auto | cpu | cpu-dnnl | opencl[:N] | cuda[:N]\n"
            "      --lm-head F    stored (default) | q8: the fp16 lm_head re-quantized to 8 bits\n"
            "                     at load (llama.cpp Q8_0; cpu and cpu-dnnl backends)\n"
            "      --precision P  fp32 (default, exact) | bf16: prefill GEMMs in bfloat16 with fp32\n"
            "                     accumulation where the backend has a bf16 unit (cpu-dnnl)\n"
            "      --int8-act     4-bit matmuls with int8 activations (VNNI / AVX2; cpu backends)\n"
            "  -t, --threads N    CPU threads\n"
            "      --json         JSON on stdout\n"
            "      --probe-bandwidth  re-run the read-bandwidth probe (otherwise cached in\n"
            "                     ~/.cache/awq/ per CPU model and thread count; also\n"
            "                     --remeasure-bw)\n"
            "      --no-bw        skip the bandwidth probe\n"
            "\n"
            "Token ids are pseudo-random (fixed seed); speed does not depend on them.\n"
            "Bytes/token: weights one decode step reads (packed W4 + scales/zeros, norms, the whole\n"
            "lm_head, one embedding row) divided by the sequences decoded together, plus the KV cache\n"
            "read at the mean decode position. %%BW: decode tok/s x bytes/token over the measured\n"
            "multi-threaded streaming-read bandwidth.\n");
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int cmd_bench(int argc, char **argv) {
    const char *dir = NULL, *backend = "auto";
    awq_lm_head_format lm_head = AWQ_LM_HEAD_AS_STORED;
    awq_precision prec = AWQ_PRECISION_FP32;
    bool int8_act = false;
    int64_t n_prompt = 512, n_gen = 64, reps = 3, threads = 0, par = 1;
    bool json = false, remeasure_bw = false, no_bw = false;
    cli_args a = {.argc = argc, .argv = argv, .cmd = "bench"};
    for (a.i = 1; a.i < argc; a.i++) {
        if (cli_flag(&a, "-h", "--help")) {
            usage(stdout);
            return 0;
        } else if (cli_flag(&a, "-v", "--verbose"))
            cli_verbosity++;
        else if (cli_flag(&a, NULL, "--json"))
            json = true;
        else if (cli_flag(&a, NULL, "--remeasure-bw") || cli_flag(&a, NULL, "--probe-bandwidth"))
            remeasure_bw = true;
        else if (cli_flag(&a, NULL, "--no-bw"))
            no_bw = true;
        else if (cli_opt(&a, NULL, "--backend", &backend)) {
        } else if (cli_opt_lm_head(&a, &lm_head)) {
        } else if (cli_opt_precision(&a, "--precision", &prec)) {
        } else if (cli_flag(&a, NULL, "--int8-act"))
            int8_act = true;
        else if (cli_opt_int(&a, "-p", "--prompt", 1, 1 << 20, &n_prompt)) {
        } else if (cli_opt_int(&a, "-n", "--n-gen", 0, 1 << 20, &n_gen)) {
        } else if (cli_opt_int(&a, "-r", "--reps", 1, 1000, &reps)) {
        } else if (cli_opt_int(&a, NULL, "--parallel", 1, 256, &par)) {
        } else if (cli_opt_int(&a, "-t", "--threads", 0, 4096, &threads)) {
        } else if (argv[a.i][0] == '-') {
            fprintf(stderr, "awq-cli bench: unknown option '%s'\n", argv[a.i]);
            return 2;
        } else if (!dir)
            dir = argv[a.i];
        else {
            fprintf(stderr, "awq-cli bench: unexpected argument '%s'\n", argv[a.i]);
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
    awq_model *model = NULL;
    awq_session *sess = NULL, *extra[256] = {NULL};
    int32_t *ids = NULL;
    float *logits = NULL;
    awq_runtime *rt = cli_runtime((int)threads);
    if (!rt) return 1;
    awq_model_params mp = awq_model_params_default();
    mp.device = backend;
    mp.lm_head = lm_head;
    mp.precision = prec;
    mp.int8_activations = int8_act;
    double tl = now_s();
    if ((st = awq_model_load(&model, rt, dir, &mp)) != AWQ_OK) {
        rc = cli_fail(rt, "bench", st);
        goto out;
    }
    tl = now_s() - tl;
    awq_model_info info;
    awq_model_get_info(model, &info);
    if (n_prompt + n_gen > info.max_ctx) {
        fprintf(stderr, "awq-cli bench: prompt + n-gen exceeds the model context %d\n", info.max_ctx);
        goto out;
    }
    if ((st = awq_session_create(&sess, model, (int32_t)(n_prompt + n_gen))) != AWQ_OK) {
        rc = cli_fail(rt, "bench", st);
        goto out;
    }
    extra[0] = sess;
    for (int64_t i = 1; i < par; i++)
        if ((st = awq_session_create(&extra[i], model, (int32_t)(n_prompt + n_gen))) != AWQ_OK) {
            rc = cli_fail(rt, "bench", st);
            goto out;
        }
    ids = malloc((size_t)n_prompt * sizeof *ids);
    logits = malloc((size_t)par * (size_t)info.vocab_size * sizeof *logits);
    if (!ids || !logits) goto out;
    uint64_t s = 0x9e3779b97f4a7c15ull;
    for (int64_t i = 0; i < n_prompt; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        ids[i] = (int32_t)(s % (uint64_t)info.vocab_size);
    }
    double best_pp = 0, best_tg = 0;
    for (int64_t r = 0; r < reps; r++) {
        awq_session_reset(sess);
        double t0 = now_s();
        if ((st = awq_session_eval(sess, ids, (int32_t)n_prompt, logits, false)) != AWQ_OK) {
            rc = cli_fail(rt, "bench", st);
            goto out;
        }
        double t1 = now_s();
        // the other sequences get the same prompt (not timed: prefill speed is per sequence)
        for (int64_t j = 1; j < par; j++) {
            awq_session_reset(extra[j]);
            if ((st = awq_session_eval(extra[j], ids, (int32_t)n_prompt, NULL, false)) != AWQ_OK) {
                rc = cli_fail(rt, "bench", st);
                goto out;
            }
        }
        double t1b = now_s();
        int32_t tok[256];
        for (int64_t j = 0; j < par; j++) tok[j] = ids[j % n_prompt];
        for (int64_t i = 0; i < n_gen; i++) {
            st = par == 1 ? awq_session_eval(sess, tok, 1, logits, false)
                          : awq_session_decode_batch(extra, (int32_t)par, tok, logits);
            if (st != AWQ_OK) {
                rc = cli_fail(rt, "bench", st);
                goto out;
            }
            for (int64_t j = 0; j < par; j++) tok[j] = (tok[j] * 31 + 7) % info.vocab_size;
        }
        double t2 = now_s();
        double pp = n_prompt / (t1 - t0), tg = n_gen ? (double)(n_gen * par) / (t2 - t1b) : 0;
        best_pp = pp > best_pp ? pp : best_pp;
        best_tg = tg > best_tg ? tg : best_tg;
        if (!json)
            fprintf(stderr, "rep %lld: prefill %.1f tok/s, decode %.2f tok/s (%lld sequence%s)\n",
                    (long long)r + 1, pp, tg, (long long)par, par > 1 ? "s" : "");
    }
    /* bytes streamed per decoded token and the fraction of the measured read bandwidth */
    double kv_pos = (double)n_prompt + (double)(n_gen + 1) / 2.0; /* mean positions read */
    double bytes_tok =
        (double)info.decode_weight_bytes / (double)par + kv_pos * (double)info.kv_bytes_per_pos;
    double bw = 0;
    bool bw_cached = false;
    char cpu[256] = "";
    int bw_threads = (int)threads;
    if (bw_threads <= 0) {
        cpu_set_t cs;
        bw_threads = sched_getaffinity(0, sizeof cs, &cs) == 0 ? CPU_COUNT(&cs) : 1;
    }
    if (!no_bw && strncmp(info.device, "cpu", 3) == 0) {
        bw = bwprobe_get(bw_threads, remeasure_bw, !json, cpu, sizeof cpu, &bw_cached);
    }
    double frac = bw > 0 ? best_tg * bytes_tok / bw : 0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double rss_gib = ru.ru_maxrss / 1048576.0;
    if (json)
        printf("{\"model\": \"%s\", \"device\": \"%s\", \"quantized\": %s, \"group_size\": %d, "
               "\"weight_bytes\": %lld, \"prompt\": %lld, \"n_gen\": %lld, \"prefill_tok_s\": %.2f, "
               "\"decode_tok_s\": %.3f, \"parallel\": %lld, \"load_s\": %.2f, \"peak_rss_gib\": %.3f, "
               "\"decode_bytes_per_token\": %.0f, \"read_bw_gb_s\": %.3f, \"bw_fraction\": %.4f, "
               "\"bw_threads\": %d, \"cpu\": \"%s\", \"lm_head\": \"%s\"}\n",
               dir, info.device, info.quantized ? "true" : "false", info.group_size,
               (long long)info.weight_bytes, (long long)n_prompt, (long long)n_gen, best_pp, best_tg,
               (long long)par, tl, rss_gib, bytes_tok, bw / 1e9, frac, bw_threads, cpu,
               lm_head == AWQ_LM_HEAD_Q8 ? "q8" : "stored");
    else
        printf("%s on %s (%s%s, %.1f MiB of weights): prefill %lld tokens %.1f tok/s | decode %lld "
               "tokens x %lld sequences %.2f tok/s | load %.2f s | peak RSS %.2f GiB\n",
               dir, info.device, info.quantized ? "AWQ 4-bit" : "fp",
               lm_head == AWQ_LM_HEAD_Q8 ? ", lm_head q8" : "", info.weight_bytes / 1048576.0,
               (long long)n_prompt, best_pp, (long long)n_gen, (long long)par, best_tg, tl, rss_gib);
    if (!json) {
        printf("decode streams %.1f MB/token (weights %.1f MB per step / %lld, KV %.1f MB)", bytes_tok / 1e6,
               info.decode_weight_bytes / 1e6, (long long)par, kv_pos * (double)info.kv_bytes_per_pos / 1e6);
        if (bw > 0)
            printf(" = %.1f GB/s, %.0f%% of the measured read bandwidth %.1f GB/s (%s, %d threads%s)\n",
                   best_tg * bytes_tok / 1e9, 100 * frac, bw / 1e9, cpu, bw_threads,
                   bw_cached ? ", cached; --probe-bandwidth to re-run" : "");
        else
            printf("\n");
    }
    rc = 0;
out:
    free(ids);
    free(logits);
    for (int64_t j = 1; j < par; j++) awq_session_destroy(extra[j]);
    awq_session_destroy(sess);
    awq_model_destroy(model);
    awq_runtime_destroy(rt);
    return rc;
}
