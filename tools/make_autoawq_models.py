#!/usr/bin/env python3
"""AutoAWQ 0.2.9 checkpoints of the tiny models (tests/data/tiny/<family>/, made by
make_tiny_models.py), for tests/e2e/test_families.c: our W4A16 path on AutoAWQ's own output.

  tests/data/tiny_awq/<family>/: AutoAWQ's save_quantized() output (GEMM layout, group 32, zero
  point), tokenizer.json, and ref.json (same format as the tiny models' ref.json): the logits of
  AutoAWQ's dequantized model -- every quantized linear replaced by
  awq.utils.packing_utils.dequantize_gemm(qweight, qzeros, scales) (AutoAWQ's own unpacking),
  everything else as saved -- run by transformers in float32, prefill and decode through its KV
  cache.

AutoAWQ on a CPU corrupts its own weights in _search_best_scale (org_sd = {k: v.cpu() ...} aliases
the live tensors when they already are on the CPU); this script applies the fix AutoAWQ needs
there, org_sd = {k: v.cpu().clone() ...}, before quantizing. Calibration: the short lines of
tinyshakespeare.txt (the tiny tokenizer turns text into many tokens; AutoAWQ drops samples longer
than max_calib_seq_len).

Needs: pip install torch==2.6.0 transformers==4.51.3 autoawq==0.2.9 (--no-deps) accelerate
(--no-deps) psutil datasets<4 zstandard "huggingface-hub<1". Not run by CI.

usage: tools/make_autoawq_models.py TINY_DIR OUT_DIR SHAKESPEARE.txt [family ...]
       tools/make_autoawq_models.py golden tests/data/awq_golden SHAKESPEARE.txt [case ...]
"""
import json
import os
import shutil
import sys

import torch


def patch_autoawq():
    import awq.quantize.quantizer as Q
    import awq.models.base as B
    src = open(Q.__file__).read()
    old = "org_sd = {k: v.cpu() for k, v in module2inspect.state_dict().items()}"
    assert old in src, "AutoAWQ's _search_best_scale changed; check the patch"
    # The fixed method is put on the original class: quantize() binds that class as the default
    # of its quantizer_cls argument, so replacing the module's name alone would change nothing.
    cls = Q.AwqQuantizer
    exec(compile(src.replace(old, old.replace("v.cpu()", "v.cpu().clone()")), Q.__file__, "exec"),
         Q.__dict__)
    cls._compute_best_scale = Q.AwqQuantizer._compute_best_scale
    Q.AwqQuantizer = B.AwqQuantizer = cls


def calib_lines(path, n):
    out = []
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if 20 <= len(line) <= 40:
            out.append(line)
        if len(out) == n:
            break
    return out


# Routers stay in full precision (AutoAWQ would quantize them otherwise): Mixtral's
# block_sparse_moe.gate as AutoAWQ's Mixtral example excludes it; Qwen3-MoE's mlp.gate (the
# substring also matches the dense layer 0's mlp.gate_proj of the tiny model, left unquantized).
# AutoAWQ 0.2.9 has no qwen2_moe.
EXCLUDE = {"mixtral": ["gate"], "qwen3_moe": ["mlp.gate"]}


def quantize(tiny, out, shakespeare, family, group):
    from awq import AutoAWQForCausalLM
    from transformers import PreTrainedTokenizerFast
    src = os.path.join(tiny, family)
    tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(src, "tokenizer.json"))
    model = AutoAWQForCausalLM.from_pretrained(src, torch_dtype=torch.float16, device_map="cpu")
    cfg = {"zero_point": True, "q_group_size": group, "w_bit": 4, "version": "GEMM"}
    if family in EXCLUDE:
        cfg["modules_to_not_convert"] = EXCLUDE[family]
    model.quantize(tok, quant_config=cfg, calib_data=calib_lines(shakespeare, 256),
                   max_calib_samples=256, max_calib_seq_len=64, n_parallel_calib_samples=None)
    d = os.path.join(out, family)
    os.makedirs(d, exist_ok=True)
    model.save_quantized(d)
    shutil.copyfile(os.path.join(src, "tokenizer.json"), os.path.join(d, "tokenizer.json"))
    for f in os.listdir(d):
        os.chmod(os.path.join(d, f), 0o644)
    return d


