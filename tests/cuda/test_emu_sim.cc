/*
 * test_emu_sim.cc - tests of the SIMT emulator (backend_cuda/emu): fp16/bf16/half2/lop3 against
 * independent references, every shuffle and vote against a scalar model of the CUDA semantics,
 * barriers and the permuted resume order, ldmatrix x4/x2 (.trans) and mma m16n8k16/m16n8k8
 * fragments against scalar tables and a double-precision product (bit-exact on integer data),
 * the AWQ lop3 dequantization tile, cp.async (poison before the wait, data after, zfill), every
 * error class (the launch returns -1 with a message, later launches work), launch limits,
 * stream capture and graph replay, many parallel blocks with atomics, results identical for 1
 * and 2 host threads, and a switch-rate measurement. Prints "N passed, M failed".
 */
#include "common.cuh" /* intrin.cuh + awqk_warp_sum */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <chrono>
#include <string>
#include <vector>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
static bool cpu_has_f16c() {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29));
}
#endif

static int n_pass, n_fail;
#define CHECK(cond, ...)                                \
    do {                                                \
        if (cond)                                       \
            n_pass++;                                   \
        else {                                          \
            n_fail++;                                   \
            printf("FAIL %s:%d: ", __FILE__, __LINE__); \
            printf(__VA_ARGS__);                        \
            printf("\n");                               \
        }                                               \
    } while (0)

/* deterministic test data */
static uint64_t rng_s = 0x1234567887654321ull;
static uint32_t rnd() {
    rng_s ^= rng_s << 13;
    rng_s ^= rng_s >> 7;
    rng_s ^= rng_s << 17;
    return (uint32_t)(rng_s >> 16);
}

/* ============================ independent fp16 / bf16 references ============================ */

/* binary16 -> double via ldexp (independent of the emulator's bit manipulation) */
static long double ref_h2d(uint16_t h) {
    int e = (h >> 10) & 31, m = h & 1023;
    long double v;
    if (e == 0)
        v = ldexpl((long double)m, -24);
    else if (e == 31)
        v = m ? NAN : INFINITY;
    else
        v = ldexpl((long double)(1024 + m), e - 25);
    return (h & 0x8000) ? -v : v;
}
/* nearest binary16 by searching the ordered positive codes; ties to the even code */
static uint16_t ref_d2h(long double x) {
    if (isnan(x)) return 0x7fff;
    uint16_t s = signbit(x) ? 0x8000 : 0;
    long double a = fabsl(x);
    if (a >= 65520.0L) return s | 0x7c00;
    int lo = 0, hi = 0x7bff; /* largest code with value <= a */
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (ref_h2d((uint16_t)mid) <= a)
            lo = mid;
        else
            hi = mid - 1;
    }
    if (lo == 0x7bff) return s | 0x7bff; /* between max and 65520 */
    long double d0 = a - ref_h2d((uint16_t)lo), d1 = ref_h2d((uint16_t)(lo + 1)) - a;
    int r = d0 < d1 ? lo : d1 < d0 ? lo + 1 : ((lo & 1) ? lo + 1 : lo);
    return (uint16_t)(s | r);
}
static uint16_t ref_f2bf(float f) {
    if (isnan(f)) return 0x7fc0;
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t lo = u & 0xffff0000u, hi = lo + 0x10000u; /* neighbours (same sign, magnitude order) */
    float fl, fh;
    memcpy(&fl, &lo, 4);
    memcpy(&fh, &hi, 4);
    double d0 = fabs((double)f - fl), d1 = fabs((double)fh - f);
    uint32_t r = d0 < d1 ? lo : d1 < d0 ? hi : (((lo >> 16) & 1) ? hi : lo);
    return (uint16_t)(r >> 16);
}

#if defined(__x86_64__)
__attribute__((target("f16c"))) static uint16_t hw_f2h(float f) { return (uint16_t)_cvtss_sh(f, 0); }
__attribute__((target("f16c"))) static float hw_h2f(uint16_t h) { return _cvtsh_ss(h); }
#endif

static void test_fp16() {
    /* h2f: every code */
    int bad = 0;
    for (int h = 0; h < 65536; h++) {
        float f = awqk_h2f((uint16_t)h);
        long double r = ref_h2d((uint16_t)h);
        if (isnan(r) ? !isnan(f) : (long double)f != r) bad++;
    }
    CHECK(bad == 0, "awqk_h2f: %d of 65536 codes differ from ldexp", bad);
    /* f2h vs the nearest-code search, on boundaries and random floats */
    std::vector<float> xs;
    for (int h = 0; h < 0x7c00; h++) { /* every half, and the midpoints to its neighbour +- 1 ulp of float */
        double v = (double)ref_h2d((uint16_t)h), w = (double)ref_h2d((uint16_t)(h + 1));
        float m = (float)((v + w) / 2);
        xs.push_back((float)v);
        xs.push_back(m);
        xs.push_back(nextafterf(m, 0.0f));
        xs.push_back(nextafterf(m, INFINITY));
    }
    for (int i = 0; i < 200000; i++) {
        uint32_t u = rnd() ^ (rnd() << 16);
        float f;
        memcpy(&f, &u, 4);
        if (!isnan(f)) xs.push_back(f);
    }
    xs.push_back(65504.0f);
    xs.push_back(65519.99f);
    xs.push_back(65520.0f);
    xs.push_back(INFINITY);
    xs.push_back(1e-8f);
    xs.push_back(0x1p-25f);
    xs.push_back(nextafterf(0x1p-25f, 1.0f));
    bad = 0;
    for (float x : xs)
        for (float sx : {x, -x}) {
            uint16_t a = awqk_f2h(sx), r = ref_d2h(sx);
            if (a != r) {
                if (bad++ < 5) printf("  f2h(%a) = %04x, ref %04x\n", sx, a, r);
            }
        }
    CHECK(bad == 0, "awqk_f2h vs nearest search: %d of %zu differ", bad, 2 * xs.size());
    CHECK(awqk_f2h(NAN) == 0x7fff && awqk_f2h(-NAN) == 0x7fff, "f2h(NaN) is the canonical 0x7fff");
#if defined(__x86_64__)
    if (cpu_has_f16c()) {
        /* exhaustive-ish against the F16C instruction: every float with the low 9 bits fixed */
        long bad2 = 0, n = 0;
        for (uint64_t hi = 0; hi < (1ull << 23); hi++)
            for (uint32_t low : {0u, 0x100u, 0x0ffu, 0x1ffu}) {
                uint32_t u = (uint32_t)(hi << 9) | low;
                float f;
                memcpy(&f, &u, 4);
                if (isnan(f)) continue;
                n++;
                if (awqk_f2h(f) != hw_f2h(f)) bad2++;
            }
        CHECK(bad2 == 0, "awqk_f2h vs F16C: %ld of %ld differ", bad2, n);
        int bad3 = 0;
        for (int h = 0; h < 65536; h++) {
            float a = awqk_h2f((uint16_t)h), b = hw_h2f((uint16_t)h);
            if (memcmp(&a, &b, 4) != 0 && !(isnan(a) && isnan(b))) bad3++;
        }
        CHECK(bad3 == 0, "awqk_h2f vs F16C: %d differ", bad3);
    } else {
        printf("  (no F16C on this CPU: hardware comparison skipped)\n");
    }
#endif
    /* bf16 */
    bad = 0;
    for (int i = 0; i < 400000; i++) {
        uint32_t u = rnd() ^ (rnd() << 16);
        if (i < 1000) u = (u & 0xffff0000u) | 0x8000u; /* exact ties */
        float f;
        memcpy(&f, &u, 4);
        if (isnan(f) || isinf(f)) continue;
        if (fabsf(f) > 3.38e38f) continue; /* rounding up to inf: checked below */
        if (awqk_f2bf(f) != ref_f2bf(f)) {
            if (bad++ < 5) printf("  f2bf(%a) = %04x, want %04x\n", f, awqk_f2bf(f), ref_f2bf(f));
        }
        float back = awqk_bf2f(awqk_f2bf(f));
        if (fabs((double)back - f) > fabs((double)f) / 256.0 + 0x1p-133) bad++;
    }
    CHECK(bad == 0, "awqk_f2bf vs nearest neighbour: %d differ", bad);
    CHECK(awqk_f2bf(3.4e38f) == 0x7f80 && isnan(awqk_bf2f(awqk_f2bf(NAN))) && awqk_f2bf(-0.0f) == 0x8000,
          "f2bf overflow, NaN, -0");
    /* half2 arithmetic: one rounding of the exact result */
    bad = 0;
    for (int i = 0; i < 300000; i++) {
        uint32_t a = rnd(), b = rnd(), c = rnd();
        if (i & 1) { /* keep some in a small range so that cancellations and subnormals happen */
            a &= 0x87ff87ffu, b &= 0x87ff87ffu, c &= 0x8fff8fffu;
        }
        uint32_t r[4] = {awqk_hadd2(a, b), awqk_hsub2(a, b), awqk_hmul2(a, b), awqk_hfma2(a, b, c)};
        for (int half = 0; half < 2; half++) {
            int sh = 16 * half;
            long double x = ref_h2d((uint16_t)(a >> sh)), y = ref_h2d((uint16_t)(b >> sh)),
                        z = ref_h2d((uint16_t)(c >> sh));
            long double e[4] = {x + y, x - y, x * y, x * y + z};
            for (int k = 0; k < 4; k++) {
                uint16_t got = (uint16_t)(r[k] >> sh), want = ref_d2h(e[k]);
                if (got != want) {
                    if (bad++ < 5)
                        printf("  half2 op %d: %04x %04x %04x -> %04x, want %04x\n", k, (a >> sh) & 0xffff,
                               (b >> sh) & 0xffff, (c >> sh) & 0xffff, got, want);
                }
            }
        }
    }
    CHECK(bad == 0, "hadd2/hsub2/hmul2/hfma2 vs exact + one rounding: %d differ", bad);
    float2 p = awqk_h2_to_f2(awqk_f2_to_h2(1.5f, -2.25f));
    CHECK(p.x == 1.5f && p.y == -2.25f && awqk_f2_to_h2(1.0f, 2.0f) == 0x40003c00u, "f2_to_h2 / h2_to_f2");
    /* lop3 */
    bad = 0;
    for (int i = 0; i < 20000; i++) {
        uint32_t a = rnd(), b = rnd(), c = rnd();
        uint32_t got[6] = {awqk_lop3<0xea>(a, b, c), awqk_lop3<0x96>(a, b, c), awqk_lop3<0xf8>(a, b, c),
                           awqk_lop3<0x00>(a, b, c), awqk_lop3<0xff>(a, b, c), awqk_lop3<0x1b>(a, b, c)};
        int luts[6] = {0xea, 0x96, 0xf8, 0x00, 0xff, 0x1b};
        for (int k = 0; k < 6; k++) {
            uint32_t want = 0;
            for (int bit = 0; bit < 32; bit++) {
                int idx = (((a >> bit) & 1) << 2) | (((b >> bit) & 1) << 1) | ((c >> bit) & 1);
                want |= (uint32_t)((luts[k] >> idx) & 1) << bit;
            }
            if (got[k] != want) bad++;
        }
    }
    CHECK(bad == 0, "lop3 vs per-bit truth table: %d differ", bad);
    CHECK(awqk_lop3<0xea>(0x12345678u, 0x000f000fu, 0x64006400u) ==
              ((0x12345678u & 0x000f000fu) | 0x64006400u),
          "lop3 0xea = (a & b) | c");
}

