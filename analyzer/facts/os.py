"""Which operating system a binary is for.

ELF says it in several places, none of them always present: EI_OSABI (FreeBSD,
NetBSD, OpenBSD and Solaris toolchains may set it; most write SYSV), the OS
notes (`.note.tag` owned by FreeBSD, NetBSD, OpenBSD or DragonFly;
`.note.android.ident`; GNU's `.note.ABI-tag`, whose first word names Linux,
the Hurd, Solaris or kFreeBSD), the program interpreter's path, and for Go
binaries GOOS in the build info. The first that speaks decides, in that order
of trust; the evidence is kept. A static binary with none of them (a static
musl program, say) is "unknown": binlens does not claim it is for another OS.
PE is Windows; Mach-O names its platform in LC_BUILD_VERSION (macos, ios, ...).
"""

from __future__ import annotations

import re
import struct
from typing import TYPE_CHECKING, Any

from analyzer.facts.linkage import dynamic_info
from analyzer.load.elf import ELFFile

if TYPE_CHECKING:
    from analyzer.facts import Context
    from analyzer.load import Artifact

LINUX_LIKE = ("linux", "android")  # what Linux distribution targets can run, Android only in its own runtime
UNKNOWN = "unknown"

EM_PARISC = 15
OSABI_OS = {2: "netbsd", 3: "linux", 6: "solaris", 9: "freebsd", 12: "openbsd"}
NOTE_OWNERS = {b"FreeBSD": "freebsd", b"NetBSD": "netbsd", b"OpenBSD": "openbsd", b"DragonFly": "dragonfly",
               b"Android": "android"}  # fmt: skip
GNU_ABI_TAG_OS = {0: "linux", 1: "hurd", 2: "solaris", 3: "freebsd"}  # NT_GNU_ABI_TAG's first word
NT_GNU_ABI_TAG = 1
# the program interpreter each system's kernel runs
INTERPRETERS = (
    (re.compile(r"^/system/bin/linker(64)?$"), "android"),
    (re.compile(r"^/libexec/ld-elf(32)?\.so\.1$"), "freebsd"),
    (re.compile(r"^(/usr)?/libexec/ld\.elf_so$"), "netbsd"),
    (re.compile(r"^/usr/libexec/ld\.so$"), "openbsd"),
    (re.compile(r"^/usr/libexec/ld-elf\.so\.2$"), "dragonfly"),
    # Solaris and illumos; glibc's own ld.so.1 (32-bit PowerPC, MIPS o32, s390) is /lib/ld.so.1
    (re.compile(r"^(/usr/lib/ld\.so\.1|(/usr)?/lib/(amd64|64|sparcv9)/ld\.so\.1)$"), "solaris"),
    (re.compile(r"^/.*/(ld-linux[-\w.]*\.so\.\d+|ld64\.so\.\d|ld-musl-[\w.-]+\.so\.1)$|^/lib/ld\.so\.1$"), "linux"),
)  # fmt: skip
GOOS_OS = {"darwin": "macos"}  # GOOS -> binlens' name where they differ


def _notes_os(elf: ELFFile) -> tuple[str, str] | None:
    """(os, evidence) from the first OS note."""
    from analyzer.facts.elf import _note_ranges, notes_in

    for start, size in _note_ranges(elf):
        for name, ntype, desc in notes_in(elf, start, size):
            if name in NOTE_OWNERS:
                return NOTE_OWNERS[name], f"{name.decode()} note"
            if name == b"GNU" and ntype == NT_GNU_ABI_TAG and len(desc) >= 16:
                os_word = struct.unpack_from(elf.byte_order + "I", desc)[0]
                if os_word in GNU_ABI_TAG_OS:
                    return GNU_ABI_TAG_OS[os_word], f".note.ABI-tag OS {os_word}"
    return None


def elf_os(elf: ELFFile) -> tuple[str, list[str]]:
    """(os, evidence) from the ELF file alone; the os is UNKNOWN when nothing in the file says."""
    found: list[tuple[str, str]] = []
    note = _notes_os(elf)
    if note:
        found.append(note)
    if elf.ei_osabi in OSABI_OS and elf.ei_osabi != 3:  # ELFOSABI_GNU marks GNU extensions, not only Linux
        found.append((OSABI_OS[elf.ei_osabi], f"EI_OSABI {elf.ei_osabi}"))
    elif elf.ei_osabi == 3 and elf.e_machine == EM_PARISC:  # BFD's PA-RISC Linux target writes it into every file
        found.append(("linux", "EI_OSABI 3 on PA-RISC"))
    interp = elf.interpreter
    if interp:
        hit = next((os for pattern, os in INTERPRETERS if pattern.match(interp)), None)
        if hit:
            found.append((hit, f"interpreter {interp}"))
    if not found and "libc.so.6" in dynamic_info(elf).needed:
        found.append(("linux", "needs libc.so.6"))
    if not found:
        return UNKNOWN, []
    return found[0][0], [why for _, why in found]


