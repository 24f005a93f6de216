/*
 * test_api.c - the public API contract of awq.h: compiles as strict C11 (-pedantic-errors,
 * see tests/core/extra.cmake), status strings for every code, dtype tables, runtime creation
 * with NULL params, and - through the shared libawq.so - that every AWQ_API function declared
 * in awq.h is exported and every *_destroy accepts NULL.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "awq.h"
#include "test.h"

TEST(status_strings) {
    for (int s = 0; s < AWQ_STATUS_COUNT_; s++) {
        const char *str = awq_status_str((awq_status)s);
        ASSERT_MSG(str && str[0], "status %d has no string", s);
        ASSERT_MSG(strcmp(str, "unknown status") != 0, "status %d is unknown", s);
        for (int t = 0; t < s; t++)
            ASSERT_MSG(strcmp(str, awq_status_str((awq_status)t)) != 0,
                       "status %d and %d share the string \"%s\"", s, t, str);
    }
    ASSERT_STREQ(awq_status_str(AWQ_OK), "success");
    ASSERT_STREQ(awq_status_str(AWQ_STATUS_COUNT_), "unknown status");
    ASSERT_STREQ(awq_status_str((awq_status)-1), "unknown status");
    ASSERT_STREQ(awq_status_str((awq_status)1000), "unknown status");
}

TEST(version_and_dtypes) {
    char v[32];
    snprintf(v, sizeof v, "%d.%d.%d", AWQ_VERSION_MAJOR, AWQ_VERSION_MINOR, AWQ_VERSION_PATCH);
    ASSERT_STREQ(awq_version(), v);
    static const struct {
        awq_dtype t;
        size_t size;
        const char *name;
    } tab[] = {
        {AWQ_DTYPE_F32, 4, "F32"}, {AWQ_DTYPE_F16, 2, "F16"}, {AWQ_DTYPE_BF16, 2, "BF16"},
        {AWQ_DTYPE_I32, 4, "I32"}, {AWQ_DTYPE_I64, 8, "I64"}, {AWQ_DTYPE_U8, 1, "U8"},
        {AWQ_DTYPE_I8, 1, "I8"},   {AWQ_DTYPE_I16, 2, "I16"}, {AWQ_DTYPE_F64, 8, "F64"},
    };
    ASSERT_EQ(sizeof tab / sizeof tab[0], AWQ_DTYPE_COUNT_);
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++) {
        ASSERT_EQ(awq_dtype_size(tab[i].t), tab[i].size);
        ASSERT_STREQ(awq_dtype_name(tab[i].t), tab[i].name);
    }
    ASSERT_EQ(awq_dtype_size(AWQ_DTYPE_COUNT_), 0);
    ASSERT_STREQ(awq_dtype_name(AWQ_DTYPE_COUNT_), "?");
}

TEST(runtime_null_params) {
    ASSERT_EQ(awq_runtime_create(NULL, NULL), AWQ_ERR_INVALID_ARG);
    awq_runtime_params d = awq_runtime_params_default();
    ASSERT(d.load_plugins && d.log == NULL && d.backend_dir == NULL && d.n_threads == 0);
    awq_runtime *rt = NULL;
    ASSERT_OK(awq_runtime_create(&rt, NULL));
    ASSERT(rt != NULL);
    ASSERT_STREQ(awq_runtime_last_error(rt), "");
    ASSERT_STREQ(awq_runtime_last_error(NULL), "");
    ASSERT(awq_runtime_device_count(rt) >= 1);
    awq_device_desc dd;
    ASSERT_OK(awq_runtime_device_get(rt, 0, &dd));
    ASSERT_STREQ(dd.backend, "cpu");
    ASSERT(dd.name[0] != '\0');
    ASSERT_EQ(awq_runtime_device_get(rt, -1, &dd), AWQ_ERR_INVALID_ARG);
    ASSERT_EQ(awq_runtime_device_get(rt, awq_runtime_device_count(rt), &dd), AWQ_ERR_INVALID_ARG);
    ASSERT(awq_runtime_skipped_get(rt, -1) == NULL);
    ASSERT(awq_runtime_skipped_get(rt, awq_runtime_skipped_count(rt)) == NULL);
    for (int32_t i = 0; i < awq_runtime_skipped_count(rt); i++)
        printf("  skipped plugin: %s\n", awq_runtime_skipped_get(rt, i));
    awq_runtime_destroy(rt);
    ASSERT_EQ(awq_runtime_device_count(NULL), 0);
    ASSERT_EQ(awq_runtime_skipped_count(NULL), 0);
}

TEST(null_destroy_static) {
    awq_runtime_destroy(NULL);
    awq_sampler_destroy(NULL);
    awq_free(NULL);
}

/* Every AWQ_API function of awq.h, read from the header itself. */
static int read_api_names(char names[][64], int cap) {
    char path[1024];
    snprintf(path, sizeof path, "%s/core/include/awq.h", AWQ_TEST_SOURCE_DIR);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[512];
    int n = 0;
    while (fgets(line, sizeof line, f) && n < cap) {
        const char *p = line;
        while (*p == ' ') p++;
        if (*p == '#' || strncmp(p, "AWQ_API ", 8) != 0) continue;
        const char *paren = strchr(p, '(');
        if (!paren) continue;
        const char *e = paren;
        while (e > p && e[-1] == ' ') e--;
        const char *b = e;
        while (b > p &&
               (b[-1] == '_' || (b[-1] >= 'a' && b[-1] <= 'z') || (b[-1] >= 'A' && b[-1] <= 'Z') ||
                (b[-1] >= '0' && b[-1] <= '9')))
            b--;
        size_t len = (size_t)(e - b);
        if (len == 0 || len >= 64) continue;
        memcpy(names[n], b, len);
        names[n][len] = '\0';
        n++;
    }
    fclose(f);
    return n;
}

