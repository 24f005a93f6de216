/*
 * test_cpu_ref_quant.c - the quantization ops of the cpu backends (fake_quant, quantize_w4,
 * clip_search, reduce, scalar, gram) against independent double-precision loops
 * written here from docs/algorithm.md 6, 7.2 and 7.4 and the contracts in awq_backend.h.
 *
 * The pseudo-quantizer is specified in fp32 (PyTorch fp32 tensors, docs/algorithm.md 7.2); the reference
 * computes in double and rounds the results that decide an integer code (S, mn/S, w/S) to fp32
 * with f32(), which is exactly the fp32 operation. Tolerances:
 *   fake_quant   every element within 1e-6 (|ref| + S/s) of the reference; an element may take
 *                the neighbouring code only at a near-tie (|frac(v/S) - 1/2| < 1e-4, same for
 *                the zero point), at most 0.2% of elements; hand-made exact ties must match
 *                exactly (round half to even), as must the clamped zero points 0 and 15
 *   quantize_w4  exact: codes, zeros and fp16 scale bits (fp16 rounding after every operation,
 *                emulated with a double-based round-to-nearest-even, docs/algorithm.md 7.4)
 *   clip_search  the chosen max is one of the candidates, and its error (double reference)
 *                is within 1e-4 relative of the exact minimum (ties keep the larger candidate)
 *   reduce       MEAN_ABS / WMEAN: 1e-6 relative; MAX_ABS: exact
 *   scalar       1e-10 relative to sum |terms| (accumulated in double)
 *   gram         1e-5 * sum_t |x_ti x_tj| (+ 1e-6 |g0| when accumulating)
 */
#include "cpu_ref_common.h"

/* ---- the reference pseudo-quantizer (docs/algorithm.md 7.2), fp32 semantics ------------------ */

/* Quantizes v[0..gs) in place; returns S and Z. near[k] (if not NULL) flags elements whose code
 * depends on a near-tie (their own or the group's zero point). */
static void ref_pseudo_quant(double *v, int64_t gs, int qmax, double *S_out, double *Z_out, bool *near) {
    double mx = v[0], mn = v[0];
    for (int64_t k = 1; k < gs; k++) {
        mx = v[k] > mx ? v[k] : mx;
        mn = v[k] < mn ? v[k] : mn;
    }
    double d = f32(mx - mn);
    double S = f32((d > (double)1e-5f ? d : (double)1e-5f) / qmax);
    double zr = f32(mn / S);
    double Z = -nearbyint(zr);
    Z = Z < 0 ? 0 : Z > qmax ? qmax : Z;
    bool znear = fabs(fabs(zr - floor(zr)) - 0.5) < 1e-4;
    for (int64_t k = 0; k < gs; k++) {
        double r = f32(v[k] / S);
        double q = nearbyint(r) + Z;
        q = q < 0 ? 0 : q > qmax ? qmax : q;
        if (near) near[k] = znear || fabs(fabs(r - floor(r)) - 0.5) < 1e-4;
        v[k] = f32(f32(q - Z) * S);
    }
    *S_out = S;
    *Z_out = Z;
}

/* ---- fake_quant ------------------------------------------------------------------------- */

