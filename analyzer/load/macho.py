"""Mach-O structure: the header and load-command check done before LIEF parses a file, and fat slices.

Every count and offset the headers claim is checked against the file's size
before LIEF sees the bytes, so a truncated or lying file becomes one clear
`AnalyzerError` instead of a partial parse, a hang or a large allocation.
"""

from __future__ import annotations

import struct

from analyzer.errors import AnalyzerError, name_text, require
from analyzer.load.elf import Buffer

TYPE_CHECKING = False  # typing is not imported at run time (analyzer/records.py says why)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

MACHO_MAGICS = {
    b"\xfe\xed\xfa\xce": (">", 32),
    b"\xce\xfa\xed\xfe": ("<", 32),
    b"\xfe\xed\xfa\xcf": (">", 64),
    b"\xcf\xfa\xed\xfe": ("<", 64),
}
FAT_MAGICS = {b"\xca\xfe\xba\xbe": 32, b"\xca\xfe\xba\xbf": 64}
LC_SEGMENT, LC_SEGMENT_64, LC_SYMTAB = 0x1, 0x19, 0x2

# A fat header also starts Java class files (0xCAFEBABE): real fat files have
# a handful of slices, class files their major version in that field (45 for
# Java 1.1, 69 for Java 25, more to come): fewer than 45 slices is a fat file.
MAX_FAT_SLICES = 44
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


# load commands that point at bytes of the file (mach-o/loader.h): where their (offset, size) pairs are
_LINKEDIT_DATA = {0x1D, 0x1E, 0x26, 0x29, 0x2B, 0x2E, 0x80000033, 0x80000034}  # linkedit_data_command
_DYLD_INFO = {0x22, 0x80000022}  # rebase, bind, weak bind, lazy bind, export: five (off, size) pairs
LC_DYSYMTAB, LC_NOTE = 0xB, 0x31


def check_macho(path: str, data: Buffer) -> int:
    """Reject Mach-O files whose load commands or segments lie outside the file. Returns the file's extent: the
    end of the last byte its headers, segments and linkedit tables use (what follows — padding — is no part
    of it, and LIEF, which copies what it parses, is given the file up to there)."""
    size = len(data)
    e, bits = MACHO_MAGICS[data[:4]]
    hsize = 28 if bits == 32 else 32
    require(size >= hsize, path, f"truncated Mach-O header ({size} bytes)")
    _, _, _, ncmds, sizeofcmds = struct.unpack_from(e + "iiIII", data, 4)
    require(
        hsize + sizeofcmds <= size,
        path,
        f"truncated: load commands ({sizeofcmds} bytes) end past end of file (size {size})",
    )
    require(ncmds * 8 <= sizeofcmds, path, f"bad load command count {ncmds} for {sizeofcmds} bytes")
    at, end = hsize, hsize + sizeofcmds
    extent = end
    for i in range(ncmds):
        require(at + 8 <= end, path, f"load command {i} is past the end of the load commands")
        cmd, cmdsize = struct.unpack_from(e + "II", data, at)
        require(cmdsize >= 8 and at + cmdsize <= end, path, f"load command {i} has bad size {cmdsize}")
        if cmd in (LC_SEGMENT, LC_SEGMENT_64):
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
            if filesize:
                extent = max(extent, fileoff + filesize)
        elif cmd == LC_SYMTAB and cmdsize >= 24:
            symoff, nsyms, stroff, strsize = struct.unpack_from(e + "IIII", data, at + 8)
            entry = 16 if bits == 64 else 12  # nlist_64 / nlist
            require(
                symoff + nsyms * entry <= size and stroff + strsize <= size,
                path,
                f"truncated: the symbol table of load command {i} ({nsyms} symbols at {symoff:#x}, strings "
                f"{stroff:#x}+{strsize:#x}) ends past end of file (size {size})",
            )
            extent = max(extent, symoff + nsyms * entry, stroff + strsize)
        else:
            extent = max(extent, _data_end(cmd, cmdsize, e, bits, data, at))
        at += cmdsize
    return min(extent, size)


