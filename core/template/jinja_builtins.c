/* jinja_builtins.c - filters, tests, global functions and the str/dict methods chat templates
 * call. Text case functions (upper/lower/title/capitalize) act on ASCII letters only. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "jinja_eval.h"

static jv undef(void) { return (jv){.type = JV_UNDEF}; }
static jv jbool(bool b) { return (jv){.type = JV_BOOL, .u.b = b}; }
static jv jint(int64_t i) { return (jv){.type = JV_INT, .u.i = i}; }

static bool is_space(char ch) {
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f';
}

static bool in_chars(char ch, const jv *chars) {
    if (!chars) return is_space(ch);
    return memchr(chars->u.s.p, ch, chars->u.s.n) != NULL;
}

/* Python str.strip/lstrip/rstrip([chars]). */
static jv strip(jctx *c, jv s, bool left, bool right, const jv *chars) {
    size_t a = 0, b = s.u.s.n;
    while (left && a < b && in_chars(s.u.s.p[a], chars)) a++;
    while (right && b > a && in_chars(s.u.s.p[b - 1], chars)) b--;
    return jv_str(c, s.u.s.p + a, b - a);
}

static jv map_case(jctx *c, jv s, int mode) { /* 0 upper, 1 lower, 2 title, 3 capitalize */
    jv r = jv_str(c, s.u.s.p, s.u.s.n);
    char *p = (char *)r.u.s.p;
    bool start = true;
    for (size_t i = 0; i < r.u.s.n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (mode == 0)
            p[i] = (char)toupper(ch);
        else if (mode == 1)
            p[i] = (char)tolower(ch);
        else if (mode == 2) {
            p[i] = (char)(start ? toupper(ch) : tolower(ch));
            start = !isalpha(ch);
        } else
            p[i] = (char)(i == 0 ? toupper(ch) : tolower(ch));
    }
    return r;
}

static jv split(jctx *c, jv s, const jv *sep, int64_t maxsplit) {
    jv l = jv_list(c);
    const char *p = s.u.s.p, *e = p + s.u.s.n;
    if (!sep) { /* runs of whitespace, no empty strings */
        while (p < e) {
            while (p < e && is_space(*p)) p++;
            if (p >= e) break;
            const char *q = p;
            if (maxsplit >= 0 && (int64_t)l.u.l->n == maxsplit)
                q = e;
            else
                while (q < e && !is_space(*q)) q++;
            jlist_push(c, l.u.l, jv_str(c, p, (size_t)(q - p)));
            p = q;
        }
        return l;
    }
    size_t n = sep->u.s.n;
    if (n == 0) {
        jerr(c, AWQ_ERR_INVALID_ARG, 0, "split: empty separator", NULL);
        return l;
    }
    for (;;) {
        const char *q = NULL;
        if (maxsplit < 0 || (int64_t)l.u.l->n < maxsplit)
            for (const char *t = p; t + n <= e; t++)
                if (!memcmp(t, sep->u.s.p, n)) {
                    q = t;
                    break;
                }
        if (!q) {
            jlist_push(c, l.u.l, jv_str(c, p, (size_t)(e - p)));
            return l;
        }
        jlist_push(c, l.u.l, jv_str(c, p, (size_t)(q - p)));
        p = q + n;
    }
}

static jv replace(jctx *c, jv s, jv a, jv b) {
    tok_buf o = {0};
    size_t i = 0;
    while (i < s.u.s.n) {
        if (a.u.s.n && i + a.u.s.n <= s.u.s.n && !memcmp(s.u.s.p + i, a.u.s.p, a.u.s.n)) {
            tok_buf_append(&o, b.u.s.p, b.u.s.n);
            i += a.u.s.n;
        } else
            tok_buf_putc(&o, s.u.s.p[i++]);
    }
    jv r = jv_str(c, o.p ? o.p : "", o.n);
    tok_buf_free(&o);
    return r;
}

