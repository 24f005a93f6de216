/*
 * test_k_gemm.cc - the CUDA GEMM kernel families (backend_cuda/kernels/gemm_w4.cuh, dense.cuh
 * through the launchers of launch_gemm.cuh) run on the SIMT emulator (-DAWQ_CUDA_EMU: device
 * pointers are host pointers) against independent double-precision references written here:
 *
 *   w4_gemv / w4_gemv_multi   exact fp32 weights (q - z) s, fp32 x: err <= 1e-4 * row + 1e-6
 *                             (row = max |ref| of the output row), and bit-exact on integer data;
 *                             prepared (awqk_w4_prepare) and canonical layouts, mixed in _multi
 *   w4_gemm (Tensor Cores)    x and weights rounded to fp16 (fp16((q - z) s), one rounding), fp32
 *                             accumulation: err <= 1e-5 * sum_k |x_k w_k| against that reference,
 *                             and err <= 2e-3 * row + 1e-5 against the exact-weight, fp32-x product
 *                             (the cuda backends' contract for the fp16 paths); bit-exact on
 *                             integer data; sm 75 and 80 code paths, split-K on and off
 *   w4_dequant                bit-exact fp16((q - z) s)
 *   dense_gemv, dense_gemm    fp32: err <= 1e-4 * row + 1e-6; bit-exact on integer data
 *   gram                      fp32: err <= 1e-4 * row + 1e-6; bit-exact on integer data
 *
 * The packed weights are made here with this file's own packer ([0,2,4,6,1,3,5,7], docs/formats.md 4.1)
 * and the reference unpacks them with its own unpacker. Outputs live in padded buffers whose
 * padding (row tails and rows beyond M) must stay untouched. Integer-valued data: small-integer x,
 * power-of-two scales, zero points 0..15 (0 and 15 always present), every partial sum exact in
 * fp32. One line per case, then "N passed, M failed"; exit 1 on any failure.
 *
 * Build and run: tests/cuda/README-gemm.md. This file includes launch_gemm.cuh itself; linked
 * with the awq_cuda_emu_core archive, the archive's launch_emu.o is then never pulled in.
 */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <chrono>
#include <vector>

#include "intrin.cuh"
#include "launch.h"
#include "launch_gemm.cuh"
#include "awq_pack.h" /* fp16 / bf16 conversion of the host reference only */

/* ---- infrastructure ------------------------------------------------------------------------ */

static int g_pass, g_fail;

static void report(const char *fam, bool ok, double ratio, const char *fmt, ...) {
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    ok = ok && ratio <= 1.0 && ratio == ratio;
    printf("%-4s %-14s %-78s err/limit %.3g\n", ok ? "PASS" : "FAIL", fam, what, ratio);
    fflush(stdout);
    ok ? g_pass++ : g_fail++;
}

