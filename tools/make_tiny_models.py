#!/usr/bin/env python3
"""Tiny randomly initialized checkpoints of the model families beyond Llama, made once with
transformers and committed with their reference logits (tests/data/tiny/<family>/):

  config.json, model.safetensors (F32), tokenizer.json (tests/tokenizer/data/tiny_metaspace.json,
  so the quantizer can tokenize calibration text), ref.json:
    ids            the prompt (T tokens)
    prefill        logits (T, vocab) of one forward pass over ids
    n_prefix       decode: the first n_prefix ids in one pass, then the rest one token at a time
                   through the KV cache (past_key_values)
    decode         logits (T - n_prefix, vocab) of those single-token steps

Weights are drawn N(0, 0.15^2) (norm weights N(0, 0.3^2)), far from transformers' near-zero
init, so every term of the block matters. Sizes keep each directory at ~100 KB.
Needs: pip install torch==2.6.0 transformers==4.51.3 (CPU). Not run by CI.

usage: tools/make_tiny_models.py OUT_DIR [family ...]
       (families: gemma, gemma2, gemma3, phi3, mixtral, qwen2_moe, qwen3_moe)
"""
import json
import os
import shutil
import sys

import torch
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
TOKENIZER = os.path.join(HERE, "..", "tests", "tokenizer", "data", "tiny_metaspace.json")
VOCAB = 320  # >= the tiny tokenizer's 292 ids


def gemma3():
    from transformers import Gemma3TextConfig, Gemma3ForCausalLM
    cfg = Gemma3TextConfig(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=256,
        rms_norm_eps=1e-6, rope_theta=1000000.0, rope_local_base_freq=10000.0,
        query_pre_attn_scalar=24, sliding_window=4, sliding_window_pattern=2,
        hidden_activation="gelu_pytorch_tanh", attn_logit_softcapping=None,
        final_logit_softcapping=None, tie_word_embeddings=True, torch_dtype="float32",
        bos_token_id=1, eos_token_id=2, pad_token_id=0, attn_implementation="eager")
    return cfg, Gemma3ForCausalLM


def phi3():
    # Phi-4-mini's shape in small: GQA, partial rotary (0.75), longrope with an original context
    # shorter than max_position_embeddings (so the attention factor is not 1), tied embeddings;
    # a sliding window shorter than the prompt (Phi-3-mini-4k has one)
    from transformers import Phi3Config, Phi3ForCausalLM
    half = int(16 * 0.75) // 2
    cfg = Phi3Config(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        original_max_position_embeddings=64, rms_norm_eps=1e-5, rope_theta=10000.0,
        partial_rotary_factor=0.75, sliding_window=6, tie_word_embeddings=True,
        rope_scaling={"type": "longrope",
                      "short_factor": [1.0 + 0.25 * i for i in range(half)],
                      "long_factor": [2.0 + 0.5 * i for i in range(half)]},
        hidden_act="silu", torch_dtype="float32", bos_token_id=1, eos_token_id=2, pad_token_id=0,
        attn_implementation="eager")
    return cfg, Phi3ForCausalLM


def gemma():
    # Gemma (1): (1 + w) norms, scaled embeddings, GELU-tanh, head_dim != hidden / heads; every
    # out_features a multiple of 64 (AutoAWQ's clip search needs it: make_autoawq_models.py)
    from transformers import GemmaConfig, GemmaForCausalLM
    cfg = GemmaConfig(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=32, max_position_embeddings=256,
        rms_norm_eps=1e-6, rope_theta=10000.0, hidden_act="gelu_pytorch_tanh",
        tie_word_embeddings=True, torch_dtype="float32", bos_token_id=1, eos_token_id=2,
        pad_token_id=0, attn_implementation="eager")
    return cfg, GemmaForCausalLM


def gemma2():
    # soft-capping values small enough that random weights reach them
    from transformers import Gemma2Config, Gemma2ForCausalLM
    cfg = Gemma2Config(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=256,
        rms_norm_eps=1e-6, rope_theta=10000.0, query_pre_attn_scalar=24, sliding_window=4,
        attn_logit_softcapping=3.0, final_logit_softcapping=5.0,
        hidden_activation="gelu_pytorch_tanh", tie_word_embeddings=True, torch_dtype="float32",
        bos_token_id=1, eos_token_id=2, pad_token_id=0, attn_implementation="eager")
    return cfg, Gemma2ForCausalLM


def mixtral():
    # 4 experts, top-2 (Mixtral always renormalizes the top-k weights); GQA with head_dim 32 (k/v
    # out_features 64, as AutoAWQ's clip search needs)
    from transformers import MixtralConfig, MixtralForCausalLM
    cfg = MixtralConfig(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=32, max_position_embeddings=256,
        rms_norm_eps=1e-5, rope_theta=10000.0, sliding_window=None, num_local_experts=4,
        num_experts_per_tok=2, router_jitter_noise=0.0, tie_word_embeddings=False,
        torch_dtype="float32", bos_token_id=1, eos_token_id=2, pad_token_id=0,
        attn_implementation="eager")
    return cfg, MixtralForCausalLM


