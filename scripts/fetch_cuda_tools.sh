#!/usr/bin/env bash
# fetch_cuda_tools.sh - cuobjdump and nvdisasm for the CUDA SASS gates (tests/cuda/gates.sh). The
# CUDA toolkit on the build machines has nvcc/ptxas but not these two; NVIDIA publishes them on
# PyPI. The wheels are downloaded once into $AWQ_CACHE_DIR/cuda-tools and unpacked (no pip
# install, nothing outside the cache). Prints the directory holding the two programs.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

VERSION=13.5.37
DEST="$AWQ_CACHE_DIR/cuda-tools-$VERSION"
if [ -x "$DEST/bin/cuobjdump" ] && [ -x "$DEST/bin/nvdisasm" ]; then
  echo "$DEST/bin"
  exit 0
fi
mkdir -p "$DEST/wheels" "$DEST/bin"
echo "fetch_cuda_tools: downloading nvidia-cuda-cuobjdump and nvidia-cuda-nvdisasm $VERSION from PyPI" >&2
python3 -m pip download --quiet --no-deps --dest "$DEST/wheels" \
  "nvidia-cuda-cuobjdump==$VERSION" "nvidia-cuda-nvdisasm==$VERSION" >&2
for w in "$DEST"/wheels/*.whl; do
  python3 - "$w" "$DEST/bin" <<'PY'
import os, sys, zipfile
whl, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as z:
    for n in z.namelist():
        base = os.path.basename(n)
        if "/bin/" in n and base in ("cuobjdump", "nvdisasm"):
            with z.open(n) as src, open(os.path.join(dest, base), "wb") as out:
                out.write(src.read())
            os.chmod(os.path.join(dest, base), 0o755)
PY
done
if [ ! -x "$DEST/bin/cuobjdump" ] || [ ! -x "$DEST/bin/nvdisasm" ]; then
  echo "fetch_cuda_tools: the wheels did not contain bin/cuobjdump and bin/nvdisasm" >&2
  exit 1
fi
echo "$DEST/bin"
