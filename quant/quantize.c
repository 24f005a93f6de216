/*
 * quantize.c - awq_quantize(): the layer-streamed driver (docs/architecture.md 5).
 *
 *   tokenizer(calibration text) -> blocks (n, L) -> embeddings X0
 *   for each decoder layer i (only its weights resident):
 *       capture inputs of every linear and Xi+1 in full precision (awq_capture)
 *       scale search per group, fold, clip search (awq_search_layer)
 *       final fp16 quantization + packing, written into the output shard
 *   config.json, tokenizer files, awq-manifest.json, rename into place.
 *
 * Each finished layer is recorded durably in the temporary directory (resume.h): a rerun after
 * a crash restores the recorded layers, replays their full-precision forward pass to rebuild the
 * calibration activations (the capture step only, no search), and continues.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "awq_pack.h"
#include "model.h"
#include "quant.h"
#include "quant_ops.h"
#include "resume.h"
#include "safetensors.h"


awq_quant_params awq_quant_params_default(void) {
    awq_quant_params p;
    memset(&p, 0, sizeof p);
    p.w_bit = 4;
    p.group_size = 128;
    p.method = AWQ_METHOD_AWQ;
    p.format = AWQ_FORMAT_GEMM;
    p.calib_samples = 128;
    p.calib_seqlen = 512;
    p.clip = true;
    p.duo_scaling = true;
    p.device = "auto";
    return p;
}

/* ---- time per phase ------------------------------------------------------------------------ */

const char *awq_phase_name(awq_phase ph) {
    static const char *const names[AWQ_PH_COUNT] = {
        [AWQ_PH_SETUP] = "setup",
        [AWQ_PH_CALIB] = "calibration text",
        [AWQ_PH_EMBED] = "embed blocks",
        [AWQ_PH_LOAD] = "load layer",
        [AWQ_PH_CAPTURE] = "capture",
        [AWQ_PH_REPLAY] = "replay (resumed)",
        [AWQ_PH_SEARCH_QKV] = "search qkv",
        [AWQ_PH_SEARCH_O] = "search o",
        [AWQ_PH_SEARCH_GATE_UP] = "search gate_up",
        [AWQ_PH_SEARCH_DOWN] = "search down",
        [AWQ_PH_FOLD] = "fold",
        [AWQ_PH_CLIP] = "clip",
        [AWQ_PH_QUANTIZE] = "quantize",
        [AWQ_PH_PACK] = "pack",
        [AWQ_PH_HASH] = "sha-256",
        [AWQ_PH_WRITE] = "write",
        [AWQ_PH_COMMIT] = "commit (fsync)",
        [AWQ_PH_FINISH] = "finish",
    };
    return (unsigned)ph < AWQ_PH_COUNT && names[ph] ? names[ph] : "?";
}

double awq_phase_add(awq_phase_times *t, awq_phase ph, double t0) {
    double now = awq_time_now();
    if (t && (unsigned)ph < AWQ_PH_COUNT) {
        t->s[ph] += now - t0;
        t->n[ph]++;
    }
    return now;
}

/* The table of --verbose: one DEBUG line per phase that took time, then the rest. */
static void log_phases(awq_runtime *rt, const awq_phase_times *t, double wall) {
    double sum = 0;
    AWQ_LOG_DEBUG(rt, "time per phase (wall %.2f s):", wall);
    for (int i = 0; i < AWQ_PH_COUNT; i++) {
        if (!t->n[i]) continue;
        sum += t->s[i];
        AWQ_LOG_DEBUG(rt, "  %-17s %9.2f s  %5.1f %%  (%d regions)", awq_phase_name((awq_phase)i), t->s[i],
                      wall > 0 ? 100.0 * t->s[i] / wall : 0.0, t->n[i]);
    }
    double search = t->s[AWQ_PH_SEARCH_QKV] + t->s[AWQ_PH_SEARCH_O] + t->s[AWQ_PH_SEARCH_GATE_UP] +
        t->s[AWQ_PH_SEARCH_DOWN];
    AWQ_LOG_DEBUG(rt, "  %-17s %9.2f s  %5.1f %%", "other", wall - sum,
                  wall > 0 ? 100.0 * (wall - sum) / wall : 0.0);
    if (search > 0)
        AWQ_LOG_DEBUG(rt, "  (scale search, all groups: %.2f s, %.1f %%)", search,
                      wall > 0 ? 100.0 * search / wall : 0.0);
}

/* ---- checks before any work ------------------------------------------------------------- */

static awq_status check_params(awq_runtime *rt, const awq_quant_params *p) {
    if (!p->model_dir || !p->out_dir)
        return awq_set_error(rt, AWQ_ERR_INVALID_ARG, "quantize: model_dir and out_dir are required");
    if (p->w_bit != 4)
        return awq_set_error(rt, AWQ_ERR_UNSUPPORTED, "--w-bit %d is not supported (only 4)", p->w_bit);
    if (p->group_size != 32 && p->group_size != 64 && p->group_size != 128)
        return awq_set_error(rt, AWQ_ERR_UNSUPPORTED, "--group-size %d is not supported (32, 64 or 128)",
                             p->group_size);
    if (p->method == AWQ_METHOD_AWQ && (p->calib_samples <= 0 || p->calib_seqlen <= 0))
        return awq_set_error(rt, AWQ_ERR_INVALID_ARG, "--calib-samples and --calib-seqlen must be > 0");
    return AWQ_OK;
}

