/* attention.c - causal grouped-query attention with an online softmax (no scratch). */
#include "kcommon.h"
#include "../threadpool.h"

#define MAX_HEAD_DIM 1024

/* One (query, head) row with soft-capped scores cap * tanh(scale q.k / cap) (Gemma 2): plain
 * loops, the reference for every backend's capped attention. */
static void attn_row_softcap(const float *q, const char *kbase, int64_t kstride, const char *vbase,
                             int64_t vstride, int64_t lo, int64_t hi, int64_t hd, float scale, float cap,
                             float *out) {
    float m = -INFINITY, l = 0.0f;
    for (int64_t d = 0; d < hd; d++) out[d] = 0.0f;
    for (int64_t j = lo; j <= hi; j++) {
        const float *kv = (const float *)(kbase + j * kstride), *vv = (const float *)(vbase + j * vstride);
        float s = 0.0f;
        for (int64_t d = 0; d < hd; d++) s += q[d] * kv[d];
        s = cap * tanhf(s * scale / cap);
        if (s > m) {
            float c = expf(m - s); /* rescale what was accumulated so far */
            l *= c;
            for (int64_t d = 0; d < hd; d++) out[d] *= c;
            m = s;
        }
        float p = expf(s - m);
        l += p;
        for (int64_t d = 0; d < hd; d++) out[d] += p * vv[d];
    }
    float inv = 1.0f / l;
    for (int64_t d = 0; d < hd; d++) out[d] *= inv;
}

struct attn_job {
    const awq_tensor *q, *k, *v, *out;
    int64_t T, H, hd, group;
    int32_t n_past, window;
    float scale, cap;
};

/* (sequence, query, head) rows [lo, hi) in b-major, then t, then h order. */
static void attn_rows(void *arg, int64_t lo, int64_t hi) {
    const struct attn_job *j = arg;
    const awq_tensor *q = j->q, *k = j->k, *v = j->v, *out = j->out;
    const char *qb = (const char *)q->data + q->offs, *kb = (const char *)k->data + k->offs,
               *vb = (const char *)v->data + v->offs;
    char *ob = (char *)out->data + out->offs;
    for (int64_t idx = lo; idx < hi; idx++) {
        int64_t h = idx % j->H, t = idx / j->H % j->T, b = idx / (j->H * j->T);
        int64_t hi_ = j->n_past + t, lo_ = j->window > 0 && hi_ - j->window + 1 > 0 ? hi_ - j->window + 1 : 0;
        const float *qv = (const float *)(qb + b * q->nb[0] + t * q->nb[1] + h * q->nb[2]);
        int64_t hk = h / j->group;
        float *ov = (float *)(ob + b * out->nb[0] + t * out->nb[1] + h * out->nb[2]);
        if (j->cap > 0)
            attn_row_softcap(qv, kb + b * k->nb[0] + hk * k->nb[2], k->nb[1],
                             vb + b * v->nb[0] + hk * v->nb[2], v->nb[1], lo_, hi_, j->hd, j->scale, j->cap,
                             ov);
        else
            k_attn_row(qv, kb + b * k->nb[0] + hk * k->nb[2], k->nb[1], vb + b * v->nb[0] + hk * v->nb[2],
                       v->nb[1], lo_, hi_, j->hd, j->scale, ov);
    }
}

awq_status awq_cpu_attention(awq_backend_ctx *ctx, awq_tensor *out, const awq_tensor *q, const awq_tensor *k,
                             const awq_tensor *v, int32_t n_past, float scale, int32_t window) {
    return awq_cpu_attention_softcap(ctx, out, q, k, v, n_past, scale, window, 0.0f);
}

awq_status awq_cpu_attention_softcap(awq_backend_ctx *ctx, awq_tensor *out, const awq_tensor *q,
                                     const awq_tensor *k, const awq_tensor *v, int32_t n_past, float scale,
                                     int32_t window, float cap) {
    K_REQUIRE(ctx, cap >= 0, "attention: soft-cap must be >= 0");
    K_REQUIRE(ctx, q->ndim == 4 && k->ndim == 4 && v->ndim == 4 && out->ndim == 4,
              "attention: 4-D tensors (B, T, H, hd)");
    K_REQUIRE(ctx,
              q->type == AWQ_DTYPE_F32 && k->type == AWQ_DTYPE_F32 && v->type == AWQ_DTYPE_F32 &&
                  out->type == AWQ_DTYPE_F32,
              "attention: F32 tensors");
    int64_t B = q->ne[0], T = q->ne[1], H = q->ne[2], hd = q->ne[3], S = k->ne[1], Hkv = k->ne[2];
    K_REQUIRE(ctx,
              k->ne[0] == B && v->ne[0] == B && k->ne[3] == hd && v->ne[3] == hd && v->ne[1] == S &&
                  v->ne[2] == Hkv && Hkv > 0 && H % Hkv == 0 && S >= n_past + T && out->ne[0] == B &&
                  out->ne[1] == T && out->ne[2] == H && out->ne[3] == hd && hd <= MAX_HEAD_DIM,
              "attention: shape mismatch (q (%lld,%lld,%lld,%lld), k (%lld,%lld,%lld,%lld), n_past %d)",
              (long long)B, (long long)T, (long long)H, (long long)hd, (long long)k->ne[0], (long long)S,
              (long long)Hkv, (long long)k->ne[3], n_past);
    K_REQUIRE(ctx, q->nb[3] == 4 && k->nb[3] == 4 && v->nb[3] == 4 && out->nb[3] == 4,
              "attention: innermost dimension must be contiguous");
    int64_t group = H / Hkv;
    /* every (sequence, query, head) row is independent: decode (T = 1) still uses all threads */
    struct attn_job j = {q, k, v, out, T, H, hd, group, n_past, window, scale, cap};
    awq_tpool_for(ctx->pool, B * T * H, B * T * H > 64 ? 4 : 1, attn_rows, &j);
    return AWQ_OK;
}
