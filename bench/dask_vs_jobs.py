#!/usr/bin/env python3
"""Benchmark: `binlens scan --dask local:2` against `binlens scan --jobs 2` on the same files.

    python bench/dask_vs_jobs.py [DIR]      (default: /usr/bin)

Both scan DIR (`--format json --no-cache`, output to /dev/null), binlens as a wheel installs it, after one
untimed pass, in 7 alternating rounds; printed per run: the median wall time, the median CPU time of the scan
and every process it waited for (its pool's workers; the local cluster's nannies and workers), the cores that
kept busy on average, and the ratio to `--jobs 2` (the aim: at most 1.0). Then the bound this machine sets: no
run can take less wall time than its CPU time over the machine's cores, so where Dask's CPU time over the cores
exceeds the pool's wall time, Dask cannot match the pool here, whatever its scheduling; with the CPU time Dask
adds (importing distributed, the scheduler, nannies and client in the scan's process, each task's round trip)
given a core of its own, it could.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench")]

from timing import alternating_cpu, wheel_install  # noqa: E402


def main() -> None:
    target = sys.argv[1] if len(sys.argv) > 1 else "/usr/bin"
    installed = wheel_install(str(ROOT))
    scan = [installed, "scan", "--format", "json", "-o", "/dev/null", "--fail-on", "never", "--no-cache"]
    cores = len(os.sched_getaffinity(0))
    files = sum(1 for p in Path(target).iterdir() if p.is_file())
    print(f"{target} ({files} files), {cores} cores; medians of 7 alternating rounds")
    runs = {"--jobs 2": [[*scan, "--jobs", "2", target]], "--dask local:2": [[*scan, "--dask", "local:2", target]]}
    med = alternating_cpu(runs, "--jobs 2", 7)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import distributed"], check=True)
    imported = time.perf_counter() - start
    (pool_wall, pool_cpu), dask_cpu = med["--jobs 2"], med["--dask local:2"][1]
    floor = dask_cpu / cores
    print(f"Dask's CPU time over the pool's: +{dask_cpu - pool_cpu:.2f} s (importing distributed alone: "
          f"{imported:.2f} s, before any worker starts)")
    print(f"least wall time Dask's CPU time allows on {cores} cores: {floor:.2f} s, "
          f"{floor / pool_wall:.2f} x the pool's wall time" + ("  (above 1.0: the aim is out of reach here)"
                                                               if floor > pool_wall else ""))


if __name__ == "__main__":
    main()
