/*
 * common.cuh - small device helpers shared by every kernel file: dtype-generic loads and
 * stores, warp reductions. Single source (nvcc and the host emulator, see intrin.cuh).
 */
#ifndef AWQ_CUDA_COMMON_CUH
#define AWQ_CUDA_COMMON_CUH

#include "intrin.cuh"
#include "launch.h"

/* Element i of a float tensor of dtype dt (AWQK_F32 / AWQK_F16 / AWQK_BF16). */
__device__ __forceinline__ float awqk_ld(const void *p, int dt, long long i) {
    if (dt == AWQK_F16) return awqk_h2f(static_cast<const uint16_t *>(p)[i]);
    if (dt == AWQK_BF16) return awqk_bf2f(static_cast<const uint16_t *>(p)[i]);
    return static_cast<const float *>(p)[i];
}
/* Stores v rounded to nearest even into element i of a float tensor of dtype dt. */
__device__ __forceinline__ void awqk_st(void *p, int dt, long long i, float v) {
    if (dt == AWQK_F16)
        static_cast<uint16_t *>(p)[i] = awqk_f2h(v);
    else if (dt == AWQK_BF16)
        static_cast<uint16_t *>(p)[i] = awqk_f2bf(v);
    else
        static_cast<float *>(p)[i] = v;
}

__device__ __forceinline__ float awqk_warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float awqk_warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

#endif
