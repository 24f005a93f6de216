# common.sh - sourced by the other scripts: paths and the build step.
set -euo pipefail
AWQ_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
AWQ_BUILD="${AWQ_BUILD:-$AWQ_ROOT/build}"
AWQ_CACHE_DIR="${AWQ_CACHE_DIR:-$HOME/.cache/awq}"
AWQ_CLI="$AWQ_BUILD/bin/awq-cli"
export AWQ_CACHE_DIR

# The shared data (WikiText-2, tokenizer test vectors): $AWQ_SHARED_DATA, else ../shared/data
# beside the checkout, else /work/shared/data.
if [ -z "${AWQ_SHARED_DATA:-}" ]; then
  for d in "$AWQ_ROOT/../shared/data" /work/shared/data; do
    if [ -d "$d/wikitext-2" ]; then AWQ_SHARED_DATA="$(cd "$d" && pwd)"; break; fi
  done
fi
export AWQ_SHARED_DATA="${AWQ_SHARED_DATA:-}"

awq_build() {
  cmake -S "$AWQ_ROOT" -B "$AWQ_BUILD" -DCMAKE_BUILD_TYPE=Release \
        ${AWQ_SHARED_DATA:+-DAWQ_SHARED_DATA="$AWQ_SHARED_DATA"} "$@" >/dev/null
  cmake --build "$AWQ_BUILD" -j"$(nproc)"
}
