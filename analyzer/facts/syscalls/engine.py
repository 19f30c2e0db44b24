"""Find every system-call site of an ELF file and resolve its number.

1. Sites: the trap encodings of the ABI are searched for in the code bytes with one regular expression per
   region (C speed); each hit is kept only when decoding its function from the start (or from an
   instruction boundary before it) lands on it, so bytes inside another instruction or in data between
   functions that happen to match are not sites.
2. Numbers: a backward slice from the site over the function's instructions (predecessors from the
   direct branches inside the decoded window), following the number register across moves, stack
   spills and reloads, and folding constants, movk/movt/lui+addi/lis+ori and add/or immediates.
3. Wrappers: a slice that reaches the function's entry in a parameter location (a register or a stack
   slot) makes the function a wrapper; its number is resolved at each direct call (and tail call) of it,
   in the caller, to a fixpoint, so chains such as Go's syscall.Syscall -> RawSyscall6 ->
   internal/runtime/syscall.Syscall6 and C's syscall() -> __syscall_cp are followed.
An unresolved site is counted and reported with its function, never guessed.
"""

from __future__ import annotations

import bisect
import re
import time
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from analyzer.facts.syscalls import isa as I
from analyzer.facts.syscalls.code import Code, Function

WINDOW = 160  # instructions decoded before a site or call, at most
MAX_STEPS = 4000  # backward-slice steps per site
MAX_VALUES = 64  # distinct numbers one site may resolve to
MAX_ROUNDS = 8  # wrapper-of-wrapper depth


@dataclass(frozen=True)
class Arch:
    isa: I.ISA
    cs: tuple[int, int] | None  # capstone (arch, mode); None: decoded here (LoongArch)
    traps: tuple[tuple[bytes, int, str], ...]  # (regex, alignment, instruction text)
    calls: tuple[tuple[bytes, int], ...]  # direct call / tail-call encodings: (regex, alignment)
    width: int = 0  # fixed instruction width (0: variable)
    thumb_cs: tuple[int, int] | None = None


@dataclass
class Site:
    address: int
    function: str
    instruction: str
    abi: str  # the numbering table the trap uses
    numbers: set[int] = field(default_factory=set)
    how: str = ""  # "constant", "immediate", "wrapper", "call", "unresolved"
    complete: bool = True  # every path was resolved
    wrapper: str | None = None  # for call sites: the wrapper called
    kind: str = "trap"  # "trap" or "call"
    imm: int | None = None  # the trap's immediate (svc #n)
    params: set[tuple[str, Any]] = field(default_factory=set)  # a wrapper's: where its number arrives


def _x86_arch(bits: int) -> Arch:
    import capstone as cs

    ptr = 8 if bits == 64 else 4
    traps: tuple[tuple[bytes, int, str], ...]
    sp = "rsp"
    if bits == 64:
        isa = I.ISA(
            "x86_64",
            "rax",
            "rax",
            sp,
            ("rdi", "rsi", "rdx", "rcx", "r8", "r9"),
            ("rax", "rbx", "rcx", "rdi", "rsi", "r8", "r9", "r10", "r11"),
            frozenset({"rbx", "rbp", "r12", "r13", "r14", "r15", "rsp"}),
            ptr,
            I.x86_canon,
            I.x86_effect,
            # a seventh argument on, above the return address: glibc 2.41's __syscall_cancel(a1..a6, nr) takes
            # the number of every cancellable call (connect, clock_nanosleep, copy_file_range...) there
            stack_params_from=8,
        )
        traps = ((rb"\x0f\x05", 1, "syscall"), (rb"\xcd\x80", 1, "int 0x80"), (rb"\x0f\x34", 1, "sysenter"))
    else:
        isa = I.ISA(
            "i386",
            "rax",
            "rax",
            sp,
            (),
            (),
            frozenset({"rbx", "rbp", "rsi", "rdi", "rsp"}),
            ptr,
            I.x86_canon,
            I.x86_effect,
            stack_params_from=0,  # C passes every argument on the stack
            helper_params=("rax",),  # __libc_do_syscall (six arguments) takes the number in eax
        )
        traps = (
            (rb"\xcd\x80", 1, "int 0x80"),
            (rb"\x0f\x34", 1, "sysenter"),
            (rb"\x0f\x05", 1, "syscall"),
            (rb"\x65\xff\x15\x10\x00\x00\x00", 1, "call gs:[0x10]"),
        )
    return Arch(isa, (cs.CS_ARCH_X86, cs.CS_MODE_64 if bits == 64 else cs.CS_MODE_32), traps,
                ((rb"[\xe8\xe9]", 1),))  # fmt: skip


