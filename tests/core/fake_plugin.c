/*
 * fake_plugin.c - a backend plugin for test_registry, built several times as a MODULE library
 * with one of these definitions (see extra.cmake):
 *   FAKE_ID=name         the backend name (default fake)
 *   FAKE_BAD_ABI         reports AWQ_BACKEND_ABI_VERSION + 1
 *   FAKE_SMALL_STRUCT    reports an ops table that ends before the last required op
 *   FAKE_OLD_STRUCT      reports an older, shorter table (no supports_op): loads, tail NULL
 *   FAKE_MISSING_OP      leaves the required op rmsnorm NULL
 *   FAKE_PROBE_ZERO      probe returns 0 with a reason
 *   FAKE_NO_EXPORTS      exports neither awq_backend_entry nor awq_backend_probe
 * Like a real plugin it uses only the public headers and does not link libawq.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "awq_backend.h"

#ifndef FAKE_ID
#define FAKE_ID fake
#endif
#define FAKE_STR2(x) #x
#define FAKE_STR(x)  FAKE_STR2(x)
#define FAKE_NAME    FAKE_STR(FAKE_ID)

struct awq_backend_ctx {
    int32_t device;
};

static int32_t fake_device_count(void) { return 2; }

static awq_status fake_device_info(int32_t device, awq_device_info *out) {
    if (device < 0 || device >= 2) return AWQ_ERR_INVALID_ARG;
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "Fake Device %d", (int)device);
    out->memory_bytes = 1 << 20;
    return AWQ_OK;
}

static awq_status fake_create(int32_t device, const awq_backend_config *cfg, awq_backend_ctx **out) {
    (void)cfg;
    awq_backend_ctx *c = calloc(1, sizeof *c);
    if (!c) return AWQ_ERR_OUT_OF_MEMORY;
    c->device = device;
    *out = c;
    return AWQ_OK;
}

static void fake_destroy(awq_backend_ctx *ctx) { free(ctx); }

/* Every op is a stub: the registry only checks that the members are set. */
#define STUB(name, ...) \
    static awq_status fake_##name(__VA_ARGS__) { return AWQ_ERR_UNSUPPORTED; }
STUB(buffer_alloc, awq_backend_ctx *c, size_t n, void **b)
static void fake_buffer_free(awq_backend_ctx *c, void *b) {
    (void)c;
    (void)b;
}
STUB(upload, awq_backend_ctx *c, void *b, size_t o, const void *s, size_t n)
STUB(download, awq_backend_ctx *c, void *d, const void *b, size_t o, size_t n)
static awq_status fake_synchronize(awq_backend_ctx *c) {
    (void)c;
    return AWQ_OK;
}
STUB(memset_zero, awq_backend_ctx *c, void *b, size_t o, size_t n)
STUB(matmul, awq_backend_ctx *c, awq_tensor *y, const awq_tensor *x, const awq_tensor *w, const awq_tensor *b)
STUB(matmul_w4a16, awq_backend_ctx *c, awq_tensor *y, const awq_tensor *x, const awq_qlinear *w)
#ifndef FAKE_MISSING_OP
STUB(rmsnorm, awq_backend_ctx *c, awq_tensor *y, const awq_tensor *x, const awq_tensor *g, float e)
#endif
STUB(rope, awq_backend_ctx *c, awq_tensor *x, const awq_tensor *p, const awq_tensor *f, float a)
STUB(attention, awq_backend_ctx *c, awq_tensor *o, const awq_tensor *q, const awq_tensor *k,
     const awq_tensor *v, int32_t n, float s, int32_t w)
STUB(silu_mul, awq_backend_ctx *c, awq_tensor *y, const awq_tensor *g, const awq_tensor *u)
STUB(binop, awq_backend_ctx *c, awq_tensor *y, const awq_tensor *a, const awq_tensor *b, awq_binop op)
STUB(get_rows, awq_backend_ctx *c, awq_tensor *y, const awq_tensor *t, const awq_tensor *i)
STUB(convert, awq_backend_ctx *c, awq_tensor *y, const awq_tensor *x)
STUB(fake_quant, awq_backend_ctx *c, awq_tensor *wq, const awq_tensor *w, const awq_tensor *s,
     const awq_tensor *cl, const awq_quant_desc *q)
STUB(quantize_w4, awq_backend_ctx *c, awq_tensor *co, awq_tensor *s, awq_tensor *z, const awq_tensor *w,
     const awq_quant_desc *q)

#ifdef FAKE_OLD_STRUCT
/* Set, but past the struct_size this variant declares: the core must never read it. */
static bool fake_never(int32_t device, const awq_op_query *q) {
    (void)device;
    (void)q;
    abort();
}
#endif

static const awq_backend_ops fake_ops = {
#ifdef FAKE_BAD_ABI
    .abi_version = AWQ_BACKEND_ABI_VERSION + 1,
#else
    .abi_version = AWQ_BACKEND_ABI_VERSION,
#endif
#if defined(FAKE_SMALL_STRUCT)
    .struct_size = (uint32_t)offsetof(awq_backend_ops, quantize_w4), /* ends before a required op */
#elif defined(FAKE_OLD_STRUCT)
    .struct_size = (uint32_t)offsetof(awq_backend_ops, supports_op), /* built before supports_op */
#else
    .struct_size = (uint32_t)sizeof(awq_backend_ops),
#endif
    .name = FAKE_NAME,
    .device_count = fake_device_count,
    .device_info = fake_device_info,
    .create = fake_create,
    .destroy = fake_destroy,
    .buffer_alloc = fake_buffer_alloc,
    .buffer_free = fake_buffer_free,
    .upload = fake_upload,
    .download = fake_download,
    .synchronize = fake_synchronize,
    .memset_zero = fake_memset_zero,
    .matmul = fake_matmul,
    .matmul_w4a16 = fake_matmul_w4a16,
#ifndef FAKE_MISSING_OP
    .rmsnorm = fake_rmsnorm,
#endif
    .rope = fake_rope,
    .attention = fake_attention,
    .silu_mul = fake_silu_mul,
    .binop = fake_binop,
    .get_rows = fake_get_rows,
    .convert = fake_convert,
    .fake_quant = fake_fake_quant,
    .quantize_w4 = fake_quantize_w4,
#ifdef FAKE_OLD_STRUCT
    .supports_op = fake_never,
#endif
};

static int fake_probe(char *why, size_t cap) {
#ifdef FAKE_PROBE_ZERO
    snprintf(why, cap, "no fake device here");
    return 0;
#else
    (void)why;
    (void)cap;
    return 5;
#endif
}

#ifndef FAKE_NO_EXPORTS
AWQ_BACKEND_PLUGIN(fake_ops, fake_probe)
#else
/* Keep the statics referenced so the module still builds cleanly. */
AWQ_EXPORT int awq_fake_unrelated_symbol(void) { return fake_probe(NULL, 0) + (fake_ops.name != NULL); }
#endif
