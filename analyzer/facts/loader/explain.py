"""`binlens explain "<loader error>"`: read a pasted dynamic-loader error and explain it.

Understands glibc's ld.so messages (cannot open shared object file, version
not found, symbol lookup error), musl's (Error loading shared library, Error
relocating ... symbol not found), and the shell's words for a missing
interpreter (No such file or directory / required file not found for a file
that exists).
"""

from __future__ import annotations

import re
from typing import Any

from analyzer.errors import AnalyzerError

PATTERNS = [
    ("missing-library", re.compile(r"error while loading shared libraries: (?P<lib>[^:]+): cannot open shared object file")),
    ("missing-library", re.compile(r"Error loading shared library (?P<lib>\S+): No such file or directory(?: \(needed by (?P<by>[^)]+)\))?")),
    ("missing-version", re.compile(r"(?P<lib>/?[^\s:]+): version `(?P<version>[^']+)' not found \(required by (?P<by>[^)]+)\)")),
    ("undefined-symbol", re.compile(r"symbol lookup error: (?P<by>[^:]+): undefined symbol: (?P<symbol>[^,\s]+)(?:, version (?P<version>\S+))?")),
    ("undefined-symbol", re.compile(r"Error relocating (?P<by>[^:]+): (?P<symbol>[^:]+): symbol not found")),
    ("bad-library", re.compile(r"error while loading shared libraries: (?P<lib>[^:]+): (?P<why>invalid ELF header|file too short|wrong ELF class: \S+)")),
    ("missing-interpreter", re.compile(r"(?P<prog>\S+): (?:cannot execute: )?(?:No such file or directory|required file not found)")),
]  # fmt: skip


def parse(text: str) -> dict[str, Any]:
    """The kind of error and what it names."""
    for kind, pattern in PATTERNS:
        m = pattern.search(text)
        if m:
            return {"kind": kind, **{k: v for k, v in m.groupdict().items() if v}}
    raise AnalyzerError("not a dynamic loader error binlens knows (glibc ld.so, musl, or a missing interpreter)")


def releases_with(node: str) -> list[str]:
    """The (non-rolling) distribution releases whose libraries define version node `node`."""
    from analyzer.facts.symvers import parse_node
    from analyzer.policy import compat

    parsed = parse_node(node)
    if not parsed:
        return []
    ns, _ = parsed
    version = node[len(ns) + 1 :]
    out = []
    for name, r in compat.table()["releases"].items():
        if r["rolling"] or r["family"] == "rhubi":
            continue
        if any(version in a["nodes"].get(ns, []) for a in r["arches"].values()):
            out.append(name)
    return out


def explain_error(text: str, binary: str | None = None, sysroot: str = "/") -> list[str]:
    """Lines of explanation for a pasted error, using the binary and sysroot when given."""
    err = parse(text)
    lines: list[str] = []
    deps = None
    if binary:
        from analyzer.facts import loader

        deps = loader.analyze_path(binary, loader.Options(sysroot=sysroot))
    kind = err["kind"]
    if kind == "missing-library":
        lib = err["lib"]
        lines.append(f"The loader could not find {lib}" + (f", needed by {err['by']}." if "by" in err else "."))
        if deps:
            for miss in deps["missing"]:
                if miss["name"] == lib:
                    lines.append(f"{miss['needed_by']} needs it; the loader looked in:")
                    lines += [f"  {t}" for t in miss["tried"]] or ["  (no directory: no RPATH, RUNPATH or default)"]
        lines += [
            "Fixes:",
            f"  - install the package that ships {lib} on the target (for Debian: apt-file search {lib});",
            "  - or ship it beside the program and link with -Wl,-rpath,'$ORIGIN/../lib' (DT_RUNPATH);",
            "  - or link it statically; for Go, build with CGO_ENABLED=0 if it came in through cgo.",
        ]
    elif kind == "missing-version":
        version, lib = err["version"], err["lib"]
        lines.append(f"{err['by']} requires version node {version} from {lib}, and the {lib} the loader found "
                     "does not define it: the library is older than the one the program was linked against.")  # fmt: skip
        if deps:
            for b in deps["bindings"]:
                if b["version"] == version:
                    lines.append(f"  {b['object']} uses {b['symbol']}@{version}")
        ships = releases_with(version)
        if ships:
            lines.append(f"Distribution releases that ship {version}: {', '.join(ships)}.")
        lines += [
            "Fixes:",
            "  - build against the oldest library version you support (an older build image or sysroot; for glibc,"
            " `zig cc -target x86_64-linux-gnu.2.28`), so the program needs no newer node;",
            f"  - or run it where {version} exists (a newer distribution release);",
            "  - or link statically (musl), or for Go build with CGO_ENABLED=0.",
        ]
    elif kind == "undefined-symbol":
        symbol = err["symbol"]
        version = err.get("version")
        lines.append(f"{err['by']} refers to {symbol}" + (f"@{version}" if version else "")
                     + ", and no loaded object defines it.")  # fmt: skip
        if deps:
            libs = [f"{lib['name']} ({lib['path']})" for lib in deps["libraries"]]
            lines.append("Objects searched, in the loader's order: the program, then " + ", ".join(libs) + ".")
        lines += [
            "Fixes:",
            "  - the library that defines it is missing or older than at link time: install or ship the right one;",
            "  - if it is defined in a library the program does not link directly, add that library to the link;",
            "  - a symbol with a version must be defined with that version node (check the library's version script).",
        ]
    elif kind == "bad-library":
        lines.append(f"The loader found {err['lib']} but it is not a usable ELF shared object ({err['why']}).")
        lines.append(
            "Fixes: replace the file (a truncated download, a text stub, or a library for another architecture)."
        )
    else:
        lines.append(f"{err.get('prog', 'The program')} exists, but the kernel could not start it: its interpreter"
                     " (PT_INTERP) is missing on this system.")  # fmt: skip
        if deps and deps["interpreter"]["path"]:
            found = deps["interpreter"]["found"]
            lines.append(f"It asks for {deps['interpreter']['path']}, which is {'present' if found else 'not present'} "
                         "in the sysroot.")  # fmt: skip
        lines += [
            "Fixes:",
            "  - a glibc program on Alpine (musl) or in a scratch image: build it statically or for musl;",
            "  - for Go: CGO_ENABLED=0; for a foreign architecture: check the build's target (binlens scan --arch).",
        ]
    return lines
