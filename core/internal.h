/*
 * internal.h - private declarations shared inside libawq (core/, quant/, backend_cpu/).
 * Not installed; plugins never include it.
 */
#ifndef AWQ_CORE_INTERNAL_H
#define AWQ_CORE_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "awq.h"
#include "awq_backend.h"

#if defined(__GNUC__)
#define AWQ_PRINTF(fmt_idx, arg_idx) __attribute__((format(printf, fmt_idx, arg_idx)))
#else
#define AWQ_PRINTF(fmt_idx, arg_idx)
#endif

/* Returns from the enclosing function with x's status when x failed (the one definition of it in
 * libawq; the plugins have their own, with cleanup). */
#define TRY(x)                         \
    do {                               \
        awq_status st_ = (x);          \
        if (st_ != AWQ_OK) return st_; \
    } while (0)

#define AWQ_ERRMSG_MAX 1024

/* One registered backend (built-in or plugin). */
typedef struct awq_backend_entry {
    const awq_backend_ops *ops;
    awq_backend_ops *own; /* zero-filled full copy of an older plugin's shorter table */
    void *dl;             /* dl handle, NULL for built-in */
    int32_t score;        /* probe score */
    char path[512];       /* plugin file, "" for built-in */
} awq_backend_entry;

#define AWQ_MAX_BACKENDS 16
#define AWQ_MAX_SKIPPED  32

struct awq_runtime {
    awq_log_fn log;
    void *log_user;
    int32_t n_threads;
    char last_error[AWQ_ERRMSG_MAX];
    awq_backend_entry backends[AWQ_MAX_BACKENDS];
    int32_t n_backends;
    char *skipped[AWQ_MAX_SKIPPED]; /* owned strings "path: reason" */
    int32_t n_skipped;
};

/* ---- errors and logging (status.c, log.c) ---- */

/* Records a formatted error detail on rt (rt may be NULL) and returns st, so callers can write
 * `return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: ...", path);`. */
awq_status awq_set_error(awq_runtime *rt, awq_status st, const char *fmt, ...) AWQ_PRINTF(3, 4);
awq_status awq_set_errorv(awq_runtime *rt, awq_status st, const char *fmt, va_list ap);
/* Prepends "prefix: " to the current error detail. */
void awq_error_prefix(awq_runtime *rt, const char *fmt, ...) AWQ_PRINTF(2, 3);
void awq_clear_error(awq_runtime *rt);

void awq_log(awq_runtime *rt, awq_log_level level, const char *fmt, ...) AWQ_PRINTF(3, 4);
#define AWQ_LOG_ERROR(rt, ...) awq_log((rt), AWQ_LOG_LEVEL_ERROR, __VA_ARGS__)
#define AWQ_LOG_WARN(rt, ...)  awq_log((rt), AWQ_LOG_LEVEL_WARN, __VA_ARGS__)
#define AWQ_LOG_INFO(rt, ...)  awq_log((rt), AWQ_LOG_LEVEL_INFO, __VA_ARGS__)
#define AWQ_LOG_DEBUG(rt, ...) awq_log((rt), AWQ_LOG_LEVEL_DEBUG, __VA_ARGS__)

/* Host services for backends created through this runtime. */
awq_backend_config awq_runtime_backend_config(awq_runtime *rt, int64_t max_ctx);

/* ---- checked allocation and size math (alloc.c) ---- */

void *awq_malloc(size_t n);              /* NULL on failure or n == 0 */
void *awq_calloc(size_t n, size_t size); /* overflow-checked */
void *awq_realloc(void *p, size_t n);
char *awq_strdup(const char *s);
char *awq_strndup(const char *s, size_t n);
/* awq_free is public (awq.h). */

/* Allocation-failure injection for tests (tests/quant/test_alloc_faults.c): after
 * awq_alloc_fail_set(n), the n-th allocation counted from then on fails (once); n = 0 turns it
 * off. Counted: awq_malloc/calloc/realloc/strdup/strndup and the built-in cpu backend's buffers.
 * awq_alloc_counted: allocations counted since the last awq_alloc_fail_set (with n > 0). */
void awq_alloc_fail_set(int64_t nth);
int64_t awq_alloc_counted(void);
bool awq_alloc_fault(void); /* true: the caller must fail this allocation */
/* Instead of a fixed n: fn(n, user) decides at every counted allocation (n = 1, 2, ... since this
 * call) whether it fails; NULL turns counting off. test_alloc_faults forks there, so that each
 * faulted run shares the unfaulted run's prefix. Single-threaded use only. */
void awq_alloc_fail_hook(bool (*fn)(int64_t n, void *user), void *user);

/* Overflow-safe arithmetic: return false on overflow. */
static inline bool awq_mul_overflow_u64(uint64_t a, uint64_t b, uint64_t *out) {
    return __builtin_mul_overflow(a, b, out);
}
static inline bool awq_add_overflow_u64(uint64_t a, uint64_t b, uint64_t *out) {
    return __builtin_add_overflow(a, b, out);
}