/* Runs fake_quant on w (out, in) (row stride ldw) with optional s and clip; compares. */
static int check_fake_quant(const float *w, int64_t out, int64_t in, int64_t ldw, int64_t gs, int bits,
                            const float *s, const float *clip, bool alias, bool exact) {
    int64_t G = in / gs, ldq = in + 2;
    int qmax = (1 << bits) - 1;
    float *wbuf = falloc(out * ldw), *wq = falloc(out * ldq);
    memcpy(wbuf, w, (size_t)(out * ldw) * 4);
    awq_tensor tw = view2(AWQ_DTYPE_F32, wbuf, out, in, ldw);
    awq_tensor tq = alias ? tw : view2(AWQ_DTYPE_F32, wq, out, in, ldq);
    awq_tensor ts = view1(AWQ_DTYPE_F32, (void *)s, in), tc = view2(AWQ_DTYPE_F32, (void *)clip, out, G, G);
    awq_quant_desc qd = {.bits = bits, .group_size = (int32_t)gs, .zero_point = true};
    awq_status st = OPS->fake_quant(CTX, &tq, &tw, s ? &ts : NULL, clip ? &tc : NULL, &qd);
    if (st != AWQ_OK) {
        printf("  fake_quant: %s (%s)\n", awq_status_str(st), awq_runtime_last_error(RT));
        free(wbuf);
        free(wq);
        return 1;
    }
    const float *res = alias ? wbuf : wq;
    int64_t lres = alias ? ldw : ldq, flips = 0;
    double *v = calloc((size_t)gs, sizeof(double));
    bool *near = calloc((size_t)gs, sizeof(bool));
    int bad = 0;
    for (int64_t o = 0; o < out && !bad; o++)
        for (int64_t g = 0; g < G && !bad; g++) {
            for (int64_t k = 0; k < gs; k++) {
                int64_t j = g * gs + k;
                double x = w[o * ldw + j];
                if (s) x = f32(x * s[j]);
                if (clip) {
                    double c = clip[o * G + g];
                    x = x > c ? c : x < -c ? -c : x;
                }
                v[k] = x;
            }
            double S, Z;
            ref_pseudo_quant(v, gs, qmax, &S, &Z, near);
            for (int64_t k = 0; k < gs; k++) {
                int64_t j = g * gs + k;
                double sv = s ? s[j] : 1.0;
                double ref = s ? v[k] / sv : v[k];
                double got = res[o * lres + j];
                if (fabs(got - ref) <= 1e-6 * (fabs(ref) + S / sv)) continue;
                if (!exact && near[k] && fabs(fabs(got - ref) * sv / S - 1.0) < 1e-3) {
                    flips++; /* the neighbouring code at a near-tie */
                    continue;
                }
                printf("  fake_quant gs=%lld bits=%d row %lld col %lld: %.9g, ref %.9g (S %.9g Z %g)\n",
                       (long long)gs, bits, (long long)o, (long long)j, got, ref, S, Z);
                bad = 1;
                break;
            }
        }
    if (!bad && flips * 500 > out * in) {
        printf("  fake_quant: %lld near-tie flips in %lld elements\n", (long long)flips,
               (long long)(out * in));
        bad = 1;
    }
    free(v);
    free(near);
    free(wbuf);
    free(wq);
    return bad;
}

TEST(fake_quant_random) {
    static const int64_t cases[][3] = {{5, 96, 32}, {7, 192, 64}, {3, 256, 128}, {4, 200, 200}};
    for (int c = 0; c < 4; c++) {
        int64_t out = cases[c][0], in = cases[c][1], gs = cases[c][2], ldw = in + 3, G = in / gs;
        float *w = falloc(out * ldw), *s = falloc(in), *clip = falloc(out * G);
        for (int64_t i = 0; i < out * ldw; i++) w[i] = rndn() * 0.05f;
        for (int64_t j = 0; j < in; j++) s[j] = 0.25f + 2.0f * fabsf(rnd());
        for (int64_t i = 0; i < out * G; i++) clip[i] = 0.02f + 0.05f * fabsf(rnd());
        for (int variant = 0; variant < 4; variant++) {
            bool use_s = variant & 1, use_clip = variant & 2, alias = variant == 3;
            ASSERT_MSG(!check_fake_quant(w, out, in, ldw, gs, 4, use_s ? s : NULL, use_clip ? clip : NULL,
                                         alias, false),
                       "case %d variant %d", c, variant);
        }
        ASSERT(!check_fake_quant(w, out, in, ldw, gs, 3, s, NULL, false, false));
        ASSERT(!check_fake_quant(w, out, in, ldw, gs, 8, NULL, clip, false, false));
        free(w);
        free(s);
        free(clip);
    }
}

/* Groups of 32 built so that every division is exact in fp32: S = 2^-4 and values on the
 * half-integer grid of S, so the result is fixed by round-half-to-even alone. */
