#!/usr/bin/env bash
# gpu-check.sh - for the first machine with an NVIDIA GPU: builds awq with the CUDA plugin, runs the
# op tests on the device (every kernel family forced in turn), compute-sanitizer (memcheck,
# racecheck, synccheck), the end-to-end comparison with the cpu backend on SmolLM2 (greedy tokens,
# perplexity, a quantization run), and a benchmark: W4A16 GEMV GB/s as a share of the device's
# measured copy bandwidth, Tensor-Core W4A16 GEMM TFLOP/s next to cuBLAS fp16 on the same shapes,
# and SmolLM2 decode tok/s. Ends with "N passed, N failed". Aimed at < 10 minutes.
#
# env: AWQ_SKIP_SETUP=1 (no apt: the dependencies are already there), AWQ_GPU_CHECK_QUICK=1 (skip
# the quantization run and the sanitizers), AWQ_BUILD (default build-gpu).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
set +e
AWQ_BUILD="${AWQ_BUILD_GPU:-$AWQ_ROOT/build-gpu}"
AWQ_CLI="$AWQ_BUILD/bin/awq-cli"
mkdir -p "$AWQ_BUILD"
PASS=0
FAIL=0
T0=$(date +%s)
step() { # step NAME COMMAND... : runs, counts, keeps the log
  local name="$1"; shift
  local log="$AWQ_BUILD/gpu-check-${name// /_}.log"
  local t=$(date +%s)
  if "$@" >"$log" 2>&1; then
    PASS=$((PASS + 1)); echo "PASS $name ($(( $(date +%s) - t )) s)"
  else
    FAIL=$((FAIL + 1)); echo "FAIL $name ($(( $(date +%s) - t )) s) -- last lines of $log:"; tail -n 25 "$log" | sed 's/^/     /'
  fi
}

echo "== machine"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.memory --format=csv 2>/dev/null || echo "nvidia-smi not found"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') x $(nproc)"

[ "${AWQ_SKIP_SETUP:-0}" = 1 ] || "$AWQ_ROOT/scripts/setup.sh" >/dev/null
step "build" awq_build -DAWQ_CUDA=ON
if [ ! -f "$AWQ_BUILD/bin/libawq-backend-cuda.so" ]; then
  echo "the cuda plugin was not built (is nvcc on PATH?)"; echo "$PASS passed, $((FAIL + 1)) failed"; exit 1
fi
step "cuda device visible (awq-cli info)" sh -c "'$AWQ_CLI' info | tee /dev/stderr | grep -q '^ *cuda:0'"
"$AWQ_CLI" info | sed -n '/devices:/,/^$/p'
export AWQ_BACKEND_PATH="$AWQ_BUILD/bin" AWQ_TEST_OPS_BACKEND=cuda
OPS_TEST="$AWQ_BUILD/bin/test_ops"
GEMM="matmul,matmul_w4a16,matmul_w4a16_shapes,matmul_w4a16_exact,gram"

echo "== op tests on the device vs the cpu reference"
step "ops: every op, automatic dispatch" "$OPS_TEST"
for f in gemv tc dequant; do step "ops: W4A16 forced to $f" env AWQ_CUDA_W4=$f AWQ_TEST_OPS_ONLY=$GEMM "$OPS_TEST"; done
for f in gemv simt blas; do step "ops: dense forced to $f" env AWQ_CUDA_DENSE=$f AWQ_TEST_OPS_ONLY=$GEMM "$OPS_TEST"; done
step "ops: attention forced to prefill" env AWQ_CUDA_ATTN=prefill AWQ_TEST_OPS_ONLY=attention "$OPS_TEST"
step "ops: attention forced to decode" env AWQ_CUDA_ATTN=decode AWQ_TEST_OPS_ONLY=attention "$OPS_TEST"

