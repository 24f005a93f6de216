#!/usr/bin/env bash
# quantize_bench.sh - the full-size AWQ result for the README: SmolLM2-135M-Instruct (the dequantized
# Q4_1 GGUF as the fp16 baseline), default calibration (128 samples x 512 tokens, WikiText-2
# validation), group size 64. Prints fp16 / RTN / AWQ WikiText-2 perplexity (ctx 2048, whole test
# file), quantization wall time, peak RSS and search FLOPs, with the machine it ran on.
# A benchmark, not a test: nothing is asserted. Takes a while on 2 cores.
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"

CHUNKS="${AWQ_BENCH_CHUNKS:-0}"          # 0 = the whole test file
BACKEND="${AWQ_BENCH_BACKEND:-auto}"
WIKI="${AWQ_WIKI_TEST:-$AWQ_SHARED_DATA/wikitext-2/wiki.test.raw}"
OUT="${AWQ_BENCH_OUT:-$AWQ_CACHE_DIR/bench}"
mkdir -p "$OUT"

awq_build
FP16="$("$AWQ_ROOT/scripts/fetch_model.sh")"

echo "== machine"
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') x $(nproc) threads"
echo "mem: $(free -g | awk '/Mem:/{print $2}') GiB"
"$AWQ_CLI" info | sed -n '/devices:/,/^$/p'

quant() { # name method extra-args...
  local name="$1" method="$2"; shift 2
  "$AWQ_CLI" quantize "$FP16" "$OUT/$name" --method "$method" --group-size 64 \
      --backend "$BACKEND" --force "$@" 2> "$OUT/$name.log" || { cat "$OUT/$name.log"; exit 1; }
  # the CLI reports wall time, search FLOPs and peak RSS itself
  grep -E "wrote|plan:|calibration:" "$OUT/$name.log" | sed 's/^/  /'
}

echo "== quantize (g64)"
echo "RTN:"; quant rtn rtn
echo "AWQ:"; quant awq awq

echo "== WikiText-2 perplexity (ctx 2048, ${CHUNKS:-all} chunks)"
for m in "$FP16" "$OUT/rtn" "$OUT/awq"; do
  r="$("$AWQ_CLI" eval "$m" --ppl "$WIKI" --ctx 2048 --max-chunks "$CHUNKS" --backend "$BACKEND" --json 2>/dev/null)"
  echo "$(basename "$m"): $r"
done
