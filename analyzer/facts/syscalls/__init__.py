"""System calls: every raw system-call site of an ELF binary, its number and name per ABI, the kernel
release the set needs, and the convention it uses.

An opt-in fact (`--facts syscalls`, or the `binlens syscalls` command): decoding code costs far more than
reading headers, so a default scan never computes it, and rules on it run when it was asked for.
See engine.py for the method and docs/syscalls.md for what is reported.
"""

from __future__ import annotations

import json
import time
import tomllib
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analyzer.errors import texts

if TYPE_CHECKING:
    from analyzer.facts import Context
    from analyzer.load import Artifact

DATA = Path(__file__).resolve().parents[2] / "data"
BUDGET_SECONDS = 120.0  # per artifact; past it the facts say "budget" and list what was done


def budget_seconds() -> float:
    """The time budget per artifact: BUDGET_SECONDS, or BINLENS_SYSCALLS_BUDGET (seconds) when set."""
    import os

    try:
        return max(0.0, float(os.environ.get("BINLENS_SYSCALLS_BUDGET", BUDGET_SECONDS)))
    except ValueError:
        return BUDGET_SECONDS

EM = {3: "i386", 8: "mips", 20: "ppc", 21: "ppc64", 22: "s390", 40: "arm", 62: "x86_64", 183: "aarch64",
      243: "riscv64", 258: "loongarch64"}  # fmt: skip
EF_MIPS_ABI2 = 0x20


@cache
def tables() -> dict[str, Any]:
    with open(DATA / "syscalls.json") as f:
        doc: dict[str, Any] = json.load(f)
    doc["by_number"] = {abi: {n: name for name, n in t.items()} for abi, t in doc["abis"].items()}
    return doc


@cache
def conventions() -> dict[str, Any]:
    with open(DATA / "syscall_conventions.toml", "rb") as f:
        return tomllib.load(f)


def detect_abi(elf: Any) -> str | None:
    """The ABI key (analyzer/data/syscalls.json) of an ELF file, from e_machine, the class and e_flags."""
    m = EM.get(elf.e_machine)
    if m == "x86_64":
        return "x86_64" if elf.bits == 64 else "x32"
    if m == "mips":
        return "mipsn64" if elf.bits == 64 else "mipsn32" if elf.e_flags & EF_MIPS_ABI2 else "mipso32"
    if m == "s390":
        return "s390x" if elf.bits == 64 else "s390"
    if m == "arm":
        return "arm" if elf.e_flags >> 24 >= 4 or elf.e_flags >> 24 == 0 and elf.e_flags & 0x200 == 0 else "armoabi"
    if m == "riscv64" and elf.bits != 64:
        return None
    return m


def seccomp_arch(abi: str, little: bool) -> str:
    token: str = conventions()[abi]["seccomp"]
    if little and token.startswith("SCMP_ARCH_MIPS"):
        return token.replace("SCMP_ARCH_MIPS", "SCMP_ARCH_MIPSEL")
    if little and token == "SCMP_ARCH_PPC64":
        return "SCMP_ARCH_PPC64LE"
    return token


def version_key(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in v.split(".") if p.isdigit())


def provide(art: Artifact, known: dict[str, Any], context: Context) -> dict[str, Any] | None:
    if art.format != "ELF":
        return None
    facts = analyze(art, known)
    if context.loader is not None and known.get("linkage") == "dynamic" and facts.get("supported"):
        facts["via_libraries"] = texts(via_libraries(art, context.loader))  # file names as text (errors.texts)
    return {"syscalls": facts}


def via_libraries(art: Artifact, loader: Any, budget: float | None = None) -> dict[str, Any]:
    """The calls a dynamic program reaches through its libraries, resolved in the loader model's sysroot."""
    from analyzer.facts.loader.linkmap import LinkMap, program_flavour
    from analyzer.facts.syscalls import libraries

    opts, sysroot = loader
    link_map = LinkMap(art.path, art.binary, opts, sysroot, program_flavour(art.binary))
    link_map.load()
    deadline = time.monotonic() + (budget_seconds() if budget is None else budget)
    out = libraries.reach(link_map.objects[0], link_map, deadline)
    if out.get("modelled"):
        out["missing_libraries"] = [m["name"] for m in link_map.missing] if link_map.missing else []
    return out


