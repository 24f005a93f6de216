/*
 * bench_ops.c - speed of one backend op on synthetic data (a benchmark, not a test: it asserts
 * nothing). Built as build/bin/awq-bench-ops; bench/ops_bench.sh drives it.
 *
 * usage: awq-bench-ops BACKEND OP N IN OUT [WTYPE] [SECONDS]
 *   BACKEND  cpu | cpu-dnnl | ...   (anything awq_device_open accepts)
 *   OP       matmul (y (N, OUT) = x (N, IN) W (OUT, IN)^T), w4a16 (same with an AWQ weight, group
 *            64, or IN when IN % 64 != 0), gram (g (IN, IN) = x (N, IN)^T x), attention (causal
 *            prefill of N tokens, head size IN, OUT query heads sharing OUT/3 kv heads), copy
 *            (convert F32 -> F32 of N x IN: the device's achievable read+write bandwidth)
 *   WTYPE    f32 | f16 | bf16 for matmul (default f32)
 * Inputs are filled on the host and uploaded, so any backend (cpu, cpu-dnnl, opencl) works.
 * Prints one line: backend op shape ms/call GFLOP/s GB/s (bytes the op must move: weights, inputs,
 * outputs). Calls are issued 8 at a time between synchronizations, so a GPU's queue stays full.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "awq_backend.h"
#include "awq_pack.h"
#include "internal.h"

static unsigned long long rng = 88172645463325252ull;
static float frand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* Host staging buffers: filled on the host, then copied to the device by dev_copy(). */
static void *buf(awq_device *d, size_t n) {
    (void)d;
    void *p = calloc(1, n ? n : 1);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return p;
}

/* Replaces a tensor's host data by a device buffer holding the same bytes (works for every
 * backend: device memory is never touched from the host). */
