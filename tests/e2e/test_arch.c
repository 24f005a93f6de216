/*
 * test_arch.c - every supported architecture variant through the real loader and forward pass
 * (prefill with all logits, then token-by-token decode through the KV cache), compared with a
 * straightforward double-precision implementation written here from the Hugging Face modelling
 * code's definitions: Llama (tied and untied lm_head, GQA, llama3 rope scaling), Mistral
 * (sliding window), Qwen2 (q/k/v biases), Qwen3 (q_norm/k_norm, explicit head_dim).
 * Tiny random models; no files but the ones written here.
 */
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "awq_pack.h"
#include "config.h"
#include "json.h"
#include "safetensors.h"
#include "test.h"

enum { D = 48, FF = 80, V = 97, T = 24, MAXL = 2 };

typedef struct arch {
    const char *name, *model_type;
    int H, HKV, HD, L, window;
    bool tied, qkv_bias, qk_norm, llama3;
} arch;

static awq_runtime *rt;
static char root[128];

/* host copies of every weight, as the file stores them (fp16-rounded) */
typedef struct W {
    double *emb, *norm, *head;
    double *ln1[MAXL], *ln2[MAXL], *wq[MAXL], *wk[MAXL], *wv[MAXL], *wo[MAXL], *bq[MAXL], *bk[MAXL],
        *bv[MAXL], *qn[MAXL], *kn[MAXL], *wg[MAXL], *wu[MAXL], *wd[MAXL];
} W;

static unsigned long long rng = 4242;
static awq_st_writer *wr;

/* Makes a tensor: random (scale) or near-one (norms), fp16-rounded; records it for writing. */
typedef struct pend {
    char name[96];
    int64_t r, c;
    uint16_t *h;
} pend;
static pend pending[128];
static int npend;

static double *make(const char *name, int64_t r, int64_t c, double scale, bool norm) {
    int64_t n = r * (c ? c : 1);
    double *d = malloc((size_t)n * sizeof *d);
    uint16_t *h = malloc((size_t)n * 2);
    for (int64_t i = 0; i < n; i++) {
        float v = norm ? 1.0f + 0.2f * test_rng_uniform(&rng) : (float)scale * test_rng_normal(&rng);
        h[i] = awq_f32_to_f16(v);
        d[i] = awq_f16_to_f32(h[i]);
    }
    pend *p = &pending[npend++];
    snprintf(p->name, sizeof p->name, "%s", name);
    p->r = r;
    p->c = c;
    p->h = h;
    return d;
}

