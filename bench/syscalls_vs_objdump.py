#!/usr/bin/env python3
"""Benchmark: binlens' system-call inventory against `objdump -d` on the same files.

    python bench/syscalls_vs_objdump.py [GO_BINARY]

1. A large Go program (default: Debian's hugo, 53 MB, fetched with `apt-get download` into the fixture
   cache): `binlens scan --facts syscalls` (the program's own sites, numbers resolved through its wrappers)
   against `objdump -d` of it.
2. A dynamic program with its libraries: `binlens syscalls /usr/bin/ls` (the libraries resolved in / and
   modelled once each) against `objdump -d` of ls and every library it loads.
Each after one untimed pass; ratios to objdump printed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "fixtures"))

from timing import compare  # noqa: E402


def hugo() -> str:
    import build

    out = build.CACHE / "bench-hugo" / "usr" / "bin" / "hugo"
    if not out.exists():
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["apt-get", "download", "hugo"], cwd=tmp, check=True, capture_output=True)
            deb = next(Path(tmp).glob("hugo_*.deb"))
            subprocess.run(["dpkg-deb", "-x", str(deb), str(build.CACHE / "bench-hugo")], check=True)
    return str(out)


def libraries(program: str) -> list[str]:
    """The files the loader maps for `program` (ldd's list, the vDSO left out)."""
    out = subprocess.run(["ldd", program], capture_output=True, text=True, check=True).stdout
    found = []
    for line in out.splitlines():
        parts = line.split()
        path = parts[2] if "=>" in parts and len(parts) > 2 else parts[0]
        if path.startswith("/"):
            found.append(os.path.realpath(path))
    return found


def main(argv: list[str]) -> int:
    binlens = [sys.executable, "-m", "analyzer"]
    go = argv[0] if argv else hugo()
    print(f"{go}: {os.path.getsize(go) / 1e6:.1f} MB, {os.cpu_count()} cores")
    compare({"objdump -d": [["objdump", "-d", go]],
             "binlens scan --facts syscalls": [[*binlens, "scan", "--facts", "syscalls", "--format", "json", go]]},
            "objdump -d")  # fmt: skip
    ls = "/usr/bin/ls"
    files = [ls, *libraries(ls)]
    print(f"\n{ls} and its libraries: {', '.join(files[1:])}")
    compare({"objdump -d": [["objdump", "-d", *files]],
             "binlens syscalls --no-cache": [[*binlens, "syscalls", "--format", "json", "--no-cache", ls]],
             "binlens syscalls (models kept)": [[*binlens, "syscalls", "--format", "json", ls]]},
            "objdump -d")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
