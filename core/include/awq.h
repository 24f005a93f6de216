/*
 * awq.h - the public C API of libawq.
 *
 * libawq quantizes Hugging Face Llama-family checkpoints with AWQ (activation-aware weight
 * quantization) and runs fp16/bf16/fp32 and AWQ 4-bit (W4A16) models on the CPU, OpenCL and CUDA
 * backends it finds at run time.
 *
 * Conventions (they hold for every function below):
 *  - Fallible functions return awq_status and write results through an out-parameter placed first.
 *    On failure the out-parameter is left NULL/unchanged and awq_runtime_last_error() says why.
 *  - Every handle is released by awq_<object>_destroy(); passing NULL is a harmless no-op.
 *  - Pointers returned by the library say whether they are owned (caller frees with the named
 *    function) or borrowed (valid until the named owner is destroyed or the next call on it).
 *  - The library never prints, exits or aborts. It logs through the runtime's log callback.
 *  - Shapes are written outermost-first, PyTorch-style: (rows, cols).
 */
#ifndef AWQ_H
#define AWQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32) && defined(AWQ_BUILDING_LIBRARY)
#define AWQ_API __declspec(dllexport)
#elif defined(_WIN32) && defined(AWQ_SHARED)
#define AWQ_API __declspec(dllimport)
#elif defined(__GNUC__)
#define AWQ_API __attribute__((visibility("default")))
#else
#define AWQ_API
#endif

/* The version of this header, semantic versioning (docs/install.md): MAJOR changes break the
 * API or ABI; before 1.0 a MINOR change may too (the soname is libawq.so.0.MINOR then). */
#define AWQ_VERSION_MAJOR 0
#define AWQ_VERSION_MINOR 1 /* new API; before 1.0 also incompatible changes */
#define AWQ_VERSION_PATCH 0 /* fixes only */

/* The version of the library actually loaded, "MAJOR.MINOR.PATCH" (compare with the
 * AWQ_VERSION_* macros of the header compiled against). Static string, never NULL. */
AWQ_API const char *awq_version(void);

/* ------------------------------------------------------------------------------------------ */
/* Status codes                                                                                */

/* What a fallible function returns. Every status other than AWQ_OK comes with a detail on the
 * runtime involved (awq_runtime_last_error) when there is one. */
typedef enum awq_status {
    AWQ_OK = 0,                /* success */
    AWQ_ERR_INVALID_ARG = 1,   /* a caller argument is wrong; last_error says which */
    AWQ_ERR_OUT_OF_MEMORY = 2, /* host allocation failed, or the work would not fit in memory */
    AWQ_ERR_DEVICE_MEMORY = 3, /* device allocation failed */
    AWQ_ERR_IO = 4,            /* open/read/write/mmap/rename failed */
    AWQ_ERR_FORMAT = 5,        /* malformed safetensors/GGUF/JSON/tokenizer/config */
    AWQ_ERR_UNSUPPORTED = 6,   /* architecture, dtype, shape or op not supported */
    AWQ_ERR_NO_BACKEND = 7,    /* requested backend/device is not loaded */
    AWQ_ERR_BACKEND = 8,       /* CUDA/OpenCL/oneDNN runtime error */
    AWQ_ERR_CANCELLED = 9,     /* a progress callback returned false */
    AWQ_ERR_NUMERIC = 10,      /* NaN/Inf where finite values are required */
    AWQ_ERR_EXISTS = 11,       /* output already exists and overwriting was not allowed */
    AWQ_STATUS_COUNT_          /* number of codes (not a status) */
} awq_status;

/* A short description of a status code ("invalid argument"); "unknown status" for a value out of
 * range. Static string, never NULL. */
AWQ_API const char *awq_status_str(awq_status s);

/* ------------------------------------------------------------------------------------------ */
/* Element types                                                                               */

/* Element type of a tensor (the safetensors dtypes awq reads and writes). */
typedef enum awq_dtype {
    AWQ_DTYPE_F32 = 0,  /* IEEE binary32 */
    AWQ_DTYPE_F16 = 1,  /* IEEE binary16 */
    AWQ_DTYPE_BF16 = 2, /* bfloat16 (the upper half of a binary32) */
    AWQ_DTYPE_I32 = 3,  /* int32 (AWQ qweight/qzeros) */
    AWQ_DTYPE_I64 = 4,  /* int64 */
    AWQ_DTYPE_U8 = 5,   /* uint8 */
    AWQ_DTYPE_I8 = 6,   /* int8 */
    AWQ_DTYPE_I16 = 7,  /* int16 */
    AWQ_DTYPE_F64 = 8,  /* IEEE binary64 */
    AWQ_DTYPE_COUNT_    /* number of types (not a type) */
} awq_dtype;

/* Size of one element in bytes; 0 for an unknown dtype. */
AWQ_API size_t awq_dtype_size(awq_dtype t);
/* Safetensors-style name: "F32", "F16", "BF16", "I32", ...; "?" for an unknown dtype. Static
 * string, never NULL. */
AWQ_API const char *awq_dtype_name(awq_dtype t);

/* ------------------------------------------------------------------------------------------ */
/* Logging and progress                                                                        */

/* Severity of a log message; a callback that wants less compares with <=. */
typedef enum awq_log_level {
    AWQ_LOG_LEVEL_ERROR = 0, /* a failure (the status and last_error carry it too) */
    AWQ_LOG_LEVEL_WARN = 1,  /* something the user should know: a skipped plugin op, a fallback */
    AWQ_LOG_LEVEL_INFO = 2,  /* what was loaded and chosen: plugins, devices, plans */
    AWQ_LOG_LEVEL_DEBUG = 3, /* details for developers (per-group search results, ...) */
} awq_log_level;

