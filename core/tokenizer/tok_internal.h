/*
 * tok_internal.h - the tokenizer's private structures, shared by the files of core/tokenizer/.
 *
 * One tokenizer model is implemented: BPE (merge ranks), in two flavours that cover the
 * checkpoints in use:
 *   - byte-level (GPT-2 style: Llama 3, Qwen2/3, SmolLM2, Mistral-Nemo): the text's UTF-8 bytes
 *     are the initial symbols; vocabulary strings are stored in GPT-2's byte-to-unicode alphabet
 *     and decoded once at load into raw bytes, so encoding never builds the mapped string;
 *   - SentencePiece-style (Llama 2, Mistral 7B, TinyLlama): Unicode characters are the initial
 *     symbols, "▁" marks spaces, unknown characters fall back to <0xXX> byte tokens.
 * The pipeline follows Hugging Face `tokenizers`: added tokens are split out first, then each
 * remaining segment is normalized, pre-tokenized into pieces, and each piece goes through BPE.
 */
#ifndef AWQ_CORE_TOKENIZER_TOK_INTERNAL_H
#define AWQ_CORE_TOKENIZER_TOK_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

/* Regexes of the pre-tokenizers (PCRE2 syntax, UTF + UCP). */
/* GPT-2's, as the ByteLevel pre-tokenizer of `tokenizers` applies it with use_regex. */
#define TOK_REGEX_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"
/* Llama 3 (digits in groups of up to three). */
#define TOK_REGEX_LLAMA3                                                                                     \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|" \
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
/* Qwen2 (single digits). */
#define TOK_REGEX_QWEN2                                                                                 \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|" \
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

/* ---- growable byte / int buffers ---------------------------------------------------------- */

typedef struct tok_buf {
    char *p;
    size_t n, cap; /* bytes */
} tok_buf;

bool tok_buf_reserve(tok_buf *b, size_t extra);
bool tok_buf_append(tok_buf *b, const void *s, size_t n);
bool tok_buf_putc(tok_buf *b, char c);
void tok_buf_free(tok_buf *b);

typedef struct tok_ids {
    int32_t *p;
    size_t n, cap; /* elements */
} tok_ids;

bool tok_ids_push(tok_ids *v, int32_t id);
void tok_ids_free(tok_ids *v);

/* ---- hash maps (tok_map.c) ------------------------------------------------------------------ */

/* Byte string -> int32, open addressing. Keys are borrowed: they must outlive the map. */
typedef struct tok_smap_slot {
    const char *key;
    uint32_t len; /* bytes */
    uint32_t hash;
    int32_t val; /* valid when key != NULL */
} tok_smap_slot;

typedef struct tok_smap {
    tok_smap_slot *slots;
    size_t cap, n; /* cap is a power of two */
} tok_smap;

uint32_t tok_hash(const char *s, size_t n);
bool tok_smap_init(tok_smap *m, size_t expected);
void tok_smap_free(tok_smap *m);
/* Inserts or keeps the existing value (returns false only on allocation failure). *existed is
 * set when the key was already present (the old value is kept). */
bool tok_smap_put(tok_smap *m, const char *key, size_t len, int32_t val, bool *existed);
/* Returns the value or -1. */
int32_t tok_smap_get(const tok_smap *m, const char *key, size_t len);

/* (left id, right id) -> (rank, merged id), open addressing on the 64-bit pair. */
typedef struct tok_pmap_slot {
    uint64_t key; /* (left << 32) | right, UINT64_MAX = empty */
    int32_t rank;
    int32_t merged;
} tok_pmap_slot;

typedef struct tok_pmap {
    tok_pmap_slot *slots;
    size_t cap, n;
} tok_pmap;

bool tok_pmap_init(tok_pmap *m, size_t expected);
void tok_pmap_free(tok_pmap *m);
/* First insertion of a pair wins (a repeated merge keeps its lowest rank). */
bool tok_pmap_put(tok_pmap *m, int32_t left, int32_t right, int32_t rank, int32_t merged);
const tok_pmap_slot *tok_pmap_get(const tok_pmap *m, int32_t left, int32_t right);

