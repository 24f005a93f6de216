#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into tests/fuzz/corpus/<target>/ (committed; run
again only to change them). Python standard library only: the formats are written by hand from
their specifications (safetensors: 8-byte header length + JSON + data; GGUF v3: header, key/values,
tensor infos, aligned data; tokenizer.json: Hugging Face `tokenizers` serialisation).

    python3 tests/fuzz/make_seeds.py
"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
CORPUS = os.path.join(HERE, "corpus")


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- safetensors ------------------------------------------------------------------------------

DT = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


def safetensors(tensors, metadata=None, pad=True):
    """tensors: list of (name, dtype, shape); data is a byte ramp."""
    header, blobs, off = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dt, shape in tensors:
        n = DT[dt]
        for s in shape:
            n *= s
        blobs.append(bytes((off + i) * 7 % 251 for i in range(n)))
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + n]}
        off += n
    h = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def safetensors_seeds():
    put("safetensors", "small_f16_f32", safetensors(
        [("model.embed_tokens.weight", "F16", [8, 4]), ("model.norm.weight", "F32", [4])], {"format": "pt"}))
    put("safetensors", "all_dtypes", safetensors(
        [("a", "F64", [2]), ("b", "BF16", [3, 1]), ("c", "I64", [1]), ("d", "I32", [2, 2]), ("e", "I16", [2]),
         ("f", "I8", [5]), ("g", "U8", [1, 1, 3]), ("h", "BOOL", [2])]))
    put("safetensors", "scalar_and_empty", safetensors([("s", "F32", []), ("z", "F16", [0, 4]), ("t", "F16", [2])]))
    put("safetensors", "awq_linear", safetensors(
        [("model.layers.0.self_attn.q_proj.qweight", "I32", [8, 1]), ("model.layers.0.self_attn.q_proj.qzeros", "I32", [1, 1]),
         ("model.layers.0.self_attn.q_proj.scales", "F16", [1, 8])], {"format": "pt", "quant": "awq"}))
    put("safetensors", "unpadded_header", safetensors([("x", "F32", [3])], pad=False))
    put("safetensors", "no_tensors", safetensors([], {"format": "pt"}))
    put("safetensors", "truncated", safetensors([("x", "F32", [16])])[:-10])


def st_index_seeds():
    put("st_index", "valid", json.dumps({"metadata": {"total_size": 56},
                                          "weight_map": {"x": "a.safetensors", "y": "a.safetensors", "z": "b.safetensors"}}))
    put("st_index", "one_shard", json.dumps({"weight_map": {"z": "b.safetensors"}}, indent=2))
    put("st_index", "missing_tensor", json.dumps({"weight_map": {"x": "a.safetensors", "w": "b.safetensors"}}))
    put("st_index", "wrong_shard", json.dumps({"weight_map": {"x": "b.safetensors"}}))
    put("st_index", "escape", json.dumps({"weight_map": {"x": "../a.safetensors", "y": "/etc/passwd"}}))


# ---- GGUF -----------------------------------------------------------------------------------

U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
FMT = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f", BOOL: "<?", U64: "<Q",
       I64: "<q", F64: "<d"}


def gstr(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def gval(t, v):
    if t == STR:
        return gstr(v)
    if t == ARR:
        et, items = v
        out = struct.pack("<IQ", et, len(items))
        return out + b"".join(gval(et, x) for x in items)
    return struct.pack(FMT[t], v)


# ggml types: (id, block elements, block bytes)
GT = {"F32": (0, 1, 4), "F16": (1, 1, 2), "Q4_0": (2, 32, 18), "Q4_1": (3, 32, 20), "Q8_0": (8, 32, 34),
      "Q4_K": (12, 256, 144), "Q5_K": (13, 256, 176), "Q6_K": (14, 256, 210), "BF16": (30, 1, 2)}


def gguf(kvs, tensors, align=32, version=3):
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs))
    for k, t, v in kvs:
        out += gstr(k) + struct.pack("<I", t) + gval(t, v)
    data, off = b"", 0
    for name, ty, dims in tensors:
        tid, be, bb = GT[ty]
        n = 1
        for d in dims:
            n *= d
        nbytes = n // be * bb
        out += gstr(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", tid, off)
        blob = bytearray((off + i) * 13 % 256 for i in range(nbytes))
        if ty in ("F16", "BF16", "Q4_0", "Q4_1", "Q8_0", "Q4_K", "Q5_K", "Q6_K"):
            # keep the fp16 block scales finite: clear the exponent's top bit of every 2nd byte
            for i in range(1, len(blob), 2):
                blob[i] &= 0x3b
        data += bytes(blob) + b"\0" * (-nbytes % align)
        off += nbytes + (-nbytes % align)
    out += b"\0" * (-len(out) % align)
    return out + data


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


B2U = bytes_to_unicode()
BPE_MERGES = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("i", "n"), ("Ġ", "a"), ("e", "r"), ("o", "n"), ("Ġ", "w"),
              ("Ġw", "o"), ("r", "l"), ("Ġwo", "rl"), ("Ġworl", "d"), ("H", "e"), ("l", "l"), ("He", "ll"),
              ("Hell", "o"), ("1", "2"), ("12", "3")]


