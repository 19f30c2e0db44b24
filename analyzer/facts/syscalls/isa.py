"""Per-architecture knowledge: trap encodings, call encodings, registers, and what an instruction does to
the one location a backward slice follows.

Each ISA answers `effect(insn, loc)` for a decoded instruction (`Insn`) and a location (`("r", reg)` or
`("s", offset from the stack pointer)`): None when the instruction leaves the location alone, else one of
`("const", value)`, `("move", loc)`, `("xform", function, loc)` (the value is function(value at loc)) or
`("unknown", why)`. Registers are named canonically (x86: the 64-bit name; arm64: xN; s390: rN).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Loc = tuple[str, Any]
Effect = tuple[Any, ...] | None


@dataclass(slots=True)
class Insn:
    address: int
    size: int
    mnemonic: str
    ops: list[str]  # operand text, split
    writes: frozenset[str] | None = None  # canonical registers written (None: ISA gives no list)
    target: int | None = None  # direct branch or call target
    kind: str = ""  # "call", "jump" (unconditional), "branch" (conditional), "ret", "trap", "thunk" (i386 PIC), ""
    detail: Any = None  # the capstone instruction, when decoded with detail
    thumb: bool = False  # ARM: decoded as Thumb


def _mask(bits: int) -> Callable[[int], int]:
    m = (1 << bits) - 1
    return lambda v: v & m


def num(text: str) -> int | None:
    """An immediate operand's value ('#0x58', '-3', '0x10') or None."""
    t = text.strip().lstrip("#$")
    try:
        return int(t, 0)
    except ValueError:
        return None


@dataclass(frozen=True)
class ISA:
    name: str
    number: str  # canonical register carrying the number
    result: str  # canonical register the kernel writes (a trap clobbers it)
    sp: str
    c_params: tuple[str, ...]
    go_params: tuple[str, ...]
    c_saved: frozenset[str]  # callee-saved in the C ABI: a call keeps them
    call_push: int = 0  # bytes a call pushes (x86: the return address)
    canon: Callable[[str], str] = field(default=lambda r: r)
    effect: Callable[[ISA, Insn, Loc], Effect] = field(default=lambda isa, i, loc: None)
    # C parameters besides c_params: stack slots from this offset on (None: none), and registers C helpers take
    # their number in (glibc's __libc_do_syscall: eax on i386, ip on Thumb)
    stack_params_from: int | None = None
    helper_params: tuple[str, ...] = ()


WRITES: Effect = ("writes",)  # _register_effect: the instruction writes the register, the ISA says how


def _register_effect(isa: ISA, i: Insn, reg: str) -> Effect:
    """What every ISA with capstone's register lists shares: a call keeps only the callee-saved registers, a
    trap clobbers the result register, an instruction that does not write `reg` leaves it; WRITES otherwise."""
    if i.kind == "call":
        return None if reg in isa.c_saved else ("unknown", "call")
    if i.kind == "trap":
        return ("unknown", "previous system call") if reg == isa.result else None
    if i.writes is None or reg not in i.writes:
        return None
    return WRITES


# ---------------------------------------------------------------- x86

_X86_FAMILIES = {
    "a": ("rax", "eax", "ax", "al", "ah"), "b": ("rbx", "ebx", "bx", "bl", "bh"),
    "c": ("rcx", "ecx", "cx", "cl", "ch"), "d": ("rdx", "edx", "dx", "dl", "dh"),
    "si": ("rsi", "esi", "si", "sil"), "di": ("rdi", "edi", "di", "dil"), "sp": ("rsp", "esp", "sp", "spl"),
    "bp": ("rbp", "ebp", "bp", "bpl"),
}  # fmt: skip
X86_CANON = {alias: names[0] for names in _X86_FAMILIES.values() for alias in names}
for _n in range(8, 16):
    for _s in ("", "d", "w", "b"):
        X86_CANON[f"r{_n}{_s}"] = f"r{_n}"


