"""CycloneDX 1.6 JSON (cyclonedx-python-lib): one component per artifact, its libraries, Go modules and toolchain
as components, and the dependency graph between them (see analyzer.report.sbom)."""

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
             "go-toolchain": ComponentType.FRAMEWORK}  # fmt: skip
    components = {}
    for part in sbom.parts(report):
        components[part.ref] = Component(
            name=part.name,
            version=part.version,
            type=kinds[part.kind],
            bom_ref=part.ref,
            purl=PackageURL.from_string(part.purl) if part.purl else None,
            hashes=[HashType(alg=HashAlgorithm.SHA_256, content=part.sha256)] if part.sha256 else [],
            properties=[Property(name=k, value=v) for k, v in sorted(part.properties.items())],
        )
    tool = Component(name="binlens", version=report["tool"]["version"], type=ComponentType.APPLICATION)
    metadata = BomMetaData(tools=ToolRepository(components=[tool]), timestamp=sbom.created())
    dependencies = [
        Dependency(
            ref=components[p.ref].bom_ref, dependencies=[Dependency(ref=components[d].bom_ref) for d in p.depends_on]
        )
        for p in sbom.parts(report)
        if p.depends_on
    ]
    bom = Bom(components=components.values(), metadata=metadata, dependencies=dependencies,
              serial_number=uuid.uuid5(uuid.NAMESPACE_URL, "binlens:" + sbom.digest(report)))  # fmt: skip
    return str(JsonV1Dot6(bom).output_as_string(indent=1)) + "\n"
