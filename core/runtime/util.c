/* util.c - files, paths, clocks and memory statistics. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

awq_status awq_read_file(awq_runtime *rt, const char *path, char **data, size_t *len) {
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return awq_set_error(rt, AWQ_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return awq_set_error(rt, AWQ_ERR_IO, "%s: not a regular file", path);
    }
    size_t n = (size_t)st.st_size;
    char *buf = awq_malloc(n + 1);
    if (!buf) {
        fclose(f);
        return awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "%s: cannot allocate %zu bytes", path, n + 1);
    }
    if (n && fread(buf, 1, n, f) != n) {
        fclose(f);
        awq_free(buf);
        return awq_set_error(rt, AWQ_ERR_IO, "%s: short read", path);
    }
    fclose(f);
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return AWQ_OK;
}

char *awq_path_join(char *buf, size_t cap, const char *dir, const char *name) {
    size_t dl = strlen(dir);
    if (dl && dir[dl - 1] == '/')
        snprintf(buf, cap, "%s%s", dir, name);
    else
        snprintf(buf, cap, "%s/%s", dir, name);
    return buf;
}

bool awq_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

bool awq_dir_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int64_t awq_peak_rss_bytes(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (int64_t)ru.ru_maxrss * 1024; /* Linux reports KiB */
}

int64_t awq_mem_available_bytes(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return 0;
    char line[256];
    int64_t kb = 0;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "MemAvailable: %lld kB", (long long *)&kb) == 1) break;
    }
    fclose(f);
    return kb * 1024;
}

double awq_time_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void awq_strbuf_put(awq_strbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *np = awq_realloc(b->p, cap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void awq_strbuf_puts(awq_strbuf *b, const char *s) { awq_strbuf_put(b, s, strlen(s)); }

void awq_rmtree(const char *dir) {
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char path[4096];
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            awq_path_join(path, sizeof path, dir, e->d_name);
            struct stat sb;
            if (lstat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
                awq_rmtree(path);
            else
                unlink(path);
        }
        closedir(d);
    }
    rmdir(dir);
}

awq_status awq_dir_publish(awq_runtime *rt, const char *tmp, const char *out, bool force) {
    char old[4200] = "";
    /* mkdtemp made tmp 0700; the published directory gets the usual permissions */
    mode_t mask = umask(0);
    umask(mask);
    chmod(tmp, 0777 & ~mask);
    if (awq_dir_exists(out) || awq_file_exists(out)) {
        if (!force)
            return awq_set_error(rt, AWQ_ERR_EXISTS, "%s already exists (use --force to replace it)", out);
        snprintf(old, sizeof old, "%s.old-%d", out, (int)getpid());
        if (rename(out, old) != 0)
            return awq_set_error(rt, AWQ_ERR_IO, "cannot move %s aside: %s", out, strerror(errno));
    }
    if (rename(tmp, out) != 0) {
        awq_status s = awq_set_error(rt, AWQ_ERR_IO, "cannot rename %s to %s: %s", tmp, out, strerror(errno));
        if (old[0]) rename(old, out);
        return s;
    }
    if (old[0]) awq_rmtree(old);
    return AWQ_OK;
}
