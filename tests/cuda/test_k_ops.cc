/*
 * test_k_ops.cc - the CUDA row/element-wise, attention and quantization kernels (backend_cuda/
 * kernels/ops.cuh, attention.cuh, quant.cuh through the launchers of launch_ops.cuh) run on the
 * SIMT emulator (-DAWQ_CUDA_EMU: device pointers are host pointers) against independent
 * references: double-precision loops, and for quantize_w4 a scalar reference that rounds to fp16
 * after every operation (docs/algorithm.md 7.4) with its own fp16 rounding. Tolerances are those of
 * tests/backends/test_ops.c. Odd shapes, strided views, GQA, windows, n_past > 0, B > 1, NaN
 * where the contract says so, decode (split-KV) vs prefill. One line per case; exit 1 on failure.
 *
 * Build and run: see tests/cuda/README-ops.md.
 */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <vector>

#include "intrin.cuh"
#include "launch.h"
#include "launch_ops.cuh"

/* ---- infrastructure ------------------------------------------------------------------------ */

static int g_pass, g_fail;
static awqk_ctx g_kc;

/* One result line: the worst err / limit ratio over the case (<= 1 passes) and any extra check. */
static void report(const char *op, bool ok, double ratio, const char *fmt, ...) {
    char shape[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(shape, sizeof shape, fmt, ap);
    va_end(ap);
    ok = ok && ratio <= 1.0 && ratio == ratio;
    printf("%-4s %-16s %-62s worst err/limit %.3g\n", ok ? "PASS" : "FAIL", op, shape, ratio);
    fflush(stdout);
    ok ? g_pass++ : g_fail++;
}

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static uint64_t rng_u64() {
    uint64_t z = (g_rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static double rng_uniform() { return (double)(rng_u64() >> 11) * 0x1p-53; }
static float rng_normal() {
    double u = rng_uniform() + 1e-300, v = rng_uniform();
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}
static int rng_int(int n) { return (int)(rng_u64() % (uint64_t)n); }

static const char *dt_name(int dt) { return dt == AWQK_F16 ? "f16" : dt == AWQK_BF16 ? "bf16" : "f32"; }

/* Independent reference rounding: x to a binary format with mant fraction bits, minimum normal
 * exponent emin and maximum exponent emax, to nearest even (overflow -> inf, NaN stays). */
static double ref_round(double x, int mant, int emin, int emax) {
    if (x != x || x == 0.0 || isinf(x)) return x;
    double a = fabs(x);
    int e;
    frexp(a, &e); /* a in [2^(e-1), 2^e) */
    int ef = e - 1 < emin ? emin : e - 1;
    double ulp = ldexp(1.0, ef - mant);
    double r = nearbyint(a / ulp) * ulp;
    double maxf = ldexp(2.0 - ldexp(1.0, -mant), emax);
    if (r > maxf) r = INFINITY;
    return copysign(r, x);
}
static double ref_f16(double x) { return ref_round(x, 10, -14, 15); }
static double ref_bf16(double x) { return ref_round(x, 7, -126, 127); }
static double ref_f32(double x) { return ref_round(x, 23, -126, 127); }
/* fp16 / bf16 bits -> value, decoded independently of the emulator's helpers */
static double dec_f16(uint16_t h) {
    int e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp((double)m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024.0 + m, e - 25);
    return (h & 0x8000) ? -v : v;
}
static double dec_bf16(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
/* value -> fp16 bits (v already an fp16 value) */
static uint16_t enc_f16(double v) {
    uint16_t s = signbit(v) ? 0x8000 : 0;
    double a = fabs(v);
    if (a != a) return s | 0x7e00;
    if (isinf(a)) return s | 0x7c00;
    if (a < ldexp(1.0, -14)) return s | (uint16_t)(a * ldexp(1.0, 24));
    int e;
    double fr = frexp(a, &e);
    return s | (uint16_t)((e - 1 + 15) << 10) | (uint16_t)(fr * 2048.0 - 1024.0);
}
static uint16_t enc_bf16(double v) { /* v already a bf16 value */
    float f = (float)v;
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)(u >> 16);
}
static double load_dt(const void *p, int dt, long long i) {
    if (dt == AWQK_F16) return dec_f16(((const uint16_t *)p)[i]);
    if (dt == AWQK_BF16) return dec_bf16(((const uint16_t *)p)[i]);
    return ((const float *)p)[i];
}
/* A float array of dtype dt holding rounded normal values (as raw storage). */
struct fbuf {
    int dt;
    std::vector<uint16_t> h;
    std::vector<float> f;
    fbuf(int dt_, size_t n) : dt(dt_) { dt == AWQK_F32 ? f.resize(n) : h.resize(n); }
    void set(size_t i, double v) {
        if (dt == AWQK_F16)
            h[i] = enc_f16(ref_f16(v));
        else if (dt == AWQK_BF16)
            h[i] = enc_bf16(ref_bf16(v));
        else
            f[i] = (float)v;
    }
    double get(size_t i) const { return load_dt(ptr(), dt, (long long)i); }
    const void *ptr() const { return dt == AWQK_F32 ? (const void *)f.data() : (const void *)h.data(); }
    void *ptr() { return dt == AWQK_F32 ? (void *)f.data() : (void *)h.data(); }
};

static const float SENT = 12345.5f; /* sentinel in padding that must stay untouched */

/* ---- rmsnorm ------------------------------------------------------------------------------- */

static void t_rmsnorm(int n, int d, long long ldx, long long ldy, int gdt, bool inplace) {
    std::vector<float> x((size_t)n * ldx, SENT), y((size_t)n * ldy, SENT);
    fbuf g(gdt, d);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < d; j++) x[(size_t)i * ldx + j] = rng_normal() * (i + 1);
    for (int j = 0; j < d; j++) g.set(j, 1.0 + 0.5 * rng_normal());
    std::vector<float> x0 = x;
    const float eps = 1e-6f;
    float *yp = inplace ? x.data() : y.data();
    long long ldo = inplace ? ldx : ldy;
    int rc = awqk_rmsnorm(&g_kc, n, d, x.data(), ldx, g.ptr(), gdt, eps, yp, ldo);
    double worst = 0;
    bool pad_ok = true;
    for (int i = 0; i < n; i++) {
        double ss = 0;
        for (int j = 0; j < d; j++) ss += (double)x0[(size_t)i * ldx + j] * x0[(size_t)i * ldx + j];
        double r = 1.0 / sqrt(ss / d + eps);
        for (int j = 0; j < d; j++) {
            double ref = x0[(size_t)i * ldx + j] * r * g.get(j);
            double err = fabs(yp[(size_t)i * ldo + j] - ref);
            worst = std::max(worst, err / (1e-5 * fabs(ref) + 1e-7));
        }
        for (long long j = d; j < ldo; j++) pad_ok &= yp[(size_t)i * ldo + j] == SENT;
    }
    report("rmsnorm", rc == 0 && pad_ok, worst, "n %d d %d ldx %lld ldy %lld gamma %s%s", n, d, ldx, ldo,
           dt_name(gdt), inplace ? " in place" : "");
}

/* ---- rope ---------------------------------------------------------------------------------- */

static void t_rope(int nt, int nh, int hd, long long s1, long long s0, float af, int maxpos) {
    const int half = hd / 2;
    std::vector<float> x((size_t)nt * s0, SENT), inv(half);
    std::vector<int32_t> pos(nt);
    for (int t = 0; t < nt; t++) pos[t] = t == 0 ? 0 : rng_int(maxpos + 1);
    if (nt > 1) pos[nt - 1] = maxpos;
    for (int i = 0; i < half; i++) inv[i] = (float)pow(10000.0, -2.0 * i / hd);
    for (int t = 0; t < nt; t++)
        for (int h = 0; h < nh; h++)
            for (int j = 0; j < hd; j++) x[(size_t)t * s0 + (size_t)h * s1 + j] = rng_normal();
    std::vector<float> x0 = x;
    int rc = awqk_rope(&g_kc, nt, nh, half, x.data(), s0, s1, pos.data(), inv.data(), af);
    double worst = 0;
    bool pad_ok = true;
    for (int t = 0; t < nt; t++)
        for (int h = 0; h < nh; h++) {
            const float *a0 = &x0[(size_t)t * s0 + (size_t)h * s1];
            const float *got = &x[(size_t)t * s0 + (size_t)h * s1];
            std::vector<double> ref(hd);
            double rowmax = 0;
            for (int i = 0; i < half; i++) {
                double th = (double)((float)pos[t] * inv[i]); /* the fp32 angle of the contract */
                double c = cos(th) * af, s = sin(th) * af;
                ref[i] = a0[i] * c - a0[i + half] * s;
                ref[i + half] = a0[i + half] * c + a0[i] * s;
            }
            for (int j = 0; j < hd; j++) rowmax = std::max(rowmax, fabs(ref[j]));
            for (int j = 0; j < hd; j++)
                worst = std::max(worst, fabs(got[j] - ref[j]) / (1e-5 * rowmax + 1e-7));
        }
    for (size_t e = 0; e < x.size(); e++) {
        size_t t = e / s0, r = e % s0, h = r / s1, j = r % s1;
        if (h >= (size_t)nh || j >= (size_t)hd) pad_ok &= x[e] == SENT;
        (void)t;
    }
    report("rope", rc == 0 && pad_ok, worst, "nt %d nh %d hd %d s1 %lld s0 %lld af %g maxpos %d", nt, nh, hd,
           s1, s0, af, maxpos);
}

/* ---- silu_mul ------------------------------------------------------------------------------ */

static void t_silu_mul(int n, int d, long long ldy, long long ldg, long long ldu) {
    std::vector<float> y((size_t)n * ldy, SENT), g((size_t)n * ldg), u((size_t)n * ldu);
    for (auto &v : g) v = rng_normal() * 5;
    for (auto &v : u) v = rng_normal();
    for (size_t i = 0; i < g.size(); i += 97) g[i] = (i / 97) % 2 ? 95.0f : -95.0f; /* exp overflow */
    int rc = awqk_silu_mul(&g_kc, n, d, y.data(), ldy, g.data(), ldg, u.data(), ldu);
    double worst = 0;
    bool pad_ok = true;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < d; j++) {
            double gv = g[(size_t)i * ldg + j], ref = gv / (1.0 + exp(-gv)) * u[(size_t)i * ldu + j];
            worst = std::max(worst, fabs(y[(size_t)i * ldy + j] - ref) / (2e-6 * fabs(ref) + 1e-12));
        }
        for (long long j = d; j < ldy; j++) pad_ok &= y[(size_t)i * ldy + j] == SENT;
    }
    report("silu_mul", rc == 0 && pad_ok, worst, "n %d d %d ldy %lld ldg %lld ldu %lld", n, d, ldy, ldg, ldu);
}