static awq_status check_model(awq_runtime *rt, const awq_model_config *c, const awq_quant_params *p) {
    if (c->quantized)
        return awq_set_error(rt, AWQ_ERR_UNSUPPORTED,
                             "%s is already quantized (config.json has quantization_config); "
                             "quantize the original fp16/bf16 checkpoint",
                             p->model_dir);
    int64_t d = c->d_model, qd = (int64_t)c->n_heads * c->head_dim,
            kvd = (int64_t)c->n_kv_heads * c->head_dim, ff = c->d_ff;
    bool dense = c->n_experts == 0; /* does some layer have the dense MLP of intermediate_size? */
    for (int32_t l = 0; l < c->n_layers && !dense; l++) dense = !awq_config_layer_moe(c, l);
    int64_t mff = c->n_experts > 0 ? c->moe_ff : 0, sff = c->shared_ff;
    const struct {
        const char *what;
        int64_t v;
    } ins[] = {
        {"hidden_size (in_features of q/k/v/gate/up_proj)", d},
        {"num_attention_heads * head_dim (in_features of o_proj)", qd},
        {"intermediate_size (in_features of down_proj)", dense ? ff : 0},
        {"moe_intermediate_size (in_features of the experts' down_proj)", mff},
        {"shared_expert_intermediate_size (in_features of the shared expert's down_proj)", sff},
    };
    const int n_ins = (int)(sizeof ins / sizeof ins[0]);
    for (int i = 0; i < n_ins; i++) {
        if (ins[i].v % p->group_size == 0) continue;
        int sugg = 0;
        for (int g = 128; g >= 32 && !sugg; g /= 2) {
            bool ok = true;
            for (int k = 0; k < n_ins; k++) ok &= ins[k].v % g == 0;
            if (ok) sugg = g;
        }
        if (sugg)
            return awq_set_error(rt, AWQ_ERR_UNSUPPORTED,
                                 "%s: %s = %lld is not divisible by --group-size %d; use --group-size %d",
                                 p->model_dir, ins[i].what, (long long)ins[i].v, p->group_size, sugg);
        return awq_set_error(rt, AWQ_ERR_UNSUPPORTED,
                             "%s: %s = %lld is not divisible by --group-size %d, nor by 64 or 32",
                             p->model_dir, ins[i].what, (long long)ins[i].v, p->group_size);
    }
    const struct {
        const char *what;
        int64_t v;
    } outs[] = {
        {"num_attention_heads * head_dim", qd},
        {"num_key_value_heads * head_dim", kvd},
        {"hidden_size", d},
        {"intermediate_size", dense ? ff : 0},
        {"moe_intermediate_size", mff},
        {"shared_expert_intermediate_size", sff},
    };
    for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++)
        if (outs[i].v % 8)
            return awq_set_error(rt, AWQ_ERR_UNSUPPORTED,
                                 "%s: %s = %lld (out_features) is not a multiple of 8, which the "
                                 "AWQ packing needs",
                                 p->model_dir, outs[i].what, (long long)outs[i].v);
    if (awq_dir_exists(p->out_dir) || awq_file_exists(p->out_dir)) {
        if (!p->force)
            return awq_set_error(rt, AWQ_ERR_EXISTS, "%s already exists (use --force to replace it)",
                                 p->out_dir);
    }
    return AWQ_OK;
}

/* ---- estimate -------------------------------------------------------------------------- */

static double layer_search_flops(const awq_model_config *c, int64_t B, int64_t T, bool clip) {
    double N = (double)B * T, d = c->d_model, hd = c->head_dim, H = c->n_heads, kvd = c->n_kv_heads * hd,
           qd = H * hd, ff = c->d_ff;
    double attn = 2 * N * d * (qd + 2 * kvd) + 2 * N * qd * d + 4.0 * B * (T * (T + 1) / 2.0) * H * hd;
    double mlp = 6 * N * d * ff;
    double f = attn + mlp;     /* capture */
    f += 20 * attn + 20 * mlp; /* qkv and gate/up groups */
    /* single-linear groups: Gram form or direct, whichever is cheaper (search.c) */
    double down_g = 2 * N * ff * ff + 20 * 2 * d * ff * ff, down_d = 20 * 2 * N * ff * d;
    f += down_g < down_d ? down_g : down_d;
    if (kvd == d && qd == d) {
        double o_g = 2 * N * qd * qd + 20 * 2 * d * qd * qd, o_d = 20 * 2 * N * qd * d;
        f += o_g < o_d ? o_g : o_d;
    }
    if (clip) {
        double ns = N >= 1024 ? N / (double)(int64_t)(N / 512) : N;
        f += 2 * ns * (kvd * d + d * qd + 3 * ff * d) * 11;
    }
    return f;
}

