/*
 * awq_backend.h - the backend plugin ABI.
 *
 * A backend is one static const awq_backend_ops table plus an opaque context per device
 * instance. The cpu reference backend is built into libawq; cpu-dnnl, opencl and cuda are
 * plugins (shared modules) that export awq_backend_entry() and awq_backend_probe() through
 * AWQ_BACKEND_PLUGIN(). Plugins do not link libawq: they use only this header, awq.h (types)
 * and the static inline helpers in awq_pack.h.
 *
 * Tensor conventions
 * ------------------
 *  - awq_tensor is a view; it owns nothing.
 *  - ne[] is outermost-first (PyTorch style): a matrix (rows, cols) has ne[0] = rows,
 *    ne[1] = cols, ndim = 2. ne[ndim-1] is the innermost (contiguous) dimension.
 *  - nb[] holds strides in BYTES, in the same order. Unless an op says otherwise the innermost
 *    dimension must be contiguous (nb[ndim-1] == element size) and the op treats the tensor as
 *    rows = product of ne[0..ndim-2], each row at data + offs + (row index math via nb).
 *  - data is the backend's buffer handle: a host pointer on cpu backends, a cl_mem on OpenCL, a
 *    device pointer on CUDA. offs is a byte offset into that buffer. Only the owning backend
 *    interprets data; the core never dereferences a device tensor.
 *  - Linear weights are stored (out, in) as in Hugging Face checkpoints; matmul computes
 *    y = x * W^T (+ bias).
 *
 * Ops
 * ---
 *  - Outputs come first, then inputs, then scalars.
 *  - Ops are asynchronous on the instance's queue; synchronize() is the only barrier, and
 *    download() and the ops that return a host scalar are synchronous.
 *  - Ops never allocate device memory. A backend may size its scratch once in create() from
 *    awq_backend_config.
 *  - An op returns AWQ_ERR_UNSUPPORTED for shapes/dtypes it cannot handle and writes a reason
 *    through cfg->set_error. Members marked optional may be NULL, and supports_op() may
 *    decline cases of a member it has; the core then falls back per op (to the built-in cpu
 *    backend over host copies, or a slower path) and logs the reason once.
 */
#ifndef AWQ_BACKEND_H
#define AWQ_BACKEND_H

#include "awq.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Version of this plugin ABI, separate from the library version (docs/install.md): raised when
 * a change breaks existing plugins (a member's meaning or position); members appended at the end
 * of awq_backend_ops do not raise it (struct_size tells them apart). */
#define AWQ_BACKEND_ABI_VERSION 2 /* 2: softmax and scale_cols removed; supports_op appended */

#if defined(_WIN32)
#define AWQ_EXPORT __declspec(dllexport)
#else
#define AWQ_EXPORT __attribute__((visibility("default")))
#endif

/* A view of a tensor in a backend's buffer; see "Tensor conventions" above. */
typedef struct awq_tensor {
    awq_dtype type; /* element type */
    int32_t ndim;   /* 1..4 */
    int64_t ne[4];  /* elements per dimension, outermost-first */
    int64_t nb[4];  /* stride per dimension in bytes, outermost-first */
    void *data;     /* backend buffer handle (see above) */
    size_t offs;    /* byte offset into data */
} awq_tensor;

/* Number of elements. */
static inline int64_t awq_tensor_nelem(const awq_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->ne[i];
    return n;
}
/* Length of the innermost dimension. */
static inline int64_t awq_tensor_cols(const awq_tensor *t) { return t->ne[t->ndim - 1]; }
/* Product of all but the innermost dimension. */
static inline int64_t awq_tensor_rows(const awq_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim - 1; i++) n *= t->ne[i];
    return n;
}
/* awq_dtype_size() for plugins, which do not link libawq: bytes per element, 0 if unknown. */
static inline size_t awq_dtype_size_inline(awq_dtype t) {
    switch (t) {
    case AWQ_DTYPE_F32:
    case AWQ_DTYPE_I32: return 4;
    case AWQ_DTYPE_F16:
    case AWQ_DTYPE_BF16:
    case AWQ_DTYPE_I16: return 2;
    case AWQ_DTYPE_I64:
    case AWQ_DTYPE_F64: return 8;
    case AWQ_DTYPE_U8:
    case AWQ_DTYPE_I8: return 1;
    default: return 0;
    }
}
/* True if the whole tensor is densely packed in row-major order. */
static inline bool awq_tensor_is_contiguous(const awq_tensor *t) {
    int64_t expect = (int64_t)awq_dtype_size_inline(t->type);
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->ne[i] != 1 && t->nb[i] != expect) return false;
        expect *= t->ne[i];
    }
    return true;
}
/* True if rows (all but the innermost dim) can be addressed as row_index * nb[ndim-2]:
 * innermost contiguous and outer dims nested densely over rows. */
