"""Windows Installer packages (.msi): the files their embedded cabinets hold, named where they install.

An .msi is an OLE compound file (read with olefile, of the archives extra) holding a database: tables stored
as streams, column by column, strings as indices into one string pool. The `Media` table names the cabinets
holding the files (`#app.cab`: a stream of the package; without `#`, a file beside it, which a scan of that
directory reads on its own); a cabinet's files are named by their `File` table keys, and the `File`,
`Component` and `Directory` tables say where each installs. Stream names are stored mangled (two characters
of [0-9A-Za-z._] packed in one from U+3800; U+4840 starts a table's). The layout follows Wine's msi
implementation (table.c, string.c), the same that msitools' msiextract reads.

Every size is bounded: the string pool and the tables read (MAX_TABLE), the rows (MAX_ROWS), a directory chain
(a loop is an error)."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

MAX_TABLE = 64 << 20  # bytes of one table's stream, or of the string pool
MAX_ROWS = 1_000_000
MAX_DEPTH = 256  # directories in one chain
STRING, NULLABLE, VALID = 0x0800, 0x1000, 0x0100
# folders Windows Installer names by property, named as msiextract names them when the package gives them no
# name of their own (`.`): only this one (ProgramFiles64Folder's files are named from below it, as msiextract does)
KNOWN_FOLDERS = {"ProgramFilesFolder": "Program Files"}


class MsiError(Exception):
    """A package that cannot be read (the message names the problem)."""


class Package(NamedTuple):
    cabinets: list[tuple[str, int]]  # (stream name as olefile lists it, size), in the Media table's order
    names: dict[str, str]  # a file's key in the cabinets → where it installs (relative, `/`-separated)


def _mime(x: int) -> str:
    return "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz._"[x]


def decode_name(name: str) -> tuple[str, bool]:
    """A stream's name as the package means it, and whether it is a table's."""
    table = name.startswith("\u4840")
    out = []
    for ch in name[1:] if table else name:
        c = ord(ch)
        if 0x3800 <= c < 0x4800:
            c -= 0x3800
            out += [_mime(c & 0x3F), _mime((c >> 6) & 0x3F)]
        elif 0x4800 <= c < 0x4840:
            out.append(_mime(c - 0x4800))
        else:
            out.append(ch)
    return "".join(out), table


class _Db:
    def __init__(self, ole: Any) -> None:
        self.ole = ole
        self.streams: dict[tuple[str, bool], str] = {}
        for entry in ole.listdir(streams=True, storages=False):
            if len(entry) == 1:
                self.streams[decode_name(entry[0])] = entry[0]
        self.strings = self._string_pool()
        self.ref = 3 if self.long_refs else 2
        self.columns = self._columns()

    def stream(self, name: str, table: bool) -> bytes | None:
        raw = self.streams.get((name, table))
        if raw is None:
            return None
        size = self.ole.get_size(raw)
        if size > MAX_TABLE:
            raise MsiError(f"an MSI table of {size} bytes (binlens reads at most {MAX_TABLE})")
        with self.ole.openstream(raw) as fh:
            return bytes(fh.read(size))

    def _string_pool(self) -> list[str]:
        pool, data = self.stream("_StringPool", True), self.stream("_StringData", True)
        if pool is None or data is None or len(pool) < 4:
            raise MsiError("corrupt MSI (no string pool)")
        words = struct.unpack_from(f"<{len(pool) // 2}H", pool)
        codepage = words[0] | ((words[1] & 0x7FFF) << 16)
        self.long_refs = bool(words[1] & 0x8000)
        encoding = {0: "latin-1", 65001: "utf-8"}.get(codepage, f"cp{codepage}")
        try:
            "".encode(encoding)
        except LookupError:
            encoding = "latin-1"
        strings, at, i = [""], 0, 2
        while i + 1 < len(words):
            length, refs = words[i], words[i + 1]
            if length == 0 and refs == 0:
                strings.append("")
                i += 2
                continue
            if length == 0:  # a string over 64 KiB: its length in the next entry, high word first here
                if i + 3 >= len(words):
                    raise MsiError("corrupt MSI (its string pool is cut short)")
                length = (words[i + 3] << 16) + words[i + 2]
                i += 4
            else:
                i += 2
            if at + length > len(data):
                raise MsiError("corrupt MSI (its strings lie past their data)")
            strings.append(data[at:at + length].decode(encoding, "replace"))
            at += length
            if len(strings) > MAX_ROWS:
                raise MsiError(f"more than {MAX_ROWS} strings in an MSI")
        return strings

    def string(self, index: int) -> str | None:
        if index == 0:
            return None
        if index >= len(self.strings):
            raise MsiError(f"corrupt MSI (string {index} of {len(self.strings) - 1})")
        return self.strings[index]

    def _columns(self) -> dict[str, list[tuple[int, str, int]]]:
        """table → [(number, name, type)] in column order, from _Columns (whose own layout is fixed)."""
        rows = self._rows("_Columns", [STRING | VALID | 64, VALID | 2, STRING | VALID | 64, VALID | 2])
        tables: dict[str, list[tuple[int, str, int]]] = {}
        for table, number, name, kind in rows:
            if table is None or name is None or number is None or kind is None:
                raise MsiError("corrupt MSI (a column without a table, a name or a type)")
            tables.setdefault(table, []).append((number, name, kind))
        return {t: sorted(cols) for t, cols in tables.items()}

    def _width(self, kind: int) -> int:
        if kind & ~NULLABLE == STRING | VALID:
            return 2  # a stream column
        if kind & STRING:
            return self.ref
        return 2 if (kind & 0xFF) <= 2 else 4

    def _rows(self, table: str, kinds: list[int]) -> list[list[Any]]:
        data = self.stream(table, True)
        if data is None:
            return []
        widths = [self._width(k) for k in kinds]
        row = sum(widths)
        if not row or len(data) % row:
            raise MsiError(f"corrupt MSI (its {table} table is {len(data)} bytes, not whole rows of {row})")
        count = len(data) // row
        if count > MAX_ROWS:
            raise MsiError(f"more than {MAX_ROWS} rows in an MSI table")
        columns: list[list[Any]] = []
        at = 0
        for kind, width in zip(kinds, widths, strict=True):  # stored column by column
            raw = data[at:at + width * count]
            at += width * count
            if width == 3:
                values = [int.from_bytes(raw[i:i + 3], "little") for i in range(0, len(raw), 3)]
            else:
                values = list(struct.unpack_from(f"<{count}{'H' if width == 2 else 'I'}", raw))
            if kind & STRING and kind & ~NULLABLE != STRING | VALID:
                columns.append([self.string(v) for v in values])
            elif kind & STRING:
                columns.append(values)
            else:
                bias = 0x8000 if width == 2 else 0x80000000
                columns.append([None if v == 0 else v - bias for v in values])
        return [list(r) for r in zip(*columns, strict=True)]

    def table(self, name: str) -> list[dict[str, Any]]:
        cols = self.columns.get(name)
        if not cols:
            return []
        return [dict(zip([c[1] for c in cols], r, strict=True)) for r in self._rows(name, [c[2] for c in cols])]


def _dir_name(default: str | None) -> str:
    """A Directory row's target name: `target:source`'s target, `short|long`'s long."""
    target = (default or "").split(":", 1)[0]
    return target.split("|", 1)[-1]