/* Word cache: piece bytes -> ids (owned copies). Cleared wholesale when full. */
typedef struct tok_cache {
    tok_smap smap; /* piece -> index into spans */
    char **blocks; /* owned blocks holding the key bytes (stable addresses) */
    size_t n_blocks, cap_blocks, block_used, block_cap;
    tok_ids ids;    /* concatenated values */
    uint32_t *span; /* (start, count) pairs into ids, 2 per entry */
    size_t n, cap;  /* entries */
    size_t max_entries;
} tok_cache;

bool tok_cache_init(tok_cache *c, size_t max_entries);
void tok_cache_free(tok_cache *c);
/* Returns a pointer to the cached ids and their count, or NULL. */
const int32_t *tok_cache_get(const tok_cache *c, const char *key, size_t len, size_t *count);
void tok_cache_put(tok_cache *c, const char *key, size_t len, const int32_t *ids, size_t count);

/* ---- pipeline components -------------------------------------------------------------------- */

typedef enum tok_norm_kind {
    TOK_NORM_NFC,
    TOK_NORM_NFKC,
    TOK_NORM_NFD,
    TOK_NORM_NFKD,
    TOK_NORM_PREPEND, /* a = prefix (only on non-empty text) */
    TOK_NORM_REPLACE, /* a = literal pattern, b = content */
    TOK_NORM_LOWERCASE,
    TOK_NORM_STRIP, /* left/right: strip Unicode whitespace */
} tok_norm_kind;

typedef struct tok_norm {
    tok_norm_kind kind;
    char *a, *b;
    pcre2_code *re; /* Replace with a Regex pattern (a holds its source) */
    bool left, right;
} tok_norm;

typedef enum tok_split_behavior {
    TOK_SPLIT_REMOVED,
    TOK_SPLIT_ISOLATED,
    TOK_SPLIT_MERGED_PREV,
    TOK_SPLIT_MERGED_NEXT,
    TOK_SPLIT_CONTIGUOUS,
} tok_split_behavior;

typedef enum tok_pre_kind {
    TOK_PRE_SPLIT,     /* regex split (Split, Digits, the ByteLevel regex, WhitespaceSplit) */
    TOK_PRE_BYTELEVEL, /* add_prefix_space; use_regex is expanded into a TOK_PRE_SPLIT before */
    TOK_PRE_METASPACE, /* replacement, prepend_scheme, split */
} tok_pre_kind;

enum { TOK_PREPEND_ALWAYS = 0, TOK_PREPEND_FIRST = 1, TOK_PREPEND_NEVER = 2 };

typedef struct tok_pre {
    tok_pre_kind kind;
    /* split */
    char *pattern;         /* PCRE2 source */
    bool pattern_is_regex; /* false: the JSON gave a literal String pattern */
    char *literal;         /* the literal when !pattern_is_regex */
    tok_split_behavior behavior;
    bool invert;
    pcre2_code *re;
    int origin; /* TOK_ORIGIN_*: what to write back to tokenizer.json */
    bool individual_digits;
    /* byte level */
    bool add_prefix_space;
    /* metaspace */
    char *replacement; /* UTF-8 of one character */
    int prepend_scheme;
    bool split;
} tok_pre;

enum {
    TOK_ORIGIN_SPLIT = 0,
    TOK_ORIGIN_DIGITS = 1,
    TOK_ORIGIN_BYTELEVEL_REGEX = 2,
    TOK_ORIGIN_WHITESPACE_SPLIT = 3
};

typedef enum tok_dec_kind {
    TOK_DEC_BYTELEVEL,
    TOK_DEC_METASPACE,
    TOK_DEC_REPLACE,
    TOK_DEC_BYTEFALLBACK,
    TOK_DEC_FUSE,
    TOK_DEC_STRIP,
} tok_dec_kind;

typedef struct tok_dec {
    tok_dec_kind kind;
    char *a, *b;    /* replace: pattern -> content; metaspace: a = replacement; strip: a = content */
    pcre2_code *re; /* Replace with a Regex pattern (a holds its source) */
    int prepend_scheme;
    int start, stop; /* strip */
} tok_dec;

