/*
 * tok_gguf.c - a tokenizer from GGUF vocabulary metadata (tokenizer.ggml.*), as llama.cpp
 * defines it:
 *   model "gpt2":  byte-level BPE with tokenizer.ggml.merges; the pre-tokenizer regexes follow
 *                  tokenizer.ggml.pre (llama.cpp's table: llama-bpe, qwen2, starcoder/smollm,
 *                  gpt-2, default, ...);
 *   model "llama": SentencePiece BPE: merges are derived from the scores (every split of a
 *                  normal token into two vocabulary tokens, ranked by the token's score), "▁"
 *                  for spaces with a prefix space when tokenizer.ggml.add_space_prefix (default
 *                  true), <0xXX> byte fallback.
 * Token types: 2 unknown and 3 control become special added tokens, 4 user-defined become
 * non-special added tokens (matched in text before BPE, as llama.cpp does).
 * Only the metadata fields of awq_gguf are read (no tensor data).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"
#include "tokenizer.h"

enum { GT_NORMAL = 1, GT_UNKNOWN = 2, GT_CONTROL = 3, GT_USER = 4, GT_UNUSED = 5, GT_BYTE = 6 };

static const awq_gguf_kv *gkv(const awq_gguf *g, const char *key) {
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (g->kv[i].key && !strcmp(g->kv[i].key, key)) return &g->kv[i];
    return NULL;
}

static bool gint(const awq_gguf_kv *kv, int64_t *out) {
    if (!kv) return false;
    switch (kv->type) {
    case AWQ_GGUF_UINT8:
    case AWQ_GGUF_UINT16:
    case AWQ_GGUF_UINT32:
    case AWQ_GGUF_UINT64: *out = (int64_t)kv->v.u64; return kv->v.u64 <= INT64_MAX;
    case AWQ_GGUF_INT8:
    case AWQ_GGUF_INT16:
    case AWQ_GGUF_INT32:
    case AWQ_GGUF_INT64: *out = kv->v.i64; return true;
    default: return false;
    }
}

/* A double as int64, saturated (a conversion out of range is undefined); NaN -> 0. */
static int64_t sat_i64(double v) {
    if (v != v) return 0;
    if (v >= 9223372036854775807.0) return INT64_MAX;
    if (v <= -9223372036854775808.0) return INT64_MIN;
    return (int64_t)v;
}

/* Element i of a numeric array as int64 / double (little-endian raw data). */
static bool arr_num(const awq_gguf_kv *kv, uint64_t i, int64_t *iv, double *fv) {
    const unsigned char *p = kv->arr_data;
    int64_t x = 0;
    double f = 0;
    switch (kv->arr_type) {
    case AWQ_GGUF_INT32: {
        int32_t v;
        memcpy(&v, p + 4 * i, 4);
        x = v;
        f = v;
        break;
    }
    case AWQ_GGUF_UINT32: {
        uint32_t v;
        memcpy(&v, p + 4 * i, 4);
        x = v;
        f = v;
        break;
    }
    case AWQ_GGUF_INT8: {
        int8_t v;
        memcpy(&v, p + i, 1);
        x = v;
        f = v;
        break;
    }
    case AWQ_GGUF_UINT8: {
        uint8_t v = p[i];
        x = v;
        f = v;
        break;
    }
    case AWQ_GGUF_INT16: {
        int16_t v;
        memcpy(&v, p + 2 * i, 2);
        x = v;
        f = v;
        break;
    }
    case AWQ_GGUF_UINT16: {
        uint16_t v;
        memcpy(&v, p + 2 * i, 2);
        x = v;
        f = v;
        break;
    }
    case AWQ_GGUF_INT64: {
        int64_t v;
        memcpy(&v, p + 8 * i, 8);
        x = v;
        f = (double)v;
        break;
    }
    case AWQ_GGUF_FLOAT32: {
        float v;
        memcpy(&v, p + 4 * i, 4);
        f = v;
        x = sat_i64(v);
        break;
    }
    case AWQ_GGUF_FLOAT64: {
        double v;
        memcpy(&v, p + 8 * i, 8);
        f = v;
        x = sat_i64(v);
        break;
    }
    default: return false;
    }
    if (iv) *iv = x;
    if (fv) *fv = f;
    return true;
}

