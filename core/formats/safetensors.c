/*
 * safetensors.c - safetensors reader: mmap, single file or sharded through
 * model.safetensors.index.json.
 *
 * File layout: u64 little-endian header length N (bytes), N bytes of JSON header (an object:
 * tensor name -> {"dtype", "shape", "data_offsets": [begin, end)} plus an optional
 * "__metadata__" object of strings), then the data section; offsets are bytes relative to the
 * start of the data section. Every field is checked against the file before anything points
 * into it.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "awq_pack.h"
#include "json.h"
#include "safetensors.h"

#define ST_MAX_HEADER_BYTES (100ull * 1024 * 1024)
#define ST_INDEX_NAME       "model.safetensors.index.json"

struct awq_safetensors {
    int32_t n_files;
    char **paths;           /* (n_files,) owned */
    awq_mmap *maps;         /* (n_files,) */
    awq_st_tensor *tensors; /* (n,) sorted by name */
    int32_t n, cap;
    char **meta; /* (2 * n_meta,) key, value pairs of the first file, owned */
    int32_t n_meta;
};

/* ---- dtypes ------------------------------------------------------------------------------- */

static const struct {
    const char *name;
    awq_dtype dtype;
} st_dtypes[] = {
    {"F32", AWQ_DTYPE_F32}, {"F16", AWQ_DTYPE_F16}, {"BF16", AWQ_DTYPE_BF16},
    {"I32", AWQ_DTYPE_I32}, {"I64", AWQ_DTYPE_I64}, {"U8", AWQ_DTYPE_U8},
    {"I8", AWQ_DTYPE_I8},   {"I16", AWQ_DTYPE_I16}, {"F64", AWQ_DTYPE_F64},
};
/* Valid in the safetensors format but not handled by awq. */
static const char *const st_dtypes_other[] = {"BOOL", "U16", "U32", "U64", "F8_E4M3", "F8_E5M2"};

/* Returns AWQ_OK and *out, or the error for an unknown/unsupported dtype name. */
static awq_status parse_dtype(awq_runtime *rt, const char *path, const char *tname, const char *s,
                              awq_dtype *out) {
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (strcmp(s, st_dtypes[i].name) == 0) {
            *out = st_dtypes[i].dtype;
            return AWQ_OK;
        }
    for (size_t i = 0; i < sizeof st_dtypes_other / sizeof st_dtypes_other[0]; i++)
        if (strcmp(s, st_dtypes_other[i]) == 0)
            return awq_set_error(rt, AWQ_ERR_UNSUPPORTED, "%s: tensor '%s': dtype '%s' is not supported",
                                 path, tname, s);
    return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: tensor '%s': dtype: unknown dtype '%.32s'", path, tname, s);
}

/* ---- helpers ------------------------------------------------------------------------------ */

static uint64_t read_le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* A JSON number that is an exact non-negative integer below 2^53 (JSON numbers are doubles
 * in cJSON; beyond 2^53 they cannot be trusted to be exact). */
static bool json_u53(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return false;
    double d = v->valuedouble;
    if (!(d >= 0.0) || d > 9007199254740991.0 || d != (double)(uint64_t)d) return false;
    *out = (uint64_t)d;
    return true;
}

static int cmp_tensor_name(const void *a, const void *b) {
    return strcmp(((const awq_st_tensor *)a)->name, ((const awq_st_tensor *)b)->name);
}

static awq_status push_tensor(awq_runtime *rt, awq_safetensors *st, const awq_st_tensor *t) {
    if (st->n == st->cap) {
        int32_t cap = st->cap ? st->cap * 2 : 64;
        awq_st_tensor *p = awq_realloc(st->tensors, (size_t)cap * sizeof *p);
        if (!p) return awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "safetensors: out of memory");
        st->tensors = p;
        st->cap = cap;
    }
    st->tensors[st->n++] = *t;
    return AWQ_OK;
}

/* Data range of a tensor within its file's data section, for the overlap check. */
typedef struct st_range {
    uint64_t begin, end;
    const char *name;
} st_range;

static int cmp_range(const void *a, const void *b) {
    const st_range *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : (x->end > y->end);
}

