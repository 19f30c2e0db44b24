"""Go build info against the Go toolchain itself: `go version -m`, `go version -m -json`, `go tool buildid`."""

from __future__ import annotations

import base64
import functools
import json
import subprocess
import sys
from pathlib import Path

import build
import pytest
from conftest import run_binlens
from groundtruth import lipo_path

from analyzer import load
from analyzer.facts.go import buildinfo
from analyzer.pipeline import analyze_file

GO_FIXTURES = [f.name for f in build.FIXTURES if "go" in f.tags]
GO = str(build.go_binary())
GOARCH_OF = {"x86_64": "amd64", "i386": "386", "aarch64": "arm64", "arm": "arm", "riscv64": "riscv64",
             "ppc64le": "ppc64le", "ppc64": "ppc64", "s390x": "s390x", "mips64el": "mips64le",
             "loongarch64": "loong64"}  # fmt: skip


def _go(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([GO, *args], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"})


@functools.cache
def _buildid_tool() -> list[str]:
    """go tool buildid: the tool's own executable, as `go tool -n` names it (the go command built it), run
    directly — each `go tool buildid` costs the go command's 80 ms, 67 times."""
    tool = _go("tool", "-n", "buildid").stdout.strip()
    return [tool] if tool and Path(tool).is_file() else [str(GO), "tool", "buildid"]


def _buildid(path: Path) -> str:
    return subprocess.run([*_buildid_tool(), str(path)], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"}).stdout.strip()


def _first_slice(path: Path) -> dict:
    """What Go reads of a file: the first slice of a fat Mach-O."""
    return analyze_file(str(path))[0]


@pytest.mark.parametrize("name", GO_FIXTURES)
def test_text_equals_go_version_m(fixtures_built: dict[str, Path], name: str) -> None:
    path = fixtures_built[name]
    expected = _go("version", "-m", str(path)).stdout
    assert expected
    entry = _first_slice(path)
    shown = run_binlens("go", str(path)).stdout
    first = shown.split(f"{path}[", 1)[0] if "[" not in entry["path"] else None
    if first is None:  # a fat file: binlens names the slice, go does not
        shown = shown.replace(entry["path"], str(path), 1)
        shown = shown[: shown.find(f"{path}[")] if f"{path}[" in shown else shown
    assert shown == expected


@pytest.mark.parametrize("name", GO_FIXTURES)
def test_fields_equal_go_version_m_json(fixtures_built: dict[str, Path], name: str) -> None:
    path = fixtures_built[name]
    ref = json.loads(_go("version", "-m", "-json", str(path)).stdout)
    go = _first_slice(path)["facts"]["go"]
    assert go["version"] == ref["GoVersion"]
    assert go["path"] == ref.get("Path")

    def mod(m: dict | None, replacement: bool = False) -> dict | None:
        if m is None:
            return None
        out = {"path": m["Path"], "version": m.get("Version", ""), "sum": m.get("Sum", "")}
        if not replacement:
            out["replace"] = mod(m.get("Replace"), True)
        return out

    assert go["main"] == mod(ref.get("Main")) or (go["main"] is None and not ref.get("Main", {}).get("Path"))
    assert go["deps"] == [mod(d) for d in ref.get("Deps") or []]
    assert [(k, go["settings"][k]) for k in go["settings_order"]] == [
        (s["Key"], s.get("Value", "")) for s in ref["Settings"]
    ]


@pytest.mark.parametrize("name", GO_FIXTURES)
def test_build_id_equals_go_tool_buildid(fixtures_built: dict[str, Path], name: str, tmp_path: Path) -> None:
    """Every artifact's build ID; go tool buildid reads no fat file, so each slice is cut out by llvm-lipo."""
    path = fixtures_built[name]
    for entry in analyze_file(str(path)):
        if "[" in entry["path"]:
            arch = entry["path"].rsplit("[", 1)[1].rstrip("]")
            thin = tmp_path / arch
            subprocess.run([lipo_path() or "llvm-lipo", "-thin", arch, str(path), "-output", str(thin)], check=True)
            expected = _buildid(thin)
        else:
            expected = _buildid(path)
        assert expected and entry["facts"]["go"]["build_id"] == expected, entry["path"]


@pytest.mark.parametrize("name", [n for n in GO_FIXTURES if "fat" not in build.BY_NAME[n].tags])
def test_goos_goarch_agree_with_the_header(fixtures_built: dict[str, Path], name: str) -> None:
    facts = _first_slice(fixtures_built[name])["facts"]
    goarch = facts["go"]["settings"]["GOARCH"]
    assert GOARCH_OF[facts["arch"]] == goarch
    goos = facts["go"]["settings"]["GOOS"]
    fmt = "PE" if goos == "windows" else "MachO" if goos in ("darwin", "ios") else "ELF"  # Go's own choice per GOOS
    assert _first_slice(fixtures_built[name])["format"] == fmt


def test_go117_pointer_layout(tmp_path: Path) -> None:
    """Go 1.13-1.17 wrote pointers to string headers; Go's own test binary for it ships with the toolchain."""
    goroot = Path(_go("env", "GOROOT").stdout.strip())
    binary = tmp_path / "go117"
    binary.write_bytes(base64.b64decode((goroot / "src/debug/buildinfo/testdata/go117/go117.base64").read_text()))
    expected = _go("version", "-m", str(binary)).stdout
    assert expected.startswith(f"{binary}: go1.17")
    assert run_binlens("go", str(binary)).stdout == expected


def test_go_linkage_facts(fixtures_built: dict[str, Path]) -> None:
    def link(name: str) -> dict:
        return _first_slice(fixtures_built[name])["facts"]["go"]["linkage"]

    assert link("go-linux-amd64")["cgo"] is False
    assert link("go-linux-amd64")["link_mode"] == "internal"
    cgo = link("go-linux-cgo-amd64")
    assert cgo["cgo"] and cgo["link_mode"] == "external" and "imports libc.so.6" in cgo["cgo_evidence"]
    static = link("gomx-cgo-static")
    assert static["static_glibc"] and static["extldflags_static"] and static["cgo"]
    app = link("gomx-app")
    assert app["netgo"] and app["osusergo"]
    assert link("gomx-trimpath")["trimpath"] is True
    assert link("go-linux-amd64")["arch_level"] == {"GOAMD64": "v1"}


def test_vcs_stamping(fixtures_built: dict[str, Path]) -> None:
    clean = _first_slice(fixtures_built["gomx-vcs-clean"])["facts"]["go"]
    dirty = _first_slice(fixtures_built["gomx-vcs-dirty"])["facts"]["go"]
    assert clean["settings"]["vcs"] == "git" and clean["settings"]["vcs.modified"] == "false"
    assert dirty["settings"]["vcs.modified"] == "true"
    assert dirty["main"]["version"].endswith("+dirty")


def test_version_parsing() -> None:
    assert buildinfo.parse_version("go1.27.3-X:nogreenteagc") == {
        "major": 1, "minor": 27, "patch": 3, "number": 1027003, "prerelease": None, "experiments": ["nogreenteagc"],
        "suffix": "-X:nogreenteagc"}  # fmt: skip
    assert buildinfo.parse_version("go1.24.11 X:jsonv2,arenas")["experiments"] == ["jsonv2", "arenas"]
    assert buildinfo.parse_version("go1.22rc1")["prerelease"] == "rc1"


def test_not_go_and_damaged_build_info(fixtures_built: dict[str, Path], tmp_path: Path) -> None:
    """Lying headers: where the Go tool rejects the build info, binlens says it is damaged (never a
    crash) and still knows the binary for Go; where the Go tool reads it, binlens reads the same."""
    assert "go" not in analyze_file(str(fixtures_built["c-x86_64-gnu.2.17"]))[0]["facts"]
    good = fixtures_built["go-linux-amd64"].read_bytes()
    at = good.find(buildinfo.MAGIC)
    start = good.find(buildinfo.INFO_START, at)
    variants = {
        "varint-overflows": good[: at + 32] + b"\xff" * 10 + good[at + 42 :],
        "length-past-end": good[: at + 32] + b"\xff\xff\xff\x07" + good[at + 36 :],
        "no-start-sentinel": good[:start] + b"\0" * 16 + good[start + 16 :],
        "pointer-layout-lies": good[: at + 15] + b"\x00" + b"\xff" * 16 + good[at + 32 :],
        "bad-ptrsize": good[: at + 14] + b"\x03\x00" + good[at + 16 :],
        "empty-version": good[: at + 32] + b"\x00" + good[at + 33 :],
    }
    for name, blob in variants.items():
        p = tmp_path / name
        p.write_bytes(blob)
        ref = _go("version", "-m", str(p))
        go = buildinfo.facts(load.open_artifacts(str(p))[0])
        assert go is not None, name
        if ref.returncode == 0 and ref.stdout.startswith(f"{p}: go"):
            assert go["build_info"] == "present", name
            assert run_binlens("go", str(p)).stdout == ref.stdout, name
        else:
            assert go["build_info"] == "damaged" and go["error"], name
            assert go["pclntab"] == "go1.20+", name
            assert run_binlens("go", str(p)).returncode == 0, name


def test_toolchain_binaries_hold_the_magic_twice() -> None:
    """cmd/go imports debug/buildinfo, so its binary holds the magic twice: only the aligned one counts."""
    goroot = Path(_go("env", "GOROOT").stdout.strip())
    for binary in (goroot / "bin" / "go", goroot / "bin" / "gofmt"):
        data = binary.read_bytes()
        if binary.name == "go":
            assert data.count(buildinfo.MAGIC) >= 2
        assert run_binlens("go", str(binary)).stdout == _go("version", "-m", str(binary)).stdout


def test_missing_build_info_still_known_as_go(fixtures_built: dict[str, Path], tmp_path: Path) -> None:
    """objcopy removes .go.buildinfo: binlens says the build info is missing and knows Go from pclntab."""
    out = tmp_path / "nobuildinfo"
    subprocess.run(["objcopy", "--remove-section=.go.buildinfo", str(fixtures_built["go-linux-amd64"]), str(out)],
                   check=True, capture_output=True)  # fmt: skip
    assert _go("version", str(out)).returncode != 0 or "not a Go executable" in _go("version", str(out)).stderr
    go = analyze_file(str(out))[0]["facts"]["go"]
    assert go["build_info"] == "missing" and go["modinfo"] is None
    assert go["pclntab"] == "go1.20+"
    assert go["version"] == "go1.27.3"  # from the runtime's own version string
    assert go["build_id"] == _go("tool", "buildid", str(out)).stdout.strip()


def test_parse_modinfo_quoting() -> None:
    text = (
        "path\tex.com/m\nmod\tex.com/m\t(devel)\t\n"
        "dep\tex.com/a\tv1.0.0\n=>\t../a\t(devel)\t\n\n"
        'build\t-ldflags="-s -w -X \\"main.v=1\\""\nbuild\t"odd key"=`raw value`\nbuild\tGOOS=linux\n'
    )
    info = buildinfo.parse_modinfo(text)
    assert info["deps"][0]["replace"] == {"path": "../a", "version": "(devel)", "sum": ""}
    assert dict(info["settings"]) == {"-ldflags": '-s -w -X "main.v=1"', "odd key": "raw value", "GOOS": "linux"}


def test_link_mode_from_the_c_runtime_when_comment_is_gone(fixtures_built: dict[str, Path]) -> None:
    """A cgo program gcc linked, with .comment removed (as Debian ships dockerd): crt1.o's __libc_start_main
    import (readelf) still says external; a pure Go program has neither and is internal."""
    path = fixtures_built["go-linux-cgo-amd64-nocomment"]
    sections = subprocess.run(["readelf", "-SW", str(path)], capture_output=True, text=True).stdout
    symbols = subprocess.run(["readelf", "--dyn-syms", "-W", str(path)], capture_output=True, text=True).stdout
    assert ".comment" not in sections and "__libc_start_main" in symbols
    assert _first_slice(path)["facts"]["go"]["linkage"]["link_mode"] == "external"
    pure = fixtures_built["go-linux-amd64"]
    assert "__libc_start_main" not in subprocess.run(["readelf", "--dyn-syms", "-W", str(pure)],
                                                     capture_output=True, text=True).stdout  # fmt: skip
    assert _first_slice(pure)["facts"]["go"]["linkage"]["link_mode"] == "internal"


def test_quoting_is_gos_not_the_files(fixtures_built: dict[str, Path], tmp_path: Path) -> None:
    """go version -m parses the module text and writes it back (BuildInfo.String), so a value the file holds in
    backquotes is printed in double quotes; binlens prints what Go prints. The file is gomx-app with the quotes
    of its -ldflags value turned into backquotes (same length, nothing else moves)."""
    data = fixtures_built["gomx-app"].read_bytes()
    old = b'build\t-ldflags="-X main.version=1.2.3"\n'
    assert old in data
    patched = tmp_path / "backquoted"
    patched.write_bytes(data.replace(old, old.replace(b'"', b"`")))
    expected = _go("version", "-m", str(patched)).stdout
    assert '-ldflags="-X main.version=1.2.3"' in expected
    assert run_binlens("go", str(patched)).stdout == expected


def test_the_short_path_answers_as_the_command_line_does(fixtures_built: dict[str, Path], tmp_path: Path) -> None:
    """`binlens go FILE...` without options is answered without click (analyzer/entry.py); with an option it
    goes through the command line. Same output, errors and exit codes either way, and the short path imports
    neither click nor typing nor the pipeline."""
    gos = [str(fixtures_built[n]) for n in ("go-linux-amd64", "go-darwin-fat", "go-windows-amd64.exe")]
    tree = tmp_path / "tree"
    tree.mkdir()
    for p in gos:
        (tree / Path(p).name).write_bytes(Path(p).read_bytes())
    ball = tmp_path / "dist.tar"
    subprocess.run(["tar", "-cf", str(ball), "-C", str(tree), "."], check=True)
    cases = [(gos, 0), ([str(tree)], 0), ([str(ball)], 0), ([gos[0], str(fixtures_built["c-x86_64-gnu.2.17"])], 2),
             ([gos[0], str(tmp_path / "missing")], 2), ([str(tree / "nothing" / "x")], 2)]
    for paths, code in cases:
        short = run_binlens("go", *paths)
        full = run_binlens("go", "--format", "text", *paths)
        assert (short.returncode, short.stdout, short.stderr) == (full.returncode, full.stdout, full.stderr), paths
        assert short.returncode == code and (short.stdout if code == 0 else short.stderr), paths
    probe = ("import sys; sys.argv = ['binlens', 'go', *sys.argv[1:]]\nfrom analyzer.entry import main\n"
             "try:\n    main()\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in ('click', 'typing', 'dataclasses', 'analyzer.pipeline') if m in sys.modules),"
             " file=sys.stderr)")
    seen = subprocess.run([sys.executable, "-c", probe, *gos], capture_output=True, text=True, check=True)
    assert seen.stderr.strip() == "[]"


def test_a_setting_given_twice_is_printed_as_go_prints_it(fixtures_built: dict[str, Path], tmp_path: Path) -> None:
    """The facts keep one value per setting key; `binlens go` prints every line as `go version -m` does, a key
    given twice included (the text is parsed again for it)."""
    blob = fixtures_built["go-linux-amd64"].read_bytes()
    assert blob.count(b"\tGOARCH=amd64\n") >= 1  # the build info, and its copy in the runtime data
    p = tmp_path / "twice"
    p.write_bytes(blob.replace(b"\tGOARCH=amd64\n", b"\tGOOS=linux64\n"))  # same length: GOOS now twice
    ref = _go("version", "-m", str(p))
    assert ref.returncode == 0 and ref.stdout.count("\tGOOS=") == 2
    assert run_binlens("go", str(p)).stdout == ref.stdout


def test_the_older_go_sample_covers_the_matrix() -> None:
    """CI builds the older Go releases on a sample of the targets (fixtures/build.py): every target is still
    built by at least one of them, and each builds every format, 32- and 64-bit, little- and big-endian."""
    sample = build.GO_OLDER_SAMPLE
    assert set(sample) == set(build.GO_OLDER)
    assert {t for targets in sample.values() for t in targets} == set(build.GO_TARGETS)
    for targets in sample.values():
        assert {"windows", "darwin", "linux"} <= {goos for goos, _ in targets}
        assert {"386", "arm"} & {a for _, a in targets} and {"s390x", "ppc64"} & {a for _, a in targets}


def test_goamd64_is_a_cpu_need_of_the_verdicts(fixtures_built: dict[str, Path]) -> None:
    """A Go program built with GOAMD64=v3 (`go version -m` says so; Go writes no GNU property note): the Go
    runtime refuses to start on an x86-64-v2 CPU (qemu-x86_64 -cpu Nehalem) and runs on a v3 one (-cpu
    Haswell), so binlens says it needs x86-64-v3: it fails RHEL 9 (v2) and Debian 12 (baseline), holds RHEL 10
    (v3), and the verdict names only releases whose every CPU has v3 — a release binlens has no baseline for
    counts as any x86-64 CPU (before: it "ran on debian-8+, fedora-39+, ..." and was ok on rhel-9)."""
    prog = fixtures_built["go-linux-amd64-v3"]
    out = subprocess.run([str(build.go_binary()), "version", "-m", str(prog)], capture_output=True, text=True)
    assert "\tbuild\tGOAMD64=v3\n" in out.stdout, out.stdout
    old = subprocess.run(["qemu-x86_64", "-cpu", "Nehalem", str(prog)], capture_output=True, text=True)
    assert old.returncode != 0 and "v3 microarchitecture support" in old.stdout + old.stderr, old
    new = subprocess.run(["qemu-x86_64", "-cpu", "Haswell", str(prog)], capture_output=True, text=True)
    assert new.returncode == 0 and new.stdout.startswith("hello"), new
    r = run_binlens("scan", "--format", "json", "--fail-on", "never", "--no-cache", "--target", "rhel-9",
                    "--target", "debian-12", "--target", "rhel-10", str(prog), str(fixtures_built["go-linux-amd64"]))
    v3, base = (a["facts"]["compat"] for a in json.loads(r.stdout)["artifacts"])
    assert {t: [p["kind"] for p in v["problems"]] for t, v in v3["targets"].items()} == \
        {"rhel-9": ["isa"], "debian-12": ["isa"], "rhel-10": []}
    assert v3["oldest"] == {f: n for f, n in v3["oldest"].items() if f in ("rhel", "almalinux", "rockylinux",
                                                                           "centos")} and v3["oldest"]
    assert all(v["ok"] for v in base["targets"].values()) and "debian" in base["oldest"]


def _no_core() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # (qemu writes a guest's core itself, in its directory)


def test_goarm64_above_the_baseline_fails_every_release(fixtures_built: dict[str, Path], tmp_path: Path) -> None:
    """GOARM64=v8.1 (`go version -m`): the program dies of SIGILL on an ARMv8.0 CPU (qemu-aarch64 -cpu
    cortex-a53, a Raspberry Pi 3's) and runs on a v8.2 one (cortex-a76), and every release supports ARMv8.0 CPUs,
    so binlens says it runs on none of them (LNK008; before: "runs on debian-10+, ..."); the default build
    (v8.0) is unaffected."""
    prog = fixtures_built["go-linux-arm64-v8.1"]
    out = subprocess.run([str(build.go_binary()), "version", "-m", str(prog)], capture_output=True, text=True)
    assert "\tbuild\tGOARM64=v8.1\n" in out.stdout, out.stdout
    old = subprocess.run(["qemu-aarch64", "-cpu", "cortex-a53", str(prog)], capture_output=True, text=True,
                         cwd=tmp_path, preexec_fn=_no_core)
    assert old.returncode == -4, old  # SIGILL
    new = subprocess.run(["qemu-aarch64", "-cpu", "cortex-a76", str(prog)], capture_output=True, text=True)
    assert new.returncode == 0 and new.stdout.startswith("hello"), new
    r = run_binlens("scan", "--format", "json", "--fail-on", "never", "--no-cache", "--target", "debian-12",
                    str(prog), str(fixtures_built["go-linux-arm64"]))
    v81, base = (a["facts"]["compat"] for a in json.loads(r.stdout)["artifacts"])
    assert [p["kind"] for p in v81["targets"]["debian-12"]["problems"]] == ["isa"] and v81["oldest"] == {}
    assert base["targets"]["debian-12"]["ok"] and "debian" in base["oldest"]
