/*
 * quant.cl - the quantization ops: pseudo-quantizer (docs/algorithm.md 7.2), final fp16
 * quantization (7.4), statistics, scalar reductions and the clip search (6).
 *
 * Exactness: these must round like the cpu reference, so contraction into fma is off, rint() is
 * round-half-to-even, and the host builds this program with
 * -cl-fp32-correctly-rounded-divide-sqrt when the device supports it (OpenCL otherwise allows
 * 2.5 ulp divisions). fp16 rounding after each operation of 7.4 is done on the float's bits (r16), which
 * needs no fp16 support on the device.
 */
#pragma OPENCL FP_CONTRACT OFF

/* Rounds to the nearest binary16 value (ties to even) and back, in integer arithmetic (no half
 * type needed): 10 fraction bits in the normal range, a fixed ulp of 2^-24 below 2^-14,
 * infinity from 65520 up. */
inline float r16(float f) {
    uint u = as_uint(f), sign = u & 0x80000000u, a = u & 0x7fffffffu;
    if (a >= 0x7f800000u) return f;                              /* inf, nan */
    if (a >= 0x477ff000u) return as_float(sign | 0x7f800000u);   /* >= 65520: inf */
    if (a < 0x38800000u)                                         /* fp16 subnormal */
        return as_float(sign | as_uint(rint(as_float(a) * 16777216.0f) * 5.9604644775390625e-8f));
    uint r = (a + 0xfffu + ((a >> 13) & 1u)) & 0xffffe000u;
    return as_float(sign | r);
}

/* Scale and zero of a group with extremes mx >= mn (7.2, fp32). */
inline void qparams(float mx, float mn, float qmax, float *s, float *z) {
    float d = mx - mn;
    *s = (d > 1e-5f ? d : 1e-5f) / qmax;
    *z = clamp(-rint(mn / *s), 0.0f, qmax);
}
inline float qdq(float v, float s, float z, float qmax) {
    float q = clamp(rint(v / s) + z, 0.0f, qmax);
    return (q - z) * s;
}

/* wq (out, in) = Q(clamp(w * s, -clip, clip)) / s; one item per (group, row), two passes over the
 * group (extremes, then values) so nothing is staged and wq may alias w. */
__kernel void fake_quant(int out, int G, int gs, float qmax,
                         __global float *wq, ulong qo, long ldq,
                         __global const float *w, ulong wo, long ldw,
                         __global const float *s, ulong so, int has_s,
                         __global const float *clp, ulong co, long ldc, int has_c) {
    int g = get_global_id(0), o = get_global_id(1);
    if (g >= G || o >= out) return;
    __global const float *wr = w + wo + (long)o * ldw + (long)g * gs;
    __global float *qr = wq + qo + (long)o * ldq + (long)g * gs;
    __global const float *sr = s + so + (long)g * gs;
    float c = has_c ? clp[co + (long)o * ldc + g] : 0.0f;
    float mx = -INFINITY, mn = INFINITY;
    for (int k = 0; k < gs; k++) {
        float v = wr[k];
        if (has_s) v *= sr[k];
        if (has_c) v = v > c ? c : v < -c ? -c : v;
        mx = fmax(mx, v);
        mn = fmin(mn, v);
    }
    float sc, z;
    qparams(mx, mn, qmax, &sc, &z);
    for (int k = 0; k < gs; k++) {
        float v = wr[k];
        if (has_s) v *= sr[k];
        if (has_c) v = v > c ? c : v < -c ? -c : v;
        float d = qdq(v, sc, z, qmax);
        qr[k] = has_s ? d / sr[k] : d;
    }
}

/* 7.4: w (out, in) F16 -> codes U8, scales F16, zeros U8; every operation rounded to fp16. */
__kernel void quantize_w4(int out, int G, int gs,
                          __global uchar *codes, ulong cdo, long ldcd,
                          __global half *scales, ulong so, long lds,
                          __global uchar *zeros, ulong zo, long ldz,
                          __global const half *w, ulong wo, long ldw) {
    int g = get_global_id(0), o = get_global_id(1);
    if (g >= G || o >= out) return;
    long base = (long)wo + (long)o * ldw + (long)g * gs;
    float mx = vload_half(base, w), mn = mx;
    for (int k = 1; k < gs; k++) {
        float v = vload_half(base + k, w);
        mx = fmax(mx, v);
        mn = fmin(mn, v);
    }
    float range = r16(mx - mn);
    float min_range = r16(1e-5f);
    if (range < min_range) range = min_range;
    float S = r16(range / 15.0f);
    float Z = clamp(-rint(r16(mn / S)), 0.0f, 15.0f);
    vstore_half_rte(S, (long)so + (long)o * lds + g, scales);
    zeros[zo + (long)o * ldz + g] = (uchar)Z;
    __global uchar *cr = codes + cdo + (long)o * ldcd + (long)g * gs;
    for (int k = 0; k < gs; k++) {
        float q = r16(rint(r16(vload_half(base + k, w) / S)) + Z);
        cr[k] = (uchar)clamp(q, 0.0f, 15.0f);
    }
}