/* Receives one complete message (no trailing newline). May be called from worker threads, but
 * never concurrently for the same runtime. */
typedef void (*awq_log_fn)(awq_log_level level, const char *msg, void *user);

/* Progress of a long operation. done is in [0, 1]; stage is human-readable text such as
 * "layer 12/30: scale search". Return false to cancel: the operation then stops cleanly and
 * returns AWQ_ERR_CANCELLED. */
typedef bool (*awq_progress_fn)(float done, const char *stage, void *user);

/* ------------------------------------------------------------------------------------------ */
/* Runtime: loaded backends, logger, last error                                                */

/* The library's context: the registered backends (built-in cpu and loaded plugins), the log
 * callback and the detail of the last failure. Opaque; one per application is typical. */
typedef struct awq_runtime awq_runtime;

/* Parameters of awq_runtime_create; start from awq_runtime_params_default(). */
typedef struct awq_runtime_params {
    awq_log_fn log;          /* NULL: silent */
    void *log_user;          /* passed to log unchanged */
    const char *backend_dir; /* extra directory searched first for backend plugins; may be NULL */
    bool load_plugins;       /* default true; false: only the built-in cpu backend */
    int32_t n_threads;       /* CPU threads for the cpu backends; 0 = all available cores */
} awq_runtime_params;

/* The defaults: silent, plugins loaded, all cores. Cannot fail. */
AWQ_API awq_runtime_params awq_runtime_params_default(void);

/* Creates a runtime: registers the built-in cpu backend and loads the plugins it finds
 * (backend_dir, $AWQ_BACKEND_PATH, the executable's directory, then the plugin directory of the
 * installation found relative to libawq itself; docs/install.md). params NULL = the defaults.
 * A plugin that fails to load is not an error: it is listed by awq_runtime_skipped_get.
 * Errors: AWQ_ERR_INVALID_ARG (out NULL), AWQ_ERR_OUT_OF_MEMORY; *out is then NULL.
 * Owned: destroy with awq_runtime_destroy. */
AWQ_API awq_status awq_runtime_create(awq_runtime **out, const awq_runtime_params *params);
/* Unloads the plugins and frees the runtime. Every tokenizer and model created through rt must
 * have been destroyed before. NULL is a no-op. */
AWQ_API void awq_runtime_destroy(awq_runtime *rt);

/* Detail of the last failure on rt, e.g. "model.safetensors: tensor 'x': offsets [0, 8) overlap
 * tensor 'y'". Borrowed: valid until the next call on rt. Empty string if none or rt is NULL;
 * never NULL. */
AWQ_API const char *awq_runtime_last_error(const awq_runtime *rt);

/* Backends and devices known to the runtime. */
typedef struct awq_device_desc {
    char backend[32];     /* "cpu", "cpu-dnnl", "opencl", "cuda" */
    int32_t index;        /* device index within the backend */
    char name[128];       /* human-readable device name */
    int64_t memory_bytes; /* device memory (0 if unknown) */
    int32_t score;        /* probe score; higher is preferred by "auto" */
} awq_device_desc;

/* Number of (backend, device) pairs, in registration order (cpu first); 0 if rt is NULL. */
AWQ_API int32_t awq_runtime_device_count(const awq_runtime *rt);
/* Describes device i (0 <= i < awq_runtime_device_count) into *out (caller's memory).
 * Errors: AWQ_ERR_INVALID_ARG (NULL argument or i out of range), or the backend's status if it
 * cannot describe the device. */
AWQ_API awq_status awq_runtime_device_get(const awq_runtime *rt, int32_t i, awq_device_desc *out);
/* What the i-th device cannot run of the optional backend ops, and what runs instead, as one
 * line "op(case) -> fallback; ..." written into buf (cap bytes, NUL-terminated); "" when it runs
 * everything. Asks the backend's capability query (docs/backends.md, "Capabilities").
 * AWQ_ERR_INVALID_ARG for a NULL argument, an index out of range or a buf too small. */
AWQ_API awq_status awq_runtime_device_fallbacks(const awq_runtime *rt, int32_t i, char *buf, size_t cap);
/* Number of plugins that were found but skipped; 0 if rt is NULL. */
AWQ_API int32_t awq_runtime_skipped_count(const awq_runtime *rt);
/* The i-th skipped plugin as a "path: reason" line. Borrowed: valid until rt is destroyed.
 * NULL if rt is NULL or i is out of range. */
AWQ_API const char *awq_runtime_skipped_get(const awq_runtime *rt, int32_t i);

/* ------------------------------------------------------------------------------------------ */
/* Tokenizer                                                                                   */

/* A model's tokenizer (tokenizer.json, or the vocabulary of a GGUF file). Opaque. */
typedef struct awq_tokenizer awq_tokenizer;

/* Loads tokenizer.json (+ tokenizer_config.json and generation_config.json when present) from a
 * model directory. Supported: BPE models (byte-level GPT-2 style and SentencePiece-style with
 * byte fallback) with the usual normalizers, pre-tokenizers and decoders; anything else fails
 * with AWQ_ERR_UNSUPPORTED naming the field. The runtime must outlive the tokenizer (it receives
 * the error details). Owned: destroy with awq_tokenizer_destroy. */
