/*
 * tok_write.c - awq_tokenizer_write_hf: an equivalent tokenizer.json + tokenizer_config.json,
 * loadable by our loader and by Hugging Face `tokenizers` / transformers with identical ids.
 * The pipeline is written from the internal representation (so a GGUF vocabulary and a loaded
 * tokenizer.json go through the same code): BPE model with vocab and merges, added tokens,
 * normalizers, pre-tokenizers (regex splits written as Split{Regex}), decoders, and a
 * TemplateProcessing post-processor for BOS/EOS.
 */
#include <stdio.h>
#include <string.h>

#include "json.h"
#include "tok_internal.h"
#include "tokenizer.h"

static cJSON *obj_type(const char *type) {
    cJSON *o = cJSON_CreateObject();
    if (o) cJSON_AddStringToObject(o, "type", type);
    return o;
}

static cJSON *pattern(const char *key, const char *val) {
    cJSON *p = cJSON_CreateObject();
    if (p) cJSON_AddStringToObject(p, key, val);
    return p;
}

static cJSON *seq(const char *field, cJSON *arr) {
    if (cJSON_GetArraySize(arr) == 1) { /* a single element needs no Sequence */
        cJSON *one = cJSON_DetachItemFromArray(arr, 0);
        cJSON_Delete(arr);
        return one;
    }
    if (cJSON_GetArraySize(arr) == 0) {
        cJSON_Delete(arr);
        return cJSON_CreateNull();
    }
    cJSON *s = obj_type("Sequence");
    cJSON_AddItemToObject(s, field, arr);
    return s;
}

static const char *scheme_name(int s) {
    return s == TOK_PREPEND_ALWAYS ? "always" : s == TOK_PREPEND_FIRST ? "first" : "never";
}

static cJSON *normalizers(const awq_tokenizer *t) {
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < t->n_norm; i++) {
        const tok_norm *n = &t->norm[i];
        static const char *const names[] = {"NFC",     "NFKC",    "NFD",       "NFKD",
                                            "Prepend", "Replace", "Lowercase", "Strip"};
        cJSON *o = obj_type(names[n->kind]);
        if (n->kind == TOK_NORM_PREPEND) cJSON_AddStringToObject(o, "prepend", n->a);
        if (n->kind == TOK_NORM_REPLACE) {
            cJSON_AddItemToObject(o, "pattern", pattern(n->re ? "Regex" : "String", n->a));
            cJSON_AddStringToObject(o, "content", n->b);
        }
        if (n->kind == TOK_NORM_STRIP) {
            cJSON_AddBoolToObject(o, "strip_left", n->left);
            cJSON_AddBoolToObject(o, "strip_right", n->right);
        }
        cJSON_AddItemToArray(arr, o);
    }
    return seq("normalizers", arr);
}

static cJSON *pretokenizers(const awq_tokenizer *t) {
    cJSON *arr = cJSON_CreateArray();
    static const char *const behaviors[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext",
                                            "Contiguous"};
    for (int i = 0; i < t->n_pre; i++) {
        const tok_pre *p = &t->pre[i];
        cJSON *o = NULL;
        if (p->kind == TOK_PRE_BYTELEVEL) {
            /* ByteLevel's own regex follows it as a split of origin BYTELEVEL_REGEX */
            bool use_regex = i + 1 < t->n_pre && t->pre[i + 1].kind == TOK_PRE_SPLIT &&
                t->pre[i + 1].origin == TOK_ORIGIN_BYTELEVEL_REGEX;
            o = obj_type("ByteLevel");
            cJSON_AddBoolToObject(o, "add_prefix_space", p->add_prefix_space);
            cJSON_AddBoolToObject(o, "trim_offsets", true);
            cJSON_AddBoolToObject(o, "use_regex", use_regex);
            if (use_regex) i++;
        } else if (p->kind == TOK_PRE_METASPACE) {
            o = obj_type("Metaspace");
            cJSON_AddStringToObject(o, "replacement", p->replacement);
            cJSON_AddStringToObject(o, "prepend_scheme", scheme_name(p->prepend_scheme));
            cJSON_AddBoolToObject(o, "split", p->split);
        } else if (p->origin == TOK_ORIGIN_DIGITS) {
            o = obj_type("Digits");
            cJSON_AddBoolToObject(o, "individual_digits", p->individual_digits);
        } else if (p->origin == TOK_ORIGIN_WHITESPACE_SPLIT) {
            o = obj_type("WhitespaceSplit");
        } else {
            o = obj_type("Split");
            cJSON_AddItemToObject(o, "pattern",
                                  p->pattern_is_regex ? pattern("Regex", p->pattern)
                                                      : pattern("String", p->literal));
            cJSON_AddStringToObject(o, "behavior", behaviors[p->behavior]);
            cJSON_AddBoolToObject(o, "invert", p->invert);
        }
        cJSON_AddItemToArray(arr, o);
    }
    return seq("pretokenizers", arr);
}

