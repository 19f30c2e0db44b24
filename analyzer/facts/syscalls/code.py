"""Where the code of an ELF file is, and which function each byte belongs to.

Functions come from `.symtab` and `.dynsym` (FUNC symbols with a size), from
Go's `.gopclntab` when the symbols were stripped (its function table names
every function), and the executable bytes no function covers become unnamed
regions (`.text+0x1234`), decoded from their start as objdump does. Only bytes
of executable sections (or executable PT_LOAD segments when there are no
section headers) that lie in the file are code.
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from analyzer.errors import name_text
from analyzer.load.elf import PT_LOAD, SHT_NOBITS, SHT_SYMTAB, ELFFile, _cstr

SHF_EXECINSTR = 0x4
STT_FUNC, STT_GNU_IFUNC = 2, 10
PF_X = 1
MAX_SYMBOLS = 1 << 22


@dataclass(frozen=True, slots=True)
class Function:
    start: int  # virtual address of the first byte
    end: int  # one past the last byte
    name: str
    thumb: bool = False  # ARM: Thumb code


@dataclass(frozen=True, slots=True)
class Region:
    """Executable bytes in the file: [vaddr, vaddr + size) at file offset `offset`."""

    name: str
    vaddr: int
    offset: int
    size: int


class Code:
    def __init__(self, elf: ELFFile) -> None:
        self.elf = elf
        self.data = elf.data
        self.insn_starts: dict[int, Sequence[int]] = {}  # large function -> its instruction starts (engine)
        self.small_seen: set[int] = set()  # small functions decoded once up to a site (engine._starts)
        self.call_index: dict[int, list[int]] | None = None  # function -> direct calls of it (engine)
        self.go_minor: int | None = None  # Go 1.N that built it, when known (which Go ABI its functions use)
        self.extra_starts: set[int] = set()  # PLT entries of wrappers another object defines (engine.analyze)
        self.extra_names: dict[int, str] = {}  # their names (syscall@plt)
        self.extra_calls: dict[int, list[int]] = {}  # a wrapper's GOT slot -> the calls through it (-fno-plt)
        self.regions = _regions(elf)
        self._starts = [r.vaddr for r in self.regions]
        named = _symbol_functions(elf)
        has_symtab = any(s.sh_type == SHT_SYMTAB for s in elf.sections)
        go = [] if has_symtab else _pclntab_functions(elf, self.regions)
        self.from_pclntab = bool(go)
        if go:  # a stripped Go program: its function table, and the C functions .dynsym names (cgo)
            known = {f.start for f in go}
            named = sorted(go + [f for f in named if f.start not in known], key=lambda f: f.start)
        self.symbols = {f.name: f.start for f in named}
        self.functions = _cover(named, self.regions)
        # Go's function table names an assembly body (ABI0, parameters on the stack) as the symbol table's
        # NAME.abi0 is called there, NAME: without the symbol table, a Go function may take them either way
        self.either = {f.name for f in named} if self.from_pclntab else set()
        self._fstarts = [f.start for f in self.functions]

    def split(self, starts: set[int]) -> None:
        """Start a function at each of `starts` (the call targets and taken addresses a stripped library's
        call graph found inside its unnamed regions and symbols); a new piece is named by its address."""
        out: list[Function] = []
        ordered = sorted(starts)
        for f in self.functions:
            lo = bisect.bisect_right(ordered, f.start)
            hi = bisect.bisect_left(ordered, f.end)
            at, name = f.start, f.name
            for s in ordered[lo:hi]:
                out.append(Function(at, s, name, f.thumb))
                at, name = s, hex(s)
            out.append(Function(at, f.end, name, f.thumb))
        self.functions = out
        self._fstarts = [f.start for f in out]
        self.call_index = None

    def region_of(self, vaddr: int) -> Region | None:
        i = bisect.bisect_right(self._starts, vaddr) - 1
        if i >= 0 and vaddr < self.regions[i].vaddr + self.regions[i].size:
            return self.regions[i]
        return None

    def function_of(self, vaddr: int) -> Function | None:
        i = bisect.bisect_right(self._fstarts, vaddr) - 1
        if i >= 0 and vaddr < self.functions[i].end:
            return self.functions[i]
        return None

    def read(self, vaddr: int, size: int) -> bytes:
        """The code bytes at [vaddr, vaddr+size), cut at the end of the region holding vaddr."""
        r = self.region_of(vaddr)
        if r is None:
            return b""
        at = r.offset + (vaddr - r.vaddr)
        end = min(r.offset + r.size, at + max(size, 0))
        return bytes(self.data[at:end])

    def word(self, vaddr: int, size: int) -> int | None:
        """An integer of `size` bytes at vaddr anywhere in a loaded segment (literal pools, _dl_sysinfo)."""
        off = self.elf.vaddr_to_offset(vaddr)
        if off is None or off + size > len(self.data):
            return None
        return int.from_bytes(self.data[off : off + size], "little" if self.elf.byte_order == "<" else "big")


def _regions(elf: ELFFile) -> list[Region]:
    size = len(elf.data)
    out = []
    secs = [s for s in elf.sections if s.sh_flags & SHF_EXECINSTR and s.sh_type != SHT_NOBITS and s.sh_size]
    for s in secs:
        if s.sh_offset < size:
            out.append(Region(s.name, s.sh_addr, s.sh_offset, min(s.sh_size, size - s.sh_offset)))
    if not secs:
        for i, p in enumerate(elf.segments):
            if p.p_type == PT_LOAD and p.p_flags & PF_X and p.p_offset < size and p.p_filesz:
                out.append(Region(f"LOAD{i}", p.p_vaddr, p.p_offset, min(p.p_filesz, size - p.p_offset)))
    out.sort(key=lambda r: r.vaddr)
    # overlapping regions (hostile headers) keep the first
    kept: list[Region] = []
    for r in out:
        if not kept or r.vaddr >= kept[-1].vaddr + kept[-1].size:
            kept.append(r)
    return kept


def _symbol_rows(elf: ELFFile) -> list[tuple[str, int, int, int]]:
    """(name, value, size, info) of the FUNC symbols of .symtab, else .dynsym."""
    e, bits = elf.byte_order, elf.bits
    ent = 24 if bits == 64 else 16
    rows = []
    symtab = next((s for s in elf.sections if s.sh_type == SHT_SYMTAB), None)
    if symtab is not None and 0 < symtab.sh_link < len(elf.sections):
        strtab = elf.sections[symtab.sh_link]
        count = min(symtab.sh_size // ent, MAX_SYMBOLS)
        if symtab.sh_offset + count * ent <= len(elf.data):
            send = min(len(elf.data), strtab.sh_offset + strtab.sh_size)
            fmt = e + ("IBBHQQ" if bits == 64 else "IIIBBH")
            for row in struct.iter_unpack(fmt, elf.data[symtab.sh_offset : symtab.sh_offset + count * ent]):
                if bits == 64:
                    name, info, _, shndx, value, size = row
                else:
                    name, value, size, info, _, shndx = row
                if info & 0xF in (STT_FUNC, STT_GNU_IFUNC) and shndx:
                    rows.append((_cstr(elf.data, strtab.sh_offset + name, send), value, size, info))
                elif elf.e_machine == 40 and info & 0xF == 0 and shndx and name:  # ARM mapping symbols
                    text = _cstr(elf.data, strtab.sh_offset + name, send)
                    if text in ("$a", "$t") or text.startswith(("$a.", "$t.")):
                        rows.append((text[:2], value, 0, info))
    if not rows:
        try:
            rows = [(s.name, s.st_value, s.st_size, s.st_info) for s in elf.dynamic_symbols()
                    if s.type in (STT_FUNC, STT_GNU_IFUNC) and s.st_shndx]  # fmt: skip
        except Exception:  # noqa: BLE001 - a damaged .dynsym leaves the executable regions to decode
            rows = []
    return rows


def _symbol_functions(elf: ELFFile) -> list[Function]:
    rows = _symbol_rows(elf)
    arm = elf.e_machine == 40
    maps = sorted((v & ~1, n == "$t") for n, v, _, _ in rows if n in ("$a", "$t"))
    mstarts = [a for a, _ in maps]
    best: dict[int, tuple[tuple[int, str], Function]] = {}
    for name, value, size, info in rows:
        if name in ("$a", "$t") or not size:
            continue
        start = value & ~1 if arm else value
        thumb = bool(value & 1) if arm else False
        if arm and maps:
            i = bisect.bisect_right(mstarts, start) - 1
            if i >= 0:
                thumb = maps[i][1]
        f = Function(start, start + size, name, thumb)
        rank = (0 if info >> 4 == 1 else 1, name)  # a global name over a local or weak alias, then by name
        if start not in best or rank < best[start][0]:
            best[start] = (rank, f)
    return [f for _, (_, f) in sorted(best.items())]


PCLN_GO118 = (0xFFFFFFF0, 0xFFFFFFF1)
PCLN_GO116 = 0xFFFFFFFA
PCLN_GO12 = 0xFFFFFFFB


def _pclntab_functions(elf: ELFFile, regions: list[Region]) -> list[Function]:
    """Every function Go's function table names (go1.2 to today's layouts), or [] when there is none. The table
    is `.gopclntab`, or, in a program a C linker linked (cgo, -linkmode external) and stripped, a run of
    `.data.rel.ro` or `.rodata` that starts with the table's magic and parses into functions inside the code."""
    sec = next((s for s in elf.sections if s.name == ".gopclntab" and s.sh_type != SHT_NOBITS), None)
    if sec is not None:
        tab = bytes(elf.data[sec.sh_offset : sec.sh_offset + sec.sh_size])
        try:
            return _pclntab(tab, elf.byte_order, regions, None)
        except (struct.error, IndexError, ValueError):
            return []
    e = elf.byte_order
    for sec in elf.sections:
        if sec.name not in (".data.rel.ro", ".rodata") or sec.sh_type == SHT_NOBITS:
            continue
        data = bytes(elf.data[sec.sh_offset : sec.sh_offset + sec.sh_size])
        for magic in (*PCLN_GO118, PCLN_GO116, PCLN_GO12):
            for quantum in (1, 2, 4):
                for ptr in (8, 4):
                    at = data.find(struct.pack(e + "IBBBB", magic, 0, 0, quantum, ptr))
                    if at < 0 or at % 8:
                        continue
                    text = _relocated(elf, sec.sh_addr + at + 8 + 2 * ptr) if magic in PCLN_GO118 else None
                    try:
                        found = _pclntab(data[at:], e, regions, text)
                    except (struct.error, IndexError, ValueError):
                        continue
                    if found and all(_inside(regions, f.start) for f in (found[0], found[-1])):
                        return found
    return []


