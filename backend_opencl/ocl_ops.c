/*
 * ocl_ops.c - the ops of the OpenCL backend: argument checks (the same contracts as the cpu
 * reference, awq_backend.h) and kernel launches. Tensors' data are cl_mem handles; offsets and
 * row strides are passed to the kernels in elements (or bytes for dtype-generic arguments).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ocl_internal.h"

#ifdef AWQ_HAVE_CLBLAST
#include <clblast_c.h>
#endif

#define REQUIRE(c, cond, ...)                                                           \
    do {                                                                                \
        if (!(cond)) return ocl_fail((c), AWQ_ERR_UNSUPPORTED, "opencl: " __VA_ARGS__); \
    } while (0)
#define TRY(x)                         \
    do {                               \
        awq_status st_ = (x);          \
        if (st_ != AWQ_OK) return st_; \
    } while (0)
#define LAUNCH(c, kid, dims, g, l, ...)                                                         \
    do {                                                                                        \
        const ocl_arg args_[] = {__VA_ARGS__};                                                  \
        return ocl_launch((c), (kid), (dims), (g), (l), sizeof args_ / sizeof args_[0], args_); \
    } while (0)

/* Work-groups of the blocked kernels (CPU-class devices run a work-group as a loop on one core,
 * keeping every item's private arrays on that thread's stack): 16 items for the GEMMs, whose
 * private state is small, and single items for attention_row and clip_search_row, which hold
 * a head row or the 16 candidates of a group (up to 8 KiB) each. Left to the runtime, PoCL
 * picks work-groups of thousands of items and overflows its stacks. */
#define BLK_LX 16

static bool is_float(awq_dtype t) { return t == AWQ_DTYPE_F32 || t == AWQ_DTYPE_F16 || t == AWQ_DTYPE_BF16; }
static int64_t esize(const awq_tensor *t) { return (int64_t)awq_dtype_size_inline(t->type); }

/* Rowwise, element-aligned offset and stride, sizes that fit the kernels' int. */
static bool usable(const awq_tensor *t) {
    int64_t es = esize(t);
    return es > 0 && t->data && awq_tensor_is_rowwise(t) && t->offs % (size_t)es == 0 &&
        awq_tensor_row_stride(t) % es == 0 && awq_tensor_rows(t) < INT32_MAX &&
        awq_tensor_cols(t) < INT32_MAX;
}
static cl_ulong eoff(const awq_tensor *t) { return (cl_ulong)(t->offs / (size_t)esize(t)); }
static cl_ulong boff(const awq_tensor *t) { return (cl_ulong)t->offs; }
static cl_long ld(const awq_tensor *t) { return (cl_long)(awq_tensor_row_stride(t) / esize(t)); }
static cl_mem mem(const awq_tensor *t) { return (cl_mem)t->data; }

/* ---- matmul ------------------------------------------------------------------------------ */

#ifdef AWQ_HAVE_CLBLAST
/* y = x W^T with CLBlast's tuned SGEMM (F32 weights, large batches); bias added afterwards. */
static awq_status clblast_matmul(awq_backend_ctx *c, awq_tensor *y, const awq_tensor *x, const awq_tensor *w,
                                 const awq_tensor *bias) {
    int64_t n = awq_tensor_rows(x), in = awq_tensor_cols(x), out = awq_tensor_rows(w);
    CLBlastStatusCode s =
        CLBlastSgemm(CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeYes, (size_t)n, (size_t)out,
                     (size_t)in, 1.0f, mem(x), eoff(x), (size_t)ld(x), mem(w), eoff(w), (size_t)ld(w), 0.0f,
                     mem(y), eoff(y), (size_t)ld(y), &c->queue, NULL);
    if (s != CLBlastSuccess)
        return ocl_fail(c,
                        s == CLBlastOpenCLOutOfResources || s == -4 /* CL_MEM_OBJECT_ALLOCATION_FAILURE */
                            ? AWQ_ERR_DEVICE_MEMORY
                            : AWQ_ERR_BACKEND,
                        "opencl: CLBlastSgemm(%lld x %lld x %lld) failed: CLBlast status %d%s%s",
                        (long long)n, (long long)out, (long long)in, (int)s, s < 0 && s > -70 ? " = " : "",
                        s < 0 && s > -70 ? ocl_err_name((cl_int)s) : "");
    if (bias) TRY(ocl_binop(c, y, y, bias, AWQ_BINOP_ADD));
    return AWQ_OK;
}
#endif

