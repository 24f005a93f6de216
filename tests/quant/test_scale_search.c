/*
 * test_scale_search.c - the AWQ scale search on a synthetic linear with a few large-activation
 * input channels (issue 4's must-show): the chosen scales are > 1 on those channels and the
 * output MSE - recomputed here directly in double precision over every token, with an
 * independent pseudo-quantizer - is no worse than at alpha = 0. This also checks that the
 * Gram-matrix loss the search uses ranks candidates like the direct loss.
 */
#include <string.h>

#include "model.h"
#include "quant.h"
#include "test.h"

enum { N = 512, C = 256, O = 64, GS = 64 };
static const int outliers[] = {3, 70, 140, 201};

/* Independent asymmetric 4-bit pseudo-quantizer (docs/algorithm.md 7.2) in double. */
static void fake_quant_row(const double *w, double *q, int n) {
    for (int g0 = 0; g0 < n; g0 += GS) {
        double mx = -1e300, mn = 1e300;
        for (int k = g0; k < g0 + GS; k++) {
            mx = w[k] > mx ? w[k] : mx;
            mn = w[k] < mn ? w[k] : mn;
        }
        double s = (mx - mn) > 1e-5 ? (mx - mn) / 15.0 : 1e-5 / 15.0;
        double z = -nearbyint(mn / s);
        z = z < 0 ? 0 : z > 15 ? 15 : z;
        for (int k = g0; k < g0 + GS; k++) {
            double v = nearbyint(w[k] / s) + z;
            v = v < 0 ? 0 : v > 15 ? 15 : v;
            q[k] = (v - z) * s;
        }
    }
}

/* mean over tokens and outputs of (x W^T - x (Q(W s)/s)^T)^2 */
static double direct_loss(const float *x, const float *w, const double *s) {
    static double wq[O][C];
    double row[C], q[C];
    for (int o = 0; o < O; o++) {
        for (int k = 0; k < C; k++) row[k] = w[o * C + k] * s[k];
        fake_quant_row(row, q, C);
        for (int k = 0; k < C; k++) wq[o][k] = w[o * C + k] - q[k] / s[k];
    }
    double sse = 0;
    for (int t = 0; t < N; t++)
        for (int o = 0; o < O; o++) {
            double d = 0;
            for (int k = 0; k < C; k++) d += x[t * C + k] * wq[o][k];
            sse += d * d;
        }
    return sse / ((double)N * O);
}

