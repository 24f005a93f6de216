/*
 * sampling.c - the token sampler: greedy (temperature 0), or temperature + top-k + top-p
 * (Hugging Face order: temperature, then top-k, then top-p on the renormalised top-k set).
 * All state (the RNG and scratch buffers) lives in the sampler; there are no globals.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct awq_sampler {
    awq_sampler_params p;
    uint64_t           rng[4];  /* xoshiro256** state */
    int32_t           *heap;    /* (cap,) max-heap of token ids */
    int32_t           *ids;     /* (cap,) candidates popped best-first */
    float             *prob;    /* (cap,) their unnormalised probabilities */
    int32_t            cap;
};

awq_sampler_params awq_sampler_params_default(void) {
    awq_sampler_params p = {.temperature = 0.8f, .top_k = 40, .top_p = 0.95f, .seed = 0x5eed};
    return p;
}

/* ---- RNG: splitmix64 seeding, xoshiro256** generator ------------------------------------ */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(uint64_t s[4]) {
    uint64_t r = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

/* Uniform double in [0, 1) with 53 random bits. */
static double rng_uniform(uint64_t s[4]) { return (double)(rng_next(s) >> 11) * 0x1.0p-53; }

/* ---- lifecycle ---------------------------------------------------------------------------- */

awq_status awq_sampler_create(awq_sampler **out, const awq_sampler_params *params) {
    if (!out) return AWQ_ERR_INVALID_ARG;
    *out = NULL;
    awq_sampler_params p = params ? *params : awq_sampler_params_default();
    if (!(p.temperature >= 0.0f) || !isfinite(p.temperature) || p.top_k < 0 ||
        !(p.top_p >= 0.0f && p.top_p <= 1.0f))
        return AWQ_ERR_INVALID_ARG;
    awq_sampler *s = awq_calloc(1, sizeof *s);
    if (!s) return AWQ_ERR_OUT_OF_MEMORY;
    s->p = p;
    uint64_t x = p.seed;
    for (int i = 0; i < 4; i++) s->rng[i] = splitmix64(&x);
    *out = s;
    return AWQ_OK;
}

void awq_sampler_destroy(awq_sampler *s) {
    if (!s) return;
    awq_free(s->heap);
    awq_free(s->ids);
    awq_free(s->prob);
    awq_free(s);
}

/* ---- selection ---------------------------------------------------------------------------- */

/* NaN compares as -inf so it is never picked over a number. */
static inline float key(const float *l, int32_t i) { return isnan(l[i]) ? -INFINITY : l[i]; }

/* Candidate order: larger logit first, the smaller id on ties (deterministic). */
static inline bool before(const float *l, int32_t a, int32_t b) {
    float x = key(l, a), y = key(l, b);
    return x > y || (x == y && a < b);
}

static int32_t argmax(const float *l, int32_t n) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (before(l, i, best)) best = i;
    return best;
}

/* Heaps of ids ordered by `before`: a max-heap keeps the best candidate at the root, a
 * min-heap (worst = true) the worst one. */