static inline bool awq_tensor_is_rowwise(const awq_tensor *t) {
    int64_t es = (int64_t)awq_dtype_size_inline(t->type);
    if (t->ndim == 1) return t->nb[0] == es || t->ne[0] == 1;
    if (t->nb[t->ndim - 1] != es && t->ne[t->ndim - 1] != 1) return false;
    int64_t expect = t->nb[t->ndim - 2];
    for (int i = t->ndim - 2; i >= 0; i--) {
        if (t->ne[i] != 1 && t->nb[i] != expect) return false;
        expect *= t->ne[i];
    }
    return true;
}
/* Byte stride between consecutive rows of a rowwise tensor. */
static inline int64_t awq_tensor_row_stride(const awq_tensor *t) {
    return t->ndim >= 2 ? t->nb[t->ndim - 2] : t->ne[0] * (int64_t)awq_dtype_size_inline(t->type);
}
/* Fills a contiguous view of the given shape (outermost-first). */
static inline awq_tensor awq_tensor_make(awq_dtype type, void *data, size_t offs, int ndim,
                                         const int64_t *ne) {
    awq_tensor t;
    t.type = type;
    t.ndim = ndim;
    t.data = data;
    t.offs = offs;
    int64_t s = (int64_t)awq_dtype_size_inline(type);
    for (int i = 3; i >= 0; i--) {
        t.ne[i] = 1;
        t.nb[i] = s;
    }
    for (int i = ndim - 1; i >= 0; i--) {
        t.ne[i] = ne[i];
        t.nb[i] = s;
        s *= ne[i];
    }
    return t;
}
/* A contiguous (rows, cols) view at byte offset offs of buffer data. */
static inline awq_tensor awq_tensor_2d(awq_dtype type, void *data, size_t offs, int64_t rows, int64_t cols) {
    int64_t ne[2] = {rows, cols};
    return awq_tensor_make(type, data, offs, 2, ne);
}
/* A contiguous (n,) view at byte offset offs of buffer data. */
static inline awq_tensor awq_tensor_1d(awq_dtype type, void *data, size_t offs, int64_t n) {
    return awq_tensor_make(type, data, offs, 1, &n);
}

/* An AWQ 4-bit linear layer in the canonical AutoAWQ GEMM layout (docs/formats.md 4.1):
 *   W[o][k] = (q[k][o] - z[k/gs][o]) * scales[k/gs][o]
 * with q and z packed 8 per int32 in the order [0,2,4,6,1,3,5,7] (see awq_pack.h). */
typedef struct awq_qlinear {
    int64_t in;         /* input features (K) */
    int64_t out;        /* output features (N), a multiple of 8 */
    int64_t group_size; /* gs; in % gs == 0 */
    awq_tensor qweight; /* (in, out/8) I32 */
    awq_tensor qzeros;  /* (in/gs, out/8) I32 */
    awq_tensor scales;  /* (in/gs, out) F16 */
    awq_tensor bias;    /* (out,) F16/BF16/F32, or data == NULL for none */
    void *prepared;     /* backend-owned repacked form made by weight_prepare, or NULL */
} awq_qlinear;

