"""Shared test helpers: the fixture set, the system sample, binlens as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "fixtures"))


def system_elf_sample(limit: int = 300) -> list[str]:
    """A deterministic sample of ELF files under /usr/bin and /usr/lib: every k-th, sorted."""
    from analyzer.formats import sniff_file, walk

    files = [p for root in ("/usr/bin", "/usr/lib") for p in walk(root) if sniff_file(p) == "ELF"]
    step = max(1, len(files) // limit)
    return files[::step][:limit]


def run_binlens(*args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    """binlens as a real subprocess (python -m analyzer), output captured."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1")
    return subprocess.run(
        [sys.executable, "-m", "analyzer", *args], capture_output=True, text=True, env=env, check=check, timeout=600
    )


@pytest.fixture(scope="session")
def fixtures_built() -> dict[str, Path]:
    """Every fixture binary, built (or taken from the cache) by fixtures/build.py."""
    import build  # fixtures/build.py

    return build.build_all()
