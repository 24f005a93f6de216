/*
 * safetensors_write.c - safetensors writer: plan every tensor, create the shard files at their
 * final size, then write tensors in any order with pwrite, then write the index.
 *
 * The header is compact JSON ({"__metadata__":{...},"name":{"dtype":"F16","shape":[2,3],
 * "data_offsets":[0,12]},...}) padded with spaces to a multiple of 8 bytes, as the reference
 * implementation does, so the data section starts 8-byte aligned.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "safetensors.h"

typedef struct wr_tensor {
    char *name;
    awq_dtype dtype;
    int32_t ndim;
    int64_t shape[AWQ_ST_MAX_DIMS];
    uint64_t nbytes; /* bytes of data */
    int32_t shard;   /* assigned by begin() */
    uint64_t offset; /* byte offset of the data from the start of the shard file */
    bool written;
} wr_tensor;

typedef struct wr_shard {
    char *path;
    int fd; /* -1 when closed */
    uint64_t data_bytes;
} wr_shard;

struct awq_st_writer {
    awq_runtime *rt;
    char *dir;
    uint64_t max_shard_bytes;
    char **meta; /* (2 * n_meta,) key, value */
    int32_t n_meta;
    wr_tensor *t; /* (n,) in add order */
    int32_t n, cap;
    int32_t *by_name; /* (n,) indices sorted by name, built by begin() */
    wr_shard *shards; /* (n_shards,) */
    int32_t n_shards;
    bool begun, finished;
};

/* ---- a tiny string builder ---------------------------------------------------------------- */

typedef awq_strbuf wbuf;
#define wb_put  awq_strbuf_put
#define wb_puts awq_strbuf_puts

static void wb_str(wbuf *b, const char *s) {
    wb_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            wb_put(b, esc, 2);
        } else if (*p < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", *p);
            wb_put(b, esc, 6);
        } else {
            wb_put(b, (const char *)p, 1);
        }
    }
    wb_put(b, "\"", 1);
}

static void wb_u64(wbuf *b, uint64_t v) {
    char num[32];
    snprintf(num, sizeof num, "%llu", (unsigned long long)v);
    wb_puts(b, num);
}

/* ---- planning ----------------------------------------------------------------------------- */

awq_status awq_st_writer_create(awq_runtime *rt, awq_st_writer **out, const char *dir,
                                uint64_t max_shard_bytes, const char *const *metadata) {
    *out = NULL;
    if (!dir) return awq_set_error(rt, AWQ_ERR_INVALID_ARG, "safetensors writer: NULL directory");
    if (!awq_dir_exists(dir))
        return awq_set_error(rt, AWQ_ERR_IO, "%s: output directory does not exist", dir);
    awq_st_writer *w = awq_calloc(1, sizeof *w);
    if (!w) return awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "safetensors writer: out of memory");
    w->rt = rt;
    w->max_shard_bytes = max_shard_bytes;
    w->dir = awq_strdup(dir);
    bool oom = !w->dir;
    int32_t nm = 0;
    while (metadata && metadata[2 * nm]) {
        if (!metadata[2 * nm + 1]) {
            awq_st_writer_destroy(w);
            return awq_set_error(rt, AWQ_ERR_INVALID_ARG,
                                 "safetensors writer: metadata key '%s' has no value", metadata[2 * nm]);
        }
        nm++;
    }
    if (nm) {
        w->meta = awq_calloc((size_t)nm * 2, sizeof(char *));
        oom = oom || !w->meta;
        for (int32_t i = 0; w->meta && i < 2 * nm; i++) {
            w->meta[i] = awq_strdup(metadata[i]);
            oom = oom || !w->meta[i];
        }
        w->n_meta = nm;
    }
    if (oom) {
        awq_st_writer_destroy(w);
        return awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "safetensors writer: out of memory");
    }
    *out = w;
    return AWQ_OK;
}

