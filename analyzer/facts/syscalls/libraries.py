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

Modelled for x86-64 (call graphs from decoded code, the PLT and GOT from the dynamic relocations); other
ABIs say `modelled: false`.
"""

from __future__ import annotations

import bisect
import re
import struct
import time
from array import array
from dataclasses import dataclass, field
from typing import Any

from analyzer.facts.syscalls import engine
from analyzer.facts.syscalls.code import Code
from analyzer.load.elf import ELFFile

R_X86_64_64, R_X86_64_GLOB_DAT, R_X86_64_JUMP_SLOT, R_X86_64_RELATIVE = 1, 6, 7, 8
DT_INIT, DT_FINI, DT_INIT_ARRAY, DT_FINI_ARRAY, DT_INIT_ARRAYSZ, DT_FINI_ARRAYSZ = 12, 13, 25, 26, 27, 28
DT_RELA, DT_RELASZ, DT_JMPREL, DT_PLTRELSZ = 7, 8, 23, 2
DT_RELR, DT_RELRSZ = 36, 35
MAX_RELOCATIONS = 1 << 22
# the last instruction of a function that does not go on into the next one: returns, jumps, traps, and calls
# at the very end (to a function that does not return: abort, __stack_chk_fail, __libc_fatal)
DLOPEN = ("dlopen", "dlmopen", "__libc_dlopen_mode")
ENDS = ("ret", "bnd ret", "jmp", "bnd jmp", "notrack jmp", "hlt", "ud2", "call", "bnd call", "notrack call")
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


def model(elf: ELFFile, abi: str, deadline: float) -> Model:
    """The library's model (x86-64).

    Functions: stripped libraries name only their exported functions, so every direct call target and every
    code address the library takes starts a function too, and each instruction and site belongs to the
    function holding it. Data: the addresses the code reads or takes (`[rip + X]`) and the addresses the
    relocations point to split the data into objects; an object holds the pointers relocated inside it, to
    functions (a function table such as stdio's), to other objects, or to imported names (GOT slots)."""
    code = Code(elf)
    arch = engine.arch_for(abi, True)
    assert arch is not None and arch.cs is not None
    md = engine._cs(arch.cs[0], arch.cs[1], False)
    m = Model(abi)
    dynsyms = list(elf.dynamic_symbols())
    by_index = {s.index: s for s in dynsyms}
    slots: dict[int, str] = {}  # GOT slot -> the imported name it is bound to
    pointers: list[tuple[int, int]] = []  # (place, address stored there)
    for r_offset, rtype, sym, addend in _relocations(elf):
        if rtype in (R_X86_64_GLOB_DAT, R_X86_64_JUMP_SLOT, R_X86_64_64) and sym in by_index:
            s = by_index[sym]
            if s.st_shndx == 0:
                slots[r_offset] = s.name
            else:
                pointers.append((r_offset, s.st_value + (addend if rtype == R_X86_64_64 else 0)))
        elif rtype == R_X86_64_RELATIVE:
            pointers.append((r_offset, addend))
    pointers += _relr_values(elf)
    plt = _plt_targets(md, code, slots)
    insns: list[tuple[int, int, str, str]] = []
    for fn in code.functions:
        if time.monotonic() > deadline:
            break
        r = code.region_of(fn.start)
        if r is not None and not r.name.startswith(".plt"):
            first = len(insns)
            insns.extend(md.disasm_lite(code.read(fn.start, fn.end - fn.start), fn.start))
            # the instruction starts, for the site search (engine._starts) to reuse
            code.insn_starts[fn.start] = array("Q", (insns[k][0] for k in range(first, len(insns))))
    starts = {f.start for f in code.functions if not f.name.startswith(".")}
    rip: list[tuple[int, int]] = []  # (instruction, address it reads or takes)
    for a, size, mn, ops in insns:
        if mn[0] == "c" and mn.startswith("call") and ops.startswith("0x"):
            starts.add(int(ops, 16))
        elif "rip" in ops:
            t = _rip_target(a, size, ops)
            if t is not None:
                rip.append((a, t))
                if mn == "lea" and code.region_of(t) is not None:
                    starts.add(t)
    starts |= {v for _, v in pointers if code.region_of(v) is not None}
    starts -= set(plt)
    order = sorted(starts)
    m.names = {f.start: f.name for f in code.functions if f.start in starts}

    def owner(addr: int) -> int | None:
        return _floor(order, addr)

    # data objects: split where code points into data, where relocations point, and at exported symbols
    data_syms = {s.name: s.st_value for s in dynsyms if s.st_shndx and s.type == 1}
    objects = sorted({t for _, t in rip if code.region_of(t) is None} | set(slots) |
                     {v for _, v in pointers if code.region_of(v) is None} | set(data_syms.values()))  # fmt: skip

    def obj(addr: int) -> int | None:
        return _floor(objects, addr)

    for place, value in pointers:
        o = obj(place)
        if o is None:
            continue
        if code.region_of(value) is not None:
            m.object_functions.setdefault(o, set()).add(value)
        else:
            target = obj(value)
            if target is not None:
                m.object_objects.setdefault(o, set()).add(target)
    for place, name in slots.items():
        o = obj(place)
        if o is not None:
            m.object_imports.setdefault(o, set()).add(name)
    m.exported_objects = {n: o for n, v in data_syms.items() if (o := obj(v)) is not None}
    for a, t in rip:
        f0 = owner(a)
        if f0 is None:
            continue
        if code.region_of(t) is not None:
            m.code_taken.setdefault(f0, set()).add(t)
        elif (o := obj(t)) is not None:
            m.data_refs.setdefault(f0, set()).add(o)
    # one pass in address order: the function holding each instruction moves forward with it (no search)
    j, n_order = -1, len(order)
    f: int | None = None
    nxt = order[0] if order else None
    prev_owner, prev_mn = None, "ret"
    for a, size, mn, ops in insns:
        if nxt is not None and a >= nxt:
            while j + 1 < n_order and order[j + 1] <= a:
                j += 1
            f = order[j]
            nxt = order[j + 1] if j + 1 < n_order else None
            if prev_owner is not None and a == f and prev_owner != f and not prev_mn.startswith(ENDS):
                m.callees.setdefault(prev_owner, set()).add(f)  # falls through into the next function
        if f is None:
            continue
        c = mn[0]
        if c not in "nid" or not mn.startswith(("nop", "int3", "data16")):  # padding between functions
            prev_owner, prev_mn = f, mn
        if c not in "cjbn" or not mn.startswith(("call", "j", "bnd j", "notrack j")):
            continue  # neither a call nor a jump
        if ops.startswith("0x"):
            target = int(ops, 16)
            if target in plt:
                m.imports.setdefault(f, set()).add(plt[target])
            else:
                t = owner(target)
                if t is not None and t != f:
                    m.callees.setdefault(f, set()).add(t)
            continue
        slot = _rip_target(a, size, ops) if "rip" in ops else None
        if slot in slots:  # -fno-plt: call or jmp [rip + GOT slot]
            m.imports.setdefault(f, set()).add(slots[slot])
        elif mn.startswith("call"):
            m.indirect.add(f)
        elif mn.startswith(("jmp", "bnd jmp", "notrack jmp")) and "ptr [" in ops:
            m.indirect.add(f)  # a tail call through a pointer in memory (`jmp reg` is a jump table)
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


def _floor(ordered: list[int], addr: int) -> int | None:
    """The greatest element of `ordered` at or below `addr` (the function or data object holding it)."""
    i = bisect.bisect_right(ordered, addr) - 1
    return ordered[i] if i >= 0 else None


def _rip_target(a: int, size: int, ops: str) -> int | None:
    mm = _RIP.search(ops)
    if not mm:
        return None
    return a + size + (int(mm[2], 0) if mm[1] == "+" else -int(mm[2], 0))


def _plt_targets(md: Any, code: Code, slots: dict[int, str]) -> dict[int, str]:
    """PLT entry address -> the imported name its jump goes through (`jmp [rip + X]` into a GOT slot)."""
    out: dict[int, str] = {}
    for r in code.regions:
        if not r.name.startswith(".plt"):
            continue
        for a, size, mn, ops in md.disasm_lite(code.read(r.vaddr, r.size), r.vaddr):
            slot = _rip_target(a, size, ops) if "jmp" in mn else None
            if slot is not None and slot in slots:
                # the entry starts at the 16-byte boundary holding this jump (endbr64 and bnd prefixes)
                out[a & ~15] = out[a] = slots[slot]
    return out


def reach(program: Any, link_map: Any, deadline: float) -> dict[str, Any]:
    """The system calls the program reaches through its libraries (see the module's doc)."""
    from analyzer.facts.loader.linkmap import definitions, lookup
    from analyzer.facts.syscalls import _name, detect_abi

    abi = detect_abi(program.elf)
    if abi != "x86_64":
        return {"modelled": False, "reason": f"library call graphs are modelled for x86-64 only, not {abi}"}
    objects = link_map.objects
    scope = [(o, definitions(o)) for o in objects]
    memo = link_map.sysroot.memo
    models: dict[str, Model] = {}

    def model_of(o: Any) -> Model:
        key = ("syscalls-model", o.host_path)
        if key not in memo:
            memo[key] = model(o.elf, "x86_64", deadline)
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
            memo[key] = model(interp, "x86_64", deadline)
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
