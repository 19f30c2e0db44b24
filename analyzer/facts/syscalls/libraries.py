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
from analyzer.load.elf import ELFFile

DT_INIT, DT_FINI, DT_INIT_ARRAY, DT_FINI_ARRAY, DT_INIT_ARRAYSZ, DT_FINI_ARRAYSZ = 12, 13, 25, 26, 27, 28
DT_RELA, DT_RELASZ, DT_JMPREL, DT_PLTRELSZ, DT_REL, DT_RELSZ, DT_PLTREL, DT_PLTGOT = 7, 8, 23, 2, 17, 18, 20, 3
DT_RELR, DT_RELRSZ = 36, 35
MAX_RELOCATIONS = 1 << 22
EM_MIPS = 8
DT_MIPS_LOCAL_GOTNO, DT_MIPS_SYMTABNO, DT_MIPS_GOTSYM = 0x7000000A, 0x70000011, 0x70000013
DLOPEN = ("dlopen", "dlmopen", "__libc_dlopen_mode")
_RIP = re.compile(r"\[rip ([+-]) (0x[0-9a-f]+|\d+)\]")


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
    exports: dict[str, int] = field(default_factory=dict)
    entry_points: set[int] = field(default_factory=set)  # initialisers and finalisers
    names: dict[int, str] = field(default_factory=dict)
    damaged: str = ""  # why the library could not be modelled (a hostile file), or ""


def _word(elf: ELFFile, vaddr: int) -> int | None:
    """The pointer-sized word at `vaddr` in the file (REL relocations keep their addend there)."""
    size = 8 if elf.bits == 64 else 4
    off = elf.vaddr_to_offset(vaddr)
    if off is None or off + size > elf.size:
        return None
    return int.from_bytes(elf.data[off : off + size], "little" if elf.byte_order == "<" else "big")


