#!/usr/bin/env python3
"""Benchmark: binlens' size facts against binutils `size -A`, on the largest binaries at hand.

    python bench/size_vs_size.py [FILE ...]

Default: the Go toolchain's own binaries (GOROOT/bin, GOROOT/pkg/tool/*), the
go command rebuilt with its DWARF (a larger binary), and the Go fixtures.
Times `size -A FILES...` and `binlens scan --format json FILES...` (every
default fact, strip predictions included) after one untimed pass each.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "fixtures"))

from timing import compare  # noqa: E402


def default_files() -> list[str]:
    import build

    go = str(build.go_binary())
    goroot = Path(subprocess.run([go, "env", "GOROOT"], capture_output=True, text=True).stdout.strip())
    big = build.CACHE / "bench-go-with-dwarf"
    if not big.exists():  # cmd/go as a user would build it: DWARF and symbols kept
        env = dict(os.environ, GOCACHE=str(build.CACHE / "go-cache-1.27.3"), GOTOOLCHAIN="local", GOFLAGS="")
        subprocess.run([go, "build", "-o", str(big), "cmd/go"], cwd=goroot / "src", env=env, check=True)
    files = [str(big)]
    for d in (goroot / "bin", *sorted((goroot / "pkg" / "tool").glob("*"))):
        files += [str(p) for p in sorted(d.iterdir()) if p.is_file()]
    files += [
        str(p) for n, p in build.build_all().items() if "elf" in build.BY_NAME[n].tags and "go" in build.BY_NAME[n].tags
    ]
    return files


def main(argv: list[str]) -> int:
    files = argv or default_files()
    size = sum(os.path.getsize(f) for f in files)
    runs = {"size -A": [["size", "-A", *files]],
            "binlens scan": [[sys.executable, "-m", "analyzer", "scan", "--format", "json", *files]]}  # fmt: skip
    largest = max(os.path.getsize(f) for f in files)
    print(f"files: {len(files)}, {size / 1e6:.1f} MB, the largest {largest / 1e6:.1f} MB, {os.cpu_count()} cores")
    compare(runs, "size -A")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
