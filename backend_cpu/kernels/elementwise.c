/* elementwise.c - rmsnorm, rope, silu_mul, binop, get_rows, convert. */
#include "kcommon.h"

awq_status awq_cpu_rmsnorm(awq_backend_ctx *ctx, awq_tensor *y, const awq_tensor *x, const awq_tensor *gamma,
                           float eps) {
    int64_t n = awq_tensor_rows(x), d = awq_tensor_cols(x);
    K_REQUIRE(ctx, x->type == AWQ_DTYPE_F32 && y->type == AWQ_DTYPE_F32 && k_is_float(gamma->type),
              "rmsnorm: x, y F32; gamma float");
    K_REQUIRE(ctx, awq_tensor_rows(y) == n && awq_tensor_cols(y) == d && awq_tensor_nelem(gamma) == d,
              "rmsnorm: shape mismatch");
    K_REQUIRE(ctx, awq_tensor_is_rowwise(x) && awq_tensor_is_rowwise(y), "rmsnorm: rowwise tensors");
    const char *g = (const char *)gamma->data + gamma->offs;
#pragma omp parallel for num_threads(ctx->n_threads) if (n > 4)
    for (int64_t i = 0; i < n; i++) {
        const float *xi = (const float *)k_row(x, i);
        float *yi = (float *)k_row(y, i);
        double ss = 0;
        for (int64_t j = 0; j < d; j++) ss += (double)xi[j] * xi[j];
        float r = (float)(1.0 / sqrt(ss / (double)d + eps));
        for (int64_t j = 0; j < d; j++) yi[j] = xi[j] * r * k_load(g, gamma->type, j);
    }
    return AWQ_OK;
}

awq_status awq_cpu_rope(awq_backend_ctx *ctx, awq_tensor *x, const awq_tensor *pos,
                        const awq_tensor *inv_freq, float attn_factor) {
    K_REQUIRE(ctx,
              x->type == AWQ_DTYPE_F32 && x->ndim == 3 && x->nb[2] == 4 && pos->type == AWQ_DTYPE_I32 &&
                  inv_freq->type == AWQ_DTYPE_F32,
              "rope: x (n_tok, n_heads, head_dim) F32, pos I32, inv_freq F32");
    int64_t nt = x->ne[0], nh = x->ne[1], hd = x->ne[2], half = hd / 2;
    K_REQUIRE(ctx, hd % 2 == 0 && awq_tensor_nelem(pos) == nt && awq_tensor_nelem(inv_freq) == half,
              "rope: shape mismatch");
    const int32_t *p = (const int32_t *)((const char *)pos->data + pos->offs);
    const float *inv = (const float *)((const char *)inv_freq->data + inv_freq->offs);
#pragma omp parallel for num_threads(ctx->n_threads) if (nt > 4)
    for (int64_t t = 0; t < nt; t++) {
        for (int64_t i = 0; i < half; i++) {
            float th = (float)p[t] * inv[i];
            float c = cosf(th) * attn_factor, s = sinf(th) * attn_factor;
            for (int64_t h = 0; h < nh; h++) {
                float *v = (float *)((char *)x->data + x->offs + t * x->nb[0] + h * x->nb[1]);
                float a = v[i], b = v[i + half];
                v[i] = a * c - b * s;
                v[i + half] = b * c + a * s;
            }
        }
    }
    return AWQ_OK;
}

