/*
 * launch_ops.cuh - the launchers of launch.h's "row / element-wise ops", attention and
 * "quantization ops" sections (extern "C"), included by launch.cu after intrin.cuh and launch.h:
 * grid sizing and the choice of kernel instance; the kernels are in ops.cuh, attention.cuh and
 * quant.cuh. Every launcher returns through AWQK_LAUNCH (0, or -1 with kc->err set); shapes
 * were validated by cuda_ops.c, an empty problem launches nothing.
 */
#ifndef AWQ_CUDA_LAUNCH_OPS_CUH
#define AWQ_CUDA_LAUNCH_OPS_CUH

#include <stdio.h>

#include "attention.cuh"
#include "ops.cuh"
#include "quant.cuh"

/* Grid of a grid-stride kernel: one block per unit of work, at most per_sm blocks per SM. */
static unsigned lo_grid(const awqk_ctx *kc, long long units, int per_sm) {
    const long long cap = (long long)(kc->n_sm > 0 ? kc->n_sm : 16) * per_sm;
    const long long g = units < cap ? units : cap;
    return (unsigned)(g < 1 ? 1 : g);
}
static long long lo_cdiv(long long a, long long b) { return (a + b - 1) / b; }

static int lo_fail(awqk_ctx *kc, const char *msg) {
    snprintf(kc->err, sizeof kc->err, "%s", msg);
    return -1;
}

/* ============================ row / element-wise ops ====================================== */

extern "C" int awqk_rmsnorm(awqk_ctx *kc, int n, int d, const float *x, long long ldx, const void *gamma,
                            int gamma_dt, float eps, float *y, long long ldy) {
    if (n <= 0) return 0;
    const dim3 grid(lo_grid(kc, lo_cdiv(n, OPS_ROW_THREADS / 32), 16)), block(OPS_ROW_THREADS);
    AWQK_LAUNCH(kc, "rmsnorm", ops_rmsnorm, grid, block, 0, n, d, x, ldx, gamma, gamma_dt, eps, y, ldy);
}

extern "C" int awqk_rope(awqk_ctx *kc, int nt, int nh, int half, float *x, long long s0, long long s1,
                         const int32_t *pos, const float *inv_freq, float attn_factor) {
    if (nt <= 0 || nh <= 0 || half <= 0) return 0;
    const dim3 grid(lo_grid(kc, lo_cdiv((long long)nt * half, OPS_ROW_THREADS), 16)), block(OPS_ROW_THREADS);
    AWQK_LAUNCH(kc, "rope", ops_rope, grid, block, 0, nt, nh, half, x, s0, s1, pos, inv_freq, attn_factor);
}

/* units of the element-wise kernels: (row, 1024-column chunk) */
static long long lo_ew_units(int n, int d) { return (long long)n * lo_cdiv(d, OPS_EW_CHUNK); }

extern "C" int awqk_silu_mul(awqk_ctx *kc, int n, int d, float *y, long long ldy, const float *gate,
                             long long ldg, const float *up, long long ldu) {
    if (n <= 0 || d <= 0) return 0;
    const dim3 grid(lo_grid(kc, lo_ew_units(n, d), 8)), block(OPS_EW_THREADS);
    AWQK_LAUNCH(kc, "silu_mul", ops_silu_mul, grid, block, 0, n, d, y, ldy, gate, ldg, up, ldu);
}

extern "C" int awqk_gelu_mul(awqk_ctx *kc, int n, int d, float *y, long long ldy, const float *gate,
                             long long ldg, const float *up, long long ldu) {
    if (n <= 0 || d <= 0) return 0;
    const dim3 grid(lo_grid(kc, lo_ew_units(n, d), 8)), block(OPS_EW_THREADS);
    AWQK_LAUNCH(kc, "gelu_mul", ops_gelu_mul, grid, block, 0, n, d, y, ldy, gate, ldg, up, ldu);
}

extern "C" int awqk_softcap(awqk_ctx *kc, int n, int d, float *x, long long ldx, float cap) {
    if (n <= 0 || d <= 0) return 0;
    const dim3 grid(lo_grid(kc, lo_ew_units(n, d), 8)), block(OPS_EW_THREADS);
    AWQK_LAUNCH(kc, "softcap", ops_softcap, grid, block, 0, n, d, x, ldx, cap);
}