/* ---- binop --------------------------------------------------------------------------------- */

static void t_binop(int n, int d, int op, int bdt, bool bcast, bool alias) {
    const long long lda = d + 3, ldy = alias ? lda : d + 1, ldb = bcast ? 0 : d + 2;
    std::vector<float> a((size_t)n * lda, SENT), y((size_t)n * (alias ? 1 : ldy), SENT);
    fbuf b(bdt, (size_t)(bcast ? 1 : n) * (bcast ? d : ldb));
    for (int i = 0; i < n; i++)
        for (int j = 0; j < d; j++) a[(size_t)i * lda + j] = rng_normal();
    for (int i = 0; i < (bcast ? 1 : n); i++)
        for (int j = 0; j < d; j++) {
            double v = rng_normal();
            if (op == 3 && fabs(v) < 0.05) v = 0.5;
            b.set((size_t)i * (bcast ? d : ldb) + j, v);
        }
    std::vector<float> a0 = a;
    float *yp = alias ? a.data() : y.data();
    int rc = awqk_binop(&g_kc, n, d, op, yp, ldy, a.data(), lda, b.ptr(), bdt, ldb);
    double worst = 0;
    bool pad_ok = true;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < d; j++) {
            double av = a0[(size_t)i * lda + j], bv = b.get((size_t)i * ldb + j);
            double r = op == 0 ? av + bv : op == 1 ? av - bv : op == 2 ? av * bv : av / bv;
            double ref = ref_f32(r); /* one correctly rounded fp32 operation */
            double err = fabs(yp[(size_t)i * ldy + j] - ref);
            worst = std::max(worst, err == 0 ? 0.0 : err / (1e-6 * fabs(ref)));
        }
        for (long long j = d; j < ldy; j++) pad_ok &= yp[(size_t)i * ldy + j] == SENT;
    }
    static const char *ops[] = {"add", "sub", "mul", "div"};
    report("binop", rc == 0 && pad_ok, worst, "%s n %d d %d b %s%s%s", ops[op], n, d, dt_name(bdt),
           bcast ? " broadcast" : "", alias ? " y=a" : "");
}