def arch_for(abi: str, little: bool) -> Arch | None:
    from analyzer.budget import imported

    cs = imported("capstone")  # (the first use of capstone: its import is not counted against a time budget)

    e = cs.CS_MODE_LITTLE_ENDIAN if little else cs.CS_MODE_BIG_ENDIAN
    if abi in ("x86_64", "x32"):
        return _x86_arch(64)
    if abi == "i386":
        return _x86_arch(32)
    if abi == "aarch64":
        isa = I.ISA(
            "aarch64",
            "x8",
            "x0",
            "sp",
            tuple(f"x{n}" for n in range(8)),
            tuple(f"x{n}" for n in range(16)),
            frozenset({f"x{n}" for n in range(19, 30)} | {"sp"}),
            0,
            I.a64_canon,
            I.a64_effect,
        )
        # svc #imm: 0xd4000001 | imm16 << 5; bl / b: 0x94000000 / 0x14000000 | imm26
        svc = rb"[\x01\x21\x41\x61\x81\xa1\xc1\xe1][\x00-\xff][\x00-\x1f]\xd4"
        return Arch(isa, (cs.CS_ARCH_ARM64, cs.CS_MODE_ARM), ((svc, 4, "svc"),),
                    ((rb"[\x00-\xff]{3}[\x94-\x97\x14-\x17]", 4),), 4)  # fmt: skip
    if abi in ("arm", "armoabi"):
        isa = I.ISA(
            abi,
            "r7",
            "r0",
            "sp",
            ("r0", "r1", "r2", "r3"),
            (),
            frozenset({"r4", "r5", "r6", "r7", "r8", "r9", "r10", "r11", "sp"}),
            0,
            I.arm_canon,
            I.arm_effect,
            stack_params_from=0,
            helper_params=("r12",),  # Thumb's __libc_do_syscall takes the number in ip (r7 is the frame pointer)
        )
        return Arch(isa, (cs.CS_ARCH_ARM, cs.CS_MODE_ARM),
                    ((rb"\x00\x00\x00\xef", 4, "svc #0"),
                     (rb"[\x00-\xff][\x00-\x07][\x90\x9f]\xef", 4, "svc #0x9000nn"),
                     (rb"\x00\xdf", 2, "svc (thumb)")),
                    ((rb"[\x00-\xff]{3}[\x0b\x1b\x2b\x3b\x4b\x5b\x6b\x7b\x8b\x9b\xab\xbb\xcb\xdb\xeb\xfa\xfb\xea]", 4),
                     (rb"[\x00-\xff][\xf0-\xf7][\x00-\xff][\xd0-\xff]", 2)), 0,
                    (cs.CS_ARCH_ARM, cs.CS_MODE_THUMB))  # fmt: skip
    if abi == "riscv64":
        isa = I.ISA(
            "riscv64",
            "a7",
            "a0",
            "sp",
            tuple(f"a{n}" for n in range(8)),
            (*(f"a{n}" for n in range(8)), "s1", *(f"s{n}" for n in range(2, 8))),
            frozenset({f"s{n}" for n in range(12)} | {"sp"}),
            0,
            I.risc_canon_factory(),
            I.risc_effect,
        )
        mode = cs.CS_MODE_RISCV64 | cs.CS_MODE_RISCVC
        return Arch(isa, (cs.CS_ARCH_RISCV, mode), ((rb"\x73\x00\x00\x00", 2, "ecall"),),
                    ((rb"[\xef\x6f][\x00-\xff]{3}", 2), (rb"[\x97][\x00-\xff]{3}", 2)), 0)  # fmt: skip
    if abi in ("ppc64", "ppc"):
        isa = I.ISA(
            abi,
            "r0",
            "r3",
            "r1",
            tuple(f"r{n}" for n in range(3, 11)),
            (*(f"r{n}" for n in range(3, 11)), "r14", "r15", "r16", "r17"),
            frozenset({f"r{n}" for n in range(14, 32)} | {"r1", "r2"}),
            0,
            I.risc_canon_factory(),
            I.risc_effect,
        )
        sc = (rb"\x02\x00\x00\x44", rb"\x01\x00\x00\x44") if little else (rb"\x44\x00\x00\x02", rb"\x44\x00\x00\x01")
        bl = rb"[\x00-\xff]{3}[\x48-\x4b]" if little else rb"[\x48-\x4b][\x00-\xff]{3}"
        mode = (cs.CS_MODE_64 if abi == "ppc64" else cs.CS_MODE_32) | e
        return Arch(isa, (cs.CS_ARCH_PPC, mode), ((sc[0], 4, "sc"), (sc[1], 4, "scv 0")), ((bl, 4),), 4)
    if abi in ("s390x", "s390"):
        isa = I.ISA(
            abi,
            "r1",
            "r2",
            "r15",
            ("r2", "r3", "r4", "r5", "r6"),
            ("r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9"),
            frozenset({f"r{n}" for n in range(6, 16)}),
            0,
            I.risc_canon_factory("r"),
            I.risc_effect,
        )
        return Arch(
            isa,
            (cs.CS_ARCH_SYSZ, cs.CS_MODE_BIG_ENDIAN),
            ((rb"\x0a[\x00-\xff]", 2, "svc"),),
            ((rb"\xc0[\x05\x15\x25\x35\x45\x55\x65\x75\x85\x95\xa5\xb5\xc5\xd5\xe5\xf5][\x00-\xff]{4}", 2),),
            0,
        )  # fmt: skip  brasl rN, rel32
    if abi in ("mipso32", "mipsn64", "mipsn32"):
        isa = I.ISA(abi, "v0", "v0", "sp", ("a0", "a1", "a2", "a3") if abi == "mipso32" else
                    tuple(f"a{n}" for n in range(8)), (), frozenset({f"s{n}" for n in range(9)} | {"sp", "gp", "fp"}),
                    0, I.risc_canon_factory(), I.risc_effect,
                    stack_params_from=16 if abi == "mipso32" else None)  # fmt: skip  o32: past a0-a3's home words
        sysc = rb"\x0c[\x00-\xff]{2}[\x00-\x03]" if little else rb"[\x00-\x03][\x00-\xff]{2}[\x0c\x4c\x8c\xcc]"
        jal = rb"[\x00-\xff]{3}[\x0c-\x0f]" if little else rb"[\x0c-\x0f][\x00-\xff]{3}"
        bal = rb"[\x00-\xff]{2}\x11\x04" if little else rb"\x04\x11[\x00-\xff]{2}"  # bgezal $zero: PIC's direct call
        mode = (cs.CS_MODE_MIPS64 if abi != "mipso32" else cs.CS_MODE_MIPS32) | e
        return Arch(isa, (cs.CS_ARCH_MIPS, mode), ((sysc, 4, "syscall"),), ((jal, 4), (bal, 4)), 4)
    if abi == "loongarch64":
        isa = I.ISA(
            abi,
            "a7",
            "a0",
            "sp",
            tuple(f"a{n}" for n in range(8)),
            tuple(f"a{n}" for n in range(8)),
            frozenset({f"s{n}" for n in range(9)} | {"sp", "fp"}),
            0,
            I.risc_canon_factory(),
            I.risc_effect,
        )
        return Arch(isa, None, ((rb"[\x00-\xff][\x00-\x7f]\x2b\x00", 4, "syscall"),),
                    ((rb"[\x00-\xff]{3}[\x54-\x57\x50-\x53]", 4),), 4)  # fmt: skip
    return None


