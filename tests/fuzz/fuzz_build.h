/* fuzz_build.h - force-included into every file of the fuzz build (scripts/fuzz.sh). The parsers
 * are what is fuzzed: the cpu kernels take their portable paths, and clang 14, which the fuzz
 * build uses, does not know __builtin_cpu_supports("f16c") (backend_cpu/kernels/convert.c). */
#define __builtin_cpu_supports(feature) 0
