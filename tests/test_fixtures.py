"""binlens' facts on every built fixture, against readelf, objdump and llvm-objdump."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import build
import pytest
from elfcompare import assert_matches_readelf
from groundtruth import lipo_path, llvm_readobj_coff_imports, objdump_pe_imports, readelf

from analyzer.pipeline import analyze_file

ELF = build.with_tag("elf")
OBJECTS = build.with_tag("object")  # (relocatable objects: zig's carry LLVM's .llvm_addrsig, as clang's do)
PE = build.with_tag("pe")
MACHO = [n for n in build.with_tag("macho") if "fat" not in build.BY_NAME[n].tags]

# How each toolchain names an architecture -> the name binlens reports.
ARCH_OF_TARGET = {
    "x86_64": "x86_64", "x86": "i386", "aarch64": "aarch64", "arm": "arm", "thumb": "arm", "riscv64": "riscv64",
    "powerpc64le": "ppc64le", "s390x": "s390x", "mipsel": "mipsel", "mips64el": "mips64el",
    "loongarch64": "loongarch64", "sparc64": "sparc64",
    "amd64": "x86_64", "386": "i386", "arm64": "aarch64", "ppc64": "ppc64", "ppc64le": "ppc64le",
    "mips64le": "mips64el", "loong64": "loongarch64",
}  # fmt: skip


def _target_arch(name: str) -> str | None:
    fx = build.BY_NAME[name]
    if fx.tool == "zig":
        target = fx.args[fx.args.index("-target") + 1]
        if target.endswith(("x32", "abin32")):  # the 32-bit ABIs of 64-bit CPUs: binlens names them by the class
            return "x32" if target.endswith("x32") else "mipsel"
        return ARCH_OF_TARGET[target.split("-")[0]]
    if fx.tool == "go":
        return ARCH_OF_TARGET[dict(fx.env)["GOARCH"]]
    return None


def _facts(path: Path) -> dict:
    (entry,) = analyze_file(str(path))
    assert entry["error"] is None
    return entry["facts"]


@pytest.mark.parametrize("name", ELF + OBJECTS)
def test_elf_fixture_matches_readelf(fixtures_built: dict[str, Path], name: str) -> None:
    path = fixtures_built[name]
    facts = _facts(path)
    ref = readelf(str(path))
    assert_matches_readelf(facts, ref)
    header = ref.header
    assert facts["bits"] == (64 if "Class:                             ELF64" in header else 32)
    assert facts["endian"] == ("little" if "little endian" in header else "big")
    if _target_arch(name):
        assert facts["arch"] == _target_arch(name)


@pytest.mark.parametrize("name", ELF)
def test_elf_notes_match_readelf(fixtures_built: dict[str, Path], name: str) -> None:
    path = fixtures_built[name]
    elf = _facts(path)["elf"]
    notes = readelf(str(path)).notes
    m = re.search(r"Build ID: ([0-9a-f]+)", notes)
    assert elf["build_id"] == (m[1] if m else None)
    m = re.search(r"OS: (\w+), ABI: ([\d.]+)", notes)
    assert elf["abi_tag"] == ({"os": m[1], "kernel": m[2]} if m else None)
    m = re.search(r"x86 ISA needed: (.*)", notes)
    assert elf["x86_isa_needed"] == ([s.strip() for s in m[1].split(",")] if m else None)


@pytest.mark.parametrize("name", ELF)
def test_e_flags_decoding_matches_readelf(fixtures_built: dict[str, Path], name: str) -> None:
    path = fixtures_built[name]
    elf = _facts(path)["elf"]
    flags_line = re.search(r"Flags:\s+(0x[0-9a-f]+)(.*)", readelf(str(path)).header)
    assert flags_line
    assert elf["e_flags"] == int(flags_line[1], 16)
    words = [w.strip() for w in flags_line[2].split(",") if w.strip()]
    decoded = elf["flags"]
    if elf["e_machine"] == "EM_ARM":
        assert f"Version{decoded['arm_eabi_version']} EABI" in words
        assert ("hard-float ABI" in words) == (decoded.get("float_abi") == "hard")
    elif elf["e_machine"] == "EM_RISCV":
        assert f"{decoded['float_abi']}-float ABI" in words
        assert ("RVC" in words) == decoded["rvc"]
    elif elf["e_machine"] == "EM_MIPS":
        if _facts(path)["bits"] == 64:  # ELF64 is the n64 ABI; readelf prints no ABI word for it
            assert decoded["mips_abi"] == "n64"
        else:  # readelf calls n32 by its flag, EF_MIPS_ABI2
            assert {"n32": "abi2"}.get(decoded["mips_abi"], decoded["mips_abi"]) in words
        assert decoded["mips_arch"] in words
        assert ("pic" in words) == decoded["pic"]
        assert ("cpic" in words) == decoded["cpic"]
    elif elf["e_machine"] == "EM_PPC64":
        assert (f"abiv{decoded['ppc64_abi']}" in words) or decoded["ppc64_abi"] == 0


@pytest.mark.parametrize("name", ELF)
def test_linkage_follows_the_headers(fixtures_built: dict[str, Path], name: str) -> None:
    """static / static-pie / dynamic, from readelf's view of e_type, PT_INTERP, PT_DYNAMIC, DT_NEEDED, DF_1_PIE."""
    path = fixtures_built[name]
    facts = _facts(path)
    out = subprocess.run(["readelf", "-hlW", str(path)], capture_output=True, text=True).stdout
    is_dyn = re.search(r"Type:\s+DYN", out) is not None
    has_interp = re.search(r"^\s+INTERP\s", out, re.M) is not None
    has_dynamic = re.search(r"^\s+DYNAMIC\s", out, re.M) is not None
    ref = readelf(str(path))
    if has_interp or ref.needed:
        expected = "dynamic"
    elif is_dyn and has_dynamic:
        expected = "static-pie" if "PIE" in ref.dyn_flags else "dynamic"
    else:
        expected = "static"
    assert facts["linkage"] == expected
    # and the fixtures built to be static or static-pie are what they were built to be
    tags = build.BY_NAME[name].tags
    if "static" in tags:
        assert facts["linkage"] == "static"
    if "static-pie" in tags:
        assert facts["linkage"] == "static-pie"