def bpe_vocab():
    toks = [B2U[b] for b in range(256)]
    for a, b in BPE_MERGES:
        toks.append(a + b)
    return toks


def gguf_seeds():
    base_kv = [("general.architecture", STR, "llama"), ("general.name", STR, "fuzz seed"),
               ("llama.block_count", U32, 1), ("llama.embedding_length", U32, 64), ("llama.rope.freq_base", F32, 10000.0),
               ("llama.attention.layer_norm_rms_epsilon", F32, 1e-5), ("general.alignment", U32, 32)]
    tensors = [("token_embd.weight", "F16", [64, 8]), ("blk.0.attn_q.weight", "Q4_0", [64, 2]),
               ("blk.0.attn_k.weight", "Q8_0", [64, 1]), ("blk.0.attn_v.weight", "Q4_1", [32, 2]),
               ("blk.0.ffn_up.weight", "Q4_K", [256, 1]), ("blk.0.ffn_down.weight", "Q6_K", [256, 1]),
               ("blk.0.ffn_gate.weight", "Q5_K", [256, 1]), ("output_norm.weight", "F32", [64]),
               ("blk.0.attn_norm.weight", "BF16", [64])]
    put("gguf", "tensors_all_types", gguf(base_kv, tensors))
    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    toks = bpe_vocab() + special
    types = [1] * (len(toks) - 3) + [3, 3, 3]
    tok_kv = [("tokenizer.ggml.model", STR, "gpt2"), ("tokenizer.ggml.pre", STR, "smollm"),
              ("tokenizer.ggml.tokens", ARR, (STR, toks)), ("tokenizer.ggml.token_type", ARR, (I32, types)),
              ("tokenizer.ggml.merges", ARR, (STR, [a + " " + b for a, b in BPE_MERGES])),
              ("tokenizer.ggml.bos_token_id", U32, len(toks) - 2), ("tokenizer.ggml.eos_token_id", U32, len(toks) - 1),
              ("tokenizer.chat_template", STR, "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}")]
    put("gguf", "bpe_tokenizer", gguf(base_kv + tok_kv, [("output_norm.weight", "F32", [64])]))
    put("gguf", "bpe_tokenizer_llama_bpe", gguf(
        [kv if kv[0] != "tokenizer.ggml.pre" else ("tokenizer.ggml.pre", STR, "llama-bpe") for kv in base_kv + tok_kv], []))
    spm = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)] + ["▁", "▁t", "he", "▁the", "▁w", "or", "ld", "▁H", "ello"]
    spm_types = [2, 3, 3] + [6] * 256 + [1] * 9
    spm_scores = [0.0, 0.0, 0.0] + [0.0] * 256 + [-float(i) for i in range(9)]
    spm_kv = [("tokenizer.ggml.model", STR, "llama"), ("tokenizer.ggml.tokens", ARR, (STR, spm)),
              ("tokenizer.ggml.scores", ARR, (F32, spm_scores)), ("tokenizer.ggml.token_type", ARR, (I32, spm_types)),
              ("tokenizer.ggml.bos_token_id", U32, 1), ("tokenizer.ggml.eos_token_id", U32, 2),
              ("tokenizer.ggml.unknown_token_id", U32, 0), ("tokenizer.ggml.add_bos_token", BOOL, True),
              ("tokenizer.ggml.add_space_prefix", BOOL, True)]
    put("gguf", "spm_tokenizer", gguf(base_kv + spm_kv, [("token_embd.weight", "F32", [8, 4])]))
    put("gguf", "v2_scalars", gguf([("a.u8", U8, 1), ("a.i8", I8, -1), ("a.u16", U16, 2), ("a.i16", I16, -2), ("a.u64", U64, 5),
                                    ("a.i64", I64, -5), ("a.f64", F64, 0.5), ("a.arr", ARR, (ARR, [(U8, [1, 2]), (U8, [3])]))],
                                   [], version=2))
    put("gguf", "truncated", gguf(base_kv, tensors)[:300])


