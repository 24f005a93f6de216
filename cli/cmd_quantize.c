/* cmd_quantize.c - `awq-cli quantize`: flags -> awq_quant_params, a progress bar on stderr,
 * Ctrl-C stops cleanly (the library removes its temporary directory); a killed run is resumed
 * by the same command; --clean-stale lists and removes what killed runs left behind. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: awq-cli quantize MODEL_DIR OUT_DIR [options]\n"
            "       awq-cli quantize --clean-stale OUT_DIR\n"
            "\n"
            "AWQ 4-bit quantization of a Hugging Face checkpoint into the AutoAWQ format.\n"
            "The work happens in OUT_DIR.tmp-XXXXXX, which is renamed to OUT_DIR when complete.\n"
            "Every finished layer is recorded there: if the process is killed (crash, reboot,\n"
            "out of memory), running the same command again continues after the last finished\n"
            "layer, with an identical result. A rerun whose inputs differ (options, model files,\n"
            "calibration text, backend, awq version) is refused with the differences named.\n"
            "OUT_DIR/awq-manifest.json records the SHA-256 of every file (awq-cli verify OUT_DIR).\n"
            "\n"
            "  --w-bit 4               weight bits (only 4)\n"
            "  --group-size N          32, 64 or 128 (default 128)\n"
            "  --method awq|rtn        AWQ search (default) or plain round-to-nearest\n"
            "  --format gemm|gemv      AutoAWQ GEMM (default; vLLM/transformers) or GEMV layout\n"
            "  --calib FILE            .txt (blank-line separated paragraphs) or .jsonl ('text');\n"
            "                          default: the bundled WikiText-2 validation split\n"
            "  --calib-samples N       calibration samples (default 128)\n"
            "  --calib-seqlen N        block length and per-sample limit (default 512)\n"
            "  --seed S                shuffle the samples with seed S (default 0: file order)\n"
            "  --no-clip               skip the clipping search\n"
            "  --no-duo-scaling        activation-only scales (s = x^alpha)\n"
            "  --search-precision P    fp32 (default, exact) | bf16: the search's GEMMs in bfloat16\n"
            "                          with fp32 accumulation where the backend has a bf16 unit\n"
            "  --exclude PATTERN       keep linears whose name contains PATTERN in full precision\n"
            "                          (modules_to_not_convert; repeatable)\n"
            "  --backend B             auto | cpu | cpu-dnnl | opencl[:N] | cuda[:N]\n"
            "  -t, --threads N         CPU threads\n"
            "  --force                 replace OUT_DIR if it exists\n"
            "  --ignore-memory-limit   proceed even if the memory estimate exceeds free RAM\n"
            "  --no-resume             start over instead of continuing an interrupted run\n"
            "                          (removes its OUT_DIR.tmp-* directory)\n"
            "  --clean-stale           only list and remove the OUT_DIR.tmp-* directories that\n"
            "                          interrupted runs left (with their sizes), then exit\n"
            "  -v, --verbose           more log output, and the time per phase at the end\n");
}

typedef struct bar {
    double t0;
    bool tty;
    char last[128];
} bar;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void fmt_time(char *buf, size_t cap, double s) {
    if (s < 0 || s > 1e7) {
        snprintf(buf, cap, "--:--");
        return;
    }
    int t = (int)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, cap, "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, cap, "%02d:%02d", t / 60, t % 60);
}

static bool on_progress(float done, const char *stage, void *user) {
    bar *b = user;
    if (cli_interrupted()) return false;
    double el = now_s() - b->t0;
    double eta = done > 0.01f ? el * (1.0 - done) / done : -1;
    char e1[32], e2[32];
    fmt_time(e1, sizeof e1, el);
    fmt_time(e2, sizeof e2, eta);
    int width = 24, fill = (int)(done * width + 0.5f);
    char barbuf[32];
    for (int i = 0; i < width; i++) barbuf[i] = i < fill ? '#' : '.';
    barbuf[width] = '\0';
    if (b->tty) {
        fprintf(stderr, "\r[%s] %5.1f%%  %-44.44s  elapsed %s  ETA %s\033[K", barbuf, done * 100.0, stage, e1,
                e2);
    } else if (strncmp(stage, b->last, 12) != 0 || done >= 1.0f) {
        /* Not a terminal: one line per layer. */
        fprintf(stderr, "[%5.1f%%] %s  (elapsed %s, ETA %s)\n", done * 100.0, stage, e1, e2);
        snprintf(b->last, sizeof b->last, "%s", stage);
    }
    return true;
}

#define MAX_EXCLUDE 32

static void on_stale(const awq_stale_info *info, void *user) {
    double mib = info->bytes / 1048576.0;
    char what[96];
    if (info->resumable)
        snprintf(what, sizeof what, "%d/%d layers done", info->layers_done, info->n_layers);
    else
        snprintf(what, sizeof what, "not resumable");
    fprintf(stdout, "%s  %.1f MiB  %s  %s\n", info->path, mib, what,
            info->in_use        ? "in use by a running quantize: kept"
                : info->removed ? "removed"
                                : "could not be removed");
    (void)user;
}

static int clean_stale(const char *out_dir) {
    awq_runtime *rt = cli_runtime(0);
    if (!rt) return 1;
    int32_t n = 0;
    awq_status st = awq_quantize_stale(rt, out_dir, true, on_stale, NULL, &n);
    if (st != AWQ_OK) {
        int rc = cli_fail(rt, "quantize", st);
        awq_runtime_destroy(rt);
        return rc;
    }
    if (n == 0) fprintf(stdout, "no stale temporary directories of %s\n", out_dir);
    awq_runtime_destroy(rt);
    return 0;
}

