/*
 * ops.cl - the element-wise and row-wise inference ops: rmsnorm, rope, attention,
 * silu_mul, binop, get_rows, convert.
 *
 * Element-wise kernels use a 2-D range (column, row): consecutive work-items touch consecutive
 * addresses of a row (coalesced), rows may be strided. Row reductions (rmsnorm) give one
 * work-group of LS items to a row and reduce in local memory.
 */

__kernel __attribute__((reqd_work_group_size(LS, 1, 1)))
void rmsnorm(int d, __global const float *x, ulong xo, long ldx,
             __global const uchar *gm, ulong go, int gdt, float eps,
             __global float *y, ulong yo, long ldy) {
    __local float red[LS];
    long i = get_group_id(0);
    int l = get_local_id(0);
    __global const float *xr = x + xo + i * ldx;
    __global float *yr = y + yo + i * ldy;
    float ss = 0.0f;
    for (int j = l; j < d; j += LS) ss = mad(xr[j], xr[j], ss);
    ss = wg_sum(ss, red);
    float r = rsqrt(ss / (float)d + eps);
    for (int j = l; j < d; j += LS) yr[j] = xr[j] * r * ld_any(gm + go, gdt, j);
}

/* x (n_tok, n_heads, hd) with strides (s0, s1) elements; one item per (pair i, head, token). */
__kernel void rope(int half_dim, int nh, int nt, __global float *x, ulong xo, long s0, long s1,
                   __global const int *pos, ulong po, __global const float *inv, ulong io,
                   float attn_factor) {
    int i = get_global_id(0), h = get_global_id(1), t = get_global_id(2);
    if (i >= half_dim || h >= nh || t >= nt) return;
    float th = (float)pos[po + t] * inv[io + i];
    float c = cos(th) * attn_factor, s = sin(th) * attn_factor;
    __global float *v = x + xo + t * s0 + h * s1;
    float a = v[i], b = v[i + half_dim];
    v[i] = a * c - b * s;
    v[i + half_dim] = b * c + a * s;
}

/*
 * Causal GQA attention, one work-group of LS items per (head, query, sequence). Flash-style:
 * keys are visited in chunks of LS, item l scoring key j0 + l against q (staged in local memory);
 * the chunk's maximum and exp-sum come from local reductions, the running output is rescaled
 * (online softmax) and each item accumulates the head dimensions d = l, l + LS, ... from the
 * chunk's probabilities in local memory. Memory is O(LS + hd) per group whatever the context.
 * q/k/v/out strides (elements): [0] sequence, [1] token, [2] head. cap > 0: scores
 * soft-capped to cap * tanh(s / cap) (Gemma 2).
 */
#define ATT_NPER 4 /* head_dim <= ATT_NPER * LS */
__kernel __attribute__((reqd_work_group_size(LS, 1, 1)))
void attention(int T, int H, int Hkv, int hd, int n_past, float scale, int window, float cap,
               __global const float *q, ulong qo, long q0, long q1, long q2,
               __global const float *k, ulong ko, long k0, long k1, long k2,
               __global const float *v, ulong vo, long v0, long v1, long v2,
               __global float *out, ulong oo, long o0, long o1, long o2) {
    __local float qs[ATT_NPER * LS];
    __local float p[LS];
    __local float red[LS];
    int h = get_group_id(0), t = get_group_id(1), bq = get_group_id(2), l = get_local_id(0);
    int hk = h / (H / Hkv);
    __global const float *qr = q + qo + bq * q0 + t * q1 + h * q2;
    __global const float *kb = k + ko + bq * k0 + hk * k2;
    __global const float *vb = v + vo + bq * v0 + hk * v2;
    for (int d = l; d < hd; d += LS) qs[d] = qr[d] * scale;
    barrier(CLK_LOCAL_MEM_FENCE);
    int hi = n_past + t;
    int lo = (window > 0 && hi - window + 1 > 0) ? hi - window + 1 : 0;
    float m = -INFINITY, lsum = 0.0f;
    float acc[ATT_NPER];
    for (int u = 0; u < ATT_NPER; u++) acc[u] = 0.0f;
    for (int j0 = lo; j0 <= hi; j0 += LS) {
        int j = j0 + l;
        float s = -INFINITY;
        if (j <= hi) {
            __global const float *kr = kb + (long)j * k1;
            s = 0.0f;
            for (int d = 0; d < hd; d++) s = mad(qs[d], kr[d], s);
            if (cap > 0.0f) s = cap * tanh(s / cap); /* Gemma 2 soft-capping */
        }
        float cm = wg_max(s, red);
        float mn = fmax(m, cm);
        float e = j <= hi ? exp(s - mn) : 0.0f;
        p[l] = e;
        float cs = wg_sum(e, red); /* the barriers inside also publish p[] */
        float corr = exp(m - mn);  /* m = -inf on the first chunk: corr = 0 */
        lsum = lsum * corr + cs;
        int nj = min(LS, hi - j0 + 1);
        for (int u = 0; u < ATT_NPER; u++) {
            int d = l + u * LS;
            if (d < hd) {
                float a = acc[u] * corr;
                for (int jj = 0; jj < nj; jj++) a = mad(p[jj], vb[(long)(j0 + jj) * v1 + d], a);
                acc[u] = a;
            }
        }
        m = mn;
        barrier(CLK_LOCAL_MEM_FENCE); /* p[] is rewritten by the next chunk */
    }
    __global float *orow = out + oo + bq * o0 + t * o1 + h * o2;
    float inv = 1.0f / lsum;
    for (int u = 0; u < ATT_NPER; u++) {
        int d = l + u * LS;
        if (d < hd) orow[d] = acc[u] * inv;
    }
}