def dequantized_model(d, group):
    from awq.utils.packing_utils import dequantize_gemm
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModelForCausalLM
    cfg = AutoConfig.from_pretrained(d)
    cfg.quantization_config = None
    del cfg.quantization_config
    cfg._attn_implementation = "eager"
    model = AutoModelForCausalLM.from_config(cfg, torch_dtype=torch.float32).eval()
    sd = {}
    for f in sorted(os.listdir(d)):
        if f.endswith(".safetensors"):
            sd.update(load_file(os.path.join(d, f)))
    state = {}
    for k, v in sd.items():
        if k.endswith(".qweight"):
            p = k[: -len(".qweight")]
            w = dequantize_gemm(v, sd[p + ".qzeros"], sd[p + ".scales"], 4, group)  # (in, out)
            state[p + ".weight"] = w.t().float()
        elif not k.endswith((".qzeros", ".scales")):
            state[k] = v.float()
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [m for m in missing if m != "lm_head.weight"]  # tied
    assert not missing and not unexpected, (missing, unexpected)
    model.tie_weights()
    return model


def reference(model, tiny_ref, out_path):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from make_tiny_models import cache_for
    ref = json.load(open(tiny_ref))
    ids = torch.tensor([ref["ids"]])
    T, n_prefix = ids.shape[1], ref["n_prefix"]
    with torch.no_grad():
        prefill = model(ids).logits[0]
        past = cache_for(model, model.config, T)
        o = model(ids[:, :n_prefix], past_key_values=past, use_cache=True,
                  cache_position=torch.arange(n_prefix))
        past, dec = o.past_key_values, []
        for t in range(n_prefix, T):
            o = model(ids[:, t:t + 1], past_key_values=past, use_cache=True,
                      cache_position=torch.tensor([t]))
            past = o.past_key_values
            dec.append(o.logits[0, -1])
    out = {"family": ref["family"], "autoawq": "0.2.9", "ids": ref["ids"], "n_prefix": n_prefix,
           "prefill": [[round(float(v), 6) for v in row] for row in prefill],
           "decode": [[round(float(v), 6) for v in row] for row in torch.stack(dec)]}
    with open(out_path, "w") as f:
        json.dump(out, f, separators=(",", ":"))
    os.chmod(out_path, 0o644)


# --------------------------------------------------------------------------------------------
# Goldens for tests/quant/test_awq_golden.c: AutoAWQ's own scales, zeros and packed words for
# tiny random Llama-family checkpoints, each case with the options and calibration our
# quantizer is then run with.
#
#   tests/data/awq_golden/<model>/    config.json, model.safetensors (F16: what AutoAWQ loads,
#                                      so both quantizers start from the same weights),
#                                      tokenizer.json
#   tests/data/awq_golden/calib.jsonl the calibration samples (one {"text": ...} per line)
#   tests/data/awq_golden/<case>.json the options, and the token blocks AutoAWQ calibrated on
#   tests/data/awq_golden/<case>.safetensors   AutoAWQ's checkpoint minus the embeddings

GOLDEN_MODELS = {
    # no GQA: v_proj and o_proj have the same shape, so AutoAWQ also scales the v -> o group
    "llama_mha": dict(arch="llama", hidden_size=64, intermediate_size=128, num_attention_heads=4,
                      num_key_value_heads=4, head_dim=16),
    # q/k/v biases, GQA (k/v out_features 64: AutoAWQ's clip search needs multiples of 64)
    "qwen2_bias": dict(arch="qwen2", hidden_size=128, intermediate_size=128,
                       num_attention_heads=4, num_key_value_heads=2),
}