awq_status awq_st_writer_add(awq_st_writer *w, const char *name, awq_dtype dtype, int32_t ndim,
                             const int64_t *shape) {
    if (!w) return AWQ_ERR_INVALID_ARG;
    awq_runtime *rt = w->rt;
    if (w->begun)
        return awq_set_error(rt, AWQ_ERR_INVALID_ARG, "safetensors writer: tensor '%s' added after begin()",
                             name);
    if (!name || !name[0] || strcmp(name, "__metadata__") == 0)
        return awq_set_error(rt, AWQ_ERR_INVALID_ARG, "safetensors writer: invalid tensor name '%s'",
                             name ? name : "(null)");
    if (awq_dtype_size(dtype) == 0)
        return awq_set_error(rt, AWQ_ERR_INVALID_ARG, "safetensors writer: tensor '%s': bad dtype %d", name,
                             (int)dtype);
    if (ndim < 0 || ndim > AWQ_ST_MAX_DIMS || (ndim > 0 && !shape))
        return awq_set_error(rt, AWQ_ERR_INVALID_ARG, "safetensors writer: tensor '%s': bad ndim %d", name,
                             ndim);
    uint64_t nbytes = awq_dtype_size(dtype);
    for (int32_t d = 0; d < ndim; d++) {
        if (shape[d] < 0)
            return awq_set_error(rt, AWQ_ERR_INVALID_ARG,
                                 "safetensors writer: tensor '%s': negative shape[%d]", name, d);
        if (awq_mul_overflow_u64(nbytes, (uint64_t)shape[d], &nbytes))
            return awq_set_error(rt, AWQ_ERR_INVALID_ARG, "safetensors writer: tensor '%s': size overflows",
                                 name);
    }
    if (w->n == w->cap) {
        int32_t cap = w->cap ? w->cap * 2 : 64;
        wr_tensor *p = awq_realloc(w->t, (size_t)cap * sizeof *p);
        if (!p) return awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "safetensors writer: out of memory");
        w->t = p;
        w->cap = cap;
    }
    wr_tensor *t = &w->t[w->n];
    memset(t, 0, sizeof *t);
    t->name = awq_strdup(name);
    if (!t->name) return awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "safetensors writer: out of memory");
    t->dtype = dtype;
    t->ndim = ndim;
    for (int32_t d = 0; d < ndim; d++) t->shape[d] = shape[d];
    t->nbytes = nbytes;
    w->n++;
    return AWQ_OK;
}

/* Sorts indices by name with a simple merge sort (qsort has no context argument in C11 and a
 * global would not be thread-safe). */
static void sort_by_name(const wr_tensor *t, int32_t *idx, int32_t *tmp, int32_t n) {
    if (n < 2) return;
    int32_t h = n / 2;
    sort_by_name(t, idx, tmp, h);
    sort_by_name(t, idx + h, tmp, n - h);
    int32_t i = 0, j = h, k = 0;
    while (i < h && j < n) tmp[k++] = strcmp(t[idx[i]].name, t[idx[j]].name) <= 0 ? idx[i++] : idx[j++];
    while (i < h) tmp[k++] = idx[i++];
    while (j < n) tmp[k++] = idx[j++];
    memcpy(idx, tmp, (size_t)n * sizeof *idx);
}

/* Builds the header of one shard (unpadded JSON) into b. */
static void build_header(const awq_st_writer *w, int32_t shard, wbuf *b) {
    wb_puts(b, "{");
    bool first = true;
    if (w->n_meta) {
        wb_puts(b, "\"__metadata__\":{");
        for (int32_t i = 0; i < w->n_meta; i++) {
            if (i) wb_puts(b, ",");
            wb_str(b, w->meta[2 * i]);
            wb_puts(b, ":");
            wb_str(b, w->meta[2 * i + 1]);
        }
        wb_puts(b, "}");
        first = false;
    }
    uint64_t off = 0;
    for (int32_t i = 0; i < w->n; i++) {
        const wr_tensor *t = &w->t[i];
        if (t->shard != shard) continue;
        if (!first) wb_puts(b, ",");
        first = false;
        wb_str(b, t->name);
        wb_puts(b, ":{\"dtype\":\"");
        wb_puts(b, awq_dtype_name(t->dtype));
        wb_puts(b, "\",\"shape\":[");
        for (int32_t d = 0; d < t->ndim; d++) {
            if (d) wb_puts(b, ",");
            wb_u64(b, (uint64_t)t->shape[d]);
        }
        wb_puts(b, "],\"data_offsets\":[");
        wb_u64(b, off);
        wb_puts(b, ",");
        wb_u64(b, off + t->nbytes);
        wb_puts(b, "]}");
        off += t->nbytes;
    }
    wb_puts(b, "}");
}

static void shard_name(const awq_st_writer *w, int32_t i, char *buf, size_t cap) {
    if (w->n_shards == 1)
        snprintf(buf, cap, "model.safetensors");
    else
        snprintf(buf, cap, "model-%05d-of-%05d.safetensors", (int)i + 1, (int)w->n_shards);
}

static awq_status write_all(awq_runtime *rt, int fd, const char *path, const void *data, uint64_t n,
                            uint64_t off) {
    const uint8_t *p = data;
    while (n > 0) {
        size_t chunk = n > (1u << 30) ? (1u << 30) : (size_t)n;
        ssize_t k = pwrite(fd, p, chunk, (off_t)off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0)
            return awq_set_error(rt, AWQ_ERR_IO, "%s: write of %zu bytes at offset %llu failed: %s", path,
                                 chunk, (unsigned long long)off, k < 0 ? strerror(errno) : "no progress");
        p += k;
        n -= (uint64_t)k;
        off += (uint64_t)k;
    }
    return AWQ_OK;
}

