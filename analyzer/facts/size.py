"""Size facts: bytes per category, and what `strip` would save, exactly, from the headers alone.

The prediction follows what GNU strip (BFD's objcopy) does to an executable or
shared library, as measured against binutils strip 2.40 on every fixture and a
sample of system binaries:

- it removes the chosen sections (debug sections; with --strip-all and
  --strip-unneeded also .symtab, its string table and non-loaded relocations);
- the PT_LOAD segments are laid out again, each at the first offset after the
  previous one congruent to its address; the kept non-loaded sections follow
  the end of the last loaded section's contents, in section order, each
  aligned to its sh_addralign;
- .shstrtab (and with --strip-debug .strtab) is rebuilt by BFD's string table,
  which shares a string with the next one in reverse-sorted order when it is
  its suffix;
- with --strip-debug the symbol table is rewritten: STT_FILE symbols go (BFD
  counts them as debugging symbols), so do symbols of removed sections; on
  old STT_SECTION symbols go too, and on machines other than x86 BFD writes one
  per kept section instead;
- with --strip-unneeded and --strip-all (not --strip-debug) the GNU build
  attribute notes (annobin's .gnu.build.attributes*) are merged: empty ranges
  go, a note covered by or adjoining an equal earlier one is folded into it,
  and a note repeating the previous note's range is written without one
  (BFD's merge_gnu_build_notes, version 3 notes only, none with relocations);
- the section header table comes last, aligned to 8 (ELF64) or 4 (ELF32).

Only header tables and .symtab are read, never DWARF contents.
"""

from __future__ import annotations

import bisect
import re
import struct
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from analyzer.load import Artifact
from analyzer.load.elf import SHF_ALLOC, SHT_NOBITS, SHT_NOTE, SHT_REL, SHT_RELA, SHT_SYMTAB, ELFFile, Section
from analyzer.load.pe import COFF_SYMBOL_SIZE, PEFile

if TYPE_CHECKING:
    from analyzer.facts import Context

DEBUG_PREFIXES = (".debug", ".zdebug", ".gnu.debuglto_", ".line", ".stab", ".gdb_index")
GO_RUNTIME_SECTIONS = (".gopclntab", ".go.buildinfo")  # read by the Go runtime and by `go version`
EM_PARISC, HPPA_PAGE = 15, 0x1000  # elf32-hppa's ELF_MAXPAGESIZE
X86 = (3, 62)  # EM_386, EM_X86_64: BFD writes no section symbols for them


def strtab_size(names: list[bytes]) -> int:
    """The size of a string table as BFD builds it: one NUL first, and a string that is the suffix
    of the next one in reverse-sorted order shares its bytes."""
    return _merged_size({n[::-1] for n in names if n})


def _merged_size(reversed_names: set[bytes]) -> int:
    """strtab_size over names given reversed (so that a whole table is reversed in one C call)."""
    rev = sorted(reversed_names - {b""})
    total = 1
    for i, r in enumerate(rev):
        if i + 1 < len(rev) and rev[i + 1].startswith(r):
            continue
        total += len(r) + 1
    return total


def category(elf: ELFFile, s: Section, symtab_strtabs: set[int]) -> str:
    """The size category of one section."""
    if s.sh_flags & SHF_ALLOC:
        if s.name in GO_RUNTIME_SECTIONS:
            return "go_runtime"
        return "loaded"
    if s.name.startswith(DEBUG_PREFIXES):
        return "debug"
    if s.sh_type == SHT_SYMTAB or s.index in symtab_strtabs:
        return "symtab"
    if s.name == ".comment":
        return "comment"
    if s.name in (".gnu_debuglink", ".gnu_debugdata"):
        return "debuglink"
    if s.sh_type == SHT_NOTE:
        return "notes"
    if s.sh_type in (SHT_REL, SHT_RELA) and elf.e_type in (2, 3):
        return "relocations"
    if s.index == elf.e_shstrndx:
        return "section_names"
    return "other_nonalloc"


def _relocations(elf: ELFFile) -> dict[int, int]:
    """Non-loaded relocation sections BFD attaches to a section (ld --emit-relocs leaves them in programs):
    index -> the section they apply to. Others (no target, another symbol table) are ordinary sections to it."""
    secs = elf.sections
    symtabs = {s.index for s in secs if s.sh_type == SHT_SYMTAB}
    return {s.index: s.sh_info for s in secs if s.sh_type in (SHT_REL, SHT_RELA) and not s.sh_flags & SHF_ALLOC
            and 0 < s.sh_info < len(secs) and s.sh_link in symtabs}  # fmt: skip


