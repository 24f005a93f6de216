/*
 * tok_encode.c - text -> ids: added tokens, then normalize -> pre-tokenize -> BPE per segment,
 * then the post-processor's special tokens.
 *
 * Documented behaviour at the edges:
 *  - invalid UTF-8 is replaced first, each maximal ill-formed subsequence by U+FFFD (the Unicode
 *    "maximal subpart" practice, as Python's errors="replace"), so encode never fails on bytes;
 *  - added tokens (special or not) are recognised anywhere in the text, as `tokenizers` does,
 *    unless tokenizer_config.json sets split_special_tokens (then special ones are plain text);
 *  - empty text gives no ids (plus BOS/EOS when add_special asks for them);
 *  - a long run without split points (a 1 MB "word") is one BPE piece: O(n log n), not cached.
 */
#include <string.h>
#include <utf8proc.h>

#include "tok_internal.h"

static bool is_ws(uint32_t cp) {
    return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
        (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
        cp == 0x3000;
}

static bool is_word_cp(uint32_t cp) {
    if (cp == '_') return true;
    utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    return (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO) ||
        (c >= UTF8PROC_CATEGORY_ND && c <= UTF8PROC_CATEGORY_NO);
}

/* Code point ending at s[0, end) (s is valid UTF-8). */
static uint32_t cp_before(const char *s, size_t end, size_t *start) {
    size_t b = end - 1;
    while (b > 0 && ((unsigned char)s[b] & 0xC0) == 0x80) b--;
    uint32_t cp;
    tok_utf8_decode(s + b, end - b, &cp);
    if (start) *start = b;
    return cp;
}

/* Longest added token of the requested kind starting at s[i]; -1 if none. */
static int match_added(const awq_tokenizer *t, const char *s, size_t n, size_t i, bool normalized) {
    int best = -1;
    size_t best_len = 0;
    for (int k = 0; k < t->n_added; k++) {
        const tok_added *a = &t->added[k];
        if (a->normalized != normalized || a->len == 0 || a->len > n - i || a->len <= best_len) continue;
        if (a->special && t->split_special) continue;
        if (a->content[0] == s[i] && memcmp(a->content, s + i, a->len) == 0) {
            best = k;
            best_len = a->len;
        }
    }
    return best;
}

typedef struct enc_ctx {
    tok_buf norm, work;
    tok_pieces pieces, tmp;
    tok_ids ids;
} enc_ctx;

/* Pre-tokenizes and encodes already normalized text. */
static awq_status encode_normalized(awq_tokenizer *t, enc_ctx *c, const char *s, size_t n, bool at_start) {
    c->work.n = 0;
    if (!tok_buf_append(&c->work, s, n)) return awq_set_error(t->rt, AWQ_ERR_OUT_OF_MEMORY, "tokenizer");
    awq_status st = tok_pretokenize(t, &c->work, n, at_start, &c->pieces, &c->tmp);
    for (size_t i = 0; i < c->pieces.n && st == AWQ_OK; i++)
        st = tok_bpe_piece(t, c->work.p + c->pieces.p[i].off, c->pieces.p[i].len, &c->ids);
    return st;
}

/* Splits s on added tokens of one kind; calls back for the text between them. */
typedef awq_status (*seg_fn)(awq_tokenizer *t, enc_ctx *c, const char *s, size_t n, bool at_start);

static awq_status split_added(awq_tokenizer *t, enc_ctx *c, const char *s, size_t n, bool at_start,
                              bool normalized, seg_fn fn) {
    size_t seg = 0, i = 0;
    awq_status st;
    while (i < n) {
        if (!t->added_first[(unsigned char)s[i]]) {
            i++;
            continue;
        }
        int k = match_added(t, s, n, i, normalized);
        if (k < 0) {
            i++;
            continue;
        }
        const tok_added *a = &t->added[k];
        size_t ms = i, me = i + a->len;
        if (a->single_word) {
            bool left_ok = ms == 0 || !is_word_cp(cp_before(s, ms, NULL));
            uint32_t nx = 0;
            bool right_ok = me == n || (tok_utf8_decode(s + me, n - me, &nx), !is_word_cp(nx));
            if (!left_ok || !right_ok) { /* the span stays text; scanning resumes after it */
                i = me;
                continue;
            }
        }
        if (a->lstrip) {
            size_t b;
            while (ms > seg && is_ws(cp_before(s, ms, &b))) ms = b;
        }
        if (a->rstrip) {
            while (me < n) {
                uint32_t cp;
                size_t l = tok_utf8_decode(s + me, n - me, &cp);
                if (!is_ws(cp)) break;
                me += l;
            }
        }
        if (ms > seg && (st = fn(t, c, s + seg, ms - seg, at_start && seg == 0)) != AWQ_OK) return st;
        if (!tok_ids_push(&c->ids, a->id)) return awq_set_error(t->rt, AWQ_ERR_OUT_OF_MEMORY, "tokenizer");
        seg = i = me;
    }
    if (n > seg) return fn(t, c, s + seg, n - seg, at_start && seg == 0);
    return AWQ_OK;
}

static awq_status seg_normalized(awq_tokenizer *t, enc_ctx *c, const char *s, size_t n, bool at_start) {
    return encode_normalized(t, c, s, n, at_start);
}

/* A raw segment: normalize, then split on the added tokens that match normalized text. */
static awq_status seg_raw(awq_tokenizer *t, enc_ctx *c, const char *s, size_t n, bool at_start) {
    awq_status st = tok_normalize(t, s, n, &c->norm);
    if (st != AWQ_OK) return st;
    /* the normalized copy must survive encode_normalized's use of c->work */
    tok_buf norm = c->norm;
    c->norm = (tok_buf){0};
    st = split_added(t, c, norm.p ? norm.p : "", norm.n, at_start, true, seg_normalized);
    tok_buf_free(&c->norm);
    c->norm = norm;
    return st;
}

static uint64_t text_hash(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* Hands out ids (size query or fill) and remembers a size query's result. */
static awq_status deliver(awq_tokenizer *t, const tok_ids *v, int32_t *ids, int64_t cap, int64_t *n_out) {
    *n_out = (int64_t)v->n;
    if (!ids) return AWQ_OK;
    if ((int64_t)v->n > cap)
        return awq_set_error(t->rt, AWQ_ERR_INVALID_ARG, "encode: %lld ids do not fit in %lld",
                             (long long)v->n, (long long)cap);
    if (v->n) memcpy(ids, v->p, v->n * sizeof *ids);
    return AWQ_OK;
}

awq_status awq_tokenizer_encode(awq_tokenizer *t, const char *text, size_t len, bool add_special,
                                int32_t *ids, int64_t cap, int64_t *n_out) {
    if (!t || (!text && len > 0) || !n_out || (ids && cap < 0)) return AWQ_ERR_INVALID_ARG;
    *n_out = 0;
    /* query-size-then-fill: the fill call of the same text reuses the query's ids */
    uint64_t h = len >= 4096 ? text_hash(text, len) : 0;
    if (len >= 4096 && t->last_valid && t->last_len == len && t->last_hash == h &&
        t->last_special == add_special) {
        awq_status st = deliver(t, &t->last_ids, ids, cap, n_out);
        if (ids && st == AWQ_OK) t->last_valid = false;
        return st;
    }
    enc_ctx c = {0};
    tok_buf clean = {0};
    awq_status st = AWQ_OK;
    if (!tok_utf8_sanitize(&clean, text ? text : "", len)) {
        st = awq_set_error(t->rt, AWQ_ERR_OUT_OF_MEMORY, "encode: %zu bytes", len);
        goto done;
    }
    if (add_special)
        for (int i = 0; i < t->n_prefix; i++)
            if (!tok_ids_push(&c.ids, t->prefix_ids[i])) goto oom;
    st = split_added(t, &c, clean.p ? clean.p : "", clean.n, true, false, seg_raw);
    if (st != AWQ_OK) goto done;
    if (add_special)
        for (int i = 0; i < t->n_suffix; i++)
            if (!tok_ids_push(&c.ids, t->suffix_ids[i])) goto oom;
    st = deliver(t, &c.ids, ids, cap, n_out);
    if (!ids && len >= 4096) { /* keep the result for the fill call (long texts only) */
        tok_ids_free(&t->last_ids);
        t->last_ids = c.ids;
        c.ids = (tok_ids){0};
        t->last_hash = h;
        t->last_len = len;
        t->last_special = add_special;
        t->last_valid = true;
    }
    goto done;
oom:
    st = awq_set_error(t->rt, AWQ_ERR_OUT_OF_MEMORY, "encode: %zu bytes", len);
done:
    tok_buf_free(&clean);
    tok_buf_free(&c.norm);
    tok_buf_free(&c.work);
    tok_pieces_free(&c.pieces);
    tok_pieces_free(&c.tmp);
    tok_ids_free(&c.ids);
    return st;
}
