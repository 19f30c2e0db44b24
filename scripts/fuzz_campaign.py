#!/usr/bin/env python3
"""The long fuzzing campaign (CI runs a bounded budget in tests/test_fuzz.py).

    python scripts/fuzz_campaign.py [COUNT] [SEED] [SINGLY]   # default: 10,000 mutants, seed 0, 200 singly

Writes COUNT structure-aware mutants (fixtures/mutate.py) of one fixture per reader into a temporary
directory, then:
1. analyses each in this process: anything but facts or one AnalyzerError naming the file is a crasher, and
   so is one that takes 10 s or more; the process's peak memory is printed (it bounds every mutant's);
2. scans the whole directory with `binlens scan --format json`, with two workers and with one: exit 0 or 1,
   JSON out, no traceback, every artifact with facts or an error, and the two reports byte-identical;
3. scans SINGLY of them one by one (0: all of them): exit 0, 1 or 2, one line on stderr for 2, under 10 s
   and 1 GiB of peak memory each (the child's own, from wait4).
Crashers are printed as (source, seed): add them to CRASHERS in tests/test_fuzz.py, which replays them.
Exit 1 when anything failed.
"""

from __future__ import annotations

import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "fixtures"))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))
LIMIT_SECONDS, LIMIT_BYTES = 10.0, 2**30  # per mutant, as the hostile-input issue asks


def main(argv: list[str]) -> int:
    import build
    import mutate
    from test_fuzz import SOURCES

    from analyzer import pipeline
    from analyzer.errors import AnalyzerError

    count = int(argv[0]) if argv else 10_000
    master = random.Random(int(argv[1]) if len(argv) > 1 else 0)
    singly = int(argv[2]) if len(argv) > 2 else 200
    built = build.build_all(SOURCES)
    crashers, failures, slowest = [], 0, 0.0
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "mutants"
        folder.mkdir()
        for i in range(count):
            source = SOURCES[i % len(SOURCES)]
            seed = master.randrange(2**32)
            path = folder / f"{i:05}-{source}-{seed}"
            path.write_bytes(mutate.mutate(built[source].read_bytes(), random.Random(seed)))
            started = time.monotonic()
            try:
                pipeline.analyze_file(str(path))
            except AnalyzerError as e:
                if str(path) not in str(e) or "\n" in str(e):
                    crashers.append((source, seed, f"error without the path or on several lines: {e}"))
            except Exception as e:  # noqa: BLE001 - what the campaign is looking for
                crashers.append((source, seed, f"{type(e).__name__}: {e}"))
            took = time.monotonic() - started
            slowest = max(slowest, took)
            if took >= LIMIT_SECONDS:
                crashers.append((source, seed, f"took {took:.1f} s"))
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        print(f"{count} mutants analysed in process: {len(crashers)} crashers, slowest {slowest:.2f} s, "
              f"peak memory of the process {peak / 2**20:.0f} MiB")  # fmt: skip
        failures += peak >= LIMIT_BYTES
        for c in crashers:
            print("  crasher", c)
        reports = []
        for jobs in ("2", "1"):
            run = subprocess.run([sys.executable, "-m", "analyzer", "scan", "--format", "json", "--jobs", jobs,
                                  str(folder)], capture_output=True, text=True, cwd=ROOT)  # fmt: skip
            ok = run.returncode in (0, 1) and "Traceback" not in run.stderr
            try:
                report = json.loads(run.stdout)
                ok = ok and all(a["facts"] or a["error"] for a in report["artifacts"])
                print(f"directory scan, --jobs {jobs}: exit {run.returncode}, {len(report['artifacts'])} artifacts")
            except ValueError:
                ok = False
            failures += not ok
            if not ok:
                print(f"directory scan failed: exit {run.returncode}: {run.stderr[-2000:]}")
            reports.append(run.stdout)
        if reports[0] != reports[1]:
            failures += 1
            print("the reports with --jobs 2 and --jobs 1 differ")
        paths = sorted(folder.iterdir())
        chosen = paths if singly == 0 else paths[:: max(1, count // singly)]
        worst_time = worst_bytes = 0.0
        for path in chosen:
            code, err, took, rss = _single(path)
            worst_time, worst_bytes = max(worst_time, took), max(worst_bytes, rss)
            lines = err.strip().splitlines()
            if (
                code not in (0, 1, 2)
                or (code == 2 and len(lines) != 1)
                or "Traceback" in err
                or took >= LIMIT_SECONDS
                or rss >= LIMIT_BYTES
            ):
                failures += 1
                print(f"{path.name}: exit {code}, {took:.1f} s, {rss / 2**20:.0f} MiB: {err[-500:]}")
        print(f"{len(chosen)} scanned singly: slowest {worst_time:.2f} s, largest {worst_bytes / 2**20:.0f} MiB")
    return 1 if crashers or failures else 0


def _single(path: Path) -> tuple[int, str, float, float]:
    """`binlens scan PATH` in a child: (exit code, stderr, seconds, peak resident bytes of that child)."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([sys.executable, "-m", "analyzer", "scan", str(path)], stdout=subprocess.DEVNULL,
                                stderr=err, cwd=ROOT)  # fmt: skip
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read().decode("utf-8", "replace")
    return proc.returncode, text, time.monotonic() - started, usage.ru_maxrss * 1024


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
