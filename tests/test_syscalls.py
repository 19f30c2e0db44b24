"""System-call facts against the programs' own behaviour and against binutils.

- recall: every fixture that qemu-user (or the host) runs is run under `qemu-ARCH -strace` / `strace -f`, and
  every system call it makes is in binlens's set (the kernel's signal trampoline's rt_sigreturn aside: the
  vDSO or the kernel's sigpage makes it, not the program);
- precision: on the hand-built c-rawsys the set is exactly the one its source constructs;
- sites: the count of trap instructions equals objdump -d's on every fixture and on system binaries;
- tables: the generated data equals what its sources give, and agrees with this machine's kernel headers;
- seccomp: the exported profile, compiled by libseccomp (Debian's python3-seccomp), lets the program run,
  and without one syscall it needs, the program fails.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, run_binlens

from analyzer import load
from analyzer.facts import syscalls
from analyzer.facts.syscalls import libraries

KERNEL_MADE = {"rt_sigreturn", "sigreturn", "restart_syscall"}  # by the kernel's signal trampoline
QEMU = {"x86_64": "qemu-x86_64", "i386": "qemu-i386", "arm": "qemu-arm", "aarch64": "qemu-aarch64",
        "riscv64": "qemu-riscv64", "ppc64": "qemu-ppc64le", "s390x": "qemu-s390x", "mipsn64": "qemu-mips64el",
        "loongarch64": "qemu-loongarch64", "mipso32": "qemu-mipsel", "mipsn32": "qemu-mipsn32el"}  # fmt: skip
RUNNABLE = [
    *(f"gomx-linux-{a}" for a in ("amd64", "arm", "arm64", "riscv64", "ppc64le", "s390x", "mips64le", "loong64")),
    "go-linux-386", "go-linux-amd64", "go-linux-arm64-sw", "go-linux-386-sw", "go-linux-ppc64",
    *(f"gomx-go1.21.13-linux-{a}" for a in ("amd64", "386", "arm64", "s390x", "loong64")),
    *(f"c-{a}-musl-static" for a in ("i386", "arm", "riscv64", "ppc64le", "s390x", "mips64el", "mipsel", "mipsn32el")),
    "c-x86_64-musl-static", "c-aarch64-musl-static", "c-x86_64-gnu-static", "c-x86_64-static-pie", "c-rawsys",
    "c-i386-gnu-static",
]  # fmt: skip


def _facts(path: Path | str) -> dict:
    """The syscalls facts as `binlens scan --facts syscalls` computes them (with the facts they read); once per
    file and content (several tests read the same fixture's)."""
    p = Path(path)
    stat = p.stat()
    return copy.deepcopy(_facts_of(str(p), stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=256)
def _facts_of(path: str, mtime: int, size: int) -> dict:
    from analyzer import pipeline

    results = list(pipeline.scan([str(path)], pipeline.Request(pipeline.plan(None, ["syscalls"]))))
    entry = results[0].entry
    if entry.get("error"):
        from analyzer.errors import AnalyzerError

        raise AnalyzerError(entry["error"], str(path))
    return entry["facts"]["syscalls"]


def _observed(path: Path, abi: str, big_endian: bool) -> set[str]:
    """The calls the program makes when run (strace on this machine, qemu-ARCH -strace for the others). strace
    now and then names a call of a thread of a 32-bit Go program by a number no kernel has (`syscall_0xfc1`,
    `syscall_0x15c9`: its register fetch racing the thread's start); a call named by number counts only when a
    second run shows it too."""
    seen = _observed_once(path, abi, big_endian)
    odd = {c for c in seen if re.fullmatch(r"syscall_0x[0-9a-f]+", c)}
    return seen - (odd - _observed_once(path, abi, big_endian)) if odd else seen


def _observed_once(path: Path, abi: str, big_endian: bool) -> set[str]:
    if abi in ("x86_64", "i386"):  # the host runs both (qemu-i386 cannot run Go's 386 runtime)
        cmd = ["strace", "-f", "-qq", "-o", "/dev/stderr", str(path)]
        pattern = r"^(?:\[pid\s+\d+\] |\d+ +)?(\w+)\("
    else:
        qemu = "qemu-ppc64" if abi == "ppc64" and big_endian else QEMU[abi]
        cmd, pattern = [qemu, "-strace", str(path)], r"^\d+ (\w+)\("
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, (cmd, out.stderr[-2000:])
    calls = [m[1] for m in re.finditer(pattern, out.stderr + out.stdout, re.M)]
    assert calls, out.stderr[-2000:]
    if abi in ("x86_64", "i386") and calls[0] == "execve":
        calls = calls[1:]  # strace's own exec of the program
    return set(calls)


@pytest.mark.parametrize("name", RUNNABLE)
def test_every_call_made_is_found(binaries_built: dict[str, Path], name: str) -> None:
    path = binaries_built[name]
    f = _facts(path)
    art = load.open_artifacts(str(path))[0]
    seen = _observed(path, f["abi"], art.binary.byte_order == ">")
    missing = seen - set(f["names"]) - KERNEL_MADE
    assert not missing, f"{name}: made but not found: {sorted(missing)}"


@pytest.mark.parametrize("name", ["c-syscall-fn", "c-syscall-fn-noplt", "c-syscall-fn-clang-noplt",
                                  "c-syscall-fn-aarch64", "c-syscall-fn-clang-noplt-aarch64", "c-syscall-fn-i386",
                                  "c-syscall-fn-noplt-i386"])
def test_calls_of_the_c_librarys_syscall_function_are_resolved(binaries_built: dict[str, Path], name: str) -> None:
    """A dynamic program calling glibc's syscall() with constant numbers (as jemalloc does in Rust programs such
    as ruff and uv: SYS_open, SYS_read, SYS_close): each call through syscall@plt takes its number from the first
    argument (rdi, x0, i386's first stack slot), as a call of the program's own wrapper does; built with
    -fno-plt, each call through syscall's GOT slot likewise (gcc: `call [rip + slot]`; clang: the slot loaded into
    r14 once, then `call r14` for read and close; AArch64, clang: `adrp; ldr x20, [slot]`, then `blr x20` for each
    call). x86-64 under strace: every call the program makes
    is found; AArch64 and i386 (their PLT stubs read as the library model
    reads them) under qemu -strace in Debian's cross sysroots: the four are. Before, none of the four was (the C
    library's syscall() is a wrapper whose numbers only its callers know), and a seccomp profile would have
    refused them."""
    from analyzer import pipeline
    from analyzer.facts import Context, loader

    path = binaries_built[name]
    if name.endswith(("aarch64", "i386")):
        qemu, root = {"aarch64": ("qemu-aarch64", "/usr/aarch64-linux-gnu"),
                      "i386": ("qemu-i386", "/usr/i686-linux-gnu")}[name.rsplit("-", 1)[1]]
        run = subprocess.run([qemu, "-L", root, "-strace", str(path)], capture_output=True, text=True, timeout=60)
        seen = set(re.findall(r"^\d+ (\w+)\(", run.stderr + run.stdout, re.M))
        made = {"openat" if name.endswith("aarch64") else "open", "read", "close", "getppid"}
        f = _facts(path)
    else:
        request = pipeline.Request(pipeline.plan(None, ["syscalls"]), Context(loader=(loader.Options(),
                                                                                     loader.Sysroot("/"))))
        (entry,) = pipeline.analyze_file(str(path), request)
        f = entry["facts"]["syscalls"]
        seen = _observed(path, "x86_64", False)
        made = {"open", "read", "close", "getppid"}
        assert not seen - set(f["names"]) - set(f["via_libraries"]["names"]) - KERNEL_MADE
    assert made <= seen and made <= set(f["names"])
    calls = [s for s in f["sites"] if s["kind"] == "call"]
    through = "syscall@got" if "noplt" in name else "syscall@plt"  # (-fno-plt: through the GOT slot)
    assert len(calls) == 4 and {s["wrapper"] for s in calls} == {through} and all(s["complete"] for s in calls)
    assert f["wrappers"] == {}  # (the C library's wrapper is not this program's own)


@pytest.mark.parametrize("library", ["libsyscallfn.so", "libsyscallfn-noplt.so", "libsyscallfn-clang-noplt.so"])
def test_a_librarys_calls_of_syscall_are_reached_through_it(binaries_built: dict[str, Path], tmp_path: Path,
                                                            library: str) -> None:  # fmt: skip
    """A library calling the C library's syscall() with constant numbers (as libstdc++ does for its futex
    waits): a program reaching the library's lib_f reaches getppid and getpgrp through it, as strace sees it
    make them; every call it makes is found. Before, the library's calls were the C library's wrapper with an
    unresolved number, and neither was in the program's set. Built with -fno-plt, the library calls syscall()
    through its GOT slot (gcc: `call [rip + slot]`, which binlens counted unresolved before; clang: `call r14`
    after loading the slot into r14, which binlens missed silently before): the same two calls are found."""
    from analyzer import pipeline
    from analyzer.facts import Context, loader

    app = tmp_path / "app"
    shutil.copy(binaries_built["c-syscall-fn-lib"], app)
    shutil.copy(binaries_built[library], tmp_path / "libsyscallfn.so")
    request = pipeline.Request(pipeline.plan(None, ["syscalls"]), Context(loader=(loader.Options(),
                                                                                 loader.Sysroot("/"))))
    (entry,) = pipeline.analyze_file(str(app), request)
    f = entry["facts"]["syscalls"]
    via = f["via_libraries"]
    assert via["by_library"][str(tmp_path / "libsyscallfn.so")] == ["getpgrp", "getppid"]
    seen = _observed(app, "x86_64", False)
    assert {"getppid", "getpgrp"} <= seen
    assert not seen - set(f["names"]) - set(via["names"]) - KERNEL_MADE
    assert not [i for i in via["incomplete"] if "libsyscallfn" in i]


def test_a_call_through_a_writable_pointer_reaches_what_was_stored_there(binaries_built: dict[str, Path],
                                                                         tmp_path: Path) -> None:  # fmt: skip
    """libhook.so's lib_run calls through a static pointer that starts out holding the exported default_hook
    (`call [rip + hook]`, the word filled by an absolute relocation in writable .data), and lib_swap stores
    other_hook there: strace sees the program make other_hook's getpgrp. The call reaches default_hook and is
    an indirect call too (the library's taken addresses: other_hook). A GOT entry is not written after
    relocation, so a call through one is the named function's alone; this word is not one."""
    from analyzer import pipeline
    from analyzer.facts import Context, loader

    app = tmp_path / "app"
    shutil.copy(binaries_built["c-hook-use"], app)
    shutil.copy(binaries_built["libhook.so"], tmp_path / "libhook.so")
    request = pipeline.Request(pipeline.plan(None, ["syscalls"]), Context(loader=(loader.Options(),
                                                                                 loader.Sysroot("/"))))
    (entry,) = pipeline.analyze_file(str(app), request)
    f = entry["facts"]["syscalls"]
    via = f["via_libraries"]
    seen = _observed(app, "x86_64", False)
    assert "getpgrp" in seen
    assert not seen - set(f["names"]) - set(via["names"]) - KERNEL_MADE
    assert via["by_library"][str(tmp_path / "libhook.so")] == ["getpgrp", "getppid"]
    assert str(tmp_path / "libhook.so") in via["indirect_calls_followed"]


def test_hand_built_set_is_exact(binaries_built: dict[str, Path]) -> None:
    path = binaries_built["c-rawsys"]
    f = _facts(path)
    # what fixtures/src/c/rawsys.c constructs: the x86-64 numbers 1, 39, 231, and 20 through int $0x80
    assert f["by_abi"] == {"i386": ["getpid"], "x86_64": ["exit_group", "getpid", "write"]}
    assert f["unresolved"]["count"] == 0 and f["wrappers"] == {"raw1": ["r:rdi"]}
    assert f["site_counts"] == {"int 0x80": 1, "syscall": 3}
    seen = _observed(path, "x86_64", False)
    assert seen == {"write", "getpid", "exit_group"}  # strace names the int $0x80 getpid too
    assert "SCMP_ARCH_X86" in json.loads(run_binlens("syscalls", str(path), "--seccomp", "oci", check=True).stdout)[
        "architectures"]  # fmt: skip


# objdump's view of a trap: ARM counts only `svc 0` and OABI `svc 0x9000nn` (the Linux calls): objdump also
# decodes the literal words in ARM text as conditional `svc`s
TRAP = {
    "x86_64": r"\t(syscall|int\s+\$0x80|sysenter)\s*$", "i386": r"\t(syscall|int\s+\$0x80|sysenter)\s*$",
    "aarch64": r"\tsvc\t", "riscv64": r"\tecall\s*$", "ppc64": r"\t(sc|scv)(\s|$)", "s390x": r"\tsvc\t",
    "mipsn64": r"\tsyscall\b", "mipso32": r"\tsyscall\b", "mipsn32": r"\tsyscall\b",
    "arm": r"\tsvc\t(0|0x00000000|0x009[0f]0[0-7][0-9a-f]{2})$",
}  # fmt: skip
SYSTEM = ["/usr/bin/busybox", "/bin/bash-static", "/usr/lib/x86_64-linux-gnu/libc.so.6",
          "/usr/aarch64-linux-gnu/lib/libc.so.6", "/usr/arm-linux-gnueabihf/lib/libc.so.6",
          "/usr/powerpc64le-linux-gnu/lib/libc.so.6"]  # fmt: skip
# binutils 2.40 cannot disassemble LoongArch, so loong64 fixtures have no objdump count; s390x's libc.so.6 has
# data inside _exit that makes objdump's linear sweep skip the `svc 248` after it (binlens decodes from the
# jump's target), so only the s390x fixtures are compared


# one program per architecture and toolchain (the sweep script compares every fixture)
OBJDUMP = [
    n for n in RUNNABLE if "loong64" not in n and not n.startswith(("gomx-go1", "go-linux-386", "go-linux-amd64"))
]


def objdump_traps(path: str, abi: str) -> list[int]:
    """The addresses of the trap instructions `objdump -d` shows in the file, sorted (kept in the fixture cache
    under the file's and objdump's digests, with the pattern: groundtruth.tool_output)."""
    from groundtruth import tool_output

    def run(p: str) -> list[int]:
        out = subprocess.run(["objdump", "-d", p], capture_output=True, text=True, check=True).stdout
        return sorted(int(line.split(":")[0], 16) for line in out.splitlines() if re.search(TRAP[abi], line))

    key = hashlib.sha256(TRAP[abi].encode()).hexdigest()[:12]
    return list(tool_output(f"objdump-traps-{key}", ("objdump",), path, run))


@pytest.mark.parametrize("name", [*OBJDUMP, "age-debian", *SYSTEM])
def test_site_counts_equal_objdump(binaries_built: dict[str, Path], name: str) -> None:
    path = str(binaries_built.get(name, name))
    f = _facts(path)
    theirs = objdump_traps(path, f["abi"])
    ours = sorted(int(s["address"], 16) for s in f["sites"] if s["kind"] == "trap" and "gs:" not in s["instruction"])
    assert ours == theirs


def test_tables_are_what_the_sources_give() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_syscalls.py"), "--check"], capture_output=True,
                         text=True)  # fmt: skip
    assert out.returncode == 0, out.stderr


def _headers(name: str) -> dict[str, int]:
    text = Path(f"/usr/include/x86_64-linux-gnu/asm/{name}").read_text()
    out = {}
    for m in re.finditer(r"^#define __NR_(\w+) (.+)$", text, re.M):
        value = m[2].replace("__X32_SYSCALL_BIT", "0x40000000").replace("U", "")
        out[m[1]] = eval(value, {})  # noqa: S307 - integer expressions of the kernel's own header
    return out


def test_tables_agree_with_the_kernel_headers() -> None:
    """linux-libc-dev's headers (the kernel release Debian ships) number every call as the tables do, and
    every call they have was added at or before that release; every call dated later is absent."""
    release = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "linux-libc-dev"], capture_output=True,
                             text=True, check=True).stdout  # fmt: skip
    kernel = syscalls.version_key(release.split("-")[0])[:2]
    data = syscalls.tables()
    for header, abi in (("unistd_64.h", "x86_64"), ("unistd_32.h", "i386"), ("unistd_x32.h", "x32")):
        numbers = _headers(header)
        table = data["abis"][abi]
        assert {n: table[n] for n in numbers if n in table} == {n: v for n, v in numbers.items() if n in table}
        gone = sorted(n for n in numbers if n not in table)  # numbered by the headers, no longer by the kernel
        assert all({"removed", "unimplemented"} & set(data["kernel"].get(n, {})) for n in gone), gone
        for name in table:
            row = data["kernel"].get(name)
            if row is None or "introduced" not in row:
                continue
            introduced = syscalls.version_key(row["introduced"])
            if name in numbers:
                assert introduced[:2] <= kernel, (abi, name, row)
            elif introduced[:2] <= kernel and "removed" not in row:
                # in the table and dated before the headers' release but not in them: only calls of this ABI
                # added to it later than to the others may be here
                assert row.get("notes") or abi == "x32", (abi, name, row)


