/*
 * test_dtype.c - the fp16 / bf16 conversions of awq_pack.h against an independent
 * double-precision reference written here: every half and every bfloat16 decoded, and float
 * encoding (round to nearest even) checked on every tie and near-tie of every exponent, the
 * subnormal range, overflow, NaN, and a large random sample of bit patterns.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "awq_pack.h"
#include "test.h"

static float f_of(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static uint32_t u_of(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* ---- reference: decode ------------------------------------------------------------------- */

/* Value of a binary16 bit pattern (NaN for NaNs). */
static double ref_half_value(uint16_t h) {
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v;
    if (e == 31)
        v = m ? NAN : INFINITY;
    else if (e == 0)
        v = ldexp((double)m, -24);
    else
        v = ldexp((double)(1024 + m), e - 25);
    return s ? -v : v;
}

static double ref_bf16_value(uint16_t b) {
    int s = b >> 15, e = (b >> 7) & 255, m = b & 127;
    double v;
    if (e == 255)
        v = m ? NAN : INFINITY;
    else if (e == 0)
        v = ldexp((double)m, -133);
    else
        v = ldexp((double)(128 + m), e - 134);
    return s ? -v : v;
}

/* ---- reference: encode (round to nearest, ties to even) ---------------------------------- */

/* Generic encoder for a binary format with p significand bits (incl. the implicit one),
 * minimum normal exponent emin, exponent field width ew. Returns the bit pattern without the
 * sign for |x| finite. rint() in the default rounding mode rounds ties to even. */
static uint32_t ref_encode(double a, int p, int emin, int ew) {
    if (a == 0) return 0;
    int E;
    frexp(a, &E); /* a = f * 2^E, f in [0.5, 1): leading bit has weight 2^(E-1) */
    int lead = E - 1;
    int q = (lead < emin ? emin : lead) - (p - 1); /* quantum exponent */
    double n = rint(ldexp(a, -q));                 /* exact scaling, then round */
    uint32_t inf = ((1u << ew) - 1) << (p - 1);
    uint32_t bits;
    if (lead < emin)
        bits = (uint32_t)n; /* subnormal (n == 2^(p-1) is the smallest normal) */
    else
        bits = ((uint32_t)(lead - emin + 1) << (p - 1)) + (uint32_t)n - (1u << (p - 1));
    return bits >= inf ? inf : bits; /* rounding up past the largest finite value -> inf */
}

static uint16_t ref_f32_to_f16(float x) {
    uint16_t sign = signbit(x) ? 0x8000 : 0;
    if (isinf(x)) return sign | 0x7c00;
    return (uint16_t)(sign | ref_encode(fabs((double)x), 11, -14, 5));
}

static uint16_t ref_f32_to_bf16(float x) {
    uint16_t sign = signbit(x) ? 0x8000 : 0;
    if (isinf(x)) return sign | 0x7f80;
    return (uint16_t)(sign | ref_encode(fabs((double)x), 8, -126, 8));
}

/* ---- checks ------------------------------------------------------------------------------ */

static long n_checked;

/* Compares awq_f32_to_f16(x) with the reference; NaN must give a quiet NaN of the same sign
 * keeping the top payload bits (as F16C's vcvtps2ph does). Returns 0 on mismatch. */
static int check_f16(float x) {
    n_checked++;
    uint16_t got = awq_f32_to_f16(x);
    if (isnan(x)) {
        uint32_t u = u_of(x);
        uint16_t want = (uint16_t)(((u >> 16) & 0x8000) | 0x7e00 | ((u >> 13) & 0x3ff));
        if (got != want) {
            printf("  f32->f16 NaN 0x%08x: got 0x%04x want 0x%04x\n", u, got, want);
            return 0;
        }
        return 1;
    }
    uint16_t want = ref_f32_to_f16(x);
    if (got != want) {
        printf("  f32->f16 %.9g (0x%08x): got 0x%04x want 0x%04x\n", x, u_of(x), got, want);
        return 0;
    }
    return 1;
}

static int check_bf16(float x) {
    n_checked++;
    uint16_t got = awq_f32_to_bf16(x);
    if (isnan(x)) {
        uint32_t u = u_of(x);
        uint16_t want = (uint16_t)((u >> 16) | 0x40);
        if (got != want) {
            printf("  f32->bf16 NaN 0x%08x: got 0x%04x want 0x%04x\n", u, got, want);
            return 0;
        }
        return 1;
    }
    uint16_t want = ref_f32_to_bf16(x);
    if (got != want) {
        printf("  f32->bf16 %.9g (0x%08x): got 0x%04x want 0x%04x\n", x, u_of(x), got, want);
        return 0;
    }
    return 1;
}

/* ---- tests ------------------------------------------------------------------------------- */

