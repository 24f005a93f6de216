/*
 * tok_json.c - loading Hugging Face tokenizer.json (+ tokenizer_config.json).
 *
 * Supported: model BPE (byte_fallback, ignore_merges, fuse_unk, unk_token); normalizers NFC,
 * NFKC, NFD, NFKD, Prepend, Replace (String or Regex), Lowercase, Strip, Sequence; pre-tokenizers
 * Split, ByteLevel, Digits, Metaspace, Whitespace, WhitespaceSplit, Sequence; decoders ByteLevel,
 * Metaspace, Replace, ByteFallback, Fuse, Strip, Sequence; post-processors TemplateProcessing,
 * ByteLevel, Sequence. Anything else is AWQ_ERR_UNSUPPORTED naming the field and the type.
 *
 * BOS/EOS: the post-processor's template gives the ids added around a text; when
 * tokenizer_config.json has add_bos_token / add_eos_token it decides instead (the way
 * transformers' Llama tokenizers rebuild their post-processor from those flags).
 */
#include <stdio.h>
#include <string.h>

#include "json.h"
#include "tokenizer.h"
#include "tok_internal.h"

typedef struct jctx {
    awq_tokenizer *t;
    const char *path;
} jctx;

static awq_status ferr(jctx *c, awq_status st, const char *field, const char *msg, const char *arg) {
    return awq_set_error(c->t->rt, st, "%s: %s: %s%s%s%s", c->path, field, msg, arg ? " '" : "",
                         arg ? arg : "", arg ? "'" : "");
}

static bool jbool(const cJSON *o, const char *k, bool def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : def;
}

static const char *jstr(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const char *jtype(const cJSON *o) { return jstr(o, "type"); }

/* {"String": s} or {"Regex": r}: returns the string and whether it is a regex. */
static awq_status jpattern(jctx *c, const cJSON *o, const char *field, const char **s, bool *regex) {
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "pattern");
    const char *v;
    if (cJSON_IsObject(p) && (v = jstr(p, "String"))) {
        *s = v;
        *regex = false;
        return AWQ_OK;
    }
    if (cJSON_IsObject(p) && (v = jstr(p, "Regex"))) {
        *s = v;
        *regex = true;
        return AWQ_OK;
    }
    return ferr(c, AWQ_ERR_FORMAT, field, "expected pattern {\"String\": ...} or {\"Regex\": ...}", NULL);
}

/* ---- normalizers ---------------------------------------------------------------------------- */

static awq_status parse_normalizer(jctx *c, const cJSON *o, const char *field) {
    awq_tokenizer *t = c->t;
    if (!o || cJSON_IsNull(o)) return AWQ_OK;
    const char *ty = jtype(o);
    if (!ty) return ferr(c, AWQ_ERR_FORMAT, field, "missing 'type'", NULL);
    if (!strcmp(ty, "Sequence")) {
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(o, "normalizers");
        if (!cJSON_IsArray(arr))
            return ferr(c, AWQ_ERR_FORMAT, field, "Sequence without 'normalizers'", NULL);
        const cJSON *e;
        cJSON_ArrayForEach(e, arr) {
            awq_status st = parse_normalizer(c, e, field);
            if (st != AWQ_OK) return st;
        }
        return AWQ_OK;
    }
    if (t->n_norm >= TOK_MAX_PIPE) return ferr(c, AWQ_ERR_UNSUPPORTED, field, "too many normalizers", NULL);
    tok_norm *n = &t->norm[t->n_norm];
    memset(n, 0, sizeof *n);
    if (!strcmp(ty, "NFC"))
        n->kind = TOK_NORM_NFC;
    else if (!strcmp(ty, "NFKC"))
        n->kind = TOK_NORM_NFKC;
    else if (!strcmp(ty, "NFD"))
        n->kind = TOK_NORM_NFD;
    else if (!strcmp(ty, "NFKD"))
        n->kind = TOK_NORM_NFKD;
    else if (!strcmp(ty, "Lowercase"))
        n->kind = TOK_NORM_LOWERCASE;
    else if (!strcmp(ty, "Strip")) {
        n->kind = TOK_NORM_STRIP;
        n->left = jbool(o, "strip_left", true);
        n->right = jbool(o, "strip_right", true);
    } else if (!strcmp(ty, "Prepend")) {
        const char *p = jstr(o, "prepend");
        if (!p) return ferr(c, AWQ_ERR_FORMAT, field, "Prepend without 'prepend'", NULL);
        n->kind = TOK_NORM_PREPEND;
        n->a = awq_strdup(p);
    } else if (!strcmp(ty, "Replace")) {
        const char *pat, *content = jstr(o, "content");
        bool regex;
        awq_status st = jpattern(c, o, field, &pat, &regex);
        if (st != AWQ_OK) return st;
        if (!content) return ferr(c, AWQ_ERR_FORMAT, field, "Replace without 'content'", NULL);
        if (regex && (st = tok_compile_regex(t, field, pat, &n->re)) != AWQ_OK) return st;
        n->kind = TOK_NORM_REPLACE;
        n->a = awq_strdup(pat);
        n->b = awq_strdup(content);
        if (!n->b) {
            awq_free(n->a);
            n->a = NULL;
        }
        if (!n->a) {
            pcre2_code_free(n->re);
            n->re = NULL;
        }
    } else {
        return ferr(c, AWQ_ERR_UNSUPPORTED, field, "unsupported normalizer type", ty);
    }
    if ((n->kind == TOK_NORM_PREPEND || n->kind == TOK_NORM_REPLACE) && !n->a)
        return awq_set_error(t->rt, AWQ_ERR_OUT_OF_MEMORY, "%s", c->path);
    t->n_norm++;
    return AWQ_OK;
}