def _removed(elf: ELFFile, s: Section, mode: str, symtab_strtabs: set[int], relocs: dict[int, int]) -> bool:
    if s.index == 0 or s.sh_flags & SHF_ALLOC:
        return False
    if s.name.startswith(DEBUG_PREFIXES):
        return True
    if s.index in relocs:  # with its section, and all with --strip-all (objcopy then keeps no relocation)
        target = elf.sections[relocs[s.index]]
        return mode == "all" or (not target.sh_flags & SHF_ALLOC and target.name.startswith(DEBUG_PREFIXES))
    if mode in ("all", "unneeded"):
        if s.sh_type == SHT_SYMTAB or s.index in symtab_strtabs:
            return True  # --strip-unneeded keeps it for the relocations that stay (see stripped_sizes)
        if s.sh_type in (SHT_REL, SHT_RELA):
            return True
    return False


def _section_symbols(rows: list[tuple[int, int, int, int]], used: set[int], gone: set[int]) -> int:
    """How many section symbols BFD writes on x86: one per kept section a kept relocation refers to."""
    return len({r[3] for i, r in enumerate(rows) if i in used and r[2] == 3 and r[3] not in gone})


def _symtab_for_relocations(elf: ELFFile, symtab: Section, used: set[int], gone: set[int],
                            kept: list[Section]) -> tuple[int, int]:  # fmt: skip
    """(.symtab size, .strtab size) after --strip-unneeded of a program that keeps relocation sections: only
    the symbols they use stay (objcopy's filter for a file that is not relocatable)."""
    rows = _symbols(elf, symtab)
    strings = _contents(elf, elf.sections[symtab.sh_link])
    ends = _string_ends(strings)
    names = [_name_at(strings, ends, r[0]) for i, r in enumerate(rows)
             if i and i in used and r[2] != 3 and not (0 < r[3] < SHN_LORESERVE and r[3] in gone)]  # fmt: skip
    count = len(names)
    if elf.e_machine in X86:
        count += _section_symbols(rows, used, gone)
    else:
        count += sum(1 for k in kept if k.index and k.index not in (symtab.index, symtab.sh_link, elf.e_shstrndx))
    return (1 + count) * (24 if elf.bits == 64 else 16), strtab_size(list(names))


def _rewritten_symtab(elf: ELFFile, symtab: Section, gone: set[int], kept: list[Section],
                      used: Collection[int] = ()) -> tuple[int, int]:  # fmt: skip
    """(new .symtab size, new .strtab size) after --strip-debug.

    The names that stay are the strings of the old table less those only the removed symbols
    used (a name pointing into the middle of a string is a suffix of it and costs nothing)."""
    ent = 24 if elf.bits == 64 else 16
    strings = _contents(elf, elf.sections[symtab.sh_link])
    rows = [(n, typ, sh) for n, _, typ, sh in _symbols(elf, symtab)]
    x86 = elf.e_machine in X86
    # STT_FILE (a debugging symbol to BFD), symbols of removed sections, and the old STT_SECTION
    # symbols, which BFD writes anew: one per kept section on machines other than x86, on x86 one per
    # section a kept relocation refers to (ld --emit-relocs)
    dropped = {3, 4}
    removed = [r for r in rows[1:] if r[1] in dropped or r[2] in gone]
    count = len(rows) - len(removed)
    if not x86:
        count += sum(1 for k in kept if k.index and k.index not in (symtab.index, symtab.sh_link, elf.e_shstrndx))
    elif used:
        count += _section_symbols(_symbols(elf, symtab), set(used), gone)
    names = set(strings[::-1].split(b"\0"))  # every string of the table, reversed, in C
    if removed:
        still_used = {r[0] for r in rows[1:] if not (r[1] in dropped or r[2] in gone)}
        gone_offsets = {r[0] for r in removed} - still_used
        if gone_offsets:
            # where each string starts (lld writes duplicates): a string goes only when no kept
            # symbol names any copy of it
            starts: dict[bytes, list[int]] = {}
            at = 0
            for piece in strings.split(b"\0"):
                starts.setdefault(piece, []).append(at)
                at += len(piece) + 1
            for offset in gone_offsets:
                end = strings.find(b"\0", offset)
                name = strings[offset : end if end >= 0 else len(strings)]
                if not any(c in still_used for c in starts.get(name, ())):
                    names.discard(name[::-1])
    return count * ent, _merged_size(names)


BUILD_NOTES = ".gnu.build.attributes"
NT_OPEN, NT_FUNC = 0x100, 0x101


def _note_order(a: list[Any], b: list[Any]) -> int:
    """BFD's first sort of build notes: by attribute (the name after "GA" and its type
    character), then by range, overlapping ranges by start and end, OPEN notes first."""
    (na, ta, sa, ea), (nb, tb, sb, eb) = a, b
    n = max(min(len(na), len(nb)) - 3, 0)
    if na[3 : 3 + n] != nb[3 : 3 + n]:
        return -1 if na[3 : 3 + n] < nb[3 : 3 + n] else 1
    if ea < sb:
        return -1
    if sa > eb:
        return 1
    if sa < sb or ea < eb:  # overlapping: BFD never orders a later start first here
        return -1
    if ea > eb:
        return 1
    return (tb == NT_OPEN) - (ta == NT_OPEN)


