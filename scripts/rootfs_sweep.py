#!/usr/bin/env python3
"""`binlens scan ROOT --check-loading` against the root filesystem's own loader, run in it.

    sudo python scripts/rootfs_sweep.py ROOT [--baseline] [--cpu CPU] [--swap PATH=FILE ...] [--bind]
                                        [--runtime-from OLDROOT --verdict RELEASE]
    # e.g. debootstrap --variant=minbase bookworm ROOT, or for another architecture
    # debootstrap --foreign --variant=minbase --arch=arm64 bookworm ROOT; qemu-aarch64 ROOT/sbin/ldconfig -r ROOT

For every program and plugin binlens resolves in ROOT, the root's own loader run with `--list` on it must map the
same libraries from the same paths, and a program binlens says fails to load (a DEP error) must be one that
loader fails to list. Prints each difference and a count; exit 1 on any.

An x86-64 root: `/lib64/ld-linux-x86-64.so.2 --list` chrooted into ROOT (as root). binlens predicts for this machine's
CPU (--isa-level host --cpu-vendor host); with --baseline, for its default CPU, and the loader sees this one made
a baseline x86-64 CPU (GLIBC_TUNABLES masks out SSE4.2, AVX2 and AVX-512).

A root of another architecture (aarch64, armhf, ppc64el, s390x, ...): its loader run by qemu's user-mode emulator,
`qemu-ARCH -L ROOT -cpu CPU ROOT/INTERPRETER --list PROGRAM` (-L: the emulated program's absolute paths are
looked up in ROOT first), as the CPU binlens is told to assume: by default the architecture's baseline CPU of
CPUS; `--cpu NAME` one of CPUS' other entries (e.g. `--cpu cortex-a76` with --isa-level armv8.1-a).

`--swap PATH=FILE` (repeatable): the sweep runs on a temporary copy of ROOT in which the file PATH names (its
links followed within ROOT) is FILE — an older release's libc.so.6 or libstdc++.so.6, say: then the loader's
`version ... not found` lines (one per missing node: --list goes on past them) must be binlens's version
problems, node for node.

`--bind`: the loader also binds every symbol as `ldd -r` has it do (LD_BIND_NOW=yes LD_WARN=yes): each
`undefined symbol` it prints must be one of binlens's undefined bindings, and each of those one it prints.

`--runtime-from OLDROOT`: the copy gets OLDROOT's C and C++ runtime instead of its own (the shared objects of its
libc6, libstdc++6 and libgcc-s1 packages, by the names the loader opens: an older release's), and with `--verdict
RELEASE` (that older release) each program's `--target RELEASE` verdict must name exactly the GLIBC, GLIBCXX,
CXXABI and GCC nodes the loader says the program itself lacks: a program said to run that does not, or said
not to that does, is a difference.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# binlens's architecture name: its qemu-user program and, per qemu CPU model (-cpu), the --isa-level that names
# that CPU (the first is the default: the architecture's baseline)
CPUS: dict[str, tuple[str, dict[str, str]]] = {
    "aarch64": ("qemu-aarch64", {"cortex-a72": "baseline", "cortex-a76": "armv8.1-a"}),
    "arm": ("qemu-arm", {"cortex-a15": "baseline"}),
    "ppc64le": ("qemu-ppc64le", {"power8": "baseline", "power9": "power9", "power10": "power10"}),
    "s390x": ("qemu-s390x", {"qemu": "z13"}),  # (TCG runs only its own model; glibc sees a z13)
    "riscv64": ("qemu-riscv64", {"rv64": "baseline"}),
    "mips64el": ("qemu-mips64el", {"5KEf": "baseline"}),
    "i386": ("qemu-i386", {"qemu32": "baseline"}),
}


VERSION_LINE = re.compile(r"^[^:]+: ([^:]+): version `([^']+)' not found \(required by (.+)\)$", re.M)


UNDEFINED_LINE = re.compile(r"^undefined symbol: ([^,\t]+)(?:, version (\S+))?\t\((.+)\)$", re.M)


def _within(tree: str, path: str) -> str:
    """PATH of ROOT as a host path, its links resolved within ROOT as binlens resolves them (Sysroot.host); one
    that is not there: ROOT + PATH."""
    from analyzer.facts.loader.sysroot import Sysroot

    return Sysroot(tree).host(path) or tree + path


def _enter(tree: str) -> None:
    os.chroot(tree)
    os.chdir("/")


def _arch(tree: str) -> str:
    """The architecture of ROOT's programs: binlens's name for that of /bin/sh (or /usr/bin/sh)."""
    for sh in ("bin/sh", "usr/bin/sh", "bin/dash", "usr/bin/dash"):
        if os.path.exists(_within(tree, "/" + sh)):
            out = subprocess.run([sys.executable, "-m", "analyzer", "inspect", "--format", "json",
                                  _within(tree, "/" + sh)], capture_output=True, text=True, cwd=ROOT)
            return str(json.loads(out.stdout)["artifacts"][0]["facts"]["arch"])
    raise SystemExit(f"{tree}: no /bin/sh to tell its architecture")


def main(argv: list[str]) -> int:
    baseline, bind = "--baseline" in argv, "--bind" in argv
    argv = [a for a in argv if a not in ("--baseline", "--bind")]
    cpu_name = None
    if "--cpu" in argv:
        at = argv.index("--cpu")
        cpu_name = argv[at + 1]
        del argv[at:at + 2]
    options = {}
    for name in ("--runtime-from", "--verdict"):
        if name in argv:
            at = argv.index(name)
            options[name] = argv[at + 1]
            del argv[at:at + 2]
    swaps = []
    while "--swap" in argv:
        at = argv.index("--swap")
        swaps.append(argv[at + 1].split("=", 1))
        del argv[at:at + 2]
    if len(argv) != 1:
        print(__doc__)
        return 2
    tree = argv[0].rstrip("/")
    verdict = options.get("--verdict")
    if "--runtime-from" in options:
        old = options["--runtime-from"].rstrip("/")
        listed = _package_files(old, RUNTIME_PACKAGES)
        # each shared object by the name the loader opens (its SONAME's link, or the file itself), and the loader
        swaps += [[p, os.path.realpath(_within(old, p))] for p in listed
                  if re.search(r"/(ld-linux[^/]*|[^/]+\.so\.\d+)$", p) and os.path.isfile(_within(old, p))]
    if swaps:
        with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(tree))) as tmp:
            copy = f"{tmp}/root"
            subprocess.run(["cp", "-a", "--reflink=auto", tree, copy], check=True)
            for inside, file in swaps:
                if not os.path.exists(_within(copy, inside)):
                    continue  # (a library the newer release no longer has)
                shutil.copyfile(file, _within(copy, inside))
                print(f"{inside} ({_within(copy, inside)[len(copy):]}) is now {file}")
            return _sweep(copy, baseline, cpu_name, bind, verdict)
    return _sweep(tree, baseline, cpu_name, bind, verdict)


RUNTIME_PACKAGES = ("libc6", "libstdc++6", "libgcc-s1")


def _package_files(root: str, packages: tuple[str, ...]) -> list[str]:
    """The paths the packages installed in ROOT (dpkg's database), or, in a root debootstrap --foreign only
    unpacked, the paths their .debs in its apt cache hold."""
    listed = subprocess.run(["dpkg", f"--root={root}", "-L", *packages], capture_output=True, text=True)
    if listed.returncode == 0:
        return listed.stdout.split()
    out = []
    for pkg in packages:
        for deb in Path(root, "var/cache/apt/archives").glob(f"{pkg}_*.deb"):
            names = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True, check=True).stdout
            out += [n[1:] for n in subprocess.run(["tar", "-t"], input=names, capture_output=True,
                                                   check=True).stdout.decode().split() if n.startswith("./")]
    return out
RUNTIME_NODES = ("GLIBC_", "GLIBCXX_", "CXXABI_", "GCC_")


def _sweep(tree: str, baseline: bool, cpu_name: str | None, bind: bool, verdict: str | None = None) -> int:
    arch = _arch(tree)
    loader_env: dict[str, str] = {}  # (set for the loader alone: chroot and qemu are dynamic programs too)
    if arch == "x86_64":
        # the loader runs on this machine's CPU: binlens predicts for it (glibc-hwcaps, haswell: docs/deps.md), or
        # both see a baseline CPU
        cpu = [] if baseline else ["--isa-level", "host", "--cpu-vendor", "host"]
        if baseline:
            loader_env["GLIBC_TUNABLES"] = ("glibc.cpu.hwcaps=-SSE4_2,-AVX2,-AVX512F,-AVX512CD,-AVX512BW,-AVX512DQ,"
                                            "-AVX512VL")
    else:
        qemu, models = CPUS[arch]
        cpu_name = cpu_name or next(iter(models))
        cpu = ["--isa-level", models[cpu_name]]
        print(f"{arch} root: its loader run by {qemu} -cpu {cpu_name}; binlens --isa-level {models[cpu_name]}")
    # --list lists; ldd -r's tracing (the loader given the program, LD_TRACE_LOADED_OBJECTS) also binds every symbol
    how = ["--list"]
    if bind:
        how = []
        loader_env.update(LD_TRACE_LOADED_OBJECTS="1", LD_BIND_NOW="yes", LD_WARN="yes")
    out = subprocess.run([sys.executable, "-m", "analyzer", "scan", tree, "--check-loading", "--format", "json",
                          "--no-cache", "--fail-on", "never", *cpu, *(["--target", verdict] if verdict else [])],
                         capture_output=True, text=True, cwd=ROOT,
                         check=True)
    compared = differ = failing = nodes = symbols = 0
    for a in json.loads(out.stdout)["artifacts"]:
        deps = a["facts"].get("deps")
        if not deps:
            continue
        inside = a["path"][len(tree):]
        interp = deps["interpreter"]["path"]
        if arch == "x86_64":
            # chroot(2) in the child itself: no program of ROOT (whose libraries may be swapped) runs but its loader
            listed = subprocess.run(["/lib64/ld-linux-x86-64.so.2", *how, inside], capture_output=True, text=True,
                                    env=loader_env, preexec_fn=partial(_enter, tree))
        else:
            listed = subprocess.run([CPUS[arch][0], "-L", tree, "-cpu", str(cpu_name),
                                     *(a for k, v in loader_env.items() for a in ("-E", f"{k}={v}")),
                                     _within(tree, interp), *how, inside], capture_output=True, text=True)
        theirs = {m[1]: m[2] for m in re.finditer(r"^\s+(\S+) => (\S+) \(0x", listed.stdout, re.M)
                  if not m[2].startswith(tree + "/")}  # (qemu's loader names itself by its path outside ROOT)
        mine = {x["name"]: x["path"] for x in deps["libraries"] if x["name"] != Path(interp).name}
        fails = any(f["rule"].startswith("DEP") and f["severity"] == "error" for f in a["findings"])
        # --list goes on past a missing version node (it prints one line per node and exits 0); a missing
        # library stops it (exit 1)
        their_versions = {(m[3], m[1], m[2]) for m in VERSION_LINE.finditer(listed.stderr)}
        my_versions = {(v["object"].removeprefix(tree), v["library"], v["version"]) for v in deps["version_problems"]}
        their_undefined = {(m[3], m[1], m[2] or None) for m in UNDEFINED_LINE.finditer(listed.stderr)} if bind \
            else set()
        my_undefined = {(u["object"].removeprefix(tree), u["symbol"], u["version"]) for u in deps["undefined"]} \
            if bind else set()
        loader_fails = listed.returncode != 0 or bool(their_versions) or bool(their_undefined)
        compared += 1
        if verdict:  # the nodes the program itself lacks, as the loader and as the verdict say
            problems = a["facts"]["compat"]["targets"][verdict]["problems"]
            said = {p["node"] for p in problems if p.get("kind") == "version" and p["node"].startswith(RUNTIME_NODES)}
            lacks = {v for o, _, v in their_versions if o == inside and v.startswith(RUNTIME_NODES)}
            if said != lacks:
                differ += 1
                print(f"{inside}: --target {verdict} says it lacks {sorted(said)}, the loader {sorted(lacks)}")
        failing += loader_fails and fails
        nodes += len(their_versions & my_versions)
        symbols += len(their_undefined & my_undefined)
        if loader_fails != fails or (listed.returncode == 0 and (mine != theirs or my_versions != their_versions
                                                                 or my_undefined != their_undefined)):
            differ += 1
            mapped = {n: (theirs.get(n), mine.get(n)) for n in {*theirs, *mine} if theirs.get(n) != mine.get(n)}
            print(f"{inside}: loader {'fails' if loader_fails else 'maps'}, binlens {'fails' if fails else 'maps'}; "
                  f"mapped differently (loader, binlens): {mapped}; versions missing for the loader only "
                  f"{sorted(their_versions - my_versions)}, for binlens only {sorted(my_versions - their_versions)}; "
                  f"undefined for the loader only {sorted(their_undefined - my_undefined)}, for binlens only "
                  f"{sorted(my_undefined - their_undefined)}")
    print(f"{compared} programs and plugins compared, {differ} differ ({failing} fail to load for both; "
          f"{nodes} missing version nodes and {symbols} undefined symbols agreed on)")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
