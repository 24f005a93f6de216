/*
 * launch.cu - the launchers of launch.h. nvcc compiles this file for the "cuda" plugin; the host
 * C++ compiler compiles it again through launch_emu.cc (AWQ_CUDA_EMU) for the "cuda-emu" plugin,
 * where AWQK_LAUNCH runs the same kernels on the SIMT emulator (emu/emu.h).
 */
#include <stdio.h>

#include "intrin.cuh"
#include "launch.h"

#ifndef AWQ_CUDA_EMU
extern "C" int awqk_check_launch(awqk_ctx *kc, const char *name) {
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess) return 0;
    snprintf(kc->err, sizeof kc->err, "%s: %s: %s", name, cudaGetErrorName(e), cudaGetErrorString(e));
    return -1;
}
#endif

#include "launch_gemm.cuh" /* W4A16, dense GEMM/GEMV, gram */
#include "launch_ops.cuh"  /* row/element-wise ops, attention, quantization ops */
