/*
 * test_cpu_ref.c - every inference op of the cpu backends (matmul, matmul_w4a16, rmsnorm, rope,
 * attention, silu_mul, binop, get_rows, convert) against an independent
 * double-precision loop written here, on random inputs with awkward sizes (not multiples of
 * 8/16, M = 1), strided row views, aliasing where the contract allows it, and F16/BF16/F32
 * weights. The quantization ops are in test_cpu_ref_quant.c.
 *
 * Tolerances (stated per op, |kernel - reference|):
 *   matmul, matmul_w4a16  <= 1e-5 * sum_k |x_k w_k| (+ |bias| * 1e-6): fp32 accumulation
 *   rmsnorm               <= 2e-6 * |ref| + 1e-7
 *   rope                  <= 2e-6 * (|a| + |b|), angle = fp32(pos * inv_freq) as in HF
 *   attention             <= 1e-5 * max|v|
 *   silu_mul              <= 4e-6 * |ref| + 1e-12
 *   binop                 exact for add/sub/mul (a correctly rounded fp32 op), 1 ulp for div
 *   get_rows, convert     exact (conversion rounds to nearest even, inf/NaN/subnormals kept)
 */
#include "cpu_ref_common.h"
#include "pack.h"

/* ---- matmul ----------------------------------------------------------------------------- */

/* x (n, in) with row stride ldx, w (out, in) dtype wt with row stride ldw, optional bias. */
static int check_matmul(int64_t n, int64_t in, int64_t out, awq_dtype wt, awq_dtype bt, bool has_bias) {
    int64_t ldx = in + 3, ldy = out + 5, ldw = in + (wt == AWQ_DTYPE_F32 ? 1 : 2);
    size_t es = awq_dtype_size_inline(wt);
    float *x = falloc(n * ldx), *y = falloc(n * ldy);
    char *w = balloc(out * ldw * (int64_t)es);
    char *b = balloc(out * 4);
    fill(x, n * ldx, 1.0f);
    for (int64_t o = 0; o < out; o++)
        for (int64_t k = 0; k < in; k++) ref_store(w + o * ldw * (int64_t)es, wt, k, rnd() * 0.5);
    for (int64_t o = 0; o < out; o++) ref_store(b, bt, o, rnd());
    for (int64_t i = 0; i < n * ldy; i++) y[i] = 12345.0f; /* padding must stay untouched */
    awq_tensor ty = view2(AWQ_DTYPE_F32, y, n, out, ldy), tx = view2(AWQ_DTYPE_F32, x, n, in, ldx);
    awq_tensor tw = view2(wt, w, out, in, ldw), tb = view1(bt, b, out);
    awq_status st = OPS->matmul(CTX, &ty, &tx, &tw, has_bias ? &tb : NULL);
    int bad = 0;
    if (st != AWQ_OK) {
        printf("  matmul n=%lld in=%lld out=%lld %s: %s (%s)\n", (long long)n, (long long)in, (long long)out,
               dtype_name(wt), awq_status_str(st), awq_runtime_last_error(RT));
        bad = 1;
    }
    for (int64_t i = 0; i < n && !bad; i++) {
        for (int64_t o = 0; o < out; o++) {
            double s = 0, mag = 0;
            for (int64_t k = 0; k < in; k++) {
                double p = (double)x[i * ldx + k] * ref_load(w + o * ldw * (int64_t)es, wt, k);
                s += p;
                mag += fabs(p);
            }
            double bv = has_bias ? ref_load(b, bt, o) : 0.0;
            s += bv;
            double got = y[i * ldy + o];
            if (!(fabs(got - s) <= 1e-5 * mag + 1e-6 * fabs(bv) + 1e-30)) {
                printf("  matmul n=%lld in=%lld out=%lld %s bias=%d: y[%lld][%lld] = %.9g, ref %.9g\n",
                       (long long)n, (long long)in, (long long)out, dtype_name(wt), has_bias, (long long)i,
                       (long long)o, got, s);
                bad = 1;
                break;
            }
        }
        for (int64_t o = out; o < ldy; o++)
            if (y[i * ldy + o] != 12345.0f) {
                printf("  matmul wrote past the row end\n");
                bad = 1;
            }
    }
    free(x);
    free(y);
    free(w);
    free(b);
    return bad;
}

TEST(matmul_dense) {
    /* n = 1, 2 (the decode path), odd sizes, and batches big enough for blocked/library paths */
    static const int64_t shapes[][3] = {{1, 37, 19},   {2, 64, 24},   {3, 100, 33},  {1, 576, 40},
                                        {17, 129, 70}, {64, 200, 96}, {150, 96, 45}, {33, 8, 1}};
    static const awq_dtype wts[] = {AWQ_DTYPE_F32, AWQ_DTYPE_F16, AWQ_DTYPE_BF16};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int t = 0; t < 3; t++) {
            int has_bias = (int)((s + t) % 2);
            awq_dtype bt = wts[(s + 1) % 3];
            ASSERT(!check_matmul(shapes[s][0], shapes[s][1], shapes[s][2], wts[t], bt, has_bias));
        }
}