static double measure_gflops(const awq_device *dev, awq_runtime *rt) {
    /* One representative matmul (512 x 576 x 1536), timed after a warm-up. */
    awq_buflist tmp = {0};
    awq_tensor x, w, y;
    int64_t xe[2] = {512, 576}, we[2] = {1536, 576}, ye[2] = {512, 1536};
    double rate = 10.0;
    if (awq_tensor_alloc(rt, dev, &tmp, AWQ_DTYPE_F32, 2, xe, &x) ||
        awq_tensor_alloc(rt, dev, &tmp, AWQ_DTYPE_F32, 2, we, &w) ||
        awq_tensor_alloc(rt, dev, &tmp, AWQ_DTYPE_F32, 2, ye, &y))
        goto done;
    dev->ops->memset_zero(dev->ctx, x.data, 0, 512 * 576 * 4);
    dev->ops->memset_zero(dev->ctx, w.data, 0, 1536 * 576 * 4);
    if (dev->ops->matmul(dev->ctx, &y, &x, &w, NULL) || dev->ops->synchronize(dev->ctx)) goto done;
    double t0 = awq_time_now();
    int reps = 0;
    while (awq_time_now() - t0 < 0.2 && reps < 50) {
        if (dev->ops->matmul(dev->ctx, &y, &x, &w, NULL)) goto done;
        reps++;
    }
    dev->ops->synchronize(dev->ctx);
    double dt = awq_time_now() - t0;
    if (dt > 0 && reps) rate = 2.0 * 512 * 576 * 1536 * reps / dt / 1e9;
done:
    awq_buflist_free(dev, &tmp);
    return rate;
}

static int64_t estimate_peak(const awq_model_config *c, int64_t N, const awq_quant_params *p) {
    int64_t d = c->d_model, qd = (int64_t)c->n_heads * c->head_dim,
            kvd = (int64_t)c->n_kv_heads * c->head_dim, ff = c->d_ff;
    int64_t layer_params = 2 * qd * d + 2 * kvd * d + 3 * ff * d;
    if (c->n_experts > 0) /* a sparse layer: every expert (+ the shared one) and the router */
        layer_params = 2 * qd * d + 2 * kvd * d + 3 * d * ((int64_t)c->n_experts * c->moe_ff + c->shared_ff) +
            (c->n_experts + 1) * d;
    int64_t bytes = layer_params * 4 * 3; /* host masters + device copies + fake-quant */
    bytes += layer_params * 4;            /* final quantization buffers */
    if (p->method == AWQ_METHOD_AWQ) {
        bytes += N * (6 * d + qd + ff) * 4; /* calibration activations */
        if (c->n_experts > 0) /* the experts' routed rows (inputs, down inputs), shared down input */
            bytes += N * ((int64_t)c->n_experts_used * (d + c->moe_ff) + c->shared_ff) * 4;
        int64_t rows = 4096 < N ? 4096 : N;
        bytes += rows * (3 * d + 2 * qd + 2 * kvd + 2 * ff) * 4; /* forward scratch */
        bytes += ff * ff * 4 * 3;                                /* Gram + temporaries */
        bytes += (int64_t)c->vocab_size * d * 2;                 /* embedding table on the device */
    }
    return bytes + (64 << 20);
}

awq_status awq_quantize_estimate(awq_runtime *rt, const awq_quant_params *p, awq_quant_estimate *out) {
    if (!rt || !p || !out) return AWQ_ERR_INVALID_ARG;
    memset(out, 0, sizeof *out);
    TRY(check_params(rt, p));
    awq_model_config c;
    TRY(awq_config_load(rt, p->model_dir, &c));
    out->n_layers = c.n_layers;
    int64_t N = 0;
    if (p->method == AWQ_METHOD_AWQ) {
        awq_tokenizer *tok = NULL;
        TRY(awq_tokenizer_load(&tok, rt, p->model_dir));
        awq_calib cal;
        awq_status s =
            awq_calib_build(rt, tok, p->calib_path, p->calib_samples, p->calib_seqlen, p->seed, &cal);
        awq_tokenizer_destroy(tok);
        if (s != AWQ_OK) return s;
        out->n_blocks = cal.n_blocks;
        N = (int64_t)cal.n_blocks * cal.seqlen;
        out->search_flops = c.n_layers * layer_search_flops(&c, cal.n_blocks, cal.seqlen, p->clip);
        awq_calib_free(&cal);
    }
    out->peak_bytes = estimate_peak(&c, N, p);
    out->available_bytes = awq_mem_available_bytes();
    out->seconds = out->search_flops / 50e9; /* refined by awq_quantize with a measured rate */
    return AWQ_OK;
}

/* ---- final quantization of one layer ------------------------------------------------------ */

typedef struct qrun {
    awq_runtime *rt;
    const awq_quant_params *p;
    awq_model_config cfg;
    awq_safetensors *st;
    awq_device dev;
    awq_quant_desc qd;
    awq_qout out;
    awq_dtype norm_dtype;
    int32_t n_linears;
    awq_phase_times times; /* time per phase */
    /* parts of a fused checkpoint linear (Phi-3 qkv_proj, gate_up_proj) gathered until its last
     * part is quantized: (rows, in) codes or F32 weights, (rows, G) scales and zeros */
    struct {
        int64_t rows;
        uint8_t *codes, *zeros;
        uint16_t *sc;
        float *w;
    } acc;
} qrun;

static void acc_free(qrun *R) {
    awq_free(R->acc.codes);
    awq_free(R->acc.zeros);
    awq_free(R->acc.sc);
    awq_free(R->acc.w);
    memset(&R->acc, 0, sizeof R->acc);
}

/* Appends n bytes to *buf holding `have` bytes. */
static bool acc_put(void *pbuf, size_t have, const void *src, size_t n) {
    void **buf = pbuf;
    void *nb = awq_realloc(*buf, have + n);
    if (!nb) return false;
    memcpy((char *)nb + have, src, n);
    *buf = nb;
    return true;
}