static void sift_down(int32_t *h, int32_t n, int32_t i, const float *l, bool worst) {
    for (;;) {
        int32_t a = 2 * i + 1, b = a + 1, m = i;
        if (a < n && (worst ? before(l, h[m], h[a]) : before(l, h[a], h[m]))) m = a;
        if (b < n && (worst ? before(l, h[m], h[b]) : before(l, h[b], h[m]))) m = b;
        if (m == i) return;
        int32_t t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

/* Removes and returns the root of the heap h (n elements). */
static int32_t heap_pop(int32_t *h, int32_t *n, const float *l, bool worst) {
    int32_t top = h[0];
    h[0] = h[--*n];
    sift_down(h, *n, 0, l, worst);
    return top;
}

int32_t awq_sampler_sample(awq_sampler *s, float *logits, int32_t vocab) {
    if (!s || !logits || vocab <= 0) return -1;
    const awq_sampler_params *p = &s->p;
    int32_t best = argmax(logits, vocab);
    if (p->temperature == 0.0f || p->top_k == 1 || vocab == 1 || p->top_p <= 0.0f ||
        key(logits, best) == -INFINITY)
        return best;

    if (s->cap < vocab) {
        int32_t *h = awq_realloc(s->heap, (size_t)vocab * sizeof *h);
        if (h) s->heap = h;
        int32_t *ids = awq_realloc(s->ids, (size_t)vocab * sizeof *ids);
        if (ids) s->ids = ids;
        float *pr = awq_realloc(s->prob, (size_t)vocab * sizeof *pr);
        if (pr) s->prob = pr;
        if (!h || !ids || !pr) return best; /* no scratch memory: fall back to greedy */
        s->cap = vocab;
    }
    /* Probabilities up to the common factor 1/z: e_i = exp((l_i - max) / T). */
    const double inv_t = 1.0 / (double)p->temperature;
    const double mx = (double)key(logits, best);
#define WEIGHT(id) exp(((double)key(logits, (id)) - mx) * inv_t)

    const int32_t k = (p->top_k > 0 && p->top_k < vocab) ? p->top_k : vocab;
    const bool use_top_p = p->top_p < 1.0f;
    if (k == vocab && !use_top_p) {
        /* Plain temperature sampling over the whole vocabulary: no ordering needed. */
        double z = 0.0;
        for (int32_t i = 0; i < vocab; i++) z += WEIGHT(i);
        double r = rng_uniform(s->rng) * z, acc = 0.0;
        int32_t last = best;
        for (int32_t i = 0; i < vocab; i++) {
            double e = WEIGHT(i);
            if (e <= 0.0) continue;
            acc += e;
            last = i;
            if (r < acc) return i;
        }
        return last; /* r fell into the rounding slack at the top */
    }

    int32_t *h = s->heap, *ids = s->ids, n = 0;
    float *pr = s->prob;
    int32_t n_kept = 0;
    double z = 0.0; /* normaliser of the top-k set (everything when top-k is off) */
    if (k < vocab) {
        /* One pass with a min-heap of the k best seen so far, O(vocab log k) worst case but
         * mostly one comparison per id; then pop worst-first and fill ids best-first. */
        for (int32_t i = 0; i < vocab; i++) {
            if (n < k) {
                h[n++] = i;
                for (int32_t j = n - 1; j > 0;) { /* sift up */
                    int32_t parent = (j - 1) / 2;
                    if (!before(logits, h[parent], h[j])) break;
                    int32_t t = h[j]; h[j] = h[parent]; h[parent] = t;
                    j = parent;
                }
            } else if (before(logits, i, h[0])) {
                h[0] = i;
                sift_down(h, n, 0, logits, true);
            }
        }
        for (int32_t i = k - 1; i >= 0; i--) ids[i] = heap_pop(h, &n, logits, true);
        for (n_kept = 0; n_kept < k; n_kept++) {
            pr[n_kept] = (float)WEIGHT(ids[n_kept]);
            z += pr[n_kept];
        }
    } else {
        /* Max-heap of all ids (O(vocab)); the nucleus is popped best-first on demand below. */
        n = vocab;
        for (int32_t i = 0; i < vocab; i++) h[i] = i;
        for (int32_t i = vocab / 2 - 1; i >= 0; i--) sift_down(h, n, i, logits, false);
        for (int32_t i = 0; i < vocab; i++) z += WEIGHT(i);
    }
    if (use_top_p) {
        /* The smallest best-first prefix whose mass reaches top_p (at least one token). */
        const double cut = (double)p->top_p * z;
        double mass = 0.0;
        int32_t m = 0;
        for (;;) {
            if (m == n_kept) { /* top-k off: pop the next candidate on demand */
                if (n == 0) break;
                ids[n_kept] = heap_pop(h, &n, logits, false);
                pr[n_kept] = (float)WEIGHT(ids[n_kept]);
                n_kept++;
            }
            mass += pr[m++];
            if (mass >= cut) break;
        }
        n_kept = m;
    }
#undef WEIGHT

    double total = 0.0;
    for (int32_t i = 0; i < n_kept; i++) total += pr[i];
    double r = rng_uniform(s->rng) * total, acc = 0.0;
    for (int32_t i = 0; i < n_kept; i++) {
        acc += pr[i];
        if (r < acc) return ids[i];
    }
    return ids[n_kept > 0 ? n_kept - 1 : 0];
}