static bool need(jctx *c, const jnode *n, int nargs, int min, int max, const char *what) {
    if (nargs < min || nargs > max) {
        jerr(c, AWQ_ERR_INVALID_ARG, n->line, "wrong number of arguments to", what);
        return false;
    }
    return true;
}

static bool need_str(jctx *c, const jnode *n, jv v, const char *what) {
    if (v.type != JV_STR) {
        jerr(c, AWQ_ERR_INVALID_ARG, n->line, "expected a string for", what);
        return false;
    }
    return true;
}

static int64_t length(jv x) {
    switch (x.type) {
    case JV_STR: { /* characters, not bytes */
        int64_t k = 0;
        for (size_t i = 0; i < x.u.s.n; i++) k += ((unsigned char)x.u.s.p[i] & 0xC0) != 0x80;
        return k;
    }
    case JV_LIST: return (int64_t)x.u.l->n;
    case JV_DICT: return (int64_t)x.u.d->n;
    default: return 0;
    }
}

static jv to_list(jctx *c, jv x) {
    if (x.type == JV_LIST) return x;
    jv l = jv_list(c);
    if (x.type == JV_DICT)
        for (size_t i = 0; i < x.u.d->n; i++) jlist_push(c, l.u.l, x.u.d->k[i]);
    else if (x.type == JV_STR)
        for (size_t i = 0; i < x.u.s.n; i++) jlist_push(c, l.u.l, jv_str(c, x.u.s.p + i, 1));
    return l;
}

static jv items(jctx *c, jv x) {
    jv l = jv_list(c);
    if (x.type != JV_DICT) return l;
    for (size_t i = 0; i < x.u.d->n; i++) {
        jv pair = jv_list(c);
        jlist_push(c, pair.u.l, x.u.d->k[i]);
        jlist_push(c, pair.u.l, x.u.d->v[i]);
        jlist_push(c, l.u.l, pair);
    }
    return l;
}

static const jv *kwarg(const char *const *kw, const jv *args, int nargs, const char *name) {
    for (int i = 0; kw && i < nargs; i++)
        if (kw[i] && !strcmp(kw[i], name)) return &args[i];
    return NULL;
}

