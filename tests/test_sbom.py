"""SBOMs: CycloneDX 1.6 and SPDX 2.3, valid by the libraries' own validators; the Go modules of every Go binary
as `go version -m` lists them (syft, the usual reference, installs only from its GitHub releases: the Go tool's
own listing is the ground truth here); the libraries of every ELF binary as readelf lists them."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import build
from conftest import run_binlens

NAMES = ("gomx-app", "gomx-vcs-dirty", "go-linux-cgo-amd64", "usegreet", "cpp-x86_64-gxx", "go-windows-amd64.exe")


def _paths(fixtures_built: dict[str, Path]) -> list[str]:
    return [str(fixtures_built[n]) for n in NAMES]


def _go_modules(path: str) -> set[str]:
    """path@version of every dep as `go version -m` prints it (the replacement when there is one)."""
    out = subprocess.run([str(build.go_binary()), "version", "-m", path], capture_output=True, text=True).stdout
    modules, last = set(), None
    for line in out.splitlines():
        fields = line.strip().split("\t")
        if fields[0] == "dep":
            last = f"{fields[1]}@{fields[2]}"
            modules.add(last)
        elif fields[0] == "=>" and last:
            modules.discard(last)
            modules.add(f"{fields[1]}@{fields[2]}")
    return modules


def _needed(path: str) -> set[str]:
    out = subprocess.run(["readelf", "-dW", path], capture_output=True, text=True).stdout
    return set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out))


def test_cyclonedx_is_valid_and_complete(fixtures_built: dict[str, Path]) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    paths = _paths(fixtures_built)
    text = run_binlens("scan", "--format", "cyclonedx", "--fail-on", "never", *paths).stdout
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    bom = json.loads(text)
    refs = {c["bom-ref"]: c for c in bom["components"]}
    depends = {d["ref"]: set(d.get("dependsOn", [])) for d in bom["dependencies"]}  # CycloneDX 1.6: refs
    for path in paths:
        ref = f"artifact:{path}"
        assert refs[ref]["hashes"][0]["content"] == subprocess.run(["sha256sum", path], capture_output=True,
                                                                  text=True).stdout.split()[0]  # fmt: skip
        modules = {f"{refs[d]['name']}@{refs[d]['version']}" for d in depends.get(ref, ()) if d.startswith("go:")
                   and refs[d]["name"] != "stdlib"}  # fmt: skip
        assert modules == _go_modules(path), path
        if not path.endswith(".exe"):
            libraries = {refs[d]["name"] for d in depends.get(ref, ()) if d.startswith("library:")}
            assert libraries == _needed(path), path
    purls = [c["purl"] for c in bom["components"] if c.get("purl")]
    assert any(p.startswith("pkg:golang/example.com/binlens/") for p in purls)
    assert any(p.startswith("pkg:golang/stdlib@") for p in purls)


def test_spdx_is_valid_and_complete(fixtures_built: dict[str, Path], tmp_path: Path) -> None:
    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    paths = _paths(fixtures_built)
    out = tmp_path / "sbom.spdx.json"
    assert run_binlens("scan", "--format", "spdx", "--fail-on", "never", "-o", str(out), *paths).returncode == 0
    document = parse_file(str(out))
    assert validate_full_spdx_document(document) == []
    described = {r.related_spdx_element_id for r in document.relationships if r.relationship_type.name == "DESCRIBES"}
    assert len(described) == len(paths)
    purls = {ref.locator for p in document.packages for ref in p.external_references}
    for path in paths:
        for module in _go_modules(path):
            name, _, version = module.rpartition("@")
            assert any(purl.startswith(f"pkg:golang/{name}@") for purl in purls), module
