"""PyInstaller one-file programs: the binaries in their archive are audited as members (`app!libpython…`), found
where PyInstaller's bootloader finds the archive, each member's bytes as PyInstaller's own archive reader
(CArchiveReader, what pyi-archive_viewer runs) extracts them, and their facts those of the extracted files. The
gate sees the GLIBC version the bundled libraries need (readelf), not only the bootloader's; damaged archives
are one line each."""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import struct
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from tests.conftest import bad_input_is_one_line, run_binlens
from tests.test_archives import _entries, _same_facts

pytest.importorskip("PyInstaller", reason="pyinstaller is in the test extra (pyproject.toml)")
from PyInstaller.archive.readers import CArchiveReader  # noqa: E402

from analyzer import load, pipeline  # noqa: E402
from analyzer.errors import AnalyzerError  # noqa: E402


def _oracle(path: Path) -> dict[str, bytes]:
    """The bundle's binaries as PyInstaller's reader extracts them: every binary ('b') or data ('x') entry whose
    bytes are an ELF, PE or Mach-O file, in the archive's order."""
    reader = CArchiveReader(str(path))
    out = {}
    for name, (_, _, _, _, typecode) in reader.toc.items():
        if typecode in "bx":
            data = reader.extract(name)
            if load.sniff(data[:8]) is not None:
                out[name] = data
    return out


def _glibc(path: Path) -> tuple[int, int]:
    """The highest GLIBC_x.y version node `readelf -V` lists as needed."""
    out = subprocess.run(["readelf", "-V", "-W", str(path)], capture_output=True, text=True, check=True).stdout
    found = [tuple(map(int, v.split("."))) for v in re.findall(r"Name: GLIBC_(\d+\.\d+)\b", out)]
    return max(found, default=(0, 0))  # type: ignore[return-value]


@pytest.fixture(scope="module")
def bundle(fixtures_built) -> Path:
    return fixtures_built["pyinstaller-onefile"]


@pytest.mark.parametrize("name", ["pyinstaller-onefile", "pyinstaller-windows.exe", "pyinstaller-macos"])
def test_members_are_what_pyinstaller_extracts(fixtures_built, tmp_path, name):
    """The report lists the program, then each bundled binary in the archive's order, with the sha256 and size
    of what CArchiveReader extracts; each member's facts equal those of that file scanned on its own. Built by
    PyInstaller on Linux (the archive in the ELF section `pydata`); for Windows appended to the program, for
    macOS before its code signature (fixtures/make_pyinstaller.py)."""
    _same_as_extracted(fixtures_built[name], tmp_path)


