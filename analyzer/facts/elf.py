"""ELF header facts: architecture, class, endianness, e_flags, notes, sections.

Field names follow the ELF specification (e_type, e_machine, ...); section
types and flags are spelled the way `readelf -S` spells them so the two read
side by side.
"""

from __future__ import annotations

import struct
from functools import lru_cache

from analyzer.load import Artifact, Buffer
from analyzer.load.elf import PT_NOTE, SHT_NOBITS, SHT_NOTE, ELFFile

TYPE_CHECKING = False  # typing is not imported at run time (analyzer/records.py says why)

if TYPE_CHECKING:
    from typing import Any

    from analyzer.facts import Context

ET_NAMES = {0: "ET_NONE", 1: "ET_REL", 2: "ET_EXEC", 3: "ET_DYN", 4: "ET_CORE"}

# e_machine -> EM_* name (elf.h)
EM_NAMES = {
    0: "EM_NONE",
    2: "EM_SPARC",
    3: "EM_386",
    4: "EM_68K",
    8: "EM_MIPS",
    10: "EM_MIPS_RS3_LE",
    15: "EM_PARISC",
    18: "EM_SPARC32PLUS",
    20: "EM_PPC",
    21: "EM_PPC64",
    22: "EM_S390",
    40: "EM_ARM",
    42: "EM_SH",
    43: "EM_SPARCV9",
    50: "EM_IA_64",
    62: "EM_X86_64",
    92: "EM_OPENRISC",
    164: "EM_QDSP6",
    183: "EM_AARCH64",
    243: "EM_RISCV",
    247: "EM_BPF",
    252: "EM_CSKY",
    258: "EM_LOONGARCH",
}

OSABI_NAMES = {
    0: "SYSV",
    1: "HPUX",
    2: "NETBSD",
    3: "GNU",
    6: "SOLARIS",
    7: "AIX",
    8: "IRIX",
    9: "FREEBSD",
    10: "TRU64",
    11: "MODESTO",
    12: "OPENBSD",
    64: "ARM_AEABI",
    97: "ARM",
    255: "STANDALONE",
}


# what normalise_arch names besides EM_* fallbacks, and the other formats' own (PE, Mach-O)
ARCH_NAMES = frozenset({
    "x86_64", "x32", "i386", "aarch64", "aarch64_be", "arm", "armeb", "riscv32", "riscv64", "ppc64le", "ppc64",
    "ppcle", "ppc", "s390x", "s390", "mips64el", "mips64", "mipsel", "mips", "loongarch32", "loongarch64",
    "sparc64", "sparc", "sh4", "sh4eb", "ia64", "hppa", "m68k", "bpf", "csky", "arm64_32", "arm64ec",
})  # fmt: skip
# the names other tools use for them (Go, Debian, Python platform tags, uname)
ARCH_ALIASES = {
    "amd64": "x86_64", "x86-64": "x86_64", "x64": "x86_64", "386": "i386", "i686": "i386", "i586": "i386",
    "x86": "i386", "arm64": "aarch64", "armhf": "arm", "armel": "arm", "armv7l": "arm", "armv7": "arm",
    "ppc64el": "ppc64le", "powerpc64le": "ppc64le", "loong64": "loongarch64", "mips64le": "mips64el",
    "mipsle": "mipsel",
}  # fmt: skip


def arch_name(value: str) -> str | None:
    """binlens' name for an architecture given by any common name (amd64, arm64, ...); None when unknown."""
    lowered = value.strip().lower()
    if lowered in ARCH_NAMES:
        return lowered
    if lowered in ARCH_ALIASES:
        return ARCH_ALIASES[lowered]
    fallback = {name.removeprefix("EM_").lower() for name in EM_NAMES.values()}
    return lowered if lowered in fallback else None