# ---------------------------------------------------------------- decoding


@lru_cache(maxsize=16)
def _cs(arch: int, mode: int, detail: bool) -> Any:
    import capstone

    md = capstone.Cs(arch, mode)
    md.detail = detail
    md.skipdata = False
    return md


def _split_ops(text: str) -> list[str]:
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


_CALLS = {"call", "bl", "blx", "blr", "jal", "jalr", "c.jal", "c.jalr", "bctrl", "blrl", "brasl", "basr", "bras",
          "bal", "bgezal", "bltzal"}  # fmt: skip
_JUMPS = {"jmp", "b", "br", "bx", "j", "c.j", "jr", "c.jr", "ret", "c.ret", "blr", "bctr", "jg", "retq", "eret"}


def _kind(arch: Arch, mn: str, ops: list[str]) -> str:
    name = arch.isa.name
    base = mn.split(".")[0] if name in ("arm", "armoabi") and mn.startswith("b") and "." in mn else mn
    if name == "riscv64":
        if mn in ("jal", "jalr") and (len(ops) == 1 or ops[0] == "ra"):
            return "call"
        if mn in ("jal",) and ops and ops[0] == "zero":
            return "jump"
        if mn in ("jalr",) and ops and ops[0] == "zero":
            return "jump"
    if name in ("ppc64", "ppc") and mn == "blr":
        return "jump"
    if name in ("arm", "armoabi"):
        if base in ("bl", "blx"):
            return "call"
        if base in ("b", "bx") or (mn in ("pop", "ldm") and any("pc" in o for o in ops)):
            return "jump"
        if re.match(r"^(b|bx)(eq|ne|cs|hs|cc|lo|mi|pl|vs|vc|hi|ls|ge|lt|gt|le)$", base) or mn in ("cbz", "cbnz"):
            return "branch"
        return ""
    if name == "aarch64":
        if mn in ("bl", "blr"):
            return "call"
        if mn in ("b", "br", "ret"):
            return "jump"
        if mn.startswith("b.") or mn in ("cbz", "cbnz", "tbz", "tbnz"):
            return "branch"
        return ""
    if mn in _CALLS:
        return "call"
    if mn in _JUMPS:
        return "jump"
    if name in ("x86_64", "i386") and mn.startswith(("j", "loop")):
        return "branch"
    if name not in ("x86_64", "i386") and (mn.startswith(("b", "c.b")) or mn in ("beqz", "bnez")):
        return "branch"
    return ""


def _target(arch: Arch, insn_addr: int, mn: str, ops: list[str]) -> int | None:
    if not ops:
        return None
    v = I.num(ops[-1])
    if v is None:
        return None
    if arch.isa.name == "riscv64":
        return insn_addr + v
    return v & ((1 << 64) - 1)


def decode(arch: Arch, code: Code, start: int, end: int, thumb: bool = False, detail: bool = True) -> list[I.Insn]:
    """The instructions in [start, end) decoded from `start` (stops at the first undecodable bytes)."""
    data = code.read(start, end - start)
    if arch.cs is None:
        return list(_loongarch_decode(data, start))
    csa, mode = arch.thumb_cs if thumb and arch.thumb_cs else arch.cs
    md = _cs(csa, mode, detail)
    out: list[I.Insn] = []
    regs_list = detail and arch.isa.name in ("x86_64", "i386", "aarch64", "arm", "armoabi")
    canon = arch.isa.canon
    for ins in _disasm(md, data, start, _skip(arch, thumb)):
        if ins is None:  # bytes capstone does not know (a newer extension): a barrier for the slice
            continue
        if isinstance(ins, int):
            out.append(I.Insn(ins, _skip(arch, thumb), "(bad)", [], None, None, "", None))
            continue
        ops = _split_ops(ins.op_str)
        kind = _kind(arch, ins.mnemonic, ops)
        writes = None
        if regs_list:
            try:
                writes = frozenset(canon(ins.reg_name(r)) for r in ins.regs_access()[1])
            except Exception:  # noqa: BLE001 - capstone cannot say for this instruction
                writes = None
        target = _target(arch, ins.address, ins.mnemonic, ops) if kind in ("call", "jump", "branch") else None
        if kind == "call" and target is not None and arch.isa.name == "i386":
            thunk = _pc_thunk(code, target)
            if thunk:  # __x86.get_pc_thunk.REG: writes REG only (the address after the call), keeps the stack
                kind, writes = "thunk", frozenset((canon(thunk),))
        out.append(I.Insn(ins.address, ins.size, ins.mnemonic, ops, writes, target, kind, ins if detail else None,
                          thumb))  # fmt: skip
    return out


