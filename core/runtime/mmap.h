/* mmap.h - read-only file mapping. */
#ifndef AWQ_CORE_MMAP_H
#define AWQ_CORE_MMAP_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

typedef struct awq_mmap {
    const uint8_t *data; /* mapped bytes, NULL for an empty file */
    uint64_t size;       /* file size in bytes */
} awq_mmap;

/* Maps path read-only. Errors name the file. */
awq_status awq_mmap_open(awq_runtime *rt, const char *path, awq_mmap *out);
void awq_mmap_close(awq_mmap *m);
/* Tells the kernel the range [offs, offs+len) is no longer needed (drops it from RSS). */
void awq_mmap_release(const awq_mmap *m, uint64_t offs, uint64_t len);

#endif
