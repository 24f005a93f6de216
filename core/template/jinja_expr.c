/* jinja_expr.c - expressions, by precedence: x if c else y < or < and < not < comparisons and
 * `in` < + - < ~ < * / // % < unary minus < postfix (.attr [i] [a:b] (args)) with filters and tests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja_parser.h"

/* ---- expressions ---------------------------------------------------------------------------- */

static jnode *parse_expr_inner(jparser *p);

/* Arguments of a call/filter/test: (a, b, name=c). Fills n->args/kw/nargs. */
static void parse_args(jparser *p, jnode *n) {
    jnode *args[32];
    const char *kw[32];
    int na = 0;
    next_tok(p); /* '(' */
    while (!p->failed && !is_op(p, ")")) {
        if (na == 32) {
            perr(p, AWQ_ERR_UNSUPPORTED, "too many arguments", NULL);
            return;
        }
        kw[na] = NULL;
        if (p->tok.type == T_NAME) { /* name=value ? */
            const char *save = p->pos;
            int sl = p->line;
            jtok st = p->tok;
            next_tok(p);
            if (is_op(p, "=")) {
                kw[na] = jarena_strndup(p->a, st.p, st.n);
                next_tok(p);
            } else {
                p->pos = save;
                p->line = sl;
                p->tok = st;
            }
        }
        args[na++] = parse_expr(p);
        if (is_op(p, ","))
            next_tok(p);
        else
            break;
    }
    expect_op(p, ")");
    n->nargs = na;
    n->args = jarena_alloc(p->a, sizeof *n->args * (size_t)(na ? na : 1));
    n->kw = jarena_alloc(p->a, sizeof *n->kw * (size_t)(na ? na : 1));
    if (n->args && n->kw) {
        memcpy(n->args, args, sizeof *args * (size_t)na);
        memcpy(n->kw, kw, sizeof *kw * (size_t)na);
    }
}

static jnode *parse_primary(jparser *p) {
    jnode *n = NULL;
    if (p->failed) return NULL;
    switch (p->tok.type) {
    case T_NAME:
        if (is_name(p, "true") || is_name(p, "True") || is_name(p, "false") || is_name(p, "False")) {
            n = node(p, JE_LIT);
            n->lit = (jv){.type = JV_BOOL, .u.b = p->tok.p[0] == 't' || p->tok.p[0] == 'T'};
        } else if (is_name(p, "none") || is_name(p, "None")) {
            n = node(p, JE_LIT);
            n->lit.type = JV_NONE;
        } else {
            n = node(p, JE_NAME);
            n->name = tok_name(p);
        }
        next_tok(p);
        return n;
    case T_INT:
    case T_FLOAT: {
        char buf[64];
        size_t k = 0;
        for (size_t i = 0; i < p->tok.n && k < sizeof buf - 1; i++)
            if (p->tok.p[i] != '_') buf[k++] = p->tok.p[i];
        buf[k] = '\0';
        n = node(p, JE_LIT);
        if (p->tok.type == T_INT)
            n->lit = (jv){.type = JV_INT, .u.i = strtoll(buf, NULL, 10)};
        else
            n->lit = (jv){.type = JV_FLOAT, .u.f = strtod(buf, NULL)};
        next_tok(p);
        return n;
    }
    case T_STR:
        n = node(p, JE_LIT);
        n->lit = str_lit(p);
        next_tok(p);
        while (p->tok.type == T_STR) { /* adjacent literals concatenate */
            jv more = str_lit(p);
            char *c = jarena_alloc(p->a, n->lit.u.s.n + more.u.s.n + 1);
            memcpy(c, n->lit.u.s.p, n->lit.u.s.n);
            memcpy(c + n->lit.u.s.n, more.u.s.p, more.u.s.n);
            n->lit.u.s.p = c;
            n->lit.u.s.n += more.u.s.n;
            next_tok(p);
        }
        return n;
    case T_OP:
        if (is_op(p, "(")) {
            next_tok(p);
            n = parse_expr(p);
            if (is_op(p, ",")) {
                perr(p, AWQ_ERR_UNSUPPORTED, "tuples are not supported", NULL);
                return NULL;
            }
            expect_op(p, ")");
            return n;
        }
        if (is_op(p, "[") || is_op(p, "{")) {
            bool dict = is_op(p, "{");
            n = node(p, dict ? JE_DICT : JE_LIST);
            jnode *items[256];
            int k = 0;
            next_tok(p);
            while (!p->failed && !is_op(p, dict ? "}" : "]")) {
                if (k >= 254) {
                    perr(p, AWQ_ERR_UNSUPPORTED, "literal too long", NULL);
                    return NULL;
                }
                items[k++] = parse_expr(p);
                if (dict) {
                    expect_op(p, ":");
                    items[k++] = parse_expr(p);
                }
                if (is_op(p, ","))
                    next_tok(p);
                else
                    break;
            }
            expect_op(p, dict ? "}" : "]");
            n->nargs = k;
            n->args = jarena_alloc(p->a, sizeof *n->args * (size_t)(k ? k : 1));
            if (n->args) memcpy(n->args, items, sizeof *items * (size_t)k);
            return n;
        }
        break;
    default: break;
    }
    perr(p, AWQ_ERR_FORMAT, p->tok.type == T_EOF ? "unexpected end of expression" : "unexpected token",
         p->tok.type == T_EOF ? NULL : jarena_strndup(p->a, p->tok.p, p->tok.n));
    return NULL;
}

