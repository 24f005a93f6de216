/*
 * test_ops.c - cross-backend op test: every op of every loaded backend other than the built-in
 * "cpu" (cpu-dnnl, opencl, ...) against the built-in "cpu" backend, which is the reference.
 *
 * The backend under test only sees its own buffers: inputs are made on the host, placed at a
 * 16-byte-multiple offset inside a larger device buffer (ops->buffer_alloc + ops->upload, with
 * poison bytes around them), the op runs, and the whole buffer is read back (ops->download) and
 * compared with the same op run by "cpu" on host copies. A device tensor's data is never
 * dereferenced. Besides the outputs, every case checks that row padding and the bytes around
 * each tensor are untouched and that inputs are unchanged.
 *
 * Backends: every loaded backend except "cpu"; device 0, or every device of "opencl" when
 * AWQ_TEST_OPENCL_ALL_DEVICES is set. AWQ_TEST_OPS_BACKEND=name tests only that backend and
 * AWQ_TEST_OPS_ONLY=a,b,... only those test groups (the per-kernel-family runs of extra.cmake). None loaded -> exit 77 (skip), unless AWQ_REQUIRE_OPENCL=1,
 * which makes a missing "opencl" a failure.
 *
 * Tolerances, err = |got - ref| per element (ref = cpu backend); "row" = max |ref| over the
 * innermost row of the output, "|ref|" = the element itself:
 *
 *   op            criterion                                   why
 *   memory ops    exact bytes                                 copies
 *   matmul        err <= 1e-4 * row + 1e-6                    fp32 dots, other summation order
 *   matmul_w4a16  err <= 1e-4 * row + 1e-6                    same (plain and weight_prepare)
 *   (cuda, cuda-emu: matmul with F16 weights and matmul_w4a16 above 8 rows, or at any size when a
 *    Tensor-Core / cuBLAS family is forced, round x and the dequantized weight to fp16 before the
 *    product, as AutoAWQ and vLLM do: err <= 4e-3 * row + 1e-5 there (2^-11 relative per rounded
 *    factor, summed over K, against the max of a row that may hold only 8 outputs); the fp32 GEMV/SIMT paths keep
 *    the rule above)
 *   w4a16 exact   exact (integer-valued x, power-of-two scales, zero points 0 and 15: every
 *                 product and partial sum is representable, so every backend and kernel family,
 *                 Tensor Cores included, must give the cpu's bits)
 *   rmsnorm       err <= 1e-5 * |ref| + 1e-7                  one reduction, rsqrt
 *   rope          err <= 1e-5 * row + 1e-7                    sin/cos of fp32 angle (pos * inv_freq)
 *   attention     err <= 1e-4 * row + 1e-6                    dots, exp, online softmax
 *   attention_softcap  as attention                           plus cap * tanh(s / cap) per score
 *   silu_mul      err <= 2e-6 * |ref| + 1e-12                 exp and a divide per element
 *   act_mul       gelu_tanh: err <= 1e-5 * |ref| + 5e-6       tanh of the device's libm; 1 + tanh
 *                 (silu: as silu_mul)                         cancels for very negative gates
 *   softcap       err <= 1e-5 * |ref| + 1e-7                  cap * tanh(x / cap)
 *   binop         err <= 1e-6 * |ref|                         one fp32 op (div: a few ulp)
 *   get_rows      err <= 1e-6 * |ref|  (i.e. exact)           copies; a bad id -> error + reason
 *   convert       err <= 1e-6 * |ref|  (exact for F16/BF16)   round to nearest even, NaN = NaN
 *   fake_quant    err <= 1e-6 * (|ref| + step) per element, or exactly one quantization step
 *                 (step = S/s: a rounding that flips at a .5 tie) on < 0.5% of the elements
 *   quantize_w4   exact: codes, zeros and the fp16 scale bits
 *   reduce        MEAN_ABS, WMEAN: err <= 1e-5 * |ref| + 1e-9; MAX_ABS: exact
 *   scalar        err <= 1e-6 * sum |terms| (computed here)   double accumulation
 *   clip_search   >= 99% of the groups choose exactly the reference's max; the rest an adjacent
 *                 candidate (the two errors are within float noise)
 *   gram          err <= 1e-4 * row + 1e-6                    fp32 dots over n rows
 *
 * Inputs are N(0, 1)-like (test_rng_normal) unless an op needs a particular range. Each case
 * prints: op, shape, max err, the rule above and the worst err/limit ratio (<= 1 passes), PASS/FAIL.
 * Optional ops a backend leaves NULL are reported as "not provided" and skipped.
 */
#include <stdarg.h>

#include "cpu_ref_common.h"

/* The reference: the built-in cpu backend on host memory. OPS/CTX (cpu_ref_common.h) are the
 * backend under test. */
static const awq_backend_ops *REF;
static awq_backend_ctx *RCTX;

#define GUARD  64   /* poison bytes after each tensor image */
#define POISON 0x7f /* 0x7f7f7f7f is a huge finite float */

/* ---- tolerances ------------------------------------------------------------------------- */

typedef enum { BY_ELEM, BY_ROW } tol_scale;
typedef struct tol {
    double atol, rtol;
    tol_scale by;
} tol;

static const tol TOL_EXACT = {0, 0, BY_ELEM};
static const tol TOL_MATMUL = {1e-6, 1e-4, BY_ROW};
static const tol TOL_RMSNORM = {1e-7, 1e-5, BY_ELEM};
static const tol TOL_ROPE = {1e-7, 1e-5, BY_ROW};
static const tol TOL_ATTENTION = {1e-6, 1e-4, BY_ROW};
static const tol TOL_SILU = {1e-12, 2e-6, BY_ELEM};
static const tol TOL_GELU = {5e-6, 1e-5, BY_ELEM};    /* tanh (device libm): 1 + tanh cancels for g << 0 */
static const tol TOL_SOFTCAP = {1e-7, 1e-5, BY_ELEM}; /* cap * tanh(x / cap) */
static const tol TOL_ELEMWISE = {0, 1e-6, BY_ELEM};   /* binop, get_rows, convert */
static const tol TOL_REDUCE = {1e-9, 1e-5, BY_ELEM};
static const tol TOL_GRAM = {1e-6, 1e-4, BY_ROW};
static const tol TOL_MATMUL_FP16ACT = {1e-5, 4e-3, BY_ROW};
/* The backend under test rounds GEMM activations to fp16 above the GEMV sizes (cuda, cuda-emu). */
static bool FP16_ACT;
/* w4: a W4A16 product; else a dense one with fp16_w (F16 weights). Above 8 rows, or at any size when
 * AWQ_CUDA_W4=tc|dequant / AWQ_CUDA_DENSE=blas force a Tensor-Core or cuBLAS path, the cuda backends
 * may round x to fp16; forced GEMV/SIMT paths never do. */
static tol tol_mm(int64_t n, bool w4, bool fp16_w) {
    if (!FP16_ACT || (!w4 && !fp16_w)) return TOL_MATMUL;
    const char *f = getenv(w4 ? "AWQ_CUDA_W4" : "AWQ_CUDA_DENSE");
    if (f && *f) {
        bool rounds = w4 ? (strcmp(f, "tc") == 0 || strcmp(f, "dequant") == 0) : strcmp(f, "blas") == 0;
        return rounds ? TOL_MATMUL_FP16ACT : TOL_MATMUL;
    }
    return n > 8 ? TOL_MATMUL_FP16ACT : TOL_MATMUL;
}
#define SCALAR_RTOL         1e-6
#define FQ_MAX_FLIP_FRAC    0.005
#define CLIP_MIN_EXACT_FRAC 0.99

static const char *tol_str(tol t, char *buf, size_t cap) {
    if (t.rtol == 0 && t.atol == 0)
        snprintf(buf, cap, "exact");
    else
        snprintf(buf, cap, "%.0e*%s+%.0e", t.rtol, t.by == BY_ROW ? "row" : "|ref|", t.atol);
    return buf;
}

/* ---- one test case: its outputs, max error, PASS/FAIL line ------------------------------ */

typedef struct ocase {
    char op[24];
    char desc[200];
    char rule[48];
    double maxerr; /* largest err seen */
    double ratio;  /* largest err/limit: <= 1 passes */
    int bad;
} ocase;

static void case_begin(ocase *c, const char *op, const char *fmt, ...) AWQ_PRINTF(3, 4);
static void case_begin(ocase *c, const char *op, const char *fmt, ...) {
    memset(c, 0, sizeof *c);
    snprintf(c->op, sizeof c->op, "%s", op);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->desc, sizeof c->desc, fmt, ap);
    va_end(ap);
}

static void case_fail(ocase *c, const char *fmt, ...) AWQ_PRINTF(2, 3);
static void case_fail(ocase *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    printf("    %s %s: ", c->op, c->desc);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    c->bad++;
}

/* Records a failed op status with the runtime's error detail. */
static void case_status(ocase *c, const char *who, awq_status st) {
    if (st != AWQ_OK)
        case_fail(c, "%s returned %s (%s)", who, awq_status_str(st), awq_runtime_last_error(RT));
}

/* Prints the case line; returns 1 if it failed. */
static int case_end(ocase *c) {
    if (!c->rule[0]) snprintf(c->rule, sizeof c->rule, "exact");
    printf("  %-13s %-62s maxerr %-9.2e tol %s (worst err/limit %.2g)  %s\n", c->op, c->desc, c->maxerr,
           c->rule, c->ratio, c->bad ? "FAIL" : "PASS");
    fflush(stdout);
    return c->bad != 0;
}

/* ---- device buffers holding one tensor image -------------------------------------------- */

typedef struct tbuf {
    size_t bytes;        /* image size */
    size_t offs;         /* image offset in the device buffer (a multiple of 16) */
    size_t total;        /* device buffer size: offs + bytes + GUARD */
    unsigned char *ref;  /* host image the reference works on */
    unsigned char *init; /* the image as uploaded */
    unsigned char *got;  /* the whole device buffer as downloaded */
    void *dev;           /* device buffer */
} tbuf;

static size_t next_offs(void) {
    static const size_t offs[] = {16, 0, 48, 208, 32, 1040, 96};
    static unsigned i = 0;
    return offs[i++ % (sizeof offs / sizeof offs[0])];
}

static void tb_init(tbuf *b, size_t bytes) {
    memset(b, 0, sizeof *b);
    b->bytes = bytes;
    b->ref = balloc((int64_t)bytes);
}

static void tb_free(tbuf *b) {
    if (b->dev) OPS->buffer_free(CTX, b->dev);
    free(b->ref);
    free(b->init);
    free(b->got);
    memset(b, 0, sizeof *b);
}

/* Allocates the device buffer and uploads poison around the image and the image itself. */
static void tb_upload(ocase *c, tbuf *b) {
    if (c->bad) return;
    b->offs = next_offs();
    b->total = b->offs + b->bytes + GUARD;
    awq_status st = OPS->buffer_alloc(CTX, b->total, &b->dev);
    if (st != AWQ_OK) {
        b->dev = NULL;
        case_fail(c, "buffer_alloc(%zu) failed: %s (%s)", b->total, awq_status_str(st),
                  awq_runtime_last_error(RT));
        return;
    }
    unsigned char *poison = balloc((int64_t)b->total);
    memset(poison, POISON, b->total);
    st = OPS->upload(CTX, b->dev, 0, poison, b->total);
    free(poison);
    if (st == AWQ_OK) st = OPS->upload(CTX, b->dev, b->offs, b->ref, b->bytes);
    if (st != AWQ_OK) case_fail(c, "upload failed: %s (%s)", awq_status_str(st), awq_runtime_last_error(RT));
    b->init = balloc((int64_t)b->bytes);
    memcpy(b->init, b->ref, b->bytes);
}

/* Downloads the whole device buffer into b->got. */
static int tb_download(ocase *c, tbuf *b) {
    if (!b->dev) return 1;
    if (!b->got) b->got = balloc((int64_t)b->total);
    awq_status st = OPS->synchronize(CTX);
    if (st == AWQ_OK) st = OPS->download(CTX, b->got, b->dev, 0, b->total);
    if (st != AWQ_OK) {
        case_fail(c, "synchronize/download failed: %s (%s)", awq_status_str(st), awq_runtime_last_error(RT));
        return 1;
    }
    return 0;
}

