"""Symbol-version facts: .gnu.version_r needs, versioned imports, the highest node per namespace, the nodes the
object defines (.gnu.version_d), and whether it is a component of glibc itself.

Imports are resolved through .dynsym + .gnu.version -> .gnu.version_r (the
vna_other index), never through .symtab, so stripped binaries give the same answer.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from analyzer.load import Artifact
from analyzer.load.elf import ELFFile

if TYPE_CHECKING:
    from analyzer.facts import Context

# NAMESPACE_1.2.3 (or NAMESPACE_1_2_3): the namespace is everything before the
# last "_<number>..." tail, so ZLIB_NG_2.0.0 is ZLIB_NG and CXXABI_LDBL_1.3 is
# CXXABI_LDBL, not ZLIB or CXXABI.
_NODE = re.compile(r"^(?P<ns>.+?)_(?P<ver>\d+(?:[._]\d+)*)$")
VER_FLG_BASE = 1  # the version definition that names the file itself
# glibc's package version as its programs print it: "(GNU libc) ", or a distribution's "(Debian GLIBC 2.36-9) "
_GLIBC_PKGVERSION = re.compile(rb"\((?:GNU libc|[^()\n\0]{0,64} GLIBC \d[^()\n\0]{0,64})\) \0")
MAX_RODATA = 64 << 20  # bytes of .rodata searched for it


def parse_node(node: str) -> tuple[str, tuple[int, ...]] | None:
    """(namespace, numeric version) of a version node name, or None if it has no number."""
    m = _NODE.match(node)
    if not m:
        return None
    return m["ns"], tuple(int(p) for p in re.split(r"[._]", m["ver"]))


def split_node(node: str, namespaces: tuple[str, ...]) -> tuple[str, str] | None:
    """(namespace, the rest) when `node` is NAMESPACE_REST for one of `namespaces`, numbered or not
    (GLIBC_2.34, GLIBC_ABI_DT_RELR, CXXABI_LDBL_1.3); the longest namespace wins (GLIBCXX before GLIBC)."""
    for ns in sorted(namespaces, key=len, reverse=True):
        if node.startswith(ns + "_") and len(node) > len(ns) + 1:
            return ns, node[len(ns) + 1 :]
    return None


def facts(art: Artifact) -> dict[str, Any]:
    """version_needs, versioned_imports, version_max and version_unnumbered."""
    elf: ELFFile = art.binary
    version_needs: dict[str, list[str]] = {}
    by_index: dict[int, tuple[str, str]] = {}
    for need in elf.version_needs:
        names = version_needs.setdefault(need.file, [])
        for name, other, _ in need.aux:
            names.append(name)
            by_index[other & 0x7FFF] = (need.file, name)

    versym = elf.versym
    imports: list[dict[str, Any]] = []
    nversym = len(versym)
    for index, name, info in elf.undefined_symbols():
        found = by_index.get(versym[index] & 0x7FFF) if index < nversym else None
        library, version = found if found else (None, None)
        imports.append({"symbol": name, "version": version, "library": library, "weak": info >> 4 == 2})

    best: dict[str, tuple[tuple[int, ...], str, str]] = {}
    unnumbered: dict[str, dict[str, Any]] = {}
    for library, nodes in version_needs.items():
        for node in nodes:
            parsed = parse_node(node)
            if parsed is None:
                unnumbered.setdefault(node, {"library": library, "symbols": []})
                continue
            ns, ver = parsed
            if ns not in best or ver > best[ns][0]:
                best[ns] = (ver, node, library)
    forcing: dict[str, list[str]] = {node: [] for _, node, _ in best.values()}
    for imp in imports:
        v = imp["version"]
        if v in forcing:
            forcing[v].append(imp["symbol"])
        elif v in unnumbered:
            unnumbered[v]["symbols"].append(imp["symbol"])
    version_max = {
        ns: {
            "version": node[len(ns) + 1 :],
            "node": node,
            "library": library,
            "symbols": sorted(set(forcing[node])),
        }
        for ns, (_, node, library) in sorted(best.items())
    }
    if any(node.endswith("_PRIVATE") and not e["symbols"] for node, e in unnumbered.items()):
        # data a program copies in (a copy relocation) is defined in the program, with the library's version:
        # `extern int __libc_enable_secure` is no import, yet needs GLIBC_PRIVATE
        for sym in elf.dynamic_symbols():
            if sym.st_shndx != 0 and sym.index < nversym:
                found = by_index.get(versym[sym.index] & 0x7FFF)
                if found is not None and found[1] in unnumbered and found[1].endswith("_PRIVATE"):
                    unnumbered[found[1]]["symbols"].append(sym.name)
    for entry in unnumbered.values():
        entry["symbols"] = sorted(set(entry["symbols"]))
    definitions = [d.names[0] for d in elf.version_defs if d.names and not d.flags & VER_FLG_BASE]
    return {
        "version_needs": version_needs,
        "versioned_imports": imports,
        "version_max": version_max,
        "version_unnumbered": unnumbered,
        "version_definitions": definitions,
        "glibc_component": _glibc_component(elf, definitions, unnumbered),
    }


def _glibc_component(elf: ELFFile, definitions: list[str], unnumbered: dict[str, Any]) -> bool:
    """Whether the object is part of the GNU C library itself, built and shipped with it, so that its
    GLIBC_PRIVATE needs are met by the libc of its own build: it defines GLIBC_PRIVATE (libc.so.6, the loader);
    or it needs GLIBC_PRIVATE and defines GLIBC version nodes (libm, libresolv, libnss_*), is an iconv module
    that libc loads (gconv_init defined) or is one of glibc's programs (getent, iconv, pldd: glibc's package
    version in .rodata). Defining GLIBC nodes alone is not enough: interposers (gprofng's collectors) and
    libraries that took over one of glibc's (libxcrypt's libcrypt.so.1) define them too, and need no private
    interface of one build."""
    if "GLIBC_PRIVATE" in definitions:
        return True
    if "GLIBC_PRIVATE" not in unnumbered:
        return False
    if any((parse_node(n) or ("",))[0] == "GLIBC" for n in definitions):
        return True
    if elf.dynstr_has(b"gconv_init") and any(s.name == "gconv_init" and s.st_shndx != 0 for s in elf.dynamic_symbols()):
        return True
    rodata = next((s for s in elf.sections if s.name == ".rodata" and s.sh_type != 8), None)  # (not SHT_NOBITS)
    if rodata is None or rodata.sh_size > MAX_RODATA or rodata.sh_offset + rodata.sh_size > len(elf.data):
        return False
    return _GLIBC_PKGVERSION.search(bytes(elf.data[rodata.sh_offset:rodata.sh_offset + rodata.sh_size])) is not None


def provide(art: Artifact, known: dict[str, Any], context: Context) -> dict[str, Any]:
    return facts(art)
