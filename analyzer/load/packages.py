"""Who a package is: the name, version and architecture a .deb, .rpm, Alpine .apk or Python wheel says of itself
in its own metadata (a .deb's `control`, an RPM's header, an .apk's `.PKGINFO`, a wheel's `METADATA`), and its
package URL. The SBOM formats give each package named on the command line (or found in a directory) as a
component that contains its binaries (docs/policy.md, "SBOMs").

The purl's namespace is the vendor (debian, fedora, alpine): a package file does not say which distribution
built it, so binlens leaves it out rather than guess (`pkg:deb/coreutils@9.1-1?arch=amd64`). Every read is
bounded: a metadata file over MAX_META bytes, or an RPM header over the RPM limits, gives no identity."""

from __future__ import annotations

import re
import struct
from typing import Any

MAX_META = 1 << 20  # bytes of a control file, .PKGINFO or METADATA
MAX_CONTROL = 64 << 20  # decompressed bytes read to find it (a control archive is kilobytes), and an RPM header
MAX_MEMBERS = 256  # tar members looked at to find it
KINDS = {".deb": "deb", ".udeb": "deb", ".ddeb": "deb", ".rpm": "rpm", ".apk": "apk", ".whl": "pypi", ".jar": "maven",
         ".war": "maven", ".ear": "maven", ".aar": "maven"}
RPMTAG_NAME, RPMTAG_VERSION, RPMTAG_RELEASE, RPMTAG_EPOCH, RPMTAG_ARCH = 1000, 1001, 1002, 1003, 1022


def kind_by_name(path: str) -> str | None:
    lower = path.lower()
    return next((k for ext, k in KINDS.items() if lower.endswith(ext)), None)


def identity(path: str, kind: str | None = None) -> dict[str, Any] | None:
    """{type, name, version, arch (and an RPM's release, epoch)} of the package file at `path` (of `kind`: by
    default, what its name says), or None when it is none of these or its metadata cannot be read. Plain data
    (kept in the result cache with a container's member list); `shown_version` and `purl` derive the rest."""
    kind = kind or kind_by_name(path)
    try:
        fields = {"deb": _deb, "rpm": _rpm, "apk": _apk, "pypi": _wheel, "maven": _maven}[kind](path) if kind else None
    except Exception:  # noqa: BLE001 - a damaged package (the readers' and decompressors' own errors): no identity
        return None
    if kind is None or not fields or not fields.get("name") or not fields.get("version"):
        return None
    return {"type": kind, **fields}


def evr(ident: dict[str, Any]) -> str:
    """The version with an RPM's release: VERSION-RELEASE."""
    return f"{ident['version']}-{ident['release']}" if ident.get("release") else ident["version"]


def shown_version(ident: dict[str, Any]) -> str:
    """The version as the package's own tool shows it (rpm: [EPOCH:]VERSION-RELEASE)."""
    return f"{ident['epoch']}:{evr(ident)}" if ident.get("epoch") else evr(ident)


def purl(ident: dict[str, Any]) -> str:
    """The package URL (packageurl, of the sbom extra: imported only by the SBOM formats)."""
    from packageurl import PackageURL

    if ident["type"] == "pypi":
        name = re.sub(r"[-_.]+", "-", ident["name"]).lower()
        return str(PackageURL(type="pypi", name=name, version=ident["version"]))
    if ident["type"] == "maven":  # (pkg:maven/org.fusesource.jansi/jansi@2.4.0: the groupId is the namespace)
        return str(PackageURL(type="maven", namespace=ident.get("group") or None, name=ident["name"],
                              version=ident["version"]))
    if ident["type"] == "conda":  # (pkg:conda/zlib@1.3.1?build=h4ab18f5_1&subdir=linux-64: the purl spec's)
        qualifiers = {k: ident[k] for k in ("build", "subdir") if ident.get(k)}
        return str(PackageURL(type="conda", name=ident["name"], version=ident["version"],
                              qualifiers=qualifiers or None))
    if ident["type"] == "gem":  # (pkg:gem/nokogiri@1.15.4?platform=x86_64-linux: a platform gem's)
        return str(PackageURL(type="gem", name=ident["name"], version=ident["version"],
                              qualifiers={"platform": ident["platform"]} if ident.get("platform") else None))
    if ident["type"] == "npm":  # (pkg:npm/%40esbuild/linux-x64@0.20.2: the scope is the namespace)
        scope, _, name = ident["name"].rpartition("/")
        return str(PackageURL(type="npm", namespace=scope or None, name=name, version=ident["version"]))
    qualifiers = {k: ident[k] for k in ("arch", "epoch") if ident.get(k)}
    return str(PackageURL(type=ident["type"], name=ident["name"], version=evr(ident), qualifiers=qualifiers or None))