static int write_model(const arch *a, const char *dir, W *w) {
    mkdir(dir, 0755);
    npend = 0;
    char n[96];
    int qd = a->H * a->HD, kvd = a->HKV * a->HD;
    w->emb = make("model.embed_tokens.weight", V, D, 1.0, false);
    w->norm = make("model.norm.weight", D, 0, 0, true);
    w->head = a->tied ? w->emb : make("lm_head.weight", V, D, 0.2, false);
    for (int l = 0; l < a->L; l++) {
#define M(field, fmt, r, c, sc, nm) \
    snprintf(n, sizeof n, "model.layers.%d." fmt, l), w->field[l] = make(n, r, c, sc, nm)
        M(ln1, "input_layernorm.weight", D, 0, 0, true);
        M(ln2, "post_attention_layernorm.weight", D, 0, 0, true);
        M(wq, "self_attn.q_proj.weight", qd, D, 0.2, false);
        M(wk, "self_attn.k_proj.weight", kvd, D, 0.2, false);
        M(wv, "self_attn.v_proj.weight", kvd, D, 0.2, false);
        M(wo, "self_attn.o_proj.weight", D, qd, 0.2, false);
        M(wg, "mlp.gate_proj.weight", FF, D, 0.2, false);
        M(wu, "mlp.up_proj.weight", FF, D, 0.2, false);
        M(wd, "mlp.down_proj.weight", D, FF, 0.2, false);
        if (a->qkv_bias) {
            M(bq, "self_attn.q_proj.bias", qd, 0, 0.5, false);
            M(bk, "self_attn.k_proj.bias", kvd, 0, 0.5, false);
            M(bv, "self_attn.v_proj.bias", kvd, 0, 0.5, false);
        }
        if (a->qk_norm) {
            M(qn, "self_attn.q_norm.weight", a->HD, 0, 0, true);
            M(kn, "self_attn.k_norm.weight", a->HD, 0, 0, true);
        }
#undef M
    }
    if (awq_st_writer_create(rt, &wr, dir, 0, NULL)) return 1;
    for (int i = 0; i < npend; i++) {
        int64_t sh[2] = {pending[i].r, pending[i].c};
        if (awq_st_writer_add(wr, pending[i].name, AWQ_DTYPE_F16, pending[i].c ? 2 : 1, sh)) return 1;
    }
    if (awq_st_writer_begin(wr)) return 1;
    for (int i = 0; i < npend; i++) {
        uint64_t nb = (uint64_t)pending[i].r * (pending[i].c ? pending[i].c : 1) * 2;
        if (awq_st_writer_write(wr, pending[i].name, pending[i].h, nb)) return 1;
        free(pending[i].h);
    }
    if (awq_st_writer_finish(wr)) return 1;
    awq_st_writer_destroy(wr);
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "model_type", a->model_type);
    cJSON_AddNumberToObject(c, "num_hidden_layers", a->L);
    cJSON_AddNumberToObject(c, "hidden_size", D);
    cJSON_AddNumberToObject(c, "num_attention_heads", a->H);
    cJSON_AddNumberToObject(c, "num_key_value_heads", a->HKV);
    cJSON_AddNumberToObject(c, "head_dim", a->HD);
    cJSON_AddNumberToObject(c, "intermediate_size", FF);
    cJSON_AddNumberToObject(c, "vocab_size", V);
    cJSON_AddNumberToObject(c, "max_position_embeddings", 4096);
    cJSON_AddNumberToObject(c, "rms_norm_eps", 1e-5);
    cJSON_AddNumberToObject(c, "rope_theta", 500.0);
    cJSON_AddBoolToObject(c, "tie_word_embeddings", a->tied);
    if (a->window) {
        cJSON_AddNumberToObject(c, "sliding_window", a->window);
        cJSON_AddBoolToObject(c, "use_sliding_window", true);
    }
    if (a->llama3) {
        cJSON *rs = cJSON_AddObjectToObject(c, "rope_scaling");
        cJSON_AddStringToObject(rs, "rope_type", "llama3");
        cJSON_AddNumberToObject(rs, "factor", 8.0);
        cJSON_AddNumberToObject(rs, "low_freq_factor", 1.0);
        cJSON_AddNumberToObject(rs, "high_freq_factor", 4.0);
        cJSON_AddNumberToObject(rs, "original_max_position_embeddings", 64);
    }
    char path[256];
    snprintf(path, sizeof path, "%s/config.json", dir);
    int bad = awq_json_write_file(rt, path, c) != AWQ_OK;
    cJSON_Delete(c);
    return bad;
}

/* ---- the double-precision reference ------------------------------------------------------ */

static void rmsnorm(double *y, const double *x, const double *g, int n) {
    double ss = 0;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    double r = 1.0 / sqrt(ss / n + 1e-5);
    for (int i = 0; i < n; i++) y[i] = x[i] * r * g[i];
}
static void linear(double *y, const double *x, const double *w, const double *b, int out, int in) {
    for (int o = 0; o < out; o++) {
        double s = b ? b[o] : 0;
        for (int k = 0; k < in; k++) s += w[o * in + k] * x[k];
        y[o] = s;
    }
}