/* Checks the poison around the image. */
static void tb_check_guard(ocase *c, const tbuf *b, const char *name) {
    for (size_t i = 0; i < b->total; i++) {
        if (i == b->offs) i += b->bytes;
        if (i < b->total && b->got[i] != POISON) {
            case_fail(c, "%s: byte %lld outside the tensor image was written", name,
                      (long long)i - (long long)b->offs);
            return;
        }
    }
}

/* An input must come back unchanged. */
static void tb_check_input(ocase *c, tbuf *b, const char *name) {
    if (c->bad || tb_download(c, b)) return;
    if (memcmp(b->got + b->offs, b->init, b->bytes) != 0) case_fail(c, "input %s was modified", name);
    tb_check_guard(c, b, name);
}

/* A view (offs relative to the image) placed on the reference image or the device buffer. */
static awq_tensor on_ref(const tbuf *b, awq_tensor t) {
    t.data = b->ref;
    return t;
}
static awq_tensor on_dev(const tbuf *b, awq_tensor t) {
    t.data = b->dev;
    t.offs += b->offs;
    return t;
}

/* ---- views ------------------------------------------------------------------------------ */

static awq_tensor v1(awq_dtype t, int64_t n) { return awq_tensor_1d(t, NULL, 0, n); }
/* (rows, cols) with a row stride of ld elements. */
static awq_tensor v2(awq_dtype t, int64_t rows, int64_t cols, int64_t ld) {
    awq_tensor x = awq_tensor_2d(t, NULL, 0, rows, cols);
    x.nb[0] = ld * (int64_t)awq_dtype_size_inline(t);
    return x;
}
/* 3-D/4-D F32 view with explicit strides in elements (innermost contiguous). */
static awq_tensor vn(int ndim, const int64_t *ne, const int64_t *st) {
    awq_tensor x;
    memset(&x, 0, sizeof x);
    x.type = AWQ_DTYPE_F32;
    x.ndim = ndim;
    for (int i = 0; i < 4; i++) {
        x.ne[i] = i < ndim ? ne[i] : 1;
        x.nb[i] = i < ndim ? st[i] * 4 : 4;
    }
    return x;
}
/* Bytes from the image start to the end of the view's last element. */
static size_t span(const awq_tensor *t) {
    int64_t s = (int64_t)awq_dtype_size_inline(t->type);
    for (int i = 0; i < t->ndim; i++) s += (t->ne[i] - 1) * t->nb[i];
    return t->offs + (size_t)s;
}

/* ---- element access over views (host images only) --------------------------------------- */

static double ld_elem(const unsigned char *row, awq_dtype t, int64_t i) {
    if (t == AWQ_DTYPE_U8) return row[i];
    if (t == AWQ_DTYPE_I32) {
        int32_t v;
        memcpy(&v, row + 4 * i, 4);
        return v;
    }
    return ref_load(row, t, i);
}

/* Byte offsets of the rows (all but the innermost index) of view t; returns the count. */
static int64_t row_offsets(const awq_tensor *t, int64_t **out) {
    int64_t n = awq_tensor_rows(t);
    int64_t *o = calloc((size_t)(n > 0 ? n : 1), sizeof(int64_t));
    if (!o) abort();
    for (int64_t r = 0; r < n; r++) {
        int64_t rem = r, off = (int64_t)t->offs;
        for (int d = t->ndim - 2; d >= 0; d--) {
            off += (rem % t->ne[d]) * t->nb[d];
            rem /= t->ne[d];
        }
        o[r] = off;
    }
    *out = o;
    return n;
}

/* Fills every element of an image with random values of dtype t (N(0,1) * scale). */
static void fill_img(tbuf *b, awq_dtype t, double scale) {
    size_t es = awq_dtype_size_inline(t);
    for (size_t i = 0; i + es <= b->bytes; i += es) ref_store(b->ref + i, t, 0, rndn() * scale);
}

/* Compares output view v of b (downloaded) with the reference image. Bytes of the image outside
 * the view must be identical to the reference (row padding untouched) and the guard intact. */
static void cmp_out(ocase *c, tbuf *b, awq_tensor v, tol t, const char *name) {
    if (c->bad || tb_download(c, b)) return;
    tol_str(t, c->rule, sizeof c->rule);
    const unsigned char *got = b->got + b->offs;
    unsigned char *mask = balloc((int64_t)b->bytes);
    int64_t *ro, nr = row_offsets(&v, &ro), cols = awq_tensor_cols(&v);
    size_t es = awq_dtype_size_inline(v.type);
    int64_t nbad = 0;
    for (int64_t r = 0; r < nr; r++) {
        const unsigned char *rr = b->ref + ro[r], *gr = got + ro[r];
        memset(mask + ro[r], 1, (size_t)cols * es);
        double rowmax = 0;
        for (int64_t j = 0; j < cols && t.by == BY_ROW; j++) {
            double a = fabs(ld_elem(rr, v.type, j));
            if (isfinite(a)) rowmax = a > rowmax ? a : rowmax;
        }
        for (int64_t j = 0; j < cols; j++) {
            double a = ld_elem(rr, v.type, j), g = ld_elem(gr, v.type, j);
            double lim = t.atol + t.rtol * (t.by == BY_ROW ? rowmax : isfinite(a) ? fabs(a) : 0.0);
            double err;
            if (isnan(a) || isnan(g))
                err = isnan(a) && isnan(g) ? 0.0 : INFINITY;
            else if (isinf(a) || isinf(g))
                err = a == g ? 0.0 : INFINITY;
            else
                err = fabs(a - g);
            double ratio = lim > 0 ? err / lim : (err > 0 ? INFINITY : 0.0);
            if (err > c->maxerr) c->maxerr = err;
            if (ratio > c->ratio) c->ratio = ratio;
            if (!(err <= lim)) {
                if (nbad++ < 3)
                    printf("    %s %s: %s row %lld col %lld: got %.9g, ref %.9g (limit %.3g)\n", c->op,
                           c->desc, name, (long long)r, (long long)j, g, a, lim);
            }
        }
    }
    if (nbad) {
        c->bad++;
        printf("    %s %s: %s: %lld element(s) out of tolerance\n", c->op, c->desc, name, (long long)nbad);
    }
    for (size_t i = 0; i < b->bytes; i++)
        if (!mask[i] && got[i] != b->ref[i]) {
            case_fail(c, "%s: byte %zu of the image outside the view (row padding) was written", name, i);
            break;
        }
    tb_check_guard(c, b, name);
    free(mask);
    free(ro);
}

static const char *dt(awq_dtype t) {
    return t == AWQ_DTYPE_F16 ? "F16" : t == AWQ_DTYPE_BF16 ? "BF16" : t == AWQ_DTYPE_F32 ? "F32" : "?";
}
#define NO_BIAS AWQ_DTYPE_COUNT_
static const char *bias_name(int b) { return b == (int)NO_BIAS ? "none" : dt((awq_dtype)b); }

/* ---- memory ops --------------------------------------------------------------------------- */

TEST(memory) {
    const size_t n = 3000;
    unsigned char *h = balloc((int64_t)n), *model = balloc((int64_t)n), *got = balloc((int64_t)n);
    for (size_t i = 0; i < n; i++) h[i] = (unsigned char)rndi(256);
    memcpy(model, h, n);
    void *buf = NULL, *tiny = NULL;
    ocase c;
    case_begin(&c, "memory", "alloc/upload/memset_zero/download, %zu bytes, odd offsets", n);
    awq_status st = OPS->buffer_alloc(CTX, n, &buf);
    case_status(&c, "buffer_alloc", st);
    if (!c.bad) {
        case_status(&c, "upload", OPS->upload(CTX, buf, 0, h, n));
        case_status(&c, "memset_zero", OPS->memset_zero(CTX, buf, 48, 1001));
        memset(model + 48, 0, 1001);
        case_status(&c, "upload@2003", OPS->upload(CTX, buf, 2003, h + 7, 37));
        memcpy(model + 2003, h + 7, 37);
        case_status(&c, "memset_zero@2999", OPS->memset_zero(CTX, buf, 2999, 1));
        model[2999] = 0;
        case_status(&c, "synchronize", OPS->synchronize(CTX));
        case_status(&c, "download", OPS->download(CTX, got, buf, 0, n));
        if (!c.bad && memcmp(got, model, n) != 0) case_fail(&c, "full download differs");
        memset(got, 0, n);
        case_status(&c, "download@777", OPS->download(CTX, got, buf, 777, 100));
        if (!c.bad && memcmp(got, model + 777, 100) != 0) case_fail(&c, "partial download at 777 differs");
        case_status(&c, "buffer_alloc(1)", OPS->buffer_alloc(CTX, 1, &tiny));
        if (tiny) {
            unsigned char one = 0x5a, back = 0;
            case_status(&c, "upload(1)", OPS->upload(CTX, tiny, 0, &one, 1));
            case_status(&c, "download(1)", OPS->download(CTX, &back, tiny, 0, 1));
            if (!c.bad && back != one) case_fail(&c, "1-byte buffer round trip differs");
            OPS->buffer_free(CTX, tiny);
        }
    }
    if (buf) OPS->buffer_free(CTX, buf);
    free(h);
    free(model);
    free(got);
    ASSERT(!case_end(&c));
}

/* ---- matmul ------------------------------------------------------------------------------- */

static int mm_case(int64_t n, int64_t in, int64_t out, awq_dtype wt, int bias) {
    ocase c;
    case_begin(&c, "matmul", "n=%lld in=%lld out=%lld W=%s bias=%s", (long long)n, (long long)in,
               (long long)out, dt(wt), bias_name(bias));
    awq_tensor vx = v2(AWQ_DTYPE_F32, n, in, in + 3), vy = v2(AWQ_DTYPE_F32, n, out, out + 5);
    awq_tensor vw = v2(wt, out, in, in + (wt == AWQ_DTYPE_F32 ? 1 : 2));
    awq_tensor vb = v1(bias == (int)NO_BIAS ? AWQ_DTYPE_F32 : (awq_dtype)bias, out);
    tbuf X, W, B, Y;
    tb_init(&X, span(&vx));
    tb_init(&W, span(&vw));
    tb_init(&B, span(&vb));
    tb_init(&Y, span(&vy));
    fill_img(&X, AWQ_DTYPE_F32, 1.0);
    fill_img(&W, wt, 0.5);
    fill_img(&B, vb.type, 1.0);
    fill_img(&Y, AWQ_DTYPE_F32, 100.0);
    tb_upload(&c, &X);
    tb_upload(&c, &W);
    tb_upload(&c, &B);
    tb_upload(&c, &Y);
    if (!c.bad) {
        awq_tensor ry = on_ref(&Y, vy), rx = on_ref(&X, vx), rw = on_ref(&W, vw), rb = on_ref(&B, vb);
        awq_tensor dy = on_dev(&Y, vy), dx = on_dev(&X, vx), dw = on_dev(&W, vw), db = on_dev(&B, vb);
        bool hb = bias != (int)NO_BIAS;
        case_status(&c, "cpu", REF->matmul(RCTX, &ry, &rx, &rw, hb ? &rb : NULL));
        case_status(&c, BE_NAME, OPS->matmul(CTX, &dy, &dx, &dw, hb ? &db : NULL));
    }
    cmp_out(&c, &Y, vy, tol_mm(n, false, wt == AWQ_DTYPE_F16), "y");
    tb_check_input(&c, &X, "x");
    tb_check_input(&c, &W, "w");
    tb_check_input(&c, &B, "bias");
    tb_free(&X);
    tb_free(&W);
    tb_free(&B);
    tb_free(&Y);
    return case_end(&c);
}

