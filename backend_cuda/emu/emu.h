/*
 * emu.h - the SIMT emulator: the names kernels/intrin.cuh promises CUDA kernels, provided on the
 * host so that every kernel (single source) also runs on the CPU (docs/kernels.md
 * 5.1). Included by intrin.cuh under -DAWQ_CUDA_EMU; implemented in emu.cc.
 *
 * Model: a launch runs its blocks on a pool of host threads (AWQ_CUDA_EMU_THREADS, default the
 * hardware concurrency); each host thread runs whole blocks, one fiber per CUDA thread of the
 * block (x86-64: a hand-written context switch; elsewhere ucontext). A fiber runs until it
 * exits or reaches __syncthreads / a warp collective; collectives are a rendezvous of the 32
 * lanes where the last lane to arrive computes every lane's result (PTX ISA semantics).
 * Misuse that the emulator can see (divergent barriers or collectives, partial masks, bad
 * ldmatrix / cp.async addresses, __trap, launch limits) ends the launch with -1 and
 * kc->err = "<kernel>: block (x,y,z) thread (x,y,z): <what>". The emulator never prints,
 * exits or aborts (a wild pointer in a kernel still crashes, as on a GPU it would fault).
 *
 * Environment: AWQ_CUDA_EMU_THREADS (host threads), AWQ_CUDA_EMU_STACK (fiber stack bytes,
 * default 64 KiB, 256 KiB under sanitizers; suffix k/m allowed), AWQ_CUDA_EMU_SEED (seed of the
 * fiber order permutation after each barrier; 0 = natural order), AWQ_CUDA_EMU_UCONTEXT=1
 * (force the portable ucontext switch).
 */
#ifndef AWQ_CUDA_EMU_H
#define AWQ_CUDA_EMU_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <functional>
#include <type_traits>

#include "../kernels/launch.h"

/* ---- sanitizer detection (ThreadSanitizer needs emulator bookkeeping left uninstrumented) -- */
#if defined(__SANITIZE_THREAD__)
#define EMU_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define EMU_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EMU_ASAN 1
#endif
#endif
#ifdef EMU_TSAN
#define EMU_NOTSAN __attribute__((no_sanitize("thread")))
#else
#define EMU_NOTSAN
#endif

/* CUDA's `#pragma unroll` in kernels is unknown to GCC: not worth a warning per loop (GCC >= 13 honours
 * this; GCC 12 needs -Wno-unknown-pragmas on the command line). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wunknown-pragmas"
#endif

/* ---- CUDA qualifiers: no-ops on the host ------------------------------------------------- */
#define __global__ inline /* inline: kernels live in headers included by several TUs */
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
/* Static shared memory is not allowed (intrin.cuh): use AWQK_SMEM. */
#define __shared__ __shared___is_not_allowed_in_kernels_use_AWQK_SMEM
#define AWQK_DEV   inline

/* ---- CUDA vector types (CUDA's alignment) ------------------------------------------------- */
struct uint3 {
    unsigned x, y, z;
};
struct int3 {
    int x, y, z;
};
struct float3 {
    float x, y, z;
};
struct alignas(8) uint2 {
    unsigned x, y;
};
struct alignas(8) int2 {
    int x, y;
};
struct alignas(8) float2 {
    float x, y;
};
struct alignas(16) uint4 {
    unsigned x, y, z, w;
};
struct alignas(16) int4 {
    int x, y, z, w;
};
struct alignas(16) float4 {
    float x, y, z, w;
};
struct alignas(16) double2 {
    double x, y;
};
struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
    constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
    constexpr operator uint3() const { return uint3{x, y, z}; }
};
static inline uint2 make_uint2(unsigned x, unsigned y) { return uint2{x, y}; }
static inline uint3 make_uint3(unsigned x, unsigned y, unsigned z) { return uint3{x, y, z}; }
static inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return uint4{x, y, z, w}; }
static inline int2 make_int2(int x, int y) { return int2{x, y}; }
static inline int3 make_int3(int x, int y, int z) { return int3{x, y, z}; }
static inline int4 make_int4(int x, int y, int z, int w) { return int4{x, y, z, w}; }
static inline float2 make_float2(float x, float y) { return float2{x, y}; }
static inline float3 make_float3(float x, float y, float z) { return float3{x, y, z}; }
static inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }
static inline double2 make_double2(double x, double y) { return double2{x, y}; }

