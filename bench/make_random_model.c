/*
 * make_random_model.c - writes a Hugging Face checkpoint directory with random weights in the
 * shapes of a real model (Llama-3.2-1B, Llama-3-8B, SmolLM2-135M), so that decode/prefill speed,
 * peak memory and quantization time can be measured at the sizes users run without downloading
 * weights. A benchmark tool (bench/bench_1b.sh), not a test and not installed.
 *
 *   awq-make-random-model --shape llama-3.2-1b --dtype bf16 --tokenizer SMOLLM2_DIR OUT_DIR
 *
 * What is written:
 *   config.json       the model's own architecture fields (hidden size, layers, heads, kv heads,
 *                     head_dim, intermediate size, vocab size, rope theta and scaling, tied
 *                     embeddings); bos/eos ids are the tokenizer's, since its files are reused.
 *   tokenizer.json, tokenizer_config.json   copied from --tokenizer (SmolLM2's 49,152-entry
 *                     BPE). The embedding keeps the model's own row count (128,256 for the Llama 3
 *                     shapes) so that the lm_head, the largest single matrix of a 1B model, has its
 *                     real size; the tokenizer only ever produces ids below 49,152, and the rows
 *                     above are never looked up (the lm_head still computes all 128,256 logits).
 *   model.safetensors, or model-0000k-of-0000n.safetensors + model.safetensors.index.json when
 *                     the weights exceed --max-shard-gb (default 5, transformers' default).
 *
 * Values: linear weights and the embedding ~ N(0, 0.02^2) (transformers' initializer_range);
 * norm weights 1 + N(0, 0.05^2). A handful of fixed hidden channels (the same in every layer, as
 * the "massive activation" channels of trained models are) get norm weights of 8-20 and
 * embedding columns 4x larger, so the inputs of q/k/v and gate/up have outlier channels and
 * AWQ's search has something to find. The numbers are deterministic in --seed and do not depend
 * on the thread count (each 1 Mi-element chunk of a tensor has its own generator).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CHUNK  ((int64_t)1 << 20)
#define TWO_PI 6.283185307179586

typedef struct shape {
    const char *name;
    int64_t d, layers, heads, kv_heads, head_dim, ff, vocab, max_pos;
    double rope_theta;
    bool tied, llama3_rope;
} shape;

static const shape shapes[] = {
    {"llama-3.2-1b", 2048, 16, 32, 8, 64, 8192, 128256, 131072, 500000.0, true, true},
    {"llama-3-8b", 4096, 32, 32, 8, 128, 14336, 128256, 8192, 500000.0, false, false},
    {"smollm2-135m", 576, 30, 9, 3, 64, 1536, 49152, 8192, 100000.0, true, false},
};

/* ---- random numbers: splitmix64 seeding, xoshiro256**, Box-Muller --------------------------- */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

typedef struct rng {
    uint64_t s[4];
} rng;