def normalise_arch(e_machine: int, bits: int, little: bool) -> str:
    """The conventional architecture name (as Debian, Go and Python tags spell it)."""
    if e_machine == 62:
        return "x86_64" if bits == 64 else "x32"
    if e_machine in (3, 6):
        return "i386"
    if e_machine == 183:
        return "aarch64" if little else "aarch64_be"
    if e_machine == 40:
        return "arm" if little else "armeb"
    if e_machine == 243:
        return f"riscv{bits}"
    if e_machine == 21:
        return "ppc64le" if little else "ppc64"
    if e_machine == 20:
        return "ppcle" if little else "ppc"
    if e_machine == 22:
        return "s390x" if bits == 64 else "s390"
    if e_machine in (8, 10):
        base = "mips64" if bits == 64 else "mips"
        return base + ("el" if little else "")
    if e_machine == 258:
        return f"loongarch{bits}"
    if e_machine in (2, 18, 43):
        return "sparc64" if bits == 64 else "sparc"
    if e_machine == 42:
        return "sh4" if little else "sh4eb"
    if e_machine == 50:
        return "ia64"
    if e_machine == 15:
        return "hppa"
    if e_machine == 4:
        return "m68k"
    if e_machine == 247:
        return "bpf"
    if e_machine == 252:
        return "csky"
    return EM_NAMES.get(e_machine, f"em{e_machine}").removeprefix("EM_").lower()


def decode_e_flags(e_machine: int, bits: int, e_flags: int) -> dict[str, Any]:
    """The ABI-relevant meaning of e_flags for the machines that put one there."""
    out: dict[str, Any] = {}
    if e_machine == 40:  # ARM
        eabi = (e_flags >> 24) & 0xFF
        out["arm_eabi_version"] = eabi
        if e_flags & 0x400:
            out["float_abi"] = "hard"
        elif e_flags & 0x200:
            out["float_abi"] = "soft"
        elif eabi >= 5:
            out["float_abi"] = "soft-or-unspecified"
        out["byte_order"] = "be8" if e_flags & 0x800000 else None
    elif e_machine == 243:  # RISC-V
        out["float_abi"] = {0: "soft", 2: "single", 4: "double", 6: "quad"}[e_flags & 0x6]
        out["rvc"] = bool(e_flags & 0x1)
        out["rve"] = bool(e_flags & 0x8)
        out["tso"] = bool(e_flags & 0x10)
    elif e_machine in (8, 10):  # MIPS
        abi = e_flags & 0xF000
        if bits == 64:
            name = "n64"
        elif e_flags & 0x20:
            name = "n32"
        else:
            name = {0x1000: "o32", 0x2000: "o64", 0x3000: "eabi32", 0x4000: "eabi64"}.get(abi, "o32")
        out["mips_abi"] = name
        out["mips_arch"] = {
            0x00000000: "mips1",
            0x10000000: "mips2",
            0x20000000: "mips3",
            0x30000000: "mips4",
            0x40000000: "mips5",
            0x50000000: "mips32",
            0x60000000: "mips64",
            0x70000000: "mips32r2",
            0x80000000: "mips64r2",
            0x90000000: "mips32r6",
            0xA0000000: "mips64r6",
        }.get(e_flags & 0xF0000000, f"{e_flags & 0xF0000000:#x}")
        out["nan2008"] = bool(e_flags & 0x400)
        out["pic"] = bool(e_flags & 0x2)
        out["cpic"] = bool(e_flags & 0x4)
    elif e_machine == 21:  # PPC64: ELFv1 or ELFv2 function descriptors
        out["ppc64_abi"] = e_flags & 0x3
    elif e_machine == 258:  # LoongArch
        out["float_abi"] = {1: "soft", 2: "single", 3: "double"}.get(e_flags & 0x7, "unknown")
        out["object_abi_version"] = (e_flags >> 6) & 0x3
    return out


SHT_NAMES = {
    0: "NULL",
    1: "PROGBITS",
    2: "SYMTAB",
    3: "STRTAB",
    4: "RELA",
    5: "HASH",
    6: "DYNAMIC",
    7: "NOTE",
    8: "NOBITS",
    9: "REL",
    10: "SHLIB",
    11: "DYNSYM",
    14: "INIT_ARRAY",
    15: "FINI_ARRAY",
    16: "PREINIT_ARRAY",
    17: "GROUP",
    18: "SYMTAB SECTION INDICES",
    19: "RELR",
    0x6FFFFFF5: "GNU_ATTRIBUTES",
    0x6FFFFFF6: "GNU_HASH",
    0x6FFFFFF7: "GNU_LIBLIST",
    0x6FFFFFFD: "VERDEF",
    0x6FFFFFFE: "VERNEED",
    0x6FFFFFFF: "VERSYM",
    # (LLVM's own types, 0x6fff4c00 and up, .llvm_addrsig among them: GNU readelf names them LOOS+0xfff4c03)
}
# Processor-specific section types, per e_machine.
SHT_PROC_NAMES = {
    40: {
        0x70000001: "ARM_EXIDX",
        0x70000002: "ARM_PREEMPTMAP",
        0x70000003: "ARM_ATTRIBUTES",
        0x70000004: "ARM_DEBUGOVERLAY",
        0x70000005: "ARM_OVERLAYSECTION",
    },
    183: {0x70000003: "AARCH64_ATTRIBUTES", 0x70000004: "AARCH64_AUTH_RELR"},
    62: {0x70000001: "X86_64_UNWIND"},
    243: {0x70000003: "RISCV_ATTRIBUTES"},
    8: {
        0x70000006: "MIPS_REGINFO",
        0x7000000D: "MIPS_OPTIONS",
        0x7000001E: "MIPS_DWARF",
        0x7000002A: "MIPS_ABIFLAGS",
        0x70000029: "MIPS_XHASH",
    },
    21: {},
}

