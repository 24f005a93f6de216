/*
 * output.c - the quantized checkpoint: a temporary directory beside OUT_DIR, every tensor
 * planned up front (safetensors headers come first), written as layers finish, then config.json
 * with quantization_config (awq-spec 9.3), tokenizer/generation files, and one rename at the end.
 */
#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "awq_pack.h"
#include "json.h"
#include "pack.h"
#include "quant.h"
#include "safetensors.h"

#define TRY(x) do { awq_status st_ = (x); if (st_ != AWQ_OK) return st_; } while (0)

/* Hugging Face hub's "5GB" (10^9 bytes per GB). */
#define AWQ_MAX_SHARD_BYTES 5000000000ull

static const char *const layer_norms[] = {"input_layernorm.weight", "post_attention_layernorm.weight",
                                          "self_attn.q_norm.weight", "self_attn.k_norm.weight"};

static awq_status plan_same(awq_qout *o, const awq_st_tensor *t) {
    return awq_st_writer_add(o->w, t->name, t->dtype, t->ndim, t->shape);
}

static awq_status plan_linear(awq_qout *o, const awq_safetensors *st, const char *prefix,
                              bool quantized) {
    char name[320];
    snprintf(name, sizeof name, "%s.weight", prefix);
    const awq_st_tensor *w = awq_st_find(st, name);
    if (!w || w->ndim != 2)
        return awq_set_error(o->rt, AWQ_ERR_FORMAT, "tensor '%s' is missing or not 2-D", name);
    snprintf(name, sizeof name, "%s.bias", prefix);
    const awq_st_tensor *b = awq_st_find(st, name);
    if (!quantized) {
        TRY(plan_same(o, w));
        return b ? plan_same(o, b) : AWQ_OK;
    }
    int64_t out_f = w->shape[0], in_f = w->shape[1], gs = o->group_size, G = in_f / gs;
    int64_t qw[2], qz[2], sc[2];
    if (o->gemv) {
        int64_t zw = awq_gemv_zeros_width(in_f, gs);
        qw[0] = out_f; qw[1] = in_f / 8;
        qz[0] = out_f; qz[1] = zw;
        sc[0] = out_f; sc[1] = zw * 8;
    } else {
        qw[0] = in_f; qw[1] = out_f / 8;
        qz[0] = G;    qz[1] = out_f / 8;
        sc[0] = G;    sc[1] = out_f;
    }
    snprintf(name, sizeof name, "%s.qweight", prefix);
    TRY(awq_st_writer_add(o->w, name, AWQ_DTYPE_I32, 2, qw));
    snprintf(name, sizeof name, "%s.qzeros", prefix);
    TRY(awq_st_writer_add(o->w, name, AWQ_DTYPE_I32, 2, qz));
    snprintf(name, sizeof name, "%s.scales", prefix);
    TRY(awq_st_writer_add(o->w, name, AWQ_DTYPE_F16, 2, sc));
    if (b) {
        snprintf(name, sizeof name, "%s.bias", prefix);
        TRY(awq_st_writer_add(o->w, name, AWQ_DTYPE_F16, 1, &out_f));
    }
    return AWQ_OK;
}

/* True if name is planned by the structured pass (so the catch-all pass skips it). */
static bool is_structured(const char *name, int32_t n_layers) {
    if (!strcmp(name, "model.embed_tokens.weight") || !strcmp(name, "model.norm.weight") ||
        !strcmp(name, "lm_head.weight"))
        return true;
    int layer, n = 0;
    if (sscanf(name, "model.layers.%d.%n", &layer, &n) != 1 || n == 0 || layer < 0 || layer >= n_layers)
        return false;
    const char *rest = name + n;
    for (size_t i = 0; i < sizeof layer_norms / sizeof layer_norms[0]; i++)
        if (!strcmp(rest, layer_norms[i])) return true;
    for (int l = 0; l < AWQ_LIN_COUNT; l++) {
        size_t ln = strlen(awq_lin_names[l]);
        if (!strncmp(rest, awq_lin_names[l], ln) &&
            (!strcmp(rest + ln, ".weight") || !strcmp(rest + ln, ".bias")))
            return true;
    }
    return false;
}