jv jinja_filter(jctx *c, const jnode *n, jv x, const jv *args, const char *const *kw, int nargs) {
    const char *f = n->name;
    if (!strcmp(f, "trim")) {
        if (!need(c, n, nargs, 0, 1, f)) return undef();
        jv s = jv_to_str(c, x);
        return strip(c, s, true, true, nargs && args[0].type == JV_STR ? &args[0] : NULL);
    }
    if (!strcmp(f, "length") || !strcmp(f, "count")) return jint(length(x));
    if (!strcmp(f, "default") || !strcmp(f, "d")) {
        if (!need(c, n, nargs, 0, 2, f)) return undef();
        bool boolean = nargs > 1 && jv_truthy(args[1]);
        const jv *b = kwarg(kw, args, nargs, "boolean");
        if (b) boolean = jv_truthy(*b);
        bool use = x.type == JV_UNDEF || (boolean && !jv_truthy(x));
        return use ? (nargs ? args[0] : jv_cstr(c, "")) : x;
    }
    if (!strcmp(f, "upper") || !strcmp(f, "lower") || !strcmp(f, "title") || !strcmp(f, "capitalize")) {
        int mode = f[0] == 'u' ? 0 : f[0] == 'l' ? 1 : f[0] == 't' ? 2 : 3;
        return map_case(c, jv_to_str(c, x), mode);
    }
    if (!strcmp(f, "tojson")) {
        const jv *ind = kwarg(kw, args, nargs, "indent");
        if (!ind && nargs && !kw[0]) ind = &args[0];
        return jv_tojson(c, x, ind && ind->type == JV_INT ? (int)ind->u.i : -1);
    }
    if (!strcmp(f, "string")) return jv_to_str(c, x);
    if (!strcmp(f, "safe") || !strcmp(f, "e") || !strcmp(f, "escape")) {
        if (f[0] != 's') {
            jerr(c, AWQ_ERR_UNSUPPORTED, n->line, "unsupported filter", f);
            return undef();
        }
        return x;
    }
    if (!strcmp(f, "first") || !strcmp(f, "last")) {
        jv l = to_list(c, x);
        if (l.type != JV_LIST || l.u.l->n == 0) return undef();
        return f[0] == 'f' ? l.u.l->v[0] : l.u.l->v[l.u.l->n - 1];
    }
    if (!strcmp(f, "list")) return to_list(c, x);
    if (!strcmp(f, "items")) return items(c, x);
    if (!strcmp(f, "reverse")) {
        if (x.type == JV_STR) {
            jv r = jv_str(c, x.u.s.p, x.u.s.n);
            char *p = (char *)r.u.s.p;
            for (size_t i = 0; i < r.u.s.n / 2; i++) {
                char t = p[i];
                p[i] = p[r.u.s.n - 1 - i];
                p[r.u.s.n - 1 - i] = t;
            }
            return r;
        }
        jv l = to_list(c, x), r = jv_list(c);
        for (size_t i = l.u.l->n; i > 0; i--) jlist_push(c, r.u.l, l.u.l->v[i - 1]);
        return r;
    }
    if (!strcmp(f, "join")) {
        jv sep = nargs && args[0].type == JV_STR ? args[0] : jv_cstr(c, "");
        jv l = to_list(c, x);
        tok_buf o = {0};
        for (size_t i = 0; i < l.u.l->n; i++) {
            if (i) tok_buf_append(&o, sep.u.s.p, sep.u.s.n);
            jv_render(&o, l.u.l->v[i]);
        }
        jv r = jv_str(c, o.p ? o.p : "", o.n);
        tok_buf_free(&o);
        return r;
    }
    if (!strcmp(f, "replace")) {
        if (!need(c, n, nargs, 2, 2, f)) return undef();
        jv s = jv_to_str(c, x);
        if (!need_str(c, n, args[0], f) || !need_str(c, n, args[1], f)) return undef();
        return replace(c, s, args[0], args[1]);
    }
    if (!strcmp(f, "int")) {
        if (x.type == JV_STR) return jint(strtoll(jarena_strndup(c->a, x.u.s.p, x.u.s.n), NULL, 10));
        return jint(jv_i64(x));
    }
    if (!strcmp(f, "float")) {
        if (x.type == JV_STR)
            return (jv){.type = JV_FLOAT, .u.f = strtod(jarena_strndup(c->a, x.u.s.p, x.u.s.n), NULL)};
        return (jv){.type = JV_FLOAT, .u.f = jv_num(x)};
    }
    if (!strcmp(f, "abs")) {
        if (x.type == JV_INT && x.u.i != INT64_MIN) return jint(x.u.i < 0 ? -x.u.i : x.u.i);
        if (x.type == JV_INT) return (jv){.type = JV_FLOAT, .u.f = 9223372036854775808.0};
        return (jv){.type = JV_FLOAT, .u.f = jv_num(x) < 0 ? -jv_num(x) : jv_num(x)};
    }
    if (!strcmp(f, "select") || !strcmp(f, "reject") || !strcmp(f, "selectattr") ||
        !strcmp(f, "rejectattr")) {
        /* select(test, args...), selectattr(attr[, test, args...]); no test: truthiness */
        bool attr = strstr(f, "attr") != NULL, keep_if = f[0] == 's';
        int first = attr ? 1 : 0;
        if (attr && (!nargs || args[0].type != JV_STR)) {
            jerr(c, AWQ_ERR_INVALID_ARG, n->line, "expected an attribute name for", f);
            return undef();
        }
        if (first < nargs && args[first].type != JV_STR) {
            jerr(c, AWQ_ERR_INVALID_ARG, n->line, "expected a test name for", f);
            return undef();
        }
        jv l = to_list(c, x), r = jv_list(c);
        for (size_t i = 0; i < l.u.l->n && !c->failed; i++) {
            jv v = l.u.l->v[i];
            if (attr) v = jinja_getattr(c, v, jarena_strndup(c->a, args[0].u.s.p, args[0].u.s.n));
            bool ok;
            if (first < nargs) {
                jnode tn = {.kind = JE_TEST,
                            .line = n->line,
                            .name = jarena_strndup(c->a, args[first].u.s.p, args[first].u.s.n)};
                ok = jinja_test(c, &tn, v, args + first + 1, nargs - first - 1);
            } else
                ok = jv_truthy(v);
            if (ok == keep_if) jlist_push(c, r.u.l, l.u.l->v[i]);
        }
        return r;
    }
    if (!strcmp(f, "map")) { /* map(attribute='name') or map('filter', args...) */
        const jv *at = kwarg(kw, args, nargs, "attribute");
        jv l = to_list(c, x), r = jv_list(c);
        if (!at && (!nargs || args[0].type != JV_STR)) {
            jerr(c, AWQ_ERR_INVALID_ARG, n->line, "expected attribute= or a filter name for", f);
            return undef();
        }
        for (size_t i = 0; i < l.u.l->n && !c->failed; i++) {
            jv v = l.u.l->v[i];
            if (at) {
                v = jinja_getattr(c, v, jarena_strndup(c->a, at->u.s.p, at->u.s.n));
            } else {
                jnode fn = {.kind = JE_FILTER,
                            .line = n->line,
                            .name = jarena_strndup(c->a, args[0].u.s.p, args[0].u.s.n)};
                v = jinja_filter(c, &fn, v, args + 1, kw ? kw + 1 : NULL, nargs - 1);
            }
            jlist_push(c, r.u.l, v);
        }
        return r;
    }
    if (!strcmp(f, "unique")) {
        jv l = to_list(c, x), r = jv_list(c);
        for (size_t i = 0; i < l.u.l->n; i++) {
            bool seen = false;
            for (size_t k = 0; k < r.u.l->n && !seen; k++) seen = jv_eq(r.u.l->v[k], l.u.l->v[i]);
            if (!seen) jlist_push(c, r.u.l, l.u.l->v[i]);
        }
        return r;
    }
    jerr(c, AWQ_ERR_UNSUPPORTED, n->line, "unsupported filter", f);
    return undef();
}

