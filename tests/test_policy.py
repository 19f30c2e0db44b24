"""Every rule against facts from real fixtures: one that fires it, one that does not; targets and verdicts."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from analyzer import pipeline
from analyzer.errors import AnalyzerError
from analyzer.policy import compat, config
from analyzer.policy import rules as policy

LIBC = "/lib/x86_64-linux-gnu/libc.so.6"  # imports GLIBC_PRIVATE from ld.so: the system's own

# rule -> (fires on, settings), (does not fire on, settings)
CASES = {
    "LNK001": (
        ("c-x86_64-gnu.2.17", {"targets": ["musllinux_1_2"]}),
        ("c-x86_64-musl-static", {"targets": ["musllinux_1_2"]}),
    ),
    "LNK002": (("c-aarch64-gnu.2.17", {"arch": "x86_64"}), ("c-x86_64-gnu.2.17", {"arch": "x86_64"})),
    "LNK003": (("c-x86_64-gnu.2.17", {"require_static": True}), ("c-x86_64-musl-static", {"require_static": True})),
    "LNK004": (("libgreet-rpath.so.1", {}), ("libgreet-runpath.so.1", {})),
    "LNK005": (("libgreet-rpath.so.1", {}), ("usegreet", {})),
    "LNK018": (("usegreet-relpath", {}), ("usegreet-origin", {})),  # (a relative path; one from $ORIGIN)
    "LNK006": (("c-x86_64-execstack", {}), ("c-x86_64-gnu.2.17", {})),
    "LNK007": (("libtextrel.so", {}), ("libgreet-runpath.so.1", {})),
    "LNK008": (("c-x86_64-v3", {"targets": ["debian-12"]}), ("c-x86_64-v3", {"targets": ["rhel-10"]})),
    "LNK009": (("c-mipsel-gnu.2.28", {"targets": ["debian-12"]}), ("c-x86_64-gnu.2.28", {"targets": ["debian-12"]})),
    "LNK010": (("c-abi-tag-6.6", {"targets": ["debian-12"]}), ("c-abi-tag-6.6", {"targets": ["debian-13"]})),
    "LNK011": (("c-x86_64-freebsd", {"targets": ["debian-12"]}), ("c-x86_64-gnu.2.28", {"targets": ["debian-12"]})),
    "SYM009": (("c-i386-musl-time64", {"targets": ["musllinux_1_1"]}),
               ("c-i386-musl-time64", {"targets": ["musllinux_1_2"]})),
    "LNK015": (("pymod-execstack.so", {"targets": ["debian-13"]}), ("pymod-execstack.so", {"targets": ["debian-12"]})),
    "LNK017": (("libgreet-palign.so.1", {"targets": ["debian-11"]}),
               ("libgreet-palign.so.1", {"targets": ["debian-12"]})),
    "LNK016": (("libgreet-aarch64-16k.so", {"targets": ["rhel-9"]}),
               ("libgreet-aarch64-16k.so", {"targets": ["debian-13"]})),
    "LNK014": (("c-interp-nix", {"targets": ["debian-12"]}), ("c-interp-multiarch", {"targets": ["debian-12"]})),
    "LNK012": (("usegreet", {"targets": ["manylinux_2_17"]}), ("c-x86_64-gnu.2.17", {"targets": ["manylinux_2_17"]})),
    "SYM007": (("c-x86_64-zlib", {"targets": ["manylinux_2_17"]}), ("c-x86_64-zlib", {"targets": ["manylinux_2_28"]})),
    "SYM008": (("c-x86_64-zlib", {"targets": ["manylinux_2_28"]}), ("c-x86_64-zlib", {"targets": ["manylinux_2_34"]})),
    "HRD001": (("c-unhardened", {}), ("c-hardened", {})),
    "HRD002": (("c-lazy-relro", {}), ("c-hardened", {})),
    "HRD003": (("c-unhardened", {}), ("c-hardened", {})),
    "HRD004": (("c-unhardened", {}), ("c-hardened", {})),
    "HRD005": (("c-unhardened", {}), ("c-hardened", {})),
    "HRD006": (("c-unhardened", {}), ("c-hardened", {})),
    "HRD007": (("c-wx", {}), ("c-hardened", {})),
    "HRD008": (("mingw-unhardened.exe", {}), ("mingw-default.exe", {})),
    "HRD009": (("mingw-unhardened.exe", {}), ("mingw-default.exe", {})),
    "HRD011": (("mingw-default.exe", {}), ("go-windows-amd64-cfg.exe", {})),
    "HRD010": (("c-aarch64-macos", {}), ("c-aarch64-macos-runtime", {})),
    "SYM006": (("c-unknown-node", {"targets": ["glibc-2.40"]}), ("c-x86_64-relr", {"targets": ["glibc-2.40"]})),
    "SYM001": (("c-x86_64-gnu.2.34", {"targets": ["rhel-8"]}), ("c-x86_64-gnu.2.17", {"targets": ["rhel-8"]})),
    "SYM002": (("cpp-x86_64-gxx", {"targets": ["manylinux_2_17"]}), ("cpp-x86_64-gxx", {"targets": ["debian-12"]})),
    "SYM003": (("cpp-x86_64-gxx", {"targets": ["manylinux_2_17"]}), ("cpp-x86_64-gxx", {"targets": ["debian-12"]})),
    "SYM004": (("c-x86_64-libgcc-s", {"targets": ["debian-11"]}), ("c-x86_64-libgcc-s", {"targets": ["debian-12"]})),
    "SYM005": (("c-glibc-private", {}), (LIBC, {})),  # (glibc's own libc.so.6 is quiet: its own build's libc)
    "GO001": (("go-linux-cgo-amd64", {"require_static": True}), ("go-linux-amd64", {"require_static": True})),
    "GO002": (("gomx-cgo-static", {}), ("go-linux-cgo-amd64", {})),
    "GO003": (("gomx-vcs-dirty", {}), ("gomx-vcs-clean", {})),
    "GO004": (("go-linux-amd64", {}), ("gomx-vcs-clean", {})),
    "GO005": (("go-linux-amd64", {}), ("gomx-trimpath", {})),
    "GO006": (("go-linux-amd64", config._go_settings("1.28", "test")), ("go-linux-amd64", {})),
    "GO009": (("gomx-go1.21.13-linux-amd64", {}), ("go-linux-amd64", {})),
    "GO007": (("go-goarch-mismatch", {}), ("go-linux-arm64", {})),
    "GO008": (("gomx-app", {}), ("go-linux-amd64", {})),
    "STR001": (("go-linux-amd64", {}), ("c-x86_64-gnu.2.34-stripped", {})),
    "STR002": (("c-x86_64-gnu.2.34-stripped", {}), ("cpp-x86_64-gxx-stripped", {})),
}


def _config(**values: str) -> config.Config:
    cfg = config.Config()
    for name, value in values.items():
        cfg.set(name, value)
    return cfg


def _findings_under(path: str, pol: policy.Policy) -> list[dict]:
    request = pipeline.Request.for_policy(pol)
    (entry,) = pipeline.analyze_file(path, request)
    return pipeline.finish(entry, request).findings


def _policy(settings: dict) -> policy.Policy:
    base = config.build_policy(_config(profile="release"))  # every rule enabled
    merged = {**base.settings, **settings}
    return replace(base, settings=merged)


def _findings(path: str, settings: dict) -> list[dict]:
    return _findings_under(path, _policy(settings))


def _path(fixtures_built: dict[str, Path], name: str) -> str:
    return name if name.startswith("/") else str(fixtures_built[name])


def test_every_builtin_rule_has_cases() -> None:
    ids = {r.id for r in policy.builtin_rules()}
    # STR003 and STR004 read budgets and a previous report, ART001 entries that could not be analyzed (a
    # directory scan): tested end to end in test_policy_cli and test_bad_input;
    # the DEP rules read `binlens deps` facts: tested in test_ldso against the real loader's scenarios;
    # the SYS rules read the opt-in syscalls facts: each fires and stays quiet in test_syscalls
    deps_rules = {f"DEP00{i}" for i in range(1, 9)}
    from test_syscalls import RULES

    sys_rules = {case[0] for case in RULES}
    # the MOD rules read `binlens gomod` reports: each fires and stays quiet in test_gomod
    from test_gomod import MOD_RULES

    # LNK013 reads the platform tags of the wheel a Mach-O file ships in: fires and stays quiet in test_manylinux
    # (wheels tagged for each macOS; pip's tag logic, packaging.tags, the oracle)
    assert ids == set(CASES) | {"STR003", "STR004", "ART001", "LNK013"} | deps_rules | sys_rules | set(MOD_RULES)


def test_rules_over_lists_per_item_equal_the_filter(fixtures_built: dict[str, Path], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Every built-in rule both ways: an `each` rule's condition evaluated once per item of its list (linear),
    and CEL's own `(list).filter(item, condition)` (the binding's comprehension copies its result at every step:
    quadratic in the items kept; 1,180 go.sum gaps took 1.3 s, 10,000 items minutes). The findings are the same
    on the reports of every case fixture above, under the settings each names, with the syscall facts too, and
    on a module graph's with a go.sum gap for each of its hundreds of modules (MOD007's list)."""
    from gouniverse import large_universe, write_universe

    from analyzer.facts import gomod
    from analyzer.policy import rules

    entries = []
    cases = {(name, json.dumps(settings, sort_keys=True)) for pair in CASES.values() for name, settings in pair}
    for name, settings in sorted(cases):
        pol = _policy(json.loads(settings))
        entries.append((pol, pipeline.analyze_file(_path(fixtures_built, name), pipeline.Request.for_policy(pol))[0]))
    from test_syscalls import RULES as SYS_CASES  # (the SYS rules' fixtures, with their syscall facts)

    for name in sorted({n for case in SYS_CASES for n in case[1:3]}):
        pol = _policy({"targets": ["rhel-8", "debian-9"]})
        entries.append((pol, pipeline.analyze_file(str(fixtures_built[name]),
                                                   pipeline.Request.for_policy(pol, ["syscalls"]))[0]))
    proxy, src = write_universe(large_universe(3, modules=150, versions=2, main_requires=20), tmp_path / "u")
    rep = gomod.analyze(str(src / "main0"), proxy=str(proxy), env={}, use_cache=False)
    assert sum(g["kind"] == "missing" for g in rep["go_sum"]) > 100
    entries.append((_policy({}), {"path": str(src / "main0"), "format": "gomod", "error": None,
                                  "facts": {"gomod": rep}}))
    each_kept = 0
    for pol, entry in entries:
        per_item = rules.evaluate(pol, entry)
        monkeypatch.setattr(rules, "PER_ITEM", False)
        assert rules.evaluate(pol, entry) == per_item, entry["path"]
        monkeypatch.setattr(rules, "PER_ITEM", True)
        each_kept += sum(1 for f in per_item if next(r for r in pol.rules if r.id == f["rule"]).each)
    assert each_kept > 200


