/*
 * matmul.cl - y (n, out) = x (n, in) W^T + bias for dense F32/F16/BF16 weights and AWQ 4-bit
 * weights (GEMM layout, dequantized while loading), and the Gram matrix x^T x.
 *
 * Two shapes of work:
 *  - prefill / calibration (n > GEMV_MAX_ROWS): TS x TS output tiles per work-group. Each step the
 *    group stages a TS x TS tile of x and of W in local memory (one element per work-item, the
 *    work-items of a row reading consecutive addresses, so global loads coalesce), then every
 *    work-item accumulates RT outputs (a column of a register tile) from local memory. RT rows per
 *    work-item raise the arithmetic per local load RT-fold, which matters on GPUs where local
 *    memory bandwidth, not ALUs, limits a 1-output-per-item GEMM. Local arrays are padded by one
 *    column against bank conflicts.
 *  - decode (n <= GEMV_MAX_ROWS): a GEMV, memory-bound: every weight byte is read once.
 *    Dense: 32 items per output row striding over `in` (consecutive items read consecutive
 *    weights: coalesced), LS / 32 rows per work-group, then a local-memory tree reduction.
 *    AWQ: one item per packed column (8 outputs) and per K-slice; consecutive items read
 *    consecutive 32-bit words of a qweight row (a full 128-byte line per 32 items), unpack the 8
 *    nibbles in registers, apply the zero point per element and the scale once per group, and
 *    the K-slices of a work-group are summed in local memory.
 */

#define GEMV_MAX_ROWS 4

/* ---- tiled GEMM --------------------------------------------------------------------------- */

/* Work-group (TS, TS / RT): item (lx, ly) computes outputs o = o0 + lx for rows
 * i0 + ly * RT .. + RT - 1. Tiles: Xs[row][k], Ws[o][k]. */
#define GEMM_BODY(LOAD_W_TILE)                                                                   \
    int lx = get_local_id(0), ly = get_local_id(1);                                              \
    int o0 = get_group_id(0) * TS, i0 = get_group_id(1) * TS;                                    \
    __local float Xs[TS][TS + 1];                                                                \
    __local float Ws[TS][TS + 1];                                                                \
    float acc[RT];                                                                               \
    for (int r = 0; r < RT; r++) acc[r] = 0.0f;                                                  \
    for (int k0 = 0; k0 < in; k0 += TS) {                                                        \
        for (int r = 0; r < RT; r++) {                                                           \
            int row = ly * RT + r, i = i0 + row, k = k0 + lx;                                    \
            Xs[row][lx] = (i < n && k < in) ? x[(long)i * ldx + k] : 0.0f;                       \
        }                                                                                        \
        LOAD_W_TILE                                                                              \
        barrier(CLK_LOCAL_MEM_FENCE);                                                            \
        for (int kk = 0; kk < TS; kk++) {                                                        \
            float wv = Ws[lx][kk];                                                               \
            for (int r = 0; r < RT; r++) acc[r] = mad(Xs[ly * RT + r][kk], wv, acc[r]);          \
        }                                                                                        \
        barrier(CLK_LOCAL_MEM_FENCE);                                                            \
    }                                                                                            \
    int o = o0 + lx;                                                                             \
    if (o < out) {                                                                               \
        float bv = has_b ? ld_any(b + bo, bdt, o) : 0.0f;                                        \
        for (int r = 0; r < RT; r++) {                                                           \
            int i = i0 + ly * RT + r;                                                            \
            if (i < n) y[(long)i * ldy + o] = acc[r] + bv;                                       \
        }                                                                                        \
    }

/* Dense W (out, in) of dtype wdt, row stride ldw elements: item (lx, ly) loads W[o0 + row][k0 + lx]
 * (consecutive lx: consecutive k, coalesced). */
#define LOAD_DENSE                                                                               \
    for (int r = 0; r < RT; r++) {                                                               \
        int row = ly * RT + r, oo = o0 + row, k = k0 + lx;                                       \
        Ws[row][lx] = (oo < out && k < in) ? ld_any(w + wo, wdt, (long)oo * ldw + k) : 0.0f;     \
    }

