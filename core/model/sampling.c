/*
 * sampling.c - the token sampler: penalties on the logits (repetition as Hugging Face and
 * llama.cpp apply it, frequency/presence as OpenAI defines them), then greedy (temperature 0), or
 * temperature + top-k + top-p + min-p (Hugging Face order: temperature, then top-k, then top-p on
 * the renormalised top-k set, then min-p relative to the most probable token).
 * All state (the RNG, the token history and scratch buffers) lives in the sampler; there are no
 * globals. Also the stop-string matcher (awq_stop) that holds back text while it may still become
 * a stop string.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct awq_sampler {
    awq_sampler_params p;
    uint64_t rng[4]; /* xoshiro256** state */
    int32_t *heap;   /* (cap,) max-heap of token ids */
    int32_t *ids;    /* (cap,) candidates popped best-first */
    float *prob;     /* (cap,) their unnormalised probabilities */
    int32_t cap;
    /* penalties: the tokens seen (a ring of penalty_last_n, or all of them when that is 0) */
    int32_t *hist;  /* (hist_cap,) */
    int64_t n_hist; /* tokens recorded (ring: total ever, index n_hist % hist_cap) */
    int32_t hist_cap;
    int32_t *count; /* (count_cap,) per-token occurrence counts, zero between calls */
    int32_t *seen;  /* (hist_cap,) distinct tokens of the window in this call */
    int32_t count_cap;
};

awq_sampler_params awq_sampler_params_default(void) {
    awq_sampler_params p = {.temperature = 0.8f,
                            .top_k = 40,
                            .top_p = 0.95f,
                            .seed = 0x5eed,
                            .min_p = 0.0f,
                            .repeat_penalty = 1.0f,
                            .frequency_penalty = 0.0f,
                            .presence_penalty = 0.0f,
                            .penalty_last_n = 0};
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
        !(p.top_p >= 0.0f && p.top_p <= 1.0f) || !(p.min_p >= 0.0f && p.min_p <= 1.0f) ||
        !(p.repeat_penalty >= 0.0f) || !isfinite(p.repeat_penalty) || !isfinite(p.frequency_penalty) ||
        !isfinite(p.presence_penalty) || p.penalty_last_n < 0)
        return AWQ_ERR_INVALID_ARG;
    if (p.repeat_penalty == 0.0f) p.repeat_penalty = 1.0f; /* zero-initialised params: off */
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
    awq_free(s->hist);
    awq_free(s->count);
    awq_free(s->seen);
    awq_free(s);
}

/* ---- penalties ---------------------------------------------------------------------------- */

static bool penalties_on(const awq_sampler_params *p) {
    return p->repeat_penalty != 1.0f || p->frequency_penalty != 0.0f || p->presence_penalty != 0.0f;
}

void awq_sampler_accept(awq_sampler *s, int32_t id) {
    if (!s || id < 0 || !penalties_on(&s->p)) return;
    int32_t last_n = s->p.penalty_last_n;
    if (last_n > 0) {
        if (!s->hist) {
            s->hist = awq_malloc((size_t)last_n * sizeof *s->hist);
            s->seen = awq_malloc((size_t)last_n * sizeof *s->seen);
            if (!s->hist || !s->seen) return; /* no memory: penalties see fewer tokens */
            s->hist_cap = last_n;
        }
        s->hist[s->n_hist % last_n] = id;
        s->n_hist++;
        return;
    }
    if (s->n_hist == s->hist_cap) {
        int32_t cap = s->hist_cap ? s->hist_cap * 2 : 256;
        int32_t *h = awq_realloc(s->hist, (size_t)cap * sizeof *h);
        if (h) s->hist = h;
        int32_t *sn = awq_realloc(s->seen, (size_t)cap * sizeof *sn);
        if (sn) s->seen = sn;
        if (!h || !sn) return;
        s->hist_cap = cap;
    }
    s->hist[s->n_hist++] = id;
}