awq_status ocl_matmul(awq_backend_ctx *c, awq_tensor *y, const awq_tensor *x, const awq_tensor *w,
                      const awq_tensor *bias) {
    int64_t n = awq_tensor_rows(x), in = awq_tensor_cols(x), out = awq_tensor_rows(w);
    if (bias && !bias->data) bias = NULL;
    REQUIRE(c, x->type == AWQ_DTYPE_F32 && y->type == AWQ_DTYPE_F32 && is_float(w->type),
            "matmul: x, y F32 and w F32/F16/BF16");
    REQUIRE(c, awq_tensor_cols(w) == in && awq_tensor_rows(y) == n && awq_tensor_cols(y) == out,
            "matmul: shape mismatch (x %lld x %lld, w %lld x %lld, y %lld x %lld)", (long long)n,
            (long long)in, (long long)out, (long long)awq_tensor_cols(w), (long long)awq_tensor_rows(y),
            (long long)awq_tensor_cols(y));
    REQUIRE(c, usable(x) && usable(y) && usable(w), "matmul: tensors must be rowwise and element-aligned");
    REQUIRE(c, !bias || (is_float(bias->type) && awq_tensor_nelem(bias) == out && usable(bias)),
            "matmul: bias (out,) float");
#ifdef AWQ_HAVE_CLBLAST
    if (c->use_clblast && w->type == AWQ_DTYPE_F32 && n >= 64) return clblast_matmul(c, y, x, w, bias);
#endif
    cl_int cn = (cl_int)n, cin = (cl_int)in, cout = (cl_int)out, wdt = (cl_int)w->type;
    cl_int bdt = bias ? (cl_int)bias->type : 0, has_b = bias != NULL;
    cl_mem xm = mem(x), wm = mem(w), ym = mem(y), bm = bias ? mem(bias) : c->partial;
    cl_ulong xo = eoff(x), wo = boff(w), yo = eoff(y), bo = bias ? boff(bias) : 0;
    cl_long ldx = ld(x), ldw = ld(w), ldy = ld(y);
    if (c->blocked) {
        size_t l[2] = {BLK_LX, 1}, g[2] = {((size_t)out + 3) / 4, ((size_t)n + 3) / 4};
        LAUNCH(c, K_gemm_blk, 2, g, l, OA(cn), OA(cin), OA(cout), OA(xm), OA(xo), OA(ldx), OA(wm), OA(wo),
               OA(ldw), OA(wdt), OA(bm), OA(bo), OA(bdt), OA(has_b), OA(ym), OA(yo), OA(ldy));
    }
    if (n <= OCL_GEMV_MAX_ROWS) {
        size_t l[2] = {32, (size_t)c->ls / 32}, g[2] = {32, (size_t)out};
        LAUNCH(c, K_gemv_dense, 2, g, l, OA(cn), OA(cin), OA(cout), OA(xm), OA(xo), OA(ldx), OA(wm), OA(wo),
               OA(ldw), OA(wdt), OA(bm), OA(bo), OA(bdt), OA(has_b), OA(ym), OA(yo), OA(ldy));
    }
    size_t l[2] = {(size_t)c->ts, (size_t)(c->ts / c->rt)};
    size_t g[2] = {((size_t)out + c->ts - 1) / c->ts * l[0], ((size_t)n + c->ts - 1) / c->ts * l[1]};
    LAUNCH(c, K_gemm_dense, 2, g, l, OA(cn), OA(cin), OA(cout), OA(xm), OA(xo), OA(ldx), OA(wm), OA(wo),
           OA(ldw), OA(wdt), OA(bm), OA(bo), OA(bdt), OA(has_b), OA(ym), OA(yo), OA(ldy));
}

awq_status ocl_matmul_w4a16(awq_backend_ctx *c, awq_tensor *y, const awq_tensor *x, const awq_qlinear *w) {
    int64_t in = w->in, out = w->out, n = awq_tensor_rows(x);
    REQUIRE(c, x->type == AWQ_DTYPE_F32 && y->type == AWQ_DTYPE_F32, "matmul_w4a16: x and y must be F32");
    REQUIRE(c, out % 8 == 0 && w->group_size > 0 && in % w->group_size == 0,
            "matmul_w4a16: out %% 8 and in %% group_size must be 0");
    REQUIRE(c, awq_tensor_cols(x) == in && awq_tensor_cols(y) == out && awq_tensor_rows(y) == n,
            "matmul_w4a16: shape mismatch");
    REQUIRE(c,
            w->qweight.type == AWQ_DTYPE_I32 && w->qzeros.type == AWQ_DTYPE_I32 &&
                w->scales.type == AWQ_DTYPE_F16 && awq_tensor_is_contiguous(&w->qweight) &&
                awq_tensor_is_contiguous(&w->qzeros) && awq_tensor_is_contiguous(&w->scales) &&
                usable(&w->qweight) && usable(&w->qzeros) && usable(&w->scales),
            "matmul_w4a16: qweight/qzeros I32 and scales F16, contiguous");
    REQUIRE(c, usable(x) && usable(y), "matmul_w4a16: tensors must be rowwise and element-aligned");
    const awq_tensor *bias = w->bias.data ? &w->bias : NULL;
    REQUIRE(c, !bias || (is_float(bias->type) && awq_tensor_nelem(bias) == out && usable(bias)),
            "matmul_w4a16: bias (out,) float");
    cl_int cn = (cl_int)n, cin = (cl_int)in, cout = (cl_int)out, gs = (cl_int)w->group_size;
    cl_int bdt = bias ? (cl_int)bias->type : 0, has_b = bias != NULL;
    cl_mem xm = mem(x), ym = mem(y), qw = mem(&w->qweight), qz = mem(&w->qzeros), sc = mem(&w->scales);
    cl_mem bm = bias ? mem(bias) : c->partial;
    cl_ulong xo = eoff(x), yo = eoff(y), qwo = eoff(&w->qweight), qzo = eoff(&w->qzeros),
             sco = eoff(&w->scales), bo = bias ? boff(bias) : 0;
    cl_long ldx = ld(x), ldy = ld(y);
    if (c->blocked) {
        size_t l[2] = {BLK_LX, 1}, g[2] = {(size_t)(out / 8), ((size_t)n + 3) / 4};
        LAUNCH(c, K_gemm_w4_blk, 2, g, l, OA(cn), OA(cin), OA(cout), OA(gs), OA(xm), OA(xo), OA(ldx), OA(qw),
               OA(qwo), OA(qz), OA(qzo), OA(sc), OA(sco), OA(bm), OA(bo), OA(bdt), OA(has_b), OA(ym), OA(yo),
               OA(ldy));
    }
    if (n <= OCL_GEMV_MAX_ROWS) {
        size_t wx = (size_t)c->ls / 8;
        bool x4 = out % 32 == 0; /* 128-bit loads of 4 packed columns per item */
        size_t l[2] = {wx, 8}, g[2] = {(size_t)(out / (x4 ? 32 : 8)), 8};
        LAUNCH(c, x4 ? K_gemv_w4x4 : K_gemv_w4, 2, g, l, OA(cn), OA(cin), OA(cout), OA(gs), OA(xm), OA(xo),
               OA(ldx), OA(qw), OA(qwo), OA(qz), OA(qzo), OA(sc), OA(sco), OA(bm), OA(bo), OA(bdt), OA(has_b),
               OA(ym), OA(yo), OA(ldy));
    }
    size_t l[2] = {(size_t)c->ts, (size_t)(c->ts / c->rt)};
    size_t g[2] = {((size_t)out + c->ts - 1) / c->ts * l[0], ((size_t)n + c->ts - 1) / c->ts * l[1]};
    LAUNCH(c, K_gemm_w4, 2, g, l, OA(cn), OA(cin), OA(cout), OA(gs), OA(xm), OA(xo), OA(ldx), OA(qw), OA(qwo),
           OA(qz), OA(qzo), OA(sc), OA(sco), OA(bm), OA(bo), OA(bdt), OA(has_b), OA(ym), OA(yo), OA(ldy));
}