awq_status awq_cpu_silu_mul(awq_backend_ctx *ctx, awq_tensor *y, const awq_tensor *gate,
                            const awq_tensor *up) {
    int64_t n = awq_tensor_rows(gate), d = awq_tensor_cols(gate);
    K_REQUIRE(ctx, y->type == AWQ_DTYPE_F32 && gate->type == AWQ_DTYPE_F32 && up->type == AWQ_DTYPE_F32,
              "silu_mul: F32 tensors");
    K_REQUIRE(ctx,
              awq_tensor_rows(up) == n && awq_tensor_cols(up) == d && awq_tensor_rows(y) == n &&
                  awq_tensor_cols(y) == d && awq_tensor_is_rowwise(y) && awq_tensor_is_rowwise(gate) &&
                  awq_tensor_is_rowwise(up),
              "silu_mul: shape mismatch");
#pragma omp parallel for num_threads(ctx->n_threads) if (n > 4)
    for (int64_t i = 0; i < n; i++) {
        const float *g = (const float *)k_row(gate, i), *u = (const float *)k_row(up, i);
        float *yi = (float *)k_row(y, i);
        for (int64_t j = 0; j < d; j++) yi[j] = g[j] / (1.0f + expf(-g[j])) * u[j];
    }
    return AWQ_OK;
}

/* Gemma's gelu_pytorch_tanh, in float as transformers evaluates it. */
static inline float k_gelu_tanh(float g) {
    const float c = 0.7978845608028654f; /* sqrt(2 / pi) */
    return 0.5f * g * (1.0f + tanhf(c * (g + 0.044715f * g * g * g)));
}

awq_status awq_cpu_act_mul(awq_backend_ctx *ctx, awq_tensor *y, const awq_tensor *gate, const awq_tensor *up,
                           awq_act act) {
    K_REQUIRE(ctx, act == AWQ_ACT_SILU || act == AWQ_ACT_GELU_TANH, "act_mul: unknown activation %d",
              (int)act);
    if (act == AWQ_ACT_SILU) return awq_cpu_silu_mul(ctx, y, gate, up);
    int64_t n = awq_tensor_rows(gate), d = awq_tensor_cols(gate);
    K_REQUIRE(ctx, y->type == AWQ_DTYPE_F32 && gate->type == AWQ_DTYPE_F32 && up->type == AWQ_DTYPE_F32,
              "act_mul: F32 tensors");
    K_REQUIRE(ctx,
              awq_tensor_rows(up) == n && awq_tensor_cols(up) == d && awq_tensor_rows(y) == n &&
                  awq_tensor_cols(y) == d && awq_tensor_is_rowwise(y) && awq_tensor_is_rowwise(gate) &&
                  awq_tensor_is_rowwise(up),
              "act_mul: shape mismatch");
#pragma omp parallel for num_threads(ctx->n_threads) if (n > 4)
    for (int64_t i = 0; i < n; i++) {
        const float *g = (const float *)k_row(gate, i), *u = (const float *)k_row(up, i);
        float *yi = (float *)k_row(y, i);
        for (int64_t j = 0; j < d; j++) yi[j] = k_gelu_tanh(g[j]) * u[j];
    }
    return AWQ_OK;
}

awq_status awq_cpu_softcap(awq_backend_ctx *ctx, awq_tensor *x, float cap) {
    K_REQUIRE(ctx, x->type == AWQ_DTYPE_F32 && awq_tensor_is_rowwise(x), "softcap: rowwise F32");
    K_REQUIRE(ctx, cap > 0, "softcap: cap must be > 0");
    int64_t n = awq_tensor_rows(x), d = awq_tensor_cols(x);
    float inv = 1.0f / cap;
#pragma omp parallel for num_threads(ctx->n_threads) if (n > 4)
    for (int64_t i = 0; i < n; i++) {
        float *xi = (float *)k_row(x, i);
        for (int64_t j = 0; j < d; j++) xi[j] = cap * tanhf(xi[j] * inv);
    }
    return AWQ_OK;
}