static double inv_freq(const arch *a, int i) {
    double f = pow(500.0, -2.0 * i / a->HD);
    if (!a->llama3) return f;
    double low = 64 / 1.0, high = 64 / 4.0, wl = 2 * M_PI / f;
    if (wl < high) return f;
    if (wl > low) return f / 8;
    double sm = (64 / wl - 1.0) / (4.0 - 1.0);
    return (1 - sm) * f / 8 + sm * f;
}
static void rope(const arch *a, double *v, int pos) { /* rotate-half */
    int h2 = a->HD / 2;
    for (int i = 0; i < h2; i++) {
        double th = pos * inv_freq(a, i), c = cos(th), s = sin(th), x0 = v[i], x1 = v[i + h2];
        v[i] = x0 * c - x1 * s;
        v[i + h2] = x1 * c + x0 * s;
    }
}

static void reference(const arch *a, const W *w, const int *ids, double *logits /* (T, V) */) {
    int qd = a->H * a->HD, kvd = a->HKV * a->HD;
    static double x[T][256], h[256], q[T][256], k[T][256], v[T][256], att[256], tmp[256], g[256], u[256];
    for (int t = 0; t < T; t++)
        for (int i = 0; i < D; i++) x[t][i] = w->emb[ids[t] * D + i];
    for (int l = 0; l < a->L; l++) {
        for (int t = 0; t < T; t++) {
            rmsnorm(h, x[t], w->ln1[l], D);
            linear(q[t], h, w->wq[l], a->qkv_bias ? w->bq[l] : NULL, qd, D);
            linear(k[t], h, w->wk[l], a->qkv_bias ? w->bk[l] : NULL, kvd, D);
            linear(v[t], h, w->wv[l], a->qkv_bias ? w->bv[l] : NULL, kvd, D);
            for (int hh = 0; hh < a->H; hh++) {
                if (a->qk_norm) {
                    rmsnorm(tmp, q[t] + hh * a->HD, w->qn[l], a->HD);
                    memcpy(q[t] + hh * a->HD, tmp, sizeof(double) * a->HD);
                }
                rope(a, q[t] + hh * a->HD, t);
            }
            for (int hh = 0; hh < a->HKV; hh++) {
                if (a->qk_norm) {
                    rmsnorm(tmp, k[t] + hh * a->HD, w->kn[l], a->HD);
                    memcpy(k[t] + hh * a->HD, tmp, sizeof(double) * a->HD);
                }
                rope(a, k[t] + hh * a->HD, t);
            }
        }
        for (int t = 0; t < T; t++) {
            for (int hh = 0; hh < a->H; hh++) {
                int kh = hh / (a->H / a->HKV),
                    lo = a->window ? (t - a->window + 1 > 0 ? t - a->window + 1 : 0) : 0;
                double sc[T], mx = -1e300, sum = 0;
                for (int j = lo; j <= t; j++) {
                    double s = 0;
                    for (int d = 0; d < a->HD; d++) s += q[t][hh * a->HD + d] * k[j][kh * a->HD + d];
                    sc[j] = s / sqrt(a->HD);
                    mx = sc[j] > mx ? sc[j] : mx;
                }
                for (int j = lo; j <= t; j++) sum += (sc[j] = exp(sc[j] - mx));
                for (int d = 0; d < a->HD; d++) {
                    double o = 0;
                    for (int j = lo; j <= t; j++) o += sc[j] / sum * v[j][kh * a->HD + d];
                    att[hh * a->HD + d] = o;
                }
            }
            linear(tmp, att, w->wo[l], NULL, D, qd);
            for (int i = 0; i < D; i++) x[t][i] += tmp[i];
        }
        for (int t = 0; t < T; t++) {
            rmsnorm(h, x[t], w->ln2[l], D);
            linear(g, h, w->wg[l], NULL, FF, D);
            linear(u, h, w->wu[l], NULL, FF, D);
            for (int i = 0; i < FF; i++) g[i] = g[i] / (1 + exp(-g[i])) * u[i];
            linear(tmp, g, w->wd[l], NULL, D, FF);
            for (int i = 0; i < D; i++) x[t][i] += tmp[i];
        }
    }
    for (int t = 0; t < T; t++) {
        rmsnorm(h, x[t], w->norm, D);
        linear(logits + t * V, h, w->head, NULL, V, D);
    }
}

