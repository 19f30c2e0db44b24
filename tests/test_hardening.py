"""Hardening facts against checksec 2.6 (Debian's `checksec`) and Debian's `hardening-check`, on every ELF fixture
and a sample of the machine's binaries and libraries: binlens agrees on every field they report, except the
cases named here, where the tool is known to be wrong and binlens says why."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from conftest import starts_with, system_elf_sample
from groundtruth import tool_output

from analyzer import pipeline

DF_1_NOW, DT_BIND_NOW_FLAGS = 0x1, 0x8


def _checksec(path: str) -> dict[str, str]:
    def run(path: str) -> dict[str, str]:
        out = subprocess.run(["checksec", "--output=json", f"--file={path}"], capture_output=True, text=True,
                             timeout=60)
        return json.loads(out.stdout)[path]

    if "[<localentry>: " in _readelf(path, "--dyn-syms"):
        return tool_output("checksec-localentry", ("checksec", "readelf", "file"), path, _checksec_localentry)
    return tool_output("checksec", ("checksec", "readelf", "file"), path, run)


def _checksec_localentry(path: str) -> dict[str, str]:
    """checksec reads a function's name as the 8th column of `readelf --dyn-syms`, which for POWER's ELFv2
    functions with a local entry point is `8]` (`DEFAULT [<localentry>: 8] UND __printf_chk`): it sees no fortified
    function in a ppc64el program. It runs here with a readelf whose lines leave that bracket out, bound over
    /usr/bin/readelf in a mount namespace of its own (checksec clears its environment, PATH included)."""
    real = os.path.realpath(shutil.which("readelf") or "/usr/bin/readelf")
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(real, f"{tmp}/readelf.real")
        strip = "sed 's/ \\[<localentry>: [0-9]*\\]//'"
        Path(tmp, "readelf").write_text(f"#!/bin/sh\n{tmp}/readelf.real \"$@\" | {strip}\n")
        os.chmod(f"{tmp}/readelf", 0o755)
        out = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                              'mount --bind "$1" "$2" && exec checksec --output=json --file="$3"', "sh",
                              f"{tmp}/readelf", real, path], capture_output=True, text=True, timeout=60, check=True)
    return json.loads(out.stdout)[path]


def _elf_paths(binaries_built: dict[str, Path]) -> list[str]:
    """Every fixture ELF file and a sample of this machine's: 100 in CI (checksec and hardening-check cost ~40 s
    over 300), 300 with BINLENS_FULL_MATRIX=1; scripts/hardening_sweep.py compares every ELF file of the machine."""
    fixtures = [str(p) for p in binaries_built.values() if starts_with(p, b"\x7fELF")]
    return fixtures + system_elf_sample(300 if os.environ.get("BINLENS_FULL_MATRIX") == "1" else 100)


def _expected_relro(reference: str, facts: dict) -> str:
    """checksec 2.6 calls RELRO full only with DT_BIND_NOW or DF_BIND_NOW; the loader also binds everything at
    start-up for DF_1_NOW alone (checksec 3.1 fixed this), and binlens follows the loader."""
    loader = facts["loader"]
    df_1_now_only = loader["dt_flags_1"] & DF_1_NOW and not loader["dt_flags"] & DT_BIND_NOW_FLAGS
    if reference == "partial" and df_1_now_only:
        return "full"
    return {"no": "none"}.get(reference, reference)


def _expected_pie(reference: str, path: str, facts: dict) -> str:
    """checksec 2.6 calls an ET_DYN a PIE only with DT_DEBUG; a shared object that is also a program (PT_INTERP, no
    SONAME, no DF_1_PIE: libcap's pam_cap.so, which prints its version when run) has none, and is "DSO" for it,
    a program for binlens (its `kind`, as `file` tests it: test_readelf_system)."""
    if reference == "dso" and facts["kind"] == "pie-executable" and "(DEBUG)" not in _readelf(path, "-d"):
        return "yes"
    return reference


def _hardening_check(path: str) -> dict[str, str]:
    def run(path: str) -> dict[str, str]:
        out = subprocess.run(["hardening-check", path], capture_output=True, text=True, timeout=120).stdout
        return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in out.splitlines()[1:]) if v}

    return tool_output("hardening-check", ("hardening-check", "objdump", "readelf"), path, run)


def _readelf(path: str, *options: str) -> str:
    return subprocess.run(["readelf", "-W", *options, path], capture_output=True, text=True,
                          errors="replace").stdout  # (symbol names need not be UTF-8)


def _hardening_check_expected(path: str, facts: dict, ref: dict[str, str]) -> dict[str, bool]:
    """hardening-check's yes/no per field, with its known heuristics turned into what the file says."""
    hard = facts["hardening"]
    pie = ref["Position Independent Executable"] == "yes"
    if pie and hard["pie"] == "dso" and " PHDR " in _readelf(path, "-l"):
        pie = False  # it calls any ET_DYN with PT_PHDR a PIE; a library may have one (libc.so.6 also runs)
    if not pie and facts.get("linkage") == "static-pie" and " PHDR " not in _readelf(path, "-l"):
        pie = True  # gcc -static-pie writes no PT_PHDR, so it says "regular shared library"; DF_1_PIE says PIE
    canary = ref["Stack protected"] == "yes"
    if not canary and hard["canary"]:
        symbols = _readelf(path, "-s")
        # it looks for an undefined __stack_chk_fail only: a static program defines it, and other architectures
        # use __stack_chk_guard (checksec's test, and binlens's)
        canary = any(name in symbols for name in ("__stack_chk_fail", "__stack_chk_guard", "__intel_security_cookie"))
    return {
        "pie": pie,
        "canary": canary,
        "relro": ref["Read-only relocations"] == "yes",
        "bind_now": ref["Immediate binding"] == "yes",
        "cfi": ref["Control flow integrity"] == "yes",
    }


MIN_SAMPLE = (200, 150)  # files checksec and hardening-check read in CI (scripts/hardening_sweep.py: any number)


def test_agrees_with_checksec_and_hardening_check(binaries_built: dict[str, Path]) -> None:
    paths = _elf_paths(binaries_built)
    # hardening-check disassembles the whole file (objdump -d): in CI it reads the files under 2 MB
    # (scripts/hardening_sweep.py runs both tools over every ELF file of the machine)
    small = [p for p in paths if Path(p).stat().st_size < 2 << 20]
    with ThreadPoolExecutor(4) as pool:
        references = dict(zip(paths, pool.map(_checksec, paths), strict=True))
        debian = dict(zip(small, pool.map(_hardening_check, small), strict=True))
    differences = []
    for path, ref in references.items():
        (entry, *_) = pipeline.analyze_file(path)
        facts = entry["facts"]
        hard = facts.get("hardening")
        if hard is None:
            continue
        if "Position Independent Executable" in debian.get(path, {}):
            cet = hard["cet"] or {}
            mine = {"pie": hard["pie"] == "yes", "canary": hard["canary"], "relro": hard["relro"] != "none",
                    "bind_now": hard["bind_now"], "cfi": bool(cet.get("ibt") and cet.get("shstk"))}  # fmt: skip
            theirs = _hardening_check_expected(path, facts, debian[path])
            if mine != theirs:
                differences.append(
                    (path, "hardening-check", {k: (theirs[k], mine[k]) for k in mine if mine[k] != theirs[k]})
                )
        got = {
            "relro": hard["relro"],
            "canary": "yes" if hard["canary"] else "no",
            "nx": "yes" if hard["nx"] else "no",
            "pie": hard["pie"],
            "rpath": "yes" if hard["rpath"] else "no",
            "runpath": "yes" if hard["runpath"] else "no",
            "symbols": "yes" if hard["symbols"] else "no",
            "fortify_source": "yes" if hard["fortify"]["source"] else "no",
            "fortified": str(hard["fortify"]["fortified"]),
            "fortify-able": str(hard["fortify"]["fortifiable"]),
        }
        expected = dict(ref, relro=_expected_relro(ref["relro"], facts), pie=_expected_pie(ref["pie"], path, facts))
        if got != expected:
            differences.append((path, "checksec", {k: (expected[k], got[k]) for k in got if got[k] != expected[k]}))
    assert differences == [], differences[:10]
    assert len(references) >= MIN_SAMPLE[0] and len(debian) >= MIN_SAMPLE[1]


def test_fixtures_built_both_ways(fixtures_built: dict[str, Path]) -> None:
    """Each mitigation on and off, as the compiler and linker flags of the fixture build say, and as checksec and
    hardening-check read them (the test above); here the flags themselves."""

    def hard(name: str) -> dict:
        return pipeline.analyze_file(str(fixtures_built[name]))[0]["facts"]["hardening"]

    on, off = hard("c-hardened"), hard("c-unhardened")
    assert (on["relro"], off["relro"], hard("c-lazy-relro")["relro"]) == ("full", "none", "partial")
    assert on["canary"] and not off["canary"]
    assert on["pie"] == "yes" and off["pie"] == "no"
    assert on["fortify"]["fortified"] > 0 and off["fortify"]["fortified"] == 0 < off["fortify"]["fortifiable"]
    assert hard("c-fortify3")["fortify"]["fortified"] > 0
    assert on["cet"] == {"ibt": True, "shstk": True} and off["cet"] is None
    assert hard("c-wx")["wx_segments"] and not on["wx_segments"]
    go_exe, go_pie = hard("go-linux-amd64"), hard("go-linux-amd64-pie")
    assert go_exe["pie"] == "no" and go_pie["pie"] == "yes" and go_pie["go"]["buildmode"] == "pie"


def test_hardened_profile_fails_what_the_default_lets_pass(fixtures_built: dict[str, Path]) -> None:
    from conftest import run_binlens

    soft = str(fixtures_built["c-unhardened"])
    assert run_binlens("scan", soft).returncode == 0
    hardened = json.loads(run_binlens("scan", "--profile", "hardened", "--format", "json", soft).stdout)
    rules = {f["rule"]: f["severity"] for f in hardened["artifacts"][0]["findings"]}
    assert {r for r, sev in rules.items() if r.startswith("HRD") and sev == "error"} >= {
        "HRD001", "HRD003", "HRD004", "HRD005", "HRD006"}  # fmt: skip
    assert run_binlens("scan", "--profile", "hardened", str(fixtures_built["c-hardened"])).returncode == 0
    assert run_binlens("scan", str(fixtures_built["c-wx"])).returncode == 1  # the loud one is in the default


def test_checksec_command_speaks_checksecs_json(fixtures_built: dict[str, Path]) -> None:
    """`binlens checksec --format json` has checksec's keys and values (the DF_1_NOW case named above)."""
    from conftest import run_binlens

    names = ("c-hardened", "c-unhardened", "c-lazy-relro", "libgreet-rpath.so.1", "usegreet", "go-linux-amd64")
    paths = [str(fixtures_built[n]) for n in names] + ["/bin/ls"]
    ours = json.loads(run_binlens("checksec", "--format", "json", *paths).stdout)
    for path in paths:
        ref = _checksec(path)
        facts = pipeline.analyze_file(path)[0]["facts"]
        assert ours[path] == dict(ref, relro={"none": "no"}.get(r := _expected_relro(ref["relro"], facts), r)), path
    table = run_binlens("checksec", *paths).stdout.splitlines()
    assert table[0].split()[:3] == ["RELRO", "STACK", "CANARY"] and len(table) == len(paths) + 1


PE_FLAGS = {"dynamic_base": "DYNAMIC_BASE", "high_entropy_va": "HIGH_ENTROPY_VA", "nx_compat": "NX_COMPAT",
            "force_integrity": "FORCE_INTEGRITY", "guard_cf_flag": "GUARD_CF", "no_seh": "NO_SEH"}  # fmt: skip


def _pe_paths(binaries_built: dict[str, Path]) -> list[str]:
    import glob

    fixtures = [str(p) for p in binaries_built.values() if starts_with(p, b"MZ")]
    return fixtures + sorted(
        glob.glob("/usr/lib/gcc/x86_64-w64-mingw32/*/*.dll") + glob.glob("/usr/x86_64-w64-mingw32/lib/*.dll")
    )


def test_pe_mitigations_agree_with_objdump_and_llvm_readobj(binaries_built: dict[str, Path]) -> None:
    """DllCharacteristics as objdump -p names them; /GS cookie, SafeSEH and CFG from the load config as
    llvm-readobj --coff-load-config prints it; on the PE fixtures (MinGW with and without the mitigations, Go,
    zig) and Debian's MinGW runtime DLLs."""
    import re

    paths = _pe_paths(binaries_built)
    checked_config = 0
    for path in paths:
        hard = pipeline.analyze_file(path)[0]["facts"]["hardening"]
        dump = subprocess.run(["objdump", "-p", path], capture_output=True, text=True).stdout
        block = dump.split("DllCharacteristics", 1)[1].split("SizeOfStackReserve", 1)[0]
        for key, flag in PE_FLAGS.items():
            assert hard[key] == (flag in block), (path, key)
        config = subprocess.run(["llvm-readobj", "--coff-load-config", path], capture_output=True, text=True).stdout
        if "LoadConfig [" not in config:
            assert hard["gs"] is None, path
            continue
        checked_config += 1
        cookie = int(re.search(r"SecurityCookie: (0x[0-9A-Fa-f]+)", config)[1], 16)
        guard = int(re.search(r"GuardFlags: (0x[0-9A-Fa-f]+)", config)[1], 16) if "GuardFlags:" in config else 0
        assert hard["gs"] == (cookie != 0), path
        assert hard["guard_cf"] == (hard["guard_cf_flag"] and bool(guard & 0x100)), path
    assert len(paths) >= 20 and checked_config >= 1
    on, off = (pipeline.analyze_file(_fixture(binaries_built, n))[0]["facts"]["hardening"]
               for n in ("mingw-default.exe", "mingw-unhardened.exe"))  # fmt: skip
    assert on["dynamic_base"] and on["nx_compat"] and on["high_entropy_va"]
    assert not (off["dynamic_base"] or off["nx_compat"] or off["high_entropy_va"])


def _fixture(binaries_built: dict[str, Path], name: str) -> str:
    return str(binaries_built[name])


def test_macho_mitigations_agree_with_llvm_objdump(binaries_built: dict[str, Path]) -> None:
    """The header flags and load commands as `llvm-objdump --macho --private-headers` prints them, the canary as
    its bind tables (`--bind --lazy-bind`) list the imports; the CodeDirectory read for every signed file."""
    checked = 0
    for path in [str(p) for p in binaries_built.values()]:
        for entry in pipeline.analyze_file(path):
            if entry["format"] != "MachO":
                continue
            slice_args = ["--arch", entry["path"].rsplit("[", 1)[1].rstrip("]")] if "[" in entry["path"] else []
            headers = subprocess.run(["llvm-objdump", "--macho", "--private-headers", *slice_args, path],
                                     capture_output=True, text=True).stdout  # fmt: skip
            binds = subprocess.run(["llvm-objdump", "--macho", "--bind", "--lazy-bind", *slice_args, path],
                                   capture_output=True, text=True).stdout  # fmt: skip
            flags = headers.splitlines()[3].split()
            hard = entry["facts"]["hardening"]
            assert hard["pie"] == ("PIE" in flags), path
            assert hard["nx_heap"] == ("NO_HEAP_EXECUTION" in flags), path
            assert hard["nx_stack"] == ("ALLOW_STACK_EXECUTION" not in flags), path
            assert (hard["code_signature"] is not None) == ("cmd LC_CODE_SIGNATURE" in headers), path
            assert hard["canary"] == ("___stack_chk_fail" in binds or "___stack_chk_guard" in binds), path
            assert hard["restrict"] == ("segname __RESTRICT" in headers), path
            if hard["code_signature"] is not None:
                assert hard["code_signature"]["flags"] is not None and hard["code_signature"]["adhoc"], path
            checked += 1
    assert checked >= 6
    runtime = pipeline.analyze_file(str(binaries_built["c-aarch64-macos-runtime"]))[0]["facts"]["hardening"]
    assert runtime["code_signature"]["hardened_runtime"] is True


def test_lying_tables_are_null_with_a_note(fixtures_built: dict[str, Path], tmp_path: Path) -> None:
    """Crafted here from fixtures: a PE whose load-config directory points past the file, a Mach-O whose code
    signature points at no signature, an ELF whose notes claim huge sizes. Fields become null with a note."""
    import struct

    from analyzer.load.pe import PEFile

    pe_bytes = bytearray(fixtures_built["go-windows-amd64.exe"].read_bytes())
    pe = PEFile(bytes(pe_bytes))
    dirs = pe.optional_header_offset + (112 if pe.pe32plus else 96)
    struct.pack_into("<II", pe_bytes, dirs + 8 * 10, 0x7FFFFFF0, 0x100)  # IMAGE_DIRECTORY_ENTRY_LOAD_CONFIG
    bad_pe = tmp_path / "bad.exe"
    bad_pe.write_bytes(bytes(pe_bytes))
    hard = pipeline.analyze_file(str(bad_pe))[0]["facts"]["hardening"]
    assert hard["gs"] is None and any("outside the file" in n for n in hard["notes"])

    macho = bytearray(fixtures_built["c-aarch64-macos"].read_bytes())
    at = 32
    for _ in range(struct.unpack_from("<I", macho, 16)[0]):
        cmd, size = struct.unpack_from("<II", macho, at)
        if cmd == 0x1D:  # LC_CODE_SIGNATURE: point its data at the Mach-O header
            struct.pack_into("<I", macho, at + 8, 0)
        at += size
    bad_macho = tmp_path / "bad-macho"
    bad_macho.write_bytes(bytes(macho))
    (entry,) = pipeline.analyze_file(str(bad_macho))
    signature = entry["facts"]["hardening"]["code_signature"]
    assert signature["flags"] is None and entry["facts"]["hardening"]["notes"]

    elf = bytearray(fixtures_built["c-hardened"].read_bytes())
    note = elf.find(b"GNU\0", elf.find(b"\x05\x00\x00\x00GNU\0") - 8)  # the property note's name
    struct.pack_into("<I", elf, note - 8, 0xFFFFFF00)  # its descsz: far past the section
    bad_elf = tmp_path / "bad-elf"
    bad_elf.write_bytes(bytes(elf))
    hard = pipeline.analyze_file(str(bad_elf))[0]["facts"]["hardening"]
    assert hard["relro"] == "full" and "cet" in hard  # the rest is read; the lying note is not


def test_annobin_notes_as_readelf_decodes_them(fixtures_built: dict[str, Path]) -> None:
    """Stack clash protection and the FORTIFY level from build-attribute notes, as `readelf -n` decodes them
    (`GA+stack_clash:true`, `GA*FORTIFY:0x3`); files without such notes say so in `notes`."""
    import re

    for name in ("c-annobin-on", "c-annobin-off", "c-annobin-merge"):
        path = str(fixtures_built[name])
        notes = subprocess.run(["readelf", "-nW", path], capture_output=True, text=True).stdout
        clash = re.findall(r"GA([+!])stack_clash:(true|false)", notes)
        levels = [int(v, 16) for v in re.findall(r"GA\*FORTIFY:(0x[0-9a-f]+)", notes)]
        hard = pipeline.analyze_file(path)[0]["facts"]["hardening"]
        assert clash and levels
        assert hard["stack_clash"] == all(value == "true" for _, value in clash) and hard["fortify_level"] == min(
            levels
        )
    plain = pipeline.analyze_file(str(fixtures_built["c-hardened"]))[0]["facts"]["hardening"]
    assert plain["stack_clash"] is None and any("annobin" in n for n in plain["notes"])


def test_a_core_dump_has_no_mitigations(tmp_path: Path) -> None:
    """A core dump is a process's memory, not a program: hardening-check calls it "not a known ELF type!? (CORE)"
    and checksec "Not an ELF file"; binlens reads no mitigations of it (a kernel-written core's RWX mapping was
    an HRD007 error), and its checksec layout says what it is (before: "(not ELF)", of an ELF file)."""
    import json

    from conftest import run_binlens
    from test_readelf_system import _qemu_core

    core = _qemu_core(tmp_path)
    told = subprocess.run(["hardening-check", str(core)], capture_output=True, text=True).stdout
    assert "not a known ELF type!? (CORE)" in told, told
    text = run_binlens("checksec", str(core)).stdout
    assert text.splitlines()[-1].endswith(f"{core} (a core dump: a process's memory, not a program)"), text
    data = json.loads(run_binlens("checksec", "--format", "json", str(core)).stdout)
    assert data == {str(core): {"format": "ELF", "note": "a core dump: a process's memory, not a program"}}
    scan = json.loads(run_binlens("scan", "--format", "json", "--no-cache", str(core)).stdout)["artifacts"][0]
    assert "hardening" not in scan["facts"] and scan["findings"] == []
