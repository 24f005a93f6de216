/*
 * test_dnnl_bf16.c - cpu-dnnl with AWQ_PRECISION_BF16 (awq_backend_config.matmul_precision):
 * matmul (F16 and F32 weights, with bias), matmul_w4a16 (prefill sizes) and gram against
 * double-precision products of the bfloat16-rounded operands.
 *
 * What bf16 means here: x and W are rounded to bfloat16 (nearest even), products are exact and
 * accumulated in fp32. So the reference is the double sum over bf16(x) * bf16(W) (+ bias), and
 * the tolerance only covers fp32 accumulation: |err| <= 1e-5 * sum |bf16(x) bf16(W)| + 1e-6.
 * Each case also checks that the result is NOT the fp32 one (the error against the unrounded
 * double product exceeds 1e-4 of the same scale somewhere), so a silent fp32 path fails.
 * On a CPU without bf16 dot products (no AVX512-BF16 / AMX) cpu-dnnl stays fp32 and the test
 * skips; without the plugin it skips, or fails under AWQ_REQUIRE_DNNL=1.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "awq_pack.h"
#include "internal.h"
#include "test.h"

static awq_runtime *RT;
static awq_device DEV;
static uint64_t RNG = 0x243F6A8885A308D3ull;

static double rnd(void) { /* uniform in [-1, 1) */
    RNG ^= RNG << 13;
    RNG ^= RNG >> 7;
    RNG ^= RNG << 17;
    return (double)(RNG >> 11) / (double)(1ull << 52) - 1.0;
}

static double bf(float v) { return (double)awq_bf16_to_f32(awq_f32_to_bf16(v)); }

static awq_tensor dev_tensor(awq_dtype t, int64_t rows, int64_t cols, const void *host) {
    size_t n = (size_t)(rows * cols) * awq_dtype_size(t);
    void *buf = NULL;
    if (DEV.ops->buffer_alloc(DEV.ctx, n, &buf) != AWQ_OK) abort();
    if (host && DEV.ops->upload(DEV.ctx, buf, 0, host, n) != AWQ_OK) abort();
    return rows == 1 ? awq_tensor_1d(t, buf, 0, cols) : awq_tensor_2d(t, buf, 0, rows, cols);
}

static void fetch(const awq_tensor *t, void *host, size_t n) {
    if (DEV.ops->download(DEV.ctx, host, t->data, t->offs, n) != AWQ_OK) abort();
}

/* y (n, o) vs the two references: bf16-rounded (must match) and unrounded (must differ). */
static void check(const char *what, const float *y, const double *ref_bf, const double *ref_ex,
                  const double *scale, int64_t n) {
    double worst = 0, visible = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs(y[i] - ref_bf[i]) / (1e-5 * scale[i] + 1e-6);
        worst = e > worst ? e : worst;
        double d = fabs(y[i] - ref_ex[i]) / (scale[i] + 1e-30);
        visible = d > visible ? d : visible;
    }
    printf("  %-34s err/tol vs bf16 reference %.3f; max rel. distance from fp32 %.2e\n", what, worst,
           visible);
    ASSERT_MSG(worst <= 1.0, "%s: off the bf16 reference by %.2f x tolerance", what, worst);
    ASSERT_MSG(visible > 1e-4, "%s: indistinguishable from fp32 (%.2e): the bf16 path did not run", what,
               visible);
}