awq_status ocl_gram(awq_backend_ctx *c, awq_tensor *g, const awq_tensor *x, bool accumulate) {
    int64_t n = awq_tensor_rows(x), C = awq_tensor_cols(x);
    REQUIRE(c,
            x->type == AWQ_DTYPE_F32 && g->type == AWQ_DTYPE_F32 && awq_tensor_rows(g) == C &&
                awq_tensor_cols(g) == C && usable(x) && usable(g),
            "gram: g (c, c) and x (n, c) F32");
#ifdef AWQ_HAVE_CLBLAST
    if (c->use_clblast && n >= 64) {
        CLBlastStatusCode s =
            CLBlastSgemm(CLBlastLayoutRowMajor, CLBlastTransposeYes, CLBlastTransposeNo, (size_t)C, (size_t)C,
                         (size_t)n, 1.0f, mem(x), eoff(x), (size_t)ld(x), mem(x), eoff(x), (size_t)ld(x),
                         accumulate ? 1.0f : 0.0f, mem(g), eoff(g), (size_t)ld(g), &c->queue, NULL);
        if (s == CLBlastSuccess) return AWQ_OK;
        return ocl_fail(c, AWQ_ERR_BACKEND,
                        "opencl: CLBlastSgemm (gram %lld x %lld over %lld) failed: "
                        "CLBlast status %d",
                        (long long)C, (long long)C, (long long)n, (int)s);
    }
#endif
    cl_int cn = (cl_int)n, cc = (cl_int)C, acc = accumulate;
    cl_mem xm = mem(x), gm = mem(g);
    cl_ulong xo = eoff(x), go = eoff(g);
    cl_long ldx = ld(x), ldg = ld(g);
    size_t l[2] = {(size_t)c->ts, (size_t)c->ts}, gw[2] = {(size_t)C, (size_t)C};
    LAUNCH(c, K_gram, 2, gw, l, OA(cn), OA(cc), OA(xm), OA(xo), OA(ldx), OA(gm), OA(go), OA(ldg), OA(acc));
}

/* ---- row and element-wise ops ------------------------------------------------------------- */

awq_status ocl_rmsnorm(awq_backend_ctx *c, awq_tensor *y, const awq_tensor *x, const awq_tensor *gamma,
                       float eps) {
    int64_t n = awq_tensor_rows(x), d = awq_tensor_cols(x);
    REQUIRE(c, x->type == AWQ_DTYPE_F32 && y->type == AWQ_DTYPE_F32 && is_float(gamma->type),
            "rmsnorm: x, y F32; gamma float");
    REQUIRE(c, awq_tensor_rows(y) == n && awq_tensor_cols(y) == d && awq_tensor_nelem(gamma) == d,
            "rmsnorm: shape mismatch");
    REQUIRE(c, usable(x) && usable(y) && usable(gamma), "rmsnorm: rowwise tensors");
    cl_int cd = (cl_int)d, gdt = (cl_int)gamma->type;
    cl_mem xm = mem(x), ym = mem(y), gm = mem(gamma);
    cl_ulong xo = eoff(x), yo = eoff(y), go = boff(gamma);
    cl_long ldx = ld(x), ldy = ld(y);
    size_t l[1] = {(size_t)c->ls}, g[1] = {(size_t)n * (size_t)c->ls};
    LAUNCH(c, K_rmsnorm, 1, g, l, OA(cd), OA(xm), OA(xo), OA(ldx), OA(gm), OA(go), OA(gdt), OA(eps), OA(ym),
           OA(yo), OA(ldy));
}

