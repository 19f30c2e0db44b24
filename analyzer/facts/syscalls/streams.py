"""The event streams of the library call graphs (libraries.py): for each ABI, what each instruction of a
function means to the graph — a direct call or jump and its target, an indirect call or jump and the slot it
goes through when one is known, an address the code reads or takes, the end of the code, padding — from
capstone's (address, size, mnemonic, operands), with the registers that hold known addresses followed
through the function (an address formed over two instructions: adrp + add, auipc + addi, a literal pool word
added to the PC, an offset off the GOT or TOC pointer)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from analyzer.facts.syscalls import engine
from analyzer.facts.syscalls import isa as I
from analyzer.facts.syscalls.code import Code

_RIP = re.compile(r"\[rip ([+-]) (0x[0-9a-f]+|\d+)\]")

Event = tuple[int, str, int | None, int | None, bool]  # (address, kind, direct target, referenced address, taken)


@dataclass
class Ctx:
    """What an event stream needs besides the instructions: the library's code, the registers known at a
    function's entry (POWER's TOC pointer; the i386 PLT's GOT pointer) and the instruction set (ARM/Thumb)."""

    code: Code
    regs: dict[str, int]
    thumb: bool = False
    slots: frozenset[int] = frozenset()  # x86-64: the import slots a register loaded from is followed for


# the last instruction of a function that does not go on into the next one: returns, jumps, traps, and calls
# at the very end (to a function that does not return: abort, __stack_chk_fail, __libc_fatal)
ENDING = ("end", "jump", "ijump", "call", "icall")
_PAD = ("nop", "int3", "data16")


def _x86_events(decoded: list[tuple[int, int, str, str]], ctx: Ctx) -> Iterator[Event]:
    """x86-64: direct and indirect calls and jumps, returns and traps, `[rip + X]` reads and `lea` takes; a run
    of other instructions is one "run" event (its first address, and its last as the target). A register
    loaded from one of `ctx.slots` (`mov r14, [rip + slot]`) is followed to a `call r14` / `jmp r14` through
    it, until the register is written (clang's -fno-plt: the slot loaded once for several calls)."""
    run: int | None = None
    last = 0
    loaded: dict[str, int] = {}  # register (its 64-bit name) -> the slot it was loaded from
    slots = ctx.slots
    for a, size, mn, ops in decoded:
        c = mn[0]
        rip = "rip" in ops
        pad = c in "nid" and mn.startswith(_PAD)
        branch = c in "cjbn" and not pad and mn.startswith(_X86_BRANCH)
        if loaded and not branch:
            _x86_forget(loaded, mn, ops)
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
            through = loaded.get(_X86_FAMILY.get(ops, "")) if loaded else None
            if direct is not None:
                yield a, "call" if call else "jump" if jump else "cond", direct, None, False
            elif call:
                yield a, "icall", None, ref if through is None else through, False
            elif jump and ("ptr [" in ops or through is not None):
                yield a, "ijump", None, ref if through is None else through, False  # a tail call through memory
            else:  # (`jmp reg` otherwise: a jump table)
                yield a, "jump", None, None, False
            if call and loaded:
                _forget((loaded,), _X86_CALL_CLOBBERED)
        elif mn.startswith(_X86_END):
            yield a, "end", None, None, False
        else:
            if ref in slots and mn == "mov" and ops.startswith(_X86_R64):
                loaded[_X86_FAMILY[ops.split(",", 1)[0]]] = ref
            yield a, "other", None, ref, mn == "lea"
    if run is not None:
        yield run, "run", last, None, False


def _x86_forget(loaded: dict[str, int], mn: str, ops: str) -> None:
    """Out of `loaded`: the registers an x86-64 instruction (not a branch) writes, its first operand and the
    ones it writes implicitly (a string operation's, cpuid's, division's, syscall's)."""
    dst = ops.split(",", 1)[0]
    if (r := _X86_FAMILY.get(dst)) in loaded and mn not in ("cmp", "test", "push", "bt"):
        del loaded[r]
    if mn.startswith(("xchg", "xadd")) and (r := _X86_FAMILY.get(ops.rpartition(" ")[2])) in loaded:
        del loaded[r]
    implicit = _X86_IMPLICIT.get(mn) or (_X86_STRING if mn.startswith(_X86_STRING_OPS) else ())
    _forget((loaded,), implicit)