TEST(fake_quant_ties_and_clamps) {
    enum { GS = 32, NG = 6 };
    const double S = 0.0625;
    float w[NG * GS];
    /* group 0: mn = -6.5 S -> Z = -round(-6.5) = 6 (even); entries at k + 0.5 */
    /* group 1: mn = -7.5 S -> Z = 8; group 2: all positive (Z clamps to 0, values saturate at
     * 15 S); group 3: all negative (Z clamps to 15); group 4: constant; group 5: all zero. */
    for (int k = 0; k < GS; k++) {
        w[0 * GS + k] = (float)(S * (-6.5 + (k % 16)));
        w[1 * GS + k] = (float)(S * (-7.5 + (k % 16)));
        w[2 * GS + k] = (float)(S * (1.5 + k % 16));
        w[3 * GS + k] = (float)(-S * (1.5 + k % 16));
        w[4 * GS + k] = 0.3f;
        w[5 * GS + k] = 0.0f;
    }
    w[0 * GS + 31] = (float)(S * 8.5); /* mx = mn + 15 S */
    w[1 * GS + 31] = (float)(S * 7.5);
    /* hand-derived expectations (round half to even): */
    /* group 0: q = round(k - 6.5) + 6, e.g. k = 0: round(-6.5) = -6 -> q 0 -> (0 - 6) S = -6 S */
    ASSERT(!check_fake_quant(w, 1, NG * GS, NG * GS, GS, 4, NULL, NULL, false, true));
    awq_tensor tw = view2(AWQ_DTYPE_F32, w, 1, NG * GS, NG * GS);
    float q[NG * GS];
    awq_tensor tq = view2(AWQ_DTYPE_F32, q, 1, NG * GS, NG * GS);
    awq_quant_desc qd = {.bits = 4, .group_size = GS, .zero_point = true};
    OP_OK(OPS->fake_quant(CTX, &tq, &tw, NULL, NULL, &qd));
    ASSERT(q[0] == (float)(-6 * S));      /* -6.5 -> -6 */
    ASSERT(q[1] == (float)(-6 * S));      /* -5.5 -> -6 */
    ASSERT(q[2] == (float)(-4 * S));      /* -4.5 -> -4 */
    ASSERT(q[31] == (float)(8 * S));      /* 8.5 -> 8 */
    ASSERT(q[GS + 0] == (float)(-8 * S)); /* Z = 8: -7.5 -> -8 */
    ASSERT(q[GS + 31] == (float)(7 * S)); /* 7.5 -> 8 -> q 16 clamps to 15 -> 7 S */
    /* all-positive: S = (16.5 - 1.5)/15 * S0 = S0 and Z = 0: 1.5 -> 2, 16.5 -> 16 -> 15 */
    ASSERT(q[2 * GS + 0] == (float)(2 * S));
    ASSERT(q[2 * GS + 15] == (float)(15 * S));
    /* all-negative: Z = 15 (clamped from 16.5 -> 16): -16.5 -> -16 + 15 = -1 -> 0 -> -15 S */
    ASSERT(q[3 * GS + 15] == (float)(-15 * S));
    ASSERT(q[3 * GS + 0] == (float)(-2 * S));
    /* constant 0.3: S = 1e-5/15, Z clamps to 0, q saturates at 15 -> 15 S = 1e-5 */
    ASSERT_NEAR(q[4 * GS + 3], 1e-5, 1e-11);
    ASSERT(q[5 * GS + 7] == 0.0f);
}

/* ---- quantize_w4 (docs/algorithm.md 7.4): fp16 rounding after every operation ---------------- */

static int check_quantize_w4(const uint16_t *w, int64_t out, int64_t in, int64_t gs) {
    int64_t G = in / gs;
    uint8_t *codes = balloc(out * in), *zeros = balloc(out * G);
    uint16_t *scales = balloc(out * G * 2);
    awq_tensor tw = view2(AWQ_DTYPE_F16, (void *)w, out, in, in);
    awq_tensor tc = view2(AWQ_DTYPE_U8, codes, out, in, in), ts = view2(AWQ_DTYPE_F16, scales, out, G, G);
    awq_tensor tz = view2(AWQ_DTYPE_U8, zeros, out, G, G);
    awq_quant_desc qd = {.bits = 4, .group_size = (int32_t)gs, .zero_point = true};
    awq_status st = OPS->quantize_w4(CTX, &tc, &ts, &tz, &tw, &qd);
    if (st != AWQ_OK) {
        printf("  quantize_w4: %s (%s)\n", awq_status_str(st), awq_runtime_last_error(RT));
        return 1;
    }
    int bad = 0;
    for (int64_t o = 0; o < out && !bad; o++)
        for (int64_t g = 0; g < G && !bad; g++) {
            const uint16_t *v = w + o * in + g * gs;
            double mx = ref_f16_decode(v[0]), mn = mx;
            for (int64_t k = 1; k < gs; k++) {
                double x = ref_f16_decode(v[k]);
                mx = x > mx ? x : mx;
                mn = x < mn ? x : mn;
            }
            double range = ref_r16(mx - mn), lo = ref_r16(1e-5);
            if (range < lo) range = lo;
            double S = ref_r16(range / 15.0);
            double Z = -nearbyint(ref_r16(mn / S));
            Z = Z < 0 ? 0 : Z > 15 ? 15 : Z;
            if (scales[o * G + g] != ref_f16_encode(S) || zeros[o * G + g] != (uint8_t)Z) {
                printf("  quantize_w4 row %lld group %lld: scale 0x%04x zero %d, ref 0x%04x %g\n",
                       (long long)o, (long long)g, scales[o * G + g], zeros[o * G + g], ref_f16_encode(S), Z);
                bad = 1;
                break;
            }
            for (int64_t k = 0; k < gs; k++) {
                double q = ref_r16(nearbyint(ref_r16(ref_f16_decode(v[k]) / S)) + Z);
                q = q < 0 ? 0 : q > 15 ? 15 : q;
                if (codes[o * in + g * gs + k] != (uint8_t)q) {
                    printf("  quantize_w4 row %lld col %lld: code %d, ref %g\n", (long long)o,
                           (long long)(g * gs + k), codes[o * in + g * gs + k], q);
                    bad = 1;
                    break;
                }
            }
        }
    free(codes);
    free(zeros);
    free(scales);
    return bad;
}