_I386_REGS = ("eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi")


def _pc_thunk(code: Code, target: int) -> str | None:
    """The register an i386 PIC thunk at `target` loads (`mov (%esp),%REG; ret`: gcc's __x86.get_pc_thunk.REG,
    also in stripped files), or None."""
    b = code.read(target, 4)
    if len(b) == 4 and b[0] == 0x8B and b[1] & 0xC7 == 0x04 and b[2] == 0x24 and b[3] == 0xC3:
        return _I386_REGS[(b[1] >> 3) & 7]
    return None


def _skip(arch: Arch, thumb: bool) -> int:
    """How far objdump moves past bytes it cannot decode: a word, a halfword (Thumb, s390x, RISC-V C), a byte."""
    if arch.width:
        return arch.width
    if arch.isa.name in ("arm", "armoabi") and not thumb:
        return 4  # (A32 is a word per instruction: a Thumb PLT stub, `bx pc; b.n`, before an ARM PLT entry)
    return 2 if thumb or arch.isa.name in ("s390x", "s390", "riscv64") else 1


def _disasm(md: Any, data: bytes, start: int, width: int) -> Iterator[Any]:
    """capstone's instructions; an undecodable unit is yielded as its address and decoding goes on after it,
    as objdump does (capstone 5 lacks some POWER10, z15 and vector instructions; data sits between
    functions)."""
    return units(md.disasm, data, start, width, lite=False)


PIECE = 1 << 16  # bytes handed to capstone at a time (not the rest of the code after each undecodable unit)
MAX_INSN = 16  # bytes: longer than any instruction of the ISAs decoded here (x86's 15)


def units(decode: Callable[[bytes, int], Iterator[Any]], data: bytes, start: int, width: int,
          lite: bool = True) -> Iterator[Any]:  # fmt: skip
    """What `decode` (capstone's disasm_lite, or disasm with `lite` False) gives for the code `data` at `start`,
    64 KiB at a time; with `width`, an undecodable unit is yielded as its address (an int) and decoding goes on
    `width` bytes after it, as objdump does; without, decoding ends there. (Each piece's end is no undecodable
    unit: decoding goes on from its last whole instruction.)"""
    pos, size = 0, len(data)
    while pos < size:
        last, end = pos, min(size, pos + PIECE)
        for ins in decode(data[pos:end], start + pos):
            yield ins
            last = (ins[0] + ins[1] if lite else ins.address + ins.size) - start
        if last >= size:
            return
        if end < size and last + MAX_INSN > end:
            pos = last
            continue
        if not width:
            return
        yield start + last
        pos = last + width


def boundaries(arch: Arch, code: Code, func: Function, upto: int) -> Iterator[tuple[int, int]]:
    """(address, size) of each instruction from the function's start up to `upto`, decoded fast."""
    if arch.width:
        for a in range(func.start, upto + 1, arch.width):
            yield a, arch.width
        return
    csa, mode = arch.thumb_cs if func.thumb and arch.thumb_cs else arch.cs  # type: ignore[misc]
    md = _cs(csa, mode, False)
    data = code.read(func.start, upto - func.start + 16)
    skip = _skip(arch, func.thumb)
    for d in units(md.disasm_lite, data, func.start, skip):
        a, size = (d, skip) if isinstance(d, int) else (d[0], d[1])
        yield a, size
        if a >= upto:
            return


# ---------------------------------------------------------------- LoongArch (capstone 5 has none)

_LA_REGS = ["zero", "ra", "tp", "sp", *(f"a{n}" for n in range(8)), *(f"t{n}" for n in range(9)), "r21", "fp",
            *(f"s{n}" for n in range(9))]  # fmt: skip


def _loongarch_decode(data: bytes, start: int) -> Iterator[I.Insn]:
    """Just the LoongArch instructions a slice needs; every other one keeps its destination register (rd),
    which the slice then treats as an unknown write. Stores and branches have no destination."""
    for k in range(0, len(data) - 3, 4):
        w = int.from_bytes(data[k : k + 4], "little")
        a = start + k
        rd, rj = _LA_REGS[w & 31], _LA_REGS[(w >> 5) & 31]
        si12 = (w >> 10) & 0xFFF
        si12 = si12 - 0x1000 if si12 & 0x800 else si12
        top6, top7, top10, top17 = w >> 26, w >> 25, w >> 22, w >> 15
        if w & 0xFFFF8000 == 0x002B0000:
            yield I.Insn(a, 4, "syscall", [hex(w & 0x7FFF)], kind="trap")
        elif top10 == 0x00A:  # addi.w
            yield I.Insn(a, 4, "addi.w", [rd, rj, str(si12)])
        elif top10 == 0x00B:  # addi.d
            yield I.Insn(a, 4, "addi.d", [rd, rj, str(si12)])
        elif top10 == 0x00E:  # ori (zero-extended immediate)
            yield I.Insn(a, 4, "ori", [rd, rj, str((w >> 10) & 0xFFF)])
        elif top7 == 0x0A:  # lu12i.w
            si20 = (w >> 5) & 0xFFFFF
            yield I.Insn(a, 4, "lu12i.w", [rd, str(si20 - (1 << 20) if si20 & 0x80000 else si20)])
        elif top17 == 0x2A:  # or rd, rj, rk
            yield I.Insn(a, 4, "or", [rd, rj, _LA_REGS[(w >> 10) & 31]])
        elif top10 == 0x0A3:  # ld.d
            yield I.Insn(a, 4, "ld.d", [rd, f"{si12}({rj})"])
        elif top10 == 0x0A7:  # st.d
            yield I.Insn(a, 4, "st.d", [rd, f"{si12}({rj})"])
        elif top6 in (0x14, 0x15):  # b / bl
            offs = ((w >> 10) & 0xFFFF) | ((w & 0x3FF) << 16)
            offs = offs - (1 << 26) if offs & (1 << 25) else offs
            yield I.Insn(a, 4, "bl" if top6 == 0x15 else "b", [hex(a + 4 * offs)], target=a + 4 * offs,
                         kind="call" if top6 == 0x15 else "jump")  # fmt: skip
        elif top6 == 0x13:  # jirl
            yield I.Insn(a, 4, "jirl", [rd, rj], kind="call" if rd == "ra" else "jump")
        elif top6 in (0x10, 0x11, 0x12, 0x16, 0x17, 0x18, 0x19, 0x1A, 0x1B):
            yield I.Insn(a, 4, "bcond", [], kind="branch")
        elif top10 in range(0x0A4, 0x0A8) or top10 in (0x0AD, 0x0AF) or (w >> 24) in (0x25, 0x27):
            yield I.Insn(a, 4, "st", [])
        else:
            yield I.Insn(a, 4, "op", [rd])