@pytest.mark.parametrize("rule", sorted(CASES))
def test_rule_fires_and_does_not(fixtures_built: dict[str, Path], rule: str) -> None:
    (fires, fire_settings), (quiet, quiet_settings) = CASES[rule]
    hits = [f for f in _findings(_path(fixtures_built, fires), fire_settings) if f["rule"] == rule]
    assert hits, f"{rule} did not fire on {fires}"
    for f in hits:
        assert f["message"] and "{" not in f["message"], f["message"]
        assert f["fix"]
    assert not [f for f in _findings(_path(fixtures_built, quiet), quiet_settings) if f["rule"] == rule]


def test_special_glibc_nodes_are_checked_like_numbered_ones(fixtures_built: dict[str, Path]) -> None:
    """-z pack-relative-relocs makes the linker require GLIBC_ABI_DT_RELR (readelf shows it): every release
    whose glibc lacks the node (the distribution data) fails, with SYM001 naming it; none passes."""
    path = str(fixtures_built["c-x86_64-relr"])
    out = subprocess.run(["readelf", "-V", "-W", path], capture_output=True, text=True).stdout
    assert "Name: GLIBC_ABI_DT_RELR" in out
    (entry,) = pipeline.analyze_file(path)
    facts = entry["facts"]
    checked = 0
    for name, rel in compat.table()["releases"].items():
        arch = rel["arches"].get("x86_64")
        if arch is None or rel["rolling"]:
            continue
        found = compat.problems(facts, compat.resolve(name))
        if "ABI_DT_RELR" not in arch["nodes"]["GLIBC"]:
            assert [p for p in found if p.get("node") == "GLIBC_ABI_DT_RELR"], name
            checked += 1
    assert checked >= 20
    hits = _findings(path, {"targets": ["ubuntu-22.04"]})
    assert any(f["rule"] == "SYM001" and "GLIBC_ABI_DT_RELR" in f["message"] for f in hits)
    verdicts = [f for f in _findings(path, {"targets": ["debian-12"]}) if f["rule"].startswith(("SYM", "LNK"))]
    assert not [f for f in verdicts if f["severity"] == "error"]


