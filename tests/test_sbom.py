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


def _purl(kind: str, name: str, version: str, **qualifiers: str) -> str:
    """The package URL of those fields, as the purl reference library spells it (its escaping: `+` is %2B)."""
    from packageurl import PackageURL

    return str(PackageURL(type=kind, name=name, version=version, qualifiers=qualifiers or None))


def _packages(tmp_path: Path, fixtures_built: dict[str, Path], binaries_built: dict[str, Path]) -> dict[str, dict]:
    """Packages of each kind, and what their own tools read of them: name, version, arch (dpkg-deb -f, rpm -qp,
    the .apk's .PKGINFO as tar extracts it, the wheel's METADATA as unzip prints it)."""
    from groundtruth import build_apk, build_rpm

    out: dict[str, dict] = {}
    for name in ("coreutils.deb", "perl-base.deb"):
        deb = str(fixtures_built[name])
        fields = subprocess.run(["dpkg-deb", "-f", deb, "Package", "Version", "Architecture"], capture_output=True,
                                text=True, check=True).stdout
        f = dict(line.split(": ", 1) for line in fields.splitlines())
        out[deb] = {"name": f["Package"], "version": f["Version"],
                    "purl": _purl("deb", f["Package"], f["Version"], arch=f["Architecture"])}
    root = tmp_path / "root"
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "usr" / "bin" / "t").write_bytes(binaries_built["c-rawsys"].read_bytes())
    rpm = str(build_rpm(tmp_path, root, ["/usr/bin/t"], name="tool", version="2.5", release="3.el9", epoch=1))
    q = subprocess.run(["rpm", "-qp", "--nosignature", "--qf", "%{NAME} %{VERSION} %{RELEASE} %{ARCH} %{EPOCH}", rpm],
                       capture_output=True, text=True, check=True).stdout.split()
    out[rpm] = {"name": q[0], "version": f"{q[4]}:{q[1]}-{q[2]}",
                "purl": _purl("rpm", q[0], f"{q[1]}-{q[2]}", arch=q[3], epoch=q[4])}
    musl = binaries_built["c-x86_64-musl-static"].read_bytes()
    apk = str(build_apk(tmp_path / "tool-2.5-r3.apk", b"# Generated by abuild\npkgname = tool\npkgver = 2.5-r3\n"
                        b"arch = x86_64\nsize = 100\n", {"usr/bin/t": musl}))
    info = subprocess.run(["tar", "-xzOf", apk, ".PKGINFO"], capture_output=True, text=True, check=True).stdout
    f = dict(line.split(" = ", 1) for line in info.splitlines() if " = " in line)
    out[apk] = {"name": f["pkgname"], "version": f["pkgver"], "purl": _purl("apk", f["pkgname"], f["pkgver"],
                                                                            arch=f["arch"])}
    wheel = str(fixtures_built["numpy-2.2.6-cp311-cp311-manylinux_2_17_x86_64.whl"])
    meta = subprocess.run(["unzip", "-p", wheel, "numpy-2.2.6.dist-info/METADATA"], capture_output=True, text=True,
                          check=True).stdout
    f = dict(line.split(": ", 1) for line in meta.split("\n\n")[0].splitlines() if ": " in line)
    out[wheel] = {"name": f["Name"], "version": f["Version"], "purl": _purl("pypi", f["Name"].lower(), f["Version"])}
    return out


def test_packages_are_components_holding_their_binaries(fixtures_built: dict[str, Path],
                                                        binaries_built: dict[str, Path], tmp_path: Path) -> None:
    """A .deb, an .rpm, an Alpine .apk and a wheel scanned into an SBOM are each a component with the name,
    version and package URL their own tools read of them (no vendor namespace: a package file does not say which
    distribution built it), and each of their binaries is that component's: nested in it (CycloneDX), CONTAINed
    by it (SPDX). A plain file stays at the top."""
    from spdx_tools.spdx.parser.parse_anything import parse_file

    packages = _packages(tmp_path, fixtures_built, binaries_built)
    paths = [*packages, str(fixtures_built["usegreet"])]
    bom = json.loads(run_binlens("scan", "--format", "cyclonedx", "--fail-on", "never", *paths).stdout)
    top = {c["bom-ref"]: c for c in bom["components"]}
    assert f"artifact:{fixtures_built['usegreet']}" in top
    members = {a["path"] for a in json.loads(run_binlens("scan", "--format", "json", "--fail-on", "never",
                                                         *packages).stdout)["artifacts"]}
    for path, expected in packages.items():
        c = top[f"package:{path}"]
        assert (c["name"], c["version"], c["purl"]) == (expected["name"], expected["version"], expected["purl"])
        inside = {n["bom-ref"] for n in c["components"]}
        assert inside == {f"artifact:{m}" for m in members if m.startswith(path + "!")} and inside, path
        assert not inside & set(top)
    spdx = tmp_path / "sbom.spdx.json"
    assert run_binlens("scan", "--format", "spdx", "--fail-on", "never", "-o", str(spdx), *paths).returncode == 0
    document = parse_file(str(spdx))
    names = {p.spdx_id: p for p in document.packages}
    contains: dict[str, set[str]] = {}
    for r in document.relationships:
        if r.relationship_type.name == "CONTAINS":
            contains.setdefault(names[r.spdx_element_id].name, set()).add(names[r.related_spdx_element_id].name)
    assert set(contains) == {e["name"] for e in packages.values()}
    purls = {ref.locator for p in document.packages for ref in p.external_references}
    assert {e["purl"] for e in packages.values()} <= purls


