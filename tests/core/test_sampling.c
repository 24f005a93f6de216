/*
 * test_sampling.c - the sampler against independent references: argmax for greedy, and for
 * stochastic settings the empirical distribution of many draws against the softmax (and its
 * top-k / top-p truncation) computed here in double precision with a plain sort.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "awq.h"
#include "test.h"

static awq_sampler *make(float t, int32_t k, float p, uint64_t seed) {
    awq_sampler_params sp = awq_sampler_params_default();
    sp.temperature = t;
    sp.top_k = k;
    sp.top_p = p;
    sp.seed = seed;
    awq_sampler *s = NULL;
    if (awq_sampler_create(&s, &sp) != AWQ_OK) return NULL;
    return s;
}

/* Reference distribution: softmax(l / T) restricted to the top-k (ties: smaller index first),
 * renormalised, then restricted to the smallest prefix with mass >= top_p, renormalised. */
static void reference(const float *l, int n, double t, int k, double top_p, double *prob) {
    int order[64];
    for (int i = 0; i < n; i++) order[i] = i;
    for (int i = 1; i < n; i++) /* insertion sort, descending by logit, stable */
        for (int j = i; j > 0 && l[order[j]] > l[order[j - 1]]; j--) {
            int x = order[j];
            order[j] = order[j - 1];
            order[j - 1] = x;
        }
    int kk = (k > 0 && k < n) ? k : n;
    double w[64], z = 0;
    for (int i = 0; i < kk; i++) {
        w[i] = exp(((double)l[order[i]] - (double)l[order[0]]) / t);
        z += w[i];
    }
    int m = kk;
    if (top_p < 1.0) {
        double mass = 0;
        for (m = 0; m < kk;) {
            mass += w[m++] / z;
            if (mass >= top_p - 1e-12) break;
        }
    }
    double zz = 0;
    for (int i = 0; i < m; i++) zz += w[i];
    for (int i = 0; i < n; i++) prob[i] = 0;
    for (int i = 0; i < m; i++) prob[order[i]] = w[i] / zz;
}

/* Draws n samples and returns the chi-square statistic against prob (tokens with prob 0 must
 * never appear: that is an immediate failure, reported as +inf). */
static double chi_square(awq_sampler *s, const float *l, int vocab, const double *prob, int n, int *counts) {
    float buf[64];
    for (int i = 0; i < vocab; i++) counts[i] = 0;
    for (int d = 0; d < n; d++) {
        memcpy(buf, l, (size_t)vocab * sizeof *buf);
        int32_t id = awq_sampler_sample(s, buf, vocab);
        if (id < 0 || id >= vocab) return INFINITY;
        counts[id]++;
    }
    double chi = 0;
    for (int i = 0; i < vocab; i++) {
        if (prob[i] == 0) {
            if (counts[i]) return INFINITY;
            continue;
        }
        double e = prob[i] * n;
        chi += (counts[i] - e) * (counts[i] - e) / e;
    }
    return chi;
}

static const float L6[6] = {1.0f, 2.0f, 0.5f, -1.0f, 3.0f, 2.0f};

TEST(greedy_is_argmax) {
    unsigned long long rng = 7;
    awq_sampler *s = make(0.0f, 40, 0.95f, 1);
    awq_sampler *k1 = make(1.5f, 1, 1.0f, 2); /* top-k 1 = greedy at any temperature */
    ASSERT(s && k1);
    float l[1000], c[1000];
    for (int trial = 0; trial < 50; trial++) {
        int n = 1 + trial * 20;
        for (int i = 0; i < n; i++) l[i] = test_rng_normal(&rng) * 5;
        int ref = 0;
        for (int i = 1; i < n; i++)
            if (l[i] > l[ref]) ref = i;
        memcpy(c, l, sizeof(float) * (size_t)n);
        ASSERT_EQ(awq_sampler_sample(s, c, n), ref);
        memcpy(c, l, sizeof(float) * (size_t)n);
        ASSERT_EQ(awq_sampler_sample(k1, c, n), ref);
    }
    /* Ties go to the smallest id; NaN is never chosen. */
    float t[5] = {1, 3, NAN, 3, 2};
    ASSERT_EQ(awq_sampler_sample(s, t, 5), 1);
    float nan_first[3] = {NAN, -5, -7};
    ASSERT_EQ(awq_sampler_sample(s, nan_first, 3), 1);
    awq_sampler_destroy(s);
    awq_sampler_destroy(k1);
}