def test_glibc_finding_names_the_symbol_and_the_release(fixtures_built: dict[str, Path]) -> None:
    """The forcing symbol comes from readelf's view of the binary; the release's glibc from the table."""
    path = str(fixtures_built["c-x86_64-gnu.2.34"])
    out = subprocess.run(["readelf", "--dyn-syms", "-W", path], capture_output=True, text=True).stdout
    forcing = sorted({line.split()[-2].split("@")[0] for line in out.splitlines() if "@GLIBC_2.34" in line})
    (hit,) = [f for f in _findings(path, {"targets": ["rhel-8"]}) if f["rule"] == "SYM001"]
    assert hit["evidence"]["symbols"] == forcing
    assert hit["evidence"]["available"] == compat.resolve("rhel-8").arches["x86_64"]["glibc"]
    assert f"{forcing[0]}@GLIBC_2.34; rhel-8 ships glibc 2.28" in hit["message"]


def test_oldest_per_family_agrees_with_per_target_problems(fixtures_built: dict[str, Path]) -> None:
    """The fast verdict (set lookups) and the detailed check say the same for every release."""
    for name in (
        "c-x86_64-gnu.2.17",
        "c-x86_64-gnu.2.34",
        "cpp-x86_64-gxx",
        "c-aarch64-gnu.2.17",
        "c-x86_64-v3",
        "c-abi-tag-6.6",
    ):
        (entry,) = pipeline.analyze_file(str(fixtures_built[name]))
        facts = entry["facts"]
        oldest = compat.oldest_per_family(facts)
        for release in oldest.values():
            assert compat.problems(facts, compat.resolve(release)) == [], (name, release)
        for rel_name, rel in compat.table()["releases"].items():
            if rel["rolling"] or rel["family"] == "rhubi" or rel["family"] not in oldest:
                continue
            if compat._vkey(rel["release"]) < compat._vkey(oldest[rel["family"]].partition("-")[2]):
                assert compat.problems(facts, compat.resolve(rel_name)), (name, rel_name)


