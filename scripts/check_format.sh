#!/usr/bin/env bash
# check_format.sh - every C/C++/CUDA source of the tree formatted by .clang-format (clang-format
# from Debian, installed by setup.sh). No arguments: check, list the files that differ, exit 1
# if any. --fix: rewrite them in place.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mapfile -t files < <(git ls-files 'core/*' 'quant/*' 'cli/*' 'backend_cpu/*' 'backend_opencl/*' \
    'backend_cuda/*' 'tests/*' 'bench/*' 'examples/*' 'tools/*' |
    grep -E '\.(c|h|cc|cpp|cu|cuh)$' | grep -v '^tests/data/')
if [ "${1:-}" = "--fix" ]; then
  clang-format -i "${files[@]}"
  exit 0
fi
bad=0
for f in "${files[@]}"; do
  if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
    echo "check_format: $f is not formatted (scripts/check_format.sh --fix)"
    bad=1
  fi
done
[ "$bad" = 0 ] && echo "check_format: ${#files[@]} files formatted"
exit "$bad"
