/* tok_map.c - growable buffers, the tokenizer's hash maps and the word cache. */
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

/* ---- buffers -------------------------------------------------------------------------------- */

bool tok_buf_reserve(tok_buf *b, size_t extra) {
    if (b->cap - b->n >= extra + 1) return true; /* +1: room for a NUL */
    size_t need = b->n + extra + 1;
    if (need < b->n) return false;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) return false;
        cap *= 2;
    }
    char *p = awq_realloc(b->p, cap);
    if (!p) return false;
    /* zeroed: PCRE2's JIT may read whole words past a subject's end (harmless, but valgrind
     * would report uninitialised reads) */
    memset(p + b->cap, 0, cap - b->cap);
    b->p = p;
    b->cap = cap;
    return true;
}

bool tok_buf_append(tok_buf *b, const void *s, size_t n) {
    if (!tok_buf_reserve(b, n)) return false;
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
    return true;
}

bool tok_buf_putc(tok_buf *b, char c) { return tok_buf_append(b, &c, 1); }

void tok_buf_free(tok_buf *b) {
    awq_free(b->p);
    memset(b, 0, sizeof *b);
}

bool tok_ids_push(tok_ids *v, int32_t id) {
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        int32_t *p = awq_realloc(v->p, cap * sizeof *p);
        if (!p) return false;
        v->p = p;
        v->cap = cap;
    }
    v->p[v->n++] = id;
    return true;
}

void tok_ids_free(tok_ids *v) {
    awq_free(v->p);
    memset(v, 0, sizeof *v);
}

/* ---- string map ----------------------------------------------------------------------------- */

uint32_t tok_hash(const char *s, size_t n) {
    /* FNV-1a, 32-bit, with a final avalanche so that low bits are usable as a bucket index */
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    h ^= h >> 16;
    h *= 0x7feb352du;
    h ^= h >> 15;
    return h;
}

static size_t pow2_at_least(size_t n) {
    size_t c = 16;
    while (c < n) c *= 2;
    return c;
}

bool tok_smap_init(tok_smap *m, size_t expected) {
    m->cap = pow2_at_least(expected * 2 + 1);
    m->n = 0;
    m->slots = awq_calloc(m->cap, sizeof *m->slots);
    return m->slots != NULL;
}

void tok_smap_free(tok_smap *m) {
    awq_free(m->slots);
    memset(m, 0, sizeof *m);
}

static bool smap_grow(tok_smap *m) {
    tok_smap g;
    g.cap = m->cap * 2;
    g.n = m->n;
    g.slots = awq_calloc(g.cap, sizeof *g.slots);
    if (!g.slots) return false;
    for (size_t i = 0; i < m->cap; i++) {
        const tok_smap_slot *s = &m->slots[i];
        if (!s->key) continue;
        size_t j = s->hash & (g.cap - 1);
        while (g.slots[j].key) j = (j + 1) & (g.cap - 1);
        g.slots[j] = *s;
    }
    awq_free(m->slots);
    *m = g;
    return true;
}

bool tok_smap_put(tok_smap *m, const char *key, size_t len, int32_t val, bool *existed) {
    if (existed) *existed = false;
    if (len > UINT32_MAX) return false;
    if ((m->n + 1) * 2 > m->cap && !smap_grow(m)) return false;
    uint32_t h = tok_hash(key, len);
    size_t j = h & (m->cap - 1);
    while (m->slots[j].key) {
        const tok_smap_slot *s = &m->slots[j];
        if (s->hash == h && s->len == len && memcmp(s->key, key, len) == 0) {
            if (existed) *existed = true;
            return true;
        }
        j = (j + 1) & (m->cap - 1);
    }
    /* a zero-length key still needs a non-NULL pointer to mark the slot used */
    m->slots[j] = (tok_smap_slot){.key = len ? key : "", .len = (uint32_t)len, .hash = h, .val = val};
    m->n++;
    return true;
}

int32_t tok_smap_get(const tok_smap *m, const char *key, size_t len) {
    if (!m->slots) return -1;
    uint32_t h = tok_hash(key, len);
    size_t j = h & (m->cap - 1);
    while (m->slots[j].key) {
        const tok_smap_slot *s = &m->slots[j];
        if (s->hash == h && s->len == len && memcmp(s->key, key, len) == 0) return s->val;
        j = (j + 1) & (m->cap - 1);
    }
    return -1;
}

/* ---- pair map ------------------------------------------------------------------------------- */

static inline size_t pair_hash(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ull;
    k ^= k >> 33;
    return (size_t)k;
}

bool tok_pmap_init(tok_pmap *m, size_t expected) {
    m->cap = pow2_at_least(expected * 2 + 1);
    m->n = 0;
    m->slots = awq_malloc(m->cap * sizeof *m->slots);
    if (!m->slots) return false;
    for (size_t i = 0; i < m->cap; i++) m->slots[i].key = UINT64_MAX;
    return true;
}

void tok_pmap_free(tok_pmap *m) {
    awq_free(m->slots);
    memset(m, 0, sizeof *m);
}

