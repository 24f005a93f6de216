/*
 * serve_request.c - the JSON body of an OpenAI completions / chat completions request turned
 * into a serve_req (serve_request.h), or an error naming the parameter.
 */
#include "serve_request.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void serve_req_init(serve_req *q, bool chat) {
    memset(q, 0, sizeof *q);
    q->chat = chat;
    q->max_tokens = -1;
}

void serve_req_free(serve_req *q) {
    free(q->prompt);
    for (int32_t i = 0; i < q->n_msgs; i++) {
        free((char *)q->msgs[i].role);
        free((char *)q->msgs[i].content);
    }
    free(q->msgs);
    for (int32_t i = 0; i < q->n_stops; i++) free(q->stops[i]);
    serve_req_init(q, q->chat);
}

static bool bad(serve_err *e, const char *param, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    e->param = param;
    return false;
}

/* Optional number field in [lo, hi]; integer when integral. */
static bool get_num(const cJSON *body, const char *name, double lo, double hi, bool integral, double *out,
                    serve_err *e) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, name);
    if (!v || cJSON_IsNull(v)) return true;
    if (!cJSON_IsNumber(v))
        return bad(e, name, "'%s' must be %s, got %s", name, integral ? "an integer" : "a number",
                   cJSON_IsString(v)     ? "a string"
                       : cJSON_IsBool(v) ? "a boolean"
                                         : "another type");
    double x = v->valuedouble;
    /* beyond +-9.2e18 every double is an integer (and the cast to int64_t would be undefined):
     * the range check below answers for those, and for the infinities of 1e999 */
    if (integral && x > -9.2e18 && x < 9.2e18 && x != (double)(int64_t)x)
        return bad(e, name, "'%s' must be an integer", name);
    if (!(x >= lo && x <= hi)) return bad(e, name, "'%s' must be in [%g, %g], got %g", name, lo, hi, x);
    *out = x;
    return true;
}

static bool get_bool(const cJSON *body, const char *name, bool *out, serve_err *e) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, name);
    if (!v || cJSON_IsNull(v)) return true;
    if (!cJSON_IsBool(v)) return bad(e, name, "'%s' must be a boolean", name);
    *out = cJSON_IsTrue(v);
    return true;
}

static char *dup_or_oom(const char *s, serve_err *e) {
    char *d = strdup(s);
    if (!d) bad(e, NULL, "out of memory");
    return d;
}

/* A message's content: a string, or an array of {"type": "text", "text": ...} parts. */
static char *content_text(const cJSON *c, serve_err *e, int i) {
    if (cJSON_IsString(c)) return dup_or_oom(c->valuestring, e);
    if (cJSON_IsNull(c)) return dup_or_oom("", e);
    if (!cJSON_IsArray(c)) {
        bad(e, "messages", "messages[%d].content must be a string or an array of text parts", i);
        return NULL;
    }
    size_t len = 0;
    char *out = calloc(1, 1);
    if (!out) {
        bad(e, NULL, "out of memory");
        return NULL;
    }
    const cJSON *p;
    cJSON_ArrayForEach(p, c) {
        const cJSON *ty = cJSON_GetObjectItemCaseSensitive(p, "type");
        const cJSON *tx = cJSON_GetObjectItemCaseSensitive(p, "text");
        if (!cJSON_IsString(ty) || strcmp(ty->valuestring, "text") || !cJSON_IsString(tx)) {
            free(out);
            bad(e, "messages", "messages[%d].content: only parts of type \"text\" are supported", i);
            return NULL;
        }
        size_t n = strlen(tx->valuestring);
        char *t = realloc(out, len + n + 1);
        if (!t) {
            free(out);
            bad(e, NULL, "out of memory");
            return NULL;
        }
        out = t;
        memcpy(out + len, tx->valuestring, n + 1);
        len += n;
    }
    return out;
}

static bool parse_messages(const cJSON *v, serve_req *q, serve_err *e) {
    if (!v) return bad(e, "messages", "'messages' is required");
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) == 0)
        return bad(e, "messages", "'messages' must be a non-empty array");
    int n = cJSON_GetArraySize(v);
    q->msgs = calloc((size_t)n, sizeof *q->msgs);
    if (!q->msgs) return bad(e, NULL, "out of memory");
    const cJSON *m;
    int i = 0;
    cJSON_ArrayForEach(m, v) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        if (!cJSON_IsObject(m) || !cJSON_IsString(role))
            return bad(e, "messages", "messages[%d] must be an object with a string 'role'", i);
        char *content = content_text(cJSON_GetObjectItemCaseSensitive(m, "content"), e, i);
        if (!content) return false;
        q->msgs[i].role = strdup(role->valuestring);
        q->msgs[i].content = content;
        q->n_msgs = ++i;
        if (!q->msgs[i - 1].role) return bad(e, NULL, "out of memory");
    }
    return true;
}

