"""ELF linkage facts, as the dynamic loader sees the program headers and DT_* entries.

The kind of object (PIE or not) is computed from e_type, PT_INTERP, PT_DYNAMIC
and DF_1_PIE, never taken from a library's `is_pie` (LIEF's is wrong for
static-pie).
"""

from __future__ import annotations

import posixpath
import re
from typing import TYPE_CHECKING, Any

from analyzer.load import Artifact
from analyzer.load.elf import PT_DYNAMIC, ELFFile

if TYPE_CHECKING:
    from analyzer.facts import Context

PT_GNU_STACK, PT_GNU_RELRO = 0x6474E551, 0x6474E552
DT_NEEDED, DT_SONAME, DT_RPATH, DT_RUNPATH = 1, 14, 15, 29
DT_FLAGS, DT_FLAGS_1, DT_BIND_NOW, DT_TEXTREL = 30, 0x6FFFFFFB, 24, 22
DF_BIND_NOW, DF_TEXTREL = 0x8, 0x4
DF_1_NOW, DF_1_NODEFLIB, DF_1_PIE = 0x1, 0x800, 0x08000000

_GLIBC_INTERP = re.compile(r"^(ld-linux[-\w.]*\.so\.\d+|ld64\.so\.\d|ld\.so\.1)$")
_MUSL_INTERP = re.compile(r"^ld-musl-[\w.-]+\.so\.1$")


def libc_flavour(interpreter: str | None, needed: list[str], android: bool) -> str | None:
    """glibc, musl, bionic or None, from the interpreter's name and then the needed list."""
    if interpreter:
        base = posixpath.basename(interpreter)
        if _MUSL_INTERP.match(base):
            return "musl"
        if base in ("linker", "linker64") and "/system/" in interpreter:
            return "bionic"
        if _GLIBC_INTERP.match(base):
            return "glibc"
    for lib in needed:
        if lib == "libc.so.6":
            return "glibc"
        if lib.startswith("libc.musl-"):
            return "musl"
        if lib == "libc.so":
            return "bionic" if android else "musl"
    return None


def _is_android(elf: ELFFile) -> bool:
    return any(s.name == ".note.android.ident" for s in elf.sections)


def facts(art: Artifact, e_type: str) -> dict[str, Any]:
    """kind, linkage, interpreter, libc, needed, rpath, runpath, soname and loader flags."""
    elf: ELFFile = art.binary
    seg_types = [s.p_type for s in elf.segments]
    interpreter = elf.interpreter
    needed: list[str] = []
    rpath: list[str] = []
    runpath: list[str] = []
    soname: str | None = None
    flags = flags_1 = 0
    textrel = bind_now = False
    for tag, value in elf.dynamic:
        if tag == DT_NEEDED:
            needed.append(elf.dynstr(value))
        elif tag == DT_SONAME:
            soname = elf.dynstr(value)
        elif tag == DT_RPATH:
            rpath.extend(elf.dynstr(value).split(":"))
        elif tag == DT_RUNPATH:
            runpath.extend(elf.dynstr(value).split(":"))
        elif tag == DT_FLAGS:
            flags |= value
        elif tag == DT_FLAGS_1:
            flags_1 |= value
        elif tag == DT_TEXTREL:
            textrel = True
        elif tag == DT_BIND_NOW:
            bind_now = True
    # a debug-info companion (objcopy --only-keep-debug) keeps the headers but not the dynamic
    # section's bytes: what it links against is not in the file, so it has no linkage to report
    dynamic_in_file = all(s.p_filesz for s in elf.segments if s.p_type == PT_DYNAMIC)
    if e_type in ("ET_REL", "ET_CORE", "ET_NONE") or not dynamic_in_file:
        linkage = None
    elif interpreter is not None or needed:
        linkage = "dynamic"
    elif e_type == "ET_DYN" and PT_DYNAMIC in seg_types:
        # no interpreter and nothing needed: a static-pie executable says so with DF_1_PIE; without
        # it this is a shared object that needs nothing (ld.so itself, a plugin), loaded dynamically
        linkage = "static-pie" if flags_1 & DF_1_PIE else "dynamic"
    else:
        linkage = "static"
    if e_type == "ET_EXEC":
        kind = "executable"
    elif e_type == "ET_DYN":
        if flags_1 & DF_1_PIE or (interpreter is not None and soname is None):
            kind = "pie-executable"
        else:
            kind = "shared-library"
    else:
        kind = {"ET_REL": "relocatable", "ET_CORE": "core"}.get(e_type, "unknown")
    gnu_stack = next((s for s in elf.segments if s.p_type == PT_GNU_STACK), None)
    return {
        "kind": kind,
        "linkage": linkage,
        "interpreter": interpreter,
        "libc": libc_flavour(interpreter, needed, _is_android(elf)),
        "needed": needed,
        "rpath": rpath,
        "runpath": runpath,
        "soname": soname,
        "loader": {
            "bind_now": bind_now or bool(flags & DF_BIND_NOW) or bool(flags_1 & DF_1_NOW),
            "nodeflib": bool(flags_1 & DF_1_NODEFLIB),
            "textrel": textrel or bool(flags & DF_TEXTREL),
            "relro": PT_GNU_RELRO in seg_types,
            "dynamic_in_file": dynamic_in_file,
            "gnu_stack": None if gnu_stack is None else {"executable": bool(gnu_stack.p_flags & 1)},
            "dt_flags": flags,
            "dt_flags_1": flags_1,
        },
    }


def provide(art: Artifact, known: dict[str, Any], context: Context) -> dict[str, Any]:
    return facts(art, known["elf"]["e_type"])