static cJSON *decoders(const awq_tokenizer *t) {
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < t->n_dec; i++) {
        const tok_dec *d = &t->decs[i];
        static const char *const names[] = {"ByteLevel",    "Metaspace", "Replace",
                                            "ByteFallback", "Fuse",      "Strip"};
        cJSON *o = obj_type(names[d->kind]);
        if (d->kind == TOK_DEC_BYTELEVEL) {
            cJSON_AddBoolToObject(o, "add_prefix_space", true);
            cJSON_AddBoolToObject(o, "trim_offsets", true);
            cJSON_AddBoolToObject(o, "use_regex", true);
        } else if (d->kind == TOK_DEC_METASPACE) {
            cJSON_AddStringToObject(o, "replacement", d->a);
            cJSON_AddStringToObject(o, "prepend_scheme", scheme_name(d->prepend_scheme));
            cJSON_AddBoolToObject(o, "split", true);
        } else if (d->kind == TOK_DEC_REPLACE) {
            cJSON_AddItemToObject(o, "pattern", pattern(d->re ? "Regex" : "String", d->a));
            cJSON_AddStringToObject(o, "content", d->b);
        } else if (d->kind == TOK_DEC_STRIP) {
            cJSON_AddStringToObject(o, "content", d->a);
            cJSON_AddNumberToObject(o, "start", d->start);
            cJSON_AddNumberToObject(o, "stop", d->stop);
        }
        cJSON_AddItemToArray(arr, o);
    }
    return seq("decoders", arr);
}

static void add_template_items(cJSON *arr, const awq_tokenizer *t, const int32_t *ids, int n) {
    for (int i = 0; i < n; i++) {
        cJSON *it = cJSON_CreateObject(), *sp = cJSON_CreateObject();
        cJSON_AddStringToObject(sp, "id", t->text[ids[i]]);
        cJSON_AddNumberToObject(sp, "type_id", 0);
        cJSON_AddItemToObject(it, "SpecialToken", sp);
        cJSON_AddItemToArray(arr, it);
    }
}

