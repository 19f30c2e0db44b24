"""SquashFS 4.0 images read as containers: snaps (a .snap is one image), AppImages (an ELF runtime followed by
the image at the end of its section headers), and plain .squashfs/.sqfs/.sfs files.

What is read: the superblock, the inode and directory tables (8 KiB metadata blocks), the fragment table and
regular files' data blocks (gzip, lzma, xz and zstd: what squashfs-tools and snapcraft write; lzo and lz4 are
a one-line error). Directories are walked depth first in their (sorted) order; symlinks, devices, FIFOs and
sockets are skipped as they are in tarballs; a regular file met again under another name (a hard link) is
another name of the same inode. Hostile images: every position is checked against the image's size, a
directory that contains itself is an error, every block decompresses to at most the image's block size, and
what metadata and fragments decompress to is counted against the container's limits (`take`), so a small
image cannot make binlens decompress without bound."""

from __future__ import annotations

import struct
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import IO, Any

MAGIC = b"hsqs"
SUPERBLOCK = struct.Struct("<4sIIIIHHHHHHQQQQQQQQ")
NO_FRAGMENT = 0xFFFFFFFF
UNCOMPRESSED_DATA = 1 << 24
METADATA = 8192  # a metadata block's size, uncompressed
DIR, FILE, SYMLINK, EXT_DIR, EXT_FILE, EXT_SYMLINK = 1, 2, 3, 8, 9, 10
COMPRESSORS = {1: "gzip", 2: "lzma", 3: "lzo", 4: "xz", 5: "lz4", 6: "zstd"}
CACHED_METADATA = 1024  # metadata blocks kept decompressed (8 MiB at most)
CACHED_FRAGMENTS = 4  # fragment blocks kept decompressed (files are stored in directory order: mostly one)


class SquashfsError(Exception):
    """What is wrong with the image (one line)."""


def appimage_offset(head: bytes, fh: IO[bytes]) -> int | None:
    """Where the squashfs image of a type-2 AppImage starts (as its runtime finds itself: the end of the ELF's
    section header table or of its last section, whichever is later), or None when `head` is no such ELF."""
    if len(head) < 64 or head[:4] != b"\x7fELF" or head[8:11] != b"AI\x02" or head[4] not in (1, 2) or \
            head[5] not in (1, 2):
        return None
    end, wide = "<" if head[5] == 1 else ">", head[4] == 2  # (ELF64: wider fields, later places)
    shoff, = struct.unpack_from(end + ("Q" if wide else "I"), head, 0x28 if wide else 0x20)
    shentsize, shnum = struct.unpack_from(end + "HH", head, 0x3A if wide else 0x2E)
    at = shoff + shentsize * shnum
    if shnum and shentsize >= (64 if wide else 40):
        fh.seek(shoff + shentsize * (shnum - 1))
        last = fh.read(shentsize)
        if len(last) == shentsize:
            sh_type, = struct.unpack_from(end + "I", last, 4)
            off, size = struct.unpack_from(end + ("QQ" if wide else "II"), last, 0x18 if wide else 0x10)
            if sh_type != 8:  # (SHT_NOBITS takes no room in the file)
                at = max(at, off + size)
    return at


