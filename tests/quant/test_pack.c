/*
 * test_pack.c - AutoAWQ GEMM / GEMV packing against words computed by hand from docs/formats.md 4.1
 * and 8.2, round trips, GEMV -> GEMM conversion, dequantization by the spec's index formula,
 * and a quantize -> pack -> unpack -> dequantize round trip with a double-precision quantizer.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "awq_pack.h"
#include "pack.h"
#include "test.h"

static awq_runtime *rt;

/* ---- words by hand ------------------------------------------------------------------------ */

/* out 8, in 32, gs 32 (G = 1). GEMM word [k][0] holds outputs in nibble slots
 * [o0, o2, o4, o6, o1, o3, o5, o7] from the least significant nibble up. */
TEST(gemm_hand_words) {
    enum { OUT = 8, IN = 32, GS = 32 };
    uint8_t codes[OUT * IN] = {0}, zeros[OUT] = {15, 0, 1, 14, 2, 13, 3, 12};
    uint16_t scales[OUT];
    for (int o = 0; o < OUT; o++) {
        codes[o * IN + 0] = (uint8_t)(o + 1);  /* outputs 0..7 = 1..8 */
        codes[o * IN + 1] = (uint8_t)(15 - o); /* 15..8 */
        scales[o] = (uint16_t)(0x3c00 + o);
    }
    codes[7 * IN + 2] = 8;  /* only output 7 = 8: slot 7 -> sign bit */
    codes[7 * IN + 3] = 7;  /* only output 7 = 7: slot 7, sign bit clear */
    codes[1 * IN + 4] = 15; /* only output 1: slot 4 */
    codes[2 * IN + 5] = 9;  /* only output 2: slot 1 */
    int32_t qw[IN], qz[1];
    uint16_t sg[OUT];
    ASSERT_OK_RT(awq_pack_gemm(rt, OUT, IN, GS, codes, scales, zeros, qw, qz, sg), rt);
    /* k=0: slots (o0,o2,o4,o6,o1,o3,o5,o7) = (1,3,5,7,2,4,6,8) -> 0x86427531 */
    ASSERT_EQ((uint32_t)qw[0], 0x86427531u);
    ASSERT(qw[0] < 0);
    /* k=1: (15,13,11,9,14,12,10,8) -> 0x8ACE9BDF */
    ASSERT_EQ((uint32_t)qw[1], 0x8ACE9BDFu);
    ASSERT_EQ(qw[2], INT32_MIN);
    ASSERT_EQ(qw[3], 0x70000000);
    ASSERT_EQ(qw[4], 0x000F0000);
    ASSERT_EQ(qw[5], 0x00000090);
    for (int k = 6; k < IN; k++) ASSERT_EQ(qw[k], 0);
    /* zeros (15,0,1,14,2,13,3,12) -> slots (15,1,2,3,0,14,13,12) -> 0xCDE0321F */
    ASSERT_EQ((uint32_t)qz[0], 0xCDE0321Fu);
    for (int o = 0; o < OUT; o++) ASSERT_EQ(sg[o], 0x3c00 + o);
}

/* Two column blocks and two groups: out 16, in 64, gs 32. */
TEST(gemm_blocks_and_scales_layout) {
    enum { OUT = 16, IN = 64, GS = 32, G = 2, NC = 2 };
    uint8_t codes[OUT * IN] = {0}, zeros[OUT * G] = {0};
    uint16_t scales[OUT * G];
    for (int o = 0; o < OUT; o++)
        for (int g = 0; g < G; g++) scales[o * G + g] = (uint16_t)(0x3c00 + 2 * o + g);
    codes[9 * IN + 40] = 6; /* output 9 = block 1, logical column 1 -> slot 4; input 40 */
    zeros[14 * G + 1] = 11; /* output 14 = block 1, column 6 -> slot 3; group 1 */
    zeros[0 * G + 0] = 1;   /* output 0, group 0 -> slot 0 of qzeros[0][0] */
    int32_t qw[IN * NC], qz[G * NC];
    uint16_t sg[G * OUT];
    ASSERT_OK_RT(awq_pack_gemm(rt, OUT, IN, GS, codes, scales, zeros, qw, qz, sg), rt);
    for (int k = 0; k < IN; k++)
        for (int c = 0; c < NC; c++) ASSERT_EQ(qw[k * NC + c], (k == 40 && c == 1) ? 0x00060000 : 0);
    ASSERT_EQ(qz[0 * NC + 0], 0x1);
    ASSERT_EQ(qz[0 * NC + 1], 0);
    ASSERT_EQ(qz[1 * NC + 0], 0);
    ASSERT_EQ(qz[1 * NC + 1], 0xB000);
    /* scales (G, out): row g holds every output's group-g scale. */
    for (int g = 0; g < G; g++)
        for (int o = 0; o < OUT; o++) ASSERT_EQ(sg[g * OUT + o], 0x3c00 + 2 * o + g);
}