def test_a_signed_windows_program(fixtures_built, tmp_path):
    """Signed after PyInstaller made it (osslsigncode, as signtool would): the certificate table follows the
    archive, which is found before it."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", "/CN=binlens test"], check=True, capture_output=True)
    signed = tmp_path / "app.exe"
    subprocess.run(["osslsigncode", "sign", "-certs", str(cert), "-key", str(key), "-in",
                    str(fixtures_built["pyinstaller-windows.exe"]), "-out", str(signed)], check=True,
                   capture_output=True)
    assert signed.stat().st_size > fixtures_built["pyinstaller-windows.exe"].stat().st_size
    _same_as_extracted(signed, tmp_path)


def _same_as_extracted(bundle: Path, tmp_path: Path) -> None:
    want = _oracle(bundle)
    assert len(want) >= 2, sorted(want)
    scanned = _entries([str(bundle)])  # (in order: the scan's; the command line's own is the other tests')
    assert list(scanned) == [str(bundle)] + [f"{bundle}!{n}" for n in want]
    for path, a in list(scanned.items())[1:]:
        data = want[path.split("!", 1)[1]]
        assert (a["sha256"], a["size"], a["error"]) == (hashlib.sha256(data).hexdigest(), len(data), None)
    root = tmp_path / "x"
    for name, data in want.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    inside = {p.split("!", 1)[1]: e for p, e in scanned.items() if "!" in p}
    outside = {os.path.relpath(p, root): e for p, e in _entries([str(root)]).items()}
    assert inside.keys() == outside.keys()
    for name in inside:
        _same_facts(inside[name], outside[name])


def test_the_gate_sees_the_glibc_the_bundled_libraries_need(bundle, tmp_path):
    """The bootloader alone needs an old glibc; the libpython it carries needs a newer one (both by readelf).
    Against a target between the two, the program fails the gate, on the members readelf says need more, and
    the program's own verdict says FAILS there — before, binlens saw the bootloader only and said it runs."""
    members = _oracle(bundle)
    highest = {}
    for name, data in members.items():
        f = tmp_path / hashlib.sha256(name.encode()).hexdigest()
        f.write_bytes(data)
        highest[name] = _glibc(f)
    top = max(highest.values())
    assert _glibc(bundle) < top, "the fixture's bootloader needs as much glibc as its libraries: no test"
    target = f"glibc-{top[0]}.{top[1] - 1}"
    alone = tmp_path / "bootloader"
    subprocess.run(["objcopy", "--remove-section", "pydata", str(bundle), str(alone)], check=True)
    assert run_binlens("scan", "--no-cache", "--target", target, "--fail-on", "error", str(alone)).returncode == 0
    ok = f"glibc-{top[0]}.{top[1]}"
    r = run_binlens("scan", "--no-cache", "--target", target, "--target", ok, "--fail-on", "error", "--format", "json",
                    str(bundle))
    assert r.returncode == 1, r.stderr
    failing = {a["path"].split("!", 1)[1] for a in json.loads(r.stdout)["artifacts"]
               if "!" in a["path"] and any(f["severity"] == "error" for f in a["findings"])}
    assert {n for n, v in highest.items() if v == top} <= failing, (failing, highest)
    assert all(highest[n] == top for n in failing), (failing, highest)
    # the program's own verdict is where all it loads runs: FAILS on that target, ok on the glibc they need
    program = json.loads(r.stdout)["artifacts"][0]
    assert program["facts"]["bundle"]["binaries"] == len(members)
    assert program["facts"]["compat"]["targets"][target]["ok"] is False
    assert program["facts"]["compat"]["targets"][ok]["ok"] is True
    # deps resolves the program the loader starts, the bootloader, as without its archive; the bundled after it
    shown = [run_binlens("deps", str(p), check=True).stdout.replace(str(p), "APP") for p in (bundle, alone)]
    assert shown[0].startswith(shown[1]) and "libc.so.6" in shown[1] and "\nAPP!libpython" in shown[0]


def test_a_bootloader_that_carries_nothing_is_one_program(tmp_path):
    """PyInstaller's own bootloaders as its wheel ships them (no archive yet): one program each, no error."""
    import PyInstaller

    boots = sorted((Path(PyInstaller.__file__).parent / "bootloader").glob("*/run*"))
    assert boots
    report = json.loads(run_binlens("scan", "--format", "json", "--no-cache", "--fail-on", "never", *map(str, boots),
                                    check=True).stdout)
    assert [(a["path"], a["error"]) for a in report["artifacts"]] == [(str(b), None) for b in boots]


def _pydata(bundle: Path) -> tuple[int, int]:
    out = subprocess.run(["readelf", "-SW", str(bundle)], capture_output=True, text=True, check=True).stdout
    m = re.search(r"\] pydata\s+PROGBITS\s+[0-9a-f]+ ([0-9a-f]+) ([0-9a-f]+)", out)
    assert m, out
    return int(m[1], 16), int(m[2], 16)