/* ---- pre-tokenizers ------------------------------------------------------------------------- */

static awq_status parse_behavior(jctx *c, const char *s, const char *field, tok_split_behavior *b) {
    if (!s || !strcmp(s, "Isolated"))
        *b = TOK_SPLIT_ISOLATED;
    else if (!strcmp(s, "Removed"))
        *b = TOK_SPLIT_REMOVED;
    else if (!strcmp(s, "MergedWithPrevious"))
        *b = TOK_SPLIT_MERGED_PREV;
    else if (!strcmp(s, "MergedWithNext"))
        *b = TOK_SPLIT_MERGED_NEXT;
    else if (!strcmp(s, "Contiguous"))
        *b = TOK_SPLIT_CONTIGUOUS;
    else
        return ferr(c, AWQ_ERR_UNSUPPORTED, field, "unknown split behavior", s);
    return AWQ_OK;
}

static awq_status parse_prepend_scheme(jctx *c, const cJSON *o, const char *field, int *out) {
    const char *s = jstr(o, "prepend_scheme");
    if (!s) { /* older files: add_prefix_space */
        *out = jbool(o, "add_prefix_space", true) ? TOK_PREPEND_ALWAYS : TOK_PREPEND_NEVER;
        return AWQ_OK;
    }
    if (!strcmp(s, "always"))
        *out = TOK_PREPEND_ALWAYS;
    else if (!strcmp(s, "first"))
        *out = TOK_PREPEND_FIRST;
    else if (!strcmp(s, "never"))
        *out = TOK_PREPEND_NEVER;
    else
        return ferr(c, AWQ_ERR_FORMAT, field, "unknown prepend_scheme", s);
    return AWQ_OK;
}

