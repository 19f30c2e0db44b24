#!/usr/bin/env python3
"""Benchmark: binlens' Go build info reader against `go version -m`, on the same files, in one run.

    python bench/go_vs_go_version.py [FILE_OR_DIR ...]

Default: every Go fixture (fixtures/build.py) and the Go toolchain's own
binaries (GOROOT/bin and GOROOT/pkg/tool). Times `go version -m FILES...` and
`binlens go FILES...` (which computes every fact of each file, the build info
among them) after one untimed warm-up pass each, and prints the ratio.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "fixtures"))

from timing import compare  # noqa: E402


def go_files() -> tuple[str, list[str]]:
    import build

    go = str(build.go_binary())
    goroot = Path(subprocess.run([go, "env", "GOROOT"], capture_output=True, text=True).stdout.strip())
    files = [str(p) for name, p in build.build_all().items() if "go" in build.BY_NAME[name].tags]
    for d in (goroot / "bin", *sorted((goroot / "pkg" / "tool").glob("*"))):
        files += [str(p) for p in sorted(d.iterdir()) if p.is_file()]
    return go, files


def main(argv: list[str]) -> int:
    go, files = go_files()
    if argv:
        files = argv
    size = sum(os.path.getsize(f) for f in files)
    runs = {
        "go version -m": [[go, "version", "-m", *files]],
        "binlens go": [[sys.executable, "-m", "analyzer", "go", *files]],
    }
    print(f"files: {len(files)} Go binaries, {size / 1e6:.1f} MB, {os.cpu_count()} cores")
    compare(runs, "go version -m")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
