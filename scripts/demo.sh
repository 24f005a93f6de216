#!/usr/bin/env bash
# demo.sh - README command (a): set up, build, fetch the default model, and run the main job on
# it: convert (GGUF -> HF fp16) -> quantize (AWQ 4-bit, g64) -> generate.
# The demo calibrates on 32 samples to finish in minutes; `awq-cli quantize` defaults to 128.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

"$AWQ_ROOT/scripts/setup.sh"
awq_build
MODEL="$("$AWQ_ROOT/scripts/fetch_model.sh")"
PROMPT="${AWQ_DEMO_PROMPT:-The three most important things to know about the ocean are}"

OUT="$AWQ_CACHE_DIR/SmolLM2-135M-Instruct-awq-g64"
if [ ! -f "$OUT/config.json" ]; then
  echo "== awq-cli quantize $MODEL $OUT --group-size 64 =="
  "$AWQ_CLI" quantize "$MODEL" "$OUT" --group-size 64 --calib-samples "${AWQ_DEMO_SAMPLES:-32}" --force
fi
MODEL="$OUT"
echo
echo "== awq-cli generate $MODEL (greedy) =="
"$AWQ_CLI" generate "$MODEL" -p "$PROMPT" -n 64 --temp 0
echo
echo "== awq-cli generate $MODEL --chat (greedy) =="
"$AWQ_CLI" generate "$MODEL" --chat -p "${AWQ_DEMO_CHAT:-Give me three facts about the ocean.}" -n 96 --temp 0
