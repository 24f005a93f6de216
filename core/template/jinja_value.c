/* jinja_value.c - Jinja values: construction, truthiness, comparison, rendering, JSON. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "jinja_eval.h"

jv jv_str(jctx *c, const char *s, size_t n) {
    jv v = {.type = JV_STR};
    char *p = jarena_strndup(c->a, s, n);
    if (!p) jerr(c, AWQ_ERR_OUT_OF_MEMORY, 0, "out of memory", NULL);
    v.u.s.p = p ? p : "";
    v.u.s.n = p ? n : 0;
    return v;
}

jv jv_cstr(jctx *c, const char *s) { return jv_str(c, s, strlen(s)); }

jv jv_list(jctx *c) {
    jv v = {.type = JV_LIST};
    v.u.l = jarena_alloc(c->a, sizeof *v.u.l);
    if (!v.u.l) {
        jerr(c, AWQ_ERR_OUT_OF_MEMORY, 0, "out of memory", NULL);
        v.type = JV_NONE;
    }
    return v;
}

jv jv_dict(jctx *c) {
    jv v = {.type = JV_DICT};
    v.u.d = jarena_alloc(c->a, sizeof *v.u.d);
    if (!v.u.d) {
        jerr(c, AWQ_ERR_OUT_OF_MEMORY, 0, "out of memory", NULL);
        v.type = JV_NONE;
    }
    return v;
}

void jlist_push(jctx *c, jlist *l, jv x) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        jv *nv = jarena_alloc(c->a, cap * sizeof *nv);
        if (!nv) {
            jerr(c, AWQ_ERR_OUT_OF_MEMORY, 0, "out of memory", NULL);
            return;
        }
        if (l->n) memcpy(nv, l->v, l->n * sizeof *nv);
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n++] = x;
}

jv *jdict_get(const jdict *d, const char *k, size_t n) {
    for (size_t i = 0; i < d->n; i++)
        if (d->k[i].u.s.n == n && memcmp(d->k[i].u.s.p, k, n) == 0) return &d->v[i];
    return NULL;
}

void jdict_set(jctx *c, jdict *d, const char *k, size_t n, jv v) {
    jv *e = jdict_get(d, k, n);
    if (e) {
        *e = v;
        return;
    }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        jv *nk = jarena_alloc(c->a, cap * sizeof *nk), *nv = jarena_alloc(c->a, cap * sizeof *nv);
        if (!nk || !nv) {
            jerr(c, AWQ_ERR_OUT_OF_MEMORY, 0, "out of memory", NULL);
            return;
        }
        if (d->n) {
            memcpy(nk, d->k, d->n * sizeof *nk);
            memcpy(nv, d->v, d->n * sizeof *nv);
        }
        d->k = nk;
        d->v = nv;
        d->cap = cap;
    }
    d->k[d->n] = jv_str(c, k, n);
    d->v[d->n] = v;
    d->n++;
}

bool jv_truthy(jv v) {
    switch (v.type) {
    case JV_UNDEF:
    case JV_NONE: return false;
    case JV_BOOL: return v.u.b;
    case JV_INT: return v.u.i != 0;
    case JV_FLOAT: return v.u.f != 0.0;
    case JV_STR: return v.u.s.n != 0;
    case JV_LIST: return v.u.l->n != 0;
    case JV_DICT: return v.u.d->n != 0;
    default: return true;
    }
}

static bool is_num(jv v) { return v.type == JV_INT || v.type == JV_FLOAT || v.type == JV_BOOL; }
double jv_num(jv v) {
    return v.type == JV_INT ? (double)v.u.i : v.type == JV_FLOAT ? v.u.f : v.type == JV_BOOL ? v.u.b : 0;
}

int64_t jv_i64(jv v) {
    if (v.type == JV_INT) return v.u.i;
    if (v.type == JV_BOOL) return v.u.b;
    if (v.type != JV_FLOAT || v.u.f != v.u.f) return 0; /* NaN: 0 */
    /* saturate: converting a double outside int64's range is undefined behaviour */
    if (v.u.f >= 9223372036854775807.0) return INT64_MAX;
    if (v.u.f <= -9223372036854775808.0) return INT64_MIN;
    return (int64_t)v.u.f;
}

