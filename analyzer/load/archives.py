"""Containers of artifacts as input sources: tar (plain, gzip, xz, bzip2, zstd), zip (wheels, jars, aars,
sdists as tar), Debian .deb (ar + control/data tar of any compression), RPM (cpio payload of any
compression), Alpine .apk (concatenated gzip tar streams), static libraries (.a: ar of objects), OCI image
layouts (a directory or a tar: index.json → manifest → layers) and `docker save` tarballs (manifest.json),
layers applied in order with whiteouts; SquashFS images (snaps, AppImages after their runtime: load/squashfs.py);
macOS packages (xar, their cpio Payloads gzip or pbzx: load/xar.py); programs compressed alone.

A member is named `outer!inner` (`app_1.2_amd64.deb!usr/bin/app`); nested containers nest the name
(`dist.tar!pkg.whl!pkg/_native.so`). Members that can be binaries (ELF, PE, Mach-O by their first bytes) or
containers are copied, with bounds, into a private temporary directory (never where the user did not ask);
the pipeline opens them from there by their `outer!inner` names (resolve()). Paths never escape: names are
normalised, `..`, absolute names, links and devices are skipped; totals, ratios, member counts and nesting are
bounded (Limits), and a container that breaks a limit is that container's one-line error."""

from __future__ import annotations

import bz2
import contextlib
import functools
import gzip
import hashlib
import json
import lzma
import os
import posixpath
import re
import shutil
import stat
import struct
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import IO, Any, Protocol

from analyzer.errors import brief, name_text
from analyzer.load import sniff
from analyzer.load.early import EARLY as _EARLY
from analyzer.load.early import Window as _Window
from analyzer.load.early import XzAhead as _XzAhead
from analyzer.load.early import cancel_early, decompress_early  # noqa: F401 - (their callers import them from here)
from analyzer.load.pathset import PathSet

UNPACK_ENV = "BINLENS_UNPACK_DIR"  # where a scan's members are; set by the pipeline for its workers
SEP = "!"
# names a directory walk looks into (a file named on the command line is recognised by its bytes)
# the names a directory walk reads as containers (their content decides what they are): packages of every kind
# that ship native code — NuGet's runtimes/*/native, conda's pkg-*.tar.zst, a gem's data.tar.gz, VS Code's and
# Windows' app packages among them — archives, static libraries
EXTENSIONS = (".deb", ".udeb", ".ddeb", ".rpm", ".apk", ".whl", ".zip", ".jar", ".aar", ".war", ".egg", ".tar",
              ".tgz", ".tar.gz", ".tar.xz", ".txz", ".tar.bz2", ".tbz2", ".tbz", ".tar.zst", ".tzst", ".a", ".ipk",
              ".ear", ".pyz", ".pyzw", ".pex", ".nupkg", ".snupkg", ".conda", ".gem", ".vsix", ".appx", ".msix", ".xpi",
              ".snap", ".squashfs", ".sqfs", ".sfs", ".appimage", ".gz", ".xz", ".bz2", ".zst", ".lzma",
              ".pkg", ".mpkg", ".xar", ".cpio", ".7z", ".cab", ".iso", ".ipa", ".aab", ".apks", ".xapk", ".run",
              ".sh", ".bin", ".msi", ".msm")  # (.run, .sh, .bin: makeself's installers, by their first bytes)


@dataclass(frozen=True)
class Limits:
    """Bounds on what one container may unpack (docs/archives.md); a container over one is an error."""

    total_bytes: int = 16 << 30  # uncompressed bytes written for one outermost container
    member_bytes: int = 4 << 30  # one member
    ratio: int = 200  # uncompressed bytes per compressed byte of a container (deflate of zeros is ~1000)
    members: int = 65_536  # entries read in one container (and its nested ones)
    depth: int = 4  # containers inside containers


class _Reader(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


class UnpackError(Exception):
    """A container that cannot be read, or that breaks a limit: the message names the problem (one line, of
    at most PROBLEM_MAX characters: it may quote what the container holds)."""

    def __init__(self, message: str) -> None:
        super().__init__(brief(message))


@lru_cache(maxsize=256)  # the same name is asked for a few times while one file is analysed: no more
def member_file(root: str, name: str) -> str:
    """Where the member named `outer!inner` lives in the unpack directory."""
    return os.path.join(root, hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:40])


def resolve(name: str) -> str | None:
    """The file holding a member named `outer!inner`, when this process has an unpack directory; else None.
    A zip member left for the analysing process (`pending`) is inflated here first (AnalyzerError when its
    data is corrupt)."""
    root = os.environ.get(UNPACK_ENV)
    if not root or SEP not in name or _known(name) is not None:  # (known by its digest only: not unpacked)
        return None
    f = member_file(root, name)
    if os.path.lexists(f) or os.path.exists(f + ".error"):
        return f
    ref = _listed(root, name) or _pending(f)
    if ref is None:
        return None
    _inflate(ref, f, name)
    return f


def pending(name: str) -> list[Any] | None:
    """A member not written out: a zip member not inflated yet — [zip file, local header offset, method,
    compressed size, size, CRC-32, kind, whether its digest is to be kept in a file]: the main process read only
    its first bytes (enough to know it is a binary) and the process that analyses it inflates it (resolve), so
    that the workers, not the main process, decompress a wheel — or a static library's member as its table
    lists it (or a container's pack, or an uncompressed image layer): [file, offset, "ar", size, size, None,
    kind, sha256 or None, layer?], read from that file where it lies."""
    root = os.environ.get(UNPACK_ENV)
    if not root or SEP not in name or _known(name) is not None:
        return None
    listed = _listed(root, name)
    if listed is not None:
        return listed
    f = member_file(root, name)
    return None if os.path.lexists(f) else _pending(f)


_TABLES: dict[str, dict[str, list[Any]]] = {}  # a container's finished table of members → its rows


def _listed(root: str, name: str) -> list[Any] | None:
    """A member as its container's table lists it (a static library's, or an image's read from an uncompressed
    layer): never written out, read from the library or layer itself. The container is the name up to one of
    its `!` (a member's own path may hold one too)."""
    at = len(name)
    while (at := name.rfind(SEP, 0, at)) > 0:
        base = member_file(root, name[:at])
        f = base + ".members.json"
        table = _TABLES.get(f)
        if table is None:
            if len(_TABLES) > 256:
                _TABLES.clear()
                _GROWING.clear()
            try:
                with open(f, encoding="utf-8") as fh:
                    table = json.loads(fh.read())
            except (OSError, ValueError):
                table = {}
            _TABLES[f] = table
        row = table.get(name) or _grown(base + ".members.jsonl", name)
        if row is not None:
            return row
    return None


_GROWING: dict[str, tuple[int, dict[str, list[Any]]]] = {}  # a table still written to → (bytes read, rows)


def _known_row(pack: str, name: str, row: list[Any]) -> None:
    """A row the unpacking process itself just appended to a pack's table: known to this process without reading
    the table back (the main process asks each member's size as it hands it out: it reopened the table 130 times
    for coreutils' .deb)."""
    f = pack[: -len(".pack")] + ".members.jsonl"
    entry = _GROWING.get(f)
    if entry is None:
        _GROWING[f] = entry = (0, {})
    entry[1][name] = row


def _grown(f: str, name: str) -> list[Any] | None:
    """A row of a table the unpacking appends to as it writes a container's members (one line each, written
    before the member is handed out): read on, from where it was read, when the name is not there yet."""
    done, rows = _GROWING.get(f, (0, {}))
    row = rows.get(name)
    if row is not None:
        return row
    try:
        with open(f, "rb") as fh:
            fh.seek(done)
            more = fh.read()
    except OSError:
        return None
    end = more.rfind(b"\n") + 1  # whole lines only
    for line in more[:end].splitlines():
        try:
            rows.update(json.loads(line))
        except ValueError:
            continue
    _GROWING[f] = (done + end, rows)
    return rows.get(name)


READ_IN_PLACE = 64 << 20  # a listed member up to this size is read into memory; a larger one is mapped


def member_bytes(ref: list[Any], head: int = 0) -> Any:
    """The bytes of a listed member, from the file it lies in (its first `head` bytes, when given): read when
    small, mapped (read-only) when it starts on a page boundary (a pack aligns its members), else None — the
    caller copies it out to a file of its own and maps that (memory stays bounded by the page cache)."""
    import mmap

    size = ref[4] if not head else min(head, ref[4])
    with open(ref[0], "rb") as fh:
        if not head and size > READ_IN_PLACE:
            if ref[1] % mmap.ALLOCATIONGRANULARITY:
                return None
            if os.fstat(fh.fileno()).st_size < ref[1] + size:
                raise OSError(f"{ref[0]}: truncated")
            return mmap.mmap(fh.fileno(), size, offset=ref[1], access=mmap.ACCESS_READ)
        fh.seek(ref[1])
        data = fh.read(size)
    if len(data) != size:
        raise OSError(f"{ref[0]}: truncated")
    return data


def member_size(name: str) -> int:
    """A member's size without reading it: 0 for one known only by its digest (not unpacked), a listed or
    pending member's recorded size, else its written file's; OSError when there is none."""
    root = os.environ.get(UNPACK_ENV)
    if not root or SEP not in name:
        raise FileNotFoundError(name)
    if _known(name) is not None:
        return 0
    listed = _listed(root, name)
    if listed is not None:
        return int(listed[4])
    f = member_file(root, name)
    try:
        return os.stat(f).st_size
    except OSError:
        ref = _pending(f)
        if ref is None:
            raise
        return int(ref[4])


def _pending(f: str) -> list[Any] | None:
    try:
        with open(f + ".zip", encoding="utf-8") as fh:
            return json.loads(fh.read())
    except (OSError, ValueError):
        return None


_INFLATED: dict[str, str] = {}  # zip members this process inflated → their sha256


def _digest_taken(name: str, digest: str, keep: bool) -> None:
    """A member's sha256, taken as this process decompressed it: kept here (written_digest), and, with `keep`
    (the main process keeps the container's member list for the result cache), in a file beside its place in the
    unpack directory, where the main process reads it when the scan ends."""
    root = os.environ.get(UNPACK_ENV)
    if keep and root:
        with open(member_file(root, name) + ".sha256", "w", encoding="ascii") as fh:
            fh.write(digest)
    if len(_INFLATED) > 4096:
        _INFLATED.clear()
    _INFLATED[name] = digest


def written_digest(name: str) -> str | None:
    """The sha256 of a zip member taken as it was inflated (so that its analysis need not hash it again): in the
    process that inflated it, or from the file kept beside it for the result cache's member list; else None."""
    if name in _INFLATED:
        return _INFLATED[name]
    root = os.environ.get(UNPACK_ENV)
    if not root or SEP not in name:
        return None
    listed = _listed(root, name) if _known(name) is None else None
    if listed is not None and listed[7] is not None:
        return listed[7]
    try:
        with open(member_file(root, name) + ".sha256", encoding="ascii") as fh:
            return fh.read(64)
    except OSError:
        return None


def _local_data(fh: IO[bytes], offset: int) -> None:
    """Seek to the data of the zip member whose local header is at `offset`."""
    fh.seek(offset)
    local = fh.read(30)
    if len(local) < 30 or local[:4] != b"PK\x03\x04":
        raise UnpackError("bad local file header")
    fh.seek(offset + 30 + int.from_bytes(local[26:28], "little") + int.from_bytes(local[28:30], "little"))


def read_zip_member(path: str, info: zipfile.ZipInfo) -> bytes:
    """The bytes of a stored or deflated member of the zip at `path`, inflated by the fastest inflater here
    (python-isal's, about twice zlib's speed: zipfile's own read uses zlib), bounded by its declared size and its
    CRC-32 checked; an UnpackError (or the inflater's error) when it is damaged. Other methods: zipfile's read."""
    import zlib

    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        with zipfile.ZipFile(path) as z:
            return z.read(info)
    fast = _isal() or zlib
    with open(path, "rb") as fh:
        _local_data(fh, info.header_offset)
        raw = fh.read(info.compress_size)
    if len(raw) != info.compress_size:
        raise UnpackError("truncated member data")
    if info.compress_type == zipfile.ZIP_DEFLATED:
        inflater = fast.decompressobj(-15)
        data = inflater.decompress(raw, info.file_size + 1)
        if len(data) > info.file_size or not inflater.eof:
            raise UnpackError(f"member data not its declared {info.file_size} bytes")
    else:
        data = raw
    if len(data) != info.file_size or fast.crc32(data) != info.CRC:
        raise UnpackError("member data does not match its CRC-32")
    return data


def _zip_head(fh: IO[bytes], ref: list[Any]) -> bytes:
    """The first 264 bytes of a stored or deflated zip member (fewer when it is shorter), inflating no more."""
    import zlib

    _local_data(fh, ref[1])
    left = ref[3]
    if ref[2] == zipfile.ZIP_STORED:
        return fh.read(min(left, 264))
    inflater, head = zlib.decompressobj(-15), b""
    while len(head) < 264 and left > 0 and not inflater.eof:
        chunk = fh.read(min(left, 1024))
        if not chunk:
            break
        left -= len(chunk)
        head += inflater.decompress(chunk, 264 - len(head))
    return head


def _inflate(ref: list[Any], f: str, name: str) -> None:
    """Write a pending zip member to `f` (inflated, bounded by its declared size, its CRC-32 checked) under a
    temporary name and renamed, so a reader sees all of it or none; its sha256 kept in this process (and in a
    file beside it when the main process asked for it)."""
    import zlib

    from analyzer.errors import AnalyzerError

    zpath, offset, method, csize, size, crc = ref[:6]
    if method == "squashfs":  # (one too large to be read into memory: squashfs_member)
        _unsquash(ref, name, f)
        return
    tmp = f"{f}.{os.getpid()}.tmp"
    damaged: tuple[type[BaseException], ...] = (OSError, UnpackError, *zlib_error())
    digest, check, done = hashlib.sha256(), 0, 0
    try:
        with open(zpath, "rb") as fh, open(tmp, "wb") as out:
            if method == "ar":  # a static library's member: its bytes as they are
                fh.seek(offset)
            else:
                _local_data(fh, offset)
            fast = _isal()
            inflater = (fast or zlib).decompressobj(-15) if method == zipfile.ZIP_DEFLATED else None
            crc32 = (fast or zlib).crc32
            left = csize
            while left > 0 or (inflater is not None and inflater.unconsumed_tail):
                if inflater is not None and inflater.unconsumed_tail:
                    piece = inflater.decompress(inflater.unconsumed_tail, 1 << 22)
                else:
                    chunk = fh.read(min(left, 1 << 20))
                    if not chunk:
                        raise UnpackError("truncated member data")
                    left -= len(chunk)
                    piece = chunk if inflater is None else inflater.decompress(chunk, 1 << 22)
                done += len(piece)
                if done > size:
                    raise UnpackError(f"member data longer than its declared {size} bytes")
                check = crc32(piece, check)
                digest.update(piece)
                out.write(piece)
            if inflater is not None and not inflater.eof:
                raise UnpackError("truncated deflate stream")
        if done != size:
            raise UnpackError(f"member data is {done} bytes, not its declared {size}")
        if crc is not None and check != crc:
            raise UnpackError("bad CRC-32")
        os.replace(tmp, f)
        _digest_taken(name, digest.hexdigest(), method != "ar" and len(ref) > 7 and bool(ref[7]))  # (a library's
        # row holds its digest itself)
    except damaged as e:
        _remove(tmp)
        what = "container member" if method == "ar" else "zip member"
        raise AnalyzerError(f"corrupt or truncated {what} ({e})", name) from None


_IMAGES: dict[tuple[str, int], Any] = {}  # (image file, base) → its squashfs Image, open in this process