def x86_canon(r: str) -> str:
    return X86_CANON.get(r, r)


_X86_MEM = re.compile(r"^(?:\w+ ptr )?(?:\w+:)?\[(?P<base>[a-z0-9]+)(?: (?P<sign>[+-]) (?P<disp>0x[0-9a-f]+|\d+))?\]$")


def _x86_stack_slot(text: str, sp: str) -> int | None:
    m = _X86_MEM.match(text)
    if not m or x86_canon(m["base"]) != sp:
        return None
    d = int(m["disp"], 0) if m["disp"] else 0
    return -d if m["sign"] == "-" else d


def _x86_reg_width(r: str) -> int:
    if r.startswith("r") and not r[1:].isdigit() and not r.endswith(("d", "w", "b")):
        return 64
    if r.endswith("d") or r.startswith("e"):
        return 32
    return 64 if r.startswith("r") and r[1:].isdigit() else 16


def x86_effect(isa: ISA, i: Insn, loc: Loc) -> Effect:
    mn, ops = i.mnemonic, i.ops
    if loc[0] == "s":
        return _x86_stack_effect(isa, i, loc[1])
    reg = loc[1]
    shared = _register_effect(isa, i, reg)
    if shared is not WRITES:
        return shared
    dst = ops[0] if ops else ""
    if x86_canon(dst) != reg:
        return ("unknown", mn)
    src = ops[1] if len(ops) > 1 else ""
    width = _x86_reg_width(dst)
    if mn == "mov":
        v = num(src)
        if v is not None:
            return ("const", v & ((1 << width) - 1) if width == 32 else v)
        if src in X86_CANON:
            return ("move", ("r", x86_canon(src)))
        slot = _x86_stack_slot(src, isa.sp)
        return ("move", ("s", slot)) if slot is not None else ("unknown", "load")
    if mn in ("xor", "sub") and src and x86_canon(src) == reg:
        return ("const", 0)
    if mn in ("movzx", "movsx", "movsxd") and src in X86_CANON:
        return ("move", ("r", x86_canon(src)))
    if mn == "pop":
        return ("move", ("s", 0))
    v = num(src)
    if v is not None and mn in ("add", "sub", "or", "and", "shl"):
        fn = {"add": lambda x: x + v, "sub": lambda x: x - v, "or": lambda x: x | v, "and": lambda x: x & v,
              "shl": lambda x: x << v}[mn]  # fmt: skip
        return ("xform", fn, loc)
    if mn == "lea":
        m = _X86_MEM.match(src)
        if m and m["base"] in X86_CANON and x86_canon(m["base"]) not in ("rsp", "rip"):
            d = int(m["disp"], 0) if m["disp"] else 0
            d = -d if m["sign"] == "-" else d
            return ("xform", lambda x: x + d, ("r", x86_canon(m["base"])))
    return ("unknown", mn)


def _x86_stack_effect(isa: ISA, i: Insn, off: int) -> Effect:
    mn, ops, ptr = i.mnemonic, i.ops, isa.call_push
    if i.kind in ("call", "trap", "thunk"):
        return None
    if mn == "push":
        if off == 0:
            v = num(ops[0])
            if v is not None:
                return ("const", v)
            if ops[0] in X86_CANON:
                return ("move", ("r", x86_canon(ops[0])))
            # a stack slot pushed again (glibc 2.41's __syscall_cancel: `push [rsp+0x18]`, its seventh
            # argument handed on), addressed with the stack pointer of before the push
            slot = _x86_stack_slot(ops[0], isa.sp)
            return ("move", ("s", slot)) if slot is not None else ("unknown", "push")
        return ("move", ("s", off - ptr))
    if mn == "pop":
        return ("move", ("s", off + ptr))
    if ops and ops[0] in X86_CANON and x86_canon(ops[0]) == isa.sp:
        v = num(ops[1]) if len(ops) > 1 else None
        if mn == "sub" and v is not None:
            return ("move", ("s", off - v))
        if mn == "add" and v is not None:
            return ("move", ("s", off + v))
        return ("unknown", f"{mn} of the stack pointer")
    if mn == "mov" and len(ops) == 2 and _x86_stack_slot(ops[0], isa.sp) == off:
        v = num(ops[1])
        if v is not None:
            return ("const", v)
        return ("move", ("r", x86_canon(ops[1]))) if ops[1] in X86_CANON else ("unknown", "store")
    return None