static void rng_seed(rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(rng *r) {
    uint64_t *s = r->s, res = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return res;
}

/* uniform in (0, 1] */
static double rng_unit(rng *r) { return ((rng_next(r) >> 11) + 1) * 0x1.0p-53; }

static uint64_t hash_str(const char *s, uint64_t h) {
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

/* ---- fp16 / bf16 (round to nearest even) ------------------------------------------------------ */

static uint16_t f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

static uint16_t f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000u;
    int32_t e = (int32_t)((u >> 23) & 0xff) - 127 + 15;
    uint32_t m = u & 0x7fffffu;
    if (e >= 31) return (uint16_t)(sign | 0x7c00u); /* values here are far below 65504 */
    if (e <= 0) {                                   /* subnormal half */
        if (e < -10) return (uint16_t)sign;
        m |= 0x800000u;
        int sh = 14 - e;
        uint32_t h = m >> sh, rem = m & ((1u << sh) - 1), half = 1u << (sh - 1);
        if (rem > half || (rem == half && (h & 1u))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((uint32_t)e << 10) | (m >> 13), rem = m & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++;
    return (uint16_t)(sign | h);
}

/* ---- the tensors ------------------------------------------------------------------------------ */

typedef enum kind { K_LINEAR, K_EMBED, K_NORM } kind;

typedef struct tensor {
    char name[96];
    int64_t rows, cols; /* cols = 0: a vector of `rows` */
    kind k;
    int shard;
    int64_t off; /* byte offset in its shard's data section */
} tensor;

typedef struct plan {
    tensor *t;
    int n, cap;
} plan;

static void add(plan *p, kind k, int64_t rows, int64_t cols, const char *fmt, int layer) {
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 64;
        p->t = realloc(p->t, (size_t)p->cap * sizeof *p->t);
        if (!p->t) {
            fprintf(stderr, "out of memory\n");
            exit(1);
        }
    }
    tensor *t = &p->t[p->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, fmt, layer);
    t->rows = rows;
    t->cols = cols;
    t->k = k;
}

/* transformers' order: embedding, layers (attention, mlp, norms), final norm, lm_head */
static void make_plan(const shape *s, plan *p) {
    int64_t d = s->d, qd = s->heads * s->head_dim, kvd = s->kv_heads * s->head_dim;
    add(p, K_EMBED, s->vocab, d, "model.embed_tokens.weight", 0);
    for (int i = 0; i < (int)s->layers; i++) {
        add(p, K_NORM, d, 0, "model.layers.%d.input_layernorm.weight", i);
        add(p, K_LINEAR, s->ff, d, "model.layers.%d.mlp.gate_proj.weight", i);
        add(p, K_LINEAR, s->ff, d, "model.layers.%d.mlp.up_proj.weight", i);
        add(p, K_LINEAR, d, s->ff, "model.layers.%d.mlp.down_proj.weight", i);
        add(p, K_NORM, d, 0, "model.layers.%d.post_attention_layernorm.weight", i);
        add(p, K_LINEAR, qd, d, "model.layers.%d.self_attn.q_proj.weight", i);
        add(p, K_LINEAR, kvd, d, "model.layers.%d.self_attn.k_proj.weight", i);
        add(p, K_LINEAR, kvd, d, "model.layers.%d.self_attn.v_proj.weight", i);
        add(p, K_LINEAR, d, qd, "model.layers.%d.self_attn.o_proj.weight", i);
    }
    add(p, K_NORM, d, 0, "model.norm.weight", 0);
    if (!s->tied) add(p, K_LINEAR, s->vocab, d, "lm_head.weight", 0);
}

static int64_t numel(const tensor *t) { return t->cols ? t->rows * t->cols : t->rows; }

/* The outlier hidden channels: a fixed set of 8, chosen from the seed. */
#define N_OUTLIERS 8
typedef struct outliers {
    int64_t ch[N_OUTLIERS];
    float gain[N_OUTLIERS];
} outliers;

static void make_outliers(int64_t d, uint64_t seed, outliers *o) {
    rng r;
    rng_seed(&r, seed ^ 0x6f75746c69657273ull);
    for (int i = 0; i < N_OUTLIERS; i++) {
        o->ch[i] = (int64_t)(rng_next(&r) % (uint64_t)d);
        o->gain[i] = (float)(8.0 + 12.0 * rng_unit(&r));
    }
}

/* Fills out (n values of the tensor starting at element e0) as float. */
static void fill(const tensor *t, uint64_t seed, const outliers *o, int64_t e0, int64_t n, float *out) {
    rng r;
    rng_seed(&r, hash_str(t->name, 0xcbf29ce484222325ull ^ seed) + (uint64_t)(e0 / CHUNK));
    double sd = t->k == K_NORM ? 0.05 : 0.02, mean = t->k == K_NORM ? 1.0 : 0.0;
    for (int64_t i = 0; i < n; i += 2) {
        double u1 = rng_unit(&r), u2 = rng_unit(&r), rad = sqrt(-2.0 * log(u1));
        out[i] = (float)(mean + sd * rad * cos(TWO_PI * u2));
        if (i + 1 < n) out[i + 1] = (float)(mean + sd * rad * sin(TWO_PI * u2));
    }
    bool layer_norm = t->k == K_NORM && strncmp(t->name, "model.layers.", 13) == 0;
    for (int k = 0; k < N_OUTLIERS; k++) {
        if (layer_norm) {
            int64_t i = o->ch[k] - e0;
            if (i >= 0 && i < n) out[i] = o->gain[k];
        } else if (t->k == K_EMBED) {
            for (int64_t i = (e0 / t->cols) * t->cols + o->ch[k]; i < e0 + n; i += t->cols)
                if (i >= e0) out[i - e0] *= 4.0f;
        }
    }
}

/* ---- safetensors ------------------------------------------------------------------------------ */

typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (k < 0) {
            fprintf(stderr, "format error\n");
            exit(1);
        }
        if (b->p && b->len + (size_t)k < b->cap) {
            b->len += (size_t)k;
            return;
        }
        b->cap = (b->cap + (size_t)k + 1) * 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p) {
            fprintf(stderr, "out of memory\n");
            exit(1);
        }
    }
}

