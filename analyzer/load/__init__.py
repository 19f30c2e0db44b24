"""Load: sniff a file's magic, check its structure, open it once.

Readers, one per format: `elf` (binlens' own bounded reader over a read-only
memory map), `pe` (binlens' own bounded PE/COFF reader), `macho` (the
structural check and fat slices; LIEF parses the load commands). `sources`
turns what the user names (files, directories) into the files to analyze.
"""

from __future__ import annotations

import io
import mmap
import os
import struct

from analyzer.errors import AnalyzerError, require
from analyzer.load.elf import Buffer, ELFFile, check_elf
from analyzer.load.macho import FAT_MAGICS, MACHO_MAGICS, MAX_FAT_SLICES, check_macho, fat_slices
from analyzer.records import Record

TYPE_CHECKING = False  # typing is not imported at run time (analyzer/records.py says why)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

ELF_MAGIC = b"\x7fELF"
MZ_MAGIC = b"MZ"
FORMATS = ("ELF", "PE", "MachO")


def _lief() -> Any:
    """LIEF, imported on first use (Mach-O only): it is slow to import (not counted against a file's time budget)."""
    from analyzer.budget import imported

    lief = imported("lief")
    lief.logging.disable()
    return lief


class Artifact(Record):
    """One binary, opened once: its bytes, its format and its reader."""

    path: str  # the name shown to users; `file[arm64]` for a fat slice
    data: Buffer
    format: str  # "ELF" | "PE" | "MachO"
    binary: Any  # ELFFile | PEFile | lief.MachO.Binary (None when opened with parse=False)


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


def is_plain(path: str) -> bool:
    """Whether `path` names a file of its own: not a container's member (`outer!inner`) nor a URL."""
    return "!" not in path and "://" not in path


def _member(path: str) -> str:
    """The file behind a name: itself, where a container's member `outer!inner` was unpacked, or the local
    copy of a URL (fetched on first use: analyzer/load/remote.py)."""
    if "!" in path and not os.path.lexists(path):
        from analyzer.load.archives import resolve

        found = resolve(path)  # a member of a container (whose own name may be a URL)
        if found is not None:
            return found
    if "://" in path and not os.path.lexists(path):
        from analyzer.load import remote

        if remote.is_url(path):
            return remote.local_copy(path)
    return path


def member_missing(path: str) -> bool:
    """Whether a task names a container's member that is nowhere: not on disk where members were unpacked, not
    left for this process to read from its container, not known by its digest (a scan's own members always
    are one of these; none means the scan's environment is not this process's — its error, not a skip)."""
    if "!" not in path or "://" in path or os.path.lexists(path):
        return False
    from analyzer.load.archives import member_digest, pending, resolve

    return pending(path) is None and member_digest(path) is None and resolve(path) is None


def size_of(path: str) -> int:
    """The size of the file behind a name: of a container's member, as the unpacking recorded it (0 for one
    known only by its digest); OSError when there is none."""
    if "!" in path and not os.path.lexists(path):
        from analyzer.load.archives import member_size

        return member_size(path)
    return os.path.getsize(_member(path))


def sniff_file(path: str) -> str | None:
    """Sniff a file on disk; None for unreadable or unknown files."""
    return sniff_head(path)[0]


def sniff_head(path: str) -> tuple[str | None, bytes]:
    """sniff_file, and the first bytes it read (up to 8; none for a member known without reading it)."""
    if "!" in path and not os.path.lexists(path):
        from analyzer.load.archives import member_digest, pending, resolve

        waiting = pending(path)
        if waiting is not None:  # not written out (a zip member to inflate, a listed one): its kind was noted
            return waiting[6], b""
        known = member_digest(path) if resolve(path) is None else None
        if known is not None:  # a member known by its digest (the result cache has it)
            return known[1] or None, b""
    path = _member(path)
    try:  # os-level calls: this runs for every file of a directory scan
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None, b""
    try:
        head = os.read(fd, 8)
        return sniff(head), head
    except OSError:
        return None, b""
    finally:
        os.close(fd)


def open_regular(path: str) -> io.BufferedReader | None:
    """A file found on disk opened for reading as sniffing opens it (no symlink followed, no FIFO waited on),
    or None when it is no regular file or cannot be opened."""
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            return os.fdopen(fd, "rb")
    except OSError:
        pass
    os.close(fd)
    return None


