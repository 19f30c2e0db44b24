"""xar archives — macOS installer packages (`.pkg`, as pkgbuild and productbuild write them) — and the pbzx
streams their Payloads are compressed as.

A xar file is a header, a zlib-compressed XML table of contents and a heap; the table lists every file with
its place in the heap and its encoding (stored, gzip/zlib, bzip2, xz). A flat installer package holds
`Distribution` and, per component, `NAME.pkg/PackageInfo`, `Bom` and `Payload`: a cpio archive (odc) that is
gzip-compressed, or pbzx (chunks of xz). Every size is checked before it is read: the table of contents at most
MAX_TOC bytes either way, a file's data inside the archive, and what a stream decompresses to against what the
table says it holds."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from typing import IO, Any

MAGIC = b"xar!"
PBZX = b"pbzx"
MAX_TOC = 16 << 20  # a table of contents (compressed or not) larger than this is refused
MAX_DEPTH = 256  # directories nested in a table of contents
MAX_ELEMENTS = 500_000  # XML elements in a table of contents (some 16 a file: 30,000 files)
MAX_CHUNK = 64 << 20  # a pbzx chunk's declared uncompressed size


class XarError(Exception):
    """What is wrong with the archive (one line)."""


def members(fh: IO[bytes], file_size: int) -> Iterator[tuple[str, int, int, int, str]]:
    """(path, heap offset, stored length, extracted size, encoding) of every regular file, in the table's order."""
    from xml.etree import ElementTree

    head = fh.read(28)
    if len(head) < 28 or head[:4] != MAGIC:
        raise XarError("not a xar archive")
    header_size, _version, toc_packed, toc_size, _ = struct.unpack(">HHQQI", head[4:28])
    if toc_packed > MAX_TOC or toc_size > MAX_TOC:
        raise XarError(f"a xar table of contents of {max(toc_packed, toc_size)} bytes (binlens reads at most "
                       f"{MAX_TOC})")
    heap = header_size + toc_packed
    if heap > file_size:
        raise XarError("truncated xar archive")
    fh.seek(header_size)
    try:
        z = zlib.decompressobj()
        toc = z.decompress(fh.read(toc_packed), toc_size)
        if not z.eof or len(toc) != toc_size:
            raise XarError("corrupt xar table of contents")
        if b"<!ENTITY" in toc or b"<!DOCTYPE" in toc:  # (xar writes none: entity expansion is refused, not bounded)
            raise XarError("a xar table of contents that declares entities")
        root = _parsed(toc)
    except (zlib.error, ElementTree.ParseError, ValueError, LookupError) as e:
        raise XarError(f"corrupt xar table of contents ({e})") from None
    top = root.find("toc")
    if top is None:
        raise XarError("a xar table of contents without <toc>")
    stack: list[tuple[str, Any, int]] = [("", f, 0) for f in reversed(top.findall("file"))]
    while stack:
        prefix, node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise XarError(f"xar directories nested deeper than {MAX_DEPTH}")
        name = (node.findtext("name") or "").strip()
        kind = (node.findtext("type") or "").strip()
        path = prefix + name
        if kind == "directory":
            stack.extend((path + "/", f, depth + 1) for f in reversed(node.findall("file")))
            continue
        data = node.find("data")
        if kind != "file" or data is None:
            continue  # (symlinks, hard links, devices: as a tarball's are)
        try:
            offset, length, size = (int(data.findtext(k) or "") for k in ("offset", "length", "size"))
        except ValueError:
            raise XarError(f"xar file {path} has no offset, length and size") from None
        if offset < 0 or length < 0 or size < 0 or heap + offset + length > file_size:
            raise XarError(f"xar file {path} lies outside the archive")
        encoding = data.find("encoding")
        style = encoding.get("style", "") if encoding is not None else "application/octet-stream"
        yield path, heap + offset, length, size, style


def _parsed(toc: bytes) -> Any:
    """The table of contents as an element tree, of at most MAX_ELEMENTS elements: a tree takes some 150 bytes
    an element, so 64 MiB of `<a/>` would take gigabytes (a package's table holds a few dozen)."""
    from xml.etree import ElementTree

    parser: Any = ElementTree.XMLPullParser(events=("start",))
    root, seen = None, 0
    for at in range(0, len(toc), 1 << 20):
        parser.feed(toc[at:at + (1 << 20)])
        for event in parser.read_events():
            root = event[1] if root is None else root  # (the first element started is the root)
            seen += 1
        if seen > MAX_ELEMENTS:
            raise XarError(f"a xar table of contents of more than {MAX_ELEMENTS} elements")
    parser.close()
    if root is None:
        raise XarError("an empty xar table of contents")
    return root