bool jv_eq(jv a, jv b) {
    if (is_num(a) && is_num(b)) {
        if (a.type != JV_FLOAT && b.type != JV_FLOAT)
            return (a.type == JV_INT ? a.u.i : a.u.b) == (b.type == JV_INT ? b.u.i : b.u.b);
        return jv_num(a) == jv_num(b);
    }
    if ((a.type == JV_UNDEF || a.type == JV_NONE) && (b.type == JV_UNDEF || b.type == JV_NONE))
        return a.type == b.type;
    if (a.type != b.type) return false;
    switch (a.type) {
    case JV_STR: return a.u.s.n == b.u.s.n && memcmp(a.u.s.p, b.u.s.p, a.u.s.n) == 0;
    case JV_LIST:
        if (a.u.l->n != b.u.l->n) return false;
        for (size_t i = 0; i < a.u.l->n; i++)
            if (!jv_eq(a.u.l->v[i], b.u.l->v[i])) return false;
        return true;
    case JV_DICT:
        if (a.u.d->n != b.u.d->n) return false;
        for (size_t i = 0; i < a.u.d->n; i++) {
            jv *o = jdict_get(b.u.d, a.u.d->k[i].u.s.p, a.u.d->k[i].u.s.n);
            if (!o || !jv_eq(a.u.d->v[i], *o)) return false;
        }
        return true;
    default: return a.u.d == b.u.d;
    }
}

/* <0, 0, >0; *ok false if the types cannot be ordered. */
int jv_cmp(jv a, jv b, bool *ok) {
    *ok = true;
    if (is_num(a) && is_num(b)) {
        double x = jv_num(a), y = jv_num(b);
        return x < y ? -1 : x > y;
    }
    if (a.type == JV_STR && b.type == JV_STR) {
        size_t n = a.u.s.n < b.u.s.n ? a.u.s.n : b.u.s.n;
        int r = memcmp(a.u.s.p, b.u.s.p, n);
        if (r) return r;
        return a.u.s.n < b.u.s.n ? -1 : a.u.s.n > b.u.s.n;
    }
    *ok = false;
    return 0;
}

static void put_float(tok_buf *o, double f) {
    char buf[64];
    if (isinf(f))
        snprintf(buf, sizeof buf, "%s", f > 0 ? "inf" : "-inf");
    else if (isnan(f))
        snprintf(buf, sizeof buf, "nan");
    else {
        /* Python repr: shortest round-trip form, always with a '.' or exponent */
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(buf, sizeof buf, "%.*g", prec, f);
            if (strtod(buf, NULL) == f) break;
        }
        if (!strchr(buf, '.') && !strchr(buf, 'e') && !strchr(buf, 'n')) strcat(buf, ".0");
    }
    tok_buf_append(o, buf, strlen(buf));
}

static void put_repr_str(tok_buf *o, jv v) {
    /* Python repr of a str: single quotes unless the text has ' and no " */
    bool sq = memchr(v.u.s.p, '\'', v.u.s.n) && !memchr(v.u.s.p, '"', v.u.s.n);
    char q = sq ? '"' : '\'';
    tok_buf_putc(o, q);
    for (size_t i = 0; i < v.u.s.n; i++) {
        char ch = v.u.s.p[i];
        if (ch == '\\')
            tok_buf_append(o, "\\\\", 2);
        else if (ch == q) {
            tok_buf_putc(o, '\\');
            tok_buf_putc(o, ch);
        } else if (ch == '\n')
            tok_buf_append(o, "\\n", 2);
        else if (ch == '\t')
            tok_buf_append(o, "\\t", 2);
        else if (ch == '\r')
            tok_buf_append(o, "\\r", 2);
        else
            tok_buf_putc(o, ch);
    }
    tok_buf_putc(o, q);
}

/* Python str() of a value (what {{ }} prints); repr for items inside containers. */
static void put_value(tok_buf *o, jv v, bool repr) {
    char buf[32];
    switch (v.type) {
    case JV_UNDEF: break;
    case JV_NONE: tok_buf_append(o, "None", 4); break;
    case JV_BOOL: tok_buf_append(o, v.u.b ? "True" : "False", v.u.b ? 4 : 5); break;
    case JV_INT:
        snprintf(buf, sizeof buf, "%lld", (long long)v.u.i);
        tok_buf_append(o, buf, strlen(buf));
        break;
    case JV_FLOAT: put_float(o, v.u.f); break;
    case JV_STR:
        if (repr)
            put_repr_str(o, v);
        else
            tok_buf_append(o, v.u.s.p, v.u.s.n);
        break;
    case JV_LIST:
        tok_buf_putc(o, '[');
        for (size_t i = 0; i < v.u.l->n; i++) {
            if (i) tok_buf_append(o, ", ", 2);
            put_value(o, v.u.l->v[i], true);
        }
        tok_buf_putc(o, ']');
        break;
    case JV_DICT:
        tok_buf_putc(o, '{');
        for (size_t i = 0; i < v.u.d->n; i++) {
            if (i) tok_buf_append(o, ", ", 2);
            put_value(o, v.u.d->k[i], true);
            tok_buf_append(o, ": ", 2);
            put_value(o, v.u.d->v[i], true);
        }
        tok_buf_putc(o, '}');
        break;
    default: tok_buf_append(o, "<function>", 10); break;
    }
}

