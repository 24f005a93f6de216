/*
 * jinja_eval.c - evaluating the template tree: scopes (a for loop body is a new scope, so `set`
 * inside a loop does not leak, as in Jinja2; namespace() objects are the way out), expressions,
 * statements, and the chat entry point.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "jinja_eval.h"


#define JINJA_MAX_STEPS 10000000

awq_status jerr(jctx *c, awq_status st, int line, const char *msg, const char *what) {
    if (!c->failed && st == AWQ_ERR_OUT_OF_MEMORY && jarena_over_limit(c->a)) {
        char m[128];
        snprintf(m, sizeof m, "values built by the template exceed %lld bytes (memory limit)",
                 (long long)c->lim.max_memory_bytes);
        awq_set_error(c->rt, AWQ_ERR_INVALID_ARG, "chat_template: line %d: %s", line ? line : c->line, m);
        c->failed = true;
        c->st = AWQ_ERR_INVALID_ARG;
        return c->st;
    }
    if (!c->failed) {
        awq_set_error(c->rt, st, "chat_template: line %d: %s%s%s%s", line ? line : c->line, msg,
                      what ? " '" : "", what ? what : "", what ? "'" : "");
        c->failed = true;
        c->st = st;
    }
    return st;
}

static jv undef(void) { return (jv){.type = JV_UNDEF}; }

static jv lookup(jctx *c, const char *name) {
    for (int i = c->n_scopes - 1; i >= 0; i--) {
        jv *v = jdict_get(c->scopes[i], name, strlen(name));
        if (v) return *v;
    }
    static const char *const funcs[] = {"raise_exception", "namespace", "range", "strftime_now", NULL};
    for (int i = 0; funcs[i]; i++)
        if (!strcmp(name, funcs[i])) return (jv){.type = JV_FUNC, .u.fn = {.name = funcs[i]}};
    return undef();
}

static jv eval(jctx *c, const jnode *n);

static jv index_value(jctx *c, const jnode *n, jv x, jv k) {
    if (x.type == JV_DICT) {
        if (k.type != JV_STR) return undef();
        jv *v = jdict_get(x.u.d, k.u.s.p, k.u.s.n);
        return v ? *v : undef();
    }
    if ((x.type == JV_LIST || x.type == JV_STR) && (k.type == JV_INT || k.type == JV_BOOL)) {
        int64_t len = x.type == JV_LIST ? (int64_t)x.u.l->n : (int64_t)x.u.s.n;
        int64_t i = k.type == JV_INT ? k.u.i : k.u.b;
        if (i < 0) i += len;
        if (i < 0 || i >= len) return undef();
        if (x.type == JV_LIST) return x.u.l->v[i];
        return jv_str(c, x.u.s.p + i, 1); /* byte indexing: templates index ASCII */
    }
    if (x.type == JV_UNDEF || x.type == JV_NONE) return undef();
    if (k.type == JV_STR) return jinja_getattr(c, x, jarena_strndup(c->a, k.u.s.p, k.u.s.n));
    jerr(c, AWQ_ERR_INVALID_ARG, n->line, "cannot index a value of type", jv_type_name(x));
    return undef();
}

static jv slice_value(jctx *c, const jnode *n, jv x) {
    int64_t len = x.type == JV_LIST ? (int64_t)x.u.l->n : x.type == JV_STR ? (int64_t)x.u.s.n : -1;
    if (len < 0) {
        jerr(c, AWQ_ERR_INVALID_ARG, n->line, "cannot slice a value of type", jv_type_name(x));
        return undef();
    }
    int64_t v[3];
    bool has[3];
    for (int i = 0; i < 3; i++) {
        has[i] = n->args[i] != NULL;
        jv e = has[i] ? eval(c, n->args[i]) : undef();
        if (e.type == JV_NONE || e.type == JV_UNDEF) has[i] = false;
        v[i] = has[i] ? jv_i64(e) : 0;
    }
    int64_t step = has[2] ? v[2] : 1;
    if (step == 0) {
        jerr(c, AWQ_ERR_INVALID_ARG, n->line, "slice step cannot be zero", NULL);
        return undef();
    }
    /* a step longer than the sequence takes one element: clamp it so i += step cannot overflow */
    if (step > len + 1) step = len + 1;
    if (step < -len - 1) step = -len - 1;
    int64_t start, stop;
    if (step > 0) {
        start = has[0] ? (v[0] < 0 ? v[0] + len : v[0]) : 0;
        stop = has[1] ? (v[1] < 0 ? v[1] + len : v[1]) : len;
        if (start < 0) start = 0;
        if (stop > len) stop = len;
    } else {
        start = has[0] ? (v[0] < 0 ? v[0] + len : v[0]) : len - 1;
        stop = has[1] ? (v[1] < 0 ? v[1] + len : v[1]) : -1;
        if (start > len - 1) start = len - 1;
        if (stop < -1) stop = -1;
    }
    if (x.type == JV_LIST) {
        jv r = jv_list(c);
        for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) jlist_push(c, r.u.l, x.u.l->v[i]);
        return r;
    }
    tok_buf b = {0};
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) tok_buf_putc(&b, x.u.s.p[i]);
    jv r = jv_str(c, b.p ? b.p : "", b.n);
    tok_buf_free(&b);
    return r;
}