TEST(matmul_bad_shape) {
    float x[12] = {0}, w[12] = {0}, y[12] = {0};
    awq_tensor tx = view2(AWQ_DTYPE_F32, x, 2, 6, 6), tw = view2(AWQ_DTYPE_F32, w, 2, 5, 5);
    awq_tensor ty = view2(AWQ_DTYPE_F32, y, 2, 2, 2);
    ASSERT(OPS->matmul(CTX, &ty, &tx, &tw, NULL) != AWQ_OK);
}

/* ---- matmul_w4a16 ----------------------------------------------------------------------- */

/* Nibble slot i of a packed word holds logical column ORDER[i] (docs/formats.md 4.1). */
static const int ORDER[8] = {0, 2, 4, 6, 1, 3, 5, 7};

/* true: the weights are prepared with AWQ_CPU_W4_ACT=int8 (the cpu backends' int8-activation
 * path) and checked against the references described at TEST(w4a16_int8). */
static bool W4_A8 = false;

/* The int8 quantization of x defined in backend_cpu/kernels/w4a8gemv.c, in fp32 as there:
 * dx = amax / 127, xq = rint(x * (127 / amax)) clamped to +-127; returns dx * xq. */
static double ref_a8(const float *xg, int64_t gs, int64_t k) {
    float amax = 0.0f;
    for (int64_t i = 0; i < gs; i++) amax = fabsf(xg[i]) > amax ? fabsf(xg[i]) : amax;
    if (amax == 0.0f) return 0.0;
    float d = amax / 127.0f, inv = 127.0f / amax;
    double v = rint((double)(xg[k] * inv));
    v = v > 127 ? 127 : v < -127 ? -127 : v;
    return (double)d * v;
}

/* nw = 1: matmul_w4a16; nw = 2 or 3: matmul_w4a16_multi with the weight repeated nw times into
 * nw separate outputs, each checked against the reference. */
