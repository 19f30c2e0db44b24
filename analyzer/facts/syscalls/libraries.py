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

Modelled for x86-64 and AArch64 (call graphs from decoded code, the PLT and GOT from the dynamic relocations);
other ABIs say `modelled: false`.
"""

from __future__ import annotations

import bisect
import re
import struct
import time
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from analyzer.facts.syscalls import engine
from analyzer.facts.syscalls.code import Code
from analyzer.load.elf import ELFFile

DT_INIT, DT_FINI, DT_INIT_ARRAY, DT_FINI_ARRAY, DT_INIT_ARRAYSZ, DT_FINI_ARRAYSZ = 12, 13, 25, 26, 27, 28
DT_RELA, DT_RELASZ, DT_JMPREL, DT_PLTRELSZ = 7, 8, 23, 2
DT_RELR, DT_RELRSZ = 36, 35
MAX_RELOCATIONS = 1 << 22
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


def _relocations(elf: ELFFile) -> list[tuple[int, int, int, int]]:
    """(r_offset, type, symbol index, addend) of DT_RELA and DT_JMPREL (x86-64 uses RELA)."""
    dyn = dict(elf.dynamic)
    out = []
    for addr_tag, size_tag in ((DT_RELA, DT_RELASZ), (DT_JMPREL, DT_PLTRELSZ)):
        addr, size = dyn.get(addr_tag), dyn.get(size_tag)
        off = elf.vaddr_to_offset(addr) if addr and size else None
        if off is None or size is None or off + size > elf.size:
            continue
        count = min(size // 24, MAX_RELOCATIONS)
        for r_offset, info, addend in struct.iter_unpack("<QQq", elf.data[off : off + count * 24]):
            out.append((r_offset, info & 0xFFFFFFFF, info >> 32, addend))
    return out


def _relr_values(elf: ELFFile) -> list[tuple[int, int]]:
    """The addresses stored at the places DT_RELR relocates (packed relative relocations keep the addend in
    place): function tables of a library linked with -z pack-relative-relocs."""
    dyn = dict(elf.dynamic)
    addr, size = dyn.get(DT_RELR), dyn.get(DT_RELRSZ)
    off = elf.vaddr_to_offset(addr) if addr and size else None
    if off is None or size is None or off + size > elf.size:
        return []
    places: list[int] = []
    where = 0
    for (entry,) in struct.iter_unpack("<Q", elf.data[off : off + min(size // 8, MAX_RELOCATIONS) * 8]):
        if entry & 1 == 0:
            places.append(entry)
            where = entry + 8
        else:
            places.extend(where + 8 * i for i in range(63) if entry >> (i + 1) & 1)
            where += 63 * 8
    out = []
    for p in places:
        o = elf.vaddr_to_offset(p)
        if o is not None and o + 8 <= elf.size:
            out.append((p, int.from_bytes(elf.data[o : o + 8], "little")))
    return out


def _init_functions(elf: ELFFile) -> set[int]:
    dyn = dict(elf.dynamic)
    out = {v for t, v in ((DT_INIT, dyn.get(DT_INIT)), (DT_FINI, dyn.get(DT_FINI))) if v}
    for arr, size in ((DT_INIT_ARRAY, DT_INIT_ARRAYSZ), (DT_FINI_ARRAY, DT_FINI_ARRAYSZ)):
        addr, n = dyn.get(arr), dyn.get(size)
        off = elf.vaddr_to_offset(addr) if addr and n else None
        if off is None or n is None or off + n > elf.size:
            continue
        out |= {v for (v,) in struct.iter_unpack("<Q", elf.data[off : off + (n // 8) * 8]) if v not in (0, 2**64 - 1)}
    return out


# relocation types per ABI: (absolute 64-bit, GOT entry, PLT slot, relative)
RELOC = {"x86_64": (1, 6, 7, 8), "aarch64": (257, 1025, 1026, 1027)}
Event = tuple[int, str, int | None, int | None, bool]  # (address, kind, direct target, referenced address, taken)


def model(elf: ELFFile, abi: str, deadline: float) -> Model:
    """The library's model (x86-64 and AArch64).

    Functions: stripped libraries name only their exported functions, so every direct call target and every
    code address the library takes starts a function too, and each instruction and site belongs to the
    function holding it. Data: the addresses the code reads or takes (`[rip + X]`, `adrp` + `add`/`ldr`) and
    the addresses the relocations point to split the data into objects; an object holds the pointers
    relocated inside it, to functions (a function table such as stdio's), to other objects, or to imported
    names (GOT slots)."""
    code = Code(elf)
    arch = engine.arch_for(abi, True)
    assert arch is not None and arch.cs is not None
    md = engine._cs(arch.cs[0], arch.cs[1], False)
    m = Model(abi)
    dynsyms = list(elf.dynamic_symbols())
    by_index = {s.index: s for s in dynsyms}
    slots: dict[int, str] = {}  # GOT slot -> the imported name it is bound to
    pointers: list[tuple[int, int]] = []  # (place, address stored there)
    absolute, got, jump_slot, relative = RELOC[abi]
    for r_offset, rtype, sym, addend in _relocations(elf):
        if rtype in (got, jump_slot, absolute) and sym in by_index:
            s = by_index[sym]
            if s.st_shndx == 0:
                slots[r_offset] = s.name
            else:
                pointers.append((r_offset, s.st_value + (addend if rtype == absolute else 0)))
        elif rtype == relative:
            pointers.append((r_offset, addend))
    pointers += _relr_values(elf)
    stream = _x86_events if abi == "x86_64" else _a64_events
    plt: dict[int, str] = {}
    events: list[Event] = []
    for fn in code.functions:
        if time.monotonic() > deadline:
            break
        r = code.region_of(fn.start)
        if r is None:
            continue
        decoded = list(md.disasm_lite(code.read(fn.start, fn.end - fn.start), fn.start))
        if r.name.startswith(".plt"):
            _plt_entries(stream(decoded), slots, plt, abi)
            continue
        # the instruction starts, for the site search (engine._starts) to reuse
        code.insn_starts[fn.start] = array("Q", (d[0] for d in decoded))
        events.extend(stream(decoded))
    starts = {f.start for f in code.functions if not f.name.startswith(".")}
    for _, kind, target, ref, taken in events:
        if kind == "call" and target is not None:
            starts.add(target)
        elif ref is not None and taken and code.region_of(ref) is not None:
            starts.add(ref)
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
        if (o := obj(place)) is not None:
            m.object_imports.setdefault(o, set()).add(name)
    m.exported_objects = {n: o for n, v in data_syms.items() if (o := obj(v)) is not None}
    _edges(m, events, order, owner, obj, code, plt, slots)
    result = engine.analyze(arch, code, False, deadline)
    for site in result.sites:
        f = owner(site.address)
        if f is None:
            continue
        for n in site.numbers:
            m.calls.setdefault(f, set()).add(("x32" if n & 0x40000000 else site.abi, n))
        if site.how == "unresolved" or (not site.complete and site.how != "wrapper"):
            m.unresolved.add(f)
    for s in dynsyms:
        if s.st_shndx and s.type in (2, 10) and s.binding != 0:
            m.exports.setdefault(s.name, s.st_value)
    m.entry_points = {o for a in _init_functions(elf) if (o := owner(a)) is not None}
    return m


def _edges(m: Model, events: list[Event], order: list[int], owner: Any, obj: Any, code: Code, plt: dict[int, str],
           slots: dict[int, str]) -> None:  # fmt: skip
    """Calls, tail calls, fall-throughs, imports, taken addresses, data references and indirect calls per
    function, in one pass in address order (the function holding each instruction moves forward with it)."""
    j, n_order = -1, len(order)
    f: int | None = None
    nxt = order[0] if order else None
    prev_owner, prev_kind = None, "end"
    for a, kind, target, ref, taken in events:
        if nxt is not None and a >= nxt:
            while j + 1 < n_order and order[j + 1] <= a:
                j += 1
            f = order[j]
            nxt = order[j + 1] if j + 1 < n_order else None
            if prev_owner is not None and a == f and prev_owner != f and prev_kind not in ENDING:
                m.callees.setdefault(prev_owner, set()).add(f)  # falls through into the next function
        if f is None:
            continue
        if kind != "pad":
            prev_owner, prev_kind = f, kind
        if ref is not None:
            if code.region_of(ref) is not None:
                if taken:
                    m.code_taken.setdefault(f, set()).add(ref)
            elif (o := obj(ref)) is not None:
                m.data_refs.setdefault(f, set()).add(o)
        if target is not None and kind in ("call", "jump", "cond"):
            if target in plt:
                m.imports.setdefault(f, set()).add(plt[target])
            elif (t := owner(target)) is not None and t != f:
                m.callees.setdefault(f, set()).add(t)
        elif kind in ("icall", "ijump"):
            if ref is not None and ref in slots:  # -fno-plt: call or jmp [rip + GOT slot]
                m.imports.setdefault(f, set()).add(slots[ref])
            else:
                m.indirect.add(f)


# the last instruction of a function that does not go on into the next one: returns, jumps, traps, and calls
# at the very end (to a function that does not return: abort, __stack_chk_fail, __libc_fatal)
ENDING = ("end", "jump", "ijump", "call", "icall")
_PAD = ("nop", "int3", "data16")


def _x86_events(decoded: list[tuple[int, int, str, str]]) -> Iterator[Event]:
    for a, size, mn, ops in decoded:
        c = mn[0]
        ref = _rip_target(a, size, ops) if "rip" in ops else None
        if c in "nid" and mn.startswith(_PAD):
            yield a, "pad", None, None, False
        elif c in "cjbn" and mn.startswith(("call", "j", "bnd j", "notrack j")):
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
        elif mn.startswith(("ret", "bnd ret", "hlt", "ud2")):
            yield a, "end", None, None, False
        else:
            yield a, "other", None, ref, mn == "lea"


_A64_COND = ("b.", "cbz", "cbnz", "tbz", "tbnz")


def _a64_events(decoded: list[tuple[int, int, str, str]]) -> Iterator[Event]:
    """AArch64: direct branches, `blr`/`br`, and the addresses `adrp` + `add`/`ldr` form (the register's page
    is followed from the adrp to the instruction that uses it)."""
    pages: dict[str, int] = {}
    for a, _, mn, ops in decoded:
        parts = [p.strip() for p in ops.split(",")]
        dst = parts[0] if parts else ""
        reg = "x" + dst[1:] if dst[:1] in ("x", "w") else dst
        ref, taken = None, False
        if mn == "adrp" and len(parts) == 2:
            page = engine.I.num(parts[1])
            if page is not None:
                pages[reg] = page
            yield a, "other", None, None, False
            continue
        if mn in ("add", "ldr", "ldrsw") and len(parts) >= 2:
            base = parts[1].lstrip("[").rstrip("]")
            base = "x" + base[1:] if base[:1] == "w" else base
            off = engine.I.num(parts[2].rstrip("]!")) if len(parts) > 2 else 0
            if base in pages and off is not None:
                ref, taken = pages[base] + off, mn == "add"
        if mn in ("bl", "b") or mn.startswith(_A64_COND):
            target = engine.I.num(parts[-1]) if parts else None
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


def _plt_entries(events: Iterator[Event], slots: dict[int, str], plt: dict[int, str], abi: str) -> None:
    """PLT entry address -> the imported name its jump goes through: x86-64 `jmp [rip + slot]` (the entry
    starts at the 16-byte boundary holding it: endbr64 and bnd prefixes), AArch64 `adrp x16; ldr x17, [x16,
    #slot]; add; br x17` (the entry starts at the adrp)."""
    for a, kind, _, ref, _ in events:
        if ref is None or ref not in slots:
            continue
        if abi == "x86_64" and kind in ("ijump", "jump"):
            plt[a & ~15] = plt[a] = slots[ref]
        elif abi == "aarch64":
            plt[a - 4] = slots[ref]


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
    from analyzer.facts.loader.linkmap import definitions, lookup
    from analyzer.facts.syscalls import _name, detect_abi

    abi = detect_abi(program.elf)
    if abi not in RELOC:
        return {"modelled": False, "reason": f"library call graphs are modelled for x86-64 and AArch64, not {abi}"}
    objects = link_map.objects
    scope = [(o, definitions(o)) for o in objects]
    memo = link_map.sysroot.memo
    models: dict[str, Model] = {}

    def model_of(o: Any) -> Model:
        key = ("syscalls-model", o.host_path)
        if key not in memo:
            memo[key] = _kept_model(o.elf, abi, deadline)
        models[o.name] = memo[key]
        return models[o.name]

    state = _Reach(models)

    def import_(name: str, requester: Any) -> None:
        target = lookup(name, None, requester, scope)
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
    interp, interp_path = link_map.sysroot.open(program.elf.interpreter) if program.elf.interpreter else (None, None)
    loader_calls: set[tuple[str, int]] = set()
    if interp is not None:
        key = ("syscalls-model", interp_path)
        if key not in memo:  # usually modelled already: the loader is also the object that defines its symbols
            memo[key] = _kept_model(interp, abi, deadline)
        loader_calls = {c for calls in memo[key].calls.values() for c in calls}
    incomplete = state.run(deadline) + opened

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