def _image_open(path: str, base: int) -> Any:
    """The squashfs image this process reads members from, kept open with its decompressed metadata and
    fragments (a worker given a snap's binaries one after another parses it once); opened again when the file
    changed. At most four are kept."""
    from analyzer.load.squashfs import Image

    st = os.stat(path)
    stamp = (st.st_size, st.st_mtime_ns, st.st_ino)
    image = _IMAGES.pop((path, base), None)
    if image is not None and image.stamp == stamp:
        _IMAGES[(path, base)] = image
        return image
    if image is not None:
        image.fh.close()
    if len(_IMAGES) >= 4:
        for old in _IMAGES.values():
            old.fh.close()
        _IMAGES.clear()
    fh = open(path, "rb")  # noqa: SIM115 - kept open with the image (closed when it is dropped)
    try:
        image = Image(fh, base, os.fstat(fh.fileno()).st_size, lambda n: None)
    except BaseException:
        fh.close()
        raise
    image.stamp = stamp
    _IMAGES[(path, base)] = image
    return image


def squashfs_member(ref: list[Any], name: str, head: int = 0) -> bytes | None:
    """The bytes of a pending squashfs member (its first `head` when given), decompressed here into memory;
    None for one larger than READ_IN_PLACE (the caller has it written to a file: resolve). AnalyzerError when
    the image is damaged where the member lies."""
    if head:
        return _unsquash(ref, name, None, head)
    return None if ref[4] > READ_IN_PLACE else _unsquash(ref, name, None)


def _unsquash(ref: list[Any], name: str, f: str | None, head: int = 0) -> bytes | None:
    """A pending squashfs member read again from its image (its inode, its blocks, exactly its recorded size):
    into memory (`f` None: its bytes returned), or to the file `f` (_inflate's contract: under a temporary name
    and renamed). Its sha256 kept in this process, and in a file beside it when the main process asked."""
    from analyzer.errors import AnalyzerError
    from analyzer.load.squashfs import EXT_FILE, FILE, SquashfsError

    path, inode, _, base, size = ref[:5]
    tmp = f"{f}.{os.getpid()}.tmp" if f else ""
    digest, parts, done = hashlib.sha256(), [], 0
    try:
        image = _image_open(path, base)
        kind, fields, cursor = image.inode(inode)
        if kind not in (FILE, EXT_FILE):
            raise SquashfsError("its inode is no longer a file's")
        length, reader = image.open(kind, fields, cursor)
        if length != size:
            raise SquashfsError(f"its size is {length}, not the {size} it had")
        if head:
            return reader.head(head)
        with open(tmp, "wb") if tmp else contextlib.nullcontext() as out:
            while chunk := reader.read(1 << 20):
                done += len(chunk)
                digest.update(chunk)
                if out is None:
                    parts.append(chunk)
                else:
                    out.write(chunk)
        if done != size:
            raise SquashfsError(f"{done} bytes, not its {size}")
        if tmp and f:
            os.replace(tmp, f)
        _digest_taken(name, digest.hexdigest(), len(ref) > 9 and bool(ref[9]))
        return b"".join(parts) if not tmp else None
    except (OSError, SquashfsError) as e:
        if tmp:
            _remove(tmp)
        raise AnalyzerError(f"corrupt or truncated squashfs member ({e})", name) from None


def known_members(root: str, container: str, manifest: list[list[Any]], write: bool = True) -> None:
    """Members whose facts the result cache has, known by their digests only: one file for the container
    (name → digest, kind, layer), so that an unchanged container is not unpacked again (analyzer/load/sources.py),
    kept in this process too; `write=False`: only here (no worker will analyse one of them)."""
    table = {m[0]: [m[1], m[2], m[3]] for m in manifest}
    f = member_file(root, container) + ".members"
    _KNOWN[f] = table
    if write:
        with open(f, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(table))  # one write (json.dump writes piece by piece: 3 ms a container)


_KNOWN: dict[str, dict[str, list[Any]]] = {}


def _known(name: str) -> list[Any] | None:
    root = os.environ.get(UNPACK_ENV)
    if not root or SEP not in name:
        return None
    outer = name.split(SEP, 1)[0]
    f = member_file(root, outer) + ".members"
    if f not in _KNOWN:
        try:
            with open(f, encoding="utf-8") as fh:
                _KNOWN[f] = json.load(fh)
        except (OSError, ValueError):
            _KNOWN[f] = {}
    return _KNOWN[f].get(name)


_ZIP_NAMES_READ: dict[tuple[str, int, int], frozenset[str]] = {}


def zip_names(container: str) -> frozenset[str] | None:
    """Every regular member's name (as a scan names it) of the zip called `container` — a file, or a container's
    member (`dist.tar!pkg.whl`) — from its central directory, whatever the unpacking has written so far; None
    when it is no zip or cannot be read."""
    from analyzer import load
    from analyzer.errors import AnalyzerError

    try:
        f = load._member(container)
        st = os.stat(f)
        key = (f, st.st_size, st.st_mtime_ns)
        if key not in _ZIP_NAMES_READ:
            with open_zip(f) as z:
                names = (clean_name(i.filename) for i in z.infolist() if not i.is_dir())
                if len(_ZIP_NAMES_READ) > 64:
                    _ZIP_NAMES_READ.clear()
                _ZIP_NAMES_READ[key] = frozenset(n for n in names if n is not None)
        return _ZIP_NAMES_READ[key]
    except (OSError, zipfile.BadZipFile, ValueError, AnalyzerError, UnpackError):
        return None


def member_digest(name: str) -> tuple[str, str] | None:
    """(sha256, kind) of a member known only by its digest (known_members), or None."""
    k = _known(name)
    return (k[0], k[1]) if k else None


def member_layer(name: str) -> str | None:
    """The image layer that put this member in the final filesystem (its digest, or its path in a docker
    save tarball), or None for members of other containers."""
    root = os.environ.get(UNPACK_ENV)
    if not root or SEP not in name:
        return None
    k = _known(name)
    if k is not None:
        return k[2] if isinstance(k[2], str) else None
    row = _listed(root, name)
    if row is not None:
        return row[8] if len(row) > 8 else None
    try:
        with open(member_file(root, name) + ".layer", encoding="utf-8") as fh:
            return fh.read()
    except OSError:
        return None




def member_error(name: str) -> str | None:
    """Why a container (or a member) found in a walk could not be unpacked, when it could not. (Worker
    processes start before the unpacking ends: the error files are looked for, not announced.)"""
    root = os.environ.get(UNPACK_ENV)
    if not root:
        return None
    try:
        with open(member_file(root, name) + ".error", encoding="utf-8") as fh:
            return fh.read()
    except OSError:
        return None


def _peek(path: str, n: int = 264) -> bytes:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return b""
        return os.read(fd, n)
    finally:
        os.close(fd)


