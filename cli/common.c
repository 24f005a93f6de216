/* common.c - the CLI's runtime setup, logger and error printing. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "cli.h"

int cli_verbosity = 0;

static volatile sig_atomic_t interrupted = 0;

static void on_signal(int sig) {
    (void)sig;
    interrupted = 1;
}

void cli_catch_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

bool cli_interrupted(void) { return interrupted != 0; }

void cli_log(awq_log_level level, const char *msg, void *user) {
    (void)user;
    int max = cli_verbosity < 0 ? AWQ_LOG_LEVEL_ERROR
        : cli_verbosity == 0    ? AWQ_LOG_LEVEL_WARN
        : cli_verbosity == 1    ? AWQ_LOG_LEVEL_INFO
                                : AWQ_LOG_LEVEL_DEBUG;
    if ((int)level > max) return;
    static const char *names[] = {"error", "warning", "info", "debug"};
    fprintf(stderr, "awq: %s: %s\n", names[level], msg);
}

awq_runtime *cli_runtime(int n_threads) {
    awq_runtime_params p = awq_runtime_params_default();
    p.log = cli_log;
    p.n_threads = n_threads;
    awq_runtime *rt = NULL;
    awq_status st = awq_runtime_create(&rt, &p);
    if (st != AWQ_OK) {
        fprintf(stderr, "awq-cli: cannot create runtime: %s\n", awq_status_str(st));
        return NULL;
    }
    return rt;
}

int cli_fail(awq_runtime *rt, const char *cmd, awq_status st) {
    const char *detail = awq_runtime_last_error(rt);
    if (detail && detail[0])
        fprintf(stderr, "awq-cli %s: error: %s\n", cmd, detail);
    else
        fprintf(stderr, "awq-cli %s: error: %s\n", cmd, awq_status_str(st));
    return 1;
}

const cli_command cli_commands[] = {
    {"info", cmd_info},
    {"convert", cmd_convert},
    {"quantize", cmd_quantize},
    {"generate", cmd_generate},
    {"eval", cmd_eval},
    {"tokenize", cmd_tokenize},
    {"bench", cmd_bench},
    {"serve", cmd_serve},
    {"chat", cmd_chat},
    {"verify", cmd_verify},
    {NULL, NULL},
};

bool cli_opt_precision(struct cli_args *a, const char *name, awq_precision *out) {
    const char *v = NULL;
    if (!cli_opt(a, NULL, name, &v)) return false;
    if (a->error || !v) return true;
    if (!strcmp(v, "bf16"))
        *out = AWQ_PRECISION_BF16;
    else if (!strcmp(v, "fp32"))
        *out = AWQ_PRECISION_FP32;
    else {
        fprintf(stderr, "awq-cli %s: %s takes fp32 or bf16, not '%s'\n", a->cmd, name, v);
        a->error = true;
    }
    return true;
}

bool cli_opt_lm_head(struct cli_args *a, awq_lm_head_format *out) {
    const char *v = NULL;
    if (!cli_opt(a, NULL, "--lm-head", &v)) return false;
    if (a->error || !v) return true;
    if (!strcmp(v, "q8"))
        *out = AWQ_LM_HEAD_Q8;
    else if (!strcmp(v, "stored"))
        *out = AWQ_LM_HEAD_AS_STORED;
    else {
        fprintf(stderr, "awq-cli %s: --lm-head takes q8 or stored, not '%s'\n", a->cmd, v);
        a->error = true;
    }
    return true;
}
