/*
 * tok_decode.c - ids -> text: the decoder pipeline applied token by token, whole-text decode and
 * the incremental (streaming) decoder.
 *
 * Every supported decoder (ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip) acts on one
 * token at a time, except that Metaspace and a Strip placed after Fuse treat the first token of
 * the text specially. So a token's bytes depend only on (id, is_first), and streaming decode is
 * exactly whole-text decode cut into pieces. Byte tokens (<0xXX>) contribute raw bytes; the
 * concatenation is turned into valid UTF-8 at the end, each maximal ill-formed subsequence
 * becoming U+FFFD (as Rust's from_utf8_lossy and Python's errors="replace" do).
 * Not supported: Strip's `stop` after Fuse is applied by awq_tokenizer_decode only.
 */
#include <string.h>

#include "tok_internal.h"

static int hexv(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* Replaces every occurrence of pat in cur by rep (into tmp, then swaps). */
static bool replace_all(tok_buf *cur, tok_buf *tmp, const char *pat, const char *rep) {
    size_t pl = strlen(pat), rl = strlen(rep);
    if (pl == 0) return true;
    tmp->n = 0;
    size_t i = 0;
    while (i < cur->n) {
        if (i + pl <= cur->n && memcmp(cur->p + i, pat, pl) == 0) {
            if (!tok_buf_append(tmp, rep, rl)) return false;
            i += pl;
        } else {
            if (!tok_buf_putc(tmp, cur->p[i])) return false;
            i++;
        }
    }
    if (!tok_buf_append(tmp, "", 0)) return false;
    tok_buf s = *cur;
    *cur = *tmp;
    *tmp = s;
    return true;
}

/* Runs the decoders on one token string. */
static bool decode_one(const awq_tokenizer *t, const char *s, size_t n, bool first, tok_buf *cur,
                       tok_buf *tmp) {
    cur->n = 0;
    if (!tok_buf_append(cur, s, n)) return false;
    bool fused = false;
    for (int k = 0; k < t->n_dec; k++) {
        const tok_dec *d = &t->decs[k];
        switch (d->kind) {
        case TOK_DEC_BYTELEVEL: {
            tmp->n = 0;
            bool ok = true;
            size_t i = 0;
            while (i < cur->n) {
                uint32_t cp;
                if (!tok_utf8_valid_len((const unsigned char *)cur->p + i, cur->n - i)) {
                    ok = false;
                    break;
                }
                i += tok_utf8_decode(cur->p + i, cur->n - i, &cp);
                int b = tok_cp_to_byte(cp);
                if (b < 0) {
                    ok = false;
                    break;
                }
                if (!tok_buf_putc(tmp, (char)b)) return false;
            }
            if (ok) { /* otherwise the token's own UTF-8 is kept, as `tokenizers` does */
                tok_buf x = *cur;
                *cur = *tmp;
                *tmp = x;
            }
            break;
        }
        case TOK_DEC_METASPACE: {
            size_t rl = strlen(d->a);
            bool drop = first && d->prepend_scheme != TOK_PREPEND_NEVER && cur->n >= rl &&
                memcmp(cur->p, d->a, rl) == 0;
            if (!replace_all(cur, tmp, d->a, " ")) return false;
            if (drop) {
                memmove(cur->p, cur->p + 1, cur->n - 1);
                cur->n--;
            }
            break;
        }
        case TOK_DEC_REPLACE:
            if (d->re) {
                if (!tok_regex_replace(d->re, cur->p, cur->n, d->b, tmp)) return false;
                tok_buf x = *cur;
                *cur = *tmp;
                *tmp = x;
            } else if (!replace_all(cur, tmp, d->a, d->b)) {
                return false;
            }
            break;
        case TOK_DEC_BYTEFALLBACK:
            if (cur->n == 6 && cur->p[0] == '<' && cur->p[1] == '0' && cur->p[2] == 'x' &&
                hexv(cur->p[3]) >= 0 && hexv(cur->p[4]) >= 0 && cur->p[5] == '>') {
                cur->p[0] = (char)(hexv(cur->p[3]) * 16 + hexv(cur->p[4]));
                cur->n = 1;
            }
            break;
        case TOK_DEC_FUSE: fused = true; break;
        case TOK_DEC_STRIP: {
            size_t cl = strlen(d->a);
            if (!fused || first) {
                for (int i = 0; i < d->start && cl && cur->n >= cl && memcmp(cur->p, d->a, cl) == 0; i++) {
                    memmove(cur->p, cur->p + cl, cur->n - cl);
                    cur->n -= cl;
                }
            }
            if (!fused) {
                for (int i = 0;
                     i < d->stop && cl && cur->n >= cl && memcmp(cur->p + cur->n - cl, d->a, cl) == 0; i++)
                    cur->n -= cl;
            }
            break;
        }
        }
    }
    return true;
}

awq_status tok_build_decoded(awq_tokenizer *t) {
    tok_buf cur = {0}, tmp = {0};
    awq_status st = AWQ_OK;
    for (int32_t id = 0; id < t->n_vocab && st == AWQ_OK; id++) {
        if (!t->text[id]) continue;
        if (!decode_one(t, t->text[id], t->text_len[id], false, &cur, &tmp) ||
            !(t->dec[id] = awq_strndup(cur.p ? cur.p : "", cur.n))) {
            st = awq_set_error(t->rt, AWQ_ERR_OUT_OF_MEMORY, "tokenizer: decoded forms");
            break;
        }
        t->dec_len[id] = (uint32_t)cur.n;
    }
    tok_buf_free(&cur);
    tok_buf_free(&tmp);
    return st;
}

bool tok_decode_piece(const awq_tokenizer *t, int32_t id, bool first, tok_buf *out) {
    if (!first) return tok_buf_append(out, t->dec[id], t->dec_len[id]);
    tok_buf cur = {0}, tmp = {0};
    bool ok = decode_one(t, t->text[id], t->text_len[id], true, &cur, &tmp) &&
        tok_buf_append(out, cur.p ? cur.p : "", cur.n);
    tok_buf_free(&cur);
    tok_buf_free(&tmp);
    return ok;
}

/* Length a lead byte announces (0 if it cannot start a sequence). */
static size_t utf8_seq_len(unsigned char c) {
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return 2;
    if (c >= 0xE0 && c <= 0xEF) return 3;
    if (c >= 0xF0 && c <= 0xF4) return 4;
    return 0;
}

/* Moves the complete part of in[0, n) to out as valid UTF-8; returns the bytes consumed. Unless
 * final, a truncated but so far valid sequence at the end is left unconsumed. */
static bool emit_utf8(const char *in, size_t n, bool final, tok_buf *out, size_t *consumed) {
    const unsigned char *u = (const unsigned char *)in;
    size_t i = 0;
    while (i < n) {
        size_t l = tok_utf8_valid_len(u + i, n - i);
        if (l) {
            if (!tok_buf_append(out, in + i, l)) return false;
            i += l;
            continue;
        }
        size_t sp = tok_utf8_subpart(u + i, n - i);
        if (!final && i + sp == n && utf8_seq_len(u[i]) > sp) break; /* wait for more bytes */
        if (!tok_buf_append(out, "\xEF\xBF\xBD", 3)) return false;
        i += sp;
    }
    *consumed = i;
    return true;
}

static awq_status check_id(const awq_tokenizer *t, int32_t id) {
    if (id < 0 || id >= t->n_vocab || !t->text[id])
        return awq_set_error(t->rt, AWQ_ERR_INVALID_ARG, "decode: token id %d out of range [0, %d)", id,
                             t->n_vocab);
    return AWQ_OK;
}

awq_status awq_tokenizer_decode(awq_tokenizer *t, const int32_t *ids, int64_t n, bool skip_special,
                                char *text, size_t cap, size_t *len_out) {
    if (!t || (!ids && n > 0) || n < 0 || !len_out) return AWQ_ERR_INVALID_ARG;
    *len_out = 0;
    tok_buf raw = {0}, out = {0};
    awq_status st = AWQ_OK;
    bool first = true;
    for (int64_t i = 0; i < n; i++) {
        if ((st = check_id(t, ids[i])) != AWQ_OK) goto done;
        if (skip_special && (t->flags[ids[i]] & TOK_F_SPECIAL)) continue;
        if (!tok_decode_piece(t, ids[i], first, &raw)) goto oom;
        first = false;
    }
    /* Strip `stop` after Fuse acts on the end of the whole text */
    bool fused = false;
    for (int k = 0; k < t->n_dec; k++) {
        const tok_dec *d = &t->decs[k];
        if (d->kind == TOK_DEC_FUSE) fused = true;
        if (d->kind == TOK_DEC_STRIP && fused) {
            size_t cl = strlen(d->a);
            for (int j = 0; j < d->stop && cl && raw.n >= cl && memcmp(raw.p + raw.n - cl, d->a, cl) == 0;
                 j++)
                raw.n -= cl;
        }
    }
    size_t used;
    if (!emit_utf8(raw.p, raw.n, true, &out, &used)) goto oom;
    *len_out = out.n;
    if (text) {
        if (cap < out.n + 1) {
            st = AWQ_ERR_INVALID_ARG;
            awq_set_error(t->rt, st, "decode: buffer of %zu bytes, need %zu", cap, out.n + 1);
            goto done;
        }
        if (out.n) memcpy(text, out.p, out.n);
        text[out.n] = '\0';
    }
    goto done;
oom:
    st = awq_set_error(t->rt, AWQ_ERR_OUT_OF_MEMORY, "decode: %lld tokens", (long long)n);
done:
    tok_buf_free(&raw);
    tok_buf_free(&out);
    return st;
}

/* ---- streaming ------------------------------------------------------------------------------ */

struct awq_detok {
    awq_tokenizer *tok;
    bool skip_special;
    bool first;
    tok_buf pending; /* bytes of an incomplete UTF-8 sequence */
    tok_buf ready;   /* complete text not yet handed out (caller's buffer was too small) */
};

awq_status awq_detok_create(awq_detok **out, awq_tokenizer *tok, bool skip_special) {
    if (!out || !tok) return AWQ_ERR_INVALID_ARG;
    awq_detok *d = awq_calloc(1, sizeof *d);
    if (!d) return awq_set_error(tok->rt, AWQ_ERR_OUT_OF_MEMORY, "detok");
    d->tok = tok;
    d->skip_special = skip_special;
    d->first = true;
    *out = d;
    return AWQ_OK;
}

void awq_detok_destroy(awq_detok *d) {
    if (!d) return;
    tok_buf_free(&d->pending);
    tok_buf_free(&d->ready);
    awq_free(d);
}

/* Hands `ready` to the caller if it fits (then clears it). */
static awq_status hand_out(awq_detok *d, char *buf, size_t cap, size_t *len_out) {
    *len_out = d->ready.n;
    if (!buf || cap < d->ready.n + 1)
        return awq_set_error(d->tok->rt, AWQ_ERR_INVALID_ARG,
                             "detok: buffer of %zu bytes, need %zu (kept for the next call)", cap,
                             d->ready.n + 1);
    if (d->ready.n) memcpy(buf, d->ready.p, d->ready.n);
    buf[d->ready.n] = '\0';
    d->ready.n = 0;
    return AWQ_OK;
}

static bool drain_pending(awq_detok *d, bool final) {
    size_t used = 0;
    if (!emit_utf8(d->pending.p, d->pending.n, final, &d->ready, &used)) return false;
    if (used && used < d->pending.n) memmove(d->pending.p, d->pending.p + used, d->pending.n - used);
    d->pending.n -= used;
    return true;
}

awq_status awq_detok_push(awq_detok *d, int32_t id, char *buf, size_t cap, size_t *len_out) {
    if (!d || !len_out) return AWQ_ERR_INVALID_ARG;
    *len_out = 0;
    awq_status st = check_id(d->tok, id);
    if (st != AWQ_OK) return st;
    if (!(d->skip_special && (d->tok->flags[id] & TOK_F_SPECIAL))) {
        if (!tok_decode_piece(d->tok, id, d->first, &d->pending) || !drain_pending(d, false))
            return awq_set_error(d->tok->rt, AWQ_ERR_OUT_OF_MEMORY, "detok");
        d->first = false;
    }
    return hand_out(d, buf, cap, len_out);
}

awq_status awq_detok_flush(awq_detok *d, char *buf, size_t cap, size_t *len_out) {
    if (!d || !len_out) return AWQ_ERR_INVALID_ARG;
    *len_out = 0;
    if (!drain_pending(d, true)) return awq_set_error(d->tok->rt, AWQ_ERR_OUT_OF_MEMORY, "detok");
    return hand_out(d, buf, cap, len_out);
}
