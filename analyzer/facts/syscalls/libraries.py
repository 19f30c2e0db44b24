"""The system calls a dynamically linked program reaches through its libraries.

The libraries are resolved as `binlens deps` resolves them (the loader model, in a sysroot). Each library is
analysed once per run (`Model`): its syscall sites and their numbers per function (engine.py), its direct
call graph, its calls through the PLT or the GOT by imported name, the functions whose address it takes,
and the functions that make indirect calls. The program's reach then starts from every function it imports
(bound to the library that defines it, as the loader binds), the libraries' initialisers and finalisers,
and the loader itself (all of its calls: it runs them before and around every program), and follows:

- direct calls and tail calls inside a library;
- calls by imported name into the library the symbol binds to (first definition in load order);
- an indirect call in reached code reaches every function whose address that library takes (its
  function-pointer tables: stdio's, for instance), which keeps the set sound without a points-to analysis.

Modelled for x86-64, i386, AArch64, ARM (EABI, ARM and Thumb), RISC-V 64, POWER64 ELFv2, s390x and MIPS (o32,
n32, n64): call graphs from decoded code, the PLT and GOT from the dynamic relocations (MIPS: from its GOT's
dynamic tags); other ABIs (LoongArch, 32-bit POWER and s390, big-endian POWER ELFv1) say `modelled: false`.
"""

from __future__ import annotations

import bisect
import os
import re
import struct
import time
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from analyzer.facts.syscalls import engine
from analyzer.facts.syscalls import isa as I
from analyzer.facts.syscalls.code import Code
from analyzer.facts.syscalls.streams import ABIS, ENDING, Ctx, Event
from analyzer.load.elf import MAX_RELOCATIONS, PT_GNU_RELRO, ELFFile

DT_INIT, DT_FINI, DT_INIT_ARRAY, DT_FINI_ARRAY, DT_INIT_ARRAYSZ, DT_FINI_ARRAYSZ = 12, 13, 25, 26, 27, 28
DT_PLTGOT = 3
DT_RELR, DT_RELRSZ = 36, 35
EM_MIPS = 8
DT_MIPS_LOCAL_GOTNO, DT_MIPS_SYMTABNO, DT_MIPS_GOTSYM = 0x7000000A, 0x70000011, 0x70000013
DLOPEN = ("dlopen", "dlmopen", "__libc_dlopen_mode")


@dataclass
class Model:
    """What one library does, as far as system calls go."""

    abi: str
    calls: dict[int, set[tuple[str, int]]] = field(default_factory=dict)  # function -> {(table, number)}
    unresolved: set[int] = field(default_factory=set)  # functions with a site whose number is unknown
    callees: dict[int, set[int]] = field(default_factory=dict)
    imports: dict[int, set[str]] = field(default_factory=dict)  # function -> names called through PLT/GOT
    indirect: set[int] = field(default_factory=set)  # functions that call through a pointer
    code_taken: dict[int, set[int]] = field(default_factory=dict)  # function -> functions its code takes
    data_refs: dict[int, set[int]] = field(default_factory=dict)  # function -> data objects its code reads
    object_functions: dict[int, set[int]] = field(default_factory=dict)  # data object -> functions it points to
    object_objects: dict[int, set[int]] = field(default_factory=dict)  # data object -> data objects it points to
    object_imports: dict[int, set[str]] = field(default_factory=dict)  # data object -> imported names in it
    exported_objects: dict[str, int] = field(default_factory=dict)  # data symbol -> its object
    exports: dict[str, int] = field(default_factory=dict)  # name -> its default definition (`name@@V`)
    versions: dict[str, dict[str, int]] = field(default_factory=dict)  # a name defined more than once -> by version
    entry_points: set[int] = field(default_factory=set)  # initialisers and finalisers
    names: dict[int, str] = field(default_factory=dict)
    damaged: str = ""  # why the library could not be modelled (a hostile file), or ""


LOADER_CALLS = ("__libc_early_init",)  # functions of a library that glibc's ld.so calls by name


def _word(elf: ELFFile, vaddr: int) -> int | None:
    """The pointer-sized word at `vaddr` in the file (REL relocations keep their addend there)."""
    size = 8 if elf.bits == 64 else 4
    off = elf.vaddr_to_offset(vaddr)
    if off is None or off + size > elf.size:
        return None
    return int.from_bytes(elf.data[off : off + size], "little" if elf.byte_order == "<" else "big")


def _relocations(elf: ELFFile) -> list[tuple[int, int, int, int]]:
    """(r_offset, type, symbol index, addend) of DT_RELA, DT_REL and DT_JMPREL; a REL relocation's addend is the
    word at its place."""
    start, plt, _ = elf.dynamic_relocations()
    return [(off, rtype, sym, addend if addend is not None else (_word(elf, off) or 0))
            for off, rtype, sym, addend in (*start, *plt)]


def _relr_values(elf: ELFFile) -> list[tuple[int, int]]:
    """The addresses stored at the places DT_RELR relocates (packed relative relocations keep the addend in
    place): function tables of a library linked with -z pack-relative-relocs."""
    return [(p, v) for p in _relr_places(elf) if (v := _word(elf, p)) is not None]