static void test_misc_names() {
    dim3 d0, d1(5), d2(5, 6);
    CHECK(d0.x == 1 && d0.y == 1 && d0.z == 1 && d1.x == 5 && d1.y == 1 && d2.y == 6 && d2.z == 1,
          "dim3 defaults");
    CHECK(alignof(uint4) == 16 && alignof(float4) == 16 && alignof(int4) == 16 && alignof(uint2) == 8 &&
              alignof(float2) == 8 && alignof(int2) == 8 && sizeof(uint4) == 16 && sizeof(float2) == 8,
          "vector type alignment");
    uint4 u = make_uint4(1, 2, 3, 4);
    float4 f4 = make_float4(1, 2, 3, 4);
    int2 i2 = make_int2(-1, 2);
    CHECK(u.w == 4 && f4.z == 3 && i2.x == -1, "make_*");
    CHECK(max(3, 5) == 5 && min(-3, 5) == -3 && max(7u, 9u) == 9u && max(1ll << 40, 3) == (1ll << 40) &&
              min(2.5f, 1.5f) == 1.5f && max(NAN, 1.0f) == 1.0f,
          "min/max");
    CHECK(__saturatef(-1) == 0 && __saturatef(2) == 1 && __saturatef(0.25f) == 0.25f && __saturatef(NAN) == 0,
          "__saturatef");
    CHECK(__float_as_uint(1.0f) == 0x3f800000u && __uint_as_float(0x40000000u) == 2.0f &&
              __float_as_int(-2.0f) == (int)0xc0000000u && __int_as_float(0x3f800000) == 1.0f,
          "bit casts");
    CHECK(fabsf(rsqrtf(4.0f) - 0.5f) < 1e-7f && fabsf(__expf(1.0f) - 2.7182817f) < 1e-6f &&
              fabsf(__logf(2.0f) - 0.6931472f) < 1e-6f && __fdividef(1.0f, 4.0f) == 0.25f,
          "math names");
    CHECK(warpSize == 32, "warpSize");
}

/* ==================================== kernels ================================================ */

awqk_ctx kc; /* the launch context of every test (stream NULL unless a test sets it) */

#define LAUNCH(name, grid, block, smem, ...) \
    emu_launch_kernel(&kc, name, grid, block, smem, [=]() { __VA_ARGS__; })

__global__ void k_index(int *out) {
    unsigned t = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    unsigned b = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
    int *o = out + 8 * (b * blockDim.x * blockDim.y * blockDim.z + t);
    o[0] = (int)threadIdx.x, o[1] = (int)threadIdx.y, o[2] = (int)threadIdx.z;
    o[3] = (int)blockIdx.x, o[4] = (int)blockIdx.y, o[5] = (int)blockIdx.z;
    o[6] = (int)(blockDim.x * 10000 + blockDim.y * 100 + blockDim.z);
    o[7] = (int)(gridDim.x * 10000 + gridDim.y * 100 + gridDim.z);
}

static void test_index() {
    dim3 g(3, 2, 2), b(8, 4, 2);
    std::vector<int> o(12 * 64 * 8, -1);
    int *p = o.data();
    CHECK(LAUNCH("k_index", g, b, 0, k_index(p)) == 0, "launch: %s", kc.err);
    int bad = 0;
    for (unsigned bz = 0; bz < 2; bz++)
        for (unsigned by = 0; by < 2; by++)
            for (unsigned bx = 0; bx < 3; bx++)
                for (unsigned tz = 0; tz < 2; tz++)
                    for (unsigned ty = 0; ty < 4; ty++)
                        for (unsigned tx = 0; tx < 8; tx++) {
                            unsigned bl = bx + 3 * (by + 2 * bz), t = tx + 8 * (ty + 4 * tz);
                            const int *q = &o[8 * (bl * 64 + t)];
                            int want[8] = {(int)tx, (int)ty, (int)tz, (int)bx,
                                           (int)by, (int)bz, 80402,   30202};
                            if (memcmp(q, want, sizeof want)) bad++;
                        }
    CHECK(bad == 0, "threadIdx/blockIdx/blockDim/gridDim: %d threads wrong", bad);
}

/* ---- shuffles vs a scalar model of CUDA's documented semantics ---- */
struct shfl_case {
    int mode, width, b; /* b: src lane / delta / lane mask; -1 for idx: per-lane source (l * 7 + 3) */
};

template <class T> __device__ T shfl_val(int warp, int lane) {
    if (sizeof(T) == 8) return (T)((T)(1ll << 40) * (T)(warp + 1) + (T)lane * (T)3 + (T)1);
    return (T)(warp * 1000 + lane * 3 + 1) + (T)(std::is_floating_point<T>::value ? 0.5 : 0);
}

