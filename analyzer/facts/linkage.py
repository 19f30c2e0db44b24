"""ELF linkage facts, as the dynamic loader sees the program headers and DT_* entries.

The kind of object (PIE or not) is computed from e_type, PT_INTERP, PT_DYNAMIC
and DF_1_PIE, never taken from a library's `is_pie` (LIEF's is wrong for
static-pie).
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from analyzer.load import Artifact
from analyzer.load.elf import (
    DF_1_NODEFLIB,
    DF_1_NOW,
    DF_1_PIE,
    DF_BIND_NOW,
    DF_TEXTREL,
    DT_BIND_NOW,
    DT_FLAGS,
    DT_FLAGS_1,
    DT_NEEDED,
    DT_RPATH,
    DT_RUNPATH,
    DT_SONAME,
    DT_TEXTREL,
    PT_DYNAMIC,
    PT_GNU_RELRO,
    PT_GNU_STACK,
    PT_LOAD,
    SHF_ALLOC,
    SHT_NOBITS,
    SHT_NOTE,
    ELFFile,
    find,
    union_spans,
)

if TYPE_CHECKING:
    from analyzer.facts import Context


_GLIBC_INTERP = re.compile(r"^(ld-linux[-\w.]*\.so\.\d+|ld64\.so\.\d|ld\.so\.1)$")
_MUSL_INTERP = re.compile(r"^ld-musl-[\w.-]+\.so\.1$")


def libc_flavour(interpreter: str | None, needed: list[str], os_name: str) -> str | None:
    """glibc, musl, bionic, another system's own libc ("openbsd-libc"), or None (nothing linked), from the
    OS (analyzer.facts.os), the interpreter's name and then the needed list."""
    if os_name not in ("linux", "android", "unknown"):
        return f"{os_name}-libc" if interpreter or needed else None
    android = os_name == "android"
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


@dataclass(frozen=True)
class DynamicInfo:
    """What the dynamic section says to the loader: read once, used by the linkage facts and the loader model."""

    needed: tuple[str, ...] = ()
    rpath: tuple[str, ...] = ()
    runpath: tuple[str, ...] = ()
    soname: str | None = None
    flags: int = 0  # DT_FLAGS, every entry or-ed
    flags_1: int = 0  # DT_FLAGS_1, every entry or-ed
    textrel: bool = False  # a DT_TEXTREL entry
    bind_now: bool = False  # a DT_BIND_NOW entry

    @property
    def now(self) -> bool:
        """Every symbol bound at start-up: DT_BIND_NOW, DF_BIND_NOW or DF_1_NOW."""
        return self.bind_now or bool(self.flags & DF_BIND_NOW) or bool(self.flags_1 & DF_1_NOW)


def dynamic_info(elf: ELFFile) -> DynamicInfo:
    """The DT_* entries of `elf` the loader acts on (the last DT_SONAME: ld.so's l_info keeps the last); read
    once per file (a library is in the link map of every program of a run)."""
    known = elf.derived.get("dynamic_info")
    if known is None:
        known = elf.derived["dynamic_info"] = _dynamic_info(elf)
    assert isinstance(known, DynamicInfo)
    return known


def _dynamic_info(elf: ELFFile) -> DynamicInfo:
    needed: list[str] = []
    rpath: list[str] = []
    runpath: list[str] = []
    sonames: list[str] = []
    flags = flags_1 = 0
    tags = set()
    for tag, value in elf.dynamic:
        tags.add(tag)
        if tag == DT_NEEDED:
            needed.append(elf.dynstr(value))
        elif tag == DT_SONAME:
            sonames.append(elf.dynstr(value))
        elif tag == DT_RPATH:
            rpath.extend(elf.dynstr(value).split(":"))
        elif tag == DT_RUNPATH:
            runpath.extend(elf.dynstr(value).split(":"))
        elif tag == DT_FLAGS:
            flags |= value
        elif tag == DT_FLAGS_1:
            flags_1 |= value
    return DynamicInfo(tuple(needed), tuple(rpath), tuple(runpath), sonames[-1] if sonames else None, flags, flags_1,
                       DT_TEXTREL in tags, DT_BIND_NOW in tags)  # fmt: skip


def linkage_of(e_type: str, elf: ELFFile, dyn: DynamicInfo, dynamic_in_file: bool) -> str | None:
    """static, static-pie or dynamic; None for objects that are not run (relocatable, core, debug companions)."""
    if e_type in ("ET_REL", "ET_CORE", "ET_NONE") or not dynamic_in_file:
        return None
    if elf.interpreter is not None or dyn.needed:
        return "dynamic"
    if e_type == "ET_DYN" and any(s.p_type == PT_DYNAMIC for s in elf.segments):
        # no interpreter and nothing needed: a static-pie executable says so with DF_1_PIE; without
        # it this is a shared object that needs nothing (ld.so itself, a plugin), loaded dynamically
        return "static-pie" if dyn.flags_1 & DF_1_PIE else "dynamic"
    return "static"


