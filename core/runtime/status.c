/* status.c - status strings and the per-runtime error detail. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

static const char *const status_strings[AWQ_STATUS_COUNT_] = {
    [AWQ_OK] = "success",
    [AWQ_ERR_INVALID_ARG] = "invalid argument",
    [AWQ_ERR_OUT_OF_MEMORY] = "out of memory",
    [AWQ_ERR_DEVICE_MEMORY] = "out of device memory",
    [AWQ_ERR_IO] = "I/O error",
    [AWQ_ERR_FORMAT] = "malformed input",
    [AWQ_ERR_UNSUPPORTED] = "unsupported",
    [AWQ_ERR_NO_BACKEND] = "backend not available",
    [AWQ_ERR_BACKEND] = "backend error",
    [AWQ_ERR_CANCELLED] = "cancelled",
    [AWQ_ERR_NUMERIC] = "non-finite values",
    [AWQ_ERR_EXISTS] = "output already exists",
};
_Static_assert(sizeof(status_strings) / sizeof(status_strings[0]) == AWQ_STATUS_COUNT_,
               "status string table out of date");

const char *awq_status_str(awq_status s) {
    if ((int)s < 0 || s >= AWQ_STATUS_COUNT_ || !status_strings[s]) return "unknown status";
    return status_strings[s];
}

const char *awq_version(void) { return "0.1.0"; }

awq_status awq_set_errorv(awq_runtime *rt, awq_status st, const char *fmt, va_list ap) {
    if (rt) vsnprintf(rt->last_error, sizeof rt->last_error, fmt, ap);
    return st;
}

awq_status awq_set_error(awq_runtime *rt, awq_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    awq_set_errorv(rt, st, fmt, ap);
    va_end(ap);
    if (rt) awq_log(rt, AWQ_LOG_LEVEL_DEBUG, "error (%s): %s", awq_status_str(st), rt->last_error);
    return st;
}

void awq_error_prefix(awq_runtime *rt, const char *fmt, ...) {
    if (!rt) return;
    char prefix[AWQ_ERRMSG_MAX], old[AWQ_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, rt->last_error, sizeof old);
    snprintf(rt->last_error, sizeof rt->last_error, "%s: %s", prefix, old);
}

void awq_clear_error(awq_runtime *rt) {
    if (rt) rt->last_error[0] = '\0';
}

const char *awq_runtime_last_error(const awq_runtime *rt) { return rt ? rt->last_error : ""; }

size_t awq_dtype_size(awq_dtype t) { return awq_dtype_size_inline(t); }

const char *awq_dtype_name(awq_dtype t) {
    switch (t) {
    case AWQ_DTYPE_F32: return "F32";
    case AWQ_DTYPE_F16: return "F16";
    case AWQ_DTYPE_BF16: return "BF16";
    case AWQ_DTYPE_I32: return "I32";
    case AWQ_DTYPE_I64: return "I64";
    case AWQ_DTYPE_U8: return "U8";
    case AWQ_DTYPE_I8: return "I8";
    case AWQ_DTYPE_I16: return "I16";
    case AWQ_DTYPE_F64: return "F64";
    default: return "?";
    }
}