TEST(quantize_w4) {
    int64_t out = 9, in = 384;
    uint16_t *w = balloc(out * in * 2);
    for (int64_t i = 0; i < out * in; i++) w[i] = ref_f16_encode(ref_r16(rndn() * 0.04));
    /* special groups in row 0 (gs 32 view): constant, all-positive, all-negative, zeros,
     * tiny range (clamp at fp16 1e-5), and fp16 ties on the code grid */
    for (int k = 0; k < 32; k++) {
        w[0 * 32 + k] = ref_f16_encode(0.125);
        w[1 * 32 + k] = ref_f16_encode(ref_r16(0.01 + 0.001 * k));
        w[2 * 32 + k] = ref_f16_encode(ref_r16(-0.5 - 0.01 * k));
        w[3 * 32 + k] = 0;
        w[4 * 32 + k] = ref_f16_encode(ref_r16(1.0 + (k % 2) * 0x1p-10));
        w[5 * 32 + k] = ref_f16_encode((k % 16 - 7.5) * 0.0625); /* S = 1/16: w/S at x.5 */
        w[6 * 32 + k] = ref_f16_encode(-100.0 + k);              /* large magnitudes */
    }
    for (int64_t gs = 32; gs <= 128; gs *= 2)
        ASSERT_MSG(!check_quantize_w4(w, out, in, gs), "gs %lld", (long long)gs);
    free(w);
}

/* ---- clip_search (docs/algorithm.md 6) ------------------------------------------------------- */

