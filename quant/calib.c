/* calib.c - calibration samples -> token blocks, AutoAWQ semantics (docs/algorithm.md 1.3). */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "dl.h"
#include "quant.h"

#ifndef AWQ_DATA_DIR
#define AWQ_DATA_DIR ""
#endif
#ifndef AWQ_SOURCE_DATA_DIR
#define AWQ_SOURCE_DATA_DIR ""
#endif
/* The data directory relative to libawq's own directory (docs/install.md). */
#ifndef AWQ_DATA_REL_LIB
#define AWQ_DATA_REL_LIB "../share/awq"
#endif
#ifndef AWQ_DATA_REL_BIN
#define AWQ_DATA_REL_BIN "../share/awq"
#endif

#define CALIB_FILE "/calibration/wiki.valid.raw"

static char relocated_path[4096];
static pthread_once_t relocated_once = PTHREAD_ONCE_INIT;

static void find_relocated(void) {
    char dir[4000];
    if (awq_dl_install_path(dir, sizeof dir, AWQ_DATA_REL_LIB, AWQ_DATA_REL_BIN) == 0)
        snprintf(relocated_path, sizeof relocated_path, "%s" CALIB_FILE, dir);
}

/* The installed corpus relative to libawq (a moved prefix), then the compile-time install
 * directory, then the source tree (a build that was never installed). */
const char *awq_calib_default_path(void) {
    static const char *const fixed[] = {
        AWQ_DATA_DIR CALIB_FILE,
        AWQ_SOURCE_DATA_DIR CALIB_FILE,
    };
    pthread_once(&relocated_once, find_relocated);
    if (relocated_path[0] && awq_file_exists(relocated_path)) return relocated_path;
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (awq_file_exists(fixed[i])) return fixed[i];
    return fixed[0];
}

typedef struct span {
    const char *p;
    size_t n;
    char *owned; /* decoded JSON text, or NULL */
} span;

/* Python str.strip(): ASCII whitespace at both ends. */
static span strip(span s) {
    while (s.n && isspace((unsigned char)s.p[0])) {
        s.p++;
        s.n--;
    }
    while (s.n && isspace((unsigned char)s.p[s.n - 1])) s.n--;
    return s;
}

static bool blank_line(const char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isspace((unsigned char)p[i])) return false;
    return true;
}

/* Splits text into blank-line separated paragraphs. */
static awq_status split_txt(awq_runtime *rt, const char *text, size_t len, span **out, int64_t *n) {
    int64_t cap = 1024, cnt = 0;
    span *v = awq_malloc((size_t)cap * sizeof *v);
    if (!v) return awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
    size_t i = 0, para = 0;
    bool in_para = false;
    while (i <= len) {
        size_t e = i;
        while (e < len && text[e] != '\n') e++;
        bool blank = blank_line(text + i, e - i);
        if (!blank && !in_para) {
            para = i;
            in_para = true;
        }
        if ((blank || e >= len) && in_para) {
            size_t end = blank ? i : e;
            if (cnt == cap) {
                span *nv = awq_realloc(v, (size_t)(cap *= 2) * sizeof *v);
                if (!nv) {
                    awq_free(v);
                    return awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
                }
                v = nv;
            }
            v[cnt++] = (span){text + para, end - para, NULL};
            in_para = false;
        }
        i = e + 1;
    }
    *out = v;
    *n = cnt;
    return AWQ_OK;
}

static awq_status split_jsonl(awq_runtime *rt, const char *path, const char *text, size_t len, span **out,
                              int64_t *n) {
    int64_t cap = 1024, cnt = 0, line = 0;
    span *v = awq_malloc((size_t)cap * sizeof *v);
    if (!v) return awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
    size_t i = 0;
    awq_status st = AWQ_OK;
    while (i < len) {
        size_t e = i;
        while (e < len && text[e] != '\n') e++;
        line++;
        if (!blank_line(text + i, e - i)) {
            cJSON *o = cJSON_ParseWithLength(text + i, e - i);
            const cJSON *t = o ? cJSON_GetObjectItemCaseSensitive(o, "text") : NULL;
            if (!o || !cJSON_IsObject(o) || !cJSON_IsString(t)) {
                st = awq_set_error(rt, AWQ_ERR_FORMAT, "%s: line %lld: %s", path, (long long)line,
                                   !o ? "not valid JSON" : "expected an object with a string field 'text'");
                cJSON_Delete(o);
                break;
            }
            if (cnt == cap) {
                span *nv = awq_realloc(v, (size_t)(cap *= 2) * sizeof *v);
                if (!nv) {
                    cJSON_Delete(o);
                    st = awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
                    break;
                }
                v = nv;
            }
            char *copy = awq_strdup(t->valuestring);
            cJSON_Delete(o);
            if (!copy) {
                st = awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
                break;
            }
            v[cnt++] = (span){copy, strlen(copy), copy};
        }
        i = e + 1;
    }
    if (st != AWQ_OK) {
        for (int64_t k = 0; k < cnt; k++) awq_free(v[k].owned);
        awq_free(v);
        return st;
    }
    *out = v;
    *n = cnt;
    return AWQ_OK;
}

