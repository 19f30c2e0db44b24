"""Go build info, as `go version -m` reads it, from ELF, PE and Mach-O in pure Python.

The linker writes a 32-byte header, 16-byte aligned in the data segment:
"\\xff Go buildinf:", the pointer size, flags (bit 0 big-endian, bit 1 inline
strings), then either two pointers to Go string headers (Go 1.13-1.17) or,
from Go 1.18, two uvarint-length-prefixed strings: the Go version and the
module info wrapped in 16-byte sentinels. The module info is the text of
runtime/debug.BuildInfo.String(): path/mod/dep/=>/build lines.

When there is no build info (or it is damaged), the binary is still told to be
Go from its pclntab magic and the runtime's version string.
"""

from __future__ import annotations

import re
import struct

from analyzer.load import Artifact
from analyzer.load.elf import PT_LOAD, Buffer, ELFFile, find

TYPE_CHECKING = False  # typing is not imported at run time (analyzer/records.py says why)
if TYPE_CHECKING:
    from typing import Any

    from analyzer.load.pe import PEFile

MAGIC = b"\xff Go buildinf:"
# the module text sits between two 16-byte sentinels (cmd/go/internal/modload); this is the first
INFO_START = bytes.fromhex("3077af0c9274080241e1c107e6d618e6")
MAX_STRING = 1 << 24  # no real build info comes near 16 MiB; a lying length does not allocate more
BUILD_ID_TEXT = b'\xff Go build ID: "'
# pclntab magics (internal/abi/symtab.go): version range of the toolchain that wrote them
PCLNTAB_MAGICS = {0xFFFFFFFB: "go1.2-1.15", 0xFFFFFFFA: "go1.16-1.17", 0xFFFFFFF0: "go1.18-1.19", 0xFFFFFFF1: "go1.20+"}
# digits bounded (int() of more than 4,300 digits raises): a longer number does not match at all
_N = r"(\d{1,9})(?!\d)"
_GOVERSION = re.compile(rf"^go{_N}(?:\.{_N})?(?:\.{_N})?((?:rc|beta|alpha)\d{{1,9}}(?!\d))?(.*)$")


class GoInfoError(Exception):
    """The build info is there but cannot be decoded."""


# ---------------------------------------------------------------- address space per format


class Image:
    """The virtual-address view of a binary that the reader needs: segments and the data range."""

    def __init__(self, data: Buffer, segments: list[tuple[int, int, int]], data_range: tuple[int, int] | None) -> None:
        self.data = data
        self.segments = segments  # (vaddr, filesz, fileoff)
        self.data_range = data_range  # (vaddr, size) where the header is searched

    def read(self, addr: int, n: int) -> bytes:
        """n bytes at virtual address `addr`, or fewer when the mapping ends (never past the file)."""
        for vaddr, filesz, off in self.segments:
            if vaddr <= addr < vaddr + filesz:
                start = off + (addr - vaddr)
                end = min(start + n, off + filesz, len(self.data))
                return bytes(self.data[start:end])
        return b""

    def file_range(self, addr: int, size: int) -> tuple[int, int] | None:
        for vaddr, filesz, off in self.segments:
            if vaddr <= addr < vaddr + filesz:
                start = off + (addr - vaddr)
                return start, min(off + filesz, start + size, len(self.data))
        return None


def _elf_image(art: Artifact) -> Image:
    elf: ELFFile = art.binary
    segs = [(s.p_vaddr, s.p_filesz, s.p_offset) for s in elf.segments if s.p_type == PT_LOAD]
    rng = None
    sec = next((s for s in elf.sections if s.name == ".go.buildinfo"), None)
    if sec is not None:
        rng = (sec.sh_addr, sec.sh_size)
    else:
        seg = next((s for s in elf.segments if s.p_type == PT_LOAD and s.p_flags & 3 == 2), None)
        if seg is not None:
            rng = (seg.p_vaddr, seg.p_memsz)
    return Image(art.data, segs, rng)


def _pe_image(art: Artifact) -> Image:
    pe: PEFile = art.binary
    base = pe.optional_header.image_base
    segs, rng = [], None
    for sec in pe.sections:
        va, vsize, raw_size = sec.virtual_address, sec.virtual_size, sec.size_of_raw_data
        segs.append((base + va, min(raw_size, vsize or raw_size), sec.pointer_to_raw_data))
        if rng is None and va and vsize and sec.characteristics & ~0x600000 == 0xC0000040:  # initialised RW data
            rng = (base + va, vsize)
    return Image(art.data, segs, rng)