# ---------------------------------------------------------------- the backward slice


@dataclass
class Slice:
    values: set[int] = field(default_factory=set)
    params: set[tuple[str, Any]] = field(default_factory=set)  # locations live at the function's entry
    unknown: list[str] = field(default_factory=list)
    cut: bool = False  # a path reached the start of a window that is not the function's entry


def slice_back(arch: Arch, code: Code, insns: list[I.Insn], at: int, loc: I.Loc, entry: bool = True) -> Slice:
    """Follow `loc` backwards from instruction index `at` (exclusive) to its definitions. `entry`: the
    first instruction is the function's entry (else reaching it is a cut window, not a parameter)."""
    out = Slice()
    index = {ins.address: k for k, ins in enumerate(insns)}
    preds: dict[int, list[int]] = {}
    for k, ins in enumerate(insns):
        if ins.kind in ("jump", "branch") and ins.target is not None and ins.target in index:
            preds.setdefault(index[ins.target], []).append(k)
    effect = arch.isa.effect
    todo: list[tuple[int, I.Loc, tuple[Any, ...]]] = [(at, loc, ())]
    seen: set[tuple[int, I.Loc, int]] = set()
    steps = 0
    while todo:
        k, where, xforms = todo.pop()
        steps += 1
        if steps > MAX_STEPS or len(out.values) > MAX_VALUES:
            out.unknown.append("too many paths")
            break
        key = (k, where, len(xforms))
        if key in seen:
            continue
        seen.add(key)
        # predecessors of instruction k: the one before (unless it does not fall through) and branches to k
        before = []
        if k > 0 and insns[k - 1].kind != "jump":
            before.append(k - 1)
        before += preds.get(k, [])
        if k == 0 or (not before and k < len(insns) and insns[0].address == insns[k].address):
            if entry:
                out.params.add(where)
            else:
                out.cut = True
                out.unknown.append("the decoded window ends")
            continue
        if not before:
            out.unknown.append("unreachable code before the site")
            continue
        for p in before:
            if insns[p].mnemonic == "(bad)":
                out.unknown.append("undecodable instruction")
                continue
            eff = effect(arch.isa, insns[p], where)
            if eff is None:
                todo.append((p, where, xforms))
            elif eff[0] == "const":
                out.values.add(_apply(eff[1], xforms))
            elif eff[0] == "move":
                todo.append((p, eff[1], xforms))
            elif eff[0] == "xform":
                todo.append((p, eff[2], (eff[1], *xforms)))
            elif eff[0] == "literal":
                v = code.word(eff[1], eff[2])
                if v is None:
                    out.unknown.append("literal outside the file")
                else:
                    out.values.add(_apply(v, xforms))
            else:
                out.unknown.append(eff[1])
    return out


def _apply(v: int, xforms: tuple[Any, ...]) -> int:
    for fn in xforms:  # in program order: the earliest-found transform came last
        v = fn(v)
    return v


# ---------------------------------------------------------------- the analysis


@dataclass
class Result:
    sites: list[Site]
    wrappers: dict[str, list[str]]  # function -> parameter locations
    budget_hit: bool = False


def _window(arch: Arch, code: Code, func: Function, site: int, size: int, n: int = WINDOW) -> list[I.Insn] | None:
    """The decoded instructions of `func` from a boundary at most WINDOW instructions before `site`, ending
    with the instruction at `site`; None when decoding from the function's start does not land on it."""
    if arch.width:
        if (site - func.start) % arch.width:
            return None
        first = max(func.start, site - n * arch.width)
    else:
        starts = _starts(arch, code, func, site)
        k = bisect.bisect_left(starts, site)
        if k == len(starts) or starts[k] != site:
            return None
        first = starts[max(0, k + 1 - n)]
    insns = decode(arch, code, first, site + size, func.thumb)
    while insns and insns[-1].address > site:
        insns.pop()
    if not insns or insns[-1].address != site:
        return None
    return insns


LARGE = 1 << 12  # bytes: a function this long is decoded once and its instruction starts kept


def _starts(arch: Arch, code: Code, func: Function, site: int) -> Sequence[int]:
    """Instruction starts of `func` up to `site` (all of them for a large function, decoded once: stripped
    static programs are one function of megabytes, with hundreds of sites; and for a small function at its
    second site: a function of traps every few bytes was decoded again from its start for each)."""
    if func.start in code.insn_starts:
        return code.insn_starts[func.start]
    if func.end - func.start < LARGE and func.start not in code.small_seen:
        code.small_seen.add(func.start)
        out = []
        for a, _ in boundaries(arch, code, func, site):
            out.append(a)
            if a >= site:
                break
        return out
    cache = code.insn_starts
    if func.start not in cache:
        cache[func.start] = array("Q", (a for a, _ in boundaries(arch, code, func, func.end - 1)))
    return cache[func.start]


