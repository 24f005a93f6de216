#!/usr/bin/env python3
"""doxygen_filter.py FILE - presents a public header's plain C comments to Doxygen.

The headers use ordinary /* */ comments. Doxygen reads only /** */ (before a declaration) and
/**< */ (after a member on the same line), so this input filter (docs/Doxyfile FILTER_PATTERNS)
rewrites, line by line, keeping the line count:
  - the first comment of the file           -> /** @file ...
  - a rule "/* ------...------ */" and the title line right after it -> dropped (empty lines)
  - a banner "/* ---- name ---- */"          -> dropped (empty line)
  - a comment that starts a line            -> /** ...   (documents what follows)
  - a comment after code on the same line   -> /**< ...  (documents that member)
Comments inside a comment, strings and function bodies are left alone.
"""
import re
import sys

RULE = re.compile(r'^\s*/\*\s*-{20,}\s*\*/\s*$')        # a full-width rule: a title follows
BANNER = re.compile(r'^\s*/\*\s*-{4}.*-{4}\s*\*/\s*$')   # "/* ---- name ---- */" 
TITLE = re.compile(r'^\s*/\*[^*].*\*/\s*$')


def main(path):
    lines = open(path, encoding='utf-8').read().split('\n')
    out = []
    in_comment = False
    seen_first = False
    depth = 0  # brace depth inside static inline function bodies
    prev_banner = False
    for line in lines:
        if in_comment:
            out.append(line)
            if '*/' in line:
                in_comment = False
            continue
        if RULE.match(line):
            out.append('')
            prev_banner = True
            continue
        if BANNER.match(line):
            out.append('')
            prev_banner = False
            continue
        if line.lstrip().startswith('/* ----'):  # a banner over several lines: not documentation
            out.append(line)
            in_comment = '*/' not in line
            prev_banner = False
            continue
        if prev_banner and TITLE.match(line):
            out.append('')
            prev_banner = False
            continue
        prev_banner = False
        stripped = line.lstrip()
        if stripped.startswith('/*') and not stripped.startswith('/**'):
            indent = line[:len(line) - len(stripped)]
            if not seen_first:
                line = indent + '/** @file' + stripped[2:]
            elif depth == 0:
                line = indent + '/**' + stripped[2:]
            seen_first = True
        elif '/*' in line and not stripped.startswith('#include') and depth == 0:
            i = line.index('/*')
            if line[i:i + 3] != '/**' and '"' not in line[:i]:
                line = line[:i] + '/**<' + line[i + 2:]
        # track comments left open on this line and function-body braces
        code = re.sub(r'/\*.*?\*/', '', line)
        if '/*' in code:
            in_comment = True
            code = code[:code.index('/*')]
        if re.match(r'^static inline', stripped) or depth > 0:
            depth += code.count('{') - code.count('}')
        out.append(line)
    sys.stdout.write('\n'.join(out))


if __name__ == '__main__':
    main(sys.argv[1])
