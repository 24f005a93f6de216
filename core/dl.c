/* dl.c - the only place that touches dlopen/dlsym/dlclose. */
#include "dl.h"

#include <stdio.h>
#include <string.h>

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
#else
#include <dlfcn.h>
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
#endif
