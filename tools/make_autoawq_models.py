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

Needs: pip install torch==2.6.0 transformers==4.51.3 autoawq==0.2.9 (--no-deps) datasets<4
zstandard "huggingface-hub<1". Not run by CI.

usage: tools/make_autoawq_models.py TINY_DIR OUT_DIR SHAKESPEARE.txt [family ...]
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
    exec(compile(src.replace(old, old.replace("v.cpu()", "v.cpu().clone()")), Q.__file__, "exec"),
         Q.__dict__)
    B.AwqQuantizer = Q.AwqQuantizer


def calib_lines(path, n):
    out = []
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if 20 <= len(line) <= 40:
            out.append(line)
        if len(out) == n:
            break
    return out


def quantize(tiny, out, shakespeare, family, group):
    from awq import AutoAWQForCausalLM
    from transformers import PreTrainedTokenizerFast
    src = os.path.join(tiny, family)
    tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(src, "tokenizer.json"))
    model = AutoAWQForCausalLM.from_pretrained(src, torch_dtype=torch.float16, device_map="cpu")
    cfg = {"zero_point": True, "q_group_size": group, "w_bit": 4, "version": "GEMM"}
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


def main():
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
