#!/bin/sh
# tokenize_bench.sh - tokenization speed of the whole WikiText-2 test file on one core.
# A benchmark, not a test: it prints times and asserts nothing.
#
# usage: bench/tokenize_bench.sh [BUILD_DIR] [TOKENIZER_DIR_OR_GGUF ...]
#   default tokenizers: the Llama 3 and Qwen3 tokenizer.json files in ../shared/data.
# Each line: tokenizer, tokens, encode seconds (first pass: cold word cache), MB/s, load seconds.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
[ $# -gt 0 ] && shift
data=${AWQ_SHARED_DATA:-$here/../shared/data}
text=$data/wikitext-2/wiki.test.raw
cli=$build/bin/awq-cli
[ -x "$cli" ] || { echo "no $cli: build first (cmake --build build)" >&2; exit 1; }
if [ $# -eq 0 ]; then
    set -- "$data/tokenizers/llama3" "$data/tokenizers/qwen3"
fi
pin=""
command -v taskset >/dev/null 2>&1 && pin="taskset -c 0"
printf '%-40s %9s %9s %8s %7s\n' tokenizer tokens encode_s MB/s load_s
for tok in "$@"; do
    for run in 1 2 3; do
        # awq-cli tokenize -v prints: load X s; encode N bytes -> M tokens in T s (R MB/s, ...)
        line=$($pin "$cli" tokenize "$tok" -f "$text" --no-bos --count -v 2>&1 >/dev/null | grep 'encode')
        echo "$line" | sed -n 's/.*load \([0-9.]*\) s; encode [0-9]* bytes -> \([0-9]*\) tokens in \([0-9.]*\) s (\([0-9.]*\) MB\/s.*/\2 \3 \4 \1/p'
    done | sort -k2 -n | head -1 | while read -r n t r l; do
        printf '%-40s %9s %9s %8s %7s\n' "$(basename "$tok")" "$n" "$t" "$r" "$l"
    done
done
