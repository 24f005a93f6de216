/*
 * manifest.c - awq-manifest.json, the content hashes of a checkpoint, and their verification.
 *
 *   {
 *     "awq_manifest": 1,
 *     "created_by": "awq 0.1.0",
 *     "quantization": { the fingerprint of the run without its mtime keys (resume.h) },
 *     "files": { "config.json": {"bytes": 1234, "sha256": "..."}, ... }   (sorted by name)
 *   }
 *
 * Nothing machine- or time-dependent goes in, so the same inputs give the same manifest.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "json.h"
#include "resume.h"
#include "sha256.h"


static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorted names of the regular files of dir but the manifest itself. Owned. */
static awq_status sorted_files(awq_runtime *rt, const char *dir, char ***out, int32_t *n) {
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return awq_set_error(rt, AWQ_ERR_IO, "%s: cannot open directory: %s", dir, strerror(errno));
    char **v = NULL;
    int32_t cnt = 0, cap = 0;
    awq_status s = AWQ_OK;
    struct dirent *e;
    while ((e = readdir(d))) {
        char path[4200];
        struct stat sb;
        awq_path_join(path, sizeof path, dir, e->d_name);
        if (!strcmp(e->d_name, AWQ_MANIFEST_NAME) || lstat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) continue;
        if (cnt == cap) {
            cap = cap ? 2 * cap : 16;
            char **nv = awq_realloc(v, (size_t)cap * sizeof *nv);
            if (!nv) {
                s = awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
                break;
            }
            v = nv;
        }
        if (!(v[cnt] = awq_strdup(e->d_name))) {
            s = awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
            break;
        }
        cnt++;
    }
    closedir(d);
    if (s != AWQ_OK) {
        for (int32_t i = 0; i < cnt; i++) awq_free(v[i]);
        awq_free(v);
        return s;
    }
    if (cnt) qsort(v, (size_t)cnt, sizeof *v, cmp_str);
    *out = v;
    *n = cnt;
    return AWQ_OK;
}

static void free_names(char **v, int32_t n) {
    for (int32_t i = 0; i < n; i++) awq_free(v[i]);
    awq_free(v);
}

awq_status awq_manifest_write(awq_runtime *rt, const char *dir, const cJSON *fp) {
    char **names;
    int32_t n;
    TRY(sorted_files(rt, dir, &names, &n));
    cJSON *root = cJSON_CreateObject(), *q = NULL, *files = NULL;
    char by[64];
    snprintf(by, sizeof by, "awq %s", awq_version());
    bool oom = !root || !cJSON_AddNumberToObject(root, "awq_manifest", 1) ||
        !cJSON_AddStringToObject(root, "created_by", by) ||
        !(q = cJSON_AddObjectToObject(root, "quantization")) ||
        !(files = cJSON_AddObjectToObject(root, "files"));
    const cJSON *e;
    if (fp) cJSON_ArrayForEach(e, fp) {
            size_t kl = e->string ? strlen(e->string) : 0;
            if (oom || !kl || (kl >= 6 && !strcmp(e->string + kl - 6, " mtime"))) continue;
            oom = !cJSON_AddItemToObject(q, e->string, cJSON_Duplicate(e, true));
        }
    awq_status s = oom ? awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "manifest: out of memory") : AWQ_OK;
    for (int32_t i = 0; i < n && s == AWQ_OK; i++) {
        char path[4200], hex[65];
        int64_t size = 0;
        awq_path_join(path, sizeof path, dir, names[i]);
        /* copied files were written without fsync: make them durable before they are vouched for */
        if ((s = awq_fsync_path(rt, path)) || (s = awq_sha256_file(rt, path, hex, &size))) break;
        cJSON *f = cJSON_AddObjectToObject(files, names[i]);
        if (!f || !cJSON_AddNumberToObject(f, "bytes", (double)size) ||
            !cJSON_AddStringToObject(f, "sha256", hex))
            s = awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "manifest: out of memory");
    }
    if (s == AWQ_OK) {
        char path[4200];
        awq_path_join(path, sizeof path, dir, AWQ_MANIFEST_NAME);
        s = awq_json_write_durable(rt, path, root);
    }
    cJSON_Delete(root);
    free_names(names, n);
    return s;
}

