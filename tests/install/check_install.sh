#!/usr/bin/env bash
# check_install.sh - an application developer's view of libawq, from a clean state:
#
#   1. copy the source tree, configure (-DAWQ_CUDA=OFF -DAWQ_TESTS=OFF), build, install into a
#      temporary prefix (not the configured one), move that prefix elsewhere, and delete the
#      build tree and the copied sources: the moved prefix is all that is left, so libawq can
#      only find its plugins and data relative to itself;
#   2. build examples/ against the installed prefix twice: with `pkg-config --cflags --libs awq`
#      and with CMake's find_package(awq) (target awq::awq);
#   3. run them: the installed `awq-cli info` and the example list every installed plugin; an
#      AWQ quantization reads the installed calibration corpus and is cancelled from its progress
#      callback (no output left behind); a round-to-nearest quantization of $AWQ_TEST_MODEL_DIR
#      and a few generated tokens from it.
#
# Exit status: 0 passed, 1 failed, 77 skipped (no AWQ_TEST_MODEL_DIR and AWQ_REQUIRE_MODEL != 1).
# Run by ctest (test check_install, label install; tests/install/extra.cmake) or by hand:
#   AWQ_TEST_MODEL_DIR=~/.cache/awq/SmolLM2-135M-Instruct-f16 tests/install/check_install.sh
# Environment: AWQ_INSTALL_CHECK_JOBS (build jobs, default nproc), AWQ_INSTALL_CHECK_KEEP=1 (keep
# the work directory), AWQ_INSTALL_CHECK_GROUP_SIZE (default 64), CC, CXX.
set -euo pipefail

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
MODEL="${AWQ_TEST_MODEL_DIR:-}"
JOBS="${AWQ_INSTALL_CHECK_JOBS:-$(nproc)}"
GS="${AWQ_INSTALL_CHECK_GROUP_SIZE:-64}"
CC="${CC:-cc}"
CXX="${CXX:-c++}"

if [ -z "$MODEL" ] || [ ! -f "$MODEL/config.json" ]; then
  if [ "${AWQ_REQUIRE_MODEL:-0}" = 1 ]; then
    echo "check_install: AWQ_TEST_MODEL_DIR is not a model directory ('$MODEL')" >&2
    exit 1
  fi
  echo "check_install: skipped (set AWQ_TEST_MODEL_DIR to a Hugging Face model directory)"
  exit 77
fi
for tool in cmake pkg-config tar "$CC"; do
  command -v "$tool" >/dev/null || { echo "check_install: '$tool' not found" >&2; exit 1; }
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/awq-install-check.XXXXXX")"
if [ "${AWQ_INSTALL_CHECK_KEEP:-0}" = 1 ]; then
  echo "check_install: work directory $WORK (kept)"
else
  trap 'rm -rf "$WORK"' EXIT
fi
cd "$WORK"
# Only the installed tree may provide plugins: no search path from the caller (ctest sets one).
unset AWQ_BACKEND_PATH
START=$SECONDS
step() { echo "== [$((SECONDS - START)) s] $*"; }
fail() { echo "check_install: FAILED: $*" >&2; exit 1; }

step "copy the source tree"
mkdir src
tar -C "$SRC" --exclude='./build*' --exclude=./.git --exclude=./.cache -cf - . | tar -C src -xf -

step "configure + build (-DAWQ_CUDA=OFF -DAWQ_TESTS=OFF, $JOBS jobs)"
cmake -S src -B build -DCMAKE_BUILD_TYPE=Release -DAWQ_CUDA=OFF -DAWQ_TESTS=OFF -DAWQ_EXAMPLES=ON \
      -DCMAKE_INSTALL_PREFIX="$WORK/configured-prefix" >configure.log 2>&1 ||
  { cat configure.log; fail "configure"; }
cmake --build build -j"$JOBS" >build.log 2>&1 || { tail -50 build.log; fail "build"; }
test -x build/bin/awq-example-quantize && test -x build/bin/awq-example-generate ||
  fail "the in-tree build did not build the examples"

step "install into $WORK/stage, move it to $WORK/prefix, delete the build tree and the sources"
cmake --install build --prefix "$WORK/stage" >install.log 2>&1 || { cat install.log; fail "install"; }
mv stage prefix
cp -r src/examples examples
rm -rf build src
P="$WORK/prefix"
test ! -e "$WORK/configured-prefix" || fail "something was installed into the configured prefix"

PC="$(find "$P" -name awq.pc -path '*/pkgconfig/*' | head -1)"
test -n "$PC" || fail "no awq.pc installed"
export PKG_CONFIG_PATH="$(dirname "$PC")"
LIBDIR="$(pkg-config --variable=libdir awq)"
PLUGINDIR="$(pkg-config --variable=plugindir awq)"
for f in "$P/include/awq.h" "$P/include/awq_backend.h" "$P/include/awq_pack.h" "$LIBDIR/libawq.so" \
         "$LIBDIR/cmake/awq/awqConfig.cmake" "$LIBDIR/cmake/awq/awqConfigVersion.cmake" \
         "$(pkg-config --variable=datadir awq)/calibration/wiki.valid.raw" "$P/bin/awq-cli"; do
  test -e "$f" || fail "not installed: $f"
