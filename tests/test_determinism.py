"""Same input and options, same bytes: every report format, any --jobs, any hash seed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

FORMATS = ["text", "json", "sarif", "junit", "markdown", "cyclonedx", "spdx"]


def _scan(paths: list[str], fmt: str, jobs: int, seed: int) -> bytes:
    env = dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1", PYTHONHASHSEED=str(seed))
    proc = subprocess.run(
        [sys.executable, "-m", "analyzer", "scan", "--format", fmt, "--jobs", str(jobs), "--profile", "release",
         "--target", "rhel-8", "--target", "manylinux_2_17", *paths],
        capture_output=True, env=env, timeout=600,
    )  # fmt: skip
    assert proc.returncode in (0, 1), proc.stderr
    return proc.stdout


@pytest.mark.parametrize("fmt", FORMATS)
def test_same_bytes_for_any_jobs_and_hash_seed(binaries_built: dict[str, Path], fmt: str) -> None:
    paths = sorted(str(p) for p in binaries_built.values())  # more than 16: the parallel path runs
    # glibc's own libraries (from the cross packages CI installs) import GLIBC_PRIVATE, quietly; c-glibc-private
    # does too, and SYM005's evidence (the symbols) is in the report
    paths += sorted(str(p) for p in Path("/usr").glob("*-linux-gnu*/lib/libm.so.6"))
    first = _scan(paths, fmt, 1, 1)
    assert fmt not in ("json", "sarif", "text") or b"SYM005" in first
    assert first and _scan(paths, fmt, 2, 2) == first  # another worker count and another hash seed


@pytest.mark.parametrize("first", ["every file", "large ones"])
def test_large_files_handed_out_first_keep_input_order(binaries_built: dict[str, Path], tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch, first: str) -> None:
    """Large files among the next tasks go to the workers first, alone: the results still come in input order,
    every file once, whether a few files go first or all of them (more than the workers' slots)."""
    from analyzer import pipeline

    files = sorted(binaries_built.values(), key=lambda p: p.stat().st_size)  # small ones first in the walk
    for i, f in enumerate(files):  # (copies: a hard link changes the fixture's change time while another test
        shutil.copyfile(f, tmp_path / f"{i:03d}-{f.name}")  # tars it, and tar says "file changed as we read it")
    if first == "every file":
        monkeypatch.setattr(pipeline, "_goes_first", lambda size, ahead, workers: True)
    else:
        monkeypatch.setattr(pipeline, "BIG_FILE", 1 << 20)
    one = [(r.entry["path"], r.entry["sha256"]) for r in pipeline.scan([str(tmp_path)], jobs=1)]
    two = [(r.entry["path"], r.entry["sha256"]) for r in pipeline.scan([str(tmp_path)], jobs=2)]
    assert len(one) >= len(files) and two == one  # (a fat Mach-O file gives one entry per slice)