awq_status awq_st_writer_begin(awq_st_writer *w) {
    if (!w) return AWQ_ERR_INVALID_ARG;
    awq_runtime *rt = w->rt;
    if (w->begun) return awq_set_error(rt, AWQ_ERR_INVALID_ARG, "safetensors writer: begin() twice");
    w->begun = true;

    /* Duplicate names. */
    if (w->n) {
        w->by_name = awq_calloc((size_t)w->n, sizeof *w->by_name);
        int32_t *tmp = awq_calloc((size_t)w->n, sizeof *tmp);
        if (!w->by_name || !tmp) {
            awq_free(tmp);
            return awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "safetensors writer: out of memory");
        }
        for (int32_t i = 0; i < w->n; i++) w->by_name[i] = i;
        sort_by_name(w->t, w->by_name, tmp, w->n);
        awq_free(tmp);
        for (int32_t i = 1; i < w->n; i++)
            if (strcmp(w->t[w->by_name[i - 1]].name, w->t[w->by_name[i]].name) == 0)
                return awq_set_error(rt, AWQ_ERR_INVALID_ARG, "safetensors writer: tensor '%s' added twice",
                                     w->t[w->by_name[i]].name);
    }

    /* Greedy shard assignment in add order: a shard is closed when the next tensor would push
     * it past the limit (a tensor larger than the limit gets a shard of its own). */
    int32_t shard = 0;
    uint64_t filled = 0;
    for (int32_t i = 0; i < w->n; i++) {
        wr_tensor *t = &w->t[i];
        if (w->max_shard_bytes && filled > 0 &&
            (filled >= w->max_shard_bytes || t->nbytes > w->max_shard_bytes - filled)) {
            shard++;
            filled = 0;
        }
        t->shard = shard;
        filled += t->nbytes;
    }
    w->n_shards = shard + 1;
    w->shards = awq_calloc((size_t)w->n_shards, sizeof *w->shards);
    if (!w->shards) return awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "safetensors writer: out of memory");
    for (int32_t s = 0; s < w->n_shards; s++) w->shards[s].fd = -1;

    /* Create each shard at its final size with its header written. */
    for (int32_t s = 0; s < w->n_shards; s++) {
        wr_shard *sh = &w->shards[s];
        char name[64], path[4096];
        shard_name(w, s, name, sizeof name);
        awq_path_join(path, sizeof path, w->dir, name);
        sh->path = awq_strdup(path);
        if (!sh->path) return awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "safetensors writer: out of memory");

        wbuf hb = {0};
        build_header(w, s, &hb);
        while (hb.len % 8 && !hb.oom) wb_put(&hb, " ", 1);
        if (hb.oom) {
            awq_free(hb.p);
            return awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "safetensors writer: out of memory");
        }
        uint64_t hlen = hb.len;
        uint64_t data_off = 8 + hlen, off = 0;
        for (int32_t i = 0; i < w->n; i++) {
            if (w->t[i].shard != s) continue;
            w->t[i].offset = data_off + off;
            off += w->t[i].nbytes;
        }
        sh->data_bytes = off;
        sh->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (sh->fd < 0) {
            awq_free(hb.p);
            return awq_set_error(rt, AWQ_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
        }
        uint8_t len8[8];
        for (int k = 0; k < 8; k++) len8[k] = (uint8_t)(hlen >> (8 * k));
        awq_status st = write_all(rt, sh->fd, path, len8, 8, 0);
        if (st == AWQ_OK) st = write_all(rt, sh->fd, path, hb.p, hlen, 8);
        awq_free(hb.p);
        if (st != AWQ_OK) return st;
        if (ftruncate(sh->fd, (off_t)(data_off + off)) != 0)
            return awq_set_error(rt, AWQ_ERR_IO, "%s: cannot size file to %llu bytes: %s", path,
                                 (unsigned long long)(data_off + off), strerror(errno));
    }
    return AWQ_OK;
}