/* How weights are quantized (fake_quant, quantize_w4, clip_search). */
typedef struct awq_quant_desc {
    int32_t bits;       /* 4 */
    int32_t group_size; /* elements per group along the input dimension */
    bool zero_point;    /* asymmetric (AutoAWQ default) */
} awq_quant_desc;

/* The element-wise operation of binop: y = a op b. */
typedef enum awq_binop {
    AWQ_BINOP_ADD = 0, /* a + b */
    AWQ_BINOP_SUB = 1, /* a - b */
    AWQ_BINOP_MUL = 2, /* a * b */
    AWQ_BINOP_DIV = 3, /* a / b */
} awq_binop;

/* The statistic computed by reduce. */
typedef enum awq_reduce_op {
    /* x (n, c) -> y (c,) F32: mean over rows of |x| (the AWQ activation statistic x-bar). */
    AWQ_REDUCE_MEAN_ABS_COLS = 0,
    /* w (o, c), group = gs -> y (c,) F32: mean over rows of |w| / (max|w| of its group + 1e-6)
     * (the AWQ weight statistic w-bar, docs/algorithm.md 3.2). */
    AWQ_REDUCE_WMEAN_GROUPS = 1,
    /* x (n, c) -> y (c,) F32: max over rows of |x|. */
    AWQ_REDUCE_MAX_ABS_COLS = 2,
} awq_reduce_op;

/* The reduction to one number computed by scalar. */
typedef enum awq_scalar_op {
    AWQ_SCALAR_SSE = 0, /* sum over all elements of (a - b)^2 */
    AWQ_SCALAR_DOT = 1, /* sum over all elements of a * b */
} awq_scalar_op;

/* Activation of a gated MLP (act_mul). */
typedef enum awq_act {
    AWQ_ACT_SILU = 0,      /* Llama, Qwen, Mistral, Phi-3 */
    AWQ_ACT_GELU_TANH = 1, /* Gemma: gelu_pytorch_tanh */
} awq_act;

/* Identifiers of the ops, for supports_op() and for messages (the member of the same name). */
typedef enum awq_op {
    AWQ_OP_MATMUL = 0,
    AWQ_OP_MATMUL_W4A16,
    AWQ_OP_RMSNORM,
    AWQ_OP_ROPE,
    AWQ_OP_ATTENTION,
    AWQ_OP_SILU_MUL,
    AWQ_OP_BINOP,
    AWQ_OP_GET_ROWS,
    AWQ_OP_CONVERT,
    AWQ_OP_FAKE_QUANT,
    AWQ_OP_QUANTIZE_W4,
    AWQ_OP_REDUCE,
    AWQ_OP_SCALAR,
    AWQ_OP_CLIP_SEARCH,
    AWQ_OP_GRAM,
    AWQ_OP_WEIGHT_PREPARE,
    AWQ_OP_MATMUL_W4A16_MULTI,
    AWQ_OP_STEP_GRAPH,
    AWQ_OP_ACT_MUL,
    AWQ_OP_SOFTCAP,
    AWQ_OP_ATTENTION_SOFTCAP,
    AWQ_OP_MATMUL_Q8,
    AWQ_OP_COUNT_
} awq_op;

/* A question to supports_op(): can the device run `op` for this case? */
typedef struct awq_op_query {
    awq_op op; /* the op asked about */
    /* The case, by op (0 where the op has no cases):
     *   ACT_MUL: an awq_act; REDUCE: an awq_reduce_op; SCALAR: an awq_scalar_op;
     *   MATMUL: the weight's awq_dtype; MATMUL_W4A16 / MATMUL_W4A16_MULTI: the group size. */
    int32_t param;
} awq_op_query;

typedef struct awq_backend_ctx awq_backend_ctx; /* defined by each backend */