TEST(deterministic_for_seed) {
    awq_sampler *a = make(1.0f, 0, 1.0f, 42), *b = make(1.0f, 0, 1.0f, 42), *c = make(1.0f, 0, 1.0f, 43);
    ASSERT(a && b && c);
    float l[6];
    int differ = 0;
    for (int i = 0; i < 2000; i++) {
        memcpy(l, L6, sizeof l);
        int32_t x = awq_sampler_sample(a, l, 6);
        memcpy(l, L6, sizeof l);
        int32_t y = awq_sampler_sample(b, l, 6);
        memcpy(l, L6, sizeof l);
        int32_t z = awq_sampler_sample(c, l, 6);
        ASSERT_EQ(x, y);
        differ += x != z;
    }
    ASSERT(differ > 100); /* a different seed gives a different stream */
    awq_sampler_destroy(a);
    awq_sampler_destroy(b);
    awq_sampler_destroy(c);
}

/* chi-square critical value for <= 5 degrees of freedom at p = 1e-4 is 25.7. */
#define CHI_LIMIT 25.7

static void check_dist(const char *what, float t, int k, float p, int *fail) {
    double prob[6];
    int counts[6];
    reference(L6, 6, t, k, p, prob);
    awq_sampler *s = make(t, k, p, 1234);
    double chi = chi_square(s, L6, 6, prob, 200000, counts);
    awq_sampler_destroy(s);
    printf("  %-26s chi2 %8.3f  counts", what, chi);
    for (int i = 0; i < 6; i++) printf(" %6d", counts[i]);
    printf("  ref");
    for (int i = 0; i < 6; i++) printf(" %.4f", prob[i]);
    printf("\n");
    if (!(chi < CHI_LIMIT)) *fail = 1;
}

TEST(distribution_matches_softmax) {
    int fail = 0;
    check_dist("T=1", 1.0f, 0, 1.0f, &fail);
    check_dist("T=0.7", 0.7f, 0, 1.0f, &fail);
    check_dist("T=2.5", 2.5f, 0, 1.0f, &fail);
    check_dist("T=1 top-k 3", 1.0f, 3, 1.0f, &fail);
    check_dist("T=0.8 top-k 2", 0.8f, 2, 1.0f, &fail);
    check_dist("T=1 top-p 0.6", 1.0f, 0, 0.6f, &fail);
    check_dist("T=1.3 top-p 0.9", 1.3f, 0, 0.9f, &fail);
    check_dist("T=1 top-k 4 top-p 0.8", 1.0f, 4, 0.8f, &fail);
    check_dist("T=0.5 top-k 5 top-p 0.99", 0.5f, 5, 0.99f, &fail);
    ASSERT(!fail);
    /* The test can fail: ignoring the temperature is detected. */
    double prob[6];
    int counts[6];
    reference(L6, 6, 0.7, 0, 1.0, prob);
    awq_sampler *s = make(1.0f, 0, 1.0f, 1);
    ASSERT(chi_square(s, L6, 6, prob, 200000, counts) > 1000);
    awq_sampler_destroy(s);
}