/* GEMV: out 8, in 64, gs 32: G = 2, zw = ceil(ceil(2/8)/4)*4 = 4, scales width 32. */
TEST(gemv_hand_words) {
    enum { OUT = 8, IN = 64, GS = 32, G = 2, ZW = 4 };
    uint8_t codes[OUT * IN] = {0}, zeros[OUT * G] = {0};
    uint16_t scales[OUT * G];
    for (int i = 0; i < 8; i++) {
        codes[0 * IN + i] = (uint8_t)(i + 1);      /* row 0, inputs 0..7 = 1..8 */
        codes[0 * IN + 8 + i] = (uint8_t)(15 - i); /* inputs 8..15 = 15..8 */
    }
    codes[3 * IN + 63] = 12; /* row 3, last input: word 7, nibble 7 */
    zeros[0] = 5;
    zeros[1] = 10;
    for (int o = 0; o < OUT; o++)
        for (int g = 0; g < G; g++) scales[o * G + g] = (uint16_t)(0x4000 + 16 * o + g);
    awq_pack_shapes sh;
    ASSERT_OK_RT(awq_pack_check(rt, AWQ_FORMAT_GEMV, OUT, IN, GS, &sh), rt);
    ASSERT(sh.qweight[0] == OUT && sh.qweight[1] == IN / 8);
    ASSERT(sh.qzeros[0] == OUT && sh.qzeros[1] == ZW);
    ASSERT(sh.scales[0] == OUT && sh.scales[1] == ZW * 8);
    int32_t qw[OUT * IN / 8], qz[OUT * ZW];
    uint16_t sv[OUT * ZW * 8];
    memset(qz, 0x55, sizeof qz);
    memset(sv, 0x55, sizeof sv);
    ASSERT_OK_RT(awq_pack_gemv(rt, OUT, IN, GS, codes, scales, zeros, qw, qz, sv), rt);
    ASSERT_EQ((uint32_t)qw[0], 0x87654321u);
    ASSERT_EQ((uint32_t)qw[1], 0x89ABCDEFu);
    ASSERT_EQ((uint32_t)qw[3 * 8 + 7], 0xC0000000u);
    int nonzero = 0;
    for (int i = 0; i < OUT * IN / 8; i++) nonzero += qw[i] != 0;
    ASSERT_EQ(nonzero, 3);
    ASSERT_EQ(qz[0], 0xA5);
    for (int i = 1; i < OUT * ZW; i++) ASSERT_EQ(qz[i], 0);
    for (int o = 0; o < OUT; o++)
        for (int j = 0; j < ZW * 8; j++) ASSERT_EQ(sv[o * ZW * 8 + j], j < G ? 0x4000 + 16 * o + j : 0);
}

/* zw from AutoAWQ's calculate_zeros_width, worked by hand. */
TEST(shapes) {
    awq_pack_shapes sh;
    /* in 11008, gs 128: G 86, ceil(86/8) = 11, m 1 -> 11 words, 88 scales (docs/formats.md 4.2). */
    ASSERT_OK_RT(awq_pack_check(rt, AWQ_FORMAT_GEMV, 4096, 11008, 128, &sh), rt);
    ASSERT(sh.qzeros[1] == 11 && sh.scales[1] == 88 && sh.qweight[1] == 1376);
    /* in 1152, gs 64: G 18, ceil(18/8) = 3, m 2 -> 4. */
    ASSERT_OK_RT(awq_pack_check(rt, AWQ_FORMAT_GEMV, 8, 1152, 64, &sh), rt);
    ASSERT_EQ(sh.qzeros[1], 4);
    /* in 576, gs 64 (SmolLM2): G 9, 2 -> 2. */
    ASSERT_OK_RT(awq_pack_check(rt, AWQ_FORMAT_GEMV, 8, 576, 64, &sh), rt);
    ASSERT_EQ(sh.qzeros[1], 2);
    /* in 4096, gs 32: G 128, 16 -> 16 (m 4). in 40*32, gs 32: G 40, 5 -> 8. */
    ASSERT_OK_RT(awq_pack_check(rt, AWQ_FORMAT_GEMV, 8, 4096, 32, &sh), rt);
    ASSERT_EQ(sh.qzeros[1], 16);
    ASSERT_OK_RT(awq_pack_check(rt, AWQ_FORMAT_GEMV, 8, 40 * 32, 32, &sh), rt);
    ASSERT_EQ(sh.qzeros[1], 8);
    /* GEMM: Llama-2-7B down_proj (in 11008, out 4096, gs 128). */
    ASSERT_OK_RT(awq_pack_check(rt, AWQ_FORMAT_GEMM, 4096, 11008, 128, &sh), rt);
    ASSERT(sh.qweight[0] == 11008 && sh.qweight[1] == 512);
    ASSERT(sh.qzeros[0] == 86 && sh.qzeros[1] == 512);
    ASSERT(sh.scales[0] == 86 && sh.scales[1] == 4096);
}

