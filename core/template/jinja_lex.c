/* jinja_lex.c - the arena that holds a parsed template, and the tokenizer of tag contents. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja_parser.h"

/* ---- arena ---------------------------------------------------------------------------------- */

typedef struct jblock {
    struct jblock *next;
    size_t used, cap;
    char data[];
} jblock;

struct jarena {
    jblock *head;
    size_t total, limit; /* bytes held by the blocks; cap (0 = none) */
    bool over;           /* an allocation was refused by the cap */
};

void jarena_set_limit(jarena *a, size_t limit) { a->limit = limit; }
bool jarena_over_limit(const jarena *a) { return a->over; }
size_t jarena_bytes(const jarena *a) { return a->total; }

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
    if (n > ((size_t)1 << 40)) return NULL; /* no single value is that large; keeps sizes safe */
    n = (n + 15) & ~(size_t)15;
    if (!a->head || a->head->cap - a->head->used < n) {
        size_t cap = n > (1u << 16) ? n : (1u << 16);
        if (a->limit && (a->total + cap > a->limit || a->total + cap < a->total)) {
            a->over = true;
            return NULL;
        }
        jblock *b = awq_malloc(sizeof *b + cap);
        if (!b) return NULL;
        a->total += cap;
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
    if (n) memcpy(p, s, n); /* s may be NULL when n == 0 (an empty buffer) */
    p[n] = '\0';
    return p;
}

/* ---- lexer ---------------------------------------------------------------------------------- */

awq_status perr(jparser *p, awq_status st, const char *fmt, const char *what) {
    if (!p->failed)
        awq_set_error(p->rt, st, "chat_template: line %d: %s%s%s%s", p->line, fmt, what ? " '" : "",
                      what ? what : "", what ? "'" : "");
    p->failed = true;
    if (p->st == AWQ_OK) p->st = st;
    return st;
}

int line_of(const jparser *p, const char *at) {
    int l = 1;
    for (const char *s = p->src; s < at; s++) l += *s == '\n';
    return l;
}

void next_tok(jparser *p) {
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
        while (p->pos < p->end &&
               (*p->pos == '_' || (*p->pos >= 'a' && *p->pos <= 'z') || (*p->pos >= 'A' && *p->pos <= 'Z') ||
                (*p->pos >= '0' && *p->pos <= '9')))
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

bool is_op(const jparser *p, const char *op) { return p->tok.type == T_OP && !strcmp(p->tok.op, op); }
bool is_name(const jparser *p, const char *n) {
    return p->tok.type == T_NAME && p->tok.n == strlen(n) && !memcmp(p->tok.p, n, p->tok.n);
}

bool expect_op(jparser *p, const char *op) {
    if (!is_op(p, op)) {
        perr(p, AWQ_ERR_FORMAT, "expected", op);
        return false;
    }
    next_tok(p);
    return true;
}

jnode *node(jparser *p, jnode_kind k) {
    jnode *n = jarena_alloc(p->a, sizeof *n);
    if (!n) {
        perr(p, AWQ_ERR_OUT_OF_MEMORY, "out of memory", NULL);
        return NULL;
    }
    n->kind = k;
    n->line = p->line;
    return n;
}

char *tok_name(jparser *p) { return jarena_strndup(p->a, p->tok.p, p->tok.n); }

/* Decodes a string literal's escapes. */
jv str_lit(jparser *p) {
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
