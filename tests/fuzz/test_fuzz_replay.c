/*
 * test_fuzz_replay.c - replays every committed fuzz input through the same entry points the
 * libFuzzer targets use (fuzz.h), built with the normal compiler: the seed corpora
 * (tests/fuzz/corpus/<target>/) and the inputs that once crashed, hung or leaked
 * (tests/fuzz/regressions/<target>/, each fixed since). Under AWQ_SANITIZE this is the same check
 * the fuzzer makes. `test_fuzz_replay FILE TARGET` replays one file; AWQ_FUZZ_VERBOSE=1 prints
 * the last error each input left (empty: it was accepted).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fuzz.h"
#include "internal.h"
#include "test.h"

typedef int (*fuzz_fn)(const uint8_t *, size_t);

static const struct {
    const char *name;
    fuzz_fn fn;
} targets[] = {
#define AWQ_FUZZ_ENTRY(name, desc) {#name, awq_fuzz_##name},
    AWQ_FUZZ_TARGETS(AWQ_FUZZ_ENTRY)};
#define N_TARGETS (sizeof targets / sizeof targets[0])

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Feeds every file of dir to fn (sorted by name); returns the count, -1 if dir is absent. */
static int replay_dir(const char *dir, fuzz_fn fn) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    char *names[4096];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 4096)
        if (e->d_name[0] != '.' && strcmp(e->d_name, "README.md")) names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp);
    for (int i = 0; i < n; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        size_t len = 0;
        char *data = test_read_file(path, &len);
        awq_clear_error(awq_fuzz_runtime());
        /* an exact-size copy without the NUL test_read_file adds, as libFuzzer passes inputs
         * (so ASan sees a read past the end) */
        uint8_t *exact = data ? malloc(len ? len : 1) : NULL;
        if (exact) {
            memcpy(exact, data, len);
            fn(exact, len);
        }
        free(exact);
        if (getenv("AWQ_FUZZ_VERBOSE")) /* what the parsers said (the last error, if any) */
            printf("    %s: %s\n", names[i], awq_runtime_last_error(awq_fuzz_runtime()));
        free(data);
        free(names[i]);
    }
    return n;
}

static int n_corpus, n_regressions;

TEST(replay_all) {
    for (size_t t = 0; t < N_TARGETS; t++) {
        char dir[1024];
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/%s", AWQ_TEST_SOURCE_DIR, targets[t].name);
        int c = replay_dir(dir, targets[t].fn);
        snprintf(dir, sizeof dir, "%s/tests/fuzz/regressions/%s", AWQ_TEST_SOURCE_DIR, targets[t].name);
        int r = replay_dir(dir, targets[t].fn);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        printf("  %-12s %4d seeds, %3d regression inputs  (%.2f s)\n", targets[t].name, c < 0 ? 0 : c,
               r < 0 ? 0 : r, (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9);
        ASSERT_MSG(c > 0, "no seed corpus for target '%s' in tests/fuzz/corpus/", targets[t].name);
        n_corpus += c;
        n_regressions += r < 0 ? 0 : r;
    }
    printf("  %d seed and %d regression inputs replayed without a crash\n", n_corpus, n_regressions);
}

int main(int argc, char **argv) {
    if (argc == 3) {
        for (size_t t = 0; t < N_TARGETS; t++)
            if (!strcmp(argv[2], targets[t].name)) {
                size_t len = 0;
                char *data = test_read_file(argv[1], &len);
                if (!data) return 2;
                uint8_t *exact = malloc(len ? len : 1);
                if (exact) {
                    memcpy(exact, data, len);
                    targets[t].fn(exact, len);
                }
                free(exact);
                free(data);
                printf("%s: replayed through %s\n", argv[1], argv[2]);
                return 0;
            }
        fprintf(stderr, "unknown target '%s'\n", argv[2]);
        return 2;
    }
    RUN(replay_all);
    return TEST_EXIT();
}
