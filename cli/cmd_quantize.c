/* cmd_quantize.c - `awq-cli quantize`. (placeholder until its issue lands) */
#include <stdio.h>

#include "cli.h"

int cmd_quantize(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "awq-cli quantize: not built yet\n");
    return 2;
}