class Msi:
    """A package opened once: `package` (its embedded cabinets and where their files install), `copy()` of a
    cabinet's stream; closed by `close()` or a `with` block. MsiError for a damaged one."""

    def __init__(self, path: str) -> None:
        import olefile

        with _as_msi_error():
            if not olefile.isOleFile(path):
                raise MsiError("not an MSI package (no OLE compound file)")
            self.ole = olefile.OleFileIO(path)
        try:
            with _as_msi_error():
                self.package = _package(self.ole)
        except BaseException:
            self.ole.close()
            raise

    def copy(self, stream: str, out: Any, limit: int) -> int:
        """Write one stream of the package to `out` (at most `limit` bytes, else MsiError); its size. A stream in
        the file's own sectors (any cabinet of 4 KiB or more) is copied run by run along its sector chain:
        olefile's reader holds a whole stream in memory, two or three times over while it joins the sectors."""
        with _as_msi_error():
            entry = self.ole.direntries[self.ole._find(stream)]
            size = int(entry.size)
            if size > limit:
                raise MsiError(f"a cabinet of {size} bytes, over the limit of {limit}")
            if size < self.ole.minisectorcutoff:  # (in the mini stream: small by definition)
                with self.ole.openstream(stream) as fh:
                    out.write(fh.read())
                return size
            _copy_chain(self.ole, entry.isectStart, size, out)
            return size

    def close(self) -> None:
        self.ole.close()

    def __enter__(self) -> Msi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _copy_chain(ole: Any, sect: int, size: int, out: Any) -> None:
    """Copy `size` bytes of a stream starting at sector `sect` of the compound file to `out`, following the FAT:
    consecutive sectors are read together, at most COPY_RUN bytes at a time. A chain that leaves the FAT, ends
    before `size` (ENDOFCHAIN and the other markers are beyond any index), or runs past the file is an MsiError;
    a chain with a loop is read at most `size` bytes far (one pass over as many sectors), as olefile does."""
    fat, ss, fp = ole.fat, ole.sectorsize, ole.fp
    count = (size + ss - 1) // ss
    if count > len(fat):
        raise MsiError(f"corrupt MSI (a stream of {size} bytes, more than the file's {len(fat)} sectors hold)")
    left, first, run = size, sect, 0
    for _ in range(count):
        if not 0 <= sect < len(fat):
            raise MsiError("corrupt MSI (a cabinet's sector chain ends early or leaves the file)")
        if run and sect == first + run and run * ss < COPY_RUN:
            run += 1
        else:
            if run:
                left = _copy_run(fp, ss, first, run, left, out)
            first, run = sect, 1
        sect = fat[sect]
    _copy_run(fp, ss, first, run, left, out)


