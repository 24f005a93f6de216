#!/usr/bin/env python3
"""Independent reference for the Gemma 3 end-to-end tests: runs Gemma 3 270M straight from its
GGUF file with numpy in float64, with llama.cpp's conventions (GGUF tensor layout, norm weights
stored as 1 + w, NeoX rotate-half RoPE, 5 sliding-window layers to 1 global one with RoPE bases
10000 / rope.freq_base, GELU-tanh MLP, post-attention and post-feed-forward norms, embeddings
scaled by sqrt(n_embd)), and writes golden logits, greedy continuations and the perplexity of the
first WikiText-2 windows to tests/data/gemma3_ref.json.

It shares no code with awq: not the GGUF reader (the `gguf` package dequantizes), not the
converter, not the tokenizer, not the forward pass. Prompts are given as token strings looked up
in the GGUF vocabulary; the WikiText-2 windows are tokenized by Google's SentencePiece library
rebuilt from the GGUF vocabulary, and ids of each window are recorded so the test can check its
tokenizer produced the same windows. Needs: pip install numpy gguf sentencepiece protobuf.
Not run by CI; its output is committed.

usage: tools/ref_gemma3.py MODEL.gguf wiki.test.raw OUT.json
"""
import json
import sys

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize

CTX = 512       # perplexity window
WINDOWS = 2     # first windows of wiki.test.raw


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


def rope_neox(x, pos, base):
    # x: (T, H, hd); pairs (i, i + hd/2)
    T, H, hd = x.shape
    i = np.arange(hd // 2)
    inv = base ** (-2.0 * i / hd)
    th = pos[:, None] * inv[None, :]
    c, s = np.cos(th)[:, None, :], np.sin(th)[:, None, :]
    a, b = x[..., : hd // 2], x[..., hd // 2:]
    return np.concatenate([a * c - b * s, b * c + a * s], axis=-1)


def gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))


def forward(kv, w, ids):
    L = kv["gemma3.block_count"]
    H = kv["gemma3.attention.head_count"]
    Hkv = kv["gemma3.attention.head_count_kv"]
    hd = kv["gemma3.attention.key_length"]
    eps = kv["gemma3.attention.layer_norm_rms_epsilon"]
    base = kv["gemma3.rope.freq_base"]
    swa = kv["gemma3.attention.sliding_window"]
    x = w["token_embd.weight"][ids] * np.sqrt(kv["gemma3.embedding_length"])
    T = len(ids)
    pos = np.arange(T, dtype=np.float64)
    qi, kj = np.arange(T)[:, None], np.arange(T)[None, :]
    causal = np.where(kj <= qi, 0.0, -np.inf)
    local = np.where((kj <= qi) & (qi - kj < swa), 0.0, -np.inf)
    for l in range(L):
        p = f"blk.{l}."
        is_local = (l + 1) % 6 != 0
        h = rmsnorm(x, w[p + "attn_norm.weight"], eps)
        q = (h @ w[p + "attn_q.weight"].T).reshape(T, H, hd)
        k = (h @ w[p + "attn_k.weight"].T).reshape(T, Hkv, hd)
        v = (h @ w[p + "attn_v.weight"].T).reshape(T, Hkv, hd)
        q = rmsnorm(q, w[p + "attn_q_norm.weight"], eps)
        k = rmsnorm(k, w[p + "attn_k_norm.weight"], eps)
        b = 10000.0 if is_local else base
        q, k = rope_neox(q, pos, b), rope_neox(k, pos, b)
        mask = local if is_local else causal
        out = np.empty((T, H, hd))
        for hh in range(H):
            g = hh // (H // Hkv)
            sc = q[:, hh, :] @ k[:, g, :].T / np.sqrt(hd) + mask
            sc = np.exp(sc - sc.max(axis=1, keepdims=True))
            sc /= sc.sum(axis=1, keepdims=True)
            out[:, hh, :] = sc @ v[:, g, :]
        a = out.reshape(T, H * hd) @ w[p + "attn_output.weight"].T
        x = x + rmsnorm(a, w[p + "post_attention_norm.weight"], eps)
        h = rmsnorm(x, w[p + "ffn_norm.weight"], eps)
        m = (gelu_tanh(h @ w[p + "ffn_gate.weight"].T) * (h @ w[p + "ffn_up.weight"].T)) @ w[p + "ffn_down.weight"].T
        x = x + rmsnorm(m, w[p + "post_ffw_norm.weight"], eps)
    x = rmsnorm(x, w["output_norm.weight"], eps)
    head = w.get("output.weight", w["token_embd.weight"])
    return x @ head.T