static jv concat(jctx *c, jv a, jv b) {
    a = jv_to_str(c, a);
    b = jv_to_str(c, b);
    char *p = jarena_alloc(c->a, a.u.s.n + b.u.s.n + 1);
    if (!p) {
        jerr(c, AWQ_ERR_OUT_OF_MEMORY, 0, "out of memory", NULL);
        return undef();
    }
    memcpy(p, a.u.s.p, a.u.s.n);
    memcpy(p + a.u.s.n, b.u.s.p, b.u.s.n);
    jv r = {.type = JV_STR};
    r.u.s.p = p;
    r.u.s.n = a.u.s.n + b.u.s.n;
    return r;
}

static bool contains(jv hay, jv x) {
    if (hay.type == JV_STR && x.type == JV_STR) {
        if (x.u.s.n == 0) return true;
        for (size_t i = 0; i + x.u.s.n <= hay.u.s.n; i++)
            if (!memcmp(hay.u.s.p + i, x.u.s.p, x.u.s.n)) return true;
        return false;
    }
    if (hay.type == JV_LIST) {
        for (size_t i = 0; i < hay.u.l->n; i++)
            if (jv_eq(hay.u.l->v[i], x)) return true;
        return false;
    }
    if (hay.type == JV_DICT) return x.type == JV_STR && jdict_get(hay.u.d, x.u.s.p, x.u.s.n);
    return false;
}

static jv binary(jctx *c, const jnode *n, jv a, jv b) {
    bool ok = true;
    switch (n->op) {
    case OP_EQ: return (jv){.type = JV_BOOL, .u.b = jv_eq(a, b)};
    case OP_NE: return (jv){.type = JV_BOOL, .u.b = !jv_eq(a, b)};
    case OP_LT:
    case OP_LE:
    case OP_GT:
    case OP_GE: {
        int r = jv_cmp(a, b, &ok);
        if (!ok) break;
        bool v = n->op == OP_LT ? r < 0 : n->op == OP_LE ? r <= 0 : n->op == OP_GT ? r > 0 : r >= 0;
        return (jv){.type = JV_BOOL, .u.b = v};
    }
    case OP_IN: return (jv){.type = JV_BOOL, .u.b = contains(b, a)};
    case OP_NOTIN: return (jv){.type = JV_BOOL, .u.b = !contains(b, a)};
    case OP_CAT: return concat(c, a, b);
    case OP_ADD:
        if (a.type == JV_STR && b.type == JV_STR) return concat(c, a, b);
        if (a.type == JV_LIST && b.type == JV_LIST) {
            jv r = jv_list(c);
            for (size_t i = 0; i < a.u.l->n; i++) jlist_push(c, r.u.l, a.u.l->v[i]);
            for (size_t i = 0; i < b.u.l->n; i++) jlist_push(c, r.u.l, b.u.l->v[i]);
            return r;
        }
        __attribute__((fallthrough)); /* numbers: arithmetic below */
    case OP_SUB:
    case OP_MUL:
    case OP_DIV:
    case OP_FLOORDIV:
    case OP_MOD: {
        bool na = a.type == JV_INT || a.type == JV_FLOAT || a.type == JV_BOOL;
        bool nb = b.type == JV_INT || b.type == JV_FLOAT || b.type == JV_BOOL;
        if (!na || !nb) break;
        bool ints = a.type != JV_FLOAT && b.type != JV_FLOAT;
        double x = jv_num(a), y = jv_num(b);
        if ((n->op == OP_DIV || n->op == OP_FLOORDIV || n->op == OP_MOD) && y == 0) {
            jerr(c, AWQ_ERR_INVALID_ARG, n->line, "division by zero", NULL);
            return undef();
        }
        if (ints && n->op != OP_DIV) {
            /* exact int64 arithmetic; a result past int64 (Python would grow the integer)
             * falls through to floating point */
            int64_t i = jv_i64(a), j = jv_i64(b), r = 0;
            bool ovf = false;
            switch (n->op) {
            case OP_ADD: ovf = __builtin_add_overflow(i, j, &r); break;
            case OP_SUB: ovf = __builtin_sub_overflow(i, j, &r); break;
            case OP_MUL: ovf = __builtin_mul_overflow(i, j, &r); break;
            case OP_FLOORDIV:
                ovf = i == INT64_MIN && j == -1;
                if (!ovf) r = i / j - ((i % j != 0) && ((i < 0) != (j < 0)));
                break;
            default:
                if (j == -1)
                    r = 0;
                else
                    r = i % j, r = r != 0 && ((r < 0) != (j < 0)) ? r + j : r;
                break;
            }
            if (!ovf) return (jv){.type = JV_INT, .u.i = r};
        }
        double r = n->op == OP_ADD ? x + y
            : n->op == OP_SUB      ? x - y
            : n->op == OP_MUL      ? x * y
            : n->op == OP_DIV      ? x / y
            : n->op == OP_FLOORDIV ? floor(x / y)
                                   : x - y * floor(x / y);
        return (jv){.type = JV_FLOAT, .u.f = r};
    }
    }
    char what[64];
    snprintf(what, sizeof what, "%s and %s", jv_type_name(a), jv_type_name(b));
    jerr(c, AWQ_ERR_INVALID_ARG, n->line, "unsupported operand types:", what);
    return undef();
}