static awq_status ferr(awq_tokenizer *t, const awq_gguf *g, const char *key, const char *msg) {
    return awq_set_error(t->rt, AWQ_ERR_FORMAT, "%s: '%s': %s", g->path ? g->path : "gguf", key, msg);
}

static bool in_list(const char *const *l, const char *s) {
    for (int i = 0; l[i]; i++)
        if (!strcmp(l[i], s)) return true;
    return false;
}

/* The pre-tokenizer llama.cpp uses for a tokenizer.ggml.pre value (each regex an Isolated
 * split, applied in order), then the byte-level mapping. */
static awq_status set_pre(awq_tokenizer *t, const awq_gguf *g, const char *pre) {
    static const char *const llama3[] = {"llama3",    "llama-v3",  "llama-bpe", "falcon3",
                                         "falcon-h1", "pixtral",   "midm-2.0",  "lfm2",
                                         "dbrx",      "smaug-bpe", NULL};
    static const char *const qwen2[] = {"qwen2", "deepseek-r1-qwen", "stablelm2", NULL};
    static const char *const starcoder[] = {"starcoder", "refact", "command-r", "smollm",
                                            "codeshell", "exaone", "minerva",   NULL};
    static const char *const gpt2[] = {"gpt-2",    "phi-2",      "jina-es",     "jina-de",
                                       "gigachat", "jina-v2-es", "jina-v2-de",  "mpt",
                                       "olmo",     "jais",       "roberta-bpe", NULL};
    const char *what = "tokenizer.ggml.pre";
    const char *res[4] = {NULL};
    if (in_list(llama3, pre)) {
        res[0] = TOK_REGEX_LLAMA3;
        t->ignore_merges = true;
    } else if (in_list(qwen2, pre))
        res[0] = TOK_REGEX_QWEN2;
    else if (in_list(starcoder, pre)) {
        res[0] = "\\p{N}";
        res[1] = TOK_REGEX_GPT2;
    } else if (in_list(gpt2, pre))
        res[0] = TOK_REGEX_GPT2;
    else if (!strcmp(pre, "default")) {
        res[0] = "[\\p{P}\\$\\+<=>\\^~\\|]+";
        res[1] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
        res[2] = "\\p{N}+";
        res[3] = "[0-9][0-9][0-9]";
    } else if (!strcmp(pre, "falcon")) {
        res[0] = "[\\p{P}\\$\\+<=>\\^~\\|`]+";
        res[1] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
        res[2] = "[0-9][0-9][0-9]";
    } else {
        return awq_set_error(t->rt, AWQ_ERR_UNSUPPORTED, "%s: '%s': pre-tokenizer '%s' is not supported",
                             g->path ? g->path : "gguf", what, pre);
    }
    for (int i = 0; i < 4 && res[i]; i++) {
        awq_status st = tok_add_split(t, what, res[i], TOK_SPLIT_ISOLATED, false, TOK_ORIGIN_SPLIT);
        if (st != AWQ_OK) return st;
    }
    tok_pre *p = &t->pre[t->n_pre++];
    memset(p, 0, sizeof *p);
    p->kind = TOK_PRE_BYTELEVEL;
    t->byte_level = true;
    t->has_bytelevel_post = true;
    tok_dec *d = &t->decs[t->n_dec++];
    memset(d, 0, sizeof *d);
    d->kind = TOK_DEC_BYTELEVEL;
    return AWQ_OK;
}