def _relr_places(elf: ELFFile) -> list[int]:
    """The places DT_RELR relocates: an address, then bitmaps of the 63 (31) words after it."""
    dyn = dict(elf.dynamic)
    w = 8 if elf.bits == 64 else 4
    addr, size = dyn.get(DT_RELR), dyn.get(DT_RELRSZ)
    off = elf.vaddr_to_offset(addr) if addr and size else None
    if off is None or size is None or off + size > elf.size:
        return []
    places: list[int] = []
    where = 0
    bits = 8 * w - 1
    most = min(MAX_RELOCATIONS, elf.size // w)  # a place per word of the file at most: lying bitmaps stop there
    fmt = elf.byte_order + ("Q" if w == 8 else "I")
    for (entry,) in struct.iter_unpack(fmt, elf.data[off : off + min(size // w, MAX_RELOCATIONS) * w]):
        if len(places) >= most:
            break
        if entry & 1 == 0:
            places.append(entry)
            where = entry + w
        else:
            places.extend(where + w * i for i in range(bits) if entry >> (i + 1) & 1)
            where += bits * w
    return places[:most]


def _init_functions(elf: ELFFile, relocated: dict[int, int]) -> set[int]:
    """DT_INIT, DT_FINI and the entries of DT_INIT_ARRAY and DT_FINI_ARRAY: each entry as the loader leaves it,
    the value its relocation stores (`relocated`: place -> value) or else the word in the file (a RELA target's
    linker may leave 0 there: riscv64's does)."""
    dyn = dict(elf.dynamic)
    w = 8 if elf.bits == 64 else 4
    out = {v for t, v in ((DT_INIT, dyn.get(DT_INIT)), (DT_FINI, dyn.get(DT_FINI))) if v}
    for arr, size in ((DT_INIT_ARRAY, DT_INIT_ARRAYSZ), (DT_FINI_ARRAY, DT_FINI_ARRAYSZ)):
        addr, n = dyn.get(arr), dyn.get(size)
        if not addr or not n:
            continue
        values = (relocated.get(addr + w * i, _word(elf, addr + w * i)) for i in range(min(n // w, MAX_RELOCATIONS)))
        out |= {v for v in values if v is not None and v not in (0, (1 << 8 * w) - 1)}
    return out


def model(elf: ELFFile, abi: str, deadline: float) -> Model:
    """The library's model (the ABIs of `ABIS`).

    Functions: stripped libraries name only their exported functions, so every direct call target and every
    code address the library takes starts a function too, and each instruction and site belongs to the
    function holding it. Data: the addresses the code reads or takes (`[rip + X]`, `adrp` + `add`/`ldr`,
    `auipc` + `addi`/`ld`, `larl`, TOC-relative `addis` + `addi`/`ld`, GOT-relative `[ebx + X]`, ARM literal
    pools added to the PC) and the addresses the relocations point to split the data into objects; an object
    holds the pointers relocated inside it, to functions (a function table such as stdio's), to other objects,
    or to imported names (GOT slots)."""
    code = Code(elf)
    spec = ABIS[abi]
    arch = engine.arch_for(abi, elf.byte_order == "<")
    assert arch is not None and arch.cs is not None
    thumb_bit = ~1 if abi == "arm" else ~0  # ARM: a Thumb function's address has bit 0 set
    m = Model(abi)
    dynsyms = list(elf.dynamic_symbols())
    by_index = {s.index: s for s in dynsyms}
    # GOT slot -> the name the loader binds it to (by name in load order: this library's own definition or
    # another library's that interposes it), or the IFUNC resolver an IRELATIVE slot is filled by
    slots: dict[int, str | int] = {}
    words: set[int] = set()  # data words (an absolute relocation) the program may write: not GOT entries, not RELRO
    relro = [(g.p_vaddr, g.p_vaddr + g.p_memsz) for g in elf.segments if g.p_type == PT_GNU_RELRO]
    pointers: list[tuple[int, int]] = []  # (place, address stored there)
    absolute, got, jump_slot, relative, irelative = spec.reloc
    resolvers = {s.st_value & thumb_bit for s in dynsyms if s.type == 10 and s.st_shndx}
    for r_offset, rtype, sym, addend in _relocations(elf):
        if rtype in (got, jump_slot, absolute) and sym in by_index and by_index[sym].name:
            s = by_index[sym]
            if rtype != absolute or addend == 0:
                slots[r_offset] = s.name
                if rtype == absolute and not any(lo <= r_offset < hi for lo, hi in relro):
                    words.add(r_offset)
            if s.st_shndx:
                pointers.append((r_offset, s.st_value + (addend if rtype == absolute else 0)))
        elif rtype == relative:
            pointers.append((r_offset, addend))
        elif rtype == irelative:
            slots[r_offset] = addend & thumb_bit
            resolvers.add(addend & thumb_bit)
            pointers.append((r_offset, addend))
    pointers += _relr_values(elf)
    if abi.startswith("mips"):
        _mips_got(elf, by_index, slots, pointers)
    pointers = [(p, v & thumb_bit if code.region_of(v & thumb_bit) is not None else v) for p, v in pointers]
    ctx = Ctx(code, _entry_registers(elf, abi), slots=frozenset(slots.keys() - words))
    # the PLT of an i386 shared library jumps through the GOT pointer its caller set in ebx
    plt_ctx = Ctx(code, {**ctx.regs, "ebx": dict(elf.dynamic).get(DT_PLTGOT, 0)} if abi == "i386" else ctx.regs)
    plt: dict[int, str | int] = {}
    events: list[Event] = []
    outside: set[int] = set()  # where named functions jump to outside themselves (shared error paths, .cold)
    for fn in code.functions:
        if time.monotonic() > deadline:
            break
        r = code.region_of(fn.start)
        if r is None or r.name == ".MIPS.stubs":  # MIPS lazy binding (through GOT[0]): calls use the GOT entries
            continue
        decoded = _decoded(arch, spec, code, fn)
        ctx.thumb = plt_ctx.thumb = fn.thumb
        if r.name.startswith(".plt"):
            _plt_entries(spec.events(decoded, plt_ctx), slots, plt, abi)
            continue
        # the instruction starts, for the site search (engine._starts) to reuse
        code.insn_starts[fn.start] = array("Q", (d[0] for d in decoded))
        before = len(events)
        events.extend(spec.events(decoded, ctx))
        if not fn.name.startswith("."):  # a named function's jump out of it goes to another's code: a start
            outside.update(t for _, k, t, _, _ in events[before:]
                           if t is not None and k in ("jump", "cond") and not fn.start <= t < fn.end)  # fmt: skip
    if abi == "arm":  # literal pools: the words `ldr rX, [pc, #off]` reads are data, not instructions
        pools = {ref for _, kind, _, ref, taken in events if ref is not None and not taken and code.region_of(ref)}
        pools |= {p + 2 for p in pools}
        events = [e for e in events if e[0] not in pools]
    starts = {f.start for f in code.functions if not f.name.startswith(".")} | outside
    for _, kind, target, ref, taken in events:
        if kind == "call" and target is not None:
            starts.add(target)
        elif ref is not None and taken and code.region_of(ref) is not None:
            starts.add(ref & thumb_bit)
    starts |= {v for _, v in pointers if code.region_of(v) is not None}
    # the initialisers and finalisers the loader calls: DT_INIT's `_init` starts a function even where nothing
    # names or calls it (glibc 2.31's libpthread: its _init calls __pthread_initialize_minimal)
    inits = {a & thumb_bit for a in _init_functions(elf, dict(pointers))}
    starts |= {a for a in inits if code.region_of(a) is not None}
    if abi == "arm":  # a Thumb caller's `bl` enters an ARM PLT entry through the stub before it, `bx pc; b.n`
        plt.update({entry - 4: name for entry, name in list(plt.items()) if code.read(entry - 4, 4) == _THUMB_STUB})
    starts -= set(plt)
    order = sorted(starts)
    m.names = {f.start: f.name for f in code.functions if f.start in starts}

    def owner(addr: int) -> int | None:
        return _floor(order, addr)

    # data objects: split where code points into data, where relocations point, and at exported symbols
    data_syms = {s.name: s.st_value for s in dynsyms if s.st_shndx and s.type == 1}
    refs = {ref for _, _, _, ref, _ in events if ref is not None and code.region_of(ref) is None}
    pointed = {v for _, v in pointers if code.region_of(v) is None}
    objects = sorted(refs | set(slots) | pointed | set(data_syms.values()))

    def obj(addr: int) -> int | None:
        return _floor(objects, addr)

    for place, value in pointers:
        o = obj(place)
        if o is None:
            continue
        if code.region_of(value) is not None:
            m.object_functions.setdefault(o, set()).add(value)
        elif (target := obj(value)) is not None:
            m.object_objects.setdefault(o, set()).add(target)
    for place, name in slots.items():
        if isinstance(name, str) and (o := obj(place)) is not None:
            m.object_imports.setdefault(o, set()).add(name)
    m.exported_objects = {n: o for n, v in data_syms.items() if (o := obj(v)) is not None}
    _edges(m, events, order, owner, obj, code, plt, slots, words, thumb_bit)
    for resolver in resolvers:  # an IFUNC resolver returns one of the implementations whose address it takes
        if (o := owner(resolver)) is not None:
            m.callees.setdefault(o, set()).update(t for a in m.code_taken.get(o, ()) if (t := owner(a)) is not None)
    if abi.startswith("mips") and "$gp" not in ctx.regs:  # several GOTs: a call through one may be to any name
        names = {n for n in slots.values() if isinstance(n, str)}
        for caller in m.indirect:
            m.imports.setdefault(caller, set()).update(names)
    code.split(starts)  # the sites' functions as the call graph knows them (a syscall helper is a wrapper)
    # this library's calls of another's syscall() (libstdc++'s futex waits): the number at each call, as a
    # program's are (syscalls._imported_wrappers)
    from analyzer.facts.syscalls import IMPORTED_WRAPPERS, first_argument

    first = first_argument(arch, abi)
    imported = {a: {first} for a, n in plt.items() if n in IMPORTED_WRAPPERS} if first is not None else {}
    code.extra_names.update({a: f"{plt[a]}@plt" for a in imported})
    for a, kind, _, ref, _ in events if first is not None else ():  # and through its GOT slot (-fno-plt)
        wrapper = slots.get(ref) if kind in ("icall", "ijump") and ref is not None else None
        if isinstance(wrapper, str) and wrapper in IMPORTED_WRAPPERS and ref is not None and first is not None:
            code.extra_calls.setdefault(ref, []).append(a)
            code.extra_names[ref] = f"{wrapper}@got"
            imported[ref] = {first}
    result = engine.analyze(arch, code, False, deadline, imported)
    seen_through: set[int] = set()  # functions whose calls of an imported wrapper were sites of their own
    for site in result.sites:
        f = owner(site.address)
        if f is None:
            continue
        for n in site.numbers:
            m.calls.setdefault(f, set()).add(("x32" if abi == "x86_64" and n & 0x40000000 else site.abi, n))
        if site.how == "unresolved" or (not site.complete and site.how != "wrapper"):
            m.unresolved.add(f)
        if site.kind == "call" and (site.wrapper or "").split("@")[0] in IMPORTED_WRAPPERS:
            seen_through.add(f)
    # a call of another object's syscall() that is no site here (through a GOT slot, the PLT of an ABI not
    # read): its number is not known, and reaching the wrapper adds none: the function is unresolved, not silent
    for f, names in m.imports.items():
        if f not in seen_through and any(n in IMPORTED_WRAPPERS for n in names):
            m.unresolved.add(f)
    # a name may be defined at several versions (getrlimit64@GLIBC_2.1 beside getrlimit64@@GLIBC_2.2 on i386):
    # a reference without a version binds to the default one, a versioned reference to its own
    versym, vnames = elf.versym, {d.index: d.names[0] for d in elf.version_defs if d.names}
    defaults: dict[str, int] = {}
    for s in dynsyms:
        if s.st_shndx and s.type in (2, 10) and s.binding != 0:
            v = versym[s.index] if s.index < len(versym) else 1
            m.exports.setdefault(s.name, s.st_value & thumb_bit)
            if not v & 0x8000:
                defaults.setdefault(s.name, s.st_value & thumb_bit)
            if (v & 0x7FFF) > 1 and (vname := vnames.get(v & 0x7FFF)):
                m.versions.setdefault(s.name, {})[vname] = s.st_value & thumb_bit
    m.exports.update(defaults)
    m.versions = {n: by for n, by in m.versions.items() if len(set(by.values())) > 1}
    m.entry_points = {o for a in inits if (o := owner(a)) is not None}
    return m


def split_at_calls(code: Code, abi: str, deadline: float) -> None:
    """Start a function at every direct call target of a stripped file's code (else a stripped static program
    is one function of megabytes, and its system-call helpers are no functions to be wrappers: glibc 2.41's
    __syscall_cancel, through which every cancellable call goes, in Debian 13's busybox-static)."""
    spec = ABIS.get(abi)
    arch = engine.arch_for(abi, code.elf.byte_order == "<")
    if spec is None or arch is None or arch.cs is None:
        return
    thumb_bit = ~1 if abi == "arm" else ~0
    ctx = Ctx(code, _entry_registers(code.elf, abi))
    targets: set[int] = set()
    for fn in code.functions:
        if time.monotonic() > deadline:
            return  # (out of time: left unsplit, as before)
        r = code.region_of(fn.start)
        if r is None or r.name.startswith(".plt") or r.name == ".MIPS.stubs":
            continue
        decoded = _decoded(arch, spec, code, fn)
        ctx.thumb = fn.thumb
        targets.update(t & thumb_bit for _, kind, t, _, _ in spec.events(decoded, ctx)
                       if kind == "call" and t is not None and code.region_of(t & thumb_bit) is not None)
    code.split(targets)


def _decoded(arch: engine.Arch, spec: Any, code: Code, fn: Any) -> list[tuple[int, int, str, str]]:
    """A function's instructions as capstone decodes them (lite), Thumb or not, on past undecodable units where
    the ABI's spec says objdump goes on."""
    csa, mode = arch.thumb_cs if fn.thumb and arch.thumb_cs else arch.cs  # type: ignore[misc]
    md = engine._cs(csa, mode, False)
    skip = engine._skip(arch, fn.thumb) if spec.resume else 0
    blob = code.read(fn.start, fn.end - fn.start)
    return list(_lite(md, blob, fn.start, skip) if skip else md.disasm_lite(blob, fn.start))


def _lite(md: Any, data: bytes, start: int, skip: int) -> Iterator[tuple[int, int, str, str]]:
    """capstone's (address, size, mnemonic, operands); with `skip`, decoding goes on past undecodable units
    (data in code, instructions capstone 5 does not know) as objdump does."""
    return (d for d in engine.units(md.disasm_lite, data, start, skip) if not isinstance(d, int))


def _entry_registers(elf: ELFFile, abi: str) -> dict[str, int]:
    """POWER (ELFv2): r2 holds the TOC pointer, .got + 0x8000, in every function of the library. MIPS: $gp
    holds the GOT's address + 0x7ff0 (one GOT: a library whose GOT outgrew 64 KiB has several, and its
    functions' $gp differ), and `$local_got_end` says where the local entries end."""
    if abi == "ppc64":
        got = next((s for s in elf.sections if s.name == ".got"), None)
        return {"r2": got.sh_addr + 0x8000} if got is not None else {}
    if abi.startswith("mips"):
        dyn = dict(elf.dynamic)
        base, local = dyn.get(DT_PLTGOT), dyn.get(DT_MIPS_LOCAL_GOTNO)
        got = next((s for s in elf.sections if s.name == ".got"), None)
        if base is None or local is None or (got is not None and got.sh_size > 0x10000):
            return {}  # no GOT, or several (each function's $gp is its own): see model()
        return {"$gp": base + 0x7FF0, "$local_got_end": base + local * (8 if elf.bits == 64 else 4)}
    return {}


def _mips_got(elf: ELFFile, by_index: dict[int, Any], slots: dict[int, str | int],
              pointers: list[tuple[int, int]]) -> None:  # fmt: skip
    """MIPS has no GOT relocations: the loader adds the load address to the local entries (addresses in this
    library: pointers) and binds each global entry to its symbol by name (.dynsym from DT_MIPS_GOTSYM on,
    in order: slots)."""
    dyn = dict(elf.dynamic)
    base, local = dyn.get(DT_PLTGOT), dyn.get(DT_MIPS_LOCAL_GOTNO)
    gotsym, symtabno = dyn.get(DT_MIPS_GOTSYM), dyn.get(DT_MIPS_SYMTABNO)
    if base is None or local is None:
        return
    w = 8 if elf.bits == 64 else 4
    for i in range(2, min(local, MAX_RELOCATIONS, elf.size // w)):  # 0: the lazy resolver, 1: the module pointer
        v = _word(elf, base + i * w)
        if v:
            pointers.append((base + i * w, v))
    if gotsym is None or symtabno is None:
        return
    for i in range(min(max(symtabno - gotsym, 0), len(by_index))):
        sym = by_index.get(gotsym + i)
        if sym is not None and sym.name:
            slots[base + (local + i) * w] = sym.name


def _edges(m: Model, events: list[Event], order: list[int], owner: Any, obj: Any, code: Code,
           plt: dict[int, str | int], slots: dict[int, str | int], words: set[int], thumb_bit: int
           ) -> None:  # fmt: skip
    """Calls, tail calls, fall-throughs, imports, taken addresses, data references and indirect calls per
    function, in one pass in address order (the function holding each instruction moves forward with it)."""
    j, n_order = -1, len(order)
    f: int | None = None
    nxt = order[0] if order else None
    prev_owner, prev_kind = None, "end"
    in_data = False  # after a POWER traceback table's zero word: data up to the next function
    for a, kind, target, ref, taken in events:
        if nxt is not None and a >= nxt:
            while j + 1 < n_order and order[j + 1] <= a:
                j += 1
            f = order[j]
            nxt = order[j + 1] if j + 1 < n_order else None
            in_data = False
            if prev_owner is not None and a == f and prev_owner != f and prev_kind not in ENDING:
                m.callees.setdefault(prev_owner, set()).add(f)  # falls through into the next function
        if f is None or in_data:
            continue
        if kind == "data":
            in_data, prev_kind = True, "end"
            continue
        if kind == "run":  # instructions that each go on to the next, from `a` to `target`
            if nxt is not None and target is not None and nxt <= target:
                while j + 1 < n_order and order[j + 1] <= target:  # functions starting inside the run
                    j += 1
                    m.callees.setdefault(f, set()).add(order[j])  # fall through into it
                    f = order[j]
                nxt = order[j + 1] if j + 1 < n_order else None
            prev_owner, prev_kind = f, "other"
            continue
        if kind != "pad":
            prev_owner, prev_kind = f, kind
        if ref is not None:
            if code.region_of(ref) is not None:
                if taken:
                    m.code_taken.setdefault(f, set()).add(ref & thumb_bit)
            elif (o := obj(ref)) is not None:
                m.data_refs.setdefault(f, set()).add(o)
        through: str | int | None = None  # a call through a PLT entry or a GOT slot (-fno-plt, POWER's stubs)
        if target is not None and kind in ("call", "jump", "cond"):
            if target in plt:
                through = plt[target]
            elif (t := owner(target)) is not None and t != f:
                m.callees.setdefault(f, set()).add(t)
        elif kind in ("icall", "ijump"):
            if ref is not None and ref in slots:
                through = slots[ref]
            if through is None or ref in words:  # (a writable word holds what the program last stored there)
                m.indirect.add(f)
        if isinstance(through, str):
            m.imports.setdefault(f, set()).add(through)
        elif through is not None and (t := owner(through)) is not None:
            m.callees.setdefault(f, set()).add(t)  # an IRELATIVE slot: its resolver, and so what it returns


def import_slots(elf: ELFFile, abi: str, wanted: tuple[str, ...]) -> dict[int, str]:
    """The GOT slots the loader fills with the imported names `wanted` (slot address -> name)."""
    spec = ABIS.get(abi)
    if spec is None:
        return {}
    names = {s.index: s.name for s in elf.dynamic_symbols()}
    _, got, jump_slot, _, _ = spec.reloc
    return {off: names[sym] for off, rtype, sym, _ in _relocations(elf)
            if rtype in (got, jump_slot) and names.get(sym) in wanted}


# x86-64 uses of a GOT slot outside the PLT: `call`/`jmp [rip + disp32]` (ff 15/25), `mov r64, [rip + disp32]`
_X86_SLOT_USES = re.compile(rb"(?=\xff[\x15\x25]|[\x48\x4c]\x8b[\x05\x0d\x15\x1d\x25\x2d\x35\x3d])", re.S)
SLOT_LOOKAHEAD = 4096  # bytes after a slot's load into a register in which calls through it are looked for


def slot_calls(code: Code, slots: dict[int, str]) -> list[tuple[int, int]]:
    """An x86-64 program's calls and tail calls through the GOT slots `slots` outside its PLT, (address, slot)
    in address order: `call [rip + slot]` (gcc's -fno-plt), and `call r14` where r14 was loaded from the slot
    before (clang's -fno-plt loads it once for several calls), followed by the library model's event stream
    from the load to the end of its function. A match that is no instruction of its function is dropped where
    the call is resolved (engine._window decodes from the function's start)."""
    found: set[tuple[int, int]] = set()
    ctx = Ctx(code, {}, slots=frozenset(slots))
    arch = engine.arch_for("x86_64", True)
    if arch is None or arch.cs is None:
        return []
    md = engine._cs(*arch.cs, False)
    for region in code.regions:
        if region.name.startswith(".plt"):  # (the PLT's own jumps through the slot: its entries)
            continue
        blob = code.read(region.vaddr, region.size)
        for m in _X86_SLOT_USES.finditer(blob):
            at = m.start()
            k = 2 if blob[at] == 0xFF else 3
            slot = region.vaddr + at + k + 4 + int.from_bytes(blob[at + k : at + k + 4], "little", signed=True)
            if slot not in slots:
                continue
            if k == 2:
                found.add((region.vaddr + at, slot))
                continue
            func = code.function_of(region.vaddr + at)
            end = min(region.size, at + SLOT_LOOKAHEAD, (func.end - region.vaddr) if func else region.size)
            decoded = md.disasm_lite(blob[at:end], region.vaddr + at)
            found.update((a, ref) for a, kind, _, ref, _ in ABIS["x86_64"].events(decoded, ctx)
                         if kind in ("icall", "ijump") and ref == slot)  # fmt: skip
    return sorted(found)


# i386 calls and jumps through `[reg + disp]` (ff /2, ff /4; disp8 or disp32; a SIB byte or [ebp] without one left
# out): gcc's -fno-plt, `call *syscall@GOT(%ebx)`, off the GOT address a PIC thunk put in the register
_I386_SLOT_USES = re.compile(rb"(?=\xff[\x50-\x53\x56\x57\x55\x60-\x63\x65-\x67\x90-\x93\x95-\x97\xa0-\xa3\xa5-\xa7])",
                             re.S)


def slot_calls_i386(code: Code, slots: dict[int, str], got: int) -> list[tuple[int, int]]:
    """An i386 program's calls and tail calls through the GOT slots `slots` (gcc's -fno-plt: `call [ebx + disp]`,
    ebx holding the GOT's address `got`, DT_PLTGOT), (address, slot) in address order. The candidates are found
    as bytes (the displacement is the slot's offset from the GOT); one counts where its function, before it, put
    the GOT's address in its base register (`call __x86.get_pc_thunk.REG; add REG, imm`): PIC code sets it once
    and keeps it (callee-saved) on every path, which a straight read through the function would lose after an
    early return's `pop ebx`. Each function holding candidates is decoded once, up to its last one."""
    arch = engine.arch_for("i386", True)
    if arch is None or arch.cs is None or not got:
        return []
    md = engine._cs(*arch.cs, False)
    wanted = {(slot - got) & 0xFFFFFFFF: slot for slot in slots}
    base_of = ("eax", "ecx", "edx", "ebx", "", "ebp", "esi", "edi")  # ModRM r/m -> register
    # where a decoding starts (its function's start) -> the candidates after it: (address, base register, slot)
    spans: dict[int, list[tuple[int, str, int]]] = {}
    for region in code.regions:
        if region.name.startswith(".plt"):
            continue
        blob = code.read(region.vaddr, region.size)
        for m in _I386_SLOT_USES.finditer(blob):
            at = m.start()
            wide = blob[at + 1] >= 0x90
            disp = int.from_bytes(blob[at + 2 : at + (6 if wide else 3)], "little", signed=True) & 0xFFFFFFFF
            slot = wanted.get(disp)
            if slot is None:
                continue
            addr = region.vaddr + at
            func = code.function_of(addr)
            start = max(func.start if func else addr - SLOT_LOOKAHEAD, region.vaddr)
            spans.setdefault(start, []).append((addr, base_of[blob[at + 1] & 7], slot))
    found: set[tuple[int, int]] = set()
    for start, calls in spans.items():
        last = max(a for a, _, _ in calls)
        end = min(last, start + 16 * SLOT_LOOKAHEAD)  # (a function of more than 64 KiB: its first part)
        blob = code.read(start, end - start)
        set_at = _got_registers(code, md, blob, start, got)
        found.update((a, slot) for a, reg, slot in calls if set_at.get(reg, a) < a)
    return sorted(found)


def _got_registers(code: Code, md: Any, blob: bytes, start: int, got: int) -> dict[str, int]:
    """The registers into which the i386 code `blob` (at `start`) puts the GOT's address (a PIC thunk's call,
    then `add REG, imm` to its return address), each with the address of its first such `add`."""
    pending: dict[str, int] = {}
    out: dict[str, int] = {}
    for a, size, mn, ops in md.disasm_lite(blob, start):
        if mn == "call" and ops.startswith("0x"):
            if thunk := engine._pc_thunk(code, int(ops, 16)):
                pending[thunk] = a + size
        elif mn == "add" and (parts := ops.split(", "))[0] in pending and (value := I.num(parts[1])) is not None:
            if (pending.pop(parts[0]) + value) & 0xFFFFFFFF == got:
                out.setdefault(parts[0], a)
    return out


A64_LOOKBACK = 64  # instructions before an AArch64 slot's `ldr` read for its `adrp`


def slot_calls_a64(code: Code, slots: dict[int, str]) -> list[tuple[int, int]]:
    """An AArch64 program's calls (`blr xN`) and tail calls (`br xN`) through the GOT slots `slots`, xN loaded
    from the slot before (`adrp xN, page; ldr xN, [xN, #off]`: -fno-plt), (address, slot) in address order. The
    loads are found as bytes (an `ldr xT, [xN, #imm]` whose imm is the slot's offset in its page), and each is
    read with the library model's event stream from A64_LOOKBACK instructions before it (for its adrp) to
    SLOT_LOOKAHEAD bytes after it, within its function: no per-word work over the program's code."""
    arch = engine.arch_for("aarch64", True)
    if arch is None or arch.cs is None:
        return []
    md = engine._cs(*arch.cs, False)
    ctx = Ctx(code, {}, slots=frozenset(slots))
    found: set[tuple[int, int]] = set()
    for slot in slots:
        if slot % 8:
            continue
        imm = (slot & 0xFFF) >> 3  # LDR (immediate, 64-bit): 0xF9400000 | imm12 << 10 | Rn << 5 | Rt
        low = (imm & 0x3F) << 2
        load = re.compile(b"(?=[\x00-\xff][" + re.escape(bytes([low])) + b"-" + re.escape(bytes([low | 3]))
                          + b"]" + re.escape(bytes([0x40 | imm >> 6])) + b"\xf9)", re.S)  # fmt: skip
        for region in code.regions:
            if region.name.startswith(".plt"):
                continue
            blob = code.read(region.vaddr, region.size)
            for m in load.finditer(blob):
                if m.start() % 4:
                    continue
                at = region.vaddr + m.start()
                func = code.function_of(at)
                start = max(func.start if func else region.vaddr, at - 4 * A64_LOOKBACK, region.vaddr)
                end = min(func.end if func else region.vaddr + region.size, at + SLOT_LOOKAHEAD,
                          region.vaddr + region.size)  # fmt: skip
                decoded = md.disasm_lite(blob[start - region.vaddr : end - region.vaddr], start)
                found.update((a, ref) for a, kind, _, ref, _ in ABIS["aarch64"].events(decoded, ctx)
                             if kind in ("icall", "ijump") and ref == slot)  # fmt: skip
    return sorted(found)


def plt_entries(elf: ELFFile, abi: str, code: Code, wanted: tuple[str, ...]) -> dict[int, str]:
    """A program's own PLT entries through which it calls the imported names `wanted` (entry address -> name),
    read as a library's PLT is for the model (_plt_entries: every ABI's stub); MIPS's lazy stubs and -fno-plt
    calls through a GOT slot are none."""
    spec, arch = ABIS.get(abi), engine.arch_for(abi, elf.byte_order == "<")
    if spec is None or arch is None or arch.cs is None:
        return {}
    slots: dict[int, str | int] = dict(import_slots(elf, abi, wanted))
    if not slots:
        return {}
    regs = _entry_registers(elf, abi)
    ctx = Ctx(code, {**regs, "ebx": dict(elf.dynamic).get(DT_PLTGOT, 0)} if abi == "i386" else regs)
    plt: dict[int, str | int] = {}
    for fn in code.functions:
        r = code.region_of(fn.start)
        if r is None or not r.name.startswith(".plt"):
            continue
        ctx.thumb = fn.thumb
        _plt_entries(spec.events(_decoded(arch, spec, code, fn), ctx), slots, plt, abi)
    if abi == "arm":  # (a Thumb caller's `bl` enters through the stub before the entry, as in a library)
        plt.update({entry - 4: name for entry, name in list(plt.items()) if code.read(entry - 4, 4) == _THUMB_STUB})
    return {a: n for a, n in plt.items() if isinstance(n, str)}


def _plt_entries(events: Iterator[Event], slots: dict[int, str | int], plt: dict[int, str | int], abi: str) -> None:
    """PLT entry address -> the imported name its jump goes through: x86-64 `jmp [rip + slot]` (the entry
    starts at the 16-byte boundary holding it: endbr64 and bnd prefixes), AArch64 `adrp x16; ldr x17, [x16,
    #slot]; add; br x17` (the entry starts at the adrp), and the jump through the slot a fixed distance into
    the entry elsewhere (i386 `jmp [ebx + slot]`, RISC-V `auipc; ld; jalr`, s390x `larl; lg; br`, ARM `add;
    add; ldr pc`)."""
    back = ABIS[abi].plt_back
    for a, kind, _, ref, _ in events:
        if ref is None or ref not in slots:
            continue
        if abi == "x86_64" and kind in ("ijump", "jump"):
            plt[a & ~15] = plt[a] = slots[ref]
        elif abi == "aarch64" or (abi != "x86_64" and kind in ("ijump", "icall")):
            plt[a - back] = slots[ref]


_THUMB_STUB = b"\x78\x47\xfd\xe7"  # bx pc; b.n .-2 (little-endian Thumb)


def _floor(ordered: list[int], addr: int) -> int | None:
    """The greatest element of `ordered` at or below `addr` (the function or data object holding it)."""
    i = bisect.bisect_right(ordered, addr) - 1
    return ordered[i] if i >= 0 else None


def reach(program: Any, link_map: Any, deadline: float) -> dict[str, Any]:
    """The system calls the program reaches through its libraries (see the module's doc)."""
    from analyzer.facts.loader.linkmap import definitions
    from analyzer.facts.syscalls import _name, detect_abi

    abi = detect_abi(program.elf)
    if abi not in ABIS or (abi == "ppc64" and program.elf.e_flags & 3 != 2 and program.elf.byte_order == ">"):
        return {"modelled": False, "reason": f"library call graphs are not modelled for {_abi_text(program.elf, abi)}"}
    objects = link_map.objects
    scope = [(o, definitions(o)) for o in objects]
    memo = link_map.sysroot.memo
    models: dict[str, Model] = {}
    damaged: set[str] = set()
    _prefetch([(o.host_path, o.elf) for o in objects[1:]], abi, deadline, memo, link_map.sysroot.workers)

    def model_of(o: Any) -> Model:
        got = models.get(o.name)
        if got is not None:  # (asked once per import: the real path taken once per object, not per symbol)
            return got
        key = _memo_key(o.host_path)
        if key not in memo:
            memo[key] = _sound_model(o.elf, abi, deadline)
        models[o.name] = memo[key]
        if models[o.name].damaged:
            damaged.add(f"{o.name}: not modelled ({models[o.name].damaged}): its calls are not followed")
        return models[o.name]

    state = _Reach(models)

    def import_(name: str, requester: Any, version: str | None = None) -> None:
        # the first definition in the global scope, the requester's own included (libc's malloc@plt binds
        # to libc's malloc unless an object before it defines one)
        target = next((lib for lib, table in scope if any(not hidden for _, hidden in table.get(name, ()))), None)
        if target is None or target is objects[0]:
            return
        mm = model_of(target)
        if version is not None and version in mm.versions.get(name, {}):
            state.todo.append((target, mm.versions[name][version]))
        elif name in mm.exports:
            state.todo.append((target, mm.exports[name]))
        elif name in mm.exported_objects:
            state.make_available(target, mm.exported_objects[name])

    state.import_ = import_
    wanted = {other & 0x7FFF: vname for need in program.elf.version_needs for vname, other, _ in need.aux}
    versym = program.elf.versym
    imported = {(n, wanted.get(versym[i] & 0x7FFF) if i < len(versym) else None)
                for i, n, _ in program.elf.undefined_symbols()}
    for name, version in sorted(imported, key=lambda nv: (nv[0], nv[1] or "")):
        import_(name, objects[0], version)
    imported_names = {n for n, _ in imported}
    opened = [f"the program calls {n}: the libraries it opens at run time are not followed"
              for n in sorted(imported_names & set(DLOPEN))]  # fmt: skip
    for o in objects[1:]:
        mm = model_of(o)
        state.todo.extend((o, a) for a in mm.entry_points)
        # what glibc's loader itself calls in the C library once it is mapped (2.32 and later): its early
        # initialisation (the default thread stack size: getrlimit, prlimit64 on some architectures)
        state.todo.extend((o, mm.exports[n]) for n in LOADER_CALLS if n in mm.exports)
    interp = link_map.sysroot.open(program.elf.interpreter)[0] if program.elf.interpreter else None
    interp_path = link_map.sysroot.host(program.elf.interpreter) if interp is not None else None
    loader_calls: set[tuple[str, int]] = set()
    if interp is not None and interp_path is not None:
        key = _memo_key(interp_path)
        if key not in memo:  # usually modelled already: the loader is also the object that defines its symbols
            memo[key] = _sound_model(interp, abi, deadline)
        loader_calls = {c for calls in memo[key].calls.values() for c in calls}
    incomplete = state.run(deadline) + opened + sorted(damaged)

    def named(calls: set[tuple[str, int]]) -> list[str]:
        return sorted({n for n in (_name(t, num) for t, num in calls) if n})

    every = set().union(*state.found.values()) if state.found else set()
    return {
        "modelled": True,
        "names": named(every | loader_calls),
        "by_library": {lib: named(calls) for lib, calls in sorted(state.found.items())},
        "loader": named(loader_calls),
        "indirect_calls_followed": sorted(state.pools_open),
        "incomplete": sorted(set(incomplete)),
    }


def _abi_text(elf: ELFFile, abi: str | None) -> str:
    if abi == "ppc64":
        return "big-endian POWER ELFv1 (function descriptors)"
    return f"{abi} (modelled: {', '.join(ABIS)})"


def _memo_key(host_path: str) -> tuple[str, str]:
    """The run's key of a library's model: its real path (the loader is both PT_INTERP's name and, through
    libc's DT_NEEDED, another's: one file, one model)."""
    return ("syscalls-model", os.path.realpath(host_path))


_FORKED: list[tuple[str, ELFFile]] = []  # what a forked prefetch worker models (inherited, not pickled)


def _prefetch(todo: list[tuple[str, ELFFile]], abi: str, deadline: float, memo: dict[Any, Any], workers: int) -> None:
    """Model the libraries not modelled yet in this run, the largest here and the others in `workers` - 1
    forked processes at once (a dynamic program's libraries: libc beside the rest). Only in the main
    process of a run that analyses one file at a time (a pool's worker has no cores to spare)."""
    import multiprocessing

    todo = sorted({p: e for p, e in todo if e is not None and _memo_key(p) not in memo}.items(),
                  key=lambda item: -item[1].size)  # fmt: skip
    if workers < 2 or len(todo) < 2 or multiprocessing.parent_process() is not None:
        return
    from concurrent.futures import ProcessPoolExecutor

    _FORKED[:] = todo[1:]
    try:
        with ProcessPoolExecutor(min(workers - 1, len(todo) - 1), multiprocessing.get_context("fork")) as pool:
            futures = [pool.submit(_forked_model, i, abi, deadline) for i in range(len(todo) - 1)]
            memo[_memo_key(todo[0][0])] = _sound_model(todo[0][1], abi, deadline)
            for (path, _), fut in zip(todo[1:], futures, strict=True):
                memo[_memo_key(path)] = fut.result()
    except Exception:  # noqa: BLE001 - a worker that could not start or died: model them here, one by one
        pass
    finally:
        _FORKED.clear()


def _forked_model(i: int, abi: str, deadline: float) -> Model:
    return _sound_model(_FORKED[i][1], abi, deadline)


def _sound_model(elf: ELFFile, abi: str, deadline: float) -> Model:
    """_kept_model(), or an empty model saying why when the library is damaged past reading (the loader
    model took it for an ELF file; its relocations, symbols or code are hostile): the program's own facts
    stand, and the reach says it is incomplete."""
    try:
        return _kept_model(elf, abi, deadline)
    except Exception as e:  # noqa: BLE001 - a parser surprise on a hostile library: the program's facts stand
        return Model(abi, damaged=f"{type(e).__name__}: {e}"[:200])


def _kept_model(elf: ELFFile, abi: str, deadline: float) -> Model:
    """model(), kept in the result cache by the library's content (a library is modelled once, not once per
    run: libc's model is most of a dynamic program's time). A model cut short by the deadline is not kept."""
    import hashlib

    from analyzer import cache

    digest = hashlib.sha256(elf.data).hexdigest()
    kept: Model = cache.keep("syscalls-library-model", digest, abi, lambda: model(elf, abi, deadline),
                             worth=lambda m: time.monotonic() <= deadline)  # fmt: skip
    return kept


class _Reach:
    """The worklist over (object, function) and the data objects made available, per library."""

    def __init__(self, models: dict[str, Model]) -> None:
        self.models = models
        self.todo: list[tuple[Any, int]] = []
        self.done: set[tuple[str, int]] = set()
        self.available: set[tuple[str, int]] = set()
        self.pool: dict[str, set[int]] = {}  # per library: functions whose address reached code or data holds
        self.pools_open: set[str] = set()  # libraries where reached code calls through a pointer
        self.found: dict[str, set[tuple[str, int]]] = {}
        self.import_: Any = None

    def add_to_pool(self, o: Any, functions: set[int]) -> None:
        pool = self.pool.setdefault(o.name, set())
        new = functions - pool
        pool |= new
        if o.name in self.pools_open:
            self.todo.extend((o, f) for f in new)

    def make_available(self, o: Any, start: int) -> None:
        stack = [start]
        mm = self.models[o.name]
        while stack:
            d = stack.pop()
            if (o.name, d) in self.available:
                continue
            self.available.add((o.name, d))
            self.add_to_pool(o, mm.object_functions.get(d, set()))
            stack.extend(mm.object_objects.get(d, ()))
            for name in mm.object_imports.get(d, ()):
                self.import_(name, o)

    def run(self, deadline: float) -> list[str]:
        incomplete: list[str] = []
        while self.todo:
            if time.monotonic() > deadline:
                incomplete.append("the time budget ran out")
                break
            o, start = self.todo.pop()
            if (o.name, start) in self.done:
                continue
            self.done.add((o.name, start))
            mm = self.models[o.name]
            self.found.setdefault(o.name, set()).update(mm.calls.get(start, ()))
            if start in mm.unresolved:
                where = mm.names.get(start, hex(start))
                incomplete.append(f"{o.name}: a system call with an unresolved number in {where}")
            self.todo.extend((o, t) for t in mm.callees.get(start, ()))
            for name in mm.imports.get(start, ()):
                if name in DLOPEN:
                    incomplete.append(f"{o.name} calls {name}: the libraries it opens at run time are not followed")
                self.import_(name, o)
            self.add_to_pool(o, mm.code_taken.get(start, set()))
            for d in mm.data_refs.get(start, ()):
                self.make_available(o, d)
            if start in mm.indirect and o.name not in self.pools_open:
                self.pools_open.add(o.name)
                self.todo.extend((o, f) for f in self.pool.get(o.name, ()))
        return incomplete