/* Parses one tensor entry of a header. */
static awq_status parse_entry(awq_runtime *rt, const char *path, const cJSON *e, uint64_t data_size,
                              const uint8_t *data, int32_t file, awq_st_tensor *t) {
    const char *name = e->string;
    memset(t, 0, sizeof *t);
    t->file = file;
    if (!cJSON_IsObject(e))
        return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: tensor '%s': expected an object", path, name);

    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    if (!dt) return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: tensor '%s': missing 'dtype'", path, name);
    if (!cJSON_IsString(dt))
        return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: tensor '%s': dtype: expected a string", path, name);
    awq_status s = parse_dtype(rt, path, name, dt->valuestring, &t->dtype);
    if (s != AWQ_OK) return s;

    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    if (!sh) return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: tensor '%s': missing 'shape'", path, name);
    if (!cJSON_IsArray(sh))
        return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: tensor '%s': shape: expected an array", path, name);
    int ndim = cJSON_GetArraySize(sh);
    if (ndim > AWQ_ST_MAX_DIMS)
        return awq_set_error(rt, AWQ_ERR_UNSUPPORTED, "%s: tensor '%s': shape has %d dims (max %d)", path,
                             name, ndim, AWQ_ST_MAX_DIMS);
    t->ndim = ndim;
    uint64_t nelem = 1;
    bool overflow = false, empty = false;
    int d = 0;
    for (const cJSON *c = sh->child; c; c = c->next, d++) {
        uint64_t v;
        if (!json_u53(c, &v)) {
            if (cJSON_IsNumber(c))
                return awq_set_error(rt, AWQ_ERR_FORMAT,
                                     "%s: tensor '%s': shape[%d] = %.17g is not a non-negative "
                                     "integer",
                                     path, name, d, c->valuedouble);
            return awq_set_error(rt, AWQ_ERR_FORMAT,
                                 "%s: tensor '%s': shape[%d]: expected a non-negative integer", path, name,
                                 d);
        }
        t->shape[d] = (int64_t)v;
        if (v == 0) empty = true;
        if (awq_mul_overflow_u64(nelem, v, &nelem)) overflow = true;
    }
    uint64_t nbytes = 0;
    /* A zero dim makes the tensor empty even if the other dims overflow. */
    if (!empty && (overflow || awq_mul_overflow_u64(nelem, awq_dtype_size(t->dtype), &nbytes)))
        return awq_set_error(rt, AWQ_ERR_FORMAT,
                             "%s: tensor '%s': shape: byte size of %s x shape overflows 64 bits", path, name,
                             awq_dtype_name(t->dtype));
    if (empty) nbytes = 0;

    const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!off) return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: tensor '%s': missing 'data_offsets'", path, name);
    uint64_t begin, end;
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 || !json_u53(off->child, &begin) ||
        !json_u53(off->child->next, &end))
        return awq_set_error(rt, AWQ_ERR_FORMAT,
                             "%s: tensor '%s': data_offsets: expected [begin, end] non-negative "
                             "integers",
                             path, name);
    if (end < begin)
        return awq_set_error(rt, AWQ_ERR_FORMAT,
                             "%s: tensor '%s': data_offsets [%llu, %llu): end before begin", path, name,
                             (unsigned long long)begin, (unsigned long long)end);
    if (end > data_size)
        return awq_set_error(rt, AWQ_ERR_FORMAT,
                             "%s: tensor '%s': data_offsets [%llu, %llu) out of range: the data "
                             "section has %llu bytes",
                             path, name, (unsigned long long)begin, (unsigned long long)end,
                             (unsigned long long)data_size);
    if (end - begin != nbytes)
        return awq_set_error(rt, AWQ_ERR_FORMAT,
                             "%s: tensor '%s': data_offsets [%llu, %llu) span %llu bytes but dtype "
                             "%s x shape needs %llu",
                             path, name, (unsigned long long)begin, (unsigned long long)end,
                             (unsigned long long)(end - begin), awq_dtype_name(t->dtype),
                             (unsigned long long)nbytes);
    t->nbytes = nbytes;
    t->data = data ? data + begin : NULL;
    t->name = awq_strdup(name);
    if (!t->name) return awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "safetensors: out of memory");
    return AWQ_OK;
}