static int eval_args(jctx *c, const jnode *n, jv *out) {
    for (int i = 0; i < n->nargs && i < 32; i++) out[i] = n->args[i] ? eval(c, n->args[i]) : undef();
    return n->nargs < 32 ? n->nargs : 32;
}

static double mono_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Step, time and depth accounting shared by eval and exec_list; false once a limit is hit. */
static bool enter(jctx *c, int line) {
    if (c->failed) return false;
    char m[128];
    if (++c->steps > JINJA_MAX_STEPS) {
        jerr(c, AWQ_ERR_INVALID_ARG, line, "template too expensive (step limit)", NULL);
        return false;
    }
    if ((c->steps & 255) == 0 && mono_now() > c->deadline) {
        snprintf(m, sizeof m, "rendering took longer than %g s (time limit)", c->lim.max_seconds);
        jerr(c, AWQ_ERR_INVALID_ARG, line, m, NULL);
        return false;
    }
    if (++c->depth > c->lim.max_depth) {
        snprintf(m, sizeof m, "nested deeper than %d levels (depth limit)", (int)c->lim.max_depth);
        jerr(c, AWQ_ERR_INVALID_ARG, line, m, NULL);
        c->depth--;
        return false;
    }
    return true;
}

static jv eval_node(jctx *c, const jnode *n);

static jv eval(jctx *c, const jnode *n) {
    if (c->failed || !n || !enter(c, n->line)) return undef();
    jv r = eval_node(c, n);
    c->depth--;
    return r;
}