def _iso9660(path: str) -> bool:
    """Whether the file holds an ISO 9660 image: its primary volume descriptor's `CD001` at 32 KiB + 1."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0x8001)
            return fh.read(5) == b"CD001"
    except OSError:
        return False


def _decompressed_head(head: bytes, path: str) -> bytes:
    """The first bytes after decompression (to tell a .tar.gz or a gzip-compressed program from a .gz of a man
    page). A gzip stream's from its first 4 KiB when they hold them (a directory walk asks this of every .gz:
    10 µs, not 130 µs, each), else from the standard reader."""
    import zlib

    if head.startswith(b"\x1f\x8b"):
        with contextlib.suppress(OSError, zlib.error):
            with open(path, "rb") as fh:
                inner = zlib.decompressobj(wbits=31).decompress(fh.read(4096), 512)
            if len(inner) == 512:
                return inner
    try:
        with _open_compressed(path, fast=False) as f:  # (the standard reader gives what a damaged stream has)
            return f.read(512)
    except Exception:  # noqa: BLE001 - any damage (zlib, lzma, zstd errors): then it is not a container we read
        return b""


def kind_of(path: str, by_name: bool = False) -> str | None:
    """The container kind of a file or directory: tar, zip, deb, ar, rpm, oci (layout directory), or None.
    `by_name` (a directory walk's files: its image layouts are asked without it): only names with a container's
    extension are looked at."""
    if by_name and not path.lower().endswith(EXTENSIONS):
        return None  # (before any stat: a walk asks this of every file)
    if os.path.isdir(path):
        return "oci" if os.path.isfile(os.path.join(path, "oci-layout")) and \
            os.path.isfile(os.path.join(path, "index.json")) else None
    try:
        head = _peek(path)
    except OSError:
        return None
    if head.startswith(b"!<arch>\n"):
        return "deb" if head[8:24].rstrip(b" ").rstrip(b"/") == b"debian-binary" else "ar"  # (GNU ar adds a /)
    found = next((kind for magic, kind in _MAGIC_KINDS if head.startswith(magic)), None)
    if found is not None:
        return found
    if (appimage := appimage_type(head)) is not None:
        return appimage  # (a type 1's runtime is in an ISO 9660 image's system area, its files in the image)
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    if head.startswith((b"\x1f\x8b", b"\xfd7zXZ\x00", b"BZh", b"\x28\xb5\x2f\xfd")):
        inner = _decompressed_head(head, path)
        if len(inner) >= 262 and inner[257:262] == b"ustar":
            return "tar"
        if sniff(inner[:264]) is not None:  # one program compressed (`tool-linux-amd64.gz`, as releases ship them)
            return "compressed"
        if inner.startswith(_CPIO):  # a cpio archive compressed (a macOS package's Payload)
            return "cpio"
    if len(head) == 264 and sniff(head) is None and _iso9660(path):  # (a regular file: _peek reads no FIFO)
        return "iso"
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1") and path.lower().endswith((".msi", ".msm")):
        return "msi"  # (an OLE compound file: a Word document is one too, so the name must say installer)
    if makeself_head(head):
        return "makeself"  # a self-extracting installer: a shell script, then its compressed tar archives
    if (head.startswith(b"#!") or path.lower().endswith(_ZIP_NAMES)) and sniff(head) is None \
            and zipfile.is_zipfile(path):
        return "zip"  # behind a prefix: a zipapp's #! line, a "fully executable" jar's launcher script
    return None


_ZIP_NAMES = (".zip", ".jar", ".war", ".ear", ".aar", ".whl", ".egg", ".pyz", ".pyzw", ".pex")


def is_image(path: str) -> bool:
    """Whether `path` is a container image: an OCI layout (a directory; or a plain tar or a zip holding
    `oci-layout` and `index.json`, at its root or below one top directory) or a `docker save` tarball (a
    `manifest.json` listing images), as the unpacker reads them, compressed or not. Only the tar's headers are
    read (up to 100,000 of them), or the zip's directory, and its manifest.json; of a compressed tar, its first
    member's name."""
    kind = kind_of(path)
    if kind == "oci":
        return True
    try:
        if kind == "zip":
            with open_zip(path) as zf:
                index = {rel: i for i in zf.infolist()[:100_000] if (rel := clean_name(i.filename)) is not None}
                prefix = _image_prefix(index, {rel.partition("/")[0] for rel in index})
                if prefix is None:
                    return False
                if f"{prefix}oci-layout" in index and f"{prefix}index.json" in index:
                    return True
                with zf.open(index[f"{prefix}manifest.json"]) as f:
                    return _docker_manifest(f.read(MAX_MANIFEST)) is not None
        if kind != "tar":
            return False
        if _peek(path)[257:262] != b"ustar":  # compressed: an image when it starts as one (docker save | gzip)
            return _starts_like_an_image(path)
        with _tar_open(path, mode="r:") as tf:
            names: set[str] = set()
            manifests: dict[str, tarfile.TarInfo] = {}  # (the only headers kept: names do for the rest)
            tops: set[str] = set()
            for k, info in enumerate(tf):
                if k >= 100_000:
                    break
                if (rel := clean_name(info.name)) is not None:
                    names.add(rel)
                    if rel.endswith("manifest.json"):
                        manifests[rel] = info
                    if len(tops) < 2:
                        tops.add(rel.partition("/")[0])
                tf.members = []  # type: ignore[attr-defined]  # (the headers seen are not kept)
            prefix = _image_prefix(names, tops)
            if prefix is None:
                return False
            if f"{prefix}oci-layout" in names and f"{prefix}index.json" in names:
                return True
            manifest = manifests[f"{prefix}manifest.json"]
            held = tf.extractfile(manifest) if manifest.isreg() and manifest.size <= MAX_MANIFEST else None
            return held is not None and _docker_manifest(held.read(MAX_MANIFEST)) is not None
    except UnpackError:
        return True  # (a docker save manifest, malformed: an image that is its error)
    except (OSError, tarfile.TarError, zipfile.BadZipFile, ValueError, RuntimeError):
        return False


def _open_compressed(path: str | None, fileobj: Any = None, fast: bool = True,
                     expect: tuple[str, str] | None = None) -> Any:
    """A reader of the decompressed stream of a gzip/xz/lzma/bzip2/zstd file or stream (from where the stream
    is), or the bytes as they are. `expect`: (what the stream is called, "tar" or "cpio"): bytes that are
    neither a known compression nor that format uncompressed are an UnpackError naming the stream (a .deb's
    data.tar.lz4), not an empty archive."""
    raw: IO[bytes] = fileobj if fileobj is not None else open(path, "rb")  # type: ignore[arg-type]
    at = raw.tell()
    head = raw.read(262)
    raw.seek(at)
    if expect is not None and not head.startswith(_COMPRESSED) and not (
            head[257:262] == b"ustar" if expect[1] == "tar" else head.startswith(b"0707")):
        raise UnpackError(f"{expect[0]}: unknown compression (binlens reads gzip, xz, lzma, bzip2, zstd or none)")
    if head.startswith(b"\x5d\x00\x00") and head[257:262] != b"ustar":  # lzma's own format (.lzma, before xz)
        return lzma.LZMAFile(raw, format=lzma.FORMAT_ALONE)
    if head.startswith(b"\x1f\x8b"):
        if fast and _isal() is not None:  # ISA-L's gzip reader when installed (about twice zlib's speed)
            from isal import igzip

            return igzip.IGzipFile(fileobj=raw)  # every member of a multi-member stream (Alpine .apk)
        return gzip.GzipFile(fileobj=raw)
    if head.startswith(b"\xfd7zXZ\x00"):
        return _XzAhead(raw) if fast else lzma.LZMAFile(raw)
    if head.startswith(b"BZh"):
        return bz2.BZ2File(raw)
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        try:
            import zstandard
        except ImportError:
            raise UnpackError("zstd compression needs the zstandard package") from None
        return zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
    return raw


_GRANULE = 1 << 16  # a multiple of mmap's allocation granularity on the usual systems (4 KiB, 64 KiB)

_COMPRESSED = (b"\x1f\x8b", b"\xfd7zXZ\x00", b"BZh", b"\x28\xb5\x2f\xfd", b"\x5d\x00\x00")


def clean_name(name: str) -> str | None:
    """A member name as a relative path inside the container, or None when it would escape it (`..` past its
    top, which tar skips). An absolute name is taken from the top, as tar (without --absolute-names), unzip and
    docker applying a layer take it: skipped, its file would be missing from the audit though it is installed."""
    name = name.replace("\\", "/").lstrip("/")
    norm = posixpath.normpath(name)
    if norm in (".", "") or norm.startswith("../") or norm == "..":
        return None
    return norm


def _digest_at(path: str, at: int, size: int, algo: str) -> str | None:
    """The digest (md5, sha256) of `size` bytes at `at` in a file, as a package database names a file's content,
    or None."""
    if algo not in ("md5", "sha256"):
        return None
    h = hashlib.new(algo, usedforsecurity=False)
    try:
        with open(path, "rb") as fh:
            fh.seek(at)
            while size > 0 and (chunk := fh.read(min(size, 1 << 20))):
                h.update(chunk)
                size -= len(chunk)
    except OSError:
        return None
    return h.hexdigest() if size == 0 else None


PACKAGES: dict[str, dict[str, Any]] = {}  # a package found inside a container (its name) → packages.identity
# an image (its name) → its distribution and the OS packages installed in it (installed.read; none without a
# package database), and an image's member → (image, index of the package that owns it): for the reports
INSTALLED: dict[str, dict[str, Any]] = {}
OWNERS: dict[str, tuple[str, int]] = {}
# a file of a directory tree scanned (its path as reports name it) → (the directory, the file's path as walked,
# the packages listing it: installed.read_directory's candidates), for every file a package lists, binaries or
# not: checked (installed.verify), and an entry of OWNERS, once a scan reports it (a binary, or a member of a
# container the tree holds there: pipeline._installed_owner); the verdict kept in DIRECTORY_VERDICTS
DIRECTORY_OWNERS: dict[str, tuple[str, str, list[tuple[int, str, str]]]] = {}
DIRECTORY_VERDICTS: dict[str, tuple[str, int] | None] = {}
# an image's member that is a container (a static library, a wheel, a tarball an installed package put there) →
# its owner as in OWNERS: each of its members, as it is unpacked, is that package's too (a container inside
# inherits it; a member already owned keeps its owner)
CONTAINER_OWNERS: dict[str, tuple[str, int]] = {}


class Unpacker:
    """Expands containers into (member name, whether it can be a binary) and writes those members into `root`."""

    def __init__(self, root: str, limits: Limits | None = None, platform: str = "", image: str = "") -> None:
        self.root = root
        self.limits = limits or Limits()
        self.platform = platform  # os/arch[/variant] chosen in a multi-platform image index
        self.image = image  # the image chosen in a file of several, by a name or tag it is given (--image)
        self._layer_names: dict[str, str] = {}  # a layer's file → how the image names it (its digest)
        self.digests: dict[str, str] = {}  # member name → sha256 of what was written
        self.errors = 0  # containers (or members) that could not be unpacked
        self.image_env: dict[str, str] = {}  # the environment the image's config sets (its Env), last image read
        self.pending: set[str] = set()  # zip members left for the workers to inflate: their digests taken there
        self.manifests: list[Any] = []  # member lists for the result cache waiting for those digests
        self.keep_digests = False  # whether those digests are wanted here (set when a result cache is open)
        self._packs: dict[str, tuple[str, int, int]] = {}  # container → its pack file, and the pack's and table's fds
        self._packed: set[str] = set()  # members appended to a pack
        self._names: set[str] = set()  # the names of the members kept so far (see _occurrence)
        self._copies: dict[str, int] = {}  # a name as its container gives it → how many copies kept so far
        self._latest: dict[str, str] = {}  # a member's name as its container gives it → its latest copy's name
        self._rows: dict[str, dict[str, list[Any]]] = {}  # pack → its members' rows (a hard link shares one)
        self._given: list[str] = []  # the names given so far by the container being expanded, nested ones too

    # ------------------------------------------------------------ public

    def expand(self, path: str, name: str | None = None, depth: int = 0) -> list[str]:
        """The member names of the container at `path` (named `name`), nested containers expanded, in
        container order. UnpackError when the container is unreadable or breaks a limit."""
        return list(self.iter_expand(path, name, depth))

    def iter_expand(self, path: str, name: str | None = None, depth: int = 0) -> Iterator[str]:
        """expand(), each member's name given as soon as the member is written (a scan analyses the first
        members while the rest of a large package is still being decompressed). UnpackError when the container
        is unreadable or breaks a limit: raised when it is met, after the members before it were given."""
        name = name or path
        kind = kind_of(path)
        if kind is None:
            raise UnpackError("not a container")
        budget = _Budget(self.limits, _stored_size(path))
        if depth == 0:  # (names repeat only within one container: one named twice is listed twice alike)
            self._names, self._latest, self._copies, self._given = set(), {}, {}, []
        yield from self._expand(kind, path, name, depth, budget)

    def error(self, name: str, problem: str) -> None:
        with open(member_file(self.root, name) + ".error", "w", encoding="utf-8") as fh:
            fh.write(problem)
        self.errors += 1

    # ------------------------------------------------------------ kinds

    def _expand(self, kind: str, path: str, name: str, depth: int, budget: _Budget) -> Iterator[str]:
        if depth > self.limits.depth:
            raise UnpackError(f"containers nested deeper than {self.limits.depth}")
        owner = CONTAINER_OWNERS.get(name)  # (a static library an image's package installed: its members are the
        members = self._members(kind, path, name, budget)  # package's)
        damaged: tuple[type[BaseException], ...] = (OSError, EOFError, tarfile.TarError, zipfile.BadZipFile,
                                                    lzma.LZMAError, *zlib_error(), struct.error, ValueError,
                                                    KeyError, RuntimeError)
        while True:
            try:
                m = next(members)
            except StopIteration:
                return
            except UnpackError:
                raise
            except MemoryError:  # (not damage: what it holds needs more memory than this process may take)
                raise UnpackError(f"{kind} needs more memory to read than this process may take") from None
            except damaged as e:
                raise UnpackError(f"corrupt or truncated {kind} ({type(e).__name__}: {e})") from None
            except Exception as e:  # noqa: BLE001 - a decompressor's own error type (zstandard's): hostile input
                raise UnpackError(f"corrupt {kind} ({type(e).__name__}: {e})") from None
            f = member_file(self.root, m)
            nested = kind_of(f) if os.path.isfile(f) else None
            if owner is not None:
                (CONTAINER_OWNERS if nested is not None else OWNERS).setdefault(m, owner)
            self._given.append(m)
            yield m
            if nested is not None and nested in ("deb", "rpm", "zip", "tar"):
                from analyzer.load.packages import identity, kind_by_name

                if (package := kind_by_name(m)) and (found := identity(f, package)) is not None:
                    PACKAGES[m] = found  # (a package inside a container: who it is, for the SBOM formats)
            if nested is not None:
                try:
                    yield from self._expand(nested, f, m, depth + 1, budget)
                except UnpackError as e:
                    self.error(m, str(e))

    def _members(self, kind: str, path: str, name: str, budget: _Budget) -> Iterator[str]:
        """The members of one container, each written before its name is given."""
        if kind == "tar":
            image = self._tar_image(path, name, budget)
            if image is not None:
                yield from image
            else:
                with _open_compressed(path) as stream:
                    yield from self._tar(stream, name, budget, packages=True)
        elif kind == "zip":
            yield from self._zip(path, name, budget)
        elif kind in ("deb", "ar"):
            yield from self._ar(path, name, budget, deb=kind == "deb")
        elif kind == "rpm":
            yield from self._rpm(path, name, budget)
        elif kind == "oci":
            yield from self._oci_dir(path, name, budget)
        elif kind in ("squashfs", "appimage"):
            yield from self._squashfs(path, name, budget, appimage=kind == "appimage")
        elif kind == "compressed":
            yield from self._compressed(path, name, budget)
        elif kind == "makeself":
            yield from self._makeself(path, name, budget)
        elif kind == "msi":
            yield from self._msi(path, name, budget)
        elif kind in ("7z", "cab", "iso", "appimage1"):
            yield from self._libarchive(path, name, budget, kind)
        elif kind == "xar":
            yield from self._xar(path, name, budget)
        elif kind in ("cpio", "pbzx"):
            from analyzer.load.xar import Pbzx, XarError

            try:
                with open(path, "rb") as raw, (_open_compressed(None, raw) if kind == "cpio" else
                                               contextlib.nullcontext(Pbzx(raw))) as stream:
                    yield from self._cpio(stream, name, budget)
            except XarError as e:
                raise UnpackError(str(e)) from None
        else:
            raise UnpackError(f"unknown container kind {kind}")

    def _write(self, name: str, stream: _Reader, size: int, budget: _Budget, pack: str | None = None,
               layer: str | None = None) -> str | None:
        """Copy a member that can be a binary or a container into the unpack directory; its name (as every name
        read from a file: bytes that are not UTF-8 and control characters written \\xNN), or None. With `pack`
        (the container's name), a binary is appended to the container's one pack file and listed in its table
        (_listed), not written to a file of its own (creating a file per member cost more than copying it)."""
        name = name_text(name.encode("utf-8", "surrogateescape"))
        head = stream.read(264)
        kind = sniff(head)
        if not (kind is not None or _looks_container(head) or _maybe_zipapp(head)):  # (a Java class: not 0xCAFEBABE)
            return None
        if _compressed_non_tar(head):  # a .gz man page: read as a container only when it holds a tar
            return None
        if size > self.limits.member_bytes:
            raise UnpackError(f"member {name} is {size} bytes, over the limit of {self.limits.member_bytes}")
        budget.take(size)
        if kind is None and _maybe_zipapp(head):
            return self._zipapp(name, head, stream, size, layer)
        if layer is None:
            name = self._occurrence(name)
        digest = hashlib.sha256(head)
        if pack is not None and kind is not None and not is_appimage(head):  # (an AppImage: written, to be expanded)
            return self._append(pack, name, kind, head, stream, size, digest, layer)
        with open(member_file(self.root, name), "wb") as out:
            out.write(head)
            left = size - len(head)
            while left > 0:
                chunk = stream.read(min(left, 1 << 20))
                if not chunk:
                    break
                out.write(chunk)
                digest.update(chunk)
                left -= len(chunk)
        self.digests[name] = digest.hexdigest()
        return name

    def _zipapp(self, name: str, head: bytes, stream: _Reader, size: int, layer: str | None) -> str | None:
        """A #! script that may be a zip behind its first line (a zipapp, a PEX file, as images and packages
        install them, `usr/local/bin/app`): kept as a container when it is one, else nothing. Scripts up to
        PROBE_IN_MEMORY are looked at in memory for a zip's end record (an image holds thousands of them: none
        is written out); a larger one is written out, then looked at."""
        data = b""
        if size <= PROBE_IN_MEMORY:
            data = head + _read_exactly(stream, size - len(head))
            if b"PK\x05\x06" not in data[-(0xFFFF + 22):]:
                return None
        probe = member_file(self.root, name) + ".probe"
        digest = hashlib.sha256(head)
        with open(probe, "wb") as out:
            if data:
                out.write(data)
                digest.update(data[len(head):])
            else:
                out.write(head)
                left = size - len(head)
                while left > 0 and (chunk := stream.read(min(left, 1 << 20))):
                    out.write(chunk)
                    digest.update(chunk)
                    left -= len(chunk)
        if kind_of(probe) != "zip":
            os.unlink(probe)
            return None
        if layer is None:
            name = self._occurrence(name)
        os.replace(probe, member_file(self.root, name))
        self.digests[name] = digest.hexdigest()
        return name

    def _occurrence(self, name: str) -> str:
        """A kept member's name, unique in the run: a container may hold one name twice (`tar -r` appends a
        newer copy; a zip may repeat a name), and each copy is its own artifact with its own bytes — the second
        named `NAME#2`, as a static library's repeated objects are and as GNU tar's --occurrence counts them.
        (Both copies were reported under one name with the bytes of whichever was unpacked last when analysed:
        the first one's facts were never given.) In an image, a path repeated in later layers is the final
        filesystem's one file (_image_layers)."""
        k = self._copies.get(name, 0) + 1  # (counted per name: 20,000 copies of one name cost 30 s counted afresh)
        unique = name if k == 1 else f"{name}#{k}"
        while unique in self._names:  # (a member whose own name is NAME#k: rare)
            k += 1
            unique = f"{name}#{k}"
        self._copies[name] = k
        self._names.add(unique)
        self._latest[name] = unique
        return unique

    def _link(self, pack: str, name: str, target: str, budget: _Budget) -> str | None:
        """A tar hard link to a binary appended earlier to the same pack, or to a container written out earlier:
        another artifact, the same bytes (the row shared, or the file linked: nothing copied; its size counts
        against the limits, so links cannot multiply the work unbounded). None when the target is neither (not
        kept, or not in this container)."""
        old = self._latest.get(name_text(target.encode("utf-8", "surrogateescape")), "")
        row = self._rows.get(pack, {}).get(old)
        if row is not None and pack in self._packs:
            return self._share(pack, self._occurrence(name_text(name.encode("utf-8", "surrogateescape"))), row,
                               budget)
        written = member_file(self.root, old) if old else ""
        if not written or not os.path.isfile(written):
            return None
        # a container written out to be expanded (a wheel in a tarball): its file linked under the new name
        budget.take(os.path.getsize(written))
        name = self._occurrence(name_text(name.encode("utf-8", "surrogateescape")))
        os.link(written, member_file(self.root, name))
        if old in self.digests:
            self.digests[name] = self.digests[old]
        return name

    def _share(self, pack: str, name: str, row: list[Any], budget: _Budget) -> str:
        """List `name` in the pack's table with another member's row (a hard link: the same bytes)."""
        budget.take(row[4])
        os.write(self._packs[pack][2], (json.dumps({name: row}) + "\n").encode())
        _known_row(self._packs[pack][0], name, row)
        self.digests[name] = row[7]
        self._packed.add(name)
        self._rows[pack][name] = row
        return name

    def _pack_files(self, pack: str) -> tuple[str, int, int]:
        """The pack file of a container and its table (path, and both open for appending), made on first use."""
        files = self._packs.get(pack)
        if files is None:
            base = member_file(self.root, pack)
            flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
            files = self._packs[pack] = (base + ".pack", os.open(base + ".pack", flags, 0o600),
                                         os.open(base + ".members.jsonl", flags, 0o600))
        return files

    def _append(self, pack: str, name: str, kind: str, head: bytes, stream: _Reader, size: int,
                digest: Any, layer: str | None = None) -> str:
        """Append a binary member to the pack file of its container and its row to the container's table
        (a line of JSON, written before the member is handed out, so a worker always finds it)."""
        path, fd, table = self._pack_files(pack)
        start, done = os.lseek(fd, 0, os.SEEK_END), 0
        if size > READ_IN_PLACE and start % _GRANULE:  # (a large member starts on a page: it can be mapped)
            start += os.write(fd, bytes(_GRANULE - start % _GRANULE))
        chunk = head
        while True:
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view):]
            done += len(chunk)
            if done >= size:
                break
            chunk = stream.read(min(size - done, 1 << 20))
            if not chunk:
                break
            digest.update(chunk)
        self.digests[name] = digest.hexdigest()
        self._packed.add(name)
        row = [path, start, "ar", done, done, None, kind, self.digests[name]] + ([layer] if layer else [])
        line = (json.dumps({name: row}) + "\n").encode()
        os.write(table, line)
        _known_row(path, name, row)
        self._rows.setdefault(pack, {})[name] = row
        return name

    def close_packs(self) -> None:
        """Close the pack files and tables of the containers unpacked so far."""
        for pack in list(self._packs):
            self._close_pack(pack)

    def _close_pack(self, pack: str) -> None:
        self._rows.pop(pack, None)  # (a hard link names a member of its own stream)
        files = self._packs.pop(pack, None)
        if files is not None:
            os.close(files[1])
            os.close(files[2])

    def _defer(self, name: str, raw: IO[bytes], ref: list[Any], budget: _Budget) -> str | None:
        """A zip member that is a binary: its first bytes inflated here, the rest left pending (see pending()),
        its CRC-32 checked where it is inflated. None when it is not a binary (the caller writes it, if it is a
        container), "" when it is neither. An UnpackError when even its first bytes are corrupt."""
        head = _zip_head(raw, ref)
        kind = sniff(head)
        if len(head) < 264 and len(head) != ref[4]:
            return None  # (a short read: the caller's reader says what is wrong)
        if kind is None or is_appimage(head):  # (an AppImage: written by the caller, to be expanded)
            return None if _looks_container(head) or _maybe_zipapp(head) else ""
        if ref[4] > self.limits.member_bytes:
            shown = name_text(name.encode("utf-8", "surrogateescape"))
            raise UnpackError(f"member {shown} is {ref[4]} bytes, over the limit of {self.limits.member_bytes}")
        return self._pending_row(name, [*ref, kind, self.keep_digests], budget)

    def _tar(self, stream: Any, name: str, budget: _Budget, prefix: str = "", packages: bool = False) -> Iterator[str]:
        try:
            yield from self._tar_members(stream, name, budget, prefix, packages)
        finally:
            self._close_pack(name)

    def _tar_members(self, stream: Any, name: str, budget: _Budget, prefix: str,
                     packages: bool = False) -> Iterator[str]:
        from analyzer.load import installed

        database = installed.Tracker() if packages and _holds_packages(name) else None
        final: dict[str, str] = {}  # (read for packages) a kept member's path in the tarball → its name
        with _tar_open(fileobj=stream, mode="r|") as tf:
            for info in tf:
                budget.count()
                at = clean_name(info.name) if database is not None and (info.issym() or info.isreg()) else None
                if at and database is not None and (info.issym() or installed.wanted(at)) \
                        and database.entry(at, info, tf):  # fmt: skip
                    budget.take(info.size)  # (read, or decompressed to read past it: counted)
                    continue  # (a package database's file: read, and not a binary)
                if info.islnk():  # a hard link: another name of a member before it (tar -x makes both files)
                    rel, target = clean_name(info.name), clean_name(info.linkname)
                    if rel is not None and target is not None and \
                            (got := self._link(name, f"{name}{SEP}{prefix}{rel}", f"{name}{SEP}{prefix}{target}",
                                               budget)):
                        final[rel] = got
                        yield got
                    continue
                if not info.isreg():  # directories, symbolic links (which could point out), devices, FIFOs; the
                    budget.take(info.size)  # data of a type tar does not know is decompressed to skip it: counted
                    continue
                rel = at if database is not None else clean_name(info.name)
                if rel is None:
                    continue
                f = tf.extractfile(info)
                if f is None:
                    continue
                got = self._write(f"{name}{SEP}{prefix}{rel}", f, info.size, budget, pack=name)
                if got:
                    final[rel] = got
                    yield got
                else:  # not kept, but a stream is decompressed to read past it: its bytes count (a bomb of zeros)
                    budget.take(info.size)
        if database is not None and database.files:
            self._installed_in(name, database, final, self._rows.get(name, {}))

    def _zip(self, path: str, name: str, budget: _Budget) -> Iterator[str]:
        # a binary member of a zip file on disk is left for the analysing process to inflate (pending): zip
        # members are independent, so the workers decompress a wheel in parallel, not the main process
        defer = os.path.isfile(path)
        path = os.path.abspath(path)
        with open_zip(path, self.limits.members) as zf, open(path, "rb") as raw:
            if (image := self._zip_image_layers(zf, name, budget)) is not None:  # an OCI layout zipped
                zf.close()
                yield from self._image_layers(*image, name, budget)
                return
            infos = zf.infolist()
            from analyzer.load import installed

            database = installed.Tracker() if _holds_packages(name) else None
            final: dict[str, str] = {}  # (read for packages) a kept member's path in the zip → its name
            for info in infos:
                budget.count()
                if info.is_dir() or (info.external_attr >> 16) & 0o170000 == 0o120000:
                    continue  # directories and symlinks
                rel = clean_name(info.filename)
                if rel is None:
                    continue
                if info.flag_bits & 0x1:
                    raise UnpackError(f"member {info.filename} is encrypted")
                if database is not None and installed.wanted(rel):  # (a package database's file: not a binary)
                    if database.file(rel, info.file_size, functools.partial(_zip_read, zf, info)):
                        budget.take(info.file_size)
                    continue
                member = f"{name}{SEP}{rel}"
                got = None
                if defer and info.compress_type in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                    ref = [path, info.header_offset, info.compress_type, info.compress_size, info.file_size, info.CRC]
                    got = self._defer(member, raw, ref, budget)
                if got is None:  # a container (or a member not deflated, or not in a file): written here
                    with zf.open(info) as f:
                        got = self._write(member, _Capped(f, info.file_size), info.file_size, budget)
                if got:
                    final[rel] = got
                    yield got
            if database is not None and database.files:
                self._installed_in(name, database, final, {})

    def _installed_in(self, name: str, database: Any, final: dict[str, str], rows: dict[str, list[Any]]) -> None:
        """The packages a tarball or a zip holds installed (a root filesystem `docker export` or debootstrap
        made, an AWS Lambda zip pip installed into, an application with its node_modules), read from its
        package databases as a directory tree's are (installed.read: `database`, the files of it read as the
        members went by), and the owner of each member (`final`: path → member name) they list; a binary's
        digest read where it lies (`rows`: a pack's), a container's from its file; a zip's binaries, inflated
        by the workers, are not checked (taken as listed)."""
        from analyzer.load import installed

        found, owners = installed.read(database, final, functools.partial(self._member_digest, rows))
        if found is None:
            return
        INSTALLED[name] = {**found, "platform": None, "source": "archive"}
        self._own(name, owners, rows)

    def _member_digest(self, rows: dict[str, list[Any]], member: str, algo: str) -> str | None:
        """A member's digest (md5, sha256) as a package database names one: the sha256 taken as it was written
        (not taken again), else read where it lies (`rows`: a pack's or an uncompressed layer's), else a
        container's, written out to be unpacked; None when there is none."""
        if algo == "sha256" and self.digests.get(member):
            return self.digests[member]
        row = rows.get(member)
        if row is not None:
            return _digest_at(row[0], row[1], row[3], algo)
        f = member_file(self.root, member)
        return _digest_at(f, 0, os.path.getsize(f), algo) if os.path.isfile(f) else None

    def _own(self, name: str, owners: dict[str, int], rows: dict[str, list[Any]]) -> None:
        """The owners installed.read found in the image or archive `name`: a binary's an entry of OWNERS, a
        container's of CONTAINER_OWNERS (its members are the package's as they are unpacked); and the members
        of an owned container unpacked already (an archive's, as they went by, before its database was read)."""
        owned: dict[str, tuple[str, int]] = {}  # a container a package installed → its owner
        for member, index in owners.items():
            kind = self._kept_as(member, rows)
            if kind == "container":
                owned[member] = CONTAINER_OWNERS[member] = (name, index)
            elif kind == "binary":
                OWNERS[member] = (name, index)
        if owned:
            for n in self._given:
                at = len(n)
                while (at := n.rfind(SEP, 0, at)) > 0:
                    if (owner := owned.get(n[:at])) is not None:
                        if self._kept_as(n, rows) == "binary":
                            OWNERS.setdefault(n, owner)
                        break

    def _kept_as(self, member: str, rows: dict[str, list[Any]]) -> str | None:
        """What a member kept is: "binary" (listed in `rows`, in a pack, a table, left for a worker to inflate,
        or written out), "container" (written out to be unpacked), or None (written out as one might be, and
        none: a .gz)."""
        if member in rows or member in self._packed or member in self.pending or _listed(self.root, member) is not None:
            return "binary"
        f = member_file(self.root, member)
        if not os.path.isfile(f):
            return None
        try:
            if sniff(_peek(f)) is not None:
                return "binary"
        except OSError:
            return None
        return "container" if kind_of(f) is not None else None

    def _ar_members(self, path: str) -> Iterator[tuple[str, int, int]]:
        return _ar_members(path)

    def _ar(self, path: str, name: str, budget: _Budget, deb: bool) -> Iterator[str]:
        if not deb:
            yield from self._static_library(path, name, budget)
            return
        for member, at, size in self._ar_members(path):
            budget.count()
            if member.startswith("data.tar"):
                early = _EARLY.pop((os.path.abspath(path), at, size), None)
                if early is not None:
                    with early as stream:
                        yield from self._tar(stream, name, budget)
                    continue
                with open(path, "rb") as fh, \
                        _open_compressed(None, _Window(fh, at, size), expect=(member, "tar")) as stream:
                    yield from self._tar(stream, name, budget)

    def _in_place(self, fh: IO[bytes], path: str, at: int, size: int, kind: str, shown: str, budget: _Budget,
                  layer: str | None = None) -> list[Any]:
        """The table row of a binary member read where it lies in an uncompressed container (a static library,
        an image layer), within the limits; its sha256 taken when a result cache wants the member list."""
        if size > self.limits.member_bytes:
            raise UnpackError(f"member {shown} is {size} bytes, over the limit of {self.limits.member_bytes}")
        budget.take(size)
        digest = None
        if self.keep_digests:
            fh.seek(at)
            h = hashlib.sha256()
            for left in range(size, 0, -(1 << 20)):
                h.update(fh.read(min(left, 1 << 20)))
            digest = self.digests[shown] = h.hexdigest()
        return [path, at, "ar", size, size, None, kind, digest] + ([layer] if layer else [])

    def _static_library(self, path: str, name: str, budget: _Budget) -> Iterator[str]:
        """A static library's members, listed in one table file instead of written out: each member's place
        in the library, size and kind (and its sha256 when a result cache wants the member list); the process
        that analyses a member reads its bytes from the library (an ar archive is uncompressed). A container
        inside one (rare) is written, to be expanded."""
        seen: dict[str, int] = {}
        table: dict[str, list[Any]] = {}
        names: list[str] = []
        path = os.path.abspath(path)
        with open(path, "rb") as fh:
            for member, at, size in self._ar_members(path):
                budget.count()
                rel = clean_name(member)
                if rel is None:
                    continue
                seen[rel] = seen.get(rel, 0) + 1
                shown = name_text(f"{name}{SEP}{rel if seen[rel] == 1 else f'{rel}#{seen[rel]}'}"
                                  .encode("utf-8", "surrogateescape"))
                fh.seek(at)
                head = fh.read(min(size, 264))
                kind = sniff(head)
                if kind is None:
                    fh.seek(at)
                    got = self._write(shown, _Capped(fh, size), size, budget)
                    if got:
                        names.append(got)
                    continue
                table[shown] = self._in_place(fh, path, at, size, kind, shown, budget)
                names.append(shown)
        if table:
            with open(member_file(self.root, name) + ".members.json", "w", encoding="utf-8") as out:
                out.write(json.dumps(table))
        yield from names

    def _squashfs(self, path: str, name: str, budget: _Budget, appimage: bool) -> Iterator[str]:
        """A squashfs image's regular files (a snap, or what an AppImage's runtime mounts): binaries appended
        to the container's pack as a tarball's are; a second name of one inode shares the first's row."""
        from analyzer.load.squashfs import Image, SquashfsError, appimage_offset

        try:
            with open(path, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                base = appimage_offset(fh.read(64), fh) if appimage else 0
                if base is None:
                    raise SquashfsError("not an AppImage")
                image = Image(fh, base, size, budget.take)
                first: dict[int, str] = {}  # inode → the first name it was met under
                deferred: dict[int, list[Any]] = {}  # inode → the pending row its first name was given
                for rel, kind, fields, cursor, ref in image.walk(budget.count):
                    member = f"{name}{SEP}{rel}"
                    if ref in deferred:  # a hard link to a binary left for a worker: the same row, another name
                        yield self._table_row(name, member, deferred[ref], budget)
                        continue
                    if ref in first:  # a hard link: the same bytes (tar -x and unsquashfs make both names)
                        if (got := self._link(name, member, first[ref], budget)):
                            yield got
                        continue
                    first[ref] = member
                    length, reader = image.open(kind, fields, cursor)
                    head = reader.head(264)
                    found = sniff(head)
                    if found is None and not _looks_container(head) and not _maybe_zipapp(head):
                        budget.take(min(length, 264))  # (no binary, no container: only its first bytes were read)
                        continue
                    if found is not None and not is_appimage(head) and length <= self.limits.member_bytes and \
                            length >= image.block_size:  # (a smaller one is its fragment's: decompressed here)
                        # a binary: decompressed by the process that analyses it, into its memory (its blocks are
                        # independent of every other file's), as a wheel's members are inflated by theirs
                        deferred[ref] = [os.path.abspath(path), ref, "squashfs", base, length, None, found, None,
                                         None, self.keep_digests]  # (no digest yet, no layer; whether to keep one)
                        yield self._table_row(name, member, deferred[ref], budget)
                        continue
                    got = self._write(member, reader, length, budget, pack=name)
                    if got:
                        yield got
                    else:  # (not kept: at most its first block was decompressed to tell)
                        budget.take(min(length, image.block_size))
        except SquashfsError as e:
            raise UnpackError(str(e)) from None
        finally:
            self._close_pack(name)

    def _table_row(self, pack: str, name: str, row: list[Any], budget: _Budget) -> str:
        """A member listed in its container's table (a line, as _append writes them; no file of its own) and
        left for the analysing process to read (a squashfs binary: squashfs_member), its size counted here."""
        name = self._occurrence(name_text(name.encode("utf-8", "surrogateescape")))
        budget.take(row[4])
        os.write(self._pack_files(pack)[2], (json.dumps({name: row}) + "\n").encode())
        self.pending.add(name)
        return name

    def _pending_row(self, name: str, ref: list[Any], budget: _Budget) -> str:
        """A member left for the analysing process to read (its row in a file beside where it would be written:
        pending()), its size counted against the limits here."""
        name = self._occurrence(name_text(name.encode("utf-8", "surrogateescape")))
        budget.take(ref[4])
        with open(member_file(self.root, name) + ".zip", "w", encoding="utf-8") as fh:
            fh.write(json.dumps(ref))
        self.pending.add(name)
        return name

    def _msi(self, path: str, name: str, budget: _Budget) -> Iterator[str]:
        """A Windows Installer package's files: each embedded cabinet (analyzer/load/msi.py) copied out to the
        unpack directory and read as a cabinet, its files named where they install."""
        try:
            import olefile  # noqa: F401 - (the archives extra; analyzer.load.msi imports it where it reads)

            from analyzer.load.msi import Msi, MsiError
        except ImportError:
            raise UnpackError("an MSI package: reading it needs olefile (pip install 'binlens[archives]')") from None
        try:
            with Msi(path) as msi:
                for i, (stream, _) in enumerate(msi.package.cabinets):
                    budget.count()
                    cab = member_file(self.root, f"{name}{SEP}#cabinet{i}")
                    with open(cab, "wb") as out:
                        msi.copy(stream, out, self.limits.member_bytes)
                    try:
                        yield from self._libarchive(cab, name, budget, "cab", rename=msi.package.names)
                    finally:
                        os.unlink(cab)
        except MsiError as e:
            raise UnpackError(str(e)) from None

    def _libarchive(self, path: str, name: str, budget: _Budget, kind: str,
                    rename: dict[str, str] | None = None) -> Iterator[str]:
        """7-Zip, Microsoft cabinet and ISO 9660 archives (a type-1 AppImage's files are an ISO 9660 image),
        read with libarchive (the archives extra: libarchive-c over the system's libarchive), the
        format named so that nothing else is tried: regular files, hard links as other names of them.
        `rename`: an entry's name → the member's (an MSI's cabinet names its files by their keys)."""
        what = {"7z": "7-Zip archive", "cab": "cabinet"}.get(kind, "ISO 9660 image")
        try:
            import logging

            import libarchive

            # its warnings (ARCHIVE_WARN: "Multivolume cabinet file is unsupported") go to Python's logging, whose
            # last-resort handler prints them: a report's errors are binlens's one line, not another library's
            logging.getLogger("libarchive").propagate = False
            logging.getLogger("libarchive").addHandler(logging.NullHandler())
            _utf8_ctype()
        except (ImportError, OSError):  # (libarchive-c raises OSError when the system has no libarchive)
            raise UnpackError(f"a {what}: reading it needs libarchive (pip install 'binlens[archives]', and the "
                              "system's libarchive13)") from None
        formats = {"7z": "7zip", "cab": "cab", "iso": "iso9660", "appimage1": "iso9660"}
        try:
            with libarchive.file_reader(path, format_name=formats[kind], filter_name="none") as archive:
                for index, entry in enumerate(archive):
                    budget.count()
                    raw = _libarchive_name(entry, "pathname") or f"#{index + 1}"
                    rel = clean_name(rename.get(raw, raw) if rename else raw)
                    if rel is None:
                        continue
                    member = f"{name}{SEP}{rel}"
                    if entry.islnk:  # another name of a file before it
                        target = clean_name(_libarchive_name(entry, "hardlink") or "")
                        if target and (got := self._link(name, member, f"{name}{SEP}{target}", budget)):
                            yield got
                        continue
                    if not entry.isreg:
                        continue
                    size = entry.size or 0
                    got = self._write(member, _Blocks(entry.get_blocks(1 << 20), size), size, budget, pack=name)
                    if got:
                        yield got
                    else:  # (not kept: its data is still decompressed to read past it, in a solid archive)
                        budget.take(size)
        except libarchive.ArchiveError as e:
            said = str(getattr(e, "msg", e))
            raise UnpackError(f"{'encrypted' if 'encrypted' in said else 'corrupt'} {what} ({said})") from None
        finally:
            self._close_pack(name)

    def _xar(self, path: str, name: str, budget: _Budget) -> Iterator[str]:
        """A xar archive's regular files (a macOS installer package: its Payloads, cpio archives, are expanded
        in turn as containers), binaries appended to its pack."""
        from analyzer.load.xar import Decoded, XarError, members

        try:
            with open(path, "rb") as fh:
                for rel, at, length, size, style in members(fh, os.fstat(fh.fileno()).st_size):
                    budget.count()
                    clean = clean_name(rel)
                    if clean is None:
                        continue
                    got = self._write(f"{name}{SEP}{clean}", Decoded(fh, at, length, size, style), size, budget,
                                      pack=name)
                    if got:
                        yield got
                    else:  # (not kept: at most one piece decoded to tell)
                        budget.take(min(size, 1 << 22))
        except XarError as e:
            raise UnpackError(str(e)) from None
        finally:
            self._close_pack(name)

    def _compressed(self, path: str, name: str, budget: _Budget) -> Iterator[str]:
        """One program compressed (gzip, xz, bzip2, zstd): its one member, named as gunzip or unxz names what
        they write (`tool-linux-amd64.gz!tool-linux-amd64`; a name without the suffix is kept whole)."""
        base = name.rsplit(SEP, 1)[-1].rsplit("/", 1)[-1]
        stem, dot, suffix = base.rpartition(".")
        inner = stem if dot and stem and suffix.lower() in ("gz", "z", "xz", "bz2", "zst", "lzma") else base
        member = self._occurrence(name_text(f"{name}{SEP}{inner}".encode("utf-8", "surrogateescape")))
        digest, size = hashlib.sha256(), 0
        with _open_compressed(path) as stream, open(member_file(self.root, member), "wb") as out:
            while chunk := stream.read(1 << 20):
                size += len(chunk)
                if size > self.limits.member_bytes:
                    raise UnpackError(f"member {member} is over {self.limits.member_bytes} bytes, the limit")
                budget.take(len(chunk))
                digest.update(chunk)
                out.write(chunk)
        self.digests[member] = digest.hexdigest()
        yield member

    def _makeself(self, path: str, name: str, budget: _Budget) -> Iterator[str]:
        """A makeself installer's archives (one, or several appended with --append), each a tar compressed as
        makeself compressed it (gzip, bzip2, xz, zstd, lzma or none), where its script extracts them from."""
        offset, sizes = makeself_layout(path)
        with open(path, "rb") as fh:
            for size in sizes:
                budget.count()
                with _open_compressed(None, _Window(fh, offset, size), expect=("the makeself archive", "tar")) \
                        as stream:
                    yield from self._tar(stream, name, budget)
                offset += size

    def _rpm(self, path: str, name: str, budget: _Budget) -> Iterator[str]:
        with open(path, "rb") as fh:
            nindex, hsize = rpm_main_header(fh)
            fh.seek(nindex * 16 + hsize, 1)
            with _open_compressed(None, fh, expect=("the payload", "cpio")) as payload:
                yield from self._cpio(payload, name, budget)

    def _cpio(self, stream: _Reader, name: str, budget: _Budget) -> Iterator[str]:
        try:
            yield from self._cpio_members(stream, name, budget)
        finally:
            self._close_pack(name)

    def _cpio_members(self, stream: _Reader, name: str, budget: _Budget) -> Iterator[str]:
        """newc/crc cpio (RPM payloads) and odc (the portable format: macOS Payloads, `cpio -H odc`). Hard links
        in newc: the names of one file (its inode) come one after another, the data with the last; every name
        is the file's (as `cpio -id` makes them). In odc every name carries the data."""
        linked: dict[bytes, list[str]] = {}  # inode and device → names of it seen without the data
        while True:
            member, mode, nlink, size, inode, pad = _cpio_header(stream)
            if member == "TRAILER!!!":
                return
            budget.count()
            rel = clean_name(member)
            if stat.S_ISREG(mode) and rel is not None and not size and nlink > 1 and pad:
                linked.setdefault(inode, []).append(rel)  # (bounded: every entry counts against the members)
            elif stat.S_ISREG(mode) and rel is not None and size:
                capped = _Capped(stream, size)
                got = self._write(f"{name}{SEP}{rel}", capped, size, budget, pack=name)
                if not got:
                    budget.take(size)  # (read past all the same: counted, as in a tar stream)
                capped.drain()
                if got:
                    yield got
                    for other in linked.pop(inode, []):
                        if shared := self._link(name, f"{name}{SEP}{other}", f"{name}{SEP}{rel}", budget):
                            yield shared
            else:
                budget.take(size)
                _skip(stream, size)
            if pad:
                _read_exact(stream, (4 - size % 4) % 4)

    # ------------------------------------------------------------ images

    def _oci_dir(self, path: str, name: str, budget: _Budget) -> list[str]:
        return self._image_layers(*self._oci_dir_layers(path), name, budget)

    def _oci_dir_layers(self, path: str) -> tuple[list[str], str]:
        def blob(digest: str) -> str:
            if (rel := _blob(digest)) is None:
                raise UnpackError(f"bad digest {digest!r}")
            f = os.path.join(path, rel)
            self._layer_names[f] = digest
            return f

        def present(digest: str) -> bool:
            return (rel := _blob(digest)) is not None and os.path.isfile(os.path.join(path, rel))

        return self._oci_layers_from(_json(os.path.join(path, "index.json"), "index.json"), blob, present)

    def _choose(self, manifests: list[Any], present: Any) -> dict[str, Any]:
        """The manifest for --platform (os/arch[/variant]). Without it, the image's one platform: the index's
        only manifest, or the only one whose manifest the file holds (`docker save` of a multi-platform image
        keeps the whole index and the pulled platform's blobs); an image of several is an UnpackError naming
        them, as auditing one would leave the others' binaries unread, and choosing by this machine would make
        the report depend on where binlens runs. Attestation manifests (buildx: platform unknown/unknown) are
        no platform."""

        name = _platform_name
        usable = [m for m in manifests if not _attestation(m)]
        if not usable:
            raise UnpackError("the image index lists no manifest")
        if self.platform:
            want = self.platform.strip("/")
            exact = [m for m in usable if name(m) == want]
            if exact:
                return exact[0]
            variants = [m for m in usable if name(m).startswith(want + "/")]  # linux/arm: linux/arm/v7
            if len(named := sorted({name(m) for m in variants})) > 1:
                raise UnpackError(f"{len(named)} variants of platform {want} in the image index "
                                  f"({', '.join(named)}): name one")
            if variants:
                return variants[0]
            have = ", ".join(sorted({name(m) or "?" for m in usable}))
            raise UnpackError(f"no manifest for platform {want} in the image index (it has: {have})")
        if len(usable) == 1:
            return usable[0]
        held = [m for m in usable if present(m["digest"])] or usable
        platforms = sorted({name(m) or "?" for m in held})
        if len(platforms) > 1:
            raise UnpackError(f"{len(platforms)} platforms in one image ({', '.join(platforms)}): choose one with "
                              "--platform")
        return held[0]

    def _oci_layers_from(self, index: dict[str, Any], blob: Any, present: Any) -> tuple[list[str], str]:
        """The layers of the image an OCI index names (for --image and --platform), and its platform (its
        config's word, else its index's). `blob`: a digest's file; `present`: whether the layout holds it."""
        manifests = _descriptors(index.get("manifests") or [], "index.json's manifests")
        if not manifests:
            raise UnpackError("index.json lists no manifest")
        images: dict[str, set[str]] = {}  # image name → digests (an image's platforms, or one image's tags)
        chosen = []  # the manifests --image names
        for m in manifests:
            notes = m.get("annotations")
            if isinstance(notes, dict):
                names = [n for k in ("io.containerd.image.name", "org.opencontainers.image.ref.name")
                         if isinstance(n := notes.get(k), str)]
                if names:
                    images.setdefault(names[0], set()).add(str(m.get("digest")))
                if self.image and self.image in names:
                    chosen.append(m)
        if self.image:
            if not chosen:
                raise UnpackError(f"no image named {self.image} in the file (it has: "
                                  f"{'; '.join(sorted(images)) or 'no named image'})")
            manifests = chosen
        else:
            _one_image(images)
        picked = self._choose(manifests, present)
        platform = _platform_name(picked)
        doc = _json(blob(picked["digest"]), f"blob {picked['digest']}")
        for _ in range(MAX_INDEXES):  # indexes behind the top one (of platforms; the spec allows any depth)
            if not doc.get("manifests"):
                break
            picked = self._choose(_descriptors(doc["manifests"], "an image index's manifests"), present)
            platform = _platform_name(picked) or platform
            doc = _json(blob(picked["digest"]), f"blob {picked['digest']}")
        if doc.get("manifests"):  # (what it names would be unread: its binaries silently missing)
            raise UnpackError(f"image indexes nested more than {MAX_INDEXES} deep")
        layers = [blob(layer["digest"]) for layer in _descriptors(doc.get("layers") or [], "the manifest's layers")]
        config = doc.get("config")
        if isinstance(config, dict) and isinstance(config.get("digest"), str) and present(config["digest"]):
            with contextlib.suppress(UnpackError):  # (what it says is told, not needed: the layers are the image)
                settings = _json(blob(config["digest"]), "the config")
                platform = _os_arch(settings) or platform
                self.image_env = config_env(settings)
        for f in layers:
            if not os.path.isfile(f):
                raise UnpackError(f"manifest names a missing layer {os.path.basename(f)}")
        return layers, platform

    def _image_layers(self, layers: list[str], platform: str, name: str, budget: _Budget) -> list[str]:
        """Apply the layers in order with whiteouts; the binaries of the final filesystem. The binaries of an
        uncompressed layer are not copied out: their place in the layer is listed (as a static library's
        members are), and the process analysing one reads it from there."""
        from analyzer.load import installed

        final: dict[str, str] = {}  # path in the image → member name
        rows: dict[str, list[Any]] = {}  # member name → its place in an uncompressed layer
        kept = PathSet()  # the paths of `final` (a whiteout finds those under a directory there)
        database = installed.Tracker()  # the package database's files and the symlinks of the final filesystem

        fresh: set[str] = set()  # the paths the layer being applied put: its whiteouts reach only lower layers

        def keep(path: str, member: str) -> None:
            final[path] = member
            kept.add(path)
            fresh.add(path)

        def drop(paths: list[str]) -> None:
            for p in paths:
                rows.pop(final.pop(p), None)
                kept.discard(p)

        for layer in layers:
            lname = self._layer_names.get(layer, os.path.basename(layer))
            plain = os.path.isfile(layer) and _peek(layer)[257:262] == b"ustar"
            fresh.clear()
            database.next_layer()
            with contextlib.ExitStack() as stack:
                if plain:  # random access: members' data where they lie
                    raw = stack.enter_context(open(layer, "rb"))
                    tf = stack.enter_context(_tar_open(layer, mode="r:"))
                else:
                    stream = stack.enter_context(_open_compressed(layer, expect=(f"layer {lname}", "tar")))
                    tf = stack.enter_context(_tar_open(fileobj=stream, mode="r|"))
                for info in tf:
                    budget.count()
                    rel = clean_name(info.name)
                    if rel is None:
                        continue
                    base = posixpath.basename(rel)
                    parent = posixpath.dirname(rel)
                    if base == ".wh..wh..opq":  # (everything under that directory the lower layers put)
                        drop([p for p in kept.under(parent) if p not in fresh])
                        database.forget(parent, itself=False)
                        continue
                    if base.startswith(".wh."):
                        gone = posixpath.join(parent, base[4:])
                        drop([p for p in ([gone] if gone in final else []) + kept.under(gone) if p not in fresh])
                        database.forget(gone)
                        continue
                    # a later layer's entry of any type replaces the file; one that is no directory replaces a
                    # directory with all it holds (as docker and containerd apply a layer)
                    drop(([rel] if rel in final else []) + ([] if info.isdir() else kept.under(rel)))
                    if database.entry(rel, info, tf):
                        budget.take(info.size)  # (read, or decompressed to read past it: counted)
                        continue  # (a package database's file: never a binary)
                    if info.islnk():  # a hard link to a file of this layer before it: the same bytes
                        target = clean_name(info.linkname)
                        src = final.get(target) if target is not None else None
                        shown = name_text(f"{name}{SEP}{rel}".encode("utf-8", "surrogateescape"))
                        if src in rows:  # (an uncompressed layer's member, listed where it lies)
                            budget.take(rows[src][4])
                            rows[shown] = rows[src]
                            if src in self.digests:  # (the same bytes: the result cache lists it too)
                                self.digests[shown] = self.digests[src]
                            keep(rel, shown)
                        elif src in self._rows.get(name, {}) and name in self._packs:  # (in the pack)
                            keep(rel, self._share(name, shown, self._rows[name][src], budget))
                        continue
                    if not info.isreg():
                        if not plain:
                            budget.take(info.size)  # (the data of a type tar does not know: decompressed to skip)
                        continue
                    if plain and not info.issparse():
                        raw.seek(info.offset_data)
                        head = raw.read(min(info.size, 264))
                        kind = sniff(head)
                        if kind is None and not _looks_container(head) and not _maybe_zipapp(head):
                            continue  # nothing to analyse
                        if kind is not None:
                            shown = name_text(f"{name}{SEP}{rel}".encode("utf-8", "surrogateescape"))
                            rows[shown] = self._in_place(raw, layer, info.offset_data, info.size, kind, shown,
                                                         budget, lname)
                            for stale in (member_file(self.root, shown), member_file(self.root, shown) + ".layer"):
                                _remove(stale)  # an earlier layer's copy of the same path
                            keep(rel, shown)
                            continue
                    f = tf.extractfile(info)
                    if f is None:
                        continue
                    got = self._write(f"{name}{SEP}{rel}", f, info.size, budget, pack=name, layer=lname)
                    if not got:
                        if not plain:
                            budget.take(info.size)  # (decompressed to read past it: counted, as in a tarball)
                        continue
                    keep(rel, got)
                    if got in self._packed:  # a binary, in the pack: a file an earlier layer wrote there is stale
                        for stale in (member_file(self.root, got), member_file(self.root, got) + ".layer"):
                            _remove(stale)
                    else:  # a container, written as a file
                        with open(member_file(self.root, got) + ".layer", "w", encoding="utf-8") as fh:
                            fh.write(lname)
        packed = dict(self._rows.get(name, {}))  # (the pack's rows, before it is closed)
        self._close_pack(name)
        if rows:
            with open(member_file(self.root, name) + ".members.json", "w", encoding="utf-8") as out:
                out.write(json.dumps(rows))

        where = {**packed, **rows}  # (a binary's place: an uncompressed layer, or the pack)
        found, owners = installed.read(database, final, functools.partial(self._member_digest, where))
        INSTALLED[name] = {**(found or {"distro": installed.distro(database.files), "packages": []}),
                           "platform": platform or None}  # (every image)
        self._own(name, owners, where)  # (its binaries and the containers it holds)
        return [final[p] for p in sorted(final)]

    def _tar_image(self, path: str, name: str, budget: _Budget) -> list[str] | None:
        """A `docker save` tarball (manifest.json) or an OCI layout in a tar (oci-layout, index.json): its
        final filesystem's members; None for any other tar. Only plain tars are images (as docker writes
        them); their layers are copied out to the unpack directory and applied in order."""
        found = self._tar_image_layers(path, name, budget)
        return None if found is None else self._image_layers(*found, name, budget)

    def _tar_image_layers(self, path: str, name: str, budget: _Budget) -> tuple[list[str], str] | None:
        """The layers of the image a tar holds (copied out to the unpack directory) and its platform; None for a
        tar that holds no image."""
        counted = 0  # (the tar's bytes counted as unpacked already: a compressed image's, decompressed)
        if _peek(path, 6).startswith(_COMPRESSED):
            # `docker save img | gzip > img.tar.gz`, as docker load takes it: an image whose first member says so
            # is decompressed to a plain tar (counted against the limits), then read as one; any other
            # compressed tarball is streamed as before
            if not _starts_like_an_image(path):
                return None
            plain = member_file(self.root, f"{name}#image.tar")
            with _open_compressed(path) as stream, open(plain, "wb") as out:
                while chunk := stream.read(1 << 20):
                    budget.take(len(chunk))
                    counted += len(chunk)
                    out.write(chunk)
            path = plain
        with _tar_open(path, mode="r:") as tf:
            index: dict[str, tarfile.TarInfo] = {}
            tops: set[str] = set()  # the members' first path components (two: more than one)
            seen = 0  # (counted against the limit once it is an image: any other tar's members are counted as read)
            for info in tf:
                seen += 1
                if seen > budget.limits.members:
                    budget.count(seen)  # (over the limit either way)
                rel = clean_name(info.name)
                if rel is None:
                    continue
                if len(tops) < 2:
                    tops.add(rel.partition("/")[0])
                if _image_file(rel) or _image_file(rel.partition("/")[2]):  # (an image below one top directory)
                    index[rel] = info
            tf.members = []  # type: ignore[attr-defined]  # the headers seen are not kept
            prefix = _image_prefix(index, tops)
            if prefix is None:
                budget.bytes -= counted  # (no image after all: the tarball's stream counts its bytes as it is read)
                return None  # a tarball (one holding a web extension's manifest.json too)
            index = {k[len(prefix):]: v for k, v in index.items() if k.startswith(prefix)}

            def read(rel: str) -> bytes | None:
                info = index.get(rel)
                held = tf.extractfile(info) if info is not None and info.isreg() and info.size <= MAX_MANIFEST \
                    else None
                return held.read(MAX_MANIFEST) if held is not None else None

            def extract(rel: str, tag: str) -> str:
                info = index.get(rel)
                if info is None or not info.isreg():
                    raise UnpackError(f"the image names a missing file {rel}")
                f = tf.extractfile(info)
                assert f is not None
                target = member_file(self.root, f"{name}#{tag}")
                if not counted:
                    budget.take(info.size)
                with open(target, "wb") as out:
                    shutil.copyfileobj(_Capped(f, info.size), out, 1 << 20)
                return target

            found = self._image_in(set(index), read, extract, lambda: budget.count(seen))
            if found is None:
                budget.bytes -= counted
            return found

    def _zip_image_layers(self, zf: zipfile.ZipFile, name: str, budget: _Budget) -> tuple[list[str], str] | None:
        """The layers of the image a zip holds (an OCI layout, or a `docker save` tree, zipped at its root or
        below one top directory: as CI systems upload a directory), copied out to the unpack directory, and its
        platform; None for a zip that holds no image."""
        infos = zf.infolist()
        if len(infos) > self.limits.members:
            raise UnpackError(f"{len(infos)} members, over the limit of {self.limits.members}")
        if not any(i.filename.endswith(("oci-layout", "manifest.json")) for i in infos):
            return None  # (every wheel and jar: no index built)
        index = {rel: i for i in infos if not i.is_dir() and (rel := clean_name(i.filename)) is not None}
        prefix = _image_prefix(index, {rel.partition("/")[0] for rel in index})
        if prefix is None:
            return None
        index = {k[len(prefix):]: v for k, v in index.items() if k.startswith(prefix)}

        def read(rel: str) -> bytes | None:
            info = index.get(rel)
            if info is None or info.file_size > MAX_MANIFEST or info.flag_bits & 0x1:
                return None
            with zf.open(info) as f:
                return f.read(MAX_MANIFEST)

        def extract(rel: str, tag: str) -> str:
            info = index.get(rel)
            if info is None:
                raise UnpackError(f"the image names a missing file {rel}")
            if info.flag_bits & 0x1:
                raise UnpackError(f"member {info.filename} is encrypted")
            target = member_file(self.root, f"{name}#{tag}")
            budget.take(info.file_size)
            with zf.open(info) as f, open(target, "wb") as out:
                shutil.copyfileobj(_Capped(f, info.file_size), out, 1 << 20)
            return target

        return self._image_in(set(index), read, extract, lambda: budget.count(len(infos)))

    def _image_in(self, names: set[str], read: Any, extract: Any, found: Any) -> tuple[list[str], str] | None:
        """The layers and platform of the image a container's files are (`names`: its files, relative to the
        image's root; `read(rel)`: a small file's bytes or None; `extract(rel, tag)`: a file copied out to the
        unpack directory), or None when they are no image; `found()` is called once they are one."""
        docker = None
        if "manifest.json" in names and "oci-layout" not in names and (raw := read("manifest.json")) is not None:
            docker = _docker_manifest(raw)
        if docker is None and not {"oci-layout", "index.json"} <= names:
            return None
        found()
        if docker is not None:
            doc = docker
            images = {", ".join(d.get("RepoTags") or []) or f"untagged {i + 1}": {json.dumps(d.get("Layers"))}
                      for i, d in enumerate(doc)}  # fmt: skip
            if self.image:
                doc = [d for d in doc if self.image in (d.get("RepoTags") or [])]
                if not doc:
                    raise UnpackError(f"no image named {self.image} in the file (it has: "
                                      f"{'; '.join(sorted(images))})")
            else:
                _one_image(images)
            layers, platform = [], ""
            for i, x in enumerate(doc[0].get("Layers") or []):
                f = extract(clean_name(x) or x, f"layer{i}")  # (a name out of the tar is no member of it)
                self._layer_names[f] = x  # docker save names a layer by its path (its id)
                layers.append(f)
            named = doc[0].get("Config")
            config = read(clean_name(named) or "") if isinstance(named, str) else None
            if config is not None:
                with contextlib.suppress(ValueError, RecursionError):  # (a config nested too deeply: no platform)
                    doc = json.loads(config)
                    platform = _os_arch(doc)
                    self.image_env = config_env(doc)
            return layers, platform

        def blob(digest: str) -> str:
            if (rel := _blob(digest)) is None:
                raise UnpackError(f"bad digest {digest!r}")
            f = extract(rel, posixpath.basename(rel))
            self._layer_names[f] = digest
            return f

        def present(digest: str) -> bool:
            return (rel := _blob(digest)) is not None and rel in names

        return self._oci_layers_from(_json(extract("index.json", "index"), "index.json"), blob, present)

    # ------------------------------------------------------------ an image as a sysroot

    def materialize(self, path: str, dest: str) -> None:
        """Write the final filesystem of an image (OCI layout directory or tar, `docker save`) — or of a
        tarball or .deb — into `dest`: regular files, directories and symlinks (hard links copied), layers
        applied in order with whiteouts. Every write stays inside `dest`: a path through a symlink is
        followed as the image would see it, rooted at `dest`. UnpackError when it cannot."""
        kind = kind_of(path)
        budget = _Budget(self.limits, _stored_size(path))  # (the ratio bound as a scan has it: a layout directory
        try:  # was taken as 1 byte, and the bound as off: 20,000 layers naming one blob were 10 s of unpacking)
            if kind == "oci":
                layers, _ = self._oci_dir_layers(path)
            elif kind == "tar":
                image = self._tar_image_layers(path, path, budget)
                layers = image[0] if image is not None else [path]
            elif kind == "rpm":  # (its payload's files, as rpm -i would put them: through a private tar)
                layers = [self._rpm_as_tar(path, budget)]
            elif kind in ("squashfs", "appimage"):  # (a root filesystem image, a snap: through a private tar)
                layers = [self._squashfs_as_tar(path, budget, appimage=kind == "appimage")]
            elif kind == "zip" and is_image(path):  # (an OCI layout zipped)
                with open_zip(path, self.limits.members) as zf:
                    image = self._zip_image_layers(zf, path, budget)
                if image is None:
                    raise UnpackError("not an image, tarball, .deb, RPM or SquashFS image")
                layers = image[0]
            elif kind == "deb":
                layers = []
                for member, at, size in self._ar_members(path):
                    if member.startswith("data.tar"):
                        f = member_file(self.root, f"{path}#data")
                        with open(path, "rb") as fh, open(f, "wb") as out:
                            fh.seek(at)
                            shutil.copyfileobj(_Capped(fh, size), out, 1 << 20)
                        layers.append(f)
            else:
                raise UnpackError("not an image, tarball, .deb, RPM or SquashFS image")
            os.makedirs(dest, exist_ok=True)
            for layer in layers:
                self._apply_layer(layer, dest, budget)
        except UnpackError:
            raise
        except Exception as e:  # noqa: BLE001 - every reader's and decompressor's error: hostile input
            what = {"rpm": "RPM", "squashfs": "SquashFS image", "appimage": "AppImage"}.get(kind or "", "image")
            raise UnpackError(f"corrupt or truncated {what} ({type(e).__name__}: {e})") from None

    def _rpm_as_tar(self, path: str, budget: _Budget) -> str:
        """An RPM's payload (cpio) written as a private tar of its directories, symlinks, regular files and
        hard links, for materialize to apply as a layer (one writer of trees, with its bounds: _apply_layer)."""
        target = member_file(self.root, f"{path}#payload.tar")
        linked: dict[bytes, list[str]] = {}  # inode → names of it seen without the data (newc: data with the last)
        with open(path, "rb") as fh:
            nindex, hsize = rpm_main_header(fh)
            fh.seek(nindex * 16 + hsize, 1)
            with _open_compressed(None, fh, expect=("the payload", "cpio")) as payload, \
                    tarfile.open(target, "w", format=tarfile.GNU_FORMAT) as out:
                while True:
                    member, mode, nlink, size, inode, pad = _cpio_header(payload)
                    if member == "TRAILER!!!":
                        break
                    declared = size
                    budget.count()
                    rel = clean_name(member)
                    info = tarfile.TarInfo(rel or "x")
                    info.mode = mode & 0o7777
                    if rel is not None and stat.S_ISDIR(mode):
                        info.type = tarfile.DIRTYPE
                        out.addfile(info)
                    elif rel is not None and stat.S_ISLNK(mode) and size <= MAX_NAME:
                        info.type, info.linkname = tarfile.SYMTYPE, _read_exact(payload, size).decode(
                            "utf-8", "surrogateescape")
                        size = 0  # (read)
                        out.addfile(info)
                    elif rel is not None and stat.S_ISREG(mode) and not size and nlink > 1 and pad:
                        linked.setdefault(inode, []).append(rel)
                    elif rel is not None and stat.S_ISREG(mode):
                        budget.take(size)
                        info.size = size
                        out.addfile(info, _Capped(payload, size))
                        for other in linked.pop(inode, []):
                            link = tarfile.TarInfo(other)
                            link.type, link.linkname = tarfile.LNKTYPE, rel
                            out.addfile(link)
                        size = 0  # (read)
                    budget.take(size)
                    _skip(payload, size)
                    if pad:
                        _read_exact(payload, (4 - declared % 4) % 4)
        return target

    def _squashfs_as_tar(self, path: str, budget: _Budget, appimage: bool) -> str:
        """A SquashFS image's directories, symlinks, files and hard links written as a private tar, for
        materialize to apply as a layer (as an RPM's payload is)."""
        from analyzer.load.squashfs import Image, SquashfsError, appimage_offset

        target = member_file(self.root, f"{path}#squashfs.tar")
        try:
            with open(path, "rb") as fh, tarfile.open(target, "w", format=tarfile.GNU_FORMAT) as out:
                base = appimage_offset(fh.read(64), fh) if appimage else 0
                if base is None:
                    raise SquashfsError("not an AppImage")
                image = Image(fh, base, os.fstat(fh.fileno()).st_size, budget.take)
                first: dict[int, str] = {}  # inode → the first name written (another is a hard link to it)
                for rel, what, found in image.entries(budget.count):
                    info = tarfile.TarInfo(rel)
                    if what == "dir":
                        info.type, info.mode = tarfile.DIRTYPE, 0o755
                        out.addfile(info)
                    elif what == "symlink":
                        info.type, info.linkname = tarfile.SYMTYPE, found
                        out.addfile(info)
                    elif found[3] in first:
                        info.type, info.linkname = tarfile.LNKTYPE, first[found[3]]
                        out.addfile(info)
                    else:
                        first[found[3]] = rel
                        length, reader = image.open(*found[:3])
                        budget.take(length)
                        info.size, info.mode = length, 0o755
                        out.addfile(info, reader)
        except SquashfsError as e:
            raise UnpackError(str(e)) from None
        return target

    def _apply_layer(self, layer: str, dest: str, budget: _Budget) -> None:
        tree = _Tree(os.path.realpath(dest), budget)
        written = PathSet()  # what this layer put (relative to the root): its whiteouts reach only lower layers
        what = f"layer {self._layer_names.get(layer, os.path.basename(layer))}"
        with _open_compressed(layer, expect=(what, "tar")) as stream, _tar_open(fileobj=stream, mode="r|") as tf:
            for info in tf:
                budget.count()
                if not info.isreg():
                    budget.take(info.size)  # (the data of a type tar does not know: decompressed to skip)
                rel = clean_name(info.name)
                if rel is None:
                    continue
                base, parent = posixpath.basename(rel), posixpath.dirname(rel)
                where = tree.directory(parent)
                if where is None:
                    continue
                if base == ".wh..wh..opq":
                    tree.clear_lower([os.path.join(where, e) for e in os.listdir(where)], written)
                    continue
                if base.startswith(".wh."):
                    tree.clear_lower([os.path.join(where, base[4:])], written)
                    continue
                target = os.path.join(where, base)
                written.add(target[len(tree.root) + 1:])  # (every place _Tree gives is under its root)
                if info.isdir():
                    if os.path.islink(target) or (os.path.exists(target) and not os.path.isdir(target)):
                        tree.remove(target)
                    os.makedirs(target, exist_ok=True)
                    continue
                if os.path.lexists(target):  # (a directory too, with all it holds: as docker applies a layer)
                    tree.remove(target)
                if info.issym():
                    try:
                        os.symlink(info.linkname, target)
                    except OSError as e:  # (a target longer than PATH_MAX: no filesystem holds it)
                        raise UnpackError(f"symlink {rel} cannot be made ({e.strerror})") from None
                elif info.islnk():  # another name of what is at its target's path now, as tar's link() makes it
                    src = clean_name(info.linkname)
                    at = tree.directory(posixpath.dirname(src), create=False) if src else None
                    if src and at is not None:
                        with contextlib.suppress(OSError):  # (nothing there, or a directory: tar makes nothing)
                            os.link(os.path.join(at, posixpath.basename(src)), target, follow_symlinks=False)
                elif info.isreg():
                    f = tf.extractfile(info)
                    if f is None:
                        continue
                    budget.take(info.size)
                    if info.size > self.limits.member_bytes:
                        raise UnpackError(f"member {rel} is {info.size} bytes, over the limit")
                    with open(target, "wb") as out:
                        shutil.copyfileobj(_Capped(f, info.size), out, 1 << 20)
                    os.chmod(target, 0o755 if info.mode & 0o111 else 0o644)


def _holds_packages(name: str) -> bool:
    """Whether a tarball's or a zip's package databases are read (a root filesystem's, a Lambda zip's): not a
    package file's own (a .deb, an .rpm, an .apk, a wheel: it is the package, known by its metadata)."""
    from analyzer.load.packages import kind_by_name

    return kind_by_name(name) is None


ZIP_ENTRY_BYTES = 1024  # central directory bytes allowed per member the limit allows (a real entry: 50-300)


def open_zip(path: str, members: int | None = None) -> zipfile.ZipFile:
    """A zip file opened for reading once its end record says its central directory holds at most `members`
    entries (the members limit) in at most ZIP_ENTRY_BYTES bytes each: zipfile reads the whole directory into a
    Python object per entry (a 90 MB zip of a million empty members took 560 MB), so a larger one is refused
    before it is read, an UnpackError."""
    most = Limits().members if members is None else members
    with open(path, "rb") as fh:
        end = zipfile._EndRecData(fh)  # type: ignore[attr-defined]  # (the end record zipfile itself reads first)
    if end is not None and (end[zipfile._ECD_ENTRIES_TOTAL] > most  # type: ignore[attr-defined]
                            or end[zipfile._ECD_SIZE] > most * ZIP_ENTRY_BYTES):  # type: ignore[attr-defined]
        raise UnpackError(f"more than {most} members (the limit)")
    return zipfile.ZipFile(path)


def _zip_read(zf: zipfile.ZipFile, info: zipfile.ZipInfo, n: int) -> bytes:
    with zf.open(info) as f:
        return f.read(n)


def _platform_name(descriptor: dict[str, Any]) -> str:
    """os/architecture[/variant] of an index's manifest descriptor (its `platform`), "" where it names none."""
    return _os_arch(descriptor.get("platform"))


WORKDIR = "\0WorkingDir"  # config_env's key for the image's working directory (no variable's name holds a NUL)


def config_env(doc: Any) -> dict[str, str]:
    """The environment an image's config sets for its processes (`config.Env`, `NAME=value` strings): what the
    container runtime gives every program, LD_LIBRARY_PATH, LD_PRELOAD and LD_BIND_NOW among it; and, under
    WORKDIR, its `config.WorkingDir` when absolute (where its processes start: relative paths are opened there)."""
    settings = doc.get("config") if isinstance(doc, dict) else None
    env = settings.get("Env") if isinstance(settings, dict) else None
    pairs = (item.split("\0", 1)[0].split("=", 1) for item in env if isinstance(item, str)) \
        if isinstance(env, list) else ()  # (C strings)
    out = {k: v for k, v in (p for p in pairs if len(p) == 2)}
    workdir = settings.get("WorkingDir") if isinstance(settings, dict) else None
    if isinstance(workdir, str) and workdir.startswith("/"):
        out[WORKDIR] = workdir.split("\0", 1)[0]
    return out


def _os_arch(doc: Any) -> str:
    """os/architecture[/variant] of a platform object or an image config (they spell them alike), or "" (as
    text read from a file: control characters as \\xNN)."""
    if not isinstance(doc, dict):
        return ""
    parts = (doc.get("os"), doc.get("architecture"), doc.get("variant"))
    return name_text("/".join(x for x in parts if isinstance(x, str) and x).encode("utf-8", "surrogatepass"))


# the first file of an image tar: an OCI layout's (blobs/..., index.json, oci-layout) or a docker save's (a layer
# of a 64-hex id: its VERSION, json or layer.tar, or <id>.tar; a config, manifest.json, repositories), in the
# orders docker, skopeo and tar write them
_IMAGE_START = re.compile(r"([^/]+/)?(blobs/.*|index\.json|oci-layout|manifest\.json|repositories"
                          r"|[0-9a-f]{64}(\.json|\.tar)?|[0-9a-f]{64}/.*|[^/]+/layer\.tar)")


def _image_file(rel: str) -> bool:
    """Whether a file of a tar can be one of an image's (its documents, blobs and docker save's layers)."""
    return rel in ("manifest.json", "index.json", "oci-layout") or rel.startswith("blobs/") or \
        rel.endswith((".tar", "/layer.tar", ".json"))  # (.json: configs)


def _image_prefix(names: Any, tops: set[str]) -> str | None:
    """Where in a container's files an image's root is: "" (its root), "TOP/" when every file is below one
    directory TOP that holds an image's documents (`tar -cf img.tar layout/`, a CI system's zip of a directory),
    or None when neither holds one."""
    def holds(p: str) -> bool:
        return f"{p}manifest.json" in names or (f"{p}oci-layout" in names and f"{p}index.json" in names)

    if holds(""):
        return ""
    if len(tops) == 1 and holds(prefix := f"{next(iter(tops))}/"):
        return prefix
    return None


def _starts_like_an_image(path: str) -> bool:
    """Whether a compressed tar's first regular file is one an image tar starts with: only its first headers are
    decompressed (directories have no data), at most MAX_LOOK bytes of it (a first member of an unknown type
    claiming 3 GiB was skipped by decompressing them all: 8 s for a 3 MB file)."""
    try:
        with _open_compressed(path, fast=False) as stream, \
                _tar_open(fileobj=_Capped(stream, MAX_LOOK), mode="r|") as tf:
            for k, info in enumerate(tf):
                if info.isreg():
                    return _IMAGE_START.fullmatch(clean_name(info.name) or "") is not None
                if k >= 64:
                    break
    except Exception:  # noqa: BLE001 - any damage: the tarball reader says what it is
        return False
    return False


def _blob(digest: str) -> str | None:
    """Where an OCI layout holds the blob of a digest (`blobs/sha256/HEX`); None for one that names no such file
    (another algorithm, a path)."""
    algo, _, hexd = digest.partition(":")
    return f"blobs/{algo}/{hexd}" if algo == "sha256" and hexd.isalnum() else None


def _descriptors(value: Any, what: str) -> list[dict[str, Any]]:
    """An OCI document's list of descriptors (objects with a digest string), or an UnpackError saying `what`
    is not one."""
    if not isinstance(value, list) or not all(isinstance(d, dict) and isinstance(d.get("digest"), str)
                                              for d in value):  # fmt: skip
        raise UnpackError(f"{what} are not a list of descriptors (objects with a digest string)")
    return value


def _docker_manifest(raw: bytes) -> list[dict[str, Any]] | None:
    """`docker save`'s manifest.json: a list of images, each an object whose RepoTags (or null) and Layers are
    lists of strings. None where it is no such list at all (another program's manifest.json: the tar is a
    tarball); an UnpackError where its images are malformed (a string there was read as its characters)."""
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):  # (not JSON, or nested too deeply to be a manifest: a tarball's file)
        return None
    if not isinstance(doc, list) or not doc or not all(isinstance(d, dict) and "Layers" in d for d in doc):
        return None

    def strings(v: Any) -> bool:
        return v is None or (isinstance(v, list) and all(isinstance(x, str) for x in v))

    if not all(strings(d.get("RepoTags")) and strings(d.get("Layers")) for d in doc):
        raise UnpackError("manifest.json is not a docker save manifest (a list of objects whose RepoTags and "
                          "Layers are lists of strings)")
    return doc