awq_status ocl_rope(awq_backend_ctx *c, awq_tensor *x, const awq_tensor *pos, const awq_tensor *inv_freq,
                    float attn_factor) {
    REQUIRE(c,
            x->type == AWQ_DTYPE_F32 && x->ndim == 3 && x->nb[2] == 4 && pos->type == AWQ_DTYPE_I32 &&
                inv_freq->type == AWQ_DTYPE_F32,
            "rope: x (n_tok, n_heads, head_dim) F32, pos I32, inv_freq F32");
    int64_t nt = x->ne[0], nh = x->ne[1], hd = x->ne[2], half = hd / 2;
    REQUIRE(c, hd % 2 == 0 && awq_tensor_nelem(pos) == nt && awq_tensor_nelem(inv_freq) == half,
            "rope: shape mismatch");
    REQUIRE(c,
            x->offs % 4 == 0 && x->nb[0] % 4 == 0 && x->nb[1] % 4 == 0 && pos->offs % 4 == 0 &&
                inv_freq->offs % 4 == 0 && usable(pos) && usable(inv_freq),
            "rope: element-aligned tensors");
    cl_int ch = (cl_int)half, cnh = (cl_int)nh, cnt = (cl_int)nt;
    cl_mem xm = mem(x), pm = mem(pos), im = mem(inv_freq);
    cl_ulong xo = x->offs / 4, po = eoff(pos), io = eoff(inv_freq);
    cl_long s0 = x->nb[0] / 4, s1 = x->nb[1] / 4;
    size_t g[3] = {(size_t)half, (size_t)nh, (size_t)nt};
    LAUNCH(c, K_rope, 3, g, NULL, OA(ch), OA(cnh), OA(cnt), OA(xm), OA(xo), OA(s0), OA(s1), OA(pm), OA(po),
           OA(im), OA(io), OA(attn_factor));
}

awq_status ocl_attention(awq_backend_ctx *c, awq_tensor *out, const awq_tensor *q, const awq_tensor *k,
                         const awq_tensor *v, int32_t n_past, float scale, int32_t window) {
    return ocl_attention_softcap(c, out, q, k, v, n_past, scale, window, 0.0f);
}

awq_status ocl_attention_softcap(awq_backend_ctx *c, awq_tensor *out, const awq_tensor *q,
                                 const awq_tensor *k, const awq_tensor *v, int32_t n_past, float scale,
                                 int32_t window, float cap) {
    REQUIRE(c, cap >= 0, "attention: soft-cap must be >= 0");
    REQUIRE(c, q->ndim == 4 && k->ndim == 4 && v->ndim == 4 && out->ndim == 4,
            "attention: 4-D tensors (B, T, H, hd)");
    REQUIRE(c,
            q->type == AWQ_DTYPE_F32 && k->type == AWQ_DTYPE_F32 && v->type == AWQ_DTYPE_F32 &&
                out->type == AWQ_DTYPE_F32,
            "attention: F32 tensors");
    int64_t B = q->ne[0], T = q->ne[1], H = q->ne[2], hd = q->ne[3], S = k->ne[1], Hkv = k->ne[2];
    REQUIRE(c,
            k->ne[0] == B && v->ne[0] == B && k->ne[3] == hd && v->ne[3] == hd && v->ne[1] == S &&
                v->ne[2] == Hkv && Hkv > 0 && H % Hkv == 0 && S >= n_past + T && out->ne[0] == B &&
                out->ne[1] == T && out->ne[2] == H && out->ne[3] == hd,
            "attention: shape mismatch");
    REQUIRE(c, hd <= (int64_t)OCL_ATT_NPER * c->ls, "attention: head_dim %lld > %d", (long long)hd,
            OCL_ATT_NPER * c->ls);
    const awq_tensor *ts[4] = {q, k, v, out};
    for (int i = 0; i < 4; i++)
        REQUIRE(c,
                ts[i]->nb[3] == 4 && ts[i]->offs % 4 == 0 && ts[i]->nb[0] % 4 == 0 && ts[i]->nb[1] % 4 == 0 &&
                    ts[i]->nb[2] % 4 == 0,
                "attention: innermost dimension must be contiguous, strides element-aligned");
    cl_int cT = (cl_int)T, cH = (cl_int)H, cHkv = (cl_int)Hkv, chd = (cl_int)hd;
    cl_mem qm = mem(q), km = mem(k), vm = mem(v), om = mem(out);
    cl_ulong qo = q->offs / 4, ko = k->offs / 4, vo = v->offs / 4, oo = out->offs / 4;
    cl_long q0 = q->nb[0] / 4, q1 = q->nb[1] / 4, q2 = q->nb[2] / 4;
    cl_long k0 = k->nb[0] / 4, k1 = k->nb[1] / 4, k2 = k->nb[2] / 4;
    cl_long v0 = v->nb[0] / 4, v1 = v->nb[1] / 4, v2 = v->nb[2] / 4;
    cl_long o0 = out->nb[0] / 4, o1 = out->nb[1] / 4, o2 = out->nb[2] / 4;
    if (c->blocked && hd <= OCL_ATT_ROW_MAX_HD) {
        size_t l[3] = {1, 1, 1}, g[3] = {(size_t)H, (size_t)T, (size_t)B};
        LAUNCH(c, K_attention_row, 3, g, l, OA(cT), OA(cH), OA(cHkv), OA(chd), OA(n_past), OA(scale),
               OA(window), OA(cap), OA(qm), OA(qo), OA(q0), OA(q1), OA(q2), OA(km), OA(ko), OA(k0), OA(k1),
               OA(k2), OA(vm), OA(vo), OA(v0), OA(v1), OA(v2), OA(om), OA(oo), OA(o0), OA(o1), OA(o2));
    }
    size_t l[3] = {(size_t)c->ls, 1, 1}, g[3] = {(size_t)H * (size_t)c->ls, (size_t)T, (size_t)B};
    LAUNCH(c, K_attention, 3, g, l, OA(cT), OA(cH), OA(cHkv), OA(chd), OA(n_past), OA(scale), OA(window),
           OA(cap), OA(qm), OA(qo), OA(q0), OA(q1), OA(q2), OA(km), OA(ko), OA(k0), OA(k1), OA(k2), OA(vm),
           OA(vo), OA(v0), OA(v1), OA(v2), OA(om), OA(oo), OA(o0), OA(o1), OA(o2));
}