static void free_w(W *w) {
    if (w->head != w->emb) free(w->head);
    free(w->emb);
    free(w->norm);
    for (int l = 0; l < MAXL; l++) {
        double *p[] = {w->ln1[l], w->ln2[l], w->wq[l], w->wk[l], w->wv[l], w->wo[l], w->bq[l],
                       w->bk[l],  w->bv[l],  w->qn[l], w->kn[l], w->wg[l], w->wu[l], w->wd[l]};
        for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) free(p[i]);
    }
    memset(w, 0, sizeof *w);
}

static bool check_arch(const arch *a) {
    char dir[256];
    snprintf(dir, sizeof dir, "%s/%s", root, a->name);
    W w;
    memset(&w, 0, sizeof w);
    if (write_model(a, dir, &w)) {
        printf("  cannot write %s: %s\n", dir, awq_runtime_last_error(rt));
        free_w(&w);
        return false;
    }
    int ids[T];
    for (int t = 0; t < T; t++) ids[t] = (int)(test_rng_next(&rng) % V);
    static double ref[T * V];
    reference(a, &w, ids, ref);
    awq_model *m = NULL;
    awq_model_params mp = awq_model_params_default();
    mp.device = "cpu";
    if (awq_model_load(&m, rt, dir, &mp) != AWQ_OK) {
        printf("  load: %s\n", awq_runtime_last_error(rt));
        free_w(&w);
        return false;
    }
    awq_session *s = NULL;
    static float got[T * V], step[V];
    bool ok = awq_session_create(&s, m, T) == AWQ_OK && awq_session_eval(s, ids, T, got, true) == AWQ_OK;
    double maxd = 0, maxr = 0;
    for (int i = 0; ok && i < T * V; i++) {
        double d = fabs(got[i] - ref[i]);
        maxd = d > maxd ? d : maxd;
        maxr = fabs(ref[i]) > maxr ? fabs(ref[i]) : maxr;
    }
    /* decode path: token by token through the cache must give the same last logits */
    awq_session_reset(s);
    double maxs = 0;
    for (int t = 0; ok && t < T; t++) {
        ok = awq_session_eval(s, &ids[t], 1, step, false) == AWQ_OK;
        for (int j = 0; ok && j < V; j++) {
            double d = fabs(step[j] - ref[t * V + j]);
            maxs = d > maxs ? d : maxs;
        }
    }
    printf("  %-14s prefill max |diff| %.2e, decode max |diff| %.2e (logit scale %.2f)\n", a->name, maxd,
           maxs, maxr);
    awq_session_destroy(s);
    awq_model_destroy(m);
    free_w(&w);
    return ok && maxd < 1e-3 * (1 + maxr) && maxs < 1e-3 * (1 + maxr);
}

TEST(architectures_match_reference) {
    const arch archs[] = {
        {"llama-tied", "llama", 4, 2, 12, 2, 0, true, false, false, false},
        {"llama-untied", "llama", 4, 4, 12, 1, 0, false, false, false, false},
        {"llama3-rope", "llama", 4, 1, 12, 1, 0, true, false, false, true},
        {"mistral-window", "mistral", 4, 2, 12, 2, 5, false, false, false, false},
        {"qwen2-bias", "qwen2", 4, 2, 12, 2, 0, true, true, false, false},
        {"qwen3-qknorm", "qwen3", 4, 2, 16, 2, 0, true, false, true, false},
    };
    for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++)
        ASSERT_MSG(check_arch(&archs[i]), "%s", archs[i].name);
}

int main(void) {
    if (test_tmpdir(root, sizeof root, "test-arch")) return 1;
    awq_runtime_params p = awq_runtime_params_default();
    p.load_plugins = false;
    if (awq_runtime_create(&rt, &p) != AWQ_OK) return 1;
    RUN(architectures_match_reference);
    awq_runtime_destroy(rt);
    if (test_rmtree(root)) return 1;
    return TEST_EXIT();
}
