/* tok_vocab.c - building a tokenizer: vocabulary arrays, merges, regexes, finalization, destroy. */
#include <stdio.h>
#include <string.h>

#include "tok_internal.h"

awq_tokenizer *tok_new(awq_runtime *rt) {
    awq_tokenizer *t = awq_calloc(1, sizeof *t);
    if (!t) return NULL;
    t->rt = rt;
    t->bos_id = t->eos_id = t->pad_id = t->unk_id = -1;
    for (int i = 0; i < 256; i++) t->byte_id[i] = -1;
    return t;
}

awq_status tok_alloc_vocab(awq_tokenizer *t, int32_t n_vocab) {
    if (n_vocab <= 0 || n_vocab > (1 << 30))
        return awq_set_error(t->rt, AWQ_ERR_FORMAT, "vocabulary size %d out of range", n_vocab);
    size_t n = (size_t)n_vocab;
    t->n_vocab = n_vocab;
    t->text = awq_calloc(n, sizeof *t->text);
    t->text_len = awq_calloc(n, sizeof *t->text_len);
    t->dec = awq_calloc(n, sizeof *t->dec);
    t->dec_len = awq_calloc(n, sizeof *t->dec_len);
    t->flags = awq_calloc(n, sizeof *t->flags);
    t->in_model = awq_calloc(n, sizeof *t->in_model);
    t->key = awq_calloc(n, sizeof *t->key);
    t->key_len = awq_calloc(n, sizeof *t->key_len);
    if (!t->text || !t->text_len || !t->dec || !t->dec_len || !t->flags || !t->in_model || !t->key ||
        !t->key_len || !tok_smap_init(&t->text_map, n))
        return awq_set_error(t->rt, AWQ_ERR_OUT_OF_MEMORY, "tokenizer: %d tokens", n_vocab);
    return AWQ_OK;
}

awq_status tok_set_text(awq_tokenizer *t, int32_t id, const char *s, size_t len) {
    if (id < 0 || id >= t->n_vocab)
        return awq_set_error(t->rt, AWQ_ERR_FORMAT, "token id %d out of range [0, %d)", id, t->n_vocab);
    if (t->text[id]) {
        if (t->text_len[id] == len && memcmp(t->text[id], s, len) == 0) return AWQ_OK;
        return awq_set_error(t->rt, AWQ_ERR_FORMAT, "token id %d has two different strings ('%s' and '%.*s')",
                             id, t->text[id], (int)(len > 64 ? 64 : len), s);
    }
    if (len > UINT32_MAX) return awq_set_error(t->rt, AWQ_ERR_FORMAT, "token %d too long", id);
    t->text[id] = awq_strndup(s, len);
    if (!t->text[id]) return awq_set_error(t->rt, AWQ_ERR_OUT_OF_MEMORY, "token %d", id);
    t->text_len[id] = (uint32_t)len;
    if (!tok_smap_put(&t->text_map, t->text[id], len, id, NULL))
        return awq_set_error(t->rt, AWQ_ERR_OUT_OF_MEMORY, "token %d", id);
    return AWQ_OK;
}

awq_status tok_add_merge_ids(awq_tokenizer *t, int32_t left, int32_t right, int32_t merged) {
    if (!t->merges.slots && !tok_pmap_init(&t->merges, 1024))
        return awq_set_error(t->rt, AWQ_ERR_OUT_OF_MEMORY, "merges");
    if (t->n_merges == INT32_MAX) return awq_set_error(t->rt, AWQ_ERR_FORMAT, "too many merges");
    size_t n = (size_t)t->n_merges;
    if (n == t->merge_cap) {
        size_t cap = n ? n * 2 : 1024;
        int32_t *p = awq_realloc(t->merge_pairs, cap * 2 * sizeof *p);
        if (!p) return awq_set_error(t->rt, AWQ_ERR_OUT_OF_MEMORY, "merges");
        t->merge_pairs = p;
        t->merge_cap = cap;
    }
    t->merge_pairs[2 * n] = left;
    t->merge_pairs[2 * n + 1] = right;
    if (!tok_pmap_put(&t->merges, left, right, t->n_merges, merged))
        return awq_set_error(t->rt, AWQ_ERR_OUT_OF_MEMORY, "merges");
    t->n_merges++;
    return AWQ_OK;
}

