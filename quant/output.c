/*
 * output.c - the quantized checkpoint: a temporary directory beside OUT_DIR, every tensor
 * planned up front (safetensors headers come first), written as layers finish, then config.json
 * with quantization_config (docs/formats.md 5), tokenizer/generation files, awq-manifest.json,
 * and one rename at the end. Each finished decoder layer is made durable and recorded in progress/ so an
 * interrupted run can be continued (resume.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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
#include "resume.h"
#include "safetensors.h"
#include "sha256.h"


/* Hugging Face hub's "5GB" (10^9 bytes per GB). */
#define AWQ_MAX_SHARD_BYTES 5000000000ull

static const char *const layer_norms[] = {"input_layernorm.weight", "post_attention_layernorm.weight",
                                          "self_attn.q_norm.weight", "self_attn.k_norm.weight"};

static awq_status plan_same(awq_qout *o, const awq_st_tensor *t) {
    return awq_st_writer_add(o->w, t->name, t->dtype, t->ndim, t->shape);
}

static awq_status plan_linear(awq_qout *o, const awq_safetensors *st, const char *prefix, bool quantized) {
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
        qw[0] = out_f;
        qw[1] = in_f / 8;
        qz[0] = out_f;
        qz[1] = zw;
        sc[0] = out_f;
        sc[1] = zw * 8;
    } else {
        qw[0] = in_f;
        qw[1] = out_f / 8;
        qz[0] = G;
        qz[1] = out_f / 8;
        sc[0] = G;
        sc[1] = out_f;
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
/* True if rest (layer-relative) is a tensor of layer l's mixture-of-experts block. */
static bool is_moe_tensor(const awq_model_config *c, int32_t l, const char *rest) {
    if (!awq_config_layer_moe(c, l)) return false;
    char buf[160];
    snprintf(buf, sizeof buf, "%s.weight", awq_moe_router_name(c));
    if (!strcmp(rest, buf)) return true;
    const char *p = c->moe_mixtral_names ? "block_sparse_moe.experts." : "mlp.experts.";
    if (!strncmp(rest, p, strlen(p))) return true;
    return c->shared_ff > 0 && !strncmp(rest, "mlp.shared_expert", 17);
}

static bool is_structured(const char *name, const awq_model_config *c) {
    int32_t n_layers = c->n_layers;
    if (!strcmp(name, "model.embed_tokens.weight") || !strcmp(name, "model.norm.weight") ||
        !strcmp(name, "lm_head.weight"))
        return true;
    int layer, n = 0;
    if (sscanf(name, "model.layers.%d.%n", &layer, &n) != 1 || n == 0 || layer < 0 || layer >= n_layers)
        return false;
    const char *rest = name + n;
    for (size_t i = 0; i < sizeof layer_norms / sizeof layer_norms[0]; i++)
        if (!strcmp(rest, layer_norms[i])) return true;
    if (is_moe_tensor(c, layer, rest)) return true;
    static const char *const fused[] = {"self_attn.qkv_proj", "mlp.gate_up_proj"}; /* Phi-3 */
    for (int l = 0; l < AWQ_LIN_COUNT + 2; l++) {
        const char *ln_name = l < AWQ_LIN_COUNT ? awq_lin_names[l] : fused[l - AWQ_LIN_COUNT];
        size_t ln = strlen(ln_name);
        if (!strncmp(rest, ln_name, ln) && (!strcmp(rest + ln, ".weight") || !strcmp(rest + ln, ".bias")))
            return true;
    }
    return false;
}

/* Layer i's mixture-of-experts block in the order the quantizer writes it: the experts' (and
 * the shared expert's) linears, then the router and the shared gate kept as they are. */
static awq_status plan_moe(awq_qout *o, const awq_safetensors *st, const awq_model_config *c,
                           const awq_quant_params *p, int32_t i) {
    char name[320], part[160];
    const awq_st_tensor *t;
    for (int32_t e = 0; e < c->n_experts; e++)
        for (int k = 0; k < 3; k++) {
            awq_moe_expert_name(c, e, k, part, sizeof part);
            snprintf(name, sizeof name, "model.layers.%d.%s", i, part);
            TRY(plan_linear(o, st, name, !awq_name_excluded(name, p->exclude)));
        }
    for (int k = 0; c->shared_ff > 0 && k < 3; k++) {
        snprintf(name, sizeof name, "model.layers.%d.%s", i, awq_moe_shared_name(k));
        TRY(plan_linear(o, st, name, !awq_name_excluded(name, p->exclude)));
    }
    const char *fp[2] = {awq_moe_router_name(c), c->shared_ff > 0 ? awq_moe_shared_name(3) : NULL};
    for (int k = 0; k < 2; k++) {
        if (!fp[k]) continue;
        snprintf(name, sizeof name, "model.layers.%d.%s.weight", i, fp[k]);
        if (!(t = awq_st_find(st, name)))
            return awq_set_error(o->rt, AWQ_ERR_FORMAT, "tensor '%s' is missing", name);
        TRY(plan_same(o, t));
    }
    return AWQ_OK;
}

/* ---- the temporary directory ----------------------------------------------------------- */

static bool has_suffix(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* Names of the regular files of dir (owned array of owned strings). */
static awq_status list_files(awq_runtime *rt, const char *dir, char ***out, int32_t *n) {
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return awq_set_error(rt, AWQ_ERR_IO, "%s: cannot list: %s", dir, strerror(errno));
    char **v = NULL;
    int32_t cnt = 0, cap = 0;
    struct dirent *e;
    awq_status s = AWQ_OK;
    while ((e = readdir(d))) {
        char path[4200];
        struct stat sb;
        awq_path_join(path, sizeof path, dir, e->d_name);
        if (lstat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) continue;
        if (cnt == cap) {
            cap = cap ? cap * 2 : 16;
            char **nv = awq_realloc(v, (size_t)cap * sizeof *nv);
            if (!nv) {
                s = awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
                break;
            }
            v = nv;
        }
        if (!(v[cnt] = awq_strdup(e->d_name))) {
            s = awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
            break;
        }
        cnt++;
    }
    closedir(d);
    if (s != AWQ_OK) {
        for (int32_t i = 0; i < cnt; i++) awq_free(v[i]);
        awq_free(v);
        return s;
    }
    *out = v;
    *n = cnt;
    return AWQ_OK;
}

static void free_list(char **v, int32_t n) {
    for (int32_t i = 0; i < n; i++) awq_free(v[i]);
    awq_free(v);
}

/* Takes over an interrupted run's directory: a *.safetensors.prev left by a restore that was
 * itself interrupted is the authoritative copy again; the shards are set aside as *.prev (the
 * writer recreates them); anything else but progress/ is removed (it is rewritten at commit). */
static awq_status take_over(awq_qout *o) {
    awq_runtime *rt = o->rt;
    char **names;
    int32_t n;
    char a[4200], b[4200];
    TRY(list_files(rt, o->tmp_dir, &names, &n));
    for (int32_t i = 0; i < n; i++) {
        if (!has_suffix(names[i], ".safetensors.prev")) continue;
        awq_path_join(a, sizeof a, o->tmp_dir, names[i]);
        snprintf(b, sizeof b, "%.*s", (int)(strlen(a) - 5), a);
        if (rename(a, b) != 0) {
            free_list(names, n);
            return awq_set_error(rt, AWQ_ERR_IO, "cannot rename %s to %s: %s", a, b, strerror(errno));
        }
    }
    free_list(names, n);
    TRY(list_files(rt, o->tmp_dir, &names, &n));
    awq_status s = AWQ_OK;
    for (int32_t i = 0; i < n && s == AWQ_OK; i++) {
        awq_path_join(a, sizeof a, o->tmp_dir, names[i]);
        if (has_suffix(names[i], ".safetensors")) {
            snprintf(b, sizeof b, "%s.prev", a);
            if (rename(a, b) != 0)
                s = awq_set_error(rt, AWQ_ERR_IO, "cannot rename %s to %s: %s", a, b, strerror(errno));
        } else {
            unlink(a);
        }
    }
    free_list(names, n);
    /* half-written records (.tmp) of the progress directory */
    awq_path_join(a, sizeof a, o->tmp_dir, AWQ_PROGRESS_DIR);
    if (s == AWQ_OK && (s = list_files(rt, a, &names, &n)) == AWQ_OK) {
        for (int32_t i = 0; i < n; i++)
            if (has_suffix(names[i], ".tmp")) {
                awq_path_join(b, sizeof b, a, names[i]);
                unlink(b);
            }
        free_list(names, n);
    }
    if (s == AWQ_OK) s = awq_fsync_path(rt, o->tmp_dir);
    return s;
}

awq_status awq_qout_begin(awq_qout *o, awq_runtime *rt, const awq_safetensors *st, const awq_model_config *c,
                          const awq_quant_params *p, struct awq_resume *rs, const cJSON *fp) {
    memset(o, 0, sizeof *o);
    o->rt = rt;
    o->lock_fd = -1;
    o->fp = fp;
    o->gemv = p->format == AWQ_FORMAT_GEMV;
    o->group_size = p->group_size;
    snprintf(o->out_dir, sizeof o->out_dir, "%s", p->out_dir);
    size_t n = strlen(o->out_dir);
    while (n > 1 && o->out_dir[n - 1] == '/') o->out_dir[--n] = '\0';
    if (rs && rs->tmp_dir[0]) {
        snprintf(o->tmp_dir, sizeof o->tmp_dir, "%s", rs->tmp_dir);
        o->lock_fd = rs->lock_fd;
        rs->lock_fd = -1;
        o->resumed = true;
        TRY(take_over(o));
    } else {
        snprintf(o->tmp_dir, sizeof o->tmp_dir, "%s.tmp-XXXXXX", o->out_dir);
        if (!mkdtemp(o->tmp_dir)) {
            awq_status s = awq_set_error(rt, AWQ_ERR_IO, "%s: cannot create a temporary directory: %s",
                                         o->tmp_dir, strerror(errno));
            o->tmp_dir[0] = '\0';
            return s;
        }
        if (fp) TRY(awq_progress_init(rt, o->tmp_dir, fp, &o->lock_fd));
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
            if (which >= AWQ_LIN_GATE && awq_config_layer_moe(c, i)) continue; /* planned below */
            if (which >= 0) {
                int64_t row0 = 0; /* a fused checkpoint linear (Phi-3) is planned with its first part */
                const char *ck = awq_lin_ckpt_name(c, which, &row0);
                if (row0 > 0) continue;
                snprintf(name, sizeof name, "model.layers.%d.%s", i, ck);
                bool quant = !awq_name_excluded(name, p->exclude);
                TRY(plan_linear(o, st, name, quant));
            } else {
                snprintf(name, sizeof name, "model.layers.%d.%s", i, layer_norms[-which - 1]);
                if ((t = awq_st_find(st, name)))
                    TRY(plan_same(o, t));
                else if (which >= -2)
                    return awq_set_error(rt, AWQ_ERR_FORMAT, "tensor '%s' is missing", name);
            }
        }
        if (awq_config_layer_moe(c, i)) TRY(plan_moe(o, st, c, p, i));
    }
    if (!(t = awq_st_find(st, "model.norm.weight")))
        return awq_set_error(rt, AWQ_ERR_FORMAT, "tensor 'model.norm.weight' is missing");
    TRY(plan_same(o, t));
    /* lm_head is never quantized (AutoAWQ); a tied one is not written twice. */
    if ((t = awq_st_find(st, "lm_head.weight")) && !c->tie_embeddings) TRY(plan_same(o, t));
    for (int32_t i = 0; i < awq_st_count(st); i++) {
        t = awq_st_get(st, i);
        if (!is_structured(t->name, c)) TRY(plan_same(o, t));
    }
    return awq_st_writer_begin(o->w);
}

/* ---- writing, with the hashes a layer record vouches for ----------------------------------- */

struct awq_qout_rec {
    char *name;
    uint64_t nbytes;
    char sha256[65];
};

static void clear_recs(awq_qout *o) {
    for (int32_t i = 0; i < o->n_rec; i++) awq_free(o->rec[i].name);
    o->n_rec = 0;
}

static awq_status put(awq_qout *o, const char *name, const void *data, uint64_t nbytes) {
    double t0 = awq_time_now();
    awq_status ws = awq_st_writer_write(o->w, name, data, nbytes);
    t0 = awq_phase_add(o->times, AWQ_PH_WRITE, t0);
    if (ws != AWQ_OK) return ws;
    if (!o->track) return AWQ_OK;
    if (o->n_rec == o->cap_rec) {
        int32_t cap = o->cap_rec ? o->cap_rec * 2 : 32;
        awq_qout_rec *nr = awq_realloc(o->rec, (size_t)cap * sizeof *nr);
        if (!nr) return awq_set_error(o->rt, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
        o->rec = nr;
        o->cap_rec = cap;
    }
    awq_qout_rec *r = &o->rec[o->n_rec];
    if (!(r->name = awq_strdup(name))) return awq_set_error(o->rt, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
    r->nbytes = nbytes;
    awq_sha256_hex(data, (size_t)nbytes, r->sha256);
    o->n_rec++;
    awq_phase_add(o->times, AWQ_PH_HASH, t0);
    return AWQ_OK;
}

awq_status awq_qout_write_raw(awq_qout *o, const char *name, const void *data, uint64_t nbytes) {
    return put(o, name, data, nbytes);
}

awq_status awq_qout_write_f32(awq_qout *o, const char *name, awq_dtype dtype, const float *data, int64_t n) {
    if (dtype == AWQ_DTYPE_F32) return put(o, name, data, (uint64_t)n * 4);
    uint16_t *buf = awq_malloc((size_t)n * 2);
    if (!buf) return awq_set_error(o->rt, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
    double t0 = awq_time_now();
    awq_row_from_f32(buf, dtype, data, n);
    awq_phase_add(o->times, AWQ_PH_WRITE, t0);
    awq_status s = put(o, name, buf, (uint64_t)n * 2);
    awq_free(buf);
    return s;
}

awq_status awq_qout_write_qlinear(awq_qout *o, const char *prefix, int64_t out_f, int64_t in_f,
                                  const uint8_t *codes, const uint16_t *scales, const uint8_t *zeros,
                                  const float *bias) {
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
    if (!qw || !qz || !sc) {
        s = awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    double t0 = awq_time_now();
    if (o->gemv)
        s = awq_pack_gemv(rt, out_f, in_f, gs, codes, scales, zeros, qw, qz, sc);
    else
        s = awq_pack_gemm(rt, out_f, in_f, gs, codes, scales, zeros, qw, qz, sc);
    awq_phase_add(o->times, AWQ_PH_PACK, t0);
    if (s != AWQ_OK) goto done;
    snprintf(name, sizeof name, "%s.qweight", prefix);
    if ((s = put(o, name, qw, (uint64_t)nqw * 4))) goto done;
    snprintf(name, sizeof name, "%s.qzeros", prefix);
    if ((s = put(o, name, qz, (uint64_t)nqz * 4))) goto done;
    snprintf(name, sizeof name, "%s.scales", prefix);
    if ((s = put(o, name, sc, (uint64_t)nsc * 2))) goto done;
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
    /* the routers (and Qwen2-MoE's shared-expert gates) stay in full precision: named so that
     * transformers and vLLM keep them as plain linears (their match is by substring, so with
     * dense layers beside, which have mlp.gate_proj, Qwen's routers are named per layer) */
    awq_model_config *c = awq_malloc(sizeof *c);
    awq_status cs = c ? awq_config_parse(o->rt, root, src, c)
                      : awq_set_error(o->rt, AWQ_ERR_OUT_OF_MEMORY, "%s: out of memory", src);
    if (cs != AWQ_OK) {
        awq_free(c);
        cJSON_Delete(root);
        cJSON_Delete(q);
        return cs;
    }
    cJSON *arr = cJSON_CreateArray();
    for (const char *const *e = p->exclude; e && *e; e++) cJSON_AddItemToArray(arr, cJSON_CreateString(*e));
    if (c->n_experts > 0) {
        bool dense = false;
        for (int32_t l = 0; l < c->n_layers; l++) dense |= !awq_config_layer_moe(c, l);
        char buf[96];
        if (c->moe_mixtral_names || !dense) {
            cJSON_AddItemToArray(arr, cJSON_CreateString(awq_moe_router_name(c)));
        } else {
            for (int32_t l = 0; l < c->n_layers; l++) {
                if (!awq_config_layer_moe(c, l)) continue;
                snprintf(buf, sizeof buf, "model.layers.%d.%s", l, awq_moe_router_name(c));
                cJSON_AddItemToArray(arr, cJSON_CreateString(buf));
            }
        }
        if (c->shared_ff > 0) cJSON_AddItemToArray(arr, cJSON_CreateString(awq_moe_shared_name(3)));
    }
    awq_free(c);
    if (cJSON_GetArraySize(arr) > 0) {
        cJSON_AddItemToObject(q, "modules_to_not_convert", arr);
    } else {
        cJSON_Delete(arr);
        cJSON_AddNullToObject(q, "modules_to_not_convert");
    }
    cJSON_DeleteItemFromObjectCaseSensitive(root, "quantization_config");
    cJSON_AddItemToObject(root, "quantization_config", q);
    awq_status s = awq_json_write_file(o->rt, dst, root);
    cJSON_Delete(root);
    return s;
}

/* ---- per-layer records -------------------------------------------------------------------- */

static void record_path(const awq_qout *o, int32_t layer, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/" AWQ_PROGRESS_DIR "/layer-%05d.json", o->tmp_dir, (int)layer);
}

/* fsync of every shard (the writer keeps its own descriptors; fsync works on any of a file's). */
static awq_status sync_shards(awq_qout *o) {
    char **names;
    int32_t n;
    TRY(list_files(o->rt, o->tmp_dir, &names, &n));
    awq_status s = AWQ_OK;
    for (int32_t i = 0; i < n && s == AWQ_OK; i++) {
        if (!has_suffix(names[i], ".safetensors")) continue;
        char path[4200];
        awq_path_join(path, sizeof path, o->tmp_dir, names[i]);
        s = awq_fsync_path(o->rt, path);
    }
    free_list(names, n);
    return s;
}

void awq_qout_layer_begin(awq_qout *o) {
    clear_recs(o);
    o->track = o->fp != NULL;
}

awq_status awq_qout_layer_commit(awq_qout *o, int32_t layer) {
    o->track = false;
    if (!o->fp) return AWQ_OK;
    /* the data first, then the record that vouches for it */
    TRY(sync_shards(o));
    cJSON *r = cJSON_CreateObject(), *arr = NULL;
    bool oom =
        !r || !cJSON_AddNumberToObject(r, "layer", layer) || !(arr = cJSON_AddArrayToObject(r, "tensors"));
    for (int32_t i = 0; !oom && i < o->n_rec; i++) {
        cJSON *t = cJSON_CreateObject();
        oom = !t || !cJSON_AddItemToArray(arr, t) || !cJSON_AddStringToObject(t, "name", o->rec[i].name) ||
            !cJSON_AddNumberToObject(t, "bytes", (double)o->rec[i].nbytes) ||
            !cJSON_AddStringToObject(t, "sha256", o->rec[i].sha256);
    }
    awq_status s;
    if (oom) {
        s = awq_set_error(o->rt, AWQ_ERR_OUT_OF_MEMORY, "layer record: out of memory");
    } else {
        char path[4200];
        record_path(o, layer, path, sizeof path);
        s = awq_json_write_durable(o->rt, path, r);
    }
    cJSON_Delete(r);
    clear_recs(o);
    return s;
}

/* Restores one recorded layer from the set-aside shards; false (with why) if it cannot be. */
static bool restore_layer(awq_qout *o, awq_safetensors **prev, int32_t n_prev, int32_t layer,
                          awq_status *hard, char *why, size_t cap) {
    awq_runtime *rt = o->rt;
    char path[4200];
    record_path(o, layer, path, sizeof path);
    cJSON *r = NULL;
    if (awq_json_parse_file(rt, path, &r) != AWQ_OK) {
        snprintf(why, cap, "%s", awq_runtime_last_error(rt));
        awq_clear_error(rt);
        return false;
    }
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(r, "tensors"), *t;
    const cJSON *lv = cJSON_GetObjectItemCaseSensitive(r, "layer");
    bool ok = cJSON_IsArray(arr) && cJSON_IsNumber(lv) && lv->valuedouble == layer;
    if (!ok) snprintf(why, cap, "%s: malformed record", path);
    cJSON_ArrayForEach(t, arr) {
        if (!ok) break;
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(t, "name"),
                    *nb = cJSON_GetObjectItemCaseSensitive(t, "bytes"),
                    *hx = cJSON_GetObjectItemCaseSensitive(t, "sha256");
        if (!cJSON_IsString(nm) || !cJSON_IsNumber(nb) || !cJSON_IsString(hx)) {
            snprintf(why, cap, "%s: malformed record", path);
            ok = false;
            break;
        }
        const awq_st_tensor *src = NULL;
        for (int32_t k = 0; k < n_prev && !src; k++) src = awq_st_find(prev[k], nm->valuestring);
        if (!src || (double)src->nbytes != nb->valuedouble) {
            snprintf(why, cap, "tensor '%s' is %s in the set-aside shards", nm->valuestring,
                     src ? "of another size" : "missing");
            ok = false;
            break;
        }
        char hex[65];
        awq_sha256_hex(src->data, (size_t)src->nbytes, hex);
        if (strcmp(hex, hx->valuestring)) {
            snprintf(why, cap, "tensor '%s': sha256 %.12s... on disk, %.12s... recorded", nm->valuestring,
                     hex, hx->valuestring);
            ok = false;
            break;
        }
        if ((*hard = awq_st_writer_write(o->w, src->name, src->data, src->nbytes)) != AWQ_OK) {
            ok = false;
            break;
        }
    }
    cJSON_Delete(r);
    return ok;
}

awq_status awq_qout_restore(awq_qout *o, int32_t n_layers, const awq_quant_params *p, int32_t *n_done) {
    awq_runtime *rt = o->rt;
    *n_done = 0;
    if (!o->resumed) return AWQ_OK;
    char **names;
    int32_t n, n_prev = 0;
    TRY(list_files(rt, o->tmp_dir, &names, &n));
    awq_safetensors **prev = awq_calloc((size_t)(n ? n : 1), sizeof *prev);
    awq_status s = prev ? AWQ_OK : awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
    for (int32_t i = 0; i < n && s == AWQ_OK; i++) {
        if (!has_suffix(names[i], ".safetensors.prev")) continue;
        char path[4200];
        awq_path_join(path, sizeof path, o->tmp_dir, names[i]);
        if (awq_st_open(rt, path, &prev[n_prev]) == AWQ_OK) {
            n_prev++;
        } else {
            AWQ_LOG_WARN(rt, "resume: cannot read %s (%s); its layers are redone", path,
                         awq_runtime_last_error(rt));
            awq_clear_error(rt);
        }
    }
    int32_t k = 0;
    for (; s == AWQ_OK && k < n_layers; k++) {
        char path[4200], stage[96], why[512] = "";
        record_path(o, k, path, sizeof path);
        if (!awq_file_exists(path)) break;
        snprintf(stage, sizeof stage, "resuming: verifying layer %d/%d", (int)k + 1, (int)n_layers);
        if (p->progress && !p->progress((float)k / (float)n_layers, stage, p->progress_user)) {
            s = awq_set_error(rt, AWQ_ERR_CANCELLED, "cancelled");
            break;
        }
        awq_status hard = AWQ_OK;
        if (!restore_layer(o, prev, n_prev, k, &hard, why, sizeof why)) {
            if (hard != AWQ_OK)
                s = hard;
            else
                AWQ_LOG_WARN(rt,
                             "resume: layer %d cannot be reused (%s); redoing it and the layers "
                             "after it",
                             (int)k, why);
            break;
        }
    }
    if (s == AWQ_OK) {
        *n_done = k;
        /* records past the restored prefix no longer describe the data */
        for (int32_t j = k;; j++) {
            char path[4200];
            record_path(o, j, path, sizeof path);
            if (!awq_file_exists(path)) break;
            unlink(path);
        }
        char pdir[4200];
        snprintf(pdir, sizeof pdir, "%s/" AWQ_PROGRESS_DIR, o->tmp_dir);
        s = awq_fsync_path(rt, pdir);
    }
    for (int32_t i = 0; i < n_prev; i++) awq_st_close(prev[i]);
    awq_free(prev);
    /* the new shards hold everything restored: the set-aside copies can go */
    if (s == AWQ_OK) s = sync_shards(o);
    for (int32_t i = 0; i < n && s == AWQ_OK; i++) {
        if (!has_suffix(names[i], ".safetensors.prev")) continue;
        char path[4200];
        awq_path_join(path, sizeof path, o->tmp_dir, names[i]);
        unlink(path);
    }
    free_list(names, n);
    if (s == AWQ_OK) s = awq_fsync_path(rt, o->tmp_dir);
    if (s == AWQ_OK && k > 0)
        AWQ_LOG_INFO(rt, "resume: %d of %d layers restored from %s (hashes verified)", (int)k, (int)n_layers,
                     o->tmp_dir);
    return s;
}

/* Removes progress/: the layer records from the last down (so an interruption leaves a valid
 * prefix), then the lock and the fingerprint. */
static void remove_progress(awq_qout *o) {
    char path[4200];
    int32_t k = awq_progress_layers_done(o->tmp_dir, 0);
    for (int32_t j = k - 1; j >= 0; j--) {
        record_path(o, j, path, sizeof path);
        unlink(path);
    }
    awq_path_join(path, sizeof path, o->tmp_dir, AWQ_PROGRESS_DIR);
    awq_rmtree(path);
}

awq_status awq_qout_commit(awq_qout *o, const char *model_dir, const awq_quant_params *p) {

    awq_runtime *rt = o->rt;
    TRY(awq_st_writer_finish(o->w));
    awq_st_writer_destroy(o->w);
    o->w = NULL;
    TRY(write_config(o, model_dir, p));
    static const char *const copies[] = {
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "tokenizer.model",
        "vocab.json",
        "merges.txt",
        "added_tokens.json",
        "chat_template.jinja",
    };
    char src[4096], dst[4096];
    for (size_t i = 0; i < sizeof copies / sizeof copies[0]; i++) {
        awq_path_join(src, sizeof src, model_dir, copies[i]);
        if (!awq_file_exists(src)) continue;
        awq_path_join(dst, sizeof dst, o->tmp_dir, copies[i]);
        TRY(copy_file(rt, src, dst));
    }
    /* The content hashes of every file, then the progress records go: from here on the
     * directory is a complete checkpoint. */
    TRY(awq_manifest_write(rt, o->tmp_dir, o->fp));
    if (o->fp) remove_progress(o);
    TRY(awq_fsync_path(rt, o->tmp_dir));
    /* Replace an existing out_dir only now that the new one is complete. */
    TRY(awq_dir_publish(rt, o->tmp_dir, o->out_dir, p->force));
    o->tmp_dir[0] = '\0';
    char parent[4096], base[1024];
    awq_split_out_dir(o->out_dir, parent, sizeof parent, base, sizeof base);
    awq_status s = awq_fsync_path(rt, parent);
    if (o->lock_fd >= 0) close(o->lock_fd);
    o->lock_fd = -1;
    clear_recs(o);
    awq_free(o->rec);
    o->rec = NULL;
    return s;
}

void awq_qout_abort(awq_qout *o) {
    if (o->w) awq_st_writer_destroy(o->w);
    o->w = NULL;
    if (o->tmp_dir[0]) awq_rmtree(o->tmp_dir);
    o->tmp_dir[0] = '\0';
    if (o->lock_fd >= 0) close(o->lock_fd);
    o->lock_fd = -1;
    clear_recs(o);
    awq_free(o->rec);
    o->rec = NULL;
}