__kernel __attribute__((reqd_work_group_size(TS, TS / RT, 1)))
void gemm_dense(int n, int in, int out,
                __global const float *x, ulong xo, long ldx,
                __global const uchar *w, ulong wo, long ldw, int wdt,
                __global const uchar *b, ulong bo, int bdt, int has_b,
                __global float *y, ulong yo, long ldy) {
    x += xo;
    y += yo;
    GEMM_BODY(LOAD_DENSE)
}

/* AWQ W^T (in, out): item (lx, ly) loads output column o0 + lx of input rows k0 + row, so
 * consecutive items read the same or the next packed word of one qweight row (coalesced); each
 * element is (q - z) * s with the group's zero and fp16 scale. */
#define LOAD_W4                                                                                  \
    for (int r = 0; r < RT; r++) {                                                               \
        int row = ly * RT + r, k = k0 + row, oo = o0 + lx;                                       \
        float v = 0.0f;                                                                          \
        if (oo < out && k < in) {                                                                \
            int c = oo >> 3, j = oo & 7, g = k / gs;                                             \
            uint qw = (uint)qweight[(long)k * ow + c];                                           \
            uint qz = (uint)qzeros[(long)g * ow + c];                                            \
            v = (awq_nib(qw, j) - awq_nib(qz, j)) * vload_half((long)g * out + oo, scales);      \
        }                                                                                        \
        Ws[lx][row] = v;                                                                         \
    }

__kernel __attribute__((reqd_work_group_size(TS, TS / RT, 1)))
void gemm_w4(int n, int in, int out, int gs,
             __global const float *x, ulong xo, long ldx,
             __global const int *qweight, ulong qwo, __global const int *qzeros, ulong qzo,
             __global const half *scales, ulong sco,
             __global const uchar *b, ulong bo, int bdt, int has_b,
             __global float *y, ulong yo, long ldy) {
    int ow = out >> 3;
    x += xo;
    y += yo;
    qweight += qwo;
    qzeros += qzo;
    scales += sco;
    GEMM_BODY(LOAD_W4)
}

/* ---- GEMV ---------------------------------------------------------------------------------- */

/* Work-group (GV_LX, GV_LY): each of the GV_LY rows of items owns one output o; its GV_LX items
 * stride over `in` (32 consecutive items read 32 consecutive weights of a row: one 128-byte
 * line for F32), then reduce in local memory. n <= GEMV_MAX_ROWS rows of x share each weight. */
#define GV_LX 32
#define GV_LY (LS / GV_LX)
__kernel __attribute__((reqd_work_group_size(GV_LX, GV_LY, 1)))
void gemv_dense(int n, int in, int out,
                __global const float *x, ulong xo, long ldx,
                __global const uchar *w, ulong wo, long ldw, int wdt,
                __global const uchar *b, ulong bo, int bdt, int has_b,
                __global float *y, ulong yo, long ldy) {
    __local float red[GV_LY][GV_LX + 1];
    int lx = get_local_id(0), ly = get_local_id(1);
    int o = get_group_id(1) * GV_LY + ly;
    x += xo;
    y += yo;
    __global const uchar *wr = w + wo;
    float acc[GEMV_MAX_ROWS] = {0.0f, 0.0f, 0.0f, 0.0f};
    if (o < out) {
        long wbase = (long)o * ldw;
        for (int k = lx; k < in; k += GV_LX) {
            float wv = ld_any(wr, wdt, wbase + k);
            for (int r = 0; r < GEMV_MAX_ROWS; r++)
                if (r < n) acc[r] = mad(x[(long)r * ldx + k], wv, acc[r]);
        }
    }
    for (int r = 0; r < n; r++) {
        red[ly][lx] = acc[r];
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int s = GV_LX / 2; s > 0; s >>= 1) {
            if (lx < s) red[ly][lx] += red[ly][lx + s];
            barrier(CLK_LOCAL_MEM_FENCE);
        }
        if (lx == 0 && o < out) y[(long)r * ldy + o] = red[ly][0] + (has_b ? ld_any(b + bo, bdt, o) : 0.0f);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
}

/* Work-group (WX, KSPLIT): item (lx, ly) owns NC consecutive packed columns starting at
 * c = (group_id * WX + lx) * NC (outputs 8c..8c+8NC-1) and the quantization groups g = ly,
 * ly + KSPLIT, ...; the partial sums of the KSPLIT items of a column are added in local memory.
 * NC = 4 reads each qweight row segment with one 128-bit load (vload4) per item (consecutive
 * items: consecutive 16-byte words, fully coalesced) and keeps 32 outputs in registers; NC = 1
 * serves widths that are not a multiple of 32. The 8 nibbles of a word are unpacked in
 * registers; the zero point enters as z * sum(x) and the fp16 scale once per group.
 * WX * KSPLIT == LS. */
