"""Load: sniff a file's magic, check its headers are sane, open it once.

ELF is read by binlens' own bounded reader (analyzer.elffile) straight from a
read-only memory map; PE and Mach-O are parsed by LIEF.

Every count and offset the headers claim is checked against the file's size
before LIEF sees the bytes, so a truncated or lying file becomes one clear
`AnalyzerError` instead of a partial parse, a hang or a large allocation.
"""

from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass
from typing import Any

from analyzer.elffile import Buffer, ELFFile
from analyzer.errors import AnalyzerError


def _lief() -> Any:
    """LIEF, imported on first use (PE and Mach-O only): it is slow to import."""
    import lief

    lief.logging.disable()
    return lief


ELF_MAGIC = b"\x7fELF"
MZ_MAGIC = b"MZ"
MACHO_MAGICS = {
    b"\xfe\xed\xfa\xce": (">", 32),
    b"\xce\xfa\xed\xfe": ("<", 32),
    b"\xfe\xed\xfa\xcf": (">", 64),
    b"\xcf\xfa\xed\xfe": ("<", 64),
}
FAT_MAGICS = {b"\xca\xfe\xba\xbe": 32, b"\xca\xfe\xba\xbf": 64}

# A fat header also starts Java class files (0xCAFEBABE): real fat files have
# a handful of slices, class files a version number in that field.
MAX_FAT_SLICES = 64
# Mach-O CPU types, for naming the slices of a fat file (mach/machine.h).
CPU_TYPE_NAMES = {
    7: "i386",
    0x01000007: "x86_64",
    12: "arm",
    0x0100000C: "arm64",
    0x0200000C: "arm64_32",
    18: "ppc",
    0x01000012: "ppc64",
}


@dataclass(frozen=True)
class Artifact:
    """One binary, opened once: its bytes, its format and LIEF's parse of it."""

    path: str  # the name shown to users; `file[arm64]` for a fat slice
    data: Buffer
    format: str  # "ELF" | "PE" | "MachO"
    binary: Any  # ELFFile | lief.PE.Binary | lief.MachO.Binary


def sniff(head: bytes) -> str | None:
    """The container format named by a file's first bytes, or None."""
    if head[:4] == ELF_MAGIC:
        return "ELF"
    if head[:4] in MACHO_MAGICS:
        return "MachO"
    if head[:4] in FAT_MAGICS:
        if len(head) >= 8 and 0 < struct.unpack(">I", head[4:8])[0] <= MAX_FAT_SLICES:
            return "MachOFat"
        return None
    if head[:2] == MZ_MAGIC:
        return "PE"
    return None


def sniff_file(path: str) -> str | None:
    """Sniff a file on disk; None for unreadable or unknown files."""
    try:  # os-level calls: this runs for every file of a directory scan
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        return sniff(os.read(fd, 8))
    except OSError:
        return None
    finally:
        os.close(fd)