def analyze(art: Artifact, known: dict[str, Any], budget: float | None = None) -> dict[str, Any]:
    from analyzer.facts.syscalls import engine
    from analyzer.facts.syscalls.code import Code

    elf = art.binary
    abi = detect_abi(elf)
    little = elf.byte_order == "<"
    if abi is None:
        return {"abi": None, "supported": False, "reason": f"no system-call model for e_machine {elf.e_machine}"}
    arch = engine.arch_for(abi, little)
    if arch is None:
        return {"abi": abi, "supported": False, "reason": f"no system-call model for {abi}"}
    if known.get("linkage") is None and known.get("kind") != "relocatable":  # (an object's code is its own)
        return {"abi": abi, "supported": False, "reason": "a core dump: no program's code to read"
                if known.get("kind") == "core" else "debug information only (objcopy --only-keep-debug): the "
                "program's code is not in this file"}
    code = Code(elf)
    go = bool(known.get("go")) or any(s.name == ".gopclntab" for s in elf.sections) or "runtime.main" in code.symbols
    parsed = (known.get("go") or {}).get("version_parsed") or {}
    code.go_minor = parsed.get("minor") if parsed.get("major") == 1 else None
    deadline = time.monotonic() + (budget_seconds() if budget is None else budget)
    if not go and _stripped_code(elf, sum(r.size for r in code.regions)):  # (split as a library model is)
        from analyzer.facts.syscalls import libraries

        libraries.split_at_calls(code, abi, deadline)
    result = engine.analyze(arch, code, go, deadline, _imported_wrappers(elf, abi, code))
    return summarize(abi, little, result, known)


IMPORTED_WRAPPERS = ("syscall",)  # the C library's syscall(long number, ...): the number is the first argument


def _imported_wrappers(elf: Any, abi: str, code: Any) -> dict[int, set[tuple[str, Any]]]:
    """The PLT entries through which a program calls the C library's syscall() -> where the number arrives there
    (the first C argument: rdi, x0, r0, a0, r3, r2, i386's first stack slot): each call then resolves its
    number as a call of the program's own wrappers does (jemalloc in Rust programs opens
    /proc/sys/vm/overcommit_memory by syscall(SYS_open); before, such calls were not seen at all)."""
    from analyzer.facts.syscalls import engine, libraries

    arch = engine.arch_for(abi, elf.byte_order == "<")
    first = first_argument(arch, abi) if arch is not None else None
    if first is None:
        return {}
    entries = libraries.plt_entries(elf, abi, code, IMPORTED_WRAPPERS)
    code.extra_names.update({a: f"{n}@plt" for a, n in entries.items()})
    out = {a: {first} for a in entries}
    # -fno-plt: calls through the GOT slot itself (x86-64: gcc's `call [rip + slot]`, clang's register; AArch64:
    # `adrp; ldr x20, [slot]`, then `blr x20` for each call; i386, gcc: `call [ebx + slot - GOT]`)
    got = dict(elf.dynamic).get(libraries.DT_PLTGOT, 0) if abi == "i386" else 0
    finder = {"x86_64": libraries.slot_calls, "aarch64": libraries.slot_calls_a64,
              "i386": lambda c, s: libraries.slot_calls_i386(c, s, got)}.get(abi)  # fmt: skip
    slots = libraries.import_slots(elf, abi, IMPORTED_WRAPPERS) if finder is not None else {}
    for at, slot in finder(code, slots) if finder is not None and slots else ():
        code.extra_calls.setdefault(slot, []).append(at)
        code.extra_names[slot] = f"{slots[slot]}@got"
        out[slot] = {first}
    return out


def first_argument(arch: Any, abi: str) -> tuple[str, Any] | None:
    """Where a C function's first argument is at its entry: a register, or i386's stack slot above the return
    address; None where binlens does not know."""
    if arch.isa.c_params:
        return ("r", arch.isa.c_params[0])
    return ("s", arch.isa.call_push) if abi == "i386" else None


SPLIT_LIBRARY_CODE = 32 << 20  # bytes of code up to which a stripped shared library is split (a C library: 1-3 MB)