static int write_shard(const char *path, plan *p, int shard, int bf16, uint64_t seed, const outliers *o) {
    sbuf h = {0};
    sb_printf(&h, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; i < p->n; i++) {
        tensor *t = &p->t[i];
        if (t->shard != shard) continue;
        int64_t nb = numel(t) * 2;
        if (t->cols)
            sb_printf(&h,
                      ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%" PRId64 ",%" PRId64 "],"
                      "\"data_offsets\":[%" PRId64 ",%" PRId64 "]}",
                      t->name, bf16 ? "BF16" : "F16", t->rows, t->cols, t->off, t->off + nb);
        else
            sb_printf(&h,
                      ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%" PRId64 "],"
                      "\"data_offsets\":[%" PRId64 ",%" PRId64 "]}",
                      t->name, bf16 ? "BF16" : "F16", t->rows, t->off, t->off + nb);
    }
    sb_printf(&h, "}");
    while (h.len % 8) sb_printf(&h, " ");
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return 1;
    }
    uint64_t hl = h.len;
    unsigned char le[8];
    for (int i = 0; i < 8; i++) le[i] = (unsigned char)(hl >> (8 * i));
    int rc = fwrite(le, 1, 8, f) != 8 || fwrite(h.p, 1, h.len, f) != h.len;
    free(h.p);
    float *fb = malloc((size_t)CHUNK * 16 * sizeof *fb);
    uint16_t *hb = malloc((size_t)CHUNK * 16 * sizeof *hb);
    if (!fb || !hb) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (int i = 0; i < p->n && !rc; i++) {
        tensor *t = &p->t[i];
        if (t->shard != shard) continue;
        int64_t n = numel(t);
        /* 16 chunks at a time, in parallel; each chunk's numbers depend only on its index */
        for (int64_t b0 = 0; b0 < n && !rc; b0 += 16 * CHUNK) {
            int64_t nb = n - b0 < 16 * CHUNK ? n - b0 : 16 * CHUNK;
#pragma omp parallel for schedule(dynamic)
            for (int64_t c = 0; c < (nb + CHUNK - 1) / CHUNK; c++) {
                int64_t e0 = b0 + c * CHUNK, m = n - e0 < CHUNK ? n - e0 : CHUNK;
                float *x = fb + c * CHUNK;
                fill(t, seed, o, e0, m, x);
                uint16_t *y = hb + c * CHUNK;
                for (int64_t k = 0; k < m; k++) y[k] = bf16 ? f32_to_bf16(x[k]) : f32_to_f16(x[k]);
            }
            rc = fwrite(hb, 2, (size_t)nb, f) != (size_t)nb;
        }
    }
    free(fb);
    free(hb);
    if (fclose(f) || rc) {
        fprintf(stderr, "%s: write failed: %s\n", path, strerror(errno));
        return 1;
    }
    return 0;
}

