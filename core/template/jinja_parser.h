/* jinja_parser.h - the template parser's state, shared by jinja_lex.c (tokens), jinja_expr.c
 * (expressions) and jinja_parse.c (statements). */
#ifndef AWQ_CORE_TOKENIZER_JINJA_PARSER_H
#define AWQ_CORE_TOKENIZER_JINJA_PARSER_H

#include "jinja.h"

#define JINJA_MAX_DEPTH 200 /* nesting of expressions and blocks */

/* ---- lexer ---------------------------------------------------------------------------------- */

enum {
    T_EOF = 0,
    T_NAME,
    T_INT,
    T_FLOAT,
    T_STR,
    T_OP, /* T_OP: op holds the operator text */
};

typedef struct jtok {
    int type;
    const char *p; /* source span */
    size_t n;
    char op[3];
    int line;
} jtok;

typedef struct jparser {
    awq_runtime *rt;
    jarena *a;
    const char *src;
    /* tag being parsed: [pos, end) */
    const char *pos, *end;
    int line;
    jtok tok; /* current token */
    bool failed;
    awq_status st;    /* the first error */
    int depth;        /* nesting of expressions and blocks (bounded: no stack overflow) */
    const char *tpos; /* template position after the current tag */
    bool trim_next;   /* the next text loses leading whitespace ('-' close marker) */
    bool trim_nl;     /* trim_blocks: the next text loses one leading newline */
} jparser;


awq_status perr(jparser *p, awq_status st, const char *fmt, const char *what);
int line_of(const jparser *p, const char *at);
void next_tok(jparser *p);
bool is_op(const jparser *p, const char *op);
bool is_name(const jparser *p, const char *n);
bool expect_op(jparser *p, const char *op);
jnode *node(jparser *p, jnode_kind k);
char *tok_name(jparser *p);
jv str_lit(jparser *p);

/* jinja_expr.c */
jnode *parse_expr(jparser *p);
jnode *parse_or(jparser *p); /* an expression without a trailing `if` (for loops) */

#endif