_X86_BRANCH = ("call", "j", "bnd j", "notrack j")
_X86_END = ("ret", "bnd ret", "hlt", "ud2")
# x86-64 register names -> the 64-bit register holding them
_X86_FAMILY = {
    **{n: f"r{x}x" for x in "abcd" for n in (f"r{x}x", f"e{x}x", f"{x}x", f"{x}l", f"{x}h")},
    **{n: f"r{x}" for x in ("si", "di", "bp", "sp") for n in (f"r{x}", f"e{x}", x, f"{x}l")},
    **{n: f"r{k}" for k in range(8, 16) for n in (f"r{k}", f"r{k}d", f"r{k}w", f"r{k}b")},
}
_X86_R64 = tuple(sorted({f"{r}, qword ptr [rip" for r in _X86_FAMILY.values()}))
_X86_CALL_CLOBBERED = ("rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11")
_X86_IMPLICIT = {
    "mul": ("rax", "rdx"), "imul": ("rax", "rdx"), "div": ("rax", "rdx"), "idiv": ("rax", "rdx"),
    "cqo": ("rdx",), "cdq": ("rdx",), "cwd": ("rdx",), "cdqe": ("rax",), "cwde": ("rax",), "cbw": ("rax",),
    "cpuid": ("rax", "rbx", "rcx", "rdx"), "rdtsc": ("rax", "rdx"), "rdtscp": ("rax", "rcx", "rdx"),
    "xgetbv": ("rax", "rdx"), "rdpkru": ("rax", "rdx"), "syscall": ("rax", "rcx", "r11"),
    "cmpxchg": ("rax",), "cmpxchg8b": ("rax", "rdx"), "cmpxchg16b": ("rax", "rdx"),
}  # fmt: skip
_X86_STRING_OPS = ("rep", "movs", "stos", "lods", "scas", "cmps", "ins", "outs")
_X86_STRING = ("rax", "rcx", "rsi", "rdi")


_I386_MEM = re.compile(r"(?<!s:)\[(e[a-z]{2})(?: ([+-]) (0x[0-9a-f]+|\d+))?\]")
_I386_REGS = frozenset(("eax", "ebx", "ecx", "edx", "esi", "edi", "ebp"))
_I386_IMPLICIT = {"mul": ("eax", "edx"), "div": ("eax", "edx"), "idiv": ("eax", "edx"), "cdq": ("edx",),
                  "cpuid": ("eax", "ebx", "ecx", "edx"), "rdtsc": ("eax", "edx")}  # fmt: skip


def _i386_events(decoded: list[tuple[int, int, str, str]], ctx: Ctx) -> Iterator[Event]:
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
                _forget((regs, loaded), ("eax", "ecx", "edx"))  # the callee may change them
        elif mn.startswith(("ret", "bnd ret", "hlt", "ud2")):
            yield a, "end", None, None, False
        else:
            value = I.num(parts[1]) if len(parts) == 2 else None
            if mn in ("add", "sub") and dst in regs and value is not None:
                regs[dst] = (regs[dst] + (value if mn == "add" else -value)) & 0xFFFFFFFF
            elif dst in _I386_REGS and mn not in ("cmp", "test", "push"):
                _forget((regs, loaded), (dst,))
                if mn == "lea" and ref is not None:
                    regs[dst] = ref
                elif mn == "mov" and ref is not None:
                    loaded[dst] = ref
                elif mn == "mov" and len(parts) == 2 and parts[1] in regs:
                    regs[dst] = regs[parts[1]]
            string_op = mn.startswith(("rep", "movs", "stos"))
            _forget((regs, loaded), _I386_IMPLICIT.get(mn, ("esi", "edi", "ecx") if string_op else ()))
            yield a, "other", None, ref, mn == "lea"


_A64_CALL_CLOBBERED = tuple(f"x{i}" for i in range(19)) + ("x30",)
_A64_COND = ("b.", "cbz", "cbnz", "tbz", "tbnz")


def _a64_events(decoded: list[tuple[int, int, str, str]], ctx: Ctx) -> Iterator[Event]:
    """AArch64: direct branches, `blr`/`br`, and the addresses `adrp` + `add`/`ldr` form (the register's page
    is followed from the adrp to the instruction that uses it)."""
    pages: dict[str, int] = {}
    loaded: dict[str, int] = {}  # register -> the import slot it was loaded from (`ldr x20, [x20, #slot]`: -fno-plt)
    slots = ctx.slots
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
            yield a, "icall", None, loaded.get(reg), False
        elif mn == "br":
            yield a, "ijump", None, loaded.get(reg), False
        elif mn in ("ret", "brk", "udf", "hlt"):
            yield a, "end", None, None, False
        elif mn == "nop":
            yield a, "pad", None, None, False
        else:
            yield a, "other", None, ref, taken
        if reg in pages and mn not in ("str", "stp", "stur", "cmp", "tst", "cbz", "cbnz") and not mn.startswith("b"):
            if not (mn == "add" and ref is not None and reg == base):
                pages.pop(reg, None)  # the register holds something else now
        if loaded and (mn in ("bl", "blr") or (not mn.startswith(("st", "b", "cmp", "cmn", "tst", "cb", "tb"))
                                                and mn != "nop")):  # fmt: skip
            _forget((loaded,), _A64_CALL_CLOBBERED if mn in ("bl", "blr") else (reg,))
            if mn == "ldp" and len(parts) > 1:  # (a pair load writes its second register too)
                _forget((loaded,), ("x" + parts[1][1:],))
        if mn == "ldr" and ref is not None and ref in slots and dst[:1] == "x":
            loaded[reg] = ref