static uint64_t g_rng = 0x2545f4914f6cdd1dull;
static uint64_t rng_u64() {
    uint64_t z = (g_rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static int rng_int(int n) { return (int)(rng_u64() % (uint64_t)n); }
static double rng_uni() { return (double)(rng_u64() >> 11) * (1.0 / 9007199254740992.0); }
static float rng_sym() { return (float)(2.0 * rng_uni() - 1.0); }

/* 256-byte aligned host buffer standing in for device memory. */
template <class T> struct buf {
    T *p = nullptr;
    size_t n = 0;
    explicit buf(size_t count, int fill_byte = 0) : n(count) {
        if (posix_memalign(reinterpret_cast<void **>(&p), 256, (count ? count : 1) * sizeof(T) + 64)) abort();
        memset(p, fill_byte, (count ? count : 1) * sizeof(T) + 64);
    }
    ~buf() { free(p); }
    buf(const buf &) = delete;
    buf &operator=(const buf &) = delete;
    T &operator[](size_t i) { return p[i]; }
};

static awqk_ctx make_ctx(int sm, int n_sm) {
    awqk_ctx kc;
    memset(&kc, 0, sizeof kc);
    kc.stream = NULL;
    kc.sm = sm;
    kc.n_sm = n_sm;
    return kc;
}

static const uint32_t SENTINEL = 0x7fbadbadu; /* a NaN nobody computes */
static bool is_sentinel(float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    return u == SENTINEL;
}
static void fill_sentinel(float *p, size_t n) {
    for (size_t i = 0; i < n; i++) memcpy(&p[i], &SENTINEL, 4);
}

/* Compares y (M x N at ldy, inside a buffer of `total` floats filled with sentinels) with ref:
 * per element |y - ref| <= rtol * scale + atol where scale is row (max |ref| of the row) or the
 * given per-element scale; exact: bit equality with (float)ref. Returns the worst err / limit;
 * *pad_ok = false when padding was written. */
static double check_out(const float *y, long long ldy, size_t total, int M, int N,
                        const std::vector<double> &ref, const std::vector<double> *elem_scale, double rtol,
                        double atol, bool exact, bool *pad_ok, int *first_bad) {
    double worst = 0.0;
    *pad_ok = true;
    *first_bad = -1;
    for (size_t i = 0; i < total; i++) {
        const long long m = (long long)i / ldy, n = (long long)i % ldy;
        if (m < M && n < N) continue;
        if (!is_sentinel(y[i])) *pad_ok = false;
    }
    for (int m = 0; m < M; m++) {
        double row = 0.0;
        for (int n = 0; n < N; n++) row = fmax(row, fabs(ref[(size_t)m * N + n]));
        for (int n = 0; n < N; n++) {
            const double r = ref[(size_t)m * N + n], g = y[(long long)m * ldy + n];
            double ratio;
            if (exact) {
                ratio = (float)r == (float)g || (r != r && g != g) ? 0.0 : 1e30;
            } else if (r != r || g != g || isinf(r) || isinf(g)) {
                ratio = (r != r && g != g) || r == g ? 0.0 : 1e30;
            } else {
                const double sc = elem_scale ? (*elem_scale)[(size_t)m * N + n] : row;
                ratio = fabs(g - r) / (rtol * sc + atol);
            }
            if (ratio > worst || ratio != ratio) {
                worst = ratio != ratio ? 1e30 : ratio;
                if (ratio > 1.0 && *first_bad < 0) *first_bad = m * N + n;
            }
        }
    }
    return worst;
}

/* ---- AWQ 4-bit weights: this test's own packer and unpacker -------------------------------- */

static const int kSlotCol[8] = {0, 2, 4, 6, 1, 3, 5, 7}; /* nibble slot i holds column 8j + kSlotCol[i] */

struct w4host {
    int K, N, gs;
    buf<int32_t> qw, qz;
    buf<uint16_t> sc;
    buf<int32_t> prep;
    std::vector<double> W;  /* exact (q - z) s, (N, K) */
    std::vector<double> Wh; /* fp16((q - z) s), (N, K) */
    awqk_w4 d;
    w4host(int K_, int N_, int gs_)
        : K(K_), N(N_), gs(gs_), qw((size_t)K_ * N_ / 8), qz((size_t)K_ / gs_ * N_ / 8),
          sc((size_t)K_ / gs_ * N_), prep((size_t)K_ * N_ / 8) {}
};

static int unpack(const int32_t *words, int nwc, int row, int col) {
    const uint32_t w = (uint32_t)words[(size_t)row * nwc + col / 8];
    for (int i = 0; i < 8; i++)
        if (kSlotCol[i] == col % 8) return (int)((w >> (4 * i)) & 15u);
    return -1;
}

/* integer: scales 2^-2 .. 2^2; else fp16 scales in [0.002, 0.05) with a few larger ones. */
static void make_w4(w4host &w, bool integer) {
    const int K = w.K, N = w.N, G = K / w.gs, nwc = N / 8;
    std::vector<uint8_t> q((size_t)K * N), z((size_t)G * N);
    for (auto &v : q) v = (uint8_t)rng_int(16);
    for (int g = 0; g < G; g++)
        for (int n = 0; n < N; n++) {
            const int sel = (n + g) % 8; /* zero points 0 and 15 in every group */
            z[(size_t)g * N + n] = sel == 0 ? 0 : sel == 1 ? 15 : (uint8_t)rng_int(16);
            const float s = integer
                ? ldexpf(1.0f, rng_int(5) - 2)
                : (n % 13 == 5 ? 0.3f + 0.2f * (float)rng_uni() : 0.002f + 0.048f * (float)rng_uni());
            w.sc[(size_t)g * N + n] = awq_f32_to_f16(s);
        }
    for (int k = 0; k < K; k++)
        for (int j = 0; j < nwc; j++) {
            uint32_t word = 0;
            for (int i = 0; i < 8; i++) word |= (uint32_t)q[(size_t)k * N + 8 * j + kSlotCol[i]] << (4 * i);
            w.qw[(size_t)k * nwc + j] = (int32_t)word;
        }
    for (int g = 0; g < G; g++)
        for (int j = 0; j < nwc; j++) {
            uint32_t word = 0;
            for (int i = 0; i < 8; i++) word |= (uint32_t)z[(size_t)g * N + 8 * j + kSlotCol[i]] << (4 * i);
            w.qz[(size_t)g * nwc + j] = (int32_t)word;
        }
    /* reference weights from the packed words */
    w.W.assign((size_t)N * K, 0.0);
    w.Wh.assign((size_t)N * K, 0.0);
    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++) {
            const int g = k / w.gs;
            const double s = awq_f16_to_f32(w.sc[(size_t)g * N + n]);
            const double v = (unpack(w.qw.p, nwc, k, n) - unpack(w.qz.p, nwc, g, n)) * s;
            w.W[(size_t)n * K + k] = v;
            w.Wh[(size_t)n * K + k] = awq_f16_to_f32(awq_f32_to_f16((float)v)); /* v is exact in float */
        }
    w.d.K = K;
    w.d.N = N;
    w.d.gs = w.gs;
    w.d.qweight = w.qw.p;
    w.d.qzeros = w.qz.p;
    w.d.scales = w.sc.p;
    w.d.prepared = NULL;
}

/* x (M, K) at ldx: integer -> small integers in [-4, 4]; else uniform [-1, 1). */
static void make_x(float *x, int M, int K, long long ldx, bool integer) {
    for (int m = 0; m < M; m++)
        for (int k = 0; k < K; k++) x[(long long)m * ldx + k] = integer ? (float)(rng_int(9) - 4) : rng_sym();
}

/* Bias (N,) of dtype dt (-1: none) into b, and its values as doubles. */
static const void *make_bias(buf<float> &b, int dt, int N, bool integer, std::vector<double> &vals) {
    vals.assign(N, 0.0);
    if (dt < 0) return NULL;
    for (int n = 0; n < N; n++) {
        float v = integer ? (float)(rng_int(17) - 8) : rng_sym();
        if (dt == AWQK_F16) {
            reinterpret_cast<uint16_t *>(b.p)[n] = awq_f32_to_f16(v);
            v = awq_f16_to_f32(awq_f32_to_f16(v));
        } else if (dt == AWQK_BF16) {
            reinterpret_cast<uint16_t *>(b.p)[n] = awq_f32_to_bf16(v);
            v = awq_bf16_to_f32(awq_f32_to_bf16(v));
        } else {
            b.p[n] = v;
        }
        vals[n] = v;
    }
    return b.p;
}
static const char *dt_name(int dt) {
    return dt < 0 ? "none" : dt == AWQK_F32 ? "f32" : dt == AWQK_F16 ? "f16" : "bf16";
}

/* ---- W4A16 GEMV ---------------------------------------------------------------------------- */

static void test_w4_gemv(int M, int K, int N, int gs, int bias_dt, bool prep, bool integer) {
    awqk_ctx kc = make_ctx(80, 8);
    w4host w(K, N, gs);
    make_w4(w, integer);
    bool ok = true;
    if (prep) {
        if (awqk_w4_prepared_bytes(K, N, gs) != (size_t)K * N / 2) ok = false;
        if (awqk_w4_prepare(&kc, &w.d, w.prep.p)) ok = false;
        w.d.prepared = w.prep.p;
    }
    const long long ldx = K + 3, ldy = N + 5;
    buf<float> x((size_t)M * ldx + 1), b(N);
    float *xp = x.p + 1; /* unaligned x rows */
    make_x(xp, M, K, ldx, integer);
    std::vector<double> bv, ref((size_t)M * N);
    const void *bp = make_bias(b, bias_dt, N, integer, bv);
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double s = 0.0;
            for (int k = 0; k < K; k++) s += (double)xp[(long long)m * ldx + k] * w.W[(size_t)n * K + k];
            ref[(size_t)m * N + n] = s + bv[n];
        }
    const size_t total = (size_t)(M + 1) * ldy;
    buf<float> y(total);
    fill_sentinel(y.p, total);
    if (awqk_w4_gemv(&kc, &w.d, M, xp, ldx, y.p, ldy, bp, bias_dt < 0 ? 0 : bias_dt)) {
        printf("     launch error: %s\n", kc.err);
        ok = false;
    }
    bool pad_ok;
    int bad;
    const double r = check_out(y.p, ldy, total, M, N, ref, NULL, 1e-4, 1e-6, integer, &pad_ok, &bad);
    report("w4_gemv", ok && pad_ok, r, "M=%d K=%d N=%d gs=%d bias=%s %s %s%s", M, K, N, gs, dt_name(bias_dt),
           prep ? "prepared" : "canonical", integer ? "int" : "rand", pad_ok ? "" : " PADDING WRITTEN");
}