def test_package_metadata_is_read_within_bounds(tmp_path: Path) -> None:
    """A .deb whose control archive holds 128 MiB before its `control` (a control archive is kilobytes): no
    identity (reading stops at 64 MiB), never an error; damaged packages give none either."""
    import gzip
    import io
    import tarfile

    from analyzer.load import packages

    def deb(path: Path, control_tar: bytes) -> Path:
        def member(name: str, body: bytes) -> bytes:
            hdr = f"{name:<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(body):<10}`\n".encode()
            return hdr + body + (b"\n" if len(body) % 2 else b"")

        path.write_bytes(b"!<arch>\n" + member("debian-binary", b"2.0\n") + member("control.tar.gz", control_tar)
                         + member("data.tar", b"\0" * 1024))
        return path

    def control(pad: int) -> bytes:
        buf = io.BytesIO()
        with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=1, mtime=0) as gz, \
                tarfile.open(fileobj=gz, mode="w|") as tf:
            if pad:
                info = tarfile.TarInfo("./pad")
                info.size = pad
                tf.addfile(info, io.BufferedReader(io.BytesIO(b"\1" * pad)))
            text = b"Package: x\nVersion: 1\nArchitecture: amd64\n"
            info = tarfile.TarInfo("./control")
            info.size = len(text)
            tf.addfile(info, io.BytesIO(text))
        return buf.getvalue()

    found = packages.identity(str(deb(tmp_path / "x_1_amd64.deb", control(1 << 20))))
    assert found is not None and packages.purl(found) == "pkg:deb/x@1?arch=amd64"
    assert packages.identity(str(deb(tmp_path / "y_1_amd64.deb", control(128 << 20)))) is None
    (tmp_path / "z.rpm").write_bytes(b"\xed\xab\xee\xdb" + b"\0" * 92 + b"\x8e\xad\xe8\x01" + b"\xff" * 12)
    (tmp_path / "z.whl").write_bytes(b"PK\x05\x06" + b"\0" * 18)
    assert packages.identity(str(tmp_path / "z.rpm")) is None and packages.identity(str(tmp_path / "z.whl")) is None


def test_packages_inside_a_container_are_components_too(fixtures_built: dict[str, Path],
                                                        binaries_built: dict[str, Path], tmp_path: Path) -> None:
    """A release tarball holding a .deb, an .rpm, an .apk and a wheel: each package is a component holding its
    binaries, as when named on the command line (its metadata read as it is unpacked). The SBOM is the same
    byte for byte when the result cache answers the unchanged tarball without unpacking it."""
    import tarfile

    packages = _packages(tmp_path, fixtures_built, binaries_built)
    ball = tmp_path / "release.tar"
    with tarfile.open(ball, "w") as tf:
        for path in packages:
            tf.add(path, arcname=f"dist/{Path(path).name}")
    runs = [run_binlens("scan", "--format", "cyclonedx", "--fail-on", "never", str(ball), *cache).stdout
            for cache in (["--no-cache"], ["--cache-dir", str(tmp_path / "c")], ["--cache-dir", str(tmp_path / "c")])]
    assert runs[0] == runs[1] == runs[2]
    top = {c["bom-ref"]: c for c in json.loads(runs[0])["components"]}
    for path, expected in packages.items():
        c = top[f"package:{ball}!dist/{Path(path).name}"]
        assert (c["name"], c["version"], c["purl"]) == (expected["name"], expected["version"], expected["purl"])
        assert c["components"] and all(n["bom-ref"].startswith(f"artifact:{ball}!dist/{Path(path).name}!")
                                       for n in c["components"])


def test_packages_inside_a_container_need_no_sbom_extra(fixtures_built: dict[str, Path], tmp_path: Path) -> None:
    """A scan (not an SBOM) of a tarball holding a .deb reads the package's identity as it unpacks it, and must
    not need the sbom extra's packageurl for that (a base install has none): the same report without it."""
    import subprocess
    import sys
    import tarfile

    from conftest import ROOT

    ball = tmp_path / "release.tar"
    with tarfile.open(ball, "w") as tf:
        tf.add(fixtures_built["coreutils.deb"], arcname="dist/coreutils.deb")
    args = ["scan", str(ball), "--format", "json", "--no-cache"]
    blocked = subprocess.run([sys.executable, "-c", "import sys; sys.modules['packageurl'] = None; "
                              "sys.argv[0] = 'binlens'; from analyzer.entry import main; main()", *args],
                             capture_output=True, text=True, cwd=ROOT)
    assert "Traceback" not in blocked.stderr and blocked.returncode == 0, blocked.stderr[-2000:]
    assert blocked.stdout == run_binlens(*args).stdout
