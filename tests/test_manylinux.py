"""manylinux targets apply the whole PEP 600 policy as auditwheel does (versions per namespace, the library
whitelist, blacklisted symbols, the x86-64 baseline, libraries bundled beside the binary): the best policy
binlens finds equals what `auditwheel show` says, for every Linux fixture wrapped in a wheel and for a real
wheel whose extensions load libraries bundled through $ORIGIN."""

from __future__ import annotations

import zipfile
from pathlib import Path

from groundtruth import AUDITWHEEL_ARCH, auditwheel_tag, wheel_of

from analyzer import pipeline
from analyzer.policy import compat, config

POLICIES = compat.table()["manylinux"]


def _request() -> pipeline.Request:
    cfg = config.Config()
    cfg.set("targets", list(POLICIES))
    return pipeline.Request.for_policy(config.build_policy(cfg))


def _passing(entry: dict, arch: str) -> set[str]:
    return {t for t, v in entry["facts"]["compat"]["targets"].items() if v["ok"] and arch in POLICIES[t]["arches"]}


def _best(passing: set[str]) -> str:
    """The policy auditwheel would pick among those satisfied: the highest priority (the oldest)."""
    return max(passing, key=lambda t: POLICIES[t]["priority"]) if passing else "linux"


def test_best_policy_equals_auditwheel_on_every_fixture(binaries_built: dict[str, Path], tmp_path: Path) -> None:
    request = _request()
    compared = set()
    for name, path in binaries_built.items():
        if path.read_bytes()[:4] != b"\x7fELF":
            continue
        (entry, *_) = pipeline.analyze_file(str(path), request)
        facts = entry["facts"]
        if facts["arch"] not in AUDITWHEEL_ARCH or facts["os"]["name"] not in ("linux", "unknown"):
            continue
        if facts["kind"] == "relocatable":
            continue
        if facts["linkage"] == "dynamic" and not facts["needed"]:
            continue  # links no libc at all: auditwheel refuses it ("couldn't detect libc")
        arch = AUDITWHEEL_ARCH[facts["arch"]]
        expected = auditwheel_tag(wheel_of(path, arch, tmp_path))
        assert _best(_passing(entry, arch)) == expected, (name, facts["compat"]["problems"][:3])
        compared.add(expected)
    # the comparison covers passing and failing verdicts
    assert "linux" in compared and len(compared) >= 5, compared


def test_bundled_libraries_of_a_real_wheel(fixtures_built: dict[str, Path], tmp_path: Path) -> None:
    """numpy's extensions need libscipy_openblas and libgfortran from numpy.libs/ ($ORIGIN RPATH): auditwheel
    counts them as bundled, and so does binlens when it finds them beside the extension."""
    wheel = fixtures_built["numpy-2.2.6-cp311-cp311-manylinux_2_17_x86_64.whl"]
    expected = auditwheel_tag(wheel)
    tree = tmp_path / "unpacked"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(tree)
    request = _request()
    members = [p for p in tree.rglob("*.so") if p.read_bytes()[:4] == b"\x7fELF" and ".libs" not in p.parts[-2]]
    assert members
    passing = set(POLICIES)
    bundled_seen = False
    for member in members:
        (entry,) = pipeline.analyze_file(str(member), request)
        passing &= _passing(entry, "x86_64")
        bundled_seen |= any(".libs" in lib for lib in entry["facts"]["needed"]) or bool(entry["facts"]["rpath"])
    assert bundled_seen
    assert _best(passing) == expected
