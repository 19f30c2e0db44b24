"""Mach-O structure: the header and load-command check done before LIEF parses a file, and fat slices.

Every count and offset the headers claim is checked against the file's size
before LIEF sees the bytes, so a truncated or lying file becomes one clear
`AnalyzerError` instead of a partial parse, a hang or a large allocation.
"""

from __future__ import annotations

import struct

from analyzer.errors import AnalyzerError, require
from analyzer.load.elf import Buffer

MACHO_MAGICS = {
    b"\xfe\xed\xfa\xce": (">", 32),
    b"\xce\xfa\xed\xfe": ("<", 32),
    b"\xfe\xed\xfa\xcf": (">", 64),
    b"\xcf\xfa\xed\xfe": ("<", 64),
}
FAT_MAGICS = {b"\xca\xfe\xba\xbe": 32, b"\xca\xfe\xba\xbf": 64}
LC_SEGMENT, LC_SEGMENT_64 = 0x1, 0x19

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


def check_macho(path: str, data: Buffer) -> None:
    """Reject Mach-O files whose load commands or segments lie outside the file."""
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
        at += cmdsize


def fat_slices(path: str, data: Buffer) -> list[tuple[str, bytes]]:
    """The (cpu name, bytes) of each slice of a fat Mach-O, checked against the file size."""
    size = len(data)
    wide = FAT_MAGICS[data[:4]] == 64
    require(size >= 8, path, "truncated fat header")
    nfat = struct.unpack_from(">I", data, 4)[0]
    entry = 32 if wide else 20
    require(8 + nfat * entry <= size, path, f"truncated: {nfat} fat arch entries end past end of file (size {size})")
    out: list[tuple[str, bytes]] = []
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
        out.append((name, data[offset : offset + fsize]))
    return out