def _attestation(manifest: dict[str, Any]) -> bool:
    """A manifest of an image index that is no platform's image: buildx's attestations (provenance, SBOM),
    marked so in its annotations and given the platform unknown/unknown."""
    notes = manifest.get("annotations")
    if isinstance(notes, dict) and notes.get("vnd.docker.reference.type") == "attestation-manifest":
        return True
    p = manifest.get("platform")
    return isinstance(p, dict) and p.get("os") == "unknown" and p.get("architecture") == "unknown"


def _one_image(images: dict[str, set[str]]) -> None:
    """An image file holding several images (`docker save a b`: each would be read as the first, the others'
    binaries silently missing) is an UnpackError naming them, unless --image chose one; several names of one
    image are one image."""
    if len({frozenset(d) for d in images.values()}) > 1:
        raise UnpackError(f"{len(images)} images in one file ({'; '.join(sorted(images))}): choose one with "
                          "--image NAME")


def _stored_size(path: str) -> int:
    """The bytes a container takes where it is stored: a file's size, or what an OCI layout directory's blobs
    take."""
    if os.path.isfile(path):
        return os.path.getsize(path)
    blobs = os.path.join(path, "blobs", "sha256")
    if not os.path.isdir(blobs):
        return 0
    return sum(e.stat().st_size for e in os.scandir(blobs) if e.is_file(follow_symlinks=False))


