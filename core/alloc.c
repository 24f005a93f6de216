/* alloc.c - checked allocation wrappers. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void *awq_malloc(size_t n) { return n ? malloc(n) : NULL; }

void *awq_calloc(size_t n, size_t size) {
    uint64_t total;
    if (n == 0 || size == 0 || awq_mul_overflow_u64(n, size, &total) || total > SIZE_MAX)
        return NULL;
    return calloc(n, size);
}

void *awq_realloc(void *p, size_t n) { return realloc(p, n ? n : 1); }

void awq_free(void *p) { free(p); }

char *awq_strdup(const char *s) { return s ? awq_strndup(s, strlen(s)) : NULL; }

char *awq_strndup(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}