def test_kernel_floor_and_ports(binaries_built: dict[str, Path]) -> None:
    go = _facts(binaries_built["gomx-linux-amd64"])
    assert go["kernel_floor"]["syscall"] == "pidfd_open" and go["kernel_floor"]["version"] == "5.3"
    loong = _facts(binaries_built["gomx-linux-loong64"])
    assert loong["kernel_floor"]["version"] == "5.19" and loong["kernel_floor"]["port"] == "5.19"


def _run_under(profile: dict, program: Path) -> subprocess.CompletedProcess[str]:
    """The program run under the profile, compiled to a seccomp filter by libseccomp (python3-seccomp)."""
    loader = (
        "import json, os, sys, seccomp\n"
        "p = json.load(open(sys.argv[1]))\n"
        "f = seccomp.SyscallFilter(defaction=seccomp.ERRNO(p.get('defaultErrnoRet', 1)))\n"
        "for a in p['architectures']:\n"
        "    arch = getattr(seccomp.Arch, a.removeprefix('SCMP_ARCH_'))\n"
        "    if not f.exist_arch(arch): f.add_arch(arch)\n"
        "for rule in p['syscalls']:\n"
        "    for n in rule['names']:\n"
        "        f.add_rule(seccomp.ALLOW, n)\n"
        "f.load()\n"
        "os.execv(sys.argv[2], sys.argv[2:])\n"
    )
    spec = program.parent.parent / f"profile-{program.name}-{len(profile['syscalls'][0]['names'])}.json"
    spec.write_text(json.dumps(profile))
    return subprocess.run(["/usr/bin/python3", "-c", loader, str(spec), str(program)], capture_output=True,
                          text=True, timeout=60)  # fmt: skip