def _stripped_code(elf: Any, code_size: int) -> bool:
    """Code without a symbol table that holds a C library's system-call helpers: a statically linked program (no
    interpreter, no library needed: one function of megabytes otherwise) or a shared library (named by its
    SONAME; its exported functions alone are named, so glibc 2.41's __syscall_cancel and its callers are no
    functions to be wrappers) of at most SPLIT_LIBRARY_CODE bytes of code (splitting decodes all of it, about
    0.5 s a megabyte: a library of hundreds, libLLVM's, would spend the time budget on it). A dynamically linked
    program calls its C library's helpers through the PLT."""
    from analyzer.facts.linkage import dynamic_info

    if elf.e_type not in (2, 3) or any(s.sh_type == 2 for s in elf.sections):
        return False
    try:
        info = dynamic_info(elf)
    except Exception:  # noqa: BLE001 - a damaged dynamic section: left unsplit, as before
        return False
    if elf.interpreter or info.needed:
        return bool(info.soname) and code_size <= SPLIT_LIBRARY_CODE
    return True


def _name(abi: str, n: int) -> str | None:
    name: str | None = tables()["by_number"].get(abi, {}).get(n)
    return name


def summarize(abi: str, little: bool, result: Any, known: dict[str, Any]) -> dict[str, Any]:
    conv = dict(conventions()[abi])
    conv["seccomp"] = seccomp_arch(abi, little)
    sites, names, unknown_numbers = [], set(), set()
    unresolved: dict[str, int] = {}
    counts: dict[str, int] = {}
    by_abi: dict[str, set[str]] = {}
    for s in result.sites:
        nums = sorted(s.numbers)
        site_abi = s.abi
        if abi == "x86_64" and s.kind == "trap" and s.instruction == "syscall" and any(n & 0x40000000 for n in nums):
            site_abi = "x86_64"  # the x32 bit: named from the x32 table below, flagged by a rule
        named = []
        for n in nums:
            table = "x32" if n & 0x40000000 and abi in ("x86_64", "x32") else site_abi
            nm = _name(table, n)
            if nm is None:
                unknown_numbers.add((table, n))
            else:
                names.add(nm)
                by_abi.setdefault(table, set()).add(nm)
            named.append(nm)
        if s.kind == "trap":
            counts[s.instruction.split(" ")[0] if s.instruction.startswith(("svc", "syscall")) else s.instruction] = (
                counts.get(s.instruction.split(" ")[0] if s.instruction.startswith(("svc", "syscall"))
                           else s.instruction, 0) + 1)  # fmt: skip
        if s.how == "unresolved" or (not s.complete and s.how != "wrapper"):
            unresolved[s.function] = unresolved.get(s.function, 0) + 1
        sites.append({
            "address": f"{s.address:#x}", "function": s.function, "kind": s.kind, "instruction": s.instruction,
            "abi": site_abi, "numbers": nums, "names": named, "how": s.how, "complete": s.complete,
            **({"wrapper": s.wrapper} if s.wrapper else {}), **({"immediate": s.imm} if s.imm else {}),
        })  # fmt: skip
    floor = kernel_floor(abi, little, by_abi, known)
    docker = docker_verdicts(abi, by_abi, runtime_of(known))
    return {
        "abi": abi,
        "supported": True,
        "convention": conv,
        "site_counts": dict(sorted(counts.items())),
        "sites": sites,
        "names": sorted(names),
        "by_abi": {k: sorted(v) for k, v in sorted(by_abi.items())},
        "unknown_numbers": [{"abi": a, "number": n} for a, n in sorted(unknown_numbers)],
        "unresolved": {"count": sum(unresolved.values()), "functions": sorted(unresolved)},
        "wrappers": result.wrappers,
        "kernel_floor": floor,
        "docker_default": docker,
        "complete": not result.budget_hit and not unresolved,
        "budget_exceeded": result.budget_hit,
    }


@cache
def docker_profile() -> dict[str, Any]:
    with open(DATA / "docker_seccomp.toml", "rb") as f:
        return tomllib.load(f)


DOCKER_ARCH = {"x86_64": "amd64", "x32": "x32", "i386": "x86", "aarch64": "arm64", "arm": "arm", "armoabi": "arm",
               "ppc64": "ppc64le", "s390x": "s390x", "s390": "s390", "riscv64": "riscv64"}  # fmt: skip