def _macho_image(art: Artifact) -> Image:
    d = art.data
    e = "<" if d[0] in (0xCE, 0xCF) else ">"
    wide = d[0] in (0xCF,) or d[3] == 0xCF
    at = 32 if wide else 28
    ncmds = struct.unpack_from(e + "I", d, 16)[0]
    segs, rng, fallback = [], None, None
    for _ in range(ncmds):
        cmd, size = struct.unpack_from(e + "II", d, at)
        if cmd in (0x1, 0x19):
            if cmd == 0x19:
                name = d[at + 8 : at + 24]
                vmaddr, vmsize, fileoff, filesize, maxprot, initprot, nsects = struct.unpack_from(
                    e + "QQQQiiI", d, at + 24
                )
                sect_at, sect_size = at + 72, 80
            else:
                name = d[at + 8 : at + 24]
                vmaddr, vmsize, fileoff, filesize, maxprot, initprot, nsects = struct.unpack_from(
                    e + "IIIIiiI", d, at + 24
                )
                sect_at, sect_size = at + 56, 68
            if not name.startswith(b"__PAGEZERO"):
                segs.append((vmaddr, filesize, fileoff))
            if fallback is None and vmaddr and filesize and maxprot == initprot == 3:
                fallback = (vmaddr, vmsize)
            for j in range(min(nsects, (size - (sect_at - at)) // sect_size)):
                s = sect_at + j * sect_size
                if bytes(d[s : s + 16]).rstrip(b"\0") == b"__go_buildinfo":
                    addr, ssize = struct.unpack_from(e + ("QQ" if cmd == 0x19 else "II"), d, s + 32)
                    rng = (addr, ssize)
        at += size
    return Image(d, segs, rng or fallback)


def image(art: Artifact) -> Image:
    return {"ELF": _elf_image, "PE": _pe_image, "MachO": _macho_image}[art.format](art)


# ---------------------------------------------------------------- decoding


def _uvarint(buf: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    for i in range(at, min(len(buf), at + 10)):
        b = buf[i]
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i + 1
        shift += 7
    raise GoInfoError("a varint runs past the end of the build info")


def find_header(img: Image) -> int | None:
    """The virtual address of the first 16-aligned build-info magic in the data range."""
    if img.data_range is None:
        return None
    addr, size = img.data_range
    rng = img.file_range(addr, size)
    if rng is None:
        return None
    start, end = rng
    at = start
    while True:
        hit = find(img.data, MAGIC, at, end)
        if hit < 0:
            return None
        vaddr = addr + (hit - start)
        if vaddr % 16 == 0:
            return vaddr
        at = hit + 1


def decode(img: Image) -> tuple[str, str] | None:
    """(Go version, module info text) from the build info, None when there is none."""
    hdr_addr = find_header(img)
    if hdr_addr is None:
        return None
    hdr = img.read(hdr_addr, 32)
    if len(hdr) < 32:
        raise GoInfoError("the build info header is truncated")
    ptr_size, flags = hdr[14], hdr[15]
    if flags & 2:
        blob = img.read(hdr_addr + 32, 2 * MAX_STRING)
        n, at = _uvarint(blob, 0)
        if at + n > len(blob):
            raise GoInfoError("the Go version string runs past the end of its segment")
        version = blob[at : at + n]
        m, at2 = _uvarint(blob, at + n)
        if at2 + m > len(blob):
            raise GoInfoError("the module info runs past the end of its segment")
        mod = blob[at2 : at2 + m]
    else:
        if ptr_size not in (4, 8):
            raise GoInfoError(f"bad pointer size {ptr_size} in the build info header")
        e = ">" if flags & 1 else "<"
        fmt = e + ("I" if ptr_size == 4 else "Q")
        vers_ptr, mod_ptr = struct.unpack_from(e + ("II" if ptr_size == 4 else "QQ"), hdr, 16)

        def read_string(addr: int) -> bytes:
            head = img.read(addr, 2 * ptr_size)
            if len(head) < 2 * ptr_size:
                raise GoInfoError(f"string header at {addr:#x} is outside every segment")
            data_ptr = struct.unpack_from(fmt, head, 0)[0]
            length = struct.unpack_from(fmt, head, ptr_size)[0]
            if length > MAX_STRING:
                raise GoInfoError(f"string at {addr:#x} claims {length} bytes")
            out = img.read(data_ptr, length)
            if len(out) < length:
                raise GoInfoError(f"string data at {data_ptr:#x} is outside every segment")
            return out

        version, mod = read_string(vers_ptr), read_string(mod_ptr)
    if not version:
        raise GoInfoError("the build info has an empty Go version")
    # like debug/buildinfo: 16 bytes go from each end without the sentinels being checked
    text = mod[16:-16] if len(mod) >= 33 and mod[-17] == 0x0A else b""
    return version.decode("utf-8", "replace"), text.decode("utf-8", "replace")


# ---------------------------------------------------------------- the text format


_SIMPLE_ESCAPES = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92, '"': 34}
_HEX = frozenset("0123456789abcdefABCDEF")


def go_unquote(s: str) -> str:
    """strconv.Unquote of a "..." or `...` literal, with its checks: \\x takes two hex digits, \\u four
    and \\U eight naming a valid rune (no surrogate, at most U+10FFFF), an octal escape three digits
    up to 0377; a newline or a \\' inside "..." is an error. Errors are GoInfoError."""
    if len(s) >= 2 and s[0] == s[-1] == "`":
        if "`" in s[1:-1]:
            raise GoInfoError(f"bad quoted string {s!r}")
        return s[1:-1].replace("\r", "")
    if len(s) < 2 or s[0] != '"' or s[-1] != '"':
        raise GoInfoError(f"bad quoted string {s!r}")
    body, out, i = s[1:-1], bytearray(), 0
    while i < len(body):
        c = body[i]
        if c in '"\n':
            raise GoInfoError(f"bad quoted string {s!r}")
        if c != "\\":
            out += c.encode("utf-8", "surrogateescape")
            i += 1
            continue
        k = body[i + 1 : i + 2]
        if k in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[k])
            i += 2
            continue
        width = {"x": 2, "u": 4, "U": 8}.get(k)
        if width:
            digits = body[i + 2 : i + 2 + width]
            if len(digits) != width or not set(digits) <= _HEX:
                raise GoInfoError(f"bad escape \\{k}{digits} in {s!r}")
            value = int(digits, 16)
            if k == "x":
                out.append(value)
            elif value > 0x10FFFF or 0xD800 <= value <= 0xDFFF:
                raise GoInfoError(f"bad escape \\{k}{digits} (not a valid character) in {s!r}")
            else:
                out += chr(value).encode()
            i += 2 + width
        elif k and k in "01234567":
            digits = body[i + 1 : i + 4]
            if len(digits) != 3 or not set(digits) <= set("01234567") or int(digits, 8) > 255:
                raise GoInfoError(f"bad escape \\{digits} in {s!r}")
            out.append(int(digits, 8))
            i += 4
        else:
            raise GoInfoError(f"bad escape \\{k} in {s!r}")
    return out.decode("utf-8", "replace")


def _quoted_prefix(s: str) -> str:
    """The leading Go quoted literal of s (as strconv.QuotedPrefix)."""
    q = s[0]
    i = 1
    while i < len(s):
        if s[i] == "\\" and q == '"':
            i += 2
            continue
        if s[i] == q:
            return s[: i + 1]
        i += 1
    raise GoInfoError(f"unterminated quoted string in {s!r}")


def parse_modinfo(text: str) -> dict[str, Any]:
    """path, main, deps and settings from the module info text (runtime/debug.ParseBuildInfo)."""
    path = None
    main: dict[str, Any] | None = None
    deps: list[dict[str, Any]] = []
    settings: list[tuple[str, str]] = []
    last: dict[str, Any] | None = None
    lines = text.split("\n")
    for line in lines[:-1]:  # a trailing fragment without its newline is ignored, as Go does
        if line.startswith("path\t"):
            path = line[5:]
        elif line.startswith(("mod\t", "dep\t")):
            cols = line[4:].split("\t")
            if len(cols) not in (2, 3):
                raise GoInfoError(f"expected 2 or 3 columns: {line!r}")
            mod = {"path": cols[0], "version": cols[1], "sum": cols[2] if len(cols) == 3 else "", "replace": None}
            if line.startswith("mod\t"):
                main = mod
            else:
                deps.append(mod)
            last = mod
        elif line.startswith("=>\t"):
            cols = line[3:].split("\t")
            if len(cols) != 3:
                raise GoInfoError(f"expected 3 columns for replacement: {line!r}")
            if last is None:
                raise GoInfoError("replacement with no module on previous line")
            last["replace"] = {"path": cols[0], "version": cols[1], "sum": cols[2]}
            last = None
        elif line.startswith("build\t"):
            kv = line[6:]
            if not kv:
                raise GoInfoError("empty build setting")
            if kv[0] in '"`':
                kq = _quoted_prefix(kv)
                key, rest = go_unquote(kq), kv[len(kq) :]
                if not rest.startswith("="):
                    raise GoInfoError(f"missing = after quoted key: {line!r}")
                value = rest[1:]
            else:
                if kv.startswith("="):
                    raise GoInfoError(f"empty key: {line!r}")
                key, sep, value = kv.partition("=")
                if not sep:
                    raise GoInfoError(f"missing = in build setting: {line!r}")
                if _needs_quotes(key, key=True):
                    raise GoInfoError(f"unquoted key {key!r} must be quoted")
            if value and value[0] in '"`':
                value = go_unquote(value)
            elif _needs_quotes(value):
                raise GoInfoError(f"unquoted value {value!r} must be quoted")
            settings.append((key, value))
    return {"path": path, "main": main, "deps": deps, "settings": settings}


def _needs_quotes(text: str, key: bool = False) -> bool:
    """BuildInfo.String's rule: a key is quoted when empty or holding any of `= \t\r\n"` and a backquote,
    a value when holding any of those but `=`."""
    return (key and (not text or "=" in text)) or not _QUOTED.isdisjoint(text)


_QUOTED = frozenset(' \t\r\n"`')


_QUOTE_ESCAPES = {7: "\\a", 8: "\\b", 12: "\\f", 10: "\\n", 13: "\\r", 9: "\\t", 11: "\\v"}


def go_quote(text: str) -> str:
    """strconv.Quote: printable characters as they are (Go's unicode.IsPrint is Python's isprintable: letters,
    marks, numbers, punctuation, symbols and the ASCII space), the rest escaped the way Go escapes them."""
    out = ['"']
    for ch in text:
        c = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        elif c in _QUOTE_ESCAPES:
            out.append(_QUOTE_ESCAPES[c])
        elif c < 0x20 or c == 0x7F:
            out.append(f"\\x{c:02x}")
        elif c < 0x10000:
            out.append(f"\\u{c:04x}")
        else:
            out.append(f"\\U{c:08x}")
    return "".join(out) + '"'


def modinfo_string(info: dict[str, Any]) -> str:
    """The module info as runtime/debug.BuildInfo.String() writes it back from its parsed form (without the go
    line): what `go version -m` prints, which is not always the text in the binary (quoting is redone)."""
    out: list[str] = []

    def module(word: str, m: dict[str, Any]) -> None:
        out.append(f"{word}\t{m['path']}\t{m['version']}")
        if m.get("replace") is None:
            out.append(f"\t{m['sum']}")
        else:
            out.append("\n")
            module("=>", m["replace"])
        out.append("\n")  # after a replacement too: Go leaves an empty line there

    if info["path"]:
        out.append(f"path\t{info['path']}\n")
    main = info["main"]
    if main and (main["path"] or main["version"] or main["sum"] or main["replace"]):
        module("mod", main)
    for dep in info["deps"]:
        module("dep", dep)
    for key, value in info["settings"]:
        key = go_quote(key) if _needs_quotes(key, key=True) else key
        value = go_quote(value) if _needs_quotes(value) else value
        out.append(f"build\t{key}={value}\n")
    return "".join(out)


def parse_version(v: str) -> dict[str, Any] | None:
    """{major, minor, patch, prerelease, experiments} of a Go version string."""
    m = _GOVERSION.match(v)
    if not m:
        return None
    rest = m[5] or ""
    experiments: list[str] = []
    x = re.search(r"[ -]X:(\S+)", rest)
    if x:
        experiments = x[1].split(",")
    return {
        "major": int(m[1]),
        "minor": int(m[2] or 0),
        "patch": int(m[3] or 0),
        # one number that orders releases (1.22.7 -> 1022007), for rules to compare
        "number": int(m[1]) * 1_000_000 + int(m[2] or 0) * 1000 + int(m[3] or 0),
        "prerelease": m[4],
        "experiments": experiments,
        "suffix": rest.strip() or None,
    }


# ---------------------------------------------------------------- build ID and pclntab


def build_id(art: Artifact) -> str | None:
    """The Go build ID: the ELF "Go" note (type 4), else the text form near the start of the file."""
    if art.format == "ELF":
        from analyzer.facts.elf import _note_ranges, notes_in

        elf: ELFFile = art.binary
        for start, size in _note_ranges(elf):
            for name, ntype, desc in notes_in(elf, start, size):
                if name == b"Go" and ntype == 4:
                    return desc.decode("utf-8", "replace")
    at = art.data.find(BUILD_ID_TEXT, 0, 1 << 20)  # the linker puts it at the start of the text
    if at >= 0:
        quoted_at = at + len(BUILD_ID_TEXT) - 1
        end = art.data.find(b'"\n \xff', quoted_at, quoted_at + 4096)
        if end > 0:
            try:
                return go_unquote(bytes(art.data[quoted_at : end + 1]).decode("utf-8", "replace"))
            except GoInfoError:
                return None
    return None


def _pclntab_section(art: Artifact) -> tuple[int, int] | None:
    """File range of .gopclntab (ELF) or __gopclntab (Mach-O), when the binary has one."""
    if art.format == "ELF":
        elf: ELFFile = art.binary
        sec = next((s for s in elf.sections if s.name == ".gopclntab"), None)
        return (sec.sh_offset, sec.sh_offset + sec.sh_size) if sec else None
    if art.format == "MachO":
        at = find(art.data, b"__gopclntab\0")
        return (0, len(art.data)) if at >= 0 else None
    return None


def pclntab(art: Artifact, where: tuple[int, int]) -> str | None:
    """The toolchain range told by the pclntab magic in data[where], or None."""
    start, end = where
    for magic, versions in PCLNTAB_MAGICS.items():
        for e in ("<", ">"):
            for quantum in (1, 2, 4):
                for ptr in (4, 8):
                    if find(art.data, struct.pack(e + "IBBBB", magic, 0, 0, quantum, ptr), start, end) >= 0:
                        return versions
    return None


def _runtime_version(art: Artifact) -> str | None:
    m = re.search(rb"go1\.\d+(?:\.\d+)?(?:(?:rc|beta)\d+)?", bytes(art.data[: 64 << 20]))
    return m[0].decode() if m else None


# ---------------------------------------------------------------- facts


def facts(art: Artifact) -> dict[str, Any] | None:
    """The `go` facts of one artifact, or None when it is not a Go binary."""
    try:
        decoded = decode(image(art))
        error = None
    except (GoInfoError, struct.error, IndexError) as e:
        decoded, error = None, str(e)
    if decoded is None:
        # only binaries with Go's own marks are searched further: most binaries are not Go
        bid = build_id(art)
        section = _pclntab_section(art)
        if bid is None and section is None and error is None:
            return None
        magic = pclntab(art, section or (0, len(art.data)))
        version = _runtime_version(art)
        return {
            "version": version,
            "version_parsed": parse_version(version) if version else None,
            "build_info": "damaged" if error else "missing",
            "error": error,
            "pclntab": magic,
            "path": None,
            "main": None,
            "deps": [],
            "settings": {},
            "settings_order": [],
            "build_id": bid,
            "build_id_parts": bid.split("/") if bid else None,
            "modinfo": None,
        }
    version, text = decoded
    try:
        info = parse_modinfo(text)
        error = None
    except GoInfoError as e:
        info, error = {"path": None, "main": None, "deps": [], "settings": []}, str(e)
    settings = dict(info["settings"])
    bid = build_id(art)
    return {
        "version": version,
        "version_parsed": parse_version(version),
        "build_info": "damaged" if error else "present",
        "error": error,
        "pclntab": None,
        "path": info["path"],
        "main": info["main"],
        "deps": info["deps"],
        "settings": settings,
        "settings_order": [k for k, _ in info["settings"]],
        "build_id": bid,
        "build_id_parts": bid.split("/") if bid else None,
        "modinfo": text,
    }