static jv eval_node(jctx *c, const jnode *n) {
    c->line = n->line;
    jv args[32];
    switch (n->kind) {
    case JE_LIT: return n->lit;
    case JE_NAME: return lookup(c, n->name);
    case JE_ATTR: return jinja_getattr(c, eval(c, n->a), n->name);
    case JE_INDEX: {
        jv x = eval(c, n->a);
        return index_value(c, n, x, eval(c, n->b));
    }
    case JE_SLICE: return slice_value(c, n, eval(c, n->a));
    case JE_CALL: {
        jv fn = eval(c, n->a);
        int na = eval_args(c, n, args);
        return jinja_call(c, n, fn, args, n->kw, na);
    }
    case JE_FILTER: {
        jv x = eval(c, n->a);
        int na = eval_args(c, n, args);
        return jinja_filter(c, n, x, args, n->kw, na);
    }
    case JE_TEST: {
        jv x = eval(c, n->a);
        int na = eval_args(c, n, args);
        bool r = jinja_test(c, n, x, args, na);
        return (jv){.type = JV_BOOL, .u.b = n->op ? !r : r};
    }
    case JE_NOT: return (jv){.type = JV_BOOL, .u.b = !jv_truthy(eval(c, n->a))};
    case JE_NEG: {
        jv x = eval(c, n->a);
        if (x.type == JV_INT && x.u.i != INT64_MIN) return (jv){.type = JV_INT, .u.i = -x.u.i};
        if (x.type == JV_INT) return (jv){.type = JV_FLOAT, .u.f = 9223372036854775808.0};
        if (x.type == JV_FLOAT) return (jv){.type = JV_FLOAT, .u.f = -x.u.f};
        jerr(c, AWQ_ERR_INVALID_ARG, n->line, "cannot negate", jv_type_name(x));
        return undef();
    }
    case JE_AND: {
        jv a = eval(c, n->a);
        return jv_truthy(a) ? eval(c, n->b) : a;
    }
    case JE_OR: {
        jv a = eval(c, n->a);
        return jv_truthy(a) ? a : eval(c, n->b);
    }
    case JE_COND: return jv_truthy(eval(c, n->b)) ? eval(c, n->a) : (n->c ? eval(c, n->c) : undef());
    case JE_BIN: {
        jv a = eval(c, n->a);
        jv b = eval(c, n->b);
        return binary(c, n, a, b);
    }
    case JE_LIST: {
        jv l = jv_list(c);
        for (int i = 0; i < n->nargs && !c->failed; i++) jlist_push(c, l.u.l, eval(c, n->args[i]));
        return l;
    }
    case JE_DICT: {
        jv d = jv_dict(c);
        for (int i = 0; i + 1 < n->nargs && !c->failed; i += 2) {
            jv k = jv_to_str(c, eval(c, n->args[i]));
            jdict_set(c, d.u.d, k.u.s.p, k.u.s.n, eval(c, n->args[i + 1]));
        }
        return d;
    }
    default: jerr(c, AWQ_ERR_INVALID_ARG, n->line, "not an expression", NULL); return undef();
    }
}

/* ---- statements ----------------------------------------------------------------------------- */

static void exec_list(jctx *c, const jnode *n);

static bool push_scope(jctx *c) {
    if (c->n_scopes >= JINJA_MAX_SCOPES) {
        jerr(c, AWQ_ERR_INVALID_ARG, 0, "loops nested too deeply", NULL);
        return false;
    }
    jv d = jv_dict(c);
    if (c->failed) return false;
    c->scopes[c->n_scopes++] = d.u.d;
    return true;
}