static void test_w4_gemv_multi(int M, int K, int gs, bool integer, int mix) {
    awqk_ctx kc = make_ctx(80, 8);
    const int Ns[3] = {72, 8, 200};
    const int nw = 3;
    w4host w0(K, Ns[0], gs), w1(K, Ns[1], gs), w2(K, Ns[2], gs);
    w4host *ws[3] = {&w0, &w1, &w2};
    bool ok = true;
    for (int i = 0; i < nw; i++) {
        make_w4(*ws[i], integer);
        const bool prep = mix == 0 ? true : mix == 1 ? false : (i != 1);
        if (prep) {
            if (awqk_w4_prepare(&kc, &ws[i]->d, ws[i]->prep.p)) ok = false;
            ws[i]->d.prepared = ws[i]->prep.p;
        }
    }
    const long long ldx = K;
    buf<float> x((size_t)M * ldx);
    make_x(x.p, M, K, ldx, integer);
    buf<float> b0(Ns[0]), b1(Ns[1]), b2(Ns[2]);
    std::vector<double> bv[3];
    const int bdt[3] = {AWQK_F16, -1, AWQK_F32};
    const void *bp[3] = {make_bias(b0, bdt[0], Ns[0], integer, bv[0]),
                         make_bias(b1, bdt[1], Ns[1], integer, bv[1]),
                         make_bias(b2, bdt[2], Ns[2], integer, bv[2])};
    const int bdt_l[3] = {AWQK_F16, 0, AWQK_F32};
    std::vector<buf<float> *> ys;
    float *yp[3];
    long long ldy[3];
    const awqk_w4 *wd[3];
    for (int i = 0; i < nw; i++) {
        ldy[i] = Ns[i] + i;
        ys.push_back(new buf<float>((size_t)(M + 1) * ldy[i]));
        fill_sentinel(ys[i]->p, (size_t)(M + 1) * ldy[i]);
        yp[i] = ys[i]->p;
        wd[i] = &ws[i]->d;
    }
    if (awqk_w4_gemv_multi(&kc, nw, wd, M, x.p, ldx, yp, ldy, bp, bdt_l)) {
        printf("     launch error: %s\n", kc.err);
        ok = false;
    }
    double worst = 0.0;
    bool pad_all = true;
    for (int i = 0; i < nw; i++) {
        const int N = Ns[i];
        std::vector<double> ref((size_t)M * N);
        for (int m = 0; m < M; m++)
            for (int n = 0; n < N; n++) {
                double s = 0.0;
                for (int k = 0; k < K; k++) s += (double)x[(size_t)m * ldx + k] * ws[i]->W[(size_t)n * K + k];
                ref[(size_t)m * N + n] = s + bv[i][n];
            }
        bool pad_ok;
        int bad;
        worst = fmax(worst,
                     check_out(yp[i], ldy[i], (size_t)(M + 1) * ldy[i], M, N, ref, NULL, 1e-4, 1e-6, integer,
                               &pad_ok, &bad));
        pad_all = pad_all && pad_ok;
        delete ys[i];
    }
    report("w4_gemv_multi", ok && pad_all, worst, "M=%d K=%d N=72,8,200 gs=%d layouts=%s %s", M, K, gs,
           mix == 0       ? "prepared"
               : mix == 1 ? "canonical"
                          : "mixed",
           integer ? "int" : "rand");
}

