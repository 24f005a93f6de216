#!/usr/bin/env bash
# Installs every system dependency of awq from Debian packages. Idempotent: packages already
# present are skipped, so running it again is cheap. Needs root (or sudo).
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config git unzip ca-certificates python3-pip
  libcjson-dev libpcre2-dev libutf8proc-dev
  ocl-icd-opencl-dev opencl-headers ocl-icd-libopencl1 clinfo pocl-opencl-icd
  libclblast-dev libdnnl-dev
  libmicrohttpd-dev libedit-dev tmux curl doxygen
  clang libclang-rt-dev libomp-dev clang-format
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PKGS[@]} packages already installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
