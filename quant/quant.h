/*
 * quant.h - internal interface between the quantizer's files (awq_quantize is in awq.h).
 */
#ifndef AWQ_QUANT_H
#define AWQ_QUANT_H

#include <cjson/cJSON.h>

#include "forward.h"
#include "internal.h"

/* ---- time per phase (quantize.c; --verbose prints it) ----------------------------------- */

/* Phases of one awq_quantize run. Each is timed as a disjoint region of wall time (the regions
 * never nest), so their sum plus "other" is the run's wall time. Device ops are asynchronous on
 * GPU backends: a region ends at the next synchronizing call (a download, a scalar result), so
 * there the split between adjacent phases is approximate; on the CPU backends it is exact. */
typedef enum awq_phase {
    AWQ_PH_SETUP,      /* config, safetensors headers, backend, fingerprint, pre-flight rate */
    AWQ_PH_CALIB,      /* tokenizing the calibration text */
    AWQ_PH_EMBED,      /* activation buffers and the embedding of the calibration blocks */
    AWQ_PH_LOAD,       /* one layer's weights: read + convert to F32 + upload */
    AWQ_PH_CAPTURE,    /* the full-precision forward pass recording every linear's input */
    AWQ_PH_REPLAY,     /* resumed layers: load + capture only */
    AWQ_PH_SEARCH_QKV, /* scale search per group (x/w statistics, 20 candidates, losses) */
    AWQ_PH_SEARCH_O,
    AWQ_PH_SEARCH_GATE_UP,
    AWQ_PH_SEARCH_DOWN,
    AWQ_PH_FOLD,     /* folding the scales into norms/linears, scaling the captured inputs */
    AWQ_PH_CLIP,     /* re-upload of the scaled weights and the clip search */
    AWQ_PH_QUANTIZE, /* final fp16 cast + quantize_w4 of each linear */
    AWQ_PH_PACK,     /* AutoAWQ GEMM/GEMV packing */
    AWQ_PH_HASH,     /* SHA-256 of each written tensor (resume records) */
    AWQ_PH_WRITE,    /* appending tensors to the shards (incl. fp16/bf16 conversion) */
    AWQ_PH_COMMIT,   /* per-layer fsync + record */
    AWQ_PH_FINISH,   /* config.json, tokenizer copies, manifest, rename */
    AWQ_PH_COUNT
} awq_phase;

/* Seconds per phase; a NULL pointer to it disables timing (tests that call the parts alone). */
typedef struct awq_phase_times {
    double s[AWQ_PH_COUNT];
    int n[AWQ_PH_COUNT]; /* regions timed (e.g. 16 layers -> 16 captures) */
} awq_phase_times;

/* The phase's name for the table ("search qkv"). */
const char *awq_phase_name(awq_phase ph);
/* Adds the time since t0 (awq_time_now()) to phase ph of t (NULL: nothing); returns now, so
 * that back-to-back regions can chain. */
double awq_phase_add(awq_phase_times *t, awq_phase ph, double t0);

/* ---- calibration data (calib.c) -------------------------------------------------------- */

typedef struct awq_calib {
    int32_t *tokens; /* (n_blocks, seqlen) token ids, row-major */
    int32_t n_blocks;
    int32_t seqlen;
    int32_t n_samples; /* raw samples accepted */
    int32_t n_skipped; /* samples dropped for being longer than seqlen */
    int64_t n_tokens;  /* tokens of the accepted samples (before the tail was cut) */
} awq_calib;

/* AutoAWQ's calibration semantics (docs/algorithm.md 1.3): samples in file order (or shuffled with
 * seed != 0), each stripped and tokenized with BOS, samples longer than seqlen dropped, the first
 * n_samples accepted ones concatenated and cut into n_blocks = T / seqlen blocks.
 * path: .jsonl (one JSON object per line with a "text" string) or any other text file
 * (samples = blank-line separated paragraphs); NULL = the installed default corpus. */