/* ---- W4A16 Tensor-Core GEMM ---------------------------------------------------------------- */

static void test_w4_gemm(int M, int K, int N, int gs, int bias_dt, int sm, int n_sm, bool integer,
                         bool nan_row = false) {
    awqk_ctx kc = make_ctx(sm, n_sm);
    w4host w(K, N, gs);
    make_w4(w, integer);
    const long long ldx = K + 1, ldy = N + 3;
    buf<float> x((size_t)M * ldx), b(N);
    make_x(x.p, M, K, ldx, integer);
    if (nan_row) x[(size_t)(M / 2) * ldx + K / 3] = NAN;
    std::vector<double> bv;
    const void *bp = make_bias(b, bias_dt, N, integer, bv);
    std::vector<double> ref_h((size_t)M * N), ref_x((size_t)M * N), mag((size_t)M * N), mag_x((size_t)M * N);
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double s = 0.0, s2 = 0.0, a = 0.0, a2 = 0.0;
            for (int k = 0; k < K; k++) {
                const double xv = x[(size_t)m * ldx + k], xh = awq_f16_to_f32(awq_f32_to_f16((float)xv));
                s += xh * w.Wh[(size_t)n * K + k];
                a += fabs(xh * w.Wh[(size_t)n * K + k]);
                s2 += xv * w.W[(size_t)n * K + k];
                a2 += fabs(xv * w.W[(size_t)n * K + k]);
            }
            ref_h[(size_t)m * N + n] = s + bv[n];
            ref_x[(size_t)m * N + n] = s2 + bv[n];
            mag[(size_t)m * N + n] = a + fabs(bv[n]);
            mag_x[(size_t)m * N + n] = a2;
        }
    const size_t wsb = awqk_w4_gemm_ws_bytes(&kc, M, K, N);
    buf<unsigned char> ws(wsb, 0xff);
    const size_t total = (size_t)(M + 1) * ldy;
    buf<float> y(total);
    fill_sentinel(y.p, total);
    bool ok = true;
    if (awqk_w4_gemm(&kc, &w.d, M, x.p, ldx, y.p, ldy, bp, bias_dt < 0 ? 0 : bias_dt, ws.p, wsb)) {
        printf("     launch error: %s\n", kc.err);
        ok = false;
    }
    const gk_w4_plan plan = gk_w4_plan_for(&kc, M, K, N);
    bool pad_ok, pad2;
    int bad, bad2;
    /* r: the kernel against its own arithmetic (fp16 operands, fp32 sums); r2: against the exact
     * product, where |x w - fp16(x) fp16(w)| <= (2^-10 + 2^-22) |x w| per term bounds the error;
     * rr: the row-relative 2e-3 * row + 1e-5 of tests/backends/test_ops.c, printed for information
     * (a statistical limit: with zero-mean data and few columns it can be exceeded legitimately). */
    const double r =
        check_out(y.p, ldy, total, M, N, ref_h, integer ? NULL : &mag, 1e-5, 1e-30, integer, &pad_ok, &bad);
    const double r2 =
        integer ? 0.0 : check_out(y.p, ldy, total, M, N, ref_x, &mag_x, 1.03e-3, 1e-6, false, &pad2, &bad2);
    const double rr =
        integer ? 0.0 : check_out(y.p, ldy, total, M, N, ref_x, NULL, 2e-3, 1e-5, false, &pad2, &bad2);
    if (bad >= 0 && r > 1.0)
        printf("     first bad m=%d n=%d got %.9g ref %.9g\n", bad / N, bad % N,
               y[(size_t)(bad / N) * ldy + bad % N], ref_h[bad]);
    report("w4_gemm", ok && pad_ok, fmax(r, r2),
           "M=%d K=%d N=%d gs=%d bias=%s sm=%d n_sm=%d split=%d %s%s [%.2g %.2g %.2g]%s", M, K, N, gs,
           dt_name(bias_dt), sm, n_sm, plan.splits, integer ? "int" : "rand", nan_row ? " nan" : "", r, r2,
           rr, pad_ok ? "" : " PADDING WRITTEN");
}

