/* cpu_ops.c - the ops table of the built-in "cpu" reference backend. */
#include "cpu_backend.h"
#include "kernels.h"

static const awq_backend_ops cpu_ops = {
    .abi_version = AWQ_BACKEND_ABI_VERSION,
    .struct_size = sizeof(awq_backend_ops),
    .name = "cpu",
    .device_count = awq_cpu_device_count,
    .device_info = awq_cpu_device_info,
    .create = awq_cpu_create,
    .destroy = awq_cpu_destroy,
    AWQ_CPU_MEMORY_OPS AWQ_CPU_KERNEL_OPS.matmul_w4a16_multi = awq_cpu_matmul_w4a16_multi,
    .matmul_q8 = awq_cpu_matmul_q8,
};

#ifndef AWQ_CPU_PLUGIN
const awq_backend_ops *awq_backend_cpu_ops(void) { return &cpu_ops; }
#endif
