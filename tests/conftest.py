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
    files: list[str] = []
    for root in ("/usr/bin", "/usr/lib"):
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(filenames):
                p = os.path.join(dirpath, name)
                if os.path.islink(p) or not os.path.isfile(p):
                    continue
                try:
                    with open(p, "rb") as f:
                        if f.read(4) != b"\x7fELF":
                            continue
                except OSError:
                    continue
                files.append(p)
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