static awq_status parse_pretokenizer(jctx *c, const cJSON *o, const char *field) {
    awq_tokenizer *t = c->t;
    if (!o || cJSON_IsNull(o)) return AWQ_OK;
    const char *ty = jtype(o);
    if (!ty) return ferr(c, AWQ_ERR_FORMAT, field, "missing 'type'", NULL);
    awq_status st;
    if (!strcmp(ty, "Sequence")) {
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(o, "pretokenizers");
        if (!cJSON_IsArray(arr))
            return ferr(c, AWQ_ERR_FORMAT, field, "Sequence without 'pretokenizers'", NULL);
        const cJSON *e;
        cJSON_ArrayForEach(e, arr) {
            if ((st = parse_pretokenizer(c, e, field)) != AWQ_OK) return st;
        }
        return AWQ_OK;
    }
    if (!strcmp(ty, "Split")) {
        const char *pat;
        bool regex;
        tok_split_behavior b = TOK_SPLIT_ISOLATED;
        if ((st = jpattern(c, o, field, &pat, &regex)) != AWQ_OK) return st;
        if ((st = parse_behavior(c, jstr(o, "behavior"), field, &b)) != AWQ_OK) return st;
        char *src = regex ? awq_strdup(pat) : tok_regex_escape(pat);
        if (!src) return awq_set_error(t->rt, AWQ_ERR_OUT_OF_MEMORY, "%s", c->path);
        st = tok_add_split(t, field, src, b, jbool(o, "invert", false), TOK_ORIGIN_SPLIT);
        awq_free(src);
        if (st != AWQ_OK) return st;
        tok_pre *p = &t->pre[t->n_pre - 1];
        p->pattern_is_regex = regex;
        if (!regex && !(p->literal = awq_strdup(pat)))
            return awq_set_error(t->rt, AWQ_ERR_OUT_OF_MEMORY, "%s", c->path);
        return AWQ_OK;
    }
    if (!strcmp(ty, "Digits")) {
        bool ind = jbool(o, "individual_digits", false);
        st =
            tok_add_split(t, field, ind ? "\\p{N}" : "\\p{N}+", TOK_SPLIT_ISOLATED, false, TOK_ORIGIN_DIGITS);
        if (st == AWQ_OK) t->pre[t->n_pre - 1].individual_digits = ind;
        return st;
    }
    if (!strcmp(ty, "WhitespaceSplit"))
        return tok_add_split(t, field, "\\s+", TOK_SPLIT_REMOVED, false, TOK_ORIGIN_WHITESPACE_SPLIT);
    if (!strcmp(ty, "Whitespace"))
        return tok_add_split(t, field, "\\w+|[^\\w\\s]+", TOK_SPLIT_REMOVED, true, TOK_ORIGIN_SPLIT);
    if (t->n_pre >= TOK_MAX_PIPE) return ferr(c, AWQ_ERR_UNSUPPORTED, field, "too many pre-tokenizers", NULL);
    tok_pre *p = &t->pre[t->n_pre];
    memset(p, 0, sizeof *p);
    if (!strcmp(ty, "ByteLevel")) {
        p->kind = TOK_PRE_BYTELEVEL;
        p->add_prefix_space = jbool(o, "add_prefix_space", true);
        t->n_pre++;
        t->byte_level = true;
        if (jbool(o, "use_regex", true))
            return tok_add_split(t, field, TOK_REGEX_GPT2, TOK_SPLIT_ISOLATED, false,
                                 TOK_ORIGIN_BYTELEVEL_REGEX);
        return AWQ_OK;
    }
    if (!strcmp(ty, "Metaspace")) {
        const char *r = jstr(o, "replacement");
        p->kind = TOK_PRE_METASPACE;
        if ((st = parse_prepend_scheme(c, o, field, &p->prepend_scheme)) != AWQ_OK) return st;
        p->split = jbool(o, "split", true);
        p->replacement = awq_strdup(r ? r : "\xE2\x96\x81");
        if (!p->replacement) return awq_set_error(t->rt, AWQ_ERR_OUT_OF_MEMORY, "%s", c->path);
        t->n_pre++;
        return AWQ_OK;
    }
    return ferr(c, AWQ_ERR_UNSUPPORTED, field, "unsupported pre-tokenizer type", ty);
}

/* ---- decoders ------------------------------------------------------------------------------- */

static awq_status parse_decoder(jctx *c, const cJSON *o, const char *field) {
    awq_tokenizer *t = c->t;
    if (!o || cJSON_IsNull(o)) return AWQ_OK;
    const char *ty = jtype(o);
    if (!ty) return ferr(c, AWQ_ERR_FORMAT, field, "missing 'type'", NULL);
    awq_status st;
    if (!strcmp(ty, "Sequence")) {
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(o, "decoders");
        if (!cJSON_IsArray(arr)) return ferr(c, AWQ_ERR_FORMAT, field, "Sequence without 'decoders'", NULL);
        const cJSON *e;
        cJSON_ArrayForEach(e, arr) {
            if ((st = parse_decoder(c, e, field)) != AWQ_OK) return st;
        }
        return AWQ_OK;
    }
    if (t->n_dec >= TOK_MAX_PIPE) return ferr(c, AWQ_ERR_UNSUPPORTED, field, "too many decoders", NULL);
    tok_dec *d = &t->decs[t->n_dec];
    memset(d, 0, sizeof *d);
    if (!strcmp(ty, "ByteLevel"))
        d->kind = TOK_DEC_BYTELEVEL;
    else if (!strcmp(ty, "ByteFallback"))
        d->kind = TOK_DEC_BYTEFALLBACK;
    else if (!strcmp(ty, "Fuse"))
        d->kind = TOK_DEC_FUSE;
    else if (!strcmp(ty, "Metaspace")) {
        const char *r = jstr(o, "replacement");
        d->kind = TOK_DEC_METASPACE;
        if ((st = parse_prepend_scheme(c, o, field, &d->prepend_scheme)) != AWQ_OK) return st;
        if (!(d->a = awq_strdup(r ? r : "\xE2\x96\x81")))
            return awq_set_error(t->rt, AWQ_ERR_OUT_OF_MEMORY, "%s", c->path);
    } else if (!strcmp(ty, "Replace")) {
        const char *pat, *content = jstr(o, "content");
        bool regex;
        if ((st = jpattern(c, o, field, &pat, &regex)) != AWQ_OK) return st;
        if (!content) return ferr(c, AWQ_ERR_FORMAT, field, "Replace without 'content'", NULL);
        if (regex && (st = tok_compile_regex(t, field, pat, &d->re)) != AWQ_OK) return st;
        d->kind = TOK_DEC_REPLACE;
        d->a = awq_strdup(pat);
        d->b = awq_strdup(content);
        t->n_dec++; /* counted before the check so destroy frees both */
        if (!d->a || !d->b) return awq_set_error(t->rt, AWQ_ERR_OUT_OF_MEMORY, "%s", c->path);
        return AWQ_OK;
    } else if (!strcmp(ty, "Strip")) {
        const char *content = jstr(o, "content");
        const cJSON *start = cJSON_GetObjectItemCaseSensitive(o, "start");
        const cJSON *stop = cJSON_GetObjectItemCaseSensitive(o, "stop");
        d->kind = TOK_DEC_STRIP;
        d->start = cJSON_IsNumber(start) ? (int)start->valuedouble : 0;
        d->stop = cJSON_IsNumber(stop) ? (int)stop->valuedouble : 0;
        if (!(d->a = awq_strdup(content ? content : " ")))
            return awq_set_error(t->rt, AWQ_ERR_OUT_OF_MEMORY, "%s", c->path);
    } else {
        return ferr(c, AWQ_ERR_UNSUPPORTED, field, "unsupported decoder type", ty);
    }
    t->n_dec++;
    return AWQ_OK;
}