/* ---- config.json and the tokenizer -------------------------------------------------------- */

static int write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f || fputs(text, f) < 0 || fclose(f)) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return 1;
    }
    return 0;
}

static int copy_file(const char *src, const char *dst) {
    FILE *a = fopen(src, "rb"), *b = a ? fopen(dst, "wb") : NULL;
    if (!a || !b) {
        fprintf(stderr, "%s: %s\n", a ? dst : src, strerror(errno));
        if (a) fclose(a);
        return 1;
    }
    char buf[1 << 16];
    size_t k;
    int rc = 0;
    while ((k = fread(buf, 1, sizeof buf, a)) > 0) rc |= fwrite(buf, 1, k, b) != k;
    fclose(a);
    return fclose(b) || rc;
}

/* bos/eos ids from the tokenizer's config.json, else SmolLM2's 1 / 2 */
static void tok_ids(const char *tok_dir, long *bos, long *eos) {
    *bos = 1;
    *eos = 2;
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", tok_dir);
    FILE *f = fopen(path, "rb");
    if (!f) return;
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *q = strstr(buf, "\"bos_token_id\":");
    if (q) *bos = strtol(q + 15, NULL, 10);
    q = strstr(buf, "\"eos_token_id\":");
    if (q) *eos = strtol(q + 15, NULL, 10);
}

static void make_config(sbuf *b, const shape *s, int bf16, long bos, long eos) {
    sb_printf(b,
              "{\n  \"architectures\": [\"LlamaForCausalLM\"],\n  \"model_type\": \"llama\",\n"
              "  \"_awq_note\": \"random weights in the shape of %s (bench/make_random_model.c)\",\n"
              "  \"hidden_size\": %" PRId64 ",\n  \"intermediate_size\": %" PRId64 ",\n"
              "  \"num_hidden_layers\": %" PRId64 ",\n  \"num_attention_heads\": %" PRId64 ",\n"
              "  \"num_key_value_heads\": %" PRId64 ",\n  \"head_dim\": %" PRId64 ",\n"
              "  \"max_position_embeddings\": %" PRId64 ",\n  \"rms_norm_eps\": 1e-05,\n"
              "  \"rope_theta\": %.1f,\n",
              s->name, s->d, s->ff, s->layers, s->heads, s->kv_heads, s->head_dim, s->max_pos, s->rope_theta);
    if (s->llama3_rope)
        sb_printf(b,
                  "  \"rope_scaling\": {\"factor\": 32.0, \"high_freq_factor\": 4.0, "
                  "\"low_freq_factor\": 1.0, \"original_max_position_embeddings\": 8192, "
                  "\"rope_type\": \"llama3\"},\n");
    else
        sb_printf(b, "  \"rope_scaling\": null,\n");
    sb_printf(b,
              "  \"vocab_size\": %" PRId64 ",\n  \"tie_word_embeddings\": %s,\n"
              "  \"attention_bias\": false,\n  \"mlp_bias\": false,\n  \"hidden_act\": \"silu\",\n"
              "  \"torch_dtype\": \"%s\",\n  \"bos_token_id\": %ld,\n  \"eos_token_id\": %ld\n}\n",
              s->vocab, s->tied ? "true" : "false", bf16 ? "bfloat16" : "float16", bos, eos);
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: awq-make-random-model [options] OUT_DIR\n"
            "  --shape S          llama-3.2-1b (default) | llama-3-8b | smollm2-135m\n"
            "  --dtype D          bf16 (default) | f16\n"
            "  --tokenizer DIR    where tokenizer.json / tokenizer_config.json are copied from\n"
            "                     (default: $AWQ_TEST_MODEL_DIR)\n"
            "  --seed N           (default 1)\n"
            "  --max-shard-gb G   shard size limit (default 5, as transformers)\n");
}