bool jinja_test(jctx *c, const jnode *n, jv x, const jv *args, int nargs) {
    const char *t = n->name;
    if (!strcmp(t, "defined")) return x.type != JV_UNDEF;
    if (!strcmp(t, "undefined")) return x.type == JV_UNDEF;
    if (!strcmp(t, "none")) return x.type == JV_NONE;
    if (!strcmp(t, "string")) return x.type == JV_STR;
    if (!strcmp(t, "number")) return x.type == JV_INT || x.type == JV_FLOAT;
    if (!strcmp(t, "integer")) return x.type == JV_INT;
    if (!strcmp(t, "float")) return x.type == JV_FLOAT;
    if (!strcmp(t, "boolean")) return x.type == JV_BOOL;
    if (!strcmp(t, "true")) return x.type == JV_BOOL && x.u.b;
    if (!strcmp(t, "false")) return x.type == JV_BOOL && !x.u.b;
    if (!strcmp(t, "mapping")) return x.type == JV_DICT;
    if (!strcmp(t, "sequence") || !strcmp(t, "iterable"))
        return x.type == JV_LIST || x.type == JV_STR || x.type == JV_DICT;
    if (!strcmp(t, "callable")) return x.type == JV_FUNC || x.type == JV_METHOD;
    if (!strcmp(t, "even") || !strcmp(t, "odd")) {
        if (x.type != JV_INT) return false;
        return (x.u.i % 2 == 0) == (t[0] == 'e');
    }
    if (!strcmp(t, "eq") || !strcmp(t, "equalto") || !strcmp(t, "sameas") || !strcmp(t, "ne") ||
        !strcmp(t, "in")) {
        if (!need(c, n, nargs, 1, 1, t)) return false;
        if (!strcmp(t, "ne")) return !jv_eq(x, args[0]);
        if (!strcmp(t, "in")) {
            jv hay = args[0];
            if (hay.type == JV_LIST)
                for (size_t i = 0; i < hay.u.l->n; i++)
                    if (jv_eq(hay.u.l->v[i], x)) return true;
            if (hay.type == JV_DICT && x.type == JV_STR) return jdict_get(hay.u.d, x.u.s.p, x.u.s.n);
            if (hay.type == JV_STR && x.type == JV_STR)
                for (size_t i = 0; i + x.u.s.n <= hay.u.s.n; i++)
                    if (!memcmp(hay.u.s.p + i, x.u.s.p, x.u.s.n)) return true;
            return false;
        }
        return jv_eq(x, args[0]);
    }
    jerr(c, AWQ_ERR_UNSUPPORTED, n->line, "unsupported test", t);
    return false;
}

