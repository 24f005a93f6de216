/*
 * awq_pack.h - static inline helpers shared by libawq and the backend plugins:
 * IEEE half / bfloat16 conversion and the AutoAWQ 4-bit packing order (docs/formats.md 4.1, 4.2).
 * Everything here is header-only so plugins need not link libawq.
 */
#ifndef AWQ_PACK_H
#define AWQ_PACK_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "awq.h" /* awq_dtype */

#ifdef __cplusplus
extern "C" {
#endif

/* ---- fp16 / bf16 <-> fp32 -------------------------------------------------------------- */

/* The float whose IEEE binary32 bits are u. */
static inline float awq_bits_to_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}
/* The IEEE binary32 bits of f. */
static inline uint32_t awq_f32_to_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* IEEE binary16 -> float, exact for every input (subnormals, inf, NaN). */
static inline float awq_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    uint32_t u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else { /* subnormal: normalise */
            exp = 127 - 15 + 1;
            while (!(man & 0x400u)) {
                man <<= 1;
                exp--;
            }
            man &= 0x3ffu;
            u = sign | (exp << 23) | (man << 13);
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (man << 13) | (man ? 0x400000u : 0);
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    return awq_bits_to_f32(u);
}

/* float -> IEEE binary16, round to nearest even; overflow -> inf; NaN stays NaN. */
static inline uint16_t awq_f32_to_f16(float f) {
    uint32_t u = awq_f32_to_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;
    if (a >= 0x7f800000u) /* inf, or NaN: quiet, keeping the top payload bits (as F16C does) */
        return (uint16_t)(sign | 0x7c00u | (a > 0x7f800000u ? 0x200u | ((a >> 13) & 0x3ffu) : 0));
    if (a >= 0x477ff000u) /* >= 65520 rounds to inf */
        return (uint16_t)(sign | 0x7c00u);
    if (a < 0x38800000u) {                /* below the smallest normal half (2^-14): subnormal or zero */
        if (a < 0x33000000u) return sign; /* < 2^-25 rounds to 0 (2^-25 ties to even = 0) */
        uint32_t exp = a >> 23;
        uint32_t man = (a & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - exp; /* 14 - (exp - 127) + 10 - ... ; result = man >> (shift - 0) */
        /* value = man * 2^(exp-150); half subnormal unit = 2^-24 -> q = man * 2^(exp-126) */
        uint32_t q = man >> shift;
        uint32_t rem = man & ((1u << shift) - 1);
        uint32_t half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1u))) q++;
        return (uint16_t)(sign | q);
    }
    uint32_t r = a + 0xfffu + ((a >> 13) & 1u); /* round to nearest even at bit 13 */
    return (uint16_t)(sign | ((r - 0x38000000u) >> 13));
}

/* bfloat16 -> float (exact). */
static inline float awq_bf16_to_f32(uint16_t b) { return awq_bits_to_f32((uint32_t)b << 16); }

/* float -> bfloat16, round to nearest even; NaN stays NaN (quiet). */
static inline uint16_t awq_f32_to_bf16(float f) {
    uint32_t u = awq_f32_to_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* The one host row converter of libawq and the plugins: dst[0..n) = the n F32/F16/BF16 values
 * at src as floats (exact). src may be unaligned (bytes are copied; little-endian, as every host
 * awq supports). Returns false, writing nothing, for any other dtype. */
static inline bool awq_row_to_f32(float *dst, const void *src, awq_dtype t, int64_t n) {
    const unsigned char *p = (const unsigned char *)src;
    if (t == AWQ_DTYPE_F32) {
        if (n > 0) memcpy(dst, p, (size_t)n * 4);
        return true;
    }
    if (t != AWQ_DTYPE_F16 && t != AWQ_DTYPE_BF16) return false;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        dst[i] = t == AWQ_DTYPE_F16 ? awq_f16_to_f32(h) : awq_bf16_to_f32(h);
    }
    return true;
}

/* The reverse: dst = n floats stored as F32 (copied) or rounded to F16/BF16 (nearest even);
 * dst may be unaligned. Returns false, writing nothing, for any other dtype. */
static inline bool awq_row_from_f32(void *dst, awq_dtype t, const float *src, int64_t n) {
    unsigned char *p = (unsigned char *)dst;
    if (t == AWQ_DTYPE_F32) {
        if (n > 0) memcpy(p, src, (size_t)n * 4);
        return true;
    }
    if (t != AWQ_DTYPE_F16 && t != AWQ_DTYPE_BF16) return false;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h = t == AWQ_DTYPE_F16 ? awq_f32_to_f16(src[i]) : awq_f32_to_bf16(src[i]);
        memcpy(p + 2 * i, &h, 2);
    }
    return true;
}

/* Rounds a float to the nearest fp16 value and back (fp16 emulation of one operation). */
static inline float awq_round_f16(float f) { return awq_f16_to_f32(awq_f32_to_f16(f)); }

/* ---- AutoAWQ GEMM packing (docs/formats.md 4.1) ----------------------------------------- */

/* Nibble slot i of a packed word holds logical column 8c + awq_pack_order[i]. */
static const int awq_pack_order[8] = {0, 2, 4, 6, 1, 3, 5, 7};
/* Logical column j lives in nibble slot awq_pack_reverse[j]. */
static const int awq_pack_reverse[8] = {0, 4, 1, 5, 2, 6, 3, 7};

/* Packs 8 values (0..15) of logical columns 0..7 into one GEMM-order word. */
static inline int32_t awq_pack_word(const uint8_t v[8]) {
    uint32_t w = 0;
    for (int i = 0; i < 8; i++) w |= (uint32_t)(v[awq_pack_order[i]] & 0xfu) << (4 * i);
    return (int32_t)w;
}
/* Value of logical column j (0..7) of a GEMM-order word. */
static inline uint8_t awq_unpack_nibble(int32_t word, int j) {
    return (uint8_t)(((uint32_t)word >> (4 * awq_pack_reverse[j])) & 0xfu);
}
/* Unpacks all 8 logical columns of a GEMM-order word. */
static inline void awq_unpack_word(int32_t word, uint8_t v[8]) {
    for (int j = 0; j < 8; j++) v[j] = awq_unpack_nibble(word, j);
}

/* ---- AutoAWQ GEMV packing (docs/formats.md 4.2): sequential nibbles ---------------------- */

/* Packs 8 values (0..15) into one word, value i in bits 4i..4i+3 (GEMV order). */
static inline int32_t awq_pack_word_seq(const uint8_t v[8]) {
    uint32_t w = 0;
    for (int i = 0; i < 8; i++) w |= (uint32_t)(v[i] & 0xfu) << (4 * i);
    return (int32_t)w;
}
/* Value i (0..7) of a GEMV-order word. */
static inline uint8_t awq_unpack_nibble_seq(int32_t word, int i) {
    return (uint8_t)(((uint32_t)word >> (4 * i)) & 0xfu);
}

/* Zero-point words per row of a GEMV checkpoint (calc_zeros_width in AutoAWQ);
 * returns 0 for an unsupported group size. */
static inline int64_t awq_gemv_zeros_width(int64_t in, int64_t gs) {
    int64_t m;
    if (gs >= 128)
        m = 1;
    else if (gs == 64)
        m = 2;
    else if (gs == 32)
        m = 4;
    else
        return 0;
    int64_t g = in / gs;
    int64_t base = (g + 7) / 8;
    return (base + m - 1) / m * m;
}

#ifdef __cplusplus
}
#endif

#endif /* AWQ_PACK_H */