def kind_of(e_type: str, interpreter: str | None, dyn: DynamicInfo) -> str:
    """executable, pie-executable, shared-library, relocatable, core or unknown."""
    if e_type == "ET_EXEC":
        return "executable"
    if e_type == "ET_DYN":
        if dyn.flags_1 & DF_1_PIE or (interpreter is not None and dyn.soname is None):
            return "pie-executable"
        return "shared-library"
    return {"ET_REL": "relocatable", "ET_CORE": "core"}.get(e_type, "unknown")


PAGE_SIZE_CAP = 65536  # the largest base page size of a Linux distribution's kernels (aarch64, ppc64, ...)


def page_size_max(elf: ELFFile, kind: str) -> int | None:
    """The largest page size (a power of two, at most 64 KiB) the file's loadable segments are laid out for, or
    None without any. Whoever maps a PT_LOAD maps whole pages, so its address and offset must be congruent
    modulo the page size (the kernel's mmap, for a program; glibc's loader, for a shared library: "ELF load
    command address/offset not page-aligned"); glibc before 2.35 (RHEL 8's 2.28 under 64 KiB kernels) also wants a
    library's p_align to be a multiple of it ("ELF load command alignment not page-aligned"), which is counted
    too. A file linked for 4 KiB pages (`-z max-page-size=4096`, an old patchelf's added segment) does not load
    under a kernel of 16 or 64 KiB pages."""
    largest = PAGE_SIZE_CAP
    found = False
    for seg in elf.segments:
        if seg.p_type != PT_LOAD:
            continue
        found = True
        for value in (seg.p_vaddr - seg.p_offset, seg.p_align if kind == "shared-library" else 0):
            if value:
                largest = min(largest, value & -value)  # (the lowest set bit: the largest power of two dividing)
    return largest if found else None


def p_align_kept(elf: ELFFile, kind: str) -> bool | None:
    """For a shared library, whether every PT_LOAD's address and offset are congruent modulo its own p_align, as
    glibc's loader before 2.35 wants ("ELF load command address/offset not properly aligned"; a p_align of 0
    wants them equal); None for another kind of file, or one without a PT_LOAD. A layout that keeps only the
    page size while p_align says more (a segment patchelf 0.18 added: NixOS/patchelf#510) loads on 2.35 and
    later, which check the page size alone."""
    loads = [s for s in elf.segments if s.p_type == PT_LOAD]
    if kind != "shared-library" or not loads:
        return None
    mask = (1 << 64) - 1
    return all((s.p_vaddr - s.p_offset) & ((s.p_align - 1) & mask) == 0 for s in loads)


def loader_flags(elf: ELFFile, dyn: DynamicInfo, dynamic_in_file: bool, kind: str) -> dict[str, Any]:
    """What the loader does differently for this object: binding, default paths, relocations, stack, pages."""
    gnu_stack = next((s for s in elf.segments if s.p_type == PT_GNU_STACK), None)
    return {
        "bind_now": dyn.now,
        "nodeflib": bool(dyn.flags_1 & DF_1_NODEFLIB),
        "textrel": dyn.textrel or bool(dyn.flags & DF_TEXTREL),
        "relro": any(s.p_type == PT_GNU_RELRO for s in elf.segments),
        "dynamic_in_file": dynamic_in_file,
        "gnu_stack": None if gnu_stack is None else {"executable": bool(gnu_stack.p_flags & 1)},
        "dt_flags": dyn.flags,
        "dt_flags_1": dyn.flags_1,
        "page_size_max": page_size_max(elf, kind),
        "p_align_kept": p_align_kept(elf, kind),
    }


STATIC_GLIBC_MARK = b"glibc.malloc."  # glibc's tunables (2.26+), linked into every static glibc program


def static_glibc(art: Artifact, abi_tag: dict[str, Any] | None) -> bool:
    """Whether a static program carries glibc: its crt files' GNU `.note.ABI-tag` naming Linux (musl's crt
    has none), or glibc's tunables strings. Go's own linker writes no ABI tag, and a Go program holds no glibc
    unless cgo linked it externally (then the tag is there), so Go files are not searched whole."""
    if abi_tag is not None and abi_tag.get("os") == "Linux":
        return True
    elf: ELFFile = art.binary
    if any(s.name in (".go.buildinfo", ".note.go.buildid") for s in elf.sections):
        return False
    # in what the program loads (its strings are there): not in bytes after it (a file padded to a terabyte)
    spans = union_spans([(p.p_offset, p.p_offset + p.p_filesz) for p in elf.segments if p.p_type == PT_LOAD])
    return any(find(art.data, STATIC_GLIBC_MARK, start, end) >= 0 for start, end in spans)


