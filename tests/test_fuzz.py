"""Fuzzing in CI: hypothesis drives structure-aware mutations (fixtures/mutate.py: the header fields each reader
trusts set to hurtful values, byte flips, cuts, blocks copied over tables) of one fixture per reader: ELF 32/64,
little and big endian, Go, PE32 and PE32+, Mach-O and fat Mach-O. Every mutant gives facts or one AnalyzerError
naming the file, never another exception. The budget here is bounded (derandomized, so CI is reproducible);
scripts/fuzz_campaign.py runs the long campaign (10,000 mutants and more, through the CLI), and the mutants it
found crashing are replayed below by their seed."""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

import mutate  # fixtures/mutate.py
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer import pipeline
from analyzer.errors import AnalyzerError

SOURCES = ["c-x86_64-gnu.2.34", "c-i386-gnu.2.17", "c-s390x-gnu.2.28", "go-linux-ppc64", "go-linux-amd64-sw",
           "c-x86_64-windows-gnu.exe", "c-i386-windows-gnu.exe", "c-x86_64-macos", "go-darwin-fat",
           "c-x86_64-musl-static"]  # fmt: skip
# (source, seed) of mutants the long campaign found breaking a reader, replayed on every run
CRASHERS: list[tuple[str, int]] = []
BUDGET = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])  # fmt: skip
SYSCALLS = pipeline.Request(pipeline.plan(None, ["syscalls"]))


def _check(data: bytes, seed: int, request: pipeline.Request | None = None) -> None:
    blob = mutate.mutate(data, random.Random(seed))
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "mutant")
        Path(path).write_bytes(blob)
        try:
            entries = pipeline.analyze_file(path, request or pipeline.Request())
        except AnalyzerError as e:
            assert path in str(e) and "\n" not in str(e), (seed, str(e))
        else:
            assert entries and all(e["facts"] for e in entries), seed


@pytest.mark.parametrize("source", SOURCES)
def test_mutants_give_facts_or_one_error(binaries_built: dict[str, Path], source: str) -> None:
    data = binaries_built[source].read_bytes()

    @BUDGET
    @given(seed=st.integers(0, 2**32 - 1))
    def run(seed: int) -> None:
        _check(data, seed)

    run()


@pytest.mark.parametrize("source", ["c-x86_64-musl-static", "go-linux-amd64-sw", "c-s390x-gnu.2.28"])
def test_mutants_through_the_syscall_inventory(binaries_built: dict[str, Path], source: str) -> None:
    data = binaries_built[source].read_bytes()

    @BUDGET
    @given(seed=st.integers(0, 2**32 - 1))
    def run(seed: int) -> None:
        _check(data, seed, SYSCALLS)

    run()


@pytest.mark.parametrize("case", CRASHERS or [None])
def test_crashers_found_by_the_campaign_stay_fixed(binaries_built: dict[str, Path], case: tuple[str, int] | None
                                                  ) -> None:  # fmt: skip
    if case is None:
        assert not CRASHERS  # the campaign has found none since the list was last emptied
        return
    source, seed = case
    _check(binaries_built[source].read_bytes(), seed)