static jnode *parse_postfix(jparser *p, jnode *n) {
    while (!p->failed) {
        if (is_op(p, ".")) {
            next_tok(p);
            if (p->tok.type != T_NAME && p->tok.type != T_INT) {
                perr(p, AWQ_ERR_FORMAT, "expected an attribute name after '.'", NULL);
                return NULL;
            }
            jnode *m = node(p, JE_ATTR);
            m->a = n;
            m->name = tok_name(p);
            next_tok(p);
            n = m;
        } else if (is_op(p, "[")) {
            next_tok(p);
            jnode *parts[3] = {NULL, NULL, NULL};
            bool slice = false;
            for (int k = 0; k < 3 && !p->failed; k++) {
                if (!is_op(p, ":") && !is_op(p, "]")) parts[k] = parse_expr(p);
                if (is_op(p, ":")) {
                    slice = true;
                    next_tok(p);
                } else
                    break;
            }
            expect_op(p, "]");
            jnode *m = node(p, slice ? JE_SLICE : JE_INDEX);
            m->a = n;
            if (slice) {
                m->args = jarena_alloc(p->a, sizeof *m->args * 3);
                if (m->args) memcpy(m->args, parts, sizeof parts);
                m->nargs = 3;
            } else
                m->b = parts[0];
            n = m;
        } else if (is_op(p, "(")) {
            jnode *m = node(p, JE_CALL);
            m->a = n;
            parse_args(p, m);
            n = m;
        } else
            break;
    }
    return n;
}

/* Filters `| f(args)` and tests `is [not] t(args)` on a unary expression. */
static jnode *parse_filters(jparser *p, jnode *n) {
    while (!p->failed) {
        if (is_op(p, "|")) {
            next_tok(p);
            if (p->tok.type != T_NAME) {
                perr(p, AWQ_ERR_FORMAT, "expected a filter name after '|'", NULL);
                return NULL;
            }
            jnode *m = node(p, JE_FILTER);
            m->a = n;
            m->name = tok_name(p);
            next_tok(p);
            if (is_op(p, "(")) parse_args(p, m);
            n = m;
        } else if (is_name(p, "is")) {
            next_tok(p);
            jnode *m = node(p, JE_TEST);
            m->a = n;
            if (is_name(p, "not")) {
                m->op = 1;
                next_tok(p);
            }
            if (p->tok.type != T_NAME) {
                perr(p, AWQ_ERR_FORMAT, "expected a test name after 'is'", NULL);
                return NULL;
            }
            m->name = tok_name(p);
            next_tok(p);
            if (is_op(p, "("))
                parse_args(p, m);
            else if (p->tok.type == T_STR || p->tok.type == T_INT || p->tok.type == T_NAME) {
                /* `is equalto 3` / `is sameas x`: one argument without parentheses */
                if (!is_name(p, "and") && !is_name(p, "or") && !is_name(p, "else") && !is_name(p, "if")) {
                    m->args = jarena_alloc(p->a, sizeof *m->args);
                    m->kw = jarena_alloc(p->a, sizeof *m->kw);
                    if (m->args) m->args[0] = parse_primary(p);
                    m->nargs = 1;
                }
            }
            n = m;
        } else
            break;
    }
    return n;
}

static jnode *parse_unary(jparser *p) {
    if (p->depth > JINJA_MAX_DEPTH) {
        perr(p, AWQ_ERR_UNSUPPORTED, "expression nested too deeply", NULL);
        return NULL;
    }
    if (is_op(p, "-") || is_op(p, "+")) {
        p->depth++;
        bool neg = is_op(p, "-");
        next_tok(p);
        jnode *x = parse_unary(p);
        p->depth--;
        if (!neg) return x;
        jnode *n = node(p, JE_NEG);
        if (n) n->a = x;
        return parse_filters(p, n);
    }
    return parse_filters(p, parse_postfix(p, parse_primary(p)));
}

