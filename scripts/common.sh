# common.sh - sourced by the other scripts: paths and the build step.
set -euo pipefail
AWQ_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
AWQ_BUILD="${AWQ_BUILD:-$AWQ_ROOT/build}"
AWQ_CACHE_DIR="${AWQ_CACHE_DIR:-$HOME/.cache/awq}"
AWQ_CLI="$AWQ_BUILD/bin/awq-cli"
export AWQ_CACHE_DIR

awq_build() {
  cmake -S "$AWQ_ROOT" -B "$AWQ_BUILD" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
  cmake --build "$AWQ_BUILD" -j"$(nproc)"
}
