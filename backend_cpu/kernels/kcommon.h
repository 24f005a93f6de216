/* kcommon.h - small helpers shared by the reference kernels. */
#ifndef AWQ_CPU_KCOMMON_H
#define AWQ_CPU_KCOMMON_H

#include <math.h>
#include <string.h>

#include "../kernels.h"
#include "simd.h"

static inline bool k_is_float(awq_dtype t) {
    return t == AWQ_DTYPE_F32 || t == AWQ_DTYPE_F16 || t == AWQ_DTYPE_BF16;
}

/* Element i of a row of dtype t, as float. */
static inline float k_load(const void *row, awq_dtype t, int64_t i) {
    switch (t) {
    case AWQ_DTYPE_F16: return awq_f16_to_f32(((const uint16_t *)row)[i]);
    case AWQ_DTYPE_BF16: return awq_bf16_to_f32(((const uint16_t *)row)[i]);
    default: return ((const float *)row)[i];
    }
}

static inline void k_store(void *row, awq_dtype t, int64_t i, float v) {
    switch (t) {
    case AWQ_DTYPE_F16: ((uint16_t *)row)[i] = awq_f32_to_f16(v); break;
    case AWQ_DTYPE_BF16: ((uint16_t *)row)[i] = awq_f32_to_bf16(v); break;
    default: ((float *)row)[i] = v; break;
    }
}

/* Converts n elements of a row of dtype t to floats. */
static inline void k_row_to_f32(float *dst, const void *row, awq_dtype t, int64_t n) {
    if (t == AWQ_DTYPE_F32)
        memcpy(dst, row, (size_t)n * sizeof(float));
    else if (t == AWQ_DTYPE_F16)
        k_f16_to_f32(dst, (const uint16_t *)row, n);
    else
        k_bf16_to_f32(dst, (const uint16_t *)row, n);
}

/* Row r of a rowwise tensor. */
static inline char *k_row(const awq_tensor *t, int64_t r) {
    return (char *)t->data + t->offs + r * awq_tensor_row_stride(t);
}

static inline float k_dot(const float *a, const float *b, int64_t n) { return k_dot_f32(a, b, n); }

/* w4gemv.c: true when w->prepared is this backend's repacked form of w; y = x W^T + bias with it
 * (shapes already validated). */
bool k_w4_prepared_ok(const awq_qlinear *w);
awq_status k_w4_gemv(awq_backend_ctx *ctx, awq_tensor *y, const awq_tensor *x, const awq_qlinear *w);
awq_status k_w4_gemv_multi(awq_backend_ctx *ctx, int nw, awq_tensor *const *y, const awq_tensor *x,
                           const awq_qlinear *const *w);
/* w4a8gemv.c: the int8-activation decode path, chosen at weight_prepare by AWQ_CPU_W4_ACT=int8
 * (k_w4a8_wanted); every batch size takes it on the cpu backend (each row is quantized on its
 * own, so a prefill row gets what decoding it alone would), cpu-dnnl prefill goes to oneDNN. */
bool k_w4a8_wanted(const awq_backend_ctx *ctx);
bool k_w4a8_prepared_ok(const awq_qlinear *w);
awq_status k_w4a8_prepare(awq_backend_ctx *ctx, awq_qlinear *w);
bool k_w4a8_release(awq_qlinear *w); /* false: not an int8-prepared weight */
awq_status k_w4a8_gemv_multi(awq_backend_ctx *ctx, int nw, awq_tensor *const *y, const awq_tensor *x,
                             const awq_qlinear *const *w);
/* q8gemv.c: y (n, out) = x (n, in) W^T for a Q8_0 weight qs (out, in) I8, d (out, in/32) F16,
 * one weight stream per call (small n; shapes already validated). */
awq_status k_q8_gemv(awq_backend_ctx *ctx, awq_tensor *y, const awq_tensor *x, const awq_tensor *qs,
                     const awq_tensor *d);

/* Checks that t is rowwise with dtype in the allowed set; records a reason otherwise. */
#define K_REQUIRE(ctx, cond, ...)              \
    do {                                       \
        if (!(cond)) {                         \
            awq_cpu_error((ctx), __VA_ARGS__); \
            return AWQ_ERR_UNSUPPORTED;        \
        }                                      \
    } while (0)

#endif