awq_status tok_compile_regex(awq_tokenizer *t, const char *what, const char *pattern, pcre2_code **out) {
    int err = 0;
    PCRE2_SIZE off = 0;
    pcre2_code *re =
        pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &err, &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return awq_set_error(t->rt, AWQ_ERR_FORMAT, "%s: regex '%s' at offset %zu: %s", what, pattern,
                             (size_t)off, (const char *)msg);
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* best effort: the interpreter is the fallback */
    *out = re;
    return AWQ_OK;
}

bool tok_regex_replace(const pcre2_code *re, const char *s, size_t n, const char *rep, tok_buf *out) {
    out->n = 0;
    size_t cap = n + 64;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!tok_buf_reserve(out, cap)) return false;
        PCRE2_SIZE olen = out->cap;
        int rc = pcre2_substitute(re, (PCRE2_SPTR)(n ? s : ""), n, 0,
                                  PCRE2_SUBSTITUTE_GLOBAL | PCRE2_SUBSTITUTE_LITERAL |
                                      PCRE2_SUBSTITUTE_OVERFLOW_LENGTH | PCRE2_NO_UTF_CHECK,
                                  NULL, NULL, (PCRE2_SPTR)rep, PCRE2_ZERO_TERMINATED, (PCRE2_UCHAR *)out->p,
                                  &olen);
        if (rc >= 0) {
            out->n = olen;
            out->p[out->n] = '\0';
            return true;
        }
        if (rc != PCRE2_ERROR_NOMEMORY) return false;
        cap = olen + 1; /* the length pcre2 needs */
    }
    return false;
}

char *tok_regex_escape(const char *s) {
    size_t n = strlen(s);
    char *r = awq_malloc(n * 2 + 1);
    if (!r) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (strchr("\\^$.|?*+()[]{}-/#", s[i])) r[k++] = '\\';
        r[k++] = s[i];
    }
    r[k] = '\0';
    return r;
}

awq_status tok_add_split(awq_tokenizer *t, const char *what, const char *pattern, tok_split_behavior b,
                         bool invert, int origin) {
    if (t->n_pre >= TOK_MAX_PIPE)
        return awq_set_error(t->rt, AWQ_ERR_UNSUPPORTED, "%s: more than %d pre-tokenizers", what,
                             TOK_MAX_PIPE);
    tok_pre *p = &t->pre[t->n_pre];
    memset(p, 0, sizeof *p);
    p->kind = TOK_PRE_SPLIT;
    p->pattern = awq_strdup(pattern);
    p->pattern_is_regex = true;
    p->behavior = b;
    p->invert = invert;
    p->origin = origin;
    if (!p->pattern) return awq_set_error(t->rt, AWQ_ERR_OUT_OF_MEMORY, "%s", what);
    t->n_pre++; /* counted now so destroy frees the pattern even if compiling fails */
    return tok_compile_regex(t, what, pattern, &p->re);
}

static bool is_eog_text(const char *s) {
    static const char *const names[] = {"<|eot_id|>",
                                        "<|im_end|>",
                                        "<|end|>",
                                        "<|endoftext|>",
                                        "<|end_of_text|>",
                                        "<end_of_turn>",
                                        "<|eom_id|>",
                                        "</s>",
                                        "<|return|>",
                                        "<｜end▁of▁sentence｜>",
                                        NULL};
    for (int i = 0; names[i]; i++)
        if (strcmp(s, names[i]) == 0) return true;
    return false;
}

