#!/usr/bin/env python3
"""Benchmark: every report format over a large scan, against the JSON report of the same scan.

    python bench/formats_at_scale.py [PATH ...]      (default: /usr/lib/x86_64-linux-gnu /usr/bin)

A result cache of its own is filled by one untimed pass of every format (each entry's facts, and its findings row
with the entry's JSON text, which every format shares), so each timed run below reads what it needs from it and
what differs is the report: `scan --format F --cache-dir C`, output to /dev/null. Printed per format: wall time, the
ratio to the JSON report's, and the peak resident set (wait4's). A report whose cost grows faster than the
artifacts (the SBOM libraries' whole-document checks were quadratic: 42 s and 103 s for 10,308 artifacts) shows
here as a ratio in the tens.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

FORMATS = ("json", "jsonl", "text", "sarif", "junit", "markdown", "cyclonedx", "spdx")


def run(paths: list[str], fmt: str, cache: str) -> tuple[float, int]:
    """(wall seconds, peak RSS bytes) of one scan."""
    cmd = [sys.executable, "-m", "analyzer", "scan", "--format", fmt, "--cache-dir", cache, "--fail-on", "never",
           "-o", "/dev/null", *paths]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)}: exit {os.waitstatus_to_exitcode(status)}")
    return time.perf_counter() - start, usage.ru_maxrss * 1024


def main(argv: list[str]) -> int:
    paths = argv or ["/usr/lib/x86_64-linux-gnu", "/usr/bin"]
    with tempfile.TemporaryDirectory(prefix="binlens-formats-") as cache:
        for fmt in FORMATS:  # (the facts, findings and JSON text, once)
            run(paths, fmt, cache)
        out = subprocess.run([sys.executable, "-m", "analyzer", "scan", "--format", "jsonl", "--cache-dir", cache,
                              "--fail-on", "never", *paths], capture_output=True, text=True).stdout  # fmt: skip
        print(f"{' '.join(paths)}: {out.count(chr(10)) - 1} artifacts")
        times = {}
        for fmt in FORMATS:
            times[fmt], peak = run(paths, fmt, cache)
            print(f"{fmt:<10} {times[fmt]:7.2f} s   ratio to json {times[fmt] / times['json']:6.1f}   "
                  f"peak RSS {peak / 2**20:6.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
