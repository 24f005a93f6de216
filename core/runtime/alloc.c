/* alloc.c - checked allocation wrappers, and the allocation-failure hook of the fault tests. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Fault injection (tests only, see internal.h): fail_at = n > 0 fails the n-th allocation
 * counted since awq_alloc_fail_set. Two relaxed atomics per allocation when off. */
static atomic_llong fail_at, alloc_count;

static bool (*fail_hook)(int64_t n, void *user);
static void *fail_hook_user;

void awq_alloc_fail_set(int64_t nth) {
    fail_hook = NULL;
    atomic_store(&alloc_count, 0);
    atomic_store(&fail_at, nth);
}

void awq_alloc_fail_hook(bool (*fn)(int64_t n, void *user), void *user) {
    fail_hook = fn;
    fail_hook_user = user;
    atomic_store(&alloc_count, 0);
    atomic_store(&fail_at, fn ? INT64_MAX : 0);
}

int64_t awq_alloc_counted(void) { return atomic_load(&alloc_count); }

bool awq_alloc_fault(void) {
    long long at = atomic_load_explicit(&fail_at, memory_order_relaxed);
    if (at <= 0) return false;
    long long n = atomic_fetch_add(&alloc_count, 1) + 1;
    return fail_hook ? fail_hook(n, fail_hook_user) : n == at;
}

void *awq_malloc(size_t n) { return n && !awq_alloc_fault() ? malloc(n) : NULL; }

void *awq_calloc(size_t n, size_t size) {
    uint64_t total;
    if (n == 0 || size == 0 || awq_mul_overflow_u64(n, size, &total) || total > SIZE_MAX) return NULL;
    return awq_alloc_fault() ? NULL : calloc(n, size);
}

void *awq_realloc(void *p, size_t n) { return awq_alloc_fault() ? NULL : realloc(p, n ? n : 1); }

void awq_free(void *p) { free(p); }

char *awq_strdup(const char *s) { return s ? awq_strndup(s, strlen(s)) : NULL; }

char *awq_strndup(const char *s, size_t n) {
    char *d = awq_alloc_fault() ? NULL : malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}