awq_status awq_calib_build(awq_runtime *rt, awq_tokenizer *tok, const char *path, int32_t n_samples,
                           int32_t seqlen, uint64_t seed, awq_calib *out);
/* The same from text in memory (path names it in messages; jsonl: one JSON object per line). */
awq_status awq_calib_build_text(awq_runtime *rt, awq_tokenizer *tok, const char *path, const char *text,
                                size_t len, bool jsonl, int32_t n_samples, int32_t seqlen, uint64_t seed,
                                awq_calib *out);
void awq_calib_free(awq_calib *c);
/* Path of the default corpus (installed copy, else the source tree's). */
const char *awq_calib_default_path(void);

/* ---- one decoder layer being quantized (layer.c) --------------------------------------- */

enum { AWQ_LIN_Q, AWQ_LIN_K, AWQ_LIN_V, AWQ_LIN_O, AWQ_LIN_GATE, AWQ_LIN_UP, AWQ_LIN_DOWN, AWQ_LIN_COUNT };

/* Layer-relative names ("self_attn.q_proj") of the linears, in AutoAWQ's order. */
extern const char *const awq_lin_names[AWQ_LIN_COUNT];
/* The checkpoint linear that holds linear l and l's first row in it: its own name and 0, or
 * the fused tensor of Phi-3 (self_attn.qkv_proj = q | k | v, mlp.gate_up_proj = gate | up). */
const char *awq_lin_ckpt_name(const awq_model_config *c, int l, int64_t *row0);

struct awq_safetensors;

typedef struct awq_qlayer {
    int32_t index;
    /* n_lin linears: 0..3 q/k/v/o; a dense MLP: 4..6 gate/up/down (AWQ_LIN_*); a mixture of
     * experts (n_experts > 0): 4 + 3e + {0, 1, 2} = expert e's gate/up/down, then the shared
     * expert's gate/up/down (Qwen2-MoE). Arrays of n_lin, allocated by awq_qlayer_read. */
    int32_t n_lin;
    int64_t *out, *in;
    float **w; /* host master weights (out, in) F32 */
    float **b; /* host biases (out,) F32 or NULL */
    bool *excluded;
    float *attn_norm, *ffn_norm; /* (d,) */
    float *q_norm, *k_norm;      /* (hd,) or NULL */
    /* device side: F32 dense copies used by the forward pass and the search */
    awq_layer_weights dw;
    awq_tensor *fq; /* (out, in) F32 fake-quantized scratch per linear */
    awq_buflist bufs;
    float *post_attn_norm, *post_ffn_norm; /* (d,) Gemma's output norms, or NULL */
    /* mixture of experts: the router (n_experts, d) and the shared expert's gate (1, d), kept in
     * full precision (columns scaled with the feed-forward group), NULL otherwise */
    int32_t n_experts;
    float *router, *shared_gate;
    int64_t *expert_tokens; /* (n_experts,) calibration rows routed to each expert */
} awq_qlayer;

/* Index of expert e's part (0 gate, 1 up, 2 down) and of the shared expert's part. */
static inline int awq_qlin_expert(int32_t e, int part) { return 4 + 3 * e + part; }
static inline int awq_qlin_shared(const awq_qlayer *L, int part) { return 4 + 3 * L->n_experts + part; }

/* Layer-relative checkpoint name of linear l of L ("self_attn.q_proj",
 * "block_sparse_moe.experts.3.w1", ...) into buf. */
const char *awq_qlin_name(const awq_model_config *c, const awq_qlayer *L, int l, char *buf, size_t cap);
/* Number of linears of layer i (7 dense, 4 + 3 * experts (+ 3 shared) for a mixture of experts). */
int32_t awq_qlayer_count(const awq_model_config *c, int32_t i);