template <class T> __global__ void k_shfl(const shfl_case *cases, int ncase, T *out) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    T v = shfl_val<T>(warp, lane);
    for (int c = 0; c < ncase; c++) {
        shfl_case s = cases[c];
        T r;
        if (s.mode == EMU_SHFL_IDX)
            r = __shfl_sync(0xffffffffu, v, s.b < 0 ? lane * 7 + 3 : s.b, s.width);
        else if (s.mode == EMU_SHFL_UP)
            r = __shfl_up_sync(0xffffffffu, v, (unsigned)s.b, s.width);
        else if (s.mode == EMU_SHFL_DOWN)
            r = __shfl_down_sync(0xffffffffu, v, (unsigned)s.b, s.width);
        else
            r = __shfl_xor_sync(0xffffffffu, v, s.b, s.width);
        out[(c * blockDim.x) + threadIdx.x] = r;
    }
}

template <class T> static int check_shfl(const char *tname, const std::vector<shfl_case> &cs) {
    int nthr = 64;
    std::vector<T> out(cs.size() * nthr);
    const shfl_case *cp = cs.data();
    int ncase = (int)cs.size();
    T *op = out.data();
    int rc = LAUNCH("k_shfl", dim3(1), dim3(nthr), 0, k_shfl<T>(cp, ncase, op));
    CHECK(rc == 0, "shfl launch (%s): %s", tname, kc.err);
    int bad = 0;
    for (int c = 0; c < ncase; c++) {
        const shfl_case &s = cs[(size_t)c];
        int w = s.width;
        for (int t = 0; t < nthr; t++) {
            int lane = t & 31, warp = t >> 5, seg0 = lane / w * w, src = lane;
            switch (s.mode) {
            case EMU_SHFL_IDX: {
                int sl = s.b < 0 ? lane * 7 + 3 : s.b;
                src = seg0 + sl % w; /* "srcLane modulo width, within the same subsection" */
                break;
            }
            case EMU_SHFL_UP: src = lane - seg0 >= s.b ? lane - s.b : lane; break;
            case EMU_SHFL_DOWN: src = lane - seg0 + s.b < w ? lane + s.b : lane; break;
            default: { /* later groups: own value */ int x = lane ^ s.b; src = x >= seg0 + w ? lane : x;
            }
            }
            T want = shfl_val<T>(warp, src);
            T got = out[(size_t)c * nthr + t];
            if (memcmp(&want, &got, sizeof(T)) != 0) {
                if (bad++ < 5)
                    printf("  %s mode %d width %d b %d lane %d: got %g want %g\n", tname, s.mode, w, s.b, t,
                           (double)got, (double)want);
            }
        }
    }
    CHECK(bad == 0, "shuffles (%s): %d of %zu results differ from the scalar model", tname, bad,
          cs.size() * 64);
    return bad;
}

__global__ void k_vote(const unsigned *pat, int npat, unsigned *out) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    for (int i = 0; i < npat; i++) {
        int p = (pat[i * 2 + warp] >> lane) & 1;
        unsigned *o = out + (size_t)(i * 64 + threadIdx.x) * 3;
        o[0] = __ballot_sync(0xffffffffu, p);
        o[1] = (unsigned)__any_sync(0xffffffffu, p);
        o[2] = (unsigned)__all_sync(0xffffffffu, p);
        __syncwarp();
    }
}

static void test_shuffles() {
    std::vector<shfl_case> cs;
    for (int w : {32, 16, 8, 4, 2, 1}) {
        for (int b : {0, 1, 3, 5, 17, 31, 33, -1}) cs.push_back({EMU_SHFL_IDX, w, b});
        for (int b : {0, 1, 2, 4, 7, 8, 16, 31, 40}) {
            cs.push_back({EMU_SHFL_UP, w, b});
            cs.push_back({EMU_SHFL_DOWN, w, b});
        }
        for (int b : {0, 1, 2, 4, 8, 16, 3, 31, 12}) cs.push_back({EMU_SHFL_BFLY, w, b});
    }
    check_shfl<float>("float", cs);
    check_shfl<int>("int", cs);
    check_shfl<unsigned>("unsigned", cs);
    check_shfl<double>("double", cs);
    check_shfl<long long>("long long", cs);
    check_shfl<unsigned long long>("unsigned long long", cs);

    std::vector<unsigned> pat = {0, 0xffffffffu, 0x1u, 0x80000000u, 0xdeadbeefu, 0xfffffffeu, 0x12345678u, 0};
    std::vector<unsigned> out(4 * 64 * 3);
    const unsigned *pp = pat.data();
    unsigned *op = out.data();
    CHECK(LAUNCH("k_vote", dim3(1), dim3(64), 0, k_vote(pp, 4, op)) == 0, "vote launch: %s", kc.err);
    int bad = 0;
    for (int i = 0; i < 4; i++)
        for (int t = 0; t < 64; t++) {
            unsigned p = pat[(size_t)i * 2 + (t >> 5)];
            const unsigned *o = &out[(size_t)(i * 64 + t) * 3];
            if (o[0] != p || o[1] != (p != 0) || o[2] != (p == 0xffffffffu)) bad++;
        }
    CHECK(bad == 0, "__ballot_sync/__any_sync/__all_sync: %d wrong", bad);
}

/* ---- barriers ---- */

/* tree reduction in shared memory with log2(n) barriers */
__global__ void k_reduce(const float *x, float *out) {
    AWQK_SMEM(float, s);
    int t = threadIdx.x, n = blockDim.x;
    s[t] = x[blockIdx.x * n + t];
    __syncthreads();
    for (int h = n / 2; h > 0; h >>= 1) {
        if (t < h) s[t] += s[t + h];
        __syncthreads();
    }
    if (t == 0) out[blockIdx.x] = s[0];
}

/* each thread logs its arrival order in phases separated by barriers (counter per block) */
__global__ void k_order(int *log, int nphase) {
    AWQK_SMEM(int, cnt);
    int n = blockDim.x;
    if (threadIdx.x == 0) cnt[0] = 0;
    __syncthreads();
    for (int p = 0; p < nphase; p++) {
        int pos = atomicAdd(&cnt[0], 1); /* the resume order (fibers of a block never interleave) */
        log[blockIdx.x * n * nphase + pos] = p * 10000 + (int)threadIdx.x;
        __syncthreads();
    }
}

__global__ void k_bar_red(int *out) {
    int t = threadIdx.x;
    int c = __syncthreads_count(t % 3 == 0), a = __syncthreads_and(t < 1000), o = __syncthreads_or(t == 77);
    if (t == 95) out[blockIdx.x * 3 + 0] = c, out[blockIdx.x * 3 + 1] = a, out[blockIdx.x * 3 + 2] = o;
}

static std::vector<int> run_order(int nb, int n, int nphase) {
    std::vector<int> log((size_t)nb * n * nphase, -1);
    int *lp = log.data();
    int rc = LAUNCH("k_order", dim3(nb), dim3(n), 16, k_order(lp, nphase));
    CHECK(rc == 0, "k_order: %s", kc.err);
    return log;
}