def _inside(regions: list[Region], vaddr: int) -> bool:
    return any(r.vaddr <= vaddr < r.vaddr + r.size for r in regions)


def _relocated(elf: ELFFile, vaddr: int) -> int | None:
    """The value a RELA relocation stores at `vaddr` (its addend: a position-independent program's
    pointers are relocated at load time, their place in the file holds 0)."""
    dyn = dict(elf.dynamic)
    addr, size = dyn.get(7), dyn.get(8)  # DT_RELA, DT_RELASZ
    off = elf.vaddr_to_offset(addr) if addr and size and elf.bits == 64 else None
    if off is None or size is None or off + size > len(elf.data):
        return None
    for r_offset, _, addend in struct.iter_unpack(elf.byte_order + "QQq", elf.data[off : off + size // 24 * 24]):
        if r_offset == vaddr:
            return int(addend)
    return None


def _pclntab(tab: bytes, e: str, regions: list[Region], text_start: int | None) -> list[Function]:
    magic, _, _, quantum, ptr = struct.unpack_from(e + "IBBBB", tab, 0)
    p = "Q" if ptr == 8 else "I"

    def word(i: int) -> int:
        return int(struct.unpack_from(e + p, tab, 8 + i * ptr)[0])

    def cstring(at: int) -> str:
        stop = tab.find(b"\0", at, at + 4096)
        return name_text(tab[at : stop if stop >= 0 else at + 4096])  # as every name read from a file

    out: list[Function] = []
    if magic in PCLN_GO118:
        nfunc, text, names, pcln = word(0), word(2), word(3), word(7)
        text = text or text_start or (regions[0].vaddr if regions else 0)
        if nfunc > MAX_SYMBOLS:
            return []
        ft = struct.unpack_from(f"{e}{2 * nfunc + 2}I", tab, pcln)
        for i in range(nfunc):
            entry, foff, nxt = ft[2 * i], ft[2 * i + 1], ft[2 * i + 2]
            nameoff = struct.unpack_from(e + "i", tab, pcln + foff + 4)[0]
            out.append(Function(text + entry, text + nxt, cstring(names + nameoff)))
    elif magic == PCLN_GO116:
        nfunc, names, pcln = word(0), word(2), word(6)
        if nfunc > MAX_SYMBOLS:
            return []
        ft = struct.unpack_from(f"{e}{2 * nfunc + 1}{p}", tab, pcln)
        for i in range(nfunc):
            foff = ft[2 * i + 1]
            nameoff = struct.unpack_from(e + "i", tab, pcln + foff + ptr)[0]
            out.append(Function(ft[2 * i], ft[2 * i + 2], cstring(names + nameoff)))
    elif magic == PCLN_GO12:
        nfunc = word(0)
        if nfunc > MAX_SYMBOLS:
            return []
        base = 8 + ptr
        ft = struct.unpack_from(f"{e}{2 * nfunc + 1}{p}", tab, base)
        for i in range(nfunc):
            foff = ft[2 * i + 1]
            nameoff = struct.unpack_from(e + "i", tab, foff + ptr)[0]
            out.append(Function(ft[2 * i], ft[2 * i + 2], cstring(nameoff)))
    del quantum
    return sorted({f.start: f for f in out if f.end > f.start}.values(), key=lambda f: f.start)


def _cover(named: list[Function], regions: list[Region]) -> list[Function]:
    """The named functions inside code regions, cut where they overlap, and the uncovered bytes as
    unnamed functions (`section+0xoff`), so every executable byte belongs to exactly one function."""
    out: list[Function] = []
    fi = 0
    for r in regions:
        at, end = r.vaddr, r.vaddr + r.size
        while fi < len(named) and named[fi].end <= at:
            fi += 1
        j = fi
        while at < end:
            while j < len(named) and named[j].end <= at:
                j += 1
            nxt = named[j] if j < len(named) and named[j].start < end else None
            if nxt is None or nxt.start > at:
                stop = nxt.start if nxt is not None else end
                # ARM: the mode of the code just before, else of the named function after it in the region
                # (a stripped Thumb-2 library's unnamed code after its ARM PLT is Thumb as its functions are)
                thumb = out[-1].thumb if out and out[-1].end == at else nxt.thumb if nxt is not None else False
                out.append(Function(at, stop, f"{r.name}+{at - r.vaddr:#x}", thumb))
                at = stop
                continue
            stop = min(nxt.end, end)
            if j + 1 < len(named) and named[j + 1].start < stop:
                stop = max(named[j + 1].start, at + 1)
            out.append(Function(at, stop, nxt.name, nxt.thumb))
            at = stop
            j += 1
    return out
