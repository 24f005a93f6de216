/*
 * registry.c - backend discovery. The built-in cpu backend is always registered; plugins named
 * libawq-backend-<name>.so are searched in: params.backend_dir, $AWQ_BACKEND_PATH (':'-separated
 * directories or files), the executable's directory, then the installed plugin directory found
 * relative to libawq itself (<libdir>/awq beside libawq.so, or <bindir>/../lib/awq when libawq is
 * linked into the executable; AWQ_BACKEND_REL_LIB / AWQ_BACKEND_REL_BIN), so that a moved install
 * prefix still works, and only when that directory does not exist the compile-time absolute
 * AWQ_BACKEND_DIR (docs/install.md).
 * Each candidate is dlopen'ed, probed, its ABI version and required ops checked; any failure is
 * logged at INFO and recorded as a "skipped" line, never an error.
 */
#include <dirent.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dl.h"
#include "internal.h"

#ifndef AWQ_BACKEND_DIR
#define AWQ_BACKEND_DIR ""
#endif
#ifndef AWQ_BACKEND_REL_LIB
#define AWQ_BACKEND_REL_LIB "awq"
#endif
#ifndef AWQ_BACKEND_REL_BIN
#define AWQ_BACKEND_REL_BIN "../lib/awq"
#endif

#define PLUGIN_PREFIX "libawq-backend-"
#define PLUGIN_SUFFIX ".so"

static void add_skipped(awq_runtime *rt, const char *path, const char *reason) {
    /* dlerror() messages often start with the path already: do not repeat it. */
    size_t pl = strlen(path);
    if (strncmp(reason, path, pl) == 0 && strncmp(reason + pl, ": ", 2) == 0) reason += pl + 2;
    AWQ_LOG_INFO(rt, "backend plugin skipped: %s: %s", path, reason);
    if (rt->n_skipped >= AWQ_MAX_SKIPPED) return;
    size_t n = strlen(path) + strlen(reason) + 3;
    char *s = awq_malloc(n);
    if (!s) return;
    snprintf(s, n, "%s: %s", path, reason);
    rt->skipped[rt->n_skipped++] = s;
}

static bool already_loaded(const awq_runtime *rt, const char *name) {
    return awq_registry_find(rt, name) != NULL;
}

/* Checks that every required member is set. Returns the name of a missing one or NULL. */
static const char *missing_required(const awq_backend_ops *ops) {
#define CHECK_OP(m) \
    if (!ops->m) return #m;
    AWQ_BACKEND_REQUIRED_OPS(CHECK_OP)
#undef CHECK_OP
    return NULL;
}

/* Plugin files already tried during one registry_init, by canonical path: the same file is
 * often reachable twice (e.g. $AWQ_BACKEND_PATH and the executable's directory) and must not
 * produce an "already loaded" skip line. */
#define MAX_SEEN 128
typedef struct seen_set {
    char *paths[MAX_SEEN];
    int n;
} seen_set;

static bool seen_before(seen_set *seen, const char *path) {
    char real[PATH_MAX];
    const char *key = realpath(path, real) ? real : path;
    for (int i = 0; i < seen->n; i++)
        if (strcmp(seen->paths[i], key) == 0) return true;
    if (seen->n < MAX_SEEN) {
        char *dup = awq_strdup(key);
        if (dup) seen->paths[seen->n++] = dup;
    }
    return false;
}

static void try_plugin(awq_runtime *rt, seen_set *seen, const char *path) {
    char why[256] = "";
    awq_dl lib;
    if (seen_before(seen, path)) return;
    if (awq_dl_open(&lib, path) != 0) {
        add_skipped(rt, path, lib.err);
        return;
    }
    awq_backend_probe_fn probe = (awq_backend_probe_fn)awq_dl_sym(&lib, "awq_backend_probe");
    awq_backend_entry_fn entry = (awq_backend_entry_fn)awq_dl_sym(&lib, "awq_backend_entry");
    if (!probe || !entry) {
        add_skipped(rt, path, "not an awq backend plugin (awq_backend_probe/awq_backend_entry missing)");
        awq_dl_close(&lib);
        return;
    }
    int score = probe(why, sizeof why);
    why[sizeof why - 1] = '\0'; /* a plugin may fill the buffer without a terminator */
    if (score <= 0) {
        add_skipped(rt, path, why[0] ? why : "probe found no usable device");
        awq_dl_close(&lib);
        return;
    }
    const awq_backend_ops *ops = entry();
    char msg[512];
    if (!ops) {
        add_skipped(rt, path, "awq_backend_entry returned NULL");
        awq_dl_close(&lib);
        return;
    }
    if (ops->abi_version != AWQ_BACKEND_ABI_VERSION) {
        snprintf(msg, sizeof msg, "ABI version %u, this libawq needs %u", ops->abi_version,
                 AWQ_BACKEND_ABI_VERSION);
        add_skipped(rt, path, msg);
        awq_dl_close(&lib);
        return;
    }
    /* An older plugin's table ends before members appended since: it needs the required ones
     * (which end at quantize_w4) and the rest reads as NULL from a zero-filled copy. */
    const size_t min_size = offsetof(awq_backend_ops, quantize_w4) + sizeof ops->quantize_w4;
    if (ops->struct_size < min_size) {
        snprintf(msg, sizeof msg, "ops table has %u bytes, ABI %u's required members need %zu",
                 ops->struct_size, AWQ_BACKEND_ABI_VERSION, min_size);
        add_skipped(rt, path, msg);
        awq_dl_close(&lib);
        return;
    }
    awq_backend_ops *copy = NULL;
    if (ops->struct_size < sizeof(awq_backend_ops)) {
        copy = awq_calloc(1, sizeof *copy);
        if (!copy) {
            add_skipped(rt, path, "out of memory");
            awq_dl_close(&lib);
            return;
        }
        memcpy(copy, ops, ops->struct_size);
        ops = copy;
    }
    const char *miss = missing_required(ops);
    if (miss) {
        snprintf(msg, sizeof msg, "required op '%s' is missing", miss);
        add_skipped(rt, path, msg);
        awq_free(copy);
        awq_dl_close(&lib);
        return;
    }
    if (!ops->name || already_loaded(rt, ops->name)) {
        snprintf(msg, sizeof msg, "backend '%s' already loaded", ops->name ? ops->name : "?");
        add_skipped(rt, path, msg);
        awq_free(copy);
        awq_dl_close(&lib);
        return;
    }
    if (rt->n_backends >= AWQ_MAX_BACKENDS) {
        add_skipped(rt, path, "too many backends");
        awq_free(copy);
        awq_dl_close(&lib);
        return;
    }
    awq_backend_entry *e = &rt->backends[rt->n_backends++];
    e->ops = ops;
    e->own = copy;
    e->dl = lib.handle;
    e->score = score;
    snprintf(e->path, sizeof e->path, "%s", path);
    AWQ_LOG_INFO(rt, "backend '%s' loaded from %s (score %d)", ops->name, path, score);
}