NONE = "none"
# The instructions that enter the kernel, as bytes in code, per system-call ABI (analyzer/data/
# syscall_conventions.toml), any immediate the instruction can carry: a static program for Linux, or for any
# system, has at least one (it cannot even exit without one). ABIs whose trap is too short to tell from other
# bytes (s390's two-byte svc) are not listed: their programs stay `unknown`.
_X86 = rb"\x0f\x05|\x0f\x34|\xcd\x80"
_ARM = rb"\x00\x00\x00\xef|[\x00-\xff]{2}[\x90-\x9f]\xef|\x00\xdf"  # EABI svc #0, OABI swi 0x9nnnnn, Thumb svc #0
_PPC_LE, _PPC_BE = rb"[\x01\x02]\x00\x00\x44", rb"\x44\x00\x00[\x01\x02]"  # sc, scv 0
TRAPS_LITTLE = {
    "x86_64": _X86, "x32": _X86, "i386": _X86 + rb"|\x65\xff\x15\x10\x00\x00\x00",  # (call *%gs:0x10)
    "arm": _ARM, "armoabi": _ARM,
    "aarch64": rb"[\x01\x21\x41\x61\x81\xa1\xc1\xe1][\x00-\xff][\x00-\x1f]\xd4",  # svc #imm16
    "riscv64": rb"\x73\x00\x00\x00",  # ecall
    "ppc64": _PPC_LE, "ppc": _PPC_LE,
    "mipso32": rb"\x0c\x00\x00\x00", "mipsn32": rb"\x0c\x00\x00\x00", "mipsn64": rb"\x0c\x00\x00\x00",
    "loongarch64": rb"\x00\x00\x2b\x00",  # syscall 0
}  # fmt: skip
TRAPS_BIG = {"ppc64": _PPC_BE, "ppc": _PPC_BE, "aarch64": TRAPS_LITTLE["aarch64"],  # (A64 code is little-endian)
             "mipso32": rb"\x00\x00\x00\x0c", "mipsn32": rb"\x00\x00\x00\x0c", "mipsn64": rb"\x00\x00\x00\x0c"}
PF_X = 1
SCAN_STEP = 64 << 20


def enters_no_kernel(art: Artifact) -> bool:
    """A static program whose code holds no instruction that enters a kernel (for its architecture's ABI, as
    TRAPS lists them): it runs under no operating system — firmware, a kernel, a boot stage. False when its
    architecture is not listed (nothing is concluded)."""
    from analyzer.facts.syscalls import detect_abi

    elf: ELFFile = art.binary
    abi = detect_abi(elf)
    pattern = (TRAPS_LITTLE if elf.byte_order == "<" else TRAPS_BIG).get(abi or "")
    if pattern is None:
        return False
    trap = re.compile(pattern, re.DOTALL)
    data = art.data
    for seg in elf.segments:
        if seg.p_type != 1 or not seg.p_flags & PF_X:  # PT_LOAD, executable
            continue
        end = min(seg.p_offset + seg.p_filesz, len(data))
        at = seg.p_offset
        while at < end:  # in pieces, so a time budget's signal is handled between them
            if trap.search(data, at, min(end, at + SCAN_STEP + 7)):
                return False
            at += SCAN_STEP
    return True


def provide(art: Artifact, known: dict[str, Any], context: Context) -> dict[str, Any]:
    """The `os` fact: name and the evidence for it."""
    goos = ((known.get("go") or {}).get("settings") or {}).get("GOOS")
    if art.format == "PE":
        name, evidence = "windows", ["PE format"]
    elif art.format == "MachO":
        platform = (known.get("macho") or {}).get("platform")
        name, evidence = (platform, ["LC_BUILD_VERSION"]) if platform else ("macos", ["Mach-O format"])
    else:
        name, evidence = elf_os(art.binary)
    if goos:
        go_name = GOOS_OS.get(goos, goos)
        evidence = [*evidence, f"Go GOOS={goos}"]
        # GOOS is the most precise word (illumos next to solaris, dragonfly with no note); a file that says
        # otherwise in its headers keeps its own OS, and GO rules report the mismatch
        if name in (UNKNOWN, "solaris") or go_name == name or (name == "linux" and go_name == "android"):
            name = go_name
    if name == UNKNOWN and art.format == "ELF" and known.get("linkage") in ("static", "static-pie") \
            and known.get("kind") in ("executable", "pie-executable") and enters_no_kernel(art):
        name, evidence = NONE, ["no system-call instruction in its code: no operating system runs it as a program"]
    return {"os": {"name": name, "evidence": evidence}}