# ---------------------------------------------------------------- arm64 and arm (capstone details)


def a64_canon(r: str) -> str:
    if r.startswith("w") and r[1:].isdigit():
        return "x" + r[1:]
    return {"wzr": "xzr", "fp": "x29", "lr": "x30", "ip0": "x16", "ip1": "x17", "wsp": "sp"}.get(r, r)


_A64_MEM = re.compile(r"^\[(?P<base>\w+)(?:, #(?P<disp>-?0x[0-9a-f]+|-?\d+))?\](?P<wb>!)?$")


def _a64_mem(text: str) -> tuple[str, int, bool] | None:
    m = _A64_MEM.match(text)
    if not m:
        return None
    return a64_canon(m["base"]), int(m["disp"], 0) if m["disp"] else 0, bool(m["wb"])


def a64_effect(isa: ISA, i: Insn, loc: Loc) -> Effect:
    mn, ops = i.mnemonic, i.ops
    if loc[0] == "s":
        return _a64_stack_effect(isa, i, loc[1])
    reg = loc[1]
    shared = _register_effect(isa, i, reg)
    if shared is not WRITES:
        return shared
    if not ops or a64_canon(ops[0]) != reg:
        return ("unknown", mn)
    w32 = ops[0].startswith("w")
    src = ops[1] if len(ops) > 1 else ""
    v = num(src)
    if mn in ("mov", "movz", "movn") and v is not None:
        if mn == "movn":
            v = ~v
        return ("const", v & 0xFFFFFFFF if w32 else v & 0xFFFFFFFFFFFFFFFF)
    if mn == "mov" and a64_canon(src) == "xzr":
        return ("const", 0)
    if mn == "mov" and src and not src.startswith("#") and a64_canon(src) != "sp":
        return ("move", ("r", a64_canon(src)))
    if mn == "movk" and v is not None:
        shift = int(ops[2].split("#")[1], 0) if len(ops) > 2 and "lsl" in ops[2] else 0
        keep = ~(0xFFFF << shift)
        return ("xform", lambda x: (x & keep) | (v << shift), loc)
    if mn in ("add", "sub") and len(ops) == 3 and num(ops[2]) is not None and a64_canon(ops[1]) not in ("sp",):
        k = num(ops[2]) or 0
        return ("xform", (lambda x: x + k) if mn == "add" else (lambda x: x - k), ("r", a64_canon(ops[1])))
    if mn == "orr" and len(ops) == 3 and a64_canon(ops[1]) == "xzr" and num(ops[2]) is not None:
        return ("const", num(ops[2]))
    if mn == "ldr" and v is not None:  # literal: ldr x8, #addr
        return ("literal", v, 4 if w32 else 8)
    if mn in ("ldr", "ldur") and len(ops) == 2:
        mem = _a64_mem(src)
        if mem and mem[0] == "sp" and not mem[2]:
            return ("move", ("s", mem[1]))
    return ("unknown", mn)