void awq_sampler_reset(awq_sampler *s) {
    if (s) s->n_hist = 0;
}

/* Applies the penalties to logits in place over the tokens in the history window. */
static void apply_penalties(awq_sampler *s, float *logits, int32_t vocab) {
    const awq_sampler_params *p = &s->p;
    int64_t n = s->n_hist < s->hist_cap ? s->n_hist : s->hist_cap;
    if (n == 0) return;
    if (s->count_cap < vocab) {
        int32_t *c = awq_realloc(s->count, (size_t)vocab * sizeof *c);
        if (!c) return;
        memset(c + s->count_cap, 0, (size_t)(vocab - s->count_cap) * sizeof *c);
        s->count = c;
        s->count_cap = vocab;
    }
    int32_t n_seen = 0;
    for (int64_t i = 0; i < n; i++) {
        int32_t id = s->hist[i];
        if (id >= vocab) continue;
        if (s->count[id]++ == 0) s->seen[n_seen++] = id;
    }
    for (int32_t i = 0; i < n_seen; i++) {
        int32_t id = s->seen[i];
        float l = logits[id];
        if (p->repeat_penalty != 1.0f) l = l > 0.0f ? l / p->repeat_penalty : l * p->repeat_penalty;
        l -= (float)s->count[id] * p->frequency_penalty + p->presence_penalty;
        logits[id] = l;
        s->count[id] = 0;
    }
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

static int32_t sample(awq_sampler *s, float *logits, int32_t vocab);

int32_t awq_sampler_sample(awq_sampler *s, float *logits, int32_t vocab) {
    if (!s || !logits || vocab <= 0) return -1;
    if (penalties_on(&s->p)) apply_penalties(s, logits, vocab);
    int32_t id = sample(s, logits, vocab);
    awq_sampler_accept(s, id);
    return id;
}

static int32_t sample(awq_sampler *s, float *logits, int32_t vocab) {
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
    /* min-p: weights are relative to the best token (weight 1), so the cut is min_p itself */
    const double min_w = (double)p->min_p;
    if (k == vocab && !use_top_p) {
        /* Plain temperature sampling over the whole vocabulary: no ordering needed. */
        double z = 0.0;
        for (int32_t i = 0; i < vocab; i++) {
            double e = WEIGHT(i);
            if (e >= min_w) z += e;
        }
        double r = rng_uniform(s->rng) * z, acc = 0.0;
        int32_t last = best;
        for (int32_t i = 0; i < vocab; i++) {
            double e = WEIGHT(i);
            if (e <= 0.0 || e < min_w) continue;
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
                    int32_t t = h[j];
                    h[j] = h[parent];
                    h[parent] = t;
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
    if (min_w > 0.0) /* candidates are best-first and pr[0] is the best token's weight (1) */
        while (n_kept > 1 && (double)pr[n_kept - 1] < min_w * (double)pr[0]) n_kept--;
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

/* ---- stop strings ------------------------------------------------------------------------- */

struct awq_stop {
    char **str;  /* (n,) owned, non-empty */
    size_t *len; /* (n,) */
    int32_t n;
    char *pend; /* held-back text: a suffix that is a prefix of some stop string */
    size_t n_pend, cap_pend;
    char *out; /* the text returned by the last push/flush */
    size_t cap_out;
    bool stopped;
};

awq_status awq_stop_create(awq_stop **out, const char *const *strs, int32_t n) {
    if (!out || n < 0 || (n > 0 && !strs)) return AWQ_ERR_INVALID_ARG;
    *out = NULL;
    awq_stop *s = awq_calloc(1, sizeof *s);
    if (!s) return AWQ_ERR_OUT_OF_MEMORY;
    if (n > 0) {
        s->str = awq_calloc((size_t)n, sizeof *s->str);
        s->len = awq_calloc((size_t)n, sizeof *s->len);
        if (!s->str || !s->len) goto oom;
    }
    for (int32_t i = 0; i < n; i++) {
        if (!strs[i]) {
            awq_stop_destroy(s);
            return AWQ_ERR_INVALID_ARG;
        }
        if (!strs[i][0]) continue; /* an empty stop string never matches */
        s->len[s->n] = strlen(strs[i]);
        if (!(s->str[s->n] = awq_strdup(strs[i]))) goto oom;
        s->n++;
    }
    *out = s;
    return AWQ_OK;
oom:
    awq_stop_destroy(s);
    return AWQ_ERR_OUT_OF_MEMORY;
}

void awq_stop_destroy(awq_stop *s) {
    if (!s) return;
    for (int32_t i = 0; i < s->n; i++) awq_free(s->str[i]);
    awq_free(s->str);
    awq_free(s->len);
    awq_free(s->pend);
    awq_free(s->out);
    awq_free(s);
}

static bool grow(char **buf, size_t *cap, size_t need) {
    if (need <= *cap) return true;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    char *b = awq_realloc(*buf, c);
    if (!b) return false;
    *buf = b;
    *cap = c;
    return true;
}

awq_status awq_stop_push(awq_stop *s, const char *text, size_t len, const char **out, size_t *out_len,
                         bool *stopped) {
    if (!s || (!text && len > 0) || !out || !out_len) return AWQ_ERR_INVALID_ARG;
    *out = "";
    *out_len = 0;
    if (stopped) *stopped = s->stopped;
    if (s->stopped) return AWQ_OK; /* everything after a stop string is dropped */
    if (!grow(&s->pend, &s->cap_pend, s->n_pend + len + 1) ||
        !grow(&s->out, &s->cap_out, s->n_pend + len + 1))
        return AWQ_ERR_OUT_OF_MEMORY;
    if (len) memcpy(s->pend + s->n_pend, text, len);
    s->n_pend += len;
    s->pend[s->n_pend] = '\0';
    /* the earliest complete match ends the text */
    size_t first = SIZE_MAX;
    for (int32_t i = 0; i < s->n; i++) {
        if (s->len[i] > s->n_pend) continue;
        for (size_t at = 0; at + s->len[i] <= s->n_pend && at < first; at++)
            if (!memcmp(s->pend + at, s->str[i], s->len[i])) {
                first = at;
                break;
            }
    }
    size_t emit;
    if (first != SIZE_MAX) {
        emit = first;
        s->stopped = true;
    } else {
        /* hold back the longest suffix that is a proper prefix of a stop string */
        size_t hold = 0;
        for (int32_t i = 0; i < s->n; i++) {
            size_t maxk = s->len[i] - 1 < s->n_pend ? s->len[i] - 1 : s->n_pend;
            for (size_t k = maxk; k > hold; k--)
                if (!memcmp(s->pend + s->n_pend - k, s->str[i], k)) {
                    hold = k;
                    break;
                }
        }
        emit = s->n_pend - hold;
    }
    memcpy(s->out, s->pend, emit);
    s->out[emit] = '\0';
    if (s->stopped) {
        s->n_pend = 0;
    } else {
        memmove(s->pend, s->pend + emit, s->n_pend - emit);
        s->n_pend -= emit;
    }
    *out = s->out;
    *out_len = emit;
    if (stopped) *stopped = s->stopped;
    return AWQ_OK;
}

awq_status awq_stop_flush(awq_stop *s, const char **out, size_t *out_len) {
    if (!s || !out || !out_len) return AWQ_ERR_INVALID_ARG;
    *out = "";
    *out_len = 0;
    if (s->stopped || s->n_pend == 0) return AWQ_OK;
    if (!grow(&s->out, &s->cap_out, s->n_pend + 1)) return AWQ_ERR_OUT_OF_MEMORY;
    memcpy(s->out, s->pend, s->n_pend);
    s->out[s->n_pend] = '\0';
    *out = s->out;
    *out_len = s->n_pend;
    s->n_pend = 0;
    return AWQ_OK;
}