static void exec_for(jctx *c, const jnode *n) {
    jv seq = eval(c, n->a);
    if (c->failed) return;
    jv items = seq.type == JV_LIST ? seq : jv_list(c); /* a list is iterated in place */
    if (c->failed) return;
    if (seq.type == JV_LIST) {
    } else if (seq.type == JV_DICT) { /* iterating a dict yields its keys */
        for (size_t i = 0; i < seq.u.d->n; i++) jlist_push(c, items.u.l, seq.u.d->k[i]);
    } else if (seq.type == JV_STR) {
        for (size_t i = 0; i < seq.u.s.n; i++) jlist_push(c, items.u.l, jv_str(c, seq.u.s.p + i, 1));
    } else if (seq.type != JV_UNDEF && seq.type != JV_NONE) {
        jerr(c, AWQ_ERR_INVALID_ARG, n->line, "cannot iterate over", jv_type_name(seq));
        return;
    }
    if (!push_scope(c)) return;
    jdict *scope = c->scopes[c->n_scopes - 1];
    /* the loop filter (`for x in y if cond`) runs before loop.* are known */
    if (n->b) {
        jv kept = jv_list(c);
        for (size_t i = 0; i < items.u.l->n && !c->failed; i++) {
            jdict_set(c, scope, n->name, strlen(n->name), items.u.l->v[i]);
            if (jv_truthy(eval(c, n->b))) jlist_push(c, kept.u.l, items.u.l->v[i]);
        }
        items = kept;
    }
    size_t len = items.u.l->n;
    /* one loop object per loop, updated in place each iteration (as Jinja2's LoopContext) */
    jv loop = jv_dict(c);
    for (size_t i = 0; i < len && !c->failed; i++) {
        if (++c->iterations > c->lim.max_loop_iterations) {
            char m[128];
            snprintf(m, sizeof m, "more than %lld loop iterations (limit)",
                     (long long)c->lim.max_loop_iterations);
            jerr(c, AWQ_ERR_INVALID_ARG, n->line, m, NULL);
            break;
        }
        scope->n = 0; /* a fresh scope per iteration */
        jv it = items.u.l->v[i];
        if (n->name2) { /* for a, b in pairs */
            if (it.type != JV_LIST || it.u.l->n != 2) {
                jerr(c, AWQ_ERR_INVALID_ARG, n->line, "cannot unpack into two loop variables", NULL);
                break;
            }
            jdict_set(c, scope, n->name, strlen(n->name), it.u.l->v[0]);
            jdict_set(c, scope, n->name2, strlen(n->name2), it.u.l->v[1]);
        } else {
            jdict_set(c, scope, n->name, strlen(n->name), it);
        }
        if (c->failed) break;
        jv t = {.type = JV_BOOL};
        jdict_set(c, loop.u.d, "index", 5, (jv){.type = JV_INT, .u.i = (int64_t)i + 1});
        jdict_set(c, loop.u.d, "index0", 6, (jv){.type = JV_INT, .u.i = (int64_t)i});
        jdict_set(c, loop.u.d, "revindex", 8, (jv){.type = JV_INT, .u.i = (int64_t)(len - i)});
        jdict_set(c, loop.u.d, "revindex0", 9, (jv){.type = JV_INT, .u.i = (int64_t)(len - i - 1)});
        jdict_set(c, loop.u.d, "length", 6, (jv){.type = JV_INT, .u.i = (int64_t)len});
        t.u.b = i == 0;
        jdict_set(c, loop.u.d, "first", 5, t);
        t.u.b = i + 1 == len;
        jdict_set(c, loop.u.d, "last", 4, t);
        jdict_set(c, loop.u.d, "previtem", 8, i > 0 ? items.u.l->v[i - 1] : undef());
        jdict_set(c, loop.u.d, "nextitem", 8, i + 1 < len ? items.u.l->v[i + 1] : undef());
        jdict_set(c, scope, "loop", 4, loop);
        exec_list(c, n->body);
        if (c->brk == 1) {
            c->brk = 0;
            break;
        }
        c->brk = 0;
    }
    c->n_scopes--;
    if (len == 0 && n->orelse && !c->failed) exec_list(c, n->orelse);
}

static void exec_set(jctx *c, const jnode *n) {
    jv v;
    if (n->a)
        v = eval(c, n->a);
    else { /* block set: render the body into a string */
        tok_buf saved = c->out;
        c->out = (tok_buf){0};
        exec_list(c, n->body);
        v = jv_str(c, c->out.p ? c->out.p : "", c->out.n);
        tok_buf_free(&c->out);
        c->out = saved;
    }
    if (c->failed) return;
    if (n->name2) { /* ns.attr = v: only namespace objects (dicts) accept attributes */
        jv obj = lookup(c, n->name);
        if (obj.type != JV_DICT) {
            jerr(c, AWQ_ERR_INVALID_ARG, n->line, "cannot set an attribute on", jv_type_name(obj));
            return;
        }
        jdict_set(c, obj.u.d, n->name2, strlen(n->name2), v);
        return;
    }
    jdict_set(c, c->scopes[c->n_scopes - 1], n->name, strlen(n->name), v);
}

static void check_output(jctx *c, int line) {
    if ((int64_t)c->out.n > c->lim.max_output_bytes) {
        char m[128];
        snprintf(m, sizeof m, "output longer than %lld bytes (limit)", (long long)c->lim.max_output_bytes);
        jerr(c, AWQ_ERR_INVALID_ARG, line, m, NULL);
    }
}