def _a64_stack_effect(isa: ISA, i: Insn, off: int) -> Effect:
    mn, ops = i.mnemonic, i.ops
    if i.kind in ("call", "trap", "branch", "jump"):
        return None
    mem_i = next((k for k, o in enumerate(ops) if o.startswith("[")), None)
    if mem_i is not None:
        mem = _a64_mem(ops[mem_i])
        if mem is None or mem[0] != "sp":
            return None
        _, disp, pre = mem
        post = num(ops[mem_i + 1]) if len(ops) > mem_i + 1 else None
        # the stack pointer after the instruction, relative to the one before, and where a store lands
        moved = disp if pre else post or 0
        at = 0 if pre else disp  # relative to the old sp for plain and post-index, to the new sp for pre-index
        if mn.startswith(("str", "stp", "stur")):
            size = 4 if ops[0].startswith("w") else 8
            want = off if pre else off + moved
            for k, r in enumerate(ops[:mem_i]):
                if at + k * size == want:
                    return ("move", ("r", a64_canon(r))) if a64_canon(r) != "xzr" else ("const", 0)
        return ("move", ("s", off + moved)) if moved else None
    if ops and a64_canon(ops[0]) == "sp":
        if mn in ("sub", "add") and len(ops) == 3 and a64_canon(ops[1]) == "sp" and num(ops[2]) is not None:
            k = num(ops[2]) or 0
            return ("move", ("s", off - k if mn == "sub" else off + k))
        return ("unknown", f"{mn} of the stack pointer")
    return None


ARM_CANON = {"sb": "r9", "sl": "r10", "fp": "r11", "ip": "r12", "r13": "sp", "r14": "lr", "r15": "pc"}


def arm_canon(r: str) -> str:
    return ARM_CANON.get(r, r)


_ARM_MEM = re.compile(r"^\[(?P<base>\w+)(?:, #(?P<disp>-?0x[0-9a-f]+|-?\d+))?\](?P<wb>!)?$")


def _arm_list(ops: list[str]) -> list[str]:
    """The registers of a register-list operand (`{r4, r5, r6, lr}`: one operand as the operands are split),
    ranges (`r4-r7`) expanded; canonical names."""
    out: list[str] = []
    for op in ops:
        if not op.startswith("{"):
            continue
        for r in op.strip("{} ").split(","):
            r = arm_canon(r.strip())
            first, _, last = r.partition("-")
            if last and first[1:].isdigit() and last[1:].isdigit() and first[0] == last[0]:
                out += [f"{first[0]}{n}" for n in range(int(first[1:]), int(last[1:]) + 1)]
            elif r:
                out.append(r)
    return out


def _arm_block(mn: str, ops: list[str]) -> tuple[str, int] | None:
    """A store or load of several registers that moves the stack pointer: ("push", bytes) for push, stmdb sp!,
    vpush; ("pop", bytes) for pop, ldm sp!, vpop (VFP d registers are 8 bytes); None for anything else (an ldm
    from another base leaves sp where it is)."""
    if mn in ("push", "vpush") or (mn in ("stmdb", "stmfd") and ops and ops[0] == "sp!"):
        way = "push"
    elif mn in ("pop", "vpop") or (mn in ("ldm", "ldmia", "ldmfd") and ops and ops[0] == "sp!"):
        way = "pop"
    else:
        return None
    return way, sum(8 if r.startswith("d") else 4 for r in _arm_list(ops))