/* A workspace smaller than asked for: fewer splits, same result. */
static void test_w4_gemm_small_ws() {
    awqk_ctx kc = make_ctx(80, 64);
    const int M = 9, K = 512, N = 72, gs = 64;
    w4host w(K, N, gs);
    make_w4(w, true);
    buf<float> x((size_t)M * K);
    make_x(x.p, M, K, K, true);
    std::vector<double> ref((size_t)M * N);
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double s = 0.0;
            for (int k = 0; k < K; k++) s += x[(size_t)m * K + k] * w.Wh[(size_t)n * K + k];
            ref[(size_t)m * N + n] = s;
        }
    const gk_w4_plan p = gk_w4_plan_for(&kc, M, K, N);
    const size_t wsb = p.xh_bytes + 2 * (size_t)M * N * 4 + 100; /* room for 2 splits only */
    buf<unsigned char> ws(wsb);
    buf<float> y((size_t)M * N);
    fill_sentinel(y.p, (size_t)M * N);
    bool ok = p.splits > 2 && awqk_w4_gemm(&kc, &w.d, M, x.p, K, y.p, N, NULL, 0, ws.p, wsb) == 0;
    bool pad_ok;
    int bad;
    const double r = check_out(y.p, N, (size_t)M * N, M, N, ref, NULL, 0, 0, true, &pad_ok, &bad);
    /* and a workspace too small for x: refused with a message */
    buf<float> y2((size_t)M * N);
    const bool refused = awqk_w4_gemm(&kc, &w.d, M, x.p, K, y2.p, N, NULL, 0, ws.p, 16) != 0 && kc.err[0];
    report("w4_gemm", ok && refused && pad_ok, r,
           "small workspace: splits %d -> 2, and too small refused (%s)", p.splits, kc.err);
}