/* 2-D range (cols, rows) for the element-wise kernels. */
static void grid2(size_t *g, int64_t cols, int64_t rows) {
    g[0] = (size_t)cols;
    g[1] = (size_t)rows;
}

awq_status ocl_silu_mul(awq_backend_ctx *c, awq_tensor *y, const awq_tensor *gate, const awq_tensor *up) {
    int64_t n = awq_tensor_rows(gate), d = awq_tensor_cols(gate);
    REQUIRE(c, y->type == AWQ_DTYPE_F32 && gate->type == AWQ_DTYPE_F32 && up->type == AWQ_DTYPE_F32,
            "silu_mul: F32 tensors");
    REQUIRE(c,
            awq_tensor_rows(up) == n && awq_tensor_cols(up) == d && awq_tensor_rows(y) == n &&
                awq_tensor_cols(y) == d && usable(y) && usable(gate) && usable(up),
            "silu_mul: shape mismatch");
    cl_int cd = (cl_int)d, cn = (cl_int)n;
    cl_mem ym = mem(y), gm = mem(gate), um = mem(up);
    cl_ulong yo = eoff(y), go = eoff(gate), uo = eoff(up);
    cl_long ldy = ld(y), ldg = ld(gate), ldu = ld(up);
    size_t g[2];
    grid2(g, d, n);
    LAUNCH(c, K_silu_mul, 2, g, NULL, OA(cd), OA(cn), OA(ym), OA(yo), OA(ldy), OA(gm), OA(go), OA(ldg),
           OA(um), OA(uo), OA(ldu));
}

awq_status ocl_act_mul(awq_backend_ctx *c, awq_tensor *y, const awq_tensor *gate, const awq_tensor *up,
                       awq_act act) {
    REQUIRE(c, act == AWQ_ACT_SILU || act == AWQ_ACT_GELU_TANH, "act_mul: unknown activation %d", (int)act);
    if (act == AWQ_ACT_SILU) return ocl_silu_mul(c, y, gate, up);
    int64_t n = awq_tensor_rows(gate), d = awq_tensor_cols(gate);
    REQUIRE(c, y->type == AWQ_DTYPE_F32 && gate->type == AWQ_DTYPE_F32 && up->type == AWQ_DTYPE_F32,
            "act_mul: F32 tensors");
    REQUIRE(c,
            awq_tensor_rows(up) == n && awq_tensor_cols(up) == d && awq_tensor_rows(y) == n &&
                awq_tensor_cols(y) == d && usable(y) && usable(gate) && usable(up),
            "act_mul: shape mismatch");
    cl_int cd = (cl_int)d, cn = (cl_int)n;
    cl_mem ym = mem(y), gm = mem(gate), um = mem(up);
    cl_ulong yo = eoff(y), go = eoff(gate), uo = eoff(up);
    cl_long ldy = ld(y), ldg = ld(gate), ldu = ld(up);
    size_t g[2];
    grid2(g, d, n);
    LAUNCH(c, K_gelu_mul, 2, g, NULL, OA(cd), OA(cn), OA(ym), OA(yo), OA(ldy), OA(gm), OA(go), OA(ldg),
           OA(um), OA(uo), OA(ldu));
}

awq_status ocl_softcap(awq_backend_ctx *c, awq_tensor *x, float cap) {
    REQUIRE(c, x->type == AWQ_DTYPE_F32 && usable(x), "softcap: rowwise F32");
    REQUIRE(c, cap > 0, "softcap: cap must be > 0");
    int64_t n = awq_tensor_rows(x), d = awq_tensor_cols(x);
    cl_int cd = (cl_int)d, cn = (cl_int)n;
    cl_mem xm = mem(x);
    cl_ulong xo = eoff(x);
    cl_long ldx = ld(x);
    size_t g[2];
    grid2(g, d, n);
    LAUNCH(c, K_softcap, 2, g, NULL, OA(cd), OA(cn), OA(xm), OA(xo), OA(ldx), OA(cap));
}

