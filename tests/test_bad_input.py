"""Bad input gets one line naming the file and the problem, exit code 2; never a traceback or a hang."""

from __future__ import annotations

import os
import random
from pathlib import Path

import make_malformed
import pytest
from conftest import run_binlens

from analyzer.errors import AnalyzerError
from analyzer.pipeline import analyze_file

# one good file of each container format
SOURCES = [
    "c-x86_64-gnu.2.17",
    "c-s390x-gnu.2.28",
    "c-i386-gnu.2.17",
    "go-linux-amd64-sw",
    "c-x86_64-windows-gnu.exe",
    "go-windows-amd64.exe",
    "go-darwin-arm64",
    "go-darwin-fat",
]


def _assert_one_line_error(proc, path: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert path in lines[0]
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_missing_file() -> None:
    proc = run_binlens("scan", "/nonexistent/app")
    _assert_one_line_error(proc, "/nonexistent/app")
    assert "no such file" in proc.stderr


def test_directory_without_binaries(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello\n")
    proc = run_binlens("scan", str(tmp_path))
    _assert_one_line_error(proc, str(tmp_path))
    assert "no ELF, PE or Mach-O files" in proc.stderr


def test_empty_file(tmp_path: Path) -> None:
    p = tmp_path / "empty"
    p.write_bytes(b"")
    proc = run_binlens("inspect", str(p))
    _assert_one_line_error(proc, str(p))
    assert "empty file" in proc.stderr


def test_not_a_binary_named_explicitly(tmp_path: Path) -> None:
    p = tmp_path / "script.sh"
    p.write_text("#!/bin/sh\necho hi\n")
    proc = run_binlens("scan", str(p))
    _assert_one_line_error(proc, str(p))
    assert "not an ELF, PE or Mach-O file" in proc.stderr


def test_a_huge_file_that_is_no_binary_is_not_hashed(tmp_path: Path) -> None:
    """A file named on the command line is told apart as no binary by its first bytes, before the result cache
    would hash all of it (a 1 TiB sparse disk image: minutes of hashing before the fix)."""
    p = tmp_path / "disk.img"
    with open(p, "wb") as fh:
        fh.truncate(1 << 40)
    proc = run_binlens("scan", str(p), "--cache-dir", str(tmp_path / "cache"), prefix=["timeout", "60"])
    _assert_one_line_error(proc, str(p))
    assert "not an ELF, PE or Mach-O file" in proc.stderr


def test_unreadable_file(tmp_path: Path) -> None:
    """A file binlens may not read. Root reads every file through CAP_DAC_OVERRIDE and
    CAP_DAC_READ_SEARCH, so as root (CI) binlens runs with both dropped from its bounding set."""
    p = tmp_path / "secret"
    p.write_bytes(b"\x7fELF")
    p.chmod(0)
    prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    proc = run_binlens("scan", str(p), prefix=prefix)
    _assert_one_line_error(proc, str(p))
    assert "permission denied" in proc.stderr


@pytest.mark.parametrize("source", SOURCES)
def test_malformed_variants_are_one_line_errors(fixtures_built: dict[str, Path], source: str, tmp_path: Path) -> None:
    """Every truncation, lying header and random tail is rejected with a message naming the file."""
    good = fixtures_built[source].read_bytes()
    for name, blob in make_malformed.variants(good):
        p = tmp_path / f"{source}.{name}"
        p.write_bytes(blob)
        with pytest.raises(AnalyzerError) as err:
            analyze_file(str(p))
        assert str(p) in str(err.value), name
        assert "\n" not in str(err.value), name


@pytest.mark.parametrize("source", SOURCES)
def test_malformed_variants_through_the_cli(fixtures_built: dict[str, Path], source: str, tmp_path: Path) -> None:
    """A few variants end to end: one line on stderr, exit 2; in a directory scan, an `error` entry."""
    good = fixtures_built[source].read_bytes()
    chosen = [v for v in make_malformed.variants(good)][::9]
    for name, blob in chosen[:4]:
        p = tmp_path / f"{source}.{name}"
        p.write_bytes(blob)
        _assert_one_line_error(run_binlens("scan", str(p)), str(p))
    import json

    proc = run_binlens("scan", "--format", "json", str(tmp_path))
    assert proc.returncode == 1, proc.stderr  # a corrupt artifact in a release fails the gate (ART001)
    report = json.loads(proc.stdout)
    sniffable = [a for a in report["artifacts"]]
    assert sniffable and all(a["error"] and a["facts"] == {} for a in sniffable)
    assert all([f["rule"] for f in a["findings"]] == ["ART001"] for a in sniffable)
    assert run_binlens("scan", "--fail-on", "never", str(tmp_path)).returncode == 0


@pytest.mark.parametrize("source", SOURCES)
def test_byte_flips_never_crash(fixtures_built: dict[str, Path], source: str, tmp_path: Path) -> None:
    """Random byte changes in the first 8 KiB: facts or a one-line error, nothing else."""
    good = bytearray(fixtures_built[source].read_bytes())
    rng = random.Random(source)
    for i in range(60):
        bad = bytearray(good)
        for _ in range(rng.randrange(1, 16)):
            bad[rng.randrange(4, min(len(bad), 8192))] = rng.randrange(256)
        p = tmp_path / f"flip{i}"
        p.write_bytes(bytes(bad))
        try:
            entries = analyze_file(str(p))
        except AnalyzerError as e:
            assert str(p) in str(e)
        else:
            assert entries and all(e["facts"] for e in entries)


def test_directory_of_malformed_files_is_bounded(fixtures_built: dict[str, Path], tmp_path: Path) -> None:
    """Every variant of every source in one directory scan: under a memory cap and a time limit."""
    import resource
    import subprocess
    import sys

    from conftest import ROOT

    for source in SOURCES:
        for name, blob in make_malformed.variants(fixtures_built[source].read_bytes()):
            (tmp_path / f"{source}.{name}").write_bytes(blob)

    def cap() -> None:  # 1 GiB of address space: far less than a runaway allocation needs
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    proc = subprocess.run(
        [sys.executable, "-m", "analyzer", "scan", "--format", "json", "--jobs", "1", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=cap,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert proc.returncode == 1, proc.stderr[-2000:]  # the corrupt ones fail the gate (ART001)
    assert "Traceback" not in proc.stderr
    import json

    entries = json.loads(proc.stdout)["artifacts"]
    for e in entries:  # each entry is either an error without facts or facts without an error
        assert bool(e["error"]) != bool(e["facts"]), e["path"]
    from analyzer.load import sniff_file

    binaries = {str(p) for p in tmp_path.iterdir() if sniff_file(str(p)) is not None}
    assert {e["path"].split("[")[0] for e in entries} == binaries  # none passed over in silence


def test_fifo_named_on_the_command_line(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    proc = run_binlens("scan", str(fifo))  # would block forever on open()
    _assert_one_line_error(proc, str(fifo))
    assert "not a regular file" in proc.stderr


def test_a_very_deep_directory_tree(fixtures_built: dict[str, Path], tmp_path: Path) -> None:
    """1,100 levels (past Python's recursion limit): the binary at the bottom is found."""
    import json

    levels = [tmp_path]
    try:
        for _ in range(1100):  # one mkdir a level: pathlib's own parents=True recurses too
            levels.append(levels[-1] / "d")
            levels[-1].mkdir()
        app = levels[-1] / "app"
        app.write_bytes(fixtures_built["c-x86_64-gnu.2.17"].read_bytes())
        proc = run_binlens("scan", "--format", "json", str(tmp_path))
        assert proc.returncode == 0, proc.stderr[-500:]
        assert [a["path"] for a in json.loads(proc.stdout)["artifacts"]] == [str(app)]
    finally:  # removed bottom-up here: pytest's own clean-up of old temporary folders recurses
        for folder in reversed(levels[1:]):
            for child in folder.iterdir():
                child.unlink()
            folder.rmdir()


def test_standard_output_on_a_full_disk() -> None:
    import subprocess
    import sys

    from conftest import ROOT

    with open("/dev/full", "w") as full:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        cmd = [sys.executable, "-m", "analyzer", "scan", "/bin/true"]
        proc = subprocess.run(cmd, stdout=full, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "No space left" in proc.stderr


def test_ld_so_conf_include_stays_in_the_sysroot(tmp_path: Path) -> None:
    """`include ../../H/*.conf` from /etc: `..` stops at the sysroot's /, so the files included are the
    sysroot's /H/*.conf, never a listing of the host's directory beside the sysroot."""
    from analyzer.facts.loader import Sysroot

    root, host = tmp_path / "S", tmp_path / "H"
    (root / "etc").mkdir(parents=True)
    (root / "H").mkdir()
    host.mkdir()
    (root / "etc" / "ld.so.conf").write_text("include ../../H/*.conf\n")
    (host / "x.conf").write_text("/from-the-host\n")
    (root / "H" / "x.conf").write_text("/sysroot-x\n")
    (root / "H" / "y.conf").write_text("/sysroot-y\n")
    assert Sysroot(str(root)).conf_dirs() == ["/sysroot-x", "/sysroot-y"]


def test_ld_so_conf_line_with_a_nul_byte(tmp_path: Path) -> None:
    """Found by the fuzzing (tests/test_fuzz.py, ld.so.conf mutants): an include pattern with a NUL byte made
    glob raise ValueError. ldconfig reads C strings, so a line ends at its NUL: `include /etc/a\0junk` is
    `include /etc/a`, a directory line keeps what precedes the NUL, and `deps` through that sysroot works."""
    from analyzer.facts.loader import Sysroot

    root = tmp_path / "S"
    (root / "etc" / "ld.so.conf.d").mkdir(parents=True)
    (root / "etc" / "ld.so.conf").write_bytes(b"include /etc/ld.so.conf.d/*.conf\0[junk\n/opt/lib\0/ignored\n")
    (root / "etc" / "ld.so.conf.d" / "a.conf").write_text("/usr/local/lib\n")
    assert Sysroot(str(root)).conf_dirs() == ["/usr/local/lib", "/opt/lib"]
    r = run_binlens("deps", "/bin/true", "--sysroot", str(root))
    assert r.returncode in (0, 1) and "Traceback" not in r.stderr


def test_names_not_utf8_with_markup_and_control_characters(fixtures_built: dict[str, Path], tmp_path: Path) -> None:
    """A RUNPATH holding bytes that are not UTF-8, rich markup, XML metacharacters and control characters (an
    escape sequence among them): every format and command writes it, as \\xNN text, and nothing else breaks."""
    import json
    import xml.etree.ElementTree as ET

    data = fixtures_built["libgreet-rpath.so.1"].read_bytes()
    old, new = b"/opt/greet/lib", b"/o/\xff\xfe[/]<&\x01\x1b[1"
    assert data.count(old) == 1 and len(old) == len(new)
    lib = tmp_path / "libodd.so"
    lib.write_bytes(data.replace(old, new))
    outputs = {}
    for fmt in ("text", "json", "sarif", "junit", "markdown", "cyclonedx", "spdx"):
        proc = run_binlens("scan", "--profile", "release", "--format", fmt, str(lib))
        assert proc.returncode == 1 and proc.stderr == "", (fmt, proc.stderr[-300:])
        outputs[fmt] = proc.stdout
    facts = json.loads(outputs["json"])["artifacts"][0]["facts"]
    assert facts["rpath"][0] == "/o/\\xff\\xfe[/]<&\\x01\\x1b[1"
    ET.fromstring(outputs["junit"])  # well-formed
    json.loads(outputs["sarif"])
    assert all("\x1b" not in text and "\x01" not in text for text in outputs.values())
    for args in (["inspect", str(lib)], ["deps", str(lib)], ["checksec", str(lib)], ["diff", str(lib), str(lib)]):
        proc = run_binlens(*args)
        assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, (args, proc.stderr[-300:])
        assert "\x1b" not in proc.stdout, args


def test_names_holding_markup_in_the_text_report(tmp_path: Path) -> None:
    """Library, version-need file and section names holding rich markup (`[/]`, `[/x]`, `[bold]`) and an emoji
    code (`:cat:`), long enough that the `needed` row wraps: the text report (summary and detailed, plain and for
    a terminal) prints each as readelf shows it — no traceback (a closing tag that closes nothing was one), no
    tag swallowed, no cat. Made by zig's cc: three libraries with such sonames and a program needing them."""
    import re
    import subprocess
    import sys

    (tmp_path / "lib.c").write_text("int shown(void) { return 1; }\n")
    (tmp_path / "v.map").write_text("V1 { global: shown; local: *; };\n")
    (tmp_path / "main.c").write_text('int shown(void);\n__attribute__((section("[/s]:cat:[bold]"), used)) static const '
                                     'char marked[] = "x";\nint main(void) { return shown(); }\n')  # fmt: skip
    import build

    zig = [sys.executable, "-m", "ziglang", "cc", "-target", "x86_64-linux-gnu.2.17", "-O1"]  # (as fixtures are built)
    env = dict(os.environ, ZIG_GLOBAL_CACHE_DIR=str(build.CACHE / "zig-cache"),
               ZIG_LOCAL_CACHE_DIR=str(build.CACHE / "zig-cache"))  # (the fixtures': glibc's stubs built once)
    names = ["lib[/x]-with-a-name-long-enough-to-wrap.so", "lib[bold]:cat:-also-long-enough-to-wrap-the-line.so",
             "lib[/]-third.so"]  # fmt: skip
    for i, name in enumerate(names):
        subprocess.run([*zig, "-shared", "-fPIC", "-o", f"l{i}.so", f"-Wl,-soname,{name}",
                        "-Wl,--version-script,v.map", "lib.c"], cwd=tmp_path, env=env, check=True,
                       capture_output=True)  # fmt: skip
    subprocess.run([*zig, "-o", "prog", "main.c", "-Wl,--no-as-needed,--no-gc-sections",
                    *(f"./l{i}.so" for i in range(3))], cwd=tmp_path, env=env, check=True,
                   capture_output=True)  # fmt: skip
    prog = tmp_path / "prog"

    def readelf(flag: str) -> str:
        return subprocess.run(["readelf", flag, "-W", str(prog)], capture_output=True, text=True, check=True).stdout

    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.*)\]$", readelf("-d"), re.M)
    assert needed[:3] == names
    files = re.findall(r"File: (\S+)  Cnt", readelf("-V"))
    (section,) = re.findall(r"^\s*\[\s*\d+\] (\S*:cat:\S*) ", readelf("-S"), re.M)
    scan = run_binlens("scan", "--no-cache", str(prog))
    assert scan.returncode == 0 and scan.stderr == "", scan.stderr[-300:]
    row = re.search(r"\n  needed +(.*(?:\n {10,}.*)*)", scan.stdout)[1]  # type: ignore[index]
    assert " ".join(row.split()) == ", ".join(needed)
    inspect = run_binlens("inspect", str(prog))
    assert inspect.returncode == 0 and inspect.stderr == "", inspect.stderr[-300:]
    for shown in (inspect.stdout, _on_a_terminal(prog)):
        assert all(f"\n  {f} needs: " in shown for f in files)
        assert re.search(rf"\n{re.escape(section)}  PROGBITS", shown)
        assert "\N{CAT FACE}" not in shown and "\N{CAT}" not in shown


def _on_a_terminal(prog: Path) -> str:
    """`binlens inspect` of a file as a terminal shows it (colour and bold), escape sequences taken out."""
    import json
    import re

    from analyzer.report import text

    report = json.loads(run_binlens("inspect", "--format", "json", str(prog)).stdout)
    return re.sub(r"\x1b\[[0-9;]*m", "", text.render(report, detailed=True, color=True))


@pytest.mark.parametrize(
    "setting",
    [b'XXXXXXXXX="\\xZZ"', b'XXXXXXXXX="\\777"', b'XXX="\\U00110000"', b'XXXXXXX="\\ud800"', b"XXXXXXXXXX=\"\\'x\""],
    ids=["hex", "octal", "beyond-unicode", "surrogate", "single-quote"],
)
def test_go_build_info_with_bad_escapes_is_damaged(
    fixtures_built: dict[str, Path], tmp_path: Path, setting: bytes
) -> None:
    """A build setting whose quoted value holds an escape strconv.Unquote rejects: `go version -m` refuses the
    file (exit 1, nothing printed); binlens reads the rest of the binary and calls the build info damaged."""
    import json
    import subprocess

    import build

    data = fixtures_built["go-linux-amd64-sw"].read_bytes()
    old = b'-ldflags="-s -w"'
    assert len(setting) == len(old) and old in data
    odd = tmp_path / "odd"
    odd.write_bytes(data.replace(old, setting))
    go = subprocess.run([str(build.go_binary()), "version", "-m", str(odd)], capture_output=True, text=True)
    assert go.returncode == 1 and go.stdout == ""
    proc = run_binlens("go", str(odd))
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert proc.stdout.startswith(f"{odd}: go1.") and "build info damaged: bad escape" in proc.stdout
    scan = run_binlens("scan", "--format", "json", str(odd))
    assert scan.returncode in (0, 1) and scan.stderr == "", scan.stderr
    facts = json.loads(scan.stdout)["artifacts"][0]["facts"]
    assert facts["go"]["build_info"] == "damaged" and facts["elf"]["e_type"] == "ET_EXEC"


def test_macho_names_not_utf8(fixtures_built: dict[str, Path], tmp_path: Path) -> None:
    """A Mach-O dylib name with a byte that is not UTF-8 (and markup): LIEF cannot give it as text, so binlens
    reads it from the load command; every command handles the file, `checksec` says its columns are ELF's."""
    import json

    data = fixtures_built["c-aarch64-macos"].read_bytes()
    old, new = b"/usr/lib/libSystem.B.dylib", b"/usr/lib/libSy\xffem[/].dylib"
    assert data.count(old) == 1 and len(old) == len(new)
    odd = tmp_path / "odd"
    odd.write_bytes(data.replace(old, new))
    scan = run_binlens("scan", "--format", "json", str(odd))
    assert scan.returncode in (0, 1) and scan.stderr == "", scan.stderr
    facts = json.loads(scan.stdout)["artifacts"][0]["facts"]
    assert [d["name"] for d in facts["macho"]["dylibs"]] == ["/usr/lib/libSy\\xffem[/].dylib"]
    assert facts["sections"] and all(s["segment"].startswith("__") for s in facts["sections"])
    for args in (["scan", str(odd)], ["inspect", str(odd)], ["checksec", str(odd)], ["diff", str(odd), str(odd)]):
        proc = run_binlens(*args)
        assert proc.returncode in (0, 1) and proc.stderr == "", (args, proc.stderr[-300:])
    assert "checksec's columns are for ELF" in run_binlens("checksec", str(odd)).stdout


def test_dynamic_string_table_names_are_bounded(fixtures_built: dict[str, Path]) -> None:
    """A dynamic string table that is one long run without NUL (the 1 MB file that took 2 GB): a name stops at
    MAX_NAME bytes, an offset read twice costs nothing, and names totalling far more than any linker writes
    for the table make the file corrupt instead of filling memory."""
    from analyzer.load.elf import MAX_NAME, ELFError, ELFFile

    elf = ELFFile(fixtures_built["c-x86_64-gnu.2.34"].read_bytes(), "hostile")
    elf.__dict__["_dynstr_bytes"] = b"\0" + b"A" * (1 << 20)  # the table as read from such a file
    assert len(elf.dynstr(1)) == MAX_NAME and elf.dynstr(1) is elf.dynstr(1)
    assert elf.dynstr((1 << 20) - 5) == "AAAAAA"
    with pytest.raises(ELFError, match="names overlap"):
        for offset in range(2, 1 << 20):
            elf.dynstr(offset)
    assert offset < 300  # stopped after 16 MiB of names, not after the 64 GiB the offsets would give


def _with_sections(elf: bytes, count: int) -> bytes:
    """A little-endian ELF64 whose section header table is moved to its end and grown to `count` entries (the
    count in section 0's sh_size, as for e_shnum = 0), the new ones empty PROGBITS named by .shstrtab's NUL."""
    import struct

    data = bytearray(elf)
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    shnum = struct.unpack_from("<H", data, 0x3C)[0]
    headers = bytearray(data[shoff : shoff + 64 * shnum])
    struct.pack_into("<Q", headers, 0x20, count)  # section 0's sh_size: the count
    headers += struct.pack("<IIQQQQIIQQ", 1, 1, 0, 0, 0, 0, 0, 0, 1, 0) * (count - shnum)
    at = (len(data) + 7) // 8 * 8
    data += b"\0" * (at - len(data)) + headers
    struct.pack_into("<Q", data, 0x28, at)  # e_shoff
    struct.pack_into("<H", data, 0x3C, 0)
    return bytes(data)


def test_seventy_thousand_sections_inspected(fixtures_built: dict[str, Path], tmp_path: Path) -> None:
    """An ELF whose section header table holds 70,000 entries (the count in section 0's sh_size, as for
    e_shnum = 0): `inspect` lists every one that readelf lists, as plain aligned lines."""
    import re
    import subprocess

    many = tmp_path / "many"
    many.write_bytes(_with_sections(fixtures_built["c-annobin-on"].read_bytes(), 70000))
    readelf = subprocess.run(["readelf", "-SW", str(many)], capture_output=True, text=True).stdout
    count = int(re.search(r"There are (\d+) section headers", readelf)[1])  # type: ignore[index]
    proc = run_binlens("inspect", str(many))
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr[-300:]
    rows = [ln for ln in proc.stdout.splitlines() if re.search(r"\s0x[0-9a-f]+\s+\d+$", ln)]
    assert count == 70000 and len(rows) == count - 1  # readelf counts the null section 0, which has no row


def test_malformed_baselines_are_one_line_errors(tmp_path: Path) -> None:
    """A baseline with wrong types, another shape, an older version or nesting deeper than Python's recursion
    limit: one line naming the file and the problem, exit 2 (wrong types were taken as keys before)."""
    cases = [
        '{"binlens_baseline": 2, "findings": [{"path": 1, "rule": [], "fingerprint": {}}]}',
        '{"binlens_baseline": 2, "findings": "abc"}',
        '{"binlens_baseline": 2, "findings": [["x"]]}',
        '{"binlens_baseline": 1, "findings": []}',
        "[1]",
        "[" * 100_000 + "]" * 100_000,
    ]
    for i, text in enumerate(cases):
        p = tmp_path / f"baseline{i}.json"
        p.write_text(text)
        _assert_one_line_error(run_binlens("scan", "--baseline", str(p), "/usr/bin/true"), str(p))
    good = tmp_path / "good.json"
    good.write_text('{"binlens_baseline": 2, "findings": [{"path": "a", "rule": "LNK006", "fingerprint": "f"}]}')
    assert run_binlens("scan", "--baseline", str(good), "/usr/bin/true").returncode in (0, 1)


def test_malformed_size_baselines_are_one_line_errors(tmp_path: Path) -> None:
    """--size-baseline reads a previous JSON report: one nested deeper than Python's recursion limit was a
    traceback; it and other files that are no report are one line naming the file, exit 2."""
    cases = {
        "[" * 100_000 + "]" * 100_000: "not a binlens JSON report (nested too deeply)",
        '{"artifacts": ' + "[" * 100_000: "not a binlens JSON report (nested too deeply)",
        "{not json": "not a binlens JSON report",
        '{"artifacts": 1}': "not a binlens JSON report",
    }
    for i, (text, problem) in enumerate(cases.items()):
        p = tmp_path / f"report{i}.json"
        p.write_text(text)
        r = run_binlens("scan", "--size-baseline", str(p), "/usr/bin/true")
        assert r.returncode == 2 and r.stderr == f"binlens: {p}: {problem}\n", r.stderr


def _rule_file(path: Path, condition: str) -> Path:
    path.write_text(
        '[[rule]]\nid = "XYZ001"\nname = "big"\nseverity = "error"\ntitle = "t"\n'
        f'condition = """{condition}"""\nmessage = "m"\nwhat = "w"\nwhy = "y"\nexample = "e"\nfix = "f"\n'
    )
    return path


def test_rule_conditions_that_would_crash_the_cel_library(tmp_path: Path) -> None:
    """A condition of 30,000 `+` terms made the CEL library overflow its stack (a segfault, exit 139): conditions
    are bounded before they are compiled. A deeply nested one that fits is the parser's error, cut to one
    short line."""
    long = _rule_file(tmp_path / "long.toml", " + ".join(["1"] * 30_000) + " > 0")
    proc = run_binlens("scan", "--rules", str(long), "/usr/bin/true")
    _assert_one_line_error(proc, str(long))
    assert "longer than" in proc.stderr
    deep = _rule_file(tmp_path / "deep.toml", "(" * 4000 + "true" + ")" * 4000)
    proc = run_binlens("scan", "--rules", str(deep), "/usr/bin/true")
    _assert_one_line_error(proc, str(deep))
    assert len(proc.stderr) < 600


def test_hostile_ld_so_cache_and_conf_are_bounded(binaries_built: dict[str, Path], tmp_path: Path) -> None:
    """A sysroot whose ld.so.cache has 200,000 entries naming one unterminated megabyte, and whose ld.so.conf
    includes 300 files: `binlens deps` answers (each cache string is read once and bounded: the whole run scanned
    the megabyte 400,000 times before; the configuration is read once per run, not per library searched)."""
    import struct

    root = tmp_path / "root"
    (root / "etc" / "ld.so.conf.d").mkdir(parents=True)
    n = 200_000
    header = b"glibc-ld.so.cache1.1" + struct.pack("<IIIIIII", n, 0, 0, 0, 0, 0, 0)
    strings_at = 48 + 24 * n
    entries = struct.pack("<iIIIQ", 0x303, strings_at, strings_at, 0, 0) * n
    (root / "etc" / "ld.so.cache").write_bytes(header + entries + b"x" * (1 << 20))
    (root / "etc" / "ld.so.conf").write_text("include /etc/ld.so.conf.d/*.conf\n")
    for i in range(300):
        (root / "etc" / "ld.so.conf.d" / f"{i:03}.conf").write_text(f"/opt/lib{i}\n")
    proc = run_binlens("deps", "--sysroot", str(root), str(binaries_built["cpp-x86_64-gxx"]))
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stderr
    assert "libstdc++.so.6" in proc.stdout


def test_chained_symlinks_in_a_sysroot(binaries_built: dict[str, Path], tmp_path: Path) -> None:
    """A sysroot whose library directory is reached through 39 chained links and whose ld.so.conf names 300
    directories behind them: deps resolves the libraries there (the links followed once per directory, not once
    per library and directory), and a chain of 41 links is the loader's ELOOP: not found, not an error."""
    import json
    import shutil

    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    real = root / "real"
    real.mkdir()
    for lib in ("libstdc++.so.6", "libm.so.6", "libgcc_s.so.1", "libc.so.6"):
        shutil.copy(Path("/usr/lib/x86_64-linux-gnu") / lib, real / lib)
    (root / "c39").symlink_to("real")
    for i in range(38, -1, -1):
        (root / f"c{i}").symlink_to(f"c{i + 1}")
    conf = [f"/c0/missing{i}" for i in range(300)] + ["/c0"]
    (root / "etc" / "ld.so.conf").write_text("\n".join(conf) + "\n")
    proc = run_binlens("deps", "--format", "json", "--sysroot", str(root), str(binaries_built["cpp-x86_64-gxx"]))
    assert "Traceback" not in proc.stderr, proc.stderr
    deps = json.loads(proc.stdout)["artifacts"][0]["facts"]["deps"]
    found = {lib["name"]: lib["found_by"] for lib in deps["libraries"]}
    assert found.get("libstdc++.so.6") == "ld.so.conf directory", found
    (root / "loop0").symlink_to("loop1")
    for i in range(1, 41):
        (root / f"loop{i}").symlink_to(f"loop{i + 1}" if i < 40 else "real")
    (root / "etc" / "ld.so.conf").write_text("/loop0\n")
    proc = run_binlens("deps", "--format", "json", "--sysroot", str(root), str(binaries_built["cpp-x86_64-gxx"]))
    missing = {m["name"] for m in json.loads(proc.stdout)["artifacts"][0]["facts"]["deps"]["missing"]}
    assert "libstdc++.so.6" in missing


@pytest.mark.parametrize("jobs", ["1", "2", "dask"])
def test_time_budget_makes_a_slow_file_its_own_error(binaries_built: dict[str, Path], tmp_path: Path,
                                                      jobs: str) -> None:  # fmt: skip
    """--time-budget: a file whose analysis hangs (the fault hook stalls it, as a parser caught in a loop would)
    is that artifact's error (ART001) after the budget and the scan goes on to the next file, in the scan's
    process, in the workers, and in a Dask worker, which runs its tasks in a thread of its own (there the budget
    was not kept: the scan hung); named on the command line, one line and exit 2."""
    import json
    import shutil

    folder = tmp_path / "bins"
    folder.mkdir()
    shutil.copy(binaries_built["c-x86_64-musl-static"], folder / "stalls")
    shutil.copy(binaries_built["c-rawsys"], folder / "rawsys")
    for i in range(16):  # enough files for the scan to use its worker processes (16 and more)
        shutil.copy(binaries_built["c-rawsys"], folder / f"rawsys{i:02}")
    stall = ["env", f"BINLENS_FAULT_STALL={folder / 'stalls'}", "timeout", "120"]
    where = ["--dask", "local:2"] if jobs == "dask" else ["--jobs", jobs]
    proc = run_binlens("scan", "--time-budget", "1", "--format", "json", *where, str(folder), prefix=stall)
    assert proc.returncode != 124, "the scan hung"
    assert "Traceback" not in proc.stderr, proc.stderr
    entries = {Path(a["path"]).name: a for a in json.loads(proc.stdout)["artifacts"]}
    assert entries["stalls"]["error"] == "analysis took longer than the time budget (1 s)"
    assert [f["rule"] for f in entries["stalls"]["findings"]] == ["ART001"]
    assert entries["rawsys"]["error"] is None and entries["rawsys"]["facts"]
    if jobs == "1":  # (a file named alone is analysed in the scan's process whatever --jobs says)
        named = run_binlens("scan", "--time-budget", "1", str(folder / "stalls"), prefix=stall)
        _assert_one_line_error(named, str(folder / "stalls"))


@pytest.mark.parametrize("where", ["--jobs=1", "--dask=local:1"])
def test_a_first_import_is_not_charged_to_the_files_budget(binaries_built: dict[str, Path], tmp_path: Path,
                                                           where: str) -> None:  # fmt: skip
    """The first Mach-O a process analyses imports LIEF (0.4-0.6 s here), the first system-call analysis
    capstone: under a time budget shorter than that import, in a fresh interpreter (in the scan's process, and
    in a Dask worker's thread), the report is the one without a budget (before: the budget ended inside LIEF's
    initialisation and the process aborted, C++ `terminate` and exit 134; had the import finished, the first
    Mach-O of each worker would be the error, whichever that was)."""
    import json
    import shutil

    folder = tmp_path / "bins"
    folder.mkdir()
    for name in ("c-aarch64-macos", "c-rawsys"):
        shutil.copy(binaries_built[name], folder / name)
    fresh = dict(os.environ, BINLENS_TEST_FRESH="1")
    args = ["scan", "--format", "json", "--no-cache", "--facts", "linkage,syscalls", where, str(folder)]
    free = run_binlens(*args, env=fresh)
    assert free.returncode in (0, 1) and json.loads(free.stdout)["artifacts"][0]["format"] == "MachO", free.stderr
    # (0.25 s: shorter than the import, longer than these two files' analysis on a host with CPU steal)
    timed = run_binlens(*args, "--time-budget", "0.25", env=fresh)
    assert (timed.returncode, timed.stdout, timed.stderr) == (free.returncode, free.stdout, free.stderr)


_BUDGET_ENDS = """
import json, signal, sys, threading
from analyzer import budget
from analyzer.errors import AnalyzerError

def runs(budgets, body):
    got = []
    for i, seconds in enumerate(budgets):
        try:
            with budget.time_budget(seconds, "f"):
                body(i)
            got.append("facts")
        except AnalyzerError:
            got.append("over")
        except BaseException as e:  # the budget's end escaping its with-statement as itself
            got.append(type(e).__name__)
    return got

def in_thread(fn):
    out = []
    t = threading.Thread(target=lambda: out.append(fn()))
    t.start()
    t.join()
    return out[0]

slow = in_thread(lambda: runs([0.01] * 3, lambda i: [j for j in range((1, 3, 10)[i] * 1_000_000)]))
main = runs([2e-6 * (1 + i % 50) for i in range(20000)], lambda i: sum(range(i % 20)))
handler = signal.getsignal(signal.SIGALRM) is signal.SIG_DFL and not budget._TIMED
other = in_thread(lambda: runs([1e-3 * (1 + i % 20) for i in range(200)],
                               lambda i: [j for j in range((i % 20) * 20000)]))
print(json.dumps([slow, sorted(set(main)), handler, sorted(set(other)), budget._DOG.armed()]))
"""


def test_a_budgets_end_is_the_files_error_wherever_it_comes() -> None:
    """In a fresh interpreter: (1) a budget in a thread other than the main one ends pure-Python work (three
    files, 10 ms each; before, the watchdog's first end was late, importing ctypes as it sent it, and then
    waited for ever for the lock a thread left held when the end came inside threading.Condition's
    __enter__: no file had a budget again); (2) 20,000 budgets of microseconds in the main thread and 200 of
    milliseconds in another, ending as their `with` begins or ends: each the file's error or its facts, never
    the budget's end escaping as itself, and the timer's signal handler put back."""
    import json
    import subprocess
    import sys

    from conftest import ROOT

    proc = subprocess.run([sys.executable, "-c", _BUDGET_ENDS], capture_output=True, text=True, timeout=120,
                          cwd=str(ROOT))
    assert proc.returncode == 0, proc.stderr[-2000:]
    slow, main, handler, other, armed = json.loads(proc.stdout)
    assert slow == ["over", "over", "over"]
    assert set(main) <= {"facts", "over"} and set(other) <= {"facts", "over"}, (main, other)
    assert handler and not armed


def test_a_budgets_end_escaping_its_with_is_still_the_files_error(binaries_built: dict[str, Path],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Defence in depth for a budget's end that escapes its `with` as itself (a watchdog's end that reached
    the thread as the `with` ended): the task is that file's error, a one-line error named on the command line
    and an error entry (ART001) found in a directory, not an exception out of the worker (a traceback)."""
    from analyzer import budget, pipeline

    def overtime(path: str, request: object) -> list:
        raise budget.Overtime

    monkeypatch.setattr(pipeline, "_results", overtime)
    monkeypatch.setattr(pipeline, "_analyze_found", overtime)
    from analyzer.policy.config import build_policy, load

    path = str(binaries_built["c-rawsys"])
    request = pipeline.Request.for_policy(build_policy(load(None)), time_budget=5)
    named = pipeline._analyze((path, True), request)
    assert isinstance(named, AnalyzerError) and named.problem == "analysis took longer than the time budget (5 s)"
    (found,) = pipeline._analyze((path, False), request)
    assert found.error == "analysis took longer than the time budget (5 s)"
    assert [f["rule"] for f in found.entry["findings"]] == ["ART001"]


def test_a_time_budget_ends_while_waiting_for_the_memory_budgets_turn() -> None:
    """Two threads of one process (a Dask worker's), both under a memory budget (the process's address-space
    limit: they take turns): while one holds the turn for 2 s, the other's 0.2 s time budget ends as it waits,
    in well under the 2 s (its wait is in the budgets' own code, where a budget's end is otherwise put off as a
    `with` begins or ends)."""
    import threading
    import time

    from analyzer import budget

    holding = threading.Event()
    out: dict[str, object] = {}

    def holder() -> None:
        with budget.memory_budget(1 << 30, "a"):
            holding.set()
            time.sleep(2)

    def waiter() -> None:
        holding.wait()
        start = time.monotonic()
        try:
            with budget.time_budget(0.2, "b"), budget.memory_budget(1 << 30, "b"):
                out["got"] = "facts"
        except AnalyzerError as e:
            out["got"] = e.problem
        out["after"] = time.monotonic() - start

    threads = [threading.Thread(target=holder), threading.Thread(target=waiter)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out["got"] == "analysis took longer than the time budget (0.2 s)"
    assert isinstance(out["after"], float) and out["after"] < 1.5, out


@pytest.mark.parametrize("thread", ["main", "other"])
def test_a_stopped_budget_clock_stays_stopped_when_nested(thread: str) -> None:
    """The clock stopped for an import (budget.uncharged) stays stopped through one nested in it, in the main
    thread (the signal timer) and in another (the watchdog: a nested stop there used to end the outer one's
    credit): 1.2 s uncharged and 0.05 s charged fit a 0.5 s budget; 1 s charged does not (the margins wide
    enough for a host whose sleeps overrun under CPU steal)."""
    import threading
    import time

    from analyzer import budget

    def run() -> list[str]:
        got = []
        for charged in (0.05, 1.0):
            try:
                with budget.time_budget(0.5, "f"):
                    with budget.uncharged():
                        time.sleep(0.3)
                        with budget.uncharged():
                            time.sleep(0.3)
                        time.sleep(0.6)  # (charged, had the nested stop ended the outer one: over the budget)
                    for _ in range(int(charged * 100)):
                        time.sleep(0.01)
                got.append("facts")
            except AnalyzerError as e:
                got.append(e.problem)
        return got

    if thread == "main":
        got = run()
    else:
        out: list[list[str]] = []
        t = threading.Thread(target=lambda: out.append(run()))
        t.start()
        t.join()
        (got,) = out
    assert got == ["facts", "analysis took longer than the time budget (0.5 s)"]


def test_a_time_budget_ending_in_a_rule_is_the_budgets_error(binaries_built: dict[str, Path]) -> None:
    """The budget's end, raised wherever the analysis is, is the file's time-budget error, never another
    handler's: five budgets end while the rules are evaluated (over and over, as for a file of a million
    findings), each the budget's error (before, the rule evaluator took it for a rule's own failure, `rule
    LNK012 (rules/linkage.toml): cannot evaluate: _Overtime`)."""
    from analyzer import budget
    from analyzer.pipeline import Request
    from analyzer.policy.config import build_policy, load
    from analyzer.policy.rules import evaluate

    policy = build_policy(load(None))
    entry = analyze_file(str(binaries_built["c-rawsys"]), Request.for_policy(policy))[0]
    evaluate(policy, entry)  # (the rules evaluate)
    for _ in range(5):
        with pytest.raises(AnalyzerError) as got:
            with budget.time_budget(0.05, "c-rawsys"):
                while True:
                    evaluate(policy, entry)
        assert got.value.problem == "analysis took longer than the time budget (0.05 s)"


def test_a_file_spinning_in_native_code_is_its_own_error(binaries_built: dict[str, Path], tmp_path: Path) -> None:
    """A file whose analysis spins in native code (the fault hook: one C call of minutes, as a native parser's
    endless loop would), where neither timer reaches because no Python runs: in the pool's workers the kernel's
    CPU-time limit (the file's budget and as much again) ends the worker, and the file is that artifact's
    error (ART001), every other file reported (before: the scan hung until `timeout` killed it)."""
    import json
    import shutil

    folder = tmp_path / "bins"
    folder.mkdir()
    for i in range(20):  # (enough files for the scan to use its worker processes)
        shutil.copy(binaries_built["c-rawsys"], folder / f"rawsys{i:02}")
    spins = str(folder / "rawsys05")
    proc = run_binlens("scan", "--time-budget", "1", "--format", "json", "--jobs", "2", str(folder),
                       prefix=["timeout", "120"], env=dict(os.environ, BINLENS_FAULT_SPIN=spins))
    assert proc.returncode == 1, proc.stderr[-2000:]
    entries = {a["path"]: a for a in json.loads(proc.stdout)["artifacts"]}
    assert len(entries) == 20 and entries[spins]["error"].startswith("the process analysing it died")
    assert [f["rule"] for f in entries[spins]["findings"]] == ["ART001"]
    assert all(a["error"] is None and a["facts"] for p, a in entries.items() if p != spins)


def test_a_file_spinning_in_native_code_in_the_commands_own_process_is_stopped(binaries_built: dict[str, Path],
                                                                              tmp_path: Path) -> None:
    """The same spin in a file analysed in the command's own process (a file named alone: `inspect`, as `scan` of
    it, and a small scan), where a per-file
    CPU limit does not fit: a guard process stops the run when the budget and as much again have passed, after
    writing one line that names the file (before: the command hung until `timeout` killed it). The status is the
    kill's (-9), not 2: nothing in the stopped process runs again to choose one."""
    import time

    spins = tmp_path / "rawsys"
    spins.write_bytes(binaries_built["c-rawsys"].read_bytes())
    start = time.monotonic()
    proc = run_binlens("inspect", "--time-budget", "1", str(spins), prefix=["timeout", "60"],
                       env=dict(os.environ, BINLENS_FAULT_SPIN=str(spins)))
    assert proc.returncode == -9 and time.monotonic() - start < 30, (proc.returncode, proc.stderr[-500:])
    assert proc.stderr == f"binlens: {spins}: analysis did not end 6 s after it began (its time budget: 1 s): a " \
                          "loop in native code, which no timer reaches; stopped\n", proc.stderr
    fine = run_binlens("inspect", "--time-budget", "1", str(spins))
    assert fine.returncode in (0, 1) and fine.stderr == "", fine.stderr


@pytest.mark.parametrize("cache", ["--no-cache", "--cache-dir"])
def test_time_budget_bounds_the_digest_of_a_huge_binary(binaries_built: dict[str, Path], tmp_path: Path,
                                                        cache: str) -> None:  # fmt: skip
    """A real program padded to a 1 TiB sparse file: hashing it (the report's sha256, the result cache's key)
    is under --time-budget like the rest of its analysis, and interrupted by it (it was one uninterruptible
    call, and with the result cache it ran before the budget started: twelve minutes)."""
    p = tmp_path / "padded"
    p.write_bytes(binaries_built["c-rawsys"].read_bytes())
    with open(p, "r+b") as fh:
        fh.truncate(1 << 40)
    where = [str(tmp_path / "cache")] if cache == "--cache-dir" else []
    proc = run_binlens("scan", "--time-budget", "1", cache, *where, str(p), prefix=["timeout", "60"])
    _assert_one_line_error(proc, str(p))
    assert "analysis took longer than the time budget (1 s)" in proc.stderr


def test_memory_budget_makes_a_hungry_file_its_own_error(binaries_built: dict[str, Path],
                                                          fixtures_built: dict[str, Path], tmp_path: Path) -> None:
    """--memory-budget: a file whose analysis needs more address space than the budget is that artifact's error
    (ART001) and the scan goes on; a budget it fits in changes nothing; named on the command line, one line and
    exit 2. The hungry file holds 20,000 section headers (its analysis takes about 12 MB): a small program's
    analysis may fit in what the process has mapped already (it did in one order of the suite's tests), so the
    budget is not asserted to stop it."""
    import json
    import shutil

    folder = tmp_path / "bins"
    folder.mkdir()
    shutil.copy(binaries_built["c-rawsys"], folder / "rawsys")
    hungry = folder / "sections"
    hungry.write_bytes(_with_sections(fixtures_built["c-annobin-on"].read_bytes(), 20000))
    tight = json.loads(run_binlens("scan", "--memory-budget", "1M", "--format", "json", str(folder)).stdout)
    by = {a["path"]: a for a in tight["artifacts"]}
    assert by[str(hungry)]["error"] == "analysis needed more memory than the memory budget (1048576 bytes)"
    assert all([f["rule"] for f in a["findings"]] == ["ART001"] for a in tight["artifacts"] if a["error"])
    roomy = run_binlens("scan", "--memory-budget", "512M", "--format", "json", str(folder))
    plain = run_binlens("scan", "--format", "json", str(folder))
    assert roomy.stdout == plain.stdout and roomy.returncode == plain.returncode
    assert not any(a["error"] for a in json.loads(plain.stdout)["artifacts"])
    _assert_one_line_error(run_binlens("scan", "--memory-budget", "1M", str(hungry)), str(hungry))


def test_version_need_flood(fixtures_built: dict[str, Path], tmp_path: Path) -> None:
    """A .gnu.version_r entry that claims 65,535 auxiliary entries whose first one points at itself (a flood
    that once took gigabytes through the names it copied): facts as readelf reads them, bounded work."""
    import json
    import struct

    data = bytearray(fixtures_built["c-x86_64-gnu.2.34"].read_bytes())
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    for i in range(shnum):
        _, sh_type, _, _, off, _, _, _, _, _ = struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize)
        if sh_type == 0x6FFFFFFE:  # SHT_GNU_verneed
            struct.pack_into("<H", data, off + 2, 65535)  # vn_cnt
            aux = off + struct.unpack_from("<I", data, off + 8)[0]
            struct.pack_into("<I", data, aux + 12, 0)  # vna_next: the same entry again
    p = tmp_path / "flood"
    p.write_bytes(bytes(data))
    proc = run_binlens("scan", "--format", "json", str(p))
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stderr
    needs = json.loads(proc.stdout)["artifacts"][0]["facts"]["version_needs"]
    assert sum(len(v) for v in needs.values()) < 100


def test_file_names_that_are_not_utf8_or_hold_control_characters(binaries_built: dict[str, Path],
                                                                  tmp_path: Path) -> None:
    """A file named with bytes that are not UTF-8 (or with a newline) is read by its real name and shown as
    text (`\\xff`, `\\x0a`) in every report and to the rules: it crashed the rule engine (a traceback) before.
    `binlens go` prints the name's bytes as `go version -m` does."""
    import subprocess
    import sys

    from conftest import ROOT

    d = tmp_path / "rel"
    d.mkdir()
    c_bin = binaries_built["c-x86_64-gnu.2.34"].read_bytes()
    go_bin = binaries_built["go-linux-amd64"].read_bytes()
    base = os.fsencode(d)
    for name, blob in ((b"/t\xff", c_bin), (b"/line\nbreak", c_bin), (b"/g\xfe", go_bin)):
        with open(base + name, "wb") as f:
            f.write(blob)
    env = dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1", PYTHONIOENCODING="utf-8:strict")

    def run(*args: bytes | str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([sys.executable, "-m", "analyzer", *args], capture_output=True, env=env, timeout=300)

    for fmt in ("text", "json", "jsonl", "sarif", "junit", "markdown", "cyclonedx", "spdx"):
        out = run("scan", "--format", fmt, str(d))
        assert out.returncode in (0, 1) and b"Traceback" not in out.stderr, (fmt, out.stderr[-600:])
        if fmt in ("text", "json", "jsonl", "cyclonedx"):  # the formats that list every artifact
            assert b"t\\xff" in out.stdout or b"t\\\\xff" in out.stdout, fmt
        assert b"line\nbreak" not in out.stdout and b"\xff" not in out.stdout, fmt
    bad = base + b"/t\xff"
    for args in (("inspect", bad), ("deps", bad), ("deps", "--format", "json", bad), ("syscalls", bad),
                 ("checksec", str(d)), ("diff", bad, bad), ("scan", "--facts", "deps", "--format", "json", str(d))):
        out = run(*args)
        assert out.returncode in (0, 1) and b"Traceback" not in out.stderr, (args, out.stderr[-600:])
        assert b"t\\xff" in out.stdout or b"t\\\\xff" in out.stdout, args
    go = run("go", base + b"/g\xfe")
    import build

    ref = subprocess.run([str(build.go_binary()), "version", "-m", base + b"/g\xfe"], capture_output=True)
    assert go.returncode == 0 and go.stdout == ref.stdout and b"/g\xfe: go" in go.stdout


@pytest.mark.parametrize("kind", ["symtab", "note", "build-notes"])
def test_thousands_of_sections_over_the_same_bytes(tmp_path: Path, kind: str) -> None:
    """4,000 section headers over the same 256 KiB — symbol tables, GNU notes, annobin build notes (no linker
    writes this): each fact that walks them reads those bytes once, and the file is analysed well within a
    time budget (each took 60-75 s, every copy read by the strip prediction and the note readers). What binutils
    says of such a file: strip warns of the multiple symbol tables, readelf -n finds the build ID binlens gives;
    binlens does not predict strip's output for it (null savings)."""
    import json
    import subprocess

    f = tmp_path / f"{kind}.so"
    f.write_bytes(make_malformed.many_sections(kind))
    r = run_binlens("scan", "--time-budget", "30", "--format", "json", "--no-cache", "--fail-on", "never", str(f))
    (art,) = json.loads(r.stdout)["artifacts"]
    assert art["error"] is None, art["error"]
    assert set(art["facts"]["strip_savings"].values()) == {None}
    if kind == "symtab":
        strip = subprocess.run(["strip", "-o", str(tmp_path / "out"), str(f)], capture_output=True, text=True)
        assert "multiple symbol tables detected" in strip.stderr
    if kind == "note":  # (readelf prints all 32 million notes: its first build ID is enough)
        with subprocess.Popen(["readelf", "-n", str(f)], stdout=subprocess.PIPE, text=True) as readelf:
            assert readelf.stdout is not None
            first = next(line.split(":", 1)[1].strip() for line in readelf.stdout if "Build ID:" in line)
            readelf.kill()
        assert art["facts"]["elf"]["build_id"] == first


def test_import_descriptors_naming_one_table_over_and_over(tmp_path: Path) -> None:
    """A PE program whose import descriptors all name one lookup table: 64 × 2,000 names read as objdump -p
    lists them; 4,096 × 65,535 (268 million names, no linker's output; binlens took minutes and gigabytes) one
    line naming the file and the problem, exit 2."""
    from groundtruth import objdump_pe_imports

    small = tmp_path / "small.exe"
    small.write_bytes(make_malformed.shared_import_tables(64, 2000))
    (entry, *_) = analyze_file(str(small))
    assert entry["facts"]["pe"]["imports"] == objdump_pe_imports(str(small)) and \
        len(entry["facts"]["pe"]["imports"]["a.dll"]) == 128_000
    big = tmp_path / "big.exe"
    big.write_bytes(make_malformed.shared_import_tables(4096, 65535))
    r = run_binlens("scan", str(big))
    _assert_one_line_error(r, str(big))
    assert "more than 262144 imported names" in r.stderr


def _rss_anon() -> int:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) << 10 for line in fh if line.startswith("RssAnon:"))


