#!/usr/bin/env python3
"""Benchmark: the scaling curve and the peak memory of `binlens scan` over a corpus.

    python bench/scan_curve.py [DIR ...]      (default: /usr/bin /usr/lib)

The ELF files under the directories (symlinks not followed, sorted), then the first quarter, the first half
and all of them, each scanned (`scan --format json --no-cache`, output to /dev/null, after one untimed pass of
the whole corpus) with `--jobs 1` and `--jobs 2`. Printed per run: files, MB, wall time, the cost per file and
per MB, the parallel efficiency (time with 1 worker / (2 × time with 2)), and the peak resident set of the
scan's processes (wait4's: the largest of the main process and its workers) against the aim, 1.5 × the
largest input file + 100 MB.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from scan_vs_readelf import BATCH, elf_files


def run(files: list[str], jobs: int) -> tuple[float, int]:
    """(wall seconds, peak RSS bytes over the scan's processes) of one scan of `files` (in batches)."""
    wall, peak = 0.0, 0
    for i in range(0, len(files), BATCH):
        cmd = [sys.executable, "-m", "analyzer", "scan", "--format", "json", "--no-cache", "--fail-on", "never",
               "--jobs", str(jobs), "-o", "/dev/null", *files[i : i + BATCH]]  # fmt: skip
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall += time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        peak = max(peak, usage.ru_maxrss * 1024)
    return wall, peak


def main(argv: list[str]) -> int:
    roots = argv or ["/usr/bin", "/usr/lib"]
    files = elf_files(roots)
    run(files, 2)  # the page cache warm
    print(f"corpus: {len(files)} ELF files under {' '.join(roots)}, {os.cpu_count()} cores")
    print(f"{'part':>6} {'files':>6} {'MB':>8} {'jobs':>4} {'wall s':>7} {'ms/file':>8} {'ms/MB':>7} "
          f"{'eff.':>5} {'peak MB':>8} {'aim MB':>7}")  # fmt: skip
    for part, share in (("1/4", 4), ("1/2", 2), ("all", 1)):
        chosen = files[: len(files) // share]
        size = sum(os.path.getsize(f) for f in chosen)
        aim = 1.5 * max(os.path.getsize(f) for f in chosen) + 100e6
        one = None
        for jobs in (1, 2):
            wall, peak = run(chosen, jobs)
            one = wall if jobs == 1 else one
            eff = f"{one / (2 * wall):.2f}" if jobs == 2 and one else ""
            print(f"{part:>6} {len(chosen):>6} {size / 1e6:>8.1f} {jobs:>4} {wall:>7.2f} "
                  f"{1000 * wall / len(chosen):>8.2f} {1000 * wall / (size / 1e6):>7.2f} {eff:>5} "
                  f"{peak / 1e6:>8.0f} {aim / 1e6:>7.0f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
