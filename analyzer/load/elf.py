"""A small, bounded, read-only ELF reader over the file's bytes.

binlens reads ELF itself rather than through LIEF: it touches only the
headers and the dynamic-linking tables (so a 2 GB library costs what its
headers cost), it never builds objects for parts nobody asked about, and every
offset and count it follows is checked against the file first. Names follow
the ELF specification and readelf.

Hostile input raises AnalyzerError (via `ELFError`), never IndexError or a
struct.error, and never allocates more than the file's size.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Iterator
from functools import cached_property

from analyzer.errors import AnalyzerError, name_text, require
from analyzer.records import Record

SHT_NOBITS, SHT_DYNSYM, SHT_DYNAMIC, SHT_NOTE = 8, 11, 6, 7
SHT_GNU_VERDEF, SHT_GNU_VERNEED, SHT_GNU_VERSYM = 0x6FFFFFFD, 0x6FFFFFFE, 0x6FFFFFFF
PT_LOAD, PT_DYNAMIC, PT_INTERP, PT_NOTE = 1, 2, 3, 4
DT_NULL, DT_HASH, DT_STRTAB, DT_SYMTAB, DT_STRSZ = 0, 4, 5, 6, 10
DT_GNU_HASH, DT_VERSYM, DT_VERNEED, DT_VERNEEDNUM = 0x6FFFFEF5, 0x6FFFFFF0, 0x6FFFFFFE, 0x6FFFFFFF
DT_VERDEF, DT_VERDEFNUM = 0x6FFFFFFC, 0x6FFFFFFD
SHT_SYMTAB, SHT_RELA, SHT_REL = 2, 4, 9
SHF_ALLOC = 0x2
EM_X86_64 = 62
PT_GNU_STACK, PT_GNU_RELRO = 0x6474E551, 0x6474E552
DT_NEEDED, DT_SONAME, DT_RPATH, DT_RUNPATH = 1, 14, 15, 29
DT_RELA, DT_RELASZ, DT_REL, DT_RELSZ, DT_JMPREL, DT_PLTRELSZ, DT_PLTREL = 7, 8, 17, 18, 23, 2, 20
DT_FLAGS, DT_FLAGS_1, DT_BIND_NOW, DT_TEXTREL = 30, 0x6FFFFFFB, 24, 22
DF_BIND_NOW, DF_TEXTREL = 0x8, 0x4
DF_1_NOW, DF_1_NODEFLIB, DF_1_PIE = 0x1, 0x800, 0x08000000
VER_FLG_WEAK = 0x2
ET_EXEC, ET_DYN = 2, 3

Buffer = bytes | mmap.mmap  # a whole file's bytes, read or memory-mapped
Relocation = tuple[int, int, int, "int | None"]  # r_offset, r_type, r_sym, r_addend (None: REL, in place)

# Bounds on counts read from the file, beyond which it is called corrupt.
MAX_VERSION_ENTRIES = 1 << 20
MAX_RELOCATIONS = 1 << 22  # entries read from one dynamic relocation table (the rest left unread: not `whole`)
EM_MIPS = 8


class ELFError(AnalyzerError):
    """A structure inside an ELF file lies outside it or is inconsistent."""


class Section(Record):
    index: int  # type: ignore[assignment]  # a field: tuple.index is not used on it
    name: str
    sh_type: int
    sh_flags: int
    sh_addr: int
    sh_offset: int
    sh_size: int
    sh_link: int
    sh_info: int
    sh_addralign: int
    sh_entsize: int
    name_bytes: bytes = b""  # the name as stored (`name` is its text, see errors.name_text)


class Segment(Record):
    p_type: int
    p_flags: int
    p_offset: int
    p_vaddr: int
    p_filesz: int
    p_memsz: int
    p_align: int


class Symbol(Record):
    index: int  # type: ignore[assignment]  # a field: tuple.index is not used on it
    name: str
    st_info: int
    st_other: int
    st_shndx: int
    st_value: int
    st_size: int

    @property
    def binding(self) -> int:
        return self.st_info >> 4

    @property
    def type(self) -> int:
        return self.st_info & 0xF


class VersionNeed(Record):
    """One Elf_Verneed entry: a needed file and the version nodes required from it."""

    file: str
    aux: tuple[tuple[str, int, int], ...]  # (name, vna_other index, vna_flags)


class VersionDef(Record):
    """One Elf_Verdef entry: a version node this object defines."""

    index: int  # type: ignore[assignment]  # a field: tuple.index is not used on it
    flags: int
    names: tuple[str, ...]  # the node name first, then its parents


MAX_NAME = 1 << 16  # bytes of one name from the dynamic string table (real ones: under 1 KiB)


def union_spans(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """(start, end) spans merged where they overlap, in order: each byte once (a hostile file's thousand
    segments or tables over the same bytes are searched once)."""
    union: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if union and start < union[-1][1]:
            union[-1] = (union[-1][0], max(union[-1][1], end))
        else:
            union.append((start, end))
    return union


FIND_STEP = 1 << 26


def find(data: Buffer, needle: bytes, start: int = 0, end: int | None = None) -> int:
    """data.find(needle, start, end), searched 64 MiB at a time: a time budget's signal is handled between the
    pieces (one search of a huge file, or of a section a hostile header makes span it, would run to its end)."""
    end = len(data) if end is None else min(end, len(data))
    at = max(start, 0)
    while at < end:
        hit = data.find(needle, at, min(end, at + FIND_STEP + len(needle) - 1))
        if hit >= 0:
            return hit
        at += FIND_STEP
    return -1


def _cbytes(data: Buffer, at: int, end: int) -> bytes:
    """The NUL-terminated string at `at`, not reading past `end` nor more than 4 KiB."""
    if at < 0 or at >= end:
        return b""
    limit = min(end, at + 4096)
    stop = data.find(b"\0", at, limit)  # in place: bytes and mmap both search a range without a copy
    return data[at : stop if stop >= 0 else limit]


def _cstr(data: Buffer, at: int, end: int) -> str:
    """The NUL-terminated string at `at` as text (errors.name_text)."""
    return name_text(_cbytes(data, at, end))


class ELFFile:
    """The parts of an ELF file binlens reads, parsed on first use.

    The header tables are assumed to lie within the file
    (`check_elf` below checks that first); everything reached
    through them is checked here.
    """

    def __init__(self, data: Buffer, path: str = "") -> None:
        self.data = data
        self.path = path
        self.size = len(data)
        self._names: dict[int, str] = {}  # dynamic string table offset -> text
        self._names_bytes = 0  # the bytes of those names, bounded (dynstr)
        self.derived: dict[str, object] = {}  # immutable values other layers derive from the file, made once
        self.bits = 64 if data[4] == 2 else 32
        self.byte_order = "<" if data[5] == 1 else ">"  # struct's prefix for EI_DATA (ELFDATA2LSB / MSB)
        fmt = self.byte_order + ("HHIQQQIHHHHHH" if self.bits == 64 else "HHIIIIIHHHHHH")
        (
            self.e_type,
            self.e_machine,
            self.e_version,
            self.e_entry,
            self.e_phoff,
            self.e_shoff,
            self.e_flags,
            _,
            self.e_phentsize,
            self.e_phnum,
            self.e_shentsize,
            self.e_shnum,
            self.e_shstrndx,
        ) = struct.unpack_from(fmt, data, 16)
        self.ei_osabi = data[7]
        self.ei_abiversion = data[8]

    def fail(self, problem: str) -> ELFError:
        return ELFError(problem, self.path)

    def _in_file(self, offset: int, size: int, what: str) -> None:
        if offset < 0 or size < 0 or offset + size > self.size:
            raise self.fail(f"corrupt: {what} ({offset:#x}+{size:#x}) lies outside the file (size {self.size})")

    # ------------------------------------------------------------ tables

    @cached_property
    def sections(self) -> list[Section]:
        if not self.e_shoff:
            return []
        e = self.byte_order
        fmt = e + ("IIQQQQIIQQ" if self.bits == 64 else "IIIIIIIIII")
        shnum = self.e_shnum
        first = struct.unpack_from(fmt, self.data, self.e_shoff)
        if shnum == 0:
            shnum = first[5]
        shstrndx = first[6] if self.e_shstrndx == 0xFFFF else self.e_shstrndx
        self._in_file(self.e_shoff, shnum * self.e_shentsize, "section header table")
        raw = [struct.unpack_from(fmt, self.data, self.e_shoff + i * self.e_shentsize) for i in range(shnum)]
        names_off = names_end = 0
        if 0 < shstrndx < shnum:
            s = raw[shstrndx]
            names_off, names_end = s[4], min(self.size, s[4] + s[5])
        names = [_cbytes(self.data, names_off + r[0], names_end) if names_end else b"" for r in raw]
        return [
            Section(i, name_text(n), r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], n)
            for i, (n, r) in enumerate(zip(names, raw, strict=True))
        ]

    @cached_property
    def segments(self) -> list[Segment]:
        phnum = self.e_phnum
        if phnum == 0xFFFF and self.sections:
            phnum = self.sections[0].sh_info
        if not phnum:
            return []
        self._in_file(self.e_phoff, phnum * self.e_phentsize, "program header table")
        out = []
        for i in range(phnum):
            at = self.e_phoff + i * self.e_phentsize
            if self.bits == 64:
                p_type, p_flags, off, vaddr, _, filesz, memsz, align = struct.unpack_from(
                    self.byte_order + "IIQQQQQQ", self.data, at
                )
            else:
                p_type, off, vaddr, _, filesz, memsz, p_flags, align = struct.unpack_from(
                    self.byte_order + "IIIIIIII", self.data, at
                )
            out.append(Segment(p_type, p_flags, off, vaddr, filesz, memsz, align))
        return out

    def section_by_type(self, sh_type: int) -> Section | None:
        return next((s for s in self.sections if s.sh_type == sh_type), None)

    def vaddr_to_offset(self, vaddr: int) -> int | None:
        """The file offset of a virtual address inside a PT_LOAD's file image, or None."""
        for seg in self.segments:
            if seg.p_type == PT_LOAD and seg.p_vaddr <= vaddr < seg.p_vaddr + seg.p_filesz:
                return seg.p_offset + (vaddr - seg.p_vaddr)
        return None

    # ------------------------------------------------------------ program interpreter and dynamic

    @cached_property
    def interpreter(self) -> str | None:
        """PT_INTERP's path; None without one, or when its bytes are not in the file (a debug-info
        companion keeps the program headers but not the contents: readelf finds no name, file says
        "interpreter *empty*")."""
        seg = next((s for s in self.segments if s.p_type == PT_INTERP), None)
        if seg is None or seg.p_filesz == 0:
            return None
        self._in_file(seg.p_offset, seg.p_filesz, "PT_INTERP")
        return _cstr(self.data, seg.p_offset, seg.p_offset + seg.p_filesz)

    @cached_property
    def dynamic(self) -> list[tuple[int, int]]:
        """(d_tag, d_val) of the dynamic section up to DT_NULL, from PT_DYNAMIC (else SHT_DYNAMIC)."""
        seg = next((s for s in self.segments if s.p_type == PT_DYNAMIC), None)
        if seg is not None:
            off, size = seg.p_offset, seg.p_filesz
        else:
            sec = self.section_by_type(SHT_DYNAMIC)
            if sec is None:
                return []
            off, size = sec.sh_offset, sec.sh_size
        if size == 0:  # nothing of it in the file (a debug-info companion): no entries, wherever it points
            return []
        self._in_file(off, size, "dynamic section")
        ent = 16 if self.bits == 64 else 8
        fmt = self.byte_order + ("qQ" if self.bits == 64 else "iI")
        out = []
        for tag, val in struct.iter_unpack(fmt, self.data[off : off + size - size % ent]):
            if tag == DT_NULL:
                break
            out.append((tag & 0xFFFFFFFFFFFFFFFF, val))
        return out

    def dyn_value(self, tag: int) -> int | None:
        return next((v for t, v in self.dynamic if t == tag), None)

    @cached_property
    def _dynstr(self) -> tuple[int, int]:
        """(offset, end) of the dynamic string table: DT_STRTAB/DT_STRSZ, else .dynsym's linked section."""
        addr, size = self.dyn_value(DT_STRTAB), self.dyn_value(DT_STRSZ)
        if addr is not None:
            off = self.vaddr_to_offset(addr)
            if off is not None:
                return off, min(self.size, off + (size or 0))
        dynsym = self.section_by_type(SHT_DYNSYM)
        if dynsym is not None and dynsym.sh_link < len(self.sections):
            s = self.sections[dynsym.sh_link]
            return s.sh_offset, min(self.size, s.sh_offset + s.sh_size)
        return 0, 0

    @cached_property
    def _dynstr_bytes(self) -> bytes:
        start, end = self._dynstr
        if not end:
            raise self.fail("corrupt: dynamic string table not found")
        return bytes(self.data[start:end])

    def dynstr(self, offset: int) -> str:
        """The string at `offset` in the dynamic string table ("" when out of range).

        Bounded for hostile tables: a name stops after MAX_NAME bytes, each offset is read once, and
        the names read may total at most NAMES_BUDGET(table) bytes (linkers share suffixes, so real
        files stay far below: many names pointing into one long unterminated run do not)."""
        hit = self._names.get(offset)
        if hit is not None:
            return hit
        table = self._dynstr_bytes
        if offset < 0 or offset >= len(table):
            return ""
        stop = table.find(b"\0", offset, offset + MAX_NAME)
        raw = table[offset : stop if stop >= 0 else offset + MAX_NAME]
        self._names_bytes += len(raw)
        if self._names_bytes > max(16 * len(table), 16 << 20):
            raise self.fail("corrupt: the dynamic symbols' names overlap far beyond what a linker writes")
        text = self._names[offset] = name_text(raw)
        return text

    # ------------------------------------------------------------ dynamic symbols and versions

    def _table(self, sh_type: int, dt_tag: int) -> tuple[int, int | None]:
        """(file offset, size or None) of a table from its section, else from its DT_* address."""
        sec = self.section_by_type(sh_type)
        if sec is not None and sec.sh_type != SHT_NOBITS:
            self._in_file(sec.sh_offset, sec.sh_size, f"section {sec.name or sec.index}")
            return sec.sh_offset, sec.sh_size
        addr = self.dyn_value(dt_tag)
        if addr is None:
            return -1, None
        off = self.vaddr_to_offset(addr)
        if off is None:
            raise self.fail(f"corrupt: dynamic tag {dt_tag:#x} address {addr:#x} is outside every loaded segment")
        return off, None

    @cached_property
    def dynsym_count(self) -> int:
        """How many .dynsym entries: from the section, else from DT_HASH, else from DT_GNU_HASH."""
        ent = 24 if self.bits == 64 else 16
        sec = self.section_by_type(SHT_DYNSYM)
        if sec is not None:
            return sec.sh_size // ent
        off, _ = self._table(-1, DT_HASH)
        if off >= 0:
            self._in_file(off, 8, "DT_HASH header")
            return int(struct.unpack_from(self.byte_order + "II", self.data, off)[1])
        off, _ = self._table(-1, DT_GNU_HASH)
        if off >= 0:
            return self._gnu_hash_count(off)
        return 0

    def _gnu_hash_count(self, off: int) -> int:
        e, word = self.byte_order, 8 if self.bits == 64 else 4
        self._in_file(off, 16, "DT_GNU_HASH header")
        nbuckets, symoffset, bloom_size, _ = struct.unpack_from(e + "IIII", self.data, off)
        buckets = off + 16 + bloom_size * word
        self._in_file(buckets, nbuckets * 4, "DT_GNU_HASH buckets")
        last = max(struct.unpack_from(f"{e}{nbuckets}I", self.data, buckets), default=0)
        if last < symoffset:
            return symoffset
        # follow the last bucket's chain to its end marker (low bit set), a block at a time
        at = buckets + nbuckets * 4 + (last - symoffset) * 4
        while True:
            n = min(4096, (self.size - at) // 4)
            if n <= 0:
                raise self.fail("corrupt: DT_GNU_HASH chain runs past the end of the file")
            for i, value in enumerate(struct.unpack_from(f"{e}{n}I", self.data, at)):
                if value & 1:
                    return last + i + 1
            last += n
            at += 4 * n

    def _dynsym_rows(self) -> list[tuple[int, int, int, int, int, int]]:
        """(st_name, st_info, st_other, st_shndx, st_value, st_size) of every .dynsym entry after 0."""
        count = self.dynsym_count
        if count <= 1:
            return []
        off, _ = self._table(SHT_DYNSYM, DT_SYMTAB)
        if off < 0:
            return []
        ent = 24 if self.bits == 64 else 16
        self._in_file(off, count * ent, "dynamic symbol table")
        table = self.data[off + ent : off + count * ent]
        if self.bits == 64:
            return list(struct.iter_unpack(self.byte_order + "IBBHQQ", table))
        return [(n, i, o, sh, v, sz) for n, v, sz, i, o, sh in struct.iter_unpack(self.byte_order + "IIIBBH", table)]

    def dynamic_relocations(self) -> tuple[list[Relocation], list[Relocation], bool]:
        """The dynamic relocations: those of DT_RELA and DT_REL (which the loader processes at start-up), those of
        DT_JMPREL (the PLT's, in the form DT_PLTREL names), each (r_offset, r_type, r_sym, r_addend: None for REL,
        whose addend is the word in place), and whether every table lay in the file and held at most
        MAX_RELOCATIONS entries. MIPS64's r_info (r_sym, then r_ssym and three type bytes) is read as such."""
        rela, rel, plt, _, whole = self.relocation_tables()
        return rela + rel, plt, whole

    def relocation_tables(self) -> tuple[list[Relocation], list[Relocation], list[Relocation], bool, bool]:
        """The three dynamic relocation tables apart, as the loaders walk them: DT_RELA's, DT_REL's, DT_JMPREL's;
        whether DT_JMPREL's entries are Rela ones (DT_PLTREL), and whether every table was read whole."""
        dyn = dict(self.dynamic)
        plt_rela = dyn.get(DT_PLTREL, DT_RELA) == DT_RELA
        rela, whole_a = self._relocation_table(dyn.get(DT_RELA), dyn.get(DT_RELASZ), True)
        rel, whole_b = self._relocation_table(dyn.get(DT_REL), dyn.get(DT_RELSZ), False)
        plt, whole_c = self._relocation_table(dyn.get(DT_JMPREL), dyn.get(DT_PLTRELSZ), plt_rela)
        return rela, rel, plt, plt_rela, whole_a and whole_b and whole_c

    def _relocation_table(self, addr: int | None, size: int | None, rela: bool) -> tuple[list[Relocation], bool]:
        if not addr or not size:
            return [], True
        off = self.vaddr_to_offset(addr)
        if off is None or off + size > self.size:
            return [], False
        b64, e = self.bits == 64, self.byte_order
        fmt = e + ("QQq" if rela else "QQ") if b64 else e + ("IIi" if rela else "II")
        ent = struct.calcsize(fmt)
        count = min(size // ent, MAX_RELOCATIONS)
        rows = struct.iter_unpack(fmt, self.data[off : off + count * ent])
        if b64 and self.e_machine == EM_MIPS:  # r_sym (a word), r_ssym, r_type3, r_type2, r_type, in file order
            little = e == "<"
            out = [(r[0], (raw := r[1].to_bytes(8, "little" if little else "big"))[7],
                    int.from_bytes(raw[:4], "little" if little else "big"), r[2] if rela else None) for r in rows]
        elif b64:
            out = [(r[0], r[1] & 0xFFFFFFFF, r[1] >> 32, r[2] if rela else None) for r in rows]
        else:
            out = [(r[0], r[1] & 0xFF, r[1] >> 8, r[2] if rela else None) for r in rows]
        return out, count == size // ent

    def dynstr_has(self, needle: bytes) -> bool:
        """Whether `needle` occurs anywhere in the dynamic string table (False without dynamic symbols): a
        quick test before reading every symbol for a name."""
        return self.dynsym_count > 1 and needle in self._dynstr_bytes

    def dynamic_symbols(self) -> Iterator[Symbol]:
        """The .dynsym entries in index order (index 0, the null symbol, left out)."""
        for index, (name, info, other, shndx, value, size) in enumerate(self._dynsym_rows(), 1):
            yield Symbol(index, self.dynstr(name), info, other, shndx, value, size)

    def undefined_symbols(self) -> list[tuple[int, str, int]]:
        """(index, name, st_info) of each named undefined (SHN_UNDEF) .dynsym entry: the imports."""
        dynstr = self.dynstr
        return [
            (index, dynstr(row[0]), row[1])
            for index, row in enumerate(self._dynsym_rows(), 1)
            if row[3] == 0 and row[0]
        ]

    @cached_property
    def versym(self) -> tuple[int, ...]:
        """The .gnu.version entry of each dynamic symbol (empty when unversioned)."""
        off, _ = self._table(SHT_GNU_VERSYM, DT_VERSYM)
        count = self.dynsym_count
        if off < 0 or not count:
            return ()
        self._in_file(off, 2 * count, ".gnu.version")
        return struct.unpack_from(f"{self.byte_order}{count}H", self.data, off)

    @cached_property
    def version_needs(self) -> list[VersionNeed]:
        """The Elf_Verneed chain (.gnu.version_r) in file order."""
        off, size = self._table(SHT_GNU_VERNEED, DT_VERNEED)
        if off < 0:
            return []
        sec = self.section_by_type(SHT_GNU_VERNEED)
        count = sec.sh_info if sec is not None and sec.sh_info else self.dyn_value(DT_VERNEEDNUM) or 0
        out: list[VersionNeed] = []
        e, at, seen = self.byte_order, off, 0
        for _ in range(min(count, MAX_VERSION_ENTRIES)):
            self._in_file(at, 16, "version need entry")
            _, cnt, file_off, aux_off, nxt = struct.unpack_from(e + "HHIII", self.data, at)
            aux: list[tuple[str, int, int]] = []
            a = at + aux_off
            for _ in range(cnt):
                self._in_file(a, 16, "version need aux entry")
                _, flags, other, name, anext = struct.unpack_from(e + "IHHII", self.data, a)
                aux.append((self.dynstr(name), other, flags))
                seen += 1
                if seen > MAX_VERSION_ENTRIES:
                    raise self.fail("corrupt: version need entries do not end")
                if not anext:
                    break
                a += anext
            out.append(VersionNeed(self.dynstr(file_off), tuple(aux)))
            if not nxt:
                break
            at += nxt
        return out

    @cached_property
    def version_defs(self) -> list[VersionDef]:
        """The Elf_Verdef chain (.gnu.version_d) in file order."""
        off, _ = self._table(SHT_GNU_VERDEF, DT_VERDEF)
        if off < 0:
            return []
        sec = self.section_by_type(SHT_GNU_VERDEF)
        count = sec.sh_info if sec is not None and sec.sh_info else self.dyn_value(DT_VERDEFNUM) or 0
        out: list[VersionDef] = []
        e, at = self.byte_order, off
        for _ in range(min(count, MAX_VERSION_ENTRIES)):
            self._in_file(at, 20, "version definition entry")
            _, flags, ndx, cnt, _, aux_off, nxt = struct.unpack_from(e + "HHHHIII", self.data, at)
            names = []
            a = at + aux_off
            for _ in range(min(cnt, 64)):
                self._in_file(a, 8, "version definition aux entry")
                name, anext = struct.unpack_from(e + "II", self.data, a)
                names.append(self.dynstr(name))
                if not anext:
                    break
                a += anext
            out.append(VersionDef(ndx, flags, tuple(names)))
            if not nxt:
                break
            at += nxt
        return out


# ---------------------------------------------------------------- the structural check


def check_elf(path: str, data: Buffer) -> None:
    """Reject ELF files whose header tables or contents lie outside the file."""
    size = len(data)
    require(size >= 16, path, f"truncated ELF identification ({size} bytes)")
    ei_class, ei_data = data[4], data[5]
    require(ei_class in (1, 2), path, f"bad ELF class {ei_class}")
    require(ei_data in (1, 2), path, f"bad ELF data encoding {ei_data}")
    e = "<" if ei_data == 1 else ">"
    if ei_class == 1:
        ehdr, phent, shent = e + "HHIIIIIHHHHHH", 32, 40
    else:
        ehdr, phent, shent = e + "HHIQQQIHHHHHH", 56, 64
    ehsize = 16 + struct.calcsize(ehdr)
    require(size >= ehsize, path, f"truncated ELF header ({size} of {ehsize} bytes)")
    (_, _, _, _, phoff, shoff, _, _, phentsize, phnum, shentsize, shnum, shstrndx) = struct.unpack_from(ehdr, data, 16)
    sections: list[tuple[int, int, int, int]] = []  # (type, offset, size, link)
    if shoff:
        require(shentsize == shent, path, f"bad section header size {shentsize}")
        require(shoff + shent <= size, path, f"section header table at {shoff:#x} is past end of file (size {size})")
        s0 = _elf_shdr(data, e, ei_class, shoff)
        if shnum == 0:  # more than SHN_LORESERVE sections: real count in section 0
            shnum = s0[2] if s0[0] == 0 else 0
        if shstrndx == 0xFFFF:
            shstrndx = s0[3]
        end = shoff + shnum * shent
        require(
            end <= size, path, f"truncated: {shnum} section headers at {shoff:#x} end past end of file (size {size})"
        )
        sections = [_elf_shdr(data, e, ei_class, shoff + i * shent) for i in range(shnum)]
        require(shstrndx < max(shnum, 1), path, f"bad section name table index {shstrndx}")
        for i, (stype, off, sz, _) in enumerate(sections):
            if stype != 8 and i and sz and off + sz > size:  # SHT_NOBITS occupies no file bytes
                raise AnalyzerError(
                    f"truncated: section {i} ({off:#x}+{sz:#x}) ends past end of file (size {size})", path
                )
    if phnum == 0xFFFF:  # PN_XNUM: the real count, at least 0xffff, is in section 0's sh_info
        phnum = _elf_sh_info(data, e, ei_class, shoff) if sections else 0
        require(phnum >= 0xFFFF, path, f"bad program header count: PN_XNUM, but section 0 gives {phnum}")
    if phnum:
        require(phentsize == phent, path, f"bad program header size {phentsize}")
        require(
            phoff + phnum * phent <= size,
            path,
            f"truncated: {phnum} program headers at {phoff:#x} end past end of file (size {size})",
        )
        fmt = e + ("IIIIIIII" if ei_class == 1 else "IIQQQQQQ")
        for i in range(phnum):
            f = struct.unpack_from(fmt, data, phoff + i * phent)
            off, filesz = (f[1], f[4]) if ei_class == 1 else (f[2], f[5])
            if filesz and off + filesz > size:
                raise AnalyzerError(
                    f"truncated: segment {i} ({off:#x}+{filesz:#x}) ends past end of file (size {size})", path
                )


def _elf_shdr(data: Buffer, e: str, ei_class: int, at: int) -> tuple[int, int, int, int]:
    if ei_class == 1:
        _, stype, _, _, off, sz, link, _, _, _ = struct.unpack_from(e + "IIIIIIIIII", data, at)
    else:
        _, stype, _, _, off, sz, link, _, _, _ = struct.unpack_from(e + "IIQQQQIIQQ", data, at)
    return stype, off, sz, link


def _elf_sh_info(data: Buffer, e: str, ei_class: int, at: int) -> int:
    return int(struct.unpack_from(e + "I", data, at + (28 if ei_class == 1 else 44))[0])