# name, model, options (ours: awq_quant_params; AutoAWQ: quantize() arguments)
# AutoAWQ runs in float32 (dtype), the precision our search runs in (docs/algorithm.md 9), except
# llama_mha_fp16: AutoAWQ as most people run it, the search in fp16.
GOLDEN_CASES = [
    ("llama_mha", "llama_mha", dict()),
    ("llama_mha_fp16", "llama_mha", dict(dtype="float16")),
    ("qwen2_bias", "qwen2_bias", dict()),
    ("llama_exclude_v", "llama_mha", dict(exclude=["v_proj"])),
    ("llama_no_duo_seed", "llama_mha", dict(duo_scaling=False, seed=7)),
    ("llama_no_clip", "llama_mha", dict(clip=False)),
]
GOLDEN_GROUP, GOLDEN_SAMPLES, GOLDEN_SEQLEN = 32, 24, 48


def golden_model(out, name, spec):
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from make_tiny_models import TOKENIZER, VOCAB, randomize
    spec = dict(spec)
    arch = spec.pop("arch")
    common = dict(vocab_size=VOCAB, num_hidden_layers=2, max_position_embeddings=256,
                  rms_norm_eps=1e-6, rope_theta=10000.0, tie_word_embeddings=True,
                  bos_token_id=1, eos_token_id=2, pad_token_id=0, torch_dtype="float16")
    if arch == "llama":
        cfg, cls = LlamaConfig(**common, **spec), LlamaForCausalLM
    else:
        cfg, cls = Qwen2Config(**common, **spec), Qwen2ForCausalLM
    torch.manual_seed(0)
    model = cls(cfg).eval().float()
    randomize(model, torch.Generator().manual_seed(4321))
    with torch.no_grad():  # a few outlier channels in the residual stream, as real models have
        model.model.embed_tokens.weight[:, [3, 17, 40]] *= 6.0
    model = model.half()
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    model.save_pretrained(d, safe_serialization=True)
    shutil.copyfile(TOKENIZER, os.path.join(d, "tokenizer.json"))
    if os.path.exists(os.path.join(d, "generation_config.json")):
        os.remove(os.path.join(d, "generation_config.json"))
    return d


def golden_calib(shakespeare, n):
    """Lines of 10..90 characters: with the tiny tokenizer a third exceed GOLDEN_SEQLEN tokens and
    are dropped (by both quantizers), and the stream does not end on a block boundary."""
    out = []
    for line in open(shakespeare, encoding="utf-8"):
        line = line.strip()
        if 10 <= len(line) <= 90:
            out.append(line)
        if len(out) == n:
            break
    return out


def splitmix_shuffle(items, seed):
    """docs/algorithm.md 1.1: splitmix64 + Fisher-Yates, as --seed documents it."""
    items, s, m = list(items), seed, (1 << 64) - 1
    for i in range(len(items) - 1, 0, -1):
        s = (s + 0x9E3779B97F4A7C15) & m
        z = s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m
        z ^= z >> 31
        j = z % (i + 1)
        items[i], items[j] = items[j], items[i]
    return items


def patch_exclusion(excluded):
    """docs/algorithm.md 4.2: an excluded linear is scaled with its group but not searched, so it
    takes no part in w-bar and is not fake-quantized while the candidates are scored. AutoAWQ
    0.2.9 keeps it in both (modules_to_not_convert only filters what is clipped and quantized);
    this makes AutoAWQ score the group our way, the scales still applied to every linear."""
    import awq.quantize.quantizer as Q
    from awq.utils.module import get_op_name
    cls = Q.AwqQuantizer
    orig = cls._search_best_scale

    def search(self, module, prev_op, layers, inp, module2inspect=None, kwargs={}):
        names = tuple(get_op_name(module, m) for m in layers)
        keep = [m for m, n in zip(layers, names) if not any(e in n for e in excluded)]
        if not keep:  # nothing of the group is quantized: no scaling
            return get_op_name(module, prev_op), names, torch.ones(layers[0].weight.shape[1])
        if module2inspect is None:
            module2inspect = layers[0]
        r = orig(self, module, prev_op, keep, inp, module2inspect, kwargs)
        return r[0], names, r[2]

    cls._search_best_scale = search
    return lambda: setattr(cls, "_search_best_scale", orig)


