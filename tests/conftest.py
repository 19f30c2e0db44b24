"""Shared test helpers: the fixture set, the system sample, binlens as a subprocess."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "fixtures"))


@functools.cache
def _system_elves() -> tuple[str, ...]:
    """Every ELF file under /usr/bin and /usr/lib, sorted: walked once per test session."""
    from analyzer.load import sniff_file
    from analyzer.load.sources import walk

    return tuple(p for root in ("/usr/bin", "/usr/lib") for p in walk(root) if sniff_file(p) == "ELF")


def system_elf_sample(limit: int = 300) -> list[str]:
    """A deterministic sample of ELF files under /usr/bin and /usr/lib: every k-th, sorted."""
    files = _system_elves()
    step = max(1, len(files) // limit)
    return list(files[::step][:limit])


# binlens keeps its result cache (and go.mod cache) under XDG_CACHE_HOME: the suite's own, fresh each session,
# so no test depends on what an earlier run left there
os.environ.setdefault("BINLENS_TEST_CACHE", tempfile.mkdtemp(prefix="binlens-test-cache-"))
os.environ["XDG_CACHE_HOME"] = os.environ["BINLENS_TEST_CACHE"]


def run_binlens(*args: str, check: bool = False, prefix: list[str] | None = None,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """binlens as a real subprocess (python -m analyzer), output captured; `prefix` wraps the command; `env`
    replaces the environment (PYTHONPATH and NO_COLOR are added)."""
    env = dict(env if env is not None else os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1")
    return subprocess.run(
        [*(prefix or []), sys.executable, "-m", "analyzer", *args],
        capture_output=True,
        text=True,
        env=env,
        check=check,
        timeout=600,
    )


@pytest.fixture(scope="session")
def fixtures_built() -> dict[str, Path]:
    """Every fixture binary, built (or taken from the cache) by fixtures/build.py."""
    import build  # fixtures/build.py

    return build.build_all()


@pytest.fixture(scope="session")
def binaries_built(fixtures_built: dict[str, Path]) -> dict[str, Path]:
    """Every fixture that is one binary file: not a downloaded wheel or package, not a sysroot directory."""
    import build

    return {n: p for n, p in fixtures_built.items()
            if p.is_file() and not {"wheel", "archive"} & build.BY_NAME[n].tags}