def arm_effect(isa: ISA, i: Insn, loc: Loc) -> Effect:
    mn, ops = i.mnemonic.split(".")[0], i.ops
    if loc[0] == "s":
        return _arm_stack_effect(isa, i, loc[1])
    reg = loc[1]
    shared = _register_effect(isa, i, reg)
    if shared is not WRITES:
        return shared
    if mn == "ldrd" and len(ops) == 3 and (m := _ARM_MEM.match(ops[2])) and arm_canon(m["base"]) == "sp":
        d = int(m["disp"], 0) if m["disp"] else 0  # two words at [sp, #d] and [sp, #d+4]
        return ("move", ("s", d + 4 * (arm_canon(ops[1]) == reg)))
    block = _arm_block(mn, ops)
    if block is not None and block[0] == "pop" and reg in (regs := _arm_list(ops)):
        return ("move", ("s", 4 * regs.index(reg)))  # (core registers, 4 bytes each, from sp in list order)
    if not ops or arm_canon(ops[0]) != reg:
        return ("unknown", mn)
    src = ops[1] if len(ops) > 1 else ""
    v = num(src)
    if mn in ("mov", "movs", "movw") and v is not None and len(ops) == 2:
        return ("const", v & 0xFFFFFFFF)
    if mn in ("mvn", "mvns") and v is not None and len(ops) == 2:
        return ("const", ~v & 0xFFFFFFFF)
    if mn == "movt" and v is not None:
        return ("xform", lambda x: (x & 0xFFFF) | (v << 16), loc)
    if mn in ("mov", "movs") and len(ops) == 2 and src and not src.startswith("#"):
        return ("move", ("r", arm_canon(src)))
    if mn in ("add", "adds", "sub", "subs", "orr", "orrs") and len(ops) == 3 and num(ops[2]) is not None:
        k = num(ops[2]) or 0
        fn = {"add": lambda x: x + k, "sub": lambda x: x - k, "orr": lambda x: x | k}[mn.rstrip("s") or mn]
        return ("xform", fn, ("r", arm_canon(ops[1])))
    if mn in ("add", "adds", "sub", "subs", "orr", "orrs") and len(ops) == 2 and num(ops[1]) is not None:
        k = num(ops[1]) or 0
        fn = {"add": lambda x: x + k, "sub": lambda x: x - k, "orr": lambda x: x | k}[mn.rstrip("s") or mn]
        return ("xform", fn, loc)
    if mn == "ldr" and len(ops) == 2:
        m = _ARM_MEM.match(src)
        if m and arm_canon(m["base"]) == "pc":
            d = int(m["disp"], 0) if m["disp"] else 0
            pc = (i.address + 4) & ~3 if i.thumb else i.address + 8  # Thumb reads PC as Align(addr + 4, 4)
            return ("literal", pc + d, 4)
        if m and arm_canon(m["base"]) == "sp":  # (with writeback: loaded from the moved sp)
            return ("move", ("s", int(m["disp"], 0) if m["disp"] else 0))
    if mn == "ldr" and len(ops) == 3 and ops[1] == "[sp]":  # post-index: loaded from sp, which then moves
        return ("move", ("s", 0))
    return ("unknown", mn)