TEST(validation) {
    uint8_t codes[16 * 64] = {0}, zeros[16 * 2] = {0};
    uint16_t scales[16 * 2] = {0};
    int32_t qw[16 * 64], qz[64];
    uint16_t s2[16 * 64];
    ASSERT_ERR_RT(awq_pack_gemm(rt, 12, 64, 32, codes, scales, zeros, qw, qz, s2), rt, AWQ_ERR_INVALID_ARG,
                  "out_features 12 is not a multiple of 8");
    ASSERT_ERR_RT(awq_pack_gemm(rt, 16, 100, 32, codes, scales, zeros, qw, qz, s2), rt, AWQ_ERR_INVALID_ARG,
                  "in_features 100 is not divisible by the group size 32");
    ASSERT_ERR_RT(awq_pack_gemm(rt, 16, 64, 0, codes, scales, zeros, qw, qz, s2), rt, AWQ_ERR_INVALID_ARG,
                  "group size");
    ASSERT_ERR_RT(awq_pack_gemv(rt, 16, 96, 48, codes, scales, zeros, qw, qz, s2), rt, AWQ_ERR_UNSUPPORTED,
                  "group size 48");
    ASSERT_ERR_RT(awq_pack_check(rt, AWQ_FORMAT_GEMV, 16, 20, 4, NULL), rt, AWQ_ERR_INVALID_ARG,
                  "multiple of 8");
    ASSERT_ERR_RT(awq_gemv_to_gemm(rt, 16, 96, 48, qw, qz, s2, qw, qz, s2), rt, AWQ_ERR_UNSUPPORTED,
                  "group size 48");
    ASSERT_ERR_RT(awq_unpack_gemm(rt, 4, 64, 32, qw, qz, s2, codes, scales, zeros), rt, AWQ_ERR_INVALID_ARG,
                  "multiple of 8");
    codes[1 * 64 + 2] = 16;
    ASSERT_ERR_RT(awq_pack_gemm(rt, 16, 64, 32, codes, scales, zeros, qw, qz, s2), rt, AWQ_ERR_INVALID_ARG,
                  "codes[1][2] = 16");
    ASSERT_ERR_RT(awq_pack_gemv(rt, 16, 64, 32, codes, scales, zeros, qw, qz, s2), rt, AWQ_ERR_INVALID_ARG,
                  "codes[1][2] = 16");
    codes[1 * 64 + 2] = 0;
    zeros[3 * 2 + 1] = 200;
    ASSERT_ERR_RT(awq_pack_gemm(rt, 16, 64, 32, codes, scales, zeros, qw, qz, s2), rt, AWQ_ERR_INVALID_ARG,
                  "zeros[3][1] = 200");
    zeros[3 * 2 + 1] = 0;
    ASSERT_OK_RT(awq_pack_gemm(rt, 16, 64, 32, codes, scales, zeros, qw, qz, s2), rt);
}

/* ---- round trips ------------------------------------------------------------------------- */

typedef struct cfg {
    int64_t out, in, gs;
} cfg;

static void fill_random(unsigned long long *rng, int64_t out, int64_t in, int64_t G, uint8_t *codes,
                        uint16_t *scales, uint8_t *zeros) {
    for (int64_t i = 0; i < out * in; i++) codes[i] = (uint8_t)(test_rng_next(rng) & 15);
    for (int64_t i = 0; i < out * G; i++) {
        zeros[i] = (uint8_t)(test_rng_next(rng) % 16);
        scales[i] = awq_f32_to_f16(0.001f + 0.05f * (float)(test_rng_next(rng) % 1000) / 1000);
    }
}