static void test_barriers() {
    for (int n : {32, 64, 256, 1024}) {
        int nb = 5;
        std::vector<float> x((size_t)nb * n), out(nb);
        for (auto &v : x) v = (float)(int)(rnd() % 2001) - 1000.0f;
        const float *xp = x.data();
        float *op = out.data();
        int rc = LAUNCH("k_reduce", dim3(nb), dim3(n), n * 4, k_reduce(xp, op));
        int bad = 0;
        for (int b = 0; b < nb; b++) {
            double r = 0;
            for (int t = 0; t < n; t++) r += x[(size_t)b * n + t];
            if ((double)out[b] != r) bad++;
        }
        CHECK(rc == 0 && bad == 0, "tree reduction, block %d: rc %d, %d blocks wrong (%s)", n, rc, bad,
              kc.err);
    }
    /* phases are separated; the resume order is permuted after each barrier; deterministic */
    int nb = 3, n = 128, np = 6;
    emu_set_seed(0x5eed5eed);
    std::vector<int> l1 = run_order(nb, n, np);
    int bad = 0, same_as_prev = 0, natural = 0;
    for (int b = 0; b < nb; b++)
        for (int p = 0; p < np; p++) {
            std::vector<int> seen(n, 0);
            bool nat = true, same = p > 0;
            for (int i = 0; i < n; i++) {
                int v = l1[(size_t)b * n * np + (size_t)p * n + i];
                if (v / 10000 != p)
                    bad++;
                else
                    seen[(size_t)(v % 10000)]++;
                if (v % 10000 != i) nat = false;
                if (p > 0 && v % 10000 != l1[(size_t)b * n * np + (size_t)(p - 1) * n + i] % 10000)
                    same = false;
            }
            for (int t = 0; t < n; t++) bad += seen[(size_t)t] != 1;
            natural += nat;
            same_as_prev += same;
        }
    CHECK(bad == 0, "barrier phases: %d threads out of their phase", bad);
    CHECK(natural == 0 && same_as_prev == 0, "permuted resume order: %d natural, %d repeated orders", natural,
          same_as_prev);
    std::vector<int> l2 = run_order(nb, n, np);
    emu_set_threads(1);
    std::vector<int> l3 = run_order(nb, n, np);
    emu_set_threads(2);
    std::vector<int> l4 = run_order(nb, n, np);
    emu_set_threads(0);
    CHECK(l1 == l2 && l1 == l3 && l1 == l4,
          "resume order is deterministic and independent of the host threads");
    emu_set_seed(12345);
    std::vector<int> l5 = run_order(nb, n, np);
    CHECK(l5 != l1, "another seed gives another order");
    emu_set_seed(0);
    std::vector<int> l6 = run_order(nb, n, np);
    int nat = 0;
    for (size_t i = 0; i < l6.size(); i++) nat += l6[i] % 10000 == (int)(i % (size_t)n);
    CHECK(nat == (int)l6.size(), "seed 0: natural order (%d of %zu)", nat, l6.size());
    emu_set_seed(0x5eed5eed);

    std::vector<int> r(2 * 3);
    int *rp = r.data();
    CHECK(LAUNCH("k_bar_red", dim3(2), dim3(96), 0, k_bar_red(rp)) == 0, "bar_red: %s", kc.err);
    CHECK(r[0] == 32 && r[1] == 1 && r[2] == 1 && r[3] == 32, "__syncthreads_count/and/or: %d %d %d", r[0],
          r[1], r[2]);
}

/* ---- ldmatrix ---- */

/* Shared memory: 8 matrices of 8 rows x 8 b16, row r of matrix m at element offset
 * off(m, r) = (m * 8 + r) * LD + ((m * 3 + r) % 2) * 8 (scattered, 16-byte aligned rows). */
enum { LDS = 24 };
__device__ inline int ld_off(int m, int r) { return (m * 8 + r) * LDS + ((m * 3 + r) % 2) * 8; }

__global__ void k_ldsm(uint32_t *out) {
    AWQK_SMEM(uint16_t, s);
    int lane = threadIdx.x;
    for (int i = lane; i < 8 * 8 * LDS; i += 32) s[i] = (uint16_t)(i * 7 + 1); /* distinct values */
    __syncwarp();
    uint32_t r[4];
    int m = lane >> 3, row = lane & 7;
    awqk_ldsm_x4(r, s + ld_off(m, row));
    for (int i = 0; i < 4; i++) out[0 * 128 + lane * 4 + i] = r[i];
    awqk_ldsm_x4_trans(r, s + ld_off(m, row));
    for (int i = 0; i < 4; i++) out[1 * 128 + lane * 4 + i] = r[i];
    /* x2: lanes 0..15 give matrices 4, 5; lanes 16..31 give addresses that must be ignored */
    const uint16_t *p2 = lane < 16 ? s + ld_off(4 + (lane >> 3), row) : s + 3; /* misaligned: ignored */
    awqk_ldsm_x2(r, p2);
    for (int i = 0; i < 2; i++) out[2 * 128 + lane * 4 + i] = r[i];
    awqk_ldsm_x2_trans(r, p2);
    for (int i = 0; i < 2; i++) out[3 * 128 + lane * 4 + i] = r[i];
}

static void test_ldmatrix() {
    std::vector<uint32_t> out(4 * 128, 0);
    uint32_t *op = out.data();
    int rc = LAUNCH("k_ldsm", dim3(1), dim3(32), 8 * 8 * LDS * 2, k_ldsm(op));
    CHECK(rc == 0, "ldmatrix launch: %s", kc.err);
    auto S = [](int m, int r, int c) { return (uint32_t)(uint16_t)((ld_off(m, r) + c) * 7 + 1); };
    int bad[4] = {0, 0, 0, 0};
    for (int l = 0; l < 32; l++) {
        int g = l / 4, c = 2 * (l % 4);
        for (int m = 0; m < 4; m++) {
            uint32_t plain = S(m, g, c) | S(m, g, c + 1) << 16;
            uint32_t trans = S(m, c, g) | S(m, c + 1, g) << 16;
            bad[0] += out[(size_t)l * 4 + m] != plain;
            bad[1] += out[128 + (size_t)l * 4 + m] != trans;
            if (m < 2) {
                uint32_t p2 = S(4 + m, g, c) | S(4 + m, g, c + 1) << 16;
                uint32_t t2 = S(4 + m, c, g) | S(4 + m, c + 1, g) << 16;
                bad[2] += out[256 + (size_t)l * 4 + m] != p2;
                bad[3] += out[384 + (size_t)l * 4 + m] != t2;
            }
        }
    }
    CHECK(!bad[0] && !bad[1] && !bad[2] && !bad[3],
          "ldmatrix x4 %d, x4.trans %d, x2 %d, x2.trans %d wrong registers", bad[0], bad[1], bad[2], bad[3]);
}

/* ---- mma: fragments loaded per the PTX tables from global memory (scalar code) ---- */

/* A (16 x K) fp16 row-major, B (K x 8) fp16 row-major (k x n), C/D (16 x 8) f32 */
__global__ void k_mma(int K, const uint16_t *A, const uint16_t *B, const float *C, float *D) {
    int lane = threadIdx.x, g = lane >> 2, t = lane & 3;
    auto pa = [&](int r, int c) { return (uint32_t)A[r * K + c] | ((uint32_t)A[r * K + c + 1] << 16); };
    auto pb = [&](int k, int n) { return (uint32_t)B[k * 8 + n] | ((uint32_t)B[(k + 1) * 8 + n] << 16); };
    float d[4] = {C[g * 8 + 2 * t], C[g * 8 + 2 * t + 1], C[(g + 8) * 8 + 2 * t], C[(g + 8) * 8 + 2 * t + 1]};
    if (K == 16) {
        uint32_t a[4] = {pa(g, 2 * t), pa(g + 8, 2 * t), pa(g, 2 * t + 8), pa(g + 8, 2 * t + 8)};
        uint32_t b[2] = {pb(2 * t, g), pb(2 * t + 8, g)};
        awqk_mma_m16n8k16(d, a, b);
    } else {
        uint32_t a[2] = {pa(g, 2 * t), pa(g + 8, 2 * t)};
        uint32_t b[1] = {pb(2 * t, g)};
        awqk_mma_m16n8k8(d, a, b);
    }
    D[g * 8 + 2 * t] = d[0];
    D[g * 8 + 2 * t + 1] = d[1];
    D[(g + 8) * 8 + 2 * t] = d[2];
    D[(g + 8) * 8 + 2 * t + 1] = d[3];
}

/* the same product with fragments from ldmatrix: A via x4 at &S[(lane & 15) * ld + (lane >> 4) * 8],
 * B (stored k x n row-major) via x2.trans */
__global__ void k_mma_ldsm(const uint16_t *A, const uint16_t *B, float *D) {
    AWQK_SMEM(uint16_t, s); /* A: 16 x 24 (ld 24), then B: 16 x 8 (ld 8) */
    uint16_t *As = s, *Bs = s + 16 * 24;
    int lane = threadIdx.x, g = lane >> 2, t = lane & 3;
    for (int i = lane; i < 256; i += 32) As[(i / 16) * 24 + i % 16] = A[i];
    for (int i = lane; i < 128; i += 32) Bs[i] = B[i];
    __syncwarp();
    uint32_t a[4], b[2];
    awqk_ldsm_x4(a, As + (lane & 15) * 24 + (lane >> 4) * 8);
    awqk_ldsm_x2_trans(b, Bs + (lane & 15) * 8);
    float d[4] = {0, 0, 0, 0};
    awqk_mma_m16n8k16(d, a, b);
    D[g * 8 + 2 * t] = d[0];
    D[g * 8 + 2 * t + 1] = d[1];
    D[(g + 8) * 8 + 2 * t] = d[2];
    D[(g + 8) * 8 + 2 * t + 1] = d[3];
}