def _data_end(cmd: int, cmdsize: int, e: str, bits: int, data: Buffer, at: int) -> int:
    """The end of the file bytes a load command other than a segment or the symbol table points at (0: none)."""
    pairs: list[tuple[int, int]] = []
    if cmd in _LINKEDIT_DATA and cmdsize >= 16:
        pairs.append(struct.unpack_from(e + "II", data, at + 8))
    elif cmd in _DYLD_INFO and cmdsize >= 48:
        v = struct.unpack_from(e + "10I", data, at + 8)
        pairs.extend(zip(v[0::2], v[1::2], strict=True))
    elif cmd == LC_DYSYMTAB and cmdsize >= 80:
        v = struct.unpack_from(e + "18I", data, at + 8)
        # (toc, module table, external references, indirect symbols, external and local relocations)
        pairs += [(v[6], v[7] * 8), (v[8], v[9] * (56 if bits == 64 else 52)), (v[10], v[11] * 4),
                  (v[12], v[13] * 4), (v[14], v[15] * 8), (v[16], v[17] * 8)]
    elif cmd == LC_NOTE and cmdsize >= 40:
        pairs.append(struct.unpack_from(e + "QQ", data, at + 24))
    return max((off + n for off, n in pairs if n), default=0)


def fat_slices(path: str, data: Buffer, cut: Callable[[int, int], Buffer] | None = None) -> list[tuple[str, Buffer]]:
    """The (cpu name, bytes) of each slice of a fat Mach-O, checked against the file size; `cut(start, end)`
    gives a slice's bytes (default: a copy)."""
    size = len(data)
    wide = FAT_MAGICS[data[:4]] == 64
    require(size >= 8, path, "truncated fat header")
    nfat = struct.unpack_from(">I", data, 4)[0]
    entry = 32 if wide else 20
    require(8 + nfat * entry <= size, path, f"truncated: {nfat} fat arch entries end past end of file (size {size})")
    spans: list[tuple[int, int, int, str]] = []
    seen: dict[str, int] = {}
    for i in range(nfat):
        if wide:
            cputype, _, offset, fsize = struct.unpack_from(">iiQQ", data, 8 + i * entry)
        else:
            cputype, _, offset, fsize = struct.unpack_from(">iiII", data, 8 + i * entry)
        require(
            fsize > 0 and offset + fsize <= size,
            path,
            f"truncated: fat slice {i} ({offset:#x}+{fsize:#x}) ends past end of file (size {size})",
        )
        name = CPU_TYPE_NAMES.get(cputype & 0xFFFFFFFF, f"cpu{cputype & 0xFFFFFFFF:#x}")
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            name = f"{name}#{seen[name]}"
        spans.append((offset, offset + fsize, i, name))
    # lipo lays slices out one after another: slices sharing bytes would be read (and held) many times over
    ordered = sorted(spans)
    for (_, end, i, _), (start, _, j, _) in zip(ordered, ordered[1:], strict=False):
        require(start >= end, path, f"corrupt: fat slices {min(i, j)} and {max(i, j)} overlap")
    cut = cut or (lambda start, end: data[start:end])
    return [(name, cut(start, end)) for start, end, _, name in spans]


# Names are read from the load commands' bytes, not from LIEF's strings: LIEF cannot give a name that
# is not UTF-8 (it raises UnicodeDecodeError), and every name is shown as errors.name_text makes it.


def _cstring(raw: bytes) -> str:
    end = raw.find(b"\0")
    return name_text(raw[:end] if end >= 0 else raw)


def command_string(command: Any, order: str) -> str:
    """The string a load command's lc_str at offset 8 points into the command: a dylib's name
    (LC_LOAD_DYLIB and kin), an LC_RPATH path; "" when the offset lies outside the command."""
    raw = bytes(command.data)
    if len(raw) < 12:
        return ""
    offset = struct.unpack_from(order + "I", raw, 8)[0]
    return _cstring(raw[offset:]) if 12 <= offset < len(raw) else ""


def segment_names(segment: Any, bits: int) -> tuple[str, list[tuple[str, str]]]:
    """A segment's name and its sections' (segment name, section name), from the segment command."""
    raw = bytes(segment.data)
    header, entry = (72, 80) if bits == 64 else (56, 68)
    sections = []
    for i in range((len(raw) - header) // entry if len(raw) > header else 0):
        at = header + i * entry
        sections.append((_cstring(raw[at + 16 : at + 32]), _cstring(raw[at : at + 16])))
    return _cstring(raw[8:24]), sections


def safe_name(item: Any) -> str | None:
    """LIEF's name of a symbol, or None when it is not UTF-8 (no name binlens looks for is)."""
    try:
        return str(item.name)
    except UnicodeDecodeError:
        return None
