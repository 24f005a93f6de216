#!/usr/bin/env python3
"""Writes tests/data/gguf_blocks.gguf: for each ggml block type awq dequantizes, a tensor `<type>`
of that type (4 x 512 elements: random data quantized by the `gguf` package, or random blocks with
sane fp16 scales for the K-quants, which the package cannot quantize) and a tensor `<type>.ref`
(F32) holding the `gguf` package's own dequantization of it - an implementation independent of
ours. Not run by CI; the output is committed. Needs: pip install numpy gguf.
"""
import sys

import numpy as np
from gguf import GGMLQuantizationType as T, GGUFWriter
from gguf.quants import dequantize, quantize

rng = np.random.default_rng(1234)
rows, cols = 4, 512
out = sys.argv[1] if len(sys.argv) > 1 else "tests/data/gguf_blocks.gguf"
w = GGUFWriter(out, "llama")
w.add_string("test.purpose", "awq GGUF dequantization golden data")
x = rng.standard_normal((rows, cols)).astype(np.float32)


def f16_bytes(v):
    return np.array([v], dtype=np.float16).view(np.uint8)


def k_blocks(t, n_blocks):
    size = {T.Q4_K: 144, T.Q5_K: 176, T.Q6_K: 210}[t]
    b = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    for i in range(n_blocks):
        if t == T.Q6_K:
            b[i, 208:210] = f16_bytes(rng.uniform(0.001, 0.05))
        else:
            b[i, 0:2] = f16_bytes(rng.uniform(0.001, 0.05))
            b[i, 2:4] = f16_bytes(rng.uniform(0.001, 0.05))
    return b


for t in [T.F32, T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.Q4_K, T.Q5_K, T.Q6_K]:
    if t in (T.Q4_K, T.Q5_K, T.Q6_K):
        q = k_blocks(t, rows * cols // 256).reshape(rows, -1)
    elif t == T.F32:
        q = x.copy()
    else:
        q = quantize(x, t)
    ref = dequantize(q, t).astype(np.float32).reshape(rows, cols)
    w.add_tensor(t.name, q, raw_dtype=t)
    w.add_tensor(t.name + ".ref", ref)
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
print("wrote", out)