def analyze(arch: Arch, code: Code, go: bool, deadline: float,
            imported: dict[int, set[tuple[str, Any]]] | None = None) -> Result:
    """The trap sites and the calls of wrappers; `imported`: PLT entries of wrappers another object defines (the
    C library's syscall(), its number in the first argument) -> where their number arrives, resolved at every
    call here as this program's own wrappers are."""
    sites: list[Site] = []
    wrappers: dict[int, set[tuple[str, Any]]] = {k: set(v) for k, v in (imported or {}).items()}
    if code.extra_starts != set(wrappers):  # (calls of them are indexed too: an index made without them is stale)
        code.extra_starts, code.call_index = set(wrappers), None
    budget_hit = False
    site_funcs: dict[int, Function] = {}
    for region in code.regions:
        blob = code.read(region.vaddr, region.size)
        for pattern, align, text in arch.traps:
            for at in _matches(pattern, blob):
                if time.monotonic() > deadline:
                    budget_hit = True
                    break
                addr = region.vaddr + at
                if addr % align:
                    continue
                func = code.function_of(addr)
                if func is None:
                    continue
                site = _trap_site(arch, code, func, addr, text, go)
                if site is None:
                    continue
                sites.append(site)
                site_funcs[addr] = func
                if site.how == "wrapper":
                    wrappers.setdefault(func.start, set()).update(site.params)
    sites.sort(key=lambda s: s.address)
    # wrappers: resolve the number at every direct call, to a fixpoint
    done: set[int] = set()
    for _ in range(MAX_ROUNDS):
        new = {w: p for w, p in wrappers.items() if w not in done}
        if not new or budget_hit:
            break
        done.update(new)
        for caller_site in _calls_to(arch, code, new, go, deadline):
            if caller_site is None:
                budget_hit = True
                break
            site, params, func = caller_site
            sites.append(site)
            if params:
                wrappers.setdefault(func.start, set()).update(params)
    names = {f.start: f.name for f in code.functions}
    own = {a: p for a, p in wrappers.items() if a not in (imported or {})}  # (another object's are not this one's)
    return Result(sorted(sites, key=lambda s: (s.address, s.kind)),
                  {names.get(a, hex(a)): sorted(f"{k}:{v}" for k, v in p) for a, p in sorted(own.items())},
                  budget_hit)  # fmt: skip


_LITERAL = re.compile(rb"(?:\\x[0-9a-f]{2})+")


def _matches(pattern: bytes, blob: bytes) -> Iterator[int]:
    """Every offset where `pattern` (a regular expression) matches, overlapping ones too; a pattern of plain
    bytes (`\\x0f\\x05`) is searched with bytes.find, several times faster than a lookahead."""
    if _LITERAL.fullmatch(pattern):
        literal = bytes.fromhex(pattern.replace(b"\\x", b"").decode())
        at = blob.find(literal)
        while at >= 0:
            yield at
            at = blob.find(literal, at + 1)
        return
    for m in re.finditer(b"(?=" + pattern + b")", blob):
        yield m.start()


SHORT = 24  # instructions decoded first before a site: most numbers are set just before it


def sliced(arch: Arch, code: Code, func: Function, addr: int, size: int, loc: Callable[[list[I.Insn]], list[I.Loc]]
           ) -> tuple[list[I.Insn], list[Slice]] | None:  # fmt: skip
    """The instructions before `addr` and the slices of the locations `loc(insns)` gives, from a short window
    first and the full one when a slice runs out of it."""
    for n in (SHORT, WINDOW):
        insns = _window(arch, code, func, addr, size, n)
        if insns is None:
            return None
        entry = insns[0].address == func.start
        slices = [slice_back(arch, code, insns, len(insns) - 1, at, entry) for at in loc(insns)]
        if entry or not any(sl.cut for sl in slices) or n == WINDOW:
            return insns, slices
    return None


def _trap_site(arch: Arch, code: Code, func: Function, addr: int, text: str, go: bool) -> Site | None:
    isa = arch.isa
    thumb = text == "svc (thumb)"
    if arch.isa.name in ("arm", "armoabi") and thumb != func.thumb:
        return None
    size = {"syscall": 2 if isa.name in ("x86_64", "i386") else 4, "int 0x80": 2, "sysenter": 2, "call gs:[0x10]": 7,
            "svc (thumb)": 2, "svc": 2 if isa.name.startswith("s390") else 4}.get(text, 4)  # fmt: skip
    insns = _window(arch, code, func, addr, size, 1)
    if insns is None:
        return None
    trap = insns[-1]
    abi = isa.name
    site = Site(addr, func.name, f"{trap.mnemonic} {', '.join(trap.ops)}".strip(), abi)
    if text in ("int 0x80", "sysenter") and isa.name == "x86_64":
        site.abi = "i386"
    imm = I.num(trap.ops[0]) if trap.ops else None
    site.imm = imm
    if isa.name.startswith("s390") and imm:
        site.numbers, site.how = {imm}, "immediate"
        return site
    if isa.name in ("arm", "armoabi") and imm and imm >= 0x900000:
        site.numbers, site.how, site.abi = {imm}, "immediate", "armoabi"
        return site

    def mark(window: list[I.Insn]) -> list[I.Loc]:
        window[-1].kind = "trap"
        return [("r", isa.number)]

    got = sliced(arch, code, func, addr, size, mark)
    if got is None:
        return None
    sl = got[1][0]
    site.numbers = sl.values
    params = {p for p in sl.params if _is_param(arch, p, func, go, code)}
    if params:
        site.how = "wrapper"
        site.params = params
    elif sl.values:
        site.how = "constant"
    else:
        site.how = "unresolved"
    site.complete = not sl.unknown and len(params) == len(sl.params)
    return site