/* ---- post-processor ------------------------------------------------------------------------- */

static awq_status template_ids(jctx *c, const cJSON *special, const char *name, int32_t *dst, int *n,
                               const char *field) {
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(special, name);
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(e, "ids");
    if (!cJSON_IsArray(ids)) return ferr(c, AWQ_ERR_FORMAT, field, "special_tokens has no ids for", name);
    const cJSON *v;
    cJSON_ArrayForEach(v, ids) {
        if (!cJSON_IsNumber(v) || *n >= 4)
            return ferr(c, AWQ_ERR_UNSUPPORTED, field, "bad or too many special token ids for", name);
        dst[(*n)++] = (int32_t)v->valuedouble;
    }
    return AWQ_OK;
}

static awq_status parse_post(jctx *c, const cJSON *o, const char *field) {
    awq_tokenizer *t = c->t;
    if (!o || cJSON_IsNull(o)) return AWQ_OK;
    const char *ty = jtype(o);
    if (!ty) return ferr(c, AWQ_ERR_FORMAT, field, "missing 'type'", NULL);
    if (!strcmp(ty, "Sequence")) {
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(o, "processors"), *e;
        if (!cJSON_IsArray(arr)) return ferr(c, AWQ_ERR_FORMAT, field, "Sequence without 'processors'", NULL);
        cJSON_ArrayForEach(e, arr) {
            awq_status st = parse_post(c, e, field);
            if (st != AWQ_OK) return st;
        }
        return AWQ_OK;
    }
    if (!strcmp(ty, "ByteLevel")) {
        t->has_bytelevel_post = true;
        return AWQ_OK;
    }
    if (strcmp(ty, "TemplateProcessing"))
        return ferr(c, AWQ_ERR_UNSUPPORTED, field, "unsupported post_processor type", ty);
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(o, "single");
    const cJSON *special = cJSON_GetObjectItemCaseSensitive(o, "special_tokens");
    if (!cJSON_IsArray(single))
        return ferr(c, AWQ_ERR_FORMAT, field, "TemplateProcessing without 'single'", NULL);
    bool after = false;
    const cJSON *e;
    t->n_prefix = t->n_suffix = 0;
    cJSON_ArrayForEach(e, single) {
        const cJSON *sp = cJSON_GetObjectItemCaseSensitive(e, "SpecialToken");
        if (cJSON_GetObjectItemCaseSensitive(e, "Sequence")) {
            after = true;
            continue;
        }
        const char *name = jstr(sp, "id");
        if (!name)
            return ferr(c, AWQ_ERR_FORMAT, field, "template item is neither Sequence nor SpecialToken", NULL);
        awq_status st = after ? template_ids(c, special, name, t->suffix_ids, &t->n_suffix, field)
                              : template_ids(c, special, name, t->prefix_ids, &t->n_prefix, field);
        if (st != AWQ_OK) return st;
    }
    return AWQ_OK;
}

/* ---- model ---------------------------------------------------------------------------------- */

