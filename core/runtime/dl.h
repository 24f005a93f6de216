/* dl.h - portable dynamic loading (POSIX; Win32 stubs). Nothing else calls dlopen. */
#ifndef AWQ_CORE_DL_H
#define AWQ_CORE_DL_H

#include <stddef.h>

typedef struct awq_dl {
    void *handle;
    char err[512];
} awq_dl;

/* Returns 0 on success, -1 on failure (reason in lib->err). */
int awq_dl_open(awq_dl *lib, const char *path);
void *awq_dl_sym(awq_dl *lib, const char *name); /* NULL + lib->err on failure */
void awq_dl_close(awq_dl *lib);

/* Directory of the module that holds libawq's code: the shared libawq itself, or the executable
 * when libawq is linked statically (*is_exe = true then). The installed tree is found relative
 * to it (plugins in <libdir>/awq, data in <prefix>/share/awq; docs/install.md), so an installed
 * prefix can be moved. Writes a NUL-terminated absolute path without a trailing '/'; returns 0,
 * or -1 when the directory cannot be determined (buf is then ""). */
int awq_dl_self_dir(char *buf, size_t cap, int *is_exe);
/* awq_dl_self_dir() + "/" + rel_lib (libawq is a shared library) or rel_bin (libawq is linked
 * into the executable), canonicalised when it exists. Returns 0, or -1 (buf "") when the
 * directory is unknown, the relative path is NULL or empty, or buf is too small. */
int awq_dl_install_path(char *buf, size_t cap, const char *rel_lib, const char *rel_bin);

#endif