static void test_mma() {
    for (int K : {16, 8}) {
        for (int rep = 0; rep < 20; rep++) {
            std::vector<uint16_t> A(16 * K), B((size_t)K * 8);
            std::vector<float> C(128), D(128, 0);
            for (auto &v : A) v = awqk_f2h((float)((int)(rnd() % 17) - 8));
            for (auto &v : B) v = awqk_f2h((float)((int)(rnd() % 9) - 4) * (rep & 1 ? 0.25f : 1.0f));
            for (auto &v : C) v = (float)((int)(rnd() % 201) - 100);
            const uint16_t *ap = A.data(), *bp = B.data();
            const float *cp = C.data();
            float *dp = D.data();
            int rc = LAUNCH("k_mma", dim3(1), dim3(32), 0, k_mma(K, ap, bp, cp, dp));
            int bad = 0;
            for (int m = 0; m < 16; m++)
                for (int n = 0; n < 8; n++) {
                    double s = C[(size_t)m * 8 + n];
                    for (int k = 0; k < K; k++)
                        s += (double)ref_h2d(A[(size_t)m * K + k]) * (double)ref_h2d(B[(size_t)k * 8 + n]);
                    if ((float)s != D[(size_t)m * 8 + n]) bad++;
                }
            if (rc != 0 || bad) {
                CHECK(false, "mma m16n8k%d rep %d: rc %d, %d of 128 differ (%s)", K, rep, rc, bad, kc.err);
                break;
            }
            if (rep == 19) CHECK(true, "mma");
        }
    }
    /* fragments from ldmatrix */
    std::vector<uint16_t> A(256), B(128);
    std::vector<float> D(128);
    for (auto &v : A) v = awqk_f2h((float)((int)(rnd() % 17) - 8));
    for (auto &v : B) v = awqk_f2h((float)((int)(rnd() % 17) - 8));
    const uint16_t *ap = A.data(), *bp = B.data();
    float *dp = D.data();
    int rc = LAUNCH("k_mma_ldsm", dim3(1), dim3(32), (16 * 24 + 128) * 2, k_mma_ldsm(ap, bp, dp));
    int bad = 0;
    for (int m = 0; m < 16; m++)
        for (int n = 0; n < 8; n++) {
            double s = 0;
            for (int k = 0; k < 16; k++)
                s += (double)ref_h2d(A[(size_t)m * 16 + k]) * (double)ref_h2d(B[(size_t)k * 8 + n]);
            if ((float)s != D[(size_t)m * 8 + n]) bad++;
        }
    CHECK(rc == 0 && bad == 0, "ldmatrix x4 + x2.trans + mma m16n8k16: rc %d, %d differ (%s)", rc, bad,
          kc.err);
}

/* ---- the AWQ tile (the sketch's kernel): lop3/0x6400 dequant + ldmatrix(.trans) + 2 x mma ---- */
__device__ inline void deq8(uint32_t q, uint32_t h[4]) {
    uint32_t top = q >> 8;
    h[0] = awqk_hsub2(awqk_lop3<0xea>(q, 0x000f000fu, 0x64006400u), 0x64006400u);
    h[1] = awqk_hfma2(awqk_lop3<0xea>(q, 0x00f000f0u, 0x64006400u), 0x2c002c00u, 0xd400d400u);
    h[2] = awqk_hsub2(awqk_lop3<0xea>(top, 0x000f000fu, 0x64006400u), 0x64006400u);
    h[3] = awqk_hfma2(awqk_lop3<0xea>(top, 0x00f000f0u, 0x64006400u), 0x2c002c00u, 0xd400d400u);
}
/* C[16x16] = A[16x16] x W[16x16], W[k][n] = (q[k][n] - z[n]) * s[n] from AutoAWQ-packed qw [16][2] */
__global__ void k_awq_tile(const uint16_t *A, const uint32_t *qw, const uint32_t *qz, const uint16_t *sc,
                           float *C) {
    AWQK_SMEM(uint16_t, sm);
    uint16_t *As = sm, *Bs = sm + 16 * 24;
    int l = threadIdx.x;
    for (int i = l; i < 256; i += 32) As[(i / 16) * 24 + i % 16] = A[i];
    {
        int k = l / 2, j = l % 2;
        uint32_t w[4], z[4];
        deq8(qw[k * 2 + j], w);
        deq8(qz[j], z);
        for (int p = 0; p < 4; p++) {
            uint32_t s2 = (uint32_t)sc[j * 8 + 2 * p] | ((uint32_t)sc[j * 8 + 2 * p + 1] << 16);
            uint32_t d = awqk_hmul2(awqk_hsub2(w[p], z[p]), s2);
            Bs[k * 24 + j * 8 + 2 * p] = (uint16_t)d;
            Bs[k * 24 + j * 8 + 2 * p + 1] = (uint16_t)(d >> 16);
        }
    }
    __syncthreads();
    uint32_t a[4], b[4];
    float c0[4] = {0, 0, 0, 0}, c1[4] = {0, 0, 0, 0};
    awqk_ldsm_x4(a, As + (l & 15) * 24 + (l >> 4) * 8);
    awqk_ldsm_x4_trans(b, Bs + (l & 15) * 24 + (l >> 4) * 8);
    awqk_mma_m16n8k16(c0, a, b);
    awqk_mma_m16n8k16(c1, a, b + 2);
    int g = l >> 2, t = l & 3;
    for (int i = 0; i < 4; i++) {
        int row = i < 2 ? g : g + 8, col = t * 2 + (i & 1);
        C[row * 16 + col] = c0[i];
        C[row * 16 + 8 + col] = c1[i];
    }
}

static void test_awq_tile() {
    static const int order[8] = {0, 2, 4, 6, 1, 3, 5, 7};
    int bad_total = 0;
    for (int rep = 0; rep < 8; rep++) {
        uint16_t A[256], SC[16];
        uint32_t QW[32], QZ[2];
        float Cout[256];
        int q[16][16], z[16];
        double s[16];
        for (int i = 0; i < 256; i++) A[i] = awqk_f2h((float)((int)(rnd() % 9) - 4));
        for (int n = 0; n < 16; n++) {
            z[n] = (int)(rnd() % 16);
            s[n] = ldexp(1.0, (int)(rnd() % 4) - 2);
            SC[n] = awqk_f2h((float)s[n]);
        }
        for (int k = 0; k < 16; k++)
            for (int n = 0; n < 16; n++) q[k][n] = (int)(rnd() % 16);
        for (int k = 0; k < 16; k++)
            for (int j = 0; j < 2; j++) {
                uint32_t v = 0;
                for (int i = 0; i < 8; i++) v |= (uint32_t)q[k][j * 8 + order[i]] << (4 * i);
                QW[k * 2 + j] = v;
            }
        for (int j = 0; j < 2; j++) {
            uint32_t v = 0;
            for (int i = 0; i < 8; i++) v |= (uint32_t)z[j * 8 + order[i]] << (4 * i);
            QZ[j] = v;
        }
        const uint16_t *ap = A, *sp = SC;
        const uint32_t *qp = QW, *zp = QZ;
        float *cp = Cout;
        int rc = LAUNCH("k_awq_tile", dim3(1), dim3(32), 2 * 16 * 24 * 2, k_awq_tile(ap, qp, zp, sp, cp));
        int bad = rc != 0;
        for (int m = 0; m < 16; m++)
            for (int n = 0; n < 16; n++) {
                double r = 0;
                for (int k = 0; k < 16; k++) r += (double)ref_h2d(A[m * 16 + k]) * ((q[k][n] - z[n]) * s[n]);
                if ((float)r != Cout[m * 16 + n]) bad++;
            }
        bad_total += bad;
    }
    CHECK(bad_total == 0, "AWQ lop3 dequant tile (ldmatrix + mma) vs double: %d mismatches (%s)", bad_total,
          kc.err);
}

/* ---- cp.async ---- */
/* mode 0: read before the wait (poison), 1: wait then read, 2: zfill(false) then wait,
 * 3: two groups, wait<1>: first group data, second still poisoned */
