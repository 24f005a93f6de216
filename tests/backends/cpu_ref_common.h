/*
 * cpu_ref_common.h - helpers for the cpu reference op tests (test_cpu_ref*.c): which backend
 * instance is under test, strided tensor views over host memory, and fp16/bf16 rounding written
 * independently of awq_pack.h (double arithmetic, round-to-nearest-even via nearbyint).
 *
 * Each test program runs its whole suite once per cpu-family backend that loads here: the
 * built-in "cpu" reference and, when its plugin is found, "cpu-dnnl". Their tensors are host
 * pointers, so the tests fill and read memory directly.
 */
#ifndef AWQ_TEST_CPU_REF_COMMON_H
#define AWQ_TEST_CPU_REF_COMMON_H

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "awq_backend.h"
#include "internal.h"
#include "test.h"

/* The instance under test (set by ref_run_all). */
static awq_runtime *RT;
static const awq_backend_ops *OPS;
static awq_backend_ctx *CTX;
static const char *BE_NAME;
static unsigned long long RNG = 0x9E3779B97F4A7C15ull;

/* ---- independent fp16 / bf16 arithmetic ----------------------------------------------- */

/* Rounds x to the nearest value with `mant` fraction bits, exponents >= emin (normal range; below
 * it a fixed ulp of 2^(emin - mant)), ties to even; |result| >= overflow -> inf. */
static inline double ref_round_fmt(double x, int mant, int emin, double overflow) {
    if (isnan(x) || isinf(x) || x == 0.0) return x;
    double a = fabs(x);
    int e;
    frexp(a, &e); /* a = f * 2^e, f in [0.5, 1): leading bit has exponent e - 1 */
    int ulp_exp = e - 1 - mant;
    if (ulp_exp < emin - mant) ulp_exp = emin - mant;
    double q = nearbyint(ldexp(a, -ulp_exp)); /* exact scaling, then round half to even */
    double r = ldexp(q, ulp_exp);
    if (r >= overflow) r = INFINITY;
    return copysign(r, x);
}
/* binary16: 10 fraction bits, min normal 2^-14, max 65504 (65520 and above round to inf). */
static inline double ref_r16(double x) { return ref_round_fmt(x, 10, -14, 65520.0); }
/* bfloat16: 7 fraction bits, min normal 2^-126, max (2 - 2^-7) 2^127. */
static inline double ref_rbf16(double x) { return ref_round_fmt(x, 7, -126, ldexp(2.0, 127)); }
/* One fp32 operation: a double result of +,-,*,/ on floats rounded to float is exactly the
 * IEEE fp32 result (53 >= 2*24 + 2). */
static inline double f32(double x) { return (double)(float)x; }