# ---- config.json ------------------------------------------------------------------------------

def config_seeds():
    smol = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 576, "intermediate_size": 1536,
            "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3, "head_dim": 64,
            "max_position_embeddings": 8192, "rms_norm_eps": 1e-5, "rope_theta": 100000, "rope_scaling": None,
            "vocab_size": 49152, "tie_word_embeddings": True, "attention_bias": False, "torch_dtype": "float16",
            "bos_token_id": 1, "eos_token_id": 2}
    put("config", "smollm2", json.dumps(smol, indent=2))
    q = dict(smol, quantization_config={"quant_method": "awq", "bits": 4, "group_size": 64, "zero_point": True,
                                         "version": "gemm", "modules_to_not_convert": ["mlp.down_proj"]})
    put("config", "smollm2_awq", json.dumps(q))
    l3 = dict(smol, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
              num_key_value_heads=8, vocab_size=128256, rope_theta=500000.0, torch_dtype="bfloat16",
              eos_token_id=[128001, 128008, 128009],
              rope_scaling={"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                            "original_max_position_embeddings": 8192, "rope_type": "llama3"})
    del l3["head_dim"]
    put("config", "llama3", json.dumps(l3))
    qw2 = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 896, "intermediate_size": 4864,
           "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2, "rms_norm_eps": 1e-6,
           "rope_theta": 1000000.0, "vocab_size": 151936, "tie_word_embeddings": True, "torch_dtype": "bfloat16",
           "sliding_window": 32768, "use_sliding_window": False, "max_window_layers": 21}
    put("config", "qwen2", json.dumps(qw2))
    qw3 = dict(qw2, architectures=["Qwen3ForCausalLM"], model_type="qwen3", head_dim=128, hidden_size=1024,
               intermediate_size=3072, num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=8)
    put("config", "qwen3", json.dumps(qw3))
    mis = dict(smol, architectures=["MistralForCausalLM"], model_type="mistral", sliding_window=4096,
               rope_scaling={"type": "linear", "factor": 2.0})
    put("config", "mistral_linear_rope", json.dumps(mis))
    g3 = {"architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text", "hidden_size": 640, "intermediate_size": 2048,
          "num_hidden_layers": 18, "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 256,
          "hidden_activation": "gelu_pytorch_tanh", "query_pre_attn_scalar": 256, "rms_norm_eps": 1e-6,
          "rope_theta": 1000000.0, "rope_local_base_freq": 10000.0, "sliding_window": 512,
          "sliding_window_pattern": 6, "vocab_size": 262144, "torch_dtype": "bfloat16",
          "final_logit_softcapping": None, "attn_logit_softcapping": None}
    put("config", "gemma3", json.dumps(g3))
    put("config", "yarn_rope", json.dumps(dict(smol, rope_scaling={"rope_type": "yarn", "factor": 4.0,
                                                                   "original_max_position_embeddings": 2048})))


# ---- tokenizer.json (+ tokenizer_config.json + text, separated by "\n%%\n") -----------------------

SEP = "\n%%\n"


def bpe_tokenizer_json(pre, post=None, normalizer=None, byte_fallback=False, special=("<|endoftext|>", "<|im_start|>", "<|im_end|>")):
    vocab = {t: i for i, t in enumerate(bpe_vocab())}
    added = []
    for s in special:
        vocab[s] = len(vocab)
        added.append({"id": vocab[s], "content": s, "single_word": False, "lstrip": False, "rstrip": False,
                      "normalized": False, "special": True})
    return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": normalizer,
            "pre_tokenizer": pre, "post_processor": post,
            "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
            "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                      "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": byte_fallback,
                      "vocab": vocab, "merges": [a + " " + b for a, b in BPE_MERGES]}}


CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
          "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