/* ---- W4 dequantization --------------------------------------------------------------------- */

static void test_w4_dequant(int K, int N, int gs, int k0, int nk, long long ld, bool integer) {
    awqk_ctx kc = make_ctx(80, 8);
    w4host w(K, N, gs);
    make_w4(w, integer);
    const size_t total = (size_t)(nk + 1) * ld + 8;
    buf<uint16_t> d(total, 0xee);
    const uint16_t *dp = d.p + (ld % 8 ? 1 : 0); /* unaligned rows: scalar stores */
    bool ok = awqk_w4_dequant(&kc, &w.d, k0, nk, const_cast<uint16_t *>(dp), ld) == 0;
    long long bad = 0, pad = 0;
    for (int k = 0; k < nk; k++)
        for (int n = 0; n < N; n++) {
            const uint16_t want = awq_f32_to_f16((float)w.W[(size_t)n * K + k0 + k]);
            if (dp[(size_t)k * ld + n] != want) bad++;
        }
    for (size_t i = 0; i < total; i++) {
        const long long off = (long long)(i - (size_t)(dp - d.p));
        const bool inside = off >= 0 && off / ld < nk && off % ld < N;
        if (!inside && d.p[i] != 0xeeee) pad++;
    }
    report("w4_dequant", ok && bad == 0 && pad == 0, 0.0,
           "K=%d N=%d gs=%d rows %d..%d ld=%lld %s: %lld wrong, %lld pad", K, N, gs, k0, k0 + nk - 1, ld,
           integer ? "int" : "rand", bad, pad);
}

/* ---- dense --------------------------------------------------------------------------------- */

/* Weights (N, K) at ldw of dtype dt and their exact values. */
static void make_dense_w(void *w, int dt, int N, int K, long long ldw, bool integer, std::vector<double> &W) {
    W.assign((size_t)N * K, 0.0);
    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++) {
            float v = integer ? (float)(rng_int(9) - 4) : rng_sym();
            const long long i = (long long)n * ldw + k;
            if (dt == AWQK_F16) {
                static_cast<uint16_t *>(w)[i] = awq_f32_to_f16(v);
                v = awq_f16_to_f32(awq_f32_to_f16(v));
            } else if (dt == AWQK_BF16) {
                static_cast<uint16_t *>(w)[i] = awq_f32_to_bf16(v);
                v = awq_bf16_to_f32(awq_f32_to_bf16(v));
            } else {
                static_cast<float *>(w)[i] = v;
            }
            W[(size_t)n * K + k] = v;
        }
}

static void test_dense(bool gemv, int M, int K, int N, int wdt, int bias_dt, bool aligned, bool integer) {
    awqk_ctx kc = make_ctx(80, 8);
    const long long ldw = aligned ? (K + 7) / 8 * 8 : K + 1, ldx = aligned ? (K + 3) / 4 * 4 : K + 1,
                    ldy = N + 2;
    const int es = wdt == AWQK_F32 ? 4 : 2;
    buf<unsigned char> w((size_t)N * ldw * es + 16);
    std::vector<double> W;
    make_dense_w(w.p, wdt, N, K, ldw, integer, W);
    buf<float> x((size_t)M * ldx), b(N);
    make_x(x.p, M, K, ldx, integer);
    std::vector<double> bv, ref((size_t)M * N);
    const void *bp = make_bias(b, bias_dt, N, integer, bv);
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double s = 0.0;
            for (int k = 0; k < K; k++) s += (double)x[(size_t)m * ldx + k] * W[(size_t)n * K + k];
            ref[(size_t)m * N + n] = s + bv[n];
        }
    const size_t total = (size_t)(M + 1) * ldy;
    buf<float> y(total);
    fill_sentinel(y.p, total);
    const int bd = bias_dt < 0 ? 0 : bias_dt;
    const int rc = gemv ? awqk_dense_gemv(&kc, M, K, N, x.p, ldx, w.p, wdt, ldw, bp, bd, y.p, ldy)
                        : awqk_dense_gemm(&kc, M, K, N, x.p, ldx, w.p, wdt, ldw, bp, bd, y.p, ldy);
    if (rc) printf("     launch error: %s\n", kc.err);
    bool pad_ok;
    int bad;
    const double r = check_out(y.p, ldy, total, M, N, ref, NULL, 1e-4, 1e-6, integer, &pad_ok, &bad);
    report(gemv ? "dense_gemv" : "dense_gemm", rc == 0 && pad_ok, r, "M=%d K=%d N=%d w=%s bias=%s %s %s", M,
           K, N, dt_name(wdt), dt_name(bias_dt), aligned ? "aligned" : "unaligned", integer ? "int" : "rand");
}