/* ---- backend registry (registry.c) ---- */

/* Registers the built-in backends and loads plugins. */
awq_status awq_registry_init(awq_runtime *rt, const char *backend_dir, bool load_plugins);
void awq_registry_free(awq_runtime *rt);
/* Finds a backend by name ("cpu", "opencl", ...); NULL if not loaded. */
const awq_backend_entry *awq_registry_find(const awq_runtime *rt, const char *name);

/* A created backend instance on one device. */
/* What the device can run (awq_backend_can), asked once when it is opened (caps.c). */
typedef struct awq_device_caps {
    bool multi, prepare, graph, softcap, attention_softcap, clip_search, gram;
    bool act_mul[2];           /* by awq_act */
    bool reduce[3], scalar[2]; /* by awq_reduce_op / awq_scalar_op */
} awq_device_caps;

typedef struct awq_device {
    const awq_backend_ops *ops;
    awq_backend_ctx *ctx;
    int32_t index;
    char label[64]; /* "cpu:0", "opencl:1" */
    awq_device_info info;
    awq_device_caps can;       /* filled by awq_device_open */
    awq_backend_ctx *host_ctx; /* built-in cpu instance for host fallbacks, or NULL */
} awq_device;

/* Parses "auto|cpu|cpu-dnnl|opencl[:N]|cuda[:N]" and creates an instance. */
awq_status awq_device_open(awq_runtime *rt, const char *spec, int64_t max_ctx, awq_device *out);
/* Same with the matmul precision (awq_precision) handed to the backend. */
awq_status awq_device_open_prec(awq_runtime *rt, const char *spec, int64_t max_ctx, int32_t precision,
                                awq_device *out);
/* ... and int8 activations for the 4-bit matmuls (awq_model_params.int8_activations). */
awq_status awq_device_open_ex(awq_runtime *rt, const char *spec, int64_t max_ctx, int32_t precision,
                              bool int8_act, awq_device *out);
void awq_device_close(awq_device *dev);

/* ---- capabilities and fallbacks (caps.c) ---- */
struct awq_model_config;
/* The op's name ("act_mul"). */
const char *awq_op_name(awq_op op);
/* True when the backend has the member for op and its supports_op (if any) accepts the case. */
bool awq_backend_can(const awq_backend_ops *o, int32_t device, awq_op op, int32_t param);
/* Fills dev->can from the backend (awq_device_open does). */
void awq_device_caps_fill(awq_device *dev);
/* Asks the device what a model of config c needs (and, with quantize, what the AWQ search
 * needs), logs each fallback once, and creates the host instance the host
 * fallbacks use. *lm_head_q8 (may be NULL) is cleared when the device lacks matmul_q8. */
awq_status awq_device_plan(awq_runtime *rt, awq_device *dev, const struct awq_model_config *c, bool quantize,
                           bool *lm_head_q8);
/* Host fallbacks (the built-in cpu kernels over host copies); need awq_device_plan first. */
awq_status awq_fallback_act_mul(const awq_device *dev, awq_tensor *y, const awq_tensor *gate,
                                const awq_tensor *up, awq_act act);
awq_status awq_fallback_softcap(const awq_device *dev, awq_tensor *x, float cap);
awq_status awq_fallback_attention_softcap(const awq_device *dev, awq_tensor *out, const awq_tensor *q,
                                          const awq_tensor *k, const awq_tensor *v, int32_t n_past,
                                          float scale, int32_t window, float cap);

/* The built-in reference cpu backend (backend_cpu/). */
const awq_backend_ops *awq_backend_cpu_ops(void);

/* ---- small utilities (util.c) ---- */

/* A growable NUL-terminated string; oom is set (and further appends ignored) on failure.
 * Owned: awq_free(b.p). */
typedef struct awq_strbuf {
    char *p;
    size_t len, cap;
    bool oom;
} awq_strbuf;
void awq_strbuf_put(awq_strbuf *b, const char *s, size_t n);
void awq_strbuf_puts(awq_strbuf *b, const char *s);

/* Removes a directory tree we created (files and sub-directories; symlinks are not followed). */
void awq_rmtree(const char *dir);
/* Makes a finished temporary directory the output: tmp is renamed to out; an existing out is
 * replaced only when force (moved aside first, removed after the rename succeeded). */
awq_status awq_dir_publish(awq_runtime *rt, const char *tmp, const char *out, bool force);

/* Reads a whole file; *data is NUL-terminated (not counted in *len). Owned: awq_free. */
awq_status awq_read_file(awq_runtime *rt, const char *path, char **data, size_t *len);
/* path join into buf; returns buf. */
char *awq_path_join(char *buf, size_t cap, const char *dir, const char *name);
bool awq_file_exists(const char *path);
bool awq_dir_exists(const char *path);
/* Current process peak RSS and MemAvailable in bytes (0 if unknown). */
int64_t awq_peak_rss_bytes(void);
int64_t awq_mem_available_bytes(void);
double awq_time_now(void); /* monotonic seconds */

#endif /* AWQ_CORE_INTERNAL_H */