def test_fat_slices_padded_to_gigabytes_are_not_copied(fixtures_built: dict[str, Path], tmp_path: Path) -> None:
    """A fat Mach-O whose last slice claims 1 GiB (its thin file, then a sparse hole): the slice is mapped
    where it lies and LIEF is given only what the slice's load commands point at — anonymous memory grows by
    megabytes, not by the 2 GiB it took to copy the slice twice. A large slice off a page boundary (lipo aligns
    them) is refused in one line."""
    import struct

    from analyzer import load

    data = bytearray(fixtures_built["go-darwin-fat"].read_bytes())
    cputype, sub, offset, size, align = struct.unpack_from(">iiIII", data, 28)  # the second slice
    padded = tmp_path / "padded-fat"
    end = 1 << 30
    struct.pack_into(">iiIII", data, 28, cputype, sub, offset, end - offset, align)
    padded.write_bytes(data[: offset + size])
    with open(padded, "r+b") as fh:
        fh.truncate(end)
    before = _rss_anon()
    arts = load.open_artifacts(str(padded))
    assert [a.format for a in arts] == ["MachO", "MachO"] and len(arts[1].data) == end - offset
    assert _rss_anon() - before < 256 << 20, (_rss_anon() - before) >> 20
    proc = run_binlens("scan", str(padded), "--no-cache")
    assert proc.returncode == 0 and "2 artifacts; 0 errors" in proc.stdout, proc.stdout + proc.stderr
    odd = tmp_path / "odd-fat"
    thin = bytes(data[offset: offset + size])
    struct.pack_into(">IiiIII", data, 4, 1, cputype, sub, 4097, 100 << 20, align)  # one slice, at 4097
    odd.write_bytes(bytes(data[:4097]) + thin)
    with open(odd, "r+b") as fh:
        fh.truncate(4097 + (100 << 20))
    proc = run_binlens("scan", str(odd), "--no-cache")
    _assert_one_line_error(proc, str(odd))
    assert f"corrupt: a fat slice of {100 << 20} bytes off a page boundary (0x1001)" in proc.stderr