extern "C" int awqk_binop(awqk_ctx *kc, int n, int d, int op, float *y, long long ldy, const float *a,
                          long long lda, const void *b, int b_dt, long long ldb) {
    if (n <= 0 || d <= 0) return 0;
    const dim3 grid(lo_grid(kc, lo_ew_units(n, d), 8)), block(OPS_EW_THREADS);
    AWQK_LAUNCH(kc, "binop", ops_binop, grid, block, 0, n, d, op, y, ldy, a, lda, b, b_dt, ldb);
}

extern "C" int awqk_get_rows(awqk_ctx *kc, int n, int d, float *y, long long ldy, const void *table,
                             int table_dt, long long ldt, const int32_t *ids, int V, int *bad) {
    if (n <= 0 || d <= 0) return 0;
    const dim3 grid(lo_grid(kc, lo_ew_units(n, d), 8)), block(OPS_EW_THREADS);
    AWQK_LAUNCH(kc, "get_rows", ops_get_rows, grid, block, 0, n, d, y, ldy, table, table_dt, ldt, ids, V,
                bad);
}

extern "C" int awqk_convert(awqk_ctx *kc, int n, int d, void *y, int y_dt, long long ldy, const void *x,
                            int x_dt, long long ldx) {
    if (n <= 0 || d <= 0) return 0;
    const dim3 grid(lo_grid(kc, lo_ew_units(n, d), 8)), block(OPS_EW_THREADS);
    AWQK_LAUNCH(kc, "convert", ops_convert, grid, block, 0, n, d, y, y_dt, ldy, x, x_dt, ldx);
}

/* ================================== attention ============================================= */

typedef void (*attn_kern_t)(awqk_attn, int, int, int, float *);

/* Configuration for head size hd: NI = ceil(hd / 32) dims per lane; hd <= 128: 4 rows per
 * warp, 32-key tiles; hd <= 256: 2 rows per warp, 16-key tiles (shared memory <= 48 KiB). */
struct attn_cfg {
    int ni, rw, bk;
    attn_kern_t kern;
};
/* clang-format off */
static attn_cfg attn_config(int hd, bool split) {
    attn_cfg c;
    c.ni = (hd + 31) / 32;
    c.rw = c.ni <= 4 ? 4 : 2;
    c.bk = c.ni <= 4 ? 32 : 16;
#define ATT_CASE(NI, RW, BK) \
    case NI: c.kern = split ? attn_tile<NI, RW, BK, true> : attn_tile<NI, RW, BK, false>; break;
    switch (c.ni) {
        ATT_CASE(1, 4, 32) ATT_CASE(2, 4, 32) ATT_CASE(3, 4, 32) ATT_CASE(4, 4, 32)
        ATT_CASE(5, 2, 16) ATT_CASE(6, 2, 16) ATT_CASE(7, 2, 16) ATT_CASE(8, 2, 16)
    default: c.kern = nullptr; break;
    }
#undef ATT_CASE
    return c;
}
/* clang-format on */

static int attn_check(awqk_ctx *kc, const awqk_attn *a, const char *name) {
    if (a->hd < 1 || a->hd > 256 || a->Hkv < 1 || a->H % a->Hkv != 0 || a->B > 65535 || a->Hkv > 65535) {
        snprintf(kc->err, sizeof kc->err, "%s: unsupported shape (hd %d, H %d, Hkv %d, B %d)", name, a->hd,
                 a->H, a->Hkv, a->B);
        return -1;
    }
    return 0;
}