class Image:
    """One squashfs image in `fh`, from `base` (0, or where an AppImage's runtime ends)."""

    def __init__(self, fh: IO[bytes], base: int, file_size: int, take: Callable[[int], None]) -> None:
        self.fh, self.base, self.take = fh, base, take
        self.stamp: tuple[int, ...] = ()  # (what the file was when opened, for a process that keeps it open)
        fh.seek(base)
        raw = fh.read(SUPERBLOCK.size)
        if len(raw) < SUPERBLOCK.size or raw[:4] != MAGIC:
            raise SquashfsError("no squashfs image where one should start" if base else "not a squashfs image")
        (_, self.inodes, _, self.block_size, self.fragments, comp, block_log, _flags, _ids, major, minor,
         self.root, used, _id_table, _xattr, self.inode_table, self.dir_table, self.fragment_table,
         _export) = SUPERBLOCK.unpack(raw)
        if (major, minor) != (4, 0):
            raise SquashfsError(f"squashfs version {major}.{minor} (binlens reads 4.0)")
        if not 12 <= block_log <= 20 or self.block_size != 1 << block_log:
            raise SquashfsError(f"bad squashfs block size {self.block_size}")
        if comp not in (1, 2, 4, 6):
            raise SquashfsError(f"squashfs compressed with {COMPRESSORS.get(comp, f'compressor {comp}')} (binlens "
                                "reads gzip, lzma, xz and zstd)")
        self.compressor = COMPRESSORS[comp]
        if used > file_size - base:
            raise SquashfsError(f"truncated squashfs image ({file_size - base} of its {used} bytes)")
        self.end = used
        self._meta: OrderedDict[int, tuple[bytes, int]] = OrderedDict()
        self._frags: OrderedDict[int, bytes] = OrderedDict()

    # ---------------------------------------------------------------- blocks

    def _read(self, at: int, n: int) -> bytes:
        if at < 0 or n < 0 or at + n > self.end:
            raise SquashfsError("a squashfs table or block lies outside the image")
        self.fh.seek(self.base + at)
        data = self.fh.read(n)
        if len(data) != n:
            raise SquashfsError("truncated squashfs image")
        return data

    def _decompress(self, data: bytes, limit: int, partial: bool = False) -> bytes:
        """One block, decompressed to at most `limit` bytes (more is damage); `partial`: only its first `limit`
        bytes (to tell what a file is without decompressing its whole first block)."""
        try:
            if self.compressor == "gzip":
                import zlib

                z = zlib.decompressobj()
                out = z.decompress(data, limit)
                done = z.eof and not z.unconsumed_tail
            elif self.compressor in ("xz", "lzma"):
                import lzma

                x = lzma.LZMADecompressor(lzma.FORMAT_XZ if self.compressor == "xz" else lzma.FORMAT_ALONE)
                out = x.decompress(data, limit)
                done = x.eof
            else:
                import io

                import zstandard

                if partial:
                    with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)) as r:
                        return bytes(r.read(limit))
                out = zstandard.ZstdDecompressor().decompress(data, max_output_size=limit)
                done = True
        except SquashfsError:
            raise
        except Exception as e:  # noqa: BLE001 - each decompressor's own error type: damage
            raise SquashfsError(f"corrupt squashfs {self.compressor} block ({type(e).__name__}: {e})") from None
        if partial:
            return out
        if not done or len(out) > limit:
            raise SquashfsError(f"a squashfs block decompresses to more than {limit} bytes")
        return out

    def _metadata(self, at: int) -> tuple[bytes, int]:
        """The metadata block at `at` (relative to the image): its bytes and where the next one starts."""
        hit = self._meta.get(at)
        if hit is not None:
            self._meta.move_to_end(at)
            return hit
        header, = struct.unpack("<H", self._read(at, 2))
        size = header & 0x7FFF
        if not size or size > METADATA:
            raise SquashfsError("corrupt squashfs metadata block")
        data = self._read(at + 2, size)
        if not header & 0x8000:
            data = self._decompress(data, METADATA)
        self.take(len(data))
        hit = self._meta[at] = (data, at + 2 + size)
        if len(self._meta) > CACHED_METADATA:
            self._meta.popitem(last=False)
        return hit

    def meta(self, table: int, cursor: tuple[int, int], n: int) -> tuple[bytes, tuple[int, int]]:
        """`n` bytes of a metadata table from `cursor` (block relative to the table, offset in its data), and the
        cursor after them."""
        block, offset = cursor
        parts, left = [], n
        while True:
            data, nxt = self._metadata(table + block)
            if offset > len(data):
                raise SquashfsError("a squashfs reference points past its metadata block")
            piece = data[offset:offset + left]
            parts.append(piece)
            left -= len(piece)
            offset += len(piece)
            if not left:
                return b"".join(parts), (block, offset) if offset < len(data) else (nxt - table, 0)
            block, offset = nxt - table, 0

    def data_block(self, at: int, word: int, limit: int, partial: bool = False) -> bytes:
        """A data or fragment block (its size word as the inode or fragment table gives it); `partial`: its
        first `limit` bytes only."""
        size = word & ~UNCOMPRESSED_DATA
        if size > self.block_size:
            raise SquashfsError("corrupt squashfs block size")
        data = self._read(at, size)
        if word & UNCOMPRESSED_DATA:
            return data[:limit] if partial else data
        return self._decompress(data, limit, partial)

    def fragment(self, index: int) -> bytes:
        """A fragment block, decompressed (a few kept: files stored one after another share one)."""
        hit = self._frags.get(index)
        if hit is not None:
            self._frags.move_to_end(index)
            return hit
        if index >= self.fragments:
            raise SquashfsError(f"a squashfs file names fragment {index} of {self.fragments}")
        pointer, = struct.unpack("<Q", self._read(self.fragment_table + 8 * (index // 512), 8))
        entry, _ = self.meta(pointer, (0, (index % 512) * 16), 16)
        start, word, _ = struct.unpack("<QII", entry)
        data = self.data_block(start, word, self.block_size)
        self.take(len(data))
        self._frags[index] = data
        if len(self._frags) > CACHED_FRAGMENTS:
            self._frags.popitem(last=False)
        return data

    # ---------------------------------------------------------------- inodes and directories

    def inode(self, ref: int) -> tuple[int, tuple[Any, ...], tuple[int, int]]:
        """(type, its fields, the cursor after them) of the inode `ref` points to."""
        cursor = (ref >> 16, ref & 0xFFFF)
        header, cursor = self.meta(self.inode_table, cursor, 16)
        kind = struct.unpack_from("<H", header)[0]
        layout = {DIR: "<IIHHI", FILE: "<IIII", EXT_DIR: "<IIIIHHI", EXT_FILE: "<QQQIIII"}.get(kind)
        if layout is None:
            return kind, (), cursor
        body, cursor = self.meta(self.inode_table, cursor, struct.calcsize(layout))
        return kind, struct.unpack(layout, body), cursor

    def listing(self, fields: tuple[Any, ...], kind: int) -> Iterator[tuple[bytes, int, int]]:
        """(name, entry type, inode ref) of a directory's entries."""
        if kind == DIR:
            start, _, size, offset, _ = fields
        else:
            _, size, start, _, _, offset, _ = fields
        left = size - 3  # (a directory's size counts the . and .. it does not store)
        cursor = (start, offset)
        while left > 0:
            raw, cursor = self.meta(self.dir_table, cursor, 12)
            count, block, _ = struct.unpack("<III", raw)
            left -= 12
            if count >= 256:
                raise SquashfsError("corrupt squashfs directory")
            for _ in range(count + 1):
                raw, cursor = self.meta(self.dir_table, cursor, 8)
                offset, _, entry_type, name_size = struct.unpack("<HhHH", raw)
                name, cursor = self.meta(self.dir_table, cursor, name_size + 1)
                left -= 8 + name_size + 1
                if left < 0:
                    raise SquashfsError("corrupt squashfs directory")
                yield name, entry_type, (block << 16) | offset

    def walk(self, count: Callable[[], None]) -> Iterator[tuple[str, int, tuple[Any, ...], tuple[int, int], int]]:
        """(path, inode type, fields, cursor after them, inode ref) of every regular file, depth first in
        directory order; `count` is called for every entry."""
        for path, what, found in self.entries(count):
            if what == "file":
                yield (path, *found)

    def entries(self, count: Callable[[], None]) -> Iterator[tuple[str, str, Any]]:
        """Every directory, regular file and symlink, depth first in directory order, a directory before what it
        holds: (path, "dir", None), (path, "file", (inode type, fields, cursor, inode ref)), (path, "symlink",
        its target); devices, FIFOs and sockets are left out. `count` is called for every entry."""
        kind, fields, _ = self.inode(self.root)
        if kind not in (DIR, EXT_DIR):
            raise SquashfsError("the squashfs root is no directory")
        stack: list[tuple[str, int, tuple[Any, ...]]] = [("", kind, fields)]
        seen_dirs: set[int] = {self.root}
        while stack:
            prefix, kind, fields = stack.pop()
            below = []
            for raw, entry_type, ref in self.listing(fields, kind):
                count()
                name = raw.decode("utf-8", "surrogateescape")
                if "/" in name or name in (".", "..", ""):
                    raise SquashfsError(f"a squashfs directory entry named {name!r}")
                path = prefix + name
                if entry_type == DIR:
                    if ref in seen_dirs:  # (a directory has one parent: listed twice, it could be its own child)
                        raise SquashfsError(f"squashfs directory {path} is listed twice")
                    seen_dirs.add(ref)
                    sub_kind, sub_fields, _ = self.inode(ref)
                    if sub_kind not in (DIR, EXT_DIR):
                        raise SquashfsError(f"squashfs directory {path} is no directory inode")
                    yield path, "dir", None
                    below.append((path + "/", sub_kind, sub_fields))
                elif entry_type == FILE:
                    file_kind, file_fields, cursor = self.inode(ref)
                    if file_kind not in (FILE, EXT_FILE):
                        raise SquashfsError(f"squashfs file {path} is no file inode")
                    yield path, "file", (file_kind, file_fields, cursor, ref)
                elif entry_type == SYMLINK:
                    link_kind, _, cursor = self.inode(ref)
                    if link_kind not in (SYMLINK, EXT_SYMLINK):
                        raise SquashfsError(f"squashfs symlink {path} is no symlink inode")
                    raw_size, cursor = self.meta(self.inode_table, cursor, 8)
                    _, size = struct.unpack("<II", raw_size)
                    if size > 4096:  # (PATH_MAX)
                        raise SquashfsError(f"squashfs symlink {path} of {size} bytes")
                    target, _ = self.meta(self.inode_table, cursor, size)
                    yield path, "symlink", target.decode("utf-8", "surrogateescape")
            stack.extend(reversed(below))

    def open(self, kind: int, fields: tuple[Any, ...], cursor: tuple[int, int]) -> tuple[int, _File]:
        """A regular file's size and a reader of its bytes."""
        if kind == FILE:
            start, fragment, frag_offset, size = fields
        else:
            start, size, _, _, fragment, frag_offset, _ = fields
        return size, _File(self, start, size, fragment, frag_offset, cursor)


class _File:
    """A regular file's bytes: its full blocks (their sizes read from the inode as they are needed), then its
    tail in a fragment, or a last short block."""

    def __init__(self, image: Image, start: int, size: int, fragment: int, frag_offset: int,
                 cursor: tuple[int, int]) -> None:
        self.image, self.at, self.size, self.cursor = image, start, size, cursor
        bs = image.block_size
        self.fragment, self.frag_offset = fragment, frag_offset
        self.blocks = size // bs if fragment != NO_FRAGMENT else -(-size // bs)
        self.done = 0  # bytes given
        self.buf, self.pos = b"", 0

    def _next(self) -> bytes:
        image, bs = self.image, self.image.block_size
        if self.blocks:
            self.blocks -= 1
            raw, self.cursor = image.meta(image.inode_table, self.cursor, 4)
            word, = struct.unpack("<I", raw)
            want = min(bs, self.size - self.done)
            if word == 0:  # a sparse block: zeros
                return bytes(want)
            data = image.data_block(self.at, word, bs)
            self.at += word & ~UNCOMPRESSED_DATA
            if len(data) != want:
                raise SquashfsError("a squashfs data block is shorter than its file says")
            return data
        if self.fragment == NO_FRAGMENT:
            return b""
        tail = self.size % bs
        block = image.fragment(self.fragment)
        data = block[self.frag_offset:self.frag_offset + tail]
        self.fragment = NO_FRAGMENT
        if len(data) != tail:
            raise SquashfsError("a squashfs file's tail lies outside its fragment")
        return data

    def head(self, n: int) -> bytes:
        """Its first `n` bytes (fewer when it is shorter), decompressing no more of its first block than they
        need (a tail in a fragment: the fragment, which the image keeps for the files that share it); the
        reader's place is not moved."""
        image, n = self.image, min(n, self.size)
        if self.blocks:
            raw, _ = image.meta(image.inode_table, self.cursor, 4)
            word, = struct.unpack("<I", raw)
            return bytes(n) if word == 0 else image.data_block(self.at, word, n, partial=True)
        if self.fragment == NO_FRAGMENT or not n:
            return b""
        return image.fragment(self.fragment)[self.frag_offset:self.frag_offset + n]

    def read(self, n: int = -1, /) -> bytes:
        if n < 0:
            n = self.size - self.done
        parts = []
        while n > 0:
            if self.pos >= len(self.buf):
                self.buf, self.pos = self._next(), 0
                if not self.buf:
                    break
            piece = self.buf[self.pos:self.pos + n]
            self.pos += len(piece)
            self.done += len(piece)
            n -= len(piece)
            parts.append(piece)
        return b"".join(parts)