/* Column statistics of x (n, c): op 0 mean |x|, 2 max |x|; op 1 (w-bar) mean over rows of
 * |w| / (max |w| of the element's group + 1e-6). One item per column; consecutive items read
 * consecutive addresses of each row. Sums are compensated (Kahan). */
__kernel void reduce_cols(int n, int c, int op, int group,
                          __global const float *x, ulong xo, long ldx,
                          __global float *y, ulong yo) {
    int j = get_global_id(0);
    if (j >= c) return;
    float s = 0.0f, comp = 0.0f;
    int g0 = op == 1 ? j / group * group : 0;
    for (int i = 0; i < n; i++) {
        __global const float *r = x + xo + (long)i * ldx;
        float v = fabs(r[j]);
        if (op == 2) {
            s = fmax(s, v);
            continue;
        }
        if (op == 1) {
            float m = 0.0f;
            for (int k = g0; k < g0 + group; k++) m = fmax(m, fabs(r[k]));
            v = v * (1.0f / (m + 1e-6f));
        }
        float yk = v - comp, t = s + yk;
        comp = (t - s) - yk;
        s = t;
    }
    y[yo + j] = op == 2 ? s : s / (float)n;
}

/* Partial sums of (a - b)^2 (op 0) or a * b (op 1) over all elements of two (n, c) tensors: one
 * value per work-group (the host adds them in double). */
__kernel __attribute__((reqd_work_group_size(LS, 1, 1)))
void scalar_partial(long n, int c, int op,
                    __global const float *a, ulong ao, long lda,
                    __global const float *b, ulong bo, long ldb,
                    __global float *part) {
    __local float red[LS];
    long total = n * c, stride = (long)get_global_size(0);
    float s = 0.0f, comp = 0.0f;
    for (long e = get_global_id(0); e < total; e += stride) {
        long i = e / c, j = e - i * c;
        float av = a[ao + i * lda + j], bv = b[bo + i * ldb + j];
        float v = op == 0 ? (av - bv) * (av - bv) : av * bv;
        float yk = v - comp, t = s + yk;
        comp = (t - s) - yk;
        s = t;
    }
    s = wg_sum(s, red);
    if (get_local_id(0) == 0) part[get_group_id(0)] = s;
}

/*
 * Clip search (docs/algorithm.md 6), one work-group of LS items per (group, row). For each of the
 * n_steps candidates c_i = m (1 - i / n_grid) the clamped group's extremes are min(max, c_i) and
 * max(min, -c_i), so the quantization parameters need no further reduction. Local memory holds
 * dq[k][i] = Q(clamp(w_k, c_i)) - w_k for the group; items then stride over the tokens, each
 * accumulating err_i += (x_t . dq[:, i])^2 for all candidates, and a local reduction per
 * candidate gives the totals. Requires gs <= MAX_GS and n_steps <= 16.
 */