def docker_verdicts(abi: str, by_abi: dict[str, set[str]], runtime: str | None) -> list[dict[str, Any]]:
    """What Docker's default seccomp profile does with each call that it does not simply allow, for a
    container without added capabilities: refused (EPERM), ENOSYS, a capability needed, allowed only for some
    arguments or kernels. `probed`: the runtime does without the call when it is refused."""
    d = docker_profile()
    allow = set(d["allow"])
    fallback = probes().get(runtime or "", {})
    out = []
    for table, names in sorted(by_abi.items()):
        arch = DOCKER_ARCH.get(table, table)
        for name in sorted(names):
            if name in allow:
                continue
            if name in d["arches"]:
                if arch in d["arches"][name]:
                    continue
                verdict, detail = "refused", f"allowed on {', '.join(d['arches'][name])} only"
            elif name in d["min_kernel_4_8"]:
                verdict, detail = "kernel", "allowed on hosts with Linux 4.8 or later"
            elif name in d["errno"]:
                verdict, detail = "errno", f"answered errno {d['errno'][name]} (ENOSYS) so that libc falls back"
            elif name in d["capabilities"]:
                verdict, detail = "capability", f"needs {d['capabilities'][name]}"
            elif name in d["arguments"]:
                verdict, detail = "arguments", "allowed for some arguments only"
            else:
                verdict, detail = "refused", "not in the profile: EPERM"
            out.append({"name": name, "abi": table, "verdict": verdict, "detail": detail,
                        "probed": name in fallback})  # fmt: skip
    return out


@cache
def probes() -> dict[str, dict[str, str]]:
    with open(DATA / "syscall_probes.toml", "rb") as f:
        return tomllib.load(f)


def runtime_of(known: dict[str, Any]) -> str | None:
    """Whose probes apply: Go's for a Go binary, glibc's for one linked with glibc (statically too)."""
    if known.get("go"):
        return "go"
    return "glibc" if known.get("libc") == "glibc" else None


# The oldest Linux each Go release supports (go.dev/wiki/MinimumRequirements; Go 1.19 and 1.24 notes).
GO_MINIMUM = ((24, "3.2"), (19, "2.6.32"), (0, "2.6.23"))


def declared_kernel(known: dict[str, Any]) -> dict[str, str] | None:
    """The kernel the binary says it needs: glibc's .note.ABI-tag, else the minimum of its Go release."""
    tag = (known.get("elf") or {}).get("abi_tag") or {}
    if tag.get("kernel") and tag.get("os") in (None, "Linux"):
        return {"version": tag["kernel"], "source": ".note.ABI-tag"}
    parsed = (known.get("go") or {}).get("version_parsed") or {}
    if parsed.get("major") == 1 and isinstance(parsed.get("minor"), int):
        version = next(v for minor, v in GO_MINIMUM if parsed["minor"] >= minor)
        return {"version": version, "source": f"the minimum of Go 1.{parsed['minor']}"}
    return None


def kernel_floor(abi: str, little: bool, by_abi: dict[str, set[str]], known: dict[str, Any] | None = None
                 ) -> dict[str, Any]:  # fmt: skip
    """The oldest Linux release that has every syscall of the set on this ABI (and the port itself): over all of
    them (`version`), and without the ones the runtime probes and does without (`hard`)."""
    known = known or {}
    data = tables()
    port_key = "ppc64le" if abi == "ppc64" and little else abi
    port = data["ports"].get(port_key)
    start: tuple[tuple[int, ...], str | None, str] = (version_key(port) if port else (), None, port or "")
    best, hard = start, start
    runtime = runtime_of(known)
    fallback = probes().get(runtime or "", {})
    undated, probed = set(), []
    for names in by_abi.values():
        for name in sorted(names):
            row = data["kernel"].get(name)
            if row is None or not row.get("introduced"):
                undated.add(name)
                continue
            k = version_key(row["introduced"])
            if k > best[0]:
                best = (k, name, row["introduced"])
            if name in fallback:
                probed.append({"name": name, "introduced": row["introduced"], "fallback": fallback[name]})
            elif k > hard[0]:
                hard = (k, name, row["introduced"])
    declared = declared_kernel(known)
    return {
        "version": best[2] or None,
        "syscall": best[1],
        "hard": {"version": hard[2] or None, "syscall": hard[1]},
        "probed": sorted(probed, key=lambda p: (version_key(p["introduced"]), p["name"]), reverse=True),
        "port": port,
        "undated": sorted(undated),
        "declared": declared,
        "declared_below": bool(declared and hard[2] and version_key(hard[2]) > version_key(declared["version"])),
    }