__kernel void silu_mul(int d, int n, __global float *y, ulong yo, long ldy,
                       __global const float *g, ulong go, long ldg,
                       __global const float *u, ulong uo, long ldu) {
    int j = get_global_id(0), i = get_global_id(1);
    if (j >= d || i >= n) return;
    float gv = g[go + (long)i * ldg + j];
    y[yo + (long)i * ldy + j] = gv / (1.0f + exp(-gv)) * u[uo + (long)i * ldu + j];
}

/* y = gelu_tanh(gate) * up (Gemma's gelu_pytorch_tanh). */
__kernel void gelu_mul(int d, int n, __global float *y, ulong yo, long ldy,
                       __global const float *g, ulong go, long ldg,
                       __global const float *u, ulong uo, long ldu) {
    int j = get_global_id(0), i = get_global_id(1);
    if (j >= d || i >= n) return;
    float gv = g[go + (long)i * ldg + j];
    float t = tanh(0.7978845608028654f * (gv + 0.044715f * gv * gv * gv));
    y[yo + (long)i * ldy + j] = 0.5f * gv * (1.0f + t) * u[uo + (long)i * ldu + j];
}

/* x = cap * tanh(x / cap) in place. */
__kernel void softcap(int d, int n, __global float *x, ulong xo, long ldx, float cap) {
    int j = get_global_id(0), i = get_global_id(1);
    if (j >= d || i >= n) return;
    __global float *p = x + xo + (long)i * ldx + j;
    *p = cap * tanh(*p * (1.0f / cap));
}

/* y = a op b; b rows have stride ldb (0 = one row broadcast), dtype bdt. */
__kernel void binop(int d, int n, int op, __global float *y, ulong yo, long ldy,
                    __global const float *a, ulong ao, long lda,
                    __global const uchar *b, ulong bo, long ldb, int bdt) {
    int j = get_global_id(0), i = get_global_id(1);
    if (j >= d || i >= n) return;
    float av = a[ao + (long)i * lda + j];
    float bv = ld_any(b + bo, bdt, (long)i * ldb + j);
    float r = op == 0 ? av + bv : op == 1 ? av - bv : op == 2 ? av * bv : av / bv;
    y[yo + (long)i * ldy + j] = r;
}

__kernel void get_rows(int d, int n, __global float *y, ulong yo, long ldy,
                       __global const uchar *tab, ulong to, long ldt, int tdt,
                       __global const int *ids, ulong io) {
    int j = get_global_id(0), i = get_global_id(1);
    if (j >= d || i >= n) return;
    y[yo + (long)i * ldy + j] = ld_any(tab + to, tdt, (long)ids[io + i] * ldt + j);
}

/* Cast between F32/F16/BF16 (offsets in bytes, strides in elements). */
__kernel void convert(int d, int n, __global uchar *y, ulong yo, long ldy, int ydt,
                      __global const uchar *x, ulong xo, long ldx, int xdt) {
    int j = get_global_id(0), i = get_global_id(1);
    if (j >= d || i >= n) return;
    st_any(y + yo, ydt, (long)i * ldy + j, ld_any(x + xo, xdt, (long)i * ldx + j));
}

/* Attention for CPU-class devices: one item per (head, query, sequence) runs the online softmax
 * over its keys serially (no barriers, no local memory); the output row lives in private memory,
 * so head_dim <= ATT_ROW_MAX_HD. */
#define ATT_ROW_MAX_HD 256
__kernel void attention_row(int T, int H, int Hkv, int hd, int n_past, float scale, int window, float cap,
                            __global const float *q, ulong qo, long q0, long q1, long q2,
                            __global const float *k, ulong ko, long k0, long k1, long k2,
                            __global const float *v, ulong vo, long v0, long v1, long v2,
                            __global float *out, ulong oo, long o0, long o1, long o2) {
    int h = get_global_id(0), t = get_global_id(1), bq = get_global_id(2);
    if (h >= H || t >= T) return;
    int hk = h / (H / Hkv);
    __global const float *qr = q + qo + bq * q0 + t * q1 + h * q2;
    __global const float *kb = k + ko + bq * k0 + hk * k2;
    __global const float *vb = v + vo + bq * v0 + hk * v2;
    float acc[ATT_ROW_MAX_HD];
    for (int d = 0; d < hd; d++) acc[d] = 0.0f;
    int hi = n_past + t;
    int lo = (window > 0 && hi - window + 1 > 0) ? hi - window + 1 : 0;
    float m = -INFINITY, lsum = 0.0f;
    for (int j = lo; j <= hi; j++) {
        __global const float *kr = kb + (long)j * k1;
        float s = 0.0f;
        int d = 0;
        for (; d + 4 <= hd; d += 4) s += dot(vload4(0, qr + d), vload4(0, kr + d));
        for (; d < hd; d++) s = mad(qr[d], kr[d], s);
        s *= scale;
        if (cap > 0.0f) s = cap * tanh(s / cap); /* Gemma 2 soft-capping */
        float mn = fmax(m, s), corr = exp(m - mn), p = exp(s - mn);
        lsum = lsum * corr + p;
        __global const float *vr = vb + (long)j * v1;
        for (d = 0; d < hd; d++) acc[d] = mad(p, vr[d], acc[d] * corr);
        m = mn;
    }
    __global float *orow = out + oo + bq * o0 + t * o1 + h * o2;
    float inv = 1.0f / lsum;
    for (int d = 0; d < hd; d++) orow[d] = acc[d] * inv;
}