/* The linear with index l of a layer. */
static inline awq_linear *awq_layer_lin(awq_layer_weights *w, int l) {
    if (w->n_experts > 0 && l >= 4) {
        int i = l - 4;
        return i < 3 * w->n_experts ? &w->experts[i] : &w->shared[i - 3 * w->n_experts];
    }
    switch (l) {
    case AWQ_LIN_Q: return &w->q;
    case AWQ_LIN_K: return &w->k;
    case AWQ_LIN_V: return &w->v;
    case AWQ_LIN_O: return &w->o;
    case AWQ_LIN_GATE: return &w->gate;
    case AWQ_LIN_UP: return &w->up;
    default: return &w->down;
    }
}

/* Reads layer i of the input checkpoint into host F32 arrays. Norm weights are held as the
 * forward pass applies them (1 + w on Gemma, awq_norm_effective). */
awq_status awq_qlayer_read(awq_runtime *rt, const struct awq_safetensors *st, const awq_model_config *c,
                           int32_t i, const char *const *exclude, awq_qlayer *L);
/* Allocates the device copies (first call) and uploads the current host weights. */
awq_status awq_qlayer_upload(awq_runtime *rt, const awq_device *dev, const awq_model_config *c,
                             awq_qlayer *L);
void awq_qlayer_free(const awq_device *dev, awq_qlayer *L);
/* True if `name` (layer-relative) contains one of the exclude substrings. */
bool awq_name_excluded(const char *full_name, const char *const *exclude);

/* ---- search state (search.c) ------------------------------------------------------------ */

/* Calibration activations of one layer on the device, all N = n_blocks * seqlen rows. */
typedef struct awq_acts {
    int64_t N, B, T;
    awq_tensor x;        /* (N, d) layer input */
    awq_tensor xnext;    /* (N, d) layer output = next layer's input (full precision) */
    awq_tensor inp_qkv;  /* (N, d) input of q/k/v (normed) */
    awq_tensor inp_o;    /* (N, H*hd) input of o_proj */
    awq_tensor inp_gate; /* (N, d) input of gate/up (normed) */
    awq_tensor inp_down; /* (N, d_ff) input of down_proj */
    awq_tensor fp_attn;  /* (N, d) self-attention output of the unmodified layer */
    awq_tensor fp_mlp;   /* (N, d) MLP output of the unmodified layer */
    /* mixture-of-experts layers (data NULL otherwise): the calibration rows routed to each
     * expert, grouped by expert (rows [moe_off[e], moe_off[e + 1])), as inputs of its gate/up
     * and of its down projection; the shared expert's down input */
    awq_tensor moe_in;    /* (N * top-k, d) */
    awq_tensor moe_down;  /* (N * top-k, moe_ff) */
    awq_tensor sh_down;   /* (N, shared_ff) */
    int64_t *moe_off;     /* (n_experts + 1) host */
    int64_t chunk_blocks; /* blocks per forward call */
    awq_fwd_scratch s;    /* scratch for chunk_blocks * T rows */
    awq_buflist bufs;
} awq_acts;

typedef struct awq_search {
    awq_runtime *rt;
    const awq_device *dev;
    const awq_model_config *cfg;
    awq_quant_desc qd;
    const awq_tensor *inv_freq;
    awq_acts *acts;
    bool duo_scaling;
    double flops;             /* accumulated floating-point operations */
    awq_progress_fn progress; /* for cancellation checks */
    void *progress_user;
    float progress_base, progress_span;
    const char *stage_prefix;
    awq_backend_ctx *cpu_ctx;         /* built-in cpu backend for optional ops the device lacks */
    const awq_tensor *inv_freq_local; /* (hd/2,) F32 of sliding layers (Gemma 3), or NULL */
    awq_phase_times *times;           /* time per phase, or NULL */
} awq_search;

awq_status awq_acts_alloc(awq_runtime *rt, const awq_device *dev, const awq_model_config *c, int64_t B,
                          int64_t T, awq_acts *a);
void awq_acts_free(const awq_device *dev, awq_acts *a);

/* Runs the unmodified layer over all blocks, recording the inputs of every linear and the
 * module outputs; a->xnext receives the layer output. */
awq_status awq_capture(awq_search *S, awq_qlayer *L);
/* Grid search + fold + clip for one layer (docs/algorithm.md 3, 5, 6). On return the host weights
 * of L are scaled and clipped, the norms folded. */