int cmd_quantize(int argc, char **argv) {
    awq_quant_params p = awq_quant_params_default();
    const char *exclude[MAX_EXCLUDE + 1] = {0};
    int n_ex = 0;
    const char *method = "awq", *format = "gemm";
    int64_t wbit = 4, gs = 128, ns = 128, sl = 512, threads = 0;
    bool clean = false;
    cli_args a = {.argc = argc, .argv = argv, .cmd = "quantize"};
    for (a.i = 1; a.i < argc; a.i++) {
        const char *v;
        if (cli_flag(&a, "-h", "--help")) {
            usage(stdout);
            return 0;
        } else if (cli_flag(&a, "-v", "--verbose"))
            cli_verbosity++;
        else if (cli_flag(&a, NULL, "--no-clip"))
            p.clip = false;
        else if (cli_flag(&a, NULL, "--no-duo-scaling"))
            p.duo_scaling = false;
        else if (cli_opt_precision(&a, "--search-precision", &p.search_precision)) {
        } else if (cli_flag(&a, NULL, "--force"))
            p.force = true;
        else if (cli_flag(&a, NULL, "--ignore-memory-limit"))
            p.ignore_memory_limit = true;
        else if (cli_flag(&a, NULL, "--no-resume"))
            p.no_resume = true;
        else if (cli_flag(&a, NULL, "--clean-stale"))
            clean = true;
        else if (cli_opt_int(&a, NULL, "--w-bit", 1, 16, &wbit)) {
        } else if (cli_opt_int(&a, NULL, "--group-size", -1, 1 << 20, &gs)) {
        } else if (cli_opt_int(&a, NULL, "--calib-samples", 1, 1 << 24, &ns)) {
        } else if (cli_opt_int(&a, NULL, "--calib-seqlen", 1, 1 << 20, &sl)) {
        } else if (cli_opt_int(&a, "-t", "--threads", 0, 4096, &threads)) {
        } else if (cli_opt_u64(&a, NULL, "--seed", &p.seed)) {
        } else if (cli_opt(&a, NULL, "--method", &method)) {
        } else if (cli_opt(&a, NULL, "--format", &format)) {
        } else if (cli_opt(&a, NULL, "--calib", &p.calib_path)) {
        } else if (cli_opt(&a, NULL, "--backend", &p.device)) {
        } else if (cli_opt(&a, NULL, "--exclude", &v)) {
            if (v && n_ex < MAX_EXCLUDE) exclude[n_ex++] = v;
        } else if (argv[a.i][0] == '-') {
            fprintf(stderr, "awq-cli quantize: unknown option '%s'\n", argv[a.i]);
            return 2;
        } else if (!p.model_dir)
            p.model_dir = argv[a.i];
        else if (!p.out_dir)
            p.out_dir = argv[a.i];
        else {
            fprintf(stderr, "awq-cli quantize: unexpected argument '%s'\n", argv[a.i]);
            return 2;
        }
        if (a.error) return 2;
    }
    if (clean) {
        /* `--clean-stale OUT_DIR`: the one positional argument is OUT_DIR */
        const char *out = p.out_dir ? p.out_dir : p.model_dir;
        if (!out || (p.model_dir && p.out_dir)) {
            fprintf(stderr, "awq-cli quantize: --clean-stale takes one argument, OUT_DIR\n");
            return 2;
        }
        return clean_stale(out);
    }
    if (!p.model_dir || !p.out_dir) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(method, "awq"))
        p.method = AWQ_METHOD_AWQ;
    else if (!strcmp(method, "rtn"))
        p.method = AWQ_METHOD_RTN;
    else {
        fprintf(stderr, "awq-cli quantize: --method must be awq or rtn\n");
        return 2;
    }
    if (!strcmp(format, "gemm"))
        p.format = AWQ_FORMAT_GEMM;
    else if (!strcmp(format, "gemv"))
        p.format = AWQ_FORMAT_GEMV;
    else {
        fprintf(stderr, "awq-cli quantize: --format must be gemm or gemv\n");
        return 2;
    }
    p.w_bit = (int32_t)wbit;
    p.group_size = (int32_t)gs;
    p.calib_samples = (int32_t)ns;
    p.calib_seqlen = (int32_t)sl;
    p.exclude = n_ex ? exclude : NULL;

    cli_verbosity++; /* show the plan and calibration lines (INFO) by default */
    awq_runtime *rt = cli_runtime((int)threads);
    if (!rt) return 1;
    bar b = {.t0 = now_s(), .tty = isatty(2)};
    p.progress = on_progress;
    p.progress_user = &b;
    cli_catch_signals();
    awq_quant_report rep;
    awq_status st = awq_quantize(rt, &p, &rep);
    if (b.tty) fputc('\n', stderr);
    if (st == AWQ_ERR_CANCELLED || cli_interrupted()) {
        fprintf(stderr, "awq-cli quantize: interrupted; nothing was written to %s\n", p.out_dir);
        awq_runtime_destroy(rt);
        return 130;
    }
    if (st != AWQ_OK) {
        int rc = cli_fail(rt, "quantize", st);
        awq_runtime_destroy(rt);
        return rc;
    }
    fprintf(stderr,
            "awq-cli quantize: wrote %s (%d linears, %s, group size %d) in %.1f s; search %.2f TFLOP "
            "(%d calibration blocks); peak RSS %.2f GiB\n",
            p.out_dir, rep.n_linears, p.method == AWQ_METHOD_AWQ ? "AWQ" : "RTN", p.group_size, rep.seconds,
            rep.search_flops / 1e12, rep.n_blocks, rep.peak_rss_bytes / 1073741824.0);
    awq_runtime_destroy(rt);
    return 0;
}