/* splitmix64: the documented shuffle RNG for --seed. */
static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static bool ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

awq_status awq_calib_build(awq_runtime *rt, awq_tokenizer *tok, const char *path, int32_t n_samples,
                           int32_t seqlen, uint64_t seed, awq_calib *out) {
    memset(out, 0, sizeof *out);
    if (n_samples <= 0 || seqlen <= 0)
        return awq_set_error(rt, AWQ_ERR_INVALID_ARG, "calibration: samples and seqlen must be > 0");
    if (!path) path = awq_calib_default_path();
    char *text = NULL;
    size_t len = 0;
    awq_status st = awq_read_file(rt, path, &text, &len);
    if (st != AWQ_OK) return st;
    st = awq_calib_build_text(rt, tok, path, text, len, ends_with(path, ".jsonl"), n_samples, seqlen, seed,
                              out);
    awq_free(text);
    return st;
}

awq_status awq_calib_build_text(awq_runtime *rt, awq_tokenizer *tok, const char *path, const char *text,
                                size_t len, bool jsonl, int32_t n_samples, int32_t seqlen, uint64_t seed,
                                awq_calib *out) {
    memset(out, 0, sizeof *out);
    if (n_samples <= 0 || seqlen <= 0)
        return awq_set_error(rt, AWQ_ERR_INVALID_ARG, "calibration: samples and seqlen must be > 0");
    span *samples = NULL;
    int64_t n = 0;
    awq_status st =
        jsonl ? split_jsonl(rt, path, text, len, &samples, &n) : split_txt(rt, text, len, &samples, &n);
    if (st != AWQ_OK) return st;
    if (seed) {
        uint64_t s = seed;
        for (int64_t i = n - 1; i > 0; i--) {
            int64_t j = (int64_t)(splitmix64(&s) % (uint64_t)(i + 1));
            span t = samples[i];
            samples[i] = samples[j];
            samples[j] = t;
        }
    }
    int64_t cap = (int64_t)n_samples * seqlen;
    int32_t *all = awq_malloc((size_t)cap * sizeof *all);
    int32_t *ids = awq_malloc((size_t)(seqlen + 1) * sizeof *ids);
    if (!all || !ids) {
        st = awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    int64_t total = 0;
    for (int64_t i = 0; i < n && out->n_samples < n_samples; i++) {
        span s = strip(samples[i]);
        int64_t cnt = 0;
        /* Count first: long samples are skipped, never truncated. */
        st = awq_tokenizer_encode(tok, s.p, s.n, true, NULL, 0, &cnt);
        if (st != AWQ_OK) goto done;
        if (cnt > seqlen) {
            out->n_skipped++;
            continue;
        }
        if (cnt == 0) continue;
        st = awq_tokenizer_encode(tok, s.p, s.n, true, ids, seqlen + 1, &cnt);
        if (st != AWQ_OK) goto done;
        memcpy(all + total, ids, (size_t)cnt * sizeof *ids);
        total += cnt;
        out->n_samples++;
    }
    out->n_tokens = total;
    out->seqlen = seqlen;
    out->n_blocks = (int32_t)(total / seqlen);
    if (out->n_blocks == 0) {
        st = awq_set_error(rt, AWQ_ERR_INVALID_ARG,
                           "%s: calibration text too short: %d samples give %lld tokens, fewer than "
                           "one block of %d (use more text, more --calib-samples or a smaller "
                           "--calib-seqlen)",
                           path, out->n_samples, (long long)total, seqlen);
        goto done;
    }
    out->tokens = all;
    all = NULL;
done:
    for (int64_t i = 0; i < n; i++) awq_free(samples[i].owned);
    awq_free(samples);
    awq_free(all);
    awq_free(ids);
    return st;
}

void awq_calib_free(awq_calib *c) {
    if (!c) return;
    awq_free(c->tokens);
    memset(c, 0, sizeof *c);
}