static int n_missing;

TEST(exports_and_null_destroy) {
    static char names[256][64];
    int n = read_api_names(names, 256);
    ASSERT_MSG(n > 40, "parsed only %d AWQ_API declarations from awq.h", n);
    char lib[1024];
    snprintf(lib, sizeof lib, "%s/libawq.so", AWQ_TEST_BIN_DIR);
    void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
    ASSERT_MSG(h != NULL, "dlopen %s: %s", lib, dlerror());
    int n_destroy = 0;
    for (int i = 0; i < n; i++) {
        void *sym = dlsym(h, names[i]);
        if (!sym) {
            printf("  MISSING export: %s\n", names[i]);
            n_missing++;
            continue;
        }
        size_t len = strlen(names[i]);
        if ((len > 8 && strcmp(names[i] + len - 8, "_destroy") == 0) || strcmp(names[i], "awq_free") == 0) {
            /* POSIX idiom for turning dlsym's object pointer into a function pointer. */
            void (*fn)(void *);
            memcpy(&fn, &sym, sizeof fn);
            fn(NULL); /* must be a harmless no-op */
            n_destroy++;
        }
    }
    printf("  %d API functions, %d missing, %d destroy functions called with NULL\n", n, n_missing,
           n_destroy);
    /* Internal symbols stay hidden. */
    ASSERT(dlsym(h, "awq_set_error") == NULL);
    ASSERT(dlsym(h, "awq_st_open") == NULL);
    dlclose(h);
}

int main(void) {
    RUN(status_strings);
    RUN(version_and_dtypes);
    RUN(runtime_null_params);
    RUN(null_destroy_static);
    RUN(exports_and_null_destroy);
    if (test_failures_ == 0 && n_missing > 0) {
        /* Declared but not yet implemented: reported as skipped, not passed; a failure where CI
         * requires every declared function (AWQ_REQUIRE_API_EXPORTS=1). */
        bool req = test_required("AWQ_REQUIRE_API_EXPORTS");
        printf("%s: %d functions declared in awq.h are not exported by libawq.so%s\n", req ? "FAIL" : "SKIP",
               n_missing, req ? " (AWQ_REQUIRE_API_EXPORTS=1)" : " yet");
        return req ? 1 : 77;
    }
    return TEST_EXIT();
}
