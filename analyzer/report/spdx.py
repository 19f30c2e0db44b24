"""SPDX 2.3 JSON (spdx-tools): one package per artifact, its libraries, Go modules and toolchain as packages,
DESCRIBES and DEPENDS_ON relationships (see analyzer.report.sbom). Validated with spdx-tools' validators as it is
written (`_validate`: the whole-document checks with sets, where the library's are quadratic)."""

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
    problems = _validate(document)
    if problems:
        raise ValueError(f"Document is not valid. The following errors were detected: {problems}")
    out = io.StringIO()
    json_writer.write_document_to_stream(document, out, validate=False)
    return out.getvalue().rstrip("\n") + "\n"


def _validate(document: Any) -> list[Any]:
    """What spdx-tools' validate_full_spdx_document says of a document such as render() makes (packages and
    relationships, no files, snippets, annotations or licences), in linear time: the library looks up each
    relationship's two IDs and each package's in a list of every ID it makes anew (103 s for the 10,308
    artifacts of /usr/lib/x86_64-linux-gnu). Each element goes through the library's own validator; what needs
    the whole document (the IDs a relationship names exist, no ID twice, the document describes something) is
    checked here with sets. A document holding what render() never puts in goes to the library's validation."""
    from spdx_tools.spdx.model import RelationshipType, SpdxNoAssertion, SpdxNone
    from spdx_tools.spdx.validation.creation_info_validator import validate_creation_info
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document
    from spdx_tools.spdx.validation.package_validator import validate_package
    from spdx_tools.spdx.validation.spdx_id_validators import validate_spdx_id
    from spdx_tools.spdx.validation.validation_message import SpdxElementType, ValidationContext, ValidationMessage

    info = document.creation_info
    if (document.files or document.snippets or document.annotations or document.extracted_licensing_info
            or info.spdx_version != "SPDX-2.3" or info.external_document_refs
            or any(p.files_analyzed or p.license_concluded or p.license_declared or p.license_info_from_files
                   for p in document.packages)):  # fmt: skip
        return validate_full_spdx_document(document)
    problems = list(validate_creation_info(info, info.spdx_version))
    ids = {info.spdx_id}
    repeated = set()
    for package in document.packages:
        context = ValidationContext(spdx_id=package.spdx_id, parent_id=info.spdx_id,
                                    element_type=SpdxElementType.PACKAGE, full_element=package)  # fmt: skip
        problems += [ValidationMessage(m, context) for m in validate_spdx_id(package.spdx_id, document)]
        problems += validate_package(package, info.spdx_version, context)
        if package.spdx_id in ids:
            repeated.add(package.spdx_id)
        ids.add(package.spdx_id)
    for relationship in document.relationships:
        context = ValidationContext(element_type=SpdxElementType.RELATIONSHIP, full_element=relationship)
        refs = [relationship.spdx_element_id]
        if relationship.related_spdx_element_id not in (SpdxNone(), SpdxNoAssertion()):
            refs.append(relationship.related_spdx_element_id)
        for ref in refs:
            problems += [ValidationMessage(m, context) for m in validate_spdx_id(ref, document)]
            if ":" not in ref and ref not in ids:
                problems.append(ValidationMessage(f'did not find the referenced spdx_id "{ref}" in the SPDX '
                                                  "document", context))  # fmt: skip
    describes = any((r.relationship_type == RelationshipType.DESCRIBES and r.spdx_element_id == info.spdx_id)
                    or (r.relationship_type == RelationshipType.DESCRIBED_BY
                        and r.related_spdx_element_id == info.spdx_id) for r in document.relationships)  # fmt: skip
    document_context = ValidationContext(spdx_id=info.spdx_id, element_type=SpdxElementType.DOCUMENT)
    if len(document.packages) != 1 and not describes:
        problems.append(ValidationMessage(f'there must be at least one relationship "{info.spdx_id} DESCRIBES ..." '
                                          f'or "... DESCRIBED_BY {info.spdx_id}" when there is not only a single '
                                          "package present", document_context))  # fmt: skip
    if repeated:
        problems.append(ValidationMessage("every spdx_id must be unique within the document, but found the "
                                          f"following duplicates: {sorted(repeated)}", document_context))  # fmt: skip
    return problems
