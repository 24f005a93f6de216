/* cpu_util.c - error reporting, CPU description and thread count for the cpu backends. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <omp.h>

#include "cpu_backend.h"

void awq_cpu_error(awq_backend_ctx *ctx, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (ctx && ctx->cfg.set_error) ctx->cfg.set_error(ctx->cfg.host, msg);
}

void awq_cpu_describe(char *buf, size_t cap) {
    char model[96] = "x86-64";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "model name", 10) == 0) {
                char *c = strchr(line, ':');
                if (c) {
                    c++;
                    while (*c == ' ') c++;
                    c[strcspn(c, "\n")] = '\0';
                    snprintf(model, sizeof model, "%s", c);
                }
                break;
            }
        }
        fclose(f);
    }
    const char *isa = "generic";
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        isa = "avx512";
    else if (__builtin_cpu_supports("avx2"))
        isa = "avx2";
#endif
    snprintf(buf, cap, "%s (%d threads, %s)", model, awq_cpu_threads(0), isa);
}

int64_t awq_cpu_total_memory(void) {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? (int64_t)pages * page : 0;
}

int32_t awq_cpu_threads(int32_t requested) {
    if (requested > 0) return requested;
    int n = omp_get_max_threads();
    return n > 0 ? n : 1;
}