static awq_status parse_added(jctx *c, const cJSON *arr, int32_t *max_id) {
    awq_tokenizer *t = c->t;
    if (!arr || cJSON_IsNull(arr)) return AWQ_OK;
    if (!cJSON_IsArray(arr)) return ferr(c, AWQ_ERR_FORMAT, "added_tokens", "expected an array", NULL);
    int n = cJSON_GetArraySize(arr);
    t->added = awq_calloc((size_t)(n ? n : 1), sizeof *t->added);
    if (!t->added) return awq_set_error(t->rt, AWQ_ERR_OUT_OF_MEMORY, "%s", c->path);
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
        const char *content = jstr(e, "content");
        char field[64];
        snprintf(field, sizeof field, "added_tokens[%d]", t->n_added);
        if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble >= (1 << 30))
            return ferr(c, AWQ_ERR_FORMAT, field, "'id' must be a non-negative integer", NULL);
        if (!content || !content[0])
            return ferr(c, AWQ_ERR_FORMAT, field, "'content' must be a non-empty string", NULL);
        tok_added *a = &t->added[t->n_added++];
        a->id = (int32_t)id->valuedouble;
        a->content = awq_strdup(content);
        if (!a->content) return awq_set_error(t->rt, AWQ_ERR_OUT_OF_MEMORY, "%s", c->path);
        a->len = strlen(content);
        a->special = jbool(e, "special", false);
        a->lstrip = jbool(e, "lstrip", false);
        a->rstrip = jbool(e, "rstrip", false);
        a->single_word = jbool(e, "single_word", false);
        a->normalized = jbool(e, "normalized", !a->special);
        if (a->id > *max_id) *max_id = a->id;
    }
    return AWQ_OK;
}

