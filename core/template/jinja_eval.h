/* jinja_eval.h - the evaluator's context and value helpers, shared by jinja_*.c. */
#ifndef AWQ_CORE_TOKENIZER_JINJA_EVAL_H
#define AWQ_CORE_TOKENIZER_JINJA_EVAL_H

#include "jinja.h"
#include "tok_internal.h"

#define JINJA_MAX_SCOPES 64

typedef struct jctx {
    awq_runtime *rt;
    jarena *a;
    tok_buf out;
    jdict *scopes[JINJA_MAX_SCOPES];
    int n_scopes;
    bool failed;
    awq_status st;
    int brk;            /* 1 break, 2 continue pending */
    int line;           /* line of the node being evaluated */
    int64_t steps;      /* guard against runaway templates */
    jinja_limits lim;   /* resolved limits (jinja.h) */
    int64_t iterations; /* for-loop iterations so far */
    int32_t depth;      /* current nesting of eval/exec */
    double deadline;    /* monotonic seconds */
} jctx;

/* Records the first error ("chat_template: line N: msg 'what'") and returns st. */
awq_status jerr(jctx *c, awq_status st, int line, const char *msg, const char *what);

jv jv_str(jctx *c, const char *s, size_t n);
jv jv_cstr(jctx *c, const char *s);
jv jv_list(jctx *c);
jv jv_dict(jctx *c);
void jlist_push(jctx *c, jlist *l, jv x);
jv *jdict_get(const jdict *d, const char *k, size_t n);
void jdict_set(jctx *c, jdict *d, const char *k, size_t n, jv v);
bool jv_truthy(jv v);
double jv_num(jv v);
int64_t jv_i64(jv v); /* integer value: ints as they are, floats truncated and saturated */
bool jv_eq(jv a, jv b);
int jv_cmp(jv a, jv b, bool *ok);
void jv_render(tok_buf *o, jv v);
jv jv_to_str(jctx *c, jv v);
jv jv_tojson(jctx *c, jv v, int indent);
const char *jv_type_name(jv v);

/* jinja_builtins.c: filters, tests, methods and global functions. args are evaluated. */
jv jinja_filter(jctx *c, const jnode *n, jv x, const jv *args, const char *const *kw, int nargs);
bool jinja_test(jctx *c, const jnode *n, jv x, const jv *args, int nargs);
jv jinja_call(jctx *c, const jnode *n, jv fn, const jv *args, const char *const *kw, int nargs);
/* Attribute access x.name (dict item, string/dict method, loop fields are plain dict items). */
jv jinja_getattr(jctx *c, jv x, const char *name);

#endif