static int check_w4a16(int64_t n, int64_t in, int64_t out, int64_t gs, bool has_bias, int nw) {
    int64_t G = in / gs, ow = out / 8, ldx = in + 1, ldy = out + 3;
    uint8_t *q = balloc(in * out), *z = balloc(G * out);
    double *s = calloc((size_t)(G * out), sizeof(double));
    int32_t *qw = balloc(in * ow * 4), *qz = balloc(G * ow * 4);
    uint16_t *sc = balloc(G * out * 2), *bias = balloc(out * 2);
    float *x = falloc(n * ldx), *yb = falloc(3 * n * ldy), *y = yb;
    for (int64_t i = 0; i < in * out; i++) q[i] = (uint8_t)rndi(16); /* q[k][o] */
    for (int64_t i = 0; i < G * out; i++) {
        z[i] = (uint8_t)rndi(16);
        s[i] = ref_r16(0.001 + 0.02 * fabs(rnd()));
        sc[i] = ref_f16_encode(s[i]);
    }
    for (int64_t k = 0; k < in; k++)
        for (int64_t c = 0; c < ow; c++) {
            uint32_t word = 0;
            for (int i = 0; i < 8; i++) word |= (uint32_t)q[k * out + 8 * c + ORDER[i]] << (4 * i);
            qw[k * ow + c] = (int32_t)word;
        }
    for (int64_t g = 0; g < G; g++)
        for (int64_t c = 0; c < ow; c++) {
            uint32_t word = 0;
            for (int i = 0; i < 8; i++) word |= (uint32_t)z[g * out + 8 * c + ORDER[i]] << (4 * i);
            qz[g * ow + c] = (int32_t)word;
        }
    for (int64_t o = 0; o < out; o++) bias[o] = ref_f16_encode(ref_r16(rnd()));
    fill(x, n * ldx, 1.0f);
    awq_qlinear w;
    memset(&w, 0, sizeof w);
    w.in = in;
    w.out = out;
    w.group_size = gs;
    w.qweight = awq_tensor_2d(AWQ_DTYPE_I32, qw, 0, in, ow);
    w.qzeros = awq_tensor_2d(AWQ_DTYPE_I32, qz, 0, G, ow);
    w.scales = awq_tensor_2d(AWQ_DTYPE_F16, sc, 0, G, out);
    w.bias = awq_tensor_1d(AWQ_DTYPE_F16, has_bias ? bias : NULL, 0, out);
    awq_tensor tx = view2(AWQ_DTYPE_F32, x, n, in, ldx), ty = view2(AWQ_DTYPE_F32, y, n, out, ldy);
    int bad = 0;
    bool prepared = false;
    if (OPS->weight_prepare) {
        if (W4_A8) setenv("AWQ_CPU_W4_ACT", "int8", 1);
        awq_status ps = OPS->weight_prepare(CTX, &w);
        if (W4_A8) unsetenv("AWQ_CPU_W4_ACT");
        if (ps != AWQ_OK) {
            printf("  weight_prepare: %s (%s)\n", awq_status_str(ps), awq_runtime_last_error(RT));
            bad = 1;
        }
        prepared = ps == AWQ_OK;
    }
    awq_tensor tys[3];
    awq_tensor *typ[3];
    const awq_qlinear *wp[3] = {&w, &w, &w};
    for (int j = 0; j < 3; j++) {
        tys[j] = view2(AWQ_DTYPE_F32, yb + j * n * ldy, n, out, ldy);
        typ[j] = &tys[j];
    }
    awq_status st = bad ? AWQ_OK
        : nw > 1        ? OPS->matmul_w4a16_multi(CTX, nw, typ, &tx, wp)
                        : OPS->matmul_w4a16(CTX, &ty, &tx, &w);
    if (st != AWQ_OK) {
        printf("  matmul_w4a16%s: %s (%s)\n", nw > 1 ? "_multi" : "", awq_status_str(st),
               awq_runtime_last_error(RT));
        bad = 1;
    }
    for (int j = 0; j < (nw > 1 ? nw : 1) && !bad; j++) {
        y = nw > 1 ? yb + j * n * ldy : yb;
        for (int64_t i = 0; i < n && !bad; i++)
            for (int64_t o = 0; o < out; o++) {
                double acc = 0, mag = 0, acc8 = 0, mag8 = 0, qerr = 0;
                for (int64_t k = 0; k < in; k++) {
                    int64_t g = k / gs;
                    double wv = ((double)q[k * out + o] - z[g * out + o]) * s[g * out + o];
                    acc += x[i * ldx + k] * wv;
                    mag += fabs(x[i * ldx + k] * wv);
                    if (W4_A8) {
                        const float *xg = x + i * ldx + g * gs;
                        double xa = ref_a8(xg, gs, k - g * gs), amax = 0;
                        for (int64_t m = 0; m < gs; m++) amax = fmax(amax, fabs(xg[m]));
                        acc8 += xa * wv;
                        mag8 += fabs(xa * wv);
                        qerr += fabs(wv) * (amax / 127.0) * 0.5; /* |x - dx xq| <= dx / 2 */
                    }
                }
                double bv = has_bias ? ref_f16_decode(bias[o]) : 0.0;
                acc += bv;
                acc8 += bv;
                double got = y[i * ldy + o];
                /* int8: the product with the dequantized int8 x at the fp32 tolerance, and the exact
             * product within the quantization bound */
                if (W4_A8 &&
                    !(fabs(got - acc8) <= 1e-5 * mag8 + 1e-6 * fabs(bv) + 1e-30 &&
                      fabs(got - acc) <= qerr * (1 + 1e-5) + 1e-5 * mag + 1e-6 * fabs(bv))) {
                    printf(
                        "  matmul_w4a16 int8 n=%lld in=%lld out=%lld gs=%lld: y[%lld][%lld] = %.9g, ref %.9g "
                        "(int8 x: %.9g, bound %.3g)\n",
                        (long long)n, (long long)in, (long long)out, (long long)gs, (long long)i,
                        (long long)o, got, acc, acc8, qerr);
                    bad = 1;
                    break;
                }
                if (!W4_A8 && !(fabs(got - acc) <= 1e-5 * mag + 1e-6 * fabs(bv) + 1e-30)) {
                    printf("  matmul_w4a16 n=%lld in=%lld out=%lld gs=%lld: y[%lld][%lld] = %.9g, ref %.9g\n",
                           (long long)n, (long long)in, (long long)out, (long long)gs, (long long)i,
                           (long long)o, got, acc);
                    bad = 1;
                    break;
                }
            }
    }
    if (prepared && OPS->weight_release) OPS->weight_release(CTX, &w);
    (void)ty;
    free(q);
    free(z);
    free(s);
    free(qw);
    free(qz);
    free(sc);
    free(bias);
    free(x);
    free(yb);
    return bad;
}