/* ---- get_rows ------------------------------------------------------------------------------ */

static void t_get_rows(int n, int d, int V, int tdt, bool with_bad) {
    const long long ldt = d + 5, ldy = d + 2;
    fbuf tab(tdt, (size_t)V * ldt);
    for (size_t i = 0; i < (size_t)V * ldt; i++) tab.set(i, rng_normal());
    std::vector<int32_t> ids(n);
    for (int i = 0; i < n; i++) ids[i] = rng_int(V);
    if (with_bad) {
        ids[0] = -1;
        ids[n - 1] = V;
        if (n > 2) ids[n / 2] = 2147483647;
    }
    std::vector<float> y((size_t)n * ldy, SENT);
    int bad = 0;
    int rc = awqk_get_rows(&g_kc, n, d, y.data(), ldy, tab.ptr(), tdt, ldt, ids.data(), V, &bad);
    double worst = 0;
    bool pad_ok = true;
    for (int i = 0; i < n; i++) {
        bool in = ids[i] >= 0 && ids[i] < V;
        for (int j = 0; j < d; j++) {
            double ref = in ? tab.get((size_t)ids[i] * ldt + j) : 0.0;
            if (y[(size_t)i * ldy + j] != ref) worst = INFINITY;
        }
        for (long long j = d; j < ldy; j++) pad_ok &= y[(size_t)i * ldy + j] == SENT;
    }
    report("get_rows", rc == 0 && pad_ok && bad == (with_bad ? 1 : 0), worst,
           "n %d d %d V %d table %s%s (bad %d)", n, d, V, dt_name(tdt), with_bad ? " out-of-range ids" : "",
           bad);
}

/* ---- convert ------------------------------------------------------------------------------- */

static void t_convert(int n, int d, int xdt, int ydt) {
    const long long ldx = d + 3, ldy = d + 1;
    fbuf x(xdt, (size_t)n * ldx), y(ydt, (size_t)n * ldy);
    for (size_t i = 0; i < (size_t)n * ldx; i++) {
        double v;
        switch (rng_int(12)) {
        case 0: v = NAN; break;
        case 1: v = rng_int(2) ? INFINITY : -INFINITY; break;
        case 2: v = rng_int(2) ? -0.0 : 0.0; break;
        case 3: v = ldexp(1.0 + rng_int(1024) / 1024.0, -20 - rng_int(6)); break; /* f16 subnormals */
        case 4: v = (1.0 + (2 * rng_int(512) + 1) / 2048.0) * (rng_int(2) ? 1 : -1); break; /* f16 ties */
        case 5: v = 65504.0 + rng_int(40); break;                                           /* f16 overflow */
        case 6: v = 1.0 + (2 * rng_int(64) + 1) / 256.0; break;                             /* bf16 ties */
        default: v = rng_normal() * 100; break;
        }
        x.set(i, v);
    }
    /* padding of y: a recognisable pattern */
    for (size_t i = 0; i < (size_t)n * ldy; i++) {
        if (ydt == AWQK_F32)
            y.f[i] = SENT;
        else
            y.h[i] = 0x1234;
    }
    int rc = awqk_convert(&g_kc, n, d, y.ptr(), ydt, ldy, x.ptr(), xdt, ldx);
    int bad = 0;
    bool pad_ok = true;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < d; j++) {
            double v = x.get((size_t)i * ldx + j);
            double ref = ydt == AWQK_F16 ? ref_f16(v) : ydt == AWQK_BF16 ? ref_bf16(v) : v;
            double got = y.get((size_t)i * ldy + j);
            bool ok = (ref != ref) ? got != got : (got == ref && signbit(got) == signbit(ref));
            bad += !ok;
        }
        for (long long j = d; j < ldy; j++)
            pad_ok &= ydt == AWQK_F32 ? y.f[(size_t)i * ldy + j] == SENT : y.h[(size_t)i * ldy + j] == 0x1234;
    }
    report("convert", rc == 0 && pad_ok, bad ? INFINITY : 0.0,
           "%s -> %s n %d d %d (NaN, inf, -0, ties, subnormals)", dt_name(xdt), dt_name(ydt), n, d);
}

/* ---- attention ----------------------------------------------------------------------------- */

struct attn_case {
    int B, T, H, Hkv, hd, S, n_past, window;
    bool fused;    /* q, k, v interleaved in one buffer per token (q1 = k1 = v1), padded */
    bool misalign; /* views start one float off 16 bytes (scalar loads) */
    float qmul;    /* q scaled by this: large scores exercise the online-softmax rescaling */
};

/* Double-precision reference: softmax over allowed keys of scale * q.k, times v. */
static void attn_ref(const awqk_attn &a, std::vector<double> &ref) {
    const int group = a.H / a.Hkv;
    ref.assign((size_t)a.B * a.T * a.H * a.hd, 0.0);
    std::vector<double> sc(a.S);
    for (int b = 0; b < a.B; b++)
        for (int t = 0; t < a.T; t++)
            for (int h = 0; h < a.H; h++) {
                int hk = h / group, qp = a.n_past + t;
                int lo = a.window > 0 ? std::max(0, qp - a.window + 1) : 0;
                const float *q = a.q + b * a.q0 + t * a.q1 + h * a.q2;
                double mx = -INFINITY;
                for (int j = lo; j <= qp; j++) {
                    const float *k = a.k + b * a.k0 + (long long)j * a.k1 + hk * a.k2;
                    double s = 0;
                    for (int d = 0; d < a.hd; d++) s += (double)q[d] * k[d];
                    sc[j] = s * a.scale;
                    mx = std::max(mx, sc[j]);
                }
                double sum = 0;
                for (int j = lo; j <= qp; j++) sum += exp(sc[j] - mx);
                double *o = &ref[(((size_t)b * a.T + t) * a.H + h) * a.hd];
                for (int j = lo; j <= qp; j++) {
                    const float *v = a.v + b * a.v0 + (long long)j * a.v1 + hk * a.v2;
                    double p = exp(sc[j] - mx) / sum;
                    for (int d = 0; d < a.hd; d++) o[d] += p * v[d];
                }
            }
}