def image_directory(fs: str, rel: str) -> str | None:
    """Where the directory `rel` of an image's filesystem written to `fs` (materialize) is, found as the image
    sees it (its symlinks followed within it); None when it is not there."""
    return _Tree(os.path.realpath(fs), _Budget(Limits(), 1)).directory(rel, create=False)


WALK_STEPS = 16  # directories and links an image's paths may go through as its tree is written, per member it may hold


class _Tree:
    """An image's filesystem as it is written under `root` (a private directory): the directories of its
    members' paths, found as the image sees them — every symlink on the way followed within the image (an
    absolute target is the image's root, `..` stops there) — and made where missing. A path is walked with
    directory descriptors, one component at a time relative to the one before, so the kernel never follows a
    link and nothing outside `root` is reached (nor is a full path walked once per level: a directory 1,000
    levels deep cost every level's walk for each level). Bounded by the image's budget: as many directories
    may be made as it may hold members, and its paths may go through WALK_STEPS components per member (a
    symlink whose 4,000-byte target goes back and forth, 40 of them chained, made each member through them
    64,000 steps: 20,000 such members an hour's work). A directory's place is remembered until something is
    removed (a layer's members are listed directory by directory: most are not walked at all)."""

    def __init__(self, root: str, budget: _Budget) -> None:
        self.root, self.budget = root, budget
        self.steps = WALK_STEPS * budget.limits.members
        self.known: dict[str, str] = {}

    def remove(self, path: str) -> None:
        if os.path.lexists(path):
            _remove(path)
            self.known.clear()

    def clear_lower(self, paths: list[str], written: PathSet) -> None:
        """A whiteout of `paths` (an opaque directory's entries): what lower layers put there goes, what the
        layer applying it put (`written`, relative to the root) stays, and the directories on its way."""
        while paths:
            path = paths.pop()
            rel = path[len(self.root) + 1:]
            if rel not in written and not written.has_under(rel):
                self.remove(path)
            elif os.path.isdir(path) and not os.path.islink(path):
                paths.extend(os.path.join(path, e) for e in os.listdir(path))

    def directory(self, rel: str, create: bool = True) -> str | None:
        """The host path of `rel` (a directory in the image), made where missing when `create`; None when
        it loops (more than 40 links), is no directory, or (not `create`) is not there."""
        if rel in self.known:
            return self.known[rel]
        at = self._walk(rel, create)
        if at is not None and create:
            if len(self.known) >= 4096:  # (held in bounds; a layer lists a directory's members together)
                self.known.clear()
            self.known[rel] = at
        return at

    def _walk(self, rel: str, create: bool) -> str | None:
        parts = [p for p in rel.split("/") if p and p != "."]
        parts.reverse()  # (a stack: the next component last)
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
        names: list[str] = []  # the host directories below root, one per level, each with its descriptor
        fds = [os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)]
        hops = 0
        try:
            while parts:
                self.steps -= 1
                if self.steps < 0:
                    raise UnpackError(f"paths through more than {WALK_STEPS * self.budget.limits.members} "
                                      "directories and links (the limit: links that go back and forth?)")
                p = parts.pop()
                if p == "..":
                    if names:
                        names.pop()
                        os.close(fds.pop())
                    continue
                try:
                    fd = os.open(p, flags, dir_fd=fds[-1])
                except FileNotFoundError:
                    if not create:
                        return None
                    self.budget.made_directory()
                    os.mkdir(p, dir_fd=fds[-1])
                    fd = os.open(p, flags, dir_fd=fds[-1])
                except OSError:  # a symlink (O_NOFOLLOW refuses it) or no directory
                    if not stat.S_ISLNK(os.lstat(p, dir_fd=fds[-1]).st_mode):
                        return None
                    hops += 1
                    if hops > 40:
                        return None
                    link = os.readlink(p, dir_fd=fds[-1])
                    parts.extend(reversed([x for x in link.split("/") if x and x != "."]))
                    if link.startswith("/"):
                        del names[:]
                        while len(fds) > 1:
                            os.close(fds.pop())
                    continue
                names.append(p)
                fds.append(fd)
            return os.path.join(self.root, *names)
        except OSError:
            return None
        finally:
            for fd in fds:
                os.close(fd)


