/* bwprobe.h - measured read bandwidth of this machine (cli only). */
#ifndef AWQ_CLI_BWPROBE_H
#define AWQ_CLI_BWPROBE_H
#include <stdbool.h>
#include <stddef.h>

/* Read bandwidth in bytes/s with n_threads threads streaming a 512 MiB buffer (best of several
 * passes), from ~/.cache/awq/bandwidth-<cpu model>-t<threads>.txt unless remeasure or absent
 * (then measured, about a second, and written there; announced on stderr when announce).
 * cpu receives the CPU model name; *cached tells whether the value came from the cache. 0 when
 * it could not be measured. */
double bwprobe_get(int n_threads, bool remeasure, bool announce, char *cpu, size_t cpu_cap, bool *cached);

#endif
