/*
 * tok_pipeline.c - normalizers and pre-tokenizers, with the semantics of Hugging Face
 * `tokenizers`: normalizers rewrite one segment of text (the text between added tokens);
 * pre-tokenizers cut it into pieces, each of which the model encodes independently.
 */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "tok_internal.h"

/* ---- normalizers ---------------------------------------------------------------------------- */

static bool is_ascii(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80) return false;
    return true;
}

static bool is_white_space(uint32_t cp) {
    /* Unicode White_Space property (what Rust's char::is_whitespace tests) */
    return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
        (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
        cp == 0x3000;
}

static bool swap_in(tok_buf *out, tok_buf *tmp) {
    tok_buf x = *out;
    *out = *tmp;
    *tmp = x;
    return true;
}

awq_status tok_normalize(awq_tokenizer *t, const char *seg, size_t n, tok_buf *out) {
    out->n = 0;
    if (!tok_buf_append(out, seg, n)) goto oom;
    tok_buf tmp = {0};
    for (int k = 0; k < t->n_norm; k++) {
        const tok_norm *nm = &t->norm[k];
        tmp.n = 0;
        switch (nm->kind) {
        case TOK_NORM_NFC:
        case TOK_NORM_NFKC:
        case TOK_NORM_NFD:
        case TOK_NORM_NFKD: {
            if (out->n == 0 || is_ascii(out->p, out->n)) break;
            int opt = UTF8PROC_STABLE;
            if (nm->kind == TOK_NORM_NFC || nm->kind == TOK_NORM_NFKC)
                opt |= UTF8PROC_COMPOSE;
            else
                opt |= UTF8PROC_DECOMPOSE;
            if (nm->kind == TOK_NORM_NFKC || nm->kind == TOK_NORM_NFKD) opt |= UTF8PROC_COMPAT;
            utf8proc_uint8_t *dst = NULL;
            utf8proc_ssize_t r = utf8proc_map((const utf8proc_uint8_t *)out->p, (utf8proc_ssize_t)out->n,
                                              &dst, (utf8proc_option_t)opt);
            if (r < 0) {
                tok_buf_free(&tmp);
                return awq_set_error(t->rt, AWQ_ERR_INVALID_ARG, "tokenizer: normalization: %s",
                                     utf8proc_errmsg(r));
            }
            out->n = 0;
            bool ok = tok_buf_append(out, dst, (size_t)r);
            free(dst); /* allocated by utf8proc with malloc */
            if (!ok) goto oom_tmp;
            break;
        }
        case TOK_NORM_PREPEND:
            if (out->n == 0) break;
            if (!tok_buf_append(&tmp, nm->a, strlen(nm->a)) || !tok_buf_append(&tmp, out->p, out->n))
                goto oom_tmp;
            swap_in(out, &tmp);
            break;
        case TOK_NORM_REPLACE: {
            if (nm->re) {
                if (!tok_regex_replace(nm->re, out->p, out->n, nm->b, &tmp)) goto oom_tmp;
                swap_in(out, &tmp);
                break;
            }
            size_t pl = strlen(nm->a), rl = strlen(nm->b);
            if (!pl) break;
            size_t i = 0;
            while (i < out->n) {
                if (i + pl <= out->n && memcmp(out->p + i, nm->a, pl) == 0) {
                    if (!tok_buf_append(&tmp, nm->b, rl)) goto oom_tmp;
                    i += pl;
                } else {
                    if (!tok_buf_putc(&tmp, out->p[i])) goto oom_tmp;
                    i++;
                }
            }
            if (!tok_buf_append(&tmp, "", 0)) goto oom_tmp;
            swap_in(out, &tmp);
            break;
        }
        case TOK_NORM_LOWERCASE: {
            size_t i = 0;
            while (i < out->n) {
                uint32_t cp;
                i += tok_utf8_decode(out->p + i, out->n - i, &cp);
                char u[4];
                size_t l = tok_utf8_encode((uint32_t)utf8proc_tolower((utf8proc_int32_t)cp), u);
                if (!tok_buf_append(&tmp, u, l)) goto oom_tmp;
            }
            if (!tok_buf_append(&tmp, "", 0)) goto oom_tmp;
            swap_in(out, &tmp);
            break;
        }
        case TOK_NORM_STRIP: {
            size_t a = 0, b = out->n;
            while (nm->left && a < b) {
                uint32_t cp;
                size_t l = tok_utf8_decode(out->p + a, b - a, &cp);
                if (!is_white_space(cp)) break;
                a += l;
            }
            while (nm->right && b > a) {
                size_t s = b - 1;
                while (s > a && ((unsigned char)out->p[s] & 0xC0) == 0x80) s--;
                uint32_t cp;
                tok_utf8_decode(out->p + s, b - s, &cp);
                if (!is_white_space(cp)) break;
                b = s;
            }
            memmove(out->p, out->p + a, b - a);
            out->n = b - a;
            out->p[out->n] = '\0';
            break;
        }
        }
    }
    tok_buf_free(&tmp);
    return AWQ_OK;
oom_tmp:
    tok_buf_free(&tmp);
oom:
    return awq_set_error(t->rt, AWQ_ERR_OUT_OF_MEMORY, "tokenizer: normalize %zu bytes", n);
}

/* ---- pre-tokenizers ------------------------------------------------------------------------- */

void tok_pieces_free(tok_pieces *p) {
    awq_free(p->p);
    memset(p, 0, sizeof *p);
}

static bool pieces_push(tok_pieces *v, size_t off, size_t len, bool at_start) {
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 256;
        tok_piece *p = awq_realloc(v->p, cap * sizeof *p);
        if (!p) return false;
        v->p = p;
        v->cap = cap;
    }
    v->p[v->n++] = (tok_piece){.off = off, .len = len, .at_start = at_start};
    return true;
}

