#!/usr/bin/env bash
# serve_bench.sh - batched decoding: decode throughput with 4 sequences decoded together (one
# forward pass per step, `awq-cli bench --parallel 4`) against 1, and the same through the
# server: 16 greedy requests of 64 tokens from 4 concurrent curl clients against `awq-cli serve
# --parallel 4` and `--parallel 1`. A benchmark, not a test: it prints numbers and asserts nothing.
#
# env: AWQ_BENCH_AWQ_MODEL (an AWQ checkpoint; default: RTN g64 of SmolLM2 made here in ~3 s),
#      AWQ_BENCH_BACKENDS (default "cpu cpu-dnnl"), AWQ_BENCH_THREADS (default: all cores).
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"

BACKENDS="${AWQ_BENCH_BACKENDS:-cpu cpu-dnnl}"
THREADS="${AWQ_BENCH_THREADS:-0}"
CLI="$AWQ_BUILD/bin/awq-cli"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"

awq_build
FP16="$("$AWQ_ROOT/scripts/fetch_model.sh")"
WORK="$(mktemp -d /tmp/awq-serve-bench-XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
MODEL="${AWQ_BENCH_AWQ_MODEL:-}"
if [ -z "$MODEL" ]; then
  MODEL="$WORK/rtn-g64"
  "$CLI" quantize "$FP16" "$MODEL" --group-size 64 --method rtn >/dev/null 2>&1
fi

echo "== machine"
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-) x $(nproc)"
echo "model: $MODEL"

echo "== library: awq-cli bench, prompt 128, 64 decoded tokens per sequence, best of 3"
for be in $BACKENDS; do
  for par in 1 2 4 8; do
    "$CLI" bench "$MODEL" --backend "$be" -t "$THREADS" -p 128 -n 64 -r 3 --parallel "$par" --json 2>/dev/null |
      python3 -c "import json,sys; r=json.load(sys.stdin); print(f\"{'$be':9s} parallel {r['parallel']}: decode {r['decode_tok_s']:7.1f} tok/s (all sequences)\")"
  done
done

echo "== server: 16 requests x 64 tokens from 4 concurrent clients"
body='{"prompt": "Once upon a time", "max_tokens": 64, "temperature": 0, "ignore_eos": true}'
for par in 1 4; do
  "$CLI" serve "$MODEL" --port 0 --parallel "$par" --ctx-size 512 --backend cpu -t "$THREADS" 2>"$WORK/serve.log" &
  pid=$!
  for i in $(seq 100); do grep -q 'listening on' "$WORK/serve.log" && break; sleep 0.2; done
  port=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$WORK/serve.log" | grep -o '[0-9]*$')
  t0=$(date +%s.%N)
  clients=()
  for c in 1 2 3 4; do
    (for r in 1 2 3 4; do curl -s "http://127.0.0.1:$port/v1/completions" -d "$body" >/dev/null; done) &
    clients+=($!)
  done
  wait "${clients[@]}"
  t1=$(date +%s.%N)
  kill -INT "$pid"; wait "$pid"
  python3 -c "print(f'serve --parallel $par: 1024 tokens in {$t1-$t0:.1f} s = {1024/($t1-$t0):.1f} tok/s')"
  grep 'decode:' "$WORK/serve.log" | tail -1
done
