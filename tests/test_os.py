"""The OS a binary is for: against file(1) for every ELF fixture that file names an OS for, against GOOS as
`go version -m` prints it for every Go fixture; Linux targets fail other systems' binaries; rules that only
make sense on Linux stay quiet elsewhere."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import build
import pytest
from conftest import run_binlens, starts_with

from analyzer import pipeline
from analyzer.policy import config

# file(1)'s words -> binlens' os name
FILE_OS = (("FreeBSD", "freebsd"), ("NetBSD", "netbsd"), ("OpenBSD", "openbsd"), ("GNU/Linux", "linux"),
           ("/system/bin/linker", "android"))  # fmt: skip
OS_FIXTURES = [f.name for f in build.FIXTURES if "os" in f.tags]


def _file_os(out: str) -> str | None:
    for words, name in FILE_OS:
        if f"for {words}" in out or f"({words})" in out or (words.startswith("/") and words in out):
            return name
    return None


def test_os_agrees_with_file(fixtures_built: dict[str, Path]) -> None:
    checked = set()
    for name, path in fixtures_built.items():
        if not path.is_file() or not starts_with(path, b"\x7fELF"):
            continue
        expected = _file_os(subprocess.run(["file", "-b", str(path)], capture_output=True, text=True).stdout)
        if expected is None:
            continue
        (entry, *_) = pipeline.analyze_file(str(path))  # (a PyInstaller program: its bundled binaries follow)
        assert entry["facts"]["os"]["name"] == expected, (name, entry["facts"]["os"])
        checked.add(expected)
    assert checked >= {"freebsd", "netbsd", "openbsd", "linux", "android"}


def test_os_agrees_with_goos(fixtures_built: dict[str, Path]) -> None:
    go = str(build.go_binary())
    checked = set()
    for fx in build.FIXTURES:
        if "go" not in fx.tags or "fat" in fx.tags:
            continue
        out = subprocess.run([go, "version", "-m", str(fixtures_built[fx.name])], capture_output=True, text=True)
        m = re.search(r"^\s+build\s+GOOS=(\S+)$", out.stdout, re.M)
        assert m, (fx.name, out.stdout, out.stderr)
        (entry, *_) = pipeline.analyze_file(str(fixtures_built[fx.name]))
        assert entry["facts"]["os"]["name"] == {"darwin": "macos"}.get(m[1], m[1]), fx.name
        checked.add(m[1])
    assert checked >= {"linux", "windows", "darwin", "freebsd", "netbsd", "openbsd", "dragonfly", "solaris",
                       "illumos", "android"}  # fmt: skip


TRAP_MNEMONICS = {"syscall", "sysenter", "svc", "swi", "ecall", "sc", "scv"}


def _objdump_traps(path: Path) -> int:
    """How many instructions that enter a kernel binutils' objdump disassembles in the file's code."""
    out = subprocess.run(["objdump", "-d", str(path)], capture_output=True, text=True, check=True).stdout
    count = 0
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and re.match(r"^\s*[0-9a-f]+:$", parts[0]):
            words = parts[2].split()
            op = " ".join(parts[2:])
            count += bool(words) and (words[0] in TRAP_MNEMONICS or (words[0] == "int" and "$0x80" in op)
                                      or (words[0] == "call" and "%gs:0x10" in op))
    return count


def test_static_programs_without_a_trap_are_for_no_os(binaries_built: dict[str, Path]) -> None:
    """A static ELF program that says nothing of its OS is `none` (firmware, a kernel, a boot stage: no Linux
    distribution runs it) exactly when binutils' objdump finds no instruction in its code that enters a kernel;
    static Linux programs of every architecture (musl's, raw system calls) stay `unknown` (before: bare-metal
    programs for Cortex-M, AArch64, RISC-V and x86-64 "ran on ubuntu-18.04+, debian-8+, ...")."""
    seen = {"none": 0, "unknown": 0}
    for name, path in sorted(binaries_built.items()):
        fx = build.BY_NAME[name]
        if "static" not in fx.tags or fx.tool == "go" or not starts_with(path, b"\x7fELF"):
            continue
        (entry, *_) = pipeline.analyze_file(str(path))
        os_name = entry["facts"]["os"]["name"]
        if os_name not in seen or entry["facts"]["linkage"] not in ("static", "static-pie"):
            continue
        traps = _objdump_traps(path)
        if "s390" in name:  # (its two-byte svc is not looked for: nothing is concluded)
            assert os_name == "unknown", name
            continue
        assert (os_name == "none") == (traps == 0), (name, os_name, traps)
        seen[os_name] += 1
    assert seen["none"] >= 4 and seen["unknown"] >= 10, seen


@pytest.mark.parametrize("name", OS_FIXTURES)
def test_linux_targets_fail_other_systems(fixtures_built: dict[str, Path], name: str) -> None:
    cfg = config.Config()
    cfg.set("targets", ["debian-12", "glibc-2.40", "manylinux_2_28", "musllinux_1_2"])
    request = pipeline.Request.for_policy(config.build_policy(cfg))
    (entry,) = pipeline.analyze_file(str(fixtures_built[name]), request)
    findings = pipeline.finish(entry, request).findings
    compat = entry["facts"]["compat"]
    assert not any(t["ok"] for t in compat["targets"].values()) and compat["oldest"] == {}
    flagged = {f["evidence"]["target"] for f in findings if f["rule"] == "LNK011"}
    assert flagged == set(compat["targets"])


def test_exec_stack_rule_only_for_linux(fixtures_built: dict[str, Path]) -> None:
    """The BSDs' and Solaris' loaders map the stack non-executable without PT_GNU_STACK (readelf shows none)."""
    quiet = 0
    for name in OS_FIXTURES:
        path = str(fixtures_built[name])
        segments = subprocess.run(["readelf", "-lW", path], capture_output=True, text=True).stdout
        report = pipeline.Request.for_policy(config.build_policy(config.Config()))
        (entry,) = pipeline.analyze_file(path, report)
        rules = {f["rule"] for f in pipeline.finish(entry, report).findings}
        if "GNU_STACK" not in segments and entry["facts"]["os"]["name"] != "android":
            assert "LNK006" not in rules, name
            quiet += 1
    assert quiet >= 3


def test_deps_refuses_other_systems(fixtures_built: dict[str, Path]) -> None:
    path = str(fixtures_built["c-x86_64-freebsd"])
    proc = run_binlens("deps", path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "freebsd" in proc.stderr
