/* cmd_eval.c - `awq-cli eval MODEL_DIR --ppl FILE`: perplexity over non-overlapping windows, and
 * with --base the KL divergence and top-1 agreement against a base model (or its saved logits). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "args.h"
#include "cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: awq-cli eval MODEL_DIR --ppl FILE [options]\n"
            "\n"
            "  --ppl FILE         text file (e.g. wiki.test.raw) for perplexity\n"
            "  --ctx N            window length in tokens (default 2048)\n"
            "  --max-chunks N     evaluate only the first N windows (default: all)\n"
            "  --base DIR         also compare with this base model (e.g. the fp16 one): mean KL\n"
            "                     divergence KL(base || model), its median, 99th percentile and max,\n"
            "                     and top-1 agreement; both models run in one pass\n"
            "  --base-logits FILE the same from the base's saved log-probabilities instead\n"
            "  --save-logits FILE write this model's log-probabilities (fp16, (ctx-1) x vocab x 2\n"
            "                     bytes per window) as a later --base-logits FILE\n"
            "  --json             print the result as JSON on stdout\n"
            "  --backend B        auto | cpu | cpu-dnnl | opencl[:N] | cuda[:N]\n"
            "  --lm-head F        stored (default) | q8: the fp16 lm_head re-quantized to 8 bits\n"
            "                     at load (llama.cpp Q8_0; cpu and cpu-dnnl; --base stays stored)\n"
            "  --precision P      fp32 (default, exact) | bf16: large GEMMs in bfloat16 with fp32\n"
            "                     accumulation where the backend has a bf16 unit (cpu-dnnl)\n"
            "  --int8-act         4-bit matmuls with int8 activations (VNNI / AVX2; cpu backends)\n"
            "  -t, --threads N    CPU threads\n"
            "  -v, --verbose      more log output\n"
            "\n"
            "The text is tokenized once (with BOS if the tokenizer adds one), cut into\n"
            "non-overlapping windows of --ctx tokens, and the mean negative log-likelihood of\n"
            "every predicted token is reported as ppl = exp(mean NLL), as AutoAWQ does.\n"
            "KL divergence and agreement are over the same tokens (every predicted one).\n");
}

typedef struct progress_ctx {
    double t0;
    bool quiet;
} progress_ctx;

static bool on_chunk(int32_t chunk, int32_t n_chunks, double nll, int64_t n_pred, void *user) {
    progress_ctx *p = user;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double t = ts.tv_sec + ts.tv_nsec * 1e-9 - p->t0;
    if (!p->quiet)
        fprintf(stderr, "[%d/%d] ppl %.4f  (%.1f s, %.0f tok/s)\n", chunk + 1, n_chunks,
                exp(nll / (double)n_pred), t, (double)(n_pred + chunk + 1) / t);
    return true;
}

int cmd_eval(int argc, char **argv) {
    awq_lm_head_format lm_head = AWQ_LM_HEAD_AS_STORED;
    awq_precision prec = AWQ_PRECISION_FP32;
    bool int8_act = false;
    const char *dir = NULL, *file = NULL, *backend = "auto", *base_dir = NULL, *base_logits = NULL,
               *save_logits = NULL;
    int64_t ctx = 2048, max_chunks = 0, threads = 0;
    bool json = false;
    cli_args a = {.argc = argc, .argv = argv, .cmd = "eval"};
    for (a.i = 1; a.i < argc; a.i++) {
        if (cli_flag(&a, "-h", "--help")) {
            usage(stdout);
            return 0;
        } else if (cli_flag(&a, "-v", "--verbose"))
            cli_verbosity++;
        else if (cli_flag(&a, NULL, "--json"))
            json = true;
        else if (cli_opt(&a, NULL, "--ppl", &file)) {
        } else if (cli_opt(&a, NULL, "--base", &base_dir)) {
        } else if (cli_opt(&a, NULL, "--base-logits", &base_logits)) {
        } else if (cli_opt(&a, NULL, "--save-logits", &save_logits)) {
        } else if (cli_opt(&a, NULL, "--backend", &backend)) {
        } else if (cli_opt_lm_head(&a, &lm_head)) {
        } else if (cli_opt_precision(&a, "--precision", &prec)) {
        } else if (cli_flag(&a, NULL, "--int8-act"))
            int8_act = true;
        else if (cli_opt_int(&a, "-c", "--ctx", 2, 1 << 22, &ctx)) {
        } else if (cli_opt_int(&a, NULL, "--max-chunks", 0, 1 << 30, &max_chunks)) {
        } else if (cli_opt_int(&a, "-t", "--threads", 0, 4096, &threads)) {
        } else if (argv[a.i][0] == '-') {
            fprintf(stderr, "awq-cli eval: unknown option '%s'\n", argv[a.i]);
            return 2;
        } else if (!dir)
            dir = argv[a.i];
        else {
            fprintf(stderr, "awq-cli eval: unexpected argument '%s'\n", argv[a.i]);
            return 2;
        }
        if (a.error) return 2;
    }
    if (!dir || !file) {
        usage(stderr);
        return 2;
    }
    if ((base_dir != NULL) + (base_logits != NULL) + (save_logits != NULL) > 1) {
        fprintf(stderr, "awq-cli eval: --base, --base-logits and --save-logits exclude each other\n");
        return 2;
    }
    FILE *f = fopen(file, "rb");
    if (!f) {
        fprintf(stderr, "awq-cli eval: cannot open '%s'\n", file);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)len + 1);
    if (!text || fread(text, 1, (size_t)len, f) != (size_t)len) {
        fprintf(stderr, "awq-cli eval: cannot read '%s'\n", file);
        fclose(f);
        free(text);
        return 1;
    }
    fclose(f);
    text[len] = '\0';

    int rc = 1;
    awq_status st;
    awq_tokenizer *tok = NULL;
    awq_model *model = NULL, *base = NULL;
    awq_runtime *rt = cli_runtime((int)threads);
    if (!rt) goto out;
    if ((st = awq_tokenizer_load(&tok, rt, dir)) != AWQ_OK) {
        rc = cli_fail(rt, "eval", st);
        goto out;
    }
    awq_model_params mp = awq_model_params_default();
    mp.device = backend;
    mp.lm_head = lm_head;
    mp.precision = prec;
    mp.int8_activations = int8_act;
    if ((st = awq_model_load(&model, rt, dir, &mp)) != AWQ_OK) {
        rc = cli_fail(rt, "eval", st);
        goto out;
    }
    awq_model_info info;
    awq_model_get_info(model, &info);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    progress_ctx pc = {.t0 = ts.tv_sec + ts.tv_nsec * 1e-9, .quiet = cli_verbosity < 0};
    awq_ppl_result r;
    awq_kld_result k;
    bool kld = base_dir || base_logits;
    mp.lm_head = AWQ_LM_HEAD_AS_STORED; /* the base is the reference: as stored, fp32 */
    mp.precision = AWQ_PRECISION_FP32;
    mp.int8_activations = false;
    if (base_dir && (st = awq_model_load(&base, rt, base_dir, &mp)) != AWQ_OK) {
        rc = cli_fail(rt, "eval", st);
        goto out;
    }
    if (kld) {
        st = awq_eval_kld(model, base, base_logits, tok, text, (size_t)len, (int32_t)ctx, (int32_t)max_chunks,
                          on_chunk, &pc, &k);
        r = k.ppl;
    } else if (save_logits) {
        st = awq_eval_save_logits(model, tok, text, (size_t)len, (int32_t)ctx, (int32_t)max_chunks,
                                  save_logits, on_chunk, &pc, &r);
    } else {
        st = awq_eval_perplexity(model, tok, text, (size_t)len, (int32_t)ctx, (int32_t)max_chunks, on_chunk,
                                 &pc, &r);
    }
    if (st != AWQ_OK) {
        rc = cli_fail(rt, "eval", st);
        goto out;
    }
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double secs = ts.tv_sec + ts.tv_nsec * 1e-9 - pc.t0;
    if (json && kld) {
        printf("{\"model\": \"%s\", \"base\": \"%s\", \"device\": \"%s\", \"file\": \"%s\", "
               "\"ctx\": %lld, \"n_tokens\": %lld, \"n_chunks\": %d, \"n_pred\": %lld, \"ppl\": %.6f, "
               "\"base_ppl\": %.6f, \"kld_mean\": %.6f, \"kld_median\": %.6f, \"kld_p99\": %.6f, "
               "\"kld_max\": %.6f, \"top1_agree\": %.6f, \"seconds\": %.2f}\n",
               dir, base_dir ? base_dir : base_logits, info.device, file, (long long)ctx,
               (long long)r.n_tokens, r.n_chunks, (long long)r.n_pred, r.ppl, k.base_ppl.ppl, k.kld_mean,
               k.kld_median, k.kld_p99, k.kld_max, k.top1_agree, secs);
    } else if (kld) {
        printf(
            "perplexity: %.4f (base %.4f) over %d windows of %lld tokens (%lld predictions) in %.1f s on %s\n"
            "KL divergence from the base: mean %.6f, median %.6f, 99th percentile %.6f, max %.6f\n"
            "top-1 agreement: %.2f %%\n",
            r.ppl, k.base_ppl.ppl, r.n_chunks, (long long)ctx, (long long)r.n_pred, secs, info.device,
            k.kld_mean, k.kld_median, k.kld_p99, k.kld_max, 100.0 * k.top1_agree);
    } else if (json) {
        printf("{\"model\": \"%s\", \"device\": \"%s\", \"file\": \"%s\", \"ctx\": %lld, "
               "\"n_tokens\": %lld, \"n_chunks\": %d, \"n_pred\": %lld, \"nll_sum\": %.6f, "
               "\"ppl\": %.6f, \"seconds\": %.2f}\n",
               dir, info.device, file, (long long)ctx, (long long)r.n_tokens, r.n_chunks, (long long)r.n_pred,
               r.nll_sum, r.ppl, secs);
    } else {
        printf("perplexity: %.4f over %d windows of %lld tokens (%lld predictions, %lld tokens in file) in "
               "%.1f s on %s\n",
               r.ppl, r.n_chunks, (long long)ctx, (long long)r.n_pred, (long long)r.n_tokens, secs,
               info.device);
    }
    rc = 0;
out:
    awq_model_destroy(base);
    awq_model_destroy(model);
    awq_tokenizer_destroy(tok);
    awq_runtime_destroy(rt);
    free(text);
    return rc;
}
