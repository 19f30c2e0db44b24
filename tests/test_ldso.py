"""The loader model against the real dynamic loader: `ld.so --list`, and programs actually run."""

from __future__ import annotations

import functools
import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_binlens, system_elf_sample

from analyzer import load
from analyzer.facts import loader
from analyzer.facts.loader import glibc as glibc_model

LDSO = "/lib64/ld-linux-x86-64.so.2"
ROOT = str(Path(__file__).resolve().parent.parent)
pytestmark = pytest.mark.skipif(not os.path.exists(LDSO), reason="needs the x86_64 glibc loader")


def ld_list(path: str, env: dict[str, str] | None = None) -> dict[str, str] | None:
    """name -> path from `ld.so --list` (which maps the libraries and runs nothing of the program)."""
    proc = subprocess.run([LDSO, "--list", path], capture_output=True, text=True, env=env or {})
    if proc.returncode != 0:
        return None
    out = {}
    for line in proc.stdout.splitlines():
        m = re.match(r"^\s+(\S+) => (\S+) \(0x", line)
        if m:
            out[m[1]] = m[2]
    return out


@functools.cache
def host_options() -> dict[str, str]:
    """binlens' options for this machine's CPU, as its ld.so sees it (host_cpu): tests that compare with this
    machine's loader predict for the CPU it runs on."""
    level, vendor, _ = host_cpu()
    return {"isa_level": level, "cpu_vendor": vendor}


def _sample() -> list[str]:
    picked = []
    for p in system_elf_sample(400):
        if not p.startswith("/usr/bin/"):
            continue
        try:
            elf = load.open_artifacts(p)[0].binary
        except Exception:
            continue
        if elf.e_machine == 62 and elf.interpreter == LDSO:
            picked.append(p)
    return picked[:60]


@pytest.mark.parametrize("path", _sample())
def test_resolution_matches_ld_so_list(path: str) -> None:
    expected = ld_list(path)
    if expected is None:
        pytest.skip("ld.so could not map it")
    got = loader.analyze_path(path, loader.Options(**host_options()))
    assert got["loader_errors"] == []
    mine = {lib["name"]: lib["path"] for lib in got["libraries"] if lib["name"] != os.path.basename(LDSO)}
    assert mine == expected


# ---------------------------------------------------------------- scenarios run for real

FOO_V1 = "FOO_1.0 { global: foo_one; local: *; };"
FOO_V2 = "FOO_1.0 { global: foo_one; local: *; }; FOO_2.0 { global: foo_two; } FOO_1.0;"