static awq_status gpt2_merges(awq_tokenizer *t, const awq_gguf *g) {
    const char *key = "tokenizer.ggml.merges";
    const awq_gguf_kv *kv = gkv(g, key);
    if (!kv || kv->type != AWQ_GGUF_ARRAY || kv->arr_type != AWQ_GGUF_STRING)
        return ferr(t, g, key, "missing or not an array of strings");
    if (kv->arr_n > INT32_MAX || !tok_pmap_init(&t->merges, (size_t)kv->arr_n))
        return ferr(t, g, key, "too many merges");
    tok_buf cat = {0};
    for (uint64_t i = 0; i < kv->arr_n; i++) {
        const char *s = kv->arr_str[i].ptr;
        size_t n = (size_t)kv->arr_str[i].len, sp = 1;
        while (sp < n && s[sp] != ' ') sp++;
        int32_t l = -1, r = -1, m = -1;
        if (sp < n) {
            l = tok_smap_get(&t->text_map, s, sp);
            r = tok_smap_get(&t->text_map, s + sp + 1, n - sp - 1);
            cat.n = 0;
            if (!tok_buf_append(&cat, s, sp) || !tok_buf_append(&cat, s + sp + 1, n - sp - 1)) {
                tok_buf_free(&cat);
                return awq_set_error(t->rt, AWQ_ERR_OUT_OF_MEMORY, "merges");
            }
            m = tok_smap_get(&t->text_map, cat.p, cat.n);
        }
        if (l < 0 || r < 0 || m < 0) {
            tok_buf_free(&cat);
            return awq_set_error(t->rt, AWQ_ERR_FORMAT, "%s: '%s'[%llu]: '%.*s': %s",
                                 g->path ? g->path : "gguf", key, (unsigned long long)i,
                                 (int)(n > 64 ? 64 : n), s,
                                 sp >= n ? "no space separator" : "a part or the result is not a token");
        }
        awq_status st = tok_add_merge_ids(t, l, r, m);
        if (st != AWQ_OK) {
            tok_buf_free(&cat);
            return st;
        }
    }
    tok_buf_free(&cat);
    return AWQ_OK;
}

typedef struct spm_merge {
    float score; /* of the merged token */
    int32_t merged, left, right;
    int32_t split; /* byte offset of the split */
} spm_merge;

static int spm_cmp(const void *pa, const void *pb) {
    const spm_merge *a = pa, *b = pb;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    if (a->merged != b->merged) return a->merged < b->merged ? -1 : 1;
    return (a->split > b->split) - (a->split < b->split);
}

/* SentencePiece BPE as merges: every split of a normal token into two vocabulary tokens,
 * ranked by the merged token's score (highest first), then id, then split position. */
static awq_status spm_merges(awq_tokenizer *t, const uint8_t *types) {
    size_t cap = 1024, n = 0;
    spm_merge *m = awq_malloc(cap * sizeof *m);
    if (!m) return awq_set_error(t->rt, AWQ_ERR_OUT_OF_MEMORY, "merges");
    for (int32_t id = 0; id < t->n_vocab; id++) {
        if (types[id] != GT_NORMAL || !t->text[id]) continue;
        const char *s = t->text[id];
        size_t len = t->text_len[id];
        for (size_t k = 1; k < len; k++) {
            if (((unsigned char)s[k] & 0xC0) == 0x80) continue; /* split at character boundaries */
            int32_t l = tok_smap_get(&t->text_map, s, k), r = tok_smap_get(&t->text_map, s + k, len - k);
            if (l < 0 || r < 0) continue;
            if (n == cap) {
                spm_merge *nm = awq_realloc(m, cap * 2 * sizeof *m);
                if (!nm) {
                    awq_free(m);
                    return awq_set_error(t->rt, AWQ_ERR_OUT_OF_MEMORY, "merges");
                }
                m = nm;
                cap *= 2;
            }
            m[n++] = (spm_merge){t->scores[id], id, l, r, (int32_t)k};
        }
    }
    qsort(m, n, sizeof *m, spm_cmp);
    awq_status st = AWQ_OK;
    if (!tok_pmap_init(&t->merges, n)) st = awq_set_error(t->rt, AWQ_ERR_OUT_OF_MEMORY, "merges");
    for (size_t i = 0; i < n && st == AWQ_OK; i++)
        st = tok_add_merge_ids(t, m[i].left, m[i].right, m[i].merged);
    awq_free(m);
    return st;
}