/* Host services handed to a backend at create(). */
typedef struct awq_backend_config {
    int32_t n_threads; /* CPU threads (0 = all cores) */
    int64_t max_ctx;   /* hint: longest sequence attention will see */
    /* Log through the runtime's logger (may be NULL). */
    void (*log)(void *host, awq_log_level level, const char *msg);
    /* Record the detail of a failure on the runtime (may be NULL). */
    void (*set_error)(void *host, const char *msg);
    void *host; /* first argument of log/set_error */
    /* awq_precision: AWQ_PRECISION_BF16 allows matmul / matmul_w4a16 / gram to round x and W to
     * bfloat16 (fp32 accumulation) where the backend has a bf16 unit; FP32 = the exact contract. */
    int32_t matmul_precision;
    /* 1: matmul_w4a16 may quantize x to int8 per weight group (awq_model_params.int8_activations;
     * the cpu backends' VNNI / AVX2 decode path); 0: the exact contract. */
    int32_t w4_act_int8;
} awq_backend_config;

/* What device_info reports about one device of a backend. */
typedef struct awq_device_info {
    char name[128];          /* human-readable device name */
    int64_t memory_bytes;    /* 0 if unknown */
    int64_t max_alloc_bytes; /* largest single buffer, 0 if unknown */
    bool is_gpu;             /* preferred by "auto" over the CPU backends */
} awq_device_info;

/* A backend: one static const table per plugin (docs/backends.md says how to write one).
 * Required members are listed in AWQ_BACKEND_REQUIRED_OPS; the others may be NULL. */