static bool is_plugin_name(const char *name) {
    size_t n = strlen(name), pl = strlen(PLUGIN_PREFIX), sl = strlen(PLUGIN_SUFFIX);
    return n > pl + sl && strncmp(name, PLUGIN_PREFIX, pl) == 0 && strcmp(name + n - sl, PLUGIN_SUFFIX) == 0;
}

static void scan_dir(awq_runtime *rt, seen_set *seen, const char *dir) {
    if (!dir || !dir[0]) return;
    DIR *d = opendir(dir);
    if (!d) return;
    /* Sorted order for reproducibility. */
    char *names[64];
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < 64) {
        if (is_plugin_name(de->d_name)) names[n++] = awq_strdup(de->d_name);
    }
    closedir(d);
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    for (int i = 0; i < n; i++) {
        if (!names[i]) continue;
        char path[PATH_MAX];
        awq_path_join(path, sizeof path, dir, names[i]);
        try_plugin(rt, seen, path);
        awq_free(names[i]);
    }
}

static void scan_path_entry(awq_runtime *rt, seen_set *seen, const char *entry) {
    if (awq_dir_exists(entry))
        scan_dir(rt, seen, entry);
    else if (awq_file_exists(entry))
        try_plugin(rt, seen, entry);
}

awq_status awq_registry_init(awq_runtime *rt, const char *backend_dir, bool load_plugins) {
    rt->n_backends = 0;
    awq_backend_entry *cpu = &rt->backends[rt->n_backends++];
    cpu->ops = awq_backend_cpu_ops();
    cpu->dl = NULL;
    cpu->score = 1;
    cpu->path[0] = '\0';
    if (!load_plugins) return AWQ_OK;

    seen_set seen = {.n = 0};
    if (backend_dir) scan_path_entry(rt, &seen, backend_dir);
    const char *env = getenv("AWQ_BACKEND_PATH");
    if (env && env[0]) {
        char *copy = awq_strdup(env), *save = NULL;
        for (char *tok = copy ? strtok_r(copy, ":", &save) : NULL; tok; tok = strtok_r(NULL, ":", &save))
            scan_path_entry(rt, &seen, tok);
        awq_free(copy);
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            scan_dir(rt, &seen, exe);
        }
    }
    char installed[PATH_MAX];
    if (awq_dl_install_path(installed, sizeof installed, AWQ_BACKEND_REL_LIB, AWQ_BACKEND_REL_BIN) == 0 &&
        awq_dir_exists(installed))
        scan_dir(rt, &seen, installed);
    else
        scan_dir(rt, &seen, AWQ_BACKEND_DIR);
    for (int i = 0; i < seen.n; i++) awq_free(seen.paths[i]);
    return AWQ_OK;
}

void awq_registry_free(awq_runtime *rt) {
    for (int i = 0; i < rt->n_backends; i++) {
        if (rt->backends[i].dl) {
            awq_dl lib = {.handle = rt->backends[i].dl};
            awq_dl_close(&lib);
        }
        awq_free(rt->backends[i].own);
        rt->backends[i].own = NULL;
    }
    rt->n_backends = 0;
    for (int i = 0; i < rt->n_skipped; i++) awq_free(rt->skipped[i]);
    rt->n_skipped = 0;
}

const awq_backend_entry *awq_registry_find(const awq_runtime *rt, const char *name) {
    for (int i = 0; i < rt->n_backends; i++)
        if (strcmp(rt->backends[i].ops->name, name) == 0) return &rt->backends[i];
    return NULL;
}