TEST(matmul) {
    static const int64_t shapes[][3] = {{1, 192, 1536},  {3, 576, 40}, {17, 192, 200},  {67, 576, 8},
                                        {130, 576, 200}, {1, 37, 67},  {130, 100, 1536}};
    static const awq_dtype wts[] = {AWQ_DTYPE_F32, AWQ_DTYPE_F16, AWQ_DTYPE_BF16};
    static const int biases[] = {NO_BIAS, AWQ_DTYPE_F32, AWQ_DTYPE_F16, AWQ_DTYPE_BF16};
    int bad = 0;
    for (int s = 0; s < 7; s++)
        for (int t = 0; t < 3; t++) /* every (W, bias) pair occurs over the shapes */
            bad += mm_case(shapes[s][0], shapes[s][1], shapes[s][2], wts[t], biases[(s + t) % 4]);
    ASSERT_MSG(bad == 0, "%d matmul case(s) failed", bad);
}

/* ---- matmul_w4a16 --------------------------------------------------------------------------- */

/* Packs 8 nibbles (column j of the word holds value v[j]) in AutoAWQ's order [0,2,4,6,1,3,5,7]. */
static uint32_t pack8(const int *v) {
    static const int order[8] = {0, 2, 4, 6, 1, 3, 5, 7};
    uint32_t w = 0;
    for (int i = 0; i < 8; i++) w |= (uint32_t)(v[order[i]] & 15) << (4 * i);
    return w;
}

/* AWQ GEMM-layout linear (in, out, gs) with optional bias, plain or weight_prepare'd. Random
 * nibbles, scales and x; or, when exact, integer-valued x in [-4, 4], power-of-two scales, zero
 * points 0, 15 or random and an integer-valued bias, for which every kernel must be bit-exact. */
static int w4_case_x(int64_t n, int64_t in, int64_t out, int64_t gs, int bias, bool prepare, bool exact) {
    ocase c;
    case_begin(&c, exact ? "w4a16 exact" : "matmul_w4a16", "n=%lld in=%lld out=%lld gs=%lld bias=%s %s",
               (long long)n, (long long)in, (long long)out, (long long)gs, bias_name(bias),
               prepare ? "prepared" : "plain");
    int64_t G = in / gs, ow = out / 8;
    awq_tensor vx = v2(AWQ_DTYPE_F32, n, in, in + 1), vy = v2(AWQ_DTYPE_F32, n, out, out + 3);
    awq_tensor vq = v2(AWQ_DTYPE_I32, in, ow, ow), vz = v2(AWQ_DTYPE_I32, G, ow, ow);
    awq_tensor vs = v2(AWQ_DTYPE_F16, G, out, out);
    awq_tensor vb = v1(bias == (int)NO_BIAS ? AWQ_DTYPE_F16 : (awq_dtype)bias, out);
    tbuf X, Y, Q, Z, S, B;
    tb_init(&X, span(&vx));
    tb_init(&Y, span(&vy));
    tb_init(&Q, span(&vq));
    tb_init(&Z, span(&vz));
    tb_init(&S, span(&vs));
    tb_init(&B, span(&vb));
    fill_img(&X, AWQ_DTYPE_F32, 1.0);
    fill_img(&Y, AWQ_DTYPE_F32, 100.0);
    for (size_t i = 0; i < Q.bytes; i += 4) { /* random nibbles: any word is a valid packing */
        uint32_t w = (uint32_t)test_rng_next(&RNG);
        memcpy(Q.ref + i, &w, 4);
    }
    for (size_t i = 0; i < Z.bytes; i += 4) {
        uint32_t w = (uint32_t)test_rng_next(&RNG);
        memcpy(Z.ref + i, &w, 4);
    }
    for (size_t i = 0; i < S.bytes; i += 2)
        ref_store(S.ref + i, AWQ_DTYPE_F16, 0, 0.001 + 0.02 * fabs(rnd()));
    fill_img(&B, vb.type, 1.0);
    if (exact) {
        for (size_t i = 0; i + 4 <= X.bytes; i += 4)
            ref_store(X.ref + i, AWQ_DTYPE_F32, 0, (double)((int)(test_rng_next(&RNG) % 9) - 4));
        for (size_t i = 0; i < S.bytes; i += 2)
            ref_store(S.ref + i, AWQ_DTYPE_F16, 0, ldexp(1.0, (int)(test_rng_next(&RNG) % 4) - 2));
        for (size_t i = 0; i < Z.bytes; i += 4) { /* zero points 0, 15 and random, by column group */
            int v[8];
            for (int j = 0; j < 8; j++) {
                unsigned r = (unsigned)(test_rng_next(&RNG) % 3);
                v[j] = r == 0 ? 0 : r == 1 ? 15 : (int)(test_rng_next(&RNG) % 16);
            }
            uint32_t w = pack8(v);
            memcpy(Z.ref + i, &w, 4);
        }
        size_t bes = awq_dtype_size_inline(vb.type);
        for (size_t i = 0; i + bes <= B.bytes; i += bes)
            ref_store(B.ref + i, vb.type, 0, (double)((int)(test_rng_next(&RNG) % 17) - 8));
    }
    tb_upload(&c, &X);
    tb_upload(&c, &Y);
    tb_upload(&c, &Q);
    tb_upload(&c, &Z);
    tb_upload(&c, &S);
    tb_upload(&c, &B);
    if (!c.bad) {
        bool hb = bias != (int)NO_BIAS;
        awq_qlinear rw, dw;
        memset(&rw, 0, sizeof rw);
        rw.in = in;
        rw.out = out;
        rw.group_size = gs;
        dw = rw;
        rw.qweight = on_ref(&Q, vq);
        rw.qzeros = on_ref(&Z, vz);
        rw.scales = on_ref(&S, vs);
        rw.bias = on_ref(&B, vb);
        dw.qweight = on_dev(&Q, vq);
        dw.qzeros = on_dev(&Z, vz);
        dw.scales = on_dev(&S, vs);
        dw.bias = on_dev(&B, vb);
        if (!hb) rw.bias.data = dw.bias.data = NULL;
        awq_tensor ry = on_ref(&Y, vy), rx = on_ref(&X, vx), dy = on_dev(&Y, vy), dx = on_dev(&X, vx);
        case_status(&c, "cpu", REF->matmul_w4a16(RCTX, &ry, &rx, &rw));
        bool prepared = false;
        if (prepare) {
            awq_status st = OPS->weight_prepare(CTX, &dw);
            case_status(&c, "weight_prepare", st);
            prepared = st == AWQ_OK;
        }
        if (!c.bad) case_status(&c, BE_NAME, OPS->matmul_w4a16(CTX, &dy, &dx, &dw));
        if (!c.bad) cmp_out(&c, &Y, vy, exact ? TOL_EXACT : tol_mm(n, true, false), "y");
        if (prepared) {
            if (OPS->weight_release) OPS->weight_release(CTX, &dw);
            if (dw.prepared) case_fail(&c, "weight_release left w->prepared set");
        }
    }
    tb_check_input(&c, &X, "x");
    tb_check_input(&c, &Q, "qweight");
    tb_check_input(&c, &Z, "qzeros");
    tb_check_input(&c, &S, "scales");
    tb_check_input(&c, &B, "bias");
    tb_free(&X);
    tb_free(&Y);
    tb_free(&Q);
    tb_free(&Z);
    tb_free(&S);
    tb_free(&B);
    return case_end(&c);
}

static int w4_case(int64_t n, int64_t in, int64_t out, int64_t gs, int bias, bool prepare) {
    return w4_case_x(n, in, out, gs, bias, prepare, false);
}

TEST(matmul_w4a16) {
    static const int64_t cases[][4] = {/* n, in, out, gs */
                                       {1, 192, 1536, 64}, {3, 576, 40, 32},     {17, 384, 200, 128},
                                       {67, 576, 8, 64},   {130, 256, 200, 128}, {1, 576, 40, 32},
                                       {40, 192, 1536, 32}};
    static const int biases[] = {NO_BIAS, AWQ_DTYPE_F16, AWQ_DTYPE_F32, AWQ_DTYPE_BF16};
    if (!OPS->weight_prepare) printf("  op weight_prepare: not provided\n");
    int bad = 0;
    for (int i = 0; i < 7; i++)
        for (int p = 0; p < (OPS->weight_prepare ? 2 : 1); p++)
            bad += w4_case(cases[i][0], cases[i][1], cases[i][2], cases[i][3], biases[i % 4], p == 1);
    ASSERT_MSG(bad == 0, "%d matmul_w4a16 case(s) failed", bad);
}

/* Every row count from 1 to 17, then 33 and 130 (GEMV sizes, Tensor-Core tile edges, several
 * tiles), N not a multiple of any tile, the three group sizes. */
TEST(matmul_w4a16_shapes) {
    static const int64_t ns[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 33, 130};
    static const int64_t outs[] = {72, 200, 8, 136};
    static const int64_t gss[] = {32, 64, 128};
    static const int biases[] = {NO_BIAS, AWQ_DTYPE_F16, AWQ_DTYPE_F32, AWQ_DTYPE_BF16};
    int bad = 0;
    for (int i = 0; i < 19; i++) {
        int64_t gs = gss[i % 3];
        bad += w4_case(ns[i], gs * (2 + i % 3), outs[i % 4], gs, biases[i % 4], OPS->weight_prepare && i % 2);
    }
    ASSERT_MSG(bad == 0, "%d matmul_w4a16 shape case(s) failed", bad);
}

/* Integer-valued data: bit-exact on every path (see the table at the top). */
TEST(matmul_w4a16_exact) {
    static const int64_t cases[][4] = {/* n, in, out, gs */
                                       {1, 256, 200, 64},  {5, 128, 72, 32},  {8, 384, 136, 128},
                                       {17, 256, 200, 32}, {33, 512, 72, 64}, {130, 256, 264, 128}};
    static const int biases[] = {NO_BIAS, AWQ_DTYPE_F16, AWQ_DTYPE_F32};
    int bad = 0;
    for (int i = 0; i < 6; i++)
        bad += w4_case_x(cases[i][0], cases[i][1], cases[i][2], cases[i][3], biases[i % 3],
                         OPS->weight_prepare && i % 2, true);
    ASSERT_MSG(bad == 0, "%d exact matmul_w4a16 case(s) failed", bad);
}

/* matmul_w4a16_multi (optional): 2 or 3 linears sharing x (fused q/k/v, gate/up) in one call must
 * equal the cpu's separate products; decode sizes (the fused GEMV) and a larger batch. */
