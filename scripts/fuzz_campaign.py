#!/usr/bin/env python3
"""The long fuzzing campaign (CI runs a bounded budget in tests/test_fuzz.py).

    python scripts/fuzz_campaign.py [COUNT] [SEED]     # default: 10,000 mutants, seed 0

Writes COUNT structure-aware mutants (fixtures/mutate.py) of one fixture per reader into a temporary
directory, then:
1. analyses each in this process: anything but facts or one AnalyzerError naming the file is a crasher;
2. scans the whole directory with `binlens scan --format json --jobs 2`: exit 0 or 1, JSON out, no traceback,
   every artifact with facts or an error;
3. scans 200 of them one by one: exit 0, 1 or 2, and one line on stderr for 2.
Crashers are printed as (source, seed): add them to CRASHERS in tests/test_fuzz.py, which replays them.
Exit 1 when anything failed.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "fixtures"))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))


def main(argv: list[str]) -> int:
    import build
    import mutate
    from test_fuzz import SOURCES

    from analyzer import pipeline
    from analyzer.errors import AnalyzerError

    count = int(argv[0]) if argv else 10_000
    master = random.Random(int(argv[1]) if len(argv) > 1 else 0)
    built = build.build_all(SOURCES)
    crashers, failures = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "mutants"
        folder.mkdir()
        for i in range(count):
            source = SOURCES[i % len(SOURCES)]
            seed = master.randrange(2**32)
            path = folder / f"{i:05}-{source}-{seed}"
            path.write_bytes(mutate.mutate(built[source].read_bytes(), random.Random(seed)))
            try:
                pipeline.analyze_file(str(path))
            except AnalyzerError as e:
                if str(path) not in str(e) or "\n" in str(e):
                    crashers.append((source, seed, f"error without the path or on several lines: {e}"))
            except Exception as e:  # noqa: BLE001 - what the campaign is looking for
                crashers.append((source, seed, f"{type(e).__name__}: {e}"))
        print(f"{count} mutants analysed in process: {len(crashers)} crashers")
        for c in crashers:
            print("  crasher", c)
        run = subprocess.run([sys.executable, "-m", "analyzer", "scan", "--format", "json", "--jobs", "2", str(folder)],
                             capture_output=True, text=True, cwd=ROOT)  # fmt: skip
        ok = run.returncode in (0, 1) and "Traceback" not in run.stderr
        try:
            report = json.loads(run.stdout)
            ok = ok and all(a["facts"] or a["error"] for a in report["artifacts"])
            print(f"directory scan: exit {run.returncode}, {len(report['artifacts'])} artifacts")
        except ValueError:
            ok = False
        failures += not ok
        if not ok:
            print(f"directory scan failed: exit {run.returncode}: {run.stderr[-2000:]}")
        for path in sorted(folder.iterdir())[:: max(1, count // 200)]:
            one = subprocess.run([sys.executable, "-m", "analyzer", "scan", str(path)], capture_output=True,
                                 text=True, cwd=ROOT)  # fmt: skip
            lines = one.stderr.strip().splitlines()
            if (
                one.returncode not in (0, 1, 2)
                or (one.returncode == 2 and len(lines) != 1)
                or "Traceback" in one.stderr
            ):
                failures += 1
                print(f"{path.name}: exit {one.returncode}: {one.stderr[-500:]}")
    return 1 if crashers or failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
