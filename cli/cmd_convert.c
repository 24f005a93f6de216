/* cmd_convert.c - `awq-cli convert`. (placeholder until its issue lands) */
#include <stdio.h>

#include "cli.h"

int cmd_convert(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "awq-cli convert: not built yet\n");
    return 2;
}