def qwen2_moe():
    # 6 experts, top-2 without renormalization, a shared expert with its sigmoid gate, q/k/v
    # biases, and layer 1 dense (mlp_only_layers) with intermediate_size
    from transformers import Qwen2MoeConfig, Qwen2MoeForCausalLM
    cfg = Qwen2MoeConfig(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=128, moe_intermediate_size=64,
        shared_expert_intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=256, rms_norm_eps=1e-6,
        rope_theta=10000.0, num_experts=6, num_experts_per_tok=2, norm_topk_prob=False,
        decoder_sparse_step=1, mlp_only_layers=[1], use_sliding_window=False,
        tie_word_embeddings=False, torch_dtype="float32", bos_token_id=1, eos_token_id=2,
        pad_token_id=0, attn_implementation="eager")
    return cfg, Qwen2MoeForCausalLM


def qwen3_moe():
    # 8 experts, top-2 renormalized (norm_topk_prob), q/k norms, head_dim != hidden / heads;
    # every layer sparse (AutoAWQ 0.2.9 cannot quantize a Qwen3-MoE with a dense layer while
    # keeping the router in full precision: excluding "mlp.gate" also drops mlp.gate_proj);
    # dense layers are covered by qwen2_moe
    from transformers import Qwen3MoeConfig, Qwen3MoeForCausalLM
    cfg = Qwen3MoeConfig(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=128, moe_intermediate_size=64,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=32,
        max_position_embeddings=256, rms_norm_eps=1e-6, rope_theta=10000.0, num_experts=8,
        num_experts_per_tok=2, norm_topk_prob=True, decoder_sparse_step=1, mlp_only_layers=[],
        use_sliding_window=False, tie_word_embeddings=True, torch_dtype="float32",
        bos_token_id=1, eos_token_id=2, pad_token_id=0, attn_implementation="eager")
    return cfg, Qwen3MoeForCausalLM


FAMILIES = {"gemma": gemma, "gemma2": gemma2, "gemma3": gemma3, "phi3": phi3, "mixtral": mixtral,
            "qwen2_moe": qwen2_moe, "qwen3_moe": qwen3_moe}


def randomize(model, gen):
    with torch.no_grad():
        for name, p in model.named_parameters():
            std = 0.3 if "norm" in name else 0.15
            p.copy_(torch.randn(p.shape, generator=gen) * std)


def cache_for(model, cfg, T):
    """The cache transformers generates with for this family, sized for T tokens."""
    if cfg.model_type in ("gemma2", "gemma3_text"):
        from transformers import HybridCache
        return HybridCache(config=cfg, max_batch_size=1, max_cache_len=T, dtype=torch.float32)
    from transformers import DynamicCache
    return DynamicCache()


def starve_expert(model, gen):
    """Qwen2-MoE layer 0: expert 0 never routed. Its router row is zero and rows 1..4 are a, -a,
    b, -b, so two other logits, |x.a| and |x.b|, exceed its 0 for every input: the quantizer must
    quantize expert 0 without calibration rows (round-to-nearest, reported)."""
    with torch.no_grad():
        w = model.model.layers[0].mlp.gate.weight
        a, b = (torch.randn(w.shape[1], generator=gen) * 0.15 for _ in range(2))
        w[0].zero_()
        w[1], w[2], w[3], w[4] = a, -a, b, -b


def make(out, family):
    cfg, cls = FAMILIES[family]()
    torch.manual_seed(0)
    model = cls(cfg).eval().float()
    gen = torch.Generator().manual_seed(1234)
    randomize(model, gen)
    if family == "qwen2_moe":
        starve_expert(model, gen)
    d = os.path.join(out, family)
    os.makedirs(d, exist_ok=True)
    model.save_pretrained(d, safe_serialization=True)
    shutil.copyfile(TOKENIZER, os.path.join(d, "tokenizer.json"))
    for f in ("generation_config.json",):
        if os.path.exists(os.path.join(d, f)):
            os.remove(os.path.join(d, f))
    T, n_prefix = 12, 8
    ids = torch.randint(3, 292, (1, T), generator=gen)
    with torch.no_grad():
        prefill = model(ids).logits[0]
        past = cache_for(model, cfg, T)
        o = model(ids[:, :n_prefix], past_key_values=past, use_cache=True,
                  cache_position=torch.arange(n_prefix))
        past, dec = o.past_key_values, []
        for t in range(n_prefix, T):
            o = model(ids[:, t:t + 1], past_key_values=past, use_cache=True,
                      cache_position=torch.tensor([t]))
            past = o.past_key_values
            dec.append(o.logits[0, -1])
        dec = torch.stack(dec)
    print(f"{family}: prefill vs decode max diff {float((prefill[n_prefix:] - dec).abs().max()):.3g}",
          file=sys.stderr)
    ref = {"family": family, "transformers": __import__("transformers").__version__,
           "ids": ids[0].tolist(), "n_prefix": n_prefix,
           "prefill": [[round(float(v), 6) for v in row] for row in prefill],
           "decode": [[round(float(v), 6) for v in row] for row in dec]}
    with open(os.path.join(d, "ref.json"), "w") as f:
        json.dump(ref, f, separators=(",", ":"))


def main():
    out = sys.argv[1]
    for fam in sys.argv[2:] or list(FAMILIES):
        make(out, fam)


if __name__ == "__main__":
    main()