/* ---- the current CUDA thread (one host-thread-local pointer, set at every fiber switch) ---- */
struct emu_block_pub {
    uint3 bid;           /* blockIdx */
    dim3 bdim, gdim;     /* blockDim, gridDim */
    unsigned char *smem; /* the block's dynamic shared memory (fresh, 0xFF-poisoned) */
    size_t smem_bytes;
};
struct emu_fiber_pub {
    uint3 tid; /* threadIdx */
    int lin;   /* linear thread index in the block */
    emu_block_pub *blk;
};
extern __thread emu_fiber_pub *emu_tls_cur __attribute__((tls_model("initial-exec")));

EMU_NOTSAN static inline uint3 emu_threadIdx() { return emu_tls_cur->tid; }
EMU_NOTSAN static inline uint3 emu_blockIdx() { return emu_tls_cur->blk->bid; }
EMU_NOTSAN static inline dim3 emu_blockDim() { return emu_tls_cur->blk->bdim; }
EMU_NOTSAN static inline dim3 emu_gridDim() { return emu_tls_cur->blk->gdim; }
EMU_NOTSAN static inline unsigned char *emu_smem_base() { return emu_tls_cur->blk->smem; }
#define threadIdx (emu_threadIdx())
#define blockIdx  (emu_blockIdx())
#define blockDim  (emu_blockDim())
#define gridDim   (emu_gridDim())
constexpr int warpSize = 32;

/* AWQK_SMEM(type, name): `type *name` = the block's dynamic shared memory (128-byte aligned). */
#define AWQK_SMEM(type, name) type *name = reinterpret_cast<type *>(emu_smem_base())

/* ---- errors (end the launch; never return) ------------------------------------------------ */
[[noreturn]] void emu_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
[[noreturn]] void emu_trap();
#define __trap() emu_trap()

/* ---- barriers and warp collectives (emu.cc) ----------------------------------------------- */
enum { EMU_BAR_PLAIN, EMU_BAR_COUNT, EMU_BAR_AND, EMU_BAR_OR };
int emu_syncthreads(int kind, int pred, const char *file, int line);
/* A macro so that the call site (file:line) identifies the barrier: threads of one block
 * waiting at different __syncthreads are reported as divergent. */
#define __syncthreads()        ((void)emu_syncthreads(EMU_BAR_PLAIN, 0, __FILE__, __LINE__))
#define __syncthreads_count(p) emu_syncthreads(EMU_BAR_COUNT, (p) != 0, __FILE__, __LINE__)
#define __syncthreads_and(p)   emu_syncthreads(EMU_BAR_AND, (p) != 0, __FILE__, __LINE__)
#define __syncthreads_or(p)    emu_syncthreads(EMU_BAR_OR, (p) != 0, __FILE__, __LINE__)

enum { EMU_SHFL_IDX, EMU_SHFL_UP, EMU_SHFL_DOWN, EMU_SHFL_BFLY };
uint64_t emu_shfl(int mode, unsigned mask, uint64_t v, int b, int width, int bytes);
enum { EMU_VOTE_BALLOT, EMU_VOTE_ANY, EMU_VOTE_ALL };
unsigned emu_vote(int mode, unsigned mask, int pred);
void emu_syncwarp(unsigned mask);

template <class T> inline T emu_shfl_t(int mode, unsigned mask, T v, int b, int width) {
    static_assert(sizeof(T) == 4 || sizeof(T) == 8, "shuffles move 32- or 64-bit values");
    uint64_t u = 0;
    memcpy(&u, &v, sizeof v);
    u = emu_shfl(mode, mask, u, b, width, (int)sizeof(T));
    T r;
    memcpy(&r, &u, sizeof r);
    return r;
}
#define EMU_SHFL_OVERLOADS(T)                                            \
    inline T __shfl_sync(unsigned m, T v, int src, int w = 32) {         \
        return emu_shfl_t(EMU_SHFL_IDX, m, v, src, w);                   \
    }                                                                    \
    inline T __shfl_up_sync(unsigned m, T v, unsigned d, int w = 32) {   \
        return emu_shfl_t(EMU_SHFL_UP, m, v, (int)d, w);                 \
    }                                                                    \
    inline T __shfl_down_sync(unsigned m, T v, unsigned d, int w = 32) { \
        return emu_shfl_t(EMU_SHFL_DOWN, m, v, (int)d, w);               \
    }                                                                    \
    inline T __shfl_xor_sync(unsigned m, T v, int lm, int w = 32) {      \
        return emu_shfl_t(EMU_SHFL_BFLY, m, v, lm, w);                   \
    }