def _static_glibc_by_readelf(path: Path) -> bool:
    """readelf's view: glibc's crt note (NT_GNU_ABI_TAG, OS Linux), or glibc's tunables strings in the file."""
    notes = subprocess.run(["readelf", "-nW", str(path)], capture_output=True, text=True).stdout
    return bool(re.search(r"NT_GNU_ABI_TAG.*\n\s+OS: Linux", notes)) or b"glibc.malloc." in path.read_bytes()


def test_libc_flavour(fixtures_built: dict[str, Path]) -> None:
    static_glibc = 0
    for name in ELF:
        facts = _facts(fixtures_built[name])
        if facts["interpreter"] and "ld-linux" in facts["interpreter"]:
            assert facts["libc"] == "glibc", name
        if facts["linkage"] in ("static", "static-pie"):
            expected = "glibc" if _static_glibc_by_readelf(fixtures_built[name]) else None
            assert facts["libc"] == expected, name
            static_glibc += expected == "glibc"
        elif facts["linkage"] is None:
            assert facts["libc"] is None, name
    assert static_glibc >= 2  # gcc -static and -static-pie


@pytest.mark.parametrize("program", ["/bin/busybox", "/bin/bash-static"])
def test_debian_static_programs_are_static_glibc(program: str) -> None:
    """Debian builds busybox-static and bash-static against glibc (the README's test command installs both)."""
    facts = _facts(Path(program))
    assert facts["linkage"] == "static" and facts["libc"] == "glibc" and _static_glibc_by_readelf(Path(program))


@pytest.mark.parametrize("name", PE)
def test_pe_imports_match_objdump(fixtures_built: dict[str, Path], name: str) -> None:
    path = fixtures_built[name]
    facts = _facts(path)
    reference = objdump_pe_imports(str(path))
    # objdump cannot find the import table of Go's PE files (it looks in the
    # wrong section): for those, llvm-readobj is the reference.
    if reference or READOBJ is None:
        assert facts["pe"]["imports"] == reference
    if READOBJ is not None:
        assert facts["pe"]["imports"] == llvm_readobj_coff_imports(str(path), READOBJ)
    fmt = subprocess.run(["objdump", "-f", str(path)], capture_output=True, text=True).stdout
    assert ("pei-x86-64" in fmt) == (facts["arch"] == "x86_64")
    assert ("pei-i386" in fmt) == (facts["arch"] == "i386")
    sections = subprocess.run(["objdump", "-h", str(path)], capture_output=True, text=True).stdout
    names = re.findall(r"^\s+\d+\s+(\S+)\s+[0-9a-f]{8}", sections, re.M)
    assert [s["name"] for s in facts["sections"]] == names


