"""binlens' ELF facts equal readelf's on a deterministic sample of the machine's own binaries."""

from __future__ import annotations

import pytest
from conftest import system_elf_sample
from elfcompare import assert_matches_readelf
from groundtruth import readelf, readelf_path

from analyzer.pipeline import analyze_file

pytestmark = pytest.mark.skipif(readelf_path() is None, reason="binutils readelf not installed")

SAMPLE = system_elf_sample()


@pytest.mark.parametrize("path", SAMPLE, ids=SAMPLE)
def test_system_binary_matches_readelf(path: str) -> None:
    (entry,) = analyze_file(path)
    assert entry["error"] is None
    assert_matches_readelf(entry["facts"], readelf(path))


def test_sample_is_large_enough() -> None:
    assert len(SAMPLE) >= 200