# glibc's loader where the architecture's psABI puts it (PT_INTERP as glibc's toolchains write it, and the path
# every glibc distribution installs), by (e_machine, ELF class, little-endian)
PSABI_LOADERS = {
    (62, 64, True): "/lib64/ld-linux-x86-64.so.2", (62, 32, True): "/libx32/ld-linux-x32.so.2",
    (3, 32, True): "/lib/ld-linux.so.2", (183, 64, True): "/lib/ld-linux-aarch64.so.1",
    (183, 64, False): "/lib/ld-linux-aarch64_be.so.1", (21, 64, True): "/lib64/ld64.so.2",
    (21, 64, False): "/lib64/ld64.so.1", (20, 32, False): "/lib/ld.so.1", (22, 64, False): "/lib/ld64.so.1",
    (22, 32, False): "/lib/ld.so.1", (243, 64, True): "/lib/ld-linux-riscv64-lp64d.so.1",
    (258, 64, True): "/lib64/ld-linux-loongarch-lp64d.so.1", (43, 64, False): "/lib64/ld-linux.so.2",
}  # fmt: skip
EM_ARM, EM_MIPS, EF_ARM_ABI_FLOAT_HARD, EF_MIPS_ABI2, EF_MIPS_NAN2008 = 40, 8, 0x400, 0x20, 0x400
EM_RISCV, EF_RISCV_FLOAT_ABI, EF_RISCV_FLOAT_ABI_DOUBLE = 243, 0x6, 0x4
RISCV64_ABIS = {0x0: "lp64", 0x2: "lp64f", 0x4: "lp64d", 0x6: "lp64q"}  # by e_flags & EF_RISCV_FLOAT_ABI
# AArch64, RISC-V, LoongArch: without PT_GNU_STACK glibc maps the stack non-executable (DEFAULT_STACK_PERMS)
STACK_NOEXEC_BY_DEFAULT = (183, 243, 258)


def psabi_loader(e_machine: int, bits: int, little: bool, e_flags: int) -> str | None:
    """glibc's loader for an object of this architecture and ABI; None for one binlens does not know."""
    if e_machine == EM_ARM:
        return "/lib/ld-linux-armhf.so.3" if e_flags & EF_ARM_ABI_FLOAT_HARD else "/lib/ld-linux.so.3"
    if e_machine == EM_MIPS:
        directory = "/lib64" if bits == 64 else "/lib32" if e_flags & EF_MIPS_ABI2 else "/lib"
        return f"{directory}/{'ld-linux-mipsn8.so.1' if e_flags & EF_MIPS_NAN2008 else 'ld.so.1'}"
    if e_machine == EM_RISCV and bits == 64 and e_flags & EF_RISCV_FLOAT_ABI == 0:
        return "/lib/ld-linux-riscv64-lp64.so.1"  # (glibc's soft-float ABI; it has no lp64f nor lp64q)
    if e_machine == EM_RISCV and e_flags & EF_RISCV_FLOAT_ABI != EF_RISCV_FLOAT_ABI_DOUBLE:
        return None
    return PSABI_LOADERS.get((e_machine, bits, little))


# Debian's multiarch triplet of an object (its default library directories, and a second place of its loader,
# /lib/<triplet>/), by e_machine; 32-bit ARM's and MIPS's by their ABI (debian_triplet)
DEBIAN_TRIPLETS = {62: "x86_64-linux-gnu", 3: "i386-linux-gnu", 183: "aarch64-linux-gnu", 40: "arm-linux-gnueabihf",
                   243: "riscv64-linux-gnu", 21: "powerpc64le-linux-gnu", 22: "s390x-linux-gnu",
                   8: "mips64el-linux-gnuabi64", 258: "loongarch64-linux-gnu"}  # fmt: skip


def debian_triplet(e_machine: int, bits: int, little: bool, e_flags: int) -> str | None:
    """Debian's multiarch triplet for an object of this architecture and ABI; None for one binlens does not know."""
    if e_machine == 62 and bits == 32:
        return "x86_64-linux-gnux32"
    if e_machine == 21 and not little:
        return "powerpc64-linux-gnu"
    if e_machine == EM_ARM and not e_flags & EF_ARM_ABI_FLOAT_HARD:
        return "arm-linux-gnueabi"
    if e_machine == EM_MIPS and bits == 32:
        return "mips64el-linux-gnuabin32" if e_flags & EF_MIPS_ABI2 else "mipsel-linux-gnu"
    return DEBIAN_TRIPLETS.get(e_machine)


