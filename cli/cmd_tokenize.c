/* cmd_tokenize.c - `awq-cli tokenize`. (placeholder until its issue lands) */
#include <stdio.h>

#include "cli.h"

int cmd_tokenize(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "awq-cli tokenize: not built yet\n");
    return 2;
}