static int w4_multi_case(int nw, int64_t n, int64_t in, const int64_t *outs, int64_t gs) {
    ocase c;
    case_begin(&c, "w4a16 multi", "nw=%d n=%lld in=%lld out=%lld/%lld%s gs=%lld", nw, (long long)n,
               (long long)in, (long long)outs[0], (long long)outs[1], nw > 2 ? "/.." : "", (long long)gs);
    int64_t G = in / gs;
    awq_tensor vx = v2(AWQ_DTYPE_F32, n, in, in + 1);
    tbuf X, Y[3], Q[3], Z[3], S[3];
    awq_tensor vy[3], vq[3], vz[3], vs[3];
    tb_init(&X, span(&vx));
    fill_img(&X, AWQ_DTYPE_F32, 1.0);
    tb_upload(&c, &X);
    for (int i = 0; i < nw; i++) {
        int64_t ow = outs[i] / 8;
        vy[i] = v2(AWQ_DTYPE_F32, n, outs[i], outs[i] + 1);
        vq[i] = v2(AWQ_DTYPE_I32, in, ow, ow);
        vz[i] = v2(AWQ_DTYPE_I32, G, ow, ow);
        vs[i] = v2(AWQ_DTYPE_F16, G, outs[i], outs[i]);
        tb_init(&Y[i], span(&vy[i]));
        tb_init(&Q[i], span(&vq[i]));
        tb_init(&Z[i], span(&vz[i]));
        tb_init(&S[i], span(&vs[i]));
        fill_img(&Y[i], AWQ_DTYPE_F32, 100.0);
        for (size_t b = 0; b < Q[i].bytes; b += 4) {
            uint32_t w = (uint32_t)test_rng_next(&RNG);
            memcpy(Q[i].ref + b, &w, 4);
        }
        for (size_t b = 0; b < Z[i].bytes; b += 4) {
            uint32_t w = (uint32_t)test_rng_next(&RNG);
            memcpy(Z[i].ref + b, &w, 4);
        }
        for (size_t b = 0; b < S[i].bytes; b += 2)
            ref_store(S[i].ref + b, AWQ_DTYPE_F16, 0, 0.001 + 0.02 * fabs(rnd()));
        tb_upload(&c, &Y[i]);
        tb_upload(&c, &Q[i]);
        tb_upload(&c, &Z[i]);
        tb_upload(&c, &S[i]);
    }
    if (!c.bad) {
        awq_qlinear rw[3], dw[3];
        awq_tensor ry[3], dy[3];
        awq_tensor *dyp[3];
        const awq_qlinear *dwp[3];
        awq_tensor rx = on_ref(&X, vx), dx = on_dev(&X, vx);
        for (int i = 0; i < nw; i++) {
            memset(&rw[i], 0, sizeof rw[i]);
            rw[i].in = in;
            rw[i].out = outs[i];
            rw[i].group_size = gs;
            dw[i] = rw[i];
            rw[i].qweight = on_ref(&Q[i], vq[i]);
            rw[i].qzeros = on_ref(&Z[i], vz[i]);
            rw[i].scales = on_ref(&S[i], vs[i]);
            dw[i].qweight = on_dev(&Q[i], vq[i]);
            dw[i].qzeros = on_dev(&Z[i], vz[i]);
            dw[i].scales = on_dev(&S[i], vs[i]);
            ry[i] = on_ref(&Y[i], vy[i]);
            dy[i] = on_dev(&Y[i], vy[i]);
            dyp[i] = &dy[i];
            dwp[i] = &dw[i];
            case_status(&c, "cpu", REF->matmul_w4a16(RCTX, &ry[i], &rx, &rw[i]));
        }
        case_status(&c, BE_NAME, OPS->matmul_w4a16_multi(CTX, nw, dyp, &dx, dwp));
        for (int i = 0; i < nw && !c.bad; i++) cmp_out(&c, &Y[i], vy[i], tol_mm(n, true, false), "y[i]");
    }
    tb_check_input(&c, &X, "x");
    tb_free(&X);
    for (int i = 0; i < nw; i++) {
        tb_check_input(&c, &Q[i], "qweight");
        tb_free(&Y[i]);
        tb_free(&Q[i]);
        tb_free(&Z[i]);
        tb_free(&S[i]);
    }
    return case_end(&c);
}

TEST(matmul_w4a16_multi) {
    if (!OPS->matmul_w4a16_multi) {
        printf("  op matmul_w4a16_multi: not provided (the core calls matmul_w4a16 per linear)\n");
        return;
    }
    static const int64_t qkv[3] = {576, 192, 192}, gu[2] = {1536, 1536}, odd[3] = {72, 8, 200};
    int bad = 0;
    bad += w4_multi_case(3, 1, 576, qkv, 64);
    bad += w4_multi_case(2, 1, 576, gu, 64);
    bad += w4_multi_case(3, 5, 256, odd, 32);
    bad += w4_multi_case(2, 8, 384, odd, 128);
    bad += w4_multi_case(3, 40, 256, odd, 64);
    ASSERT_MSG(bad == 0, "%d matmul_w4a16_multi case(s) failed", bad);
}

/* ---- rmsnorm ------------------------------------------------------------------------------ */

static int rms_case(int64_t n, int64_t d, awq_dtype gt, bool alias) {
    ocase c;
    case_begin(&c, "rmsnorm", "n=%lld d=%lld gamma=%s%s", (long long)n, (long long)d, dt(gt),
               alias ? " y=x" : "");
    awq_tensor vx = v2(AWQ_DTYPE_F32, n, d, d + 4), vy = v2(AWQ_DTYPE_F32, n, d, d + 1), vg = v1(gt, d);
    tbuf X, Y, Gm;
    tb_init(&X, span(&vx));
    tb_init(&Y, span(&vy));
    tb_init(&Gm, span(&vg));
    fill_img(&X, AWQ_DTYPE_F32, 3.0);
    fill_img(&Y, AWQ_DTYPE_F32, 1.0);
    for (int64_t j = 0; j < d; j++) ref_store(Gm.ref, gt, j, 1.0 + 0.5 * rnd());
    tb_upload(&c, &X);
    tb_upload(&c, &Y);
    tb_upload(&c, &Gm);
    tbuf *O = alias ? &X : &Y;
    awq_tensor vo = alias ? vx : vy;
    if (!c.bad) {
        awq_tensor rx = on_ref(&X, vx), ro = on_ref(O, vo), rg = on_ref(&Gm, vg);
        awq_tensor dx = on_dev(&X, vx), dout = on_dev(O, vo), dg = on_dev(&Gm, vg);
        case_status(&c, "cpu", REF->rmsnorm(RCTX, &ro, &rx, &rg, 1e-5f));
        case_status(&c, BE_NAME, OPS->rmsnorm(CTX, &dout, &dx, &dg, 1e-5f));
    }
    cmp_out(&c, O, vo, TOL_RMSNORM, "y");
    if (!alias) tb_check_input(&c, &X, "x");
    tb_check_input(&c, &Gm, "gamma");
    tb_free(&X);
    tb_free(&Y);
    tb_free(&Gm);
    return case_end(&c);
}

TEST(rmsnorm) {
    static const awq_dtype gts[] = {AWQ_DTYPE_F32, AWQ_DTYPE_F16, AWQ_DTYPE_BF16};
    static const int64_t dims[][2] = {{1, 576}, {17, 67}, {130, 192}};
    int bad = 0;
    for (int g = 0; g < 3; g++)
        for (int a = 0; a < 2; a++)
            bad += rms_case(dims[(g + a) % 3][0], dims[(g + a) % 3][1], gts[g], a == 1);
    ASSERT_MSG(bad == 0, "%d rmsnorm case(s) failed", bad);
}

/* ---- rope --------------------------------------------------------------------------------- */

static int rope_case(int64_t nt, int64_t nh, int64_t hd, int64_t pad, float attn) {
    ocase c;
    int64_t ld = nh * hd + pad, half = hd / 2;
    case_begin(&c, "rope", "x (%lld, %lld, %lld) token stride %lld attn_factor %.2f", (long long)nt,
               (long long)nh, (long long)hd, (long long)ld, attn);
    int64_t ne[3] = {nt, nh, hd}, st[3] = {ld, hd, 1};
    awq_tensor vx = vn(3, ne, st), vp = v1(AWQ_DTYPE_I32, nt), vi = v1(AWQ_DTYPE_F32, half);
    tbuf X, P, I;
    tb_init(&X, span(&vx));
    tb_init(&P, span(&vp));
    tb_init(&I, span(&vi));
    fill_img(&X, AWQ_DTYPE_F32, 2.0);
    for (int64_t t = 0; t < nt; t++) {
        int32_t p = t == 0 ? 0 : t == nt - 1 ? 4095 : (int32_t)rndi(2048);
        memcpy(P.ref + 4 * t, &p, 4);
    }
    for (int64_t i = 0; i < half; i++) {
        float f = (float)pow(10000.0, -2.0 * (double)i / (double)hd);
        memcpy(I.ref + 4 * i, &f, 4);
    }
    tb_upload(&c, &X);
    tb_upload(&c, &P);
    tb_upload(&c, &I);
    if (!c.bad) {
        awq_tensor rx = on_ref(&X, vx), rp = on_ref(&P, vp), ri = on_ref(&I, vi);
        awq_tensor dx = on_dev(&X, vx), dp = on_dev(&P, vp), di = on_dev(&I, vi);
        case_status(&c, "cpu", REF->rope(RCTX, &rx, &rp, &ri, attn));
        case_status(&c, BE_NAME, OPS->rope(CTX, &dx, &dp, &di, attn));
    }
    cmp_out(&c, &X, vx, TOL_ROPE, "x");
    tb_check_input(&c, &P, "pos");
    tb_check_input(&c, &I, "inv_freq");
    tb_free(&X);
    tb_free(&P);
    tb_free(&I);
    return case_end(&c);
}

TEST(rope) {
    int bad = 0;
    bad += rope_case(1, 9, 64, 2 * 3 * 64, 1.0f); /* decode: q heads inside a fused q|k|v row */
    bad += rope_case(17, 3, 64, 2 * 1 * 64 + 4, 1.0f);
    bad += rope_case(67, 4, 40, 12, 0.7f);
    bad += rope_case(5, 2, 128, 0, 1.0f);
    ASSERT_MSG(bad == 0, "%d rope case(s) failed", bad);
}

/* ---- attention ---------------------------------------------------------------------------- */

/* q (B, T, H, hd) with a padded token stride (fused q|k|v row); k, v (B, S, Hkv, hd) views of a
 * KV cache holding S_cap >= S tokens per sequence (positions >= n_past + T hold poison: they
 * must not be read); out (B, T, H, hd) with a padded token stride. */
static int attn_case_cap(int64_t B, int64_t T, int64_t H, int64_t Hkv, int64_t hd, int32_t n_past,
                         int32_t window, int64_t extra, int64_t kv_pad, float cap);
static int attn_case(int64_t B, int64_t T, int64_t H, int64_t Hkv, int64_t hd, int32_t n_past, int32_t window,
                     int64_t extra, int64_t kv_pad) {
    return attn_case_cap(B, T, H, Hkv, hd, n_past, window, extra, kv_pad, 0.0f);
}

/* cap > 0: attention_softcap (Gemma 2), q scaled up so that many scores exceed the cap */
static int attn_case_cap(int64_t B, int64_t T, int64_t H, int64_t Hkv, int64_t hd, int32_t n_past,
                         int32_t window, int64_t extra, int64_t kv_pad, float cap) {
    ocase c;
    int64_t S = n_past + T + extra, S_cap = S + 5, qld = (H + 2 * Hkv) * hd + 4, kld = Hkv * hd + kv_pad;
    int64_t old = H * hd + 8;
    case_begin(&c, cap > 0 ? "attention_softcap" : "attention",
               "B=%lld T=%lld H=%lld Hkv=%lld hd=%lld n_past=%d win=%d S=%lld/%lld%s", (long long)B,
               (long long)T, (long long)H, (long long)Hkv, (long long)hd, n_past, window, (long long)S,
               (long long)S_cap, cap > 0 ? " cap" : "");
    int64_t neq[4] = {B, T, H, hd}, stq[4] = {T * qld, qld, hd, 1};
    int64_t nek[4] = {B, S, Hkv, hd}, stk[4] = {S_cap * kld, kld, hd, 1};
    int64_t sto[4] = {T * old, old, hd, 1};
    awq_tensor vq = vn(4, neq, stq), vk = vn(4, nek, stk), vv = vn(4, nek, stk), vo = vn(4, neq, sto);
    tbuf Q, K, V, O;
    tb_init(&Q, span(&vq));
    tb_init(&K, (size_t)(B * S_cap * kld * 4));
    tb_init(&V, K.bytes);
    tb_init(&O, span(&vo));
    fill_img(&Q, AWQ_DTYPE_F32, cap > 0 ? 4.0 : 1.0);
    fill_img(&K, AWQ_DTYPE_F32, 1.0);
    fill_img(&V, AWQ_DTYPE_F32, 1.0);
    fill_img(&O, AWQ_DTYPE_F32, 1.0);
    float *kf = (float *)K.ref, *vf = (float *)V.ref;
    for (int64_t b = 0; b < B; b++)
        for (int64_t j = n_past + T; j < S_cap; j++)
            for (int64_t e = 0; e < kld; e++) {
                kf[(b * S_cap + j) * kld + e] = 1000.0f;
                vf[(b * S_cap + j) * kld + e] = -1000.0f;
            }
    tb_upload(&c, &Q);
    tb_upload(&c, &K);
    tb_upload(&c, &V);
    tb_upload(&c, &O);
    if (!c.bad) {
        float scale = 1.0f / sqrtf((float)hd);
        awq_tensor rq = on_ref(&Q, vq), rk = on_ref(&K, vk), rv = on_ref(&V, vv), ro = on_ref(&O, vo);
        awq_tensor dq = on_dev(&Q, vq), dk = on_dev(&K, vk), dv = on_dev(&V, vv), dout = on_dev(&O, vo);
        if (cap > 0) {
            case_status(&c, "cpu",
                        REF->attention_softcap(RCTX, &ro, &rq, &rk, &rv, n_past, scale, window, cap));
            case_status(&c, BE_NAME,
                        OPS->attention_softcap(CTX, &dout, &dq, &dk, &dv, n_past, scale, window, cap));
        } else {
            case_status(&c, "cpu", REF->attention(RCTX, &ro, &rq, &rk, &rv, n_past, scale, window));
            case_status(&c, BE_NAME, OPS->attention(CTX, &dout, &dq, &dk, &dv, n_past, scale, window));
        }
    }
    cmp_out(&c, &O, vo, TOL_ATTENTION, "out");
    tb_check_input(&c, &Q, "q");
    tb_check_input(&c, &K, "k");
    tb_check_input(&c, &V, "v");
    tb_free(&Q);
    tb_free(&K);
    tb_free(&V);
    tb_free(&O);
    return case_end(&c);
}

