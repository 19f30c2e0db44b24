"""The gate never passes what fails: on every fixture, each target binlens says the artifact does not run
on yields at least one error finding for that target under the default profile, so the exit code is 1."""

from __future__ import annotations

from pathlib import Path

from analyzer import pipeline
from analyzer.policy import compat, config


def _family_ends() -> set[str]:
    """Every distribution family's oldest and newest (non-rolling) release in the table."""
    families: dict[str, list[str]] = {}
    for name, r in compat.table()["releases"].items():
        if r["family"] != "rhubi" and not r["rolling"]:
            families.setdefault(r["family"], []).append(name)
    ends = set()
    for names in families.values():
        names.sort(key=lambda n: compat._vkey(n.partition("-")[2]))
        ends |= {names[0], names[-1]}
    return ends


# the ends of every family, bare glibc floors (2.40: after every dated special node but one) and platform tags
TARGETS = sorted(
    _family_ends()
    | {"glibc-2.17", "glibc-2.28", "glibc-2.35", "glibc-2.40", "manylinux_2_17", "manylinux_2_28", "manylinux_2_34"}
    | {"musllinux_1_2"}
)


def _policy(disable: list[str]) -> object:
    cfg = config.Config()
    cfg.set("targets", TARGETS)
    cfg.set("disable", disable)
    return config.build_policy(cfg)


def _unflagged(binaries_built: dict[str, Path], disable: list[str]) -> tuple[list[tuple[str, str]], int]:
    """(artifact, target) pairs binlens says fail but no error finding names, and how many fail at all."""
    request = pipeline.Request.for_policy(_policy(disable))  # type: ignore[arg-type]
    unflagged: list[tuple[str, str]] = []
    failing_pairs = 0
    for name, path in binaries_built.items():
        if not path.is_file():
            continue
        for entry in pipeline.analyze_file(str(path), request):
            result = pipeline.finish(entry, request)
            compat_facts = entry["facts"].get("compat")
            if not compat_facts:
                continue
            errors = {f["evidence"].get("target") for f in result.findings if f["severity"] == "error"}
            whole = any(f["severity"] == "error" and "target" not in f["evidence"] for f in result.findings)
            for target, verdict in compat_facts["targets"].items():
                if not verdict["ok"]:
                    failing_pairs += 1
                    if not (target in errors or whole):
                        unflagged.append((name, target))
    return unflagged, failing_pairs


def test_every_failing_target_is_an_error(binaries_built: dict[str, Path]) -> None:
    unflagged, failing = _unflagged(binaries_built, [])
    assert unflagged == [] and failing > 100


def test_the_gate_test_sees_a_missing_rule(binaries_built: dict[str, Path]) -> None:
    """Without SYM006 the undatable node on glibc-2.40 would pass the gate: the check above would say so."""
    unflagged, _ = _unflagged(binaries_built, ["SYM006"])
    assert ("c-unknown-node", "glibc-2.40") in unflagged


def test_runs_here_means_the_real_loader_loads_it(binaries_built: dict[str, Path]) -> None:
    """This machine is a release in the table (/etc/os-release): every fixture binlens says runs on it, the real
    loader loads (ld.so --list maps every library and checks every version node; nothing of the program runs)."""
    import re
    import subprocess

    release = dict(line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line)
    here = f"{release['ID']}-{release['VERSION_ID'].strip(chr(34))}"
    cfg = config.Config()
    cfg.set("targets", [here])
    request = pipeline.Request.for_policy(config.build_policy(cfg))
    loaders = {"x86_64": "/lib64/ld-linux-x86-64.so.2"}
    checked = 0
    for name, path in binaries_built.items():
        for entry in pipeline.analyze_file(str(path), request):
            facts = entry["facts"]
            if (
                facts.get("arch") not in loaders
                or facts.get("linkage") != "dynamic"
                or facts.get("kind") == "relocatable"
            ):
                continue
            if not facts["compat"]["targets"][here]["ok"] or facts.get("libc") != "glibc":
                continue
            system = ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu")
            if not all(any(Path(d, lib).exists() for d in system) for lib in facts["needed"]):
                continue  # needs a library of its own (a bundle): where it lies is not what the verdict judges
            listed = subprocess.run([loaders[facts["arch"]], "--list", str(path)], capture_output=True, text=True)
            problems = re.findall(r"not found|version `", listed.stdout + listed.stderr)
            assert listed.returncode == 0 and not problems, (name, listed.stdout, listed.stderr)
            checked += 1
    assert checked >= 10
