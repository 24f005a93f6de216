/* quant_ops.c - optional search ops with a cpu fallback. */
#include <string.h>

#include "quant_ops.h"


static awq_status cpu_ctx(awq_search *S, awq_backend_ctx **out) {
    if (!S->cpu_ctx) {
        awq_backend_config cfg = awq_runtime_backend_config(S->rt, 0);
        TRY(awq_backend_cpu_ops()->create(0, &cfg, &S->cpu_ctx));
    }
    *out = S->cpu_ctx;
    return AWQ_OK;
}

void awq_qop_release(awq_search *S) {
    if (S->cpu_ctx) awq_backend_cpu_ops()->destroy(S->cpu_ctx);
    S->cpu_ctx = NULL;
}

/* Copies a device tensor (rowwise, F32) into a new contiguous host tensor. */
static awq_status to_host(awq_search *S, const awq_tensor *t, awq_tensor *h) {
    int64_t rows = awq_tensor_rows(t), cols = awq_tensor_cols(t);
    float *buf = awq_malloc((size_t)(rows * cols) * sizeof(float));
    if (!buf) return awq_set_error(S->rt, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
    int64_t stride = awq_tensor_row_stride(t);
    awq_status st = AWQ_OK;
    if (stride == cols * 4) {
        st = S->dev->ops->download(S->dev->ctx, buf, t->data, t->offs, (size_t)(rows * cols) * 4);
    } else {
        for (int64_t r = 0; r < rows && st == AWQ_OK; r++)
            st = S->dev->ops->download(S->dev->ctx, buf + r * cols, t->data, t->offs + (size_t)(r * stride),
                                       (size_t)cols * 4);
    }
    if (st != AWQ_OK) {
        awq_free(buf);
        return st;
    }
    *h = awq_tensor_2d(AWQ_DTYPE_F32, buf, 0, rows, cols);
    return AWQ_OK;
}

awq_status awq_qop_reduce(awq_search *S, float *out, const awq_tensor *x, awq_reduce_op op, int32_t group) {
    int64_t C = awq_tensor_cols(x);
    if (S->dev->can.reduce[op]) {
        awq_buflist tmp = {0};
        awq_tensor y;
        awq_status st = awq_tensor_alloc(S->rt, S->dev, &tmp, AWQ_DTYPE_F32, 1, &C, &y);
        if (st == AWQ_OK) st = S->dev->ops->reduce(S->dev->ctx, &y, x, op, group);
        if (st == AWQ_OK) st = S->dev->ops->download(S->dev->ctx, out, y.data, y.offs, (size_t)C * 4);
        awq_buflist_free(S->dev, &tmp);
        return st;
    }
    awq_backend_ctx *cc;
    awq_tensor h;
    TRY(cpu_ctx(S, &cc));
    TRY(to_host(S, x, &h));
    awq_tensor y = awq_tensor_1d(AWQ_DTYPE_F32, out, 0, C);
    awq_status st = awq_backend_cpu_ops()->reduce(cc, &y, &h, op, group);
    awq_free(h.data);
    return st;
}

awq_status awq_qop_scalar(awq_search *S, double *out, const awq_tensor *a, const awq_tensor *b,
                          awq_scalar_op op) {
    if (S->dev->can.scalar[op]) return S->dev->ops->scalar(S->dev->ctx, out, a, b, op);
    awq_backend_ctx *cc;
    awq_tensor ha, hb;
    TRY(cpu_ctx(S, &cc));
    TRY(to_host(S, a, &ha));
    awq_status st = to_host(S, b, &hb);
    if (st == AWQ_OK) {
        st = awq_backend_cpu_ops()->scalar(cc, out, &ha, &hb, op);
        awq_free(hb.data);
    }
    awq_free(ha.data);
    return st;
}

awq_status awq_qop_gram(awq_search *S, awq_tensor *g, const awq_tensor *x) {
    if (S->dev->can.gram) return S->dev->ops->gram(S->dev->ctx, g, x, false);
    awq_backend_ctx *cc;
    awq_tensor hx;
    TRY(cpu_ctx(S, &cc));
    TRY(to_host(S, x, &hx));
    int64_t C = awq_tensor_cols(x);
    float *hg = awq_malloc((size_t)(C * C) * 4);
    awq_status st = hg ? AWQ_OK : awq_set_error(S->rt, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
    if (st == AWQ_OK) {
        awq_tensor tg = awq_tensor_2d(AWQ_DTYPE_F32, hg, 0, C, C);
        st = awq_backend_cpu_ops()->gram(cc, &tg, &hx, false);
    }
    if (st == AWQ_OK) st = S->dev->ops->upload(S->dev->ctx, g->data, g->offs, hg, (size_t)(C * C) * 4);
    awq_free(hg);
    awq_free(hx.data);
    return st;
}

awq_status awq_qop_clip_search(awq_search *S, awq_tensor *best, const awq_tensor *w, const awq_tensor *x,
                               int32_t n_grid, int32_t n_steps) {
    if (S->dev->can.clip_search)
        return S->dev->ops->clip_search(S->dev->ctx, best, w, x, &S->qd, n_grid, n_steps);
    awq_backend_ctx *cc;
    awq_tensor hw, hx;
    TRY(cpu_ctx(S, &cc));
    TRY(to_host(S, w, &hw));
    awq_status st = to_host(S, x, &hx);
    if (st != AWQ_OK) {
        awq_free(hw.data);
        return st;
    }
    int64_t O = awq_tensor_rows(best), G = awq_tensor_cols(best);
    float *hb = awq_malloc((size_t)(O * G) * 4);
    st = hb ? AWQ_OK : awq_set_error(S->rt, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
    if (st == AWQ_OK) {
        awq_tensor tb = awq_tensor_2d(AWQ_DTYPE_F32, hb, 0, O, G);
        st = awq_backend_cpu_ops()->clip_search(cc, &tb, &hw, &hx, &S->qd, n_grid, n_steps);
    }
    if (st == AWQ_OK) st = S->dev->ops->upload(S->dev->ctx, best->data, best->offs, hb, (size_t)(O * G) * 4);
    awq_free(hb);
    awq_free(hw.data);
    awq_free(hx.data);
    return st;
}