AWQ_API awq_status awq_tokenizer_load(awq_tokenizer **out, awq_runtime *rt, const char *model_dir);
/* Frees the tokenizer. Detokenizers created from it must have been destroyed before. NULL is a
 * no-op. */
AWQ_API void awq_tokenizer_destroy(awq_tokenizer *tok);

/* Encodes UTF-8 text. add_special: add BOS/EOS as the tokenizer's post-processor and
 * tokenizer_config.json say (add_bos_token / add_eos_token there take precedence).
 * Query-size-then-fill: with ids == NULL (or cap too small) *n_out receives the required count
 * and AWQ_ERR_INVALID_ARG is returned only if ids != NULL.
 * Behaviour at the edges: invalid UTF-8 is first replaced, each maximal ill-formed subsequence by
 * U+FFFD (as Python's errors="replace"); added tokens, special ones included, are recognised
 * inside the text as Hugging Face `tokenizers` does (unless tokenizer_config.json sets
 * split_special_tokens); empty text gives no ids besides BOS/EOS.
 * Not thread-safe on one tokenizer (encode fills a word cache); use one tokenizer per thread. */
AWQ_API awq_status awq_tokenizer_encode(awq_tokenizer *tok, const char *text, size_t len, bool add_special,
                                        int32_t *ids, int64_t cap, int64_t *n_out);
/* Decodes ids to UTF-8 text; skip_special drops special tokens. Query-size-then-fill on bytes:
 * *len_out is the text length without the terminating NUL, which needs cap >= *len_out + 1.
 * The bytes of the tokens are joined, then any ill-formed UTF-8 becomes U+FFFD. An id outside
 * the vocabulary is AWQ_ERR_INVALID_ARG. */
AWQ_API awq_status awq_tokenizer_decode(awq_tokenizer *tok, const int32_t *ids, int64_t n, bool skip_special,
                                        char *text, size_t cap, size_t *len_out);
/* Largest token id + 1 (0 if tok is NULL). */
AWQ_API int32_t awq_tokenizer_vocab_size(const awq_tokenizer *tok);
/* The beginning-of-sequence token id; -1 if the tokenizer has none. */
AWQ_API int32_t awq_tokenizer_bos(const awq_tokenizer *tok);
/* The end-of-sequence token id; -1 if the tokenizer has none. */
AWQ_API int32_t awq_tokenizer_eos(const awq_tokenizer *tok);
/* True if id ends generation (EOS, the eos_token_id(s) of generation_config.json, or one of the
 * usual end-of-turn tokens such as `<|eot_id|>`, `<|im_end|>`, `<|endoftext|>`,
 * `<end_of_turn>`). */
AWQ_API bool awq_tokenizer_is_eog(const awq_tokenizer *tok, int32_t id);
/* The text of token id as the vocabulary stores it (byte-level BPE: the GPT-2 byte alphabet,
 * e.g. "\u0120the"; SentencePiece: "\u2581the"), not decoded. Borrowed from tok, valid until
 * awq_tokenizer_destroy; NULL if tok is NULL or id is out of range. */
AWQ_API const char *awq_tokenizer_token_text(const awq_tokenizer *tok, int32_t id);

/* Incremental decoder for streaming: feed ids one at a time, get only complete UTF-8. The
 * concatenated output equals awq_tokenizer_decode of all ids. */
typedef struct awq_detok awq_detok;
/* Creates a streaming decoder over tok (which must outlive it); skip_special drops special
 * tokens. Errors: AWQ_ERR_INVALID_ARG (NULL argument), AWQ_ERR_OUT_OF_MEMORY.
 * Owned: destroy with awq_detok_destroy. */
AWQ_API awq_status awq_detok_create(awq_detok **out, awq_tokenizer *tok, bool skip_special);
/* Frees the decoder (bytes still held back are dropped: flush first). NULL is a no-op. */
AWQ_API void awq_detok_destroy(awq_detok *d);
/* Appends the bytes that became complete after id to buf (NUL-terminated); *len_out = count.
 * Bytes of an incomplete UTF-8 sequence are held back until the next call or flush. If buf is
 * too small (cap < *len_out + 1) the call returns AWQ_ERR_INVALID_ARG and keeps the bytes for
 * the next push or flush: nothing is ever dropped. */
AWQ_API awq_status awq_detok_push(awq_detok *d, int32_t id, char *buf, size_t cap, size_t *len_out);
/* Returns whatever is held back (invalid sequences come out as U+FFFD), into buf as for
 * awq_detok_push, and empties the decoder. */
AWQ_API awq_status awq_detok_flush(awq_detok *d, char *buf, size_t cap, size_t *len_out);

/* Chat messages rendered with the model's chat_template (tokenizer_config.json, else
 * chat_template.jinja or chat_template.json in the model directory). */
typedef struct awq_chat_message {
    const char *role;    /* "system", "user", "assistant" */
    const char *content; /* the message text (UTF-8) */
} awq_chat_message;

/* Renders messages into a prompt string with the template's Jinja subset (for/if/set, loop.*,
 * namespace, common filters and tests, raise_exception), with bos_token, eos_token and
 * add_generation_prompt defined. A construct outside the subset fails with AWQ_ERR_UNSUPPORTED
 * naming it and its template line; raise_exception fails with AWQ_ERR_INVALID_ARG and its
 * message; no template: AWQ_ERR_UNSUPPORTED. The prompt usually contains the BOS text itself,
 * so encode it with add_special = false. Owned: free with awq_free. */