/* err / limit over out's view, limit = 1e-4 * max|row of ref| + 1e-6; also checks that nothing
 * outside the view changed. */
static double attn_check(const awqk_attn &a, const std::vector<double> &ref, const std::vector<float> &obuf,
                         size_t obase, bool *pad_ok) {
    double worst = 0;
    std::vector<char> in_view(obuf.size(), 0);
    for (int b = 0; b < a.B; b++)
        for (int t = 0; t < a.T; t++)
            for (int h = 0; h < a.H; h++) {
                const double *r = &ref[(((size_t)b * a.T + t) * a.H + h) * a.hd];
                size_t off = obase + b * a.o0 + t * a.o1 + h * a.o2;
                double rowmax = 0;
                for (int d = 0; d < a.hd; d++) rowmax = std::max(rowmax, fabs(r[d]));
                for (int d = 0; d < a.hd; d++) {
                    in_view[off + d] = 1;
                    double e = fabs(obuf[off + d] - r[d]) / (1e-4 * rowmax + 1e-6);
                    worst = std::max(worst, e != e ? INFINITY : e);
                }
            }
    *pad_ok = true;
    for (size_t i = 0; i < obuf.size(); i++)
        if (!in_view[i]) *pad_ok &= obuf[i] == SENT;
    return worst;
}

static void t_attention(const attn_case &c) {
    awqk_attn a;
    memset(&a, 0, sizeof a);
    a.B = c.B;
    a.T = c.T;
    a.H = c.H;
    a.Hkv = c.Hkv;
    a.hd = c.hd;
    a.S = c.S;
    a.n_past = c.n_past;
    a.window = c.window;
    a.scale = (float)(1.0 / sqrt((double)c.hd));
    const int hd = c.hd, mis = c.misalign ? 1 : 0;
    std::vector<float> qbuf, kbuf, vbuf;
    size_t qbase, kbase, vbase;
    if (c.fused) { /* per (b, position): [q heads | k heads | v heads | pad 3]; q only for the T new tokens */
        long long row = (long long)(c.H + 2 * c.Hkv) * hd + 3;
        qbuf.resize((size_t)c.B * c.S * row + 8);
        for (auto &v : qbuf) v = rng_normal();
        qbase = 4 + mis;
        a.q = qbuf.data() + qbase + (size_t)c.n_past * row; /* the new tokens' rows */
        a.q0 = (long long)c.S * row;
        a.q1 = row;
        a.q2 = hd;
        a.k = qbuf.data() + qbase + (size_t)c.H * hd;
        a.k0 = a.q0;
        a.k1 = row;
        a.k2 = hd;
        a.v = qbuf.data() + qbase + (size_t)(c.H + c.Hkv) * hd;
        a.v0 = a.q0;
        a.v1 = row;
        a.v2 = hd;
    } else { /* contiguous q (B, T, H, hd); a cache k/v (B, S, Hkv, hd) with padded rows */
        long long kr = (long long)c.Hkv * hd + 4 * (1 - mis) + mis;
        qbuf.resize((size_t)c.B * c.T * c.H * hd + 8);
        kbuf.resize((size_t)c.B * c.S * kr + 8);
        vbuf.resize((size_t)c.B * c.S * kr + 8);
        for (auto &v : qbuf) v = rng_normal();
        for (auto &v : kbuf) v = rng_normal();
        for (auto &v : vbuf) v = rng_normal();
        qbase = 4 + mis;
        kbase = 4 + mis;
        vbase = 4 + mis;
        a.q = qbuf.data() + qbase;
        a.q2 = hd;
        a.q1 = (long long)c.H * hd;
        a.q0 = (long long)c.T * a.q1;
        a.k = kbuf.data() + kbase;
        a.k2 = hd;
        a.k1 = kr;
        a.k0 = (long long)c.S * kr;
        a.v = vbuf.data() + vbase;
        a.v2 = hd;
        a.v1 = kr;
        a.v0 = (long long)c.S * kr;
    }
    /* out (B, T, H, hd) with padded token rows */
    const long long orow = (long long)c.H * hd + 5;
    std::vector<float> obuf((size_t)c.B * c.T * orow + 8, SENT);
    const size_t obase = 4;
    a.o0 = (long long)c.T * orow;
    a.o1 = orow;
    a.o2 = hd;
    if (c.qmul != 0.0f && c.qmul != 1.0f) { /* scale the q view only */
        for (int b = 0; b < c.B; b++)
            for (int t = 0; t < c.T; t++)
                for (int h = 0; h < c.H; h++)
                    for (int d = 0; d < hd; d++)
                        const_cast<float *>(a.q)[b * a.q0 + t * a.q1 + h * a.q2 + d] *= c.qmul;
    }
    std::vector<double> ref;
    attn_ref(a, ref);

    char shape[160];
    snprintf(shape, sizeof shape, "B %d T %d H %d Hkv %d hd %d S %d past %d win %d%s%s%s", c.B, c.T, c.H,
             c.Hkv, hd, c.S, c.n_past, c.window, c.fused ? " fused" : "", c.misalign ? " unaligned" : "",
             c.qmul > 1.0f ? " sharp" : "");
    /* prefill */
    a.o = obuf.data() + obase;
    int rc = awqk_attention_prefill(&g_kc, &a);
    bool pad_ok;
    double w = attn_check(a, ref, obuf, obase, &pad_ok);
    report("attn_prefill", rc == 0 && pad_ok, w, "%s", shape);
    std::vector<float> pre = obuf;
    /* decode (split-KV + combine), with a small and a large device: one and several chunks */
    const int nsm_save = g_kc.n_sm;
    for (int nsm : {1, 64}) {
        g_kc.n_sm = nsm;
        size_t ws_bytes = awqk_attention_decode_ws_bytes(&g_kc, &a);
        std::vector<float> ws(ws_bytes / sizeof(float) + 1, NAN);
        std::fill(obuf.begin(), obuf.end(), SENT);
        rc = awqk_attention_decode(&g_kc, &a, ws.data(), ws_bytes);
        w = attn_check(a, ref, obuf, obase, &pad_ok);
        /* decode vs prefill, same rule */
        double agree = 0;
        for (int b = 0; b < a.B; b++)
            for (int t = 0; t < a.T; t++)
                for (int h = 0; h < a.H; h++) {
                    size_t off = obase + b * a.o0 + t * a.o1 + h * a.o2;
                    double rowmax = 0;
                    for (int d = 0; d < hd; d++) rowmax = std::max(rowmax, (double)fabsf(pre[off + d]));
                    for (int d = 0; d < hd; d++)
                        agree = std::max(agree, fabs(obuf[off + d] - pre[off + d]) / (1e-4 * rowmax + 1e-6));
                }
        int nc, len;
        attn_split_plan(&g_kc, &a, &nc, &len);
        report("attn_decode", rc == 0 && pad_ok && agree <= 1.0, std::max(w, agree), "%s, %d chunks of %d",
               shape, nc, len);
        /* a workspace one byte short is refused */
        if (ws_bytes > 0 && nsm == 64) {
            rc = awqk_attention_decode(&g_kc, &a, ws.data(), ws_bytes - 1);
            report("attn_decode_ws", rc == -1 && strstr(g_kc.err, "workspace") != NULL, 0.0,
                   "%s, ws short: \"%s\"", "refused", g_kc.err);
        }
    }
    g_kc.n_sm = nsm_save;
}