TEST(top_p_edges) {
    float l[6];
    int counts[6];
    /* Four equal logits: each has p = 0.25 exactly, so top-p 0.5 keeps exactly ids 0 and 1. */
    const float eq[6] = {0, 0, 0, 0, -INFINITY, -INFINITY};
    awq_sampler *s = make(1.0f, 0, 0.5f, 5);
    memset(counts, 0, sizeof counts);
    for (int i = 0; i < 4000; i++) {
        memcpy(l, eq, sizeof l);
        counts[awq_sampler_sample(s, l, 6)]++;
    }
    awq_sampler_destroy(s);
    ASSERT(counts[0] > 1800 && counts[1] > 1800);
    ASSERT_EQ(counts[2] + counts[3] + counts[4] + counts[5], 0);
    /* top-p 1: every finite-logit token appears; -inf ones never. */
    s = make(1.0f, 0, 1.0f, 6);
    memset(counts, 0, sizeof counts);
    for (int i = 0; i < 4000; i++) {
        memcpy(l, eq, sizeof l);
        counts[awq_sampler_sample(s, l, 6)]++;
    }
    awq_sampler_destroy(s);
    for (int i = 0; i < 4; i++) ASSERT(counts[i] > 800);
    ASSERT_EQ(counts[4] + counts[5], 0);
    /* A tiny top-p (and top-p 0) keeps only the most likely token. */
    const float p0s[2] = {1e-6f, 0.0f};
    for (int v = 0; v < 2; v++) {
        s = make(5.0f, 0, p0s[v], 7);
        ASSERT(s);
        for (int i = 0; i < 500; i++) {
            memcpy(l, L6, sizeof l);
            ASSERT_EQ(awq_sampler_sample(s, l, 6), 4);
        }
        awq_sampler_destroy(s);
    }
    /* When the best token alone holds more than top_p, it is the only one kept. */
    const float peak[6] = {0, 20, 0, 0, 0, 0};
    s = make(1.0f, 0, 0.9f, 8);
    for (int i = 0; i < 500; i++) {
        memcpy(l, peak, sizeof l);
        ASSERT_EQ(awq_sampler_sample(s, l, 6), 1);
    }
    awq_sampler_destroy(s);
    /* NaN logits never come out, all -inf falls back to id 0 without crashing. */
    const float withnan[6] = {NAN, 1, NAN, 1, NAN, NAN};
    s = make(1.0f, 0, 0.95f, 9);
    for (int i = 0; i < 500; i++) {
        memcpy(l, withnan, sizeof l);
        int32_t id = awq_sampler_sample(s, l, 6);
        ASSERT(id == 1 || id == 3);
    }
    const float allinf[3] = {-INFINITY, -INFINITY, -INFINITY};
    memcpy(l, allinf, sizeof allinf);
    ASSERT_EQ(awq_sampler_sample(s, l, 3), 0);
    awq_sampler_destroy(s);
}

/* Large vocabulary: with top-k 40 every sample is among the 40 best logits (found here by a
 * full sort), and all 40 are reachable at a high temperature. */
