"""CycloneDX 1.6 JSON (cyclonedx-python-lib): one component per artifact, its libraries, Go modules and toolchain
as components, and the dependency graph between them; a package's artifacts nested in its component (see
analyzer.report.sbom)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any


def render(report: dict[str, Any], detailed: bool = False, rules: Sequence[Any] = ()) -> str:
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
    _index_dependencies(bom)
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