awq_status ocl_binop(awq_backend_ctx *c, awq_tensor *y, const awq_tensor *a, const awq_tensor *b,
                     awq_binop op) {
    int64_t n = awq_tensor_rows(a), d = awq_tensor_cols(a);
    REQUIRE(c, y->type == AWQ_DTYPE_F32 && a->type == AWQ_DTYPE_F32 && is_float(b->type),
            "binop: y, a F32; b float");
    bool bcast = awq_tensor_nelem(b) == d && awq_tensor_rows(b) == 1;
    REQUIRE(c,
            awq_tensor_cols(b) == d && (bcast || awq_tensor_rows(b) == n) && awq_tensor_rows(y) == n &&
                awq_tensor_cols(y) == d,
            "binop: b must be (n, d) or (1, d)/(d,) with a (n, d)");
    REQUIRE(c, usable(y) && usable(a) && usable(b), "binop: rowwise tensors");
    cl_int cd = (cl_int)d, cn = (cl_int)n, cop = (cl_int)op, bdt = (cl_int)b->type;
    cl_mem ym = mem(y), am = mem(a), bm = mem(b);
    cl_ulong yo = eoff(y), ao = eoff(a), bo = boff(b);
    cl_long ldy = ld(y), lda = ld(a), ldb = bcast ? 0 : ld(b);
    size_t g[2];
    grid2(g, d, n);
    LAUNCH(c, K_binop, 2, g, NULL, OA(cd), OA(cn), OA(cop), OA(ym), OA(yo), OA(ldy), OA(am), OA(ao), OA(lda),
           OA(bm), OA(bo), OA(ldb), OA(bdt));
}

awq_status ocl_get_rows(awq_backend_ctx *c, awq_tensor *y, const awq_tensor *table, const awq_tensor *ids) {
    int64_t n = awq_tensor_nelem(ids), V = awq_tensor_rows(table), d = awq_tensor_cols(table);
    REQUIRE(c, ids->type == AWQ_DTYPE_I32 && is_float(table->type) && y->type == AWQ_DTYPE_F32,
            "get_rows: ids I32, table float, y F32");
    REQUIRE(c,
            awq_tensor_rows(y) == n && awq_tensor_cols(y) == d && usable(y) && usable(table) && usable(ids) &&
                awq_tensor_is_contiguous(ids),
            "get_rows: shape mismatch");
    if (n == 0) return AWQ_OK;
    /* ids are checked on the host: an out-of-range id is an error, never a wild read */
    int32_t stackbuf[256], *h = n <= 256 ? stackbuf : malloc((size_t)n * sizeof *h);
    if (!h) return ocl_fail(c, AWQ_ERR_OUT_OF_MEMORY, "opencl: get_rows: out of memory");
    cl_int err = clEnqueueReadBuffer(c->queue, mem(ids), CL_TRUE, ids->offs, (size_t)n * 4, h, 0, NULL, NULL);
    awq_status st = ocl_check(c, err, "clEnqueueReadBuffer(ids)");
    for (int64_t i = 0; i < n && st == AWQ_OK; i++)
        if (h[i] < 0 || h[i] >= V)
            st = ocl_fail(c, AWQ_ERR_INVALID_ARG, "opencl: get_rows: id %d at %lld out of range [0, %lld)",
                          h[i], (long long)i, (long long)V);
    if (h != stackbuf) free(h);
    TRY(st);
    cl_int cd = (cl_int)d, cn = (cl_int)n, tdt = (cl_int)table->type;
    cl_mem ym = mem(y), tm = mem(table), im = mem(ids);
    cl_ulong yo = eoff(y), to = boff(table), io = eoff(ids);
    cl_long ldy = ld(y), ldt = ld(table);
    size_t g[2];
    grid2(g, d, n);
    LAUNCH(c, K_get_rows, 2, g, NULL, OA(cd), OA(cn), OA(ym), OA(yo), OA(ldy), OA(tm), OA(to), OA(ldt),
           OA(tdt), OA(im), OA(io));
}

awq_status ocl_convert(awq_backend_ctx *c, awq_tensor *y, const awq_tensor *x) {
    int64_t n = awq_tensor_rows(x), d = awq_tensor_cols(x);
    REQUIRE(c, is_float(x->type) && is_float(y->type), "convert: float dtypes only");
    REQUIRE(c, awq_tensor_rows(y) == n && awq_tensor_cols(y) == d, "convert: shape mismatch");
    REQUIRE(c, usable(x) && usable(y), "convert: rowwise tensors");
    cl_int cd = (cl_int)d, cn = (cl_int)n, ydt = (cl_int)y->type, xdt = (cl_int)x->type;
    cl_mem ym = mem(y), xm = mem(x);
    cl_ulong yo = boff(y), xo = boff(x);
    cl_long ldy = ld(y), ldx = ld(x);
    size_t g[2];
    grid2(g, d, n);
    LAUNCH(c, K_convert, 2, g, NULL, OA(cd), OA(cn), OA(ym), OA(yo), OA(ldy), OA(ydt), OA(xm), OA(xo),
           OA(ldx), OA(xdt));
}

/* ---- quantization ops ---------------------------------------------------------------------- */

