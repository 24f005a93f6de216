/* bwprobe.c - the machine's read bandwidth for `awq-cli bench`: a multi-threaded streaming-read
 * loop over a buffer far larger than the last-level cache, best pass of several, cached in
 * ~/.cache/awq/ keyed by CPU model and thread count. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "bwprobe.h"

#define BW_BYTES  ((size_t)512 << 20) /* 512 MiB: well beyond any L3 */
#define BW_PASSES 8

typedef uint64_t v4u64 __attribute__((vector_size(32)));

typedef struct {
    const v4u64 *p;
    size_t n; /* vectors of this thread's slice */
    pthread_barrier_t *bar;
    double *t_pass; /* (BW_PASSES) start times written by thread 0 */
    uint64_t sink;
} bw_worker;

static double bw_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void *bw_run(void *arg) {
    bw_worker *w = arg;
    v4u64 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    for (int pass = 0; pass < BW_PASSES; pass++) {
        pthread_barrier_wait(w->bar);
        const v4u64 *p = w->p;
        size_t n = w->n & ~(size_t)7;
        for (size_t i = 0; i < n; i += 8) { /* 256 bytes = four cache lines per iteration */
            a0 ^= p[i] + p[i + 1];
            a1 ^= p[i + 2] + p[i + 3];
            a2 ^= p[i + 4] + p[i + 5];
            a3 ^= p[i + 6] + p[i + 7];
        }
        pthread_barrier_wait(w->bar);
    }
    v4u64 s = a0 ^ a1 ^ a2 ^ a3;
    w->sink = s[0] ^ s[1] ^ s[2] ^ s[3];
    return NULL;
}

/* Measures read bandwidth in bytes/s with n_threads threads; 0 on failure. */
static double bw_measure(int n_threads) {
    if (n_threads < 1) n_threads = 1;
    if (n_threads > 256) n_threads = 256;
    void *buf = NULL;
    if (posix_memalign(&buf, 4096, BW_BYTES)) return 0;
    /* fill in parallel-friendly order: page-touch from the calling thread is fine for 2-socket-less
     * machines; the values only have to be non-constant */
    uint64_t *u = buf;
    for (size_t i = 0; i < BW_BYTES / 8; i++) u[i] = i * 0x9e3779b97f4a7c15ull;
    pthread_t th[256];
    bw_worker w[256];
    pthread_barrier_t bar;
    if (pthread_barrier_init(&bar, NULL, (unsigned)n_threads + 1)) {
        free(buf);
        return 0;
    }
    size_t nvec = BW_BYTES / sizeof(v4u64), per = nvec / (size_t)n_threads;
    int started = 0;
    for (int t = 0; t < n_threads; t++) {
        w[t] = (bw_worker){.p = (const v4u64 *)buf + (size_t)t * per, .n = per, .bar = &bar};
        if (pthread_create(&th[t], NULL, bw_run, &w[t])) break;
        started++;
    }
    double best = 0;
    if (started == n_threads) {
        for (int pass = 0; pass < BW_PASSES; pass++) {
            pthread_barrier_wait(&bar);
            double t0 = bw_now();
            pthread_barrier_wait(&bar);
            double dt = bw_now() - t0;
            double bw = (double)(per & ~(size_t)7) * sizeof(v4u64) * n_threads / dt;
            if (pass > 0 && bw > best) best = bw; /* pass 0 warms TLBs and threads */
        }
        for (int t = 0; t < n_threads; t++) pthread_join(th[t], NULL);
    } else {
        /* a thread could not start: the others would wait forever at the barrier; give up
         * without joining (cannot happen in practice; leak rather than hang) */
        return 0;
    }
    pthread_barrier_destroy(&bar);
    free(buf);
    return best;
}

static void cpu_model(char *out, size_t cap) {
    snprintf(out, cap, "unknown-cpu");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            char *c = strchr(line, ':');
            if (!c) break;
            c++;
            while (*c == ' ' || *c == '\t') c++;
            size_t n = strcspn(c, "\n");
            if (n >= cap) n = cap - 1;
            memcpy(out, c, n);
            out[n] = 0;
            break;
        }
    }
    fclose(f);
}

static void cache_path(char *out, size_t cap, const char *model, int n_threads) {
    const char *home = getenv("HOME");
    char key[256];
    size_t k = 0;
    for (const char *p = model; *p && k + 1 < sizeof key; p++)
        key[k++] = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                *p == '-' || *p == '.'
            ? *p
            : '_';
    key[k] = 0;
    snprintf(out, cap, "%s/.cache/awq/bandwidth-%s-t%d.txt", home && home[0] ? home : "/tmp", key, n_threads);
}

static void mkdir_p(const char *path) {
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", path);
    char *slash = strrchr(tmp, '/');
    if (!slash) return;
    *slash = 0;
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(tmp, 0755);
            *p = '/';
        }
    mkdir(tmp, 0755);
}

double bwprobe_get(int n_threads, bool remeasure, bool announce, char *cpu, size_t cpu_cap, bool *cached) {
    char model[256], path[1024];
    cpu_model(model, sizeof model);
    if (cpu && cpu_cap) snprintf(cpu, cpu_cap, "%s", model);
    cache_path(path, sizeof path, model, n_threads);
    *cached = false;
    if (!remeasure) {
        FILE *f = fopen(path, "r");
        if (f) {
            double v = 0;
            int ok = fscanf(f, "%lf", &v);
            fclose(f);
            if (ok == 1 && v > 0) {
                *cached = true;
                return v * 1e9;
            }
        }
    }
    if (announce) fprintf(stderr, "measuring the read bandwidth (%d threads, 512 MiB)...\n", n_threads);
    double bw = bw_measure(n_threads);
    if (bw > 0) {
        mkdir_p(path);
        FILE *f = fopen(path, "w");
        if (f) {
            fprintf(f, "%.3f GB/s read, %d threads, %s\n", bw / 1e9, n_threads, model);
            fclose(f);
        }
    }
    return bw;
}
