/* log.c - the library's only output path: the runtime's log callback. */
#include <stdio.h>

#include "internal.h"

void awq_log(awq_runtime *rt, awq_log_level level, const char *fmt, ...) {
    if (!rt || !rt->log) return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    rt->log(level, msg, rt->log_user);
}

static void backend_log(void *host, awq_log_level level, const char *msg) {
    awq_log((awq_runtime *)host, level, "%s", msg);
}

static void backend_set_error(void *host, const char *msg) {
    awq_set_error((awq_runtime *)host, AWQ_ERR_BACKEND, "%s", msg);
}

awq_backend_config awq_runtime_backend_config(awq_runtime *rt, int64_t max_ctx) {
    awq_backend_config cfg = {
        .n_threads = rt ? rt->n_threads : 0,
        .max_ctx = max_ctx,
        .log = backend_log,
        .set_error = backend_set_error,
        .host = rt,
    };
    return cfg;
}