TEST(outlier_channels_get_large_scales) {
    unsigned long long rng = 12345;
    static float x[N * C], w[O * C];
    for (int i = 0; i < N * C; i++) x[i] = test_rng_normal(&rng);
    for (int t = 0; t < N; t++)
        for (size_t j = 0; j < sizeof outliers / sizeof outliers[0]; j++) x[t * C + outliers[j]] *= 30.0f;
    for (int i = 0; i < O * C; i++) w[i] = 0.05f * test_rng_normal(&rng);

    awq_runtime *rt = NULL;
    awq_runtime_params rp = awq_runtime_params_default();
    rp.load_plugins = false;
    ASSERT_OK(awq_runtime_create(&rt, &rp));
    awq_device dev;
    ASSERT_OK_RT(awq_device_open(rt, "cpu", 0, &dev), rt);
    awq_model_config cfg;
    memset(&cfg, 0, sizeof cfg);
    awq_acts acts;
    memset(&acts, 0, sizeof acts);
    acts.N = N;
    awq_qlayer L;
    memset(&L, 0, sizeof L);
    int64_t outs[AWQ_LIN_COUNT] = {0}, ins[AWQ_LIN_COUNT] = {0};
    bool excluded[AWQ_LIN_COUNT] = {0};
    awq_tensor fq[AWQ_LIN_COUNT];
    memset(fq, 0, sizeof fq);
    L.n_lin = AWQ_LIN_COUNT;
    L.out = outs;
    L.in = ins;
    L.excluded = excluded;
    L.fq = fq;
    L.out[AWQ_LIN_DOWN] = O;
    L.in[AWQ_LIN_DOWN] = C;
    int64_t xe[2] = {N, C}, we[2] = {O, C};
    awq_tensor inp;
    ASSERT_OK(awq_tensor_alloc(rt, &dev, &acts.bufs, AWQ_DTYPE_F32, 2, xe, &inp));
    ASSERT_OK(awq_tensor_alloc(rt, &dev, &L.bufs, AWQ_DTYPE_F32, 2, we, &L.dw.down.w));
    ASSERT_OK(awq_tensor_alloc(rt, &dev, &L.bufs, AWQ_DTYPE_F32, 2, we, &L.fq[AWQ_LIN_DOWN]));
    L.dw.down.in = C;
    L.dw.down.out = O;
    dev.ops->upload(dev.ctx, inp.data, 0, x, sizeof x);
    dev.ops->upload(dev.ctx, L.dw.down.w.data, 0, w, sizeof w);
    awq_search S = {.rt = rt,
                    .dev = &dev,
                    .cfg = &cfg,
                    .acts = &acts,
                    .duo_scaling = true,
                    .qd = {.bits = 4, .group_size = GS, .zero_point = true}};
    float best[C];
    ASSERT_OK_RT(awq_search_scales_linear(&S, &L, AWQ_LIN_DOWN, &inp, best), rt);

    double sum_other = 0;
    for (int k = 0; k < C; k++) {
        bool out = false;
        for (size_t j = 0; j < sizeof outliers / sizeof outliers[0]; j++) out |= outliers[j] == k;
        if (out)
            ASSERT_MSG(best[k] > 1.0f, "scale of outlier channel %d is %g", k, best[k]);
        else
            sum_other += best[k];
    }
    double mean_other = sum_other / (C - 4);
    printf("  outlier scales %.3f %.3f %.3f %.3f, mean of the others %.3f\n", best[3], best[70], best[140],
           best[201], mean_other);

    /* alpha = 0 candidate computed here: s = 1 / (wbar + 1e-4), normalised by sqrt(max*min). */
    double wbar[C] = {0}, s0[C], sb[C];
    for (int o = 0; o < O; o++)
        for (int g0 = 0; g0 < C; g0 += GS) {
            double m = 0;
            for (int k = g0; k < g0 + GS; k++) m = fabs(w[o * C + k]) > m ? fabs(w[o * C + k]) : m;
            for (int k = g0; k < g0 + GS; k++) wbar[k] += fabs(w[o * C + k]) / (m + 1e-6) / O;
        }
    double mx = 0, mn = 1e300;
    for (int k = 0; k < C; k++) {
        s0[k] = 1.0 / (wbar[k] + 1e-4);
        mx = s0[k] > mx ? s0[k] : mx;
        mn = s0[k] < mn ? s0[k] : mn;
    }
    for (int k = 0; k < C; k++) {
        s0[k] /= sqrt(mx * mn);
        sb[k] = best[k];
    }
    double loss_best = direct_loss(x, w, sb), loss_a0 = direct_loss(x, w, s0);
    double ones[C];
    for (int k = 0; k < C; k++) ones[k] = 1.0;
    double loss_rtn = direct_loss(x, w, ones);
    printf("  direct MSE: chosen %.6g, alpha=0 %.6g, no scaling (RTN) %.6g\n", loss_best, loss_a0, loss_rtn);
    ASSERT(loss_best <= loss_a0 * (1 + 1e-6));
    ASSERT(loss_best < loss_rtn);

    awq_buflist_free(&dev, &acts.bufs);
    awq_buflist_free(&dev, &L.bufs);
    awq_device_close(&dev);
    awq_runtime_destroy(rt);
}

int main(void) {
    RUN(outlier_channels_get_large_scales);
    return TEST_EXIT();
}
