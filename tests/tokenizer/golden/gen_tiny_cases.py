#!/usr/bin/env python3
"""Prints the expected ids of test_tok_pipeline.c's cases for data/tiny_metaspace.json, as
Hugging Face `tokenizers` encodes them (add_special_tokens=True), and the decoded text."""
import json, sys
from tokenizers import Tokenizer
tok = Tokenizer.from_file(sys.argv[1] if len(sys.argv) > 1 else 'data/tiny_metaspace.json')
cases = ["ab ab", "Ab 12 ", "\ufb01 on", "x <mask> y", "xy axy xy. xy", "a[SEP]  b", "\u00e9!", "", "  ab", "<s>ab"]
for c in cases:
    e = tok.encode(c)
    print(json.dumps(c), e.ids, json.dumps(tok.decode(e.ids, skip_special_tokens=False)))
