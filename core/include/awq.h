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

#define AWQ_VERSION_MAJOR 0
#define AWQ_VERSION_MINOR 1
#define AWQ_VERSION_PATCH 0

/* The library version as "MAJOR.MINOR.PATCH". Static string. */
AWQ_API const char *awq_version(void);

/* ------------------------------------------------------------------------------------------ */
/* Status codes                                                                                */

typedef enum awq_status {
    AWQ_OK                = 0,  /* success */
    AWQ_ERR_INVALID_ARG   = 1,  /* a caller argument is wrong; last_error says which */
    AWQ_ERR_OUT_OF_MEMORY = 2,  /* host allocation failed, or the work would not fit in memory */
    AWQ_ERR_DEVICE_MEMORY = 3,  /* device allocation failed */
    AWQ_ERR_IO            = 4,  /* open/read/write/mmap/rename failed */
    AWQ_ERR_FORMAT        = 5,  /* malformed safetensors/GGUF/JSON/tokenizer/config */
    AWQ_ERR_UNSUPPORTED   = 6,  /* architecture, dtype, shape or op not supported */
    AWQ_ERR_NO_BACKEND    = 7,  /* requested backend/device is not loaded */
    AWQ_ERR_BACKEND       = 8,  /* CUDA/OpenCL/oneDNN runtime error */
    AWQ_ERR_CANCELLED     = 9,  /* a progress callback returned false */
    AWQ_ERR_NUMERIC       = 10, /* NaN/Inf where finite values are required */
    AWQ_ERR_EXISTS        = 11, /* output already exists and overwriting was not allowed */
    AWQ_STATUS_COUNT_
} awq_status;

/* A short static description of a status code ("invalid argument"). Never NULL. */
AWQ_API const char *awq_status_str(awq_status s);

/* ------------------------------------------------------------------------------------------ */
/* Element types                                                                               */

typedef enum awq_dtype {
    AWQ_DTYPE_F32  = 0,
    AWQ_DTYPE_F16  = 1,
    AWQ_DTYPE_BF16 = 2,
    AWQ_DTYPE_I32  = 3,
    AWQ_DTYPE_I64  = 4,
    AWQ_DTYPE_U8   = 5,
    AWQ_DTYPE_I8   = 6,
    AWQ_DTYPE_I16  = 7,
    AWQ_DTYPE_F64  = 8,
    AWQ_DTYPE_COUNT_
} awq_dtype;

/* Size of one element in bytes; 0 for an unknown dtype. */
AWQ_API size_t awq_dtype_size(awq_dtype t);
/* Safetensors-style name: "F32", "F16", "BF16", "I32", ...; "?" for an unknown dtype. */
AWQ_API const char *awq_dtype_name(awq_dtype t);

/* ------------------------------------------------------------------------------------------ */
/* Logging and progress                                                                        */