/* An added token (tokenizer.json "added_tokens", or GGUF control / user-defined tokens). */
typedef struct tok_added {
    char *content;
    size_t len; /* bytes */
    int32_t id;
    bool special, lstrip, rstrip, single_word, normalized;
} tok_added;

/* Per-token flags. */
enum {
    TOK_F_ADDED = 1u << 0,   /* in added_tokens */
    TOK_F_SPECIAL = 1u << 1, /* a special added token (dropped by skip_special) */
    TOK_F_BYTE = 1u << 2,    /* <0xXX> byte-fallback token */
    TOK_F_EOG = 1u << 3,     /* ends generation */
};

#define TOK_MAX_PIPE 16

struct awq_tokenizer {
    awq_runtime *rt; /* borrowed; used for error details */

    /* vocabulary, indexed by id; n_vocab = max id + 1 */
    int32_t n_vocab;
    char **text;           /* [n_vocab] vocabulary string as stored (NUL-terminated), NULL for gaps */
    uint32_t *text_len;    /* [n_vocab] bytes */
    char **dec;            /* [n_vocab] decoded bytes (not first token), owned */
    uint32_t *dec_len;     /* [n_vocab] */
    uint8_t *flags;        /* [n_vocab] TOK_F_* */
    float *scores;         /* [n_vocab] SentencePiece scores (GGUF llama), or NULL */
    int32_t n_model_vocab; /* entries in model.vocab (write-back) */
    bool *in_model;        /* [n_vocab] id is in model.vocab */

    /* BPE model */
    bool byte_level; /* initial symbols are bytes (ByteLevel pre-tokenizer) */
    char **key;      /* [n_vocab] BPE form: raw bytes (byte level) or text; borrowed or owned */
    uint32_t *key_len;
    bool key_owned;       /* key[] entries are separate allocations */
    tok_smap key_map;     /* BPE form -> id (model vocab only) */
    tok_smap text_map;    /* vocabulary string -> id (all tokens) */
    tok_pmap merges;      /* (left, right) -> rank, merged */
    int32_t *merge_pairs; /* [n_merges][2] left, right ids in rank order (write-back) */
    int32_t n_merges;
    size_t merge_cap; /* elements of merge_pairs / 2 */
    bool ignore_merges, byte_fallback, fuse_unk;
    bool spm_ws_split;    /* "▁" only leads pieces: long words may split before it */
    int32_t unk_id;       /* -1 if none */
    int32_t byte_id[256]; /* byte-level: id of each single-byte symbol; spm: <0xXX> ids; -1 */

    /* pipeline */
    tok_norm norm[TOK_MAX_PIPE];
    int n_norm;
    tok_pre pre[TOK_MAX_PIPE];
    int n_pre;
    tok_dec decs[TOK_MAX_PIPE];
    int n_dec;
    bool has_bytelevel_post; /* write-back only */

    /* added tokens, matched before the model */
    tok_added *added;
    int n_added;
    uint8_t added_first[256]; /* 1 if some added token starts with this byte */
    bool split_special;       /* tokenizer_config split_special_tokens: do not match special */

    /* special tokens and post-processing */
    int32_t bos_id, eos_id, pad_id;
    int32_t prefix_ids[4], suffix_ids[4]; /* added with add_special */
    int n_prefix, n_suffix;
    bool add_bos, add_eos;
    char *bos_token, *eos_token, *pad_token, *unk_token;
    char *chat_template;
    bool add_space_prefix; /* GGUF llama: SentencePiece prefix (write-back) */
    char *gguf_pre;        /* GGUF tokenizer.ggml.pre (informational) */

    /* scratch (encode is not reentrant per tokenizer) */
    tok_cache cache;
    pcre2_match_data *md;
    /* the last size query's result (ids == NULL), handed out by the fill call that follows */
    tok_ids last_ids;
    uint64_t last_hash; /* FNV-1a of the text */
    size_t last_len;
    bool last_special, last_valid;
    struct tok_sym *sym; /* BPE symbols of the current piece */
    size_t sym_cap;
    struct tok_heap *heap; /* BPE candidate merges */
    size_t heap_cap;
};

/* ---- tok_json.c / tok_gguf.c shared helpers (tok_vocab.c) ---------------------------------- */