def read_file(path: str, head: int = 0) -> Buffer:
    """The whole file, memory-mapped (read-only), or an AnalyzerError that names the problem. Only regular files
    are opened: a FIFO, a device or a socket would block or never end. With `head`, its first `head` bytes only,
    read rather than mapped."""
    import stat

    if "!" in path and not os.path.lexists(path):
        from analyzer.load.archives import member_bytes, pending

        listed = pending(path)
        if listed is not None and listed[2] == "ar":  # read where it lies (a library, a pack, a layer)
            try:
                data = member_bytes(listed, head)
            except OSError as e:
                raise AnalyzerError(f"cannot read: {getattr(e, 'strerror', None) or e}", path) from None
            if data is not None:
                return data
            # (large and not on a page boundary: copied out below, and mapped)
        if listed is not None and listed[2] == "squashfs":  # decompressed here, into memory (unless large)
            from analyzer.load.archives import squashfs_member

            data = squashfs_member(listed, path, head)
            if data is not None:
                return data
    if "!" in path and not os.path.lexists(path) and _member(path) == path:
        found = bundled_member(path)  # a binary a PyInstaller program carries, named as reports name it
        if found is not None:
            from analyzer.load import pyinstaller

            try:  # (its first bytes only, decompressed only that far, when that is all that is asked)
                return pyinstaller.head(*found, head) if head else pyinstaller.content(*found)
            except pyinstaller.BundleError as e:
                raise AnalyzerError(str(e), path) from None
    name, path = path, _member(path)  # errors name what the user knows: `outer!inner`
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise AnalyzerError("no such file", name) from None
    except OSError as e:
        raise AnalyzerError(f"cannot read: {e.strerror or e}", name) from None
    if stat.S_ISDIR(mode):
        raise AnalyzerError("is a directory", name)
    if not stat.S_ISREG(mode):
        raise AnalyzerError("not a regular file (a FIFO, device or socket)", name)
    try:
        with open(path, "rb") as f:
            if head:
                return f.read(head)
            size = os.fstat(f.fileno()).st_size
            if size == 0:
                return b""
            return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except FileNotFoundError:
        raise AnalyzerError("no such file", name) from None
    except IsADirectoryError:
        raise AnalyzerError("is a directory", name) from None
    except PermissionError:
        raise AnalyzerError("permission denied", name) from None
    except (OSError, ValueError) as e:
        raise AnalyzerError(f"cannot read: {getattr(e, 'strerror', None) or e}", name) from None


def bundled_member(path: str, any_name: bool = False) -> tuple[Buffer, Any] | None:
    """For a name `app!libpython3.11.so.1.0` (the program a file, or a container's member: `pkg.tgz!bin/app!...`),
    the program's bytes and the entry of the binary its PyInstaller archive holds under that name (within the
    default container limits), or None when the name is no such thing (`any_name`: the first binary it holds,
    for `app!`: whether it holds any). Nothing is decompressed here."""
    at = path.rfind("!")
    while at > 0:
        outer, inner = path[:at], path[at + 1:]
        if os.path.isfile(_member(outer)):
            from analyzer.load import pyinstaller
            from analyzer.load.archives import Limits

            try:
                for art in open_artifacts(outer):
                    bundle = pyinstaller.find(art.data, art.format, art.binary)
                    for m in bundle.members if bundle is not None else ():
                        if (m.name == inner or any_name) and m.size <= Limits.member_bytes:
                            return art.data, m
            except (AnalyzerError, pyinstaller.BundleError):
                return None
            return None
        at = path.rfind("!", 0, at)
    return None


def open_artifacts(path: str, parse: bool = True, data: Buffer | None = None) -> list[Artifact]:
    """Open the binary at `path` (its bytes `data` when the caller has read them already): one Artifact, or one
    per slice of a fat Mach-O.

    With `parse=False`, Mach-O files are checked but not handed to LIEF (their
    `binary` is None): for readers that need only the bytes, such as the Go
    build info reader. Raises AnalyzerError for missing, unreadable, unknown,
    truncated or corrupt files.
    """
    data = read_file(path) if data is None else data
    if not data:
        raise AnalyzerError("empty file", path)
    kind = sniff(data[:8])
    if kind is None:
        raise AnalyzerError("not an ELF, PE or Mach-O file", path)
    if kind == "ELF":
        check_elf(path, data)
        return [Artifact(path, data, "ELF", ELFFile(data, path))]
    if kind == "PE":
        from analyzer.load.pe import PEFile  # imported for PE files only (`binlens go` on ELF files never needs it)

        return [Artifact(path, data, "PE", PEFile(data, path))]
    if kind == "MachO":
        return [_open_macho(path, data, parse)]
    return [_open_macho(f"{path}[{name}]", piece, parse) for name, piece in fat_slices(path, data, _cutter(path, data))]


FAT_IN_PLACE = 64 << 20  # a fat slice larger than this is mapped where it lies, not copied


def _cutter(path: str, data: Buffer) -> Callable[[int, int], Buffer]:
    """How a fat file's slices are taken: a large one of a file on disk mapped where it lies (lipo puts slices on
    page boundaries), not copied — a slice can claim gigabytes a sparse file holds as nothing. A large slice off
    a page boundary is not a file lipo made: refused rather than copied."""

    def cut(start: int, end: int) -> Buffer:
        if end - start <= FAT_IN_PLACE:
            return data[start:end]
        if start % mmap.ALLOCATIONGRANULARITY:
            raise AnalyzerError(f"corrupt: a fat slice of {end - start} bytes off a page boundary ({start:#x})", path)
        if isinstance(data, mmap.mmap) and is_plain(path):
            try:
                with open(path, "rb") as f:
                    if os.fstat(f.fileno()).st_size == len(data):  # (the file mapped is this one, unchanged)
                        return mmap.mmap(f.fileno(), end - start, offset=start, access=mmap.ACCESS_READ)
            except (OSError, ValueError):
                pass
        return data[start:end]

    return cut


def _open_macho(path: str, data: Buffer, parse: bool = True) -> Artifact:
    require(data[:4] in MACHO_MAGICS, path, "not a Mach-O file")
    extent = check_macho(path, data)
    if not parse:
        return Artifact(path, data, "MachO", None)
    fat = _lief().MachO.parse(bytes(data[:extent]))  # (not the padding after it: LIEF copies what it is given)
    if fat is None or fat.size < 1:
        raise AnalyzerError("corrupt Mach-O file (the parser rejected it)", path)
    return Artifact(path, data, "MachO", fat.at(0))
