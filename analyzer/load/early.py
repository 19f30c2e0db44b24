"""What a `binlens scan PKG.deb` starts before the rest of binlens loads: its data.tar.xz decompressed by a
thread of its own (liblzma runs without the GIL), which the unpacking takes over where it finds it
(archives.Unpacker._ar). Imported by the entry point before the command-line framework, so it imports nothing
of binlens' but the package: start-up's otherwise idle core decompresses from the first milliseconds."""

from __future__ import annotations

import io
import lzma
import os
from typing import IO, Any


class XzAhead:
    """An xz stream decompressed by a thread of its own, ahead of its reader (what lzma.LZMAFile gives: streams
    one after another, trailing bytes that are no stream ignored, a stream cut short an EOFError; and, as xz
    reads them and LZMAFile does not, streams separated by stream padding). liblzma runs
    without the GIL, so a .deb's or a tarball's decompression (one xz block: nothing to split) overlaps this
    process's parsing, copying and handing out of members, and start-up's idle core. Large pieces (1 MiB in,
    at most 1 MiB out per call): the thread takes the GIL back a few times per MiB, not per 8 KiB as LZMAFile
    does, each time waiting for the interpreter's switch interval. At most AHEAD pieces wait (bounded memory);
    close() stops the thread."""

    AHEAD = 16
    PIECE = 1 << 20

    def __init__(self, raw: Any, owned: IO[bytes] | None = None) -> None:
        import queue
        import threading

        self._raw, self._owned, self._buf, self._at = raw, owned, b"", 0
        self._queue: Any = queue.Queue(self.AHEAD)
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=self._run, name="binlens-xz", daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        import queue

        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            dec = lzma.LZMADecompressor()
            while not self._stop.is_set():
                if dec.eof:
                    rest, padding = dec.unused_data, 0
                    while True:  # stream padding: null bytes, a multiple of four, skipped as xz does
                        nonzero = rest.lstrip(b"\0")
                        padding += len(rest) - len(nonzero)
                        rest = nonzero or self._raw.read(self.PIECE)
                        if nonzero or not rest:
                            break
                    if not rest or padding % 4:
                        break
                    dec = lzma.LZMADecompressor()
                    try:
                        out = dec.decompress(rest, self.PIECE)
                    except lzma.LZMAError:
                        break  # (trailing bytes that are not a stream: the end, as LZMAFile has it)
                elif dec.needs_input:
                    block = self._raw.read(self.PIECE)
                    if not block:
                        raise EOFError("Compressed file ended before the end-of-stream marker was reached")
                    out = dec.decompress(block, self.PIECE)
                else:
                    out = dec.decompress(b"", self.PIECE)
                if out and not self._put(out):
                    return
            self._put(None)
        except BaseException as e:  # noqa: BLE001 - handed to the reader, raised there
            self._put(e)

    def read(self, n: int = -1, /) -> bytes:
        parts = []
        want = n if n >= 0 else 1 << 62
        while want > 0:
            if self._at < len(self._buf):
                piece = self._buf[self._at:self._at + want]
                self._at += len(piece)
                want -= len(piece)
                parts.append(piece)
                continue
            if self._done:
                break
            item = self._queue.get()
            if item is None:
                self._done = True
            elif isinstance(item, BaseException):
                self._done = True
                raise item
            else:
                self._buf, self._at = item, 0
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def close(self) -> None:
        import queue

        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=0.05)
            except queue.Empty:
                pass
        self._thread.join()
        if self._owned is not None:
            self._owned.close()

    def __enter__(self) -> XzAhead:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()




class Window(io.RawIOBase):
    """`size` bytes of an open file from `at`, as a file of their own (a .deb's data.tar read where it lies, not
    into memory). Closing it leaves the file open (its opener's to close)."""

    def __init__(self, fh: io.BufferedReader, at: int, size: int) -> None:
        super().__init__()
        self.fh, self.at, self.end = fh, at, at + size
        fh.seek(at)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.fh.tell() - self.at

    def seek(self, pos: int, whence: int = 0) -> int:
        base = {0: self.at, 1: self.fh.tell(), 2: self.end}[whence]
        return self.fh.seek(min(max(base + pos, self.at), self.end)) - self.at

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        n = self.fh.readinto(view[:max(0, min(len(view), self.end - self.fh.tell()))])
        return n or 0




EARLY: dict[tuple[str, int, int], XzAhead] = {}  # (path, offset, size) → its data.tar.xz being decompressed


def decompress_early(path: str) -> None:
    """Start decompressing the data.tar.xz of a .deb named on the command line while the rest of the command
    loads (click, the rules, the pipeline: 50-70 ms on an otherwise idle core), once per package. Anything
    unexpected: nothing started, the unpacking reads the package as usual and says what is wrong with it."""
    try:
        if not os.path.isfile(path) or any(key[0] == os.path.abspath(path) for key in EARLY):
            return  # (a FIFO's bytes would be gone before the unpacking reads them)
        found = _data_tar(path)
        if found is None:
            return
        at, size = found
        fh = open(path, "rb")  # noqa: SIM115 - the reader's thread owns it, close() closes it
        window = Window(fh, at, size)
        if window.read(6) != b"\xfd7zXZ\x00":
            fh.close()
            return
        window.seek(0)
        EARLY[(os.path.abspath(path), at, size)] = XzAhead(window, owned=fh)
    except (OSError, ValueError):
        return


def _data_tar(path: str) -> tuple[int, int] | None:
    """(offset, size) of a Debian package's data.tar member (the first ar members, short names: as dpkg-deb
    writes them), or None for anything else (the unpacking reads it the long way)."""
    with open(path, "rb") as fh:
        if fh.read(8) != b"!<arch>\n":
            return None
        end = os.fstat(fh.fileno()).st_size
        for _ in range(8):
            hdr = fh.read(60)
            if len(hdr) < 60 or hdr[58:60] != b"`\n":
                return None
            field = hdr[48:58].strip()
            if not field.isdigit():  # (a sign, `_`: a corrupt header the unpacking names)
                return None
            size, at = int(field), fh.tell()
            if at + size > end:
                return None
            if hdr[:16].rstrip(b" ").rstrip(b"/").startswith(b"data.tar"):
                return at, size
            fh.seek(at + size + (size & 1))
    return None


def cancel_early() -> None:
    """Stop what decompress_early started (a run that forks a Dask cluster wants no other thread running)."""
    while EARLY:
        EARLY.popitem()[1].close()