void jv_render(tok_buf *o, jv v) { put_value(o, v, false); }

jv jv_to_str(jctx *c, jv v) {
    if (v.type == JV_STR) return v;
    tok_buf b = {0};
    put_value(&b, v, false);
    jv s = jv_str(c, b.p ? b.p : "", b.n);
    tok_buf_free(&b);
    return s;
}

/* json.dumps(v, ensure_ascii=False[, indent]) as transformers' tojson does. */
static void put_json(tok_buf *o, jv v, int indent, int depth) {
    char buf[32];
    switch (v.type) {
    case JV_UNDEF:
    case JV_NONE: tok_buf_append(o, "null", 4); return;
    case JV_BOOL: tok_buf_append(o, v.u.b ? "true" : "false", v.u.b ? 4 : 5); return;
    case JV_INT:
        snprintf(buf, sizeof buf, "%lld", (long long)v.u.i);
        tok_buf_append(o, buf, strlen(buf));
        return;
    case JV_FLOAT: put_float(o, v.u.f); return;
    case JV_STR:
        tok_buf_putc(o, '"');
        for (size_t i = 0; i < v.u.s.n; i++) {
            unsigned char ch = (unsigned char)v.u.s.p[i];
            if (ch == '"')
                tok_buf_append(o, "\\\"", 2);
            else if (ch == '\\')
                tok_buf_append(o, "\\\\", 2);
            else if (ch == '\n')
                tok_buf_append(o, "\\n", 2);
            else if (ch == '\t')
                tok_buf_append(o, "\\t", 2);
            else if (ch == '\r')
                tok_buf_append(o, "\\r", 2);
            else if (ch == '\b')
                tok_buf_append(o, "\\b", 2);
            else if (ch == '\f')
                tok_buf_append(o, "\\f", 2);
            else if (ch < 0x20) {
                snprintf(buf, sizeof buf, "\\u%04x", ch);
                tok_buf_append(o, buf, 6);
            } else
                tok_buf_putc(o, (char)ch);
        }
        tok_buf_putc(o, '"');
        return;
    case JV_LIST:
    case JV_DICT: {
        bool dict = v.type == JV_DICT;
        size_t n = dict ? v.u.d->n : v.u.l->n;
        tok_buf_putc(o, dict ? '{' : '[');
        for (size_t i = 0; i < n; i++) {
            if (i) tok_buf_putc(o, ',');
            if (indent >= 0) {
                tok_buf_putc(o, '\n');
                for (int k = 0; k < indent * (depth + 1); k++) tok_buf_putc(o, ' ');
            } else if (i)
                tok_buf_putc(o, ' ');
            if (dict) {
                put_json(o, v.u.d->k[i], indent, depth + 1);
                tok_buf_append(o, ": ", 2);
                put_json(o, v.u.d->v[i], indent, depth + 1);
            } else
                put_json(o, v.u.l->v[i], indent, depth + 1);
        }
        if (indent >= 0 && n) {
            tok_buf_putc(o, '\n');
            for (int k = 0; k < indent * depth; k++) tok_buf_putc(o, ' ');
        }
        tok_buf_putc(o, dict ? '}' : ']');
        return;
    }
    default: tok_buf_append(o, "null", 4); return;
    }
}

jv jv_tojson(jctx *c, jv v, int indent) {
    tok_buf b = {0};
    put_json(&b, v, indent, 0);
    jv s = jv_str(c, b.p ? b.p : "", b.n);
    tok_buf_free(&b);
    return s;
}

const char *jv_type_name(jv v) {
    static const char *const names[] = {"undefined", "none", "bool", "int",      "float",
                                        "string",    "list", "dict", "function", "method"};
    return names[v.type];
}