awq_status awq_qout_begin(awq_qout *o, awq_runtime *rt, const awq_safetensors *st,
                          const awq_model_config *c, const awq_quant_params *p) {
    memset(o, 0, sizeof *o);
    o->rt = rt;
    o->gemv = p->format == AWQ_FORMAT_GEMV;
    o->group_size = p->group_size;
    snprintf(o->out_dir, sizeof o->out_dir, "%s", p->out_dir);
    size_t n = strlen(o->out_dir);
    while (n > 1 && o->out_dir[n - 1] == '/') o->out_dir[--n] = '\0';
    snprintf(o->tmp_dir, sizeof o->tmp_dir, "%s.tmp-XXXXXX", o->out_dir);
    if (!mkdtemp(o->tmp_dir)) {
        awq_status s = awq_set_error(rt, AWQ_ERR_IO, "%s: cannot create a temporary directory: %s",
                                     o->tmp_dir, strerror(errno));
        o->tmp_dir[0] = '\0';
        return s;
    }
    const char *meta[] = {"format", "pt", NULL};
    TRY(awq_st_writer_create(rt, &o->w, o->tmp_dir, AWQ_MAX_SHARD_BYTES, meta));

    const awq_st_tensor *t;
    if (!(t = awq_st_find(st, "model.embed_tokens.weight")))
        return awq_set_error(rt, AWQ_ERR_FORMAT, "tensor 'model.embed_tokens.weight' is missing");
    TRY(plan_same(o, t));
    char name[320];
    for (int32_t i = 0; i < c->n_layers; i++) {
        for (int l = 0; l < AWQ_LIN_COUNT + 4; l++) {
            /* input_layernorm, q, k, v, o, q_norm, k_norm, post_attention_layernorm, gate, up, down */
            static const int order[] = {-1, 0, 1, 2, 3, -3, -4, -2, 4, 5, 6};
            int which = order[l];
            if (which >= 0) {
                snprintf(name, sizeof name, "model.layers.%d.%s", i, awq_lin_names[which]);
                bool quant = !awq_name_excluded(name, p->exclude);
                TRY(plan_linear(o, st, name, quant));
            } else {
                snprintf(name, sizeof name, "model.layers.%d.%s", i, layer_norms[-which - 1]);
                if ((t = awq_st_find(st, name))) TRY(plan_same(o, t));
                else if (which >= -2)
                    return awq_set_error(rt, AWQ_ERR_FORMAT, "tensor '%s' is missing", name);
            }
        }
    }
    if (!(t = awq_st_find(st, "model.norm.weight")))
        return awq_set_error(rt, AWQ_ERR_FORMAT, "tensor 'model.norm.weight' is missing");
    TRY(plan_same(o, t));
    /* lm_head is never quantized (AutoAWQ); a tied one is not written twice. */
    if ((t = awq_st_find(st, "lm_head.weight")) && !c->tie_embeddings) TRY(plan_same(o, t));
    for (int32_t i = 0; i < awq_st_count(st); i++) {
        t = awq_st_get(st, i);
        if (!is_structured(t->name, c->n_layers)) TRY(plan_same(o, t));
    }
    return awq_st_writer_begin(o->w);
}

awq_status awq_qout_write_raw(awq_qout *o, const char *name, const void *data, uint64_t nbytes) {
    return awq_st_writer_write(o->w, name, data, nbytes);
}

awq_status awq_qout_write_f32(awq_qout *o, const char *name, awq_dtype dtype, const float *data,
                              int64_t n) {
    if (dtype == AWQ_DTYPE_F32) return awq_st_writer_write(o->w, name, data, (uint64_t)n * 4);
    uint16_t *buf = awq_malloc((size_t)n * 2);
    if (!buf) return awq_set_error(o->rt, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
    for (int64_t i = 0; i < n; i++)
        buf[i] = dtype == AWQ_DTYPE_BF16 ? awq_f32_to_bf16(data[i]) : awq_f32_to_f16(data[i]);
    awq_status s = awq_st_writer_write(o->w, name, buf, (uint64_t)n * 2);
    awq_free(buf);
    return s;
}

awq_status awq_qout_write_qlinear(awq_qout *o, const char *prefix, int64_t out_f, int64_t in_f,
                                  const uint8_t *codes, const uint16_t *scales,
                                  const uint8_t *zeros, const float *bias) {
    awq_runtime *rt = o->rt;
    int64_t gs = o->group_size, G = in_f / gs;
    int64_t nqw = in_f * out_f / 8, nqz, nsc;
    if (o->gemv) {
        int64_t zw = awq_gemv_zeros_width(in_f, gs);
        nqz = out_f * zw;
        nsc = out_f * zw * 8;
    } else {
        nqz = G * out_f / 8;
        nsc = G * out_f;
    }
    int32_t *qw = awq_malloc((size_t)nqw * 4), *qz = awq_malloc((size_t)nqz * 4);
    uint16_t *sc = awq_malloc((size_t)nsc * 2);
    awq_status s = AWQ_OK;
    char name[320];
    if (!qw || !qz || !sc) { s = awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "out of memory"); goto done; }
    if (o->gemv)
        s = awq_pack_gemv(rt, out_f, in_f, gs, codes, scales, zeros, qw, qz, sc);
    else
        s = awq_pack_gemm(rt, out_f, in_f, gs, codes, scales, zeros, qw, qz, sc);
    if (s != AWQ_OK) goto done;
    snprintf(name, sizeof name, "%s.qweight", prefix);
    if ((s = awq_st_writer_write(o->w, name, qw, (uint64_t)nqw * 4))) goto done;
    snprintf(name, sizeof name, "%s.qzeros", prefix);
    if ((s = awq_st_writer_write(o->w, name, qz, (uint64_t)nqz * 4))) goto done;
    snprintf(name, sizeof name, "%s.scales", prefix);
    if ((s = awq_st_writer_write(o->w, name, sc, (uint64_t)nsc * 2))) goto done;
    if (bias) {
        snprintf(name, sizeof name, "%s.bias", prefix);
        s = awq_qout_write_f32(o, name, AWQ_DTYPE_F16, bias, out_f);
    }
done:
    awq_free(qw);
    awq_free(qz);
    awq_free(sc);
    return s;
}

