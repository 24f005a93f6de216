#!/usr/bin/env bash
# fuzz.sh [SECONDS] - builds the libFuzzer targets of tests/fuzz (clang, -fsanitize=fuzzer with
# AddressSanitizer + UndefinedBehaviorSanitizer, leak detection on) and runs each for SECONDS
# (default 15), starting from the committed seed corpus tests/fuzz/corpus/<target>/ plus what
# earlier runs in the same build directory found. Prints executions and coverage per target.
#
# A crash, leak, timeout (> 10 s for one input) or out-of-memory (> 2 GiB) stops that target; its
# input is kept in $AWQ_FUZZ_BUILD/fuzz/<target>/artifacts/ and the script exits 1. Once fixed,
# commit the input as tests/fuzz/regressions/<target>/<name>: test_fuzz_replay replays it in
# every ctest run. Replay one input:  $AWQ_FUZZ_BUILD/bin/fuzz_<target> FILE
#
# Environment: AWQ_FUZZ_BUILD (build directory, default build-fuzz), AWQ_FUZZ_TARGETS (names,
# default all), AWQ_FUZZ_CC (default clang), AWQ_JOBS (build parallelism, default nproc),
# AWQ_FUZZ_RUNS (stop each target after this many inputs; with AWQ_FUZZ_SEED, libFuzzer's random
# seed, a run is reproducible: CI uses both, so what it tries does not depend on the machine's speed;
# SECONDS then only caps the time).
# Needs the Debian packages clang, libclang-rt-dev (libFuzzer, sanitizer runtimes), libomp-dev.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECS="${1:-15}"
BUILD="${AWQ_FUZZ_BUILD:-$ROOT/build-fuzz}"
CC="${AWQ_FUZZ_CC:-clang}"
JOBS="${AWQ_JOBS:-$(nproc)}"
TARGETS="${AWQ_FUZZ_TARGETS:-safetensors st_index gguf config tokenizer jinja calib server_request}"

if ! command -v "$CC" >/dev/null; then
  echo "fuzz.sh: $CC not found (apt-get install clang libclang-rt-dev libomp-dev)" >&2
  exit 1
fi

FLAGS="-O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined"
FLAGS="$FLAGS -Wno-unknown-warning-option -Wno-pass-failed -include $ROOT/tests/fuzz/fuzz_build.h"
echo "== fuzz.sh: building the targets in $BUILD ($CC, ASan + UBSan) =="
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_C_COMPILER="$CC" -DCMAKE_BUILD_TYPE=Debug \
      -DCMAKE_C_FLAGS="$FLAGS" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
      -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address,undefined" \
      -DAWQ_FUZZ=ON -DAWQ_TESTS=ON -DAWQ_OPENCL=OFF -DAWQ_DNNL=OFF -DAWQ_CUDA=OFF -DAWQ_CUDA_EMU=OFF >/dev/null
if ! cmake --build "$BUILD" -j"$JOBS" --target awq_fuzz_targets >"$BUILD/fuzz-build.log" 2>&1; then
  grep -E 'error' "$BUILD/fuzz-build.log" | head -20 >&2
  echo "fuzz.sh: build failed (log: $BUILD/fuzz-build.log)" >&2
  exit 1
fi

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export AWQ_SOURCE_DIR="$ROOT"

failed=()
summary=()
for t in $TARGETS; do
  dir="$BUILD/fuzz/$t"
  mkdir -p "$dir/corpus" "$dir/artifacts"
  dict=()
  case "$t" in
    jinja) dict=(-dict="$ROOT/tests/fuzz/dict/jinja.dict") ;;
    gguf) ;;
    *) dict=(-dict="$ROOT/tests/fuzz/dict/json.dict") ;;
  esac
  fixed=()
  [ -n "${AWQ_FUZZ_RUNS:-}" ] && fixed+=(-runs="$AWQ_FUZZ_RUNS")
  [ -n "${AWQ_FUZZ_SEED:-}" ] && fixed+=(-seed="$AWQ_FUZZ_SEED")
  echo "== fuzz_$t: ${SECS} s ${fixed[*]} =="
  set +e
  "$BUILD/bin/fuzz_$t" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$dir/artifacts/" "${fixed[@]}" "${dict[@]}" "$dir/corpus" "$ROOT/tests/fuzz/corpus/$t" \
      > "$dir/log" 2>&1
  rc=$?
  set -e
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$dir/log" | grep -o '[0-9]*$' || true)
  last=$(grep -E '^#[0-9]+' "$dir/log" | tail -1 || true)
  cov=$(echo "$last" | grep -o 'cov: [0-9]*' | grep -o '[0-9]*' || true)
  ft=$(echo "$last" | grep -o 'ft: [0-9]*' | grep -o '[0-9]*' || true)
  corp=$(echo "$last" | grep -o 'corp: [0-9]*/[0-9a-zA-Z]*' | cut -d' ' -f2 || true)
  speed=$(grep -o 'exec/s: [0-9]*' "$dir/log" | tail -1 | grep -o '[0-9]*' || true)
  summary+=("$(printf '%-14s %10s execs %8s exec/s  cov %6s  ft %7s  corpus %s' "$t" "${execs:-?}" "${speed:-?}" \
                "${cov:-?}" "${ft:-?}" "${corp:-?}")")
  if [ $rc -ne 0 ]; then
    failed+=("$t")
    echo "fuzz_$t FAILED (exit $rc); last lines of $dir/log:"
    grep -E 'ERROR|SUMMARY|Test unit written|==[0-9]+==' "$dir/log" | head -20 || true
    tail -5 "$dir/log"
  fi
done

echo "== fuzz.sh summary (${SECS} s per target) =="
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz.sh: failures in: ${failed[*]} (inputs in $BUILD/fuzz/<target>/artifacts/; fix, then commit them" \
       "under tests/fuzz/regressions/<target>/)" >&2
  exit 1
fi
echo "fuzz.sh: no crash, leak, timeout or sanitizer report"
