"""The fact registry: each provider writes the facts it declares, expensive opt-in facts cost nothing unless
asked for, `--facts` adds them, and the report says which providers ran."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_binlens

from analyzer import facts as registry
from analyzer import pipeline
from analyzer.load import open_artifacts
from analyzer.policy import config

SAMPLE = ("c-x86_64-gnu.2.34", "usegreet", "go-linux-amd64", "c-x86_64-windows-gnu.exe", "go-windows-amd64.exe",
          "go-darwin-arm64")  # fmt: skip


@pytest.mark.parametrize("name", SAMPLE)
def test_each_provider_writes_only_what_it_declares(fixtures_built: dict[str, Path], name: str) -> None:
    pol = config.build_policy(config.Config())
    context = registry.Context(policy=pol)
    for art in open_artifacts(str(fixtures_built[name])):
        known: dict = {}
        ran = 0
        for p in registry.resolve([*registry.default_names(), "deps"]):
            if art.format not in p.kinds:
                continue
            out = p.load()(art, known, context)
            assert set(out or {}) <= set(p.provides), p.name
            known.update(out or {})
            ran += 1
        assert ran >= 3


def test_resolve_adds_what_a_provider_needs_in_registry_order() -> None:
    names = [p.name for p in registry.resolve(["compat"])]
    assert names == ["elf", "linkage", "symvers", "pe", "macho", "go", "os", "compat"]
    with pytest.raises(Exception, match="unknown fact 'nonsense'"):
        registry.resolve(["nonsense"])


def test_opt_in_facts_are_computed_only_when_asked(fixtures_built: dict[str, Path]) -> None:
    path = str(fixtures_built["c-x86_64-gnu.2.34"])  # needs libc.so.6, which the host has
    plain = json.loads(run_binlens("scan", "--format", "json", path).stdout)
    assert "deps" not in plain["facts_computed"] and "deps" not in plain["artifacts"][0]["facts"]
    assert not any(f["rule"].startswith("DEP") for f in plain["artifacts"][0]["findings"])
    asked = json.loads(run_binlens("scan", "--format", "json", "--facts", "deps", path).stdout)
    assert "deps" in asked["facts_computed"]
    deps = asked["artifacts"][0]["facts"]["deps"]
    direct = {lib["name"] for lib in deps["libraries"] if lib["needed_by"] == path}
    assert deps["flavour"] == "glibc" and direct == set(plain["artifacts"][0]["facts"]["needed"])
    # the rest of the report is the same: --facts adds, it never takes away
    facts = asked["artifacts"][0]["facts"]
    del facts["deps"]
    assert facts == plain["artifacts"][0]["facts"]


def test_facts_option_selects_and_rules_still_get_theirs(fixtures_built: dict[str, Path]) -> None:
    path = str(fixtures_built["c-x86_64-gnu.2.34"])
    report = json.loads(run_binlens("scan", "--format", "json", "--facts", "elf", "--target", "rhel-8", path).stdout)
    computed = report["facts_computed"]
    assert "elf" in computed and "compat" in computed and "symvers" in computed  # SYM001 reads compat
    assert any(f["rule"] == "SYM001" for f in report["artifacts"][0]["findings"])


def test_unknown_fact_is_a_usage_error() -> None:
    proc = run_binlens("scan", "--facts", "nonsense", "/bin/true")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "unknown fact 'nonsense'" in proc.stderr


def test_plan_without_policy_has_no_policy_facts() -> None:
    assert [p.name for p in pipeline.plan(None, ["go"])] == ["elf", "linkage", "pe", "macho", "go"]