def test_pe_imports_by_ordinal_match_objdump_and_llvm_readobj(fixtures_built: dict[str, Path],
                                                              tmp_path: Path) -> None:
    """lxml's Windows extension modules as PyPI serves them import WS2_32.dll's functions by ordinal: binlens
    reads each ordinal as llvm-readobj prints it and as objdump does in hexadecimal (0x6f: ordinal 111; the
    tests' reading of objdump took its digits for decimal, and a letter among them was an exception)."""
    import zipfile

    with zipfile.ZipFile(fixtures_built["lxml-6.1.3-cp311-cp311-win_amd64.whl"]) as z:
        names = [n for n in z.namelist() if n.endswith(".pyd")]
        z.extractall(tmp_path, names)
    by_ordinal = 0
    for name in names:
        path = str(tmp_path / name)
        imports = _facts(Path(path))["pe"]["imports"]
        assert imports == objdump_pe_imports(path)
        if READOBJ is not None:
            assert imports == llvm_readobj_coff_imports(path, READOBJ)
        by_ordinal += sum(i.startswith("ordinal ") for names_ in imports.values() for i in names_)
    assert by_ordinal >= 20


LLVM_OBJDUMP = shutil.which("llvm-objdump")
READOBJ = shutil.which("llvm-readobj")
LIPO = lipo_path()


@pytest.mark.skipif(LLVM_OBJDUMP is None, reason="llvm-objdump not installed")
@pytest.mark.parametrize("name", MACHO)
def test_macho_matches_llvm_objdump(fixtures_built: dict[str, Path], name: str) -> None:
    path = fixtures_built[name]
    facts = _facts(path)
    used = subprocess.run([LLVM_OBJDUMP, "--macho", "--dylibs-used", str(path)], capture_output=True, text=True).stdout
    dylibs = re.findall(r"^\t(\S+) \(compatibility version", used, re.M)
    assert [d["name"] for d in facts["macho"]["dylibs"]] == dylibs
    headers = subprocess.run(
        [LLVM_OBJDUMP, "--macho", "--private-headers", str(path)], capture_output=True, text=True
    ).stdout
    build_version = re.search(r"cmd LC_BUILD_VERSION.*?platform (\w+)\s+sdk ([\d.]+)\s+minos ([\d.]+)", headers, re.S)
    assert build_version
    assert (facts["macho"]["platform"], facts["macho"]["sdk"], facts["macho"]["minos"]) == (
        build_version[1],
        build_version[2],
        build_version[3],
    )
    sections = subprocess.run(
        [LLVM_OBJDUMP, "--macho", "--section-headers", str(path)], capture_output=True, text=True
    ).stdout
    names = re.findall(r"^\s*\d+\s+(\S+)\s+[0-9a-f]{8}", sections, re.M)
    assert [s["name"][:16] for s in facts["sections"]] == names


@pytest.mark.skipif(LIPO is None, reason="llvm-lipo not installed")
def test_fat_macho_slices_are_artifacts(fixtures_built: dict[str, Path]) -> None:
    path = fixtures_built["go-darwin-fat"]
    entries = analyze_file(str(path))
    info = subprocess.run([LIPO, "-info", str(path)], capture_output=True, text=True).stdout
    archs = info.rsplit(":", 1)[1].split()
    assert [e["path"] for e in entries] == [f"{path}[{a}]" for a in archs]
    # each slice carries the same facts as the thin file it was made from
    for entry, thin in zip(entries, ("go-darwin-amd64", "go-darwin-arm64"), strict=True):
        assert entry["facts"] == _facts(fixtures_built[thin])
        assert entry["sha256"] == analyze_file(str(fixtures_built[thin]))[0]["sha256"]


@pytest.mark.parametrize("name", PE)
def test_pe_header_facts_match_objdump(fixtures_built: dict[str, Path], name: str) -> None:
    path = fixtures_built[name]
    pe = _facts(path)["pe"]
    out = subprocess.run(["objdump", "-p", str(path)], capture_output=True, text=True).stdout
    field = dict(re.findall(r"^(\w+)\s+(\S+)", out, re.M))
    assert pe["min_os_version"] == f"{int(field['MajorOSystemVersion'])}.{int(field['MinorOSystemVersion'])}"
    assert pe["min_subsystem_version"] == f"{int(field['MajorSubsystemVersion'])}.{int(field['MinorSubsystemVersion'])}"
    subsystem = re.search(r"^Subsystem\s+\S+\s+\((.*)\)", out, re.M)
    assert subsystem and pe["subsystem"].replace("_", " ").lower() == subsystem[1].lower()
    assert pe["dll"] == bool(int(field["Characteristics"], 16) & 0x2000)