COPY_RUN = 1 << 20


def _copy_run(fp: Any, ss: int, first: int, run: int, left: int, out: Any) -> int:
    """Copy `run` sectors from sector `first` (the stream's last ones: only the `left` bytes it still holds)."""
    want = min(run * ss, left)
    fp.seek(ss * (first + 1))  # (sector n follows the header, which takes one sector)
    data = fp.read(want)
    if len(data) != want:
        raise MsiError("corrupt MSI (a cabinet runs past the end of the file)")
    out.write(data)
    return left - want


@contextmanager
def _as_msi_error() -> Iterator[None]:
    """olefile's own errors, and struct's, on a damaged file: MsiError, one line."""
    try:
        yield
    except MsiError:
        raise
    except Exception as e:  # noqa: BLE001 - whatever a damaged compound file makes its reader raise
        raise MsiError(f"corrupt MSI ({type(e).__name__}: {e})") from None


def _package(ole: Any) -> Package:
    """The embedded cabinets of the opened package and where each of their files installs."""
    db = _Db(ole)
    dirs = {r["Directory"]: r for r in db.table("Directory") if r.get("Directory")}
    comps = {r["Component"]: r.get("Directory_") for r in db.table("Component") if r.get("Component")}
    resolved: dict[str, str] = {}

    def where(d: str) -> str:
        if d in resolved:
            return resolved[d]
        chain: list[str] = []
        at: str | None = d
        while at is not None and at not in resolved:
            if len(chain) > MAX_DEPTH or at in chain:
                raise MsiError(f"corrupt MSI (its directory {at} is inside itself)")
            chain.append(at)
            row = dirs.get(at)
            parent = row.get("Directory_Parent") if row else None
            at = str(parent) if parent and parent != at else None
        base = resolved.get(at, "") if at is not None else ""
        for name in reversed(chain):
            row = dirs.get(name) or {}
            own = _dir_name(row.get("DefaultDir"))
            if name == "TARGETDIR" or not row.get("Directory_Parent"):
                own = ""
            elif own == "." and name in KNOWN_FOLDERS:
                own = KNOWN_FOLDERS[name]
            base = f"{base}/{own}".strip("/") if own not in ("", ".") else base
            resolved[name] = base
        return resolved[d]

    names = {}
    for f in db.table("File"):
        key, comp = f.get("File"), f.get("Component_")
        if not key:
            continue
        home = comps.get(comp) if comp else None
        folder = where(str(home)) if home else ""
        leaf = _dir_name(f.get("FileName")) or key
        names[key] = f"{folder}/{leaf}".strip("/")
    cabinets = []
    for m in sorted(db.table("Media"), key=lambda r: r.get("DiskId") or 0):
        cab = m.get("Cabinet") or ""
        if cab.startswith("#"):
            raw = db.streams.get((cab[1:], False))
            if raw is None:
                raise MsiError(f"corrupt MSI (its cabinet {cab[1:]} is not in it)")
            cabinets.append((raw, ole.get_size(raw)))
    return Package(cabinets, names)