__global__ void k_cp(const float *src, float *out, int mode) {
    AWQK_SMEM(float, s);
    int t = threadIdx.x;
    awqk_cp_async16_zfill(s + 4 * t, src + 4 * t, mode != 2);
    awqk_cp_async_commit();
    if (mode == 3) {
        awqk_cp_async16(s + 4 * (t + 32), src + 4 * (t + 32));
        awqk_cp_async_commit();
        awqk_cp_async_wait<1>();
    } else if (mode != 0) {
        awqk_cp_async_wait<0>();
    }
    if (blockIdx.x == 1) { /* (both blocks do the same; one writes) */
        for (int i = 0; i < 4; i++) out[4 * t + i] = s[4 * t + i];
        if (mode == 3)
            for (int i = 0; i < 4; i++) out[128 + 4 * t + i] = s[4 * (t + 32) + i];
    }
    if (mode == 3) awqk_cp_async_wait<0>(); /* (pending copies at exit are done anyway) */
}

static void test_cp_async() {
    alignas(16) float src[256];
    for (int i = 0; i < 256; i++) src[i] = (float)i + 0.5f;
    for (int mode = 0; mode < 4; mode++) {
        std::vector<float> out(256, 7.0f);
        const float *sp = src;
        float *op = out.data();
        int rc = LAUNCH("k_cp", dim3(2), dim3(32), 256 * 4, k_cp(sp, op, mode));
        int bad = 0;
        for (int i = 0; i < 128; i++) {
            uint32_t u;
            memcpy(&u, &out[(size_t)i], 4);
            if (mode == 0) bad += u != 0xffffffffu || !isnan(out[(size_t)i]);
            if (mode == 1 || mode == 3) bad += out[(size_t)i] != src[i];
            if (mode == 2) bad += u != 0;
            if (mode == 3) {
                memcpy(&u, &out[128 + (size_t)i], 4);
                bad += u != 0xffffffffu;
            }
        }
        static const char *what[4] = {"read before the wait sees the 0xFF poison (NaN)", "after wait<0> data",
                                      "zfill(false) gives zeros", "wait<1> retires the older group only"};
        CHECK(rc == 0 && bad == 0, "cp.async: %s: rc %d, %d wrong (%s)", what[mode], rc, bad, kc.err);
    }
    /* the fp16 view of the poison is NaN too */
    CHECK(isnan(awqk_h2f(0xffff)), "0xFFFF is an fp16 NaN");
}

/* ---- errors ---- */
__global__ void k_err(int which, int *sink) {
    int t = threadIdx.x, lane = t & 31;
    AWQK_SMEM(unsigned char, sm);
    switch (which) {
    case 0: /* different __syncthreads */
        if (t < 32)
            __syncthreads();
        else
            __syncthreads();
        break;
    case 1: /* early exit, then a barrier */
        if (t >= 16) return;
        __syncthreads();
        break;
    case 2: /* different collectives in one warp */
        if (lane < 16)
            sink[t] = (int)__ballot_sync(0xffffffffu, 1);
        else
            sink[t] = __shfl_xor_sync(0xffffffffu, t, 1);
        break;
    case 3: /* a lane exits while others wait at a shuffle */
        if (lane == 5) return;
        sink[t] = __shfl_xor_sync(0xffffffffu, t, 1);
        break;
    case 4: /* partial mask */ sink[t] = __shfl_xor_sync(0x0000ffffu, t, 1); break;
    case 5: /* block not a multiple of 32 using a collective (launched with 48 threads) */
        sink[t] = __shfl_down_sync(0xffffffffu, t, 1);
        break;
    case 6: { /* ldmatrix row address not 16-byte aligned (lane 9) */
        uint32_t r[4];
        awqk_ldsm_x4(r, sm + lane * 16 + (lane == 9 ? 2 : 0));
        sink[t] = (int)r[0];
        break;
    }
    case 7: { /* ldmatrix row outside shared memory (lane 31 one row past the end of 512 bytes) */
        uint32_t r[4];
        awqk_ldsm_x4(r, sm + lane * 16 + (lane == 31 ? 16 : 0));
        sink[t] = (int)r[0];
        break;
    }
    case 8: /* cp.async destination misaligned */
        awqk_cp_async16(sm + 16 * t + (t == 3 ? 8 : 0), sink);
        awqk_cp_async_wait<0>();
        break;
    case 9: /* cp.async destination outside shared memory */ awqk_cp_async16(sm + 16 * (t + 1), sink); break;
    case 10: /* cp.async source misaligned */ awqk_cp_async16(sm, (const char *)sink + 4); break;
    case 11: /* __trap in one thread of block 2 */
        if (blockIdx.x == 2 && t == 5) __trap();
        break;
    case 12: /* misaligned 128-bit load */
        if (t == 7) sink[t] = (int)awqk_ldg128((const char *)sink + 8).x;
        break;
    case 13: /* awqk_smem_u32 of a global pointer */ sink[t] = (int)awqk_smem_u32(sink); break;
    case 14: /* half a warp at a barrier, the other half at a shuffle */
        if (lane < 16)
            __syncthreads();
        else
            sink[t] = __shfl_xor_sync(0xffffffffu, t, 1);
        break;
    case 15: /* __trap in blocks 3 and 7: the lowest failing block is reported */
        if ((blockIdx.x == 7 || blockIdx.x == 3) && t == 0) __trap();
        break;
    case 16: /* a lane exits while the rest of the warp waits at __syncwarp */
        if (lane == 31) return;
        __syncwarp();
        break;
    }
}

__global__ void k_fill(int *o, int v) { o[blockIdx.x * blockDim.x + threadIdx.x] = v + (int)threadIdx.x; }
__global__ void k_last_y(int *o) {
    if (blockIdx.y == gridDim.y - 1) o[0] = (int)blockIdx.y;
}

static bool err_has(const char *what) { return strstr(kc.err, what) != nullptr; }

static void launch_ok_after(const char *after) {
    std::vector<int> o(4 * 64, 0);
    int *op = o.data();
    int rc = LAUNCH("k_fill", dim3(4), dim3(64), 0, k_fill(op, 100));
    int bad = 0;
    for (int i = 0; i < 256; i++) bad += o[(size_t)i] != 100 + i % 64;
    CHECK(rc == 0 && bad == 0, "a launch after the error (%s) works: rc %d bad %d", after, rc, bad);
}