awq_status awq_search_layer(awq_search *S, awq_qlayer *L, bool clip);
/* The scale search of one single-linear group (linear l of L, input inp (N, C)), exposed for
 * tests; best_s (C,) receives the chosen scales. */
awq_status awq_search_scales_linear(awq_search *S, awq_qlayer *L, int l, awq_tensor *inp, float *best_s);
/* Swaps x and xnext for the next layer. */
void awq_acts_advance(awq_acts *a);

/* ---- output checkpoint (output.c) ------------------------------------------------------- */

struct awq_st_writer;
struct awq_resume;
typedef struct awq_qout_rec awq_qout_rec;

typedef struct awq_qout {
    awq_runtime *rt;
    char out_dir[4096];
    char tmp_dir[4096];
    struct awq_st_writer *w;
    bool gemv; /* GEMV layout instead of GEMM */
    int32_t group_size;
    /* resume (resume.h) */
    const cJSON *fp;   /* fingerprint of this run (borrowed) */
    int lock_fd;       /* flock on progress/lock, -1 if none */
    bool resumed;      /* tmp_dir is an interrupted run's (its shards are *.prev) */
    bool track;        /* between layer_begin and layer_commit */
    awq_qout_rec *rec; /* (n_rec,) tensors written since layer_begin */
    int32_t n_rec, cap_rec;
    awq_phase_times *times; /* pack / hash / write time, or NULL */
} awq_qout;

/* Plans every output tensor from the input checkpoint: quantized linears become
 * qweight/qzeros/scales (+F16 bias), everything else keeps its name, dtype and shape; a tied
 * lm_head is dropped. The temporary directory is rs->tmp_dir when it names an interrupted run
 * (its shards are set aside as *.prev for awq_qout_restore; rs's lock moves to o), else a new
 * OUT_DIR.tmp-XXXXXX with progress/fingerprint.json = fp. */
awq_status awq_qout_begin(awq_qout *o, awq_runtime *rt, const struct awq_safetensors *st,
                          const awq_model_config *c, const awq_quant_params *p, struct awq_resume *rs,
                          const cJSON *fp);
/* For a resumed run: verifies the recorded layers 0.. against the SHA-256 in their records,
 * copies them from the set-aside shards into the new ones, and drops the records from the first
 * layer that fails on. *n_done receives the number of layers restored. */
awq_status awq_qout_restore(awq_qout *o, int32_t n_layers, const awq_quant_params *p, int32_t *n_done);
/* Brackets the writes of one decoder layer; commit makes them durable and writes the layer's
 * record (progress/layer-NNNNN.json). */
void awq_qout_layer_begin(awq_qout *o);
awq_status awq_qout_layer_commit(awq_qout *o, int32_t layer);
/* Packs and writes one quantized linear from codes (out, in), scales (out, G) fp16 bits and
 * zeros (out, G); bias (out,) F32 or NULL is written as F16. */
awq_status awq_qout_write_qlinear(awq_qout *o, const char *prefix, int64_t out_f, int64_t in_f,
                                  const uint8_t *codes, const uint16_t *scales, const uint8_t *zeros,
                                  const float *bias);
/* Writes a float tensor given as F32 host data in dtype. */
awq_status awq_qout_write_f32(awq_qout *o, const char *name, awq_dtype dtype, const float *data, int64_t n);
/* Writes raw bytes of a tensor (unchanged copy). */
awq_status awq_qout_write_raw(awq_qout *o, const char *name, const void *data, uint64_t nbytes);
/* Finishes the safetensors files, writes config.json with quantization_config, copies the
 * tokenizer and generation files, writes awq-manifest.json, removes progress/ and renames the
 * temporary directory to out_dir. */
awq_status awq_qout_commit(awq_qout *o, const char *model_dir, const awq_quant_params *p);
/* Removes the temporary directory (after a failure or cancellation). */
void awq_qout_abort(awq_qout *o);

#endif
