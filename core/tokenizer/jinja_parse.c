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

#include "jinja.h"

/* ---- arena ---------------------------------------------------------------------------------- */

typedef struct jblock {
    struct jblock *next;
    size_t         used, cap;
    char           data[];
} jblock;

struct jarena {
    jblock *head;
};

jarena *jarena_new(void) { return awq_calloc(1, sizeof(jarena)); }

void jarena_free(jarena *a) {
    if (!a) return;
    for (jblock *b = a->head, *n; b; b = n) {
        n = b->next;
        awq_free(b);
    }
    awq_free(a);
}

void *jarena_alloc(jarena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (!a->head || a->head->cap - a->head->used < n) {
        size_t cap = n > (1u << 16) ? n : (1u << 16);
        jblock *b = awq_malloc(sizeof *b + cap);
        if (!b) return NULL;
        b->next = a->head;
        b->used = 0;
        b->cap = cap;
        a->head = b;
    }
    void *p = a->head->data + a->head->used;
    a->head->used += n;
    memset(p, 0, n);
    return p;
}

char *jarena_strndup(jarena *a, const char *s, size_t n) {
    char *p = jarena_alloc(a, n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

#define JINJA_MAX_DEPTH 200 /* nesting of expressions and blocks */

/* ---- lexer ---------------------------------------------------------------------------------- */

enum {
    T_EOF = 0, T_NAME, T_INT, T_FLOAT, T_STR, T_OP, /* T_OP: op holds the operator text */
};

typedef struct jtok {
    int         type;
    const char *p;   /* source span */
    size_t      n;
    char        op[3];
    int         line;
} jtok;

typedef struct jparser {
    awq_runtime *rt;
    jarena      *a;
    const char  *src;
    /* tag being parsed: [pos, end) */
    const char  *pos, *end;
    int          line;
    jtok         tok;     /* current token */
    bool         failed;
    awq_status   st;        /* the first error */
    int          depth;     /* nesting of expressions and blocks (bounded: no stack overflow) */
    const char  *tpos;    /* template position after the current tag */
    bool         trim_next; /* the next text loses leading whitespace ('-' close marker) */
    bool         trim_nl;   /* trim_blocks: the next text loses one leading newline */
} jparser;

static awq_status perr(jparser *p, awq_status st, const char *fmt, const char *what) {
    if (!p->failed)
        awq_set_error(p->rt, st, "chat_template: line %d: %s%s%s%s", p->line, fmt, what ? " '" : "",
                      what ? what : "", what ? "'" : "");
    p->failed = true;
    if (p->st == AWQ_OK) p->st = st;
    return st;
}

static int line_of(const jparser *p, const char *at) {
    int l = 1;
    for (const char *s = p->src; s < at; s++) l += *s == '\n';
    return l;
}

static void next_tok(jparser *p) {
    while (p->pos < p->end && (*p->pos == ' ' || *p->pos == '\t' || *p->pos == '\n' || *p->pos == '\r')) {
        if (*p->pos == '\n') p->line++;
        p->pos++;
    }
    jtok *t = &p->tok;
    memset(t, 0, sizeof *t);
    t->line = p->line;
    if (p->pos >= p->end) return;
    const char *s = p->pos;
    char c = *s;
    if (c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
        while (p->pos < p->end && (*p->pos == '_' || (*p->pos >= 'a' && *p->pos <= 'z') ||
                                   (*p->pos >= 'A' && *p->pos <= 'Z') || (*p->pos >= '0' && *p->pos <= '9')))
            p->pos++;
        t->type = T_NAME;
    } else if (c >= '0' && c <= '9') {
        t->type = T_INT;
        while (p->pos < p->end && ((*p->pos >= '0' && *p->pos <= '9') || *p->pos == '.' || *p->pos == '_')) {
            if (*p->pos == '.') {
                if (p->pos + 1 < p->end && !(p->pos[1] >= '0' && p->pos[1] <= '9')) break;
                t->type = T_FLOAT;
            }
            p->pos++;
        }
    } else if (c == '\'' || c == '"') {
        p->pos++;
        while (p->pos < p->end && *p->pos != c) {
            if (*p->pos == '\\' && p->pos + 1 < p->end) p->pos++;
            if (*p->pos == '\n') p->line++;
            p->pos++;
        }
        if (p->pos >= p->end) {
            perr(p, AWQ_ERR_FORMAT, "unterminated string", NULL);
            return;
        }
        p->pos++;
        t->type = T_STR;
    } else {
        static const char *const two[] = {"==", "!=", "<=", ">=", "//", "**", NULL};
        t->type = T_OP;
        for (int i = 0; two[i]; i++)
            if (p->pos + 1 < p->end && p->pos[0] == two[i][0] && p->pos[1] == two[i][1]) {
                memcpy(t->op, two[i], 2);
                p->pos += 2;
                break;
            }
        if (!t->op[0]) {
            if (!strchr("+-*/%~<>=.,:|()[]{}", c)) {
                char what[2] = {c, 0};
                perr(p, AWQ_ERR_FORMAT, "unexpected character", what);
                return;
            }
            t->op[0] = c;
            p->pos++;
        }
    }
    t->p = s;
    t->n = (size_t)(p->pos - s);
}

static bool is_op(const jparser *p, const char *op) { return p->tok.type == T_OP && !strcmp(p->tok.op, op); }
static bool is_name(const jparser *p, const char *n) {
    return p->tok.type == T_NAME && p->tok.n == strlen(n) && !memcmp(p->tok.p, n, p->tok.n);
}

static bool expect_op(jparser *p, const char *op) {
    if (!is_op(p, op)) {
        perr(p, AWQ_ERR_FORMAT, "expected", op);
        return false;
    }
    next_tok(p);
    return true;
}

static jnode *node(jparser *p, jnode_kind k) {
    jnode *n = jarena_alloc(p->a, sizeof *n);
    if (!n) {
        perr(p, AWQ_ERR_OUT_OF_MEMORY, "out of memory", NULL);
        return NULL;
    }
    n->kind = k;
    n->line = p->line;
    return n;
}

static char *tok_name(jparser *p) { return jarena_strndup(p->a, p->tok.p, p->tok.n); }

/* Decodes a string literal's escapes. */
static jv str_lit(jparser *p) {
    const char *s = p->tok.p + 1;
    size_t n = p->tok.n - 2;
    char *d = jarena_alloc(p->a, n + 1);
    size_t k = 0;
    for (size_t i = 0; d && i < n; i++) {
        char c = s[i];
        if (c == '\\' && i + 1 < n) {
            c = s[++i];
            switch (c) {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            case '0': c = '\0'; break;
            default: break; /* \\ \' \" and unknown escapes keep the character */
            }
        }
        d[k++] = c;
    }
    jv v = {.type = JV_STR};
    v.u.s.p = d ? d : "";
    v.u.s.n = k;
    return v;
}

/* ---- expressions ---------------------------------------------------------------------------- */

static jnode *parse_expr(jparser *p);
static jnode *parse_expr_inner(jparser *p);
static jnode *parse_or(jparser *p);

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
        if (is_op(p, ",")) next_tok(p);
        else break;
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
        if (p->tok.type == T_INT) n->lit = (jv){.type = JV_INT, .u.i = strtoll(buf, NULL, 10)};
        else n->lit = (jv){.type = JV_FLOAT, .u.f = strtod(buf, NULL)};
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
                if (is_op(p, ",")) next_tok(p);
                else break;
            }
            expect_op(p, dict ? "}" : "]");
            n->nargs = k;
            n->args = jarena_alloc(p->a, sizeof *n->args * (size_t)(k ? k : 1));
            if (n->args) memcpy(n->args, items, sizeof *items * (size_t)k);
            return n;
        }
        break;
    default:
        break;
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
                } else break;
            }
            expect_op(p, "]");
            jnode *m = node(p, slice ? JE_SLICE : JE_INDEX);
            m->a = n;
            if (slice) {
                m->args = jarena_alloc(p->a, sizeof *m->args * 3);
                if (m->args) memcpy(m->args, parts, sizeof parts);
                m->nargs = 3;
            } else m->b = parts[0];
            n = m;
        } else if (is_op(p, "(")) {
            jnode *m = node(p, JE_CALL);
            m->a = n;
            parse_args(p, m);
            n = m;
        } else break;
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
            if (is_op(p, "(")) parse_args(p, m);
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
        } else break;
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

