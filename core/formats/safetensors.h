/*
 * safetensors.h - safetensors reader (mmap, single or sharded) and writer.
 *
 * Reader: every header field is checked against the file: header length sane and inside the
 * file, JSON valid, dtype known, shape entries non-negative, data_offsets [begin, end) inside the
 * data section, end - begin == dtype size * product(shape) (overflow-safe), tensors not
 * overlapping. Errors name the file, the tensor and the field.
 */
#ifndef AWQ_CORE_SAFETENSORS_H
#define AWQ_CORE_SAFETENSORS_H

#include "internal.h"
#include "mmap.h"

#define AWQ_ST_MAX_DIMS 8

typedef struct awq_st_tensor {
    char *name;
    awq_dtype dtype;
    int32_t ndim;
    int64_t shape[AWQ_ST_MAX_DIMS]; /* outermost-first, as in the file */
    uint64_t nbytes;
    const void *data; /* borrowed: points into the file mapping */
    int32_t file;     /* index into the reader's files */
} awq_st_tensor;

typedef struct awq_safetensors awq_safetensors;

/* Opens a model: path may be a directory (model.safetensors.index.json if present, else
 * model.safetensors, else the single *.safetensors file) or a .safetensors file.
 * Owned: awq_st_close. */
awq_status awq_st_open(awq_runtime *rt, const char *path, awq_safetensors **out);
void awq_st_close(awq_safetensors *st);

int32_t awq_st_count(const awq_safetensors *st);
const awq_st_tensor *awq_st_get(const awq_safetensors *st, int32_t i);         /* sorted by name */
const awq_st_tensor *awq_st_find(const awq_safetensors *st, const char *name); /* NULL if absent */
/* Path of the file holding a tensor (for messages). */
const char *awq_st_file_path(const awq_safetensors *st, int32_t file);
/* Value of a __metadata__ key in the first file, or NULL. Borrowed. */
const char *awq_st_metadata(const awq_safetensors *st, const char *key);
/* Drops a tensor's pages from memory (after it was consumed). */
void awq_st_release(const awq_safetensors *st, const awq_st_tensor *t);

/* Reads a tensor converted to F32 into out (nelem floats). Supports F32/F16/BF16. */
awq_status awq_st_read_f32(awq_runtime *rt, const awq_safetensors *st, const awq_st_tensor *t, float *out);

/* ---- writer ---------------------------------------------------------------------------- */

typedef struct awq_st_writer awq_st_writer;

/* Plans a checkpoint in dir: add every tensor first (in the order they should appear), then
 * begin(), then write each tensor's bytes (any order), then finish(). Shards are filled greedily
 * in add order up to max_shard_bytes (0 = no limit): one file is named model.safetensors, several
 * model-0000i-of-0000N.safetensors plus model.safetensors.index.json. metadata is a
 * NULL-terminated list of key, value string pairs for __metadata__ (may be NULL).
 * Owned: awq_st_writer_destroy (which does not delete files). */
awq_status awq_st_writer_create(awq_runtime *rt, awq_st_writer **out, const char *dir,
                                uint64_t max_shard_bytes, const char *const *metadata);
awq_status awq_st_writer_add(awq_st_writer *w, const char *name, awq_dtype dtype, int32_t ndim,
                             const int64_t *shape);
awq_status awq_st_writer_begin(awq_st_writer *w);
/* nbytes must equal the planned size. */
awq_status awq_st_writer_write(awq_st_writer *w, const char *name, const void *data, uint64_t nbytes);
/* Checks every tensor was written, flushes and closes the files, writes the index if sharded. */
awq_status awq_st_writer_finish(awq_st_writer *w);
void awq_st_writer_destroy(awq_st_writer *w);

#endif
