/* dl.c - the only place that touches dlopen/dlsym/dlclose (and dladdr, to find libawq itself). */
#include "dl.h"

#include <stdio.h>
#include <string.h>

/* Any object of libawq: its address tells which loaded module holds libawq's code. */
static const char awq_dl_anchor = 0;

/* Cuts path after its last directory separator; returns 0, or -1 if there is none. */
static int strip_file_name(char *path) {
    char *slash = strrchr(path, '/');
#ifdef _WIN32
    char *bs = strrchr(path, '\\');
    if (bs && (!slash || bs > slash)) slash = bs;
#endif
    if (!slash) return -1;
    if (slash == path)
        slash[1] = '\0'; /* "/libawq.so" -> "/" */
    else
        *slash = '\0';
    return 0;
}

#ifdef _WIN32
#include <windows.h>
int awq_dl_open(awq_dl *lib, const char *path) {
    lib->err[0] = '\0';
    lib->handle = (void *)LoadLibraryA(path);
    if (!lib->handle) {
        snprintf(lib->err, sizeof lib->err, "LoadLibrary failed (error %lu)", GetLastError());
        return -1;
    }
    return 0;
}
void *awq_dl_sym(awq_dl *lib, const char *name) {
    void *p = (void *)GetProcAddress((HMODULE)lib->handle, name);
    if (!p) snprintf(lib->err, sizeof lib->err, "symbol %s not found", name);
    return p;
}
void awq_dl_close(awq_dl *lib) {
    if (lib->handle) FreeLibrary((HMODULE)lib->handle);
    lib->handle = NULL;
}
int awq_dl_self_dir(char *buf, size_t cap, int *is_exe) {
    HMODULE h = NULL;
    if (is_exe) *is_exe = 0;
    if (cap) buf[0] = '\0';
    if (!GetModuleHandleExA(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS |
                                GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
                            (LPCSTR)&awq_dl_anchor, &h))
        return -1;
    DWORD n = GetModuleFileNameA(h, buf, (DWORD)cap);
    if (n == 0 || n >= cap || strip_file_name(buf) != 0) {
        if (cap) buf[0] = '\0';
        return -1;
    }
    if (is_exe) *is_exe = h == GetModuleHandleA(NULL);
    return 0;
}
#else
#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <link.h>
#endif
int awq_dl_open(awq_dl *lib, const char *path) {
    lib->err[0] = '\0';
    lib->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!lib->handle) {
        const char *e = dlerror();
        snprintf(lib->err, sizeof lib->err, "%s", e ? e : "dlopen failed");
        return -1;
    }
    return 0;
}
void *awq_dl_sym(awq_dl *lib, const char *name) {
    dlerror();
    void *p = dlsym(lib->handle, name);
    if (!p) {
        const char *e = dlerror();
        snprintf(lib->err, sizeof lib->err, "%s", e ? e : "symbol not found");
    }
    return p;
}
void awq_dl_close(awq_dl *lib) {
    if (lib->handle) dlclose(lib->handle);
    lib->handle = NULL;
}

int awq_dl_self_dir(char *buf, size_t cap, int *is_exe) {
    char path[PATH_MAX] = "";
    int exe = 1;
    Dl_info info;
#ifdef __GLIBC__
    /* The link map tells a shared object (l_name = its path) from the main program (l_name ""),
     * for which dladdr would only report argv[0]. */
    struct link_map *lm = NULL;
    if (dladdr1(&awq_dl_anchor, &info, (void **)&lm, RTLD_DL_LINKMAP) && lm && lm->l_name && lm->l_name[0]) {
        snprintf(path, sizeof path, "%s", lm->l_name);
        exe = 0;
    }
#else
    if (dladdr(&awq_dl_anchor, &info) && info.dli_fname && strchr(info.dli_fname, '/')) {
        snprintf(path, sizeof path, "%s", info.dli_fname);
        exe = 0;
    }
#endif
    if (exe) {
        ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
        path[n > 0 ? n : 0] = '\0';
    }
    char real[PATH_MAX];
    const char *p = path[0] && realpath(path, real) ? real : path;
    if (is_exe) *is_exe = exe;
    if (cap) buf[0] = '\0';
    if (!p[0] || strlen(p) >= cap) return -1;
    memcpy(buf, p, strlen(p) + 1);
    if (strip_file_name(buf) != 0) {
        buf[0] = '\0';
        return -1;
    }
    return 0;
}
#endif

int awq_dl_install_path(char *buf, size_t cap, const char *rel_lib, const char *rel_bin) {
    char dir[4096];
    int is_exe = 0;
    if (cap) buf[0] = '\0';
    if (awq_dl_self_dir(dir, sizeof dir, &is_exe) != 0) return -1;
    const char *rel = is_exe ? rel_bin : rel_lib;
    if (!rel || !rel[0]) return -1;
    int n = snprintf(buf, cap, "%s/%s", dir, rel);
    if (n < 0 || (size_t)n >= cap) {
        if (cap) buf[0] = '\0';
        return -1;
    }
#ifndef _WIN32
    char real[PATH_MAX];
    if (realpath(buf, real) && strlen(real) < cap) memcpy(buf, real, strlen(real) + 1);
#endif
    return 0;
}