TEST(f16_decode_all) {
    for (uint32_t h = 0; h < 65536; h++) {
        float f = awq_f16_to_f32((uint16_t)h);
        double want = ref_half_value((uint16_t)h);
        if (isnan(want)) {
            /* NaN: same sign, payload kept, quiet bit set. */
            uint32_t u = u_of(f);
            ASSERT_MSG(isnan(f), "0x%04x: not NaN", h);
            ASSERT_MSG((u >> 31) == (h >> 15), "0x%04x: sign", h);
            ASSERT_MSG(((u >> 13) & 0x3ff) == ((h & 0x3ff) | 0x200), "0x%04x: payload 0x%08x", h, u);
            continue;
        }
        ASSERT_MSG((double)f == want && !!signbit(f) == !!signbit(want), "0x%04x: got %.9g want %.9g", h, f,
                   want);
        /* And back: every non-NaN half survives the round trip bit-exactly. */
        ASSERT_MSG(awq_f32_to_f16(f) == h, "0x%04x -> %.9g -> 0x%04x", h, f, awq_f32_to_f16(f));
    }
    /* Quiet NaNs round-trip exactly too. */
    for (uint32_t m = 0x200; m < 0x400; m++) {
        ASSERT_EQ(awq_f32_to_f16(awq_f16_to_f32((uint16_t)(0x7c00 | m))), 0x7c00 | m);
        ASSERT_EQ(awq_f32_to_f16(awq_f16_to_f32((uint16_t)(0xfc00 | m))), 0xfc00 | m);
    }
}

TEST(f16_encode_hand_values) {
    /* Written out by hand from the binary16 layout. */
    ASSERT_EQ(awq_f32_to_f16(1.0f), 0x3c00);
    ASSERT_EQ(awq_f32_to_f16(-2.0f), 0xc000);
    ASSERT_EQ(awq_f32_to_f16(0.0f), 0x0000);
    ASSERT_EQ(awq_f32_to_f16(-0.0f), 0x8000);
    ASSERT_EQ(awq_f32_to_f16(1.0f + 0x1p-10f), 0x3c01);
    ASSERT_EQ(awq_f32_to_f16(1.0f + 0x1p-11f), 0x3c00);            /* tie -> even (down) */
    ASSERT_EQ(awq_f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3c02);        /* tie -> even (up) */
    ASSERT_EQ(awq_f32_to_f16(1.0f + 0x1p-11f + 0x1p-23f), 0x3c01); /* just above the tie */
    ASSERT_EQ(awq_f32_to_f16(65504.0f), 0x7bff);                   /* largest finite */
    ASSERT_EQ(awq_f32_to_f16(65519.99f), 0x7bff);
    ASSERT_EQ(awq_f32_to_f16(65520.0f), 0x7c00); /* tie rounds up to inf */
    ASSERT_EQ(awq_f32_to_f16(-1e10f), 0xfc00);
    ASSERT_EQ(awq_f32_to_f16(FLT_MAX), 0x7c00);
    ASSERT_EQ(awq_f32_to_f16(INFINITY), 0x7c00);
    ASSERT_EQ(awq_f32_to_f16(0x1p-14f), 0x0400); /* smallest normal */
    ASSERT_EQ(awq_f32_to_f16(0x1p-24f), 0x0001); /* smallest subnormal */
    ASSERT_EQ(awq_f32_to_f16(0x1p-25f), 0x0000); /* tie -> even = 0 */
    ASSERT_EQ(awq_f32_to_f16(-0x1p-25f), 0x8000);
    ASSERT_EQ(awq_f32_to_f16(0x1.000002p-25f), 0x0001); /* just above the tie */
    ASSERT_EQ(awq_f32_to_f16(0x1.8p-24f), 0x0002);      /* 1.5 ulp tie -> even 2 */
    ASSERT_EQ(awq_f32_to_f16(0x1.4p-23f), 0x0002);      /* 2.5 ulp tie -> even 2 */
    ASSERT_EQ(awq_f32_to_f16(0x1.ff8p-15f), 0x03ff);    /* largest subnormal */
    ASSERT_EQ(awq_f32_to_f16(0x1.ffcp-15f), 0x0400);    /* tie -> even: smallest normal */
    ASSERT_EQ(awq_f32_to_f16(0x1.ff4p-15f), 0x03fe);    /* tie -> even: 1022 */
    ASSERT_EQ(awq_f32_to_f16(1e-10f), 0x0000);
    ASSERT_EQ(awq_f32_to_f16(0x1p-149f), 0x0000); /* float subnormal */
    uint16_t nan = awq_f32_to_f16(NAN);
    ASSERT(((nan >> 10) & 31) == 31 && (nan & 0x3ff) != 0);
    ASSERT_EQ(awq_f32_to_f16(f_of(0x7f800001u)) & 0x7fff, 0x7e00); /* signalling NaN -> quiet */
    ASSERT_EQ(awq_f32_to_f16(f_of(0xffc00000u)), 0xfe00);          /* negative NaN keeps its sign */
    ASSERT_NEAR(awq_round_f16(0.1f), 0.0999755859375, 0);
}