static cJSON *post_processor(const awq_tokenizer *t) {
    cJSON *arr = cJSON_CreateArray();
    if (t->has_bytelevel_post) {
        cJSON *o = obj_type("ByteLevel");
        cJSON_AddBoolToObject(o, "add_prefix_space", true);
        cJSON_AddBoolToObject(o, "trim_offsets", false);
        cJSON_AddBoolToObject(o, "use_regex", true);
        cJSON_AddItemToArray(arr, o);
    }
    if (t->n_prefix || t->n_suffix) {
        cJSON *o = obj_type("TemplateProcessing");
        const char *parts[2] = {"single", "pair"};
        for (int k = 0; k < 2; k++) {
            cJSON *items = cJSON_CreateArray();
            add_template_items(items, t, t->prefix_ids, t->n_prefix);
            for (int s = 0; s <= k; s++) {
                cJSON *it = cJSON_CreateObject(), *sq = cJSON_CreateObject();
                cJSON_AddStringToObject(sq, "id", s ? "B" : "A");
                cJSON_AddNumberToObject(sq, "type_id", s);
                cJSON_AddItemToObject(it, "Sequence", sq);
                cJSON_AddItemToArray(items, it);
                if (s == 0 && k == 1) add_template_items(items, t, t->suffix_ids, t->n_suffix);
            }
            add_template_items(items, t, t->suffix_ids, t->n_suffix);
            cJSON_AddItemToObject(o, parts[k], items);
        }
        cJSON *sp = cJSON_CreateObject();
        for (int i = 0; i < t->n_prefix + t->n_suffix; i++) {
            int32_t id = i < t->n_prefix ? t->prefix_ids[i] : t->suffix_ids[i - t->n_prefix];
            if (cJSON_GetObjectItemCaseSensitive(sp, t->text[id])) continue;
            cJSON *e = cJSON_CreateObject(), *ids = cJSON_CreateArray(), *toks = cJSON_CreateArray();
            cJSON_AddStringToObject(e, "id", t->text[id]);
            cJSON_AddItemToArray(ids, cJSON_CreateNumber(id));
            cJSON_AddItemToArray(toks, cJSON_CreateString(t->text[id]));
            cJSON_AddItemToObject(e, "ids", ids);
            cJSON_AddItemToObject(e, "tokens", toks);
            cJSON_AddItemToObject(sp, t->text[id], e);
        }
        cJSON_AddItemToObject(o, "special_tokens", sp);
        cJSON_AddItemToArray(arr, o);
    }
    return seq("processors", arr);
}

static cJSON *model(const awq_tokenizer *t) {
    cJSON *m = obj_type("BPE");
    cJSON_AddNullToObject(m, "dropout");
    if (t->unk_id >= 0)
        cJSON_AddStringToObject(m, "unk_token", t->text[t->unk_id]);
    else
        cJSON_AddNullToObject(m, "unk_token");
    cJSON_AddNullToObject(m, "continuing_subword_prefix");
    cJSON_AddNullToObject(m, "end_of_word_suffix");
    cJSON_AddBoolToObject(m, "fuse_unk", t->fuse_unk);
    cJSON_AddBoolToObject(m, "byte_fallback", t->byte_fallback);
    cJSON_AddBoolToObject(m, "ignore_merges", t->ignore_merges);
    cJSON *vocab = cJSON_CreateObject();
    for (int32_t id = 0; id < t->n_vocab; id++) {
        if (!t->in_model[id] || !t->text[id]) continue;
        /* duplicated strings (possible in GGUF): the first id keeps the string */
        if (tok_smap_get(&t->text_map, t->text[id], t->text_len[id]) != id) continue;
        cJSON_AddItemToObject(vocab, t->text[id], cJSON_CreateNumber(id));
    }
    cJSON_AddItemToObject(m, "vocab", vocab);
    bool spaces = false; /* "a b" strings unless a token contains a space */
    for (int32_t i = 0; i < 2 * t->n_merges && !spaces; i++)
        spaces = memchr(t->text[t->merge_pairs[i]], ' ', t->text_len[t->merge_pairs[i]]) != NULL;
    cJSON *merges = cJSON_CreateArray();
    tok_buf b = {0};
    for (int32_t i = 0; i < t->n_merges; i++) {
        const char *l = t->text[t->merge_pairs[2 * i]], *r = t->text[t->merge_pairs[2 * i + 1]];
        if (spaces) {
            cJSON *pair = cJSON_CreateArray();
            cJSON_AddItemToArray(pair, cJSON_CreateString(l));
            cJSON_AddItemToArray(pair, cJSON_CreateString(r));
            cJSON_AddItemToArray(merges, pair);
        } else {
            b.n = 0;
            tok_buf_append(&b, l, strlen(l));
            tok_buf_putc(&b, ' ');
            tok_buf_append(&b, r, strlen(r));
            cJSON_AddItemToArray(merges, cJSON_CreateString(b.p ? b.p : ""));
        }
    }
    tok_buf_free(&b);
    cJSON_AddItemToObject(m, "merges", merges);
    return m;
}