static awq_status parse_metadata(awq_runtime *rt, awq_safetensors *st, const char *path, const cJSON *m,
                                 bool keep) {
    if (!cJSON_IsObject(m))
        return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: __metadata__: expected an object", path);
    int n = 0;
    for (const cJSON *c = m->child; c; c = c->next, n++)
        if (!cJSON_IsString(c))
            return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: __metadata__: '%s': expected a string value", path,
                                 c->string);
    if (!keep || n == 0) return AWQ_OK;
    st->meta = awq_calloc((size_t)n * 2, sizeof(char *));
    if (!st->meta) return awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "safetensors: out of memory");
    for (const cJSON *c = m->child; c; c = c->next) {
        char *k = awq_strdup(c->string), *v = awq_strdup(c->valuestring);
        st->meta[2 * st->n_meta] = k;
        st->meta[2 * st->n_meta + 1] = v;
        st->n_meta++;
        if (!k || !v) return awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "safetensors: out of memory");
    }
    return AWQ_OK;
}

/* Maps and validates one file, appending its tensors. The file must already be in st->paths
 * at index file. */
static awq_status load_file(awq_runtime *rt, awq_safetensors *st, int32_t file) {
    const char *path = st->paths[file];
    awq_mmap *m = &st->maps[file];
    awq_status s = awq_mmap_open(rt, path, m);
    if (s != AWQ_OK) return s;
    if (m->size < 8)
        return awq_set_error(rt, AWQ_ERR_FORMAT,
                             "%s: truncated: %llu bytes, too short for the 8-byte header length", path,
                             (unsigned long long)m->size);
    uint64_t hlen = read_le64(m->data);
    if (hlen > ST_MAX_HEADER_BYTES)
        return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: header length %llu bytes is absurd (limit %llu)", path,
                             (unsigned long long)hlen, (unsigned long long)ST_MAX_HEADER_BYTES);
    if (hlen > m->size - 8)
        return awq_set_error(rt, AWQ_ERR_FORMAT,
                             "%s: header length %llu runs past the end of the file (%llu bytes)", path,
                             (unsigned long long)hlen, (unsigned long long)m->size);
    if (hlen < 2)
        return awq_set_error(rt, AWQ_ERR_FORMAT,
                             "%s: header length %llu is too small for a JSON "
                             "object",
                             path, (unsigned long long)hlen);
    char what[600];
    snprintf(what, sizeof what, "%s: header", path);
    cJSON *root = NULL;
    s = awq_json_parse(rt, what, (const char *)m->data + 8, (size_t)hlen, &root);
    if (s != AWQ_OK) return s;
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: header: expected a JSON object", path);
    }
    uint64_t data_size = m->size - 8 - hlen;
    const uint8_t *data = m->data + 8 + hlen;
    int32_t first = st->n;
    for (const cJSON *e = root->child; e && s == AWQ_OK; e = e->next) {
        if (!e->string) continue;
        if (strcmp(e->string, "__metadata__") == 0) {
            s = parse_metadata(rt, st, path, e, file == 0);
            continue;
        }
        awq_st_tensor t;
        s = parse_entry(rt, path, e, data_size, data_size ? data : NULL, file, &t);
        if (s == AWQ_OK) {
            s = push_tensor(rt, st, &t);
            if (s != AWQ_OK) awq_free(t.name);
        }
    }
    cJSON_Delete(root);
    if (s != AWQ_OK) return s;

    /* Duplicate names within the file and overlapping data ranges. */
    int32_t n = st->n - first;
    if (n <= 0) return AWQ_OK;
    st_range *r = awq_calloc((size_t)n, sizeof *r);
    if (!r) return awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "safetensors: out of memory");
    int32_t nr = 0;
    for (int32_t i = 0; i < n; i++) {
        const awq_st_tensor *t = &st->tensors[first + i];
        if (t->nbytes == 0) continue; /* empty tensors occupy no bytes */
        uint64_t b = (uint64_t)((const uint8_t *)t->data - data);
        r[nr++] = (st_range){b, b + t->nbytes, t->name};
    }
    qsort(r, (size_t)nr, sizeof *r, cmp_range);
    for (int32_t i = 1; i < nr; i++) {
        if (r[i].begin < r[i - 1].end) {
            s = awq_set_error(rt, AWQ_ERR_FORMAT,
                              "%s: tensor '%s': data_offsets [%llu, %llu) overlap tensor '%s' "
                              "[%llu, %llu)",
                              path, r[i].name, (unsigned long long)r[i].begin, (unsigned long long)r[i].end,
                              r[i - 1].name, (unsigned long long)r[i - 1].begin,
                              (unsigned long long)r[i - 1].end);
            break;
        }
    }
    awq_free(r);
    return s;
}

