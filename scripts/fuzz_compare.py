#!/usr/bin/env python3
"""Which fuzzer finds more in binlens's readers: hypothesis driving fixtures/mutate.py (structure-aware, what the
suite runs) or atheris (libFuzzer's coverage-guided byte mutation)? Same fixture, same wall-clock budget.

    pip install -e '.[fuzz]'                       # atheris and coverage, only for this script
    python scripts/fuzz_compare.py [SECONDS] [FIXTURE...] [--lines]   # default: 60 s each on four fixtures

For each fixture both run for SECONDS against binlens's whole per-file analysis (pipeline.analyze_file on a file
in /dev/shm): the structure-aware side draws mutants with hypothesis (seeds, derandomized off: a fresh search
each run), atheris starts from the fixture as its corpus. Anything but facts or one AnalyzerError naming the file
is a crasher. Then both sides' inputs (hypothesis's every mutant, atheris's kept corpus) are replayed under
coverage.py, and the lines of analyzer/ each reached are printed: executions, crashers, lines, lines only one
side reached. docs/testing.md records the result and the choice.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "fixtures"))
sys.path.insert(0, str(ROOT))
DEFAULT = ["c-x86_64-gnu.2.34", "go-linux-amd64-sw", "c-x86_64-windows-gnu.exe", "obj-gxx-types.o"]
SCRATCH = "/dev/shm" if os.path.isdir("/dev/shm") else None


def _one(path: str, blob: bytes) -> str | None:
    """Analyse one input; the crash (exception type and place) or None."""
    from analyzer import pipeline
    from analyzer.errors import AnalyzerError

    Path(path).write_bytes(blob)
    try:
        pipeline.analyze_file(path)
    except AnalyzerError as e:
        if path not in str(e) or "\n" in str(e):
            return f"bad error text: {e}"
    except Exception as e:  # noqa: BLE001 - any other exception is what the fuzzers look for
        tb = e.__traceback__
        while tb and tb.tb_next:
            tb = tb.tb_next
        where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb else "?"
        return f"{type(e).__name__} at {where}"
    return None


def structure_aware(data: bytes, seconds: float, out: Path) -> dict[str, object]:
    """hypothesis drawing seeds for mutate.mutate for `seconds`; the seeds are written to `out`."""
    import mutate
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    seeds: list[int] = []
    crashes: set[str] = set()
    path = tempfile.mktemp(dir=SCRATCH)
    end = time.monotonic() + seconds

    @settings(max_examples=100, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(seed=st.integers(0, 2**32 - 1))
    def run(seed: int) -> None:
        if time.monotonic() > end:
            return
        seeds.append(seed)
        crash = _one(path, mutate.mutate(data, random.Random(seed)))
        if crash:
            crashes.add(crash)

    while time.monotonic() < end:  # batches of 100: hypothesis has no time budget of its own
        run()
    out.write_text(json.dumps(seeds))
    Path(path).unlink(missing_ok=True)
    return {"execs": len(seeds), "crashes": sorted(crashes)}


def atheris_worker(fixture: str, corpus: str, seconds: int) -> None:
    """Run inside its own process: libFuzzer owns the process and exits at the end."""
    import atheris

    with atheris.instrument_imports(include=["analyzer"]):
        from analyzer import pipeline  # noqa: F401  (instrumented for coverage feedback)
    path = tempfile.mktemp(dir=SCRATCH)
    crashes: set[str] = set()
    log = Path(corpus).parent / "atheris-crashes.json"

    def target(blob: bytes) -> None:
        crash = _one(path, blob)
        if crash and crash not in crashes:
            crashes.add(crash)
            log.write_text(json.dumps(sorted(crashes)))  # libFuzzer exits without returning: written as found

    atheris.Setup([sys.argv[0], f"-max_total_time={seconds}", "-rss_limit_mb=4096", "-max_len=4000000",
                   "-print_final_stats=1", corpus], target)  # fmt: skip
    atheris.Fuzz()


def covered(inputs: Iterable[bytes]) -> set[tuple[str, int]]:
    """The lines of analyzer/ the inputs reach, by coverage.py (inputs made one at a time: a list of every
    mutant of a large fixture does not fit in memory)."""
    import coverage

    cov = coverage.Coverage(source=[str(ROOT / "analyzer")], data_file=None)
    path = tempfile.mktemp(dir=SCRATCH)
    cov.start()
    for blob in inputs:
        _one(path, blob)
    cov.stop()
    Path(path).unlink(missing_ok=True)
    data = cov.get_data()
    return {(f, n) for f in data.measured_files() for n in (data.lines(f) or [])}


def main(argv: list[str]) -> int:
    if argv[:1] == ["--atheris-worker"]:
        atheris_worker(argv[1], argv[2], int(argv[3]))
        return 0
    import build
    import mutate

    show = "--lines" in argv  # also print the lines only one side reached
    argv = [a for a in argv if a != "--lines"]
    seconds = int(argv[0]) if argv and argv[0].isdigit() else 60
    names = [a for a in argv if not a.isdigit()] or DEFAULT
    built = build.build_all(names)
    rows = []
    for name in names:
        data = Path(built[name]).read_bytes()
        with tempfile.TemporaryDirectory() as tmp:
            seeds_file = Path(tmp) / "seeds.json"
            hyp = structure_aware(data, seconds, seeds_file)
            corpus = Path(tmp) / "corpus"
            corpus.mkdir()
            (corpus / "seed").write_bytes(data)
            proc = subprocess.run([sys.executable, __file__, "--atheris-worker", name, str(corpus), str(seconds)],
                                  capture_output=True, text=True)  # fmt: skip
            execs = next((int(line.rsplit(":", 1)[1]) for line in proc.stderr.splitlines()
                          if line.startswith("stat::number_of_executed_units")), 0)  # fmt: skip
            log = Path(tmp) / "atheris-crashes.json"
            ath = {"execs": execs, "crashes": json.loads(log.read_text()) if log.exists() else []}
            seeds = json.loads(seeds_file.read_text())
            hyp_lines = covered(mutate.mutate(data, random.Random(s)) for s in seeds)
            ath_lines = covered(p.read_bytes() for p in sorted(corpus.iterdir()))
        rows.append((name, hyp, ath, hyp_lines, ath_lines))
        print(f"{name}: structure-aware {hyp['execs']} runs, {len(hyp_lines)} lines, crashers {hyp['crashes']}; "
              f"atheris {ath['execs']} runs, {len(ath_lines)} lines, crashers {ath['crashes']}; "
              f"only structure-aware {len(hyp_lines - ath_lines)}, only atheris {len(ath_lines - hyp_lines)}",
              flush=True)  # fmt: skip
        if show:
            for side, lines in (("structure-aware", hyp_lines - ath_lines), ("atheris", ath_lines - hyp_lines)):
                for f, n in sorted(lines):
                    print(f"  only {side}: {os.path.relpath(f, ROOT)}:{n}")
    print("\n| fixture | structure-aware runs | lines | atheris runs | lines | only s-a | only atheris | crashers |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, hyp, ath, hl, al in rows:
        print(f"| {name} | {hyp['execs']} | {len(hl)} | {ath['execs']} | {len(al)} | {len(hl - al)} | {len(al - hl)} "
              f"| {len(hyp['crashes'])} / {len(ath['crashes'])} |")
    return 1 if any(h["crashes"] or a["crashes"] for _, h, a, _, _ in rows) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