def read_file(path: str) -> Buffer:
    """The whole file, memory-mapped (read-only), or an AnalyzerError that names the problem."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size == 0:
                return b""
            return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except FileNotFoundError:
        raise AnalyzerError("no such file", path) from None
    except IsADirectoryError:
        raise AnalyzerError("is a directory", path) from None
    except PermissionError:
        raise AnalyzerError("permission denied", path) from None
    except (OSError, ValueError) as e:
        raise AnalyzerError(f"cannot read: {getattr(e, 'strerror', None) or e}", path) from None


def load(path: str, parse: bool = True) -> list[Artifact]:
    """Open the binary at `path`: one Artifact, or one per slice of a fat Mach-O.

    With `parse=False`, PE and Mach-O files are checked but not handed to LIEF
    (their `binary` is None): for readers that need only the bytes, such as the
    Go build info reader. Raises AnalyzerError for missing, unreadable, unknown,
    truncated or corrupt files.
    """
    data = read_file(path)
    if not data:
        raise AnalyzerError("empty file", path)
    kind = sniff(data[:8])
    if kind is None:
        raise AnalyzerError("not an ELF, PE or Mach-O file", path)
    if kind == "ELF":
        return [_open_elf(path, data)]
    if kind == "PE":
        return [_open_pe(path, data, parse)]
    if kind == "MachO":
        return [_open_macho(path, data, parse)]
    return [_open_macho(f"{path}[{name}]", piece, parse) for name, piece in fat_slices(path, data)]


def _need(cond: bool, path: str, problem: str) -> None:
    if not cond:
        raise AnalyzerError(problem, path)


# ---------------------------------------------------------------- ELF


def check_elf(path: str, data: Buffer) -> None:
    """Reject ELF files whose header tables or contents lie outside the file."""
    size = len(data)
    _need(size >= 16, path, f"truncated ELF identification ({size} bytes)")
    ei_class, ei_data = data[4], data[5]
    _need(ei_class in (1, 2), path, f"bad ELF class {ei_class}")
    _need(ei_data in (1, 2), path, f"bad ELF data encoding {ei_data}")
    e = "<" if ei_data == 1 else ">"
    if ei_class == 1:
        ehdr, phent, shent = e + "HHIIIIIHHHHHH", 32, 40
    else:
        ehdr, phent, shent = e + "HHIQQQIHHHHHH", 56, 64
    ehsize = 16 + struct.calcsize(ehdr)
    _need(size >= ehsize, path, f"truncated ELF header ({size} of {ehsize} bytes)")
    (_, _, _, _, phoff, shoff, _, _, phentsize, phnum, shentsize, shnum, shstrndx) = struct.unpack_from(ehdr, data, 16)
    sections: list[tuple[int, int, int, int]] = []  # (type, offset, size, link)
    if shoff:
        _need(shentsize == shent, path, f"bad section header size {shentsize}")
        _need(shoff + shent <= size, path, f"section header table at {shoff:#x} is past end of file (size {size})")
        s0 = _elf_shdr(data, e, ei_class, shoff)
        if shnum == 0:  # more than SHN_LORESERVE sections: real count in section 0
            shnum = s0[2] if s0[0] == 0 else 0
        if shstrndx == 0xFFFF:
            shstrndx = s0[3]
        end = shoff + shnum * shent
        _need(end <= size, path, f"truncated: {shnum} section headers at {shoff:#x} end past end of file (size {size})")
        sections = [_elf_shdr(data, e, ei_class, shoff + i * shent) for i in range(shnum)]
        _need(shstrndx < max(shnum, 1), path, f"bad section name table index {shstrndx}")
        for i, (stype, off, sz, _) in enumerate(sections):
            if stype != 8 and i and sz and off + sz > size:  # SHT_NOBITS occupies no file bytes
                raise AnalyzerError(
                    f"truncated: section {i} ({off:#x}+{sz:#x}) ends past end of file (size {size})", path
                )
    if phnum == 0xFFFF:  # PN_XNUM: the real count, at least 0xffff, is in section 0's sh_info
        phnum = _elf_sh_info(data, e, ei_class, shoff) if sections else 0
        _need(phnum >= 0xFFFF, path, f"bad program header count: PN_XNUM, but section 0 gives {phnum}")
    if phnum:
        _need(phentsize == phent, path, f"bad program header size {phentsize}")
        _need(
            phoff + phnum * phent <= size,
            path,
            f"truncated: {phnum} program headers at {phoff:#x} end past end of file (size {size})",
        )
        fmt = e + ("IIIIIIII" if ei_class == 1 else "IIQQQQQQ")
        for i in range(phnum):
            f = struct.unpack_from(fmt, data, phoff + i * phent)
            off, filesz = (f[1], f[4]) if ei_class == 1 else (f[2], f[5])
            if filesz and off + filesz > size:
                raise AnalyzerError(
                    f"truncated: segment {i} ({off:#x}+{filesz:#x}) ends past end of file (size {size})", path
                )


def _elf_shdr(data: Buffer, e: str, ei_class: int, at: int) -> tuple[int, int, int, int]:
    if ei_class == 1:
        _, stype, _, _, off, sz, link, _, _, _ = struct.unpack_from(e + "IIIIIIIIII", data, at)
    else:
        _, stype, _, _, off, sz, link, _, _, _ = struct.unpack_from(e + "IIQQQQIIQQ", data, at)
    return stype, off, sz, link


def _elf_sh_info(data: Buffer, e: str, ei_class: int, at: int) -> int:
    return int(struct.unpack_from(e + "I", data, at + (28 if ei_class == 1 else 44))[0])


def _open_elf(path: str, data: Buffer) -> Artifact:
    check_elf(path, data)
    return Artifact(path, data, "ELF", ELFFile(data, path))


# ---------------------------------------------------------------- PE


def check_pe(path: str, data: Buffer) -> None:
    """Reject PE files whose headers or section data lie outside the file."""
    size = len(data)
    _need(size >= 64, path, f"truncated DOS header ({size} bytes)")
    lfanew = struct.unpack_from("<I", data, 0x3C)[0]
    _need(lfanew + 24 <= size, path, f"truncated: PE header at {lfanew:#x} is past end of file (size {size})")
    _need(data[lfanew : lfanew + 4] == b"PE\0\0", path, "not a PE file (MZ header without a PE signature)")
    nsections, _, symtab, nsyms, opt_size = struct.unpack_from("<HIIIH", data, lfanew + 6)
    opt = lfanew + 24
    _need(opt + opt_size <= size, path, f"truncated optional header (size {size})")
    _need(opt_size >= 2, path, "missing optional header")
    magic = struct.unpack_from("<H", data, opt)[0]
    _need(magic in (0x10B, 0x20B), path, f"bad optional header magic {magic:#x}")
    table = opt + opt_size
    _need(
        table + 40 * nsections <= size,
        path,
        f"truncated: {nsections} section headers end past end of file (size {size})",
    )
    for i in range(nsections):
        raw_size, raw_ptr = struct.unpack_from("<II", data, table + 40 * i + 16)
        if raw_size and raw_ptr + raw_size > size:
            raise AnalyzerError(
                f"truncated: section {i} ({raw_ptr:#x}+{raw_size:#x}) ends past end of file (size {size})", path
            )
    if symtab:  # the COFF symbol table, then the string table whose size leads it
        strtab = symtab + 18 * nsyms
        _need(
            strtab + 4 <= size, path, f"truncated: COFF symbol table at {symtab:#x} ends past end of file (size {size})"
        )
        strsize = struct.unpack_from("<I", data, strtab)[0]
        _need(
            strtab + strsize <= size,
            path,
            f"truncated: COFF string table at {strtab:#x} ends past end of file (size {size})",
        )
    # the certificate table is the one data directory addressed by file offset
    ndirs_at, dirs_at = (opt + 92, opt + 96) if magic == 0x10B else (opt + 108, opt + 112)
    if ndirs_at + 4 <= table and struct.unpack_from("<I", data, ndirs_at)[0] > 4 and dirs_at + 40 <= table:
        cert_off, cert_size = struct.unpack_from("<II", data, dirs_at + 4 * 8)
        if cert_size and cert_off + cert_size > size:
            raise AnalyzerError(
                f"truncated: certificate table ({cert_off:#x}+{cert_size:#x}) ends past end of file (size {size})", path
            )


def _open_pe(path: str, data: Buffer, parse: bool = True) -> Artifact:
    check_pe(path, data)
    if not parse:
        return Artifact(path, data, "PE", None)
    binary = _lief().PE.parse(bytes(data))
    _need(binary is not None, path, "corrupt PE file (the parser rejected it)")
    return Artifact(path, data, "PE", binary)


# ---------------------------------------------------------------- Mach-O


def check_macho(path: str, data: Buffer) -> None:
    """Reject Mach-O files whose load commands or segments lie outside the file."""
    size = len(data)
    e, bits = MACHO_MAGICS[data[:4]]
    hsize = 28 if bits == 32 else 32
    _need(size >= hsize, path, f"truncated Mach-O header ({size} bytes)")
    _, _, _, ncmds, sizeofcmds = struct.unpack_from(e + "iiIII", data, 4)
    _need(
        hsize + sizeofcmds <= size,
        path,
        f"truncated: load commands ({sizeofcmds} bytes) end past end of file (size {size})",
    )
    _need(ncmds * 8 <= sizeofcmds, path, f"bad load command count {ncmds} for {sizeofcmds} bytes")
    at, end = hsize, hsize + sizeofcmds
    for i in range(ncmds):
        _need(at + 8 <= end, path, f"load command {i} is past the end of the load commands")
        cmd, cmdsize = struct.unpack_from(e + "II", data, at)
        _need(cmdsize >= 8 and at + cmdsize <= end, path, f"load command {i} has bad size {cmdsize}")
        if cmd in (0x1, 0x19):  # LC_SEGMENT, LC_SEGMENT_64
            if cmd == 0x1 and cmdsize >= 56:
                fileoff, filesize = struct.unpack_from(e + "II", data, at + 32)
            elif cmd == 0x19 and cmdsize >= 72:
                fileoff, filesize = struct.unpack_from(e + "QQ", data, at + 40)
            else:
                raise AnalyzerError(f"load command {i} (segment) is too short", path)
            if filesize and fileoff + filesize > size:
                raise AnalyzerError(
                    f"truncated: segment in load command {i} ({fileoff:#x}+{filesize:#x}) "
                    f"ends past end of file (size {size})",
                    path,
                )
        at += cmdsize


def fat_slices(path: str, data: Buffer) -> list[tuple[str, bytes]]:
    """The (cpu name, bytes) of each slice of a fat Mach-O, checked against the file size."""
    size = len(data)
    wide = FAT_MAGICS[data[:4]] == 64
    _need(size >= 8, path, "truncated fat header")
    nfat = struct.unpack_from(">I", data, 4)[0]
    entry = 32 if wide else 20
    _need(8 + nfat * entry <= size, path, f"truncated: {nfat} fat arch entries end past end of file (size {size})")
    out: list[tuple[str, bytes]] = []
    seen: dict[str, int] = {}
    for i in range(nfat):
        if wide:
            cputype, _, offset, fsize = struct.unpack_from(">iiQQ", data, 8 + i * entry)
        else:
            cputype, _, offset, fsize = struct.unpack_from(">iiII", data, 8 + i * entry)
        _need(
            fsize > 0 and offset + fsize <= size,
            path,
            f"truncated: fat slice {i} ({offset:#x}+{fsize:#x}) ends past end of file (size {size})",
        )
        name = CPU_TYPE_NAMES.get(cputype & 0xFFFFFFFF, f"cpu{cputype & 0xFFFFFFFF:#x}")
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            name = f"{name}#{seen[name]}"
        out.append((name, data[offset : offset + fsize]))
    return out


def _open_macho(path: str, data: Buffer, parse: bool = True) -> Artifact:
    _need(data[:4] in MACHO_MAGICS, path, "not a Mach-O file")
    check_macho(path, data)
    if not parse:
        return Artifact(path, data, "MachO", None)
    fat = _lief().MachO.parse(bytes(data))
    if fat is None or fat.size < 1:
        raise AnalyzerError("corrupt Mach-O file (the parser rejected it)", path)
    return Artifact(path, data, "MachO", fat.at(0))


def walk(root: str) -> list[str]:
    """Every regular file below `root` (symlinks not followed), sorted; binaries or not.

    Sniffing is left to the caller, so that it can be spread over worker processes.
    """
    found: list[str] = []
    try:
        entries = sorted(os.scandir(root), key=lambda d: d.name)
    except OSError:
        return found
    for entry in entries:
        try:
            if entry.is_symlink():
                continue
            if entry.is_dir():
                found.extend(walk(entry.path))
            elif entry.is_file():
                found.append(entry.path)
        except OSError:
            continue
    return found