/* ---- fake_quant ---------------------------------------------------------------------------- */

/* docs/algorithm.md 7.2 on fp32 values, every operation an fp32 operation (as the contract says and the
 * cpu does): s = max(max - min, 1e-5) / qmax, z = clamp(-round(min / s)), q = clamp(round(v / s)
 * + z), (q - z) s, round half to even. Returns the step s of the group. */
static float ref_pseudo_quant(std::vector<float> &v, int qmax) {
    float mx = v[0], mn = v[0];
    for (float x : v) mx = std::max(mx, x), mn = std::min(mn, x);
    const float fq = (float)qmax;
    volatile float d = mx - mn;
    volatile float s = std::max((float)d, 1e-5f) / fq;
    volatile float ms = mn / s;
    float z = std::min(std::max(-nearbyintf(ms), 0.0f), fq);
    for (float &x : v) {
        volatile float xs = x / s;
        float q = std::min(std::max(nearbyintf(xs) + z, 0.0f), fq);
        x = (q - z) * s;
    }
    return s;
}

static void t_fake_quant(int out, int G, int gs, int qmax, bool with_s, bool with_clip, bool alias) {
    const int in = G * gs;
    const long long ldw = in + 3, ldq = alias ? ldw : in + 1, ldc = G + 2;
    std::vector<float> w((size_t)out * ldw, SENT), wq((size_t)out * ldq, SENT), s(in),
        clip((size_t)out * ldc);
    for (int o = 0; o < out; o++)
        for (int k = 0; k < in; k++) w[(size_t)o * ldw + k] = rng_normal() * 0.05f;
    /* a constant group and a group of one sign */
    for (int k = 0; k < gs; k++) w[k] = 0.25f;
    if (out > 1)
        for (int k = 0; k < gs; k++) w[ldw + k] = fabsf(w[ldw + k]) + 0.01f;
    for (auto &v : s) v = (float)exp(0.5 * rng_normal());
    for (int o = 0; o < out; o++)
        for (int g = 0; g < G; g++) clip[(size_t)o * ldc + g] = 0.06f + 0.05f * (float)rng_uniform();
    std::vector<float> w0 = w;
    float *qp = alias ? w.data() : wq.data();
    int rc = awqk_fake_quant(&g_kc, out, G, gs, qmax, qp, ldq, w.data(), ldw, with_s ? s.data() : nullptr,
                             with_clip ? clip.data() : nullptr, ldc);
    double worst = 0;
    long long flips = 0, total = 0;
    bool pad_ok = true;
    for (int o = 0; o < out; o++) {
        for (int g = 0; g < G; g++) {
            std::vector<float> v(gs);
            for (int k = 0; k < gs; k++) {
                float x = w0[(size_t)o * ldw + g * gs + k] * (with_s ? s[g * gs + k] : 1.0f);
                if (with_clip) {
                    float c = clip[(size_t)o * ldc + g];
                    x = std::min(std::max(x, -c), c);
                }
                v[k] = x;
            }
            double step = ref_pseudo_quant(v, qmax);
            for (int k = 0; k < gs; k++) {
                float sv = with_s ? s[g * gs + k] : 1.0f;
                double ref = v[k] / sv, st = step / sv; /* fp32 divide as the contract */
                ref = (float)ref;
                double got = qp[(size_t)o * ldq + g * gs + k];
                double err = fabs(got - ref);
                total++;
                if (err <= 1e-6 * (fabs(ref) + st)) continue;
                if (fabs(err - st) <= 1e-5 * st)
                    flips++; /* a rounding that flips at a .5 tie */
                else
                    worst = std::max(worst, err / (1e-6 * (fabs(ref) + st)));
            }
        }
        for (long long k = in; k < ldq; k++) pad_ok &= qp[(size_t)o * ldq + k] == SENT;
    }
    bool flips_ok = flips * 200 < total || flips == 0;
    report("fake_quant", rc == 0 && pad_ok && flips_ok, worst,
           "out %d G %d gs %d qmax %d%s%s%s (%lld/%lld one-step)", out, G, gs, qmax, with_s ? " s" : "",
           with_clip ? " clip" : "", alias ? " wq=w" : "", flips, total);
}

/* ---- quantize_w4 --------------------------------------------------------------------------- */

