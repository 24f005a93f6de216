/* mmap.c - read-only file mapping (POSIX mmap). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mmap.h"

awq_status awq_mmap_open(awq_runtime *rt, const char *path, awq_mmap *out) {
    out->data = NULL;
    out->size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return awq_set_error(rt, AWQ_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return awq_set_error(rt, AWQ_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return awq_set_error(rt, AWQ_ERR_IO, "%s: not a regular file", path);
    }
    uint64_t size = (uint64_t)sb.st_size;
    if (size > (uint64_t)SIZE_MAX) {
        close(fd);
        return awq_set_error(rt, AWQ_ERR_IO, "%s: file too large to map (%llu bytes)", path,
                             (unsigned long long)size);
    }
    if (size == 0) { /* mmap of length 0 fails; an empty file maps to NULL */
        close(fd);
        return AWQ_OK;
    }
    void *p = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd); /* the mapping keeps its own reference to the file */
    if (p == MAP_FAILED)
        return awq_set_error(rt, AWQ_ERR_IO, "%s: mmap of %llu bytes failed: %s", path,
                             (unsigned long long)size, strerror(e));
    out->data = p;
    out->size = size;
    return AWQ_OK;
}

void awq_mmap_close(awq_mmap *m) {
    if (!m) return;
    if (m->data) munmap((void *)m->data, (size_t)m->size);
    m->data = NULL;
    m->size = 0;
}

void awq_mmap_release(const awq_mmap *m, uint64_t offs, uint64_t len) {
    if (!m || !m->data || len == 0 || offs >= m->size) return;
    if (len > m->size - offs) len = m->size - offs;
    /* madvise needs a page-aligned start: round the start up and the end down so no page that
     * still holds live bytes outside the range is dropped. */
    long pg = sysconf(_SC_PAGESIZE);
    uint64_t page = pg > 0 ? (uint64_t)pg : 4096u;
    uint64_t begin = (offs + page - 1) / page * page;
    uint64_t end = (offs + len) / page * page;
    if (offs + len == m->size) end = (m->size + page - 1) / page * page; /* tail page is ours */
    if (end <= begin) return;
    madvise((void *)(m->data + begin), (size_t)(end - begin), MADV_DONTNEED);
}
