#!/usr/bin/env python3
"""Benchmark: `scan --format jsonl` keeps flat memory as the number of artifacts grows.

    python bench/jsonl_memory.py [N ...]      (default: 10000 40000 100000)

For each N, a directory of N hard links to a small program (copies of /usr/bin/true: N artifacts, each
read, hashed and analysed) is scanned with `--format jsonl --no-cache` into /dev/null; printed: the wall time
and the peak resident set over the scan's processes (wait4's). Flat memory: the peak does not grow with N.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time


def main(argv: list[str]) -> int:
    counts = [int(a) for a in argv] or [10_000, 40_000, 100_000]
    print(f"{'artifacts':>10} {'wall s':>7} {'peak MB':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        made = 0
        for n in counts:
            for i in range(made, n):
                d = os.path.join(tmp, f"d{i // 1000}")
                os.makedirs(d, exist_ok=True)
                source = os.path.join(tmp, f"true{i // 50_000}")  # a file has at most 65,000 links (ext4)
                if not os.path.exists(source):
                    shutil.copy("/usr/bin/true", source)
                os.link(source, os.path.join(d, f"t{i}"))
            made = max(made, n)
            cmd = [sys.executable, "-m", "analyzer", "scan", "--format", "jsonl", "--no-cache", "--fail-on", "never",
                   "-o", "/dev/null", tmp]  # fmt: skip
            start = time.perf_counter()
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            _, _, usage = os.wait4(proc.pid, 0)
            print(f"{n:>10} {time.perf_counter() - start:>7.1f} {usage.ru_maxrss / 1024:>8.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