def tokenizer_seeds():
    bl = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    t1 = bpe_tokenizer_json(bl)
    cfg = {"add_bos_token": False, "bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "chat_template": CHATML}
    put("tokenizer", "bytelevel_bpe", json.dumps(t1))
    put("tokenizer", "bytelevel_bpe_config_text", json.dumps(t1) + SEP + json.dumps(cfg) + SEP +
        "Hello the world 123 <|im_start|>user\nhé€😀\t\r\n  x")
    split = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
         "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}
    post = {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}},
                                                     {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<|endoftext|>": {"id": "<|endoftext|>", "ids": [len(bpe_vocab())], "tokens": ["<|endoftext|>"]}}}
    t2 = bpe_tokenizer_json(split, post, normalizer={"type": "NFC"})
    put("tokenizer", "llama3_style", json.dumps(t2) + SEP + json.dumps({"bos_token": "<|endoftext|>"}) + SEP +
        "I'm here, it's 12345 apples!\n\nNew paragraph.")
    with open(os.path.join(ROOT, "tests", "tokenizer", "data", "tiny_metaspace.json"), "rb") as f:
        meta = f.read().decode("utf-8")
    put("tokenizer", "metaspace", meta)
    put("tokenizer", "metaspace_config", meta + SEP + json.dumps({"add_bos_token": True, "add_eos_token": True,
                                                                  "bos_token": {"content": "<s>"}}) + SEP + "▁Hello  world")


# ---- chat templates ---------------------------------------------------------------------------

def jinja_seeds():
    put("jinja", "chatml", CHATML)
    for d in ("llama3", "qwen3"):
        p = os.path.join(os.environ.get("AWQ_SHARED_DATA", os.path.join(ROOT, "..", "shared", "data")), "tokenizers", d,
                         "tokenizer_config.json")
        if os.path.exists(p):
            with open(p, encoding="utf-8") as f:
                put("jinja", d, json.load(f)["chat_template"])
    put("jinja", "llama2", "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
        "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
        "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
        "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
        "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
        "{% if loop.index0 == 0 and system_message != false %}"
        "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
        "{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}"
        "{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
        "{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}")
    put("jinja", "features",
        "{#- comment -#}\n{%- set ns = namespace(n=0, s='') -%}\n"
        "{%- for m in messages if m.role != 'system' -%}{%- set ns.n = ns.n + 1 -%}"
        "{{ loop.index }}/{{ loop.length }} {{ m.role|upper }}: {{ m.content|trim|replace('e', 'E') }}"
        "{% if not loop.last %}, {% else %}.{% endif %}{%- endfor %}\n"
        "{{ ns.n * 2 // 3 % 5 }} {{ (1.5 + 2) / 4 }} {{ [1, 2, 3]|join('-') }} {{ {'a': 1, 'b': [2]}|tojson }}\n"
        "{{ 'x' ~ 3 }} {{ messages|length }} {{ messages[-1].content[:2] }} {{ range(3)|list|reverse|first }}\n"
        "{%- for k, v in {'k': 'v'}.items() %}{{ k }}={{ v }}{% endfor %}"
        "{% if bos_token is defined and eos_token is string %}{{ bos_token }}{% endif %}"
        "{{ messages|selectattr('role', 'equalto', 'user')|map(attribute='content')|join('|') }}"
        "{% set x %}block {{ 1 }}{% endset %}{{ x|length }}{{ 'a b'.split(' ')|last|default('z') }}"
        "{% for i in range(5) %}{% if i == 1 %}{% continue %}{% endif %}{% if i == 3 %}{% break %}{% endif %}{{ i }}{% endfor %}"
        "{% generation %}gen{% endgeneration %}{{ none is none }} {{ 7 is odd }} {{ 'abc' is in 'xabcx' }}")
    put("jinja", "whitespace", "  {%+ if true -%}\n  text\n{%- endif +%}  {{- ' x ' -}}  {# c #}\n\n")


# ---- calibration ------------------------------------------------------------------------------

def calib_seeds():
    # byte 0: bit 0 jsonl, bits 1-3 samples, bits 4-7 seqlen; byte 1: seed
    with open(os.path.join(ROOT, "data", "calibration", "wiki.valid.raw"), encoding="utf-8") as f:
        wiki = f.read(6000)
    # short paragraphs (one sentence each), so that blocks of 32..512 tokens take several
    wiki = "\n\n".join(s.strip() + "." for s in wiki.replace("\n", " ").split(". ") if s.strip())
    put("calib", "txt_paragraphs", bytes([0x36, 0]) + wiki.encode())
    put("calib", "txt_shuffled", bytes([0x1e, 7]) + wiki.encode())
    lines = [json.dumps({"text": p.strip()}) for p in wiki.split("\n\n") if p.strip()]
    put("calib", "jsonl", bytes([0x27, 0]) + "\n".join(lines).encode())
    put("calib", "jsonl_bad_line", bytes([0x21, 3]) + (lines[0] + "\n{\"text\": 5}\n").encode())
    put("calib", "txt_blank_lines", bytes([0x02, 1]) + b"\n\n \t\n  Hello world.\n\n\nSecond   paragraph\r\n\n")


# ---- server requests --------------------------------------------------------------------------

def server_request_seeds():
    # HTTP bodies of POST /v1/chat/completions and /v1/completions (the target tries each as both)
    def req(name, body):
        put("server_request", name, body if isinstance(body, str) else json.dumps(body))
    msgs = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi, who are you?"}]
    req("chat_minimal", {"model": "m", "messages": [{"role": "user", "content": "Hello"}]})
    req("chat_all_params", {"model": "smollm2", "messages": msgs, "max_tokens": 16, "temperature": 0.7,
                            "top_p": 0.9, "top_k": 40, "min_p": 0.05, "seed": 1234, "stop": ["\n\n", "User:"],
                            "presence_penalty": 0.5, "frequency_penalty": -0.5, "repeat_penalty": 1.1, "n": 1,
                            "stream": True, "stream_options": {"include_usage": True}, "logprobs": False,
                            "ignore_eos": False})
    req("chat_content_parts", {"messages": [{"role": "user", "content": [{"type": "text", "text": "a"},
                                                                          {"type": "text", "text": "b"}]},
                                            {"role": "assistant", "content": None},
                                            {"role": "tool", "content": "42"}],
                               "max_completion_tokens": 3, "stop": "b"})
    req("chat_unknown_role", {"messages": [{"role": "wizard", "content": "x"}], "max_tokens": 1})
    req("chat_image_part", {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]})
    req("completion_all_params", {"model": "m", "prompt": "Once upon a time", "max_tokens": 8, "temperature": 0,
                                  "seed": -5, "stop": "time", "stream": False, "repetition_penalty": 1.3})
    req("completion_prompt_array", {"prompt": ["The capital of France is"], "max_tokens": 0, "stop": None,
                                    "seed": None, "top_p": 1})
    req("bad_types", {"prompt": 5, "messages": "hi", "max_tokens": "8", "temperature": True, "stream": 1,
                      "stop": [1, 2]})
    for k, v in (("max_tokens", -1), ("temperature", 2.5), ("top_p", 1.5), ("n", 2), ("seed", 1e300),
                 ("min_p", -0.1), ("repeat_penalty", 0)):
        req("bad_range_" + k, {"prompt": "x", "messages": [{"role": "user", "content": "x"}], k: v})
    req("bad_integers", '{"prompt": "x", "messages": [{"role": "user", "content": "x"}], "max_tokens": 1.5}')
    req("huge_numbers", '{"prompt": "x", "messages": [{"role": "user", "content": "x"}], "top_k": 1e999}')
    req("huge_max_tokens", '{"prompt": "x", "messages": [{"role": "user", "content": "x"}], '
        '"max_tokens": 9223372036854775808, "seed": -1e30}')
    req("huge_seed", '{"prompt": "x", "messages": [{"role": "user", "content": "x"}], "seed": -1e30}')
    req("too_many_stops", {"prompt": "x", "messages": [{"role": "user", "content": "x"}],
                           "stop": ["a", "b", "c", "d", "e"]})
    req("logprobs", {"prompt": "x", "messages": [{"role": "user", "content": "x"}], "logprobs": True})
    req("stream_options_bad", {"prompt": "x", "messages": [{"role": "user", "content": "x"}],
                               "stream_options": [True]})
    req("messages_empty", {"messages": [], "prompt": []})
    req("message_not_object", {"messages": ["user", {"content": "no role"}]})
    req("not_an_object", "[1, 2, {\"messages\": []}]")
    req("truncated", '{"messages": [{"role": "user", "content": "Hel')
    req("unicode", {"messages": [{"role": "user", "content": "h\u00e9llo \ud83d\ude00 \u0000 end"}],
                    "stop": ["\u00e9", ""]})


if __name__ == "__main__":
    safetensors_seeds()
    st_index_seeds()
    gguf_seeds()
    config_seeds()
    tokenizer_seeds()
    jinja_seeds()
    calib_seeds()
    server_request_seeds()
    for t in sorted(os.listdir(CORPUS)):
        files = os.listdir(os.path.join(CORPUS, t))
        print("%-12s %2d seeds, %7d bytes" % (t, len(files), sum(os.path.getsize(os.path.join(CORPUS, t, x)) for x in files)))
