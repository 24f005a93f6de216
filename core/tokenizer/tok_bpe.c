/*
 * tok_bpe.c - the BPE model on one pre-tokenized piece.
 *
 * Symbols form a doubly linked list over the piece; every adjacent pair that has a merge is a
 * candidate in a binary min-heap ordered by (rank, position of the left symbol), so the
 * lowest-ranked, leftmost merge is applied first (as `tokenizers` and llama.cpp do). A popped
 * candidate is dropped if either symbol changed since it was pushed. O(n log n) per piece, and
 * pieces of up to 256 bytes are cached.
 */
#include <string.h>

#include "tok_internal.h"

typedef struct tok_sym {
    int32_t id;
    int32_t prev, next; /* -1 at the ends */
    uint32_t len;       /* bytes covered; 0 = merged away */
} tok_sym;

typedef struct tok_heap {
    int32_t rank;
    int32_t left; /* symbol index (also its position order) */
    int32_t right;
    int32_t lid, rid, merged;
} tok_heap;

static inline bool heap_less(const tok_heap *a, const tok_heap *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static void heap_push(tok_heap *h, size_t *n, tok_heap e) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(&e, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = e;
}

static tok_heap heap_pop(tok_heap *h, size_t *n) {
    tok_heap top = h[0];
    tok_heap last = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const tok_heap *best = &last;
        if (l < *n && heap_less(&h[l], best)) {
            m = l;
            best = &h[l];
        }
        if (r < *n && heap_less(&h[r], best)) {
            m = r;
        }
        if (m == i) break;
        h[i] = h[m];
        i = m;
    }
    if (*n) h[i] = last;
    return top;
}

static bool ensure_scratch(awq_tokenizer *t, size_t n_sym) {
    if (n_sym > t->sym_cap) {
        size_t cap = t->sym_cap ? t->sym_cap : 256;
        while (cap < n_sym) cap *= 2;
        tok_sym *s = awq_realloc(t->sym, cap * sizeof *s);
        if (!s) return false;
        t->sym = s;
        t->sym_cap = cap;
    }
    size_t hn = n_sym * 3 + 4;
    if (hn > t->heap_cap) {
        size_t cap = t->heap_cap ? t->heap_cap : 1024;
        while (cap < hn) cap *= 2;
        tok_heap *h = awq_realloc(t->heap, cap * sizeof *h);
        if (!h) return false;
        t->heap = h;
        t->heap_cap = cap;
    }
    return true;
}

static inline void try_pair(const awq_tokenizer *t, tok_heap *h, size_t *hn, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    const tok_pmap_slot *m = tok_pmap_get(&t->merges, t->sym[l].id, t->sym[r].id);
    if (!m) return;
    heap_push(h, hn,
              (tok_heap){.rank = m->rank,
                         .left = l,
                         .right = r,
                         .lid = t->sym[l].id,
                         .rid = t->sym[r].id,
                         .merged = m->merged});
}

/* Appends a symbol; with fuse_unk, consecutive unknowns become one. */
static void add_sym(awq_tokenizer *t, int32_t *n, int32_t id, uint32_t len) {
    if (id == t->unk_id && t->fuse_unk && *n > 0 && t->sym[*n - 1].id == id) {
        t->sym[*n - 1].len += len;
        return;
    }
    t->sym[*n] = (tok_sym){.id = id, .prev = *n - 1, .next = -1, .len = len};
    if (*n > 0) t->sym[*n - 1].next = *n;
    (*n)++;
}

static awq_status bpe_word(awq_tokenizer *t, const char *s, size_t n, tok_ids *out);

/* SentencePiece vocabularies put "▁" only at the start of a piece (SentencePiece's
 * split_by_whitespace). When every token obeys that (t->spm_ws_split, checked at load), no
 * token can span a boundary "x▁" with x != ▁, so a long word splits there into independent,
 * cacheable words without changing the result. */