# sh_flags bits in the order readelf prints their letters.
SHF_LETTERS = (
    (0x1, "W"),
    (0x2, "A"),
    (0x4, "X"),
    (0x10, "M"),
    (0x20, "S"),
    (0x40, "I"),
    (0x80, "L"),
    (0x100, "O"),
    (0x200, "G"),
    (0x400, "T"),
    (0x800, "C"),
    (0x200000, "R"),
    (0x80000000, "E"),
)


@lru_cache(maxsize=4096)
def section_type_name(e_machine: int, sh_type: int) -> str:
    name = SHT_NAMES.get(sh_type) or SHT_PROC_NAMES.get(e_machine, {}).get(sh_type)
    if name:
        return name
    if 0x60000000 <= sh_type <= 0x6FFFFFFF:
        return f"LOOS+{sh_type - 0x60000000:#x}"
    if 0x70000000 <= sh_type <= 0x7FFFFFFF:
        return f"LOPROC+{sh_type - 0x70000000:#x}"
    return f"{sh_type:#010x}"


@lru_cache(maxsize=4096)
def section_flags(sh_flags: int, e_machine: int) -> str:
    letters = "".join(ch for bit, ch in SHF_LETTERS if sh_flags & bit)
    if e_machine == 62 and sh_flags & 0x10000000:
        letters += "l"
    return letters


def iter_notes(data: Buffer, e: str, start: int, size: int, limit: int = -1) -> list[tuple[bytes, int, bytes]]:
    """(name, type, desc) of each note in data[start:start+size], bounded by that range (and at most `limit`)."""
    out: list[tuple[bytes, int, bytes]] = []
    at, end = start, min(start + size, len(data))
    while at + 12 <= end and len(out) != limit:
        namesz, descsz, ntype = struct.unpack_from(e + "III", data, at)
        name_at = at + 12
        desc_at = name_at + ((namesz + 3) & ~3)
        nxt = desc_at + ((descsz + 3) & ~3)
        if desc_at + descsz > end:
            break
        out.append((data[name_at : name_at + namesz].rstrip(b"\0"), ntype, data[desc_at : desc_at + descsz]))
        at = nxt
    return out


MAX_NOTES = 1 << 18  # notes read from one file (a program has tens; annobin's can have tens of thousands)


def _note_ranges(elf: ELFFile) -> list[tuple[int, int]]:
    """File ranges of SHT_NOTE sections, or of PT_NOTE segments when there are no sections; a range that
    overlaps another is left out (compilers never write such; a hostile file of 4,000 note sections over the
    same 256 KiB made every fact that reads notes parse 33 million of them)."""
    got = elf.derived.get("note_ranges")
    if got is None:
        ranges = [(s.sh_offset, s.sh_size) for s in elf.sections if s.sh_type == SHT_NOTE]
        if not ranges:
            ranges = [(p.p_offset, p.p_filesz) for p in elf.segments if p.p_type == PT_NOTE]
        kept, reach = set(), -1
        for i, (start, size) in sorted(enumerate(ranges), key=lambda r: (r[1][0], -r[1][1], r[0])):
            if start >= reach:
                kept.add(i)
                reach = start + size
        got = elf.derived["note_ranges"] = [r for i, r in enumerate(ranges) if i in kept]
    return got  # type: ignore[return-value]