static int cmp_desc(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

TEST(large_vocab_top_k) {
    enum { V = 49152 };
    static float l[V], sorted[V], buf[V];
    unsigned long long rng = 99;
    for (int i = 0; i < V; i++) l[i] = test_rng_normal(&rng) * 3;
    memcpy(sorted, l, sizeof l);
    qsort(sorted, V, sizeof(float), cmp_desc);
    float thr = sorted[39];
    awq_sampler *s = make(50.0f, 40, 1.0f, 11);
    int hit[V] = {0}, distinct = 0;
    for (int i = 0; i < 4000; i++) {
        memcpy(buf, l, sizeof l);
        int32_t id = awq_sampler_sample(s, buf, V);
        ASSERT(id >= 0 && id < V && l[id] >= thr);
        if (!hit[id]++) distinct++;
    }
    ASSERT_EQ(distinct, 40);
    awq_sampler_destroy(s);
    /* top-p 0.5 alone (no top-k) on the big vocabulary: samples come from the nucleus. */
    s = make(1.0f, 0, 0.5f, 12);
    double z = 0, mass = 0;
    for (int i = 0; i < V; i++) z += exp((double)sorted[i] - sorted[0]);
    int m = 0;
    while (mass < 0.5 * z) mass += exp((double)sorted[m++] - sorted[0]);
    float nucleus_thr = sorted[m - 1];
    for (int i = 0; i < 2000; i++) {
        memcpy(buf, l, sizeof l);
        int32_t id = awq_sampler_sample(s, buf, V);
        ASSERT_MSG(l[id] >= nucleus_thr, "id %d logit %g below nucleus threshold %g (m=%d)", id, l[id],
                   nucleus_thr, m);
    }
    awq_sampler_destroy(s);
}

TEST(params) {
    awq_sampler_params d = awq_sampler_params_default();
    ASSERT(d.temperature == 0.8f && d.top_k == 40 && d.top_p == 0.95f && d.seed == 0x5eed);
    awq_sampler *s = NULL;
    ASSERT_OK(awq_sampler_create(&s, NULL));
    float l[3] = {0, 10, 0};
    int32_t id = awq_sampler_sample(s, l, 3);
    ASSERT(id >= 0 && id < 3);
    ASSERT_EQ(awq_sampler_sample(s, l, 0), -1);
    ASSERT_EQ(awq_sampler_sample(s, NULL, 3), -1);
    ASSERT_EQ(awq_sampler_sample(NULL, l, 3), -1);
    awq_sampler_destroy(s);
    awq_sampler_destroy(NULL);
    awq_sampler_params bad = d;
    bad.temperature = -1;
    s = (awq_sampler *)1;
    ASSERT_EQ(awq_sampler_create(&s, &bad), AWQ_ERR_INVALID_ARG);
    ASSERT(s == NULL);
    bad = d;
    bad.temperature = NAN;
    ASSERT_EQ(awq_sampler_create(&s, &bad), AWQ_ERR_INVALID_ARG);
    bad = d;
    bad.top_p = 1.5f;
    ASSERT_EQ(awq_sampler_create(&s, &bad), AWQ_ERR_INVALID_ARG);
    bad = d;
    bad.top_k = -3;
    ASSERT_EQ(awq_sampler_create(&s, &bad), AWQ_ERR_INVALID_ARG);
    ASSERT_EQ(awq_sampler_create(NULL, &d), AWQ_ERR_INVALID_ARG);
}

/* ---- issue 12: min-p, penalties, stop strings --------------------------------------------- */

static awq_sampler *make_p(awq_sampler_params sp) {
    awq_sampler *s = NULL;
    return awq_sampler_create(&s, &sp) == AWQ_OK ? s : NULL;
}

TEST(min_p_distribution) {
    /* weights after temperature 1 relative to the best: 1, e^-1, e^-2, e^-3, e^-4; min_p 0.1
     * keeps the first three (e^-2 = 0.135 >= 0.1 > e^-3), alone and after top-k / top-p */
    float l[5] = {4, 3, 2, 1, 0};
    for (int mode = 0; mode < 3; mode++) {
        awq_sampler_params sp = awq_sampler_params_default();
        sp.temperature = 1;
        sp.top_k = mode == 1 ? 4 : 0;
        sp.top_p = mode == 2 ? 0.999f : 1;
        sp.min_p = 0.1f;
        sp.seed = 7 + (uint64_t)mode;
        awq_sampler *s = make_p(sp);
        ASSERT(s);
        double prob[5] = {0}, z = 0;
        for (int i = 0; i < 3; i++) z += exp(-(double)i);
        for (int i = 0; i < 3; i++) prob[i] = exp(-(double)i) / z;
        int counts[5];
        double chi = chi_square(s, l, 5, prob, 20000, counts);
        awq_sampler_destroy(s);
        printf("  min-p 0.1 (mode %d): counts %d %d %d %d %d, chi2 %.2f\n", mode, counts[0], counts[1],
               counts[2], counts[3], counts[4], chi);
        ASSERT(counts[3] == 0 && counts[4] == 0);
        ASSERT(chi < 13.8); /* 2 degrees of freedom, p = 0.001 */
    }
}

TEST(penalties) {
    awq_sampler_params sp = awq_sampler_params_default();
    sp.temperature = 0;
    sp.repeat_penalty = 2;
    awq_sampler *s = make_p(sp);
    ASSERT(s);
    float l[4] = {1.5f, 1.2f, -1.0f, 0.5f};
    awq_sampler_accept(s, 0);
    awq_sampler_accept(s, 2);
    awq_sampler_accept(s, 2);
    ASSERT_EQ(awq_sampler_sample(s, l, 4), 1); /* 1.5 / 2 = 0.75 < 1.2 */
    ASSERT(l[0] == 0.75f && l[1] == 1.2f && l[2] == -2.0f && l[3] == 0.5f);
    awq_sampler_reset(s);
    float l2[4] = {1.5f, 1.2f, -1.0f, 0.5f};
    ASSERT_EQ(awq_sampler_sample(s, l2, 4), 0);
    ASSERT(l2[0] == 1.5f);
    awq_sampler_destroy(s);

    /* OpenAI frequency and presence: l -= count * f + p */
    sp.repeat_penalty = 1;
    sp.frequency_penalty = 0.5f;
    sp.presence_penalty = 0.25f;
    s = make_p(sp);
    float l3[4] = {0, 0, 0, 0};
    awq_sampler_accept(s, 3);
    awq_sampler_accept(s, 3);
    awq_sampler_accept(s, 1);
    awq_sampler_sample(s, l3, 4);
    ASSERT(l3[0] == 0 && l3[1] == -0.75f && l3[2] == 0 && l3[3] == -1.25f);
    awq_sampler_destroy(s);

    /* the window: only the last penalty_last_n tokens count */
    sp.penalty_last_n = 2;
    s = make_p(sp);
    float l4[4] = {0, 0, 0, 0};
    awq_sampler_accept(s, 0);
    awq_sampler_accept(s, 1);
    awq_sampler_accept(s, 2);
    awq_sampler_sample(s, l4, 4);
    ASSERT(l4[0] == 0 && l4[1] == -0.75f && l4[2] == -0.75f && l4[3] == 0);
    awq_sampler_destroy(s);

    /* sampled tokens join the history: a strong presence penalty walks through the vocabulary */
    sp = awq_sampler_params_default();
    sp.temperature = 0;
    sp.presence_penalty = 10;
    s = make_p(sp);
    int seen[6] = {0};
    for (int i = 0; i < 6; i++) {
        float l5[6] = {5, 4.5f, 4, 3.5f, 3, 2.5f};
        int32_t id = awq_sampler_sample(s, l5, 6);
        ASSERT(id >= 0 && id < 6 && !seen[id]);
        seen[id] = 1;
    }
    awq_sampler_destroy(s);

    /* penalties off: history is not even kept (long runs do not grow memory); zero-initialised
     * params mean "off" */
    awq_sampler_params z = {0};
    s = make_p(z);
    ASSERT(s);
    float l6[3] = {1, 2, 3};
    for (int i = 0; i < 1000; i++) awq_sampler_accept(s, 2);
    ASSERT_EQ(awq_sampler_sample(s, l6, 3), 2);
    ASSERT(l6[2] == 3);
    awq_sampler_destroy(s);
    awq_sampler_accept(NULL, 1);
    awq_sampler_reset(NULL);

    awq_sampler_params bad = awq_sampler_params_default();
    bad.min_p = 1.5f;
    ASSERT_EQ(awq_sampler_create(&s, &bad), AWQ_ERR_INVALID_ARG);
    bad = awq_sampler_params_default();
    bad.repeat_penalty = -1;
    ASSERT_EQ(awq_sampler_create(&s, &bad), AWQ_ERR_INVALID_ARG);
    bad = awq_sampler_params_default();
    bad.frequency_penalty = INFINITY;
    ASSERT_EQ(awq_sampler_create(&s, &bad), AWQ_ERR_INVALID_ARG);
    bad = awq_sampler_params_default();
    bad.penalty_last_n = -1;
    ASSERT_EQ(awq_sampler_create(&s, &bad), AWQ_ERR_INVALID_ARG);
}

/* Pushes pieces through a stop matcher; returns everything shown, sets *stopped. */
static void stop_run(awq_stop *st, const char *const *pieces, int n, char *shown, bool *stopped) {
    shown[0] = '\0';
    *stopped = false;
    for (int i = 0; i < n; i++) {
        const char *out;
        size_t len;
        bool s = false;
        if (awq_stop_push(st, pieces[i], strlen(pieces[i]), &out, &len, &s) != AWQ_OK) return;
        strncat(shown, out, len);
        if (s) *stopped = true;
    }
    const char *out;
    size_t len;
    if (awq_stop_flush(st, &out, &len) == AWQ_OK) strncat(shown, out, len);
}

TEST(stop_strings) {
    const char *stops[] = {"</s>", "STOP", "", "\xc3\xa9t\xc3\xa9"}; /* "été" */
    awq_stop *st = NULL;
    ASSERT_OK(awq_stop_create(&st, stops, 4));
    const char *out;
    size_t len;
    bool s;
    /* held back while it may still match, released when it cannot */
    ASSERT_OK(awq_stop_push(st, "Hello <", 7, &out, &len, &s));
    ASSERT(len == 6 && !strncmp(out, "Hello ", 6) && !s);
    ASSERT_OK(awq_stop_push(st, "/x", 2, &out, &len, &s));
    ASSERT(len == 3 && !strncmp(out, "</x", 3) && !s);
    ASSERT_OK(awq_stop_push(st, " ST", 3, &out, &len, &s));
    ASSERT(len == 1 && out[0] == ' ' && !s);
    ASSERT_OK(awq_stop_push(st, "OP and more", 11, &out, &len, &s));
    ASSERT(len == 0 && s);
    ASSERT_OK(awq_stop_push(st, "after", 5, &out, &len, &s)); /* dropped */
    ASSERT(len == 0 && s);
    ASSERT_OK(awq_stop_flush(st, &out, &len));
    ASSERT_EQ(len, 0);
    awq_stop_destroy(st);

    char shown[256];
    bool stopped;
    /* a match split over many pieces, and text before it in the same piece */
    const char *p1[] = {"a", "b<", "/", "s", ">c"};
    ASSERT_OK(awq_stop_create(&st, stops, 4));
    stop_run(st, p1, 5, shown, &stopped);
    awq_stop_destroy(st);
    ASSERT_STREQ(shown, "ab");
    ASSERT(stopped);
    /* a held prefix that never completes comes out at the end */
    const char *p2[] = {"x", "ST", "O"};
    ASSERT_OK(awq_stop_create(&st, stops, 4));
    stop_run(st, p2, 3, shown, &stopped);
    awq_stop_destroy(st);
    ASSERT_STREQ(shown, "xSTO");
    ASSERT(!stopped);
    /* UTF-8 stop string split inside a character */
    const char *p3[] = {"un \xc3", "\xa9t\xc3", "\xa9 chaud"};
    ASSERT_OK(awq_stop_create(&st, stops, 4));
    stop_run(st, p3, 3, shown, &stopped);
    awq_stop_destroy(st);
    ASSERT_STREQ(shown, "un ");
    ASSERT(stopped);
    /* the earliest match wins across stop strings */
    const char *st2[] = {"bc", "abcd"};
    const char *p4[] = {"xabcd"};
    ASSERT_OK(awq_stop_create(&st, st2, 2));
    stop_run(st, p4, 1, shown, &stopped);
    awq_stop_destroy(st);
    ASSERT_STREQ(shown, "x");
    /* no stop strings: everything passes at once */
    ASSERT_OK(awq_stop_create(&st, NULL, 0));
    ASSERT_OK(awq_stop_push(st, "abc", 3, &out, &len, NULL));
    ASSERT(len == 3);
    awq_stop_destroy(st);
    const char *nul[] = {NULL};
    ASSERT_EQ(awq_stop_create(&st, nul, 1), AWQ_ERR_INVALID_ARG);
    ASSERT_EQ(awq_stop_create(&st, NULL, 2), AWQ_ERR_INVALID_ARG);
    awq_stop_destroy(NULL);
}

int main(void) {
    RUN(greedy_is_argmax);
    RUN(deterministic_for_seed);
    RUN(distribution_matches_softmax);
    RUN(top_p_edges);
    RUN(large_vocab_top_k);
    RUN(params);
    RUN(min_p_distribution);
    RUN(penalties);
    RUN(stop_strings);
    return TEST_EXIT();
}
