#!/usr/bin/env python3
"""Independent reference for the end-to-end tests: runs SmolLM2-135M-Instruct straight from its
GGUF file with numpy in float64 (llama.cpp's conventions: GGUF tensor layout, interleaved-pair
RoPE on the permuted q/k rows, dequantization by the `gguf` package) and writes golden logits and
greedy continuations to tests/data/smollm2_ref.json.

It shares no code with awq: not the GGUF reader, not the converter (q/k un-permutation), not the
tokenizer (prompts are given as token strings looked up in the GGUF vocabulary), not the forward
pass. Needs: pip install numpy gguf. Not run by CI; its output is committed.

usage: tools/ref_smollm2.py MODEL.gguf OUT.json
"""
import json
import sys

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize


def load(path):
    r = GGUFReader(path)
    kv = {}
    for k, f in r.fields.items():
        try:
            kv[k] = f.contents()
        except Exception:
            pass
    w = {}
    for t in r.tensors:
        a = dequantize(t.data, t.tensor_type).astype(np.float64)
        w[t.name] = a.reshape([int(x) for x in reversed(t.shape)])  # numpy: outermost first
    return kv, w


def rmsnorm(x, g, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * g


def rope_interleaved(x, pos, base):
    # x: (T, H, hd); llama.cpp "normal" rope: pairs (2i, 2i+1)
    T, H, hd = x.shape
    i = np.arange(hd // 2)
    inv = base ** (-2.0 * i / hd)
    th = pos[:, None] * inv[None, :]  # (T, hd/2)
    c, s = np.cos(th)[:, None, :], np.sin(th)[:, None, :]
    a, b = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = a * c - b * s
    out[..., 1::2] = a * s + b * c
    return out


def forward(kv, w, ids):
    L = kv["llama.block_count"]
    H = kv["llama.attention.head_count"]
    Hkv = kv["llama.attention.head_count_kv"]
    eps = kv["llama.attention.layer_norm_rms_epsilon"]
    base = kv["llama.rope.freq_base"]
    x = w["token_embd.weight"][ids]
    T, d = x.shape
    hd = d // H
    pos = np.arange(T, dtype=np.float64)
    mask = np.triu(np.full((T, T), -np.inf), 1)
    for l in range(L):
        p = f"blk.{l}."
        h = rmsnorm(x, w[p + "attn_norm.weight"], eps)
        q = (h @ w[p + "attn_q.weight"].T).reshape(T, H, hd)
        k = (h @ w[p + "attn_k.weight"].T).reshape(T, Hkv, hd)
        v = (h @ w[p + "attn_v.weight"].T).reshape(T, Hkv, hd)
        q, k = rope_interleaved(q, pos, base), rope_interleaved(k, pos, base)
        out = np.empty((T, H, hd))
        for hh in range(H):
            g = hh // (H // Hkv)
            sc = q[:, hh, :] @ k[:, g, :].T / np.sqrt(hd) + mask
            sc = np.exp(sc - sc.max(axis=1, keepdims=True))
            sc /= sc.sum(axis=1, keepdims=True)
            out[:, hh, :] = sc @ v[:, g, :]
        x = x + out.reshape(T, d) @ w[p + "attn_output.weight"].T
        h = rmsnorm(x, w[p + "ffn_norm.weight"], eps)
        gt = h @ w[p + "ffn_gate.weight"].T
        up = h @ w[p + "ffn_up.weight"].T
        x = x + (gt / (1 + np.exp(-gt)) * up) @ w[p + "ffn_down.weight"].T
    x = rmsnorm(x, w["output_norm.weight"], eps)
    head = w.get("output.weight", w["token_embd.weight"])
    return x @ head.T


def main():
    kv, w = load(sys.argv[1])
    vocab = kv["tokenizer.ggml.tokens"]
    index = {t: i for i, t in enumerate(vocab)}
    prompts = [
        ["The", "Ġcapital", "Ġof", "ĠFrance", "Ġis"],
        ["What", "Ġis", "Ġthe", "Ġlargest", "Ġplanet", "Ġin", "Ġthe", "Ġsolar", "Ġsystem", "?"],
        ["Once", "Ġupon", "Ġa", "Ġtime", ",", "Ġthere", "Ġwas", "Ġa"],
    ]
    out = {"model": "SmolLM2-135M-Instruct.Q4_1.gguf", "cases": []}
    for toks in prompts:
        ids = [index[t] for t in toks]
        logits = forward(kv, w, np.array(ids))
        last = logits[-1]
        top = np.argsort(-last)[:20]
        lse = np.log(np.exp(logits - logits.max(axis=1, keepdims=True)).sum(axis=1)) + logits.max(axis=1)
        nll = float(sum(lse[i] - logits[i, ids[i + 1]] for i in range(len(ids) - 1)))
        gen = list(ids)
        for _ in range(16):
            gen.append(int(np.argmax(forward(kv, w, np.array(gen))[-1])))
        out["cases"].append({
            "tokens": toks, "ids": ids,
            "top_ids": [int(i) for i in top], "top_logits": [float(last[i]) for i in top],
            "prompt_nll_sum": nll, "greedy": gen[len(ids):],
            "greedy_text": "".join(vocab[i] for i in gen[len(ids):]),
        })
        print(toks, "->", out["cases"][-1]["greedy_text"], file=sys.stderr)
    with open(sys.argv[2], "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