static int check_clip(int64_t out, int64_t in, int64_t n, int64_t gs, int n_grid, int n_steps) {
    int64_t G = in / gs, ldx = in + 5;
    float *w = falloc(out * in), *x = falloc(n * ldx), *best = falloc(out * G);
    for (int64_t i = 0; i < out * in; i++) w[i] = rndn() * 0.05f;
    for (int64_t i = 0; i < out; i += 3) w[i * in + rndi(in)] = 0.6f; /* outliers make clipping pay */
    for (int64_t i = 0; i < n * ldx; i++) x[i] = rndn();
    awq_tensor tb = view2(AWQ_DTYPE_F32, best, out, G, G), tw = view2(AWQ_DTYPE_F32, w, out, in, in);
    awq_tensor tx = view2(AWQ_DTYPE_F32, x, n, in, ldx);
    awq_quant_desc qd = {.bits = 4, .group_size = (int32_t)gs, .zero_point = true};
    awq_status st = OPS->clip_search(CTX, &tb, &tw, &tx, &qd, n_grid, n_steps);
    if (st != AWQ_OK) {
        printf("  clip_search: %s (%s)\n", awq_status_str(st), awq_runtime_last_error(RT));
        return 1;
    }
    double *v = calloc((size_t)gs, sizeof(double)), err[32], cand[32];
    int bad = 0, differ = 0, shrunk = 0;
    for (int64_t o = 0; o < out && !bad; o++)
        for (int64_t g = 0; g < G && !bad; g++) {
            const float *wg = w + o * in + g * gs;
            double m = 0;
            for (int64_t k = 0; k < gs; k++) m = fabs(wg[k]) > m ? fabs(wg[k]) : m;
            int ibest = -1;
            double ebest = 1e9;
            for (int i = 0; i < n_steps; i++) {
                double c = f32(m * f32(1.0 - f32((double)i / n_grid)));
                cand[i] = c;
                for (int64_t k = 0; k < gs; k++) v[k] = wg[k] > c ? c : wg[k] < -c ? -c : wg[k];
                double S, Z;
                ref_pseudo_quant(v, gs, 15, &S, &Z, NULL);
                double e = 0;
                for (int64_t t = 0; t < n; t++) {
                    double d = 0;
                    for (int64_t k = 0; k < gs; k++) d += (double)x[t * ldx + g * gs + k] * (v[k] - wg[k]);
                    e += d * d;
                }
                err[i] = e / (double)n;
                if (err[i] < ebest) {
                    ebest = err[i];
                    ibest = i;
                }
            }
            double got = best[o * G + g];
            int j = -1;
            for (int i = 0; i < n_steps && j < 0; i++)
                if (fabs(got - cand[i]) <= 1e-6 * cand[i]) j = i;
            if (j < 0 || ibest < 0 || !(err[j] <= ebest * (1 + 1e-4) + 1e-15)) {
                printf("  clip_search row %lld group %lld: %.9g (step %d), best step %d (%.9g), errors %.9g "
                       "vs %.9g\n",
                       (long long)o, (long long)g, got, j, ibest, ibest >= 0 ? cand[ibest] : 0.0,
                       j >= 0 ? err[j] : -1.0, ebest);
                bad = 1;
            }
            differ += j != ibest;
            shrunk += ibest > 0;
        }
    if (!bad && shrunk == 0) {
        printf("  clip_search: no group chose a shrunk max: the test does not exercise the search\n");
        bad = 1;
    }
    if (differ)
        printf("  clip_search: %d groups chose a candidate with an error within 1e-4 of the minimum\n",
               differ);
    free(v);
    free(w);
    free(x);
    free(best);
    return bad;
}

TEST(clip_search) {
    ASSERT(!check_clip(8, 96, 37, 32, 20, 10));
    ASSERT(!check_clip(5, 128, 64, 64, 20, 10));
    ASSERT(!check_clip(3, 256, 19, 128, 20, 16));
    ASSERT(!check_clip(16, 64, 1, 64, 10, 5));
    /* x = 0: every candidate has error 0, and a tie keeps the larger max (step 0 = max|w|) */
    float w[2 * 64], x[3 * 64] = {0}, best[2];
    for (int i = 0; i < 2 * 64; i++) w[i] = rndn();
    awq_tensor tb = view2(AWQ_DTYPE_F32, best, 2, 1, 1), tw = view2(AWQ_DTYPE_F32, w, 2, 64, 64);
    awq_tensor tx = view2(AWQ_DTYPE_F32, x, 3, 64, 64);
    awq_quant_desc qd = {.bits = 4, .group_size = 64, .zero_point = true};
    OP_OK(OPS->clip_search(CTX, &tb, &tw, &tx, &qd, 20, 10));
    for (int r = 0; r < 2; r++) {
        float m = 0;
        for (int k = 0; k < 64; k++) m = fabsf(w[r * 64 + k]) > m ? fabsf(w[r * 64 + k]) : m;
        ASSERT(best[r] == m);
    }
}

/* ---- reduce, scalar, gram --------------------------------------------------- */

