#!/usr/bin/env bash
# backends_bench.sh - backends compared: `cpu` (built-in reference kernels), `cpu-dnnl` (oneDNN 2.6
# plugin) and, when asked for, `opencl` (AWQ_BENCH_BACKENDS="cpu cpu-dnnl opencl"). A benchmark, not a test: it prints numbers and asserts nothing.
#
#  1. op speed on synthetic data (build/bin/awq-bench-ops): f32 matmul n=4096 in=576 out=1536
#     (the quantizer's shape), f16 matmul and W4A16 at prefill (512) and decode (1) sizes, gram,
#     causal attention over 512 tokens - on 1 thread (stable) and on all threads;
#  2. SmolLM2-135M-Instruct prefill (512 tokens) / decode (64 tokens) tok/s, fp16 and AWQ g64
#     (`awq-cli bench`);
#  3. with AWQ_BENCH_QUANT=1: full AWQ quantization with the default calibration (128 x 512,
#     g64) on each backend (`awq-cli quantize`; ~10-30 min each on 2 cores). Its output is also
#     the AWQ model of step 2; otherwise step 2 uses $AWQ_BENCH_AWQ_MODEL or a quick 16-sample
#     quantization.
#
# env: AWQ_BENCH_BACKENDS (default "cpu cpu-dnnl"), AWQ_BENCH_QUANT, AWQ_BENCH_AWQ_MODEL,
#      AWQ_BENCH_OUT (default $AWQ_CACHE_DIR/cpu-bench). The second vCPU of the build VM is noisy
#      (+-40 %): compare the 1-thread op numbers, and rerun when another job shares the machine.
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"

BACKENDS="${AWQ_BENCH_BACKENDS:-cpu cpu-dnnl}"
OUT="${AWQ_BENCH_OUT:-$AWQ_CACHE_DIR/cpu-bench}"
OPS="$AWQ_BUILD/bin/awq-bench-ops"
mkdir -p "$OUT"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-active}"

awq_build
FP16="$("$AWQ_ROOT/scripts/fetch_model.sh")"

echo "== machine"
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') x $(nproc) threads"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
"$AWQ_CLI" info | sed -n '/devices:/,/^$/p'

echo "== ops (best of 3 runs of >= 1 s each)"
best() { # prints the fastest of 3 runs
  for _ in 1 2 3; do "$OPS" "$@"; done | awk '{print $(NF-1), $0}' | sort -rn | head -1 | cut -d' ' -f2-
}
for threads in 1 "$(nproc)"; do
  echo "-- $threads thread(s)"
  for be in $BACKENDS; do
    OMP_NUM_THREADS=$threads best "$be" matmul 4096 576 1536 f32
    OMP_NUM_THREADS=$threads best "$be" matmul 512 576 1536 f16
    OMP_NUM_THREADS=$threads best "$be" matmul 1 576 1536 f16
    OMP_NUM_THREADS=$threads best "$be" w4a16 512 576 1536
    OMP_NUM_THREADS=$threads best "$be" w4a16 1 576 1536
    OMP_NUM_THREADS=$threads best "$be" w4a16 1 4096 4096
    OMP_NUM_THREADS=$threads best "$be" gram 4096 1536 0
    OMP_NUM_THREADS=$threads best "$be" attention 512 64 9
  done
done

quant() { # backend out-dir extra-args...
  local be="$1" dir="$2"; shift 2
  "$AWQ_CLI" quantize "$FP16" "$dir" --group-size 64 --backend "$be" --force "$@" 2> "$dir.log" ||
    { tail -5 "$dir.log"; return 1; }
  grep -E "wrote" "$dir.log" | sed "s/^/  $be: /"
}

AWQ_MODEL="${AWQ_BENCH_AWQ_MODEL:-}"
if [ "${AWQ_BENCH_QUANT:-0}" = 1 ]; then
  echo "== full AWQ quantization (default calibration, g64)"
  for be in $BACKENDS; do
    quant "$be" "$OUT/awq-$be"
    AWQ_MODEL="${AWQ_MODEL:-$OUT/awq-$be}"
  done
elif [ -z "$AWQ_MODEL" ]; then
  echo "== quick AWQ model for the speed runs (16 calibration samples)"
  quant "$(echo $BACKENDS | awk '{print $NF}')" "$OUT/awq-quick" --calib-samples 16
  AWQ_MODEL="$OUT/awq-quick"
fi

echo "== SmolLM2-135M-Instruct: prefill 512 / decode 64 tokens (best of 3), all threads"
for be in $BACKENDS; do
  for m in "$FP16" "$AWQ_MODEL"; do
    "$AWQ_CLI" bench "$m" --backend "$be" -p 512 -n 64 -r 3 2>&1 | tail -1 | sed "s/^/  /"
  done
done