static awq_status check_quant(awq_backend_ctx *c, const awq_quant_desc *q, int64_t in) {
    REQUIRE(c, q && q->bits >= 2 && q->bits <= 8 && q->zero_point,
            "quantization: only asymmetric 2..8-bit is supported");
    REQUIRE(c, q->group_size > 0 && in % q->group_size == 0,
            "quantization: in_features %lld not divisible by group size %d", (long long)in, q->group_size);
    return AWQ_OK;
}

awq_status ocl_fake_quant(awq_backend_ctx *c, awq_tensor *wq, const awq_tensor *w, const awq_tensor *s,
                          const awq_tensor *clip, const awq_quant_desc *q) {
    int64_t out = awq_tensor_rows(w), in = awq_tensor_cols(w);
    TRY(check_quant(c, q, in));
    int64_t G = in / q->group_size;
    REQUIRE(c,
            w->type == AWQ_DTYPE_F32 && wq->type == AWQ_DTYPE_F32 && awq_tensor_rows(wq) == out &&
                awq_tensor_cols(wq) == in && usable(w) && usable(wq),
            "fake_quant: w, wq (out, in) F32");
    REQUIRE(c, !s || (s->type == AWQ_DTYPE_F32 && awq_tensor_nelem(s) == in && usable(s)),
            "fake_quant: s (in,) F32");
    REQUIRE(c,
            !clip ||
                (clip->type == AWQ_DTYPE_F32 && awq_tensor_rows(clip) == out && awq_tensor_cols(clip) == G &&
                 usable(clip)),
            "fake_quant: clip (out, in/gs) F32");
    cl_int cout = (cl_int)out, cG = (cl_int)G, gs = q->group_size, has_s = s != NULL, has_c = clip != NULL;
    cl_float qmax = (cl_float)((1 << q->bits) - 1);
    cl_mem qm = mem(wq), wm = mem(w), sm = s ? mem(s) : c->partial, cm = clip ? mem(clip) : c->partial;
    cl_ulong qo = eoff(wq), wo = eoff(w), so = s ? eoff(s) : 0, co = clip ? eoff(clip) : 0;
    cl_long ldq = ld(wq), ldw = ld(w), ldc = clip ? ld(clip) : 0;
    size_t g[2];
    grid2(g, G, out);
    LAUNCH(c, K_fake_quant, 2, g, NULL, OA(cout), OA(cG), OA(gs), OA(qmax), OA(qm), OA(qo), OA(ldq), OA(wm),
           OA(wo), OA(ldw), OA(sm), OA(so), OA(has_s), OA(cm), OA(co), OA(ldc), OA(has_c));
}

awq_status ocl_quantize_w4(awq_backend_ctx *c, awq_tensor *codes, awq_tensor *scales, awq_tensor *zeros,
                           const awq_tensor *w, const awq_quant_desc *q) {
    int64_t out = awq_tensor_rows(w), in = awq_tensor_cols(w);
    TRY(check_quant(c, q, in));
    int64_t G = in / q->group_size;
    REQUIRE(c, q->bits == 4, "quantize_w4: bits must be 4");
    REQUIRE(c,
            w->type == AWQ_DTYPE_F16 && codes->type == AWQ_DTYPE_U8 && scales->type == AWQ_DTYPE_F16 &&
                zeros->type == AWQ_DTYPE_U8,
            "quantize_w4: w F16, codes U8, scales F16, zeros U8");
    REQUIRE(c,
            awq_tensor_rows(codes) == out && awq_tensor_cols(codes) == in && awq_tensor_rows(scales) == out &&
                awq_tensor_cols(scales) == G && awq_tensor_rows(zeros) == out &&
                awq_tensor_cols(zeros) == G && usable(w) && usable(codes) && usable(scales) && usable(zeros),
            "quantize_w4: shape mismatch");
    cl_int cout = (cl_int)out, cG = (cl_int)G, gs = q->group_size;
    cl_mem cm = mem(codes), sm = mem(scales), zm = mem(zeros), wm = mem(w);
    cl_ulong co = eoff(codes), so = eoff(scales), zo = eoff(zeros), wo = eoff(w);
    cl_long ldc = ld(codes), lds = ld(scales), ldz = ld(zeros), ldw = ld(w);
    size_t g[2];
    grid2(g, G, out);
    LAUNCH(c, K_quantize_w4, 2, g, NULL, OA(cout), OA(cG), OA(gs), OA(cm), OA(co), OA(ldc), OA(sm), OA(so),
           OA(lds), OA(zm), OA(zo), OA(ldz), OA(wm), OA(wo), OA(ldw));
}

