#!/usr/bin/env python3
"""Start-up: how long binlens takes when there is almost nothing to do, against a bare interpreter.

    python bench/startup.py [ROUNDS]          # default 15 rounds

binlens is a wheel install of this checkout (bench/timing.py `wheel_install`). Each round runs every command
once, in turn (so a busy moment hits all alike); the median of the rounds is
printed with its ratio to `python -c 'import hashlib, json, mmap'` on the same interpreter (the issue's
baseline). Commands: `scan --format json /bin/true` without and with the result cache, the text report of
the same scan written to a pipe, `--help`, `rules`,
`targets`, and `go` on one Go program (`go version -m` beside it when the go command is found).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _once(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=False)
    return time.perf_counter() - start


def main(argv: list[str]) -> int:
    rounds = int(argv[0]) if argv else 15
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from timing import wheel_install

    # what users run: a wheel install, bytecode compiled (the checkout's modules are compiled again on every run
    # where PYTHONDONTWRITEBYTECODE is set and their bytecode is stale, and its editable-install hook costs more)
    base = [wheel_install(str(ROOT))]
    env = dict(os.environ, XDG_CACHE_HOME=tempfile.mkdtemp(prefix="binlens-bench-"), NO_COLOR="1")
    runs: dict[str, list[str]] = {
        "python -c 'import hashlib, json, mmap'": [sys.executable, "-c", "import hashlib, json, mmap"],
        "scan --format json /bin/true (no cache)": [*base, "scan", "--format", "json", "--no-cache", "/bin/true"],
        "scan --format json /bin/true (cached)": [*base, "scan", "--format", "json", "/bin/true"],
        "scan /bin/true (text to a pipe, no cache)": [*base, "scan", "--no-cache", "/bin/true"],
        "--help": [*base, "--help"],
        "rules": [*base, "rules"],
        "targets": [*base, "targets"],
    }
    go = shutil.which("go", path=str(Path(sys.executable).parent))
    goroot = subprocess.run([go, "env", "GOROOT"], capture_output=True, text=True).stdout.strip() if go else ""
    gofmt = Path(goroot) / "bin" / "gofmt"
    if gofmt.is_file():
        runs[f"go {gofmt.name}"] = [*base, "go", str(gofmt)]
        runs[f"go version -m {gofmt.name}"] = [str(Path(goroot) / "bin" / "go"), "version", "-m", str(gofmt)]
    for cmd in runs.values():  # warm: page cache, .pyc files, the result cache for the cached run
        _once(cmd, env)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, cmd in runs.items():
            times[name].append(_once(cmd, env))
    baseline = statistics.median(next(iter(times.values())))
    width = max(len(n) for n in runs)
    print(f"median of {rounds} rounds, {os.cpu_count()} cores, {sys.executable}")
    for name, ts in times.items():
        t = statistics.median(ts)
        print(f"{name:<{width}}  {t * 1000:7.1f} ms   ratio to bare python {t / baseline:5.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