TEST(reduce) {
    if (!OPS->reduce) return;
    static const int64_t dims[][3] = {{1, 24, 8}, {37, 96, 32}, {300, 130, 65}};
    for (int c = 0; c < 3; c++) {
        int64_t n = dims[c][0], C = dims[c][1], gr = dims[c][2], ld = C + 1;
        float *x = falloc(n * ld), y[130];
        for (int64_t i = 0; i < n * ld; i++) x[i] = rndn() * (1 + (i % 7));
        awq_tensor tx = view2(AWQ_DTYPE_F32, x, n, C, ld), ty = view1(AWQ_DTYPE_F32, y, C);
        for (int op = 0; op < 3; op++) {
            OP_OK(OPS->reduce(CTX, &ty, &tx, (awq_reduce_op)op, (int32_t)gr));
            for (int64_t j = 0; j < C; j++) {
                double r = 0;
                for (int64_t i = 0; i < n; i++) {
                    double a = fabs(x[i * ld + j]);
                    if (op == AWQ_REDUCE_MEAN_ABS_COLS)
                        r += a / n;
                    else if (op == AWQ_REDUCE_MAX_ABS_COLS)
                        r = a > r ? a : r;
                    else {
                        int64_t g0 = j / gr * gr;
                        double m = 0;
                        for (int64_t k = g0; k < g0 + gr; k++)
                            m = fabs(x[i * ld + k]) > m ? fabs(x[i * ld + k]) : m;
                        r += a / (m + 1e-6) / n;
                    }
                }
                double tol = op == AWQ_REDUCE_MAX_ABS_COLS ? 0.0 : 1e-6 * r;
                ASSERT_MSG(fabs(y[j] - r) <= tol, "reduce op %d n %lld col %lld: %.9g vs %.9g", op,
                           (long long)n, (long long)j, y[j], r);
            }
        }
        free(x);
    }
}

TEST(scalar) {
    if (!OPS->scalar) return;
    int64_t n = 33, c = 71, lda = c + 2, ldb = c + 9;
    float *a = falloc(n * lda), *b = falloc(n * ldb);
    fill(a, n * lda, 5.0f);
    fill(b, n * ldb, 5.0f);
    awq_tensor ta = view2(AWQ_DTYPE_F32, a, n, c, lda), tb = view2(AWQ_DTYPE_F32, b, n, c, ldb);
    for (int op = 0; op < 2; op++) {
        double got = -1, r = 0, mag = 0;
        OP_OK(OPS->scalar(CTX, &got, &ta, &tb, (awq_scalar_op)op));
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < c; j++) {
                double d = (double)a[i * lda + j] - b[i * ldb + j];
                double t = op == AWQ_SCALAR_SSE ? d * d : (double)a[i * lda + j] * b[i * ldb + j];
                r += t;
                mag += fabs(t);
            }
        ASSERT_NEAR(got, r, 1e-10 * mag);
    }
    free(a);
    free(b);
}

TEST(gram) {
    if (!OPS->gram) return;
    static const int64_t dims[][2] = {{1, 9}, {37, 70}, {300, 133}};
    for (int c = 0; c < 3; c++)
        for (int acc = 0; acc < 2; acc++) {
            int64_t n = dims[c][0], C = dims[c][1], ldx = C + 3, ldg = C + 1;
            float *x = falloc(n * ldx), *g = falloc(C * ldg), *g0 = falloc(C * ldg);
            fill(x, n * ldx, 2.0f);
            fill(g, C * ldg, 10.0f);
            memcpy(g0, g, (size_t)(C * ldg) * 4);
            awq_tensor tg = view2(AWQ_DTYPE_F32, g, C, C, ldg), tx = view2(AWQ_DTYPE_F32, x, n, C, ldx);
            OP_OK(OPS->gram(CTX, &tg, &tx, acc != 0));
            for (int64_t i = 0; i < C; i++) {
                for (int64_t j = 0; j < C; j++) {
                    double r = acc ? g0[i * ldg + j] : 0.0, mag = 0;
                    for (int64_t t = 0; t < n; t++) {
                        double p = (double)x[t * ldx + i] * x[t * ldx + j];
                        r += p;
                        mag += fabs(p);
                    }
                    double tol = 1e-5 * mag + (acc ? 1e-6 * fabs(g0[i * ldg + j]) : 0.0);
                    ASSERT_MSG(fabs(g[i * ldg + j] - r) <= tol,
                               "gram n %lld c %lld acc %d: g[%lld][%lld] %.9g vs %.9g", (long long)n,
                               (long long)C, acc, (long long)i, (long long)j, g[i * ldg + j], r);
                }
                ASSERT(g[i * ldg + C] == g0[i * ldg + C]); /* padding untouched */
            }
            free(x);
            free(g);
            free(g0);
        }
}

static void suite(void) {
    RUN(fake_quant_random);
    RUN(fake_quant_ties_and_clamps);
    RUN(quantize_w4);
    RUN(clip_search);
    RUN(reduce);
    RUN(scalar);
    RUN(gram);
}

int main(void) { return ref_run_all(suite); }
