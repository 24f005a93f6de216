/* args.c - option parsing helpers. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"

static bool name_is(const char *arg, const char *s, const char *l) {
    return (s && !strcmp(arg, s)) || (l && !strcmp(arg, l));
}

/* Supports "--name value" and "--name=value". */
static bool match(cli_args *a, const char *s, const char *l, const char **val) {
    const char *arg = a->argv[a->i];
    if (l) {
        size_t n = strlen(l);
        if (!strncmp(arg, l, n) && arg[n] == '=') {
            *val = arg + n + 1;
            return true;
        }
    }
    if (!name_is(arg, s, l)) return false;
    if (a->i + 1 >= a->argc) {
        fprintf(stderr, "awq-cli %s: option %s needs a value\n", a->cmd, arg);
        a->error = true;
        *val = NULL;
        return true;
    }
    *val = a->argv[++a->i];
    return true;
}

bool cli_flag(cli_args *a, const char *s, const char *l) { return name_is(a->argv[a->i], s, l); }

bool cli_opt(cli_args *a, const char *s, const char *l, const char **val) { return match(a, s, l, val); }

bool cli_opt_int(cli_args *a, const char *s, const char *l, int64_t lo, int64_t hi, int64_t *out) {
    const char *v;
    if (!match(a, s, l, &v)) return false;
    if (!v) return true;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || *end || end == v || x < lo || x > hi) {
        fprintf(stderr, "awq-cli %s: %s: '%s' is not an integer in [%lld, %lld]\n", a->cmd, l ? l : s, v,
                (long long)lo, (long long)hi);
        a->error = true;
        return true;
    }
    *out = x;
    return true;
}

bool cli_opt_float(cli_args *a, const char *s, const char *l, double lo, double hi, double *out) {
    const char *v;
    if (!match(a, s, l, &v)) return false;
    if (!v) return true;
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || *end || end == v || !(x >= lo && x <= hi)) {
        fprintf(stderr, "awq-cli %s: %s: '%s' is not a number in [%g, %g]\n", a->cmd, l ? l : s, v, lo, hi);
        a->error = true;
        return true;
    }
    *out = x;
    return true;
}

bool cli_opt_u64(cli_args *a, const char *s, const char *l, uint64_t *out) {
    const char *v;
    if (!match(a, s, l, &v)) return false;
    if (!v) return true;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || *end || end == v || v[0] == '-') {
        fprintf(stderr, "awq-cli %s: %s: '%s' is not a non-negative integer\n", a->cmd, l ? l : s, v);
        a->error = true;
        return true;
    }
    *out = x;
    return true;
}