def test_seccomp_profile_runs_the_program(binaries_built: dict[str, Path], tmp_path: Path) -> None:
    program = tmp_path / "bin" / "hello"
    program.parent.mkdir()
    program.write_bytes(binaries_built["gomx-linux-amd64"].read_bytes())
    program.chmod(0o755)
    out = run_binlens("syscalls", str(program), "--seccomp", "oci", check=True)
    profile = json.loads(out.stdout)
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO" and profile["architectures"] == ["SCMP_ARCH_X86_64"]
    ok = _run_under(profile, program)
    assert ok.returncode == 0 and ok.stdout.startswith("hello from linux amd64"), ok.stderr[-1000:]
    names = profile["syscalls"][0]["names"]
    assert "mmap" in names
    profile["syscalls"][0]["names"] = [n for n in names if n != "mmap"]
    broken = _run_under(profile, program)
    assert broken.returncode != 0 and "hello" not in broken.stdout
    docker = json.loads(run_binlens("syscalls", str(program), "--seccomp", "docker", check=True).stdout)
    assert docker["archMap"] == [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": []}]
    assert set(docker["syscalls"][0]["names"]) == set(names)


def test_no_profile_leaves_out_a_binary_it_cannot_read(binaries_built: dict[str, Path], tmp_path: Path) -> None:
    """A debug-info companion (elfutils' eu-elfclassify: not loadable) has no code to read: `syscalls` says so
    instead of "sites: none ... Docker's default profile allows every call", and `--seccomp` writes no profile
    that would leave out a binary it cannot read — a companion, a core dump, a PE file — one line and exit 2
    (before: a profile of execve, exit and the like only, exit 0, which stops the program)."""
    program = binaries_built["gomx-linux-amd64"]
    companion = tmp_path / "hello.debug"
    subprocess.run(["objcopy", "--only-keep-debug", str(program), str(companion)], check=True)
    assert subprocess.run(["eu-elfclassify", "--loadable", str(companion)]).returncode != 0
    text = run_binlens("syscalls", str(companion), check=True).stdout
    assert text == f"{companion}: debug information only (objcopy --only-keep-debug): the program's code is not " \
                   "in this file\n"
    for others in ([companion], [program, companion], [program, binaries_built["mingw-default.exe"]]):
        done = run_binlens("syscalls", *map(str, others), "--seccomp", "oci")
        bad = others[-1]
        assert done.returncode == 2 and done.stdout == "", done
        assert done.stderr.count("\n") == 1 and done.stderr.startswith(f"binlens: {bad}: no seccomp profile"), done


def test_cli_text_and_json(binaries_built: dict[str, Path]) -> None:
    path = str(binaries_built["gomx-linux-arm64"])
    text = run_binlens("syscalls", path, check=True).stdout
    assert "aarch64 (svc #0, number in x8" in text and "kernel: Linux >= 3.7 (the aarch64 port)" in text
    assert "probed, done without on older kernels: pidfd_open (5.3)" in text
    report = json.loads(run_binlens("syscalls", path, "--format", "json", check=True).stdout)
    facts = report["artifacts"][0]["facts"]["syscalls"]
    assert facts["names"] == _facts(path)["names"]
    assert "syscalls" in report["facts_computed"]
    missing = run_binlens("syscalls", "/nonexistent/file")
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "/nonexistent/file" in missing.stderr


def test_default_scan_does_not_compute_syscalls(binaries_built: dict[str, Path]) -> None:
    report = json.loads(run_binlens("scan", str(binaries_built["c-rawsys"]), "--format", "json").stdout)
    assert "syscalls" not in report["artifacts"][0]["facts"] and "syscalls" not in report["facts_computed"]


# (rule, firing fixture, quiet fixture, extra options): every SYS rule fires on a binary built to break it and
# stays quiet on one that does not
RULES = [
    ("SYS001", "c-rawsys", "c-x86_64-musl-static", ()),
    ("SYS002", "go-arm-oabi-call", "gomx-linux-arm", ()),
    ("SYS003", "c-aarch64-svc-imm", "c-aarch64-musl-static", ()),
    ("SYS004", "c-rawsys-odd", "c-rawsys", ()),
    ("SYS005", "c-rawsys-odd", "c-rawsys", ()),
    ("SYS006", "c-rawsys-odd", "c-rawsys", ("--target", "rhel-8")),
    ("SYS007", "gomx-linux-amd64", "gomx-linux-amd64", ("--target", "debian-9"), ("--target", "debian-12")),
    ("SYS008", "c-newcalls-static", "c-x86_64-gnu-static", ()),
    ("SYS009", "c-newcalls-static", "gomx-linux-amd64", ()),
]


def _rules_fired(path: Path, *options: str) -> set[str]:
    """The rules that fire under the default policy (with `--target NAME` options) when the syscalls facts are
    asked for, as `binlens scan --facts syscalls` runs them, in this process."""
    from analyzer import pipeline
    from analyzer.policy import config

    cfg = config.Config()
    cfg.set("targets", [options[i + 1] for i, o in enumerate(options) if o == "--target"])
    request = pipeline.Request.for_policy(config.build_policy(cfg), ["syscalls"])
    (entry,) = pipeline.analyze_file(str(path), request)
    return {f["rule"] for f in pipeline.finish(entry, request).findings}


@pytest.mark.parametrize("case", RULES, ids=[r[0] for r in RULES])
def test_rule_fires_and_stays_quiet(binaries_built: dict[str, Path], case: tuple) -> None:
    rule, firing, quiet, options, *quiet_options = case
    assert rule in _rules_fired(binaries_built[firing], *options)
    assert rule not in _rules_fired(binaries_built[quiet], *(quiet_options[0] if quiet_options else options))


def test_rules_need_the_facts_asked_for(binaries_built: dict[str, Path]) -> None:
    """A plain scan never computes the syscalls facts for the SYS rules (they are opt-in)."""
    out = run_binlens("scan", "--format", "json", str(binaries_built["c-rawsys"]))
    report = json.loads(out.stdout)
    assert "syscalls" not in report["facts_computed"]
    assert not [f for f in report["artifacts"][0]["findings"] if f["rule"].startswith("SYS")]


def test_docker_profile_names_are_real_syscalls() -> None:
    """Every name in the transcribed Docker profile is a system call of some ABI (a typo would be a call Docker
    never allows, and every binary making the real one would be reported)."""
    doc = syscalls.docker_profile()
    names = {n for table in syscalls.tables()["abis"].values() for n in table}
    gone = {n for n, row in syscalls.tables()["kernel"].items() if {"removed", "unimplemented"} & set(row)}
    listed = set(doc["allow"]) | set(doc["min_kernel_4_8"]) | set(doc["arguments"]) | set(doc["arches"]) | set(
        doc["errno"]) | set(doc["capabilities"])  # fmt: skip
    # arm_sync_file_range: ARM's first name for sync_file_range2, which the tables number under the new name
    assert sorted(listed - names - gone) == ["arm_sync_file_range"]
    assert not set(doc["allow"]) & set(doc["capabilities"])


# programs of the machine run with typical arguments: none runs another program (strace -f would show that
# program's calls as well); the full list is scripts/syscall_sweep.py's
DYNAMIC = [
    ["/usr/bin/true"], ["/usr/bin/ls", "-la", "/usr"], ["/usr/bin/sort", "/etc/passwd"], ["/usr/bin/stat", "/"],
    ["/usr/bin/find", "/etc/apt", "-name", "*.list"], ["/usr/bin/tar", "-cf", "{tmp}/x.tar", "/etc/hostname"],
    ["/usr/bin/sha256sum", "/etc/hostname"], ["/usr/bin/date"],
]  # fmt: skip


def _strace(cmd: list[str]) -> set[str]:
    out = subprocess.run(["strace", "-f", "-qq", "-o", "/dev/stderr", *cmd], capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    calls = [m[1] for m in re.finditer(r"^(?:\[pid\s+\d+\] |\d+ +)?(\w+)\(", out.stderr, re.M)]
    assert calls and calls[0] == "execve", out.stderr[-1000:]
    return set(calls[1:])  # strace's own exec of the program left out


def test_dynamic_programs_reach_through_their_libraries(tmp_path: Path) -> None:
    """Every call a dynamic program makes under strace is in its own set or the set it reaches through its
    libraries (resolved in / as the loader does), and that set is much smaller than all its libraries'."""
    from analyzer import pipeline
    from analyzer.facts import Context, loader

    cmds = [[a.replace("{tmp}", str(tmp_path)) for a in c] for c in DYNAMIC]
    shared = (loader.Options(), loader.Sysroot("/"))  # each library modelled once for all the programs
    request = pipeline.Request(pipeline.plan(None, ["syscalls"]), Context(loader=shared))
    entries = {r.entry["path"]: r.entry["facts"]["syscalls"] for r in pipeline.scan([c[0] for c in cmds], request)}
    libc = set(_facts("/lib/x86_64-linux-gnu/libc.so.6")["names"])
    for cmd in cmds:
        f = entries[cmd[0]]
        via = f["via_libraries"]
        assert via["modelled"] and "/lib/x86_64-linux-gnu/libc.so.6" in via["by_library"], cmd
        missing = _strace(cmd) - set(f["names"]) - set(via["names"]) - KERNEL_MADE
        assert not missing, f"{cmd}: made but not found: {sorted(missing)}"
    true = set(entries["/usr/bin/true"]["via_libraries"]["names"])
    assert 3 * len(true) < len(libc), (len(true), len(libc))


def test_dlopen_makes_the_library_set_incomplete() -> None:
    from analyzer import pipeline
    from analyzer.facts import Context, loader

    shared = (loader.Options(), loader.Sysroot("/"))
    request = pipeline.Request(pipeline.plan(None, ["syscalls"]), Context(loader=shared))
    via = {r.entry["path"]: r.entry["facts"]["syscalls"]["via_libraries"]
           for r in pipeline.scan(["/usr/bin/ps", "/usr/bin/true"], request)}  # fmt: skip
    assert any("dlopen" in reason for reason in via["/usr/bin/ps"]["incomplete"])
    assert not any("dlopen" in reason for reason in via["/usr/bin/true"]["incomplete"])


HOSTILE = ["gomx-linux-amd64", "gomx-linux-arm", "gomx-linux-riscv64", "gomx-linux-ppc64le", "gomx-linux-s390x",
           "gomx-linux-mips64le", "gomx-linux-loong64", "c-x86_64-gnu-static", "go-linux-arm64-sw"]  # fmt: skip


def _section(data: bytes, wanted: bytes) -> tuple[int, int, int] | None:
    """(header offset, sh_offset, sh_size) of a 64- or 32-bit ELF section, by name."""
    import struct

    e = "<" if data[5] == 1 else ">"
    wide = data[4] == 2
    shoff = struct.unpack_from(e + ("Q" if wide else "I"), data, 0x28 if wide else 0x20)[0]
    shentsize, shnum, shstrndx = struct.unpack_from(e + "HHH", data, 0x3A if wide else 0x2E)
    fmt = e + ("IIQQQQ" if wide else "IIIIII")
    strtab = struct.unpack_from(fmt, data, shoff + shstrndx * shentsize)[4]
    for i in range(shnum):
        at = shoff + i * shentsize
        name, _, _, _, off, size = struct.unpack_from(fmt, data, at)
        if data[strtab + name : data.index(b"\0", strtab + name)] == wanted:
            return at, off, size
    return None


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_code_gives_facts_never_a_traceback(binaries_built: dict[str, Path], name: str,
                                                     tmp_path: Path) -> None:  # fmt: skip
    """Garbage in the code, byte flips all over the file (function tables and symbols too), an executable section
    that claims to lie past the end of the file: facts or a one-line AnalyzerError naming the file, in bounded
    time; sites whose numbers cannot be found are unresolved, never guessed."""
    import random
    import struct
    import time

    from analyzer.errors import AnalyzerError

    good = binaries_built[name].read_bytes()
    text = _section(good, b".text")
    assert text is not None
    rng = random.Random(name)
    variants = []
    garbage = bytearray(good)
    garbage[text[1] : text[1] + text[2]] = bytes(rng.randrange(256) for _ in range(text[2]))
    variants.append(("garbage-text", bytes(garbage)))
    for i in range(4):
        flipped = bytearray(good)
        for _ in range(200):
            flipped[rng.randrange(64, len(flipped))] = rng.randrange(256)
        variants.append((f"flips{i}", bytes(flipped)))
    lying = bytearray(good)
    e, wide = ("<" if good[5] == 1 else ">"), good[4] == 2
    huge = (1 << 40) if wide else 0xFFFFFFF0
    struct.pack_into(e + ("QQ" if wide else "II"), lying, text[0] + (24 if wide else 16), len(good) + 4096, huge)
    variants.append(("text-past-eof", bytes(lying)))
    for label, blob in variants:
        p = tmp_path / f"{name}.{label}"
        p.write_bytes(blob)
        start = time.monotonic()
        try:
            f = _facts(p)
        except AnalyzerError as err:
            assert str(p) in str(err) and "\n" not in str(err), label
            continue
        assert time.monotonic() - start < 60, label
        assert f["supported"], label
        for site in f["sites"]:
            assert site["how"] in ("constant", "immediate", "wrapper", "call", "unresolved"), (label, site)
            assert site["numbers"] or site["how"] in ("wrapper", "unresolved"), (label, site)
    garbage_facts = _facts(tmp_path / f"{name}.garbage-text")
    assert garbage_facts["site_counts"] != _facts(binaries_built[name])["site_counts"] or not garbage_facts["sites"]


def test_code_dense_with_traps_is_decoded_once(binaries_built: dict[str, Path], tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """A static program whose code is undecodable bytes with a `syscall` every 16 (its first quarter: 7,600
    sites; then `add [rax], al` to the end): each function is decoded once, in pieces, not again from its start
    for every site nor from each undecodable byte to its end — at most one capstone call per byte of code (it
    was 55 per byte: 70 s for the whole text so made), and every site found."""
    import capstone

    data = bytearray(binaries_built["c-x86_64-gnu-static"].read_bytes())
    text = _section(bytes(data), b".text")
    assert text is not None
    _, off, size = text
    dense = size // 4 // 16
    data[off : off + size] = (b"\x06" * 14 + b"\x0f\x05") * dense + b"\x00" * (size - dense * 16)
    p = tmp_path / "dense"
    p.write_bytes(data)
    calls = [0]
    lite = capstone.Cs.disasm_lite

    def counted(self: object, *args: object) -> object:
        calls[0] += 1
        return lite(self, *args)

    monkeypatch.setattr(capstone.Cs, "disasm_lite", counted)
    f = _facts(p)
    assert calls[0] <= size, (calls[0], size)
    assert len(f["sites"]) == len(re.findall(rb"\x0f\x05", bytes(data[off : off + size]))) and not f["budget_exceeded"]


def test_time_budget_keeps_a_scan_moving(binaries_built: dict[str, Path]) -> None:
    out = run_binlens("syscalls", "--format", "json", str(binaries_built["gomx-linux-amd64"]),
                      prefix=["env", "BINLENS_SYSCALLS_BUDGET=0"])  # fmt: skip
    assert out.returncode == 0, out.stderr
    f = json.loads(out.stdout)["artifacts"][0]["facts"]["syscalls"]
    assert f["budget_exceeded"] and not f["complete"]
    assert (
        "incomplete: the time budget ran out"
        in run_binlens(
            "syscalls", str(binaries_built["gomx-linux-amd64"]), prefix=["env", "BINLENS_SYSCALLS_BUDGET=0"]
        ).stdout
    )


def test_self_calling_wrapper_ends(binaries_built: dict[str, Path]) -> None:
    f = _facts(binaries_built["c-rawsys-odd"])
    assert "again" in f["wrappers"] and "getsockname" in f["names"]


def test_x32_numbers_carry_the_x32_bit(binaries_built: dict[str, Path]) -> None:
    """An x32 program (this kernel has no CONFIG_X86_X32_ABI to run it): its sites equal objdump's, and every
    number it resolves carries __X32_SYSCALL_BIT, so every name comes from the x32 table."""
    path = str(binaries_built["c-x32-musl-static"])
    f = _facts(path)
    assert f["abi"] == "x32" and f["convention"]["seccomp"] == "SCMP_ARCH_X32"
    numbers = [n for s in f["sites"] for n in s["numbers"]]
    assert numbers and all(n & 0x40000000 for n in numbers)
    assert not f["unknown_numbers"] and set(f["by_abi"]) == {"x32"}
    assert sorted(int(s["address"], 16) for s in f["sites"] if s["kind"] == "trap") == objdump_traps(path, "x86_64")


# Debian's cross sysroots (libc6-*-cross, the README's apt line) and the qemu-user that runs each
CROSS = {"i386": ("/usr/i686-linux-gnu", "qemu-i386"), "aarch64": ("/usr/aarch64-linux-gnu", "qemu-aarch64"),
         "arm": ("/usr/arm-linux-gnueabihf", "qemu-arm"), "riscv64": ("/usr/riscv64-linux-gnu", "qemu-riscv64"),
         "ppc64le": ("/usr/powerpc64le-linux-gnu", "qemu-ppc64le"), "s390x": ("/usr/s390x-linux-gnu", "qemu-s390x"),
         "mipsel": ("/usr/mipsel-linux-gnu", "qemu-mipsel"),
         "mips64el": ("/usr/mips64el-linux-gnuabi64", "qemu-mips64el"), "x86_64": ("/", "strace")}  # fmt: skip
# CI runs a representative sample (the host's under strace, 64-bit ARM, i386's socketcall, MIPS's several GOTs);
def _in_sysroot(path: str, root: str) -> tuple[dict, Any]:
    """The program's entry scanned for its system calls with its libraries resolved in `root` as the loader
    resolves them there, and the sysroot that resolved them (its memo holds the libraries' models)."""
    from analyzer import pipeline
    from analyzer.facts import Context, loader

    shared = (loader.Options(sysroot=root), loader.Sysroot(root))
    request = pipeline.Request(pipeline.plan(None, ["syscalls"]), Context(loader=shared))
    (result,) = pipeline.scan([path], request)
    return result.entry, shared[1]


# scripts/syscall_sweep.py sets BINLENS_FULL_MATRIX=1 and runs every one
LIBC_SAMPLE = sorted(CROSS) if os.environ.get("BINLENS_FULL_MATRIX") == "1" else ["aarch64", "i386", "mips64el",
                                                                                    "x86_64"]  # fmt: skip


@pytest.mark.parametrize("arch", LIBC_SAMPLE)
def test_calls_made_inside_the_c_library(binaries_built: dict[str, Path], arch: str) -> None:
    """c-libcalls (directory reading, stdio through its function tables, malloc's mmap, signals, pipes, poll,
    sockets, time) linked against glibc, its libraries resolved in Debian's cross sysroot and run there by
    qemu-ARCH -strace (x86-64: the host's, under strace -f):
    - recall: every call it makes is in its own set or the one reached through its libraries;
    - the reach does the work: every call made that the loader does not make is in a library's reached set;
    - precision: the C library's reached set is at most a third of every call the C library can make."""
    path = str(binaries_built[f"c-libcalls-{arch}"])
    root, runner = CROSS[arch]
    entry, sysroot = _in_sysroot(path, root)
    f = entry["facts"]["syscalls"]
    via = f["via_libraries"]
    assert via["modelled"], via
    (libc,) = [lib for lib in via["by_library"] if lib.endswith("/libc.so.6")]
    if runner == "strace":
        seen = _observed(Path(path), "x86_64", False)
    else:
        out = subprocess.run([runner, "-L", root, "-strace", path], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-1000:]
        # qemu prints a socketcall by its sub-call in capitals (SOCKET(PF_UNIX,...))
        seen = {"socketcall" if m[1].isupper() else m[1] for m in re.finditer(r"^\d+ (\w+)\(", out.stderr, re.M)}
    assert {"getdents64", "pipe2", "clock_nanosleep"} <= seen  # made by the C library, not by the loader
    missing = seen - set(f["names"]) - set(via["names"]) - KERNEL_MADE
    assert not missing, sorted(missing)
    reached = set().union(*map(set, via["by_library"].values()))
    assert not seen - set(via["loader"]) - set(f["names"]) - reached - KERNEL_MADE
    host = str(Path(root) / libc.lstrip("/"))
    lib = sysroot.memo.get(libraries._memo_key(host))  # (the model the scan made; else made again)
    if lib is None:
        lib = libraries.model(load.open_artifacts(host)[0].binary, f["abi"], time.monotonic() + 60)
    everything = {syscalls._name(t, n) for calls in lib.calls.values() for t, n in calls}
    assert len(set(via["by_library"][libc])) * 3 <= len(everything), (len(via["by_library"][libc]), len(everything))


@pytest.mark.parametrize("arch", ["x86_64", "i386", "arm", "riscv64"])
def test_calls_made_by_a_library_constructor(binaries_built: dict[str, Path], tmp_path: Path, arch: str) -> None:
    """c-usector needs libctor.so, whose only system call (statfs) is made by a constructor, a static function
    the stripped library does not name (fixtures/src/c/ctor). Run in Debian's cross sysroot by qemu-ARCH -strace
    (x86-64: the host's, under strace -f), every call made is in binlens's set. Each architecture is one way
    binlens missed it, found by scripts/syscall_sweep.py --root on Debian's own programs (libselinux's
    constructor's statfs): lld and riscv64's ld leave a RELA library's DT_INIT_ARRAY entry 0 in the file, its
    value in the relocation (x86-64, riscv64); a Thumb function at the start of .text was decoded as ARM code
    (armhf); glibc defines getrlimit64 twice on i386 and the reach took the old definition, not the default
    getrlimit64@@GLIBC_2.2 the program binds to. (A fifth, __libc_early_init, which glibc's loader calls in the
    C library, not followed: glibc 2.41's, tests/test_distros.py.)"""
    app, lib = tmp_path / "app", tmp_path / "libctor.so"
    app.write_bytes(binaries_built[f"c-usector-{arch}"].read_bytes())
    lib.write_bytes(binaries_built[f"libctor-{arch}.so"].read_bytes())
    app.chmod(0o755)
    root, runner = CROSS[arch]
    if runner == "strace":
        seen = _strace([str(app)])
    else:
        out = subprocess.run([runner, "-L", root, "-strace", str(app)], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-1000:]  # (1: the constructor did not run)
        seen = {"socketcall" if m[1].isupper() else m[1] for m in re.finditer(r"^\d+ (\w+)\(", out.stderr, re.M)}
    # statfs: the constructor's; prlimit64 (armhf: ugetrlimit): glibc's early initialisation, which its loader
    # calls by name (__libc_early_init), and on i386 the program's getrlimit too
    assert seen & {"statfs", "statfs64"} and seen & {"prlimit64", "ugetrlimit"}, sorted(seen)
    entry, _ = _in_sysroot(str(app), root)
    f = entry["facts"]["syscalls"]
    missing = seen - set(f["names"]) - set(f["via_libraries"]["names"]) - KERNEL_MADE
    assert not missing, sorted(missing)


def test_a_go_program_as_debian_ships_it(binaries_built: dict[str, Path]) -> None:
    """Debian's age (Go 1.19, cgo, linked by gcc and stripped: no .gopclntab section, the function table found
    in .data.rel.ro and its text start in a relocation): the Go wrappers are found, and every call `age
    --version` makes is in its own set or the one reached through glibc."""
    from analyzer import pipeline
    from analyzer.facts import Context, loader

    path = str(binaries_built["age-debian"])
    shared = (loader.Options(), loader.Sysroot("/"))
    request = pipeline.Request(pipeline.plan(None, ["syscalls"]), Context(loader=shared))
    (result,) = pipeline.scan([path], request)
    f = result.entry["facts"]["syscalls"]
    assert {"syscall.Syscall", "syscall.RawSyscall6"} <= set(f["wrappers"])
    missing = _strace([path, "--version"]) - set(f["names"]) - set(f["via_libraries"]["names"]) - KERNEL_MADE
    assert not missing, sorted(missing)


def test_same_bytes_for_any_jobs_and_hash_seed(binaries_built: dict[str, Path]) -> None:
    """The JSON report and the seccomp profiles do not depend on --jobs or the hash seed (sets are
    sorted wherever they become output)."""
    files = [str(binaries_built[n]) for n in ("gomx-linux-amd64", "c-rawsys", "gomx-linux-arm64")] + ["/usr/bin/true"]
    for options in (["--format", "json"], ["--seccomp", "docker"]):
        outputs = {
            run_binlens("syscalls", *options, "--jobs", jobs, *files, prefix=["env", f"PYTHONHASHSEED={seed}"]).stdout
            for jobs, seed in (("1", "1"), ("2", "2"))
        }
        assert len(outputs) == 1, options


def test_each_program_its_own_loader_in_one_run(binaries_built: dict[str, Path]) -> None:
    """Programs of different loaders in one run (glibc's ld.so and musl's, which is its libc): each one's
    `loader` set is its own loader's, as when it is analysed alone (a library's model is kept for the run by
    its real path)."""
    from analyzer import pipeline
    from analyzer.facts import Context, loader

    def reach(paths: list[str]) -> list[dict]:
        shared = (loader.Options(), loader.Sysroot("/"))
        request = pipeline.Request(pipeline.plan(None, ["syscalls"]), Context(loader=shared))
        return [r.entry["facts"]["syscalls"]["via_libraries"] for r in pipeline.scan(paths, request)]

    paths = [str(binaries_built["c-libcalls-x86_64"]), str(binaries_built["musl-app"])]
    together = reach(paths)
    alone = [reach([p])[0] for p in paths]
    assert together == alone
    assert together[0]["loader"] != together[1]["loader"]


def test_mips_library_with_several_gots_stays_sound() -> None:
    """A MIPS library whose GOT outgrew 64 KiB has several, and each function's $gp is its own: the model then
    takes no GOT entry for known, and every function that calls through a register may call any name the GOT
    binds (Debian's mips64el libc with its .got's size made 64 KiB + 8 in the section header)."""
    path = "/usr/mips64el-linux-gnuabi64/lib/libc.so.6"
    data = bytearray(Path(path).read_bytes())
    elf = load.open_artifacts(path)[0].binary
    (got,) = [s for s in elf.sections if s.name == ".got"]
    at = elf.e_shoff + elf.sections.index(got) * elf.e_shentsize + 32  # Elf64_Shdr.sh_size
    data[at : at + 8] = (0x10008).to_bytes(8, "little")
    from analyzer.load.elf import ELFFile

    normal = libraries.model(elf, "mipsn64", time.monotonic() + 60)
    several = libraries.model(ELFFile(bytes(data), path), "mipsn64", time.monotonic() + 60)
    names = set().union(*normal.imports.values())
    assert names and all(names <= several.imports.get(f, set()) for f in several.indirect)
    assert set().union(*several.calls.values()) == set().union(*normal.calls.values())


@pytest.mark.parametrize("arch", ["arm", "ppc64le", "mips64el"])
def test_a_damaged_library_leaves_the_program_its_facts(binaries_built: dict[str, Path], arch: str,
                                                        tmp_path: Path) -> None:  # fmt: skip
    """c-libcalls in a copy of its cross sysroot whose C library has byte flips all over it (dynamic section,
    relocations, GOT, code), or random bytes for code: the program's facts stand, in bounded time; the library
    is modelled as far as it reads, or the reach says it could not be (`incomplete`), never a traceback."""
    import random
    import shutil


    root = tmp_path / "root"
    shutil.copytree(CROSS[arch][0], root, symlinks=True)
    libc = next(p for p in (root / "lib" / "libc.so.6", root / "lib64" / "libc.so.6") if p.exists())
    good = libc.read_bytes()
    text = _section(good, b".text")
    assert text is not None
    rng = random.Random(arch)
    flipped = bytearray(good)
    for _ in range(2000):
        flipped[rng.randrange(64, len(flipped))] = rng.randrange(256)
    garbage = bytearray(good)
    garbage[text[1] : text[1] + text[2]] = rng.randbytes(text[2])
    for blob in (bytes(flipped), bytes(garbage)):
        libc.write_bytes(blob)
        start = time.monotonic()
        entry, _ = _in_sysroot(str(binaries_built[f"c-libcalls-{arch}"]), str(root))
        assert time.monotonic() - start < 60
        assert not entry.get("error"), entry.get("error")
        f = entry["facts"]["syscalls"]
        assert f["site_counts"] == _facts(binaries_built[f"c-libcalls-{arch}"])["site_counts"]
        via = f["via_libraries"]
        assert via["modelled"] and isinstance(via["incomplete"], list)


def test_a_library_the_model_cannot_read_is_named(binaries_built: dict[str, Path], monkeypatch: pytest.MonkeyPatch
                                                  ) -> None:  # fmt: skip
    """When modelling a library fails all the same (no damage the fuzzing tried made it fail: the failure is
    injected here), the program keeps its facts and the reach names the library it could not follow."""

    real = libraries.model

    def failing(elf: object, abi: str, deadline: float) -> libraries.Model:
        if str(getattr(elf, "path", "")).endswith("/libc.so.6"):
            raise ValueError("injected")
        return real(elf, abi, deadline)  # type: ignore[arg-type]

    monkeypatch.setattr(libraries, "model", failing)
    entry, _ = _in_sysroot(str(binaries_built["c-libcalls-aarch64"]), CROSS["aarch64"][0])
    assert not entry.get("error")
    via = entry["facts"]["syscalls"]["via_libraries"]
    assert "/lib/libc.so.6: not modelled (ValueError: injected): its calls are not followed" in via["incomplete"]
    assert "/lib/libc.so.6" not in via["by_library"] and via["loader"]


def test_lying_packed_relocations_stay_bounded() -> None:
    """A DT_RELRSZ that claims the rest of the file, over bytes that read as full bitmaps (every bit a place):
    the packed relocations give at most one place per word of the file (here they would give 63 per bitmap
    word, 18 million), and reading the words at them ends promptly."""
    import struct

    from analyzer.load.elf import ELFFile

    path = "/usr/powerpc64le-linux-gnu/lib/libc.so.6"
    data = bytearray(Path(path).read_bytes())
    elf = ELFFile(bytes(data), path)
    (dynamic,) = [s for s in elf.sections if s.name == ".dynamic"]
    relr = dict(elf.dynamic)[36]
    relr_off = elf.vaddr_to_offset(relr)
    for at in range(dynamic.sh_offset, dynamic.sh_offset + dynamic.sh_size, 16):
        if struct.unpack_from("<q", data, at)[0] == 35:  # DT_RELRSZ
            struct.pack_into("<Q", data, at + 8, len(data) - relr_off)
    assert relr_off + 8 < dynamic.sh_offset
    data[relr_off + 8 : dynamic.sh_offset] = b"\xff" * (dynamic.sh_offset - relr_off - 8)  # the dynamic section kept
    lying = ELFFile(bytes(data), path)
    assert dict(lying.dynamic)[35] == len(data) - relr_off
    places = libraries._relr_places(lying)
    assert len(data) // 16 < len(places) <= len(data) // 8
    start = time.monotonic()
    libraries._relr_values(lying)
    assert time.monotonic() - start < 30


def test_an_image_as_sysroot_equals_its_unpacked_tree(fixtures_built: dict[str, Path], tmp_path: Path) -> None:
    """`syscalls --sysroot IMAGE /bin/ls` (or `syscalls 'IMAGE!bin/ls'`) models ls and the libraries it loads inside
    the image (merged /usr, libc6
    and coreutils, no libselinux): the same calls, per library, and the same missing library as `syscalls
    --sysroot TREE TREE/bin/ls` on the image unpacked layer by layer with tar; its seccomp profile allows them. A
    program the image lacks is a one-line error, exit 2."""
    from test_archives import _deb_layer, _extract_layers, _image

    layers = [_deb_layer(fixtures_built["libc6.deb"], True),
              _deb_layer(fixtures_built["coreutils.deb"], False)]
    img = _image(tmp_path, layers, "docker")
    fs = _extract_layers(tmp_path, layers, "--keep-directory-symlink")
    cache = ("--cache-dir", str(tmp_path / "cache"))  # (each library modelled once, kept by its content)

    def run(*args: str) -> tuple[dict, str]:
        out = run_binlens("syscalls", "--format", "json", *cache, *args)
        assert out.returncode == 0, out.stderr
        (entry,) = json.loads(out.stdout)["artifacts"]
        text = json.dumps(entry["facts"]["syscalls"]).replace(json.dumps(entry["path"])[1:-1], "PROGRAM")
        return json.loads(text.replace(str(fs), "ROOT").replace(str(img), "ROOT")), entry["path"]

    mine, name = run("--sysroot", str(img), "/bin/ls")
    theirs, _ = run("--sysroot", str(fs), str(fs / "bin" / "ls"))
    assert name == f"{img}!bin/ls" and mine == theirs
    assert run(f"{img}!bin/ls") == (mine, name)  # (an image's member: resolved in its image)
    via = mine["via_libraries"]
    assert via["missing_libraries"] == ["libselinux.so.1"] and "openat" in via["names"]  # (the image's libc's)
    profile = json.loads(run_binlens("syscalls", "--seccomp", "docker", *cache, "--sysroot", str(img),
                                     "/bin/ls").stdout)  # fmt: skip
    allowed = {n for rule in profile["syscalls"] for n in rule["names"]}
    assert set(via["names"]) <= allowed  # (the image's libraries' calls: the container's profile)
    bad = run_binlens("syscalls", "--sysroot", str(img), "/bin/nowhere")
    assert bad.returncode == 2 and "no such file in the image: /bin/nowhere" in bad.stderr


def test_a_set_of_packages_as_sysroot_equals_their_tree(fixtures_built: dict[str, Path], tmp_path: Path) -> None:
    """`syscalls --sysroot libc6.deb --sysroot coreutils.deb /bin/cat` (as `deps` takes a set of packages
    installed together): cat and the C library it loads, the same calls as in the tree `dpkg-deb -x` makes of
    both. (A second --sysroot replaced the first without a word: the C library missing, and with it every
    call cat makes through it — a seccomp profile too narrow to run it.) `explain` takes the set too."""
    debs = [fixtures_built["libc6.deb"], fixtures_built["coreutils.deb"]]
    fs = tmp_path / "fs"
    for deb in debs:
        subprocess.run(["dpkg-deb", "-x", str(deb), str(fs)], check=True)

    cache = ("--cache-dir", str(tmp_path / "cache"))  # (the C library modelled once, kept by its content)

    def run(*args: str) -> dict:
        out = run_binlens("syscalls", "--format", "json", *cache, *args)
        assert out.returncode == 0, out.stderr
        (entry,) = json.loads(out.stdout)["artifacts"]
        text = json.dumps(entry["facts"]["syscalls"]).replace(json.dumps(entry["path"])[1:-1], "PROGRAM")
        return json.loads(text.replace(str(fs), "ROOT").replace(",".join(map(str, debs)), "ROOT"))

    mine = run("--sysroot", str(debs[0]), "--sysroot", str(debs[1]), "/bin/cat")
    assert mine == run("--sysroot", str(fs), str(fs / "bin" / "cat"))
    assert mine["via_libraries"]["missing_libraries"] == [] and "openat" in mine["via_libraries"]["names"]
    message = "cat: /lib/x86_64-linux-gnu/libc.so.6: version `GLIBC_2.99' not found (required by cat)"
    both = run_binlens("explain", "--sysroot", str(debs[0]), "--sysroot", str(debs[1]), "--binary", "/bin/cat",
                       message)
    assert both.returncode == 0 and "GLIBC_2.99" in both.stdout, both.stderr
    bad = run_binlens("syscalls", "--sysroot", str(fs), "--sysroot", str(debs[1]), "/bin/cat")
    assert bad.returncode == 2 and bad.stderr.strip() == (
        f"binlens: {fs}: a sysroot given with others must be a container (image, tarball, package)"), bad.stderr


def test_a_stripped_static_glibc_241_program(binaries_built: dict[str, Path]) -> None:
    """Debian 13's busybox-static: glibc 2.41 linked statically and stripped, its cancellable calls (sleep's
    clock_nanosleep, nc's connect, ping's sendto and recvfrom) made through __syscall_cancel. A stripped static
    program was one function, so that helper was no wrapper and none of them was found; its code is now split
    where its direct calls land. Every call the applets make under strace is in binlens's set, and the helpers
    are wrappers."""
    path = str(binaries_built["busybox-static-debian-13"])
    f = _facts(path)
    assert len([w for w in f["wrappers"] if w != "syscall"]) >= 2, f["wrappers"]
    seen: set[str] = set()
    for args in (["sleep", "0"], ["nc", "-w", "1", "127.0.0.1", "9"], ["ping", "-c", "1", "-W", "1", "127.0.0.1"],
                 ["cat", "/proc/self/status"], ["ls", "-la", "/"]):
        seen |= _strace([path, *args])
    assert {"clock_nanosleep", "connect"} <= seen, sorted(seen)
    assert not seen - set(f["names"]) - KERNEL_MADE, sorted(seen - set(f["names"]) - KERNEL_MADE)
