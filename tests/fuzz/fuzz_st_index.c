/* fuzz_st_index.c - model.safetensors.index.json (the input) in a directory holding two small
 * valid shards, a.safetensors (tensors "x", "y") and b.safetensors ("z"): the index may list
 * anything - other names, other files, paths out of the directory, duplicates, wrong types. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "safetensors.h"

static const char *index_dir(void) {
    static char dir[300];
    if (dir[0]) return dir;
    awq_runtime *rt = awq_fuzz_runtime();
    snprintf(dir, sizeof dir, "%s/index", awq_fuzz_dir());
    char cmd[400];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    if (system(cmd) != 0) abort();
    static const char *const shard[2] = {"a", "b"};
    for (int s = 0; s < 2; s++) {
        char sub[350];
        snprintf(sub, sizeof sub, "%s/tmp-%s", dir, shard[s]);
        snprintf(cmd, sizeof cmd, "mkdir -p '%s'", sub);
        if (system(cmd) != 0) abort();
        awq_st_writer *w = NULL;
        int64_t shape[2] = {2, 3};
        float v[6] = {1, 2, 3, 4, 5, 6};
        if (awq_st_writer_create(rt, &w, sub, 0, NULL) != AWQ_OK) abort();
        if (s == 0) {
            if (awq_st_writer_add(w, "x", AWQ_DTYPE_F32, 2, shape) ||
                awq_st_writer_add(w, "y", AWQ_DTYPE_F32, 1, shape) || awq_st_writer_begin(w) ||
                awq_st_writer_write(w, "x", v, 24) || awq_st_writer_write(w, "y", v, 8))
                abort();
        } else {
            if (awq_st_writer_add(w, "z", AWQ_DTYPE_F32, 2, shape) || awq_st_writer_begin(w) ||
                awq_st_writer_write(w, "z", v, 24))
                abort();
        }
        if (awq_st_writer_finish(w) != AWQ_OK) abort();
        awq_st_writer_destroy(w);
        snprintf(cmd, sizeof cmd, "mv '%s/model.safetensors' '%s/%s.safetensors' && rmdir '%s'", sub, dir,
                 shard[s], sub);
        if (system(cmd) != 0) abort();
    }
    return dir;
}

int awq_fuzz_st_index(const uint8_t *data, size_t size) {
    awq_runtime *rt = awq_fuzz_runtime();
    const char *dir = index_dir();
    if (awq_fuzz_write(dir, "model.safetensors.index.json", data, size) != 0) return 0;
    awq_safetensors *st = NULL;
    if (awq_st_open(rt, dir, &st) == AWQ_OK) {
        for (int32_t i = 0; i < awq_st_count(st); i++) {
            const awq_st_tensor *t = awq_st_get(st, i);
            float buf[6];
            if (t->nbytes <= sizeof buf) (void)awq_st_read_f32(rt, st, t, buf);
            (void)awq_st_file_path(st, t->file);
        }
        awq_st_close(st);
    }
    return 0;
}

#ifdef AWQ_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return awq_fuzz_st_index(data, size); }
#endif