static void t_quantize_w4(int out, int G, int gs) {
    const int in = G * gs;
    const long long ldw = in + 2, ldc = in + 3, lds = G + 1, ldz = G + 2;
    std::vector<uint16_t> w((size_t)out * ldw);
    std::vector<uint8_t> codes((size_t)out * ldc, 0xee), zeros((size_t)out * ldz, 0xee);
    std::vector<uint16_t> scales((size_t)out * lds, 0xeeee);
    for (int o = 0; o < out; o++)
        for (int k = 0; k < in; k++) {
            double v = rng_normal() * 0.03;
            int kind = (o * G + k / gs) % 8;
            if (kind == 1) v = 0.125;                       /* constant group: range < 1e-5 */
            if (kind == 2) v = fabs(v) + 0.001;             /* all positive: z clamps at 0 */
            if (kind == 3) v = -fabs(v) - 0.001;            /* all negative: z clamps at 15 */
            if (kind == 4) v = ldexp(rng_normal(), -18);    /* subnormal fp16 range */
            if (kind == 5) v = rng_normal() * 20000.0;      /* range overflows fp16 */
            if (kind == 6) v = (rng_int(31) - 15) * 0.0625; /* exact multiples: ties */
            w[(size_t)o * ldw + k] = enc_f16(ref_f16(v));
        }
    int rc = awqk_quantize_w4(&g_kc, out, G, gs, codes.data(), ldc, scales.data(), lds, zeros.data(), ldz,
                              w.data(), ldw);
    /* reference: every operation in fp32 (exact as double, then rounded to fp32), then to fp16 */
    long long bad = 0;
    const double min_range = ref_f16(ref_f32(1e-5));
    for (int o = 0; o < out; o++)
        for (int g = 0; g < G; g++) {
            const uint16_t *v = &w[(size_t)o * ldw + g * gs];
            double mx = dec_f16(v[0]), mn = mx;
            for (int k = 1; k < gs; k++) mx = std::max(mx, dec_f16(v[k])), mn = std::min(mn, dec_f16(v[k]));
            double range = ref_f16(ref_f32(mx - mn));
            if (range < min_range) range = min_range;
            double S = ref_f16(ref_f32(range / 15.0));
            double Z = -nearbyint(ref_f16(ref_f32(mn / S)));
            Z = std::min(std::max(Z, 0.0), 15.0);
            bad += scales[(size_t)o * lds + g] != enc_f16(S);
            bad += zeros[(size_t)o * ldz + g] != (uint8_t)Z;
            for (int k = 0; k < gs; k++) {
                double q = ref_f16(ref_f32(nearbyint(ref_f16(ref_f32(dec_f16(v[k]) / S))) + Z));
                q = std::min(std::max(q, 0.0), 15.0);
                bad += codes[(size_t)o * ldc + g * gs + k] != (uint8_t)q;
            }
        }
    bool pad_ok = true;
    for (int o = 0; o < out; o++) {
        for (long long k = in; k < ldc; k++) pad_ok &= codes[(size_t)o * ldc + k] == 0xee;
        for (long long g = G; g < lds; g++) pad_ok &= scales[(size_t)o * lds + g] == 0xeeee;
        for (long long g = G; g < ldz; g++) pad_ok &= zeros[(size_t)o * ldz + g] == 0xee;
    }
    report("quantize_w4", rc == 0 && pad_ok, bad ? INFINITY : 0.0,
           "out %d G %d gs %d bit-exact (%lld mismatches)", out, G, gs, bad);
}

/* ---- reduce -------------------------------------------------------------------------------- */

static void t_reduce(int n, int c, int op, int group, bool nan) {
    const long long ldx = c + 3;
    std::vector<float> x((size_t)n * ldx), y(c + 4, SENT);
    for (auto &v : x) v = rng_normal();
    if (nan && n > 1) x[ldx + 1] = NAN; /* the cpu's max skips NaN */
    int rc = awqk_reduce(&g_kc, n, c, op, group, x.data(), ldx, y.data());
    double worst = 0;
    for (int j = 0; j < c; j++) {
        double acc = 0;
        for (int i = 0; i < n; i++) {
            const float *r = &x[(size_t)i * ldx];
            double a = fabs((double)r[j]);
            if (op == 0)
                acc += a;
            else if (op == 2)
                acc = a > acc ? a : acc;
            else {
                int g0 = j / group * group;
                double m = 0;
                for (int k = g0; k < g0 + group; k++) m = std::max(m, fabs((double)r[k]));
                acc += a / (m + 1e-6);
            }
        }
        double ref = op == 2 ? acc : acc / n;
        double err = fabs(y[j] - ref);
        if (op == 2)
            worst = std::max(worst, y[j] == (float)ref ? 0.0 : INFINITY);
        else
            worst = std::max(worst, err / (1e-5 * fabs(ref) + 1e-9));
    }
    bool pad_ok = true;
    for (int j = c; j < c + 4; j++) pad_ok &= y[j] == SENT;
    static const char *ops[] = {"mean_abs", "wmean_groups", "max_abs"};
    report("reduce", rc == 0 && pad_ok, worst, "%s n %d c %d group %d%s", ops[op], n, c, group,
           nan ? " (a NaN element)" : "");
}

/* ---- scalar -------------------------------------------------------------------------------- */

static void t_scalar(long long n, int c, int op) {
    const long long lda = c + 1, ldb = c + 2;
    std::vector<float> a((size_t)n * lda), b((size_t)n * ldb);
    for (auto &v : a) v = rng_normal();
    for (auto &v : b) v = rng_normal();
    std::vector<double> p1(AWQK_SCALAR_PARTS, NAN), p2(AWQK_SCALAR_PARTS, NAN);
    const int nsm = g_kc.n_sm;
    g_kc.n_sm = 1; /* 4 blocks */
    int rc = awqk_scalar(&g_kc, n, c, op, a.data(), lda, b.data(), ldb, p1.data());
    g_kc.n_sm = 100; /* 256 blocks */
    rc |= awqk_scalar(&g_kc, n, c, op, a.data(), lda, b.data(), ldb, p2.data());
    g_kc.n_sm = nsm;
    double s1 = 0, s2 = 0, ref = 0, mag = 0;
    for (int i = 0; i < AWQK_SCALAR_PARTS; i++) s1 += p1[i], s2 += p2[i];
    for (long long i = 0; i < n; i++)
        for (int j = 0; j < c; j++) {
            double t = op == 0
                ? ((double)a[i * lda + j] - b[i * ldb + j]) * ((double)a[i * lda + j] - b[i * ldb + j])
                : (double)a[i * lda + j] * b[i * ldb + j];
            ref += t;
            mag += fabs(t);
        }
    bool same = memcmp(p1.data(), p2.data(), sizeof(double) * AWQK_SCALAR_PARTS) == 0;
    report("scalar", rc == 0 && same, fabs(s1 - ref) / (1e-6 * mag + 1e-300),
           "%s n %lld c %d (grids 4, 256: %s)", op == 0 ? "sse" : "dot", n, c,
           same ? "same bits" : "DIFFERENT");
}

