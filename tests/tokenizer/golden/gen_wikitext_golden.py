#!/usr/bin/env python3
"""Writes wikitext_ids.txt: for each tokenizer, the number of ids Hugging Face `tokenizers`
produces for the whole WikiText-2 test file (add_special_tokens=False) and the FNV-1a 64-bit
hash of those ids (each id as 4 little-endian bytes). test_tok_wikitext.c compares ours with it.

Usage: python3 gen_wikitext_golden.py SHARED_DATA_DIR > wikitext_ids.txt
Needs: pip install tokenizers gguf (only to regenerate; the tests need no Python).

The GGUF vocabularies are turned into a `tokenizers` object here, independently of our C code:
BPE(vocab, merges) with the pre-tokenizer llama.cpp associates with tokenizer.ggml.pre, or, for
the SentencePiece vocabulary, a byte-fallback BPE whose merges come from the token scores
(the conversion transformers uses for Llama tokenizers).
"""
import struct
import sys

import gguf
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers

GPT2_RE = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"


def fnv64(ids):
    h = 0xcbf29ce484222325
    for i in ids:
        for b in struct.pack('<i', i):
            h ^= b
            h = (h * 0x100000001b3) & 0xffffffffffffffff
    return h


def gguf_arrays(path):
    r = gguf.GGUFReader(path)
    f = r.fields
    def strs(k):
        fl = f[k]
        return [bytes(fl.parts[i]).decode('utf-8') for i in fl.data]
    def nums(k):
        fl = f[k]
        return [fl.parts[i].tolist()[0] for i in fl.data]
    def s(k):
        return bytes(f[k].parts[f[k].data[0]]).decode() if k in f else None
    return r, strs, nums, s


def from_gguf_bpe(path):
    r, strs, nums, s = gguf_arrays(path)
    tokens = strs('tokenizer.ggml.tokens')
    merges = [tuple(m.split(' ', 1)) for m in strs('tokenizer.ggml.merges')]
    vocab = {t: i for i, t in enumerate(tokens)}
    tok = Tokenizer(models.BPE(vocab, merges, ignore_merges=False))
    pre = s('tokenizer.ggml.pre')
    seq = []
    if pre in ('starcoder', 'smollm'):
        seq.append(pre_tokenizers.Split(Regex(r'\p{N}'), 'isolated'))
    seq.append(pre_tokenizers.Split(Regex(GPT2_RE), 'isolated'))
    seq.append(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence(seq)
    tok.decoder = decoders.ByteLevel()
    types = nums('tokenizer.ggml.token_type')
    from tokenizers import AddedToken
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                            for t, ty in zip(tokens, types) if ty == 3])
    return tok


def from_gguf_spm(path):
    r, strs, nums, s = gguf_arrays(path)
    tokens = strs('tokenizer.ggml.tokens')
    scores = nums('tokenizer.ggml.scores')
    types = nums('tokenizer.ggml.token_type')
    vocab = {t: i for i, t in enumerate(tokens)}
    # merges: every split of a normal token into two vocabulary tokens, ordered by the merged
    # token's score (descending), then by id
    merges = []
    for i, t in enumerate(tokens):
        if types[i] != 1 or len(t) < 2:
            continue
        for k in range(1, len(t)):
            a, b = t[:k], t[k:]
            if a in vocab and b in vocab:
                merges.append((-scores[i], i, k, a, b))
    merges.sort()
    tok = Tokenizer(models.BPE(vocab, [(a, b) for *_, a, b in merges], unk_token='<unk>',
                               fuse_unk=True, byte_fallback=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend('▁'), normalizers.Replace(' ', '▁')])
    tok.decoder = decoders.Sequence([decoders.Replace('▁', ' '), decoders.ByteFallback(),
                                     decoders.Fuse(), decoders.Strip(' ', 1, 0)])
    from tokenizers import AddedToken
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                            for t, ty in zip(tokens, types) if ty in (2, 3)])
    return tok


def main():
    d = sys.argv[1]
    text = open(f'{d}/wikitext-2/wiki.test.raw', encoding='utf-8').read()
    toks = [
        ('llama3', Tokenizer.from_file(f'{d}/tokenizers/llama3/tokenizer.json')),
        ('qwen3', Tokenizer.from_file(f'{d}/tokenizers/qwen3/tokenizer.json')),
    ]
    for name in ('gpt-2', 'starcoder'):
        toks.append((name, from_gguf_bpe(f'{d}/tokenizer-tests/ggml-vocab-{name}.gguf')))
    toks.append(('llama-spm', from_gguf_spm(f'{d}/tokenizer-tests/ggml-vocab-llama-spm.gguf')))
    for name, tok in toks:
        ids = tok.encode(text, add_special_tokens=False).ids
        print(f'{name} {len(ids)} {fnv64(ids):016x}')


if __name__ == '__main__':
    main()