static void dev_copy(awq_device *d, awq_tensor *t, size_t nbytes) {
    void *m = NULL;
    if (d->ops->buffer_alloc(d->ctx, nbytes, &m) != AWQ_OK ||
        d->ops->upload(d->ctx, m, 0, t->data, nbytes) != AWQ_OK) {
        fprintf(stderr, "device allocation of %zu bytes failed\n", nbytes);
        exit(1);
    }
    t->data = m;
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: %s BACKEND matmul|w4a16|gram|attention N IN OUT [f32|f16|bf16] [SECONDS]\n",
                argv[0]);
        return 2;
    }
    const char *be = argv[1], *op = argv[2];
    int64_t n = atoll(argv[3]), in = atoll(argv[4]), out = atoll(argv[5]);
    const char *wt = argc > 6 ? argv[6] : "f32";
    double secs = argc > 7 ? atof(argv[7]) : 1.0;
    awq_runtime *rt = NULL;
    awq_runtime_params p = awq_runtime_params_default();
    if (awq_runtime_create(&rt, &p) != AWQ_OK) return 1;
    awq_device dev;
    if (awq_device_open(rt, be, 0, &dev) != AWQ_OK) {
        fprintf(stderr, "cannot open %s: %s\n", be, awq_runtime_last_error(rt));
        return 1;
    }
    awq_dtype wtype = strcmp(wt, "f16") == 0 ? AWQ_DTYPE_F16
        : strcmp(wt, "bf16") == 0            ? AWQ_DTYPE_BF16
                                             : AWQ_DTYPE_F32;
    float *x = buf(&dev, (size_t)(n * in) * 4), *y = buf(&dev, (size_t)(n * (out > in ? out : in)) * 4);
    for (int64_t i = 0; i < n * in; i++) x[i] = frand();
    awq_tensor tx = awq_tensor_2d(AWQ_DTYPE_F32, x, 0, n, in);
    awq_tensor ty = awq_tensor_2d(AWQ_DTYPE_F32, y, 0, n, out);
    awq_tensor tw, tg = awq_tensor_2d(AWQ_DTYPE_F32, y, 0, in, in);
    awq_qlinear q;
    memset(&q, 0, sizeof q);
    double flops = 2.0 * (double)n * (double)in * (double)out;
    double bytes = 4.0 * (double)n * (double)(in + out);
    awq_tensor tq, tk, tv, to;
    if (strcmp(op, "attention") == 0) {
        int64_t H = out, Hkv = out % 3 == 0 ? out / 3 : out, hd = in, T = n;
        int64_t qe[4] = {1, T, H, hd}, ke[4] = {1, T, Hkv, hd};
        float *qd = buf(&dev, (size_t)(T * H * hd) * 4), *k = buf(&dev, (size_t)(T * Hkv * hd) * 4);
        float *v = buf(&dev, (size_t)(T * Hkv * hd) * 4), *o = buf(&dev, (size_t)(T * H * hd) * 4);
        for (int64_t i = 0; i < T * H * hd; i++) qd[i] = frand();
        for (int64_t i = 0; i < T * Hkv * hd; i++) {
            k[i] = frand();
            v[i] = frand();
        }
        tq = awq_tensor_make(AWQ_DTYPE_F32, qd, 0, 4, qe);
        to = awq_tensor_make(AWQ_DTYPE_F32, o, 0, 4, qe);
        tk = awq_tensor_make(AWQ_DTYPE_F32, k, 0, 4, ke);
        tv = awq_tensor_make(AWQ_DTYPE_F32, v, 0, 4, ke);
        flops = 4.0 * (double)hd * (double)H * (double)T * (double)(T + 1) / 2.0;
        bytes = 4.0 * (double)T * (double)hd * (double)(2 * H + 2 * Hkv);
    } else if (strcmp(op, "copy") == 0) {
        flops = 0;
        bytes = 8.0 * (double)n * (double)in;
        free(y);
        y = buf(&dev, (size_t)(n * in) * 4);
        ty = awq_tensor_2d(AWQ_DTYPE_F32, y, 0, n, in);
    } else if (strcmp(op, "gram") == 0) {
        flops = 2.0 * (double)n * (double)in * (double)in;
        bytes = 4.0 * ((double)n * (double)in + (double)in * (double)in);
        free(y);
        y = buf(&dev, (size_t)(in * in) * 4);
        tg.data = y;
    } else if (strcmp(op, "w4a16") == 0) {
        int64_t gs = in % 64 == 0 ? 64 : in, G = in / gs;
        int32_t *qw = buf(&dev, (size_t)(in * out / 8) * 4), *qz = buf(&dev, (size_t)(G * out / 8) * 4);
        uint16_t *sc = buf(&dev, (size_t)(G * out) * 2);
        for (int64_t i = 0; i < in * out / 8; i++) qw[i] = (int32_t)(frand() * 2147483647.0f);
        for (int64_t i = 0; i < G * out / 8; i++) qz[i] = (int32_t)(frand() * 2147483647.0f);
        for (int64_t i = 0; i < G * out; i++) sc[i] = awq_f32_to_f16(0.01f + 0.01f * frand());
        q.in = in;
        q.out = out;
        q.group_size = gs;
        bytes += (double)in * (double)out / 2.0 + (double)G * (double)out * 2.5;
        q.qweight = awq_tensor_2d(AWQ_DTYPE_I32, qw, 0, in, out / 8);
        q.qzeros = awq_tensor_2d(AWQ_DTYPE_I32, qz, 0, G, out / 8);
        q.scales = awq_tensor_2d(AWQ_DTYPE_F16, sc, 0, G, out);
        q.bias = awq_tensor_1d(AWQ_DTYPE_F16, NULL, 0, out);
        dev_copy(&dev, &q.qweight, (size_t)(in * out / 8) * 4);
        dev_copy(&dev, &q.qzeros, (size_t)(G * out / 8) * 4);
        dev_copy(&dev, &q.scales, (size_t)(G * out) * 2);
        if (dev.ops->weight_prepare && dev.ops->weight_prepare(dev.ctx, &q) != AWQ_OK) {
            fprintf(stderr, "weight_prepare: %s\n", awq_runtime_last_error(rt));
            return 1;
        }
    } else {
        size_t es = awq_dtype_size_inline(wtype);
        char *w = buf(&dev, (size_t)(out * in) * es);
        for (int64_t i = 0; i < out * in; i++) {
            float v = frand() * 0.1f;
            if (wtype == AWQ_DTYPE_F32)
                ((float *)w)[i] = v;
            else
                ((uint16_t *)w)[i] = wtype == AWQ_DTYPE_F16 ? awq_f32_to_f16(v) : awq_f32_to_bf16(v);
        }
        tw = awq_tensor_2d(wtype, w, 0, out, in);
        bytes += (double)out * (double)in * (double)es;
        dev_copy(&dev, &tw, (size_t)(out * in) * es);
    }
    if (strcmp(op, "attention") == 0) {
        int64_t H = out, Hkv = out % 3 == 0 ? out / 3 : out, hd = in, T = n;
        dev_copy(&dev, &tq, (size_t)(T * H * hd) * 4);
        dev_copy(&dev, &to, (size_t)(T * H * hd) * 4);
        dev_copy(&dev, &tk, (size_t)(T * Hkv * hd) * 4);
        dev_copy(&dev, &tv, (size_t)(T * Hkv * hd) * 4);
    }
    dev_copy(&dev, &tx, (size_t)(n * in) * 4);
    if (strcmp(op, "gram") == 0)
        dev_copy(&dev, &tg, (size_t)(in * in) * 4);
    else if (strcmp(op, "copy") == 0)
        dev_copy(&dev, &ty, (size_t)(n * in) * 4);
    else
        dev_copy(&dev, &ty, (size_t)(n * (out > in ? out : in)) * 4);
    int iters = 0;
    double t0 = 0, t = 0;
    for (int warm = 1; warm >= 0; warm--) {
        iters = 0;
        t0 = awq_time_now();
        do {
            awq_status st = AWQ_OK;
            for (int b = 0; b < 8 && st == AWQ_OK; b++) {
                if (strcmp(op, "gram") == 0)
                    st = dev.ops->gram(dev.ctx, &tg, &tx, false);
                else if (strcmp(op, "attention") == 0)
                    st = dev.ops->attention(dev.ctx, &to, &tq, &tk, &tv, 0, 0.125f, 0);
                else if (strcmp(op, "w4a16") == 0)
                    st = dev.ops->matmul_w4a16(dev.ctx, &ty, &tx, &q);
                else if (strcmp(op, "copy") == 0)
                    st = dev.ops->convert(dev.ctx, &ty, &tx);
                else
                    st = dev.ops->matmul(dev.ctx, &ty, &tx, &tw, NULL);
            }
            if (st == AWQ_OK) st = dev.ops->synchronize(dev.ctx);
            if (st != AWQ_OK) {
                fprintf(stderr, "%s: %s\n", op, awq_runtime_last_error(rt));
                return 1;
            }
            iters += 8;
            t = awq_time_now() - t0;
        } while (t < (warm ? 0.2 : secs));
    }
    printf("%-9s %-6s %-4s n=%-6lld in=%-5lld out=%-6lld %9.3f ms %8.1f GFLOP/s %8.1f GB/s\n", be, op,
           strcmp(op, "matmul") == 0 ? wt : "-", (long long)n, (long long)in, (long long)out, t / iters * 1e3,
           flops * iters / t * 1e-9, bytes * iters / t * 1e-9);
    if (q.prepared && dev.ops->weight_release) dev.ops->weight_release(dev.ctx, &q);
    awq_device_close(&dev);
    awq_runtime_destroy(rt);
    return 0;
}