def _remove(path: str) -> None:
    if os.path.islink(path) or os.path.isfile(path):
        os.unlink(path)
    elif os.path.isdir(path):
        remove_tree(path)


def remove_tree(top: str) -> None:
    """Remove a directory and all it holds, whatever its depth, as far as it can (errors are passed over: a
    private temporary directory). Iterative (shutil.rmtree recurses once per level: an image's tree 1,000
    directories deep raised RecursionError) and by directory descriptors, each name relative to its directory
    (a full path per entry costs the kernel a walk of every level above it)."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
    try:
        fd = os.open(top, flags)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(top)
        return
    frames: list[tuple[int, str, Iterator[str]]] = [(fd, top, iter(os.listdir(fd)))]  # (dir, its name, entries)
    while frames:
        dfd, here, names = frames[-1]
        for n in names:
            try:
                if stat.S_ISDIR(os.lstat(n, dir_fd=dfd).st_mode):
                    sub = os.open(n, flags, dir_fd=dfd)
                    frames.append((sub, n, iter(os.listdir(sub))))
                    break
                os.unlink(n, dir_fd=dfd)
            except OSError:
                pass
        else:
            frames.pop()
            os.close(dfd)
            with contextlib.suppress(OSError):
                if frames:
                    os.rmdir(here, dir_fd=frames[-1][0])
                else:
                    os.rmdir(top)


def _compressed_non_tar(head: bytes) -> bool:
    """Whether the first bytes of a gzip or xz member already show that what it compresses is not a tar (as
    kind_of would find after writing it out); False when they cannot tell (too little decompressed)."""
    import lzma
    import zlib

    try:
        if head.startswith(b"\x1f\x8b"):
            inner = zlib.decompressobj(wbits=31).decompress(head, 512)
        elif head.startswith(b"\xfd7zXZ\x00"):
            inner = lzma.LZMADecompressor().decompress(head, 512)
        else:
            return False
    except (zlib.error, lzma.LZMAError, EOFError):
        return False
    return len(inner) >= 262 and inner[257:262] != b"ustar" and sniff(inner[:264]) is None and \
        not inner.startswith(_CPIO)  # (no program or cpio archive either)


def appimage_type(head: bytes) -> str | None:
    """The container kind of an AppImage's runtime by its first bytes (type 2, a squashfs image after it; type 1,
    an ISO 9660 image around it), or None."""
    if is_appimage(head):
        return "appimage"
    return "appimage1" if head[:4] == b"\x7fELF" and head[8:11] == b"AI\x01" else None


def is_appimage(head: bytes) -> bool:
    """An ELF that is a type-2 AppImage's runtime, a squashfs image after it (its mark in the ELF header's
    padding, as appimagetool writes it)."""
    return head[:4] == b"\x7fELF" and head[8:11] == b"AI\x02"


_CPIO = (b"070707", b"070701", b"070702")
# containers told by their first bytes alone (kind_of)
_MAGIC_KINDS = ((b"\xed\xab\xee\xdb", "rpm"), (b"hsqs", "squashfs"), (b"xar!", "xar"), (b"7z\xbc\xaf\x27\x1c", "7z"),
                (b"MSCF\0\0\0\0", "cab"), (b"pbzx", "pbzx"), *((magic, "cpio") for magic in _CPIO))


PROBE_IN_MEMORY = 1 << 20  # a #! script up to this size is looked at for a zip's end record in memory


def _maybe_zipapp(head: bytes) -> bool:
    """A member's first bytes that may be a zipapp's or a PEX file's: a #! line (and no makeself script, which
    _looks_container knows)."""
    return head.startswith(b"#!") and not makeself_head(head)


def _read_exactly(stream: _Reader, n: int) -> bytes:
    parts = []
    while n > 0 and (chunk := stream.read(min(n, 1 << 20))):
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


def _looks_container(head: bytes) -> bool:
    return head.startswith((b"!<arch>\n", b"PK\x03\x04", *(magic for magic, _ in _MAGIC_KINDS))) or \
        is_appimage(head) or makeself_head(head) or \
        (len(head) >= 262 and head[257:262] == b"ustar") or \
        head.startswith((b"\x1f\x8b", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd"))


_MAKESELF_MARK = b"\n# This script was generated using Makeself "


def makeself_head(head: bytes) -> bool:
    """Whether a file's first bytes are a makeself installer's script."""
    return head.startswith(b"#!") and _MAKESELF_MARK in head
MAX_MAKESELF_HEADER = 16 << 20  # bytes of script before the archives (a license text can be embedded in it)
MAX_MAKESELF_LINES = 1_000_000  # and its lines (makeself's own script is about 700)


def makeself_layout(path: str) -> tuple[int, list[int]]:
    """Where a makeself installer's archives start and their sizes, as its script computes them: the byte
    length of its first `skip` lines (`skip="714"` in makeself 2.4; `head -n 403 "$0"` before) and its
    `filesizes`. UnpackError for an encrypted one (openssl or gpg: `decrypt_cmd`), or a script without them."""
    import re

    with open(path, "rb") as fh:
        header, skip, sizes = b"", None, None
        while len(header) < MAX_MAKESELF_HEADER and (skip is None or sizes is None):  # (after a license text)
            chunk = fh.read(1 << 20)
            if not chunk:
                break
            header += chunk
            skip = re.search(rb'^skip="(\d+)"', header, re.M) or re.search(rb'head -n (\d+) "\$0"', header)
            sizes = re.search(rb'^filesizes="([\d ]*)"', header, re.M)
        if skip is None or sizes is None:
            raise UnpackError("a makeself script without its archives' place (skip, filesizes)")
        crypt = re.search(rb'^decrypt_cmd="([^"\n]*)"', header, re.M)
        if (crypt is not None and crypt[1].strip()) or re.search(rb'eval "(gpg|openssl)[^"\n]*"', header):
            raise UnpackError("encrypted makeself archive (binlens does not decrypt)")
        lines, offset = int(skip[1]), 0
        if lines > MAX_MAKESELF_LINES:
            raise UnpackError(f"a makeself script of {lines} lines (binlens reads at most {MAX_MAKESELF_LINES})")
        fh.seek(0)
        for _ in range(lines):
            line = fh.readline(MAX_MAKESELF_HEADER + 1 - offset)
            if not line.endswith(b"\n"):
                raise UnpackError("truncated makeself script" if len(line) < MAX_MAKESELF_HEADER - offset else
                                  f"a makeself script over {MAX_MAKESELF_HEADER} bytes")
            offset += len(line)
        total = os.fstat(fh.fileno()).st_size
    sizes_list = [int(x) for x in sizes[1].split()]
    if not sizes_list or offset + sum(sizes_list) > total:
        raise UnpackError(f"truncated makeself archive ({offset + sum(sizes_list)} bytes declared, {total} held)")
    return offset, sizes_list


def zlib_error() -> tuple[type[Exception], ...]:
    """The errors of corrupt deflate data: zlib's, and ISA-L's when it is installed."""
    import zlib

    fast = _isal()
    return (zlib.error,) if fast is None else (zlib.error, fast.error)


USE_ISAL = True  # inflate with ISA-L when python-isal is installed (the tests turn it off to check zlib's path)


def _isal() -> Any:
    """python-isal's zlib-compatible module (ISA-L: deflate decoded about twice as fast as zlib; a dependency
    with wheels for the usual platforms), or None where it is not installed: then zlib does the work."""
    if not USE_ISAL:
        return None
    try:
        from isal import isal_zlib
    except ImportError:
        return None
    return isal_zlib


def _json(path: str, shown: str) -> dict[str, Any]:
    """An image's JSON document (index.json, a manifest, an index, a config) at `path`, named `shown` (its name
    in the image: `path` may be a copy under another name) in the one-line error when it cannot be read."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(16 << 20)
        doc = json.loads(data)
    except FileNotFoundError:
        raise UnpackError(f"the image names a missing blob {os.path.basename(path)}") from None
    except OSError as e:
        raise UnpackError(f"cannot read {shown}: {e.strerror or e}") from None
    except ValueError as e:
        raise UnpackError(f"cannot read {shown}: {e}") from None
    except RecursionError:
        raise UnpackError(f"cannot read {shown}: JSON nested too deeply") from None
    if not isinstance(doc, dict):
        raise UnpackError(f"{shown} is not a JSON object")
    return doc