done
PLUGINS=("$PLUGINDIR"/libawq-backend-*.so)
test -e "${PLUGINS[0]}" || fail "no plugin installed in $PLUGINDIR"
echo "installed: libawq $(pkg-config --modversion awq), soname $(objdump -p "$LIBDIR/libawq.so" 2>/dev/null | awk '/SONAME/ {print $2}'), plugins: ${PLUGINS[*]##*/}"

step "build the examples with pkg-config --cflags --libs awq"
mkdir pc
CFLAGS_AWQ="$(pkg-config --cflags awq)"
LIBS_AWQ="$(pkg-config --libs awq)"
for n in quantize generate; do
  # shellcheck disable=SC2086
  "$CC" -std=c11 -O2 -Wall -Wextra -Werror examples/$n.c $CFLAGS_AWQ $LIBS_AWQ -Wl,-rpath,"$LIBDIR" \
        -o pc/$n || fail "pkg-config build of examples/$n.c"
done
if command -v "$CXX" >/dev/null; then
  # shellcheck disable=SC2086
  "$CXX" -std=c++14 -O2 -Wall -Wextra -Werror examples/embed.cpp $CFLAGS_AWQ $LIBS_AWQ \
         -Wl,-rpath,"$LIBDIR" -o pc/embed || fail "pkg-config build of examples/embed.cpp"
fi

step "build the examples with find_package(awq)"
cmake -S examples -B ex -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$P" >ex-configure.log 2>&1 ||
  { cat ex-configure.log; fail "find_package(awq) configure"; }
grep -- "-- awq " ex-configure.log || true
cmake --build ex -j"$JOBS" >ex-build.log 2>&1 || { cat ex-build.log; fail "find_package(awq) build"; }

step "plugins found relative to the moved prefix"
"$P/bin/awq-cli" info >info.txt 2>&1 || { cat info.txt; fail "awq-cli info"; }
cat info.txt
pc/generate "$MODEL" "Hello" -n 1 >/dev/null 2>devices.txt || { cat devices.txt; fail "generate (device list)"; }
for plugin in "${PLUGINS[@]}"; do
  name="${plugin##*/libawq-backend-}"
  name="${name%.so}"
  # loaded (a device line) or skipped with a reason: either way, found where it was installed
  grep -q "^device $name:" devices.txt || grep -qF "skipped plugin $plugin" devices.txt ||
    grep -qF "skipped plugin $(readlink -f "$plugin")" devices.txt ||
    { cat devices.txt; fail "plugin $name ($plugin) was not found by the example"; }
  grep -q "$name" info.txt || fail "awq-cli info does not mention plugin $name"
done
grep -E "^(device|skipped)" devices.txt

step "AWQ quantization: installed calibration corpus, cancelled from the progress callback"
mkdir out
set +e
pc/quantize "$MODEL" "$WORK/out/q-awq" --group-size "$GS" --cancel-at 0 >q-awq.txt 2>q-awq.err
rc=$?
set -e
cat q-awq.txt
[ $rc -eq 3 ] || { cat q-awq.err; fail "cancelled quantization exited $rc, expected 3"; }
grep -Eq " [1-9][0-9]* calibration blocks" q-awq.txt || fail "no calibration blocks (corpus not found?)"
[ -z "$(ls -A out)" ] || fail "a cancelled quantization left $(ls -A out)"

step "round-to-nearest quantization (find_package build) and generation (pkg-config build)"
ex/awq-example-quantize "$MODEL" "$WORK/q-rtn" --rtn --group-size "$GS" >q-rtn.txt 2>q-rtn.err ||
  { cat q-rtn.txt q-rtn.err; fail "RTN quantization"; }
cat q-rtn.txt
test -f "$WORK/q-rtn/config.json" || fail "no checkpoint written"
grep -q '"quant_method": *"awq"' "$WORK/q-rtn/config.json" || fail "config.json has no AWQ quantization_config"
PROMPT="The capital of France is"
pc/generate "$WORK/q-rtn" "$PROMPT" -n 8 >gen.txt 2>gen.err || { cat gen.txt gen.err; fail "generate"; }
grep -E "^model:" gen.err
cat gen.txt
out="$(tr -d '\n' <gen.txt)"
[ "${#out}" -gt "${#PROMPT}" ] || fail "no text generated"
if [ -x ex/awq-example-embed ]; then
  ex/awq-example-embed "$WORK/q-rtn" -n 8 >embed.txt 2>embed.err || { cat embed.txt embed.err; fail "embed"; }
  cat embed.txt
fi

step "passed"
