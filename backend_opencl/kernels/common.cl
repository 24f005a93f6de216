/*
 * common.cl - helpers prepended to every program of the OpenCL backend (ocl_backend.c builds each
 * program as common.cl + its own source).
 *
 * Portability (OpenCL C 1.2, no fp16 arithmetic required): halves are only a storage format,
 * read with vload_half and written with vstore_half_rte; all arithmetic is in float. bfloat16 is
 * the top 16 bits of a float. Element offsets arrive as ulong and strides as long, so tensors
 * past 2^31 elements address correctly. Build-time constants: TS (tile edge of the GEMM tiles),
 * LS (work-group size of the row reductions), both chosen by the host from the device limits.
 */

/* With cl_khr_fp16 (AWQ_FP16 defined by the host) halves are loaded as the half type; without it,
 * through vload_half. Arithmetic stays fp32 either way, so results do not depend on the device's
 * fp16 support. */
#ifdef AWQ_FP16
#pragma OPENCL EXTENSION cl_khr_fp16 : enable
#define LD_HALF(i, p) ((float)(p)[i])
#else
#define LD_HALF(i, p) vload_half((i), (p))
#endif

/* Storage dtypes, the values of awq_dtype. */
#define DT_F32 0
#define DT_F16 1
#define DT_BF16 2

/* Element i of a float row of dtype dt starting at byte address p. */
inline float ld_any(__global const uchar *p, int dt, long i) {
    if (dt == DT_F16) return LD_HALF(i, (__global const half *)p);
    if (dt == DT_BF16) return as_float((uint)((__global const ushort *)p)[i] << 16);
    return ((__global const float *)p)[i];
}

/* float -> bfloat16 bits, round to nearest even, NaN stays a quiet NaN. */
inline ushort f32_to_bf16(float f) {
    uint u = as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (ushort)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (ushort)(u >> 16);
}

inline void st_any(__global uchar *p, int dt, long i, float v) {
    if (dt == DT_F16) vstore_half_rte(v, i, (__global half *)p);
    else if (dt == DT_BF16) ((__global ushort *)p)[i] = f32_to_bf16(v);
    else ((__global float *)p)[i] = v;
}

/* Logical column j (0..7) of an AutoAWQ GEMM-order word: slot order [0,2,4,6,1,3,5,7], so
 * column j lives in nibble (j >> 1) + 4 * (j & 1). */
inline float awq_nib(uint word, int j) {
    return (float)((word >> (4 * ((j >> 1) + 4 * (j & 1)))) & 0xfu);
}

/* Tree reduction of one float per work-item over a work-group of LS items (LS a power of two).
 * Every work-item gets the result. scratch: __local float[LS]. */
inline float wg_sum(float v, __local float *scratch) {
    int l = get_local_id(0);
    scratch[l] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = LS / 2; s > 0; s >>= 1) {
        if (l < s) scratch[l] += scratch[l + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    float r = scratch[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return r;
}

inline float wg_max(float v, __local float *scratch) {
    int l = get_local_id(0);
    scratch[l] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = LS / 2; s > 0; s >>= 1) {
        if (l < s) scratch[l] = fmax(scratch[l], scratch[l + s]);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    float r = scratch[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return r;
}

/* Four consecutive elements i..i+3 of a float row of dtype dt (p aligned to the element size). */
inline float4 ld4_any(__global const uchar *p, int dt, long i) {
    if (dt == DT_F16) return vload_half4(0, (__global const half *)p + i);
    if (dt == DT_BF16) return as_float4(convert_uint4(vload4(0, (__global const ushort *)p + i)) << 16);
    return vload4(0, (__global const float *)p + i);
}

/* Eight consecutive elements i..i+7 of a float row of dtype dt. */
inline float8 ld8_any(__global const uchar *p, int dt, long i) {
    if (dt == DT_F16) return vload_half8(0, (__global const half *)p + i);
    if (dt == DT_BF16) return as_float8(convert_uint8(vload8(0, (__global const ushort *)p + i)) << 16);
    return vload8(0, (__global const float *)p + i);
}
