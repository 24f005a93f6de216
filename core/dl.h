/* dl.h - portable dynamic loading (POSIX; Win32 stubs). Nothing else calls dlopen. */
#ifndef AWQ_CORE_DL_H
#define AWQ_CORE_DL_H

#include <stddef.h>

typedef struct awq_dl {
    void *handle;
    char  err[512];
} awq_dl;

/* Returns 0 on success, -1 on failure (reason in lib->err). */
int   awq_dl_open(awq_dl *lib, const char *path);
void *awq_dl_sym(awq_dl *lib, const char *name); /* NULL + lib->err on failure */
void  awq_dl_close(awq_dl *lib);

#endif