def _merge_sorted(items: list[Any], cmp: Any) -> list[Any]:
    """`items` sorted as glibc's qsort sorts them (its merge sort: halves of n // 2 and the rest, the left item
    taken on a tie), which strip's sorts of build notes run on. _note_order is no total order (overlapping
    ranges compare by start and end alone), so the algorithm decides where such notes end up: Python's sort put a
    function note before the OPEN note whose range holds it, which strip then deleted (120 bytes mispredicted
    in a patchelf-edited library of psycopg2's AArch64 wheel)."""
    if len(items) <= 1:
        return items
    half = len(items) // 2
    left, right = _merge_sorted(items[:half], cmp), _merge_sorted(items[half:], cmp)
    out, i, j = [], 0, 0
    while i < len(left) and j < len(right):
        if cmp(left[i], right[j]) <= 0:
            out.append(left[i])
            i += 1
        else:
            out.append(right[j])
            j += 1
    return out + left[i:] + right[j:]


def _adjoins(a: list[Any], b: list[Any]) -> bool:
    """BFD's overlaps_or_adjoins, as written (a note ending before the other starts counts
    only when its end, aligned to 16, still lies before that start)."""
    if a[3] < b[2]:
        return (a[3] + 15) // 16 * 16 < b[2]
    if b[3] < b[2]:
        return (b[3] + 15) // 16 * 16 < a[2]
    return a[3] != b[3]


def merged_build_notes_size(elf: ELFFile, s: Section) -> int:
    """The size of a .gnu.build.attributes section once strip has merged its notes; its old
    size when BFD would leave it alone (not version 3 notes, corrupt notes, relocations)."""
    if any(r.sh_type in (SHT_REL, SHT_RELA) and r.sh_info == s.index for r in elf.sections):
        return s.sh_size
    data = _contents(elf, s)
    order = elf.byte_order
    notes: list[list[Any]] = []  # [name, type, start, end]
    versions = set()
    prev = {NT_OPEN: [0, 0], NT_FUNC: [0, 0]}
    at = 0
    while len(data) - at >= 12:
        namesz, descsz, ntype = struct.unpack_from(order + "III", data, at)
        padded = (namesz + 3) & ~3
        if descsz % 4 or ntype not in prev or padded + descsz + 12 > len(data) - at or namesz < 2:
            return s.sh_size
        name = data[at + 12 : at + 12 + namesz]
        desc = data[at + 12 + padded : at + 12 + padded + descsz]
        at += 12 + padded + descsz
        if name[:3] == b"$\x011":
            versions.add(1)
        elif len(name) > 4 and name[:4] == b"GA$\x01":
            if name[4:5] not in (b"2", b"3"):
                return s.sh_size
            versions.add(int(name[4:5]))
        if descsz == 0:
            start = end = 0
        elif descsz == 4:
            start, end = struct.unpack(order + "I", desc)[0], 2**64 - 1
        elif descsz in (8, 16):
            start, end = struct.unpack(order + ("II" if descsz == 8 else "QQ"), desc)
        else:
            return s.sh_size
        start = min(start, end)
        last = prev[ntype]
        last[0] = start or last[0]
        last[1] = end or last[1]
        if name[-1:] != b"\0":
            return s.sh_size
        notes.append([name, ntype, last[0], last[1]])
    if at != len(data) or len(versions) > 1 or (versions and versions != {3}):
        return s.sh_size
    notes = _merge_sorted(notes, _note_order)
    deleted = [False] * len(notes)
    anchor: int | None = None
    for i, note in enumerate(notes):
        if note[2] == note[3]:
            deleted[i] = True
            continue
        back, steps = (anchor if anchor is not None else i - 1), 0
        while back >= 0:
            if deleted[back]:
                back -= 1
                continue
            other = notes[back]
            if other[0] != note[0]:
                break
            if other[2] <= note[2] and note[3] <= other[3]:  # the same range, or contained
                deleted[i] = True
                break
            if _adjoins(other, note) and (other[1] == NT_FUNC) == (note[1] == NT_FUNC):
                other[2], other[3] = min(other[2], note[2]), max(other[3], note[3])
                deleted[i] = True
                break
            steps += 1
            if steps > 17:
                break
            back -= 1
        if not deleted[i]:
            anchor = i
    survivors = (n for n, d in zip(notes, deleted, strict=True) if not d)
    kept = sorted(survivors, key=lambda n: (n[1] != NT_OPEN, n[2], -n[3]))  # OPEN first, by start, wider first
    size, last_range = 0, (0, 0)
    for name, _, start, end in kept:
        size += 12 + ((len(name) + 3) & ~3)
        if (start, end) != last_range:
            size += 16 if elf.bits == 64 else 8
            last_range = (start, end)
    return min(size, s.sh_size)


