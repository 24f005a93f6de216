/* cmd_verify.c - `awq-cli verify DIR`: checks a quantized checkpoint against the SHA-256 hashes
 * of its awq-manifest.json. Exit status 0: every file matches; 1: something is missing or differs
 * (or there is no readable manifest); 2: usage. */
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: awq-cli verify DIR [-q]\n"
            "\n"
            "Checks every file of a checkpoint written by `awq-cli quantize` against the size and\n"
            "SHA-256 recorded in DIR/awq-manifest.json, and reports files not listed there.\n"
            "Exit status: 0 all listed files match, 1 a file is missing or differs, 2 usage.\n"
            "\n"
            "  -q, --quiet   print only problems and the summary\n");
}

typedef struct vstate {
    bool quiet;
    int32_t ok, bad, extra;
} vstate;

static void on_item(const awq_verify_item *it, void *user) {
    vstate *v = user;
    if (!it->problem) {
        v->ok++;
        if (!v->quiet)
            printf("ok       %-40s %12lld bytes  sha256 %.16s\n", it->file, (long long)it->bytes, it->actual);
        return;
    }
    if (!it->expected) {
        v->extra++;
        printf("extra    %-40s %12lld bytes  (not listed in the manifest; not checked)\n", it->file,
               (long long)it->bytes);
        return;
    }
    v->bad++;
    if (!it->actual)
        printf("MISSING  %-40s expected sha256 %.16s\n", it->file, it->expected);
    else
        printf("BAD      %-40s %12lld bytes  %s: sha256 %.16s, expected %.16s\n", it->file,
               (long long)it->bytes, it->problem, it->actual, it->expected);
}

int cmd_verify(int argc, char **argv) {
    const char *dir = NULL;
    vstate v = {0};
    cli_args a = {.argc = argc, .argv = argv, .cmd = "verify"};
    for (a.i = 1; a.i < argc; a.i++) {
        if (cli_flag(&a, "-h", "--help")) {
            usage(stdout);
            return 0;
        } else if (cli_flag(&a, "-q", "--quiet"))
            v.quiet = true;
        else if (argv[a.i][0] == '-') {
            fprintf(stderr, "awq-cli verify: unknown option '%s'\n", argv[a.i]);
            return 2;
        } else if (!dir)
            dir = argv[a.i];
        else {
            fprintf(stderr, "awq-cli verify: unexpected argument '%s'\n", argv[a.i]);
            return 2;
        }
    }
    if (!dir) {
        usage(stderr);
        return 2;
    }
    awq_runtime *rt = cli_runtime(0);
    if (!rt) return 1;
    awq_status st = awq_checkpoint_verify(rt, dir, on_item, &v);
    fflush(stdout);
    if (st != AWQ_OK) {
        if (v.ok + v.bad > 0)
            fprintf(stderr, "awq-cli verify: %s: FAILED: %d file(s) ok, %d missing or different\n", dir, v.ok,
                    v.bad);
        int rc = cli_fail(rt, "verify", st);
        awq_runtime_destroy(rt);
        return rc;
    }
    fprintf(stderr, "awq-cli verify: %s: OK: %d file(s) match awq-manifest.json%s\n", dir, v.ok,
            v.extra ? " (some files are not listed; see above)" : "");
    awq_runtime_destroy(rt);
    return 0;
}
