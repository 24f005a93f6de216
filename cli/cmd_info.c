/* cmd_info.c - `awq-cli info`: loaded backends, their devices, skipped plugins. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int cmd_info(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--verbose"))
            cli_verbosity++;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: awq-cli info [-v]\n\nLists backends, devices and skipped plugins.\n");
            return 0;
        } else {
            fprintf(stderr, "awq-cli info: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    awq_runtime *rt = cli_runtime(0);
    if (!rt) return 1;
    printf("awq %s\n\ndevices:\n", awq_version());
    int32_t n = awq_runtime_device_count(rt);
    for (int32_t i = 0; i < n; i++) {
        awq_device_desc d;
        if (awq_runtime_device_get(rt, i, &d) != AWQ_OK) continue;
        printf("  %s:%d  %s", d.backend, d.index, d.name);
        if (d.memory_bytes > 0) printf("  (%.1f GiB)", (double)d.memory_bytes / (1 << 30));
        printf("\n");
        char fb[2048];
        if (cli_verbosity > 0 && awq_runtime_device_fallbacks(rt, i, fb, sizeof fb) == AWQ_OK)
            printf("      falls back for: %s\n", fb[0] ? fb : "nothing (every optional op runs here)");
    }
    int32_t ns = awq_runtime_skipped_count(rt);
    printf("\nskipped plugins:%s\n", ns ? "" : " none");
    for (int32_t i = 0; i < ns; i++) printf("  %s\n", awq_runtime_skipped_get(rt, i));
    awq_runtime_destroy(rt);
    return 0;
}