/* A span of a piece and whether the pattern matched it (after `invert`). */
typedef struct split_span {
    size_t off, len;
    bool match;
} split_span;

typedef struct span_list {
    split_span *p;
    size_t n, cap;
} span_list;

static bool spans_push(span_list *v, size_t off, size_t len, bool match) {
    if (len == 0) return true;
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        split_span *p = awq_realloc(v->p, cap * sizeof *p);
        if (!p) return false;
        v->p = p;
        v->cap = cap;
    }
    v->p[v->n++] = (split_span){off, len, match};
    return true;
}

/* Finds the pattern's matches in piece and emits pieces according to the behavior. */
static awq_status split_piece(awq_tokenizer *t, const tok_pre *pre, const tok_buf *buf, const tok_piece *pc,
                              span_list *spans, tok_pieces *out) {
    spans->n = 0;
    const char *subj = buf->p + pc->off;
    size_t pos = 0, prev = 0;
    while (pos <= pc->len) {
        int rc = pcre2_match(pre->re, (PCRE2_SPTR)subj, pc->len, pos, PCRE2_NO_UTF_CHECK, t->md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return awq_set_error(t->rt, AWQ_ERR_INVALID_ARG, "tokenizer: regex '%s': %s", pre->pattern,
                                 (const char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(t->md);
        size_t ms = ov[0], me = ov[1];
        if (me == ms) { /* empty match: skip one character */
            if (ms >= pc->len) break;
            size_t l = tok_utf8_valid_len((const unsigned char *)subj + ms, pc->len - ms);
            pos = ms + (l ? l : 1);
            continue;
        }
        if (!spans_push(spans, prev, ms - prev, pre->invert) || !spans_push(spans, ms, me - ms, !pre->invert))
            goto oom;
        prev = pos = me;
    }
    if (!spans_push(spans, prev, pc->len - prev, pre->invert)) goto oom;

    size_t first_out = out->n;
    bool carry = false; /* MergedWithNext: a match waits for the next span */
    size_t carry_off = 0;
    for (size_t i = 0; i < spans->n; i++) {
        split_span s = spans->p[i];
        size_t off = pc->off + s.off;
        switch (pre->behavior) {
        case TOK_SPLIT_REMOVED:
            if (!s.match && !pieces_push(out, off, s.len, false)) goto oom;
            break;
        case TOK_SPLIT_ISOLATED:
            if (!pieces_push(out, off, s.len, false)) goto oom;
            break;
        case TOK_SPLIT_MERGED_PREV:
            if (s.match && i > 0 && !spans->p[i - 1].match && out->n > first_out)
                out->p[out->n - 1].len += s.len;
            else if (!pieces_push(out, off, s.len, false))
                goto oom;
            break;
        case TOK_SPLIT_MERGED_NEXT:
            if (s.match) {
                if (carry) { /* two matches in a row: the first stands alone */
                    if (!pieces_push(out, carry_off, off - carry_off, false)) goto oom;
                }
                carry = true;
                carry_off = off;
            } else if (carry) {
                if (!pieces_push(out, carry_off, off + s.len - carry_off, false)) goto oom;
                carry = false;
            } else if (!pieces_push(out, off, s.len, false))
                goto oom;
            break;
        case TOK_SPLIT_CONTIGUOUS:
            if (s.match && i > 0 && spans->p[i - 1].match && out->n > first_out)
                out->p[out->n - 1].len += s.len;
            else if (!pieces_push(out, off, s.len, false))
                goto oom;
            break;
        }
    }
    if (carry && !pieces_push(out, carry_off, pc->off + pc->len - carry_off, false)) goto oom;
    if (out->n > first_out && out->p[first_out].off == pc->off) out->p[first_out].at_start = pc->at_start;
    return AWQ_OK;
oom:
    return awq_set_error(t->rt, AWQ_ERR_OUT_OF_MEMORY, "tokenizer: pre-tokenize");
}

/* Metaspace: ' ' -> replacement, prefix per scheme, optional split before each replacement. */
static awq_status metaspace_piece(awq_tokenizer *t, const tok_pre *pre, tok_buf *buf, const tok_piece *pc,
                                  tok_pieces *out) {
    const char *rep = pre->replacement;
    size_t rl = strlen(rep);
    size_t start = buf->n;
    /* does the piece already start with the replacement (or with a space that becomes it)? */
    bool starts =
        (pc->len >= rl && memcmp(buf->p + pc->off, rep, rl) == 0) || (pc->len >= 1 && buf->p[pc->off] == ' ');
    bool prepend = !starts &&
        (pre->prepend_scheme == TOK_PREPEND_ALWAYS ||
         (pre->prepend_scheme == TOK_PREPEND_FIRST && pc->at_start));
    if (prepend && !tok_buf_append(buf, rep, rl)) goto oom;
    for (size_t i = 0; i < pc->len; i++) {
        char c = buf->p[pc->off + i]; /* buf->p may move: index, never keep pointers */
        bool ok = c == ' ' ? tok_buf_append(buf, rep, rl) : tok_buf_putc(buf, c);
        if (!ok) goto oom;
    }
    size_t end = buf->n;
    if (!pre->split) {
        if (!pieces_push(out, start, end - start, pc->at_start)) goto oom;
        return AWQ_OK;
    }
    /* MergedWithNext on the replacement: each piece begins at a replacement */
    size_t ps = start;
    for (size_t i = start + 1; i + rl <= end; i++) {
        if (memcmp(buf->p + i, rep, rl) == 0) {
            if (!pieces_push(out, ps, i - ps, ps == start && pc->at_start)) goto oom;
            ps = i;
            i += rl - 1;
        }
    }
    if (end > ps && !pieces_push(out, ps, end - ps, ps == start && pc->at_start)) goto oom;
    return AWQ_OK;
oom:
    return awq_set_error(t->rt, AWQ_ERR_OUT_OF_MEMORY, "tokenizer: pre-tokenize");
}

awq_status tok_pretokenize(awq_tokenizer *t, tok_buf *buf, size_t n, bool at_start, tok_pieces *out,
                           tok_pieces *tmp) {
    out->n = 0;
    if (n == 0) return AWQ_OK;
    if (!pieces_push(out, 0, n, at_start))
        return awq_set_error(t->rt, AWQ_ERR_OUT_OF_MEMORY, "tokenizer: pre-tokenize");
    span_list spans = {0};
    awq_status st = AWQ_OK;
    for (int k = 0; k < t->n_pre && st == AWQ_OK; k++) {
        const tok_pre *pre = &t->pre[k];
        tmp->n = 0;
        for (size_t i = 0; i < out->n && st == AWQ_OK; i++) {
            tok_piece pc = out->p[i];
            if (pc.len == 0) continue;
            switch (pre->kind) {
            case TOK_PRE_SPLIT: st = split_piece(t, pre, buf, &pc, &spans, tmp); break;
            case TOK_PRE_BYTELEVEL:
                if (pre->add_prefix_space && buf->p[pc.off] != ' ') {
                    size_t s = buf->n;
                    if (!tok_buf_putc(buf, ' ') || !tok_buf_reserve(buf, pc.len)) {
                        st = awq_set_error(t->rt, AWQ_ERR_OUT_OF_MEMORY, "tokenizer");
                        break;
                    }
                    tok_buf_append(buf, buf->p + pc.off, pc.len); /* reserved: cannot move */
                    pc.off = s;
                    pc.len += 1;
                }
                if (!pieces_push(tmp, pc.off, pc.len, pc.at_start))
                    st = awq_set_error(t->rt, AWQ_ERR_OUT_OF_MEMORY, "tokenizer");
                break;
            case TOK_PRE_METASPACE: st = metaspace_piece(t, pre, buf, &pc, tmp); break;
            }
        }
        tok_pieces x = *out;
        *out = *tmp;
        *tmp = x;
    }
    awq_free(spans.p);
    return st;
}