static bool pmap_grow(tok_pmap *m) {
    tok_pmap g;
    if (!tok_pmap_init(&g, m->cap)) return false;
    for (size_t i = 0; i < m->cap; i++) {
        const tok_pmap_slot *s = &m->slots[i];
        if (s->key == UINT64_MAX) continue;
        size_t j = pair_hash(s->key) & (g.cap - 1);
        while (g.slots[j].key != UINT64_MAX) j = (j + 1) & (g.cap - 1);
        g.slots[j] = *s;
    }
    g.n = m->n;
    awq_free(m->slots);
    *m = g;
    return true;
}

bool tok_pmap_put(tok_pmap *m, int32_t left, int32_t right, int32_t rank, int32_t merged) {
    if ((m->n + 1) * 2 > m->cap && !pmap_grow(m)) return false;
    uint64_t k = ((uint64_t)(uint32_t)left << 32) | (uint32_t)right;
    size_t j = pair_hash(k) & (m->cap - 1);
    while (m->slots[j].key != UINT64_MAX) {
        if (m->slots[j].key == k) return true;
        j = (j + 1) & (m->cap - 1);
    }
    m->slots[j] = (tok_pmap_slot){.key = k, .rank = rank, .merged = merged};
    m->n++;
    return true;
}

const tok_pmap_slot *tok_pmap_get(const tok_pmap *m, int32_t left, int32_t right) {
    uint64_t k = ((uint64_t)(uint32_t)left << 32) | (uint32_t)right;
    size_t j = pair_hash(k) & (m->cap - 1);
    while (m->slots[j].key != UINT64_MAX) {
        if (m->slots[j].key == k) return &m->slots[j];
        j = (j + 1) & (m->cap - 1);
    }
    return NULL;
}

/* ---- word cache ----------------------------------------------------------------------------- */

#define TOK_CACHE_BLOCK   (1u << 20) /* bytes of keys per block */
#define TOK_CACHE_MAX_KEY 256        /* longer pieces are not cached */

bool tok_cache_init(tok_cache *c, size_t max_entries) {
    memset(c, 0, sizeof *c);
    c->max_entries = max_entries;
    return tok_smap_init(&c->smap, 1024);
}

static void cache_clear(tok_cache *c) {
    for (size_t i = 0; i < c->n_blocks; i++) awq_free(c->blocks[i]);
    c->n_blocks = 0;
    c->block_used = c->block_cap = 0;
    c->ids.n = 0;
    c->n = 0;
    memset(c->smap.slots, 0, c->smap.cap * sizeof *c->smap.slots);
    c->smap.n = 0;
}

void tok_cache_free(tok_cache *c) {
    for (size_t i = 0; i < c->n_blocks; i++) awq_free(c->blocks[i]);
    awq_free(c->blocks);
    tok_smap_free(&c->smap);
    tok_ids_free(&c->ids);
    awq_free(c->span);
    memset(c, 0, sizeof *c);
}

const int32_t *tok_cache_get(const tok_cache *c, const char *key, size_t len, size_t *count) {
    if (len > TOK_CACHE_MAX_KEY || !c->smap.slots) return NULL;
    int32_t e = tok_smap_get(&c->smap, key, len);
    if (e < 0) return NULL;
    *count = c->span[2 * (size_t)e + 1];
    return c->ids.p + c->span[2 * (size_t)e];
}

/* Best effort: a failed allocation just leaves the entry uncached. */
void tok_cache_put(tok_cache *c, const char *key, size_t len, const int32_t *ids, size_t count) {
    if (len > TOK_CACHE_MAX_KEY || len == 0 || !c->smap.slots) return;
    if (c->n >= c->max_entries || c->ids.n + count > UINT32_MAX) cache_clear(c);
    if (c->block_cap - c->block_used < len) {
        if (c->n_blocks == c->cap_blocks) {
            size_t nc = c->cap_blocks ? c->cap_blocks * 2 : 16;
            char **b = awq_realloc(c->blocks, nc * sizeof *b);
            if (!b) return;
            c->blocks = b;
            c->cap_blocks = nc;
        }
        char *blk = awq_malloc(TOK_CACHE_BLOCK);
        if (!blk) return;
        c->blocks[c->n_blocks++] = blk;
        c->block_used = 0;
        c->block_cap = TOK_CACHE_BLOCK;
    }
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 1024;
        uint32_t *s = awq_realloc(c->span, nc * 2 * sizeof *s);
        if (!s) return;
        c->span = s;
        c->cap = nc;
    }
    char *k = c->blocks[c->n_blocks - 1] + c->block_used;
    memcpy(k, key, len);
    size_t start = c->ids.n;
    for (size_t i = 0; i < count; i++) {
        if (!tok_ids_push(&c->ids, ids[i])) {
            c->ids.n = start;
            return;
        }
    }
    bool existed = false;
    if (!tok_smap_put(&c->smap, k, len, (int32_t)c->n, &existed) || existed) {
        c->ids.n = start;
        return;
    }
    c->block_used += len;
    c->span[2 * c->n] = (uint32_t)start;
    c->span[2 * c->n + 1] = (uint32_t)count;
    c->n++;
}
