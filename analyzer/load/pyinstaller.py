"""PyInstaller one-file programs: the binaries bundled in their archive, audited as the program's own.

A one-file build is PyInstaller's bootloader (a small ELF, PE or Mach-O program) carrying a "CArchive": every
file the program extracts at start and loads from there — the Python shared library, extension modules, and
the libraries they need (libssl, libffi...). Those decide where the program runs, not the bootloader: a
bootloader that needs GLIBC_2.14 commonly carries a libpython that needs GLIBC_2.34. The archive is

    entries' bytes (each zlib-compressed or stored) | table of contents | cookie (88 bytes)
    cookie:  "MEI\\014\\013\\012\\013\\016", archive length, TOC offset, TOC length, Python version, libpython's name
    TOC entry: entry length, offset, stored length, uncompressed length, compressed flag, type code, name
               (big-endian; the name NUL-padded to the entry length)

and it lies where the bootloader looks for it: on Linux in an ELF section named `pydata` (objcopy
--add-section); elsewhere appended to the program — at the end of the file, or just before what a signing
tool appended after it (a PE's certificate table, a Mach-O's code signature), after at most alignment zeros.
binlens looks there only (the cookie's magic is also in every bootloader's own data: a search would find it),
so a program that merely contains the magic is no bundle, and one that is a bundle but whose archive is
damaged is that program's error. Every offset is checked against the archive, the table's size and entry
count are bounded, and each member is decompressed with its declared size as the bound, the container limits
(members, bytes, ratio) applying as to any container's."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from typing import Any, NamedTuple

MAGIC = b"MEI\014\013\012\013\016"
COOKIE = struct.Struct("!8sIIII64s")
ENTRY = struct.Struct("!IIIIBc")
SLACK = 16  # alignment zeros allowed between the archive's end and a signature after it
MAX_TOC = 64 << 20  # bytes of table of contents read
MAX_ENTRIES = 1_000_000  # entries parsed from it (the container limit on members, lower, is applied after)
NATIVE_TYPES = frozenset(b"bx")  # binaries, and data files (a library shipped as data is loaded all the same)


class BundleError(Exception):
    """A PyInstaller archive that cannot be read (the message names the problem)."""


class Member(NamedTuple):
    name: str
    offset: int  # in the file
    stored: int
    size: int  # uncompressed
    compressed: bool
    typecode: str


class Bundle(NamedTuple):
    start: int  # the archive's first byte in the file
    end: int  # one past its cookie
    python_lib: str
    python_version: str  # "3.11"
    members: list[Member]  # the entries that can hold native code, in the archive's order
    entries: int  # every entry of the table (options and Python code included)


def anchors(fmt: str, binary: Any, size: int) -> tuple[list[tuple[int, int]], bool]:
    """Where an archive's cookie may end, each with the first byte the archive may start at, and whether it
    must be there (an ELF's `pydata` section is a bundle's and nothing else: a damaged one is an error;
    elsewhere a place where no cookie is found is no bundle)."""
    if fmt == "ELF":
        for s in binary.sections:
            if s.name == "pydata" and s.sh_type != 8:  # (SHT_NOBITS: no bytes)
                return [(s.sh_offset + s.sh_size, s.sh_offset)], True
        return [(size, 0)], False
    ends = [size]
    if fmt == "PE":
        at, length = binary.directory(4)  # the certificate table (a file offset, not an address)
        if length and 0 < at <= size:
            ends.append(at)
    elif fmt == "MachO":
        sig = getattr(binary, "code_signature", None) if getattr(binary, "has_code_signature", False) else None
        if sig is not None and 0 < sig.data_offset <= size:
            ends.append(sig.data_offset)
    return [(end, 0) for end in ends], False


def find(data: Any, fmt: str, binary: Any) -> Bundle | None:
    """The bundle in a program (its bytes `data`, opened as `binary`), or None when it carries none.
    BundleError for a `pydata` section that holds no readable archive, or a cookie whose archive is damaged."""
    size = len(data)
    ends, required = anchors(fmt, binary, size)
    for end, lower in ends:
        if end > size:
            raise BundleError("corrupt PyInstaller archive (its `pydata` section lies outside the file)")
        at = _cookie_at(data, end, exact=required)
        if at is not None:
            return _read(data, at, lower)
    if required:
        raise BundleError("corrupt PyInstaller archive (its `pydata` section ends in no archive cookie)")
    return None


def _cookie_at(data: Any, end: int, exact: bool) -> int | None:
    """Where the cookie ending at `end` starts (or, not `exact`, ending before `end` after at most SLACK zeros)."""
    for pad in range(0, 1 if exact else SLACK + 1):
        at = end - pad - COOKIE.size
        if at < 0:
            return None
        if bytes(data[at:at + 8]) == MAGIC:
            return at
        if pad < SLACK and data[end - pad - 1:end - pad] != b"\0":
            return None  # (only zeros stand between an archive and what follows it)
    return None


def _read(data: Any, at: int, lower: int) -> Bundle:
    """The archive whose cookie is at `at`; `lower`: the first byte it may start at."""
    _, length, toc_at, toc_len, pyvers, pylib = COOKIE.unpack_from(data, at)
    end = at + COOKIE.size
    start = end - length
    if length < COOKIE.size or start < lower:
        raise BundleError(f"corrupt PyInstaller archive (it claims {length} bytes, more than the file holds there)")
    if toc_at + toc_len > length - COOKIE.size:
        raise BundleError("corrupt PyInstaller archive (its table of contents lies outside it)")
    if toc_len > MAX_TOC:
        raise BundleError(f"a PyInstaller table of contents of {toc_len} bytes (binlens reads at most {MAX_TOC})")
    name = pylib.rstrip(b"\0")
    if not name or b"\0" in name:
        raise BundleError("corrupt PyInstaller archive (no Python library named in its cookie)")
    toc = bytes(data[start + toc_at:start + toc_at + toc_len])
    members: list[Member] = []
    entries = pos = 0
    while pos < len(toc):
        if pos + ENTRY.size > len(toc):
            raise BundleError("corrupt PyInstaller archive (a table of contents entry cut short)")
        elen, off, stored, usize, flag, code = ENTRY.unpack_from(toc, pos)
        if elen < ENTRY.size or pos + elen > len(toc):
            raise BundleError(f"corrupt PyInstaller archive (a table of contents entry of {elen} bytes)")
        raw = toc[pos + ENTRY.size:pos + elen].rstrip(b"\0")
        pos += elen
        entries += 1
        if entries > MAX_ENTRIES:
            raise BundleError(f"a PyInstaller table of contents of more than {MAX_ENTRIES} entries")
        if code[0] not in NATIVE_TYPES:
            continue  # Python code, options, the PYZ of modules, symlinks, other programs' archives
        if off + stored > toc_at:
            raise BundleError("corrupt PyInstaller archive (an entry's bytes lie outside it)")
        if not raw:
            raise BundleError("corrupt PyInstaller archive (an entry without a name)")
        if flag not in (0, 1) or (not flag and stored != usize):
            raise BundleError("corrupt PyInstaller archive (an entry's sizes disagree)")
        members.append(Member(raw.decode("utf-8", "surrogateescape"), start + off, stored, usize, bool(flag),
                              code.decode("latin-1")))
    return Bundle(start, end, name.decode("utf-8", "surrogateescape"), f"{pyvers // 100}.{pyvers % 100}", members,
                  entries)


def head(data: Any, m: Member, n: int) -> bytes:
    """A member's first `n` bytes (at most), decompressed only that far."""
    raw = data[m.offset:m.offset + m.stored]
    if not m.compressed:
        return bytes(raw[:n])
    try:
        return zlib.decompressobj().decompress(bytes(raw[:4096]), n)
    except zlib.error as e:
        raise BundleError(f"corrupt compressed data ({e})") from None