#define KSPLIT 8
#define WX (LS / KSPLIT)
#define GEMV_W4(NAME, NC)                                                                        \
__kernel __attribute__((reqd_work_group_size(WX, KSPLIT, 1)))                                    \
void NAME(int n, int in, int out, int gs,                                                        \
          __global const float *x, ulong xo, long ldx,                                           \
          __global const int *qweight, ulong qwo, __global const int *qzeros, ulong qzo,         \
          __global const half *scales, ulong sco,                                                \
          __global const uchar *b, ulong bo, int bdt, int has_b,                                 \
          __global float *y, ulong yo, long ldy) {                                               \
    __local float part[KSPLIT][WX][8 * NC];                                                      \
    int lx = get_local_id(0), ly = get_local_id(1);                                              \
    int ow = out >> 3, c0 = (get_group_id(0) * WX + lx) * NC, G = in / gs;                       \
    x += xo;                                                                                     \
    y += yo;                                                                                     \
    qweight += qwo;                                                                              \
    qzeros += qzo;                                                                               \
    scales += sco;                                                                               \
    for (int r = 0; r < n; r++) {                                                                \
        float acc[8 * NC];                                                                       \
        for (int j = 0; j < 8 * NC; j++) acc[j] = 0.0f;                                          \
        if (c0 < ow) {                                                                           \
            __global const float *xr = x + (long)r * ldx;                                        \
            for (int g = ly; g < G; g += KSPLIT) {                                               \
                float ga[8 * NC], xs = 0.0f;                                                     \
                for (int j = 0; j < 8 * NC; j++) ga[j] = 0.0f;                                   \
                for (int k = g * gs; k < (g + 1) * gs; k++) {                                    \
                    uint qw[NC];                                                                 \
                    if (NC == 4) {                                                               \
                        uint4 v4 = as_uint4(vload4(0, qweight + (long)k * ow + c0));             \
                        qw[0] = v4.s0; qw[NC > 1 ? 1 : 0] = v4.s1;                               \
                        qw[NC > 2 ? 2 : 0] = v4.s2; qw[NC > 3 ? 3 : 0] = v4.s3;                  \
                    } else {                                                                     \
                        qw[0] = (uint)qweight[(long)k * ow + c0];                                \
                    }                                                                            \
                    float xv = xr[k];                                                            \
                    xs += xv;                                                                    \
                    for (int u = 0; u < NC; u++)                                                 \
                        for (int j = 0; j < 8; j++) ga[8 * u + j] = mad(xv, awq_nib(qw[u], j), ga[8 * u + j]); \
                }                                                                                \
                for (int u = 0; u < NC; u++) {                                                   \
                    uint zw = (uint)qzeros[(long)g * ow + c0 + u];                               \
                    for (int j = 0; j < 8; j++)                                                  \
                        acc[8 * u + j] = mad(vload_half((long)g * out + 8 * (c0 + u) + j, scales), \
                                             ga[8 * u + j] - awq_nib(zw, j) * xs, acc[8 * u + j]); \
                }                                                                                \
            }                                                                                    \
        }                                                                                        \
        for (int j = 0; j < 8 * NC; j++) part[ly][lx][j] = acc[j];                               \
        barrier(CLK_LOCAL_MEM_FENCE);                                                            \
        if (ly == 0 && c0 < ow) {                                                                \
            for (int j = 0; j < 8 * NC; j++) {                                                   \
                float s = 0.0f;                                                                  \
                for (int t = 0; t < KSPLIT; t++) s += part[t][lx][j];                            \
                int o = 8 * c0 + j;                                                              \
                y[(long)r * ldy + o] = s + (has_b ? ld_any(b + bo, bdt, o) : 0.0f);              \
            }                                                                                    \
        }                                                                                        \
        barrier(CLK_LOCAL_MEM_FENCE);                                                            \
    }                                                                                            \
}

GEMV_W4(gemv_w4, 1)
GEMV_W4(gemv_w4x4, 4)

/* ---- Gram matrix -------------------------------------------------------------------------- */