def test_damaged_archives_are_one_line(bundle, tmp_path):
    """A `pydata` section that holds no archive (cut short, or its cookie's sizes wrong) is the program's error:
    exit 2 and one line naming it when named, its entry's error inside a directory (and the gate fails). A
    member whose compressed bytes are damaged is that member's error; the others are read."""
    data = bundle.read_bytes()
    at, size = _pydata(bundle)
    cut = tmp_path / "cut"
    half = tmp_path / "half.bin"
    half.write_bytes(data[at:at + size // 2])
    subprocess.run(["objcopy", "--update-section", f"pydata={half}", str(bundle), str(cut)], check=True)
    bad_input_is_one_line(cut, "corrupt PyInstaller archive", tmp_path / "dir")
    # the cookie's archive length past the section's start
    bad = bytearray(data)
    cookie = at + size - 88
    struct.pack_into("!I", bad, cookie + 8, size + 1)
    (tmp_path / "long").write_bytes(bad)
    r = run_binlens("scan", "--no-cache", str(tmp_path / "long"))
    assert r.returncode == 2 and "corrupt PyInstaller archive" in r.stderr and r.stderr.count("\n") == 1
    # libpython's compressed bytes damaged in the middle
    reader = CArchiveReader(str(bundle))
    name = next(n for n in reader.toc if n.startswith("libpython"))
    off, stored = reader.toc[name][:2]
    where = reader._start_offset + off + stored // 2
    bad = bytearray(data)
    bad[where:where + 64] = bytes(64)
    (tmp_path / "member").write_bytes(bad)
    with pytest.raises(Exception):  # noqa: B017 - the oracle agrees the member is damaged
        reader2 = CArchiveReader(str(tmp_path / "member"))
        reader2.extract(name)
    r = run_binlens("scan", "--no-cache", "--format", "json", str(tmp_path / "member"))
    assert r.returncode == 1, r.stderr
    errors = {a["path"]: a["error"] for a in json.loads(r.stdout)["artifacts"] if a["error"]}
    assert list(errors) == [f"{tmp_path / 'member'}!{name}"], errors
    assert errors[f"{tmp_path / 'member'}!{name}"].startswith("corrupt compressed data")


def test_mutated_tables_of_contents(bundle, tmp_path):
    """Random bytes of the table of contents' entry headers (offsets, sizes, flags, type codes) and of the cookie
    changed: each gives entries or the program's one-line error, never another exception, in seconds.
    Whole-archive errors and members' own errors both happen."""
    data = bundle.read_bytes()
    at, size = _pydata(bundle)
    _, length, toc_at, toc_len = struct.unpack_from("!8sIII", data, at + size - 88)
    toc = at + size - length + toc_at  # (the cookie's fields, as analyzer/load/pyinstaller.py documents them)
    fields = []
    pos = toc
    while pos < toc + toc_len:
        fields += range(pos, pos + 18)
        pos += struct.unpack_from("!I", data, pos)[0]
    fields += range(at + size - 88, at + size - 64)
    rng = random.Random(7)
    outcomes = set()
    for i in range(8):  # (in this process: the command line's one line is test_damaged_archives_are_one_line's)
        bad = bytearray(data)
        for _ in range(rng.randint(1, 3)):
            bad[rng.choice(fields)] = rng.randrange(256)
        f = tmp_path / f"m{i}"
        f.write_bytes(bad)
        started = time.monotonic()
        try:
            entries = pipeline.analyze_file(str(f), pipeline.Request(time_budget=30))
            outcomes.add("member" if any(e["error"] for e in entries) else "read")
        except AnalyzerError as e:
            assert e.path == str(f) and e.problem and "\n" not in e.problem, e
            outcomes.add("run")
        assert time.monotonic() - started < 10, f"mutant {i}"
    assert {"run", "member"} <= outcomes, outcomes


def test_inside_a_tarball_cached_and_any_jobs(bundle, tmp_path):
    """A one-file program shipped in a tarball: its members named through it; the report the same, byte for
    byte, with one or two processes and from the result cache."""
    tgz = tmp_path / "app-1.0-linux.tar.gz"
    with tarfile.open(tgz, "w:gz") as t:
        t.add(bundle, "app-1.0/bin/app")
    cache = tmp_path / "cache"
    runs = [run_binlens("scan", "--format", "json", "--fail-on", "never", "--jobs", j, "--cache-dir", str(cache),
                        str(tgz), check=True).stdout for j in ("2", "1")]  # (the second from the cache)
    assert runs[0] == runs[1]
    paths = [a["path"] for a in json.loads(runs[0])["artifacts"]]
    assert paths[0] == f"{tgz}!app-1.0/bin/app"
    assert any(p.startswith(f"{tgz}!app-1.0/bin/app!libpython") for p in paths), paths


def test_a_bundled_binary_named_as_reports_name_it(bundle, tmp_path):
    """`inspect 'app!libpython3.11.so.1.0'` (and through a tarball) analyses that member alone, its entry as the
    program's scan gives it; a name the program does not carry is one line."""
    scanned = {a["path"]: a for a in json.loads(run_binlens("scan", "--format", "json", "--no-cache", "--fail-on",
                                                            "never", str(bundle), check=True).stdout)["artifacts"]}
    name = next(p for p in scanned if "!libpython" in p)
    inspect = ("inspect", "--format", "json", "--no-cache")
    (alone,) = json.loads(run_binlens(*inspect, name, check=True).stdout)["artifacts"]
    assert alone == scanned[name]
    tgz = tmp_path / "app.tgz"
    with tarfile.open(tgz, "w:gz") as t:
        t.add(bundle, "bin/app")
    inner = f"{tgz}!bin/app!{name.split('!', 1)[1]}"
    (nested,) = json.loads(run_binlens(*inspect, inner, check=True).stdout)["artifacts"]
    assert {**nested, "path": name} == scanned[name]
    r = run_binlens("inspect", "--no-cache", f"{bundle}!libnothing.so")
    assert (r.returncode, r.stderr) == (2, f"binlens: {bundle}!libnothing.so: no binary of that name in {bundle}\n")


def test_bundled_libraries_resolve_as_the_real_loader_finds_them(bundle, tmp_path):
    """`deps`: each bundled binary resolved as the bootloader has it loaded — extracted to one directory
    (`/tmp/_MEIxxxxxx`) first on LD_LIBRARY_PATH — equals what the real loader (`ld.so --list`) maps for the
    same file extracted by PyInstaller's reader, with LD_LIBRARY_PATH naming that directory."""
    from tests.test_ldso import LDSO, ld_list

    root = tmp_path / "_MEI"
    for name, data in _oracle(bundle).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    r = run_binlens("deps", "--format", "json", str(bundle))
    assert r.returncode == 0, r.stderr
    report = {a["path"]: a for a in json.loads(r.stdout)["artifacts"]}
    compared = 0
    modules = [n for n in _oracle(bundle) if "/" in n]
    for name in [n for n in _oracle(bundle) if "/" not in n] + modules[::4]:  # (the libraries; a sample of modules)
        expected = ld_list(str(root / name), env={"LD_LIBRARY_PATH": str(root)})
        assert expected is not None, name
        deps = report[f"{bundle}!{name}"]["facts"]["deps"]
        got = {lib["name"]: lib["path"].replace("/tmp/_MEIxxxxxx", str(root)) for lib in deps["libraries"]
               if lib["name"] != os.path.basename(LDSO)}
        assert (got, deps["loader_errors"]) == (expected, []), name
        compared += any(p.startswith(str(root)) for p in expected.values())
    assert compared >= 3  # (libpython's, libssl's and others' found in the bundle, not on the system)
    # DEP005 (found only through LD_LIBRARY_PATH) is quiet on the directory the bootloader puts there itself
    assert not [f for a in report.values() for f in a["findings"] if f["rule"] == "DEP005"]


def test_a_seccomp_profile_for_the_program_allows_what_it_calls(bundle, tmp_path):
    """`syscalls --seccomp oci APP`: the profile of the bootloader and every bundled binary (each reaching
    through its libraries as the bootloader has them loaded) allows every call the program makes when run
    under strace -f (its extraction, its re-exec, Python's start-up and imports). The bootloader's alone lacked
    some (epoll_create1, which Python's selectors module calls)."""
    from tests.test_syscalls import _strace

    made = _strace([str(bundle)])
    r = run_binlens("syscalls", "--seccomp", "oci", str(bundle))
    assert r.returncode == 0, r.stderr
    allowed = {n for rule in json.loads(r.stdout)["syscalls"] for n in rule["names"]}
    assert made and made <= allowed, sorted(made - allowed)


def test_a_universal_program(fixtures_built, tmp_path):
    """A universal (fat) macOS program whose last slice carries the archive, as PyInstaller's universal2 builds
    are: the bundled binaries are that slice's (`app[arm64]!Python`), their bytes as CArchiveReader extracts
    them from the whole file, each binary counted once in the slice's `bundle`."""
    import make_fat

    fat = tmp_path / "app"
    make_fat.join([fixtures_built["c-x86_64-macos"], fixtures_built["pyinstaller-macos"]], fat)
    want = _oracle(fat)
    scanned = _entries([str(fat)])
    assert list(scanned) == [f"{fat}[x86_64]", f"{fat}[arm64]"] + [f"{fat}[arm64]!{n}" for n in want]
    for name, data in want.items():
        assert scanned[f"{fat}[arm64]!{name}"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert scanned[f"{fat}[arm64]"]["facts"]["bundle"]["binaries"] == len(want)
    assert "bundle" not in scanned[f"{fat}[x86_64]"]["facts"]


def test_a_hostile_archive_with_a_file_where_a_directory_goes(binaries_built, tmp_path):
    """Two entries `lib` and `lib/x.so` (the second cannot be extracted beside the first): deps still answers for
    each (the second without the loader's view of its directory), no traceback."""
    import make_pyinstaller

    pkg = make_pyinstaller.archive([("lib", binaries_built["c-rawsys"]),
                                    ("lib/x.so", binaries_built["c-x86_64-gnu.2.34"])], "libpython3.11.so.1.0")
    app = tmp_path / "app"
    make_pyinstaller.append(binaries_built["c-x86_64-gnu.2.34"], pkg, app)
    r = run_binlens("deps", "--format", "json", str(app))
    assert r.returncode in (0, 1) and "Traceback" not in r.stderr, r.stderr
    assert [a["path"] for a in json.loads(r.stdout)["artifacts"]] == [str(app), f"{app}!lib", f"{app}!lib/x.so"]


def test_explain_names_the_carried_library_and_its_symbols(bundle, tmp_path):
    """The error a PyInstaller program prints where its libpython needs a newer glibc, pasted with --binary APP:
    binlens says it is the library APP carries, lists the symbols of that library bound at that version (as
    objdump -T lists them in the file PyInstaller's reader extracts), and the PyInstaller fix."""
    members = _oracle(bundle)
    lib = next(n for n in members if n.startswith("libpython"))
    f = tmp_path / lib
    f.write_bytes(members[lib])
    dump = subprocess.run(["objdump", "-T", str(f)], capture_output=True, text=True, check=True).stdout
    by_version: dict[str, set[str]] = {}
    for m in re.finditer(r"\*UND\*\s+\S+\s+(?:\(|)(GLIBC_[\d.]+)\)?\s+(\S+)$", dump, re.M):
        by_version.setdefault(m[1], set()).add(m[2])
    node = max(by_version, key=lambda v: tuple(map(int, v[6:].split("."))))
    error = (f"[PYI-4123:ERROR] Failed to load Python shared library '/tmp/_MEIabc123/{lib}': dlopen: "
             f"/lib/x86_64-linux-gnu/libm.so.6: version `{node}' not found (required by /tmp/_MEIabc123/{lib})")
    r = run_binlens("explain", error, "--binary", str(bundle))
    assert r.returncode == 0, r.stderr
    uses = set(re.findall(rf"^  {re.escape(str(bundle))}!{re.escape(lib)} uses (\S+)@{node}$", r.stdout, re.M))
    assert uses == by_version[node], (uses, by_version[node])
    assert f"It is {bundle}!{lib}, a library the PyInstaller program" in r.stdout
    assert "PyInstaller bundles the libpython and libraries of the machine that built the program" in r.stdout


def test_a_renamed_program_pairs_in_a_release_diff(bundle, tmp_path):
    """A new release renames its one-file program (tool-1.0-linux-x86_64 → tool-1.1-linux-x86_64): the program
    pairs, as an AppImage's runtime does, and so does every binary it carries."""
    for side, version in (("old", "1.0"), ("new", "1.1")):
        (tmp_path / side).mkdir()
        shutil.copy(bundle, tmp_path / side / f"tool-{version}-linux-x86_64")
    r = run_binlens("diff", str(tmp_path / "old"), str(tmp_path / "new"), "--format", "json")
    result = json.loads(r.stdout)
    below = len(str(tmp_path / "old")) + 1
    pairs = {(p["old"][below:], p["new"][below:]) for p in result["pairs"]}
    carried = [n for n in _oracle(bundle)]
    assert pairs == {("tool-1.0-linux-x86_64", "tool-1.1-linux-x86_64")} | {
        (f"tool-1.0-linux-x86_64!{n}", f"tool-1.1-linux-x86_64!{n}") for n in carried}, r.stderr
    assert result["removed"] == [] and result["added"] == []


def test_a_table_of_contents_of_a_million_entries(binaries_built, tmp_path):
    """A program with an archive appended whose table of contents is 1,200,000 entries of 18 bytes (options:
    nothing to read): refused as the program's one-line error, within a second or so, not parsed entry by entry
    to the end."""
    entries = struct.pack("!IIIIBc", 18, 0, 0, 0, 0, b"o") * 1_200_000
    cookie = struct.pack("!8sIIII64s", b"MEI\014\013\012\013\016", len(entries) + 88, 0, len(entries), 311,
                         b"libpython3.11.so.1.0")
    app = tmp_path / "app"
    app.write_bytes(binaries_built["c-rawsys"].read_bytes() + entries + cookie)
    started = time.monotonic()
    with pytest.raises(AnalyzerError) as e:
        pipeline.analyze_file(str(app))
    assert time.monotonic() - started < 10
    assert (e.value.path, e.value.problem) == (str(app), "a PyInstaller table of contents of more than 1000000 entries")


def test_names_of_bundled_binaries_in_every_format(binaries_built, tmp_path):
    """Bundled binaries named `lib[1]<&>.so`, with control characters, and beyond ASCII: every output format
    parses (JSON, SARIF, CycloneDX, JUnit XML) and names them, control characters as \\xNN; the same bytes twice."""
    import xml.dom.minidom

    import make_pyinstaller

    names = ["lib[1]<&>.so", "ctl\x01\x1bname", "é/x.so"]
    pkg = make_pyinstaller.archive([(n, binaries_built["c-rawsys"]) for n in names], "libpython3.11.so.1.0")
    app = tmp_path / "app"
    make_pyinstaller.append(binaries_built["c-x86_64-gnu.2.34"], pkg, app)
    outs = {f: run_binlens("scan", "--no-cache", "--fail-on", "never", "--format", f, str(app), check=True).stdout
            for f in ("json", "sarif", "cyclonedx", "junit", "markdown", "text")}
    paths = [a["path"] for a in json.loads(outs["json"])["artifacts"]]
    assert paths == [str(app)] + [f"{app}!{n}" for n in ("lib[1]<&>.so", "ctl\\x01\\x1bname", "é/x.so")]
    json.loads(outs["sarif"]), json.loads(outs["cyclonedx"])
    cases = xml.dom.minidom.parseString(outs["junit"]).getElementsByTagName("testcase")
    assert f"{app}!lib[1]<&>.so" in {c.getAttribute("classname") for c in cases}
    assert "\x1b" not in "".join(outs.values())
    assert run_binlens("scan", "--no-cache", "--fail-on", "never", "--format", "json", str(app)).stdout == outs["json"]