static bool is_method(const char *name, jtype t) {
    static const char *const str_m[] = {"strip", "lstrip", "rstrip", "split",      "startswith", "endswith",
                                        "upper", "lower",  "title",  "capitalize", "replace",    NULL};
    static const char *const dict_m[] = {"items", "keys", "values", "get", NULL};
    const char *const *m = t == JV_STR ? str_m : t == JV_DICT ? dict_m : NULL;
    for (int i = 0; m && m[i]; i++)
        if (!strcmp(m[i], name)) return true;
    return false;
}

jv jinja_getattr(jctx *c, jv x, const char *name) {
    if (x.type == JV_DICT) {
        jv *v = jdict_get(x.u.d, name, strlen(name));
        if (v) return *v;
    }
    if (is_method(name, x.type)) {
        jv *self = jarena_alloc(c->a, sizeof *self);
        if (!self) return undef();
        *self = x;
        return (jv){.type = JV_METHOD, .u.fn = {.name = name, .self = self}};
    }
    return undef();
}

static jv call_method(jctx *c, const jnode *n, jv self, const char *m, const jv *args, int nargs) {
    if (self.type == JV_DICT) {
        if (!strcmp(m, "items")) return items(c, self);
        if (!strcmp(m, "keys")) return to_list(c, self);
        if (!strcmp(m, "values")) {
            jv l = jv_list(c);
            for (size_t i = 0; i < self.u.d->n; i++) jlist_push(c, l.u.l, self.u.d->v[i]);
            return l;
        }
        if (!need(c, n, nargs, 1, 2, m)) return undef();
        jv *v = args[0].type == JV_STR ? jdict_get(self.u.d, args[0].u.s.p, args[0].u.s.n) : NULL;
        return v ? *v : nargs > 1 ? args[1] : (jv){.type = JV_NONE};
    }
    if (!strcmp(m, "strip") || !strcmp(m, "lstrip") || !strcmp(m, "rstrip")) {
        if (!need(c, n, nargs, 0, 1, m)) return undef();
        const jv *chars = nargs && args[0].type == JV_STR ? &args[0] : NULL;
        return strip(c, self, m[0] != 'r', m[0] != 'l', chars);
    }
    if (!strcmp(m, "split")) {
        if (!need(c, n, nargs, 0, 2, m)) return undef();
        const jv *sep = nargs && args[0].type == JV_STR ? &args[0] : NULL;
        return split(c, self, sep, nargs > 1 ? jv_i64(args[1]) : -1);
    }
    if (!strcmp(m, "startswith") || !strcmp(m, "endswith")) {
        if (!need(c, n, nargs, 1, 1, m) || !need_str(c, n, args[0], m)) return undef();
        size_t k = args[0].u.s.n;
        if (k > self.u.s.n) return jbool(false);
        const char *at = m[0] == 's' ? self.u.s.p : self.u.s.p + self.u.s.n - k;
        return jbool(memcmp(at, args[0].u.s.p, k) == 0);
    }
    if (!strcmp(m, "replace")) {
        if (!need(c, n, nargs, 2, 2, m) || !need_str(c, n, args[0], m) || !need_str(c, n, args[1], m))
            return undef();
        return replace(c, self, args[0], args[1]);
    }
    int mode = m[0] == 'u' ? 0 : m[0] == 'l' ? 1 : m[0] == 't' ? 2 : 3;
    return map_case(c, self, mode);
}