static void test_errors() {
    alignas(16) int sink[1024];
    int *sp = sink;
    struct ecase {
        int which, nthreads, nblocks;
        size_t smem;
        const char *expect, *expect2;
    } cases[] = {
        {0, 64, 1, 0, "divergent __syncthreads", "test_emu_sim.cc:"},
        {1, 64, 1, 0, "divergent __syncthreads", "exited"},
        {2, 32, 1, 0, "divergent warp collective", "__ballot_sync"},
        {3, 32, 1, 0, "divergent warp collective", "exited"},
        {4, 32, 1, 0, "mask 0x0000ffff", "__shfl_xor_sync"},
        {5, 48, 1, 0, "not a multiple of 32", "__shfl_down_sync"},
        {6, 32, 1, 512, "thread (9,0,0): ldmatrix.x4: row address", "not 16-byte aligned"},
        {7, 32, 1, 512, "thread (31,0,0): ldmatrix.x4: row address", "outside the block's shared memory"},
        {8, 32, 1, 512, "thread (3,0,0): cp.async: destination", "not 16-byte aligned"},
        {9, 32, 1, 512, "thread (31,0,0): cp.async: destination", "outside"},
        {10, 32, 1, 512, "cp.async: source", "not 16-byte aligned"},
        {11, 32, 4, 0, "k_err: block (2,0,0) thread (5,0,0): __trap()", "cudaErrorLaunchFailure"},
        {12, 32, 1, 0, "thread (7,0,0): awqk_ldg128", "cudaErrorMisalignedAddress"},
        {13, 32, 1, 64, "awqk_smem_u32", "not in the block's shared memory"},
        {14, 64, 1, 0, "divergent", "__syncthreads"},
        {16, 32, 1, 0, "divergent warp collective", "__syncwarp"},
    };
    for (const ecase &c : cases) {
        memset(kc.err, 0, sizeof kc.err);
        int which = c.which;
        int rc = LAUNCH("k_err", dim3(c.nblocks), dim3(c.nthreads), c.smem, k_err(which, sp));
        CHECK(rc == -1 && strncmp(kc.err, "k_err: block (", 14) == 0 && err_has(c.expect) &&
                  err_has(c.expect2),
              "error class %d: rc %d, message \"%s\" (want \"%s\" and \"%s\")", c.which, rc, kc.err, c.expect,
              c.expect2);
        printf("  error %2d -> %s\n", c.which, kc.err);
    }
    launch_ok_after("error classes");
    /* the lowest failing block is reported, whatever the host threads */
    for (int th : {1, 2}) {
        emu_set_threads(th);
        int rc = LAUNCH("k_err", dim3(64), dim3(32), 0, k_err(15, sp));
        CHECK(rc == -1 && err_has("block (3,0,0) thread (0,0,0): __trap()"),
              "lowest failing block with %d threads: %s", th, kc.err);
    }
    emu_set_threads(0);
    launch_ok_after("__trap in parallel blocks");
    /* launch limits */
    struct lcase {
        dim3 g, b;
        size_t smem;
        const char *expect;
    } lim[] = {
        {dim3(1), dim3(1025), 0, "more than 1024 (cudaErrorInvalidConfiguration"},
        {dim3(1), dim3(32, 32, 2), 0, "more than 1024"},
        {dim3(1), dim3(1, 1, 65), 0,
         "maximum block dimensions (1024,1024,64) (cudaErrorInvalidConfiguration"},
        {dim3(1, 65536), dim3(32), 0, "maximum grid dimensions"},
        {dim3(1, 1, 65536), dim3(32), 0, "maximum grid dimensions"},
        {dim3(0), dim3(32), 0, "zero dimension"},
        {dim3(1), dim3(32, 0), 0, "zero dimension"},
        {dim3(1), dim3(32), 48 * 1024 + 1,
         "49153 bytes of dynamic shared memory exceed the 49152-byte limit"},
    };
    for (const lcase &c : lim) {
        memset(kc.err, 0, sizeof kc.err);
        int rc = LAUNCH("k_lim", c.g, c.b, c.smem, k_fill(sp, 0));
        CHECK(rc == -1 && strncmp(kc.err, "k_lim: ", 7) == 0 && err_has(c.expect),
              "limit: rc %d \"%s\" (want \"%s\")", rc, kc.err, c.expect);
    }
    std::vector<int> o(1024);
    int *op = o.data();
    CHECK(LAUNCH("k_fill", dim3(1), dim3(1024), 48 * 1024, k_fill(op, 0)) == 0 && o[1023] == 1023,
          "1024 threads and 48 KiB are allowed: %s", kc.err);
    o[0] = 0;
    CHECK(LAUNCH("k_last_y", dim3(1, 65535, 1), dim3(1), 0, k_last_y(op)) == 0 && o[0] == 65534,
          "grid y 65535 allowed: %s", kc.err);
    launch_ok_after("launch limits");
}

/* ---- stream capture, graph replay ---- */
__global__ void k_axpy(float *y, const float *x, float a, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] += a * x[i];
}

static void test_capture() {
    int n = 300;
    std::vector<float> x((size_t)n), y((size_t)n, 1.0f), z((size_t)n, 5.0f);
    for (int i = 0; i < n; i++) x[(size_t)i] = (float)i;
    float *yp = y.data(), *zp = z.data();
    const float *xp = x.data();
    emu_stream *s = emu_stream_create();
    kc.stream = s;
    char err[256] = "";
    /* not capturing: immediate */
    CHECK(LAUNCH("k_axpy", dim3(3), dim3(128), 0, k_axpy(yp, xp, 1.0f, n)) == 0 && y[7] == 8.0f,
          "stream, immediate");
    int ran = 0;
    CHECK(emu_stream_enqueue(
              s,
              [&](char *, size_t) {
                  ran++;
                  return 0;
              },
              err, sizeof err) == 0 &&
              ran == 1,
          "enqueue runs at once when not capturing");
    CHECK(emu_stream_begin_capture(s, err, sizeof err) == 0, "begin capture: %s", err);
    CHECK(emu_stream_begin_capture(s, err, sizeof err) == -1 && strstr(err, "already capturing"),
          "double begin: %s", err);
    /* y = 1 + x (now); graph: y += 2x ; z = 0 ; z += 3y */
    CHECK(LAUNCH("k_axpy", dim3(3), dim3(128), 0, k_axpy(yp, xp, 2.0f, n)) == 0, "captured launch");
    CHECK(emu_stream_enqueue(
              s,
              [=](char *, size_t) {
                  memset(zp, 0, (size_t)n * 4);
                  return 0;
              },
              err, sizeof err) == 0 &&
              z[0] == 5.0f,
          "captured memset (not run yet)");
    CHECK(LAUNCH("k_axpy", dim3(3), dim3(128), 0, k_axpy(zp, yp, 3.0f, n)) == 0, "captured launch 2");
    CHECK(LAUNCH("k_axpy", dim3(3), dim3(2048), 0, k_axpy(zp, yp, 3.0f, n)) == -1 &&
              strstr(kc.err, "more than 1024"),
          "invalid configuration is reported at capture: %s", kc.err);
    CHECK(y[7] == 8.0f && z[7] == 5.0f, "nothing ran while capturing");
    emu_graph *g = nullptr;
    CHECK(emu_stream_end_capture(s, &g, err, sizeof err) == 0 && g && emu_graph_size(g) == 3,
          "end capture: %s", err);
    CHECK(!emu_stream_capturing(s), "capture ended");
    CHECK(emu_graph_launch(&kc, g) == 0, "replay 1: %s", kc.err);
    int bad = 0;
    for (int i = 0; i < n; i++)
        bad += y[(size_t)i] != 1.0f + 3.0f * i || z[(size_t)i] != 3.0f * (1.0f + 3.0f * i);
    CHECK(bad == 0, "replay 1 results (%d wrong)", bad);
    CHECK(emu_graph_launch(&kc, g) == 0, "replay 2: %s", kc.err);
    bad = 0;
    for (int i = 0; i < n; i++)
        bad += y[(size_t)i] != 1.0f + 5.0f * i || z[(size_t)i] != 3.0f * (1.0f + 5.0f * i);
    CHECK(bad == 0, "replay 2 results (%d wrong)", bad);
    emu_graph_destroy(g);
    /* a failing kernel stops the replay */
    alignas(16) int sink[64];
    int *sk = sink;
    int after = 0;
    CHECK(emu_stream_begin_capture(s, err, sizeof err) == 0, "begin 2");
    LAUNCH("k_err", dim3(4), dim3(32), 0, k_err(11, sk));
    emu_stream_enqueue(s, [&](char *, size_t) {
        after++;
        return 0;
    });
    CHECK(emu_stream_end_capture(s, &g, err, sizeof err) == 0, "end 2");
    CHECK(emu_graph_launch(&kc, g) == -1 && strstr(kc.err, "__trap") && after == 0,
          "replay stops at the error: %s", kc.err);
    emu_graph_destroy(g);
    /* a failing host operation */
    CHECK(emu_stream_begin_capture(s) == 0, "begin 3");
    emu_stream_enqueue(s, [](char *e, size_t cap) {
        snprintf(e, cap, "host op failed on purpose");
        return 1;
    });
    emu_stream_end_capture(s, &g);
    kc.err[0] = 0;
    CHECK(emu_graph_launch(&kc, g) == -1 && strstr(kc.err, "on purpose"), "host op error: %s", kc.err);
    emu_graph_destroy(g);
    CHECK(emu_stream_end_capture(s, &g, err, sizeof err) == -1, "end without begin fails");
    kc.stream = nullptr;
    emu_stream_destroy(s);
    CHECK(LAUNCH("k_axpy", dim3(3), dim3(128), 0, k_axpy(yp, xp, 1.0f, n)) == 0 && y[7] == 1.0f + 6.0f * 7,
          "stream NULL: immediate");
}

/* ---- parallel blocks, atomics, thread-count independence ---- */
__global__ void k_atomics(int *ci, unsigned *cu, float *cf, unsigned long long *cl, float *hist) {
    int t = threadIdx.x;
    atomicAdd(ci, 1);
    atomicAdd(cu, 2u);
    atomicAdd(cf, (float)(t % 4)); /* small integers: the float sum is exact in any order */
    atomicAdd(cl, 1ull << 33);
    atomicAdd(&hist[(blockIdx.x + t) % 16], 1.0f);
}