/* operator codes */
enum { OP_ADD = 1, OP_SUB, OP_MUL, OP_DIV, OP_FLOORDIV, OP_MOD, OP_CAT, OP_EQ, OP_NE, OP_LT, OP_LE,
       OP_GT, OP_GE, OP_IN, OP_NOTIN };

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
        if (is_op(p, "==")) op = OP_EQ;
        else if (is_op(p, "!=")) op = OP_NE;
        else if (is_op(p, "<")) op = OP_LT;
        else if (is_op(p, "<=")) op = OP_LE;
        else if (is_op(p, ">")) op = OP_GT;
        else if (is_op(p, ">=")) op = OP_GE;
        else if (is_name(p, "in")) op = OP_IN;
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
        } else break;
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

static jnode *parse_or(jparser *p) {
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

static jnode *parse_expr(jparser *p) {
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
static const char *parse_body_inner(jparser *p, const char *const *ends, jnode **headp,
                                    jnode **tailp);

static jnode *append(jnode **head, jnode **tail, jnode *n) {
    if (!n) return NULL;
    if (*tail) (*tail)->next = n;
    else *head = n;
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
            if (*q == '\\' && q[1]) q++;
            else if (*q == quote) quote = 0;
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
            if (ts < text_end && *ts == '\n') ts++;
            else if (ts + 1 < text_end && ts[0] == '\r' && ts[1] == '\n') ts += 2;
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
            if (!p->failed && p->tok.type != T_EOF) perr(p, AWQ_ERR_FORMAT, "unexpected token in {{ }}", jarena_strndup(p->a, p->tok.p, p->tok.n));
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