# Go's register ABI (ABIInternal) and the Go 1.N that turned it on: amd64 1.17, arm64 and ppc64 1.18,
# riscv64 1.19, loong64 1.22 (go.dev/doc/go1.17 ... go1.22 release notes); the others pass on the stack
REGABI = {"x86_64": 17, "aarch64": 18, "ppc64": 18, "riscv64": 19, "loongarch64": 22}


def _is_param(arch: Arch, loc: tuple[str, Any], func: Function, go: bool, code: Code | None = None) -> bool:
    """Whether `loc` at the entry of `func` holds one of its parameters, under the function's convention:
    Go's register ABI (ABIInternal), Go's stack ABI0 (assembly bodies named `.abi0`, and every Go function
    on the architectures without the register ABI), or the platform's C ABI (i386: on the stack)."""
    isa = arch.isa
    stack = loc[0] == "s" and isinstance(loc[1], int) and 0 <= loc[1] < 4096
    if go and "." in func.name and not func.name.startswith((".", "_")):
        minor = code.go_minor if code is not None else None
        regabi = isa.name in REGABI and (minor is None or minor >= REGABI[isa.name])
        either = (code.either if code is not None else set()) | (set() if minor is not None else {func.name})
        if regabi and not func.name.endswith(".abi0") and func.name not in either:
            return loc[0] == "r" and loc[1] in isa.go_params
        return stack or (loc[0] == "r" and loc[1] in isa.go_params)  # assembly stubs may take registers
    if stack:
        return isa.stack_params_from is not None and loc[1] >= isa.stack_params_from
    return loc[0] == "r" and (loc[1] in isa.c_params or loc[1] in isa.helper_params)


def _call_index(arch: Arch, code: Code, deadline: float) -> dict[int, list[int]] | None:
    """Function start -> the addresses of the direct calls and jumps to it (candidates from the encodings,
    checked later by decoding): built once per binary, for every round of the wrapper fixpoint."""
    if code.call_index is not None:
        return code.call_index
    starts = {f.start for f in code.functions} | code.extra_starts
    index: dict[int, list[int]] = {}
    ppc = arch.isa.name == "ppc64"
    arm = arch.isa.name in ("arm", "armoabi")
    for region in code.regions:
        blob = code.read(region.vaddr, region.size)
        if arch.isa.name in ("x86_64", "i386"):
            _x86_call_index(blob, region.vaddr, starts, index)
            continue
        for pattern, align in arch.calls:
            for m in re.finditer(b"(?=" + pattern + b")", blob):
                at = m.start()
                addr = region.vaddr + at
                if addr % align:
                    continue
                if arm:  # each encoding read as its own: a 4-aligned Thumb BL can look like an A32 BLX
                    raw = blob[at : at + 4]
                    target = _a32_call_target(addr, raw, at) if align == 4 else _thumb_call_target(addr, raw)
                else:
                    target = _call_target(arch, addr, blob, at)
                if target is None:
                    continue
                if ppc and target not in starts:
                    target -= 8  # ELFv2: a call inside the module enters after the TOC setup
                if target in starts:
                    index.setdefault(target, []).append(addr)
            if time.monotonic() > deadline:
                return None
    if arm:  # (an address read both ways to the same target once; callers in address order, as elsewhere)
        index = {t: sorted(set(callers)) for t, callers in index.items()}
    code.call_index = index
    return index


