#!/usr/bin/env bash
# bench_1b.sh - speed, peak memory and quantization time at a size users run, without downloading
# weights: writes a random-weight checkpoint in Llama-3.2-1B's shapes (bench/make_random_model.c;
# SmolLM2's tokenizer, the embedding keeps Llama 3's 128,256 rows), quantizes it with AWQ (a small
# calibration set, below, so that it finishes on 2 cores), then runs `awq-cli bench` on the bf16
# model and on the AWQ model with the cpu and cpu-dnnl backends.
# A benchmark, not a test: nothing is asserted. Random weights make the quality meaningless; the
# speed and memory are those of the real shapes.
#
# Environment (defaults in brackets):
#   AWQ_BENCH_SHAPE     llama-3.2-1b | llama-3-8b | smollm2-135m   [llama-3.2-1b]
#   AWQ_BENCH_DTYPE     bf16 | f16                                   [bf16]
#   AWQ_BENCH_CALIB     "--calib-samples N --calib-seqlen L"         [16 x 128: 3 blocks of 128 tokens]
#   AWQ_BENCH_GS        group size                                   [128]
#   AWQ_BENCH_PROMPT / AWQ_BENCH_GEN / AWQ_BENCH_REPS   bench -p/-n/-r [128 / 32 / 2]
#   AWQ_BENCH_BACKENDS  backends to bench                            ["cpu cpu-dnnl"]
#   AWQ_BENCH_OUT       where the models go                          [$AWQ_CACHE_DIR/bench-<shape>]
#   AWQ_BENCH_SKIP_QUANT=1  reuse an existing AWQ model
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"

SHAPE="${AWQ_BENCH_SHAPE:-llama-3.2-1b}"
DTYPE="${AWQ_BENCH_DTYPE:-bf16}"
CALIB="${AWQ_BENCH_CALIB:---calib-samples 16 --calib-seqlen 128}"
GS="${AWQ_BENCH_GS:-128}"
PROMPT="${AWQ_BENCH_PROMPT:-128}"
GEN="${AWQ_BENCH_GEN:-32}"
REPS="${AWQ_BENCH_REPS:-2}"
BACKENDS="${AWQ_BENCH_BACKENDS:-cpu cpu-dnnl}"
OUT="${AWQ_BENCH_OUT:-$AWQ_CACHE_DIR/bench-$SHAPE}"
MODEL="$OUT/$SHAPE-random-$DTYPE"
QMODEL="$OUT/$SHAPE-random-awq-g$GS"
mkdir -p "$OUT"

awq_build > /dev/null
GEN_TOOL="$AWQ_BUILD/bin/awq-make-random-model"
TOK="${AWQ_TEST_MODEL_DIR:-}"
[ -n "$TOK" ] || TOK="$("$AWQ_ROOT/scripts/fetch_model.sh")"

echo "== machine"
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') x $(nproc) threads"
echo "mem: $(free -g | awk '/Mem:/{print $2}') GiB; load average: $(cut -d' ' -f1-3 /proc/loadavg)"

echo "== model: $SHAPE ($DTYPE, random weights) in $MODEL"
if [ ! -f "$MODEL/config.json" ]; then
  case "$SHAPE" in llama-3-8b) need=17;; llama-3.2-1b) need=3;; *) need=1;; esac
  avail=$(df -BG --output=avail "$OUT" | tail -1 | tr -dc 0-9)
  if [ "$avail" -lt $((need * 2 + 2)) ]; then
    echo "not enough disk in $OUT: ${avail} GB free, ~$((need * 2)) GB needed (model + AWQ copy)"; exit 1
  fi
  /usr/bin/time -f "generated in %e s" "$GEN_TOOL" --shape "$SHAPE" --dtype "$DTYPE" --tokenizer "$TOK" "$MODEL.tmp"
  rm -rf "$MODEL" && mv "$MODEL.tmp" "$MODEL"
fi
du -sh "$MODEL" | sed 's/^/size: /'

echo "== quantize (AWQ, g$GS, $CALIB, backend cpu-dnnl)"
if [ "${AWQ_BENCH_SKIP_QUANT:-0}" != 1 ] || [ ! -f "$QMODEL/config.json" ]; then
  # /usr/bin/time: wall and the peak RSS of the whole process; -v: the time per phase
  /usr/bin/time -f "time: wall %e s, peak RSS %M KiB" "$AWQ_CLI" quantize "$MODEL" "$QMODEL" \
      --group-size "$GS" $CALIB --backend cpu-dnnl --force -v 2> "$OUT/quantize.log" \
      || { tail -20 "$OUT/quantize.log"; exit 1; }
  grep -E "calibration:|plan:|wrote|time:" "$OUT/quantize.log" | sed 's/^/  /'
  sed -n '/time per phase/,/scale search, all groups/p' "$OUT/quantize.log" | sed 's/^awq: debug: /  /'
fi
du -sh "$QMODEL" | sed 's/^/size: /'

echo "== bench (-p $PROMPT -n $GEN, best of $REPS)"
for b in $BACKENDS; do
  for m in "$MODEL" "$QMODEL"; do
    echo "-- $(basename "$m") on $b"
    "$AWQ_CLI" bench "$m" -p "$PROMPT" -n "$GEN" -r "$REPS" --backend "$b" 2>&1 | grep -v '^awq: info' || true
  done
done