typedef enum awq_log_level {
    AWQ_LOG_LEVEL_ERROR = 0,
    AWQ_LOG_LEVEL_WARN  = 1,
    AWQ_LOG_LEVEL_INFO  = 2,
    AWQ_LOG_LEVEL_DEBUG = 3,
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

typedef struct awq_runtime awq_runtime;

typedef struct awq_runtime_params {
    awq_log_fn  log;         /* NULL: silent */
    void       *log_user;
    const char *backend_dir; /* extra directory searched first for backend plugins; may be NULL */
    bool        load_plugins;/* default true; false: only the built-in cpu backend */
    int32_t     n_threads;   /* CPU threads for the cpu backends; 0 = all available cores */
} awq_runtime_params;

AWQ_API awq_runtime_params awq_runtime_params_default(void);

/* Creates a runtime: registers the built-in cpu backend and loads the plugins it finds
 * (backend_dir, $AWQ_BACKEND_PATH, the executable's directory, the install directory).
 * Owned: destroy with awq_runtime_destroy. */
AWQ_API awq_status awq_runtime_create(awq_runtime **out, const awq_runtime_params *params);
AWQ_API void       awq_runtime_destroy(awq_runtime *rt);

/* Detail of the last failure on rt, e.g. "model.safetensors: tensor 'x': offsets [0, 8) overlap
 * tensor 'y'". Borrowed: valid until the next call on rt. Empty string if none. */
AWQ_API const char *awq_runtime_last_error(const awq_runtime *rt);

/* Backends and devices known to the runtime. */
typedef struct awq_device_desc {
    char    backend[32];      /* "cpu", "cpu-dnnl", "opencl", "cuda" */
    int32_t index;            /* device index within the backend */
    char    name[128];        /* human-readable device name */
    int64_t memory_bytes;     /* device memory (0 if unknown) */
    int32_t score;            /* probe score; higher is preferred by "auto" */
} awq_device_desc;

AWQ_API int32_t    awq_runtime_device_count(const awq_runtime *rt);
AWQ_API awq_status awq_runtime_device_get(const awq_runtime *rt, int32_t i, awq_device_desc *out);
/* Plugins that were found but skipped, with the reason: "path: reason" lines.
 * Borrowed: valid until rt is destroyed. */
AWQ_API int32_t     awq_runtime_skipped_count(const awq_runtime *rt);
AWQ_API const char *awq_runtime_skipped_get(const awq_runtime *rt, int32_t i);

/* ------------------------------------------------------------------------------------------ */
/* Tokenizer                                                                                   */

typedef struct awq_tokenizer awq_tokenizer;

/* Loads tokenizer.json (+ tokenizer_config.json and generation_config.json when present) from a
 * model directory. Supported: BPE models (byte-level GPT-2 style and SentencePiece-style with
 * byte fallback) with the usual normalizers, pre-tokenizers and decoders; anything else fails
 * with AWQ_ERR_UNSUPPORTED naming the field. The runtime must outlive the tokenizer (it receives
 * the error details). Owned: destroy with awq_tokenizer_destroy. */
AWQ_API awq_status awq_tokenizer_load(awq_tokenizer **out, awq_runtime *rt, const char *model_dir);
AWQ_API void       awq_tokenizer_destroy(awq_tokenizer *tok);

/* Encodes UTF-8 text. add_special: add BOS/EOS as the tokenizer's post-processor and
 * tokenizer_config.json say (add_bos_token / add_eos_token there take precedence).
 * Query-size-then-fill: with ids == NULL (or cap too small) *n_out receives the required count
 * and AWQ_ERR_INVALID_ARG is returned only if ids != NULL.
 * Behaviour at the edges: invalid UTF-8 is first replaced, each maximal ill-formed subsequence by
 * U+FFFD (as Python's errors="replace"); added tokens, special ones included, are recognised
 * inside the text as Hugging Face `tokenizers` does (unless tokenizer_config.json sets
 * split_special_tokens); empty text gives no ids besides BOS/EOS.
 * Not thread-safe on one tokenizer (encode fills a word cache); use one tokenizer per thread. */
AWQ_API awq_status awq_tokenizer_encode(awq_tokenizer *tok, const char *text, size_t len,
                                        bool add_special, int32_t *ids, int64_t cap,
                                        int64_t *n_out);
/* Decodes ids to UTF-8 text; skip_special drops special tokens. Query-size-then-fill on bytes:
 * *len_out is the text length without the terminating NUL, which needs cap >= *len_out + 1.
 * The bytes of the tokens are joined, then any ill-formed UTF-8 becomes U+FFFD. An id outside
 * the vocabulary is AWQ_ERR_INVALID_ARG. */
AWQ_API awq_status awq_tokenizer_decode(awq_tokenizer *tok, const int32_t *ids, int64_t n,
                                        bool skip_special, char *text, size_t cap,
                                        size_t *len_out);
AWQ_API int32_t awq_tokenizer_vocab_size(const awq_tokenizer *tok); /* largest id + 1 */
AWQ_API int32_t awq_tokenizer_bos(const awq_tokenizer *tok); /* -1 if none */
AWQ_API int32_t awq_tokenizer_eos(const awq_tokenizer *tok); /* -1 if none */
/* True if id ends generation (EOS, the eos_token_id(s) of generation_config.json, or one of the
 * usual end-of-turn tokens such as <|eot_id|>, <|im_end|>, <|endoftext|>, <end_of_turn>). */
AWQ_API bool    awq_tokenizer_is_eog(const awq_tokenizer *tok, int32_t id);

/* Incremental decoder for streaming: feed ids one at a time, get only complete UTF-8. The
 * concatenated output equals awq_tokenizer_decode of all ids. */
typedef struct awq_detok awq_detok;
AWQ_API awq_status awq_detok_create(awq_detok **out, awq_tokenizer *tok, bool skip_special);
AWQ_API void       awq_detok_destroy(awq_detok *d);
/* Appends the bytes that became complete after id to buf (NUL-terminated); *len_out = count.
 * Bytes of an incomplete UTF-8 sequence are held back until the next call or flush. If buf is
 * too small (cap < *len_out + 1) the call returns AWQ_ERR_INVALID_ARG and keeps the bytes for
 * the next push or flush: nothing is ever dropped. */
AWQ_API awq_status awq_detok_push(awq_detok *d, int32_t id, char *buf, size_t cap,
                                  size_t *len_out);
/* Returns whatever is held back (invalid sequences come out as U+FFFD). */
AWQ_API awq_status awq_detok_flush(awq_detok *d, char *buf, size_t cap, size_t *len_out);

/* Chat messages rendered with the model's chat_template (tokenizer_config.json, else
 * chat_template.jinja or chat_template.json in the model directory). */
typedef struct awq_chat_message {
    const char *role;    /* "system", "user", "assistant" */
    const char *content;
} awq_chat_message;

/* Renders messages into a prompt string with the template's Jinja subset (for/if/set, loop.*,
 * namespace, common filters and tests, raise_exception), with bos_token, eos_token and
 * add_generation_prompt defined. A construct outside the subset fails with AWQ_ERR_UNSUPPORTED
 * naming it and its template line; raise_exception fails with AWQ_ERR_INVALID_ARG and its
 * message; no template: AWQ_ERR_UNSUPPORTED. The prompt usually contains the BOS text itself,
 * so encode it with add_special = false. Owned: free with awq_free. */
AWQ_API awq_status awq_tokenizer_apply_chat(awq_tokenizer *tok, const awq_chat_message *msgs,
                                            int32_t n_msgs, bool add_generation_prompt,
                                            char **out);

/* Frees memory the library returned as "free with awq_free". */
AWQ_API void awq_free(void *p);

/* ------------------------------------------------------------------------------------------ */
/* Models and sessions                                                                         */

typedef struct awq_model   awq_model;
typedef struct awq_session awq_session;

typedef struct awq_model_params {
    const char     *device;   /* "auto" (default), "cpu", "cpu-dnnl", "opencl[:N]", "cuda[:N]" */
    awq_progress_fn progress; /* optional load progress */
    void           *progress_user;
} awq_model_params;

AWQ_API awq_model_params awq_model_params_default(void);

/* Loads a Hugging Face-layout directory (config.json + safetensors), fp16/bf16/fp32 or AWQ
 * (GEMM or GEMV layout) and uploads it to the chosen device. Owned: awq_model_destroy. */
AWQ_API awq_status awq_model_load(awq_model **out, awq_runtime *rt, const char *dir,
                                  const awq_model_params *params);
AWQ_API void       awq_model_destroy(awq_model *m);

typedef struct awq_model_info {
    char    arch[32];         /* config.json model_type: "llama", "mistral", "qwen2", "qwen3" */
    char    device[64];       /* backend:device actually used, e.g. "cpu-dnnl:0" */
    int32_t n_layers, d_model, n_heads, n_kv_heads, head_dim, d_ff, vocab_size, max_ctx;
    bool    quantized;        /* AWQ 4-bit linears */
    int32_t group_size;       /* AWQ group size, 0 if not quantized */
    int64_t n_params;         /* parameters as stored */
    int64_t weight_bytes;     /* bytes of weights on the device */
} awq_model_info;

AWQ_API awq_status awq_model_get_info(const awq_model *m, awq_model_info *out);

/* A token stream with its KV cache. n_ctx = 0 uses min(model max, 4096).
 * Owned: awq_session_destroy. */
AWQ_API awq_status awq_session_create(awq_session **out, awq_model *m, int32_t n_ctx);
AWQ_API void       awq_session_destroy(awq_session *s);
AWQ_API void       awq_session_reset(awq_session *s);         /* forget all tokens */
AWQ_API int32_t    awq_session_n_past(const awq_session *s);  /* tokens in the cache */

/* Appends n tokens at positions n_past..n_past+n-1 and runs the model on them.
 * logits: NULL, or (vocab,) floats for the last token, or - with all_logits - (n, vocab). */
AWQ_API awq_status awq_session_eval(awq_session *s, const int32_t *tokens, int32_t n,
                                    float *logits, bool all_logits);

/* ------------------------------------------------------------------------------------------ */
/* Sampling                                                                                    */

typedef struct awq_sampler_params {
    float    temperature; /* 0 = greedy (default 0.8) */
    int32_t  top_k;       /* 0 = off (default 40) */
    float    top_p;       /* 1 = off (default 0.95) */
    uint64_t seed;        /* RNG seed (default 0x5eed) */
} awq_sampler_params;

typedef struct awq_sampler awq_sampler;
AWQ_API awq_sampler_params awq_sampler_params_default(void);
AWQ_API awq_status awq_sampler_create(awq_sampler **out, const awq_sampler_params *p);
AWQ_API void       awq_sampler_destroy(awq_sampler *s);
/* Picks a token from logits (vocab,). logits may be modified in place. */
AWQ_API int32_t    awq_sampler_sample(awq_sampler *s, float *logits, int32_t vocab);

/* ------------------------------------------------------------------------------------------ */
/* Perplexity                                                                                  */

/* Called after each chunk with the running perplexity; return false to cancel. */
typedef bool (*awq_ppl_chunk_fn)(int32_t chunk, int32_t n_chunks, double nll_sum,
                                 int64_t n_pred, void *user);

typedef struct awq_ppl_result {
    double  ppl;       /* exp(nll_sum / n_pred) */
    double  nll_sum;   /* sum of -log p over predicted tokens */
    int64_t n_pred;    /* predicted tokens */
    int32_t n_chunks;  /* windows evaluated */
    int64_t n_tokens;  /* tokens in the file */
} awq_ppl_result;

/* Perplexity the way AutoAWQ and quantization papers report it: tokenize the whole text once
 * (with BOS if the tokenizer adds one), cut non-overlapping windows of ctx tokens (the tail is
 * dropped), and average -log p of every predicted token (ctx-1 per window).
 * max_chunks <= 0: all windows. */
AWQ_API awq_status awq_eval_perplexity(awq_model *m, awq_tokenizer *tok, const char *text,
                                       size_t len, int32_t ctx, int32_t max_chunks,
                                       awq_ppl_chunk_fn cb, void *user, awq_ppl_result *out);

/* ------------------------------------------------------------------------------------------ */
/* GGUF -> Hugging Face conversion                                                             */

typedef struct awq_convert_params {
    awq_dtype       dtype;    /* F16 (default), BF16 or F32 for the written weights */
    bool            force;    /* replace an existing out_dir */
    awq_progress_fn progress;
    void           *progress_user;
} awq_convert_params;

AWQ_API awq_convert_params awq_convert_params_default(void);

/* Converts a Llama-family GGUF into a Hugging Face-layout directory (config.json,
 * model.safetensors, tokenizer.json, tokenizer_config.json, generation_config.json).
 * Written into a temporary directory beside out_dir and renamed into place. */
AWQ_API awq_status awq_convert_gguf(awq_runtime *rt, const char *gguf_path, const char *out_dir,
                                    const awq_convert_params *params);

/* ------------------------------------------------------------------------------------------ */
/* AWQ quantization                                                                            */

typedef enum awq_quant_method {
    AWQ_METHOD_AWQ = 0, /* activation-aware scale + clip search (AutoAWQ) */
    AWQ_METHOD_RTN = 1, /* round-to-nearest, same format, no search */
} awq_quant_method;

typedef enum awq_quant_format {
    AWQ_FORMAT_GEMM = 0, /* AutoAWQ "gemm": qweight (in, out/8) */
    AWQ_FORMAT_GEMV = 1, /* AutoAWQ "gemv": qweight (out, in/8) */
} awq_quant_format;

typedef struct awq_quant_params {
    const char      *model_dir;      /* input HF checkpoint */
    const char      *out_dir;        /* output directory (must not exist unless force) */
    int32_t          w_bit;          /* 4 */
    int32_t          group_size;     /* 32, 64 or 128 (default 128) */
    awq_quant_method method;
    awq_quant_format format;
    const char      *calib_path;     /* .txt or .jsonl; NULL = the installed default corpus */
    int32_t          calib_samples;  /* accepted raw samples (default 128) */
    int32_t          calib_seqlen;   /* block length and per-sample limit (default 512) */
    uint64_t         seed;           /* 0 = file order (AutoAWQ list-of-str semantics) */
    bool             clip;           /* clip search (default true) */
    bool             duo_scaling;    /* default true */
    const char     **exclude;        /* modules_to_not_convert substrings; NULL-terminated or NULL */
    const char      *device;         /* backend device for the search ("auto") */
    bool             force;          /* replace out_dir */
    bool             ignore_memory_limit; /* proceed even if the estimate exceeds available RAM */
    awq_progress_fn  progress;
    void            *progress_user;
} awq_quant_params;

AWQ_API awq_quant_params awq_quant_params_default(void);

/* Pre-flight estimate for the given parameters (reads headers and the calibration text only). */
typedef struct awq_quant_estimate {
    int64_t peak_bytes;      /* estimated peak resident memory */
    int64_t available_bytes; /* MemAvailable at the time of the call */
    double  search_flops;    /* floating-point operations the search will perform */
    double  seconds;         /* rough wall-time estimate on the selected device */
    int32_t n_blocks;        /* calibration blocks of calib_seqlen tokens */
    int32_t n_layers;
} awq_quant_estimate;

AWQ_API awq_status awq_quantize_estimate(awq_runtime *rt, const awq_quant_params *p,
                                         awq_quant_estimate *out);

typedef struct awq_quant_report {
    double  seconds;         /* wall time */
    double  search_flops;    /* floating-point operations performed by the search */
    int64_t peak_rss_bytes;  /* peak resident set size of the process */
    int32_t n_blocks;        /* calibration blocks used */
    int32_t n_linears;       /* linears quantized */
} awq_quant_report;

/* Quantizes p->model_dir into p->out_dir (AutoAWQ GEMM/GEMV checkpoint). Everything is written
 * to a temporary directory beside out_dir and renamed at the very end; on failure or
 * cancellation nothing is left behind. report may be NULL. */
AWQ_API awq_status awq_quantize(awq_runtime *rt, const awq_quant_params *p,
                                awq_quant_report *report);

#ifdef __cplusplus
}
#endif

#endif /* AWQ_H */