/* The spec's dequantization formula (docs/formats.md 4.1), written independently of awq_pack.h. */
static double spec_dequant(const int32_t *qw, const int32_t *qz, const uint16_t *sg, int64_t out, int64_t gs,
                           int64_t o, int64_t k) {
    static const int REV[8] = {0, 4, 1, 5, 2, 6, 3, 7};
    int64_t g = k / gs, c = o / 8, j = o % 8, nc = out / 8;
    int qv = (int)(((uint32_t)qw[k * nc + c] >> (4 * REV[j])) & 0xF);
    int zv = (int)(((uint32_t)qz[g * nc + c] >> (4 * REV[j])) & 0xF);
    return (qv - zv) * (double)awq_f16_to_f32(sg[g * out + o]);
}

TEST(round_trips) {
    const cfg cfgs[] = {{64, 256, 32}, {24, 192, 64},  {16, 128, 128}, {8, 96, 96},
                        {32, 576, 64}, {8, 1024, 128}, {40, 320, 32}};
    unsigned long long rng = 2024;
    for (size_t ci = 0; ci < sizeof cfgs / sizeof cfgs[0]; ci++) {
        const int64_t out = cfgs[ci].out, in = cfgs[ci].in, gs = cfgs[ci].gs, G = in / gs;
        uint8_t *codes = malloc((size_t)(out * in)), *codes2 = malloc((size_t)(out * in));
        uint8_t *zeros = malloc((size_t)(out * G)), *zeros2 = malloc((size_t)(out * G));
        uint16_t *scales = malloc((size_t)(out * G) * 2), *scales2 = malloc((size_t)(out * G) * 2);
        fill_random(&rng, out, in, G, codes, scales, zeros);
        /* GEMM */
        int32_t *qw = malloc((size_t)(in * out / 8) * 4), *qz = malloc((size_t)(G * out / 8) * 4);
        uint16_t *sg = malloc((size_t)(G * out) * 2);
        float *w = malloc((size_t)(out * in) * 4);
        ASSERT_OK_RT(awq_pack_gemm(rt, out, in, gs, codes, scales, zeros, qw, qz, sg), rt);
        ASSERT_OK_RT(awq_unpack_gemm(rt, out, in, gs, qw, qz, sg, codes2, scales2, zeros2), rt);
        ASSERT_MSG(memcmp(codes, codes2, (size_t)(out * in)) == 0, "cfg %zu: GEMM codes", ci);
        ASSERT_MSG(memcmp(zeros, zeros2, (size_t)(out * G)) == 0, "cfg %zu: GEMM zeros", ci);
        ASSERT_MSG(memcmp(scales, scales2, (size_t)(out * G) * 2) == 0, "cfg %zu: GEMM scales", ci);
        ASSERT_OK_RT(awq_dequant_gemm(rt, out, in, gs, qw, qz, sg, w), rt);
        for (int64_t o = 0; o < out; o++)
            for (int64_t k = 0; k < in; k++) {
                double want = ((int)codes[o * in + k] - (int)zeros[o * G + k / gs]) *
                    (double)awq_f16_to_f32(scales[o * G + k / gs]);
                ASSERT_MSG((double)w[o * in + k] == want, "cfg %zu: dequant [%lld][%lld]", ci, (long long)o,
                           (long long)k);
                ASSERT((double)w[o * in + k] == spec_dequant(qw, qz, sg, out, gs, o, k));
            }
        /* GEMV (gs 96 is not a GEMV group size) */
        awq_pack_shapes sh;
        if (awq_pack_check(rt, AWQ_FORMAT_GEMV, out, in, gs, &sh) == AWQ_OK) {
            int64_t zw = sh.qzeros[1];
            int32_t *vw = malloc((size_t)(out * in / 8) * 4), *vz = malloc((size_t)(out * zw) * 4);
            uint16_t *vs = malloc((size_t)(out * zw * 8) * 2);
            ASSERT_OK_RT(awq_pack_gemv(rt, out, in, gs, codes, scales, zeros, vw, vz, vs), rt);
            memset(codes2, 0xff, (size_t)(out * in));
            ASSERT_OK_RT(awq_unpack_gemv(rt, out, in, gs, vw, vz, vs, codes2, scales2, zeros2), rt);
            ASSERT_MSG(memcmp(codes, codes2, (size_t)(out * in)) == 0, "cfg %zu: GEMV codes", ci);
            ASSERT_MSG(memcmp(zeros, zeros2, (size_t)(out * G)) == 0, "cfg %zu: GEMV zeros", ci);
            ASSERT_MSG(memcmp(scales, scales2, (size_t)(out * G) * 2) == 0, "cfg %zu: GEMV scales", ci);
            /* GEMV -> GEMM equals packing GEMM directly, bit for bit. */
            int32_t *qw2 = malloc((size_t)(in * out / 8) * 4), *qz2 = malloc((size_t)(G * out / 8) * 4);
            uint16_t *sg2 = malloc((size_t)(G * out) * 2);
            ASSERT_OK_RT(awq_gemv_to_gemm(rt, out, in, gs, vw, vz, vs, qw2, qz2, sg2), rt);
            ASSERT_MSG(memcmp(qw, qw2, (size_t)(in * out / 8) * 4) == 0, "cfg %zu: conv qweight", ci);
            ASSERT_MSG(memcmp(qz, qz2, (size_t)(G * out / 8) * 4) == 0, "cfg %zu: conv qzeros", ci);
            ASSERT_MSG(memcmp(sg, sg2, (size_t)(G * out) * 2) == 0, "cfg %zu: conv scales", ci);
            free(qw2);
            free(qz2);
            free(sg2);
            free(vw);
            free(vz);
            free(vs);
        }
        free(codes);
        free(codes2);
        free(zeros);
        free(zeros2);
        free(scales);
        free(scales2);
        free(qw);
        free(qz);
        free(sg);
        free(w);
    }
}