def _read_exact(stream: _Reader, n: int) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise UnpackError("truncated archive")
    return data


def _skip(stream: _Reader, n: int) -> None:
    while n > 0:
        chunk = stream.read(min(n, 1 << 20))
        if not chunk:
            raise UnpackError("truncated archive")
        n -= len(chunk)


def rpm_main_header(fh: IO[bytes], limit: int = 256 << 20) -> tuple[int, int]:
    """Past an RPM's lead and signature header (8-aligned), to its main header's index: (its entries, the size of
    its data store). UnpackError for a header that is none or larger than `limit`."""
    fh.seek(96)  # the lead
    for i in range(2):
        magic = fh.read(8)
        if magic[:3] != b"\x8e\xad\xe8":
            raise UnpackError("corrupt rpm header")
        nindex, hsize = struct.unpack(">II", fh.read(8))
        if nindex > 100_000 or hsize > limit:
            raise UnpackError("rpm header too large")
        if i == 0:
            fh.seek(nindex * 16 + hsize, 1)
            fh.seek((8 - fh.tell() % 8) % 8, 1)
    return nindex, hsize


_DIGITS = {8: frozenset(b"01234567"), 10: frozenset(b"0123456789"), 16: frozenset(b"0123456789abcdefABCDEF")}


def _number(field: bytes, base: int, what: str) -> int:
    """A header's number field: digits of `base` only (an ar field padded with blanks; an empty ar field is 0).
    What int() also takes — a sign, `_`, `0x`, blanks in a cpio field — is a corrupt header, as ar and cpio have
    it: a negative ar member size sent the reading back over the same header forever."""
    digits = field.strip(b" ") if base == 10 else field
    if not digits and base == 10:
        return 0
    if not digits or not _DIGITS[base].issuperset(digits):
        raise UnpackError(f"corrupt {what} header (a number field reads {field.decode('latin-1')!r})")
    return int(digits, base)