/* ---- opening ------------------------------------------------------------------------------ */

static awq_status add_path(awq_runtime *rt, awq_safetensors *st, const char *path) {
    char **p = awq_realloc(st->paths, (size_t)(st->n_files + 1) * sizeof *p);
    if (!p) return awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "safetensors: out of memory");
    st->paths = p;
    awq_mmap *mp = awq_realloc(st->maps, (size_t)(st->n_files + 1) * sizeof *mp);
    if (!mp) return awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "safetensors: out of memory");
    st->maps = mp;
    st->paths[st->n_files] = awq_strdup(path);
    st->maps[st->n_files] = (awq_mmap){NULL, 0};
    if (!st->paths[st->n_files])
        return awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "safetensors: out of memory");
    st->n_files++;
    return AWQ_OK;
}

static bool has_suffix(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

/* Sorts the tensors by name and rejects a name present twice (within or across files). */
static awq_status finalize(awq_runtime *rt, awq_safetensors *st) {
    if (st->n > 1) qsort(st->tensors, (size_t)st->n, sizeof *st->tensors, cmp_tensor_name);
    for (int32_t i = 1; i < st->n; i++) {
        const awq_st_tensor *a = &st->tensors[i - 1], *b = &st->tensors[i];
        if (strcmp(a->name, b->name) == 0) {
            if (a->file == b->file)
                return awq_set_error(rt, AWQ_ERR_FORMAT, "%s: tensor '%s' appears twice in the header",
                                     st->paths[a->file], a->name);
            return awq_set_error(rt, AWQ_ERR_FORMAT, "tensor '%s' is in two shards: %s and %s", a->name,
                                 st->paths[a->file], st->paths[b->file]);
        }
    }
    return AWQ_OK;
}

/* True if a shard file name from an index is a plain relative path without "..". */
static bool safe_relative(const char *f) {
    if (!f[0] || f[0] == '/') return false;
    for (const char *p = f; *p;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.') return false;
        if (!slash) break;
        p = slash + 1;
    }
    return true;
}

/* Opens every shard named by an index and checks the weight_map against them. */
static awq_status open_index(awq_runtime *rt, awq_safetensors *st, const char *index_path) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", index_path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");

    cJSON *root = NULL;
    awq_status s = awq_json_parse_file(rt, index_path, &root);
    if (s != AWQ_OK) return s;
    const cJSON *wm = cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "weight_map") : NULL;
    if (!cJSON_IsObject(root)) {
        s = awq_set_error(rt, AWQ_ERR_FORMAT, "%s: expected a JSON object", index_path);
    } else if (!wm) {
        s = awq_set_error(rt, AWQ_ERR_FORMAT, "%s: missing key 'weight_map'", index_path);
    } else if (!cJSON_IsObject(wm) || !wm->child) {
        s = awq_set_error(rt, AWQ_ERR_FORMAT, "%s: 'weight_map': expected a non-empty object", index_path);
    }
    /* Collect the distinct shard files in order of first appearance. */
    for (const cJSON *e = wm ? wm->child : NULL; e && s == AWQ_OK; e = e->next) {
        if (!cJSON_IsString(e) || !safe_relative(e->valuestring)) {
            s = awq_set_error(rt, AWQ_ERR_FORMAT,
                              "%s: weight_map: tensor '%s': expected a relative file name", index_path,
                              e->string);
            break;
        }
        char path[4096];
        awq_path_join(path, sizeof path, dir, e->valuestring);
        int32_t f = 0;
        while (f < st->n_files && strcmp(st->paths[f], path) != 0) f++;
        if (f < st->n_files) continue;
        if (!awq_file_exists(path)) {
            s = awq_set_error(rt, AWQ_ERR_FORMAT,
                              "%s: weight_map: tensor '%s': shard file '%s' does not exist", index_path,
                              e->string, e->valuestring);
            break;
        }
        s = add_path(rt, st, path);
    }
    for (int32_t f = 0; f < st->n_files && s == AWQ_OK; f++) s = load_file(rt, st, f);
    if (s == AWQ_OK) s = finalize(rt, st);
    /* Every listed tensor must be in the shard the index names. */
    for (const cJSON *e = wm ? wm->child : NULL; e && s == AWQ_OK; e = e->next) {
        const awq_st_tensor *t = awq_st_find(st, e->string);
        char path[4096];
        awq_path_join(path, sizeof path, dir, e->valuestring);
        if (!t)
            s = awq_set_error(rt, AWQ_ERR_FORMAT, "%s: weight_map: tensor '%s' is not in its shard '%s'",
                              index_path, e->string, e->valuestring);
        else if (strcmp(st->paths[t->file], path) != 0)
            s = awq_set_error(rt, AWQ_ERR_FORMAT,
                              "%s: weight_map: tensor '%s' is listed in '%s' but stored in '%s'", index_path,
                              e->string, e->valuestring, st->paths[t->file]);
    }
    if (s == AWQ_OK && cJSON_GetArraySize(wm) != st->n)
        AWQ_LOG_WARN(rt, "%s: %d tensors in the shards, %d in weight_map", index_path, st->n,
                     cJSON_GetArraySize(wm));
    cJSON_Delete(root);
    return s;
}