static bool is_hex64(const char *s) { return s && strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64; }

awq_status awq_checkpoint_verify(awq_runtime *rt, const char *dir, awq_verify_fn fn, void *user) {
    if (!rt || !dir) return awq_set_error(rt, AWQ_ERR_INVALID_ARG, "verify: dir is required");
    char mpath[4200];
    awq_path_join(mpath, sizeof mpath, dir, AWQ_MANIFEST_NAME);
    if (!awq_file_exists(mpath))
        return awq_set_error(rt, AWQ_ERR_IO,
                             "%s: no %s (not written by awq quantize, or written by "
                             "a version before 0.1.0 that had no content hashes)",
                             dir, AWQ_MANIFEST_NAME);
    cJSON *root = NULL;
    TRY(awq_json_parse_file(rt, mpath, &root));
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(root, "files"), *e;
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(root, "awq_manifest");
    if (!cJSON_IsObject(root) || !cJSON_IsObject(files) || !cJSON_IsNumber(ver)) {
        cJSON_Delete(root);
        return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: expected an object with 'awq_manifest' and 'files'",
                             mpath);
    }
    if (ver->valuedouble != 1) {
        cJSON_Delete(root);
        return awq_set_error(rt, AWQ_ERR_UNSUPPORTED, "%s: manifest version %g (this awq reads 1)", mpath,
                             ver->valuedouble);
    }
    int32_t n_bad = 0, n_ok = 0;
    awq_status s = AWQ_OK;
    cJSON_ArrayForEach(e, files) {
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(e, "bytes"),
                    *h = cJSON_GetObjectItemCaseSensitive(e, "sha256");
        if (!e->string || !e->string[0] || strchr(e->string, '/') || !strcmp(e->string, "..") ||
            !cJSON_IsNumber(b) || !cJSON_IsString(h) || !is_hex64(h->valuestring)) {
            s = awq_set_error(rt, AWQ_ERR_FORMAT,
                              "%s: files.'%s': expected a plain file name with "
                              "'bytes' and a 64-digit 'sha256'",
                              mpath, e->string ? e->string : "?");
            break;
        }
        char path[4200], hex[65];
        awq_path_join(path, sizeof path, dir, e->string);
        awq_verify_item it = {.file = e->string, .bytes = -1, .expected = h->valuestring};
        struct stat sb;
        if (lstat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
            it.problem = "missing";
        } else {
            int64_t size = 0;
            awq_status hs = awq_sha256_file(rt, path, hex, &size);
            if (hs != AWQ_OK) {
                s = hs;
                break;
            }
            it.bytes = size;
            it.actual = hex;
            if ((double)size != b->valuedouble)
                it.problem = "size differs";
            else if (strcmp(hex, h->valuestring))
                it.problem = "content differs";
        }
        if (it.problem)
            n_bad++;
        else
            n_ok++;
        if (fn) fn(&it, user);
    }
    if (s == AWQ_OK) {
        char **names;
        int32_t n;
        s = sorted_files(rt, dir, &names, &n);
        for (int32_t i = 0; s == AWQ_OK && i < n; i++) {
            if (cJSON_GetObjectItemCaseSensitive(files, names[i])) continue;
            char path[4200];
            struct stat sb;
            awq_path_join(path, sizeof path, dir, names[i]);
            awq_verify_item it = {.file = names[i],
                                  .bytes = stat(path, &sb) == 0 ? (int64_t)sb.st_size : -1,
                                  .problem = "not listed in the manifest"};
            if (fn) fn(&it, user);
        }
        if (s == AWQ_OK) free_names(names, n);
    }
    cJSON_Delete(root);
    if (s == AWQ_OK && n_bad)
        s = awq_set_error(rt, AWQ_ERR_FORMAT, "%s: %d of %d files do not match %s", dir, (int)n_bad,
                          (int)(n_bad + n_ok), AWQ_MANIFEST_NAME);
    return s;
}
