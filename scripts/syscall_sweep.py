#!/usr/bin/env python3
"""The full sweep of the system-call oracles; CI runs a representative sample (tests/test_syscalls.py).

    python scripts/syscall_sweep.py
    python scripts/syscall_sweep.py --root ROOT ...   # step 5 only

1. Recall: every Linux Go fixture of every Go release (fixtures/build.py's matrix) and every static C
   fixture that qemu-user runs, under `qemu-ARCH -strace` (strace -f for x86-64 and i386): every system call
   made must be in binlens's set.
2. Dynamic programs: coreutils and other programs of this machine under strace -f with typical arguments:
   every call made must be in the program's own set or the one it reaches through its libraries.
3. Sites: the trap addresses of every ELF fixture binutils can disassemble equal objdump -d's.
4. Calls made inside the C library: tests/test_syscalls.py's test of them on every architecture with a Debian
   cross sysroot (CI runs four), each program run by qemu-ARCH -strace in that sysroot.
5. Dynamic programs of another architecture (`--root ROOT`, a root filesystem such as `debootstrap --foreign
   --arch=arm64`'s, its ldconfig run: scripts/rootfs_sweep.py): its programs run by qemu-ARCH -L ROOT -strace
   with the arguments of step 2; every call made must be in `binlens syscalls --sysroot ROOT`'s set of the
   program and its libraries (the loader's own included).
Prints one line per program and a summary; exit 1 when anything is missing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ["BINLENS_FULL_MATRIX"] = "1"  # (every Go release on every target: fixtures/build.py, read at import)
sys.path.insert(0, str(ROOT / "fixtures"))
sys.path.insert(0, str(ROOT))

KERNEL_MADE = {"rt_sigreturn", "sigreturn", "restart_syscall"}
QEMU = {"i386": "strace", "x86_64": "strace", "arm": "qemu-arm", "aarch64": "qemu-aarch64",
        "riscv64": "qemu-riscv64", "s390x": "qemu-s390x", "mipsn64": "qemu-mips64el",
        "loongarch64": "qemu-loongarch64", "mipso32": "qemu-mipsel", "mipsn32": "qemu-mipsn32el"}  # fmt: skip
DYNAMIC = [
    ["true"], ["ls", "-la", "/usr"], ["cat", "/etc/hostname"], ["date"], ["sort", "/etc/passwd"],
    ["cp", "/etc/hostname", "{tmp}/x1"], ["id"], ["uname", "-a"], ["head", "-c", "10", "/etc/passwd"],
    ["wc", "/etc/passwd"], ["sha256sum", "/etc/hostname"], ["stat", "/"], ["env"], ["df", "/"],
    ["du", "-s", "/etc/apt"], ["find", "/etc/apt", "-name", "*.list"], ["grep", "-r", "root", "/etc/passwd"],
    ["tar", "-cf", "{tmp}/x.tar", "/etc/hostname"], ["gzip", "-c", "/etc/hostname"],
    ["sed", "s/a/b/", "/etc/hostname"],
    ["sleep", "0.01"], ["touch", "{tmp}/x2"], ["mkdir", "-p", "{tmp}/x3/y"], ["ln", "-sf", "/etc/hostname", "{tmp}/x4"],
    ["readlink", "-f", "/etc/hostname"], ["bash", "-c", "echo hi"],
    ["/usr/bin/python3.11", "-c", "import json; print(1)"],
    ["ps", "-e"], ["xz", "-c", "/etc/hostname"], ["md5sum", "/etc/hostname"], ["tail", "-n", "2", "/etc/passwd"],
    ["dpkg", "-l"], ["perl", "-e", "print 1"], ["apt-get", "--version"], ["nproc"], ["sha512sum", "/etc/hostname"],
    ["od", "-c", "/etc/hostname"], ["getent", "passwd", "root"], ["gpgv", "--version"], ["dash", "-c", "echo hi"],
    ["chmod", "644", "{tmp}/x2"], ["base64", "/etc/hostname"], ["cut", "-d:", "-f1", "/etc/passwd"],
    ["tr", "a-z", "A-Z", "/etc/hostname"], ["xargs", "--version"], ["mktemp", "-p", "{tmp}"], ["rm", "-f", "{tmp}/x1"],
]  # fmt: skip
TRAP = {"x86_64": r"\t(syscall|int\s+\$0x80|sysenter)\s*$", "i386": r"\t(syscall|int\s+\$0x80|sysenter)\s*$",
        "aarch64": r"\tsvc\t", "riscv64": r"\tecall\s*$", "ppc64": r"\t(sc|scv)(\s|$)", "s390x": r"\tsvc\t",
        "mipsn64": r"\tsyscall\b", "mipso32": r"\tsyscall\b", "mipsn32": r"\tsyscall\b",
        "arm": r"\tsvc\t(0|0x00000000|0x009[0f]0[0-7][0-9a-f]{2})$"}  # fmt: skip


def facts(path: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "analyzer", "syscalls", "--format", "json", path],
                         capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    if out.returncode:
        raise SystemExit(f"binlens syscalls {path}: exit {out.returncode}: {out.stderr.strip()}")
    return json.loads(out.stdout)["artifacts"][0]["facts"]["syscalls"]


def observed(cmd: list[str], abi: str, big: bool) -> set[str] | None:
    if QEMU.get(abi) == "strace" or abi == "dynamic":
        run = ["strace", "-f", "-qq", "-o", "/dev/stderr", *cmd]
        pattern = r"^(?:\[pid\s+\d+\] |\d+ +)?(\w+)\("
    else:
        qemu = "qemu-ppc64" if abi == "ppc64" and big else "qemu-ppc64le" if abi == "ppc64" else QEMU.get(abi)
        if qemu is None:
            return None
        run, pattern = [qemu, "-strace", *cmd], r"^\d+ (\w+)\("
    try:
        out = subprocess.run(run, capture_output=True, text=True, errors="replace", timeout=120,
                             stdin=subprocess.DEVNULL)  # fmt: skip
    except subprocess.TimeoutExpired:
        print(f"{cmd[0]}: timed out under {run[0]}")
        return None
    calls = [m[1] for m in re.finditer(pattern, out.stderr + out.stdout, re.M)]
    if run[0] == "strace" and calls and calls[0] == "execve":
        calls = calls[1:]
    return set(calls)


def foreign_root(root: str) -> int:
    """Step 5: DYNAMIC's programs of ROOT run by qemu-user in it; the number of programs with a call missing."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from rootfs_sweep import CPUS, _arch, _within

    arch = _arch(root)
    # an x86-64 root: its programs run by its own loader (libraries from its directories) under strace -f
    multiarch = f"{root}/lib/x86_64-linux-gnu:{root}/usr/lib/x86_64-linux-gnu"
    runner = ["strace", "-f", "-qq", "-o", "/dev/stderr", _within(root, "/lib64/ld-linux-x86-64.so.2"),
              "--library-path", multiarch] if arch == "x86_64" else [CPUS[arch][0], "-L", root, "-strace"]
    failures = 0
    print(f"== {root} ({arch}): dynamic programs under {runner[0]}")
    with tempfile.TemporaryDirectory() as tmp:
        for cmd in DYNAMIC:
            prog = next((f"/{d}/{cmd[0]}" for d in ("usr/bin", "bin", "usr/sbin", "sbin")
                         if os.path.isfile(_within(root, f"/{d}/{cmd[0]}"))), None) if "/" not in cmd[0] else None
            if prog is None:
                continue
            out = subprocess.run([sys.executable, "-m", "analyzer", "syscalls", "--format", "json", "--sysroot", root,
                                  _within(root, prog)], capture_output=True, text=True, cwd=ROOT)
            if out.returncode:
                raise SystemExit(f"binlens syscalls {prog}: exit {out.returncode}: {out.stderr.strip()}")
            f = json.loads(out.stdout)["artifacts"][0]["facts"]["syscalls"]
            via = f.get("via_libraries") or {}
            args = [a.replace("{tmp}", tmp) for a in cmd[1:]]
            run = subprocess.run([*runner, _within(root, prog), *args], capture_output=True, text=True,
                                 errors="replace", timeout=120, stdin=subprocess.DEVNULL)
            if arch == "x86_64":  # (strace's own exec of the loader left out)
                calls = [m[1] for m in re.finditer(r"^(?:\[pid\s+\d+\] |\d+ +)?(\w+)\(", run.stderr, re.M)]
                seen = set(calls[1:] if calls[:1] == ["execve"] else calls)
            else:  # qemu names socketcall's operations in capitals (SOCKET, CONNECT, ...), as i386 and s390x make them
                seen = {"socketcall" if m[1].isupper() else m[1]
                        for m in re.finditer(r"^\d+ (\w+)\(", run.stderr + run.stdout, re.M)}
            missing = sorted(seen - set(f["names"]) - set(via.get("names", [])) - KERNEL_MADE)
            dlopen = any("dlopen" in i for i in via.get("incomplete", []))
            failures += bool(missing) and not dlopen
            found = set(f["names"]) | set(via.get("names", []))
            print(f"{cmd[0]:12} made {len(seen):3} found {len(found):3} missing {missing}"
                  f"{' (incomplete: dlopen)' if dlopen else ''}")
    return failures