/* a mix of everything whose float result depends on evaluation order within the block only */
__global__ void k_mix(const float *x, float *y) {
    AWQK_SMEM(float, s);
    int t = threadIdx.x, n = blockDim.x;
    float v = x[blockIdx.x * n + t] * 1.0001f;
    v = awqk_warp_sum(v);
    s[t] = v;
    __syncthreads();
    float acc = 0;
    for (int i = 0; i < n; i += 32) acc += s[(t + i) % n] * 0.37f;
    __syncthreads();
    s[t] = acc + __shfl_down_sync(0xffffffffu, acc, 3);
    __syncthreads();
    y[blockIdx.x * n + t] = s[(t * 7) % n] + __expf(-fabsf(acc) * 1e-3f);
}

static void test_parallel() {
    int nb = 3000, nt = 128;
    for (int th : {1, 2}) {
        emu_set_threads(th);
        int ci = 0;
        unsigned cu = 0;
        float cf = 0;
        unsigned long long cl = 0;
        float hist[16] = {0};
        int *a = &ci;
        unsigned *b = &cu;
        float *c = &cf, *h = hist;
        unsigned long long *d = &cl;
        int rc = LAUNCH("k_atomics", dim3(nb), dim3(nt), 0, k_atomics(a, b, c, d, h));
        double hs = 0;
        for (float v : hist) hs += v;
        CHECK(rc == 0 && ci == nb * nt && cu == 2u * nb * nt && cf == (float)(nb * nt / 4 * 6) &&
                  cl == (unsigned long long)nb * nt << 33 && hs == nb * nt,
              "atomics over %d blocks with %d host threads: %d %u %g %llu %g", nb, th, ci, cu, cf, cl, hs);
    }
    int n = 256, nb2 = 64;
    std::vector<float> x((size_t)n * nb2), y1(x.size()), y2(x.size()), y3(x.size());
    for (auto &v : x) v = (float)(rnd() % 100000) / 1000.0f - 50.0f;
    const float *xp = x.data();
    float *p1 = y1.data(), *p2 = y2.data(), *p3 = y3.data();
    emu_set_threads(1);
    CHECK(LAUNCH("k_mix", dim3(nb2), dim3(n), n * 4, k_mix(xp, p1)) == 0, "k_mix 1 thread");
    emu_set_threads(2);
    CHECK(LAUNCH("k_mix", dim3(nb2), dim3(n), n * 4, k_mix(xp, p2)) == 0, "k_mix 2 threads");
    emu_set_threads(0);
    CHECK(LAUNCH("k_mix", dim3(nb2), dim3(n), n * 4, k_mix(xp, p3)) == 0, "k_mix default threads");
    CHECK(memcmp(p1, p2, x.size() * 4) == 0 && memcmp(p1, p3, x.size() * 4) == 0,
          "results bit-identical with 1, 2 and %d host threads", emu_get_threads());
    /* and against a scalar model of the same computation */
    int bad = 0;
    for (int b = 0; b < nb2; b++) {
        std::vector<float> s((size_t)n), acc((size_t)n), s2((size_t)n);
        for (int w = 0; w < n / 32; w++) {
            /* butterfly sum, as the shuffles do it: lane l ends with the same tree for every lane order */
            float v[32];
            for (int l = 0; l < 32; l++) v[l] = x[(size_t)b * n + w * 32 + l] * 1.0001f;
            for (int o = 16; o > 0; o >>= 1) {
                float nv[32];
                for (int l = 0; l < 32; l++) nv[l] = v[l] + v[l ^ o];
                memcpy(v, nv, sizeof v);
            }
            for (int l = 0; l < 32; l++) s[(size_t)(w * 32 + l)] = v[l];
        }
        for (int t = 0; t < n; t++) {
            float a = 0;
            for (int i = 0; i < n; i += 32) a += s[(size_t)((t + i) % n)] * 0.37f;
            acc[(size_t)t] = a;
        }
        for (int t = 0; t < n; t++) {
            int l = t & 31, src = l + 3 < 32 ? t + 3 : t;
            s2[(size_t)t] = acc[(size_t)t] + acc[(size_t)src];
        }
        for (int t = 0; t < n; t++) {
            float want = s2[(size_t)((t * 7) % n)] + expf(-fabsf(acc[(size_t)t]) * 1e-3f);
            bad += memcmp(&want, &y1[(size_t)b * n + t], 4) != 0;
        }
    }
    CHECK(bad == 0, "k_mix vs scalar model: %d differ", bad);
}

/* ---- speed ---- */
__global__ void k_nop(float *o) {
    if (threadIdx.x == 1000000) o[0] = 1; /* never */
}
__global__ void k_sw(int iters, float *o) {
    float v = (float)threadIdx.x;
    for (int i = 0; i < iters; i++) v += __shfl_xor_sync(0xffffffffu, v, 1);
    if (v == -1.0f) o[0] = v;
}
__global__ void k_bars(int iters, float *o) {
    for (int i = 0; i < iters; i++) __syncthreads();
    if (threadIdx.x == 100000) o[0] = 0;
}

static double secs(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

static void test_speed() {
    float sink = 0;
    float *sp = &sink;
    emu_set_threads(1);
    emu_stats a, b;
    emu_get_stats(&a);
    auto t0 = std::chrono::steady_clock::now();
    int rc = LAUNCH("k_nop", dim3(4096), dim3(256), 0, k_nop(sp));
    double dt = secs(t0);
    emu_get_stats(&b);
    printf("  speed (1 host thread, %s switch): empty kernel %.1f ns per CUDA thread, %.2f switches per "
           "thread\n",
           emu_switch_kind(), dt * 1e9 / (4096.0 * 256), (double)(b.switches - a.switches) / (4096.0 * 256));
    CHECK(rc == 0 && b.switches - a.switches <= 4096ull * 256 + 4096,
          "barrier-free kernel: one switch per thread");
    a = b;
    t0 = std::chrono::steady_clock::now();
    rc = LAUNCH("k_sw", dim3(64), dim3(256), 0, k_sw(200, sp));
    dt = secs(t0);
    emu_get_stats(&b);
    double sw = (double)(b.switches - a.switches);
    printf("  speed: shuffles: %.0f switches in %.3f s = %.1f M switches/s (%.1f ns per shuffle per lane)\n",
           sw, dt, sw / dt / 1e6, dt * 1e9 / (64.0 * 256 * 200));
    CHECK(rc == 0, "k_sw");
    a = b;
    t0 = std::chrono::steady_clock::now();
    rc = LAUNCH("k_bars", dim3(64), dim3(256), 0, k_bars(200, sp));
    dt = secs(t0);
    emu_get_stats(&b);
    sw = (double)(b.switches - a.switches);
    printf(
        "  speed: barriers: %.0f switches in %.3f s = %.1f M switches/s (%.1f ns per barrier per thread)\n",
        sw, dt, sw / dt / 1e6, dt * 1e9 / (64.0 * 256 * 200));
    CHECK(rc == 0, "k_bars");
    emu_set_threads(0);
    t0 = std::chrono::steady_clock::now();
    rc = LAUNCH("k_nop", dim3(4096), dim3(256), 0, k_nop(sp));
    printf("  speed (%d host threads): empty kernel %.1f ns per CUDA thread\n", emu_get_threads(),
           secs(t0) * 1e9 / (4096.0 * 256));
}

/* ---- deep stacks ---- */
__global__ void k_stack(float *o) {
    volatile float buf[4096]; /* 16 KiB of locals per CUDA thread */
    for (int i = 0; i < 4096; i++) buf[i] = (float)(i + threadIdx.x);
    __syncthreads();
    float s = 0;
    for (int i = 0; i < 4096; i += 512) s += buf[i];
    o[blockIdx.x * blockDim.x + threadIdx.x] = s;
}

static void test_stack() {
    std::vector<float> o(512);
    float *op = o.data();
    int rc = LAUNCH("k_stack", dim3(2), dim3(256), 0, k_stack(op));
    double want = 0;
    for (int i = 0; i < 4096; i += 512) want += i + 255;
    CHECK(rc == 0 && o[255] == (float)want && o[511] == (float)want,
          "16 KiB of locals per thread: rc %d, %g vs %g", rc, o[255], want);
}

int main() {
    printf("emulator: %s switch, %d host threads\n", emu_switch_kind(), emu_get_threads());
    test_fp16();
    test_misc_names();
    test_index();
    test_shuffles();
    test_barriers();
    test_ldmatrix();
    test_mma();
    test_awq_tile();
    test_cp_async();
    test_errors();
    test_capture();
    test_parallel();
    test_stack();
    test_speed();
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail != 0;
}