/* Picks the single *.safetensors file of a directory without an index. */
static awq_status find_single(awq_runtime *rt, const char *dir, char *out, size_t cap) {
    DIR *d = opendir(dir);
    if (!d) return awq_set_error(rt, AWQ_ERR_IO, "%s: cannot open directory", dir);
    int found = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || !has_suffix(de->d_name, ".safetensors")) continue;
        if (found++ == 0) awq_path_join(out, cap, dir, de->d_name);
    }
    closedir(d);
    if (found == 0)
        return awq_set_error(rt, AWQ_ERR_IO, "%s: no .safetensors file and no %s", dir, ST_INDEX_NAME);
    if (found > 1)
        return awq_set_error(rt, AWQ_ERR_FORMAT,
                             "%s: %d .safetensors files but no model.safetensors and no %s", dir, found,
                             ST_INDEX_NAME);
    return AWQ_OK;
}

awq_status awq_st_open(awq_runtime *rt, const char *path, awq_safetensors **out) {
    *out = NULL;
    if (!path) return awq_set_error(rt, AWQ_ERR_INVALID_ARG, "safetensors: NULL path");
    awq_safetensors *st = awq_calloc(1, sizeof *st);
    if (!st) return awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "safetensors: out of memory");
    awq_status s;
    char buf[4096];
    if (awq_dir_exists(path)) {
        awq_path_join(buf, sizeof buf, path, ST_INDEX_NAME);
        if (awq_file_exists(buf)) {
            s = open_index(rt, st, buf);
        } else {
            awq_path_join(buf, sizeof buf, path, "model.safetensors");
            s = awq_file_exists(buf) ? AWQ_OK : find_single(rt, path, buf, sizeof buf);
            if (s == AWQ_OK) s = add_path(rt, st, buf);
            if (s == AWQ_OK) s = load_file(rt, st, 0);
            if (s == AWQ_OK) s = finalize(rt, st);
        }
    } else if (has_suffix(path, ".json")) {
        s = open_index(rt, st, path);
    } else {
        s = add_path(rt, st, path);
        if (s == AWQ_OK) s = load_file(rt, st, 0);
        if (s == AWQ_OK) s = finalize(rt, st);
    }
    if (s != AWQ_OK) {
        awq_st_close(st);
        return s;
    }
    *out = st;
    return AWQ_OK;
}

