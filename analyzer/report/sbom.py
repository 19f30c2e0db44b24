"""What both SBOM formats say, from a report: one component per artifact, the libraries it links and the Go
modules and toolchain it was built with, and who depends on what. `cyclonedx` and `spdx` write it.

SBOMs are reproducible: the same report gives the same bytes. The document's time is SOURCE_DATE_EPOCH (the
reproducible-builds convention) or, without it, the Unix epoch; its serial number and namespace are derived from
the artifacts' hashes.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from analyzer.errors import AnalyzerError


@dataclass
class Part:
    """One component: an artifact, a library it links, a Go module or a Go toolchain."""

    ref: str  # unique within the SBOM
    name: str
    kind: str  # "artifact" | "library" | "go-module" | "go-toolchain" | "package" | "image" (the subject)
    version: str | None = None
    purl: str | None = None
    sha256: str | None = None
    properties: dict[str, str] = field(default_factory=dict)
    depends_on: list[str] = field(default_factory=list)
    contains: list[str] = field(default_factory=list)  # a package's artifacts


def require_libraries() -> None:
    try:
        import packageurl  # noqa: F401
        import spdx_tools  # noqa: F401
    except ImportError:
        raise AnalyzerError("SBOM formats need the sbom extra: pip install 'binlens[sbom]'") from None


def created() -> datetime:
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "0")
    return datetime.fromtimestamp(int(epoch) if epoch.isdigit() else 0, tz=UTC)


def digest(report: dict[str, Any]) -> str:
    """A hash of what the SBOM describes: its identity (serial number, namespace) follows from the content."""
    h = hashlib.sha256()
    for a in report["artifacts"]:
        h.update(f"{a['path']}\0{a.get('sha256')}\0".encode())
    return h.hexdigest()


def _go_purl(path: str, version: str) -> str:
    from packageurl import PackageURL

    namespace, _, name = path.rpartition("/")
    return str(PackageURL(type="golang", namespace=namespace or None, name=name, version=version))


def _package(container: str, known: dict[str, Part | None]) -> Part | None:
    """The package a container is (a .deb, .rpm, .apk or wheel, by its own metadata), once per run: read from
    the file named on the command line or found in a directory, or as the unpacking recorded it for one inside
    another container."""
    if container not in known:
        from analyzer.load.archives import PACKAGES
        from analyzer.load.packages import identity, kind_by_name, purl, shown_version

        found = PACKAGES.get(container)
        if found is None and kind_by_name(container) and os.path.isfile(container):
            found = identity(container)
        known[container] = None if found is None else Part(
            f"package:{container}", found["name"], "package", shown_version(found), purl(found),
            properties={"binlens:path": container, "binlens:package_type": found["type"],
                        **({"binlens:arch": found["arch"]} if found.get("arch") else {})})
    return known[container]


def _installed(image: str, known: dict[str, list[Part]]) -> list[Part]:
    """The OS packages installed in an image (its package database: analyzer.load.installed), once per run, in
    the database's order; an image without one has none."""
    if image not in known:
        from analyzer.load.archives import INSTALLED
        from analyzer.load.installed import purl
        from analyzer.load.packages import shown_version

        found = INSTALLED.get(image) or {"packages": [], "distro": {}}
        known[image] = [Part(f"installed:{image}:{i}", p["name"], "package", shown_version(p), purl(p, found["distro"]),
                             properties={"binlens:installed_in": image, "binlens:package_type": p["type"],
                                         **({"binlens:arch": p["arch"]} if p.get("arch") else {}),
                                         **({"binlens:source": p["source"]} if p.get("source") else {}),
                                         **({"binlens:location": p["location"]} if p.get("location") else {})})
                        for i, p in enumerate(found["packages"])]  # fmt: skip
    return known[image]