TEST(attention) {
    int bad = 0;
    bad += attn_case(2, 7, 6, 2, 64, 0, 0, 3, 0);     /* prefill, GQA 3:1, B > 1 */
    bad += attn_case(3, 1, 6, 2, 64, 37, 0, 5, 0);    /* decode, n_past > 0 */
    bad += attn_case(2, 9, 6, 2, 40, 11, 8, 2, 4);    /* chunked prefill, sliding window */
    bad += attn_case(2, 1, 9, 3, 128, 130, 50, 1, 0); /* decode with a window */
    bad += attn_case(1, 33, 4, 4, 32, 0, 0, 0, 8);    /* MHA, longer prefill, padded kv stride */
    bad += attn_case(2, 17, 3, 1, 64, 5, 0, 4, 0);    /* MQA */
    ASSERT_MSG(bad == 0, "%d attention case(s) failed", bad);
}

TEST(attention_softcap) {
    if (!OPS->attention_softcap) {
        printf("  op attention_softcap: not provided\n");
        return;
    }
    int bad = 0;
    bad += attn_case_cap(2, 7, 6, 2, 64, 0, 0, 3, 0, 5.0f);   /* prefill, GQA, B > 1 */
    bad += attn_case_cap(1, 1, 8, 4, 256, 40, 0, 2, 0, 5.0f); /* decode, Gemma 2's head_dim 256 */
    bad += attn_case_cap(1, 19, 4, 1, 32, 5, 6, 0, 4, 3.0f);  /* sliding window */
    ASSERT_MSG(bad == 0, "%d attention_softcap case(s) failed", bad);
}

/* ---- silu_mul -------------------------------------------------------------------- */

/* fused: gate and up are the two halves of one gate|up row (d a multiple of 4 keeps the up view
 * at a 16-byte offset); otherwise separate padded buffers. */
static int silu_case(int64_t n, int64_t d, bool fused) {
    ocase c;
    case_begin(&c, "silu_mul", "n=%lld d=%lld %s", (long long)n, (long long)d,
               fused ? "gate|up fused row" : "separate");
    awq_tensor vg = v2(AWQ_DTYPE_F32, n, d, fused ? 2 * d + 4 : d + 3),
               vu = fused ? vg : v2(AWQ_DTYPE_F32, n, d, d + 1);
    if (fused) vu.offs = (size_t)d * 4;
    awq_tensor vy = v2(AWQ_DTYPE_F32, n, d, d + 2);
    tbuf G, U, Y;
    tb_init(&G, fused ? span(&vu) : span(&vg));
    tb_init(&U, fused ? 4 : span(&vu));
    tb_init(&Y, span(&vy));
    fill_img(&G, AWQ_DTYPE_F32, 4.0);
    fill_img(&U, AWQ_DTYPE_F32, 2.0);
    fill_img(&Y, AWQ_DTYPE_F32, 1.0);
    tbuf *UB = fused ? &G : &U;
    tb_upload(&c, &G);
    if (!fused) tb_upload(&c, &U);
    tb_upload(&c, &Y);
    if (!c.bad) {
        awq_tensor ry = on_ref(&Y, vy), rg = on_ref(&G, vg), ru = on_ref(UB, vu);
        awq_tensor dy = on_dev(&Y, vy), dg = on_dev(&G, vg), du = on_dev(UB, vu);
        case_status(&c, "cpu", REF->silu_mul(RCTX, &ry, &rg, &ru));
        case_status(&c, BE_NAME, OPS->silu_mul(CTX, &dy, &dg, &du));
    }
    cmp_out(&c, &Y, vy, TOL_SILU, "y");
    tb_check_input(&c, &G, "gate");
    if (!fused) tb_check_input(&c, &U, "up");
    tb_free(&G);
    tb_free(&U);
    tb_free(&Y);
    return case_end(&c);
}

TEST(silu_mul) {
    int bad = silu_case(1, 1536, true) + silu_case(17, 67, false) + silu_case(130, 100, true) +
        silu_case(3, 3, false);
    ASSERT_MSG(bad == 0, "%d silu_mul case(s) failed", bad);
}

/* act_mul with Gemma's GELU-tanh (AWQ_ACT_SILU is silu_mul, checked once more here). */
static int act_case(int64_t n, int64_t d, awq_act act, bool fused) {
    ocase c;
    case_begin(&c, "act_mul", "%s n=%lld d=%lld %s", act == AWQ_ACT_SILU ? "silu" : "gelu_tanh", (long long)n,
               (long long)d, fused ? "gate|up fused row" : "separate");
    awq_tensor vg = v2(AWQ_DTYPE_F32, n, d, fused ? 2 * d + 4 : d + 3),
               vu = fused ? vg : v2(AWQ_DTYPE_F32, n, d, d + 1);
    if (fused) vu.offs = (size_t)d * 4;
    awq_tensor vy = v2(AWQ_DTYPE_F32, n, d, d + 2);
    tbuf G, U, Y;
    tb_init(&G, fused ? span(&vu) : span(&vg));
    tb_init(&U, fused ? 4 : span(&vu));
    tb_init(&Y, span(&vy));
    fill_img(&G, AWQ_DTYPE_F32, 3.0);
    fill_img(&U, AWQ_DTYPE_F32, 2.0);
    fill_img(&Y, AWQ_DTYPE_F32, 1.0);
    tbuf *UB = fused ? &G : &U;
    tb_upload(&c, &G);
    if (!fused) tb_upload(&c, &U);
    tb_upload(&c, &Y);
    if (!c.bad) {
        awq_tensor ry = on_ref(&Y, vy), rg = on_ref(&G, vg), ru = on_ref(UB, vu);
        awq_tensor dy = on_dev(&Y, vy), dg = on_dev(&G, vg), du = on_dev(UB, vu);
        case_status(&c, "cpu", REF->act_mul(RCTX, &ry, &rg, &ru, act));
        case_status(&c, BE_NAME, OPS->act_mul(CTX, &dy, &dg, &du, act));
    }
    cmp_out(&c, &Y, vy, act == AWQ_ACT_SILU ? TOL_SILU : TOL_GELU, "y");
    tb_check_input(&c, &G, "gate");
    if (!fused) tb_check_input(&c, &U, "up");
    tb_free(&G);
    tb_free(&U);
    tb_free(&Y);
    return case_end(&c);
}

TEST(act_mul) {
    if (!OPS->act_mul) {
        printf("  op act_mul: not provided\n");
        return;
    }
    int bad = act_case(1, 2048, AWQ_ACT_GELU_TANH, true) + act_case(17, 67, AWQ_ACT_GELU_TANH, false) +
        act_case(130, 100, AWQ_ACT_GELU_TANH, true) + act_case(3, 3, AWQ_ACT_GELU_TANH, false) +
        act_case(5, 40, AWQ_ACT_SILU, true);
    ASSERT_MSG(bad == 0, "%d act_mul case(s) failed", bad);
}

static int softcap_case(int64_t n, int64_t d, float cap) {
    ocase c;
    case_begin(&c, "softcap", "n=%lld d=%lld cap=%g (values +- 3 cap)", (long long)n, (long long)d,
               (double)cap);
    awq_tensor vx = v2(AWQ_DTYPE_F32, n, d, d + 3);
    tbuf X;
    tb_init(&X, span(&vx));
    fill_img(&X, AWQ_DTYPE_F32, 3.0 * cap);
    tb_upload(&c, &X);
    if (!c.bad) {
        awq_tensor rx = on_ref(&X, vx), dx = on_dev(&X, vx);
        case_status(&c, "cpu", REF->softcap(RCTX, &rx, cap));
        case_status(&c, BE_NAME, OPS->softcap(CTX, &dx, cap));
    }
    cmp_out(&c, &X, vx, TOL_SOFTCAP, "x");
    tb_free(&X);
    return case_end(&c);
}

TEST(softcap) {
    if (!OPS->softcap) {
        printf("  op softcap: not provided\n");
        return;
    }
    int bad = softcap_case(1, 1, 30.0f) + softcap_case(3, 1000, 30.0f) + softcap_case(17, 67, 50.0f);
    ASSERT_MSG(bad == 0, "%d softcap case(s) failed", bad);
}

/* ---- binop -------------------------------------------------------------------------------- */

static const char *BINOP_NAMES[] = {"add", "sub", "mul", "div"};

static int binop_case(int op, awq_dtype bt, int form, bool alias, int64_t n, int64_t d) {
    static const char *forms[] = {"(n, d)", "(1, d)", "(d,)"};
    ocase c;
    case_begin(&c, "binop", "%s n=%lld d=%lld b %s %s%s", BINOP_NAMES[op], (long long)n, (long long)d,
               forms[form], dt(bt), alias ? " y=a" : "");
    awq_tensor va = v2(AWQ_DTYPE_F32, n, d, d + 3), vy = v2(AWQ_DTYPE_F32, n, d, d + 1);
    awq_tensor vb = form == 0 ? v2(bt, n, d, d + 5) : form == 1 ? v2(bt, 1, d, d) : v1(bt, d);
    tbuf A, Bb, Y;
    tb_init(&A, span(&va));
    tb_init(&Bb, span(&vb));
    tb_init(&Y, span(&vy));
    fill_img(&A, AWQ_DTYPE_F32, 4.0);
    fill_img(&Y, AWQ_DTYPE_F32, 1.0);
    size_t es = awq_dtype_size_inline(bt);
    for (size_t i = 0; i + es <= Bb.bytes; i += es) {
        double v = rndn() * 3.0;
        if (fabs(v) < 0.05) v = 0.5; /* no division by ~0 */
        ref_store(Bb.ref + i, bt, 0, v);
    }
    tb_upload(&c, &A);
    tb_upload(&c, &Bb);
    tb_upload(&c, &Y);
    tbuf *O = alias ? &A : &Y;
    awq_tensor vo = alias ? va : vy;
    if (!c.bad) {
        awq_tensor ro = on_ref(O, vo), ra = on_ref(&A, va), rb = on_ref(&Bb, vb);
        awq_tensor dout = on_dev(O, vo), da = on_dev(&A, va), db = on_dev(&Bb, vb);
        case_status(&c, "cpu", REF->binop(RCTX, &ro, &ra, &rb, (awq_binop)op));
        case_status(&c, BE_NAME, OPS->binop(CTX, &dout, &da, &db, (awq_binop)op));
    }
    cmp_out(&c, O, vo, TOL_ELEMWISE, "y");
    if (!alias) tb_check_input(&c, &A, "a");
    tb_check_input(&c, &Bb, "b");
    tb_free(&A);
    tb_free(&Bb);
    tb_free(&Y);
    return case_end(&c);
}

TEST(binop) {
    static const awq_dtype bts[] = {AWQ_DTYPE_F32, AWQ_DTYPE_F16, AWQ_DTYPE_BF16};
    static const int64_t dims[][2] = {{1, 576}, {17, 67}, {130, 40}};
    int bad = 0;
    for (int op = 0; op < 4; op++)
        for (int t = 0; t < 3; t++)
            for (int form = 0; form < 3; form++) {
                int k = op + t + form;
                bad += binop_case(op, bts[t], form, k % 2 == 1, dims[k % 3][0], dims[k % 3][1]);
            }
    ASSERT_MSG(bad == 0, "%d binop case(s) failed", bad);
}