AWQ_API awq_status awq_tokenizer_apply_chat(awq_tokenizer *tok, const awq_chat_message *msgs, int32_t n_msgs,
                                            bool add_generation_prompt, char **out);

/* Frees memory the library returned as "free with awq_free". NULL is a no-op. */
AWQ_API void awq_free(void *p);

/* ------------------------------------------------------------------------------------------ */
/* Models and sessions                                                                         */

/* A model loaded onto one device: its config and weights. Opaque. */
typedef struct awq_model awq_model;
/* One token stream over a model: positions and KV cache. Opaque. */
typedef struct awq_session awq_session;

/* How awq_model_load holds the output projection (lm_head, or the embedding when the model ties
 * them) on the device (awq_model_params.lm_head). */
typedef enum awq_lm_head_format {
    /* As the checkpoint stores it (F16/BF16/F32; AutoAWQ keeps the lm_head in fp16). */
    AWQ_LM_HEAD_AS_STORED = 0,
    /* Re-quantized at load, per row, to int8 with one fp16 scale per block of 32 inputs
     * (llama.cpp's Q8_0: d = max|w| / 127, q = round(w / d)), and multiplied by a Q8 x F32
     * GEMV: about half the bytes of an fp16 lm_head per decoded token, for a small perplexity
     * cost. Needs d_model % 32 == 0 and a backend with the matmul_q8 op (cpu, cpu-dnnl); on
     * other backends the lm_head stays as stored and a warning says so; for a 4-bit lm_head
     * awq_model_load fails with AWQ_ERR_UNSUPPORTED. A tied embedding stays as stored for the
     * token lookup. */
    AWQ_LM_HEAD_Q8 = 1,
} awq_lm_head_format;

/* Arithmetic of the large matrix products (prefill, the AWQ search's GEMMs). */
typedef enum awq_precision {
    /* fp32 inputs and accumulation, exact as the op contracts state (the default). */
    AWQ_PRECISION_FP32 = 0,
    /* Backends that have a bf16 matrix unit (cpu-dnnl on AVX512-BF16 / AMX-BF16 CPUs) round the
     * activations and the (dequantized) weights of large products to bfloat16 and accumulate in
     * fp32: about twice the throughput, a measured perplexity cost (README). Decode GEMVs and
     * backends without such a unit stay fp32. */
    AWQ_PRECISION_BF16 = 1,
} awq_precision;

/* Parameters of awq_model_load; start from awq_model_params_default(). */
typedef struct awq_model_params {
    const char *device;         /* "auto" (default), "cpu", "cpu-dnnl", "opencl[:N]", "cuda[:N]" */
    awq_progress_fn progress;   /* optional load progress */
    void *progress_user;        /* passed to progress unchanged */
    awq_lm_head_format lm_head; /* output projection format, default AWQ_LM_HEAD_AS_STORED */
    awq_precision precision;    /* large matmuls, default AWQ_PRECISION_FP32 */
    /* true: the cpu backends' 4-bit matmuls quantize the activations to int8 per weight group
     * and use int8 dot products (AVX-512 VNNI, AVX2) on weights repacked at load: faster decode,
     * a small measured perplexity cost (README). Default false: exact fp32 activations. Other
     * backends ignore it. */
    bool int8_activations;
} awq_model_params;

/* The defaults: device "auto", no progress callback, lm_head as stored. Cannot fail. */
AWQ_API awq_model_params awq_model_params_default(void);

/* Loads a Hugging Face-layout directory (config.json + safetensors), fp16/bf16/fp32 or AWQ
 * (GEMM or GEMV layout) and uploads it to the chosen device. params NULL = the defaults.
 * Errors (detail on rt, naming the file and tensor or field): AWQ_ERR_IO, AWQ_ERR_FORMAT
 * (malformed or inconsistent files), AWQ_ERR_UNSUPPORTED (architecture, dtype, shape),
 * AWQ_ERR_NO_BACKEND (device not loaded), AWQ_ERR_DEVICE_MEMORY, AWQ_ERR_OUT_OF_MEMORY,
 * AWQ_ERR_BACKEND, AWQ_ERR_CANCELLED; *out is then NULL and nothing stays allocated.
 * rt must outlive the model. Owned: awq_model_destroy. */
AWQ_API awq_status awq_model_load(awq_model **out, awq_runtime *rt, const char *dir,
                                  const awq_model_params *params);
/* Frees the model's device memory and the model. Its sessions must have been destroyed before.
 * NULL is a no-op. */
AWQ_API void awq_model_destroy(awq_model *m);

/* What awq_model_get_info reports about a loaded model. */
typedef struct awq_model_info {
    char arch[32];               /* config.json model_type: "llama", "mistral", "qwen2", "qwen3" */
    char device[64];             /* backend:device actually used, e.g. "cpu-dnnl:0" */
    int32_t n_layers;            /* num_hidden_layers (config.json names, here and below) */
    int32_t d_model;             /* hidden_size */
    int32_t n_heads;             /* num_attention_heads */
    int32_t n_kv_heads;          /* num_key_value_heads */
    int32_t head_dim;            /* per-head dimension */
    int32_t d_ff;                /* intermediate_size */
    int32_t vocab_size;          /* vocabulary (rows of the embedding) */
    int32_t max_ctx;             /* max_position_embeddings */
    bool quantized;              /* AWQ 4-bit linears */
    int32_t group_size;          /* AWQ group size, 0 if not quantized */
    int64_t n_params;            /* parameters as stored */
    int64_t weight_bytes;        /* bytes of weights on the device */
    int64_t decode_weight_bytes; /* weight bytes one decode step reads: every linear (packed W4 +
                                  * scales/zeros, or dense), norms, the whole lm_head and one
                                  * embedding row (the rest of an untied embedding is not read) */
    int64_t kv_bytes_per_pos;    /* K + V cache bytes of one position over all layers; a decode step
                               * at position p reads (p + 1) times this */
} awq_model_info;