/* g (c, c) (+)= x^T x: item (lx, ly) of a TS x TS work-group computes g[i0 + ly][j0 + lx]; the
 * group stages x[t0 .. t0+TS)[i0 .. i0+TS) and [j0 ..) in local memory (consecutive lx read
 * consecutive columns of a token row: coalesced). */
__kernel __attribute__((reqd_work_group_size(TS, TS, 1)))
void gram(int n, int c, __global const float *x, ulong xo, long ldx,
          __global float *g, ulong go, long ldg, int accumulate) {
    __local float A[TS][TS + 1];
    __local float B[TS][TS + 1];
    int lx = get_local_id(0), ly = get_local_id(1);
    int j0 = get_group_id(0) * TS, i0 = get_group_id(1) * TS;
    x += xo;
    g += go;
    float acc = 0.0f;
    for (int t0 = 0; t0 < n; t0 += TS) {
        int t = t0 + ly;
        A[ly][lx] = (t < n && i0 + lx < c) ? x[(long)t * ldx + i0 + lx] : 0.0f;
        B[ly][lx] = (t < n && j0 + lx < c) ? x[(long)t * ldx + j0 + lx] : 0.0f;
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int tt = 0; tt < TS; tt++) acc = mad(A[tt][ly], B[tt][lx], acc);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    int i = i0 + ly, j = j0 + lx;
    if (i < c && j < c) {
        long idx = (long)i * ldg + j;
        g[idx] = accumulate ? g[idx] + acc : acc;
    }
}

/* ---- barrier-free blocked kernels (CPU-class OpenCL devices such as PoCL) ------------------ */
/*
 * On a device whose "work-group" is a loop on one core, local memory and barriers are pure
 * overhead; what pays is work per item and contiguous loads. Each item computes a block of up to
 * 4 rows x 4 outputs (dense) or 4 rows x 8 outputs (AWQ) straight from global memory, which the
 * core's caches serve. The host uses these on CL_DEVICE_TYPE_CPU devices (and when
 * AWQ_OPENCL_KERNELS=blocked); GPUs get the tiled kernels above.
 */
/* RB rows x 4 outputs per item; constant trip counts keep the accumulators in registers. */
#define DENSE_BLK_BODY(RB)                                                                       \
    {                                                                                            \
        long xr[RB], wr[4];                                                                      \
        for (int r = 0; r < RB; r++) xr[r] = (long)min(i0 + r, n - 1) * ldx;                     \
        for (int j = 0; j < 4; j++) wr[j] = (long)min(o0 + j, out - 1) * ldw;                    \
        float8 acc8[RB][4];                                                                      \
        for (int r = 0; r < RB; r++)                                                             \
            for (int j = 0; j < 4; j++) acc8[r][j] = (float8)(0.0f);                             \
        int k = 0;                                                                               \
        for (; k + 8 <= in; k += 8) {                                                            \
            float8 wv[4];                                                                        \
            for (int j = 0; j < 4; j++) wv[j] = ld8_any(wb, wdt, wr[j] + k);                     \
            for (int r = 0; r < RB; r++) {                                                       \
                float8 xv = vload8(0, x + xr[r] + k);                                            \
                for (int j = 0; j < 4; j++) acc8[r][j] = mad(xv, wv[j], acc8[r][j]);             \
            }                                                                                    \
        }                                                                                        \
        float acc[RB][4];                                                                        \
        for (int r = 0; r < RB; r++)                                                             \
            for (int j = 0; j < 4; j++) {                                                        \
                float4 h = acc8[r][j].lo + acc8[r][j].hi;                                        \
                acc[r][j] = (h.x + h.y) + (h.z + h.w);                                           \
            }                                                                                    \
        for (; k < in; k++)                                                                      \
            for (int r = 0; r < RB; r++)                                                         \
                for (int j = 0; j < 4; j++)                                                      \
                    acc[r][j] = mad(x[xr[r] + k], ld_any(wb, wdt, wr[j] + k), acc[r][j]);        \
        for (int j = 0; j < 4; j++) {                                                            \
            float bv = has_b && j < cb ? ld_any(b + bo, bdt, o0 + j) : 0.0f;                     \
            for (int r = 0; r < RB; r++)                                                         \
                if (r < rb && j < cb) y[(long)(i0 + r) * ldy + o0 + j] = acc[r][j] + bv;         \
        }                                                                                        \
    }

