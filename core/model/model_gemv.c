/* model_gemv.c - loading AutoAWQ GEMV-layout linears: converted once to the canonical GEMM
 * layout on the host (core/formats/pack.c), then uploaded like a GEMM checkpoint. */
#include <stdio.h>
#include <string.h>

#include "model.h"
#include "pack.h"
#include "safetensors.h"

static awq_status find(awq_runtime *rt, const awq_safetensors *st, const char *prefix, const char *suffix,
                       awq_dtype dt, int64_t r, int64_t c, const awq_st_tensor **out) {
    char name[256];
    snprintf(name, sizeof name, "%s.%s", prefix, suffix);
    const awq_st_tensor *t = awq_st_find(st, name);
    if (!t) return awq_set_error(rt, AWQ_ERR_FORMAT, "tensor '%s' is missing", name);
    if (t->dtype != dt || t->ndim != 2 || t->shape[0] != r || t->shape[1] != c)
        return awq_set_error(rt, AWQ_ERR_FORMAT,
                             "%s: %s: expected (%lld, %lld) %s for a GEMV checkpoint, got %s with %d dims",
                             awq_st_file_path(st, t->file), name, (long long)r, (long long)c,
                             awq_dtype_name(dt), awq_dtype_name(t->dtype), t->ndim);
    *out = t;
    return AWQ_OK;
}

awq_status awq_model_load_gemv_linear(awq_runtime *rt, const awq_device *dev, awq_buflist *list,
                                      const awq_safetensors *st, const char *prefix, awq_linear *l) {
    int64_t out = l->q.out, in = l->q.in, gs = l->q.group_size, G = in / gs;
    awq_pack_shapes sh;
    awq_status s = awq_pack_check(rt, AWQ_FORMAT_GEMV, out, in, gs, &sh);
    if (s != AWQ_OK) return s;
    const awq_st_tensor *tq, *tz, *ts;
    if ((s = find(rt, st, prefix, "qweight", AWQ_DTYPE_I32, sh.qweight[0], sh.qweight[1], &tq)) ||
        (s = find(rt, st, prefix, "qzeros", AWQ_DTYPE_I32, sh.qzeros[0], sh.qzeros[1], &tz)) ||
        (s = find(rt, st, prefix, "scales", AWQ_DTYPE_F16, sh.scales[0], sh.scales[1], &ts)))
        return s;
    int32_t *qw = awq_malloc((size_t)(in * out / 8) * 4), *qz = awq_malloc((size_t)(G * out / 8) * 4);
    uint16_t *sc = awq_malloc((size_t)(G * out) * 2);
    if (!qw || !qz || !sc) {
        s = awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "%s: out of memory", prefix);
        goto done;
    }
    if ((s = awq_gemv_to_gemm(rt, out, in, gs, tq->data, tz->data, ts->data, qw, qz, sc))) goto done;
    int64_t qwe[2] = {in, out / 8}, qze[2] = {G, out / 8}, sce[2] = {G, out};
    if ((s = awq_tensor_alloc(rt, dev, list, AWQ_DTYPE_I32, 2, qwe, &l->q.qweight)) ||
        (s = awq_tensor_alloc(rt, dev, list, AWQ_DTYPE_I32, 2, qze, &l->q.qzeros)) ||
        (s = awq_tensor_alloc(rt, dev, list, AWQ_DTYPE_F16, 2, sce, &l->q.scales)) ||
        (s = dev->ops->upload(dev->ctx, l->q.qweight.data, 0, qw, (size_t)(in * out / 8) * 4)) ||
        (s = dev->ops->upload(dev->ctx, l->q.qzeros.data, 0, qz, (size_t)(G * out / 8) * 4)) ||
        (s = dev->ops->upload(dev->ctx, l->q.scales.data, 0, sc, (size_t)(G * out) * 2)))
        goto done;
    awq_st_release(st, tq);
    awq_st_release(st, tz);
    awq_st_release(st, ts);
done:
    awq_free(qw);
    awq_free(qz);
    awq_free(sc);
    return s;
}