/* Fills *out (caller's memory). Errors: AWQ_ERR_INVALID_ARG (NULL argument). */
AWQ_API awq_status awq_model_get_info(const awq_model *m, awq_model_info *out);

/* A token stream with its KV cache on the model's device. n_ctx = 0 uses min(model max, 4096);
 * a larger n_ctx than the model's max_position_embeddings is allowed with a warning.
 * Errors (detail on the model's runtime): AWQ_ERR_INVALID_ARG, AWQ_ERR_DEVICE_MEMORY,
 * AWQ_ERR_OUT_OF_MEMORY; *out is then NULL. m must outlive the session.
 * Owned: awq_session_destroy. */
AWQ_API awq_status awq_session_create(awq_session **out, awq_model *m, int32_t n_ctx);
/* Frees the session and its KV cache. NULL is a no-op. */
AWQ_API void awq_session_destroy(awq_session *s);
AWQ_API void awq_session_reset(awq_session *s);           /* forget all tokens */
AWQ_API int32_t awq_session_n_past(const awq_session *s); /* tokens in the cache */
/* Keeps the first n_past cached tokens and forgets the rest (a chat whose new prompt shares a
 * prefix with the cache). n_past larger than the tokens cached: AWQ_ERR_INVALID_ARG. */
AWQ_API awq_status awq_session_truncate(awq_session *s, int32_t n_past);

/* Appends n tokens at positions n_past..n_past+n-1 and runs the model on them.
 * logits: NULL, or (vocab,) floats for the last token, or - with all_logits - (n, vocab), in the
 * caller's memory. Errors (detail on the model's runtime): AWQ_ERR_INVALID_ARG (NULL tokens,
 * n < 0, or the context would overflow: nothing is evaluated then), AWQ_ERR_BACKEND,
 * AWQ_ERR_DEVICE_MEMORY; a failure during the forward pass resets the session (n_past = 0). */
AWQ_API awq_status awq_session_eval(awq_session *s, const int32_t *tokens, int32_t n, float *logits,
                                    bool all_logits);

/* Batched decoding: appends one token to each of n distinct sessions of the same model and runs
 * them through the model together: one forward pass whose matmuls see n rows (one W4A16 GEMM
 * with M = n instead of n GEMVs); attention runs per session over its own cache. logits: NULL or
 * (n, vocab) floats, row i for sessions[i]. The results equal n awq_session_eval calls up to
 * float rounding that depends on the matmuls' row count (on the cpu backend: logits within
 * 1e-4, the same greedy tokens in tests/server/test_batch.c). n = 1 is awq_session_eval. Uses
 * the scratch of sessions[0]; batches larger than it holds (min(its n_ctx, 512) rows) are split.
 * Not thread-safe against other calls on the same model. On failure no session advances. */
AWQ_API awq_status awq_session_decode_batch(awq_session *const *sessions, int32_t n, const int32_t *tokens,
                                            float *logits);

/* ------------------------------------------------------------------------------------------ */
/* Sampling                                                                                    */

/* Parameters of awq_sampler_create; start from awq_sampler_params_default(). */
typedef struct awq_sampler_params {
    float temperature; /* 0 = greedy (default 0.8) */
    int32_t top_k;     /* 0 = off (default 40) */
    float top_p;       /* 1 = off (default 0.95) */
    uint64_t seed;     /* RNG seed (default 0x5eed) */
    float min_p;       /* after temperature, keep tokens with p >= min_p * p(best); 0 = off (default) */
    /* Penalties, applied to the logits before everything else (greedy included), over the last
     * penalty_last_n tokens of the sampler's history (the tokens it returned and those given to
     * awq_sampler_accept); a token occurring c > 0 times there gets
     *   l = l > 0 ? l / repeat_penalty : l * repeat_penalty     (Hugging Face, llama.cpp)
     *   l -= c * frequency_penalty + presence_penalty            (OpenAI) */
    float repeat_penalty;    /* 1 = off (default; 0 is read as 1) */
    float frequency_penalty; /* 0 = off (default) */
    float presence_penalty;  /* 0 = off (default) */
    int32_t penalty_last_n;  /* window in tokens; 0 = the whole history (default) */
} awq_sampler_params;

/* Picks token ids from logits: penalties, temperature, top-k, top-p, min-p, and its own RNG.
 * Opaque; independent of any runtime. */
typedef struct awq_sampler awq_sampler;
/* The defaults listed in awq_sampler_params. Cannot fail. */
AWQ_API awq_sampler_params awq_sampler_params_default(void);
/* Creates a sampler; p NULL = the defaults. Errors: AWQ_ERR_INVALID_ARG (out NULL or a parameter
 * out of range: negative or non-finite temperature, top_p or min_p outside [0, 1], ...),
 * AWQ_ERR_OUT_OF_MEMORY; *out is then NULL. Owned: destroy with awq_sampler_destroy. */
AWQ_API awq_status awq_sampler_create(awq_sampler **out, const awq_sampler_params *p);
/* Frees the sampler. NULL is a no-op. */
AWQ_API void awq_sampler_destroy(awq_sampler *s);
/* Picks a token from logits (vocab,). logits may be modified in place. Returns the token id, or
 * -1 for a NULL argument or vocab <= 0. */