def _x86_call_index(blob: bytes, base: int, starts: set[int], index: dict[int, list[int]]) -> None:
    """x86 `call rel32` / `jmp rel32` candidates: the rel32 words read through four int32 views of the bytes
    (one per alignment), so each candidate costs an index and an add, not a bytes slice."""
    views = [memoryview(blob[k : k + (len(blob) - k) // 4 * 4]).cast("i") for k in range(4)]
    for opcode in (b"\xe8", b"\xe9"):
        at = blob.find(opcode)
        while at >= 0:
            k = (at + 1) % 4
            i = (at + 1 - k) // 4
            view = views[k]
            if i < len(view):
                target = base + at + 5 + view[i]
                if target in starts:
                    index.setdefault(target, []).append(base + at)
            at = blob.find(opcode, at + 1)


def _calls_to(arch: Arch, code: Code, wrappers: dict[int, set[tuple[str, Any]]], go: bool, deadline: float
              ) -> Iterator[tuple[Site, set[tuple[str, Any]], Function] | None]:  # fmt: skip
    names = {f.start: f.name for f in code.functions} | code.extra_names
    index = _call_index(arch, code, deadline)
    if index is None:
        yield None
        return
    for target in sorted(wrappers):
        through = set(code.extra_calls.get(target, ()))  # (calls through the wrapper's GOT slot: -fno-plt)
        for addr in [*index.get(target, ()), *sorted(through)]:
            if time.monotonic() > deadline:
                yield None
                return
            func = code.function_of(addr)
            if func is None:
                continue
            insns = _window(arch, code, func, addr, 8, 1)
            if insns is None or insns[-1].kind not in ("call", "jump"):
                continue
            if addr not in through and insns[-1].target not in (target, target + 8):
                continue
            call = insns[-1]
            tail = call.kind == "jump"
            locs = [("s", loc[1] - (0 if tail else arch.isa.call_push)) if loc[0] == "s" else loc
                    for loc in sorted(wrappers[target])]  # fmt: skip
            got = sliced(arch, code, func, addr, 8, lambda _, locs=locs: locs)  # type: ignore[misc]
            if got is None:
                continue
            values: set[int] = set()
            params: set[tuple[str, Any]] = set()
            unknown: list[str] = []
            for sl in got[1]:
                values |= sl.values
                params |= {p for p in sl.params if _is_param(arch, p, func, go, code)}
                unknown += sl.unknown + [f"{p}" for p in sl.params if not _is_param(arch, p, func, go, code)]
            how = "call" if values else "wrapper" if params else "unresolved"
            site = Site(
                addr,
                func.name,
                f"{call.mnemonic} {names.get(target, hex(target))}",
                arch.isa.name,
                values,
                how,
                not unknown,
                names.get(target, hex(target)),
                "call",
            )
            yield site, params, func


def _call_target(arch: Arch, addr: int, blob: bytes, at: int) -> int | None:
    name = arch.isa.name
    raw = blob[at : at + 8]
    if name in ("x86_64", "i386"):
        if len(raw) < 5:
            return None
        rel = int.from_bytes(raw[1:5], "little", signed=True)
        return addr + 5 + rel
    if name == "aarch64":
        w = int.from_bytes(raw[:4], "little")
        imm = w & 0x3FFFFFF
        return addr + 4 * (imm - (1 << 26) if imm & (1 << 25) else imm)
    if name == "riscv64":
        w = int.from_bytes(raw[:4], "little")
        if w & 0x7F == 0x6F:  # jal
            imm = ((w >> 31) & 1) << 20 | ((w >> 12) & 0xFF) << 12 | ((w >> 20) & 1) << 11 | ((w >> 21) & 0x3FF) << 1
            return addr + (imm - (1 << 21) if imm & (1 << 20) else imm)
        if w & 0x7F == 0x17 and len(raw) >= 8:  # auipc rd, hi; jalr rd2, lo(rd)
            w2 = int.from_bytes(raw[4:8], "little")
            if w2 & 0x707F == 0x67 and (w2 >> 15) & 31 == (w >> 7) & 31:
                hi = w & 0xFFFFF000
                hi = hi - (1 << 32) if hi & 0x80000000 else hi
                lo = w2 >> 20
                lo = lo - 0x1000 if lo & 0x800 else lo
                return addr + hi + lo
        return None
    if name in ("ppc64", "ppc"):
        w = int.from_bytes(raw[:4], "little" if _le(arch) else "big")
        li = w & 0x3FFFFFC
        li = li - (1 << 26) if li & (1 << 25) else li
        return (addr if not w & 2 else 0) + li
    if name.startswith("s390"):
        rel = int.from_bytes(raw[2:6], "big", signed=True)
        return addr + 2 * rel
    if name.startswith("mips"):
        w = int.from_bytes(raw[:4], "little" if _le(arch) else "big")
        if w >> 16 == 0x0411:  # bal: relative to the delay slot
            imm = w & 0xFFFF
            return addr + 4 + 4 * (imm - 0x10000 if imm & 0x8000 else imm)
        return ((addr + 4) & ~0x0FFFFFFF) | ((w & 0x3FFFFFF) << 2)
    if name == "loongarch64":
        w = int.from_bytes(raw[:4], "little")
        offs = ((w >> 10) & 0xFFFF) | ((w & 0x3FF) << 16)
        return addr + 4 * (offs - (1 << 26) if offs & (1 << 25) else offs)
    if name in ("arm", "armoabi"):
        return _a32_call_target(addr, raw, at) or _thumb_call_target(addr, raw)
    return None


def _a32_call_target(addr: int, raw: bytes, at: int) -> int | None:
    """An A32 BL / BLX imm's target, or None."""
    if at % 4 == 0 and len(raw) >= 4 and (raw[3] & 0x0F) in (0x0A, 0x0B):
        imm = int.from_bytes(raw[:3], "little")
        imm = imm - (1 << 24) if imm & (1 << 23) else imm
        t = addr + 8 + 4 * imm
        return t + 2 * ((raw[3] >> 0) & 1) if (raw[3] & 0xF0) == 0xF0 else t  # blx imm: H bit, to Thumb
    return None


def _thumb_call_target(addr: int, raw: bytes) -> int | None:
    """A Thumb-2 BL / BLX's target, or None."""
    if len(raw) < 4:
        return None
    hw1, hw2 = int.from_bytes(raw[:2], "little"), int.from_bytes(raw[2:4], "little")
    if hw1 >> 11 == 0x1E and hw2 >> 14 == 0x3:
        s = (hw1 >> 10) & 1
        j1, j2 = (hw2 >> 13) & 1, (hw2 >> 11) & 1
        i1, i2 = 1 - (j1 ^ s), 1 - (j2 ^ s)
        imm = (s << 24) | (i1 << 23) | (i2 << 22) | ((hw1 & 0x3FF) << 12) | ((hw2 & 0x7FF) << 1)
        imm = imm - (1 << 25) if s else imm
        t = addr + 4 + imm
        return t & ~3 if not hw2 & 0x1000 else t  # BLX to ARM: word aligned
    return None


def _le(arch: Arch) -> bool:
    import capstone as cs

    return bool(arch.cs and not arch.cs[1] & cs.CS_MODE_BIG_ENDIAN)