static awq_status parse_model(jctx *c, const cJSON *m, int32_t max_added, int32_t n_added) {
    awq_tokenizer *t = c->t;
    awq_status st;
    if (!cJSON_IsObject(m)) return ferr(c, AWQ_ERR_FORMAT, "model", "missing or not an object", NULL);
    const char *ty = jtype(m);
    if (ty && strcmp(ty, "BPE"))
        return ferr(c, AWQ_ERR_UNSUPPORTED, "model.type", "only BPE models are supported, got", ty);
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(m, "vocab");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(m, "merges");
    if (!cJSON_IsObject(vocab))
        return ferr(c, AWQ_ERR_FORMAT, "model.vocab", "missing or not an object", NULL);
    if (merges && !cJSON_IsArray(merges) && !cJSON_IsNull(merges))
        return ferr(c, AWQ_ERR_FORMAT, "model.merges", "not an array", NULL);
    const char *pre = jstr(m, "continuing_subword_prefix"), *suf = jstr(m, "end_of_word_suffix");
    if ((pre && pre[0]) || (suf && suf[0]))
        return ferr(c, AWQ_ERR_UNSUPPORTED, "model", "continuing_subword_prefix / end_of_word_suffix", NULL);
    int32_t max_id = max_added;
    const cJSON *e;
    cJSON_ArrayForEach(e, vocab) {
        if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble >= (1 << 30) ||
            e->valuedouble != (double)(int32_t)e->valuedouble)
            return ferr(c, AWQ_ERR_FORMAT, "model.vocab", "expected a non-negative integer id for",
                        e->string);
        if ((int32_t)e->valuedouble > max_id) max_id = (int32_t)e->valuedouble;
    }
    /* ids are dense in real tokenizers; a few sparse ones (up to 2^30) in a small file would make
     * the arrays below gigabytes (found by fuzz_tokenizer) */
    int64_t n_entries = (int64_t)cJSON_GetArraySize(vocab) + n_added;
    if ((int64_t)max_id >= 2 * n_entries + (1 << 20))
        return awq_set_error(t->rt, AWQ_ERR_FORMAT,
                             "%s: model.vocab: %lld tokens with ids up to %d: too sparse", c->path,
                             (long long)n_entries, (int)max_id);
    if ((st = tok_alloc_vocab(t, max_id + 1)) != AWQ_OK) return st;
    cJSON_ArrayForEach(e, vocab) {
        int32_t id = (int32_t)e->valuedouble;
        if ((st = tok_set_text(t, id, e->string, strlen(e->string))) != AWQ_OK) {
            awq_error_prefix(t->rt, "%s: model.vocab", c->path);
            return st;
        }
        t->in_model[id] = true;
        t->n_model_vocab++;
    }
    t->byte_fallback = jbool(m, "byte_fallback", false);
    t->ignore_merges = jbool(m, "ignore_merges", false);
    t->fuse_unk = jbool(m, "fuse_unk", false);
    const char *unk = jstr(m, "unk_token");
    if (unk) {
        t->unk_id = tok_smap_get(&t->text_map, unk, strlen(unk));
        if (t->unk_id < 0) return ferr(c, AWQ_ERR_FORMAT, "model.unk_token", "not in the vocabulary:", unk);
        t->unk_token = awq_strdup(unk);
    }
    if (!merges || cJSON_IsNull(merges)) return AWQ_OK;
    if (!tok_pmap_init(&t->merges, (size_t)cJSON_GetArraySize(merges)))
        return awq_set_error(t->rt, AWQ_ERR_OUT_OF_MEMORY, "%s: merges", c->path);
    int idx = 0;
    tok_buf cat = {0};
    cJSON_ArrayForEach(e, merges) {
        const char *a = NULL, *b = NULL;
        size_t al = 0, bl = 0;
        if (cJSON_IsString(e)) {
            const char *s = e->valuestring, *sp = s[0] ? strchr(s + 1, ' ') : NULL;
            if (sp) {
                a = s;
                al = (size_t)(sp - s);
                b = sp + 1;
                bl = strlen(b);
            }
        } else if (cJSON_IsArray(e) && cJSON_GetArraySize(e) == 2 && cJSON_IsString(e->child) &&
                   cJSON_IsString(e->child->next)) {
            a = e->child->valuestring;
            al = strlen(a);
            b = e->child->next->valuestring;
            bl = strlen(b);
        }
        char field[64];
        snprintf(field, sizeof field, "model.merges[%d]", idx);
        if (!a) {
            tok_buf_free(&cat);
            return ferr(c, AWQ_ERR_FORMAT, field, "expected \"left right\" or [left, right]", NULL);
        }
        int32_t l = tok_smap_get(&t->text_map, a, al), r = tok_smap_get(&t->text_map, b, bl);
        cat.n = 0;
        if (!tok_buf_append(&cat, a, al) || !tok_buf_append(&cat, b, bl)) {
            tok_buf_free(&cat);
            return awq_set_error(t->rt, AWQ_ERR_OUT_OF_MEMORY, "%s", c->path);
        }
        int32_t mid = tok_smap_get(&t->text_map, cat.p, cat.n);
        if (l < 0 || r < 0 || mid < 0) {
            awq_status s2 =
                awq_set_error(t->rt, AWQ_ERR_FORMAT, "%s: %s: '%.*s' + '%.*s': %s is not in model.vocab",
                              c->path, field, (int)al, a, (int)bl, b,
                              l < 0       ? "the left part"
                                  : r < 0 ? "the right part"
                                          : "the merged token");
            tok_buf_free(&cat);
            return s2;
        }
        if ((st = tok_add_merge_ids(t, l, r, mid)) != AWQ_OK) {
            tok_buf_free(&cat);
            return st;
        }
        idx++;
    }
    tok_buf_free(&cat);
    return AWQ_OK;
}

/* ---- tokenizer_config.json ------------------------------------------------------------------ */

/* A special token given as a string or as {"content": ...}. */
static const char *token_string(const cJSON *v) {
    if (cJSON_IsString(v)) return v->valuestring;
    if (cJSON_IsObject(v)) return jstr(v, "content");
    return NULL;
}

static int32_t lookup_token(const awq_tokenizer *t, const char *s) {
    return s ? tok_smap_get(&t->text_map, s, strlen(s)) : -1;
}

static void ids_remove(int32_t *ids, int *n, int32_t id) {
    int k = 0;
    for (int i = 0; i < *n; i++)
        if (ids[i] != id) ids[k++] = ids[i];
    *n = k;
}

