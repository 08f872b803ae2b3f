#!/usr/bin/env python3
"""Copies kernels/ into the build tree with the three rewrites the CPU stand-in runtime needs (tests/emu-runtime).

  k<<<grid, block[, smem[, stream]]>>>(args);  ->  EMU_LAUNCH(k, grid, block, smem, stream, args);
  extern __shared__ [__align__(n)] T name[];   ->  T *name = (T *)emu_dyn_smem();
  #include "../host/x.h"                        ->  #include "x.h"   (host/ is on the include path)

Each NAME.cu becomes NAME.cu.cpp (compiled by the C++ compiler); headers keep their names. The source tree is
never written. Files are rewritten only when their content changes, so a rebuild recompiles what changed.
Usage: transform.py KERNELS_DIR OUT_DIR"""
import os
import re
import sys


def split_top(s):
    out, depth, cur = [], 0, ''
    for ch in s:
        if ch in '([{':
            depth += 1
        elif ch in ')]}':
            depth -= 1
        if ch == ',' and depth == 0:
            out.append(cur)
            cur = ''
        else:
            cur += ch
    out.append(cur)
    return [x.strip() for x in out]


LAUNCH = re.compile(r'([A-Za-z_][\w:]*(?:<[^<>;]*>)?)\s*<<<(.*?)>>>\s*\((.*?)\)\s*;', re.S)
SHARED = re.compile(r'extern\s+__shared__\s+(?:__align__\(\s*\d+\s*\)\s+)?([A-Za-z_][\w\s:]*?)\s*([A-Za-z_]\w*)\s*\[\s*\]\s*;')


def launch(m):
    cfg = split_top(m.group(2))
    if not 2 <= len(cfg) <= 4:
        raise SystemExit('transform.py: cannot parse launch %r' % m.group(0))
    while len(cfg) < 4:
        cfg.append('0')
    fn = m.group(1) if ',' not in m.group(1) else '(%s)' % m.group(1)
    args = m.group(3)  # newlines kept: compiler messages keep the source's line numbers
    return 'EMU_LAUNCH(%s, %s, %s, %s, %s%s);' % (fn, cfg[0], cfg[1], cfg[2], cfg[3], ', ' + args if args.strip() else '')


def transform(text):
    text = SHARED.sub(lambda m: '%s *%s = (%s *)emu_dyn_smem();' % (m.group(1), m.group(2), m.group(1)), text)
    text = LAUNCH.sub(launch, text)
    text = re.sub(r'#include\s+"\.\./host/', '#include "', text)
    if '<<<' in re.sub(r'//.*', '', text):
        raise SystemExit('transform.py: a kernel launch was left unrewritten')
    return text


def main():
    src, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    for name in sorted(os.listdir(src)):
        if not name.endswith(('.cu', '.cuh', '.h')):
            continue
        with open(os.path.join(src, name)) as f:
            text = transform(f.read())
        dst = os.path.join(out, name + '.cpp' if name.endswith('.cu') else name)
        if os.path.exists(dst):
            with open(dst) as f:
                if f.read() == text:
                    continue
        with open(dst, 'w') as f:
            f.write(text)


if __name__ == '__main__':
    main()
