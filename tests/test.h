/*
 * test.h - a tiny test harness. Each test file defines TEST(name) functions and lists them in
 * main with RUN(name). A failed ASSERT prints file:line and the values and returns from the test.
 * Exit status: 0 all passed, 1 some failed, 77 skipped (CTest SKIP_RETURN_CODE).
 */
#ifndef AWQ_TEST_H
#define AWQ_TEST_H

#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int test_failures_ = 0;
static int test_current_failed_ = 0;

#define TEST(name) static void name(void)

#define RUN(name)                                                         \
    do {                                                                  \
        test_current_failed_ = 0;                                         \
        name();                                                           \
        printf("%s %s\n", test_current_failed_ ? "FAIL" : "ok  ", #name); \
        fflush(stdout);                                                   \
        if (test_current_failed_) test_failures_++;                       \
    } while (0)

#define TEST_EXIT() (test_failures_ ? 1 : 0)

#define FAIL_(...)                               \
    do {                                         \
        printf("  %s:%d: ", __FILE__, __LINE__); \
        printf(__VA_ARGS__);                     \
        printf("\n");                            \
        test_current_failed_ = 1;                \
        return;                                  \
    } while (0)

#define ASSERT(c)                                    \
    do {                                             \
        if (!(c)) FAIL_("assertion failed: %s", #c); \
    } while (0)
#define ASSERT_MSG(c, ...)            \
    do {                              \
        if (!(c)) FAIL_(__VA_ARGS__); \
    } while (0)
#define ASSERT_EQ(a, b)                                                \
    do {                                                               \
        long long a_ = (long long)(a), b_ = (long long)(b);            \
        if (a_ != b_) FAIL_("%s == %s: %lld != %lld", #a, #b, a_, b_); \
    } while (0)
#define ASSERT_NEAR(a, b, tol)                                                       \
    do {                                                                             \
        double a_ = (double)(a), b_ = (double)(b);                                   \
        if (!(fabs(a_ - b_) <= (tol)))                                               \
            FAIL_("%s ~= %s: %.9g vs %.9g (tol %g)", #a, #b, a_, b_, (double)(tol)); \
    } while (0)
#define ASSERT_STREQ(a, b)                                                                       \
    do {                                                                                         \
        const char *a_ = (a), *b_ = (b);                                                         \
        if (!a_ || !b_ || strcmp(a_, b_) != 0)                                                   \
            FAIL_("%s == %s: \"%s\" != \"%s\"", #a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)"); \
    } while (0)
/* Asserts an awq_status is AWQ_OK; rt (may be NULL) supplies the detail. */
#define ASSERT_OK_RT(st, rt)                                                                         \
    do {                                                                                             \
        awq_status s_ = (st);                                                                        \
        if (s_ != AWQ_OK) FAIL_("%s: %s (%s)", #st, awq_status_str(s_), awq_runtime_last_error(rt)); \
    } while (0)
#define ASSERT_OK(st) ASSERT_OK_RT(st, NULL)
/* Asserts expr returns the awq_status status and that awq_runtime_last_error(rt), read after expr,
 * contains substr (substr NULL: any message, but not an empty one). A failure prints both. */
#define ASSERT_ERR_RT(expr, rt, status, substr)                                                            \
    do {                                                                                                   \
        awq_status ert_got_ = (expr);                                                                      \
        awq_status ert_want_ = (status);                                                                   \
        const char *ert_msg_ = awq_runtime_last_error(rt);                                                 \
        const char *ert_sub_ = (substr);                                                                   \
        if (ert_got_ != ert_want_)                                                                         \
            FAIL_("%s: got %s, want %s (%s)", #expr, awq_status_str(ert_got_), awq_status_str(ert_want_),  \
                  ert_msg_);                                                                               \
        if (ert_sub_ ? !strstr(ert_msg_, ert_sub_) : !ert_msg_[0])                                         \
            FAIL_("%s: message \"%s\" lacks \"%s\"", #expr, ert_msg_, ert_sub_ ? ert_sub_ : "(any text)"); \
    } while (0)

/* Directory of the shared data (../shared/data) or NULL. */
static inline const char *test_shared_data(void) {
    const char *e = getenv("AWQ_SHARED_DATA");
#ifdef AWQ_TEST_SHARED_DATA
    if (!e) e = AWQ_TEST_SHARED_DATA;
#endif
    return e;
}

/* The converted fp16 SmolLM2 directory from $AWQ_TEST_MODEL_DIR, or NULL. When it is missing
 * and AWQ_REQUIRE_MODEL=1 the caller should fail rather than skip. */
static inline const char *test_model_dir(void) { return getenv("AWQ_TEST_MODEL_DIR"); }

/* Exit 77 (skip) unless AWQ_REQUIRE_MODEL=1, in which case fail. */
static inline int test_skip_or_fail(const char *why) {
    const char *req = getenv("AWQ_REQUIRE_MODEL");
    if (req && req[0] == '1') {
        printf("FAIL: %s (AWQ_REQUIRE_MODEL=1)\n", why);
        return 1;
    }
    printf("SKIP: %s\n", why);
    return 77;
}

/* Exit status when the opencl backend is absent: 77 (skip), or 1 with AWQ_REQUIRE_OPENCL=1 (CI,
 * where PoCL is installed, so a broken plugin fails instead of skipping). */
static inline int test_opencl_missing(const char *why) {
    const char *req = getenv("AWQ_REQUIRE_OPENCL");
    if (req && req[0] == '1') {
        printf("FAIL: %s (AWQ_REQUIRE_OPENCL=1; see awq-cli info)\n", why);
        return 1;
    }
    printf("SKIP: %s\n", why);
    return 77;
}

/* True when the environment variable name is set to 1: CI sets AWQ_REQUIRE_* so that a missing
 * backend, tool or data fails instead of skipping. */
static inline int test_required(const char *name) {
    const char *e = getenv(name);
    return e && e[0] == '1';
}

/* The AWQ_REQUIRE_* switch for a backend: cpu-dnnl AWQ_REQUIRE_DNNL, opencl AWQ_REQUIRE_OPENCL,
 * cuda-emu AWQ_REQUIRE_CUDA_EMU, cuda AWQ_REQUIRE_CUDA; the built-in cpu is always required. */
static inline int test_backend_required(const char *backend) {
    if (!strcmp(backend, "cpu")) return 1;
    if (!strncmp(backend, "cpu-dnnl", 8)) return test_required("AWQ_REQUIRE_DNNL");
    if (!strncmp(backend, "opencl", 6)) return test_required("AWQ_REQUIRE_OPENCL");
    if (!strncmp(backend, "cuda-emu", 8)) return test_required("AWQ_REQUIRE_CUDA_EMU");
    if (!strncmp(backend, "cuda", 4)) return test_required("AWQ_REQUIRE_CUDA");
    return 0;
}

/* Reads a whole file into a NUL-terminated heap buffer (free()); NULL if it cannot. */
static inline char *test_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
    if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = (char *)malloc((size_t)n + 1)) != NULL &&
        fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = '\0';
        if (len) *len = (size_t)n;
    }
    return buf;
}

/* Makes a fresh directory /tmp/awq-<tag>-XXXXXX (mkdtemp) and writes its path to out (cap
 * bytes). 0 on success, -1 when it does not fit or cannot be made. Remove it with test_rmtree. */
static inline int test_tmpdir(char *out, size_t cap, const char *tag) {
    int n = snprintf(out, cap, "/tmp/awq-%s-XXXXXX", tag);
    if (n < 0 || (size_t)n >= cap) return -1;
    return mkdtemp(out) ? 0 : -1;
}

/* nftw callback of test_rmtree: removes one entry (files before their directory). */
static inline int test_rmtree_entry_(const char *path, const struct stat *sb, int type, struct FTW *fb) {
    (void)sb;
    (void)type;
    (void)fb;
    return remove(path);
}

/* Removes dir and everything under it, like rm -rf (without system()); symbolic links are removed,
 * not followed, and a dir that does not exist is success. 0 on success, -1 on failure. */
static inline int test_rmtree(const char *dir) {
    struct stat sb;
    if (lstat(dir, &sb) != 0) return errno == ENOENT ? 0 : -1;
    return nftw(dir, test_rmtree_entry_, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

/* Deterministic xorshift RNG for tests. */
static inline unsigned long long test_rng_next(unsigned long long *s) {
    unsigned long long x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}
/* Uniform in [-1, 1). */
static inline float test_rng_uniform(unsigned long long *s) {
    return (float)((double)(test_rng_next(s) >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}
/* Approximately normal (sum of uniforms). */
static inline float test_rng_normal(unsigned long long *s) {
    double a = 0;
    for (int i = 0; i < 6; i++) a += test_rng_uniform(s);
    return (float)(a / 1.41421356);
}

#endif