def content(data: Any, m: Member) -> bytes:
    """A member's bytes: decompressed, no more than its declared size (and all of it)."""
    raw = data[m.offset:m.offset + m.stored]
    if not m.compressed:
        return bytes(raw)
    d = zlib.decompressobj()
    try:
        out = d.decompress(raw, m.size + 1)
    except zlib.error as e:
        raise BundleError(f"corrupt compressed data ({e})") from None
    if len(out) != m.size or not d.eof:
        raise BundleError(f"corrupt compressed data ({len(out)} bytes where {m.size} are declared)")
    return out


def members(data: Any, bundle: Bundle, sniff: Any, limits: Any) -> Iterator[tuple[Member, bytes | str]]:
    """Each member that is a binary (by its first bytes) with its bytes, or with the problem that stops it
    being read (a string). BundleError when the archive as a whole breaks a container limit (its members, its
    bytes unpacked, their ratio to the archive's size, as for any container)."""
    if bundle.entries > limits.members:
        raise BundleError(f"more than {limits.members} members (the limit)")
    total = 0
    for m in bundle.members:
        if m.size > limits.member_bytes:
            yield m, f"member {m.name} is {m.size} bytes, over the limit of {limits.member_bytes}"
            continue
        try:
            first = head(data, m, 8)
        except BundleError as e:
            yield m, str(e)
            continue
        if sniff(first) is None:
            continue
        total += m.size
        if total > limits.total_bytes:
            raise BundleError(f"more than {limits.total_bytes} bytes unpacked (the limit)")
        if total > 1 << 20 and total > (bundle.end - bundle.start) * limits.ratio:
            raise BundleError(f"unpacks to over {limits.ratio} times its size (a compression bomb?)")
        try:
            yield m, content(data, m)
        except BundleError as e:
            yield m, str(e)