/* ---- get_rows ------------------------------------------------------------------------------ */

static int get_rows_case(awq_dtype tt, int64_t V, int64_t d, int64_t n) {
    ocase c;
    case_begin(&c, "get_rows", "table (%lld, %lld) %s, n=%lld", (long long)V, (long long)d, dt(tt),
               (long long)n);
    awq_tensor vt = v2(tt, V, d, d + 5), vi = v1(AWQ_DTYPE_I32, n), vy = v2(AWQ_DTYPE_F32, n, d, d + 1);
    tbuf Tb, I, Y;
    tb_init(&Tb, span(&vt));
    tb_init(&I, span(&vi));
    tb_init(&Y, span(&vy));
    fill_img(&Tb, tt, 1.0);
    fill_img(&Y, AWQ_DTYPE_F32, 1.0);
    for (int64_t i = 0; i < n; i++) {
        int32_t id = i == 0 ? 0 : i == 1 ? (int32_t)(V - 1) : (int32_t)rndi(V); /* repeats are likely */
        memcpy(I.ref + 4 * i, &id, 4);
    }
    tb_upload(&c, &Tb);
    tb_upload(&c, &I);
    tb_upload(&c, &Y);
    if (!c.bad) {
        awq_tensor ry = on_ref(&Y, vy), rt = on_ref(&Tb, vt), ri = on_ref(&I, vi);
        awq_tensor dy = on_dev(&Y, vy), dtb = on_dev(&Tb, vt), di = on_dev(&I, vi);
        case_status(&c, "cpu", REF->get_rows(RCTX, &ry, &rt, &ri));
        case_status(&c, BE_NAME, OPS->get_rows(CTX, &dy, &dtb, &di));
    }
    cmp_out(&c, &Y, vy, TOL_ELEMWISE, "y");
    tb_check_input(&c, &Tb, "table");
    tb_check_input(&c, &I, "ids");
    tb_free(&Tb);
    tb_free(&I);
    tb_free(&Y);
    return case_end(&c);
}

/* An id of V or -1 must make both backends return an error (and not crash); the instance must
 * stay usable (the next cases run on it). */
static int get_rows_bad_id(int32_t badid) {
    ocase c;
    int64_t V = 23, d = 19, n = 3;
    case_begin(&c, "get_rows", "out-of-range id %d of V=%lld -> error on both backends", badid, (long long)V);
    awq_tensor vt = v2(AWQ_DTYPE_F32, V, d, d), vi = v1(AWQ_DTYPE_I32, n), vy = v2(AWQ_DTYPE_F32, n, d, d);
    tbuf Tb, I, Y;
    tb_init(&Tb, span(&vt));
    tb_init(&I, span(&vi));
    tb_init(&Y, span(&vy));
    fill_img(&Tb, AWQ_DTYPE_F32, 1.0);
    int32_t ids[3] = {1, badid, 2};
    memcpy(I.ref, ids, sizeof ids);
    tb_upload(&c, &Tb);
    tb_upload(&c, &I);
    tb_upload(&c, &Y);
    if (!c.bad) {
        awq_tensor ry = on_ref(&Y, vy), rt = on_ref(&Tb, vt), ri = on_ref(&I, vi);
        awq_tensor dy = on_dev(&Y, vy), dtb = on_dev(&Tb, vt), di = on_dev(&I, vi);
        if (REF->get_rows(RCTX, &ry, &rt, &ri) == AWQ_OK) case_fail(&c, "cpu accepted the id");
        awq_clear_error(RT);
        awq_status st = OPS->get_rows(CTX, &dy, &dtb, &di);
        if (st == AWQ_OK) st = OPS->synchronize(CTX);
        if (st == AWQ_OK)
            case_fail(&c, "%s accepted the id", BE_NAME);
        else if (!awq_runtime_last_error(RT)[0])
            case_fail(&c, "%s returned %s without a reason", BE_NAME, awq_status_str(st));
        else
            printf("    (%s: %s: %s)\n", BE_NAME, awq_status_str(st), awq_runtime_last_error(RT));
    }
    tb_check_input(&c, &Tb, "table");
    tb_free(&Tb);
    tb_free(&I);
    tb_free(&Y);
    return case_end(&c);
}

TEST(get_rows) {
    static const awq_dtype tts[] = {AWQ_DTYPE_F32, AWQ_DTYPE_F16, AWQ_DTYPE_BF16};
    int bad = get_rows_bad_id(23) + get_rows_bad_id(-1);
    for (int t = 0; t < 3; t++) bad += get_rows_case(tts[t], 200, t == 0 ? 576 : 67, t == 2 ? 1 : 17);
    bad += get_rows_case(AWQ_DTYPE_F16, 1000, 192, 130);
    ASSERT_MSG(bad == 0, "%d get_rows case(s) failed", bad);
}

/* ---- convert ------------------------------------------------------------------------------- */

/* Random values across 40 binades, then ties/subnormals/overflow/inf/NaN/signed zeros. */
static double convert_value(int64_t i) {
    static const double special[] = {1.0 + 0x1p-11, 1.0 + 3 * 0x1p-11,
                                     1.0 + 0x1p-8,  1.0 + 3 * 0x1p-8,
                                     65504.0,       65519.0,
                                     65520.0,       -70000.0,
                                     0x1p-25,       3 * 0x1p-25,
                                     0x1p-24,       -5 * 0x1p-26,
                                     1e-30,         -0.0,
                                     0.0,           3.0e38,
                                     1e-40,         INFINITY,
                                     -INFINITY,     NAN};
    int64_t ns = (int64_t)(sizeof special / sizeof special[0]);
    if (i < ns) return special[i];
    return rndn() * pow(2.0, (double)rndi(40) - 20.0);
}

static int convert_case(awq_dtype from, awq_dtype to, int64_t n, int64_t d) {
    ocase c;
    case_begin(&c, "convert", "%s -> %s n=%lld d=%lld strided rows", dt(from), dt(to), (long long)n,
               (long long)d);
    awq_tensor vx = v2(from, n, d, d + 3), vy = v2(to, n, d, d + 2);
    tbuf X, Y;
    tb_init(&X, span(&vx));
    tb_init(&Y, span(&vy));
    size_t es = awq_dtype_size_inline(from);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < d; j++) {
            double v = convert_value(i * d + j);
            unsigned char *row = X.ref + i * vx.nb[0];
            if (from == AWQ_DTYPE_F32)
                ((float *)row)[j] = (float)v;
            else
                ref_store(row, from, j, v);
        }
    for (int64_t i = 0; i < n; i++) /* padding elements */
        for (int64_t j = d; j < d + 3 && (size_t)(i * vx.nb[0]) + (size_t)j * es + es <= X.bytes; j++)
            ref_store(X.ref + i * vx.nb[0], from, j, 7.0);
    fill_img(&Y, to, 1.0);
    tb_upload(&c, &X);
    tb_upload(&c, &Y);
    if (!c.bad) {
        awq_tensor ry = on_ref(&Y, vy), rx = on_ref(&X, vx), dy = on_dev(&Y, vy), dx = on_dev(&X, vx);
        case_status(&c, "cpu", REF->convert(RCTX, &ry, &rx));
        case_status(&c, BE_NAME, OPS->convert(CTX, &dy, &dx));
    }
    cmp_out(&c, &Y, vy, TOL_ELEMWISE, "y");
    tb_check_input(&c, &X, "x");
    tb_free(&X);
    tb_free(&Y);
    return case_end(&c);
}

TEST(convert) {
    static const awq_dtype ts[] = {AWQ_DTYPE_F32, AWQ_DTYPE_F16, AWQ_DTYPE_BF16};
    int bad = 0;
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++)
            bad += convert_case(ts[a], ts[b], (a + b) % 2 ? 17 : 3, (a + b) % 2 ? 67 : 200);
    ASSERT_MSG(bad == 0, "%d convert case(s) failed", bad);
}

/* ---- fake_quant ---------------------------------------------------------------------------- */

/* Elements match within 1e-6 (|ref| + step) or differ by exactly one quantization step
 * (step = S/s of the element's group: a flip at a rounding tie); flips < 0.5%. */
static int fq_case(int64_t out, int64_t in, int64_t gs, bool use_s, bool use_clip, bool alias) {
    ocase c;
    case_begin(&c, "fake_quant", "w (%lld, %lld) gs=%lld%s%s%s", (long long)out, (long long)in, (long long)gs,
               use_s ? " s" : "", use_clip ? " clip" : "", alias ? " wq=w" : "");
    snprintf(c.rule, sizeof c.rule, "1e-6*(|ref|+step), <0.5%% 1-step flips");
    int64_t G = in / gs;
    awq_tensor vw = v2(AWQ_DTYPE_F32, out, in, in + 3), vq = v2(AWQ_DTYPE_F32, out, in, in + 1);
    awq_tensor vs = v1(AWQ_DTYPE_F32, in), vc = v2(AWQ_DTYPE_F32, out, G, G + 1);
    tbuf W, Qo, Sb, Cb;
    tb_init(&W, span(&vw));
    tb_init(&Qo, span(&vq));
    tb_init(&Sb, span(&vs));
    tb_init(&Cb, span(&vc));
    fill_img(&W, AWQ_DTYPE_F32, 0.05);
    float *wf = (float *)W.ref;
    for (int64_t o = 0; o < out; o += 2) wf[o * (in + 3) + rndi(in)] = 0.4f; /* outliers */
    fill_img(&Qo, AWQ_DTYPE_F32, 1.0);
    float *sf = (float *)Sb.ref, *cf = (float *)Cb.ref;
    for (int64_t j = 0; j < in; j++) sf[j] = 0.25f + 2.0f * fabsf(rnd());
    for (size_t i = 0; i < Cb.bytes / 4; i++) cf[i] = 0.03f + 0.1f * fabsf(rnd());
    tb_upload(&c, &W);
    tb_upload(&c, &Qo);
    tb_upload(&c, &Sb);
    tb_upload(&c, &Cb);
    tbuf *O = alias ? &W : &Qo;
    awq_tensor vo = alias ? vw : vq;
    awq_quant_desc qd = {.bits = 4, .group_size = (int32_t)gs, .zero_point = true};
    if (!c.bad) {
        awq_tensor ro = on_ref(O, vo), rw = on_ref(&W, vw), rs = on_ref(&Sb, vs), rc = on_ref(&Cb, vc);
        awq_tensor dout = on_dev(O, vo), dw = on_dev(&W, vw), ds = on_dev(&Sb, vs), dc = on_dev(&Cb, vc);
        case_status(&c, "cpu",
                    REF->fake_quant(RCTX, &ro, &rw, use_s ? &rs : NULL, use_clip ? &rc : NULL, &qd));
        case_status(&c, BE_NAME,
                    OPS->fake_quant(CTX, &dout, &dw, use_s ? &ds : NULL, use_clip ? &dc : NULL, &qd));
    }
    if (!c.bad && !tb_download(&c, O)) {
        const float *w0 = (const float *)W.init; /* the original w, also when wq aliases it */
        int64_t ldw = in + 3, ldo = vo.nb[0] / 4, flips = 0, nbad = 0;
        for (int64_t o = 0; o < out; o++)
            for (int64_t g = 0; g < G; g++) {
                double mx = -INFINITY, mn = INFINITY; /* S of the group, from the inputs */
                for (int64_t k = g * gs; k < (g + 1) * gs; k++) {
                    double x = w0[o * ldw + k];
                    if (use_s) x = f32(x * sf[k]);
                    if (use_clip) {
                        double cl = cf[o * (G + 1) + g];
                        x = x > cl ? cl : x < -cl ? -cl : x;
                    }
                    mx = x > mx ? x : mx;
                    mn = x < mn ? x : mn;
                }
                double S = f32((mx - mn > 1e-5 ? mx - mn : 1e-5) / 15.0);
                for (int64_t k = g * gs; k < (g + 1) * gs; k++) {
                    double step = use_s ? S / sf[k] : S;
                    float rv, gv;
                    memcpy(&rv, O->ref + 4 * (o * ldo + k), 4);
                    memcpy(&gv, O->got + O->offs + 4 * (o * ldo + k), 4);
                    double err = fabs((double)gv - rv), lim = 1e-6 * (fabs(rv) + step);
                    if (err > c.maxerr) c.maxerr = err;
                    if (err <= lim) {
                        if (err / lim > c.ratio) c.ratio = err / lim;
                        continue;
                    }
                    if (fabs(err - step) <= 1e-3 * step) {
                        flips++;
                        continue;
                    }
                    if (nbad++ < 3)
                        printf("    fake_quant %s: row %lld col %lld: got %.9g, ref %.9g (step %.3g)\n",
                               c.desc, (long long)o, (long long)k, gv, rv, step);
                }
            }
        if (nbad)
            case_fail(&c, "%lld element(s) differ by other than one quantization step", (long long)nbad);
        if (flips > FQ_MAX_FLIP_FRAC * (double)(out * in))
            case_fail(&c, "%lld one-step flips in %lld elements (> %.1f%%)", (long long)flips,
                      (long long)(out * in), 100 * FQ_MAX_FLIP_FRAC);
        if (flips) printf("    (fake_quant %s: %lld one-step flips)\n", c.desc, (long long)flips);
        /* padding and guard: exact */
        for (int64_t o = 0; o < out && !c.bad; o++)
            for (int64_t k = in; k < ldo && (size_t)(4 * (o * ldo + k)) + 4 <= O->bytes; k++)
                if (memcmp(O->ref + 4 * (o * ldo + k), O->got + O->offs + 4 * (o * ldo + k), 4) != 0) {
                    case_fail(&c, "row padding was written");
                    break;
                }
        tb_check_guard(&c, O, "wq");
    }
    if (!alias) tb_check_input(&c, &W, "w");
    tb_check_input(&c, &Sb, "s");
    tb_check_input(&c, &Cb, "clip");
    tb_free(&W);
    tb_free(&Qo);
    tb_free(&Sb);
    tb_free(&Cb);
    return case_end(&c);
}