EMU_SHFL_OVERLOADS(int)
EMU_SHFL_OVERLOADS(unsigned)
EMU_SHFL_OVERLOADS(long)
EMU_SHFL_OVERLOADS(unsigned long)
EMU_SHFL_OVERLOADS(long long)
EMU_SHFL_OVERLOADS(unsigned long long)
EMU_SHFL_OVERLOADS(float)
EMU_SHFL_OVERLOADS(double)
#undef EMU_SHFL_OVERLOADS

inline unsigned __ballot_sync(unsigned m, int p) { return emu_vote(EMU_VOTE_BALLOT, m, p); }
inline int __any_sync(unsigned m, int p) { return (int)emu_vote(EMU_VOTE_ANY, m, p); }
inline int __all_sync(unsigned m, int p) { return (int)emu_vote(EMU_VOTE_ALL, m, p); }
inline void __syncwarp(unsigned m = 0xffffffffu) { emu_syncwarp(m); }

/* ---- memory ordering, atomics (real atomics: blocks run in parallel) ---------------------- */
inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_block() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

inline int atomicAdd(int *p, int v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
inline unsigned atomicAdd(unsigned *p, unsigned v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
inline unsigned long long atomicAdd(unsigned long long *p, unsigned long long v) {
    return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}
template <class F> inline F emu_atomic_fadd(F *p, F v) {
    F old, nv;
    __atomic_load(p, &old, __ATOMIC_RELAXED);
    do nv = old + v;
    while (!__atomic_compare_exchange(p, &old, &nv, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    return old;
}
inline float atomicAdd(float *p, float v) { return emu_atomic_fadd(p, v); }
inline double atomicAdd(double *p, double v) { return emu_atomic_fadd(p, v); }
inline int atomicSub(int *p, int v) { return __atomic_fetch_sub(p, v, __ATOMIC_RELAXED); }
inline unsigned atomicSub(unsigned *p, unsigned v) { return __atomic_fetch_sub(p, v, __ATOMIC_RELAXED); }
inline int atomicExch(int *p, int v) { return __atomic_exchange_n(p, v, __ATOMIC_RELAXED); }
inline unsigned atomicExch(unsigned *p, unsigned v) { return __atomic_exchange_n(p, v, __ATOMIC_RELAXED); }
inline float atomicExch(float *p, float v) {
    float r;
    __atomic_exchange(p, &v, &r, __ATOMIC_RELAXED);
    return r;
}
template <class T> inline T emu_atomic_cas(T *p, T cmp, T v) {
    __atomic_compare_exchange_n(p, &cmp, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
    return cmp; /* the old value either way */
}
inline int atomicCAS(int *p, int c, int v) { return emu_atomic_cas(p, c, v); }
inline unsigned atomicCAS(unsigned *p, unsigned c, unsigned v) { return emu_atomic_cas(p, c, v); }
inline unsigned long long atomicCAS(unsigned long long *p, unsigned long long c, unsigned long long v) {
    return emu_atomic_cas(p, c, v);
}
template <class T> inline T emu_atomic_minmax(T *p, T v, bool mx) {
    T old = __atomic_load_n(p, __ATOMIC_RELAXED);
    while ((mx ? v > old : v < old) &&
           !__atomic_compare_exchange_n(p, &old, v, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {}
    return old;
}
inline int atomicMax(int *p, int v) { return emu_atomic_minmax(p, v, true); }
inline unsigned atomicMax(unsigned *p, unsigned v) { return emu_atomic_minmax(p, v, true); }
inline int atomicMin(int *p, int v) { return emu_atomic_minmax(p, v, false); }
inline unsigned atomicMin(unsigned *p, unsigned v) { return emu_atomic_minmax(p, v, false); }

/* ---- device math names the host lacks ----------------------------------------------------- */
inline float __expf(float x) { return expf(x); }
inline float __exp10f(float x) { return exp10f(x); }
inline float __logf(float x) { return logf(x); }
inline float __log2f(float x) { return log2f(x); }
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline float __tanf(float x) { return tanf(x); }
inline float __powf(float x, float y) { return powf(x, y); }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return sqrtf(x); }
inline float __frsqrt_rn(float x) { return 1.0f / sqrtf(x); }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline float __saturatef(float x) { return x > 0.0f ? (x < 1.0f ? x : 1.0f) : 0.0f; } /* NaN -> 0 */
inline int __float2int_rn(float x) { return (int)nearbyintf(x); }
inline int __float2int_rz(float x) { return (int)x; }
inline unsigned __float_as_uint(float f) {
    unsigned u;
    memcpy(&u, &f, 4);
    return u;
}
inline float __uint_as_float(unsigned u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}
inline int __float_as_int(float f) {
    int u;
    memcpy(&u, &f, 4);
    return u;
}
inline float __int_as_float(int u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}
inline long long __double_as_longlong(double d) {
    long long u;
    memcpy(&u, &d, 8);
    return u;
}
inline double __longlong_as_double(long long u) {
    double d;
    memcpy(&d, &u, 8);
    return d;
}
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x ? __builtin_clz((unsigned)x) : 32; }
inline int __clzll(long long x) { return x ? __builtin_clzll((unsigned long long)x) : 64; }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline unsigned __brev(unsigned x) {
    x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
    x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
    x = ((x >> 4) & 0x0f0f0f0fu) | ((x & 0x0f0f0f0fu) << 4);
    return __builtin_bswap32(x);
}
template <class T> inline T __ldg(const T *p) { return *p; }

/* min / max as CUDA's overload set: the usual arithmetic conversions (int with unsigned ->
 * unsigned), and for floating point fminf/fmaxf semantics (a NaN operand is ignored). */
template <class A, class B,
          class = typename std::enable_if<std::is_arithmetic<A>::value && std::is_arithmetic<B>::value>::type>
inline typename std::common_type<A, B>::type min(A a, B b) {
    typedef typename std::common_type<A, B>::type C;
    if constexpr (std::is_floating_point<C>::value)
        return (C)fmin((C)a, (C)b);
    else
        return (C)b < (C)a ? (C)b : (C)a;
}
template <class A, class B,
          class = typename std::enable_if<std::is_arithmetic<A>::value && std::is_arithmetic<B>::value>::type>
inline typename std::common_type<A, B>::type max(A a, B b) {
    typedef typename std::common_type<A, B>::type C;
    if constexpr (std::is_floating_point<C>::value)
        return (C)fmax((C)a, (C)b);
    else
        return (C)a < (C)b ? (C)b : (C)a;
}

/* ---- fp16 / bf16 scalars (round to nearest even; as the nvcc branch of intrin.cuh) -------- */
inline float awqk_h2f(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu, u;
    if (e == 0) {
        float f = (float)m * 0x1p-24f; /* zero or subnormal, exact */
        return sign ? -f : f;
    }
    if (e == 31)
        u = sign | 0x7f800000u | (m << 13);
    else
        u = sign | ((e + 112) << 23) | (m << 13);
    return __uint_as_float(u);
}
/* double -> fp16 with ONE rounding (nearest even), subnormals, overflow to inf. A NaN gives the
 * canonical 0x7fff, as cvt.rn.f16.f32 and the f16x2 arithmetic do on the GPU. */
inline uint16_t emu_d2h(double d) {
    uint64_t u;
    memcpy(&u, &d, 8);
    uint16_t sign = (uint16_t)((u >> 48) & 0x8000u);
    u &= 0x7fffffffffffffffull;
    if (u > 0x7ff0000000000000ull) return 0x7fff;
    if (u >= 0x40effe0000000000ull) return (uint16_t)(sign | 0x7c00u); /* >= 65520 -> inf */
    int e = (int)(u >> 52) - 1023;
    if (e < -25) return sign;
    uint64_t m = (u & 0xfffffffffffffull) | (1ull << 52); /* value = m * 2^(e-52) */
    int shift = (e - 10 < -24 ? -24 : e - 10) - (e - 52); /* to units of the result's ulp */
    uint64_t r = m >> shift, rem = m & ((1ull << shift) - 1), half = 1ull << (shift - 1);
    if (rem > half || (rem == half && (r & 1))) r++;
    if (e < -14) return (uint16_t)(sign | r); /* subnormal (r == 1024 is the smallest normal) */
    return (uint16_t)(sign | (((uint32_t)(e + 15) << 10) + (uint32_t)r - 1024u)); /* carry ok */
}
inline uint16_t awqk_f2h(float f) { return emu_d2h((double)f); }
inline float awqk_bf2f(uint16_t b) { return __uint_as_float((uint32_t)b << 16); }
inline uint16_t awqk_f2bf(float f) {
    uint32_t u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}
inline uint32_t awqk_float_as_uint(float f) { return __float_as_uint(f); }
inline float awqk_uint_as_float(uint32_t u) { return __uint_as_float(u); }

/* ---- half2 arithmetic: exact in double, then one rounding to fp16 (as PTX .rn f16x2; fma:
 * a*b is exact in double and a*b + c is exact whenever it lies near an fp16 tie, so the double
 * intermediate never double-rounds). ---------------------------------------------------------- */
static inline double emu_lo(uint32_t v) { return awqk_h2f((uint16_t)(v & 0xffffu)); }
static inline double emu_hi(uint32_t v) { return awqk_h2f((uint16_t)(v >> 16)); }
static inline uint32_t emu_pack2(double lo, double hi) {
    return (uint32_t)emu_d2h(lo) | ((uint32_t)emu_d2h(hi) << 16);
}
inline uint32_t awqk_hadd2(uint32_t a, uint32_t b) {
    return emu_pack2(emu_lo(a) + emu_lo(b), emu_hi(a) + emu_hi(b));
}
inline uint32_t awqk_hsub2(uint32_t a, uint32_t b) {
    return emu_pack2(emu_lo(a) - emu_lo(b), emu_hi(a) - emu_hi(b));
}
inline uint32_t awqk_hmul2(uint32_t a, uint32_t b) {
    return emu_pack2(emu_lo(a) * emu_lo(b), emu_hi(a) * emu_hi(b));
}
inline uint32_t awqk_hfma2(uint32_t a, uint32_t b, uint32_t c) {
    return emu_pack2(emu_lo(a) * emu_lo(b) + emu_lo(c), emu_hi(a) * emu_hi(b) + emu_hi(c));
}
inline uint32_t awqk_f2_to_h2(float lo, float hi) {
    return (uint32_t)awqk_f2h(lo) | ((uint32_t)awqk_f2h(hi) << 16);
}
inline float2 awqk_h2_to_f2(uint32_t h) {
    return make_float2(awqk_h2f((uint16_t)(h & 0xffffu)), awqk_h2f((uint16_t)(h >> 16)));
}

/* lop3.b32: result bit i = (LUT >> ((a_i << 2) | (b_i << 1) | c_i)) & 1 */
template <int LUT> inline uint32_t awqk_lop3(uint32_t a, uint32_t b, uint32_t c) {
    uint32_t r = 0;
    for (int i = 0; i < 8; i++) {
        if (!((LUT >> i) & 1)) continue;
        r |= ((i & 4) ? a : ~a) & ((i & 2) ? b : ~b) & ((i & 1) ? c : ~c);
    }
    return r;
}

/* ---- shared memory, ldmatrix, mma, cp.async (emu.cc; PTX ISA tables, see intrin.cuh) ------- */
/* The byte offset of p in the block's shared memory (error if p is not inside it). */
uint32_t awqk_smem_u32(const void *p);
void emu_ldsm(uint32_t *r, const void *p, int nmat, bool trans);
inline void awqk_ldsm_x4(uint32_t r[4], const void *p) { emu_ldsm(r, p, 4, false); }
inline void awqk_ldsm_x4_trans(uint32_t r[4], const void *p) { emu_ldsm(r, p, 4, true); }
inline void awqk_ldsm_x2(uint32_t r[2], const void *p) { emu_ldsm(r, p, 2, false); }
inline void awqk_ldsm_x2_trans(uint32_t r[2], const void *p) { emu_ldsm(r, p, 2, true); }

/* d += A * B in double, rounded once to float (real tensor cores may differ in the last bits:
 * PTX leaves the internal order and rounding unspecified). */
void emu_mma(float d[4], const uint32_t *a, const uint32_t *b, int k);
inline void awqk_mma_m16n8k16(float d[4], const uint32_t a[4], const uint32_t b[2]) { emu_mma(d, a, b, 16); }
inline void awqk_mma_m16n8k8(float d[4], const uint32_t a[2], const uint32_t b[1]) { emu_mma(d, a, b, 8); }

/* cp.async: the destination is poisoned (0xFF) at issue and written when a wait retires the
 * copy's group; copies still pending when the thread exits are performed then. */
void emu_cp_async(void *dst, const void *src, bool pred);
void emu_cp_commit();
void emu_cp_wait(int n);
inline void awqk_cp_async16(void *dst, const void *src) { emu_cp_async(dst, src, true); }
inline void awqk_cp_async16_zfill(void *dst, const void *src, bool pred) { emu_cp_async(dst, src, pred); }
inline void awqk_cp_async_commit() { emu_cp_commit(); }
template <int N> inline void awqk_cp_async_wait() {
    static_assert(N >= 0, "cp.async.wait_group N >= 0");
    emu_cp_wait(N);
}

/* 128-bit read-only global load (16-byte alignment checked). */
inline uint4 awqk_ldg128(const void *p) {
    if ((uintptr_t)p & 15u)
        emu_fail("awqk_ldg128: address %p is not 16-byte aligned (cudaErrorMisalignedAddress)", p);
    return *reinterpret_cast<const uint4 *>(p);
}

/* ---- launching ------------------------------------------------------------------------------ */
typedef void (*emu_body_fn)(const void *ctx);
/* Runs grid x block threads of body(ctx) now; 0, or -1 with kc->err set (kc may be NULL). */
int emu_launch(awqk_ctx *kc, const char *name, dim3 grid, dim3 block, size_t smem_bytes, emu_body_fn fn,
               const void *ctx);

struct emu_stream;
struct emu_graph;
bool emu_stream_capturing(const emu_stream *s);
int emu_stream_record_kernel(awqk_ctx *kc, emu_stream *s, const char *name, dim3 grid, dim3 block,
                             size_t smem_bytes, std::function<void()> body);

/* body() runs one CUDA thread. While kc->stream is an emulated stream that is capturing, the
 * launch (a copy of body) is recorded instead and 0 returned. */
template <class F>
int emu_launch_kernel(awqk_ctx *kc, const char *name, dim3 grid, dim3 block, size_t smem_bytes, F body) {
    emu_stream *s = kc ? static_cast<emu_stream *>(kc->stream) : nullptr;
    if (s && emu_stream_capturing(s))
        return emu_stream_record_kernel(kc, s, name, grid, block, smem_bytes, std::function<void()>(body));
    return emu_launch(
        kc, name, grid, block, smem_bytes, [](const void *c) { (*static_cast<const F *>(c))(); }, &body);
}

/* ---- streams and graphs (the CUDA Graph of the decode step) ------------------------------- *
 * Work on a stream that is not capturing runs at once. While capturing, kernel launches on a kc
 * whose stream is s and host operations enqueued on s are recorded; end_capture hands them over
 * as a graph that emu_graph_launch replays in order, stopping at the first error. err/cap (may
 * be NULL/0) receive a message when a call returns -1. */
emu_stream *emu_stream_create(void);
void emu_stream_destroy(emu_stream *s);
int emu_stream_begin_capture(emu_stream *s, char *err = nullptr, size_t cap = 0);
int emu_stream_end_capture(emu_stream *s, emu_graph **g, char *err = nullptr, size_t cap = 0);
/* fn(err, cap) returns 0, or nonzero with a message in err. Run now unless s is capturing. */
int emu_stream_enqueue(emu_stream *s, std::function<int(char *, size_t)> fn, char *err = nullptr,
                       size_t cap = 0);
int emu_graph_launch(awqk_ctx *kc, emu_graph *g);
size_t emu_graph_size(const emu_graph *g);
void emu_graph_destroy(emu_graph *g);

/* ---- tuning and statistics (tests, benchmarks) --------------------------------------------- */
void emu_set_threads(int n); /* host threads for later launches; 0: AWQ_CUDA_EMU_THREADS / default */
int emu_get_threads(void);
void emu_set_seed(uint64_t seed); /* fiber-order seed for later launches (0: natural order) */
typedef struct emu_stats {
    unsigned long long launches, blocks, threads, switches, barriers, collectives;
} emu_stats;
void emu_get_stats(emu_stats *st); /* totals since start (switches counted per host thread, summed) */
const char *emu_switch_kind(void); /* "x86-64 asm" or "ucontext" */

#endif /* AWQ_CUDA_EMU_H */