def sentencepiece_from_gguf(kv):
    """Google's SentencePiece (BPE, byte fallback, no dummy prefix) rebuilt from the GGUF
    vocabulary: token types share SentencePiece's numbering, scores are the BPE merge order."""
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2 as pb
    m = pb.ModelProto()
    m.trainer_spec.model_type = pb.TrainerSpec.BPE
    m.trainer_spec.byte_fallback = True
    m.trainer_spec.unk_id = kv["tokenizer.ggml.unknown_token_id"]
    m.trainer_spec.bos_id = kv["tokenizer.ggml.bos_token_id"]
    m.trainer_spec.eos_id = kv["tokenizer.ggml.eos_token_id"]
    m.trainer_spec.pad_id = kv["tokenizer.ggml.padding_token_id"]
    m.normalizer_spec.name = "identity"
    m.normalizer_spec.add_dummy_prefix = bool(kv.get("tokenizer.ggml.add_space_prefix", False))
    m.normalizer_spec.remove_extra_whitespaces = False
    m.normalizer_spec.escape_whitespaces = True
    for t, s, ty in zip(kv["tokenizer.ggml.tokens"], kv["tokenizer.ggml.scores"],
                        kv["tokenizer.ggml.token_type"]):
        if t and not t.strip(" "):  # whitespace runs are stored with spaces, SentencePiece has U+2581
            t = "\u2581" * len(t)
        p = m.pieces.add()
        p.piece, p.score, p.type = t, s, ty
    return spm.SentencePieceProcessor(model_proto=m.SerializeToString())


def nll_sum(logits, ids):
    mx = logits.max(axis=1, keepdims=True)
    lse = np.log(np.exp(logits - mx).sum(axis=1)) + mx[:, 0]
    return float(sum(lse[i] - logits[i, ids[i + 1]] for i in range(len(ids) - 1)))


def main():
    kv, w = load(sys.argv[1])
    vocab = kv["tokenizer.ggml.tokens"]
    index = {t: i for i, t in enumerate(vocab)}
    prompts = [
        ["<bos>", "The", "▁capital", "▁of", "▁France", "▁is"],
        ["<bos>", "What", "▁is", "▁the", "▁largest", "▁planet", "▁in", "▁the", "▁solar", "▁system", "?"],
        ["<bos>", "Once", "▁upon", "▁a", "▁time", ",", "▁there", "▁was", "▁a"],
        # a chat turn as Gemma's template renders it (this 270M checkpoint is the pretrained one)
        ["<bos>", "<start_of_turn>", "user", "\n", "What", "▁is", "▁the", "▁capital", "▁of",
         "▁France", "?", "<end_of_turn>", "\n", "<start_of_turn>", "model", "\n"],
    ]
    out = {"model": "gemma-3-270m-q4_k_m.gguf", "cases": []}
    for toks in prompts:
        ids = [index[t] for t in toks]
        logits = forward(kv, w, np.array(ids))
        last = logits[-1]
        top = np.argsort(-last)[:20]
        gen = list(ids)
        for _ in range(16):
            gen.append(int(np.argmax(forward(kv, w, np.array(gen))[-1])))
        out["cases"].append({
            "tokens": toks, "ids": ids,
            "top_ids": [int(i) for i in top], "top_logits": [float(last[i]) for i in top],
            "prompt_nll_sum": nll_sum(logits, ids), "greedy": gen[len(ids):],
            "greedy_text": "".join(vocab[i] for i in gen[len(ids):]).replace("▁", " "),
        })
        print(toks, "->", out["cases"][-1]["greedy_text"], file=sys.stderr)
    # perplexity of the first windows: the whole file tokenized once with BOS (as awq-cli eval)
    sp = sentencepiece_from_gguf(kv)
    text = open(sys.argv[2], encoding="utf-8").read()
    ids = [kv["tokenizer.ggml.bos_token_id"]] + sp.encode(text)
    total, n = 0.0, 0
    windows = []
    for c in range(WINDOWS):
        win = ids[c * CTX:(c + 1) * CTX]
        total += nll_sum(forward(kv, w, np.array(win)), win)
        n += CTX - 1
        windows.append({"first_ids": win[:16], "last_ids": win[-16:]})
        print(f"window {c}: ppl so far {np.exp(total / n):.4f}", file=sys.stderr)
    out["ppl"] = {"ctx": CTX, "windows": WINDOWS, "n_tokens_file": len(ids), "nll_sum": total,
                  "n_pred": n, "ppl": float(np.exp(total / n)), "window_ids": windows}
    with open(sys.argv[3], "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