def golden_case(out, model_dir, case, opts, texts):
    from awq import AutoAWQForCausalLM
    from awq.utils.calib_data import get_calib_dataset
    from safetensors.torch import load_file, save_file
    from transformers import PreTrainedTokenizerFast
    tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(model_dir, "tokenizer.json"))
    if opts.get("seed"):
        texts = splitmix_shuffle(texts, opts["seed"])
    blocks = get_calib_dataset(texts, tokenizer=tok, n_samples=GOLDEN_SAMPLES,
                               max_seq_len=GOLDEN_SEQLEN)
    dtype = opts.get("dtype", "float32")
    model = AutoAWQForCausalLM.from_pretrained(model_dir, torch_dtype=getattr(torch, dtype),
                                               device_map="cpu")
    unpatch = patch_exclusion(opts["exclude"]) if opts.get("exclude") else (lambda: None)
    cfg = {"zero_point": True, "q_group_size": GOLDEN_GROUP, "w_bit": 4, "version": "GEMM",
           "modules_to_not_convert": opts.get("exclude")}
    model.quantize(tok, quant_config=cfg, calib_data=texts, max_calib_samples=GOLDEN_SAMPLES,
                   max_calib_seq_len=GOLDEN_SEQLEN, n_parallel_calib_samples=None,
                   duo_scaling=opts.get("duo_scaling", True), apply_clip=opts.get("clip", True))
    unpatch()
    tmp = os.path.join(out, case + ".tmp")
    model.save_quantized(tmp)
    sd = {}
    for f in sorted(os.listdir(tmp)):
        if f.endswith(".safetensors"):
            sd.update(load_file(os.path.join(tmp, f)))
    shutil.rmtree(tmp)
    sd = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in sd.items()
          if "embed_tokens" not in k and "lm_head" not in k}
    save_file(sd, os.path.join(out, case + ".safetensors"))
    meta = {"autoawq": "0.2.9", "dtype": dtype, "model": os.path.basename(model_dir),
            "group_size": GOLDEN_GROUP,
            "calib_samples": GOLDEN_SAMPLES, "calib_seqlen": GOLDEN_SEQLEN,
            "duo_scaling": opts.get("duo_scaling", True), "clip": opts.get("clip", True),
            "exclude": opts.get("exclude", []), "seed": opts.get("seed", 0),
            "blocks": [b[0].tolist() for b in blocks]}
    with open(os.path.join(out, case + ".json"), "w") as f:
        json.dump(meta, f, separators=(",", ":"))


def golden(out, shakespeare, only):
    os.makedirs(out, exist_ok=True)
    texts = golden_calib(shakespeare, 40)
    with open(os.path.join(out, "calib.jsonl"), "w") as f:
        for t in texts:
            f.write(json.dumps({"text": t}) + "\n")
    dirs = {m: golden_model(out, m, spec) for m, spec in GOLDEN_MODELS.items()}
    for case, m, opts in GOLDEN_CASES:
        if only and case not in only:
            continue
        golden_case(out, dirs[m], case, opts, texts)
        print(f"{case}: done", file=sys.stderr)


def main():
    if sys.argv[1] == "golden":
        patch_autoawq()
        golden(sys.argv[2], sys.argv[3], sys.argv[4:])
        return
    tiny, out, shakespeare = sys.argv[1:4]
    patch_autoawq()
    for fam in sys.argv[4:] or ["gemma"]:
        group = 32
        d = quantize(tiny, out, shakespeare, fam, group)
        reference(dequantized_model(d, group), os.path.join(tiny, fam, "ref.json"),
                  os.path.join(d, "ref.json"))
        print(f"{fam}: {d}", file=sys.stderr)


if __name__ == "__main__":
    main()