def notes_in(elf: ELFFile, start: int, size: int) -> list[tuple[bytes, int, bytes]]:
    """iter_notes of one range of the file, each range read once per file, at most MAX_NOTES notes in all."""
    memo: dict[tuple[int, int], list[tuple[bytes, int, bytes]]] = elf.derived.setdefault("notes", {})  # type: ignore[assignment]
    got = memo.get((start, size))
    if got is None:
        left = MAX_NOTES - sum(len(n) for n in memo.values())
        got = memo[(start, size)] = iter_notes(elf.data, elf.byte_order, start, size, max(left, 0))
    return got


def _notes(elf: ELFFile) -> dict[str, Any]:
    """Build-id, .note.ABI-tag and the x86 ISA level from the GNU notes."""
    out: dict[str, Any] = {"build_id": None, "abi_tag": None, "x86_isa_needed": None, "x86_isa_used": None}
    e = elf.byte_order
    align = 8 if elf.bits == 64 else 4
    for start, size in _note_ranges(elf):
        for name, ntype, desc in notes_in(elf, start, size):
            if name != b"GNU":
                continue
            if ntype == 3 and out["build_id"] is None:  # NT_GNU_BUILD_ID
                out["build_id"] = desc.hex()
            elif ntype == 1 and len(desc) >= 16 and out["abi_tag"] is None:  # NT_GNU_ABI_TAG
                os_, major, minor, sub = struct.unpack_from(e + "IIII", desc)
                os_name = {0: "Linux", 1: "Hurd", 2: "Solaris", 3: "FreeBSD", 4: "NetBSD", 5: "Syllable"}.get(
                    os_, str(os_)
                )
                out["abi_tag"] = {"os": os_name, "kernel": f"{major}.{minor}.{sub}"}
            elif ntype == 5:  # NT_GNU_PROPERTY_TYPE_0: an array of (type, size, data) padded to `align`
                at = 0
                while at + 8 <= len(desc):
                    pr_type, pr_size = struct.unpack_from(e + "II", desc, at)
                    value = struct.unpack_from(e + "I", desc, at + 8)[0] if pr_size >= 4 and at + 12 <= len(desc) else 0
                    if pr_type == 0xC0008002:
                        out["x86_isa_needed"] = _isa_levels(value)
                    elif pr_type == 0xC0010002:
                        out["x86_isa_used"] = _isa_levels(value)
                    at += 8 + ((pr_size + align - 1) // align) * align
    return out


def _isa_levels(bits: int) -> list[str]:
    names = [(1, "x86-64-baseline"), (2, "x86-64-v2"), (4, "x86-64-v3"), (8, "x86-64-v4")]
    return [n for b, n in names if bits & b]


def sections(elf: ELFFile) -> list[dict[str, Any]]:
    """Every section header, in table order (index 0, the null section, left out)."""
    m = elf.e_machine
    return [
        {
            "name": s.name,
            "type": section_type_name(m, s.sh_type),
            "flags": section_flags(s.sh_flags, m),
            "address": s.sh_addr,
            "offset": s.sh_offset,
            "size": 0 if s.sh_type == SHT_NOBITS else s.sh_size,
            "sh_size": s.sh_size,
            "align": s.sh_addralign,
        }
        for s in elf.sections[1:]
    ]


def facts(art: Artifact) -> dict[str, Any]:
    """arch, bits, endian, the `elf` block and `sections` for one ELF artifact."""
    elf: ELFFile = art.binary
    bits = elf.bits
    little = elf.byte_order == "<"
    e_machine = elf.e_machine
    block: dict[str, Any] = {
        "e_type": ET_NAMES.get(elf.e_type, f"{elf.e_type:#x}"),
        "e_machine": EM_NAMES.get(e_machine, str(e_machine)),
        "e_machine_value": e_machine,
        "osabi": OSABI_NAMES.get(elf.ei_osabi, str(elf.ei_osabi)),
        "abiversion": elf.ei_abiversion,
        "e_flags": elf.e_flags,
        "flags": decode_e_flags(e_machine, bits, elf.e_flags),
        "entry": elf.e_entry,
    }
    block.update(_notes(elf))
    return {
        "arch": normalise_arch(e_machine, bits, little),
        "bits": bits,
        "endian": "little" if little else "big",
        "elf": block,
        "sections": sections(elf),
    }


def provide(art: Artifact, known: dict[str, Any], context: Context) -> dict[str, Any]:
    return facts(art)
