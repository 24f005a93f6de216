/*
 * jinja_parse.c - template text -> statement and expression tree.
 *
 * Whitespace handling follows transformers' environment: trim_blocks (the first newline after a
 * block or comment tag is dropped) and lstrip_blocks (spaces and tabs before a block or comment
 * tag at the start of a line are dropped), plus explicit '-' (strip all whitespace on that side)
 * and '+' (disable lstrip_blocks / trim_blocks) markers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja_parser.h"

/* ---- statements ----------------------------------------------------------------------------- */

/* Finds the next tag at or after s; returns its start or NULL. */
static const char *find_tag(const char *s) {
    for (; *s; s++)
        if (s[0] == '{' && (s[1] == '{' || s[1] == '%' || s[1] == '#')) return s;
    return NULL;
}

/* Parses text and tags until one of the end keywords (NULL-terminated list) is met; returns
 * the keyword found (its tag has been consumed up to its arguments) or NULL at end of input. */
static const char *parse_body(jparser *p, const char *const *ends, jnode **out);
static const char *parse_body_inner(jparser *p, const char *const *ends, jnode **headp, jnode **tailp);

static jnode *append(jnode **head, jnode **tail, jnode *n) {
    if (!n) return NULL;
    if (*tail)
        (*tail)->next = n;
    else
        *head = n;
    *tail = n;
    return n;
}

/* Moves the parser to the tag content [content, close) and reads the first token. */
static void open_tag(jparser *p, const char *content, const char *close) {
    p->pos = content;
    p->end = close;
    p->line = line_of(p, content);
    next_tok(p);
}

/* Finds the end marker of a tag that starts at s ("{{"/"{%"/"{#"), skipping strings. */
static const char *tag_close(const char *s, char kind, const char **after, bool *minus, bool *plus) {
    char want = kind == '{' ? '}' : kind;
    const char *q = s + 2;
    char quote = 0;
    for (; *q; q++) {
        if (kind != '#' && quote) {
            if (*q == '\\' && q[1])
                q++;
            else if (*q == quote)
                quote = 0;
            continue;
        }
        if (kind != '#' && (*q == '\'' || *q == '"')) {
            quote = *q;
            continue;
        }
        if (q[0] == want && q[1] == '}') {
            *minus = q > s + 2 && q[-1] == '-';
            *plus = q > s + 2 && q[-1] == '+';
            *after = q + 2;
            return (*minus || *plus) ? q - 1 : q;
        }
    }
    return NULL;
}

static const char *parse_body(jparser *p, const char *const *ends, jnode **out) {
    jnode *head = NULL, *tail = NULL;
    *out = NULL;
    if (++p->depth > JINJA_MAX_DEPTH) {
        perr(p, AWQ_ERR_UNSUPPORTED, "blocks nested too deeply", NULL);
        return NULL;
    }
    const char *r = parse_body_inner(p, ends, &head, &tail);
    p->depth--;
    *out = head;
    return r;
}