TEST(matmul_w4a16) {
    static const int64_t cases[][4] = {/* n, in, out, gs */
                                       {1, 64, 8, 32},      {1, 192, 40, 64},  {2, 256, 24, 128},
                                       {3, 96, 16, 32},     {7, 128, 72, 64},  {48, 320, 56, 64},
                                       {130, 256, 48, 128}, {600, 128, 16, 32}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        ASSERT(!check_w4a16(cases[c][0], cases[c][1], cases[c][2], cases[c][3], c % 2 == 0, 1));
}

/* The fused form (q/k/v, gate/up): every output of every linear against the reference. */
TEST(matmul_w4a16_multi) {
    if (!OPS->matmul_w4a16_multi) return;
    static const int64_t cases[][5] = {/* n, in, out, gs, nw */
                                       {1, 192, 40, 64, 3}, {1, 256, 136, 64, 2}, {3, 96, 16, 32, 3},
                                       {7, 128, 72, 64, 2}, {48, 320, 56, 64, 3}, {130, 256, 48, 128, 2}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        ASSERT(
            !check_w4a16(cases[c][0], cases[c][1], cases[c][2], cases[c][3], c % 2 == 1, (int)cases[c][4]));
}

/* The int8-activation path (AWQ_CPU_W4_ACT=int8 at weight_prepare; cpu backends): y
 * against (a) a double product of W with x quantized to int8 per group exactly as documented in
 * w4a8gemv.c, at matmul's fp32 tolerance 1e-5 * sum |xq dx w| - the integer dot products are
 * exact, so only the fp32 epilogue rounds - and (b) the exact double product within the
 * quantization bound sum_k |w_k| dx_g / 2 (+ 1e-5 * sum |x w|), for every batch size here (below
 * cpu-dnnl's oneDNN threshold of 32 rows). */
TEST(matmul_w4a16_int8) {
    if (strncmp(BE_NAME, "cpu", 3) != 0) return;
    static const int64_t cases[][5] = {/* n, in, out, gs, nw */
                                       {1, 64, 8, 32, 1},     {1, 192, 40, 64, 3},  {2, 256, 136, 64, 2},
                                       {3, 384, 200, 128, 1}, {4, 1536, 72, 64, 3}, {7, 128, 72, 64, 2}};
    W4_A8 = true;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        ASSERT(
            !check_w4a16(cases[c][0], cases[c][1], cases[c][2], cases[c][3], c % 2 == 1, (int)cases[c][4]));
    W4_A8 = false;
}

/* ---- matmul_q8 (the 8-bit lm_head) ------------------------------------------------------- */

/* Weights (out, in) quantized by the loader's awq_q8_0_quantize_row (Q8_0: int8 codes, an fp16
 * scale per 32 inputs), first checked on their own (|code| <= 127, the block maximum at +-127,
 * reconstruction within half a step plus 127 times the fp16 rounding of d), then matmul_q8 on
 * strided views against a double-precision product of x with those same codes and scales. The
 * tolerance is matmul's: fp32 accumulation, <= 1e-5 * sum_k |x_k w_k|. */
static int check_q8(int64_t n, int64_t in, int64_t out) {
    int64_t nb = in / 32, ldx = in + 3, ldy = out + 2, ldq = in + 32, ldd = nb + 1;
    float *x = falloc(n * ldx), *y = falloc(n * ldy), *w = falloc(out * in);
    int8_t *qs = balloc(out * ldq);
    uint16_t *d = balloc(out * ldd * 2);
    fill(x, n * ldx, 1.0f);
    for (int64_t o = 0; o < out; o++)
        for (int64_t k = 0; k < in; k++)
            w[o * in + k] = o % 5 == 3 ? 0.0f          /* an all-zero row */
                : k % 97 == 5          ? rnd() * 40.0f /* outliers */
                                       : rnd() * (float)(0.01 + 0.1 * (o % 7));
    int bad = 0;
    for (int64_t o = 0; o < out; o++) {
        awq_q8_0_quantize_row(w + o * in, in, qs + o * ldq, d + o * ldd);
        for (int64_t b = 0; b < nb && !bad; b++) {
            double amax = 0, dq = ref_f16_decode(d[o * ldd + b]);
            int qmax = 0;
            for (int k = 0; k < 32; k++) {
                amax = fmax(amax, fabs(w[o * in + 32 * b + k]));
                int q = qs[o * ldq + 32 * b + k];
                qmax = abs(q) > qmax ? abs(q) : qmax;
            }
            /* half a step of the exact d, plus 127 times the fp16 rounding of d */
            double de = amax / 127, tol = 0.5 * de * (1 + 1e-6) + 127 * fabs(de - dq) + 1e-30;
            for (int k = 0; k < 32; k++) {
                int q = qs[o * ldq + 32 * b + k];
                if (q < -127 || q > 127 || fabs(w[o * in + 32 * b + k] - q * dq) > tol) bad = 1;
            }
            if (amax > 0 && qmax != 127) bad = 1;
            if (bad)
                printf("  q8_0 quantization of row %lld block %lld is off (amax %g, d %g)\n", (long long)o,
                       (long long)b, amax, dq);
        }
    }
    for (int64_t i = 0; i < n * ldy; i++) y[i] = 12345.0f;
    awq_tensor tx = view2(AWQ_DTYPE_F32, x, n, in, ldx), ty = view2(AWQ_DTYPE_F32, y, n, out, ldy);
    awq_tensor tq = view2(AWQ_DTYPE_I8, qs, out, in, ldq), td = view2(AWQ_DTYPE_F16, d, out, nb, ldd);
    awq_status st = bad ? AWQ_OK : OPS->matmul_q8(CTX, &ty, &tx, &tq, &td);
    if (st != AWQ_OK) {
        printf("  matmul_q8 n=%lld in=%lld out=%lld: %s (%s)\n", (long long)n, (long long)in, (long long)out,
               awq_status_str(st), awq_runtime_last_error(RT));
        bad = 1;
    }
    for (int64_t i = 0; i < n && !bad; i++) {
        for (int64_t o = 0; o < out; o++) {
            double s = 0, mag = 0;
            for (int64_t k = 0; k < in; k++) {
                double p = (double)x[i * ldx + k] * qs[o * ldq + k] * ref_f16_decode(d[o * ldd + k / 32]);
                s += p;
                mag += fabs(p);
            }
            double got = y[i * ldy + o];
            if (!(fabs(got - s) <= 1e-5 * mag + 1e-30)) {
                printf("  matmul_q8 n=%lld in=%lld out=%lld: y[%lld][%lld] = %.9g, ref %.9g\n", (long long)n,
                       (long long)in, (long long)out, (long long)i, (long long)o, got, s);
                bad = 1;
                break;
            }
        }
        for (int64_t o = out; o < ldy; o++)
            if (y[i * ldy + o] != 12345.0f) {
                printf("  matmul_q8 wrote past the row end\n");
                bad = 1;
            }
    }
    free(x);
    free(y);
    free(w);
    free(qs);
    free(d);
    return bad;
}

TEST(matmul_q8) {
    if (!OPS->matmul_q8) {
        printf("  (%s has no matmul_q8)\n", BE_NAME);
        return;
    }
    /* n <= 4: the GEMV (4-row groups and the 1-3 left over); n > 4: the dequantized tiles */
    static const int64_t shapes[][3] = {{1, 32, 1},    {1, 64, 7},   {1, 576, 130}, {2, 96, 33},
                                        {3, 128, 17},  {4, 256, 64}, {1, 2048, 9},  {5, 64, 9},
                                        {17, 160, 70}, {64, 576, 40}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        ASSERT(!check_q8(shapes[s][0], shapes[s][1], shapes[s][2]));
    /* in not a multiple of 32, wrong scale shape: refused */
    float x[64] = {0}, y[4] = {0};
    int8_t q[128] = {0};
    uint16_t d[8] = {0};
    awq_tensor tx = view2(AWQ_DTYPE_F32, x, 1, 48, 48), ty = view2(AWQ_DTYPE_F32, y, 1, 2, 2);
    awq_tensor tq = view2(AWQ_DTYPE_I8, q, 2, 48, 48), td = view2(AWQ_DTYPE_F16, d, 2, 1, 1);
    ASSERT(OPS->matmul_q8(CTX, &ty, &tx, &tq, &td) == AWQ_ERR_UNSUPPORTED);
    tx = view2(AWQ_DTYPE_F32, x, 1, 64, 64);
    tq = view2(AWQ_DTYPE_I8, q, 2, 64, 64);
    td = view2(AWQ_DTYPE_F16, d, 2, 1, 1);
    ASSERT(OPS->matmul_q8(CTX, &ty, &tx, &tq, &td) == AWQ_ERR_UNSUPPORTED);
}

/* ---- rmsnorm ---------------------------------------------------------------------------- */

TEST(rmsnorm) {
    static const awq_dtype gts[] = {AWQ_DTYPE_F32, AWQ_DTYPE_F16, AWQ_DTYPE_BF16};
    static const int64_t dims[][2] = {{1, 7}, {5, 33}, {9, 576}};
    for (int c = 0; c < 3; c++) {
        for (int alias = 0; alias < 2; alias++) {
            int64_t n = dims[c][0], d = dims[c][1], ld = d + 4;
            float *x = falloc(n * ld), *x0 = falloc(n * ld), *y = falloc(n * ld);
            char *g = balloc(d * 4);
            fill(x, n * ld, 3.0f);
            memcpy(x0, x, (size_t)(n * ld) * 4);
            for (int64_t j = 0; j < d; j++) ref_store(g, gts[c], j, 1.0 + rnd());
            awq_tensor tx = view2(AWQ_DTYPE_F32, x, n, d, ld);
            awq_tensor ty = alias ? tx : view2(AWQ_DTYPE_F32, y, n, d, ld);
            awq_tensor tg = view1(gts[c], g, d);
            float eps = 1e-5f;
            OP_OK(OPS->rmsnorm(CTX, &ty, &tx, &tg, eps));
            float *out = alias ? x : y;
            for (int64_t i = 0; i < n; i++) {
                double ss = 0;
                for (int64_t j = 0; j < d; j++) ss += (double)x0[i * ld + j] * x0[i * ld + j];
                double r = 1.0 / sqrt(ss / (double)d + (double)eps);
                for (int64_t j = 0; j < d; j++) {
                    double ref = x0[i * ld + j] * r * ref_load(g, gts[c], j);
                    ASSERT_NEAR(out[i * ld + j], ref, 2e-6 * fabs(ref) + 1e-7);
                }
            }
            free(x);
            free(x0);
            free(y);
            free(g);
        }
    }
}

/* ---- rope ------------------------------------------------------------------------------- */

TEST(rope) {
    /* x is a strided view (n_tok, n_heads, hd) into a fused q|k|v row of width ld */
    int64_t nt = 6, nh = 3, hd = 40, half = hd / 2, ld = nh * hd + 17;
    float *x = falloc(nt * ld), *x0 = falloc(nt * ld), inv[20];
    int32_t pos[6] = {0, 1, 7, 300, 4095, 32767};
    for (int64_t i = 0; i < half; i++) inv[i] = (float)pow(10000.0, -2.0 * (double)i / (double)hd);
    for (int f = 0; f < 2; f++) {
        float attn = f ? 0.7f : 1.0f;
        fill(x, nt * ld, 2.0f);
        memcpy(x0, x, (size_t)(nt * ld) * 4);
        awq_tensor tx;
        memset(&tx, 0, sizeof tx);
        tx.type = AWQ_DTYPE_F32;
        tx.ndim = 3;
        tx.data = x;
        tx.ne[0] = nt;
        tx.ne[1] = nh;
        tx.ne[2] = hd;
        tx.ne[3] = 1;
        tx.nb[0] = ld * 4;
        tx.nb[1] = hd * 4;
        tx.nb[2] = 4;
        tx.nb[3] = 4;
        awq_tensor tp = view1(AWQ_DTYPE_I32, pos, nt), ti = view1(AWQ_DTYPE_F32, inv, half);
        OP_OK(OPS->rope(CTX, &tx, &tp, &ti, attn));
        for (int64_t t = 0; t < nt; t++) {
            for (int64_t h = 0; h < nh; h++)
                for (int64_t i = 0; i < half; i++) {
                    double th = f32((double)pos[t] * inv[i]); /* the angle is an fp32 product */
                    double c = cos(th) * attn, s = sin(th) * attn;
                    double a = x0[t * ld + h * hd + i], b = x0[t * ld + h * hd + i + half];
                    double tol = 2e-6 * (fabs(a) + fabs(b));
                    ASSERT_NEAR(x[t * ld + h * hd + i], a * c - b * s, tol);
                    ASSERT_NEAR(x[t * ld + h * hd + i + half], b * c + a * s, tol);
                }
            for (int64_t j = nh * hd; j < ld; j++) ASSERT(x[t * ld + j] == x0[t * ld + j]);
        }
    }
    free(x);
    free(x0);
}

/* ---- attention -------------------------------------------------------------------------- */

static awq_tensor view4(void *p, int64_t B, int64_t T, int64_t H, int64_t hd, int64_t tok_ld,
                        int64_t seq_ld) { /* strides in floats */
    awq_tensor t;
    memset(&t, 0, sizeof t);
    t.type = AWQ_DTYPE_F32;
    t.ndim = 4;
    t.data = p;
    t.ne[0] = B;
    t.ne[1] = T;
    t.ne[2] = H;
    t.ne[3] = hd;
    t.nb[0] = seq_ld * 4;
    t.nb[1] = tok_ld * 4;
    t.nb[2] = hd * 4;
    t.nb[3] = 4;
    return t;
}

static int check_attention(int64_t B, int64_t T, int64_t H, int64_t Hkv, int64_t hd, int32_t n_past,
                           int32_t window, int64_t extra) {
    int64_t S = n_past + T + extra; /* keys beyond n_past + T - 1 must never be read */
    int64_t qld = (H + 2 * Hkv) * hd + 5, kvld = Hkv * hd + 3, old = H * hd + 7;
    float *q = falloc(B * T * qld), *k = falloc(B * S * kvld), *v = falloc(B * S * kvld);
    float *o = falloc(B * T * old);
    fill(q, B * T * qld, 1.5f);
    fill(k, B * S * kvld, 1.5f);
    fill(v, B * S * kvld, 1.0f);
    for (int64_t b = 0; b < B; b++) /* poison the keys/values past the causal horizon */
        for (int64_t j = n_past + T; j < S; j++)
            for (int64_t c = 0; c < kvld; c++) k[(b * S + j) * kvld + c] = v[(b * S + j) * kvld + c] = 1e30f;
    awq_tensor tq = view4(q, B, T, H, hd, qld, T * qld), tk = view4(k, B, S, Hkv, hd, kvld, S * kvld);
    awq_tensor tv = view4(v, B, S, Hkv, hd, kvld, S * kvld), to = view4(o, B, T, H, hd, old, T * old);
    float scale = 1.0f / sqrtf((float)hd);
    awq_status st = OPS->attention(CTX, &to, &tq, &tk, &tv, n_past, scale, window);
    if (st != AWQ_OK) {
        printf("  attention: %s (%s)\n", awq_status_str(st), awq_runtime_last_error(RT));
        return 1;
    }
    double *p = calloc((size_t)S, sizeof(double));
    int bad = 0;
    for (int64_t b = 0; b < B && !bad; b++)
        for (int64_t t = 0; t < T && !bad; t++)
            for (int64_t h = 0; h < H && !bad; h++) {
                int64_t hk = h / (H / Hkv), hi = n_past + t;
                int64_t lo = window > 0 ? hi - window + 1 : 0;
                if (lo < 0) lo = 0;
                const float *qv = q + (b * T + t) * qld + h * hd;
                double mx = -INFINITY, sum = 0;
                for (int64_t j = lo; j <= hi; j++) {
                    const float *kv = k + (b * S + j) * kvld + hk * hd;
                    double d = 0;
                    for (int64_t c = 0; c < hd; c++) d += (double)qv[c] * kv[c];
                    p[j] = d * scale;
                    mx = p[j] > mx ? p[j] : mx;
                }
                for (int64_t j = lo; j <= hi; j++) sum += (p[j] = exp(p[j] - mx));
                for (int64_t c = 0; c < hd; c++) {
                    double r = 0;
                    for (int64_t j = lo; j <= hi; j++) r += p[j] / sum * v[(b * S + j) * kvld + hk * hd + c];
                    double got = o[(b * T + t) * old + h * hd + c];
                    if (!(fabs(got - r) <= 1e-5)) {
                        printf("  attention B%lld T%lld H%lld/%lld hd%lld past%d win%d: "
                               "out[%lld][%lld][%lld][%lld] = %.9g, ref %.9g\n",
                               (long long)B, (long long)T, (long long)H, (long long)Hkv, (long long)hd,
                               n_past, window, (long long)b, (long long)t, (long long)h, (long long)c, got,
                               r);
                        bad = 1;
                        break;
                    }
                }
            }
    free(p);
    free(q);
    free(k);
    free(v);
    free(o);
    return bad;
}

TEST(attention) {
    ASSERT(!check_attention(1, 1, 2, 2, 8, 0, 0, 0));     /* one token, MHA */
    ASSERT(!check_attention(2, 5, 6, 2, 24, 0, 0, 3));    /* GQA 3:1, prefill */
    ASSERT(!check_attention(2, 4, 6, 3, 20, 9, 0, 2));    /* n_past */
    ASSERT(!check_attention(1, 1, 9, 3, 64, 130, 0, 5));  /* decode over > 2 online blocks */
    ASSERT(!check_attention(2, 70, 4, 1, 16, 3, 0, 0));   /* MQA, long prefill */
    ASSERT(!check_attention(1, 40, 4, 2, 12, 10, 16, 1)); /* sliding window */
    ASSERT(!check_attention(2, 1, 4, 2, 32, 200, 70, 0)); /* window in decode */
    ASSERT(!check_attention(1, 3, 4, 2, 128, 30, 0, 1));  /* Llama head size */
    ASSERT(!check_attention(2, 20, 2, 1, 48, 0, 0, 0));   /* head size 48 */
}

/* ---- silu_mul ------------------------------------------------------------------ */

TEST(silu_mul) {
    /* gate and up are the two halves of a fused gate|up row */
    int64_t n = 5, d = 37, ld = 2 * d + 1, ldy = d + 2;
    float *gu = falloc(n * ld), *y = falloc(n * ldy);
    fill(gu, n * ld, 20.0f);
    awq_tensor tg = view2(AWQ_DTYPE_F32, gu, n, d, ld), tu = view2(AWQ_DTYPE_F32, gu + d, n, d, ld);
    awq_tensor ty = view2(AWQ_DTYPE_F32, y, n, d, ldy);
    OP_OK(OPS->silu_mul(CTX, &ty, &tg, &tu));
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < d; j++) {
            double g = gu[i * ld + j], u = gu[i * ld + d + j];
            double r = g / (1.0 + exp(-g)) * u;
            ASSERT_NEAR(y[i * ldy + j], r, 4e-6 * fabs(r) + 1e-12);
        }
    free(gu);
    free(y);
}

/* ---- binop ------------------------------------------------------------------------------ */

TEST(binop) {
    static const awq_dtype bts[] = {AWQ_DTYPE_F32, AWQ_DTYPE_F16, AWQ_DTYPE_BF16};
    int64_t n = 6, d = 29, ld = d + 3;
    for (int op = 0; op < 4; op++)
        for (int bt = 0; bt < 3; bt++)
            for (int form = 0; form < 3; form++) { /* b (n, d), (1, d), (d,) */
                int alias = (op + bt + form) % 2;
                float *a = falloc(n * ld), *a0 = falloc(n * ld), *y = falloc(n * ld);
                char *b = balloc(n * ld * 4);
                int64_t bes = (int64_t)awq_dtype_size_inline(bts[bt]);
                fill(a, n * ld, 4.0f);
                memcpy(a0, a, (size_t)(n * ld) * 4);
                int64_t brows = form == 0 ? n : 1;
                for (int64_t i = 0; i < brows; i++)
                    for (int64_t j = 0; j < d; j++) {
                        double v = rnd() * 3.0;
                        if (fabs(v) < 0.05) v = 0.5;
                        ref_store(b + i * ld * bes, bts[bt], j, v);
                    }
                awq_tensor ta = view2(AWQ_DTYPE_F32, a, n, d, ld);
                awq_tensor ty = alias ? ta : view2(AWQ_DTYPE_F32, y, n, d, ld);
                awq_tensor tb = form == 0 ? view2(bts[bt], b, n, d, ld)
                    : form == 1           ? view2(bts[bt], b, 1, d, d)
                                          : view1(bts[bt], b, d);
                OP_OK(OPS->binop(CTX, &ty, &ta, &tb, (awq_binop)op));
                float *out = alias ? a : y;
                for (int64_t i = 0; i < n; i++)
                    for (int64_t j = 0; j < d; j++) {
                        double av = a0[i * ld + j],
                               bv = ref_load(b + (form == 0 ? i * ld * bes : 0), bts[bt], j);
                        double r = op == 0 ? av + bv : op == 1 ? av - bv : op == 2 ? av * bv : av / bv;
                        float rf = (float)r; /* the correctly rounded fp32 result */
                        double tol = op == 3 ? fabs(rf) * FLT_EPSILON : 0.0;
                        ASSERT_MSG(fabs(out[i * ld + j] - rf) <= tol, "binop %d b %s form %d: %.9g vs %.9g",
                                   op, dtype_name(bts[bt]), form, out[i * ld + j], rf);
                    }
                free(a);
                free(a0);
                free(y);
                free(b);
            }
}

/* ---- get_rows, convert ------------------------------------------------------------------ */

TEST(get_rows) {
    static const awq_dtype tts[] = {AWQ_DTYPE_F32, AWQ_DTYPE_F16, AWQ_DTYPE_BF16};
    int64_t V = 23, d = 19, ldt = d + 5, n = 9, ldy = d + 1;
    for (int t = 0; t < 3; t++) {
        size_t es = awq_dtype_size_inline(tts[t]);
        char *tab = balloc(V * ldt * (int64_t)es);
        float *y = falloc(n * ldy);
        int32_t ids[9] = {0, 22, 5, 5, 13, 1, 22, 7, 0};
        for (int64_t r = 0; r < V; r++)
            for (int64_t j = 0; j < d; j++) ref_store(tab + r * ldt * (int64_t)es, tts[t], j, rndn());
        awq_tensor tt = view2(tts[t], tab, V, d, ldt), ty = view2(AWQ_DTYPE_F32, y, n, d, ldy);
        awq_tensor ti = view1(AWQ_DTYPE_I32, ids, n);
        OP_OK(OPS->get_rows(CTX, &ty, &tt, &ti));
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < d; j++)
                ASSERT(y[i * ldy + j] == ref_load(tab + ids[i] * ldt * (int64_t)es, tts[t], j));
        /* out-of-range ids are an error with a detail, not a read past the table */
        int32_t badv[2][3] = {{1, 23, 2}, {0, -1, 4}};
        for (int c = 0; c < 2; c++) {
            awq_clear_error(RT);
            awq_tensor tb = view1(AWQ_DTYPE_I32, badv[c], 3), ty3 = view2(AWQ_DTYPE_F32, y, 3, d, ldy);
            ASSERT(OPS->get_rows(CTX, &ty3, &tt, &tb) != AWQ_OK);
            ASSERT(awq_runtime_last_error(RT)[0] != '\0');
        }
        free(tab);
        free(y);
    }
}

/* Values exercising rounding: random, ties, subnormals, overflow, inf, NaN, signed zero. */
static double convert_input(int64_t i) {
    static const double special[] = {1.0 + 0x1p-11,  1.0 + 3 * 0x1p-11,
                                     1.0 + 0x1p-8,   1.0 + 3 * 0x1p-8, /* f16/bf16 ties */
                                     65504.0,        65519.0,
                                     65520.0,        -70000.0,
                                     0x1p-25,        3 * 0x1p-25,
                                     0x1p-24,        -5 * 0x1p-26, /* f16 subnormal */
                                     0x1p-14 * 0.75, 1e-30,
                                     -0.0,           0.0,
                                     3.0e38,         -3.4028234e38,
                                     1e-40,          INFINITY,
                                     -INFINITY,      NAN};
    int64_t ns = sizeof special / sizeof special[0];
    if (i < ns) return special[i];
    return rndn() * pow(2.0, (double)rndi(40) - 20.0);
}

TEST(convert) {
    static const awq_dtype ts[] = {AWQ_DTYPE_F32, AWQ_DTYPE_F16, AWQ_DTYPE_BF16};
    int64_t n = 4, d = 37, ldx = d + 3, ldy = d + 2;
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++) {
            size_t ea = awq_dtype_size_inline(ts[a]), eb = awq_dtype_size_inline(ts[b]);
            char *x = balloc(n * ldx * (int64_t)ea), *y = balloc(n * ldy * (int64_t)eb);
            for (int64_t i = 0; i < n; i++)
                for (int64_t j = 0; j < d; j++) {
                    double v = convert_input(i * d + j);
                    char *row = x + i * ldx * (int64_t)ea;
                    if (ts[a] == AWQ_DTYPE_F32)
                        ((float *)row)[j] = (float)v;
                    else
                        ref_store(row, ts[a], j, v);
                }
            awq_tensor tx = view2(ts[a], x, n, d, ldx), ty = view2(ts[b], y, n, d, ldy);
            OP_OK(OPS->convert(CTX, &ty, &tx));
            for (int64_t i = 0; i < n; i++)
                for (int64_t j = 0; j < d; j++) {
                    double v = ref_load(x + i * ldx * (int64_t)ea, ts[a], j);
                    double r = ts[b] == AWQ_DTYPE_F16 ? ref_r16(v)
                        : ts[b] == AWQ_DTYPE_BF16     ? ref_rbf16(v)
                                                      : v;
                    double got = ref_load(y + i * ldy * (int64_t)eb, ts[b], j);
                    if (isnan(r)) {
                        ASSERT_MSG(isnan(got), "convert %s->%s [%lld]: NaN became %g", dtype_name(ts[a]),
                                   dtype_name(ts[b]), (long long)(i * d + j), got);
                    } else {
                        ASSERT_MSG(got == r && signbit(got) == signbit(r),
                                   "convert %s->%s of %.17g: %.17g, expected %.17g", dtype_name(ts[a]),
                                   dtype_name(ts[b]), v, got, r);
                    }
                }
            free(x);
            free(y);
        }
}

static void suite(void) {
    RUN(matmul_dense);
    RUN(matmul_bad_shape);
    RUN(matmul_w4a16);
    RUN(matmul_w4a16_multi);
    RUN(matmul_w4a16_int8);
    RUN(matmul_q8);
    RUN(rmsnorm);
    RUN(rope);
    RUN(attention);
    RUN(silu_mul);
    RUN(binop);
    RUN(get_rows);
    RUN(convert);
}

int main(void) { return ref_run_all(suite); }
