/* cmd_eval.c - `awq-cli eval`. (placeholder until its issue lands) */
#include <stdio.h>

#include "cli.h"

int cmd_eval(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "awq-cli eval: not built yet\n");
    return 2;
}
