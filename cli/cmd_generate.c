/* cmd_generate.c - `awq-cli generate`. (placeholder until its issue lands) */
#include <stdio.h>

#include "cli.h"

int cmd_generate(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "awq-cli generate: not built yet\n");
    return 2;
}
