#!/usr/bin/env python3
"""Benchmark: binlens against readelf on the same ELF files, in one run.

    python bench/scan_vs_readelf.py [DIR ...]      (default: /usr/bin /usr/lib)

Collects every ELF file under the directories (symlinks not followed), then
times, on the same files, each after one untimed warm-up pass so both read
from the page cache:

  readelf -hlSdVW --dyn-syms FILES...       (binutils, one process, one core: issue 15's baseline)
  readelf -hlSdVW FILES...                  (the same without the dynamic symbol tables)
  binlens scan --format json FILES...       (every default fact, both cores; a wheel install)
  binlens scan --format json DIRS...        (binlens walks and sniffs itself)

and prints files, bytes, the wall times and the ratios. Output goes to
/dev/null; files are passed in batches that fit the command line.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from timing import compare, wheel_install

ROOT = Path(__file__).resolve().parent.parent
BATCH = 1500  # paths per command line


def elf_files(roots: list[str]) -> list[str]:
    """Every ELF file under the roots, symlinks not followed, sorted."""
    from analyzer.load import sniff_file
    from analyzer.load.sources import walk

    return [p for root in roots for p in walk(root) if sniff_file(p) == "ELF"]


def batches(prefix: list[str], files: list[str]) -> list[list[str]]:
    return [prefix + files[i : i + BATCH] for i in range(0, len(files), BATCH)]


def main(argv: list[str]) -> int:
    roots = argv or ["/usr/bin", "/usr/lib"]
    readelf = shutil.which("readelf")
    if not readelf:
        print("readelf not found (apt-get install binutils-multiarch)", file=sys.stderr)
        return 2
    files = elf_files(roots)
    size = sum(os.path.getsize(f) for f in files)
    # binlens as a wheel installs it (bytecode compiled); facts computed, not reused from the result cache
    binlens = [wheel_install(str(ROOT)), "scan", "--format", "json", "--no-cache"]
    runs = {
        "readelf -hlSdVW --dyn-syms FILES": batches([readelf, "-hlSdVW", "--dyn-syms"], files),
        "readelf -hlSdVW FILES": batches([readelf, "-hlSdVW"], files),
        "binlens scan FILES": batches(binlens, files),
        "binlens scan DIRS": [binlens + roots],
    }
    print(f"files: {len(files)} ELF under {' '.join(roots)}, {size / 1e6:.1f} MB, {os.cpu_count()} cores")
    # issue 15's aim is against the first (the symbol tables are read: binlens reads them too)
    compare(runs, "readelf -hlSdVW --dyn-syms FILES")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