void awq_st_close(awq_safetensors *st) {
    if (!st) return;
    for (int32_t i = 0; i < st->n; i++) awq_free(st->tensors[i].name);
    awq_free(st->tensors);
    for (int32_t i = 0; i < st->n_files; i++) {
        awq_mmap_close(&st->maps[i]);
        awq_free(st->paths[i]);
    }
    awq_free(st->paths);
    awq_free(st->maps);
    for (int32_t i = 0; i < 2 * st->n_meta; i++) awq_free(st->meta[i]);
    awq_free(st->meta);
    awq_free(st);
}

/* ---- queries ------------------------------------------------------------------------------ */

int32_t awq_st_count(const awq_safetensors *st) { return st ? st->n : 0; }

const awq_st_tensor *awq_st_get(const awq_safetensors *st, int32_t i) {
    if (!st || i < 0 || i >= st->n) return NULL;
    return &st->tensors[i];
}

const awq_st_tensor *awq_st_find(const awq_safetensors *st, const char *name) {
    if (!st || !name) return NULL;
    int32_t lo = 0, hi = st->n - 1;
    while (lo <= hi) {
        int32_t mid = lo + (hi - lo) / 2;
        int c = strcmp(st->tensors[mid].name, name);
        if (c == 0) return &st->tensors[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return NULL;
}

const char *awq_st_file_path(const awq_safetensors *st, int32_t file) {
    if (!st || file < 0 || file >= st->n_files) return "?";
    return st->paths[file];
}

const char *awq_st_metadata(const awq_safetensors *st, const char *key) {
    if (!st || !key) return NULL;
    for (int32_t i = 0; i < st->n_meta; i++)
        if (st->meta[2 * i] && strcmp(st->meta[2 * i], key) == 0) return st->meta[2 * i + 1];
    return NULL;
}

void awq_st_release(const awq_safetensors *st, const awq_st_tensor *t) {
    if (!st || !t || !t->data || t->file < 0 || t->file >= st->n_files) return;
    const awq_mmap *m = &st->maps[t->file];
    awq_mmap_release(m, (uint64_t)((const uint8_t *)t->data - m->data), t->nbytes);
}

awq_status awq_st_read_f32(awq_runtime *rt, const awq_safetensors *st, const awq_st_tensor *t, float *out) {
    if (!t || !out) return awq_set_error(rt, AWQ_ERR_INVALID_ARG, "awq_st_read_f32: NULL argument");
    uint64_t n = t->nbytes / (t->nbytes ? awq_dtype_size(t->dtype) : 1);
    const uint8_t *p = t->data;
    /* safetensors is little-endian, as are the hosts awq supports (x86-64, aarch64).
     * The data may be unaligned (offsets are only guaranteed to be byte offsets): memcpy each
     * element. */
    if (t->dtype == AWQ_DTYPE_F32 || t->dtype == AWQ_DTYPE_F16 || t->dtype == AWQ_DTYPE_BF16) {
        /* in parallel chunks: each element is independent; reading a mapped file also faults
         * pages in */
        const int64_t chunk = 65536, es = (int64_t)awq_dtype_size(t->dtype);
#pragma omp parallel for schedule(static) if (n > (uint64_t)chunk)
        for (int64_t c0 = 0; c0 < (int64_t)n; c0 += chunk)
            awq_row_to_f32(out + c0, p + c0 * es, t->dtype,
                           (int64_t)n - c0 < chunk ? (int64_t)n - c0 : chunk);
        return AWQ_OK;
    }
    switch (t->dtype) {
    case AWQ_DTYPE_F64:
        for (uint64_t i = 0; i < n; i++) {
            double v;
            memcpy(&v, p + 8 * i, 8);
            out[i] = (float)v;
        }
        return AWQ_OK;
    default:
        return awq_set_error(rt, AWQ_ERR_UNSUPPORTED, "%s: tensor '%s': cannot read %s as F32",
                             awq_st_file_path(st, t->file), t->name, awq_dtype_name(t->dtype));
    }
}