static awq_status apply_config(awq_tokenizer *t, const char *path) {
    cJSON *cfg = NULL;
    awq_status st = awq_json_parse_file(t->rt, path, &cfg);
    if (st != AWQ_OK) return st;
    const char *bos = token_string(cJSON_GetObjectItemCaseSensitive(cfg, "bos_token"));
    const char *eos = token_string(cJSON_GetObjectItemCaseSensitive(cfg, "eos_token"));
    const char *pad = token_string(cJSON_GetObjectItemCaseSensitive(cfg, "pad_token"));
    if (bos && !(t->bos_token = awq_strdup(bos))) goto oom;
    if (eos && !(t->eos_token = awq_strdup(eos))) goto oom;
    if (pad && !(t->pad_token = awq_strdup(pad))) goto oom;
    if (bos) t->bos_id = lookup_token(t, bos);
    if (eos) t->eos_id = lookup_token(t, eos);
    if (pad) t->pad_id = lookup_token(t, pad);
    const cJSON *ab = cJSON_GetObjectItemCaseSensitive(cfg, "add_bos_token");
    const cJSON *ae = cJSON_GetObjectItemCaseSensitive(cfg, "add_eos_token");
    if (cJSON_IsBool(ab) && t->bos_id >= 0) {
        ids_remove(t->prefix_ids, &t->n_prefix, t->bos_id);
        if (cJSON_IsTrue(ab)) {
            memmove(t->prefix_ids + 1, t->prefix_ids, (size_t)t->n_prefix * sizeof(int32_t));
            t->prefix_ids[0] = t->bos_id;
            t->n_prefix++;
        }
    } else if (cJSON_IsBool(ab) && cJSON_IsTrue(ab)) {
        st = awq_set_error(t->rt, AWQ_ERR_FORMAT, "%s: add_bos_token is true but bos_token is %s", path,
                           bos ? "not in the vocabulary" : "not set");
        goto done;
    }
    if (cJSON_IsBool(ae) && t->eos_id >= 0) {
        ids_remove(t->suffix_ids, &t->n_suffix, t->eos_id);
        if (cJSON_IsTrue(ae) && t->n_suffix < 4) t->suffix_ids[t->n_suffix++] = t->eos_id;
    }
    t->split_special = jbool(cfg, "split_special_tokens", false);
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(cfg, "chat_template");
    const char *tmpl = NULL;
    if (cJSON_IsString(ct))
        tmpl = ct->valuestring;
    else if (cJSON_IsArray(ct)) { /* [{"name": "default", "template": ...}, ...] */
        const cJSON *e;
        cJSON_ArrayForEach(e, ct) {
            const char *name = jstr(e, "name");
            if (name && !strcmp(name, "default")) tmpl = jstr(e, "template");
        }
    }
    if (tmpl && !(t->chat_template = awq_strdup(tmpl))) goto oom;
    goto done;
oom:
    st = awq_set_error(t->rt, AWQ_ERR_OUT_OF_MEMORY, "%s", path);
done:
    cJSON_Delete(cfg);
    return st;
}

/* ---- entry points --------------------------------------------------------------------------- */

awq_status awq_tokenizer_load_files(awq_runtime *rt, const char *json_path, const char *config_path,
                                    awq_tokenizer **out) {
    if (!json_path || !out) return awq_set_error(rt, AWQ_ERR_INVALID_ARG, "tokenizer: no path");
    *out = NULL;
    cJSON *root = NULL;
    awq_status st = awq_json_parse_file(rt, json_path, &root);
    if (st != AWQ_OK) return st;
    awq_tokenizer *t = tok_new(rt);
    if (!t) {
        cJSON_Delete(root);
        return awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "%s", json_path);
    }
    jctx c = {.t = t, .path = json_path};
    int32_t max_added = -1;
    if (!cJSON_IsObject(root)) {
        st = ferr(&c, AWQ_ERR_FORMAT, "top level", "expected an object", NULL);
        goto fail;
    }
    if ((st = parse_added(&c, cJSON_GetObjectItemCaseSensitive(root, "added_tokens"), &max_added)) ||
        (st = parse_model(&c, cJSON_GetObjectItemCaseSensitive(root, "model"), max_added,
                          cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(root, "added_tokens")))) ||
        (st = parse_normalizer(&c, cJSON_GetObjectItemCaseSensitive(root, "normalizer"), "normalizer")) ||
        (st = parse_pretokenizer(&c, cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"),
                                 "pre_tokenizer")) ||
        (st = parse_decoder(&c, cJSON_GetObjectItemCaseSensitive(root, "decoder"), "decoder")) ||
        (st = parse_post(&c, cJSON_GetObjectItemCaseSensitive(root, "post_processor"), "post_processor")))
        goto fail;
    for (int i = 0; i < t->n_added; i++) {
        const tok_added *a = &t->added[i];
        if ((st = tok_set_text(t, a->id, a->content, a->len)) != AWQ_OK) {
            awq_error_prefix(rt, "%s: added_tokens", json_path);
            goto fail;
        }
    }
    /* template ids must exist; the first prefix token is taken as BOS, the last suffix as EOS */
    for (int i = 0; i < t->n_prefix + t->n_suffix; i++) {
        int32_t id = i < t->n_prefix ? t->prefix_ids[i] : t->suffix_ids[i - t->n_prefix];
        if (id < 0 || id >= t->n_vocab || !t->text[id]) {
            st = awq_set_error(rt, AWQ_ERR_FORMAT,
                               "%s: post_processor: special token id %d is not in the vocabulary", json_path,
                               id);
            goto fail;
        }
    }
    if (t->n_prefix) t->bos_id = t->prefix_ids[0];
    if (t->n_suffix) t->eos_id = t->suffix_ids[t->n_suffix - 1];
    if (config_path && awq_file_exists(config_path) && (st = apply_config(t, config_path)) != AWQ_OK)
        goto fail;
    if ((st = tok_finalize(t, json_path)) != AWQ_OK) goto fail;
    cJSON_Delete(root);
    *out = t;
    return AWQ_OK;