/* Quantize (docs/algorithm.md 7.2 in double, fp16 scales) -> pack -> unpack -> dequantize: the codes
 * survive, and the dequantized weight is within half a quantization step of the original. */
TEST(quantize_pack_dequant) {
    enum { OUT = 32, IN = 256, GS = 64, G = IN / GS };
    static float w[OUT * IN], wd[OUT * IN];
    static uint8_t codes[OUT * IN], codes2[OUT * IN], zeros[OUT * G], zeros2[OUT * G];
    static uint16_t scales[OUT * G], scales2[OUT * G], sg[G * OUT];
    static int32_t qw[IN * OUT / 8], qz[G * OUT / 8];
    unsigned long long rng = 555;
    for (int i = 0; i < OUT * IN; i++) w[i] = test_rng_normal(&rng) * 0.02f;
    for (int o = 0; o < OUT; o++)
        for (int g = 0; g < G; g++) {
            const float *x = w + o * IN + g * GS;
            double mx = -INFINITY, mn = INFINITY;
            for (int i = 0; i < GS; i++) {
                if (x[i] > mx) mx = x[i];
                if (x[i] < mn) mn = x[i];
            }
            double s = fmax(mx - mn, 1e-5) / 15;
            double z = fmin(fmax(-nearbyint(mn / s), 0), 15);
            scales[o * G + g] = awq_f32_to_f16((float)s);
            zeros[o * G + g] = (uint8_t)z;
            for (int i = 0; i < GS; i++)
                codes[o * IN + g * GS + i] = (uint8_t)fmin(fmax(nearbyint(x[i] / s) + z, 0), 15);
        }
    ASSERT_OK_RT(awq_pack_gemm(rt, OUT, IN, GS, codes, scales, zeros, qw, qz, sg), rt);
    ASSERT_OK_RT(awq_unpack_gemm(rt, OUT, IN, GS, qw, qz, sg, codes2, scales2, zeros2), rt);
    ASSERT(memcmp(codes, codes2, sizeof codes) == 0);
    ASSERT(memcmp(zeros, zeros2, sizeof zeros) == 0);
    ASSERT(memcmp(scales, scales2, sizeof scales) == 0);
    ASSERT_OK_RT(awq_dequant_gemm(rt, OUT, IN, GS, qw, qz, sg, wd), rt);
    double max_rel = 0;
    for (int o = 0; o < OUT; o++)
        for (int k = 0; k < IN; k++) {
            double s = awq_f16_to_f32(scales[o * G + k / GS]);
            double err = fabs((double)w[o * IN + k] - wd[o * IN + k]);
            /* half a step, plus the fp16 rounding of the scale times at most 15 steps */
            ASSERT_MSG(err <= 0.5 * s + 15 * s * 0x1p-11 + 1e-9, "[%d][%d] err %g step %g", o, k, err, s);
            if (err / s > max_rel) max_rel = err / s;
        }
    printf("  max |w - dequant(pack(quant(w)))| = %.3f steps\n", max_rel);
    ASSERT(max_rel > 0.3); /* a lossy quantizer: the bound is not vacuous */
}

int main(void) {
    awq_runtime_params p = awq_runtime_params_default();
    p.load_plugins = false;
    if (awq_runtime_create(&rt, &p) != AWQ_OK) return 1;
    RUN(gemm_hand_words);
    RUN(gemm_blocks_and_scales_layout);
    RUN(gemv_hand_words);
    RUN(shapes);
    RUN(validation);
    RUN(round_trips);
    RUN(quantize_pack_dequant);
    awq_runtime_destroy(rt);
    return TEST_EXIT();
}