static void exec_list(jctx *c, const jnode *n) {
    if (!n || !enter(c, n->line)) return;
    for (; n && !c->failed && !c->brk; n = n->next) {
        c->line = n->line;
        switch (n->kind) {
        case JN_TEXT:
            if (!tok_buf_append(&c->out, n->lit.u.s.p, n->lit.u.s.n))
                jerr(c, AWQ_ERR_OUT_OF_MEMORY, n->line, "out of memory", NULL);
            check_output(c, n->line);
            break;
        case JN_OUTPUT: {
            jv v = eval(c, n->a);
            if (c->failed) break;
            jv_render(&c->out, v);
            check_output(c, n->line);
            break;
        }
        case JN_IF: {
            /* an elif is a JN_IF with op = 1 as the orelse of the previous branch */
            const jnode *b = n;
            for (;;) {
                if (jv_truthy(eval(c, b->a))) {
                    exec_list(c, b->body);
                    break;
                }
                if (b->orelse && b->orelse->kind == JN_IF && b->orelse->op == 1) {
                    b = b->orelse;
                    continue;
                }
                exec_list(c, b->orelse);
                break;
            }
            break;
        }
        case JN_FOR: exec_for(c, n); break;
        case JN_SET: exec_set(c, n); break;
        case JN_BREAK: c->brk = 1; break;
        case JN_CONTINUE: c->brk = 2; break;
        case JN_BLOCK: exec_list(c, n->body); break;
        default: jerr(c, AWQ_ERR_INVALID_ARG, n->line, "not a statement", NULL); break;
        }
    }
    c->depth--;
}

awq_status awq_jinja_render_chat(awq_runtime *rt, const char *tmpl, const awq_chat_message *msgs,
                                 int32_t n_msgs, bool add_generation_prompt, const jinja_vars *vars,
                                 char **out) {
    if (!tmpl || !out || (n_msgs > 0 && !msgs) || n_msgs < 0)
        return awq_set_error(rt, AWQ_ERR_INVALID_ARG, "chat_template: bad arguments");
    *out = NULL;
    jctx c = {.rt = rt, .a = jarena_new()};
    if (!c.a) return awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "chat_template");
    int64_t msg_bytes = 0;
    for (int32_t i = 0; i < n_msgs; i++)
        msg_bytes += (int64_t)(msgs[i].role ? strlen(msgs[i].role) : 0) +
            (int64_t)(msgs[i].content ? strlen(msgs[i].content) : 0);
    jinja_limits lim = vars && vars->limits ? *vars->limits : (jinja_limits){0};
    if (lim.max_loop_iterations <= 0) lim.max_loop_iterations = 1000000;
    if (lim.max_depth <= 0) lim.max_depth = 256;
    if (lim.max_output_bytes <= 0) lim.max_output_bytes = ((int64_t)16 << 20) + 4 * msg_bytes;
    if (!(lim.max_seconds > 0)) lim.max_seconds = 5.0;
    if (lim.max_memory_bytes <= 0) lim.max_memory_bytes = ((int64_t)256 << 20) + 8 * msg_bytes;
    c.lim = lim;
    c.deadline = mono_now() + lim.max_seconds;
    jnode *root = NULL;
    awq_status st = jinja_parse(rt, c.a, tmpl, &root);
    /* the parsed template is not counted against the memory limit */
    jarena_set_limit(c.a, (size_t)lim.max_memory_bytes + jarena_bytes(c.a));
    if (st != AWQ_OK) {
        jarena_free(c.a);
        return st;
    }
    push_scope(&c);
    jdict *g = c.scopes[0];
    jv list = jv_list(&c);
    for (int32_t i = 0; i < n_msgs && !c.failed; i++) {
        jv m = jv_dict(&c);
        jdict_set(&c, m.u.d, "role", 4, jv_cstr(&c, msgs[i].role ? msgs[i].role : ""));
        jdict_set(&c, m.u.d, "content", 7, jv_cstr(&c, msgs[i].content ? msgs[i].content : ""));
        jlist_push(&c, list.u.l, m);
    }
    jdict_set(&c, g, "messages", 8, list);
    jdict_set(&c, g, "add_generation_prompt", 21, (jv){.type = JV_BOOL, .u.b = add_generation_prompt});
    if (vars && vars->bos_token) jdict_set(&c, g, "bos_token", 9, jv_cstr(&c, vars->bos_token));
    if (vars && vars->eos_token) jdict_set(&c, g, "eos_token", 9, jv_cstr(&c, vars->eos_token));
    exec_list(&c, root);
    if (c.failed)
        st = c.st;
    else if (!(*out = awq_strndup(c.out.p ? c.out.p : "", c.out.n)))
        st = awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "chat_template");
    tok_buf_free(&c.out);
    jarena_free(c.a);
    return st;
}