extern "C" int awqk_attention_prefill(awqk_ctx *kc, const awqk_attn *a) {
    if (a->B <= 0 || a->T <= 0 || a->H <= 0) return 0;
    if (attn_check(kc, a, "attention_prefill")) return -1;
    const attn_cfg c = attn_config(a->hd, false);
    const int R = a->T * (a->H / a->Hkv), ntiles = (int)lo_cdiv(R, ATT_WARPS * c.rw);
    const dim3 grid((unsigned)ntiles, (unsigned)a->Hkv, (unsigned)a->B), block(ATT_THREADS);
    const size_t smem = attn_smem_bytes(a->hd, c.ni, c.rw, c.bk);
    const attn_kern_t kern = c.kern;
    const awqk_attn av = *a;
    float *no_ws = nullptr;
    AWQK_LAUNCH(kc, "attention_prefill", kern, grid, block, smem, av, ntiles, 1, 0, no_ws);
}

/* Split of the key range for the decode kernel: enough chunks to give the device about two
 * blocks per SM, each chunk at least two key tiles. Lmax bounds every tile's key range. */
static void attn_split_plan(const awqk_ctx *kc, const awqk_attn *a, int *nchunk, int *chunk_len) {
    const attn_cfg c = attn_config(a->hd, true);
    const long long R = (long long)a->T * (a->H / a->Hkv);
    const long long base = lo_cdiv(R, ATT_WARPS * c.rw) * a->Hkv * a->B;
    long long lmax = (long long)a->n_past + a->T;
    if (a->window > 0 && (long long)a->window + a->T - 1 < lmax) lmax = (long long)a->window + a->T - 1;
    const long long target = 2LL * (kc->n_sm > 0 ? kc->n_sm : 16);
    long long nc = lo_cdiv(target, base);
    const long long max_nc = lo_cdiv(lmax, 2 * c.bk);
    nc = nc < max_nc ? nc : max_nc;
    nc = nc < 1 ? 1 : nc;
    const long long len = lo_cdiv(lo_cdiv(lmax, nc), c.bk) * c.bk;
    *chunk_len = (int)len;
    *nchunk = (int)lo_cdiv(lmax, len);
}

extern "C" size_t awqk_attention_decode_ws_bytes(const awqk_ctx *kc, const awqk_attn *a) {
    if (a->B <= 0 || a->T <= 0 || a->H <= 0 || a->Hkv <= 0) return 0;
    int nc, len;
    attn_split_plan(kc, a, &nc, &len);
    return (size_t)a->B * a->H * a->T * nc * (size_t)(a->hd + 2) * sizeof(float);
}

static int attn_launch_split(awqk_ctx *kc, const awqk_attn *a, int nc, int len, float *ws) {
    const attn_cfg c = attn_config(a->hd, true);
    const int R = a->T * (a->H / a->Hkv), ntiles = (int)lo_cdiv(R, ATT_WARPS * c.rw);
    const dim3 grid((unsigned)(ntiles * nc), (unsigned)a->Hkv, (unsigned)a->B), block(ATT_THREADS);
    const size_t smem = attn_smem_bytes(a->hd, c.ni, c.rw, c.bk);
    const attn_kern_t kern = c.kern;
    const awqk_attn av = *a;
    AWQK_LAUNCH(kc, "attention_decode", kern, grid, block, smem, av, ntiles, nc, len, ws);
}
static int attn_launch_combine(awqk_ctx *kc, const awqk_attn *a, int nc, const float *ws) {
    const long long rows = (long long)a->B * a->H * a->T;
    const dim3 grid(lo_grid(kc, lo_cdiv(rows, ATT_THREADS / 32), 16)), block(ATT_THREADS);
    const awqk_attn av = *a;
    AWQK_LAUNCH(kc, "attention_combine", attn_combine, grid, block, 0, av, nc, ws);
}

extern "C" int awqk_attention_decode(awqk_ctx *kc, const awqk_attn *a, void *ws, size_t ws_bytes) {
    if (a->B <= 0 || a->T <= 0 || a->H <= 0) return 0;
    if (attn_check(kc, a, "attention_decode")) return -1;
    const size_t need = awqk_attention_decode_ws_bytes(kc, a);
    if (ws_bytes < need) {
        snprintf(kc->err, sizeof kc->err, "attention_decode: workspace of %zu bytes, %zu needed", ws_bytes,
                 need);
        return -1;
    }
    int nc, len;
    attn_split_plan(kc, a, &nc, &len);
    if (attn_launch_split(kc, a, nc, len, static_cast<float *>(ws))) return -1;
    return attn_launch_combine(kc, a, nc, static_cast<const float *>(ws));
}

