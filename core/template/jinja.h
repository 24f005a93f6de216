/*
 * jinja.h - the subset of Jinja2 that Hugging Face chat templates use, rendered the way
 * transformers renders them (trim_blocks and lstrip_blocks on, loop controls on).
 *
 * Supported: text, {{ }}, {% %}, {# #} with '-' / '+' whitespace control; if/elif/else, for
 * (one or two targets, `loop.*`, `else`, `if` filter), set (name, ns.attr, tuple unpacking
 * not supported), break/continue, generation blocks (rendered as their body); expressions with
 * literals, lists, dicts, attribute/item access, slices, calls, filters, tests, `not`/`and`/
 * `or`, comparisons, `in`/`not in`, `+ - * / // %`, `~`, and `x if c else y`.
 * Builtins: raise_exception, namespace, range, strftime_now; filters trim, length, count,
 * default/d, upper, lower, title, capitalize, tojson, first, last, join, list, reverse, items,
 * string, int, float, abs, replace, safe, select, reject, selectattr, rejectattr, map, unique;
 * tests defined, undefined, none, string, number,
 * integer, mapping, iterable, sequence, boolean, true, false, even, odd, in, eq/equalto;
 * string methods strip/lstrip/rstrip/split/startswith/endswith/upper/lower/title/replace,
 * dict methods items/keys/values/get.
 * Anything else is AWQ_ERR_UNSUPPORTED naming the construct and the template line.
 */
#ifndef AWQ_CORE_TOKENIZER_JINJA_H
#define AWQ_CORE_TOKENIZER_JINJA_H

#include "internal.h"

/* Resource limits of one render: a chat template comes from the model's files, i.e. from
 * anyone, and is code we run. Each limit ends the render with AWQ_ERR_INVALID_ARG and a message
 * naming it ("chat_template: line 3: more than 1000000 loop iterations (limit)"). A field <= 0
 * takes the default. */
typedef struct jinja_limits {
    int64_t max_loop_iterations; /* for-loop iterations of the whole render (default 1000000) */
    int32_t max_depth;           /* nesting of evaluation: expressions, blocks, loops (default 256) */
    int64_t max_output_bytes;    /* rendered text (default 16 MiB + 4 x the messages' bytes) */
    double max_seconds;          /* wall-clock time (default 5 s) */
    int64_t max_memory_bytes;    /* values built while rendering (default 256 MiB + 8 x the
                                    messages' bytes) */
} jinja_limits;

/* Variables besides `messages` and `add_generation_prompt`. */
typedef struct jinja_vars {
    const char *bos_token; /* NULL: undefined */
    const char *eos_token;
    const jinja_limits *limits; /* NULL: the defaults */
} jinja_vars;

/* Renders tmpl. Owned result: awq_free. */
awq_status awq_jinja_render_chat(awq_runtime *rt, const char *tmpl, const awq_chat_message *msgs,
                                 int32_t n_msgs, bool add_generation_prompt, const jinja_vars *vars,
                                 char **out);

/* ---- internals shared by jinja_*.c ---------------------------------------------------------- */

typedef struct jarena jarena;

typedef enum jtype {
    JV_UNDEF,
    JV_NONE,
    JV_BOOL,
    JV_INT,
    JV_FLOAT,
    JV_STR,
    JV_LIST,
    JV_DICT,
    JV_FUNC,
    JV_METHOD,
} jtype;

typedef struct jlist jlist;
typedef struct jdict jdict;

typedef struct jv {
    jtype type;
    union {
        bool b;
        int64_t i;
        double f;
        struct {
            const char *p;
            size_t n;
        } s;
        jlist *l;
        jdict *d;
        struct {
            const char *name;
            struct jv *self;
        } fn; /* builtin function or bound method */
    } u;
} jv;

struct jlist {
    jv *v;
    size_t n, cap;
};

struct jdict {
    jv *k; /* string keys */
    jv *v;
    size_t n, cap;
};

typedef enum jnode_kind {
    /* statements */
    JN_TEXT,
    JN_OUTPUT,
    JN_IF,
    JN_FOR,
    JN_SET,
    JN_BREAK,
    JN_CONTINUE,
    JN_BLOCK,
    /* expressions */
    JE_LIT,
    JE_NAME,
    JE_ATTR,
    JE_INDEX,
    JE_SLICE,
    JE_CALL,
    JE_FILTER,
    JE_TEST,
    JE_NOT,
    JE_NEG,
    JE_BIN,
    JE_AND,
    JE_OR,
    JE_COND,
    JE_LIST,
    JE_DICT,
} jnode_kind;

typedef struct jnode jnode;
struct jnode {
    jnode_kind kind;
    int line;
    int op;            /* JE_BIN: operator token; JE_TEST: negated */
    jv lit;            /* JE_LIT; JN_TEXT text */
    const char *name;  /* NUL-terminated, arena: names, attrs, filters, tests, set targets */
    const char *name2; /* JN_FOR second target / JN_SET attribute */
    jnode *a, *b, *c;
    jnode **args;    /* call / filter / test arguments, list items, dict key,value pairs */
    const char **kw; /* keyword names per arg (NULL for positional) */
    int nargs;
    jnode *body, *orelse; /* statement lists */
    jnode *next;
};

/* JE_BIN operators */
enum {
    OP_ADD = 1,
    OP_SUB,
    OP_MUL,
    OP_DIV,
    OP_FLOORDIV,
    OP_MOD,
    OP_CAT,
    OP_EQ,
    OP_NE,
    OP_LT,
    OP_LE,
    OP_GT,
    OP_GE,
    OP_IN,
    OP_NOTIN
};

struct jarena *jarena_new(void);
void jarena_free(jarena *a);
void *jarena_alloc(jarena *a, size_t n);
/* Caps the bytes the arena may hold (0 = no cap); jarena_alloc then returns NULL past it and
 * jarena_over_limit becomes true. */
void jarena_set_limit(jarena *a, size_t limit);
size_t jarena_bytes(const jarena *a); /* bytes held */
bool jarena_over_limit(const jarena *a);
char *jarena_strndup(jarena *a, const char *s, size_t n);

/* Parses a template into a statement list (allocated in the arena). */
awq_status jinja_parse(awq_runtime *rt, jarena *a, const char *tmpl, jnode **out);

#endif