static void test_gram(int n, int C, bool accumulate, bool integer) {
    awqk_ctx kc = make_ctx(80, 8);
    const long long ldx = C + 1, ldg = C + 3;
    buf<float> x((size_t)(n > 0 ? n : 1) * ldx);
    make_x(x.p, n, C, ldx, integer);
    const size_t total = (size_t)(C + 1) * ldg;
    buf<float> g(total);
    fill_sentinel(g.p, total);
    std::vector<double> ref((size_t)C * C);
    for (int i = 0; i < C; i++)
        for (int j = 0; j < C; j++) {
            double s = 0.0;
            if (accumulate) {
                const float g0 = integer ? (float)(rng_int(9) - 4) : rng_sym();
                g[(size_t)i * ldg + j] = g0;
                s = g0;
            }
            for (int r = 0; r < n; r++) s += (double)x[(size_t)r * ldx + i] * x[(size_t)r * ldx + j];
            ref[(size_t)i * C + j] = s;
        }
    const int rc = awqk_gram(&kc, n, C, x.p, ldx, g.p, ldg, accumulate);
    if (rc) printf("     launch error: %s\n", kc.err);
    bool pad_ok;
    int bad;
    const double r = check_out(g.p, ldg, total, C, C, ref, NULL, 1e-4, 1e-6, integer, &pad_ok, &bad);
    bool sym = true;
    for (int i = 0; i < C; i++)
        for (int j = 0; j < C; j++)
            if (!accumulate && g[(size_t)i * ldg + j] != g[(size_t)j * ldg + i]) sym = false;
    report("gram", rc == 0 && pad_ok && sym, r, "n=%d C=%d %s %s%s", n, C,
           accumulate ? "accumulate" : "overwrite", integer ? "int" : "rand", sym ? "" : " NOT SYMMETRIC");
}

/* ---- main ---------------------------------------------------------------------------------- */