typedef struct awq_backend_ops {
    uint32_t abi_version; /* = AWQ_BACKEND_ABI_VERSION; checked at load */
    uint32_t struct_size; /* = sizeof(awq_backend_ops); members below are append-only */
    const char *name;     /* "cpu", "cpu-dnnl", "opencl", "cuda" */

    /* ---- devices and instances ---- */
    /* Number of usable devices (>= 1 once the probe succeeded). */
    int32_t (*device_count)(void);
    /* Describes device 0 <= device < device_count() into *out. */
    awq_status (*device_info)(int32_t device, awq_device_info *out);
    /* Creates an instance (queue, scratch) on a device; *cfg is valid during the call only (copy it). */
    awq_status (*create)(int32_t device, const awq_backend_config *cfg, awq_backend_ctx **out);
    /* Frees an instance after its buffers were freed; NULL is a no-op. */
    void (*destroy)(awq_backend_ctx *ctx);

    /* ---- memory: the only members that allocate ---- */
    /* Allocates nbytes of device memory; *buf receives the handle used as awq_tensor.data. */
    awq_status (*buffer_alloc)(awq_backend_ctx *ctx, size_t nbytes, void **buf);
    /* Frees a buffer of buffer_alloc; NULL is a no-op. */
    void (*buffer_free)(awq_backend_ctx *ctx, void *buf);
    /* Host <-> device copies of nbytes at byte offset offs of buf. download is synchronous. */
    awq_status (*upload)(awq_backend_ctx *ctx, void *buf, size_t offs, const void *src, size_t nbytes);
    /* Device -> host: waits for the ops before it, then copies into dst. */
    awq_status (*download)(awq_backend_ctx *ctx, void *dst, const void *buf, size_t offs, size_t nbytes);
    /* Waits until every op submitted on ctx has finished; reports an asynchronous failure. */
    awq_status (*synchronize)(awq_backend_ctx *ctx);
    /* Sets nbytes at offs of buf to zero. */
    awq_status (*memset_zero)(awq_backend_ctx *ctx, void *buf, size_t offs, size_t nbytes);

    /* ---- inference ops ---- */
    /* y (n, out) F32 = x (n, in) F32 * w (out, in) F32/F16/BF16 ^T + bias (out,) [any float or NULL] */
    awq_status (*matmul)(awq_backend_ctx *ctx, awq_tensor *y, const awq_tensor *x, const awq_tensor *w,
                         const awq_tensor *bias);
    /* y (n, out) F32 = x (n, in) F32 * dequant(w)^T + w->bias */
    awq_status (*matmul_w4a16)(awq_backend_ctx *ctx, awq_tensor *y, const awq_tensor *x,
                               const awq_qlinear *w);
    /* y (n, d) F32 = x (n, d) F32 / sqrt(mean(x^2) + eps) * gamma (d,) [any float]. y may be x. */
    awq_status (*rmsnorm)(awq_backend_ctx *ctx, awq_tensor *y, const awq_tensor *x, const awq_tensor *gamma,
                          float eps);
    /* Rotary embedding in place, Hugging Face rotate-half layout: x (n_tok, n_heads, head_dim) F32
     * (rows may be strided), pos (n_tok,) I32, inv_freq (head_dim/2,) F32. For pair i < hd/2:
     *   a = x[i], b = x[i + hd/2], th = pos * inv_freq[i], c = cos(th)*attn_factor,
     *   s = sin(th)*attn_factor; x[i] = a*c - b*s; x[i + hd/2] = b*c + a*s. */
    awq_status (*rope)(awq_backend_ctx *ctx, awq_tensor *x, const awq_tensor *pos, const awq_tensor *inv_freq,
                       float attn_factor);
    /* Causal grouped-query attention over a batch of independent sequences:
     *   q (B, T, H, hd) F32, k and v (B, S, Hkv, hd) F32 (strided views allowed, innermost
     *   contiguous), out (B, T, H, hd) F32. Query t of sequence b is at position n_past + t and
     *   attends keys j <= n_past + t (and j > n_past + t - window when window > 0);
     *   S >= n_past + T. Head h uses kv head h / (H / Hkv). softmax(scale * q.k) . v */
    awq_status (*attention)(awq_backend_ctx *ctx, awq_tensor *out, const awq_tensor *q, const awq_tensor *k,
                            const awq_tensor *v, int32_t n_past, float scale, int32_t window);
    /* y (n, d) F32 = silu(gate) * up, gate/up (n, d) F32 (strided rows allowed). */
    awq_status (*silu_mul)(awq_backend_ctx *ctx, awq_tensor *y, const awq_tensor *gate, const awq_tensor *up);
    /* y (n, d) F32 = a (n, d) F32 op b, where b is (n, d) or (1, d)/(d,) broadcast over rows
     * [any float]. y may alias a. */
    awq_status (*binop)(awq_backend_ctx *ctx, awq_tensor *y, const awq_tensor *a, const awq_tensor *b,
                        awq_binop op);
    /* y (n, d) F32 = table (V, d) [F32/F16/BF16] rows ids (n,) I32. Out-of-range ids -> error. */
    awq_status (*get_rows)(awq_backend_ctx *ctx, awq_tensor *y, const awq_tensor *table,
                           const awq_tensor *ids);
    /* Copy with cast between F32/F16/BF16 (same element count and row structure; strided rows
     * allowed on both sides). F32->F16/BF16 rounds to nearest even. */
    awq_status (*convert)(awq_backend_ctx *ctx, awq_tensor *y, const awq_tensor *x);

    /* ---- quantization ops (used by quant/) ---- */
    /* wq (out, in) F32 = Q(clamp(w * s, -clip, clip)) / s, with Q the group-wise asymmetric
     * pseudo-quantizer of docs/algorithm.md 7.2 (round half to even, zero point clamped).
     * w (out, in) F32; s (in,) F32 or NULL (= 1); clip (out, in/gs) F32 or NULL (= no clamp,
     * applied after scaling). wq may alias w. */
    awq_status (*fake_quant)(awq_backend_ctx *ctx, awq_tensor *wq, const awq_tensor *w, const awq_tensor *s,
                             const awq_tensor *clip, const awq_quant_desc *q);
    /* Final quantization of docs/algorithm.md 7.4 with fp16 rounding after every operation:
     * w (out, in) F16 -> codes (out, in) U8 in 0..15, scales (out, in/gs) F16, zeros
     * (out, in/gs) U8. */
    awq_status (*quantize_w4)(awq_backend_ctx *ctx, awq_tensor *codes, awq_tensor *scales, awq_tensor *zeros,
                              const awq_tensor *w, const awq_quant_desc *q);
    /* optional: statistics, see awq_reduce_op. group is used by WMEAN_GROUPS. */
    awq_status (*reduce)(awq_backend_ctx *ctx, awq_tensor *y, const awq_tensor *x, awq_reduce_op op,
                         int32_t group);
    /* optional, synchronous: *out = op over all elements of a and b (same shape, F32),
     * accumulated in double. */
    awq_status (*scalar)(awq_backend_ctx *ctx, double *out, const awq_tensor *a, const awq_tensor *b,
                         awq_scalar_op op);
    /* optional: clip search of docs/algorithm.md 6 for a batch of output rows. w (o, in) F32
     * (already scaled), x (n, in) F32 (already token-subsampled and divided by s), best_max
     * (o, in/gs) F32 out. For each row r and group g: m = max|w[r, g]|; ref[t] = sum_{k in g} x[t,k]*w[r,k];
     * for i = 0..n_steps-1: c = m * (1 - i/n_grid), wc = clamp(w[r,g], -c, c), qq = Q(wc) (7.2),
     * err = mean_t (sum_{k in g} x[t,k]*qq[k] - ref[t])^2; best_max = the c with strictly
     * smallest err, starting from err 1e9 (so ties keep the larger c). */
    awq_status (*clip_search)(awq_backend_ctx *ctx, awq_tensor *best_max, const awq_tensor *w,
                              const awq_tensor *x, const awq_quant_desc *q, int32_t n_grid, int32_t n_steps);
    /* optional: g (c, c) F32 (+)= x (n, c)^T x (n, c), accumulate when accumulate is true. */
    awq_status (*gram)(awq_backend_ctx *ctx, awq_tensor *g, const awq_tensor *x, bool accumulate);

    /* ---- optional: weight layout ---- */
    /* Repacks a 4-bit linear (tensors already on this device) into the backend's preferred form,
     * stored in w->prepared; matmul_w4a16 then uses it. weight_release frees it. */
    awq_status (*weight_prepare)(awq_backend_ctx *ctx, awq_qlinear *w);
    /* Frees w->prepared (made by weight_prepare) and sets it to NULL. */
    void (*weight_release)(awq_backend_ctx *ctx, awq_qlinear *w);

    /* ---- optional: fewer launches (appended; the core checks for NULL) ---- */
    /* Several 4-bit linears reading the same input (q/k/v, gate/up) in one pass:
     * y[i] (n, w[i]->out) F32 = x (n, in) F32 * dequant(w[i])^T + w[i]->bias, i < nw (nw <= 3),
     * every w[i] with the same in and group_size. Same result as nw matmul_w4a16 calls. */
    awq_status (*matmul_w4a16_multi)(awq_backend_ctx *ctx, int32_t nw, awq_tensor *const *y,
                                     const awq_tensor *x, const awq_qlinear *const *w);
    /* The core brackets each single-token decode step (the same op sequence every token, after
     * the step's uploads) with step_begin / step_end. A backend may record the ops in between
     * and submit them at step_end as one unit (a CUDA Graph). Between the two the core makes no
     * synchronous call (no download, scalar or synchronize). step_end submits the work; the
     * next download or synchronize waits for it. */
    awq_status (*step_begin)(awq_backend_ctx *ctx);
    /* Ends the step begun by step_begin (see there). */
    awq_status (*step_end)(awq_backend_ctx *ctx);

    /* ---- optional: model families beyond Llama (appended; the core refuses a model that
     * needs a member its backend lacks) ---- */
    /* y (n, d) F32 = act(gate) * up, gate/up (n, d) F32 (strided rows allowed), y may alias
     * gate. AWQ_ACT_SILU: gate / (1 + exp(-gate)) (= silu_mul); AWQ_ACT_GELU_TANH:
     * 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3))) (Gemma's gelu_pytorch_tanh). */
    awq_status (*act_mul)(awq_backend_ctx *ctx, awq_tensor *y, const awq_tensor *gate, const awq_tensor *up,
                          awq_act act);
    /* Soft-capping in place: x (n, d) F32 = cap * tanh(x / cap), cap > 0 (Gemma 2 logits). */
    awq_status (*softcap)(awq_backend_ctx *ctx, awq_tensor *x, float cap);
    /* attention() with Gemma 2's logit soft-capping: each score s = scale * q.k becomes
     * cap * tanh(s / cap) before the mask and the softmax; cap = 0 is attention(). */
    awq_status (*attention_softcap)(awq_backend_ctx *ctx, awq_tensor *out, const awq_tensor *q,
                                    const awq_tensor *k, const awq_tensor *v, int32_t n_past, float scale,
                                    int32_t window, float cap);

    /* ---- optional: an 8-bit lm_head (appended; AWQ_LM_HEAD_Q8 is refused without it) ---- */
    /* y (n, out) F32 = x (n, in) F32 * W^T for a weight in llama.cpp's Q8_0 form: qs (out, in)
     * I8 codes and d (out, in/32) F16 block scales, W[o][k] = qs[o][k] * d[o][k/32]; in % 32 == 0,
     * rows of x, y, qs and d may be strided. fp32 accumulation (the op test's matmul tolerance). */
    awq_status (*matmul_q8)(awq_backend_ctx *ctx, awq_tensor *y, const awq_tensor *x, const awq_tensor *qs,
                            const awq_tensor *d);

    /* ---- optional: the capability query (appended) ---- */
    /* Whether device `device` (0 <= device < device_count()) can run the op and case of q. Asked
     * when a model is loaded or quantized and by `awq-cli info -v`, never per token. NULL means
     * every non-NULL member runs every case its contract names. A member that is NULL is not
     * asked about: the core treats it as unsupported. For each optional op the core has a
     * fallback (docs/backends.md): the work runs on the built-in cpu backend over host copies,
     * or takes a slower path on the device, and the reason is logged. */
    bool (*supports_op)(int32_t device, const awq_op_query *q);
} awq_backend_ops;

