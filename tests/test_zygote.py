"""The suite's binlens runs are forked from a process that imported binlens (tests/zygote.py): each must be what
a new interpreter running `python -m analyzer` gives — status, standard output and standard error, byte for
byte — for reports, errors, usage errors, names that are not UTF-8, relative paths, the environment and a run
that starts worker processes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import _ZYGOTES, run_binlens


def _both(monkeypatch: pytest.MonkeyPatch, *args: str | bytes, env: dict[str, str] | None = None) -> None:
    turn = _ZYGOTES.turn
    forked = run_binlens(*args, env=env)
    assert _ZYGOTES.turn == turn + 1  # (forked, not a new interpreter)
    with monkeypatch.context() as m:
        m.setenv("BINLENS_TEST_FRESH", "1")
        new = run_binlens(*args, env=env)
    assert _ZYGOTES.turn == turn + 1
    assert (forked.returncode, forked.stdout, forked.stderr) == (new.returncode, new.stdout, new.stderr), args


@pytest.mark.skipif(os.environ.get("BINLENS_TEST_FRESH") == "1", reason="every run a new interpreter: no fork")
def test_forked_runs_equal_new_interpreters(binaries_built: dict[str, Path], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    d = tmp_path / "d"
    d.mkdir()
    for name in ("c-rawsys", "go-linux-amd64", "pyext_ok.so"):
        shutil.copy(binaries_built[name], d / name)
    (d / "notes.txt").write_text("not a binary\n")
    cache = str(tmp_path / "cache")
    for args in (
        ("scan", str(d)),  # the text report, a gate's status
        ("scan", str(d), "--format", "json", "--cache-dir", cache),
        ("scan", str(d), "--format", "json", "--cache-dir", cache),  # answered by the result cache
        ("scan", str(d), "--format", "sarif", "--jobs", "2", "--no-cache"),  # worker processes
        ("scan", str(tmp_path / "missing")),  # exit 2, one line
        ("scan", "--no-such-option"),  # click's usage error
        ("--help",),
        ("go", str(d / "go-linux-amd64")),  # the fast path without click
        ("inspect", str(d / "c-rawsys")),
    ):
        _both(monkeypatch, *args)
    _both(monkeypatch, "scan", os.fsencode(str(tmp_path)) + b"/t\xff")  # a name that is not UTF-8
    monkeypatch.chdir(d)
    _both(monkeypatch, "scan", "c-rawsys", "--format", "json", "--no-cache")  # relative to the working directory
    forked = run_binlens("scan", "c-rawsys", "--format", "json", env=dict(os.environ, XDG_CACHE_HOME="xdg"))
    assert (d / "xdg" / "binlens").is_dir()  # (the run's own environment: its result cache where it says)
    _both(monkeypatch, "scan", "c-rawsys", "--format", "json", env=dict(os.environ, XDG_CACHE_HOME="xdg"))
    assert forked.stdout == run_binlens("scan", "c-rawsys", "--format", "json", "--no-cache").stdout
