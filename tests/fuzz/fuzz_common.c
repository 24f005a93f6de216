/* fuzz_common.c - helpers shared by the fuzz targets (fuzz.h). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

awq_runtime *awq_fuzz_runtime(void) {
    static awq_runtime *rt;
    if (!rt) {
        awq_runtime_params p = awq_runtime_params_default();
        p.load_plugins = false;
        p.n_threads = 1;
        if (awq_runtime_create(&rt, &p) != AWQ_OK) abort();
    }
    return rt;
}

int awq_fuzz_memfile(const uint8_t *data, size_t size, char *path, size_t cap) {
    int fd = memfd_create("awq-fuzz", MFD_CLOEXEC);
    if (fd < 0) return -1;
    size_t off = 0;
    while (off < size) {
        ssize_t k = write(fd, data + off, size - off);
        if (k <= 0) {
            close(fd);
            return -1;
        }
        off += (size_t)k;
    }
    snprintf(path, cap, "/proc/self/fd/%d", fd);
    return fd;
}

const char *awq_fuzz_dir(void) {
    static char dir[256];
    if (!dir[0]) {
        struct stat sb;
        snprintf(dir, sizeof dir, "%s/awq-fuzz-XXXXXX",
                 stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) ? "/dev/shm" : "/tmp");
        if (!mkdtemp(dir)) abort();
    }
    return dir;
}

int awq_fuzz_write(const char *dir, const char *name, const void *data, size_t size) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int rc = size && fwrite(data, 1, size, f) != size ? -1 : 0;
    if (fclose(f) != 0) rc = -1;
    return rc;
}

int awq_fuzz_split(const uint8_t *data, size_t size, char **part, size_t *len, int max) {
    static const char sep[] = "\n%%\n";
    const size_t sl = sizeof sep - 1;
    int n = 0;
    size_t start = 0;
    for (size_t i = 0; n < max; i++) {
        bool end = i >= size;
        bool at_sep = !end && n < max - 1 && i + sl <= size && memcmp(data + i, sep, sl) == 0;
        if (!end && !at_sep) continue;
        size_t l = i - start;
        part[n] = malloc(l + 1);
        if (!part[n]) abort();
        if (l) memcpy(part[n], data + start, l);
        part[n][l] = '\0';
        len[n++] = l;
        if (end) break;
        start = i + sl;
        i = start - 1;
    }
    return n;
}