/* ================================ quantization ops ======================================== */

extern "C" int awqk_fake_quant(awqk_ctx *kc, int out, int G, int gs, int qmax, float *wq, long long ldq,
                               const float *w, long long ldw, const float *s, const float *clip,
                               long long ldc) {
    if (out <= 0 || G <= 0) return 0;
    const dim3 grid(lo_grid(kc, lo_cdiv((long long)out * G, Q_THREADS / 32), 16)), block(Q_THREADS);
    AWQK_LAUNCH(kc, "fake_quant", q_fake_quant, grid, block, 0, out, G, gs, qmax, wq, ldq, w, ldw, s, clip,
                ldc);
}

extern "C" int awqk_quantize_w4(awqk_ctx *kc, int out, int G, int gs, uint8_t *codes, long long ldc,
                                uint16_t *scales, long long lds, uint8_t *zeros, long long ldz,
                                const uint16_t *w, long long ldw) {
    if (out <= 0 || G <= 0) return 0;
    const dim3 grid(lo_grid(kc, lo_cdiv((long long)out * G, Q_THREADS / 32), 16)), block(Q_THREADS);
    AWQK_LAUNCH(kc, "quantize_w4", q_quantize_w4, grid, block, 0, out, G, gs, codes, ldc, scales, lds, zeros,
                ldz, w, ldw);
}

extern "C" int awqk_reduce(awqk_ctx *kc, int n, int c, int op, int group, const float *x, long long ldx,
                           float *y) {
    if (c <= 0) return 0;
    if (op < 0 || op > 2 || group < 1) return lo_fail(kc, "reduce: unknown op or group < 1");
    const dim3 grid((unsigned)lo_cdiv(c, Q_RED_COLS)), block(Q_RED_THREADS);
    const size_t smem = (size_t)Q_RED_WARPS * Q_RED_COLS * sizeof(double);
    AWQK_LAUNCH(kc, "reduce", q_reduce, grid, block, smem, n, c, op, group, x, ldx, y);
}

extern "C" int awqk_scalar(awqk_ctx *kc, long long n, int c, int op, const float *a, long long lda,
                           const float *b, long long ldb, double *partial) {
    if (c <= 0) n = 0; /* every slot still written: zeros */
    const int cc = c > 0 ? c : 1;
    const dim3 grid(lo_grid(kc, AWQK_SCALAR_PARTS, 4)), block(Q_RED_THREADS);
    const size_t smem = Q_RED_THREADS * sizeof(double);
    AWQK_LAUNCH(kc, "scalar", q_scalar, grid, block, smem, n, cc, op, a, lda, b, ldb, partial);
}

extern "C" int awqk_clip_search(awqk_ctx *kc, int out, int G, int gs, int n, int qmax, int n_grid,
                                int n_steps, const float *w, long long ldw, const float *x, long long ldx,
                                float *best, long long ldb) {
    if (out <= 0 || G <= 0) return 0;
    if (gs < 1 || gs > 1024 || n_steps < 1 || n_steps > 16 || n_grid < 1 || n < 1)
        return lo_fail(kc, "clip_search: gs 1..1024, n_steps 1..16, n_grid >= 1, n >= 1");
    const dim3 grid(lo_grid(kc, (long long)out * G, 8)), block(Q_THREADS);
    if (gs <= 512) {
        const size_t smem = q_clip_smem_bytes(gs, 16);
        AWQK_LAUNCH(kc, "clip_search", (q_clip_search<16>), grid, block, smem, out, G, gs, n, qmax, n_grid,
                    n_steps, w, ldw, x, ldx, best, ldb);
    }
    const size_t smem = q_clip_smem_bytes(gs, 8);
    AWQK_LAUNCH(kc, "clip_search", (q_clip_search<8>), grid, block, smem, out, G, gs, n, qmax, n_grid,
                n_steps, w, ldw, x, ldx, best, ldb);
}

#endif /* AWQ_CUDA_LAUNCH_OPS_CUH */