static awq_status spm_pipeline(awq_tokenizer *t) {
    const char *sp = "\xE2\x96\x81";
    t->byte_fallback = true;
    t->fuse_unk = true;
    if (t->add_space_prefix) {
        t->norm[t->n_norm] = (tok_norm){.kind = TOK_NORM_PREPEND, .a = awq_strdup(sp)};
        if (!t->norm[t->n_norm++].a) goto oom;
    }
    t->norm[t->n_norm] = (tok_norm){.kind = TOK_NORM_REPLACE, .a = awq_strdup(" "), .b = awq_strdup(sp)};
    if (!t->norm[t->n_norm].a || !t->norm[t->n_norm].b) {
        t->n_norm++;
        goto oom;
    }
    t->n_norm++;
    t->decs[t->n_dec] = (tok_dec){.kind = TOK_DEC_REPLACE, .a = awq_strdup(sp), .b = awq_strdup(" ")};
    if (!t->decs[t->n_dec].a || !t->decs[t->n_dec].b) {
        t->n_dec++;
        goto oom;
    }
    t->n_dec++;
    t->decs[t->n_dec++] = (tok_dec){.kind = TOK_DEC_BYTEFALLBACK};
    t->decs[t->n_dec++] = (tok_dec){.kind = TOK_DEC_FUSE};
    if (t->add_space_prefix) {
        t->decs[t->n_dec] = (tok_dec){.kind = TOK_DEC_STRIP, .a = awq_strdup(" "), .start = 1};
        if (!t->decs[t->n_dec++].a) goto oom;
    }
    return AWQ_OK;
oom:
    return awq_set_error(t->rt, AWQ_ERR_OUT_OF_MEMORY, "tokenizer");
}

static char *kv_string(const awq_gguf_kv *kv) {
    if (!kv || kv->type != AWQ_GGUF_STRING) return NULL;
    return awq_strndup(kv->v.str.ptr ? kv->v.str.ptr : "", (size_t)kv->v.str.len);
}