def _abi_of(facts: dict[str, Any]) -> tuple[int, int, bool, int]:
    elf = facts.get("elf") or {}
    return elf.get("e_machine_value", 0), facts.get("bits") or 0, facts.get("endian") == "little", elf.get("e_flags", 0)


def psabi_loader_of(facts: dict[str, Any]) -> str | None:
    """psabi_loader of an artifact's facts."""
    return psabi_loader(*_abi_of(facts)) if facts.get("elf") else None


def debian_triplet_of(facts: dict[str, Any]) -> str | None:
    """debian_triplet of an artifact's facts."""
    return debian_triplet(*_abi_of(facts)) if facts.get("elf") else None


def exec_stack_wanted_of(facts: dict[str, Any]) -> bool:
    """exec_stack_wanted of an artifact's facts (`loader.gnu_stack`)."""
    stack = (facts.get("loader") or {}).get("gnu_stack")
    return exec_stack_wanted(_abi_of(facts)[0], None if stack is None else (1 if stack.get("executable") else 0))


def exec_stack_wanted(e_machine: int, stack_flags: int | None) -> bool:
    """PT_GNU_STACK (its p_flags, None when missing) asks for an executable stack, or is missing where the
    architecture's default stack is executable."""
    if stack_flags is None:
        return e_machine not in STACK_NOEXEC_BY_DEFAULT
    return bool(stack_flags & 1)


# a Node.js addon exports napi_register_module_v1 or node_register_module_vN, or registers itself with
# napi_module_register or node_module_register from a constructor
NODE_ADDON_MARKS = (b"napi_register_module_v", b"node_register_module_v", b"napi_module_register",
                    b"node_module_register")  # fmt: skip


def plugin_of(elf: ELFFile) -> str | None:
    """`python-extension` (it exports PyInit_NAME) or `node-addon`: a module its host program loads with dlopen."""
    if elf.dynstr_has(b"PyInit_") and any(s.st_shndx and s.name.startswith("PyInit_") for s in elf.dynamic_symbols()):
        return "python-extension"
    if any(elf.dynstr_has(m) for m in NODE_ADDON_MARKS):
        return "node-addon"
    return None


def contents_elsewhere(elf: ELFFile) -> bool:
    """A debug-info companion (`objcopy --only-keep-debug`, what -dbgsym packages install under
    /usr/lib/debug/.build-id): the headers of its program or library are kept, but no section the program loads
    has bytes in the file but its notes (the rest are SHT_NOBITS), nor has its PT_DYNAMIC. elfutils'
    `eu-elfclassify --loadable` draws the same line. Not run or loaded itself, whatever its headers say."""
    alloc = [s for s in elf.sections if s.sh_flags & SHF_ALLOC]
    if alloc and all(s.sh_type in (SHT_NOBITS, SHT_NOTE) for s in alloc):
        return True
    return not all(s.p_filesz for s in elf.segments if s.p_type == PT_DYNAMIC)


def facts(art: Artifact, e_type: str, abi_tag: dict[str, Any] | None = None) -> dict[str, Any]:
    """kind, linkage, interpreter, libc, needed, rpath, runpath, soname and loader flags."""
    from analyzer.facts.os import elf_os

    elf: ELFFile = art.binary
    dyn = dynamic_info(elf)
    # a debug-info companion keeps the headers but not what they describe: what it links against is not in
    # the file, so it has no linkage to report (nor, static or not, does it run)
    dynamic_in_file = not contents_elsewhere(elf)
    linkage = linkage_of(e_type, elf, dyn, dynamic_in_file)
    libc = libc_flavour(elf.interpreter, list(dyn.needed), elf_os(elf)[0])
    if libc is None and linkage in ("static", "static-pie") and static_glibc(art, abi_tag):
        libc = "glibc"
    kind = kind_of(e_type, elf.interpreter, dyn)
    return {
        "kind": kind,
        "linkage": linkage,
        "interpreter": elf.interpreter,
        "libc": libc,
        "needed": list(dyn.needed),
        "rpath": list(dyn.rpath),
        "runpath": list(dyn.runpath),
        "soname": dyn.soname,
        "loader": loader_flags(elf, dyn, dynamic_in_file, kind),
        "plugin": plugin_of(elf) if e_type == "ET_DYN" and dynamic_in_file else None,
    }


def provide(art: Artifact, known: dict[str, Any], context: Context) -> dict[str, Any]:
    return facts(art, known["elf"]["e_type"], known["elf"].get("abi_tag"))