awq_status awq_cpu_binop(awq_backend_ctx *ctx, awq_tensor *y, const awq_tensor *a, const awq_tensor *b,
                         awq_binop op) {
    int64_t n = awq_tensor_rows(a), d = awq_tensor_cols(a);
    K_REQUIRE(ctx, y->type == AWQ_DTYPE_F32 && a->type == AWQ_DTYPE_F32 && k_is_float(b->type),
              "binop: y, a F32; b float");
    bool bcast = awq_tensor_nelem(b) == d && awq_tensor_rows(b) == 1;
    K_REQUIRE(ctx,
              awq_tensor_cols(b) == d && (bcast || awq_tensor_rows(b) == n) && awq_tensor_rows(y) == n &&
                  awq_tensor_cols(y) == d,
              "binop: b must be (n, d) or (1, d)/(d,) with a (n, d)");
    K_REQUIRE(ctx, awq_tensor_is_rowwise(y) && awq_tensor_is_rowwise(a) && awq_tensor_is_rowwise(b),
              "binop: rowwise tensors");
#pragma omp parallel for num_threads(ctx->n_threads) if (n > 4)
    for (int64_t i = 0; i < n; i++) {
        const float *ai = (const float *)k_row(a, i);
        const char *bi = k_row(b, bcast ? 0 : i);
        float *yi = (float *)k_row(y, i);
        for (int64_t j = 0; j < d; j++) {
            float bv = k_load(bi, b->type, j);
            switch (op) {
            case AWQ_BINOP_ADD: yi[j] = ai[j] + bv; break;
            case AWQ_BINOP_SUB: yi[j] = ai[j] - bv; break;
            case AWQ_BINOP_MUL: yi[j] = ai[j] * bv; break;
            default: yi[j] = ai[j] / bv; break;
            }
        }
    }
    return AWQ_OK;
}

awq_status awq_cpu_get_rows(awq_backend_ctx *ctx, awq_tensor *y, const awq_tensor *table,
                            const awq_tensor *ids) {
    int64_t n = awq_tensor_nelem(ids), V = awq_tensor_rows(table), d = awq_tensor_cols(table);
    K_REQUIRE(ctx, ids->type == AWQ_DTYPE_I32 && k_is_float(table->type) && y->type == AWQ_DTYPE_F32,
              "get_rows: ids I32, table float, y F32");
    K_REQUIRE(ctx,
              awq_tensor_rows(y) == n && awq_tensor_cols(y) == d && awq_tensor_is_rowwise(y) &&
                  awq_tensor_is_rowwise(table),
              "get_rows: shape mismatch");
    const int32_t *id = (const int32_t *)((const char *)ids->data + ids->offs);
    for (int64_t i = 0; i < n; i++)
        K_REQUIRE(ctx, id[i] >= 0 && id[i] < V, "get_rows: id %d at %lld out of range [0, %lld)", id[i],
                  (long long)i, (long long)V);
#pragma omp parallel for num_threads(ctx->n_threads) if (n > 16)
    for (int64_t i = 0; i < n; i++) k_row_to_f32((float *)k_row(y, i), k_row(table, id[i]), table->type, d);
    return AWQ_OK;
}

awq_status awq_cpu_convert(awq_backend_ctx *ctx, awq_tensor *y, const awq_tensor *x) {
    int64_t n = awq_tensor_rows(x), d = awq_tensor_cols(x);
    K_REQUIRE(ctx, k_is_float(x->type) && k_is_float(y->type), "convert: float dtypes only");
    K_REQUIRE(ctx, awq_tensor_rows(y) == n && awq_tensor_cols(y) == d, "convert: shape mismatch");
    K_REQUIRE(ctx, awq_tensor_is_rowwise(x) && awq_tensor_is_rowwise(y), "convert: rowwise tensors");
#pragma omp parallel for num_threads(ctx->n_threads) if (n > 64)
    for (int64_t i = 0; i < n; i++) {
        const char *xi = k_row(x, i);
        char *yi = k_row(y, i);
        if (x->type == y->type) {
            memmove(yi, xi, (size_t)d * awq_dtype_size_inline(x->type));
        } else {
            for (int64_t j = 0; j < d; j++) k_store(yi, y->type, j, k_load(xi, x->type, j));
        }
    }
    return AWQ_OK;
}
