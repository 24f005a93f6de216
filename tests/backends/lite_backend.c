/*
 * lite_backend.c - the test plugin "cpu-lite" (libawq-backend-cpu-lite.so, never installed).
 *
 * The cpu backend's kernels with the optional ops the core can do without left out (NULL) or
 * declined by supports_op(), so that test_fallback.c sees every per-op fallback taken:
 *   NULL:      matmul_w4a16_multi, weight_prepare, softcap, attention_softcap, matmul_q8,
 *              scalar, clip_search, gram
 *   declined:  act_mul(gelu_tanh) (act_mul(silu) is accepted), reduce(wmean_groups)
 * Every fallback runs the same cpu kernels (on the device or over host copies), so a model on
 * cpu-lite must give the cpu backend's results.
 */
#include "cpu_backend.h"
#include "kernels.h"

static bool lite_supports(int32_t device, const awq_op_query *q) {
    if (device != 0) return false;
    if (q->op == AWQ_OP_ACT_MUL) return q->param == AWQ_ACT_SILU;
    if (q->op == AWQ_OP_REDUCE) return q->param != AWQ_REDUCE_WMEAN_GROUPS;
    return true;
}

static const awq_backend_ops lite_ops = {
    .abi_version = AWQ_BACKEND_ABI_VERSION,
    .struct_size = sizeof(awq_backend_ops),
    .name = "cpu-lite",
    .device_count = awq_cpu_device_count,
    .device_info = awq_cpu_device_info,
    .create = awq_cpu_create,
    .destroy = awq_cpu_destroy,
    AWQ_CPU_MEMORY_OPS.matmul = awq_cpu_matmul,
    .matmul_w4a16 = awq_cpu_matmul_w4a16,
    .rmsnorm = awq_cpu_rmsnorm,
    .rope = awq_cpu_rope,
    .attention = awq_cpu_attention,
    .silu_mul = awq_cpu_silu_mul,
    .binop = awq_cpu_binop,
    .get_rows = awq_cpu_get_rows,
    .convert = awq_cpu_convert,
    .fake_quant = awq_cpu_fake_quant,
    .quantize_w4 = awq_cpu_quantize_w4,
    .reduce = awq_cpu_reduce,
    .act_mul = awq_cpu_act_mul,
    .supports_op = lite_supports,
};

static int lite_probe(char *why, size_t cap) {
    (void)why;
    (void)cap;
    return 1;
}

AWQ_BACKEND_PLUGIN(lite_ops, lite_probe)