def test_targets_resolve() -> None:
    assert compat.resolve("rhel-8").glibc == "2.28"
    assert compat.resolve("ubuntu-20.04").glibc == "2.31"
    assert compat.resolve("manylinux2014").name == "manylinux_2_17"
    assert compat.resolve("glibc-2.28").any_arch
    assert compat.resolve("musllinux_1_2").libc == "musl"
    with pytest.raises(AnalyzerError, match="unknown target 'ubuntu-19.99'"):
        compat.resolve("ubuntu-19.99")


def test_rule_file_errors_name_file_rule_and_cel_error(tmp_path: Path) -> None:
    bad = tmp_path / "mine.toml"
    bad.write_text(
        '[[rule]]\nid = "LNK900"\nname = "x"\nseverity = "error"\ntitle = "t"\n'
        'condition = "facts.linkage == "\nmessage = "m"\nwhat = "w"\nwhy = "y"\nexample = "e"\nfix = "f"\n'
    )
    with pytest.raises(AnalyzerError) as err:
        policy.load_rule_file(str(bad))
    text = str(err.value)
    assert str(bad) in text and "LNK900" in text and "does not compile" in text and "1:" in text
    bad.write_text("[[rule]\n")
    with pytest.raises(AnalyzerError, match="TOML error"):
        policy.load_rule_file(str(bad))