awq_status ocl_reduce(awq_backend_ctx *c, awq_tensor *y, const awq_tensor *x, awq_reduce_op op,
                      int32_t group) {
    int64_t n = awq_tensor_rows(x), C = awq_tensor_cols(x);
    REQUIRE(c,
            x->type == AWQ_DTYPE_F32 && y->type == AWQ_DTYPE_F32 && awq_tensor_nelem(y) == C && usable(x) &&
                usable(y) && awq_tensor_is_contiguous(y),
            "reduce: x (n, c) F32 -> y (c,) F32");
    REQUIRE(c, op != AWQ_REDUCE_WMEAN_GROUPS || (group > 0 && C % group == 0),
            "reduce: group %d must divide %lld", group, (long long)C);
    REQUIRE(c,
            op == AWQ_REDUCE_MEAN_ABS_COLS || op == AWQ_REDUCE_WMEAN_GROUPS || op == AWQ_REDUCE_MAX_ABS_COLS,
            "reduce: unknown op %d", (int)op);
    cl_int cn = (cl_int)n, cc = (cl_int)C, cop = (cl_int)op, grp = group > 0 ? group : 1;
    cl_mem xm = mem(x), ym = mem(y);
    cl_ulong xo = eoff(x), yo = eoff(y);
    cl_long ldx = ld(x);
    size_t l[1] = {(size_t)(c->ls < 64 ? c->ls : 64)}, g[1] = {(size_t)C};
    LAUNCH(c, K_reduce_cols, 1, g, l, OA(cn), OA(cc), OA(cop), OA(grp), OA(xm), OA(xo), OA(ldx), OA(ym),
           OA(yo));
}

awq_status ocl_scalar(awq_backend_ctx *c, double *out, const awq_tensor *a, const awq_tensor *b,
                      awq_scalar_op op) {
    int64_t n = awq_tensor_rows(a), C = awq_tensor_cols(a);
    REQUIRE(c,
            a->type == AWQ_DTYPE_F32 && b->type == AWQ_DTYPE_F32 && awq_tensor_rows(b) == n &&
                awq_tensor_cols(b) == C && usable(a) && usable(b),
            "scalar: a, b same shape F32");
    cl_long cn = (cl_long)n;
    cl_int cc = (cl_int)C, cop = (cl_int)op;
    cl_mem am = mem(a), bm = mem(b), pm = c->partial;
    cl_ulong ao = eoff(a), bo = eoff(b);
    cl_long lda = ld(a), ldb = ld(b);
    size_t l[1] = {(size_t)c->ls}, g[1] = {(size_t)OCL_SCALAR_GROUPS * (size_t)c->ls};
    const ocl_arg args[] = {OA(cn),  OA(cc), OA(cop), OA(am),  OA(ao),
                            OA(lda), OA(bm), OA(bo),  OA(ldb), OA(pm)};
    TRY(ocl_launch(c, K_scalar_partial, 1, g, l, sizeof args / sizeof args[0], args));
    float part[OCL_SCALAR_GROUPS];
    TRY(ocl_check(c, clEnqueueReadBuffer(c->queue, pm, CL_TRUE, 0, sizeof part, part, 0, NULL, NULL),
                  "clEnqueueReadBuffer(partial sums)"));
    double s = 0;
    for (int i = 0; i < OCL_SCALAR_GROUPS; i++) s += part[i];
    *out = s;
    return AWQ_OK;
}

awq_status ocl_clip_search(awq_backend_ctx *c, awq_tensor *best_max, const awq_tensor *w, const awq_tensor *x,
                           const awq_quant_desc *q, int32_t n_grid, int32_t n_steps) {
    int64_t out = awq_tensor_rows(w), in = awq_tensor_cols(w), n = awq_tensor_rows(x);
    TRY(check_quant(c, q, in));
    int64_t gs = q->group_size, G = in / gs;
    REQUIRE(c,
            w->type == AWQ_DTYPE_F32 && x->type == AWQ_DTYPE_F32 && best_max->type == AWQ_DTYPE_F32 &&
                awq_tensor_cols(x) == in && awq_tensor_rows(best_max) == out &&
                awq_tensor_cols(best_max) == G && usable(w) && usable(x) && usable(best_max) &&
                gs <= OCL_CLIP_MAX_GS && n_grid > 0 && n_steps > 0 && n_steps <= 16 && n > 0,
            "clip_search: w (out, in), x (n, in), best_max (out, in/gs) F32, gs <= %d, 1..16 steps",
            OCL_CLIP_MAX_GS);
    cl_int cout = (cl_int)out, cG = (cl_int)G, cgs = (cl_int)gs, cn = (cl_int)n;
    cl_float qmax = (cl_float)((1 << q->bits) - 1);
    cl_mem wm = mem(w), xm = mem(x), bm = mem(best_max);
    cl_ulong wo = eoff(w), xo = eoff(x), bo = eoff(best_max);
    cl_long ldw = ld(w), ldx = ld(x), ldb = ld(best_max);
    if (c->blocked && gs <= OCL_CLIP_ROW_MAX_GS) {
        size_t l[2] = {1, 1}, g[2] = {(size_t)G, (size_t)out};
        LAUNCH(c, K_clip_search_row, 2, g, l, OA(cout), OA(cG), OA(cgs), OA(cn), OA(qmax), OA(n_grid),
               OA(n_steps), OA(wm), OA(wo), OA(ldw), OA(xm), OA(xo), OA(ldx), OA(bm), OA(bo), OA(ldb));
    }
    size_t l[2] = {(size_t)c->ls, 1}, g[2] = {(size_t)G * (size_t)c->ls, (size_t)out};
    LAUNCH(c, K_clip_search, 2, g, l, OA(cout), OA(cG), OA(cgs), OA(cn), OA(qmax), OA(n_grid), OA(n_steps),
           OA(wm), OA(wo), OA(ldw), OA(xm), OA(xo), OA(ldx), OA(bm), OA(bo), OA(ldb));
}
