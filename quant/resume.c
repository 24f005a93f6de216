/*
 * resume.c - the fingerprint of a quantization, the search for an interrupted run of the same
 * output (OUT.tmp-XXXXXX beside OUT), its lock, and the stale-directory report (resume.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "quant.h"
#include "resume.h"
#include "safetensors.h"
#include "sha256.h"


/* ---- durable files ------------------------------------------------------------------------- */

awq_status awq_fsync_path(awq_runtime *rt, const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return awq_set_error(rt, AWQ_ERR_IO, "%s: cannot open for fsync: %s", path, strerror(errno));
    int r = fsync(fd);
    int e = errno;
    close(fd);
    /* Some file systems refuse fsync on directories (EINVAL); that is not a failure. */
    if (r != 0 && e != EINVAL)
        return awq_set_error(rt, AWQ_ERR_IO, "%s: fsync failed: %s", path, strerror(e));
    return AWQ_OK;
}

awq_status awq_json_write_durable(awq_runtime *rt, const char *path, const cJSON *root) {
    TRY(awq_json_write_file(rt, path, root));
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    return awq_fsync_path(rt, dir[0] ? dir : "/");
}

void awq_split_out_dir(const char *out_dir, char *parent, size_t pcap, char *base, size_t bcap) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", out_dir);
    size_t n = strlen(tmp);
    while (n > 1 && tmp[n - 1] == '/') tmp[--n] = '\0';
    char *slash = strrchr(tmp, '/');
    if (!slash) {
        snprintf(parent, pcap, ".");
        snprintf(base, bcap, "%s", tmp);
    } else if (slash == tmp) {
        snprintf(parent, pcap, "/");
        snprintf(base, bcap, "%s", slash + 1);
    } else {
        *slash = '\0';
        snprintf(parent, pcap, "%s", tmp);
        snprintf(base, bcap, "%s", slash + 1);
    }
}

/* ---- fingerprint ---------------------------------------------------------------------------- */