def test_min_go(fixtures_built: dict[str, Path]) -> None:
    path = str(fixtures_built["go-linux-amd64"])  # go1.27.3
    settings = config.build_policy(_config(min_go="1.28")).settings
    assert [f for f in _findings(path, settings) if f["rule"] == "GO006"]
    settings = config.build_policy(_config(min_go="1.27.3")).settings
    assert not [f for f in _findings(path, settings) if f["rule"] == "GO006"]
    with pytest.raises(AnalyzerError, match="min-go must be a Go version"):
        config.build_policy(_config(min_go="latest"))


def test_default_profile_leaves_release_concerns_out(fixtures_built: dict[str, Path]) -> None:
    default = config.build_policy(config.Config())
    rules = {f["rule"] for f in _findings_under(str(fixtures_built["gomx-vcs-dirty"]), default)}
    assert not rules & {"GO003", "GO004", "GO005"}


def test_every_shipped_condition_compiles() -> None:
    """The catalogue's conditions are compiled when first evaluated (not at start-up): each one compiles."""
    catalogue = policy.builtin_rules()
    assert len(catalogue) > 60
    for rule in catalogue:
        assert policy.compile_rule(rule) is not None, rule.id


def test_oldest_per_family_kept_per_process_equals_the_sweep(fixtures_built: dict[str, Path]) -> None:
    """oldest_per_family is kept per process by what the verdict reads of an artifact; one differing from an
    artifact seen before in any of it — a version node, the ABI-tag kernel, the x86-64 ISA level, a private
    node, the kernel its system calls need — has its own answer, equal to the sweep made afresh (each variant
    here changes the answer: a key without that part would give the one before)."""
    (entry,) = pipeline.analyze_file(str(fixtures_built["c-x86_64-gnu.2.17"]))
    base = entry["facts"]
    elf = base["elf"]
    variants = [
        base,
        {**base, "elf": {**elf, "abi_tag": {"kernel": "4.0.0"}}},
        {**base, "elf": {**elf, "x86_isa_needed": ["x86-64-v3"]}},
        {**base, "version_needs": {**base["version_needs"], "libc.so.6": [*base["version_needs"]["libc.so.6"],
                                                                           "GLIBC_2.38"]}},
        {**base, "version_unnumbered": {"GLIBC_PRIVATE": {"library": "libc.so.6", "symbols": ["__libc_x"]}}},
        {**base, "syscalls": {"supported": True, "kernel_floor": {"hard": {"version": "5.10", "syscall": "x"},
                                                                  "probed": []}}},
    ]
    compat._OLDEST.clear()
    kept = [compat.oldest_per_family(v) for v in variants]
    fresh = []
    for v in variants:
        compat._OLDEST.clear()
        fresh.append(compat.oldest_per_family(v))
    assert kept == fresh
    assert len({json.dumps(f, sort_keys=True) for f in fresh}) == len(variants), [sorted(f.values()) for f in fresh]