AWQ_API int32_t awq_sampler_sample(awq_sampler *s, float *logits, int32_t vocab);
/* Adds a token to the history the penalties look at (e.g. the prompt's tokens). The tokens
 * awq_sampler_sample returns are added by it. No-op while every penalty is off. */
AWQ_API void awq_sampler_accept(awq_sampler *s, int32_t id);
/* Forgets the history (a new conversation); the RNG state is kept. */
AWQ_API void awq_sampler_reset(awq_sampler *s);

/* Stop strings for streamed text: text that might still turn into a stop string is held back
 * until it is known not to, and nothing from the first stop string on is ever returned. */
typedef struct awq_stop awq_stop;
/* strs: n NUL-terminated strings (empty ones never match; copied, so they need not outlive the
 * call). Errors: AWQ_ERR_INVALID_ARG (out NULL, n < 0, strs NULL with n > 0),
 * AWQ_ERR_OUT_OF_MEMORY. Owned: awq_stop_destroy. */
AWQ_API awq_status awq_stop_create(awq_stop **out, const char *const *strs, int32_t n);
/* Frees the matcher (and the text it returned). NULL is a no-op. */
AWQ_API void awq_stop_destroy(awq_stop *s);
/* Feeds the next piece of generated text. out and out_len receive the text that can be shown now
 * (borrowed: valid until the next call on s). *stopped (may be NULL) becomes true once a stop
 * string has been completed: the text before it has then been returned and the rest is dropped. */
AWQ_API awq_status awq_stop_push(awq_stop *s, const char *text, size_t len, const char **out, size_t *out_len,
                                 bool *stopped);
/* At the end of generation: the held-back text (it did not become a stop string); borrowed as
 * for awq_stop_push. Errors: AWQ_ERR_INVALID_ARG (NULL argument), AWQ_ERR_OUT_OF_MEMORY. */
AWQ_API awq_status awq_stop_flush(awq_stop *s, const char **out, size_t *out_len);

/* ------------------------------------------------------------------------------------------ */
/* Perplexity                                                                                  */

/* Called after each chunk with the running perplexity; return false to cancel. */
typedef bool (*awq_ppl_chunk_fn)(int32_t chunk, int32_t n_chunks, double nll_sum, int64_t n_pred, void *user);

/* Result of awq_eval_perplexity (and each model's part of awq_kld_result). */
typedef struct awq_ppl_result {
    double ppl;       /* exp(nll_sum / n_pred) */
    double nll_sum;   /* sum of -log p over predicted tokens */
    int64_t n_pred;   /* predicted tokens */
    int32_t n_chunks; /* windows evaluated */
    int64_t n_tokens; /* tokens in the file */
} awq_ppl_result;

/* Perplexity the way AutoAWQ and quantization papers report it: tokenize the whole text once
 * (with BOS if the tokenizer adds one), cut non-overlapping windows of ctx tokens (the tail is
 * dropped), and average -log p of every predicted token (ctx-1 per window).
 * max_chunks <= 0: all windows. cb (may be NULL) is called after each window. *out is the
 * caller's. Errors (detail on the model's runtime): AWQ_ERR_INVALID_ARG (NULL argument,
 * ctx < 2, a text shorter than one window), AWQ_ERR_CANCELLED (cb returned false), and the
 * tokenizer's and the backend's errors. */
AWQ_API awq_status awq_eval_perplexity(awq_model *m, awq_tokenizer *tok, const char *text, size_t len,
                                       int32_t ctx, int32_t max_chunks, awq_ppl_chunk_fn cb, void *user,
                                       awq_ppl_result *out);

/* KL divergence from a base model (llama-perplexity --kl-divergence's figures) over the same
 * windows as awq_eval_perplexity: for every predicted token, KL(P_base || P_model) =
 * sum_v p_base(v) (log p_base(v) - log p_model(v)), and whether both models' most probable
 * tokens agree. The base distribution comes from a base model run in the same pass or from a
 * logits file written by awq_eval_save_logits; either way it goes through the same fp16
 * log-probabilities, so both ways give identical numbers. */
typedef struct awq_kld_result {
    awq_ppl_result ppl;      /* the evaluated model */
    awq_ppl_result base_ppl; /* the base model (from its log-probabilities) */
    double kld_mean;         /* mean KL divergence, nats */
    double kld_median;       /* median KL divergence */
    double kld_p99;          /* 99th percentile */
    double kld_max;          /* largest KL divergence of a token */
    double top1_agree;       /* fraction of tokens whose argmax agrees, [0, 1] */
    int64_t n;               /* tokens scored */
} awq_kld_result;

/* Base from a model (base != NULL, logits_path NULL) or from a file (base NULL, logits_path set;
 * the file's tokens must be the text's). Both models must share the tokenizer's vocabulary.
 * Errors (detail on m's runtime): AWQ_ERR_INVALID_ARG (NULL argument, both or neither base
 * given, ctx < 2, different vocabularies, a logits file of other tokens or windows),
 * AWQ_ERR_IO / AWQ_ERR_FORMAT (the logits file), AWQ_ERR_CANCELLED, the backend's errors. */
AWQ_API awq_status awq_eval_kld(awq_model *m, awq_model *base, const char *logits_path, awq_tokenizer *tok,
                                const char *text, size_t len, int32_t ctx, int32_t max_chunks,
                                awq_ppl_chunk_fn cb, void *user, awq_kld_result *out);