static awq_status copy_file(awq_runtime *rt, const char *src, const char *dst) {
    char *data = NULL;
    size_t len = 0;
    TRY(awq_read_file(rt, src, &data, &len));
    FILE *f = fopen(dst, "wb");
    awq_status s = AWQ_OK;
    if (!f || fwrite(data, 1, len, f) != len || fflush(f) != 0)
        s = awq_set_error(rt, AWQ_ERR_IO, "%s: write failed: %s", dst, strerror(errno));
    if (f && fclose(f) != 0 && s == AWQ_OK)
        s = awq_set_error(rt, AWQ_ERR_IO, "%s: write failed: %s", dst, strerror(errno));
    awq_free(data);
    return s;
}

static awq_status write_config(awq_qout *o, const char *model_dir, const awq_quant_params *p) {
    char src[4096], dst[4096];
    awq_path_join(src, sizeof src, model_dir, "config.json");
    awq_path_join(dst, sizeof dst, o->tmp_dir, "config.json");
    cJSON *root = NULL;
    TRY(awq_json_parse_file(o->rt, src, &root));
    cJSON *q = cJSON_CreateObject();
    cJSON_AddStringToObject(q, "quant_method", "awq");
    cJSON_AddBoolToObject(q, "zero_point", true);
    cJSON_AddNumberToObject(q, "group_size", p->group_size);
    cJSON_AddNumberToObject(q, "bits", p->w_bit);
    cJSON_AddStringToObject(q, "version", p->format == AWQ_FORMAT_GEMV ? "gemv" : "gemm");
    if (p->exclude && p->exclude[0]) {
        cJSON *arr = cJSON_AddArrayToObject(q, "modules_to_not_convert");
        for (const char *const *e = p->exclude; *e; e++) cJSON_AddItemToArray(arr, cJSON_CreateString(*e));
    } else {
        cJSON_AddNullToObject(q, "modules_to_not_convert");
    }
    cJSON_DeleteItemFromObjectCaseSensitive(root, "quantization_config");
    cJSON_AddItemToObject(root, "quantization_config", q);
    awq_status s = awq_json_write_file(o->rt, dst, root);
    cJSON_Delete(root);
    return s;
}

awq_status awq_qout_commit(awq_qout *o, const char *model_dir, const awq_quant_params *p) {
    awq_runtime *rt = o->rt;
    TRY(awq_st_writer_finish(o->w));
    awq_st_writer_destroy(o->w);
    o->w = NULL;
    TRY(write_config(o, model_dir, p));
    static const char *const copies[] = {
        "generation_config.json", "tokenizer.json", "tokenizer_config.json",
        "special_tokens_map.json", "tokenizer.model", "vocab.json", "merges.txt",
        "added_tokens.json", "chat_template.jinja",
    };
    char src[4096], dst[4096];
    for (size_t i = 0; i < sizeof copies / sizeof copies[0]; i++) {
        awq_path_join(src, sizeof src, model_dir, copies[i]);
        if (!awq_file_exists(src)) continue;
        awq_path_join(dst, sizeof dst, o->tmp_dir, copies[i]);
        TRY(copy_file(rt, src, dst));
    }
    /* Replace an existing out_dir only now that the new one is complete. */
    TRY(awq_dir_publish(rt, o->tmp_dir, o->out_dir, p->force));
    o->tmp_dir[0] = '\0';
    return AWQ_OK;
}

void awq_qout_abort(awq_qout *o) {
    if (o->w) awq_st_writer_destroy(o->w);
    o->w = NULL;
    if (o->tmp_dir[0]) awq_rmtree(o->tmp_dir);
    o->tmp_dir[0] = '\0';
}