def subject(report: dict[str, Any]) -> Part | None:
    """The image the SBOM describes, when the report is of one container image and nothing else (every artifact is
    its member): a component of its own, the BOM's subject (CycloneDX's metadata.component; what SPDX DESCRIBES),
    as syft makes the image scanned its subject. None otherwise."""
    from analyzer.load.archives import INSTALLED, SEP

    paths = [a["path"] for a in report["artifacts"] if not isinstance(a, str)]
    images = {i for i in INSTALLED if not INSTALLED[i].get("source") and any(p.startswith(i + SEP) for p in paths)}
    if len(images) != 1:
        return None
    (image,) = images
    if not all(p.startswith(image + SEP) for p in paths):
        return None
    from analyzer.load.installed import release_name

    system = release_name(INSTALLED[image]["distro"])
    platform = INSTALLED[image].get("platform")
    return Part(f"image:{image}", posixpath.basename(image.rstrip("/")) or image, "image",
                properties={"binlens:path": image, **({"binlens:distro": system} if system else {}),
                            **({"binlens:platform": platform} if platform else {})})


def parts(report: dict[str, Any]) -> list[Part]:
    """Every component, artifacts first (in report order), then the packages that contain them (in the order
    first met: package files, and the OS packages installed in an image, each image's all), then libraries,
    modules and toolchains (sorted)."""
    from analyzer.load.archives import INSTALLED, OWNERS, SEP

    artifacts: list[Part] = []
    shared: dict[str, Part] = {}
    packages: dict[str, Part | None] = {}
    installed: dict[str, list[Part]] = {}
    for a in report["artifacts"]:
        if isinstance(a, str) or a.get("error"):
            continue
        facts = a["facts"]
        ref = f"artifact:{a['path']}"
        names = a["path"].split(SEP)
        owner = OWNERS.get(a["path"]) or OWNERS.get(a["path"].rsplit("[", 1)[0])  # (a fat file's slice: its file's)
        if owner is not None and INSTALLED.get(owner[0], {}).get("source") == "directory":  # (a directory tree's file)
            names = names[:1]  # (no container holds it: the package its tree's database names)
            owners = _installed(owner[0], installed)
            if 0 <= owner[1] < len(owners):
                owners[owner[1]].contains.append(ref)
        for k in range(len(names) - 1, 0, -1):  # the innermost package holding it
            container = SEP.join(names[:k])
            owners = _installed(container, installed)
            if owner is not None and owner[0] == container and 0 <= owner[1] < len(owners):
                owners[owner[1]].contains.append(ref)  # (an image's member that an installed package owns)
                break
            if (package := _package(container, packages)) is not None:
                package.contains.append(ref)
                break
        props = {"binlens:path": a["path"], "binlens:format": a["format"] or "", "binlens:arch": str(facts.get("arch"))}
        for key in ("kind", "linkage", "libc"):
            if facts.get(key):
                props[f"binlens:{key}"] = str(facts[key])
        part = Part(ref, posixpath.basename(a["path"]), "artifact", sha256=a.get("sha256"), properties=props)
        resolved = {lib["name"]: lib["path"] for lib in (facts.get("deps") or {}).get("libraries", [])}
        libraries = facts.get("needed") or list((facts.get("pe") or {}).get("imports", {}))
        for lib in libraries:
            lib_ref = f"library:{lib}"
            entry = shared.setdefault(lib_ref, Part(lib_ref, lib, "library"))
            if lib in resolved:
                entry.properties["binlens:resolved_path"] = resolved[lib]
            part.depends_on.append(lib_ref)
        go = facts.get("go") or {}
        if go.get("version"):
            version = go["version"].removeprefix("go")
            tool_ref = f"go:stdlib@{version}"
            shared.setdefault(tool_ref, Part(tool_ref, "stdlib", "go-toolchain", version, _go_purl("stdlib", version)))
            part.depends_on.append(tool_ref)
        for dep in go.get("deps", []):
            used = dep.get("replace") or dep
            mod_ref = f"go:{used['path']}@{used['version']}"
            module = Part(mod_ref, used["path"], "go-module", used["version"], _go_purl(used["path"], used["version"]))
            if used.get("sum"):
                module.properties["binlens:go:h1"] = used["sum"]
            if dep.get("replace"):
                module.properties["binlens:go:replaces"] = f"{dep['path']}@{dep['version']}"
            shared.setdefault(mod_ref, module)
            part.depends_on.append(mod_ref)
        artifacts.append(part)
    for tree in sorted(i for i in INSTALLED if INSTALLED[i].get("source") == "directory"):
        _installed(tree, installed)  # (a directory tree's packages, those owning no binary too)
    return (artifacts + [p for p in packages.values() if p is not None] + [p for ps in installed.values() for p in ps]
            + [shared[k] for k in sorted(shared)])