/* Evaluates m like awq_eval_perplexity (out may be NULL) and writes its log-probabilities as
 * fp16 to path ((ctx-1) x vocab x 2 bytes per window, with a header and the windows' tokens),
 * the base for a later awq_eval_kld. Written to path.tmp and renamed, so a failure (the errors
 * of awq_eval_perplexity, AWQ_ERR_IO) leaves no file at path. */
AWQ_API awq_status awq_eval_save_logits(awq_model *m, awq_tokenizer *tok, const char *text, size_t len,
                                        int32_t ctx, int32_t max_chunks, const char *path,
                                        awq_ppl_chunk_fn cb, void *user, awq_ppl_result *out);

/* ------------------------------------------------------------------------------------------ */
/* GGUF -> Hugging Face conversion                                                             */

/* Parameters of awq_convert_gguf; start from awq_convert_params_default(). */
typedef struct awq_convert_params {
    awq_dtype dtype;          /* F16 (default), BF16 or F32 for the written weights */
    bool force;               /* replace an existing out_dir */
    awq_progress_fn progress; /* optional progress, may cancel */
    void *progress_user;      /* passed to progress unchanged */
} awq_convert_params;

/* The defaults: F16 weights, no overwrite, no progress callback. Cannot fail. */
AWQ_API awq_convert_params awq_convert_params_default(void);

/* Converts a Llama-family GGUF into a Hugging Face-layout directory (config.json,
 * model.safetensors, tokenizer.json, tokenizer_config.json, generation_config.json).
 * Written into a temporary directory beside out_dir and renamed into place: on any failure
 * nothing is left behind. params NULL = the defaults. Errors (detail on rt): AWQ_ERR_EXISTS
 * (out_dir exists and not force), AWQ_ERR_IO, AWQ_ERR_FORMAT (malformed GGUF, naming the
 * field), AWQ_ERR_UNSUPPORTED (architecture, tensor type), AWQ_ERR_CANCELLED,
 * AWQ_ERR_INVALID_ARG, AWQ_ERR_OUT_OF_MEMORY. */
AWQ_API awq_status awq_convert_gguf(awq_runtime *rt, const char *gguf_path, const char *out_dir,
                                    const awq_convert_params *params);

/* ------------------------------------------------------------------------------------------ */
/* AWQ quantization                                                                            */

/* How awq_quantize chooses the 4-bit weights. */
typedef enum awq_quant_method {
    AWQ_METHOD_AWQ = 0, /* activation-aware scale + clip search (AutoAWQ) */
    AWQ_METHOD_RTN = 1, /* round-to-nearest, same format, no search */
} awq_quant_method;

/* The packed layout of the written checkpoint (docs/formats.md). */
typedef enum awq_quant_format {
    AWQ_FORMAT_GEMM = 0, /* AutoAWQ "gemm": qweight (in, out/8) */
    AWQ_FORMAT_GEMV = 1, /* AutoAWQ "gemv": qweight (out, in/8) */
} awq_quant_format;

/* Parameters of awq_quantize; start from awq_quant_params_default(). */
typedef struct awq_quant_params {
    const char *model_dir;          /* input HF checkpoint */
    const char *out_dir;            /* output directory (must not exist unless force) */
    int32_t w_bit;                  /* 4 */
    int32_t group_size;             /* 32, 64 or 128 (default 128) */
    awq_quant_method method;        /* AWQ (default) or RTN */
    awq_quant_format format;        /* GEMM (default) or GEMV */
    const char *calib_path;         /* .txt or .jsonl; NULL = the installed default corpus */
    int32_t calib_samples;          /* accepted raw samples (default 128) */
    int32_t calib_seqlen;           /* block length and per-sample limit (default 512) */
    uint64_t seed;                  /* 0 = file order (AutoAWQ list-of-str semantics) */
    bool clip;                      /* clip search (default true) */
    bool duo_scaling;               /* default true */
    const char **exclude;           /* modules_to_not_convert substrings; NULL-terminated or NULL */
    const char *device;             /* backend device for the search ("auto") */
    bool force;                     /* replace out_dir */
    bool ignore_memory_limit;       /* proceed even if the estimate exceeds available RAM */
    awq_progress_fn progress;       /* optional progress, may cancel */
    void *progress_user;            /* passed to progress unchanged */
    bool no_resume;                 /* start over: do not continue an interrupted run (below) */
    awq_precision search_precision; /* the search's matmuls (default AWQ_PRECISION_FP32,
                                          exact); BF16 is faster where the backend has it */
} awq_quant_params;

/* The defaults noted in awq_quant_params (AWQ, 4 bits, group size 128, GEMM, 128 x 512
 * calibration, clip and duo scaling on, device "auto"); model_dir and out_dir are NULL and must
 * be set. Cannot fail. */
AWQ_API awq_quant_params awq_quant_params_default(void);

/* Pre-flight estimate for the given parameters (reads headers and the calibration text only). */
typedef struct awq_quant_estimate {
    int64_t peak_bytes;      /* estimated peak resident memory */
    int64_t available_bytes; /* MemAvailable at the time of the call */
    double search_flops;     /* floating-point operations the search will perform */
    double seconds;          /* rough wall-time estimate on the selected device */
    int32_t n_blocks;        /* calibration blocks of calib_seqlen tokens */
    int32_t n_layers;        /* decoder layers of the model */
} awq_quant_estimate;

