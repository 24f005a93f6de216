/*
 * json.c - cJSON helpers: parsing with error positions, typed getters whose errors name the file
 * and the key, and an atomic pretty-printer (indent 2, insertion order, like Python's
 * json.dump(indent=2)).
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json.h"

/* ---- parsing ------------------------------------------------------------------------------ */

awq_status awq_json_parse(awq_runtime *rt, const char *what, const char *text, size_t len, cJSON **out) {
    *out = NULL;
    if (!text) return awq_set_error(rt, AWQ_ERR_INVALID_ARG, "%s: no JSON text", what);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, false);
    size_t pos = len;
    if (root) {
        /* cJSON stops after the first value; anything but whitespace after it is an error. */
        pos = (size_t)(end - text);
        while (pos < len && (text[pos] == ' ' || text[pos] == '\t' || text[pos] == '\n' || text[pos] == '\r'))
            pos++;
        if (pos < len && !(text[pos] == '\0' && pos + 1 == len)) {
            cJSON_Delete(root);
            root = NULL;
        } else {
            *out = root;
            return AWQ_OK;
        }
    } else if (end && end >= text && (size_t)(end - text) <= len) {
        pos = (size_t)(end - text);
    } else {
        pos = 0;
    }
    /* 1-based line and column of the error position. */
    size_t line = 1, col = 1;
    for (size_t i = 0; i < pos && i < len; i++) {
        if (text[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    if (len == 0) return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: invalid JSON: empty input", what);
    if (pos >= len)
        return awq_set_error(rt, AWQ_ERR_FORMAT,
                             "%s: invalid JSON: unexpected end of input at byte %zu (line %zu, "
                             "column %zu)",
                             what, pos, line, col);
    /* text need not be NUL-terminated: quote at most the 16 bytes that are there */
    int near = len - pos < 16 ? (int)(len - pos) : 16;
    return awq_set_error(rt, AWQ_ERR_FORMAT,
                         "%s: invalid JSON at byte %zu (line %zu, column %zu) near '%.*s'", what, pos, line,
                         col, near, text + pos);
}

awq_status awq_json_parse_file(awq_runtime *rt, const char *path, cJSON **out) {
    *out = NULL;
    char *text = NULL;
    size_t len = 0;
    awq_status st = awq_read_file(rt, path, &text, &len);
    if (st != AWQ_OK) return st;
    st = awq_json_parse(rt, path, text, len, out);
    awq_free(text);
    return st;
}

/* ---- typed getters ------------------------------------------------------------------------ */

/* "string", "number 1.5", "object", ... for messages. */
static void describe(const cJSON *v, char *buf, size_t cap) {
    if (cJSON_IsString(v))
        snprintf(buf, cap, "string \"%.40s\"", v->valuestring);
    else if (cJSON_IsNumber(v))
        snprintf(buf, cap, "number %.17g", v->valuedouble);
    else if (cJSON_IsBool(v))
        snprintf(buf, cap, "%s", cJSON_IsTrue(v) ? "true" : "false");
    else if (cJSON_IsNull(v))
        snprintf(buf, cap, "null");
    else if (cJSON_IsArray(v))
        snprintf(buf, cap, "array");
    else if (cJSON_IsObject(v))
        snprintf(buf, cap, "object");
    else
        snprintf(buf, cap, "invalid value");
}

/* Finds key in obj (case-sensitive); NULL if absent or JSON null. Errors if obj is no object. */
static awq_status lookup(awq_runtime *rt, const cJSON *obj, const char *what, const char *key, bool required,
                         const cJSON **out) {
    *out = NULL;
    if (!cJSON_IsObject(obj))
        return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: expected a JSON object holding '%s'", what, key);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (v && cJSON_IsNull(v)) v = NULL;
    if (!v && required) return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: missing key '%s'", what, key);
    *out = v;
    return AWQ_OK;
}

static awq_status type_error(awq_runtime *rt, const char *what, const char *key, const char *expected,
                             const cJSON *v) {
    char found[96];
    describe(v, found, sizeof found);
    return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: '%s': expected %s, got %s", what, key, expected, found);
}

awq_status awq_json_get_int(awq_runtime *rt, const cJSON *obj, const char *what, const char *key,
                            bool required, int64_t def, int64_t *out) {
    const cJSON *v;
    awq_status st = lookup(rt, obj, what, key, required, &v);
    if (st != AWQ_OK) return st;
    if (!v) {
        *out = def;
        return AWQ_OK;
    }
    if (!cJSON_IsNumber(v)) return type_error(rt, what, key, "an integer", v);
    double d = v->valuedouble;
    /* 2^63 is exactly representable; the valid range is [-2^63, 2^63). */
    if (!isfinite(d) || d != floor(d) || d < -9223372036854775808.0 || d >= 9223372036854775808.0)
        return type_error(rt, what, key, "an integer", v);
    *out = (int64_t)d;
    return AWQ_OK;
}

awq_status awq_json_get_double(awq_runtime *rt, const cJSON *obj, const char *what, const char *key,
                               bool required, double def, double *out) {
    const cJSON *v;
    awq_status st = lookup(rt, obj, what, key, required, &v);
    if (st != AWQ_OK) return st;
    if (!v) {
        *out = def;
        return AWQ_OK;
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return type_error(rt, what, key, "a finite number", v);
    *out = v->valuedouble;
    return AWQ_OK;
}

awq_status awq_json_get_bool(awq_runtime *rt, const cJSON *obj, const char *what, const char *key,
                             bool required, bool def, bool *out) {
    const cJSON *v;
    awq_status st = lookup(rt, obj, what, key, required, &v);
    if (st != AWQ_OK) return st;
    if (!v) {
        *out = def;
        return AWQ_OK;
    }
    if (!cJSON_IsBool(v)) return type_error(rt, what, key, "true or false", v);
    *out = cJSON_IsTrue(v) != 0;
    return AWQ_OK;
}

awq_status awq_json_get_string(awq_runtime *rt, const cJSON *obj, const char *what, const char *key,
                               bool required, const char *def, const char **out) {
    const cJSON *v;
    awq_status st = lookup(rt, obj, what, key, required, &v);
    if (st != AWQ_OK) return st;
    if (!v) {
        *out = def;
        return AWQ_OK;
    }
    if (!cJSON_IsString(v) || !v->valuestring) return type_error(rt, what, key, "a string", v);
    *out = v->valuestring;
    return AWQ_OK;
}

/* ---- writing ------------------------------------------------------------------------------ */

typedef awq_strbuf sbuf;
#define sb_put  awq_strbuf_put
#define sb_puts awq_strbuf_puts

static void sb_indent(sbuf *b, int depth) {
    for (int i = 0; i < depth; i++) sb_put(b, "  ", 2);
}

/* JSON string with the escapes Python's json.dumps(ensure_ascii=False) uses; UTF-8 passes. */
static void put_string(sbuf *b, const char *s) {
    sb_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        char esc[8];
        switch (*p) {
        case '"': sb_put(b, "\\\"", 2); break;
        case '\\': sb_put(b, "\\\\", 2); break;
        case '\n': sb_put(b, "\\n", 2); break;
        case '\r': sb_put(b, "\\r", 2); break;
        case '\t': sb_put(b, "\\t", 2); break;
        case '\b': sb_put(b, "\\b", 2); break;
        case '\f': sb_put(b, "\\f", 2); break;
        default:
            if (*p < 0x20 || *p == 0x7f) {
                snprintf(esc, sizeof esc, "\\u%04x", *p);
                sb_put(b, esc, 6);
            } else {
                sb_put(b, (const char *)p, 1);
            }
        }
    }
    sb_put(b, "\"", 1);
}

/* Integral values print as integers; others with the fewest digits that round-trip. Non-finite
 * numbers have no JSON spelling and print as null (as cJSON does). */
static void put_number(sbuf *b, double d) {
    char buf[64];
    if (!isfinite(d)) {
        sb_puts(b, "null");
        return;
    }
    if (d == floor(d) && fabs(d) < 9007199254740992.0) {
        snprintf(buf, sizeof buf, "%lld", (long long)d);
    } else {
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(buf, sizeof buf, "%.*g", prec, d);
            if (strtod(buf, NULL) == d) break;
        }
    }
    sb_puts(b, buf);
}

static void put_value(sbuf *b, const cJSON *v, int depth) {
    if (cJSON_IsObject(v) || cJSON_IsArray(v)) {
        bool obj = cJSON_IsObject(v);
        const cJSON *c = v->child;
        if (!c) {
            sb_puts(b, obj ? "{}" : "[]");
            return;
        }
        sb_puts(b, obj ? "{\n" : "[\n");
        for (; c; c = c->next) {
            sb_indent(b, depth + 1);
            if (obj) {
                put_string(b, c->string);
                sb_puts(b, ": ");
            }
            put_value(b, c, depth + 1);
            if (c->next) sb_puts(b, ",");
            sb_puts(b, "\n");
        }
        sb_indent(b, depth);
        sb_puts(b, obj ? "}" : "]");
    } else if (cJSON_IsString(v)) {
        put_string(b, v->valuestring);
    } else if (cJSON_IsNumber(v)) {
        put_number(b, v->valuedouble);
    } else if (cJSON_IsTrue(v)) {
        sb_puts(b, "true");
    } else if (cJSON_IsFalse(v)) {
        sb_puts(b, "false");
    } else if (cJSON_IsRaw(v) && v->valuestring) {
        sb_puts(b, v->valuestring);
    } else {
        sb_puts(b, "null");
    }
}

awq_status awq_json_write_file(awq_runtime *rt, const char *path, const cJSON *root) {
    if (!path || !root) return awq_set_error(rt, AWQ_ERR_INVALID_ARG, "json write: NULL argument");
    sbuf b = {0};
    put_value(&b, root, 0);
    sb_puts(&b, "\n");
    if (b.oom) {
        awq_free(b.p);
        return awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "%s: out of memory formatting JSON", path);
    }
    size_t plen = strlen(path);
    char *tmp = awq_malloc(plen + 5);
    if (!tmp) {
        awq_free(b.p);
        return awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    awq_status st = AWQ_OK;
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        st = awq_set_error(rt, AWQ_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    } else {
        bool ok = fwrite(b.p, 1, b.len, f) == b.len;
        ok = fflush(f) == 0 && ok;
        ok = fsync(fileno(f)) == 0 && ok;
        int e = errno;
        ok = fclose(f) == 0 && ok;
        if (!ok) {
            st = awq_set_error(rt, AWQ_ERR_IO, "%s: write failed: %s", tmp, strerror(e));
            remove(tmp);
        } else if (rename(tmp, path) != 0) {
            st = awq_set_error(rt, AWQ_ERR_IO, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
            remove(tmp);
        }
    }
    awq_free(tmp);
    awq_free(b.p);
    return st;
}
