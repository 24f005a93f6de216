/*
 * gguf.h - GGUF v2/v3 reader (llama.cpp's model format): metadata, tensor infos, and
 * dequantization of F32/F16/BF16/Q8_0/Q4_0/Q4_1/Q4_K/Q5_K/Q6_K to F32.
 *
 * Every count, length and offset in the file is checked (overflow-safe) against the file size;
 * errors name the file and the field ("model.gguf: tensor 12 'blk.0.attn_q.weight': data
 * offset 123 + 4096 bytes past end of file").
 */
#ifndef AWQ_CORE_GGUF_H
#define AWQ_CORE_GGUF_H

#include "internal.h"
#include "mmap.h"

typedef enum awq_gguf_type {
    AWQ_GGUF_UINT8 = 0,
    AWQ_GGUF_INT8 = 1,
    AWQ_GGUF_UINT16 = 2,
    AWQ_GGUF_INT16 = 3,
    AWQ_GGUF_UINT32 = 4,
    AWQ_GGUF_INT32 = 5,
    AWQ_GGUF_FLOAT32 = 6,
    AWQ_GGUF_BOOL = 7,
    AWQ_GGUF_STRING = 8,
    AWQ_GGUF_ARRAY = 9,
    AWQ_GGUF_UINT64 = 10,
    AWQ_GGUF_INT64 = 11,
    AWQ_GGUF_FLOAT64 = 12,
} awq_gguf_type;

/* ggml tensor types we know (values are ggml's). */
enum {
    AWQ_GGML_F32 = 0,
    AWQ_GGML_F16 = 1,
    AWQ_GGML_Q4_0 = 2,
    AWQ_GGML_Q4_1 = 3,
    AWQ_GGML_Q5_0 = 6,
    AWQ_GGML_Q5_1 = 7,
    AWQ_GGML_Q8_0 = 8,
    AWQ_GGML_Q8_1 = 9,
    AWQ_GGML_Q2_K = 10,
    AWQ_GGML_Q3_K = 11,
    AWQ_GGML_Q4_K = 12,
    AWQ_GGML_Q5_K = 13,
    AWQ_GGML_Q6_K = 14,
    AWQ_GGML_Q8_K = 15,
    AWQ_GGML_BF16 = 30,
};

typedef struct awq_gguf_str {
    const char *ptr; /* borrowed, NOT NUL-terminated (points into the mapping) */
    uint64_t len;
} awq_gguf_str;

typedef struct awq_gguf_kv {
    char *key; /* owned, NUL-terminated */
    awq_gguf_type type;
    /* scalars */
    union {
        uint64_t u64;
        int64_t i64;
        double f64;
        bool b;
        awq_gguf_str str;
    } v;
    /* arrays (type == AWQ_GGUF_ARRAY) */
    awq_gguf_type arr_type;
    uint64_t arr_n;
    const void *arr_data;  /* fixed-size elements: raw little-endian data in the mapping */
    awq_gguf_str *arr_str; /* string arrays: owned table of arr_n entries */
} awq_gguf_kv;

typedef struct awq_gguf_tensor {
    char *name; /* owned */
    uint32_t n_dims;
    uint64_t ne[4];  /* ggml order: ne[0] is the innermost (row length) */
    uint32_t type;   /* AWQ_GGML_* */
    uint64_t offset; /* relative to the data section */
    uint64_t nbytes;
    const void *data; /* borrowed: into the mapping */
} awq_gguf_tensor;

typedef struct awq_gguf {
    char *path;
    awq_mmap map;
    uint32_t version;
    uint64_t n_kv, n_tensors;
    awq_gguf_kv *kv;
    awq_gguf_tensor *tensors;
    uint64_t alignment;
    uint64_t data_offset; /* start of the tensor data section in the file */
} awq_gguf;

/* Owned: awq_gguf_close. */
awq_status awq_gguf_open(awq_runtime *rt, const char *path, awq_gguf **out);
void awq_gguf_close(awq_gguf *g);

const awq_gguf_kv *awq_gguf_find_kv(const awq_gguf *g, const char *key);
const awq_gguf_tensor *awq_gguf_find_tensor(const awq_gguf *g, const char *name);

/* Typed metadata getters: AWQ_ERR_FORMAT naming the key on a type mismatch; if absent and
 * required -> AWQ_ERR_FORMAT, else *out = def. Integer getters accept any integer type that fits. */
awq_status awq_gguf_get_u64(awq_runtime *rt, const awq_gguf *g, const char *key, bool required, uint64_t def,
                            uint64_t *out);
awq_status awq_gguf_get_f64(awq_runtime *rt, const awq_gguf *g, const char *key, bool required, double def,
                            double *out);
awq_status awq_gguf_get_bool(awq_runtime *rt, const awq_gguf *g, const char *key, bool required, bool def,
                             bool *out);
/* Returns a malloc'ed NUL-terminated copy (awq_free), or NULL if absent and not required. */
awq_status awq_gguf_get_str(awq_runtime *rt, const awq_gguf *g, const char *key, bool required, char **out);

/* Elements of a tensor. */
uint64_t awq_gguf_tensor_nelem(const awq_gguf_tensor *t);
/* Dequantizes a whole tensor to F32 into out (nelem floats), in ggml element order
 * (row-major with ne[0] innermost). Unsupported types -> AWQ_ERR_UNSUPPORTED naming the type. */
awq_status awq_gguf_dequantize(awq_runtime *rt, const awq_gguf *g, const awq_gguf_tensor *t, float *out);
/* Name of a ggml type ("Q4_K") or "unknown". */
const char *awq_ggml_type_name(uint32_t type);

#endif