static awq_status from_gguf(awq_tokenizer *t, const awq_gguf *g) {
    awq_status st;
    const awq_gguf_kv *kv_model = gkv(g, "tokenizer.ggml.model");
    char *model = kv_string(kv_model);
    if (!model) return ferr(t, g, "tokenizer.ggml.model", "missing or not a string");
    bool spm = !strcmp(model, "llama"), bpe = !strcmp(model, "gpt2");
    if (!spm && !bpe) {
        st = awq_set_error(t->rt, AWQ_ERR_UNSUPPORTED,
                           "%s: 'tokenizer.ggml.model': '%s' is not supported (gpt2, llama)",
                           g->path ? g->path : "gguf", model);
        awq_free(model);
        return st;
    }
    awq_free(model);
    const awq_gguf_kv *tk = gkv(g, "tokenizer.ggml.tokens");
    if (!tk || tk->type != AWQ_GGUF_ARRAY || tk->arr_type != AWQ_GGUF_STRING || tk->arr_n == 0)
        return ferr(t, g, "tokenizer.ggml.tokens", "missing or not a non-empty array of strings");
    if (tk->arr_n > (1u << 30)) return ferr(t, g, "tokenizer.ggml.tokens", "too many tokens");
    if ((st = tok_alloc_vocab(t, (int32_t)tk->arr_n)) != AWQ_OK) return st;
    const awq_gguf_kv *ty = gkv(g, "tokenizer.ggml.token_type");
    if (ty && (ty->type != AWQ_GGUF_ARRAY || ty->arr_n != tk->arr_n))
        return ferr(t, g, "tokenizer.ggml.token_type", "not an array with one entry per token");
    const awq_gguf_kv *sc = gkv(g, "tokenizer.ggml.scores");
    if (sc && (sc->type != AWQ_GGUF_ARRAY || sc->arr_n != tk->arr_n))
        return ferr(t, g, "tokenizer.ggml.scores", "not an array with one entry per token");
    if (spm && !sc) return ferr(t, g, "tokenizer.ggml.scores", "missing (needed for a llama vocabulary)");
    uint8_t *types = awq_malloc((size_t)tk->arr_n);
    if (!types) return awq_set_error(t->rt, AWQ_ERR_OUT_OF_MEMORY, "tokenizer");
    if (sc && !(t->scores = awq_calloc((size_t)tk->arr_n, sizeof *t->scores))) {
        awq_free(types);
        return awq_set_error(t->rt, AWQ_ERR_OUT_OF_MEMORY, "tokenizer");
    }
    int n_added = 0;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        int64_t tv = GT_NORMAL;
        double sv = 0;
        if (ty && !arr_num(ty, (uint64_t)id, &tv, NULL)) {
            awq_free(types);
            return ferr(t, g, "tokenizer.ggml.token_type", "not an integer array");
        }
        if (sc && !arr_num(sc, (uint64_t)id, NULL, &sv)) {
            awq_free(types);
            return ferr(t, g, "tokenizer.ggml.scores", "not a numeric array");
        }
        /* a type outside llama.cpp's 1..6 is a normal token (and must not alias one of them
         * when narrowed: the added-token table below is sized by this count) */
        types[id] = tv >= 0 && tv <= 255 ? (uint8_t)tv : (uint8_t)GT_NORMAL;
        if (sc) t->scores[id] = (float)sv;
        n_added += types[id] == GT_UNKNOWN || types[id] == GT_CONTROL || types[id] == GT_USER;
        st = tok_set_text(t, id, tk->arr_str[id].ptr ? tk->arr_str[id].ptr : "", (size_t)tk->arr_str[id].len);
        if (st == AWQ_ERR_FORMAT) { /* a duplicate string: keep the first id for lookups */
            awq_clear_error(t->rt);
            st = AWQ_OK;
        }
        if (st != AWQ_OK) {
            awq_free(types);
            return st;
        }
        t->in_model[id] = true;
        t->n_model_vocab++;
    }
    /* added tokens */
    t->added = awq_calloc((size_t)(n_added ? n_added : 1), sizeof *t->added);
    if (!t->added) {
        awq_free(types);
        return awq_set_error(t->rt, AWQ_ERR_OUT_OF_MEMORY, "tokenizer");
    }
    for (int32_t id = 0; id < t->n_vocab; id++) {
        if (types[id] != GT_UNKNOWN && types[id] != GT_CONTROL && types[id] != GT_USER) continue;
        if (!t->text[id] || !t->text_len[id]) continue;
        tok_added *a = &t->added[t->n_added++];
        a->id = id;
        a->content = awq_strndup(t->text[id], t->text_len[id]); /* GGUF strings may hold NULs */
        a->len = t->text_len[id];
        a->special = types[id] != GT_USER;
        if (!a->content) {
            awq_free(types);
            return awq_set_error(t->rt, AWQ_ERR_OUT_OF_MEMORY, "tokenizer");
        }
    }
    /* special ids and flags */
    int64_t v;
    t->bos_id = gint(gkv(g, "tokenizer.ggml.bos_token_id"), &v) ? (int32_t)v : (spm ? 1 : -1);
    t->eos_id = gint(gkv(g, "tokenizer.ggml.eos_token_id"), &v) ? (int32_t)v : (spm ? 2 : -1);
    t->unk_id = gint(gkv(g, "tokenizer.ggml.unknown_token_id"), &v) ? (int32_t)v : (spm ? 0 : -1);
    t->pad_id = gint(gkv(g, "tokenizer.ggml.padding_token_id"), &v) ? (int32_t)v : -1;
    /* ids outside the vocabulary (or past int32 before the cast) mean "none" */
    int32_t *ids[4] = {&t->bos_id, &t->eos_id, &t->unk_id, &t->pad_id};
    static const char *const id_keys[4] = {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                                           "tokenizer.ggml.unknown_token_id",
                                           "tokenizer.ggml.padding_token_id"};
    for (int k = 0; k < 4; k++) {
        int64_t raw;
        if (gint(gkv(g, id_keys[k]), &raw) && (raw < 0 || raw >= t->n_vocab)) *ids[k] = -1;
        if (*ids[k] >= t->n_vocab) *ids[k] = -1;
    }
    if (!spm) t->unk_id = -1; /* byte-level BPE never needs <unk> */
    const awq_gguf_kv *ab = gkv(g, "tokenizer.ggml.add_bos_token");
    const awq_gguf_kv *ae = gkv(g, "tokenizer.ggml.add_eos_token");
    const awq_gguf_kv *asp = gkv(g, "tokenizer.ggml.add_space_prefix");
    char *pre = kv_string(gkv(g, "tokenizer.ggml.pre"));
    bool pre_llama3 =
        pre && (!strcmp(pre, "llama3") || !strcmp(pre, "llama-v3") || !strcmp(pre, "llama-bpe"));
    t->add_bos = ab && ab->type == AWQ_GGUF_BOOL ? ab->v.b : (spm || pre_llama3);
    t->add_eos = ae && ae->type == AWQ_GGUF_BOOL ? ae->v.b : false;
    t->add_space_prefix = asp && asp->type == AWQ_GGUF_BOOL ? asp->v.b : spm;
    if (t->add_bos && t->bos_id >= 0) t->prefix_ids[t->n_prefix++] = t->bos_id;
    if (t->add_eos && t->eos_id >= 0) t->suffix_ids[t->n_suffix++] = t->eos_id;
    if (t->bos_id >= 0 && !(t->bos_token = awq_strdup(t->text[t->bos_id]))) st = AWQ_ERR_OUT_OF_MEMORY;
    if (t->eos_id >= 0 && !(t->eos_token = awq_strdup(t->text[t->eos_id]))) st = AWQ_ERR_OUT_OF_MEMORY;
    if (t->pad_id >= 0 && !(t->pad_token = awq_strdup(t->text[t->pad_id]))) st = AWQ_ERR_OUT_OF_MEMORY;
    if (t->unk_id >= 0 && !(t->unk_token = awq_strdup(t->text[t->unk_id]))) st = AWQ_ERR_OUT_OF_MEMORY;
    t->chat_template = kv_string(gkv(g, "tokenizer.chat_template"));
    t->gguf_pre = pre;
    if (st != AWQ_OK) {
        awq_free(types);
        return awq_set_error(t->rt, st, "tokenizer");
    }
    if (spm) {
        st = spm_merges(t, types);
        if (st == AWQ_OK) st = spm_pipeline(t);
    } else {
        st = set_pre(t, g, pre ? pre : "default");
        if (st == AWQ_OK) st = gpt2_merges(t, g);
    }
    awq_free(types);
    return st;
}

awq_status awq_tokenizer_from_gguf(awq_runtime *rt, const awq_gguf *g, awq_tokenizer **out) {
    if (!g || !out) return awq_set_error(rt, AWQ_ERR_INVALID_ARG, "tokenizer: no GGUF");
    *out = NULL;
    awq_tokenizer *t = tok_new(rt);
    if (!t) return awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "tokenizer");
    awq_status st = from_gguf(t, g);
    if (st == AWQ_OK) st = tok_finalize(t, g->path ? g->path : "gguf");
    if (st != AWQ_OK) {
        awq_tokenizer_destroy(t);
        return st;
    }
    *out = t;
    return AWQ_OK;
}