/* Allocates the per-id arrays for n_vocab tokens (all NULL / zero). */
awq_status tok_alloc_vocab(awq_tokenizer *t, int32_t n_vocab);
/* Sets the text of id (copied). */
awq_status tok_set_text(awq_tokenizer *t, int32_t id, const char *s, size_t len);
/* After the vocabulary, merges, pipeline and added tokens are set: builds the BPE keys, maps,
 * decoded forms, byte tables, eog flags and scratch. what names the source in errors. */
awq_status tok_finalize(awq_tokenizer *t, const char *what);
/* Adds a merge (left text, right text) by vocabulary strings; unknown parts are an error
 * naming what and the merge index. */
awq_status tok_add_merge_ids(awq_tokenizer *t, int32_t left, int32_t right, int32_t merged);
/* Compiles a PCRE2 pattern (UTF, UCP, JIT). */
awq_status tok_compile_regex(awq_tokenizer *t, const char *what, const char *pattern, pcre2_code **out);
/* Regex source that matches a literal string. Owned. */
char *tok_regex_escape(const char *s);
/* Replaces every match of re in s[0, n) by the literal rep, into out (reset). */
bool tok_regex_replace(const pcre2_code *re, const char *s, size_t n, const char *rep, tok_buf *out);
/* Appends a Split pre-tokenizer with a regex. */
awq_status tok_add_split(awq_tokenizer *t, const char *what, const char *pattern, tok_split_behavior b,
                         bool invert, int origin);

/* GPT-2 byte <-> unicode alphabet. */
uint32_t tok_byte_to_cp(uint8_t b);
int tok_cp_to_byte(uint32_t cp); /* -1 if not in the alphabet */

/* UTF-8 helpers (tok_utf8.c). */
/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid / truncated. */
size_t tok_utf8_valid_len(const unsigned char *s, size_t n);
/* Decodes one code point from a valid sequence; returns its length. */
/* Length (>= 1) of the maximal subpart of an ill-formed sequence at s: the bytes that one U+FFFD
 * replaces. When it equals n and is shorter than the sequence's length, the input may simply be
 * truncated. */
size_t tok_utf8_subpart(const unsigned char *s, size_t n);
size_t tok_utf8_decode(const char *s, size_t n, uint32_t *cp);
size_t tok_utf8_encode(uint32_t cp, char *out);
/* Appends s to out, replacing each maximal invalid subsequence by U+FFFD. */
bool tok_utf8_sanitize(tok_buf *out, const char *s, size_t n);

/* ---- tok_pipeline.c ------------------------------------------------------------------------- */

/* Normalizes seg into out (out is reset). */
awq_status tok_normalize(awq_tokenizer *t, const char *seg, size_t n, tok_buf *out);

/* A piece produced by the pre-tokenizers: bytes [off, off + len) of a scratch buffer. */
typedef struct tok_piece {
    size_t off, len;
    bool at_start; /* starts at offset 0 of the original input */
} tok_piece;

typedef struct tok_pieces {
    tok_piece *p;
    size_t n, cap;
} tok_pieces;

/* Pre-tokenizes text (already normalized, in buf at [0, n)); appended strings go to buf. */
awq_status tok_pretokenize(awq_tokenizer *t, tok_buf *buf, size_t n, bool at_start, tok_pieces *out,
                           tok_pieces *tmp);
void tok_pieces_free(tok_pieces *p);

/* ---- tok_bpe.c ------------------------------------------------------------------------------ */

/* Encodes one piece with the BPE model (cached), appending ids. */
awq_status tok_bpe_piece(awq_tokenizer *t, const char *s, size_t n, tok_ids *out);

/* ---- tok_decode.c --------------------------------------------------------------------------- */

/* Appends the decoded bytes of id (first: it is the first token of the text). */
bool tok_decode_piece(const awq_tokenizer *t, int32_t id, bool first, tok_buf *out);
/* Computes dec[id] for all ids. */
awq_status tok_build_decoded(awq_tokenizer *t);

/* ---- tok_free.c ----------------------------------------------------------------------------- */

awq_tokenizer *tok_new(awq_runtime *rt);

#endif