def _loaded_end(elf: ELFFile) -> int:
    """Where the loaded contents end once BFD has laid the PT_LOAD segments out again: each at the
    first offset after the previous one that is congruent to its address modulo its alignment. This
    closes the gaps that tools such as patchelf leave between segments; for files a linker wrote it
    gives back the offsets they have."""
    loads = sorted((p for p in elf.segments if p.p_type == 1 and p.p_filesz), key=lambda p: p.p_offset)
    contents = [(s.sh_offset, s.sh_offset + s.sh_size) for s in elf.sections
                if s.sh_flags & SHF_ALLOC and s.sh_type != SHT_NOBITS and s.sh_size]  # fmt: skip
    moves: list[tuple[int, int, int]] = []  # (old offset, file size, shift)
    prev_end: int | None = None
    for p in loads:
        ends = [e for o, e in contents if p.p_offset <= o < p.p_offset + p.p_filesz]
        if not ends and p.p_offset and prev_end is not None:
            continue  # a segment holding no section (patchelf leaves them) is written empty, taking no bytes
        if prev_end is None:
            new = p.p_offset
        else:
            align = p.p_align if p.p_align > 1 else 1
            new = prev_end + (p.p_vaddr - prev_end) % align
            if elf.e_machine == EM_PARISC and prev_end % HPPA_PAGE and new // HPPA_PAGE == prev_end // HPPA_PAGE:
                new += HPPA_PAGE  # BFD's no_page_alias: two segments never share a page on PA-RISC
        moves.append((p.p_offset, p.p_filesz, new - p.p_offset))
        # BFD sizes a segment by the sections in it: slack patchelf left after the last one goes
        prev_end = new + (max(ends) - p.p_offset if ends else p.p_filesz)
    end = 0
    for s in elf.sections:
        if not s.sh_flags & SHF_ALLOC or s.sh_type == SHT_NOBITS:
            continue
        shift = next((d for off, size, d in moves if off <= s.sh_offset < off + size), 0)
        end = max(end, s.sh_offset + shift + s.sh_size)
    return end or (prev_end or 0)


def stripped_sizes(elf: ELFFile) -> dict[str, int | None]:
    """The file size after `strip --strip-<mode>` for debug, unneeded and all; None when the model
    does not apply (no section headers, core files). Modes that remove the same sections
    (and rewrite no symbol table) share one computation."""
    secs = elf.sections
    if secs and elf.e_type == 1:
        return _relocatable_sizes(elf)
    symtabs = [s for s in secs if s.sh_type == SHT_SYMTAB]
    if not secs or elf.e_type not in (2, 3) or len(symtabs) > 1 or _overlapping(elf):
        # (more than one symbol table breaks the gABI: BFD warns "multiple symbol tables detected - ignoring the
        # table in section N"; sections whose contents overlap are no linker's output either: neither is
        # modelled, and rewriting or merging each of thousands of them over the same bytes took minutes)
        return {"debug": None, "unneeded": None, "all": None}
    symtab_strtabs = {s.sh_link for s in symtabs}
    relocs = _relocations(elf)
    end = _loaded_end(elf)
    align = 8 if elf.bits == 64 else 4
    out: dict[str, int | None] = {}
    done: dict[tuple[frozenset[int], bool, bool], int] = {}
    for mode in ("debug", "unneeded", "all"):
        gone = {s.index for s in secs if _removed(elf, s, mode, symtab_strtabs, relocs)}
        kept_relocs = [i for i in relocs if i not in gone]
        used: set[int] = set()
        for i in kept_relocs:
            used |= _reloc_symbols(elf, secs[i])
        keep_symtab = mode == "unneeded" and bool(kept_relocs)  # the symbols the relocations use stay
        if keep_symtab:
            gone -= {s.index for s in symtabs} | symtab_strtabs
        rewrite = (mode == "debug" or keep_symtab) and bool(symtabs)
        merge = mode != "debug"  # strip merges build notes unless only debugging information goes
        key = (frozenset(gone), rewrite, merge)
        if key in done and not keep_symtab:
            out[mode] = done[key]
            continue
        kept = [s for s in secs if s.index not in gone]
        new_size: dict[int, int] = {}
        if rewrite:
            for st in symtabs:
                if st.sh_link < len(secs):
                    sizes = (_symtab_for_relocations(elf, st, used, gone, kept) if keep_symtab
                             else _rewritten_symtab(elf, st, gone, kept, used))  # fmt: skip
                    new_size[st.index], new_size[st.sh_link] = sizes
        new_size[elf.e_shstrndx] = strtab_size([s.name_bytes for s in kept])
        if merge:
            for s in kept:
                if s.sh_type == SHT_NOTE and s.name.startswith(BUILD_NOTES) and not s.sh_flags & SHF_ALLOC:
                    new_size[s.index] = merged_build_notes_size(elf, s)
        # BFD's order for what is not loaded: the other sections in order, then .symtab and .strtab, the
        # relocation sections, and .shstrtab
        tables = [s.index for st in symtabs for s in (st, secs[st.sh_link] if st.sh_link < len(secs) else st)]
        last = [*dict.fromkeys(tables), *kept_relocs, elf.e_shstrndx]
        rest = [s for s in kept if s.index and not s.sh_flags & SHF_ALLOC and s.sh_type != SHT_NOBITS
                and s.index not in last]  # fmt: skip
        off = end
        for s in rest + [secs[i] for i in last if i not in gone and 0 < i < len(secs)]:
            a = align if s.index in relocs else max(s.sh_addralign, 1)
            off = (off + a - 1) // a * a + new_size.get(s.index, s.sh_size)
        out[mode] = done[key] = (off + align - 1) // align * align + len(kept) * elf.e_shentsize
    return out