static cJSON *added_tokens(const awq_tokenizer *t) {
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < t->n_added; i++) {
        const tok_added *a = &t->added[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "id", a->id);
        cJSON_AddStringToObject(o, "content", a->content);
        cJSON_AddBoolToObject(o, "single_word", a->single_word);
        cJSON_AddBoolToObject(o, "lstrip", a->lstrip);
        cJSON_AddBoolToObject(o, "rstrip", a->rstrip);
        cJSON_AddBoolToObject(o, "normalized", a->normalized);
        cJSON_AddBoolToObject(o, "special", a->special);
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

static bool prefix_has(const awq_tokenizer *t, int32_t id) {
    for (int i = 0; i < t->n_prefix; i++)
        if (t->prefix_ids[i] == id) return true;
    return false;
}

static bool suffix_has(const awq_tokenizer *t, int32_t id) {
    for (int i = 0; i < t->n_suffix; i++)
        if (t->suffix_ids[i] == id) return true;
    return false;
}

static cJSON *config(const awq_tokenizer *t) {
    cJSON *c = cJSON_CreateObject();
    cJSON_AddBoolToObject(c, "add_bos_token", t->bos_id >= 0 && prefix_has(t, t->bos_id));
    cJSON_AddBoolToObject(c, "add_eos_token", t->eos_id >= 0 && suffix_has(t, t->eos_id));
    const char *names[4] = {"bos_token", "eos_token", "pad_token", "unk_token"};
    int32_t ids[4] = {t->bos_id, t->eos_id, t->pad_id, t->unk_id};
    for (int i = 0; i < 4; i++) {
        if (ids[i] >= 0 && t->text[ids[i]])
            cJSON_AddStringToObject(c, names[i], t->text[ids[i]]);
        else
            cJSON_AddNullToObject(c, names[i]);
    }
    if (t->chat_template) cJSON_AddStringToObject(c, "chat_template", t->chat_template);
    cJSON_AddBoolToObject(c, "clean_up_tokenization_spaces", false);
    if (t->split_special) cJSON_AddBoolToObject(c, "split_special_tokens", true);
    /* legacy=false: transformers then leaves the SentencePiece pipeline as written */
    cJSON_AddBoolToObject(c, "legacy", false);
    cJSON_AddStringToObject(c, "tokenizer_class", "PreTrainedTokenizerFast");
    return c;
}

awq_status awq_tokenizer_write_hf(awq_runtime *rt, const awq_tokenizer *t, const char *dir) {
    if (!t || !dir) return awq_set_error(rt, AWQ_ERR_INVALID_ARG, "write_hf: no tokenizer or directory");
    if (!awq_dir_exists(dir)) return awq_set_error(rt, AWQ_ERR_IO, "%s: not a directory", dir);
    cJSON *root = cJSON_CreateObject();
    if (!root) return awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "write_hf");
    cJSON_AddStringToObject(root, "version", "1.0");
    cJSON_AddNullToObject(root, "truncation");
    cJSON_AddNullToObject(root, "padding");
    cJSON_AddItemToObject(root, "added_tokens", added_tokens(t));
    cJSON_AddItemToObject(root, "normalizer", normalizers(t));
    cJSON_AddItemToObject(root, "pre_tokenizer", pretokenizers(t));
    cJSON_AddItemToObject(root, "post_processor", post_processor(t));
    cJSON_AddItemToObject(root, "decoder", decoders(t));
    cJSON_AddItemToObject(root, "model", model(t));
    char path[4096];
    awq_status st = awq_json_write_file(rt, awq_path_join(path, sizeof path, dir, "tokenizer.json"), root);
    cJSON_Delete(root);
    if (st != AWQ_OK) return st;
    cJSON *cfg = config(t);
    if (!cfg) return awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "write_hf");
    st = awq_json_write_file(rt, awq_path_join(path, sizeof path, dir, "tokenizer_config.json"), cfg);
    cJSON_Delete(cfg);
    return st;
}