static bool add_stop(serve_req *q, const char *s, serve_err *e) {
    char *d = dup_or_oom(s, e);
    if (!d) return false;
    q->stops[q->n_stops++] = d;
    return true;
}

bool serve_parse_request(const cJSON *body, uint64_t seed, serve_req *q, serve_err *e) {
    if (!cJSON_IsObject(body)) return bad(e, NULL, "the request body must be a JSON object");
    const cJSON *v;
    if (q->chat) {
        if (!parse_messages(cJSON_GetObjectItemCaseSensitive(body, "messages"), q, e)) return false;
    } else {
        v = cJSON_GetObjectItemCaseSensitive(body, "prompt");
        if (!v) return bad(e, "prompt", "'prompt' is required");
        if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 1 && cJSON_IsString(cJSON_GetArrayItem(v, 0)))
            v = cJSON_GetArrayItem(v, 0);
        if (!cJSON_IsString(v))
            return bad(e, "prompt", "'prompt' must be a string (or an array of one string)");
        if (!(q->prompt = dup_or_oom(v->valuestring, e))) return false;
    }
    v = cJSON_GetObjectItemCaseSensitive(body, "model");
    if (v && !cJSON_IsString(v) && !cJSON_IsNull(v)) return bad(e, "model", "'model' must be a string");
    double x = -1;
    if (!get_num(body, "max_tokens", 0, 1e9, true, &x, e)) return false;
    if (!get_num(body, "max_completion_tokens", 0, 1e9, true, &x, e)) return false;
    q->max_tokens = (int64_t)x;
    x = 1;
    if (!get_num(body, "n", 1, 1, true, &x, e)) return false;
    awq_sampler_params sp = awq_sampler_params_default();
    sp.temperature = 1.0f; /* OpenAI defaults: temperature 1, top_p 1, no top-k */
    sp.top_k = 0;
    sp.top_p = 1.0f;
    sp.seed = seed;
    x = sp.temperature;
    if (!get_num(body, "temperature", 0, 2, false, &x, e)) return false;
    sp.temperature = (float)x;
    x = sp.top_p;
    if (!get_num(body, "top_p", 0, 1, false, &x, e)) return false;
    sp.top_p = (float)x;
    x = 0;
    if (!get_num(body, "top_k", 0, 1 << 24, true, &x, e)) return false;
    sp.top_k = (int32_t)x;
    x = 0;
    if (!get_num(body, "min_p", 0, 1, false, &x, e)) return false;
    sp.min_p = (float)x;
    x = 0;
    if (!get_num(body, "presence_penalty", -2, 2, false, &x, e)) return false;
    sp.presence_penalty = (float)x;
    x = 0;
    if (!get_num(body, "frequency_penalty", -2, 2, false, &x, e)) return false;
    sp.frequency_penalty = (float)x;
    x = 1;
    if (!get_num(body, "repeat_penalty", 0.01, 100, false, &x, e) ||
        !get_num(body, "repetition_penalty", 0.01, 100, false, &x, e))
        return false;
    sp.repeat_penalty = (float)x;
    x = -1;
    if (!get_num(body, "seed", -9.2e18, 9.2e18, true, &x, e)) return false;
    if (x != -1) sp.seed = (uint64_t)(int64_t)x;
    q->sp = sp;
    if (!get_bool(body, "stream", &q->stream, e) || !get_bool(body, "ignore_eos", &q->ignore_eos, e))
        return false;
    v = cJSON_GetObjectItemCaseSensitive(body, "stream_options");
    if (v && !cJSON_IsNull(v)) {
        if (!cJSON_IsObject(v)) return bad(e, "stream_options", "'stream_options' must be an object");
        if (!get_bool(v, "include_usage", &q->include_usage, e)) return false;
    }
    v = cJSON_GetObjectItemCaseSensitive(body, "stop");
    if (cJSON_IsString(v)) {
        if (!add_stop(q, v->valuestring, e)) return false;
    } else if (cJSON_IsArray(v)) {
        if (cJSON_GetArraySize(v) > SERVE_MAX_STOPS)
            return bad(e, "stop", "'stop' takes at most %d strings", SERVE_MAX_STOPS);
        const cJSON *s;
        cJSON_ArrayForEach(s, v) {
            if (!cJSON_IsString(s)) return bad(e, "stop", "'stop' must be a string or an array of strings");
            if (!add_stop(q, s->valuestring, e)) return false;
        }
    } else if (v && !cJSON_IsNull(v)) {
        return bad(e, "stop", "'stop' must be a string or an array of strings");
    }
    bool lp = false;
    if (!get_bool(body, "logprobs", &lp, e)) return false;
    if (lp) return bad(e, "logprobs", "'logprobs' is not supported");
    return true;
}
