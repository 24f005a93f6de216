/*
 * intrin.cuh - the ONLY file of the CUDA backend with inline PTX, and the seam between the two
 * ways every kernel is built (docs/kernels.md 5):
 *
 *   nvcc (AWQ_CUDA_EMU undefined): the functions below are inline PTX / CUDA builtins;
 *   host C++ (-DAWQ_CUDA_EMU):     emu/emu.h provides the same names on the SIMT emulator
 *                                  (one fiber per CUDA thread, warp collectives per the PTX ISA).
 *
 * Kernel sources (kernels/\*.cuh) may use, besides ordinary C++ (templates, constexpr, structs):
 *
 *   threadIdx blockIdx blockDim gridDim (.x .y .z, unsigned)        dim3 uint4 uint2 float4 float2
 *   __global__ __device__ __forceinline__ __launch_bounds__(n) __restrict__
 *   __syncthreads()  __syncwarp()  __threadfence()
 *   __shfl_xor_sync(mask, v, lanemask)  __shfl_down_sync(mask, v, delta)  __shfl_sync(mask, v, src)
 *       v: float, int, unsigned, double; mask must be 0xffffffff (the whole warp)
 *   __host__ (for helpers shared with host code)
 *   atomicAdd(float*, float) atomicAdd(int*, int) atomicAdd(unsigned*, unsigned) atomicExch(int*, int)
 *   libm functions of float (expf, sqrtf, fabsf, fmaxf, fminf, floorf, nearbyintf, tanhf, logf,
 *   rintf, ...) and of double (sqrt, rint), __fmul_rn-style unfused products where a kernel must
 *   match the cpu's non-contracted arithmetic, and the awqk_* functions below. Not sinf/cosf: their
 *   slow path puts a stack frame in the kernel (the no-local-memory gate); rope reduces its angle
 *   itself.
 *   AWQK_SMEM(type, name)  declares `type *name` = the block's dynamic shared memory (128-byte
 *       aligned). Static __shared__ arrays are NOT allowed (the emulator sizes shared memory from
 *       the launch's dynamic size only, poisons it per block, and checks bounds with ASan).
 *
 * Anything else (warp-synchronous tricks without __syncwarp, __ldg on non-const data, texture,
 * cooperative groups, inline asm outside this file) is not allowed in kernels.
 *
 * Half and bfloat16 values are stored as uint16_t; a half2 register is a uint32_t with the
 * lower-indexed element in bits 0-15 (as in PTX).
 */
#ifndef AWQ_CUDA_INTRIN_CUH
#define AWQ_CUDA_INTRIN_CUH

#include <stdint.h>

#ifdef AWQ_CUDA_EMU
#include "../emu/emu.h" /* same names, on the host */
#else

#include <cuda_runtime.h>

#define AWQK_DEV __device__ __forceinline__

#define AWQK_SMEM(type, name)                                    \
    extern __shared__ __align__(128) unsigned char awqk_smem_[]; \
    type *name = reinterpret_cast<type *>(awqk_smem_)

/* ---- fp16 / bf16 scalars (round to nearest even) ----------------------------------------- */
AWQK_DEV float awqk_h2f(uint16_t h) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}
AWQK_DEV uint16_t awqk_f2h(float f) {
    uint16_t h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
}
AWQK_DEV float awqk_bf2f(uint16_t b) { return __uint_as_float((uint32_t)b << 16); }
AWQK_DEV uint16_t awqk_f2bf(float f) {
    uint32_t u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}
AWQK_DEV uint32_t awqk_float_as_uint(float f) { return __float_as_uint(f); }
AWQK_DEV float awqk_uint_as_float(uint32_t u) { return __uint_as_float(u); }

/* ---- half2 arithmetic on uint32_t (one rounding per operation, as PTX f16x2) -------------- */
AWQK_DEV uint32_t awqk_hadd2(uint32_t a, uint32_t b) {
    uint32_t r;
    asm("add.rn.f16x2 %0, %1, %2;" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
AWQK_DEV uint32_t awqk_hsub2(uint32_t a, uint32_t b) {
    uint32_t r;
    asm("sub.rn.f16x2 %0, %1, %2;" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
AWQK_DEV uint32_t awqk_hmul2(uint32_t a, uint32_t b) {
    uint32_t r;
    asm("mul.rn.f16x2 %0, %1, %2;" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
AWQK_DEV uint32_t awqk_hfma2(uint32_t a, uint32_t b, uint32_t c) {
    uint32_t r;
    asm("fma.rn.f16x2 %0, %1, %2, %3;" : "=r"(r) : "r"(a), "r"(b), "r"(c));
    return r;
}
/* (lo, hi) floats -> half2, each rounded to nearest even */
AWQK_DEV uint32_t awqk_f2_to_h2(float lo, float hi) {
    return (uint32_t)awqk_f2h(lo) | ((uint32_t)awqk_f2h(hi) << 16); /* cvt.rn.f16x2.f32 is sm_80+ */
}
AWQK_DEV float2 awqk_h2_to_f2(uint32_t h) {
    return make_float2(awqk_h2f((uint16_t)(h & 0xffffu)), awqk_h2f((uint16_t)(h >> 16)));
}

/* ---- bit operations ----------------------------------------------------------------------- */
/* lop3.b32: result bit i = (LUT >> ((a_i << 2) | (b_i << 1) | c_i)) & 1 */
template <int LUT> AWQK_DEV uint32_t awqk_lop3(uint32_t a, uint32_t b, uint32_t c) {
    uint32_t r;
    asm("lop3.b32 %0, %1, %2, %3, %4;" : "=r"(r) : "r"(a), "r"(b), "r"(c), "n"(LUT));
    return r;
}

/* ---- shared memory address + ldmatrix (PTX ISA "ldmatrix"; sm_75+) ------------------------ */
AWQK_DEV uint32_t awqk_smem_u32(const void *p) { return (uint32_t)__cvta_generic_to_shared(p); }
/* x4: lanes 8m..8m+7 give the 16-byte-aligned row addresses of matrix m (m = 0..3);
 * register m of lane l = {M_m[l/4][2(l%4)], M_m[l/4][2(l%4)+1]}; .trans: {M_m[2(l%4)][l/4],
 * M_m[2(l%4)+1][l/4]}. x2: matrices 0,1 from lanes 0..15 (addresses of lanes 16..31 ignored). */
AWQK_DEV void awqk_ldsm_x4(uint32_t r[4], const void *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(awqk_smem_u32(p)));
}
AWQK_DEV void awqk_ldsm_x4_trans(uint32_t r[4], const void *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(awqk_smem_u32(p)));
}
AWQK_DEV void awqk_ldsm_x2(uint32_t r[2], const void *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];"
                 : "=r"(r[0]), "=r"(r[1])
                 : "r"(awqk_smem_u32(p)));
}
AWQK_DEV void awqk_ldsm_x2_trans(uint32_t r[2], const void *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];"
                 : "=r"(r[0]), "=r"(r[1])
                 : "r"(awqk_smem_u32(p)));
}