static void matmul_case(awq_dtype wt, int64_t n, int64_t in, int64_t out) {
    float *x = malloc(sizeof(float) * n * in), *y = malloc(sizeof(float) * n * out);
    float *wf = malloc(sizeof(float) * out * in), *bias = malloc(sizeof(float) * out);
    uint16_t *wh = malloc(2 * out * in);
    double *rb = malloc(sizeof(double) * n * out), *re = malloc(sizeof(double) * n * out),
           *sc = malloc(sizeof(double) * n * out);
    for (int64_t i = 0; i < n * in; i++) x[i] = (float)rnd();
    for (int64_t i = 0; i < out * in; i++) {
        float v = (float)(0.1 * rnd());
        if (wt == AWQ_DTYPE_F16) {
            wh[i] = awq_f32_to_f16(v);
            v = awq_f16_to_f32(wh[i]);
        }
        wf[i] = v;
    }
    for (int64_t o = 0; o < out; o++) bias[o] = (float)rnd();
    for (int64_t r = 0; r < n; r++)
        for (int64_t o = 0; o < out; o++) {
            double sb = bias[o], se = bias[o], s = 0;
            for (int64_t k = 0; k < in; k++) {
                sb += bf(x[r * in + k]) * bf(wf[o * in + k]);
                se += (double)x[r * in + k] * wf[o * in + k];
                s += fabs(bf(x[r * in + k]) * bf(wf[o * in + k]));
            }
            rb[r * out + o] = sb;
            re[r * out + o] = se;
            sc[r * out + o] = s;
        }
    awq_tensor tx = dev_tensor(AWQ_DTYPE_F32, n, in, x), ty = dev_tensor(AWQ_DTYPE_F32, n, out, NULL),
               tw = dev_tensor(wt, out, in, wt == AWQ_DTYPE_F16 ? (void *)wh : (void *)wf),
               tb = dev_tensor(AWQ_DTYPE_F32, 1, out, bias);
    ASSERT_OK_RT(DEV.ops->matmul(DEV.ctx, &ty, &tx, &tw, &tb), RT);
    fetch(&ty, y, sizeof(float) * n * out);
    char what[96];
    snprintf(what, sizeof what, "matmul %s W (%lld, %lld), n %lld", awq_dtype_name(wt), (long long)out,
             (long long)in, (long long)n);
    check(what, y, rb, re, sc, n * out);
    DEV.ops->buffer_free(DEV.ctx, tx.data);
    DEV.ops->buffer_free(DEV.ctx, ty.data);
    DEV.ops->buffer_free(DEV.ctx, tw.data);
    DEV.ops->buffer_free(DEV.ctx, tb.data);
    free(x);
    free(y);
    free(wf);
    free(bias);
    free(wh);
    free(rb);
    free(re);
    free(sc);
}

TEST(matmul_bf16) {
    matmul_case(AWQ_DTYPE_F16, 64, 200, 72);
    matmul_case(AWQ_DTYPE_F32, 40, 128, 48);
}

TEST(matmul_w4a16_bf16) {
    const int64_t n = 96, in = 256, out = 64, gs = 64, G = in / gs;
    int32_t *qw = malloc(4 * in * (out / 8)), *qz = malloc(4 * G * (out / 8));
    uint16_t *sc16 = malloc(2 * G * out);
    uint8_t *code = malloc((size_t)(in * out)), *zero = malloc((size_t)(G * out));
    float *x = malloc(sizeof(float) * n * in), *y = malloc(sizeof(float) * n * out);
    double *rb = malloc(sizeof(double) * n * out), *re = malloc(sizeof(double) * n * out),
           *sc = malloc(sizeof(double) * n * out);
    for (int64_t i = 0; i < in * out; i++) code[i] = (uint8_t)(RNG % 16), rnd();
    for (int64_t i = 0; i < G * out; i++) {
        zero[i] = (uint8_t)(RNG % 16);
        rnd();
        sc16[i] = awq_f32_to_f16((float)(0.01 + 0.02 * fabs(rnd())));
    }
    for (int64_t k = 0; k < in; k++) /* code[k][o], packed 8 outputs per word */
        for (int64_t c = 0; c < out / 8; c++) qw[k * (out / 8) + c] = awq_pack_word(code + k * out + 8 * c);
    for (int64_t g = 0; g < G; g++)
        for (int64_t c = 0; c < out / 8; c++) qz[g * (out / 8) + c] = awq_pack_word(zero + g * out + 8 * c);
    for (int64_t i = 0; i < n * in; i++) x[i] = (float)rnd();
    for (int64_t r = 0; r < n; r++)
        for (int64_t o = 0; o < out; o++) {
            double sb = 0, se = 0, s = 0;
            for (int64_t k = 0; k < in; k++) {
                int64_t g = k / gs;
                float w = (float)((int)code[k * out + o] - (int)zero[g * out + o]) *
                    awq_f16_to_f32(sc16[g * out + o]);
                sb += bf(x[r * in + k]) * bf(w);
                se += (double)x[r * in + k] * w;
                s += fabs(bf(x[r * in + k]) * bf(w));
            }
            rb[r * out + o] = sb;
            re[r * out + o] = se;
            sc[r * out + o] = s;
        }
    awq_qlinear w;
    memset(&w, 0, sizeof w);
    w.in = in;
    w.out = out;
    w.group_size = gs;
    w.qweight = dev_tensor(AWQ_DTYPE_I32, in, out / 8, qw);
    w.qzeros = dev_tensor(AWQ_DTYPE_I32, G, out / 8, qz);
    w.scales = dev_tensor(AWQ_DTYPE_F16, G, out, sc16);
    awq_tensor tx = dev_tensor(AWQ_DTYPE_F32, n, in, x), ty = dev_tensor(AWQ_DTYPE_F32, n, out, NULL);
    ASSERT_OK_RT(DEV.ops->matmul_w4a16(DEV.ctx, &ty, &tx, &w), RT);
    fetch(&ty, y, sizeof(float) * n * out);
    check("matmul_w4a16 in 256 out 64 g64, n 96", y, rb, re, sc, n * out);
    DEV.ops->buffer_free(DEV.ctx, w.qweight.data);
    DEV.ops->buffer_free(DEV.ctx, w.qzeros.data);
    DEV.ops->buffer_free(DEV.ctx, w.scales.data);
    DEV.ops->buffer_free(DEV.ctx, tx.data);
    DEV.ops->buffer_free(DEV.ctx, ty.data);
    free(qw);
    free(qz);
    free(sc16);
    free(code);
    free(zero);
    free(x);
    free(y);
    free(rb);
    free(re);
    free(sc);
}