static void fp_put(cJSON *fp, const char *key, const char *fmt, ...) AWQ_PRINTF(3, 4);
static void fp_put(cJSON *fp, const char *key, const char *fmt, ...) {
    char v[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v, sizeof v, fmt, ap);
    va_end(ap);
    cJSON_AddStringToObject(fp, key, v);
}

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* Size, mtime and SHA-256 of the header (8-byte length + JSON) of one input shard. */
static awq_status fp_shard(awq_runtime *rt, cJSON *fp, const char *path) {
    struct stat sb;
    if (stat(path, &sb) != 0)
        return awq_set_error(rt, AWQ_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return awq_set_error(rt, AWQ_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    uint8_t len8[8];
    awq_status s = AWQ_OK;
    uint64_t hlen = 0;
    if (pread(fd, len8, 8, 0) != 8)
        s = awq_set_error(rt, AWQ_ERR_IO, "%s: cannot read the header length", path);
    for (int i = 0; s == AWQ_OK && i < 8; i++) hlen |= (uint64_t)len8[i] << (8 * i);
    if (s == AWQ_OK && (hlen > (uint64_t)sb.st_size - 8 || hlen > (1ull << 30)))
        s = awq_set_error(rt, AWQ_ERR_FORMAT, "%s: header length %llu is larger than the file", path,
                          (unsigned long long)hlen);
    char *hdr = s == AWQ_OK ? awq_malloc((size_t)hlen + 8) : NULL;
    if (s == AWQ_OK && !hdr) s = awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    if (s == AWQ_OK && pread(fd, hdr, (size_t)hlen + 8, 0) != (ssize_t)(hlen + 8))
        s = awq_set_error(rt, AWQ_ERR_IO, "%s: short read of the header", path);
    close(fd);
    if (s == AWQ_OK) {
        char hex[65], key[300];
        awq_sha256_hex(hdr, (size_t)hlen + 8, hex);
        const char *b = base_name(path);
        snprintf(key, sizeof key, "input %s size", b);
        fp_put(fp, key, "%lld bytes", (long long)sb.st_size);
        snprintf(key, sizeof key, "input %s header sha256", b);
        fp_put(fp, key, "%s", hex);
        struct tm tmv;
        char when[64];
        time_t t = sb.st_mtim.tv_sec;
        gmtime_r(&t, &tmv);
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tmv);
        snprintf(key, sizeof key, "input %s mtime", b);
        fp_put(fp, key, "%s.%09ld UTC", when, (long)sb.st_mtim.tv_nsec);
    }
    awq_free(hdr);
    return s;
}

/* Model files that are copied into the output or shape it (output.c copies the same list). */
static const char *const model_files[] = {
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
    "added_tokens.json",
    "chat_template.jinja",
    "model.safetensors.index.json",
};

awq_status awq_fingerprint_build(awq_runtime *rt, const awq_quant_params *p, int32_t n_layers,
                                 const awq_safetensors *st, const char *backend, cJSON **out) {
    *out = NULL;
    cJSON *fp = cJSON_CreateObject();
    if (!fp) return awq_set_error(rt, AWQ_ERR_OUT_OF_MEMORY, "fingerprint: out of memory");
    bool awq = p->method == AWQ_METHOD_AWQ;
    fp_put(fp, "awq version", "%s", awq_version());
    fp_put(fp, "decoder layers", "%d", (int)n_layers);
    fp_put(fp, "option --method", "%s", awq ? "awq" : "rtn");
    fp_put(fp, "option --format", "%s", p->format == AWQ_FORMAT_GEMV ? "gemv" : "gemm");
    fp_put(fp, "option --w-bit", "%d", (int)p->w_bit);
    fp_put(fp, "option --group-size", "%d", (int)p->group_size);
    char ex[400] = "";
    for (const char *const *e = p->exclude; e && *e; e++) {
        size_t n = strlen(ex);
        snprintf(ex + n, sizeof ex - n, "%s%s", n ? "," : "", *e);
    }
    fp_put(fp, "option --exclude", "%s", ex[0] ? ex : "(none)");
    fp_put(fp, "backend", "%s", backend);
    awq_status s = AWQ_OK;
    if (awq) {
        fp_put(fp, "option --calib-samples", "%d", (int)p->calib_samples);
        fp_put(fp, "option --calib-seqlen", "%d", (int)p->calib_seqlen);
        fp_put(fp, "option --seed", "%llu", (unsigned long long)p->seed);
        fp_put(fp, "option --no-clip", "%s", p->clip ? "no" : "yes");
        fp_put(fp, "option --no-duo-scaling", "%s", p->duo_scaling ? "no" : "yes");
        if (p->search_precision != AWQ_PRECISION_FP32) /* absent = fp32: older records still match */
            fp_put(fp, "option --search-precision", "%s", "bf16");
        const char *cp = p->calib_path ? p->calib_path : awq_calib_default_path();
        char hex[65];
        int64_t size = 0;
        s = awq_sha256_file(rt, cp, hex, &size);
        if (s == AWQ_OK)
            fp_put(fp, "calibration text sha256", "%s (%s, %lld bytes)", hex, base_name(cp), (long long)size);
    }
    for (size_t i = 0; s == AWQ_OK && i < sizeof model_files / sizeof model_files[0]; i++) {
        char path[4096], hex[65], key[128];
        awq_path_join(path, sizeof path, p->model_dir, model_files[i]);
        if (!awq_file_exists(path)) continue;
        s = awq_sha256_file(rt, path, hex, NULL);
        snprintf(key, sizeof key, "input %s sha256", model_files[i]);
        if (s == AWQ_OK) fp_put(fp, key, "%s", hex);
    }
    int32_t n_files = 0;
    for (int32_t i = 0; i < awq_st_count(st); i++)
        if (awq_st_get(st, i)->file + 1 > n_files) n_files = awq_st_get(st, i)->file + 1;
    for (int32_t f = 0; s == AWQ_OK && f < n_files; f++) s = fp_shard(rt, fp, awq_st_file_path(st, f));
    if (s != AWQ_OK) {
        cJSON_Delete(fp);
        return s;
    }
    *out = fp;
    return AWQ_OK;
}

static bool is_volatile(const char *key) {
    size_t n = strlen(key);
    return n >= 6 && !strcmp(key + n - 6, " mtime");
}

static void short_value(char *dst, size_t cap, const char *v) {
    /* hashes are shortened to 12 digits in messages */
    size_t n = strspn(v, "0123456789abcdef");
    if (n == 64)
        snprintf(dst, cap, "%.12s...%s", v, v + 64);
    else
        snprintf(dst, cap, "%s", v);
}

int awq_fingerprint_diff(const cJSON *old, const cJSON *cur, bool ignore_volatile, char *buf, size_t cap) {
    int n = 0;
    size_t len = 0;
    if (cap) buf[0] = '\0';
    const cJSON *sets[2] = {cur, old};
    for (int pass = 0; pass < 2; pass++) {
        const cJSON *e;
        cJSON_ArrayForEach(e, sets[pass]) {
            if (!e->string || (ignore_volatile && is_volatile(e->string))) continue;
            const cJSON *o = cJSON_GetObjectItemCaseSensitive(pass ? cur : old, e->string);
            if (pass == 1 && o) continue; /* compared in the first pass */
            const char *a = pass ? (cJSON_IsString(e) ? e->valuestring : "?")
                                 : (cJSON_IsString(o) ? o->valuestring : "(absent)");
            const char *b = pass ? "(absent)" : (cJSON_IsString(e) ? e->valuestring : "?");
            if (!strcmp(a, b)) continue;
            char sa[160], sb[160];
            short_value(sa, sizeof sa, a);
            short_value(sb, sizeof sb, b);
            if (len < cap) {
                int k = snprintf(buf + len, cap - len, "%s%s: %s -> %s", n ? "; " : "", e->string, sa, sb);
                if (k > 0) len += (size_t)k;
            }
            n++;
        }
    }
    return n;
}

/* ---- temporary directories of an output ------------------------------------------------------ */

typedef struct tmp_info {
    char path[4096];
    int64_t bytes;
    int32_t layers_done;
    int32_t n_layers;
    cJSON *fp;   /* progress/fingerprint.json, NULL if absent or unreadable */
    int lock_fd; /* >= 0: we hold its lock */
    bool in_use; /* someone else holds its lock */
} tmp_info;

static int64_t du(const char *dir) {
    int64_t total = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[4096];
    while (d && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        awq_path_join(path, sizeof path, dir, e->d_name);
        struct stat sb;
        if (lstat(path, &sb) != 0) continue;
        if (S_ISDIR(sb.st_mode))
            total += du(path);
        else
            total += (int64_t)sb.st_blocks * 512; /* shards are sparse until written */
    }
    if (d) closedir(d);
    return total;
}

/* Takes the lock of dir/progress/lock: returns the fd, -1 if another process holds it, -2 if
 * there is no progress directory. */
static int try_lock(const char *dir) {
    char path[4200];
    snprintf(path, sizeof path, "%s/" AWQ_PROGRESS_DIR "/lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return -2;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int32_t awq_progress_layers_done(const char *tmp_dir, int32_t n_layers) {
    int32_t k = 0;
    char path[4200];
    for (; n_layers <= 0 || k < n_layers; k++) {
        snprintf(path, sizeof path, "%s/" AWQ_PROGRESS_DIR "/layer-%05d.json", tmp_dir, (int)k);
        if (!awq_file_exists(path)) break;
    }
    return k;
}

/* Calls fn for every OUT.tmp-* directory beside out_dir; lock: try to take each one's lock. */
typedef bool (*tmp_fn)(tmp_info *t, void *user); /* return false to stop */

static awq_status scan_tmp(awq_runtime *rt, const char *out_dir, bool lock, tmp_fn fn, void *user) {
    char parent[4096], base[1024], prefix[1100];
    awq_split_out_dir(out_dir, parent, sizeof parent, base, sizeof base);
    snprintf(prefix, sizeof prefix, "%s.tmp-", base);
    size_t pl = strlen(prefix);
    DIR *d = opendir(parent);
    if (!d) return AWQ_OK; /* no parent: nothing stale (quantize reports the real problem later) */
    struct dirent *e;
    bool go = true;
    while (go && (e = readdir(d))) {
        if (strncmp(e->d_name, prefix, pl) || strlen(e->d_name) != pl + 6) continue;
        tmp_info t;
        memset(&t, 0, sizeof t);
        t.lock_fd = -1;
        awq_path_join(t.path, sizeof t.path, parent, e->d_name);
        struct stat sb;
        if (lstat(t.path, &sb) != 0 || !S_ISDIR(sb.st_mode)) continue;
        t.bytes = du(t.path);
        char fpp[4200];
        snprintf(fpp, sizeof fpp, "%s/" AWQ_PROGRESS_DIR "/fingerprint.json", t.path);
        if (awq_file_exists(fpp)) {
            if (awq_json_parse_file(rt, fpp, &t.fp) != AWQ_OK || !cJSON_IsObject(t.fp)) {
                cJSON_Delete(t.fp);
                t.fp = NULL; /* unreadable: reported as stale, never resumed */
            }
            awq_clear_error(rt);
        }
        if (t.fp) {
            const cJSON *nl = cJSON_GetObjectItemCaseSensitive(t.fp, "decoder layers");
            t.n_layers = cJSON_IsString(nl) ? atoi(nl->valuestring) : 0;
        }
        t.layers_done = awq_progress_layers_done(t.path, t.n_layers);
        if (lock) {
            int fd = try_lock(t.path);
            if (fd >= 0)
                t.lock_fd = fd;
            else if (fd == -1)
                t.in_use = true;
        }
        go = fn(&t, user);
        if (t.lock_fd >= 0) close(t.lock_fd);
        cJSON_Delete(t.fp);
    }
    closedir(d);
    return AWQ_OK;
}

static void human_size(char *buf, size_t cap, int64_t b) {
    if (b >= (int64_t)1 << 30)
        snprintf(buf, cap, "%.2f GiB", b / 1073741824.0);
    else if (b >= 1 << 20)
        snprintf(buf, cap, "%.1f MiB", b / 1048576.0);
    else
        snprintf(buf, cap, "%.1f KiB", b / 1024.0);
}

/* ---- choosing the directory to resume ------------------------------------------------------- */

typedef struct find_state {
    awq_runtime *rt;
    const awq_quant_params *p;
    const cJSON *fp;
    awq_resume *best;
    int32_t best_done;
    int n_mismatch;
    char mismatch[1500]; /* the first mismatching directory and its diff */
    awq_status st;
} find_state;

static bool find_cb(tmp_info *t, void *user) {
    find_state *f = user;
    awq_runtime *rt = f->rt;
    char size[32];
    human_size(size, sizeof size, t->bytes);
    if (t->in_use) {
        AWQ_LOG_WARN(rt, "%s (%s) is in use by another quantize process; leaving it alone", t->path, size);
        return true;
    }
    if (f->p->no_resume) {
        if (t->fp) {
            AWQ_LOG_INFO(rt, "--no-resume: removing the partial run %s (%d/%d layers, %s)", t->path,
                         t->layers_done, t->n_layers, size);
            awq_rmtree(t->path);
        } else {
            AWQ_LOG_WARN(rt,
                         "stale temporary directory %s (%s) from an interrupted run; remove it "
                         "with `awq-cli quantize --clean-stale %s`",
                         t->path, size, f->p->out_dir);
        }
        return true;
    }
    if (!t->fp) {
        AWQ_LOG_WARN(rt,
                     "stale temporary directory %s (%s) cannot be resumed (no progress records); "
                     "remove it with `awq-cli quantize --clean-stale %s`",
                     t->path, size, f->p->out_dir);
        return true;
    }
    char diff[1200];
    int nd = awq_fingerprint_diff(t->fp, f->fp, false, diff, sizeof diff);
    if (nd) {
        if (f->n_mismatch++ == 0)
            snprintf(f->mismatch, sizeof f->mismatch,
                     "%s (%d/%d layers done, %s) was made with "
                     "different inputs: %s",
                     t->path, t->layers_done, t->n_layers, size, diff);
        else
            AWQ_LOG_WARN(rt, "%s (%s): a partial run with different inputs (%s)", t->path, size, diff);
        return true;
    }
    if (f->best->tmp_dir[0] && t->layers_done <= f->best_done) {
        AWQ_LOG_WARN(rt,
                     "%s (%s): another partial run of the same quantization with fewer layers "
                     "done; remove it with `awq-cli quantize --clean-stale %s`",
                     t->path, size, f->p->out_dir);
        return true;
    }
    if (f->best->tmp_dir[0])
        AWQ_LOG_WARN(rt,
                     "%s: another partial run of the same quantization with fewer layers done; "
                     "remove it with `awq-cli quantize --clean-stale %s`",
                     f->best->tmp_dir, f->p->out_dir);
    awq_resume_release(f->best);
    snprintf(f->best->tmp_dir, sizeof f->best->tmp_dir, "%s", t->path);
    f->best->lock_fd = t->lock_fd;
    t->lock_fd = -1; /* kept */
    f->best_done = t->layers_done;
    return true;
}

awq_status awq_resume_find(awq_runtime *rt, const awq_quant_params *p, const cJSON *fp, awq_resume *out) {
    memset(out, 0, sizeof *out);
    out->lock_fd = -1;
    find_state f = {.rt = rt, .p = p, .fp = fp, .best = out, .best_done = -1};
    TRY(scan_tmp(rt, p->out_dir, true, find_cb, &f));
    if (out->tmp_dir[0]) {
        if (f.n_mismatch) AWQ_LOG_WARN(rt, "%s", f.mismatch);
        AWQ_LOG_INFO(rt, "resuming the interrupted run in %s (%d layers recorded as done)", out->tmp_dir,
                     f.best_done);
        return AWQ_OK;
    }
    if (f.n_mismatch)
        return awq_set_error(rt, AWQ_ERR_EXISTS,
                             "%s; refusing to mix them: rerun with the original inputs to resume, or "
                             "use --no-resume to start over (removes the partial run)",
                             f.mismatch);
    return AWQ_OK;
}

void awq_resume_release(awq_resume *r) {
    if (r->lock_fd >= 0) close(r->lock_fd);
    r->lock_fd = -1;
    r->tmp_dir[0] = '\0';
}

awq_status awq_progress_init(awq_runtime *rt, const char *tmp_dir, const cJSON *fp, int *lock_fd) {
    char path[4200];
    *lock_fd = -1;
    snprintf(path, sizeof path, "%s/" AWQ_PROGRESS_DIR, tmp_dir);
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return awq_set_error(rt, AWQ_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    int fd = try_lock(tmp_dir);
    if (fd < 0) return awq_set_error(rt, AWQ_ERR_IO, "%s/lock: cannot lock", path);
    snprintf(path, sizeof path, "%s/" AWQ_PROGRESS_DIR "/fingerprint.json", tmp_dir);
    awq_status s = awq_json_write_durable(rt, path, fp);
    if (s == AWQ_OK) s = awq_fsync_path(rt, tmp_dir);
    if (s != AWQ_OK) {
        close(fd);
        return s;
    }
    *lock_fd = fd;
    return AWQ_OK;
}

/* ---- stale directories (public) ---------------------------------------------------------------- */

typedef struct stale_state {
    bool remove;
    awq_stale_fn fn;
    void *user;
    int32_t n;
} stale_state;

static bool stale_cb(tmp_info *t, void *user) {
    stale_state *s = user;
    awq_stale_info info = {.path = t->path,
                           .bytes = t->bytes,
                           .layers_done = t->layers_done,
                           .n_layers = t->n_layers,
                           .resumable = t->fp != NULL,
                           .in_use = t->in_use};
    if (s->remove && !t->in_use) {
        awq_rmtree(t->path);
        info.removed = !awq_dir_exists(t->path);
    }
    s->n++;
    if (s->fn) s->fn(&info, s->user);
    return true;
}

awq_status awq_quantize_stale(awq_runtime *rt, const char *out_dir, bool remove, awq_stale_fn fn, void *user,
                              int32_t *n_found) {
    if (n_found) *n_found = 0;
    if (!rt || !out_dir || !out_dir[0])
        return awq_set_error(rt, AWQ_ERR_INVALID_ARG, "awq_quantize_stale: out_dir is required");
    stale_state s = {.remove = remove, .fn = fn, .user = user};
    TRY(scan_tmp(rt, out_dir, true, stale_cb, &s));
    if (n_found) *n_found = s.n;
    return AWQ_OK;
}
