"""SPDX 2.3 JSON (spdx-tools): one package per artifact, its libraries, Go modules and toolchain as packages,
DESCRIBES and DEPENDS_ON relationships (see analyzer.report.sbom). Validated by spdx-tools as it is written."""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from typing import Any


def _spdx_id(ref: str) -> str:
    import hashlib

    readable = re.sub(r"[^A-Za-z0-9.-]+", "-", ref)[:60].strip("-")
    return f"SPDXRef-{readable}-{hashlib.sha256(ref.encode()).hexdigest()[:8]}"


def render(report: dict[str, Any], detailed: bool = False, rules: Sequence[Any] = ()) -> str:
    from spdx_tools.spdx.model import (
        Actor,
        ActorType,
        Checksum,
        ChecksumAlgorithm,
        CreationInfo,
        Document,
        ExternalPackageRef,
        ExternalPackageRefCategory,
        Package,
        Relationship,
        RelationshipType,
        SpdxNoAssertion,
    )  # fmt: skip
    from spdx_tools.spdx.writer.json import json_writer

    from analyzer.report import sbom

    parts = sbom.parts(report)
    info = CreationInfo(
        spdx_version="SPDX-2.3",
        spdx_id="SPDXRef-DOCUMENT",
        name="binlens report",
        document_namespace=f"https://pypi.org/project/binlens/spdx/{sbom.digest(report)}",
        creators=[Actor(ActorType.TOOL, f"binlens-{report['tool']['version']}")],
        created=sbom.created().replace(tzinfo=None),
    )
    packages = []
    for part in parts:
        refs = []
        if part.purl:
            refs.append(ExternalPackageRef(ExternalPackageRefCategory.PACKAGE_MANAGER, "purl", part.purl))
        comment = "; ".join(f"{k}={v}" for k, v in sorted(part.properties.items())) or None
        packages.append(Package(
            spdx_id=_spdx_id(part.ref), name=part.name, download_location=SpdxNoAssertion(), version=part.version,
            files_analyzed=False, external_references=refs, comment=comment,
            checksums=[Checksum(ChecksumAlgorithm.SHA256, part.sha256)] if part.sha256 else [],
        ))  # fmt: skip
    contained = {r for p in parts for r in p.contains}
    described = [_spdx_id(p.ref) for p in parts if p.kind in ("artifact", "package")]
    image = sbom.subject(report)
    if image is None:
        relationships = [Relationship("SPDXRef-DOCUMENT", RelationshipType.DESCRIBES, d) for d in described]
    else:  # (one container image scanned: the document describes it, and it contains the rest)
        comment = "; ".join(f"{k}={v}" for k, v in sorted(image.properties.items()))
        packages.append(Package(spdx_id=_spdx_id(image.ref), name=image.name, download_location=SpdxNoAssertion(),
                                files_analyzed=False, comment=comment))
        relationships = [Relationship("SPDXRef-DOCUMENT", RelationshipType.DESCRIBES, _spdx_id(image.ref))]
        relationships += [Relationship(_spdx_id(image.ref), RelationshipType.CONTAINS, _spdx_id(p.ref))
                          for p in parts if p.kind in ("artifact", "package") and p.ref not in contained]
    relationships += [Relationship(_spdx_id(p.ref), RelationshipType.CONTAINS, _spdx_id(r))
                      for p in parts for r in p.contains]  # fmt: skip
    relationships += [Relationship(_spdx_id(p.ref), RelationshipType.DEPENDS_ON, _spdx_id(d))
                      for p in parts for d in p.depends_on]  # fmt: skip
    document = Document(creation_info=info, packages=packages, relationships=relationships)
    out = io.StringIO()
    json_writer.write_document_to_stream(document, out, validate=True)
    return out.getvalue().rstrip("\n") + "\n"