static const char *parse_body_inner(jparser *p, const char *const *ends, jnode **headp, jnode **tailp) {
    jnode *head = NULL, *tail = NULL;
    while (!p->failed && *p->tpos) {
        const char *tag = find_tag(p->tpos);
        const char *text_end = tag ? tag : p->tpos + strlen(p->tpos);
        const char *ts = p->tpos;
        /* whitespace control on the text before the tag */
        if (p->trim_next) {
            while (ts < text_end && (*ts == ' ' || *ts == '\t' || *ts == '\n' || *ts == '\r')) ts++;
        } else if (p->trim_nl) {
            if (ts < text_end && *ts == '\n')
                ts++;
            else if (ts + 1 < text_end && ts[0] == '\r' && ts[1] == '\n')
                ts += 2;
        }
        p->trim_next = p->trim_nl = false;
        const char *te = text_end;
        if (tag) {
            char kind = tag[1];
            bool lminus = tag[2] == '-', lplus = tag[2] == '+';
            if (lminus) {
                while (te > ts && (te[-1] == ' ' || te[-1] == '\t' || te[-1] == '\n' || te[-1] == '\r')) te--;
            } else if (kind != '{' && !lplus) { /* lstrip_blocks */
                const char *b = te;
                while (b > ts && (b[-1] == ' ' || b[-1] == '\t')) b--;
                if (b == p->src || b[-1] == '\n') te = b;
            }
        }
        if (te > ts) {
            jnode *n = node(p, JN_TEXT);
            if (!n) break;
            n->lit.type = JV_STR;
            n->lit.u.s.p = ts;
            n->lit.u.s.n = (size_t)(te - ts);
            append(&head, &tail, n);
        }
        if (!tag) {
            p->tpos = text_end;
            break;
        }
        char kind = tag[1];
        const char *after;
        bool rminus = false, rplus = false;
        const char *close = tag_close(tag, kind, &after, &rminus, &rplus);
        p->line = line_of(p, tag);
        if (!close) {
            perr(p, AWQ_ERR_FORMAT, "unclosed tag", NULL);
            break;
        }
        const char *content = tag + 2 + ((tag[2] == '-' || tag[2] == '+') ? 1 : 0);
        p->tpos = after;
        p->trim_next = rminus;
        p->trim_nl = !rminus && !rplus && kind != '{';
        if (kind == '#') continue;
        open_tag(p, content, close);
        if (kind == '{') {
            jnode *n = node(p, JN_OUTPUT);
            if (!n) break;
            n->a = parse_expr(p);
            if (!p->failed && p->tok.type != T_EOF)
                perr(p, AWQ_ERR_FORMAT, "unexpected token in {{ }}",
                     jarena_strndup(p->a, p->tok.p, p->tok.n));
            append(&head, &tail, n);
            continue;
        }
        /* a statement */
        if (p->tok.type != T_NAME) {
            perr(p, AWQ_ERR_FORMAT, "expected a statement keyword", NULL);
            break;
        }
        for (int i = 0; ends && ends[i]; i++) {
            if (is_name(p, ends[i])) {
                *headp = head;
                *tailp = tail;
                next_tok(p);
                return ends[i];
            }
        }
        jnode *n = NULL;
        if (is_name(p, "if")) {
            next_tok(p);
            n = node(p, JN_IF);
            jnode *cur = n;
            static const char *const if_ends[] = {"elif", "else", "endif", NULL};
            for (;;) {
                if (!cur) break;
                cur->a = parse_expr(p);
                const char *e = parse_body(p, if_ends, &cur->body);
                if (!e) {
                    if (!p->failed) perr(p, AWQ_ERR_FORMAT, "missing {% endif %}", NULL);
                    break;
                }
                if (!strcmp(e, "elif")) {
                    jnode *m = node(p, JN_IF);
                    if (m) m->op = 1; /* elif */
                    cur->orelse = m;
                    cur = m;
                    continue;
                }
                if (!strcmp(e, "else")) {
                    static const char *const else_ends[] = {"endif", NULL};
                    if (!parse_body(p, else_ends, &cur->orelse) && !p->failed)
                        perr(p, AWQ_ERR_FORMAT, "missing {% endif %}", NULL);
                }
                break;
            }
        } else if (is_name(p, "for")) {
            next_tok(p);
            n = node(p, JN_FOR);
            if (!n || p->tok.type != T_NAME) {
                perr(p, AWQ_ERR_FORMAT, "expected a loop variable", NULL);
                break;
            }
            n->name = tok_name(p);
            next_tok(p);
            if (is_op(p, ",")) {
                next_tok(p);
                if (p->tok.type != T_NAME) {
                    perr(p, AWQ_ERR_FORMAT, "expected a second loop variable", NULL);
                    break;
                }
                n->name2 = tok_name(p);
                next_tok(p);
            }
            if (!is_name(p, "in")) {
                perr(p, AWQ_ERR_FORMAT, "expected 'in' in for", NULL);
                break;
            }
            next_tok(p);
            n->a = parse_or(p); /* not parse_expr: a trailing `if` filters the loop */
            if (is_name(p, "if")) {
                next_tok(p);
                n->b = parse_expr(p);
            }
            if (is_name(p, "recursive")) {
                perr(p, AWQ_ERR_UNSUPPORTED, "unsupported construct", "for ... recursive");
                break;
            }
            static const char *const for_ends[] = {"else", "endfor", NULL};
            const char *e = parse_body(p, for_ends, &n->body);
            if (e && !strcmp(e, "else")) {
                static const char *const ends2[] = {"endfor", NULL};
                e = parse_body(p, ends2, &n->orelse);
            }
            if (!e && !p->failed) perr(p, AWQ_ERR_FORMAT, "missing {% endfor %}", NULL);
        } else if (is_name(p, "set")) {
            next_tok(p);
            n = node(p, JN_SET);
            if (!n || p->tok.type != T_NAME) {
                perr(p, AWQ_ERR_FORMAT, "expected a variable after set", NULL);
                break;
            }
            n->name = tok_name(p);
            next_tok(p);
            if (is_op(p, ".")) {
                next_tok(p);
                if (p->tok.type != T_NAME) {
                    perr(p, AWQ_ERR_FORMAT, "expected an attribute after '.'", NULL);
                    break;
                }
                n->name2 = tok_name(p);
                next_tok(p);
            }
            if (is_op(p, ",")) {
                perr(p, AWQ_ERR_UNSUPPORTED, "unsupported construct", "set a, b = ...");
                break;
            }
            if (is_op(p, "=")) {
                next_tok(p);
                n->a = parse_expr(p);
            } else { /* block set: {% set x %}...{% endset %} */
                static const char *const set_ends[] = {"endset", NULL};
                if (!parse_body(p, set_ends, &n->body) && !p->failed)
                    perr(p, AWQ_ERR_FORMAT, "missing {% endset %}", NULL);
            }
        } else if (is_name(p, "break") || is_name(p, "continue")) {
            n = node(p, is_name(p, "break") ? JN_BREAK : JN_CONTINUE);
            next_tok(p);
        } else if (is_name(p, "generation")) { /* transformers' AssistantTracker: just the body */
            next_tok(p);
            n = node(p, JN_BLOCK);
            static const char *const gen_ends[] = {"endgeneration", NULL};
            if (n && !parse_body(p, gen_ends, &n->body) && !p->failed)
                perr(p, AWQ_ERR_FORMAT, "missing {% endgeneration %}", NULL);
        } else {
            perr(p, AWQ_ERR_UNSUPPORTED, "unsupported statement", jarena_strndup(p->a, p->tok.p, p->tok.n));
            break;
        }
        if (!p->failed && p->tok.type != T_EOF)
            perr(p, AWQ_ERR_FORMAT, "unexpected token", jarena_strndup(p->a, p->tok.p, p->tok.n));
        append(&head, &tail, n);
    }
    *headp = head;
    *tailp = tail;
    return NULL; /* end of the template (an open block's caller reports the missing end tag) */
}

awq_status jinja_parse(awq_runtime *rt, jarena *a, const char *tmpl, jnode **out) {
    jparser p = {.rt = rt, .a = a, .src = tmpl, .tpos = tmpl, .line = 1};
    parse_body(&p, NULL, out);
    return p.failed ? p.st : AWQ_OK;
}
