/* cmd_bench.c - `awq-cli bench`. (placeholder until its issue lands) */
#include <stdio.h>

#include "cli.h"

int cmd_bench(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "awq-cli bench: not built yet\n");
    return 2;
}