/* Fills *out (caller's memory) without loading weights: reads config.json and, for AWQ,
 * tokenizes the calibration text. Errors (detail on rt): AWQ_ERR_INVALID_ARG (NULL argument or
 * parameter out of range), AWQ_ERR_IO / AWQ_ERR_FORMAT (config, tokenizer, calibration file),
 * AWQ_ERR_UNSUPPORTED (architecture). */
AWQ_API awq_status awq_quantize_estimate(awq_runtime *rt, const awq_quant_params *p, awq_quant_estimate *out);

/* What awq_quantize did (the report argument). */
typedef struct awq_quant_report {
    double seconds;         /* wall time */
    double search_flops;    /* floating-point operations performed by the search */
    int64_t peak_rss_bytes; /* peak resident set size of the process */
    int32_t n_blocks;       /* calibration blocks used */
    int32_t n_linears;      /* linears quantized */
} awq_quant_report;

/* Quantizes p->model_dir into p->out_dir (AutoAWQ GEMM/GEMV checkpoint). Everything is written
 * to a temporary directory beside out_dir (OUT_DIR.tmp-XXXXXX) and renamed at the very end; on
 * failure or cancellation nothing is left behind. report may be NULL.
 *
 * Resume: the temporary directory records each finished decoder layer durably (data fsync'd,
 * then a record with the SHA-256 of the layer's tensors), together with a fingerprint of
 * everything that determines the result (the awq version, the options, the resolved backend,
 * the calibration text, the model's config/tokenizer files, and the size, mtime and header of
 * its safetensors files). If the process is killed, running the same quantization again finds
 * the directory, verifies the recorded layers and continues after the last one; the checkpoint
 * is bit-identical to an uninterrupted run's. If the inputs changed, awq_quantize refuses with
 * AWQ_ERR_EXISTS naming what changed; p->no_resume starts over (removing the partial runs).
 * The thread count is not part of the fingerprint: results do not depend on it.
 * The published directory contains awq-manifest.json, the SHA-256 of every file (see
 * awq_checkpoint_verify).
 * Errors (detail on rt, naming the file, tensor or option): AWQ_ERR_INVALID_ARG, AWQ_ERR_EXISTS
 * (out_dir exists and not force, or a different interrupted run), AWQ_ERR_IO, AWQ_ERR_FORMAT,
 * AWQ_ERR_UNSUPPORTED (architecture, a dimension the group size does not divide),
 * AWQ_ERR_OUT_OF_MEMORY (also: the estimate exceeds available memory and not
 * ignore_memory_limit), AWQ_ERR_NO_BACKEND, AWQ_ERR_DEVICE_MEMORY, AWQ_ERR_BACKEND,
 * AWQ_ERR_NUMERIC (non-finite activations or weights), AWQ_ERR_CANCELLED. */
AWQ_API awq_status awq_quantize(awq_runtime *rt, const awq_quant_params *p, awq_quant_report *report);

/* A temporary directory OUT_DIR.tmp-XXXXXX left behind by an interrupted awq_quantize. */
typedef struct awq_stale_info {
    const char *path;    /* the directory (borrowed, valid during the callback) */
    int64_t bytes;       /* bytes of the files in it */
    int32_t layers_done; /* decoder layers recorded as finished */
    int32_t n_layers;    /* decoder layers of the model (0 if unknown) */
    bool resumable;      /* it has a fingerprint, so the same command can continue it */
    bool in_use;         /* another process is working in it (never removed) */
    bool removed;        /* this call removed it */
} awq_stale_info;

/* Called by awq_quantize_stale once per directory found; info is borrowed for the call. */
typedef void (*awq_stale_fn)(const awq_stale_info *info, void *user);

/* Lists (remove = false) or removes (remove = true) the stale temporary directories of out_dir,
 * calling fn (may be NULL) for each; *n_found (may be NULL) receives their count. A directory
 * another process works in is never removed. Errors (detail on rt): AWQ_ERR_INVALID_ARG,
 * AWQ_ERR_IO. */
AWQ_API awq_status awq_quantize_stale(awq_runtime *rt, const char *out_dir, bool remove, awq_stale_fn fn,
                                      void *user, int32_t *n_found);

/* ------------------------------------------------------------------------------------------ */
/* Checkpoint verification                                                                     */

/* One file checked by awq_checkpoint_verify. */
typedef struct awq_verify_item {
    const char *file;     /* name relative to the checkpoint directory */
    int64_t bytes;        /* size found on disk, -1 if missing */
    const char *expected; /* SHA-256 (hex) recorded in awq-manifest.json, NULL if not listed */
    const char *actual;   /* SHA-256 (hex) of the file as found, NULL if missing */
    const char *problem;  /* NULL if it matches; else "missing", "size differs",
                             "content differs" or "not listed in the manifest" */
} awq_verify_item;

/* Called by awq_checkpoint_verify once per file; item is borrowed for the call. */
typedef void (*awq_verify_fn)(const awq_verify_item *item, void *user);

/* Checks a checkpoint written by awq_quantize against its awq-manifest.json, calling fn (may be
 * NULL) for each file. AWQ_OK: every listed file is present with the recorded size and SHA-256
 * (files not listed are reported but allowed). AWQ_ERR_FORMAT: some file is missing or differs
 * (last_error counts them), or the manifest is malformed; AWQ_ERR_IO: no manifest. */
AWQ_API awq_status awq_checkpoint_verify(awq_runtime *rt, const char *dir, awq_verify_fn fn, void *user);

#ifdef __cplusplus
}
#endif

#endif /* AWQ_H */