if [ "${AWQ_GPU_CHECK_QUICK:-0}" != 1 ]; then
  SAN="$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)"
  if [ -n "$SAN" ]; then
    echo "== compute-sanitizer (op test subset)"
    SUB="matmul_w4a16_shapes,matmul_w4a16_exact,attention,rmsnorm,softmax,fake_quant,quantize_w4,clip_search,reduce,scalar"
    for tool in memcheck racecheck synccheck; do
      step "compute-sanitizer $tool" env AWQ_TEST_OPS_ONLY=$SUB "$SAN" --tool $tool --error-exitcode 1 "$OPS_TEST"
    done
  else
    FAIL=$((FAIL + 1)); echo "FAIL compute-sanitizer not found (install the CUDA toolkit's compute-sanitizer)"
  fi
fi

echo "== end to end vs cpu (SmolLM2-135M AWQ g64)"
export AWQ_TEST_MODEL_DIR="$("$AWQ_ROOT/scripts/fetch_model.sh" 2>/dev/null | tail -1)"
export AWQ_CUDA_E2E_DEVICE=cuda AWQ_REQUIRE_CUDA_EMU=1
if [ "${AWQ_GPU_CHECK_QUICK:-0}" = 1 ]; then export AWQ_CUDA_E2E_LAYERS=2 AWQ_CUDA_E2E_SAMPLES=2; fi
step "e2e: greedy, perplexity, quantization on cuda vs cpu" "$AWQ_BUILD/bin/test_cuda_e2e"
grep -E "identical|ppl on|checkpoint made|quantized" "$AWQ_BUILD/gpu-check-e2e:_greedy,_perplexity,_quantization_on_cuda_vs_cpu.log" 2>/dev/null | sed 's/^/   /'

echo "== benchmark (awq-bench-ops; best of 3)"
B="$AWQ_BUILD/bin/awq-bench-ops"
best() { for _ in 1 2 3; do "$B" "$@"; done | awk '{print $(NF-1), $0}' | sort -rn | head -1 | cut -d' ' -f2-; }
COPY=$(best cuda copy 65536 4096 1 x 1)
echo "$COPY"
BW=$(echo "$COPY" | awk '{print $(NF-1)}')
echo "-- W4A16 GEMV (1 token): GB/s and share of the measured copy bandwidth ($BW GB/s)"
for s in "4096 4096" "4096 14336" "14336 4096" "8192 28672"; do
  line=$(best cuda w4a16 1 $s x 1)
  gbs=$(echo "$line" | awk '{print $(NF-1)}')
  echo "$line   $(awk -v a="$gbs" -v b="$BW" 'BEGIN{printf "%.0f%% of copy bandwidth", 100*a/b}')"
done
echo "-- Tensor-Core W4A16 GEMM (AWQ_CUDA_W4=tc) vs cuBLAS fp16 on dequantized weights (matmul f16)"
for m in 16 32 64 128 256; do
  AWQ_CUDA_W4=tc best cuda w4a16 $m 4096 4096 x 1
  best cuda matmul $m 4096 4096 f16 1
done
echo "-- dequantize + cuBLAS above 256 rows"
best cuda w4a16 1024 4096 4096 x 1
echo "== decode tok/s (awq-cli bench)"
AWQ_DIR="$AWQ_CACHE_DIR/SmolLM2-135M-Instruct-awq-g64-gpucheck"
[ -d "$AWQ_DIR" ] || "$AWQ_CLI" quantize "$AWQ_TEST_MODEL_DIR" "$AWQ_DIR" --group-size 64 --calib-samples 16 --backend cuda >/dev/null 2>&1
for g in 1 0; do
  echo "-- AWQ_CUDA_GRAPHS=$g"
  AWQ_CUDA_GRAPHS=$g "$AWQ_CLI" bench "$AWQ_DIR" --backend cuda 2>&1 | tail -4
done
"$AWQ_CLI" bench "$AWQ_TEST_MODEL_DIR" --backend cuda 2>&1 | tail -4

echo
echo "gpu-check: $PASS passed, $FAIL failed ($(( $(date +%s) - T0 )) s)"
[ "$FAIL" = 0 ]