awq_status tok_bpe_piece(awq_tokenizer *t, const char *s, size_t n, tok_ids *out) {
    if (!t->spm_ws_split || n <= 16) return bpe_word(t, s, n, out);
    size_t start = 0;
    for (size_t i = 3; i + 3 <= n; i++) {
        if (memcmp(s + i, "\xE2\x96\x81", 3) != 0 || memcmp(s + i - 3, "\xE2\x96\x81", 3) == 0) continue;
        awq_status st = bpe_word(t, s + start, i - start, out);
        if (st != AWQ_OK) return st;
        start = i;
        i += 2;
    }
    return bpe_word(t, s + start, n - start, out);
}

static awq_status bpe_word(awq_tokenizer *t, const char *s, size_t n, tok_ids *out) {
    if (n == 0) return AWQ_OK;
    size_t cached_n;
    const int32_t *cached = tok_cache_get(&t->cache, s, n, &cached_n);
    if (cached) {
        for (size_t i = 0; i < cached_n; i++)
            if (!tok_ids_push(out, cached[i])) goto oom;
        return AWQ_OK;
    }
    if (t->ignore_merges) {
        int32_t id = tok_smap_get(&t->key_map, s, n);
        if (id >= 0) {
            if (!tok_ids_push(out, id)) goto oom;
            tok_cache_put(&t->cache, s, n, &id, 1);
            return AWQ_OK;
        }
    }
    if (n > INT32_MAX / 4 || !ensure_scratch(t, n)) goto oom;

    /* initial symbols */
    int32_t ns = 0;
    size_t i = 0;
    while (i < n) {
        if (t->byte_level) {
            int32_t id = t->byte_id[(unsigned char)s[i]];
            if (id >= 0)
                add_sym(t, &ns, id, 1);
            else if (t->unk_id >= 0)
                add_sym(t, &ns, t->unk_id, 1);
            i++;
            continue;
        }
        size_t l = tok_utf8_valid_len((const unsigned char *)s + i, n - i);
        if (!l) l = 1;
        int32_t id = tok_smap_get(&t->key_map, s + i, l);
        if (id >= 0) {
            add_sym(t, &ns, id, (uint32_t)l);
        } else {
            bool all = t->byte_fallback;
            for (size_t k = 0; all && k < l; k++)
                if (t->byte_id[(unsigned char)s[i + k]] < 0) all = false;
            if (all) {
                for (size_t k = 0; k < l; k++) add_sym(t, &ns, t->byte_id[(unsigned char)s[i + k]], 1);
            } else if (t->unk_id >= 0) {
                add_sym(t, &ns, t->unk_id, (uint32_t)l);
            }
        }
        i += l;
    }

    /* merge loop */
    if (t->merges.slots && ns > 1) {
        tok_heap *h = t->heap;
        size_t hn = 0;
        for (int32_t k = 0; k + 1 < ns; k++) try_pair(t, h, &hn, k, k + 1);
        while (hn) {
            tok_heap e = heap_pop(h, &hn);
            tok_sym *l = &t->sym[e.left], *r = &t->sym[e.right];
            if (!l->len || !r->len || l->next != e.right || l->id != e.lid || r->id != e.rid) continue;
            l->id = e.merged;
            l->len += r->len;
            r->len = 0;
            l->next = r->next;
            if (r->next >= 0) t->sym[r->next].prev = e.left;
            try_pair(t, h, &hn, l->prev, e.left);
            try_pair(t, h, &hn, e.left, l->next);
        }
    }

    size_t start = out->n;
    for (int32_t k = ns > 0 ? 0 : -1; k >= 0; k = t->sym[k].next)
        if (!tok_ids_push(out, t->sym[k].id)) goto oom;
    if (out->n > start) /* out->p is still NULL when a word produced nothing */
        tok_cache_put(&t->cache, s, n, out->p + start, out->n - start);
    if (t->sym_cap > (1u << 16)) { /* do not keep a huge word's scratch (~60 bytes per byte) */
        awq_free(t->sym);
        awq_free(t->heap);
        t->sym = NULL;
        t->heap = NULL;
        t->sym_cap = t->heap_cap = 0;
    }
    return AWQ_OK;
oom:
    return awq_set_error(t->rt, AWQ_ERR_OUT_OF_MEMORY, "tokenizer: BPE on %zu bytes", n);
}
