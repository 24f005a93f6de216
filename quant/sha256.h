/*
 * sha256.h - SHA-256 (FIPS 180-4), used for the content hashes of checkpoint files
 * (awq-manifest.json), of the tensors a resume record vouches for, and of the inputs that make
 * up a quantization's fingerprint.
 */
#ifndef AWQ_QUANT_SHA256_H
#define AWQ_QUANT_SHA256_H

#include "internal.h"

typedef struct awq_sha256 {
    uint32_t h[8];
    uint64_t n;      /* bytes hashed so far */
    uint8_t buf[64]; /* pending partial block */
    uint32_t fill;   /* bytes in buf */
} awq_sha256;

void awq_sha256_init(awq_sha256 *s);
void awq_sha256_update(awq_sha256 *s, const void *data, size_t n);
/* Writes the digest as 64 lowercase hex digits + NUL into hex (65 bytes). */
void awq_sha256_final_hex(awq_sha256 *s, char hex[65]);
/* One-shot digest of a buffer. */
void awq_sha256_hex(const void *data, size_t n, char hex[65]);
/* Digest of a whole file (read in 1 MiB pieces); *size_out (may be NULL) receives its size. */
awq_status awq_sha256_file(awq_runtime *rt, const char *path, char hex[65], int64_t *size_out);

#endif