/* ---- clip_search --------------------------------------------------------------------------- */

/* The search of docs/algorithm.md 6 done the cpu's way (fp32 pseudo-quantization, fp32 inner sums in k
 * order with separately rounded products, squares summed in double, strict '<' from 1e9); the
 * arithmetic is written out here independently of the kernel. */
static float f32q(float v, float s, float z, int qmax) {
    volatile float t = v / s;
    float q = nearbyintf(t) + z;
    q = q < 0 ? 0 : q > qmax ? (float)qmax : q;
    return (q - z) * s;
}
static void ref_clip(const float *w, const float *x, long long ldx, int n, int gs, int qmax, int n_grid,
                     int n_steps, float *best_c, std::vector<double> &errs) {
    float m = 0;
    for (int k = 0; k < gs; k++) m = fabsf(w[k]) > m ? fabsf(w[k]) : m;
    std::vector<float> dq((size_t)gs * n_steps), cand(n_steps);
    for (int i = 0; i < n_steps; i++) {
        volatile float frac = (float)i / (float)n_grid;
        float c = m * (1.0f - frac);
        cand[i] = c;
        std::vector<float> wc(gs);
        for (int k = 0; k < gs; k++) wc[k] = w[k] > c ? c : w[k] < -c ? -c : w[k];
        float mx = wc[0], mn = wc[0];
        for (int k = 1; k < gs; k++) mx = wc[k] > mx ? wc[k] : mx, mn = wc[k] < mn ? wc[k] : mn;
        float d = mx - mn;
        volatile float s = (d > 1e-5f ? d : 1e-5f) / (float)qmax;
        volatile float mns = mn / s;
        float z = -nearbyintf(mns);
        z = z < 0 ? 0 : z > qmax ? (float)qmax : z;
        for (int k = 0; k < gs; k++) {
            volatile float qv = f32q(wc[k], s, z, qmax);
            dq[(size_t)k * n_steps + i] = qv - w[k];
        }
    }
    errs.assign(n_steps, 0.0);
    for (int t = 0; t < n; t++)
        for (int i = 0; i < n_steps; i++) {
            float s = 0;
            for (int k = 0; k < gs; k++) {
                volatile float p = x[(long long)t * ldx + k] * dq[(size_t)k * n_steps + i];
                s += p;
            }
            errs[i] += (double)s * s;
        }
    double bst = 1e9;
    *best_c = m;
    for (int i = 0; i < n_steps; i++) {
        double e = errs[i] / n;
        if (e < bst) bst = e, *best_c = cand[i];
    }
}

static void t_clip_search(int out, int G, int gs, int n, int n_grid, int n_steps) {
    const int in = G * gs, qmax = 15;
    const long long ldw = in + 1, ldx = in + 4, ldb = G + 3;
    std::vector<float> w((size_t)out * ldw), x((size_t)n * ldx), best((size_t)out * ldb, SENT);
    for (auto &v : w) v = rng_normal() * 0.05f;
    for (int o = 0; o < out; o++) w[(size_t)o * ldw + rng_int(in)] = 0.4f; /* outliers make clipping pay */
    for (auto &v : x) v = rng_normal();
    int rc = awqk_clip_search(&g_kc, out, G, gs, n, qmax, n_grid, n_steps, w.data(), ldw, x.data(), ldx,
                              best.data(), ldb);
    int exact = 0, adjacent = 0, groups = out * G;
    for (int o = 0; o < out; o++)
        for (int g = 0; g < G; g++) {
            float bc;
            std::vector<double> errs;
            ref_clip(&w[(size_t)o * ldw + g * gs], &x[(size_t)g * gs], ldx, n, gs, qmax, n_grid, n_steps, &bc,
                     errs);
            float got = best[(size_t)o * ldb + g];
            if (got == bc)
                exact++;
            else if (fabsf(got - bc) <= 1.01f * fabsf(bc) / (float)n_grid + 1e-7f)
                adjacent++;
        }
    bool pad_ok = true;
    for (int o = 0; o < out; o++)
        for (long long g = G; g < ldb; g++) pad_ok &= best[(size_t)o * ldb + g] == SENT;
    bool ok = rc == 0 && pad_ok && exact * 100 >= 99 * groups && exact + adjacent == groups;
    report("clip_search", ok, 0.0, "out %d G %d gs %d n %d grid %d steps %d: %d/%d exact, %d adjacent", out,
           G, gs, n, n_grid, n_steps, exact, groups, adjacent);
}

/* ---- main ---------------------------------------------------------------------------------- */