def _overlapping(elf: ELFFile) -> bool:
    """Whether the contents of two sections overlap in the file (never in what a linker writes)."""
    spans = sorted((s.sh_offset, s.sh_offset + s.sh_size) for s in elf.sections
                   if s.sh_type not in (0, SHT_NOBITS) and s.sh_size)
    return any(b[0] < a[1] for a, b in zip(spans, spans[1:], strict=False))


SHT_GROUP, SHT_SYMTAB_SHNDX, SHN_LORESERVE, SHN_COMMON = 17, 18, 0xFF00, 0xFFF2
EM_MIPS, EM_ARM, EM_AARCH64 = 8, 40, 183


def _mapping_symbol(strings: bytes, at: int, machine: int) -> bool:
    """An ARM ($a, $t, $d) or AArch64 ($x, $d) mapping symbol, bare or followed by a dot."""
    name = strings[at : at + 4]
    kinds = b"atd" if machine == EM_ARM else b"xd"
    return len(name) >= 2 and name[0:1] == b"$" and name[1] in kinds and name[2:3] in (b"\0", b".", b"")


def _contents(elf: ELFFile, s: Section) -> bytes:
    """A section's bytes (the header tables were checked to lie within the file)."""
    return bytes(elf.data[s.sh_offset : s.sh_offset + s.sh_size])


def _string_ends(strings: bytes) -> list[int]:
    """Where each string of a string table ends (its NUL), and the table's end: for _name_at."""
    return [m.start() for m in re.finditer(b"\0", strings)] + [len(strings)]


def _name_at(strings: bytes, ends: list[int], at: int) -> bytes:
    """The string at offset `at` (a name may start inside another: a suffix), in logarithmic time."""
    return strings[at : ends[bisect.bisect_left(ends, at)]] if at < len(strings) else b""


def _symbols(elf: ELFFile, symtab: Section) -> list[tuple[int, int, int, int]]:
    """(name offset, binding, type, section index) of every entry of a symbol table."""
    ent = 24 if elf.bits == 64 else 16
    table = elf.data[symtab.sh_offset : symtab.sh_offset + symtab.sh_size - symtab.sh_size % ent]
    if elf.bits == 64:
        return [(n, i >> 4, i & 0xF, sh) for n, i, _, sh, _, _ in struct.iter_unpack(elf.byte_order + "IBBHQQ", table)]
    return [(n, i >> 4, i & 0xF, sh) for n, _, _, i, _, sh in struct.iter_unpack(elf.byte_order + "IIIBBH", table)]