/* Every tie between consecutive halves, and the floats on either side of it. */
TEST(f16_encode_ties) {
    int bad = 0;
    for (uint32_t h = 0; h < 0x7c00 && bad < 5; h++) {
        double lo = ref_half_value((uint16_t)h);
        double hi = h + 1 < 0x7c00 ? ref_half_value((uint16_t)(h + 1)) : 65536.0;
        float mid = (float)((lo + hi) / 2); /* exact: 12 significant bits */
        ASSERT((double)mid == (lo + hi) / 2);
        float cand[5] = {mid, nextafterf(mid, 0), nextafterf(mid, INFINITY), (float)lo,
                         nextafterf((float)lo, INFINITY)};
        for (int i = 0; i < 5; i++) {
            if (!check_f16(cand[i])) bad++;
            if (!check_f16(-cand[i])) bad++;
        }
    }
    ASSERT_EQ(bad, 0);
}

/* Every float whose low 13 bits (the part binary16 drops from a normal float) are one of the
 * interesting values, over all signs/exponents/high mantissa bits: 2^19 x 7 floats. */
TEST(f16_encode_structured) {
    static const uint32_t low[7] = {0, 1, 0x0fff, 0x1000, 0x1001, 0x1fff, 0x0800};
    int bad = 0;
    for (uint32_t hi = 0; hi < (1u << 19) && bad < 5; hi++)
        for (int i = 0; i < 7; i++)
            if (!check_f16(f_of((hi << 13) | low[i]))) bad++;
    ASSERT_EQ(bad, 0);
}

/* The binary16 subnormal and underflow range [0, 2^-14) densely: every float there whose
 * low 8 bits are 0 or 0x80 or 0xff (2^16 x 3 per exponent). */
TEST(f16_encode_subnormal_range) {
    int bad = 0;
    for (uint32_t e = 90; e <= 113 && bad < 5; e++)
        for (uint32_t m = 0; m < (1u << 15) && bad < 5; m++) {
            uint32_t base = (e << 23) | (m << 8);
            if (!check_f16(f_of(base))) bad++;
            if (!check_f16(f_of(base | 0x80))) bad++;
            if (!check_f16(f_of(base | 0xff))) bad++;
        }
    ASSERT_EQ(bad, 0);
}

TEST(f16_encode_random) {
    unsigned long long rng = 0x1234567;
    int bad = 0;
    for (int i = 0; i < 16000000 && bad < 5; i++)
        if (!check_f16(f_of((uint32_t)(test_rng_next(&rng) >> 17)))) bad++;
    ASSERT_EQ(bad, 0);
}

TEST(bf16_decode_all) {
    for (uint32_t b = 0; b < 65536; b++) {
        float f = awq_bf16_to_f32((uint16_t)b);
        double want = ref_bf16_value((uint16_t)b);
        if (isnan(want)) {
            ASSERT_MSG(isnan(f) && (u_of(f) >> 16) == b, "0x%04x: NaN bits 0x%08x", b, u_of(f));
            continue;
        }
        ASSERT_MSG((double)f == want && !!signbit(f) == !!signbit(want), "0x%04x: got %.9g want %.9g", b, f,
                   want);
        ASSERT_MSG(awq_f32_to_bf16(f) == b, "0x%04x round trip", b);
    }
}

TEST(bf16_encode) {
    ASSERT_EQ(awq_f32_to_bf16(1.0f), 0x3f80);
    ASSERT_EQ(awq_f32_to_bf16(1.0f + 0x1p-8f), 0x3f80);     /* tie -> even (down) */
    ASSERT_EQ(awq_f32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3f82); /* tie -> even (up) */
    ASSERT_EQ(awq_f32_to_bf16(FLT_MAX), 0x7f80);            /* rounds up to inf */
    ASSERT_EQ(awq_f32_to_bf16(-0.0f), 0x8000);
    ASSERT_EQ(awq_f32_to_bf16(f_of(0x7f800001u)), 0x7fc0); /* sNaN -> quiet NaN */
    int bad = 0;
    static const uint32_t low[7] = {0, 1, 0x7fff, 0x8000, 0x8001, 0xffff, 0x4000};
    for (uint32_t hi = 0; hi < 65536 && bad < 5; hi++)
        for (int i = 0; i < 7; i++)
            if (!check_bf16(f_of((hi << 16) | low[i]))) bad++;
    unsigned long long rng = 77;
    for (int i = 0; i < 2000000 && bad < 5; i++)
        if (!check_bf16(f_of((uint32_t)(test_rng_next(&rng) >> 13)))) bad++;
    ASSERT_EQ(bad, 0);
}

int main(void) {
    RUN(f16_decode_all);
    RUN(f16_encode_hand_values);
    RUN(f16_encode_ties);
    RUN(f16_encode_structured);
    RUN(f16_encode_subnormal_range);
    RUN(f16_encode_random);
    RUN(bf16_decode_all);
    RUN(bf16_encode);
    printf("%ld float encodings checked\n", n_checked);
    return TEST_EXIT();
}