int main(void) {
    memset(&g_kc, 0, sizeof g_kc);
    g_kc.sm = 80;
    g_kc.n_sm = 4;

    /* row / element-wise */
    t_rmsnorm(1, 1, 1, 1, AWQK_F32, false);
    t_rmsnorm(3, 37, 40, 41, AWQK_F16, false);
    t_rmsnorm(5, 576, 576, 600, AWQK_BF16, false);
    t_rmsnorm(2, 4100, 4103, 4103, AWQK_F32, true);
    t_rope(1, 1, 64, 64, 64, 1.0f, 0);
    t_rope(5, 3, 64, 70, 250, 1.0f, 4095);
    t_rope(4, 9, 80, 96, 9 * 96 + 11, 0.7f, 100000);
    t_rope(3, 2, 6, 6, 13, 1.0f, 123456);
    t_rope(2, 4, 128, 128, 1024, 1.25f, 2000000);
    t_silu_mul(1, 1, 1, 1, 1);
    t_silu_mul(3, 1500, 1501, 1503, 1500);
    t_silu_mul(7, 33, 40, 33, 35);
    for (int op = 0; op < 4; op++) {
        t_binop(3, 37, op, AWQK_F32, false, false);
        t_binop(2, 1100, op, AWQK_F16, true, true);
        t_binop(4, 65, op, AWQK_BF16, false, true);
    }
    t_binop(1, 5, 0, AWQK_F16, true, false);
    t_get_rows(1, 1, 1, AWQK_F32, false);
    t_get_rows(6, 37, 10, AWQK_F16, true);
    t_get_rows(4, 1100, 7, AWQK_BF16, false);
    t_get_rows(3, 64, 9, AWQK_F32, true);
    for (int xd = 0; xd < 3; xd++)
        for (int yd = 0; yd < 3; yd++) t_convert(3, 67, xd, yd);
    t_convert(2, 1030, AWQK_F32, AWQK_F16);

    /* attention: B T H Hkv hd S n_past window fused misalign */
    /* attention: shared memory of every configuration within 48 KiB */
    size_t smax = 0;
    for (int hd = 1; hd <= 256; hd++) {
        attn_cfg c = attn_config(hd, false);
        smax = std::max(smax, attn_smem_bytes(hd, c.ni, c.rw, c.bk));
    }
    smax = std::max(smax, std::max(q_clip_smem_bytes(512, 16), q_clip_smem_bytes(1024, 8)));
    report("smem", smax <= 48 * 1024, 0.0, "largest dynamic shared memory %zu bytes (attention, clip_search)",
           smax);

    /* attention: B T H Hkv hd S n_past window fused misalign qmul */
    const attn_case cases[] = {
        {1, 1, 4, 4, 64, 17, 16, 0, false, false, 1},    /* decode, MHA */
        {2, 1, 9, 3, 64, 300, 299, 0, true, false, 1},   /* decode, GQA 3, fused qkv, long cache */
        {1, 4, 8, 2, 128, 90, 86, 0, false, false, 1},   /* T = 4, GQA 4 */
        {2, 5, 6, 2, 80, 40, 30, 0, false, true, 1},     /* hd 80, unaligned views */
        {1, 37, 8, 2, 128, 37, 0, 0, false, false, 1},   /* prefill, GQA 4 */
        {1, 20, 4, 1, 64, 50, 25, 7, true, false, 1},    /* window 7, n_past 25, MQA */
        {2, 3, 9, 3, 64, 12, 9, 0, false, false, 1},     /* B 2, GQA 3 */
        {1, 19, 3, 1, 256, 19, 0, 0, false, false, 1},   /* hd 256 */
        {1, 2, 2, 2, 200, 70, 60, 16, false, true, 1},   /* hd 200, window, unaligned */
        {1, 9, 4, 2, 6, 9, 0, 3, false, false, 1},       /* tiny hd 6, window 3 */
        {2, 70, 4, 4, 100, 75, 5, 33, false, false, 1},  /* hd 100, window 33, many key tiles */
        {1, 1, 1, 1, 32, 1, 0, 0, false, false, 1},      /* one key */
        {1, 3, 12, 4, 96, 1000, 997, 0, true, true, 1},  /* long cache, fused, unaligned */
        {1, 1, 8, 2, 64, 500, 499, 0, false, false, 12}, /* decode, sharp scores (rescaling) */
        {1, 40, 4, 2, 64, 40, 0, 0, false, false, 12},   /* prefill, sharp scores */
    };
    for (const attn_case &c : cases) t_attention(c);
    /* a random sweep */
    for (int i = 0; i < 16; i++) {
        attn_case c;
        static const int hds[] = {16, 32, 48, 64, 72, 80, 96, 112, 128, 160, 192, 256, 5, 33};
        static const int grp[] = {1, 2, 3, 4, 5, 8};
        c.B = 1 + rng_int(2);
        c.T = rng_int(3) == 0 ? 1 + rng_int(4) : 1 + rng_int(48);
        c.Hkv = 1 + rng_int(3);
        c.H = c.Hkv * grp[rng_int(6)];
        c.hd = hds[rng_int(14)];
        c.n_past = rng_int(2) ? rng_int(120) : 0;
        c.S = c.n_past + c.T + rng_int(5);
        c.window = rng_int(3) == 0 ? 1 + rng_int(40) : 0;
        c.fused = rng_int(2);
        c.misalign = rng_int(3) == 0;
        c.qmul = rng_int(4) == 0 ? 8.0f : 1.0f;
        t_attention(c);
    }

    /* quantization */
    t_fake_quant(1, 1, 32, 15, false, false, false);
    t_fake_quant(5, 3, 64, 15, true, false, false);
    t_fake_quant(6, 2, 128, 15, true, true, true);
    t_fake_quant(4, 3, 40, 7, false, true, false);
    t_fake_quant(3, 1, 4096, 15, true, false, true);
    t_quantize_w4(8, 4, 32);
    t_quantize_w4(8, 3, 64);
    t_quantize_w4(9, 2, 128);
    t_quantize_w4(5, 3, 48);
    t_quantize_w4(2, 1, 4096);
    t_reduce(1, 1, 0, 1, false);
    for (int op = 0; op < 3; op++) {
        t_reduce(37, 70, op, 10, op == 2);
        t_reduce(300, 130, op, 65, false);
        t_reduce(5, 640, op, 128, false);
        t_reduce(9, 192, op, 32, false);
        t_reduce(3, 1280, op, 640, false);
    }
    t_scalar(1, 1, 0);
    t_scalar(3, 1000, 0);
    t_scalar(1000, 3, 1);
    t_scalar(300, 257, 1);
    t_scalar(77, 300, 0);
    t_clip_search(4, 3, 32, 37, 20, 10);
    t_clip_search(6, 2, 64, 100, 20, 10);
    t_clip_search(3, 2, 128, 200, 20, 16);
    t_clip_search(2, 1, 640, 40, 20, 10);
    t_clip_search(5, 1, 48, 1, 20, 16);

    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