TEST(gram_bf16) {
    const int64_t n = 70, c = 48;
    float *x = malloc(sizeof(float) * n * c), *g = malloc(sizeof(float) * c * c);
    double *rb = malloc(sizeof(double) * c * c), *re = malloc(sizeof(double) * c * c),
           *sc = malloc(sizeof(double) * c * c);
    for (int64_t i = 0; i < n * c; i++) x[i] = (float)rnd();
    for (int64_t i = 0; i < c; i++)
        for (int64_t j = 0; j < c; j++) {
            double sb = 0, se = 0, s = 0;
            for (int64_t r = 0; r < n; r++) {
                sb += bf(x[r * c + i]) * bf(x[r * c + j]);
                se += (double)x[r * c + i] * x[r * c + j];
                s += fabs(bf(x[r * c + i]) * bf(x[r * c + j]));
            }
            rb[i * c + j] = sb;
            re[i * c + j] = se;
            sc[i * c + j] = s;
        }
    awq_tensor tx = dev_tensor(AWQ_DTYPE_F32, n, c, x), tg = dev_tensor(AWQ_DTYPE_F32, c, c, NULL);
    ASSERT_OK_RT(DEV.ops->gram(DEV.ctx, &tg, &tx, false), RT);
    fetch(&tg, g, sizeof(float) * c * c);
    check("gram x (70, 48)", g, rb, re, sc, c * c);
    DEV.ops->buffer_free(DEV.ctx, tx.data);
    DEV.ops->buffer_free(DEV.ctx, tg.data);
    free(x);
    free(g);
    free(rb);
    free(re);
    free(sc);
}

static bool cpu_has_bf16(void) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return false;
    char line[8192];
    bool yes = false;
    while (!yes && fgets(line, sizeof line, f))
        if (!strncmp(line, "flags", 5)) yes = strstr(line, " avx512_bf16") || strstr(line, " amx_bf16");
    fclose(f);
    return yes;
}

int main(void) {
    awq_runtime_params p = awq_runtime_params_default();
#ifdef AWQ_TEST_BIN_DIR
    p.backend_dir = AWQ_TEST_BIN_DIR;
#endif
    if (awq_runtime_create(&RT, &p) != AWQ_OK) return 1;
    int rc;
    if (!awq_registry_find(RT, "cpu-dnnl")) {
        rc = test_backend_required("cpu-dnnl") ? 1 : 77;
        printf("cpu-dnnl not loaded: %s\n", rc == 1 ? "FAIL (required)" : "skipped");
    } else if (!cpu_has_bf16()) {
        printf("this CPU has no bf16 dot products (avx512_bf16 / amx_bf16): cpu-dnnl stays fp32; skipped\n");
        rc = 77;
    } else if (awq_device_open_prec(RT, "cpu-dnnl", 0, AWQ_PRECISION_BF16, &DEV) != AWQ_OK) {
        printf("FAIL: cannot open cpu-dnnl: %s\n", awq_runtime_last_error(RT));
        rc = 1;
    } else {
        RUN(matmul_bf16);
        RUN(matmul_w4a16_bf16);
        RUN(gram_bf16);
        awq_device_close(&DEV);
        rc = TEST_EXIT();
    }
    awq_runtime_destroy(RT);
    return rc;
}