static jnode *bin(jparser *p, int op, jnode *l, jnode *r) {
    jnode *n = node(p, JE_BIN);
    if (!n) return NULL;
    n->op = op;
    n->a = l;
    n->b = r;
    return n;
}


static jnode *parse_math2(jparser *p) {
    jnode *n = parse_unary(p);
    while (!p->failed && (is_op(p, "*") || is_op(p, "/") || is_op(p, "//") || is_op(p, "%"))) {
        int op = is_op(p, "*") ? OP_MUL : is_op(p, "/") ? OP_DIV : is_op(p, "//") ? OP_FLOORDIV : OP_MOD;
        next_tok(p);
        n = bin(p, op, n, parse_unary(p));
    }
    return n;
}

static jnode *parse_concat(jparser *p) {
    jnode *n = parse_math2(p);
    while (!p->failed && is_op(p, "~")) {
        next_tok(p);
        n = bin(p, OP_CAT, n, parse_math2(p));
    }
    return n;
}

static jnode *parse_math1(jparser *p) {
    jnode *n = parse_concat(p);
    while (!p->failed && (is_op(p, "+") || is_op(p, "-"))) {
        int op = is_op(p, "+") ? OP_ADD : OP_SUB;
        next_tok(p);
        n = bin(p, op, n, parse_concat(p));
    }
    return n;
}

static jnode *parse_compare(jparser *p) {
    jnode *n = parse_math1(p);
    for (;;) {
        int op = 0;
        if (is_op(p, "=="))
            op = OP_EQ;
        else if (is_op(p, "!="))
            op = OP_NE;
        else if (is_op(p, "<"))
            op = OP_LT;
        else if (is_op(p, "<="))
            op = OP_LE;
        else if (is_op(p, ">"))
            op = OP_GT;
        else if (is_op(p, ">="))
            op = OP_GE;
        else if (is_name(p, "in"))
            op = OP_IN;
        else if (is_name(p, "not")) { /* `not in` */
            const char *save = p->pos;
            int sl = p->line;
            jtok st = p->tok;
            next_tok(p);
            if (!is_name(p, "in")) {
                p->pos = save;
                p->line = sl;
                p->tok = st;
                break;
            }
            op = OP_NOTIN;
        } else
            break;
        if (p->failed) break;
        next_tok(p);
        n = bin(p, op, n, parse_math1(p));
    }
    return n;
}

static jnode *parse_not(jparser *p) {
    if (is_name(p, "not")) {
        next_tok(p);
        if (++p->depth > JINJA_MAX_DEPTH) {
            perr(p, AWQ_ERR_UNSUPPORTED, "expression nested too deeply", NULL);
            return NULL;
        }
        jnode *n = node(p, JE_NOT);
        if (n) n->a = parse_not(p);
        p->depth--;
        return n;
    }
    return parse_compare(p);
}

static jnode *parse_and(jparser *p) {
    jnode *n = parse_not(p);
    while (!p->failed && is_name(p, "and")) {
        next_tok(p);
        jnode *m = node(p, JE_AND);
        if (!m) return NULL;
        m->a = n;
        m->b = parse_not(p);
        n = m;
    }
    return n;
}

jnode *parse_or(jparser *p) {
    jnode *n = parse_and(p);
    while (!p->failed && is_name(p, "or")) {
        next_tok(p);
        jnode *m = node(p, JE_OR);
        if (!m) return NULL;
        m->a = n;
        m->b = parse_and(p);
        n = m;
    }
    return n;
}

jnode *parse_expr(jparser *p) {
    if (++p->depth > JINJA_MAX_DEPTH) {
        perr(p, AWQ_ERR_UNSUPPORTED, "expression nested too deeply", NULL);
        return NULL;
    }
    jnode *n = parse_expr_inner(p);
    p->depth--;
    return n;
}

static jnode *parse_expr_inner(jparser *p) {
    jnode *n = parse_or(p);
    if (!p->failed && is_name(p, "if")) { /* x if cond [else y] */
        next_tok(p);
        jnode *m = node(p, JE_COND);
        if (!m) return NULL;
        m->a = n;
        m->b = parse_or(p);
        if (is_name(p, "else")) {
            next_tok(p);
            m->c = parse_expr(p);
        }
        return m;
    }
    return n;
}