int main() {
    const auto t0 = std::chrono::steady_clock::now();

    const int bias_cycle[4] = {-1, AWQK_F16, AWQK_F32, AWQK_BF16};
    const int gs_cycle[3] = {32, 64, 128};

    /* W4A16 GEMV: M 1..8 x both layouts x random / integer data; gs 32/64/128, K = 1..5 groups,
     * N 8, 72, 200 (not multiples of anything but 8), every bias dtype */
    int ci = 0;
    for (int M = 1; M <= 8; M++)
        for (int prep = 0; prep < 2; prep++)
            for (int integer = 0; integer < 2; integer++, ci++) {
                const int gs = gs_cycle[ci % 3], K = gs * (1 + ci % 5),
                          N = ci % 3 == 0 ? 8
                    : ci % 3 == 1         ? 72
                                          : 200;
                test_w4_gemv(M, K, N, gs, bias_cycle[ci % 4], prep, integer);
            }
    test_w4_gemv(1, 8, 8, 8, AWQK_F32, true, false); /* tiny: gs 8, K 8 */
    test_w4_gemv(3, 1152, 16, 128, -1, true, true);  /* K > 512: several chunk rounds */
    test_w4_gemv(8, 1152, 16, 128, AWQK_F16, true, false);
    test_w4_gemv(6, 2048, 64, 64, AWQK_F32, false, false);
    test_w4_gemv(2, 96, 264, 24, AWQK_F16, true, false); /* gs 24: a group boundary inside 512-k rounds */
    test_w4_gemv(5, 96, 264, 24, -1, false, true);
    test_w4_gemv(7, 200, 40, 40, AWQK_BF16, true, true); /* gs 40 */
    for (int mix = 0; mix < 3; mix++)
        for (int integer = 0; integer < 2; integer++)
            test_w4_gemv_multi(mix == 2 ? 8 : 1 + 2 * mix + integer, 256, 64, integer, mix);

    /* Tensor-Core GEMM: M 1..17, 33, 130 x sm 75 / 80 x random / integer data; N 8, 72, 200, 256
     * (256: 16-byte aligned rows, cp.async for the packed words too), gs 32/64/128 with K = 1..4
     * groups, n_sm 1 (no split), 16, 64 (split-K where the tiles leave SMs idle), every bias */
    const int Ms[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 33, 130};
    ci = 0;
    for (int M : Ms)
        for (int sm : {75, 80})
            for (int integer = 0; integer < 2; integer++, ci++) {
                const int gs = gs_cycle[ci % 3], K = gs * (1 + ci % 4);
                const int N = ci % 4 == 0 ? 8 : ci % 4 == 1 ? 72 : ci % 4 == 2 ? 200 : 256;
                const int n_sm = ci % 5 == 0 ? 1 : ci % 5 < 3 ? 16 : 64;
                test_w4_gemm(M, K, N, gs, bias_cycle[ci % 4], sm, n_sm, integer);
            }
    test_w4_gemm(20, 96, 264, 24, AWQK_F16, 80, 8, false); /* gs 24: groups straddle k tiles */
    test_w4_gemm(20, 96, 264, 24, -1, 75, 8, true);
    test_w4_gemm(12, 48, 64, 8, -1, 80, 8, true); /* gs 8: 4 groups per k tile, K % 32 != 0 */
    test_w4_gemm(12, 48, 64, 8, AWQK_F32, 75, 64, false);
    test_w4_gemm(9, 200, 96, 40, AWQK_F32, 75, 4, false);   /* gs 40, K 200 */
    test_w4_gemm(16, 256, 128, 64, -1, 80, 8, false, true); /* NaN in one row of x */
    test_w4_gemm(16, 256, 128, 64, -1, 75, 8, false, true);
    test_w4_gemm(130, 1024, 512, 128, AWQK_F16, 80, 132, false);
    test_w4_gemm(257, 256, 136, 64, AWQK_BF16, 75, 8, true);
    test_w4_gemm_small_ws();

    /* dequantization */
    test_w4_dequant(256, 72, 64, 64, 128, 72, false);
    test_w4_dequant(384, 200, 128, 0, 384, 200, true);
    test_w4_dequant(96, 264, 32, 32, 64, 267, false); /* unaligned destination rows */
    test_w4_dequant(48, 8, 8, 16, 16, 8, false);

    /* dense GEMV: M 1..8 x F32/F16/BF16 weights x aligned (128-bit loads) / unaligned rows */
    ci = 0;
    for (int M = 1; M <= 8; M++)
        for (int wdt = 0; wdt < 3; wdt++)
            for (int al = 0; al < 2; al++, ci++)
                test_dense(true, M, 37 + 8 * M + 3 * al,
                           ci % 3 == 0       ? 9
                               : ci % 3 == 1 ? 72
                                             : 13,
                           wdt, bias_cycle[ci % 4], al, ci % 2 == 1);
    test_dense(true, 2, 4096, 5, AWQK_F16, AWQK_F32, true, false);
    /* dense SIMT GEMM: M 1..17, 33, 130 x random / integer */
    ci = 0;
    for (int M : Ms)
        for (int integer = 0; integer < 2; integer++, ci++)
            test_dense(false, M,
                       ci % 3 == 0       ? 40
                           : ci % 3 == 1 ? 100
                                         : 17,
                       ci % 3 == 0       ? 8
                           : ci % 3 == 1 ? 72
                                         : 200,
                       ci % 3, bias_cycle[ci % 4], ci % 2 == 0, integer);
    test_dense(false, 70, 33, 130, AWQK_BF16, AWQK_BF16, false, true);
    for (int n : {0, 1, 17, 130})
        for (int acc = 0; acc < 2; acc++)
            for (int integer = 0; integer < 2; integer++)
                test_gram(n, n == 130 ? 72 : n == 17 ? 100 : 8, acc, integer);

    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    printf("%d passed, %d failed (%.1f s)\n", g_pass, g_fail, secs);
    return g_fail ? 1 : 0;
}