def _arm_stack_effect(isa: ISA, i: Insn, off: int) -> Effect:
    mn, ops = i.mnemonic.split(".")[0], i.ops
    if i.kind in ("call", "trap", "branch", "jump"):
        return None
    if mn == "str" and len(ops) >= 2:
        m = _ARM_MEM.match(ops[1])
        if m and arm_canon(m["base"]) == "sp":
            d = int(m["disp"], 0) if m["disp"] else 0
            if m["wb"]:  # str rX, [sp, #-4]!: the store is at the new sp + 0
                return ("move", ("r", arm_canon(ops[0]))) if off == 0 else ("move", ("s", off + d))
            if len(ops) == 3:  # post-index: stored at the old sp, which moves by k
                k = num(ops[2]) or 0
                return ("move", ("r", arm_canon(ops[0]))) if off + k == 0 else ("move", ("s", off + k))
            if d == off:
                return ("move", ("r", arm_canon(ops[0])))
        return None
    if mn == "strd" and len(ops) == 3:  # two words at [sp, #d] and [sp, #d+4] (glibc 2.41's calls of
        m = _ARM_MEM.match(ops[2])  # __syscall_cancel store its sixth argument and the number so)
        if m and arm_canon(m["base"]) == "sp":
            d = int(m["disp"], 0) if m["disp"] else 0
            at = 0 if m["wb"] else d  # (strd rA, rB, [sp, #-8]!: the pair at the new sp)
            if off in (at, at + 4):
                return ("move", ("r", arm_canon(ops[0] if off == at else ops[1])))
            return ("move", ("s", off + d)) if m["wb"] else None
        return None
    block = _arm_block(mn, ops)
    if block is not None and block[0] == "push":
        n = block[1]
        if off < 0:
            return ("unknown", "a slot below the stack pointer")
        if off < n:
            regs = _arm_list(ops)
            if mn == "vpush" or any(r.startswith("d") for r in regs):
                return ("unknown", "a saved VFP register")
            return ("move", ("r", regs[off // 4]))
        return ("move", ("s", off - n))
    if block is not None:  # pop: the slot was off + n above the stack pointer before
        return ("move", ("s", off + block[1]))
    if mn == "ldr" and len(ops) == 3 and ops[1] == "[sp]" and num(ops[2]) is not None:
        return ("move", ("s", off + (num(ops[2]) or 0)))  # post-index (ldr rX, [sp], #4: a pop of one)
    if mn == "ldr" and len(ops) == 2 and (m := _ARM_MEM.match(ops[1])) and m["wb"] and \
            arm_canon(m["base"]) == "sp":  # pre-index with writeback: sp moves by d
        return ("move", ("s", off + (int(m["disp"], 0) if m["disp"] else 0)))
    if ops and arm_canon(ops[0]) == "sp":
        k2 = num(ops[-1])
        if k2 is None:
            return ("unknown", f"{mn} of the stack pointer")
        k = k2
        if mn in ("sub", "subs"):
            return ("move", ("s", off - k))
        if mn in ("add", "adds"):
            return ("move", ("s", off + k))
        return ("unknown", f"{mn} of the stack pointer")
    return None


# ---------------------------------------------------------------- RISC ISAs without capstone register lists


_RISC_MEM = re.compile(r"^(?P<disp>-?0x[0-9a-f]+|-?\d+)?\((?P<base>[%$\w]+)\)$")
_STORES = re.compile(
    r"^(s[bhwd]|c\.s[dw]|c\.s[dw]sp|st[bhwd]u?x?|stdu|stw|stmg|stg|st|sty|sh|sb|sd|sw|swc1|sdc1|fs[dw]|st\.[bhwd]|stptr\.[wd])$"
)
_NO_DST = re.compile(r"^(b|j|c\.j|beq|bne|blt|bge|bltu|bgeu|bnez|beqz|c\.beqz|c\.bnez|ret|c\.jr|jr|cmp\w*|"
                     r"cr\w*|tw|td|mtspr|mtlr|mtctr|sync|isync|lwsync|fence|nop|c\.nop|ecall|ebreak|sc|scv|svc|"
                     r"syscall|break|ch\w*|cl\w*|t[mn]\w*|bc\w*|bdnz\w*|bl[rtea]*|jg\w*|j\w*|b[a-z]*|brc\w*|bras\w*|"
                     r"ltgr|ltr|ltg|ltgfr)$")  # fmt: skip


def risc_canon_factory(prefix: str = "") -> Callable[[str], str]:
    def canon(r: str) -> str:
        r = r.strip()
        marked = r[:1] in ("%", "$")
        r = r.lstrip("%$")
        if prefix and marked and r.isdigit():
            return prefix + r
        return {"x0": "zero", "fp": "s0", "s8": "fp", "r31": "r31"}.get(r, r) if not prefix else r

    return canon


def risc_effect(isa: ISA, i: Insn, loc: Loc) -> Effect:
    """RISC-V, PowerPC, s390x, MIPS and LoongArch: the destination is the first operand of every
    instruction that has one; the few forms that give a constant, a move or an add are understood."""
    mn, ops = i.mnemonic, [isa.canon(o) if not _RISC_MEM.match(o) else o for o in i.ops]
    if i.kind == "call":
        return None if loc[0] == "s" or loc[1] in isa.c_saved else ("unknown", "call")
    if i.kind == "trap":
        return ("unknown", "previous system call") if loc == ("r", isa.result) else None
    if loc[0] == "s":
        return _risc_stack_effect(isa, mn, ops, loc[1])
    reg = loc[1]
    if not ops or _NO_DST.match(mn) or _STORES.match(mn) or ops[0] != reg:
        return None
    base = mn.removeprefix("c.")
    vals = [num(o) for o in ops]
    if base in ("li", "lghi", "lhi", "lgfi", "lli", "llill") and vals[-1] is not None and len(ops) == 2:
        return ("const", vals[-1])
    if base in ("lui", "lu12i.w") and vals[1] is not None:
        return ("const", _sext32(vals[1] << 12))
    if base in ("lis",) and vals[1] is not None:
        return ("const", _sext32(vals[1] << 16))
    if (
        base in ("addi", "addiw", "addiu", "daddiu", "daddi", "addi.d", "addi.w", "ori", "la", "aghi", "ahi")
        and len(ops) == 3
    ):
        k = vals[2]
        src = ops[1]
        if k is None:
            return ("unknown", mn)
        fn: Callable[[int], int] = (lambda x: x | k) if base == "ori" else (lambda x: x + k)
        ppc_li = isa.name.startswith("ppc") and src == "r0" and base == "addi"  # addi rD, 0, imm reads 0, not r0
        if ppc_li or (src == "zero" and not isa.name.startswith(("ppc", "s390"))):
            return ("const", fn(0))
        return ("xform", fn, ("r", src))
    if base in ("la", "lay", "lghi") and len(ops) == 2 and vals[1] is not None:
        return ("const", vals[1])
    if base in ("mv", "move", "mr", "lgr", "lr", "sext.w", "lgfr", "llgfr") and len(ops) == 2:
        return ("move", ("r", ops[1]))
    if base in ("or", "addu", "daddu", "add", "add.d", "or.d") and len(ops) == 3 and "zero" in ops[1:]:
        other = ops[2] if ops[1] == "zero" else ops[1]
        return ("move", ("r", other))
    if base in ("ld", "lw", "lg", "l", "ldsp", "lwsp", "ld.d", "ld.w", "lgf", "ly") and len(ops) == 2:
        m = _RISC_MEM.match(i.ops[1])
        if m and isa.canon(m["base"]) == isa.sp:
            return ("move", ("s", int(m["disp"], 0) if m["disp"] else 0))
    if base in ("ldsp", "lwsp") and len(ops) == 2:
        m = _RISC_MEM.match(i.ops[1])
        if m:
            return ("move", ("s", int(m["disp"], 0) if m["disp"] else 0))
    return ("unknown", mn)


def _risc_stack_effect(isa: ISA, mn: str, ops: list[str], off: int) -> Effect:
    base = mn.removeprefix("c.")
    if base in ("mvghi", "mvhi") and len(ops) == 2:  # s390x: store an immediate
        m = _RISC_MEM.match(ops[0])
        if m and isa.canon(m["base"]) == isa.sp and (int(m["disp"], 0) if m["disp"] else 0) == off:
            return ("const", num(ops[1]))
        return None
    if _STORES.match(mn) and len(ops) >= 2:
        m = _RISC_MEM.match(ops[-1])
        if m and isa.canon(m["base"]) == isa.sp:
            d = int(m["disp"], 0) if m["disp"] else 0
            if base in ("stdu", "stwu"):  # PowerPC: store and move the stack pointer
                return ("move", ("r", ops[0])) if off == 0 else ("move", ("s", off + d))
            if d == off:
                return ("move", ("r", ops[0]))
        return None
    if ops and ops[0] == isa.sp:
        k = num(ops[-1])
        if base in ("addi", "addiu", "daddiu", "daddi", "addi.d", "aghi", "addi16sp") and k is not None:
            return ("move", ("s", off + k))
        if base in ("lay",) and len(ops) == 2:
            m = _RISC_MEM.match(ops[1])
            if m and isa.canon(m["base"]) == isa.sp:
                return ("move", ("s", off + (int(m["disp"], 0) if m["disp"] else 0)))
        if _NO_DST.match(mn) or _STORES.match(mn):
            return None
        return ("unknown", f"{mn} of the stack pointer")
    return None


def _sext32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v