static inline double ref_f16_decode(uint16_t h) {
    int sign = h >> 15, ex = (h >> 10) & 31, man = h & 1023;
    double v;
    if (ex == 0)
        v = ldexp((double)man, -24);
    else if (ex == 31)
        v = man ? NAN : INFINITY;
    else
        v = ldexp(1024.0 + man, ex - 25);
    return sign ? -v : v;
}
/* Encodes a value that is already representable in binary16 (ref_r16 output). */
static inline uint16_t ref_f16_encode(double v) {
    uint16_t sign = signbit(v) ? 0x8000 : 0;
    double a = fabs(v);
    if (isnan(v)) return 0x7e00;
    if (isinf(v)) return sign | 0x7c00;
    if (a < ldexp(1.0, -14)) return sign | (uint16_t)(a * 16777216.0);
    int e;
    double f = frexp(a, &e); /* a = f 2^e, exponent field e - 1 + 15 */
    return sign | (uint16_t)((e + 14) << 10) | (uint16_t)((f * 2.0 - 1.0) * 1024.0);
}
static inline double ref_bf16_decode(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static inline uint16_t ref_bf16_encode(double v) { /* v representable in bfloat16 */
    float f = (float)v;
    uint32_t u;
    memcpy(&u, &f, 4);
    if (isnan(v)) return 0x7fc0;
    return (uint16_t)(u >> 16);
}

/* ---- random data ---------------------------------------------------------------------- */

static inline float rnd(void) { return test_rng_uniform(&RNG); }
static inline float rndn(void) { return test_rng_normal(&RNG); }
static inline int64_t rndi(int64_t n) { return (int64_t)(test_rng_next(&RNG) % (uint64_t)n); }

static inline float *falloc(int64_t n) {
    float *p = (float *)calloc((size_t)(n > 0 ? n : 1), sizeof(float));
    if (!p) abort();
    return p;
}
static inline void *balloc(int64_t nbytes) {
    void *p = calloc((size_t)(nbytes > 0 ? nbytes : 1), 1);
    if (!p) abort();
    return p;
}
static inline void fill(float *p, int64_t n, float scale) {
    for (int64_t i = 0; i < n; i++) p[i] = rnd() * scale;
}

/* ---- tensor views --------------------------------------------------------------------- */

/* (rows, cols) view with a row stride of ld elements (ld >= cols: padded rows). */
static inline awq_tensor view2(awq_dtype t, void *p, int64_t rows, int64_t cols, int64_t ld) {
    awq_tensor x = awq_tensor_2d(t, p, 0, rows, cols);
    x.nb[0] = ld * (int64_t)awq_dtype_size_inline(t);
    return x;
}
static inline awq_tensor view1(awq_dtype t, void *p, int64_t n) { return awq_tensor_1d(t, p, 0, n); }

/* Element i of a row holding dtype t (F32/F16/BF16), decoded independently. */
static inline double ref_load(const void *row, awq_dtype t, int64_t i) {
    if (t == AWQ_DTYPE_F16) return ref_f16_decode(((const uint16_t *)row)[i]);
    if (t == AWQ_DTYPE_BF16) return ref_bf16_decode(((const uint16_t *)row)[i]);
    return ((const float *)row)[i];
}
/* Stores v rounded to dtype t. */
static inline void ref_store(void *row, awq_dtype t, int64_t i, double v) {
    if (t == AWQ_DTYPE_F16)
        ((uint16_t *)row)[i] = ref_f16_encode(ref_r16(v));
    else if (t == AWQ_DTYPE_BF16)
        ((uint16_t *)row)[i] = ref_bf16_encode(ref_rbf16(v));
    else
        ((float *)row)[i] = (float)v;
}
static inline const char *dtype_name(awq_dtype t) {
    return t == AWQ_DTYPE_F16 ? "F16" : t == AWQ_DTYPE_BF16 ? "BF16" : "F32";
}

/* ---- running the suite per backend ---------------------------------------------------- */

typedef void (*ref_suite_fn)(void);

/* Runs suite() on "cpu" and on "cpu-dnnl" when that plugin loads. Returns the exit status. */
static inline int ref_run_all(ref_suite_fn suite) {
    awq_runtime_params p = awq_runtime_params_default();
#ifdef AWQ_TEST_BIN_DIR
    p.backend_dir = AWQ_TEST_BIN_DIR;
#endif
    if (awq_runtime_create(&RT, &p) != AWQ_OK) {
        printf("FAIL: cannot create a runtime\n");
        return 1;
    }
    const char *names[] = {"cpu", "cpu-dnnl"};
    for (int i = 0; i < 2; i++) {
        if (!awq_registry_find(RT, names[i])) {
            bool req = test_backend_required(names[i]); /* AWQ_REQUIRE_DNNL=1: fail, not skip */
            printf("-- backend %s not loaded: %s\n", names[i], req ? "FAIL (required)" : "skipped");
            if (req) test_failures_++;
            continue;
        }
        awq_device dev;
        if (awq_device_open(RT, names[i], 0, &dev) != AWQ_OK) {
            printf("FAIL: cannot open %s: %s\n", names[i], awq_runtime_last_error(RT));
            test_failures_++;
            continue;
        }
        OPS = dev.ops;
        CTX = dev.ctx;
        BE_NAME = names[i];
        printf("-- backend %s (%s)\n", names[i], dev.info.name);
        RNG = 0x9E3779B97F4A7C15ull; /* same inputs on every backend */
        suite();
        awq_device_close(&dev);
    }
    awq_runtime_destroy(RT);
    return TEST_EXIT();
}

/* Asserts an op status with the runtime's detail. */
#define OP_OK(call) ASSERT_OK_RT(call, RT)

#endif
