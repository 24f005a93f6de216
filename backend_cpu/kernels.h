/* kernels.h - the reference cpu kernels (backend_cpu/kernels/). Filled in by the kernel work. */
#ifndef AWQ_BACKEND_CPU_KERNELS_H
#define AWQ_BACKEND_CPU_KERNELS_H

#include "cpu_backend.h"

/* Designated initializers for the kernel members of the ops table. */
#define AWQ_CPU_KERNEL_OPS

#endif