class Decoded:
    """A xar file's data from the archive, decoded as its encoding says, and no more than its size."""

    def __init__(self, fh: IO[bytes], at: int, length: int, size: int, style: str) -> None:
        import bz2
        import lzma

        self.fh, self.at, self.left, self.size, self.done = fh, at, length, size, 0
        self.pending = b""
        if style in ("application/octet-stream", ""):
            self.dec: Any = None
        elif style == "application/x-gzip":
            self.dec = zlib.decompressobj(47)  # (zlib's header, as xar writes it; gzip's accepted)
        elif style == "application/x-bzip2":
            self.dec = bz2.BZ2Decompressor()
        elif style in ("application/x-lzma", "application/x-xz"):
            self.dec = lzma.LZMADecompressor()
        else:
            raise XarError(f"a xar file encoded as {style} (binlens reads none, gzip, bzip2 and xz)")

    def read(self, n: int = -1, /) -> bytes:
        want = self.size - self.done if n < 0 else min(n, self.size - self.done)
        out, got = [], 0
        while got < want:
            if not self.pending:
                self.pending = self._next()
                if not self.pending:
                    break
            piece = self.pending[:want - got]
            self.pending = self.pending[len(piece):]
            out.append(piece)
            got += len(piece)
        self.done += got
        return b"".join(out)

    def _raw(self) -> bytes:
        self.fh.seek(self.at)
        raw = self.fh.read(min(self.left, 1 << 20))
        if not raw:
            raise XarError("truncated xar archive")
        self.at += len(raw)
        self.left -= len(raw)
        return raw

    def _next(self) -> bytes:
        """The next piece of decoded data (at most 4 MiB), b"" at the end."""
        dec = self.dec
        if dec is None:
            return self._raw() if self.left > 0 else b""
        while not dec.eof:
            tail = getattr(dec, "unconsumed_tail", b"")
            if tail:  # (zlib: input it held back, having given its 4 MiB)
                out = dec.decompress(tail, 1 << 22)
            elif not getattr(dec, "needs_input", True):  # (bz2, xz: output it holds)
                out = dec.decompress(b"", 1 << 22)
            elif self.left > 0:
                out = dec.decompress(self._raw(), 1 << 22)
            else:
                raise XarError("truncated xar file data")
            if out:
                return out
        return b""


class Pbzx:
    """The cpio a pbzx stream holds (macOS Payloads): chunks, each an xz stream or stored, each declaring the
    size it decompresses to (at most MAX_CHUNK); read as a stream."""

    def __init__(self, raw: Any) -> None:
        head = _exact(raw, 12)
        if head[:4] != PBZX:
            raise XarError("not a pbzx stream")
        self.raw, self.flags = raw, struct.unpack(">Q", head[4:12])[0]
        self.buf, self.at = b"", 0

    def _chunk(self) -> bytes:
        import lzma

        if not self.flags & (1 << 24):
            return b""
        # each chunk's flags are its uncompressed size: 16 MiB (bit 24: another chunk follows) but for the last
        self.flags, length = struct.unpack(">QQ", _exact(self.raw, 16))
        if length > MAX_CHUNK or self.flags > MAX_CHUNK:
            raise XarError(f"a pbzx chunk of {max(length, self.flags)} bytes (binlens reads at most {MAX_CHUNK})")
        data = _exact(self.raw, length)
        if not data.startswith(b"\xfd7zXZ\x00"):
            return data
        dec = lzma.LZMADecompressor()
        try:
            out = dec.decompress(data, MAX_CHUNK)
        except lzma.LZMAError as e:
            raise XarError(f"corrupt pbzx chunk ({e})") from None
        if not dec.eof:
            raise XarError("corrupt pbzx chunk (an xz stream cut short, or larger than declared)")
        return out

    def read(self, n: int = -1, /) -> bytes:
        out = []
        while n:
            if self.at >= len(self.buf):
                self.buf, self.at = self._chunk(), 0
                if not self.buf:
                    break
            piece = self.buf[self.at:self.at + n] if n > 0 else self.buf[self.at:]
            self.at += len(piece)
            n -= len(piece) if n > 0 else 0
            out.append(piece)
        return b"".join(out)


def _exact(raw: Any, n: int) -> bytes:
    data = raw.read(n)
    if len(data) != n:
        raise XarError("truncated pbzx stream")
    return data