/* Linear l of a fused checkpoint linear: gathers it; the last part writes the whole tensor
 * (codes (rows, in), scales/zeros (rows, G), or F32 weights when excluded). */
static awq_status fused_part(qrun *R, awq_qlayer *L, int l, const uint8_t *codes, const uint16_t *sc,
                             const uint8_t *zeros) {
    int64_t O = L->out[l], C = L->in[l], G = C / R->p->group_size, r = R->acc.rows, row0 = 0;
    const char *ck = awq_lin_ckpt_name(&R->cfg, l, &row0);
    bool ok = L->excluded[l] ? acc_put(&R->acc.w, (size_t)(r * C) * 4, L->w[l], (size_t)(O * C) * 4)
                             : acc_put(&R->acc.codes, (size_t)(r * C), codes, (size_t)(O * C)) &&
            acc_put(&R->acc.sc, (size_t)(r * G) * 2, sc, (size_t)(O * G) * 2) &&
            acc_put(&R->acc.zeros, (size_t)(r * G), zeros, (size_t)(O * G));
    if (!ok) return awq_set_error(R->rt, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
    R->acc.rows += O;
    int64_t next0 = 0;
    if (l + 1 < AWQ_LIN_COUNT && !strcmp(awq_lin_ckpt_name(&R->cfg, l + 1, &next0), ck) && next0 > 0)
        return AWQ_OK; /* more parts follow */
    char prefix[256], name[300];
    snprintf(prefix, sizeof prefix, "model.layers.%d.%s", L->index, ck);
    awq_status s;
    if (L->excluded[l]) {
        snprintf(name, sizeof name, "%s.weight", prefix);
        const awq_st_tensor *t = awq_st_find(R->st, name);
        s = awq_qout_write_f32(&R->out, name, t->dtype, R->acc.w, R->acc.rows * C);
    } else {
        s = awq_qout_write_qlinear(&R->out, prefix, R->acc.rows, C, R->acc.codes, R->acc.sc, R->acc.zeros,
                                   NULL);
        R->n_linears++;
    }
    acc_free(R);
    return s;
}

static awq_status quantize_linear(qrun *R, awq_qlayer *L, int l) {
    awq_runtime *rt = R->rt;
    const awq_device *dev = &R->dev;
    int64_t O = L->out[l], C = L->in[l], gs = R->p->group_size, G = C / gs;
    char prefix[256], lname[160];
    snprintf(prefix, sizeof prefix, "model.layers.%d.%s", L->index,
             awq_qlin_name(&R->cfg, L, l, lname, sizeof lname));
    int64_t row0 = 0;
    bool fused =
        (L->n_experts == 0 || l < 4) && strcmp(awq_lin_ckpt_name(&R->cfg, l, &row0), awq_lin_names[l]) != 0;
    if (L->excluded[l] && fused) return fused_part(R, L, l, NULL, NULL, NULL);
    if (L->excluded[l]) {
        char name[300];
        snprintf(name, sizeof name, "%s.weight", prefix);
        const awq_st_tensor *t = awq_st_find(R->st, name);
        TRY(awq_qout_write_f32(&R->out, name, t->dtype, L->w[l], O * C));
        if (L->b[l]) {
            snprintf(name, sizeof name, "%s.bias", prefix);
            t = awq_st_find(R->st, name);
            TRY(awq_qout_write_f32(&R->out, name, t->dtype, L->b[l], O));
        }
        return AWQ_OK;
    }
    /* docs/algorithm.md 7.4: the weight is cast to fp16 first; quantize_w4 emulates fp16
     * arithmetic. */
    size_t n = (size_t)(O * C);
    uint16_t *h = awq_malloc(n * 2), *sc = awq_malloc((size_t)(O * G) * 2);
    uint8_t *codes = awq_malloc(n), *zeros = awq_malloc((size_t)(O * G));
    awq_buflist tmp = {0};
    awq_status s = AWQ_OK;
    if (!h || !sc || !codes || !zeros) {
        s = awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    double t0 = awq_time_now();
    /* The cast in parallel (it was a third of this phase on a 1B model); the error names the
     * first non-finite element, as the serial loop did. */
    const float *w = L->w[l];
    int bad = 0;
#pragma omp parallel for schedule(static) reduction(| : bad) if (n > 65536)
    for (int64_t i = 0; i < (int64_t)n; i++) {
        h[i] = awq_f32_to_f16(w[i]);
        bad |= (h[i] & 0x7c00u) == 0x7c00u;
    }
    for (size_t i = 0; bad && i < n; i++)
        if ((h[i] & 0x7c00u) == 0x7c00u) {
            s = awq_set_error(rt, AWQ_ERR_NUMERIC,
                              "%s: weight [%zu, %zu] = %g is not representable "
                              "in fp16 after scaling",
                              prefix, i / (size_t)C, i % (size_t)C, (double)w[i]);
            goto done;
        }
    awq_tensor tw, tc, ts, tz;
    int64_t we[2] = {O, C}, ge[2] = {O, G};
    if ((s = awq_tensor_alloc(rt, dev, &tmp, AWQ_DTYPE_F16, 2, we, &tw)) ||
        (s = awq_tensor_alloc(rt, dev, &tmp, AWQ_DTYPE_U8, 2, we, &tc)) ||
        (s = awq_tensor_alloc(rt, dev, &tmp, AWQ_DTYPE_F16, 2, ge, &ts)) ||
        (s = awq_tensor_alloc(rt, dev, &tmp, AWQ_DTYPE_U8, 2, ge, &tz)) ||
        (s = dev->ops->upload(dev->ctx, tw.data, tw.offs, h, n * 2)) ||
        (s = dev->ops->quantize_w4(dev->ctx, &tc, &ts, &tz, &tw, &R->qd)) ||
        (s = dev->ops->download(dev->ctx, codes, tc.data, tc.offs, n)) ||
        (s = dev->ops->download(dev->ctx, sc, ts.data, ts.offs, (size_t)(O * G) * 2)) ||
        (s = dev->ops->download(dev->ctx, zeros, tz.data, tz.offs, (size_t)(O * G))))
        goto done;
    for (int64_t i = 0; i < O * G; i++)
        if ((sc[i] & 0x7c00u) == 0x7c00u) {
            s = awq_set_error(rt, AWQ_ERR_NUMERIC, "%s: non-finite scale in row %lld, group %lld", prefix,
                              (long long)(i / G), (long long)(i % G));
            goto done;
        }
    awq_phase_add(&R->times, AWQ_PH_QUANTIZE, t0);
    if (fused) {
        s = fused_part(R, L, l, codes, sc, zeros);
    } else {
        s = awq_qout_write_qlinear(&R->out, prefix, O, C, codes, sc, zeros, L->b[l]);
        R->n_linears++;
    }
done:
    awq_buflist_free(dev, &tmp);
    awq_free(h);
    awq_free(sc);
    awq_free(codes);
    awq_free(zeros);
    return s;
}

static awq_status write_layer(qrun *R, awq_qlayer *L) {
    char name[256];
    const awq_st_tensor *t;
    for (int l = 0; l < L->n_lin; l++) TRY(quantize_linear(R, L, l));
    /* the full-precision router and shared-expert gate, their columns scaled with the experts' */
    const struct {
        const char *n;
        const float *v;
        int64_t rows;
    } fp[] = {{awq_moe_router_name(&R->cfg), L->router, L->n_experts},
              {awq_moe_shared_name(3), L->shared_gate, 1}};
    for (size_t i = 0; i < 2; i++) {
        if (!fp[i].v) continue;
        snprintf(name, sizeof name, "model.layers.%d.%s.weight", L->index, fp[i].n);
        t = awq_st_find(R->st, name);
        TRY(awq_qout_write_f32(&R->out, name, t->dtype, fp[i].v, fp[i].rows * R->cfg.d_model));
    }
    /* The two norms the scales were folded into; the others (q/k, Gemma's output norms) are
     * unchanged and copied by write_layer_extras. Held as applied: on (1 + w) families the
     * stored weight is w' = (1 + w) / s - 1. */
    awq_norm_names nn = awq_config_norm_names(&R->cfg);
    const struct {
        const char *n;
        const float *v;
    } norms[] = {{nn.attn, L->attn_norm}, {nn.ffn, L->ffn_norm}};
    int64_t d = R->cfg.d_model;
    float *tmp = awq_malloc((size_t)d * sizeof *tmp);
    if (!tmp) return awq_set_error(R->rt, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
    awq_status s = AWQ_OK;
    for (size_t i = 0; i < 2 && s == AWQ_OK; i++) {
        for (int64_t j = 0; j < d; j++) tmp[j] = R->cfg.norm_plus_one ? norms[i].v[j] - 1.0f : norms[i].v[j];
        snprintf(name, sizeof name, "model.layers.%d.%s", L->index, norms[i].n);
        t = awq_st_find(R->st, name);
        s = awq_qout_write_f32(&R->out, name, t->dtype, tmp, d);
    }
    awq_free(tmp);
    return s;
}

/* Tensors copied unchanged: embeddings, final norm, untied lm_head, anything unrecognised. */
static awq_status write_passthrough(qrun *R) {
    for (int32_t i = 0; i < awq_st_count(R->st); i++) {
        const awq_st_tensor *t = awq_st_get(R->st, i);
        if (!strncmp(t->name, "model.layers.", 13)) {
            int layer, n = 0;
            if (sscanf(t->name, "model.layers.%d.%n", &layer, &n) == 1 && n > 0 && layer < R->cfg.n_layers)
                continue; /* written by write_layer (recognised) or below (unrecognised) */
        }
        if (!strcmp(t->name, "lm_head.weight") && R->cfg.tie_embeddings) continue;
        TRY(awq_qout_write_raw(&R->out, t->name, t->data, t->nbytes));
        awq_st_release(R->st, t);
    }
    return AWQ_OK;
}

/* Unrecognised per-layer tensors (e.g. rotary_emb.inv_freq of old checkpoints). */
static awq_status write_layer_extras(qrun *R, int32_t layer) {
    char prefix[64];
    int pl = snprintf(prefix, sizeof prefix, "model.layers.%d.", layer);
    for (int32_t i = 0; i < awq_st_count(R->st); i++) {
        const awq_st_tensor *t = awq_st_get(R->st, i);
        if (strncmp(t->name, prefix, (size_t)pl)) continue;
        const char *rest = t->name + pl;
        awq_norm_names nn = awq_config_norm_names(&R->cfg);
        bool known = !strcmp(rest, nn.attn) || !strcmp(rest, nn.ffn);
        awq_qlayer shape = {.n_experts = awq_config_layer_moe(&R->cfg, layer) ? R->cfg.n_experts : 0};
        int32_t n_lin = awq_qlayer_count(&R->cfg, layer);
        for (int l = 0; l < n_lin && !known; l++) {
            int64_t row0;
            char buf[160];
            const char *ln_name = shape.n_experts && l >= 4
                ? awq_qlin_name(&R->cfg, &shape, l, buf, sizeof buf)
                : awq_lin_ckpt_name(&R->cfg, l, &row0);
            size_t ln = strlen(ln_name);
            known =
                !strncmp(rest, ln_name, ln) && (!strcmp(rest + ln, ".weight") || !strcmp(rest + ln, ".bias"));
        }
        if (shape.n_experts) {
            char buf[160];
            snprintf(buf, sizeof buf, "%s.weight", awq_moe_router_name(&R->cfg));
            known |= !strcmp(rest, buf);
            snprintf(buf, sizeof buf, "%s.weight", awq_moe_shared_name(3));
            known |= R->cfg.shared_ff > 0 && !strcmp(rest, buf);
        }
        if (!known) TRY(awq_qout_write_raw(&R->out, t->name, t->data, t->nbytes));
    }
    return AWQ_OK;
}

/* x (N, d) *= cfg.embed_scale (Gemma's scaled embeddings), through a (d,) tensor in tmp. */
static awq_status scale_embeddings(qrun *R, awq_buflist *tmp, awq_tensor *x) {
    if (R->cfg.embed_scale == 1.0) return AWQ_OK;
    int64_t d = R->cfg.d_model;
    float *h = awq_malloc((size_t)d * sizeof *h);
    if (!h) return awq_set_error(R->rt, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
    for (int64_t j = 0; j < d; j++) h[j] = (float)R->cfg.embed_scale;
    awq_tensor sc;
    awq_status s = awq_tensor_alloc(R->rt, &R->dev, tmp, AWQ_DTYPE_F32, 1, &d, &sc);
    if (s == AWQ_OK) s = R->dev.ops->upload(R->dev.ctx, sc.data, sc.offs, h, (size_t)d * sizeof *h);
    if (s == AWQ_OK) s = R->dev.ops->binop(R->dev.ctx, x, x, &sc, AWQ_BINOP_MUL);
    if (s == AWQ_OK) s = R->dev.ops->synchronize(R->dev.ctx);
    awq_free(h);
    return s;
}

/* Embeddings of the calibration blocks -> acts->x. */
static awq_status embed_calib(qrun *R, awq_acts *a, const awq_calib *cal) {
    awq_runtime *rt = R->rt;
    const awq_st_tensor *t = awq_st_find(R->st, "model.embed_tokens.weight");
    int64_t V = R->cfg.vocab_size, d = R->cfg.d_model;
    if (!t || t->ndim != 2 || t->shape[0] != V || t->shape[1] != d)
        return awq_set_error(rt, AWQ_ERR_FORMAT, "model.embed_tokens.weight: expected (%lld, %lld)",
                             (long long)V, (long long)d);
    awq_buflist tmp = {0};
    awq_tensor table, ids;
    int64_t te[2] = {V, d}, N = a->N;
    awq_status s;
    if ((s = awq_tensor_alloc(rt, &R->dev, &tmp, t->dtype, 2, te, &table)) ||
        (s = awq_tensor_alloc(rt, &R->dev, &tmp, AWQ_DTYPE_I32, 1, &N, &ids)) ||
        (s = R->dev.ops->upload(R->dev.ctx, table.data, 0, t->data, t->nbytes)) ||
        (s = R->dev.ops->upload(R->dev.ctx, ids.data, 0, cal->tokens, (size_t)N * 4)) ||
        (s = R->dev.ops->get_rows(R->dev.ctx, &a->x, &table, &ids)) ||
        (s = scale_embeddings(R, &tmp, &a->x)) || (s = R->dev.ops->synchronize(R->dev.ctx))) {}
    awq_buflist_free(&R->dev, &tmp);
    return s;
}

static bool report(const awq_quant_params *p, float done, const char *stage) {
    return !p->progress || p->progress(done, stage, p->progress_user);
}

awq_status awq_quantize(awq_runtime *rt, const awq_quant_params *p, awq_quant_report *report_out) {
    if (!rt || !p) return AWQ_ERR_INVALID_ARG;
    double t0 = awq_time_now();
    qrun R;
    memset(&R, 0, sizeof R);
    R.rt = rt;
    R.p = p;
    awq_tokenizer *tok = NULL;
    awq_calib cal;
    memset(&cal, 0, sizeof cal);
    awq_acts acts;
    memset(&acts, 0, sizeof acts);
    awq_search S;
    memset(&S, 0, sizeof S);
    awq_qlayer L;
    memset(&L, 0, sizeof L);
    cJSON *fp = NULL;
    awq_resume rs = {.lock_fd = -1};
    int32_t n_done = 0;
    bool awq = p->method == AWQ_METHOD_AWQ;
    awq_status s;
    awq_phase_times *T = &R.times;
    double t = t0; /* start of the current region */
    if ((s = check_params(rt, p)) || (s = awq_config_load(rt, p->model_dir, &R.cfg)) ||
        (s = check_model(rt, &R.cfg, p)) || (s = awq_st_open(rt, p->model_dir, &R.st)))
        goto fail;
    t = awq_phase_add(T, AWQ_PH_SETUP, t);
    R.qd = (awq_quant_desc){.bits = p->w_bit, .group_size = p->group_size, .zero_point = true};
    if (awq) {
        if ((s = awq_tokenizer_load(&tok, rt, p->model_dir)) ||
            (s = awq_calib_build(rt, tok, p->calib_path, p->calib_samples, p->calib_seqlen, p->seed, &cal)))
            goto fail;
        AWQ_LOG_INFO(
            rt, "calibration: %d samples (%d longer than %d skipped), %lld tokens -> %d blocks of %d",
            cal.n_samples, cal.n_skipped, cal.seqlen, (long long)cal.n_tokens, cal.n_blocks, cal.seqlen);
        t = awq_phase_add(T, AWQ_PH_CALIB, t);
    }
    if ((s = awq_device_open_prec(rt, p->device, awq ? cal.seqlen : 0, p->search_precision, &R.dev)) ||
        (s = awq_device_plan(rt, &R.dev, &R.cfg, awq, NULL)))
        goto fail;
    /* what determines the result, and an interrupted run of the same quantization to continue */
    if ((s = awq_fingerprint_build(rt, p, R.cfg.n_layers, R.st, R.dev.ops->name, &fp)) ||
        (s = awq_resume_find(rt, p, fp, &rs)))
        goto fail;

    // pre-flight: memory and time
    int64_t N = awq ? (int64_t)cal.n_blocks * cal.seqlen : 0;
    int64_t peak = estimate_peak(&R.cfg, N, p), avail = awq_mem_available_bytes();
    double flops = awq ? R.cfg.n_layers * layer_search_flops(&R.cfg, cal.n_blocks, cal.seqlen, p->clip) : 0;
    double rate = awq ? measure_gflops(&R.dev, rt) : 0;
    AWQ_LOG_INFO(rt,
                 "plan: %d layers, %s, group size %d, %s; estimated peak memory %.2f GiB "
                 "(available %.2f GiB), %.2f TFLOP of search at ~%.0f GFLOP/s measured on %s: ~%.0f s",
                 R.cfg.n_layers, awq ? "AWQ search" : "round-to-nearest", p->group_size,
                 p->format == AWQ_FORMAT_GEMV ? "GEMV" : "GEMM", peak / 1073741824.0, avail / 1073741824.0,
                 flops / 1e12, rate, R.dev.label, rate > 0 ? flops / (rate * 1e9) : 0.0);
    if (avail > 0 && peak > avail && !p->ignore_memory_limit) {
        s = awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY,
                          "estimated peak memory %.2f GiB exceeds the available %.2f GiB; use fewer "
                          "--calib-samples, or --ignore-memory-limit to try anyway",
                          peak / 1073741824.0, avail / 1073741824.0);
        goto fail;
    }
    if ((s = awq_qout_begin(&R.out, rt, R.st, &R.cfg, p, &rs, fp))) goto fail;
    R.out.times = T;
    awq_phase_add(T, AWQ_PH_SETUP, t);
    /* timed inside: write / sha-256 */
    if ((s = write_passthrough(&R))) goto fail;
    if ((s = awq_qout_restore(&R.out, R.cfg.n_layers, p, &n_done))) goto fail;
    t = awq_time_now();

    S = (awq_search){.rt = rt,
                     .dev = &R.dev,
                     .cfg = &R.cfg,
                     .qd = R.qd,
                     .acts = &acts,
                     .duo_scaling = p->duo_scaling,
                     .progress = p->progress,
                     .progress_user = p->progress_user,
                     .times = T};
    awq_tensor inv_freq = {0}, inv_freq_local = {0};
    awq_buflist misc = {0};
    if (awq) {
        int64_t half = R.cfg.rope_dim / 2;
        float inv[2048];
        if (half > 2048) {
            s = awq_set_error(rt, AWQ_ERR_UNSUPPORTED, "head_dim too large");
            goto fail_misc;
        }
        awq_config_inv_freq(&R.cfg, inv);
        if ((s = awq_tensor_alloc(rt, &R.dev, &misc, AWQ_DTYPE_F32, 1, &half, &inv_freq)) ||
            (s = R.dev.ops->upload(R.dev.ctx, inv_freq.data, 0, inv, (size_t)half * 4)) ||
            (s = awq_acts_alloc(rt, &R.dev, &R.cfg, cal.n_blocks, cal.seqlen, &acts)) ||
            (s = embed_calib(&R, &acts, &cal)))
            goto fail_misc;
        S.inv_freq = &inv_freq;
        if (R.cfg.rope_local_theta > 0) { /* Gemma 3: the sliding layers' RoPE base */
            awq_config_inv_freq_local(&R.cfg, inv);
            if ((s = awq_tensor_alloc(rt, &R.dev, &misc, AWQ_DTYPE_F32, 1, &half, &inv_freq_local)) ||
                (s = R.dev.ops->upload(R.dev.ctx, inv_freq_local.data, 0, inv, (size_t)half * 4)))
                goto fail_misc;
            S.inv_freq_local = &inv_freq_local;
        }
        t = awq_phase_add(T, AWQ_PH_EMBED, t);
    }
    const char *const *exclude = p->exclude;
    for (int32_t i = 0; i < R.cfg.n_layers; i++) {
        char stage[96];
        snprintf(stage, sizeof stage, "layer %d/%d", i + 1, R.cfg.n_layers);
        S.stage_prefix = stage;
        S.progress_base = (float)i / R.cfg.n_layers;
        S.progress_span = 1.0f / R.cfg.n_layers;
        if (i < n_done) {
            /* restored from the interrupted run: only the layer's output activations are needed */
            awq_qlayer shape = {.n_experts = awq_config_layer_moe(&R.cfg, i) ? R.cfg.n_experts : 0};
            for (int l = 0; l < awq_qlayer_count(&R.cfg, i); l++) {
                char lname[200], rel[160];
                snprintf(lname, sizeof lname, "model.layers.%d.%s", i,
                         awq_qlin_name(&R.cfg, &shape, l, rel, sizeof rel));
                int64_t row0 = 0; /* a fused checkpoint linear counts once */
                bool fused = (shape.n_experts == 0 || l < 4) &&
                    strcmp(awq_lin_ckpt_name(&R.cfg, l, &row0), awq_lin_names[l]) != 0;
                R.n_linears += !awq_name_excluded(lname, exclude) && (!fused || row0 == 0);
            }
            if (!awq) continue;
            char rstage[128];
            snprintf(rstage, sizeof rstage, "%s: replaying (resumed)", stage);
            if (!report(p, S.progress_base, rstage)) {
                s = awq_set_error(rt, AWQ_ERR_CANCELLED, "cancelled");
                goto fail_misc;
            }
            if ((s = awq_qlayer_read(rt, R.st, &R.cfg, i, exclude, &L)) ||
                (s = awq_qlayer_upload(rt, &R.dev, &R.cfg, &L)) || (s = awq_capture(&S, &L)))
                goto fail_misc;
            awq_acts_advance(&acts);
            awq_qlayer_free(&R.dev, &L);
            t = awq_phase_add(T, AWQ_PH_REPLAY, t);
            continue;
        }
        if (!report(p, S.progress_base, stage)) {
            s = awq_set_error(rt, AWQ_ERR_CANCELLED, "cancelled");
            goto fail_misc;
        }
        if ((s = awq_qlayer_read(rt, R.st, &R.cfg, i, exclude, &L))) goto fail_misc;
        if (awq) {
            if ((s = awq_qlayer_upload(rt, &R.dev, &R.cfg, &L))) goto fail_misc;
            t = awq_phase_add(T, AWQ_PH_LOAD, t);
            if ((s = awq_capture(&S, &L))) goto fail_misc;
            awq_phase_add(T, AWQ_PH_CAPTURE, t);
            /* timed inside: search per group, fold, clip */
            if ((s = awq_search_layer(&S, &L, p->clip))) goto fail_misc;
            awq_acts_advance(&acts);
        } else {
            awq_phase_add(T, AWQ_PH_LOAD, t);
        }
        char qstage[128];
        snprintf(qstage, sizeof qstage, "%s: quantize + write", stage);
        if (!report(p, S.progress_base + 0.97f * S.progress_span, qstage)) {
            s = awq_set_error(rt, AWQ_ERR_CANCELLED, "cancelled");
            goto fail_misc;
        }
        awq_qout_layer_begin(&R.out);
        /* timed inside: quantize, pack, sha-256, write */
        if ((s = write_layer(&R, &L)) || (s = write_layer_extras(&R, i))) goto fail_misc;
        t = awq_time_now();
        char cstage[128];
        snprintf(cstage, sizeof cstage, "%s: commit", stage);
        if (!report(p, S.progress_base + 0.99f * S.progress_span, cstage)) {
            s = awq_set_error(rt, AWQ_ERR_CANCELLED, "cancelled");
            goto fail_misc;
        }
        if ((s = awq_qout_layer_commit(&R.out, i))) goto fail_misc;
        awq_qlayer_free(&R.dev, &L);
        t = awq_phase_add(T, AWQ_PH_COMMIT, t);
    }
    if (!report(p, 1.0f, "writing config and tokenizer")) {
        s = awq_set_error(rt, AWQ_ERR_CANCELLED, "cancelled");
        goto fail_misc;
    }
    t = awq_time_now();
    if ((s = awq_qout_commit(&R.out, p->model_dir, p))) goto fail_misc;
    awq_phase_add(T, AWQ_PH_FINISH, t);
    log_phases(rt, T, awq_time_now() - t0);
    if (report_out) {
        report_out->seconds = awq_time_now() - t0;
        report_out->search_flops = S.flops;
        report_out->peak_rss_bytes = awq_peak_rss_bytes();
        report_out->n_blocks = cal.n_blocks;
        report_out->n_linears = R.n_linears;
    }
    awq_buflist_free(&R.dev, &misc);
    awq_acts_free(&R.dev, &acts);
    awq_qop_release(&S);
    awq_device_close(&R.dev);
    awq_st_close(R.st);
    awq_calib_free(&cal);
    awq_tokenizer_destroy(tok);
    cJSON_Delete(fp);
    return AWQ_OK;
fail_misc:
    awq_buflist_free(&R.dev, &misc);
fail:
    acc_free(&R);
    awq_qlayer_free(&R.dev, &L);
    awq_acts_free(&R.dev, &acts);
    awq_qop_release(&S);
    awq_qout_abort(&R.out);
    awq_device_close(&R.dev);
    awq_st_close(R.st);
    awq_calib_free(&cal);
    awq_tokenizer_destroy(tok);
    awq_resume_release(&rs);
    cJSON_Delete(fp);
    return s;
}