__kernel void gemm_blk(int n, int in, int out,
                       __global const float *x, ulong xo, long ldx,
                       __global const uchar *w, ulong wo, long ldw, int wdt,
                       __global const uchar *b, ulong bo, int bdt, int has_b,
                       __global float *y, ulong yo, long ldy) {
    int o0 = get_global_id(0) * 4, i0 = get_global_id(1) * 4;
    if (o0 >= out || i0 >= n) return;
    int rb = min(4, n - i0), cb = min(4, out - o0);
    x += xo;
    y += yo;
    __global const uchar *wb = w + wo;
    /* float8 accumulators: vertical FMAs on 256-bit vectors, one horizontal sum at the end */
    if (n == 1) DENSE_BLK_BODY(1)
    else DENSE_BLK_BODY(4)
}

#define W4_BLK_BODY(RB)                                                                          \
    {                                                                                            \
        const uint8 shift = (uint8)(0, 16, 4, 20, 8, 24, 12, 28);                                \
        long xr[RB];                                                                             \
        for (int r = 0; r < RB; r++) xr[r] = (long)min(i0 + r, n - 1) * ldx;                     \
        float8 acc[RB];                                                                          \
        for (int r = 0; r < RB; r++) acc[r] = (float8)(0.0f);                                    \
        for (int g = 0; g < G; g++) {                                                            \
            float8 ga[RB];                                                                       \
            float xs[RB];                                                                        \
            for (int r = 0; r < RB; r++) {                                                       \
                ga[r] = (float8)(0.0f);                                                          \
                xs[r] = 0.0f;                                                                    \
            }                                                                                    \
            for (int k = g * gs; k < (g + 1) * gs; k++) {                                        \
                float8 q = convert_float8(((uint8)((uint)qweight[(long)k * ow + c]) >> shift) & 0xfu); \
                for (int r = 0; r < RB; r++) {                                                   \
                    float xv = x[xr[r] + k];                                                     \
                    xs[r] += xv;                                                                 \
                    ga[r] = mad((float8)(xv), q, ga[r]);                                         \
                }                                                                                \
            }                                                                                    \
            float8 z = convert_float8(((uint8)((uint)qzeros[(long)g * ow + c]) >> shift) & 0xfu); \
            float8 sc = vload_half8(0, scales + (long)g * out + 8 * c);                          \
            for (int r = 0; r < RB; r++) acc[r] = mad(sc, ga[r] - z * xs[r], acc[r]);            \
        }                                                                                        \
        float8 bv = (float8)(0.0f);                                                              \
        if (has_b) {                                                                             \
            float bb[8];                                                                         \
            for (int j = 0; j < 8; j++) bb[j] = ld_any(b + bo, bdt, 8 * c + j);                  \
            bv = vload8(0, bb);                                                                  \
        }                                                                                        \
        for (int r = 0; r < RB; r++)                                                             \
            if (r < rb) vstore8(acc[r] + bv, 0, y + (long)(i0 + r) * ldy + 8 * c);               \
    }

/* Item (c, row block): packed column c (8 outputs) for up to 4 rows; consecutive items read
 * consecutive words of a qweight row, x is shared by all items. */
__kernel void gemm_w4_blk(int n, int in, int out, int gs,
                          __global const float *x, ulong xo, long ldx,
                          __global const int *qweight, ulong qwo, __global const int *qzeros, ulong qzo,
                          __global const half *scales, ulong sco,
                          __global const uchar *b, ulong bo, int bdt, int has_b,
                          __global float *y, ulong yo, long ldy) {
    int c = get_global_id(0), i0 = get_global_id(1) * 4, ow = out >> 3;
    if (c >= ow || i0 >= n) return;
    int rb = min(4, n - i0), G = in / gs;
    x += xo;
    y += yo;
    qweight += qwo;
    qzeros += qzo;
    scales += sco;
    /* the 8 outputs of a packed word are the 8 lanes of a float8: logical column j sits at bit
     * 4 * ((j >> 1) + 4 * (j & 1)). Row loops have constant trip counts (RB = 4, or 1 for
     * decode) so the accumulators stay in registers; rows past n repeat the last row. */
    if (n == 1) W4_BLK_BODY(1)
    else W4_BLK_BODY(4)
}