def _cpio_header(stream: _Reader) -> tuple[str, int, int, int, bytes, int]:
    """The next cpio header and name, newc/crc (RPM payloads) or odc (the portable format: macOS Payloads):
    (name, mode, nlink, data size, inode and device, padding unit: 4 for newc, 0 for odc), the stream left at
    the member's data."""
    magic = _read_exact(stream, 6)
    if magic == b"070707":  # odc: octal fields, no padding
        hdr = magic + _read_exact(stream, 70)
        mode, nlink, size, namesize = (_number(hdr[a:b], 8, "cpio") for a, b in ((18, 24), (36, 42), (65, 76),
                                                                                 (59, 65)))
        inode, pad = hdr[6:18], 0
    elif magic in (b"070701", b"070702"):
        hdr = magic + _read_exact(stream, 104)
        mode, nlink, size, namesize = (_number(hdr[a:b], 16, "cpio") for a, b in ((14, 22), (38, 46), (54, 62),
                                                                                  (94, 102)))
        inode, pad = hdr[6:14] + hdr[62:78], 4
    else:
        raise UnpackError("corrupt cpio header")
    if namesize > MAX_NAME:  # (read into memory: a header may say 4 GiB)
        raise UnpackError(f"a cpio member name of {namesize} bytes (binlens reads at most {MAX_NAME})")
    raw = _read_exact(stream, namesize)
    if pad:
        _read_exact(stream, (4 - (110 + namesize) % 4) % 4)
    return raw.rstrip(b"\x00").decode("utf-8", "surrogateescape"), mode, nlink, size, inode, pad


def _utf8_ctype() -> None:
    """A UTF-8 character type for this process when its locale has another (LC_ALL=C): libarchive converts
    the names it reads (7-Zip's UTF-16 among them) to the locale's charset, and in ASCII a name with an é is
    none. binlens's own output is encoded as Python chose at start-up; only the C library's view changes."""
    import locale

    try:
        if locale.nl_langinfo(locale.CODESET).upper().replace("-", "") != "UTF8":
            locale.setlocale(locale.LC_CTYPE, "C.UTF-8")
    except (locale.Error, AttributeError):
        pass  # (no such locale here: names libarchive cannot convert are named by their place)


def _libarchive_name(entry: Any, which: str) -> str | None:
    """An entry's path (or hard link target) as text, whatever the locale: libarchive's UTF-8 form, else the
    bytes it has (a name in no known charset: bytes that are not UTF-8 kept as \\xNN when shown), else None —
    libarchive could not convert it (a cabinet flagging a name UTF-8 that is not), and the caller names the
    entry by its place (`#3`) rather than leave its file out of the audit, as libarchive-c's `pathname` did."""
    import ctypes

    from libarchive import ffi

    utf8 = getattr(ffi.libarchive, f"archive_entry_{which}_utf8")
    utf8.argtypes, utf8.restype = [ctypes.c_void_p], ctypes.c_char_p
    raw = utf8(entry._entry_p)
    if raw is None:
        plain = getattr(ffi.libarchive, f"archive_entry_{which}")
        plain.argtypes, plain.restype = [ctypes.c_void_p], ctypes.c_char_p
        raw = plain(entry._entry_p)
    return raw.decode("utf-8", "surrogateescape") if raw else None


class _Blocks:
    """A reader over libarchive's blocks of one entry's data, no more than its declared size."""

    def __init__(self, blocks: Iterator[bytes], size: int) -> None:
        self.blocks, self.left, self.buf = blocks, size, b""

    def read(self, n: int = -1, /) -> bytes:
        want = self.left if n < 0 else min(n, self.left)
        parts, got = [], 0
        while got < want:
            if not self.buf:
                self.buf = next(self.blocks, b"")
                if not self.buf:
                    break
            piece, self.buf = self.buf[:want - got], self.buf[want - got:]
            parts.append(piece)
            got += len(piece)
        self.left -= got
        return b"".join(parts)


def _ar_members(path: str) -> Iterator[tuple[str, int, int]]:
    """(name, offset, size) of each member of an ar archive (System V/GNU long names)."""
    with open(path, "rb") as fh:
        data_size = os.fstat(fh.fileno()).st_size
        fh.seek(8)
        long_names = b""
        while True:
            hdr = fh.read(60)
            if not hdr:
                return
            if len(hdr) < 60 or hdr[58:60] != b"`\n":
                raise UnpackError("corrupt ar member header")
            raw_name = hdr[:16].rstrip(b" ")
            size = _number(hdr[48:58], 10, "ar member")
            at = fh.tell()
            if at + size > data_size:
                raise UnpackError("truncated ar archive")
            if raw_name == b"//":
                if size > MAX_TAR_HEADER:  # (read into memory)
                    raise UnpackError(f"an ar long-name table of {size} bytes (binlens reads at most {MAX_TAR_HEADER})")
                long_names = fh.read(size)
            elif raw_name in (b"/", b"/SYM64/"):
                pass  # the symbol index
            else:
                if raw_name.startswith(b"/") and raw_name[1:].isdigit() and long_names:
                    off = int(raw_name[1:])
                    end = long_names.find(b"/\n", off)
                    raw_name = long_names[off:end if end >= 0 else None]
                yield raw_name.rstrip(b"/").decode("utf-8", "surrogateescape"), at, size
            fh.seek(at + size + (size & 1))


MAX_INDEXES = 16  # image indexes followed behind an OCI layout's index.json (docker and buildx write one)
MAX_TAR_HEADER = 8 << 20  # the data of one header extension (a pax record set, a GNU long name) read into memory
MAX_LOOK = 1 << 20  # decompressed to tell whether a compressed tar starts as an image (its first file is near)
MAX_MANIFEST = 16 << 20  # a docker save manifest.json read (one larger is another program's: the tar is a tarball)
MAX_NAME = 64 << 10  # a cpio member's name (PATH_MAX is 4096)


class _BoundedTarInfo(tarfile.TarInfo):
    """tarfile's member header, with its extensions (pax 'x'/'g' records, GNU long names) bounded: tarfile reads
    such a header's data whole into memory, so a 260 KB .tar.xz declaring a 1 GiB long name took 2 GB of memory
    (a real name is at most a few KiB, a pax record set with extended attributes some KiB more)."""

    def _proc_member(self, tarfile: Any) -> Any:
        if self.type in _EXTENSIONS and self.size > MAX_TAR_HEADER:
            raise UnpackError(f"a tar header extension of {self.size} bytes (binlens reads at most {MAX_TAR_HEADER})")
        return super()._proc_member(tarfile)  # type: ignore[misc]  # (private in typeshed, there since 2.x)


_EXTENSIONS = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE, tarfile.XGLTYPE,
               tarfile.SOLARIS_XHDTYPE)


def _tar_open(name: str | None = None, mode: Any = "r", fileobj: Any = None) -> tarfile.TarFile:
    return tarfile.open(name, mode, fileobj=fileobj, tarinfo=_BoundedTarInfo)


class _Capped:
    """At most `size` bytes of a stream."""

    def __init__(self, stream: _Reader, size: int) -> None:
        self.stream, self.left = stream, size

    def read(self, n: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        n = self.left if n < 0 else min(n, self.left)
        data = self.stream.read(n)
        self.left -= len(data)
        return data

    def drain(self) -> None:
        if self.left > 0:
            _skip(self, self.left)


class _Budget:
    """The limits of one outermost container as it is unpacked (nested ones count against it)."""

    def __init__(self, limits: Limits, compressed: int) -> None:
        self.limits, self.compressed = limits, max(compressed, 1)
        self.bytes = self.entries = self.dirs = 0

    def take(self, n: int) -> None:
        self.bytes += n
        if self.bytes > self.limits.total_bytes:
            raise UnpackError(f"more than {self.limits.total_bytes} bytes unpacked (the limit)")
        if self.bytes > 1 << 20 and self.bytes > self.compressed * self.limits.ratio:
            raise UnpackError(f"unpacks to over {self.limits.ratio} times its size (a compression bomb?)")

    def count(self, n: int = 1) -> None:
        self.entries += n
        if self.entries > self.limits.members:
            raise UnpackError(f"more than {self.limits.members} members (the limit)")

    def made_directory(self) -> None:
        """A directory a member's path needs and no member lists, made as an image is written out: as many are
        allowed as members (200 members 1,000 directories deep made 200,000 directories, 49 s of work)."""
        self.dirs += 1
        if self.dirs > self.limits.members:
            raise UnpackError(f"more than {self.limits.members} directories made for members' paths (the limit)")