def _reloc_symbols(elf: ELFFile, rel: Section) -> set[int]:
    """The symbol indexes a relocation section refers to."""
    ent = (24 if rel.sh_type == SHT_RELA else 16) if elf.bits == 64 else (12 if rel.sh_type == SHT_RELA else 8)
    data = elf.data[rel.sh_offset : rel.sh_offset + rel.sh_size - rel.sh_size % ent]
    if elf.bits == 32:
        return {r[1] >> 8 for r in struct.iter_unpack(elf.byte_order + "I" * (ent // 4), data)}
    if elf.e_machine == EM_MIPS:  # Elf64_Mips_Rel: a 32-bit symbol index first, in the file's byte order
        return {r[0] for r in struct.iter_unpack(elf.byte_order + "I" + "x" * (ent - 4), data[8:] + bytes(8))}
    return {r[0] >> 32 for r in struct.iter_unpack(elf.byte_order + "xxxxxxxxQ" + "x" * (ent - 16), data)}


def _relocatable_sizes(elf: ELFFile) -> dict[str, int | None]:
    """The file size after each strip mode for a relocatable object (ET_REL), as BFD writes one.

    Debug sections go with their relocations; --strip-all also drops every symbol and every
    relocation (objcopy keeps none for a relocatable file), --strip-unneeded the local symbols
    no relocation uses. BFD writes the sections in order, each at its alignment, then .symtab,
    .strtab, the relocation sections, .shstrtab and the section header table. Section symbols
    are written anew, those a kept relocation uses (or that sign a group). None for objects with
    extended section indexes (SHT_SYMTAB_SHNDX), which the model does not cover."""
    secs = elf.sections
    if any(s.sh_type == SHT_SYMTAB_SHNDX for s in secs):
        return {"debug": None, "unneeded": None, "all": None}
    align = 8 if elf.bits == 64 else 4
    symtab = next((s for s in secs if s.sh_type == SHT_SYMTAB and s.sh_link < len(secs)), None)
    rows = _symbols(elf, symtab) if symtab else []
    strings = _contents(elf, secs[symtab.sh_link]) if symtab else b""
    ends = _string_ends(strings)
    relocs = [s for s in secs if s.sh_type in (SHT_REL, SHT_RELA) and not s.sh_flags & SHF_ALLOC
              and 0 < s.sh_info < len(secs)]  # fmt: skip
    reloc_of = {s.index for s in relocs}
    special = {s.index for s in secs if s.sh_type == SHT_SYMTAB} | {s.sh_link for s in secs if s.sh_type == SHT_SYMTAB}
    special |= {elf.e_shstrndx} | reloc_of
    debug = {s.index for s in secs if s.index and not s.sh_flags & SHF_ALLOC and s.name.startswith(DEBUG_PREFIXES)}
    groups = {s.index: struct.unpack_from(elf.byte_order + "I" * (s.sh_size // 4), elf.data, s.sh_offset)[1:]
              for s in secs if s.sh_type == SHT_GROUP and s.sh_size >= 4}  # fmt: skip
    referenced = {r.index: _reloc_symbols(elf, r) for r in relocs}
    names_size: dict[tuple[bytes, ...], int] = {}
    out: dict[str, int | None] = {}
    for mode in ("debug", "unneeded", "all"):
        gone = set(debug) | {r.index for r in relocs if r.sh_info in debug}
        for g, members in groups.items():
            if mode == "all" or all(m in gone for m in members):
                gone.add(g)
        # BFD makes no section of SHT_NULL headers
        content = [s for s in secs if s.sh_type and s.index not in special and s.index not in gone]
        kept_relocs = [] if mode == "all" else [r for r in relocs if r.sh_info not in gone]
        used = {g.sh_info for g in content if g.index in groups}  # group signatures stay, like relocations' symbols
        for r in kept_relocs:
            used |= referenced[r.index]
        names: set[bytes] = set()
        count = 0
        section_syms: set[int] = set()
        for i, (name, bind, typ, shndx) in enumerate(rows if mode != "all" else ()):  # --strip-all keeps none
            if not i:
                continue
            if 0 < shndx < SHN_LORESERVE and shndx in gone:
                continue
            if typ == 3:  # STT_SECTION: written anew below
                if i in used:
                    section_syms.add(shndx)
                continue
            # BFD's flags: a global is BSF_GLOBAL only when defined (not undefined, not common); a
            # unique symbol is neither global nor weak to objcopy
            if i in used or (bind == 1 and shndx not in (0, SHN_COMMON)) or bind == 2 or shndx == SHN_COMMON:
                keep = True
            elif shndx == 0:
                keep = mode == "debug"  # an undefined symbol no relocation uses
            elif elf.e_machine in (EM_ARM, EM_AARCH64) and _mapping_symbol(strings, name, elf.e_machine):
                keep = True  # BFD's ARM and AArch64 back ends keep mapping symbols ($a $t $d $x)
            else:
                keep = mode == "debug" and typ != 4  # other locals; STT_FILE counts as debugging
            if keep:
                count += 1
                names.add(_name_at(strings, ends, name))
        has_symtab = bool(count or section_syms)
        new_size = {s.index: 4 + 4 * sum(1 for m in groups[s.index] if m not in gone)
                    for s in content if s.index in groups}  # fmt: skip
        off = max(64 if elf.bits == 64 else 52, elf.e_phoff + elf.e_phnum * elf.e_phentsize)
        for s in content:
            a = max(s.sh_addralign, 1)
            off = (off + a - 1) // a * a
            if s.sh_type != SHT_NOBITS:
                off += new_size.get(s.index, s.sh_size)
        section_names = [s.name_bytes for s in content] + [r.name_bytes for r in kept_relocs] + [b".shstrtab"]
        if has_symtab:
            off = (off + align - 1) // align * align + (1 + count + len(section_syms)) * (24 if elf.bits == 64 else 16)
            off += strtab_size(list(names))
            section_names += [b".symtab", b".strtab"]
        for r in kept_relocs:
            off = (off + align - 1) // align * align + r.sh_size
        key = tuple(section_names)  # --strip-debug and --strip-unneeded keep the same sections, mostly
        if key not in names_size:
            names_size[key] = strtab_size(section_names)
        off += names_size[key]
        shnum = 1 + len(content) + len(kept_relocs) + (2 if has_symtab else 0) + 1
        out[mode] = (off + align - 1) // align * align + shnum * elf.e_shentsize
    return out


def go_s_w_size(elf: ELFFile) -> int | None:
    """The file size of the same Go program linked with -ldflags="-s -w": the Go linker drops DWARF,
    .symtab and .strtab, and ends the file with .shstrtab after the page-aligned end of the data."""
    secs = elf.sections
    if not secs or not any(s.name == ".go.buildinfo" for s in secs):
        return None
    drop = {s.index for s in secs if s.name.startswith(DEBUG_PREFIXES) or s.sh_type == SHT_SYMTAB
            or s.name == ".strtab"}  # fmt: skip
    if not drop:
        return elf.size
    kept = [s for s in secs if s.index not in drop]
    first_dropped = min(secs[i].sh_offset for i in drop)
    names = sum(len(s.name_bytes) + 1 for s in kept if s.index) + 1  # the Go linker shares no suffixes
    tail = max((s.sh_offset + s.sh_size for s in kept if s.index and s.index != elf.e_shstrndx
                and s.sh_type != SHT_NOBITS and s.sh_offset >= first_dropped), default=first_dropped)  # fmt: skip
    return max(tail, first_dropped) + names if elf.e_shoff < first_dropped else None


def _pe_categories(pe: PEFile) -> dict[str, int]:
    """Debug sections (DWARF from MinGW and Go), the COFF symbol and string tables, debug directory data."""
    symptr, nsyms = pe.pointer_to_symbol_table, pe.number_of_symbols
    cats = {"loaded": 0, "debug": 0, "symtab": 0, "debug_directory": 0}
    symtab_in_section = False
    for sec in pe.sections:
        raw_size, raw_ptr = sec.size_of_raw_data, sec.pointer_to_raw_data
        if symptr and raw_ptr <= symptr < raw_ptr + raw_size:  # Go writes the COFF symbols as a .symtab section
            symtab_in_section = True
            key = "symtab" if nsyms else "section_names"  # -s leaves only the long section names' table
            cats[key] = cats.get(key, 0) + raw_size
        else:
            cats["debug" if sec.name_bytes.startswith((b".debug", b".zdebug")) else "loaded"] += raw_size
    if symptr and not symtab_in_section:
        strtab = len(pe.coff_string_table)
        if nsyms:
            cats["symtab"] = COFF_SYMBOL_SIZE * nsyms + strtab
        else:  # no symbols: the string table only holds long section names
            cats["section_names"] = strtab
    cats["debug_directory"] = sum(size for _, size, _ in pe.debug_entries())
    return cats


def _macho_categories(art: Artifact) -> dict[str, int]:
    """Sections of the __DWARF segment, and the LC_SYMTAB symbol and string tables."""
    cats = {"loaded": 0, "debug": 0, "symtab": 0}
    for s in art.binary.sections if art.binary is not None else []:
        if s.segment_name == "__DWARF":
            cats["debug"] += s.size
        elif int(s.type) not in (0x1, 0xC, 0x12):
            cats["loaded"] += s.size
    if art.binary is not None and art.binary.has_symbol_command:
        cmd = art.binary.symbol_command
        cats["symtab"] = cmd.numberof_symbols * (16 if art.data[0] == 0xCF else 12) + cmd.strings_size
    return cats


def pe_go_s_w_size(pe: PEFile) -> int | None:
    """The size of the same Go program for Windows linked with -ldflags="-s -w": the Go linker drops
    the DWARF sections and writes .symtab as an empty COFF string table, one file-alignment unit long;
    the sections stay contiguous after the headers."""
    if not any(sec.name_bytes == b".symtab" for sec in pe.sections):
        return None
    file_align = pe.optional_header.file_alignment or 512
    first = min((sec.pointer_to_raw_data for sec in pe.sections if sec.size_of_raw_data), default=0)
    kept = 0
    for sec in pe.sections:
        if sec.name_bytes.startswith((b".debug", b".zdebug")):
            continue
        kept += file_align if sec.name_bytes == b".symtab" else sec.size_of_raw_data
    return first + kept


def macho_go_s_w_size(art: Artifact) -> int | None:
    """The size of the same Go program for macOS linked with -ldflags="-s -w": the Go linker drops the
    __DWARF segment (so __LINKEDIT moves to where it started), keeps only the undefined and exported
    symbols and their names (the string table starts with " \\0" and is padded to 16), and signs
    fewer pages (32 bytes of SHA-256 per 4 KiB page)."""
    b = art.binary
    if b is None or not b.has_symbol_command or not b.has_dynamic_symbol_command:
        return None
    dwarf = next((seg for seg in b.segments if seg.name == "__DWARF"), None)
    linkedit = next((seg for seg in b.segments if seg.name == "__LINKEDIT"), None)
    if dwarf is None or linkedit is None:
        return None
    st, dy = b.symbol_command, b.dynamic_symbol_command
    d = art.data
    entry = 16 if d[0] == 0xCF else 12
    kept = [*range(dy.idx_external_define_symbol, dy.idx_external_define_symbol + dy.nb_external_define_symbols),
            *range(dy.idx_undefined_symbol, dy.idx_undefined_symbol + dy.nb_undefined_symbols)]  # fmt: skip
    names = 2
    for i in kept:
        strx = struct.unpack_from("<I", d, st.symbol_offset + entry * i)[0]
        end = d.find(b"\0", st.strings_offset + strx, st.strings_offset + st.strings_size)
        names += (end - st.strings_offset - strx if end >= 0 else 0) + 1
    new_strings = (names + 15) // 16 * 16
    # __LINKEDIT moves down to where __DWARF began: the page padding after __DWARF goes too
    removed = linkedit.file_offset - dwarf.file_offset + (st.numberof_symbols - len(kept)) * entry
    removed += st.strings_size - new_strings
    if b.has_code_signature:
        limit = b.code_signature.data_offset
        removed += ((limit + 4095) // 4096 - (limit - removed + 4095) // 4096) * 32
    return len(d) - removed


def facts(art: Artifact) -> dict[str, Any]:
    """`size` and `strip_savings` for one artifact (the strip prediction for ELF only)."""
    if art.format != "ELF":
        if art.format == "PE":
            cats, go_size = _pe_categories(art.binary), pe_go_s_w_size(art.binary)
        else:
            cats = _macho_categories(art)
            is_go = any(sec.name == "__go_buildinfo" for sec in getattr(art.binary, "sections", []))
            go_size = macho_go_s_w_size(art) if is_go else None
        return {
            "size": {
                "file": len(art.data),
                "categories": cats,
                "stripped": not cats["debug"] and not cats["symtab"],
                "has_debug_info": bool(cats["debug"]),
                "debuglink": None,
                "required_at_runtime": [],
            },
            # GNU strip does not rewrite PE or Mach-O: only Go's -s -w is predicted for them
            "strip_savings": None if go_size is None else {"go_s_w": len(art.data) - go_size},
        }
    elf: ELFFile = art.binary
    secs = elf.sections
    symtab_strtabs = {s.sh_link for s in secs if s.sh_type == SHT_SYMTAB}
    by_category: dict[str, int] = {}
    for s in secs[1:]:
        if s.sh_type == SHT_NOBITS:
            continue
        c = category(elf, s, symtab_strtabs)
        by_category[c] = by_category.get(c, 0) + s.sh_size
    by_category["headers"] = (
        elf.e_shnum * elf.e_shentsize + elf.e_phnum * elf.e_phentsize + (64 if elf.bits == 64 else 52)
    )
    debuglink = next((s for s in secs if s.name == ".gnu_debuglink"), None)
    link_name = None
    if debuglink is not None:
        raw = bytes(elf.data[debuglink.sh_offset : debuglink.sh_offset + min(debuglink.sh_size, 4096)])
        link_name = raw.split(b"\0", 1)[0].decode("utf-8", "replace")
    size = len(art.data)
    savings: dict[str, int | None] = {}
    for mode, after in stripped_sizes(elf).items():
        savings[f"strip_{mode}"] = None if after is None else size - after
    go_stripped = go_s_w_size(elf)
    savings["go_s_w"] = None if go_stripped is None else size - go_stripped
    return {
        "size": {
            "file": size,
            "categories": dict(sorted(by_category.items())),
            "required_at_runtime": [s.name for s in secs if s.name in GO_RUNTIME_SECTIONS],
            "stripped": not any(s.sh_type == SHT_SYMTAB or s.name.startswith(DEBUG_PREFIXES) for s in secs),
            "has_debug_info": any(s.name.startswith(DEBUG_PREFIXES) for s in secs),
            "debuglink": link_name,
        },
        "strip_savings": savings,
    }


def provide(art: Artifact, known: dict[str, Any], context: Context) -> dict[str, Any]:
    return facts(art)


def budget(path: str, size: int, policy: Any) -> dict[str, Any]:
    """The budget that applies to `path` (the first matching glob, else --max-size) and the growth
    against the same artifact in a previous report (matched by path, else by file name)."""
    import fnmatch
    import os

    limit = next((limit for glob, limit in policy.budgets if fnmatch.fnmatch(path, glob)), None)
    if limit is None and policy.settings.get("max_size"):
        limit = policy.settings["max_size"]
    before = policy.size_baseline.get(path) or policy.size_baseline.get(os.path.basename(path))
    growth = None if not before else round(100.0 * (size - before) / before, 2)
    return {"budget": limit, "baseline_size": before, "growth_percent": growth}


def provide_budget(art: Artifact, known: dict[str, Any], context: Context) -> dict[str, Any] | None:
    """The size facts with the run's budget and growth added (a policy input, so only when rules run)."""
    if context.policy is None or "size" not in known:
        return None
    return {"size": {**known["size"], **budget(art.path, known["size"]["file"], context.policy)}}