/* The BPE form of every model token: raw bytes for byte-level vocabularies (NULL if a string
 * uses characters outside GPT-2's alphabet: BPE can never produce it), the string otherwise. */
static awq_status build_keys(awq_tokenizer *t) {
    t->key_owned = t->byte_level;
    if (!tok_smap_init(&t->key_map, (size_t)t->n_vocab))
        return awq_set_error(t->rt, AWQ_ERR_OUT_OF_MEMORY, "tokenizer key map");
    for (int32_t id = 0; id < t->n_vocab; id++) {
        if (!t->text[id] || !t->in_model[id]) continue;
        if (!t->byte_level) {
            t->key[id] = t->text[id];
            t->key_len[id] = t->text_len[id];
        } else {
            const char *s = t->text[id];
            size_t n = t->text_len[id], i = 0, k = 0;
            char *raw = awq_malloc(n + 1);
            if (!raw) return awq_set_error(t->rt, AWQ_ERR_OUT_OF_MEMORY, "tokenizer keys");
            bool ok = true;
            while (i < n) {
                uint32_t cp;
                if (!tok_utf8_valid_len((const unsigned char *)s + i, n - i)) {
                    ok = false;
                    break;
                }
                i += tok_utf8_decode(s + i, n - i, &cp);
                int b = tok_cp_to_byte(cp);
                if (b < 0) {
                    ok = false;
                    break;
                }
                raw[k++] = (char)b;
            }
            if (!ok) {
                awq_free(raw);
                continue;
            }
            raw[k] = '\0';
            t->key[id] = raw;
            t->key_len[id] = (uint32_t)k;
        }
        if (!tok_smap_put(&t->key_map, t->key[id], t->key_len[id], id, NULL))
            return awq_set_error(t->rt, AWQ_ERR_OUT_OF_MEMORY, "tokenizer key map");
    }
    return AWQ_OK;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

awq_status tok_finalize(awq_tokenizer *t, const char *what) {
    awq_status st = build_keys(t);
    if (st != AWQ_OK) return st;
    for (int b = 0; b < 256; b++) {
        if (t->byte_level) {
            char c = (char)b;
            t->byte_id[b] = tok_smap_get(&t->key_map, &c, 1);
        } else {
            char name[8];
            snprintf(name, sizeof name, "<0x%02X>", b);
            t->byte_id[b] = tok_smap_get(&t->text_map, name, 6);
        }
    }
    if (t->byte_fallback) {
        for (int32_t id = 0; id < t->n_vocab; id++) {
            const char *s = t->text[id];
            if (s && t->text_len[id] == 6 && s[0] == '<' && s[1] == '0' && s[2] == 'x' && hexval(s[3]) >= 0 &&
                hexval(s[4]) >= 0 && s[5] == '>')
                t->flags[id] |= TOK_F_BYTE;
        }
    }
    /* SentencePiece: does "▁" only ever lead a token (see tok_bpe_piece)? */
    t->spm_ws_split = !t->byte_level && !t->ignore_merges; /* ignore_merges looks at whole words */
    for (int32_t id = 0; id < t->n_vocab && t->spm_ws_split; id++) {
        const char *s = t->key[id];
        size_t n = t->key_len[id], i = 0;
        if (!s) continue;
        while (i + 3 <= n && memcmp(s + i, "\xE2\x96\x81", 3) == 0) i += 3;
        for (; i + 3 <= n; i++)
            if (memcmp(s + i, "\xE2\x96\x81", 3) == 0) t->spm_ws_split = false;
    }
    memset(t->added_first, 0, sizeof t->added_first);
    for (int i = 0; i < t->n_added; i++) {
        const tok_added *a = &t->added[i];
        if (a->id < 0 || a->id >= t->n_vocab)
            return awq_set_error(t->rt, AWQ_ERR_FORMAT, "%s: added token '%s' id %d out of range", what,
                                 a->content, a->id);
        t->flags[a->id] |= TOK_F_ADDED | (a->special ? TOK_F_SPECIAL : 0);
        if (a->len) t->added_first[(unsigned char)a->content[0]] = 1;
        if (a->special && is_eog_text(a->content)) t->flags[a->id] |= TOK_F_EOG;
    }
    if (t->eos_id >= 0 && t->eos_id < t->n_vocab) t->flags[t->eos_id] |= TOK_F_EOG;
    if (t->unk_id >= t->n_vocab) t->unk_id = -1;
    st = tok_build_decoded(t);
    if (st != AWQ_OK) return st;
    if (!tok_cache_init(&t->cache, 1u << 17))
        return awq_set_error(t->rt, AWQ_ERR_OUT_OF_MEMORY, "tokenizer cache");
    t->md = pcre2_match_data_create(32, NULL);
    if (!t->md) return awq_set_error(t->rt, AWQ_ERR_OUT_OF_MEMORY, "tokenizer match data");
    return AWQ_OK;
}

void awq_tokenizer_destroy(awq_tokenizer *t) {
    if (!t) return;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        if (t->key_owned && t->key) awq_free(t->key[i]);
        if (t->text) awq_free(t->text[i]);
        if (t->dec) awq_free(t->dec[i]);
    }
    awq_free(t->text);
    awq_free(t->text_len);
    awq_free(t->dec);
    awq_free(t->dec_len);
    awq_free(t->flags);
    awq_free(t->scores);
    awq_free(t->in_model);
    awq_free(t->key);
    awq_free(t->key_len);
    tok_smap_free(&t->key_map);
    tok_smap_free(&t->text_map);
    tok_pmap_free(&t->merges);
    awq_free(t->merge_pairs);
    for (int i = 0; i < t->n_norm; i++) {
        awq_free(t->norm[i].a);
        awq_free(t->norm[i].b);
        pcre2_code_free(t->norm[i].re);
    }
    for (int i = 0; i < t->n_pre; i++) {
        awq_free(t->pre[i].pattern);
        awq_free(t->pre[i].literal);
        awq_free(t->pre[i].replacement);
        pcre2_code_free(t->pre[i].re);
    }
    for (int i = 0; i < t->n_dec; i++) {
        awq_free(t->decs[i].a);
        awq_free(t->decs[i].b);
        pcre2_code_free(t->decs[i].re);
    }
    for (int i = 0; i < t->n_added; i++) awq_free(t->added[i].content);
    awq_free(t->added);
    awq_free(t->bos_token);
    awq_free(t->eos_token);
    awq_free(t->pad_token);
    awq_free(t->unk_token);
    awq_free(t->chat_template);
    awq_free(t->gguf_pre);
    tok_cache_free(&t->cache);
    pcre2_match_data_free(t->md);
    awq_free(t->sym);
    awq_free(t->heap);
    tok_ids_free(&t->last_ids);
    awq_free(t);
}

/* ---- small public accessors ----------------------------------------------------------------- */

int32_t awq_tokenizer_vocab_size(const awq_tokenizer *t) { return t ? t->n_vocab : 0; }
int32_t awq_tokenizer_bos(const awq_tokenizer *t) { return t ? t->bos_id : -1; }
int32_t awq_tokenizer_eos(const awq_tokenizer *t) { return t ? t->eos_id : -1; }

bool awq_tokenizer_is_eog(const awq_tokenizer *t, int32_t id) {
    return t && id >= 0 && id < t->n_vocab && (t->flags[id] & TOK_F_EOG);
}

const char *awq_tokenizer_token_text(const awq_tokenizer *t, int32_t id) {
    if (!t || id < 0 || id >= t->n_vocab) return NULL;
    return t->text[id];
}

bool awq_tokenizer_adds_bos(const awq_tokenizer *t) {
    if (!t || t->bos_id < 0) return false;
    for (int i = 0; i < t->n_prefix; i++)
        if (t->prefix_ids[i] == t->bos_id) return true;
    return false;
}