def _forget(tables: tuple[dict[str, int], ...], names: Any) -> None:
    """The registers `names` hold something else now: out of every table."""
    for table in tables:
        for name in names:
            table.pop(name, None)


def _set(table: dict[str, int], item: tuple[str, int] | None) -> None:
    if item is not None:
        table[item[0]] = item[1]


def _copied(dst: str, src: str, regs: dict[str, int], loaded: dict[str, int]
            ) -> tuple[tuple[str, int] | None, tuple[str, int] | None]:  # fmt: skip
    """A register move: what `dst` now holds, as an address and as the slot it was loaded from."""
    return ((dst, regs[src]) if src in regs else None), ((dst, loaded[src]) if src in loaded else None)


_RV_STORES = frozenset(("sd", "sw", "sh", "sb", "sdsp", "swsp", "fsd", "fsw", "fsdsp", "fswsp"))
_RV_MEM = re.compile(r"^(-?(?:0x[0-9a-f]+|\d+))?\((\w+)\)$")


def _rv_events(decoded: list[tuple[int, int, str, str]], ctx: Ctx) -> Iterator[Event]:
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
            _forget((regs, loaded), (dst,))
        if kind in ("call", "icall"):
            _forget((regs, loaded), ("ra",))
        _set(regs, new)
        _set(loaded, new_loaded)
        yield a, kind, target, ref, taken


_PPC_KEEP = ("st", "cmp", "b", "mt", "dcb", "icb", "sync", "isync", "tw", "td", "trap", "lwsync", "hwsync")
_PPC_MEM = re.compile(r"^(-?(?:0x[0-9a-f]+|\d+))\((r\d+)\)$")


def _ppc_events(decoded: list[tuple[int, int, str, str]], ctx: Ctx) -> Iterator[Event]:
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
            _forget((regs, loaded), (dst,))
        if new is not None and new[0] != "r2":
            regs[new[0]] = new[1]
        _set(loaded, new_loaded)
        yield a, kind, target, ref, taken


_S390_KEEP = ("st", "mv", "c", "tm", "b", "j", "ex", "lpsw", "svc", "nop")
_S390_MEM = re.compile(r"^(-?(?:0x[0-9a-f]+|\d+))?\((%r\d+)\)$")


def _s390_events(decoded: list[tuple[int, int, str, str]], ctx: Ctx) -> Iterator[Event]:
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
            _forget((regs, loaded), (dst,))
        if kind in ("call", "icall"):
            _forget((regs, loaded), ("%r0", "%r1", "%r2", "%r3", "%r4", "%r5", "%r14"))
        _set(regs, new)
        _set(loaded, new_loaded)
        yield a, kind, target, ref, taken


_ARM_KEEP = ("str", "stm", "push", "cmp", "cmn", "tst", "teq", "b", "vst", "it", "pld", "dmb", "dsb", "isb")
_ARM_MEM = re.compile(r"^\[(\w+)(?:, (#-?(?:0x[0-9a-f]+|\d+)|\w+))?\]!?$")


def _arm_events(decoded: list[tuple[int, int, str, str]], ctx: Ctx) -> Iterator[Event]:
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
                new, new_loaded = _copied(dst, parts[1], regs, loaded)
                new_const = (dst, consts[parts[1]]) if parts[1] in consts else None
        if kind in ("other", "pad") and dst and not mn.startswith(_ARM_KEEP):
            _forget((regs, loaded, consts), (dst,))
        if mn in ("pop", "ldm"):
            _forget((regs, loaded, consts), [r for r in {*regs, *loaded, *consts} if r in ops])
        if kind in ("call", "icall"):
            _forget((regs, loaded, consts), ("r0", "r1", "r2", "r3", "ip", "lr"))
        if taken and ref is not None and not ref & 1 and (fn := ctx.code.function_of(ref)) is not None and fn.thumb:
            taken = False  # an even address in Thumb code is data there (a Thumb function's address is odd)
        _set(regs, new)
        _set(consts, new_const)
        _set(loaded, new_loaded)
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


def _mips_events(decoded: list[tuple[int, int, str, str]], ctx: Ctx) -> Iterator[Event]:
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
            _forget((vals, loaded), (dst,))
        _set(vals, new_val)
        _set(loaded, new_loaded)
        if delay and kill_after:
            _forget((vals, loaded), _MIPS_CALLER_SAVED)  # the callee may change them
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


def _rip_target(a: int, size: int, ops: str) -> int | None:
    mm = _RIP.search(ops)
    if not mm:
        return None
    return a + size + (int(mm[2], 0) if mm[1] == "+" else -int(mm[2], 0))