def main() -> int:
    if "--root" in sys.argv:
        roots = [sys.argv[i + 1] for i, a in enumerate(sys.argv) if a == "--root"]
        failures = sum(foreign_root(r.rstrip("/")) for r in roots)
        print(f"== {failures} failures")
        return 1 if failures else 0
    import build

    built = build.build_all()
    failures = 0
    print("== recall: fixtures under qemu -strace / strace")
    for name, path in sorted(built.items()):
        fx = build.BY_NAME[name]
        env = dict(fx.env)
        runnable = (fx.tool == "go" and env.get("GOOS") == "linux") or (
            "static" in fx.tags and "syscalls" not in fx.tags
        )
        if not runnable or not path.is_file():
            continue
        f = facts(str(path))
        seen = observed([str(path)], f["abi"], path.read_bytes()[5] == 2)
        if seen is None:
            continue
        via = set((f.get("via_libraries") or {}).get("names", []))  # Go with cgo or -buildmode=pie: dynamic
        unknown = {c for c in seen if c.startswith("syscall_")}  # numbers strace does not name
        missing = sorted(seen - unknown - set(f["names"]) - via - KERNEL_MADE)
        failures += bool(missing)
        print(
            f"{name:40} {f['abi']:12} made {len(seen):3} found {len(f['names']):3} missing {missing}"
            f"{' strace could not name ' + str(sorted(unknown)) if unknown else ''}"
        )
    print("== dynamic programs under strace -f")
    with tempfile.TemporaryDirectory() as tmp:
        for cmd in DYNAMIC:
            prog = shutil.which(cmd[0])
            if prog is None:
                continue
            cmd = [a.replace("{tmp}", tmp) for a in cmd]
            f = facts(prog)
            via = f.get("via_libraries") or {}
            seen = observed([prog, *cmd[1:]], "dynamic", False) or set()
            missing = sorted(seen - set(f["names"]) - set(via.get("names", [])) - KERNEL_MADE)
            # calls made by libraries the program dlopens are outside the model, and the facts say so
            failures += bool(missing) and not any("dlopen" in i for i in via.get("incomplete", []))
            found = set(f["names"]) | set(via.get("names", []))
            dlopen = "(incomplete: dlopen)" if any("dlopen" in i for i in via.get("incomplete", [])) else ""
            print(f"{cmd[0]:12} made {len(seen):3} found {len(found):3} missing {missing} {dlopen}")
    print("== sites against objdump -d")
    for name, path in sorted(built.items()):
        if not path.is_file() or path.read_bytes()[:4] != b"\x7fELF":
            continue
        f = facts(str(path))
        if not f.get("supported") or f["abi"] not in TRAP or f["abi"] == "loongarch64":
            continue
        out = subprocess.run(["objdump", "-d", str(path)], capture_output=True, text=True).stdout
        theirs = sorted(int(line.split(":")[0], 16) for line in out.splitlines() if re.search(TRAP[f["abi"]], line))
        ours = sorted(
            int(s["address"], 16) for s in f["sites"] if s["kind"] == "trap" and "gs:" not in s["instruction"]
        )
        if ours != theirs:
            failures += 1
            print(f"{name}: binlens {len(ours)} objdump {len(theirs)}")
    print("== calls made inside the C library, every cross sysroot")
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0",
                          "tests/test_syscalls.py::test_calls_made_inside_the_c_library"], cwd=ROOT)  # fmt: skip
    failures += run.returncode != 0
    print(f"== {failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