static wr_tensor *find_tensor(const awq_st_writer *w, const char *name) {
    int32_t lo = 0, hi = w->n - 1;
    while (lo <= hi) {
        int32_t mid = lo + (hi - lo) / 2;
        wr_tensor *t = &w->t[w->by_name[mid]];
        int c = strcmp(t->name, name);
        if (c == 0) return t;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return NULL;
}

awq_status awq_st_writer_write(awq_st_writer *w, const char *name, const void *data, uint64_t nbytes) {
    if (!w) return AWQ_ERR_INVALID_ARG;
    awq_runtime *rt = w->rt;
    if (!w->begun || w->finished)
        return awq_set_error(rt, AWQ_ERR_INVALID_ARG,
                             "safetensors writer: write('%s') outside begin()..finish()",
                             name ? name : "(null)");
    wr_tensor *t = name ? find_tensor(w, name) : NULL;
    if (!t)
        return awq_set_error(rt, AWQ_ERR_INVALID_ARG, "safetensors writer: tensor '%s' was not planned",
                             name ? name : "(null)");
    if (nbytes != t->nbytes)
        return awq_set_error(rt, AWQ_ERR_INVALID_ARG,
                             "safetensors writer: tensor '%s': %llu bytes given, %llu planned "
                             "(%s)",
                             name, (unsigned long long)nbytes, (unsigned long long)t->nbytes,
                             awq_dtype_name(t->dtype));
    if (nbytes && !data)
        return awq_set_error(rt, AWQ_ERR_INVALID_ARG, "safetensors writer: tensor '%s': NULL data", name);
    wr_shard *sh = &w->shards[t->shard];
    awq_status st = write_all(rt, sh->fd, sh->path, data, nbytes, t->offset);
    if (st != AWQ_OK) return st;
    t->written = true;
    return AWQ_OK;
}

static int cmp_name_ptr(const void *a, const void *b) {
    return strcmp((*(const wr_tensor *const *)a)->name, (*(const wr_tensor *const *)b)->name);
}

static awq_status write_index(awq_st_writer *w) {
    awq_runtime *rt = w->rt;
    uint64_t total = 0;
    for (int32_t i = 0; i < w->n; i++) total += w->t[i].nbytes;
    cJSON *root = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(root, "metadata");
    cJSON_AddNumberToObject(meta, "total_size", (double)total);
    cJSON *wm = cJSON_AddObjectToObject(root, "weight_map");
    bool oom = !root || !meta || !wm;
    /* weight_map sorted by tensor name, as transformers writes it. */
    const wr_tensor **sorted = w->n ? awq_calloc((size_t)w->n, sizeof *sorted) : NULL;
    if (w->n && !sorted) oom = true;
    for (int32_t i = 0; sorted && i < w->n; i++) sorted[i] = &w->t[i];
    if (sorted) qsort(sorted, (size_t)w->n, sizeof *sorted, cmp_name_ptr);
    for (int32_t i = 0; !oom && i < w->n; i++) {
        char name[64];
        shard_name(w, sorted[i]->shard, name, sizeof name);
        if (!cJSON_AddStringToObject(wm, sorted[i]->name, name)) oom = true;
    }
    awq_free(sorted);
    awq_status st;
    if (oom) {
        st = awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "safetensors writer: out of memory");
    } else {
        char path[4096];
        awq_path_join(path, sizeof path, w->dir, "model.safetensors.index.json");
        st = awq_json_write_file(rt, path, root);
    }
    cJSON_Delete(root);
    return st;
}

awq_status awq_st_writer_finish(awq_st_writer *w) {
    if (!w) return AWQ_ERR_INVALID_ARG;
    awq_runtime *rt = w->rt;
    if (!w->begun || w->finished)
        return awq_set_error(rt, AWQ_ERR_INVALID_ARG, "safetensors writer: finish() without begin()");
    for (int32_t i = 0; i < w->n; i++)
        if (!w->t[i].written)
            return awq_set_error(rt, AWQ_ERR_INVALID_ARG,
                                 "safetensors writer: tensor '%s' was planned but never written",
                                 w->t[i].name);
    w->finished = true;
    awq_status st = AWQ_OK;
    for (int32_t s = 0; s < w->n_shards; s++) {
        wr_shard *sh = &w->shards[s];
        if (sh->fd < 0) continue;
        if (fsync(sh->fd) != 0 && st == AWQ_OK)
            st = awq_set_error(rt, AWQ_ERR_IO, "%s: fsync failed: %s", sh->path, strerror(errno));
        if (close(sh->fd) != 0 && st == AWQ_OK)
            st = awq_set_error(rt, AWQ_ERR_IO, "%s: close failed: %s", sh->path, strerror(errno));
        sh->fd = -1;
    }
    if (st == AWQ_OK && w->n_shards > 1) st = write_index(w);
    return st;
}

void awq_st_writer_destroy(awq_st_writer *w) {
    if (!w) return;
    for (int32_t s = 0; w->shards && s < w->n_shards; s++) {
        if (w->shards[s].fd >= 0) close(w->shards[s].fd);
        awq_free(w->shards[s].path);
    }
    awq_free(w->shards);
    for (int32_t i = 0; i < w->n; i++) awq_free(w->t[i].name);
    awq_free(w->t);
    awq_free(w->by_name);
    for (int32_t i = 0; w->meta && i < 2 * w->n_meta; i++) awq_free(w->meta[i]);
    awq_free(w->meta);
    awq_free(w->dir);
    awq_free(w);
}