fail:
    cJSON_Delete(root);
    awq_tokenizer_destroy(t);
    return st;
}

/* generation_config.json's eos_token_id (an id or a list) marks more end-of-generation ids. */
static void apply_generation_config(awq_tokenizer *t, const char *path) {
    cJSON *g = NULL;
    if (!awq_file_exists(path) || awq_json_parse_file(t->rt, path, &g) != AWQ_OK) {
        awq_clear_error(t->rt);
        return;
    }
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(g, "eos_token_id"), *v;
    if (cJSON_IsNumber(e) && e->valuedouble >= 0 && e->valuedouble < t->n_vocab)
        t->flags[(int32_t)e->valuedouble] |= TOK_F_EOG;
    else if (cJSON_IsArray(e)) {
        cJSON_ArrayForEach(v, e) {
            if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < t->n_vocab)
                t->flags[(int32_t)v->valuedouble] |= TOK_F_EOG;
        }
    }
    cJSON_Delete(g);
}

/* Newer checkpoints keep the template beside tokenizer_config.json: chat_template.jinja (the
 * template text) or chat_template.json ({"chat_template": ...}). Used when the config has none. */
static awq_status load_template_file(awq_tokenizer *t, const char *model_dir) {
    char path[4096];
    char *text = NULL;
    size_t len = 0;
    awq_status st = AWQ_OK;
    if (awq_file_exists(awq_path_join(path, sizeof path, model_dir, "chat_template.jinja"))) {
        if ((st = awq_read_file(t->rt, path, &text, &len)) != AWQ_OK) return st;
        t->chat_template = text;
        return AWQ_OK;
    }
    if (!awq_file_exists(awq_path_join(path, sizeof path, model_dir, "chat_template.json"))) return AWQ_OK;
    cJSON *j = NULL;
    if ((st = awq_json_parse_file(t->rt, path, &j)) != AWQ_OK) return st;
    const char *tmpl = jstr(j, "chat_template");
    if (!tmpl)
        st = awq_set_error(t->rt, AWQ_ERR_FORMAT, "%s: 'chat_template': missing or not a string", path);
    else if (!(t->chat_template = awq_strdup(tmpl)))
        st = awq_set_error(t->rt, AWQ_ERR_OUT_OF_MEMORY, "%s", path);
    cJSON_Delete(j);
    return st;
}

awq_status awq_tokenizer_load(awq_tokenizer **out, awq_runtime *rt, const char *model_dir) {
    if (!out || !model_dir) return awq_set_error(rt, AWQ_ERR_INVALID_ARG, "tokenizer: no directory");
    size_t ml = strlen(model_dir);
    if (ml > 5 && !strcmp(model_dir + ml - 5, ".gguf") && awq_file_exists(model_dir)) {
        /* a GGUF file: its tokenizer.ggml.* vocabulary */
        awq_gguf *g = NULL;
        awq_status gs = awq_gguf_open(rt, model_dir, &g);
        if (gs == AWQ_OK) gs = awq_tokenizer_from_gguf(rt, g, out);
        awq_gguf_close(g);
        return gs;
    }
    char tj[4096], tc[4096], gc[4096];
    awq_path_join(tj, sizeof tj, model_dir, "tokenizer.json");
    awq_path_join(tc, sizeof tc, model_dir, "tokenizer_config.json");
    awq_path_join(gc, sizeof gc, model_dir, "generation_config.json");
    if (!awq_file_exists(tj))
        return awq_set_error(rt, AWQ_ERR_IO, "%s: missing (only tokenizer.json is supported)", tj);
    awq_status st = awq_tokenizer_load_files(rt, tj, tc, out);
    if (st != AWQ_OK) return st;
    apply_generation_config(*out, gc);
    if (!(*out)->chat_template && (st = load_template_file(*out, model_dir)) != AWQ_OK) {
        awq_tokenizer_destroy(*out);
        *out = NULL;
    }
    return st;
}