TEST(fake_quant) {
    static const int64_t shapes[][3] = {{40, 576, 64}, {8, 192, 32}, {17, 384, 128}, {3, 128, 128}};
    int bad = 0;
    for (int s = 0; s < 4; s++)
        for (int v = 0; v < 4; v++) /* s and clip each on/off; alias on the last variant */
            bad += fq_case(shapes[s][0], shapes[s][1], shapes[s][2], v & 1, v & 2, v == 3 && s % 2 == 0);
    ASSERT_MSG(bad == 0, "%d fake_quant case(s) failed", bad);
}

/* ---- quantize_w4 ---------------------------------------------------------------------------- */

static int qw4_case(int64_t out, int64_t in, int64_t gs, int64_t pad) {
    ocase c;
    case_begin(&c, "quantize_w4", "w (%lld, %lld) F16 gs=%lld row pad %lld", (long long)out, (long long)in,
               (long long)gs, (long long)pad);
    int64_t G = in / gs;
    awq_tensor vw = v2(AWQ_DTYPE_F16, out, in, in + pad), vc = v2(AWQ_DTYPE_U8, out, in, in + pad);
    awq_tensor vs = v2(AWQ_DTYPE_F16, out, G, G + pad), vz = v2(AWQ_DTYPE_U8, out, G, G + pad);
    tbuf W, C, S, Z;
    tb_init(&W, span(&vw));
    tb_init(&C, span(&vc));
    tb_init(&S, span(&vs));
    tb_init(&Z, span(&vz));
    fill_img(&W, AWQ_DTYPE_F16, 0.04);
    /* a few special groups in row 0: constant, zero, ties on the code grid (S = 1/16) */
    for (int64_t k = 0; k < gs && out > 1; k++) {
        ref_store(W.ref, AWQ_DTYPE_F16, k, 0.125);
        ref_store(W.ref + vw.nb[0], AWQ_DTYPE_F16, k, 0.0);
        if (G > 1) ref_store(W.ref, AWQ_DTYPE_F16, gs + k, ((k % 16) - 7.5) * 0.0625);
    }
    for (size_t i = 0; i < C.bytes; i++) C.ref[i] = 0xEE;
    for (size_t i = 0; i < Z.bytes; i++) Z.ref[i] = 0xEE;
    fill_img(&S, AWQ_DTYPE_F16, 1.0);
    tb_upload(&c, &W);
    tb_upload(&c, &C);
    tb_upload(&c, &S);
    tb_upload(&c, &Z);
    awq_quant_desc qd = {.bits = 4, .group_size = (int32_t)gs, .zero_point = true};
    if (!c.bad) {
        awq_tensor rc = on_ref(&C, vc), rs = on_ref(&S, vs), rz = on_ref(&Z, vz), rw = on_ref(&W, vw);
        awq_tensor dc = on_dev(&C, vc), ds = on_dev(&S, vs), dz = on_dev(&Z, vz), dw = on_dev(&W, vw);
        case_status(&c, "cpu", REF->quantize_w4(RCTX, &rc, &rs, &rz, &rw, &qd));
        case_status(&c, BE_NAME, OPS->quantize_w4(CTX, &dc, &ds, &dz, &dw, &qd));
    }
    cmp_out(&c, &C, vc, TOL_EXACT, "codes");
    cmp_out(&c, &S, vs, TOL_EXACT, "scales");
    cmp_out(&c, &Z, vz, TOL_EXACT, "zeros");
    if (!c.bad && memcmp(S.got + S.offs, S.ref, S.bytes) != 0) case_fail(&c, "scales differ in their bits");
    tb_check_input(&c, &W, "w");
    tb_free(&W);
    tb_free(&C);
    tb_free(&S);
    tb_free(&Z);
    return case_end(&c);
}

TEST(quantize_w4) {
    int bad = qw4_case(8, 384, 32, 0) + qw4_case(8, 384, 64, 3) + qw4_case(17, 384, 128, 0) +
        qw4_case(40, 576, 64, 5) + qw4_case(1, 128, 128, 0);
    ASSERT_MSG(bad == 0, "%d quantize_w4 case(s) failed", bad);
}

/* ---- reduce, scalar -------------------------------------------------------------- */

static int reduce_case(int op, int64_t n, int64_t c_, int32_t group) {
    static const char *names[] = {"MEAN_ABS_COLS", "WMEAN_GROUPS", "MAX_ABS_COLS"};
    ocase c;
    case_begin(&c, "reduce", "%s x (%lld, %lld) group %d", names[op], (long long)n, (long long)c_, group);
    awq_tensor vx = v2(AWQ_DTYPE_F32, n, c_, c_ + 1), vy = v1(AWQ_DTYPE_F32, c_);
    tbuf X, Y;
    tb_init(&X, span(&vx));
    tb_init(&Y, span(&vy));
    float *xf = (float *)X.ref;
    for (size_t i = 0; i < X.bytes / 4; i++) xf[i] = rndn() * (float)(1 + i % 7);
    fill_img(&Y, AWQ_DTYPE_F32, 1.0);
    tb_upload(&c, &X);
    tb_upload(&c, &Y);
    if (!c.bad) {
        awq_tensor ry = on_ref(&Y, vy), rx = on_ref(&X, vx), dy = on_dev(&Y, vy), dx = on_dev(&X, vx);
        case_status(&c, "cpu", REF->reduce(RCTX, &ry, &rx, (awq_reduce_op)op, group));
        case_status(&c, BE_NAME, OPS->reduce(CTX, &dy, &dx, (awq_reduce_op)op, group));
    }
    cmp_out(&c, &Y, vy, op == AWQ_REDUCE_MAX_ABS_COLS ? TOL_EXACT : TOL_REDUCE, "y");
    tb_check_input(&c, &X, "x");
    tb_free(&X);
    tb_free(&Y);
    return case_end(&c);
}

TEST(reduce) {
    if (!OPS->reduce) {
        printf("  op reduce: not provided\n");
        return;
    }
    static const int64_t dims[][3] = {{1, 24, 8}, {37, 192, 64}, {300, 130, 65}, {130, 384, 128}};
    int bad = 0;
    for (int op = 0; op < 3; op++)
        for (int d = 0; d < 4; d++) bad += reduce_case(op, dims[d][0], dims[d][1], (int32_t)dims[d][2]);
    ASSERT_MSG(bad == 0, "%d reduce case(s) failed", bad);
}

static int scalar_case(int op, int64_t n, int64_t c_) {
    ocase c;
    case_begin(&c, "scalar", "%s a, b (%lld, %lld) strided", op == AWQ_SCALAR_SSE ? "SSE" : "DOT",
               (long long)n, (long long)c_);
    snprintf(c.rule, sizeof c.rule, "%.0e*sum|terms|", SCALAR_RTOL);
    awq_tensor va = v2(AWQ_DTYPE_F32, n, c_, c_ + 2), vb = v2(AWQ_DTYPE_F32, n, c_, c_ + 9);
    tbuf A, Bb;
    tb_init(&A, span(&va));
    tb_init(&Bb, span(&vb));
    fill_img(&A, AWQ_DTYPE_F32, 2.0);
    fill_img(&Bb, AWQ_DTYPE_F32, 2.0);
    tb_upload(&c, &A);
    tb_upload(&c, &Bb);
    if (!c.bad) {
        awq_tensor ra = on_ref(&A, va), rb = on_ref(&Bb, vb), da = on_dev(&A, va), db = on_dev(&Bb, vb);
        double r = 0, g = 0, mag = 0;
        case_status(&c, "cpu", REF->scalar(RCTX, &r, &ra, &rb, (awq_scalar_op)op));
        case_status(&c, BE_NAME, OPS->scalar(CTX, &g, &da, &db, (awq_scalar_op)op));
        const float *af = (const float *)A.ref, *bf = (const float *)Bb.ref;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < c_; j++) {
                double x = af[i * (c_ + 2) + j], y = bf[i * (c_ + 9) + j];
                mag += op == AWQ_SCALAR_SSE ? (x - y) * (x - y) : fabs(x * y);
            }
        c.maxerr = fabs(g - r);
        c.ratio = c.maxerr / (SCALAR_RTOL * mag);
        if (!c.bad && !(c.maxerr <= SCALAR_RTOL * mag)) case_fail(&c, "got %.17g, ref %.17g", g, r);
    }
    tb_check_input(&c, &A, "a");
    tb_check_input(&c, &Bb, "b");
    tb_free(&A);
    tb_free(&Bb);
    return case_end(&c);
}

TEST(scalar) {
    if (!OPS->scalar) {
        printf("  op scalar: not provided\n");
        return;
    }
    int bad = 0;
    for (int op = 0; op < 2; op++)
        bad += scalar_case(op, 1, 3) + scalar_case(op, 67, 576) + scalar_case(op, 130, 17);
    ASSERT_MSG(bad == 0, "%d scalar case(s) failed", bad);
}

/* ---- clip_search ------------------------------------------------------------------------------ */