/* Members that must be non-NULL for a backend to load. */
/* clang-format off */
#define AWQ_BACKEND_REQUIRED_OPS(X) \
    X(device_count) X(device_info) X(create) X(destroy) X(buffer_alloc) X(buffer_free) \
    X(upload) X(download) X(synchronize) X(memset_zero) X(matmul) X(matmul_w4a16) X(rmsnorm) \
    X(rope) X(attention) X(silu_mul) X(binop) X(get_rows) X(convert) \
    X(fake_quant) X(quantize_w4)
/* clang-format on */

/* Bottom of each plugin's main file: exports awq_backend_entry() and awq_backend_probe().
 * probe returns 0 when the backend is unusable here (no driver/device) and a larger number
 * the more it should be preferred; it may write a reason into why (cap bytes). */
#define AWQ_BACKEND_PLUGIN(ops, probe_fn)                                        \
    AWQ_EXPORT const awq_backend_ops *awq_backend_entry(void) { return &(ops); } \
    AWQ_EXPORT int awq_backend_probe(char *why, size_t cap) { return (probe_fn)(why, cap); }

/* Type of a plugin's awq_backend_entry(): its ops table (static, never freed). */
typedef const awq_backend_ops *(*awq_backend_entry_fn)(void);
/* Type of a plugin's awq_backend_probe(): 0 = unusable here (reason in why), > 0 = preference. */
typedef int (*awq_backend_probe_fn)(char *why, size_t cap);

#ifdef __cplusplus
}
#endif

#endif /* AWQ_BACKEND_H */