def _relocations(elf: ELFFile) -> list[tuple[int, int, int, int]]:
    """(r_offset, type, symbol index, addend) of DT_RELA, DT_REL and DT_JMPREL (in the form DT_PLTREL names); a
    REL relocation's addend is the word at its place."""
    dyn = dict(elf.dynamic)
    b64, e = elf.bits == 64, elf.byte_order
    plt_rela = dyn.get(DT_PLTREL, DT_RELA) == DT_RELA
    out = []
    for addr_tag, size_tag, rela in ((DT_RELA, DT_RELASZ, True), (DT_REL, DT_RELSZ, False),
                                     (DT_JMPREL, DT_PLTRELSZ, plt_rela)):  # fmt: skip
        addr, size = dyn.get(addr_tag), dyn.get(size_tag)
        off = elf.vaddr_to_offset(addr) if addr and size else None
        if off is None or size is None or off + size > elf.size:
            continue
        fmt = e + ("QQq" if rela else "QQ") if b64 else e + ("IIi" if rela else "II")
        ent = struct.calcsize(fmt)
        mips64 = b64 and elf.e_machine == EM_MIPS
        for row in struct.iter_unpack(fmt, elf.data[off : off + min(size // ent, MAX_RELOCATIONS) * ent]):
            r_offset, info = row[0], row[1]
            if mips64:  # r_sym (a word), r_ssym, r_type3, r_type2, r_type (bytes), in the file's order
                raw = info.to_bytes(8, "little" if e == "<" else "big")
                sym, rtype = int.from_bytes(raw[:4], "little" if e == "<" else "big"), raw[7]
            else:
                rtype, sym = (info & 0xFFFFFFFF, info >> 32) if b64 else (info & 0xFF, info >> 8)
            addend = row[2] if rela else (_word(elf, r_offset) or 0)
            out.append((r_offset, rtype, sym, addend))
    return out


def _relr_values(elf: ELFFile) -> list[tuple[int, int]]:
    """The addresses stored at the places DT_RELR relocates (packed relative relocations keep the addend in
    place): function tables of a library linked with -z pack-relative-relocs."""
    dyn = dict(elf.dynamic)
    w = 8 if elf.bits == 64 else 4
    addr, size = dyn.get(DT_RELR), dyn.get(DT_RELRSZ)
    off = elf.vaddr_to_offset(addr) if addr and size else None
    if off is None or size is None or off + size > elf.size:
        return []
    places: list[int] = []
    where = 0
    bits = 8 * w - 1
    fmt = elf.byte_order + ("Q" if w == 8 else "I")
    for (entry,) in struct.iter_unpack(fmt, elf.data[off : off + min(size // w, MAX_RELOCATIONS) * w]):
        if entry & 1 == 0:
            places.append(entry)
            where = entry + w
        else:
            places.extend(where + w * i for i in range(bits) if entry >> (i + 1) & 1)
            where += bits * w
    return [(p, v) for p in places if (v := _word(elf, p)) is not None]


def _init_functions(elf: ELFFile) -> set[int]:
    dyn = dict(elf.dynamic)
    w = 8 if elf.bits == 64 else 4
    out = {v for t, v in ((DT_INIT, dyn.get(DT_INIT)), (DT_FINI, dyn.get(DT_FINI))) if v}
    for arr, size in ((DT_INIT_ARRAY, DT_INIT_ARRAYSZ), (DT_FINI_ARRAY, DT_FINI_ARRAYSZ)):
        addr, n = dyn.get(arr), dyn.get(size)
        if not addr or not n:
            continue
        values = (_word(elf, addr + w * i) for i in range(min(n // w, MAX_RELOCATIONS)))
        out |= {v for v in values if v is not None and v not in (0, (1 << 8 * w) - 1)}
    return out


Event = tuple[int, str, int | None, int | None, bool]  # (address, kind, direct target, referenced address, taken)


@dataclass
class _Ctx:
    """What an event stream needs besides the instructions: the library's code, the registers known at a
    function's entry (POWER's TOC pointer; the i386 PLT's GOT pointer) and the instruction set (ARM/Thumb)."""

    code: Code
    regs: dict[str, int]
    thumb: bool = False


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
    pointers: list[tuple[int, int]] = []  # (place, address stored there)
    absolute, got, jump_slot, relative, irelative = spec.reloc
    resolvers = {s.st_value & thumb_bit for s in dynsyms if s.type == 10 and s.st_shndx}
    for r_offset, rtype, sym, addend in _relocations(elf):
        if rtype in (got, jump_slot, absolute) and sym in by_index and by_index[sym].name:
            s = by_index[sym]
            if rtype != absolute or addend == 0:
                slots[r_offset] = s.name
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
    ctx = _Ctx(code, _entry_registers(elf, abi))
    plt: dict[int, str | int] = {}
    events: list[Event] = []
    outside: set[int] = set()  # where named functions jump to outside themselves (shared error paths, .cold)
    for fn in code.functions:
        if time.monotonic() > deadline:
            break
        r = code.region_of(fn.start)
        if r is None:
            continue
        csa, mode = arch.thumb_cs if fn.thumb and arch.thumb_cs else arch.cs
        md = engine._cs(csa, mode, False)
        skip = engine._skip(arch, fn.thumb) if spec.resume else 0
        blob = code.read(fn.start, fn.end - fn.start)
        decoded = list(_lite(md, blob, fn.start, skip) if skip else md.disasm_lite(blob, fn.start))
        ctx.thumb = fn.thumb
        if r.name == ".MIPS.stubs":  # lazy binding through GOT[0]; calls go through the global GOT entries
            continue
        if r.name.startswith(".plt"):
            if abi == "i386":  # the PLT of a shared library jumps through the GOT pointer its caller set
                ctx.regs = {**ctx.regs, "ebx": dict(elf.dynamic).get(DT_PLTGOT, 0)}
            _plt_entries(spec.events(decoded, ctx), slots, plt, abi)
            ctx.regs = _entry_registers(elf, abi)
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
    _edges(m, events, order, owner, obj, code, plt, slots, thumb_bit)
    for resolver in resolvers:  # an IFUNC resolver returns one of the implementations whose address it takes
        if (o := owner(resolver)) is not None:
            m.callees.setdefault(o, set()).update(t for a in m.code_taken.get(o, ()) if (t := owner(a)) is not None)
    if abi.startswith("mips") and "$gp" not in ctx.regs:  # several GOTs: a call through one may be to any name
        names = {n for n in slots.values() if isinstance(n, str)}
        for caller in m.indirect:
            m.imports.setdefault(caller, set()).update(names)
    code.split(starts)  # the sites' functions as the call graph knows them (a syscall helper is a wrapper)
    result = engine.analyze(arch, code, False, deadline)
    for site in result.sites:
        f = owner(site.address)
        if f is None:
            continue
        for n in site.numbers:
            m.calls.setdefault(f, set()).add(("x32" if abi == "x86_64" and n & 0x40000000 else site.abi, n))
        if site.how == "unresolved" or (not site.complete and site.how != "wrapper"):
            m.unresolved.add(f)
    for s in dynsyms:
        if s.st_shndx and s.type in (2, 10) and s.binding != 0:
            m.exports.setdefault(s.name, s.st_value & thumb_bit)
    m.entry_points = {o for a in _init_functions(elf) if (o := owner(a & thumb_bit)) is not None}
    return m


def _lite(md: Any, data: bytes, start: int, skip: int) -> Iterator[tuple[int, int, str, str]]:
    """capstone's (address, size, mnemonic, operands); with `skip`, decoding goes on past undecodable units
    (data in code, instructions capstone 5 does not know) as objdump does."""
    pos = 0
    while pos < len(data):
        last = pos
        for d in md.disasm_lite(data[pos:], start + pos):
            yield d
            last = d[0] - start + d[1]
        if not skip or last >= len(data):
            return
        pos = last + skip


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
    for i in range(2, min(local, MAX_RELOCATIONS)):  # 0: the lazy resolver, 1: the module pointer
        v = _word(elf, base + i * w)
        if v:
            pointers.append((base + i * w, v))
    if gotsym is None or symtabno is None:
        return
    for i in range(min(max(symtabno - gotsym, 0), MAX_RELOCATIONS)):
        sym = by_index.get(gotsym + i)
        if sym is not None and sym.name:
            slots[base + (local + i) * w] = sym.name


def _edges(m: Model, events: list[Event], order: list[int], owner: Any, obj: Any, code: Code,
           plt: dict[int, str | int], slots: dict[int, str | int], thumb_bit: int) -> None:  # fmt: skip
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
            else:
                m.indirect.add(f)
        if isinstance(through, str):
            m.imports.setdefault(f, set()).add(through)
        elif through is not None and (t := owner(through)) is not None:
            m.callees.setdefault(f, set()).add(t)  # an IRELATIVE slot: its resolver, and so what it returns


# the last instruction of a function that does not go on into the next one: returns, jumps, traps, and calls
# at the very end (to a function that does not return: abort, __stack_chk_fail, __libc_fatal)
ENDING = ("end", "jump", "ijump", "call", "icall")
_PAD = ("nop", "int3", "data16")


def _x86_events(decoded: list[tuple[int, int, str, str]], ctx: _Ctx) -> Iterator[Event]:
    """x86-64: direct and indirect calls and jumps, returns and traps, `[rip + X]` reads and `lea` takes; a run
    of other instructions is one "run" event (its first address, and its last as the target)."""
    run: int | None = None
    last = 0
    for a, size, mn, ops in decoded:
        c = mn[0]
        rip = "rip" in ops
        pad = c in "nid" and mn.startswith(_PAD)
        branch = c in "cjbn" and not pad and mn.startswith(_X86_BRANCH)
        if not (rip or pad or branch or (c in "rbhu" and mn.startswith(_X86_END))):
            if run is None:  # an instruction that goes on to the next
                run = a
            last = a
            continue
        if run is not None:
            yield run, "run", last, None, False
            run = None
        ref = _rip_target(a, size, ops) if rip else None
        if pad:
            yield a, "pad", None, None, False
        elif branch:
            direct = int(ops, 16) if ops.startswith("0x") else None
            call = "call" in mn
            jump = "jmp" in mn
            if direct is not None:
                yield a, "call" if call else "jump" if jump else "cond", direct, None, False
            elif call:
                yield a, "icall", None, ref, False
            elif jump and "ptr [" in ops:
                yield a, "ijump", None, ref, False  # a tail call through memory (`jmp reg` is a jump table)
            else:
                yield a, "jump", None, None, False
        elif mn.startswith(_X86_END):
            yield a, "end", None, None, False
        else:
            yield a, "other", None, ref, mn == "lea"
    if run is not None:
        yield run, "run", last, None, False


_X86_BRANCH = ("call", "j", "bnd j", "notrack j")
_X86_END = ("ret", "bnd ret", "hlt", "ud2")


_I386_MEM = re.compile(r"(?<!s:)\[(e[a-z]{2})(?: ([+-]) (0x[0-9a-f]+|\d+))?\]")
_I386_REGS = frozenset(("eax", "ebx", "ecx", "edx", "esi", "edi", "ebp"))
_I386_IMPLICIT = {"mul": ("eax", "edx"), "div": ("eax", "edx"), "idiv": ("eax", "edx"), "cdq": ("edx",),
                  "cpuid": ("eax", "ebx", "ecx", "edx"), "rdtsc": ("eax", "edx")}  # fmt: skip


def _i386_events(decoded: list[tuple[int, int, str, str]], ctx: _Ctx) -> Iterator[Event]:
    """i386 position-independent code: a PIC thunk call (`call __x86.get_pc_thunk.bx`) and `add ebx, imm` put
    the GOT's address in a register; `[reg + disp]` off it reads a GOT slot or data, `lea` takes an address;
    `call`/`jmp dword ptr [reg + disp]` go through a slot (the PLT jumps through the caller's ebx)."""
    regs = dict(ctx.regs)  # register -> the address it holds
    loaded: dict[str, int] = {}  # register -> the address it was loaded from
    for a, size, mn, ops in decoded:
        c = mn[0]
        parts = ops.split(", ")
        dst = parts[0]
        ref = None
        if "[" in ops and (mm := _I386_MEM.search(ops)) and mm[1] in regs:
            disp = int(mm[3], 0) if mm[3] else 0
            ref = (regs[mm[1]] + (-disp if mm[2] == "-" else disp)) & 0xFFFFFFFF
        if c in "nid" and mn.startswith(_PAD):
            yield a, "pad", None, None, False
        elif c in "cjbn" and mn.startswith(("call", "j", "bnd j", "notrack j")):
            direct = int(ops, 16) if ops.startswith("0x") else None
            call, jump = "call" in mn, "jmp" in mn
            thunk = engine._pc_thunk(ctx.code, direct) if call and direct is not None else None
            if thunk:
                regs[thunk] = a + size
                loaded.pop(thunk, None)
                yield a, "other", None, None, False
                continue
            if direct is not None:
                yield a, "call" if call else "jump" if jump else "cond", direct, None, False
            elif call:
                yield a, "icall", None, ref if "[" in ops else loaded.get(dst), False
            elif jump and "ptr [" in ops:
                yield a, "ijump", None, ref, False
            else:
                yield a, "jump", None, None, False
            if call:
                for r in ("eax", "ecx", "edx"):  # the callee may change them
                    regs.pop(r, None)
                    loaded.pop(r, None)
        elif mn.startswith(("ret", "bnd ret", "hlt", "ud2")):
            yield a, "end", None, None, False
        else:
            value = I.num(parts[1]) if len(parts) == 2 else None
            if mn in ("add", "sub") and dst in regs and value is not None:
                regs[dst] = (regs[dst] + (value if mn == "add" else -value)) & 0xFFFFFFFF
            elif dst in _I386_REGS and mn not in ("cmp", "test", "push"):
                regs.pop(dst, None)
                loaded.pop(dst, None)
                if mn == "lea" and ref is not None:
                    regs[dst] = ref
                elif mn == "mov" and ref is not None:
                    loaded[dst] = ref
                elif mn == "mov" and len(parts) == 2 and parts[1] in regs:
                    regs[dst] = regs[parts[1]]
            for r in _I386_IMPLICIT.get(mn, ("esi", "edi", "ecx") if mn.startswith(("rep", "movs", "stos")) else ()):
                regs.pop(r, None)
                loaded.pop(r, None)
            yield a, "other", None, ref, mn == "lea"


_A64_COND = ("b.", "cbz", "cbnz", "tbz", "tbnz")


def _a64_events(decoded: list[tuple[int, int, str, str]], ctx: _Ctx) -> Iterator[Event]:
    """AArch64: direct branches, `blr`/`br`, and the addresses `adrp` + `add`/`ldr` form (the register's page
    is followed from the adrp to the instruction that uses it)."""
    pages: dict[str, int] = {}
    for a, _, mn, ops in decoded:
        parts = [p.strip() for p in ops.split(",")]
        dst = parts[0] if parts else ""
        reg = "x" + dst[1:] if dst[:1] in ("x", "w") else dst
        ref, taken = None, False
        if mn == "adrp" and len(parts) == 2:
            page = I.num(parts[1])
            if page is not None:
                pages[reg] = page
            yield a, "other", None, None, False
            continue
        if mn in ("add", "ldr", "ldrsw") and len(parts) >= 2:
            base = parts[1].lstrip("[").rstrip("]")
            base = "x" + base[1:] if base[:1] == "w" else base
            off = I.num(parts[2].rstrip("]!")) if len(parts) > 2 else 0
            if base in pages and off is not None:
                ref, taken = pages[base] + off, mn == "add"
        if mn in ("bl", "b") or mn.startswith(_A64_COND):
            target = I.num(parts[-1]) if parts else None
            kind = "call" if mn == "bl" else "jump" if mn == "b" else "cond"
            yield a, kind, target, None, False
        elif mn == "blr":
            yield a, "icall", None, None, False
        elif mn == "br":
            yield a, "ijump", None, None, False
        elif mn in ("ret", "brk", "udf", "hlt"):
            yield a, "end", None, None, False
        elif mn == "nop":
            yield a, "pad", None, None, False
        else:
            yield a, "other", None, ref, taken
        if reg in pages and mn not in ("str", "stp", "stur", "cmp", "tst", "cbz", "cbnz") and not mn.startswith("b"):
            if not (mn == "add" and ref is not None and reg == base):
                pages.pop(reg, None)  # the register holds something else now


def _copied(dst: str, src: str, regs: dict[str, int], loaded: dict[str, int]
            ) -> tuple[tuple[str, int] | None, tuple[str, int] | None]:  # fmt: skip
    """A register move: what `dst` now holds, as an address and as the slot it was loaded from."""
    return ((dst, regs[src]) if src in regs else None), ((dst, loaded[src]) if src in loaded else None)


_RV_STORES = frozenset(("sd", "sw", "sh", "sb", "sdsp", "swsp", "fsd", "fsw", "fsdsp", "fswsp"))
_RV_MEM = re.compile(r"^(-?(?:0x[0-9a-f]+|\d+))?\((\w+)\)$")


def _rv_events(decoded: list[tuple[int, int, str, str]], ctx: _Ctx) -> Iterator[Event]:
    """RISC-V: `jal`/`j`/branches (targets relative to the instruction), `auipc` + `addi` (an address taken),
    `auipc` + `ld` (a GOT slot or data read), `auipc` + `jalr` (a far call), `jalr`/`jr` through a register
    loaded from a slot (the PLT, -fno-plt)."""
    regs: dict[str, int] = {}
    loaded: dict[str, int] = {}
    for a, _, mnemonic, ops in decoded:
        mn = mnemonic[2:] if mnemonic.startswith("c.") else mnemonic
        parts = ops.split(", ") if ops else []
        dst = parts[0] if parts else ""
        ref, taken, kind, target = None, False, "other", None
        new: tuple[str, int] | None = None  # (register, address) the instruction leaves in `regs`
        new_loaded: tuple[str, int] | None = None
        if mn == "auipc" and len(parts) == 2 and (hi := I.num(parts[1])) is not None:
            v = (hi << 12) & 0xFFFFFFFF
            new = (dst, a + (v - (1 << 32) if v & 0x80000000 else v))
        elif mn == "addi" and len(parts) == 3 and parts[1] in regs and (lo := I.num(parts[2])) is not None:
            ref, taken = regs[parts[1]] + lo, True
            new = (dst, ref)
        elif mn == "mv" and len(parts) == 2:
            new, new_loaded = _copied(dst, parts[1], regs, loaded)
        elif mn in ("jal", "j"):
            target = a + (I.num(parts[-1]) or 0)
            kind = "jump" if mn == "j" or (len(parts) == 2 and parts[0] == "zero") else "call"
        elif mn in ("jalr", "jr", "ret"):
            if mn == "ret" or (mn == "jr" and parts == ["ra"]):
                kind = "end"
            else:
                link = mn == "jalr" and (len(parts) == 1 or parts[0] != "zero")
                rs, off = (parts[1], I.num(parts[2]) or 0) if len(parts) == 3 else (parts[-1], 0)
                if rs in regs and rs not in loaded:  # auipc + jalr: a direct call or tail call
                    kind, target = ("call" if link else "jump"), regs[rs] + off
                else:
                    kind, ref = ("icall" if link else "ijump"), loaded.get(rs)
        elif mn.startswith("b") and parts and (rel := I.num(parts[-1])) is not None:
            kind, target = "cond", a + rel
        elif mn in ("ebreak", "unimp"):
            kind = "end"
        elif mn == "nop":
            kind = "pad"
        elif len(parts) == 2 and (mm := _RV_MEM.match(parts[1])) and mm[2] in regs:
            ref = regs[mm[2]] + (int(mm[1], 0) if mm[1] else 0)
            if mn not in _RV_STORES:
                new_loaded = (dst, ref)
        if kind in ("other", "pad") and dst and mn not in _RV_STORES:
            regs.pop(dst, None)
            loaded.pop(dst, None)
        if kind in ("call", "icall"):
            regs.pop("ra", None)
            loaded.pop("ra", None)
        if new is not None:
            regs[new[0]] = new[1]
        if new_loaded is not None:
            loaded[new_loaded[0]] = new_loaded[1]
        yield a, kind, target, ref, taken


_PPC_KEEP = ("st", "cmp", "b", "mt", "dcb", "icb", "sync", "isync", "tw", "td", "trap", "lwsync", "hwsync")
_PPC_MEM = re.compile(r"^(-?(?:0x[0-9a-f]+|\d+))\((r\d+)\)$")


def _ppc_events(decoded: list[tuple[int, int, str, str]], ctx: _Ctx) -> Iterator[Event]:
    """POWER (ELFv2): TOC-relative addresses (`addis rX, r2, hi` + `addi`/`ld`, `ld rX, off(r2)`), `bl`/`b` and
    conditional branches, `mtctr` + `bctr`/`bctrl` through a register loaded from a slot (the linker's call
    stubs load the PLT slot off r2); the zero word that starts a traceback table after a function ends its
    code ("data")."""
    regs = dict(ctx.regs)
    loaded: dict[str, int] = {}
    after = decoded[0][0] if decoded else 0
    for a, _, mnemonic, ops in decoded:
        if a > after and ctx.code.word(after, 4) == 0:
            yield after, "data", None, None, False  # a traceback table follows the function
        after = a + 4
        mn = mnemonic.rstrip("+-")
        parts = ops.split(", ") if ops else []
        dst = parts[0] if parts else ""
        ref, taken, kind, target = None, False, "other", None
        new: tuple[str, int] | None = None
        new_loaded: tuple[str, int] | None = None
        if mn in ("addis", "addi") and len(parts) == 3 and parts[1] in regs and (v := I.num(parts[2])) is not None:
            value = regs[parts[1]] + (v << 16 if mn == "addis" else v)
            new = (dst, value)
            if mn == "addi":
                ref, taken = value, True
        elif mn == "mr" and len(parts) == 2:
            new, new_loaded = _copied(dst, parts[1], regs, loaded)
        elif mn == "mtctr" and len(parts) == 1:
            loaded.pop("ctr", None)
            if parts[0] in loaded:
                loaded["ctr"] = loaded[parts[0]]
        elif mn in ("bl", "b") and parts and (t := I.num(parts[-1])) is not None:
            kind, target = ("call" if mn == "bl" else "jump"), t
        elif mn == "blr":
            kind = "end"
        elif mn in ("bctr", "bctrl"):
            kind, ref = ("icall" if mn == "bctrl" else "ijump"), loaded.get("ctr")
        elif mn.startswith("b") and not mn.endswith(("lr", "lrl", "ctr", "ctrl")) and parts and (
                t := I.num(parts[-1])) is not None:  # fmt: skip
            kind, target = "cond", t
        elif mn == "trap":
            kind = "end"
        elif mn == "nop":
            kind = "pad"
        elif len(parts) == 2 and (mm := _PPC_MEM.match(parts[1])) and mm[2] in regs:
            ref = regs[mm[2]] + int(mm[1], 0)
            if not mn.startswith("st"):
                new_loaded = (dst, ref)
        if kind in ("other", "pad") and dst and dst != "r2" and not mn.startswith(_PPC_KEEP):
            regs.pop(dst, None)
            loaded.pop(dst, None)
        if new is not None and new[0] != "r2":
            regs[new[0]] = new[1]
        if new_loaded is not None:
            loaded[new_loaded[0]] = new_loaded[1]
        yield a, kind, target, ref, taken


_S390_KEEP = ("st", "mv", "c", "tm", "b", "j", "ex", "lpsw", "svc", "nop")
_S390_MEM = re.compile(r"^(-?(?:0x[0-9a-f]+|\d+))?\((%r\d+)\)$")


def _s390_events(decoded: list[tuple[int, int, str, str]], ctx: _Ctx) -> Iterator[Event]:
    """s390x: `larl` (an address taken), `lgrl` and `lg` off a larl'd register (a GOT slot or data read),
    `brasl`/`jg`/`j` and the conditional jumps, `basr %r14, %rX` and `br %rX` through a register loaded from
    a slot (the PLT)."""
    regs: dict[str, int] = {}
    loaded: dict[str, int] = {}
    for a, _, mn, ops in decoded:
        parts = ops.split(", ") if ops else []
        dst = parts[0] if parts else ""
        ref, taken, kind, target = None, False, "other", None
        new: tuple[str, int] | None = None
        new_loaded: tuple[str, int] | None = None
        last = I.num(parts[-1]) if parts else None
        if mn == "larl" and last is not None:
            ref, taken, new = last, True, (dst, last)
        elif mn in ("lgrl", "lrl", "llgfrl", "lgfrl") and last is not None:
            ref, new_loaded = last, (dst, last)
        elif mn in ("brasl", "bras") and last is not None:
            kind, target = "call", last
        elif mn in ("jg", "j") and last is not None:
            kind, target = "jump", last
        elif mn[:1] == "j" or mn.startswith(("brc", "brct", "brxh", "brxl", "cij", "cgij", "crj", "cgrj", "clij",
                                             "clgij", "clrj", "clgrj")):  # fmt: skip
            kind, target = ("cond", last) if last is not None else ("other", None)
        elif mn == "br" and parts:
            kind, ref = ("end", None) if dst == "%r14" else ("ijump", loaded.get(dst))
        elif mn == "basr" and len(parts) == 2 and parts[1] != "%r0":
            kind, ref = "icall", loaded.get(parts[1])
        elif mn == "bcr" and parts == ["15", "%r14"]:
            kind = "end"
        elif mn == "bcr" and parts[:1] == ["0"] or mn == "nopr":
            kind = "pad"
        elif mn in ("lgr", "lr") and len(parts) == 2:
            new, new_loaded = _copied(dst, parts[1], regs, loaded)
        elif len(parts) == 2 and (mm := _S390_MEM.match(parts[1])) and mm[2] in regs:
            ref = regs[mm[2]] + (int(mm[1], 0) if mm[1] else 0)
            taken = mn in ("la", "lay")
            if taken:
                new = (dst, ref)
            elif mn.startswith("l"):
                new_loaded = (dst, ref)
        if kind in ("other", "pad") and dst.startswith("%r") and not mn.startswith(_S390_KEEP):
            regs.pop(dst, None)
            loaded.pop(dst, None)
        if kind in ("call", "icall"):
            for r in ("%r0", "%r1", "%r2", "%r3", "%r4", "%r5", "%r14"):
                regs.pop(r, None)
                loaded.pop(r, None)
        if new is not None:
            regs[new[0]] = new[1]
        if new_loaded is not None:
            loaded[new_loaded[0]] = new_loaded[1]
        yield a, kind, target, ref, taken


_ARM_KEEP = ("str", "stm", "push", "cmp", "cmn", "tst", "teq", "b", "vst", "it", "pld", "dmb", "dsb", "isb")
_ARM_MEM = re.compile(r"^\[(\w+)(?:, (#-?(?:0x[0-9a-f]+|\d+)|\w+))?\]!?$")


def _arm_events(decoded: list[tuple[int, int, str, str]], ctx: _Ctx) -> Iterator[Event]:
    """ARM and Thumb: literal-pool loads (`ldr rX, [pc, #off]`) and movw/movt constants added to the PC (`add
    rX, pc`: an address), `adr`, loads off such a register (a GOT slot or data read), `bl`/`blx`/`b` and the
    conditional branches, `blx rX`/`bx rX`/`ldr pc, [...]` through a slot (the PLT: `add ip, pc, #..; add ip,
    ip, #..; ldr pc, [ip, #..]!`)."""
    consts: dict[str, int] = {}  # register -> a constant (not yet an address)
    regs: dict[str, int] = {}
    loaded: dict[str, int] = {}
    pc_ahead = 4 if ctx.thumb else 8
    for a, _, mnemonic, ops in decoded:
        mn = mnemonic.split(".")[0]
        parts = engine._split_ops(ops) if "[" in ops or "{" in ops else ops.split(", ") if ops else []
        dst = parts[0] if parts else ""
        ref, taken, kind, target = None, False, "other", None
        new: tuple[str, int] | None = None
        new_const: tuple[str, int] | None = None
        new_loaded: tuple[str, int] | None = None
        pc = a + pc_ahead
        cond = mn[-2:] in _ARM_CONDS and mn[:-2] in ("b", "bl", "blx", "bx")
        base = mn[:-2] if cond else mn
        if base in ("bl", "blx") and len(parts) == 1 and parts[0].startswith("#"):
            kind, target = "call", I.num(parts[0])
        elif base == "b" and len(parts) == 1 and parts[0].startswith("#"):
            kind, target = ("cond" if cond else "jump"), I.num(parts[0])
        elif mn in ("cbz", "cbnz") and parts and parts[-1].startswith("#"):
            kind, target = "cond", I.num(parts[-1])
        elif base == "bx" and parts:
            if dst == "lr":
                kind = "other" if cond else "end"  # a conditional return goes on
            else:
                kind, ref = ("icall" if cond else "ijump"), loaded.get(dst)
        elif base == "blx" and parts:
            kind, ref = "icall", loaded.get(dst)
        elif mn in ("pop", "ldm") and "pc" in ops:
            kind = "end"
        elif mn in ("tbb", "tbh"):
            kind = "jump"  # a jump table inside the function
        elif mn in ("udf", "bkpt"):
            kind = "end"
        elif mn == "nop" or (mn, ops) in _ARM_ZEROS:
            kind = "pad"
        elif mn == "ldr" and len(parts) == 2 and parts[1].startswith("[pc"):
            off = I.num(parts[1][4:].rstrip("]")) if parts[1] != "[pc]" else 0
            if off is not None:
                place = (pc & ~3) + off
                ref = place
                value = ctx.code.word(place, 4)
                if value is not None and dst != "pc":
                    new_const = (dst, value)
        elif mn == "adr" and len(parts) == 2 and (off := I.num(parts[1])) is not None:
            ref, taken = (pc & ~3) + off, True
            new = (dst, ref)
        elif mn in ("movw", "mov") and len(parts) == 2 and (v := I.num(parts[1])) is not None:
            new_const = (dst, v)  # `mov rX, #imm` (I.num refuses a register)
        elif mn == "movt" and len(parts) == 2 and dst in consts and (v := I.num(parts[1])) is not None:
            new_const = (dst, (consts[dst] & 0xFFFF) | (v << 16))
        elif mn == "add" and "pc" in parts[1:]:
            other = [p for p in (parts[1:] if len(parts) == 3 else parts) if p != "pc"]
            if len(parts) == 2:
                other = [dst]
            if len(other) == 1 and other[0] in consts:
                ref, taken = (consts[other[0]] + pc) & 0xFFFFFFFF, True
                new = (dst, ref)
            elif len(parts) >= 3 and parts[1] == "pc" and (v := _arm_imm(parts[2:])) is not None:
                ref, taken = (pc + v) & 0xFFFFFFFF, True
                new = (dst, ref)
        elif mn == "add" and len(parts) >= 3 and parts[1] in regs and parts[2].startswith("#"):
            v = _arm_imm(parts[2:])
            if v is not None:
                ref, taken = (regs[parts[1]] + v) & 0xFFFFFFFF, True
                new = (dst, ref)
        elif mn.startswith("ldr") and len(parts) == 2 and (mm := _ARM_MEM.match(parts[1])):
            base, index = mm[1], mm[2]
            if base in regs:
                if index is None or index.startswith("#"):
                    ref = regs[base] + (I.num(index) or 0 if index else 0)
                elif index in consts:
                    ref = regs[base] + consts[index]
            elif base in consts and index in regs:
                ref = regs[index] + consts[base]
            if ref is not None:
                ref &= 0xFFFFFFFF
                if dst == "pc":
                    kind = "ijump"
                else:
                    new_loaded = (dst, ref)
        elif mn == "mov" and len(parts) == 2:
            if dst == "pc":
                kind, ref = "ijump", loaded.get(parts[1])
            else:
                for table, item in ((regs, "new"), (loaded, "loaded"), (consts, "const")):
                    if parts[1] in table:
                        if item == "new":
                            new = (dst, table[parts[1]])
                        elif item == "loaded":
                            new_loaded = (dst, table[parts[1]])
                        else:
                            new_const = (dst, table[parts[1]])
        if kind in ("other", "pad") and dst and not mn.startswith(_ARM_KEEP):
            for table in (regs, loaded, consts):
                table.pop(dst, None)
        if mn in ("pop", "ldm"):
            for table in (regs, loaded, consts):
                for r in list(table):
                    if r in ops:
                        table.pop(r, None)
        if kind in ("call", "icall"):
            for table in (regs, loaded, consts):
                for r in ("r0", "r1", "r2", "r3", "ip", "lr"):
                    table.pop(r, None)
        if taken and ref is not None and not ref & 1 and (fn := ctx.code.function_of(ref)) is not None and fn.thumb:
            taken = False  # an even address in Thumb code is data there (a Thumb function's address is odd)
        if new is not None:
            regs[new[0]] = new[1]
        if new_const is not None:
            consts[new_const[0]] = new_const[1]
        if new_loaded is not None:
            loaded[new_loaded[0]] = new_loaded[1]
        yield a, kind, target, ref, taken


_ARM_ZEROS = (("movs", "r0, r0"), ("andeq", "r0, r0, r0"))  # zero bytes: padding between functions
_ARM_CONDS = frozenset(("eq", "ne", "cs", "hs", "cc", "lo", "mi", "pl", "vs", "vc", "hi", "ls", "ge", "lt", "gt",
                        "le"))  # fmt: skip


def _arm_imm(parts: list[str]) -> int | None:
    """An ARM modified immediate as capstone prints it: `#imm` or `#imm8, #rotation`."""
    v = I.num(parts[0])
    if v is None:
        return None
    if len(parts) == 2 and (rot := I.num(parts[1])) is not None:
        rot %= 32
        v = ((v >> rot) | (v << (32 - rot))) & 0xFFFFFFFF
    return v


_MIPS_MEM = re.compile(r"^(-?(?:0x[0-9a-f]+|\d+))?\((\$\w+)\)$")
_MIPS_LOADS = frozenset(("lw", "ld", "lwu"))
_MIPS_KEEP = ("s", "b", "j", "t", "cache", "pref", "sync", "nop", "mt", "ctc", "break", "syscall")
_MIPS_CALLER_SAVED = ("$at", "$v0", "$v1", *(f"$a{n}" for n in range(8)), *(f"$t{n}" for n in range(10)), "$ra")


def _mips_events(decoded: list[tuple[int, int, str, str]], ctx: _Ctx) -> Iterator[Event]:
    """MIPS (o32, n32, n64), position-independent: `lw`/`ld` off $gp read a GOT entry (a local one holds an
    address of this library, kept as the register's value; a global one is bound by name), `addiu`/`daddiu`
    on a known value forms an address; `jalr`/`jr` through $t9 is a direct call when $t9 holds a known
    address, a call by name through a global entry, or an indirect call; `bal`/`b`/conditional branches.
    The instruction after a branch (its delay slot) runs before the branch lands: it is yielded as padding, so
    a function ending in `jr $ra; nop` does not fall through into the next one."""
    gp, local_end = ctx.regs.get("$gp"), ctx.regs.get("$local_got_end", 0)
    vals: dict[str, int] = {}  # register -> a known address
    loaded: dict[str, int] = {}  # register -> the GOT entry it was loaded from
    delay, kill_after = False, False
    for a, _, mn, ops in decoded:
        parts = ops.split(", ") if ops else []
        dst = parts[0] if parts else ""
        kind, target, ref, taken = "other", None, None, False
        new_val: tuple[str, int] | None = None
        new_loaded: tuple[str, int] | None = None
        base = mn.split(".")[0]
        if base in _MIPS_LOADS and len(parts) == 2 and (mm := _MIPS_MEM.match(parts[1])):
            at = gp if mm[2] == "$gp" else vals.get(mm[2])
            if at is not None:
                ref = at + (int(mm[1], 0) if mm[1] else 0)
                new_loaded = (dst, ref)
                if mm[2] == "$gp" and ref < local_end and (v := ctx.code.word(ref, 8 if base == "ld" else 4)):
                    new_val = (dst, v)
        elif base in ("addiu", "daddiu") and len(parts) == 3 and parts[1] in vals and (
                v := I.num(parts[2])) is not None:  # fmt: skip
            ref, taken = vals[parts[1]] + v, True
            new_val = (dst, ref)
        elif base == "move" and len(parts) == 2:
            new_val, new_loaded = _copied(dst, parts[1], vals, loaded)
        elif base in ("jalr", "jr") and parts:
            rs = parts[-1]
            link = base == "jalr"
            if not link and rs == "$ra":
                kind = "end"
            elif rs in vals:
                kind, target = ("call" if link else "jump"), vals[rs]
            else:
                kind, ref = ("icall" if link else "ijump"), loaded.get(rs)
        elif base in ("bal", "jal") and parts:
            kind, target = "call", I.num(parts[-1])
        elif base in ("b", "j") and len(parts) == 1:
            kind, target = "jump", I.num(parts[0])
        elif base[:1] == "b" and base != "break" and parts and (t := I.num(parts[-1])) is not None:
            kind, target = "cond", t
        elif base == "break":
            kind = "end"
        elif base == "nop":
            kind = "pad"
        if delay:  # the delay slot of the branch before: runs before it lands
            kind = "pad" if kind == "other" else kind
        if kind in ("other", "pad") and dst.startswith("$") and dst != "$gp" and not base.startswith(_MIPS_KEEP):
            vals.pop(dst, None)
            loaded.pop(dst, None)
        if new_val is not None:
            vals[new_val[0]] = new_val[1]
        if new_loaded is not None:
            loaded[new_loaded[0]] = new_loaded[1]
        if delay and kill_after:
            for r in _MIPS_CALLER_SAVED:  # the callee may change them
                vals.pop(r, None)
                loaded.pop(r, None)
        was_branch = kind in ("call", "icall", "jump", "ijump", "cond", "end") and base != "break"
        delay, kill_after = was_branch and not delay, kind in ("call", "icall")
        yield a, kind, target, ref, taken



@dataclass(frozen=True)
class _Spec:
    reloc: tuple[int, int, int, int, int]  # relocation types: absolute word, GOT entry, PLT slot, relative, IFUNC
    events: Any  # the event stream of a function's instructions
    plt_back: int  # how far a PLT entry starts before the instruction that holds its slot
    resume: bool  # decode on past undecodable units (fixed-width and halfword encodings)


ABIS = {
    "x86_64": _Spec((1, 6, 7, 8, 37), _x86_events, 0, False),
    "i386": _Spec((1, 6, 7, 8, 42), _i386_events, 0, False),
    "aarch64": _Spec((257, 1025, 1026, 1027, 1032), _a64_events, 4, True),
    "arm": _Spec((2, 21, 22, 23, 160), _arm_events, 8, True),
    "riscv64": _Spec((2, 2, 5, 3, 58), _rv_events, 8, True),
    "ppc64": _Spec((38, 20, 21, 22, 248), _ppc_events, 0, True),
    "s390x": _Spec((22, 10, 11, 12, 61), _s390_events, 12, True),
    # MIPS: R_MIPS_REL32 is relative without a symbol and absolute with one; the GOT (_mips_got) has no relocations
    "mipso32": _Spec((3, -1, 127, 3, 128), _mips_events, 0, True),
    "mipsn32": _Spec((3, -1, 127, 3, 128), _mips_events, 0, True),
    "mipsn64": _Spec((3, -1, 127, 3, 128), _mips_events, 0, True),
}


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


def _floor(ordered: list[int], addr: int) -> int | None:
    """The greatest element of `ordered` at or below `addr` (the function or data object holding it)."""
    i = bisect.bisect_right(ordered, addr) - 1
    return ordered[i] if i >= 0 else None


def _rip_target(a: int, size: int, ops: str) -> int | None:
    mm = _RIP.search(ops)
    if not mm:
        return None
    return a + size + (int(mm[2], 0) if mm[1] == "+" else -int(mm[2], 0))


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
        key = _memo_key(o.host_path)
        if key not in memo:
            memo[key] = _sound_model(o.elf, abi, deadline)
        models[o.name] = memo[key]
        if models[o.name].damaged:
            damaged.add(f"{o.name}: not modelled ({models[o.name].damaged}): its calls are not followed")
        return models[o.name]

    state = _Reach(models)

    def import_(name: str, requester: Any) -> None:
        # the first definition in the global scope, the requester's own included (libc's malloc@plt binds
        # to libc's malloc unless an object before it defines one)
        target = next((lib for lib, table in scope if any(not hidden for _, hidden in table.get(name, ()))), None)
        if target is None or target is objects[0]:
            return
        mm = model_of(target)
        if name in mm.exports:
            state.todo.append((target, mm.exports[name]))
        elif name in mm.exported_objects:
            state.make_available(target, mm.exported_objects[name])

    state.import_ = import_
    imported = {n for _, n, _ in program.elf.undefined_symbols()}
    for name in imported:
        import_(name, objects[0])
    opened = [f"the program calls {n}: the libraries it opens at run time are not followed"
              for n in sorted(imported & set(DLOPEN))]  # fmt: skip
    for o in objects[1:]:
        state.todo.extend((o, a) for a in model_of(o).entry_points)
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