static int clip_case(int64_t out, int64_t in, int64_t n, int64_t gs) {
    const int n_grid = 20, n_steps = 10;
    ocase c;
    case_begin(&c, "clip_search", "w (%lld, %lld) x (%lld, %lld) gs=%lld grid %d steps %d", (long long)out,
               (long long)in, (long long)n, (long long)in, (long long)gs, n_grid, n_steps);
    snprintf(c.rule, sizeof c.rule, ">=99%% exact, rest adjacent candidate");
    int64_t G = in / gs;
    awq_tensor vw = v2(AWQ_DTYPE_F32, out, in, in + 1), vx = v2(AWQ_DTYPE_F32, n, in, in + 5);
    awq_tensor vb = v2(AWQ_DTYPE_F32, out, G, G + 2);
    tbuf W, X, Bm;
    tb_init(&W, span(&vw));
    tb_init(&X, span(&vx));
    tb_init(&Bm, span(&vb));
    fill_img(&W, AWQ_DTYPE_F32, 0.05);
    float *wf = (float *)W.ref;
    for (int64_t o = 0; o < out; o++) /* outliers make clipping pay */
        for (int64_t g = 0; g < G; g++)
            if (rndi(2)) wf[o * (in + 1) + g * gs + rndi(gs)] = 0.3f + 0.5f * fabsf(rnd());
    fill_img(&X, AWQ_DTYPE_F32, 1.0);
    fill_img(&Bm, AWQ_DTYPE_F32, 1.0);
    tb_upload(&c, &W);
    tb_upload(&c, &X);
    tb_upload(&c, &Bm);
    awq_quant_desc qd = {.bits = 4, .group_size = (int32_t)gs, .zero_point = true};
    if (!c.bad) {
        awq_tensor rb = on_ref(&Bm, vb), rw = on_ref(&W, vw), rx = on_ref(&X, vx);
        awq_tensor db = on_dev(&Bm, vb), dw = on_dev(&W, vw), dx = on_dev(&X, vx);
        case_status(&c, "cpu", REF->clip_search(RCTX, &rb, &rw, &rx, &qd, n_grid, n_steps));
        case_status(&c, BE_NAME, OPS->clip_search(CTX, &db, &dw, &dx, &qd, n_grid, n_steps));
    }
    if (!c.bad && !tb_download(&c, &Bm)) {
        int64_t exact = 0, adjacent = 0, other = 0, shrunk = 0;
        for (int64_t o = 0; o < out; o++)
            for (int64_t g = 0; g < G; g++) {
                float m = 0.0f, cand[16];
                for (int64_t k = 0; k < gs; k++) {
                    float a = fabsf(wf[o * (in + 1) + g * gs + k]);
                    m = a > m ? a : m;
                }
                for (int i = 0; i < n_steps; i++) cand[i] = m * (1.0f - (float)i / (float)n_grid);
                float rv, gv;
                memcpy(&rv, Bm.ref + 4 * (o * (G + 2) + g), 4);
                memcpy(&gv, Bm.got + Bm.offs + 4 * (o * (G + 2) + g), 4);
                int ir = -1, ig = -1;
                for (int i = 0; i < n_steps; i++) {
                    if (ir < 0 && fabsf(rv - cand[i]) <= 1e-6f * cand[i]) ir = i;
                    if (ig < 0 && fabsf(gv - cand[i]) <= 1e-6f * cand[i]) ig = i;
                }
                double err = fabs((double)gv - rv);
                if (err > c.maxerr) c.maxerr = err;
                shrunk += ir > 0;
                if (gv == rv)
                    exact++;
                else if (ir >= 0 && ig >= 0 && abs(ir - ig) == 1)
                    adjacent++;
                else {
                    if (other++ < 3)
                        printf("    clip_search %s: row %lld group %lld: got %.9g (step %d), ref %.9g (step "
                               "%d)\n",
                               c.desc, (long long)o, (long long)g, gv, ig, rv, ir);
                }
            }
        c.ratio = (double)(out * G - exact) / ((1 - CLIP_MIN_EXACT_FRAC) * (double)(out * G));
        if (other) case_fail(&c, "%lld group(s) chose a non-adjacent or non-candidate max", (long long)other);
        if ((double)exact < CLIP_MIN_EXACT_FRAC * (double)(out * G))
            case_fail(&c, "only %lld of %lld groups match exactly (%lld adjacent)", (long long)exact,
                      (long long)(out * G), (long long)adjacent);
        if (adjacent)
            printf("    (clip_search %s: %lld group(s) chose an adjacent candidate)\n", c.desc,
                   (long long)adjacent);
        if (shrunk == 0) case_fail(&c, "no group chose a shrunk max: the case does not exercise the search");
        tb_check_guard(&c, &Bm, "best_max");
        for (int64_t o = 0; o < out && !c.bad; o++)
            for (int64_t j = G; j < G + 2 && (size_t)(4 * (o * (G + 2) + j)) + 4 <= Bm.bytes; j++)
                if (memcmp(Bm.ref + 4 * (o * (G + 2) + j), Bm.got + Bm.offs + 4 * (o * (G + 2) + j), 4) !=
                    0) {
                    case_fail(&c, "row padding was written");
                    break;
                }
    }
    tb_check_input(&c, &W, "w");
    tb_check_input(&c, &X, "x");
    tb_free(&W);
    tb_free(&X);
    tb_free(&Bm);
    return case_end(&c);
}

TEST(clip_search) {
    if (!OPS->clip_search) {
        printf("  op clip_search: not provided\n");
        return;
    }
    int bad = clip_case(40, 576, 37, 64) + clip_case(72, 384, 64, 128) + clip_case(40, 192, 19, 32);
    ASSERT_MSG(bad == 0, "%d clip_search case(s) failed", bad);
}

/* ---- gram ------------------------------------------------------------------------------------- */

static int gram_case(int64_t n, int64_t c_, bool acc) {
    ocase c;
    case_begin(&c, "gram", "x (%lld, %lld) %s", (long long)n, (long long)c_,
               acc ? "accumulate" : "overwrite");
    awq_tensor vx = v2(AWQ_DTYPE_F32, n, c_, c_ + 3), vg = v2(AWQ_DTYPE_F32, c_, c_, c_ + 1);
    tbuf X, Gm;
    tb_init(&X, span(&vx));
    tb_init(&Gm, span(&vg));
    fill_img(&X, AWQ_DTYPE_F32, 1.0);
    fill_img(&Gm, AWQ_DTYPE_F32, 10.0);
    tb_upload(&c, &X);
    tb_upload(&c, &Gm);
    if (!c.bad) {
        awq_tensor rg = on_ref(&Gm, vg), rx = on_ref(&X, vx), dg = on_dev(&Gm, vg), dx = on_dev(&X, vx);
        case_status(&c, "cpu", REF->gram(RCTX, &rg, &rx, acc));
        case_status(&c, BE_NAME, OPS->gram(CTX, &dg, &dx, acc));
    }
    cmp_out(&c, &Gm, vg, TOL_GRAM, "g");
    tb_check_input(&c, &X, "x");
    tb_free(&X);
    tb_free(&Gm);
    return case_end(&c);
}

TEST(gram) {
    if (!OPS->gram) {
        printf("  op gram: not provided\n");
        return;
    }
    static const int64_t dims[][2] = {{1, 9}, {37, 67}, {130, 192}, {300, 40}};
    int bad = 0;
    for (int d = 0; d < 4; d++)
        for (int a = 0; a < 2; a++) bad += gram_case(dims[d][0], dims[d][1], a == 1);
    ASSERT_MSG(bad == 0, "%d gram case(s) failed", bad);
}

/* ---- driver ----------------------------------------------------------------------------------- */

/* AWQ_TEST_OPS_ONLY: a comma-separated list of test groups to run (all when unset). */
static bool selected(const char *name) {
    const char *e = getenv("AWQ_TEST_OPS_ONLY");
    if (!e || !*e) return true;
    size_t n = strlen(name);
    for (const char *p = e; (p = strstr(p, name)) != NULL; p += n)
        if ((p == e || p[-1] == ',') && (p[n] == ',' || p[n] == 0)) return true;
    return false;
}
#undef RUN
#define RUN(name)                                                         \
    do {                                                                  \
        if (!selected(#name)) break;                                      \
        test_current_failed_ = 0;                                         \
        name();                                                           \
        printf("%s %s\n", test_current_failed_ ? "FAIL" : "ok  ", #name); \
        fflush(stdout);                                                   \
        if (test_current_failed_) test_failures_++;                       \
    } while (0)

static void suite(void) {
    RUN(memory);
    RUN(matmul);
    RUN(matmul_w4a16);
    RUN(matmul_w4a16_shapes);
    RUN(matmul_w4a16_exact);
    RUN(matmul_w4a16_multi);
    RUN(rmsnorm);
    RUN(rope);
    RUN(attention);
    RUN(attention_softcap);
    RUN(silu_mul);
    RUN(act_mul);
    RUN(softcap);
    RUN(binop);
    RUN(get_rows);
    RUN(convert);
    RUN(fake_quant);
    RUN(quantize_w4);
    RUN(reduce);
    RUN(scalar);
    RUN(clip_search);
    RUN(gram);
}

static bool env_set(const char *name) {
    const char *e = getenv(name);
    return e && e[0] && strcmp(e, "0") != 0;
}

/* Prints the registry's skip lines that mention name. */
static void print_skips(const char *name) {
    int found = 0;
    for (int32_t i = 0; i < awq_runtime_skipped_count(RT); i++)
        if (strstr(awq_runtime_skipped_get(RT, i), name)) {
            printf("   skipped plugin: %s\n", awq_runtime_skipped_get(RT, i));
            found++;
        }
    if (!found) printf("   no libawq-backend-%s.so found (build dir, $AWQ_BACKEND_PATH)\n", name);
}

int main(void) {
    awq_runtime_params p = awq_runtime_params_default();
#ifdef AWQ_TEST_BIN_DIR
    p.backend_dir = AWQ_TEST_BIN_DIR;
#endif
    if (awq_runtime_create(&RT, &p) != AWQ_OK) {
        printf("FAIL: cannot create a runtime\n");
        return 1;
    }
    bool require_ocl = getenv("AWQ_REQUIRE_OPENCL") && strcmp(getenv("AWQ_REQUIRE_OPENCL"), "1") == 0;
    int failed_setup = 0;
    awq_device ref;
    if (awq_device_open(RT, "cpu", 1024, &ref) != AWQ_OK) {
        printf("FAIL: cannot open the cpu reference: %s\n", awq_runtime_last_error(RT));
        awq_runtime_destroy(RT);
        return 1;
    }
    REF = ref.ops;
    RCTX = ref.ctx;
    static const char *expected[] = {"cpu-dnnl", "opencl"};
    for (int i = 0; i < 2; i++)
        if (!awq_registry_find(RT, expected[i])) {
            bool req = i == 1 ? require_ocl : test_backend_required(expected[i]);
            printf("-- backend %s not loaded%s\n", expected[i],
                   !req         ? ": not tested"
                       : i == 1 ? ": FAIL (AWQ_REQUIRE_OPENCL=1)"
                                : ": FAIL (AWQ_REQUIRE_DNNL=1)");
            print_skips(expected[i]);
            if (req) failed_setup++;
        }
    int tested = 0;
    for (int b = 0; b < RT->n_backends; b++) {
        const awq_backend_ops *ops = RT->backends[b].ops;
        if (strcmp(ops->name, "cpu") == 0) continue;
        const char *only = getenv("AWQ_TEST_OPS_BACKEND");
        if (only && *only && strcmp(ops->name, only) != 0) continue;
        bool is_ocl = strcmp(ops->name, "opencl") == 0;
        int32_t nd = ops->device_count();
        if (nd <= 0) {
            printf("-- backend %s loaded but reports no device%s\n", ops->name,
                   is_ocl && require_ocl ? ": FAIL" : "");
            if (is_ocl && require_ocl) failed_setup++;
            continue;
        }
        int32_t ndev = is_ocl && env_set("AWQ_TEST_OPENCL_ALL_DEVICES") ? nd : 1;
        for (int32_t d = 0; d < ndev; d++) {
            char spec[80];
            snprintf(spec, sizeof spec, "%s:%d", ops->name, d);
            awq_device dev;
            if (awq_device_open(RT, spec, 1024, &dev) != AWQ_OK) {
                printf("FAIL: cannot open %s: %s\n", spec, awq_runtime_last_error(RT));
                failed_setup++;
                continue;
            }
            OPS = dev.ops;
            CTX = dev.ctx;
            BE_NAME = dev.label;
            FP16_ACT = strncmp(ops->name, "cuda", 4) == 0;
            printf("== backend %s (%s) vs cpu reference\n", dev.label, dev.info.name);
            fflush(stdout);
            RNG = 0x9E3779B97F4A7C15ull; /* the same inputs on every backend */
            double t0 = awq_time_now();
            suite();
            printf("== %s done in %.2f s\n", dev.label, awq_time_now() - t0);
            awq_device_close(&dev);
            tested++;
        }
    }
    awq_device_close(&ref);
    awq_runtime_destroy(RT);
    if (failed_setup) return 1;
    if (!tested) {
        printf("SKIP: no backend other than the built-in cpu loaded (see the lines above)\n");
        return 77;
    }
    return TEST_EXIT();
}