#define MAX_GS 256
__kernel __attribute__((reqd_work_group_size(LS, 1, 1)))
void clip_search(int out, int G, int gs, int n, float qmax, int n_grid, int n_steps,
                 __global const float *w, ulong wo, long ldw,
                 __global const float *x, ulong xo, long ldx,
                 __global float *best, ulong bo, long ldb) {
    __local float dq[MAX_GS * 16];
    __local float red[LS];
    __local float errs[16];
    int g = get_group_id(0), o = get_group_id(1), l = get_local_id(0);
    __global const float *wg = w + wo + (long)o * ldw + (long)g * gs;
    float amax = 0.0f, mx = -INFINITY, mn = INFINITY;
    for (int k = l; k < gs; k += LS) {
        float v = wg[k];
        amax = fmax(amax, fabs(v));
        mx = fmax(mx, v);
        mn = fmin(mn, v);
    }
    amax = wg_max(amax, red);
    mx = wg_max(mx, red);
    mn = -wg_max(-mn, red);
    for (int k = l; k < gs; k += LS)
        for (int i = n_steps; i < 16; i++) dq[k * 16 + i] = 0.0f;
    for (int i = 0; i < n_steps; i++) {
        float c = amax * (1.0f - (float)i / (float)n_grid);
        float s, z;
        qparams(fmin(mx, c), fmax(mn, -c), qmax, &s, &z);
        for (int k = l; k < gs; k += LS) {
            float v = wg[k];
            float vc = v > c ? c : v < -c ? -c : v;
            dq[k * 16 + i] = qdq(vc, s, z, qmax) - v;
        }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    float e[16];
    for (int i = 0; i < 16; i++) e[i] = 0.0f;
    __global const float *xg = x + xo + (long)g * gs;
    for (int t = l; t < n; t += LS) {
        __global const float *xr = xg + (long)t * ldx;
        float acc[16];
        for (int i = 0; i < 16; i++) acc[i] = 0.0f;
        for (int k = 0; k < gs; k++) {
            float xv = xr[k];
            for (int i = 0; i < 16; i++) acc[i] += xv * dq[k * 16 + i];
        }
        for (int i = 0; i < 16; i++) e[i] += acc[i] * acc[i];
    }
    for (int i = 0; i < n_steps; i++) {
        float tot = wg_sum(e[i], red);
        if (l == 0) errs[i] = tot;
    }
    if (l == 0) {
        float bestv = 1e9f, bc = amax;
        for (int i = 0; i < n_steps; i++) {
            float err = errs[i] / (float)n;
            if (err < bestv) {
                bestv = err;
                bc = amax * (1.0f - (float)i / (float)n_grid);
            }
        }
        best[bo + (long)o * ldb + g] = bc;
    }
}

/* Clip search for CPU-class devices: one item per (group, row), no barriers. The candidates'
 * dq[k] (16 lanes, one per candidate) live in private memory and every token's 16 errors are one
 * float16 multiply-add per element: a 16-wide vector operation on a CPU. gs <= ROW_MAX_GS. */
#define ROW_MAX_GS 128
__kernel void clip_search_row(int out, int G, int gs, int n, float qmax, int n_grid, int n_steps,
                              __global const float *w, ulong wo, long ldw,
                              __global const float *x, ulong xo, long ldx,
                              __global float *best, ulong bo, long ldb) {
    int g = get_global_id(0), o = get_global_id(1);
    if (g >= G || o >= out) return;
    __global const float *wg = w + wo + (long)o * ldw + (long)g * gs;
    float amax = 0.0f, mx = -INFINITY, mn = INFINITY;
    for (int k = 0; k < gs; k++) {
        float v = wg[k];
        amax = fmax(amax, fabs(v));
        mx = fmax(mx, v);
        mn = fmin(mn, v);
    }
    float16 dq[ROW_MAX_GS];
    float cand[16];
    for (int i = 0; i < 16; i++) cand[i] = amax * (1.0f - (float)i / (float)n_grid);
    for (int k = 0; k < gs; k++) {
        float v = wg[k], d[16];
        for (int i = 0; i < 16; i++) {
            float c = cand[i];
            float s, z;
            qparams(fmin(mx, c), fmax(mn, -c), qmax, &s, &z);
            float vc = v > c ? c : v < -c ? -c : v;
            d[i] = i < n_steps ? qdq(vc, s, z, qmax) - v : 0.0f;
        }
        dq[k] = vload16(0, d);
    }
    float16 e = (float16)(0.0f);
    __global const float *xg = x + xo + (long)g * gs;
    for (int t = 0; t < n; t++) {
        __global const float *xr = xg + (long)t * ldx;
        float16 acc = (float16)(0.0f);
        for (int k = 0; k < gs; k++) acc = mad((float16)(xr[k]), dq[k], acc);
        e = mad(acc, acc, e);
    }
    float errs[16];
    vstore16(e, 0, errs);
    float bestv = 1e9f, bc = amax;
    for (int i = 0; i < n_steps; i++) {
        float err = errs[i] / (float)n;
        if (err < bestv) {
            bestv = err;
            bc = cand[i];
        }
    }
    best[bo + (long)o * ldb + g] = bc;
}
