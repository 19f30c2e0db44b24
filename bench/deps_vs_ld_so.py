#!/usr/bin/env python3
"""Benchmark: resolving and binding every dynamic ELF under /usr/bin, binlens against `ld.so --list`, and the
first 200 of them against `ldd -r`.

    python bench/deps_vs_ld_so.py [DIR]

`ld.so --list FILE` maps a program's libraries and runs nothing of it (one
process per file, as ldd does); `binlens deps FILES...` (a wheel install of
this checkout, bytecode compiled: timing.wheel_install) resolves the same
programs in one process, reading each library once, and also binds every
undefined symbol with version checks (a static `ldd -r`), which `--list`
does not do.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from timing import alternating, compare, wheel_install

LDSO = "/lib64/ld-linux-x86-64.so.2"
ROOT = Path(__file__).resolve().parent.parent


def programs(root: str) -> list[str]:
    from analyzer import load
    from analyzer.load.sources import walk

    out = []
    for p in walk(root):
        if load.sniff_file(p) != "ELF":
            continue
        try:
            elf = load.open_artifacts(p)[0].binary
        except Exception:
            continue
        if elf.interpreter == LDSO:
            out.append(p)
    return out


def main(argv: list[str]) -> int:
    files = programs(argv[0] if argv else "/usr/bin")
    binlens = wheel_install(str(ROOT))  # what users run: a wheel install, bytecode compiled
    deps = [binlens, "deps", "--format", "json"]
    runs = {
        "ld.so --list (each)": [[LDSO, "--list", f] for f in files],
        "binlens deps (resolve+bind)": [deps + files[i : i + 1000] for i in range(0, len(files), 1000)],
    }
    print(f"programs: {len(files)} dynamic ELF under {argv[0] if argv else '/usr/bin'}, {os.cpu_count()} cores")
    compare(runs, "ld.so --list (each)")
    # issue 15's two aims: `deps --no-bind` (the libraries only) against `ld.so --list` on every program, medians
    # of alternating rounds; and the first 200 programs, binding included, against `ldd -r` (which relocates)
    print("deps --no-bind, text, median of 7 rounds")
    alternating({"ld.so --list (each)": [[LDSO, "--list", f] for f in files],
                 "binlens deps --no-bind": [[binlens, "deps", "--no-bind", *files]]}, "ld.so --list (each)", 7)
    first = files[:200]
    print(f"programs: the first {len(first)}")
    compare({"ldd -r (each)": [["ldd", "-r", f] for f in first], "binlens deps --format json": [deps + first],
             "binlens deps (text)": [deps[:-2] + first]}, "ldd -r (each)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
