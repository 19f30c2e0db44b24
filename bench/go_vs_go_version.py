#!/usr/bin/env python3
"""Benchmark: binlens' Go build info reader against `go version -m`, on the same files, in one run.

    python bench/go_vs_go_version.py [ROUNDS] [FILE ...]

Default: every Go fixture (fixtures/build.py) and the Go toolchain's own
binaries (GOROOT/bin and GOROOT/pkg/tool). Times `go version -m FILES...` and
`binlens go FILES...` on all the files and on the first ten, each command once
per round in turn after one untimed pass, and prints the medians and ratios:
binlens as a wheel installs it (bytecode compiled, no editable-install hook:
timing.wheel_install) and as this checkout runs it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "fixtures"))

from timing import alternating, wheel_install  # noqa: E402


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
    if argv and argv[0].isdigit():
        rounds, argv = int(argv[0]), argv[1:]
    else:
        rounds = 21
    if argv:
        files = argv
    installed = wheel_install(str(ROOT))  # what users run: a wheel install, bytecode compiled
    for some in (files, files[:10]):
        size = sum(os.path.getsize(f) for f in some)
        print(f"files: {len(some)} Go binaries, {size / 1e6:.1f} MB, {os.cpu_count()} cores; median of {rounds} rounds")
        alternating({
            "go version -m": [[go, "version", "-m", *some]],
            "binlens go (wheel install)": [[installed, "go", *some]],
            "binlens go (this checkout)": [[sys.executable, "-m", "analyzer", "go", *some]],
        }, "go version -m", rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