/* ---- tensor cores --------------------------------------------------------------------------
 * mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 (sm_80+), d += a * b; g = lane>>2, t = lane&3:
 *   a[0] = A[g][2t..2t+1], a[1] = A[g+8][2t..2t+1], a[2] = A[g][2t+8..2t+9], a[3] = A[g+8][2t+8..]
 *   b[0] = B[2t..2t+1][g], b[1] = B[2t+8..2t+9][g]       (B is k x n)
 *   d[0..1] = C[g][2t..2t+1], d[2..3] = C[g+8][2t..2t+1]
 * mma.sync.aligned.m16n8k8.row.col.f32.f16.f16.f32 (sm_75+): a[0] = A[g][2t..], a[1] = A[g+8][2t..],
 *   b[0] = B[2t..2t+1][g], d as above. Two of them make one m16n8k16 on sm_75.
 * The m16n8k16 form exists only for __CUDA_ARCH__ >= 800; compiled for sm_75 it traps (the
 * launchers never select it there). */
AWQK_DEV void awqk_mma_m16n8k16(float d[4], const uint32_t a[4], const uint32_t b[2]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
                 "{%8,%9}, {%0,%1,%2,%3};"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
    __trap();
#endif
}
AWQK_DEV void awqk_mma_m16n8k8(float d[4], const uint32_t a[2], const uint32_t b[1]) {
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5}, {%6}, "
                 "{%0,%1,%2,%3};"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(b[0]));
}

/* ---- asynchronous copies (sm_80+; on sm_75 plain synchronous 16-byte copies) --------------
 * awqk_cp_async16(dst_smem, src_gmem): 16 bytes, both 16-byte aligned (cp.async.cg).
 * awqk_cp_async16_zfill(dst, src, pred): as above when pred, else writes 16 zero bytes without
 *   reading src (src-size 0).
 * awqk_cp_async_commit(): closes the current group. awqk_cp_async_wait<N>(): waits until at
 * most N groups are pending. Data of a pending group must not be read (the emulator poisons
 * the destination until the wait). A __syncthreads() is still needed after the wait before
 * other threads read what this thread copied. */
AWQK_DEV void awqk_cp_async16(void *dst, const void *src) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(awqk_smem_u32(dst)), "l"(src));
#else
    *reinterpret_cast<uint4 *>(dst) = *reinterpret_cast<const uint4 *>(src);
#endif
}
AWQK_DEV void awqk_cp_async16_zfill(void *dst, const void *src, bool pred) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(awqk_smem_u32(dst)), "l"(src),
                 "r"(pred ? 16 : 0));
#else
    *reinterpret_cast<uint4 *>(dst) = pred ? *reinterpret_cast<const uint4 *>(src) : make_uint4(0, 0, 0, 0);
#endif
}
AWQK_DEV void awqk_cp_async_commit() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("cp.async.commit_group;" ::);
#endif
}
template <int N> AWQK_DEV void awqk_cp_async_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("cp.async.wait_group %0;" ::"n"(N));
#endif
}

/* ---- global loads ------------------------------------------------------------------------- */
/* 128-bit read-only load (ld.global.nc.v4.u32); p 16-byte aligned, data not written by the kernel. */
AWQK_DEV uint4 awqk_ldg128(const void *p) { return __ldg(reinterpret_cast<const uint4 *>(p)); }

#endif /* AWQ_CUDA_EMU */

/* ---- launching (used by kernels/launch.cu only) ---------------------------------------------
 * AWQK_LAUNCH(kc, "name", kern, grid, block, smem_bytes, args...) launches kern on kc->stream and
 * returns from the enclosing launcher: 0, or -1 with kc->err set ("name: <cuda error>"). kern
 * may be a template instance in parentheses or a function pointer variable. */
#ifdef AWQ_CUDA_EMU
#define AWQK_LAUNCH(kc, name, kern, grid, block, smem, ...) \
    return emu_launch_kernel((kc), (name), (grid), (block), (size_t)(smem), [=]() { kern(__VA_ARGS__); })
#else
#define AWQK_LAUNCH(kc, name, kern, grid, block, smem, ...)                                 \
    do {                                                                                    \
        kern<<<(grid), (block), (size_t)(smem), (cudaStream_t)(kc)->stream>>>(__VA_ARGS__); \
        return awqk_check_launch((kc), (name));                                             \
    } while (0)
#endif

#endif /* AWQ_CUDA_INTRIN_CUH */
