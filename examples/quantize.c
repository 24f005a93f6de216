/*
 * quantize.c - quantize a Hugging Face checkpoint to AWQ 4-bit through the public API (awq.h).
 *
 *   awq-example-quantize MODEL_DIR OUT_DIR [--rtn] [--group-size N] [--device D] [--cancel-at F]
 *
 * Shows: creating a runtime with a log callback, the pre-flight estimate, a progress callback
 * that draws a bar and cancels the work (Ctrl-C, or --cancel-at F once F of the work is done),
 * and reading the error detail of a failed call. Everything the library allocates is released
 * on every path. Build: see examples/README.md.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <awq.h>

/* Set by the SIGINT handler; the progress callback turns it into a cancellation. A signal
 * handler may only write a volatile sig_atomic_t, so the library is never called from it. */
static volatile sig_atomic_t interrupted = 0;

static void on_sigint(int sig) {
    (void)sig;
    interrupted = 1;
}

/* The library never prints: it hands messages to this callback. Show warnings and errors. */
static void on_log(awq_log_level level, const char *msg, void *user) {
    (void)user;
    if (level <= AWQ_LOG_LEVEL_WARN)
        fprintf(stderr, "[awq %s] %s\n", level == AWQ_LOG_LEVEL_ERROR ? "error" : "warning", msg);
}

typedef struct progress_state {
    float cancel_at; /* cancel once done >= cancel_at; > 1 = never */
    int last_pct;
} progress_state;

/* Called by awq_quantize from the calling thread between steps. Returning false stops the
 * work cleanly: awq_quantize then returns AWQ_ERR_CANCELLED. */
static bool on_progress(float done, const char *stage, void *user) {
    progress_state *ps = user;
    int pct = (int)(done * 100.0f + 0.5f);
    if (pct != ps->last_pct) {
        char bar[41];
        int fill = pct * 40 / 100;
        for (int i = 0; i < 40; i++) bar[i] = i < fill ? '#' : '.';
        bar[40] = '\0';
        fprintf(stderr, "\r[%s] %3d%% %-40.40s", bar, pct, stage);
        ps->last_pct = pct;
    }
    if (interrupted || done >= ps->cancel_at) {
        fprintf(stderr, "\ncancelling at %.1f%% (%s)\n", done * 100.0f, stage);
        return false;
    }
    return true;
}

static int usage(void) {
    fprintf(stderr,
            "usage: awq-example-quantize MODEL_DIR OUT_DIR [--rtn] [--group-size N] "
            "[--device D] [--cancel-at F]\n");
    return 2;
}

int main(int argc, char **argv) {
    if (argc < 3) return usage();
    /* Parameters start from the library's defaults; only what the user asked for changes. */
    awq_quant_params qp = awq_quant_params_default();
    qp.model_dir = argv[1];
    qp.out_dir = argv[2];
    qp.force = true; /* replace OUT_DIR if it exists */
    progress_state ps = {.cancel_at = 2.0f, .last_pct = -1};
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--rtn") == 0)
            qp.method = AWQ_METHOD_RTN;
        else if (strcmp(argv[i], "--group-size") == 0 && i + 1 < argc)
            qp.group_size = atoi(argv[++i]);
        else if (strcmp(argv[i], "--device") == 0 && i + 1 < argc)
            qp.device = argv[++i];
        else if (strcmp(argv[i], "--cancel-at") == 0 && i + 1 < argc)
            ps.cancel_at = (float)atof(argv[++i]);
        else
            return usage();
    }
    qp.progress = on_progress;
    qp.progress_user = &ps;
    signal(SIGINT, on_sigint);

    printf("libawq %s\n", awq_version());
    awq_runtime_params rp = awq_runtime_params_default();
    rp.log = on_log;
    awq_runtime *rt = NULL;
    awq_status st = awq_runtime_create(&rt, &rp);
    if (st != AWQ_OK) {
        /* Without a runtime there is no detail to ask for: the status says it all. */
        fprintf(stderr, "awq_runtime_create: %s\n", awq_status_str(st));
        return 1;
    }

    /* Pre-flight: reads the config and, for AWQ, tokenizes the calibration text (by default the
     * corpus installed with the library), without touching the weights. */
    awq_quant_estimate est;
    st = awq_quantize_estimate(rt, &qp, &est);
    if (st != AWQ_OK) {
        fprintf(stderr, "estimate: %s: %s\n", awq_status_str(st), awq_runtime_last_error(rt));
        awq_runtime_destroy(rt);
        return 1;
    }
    printf("%s, group size %d: %d layers, %d calibration blocks, peak memory ~%.0f MiB\n",
           qp.method == AWQ_METHOD_RTN ? "round-to-nearest" : "AWQ", qp.group_size, est.n_layers,
           est.n_blocks, est.peak_bytes / 1048576.0);

    awq_quant_report rep;
    st = awq_quantize(rt, &qp, &rep);
    fputc('\n', stderr);
    int rc = 0;
    if (st == AWQ_OK) {
        printf("wrote %s: %d linears in %.1f s, peak RSS %.0f MiB\n", qp.out_dir, rep.n_linears, rep.seconds,
               rep.peak_rss_bytes / 1048576.0);
    } else if (st == AWQ_ERR_CANCELLED) {
        /* Nothing half-written is published under OUT_DIR after a cancellation. */
        printf("cancelled; %s was not written\n", qp.out_dir);
        rc = 3;
    } else {
        /* The detail names the file and field, e.g. "config.json: hidden_size: ...". */
        fprintf(stderr, "quantize: %s: %s\n", awq_status_str(st), awq_runtime_last_error(rt));
        rc = 1;
    }
    awq_runtime_destroy(rt);
    return rc;
}