jv jinja_call(jctx *c, const jnode *n, jv fn, const jv *args, const char *const *kw, int nargs) {
    if (fn.type == JV_METHOD) return call_method(c, n, *fn.u.fn.self, fn.u.fn.name, args, nargs);
    if (fn.type != JV_FUNC) {
        jerr(c, AWQ_ERR_UNSUPPORTED, n->line, "call of an undefined or non-callable value",
             n->a && n->a->name ? n->a->name : NULL);
        return undef();
    }
    const char *f = fn.u.fn.name;
    if (!strcmp(f, "raise_exception")) {
        tok_buf msg = {0};
        if (nargs) jv_render(&msg, args[0]);
        awq_set_error(c->rt, AWQ_ERR_INVALID_ARG, "chat_template: line %d: raise_exception: %s", n->line,
                      msg.p ? msg.p : "");
        tok_buf_free(&msg);
        c->failed = true;
        c->st = AWQ_ERR_INVALID_ARG;
        return undef();
    }
    if (!strcmp(f, "namespace")) {
        jv d = jv_dict(c);
        for (int i = 0; i < nargs; i++)
            if (kw[i]) jdict_set(c, d.u.d, kw[i], strlen(kw[i]), args[i]);
        return d;
    }
    if (!strcmp(f, "range")) {
        if (!need(c, n, nargs, 1, 3, f)) return undef();
        int64_t a = 0, b, s = 1;
        if (nargs == 1)
            b = jv_i64(args[0]);
        else {
            a = jv_i64(args[0]);
            b = jv_i64(args[1]);
            if (nargs == 3) s = jv_i64(args[2]);
        }
        /* the element count, exactly and without signed overflow (unsigned differences) */
        uint64_t count = 0;
        if (s > 0 && b > a) {
            uint64_t diff = (uint64_t)b - (uint64_t)a, us = (uint64_t)s;
            count = diff / us + (diff % us != 0);
        } else if (s < 0 && b < a) {
            uint64_t diff = (uint64_t)a - (uint64_t)b, us = (uint64_t)(-(s + 1)) + 1;
            count = diff / us + (diff % us != 0);
        }
        if (s == 0 || count > 100000) {
            jerr(c, AWQ_ERR_INVALID_ARG, n->line, "bad range", NULL);
            return undef();
        }
        jv l = jv_list(c);
        for (uint64_t k = 0; k < count && !c->failed; k++)
            jlist_push(c, l.u.l, jint((int64_t)((uint64_t)a + k * (uint64_t)s)));
        return l;
    }
    /* strftime_now(format): the current local time (Llama 3.x templates print today's date) */
    if (!need(c, n, nargs, 1, 1, f) || !need_str(c, n, args[0], f)) return undef();
    char buf[256];
    time_t now = time(NULL);
    struct tm tmv;
    localtime_r(&now, &tmv);
    size_t k = strftime(buf, sizeof buf, jarena_strndup(c->a, args[0].u.s.p, args[0].u.s.n), &tmv);
    return jv_str(c, buf, k);
}