def _fields(text: str, sep: str) -> dict[str, str]:
    """`Key: value` (or `key = value`) lines of one paragraph; continuation lines are left out."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if out and sep == ":":
                break  # (the end of a control file's first paragraph)
            continue
        if line[0] in " \t" or line.startswith("#") or sep not in line:
            continue
        key, _, value = line.partition(sep)
        out.setdefault(key.strip(), value.strip())
    return out


def _bounded(stream: Any) -> str:
    data = stream.read(MAX_META + 1)
    if len(data) > MAX_META:
        raise ValueError("metadata too large")
    return bytes(data).decode("utf-8")


def _find(stream: Any, name: str) -> str | None:
    """The text of the tar member `name` (./ or not) in a decompressed stream, reading at most MAX_CONTROL bytes
    and MAX_MEMBERS members (a control archive that is a bomb gives nothing)."""
    from analyzer.load.archives import _Capped, _tar_open

    with _tar_open(fileobj=_Capped(stream, MAX_CONTROL), mode="r|") as tf:
        for k, info in enumerate(tf):
            if k >= MAX_MEMBERS:
                return None
            if info.isreg() and info.name.removeprefix("./") == name:
                return _bounded(tf.extractfile(info))
    return None


def _deb(path: str) -> dict[str, Any] | None:
    from analyzer.load.archives import _ar_members, _open_compressed, _Window

    with open(path, "rb") as fh:
        for member, at, size in _ar_members(path):
            if member.startswith("control.tar"):
                with _open_compressed(None, _Window(fh, at, size), expect=("control.tar", "tar")) as stream:
                    text = _find(stream, "control")
                if text is None:
                    return None
                f = _fields(text, ":")
                return {"name": f.get("Package"), "version": f.get("Version"), "arch": f.get("Architecture")}
    return None


def _apk(path: str) -> dict[str, Any] | None:
    from analyzer.load.archives import _open_compressed

    with _open_compressed(path) as stream:  # (the signature, then the control segment: .PKGINFO before the files)
        text = _find(stream, ".PKGINFO")
    if text is None:
        return None
    f = _fields(text, "=")
    return {"name": f.get("pkgname"), "version": f.get("pkgver"), "arch": f.get("arch")}


def _wheel(path: str) -> dict[str, Any] | None:
    from analyzer.load.archives import open_zip

    with open_zip(path) as z:
        metas = sorted(n for n in z.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n))
        if len(metas) != 1:
            return None
        with z.open(metas[0]) as fh:
            f = _fields(_bounded(fh), ":")
    return {"name": f.get("Name"), "version": f.get("Version")}


def _maven(path: str) -> dict[str, Any] | None:
    """A Java archive's Maven coordinates: its `META-INF/maven/GROUP/ARTIFACT/pom.properties` (as the Maven
    archiver writes it, and syft reads it) — the one there is, or, in a jar holding others' too (a shaded one),
    the one whose ARTIFACT-VERSION the file is named after; none when that does not decide."""
    import posixpath

    from analyzer.load.archives import open_zip

    with open_zip(path) as z:
        found, read = [], 0
        for n in sorted(z.namelist()):
            parts = n.split("/")
            if len(parts) == 5 and parts[:2] == ["META-INF", "maven"] and parts[4] == "pom.properties":
                read += 1
                if read > MAX_MEMBERS:  # (each read is up to MAX_META: a jar of a million of them is none)
                    return None
                with z.open(n) as fh:
                    f = properties(_bounded(fh))
                if f.get("groupId") == parts[2] and f.get("artifactId") == parts[3]:
                    found.append(f)
    if len(found) > 1:
        stem = posixpath.basename(path.replace("\\", "/")).rsplit(".", 1)[0]
        found = [f for f in found if stem == f"{f['artifactId']}-{f.get('version')}"]
    if len(found) != 1:
        return None
    return {"name": found[0]["artifactId"], "version": found[0].get("version"), "group": found[0]["groupId"]}


def properties(text: str) -> dict[str, str]:
    """A Java .properties file's keys and values, as java.util.Properties reads them: `#` and `!` comments, the
    first `=`, `:` or blank ending a key, a line ending in an odd number of backslashes continued on the next,
    and the backslash escapes (\\t \\n \\r \\f \\uXXXX; any other character stands for itself)."""
    out: dict[str, str] = {}
    lines = re.split(r"\r\n|\r|\n", text)  # (its line ends only: a form feed is a blank to it)
    i = 0
    while i < len(lines):
        line = lines[i].lstrip(" \t\f")
        i += 1
        if not line or line[0] in "#!":
            continue
        parts = [line]
        while (len(parts[-1]) - len(parts[-1].rstrip("\\"))) % 2 and i < len(lines):
            parts[-1] = parts[-1][:-1]  # (a line continued: its backslash dropped, the next one's blanks too)
            parts.append(lines[i].lstrip(" \t\f"))
            i += 1
        line = "".join(parts)
        key, k = _properties_token(line, 0, True)
        while k < len(line) and line[k] in " \t\f":
            k += 1
        if k < len(line) and line[k] in "=:":
            k += 1
        while k < len(line) and line[k] in " \t\f":
            k += 1
        value, _ = _properties_token(line, k, False)
        out[key] = value
    return out


def _properties_token(line: str, k: int, key: bool) -> tuple[str, int]:
    """A key (up to an unescaped `=`, `:` or blank) or a value (to the end) from `k`, its escapes read."""
    out = []
    while k < len(line):
        c = line[k]
        if key and c in "=: \t\f":
            break
        if c == "\\" and k + 1 < len(line):
            c = line[k + 1]
            k += 2
            if c == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", line[k:k + 4]):
                out.append(chr(int(line[k:k + 4], 16)))
                k += 4
                continue
            out.append({"t": "\t", "n": "\n", "r": "\r", "f": "\f"}.get(c, c))
            continue
        if c == "\\":  # (a lone backslash at the end)
            k += 1
            continue
        out.append(c)
        k += 1
    return "".join(out), k


def _rpm(path: str) -> dict[str, Any] | None:
    from analyzer.load.archives import rpm_main_header

    with open(path, "rb") as fh:
        nindex, hsize = rpm_main_header(fh, MAX_CONTROL)
        index = fh.read(nindex * 16)
        store = fh.read(hsize)
    if len(index) != nindex * 16 or len(store) != hsize:
        return None
    tags: dict[int, Any] = {}
    for k in range(nindex):
        tag, typ, offset, count = struct.unpack_from(">iiii", index, k * 16)
        if tag in (RPMTAG_NAME, RPMTAG_VERSION, RPMTAG_RELEASE, RPMTAG_ARCH) and typ == 6 and 0 <= offset < hsize:
            end = store.find(b"\0", offset)
            tags[tag] = store[offset:end if end >= 0 else hsize].decode("utf-8")
        elif tag == RPMTAG_EPOCH and typ == 4 and 0 <= offset <= hsize - 4:
            tags[tag] = str(struct.unpack_from(">I", store, offset)[0])
    return {"name": tags.get(RPMTAG_NAME), "version": tags.get(RPMTAG_VERSION), "release": tags.get(RPMTAG_RELEASE),
            "arch": tags.get(RPMTAG_ARCH), "epoch": tags.get(RPMTAG_EPOCH)}
