/* cli.h - shared declarations of the awq-cli subcommands. */
#ifndef AWQ_CLI_H
#define AWQ_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "awq.h"

typedef struct cli_command {
    const char *name;
    int (*run)(int argc, char **argv); /* argv[0] is the command name */
} cli_command;

extern const cli_command cli_commands[];

/* Global options every command accepts: -v/--verbose (repeatable), -q/--quiet. */
extern int cli_verbosity; /* 0 = warnings, 1 = info, 2 = debug, -1 = errors only */

/* Creates the runtime with the stderr logger. Prints the error and returns NULL on failure. */
awq_runtime *cli_runtime(int n_threads);
/* Prints "awq-cli <cmd>: <status>: <detail>" and returns the exit code (1). */
int cli_fail(awq_runtime *rt, const char *cmd, awq_status st);
/* Ctrl-C / SIGTERM / SIGHUP set a flag the progress callbacks turn into a clean cancellation. */
void cli_catch_signals(void);
bool cli_interrupted(void);
struct cli_args;
/* Parses "--lm-head q8|stored" at a->i into *out (true when that option was there; a bad value
 * prints an error and sets a->error). */
bool cli_opt_lm_head(struct cli_args *a, awq_lm_head_format *out);
/* --precision / --search-precision fp32|bf16 (name is the option); same contract. */
bool cli_opt_precision(struct cli_args *a, const char *name, awq_precision *out);
/* The stderr log callback. */
void cli_log(awq_log_level level, const char *msg, void *user);

int cmd_info(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_verify(int argc, char **argv);

#endif