int main(int argc, char **argv) {
    const char *shape_name = "llama-3.2-1b", *dtype = "bf16", *tok = getenv("AWQ_TEST_MODEL_DIR"),
               *out = NULL;
    uint64_t seed = 1;
    double max_gb = 5.0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--shape") && v) {
            shape_name = v;
            i++;
        } else if (!strcmp(a, "--dtype") && v) {
            dtype = v;
            i++;
        } else if (!strcmp(a, "--tokenizer") && v) {
            tok = v;
            i++;
        } else if (!strcmp(a, "--seed") && v) {
            seed = strtoull(v, NULL, 10);
            i++;
        } else if (!strcmp(a, "--max-shard-gb") && v) {
            max_gb = atof(v);
            i++;
        } else if (a[0] != '-' && !out)
            out = a;
        else {
            usage(stderr);
            return 2;
        }
    }
    const shape *s = NULL;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        if (!strcmp(shapes[i].name, shape_name)) s = &shapes[i];
    int bf16 = !strcmp(dtype, "bf16");
    if (!out || !s || (!bf16 && strcmp(dtype, "f16")) || !tok || max_gb <= 0) {
        usage(stderr);
        return 2;
    }
    if (mkdir(out, 0755) && errno != EEXIST) {
        fprintf(stderr, "%s: %s\n", out, strerror(errno));
        return 1;
    }

    plan p = {0};
    make_plan(s, &p);
    int64_t limit = (int64_t)(max_gb * 1e9), total = 0, cur = 0;
    int n_shards = 1;
    for (int i = 0; i < p.n; i++) {
        int64_t nb = numel(&p.t[i]) * 2;
        if (cur > 0 && cur + nb > limit) {
            n_shards++;
            cur = 0;
        }
        p.t[i].shard = n_shards - 1;
        p.t[i].off = cur;
        cur += nb;
        total += nb;
    }
    outliers o;
    make_outliers(s->d, seed, &o);
    fprintf(stderr, "%s: %s, %d tensors, %.2f GB in %d file(s)\n", out, s->name, p.n, total / 1e9, n_shards);
    char path[4096];
    for (int k = 0; k < n_shards; k++) {
        if (n_shards == 1)
            snprintf(path, sizeof path, "%s/model.safetensors", out);
        else
            snprintf(path, sizeof path, "%s/model-%05d-of-%05d.safetensors", out, k + 1, n_shards);
        if (write_shard(path, &p, k, bf16, seed, &o)) return 1;
        fprintf(stderr, "  wrote %s\n", path);
    }
    if (n_shards > 1) {
        sbuf idx = {0};
        sb_printf(&idx, "{\n  \"metadata\": {\"total_size\": %" PRId64 "},\n  \"weight_map\": {", total);
        for (int i = 0; i < p.n; i++)
            sb_printf(&idx, "%s\n    \"%s\": \"model-%05d-of-%05d.safetensors\"", i ? "," : "", p.t[i].name,
                      p.t[i].shard + 1, n_shards);
        sb_printf(&idx, "\n  }\n}\n");
        snprintf(path, sizeof path, "%s/model.safetensors.index.json", out);
        if (write_text(path, idx.p)) return 1;
        free(idx.p);
    }
    long bos, eos;
    tok_ids(tok, &bos, &eos);
    sbuf cfg = {0};
    make_config(&cfg, s, bf16, bos, eos);
    snprintf(path, sizeof path, "%s/config.json", out);
    if (write_text(path, cfg.p)) return 1;
    free(cfg.p);
    const char *files[] = {"tokenizer.json", "tokenizer_config.json"};
    for (int i = 0; i < 2; i++) {
        char src[4096];
        snprintf(src, sizeof src, "%s/%s", tok, files[i]);
        snprintf(path, sizeof path, "%s/%s", out, files[i]);
        if (copy_file(src, path)) return 1;
    }
    free(p.t);
    return 0;
}
