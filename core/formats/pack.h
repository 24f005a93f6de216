/*
 * pack.h - AutoAWQ 4-bit checkpoint layouts (docs/formats.md 4.1 GEMM, 4.2 GEMV): packing from
 * codes/scales/zeros, unpacking back, dequantization, and GEMV -> GEMM conversion.
 *
 * The unpacked ("logical") form of a quantized linear with out outputs, in inputs and group
 * size gs (G = in / gs groups per row):
 *   codes  (out, in) uint8, 0..15           the quantized integer of W[o][k]
 *   scales (out, G)  uint16 fp16 bits       S[o][g]
 *   zeros  (out, G)  uint8, 0..15           Z[o][g]
 * so that W[o][k] = (codes[o][k] - zeros[o][k/gs]) * scales[o][k/gs].
 *
 * GEMM (version "gemm", what vLLM and transformers load):
 *   qweight (in, out/8) int32   nibble slot i of word [k][c] = codes[8c + order[i]][k]
 *   qzeros  (G, out/8)  int32   nibble slot i of word [g][c] = zeros[8c + order[i]][g]
 *   scales  (G, out)    fp16    = scales^T
 * with order = [0, 2, 4, 6, 1, 3, 5, 7].
 * GEMV (version "gemv"), zw = awq_gemv_zeros_width(in, gs):
 *   qweight (out, in/8)  int32  nibble i of word [o][j] = codes[o][8j + i]
 *   qzeros  (out, zw)    int32  nibble i of word [o][j] = zeros[o][8j + i], unused nibbles 0
 *   scales  (out, zw*8)  fp16   scales[o][g] for g < G, zero padding after
 *
 * All functions validate the shape (out % 8 == 0, in % gs == 0, a supported gs) and return
 * AWQ_ERR_INVALID_ARG / AWQ_ERR_UNSUPPORTED with a message on rt. Buffers are caller-owned
 * and must not overlap.
 */
#ifndef AWQ_CORE_PACK_H
#define AWQ_CORE_PACK_H

#include "internal.h"

/* Shapes (rows, cols) of the three packed tensors of a format, after validating the shape. */
typedef struct awq_pack_shapes {
    int64_t qweight[2]; /* int32 */
    int64_t qzeros[2];  /* int32 */
    int64_t scales[2];  /* fp16 */
} awq_pack_shapes;

/* Validates (out, in, gs) for fmt and fills the packed shapes (out may be NULL).
 * GEMM: gs > 0, in % gs == 0, out % 8 == 0. GEMV: additionally in % 8 == 0 and gs in
 * {32, 64} or >= 128 (AutoAWQ's calculate_zeros_width). */
awq_status awq_pack_check(awq_runtime *rt, awq_quant_format fmt, int64_t out, int64_t in, int64_t gs,
                          awq_pack_shapes *shapes);

/* codes (out, in), scales (out, G), zeros (out, G) -> GEMM qweight (in, out/8),
 * qzeros (G, out/8), scales_gemm (G, out). Codes or zeros > 15 are an INVALID_ARG error. */
awq_status awq_pack_gemm(awq_runtime *rt, int64_t out, int64_t in, int64_t gs, const uint8_t *codes,
                         const uint16_t *scales, const uint8_t *zeros, int32_t *qweight, int32_t *qzeros,
                         uint16_t *scales_gemm);
/* Inverse of awq_pack_gemm. */
awq_status awq_unpack_gemm(awq_runtime *rt, int64_t out, int64_t in, int64_t gs, const int32_t *qweight,
                           const int32_t *qzeros, const uint16_t *scales_gemm, uint8_t *codes,
                           uint16_t *scales, uint8_t *zeros);

/* codes (out, in), scales (out, G), zeros (out, G) -> GEMV qweight (out, in/8),
 * qzeros (out, zw), scales_gemv (out, zw*8) (padding written as zeros). */
awq_status awq_pack_gemv(awq_runtime *rt, int64_t out, int64_t in, int64_t gs, const uint8_t *codes,
                         const uint16_t *scales, const uint8_t *zeros, int32_t *qweight, int32_t *qzeros,
                         uint16_t *scales_gemv);
/* Inverse of awq_pack_gemv (padding is ignored). */
awq_status awq_unpack_gemv(awq_runtime *rt, int64_t out, int64_t in, int64_t gs, const int32_t *qweight,
                           const int32_t *qzeros, const uint16_t *scales_gemv, uint8_t *codes,
                           uint16_t *scales, uint8_t *zeros);

/* Converts a GEMV checkpoint's tensors to the GEMM layout (used to load GEMV checkpoints):
 * gemv qweight (out, in/8), qzeros (out, zw), scales (out, zw*8) -> GEMM qweight (in, out/8),
 * qzeros (G, out/8), scales (G, out). Streams over blocks of 8 output rows (no full unpack). */
awq_status awq_gemv_to_gemm(awq_runtime *rt, int64_t out, int64_t in, int64_t gs, const int32_t *qweight_gemv,
                            const int32_t *qzeros_gemv, const uint16_t *scales_gemv, int32_t *qweight,
                            int32_t *qzeros, uint16_t *scales_gemm);

/* llama.cpp's Q8_0 of one weight row w (n floats, n % 32 == 0), as ggml's quantize_row_q8_0_ref:
 * per block b of 32, amax = max |w|, d = amax / 127, q = roundf(w * (1 / d)) (half away from zero;
 * all 0 when amax is 0) into qs[32b..32b+32) and the fp16 bits of d (rounded to nearest even)
 * into d16[b]. The weight it stands for is qs[k] * fp16(d16[k / 32]). Non-finite inputs give 0. */
void awq_q8_0_quantize_row(const float *w, int64_t n, int8_t *qs, uint16_t *d16);

/* Dequantizes GEMM tensors to w (out, in) F32: w[o][k] = (q - z) * fp16 scale (exact in fp32). */
awq_status awq_dequant_gemm(awq_runtime *rt, int64_t out, int64_t in, int64_t gs, const int32_t *qweight,
                            const int32_t *qzeros, const uint16_t *scales_gemm, float *w);

#endif
