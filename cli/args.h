/* args.h - tiny option parsing helpers shared by the subcommands. */
#ifndef AWQ_CLI_ARGS_H
#define AWQ_CLI_ARGS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct cli_args {
    int argc;
    char **argv;
    int i;           /* current index */
    const char *cmd; /* command name for messages */
    bool error;      /* set when a value was bad (message already printed) */
} cli_args;

/* True if argv[i] is one of the names ("-n", "--n-predict"); if so and a value is wanted,
 * *val is argv[i+1] (consumed). Prints an error and sets a->error when the value is missing. */
bool cli_flag(cli_args *a, const char *short_name, const char *long_name);
bool cli_opt(cli_args *a, const char *short_name, const char *long_name, const char **val);
bool cli_opt_int(cli_args *a, const char *s, const char *l, int64_t lo, int64_t hi, int64_t *out);
bool cli_opt_float(cli_args *a, const char *s, const char *l, double lo, double hi, double *out);
bool cli_opt_u64(cli_args *a, const char *s, const char *l, uint64_t *out);

#endif