def _cc(args: list[str], cwd: Path) -> None:
    subprocess.run(["gcc", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """libfoo.so.1 with FOO_1.0 and FOO_2.0, an app linked against FOO_2.0, and variants of libfoo."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    d = tmp_path_factory.mktemp("scenario")
    (d / "foo.c").write_text("int foo_one(void){return 1;}\nint foo_two(void){return 2;}\nint foo_data = 3;\n")
    (d / "foo_old.c").write_text("int foo_one(void){return 1;}\n")
    (d / "foo_nosym.c").write_text("int foo_one(void){return 1;}\nint foo_three(void){return 3;}\n")
    (d / "v2.map").write_text(FOO_V2)
    (d / "v1.map").write_text(FOO_V1)
    (d / "nosym.map").write_text("FOO_1.0 { global: foo_one; local: *; }; FOO_2.0 { global: foo_three; } FOO_1.0;")
    for sub in ("good", "old", "nosym", "app", "lib", "other"):
        (d / sub).mkdir()
    _cc(
        [
            "-shared",
            "-fPIC",
            "-Wl,-soname,libfoo.so.1",
            "-Wl,--version-script=v2.map",
            "foo.c",
            "-o",
            "good/libfoo.so.1",
        ],
        d,
    )
    _cc(
        [
            "-shared",
            "-fPIC",
            "-Wl,-soname,libfoo.so.1",
            "-Wl,--version-script=v1.map",
            "foo_old.c",
            "-o",
            "old/libfoo.so.1",
        ],
        d,
    )
    _cc(["-shared", "-fPIC", "-Wl,-soname,libfoo.so.1", "-Wl,--version-script=nosym.map", "foo_nosym.c",
         "-o", "nosym/libfoo.so.1"], d)  # fmt: skip
    (d / "main.c").write_text(
        "int foo_one(void); int foo_two(void);\n"
        "int main(int c, char **v){ return c > 5 ? foo_two() : foo_one() - 1; }\n"
    )
    (d / "good" / "libfoo.so").symlink_to("libfoo.so.1")
    _cc(["main.c", "-Lgood", "-lfoo", "-Wl,-rpath,$ORIGIN/../lib", "-o", "app/app"], d)
    return d


def _run(app: Path, env: dict[str, str] | None = None) -> tuple[int, str]:
    proc = subprocess.run(["./" + app.name], cwd=app.parent, capture_output=True, text=True, env=env or {}, timeout=10)
    return proc.returncode, proc.stderr.strip()


def _predict(app: Path, **opts: object) -> list[str]:
    return loader.analyze_path(str(app), loader.Options(program="./" + app.name, **opts))["loader_errors"]  # type: ignore[arg-type]


@pytest.mark.parametrize("variant", ["good", "old", "nosym", "missing"])
def test_prediction_equals_the_real_loader(scenario: Path, variant: str) -> None:
    """Swap the library the app finds through RPATH $ORIGIN/../lib, run the app, compare the stderr."""
    lib = scenario / "lib" / "libfoo.so.1"
    if lib.exists():
        lib.unlink()
    if variant != "missing":
        shutil.copy(scenario / variant / "libfoo.so.1", lib)
    app = scenario / "app" / "app"
    code, stderr = _run(app)
    predicted = _predict(app)
    if code == 0:
        assert predicted == []
    else:
        assert predicted and predicted[0] == stderr, (variant, stderr)


def test_rpath_runpath_and_ld_library_path_precedence(scenario: Path) -> None:
    """LD_LIBRARY_PATH beats RUNPATH but not RPATH: check where the loader maps libfoo in each layout."""
    shutil.copy(scenario / "good" / "libfoo.so.1", scenario / "lib" / "libfoo.so.1")
    shutil.copy(scenario / "good" / "libfoo.so.1", scenario / "other" / "libfoo.so.1")
    d = scenario
    _cc(["main.c", "-Lgood", "-lfoo", "-Wl,--disable-new-dtags", "-Wl,-rpath,$ORIGIN/../lib", "-o", "app/app_rpath"], d)
    _cc(
        ["main.c", "-Lgood", "-lfoo", "-Wl,--enable-new-dtags", "-Wl,-rpath,$ORIGIN/../lib", "-o", "app/app_runpath"], d
    )
    for app in ("app_rpath", "app_runpath"):
        path = str(d / "app" / app)
        for llp in ([], [str(d / "other")]):
            env = {"LD_LIBRARY_PATH": ":".join(llp)} if llp else {}
            expected = ld_list(path, env)
            assert expected is not None
            got = loader.analyze_path(path, loader.Options(ld_library_path=llp))
            mine = {lib["name"]: lib["path"] for lib in got["libraries"] if lib["name"] != os.path.basename(LDSO)}
            assert mine["libfoo.so.1"] == expected["libfoo.so.1"], (app, llp)


def test_bind_now_fails_at_start_up_and_names_the_version(scenario: Path) -> None:
    """With -z now, the missing foo_two@FOO_2.0 stops the program at start-up, in ld.so's words."""
    d = scenario
    _cc(["main.c", "-Lgood", "-lfoo", "-Wl,-z,now", "-Wl,-rpath,$ORIGIN/../lib", "-o", "app/app_now"], d)
    shutil.copy(d / "nosym" / "libfoo.so.1", d / "lib" / "libfoo.so.1")
    app = d / "app" / "app_now"
    code, stderr = _run(app)
    assert code != 0
    assert _predict(app) == [stderr]


def _versions_sections(lib: Path) -> set[str]:
    out = subprocess.run(["readelf", "-S", "-W", str(lib)], capture_output=True, text=True).stdout
    return set(re.findall(r"\s(\.gnu\.version(?:_[dr])?)\s", out))


@pytest.mark.parametrize("variant", ["unversioned", "bare"])
def test_a_library_without_symbol_versions(scenario: Path, tmp_path: Path, variant: str) -> None:
    """libfoo rebuilt without its version script, where the app needs FOO_1.0 and FOO_2.0 of it: glibc warns
    (`no version information available (required by ./app)`, once for each version needed) and goes on. Built
    calling the C library (so it has .gnu.version, every definition unversioned), the app runs; built calling
    nothing (no .gnu.version at all), this system's loader (2.36) stops at an assertion in check_match when it
    binds a reference to it — at start-up with -z now, at the first call without. The loader's stderr, warnings
    and error, is what binlens predicts; DEP007 says which library; DEP002 (`version not found`) does not fire.
    Before, binlens said version `FOO_1.0' not found for both, and failed a program that runs."""
    d = tmp_path
    source = "#include <unistd.h>\nint foo_one(void){return getpid() > 0;}\nint foo_two(void){return 2;}\n" \
        if variant == "unversioned" else "int foo_one(void){return 1;}\nint foo_two(void){return 2;}\n"
    (d / "foo.c").write_text(source)
    _cc(["-shared", "-fPIC", "-Wl,-soname,libfoo.so.1", "foo.c", "-o", "libfoo.so.1"], d)
    sections = _versions_sections(d / "libfoo.so.1")
    assert ".gnu.version_d" not in sections and (".gnu.version" in sections) == (variant == "unversioned")
    _cc(["main.c", "-Lgood", "-lfoo", "-Wl,-z,now", "-Wl,-rpath,$ORIGIN/../lib", "-o", "app/app_now"], scenario)
    shutil.copy(d / "libfoo.so.1", scenario / "lib" / "libfoo.so.1")
    for name in ("app", "app_now"):
        app = scenario / "app" / name
        code, stderr = _run(app)
        got = loader.analyze_path(str(app), loader.Options(program="./" + name))
        warned = len(got["loader_warnings"])  # (one for each version it needs: FOO_1.0, FOO_2.0)
        assert warned == 2 and got["loader_warnings"] == stderr.splitlines()[:warned]
        assert got["version_problems"] == [] and got["unversioned"]
        if code == 0:
            assert variant == "unversioned" and got["loader_errors"] == [] and got["undefined"] == []
        elif name == "app_now":  # (start-up: the loader's own words, its line of dl-lookup.c included)
            assert got["loader_errors"] == stderr.splitlines()[warned:], stderr
        else:  # (lazily bound: the first call of foo_one stops it; binlens says it fails at the first call)
            assert variant == "bare" and "check_match: Assertion" in stderr
            assert {(b["symbol"], b["when"]) for b in got["undefined"]} >= {("foo_one", "first call")}
        assert _dep_rules(app) >= {"DEP007"} and "DEP002" not in _dep_rules(app)


def test_an_unversioned_reference_binds_to_the_oldest_version(tmp_path: Path) -> None:
    """A program linked against a libfoo without versions (its reference to foo unversioned), given a libfoo
    whose only foo is the non-default `foo@VER_1` (VER_1 its first version node): glibc's check_match takes a
    definition at the first version node (index 2) for an unversioned reference, default or not, and the program
    runs; with foo at a later node only as non-default (`foo@VER_2`), nothing binds. binlens says what the
    loader does, both times. Before, it took only default definitions, and failed the first program."""
    d = tmp_path
    (d / "lib").mkdir()
    (d / "old.c").write_text("int foo(void){return 1;}\n")
    (d / "m.c").write_text("int foo(void);\nint main(void){ return foo() - 1; }\n")
    _cc(["-shared", "-fPIC", "-Wl,-soname,libfoo.so", "old.c", "-o", "libfoo.so"], d)
    _cc(["m.c", "-L.", "-lfoo", "-Wl,-z,now", "-Wl,-rpath,$ORIGIN/lib", "-o", "app"], d)
    outcomes = {}
    for node, script in (("VER_1", "VER_1 { global: foo; local: *; };"),
                         ("VER_2", "VER_1 { global: bar; local: *; }; VER_2 { global: foo; } VER_1;")):
        (d / "new.c").write_text(f'int foo_v(void){{return 1;}}\nint bar(void){{return 2;}}\n'
                                 f'__asm__(".symver foo_v,foo@{node}");\n')
        (d / "v.map").write_text(script)
        _cc(["-shared", "-fPIC", "-Wl,-soname,libfoo.so", "-Wl,--version-script=v.map", "new.c", "-o",
             "lib/libfoo.so"], d)
        syms = subprocess.run(["readelf", "-W", "--dyn-syms", str(d / "lib" / "libfoo.so")], capture_output=True,
                              text=True).stdout
        assert re.search(rf"\sfoo@{node}$", syms, re.M), syms  # (non-default: one @)
        code, stderr = _run(d / "app")
        got = loader.analyze_path(str(d / "app"), loader.Options(program="./app"))
        assert got["loader_errors"] == ([stderr] if code else []), (node, stderr, got["loader_errors"])
        outcomes[node] = code == 0
    assert outcomes == {"VER_1": True, "VER_2": False}


def test_copied_data_that_grew_is_the_loaders_warning(tmp_path: Path) -> None:
    """A non-PIE program copies a library's array at start-up (R_X86_64_COPY, 16 bytes at link time): given a
    library whose array grew to 32 bytes, glibc warns `./app: Symbol `foo_data' has different size in shared
    object, consider re-linking` and runs it; given one whose array shrank, it says nothing. binlens predicts
    the loader's stderr both times (DEP008 for the first), and `explain` of the warning gives both sizes.
    Before, it predicted nothing."""
    from conftest import run_binlens

    d = tmp_path
    (d / "lib").mkdir()
    (d / "m.c").write_text("extern int foo_data[];\nint main(void){ return foo_data[0] - 1; }\n")
    for name, n in (("libd.so", 4), ("grown.so", 8), ("shrunk.so", 2)):
        (d / f"{name}.c").write_text(f"int foo_data[{n}] = {{1}};\n")
        _cc(["-shared", "-fPIC", "-Wl,-soname,libd.so", f"{name}.c", "-o", name], d)
    _cc(["-no-pie", "-fno-pic", "m.c", "-L.", "-ld", "-Wl,-rpath,$ORIGIN/lib", "-o", "app"], d)
    relocs = subprocess.run(["readelf", "-rW", str(d / "app")], capture_output=True, text=True).stdout
    assert re.search(r"R_X86_64_COPY\s.*foo_data", relocs), relocs
    for lib, warns in (("grown.so", True), ("shrunk.so", False)):
        shutil.copy(d / lib, d / "lib" / "libd.so")
        code, stderr = _run(d / "app")
        got = loader.analyze_path(str(d / "app"), loader.Options(program="./app"))
        assert code == 0 and got["loader_errors"] == [] and got["loader_warnings"] == stderr.splitlines()
        assert bool(stderr) == warns and bool(got["copy_sizes"]) == warns
        assert ("DEP008" in _dep_rules(d / "app")) == warns
    shutil.copy(d / "grown.so", d / "lib" / "libd.so")
    _, stderr = _run(d / "app")
    proc = run_binlens("explain", "--binary", str(d / "app"), stderr)
    assert proc.returncode == 0 and "16 bytes in the program, 32 in" in proc.stdout, proc.stdout


def test_preloaded_libraries(scenario: Path, tmp_path: Path) -> None:
    """LD_PRELOAD (`deps --preload`): a library that defines the foo_two@FOO_2.0 the scenario's libfoo lacks
    (the nosym build) lets the app bound at start-up run, as its definition comes first in the search; a preload
    that is nowhere, by name or by path, is glibc's `ERROR: ld.so: object ... cannot be preloaded ...: ignored.`
    and the program goes on (or stops at its own error). binlens predicts this system's loader's stderr and
    exit, line for line. Before, there was no --preload."""
    d = tmp_path
    (d / "two.c").write_text("int foo_two(void){return 2;}\n")
    (d / "two.map").write_text("FOO_2.0 { global: foo_two; local: *; };")
    _cc(["-shared", "-fPIC", "-Wl,--version-script=two.map", "two.c", "-o", "libtwo.so"], d)
    _cc(["main.c", "-Lgood", "-lfoo", "-Wl,-z,now", "-Wl,-rpath,$ORIGIN/../lib", "-o", "app/app_now"], scenario)
    shutil.copy(scenario / "nosym" / "libfoo.so.1", scenario / "lib" / "libfoo.so.1")
    app = scenario / "app" / "app_now"
    cases = {str(d / "libtwo.so"): True, "libnowhere.so": False, f"{d}/nowhere/libtwo.so": False,
             f"libnowhere.so {d}/libtwo.so": True}  # fmt: skip
    for preload, runs in cases.items():
        proc = subprocess.run(["./app_now"], cwd=app.parent, capture_output=True, text=True, timeout=10,
                              env={"LD_PRELOAD": preload})  # fmt: skip
        got = loader.analyze_path(str(app), loader.Options(program="./app_now", preload=[preload]))
        assert (proc.returncode == 0) == runs == (got["loader_errors"] == []), (preload, proc.stderr)
        assert got["loader_warnings"] + got["loader_errors"][:1] == proc.stderr.splitlines(), (preload, got)
        if runs:
            libs = {lib["path"]: lib["found_by"] for lib in got["libraries"]}
            assert libs[str(d / "libtwo.so")].startswith("LD_PRELOAD")


def test_etc_ld_so_preload_of_a_root(fixtures_built: dict[str, Path], binaries_built: dict[str, Path],
                                     tmp_path: Path) -> None:  # fmt: skip
    """A root's /etc/ld.so.preload (glibc loads what it lists into every program; a name it cannot load is
    its warning, and the program runs): a copy of Debian 12's C library tree with a glibc 2.17 program in it
    and /etc/ld.so.preload naming a library that is there, one that is not, and a comment. The program run
    chrooted there (the root's own loader reads the root's file) prints what `deps --sysroot ROOT` predicts."""
    from test_distros import release_root

    root = tmp_path / "root"
    shutil.copytree(release_root(fixtures_built, "debian-12", "amd64"), root, symlinks=True)
    shutil.copy(binaries_built["c-x86_64-gnu.2.17"], root / "app")
    (d := tmp_path / "src").mkdir()
    (d / "p.c").write_text("int preloaded_marker(void){return 7;}\n")
    _cc(["-shared", "-fPIC", "p.c", "-o", str(root / "lib" / "libpre.so")], d)
    (root / "etc").mkdir(exist_ok=True)
    (root / "etc" / "ld.so.preload").write_text("# preloaded everywhere\n/lib/libpre.so:/lib/libgone.so\n")
    ran = subprocess.run(["chroot", str(root), "/app"], capture_output=True, text=True, timeout=30)
    got = loader.analyze_path(str(root / "app"), loader.Options(sysroot=str(root), program="/app"))
    assert got["loader_warnings"] == ran.stderr.splitlines() and got["loader_errors"] == [], (ran.stderr, got)
    assert "/etc/ld.so.preload" in ran.stderr and "/lib/libgone.so" in ran.stderr
    assert any(lib["path"] == "/lib/libpre.so" and lib["found_by"].startswith("/etc/ld.so.preload")
               for lib in got["libraries"])  # fmt: skip


def test_a_hostile_ld_so_preload_is_read_as_the_loader_reads_it(binaries_built: dict[str, Path],
                                                                  tmp_path: Path) -> None:  # fmt: skip
    """/etc/ld.so.preload of a root holding garbage: a NUL ends it (the loader reads a C string), names past the
    objects limit are not searched for, bytes that are not UTF-8 are kept as names; `deps --sysroot` answers in
    one piece (exit 0 or 1, no traceback), each name it read a warning."""
    import json

    from conftest import run_binlens

    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "lib64").mkdir()
    shutil.copy(binaries_built["c-x86_64-gnu.2.17"], root / "app")
    shutil.copy(LDSO, root / "lib64")  # (its interpreter: without one no loader runs, and none warns)
    names = " ".join(f"/lib/x{i}.so" for i in range(5000))
    (root / "etc" / "ld.so.preload").write_bytes(b"/lib/\xff\xfe.so # c\n" + names.encode() + b"\0/lib/after.so")
    r = run_binlens("deps", "--sysroot", str(root), str(root / "app"), "--format", "json")
    assert r.returncode in (0, 1) and "Traceback" not in r.stderr, r.stderr
    warned = json.loads(r.stdout)["artifacts"][0]["facts"]["deps"]["loader_warnings"]
    preload = [w for w in warned if "/etc/ld.so.preload" in w]
    assert preload and len(preload) < 5000 and not any("after.so" in w for w in warned)


def test_transitive_dependency_through_the_parents_rpath(scenario: Path, tmp_path: Path) -> None:
    """libbar needs libfoo, which only the program's DT_RPATH (inherited, not RUNPATH) can find."""
    d = tmp_path
    for sub in ("bin", "libs", "deep"):
        (d / sub).mkdir()
    shutil.copy(scenario / "good" / "libfoo.so.1", d / "deep" / "libfoo.so.1")
    (d / "deep" / "libfoo.so").symlink_to("libfoo.so.1")
    (d / "bar.c").write_text("int foo_one(void);\nint bar(void){ return foo_one(); }\n")
    _cc(["-shared", "-fPIC", "-Wl,-soname,libbar.so", "bar.c", "-Ldeep", "-lfoo", "-o", "libs/libbar.so"], d)
    (d / "m.c").write_text("int bar(void);\nint main(void){ return bar() - 1; }\n")
    for dtags, name in (("--disable-new-dtags", "via_rpath"), ("--enable-new-dtags", "via_runpath")):
        _cc(["m.c", "-Llibs", "-lbar", "-Wl,-rpath-link,deep", f"-Wl,{dtags}",
             "-Wl,-rpath,$ORIGIN/../libs:$ORIGIN/../deep", "-o", f"bin/{name}"], d)  # fmt: skip
        app = d / "bin" / name
        code, stderr = _run(app)
        predicted = _predict(app)
        if code == 0:
            assert predicted == [], name
        else:
            assert predicted == [stderr], name
    # RPATH is inherited by libbar, RUNPATH is not: only the first one loads
    assert _run(d / "bin" / "via_rpath")[0] == 0
    assert _run(d / "bin" / "via_runpath")[0] != 0


@pytest.mark.parametrize("content", [b"not an ELF file at all\n", b"\x7fELF\x02\x01\x01"])
def test_a_library_that_is_not_elf(scenario: Path, content: bytes) -> None:
    lib = scenario / "lib" / "libfoo.so.1"
    lib.unlink(missing_ok=True)
    lib.write_bytes(content)
    app = scenario / "app" / "app"
    code, stderr = _run(app)
    assert code != 0
    assert _predict(app) == [stderr]


def test_bad_sysroot_and_symlink_loops(scenario: Path, tmp_path: Path) -> None:
    from analyzer.errors import AnalyzerError

    with pytest.raises(AnalyzerError, match="sysroot does not exist"):
        loader.analyze_path(str(scenario / "app" / "app"), loader.Options(sysroot=str(tmp_path / "nowhere")))
    lib = scenario / "lib" / "libfoo.so.1"
    lib.unlink(missing_ok=True)
    (scenario / "lib" / "loop").unlink(missing_ok=True)
    (scenario / "lib" / "loop").symlink_to("libfoo.so.1")
    lib.symlink_to("loop")
    app = scenario / "app" / "app"
    code, stderr = _run(app)
    predicted = _predict(app)
    assert code != 0 and predicted  # the real loader gives ELOOP its own words; binlens reports it missing
    lib.unlink()


def test_explain_reads_the_real_loaders_words(scenario: Path) -> None:
    from conftest import run_binlens

    lib = scenario / "lib" / "libfoo.so.1"
    for variant, expect in (("old", "version node FOO_2.0"), ("missing", "could not find libfoo.so.1")):
        lib.unlink(missing_ok=True)
        if variant != "missing":
            shutil.copy(scenario / variant / "libfoo.so.1", lib)
        app = scenario / "app" / "app"
        _, stderr = _run(app)
        proc = run_binlens("explain", stderr, "--binary", str(app))
        assert proc.returncode == 0, proc.stderr
        assert expect in proc.stdout and "Fixes:" in proc.stdout
        if variant == "missing":  # where the loader looked: the RPATH directory, as ld.so spells it
            assert "app/../lib/libfoo.so.1" in proc.stdout
    glibc = run_binlens(
        "explain", "./app: /lib/x86_64-linux-gnu/libc.so.6: version `GLIBC_2.34' not found (required by ./app)"
    )
    assert "debian-12" in glibc.stdout and "rhel-8," not in glibc.stdout
    assert run_binlens("explain", "segmentation fault").returncode == 2


def test_deps_json_lists_loader_errors_first_first(scenario: Path) -> None:
    import json

    from conftest import run_binlens

    lib = scenario / "lib" / "libfoo.so.1"
    lib.unlink(missing_ok=True)
    shutil.copy(scenario / "old" / "libfoo.so.1", lib)
    app = scenario / "app" / "app"
    _, stderr = _run(app)
    proc = run_binlens("deps", "--format", "json", "--program-name", "./app", str(app))
    assert proc.returncode == 1
    deps = json.loads(proc.stdout)["artifacts"][0]["facts"]["deps"]
    assert deps["loader_errors"][0] == stderr
    text = run_binlens("deps", "--program-name", "./app", str(app)).stdout
    assert "libfoo.so.1 => " in text and "RUNPATH of ./app" in text and stderr in text  # Debian links new dtags


def _dep_rules(app: Path, *args: str) -> set[str]:
    import json

    from conftest import run_binlens

    proc = run_binlens("deps", "--format", "json", *args, str(app))
    assert proc.returncode in (0, 1), proc.stderr
    return {f["rule"] for f in json.loads(proc.stdout)["artifacts"][0]["findings"] if f["rule"].startswith("DEP")}


def test_dep_rules_fire_and_do_not(scenario: Path, tmp_path: Path) -> None:
    lib = scenario / "lib" / "libfoo.so.1"
    app = scenario / "app" / "app"

    def use(variant: str | None) -> None:
        lib.unlink(missing_ok=True)
        if variant:
            shutil.copy(scenario / variant / "libfoo.so.1", lib)

    def ldd_r() -> set[str]:
        """The DEP rules `ldd -r` (the real loader, tracing) says apply: every problem it lists."""
        out = subprocess.run(["ldd", "-r", str(app)], capture_output=True, text=True, cwd=app.parent)
        text = out.stdout + out.stderr
        rules = {"DEP001"} if "=> not found" in text else set()
        rules |= {"DEP002"} if "version `" in text else set()
        return rules | ({"DEP003"} if "undefined symbol" in text else set())

    seen: set[str] = set()
    for variant in ("good", None, "old", "nosym"):
        use(variant)
        expected = ldd_r()  # what the real loader reports, every problem at once
        assert _dep_rules(app) == expected, variant
        seen |= expected
    assert seen == {"DEP001", "DEP002", "DEP003"}
    use("good")
    empty = tmp_path / "empty-root"
    empty.mkdir()
    assert "DEP004" in _dep_rules(app, "--sysroot", str(empty))
    # only LD_LIBRARY_PATH finds it
    use(None)
    assert _dep_rules(app, "--ld-library-path", str(scenario / "good")) == {"DEP005"}
    # a RUNPATH into the build machine
    _cc(
        ["main.c", "-Lgood", "-lfoo", "-Wl,-rpath,/nonexistent/build/lib:$ORIGIN/../lib", "-o", "app/app_dead"],
        scenario,
    )
    use("good")
    assert _dep_rules(scenario / "app" / "app_dead") == {"DEP006"}


# Debian's cross libc packages: real foreign sysroots (installed by .ci/run and the README's command)
CROSS = {
    "c-aarch64-gnu.2.17": "/usr/aarch64-linux-gnu",
    "c-arm-gnueabihf.2.28": "/usr/arm-linux-gnueabihf",
    "c-riscv64-gnu.2.28": "/usr/riscv64-linux-gnu",
    "c-ppc64le-gnu.2.34": "/usr/powerpc64le-linux-gnu",
    "c-s390x-gnu.2.28": "/usr/s390x-linux-gnu",
}
LDDTREE = shutil.which("lddtree")


def _lddtree(path: str, root: str) -> dict[str, str]:
    """name -> path from pax-utils' lddtree (run with this interpreter, which has pyelftools)."""
    import sys

    out = subprocess.run([sys.executable, LDDTREE or "lddtree", "--no-auto-root", "-R", root, path],
                         capture_output=True, text=True).stdout  # fmt: skip
    found = {}
    for line in out.splitlines()[1:]:
        m = re.match(r"^\s+(\S+) => (\S+)", line)
        if m:
            found[m[1]] = m[2]
    return found


@pytest.mark.skipif(LDDTREE is None, reason="pax-utils not installed")
@pytest.mark.parametrize("name", sorted(CROSS))
def test_foreign_sysroots_match_lddtree(fixtures_built: dict[str, Path], name: str) -> None:
    root = CROSS[name]
    if not os.path.isdir(root):
        pytest.skip(f"{root} not installed")
    path = str(fixtures_built[name])
    expected = _lddtree(path, root)
    got = loader.analyze_path(path, loader.Options(sysroot=root))
    assert got["loader_errors"] == [] and got["interpreter"]["found"]
    interp = os.path.basename(got["interpreter"]["path"])
    mine = {lib["name"]: root + lib["path"] for lib in got["libraries"] if lib["name"] != interp}
    assert mine == expected
    assert got["undefined"] == []


@pytest.mark.parametrize("link", ["lazy", "now"])
def test_a_symbol_no_relocation_refers_to_is_never_bound(tmp_path: Path, link: str) -> None:
    """An undefined dynamic symbol no relocation refers to is never looked up by the loader: GCC 13's <iostream>
    makes one (`.globl std::ios_base_library_init`) only to require GLIBCXX_3.4.32. Built here the same way, with
    a library that lacks it the program still starts — with BIND_NOW too, where binlens predicted `symbol lookup
    error` — and `ldd -r` lists no undefined symbol; with the library that has it, it binds there, never used."""
    d = tmp_path
    (d / "with.c").write_text("int bar(void) { return 1; }\nint extra(void) { return 2; }\n")
    (d / "without.c").write_text("int bar(void) { return 1; }\n")
    (d / "main.c").write_text('__asm__(".globl extra");\nint bar(void);\nint main(void) { return bar() - 1; }\n')
    for name in ("with", "without"):
        (d / name).mkdir()
        _cc(["-shared", "-fPIC", "-Wl,-soname,libbar.so", f"{name}.c", "-o", f"{name}/libbar.so"], d)
    (d / "app" / "lib").mkdir(parents=True)
    _cc(["main.c", "-Lwith", "-lbar", "-Wl,-rpath,$ORIGIN/lib", *(["-Wl,-z,now"] if link == "now" else []), "-o",
         "app/app"], d)
    app = d / "app" / "app"
    dynsym = subprocess.run(["readelf", "-W", "--dyn-syms", str(app)], capture_output=True, text=True).stdout
    relocs = subprocess.run(["readelf", "-rW", str(app)], capture_output=True, text=True).stdout
    assert re.search(r"UND extra$", dynsym, re.M) and "extra" not in relocs  # the case: a symbol, no relocation
    for lib in ("without", "with"):
        shutil.copy(d / lib / "libbar.so", d / "app" / "lib" / "libbar.so")
        code, stderr = _run(app)
        traced = subprocess.run(["ldd", "-r", str(app)], capture_output=True, text=True)
        assert (code, stderr) == (0, "") and "undefined symbol" not in traced.stdout + traced.stderr
        got = loader.analyze_path(str(app), loader.Options(program="./app"))
        (extra,) = [b for b in got["bindings"] if b["symbol"] == "extra"]
        assert extra["when"] == "never"
        assert extra["binds_to"] == (None if lib == "without" else str(d / "app" / "lib" / "libbar.so"))
        assert got["loader_errors"] == [] and got["undefined"] == []


@pytest.mark.parametrize("lib", ["libmd0-mips64el.so", "libmd-mips64el.so"])
@pytest.mark.parametrize("prog", ["c-mdata-mips64el", "c-mgot-mips64el"])
def test_mips64_relocations_and_global_got_bind_at_start_up(binaries_built: dict[str, Path], tmp_path: Path,
                                                            prog: str, lib: str) -> None:  # fmt: skip
    """Two ways a lazily bound mips64el program binds a library's variable at start-up, which binlens took for a
    first-call binding, so that with a library lacking the variable it predicted a start where the loader
    (Debian's cross one, run by qemu) stops with `symbol lookup error`: a data pointer relocated against it
    (MIPS64's r_info is r_sym, then r_ssym and three type bytes, not ELF64's r_sym << 32 | r_type), and a global
    GOT entry (DT_MIPS_GOTSYM on), which no relocation names and glibc binds at start-up unless it is a function
    with a lazy-binding stub."""
    app = tmp_path / "app"
    app.write_bytes(binaries_built[prog].read_bytes())
    app.chmod(0o755)
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "libmd.so").write_bytes(binaries_built[lib].read_bytes())
    root = "/usr/mips64el-linux-gnuabi64"
    real = subprocess.run(["qemu-mips64el", "-L", root, "./app"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    got = loader.analyze_path(str(app), loader.Options(sysroot=root, program="./app"))
    assert got["loader_errors"][:1] == real.stderr.strip().splitlines()[:1], (real.returncode, real.stderr)
    assert (real.returncode == 0) == (lib == "libmd-mips64el.so")


def test_a_weak_version_need_is_a_warning(scenario: Path, tmp_path: Path) -> None:
    """A version need flagged VER_FLG_WEAK (no GNU linker writes one any more: the flag is set here in the
    program's .gnu.version_r, as older toolchains set it when every reference to the version is weak), unmet:
    the loader says `weak version ... not found` and starts the program; binlens predicts that warning and
    no error (before: nothing), and `explain` of the line says it is a warning."""
    import struct

    d = tmp_path
    (d / "lib").mkdir()
    shutil.copy(scenario / "old" / "libfoo.so.1", d / "lib" / "libfoo.so.1")  # (FOO_1.0 only)
    (d / "w.c").write_text("int foo_one(void);\nextern int foo_two(void) __attribute__((weak));\n"
                           "int main(void){ return foo_one() - 1 + (foo_two ? foo_two() - 2 : 0); }\n")
    _cc(["w.c", str(scenario / "good" / "libfoo.so.1"), "-Wl,-rpath,$ORIGIN/lib", "-o", "app"], d)
    data = bytearray((d / "app").read_bytes())
    elf = load.open_artifacts(str(d / "app"))[0].binary
    sec = elf.section_by_type(0x6FFFFFFE)  # SHT_GNU_verneed
    at, flagged = sec.sh_offset, 0
    for _ in elf.version_needs:  # (Elf64_Verneed, then its Elf64_Vernaux entries)
        _, count, _, aux, nxt = struct.unpack_from("<HHIII", data, at)
        a = at + aux
        for _ in range(count):
            name_off, a_next = struct.unpack_from("<I", data, a + 8)[0], struct.unpack_from("<I", data, a + 12)[0]
            if elf.dynstr(name_off) == "FOO_2.0":
                struct.pack_into("<H", data, a + 4, 2)  # vna_flags = VER_FLG_WEAK
                flagged += 1
            a += a_next
        at += nxt
    assert flagged == 1
    (d / "app").write_bytes(bytes(data))
    code, stderr = _run(d / "app")
    assert code == 0 and "weak version `FOO_2.0' not found" in stderr, stderr
    got = loader.analyze_path(str(d / "app"), loader.Options(program="./app"))
    assert got["loader_warnings"] == stderr.splitlines() and got["loader_errors"] == []
    told = subprocess.run([sys.executable, "-m", "analyzer", "explain", stderr], capture_output=True, text=True)
    assert told.returncode == 0 and "A warning, not an error" in told.stdout and "VER_FLG_WEAK" in told.stdout


def test_relative_paths_are_opened_from_the_working_directory(binaries_built: dict[str, Path],
                                                              tmp_path: Path) -> None:  # fmt: skip
    """What the loader opens by a relative path, it opens from the process's working directory: a DT_NEEDED
    naming its library `lib/libgreet.so.1` (usegreet-relpath), a RUNPATH entry `lib`, a preloaded `lib/...`.
    Each program starts from its own directory and not from its parent; `binlens deps` (from each directory, and
    with --cwd from elsewhere) predicts both, line for line. Before, binlens opened them from the sysroot's root
    (`/lib/libgreet.so.1`): a program that starts from its directory was said to fail."""
    d = tmp_path / "app"
    (d / "lib").mkdir(parents=True)
    shutil.copy(binaries_built["usegreet-relpath"], d / "byname")
    shutil.copy(binaries_built["libgreet-relpath.so"], d / "lib" / "libgreet.so.1")
    (d / "foo.c").write_text("int foo(void){ return 0; }\n")
    (d / "m.c").write_text("int foo(void);\nint main(void){ return foo(); }\n")
    _cc(["-shared", "-fPIC", "-Wl,-soname,libfoo.so", "foo.c", "-o", "lib/libfoo.so"], d)
    _cc(["m.c", "-Llib", "-lfoo", "-Wl,--enable-new-dtags", "-Wl,-rpath,lib", "-o", "byrunpath"], d)
    _cc(["-shared", "-fPIC", "foo.c", "-o", "lib/libpre.so"], d)
    runs = {"byname": [], "byrunpath": [], "true": ["--preload", "lib/libpre.so"]}  # (--preload: LD_PRELOAD)
    for cwd in (d, tmp_path):
        for prog, extra in runs.items():
            program = str(d / prog) if prog != "true" else "/bin/true"
            real = subprocess.run([program], cwd=cwd, capture_output=True, text=True, timeout=30,
                                  env={"LD_PRELOAD": extra[1]} if extra else {})
            r = run_binlens("deps", "--format", "json", "--cwd", str(cwd), *extra, program)
            deps = json.loads(r.stdout)["artifacts"][0]["facts"]["deps"]
            said = deps["loader_warnings"] + deps["loader_errors"]
            assert said == real.stderr.splitlines(), (prog, cwd, said, real.stderr)
            clean = real.returncode == 0 and real.stderr == ""  # (a preload not found: a warning, and it runs)
            assert clean == (cwd == d) == (said == []), (prog, cwd, real.returncode)
        # (without --cwd: the directory deps runs in, as the program would be started there)
        here = subprocess.run([sys.executable, "-m", "analyzer", "deps", "--format", "json", str(d / "byname")],
                              cwd=cwd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ROOT})
        assert (json.loads(here.stdout)["artifacts"][0]["facts"]["deps"]["loader_errors"] == []) == (cwd == d)


def test_a_missing_interpreter_is_the_only_error(tmp_path: Path) -> None:
    """A program whose PT_INTERP names no file (and which also needs a library that is gone): the kernel's exec
    fails (ENOENT) before any loader runs, so the one error binlens predicts is the interpreter's, not also the
    missing library's line a loader would have printed (before: both); the library stays in `missing`."""
    d = tmp_path
    (d / "foo.c").write_text("int foo(void){ return 0; }\n")
    (d / "m.c").write_text("int foo(void);\nint main(void){ return foo(); }\n")
    _cc(["-shared", "-fPIC", "-Wl,-soname,libfoo.so", "foo.c", "-o", "libfoo.so"], d)
    _cc(["m.c", "-L.", "-lfoo", "-Wl,--dynamic-linker=/nonexistent/ld-linux-x86-64.so.2", "-o", "app"], d)
    (d / "libfoo.so").unlink()
    with pytest.raises(FileNotFoundError):  # (the kernel: the interpreter is not there)
        subprocess.run([str(d / "app")], capture_output=True, timeout=30)
    got = loader.analyze_path(str(d / "app"), loader.Options(program="./app"))
    assert got["loader_errors"] == ["./app: /nonexistent/ld-linux-x86-64.so.2: No such file or directory (the "
                                    "interpreter)"], got["loader_errors"]
    assert [m["name"] for m in got["missing"]] == ["libfoo.so"] and got["interpreter"]["found"] is False


def test_ld_bind_now_binds_every_function_at_start_up(tmp_path: Path) -> None:
    """A program calling a function its library no longer defines, on a path its run does not take: this
    system's loader starts it (the call would fail), and with LD_BIND_NOW=1 stops it before main; `deps
    --bind-now` predicts that line, and without it nothing."""
    d = tmp_path
    (d / "lib.c").write_text("int later(void){ return 2; }\n")
    (d / "main.c").write_text("int later(void);\nint main(int argc, char **argv){ return argc > 5 ? later() : 0; }\n")
    _cc(["-shared", "-fPIC", "-Wl,-soname,liblater.so", "lib.c", "-o", "liblater.so"], d)
    _cc(["main.c", "-L.", "-llater", "-Wl,-rpath,$ORIGIN", "-Wl,-z,lazy", "-o", "app"], d)
    (d / "lib.c").write_text("int other(void){ return 2; }\n")
    _cc(["-shared", "-fPIC", "-Wl,-soname,liblater.so", "lib.c", "-o", "liblater.so"], d)
    for now in (False, True):
        code, stderr = _run(d / "app", {"LD_BIND_NOW": "1"} if now else None)
        assert (code == 127) == now, stderr
        assert _predict(d / "app", bind_now=now) == stderr.splitlines()
        r = subprocess.run([sys.executable, "-m", "analyzer", "deps", *(["--bind-now"] if now else []),
                            "--program-name", "./app", str(d / "app")], capture_output=True, text=True)
        assert r.returncode == (1 if now else 0) and (stderr in r.stdout if now else True), r.stdout + r.stderr


MUSL_LDSO = "/lib/ld-musl-x86_64.so.1"


@pytest.mark.skipif(not os.path.exists(MUSL_LDSO), reason="Debian's musl package not installed")
@pytest.mark.parametrize("variant", ["present", "missing", "no-symbol"])
def test_musl_prediction_equals_the_real_musl_loader(fixtures_built: dict[str, Path], tmp_path: Path,
                                                     variant: str) -> None:  # fmt: skip
    app = tmp_path / "mm"
    shutil.copy(fixtures_built["musl-app"], app)
    (tmp_path / "lib").mkdir()
    if variant == "present":
        shutil.copy(fixtures_built["libmf-musl.so"], tmp_path / "lib" / "libmf.so")
    elif variant == "no-symbol":  # a libmf.so that defines nothing the program needs
        shutil.copy(fixtures_built["libgreet-runpath.so.1"], tmp_path / "lib" / "libmf.so")
    code, stderr = _run(app)
    # musl's loader says every library it cannot load and every relocation it cannot do, then stops: all of it
    # (missing: the library, then the program's import of what it would have defined)
    assert _predict(app) == stderr.splitlines(), stderr
    assert (code == 0) == (variant == "present")


@pytest.mark.skipif(not os.path.exists(MUSL_LDSO), reason="Debian's musl package not installed")
def test_musl_says_every_failure_in_its_order(tmp_path: Path) -> None:
    """musl's loader does not stop at the first failure: it says every DT_NEEDED it cannot load, for each
    object that needs it (libgone.so, needed by two), then relocates the libraries in load order and the program
    last, each relocation table in turn (DT_JMPREL, DT_REL, DT_RELA), and says every relocation whose symbol
    nothing defines — one line per relocation, a symbol twice when two relocations name it — and exits 127.
    binlens predicts its stderr line for line (before: the first line only), and `explain` of that stderr says
    each relocation line follows from the library not loaded (and not the library lines)."""
    d = tmp_path
    zig = [sys.executable, "-m", "ziglang", "cc", "-target", "x86_64-linux-musl", "-O1"]
    from build import CACHE

    env = {**os.environ, "ZIG_GLOBAL_CACHE_DIR": str(CACHE / "zig-cache")}

    def cc(*args: str) -> None:
        subprocess.run([*zig, *args], cwd=d, check=True, capture_output=True, env=env)

    (d / "gone.c").write_text("int gone_a, gone_b;\nint gone_fn(void){ return 0; }\n")
    (d / "liba.c").write_text("extern int gone_a; int gone_fn(void);\nint *a_ref = &gone_a;\n"
                              "int a(void){ return gone_fn(); }\n")
    (d / "libb.c").write_text("extern int gone_b;\nint *b_ref = &gone_b, *b_again = &gone_b;\n")
    (d / "app.c").write_text("extern int gone_a; int gone_fn(void); int a(void);\nint *volatile r = &gone_a;\n"
                             "int main(void){ return a() + gone_fn() + (r == 0); }\n")
    cc("-shared", "-fPIC", "-Wl,-soname,libgone.so", "gone.c", "-o", "libgone.so")
    for lib in ("liba", "libb"):
        cc("-shared", "-fPIC", f"-Wl,-soname,{lib}.so", f"{lib}.c", "./libgone.so", "-o", f"{lib}.so",
           "-Wl,-rpath,$ORIGIN")
    cc("-dynamic", "app.c", "-Wl,--no-as-needed", "./liba.so", "./libb.so", "./libgone.so", "-Wl,-rpath,$ORIGIN",
       "-o", "app")
    (d / "libgone.so").unlink()  # (every import of it now fails, and it is needed by the program and both)
    code, stderr = _run(d / "app")
    lines = stderr.splitlines()
    assert code == 127 and len([x for x in lines if x.startswith("Error loading shared library libgone.so")]) == 3
    assert any(lines.count(x) == 2 and "gone_b" in x for x in lines), stderr  # (two relocations of gone_b)
    assert _predict(d / "app") == lines, stderr
    # explain, given the whole stderr: each relocation line is said to follow from the library not loaded
    told = subprocess.run([sys.executable, "-m", "analyzer", "explain", "-"], input=stderr, capture_output=True,
                          text=True)
    blocks = told.stdout.split("\n\n")
    assert told.returncode == 0 and len(blocks) == len(lines), told.stdout + told.stderr
    for line, block in zip(lines, blocks, strict=True):
        follows = "Probably a consequence of the missing libgone.so ([1])" in block
        assert follows == line.startswith("Error relocating"), block


@pytest.mark.skipif(not os.path.exists(MUSL_LDSO), reason="Debian's musl package not installed")
def test_musl_searches_as_its_loader_searches(tmp_path: Path) -> None:
    """musl's loader searches LD_LIBRARY_PATH first, then the search path of the object needing the library and
    of every object that brought that one in (a library without a path of its own finds its dependency through
    the program's RUNPATH, which glibc does not inherit), then its own path; and the first file of the name it
    opens is the library: one that is no ELF object stops it (`Exec format error`), a good copy later in the path
    unused. binlens searched in glibc's order and went on past the bad file: both programs were said to be
    otherwise than they are. Debian's musl loader runs each; binlens predicts its stderr, line for line."""
    import sys

    from build import CACHE

    d = tmp_path
    (d / "lib").mkdir()
    (d / "bad").mkdir()
    zig = [sys.executable, "-m", "ziglang", "cc", "-target", "x86_64-linux-musl", "-O1"]
    env = {**os.environ, "ZIG_GLOBAL_CACHE_DIR": str(CACHE / "zig-cache")}
    (d / "b.c").write_text("int b(void){ return 0; }\n")
    (d / "a.c").write_text("int b(void);\nint a(void){ return b(); }\n")
    (d / "m.c").write_text("int a(void);\nint main(void){ return a(); }\n")
    for args in (["-shared", "-fPIC", "-Wl,-soname,libb.so", "b.c", "-o", "lib/libb.so"],
                 ["-shared", "-fPIC", "-Wl,-soname,liba.so", "a.c", "lib/libb.so", "-o", "lib/liba.so"],
                 ["-dynamic", "m.c", "lib/liba.so", "-Wl,-rpath,$ORIGIN/lib", "-o", "app"]):
        subprocess.run([*zig, *args], cwd=d, check=True, capture_output=True, env=env)
    (d / "bad" / "liba.so").write_text("not a library\n")
    for bad in (False, True):  # (inherited RUNPATH; then a file no ELF object first on LD_LIBRARY_PATH)
        run_env = {"LD_LIBRARY_PATH": str(d / "bad")} if bad else {}
        code, stderr = _run(d / "app", run_env)
        assert (code == 0) == (not bad), stderr
        assert _predict(d / "app", ld_library_path=[str(d / "bad")] if bad else []) == stderr.splitlines(), stderr


@pytest.mark.skipif(not os.path.exists(MUSL_LDSO), reason="Debian's musl package not installed")
def test_musl_opens_a_needed_path_as_it_is_written(fixtures_built: dict[str, Path], tmp_path: Path) -> None:
    """A musl program needing $ORIGIN/lib/libmf.so (its library's soname): musl's loader expands no token in a
    DT_NEEDED path (glibc's does: above) and fails to open it as written, its library beside it or not; binlens
    says the same first line as the real loader running the program."""
    app = tmp_path / "mm"
    shutil.copy(fixtures_built["musl-app-origin"], app)
    (tmp_path / "lib").mkdir()
    shutil.copy(fixtures_built["libmf-musl-origin.so"], tmp_path / "lib" / "libmf.so")
    code, stderr = _run(app)
    assert code != 0 and "$ORIGIN/lib/libmf.so" in stderr, stderr
    assert _predict(app)[:1] == stderr.splitlines()[:1]


def test_dependency_cycle_matches_ld_so_list(tmp_path: Path) -> None:
    d = tmp_path
    (d / "a.c").write_text("int b(void); int a(void){ return b; }\n".replace("return b;", "return 1;"))
    (d / "b.c").write_text("int a(void); int b(void){ return a(); }\n")
    _cc(["-shared", "-fPIC", "-Wl,-soname,liba.so", "a.c", "-o", "liba.so"], d)
    _cc(["-shared", "-fPIC", "-Wl,-soname,libb.so", "b.c", "-L.", "-la", "-o", "libb.so"], d)
    _cc(["-shared", "-fPIC", "-Wl,-soname,liba.so", "a.c", "-L.", "-lb", "-o", "liba.so"], d)  # now a needs b too
    (d / "m.c").write_text("int a(void); int main(void){ return a() - 1; }\n")
    _cc(["m.c", "-L.", "-la", "-Wl,-rpath,$ORIGIN", "-o", "app"], d)
    expected = ld_list(str(d / "app"))
    assert expected is not None
    got = loader.analyze_path(str(d / "app"), loader.Options(**host_options()))
    mine = {lib["name"]: lib["path"] for lib in got["libraries"] if lib["name"] != os.path.basename(LDSO)}
    assert mine == expected and got["loader_errors"] == []


def test_ld_so_conf_without_a_cache_resolves_as_ldconfigs_cache(scenario: Path, tmp_path: Path) -> None:
    """A sysroot with only /etc/ld.so.conf: binlens searches its directories; binutils' sibling, ldconfig,
    builds the real cache from the same file, and both must find the same library."""
    if shutil.which("ldconfig") is None and not os.path.exists("/sbin/ldconfig"):
        pytest.skip("ldconfig not installed")
    root = tmp_path / "root"
    (root / "opt" / "foo").mkdir(parents=True)
    (root / "etc" / "conf.d").mkdir(parents=True)
    shutil.copy(scenario / "good" / "libfoo.so.1", root / "opt" / "foo" / "libfoo.so.1")
    (root / "etc" / "ld.so.conf").write_text("include /etc/conf.d/*.conf\n")
    (root / "etc" / "conf.d" / "foo.conf").write_text("# foo\n/opt/foo\n")
    app = scenario / "app" / "app_conf"
    _cc(["main.c", "-Lgood", "-lfoo", "-o", str(app)], scenario)
    before = loader.analyze_path(str(app), loader.Options(sysroot=str(root)))
    libfoo = next(lib for lib in before["libraries"] if lib["name"] == "libfoo.so.1")
    assert (libfoo["path"], libfoo["found_by"]) == ("/opt/foo/libfoo.so.1", "ld.so.conf directory")
    subprocess.run([shutil.which("ldconfig") or "/sbin/ldconfig", "-r", str(root)], check=True, capture_output=True)
    after = loader.analyze_path(str(app), loader.Options(sysroot=str(root)))
    libfoo = next(lib for lib in after["libraries"] if lib["name"] == "libfoo.so.1")
    assert (libfoo["path"], libfoo["found_by"]) == ("/opt/foo/libfoo.so.1", "ld.so.cache")


def test_nodeflib_skips_the_cache_and_default_directories(scenario: Path) -> None:
    """-z nodefaultlib: libc.so.6 is then found nowhere but through the search paths, as ld.so --list says."""
    d = scenario
    _cc(["main.c", "-Lgood", "-lfoo", "-Wl,-z,nodefaultlib", "-Wl,-rpath,$ORIGIN/../lib", "-o", "app/app_nodef"], d)
    shutil.copy(d / "good" / "libfoo.so.1", d / "lib" / "libfoo.so.1")
    path = str(d / "app" / "app_nodef")
    proc = subprocess.run([LDSO, "--list", path], capture_output=True, text=True)
    got = loader.analyze_path(path, loader.Options(**host_options()))
    if proc.returncode == 0:
        assert got["loader_errors"] == []
    else:
        assert got["loader_errors"] and got["missing"][0]["name"] == "libc.so.6"
        assert "libc.so.6" in proc.stdout + proc.stderr


def host_cpu(ldso: str = LDSO, env: dict[str, str] | None = None) -> tuple[str, str, list[str]]:
    """The CPU this ld.so sees (under env's GLIBC_TUNABLES), as binlens' options name it — the highest x86-64
    glibc-hwcaps level it supports, and "intel" when it calls the platform haswell — and the legacy hwcap
    subdirectory names it searches, as `ld.so --help` lists them (the platform first, then tls, then hwcaps)."""
    text = subprocess.run([ldso, "--help"], capture_output=True, text=True, env=env or {}, check=True).stdout
    levels = re.findall(r"^\s+(x86-64-v\d) \(supported", text, re.M)
    legacy = text.split("Legacy HWCAP subdirectories", 1)[-1]
    names = re.findall(r"^\s+(\S+) \((?:AT_PLATFORM; )?supported", legacy, re.M)
    platform = re.search(r"^\s+(\S+) \(AT_PLATFORM", legacy, re.M)
    level = max(levels) if levels else "x86-64-baseline"
    return level, "intel" if platform and platform[1] == "haswell" else "other", names


def test_lib_and_platform_tokens_and_wrong_class_candidates(fixtures_built: dict[str, Path], tmp_path: Path) -> None:
    """$LIB and $PLATFORM expand as this ld.so expands them (for this machine's CPU: haswell on an Intel CPU of
    x86-64-v3, else x86_64); a 32-bit candidate first in the path is skipped."""
    level, vendor, _ = host_cpu()
    d = tmp_path
    for sub in ("lib64", "lib/x86_64-linux-gnu", "x86_64", "haswell", "first", "second"):
        (d / sub).mkdir(parents=True)
    (d / "f.c").write_text("int foo_one(void){return 1;}\n")
    _cc(["-shared", "-fPIC", "-Wl,-soname,libfoo.so.1", "f.c", "-o", "lib64/libfoo.so.1"], d)
    for sub in ("lib/x86_64-linux-gnu", "x86_64", "haswell", "second"):
        shutil.copy(d / "lib64" / "libfoo.so.1", d / sub / "libfoo.so.1")
    (d / "m.c").write_text("int foo_one(void);\nint main(void){ return foo_one() - 1; }\n")
    apps = {"app_lib": "$ORIGIN/$LIB", "app_plat": "$ORIGIN/$PLATFORM", "app_class": "$ORIGIN/first:$ORIGIN/second"}
    for app, rpath in apps.items():
        _cc(["m.c", "lib64/libfoo.so.1", f"-Wl,-rpath,{rpath}", "-o", app], d)
    # a 32-bit libfoo.so.1 where the loader looks first (a zig-built fixture: no multilib gcc needed)
    shutil.copy(fixtures_built["libfoo-i386.so.1"], d / "first" / "libfoo.so.1")
    for app in apps:
        path = str(d / app)
        expected = ld_list(path)
        assert expected is not None, app
        got = loader.analyze_path(path, loader.Options(isa_level=level, cpu_vendor=vendor))
        mine = {lib["name"]: lib["path"] for lib in got["libraries"] if lib["name"] != os.path.basename(LDSO)}
        assert os.path.realpath(mine["libfoo.so.1"]) == os.path.realpath(expected["libfoo.so.1"]), app
    # the command line says the same (its options name the CPU)
    from conftest import run_binlens

    proc = run_binlens("deps", str(d / "app_plat"), "--isa-level", level, "--cpu-vendor", vendor, "--format", "json")
    (entry,) = json.loads(proc.stdout)["artifacts"]
    libs = {lib["name"]: lib["path"] for lib in entry["facts"]["deps"]["libraries"]}
    assert os.path.realpath(libs["libfoo.so.1"]) == os.path.realpath(ld_list(str(d / "app_plat"))["libfoo.so.1"])


def test_host_cpu_is_what_this_machines_loader_sees(fixtures_built: dict[str, Path], tmp_path: Path) -> None:
    """`--isa-level host --cpu-vendor host` (read from /proc/cpuinfo) name the CPU this machine's ld.so says it
    has (`ld.so --help`: the glibc-hwcaps levels it supports, haswell or x86_64): deps and check-loading use it."""
    from conftest import run_binlens

    proc = run_binlens("deps", "/bin/true", "--isa-level", "host", "--cpu-vendor", "host", "--format", "json")
    cpu = json.loads(proc.stdout)["artifacts"][0]["facts"]["deps"]["cpu"]
    level, vendor, names = host_cpu()
    assert (cpu["isa_level"], cpu["vendor"], cpu["platform"]) == (level, vendor, names[0])
    # only the level from this machine, the maker given
    proc = run_binlens("deps", "/bin/true", "--isa-level", "host", "--cpu-vendor", "intel", "--format", "json")
    assert json.loads(proc.stdout)["artifacts"][0]["facts"]["deps"]["cpu"]["vendor"] == "intel"


# CPUs this machine's ld.so can be made to see (glibc.cpu.hwcaps masks features out): as it is, without AVX-512
# (x86-64-v3: still haswell on an Intel CPU), without AVX2 (x86-64-v2: the kernel's x86_64), without SSE4.2
_NO_512 = "-AVX512F,-AVX512CD,-AVX512BW,-AVX512DQ,-AVX512VL"
CPU_MASKS = ("", f"glibc.cpu.hwcaps={_NO_512}", f"glibc.cpu.hwcaps=-AVX2,{_NO_512}",
             f"glibc.cpu.hwcaps=-SSE4_2,-AVX2,{_NO_512}")
# every subdirectory some x86 CPU's glibc searches in a directory of the path: glibc-hwcaps, and the legacy ones
LEGACY_DIRS = sorted({sub for level in ("x86-64-baseline", "x86-64-v4") for vendor in ("other", "intel")
                      for machine in (62, 3)
                      for sub in glibc_model.legacy_subdirs(glibc_model.platform(machine, level, vendor),
                                                             glibc_model.legacy_hwcaps(machine, level, vendor))}
                     | {"glibc-hwcaps/x86-64-v2", "glibc-hwcaps/x86-64-v3", "glibc-hwcaps/x86-64-v4", "i586",
                        "tls/i586", "xeon_phi", "avx2"})


def _search_order(app: Path, ldso: list[str], opts: loader.Options, env: dict[str, str], libdir: Path) -> list[str]:
    """Which copy of libfoo.so.1 the real loader maps, and binlens' prediction, again and again, each time the
    mapped copy removed: the whole search order through the subdirectories, compared step by step."""
    order = []
    while True:
        proc = subprocess.run([*ldso, "--list", str(app)], capture_output=True, text=True, env=env)
        real = re.search(r"libfoo\.so\.1 => (\S+) \(0x", proc.stdout)
        got = loader.analyze_path(str(app), opts)
        mine = [lib["path"] for lib in got["libraries"] if lib["name"] == "libfoo.so.1"]
        if real is None:
            assert mine == [] and got["missing"][0]["name"] == "libfoo.so.1", order
            return order
        assert mine and os.path.realpath(mine[0]) == os.path.realpath(real[1]), (order, env)
        order.append(os.path.relpath(real[1], libdir))
        os.unlink(real[1])


def _copies(libdir: Path, lib: Path) -> None:
    for sub in LEGACY_DIRS:
        (libdir / sub).mkdir(parents=True, exist_ok=True)
        shutil.copy(lib, libdir / sub / "libfoo.so.1")
    shutil.copy(lib, libdir / "libfoo.so.1")


def test_legacy_hwcap_subdirectories_follow_the_cpu(tmp_path: Path) -> None:
    """glibc before 2.37 (this machine's 2.36) searches each directory's legacy subdirectories — tls, the platform
    (haswell on an Intel CPU of x86-64-v3, else x86_64) and the hwcap names (x86_64; avx512_1 on an Intel CPU of
    x86-64-v4), every combination — after its glibc-hwcaps ones: the whole order is the real loader's, for every
    CPU this machine can be made to look like, and the names are those `ld.so --help` lists."""
    d = tmp_path
    (d / "f.c").write_text("int foo_one(void){return 1;}\n")
    _cc(["-shared", "-fPIC", "-Wl,-soname,libfoo.so.1", "f.c", "-o", "libfoo.so.1"], d)
    (d / "m.c").write_text("int foo_one(void);\nint main(void){ return foo_one() - 1; }\n")
    _cc(["m.c", "libfoo.so.1", "-Wl,--disable-new-dtags,-rpath,$ORIGIN/lib", "-o", "app"], d)
    seen = {}
    for mask in CPU_MASKS:
        env = {"GLIBC_TUNABLES": mask} if mask else {}
        level, vendor, names = host_cpu(LDSO, env)
        if (level, vendor) in seen:
            continue
        plat = glibc_model.platform(62, level, vendor)
        assert names == [plat, "tls", *reversed(glibc_model.legacy_hwcaps(62, level, vendor))], mask
        shutil.rmtree(d / "lib", ignore_errors=True)
        _copies(d / "lib", d / "libfoo.so.1")
        seen[(level, vendor)] = _search_order(d / "app", [LDSO], loader.Options(isa_level=level, cpu_vendor=vendor),
                                              env, d / "lib")
        assert seen[(level, vendor)][-1] == "libfoo.so.1"
    # the release binlens read is the one the loader names itself, and the CPU is the one it was given
    facts = loader.analyze_path(str(d / "app"), loader.Options(isa_level=level, cpu_vendor=vendor))
    own = subprocess.run([LDSO, "--version"], capture_output=True, text=True, check=True).stdout.splitlines()[0]
    assert own.endswith(f"release version {facts['loader_release']}.")
    assert facts["cpu"] == {"isa_level": level, "vendor": vendor, "platform": glibc_model.platform(62, level, vendor)}
    assert len(seen) >= 2  # (any x86-64 CPU with SSE4.2 can be seen as two: itself, and without SSE4.2)


def test_glibc_before_2_33_searches_no_glibc_hwcaps(fixtures_built: dict[str, Path], tmp_path: Path) -> None:
    """Debian 11's loader (glibc 2.31, from its libc6 package, run here) searches the legacy subdirectories of this
    machine's CPU and no glibc-hwcaps one (they came with 2.33): binlens, given that C library as the sysroot and
    this CPU, predicts each step of its search. (The programs use no C library: ld.so --list maps them as they
    are.)"""
    root = tmp_path / "bullseye"
    subprocess.run(["dpkg-deb", "-x", str(fixtures_built["debian-11-amd64-libc6.deb"]), str(root)], check=True)
    d = tmp_path / "app"
    d.mkdir()
    (d / "f.c").write_text("int foo_one(void){return 1;}\n")
    _cc(["-shared", "-fPIC", "-nostdlib", "-Wl,-soname,libfoo.so.1", "f.c", "-o", "libfoo.so.1"], d)
    (d / "m.c").write_text("int foo_one(void);\nint main(void){ return foo_one() - 1; }\n")
    _cc(["-nostdlib", "-Wl,-e,main", "m.c", "libfoo.so.1", "-Wl,--disable-new-dtags,-rpath,$ORIGIN/lib", "-o", "app"],
        d)
    level, vendor, _ = host_cpu()
    _copies(d / "lib", d / "libfoo.so.1")
    ldso = str(root / "lib" / "x86_64-linux-gnu" / "ld-2.31.so")
    opts = loader.Options(sysroot=str(root), isa_level=level, cpu_vendor=vendor)
    order = _search_order(d / "app", [ldso], opts, {}, d / "lib")
    version = subprocess.run(["dpkg-deb", "-f", str(fixtures_built["debian-11-amd64-libc6.deb"]), "Version"],
                             capture_output=True, text=True, check=True).stdout  # 2.31-13+deb11u11
    assert version.startswith(loader.analyze_path(str(d / "app"), opts)["loader_release"] + "-")
    plat = glibc_model.platform(62, level, vendor)
    expected = glibc_model.legacy_subdirs(plat, glibc_model.legacy_hwcaps(62, level, vendor))
    assert order == [posixpath.join(sub, "libfoo.so.1") for sub in expected]  # (glibc-hwcaps: never)


@pytest.mark.skipif(os.geteuid() != 0, reason="chroot needs root")
def test_legacy_hwcap_entries_of_the_cache(fixtures_built: dict[str, Path], tmp_path: Path) -> None:
    """ld.so.cache entries of legacy subdirectories (ldconfig before 2.37 lists them with their hwcap, platform and
    tls bits): glibc 2.36 takes those of this CPU only, in the cache's order — binlens' choice is the real
    loader's (run chrooted in a tree of Debian's libc6 and a cache ldconfig made for it), at each step, for this
    CPU and for it without AVX2."""
    root = tmp_path / "root"
    subprocess.run(["dpkg-deb", "-x", str(fixtures_built["libc6.deb"]), str(root)], check=True)
    (root / "etc").mkdir(exist_ok=True)
    (root / "etc" / "ld.so.conf").write_text("")
    (tmp_path / "f.c").write_text("int foo_one(void){return 1;}\n")
    _cc(["-shared", "-fPIC", "-nostdlib", "-Wl,-soname,libfoo.so.1", "f.c", "-o", "libfoo.so.1"], tmp_path)
    (tmp_path / "m.c").write_text("int foo_one(void);\nint main(void){ return foo_one() - 1; }\n")
    _cc(["-nostdlib", "-Wl,-e,main", "m.c", "libfoo.so.1", "-o", str(root / "app")], tmp_path)
    libdir = root / "usr" / "lib" / "x86_64-linux-gnu"
    chroot = shutil.which("chroot") or "chroot"
    for mask in CPU_MASKS[::2]:
        env = {"GLIBC_TUNABLES": mask} if mask else {}
        level, vendor, _ = host_cpu(LDSO, env)
        _copies(libdir, tmp_path / "libfoo.so.1")
        opts = loader.Options(sysroot=str(root), isa_level=level, cpu_vendor=vendor)
        order = []
        while True:
            subprocess.run(["ldconfig", "-r", str(root)], check=True, capture_output=True)
            proc = subprocess.run([chroot, str(root), LDSO, "--list", "/app"], capture_output=True, text=True,
                                  env=env)
            real = re.search(r"libfoo\.so\.1 => (\S+) \(0x", proc.stdout)
            got = loader.analyze_path(str(root / "app"), opts)
            mine = [lib["path"] for lib in got["libraries"] if lib["name"] == "libfoo.so.1"]
            if real is None:
                assert mine == [], order
                break
            assert mine == [real[1]], (order, mask)
            order.append(real[1])
            os.unlink(root / real[1].lstrip("/"))
        assert any("/haswell/" in p or "/x86_64/" in p for p in order[:4]), order  # (legacy entries came first)


def _libc_tree_with(fixtures_built: dict[str, Path], tmp_path: Path, placed: dict[str, str]) -> Path:
    """A tree of Debian's libc6 (its own programs and modules removed) with, for each NAME: SUBDIRECTORY, a
    libNAME.so.1 only in that subdirectory of /usr/lib/x86_64-linux-gnu and a program /useNAME that needs it (no C
    library: ld.so --list maps it as it is)."""
    root = tmp_path / "root"
    subprocess.run(["dpkg-deb", "-x", str(fixtures_built["libc6.deb"]), str(root)], check=True)
    libdir = root / "usr" / "lib" / "x86_64-linux-gnu"
    for extra in ("usr/bin", "usr/sbin", "sbin", "usr/libexec", "usr/lib/x86_64-linux-gnu/gconv"):
        shutil.rmtree(root / extra, ignore_errors=True)  # (the C library's own programs and modules: not scanned)
    for lib, sub in placed.items():
        (tmp_path / f"{lib}.c").write_text(f"int {lib}(void){{return 1;}}\n")
        (libdir / sub).mkdir(parents=True, exist_ok=True)
        _cc(["-shared", "-fPIC", "-nostdlib", f"-Wl,-soname,lib{lib}.so.1", f"{lib}.c", "-o",
             str(libdir / sub / f"lib{lib}.so.1")], tmp_path)
        (tmp_path / f"m{lib}.c").write_text(f"int {lib}(void);\nint main(void){{ return {lib}() - 1; }}\n")
        _cc(["-nostdlib", "-Wl,-e,main", f"m{lib}.c", str(libdir / sub / f"lib{lib}.so.1"), "-o",
             str(root / f"use{lib}")], tmp_path)
    return root


@pytest.mark.skipif(os.geteuid() != 0, reason="chroot needs root")
def test_check_loading_of_a_tree_for_a_cpu(fixtures_built: dict[str, Path], tmp_path: Path) -> None:
    """`scan ROOT --check-loading --isa-level L --cpu-vendor V`: a program whose library lies only in the x86_64
    subdirectory of a default directory loads on any CPU with glibc 2.36, one whose library lies only in haswell/
    only on an Intel CPU of x86-64-v3: the verdicts for this machine's CPU are those of the real loader run
    chrooted in the tree, and for the default CPU the second program does not load."""
    from conftest import run_binlens

    root = _libc_tree_with(fixtures_built, tmp_path, {"foo": "x86_64", "bar": "haswell"})
    chroot = shutil.which("chroot") or "chroot"
    real = {f"use{lib}": subprocess.run([chroot, str(root), LDSO, "--list", f"/use{lib}"], capture_output=True,
                                        env={}).returncode == 0 for lib in ("foo", "bar")}
    level, vendor = host_options()["isa_level"], host_options()["cpu_vendor"]

    def verdicts(*options: str) -> dict[str, bool]:
        proc = run_binlens("scan", str(root), "--check-loading", "--format", "json", "--fail-on", "never", *options)
        return {Path(a["path"]).name: not a["facts"]["deps"]["missing"] for a in json.loads(proc.stdout)["artifacts"]
                if Path(a["path"]).name.startswith("use")}

    assert verdicts("--isa-level", level, "--cpu-vendor", vendor) == real and real["usefoo"]
    assert verdicts() == {"usefoo": True, "usebar": False}
    assert verdicts("--isa-level", "x86-64-v3", "--cpu-vendor", "intel") == {"usefoo": True, "usebar": True}


@pytest.mark.skipif(os.geteuid() != 0, reason="chroot needs root")
def test_syscalls_resolve_libraries_for_the_cpu(fixtures_built: dict[str, Path], tmp_path: Path) -> None:
    """`syscalls --isa-level` resolves a program's libraries for that CPU, as deps does: with the C library only in
    glibc-hwcaps/x86-64-v2 of a Debian tree, the library it models for this machine's CPU is the one the real loader
    (chrooted there) maps, and for the baseline CPU there is none."""
    from conftest import run_binlens

    root = tmp_path / "root"
    subprocess.run(["dpkg-deb", "-x", str(fixtures_built["libc6.deb"]), str(root)], check=True)
    libdir = root / "lib" / "x86_64-linux-gnu"
    if not libdir.is_dir():  # (merged /usr)
        libdir = root / "usr" / "lib" / "x86_64-linux-gnu"
    (libdir / "glibc-hwcaps" / "x86-64-v2").mkdir(parents=True)
    os.replace(libdir / "libc.so.6", libdir / "glibc-hwcaps" / "x86-64-v2" / "libc.so.6")
    shutil.copy("/bin/true", root / "true")
    chroot = shutil.which("chroot") or "chroot"
    listed = subprocess.run([chroot, str(root), LDSO, "--list", "/true"], capture_output=True, text=True, env={})
    real = re.search(r"libc\.so\.6 => (\S+) \(0x", listed.stdout)

    def modelled(*options: str) -> list[str]:
        proc = run_binlens("syscalls", str(root / "true"), "--sysroot", str(root), "--format", "json", *options)
        via = json.loads(proc.stdout)["artifacts"][0]["facts"]["syscalls"]["via_libraries"]
        return [lib for lib in via["by_library"] if lib.endswith("/libc.so.6")]

    assert real or host_options()["isa_level"] == "x86-64-baseline", listed.stdout  # (a CPU of x86-64-v2 finds it)
    assert modelled("--isa-level", "host") == ([real[1]] if real else [])
    assert modelled() == []


@pytest.mark.skipif(os.geteuid() != 0, reason="chroot needs root")
def test_a_library_only_another_cpu_finds_is_named(fixtures_built: dict[str, Path], tmp_path: Path) -> None:
    """A library that lies only in a CPU-specific subdirectory (glibc-hwcaps/x86-64-v2, haswell) is missing for
    the baseline CPU, and the report names the copy another CPU's loader takes: the very file the loader run
    chrooted on this machine maps (where this CPU takes it), in JSON and in the text view."""
    from conftest import run_binlens

    root = _libc_tree_with(fixtures_built, tmp_path, {"baz": "glibc-hwcaps/x86-64-v2", "bar": "haswell"})
    chroot = shutil.which("chroot") or "chroot"
    taken = 0
    for lib in ("baz", "bar"):
        listed = subprocess.run([chroot, str(root), LDSO, "--list", f"/use{lib}"], capture_output=True, text=True,
                                env={})
        real = re.search(rf"lib{lib}\.so\.1 => (\S+) \(0x", listed.stdout)
        proc = run_binlens("deps", str(root / f"use{lib}"), "--sysroot", str(root), "--format", "json")
        (miss,) = json.loads(proc.stdout)["artifacts"][0]["facts"]["deps"]["missing"]
        others = [o["path"] for o in miss["other_cpus"]]
        assert len(others) == 1
        if real:  # (this machine's CPU takes it: the copy named is the one its loader maps)
            assert others == [real[1]]
            taken += 1
        text = run_binlens("deps", str(root / f"use{lib}"), "--sysroot", str(root)).stdout
        assert f"there for another CPU only: {others[0]}" in text
    assert taken >= 1 or host_options()["isa_level"] == "x86-64-baseline"
    # the loader's own error on a baseline CPU (this one, its features masked), explained
    failed = subprocess.run([chroot, str(root), "/usebaz"], capture_output=True, text=True,
                            env={"GLIBC_TUNABLES": CPU_MASKS[-1]})
    assert "libbaz.so.1: cannot open shared object file" in failed.stderr
    told = run_binlens("explain", failed.stderr, "--binary", str(root / "usebaz"), "--sysroot", str(root)).stdout
    assert "It is there for another CPU only: /usr/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v2/libbaz.so.1" in told
    # told this machine's CPU (which takes it, where it is x86-64-v2), explain finds the library where it is
    here = run_binlens("explain", failed.stderr, "--binary", str(root / "usebaz"), "--sysroot", str(root),
                       "--isa-level", "host").stdout
    assert ("It is there for another CPU only" in here) == (host_options()["isa_level"] == "x86-64-baseline")


# (Debian's cross C library, the fixture, its loader, the qemu CPU model and the --isa-level naming it); qemu-s390x
# runs only its own CPU model, which glibc sees as z13
HWCAPS_CPUS = [
    ("powerpc64le-linux-gnu", "c-ppc64le-gnu.2.34", "ld64.so.2", "lib64", ["-cpu", "power8"], "baseline"),
    ("powerpc64le-linux-gnu", "c-ppc64le-gnu.2.34", "ld64.so.2", "lib64", ["-cpu", "power9"], "power9"),
    ("powerpc64le-linux-gnu", "c-ppc64le-gnu.2.34", "ld64.so.2", "lib64", ["-cpu", "power10"], "power10"),
    ("s390x-linux-gnu", "c-s390x-gnu.2.28", "ld64.so.1", "lib", [], "z13"),
]


@pytest.mark.parametrize(("triplet", "fixture", "ldso", "interp_dir", "cpu", "level"), HWCAPS_CPUS,
                         ids=[f"{c[1].split('-')[1]}-{c[5]}" for c in HWCAPS_CPUS])
def test_glibc_hwcaps_levels_of_power_and_z(binaries_built: dict[str, Path], tmp_path: Path, triplet: str,
                                            fixture: str, ldso: str, interp_dir: str, cpu: list[str],
                                            level: str) -> None:
    """POWER's (power9, power10) and s390x's (z13 to z16) glibc-hwcaps directories are searched up to the CPU's
    level, as for x86-64: the real loader run by qemu as that CPU picks the copy of libc.so.6 binlens predicts with
    --isa-level naming it (binlens assumed the most capable CPU there: a library only in glibc-hwcaps/power10 was
    found for a POWER9, where it does not load). The C library is Debian's cross one, copied into a sysroot."""
    arch = triplet.split("-")[0].replace("powerpc64le", "ppc64le")
    cross = Path("/usr") / triplet / "lib"
    root = tmp_path / "root"
    (root / "lib").mkdir(parents=True)
    for name in (ldso, "libc.so.6", "libm.so.6"):
        shutil.copy(cross / name, root / "lib" / name)
    if interp_dir != "lib":
        (root / interp_dir).mkdir()
        (root / interp_dir / ldso).symlink_to(f"../lib/{ldso}")
    path_dir = root / "opt" / "L"
    for sub in ("", *(f"glibc-hwcaps/{lv}" for lv in glibc_model.HWCAPS[21 if arch == "ppc64le" else 22])):
        (path_dir / sub).mkdir(parents=True, exist_ok=True)
        shutil.copy(cross / "libc.so.6", path_dir / sub / "libc.so.6")
    prog = str(binaries_built[fixture])
    proc = subprocess.run([f"qemu-{arch}", *cpu, str(root / interp_dir / ldso), "--library-path",
                           f"{path_dir}:{root / 'lib'}", "--list", prog], capture_output=True, text=True, check=True)
    real = re.search(r"libc\.so\.6 => (\S+) \(0x", proc.stdout)
    assert real is not None, proc.stdout
    got = loader.analyze_path(prog, loader.Options(sysroot=str(root), ld_library_path=["/opt/L", "/lib"],
                                                   isa_level=level))
    (mine,) = [lib["path"] for lib in got["libraries"] if lib["name"] == "libc.so.6"]
    assert "/" + os.path.relpath(real[1], root) == mine


ARMHF_SUBDIRS = sorted({*glibc_model.legacy_subdirs("v7l", ["vfp", "neon"]),
                        *glibc_model.legacy_subdirs("v8l", ["vfp", "neon"])})
# (the qemu user-mode emulator, Debian's cross C library, its loader, the fixture, the CPU and the --isa-level
# naming it, the legacy subdirectories of every CPU of the architecture)
ARM_CPUS = [
    ("aarch64", "aarch64-linux-gnu", "ld-linux-aarch64.so.1", "c-aarch64-gnu.2.17", "cortex-a72", "baseline",
     glibc_model.legacy_subdirs("aarch64", ["atomics"])),
    ("aarch64", "aarch64-linux-gnu", "ld-linux-aarch64.so.1", "c-aarch64-gnu.2.17", "cortex-a76", "armv8.1-a",
     glibc_model.legacy_subdirs("aarch64", ["atomics"])),
    ("arm", "arm-linux-gnueabihf", "ld-linux-armhf.so.3", "c-arm-gnueabihf.2.28", "cortex-a15", "baseline",
     ARMHF_SUBDIRS),
    ("arm", "arm-linux-gnueabihf", "ld-linux-armhf.so.3", "c-arm-gnueabihf.2.28", "max", "armv8-a",
     ARMHF_SUBDIRS),
]


@pytest.mark.parametrize(("qemu", "triplet", "ldso", "fixture", "cpu", "level", "every"), ARM_CPUS,
                         ids=[f"{c[0]}-{c[4]}" for c in ARM_CPUS])
def test_legacy_subdirectories_of_arm(binaries_built: dict[str, Path], tmp_path: Path, qemu: str, triplet: str,
                                      ldso: str, fixture: str, cpu: str, level: str, every: list[str]) -> None:
    """ARM's loaders (Debian 12's cross C libraries, glibc 2.36) search tls and the platform — aarch64; v7l, or v8l
    on an ARMv8 CPU, for armhf — and the capabilities: atomics where an AArch64 CPU has the ARMv8.1 atomics
    (--isa-level armv8.1-a), vfp and neon for armhf. Run by qemu as each CPU, with a copy of libc.so.6 in every
    subdirectory any CPU of the architecture searches in an LD_LIBRARY_PATH directory, the loader picks binlens'
    prediction at every step as the chosen copy is removed."""
    cross = Path("/usr") / triplet / "lib"
    root = tmp_path / "root"
    (root / "lib").mkdir(parents=True)
    for name in (ldso, "libc.so.6", "libm.so.6"):
        shutil.copy(cross / name, root / "lib" / name)
    path_dir = root / "opt" / "L"
    for sub in every:
        (path_dir / sub).mkdir(parents=True, exist_ok=True)
        shutil.copy(cross / "libc.so.6", path_dir / sub / "libc.so.6")
    prog = str(binaries_built[fixture])
    opts = loader.Options(sysroot=str(root), ld_library_path=["/opt/L", "/lib"], isa_level=level)
    order = []
    while True:
        proc = subprocess.run([f"qemu-{qemu}", "-cpu", cpu, str(root / "lib" / ldso), "--library-path",
                               f"{path_dir}:{root / 'lib'}", "--list", prog], capture_output=True, text=True,
                              check=True)
        real = "/" + os.path.relpath(re.search(r"libc\.so\.6 => (\S+) \(0x", proc.stdout)[1], root)
        got = loader.analyze_path(prog, opts)
        assert [lib["path"] for lib in got["libraries"] if lib["name"] == "libc.so.6"] == [real], order
        if not real.startswith("/opt/L/"):
            break
        order.append(real)
        os.unlink(root / real.lstrip("/"))
    assert order[-1] == "/opt/L/libc.so.6" and len(order) > 2, order


def test_isa_levels_are_the_models() -> None:
    """The --isa-level values the settings offer (without importing the loader model) are the model's."""
    from analyzer.policy.settings import ISA_LEVELS

    assert ISA_LEVELS == glibc_model.ISA_LEVELS


I386_SYSROOT = "/usr/i686-linux-gnu"


def test_legacy_hwcap_subdirectories_of_i386(tmp_path: Path) -> None:
    """The i386 loader (Debian's cross C library, run on this x86-64 machine) searches tls, i686 and sse2 in every
    combination: the order binlens predicts with that C library as the sysroot."""
    ldso = f"{I386_SYSROOT}/lib/ld-linux.so.2"
    d = tmp_path
    (d / "f.c").write_text("int foo_one(void){return 1;}\n")
    cc = ["i686-linux-gnu-gcc", "-O1"]
    subprocess.run([*cc, "-shared", "-fPIC", "-Wl,-soname,libfoo.so.1", "f.c", "-o", "libfoo.so.1"], cwd=d,
                   check=True, capture_output=True)
    (d / "m.c").write_text("int foo_one(void);\nint main(void){ return foo_one() - 1; }\n")
    subprocess.run([*cc, "m.c", "libfoo.so.1", "-Wl,--disable-new-dtags,-rpath,$ORIGIN/lib", "-o", "app"], cwd=d,
                   check=True, capture_output=True)
    _, _, names = host_cpu(ldso)
    assert names == ["i686", "tls", "sse2"]
    _copies(d / "lib", d / "libfoo.so.1")
    opts = loader.Options(sysroot=I386_SYSROOT, ld_library_path=[f"{I386_SYSROOT}/lib"])
    order = _search_order(d / "app", [ldso, "--library-path", f"{I386_SYSROOT}/lib"], opts, {}, d / "lib")
    assert order[:3] == ["tls/i686/sse2/libfoo.so.1", "tls/i686/libfoo.so.1", "tls/sse2/libfoo.so.1"]
    assert order[-1] == "libfoo.so.1"


@pytest.mark.skipif(LDDTREE is None, reason="pax-utils not installed")
def test_host_sample_matches_lddtree() -> None:
    for path in _sample()[:20]:
        expected = _lddtree(path, "/")
        got = loader.analyze_path(path, loader.Options())
        mine = {lib["name"]: os.path.realpath(lib["path"]) for lib in got["libraries"]}
        for name, where in expected.items():
            assert mine.get(name) == os.path.realpath(where), (path, name)


def test_origin_of_a_program_outside_the_sysroot(fixtures_built: dict[str, Path], tmp_path: Path) -> None:
    """A bundle (bin/usegreet + lib/libgreet.so.1, RUNPATH $ORIGIN/../lib) checked against a sysroot it is not
    in: $ORIGIN is the program's own directory, as the real loader resolves it (the sysroot's own ld.so run
    with --list), and with --install-dir the bundle is seen where it will be installed."""
    root = tmp_path / "root"
    for rel in ("lib/x86_64-linux-gnu/libc.so.6", "lib64/ld-linux-x86-64.so.2"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(Path("/" + rel).resolve(), root / rel)
    bundle = tmp_path / "bundle"
    (bundle / "bin").mkdir(parents=True)
    (bundle / "lib").mkdir()
    app = bundle / "bin" / "usegreet"
    shutil.copy(fixtures_built["usegreet"], app)
    shutil.copy(fixtures_built["libgreet-runpath.so.1"], bundle / "lib" / "libgreet.so.1")
    listed = subprocess.run([str(root / "lib64/ld-linux-x86-64.so.2"), "--library-path",
                             str(root / "lib/x86_64-linux-gnu"), "--list", str(app)],
                            capture_output=True, text=True).stdout  # fmt: skip
    real = Path(re.search(r"libgreet\.so\.1 => (\S+)", listed)[1]).resolve()
    assert real == (bundle / "lib" / "libgreet.so.1").resolve()
    deps = loader.analyze_path(str(app), loader.Options(sysroot=str(root)))
    found = {lib["name"]: lib for lib in deps["libraries"]}
    assert deps["missing"] == [] and deps["loader_errors"] == []
    assert Path(found["libgreet.so.1"]["path"]).resolve() == real
    assert found["libc.so.6"]["path"] == "/lib/x86_64-linux-gnu/libc.so.6"  # from the sysroot
    installed = loader.analyze_path(str(app), loader.Options(sysroot=str(root), install_dir="/opt/greet/bin"))
    assert installed["missing"] == []
    paths = {lib["name"]: lib["path"] for lib in installed["libraries"]}
    assert paths["libgreet.so.1"] == "/opt/greet/bin/../lib/libgreet.so.1"  # the loader's name in the sysroot


def test_a_needed_path_with_origin_is_expanded_as_ld_so_does(fixtures_built: dict[str, Path], tmp_path: Path) -> None:
    """A program whose DT_NEEDED is a path with $ORIGIN (python-build-standalone's pythons, as uv and the Google
    Cloud SDK ship them, need $ORIGIN/../lib/libpython3.X.so.1.0): glibc's loader expands the token for the
    object that needs it (`ld.so --list` maps BIN/../lib/libgreet.so.1) and, where the library is not there,
    names the expanded path in its error. binlens took the name as a literal path and predicted `cannot open
    shared object file` for a program that runs (found: the Cloud SDK's bundled python on this machine)."""
    (tmp_path / "bin").mkdir()
    (tmp_path / "lib").mkdir()
    app, lib = tmp_path / "bin" / "app", tmp_path / "lib" / "libgreet.so.1"
    shutil.copy(fixtures_built["usegreet-origin"], app)
    shutil.copy(fixtures_built["libgreet-origin.so"], lib)
    listed = subprocess.run([LDSO, "--list", str(app)], capture_output=True, text=True, env={})
    mapped = re.search(r"^\s+(\S+/libgreet\.so\.1) \(0x", listed.stdout, re.M)
    assert listed.returncode == 0 and mapped and mapped[1] == f"{tmp_path}/bin/../lib/libgreet.so.1", listed.stdout
    deps = loader.analyze_path(str(app), loader.Options(**host_options()))
    assert deps["loader_errors"] == [] and deps["missing"] == []
    assert {d["name"]: d["path"] for d in deps["libraries"]}["$ORIGIN/../lib/libgreet.so.1"] == mapped[1]
    lib.unlink()
    refused = subprocess.run([LDSO, "--list", str(app)], capture_output=True, text=True, env={})
    assert refused.returncode != 0 and "cannot open shared object file" in refused.stderr
    deps = loader.analyze_path(str(app), loader.Options(**host_options()))
    assert deps["loader_errors"] == [refused.stderr.strip()]


def test_every_missing_library_is_listed(fixtures_built: dict[str, Path], tmp_path: Path) -> None:
    """ldd lists every library it cannot find; the loader stops at the first: binlens says both."""
    app = tmp_path / "app"
    shutil.copy(fixtures_built["usegreet"], app)  # libgreet.so.1 nowhere
    out = subprocess.run(["ldd", str(app)], capture_output=True, text=True).stdout
    not_found = sorted(re.findall(r"^\s+(\S+) => not found", out, re.M))
    deps = loader.analyze_path(str(app), loader.Options(**host_options()))
    assert sorted(m["name"] for m in deps["missing"]) == not_found and not_found
    assert len(deps["loader_errors"]) == 1


def test_deps_in_worker_processes_prints_the_same(tmp_path: Path) -> None:
    """`binlens deps` on many programs runs them in worker processes (each worker reads each library once, its
    sysroot kept across chunks of tasks): the report is the same bytes with --jobs 1 and --jobs 2, JSON and
    text, and the exit code too."""
    from conftest import run_binlens

    programs = _sample()[:40]
    assert len(programs) >= 20  # more than the 16 files a run needs before it starts workers
    for fmt in ("json", "text"):
        runs = [run_binlens("deps", "--format", fmt, "--jobs", jobs, *programs) for jobs in ("1", "2")]
        assert runs[0].stdout == runs[1].stdout and runs[0].returncode == runs[1].returncode
        assert runs[0].stdout


def test_a_worker_keeps_one_sysroot_per_run() -> None:
    """A Sysroot travels to the workers by name (pickled once per chunk inside the request): unpickled twice in
    one process it is the same object, with the files it has read; a view ($ORIGIN overlay) keeps its overlay
    and shares the files."""
    import pickle

    root = loader.Sysroot("/")
    root.open("/lib/x86_64-linux-gnu/libc.so.6")
    first, second = pickle.loads(pickle.dumps(root)), pickle.loads(pickle.dumps(root))
    assert first is second and first is not root and first.root == root.root
    view = root.overlay("/opt/app", "/tmp")
    back = pickle.loads(pickle.dumps(view))
    assert back.overlays == view.overlays and back.elves is first.elves
    assert pickle.loads(pickle.dumps(loader.Sysroot("/"))) is not first  # another run's sysroot


def test_no_bind_lists_what_ld_so_list_maps() -> None:
    """`deps --no-bind` (the libraries only): on the sample of /usr/bin, every program's libraries are what
    `ld.so --list` maps, nothing is bound (`bound` false, no bindings), and no other facts or rules run."""
    import json

    from conftest import run_binlens

    programs = [p for p in _sample()[:30] if ld_list(p) is not None]
    out = run_binlens("deps", "--no-bind", "--format", "json", *programs)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    computed = set(report["facts_computed"])
    assert "deps" in computed and not {"size", "compat", "hardening", "budget"} & computed
    for path, entry in zip(programs, report["artifacts"], strict=True):
        deps = entry["facts"]["deps"]
        assert deps["bound"] is False and deps["bindings"] == [] and entry["findings"] == []
        mine = {lib["name"]: lib["path"] for lib in deps["libraries"] if lib["name"] != os.path.basename(LDSO)}
        assert mine == ld_list(path), path
