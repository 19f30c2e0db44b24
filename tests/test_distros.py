"""Release verdicts against the releases themselves. Each Debian release's own C and C++ runtime (libc6,
libstdc++6 and libgcc-s1 as its current point release ships them, fetched from its suite by fixtures/build.py)
is the oracle: readelf reads the version nodes its libraries define, against what binlens's table
(analyzer/data/targets.json, from pep600_compliance) says the release has; and the release's own dynamic loader,
given its own libraries, lists every x86-64 glibc program among the fixtures (`ld.so --list`, which names every
version it cannot find) and runs it, against binlens's verdict for that release. scripts/distro_sweep.py does
the same for every architecture the releases have."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import build
import pytest

from analyzer.policy import compat
from tests.conftest import made_once, run_binlens, starts_with

RELEASES = [release for release, _, _ in build.DEBIAN_RELEASES]
TABLE_ARCH = {"amd64": "x86_64", "arm64": "aarch64", "i386": "i686", "armhf": "armv7l", "ppc64el": "ppc64le",
              "s390x": "s390x", "riscv64": "riscv64", "mips64el": "mips64el", "loong64": "loongarch64"}
# the libraries of those three packages a program may need and the release verdict is about (a program needing
# another library is left out: whether a library is installed is not what a release verdict says)
RUNTIME = {"libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1", "libstdc++.so.6",
           "libgcc_s.so.1"}
_NOT_FOUND = re.compile(r"version `([^']+)' not found")


def release_root(fixtures_built: dict[str, Path], release: str, arch: str) -> Path:
    """The release's three packages unpacked by dpkg-deb into one tree, with a merged-/usr release's /lib and /lib64
    links (made once, in the fixture cache)."""
    debs = [fixtures_built[f"{release}-{arch}-{pkg}.deb"] for pkg in ("libc6", "libstdc++6", "libgcc-s1")]

    def make(out: Path) -> None:
        for deb in debs:
            subprocess.run(["dpkg-deb", "-x", str(deb), str(out)], check=True)
        for top in ("lib", "lib64"):  # a merged-/usr release (13): the links its base-files installs
            if (out / "usr" / top).is_dir() and not (out / top).exists():
                (out / top).symlink_to(f"usr/{top}")

    key = hashlib.sha256(" ".join(d.parent.name for d in debs).encode()).hexdigest()[:12]
    return made_once(f"release-root-{release}-{arch}-{key}", make)


def loader_of(root: Path) -> tuple[Path, str]:
    """The release's ld.so and, as --library-path, its default directories in the order it searches them when
    it has no cache (multiarch first), as it would name them inside the release's tree."""
    dirs = [f"{root}{d}" for d in ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib", "/usr/lib")]
    loader = root / "lib64" / "ld-linux-x86-64.so.2"
    for _ in range(40):  # (its links followed inside the tree: 11's is absolute, /lib/x86_64-linux-gnu/ld-2.31.so)
        if not loader.is_symlink():
            break
        target = os.readlink(loader)
        loader = root / target.lstrip("/") if target.startswith("/") else loader.parent / target
    return loader, ":".join(dirs)


def run_by_loader(root: Path, program: Path, first: str = "") -> tuple[int, list[str]]:
    """The release's own ld.so (in the unpacked tree `root`) running `program` with the release's libraries
    (after `first`, a directory, when given): its exit status and the lines it writes to stderr, the tree's
    prefix taken off the paths it names (as a loader inside that root names them)."""
    loader, path = loader_of(root)
    ran = subprocess.run([str(loader), "--library-path", f"{first}:{path}" if first else path, str(program)],
                         capture_output=True, stdin=subprocess.DEVNULL, env={**os.environ, "LC_ALL": "C"},
                         timeout=60)  # fmt: skip
    return ran.returncode, ran.stderr.decode("utf-8", "replace").replace(str(root), "").splitlines()


def shared_objects(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.so*") if p.is_file() and not p.is_symlink()
                  and starts_with(p, b"\x7fELF"))


def defined_nodes(root: Path) -> set[str]:
    """Every version node the release's libraries define, as readelf -V prints them."""
    out: set[str] = set()
    for lib in shared_objects(root):
        text = subprocess.run(["readelf", "-V", "-W", str(lib)], capture_output=True, text=True, check=True).stdout
        if "Version definition section" in text:
            section = text.split("Version definition section", 1)[1].split("Version needs section", 1)[0]
            out |= set(re.findall(r"Name: (\S+)", section))
    return out


def table_nodes(release: str, arch: str) -> set[str]:
    nodes = compat.table()["releases"][release]["arches"][TABLE_ARCH[arch]]["nodes"]
    return {f"{ns}_{v}" for ns, versions in nodes.items() for v in versions}


@pytest.mark.parametrize("arch", ("amd64", "arm64"))  # (armhf's fixtures serve the qemu runs; distro_sweep.py: all)
@pytest.mark.parametrize("release", RELEASES)
def test_a_release_has_every_node_the_table_says(fixtures_built: dict[str, Path], release: str, arch: str) -> None:
    """Every GLIBC, GLIBCXX, CXXABI and GCC node binlens's table gives a release is defined by that release's
    libraries (a node the table has and the release lacks would make a "runs" verdict that does not run). The
    other way, a point release may define nodes the table's data has not seen yet (Debian 13 backported
    GLIBC_ABI_GNU2_TLS and GLIBC_ABI_DT_X86_64_PLT): binlens then says a program needing one does not run
    there, which errs on the safe side; they must be few, and only such special nodes."""
    real = {n for n in defined_nodes(release_root(fixtures_built, release, arch)) if not n.endswith("_PRIVATE")}
    real = {n for n in real if n.split("_", 1)[0] in ("GLIBC", "GLIBCXX", "CXXABI", "GCC")}
    table = table_nodes(release, arch)
    assert len(table) > 60 and table <= real, sorted(table - real)
    assert all(not re.fullmatch(r"[A-Z]+_\d+(\.\d+)*", n) for n in real - table), sorted(real - table)


def _programs(binaries_built: dict[str, Path]) -> dict[str, Path]:
    """The x86-64 glibc programs among the fixtures that need nothing but the three packages' libraries
    (readelf -lhd says so)."""
    out = {}
    for name, path in sorted(binaries_built.items()):
        if not starts_with(path, b"\x7fELF"):
            continue
        text = subprocess.run(["readelf", "-lhdW", str(path)], capture_output=True, text=True).stdout
        if "Advanced Micro Devices X86-64" not in text or "/lib64/ld-linux-x86-64.so.2" not in text \
                or "EXEC" not in text and "DYN (Position-Independent Executable" not in text:
            continue
        needed = set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", text))
        if needed and needed <= RUNTIME:
            out[name] = path
    return out


def test_verdicts_equal_each_releases_own_loader(fixtures_built: dict[str, Path],
                                                 binaries_built: dict[str, Path]) -> None:
    """For each x86-64 glibc program among the fixtures and each release: binlens finds no version problem
    exactly when the release's own ld.so, with the release's libraries, finds every version the program needs
    (and the program then runs: the loader does not stop it); where it does not, binlens names exactly the
    versions the loader says it cannot find — except a node the release defines that the table has not seen
    (the safe side, test above)."""
    programs = _programs(binaries_built)
    assert {"c-x86_64-gnu.2.17", "c-x86_64-gnu.2.34", "c-x86_64-relr", "cpp-x86_64-gxx",
            "c-x86_64-libgcc-s"} <= set(programs), sorted(programs)
    r = run_binlens("scan", "--format", "json", "--fail-on", "never", "--no-cache",
                    *(a for rel in RELEASES for a in ("--target", rel)), *map(str, programs.values()))
    assert r.returncode == 0, r.stderr
    verdicts = {e["path"]: e["facts"]["compat"]["targets"] for e in json.loads(r.stdout)["artifacts"]}
    seen = {"runs": 0, "fails": 0}
    for release in RELEASES:
        root = release_root(fixtures_built, release, "amd64")
        loader, path = loader_of(root)
        lag = defined_nodes(root) - table_nodes(release, "amd64")
        for name, prog in programs.items():
            listed = subprocess.run([str(loader), "--library-path", path, "--list", str(prog)], capture_output=True,
                                    text=True)
            missing = set(_NOT_FOUND.findall(listed.stdout + listed.stderr))
            verdict = verdicts[str(prog)][release]
            said = {p["node"] for p in verdict["problems"] if p["kind"] in ("version", "unknown-node")}
            assert said - missing <= lag and missing <= said, (name, release, sorted(said), sorted(missing))
            assert not (verdict["ok"] and said), (name, release, verdict)
            if not said:  # (other problems — a kernel the release does not ship — are not the loader's to say)
                # (its own exit status is the program's: `age` without arguments prints its usage and exits 1;
                # the loader's failure is 127 with its message)
                ran = subprocess.run([str(loader), "--library-path", path, str(prog)], capture_output=True,
                                     stdin=subprocess.DEVNULL, env={**os.environ, "LC_ALL": "C"}, timeout=60)
                assert ran.returncode != 127 and b"while loading shared libraries" not in ran.stderr \
                    and not _NOT_FOUND.search(ran.stderr.decode("latin-1")), (name, release, ran.stderr[-300:])
                seen["runs"] += 1
            else:
                seen["fails"] += 1
    assert seen["runs"] >= 10 and seen["fails"] >= 5, seen


def test_deps_predicts_each_releases_own_loader(fixtures_built: dict[str, Path],
                                                binaries_built: dict[str, Path]) -> None:
    """`binlens deps --sysroot RELEASE-ROOT` of each x86-64 glibc program: what it predicts the loader would
    write is what the release's own ld.so writes when it runs the program with the release's libraries, every
    line (each version it lacks, for every object: session 32; the first line before), paths inside the
    release's tree as the loader names them from its root; and nothing where that loader starts the program."""
    programs = _programs(binaries_built)
    stopped = 0
    for release in RELEASES:
        root = release_root(fixtures_built, release, "amd64")
        loader, path = loader_of(root)
        r = run_binlens("deps", "--sysroot", str(root), "--format", "json", *map(str, programs.values()))
        assert r.returncode in (0, 1), r.stderr
        predicted = {e["path"]: e["facts"]["deps"]["loader_warnings"] + e["facts"]["deps"]["loader_errors"]
                     for e in json.loads(r.stdout)["artifacts"]}  # fmt: skip
        for name, prog in programs.items():
            ran = subprocess.run([str(loader), "--library-path", path, str(prog)], capture_output=True,
                                 stdin=subprocess.DEVNULL, env={**os.environ, "LC_ALL": "C"}, timeout=60)
            real = ran.stderr.decode("utf-8", "replace").replace(str(root), "")
            if ran.returncode == 127 or _NOT_FOUND.search(real):
                assert predicted[str(prog)] == real.splitlines(), (name, release, predicted[str(prog)], real)
                stopped += 1
                if stopped <= 3 and (node := _NOT_FOUND.search(real)):  # (explain: a sample, each a process)
                    _explains(prog, real.splitlines()[0], node[1], release)
            else:
                assert predicted[str(prog)] == [], (name, release, predicted[str(prog)])
    assert stopped >= 5


def test_a_library_without_symbol_versions_under_each_releases_loader(fixtures_built: dict[str, Path],
                                                                      tmp_path: Path) -> None:  # fmt: skip
    """A program bound at start-up (-z now) that needs FOO_1.0 of libfoo.so.1, given a libfoo built without
    symbol versions and calling nothing (no .gnu.version): each release's loader warns (`no version information
    available`) and then Debian 11's (2.31) and 12's (2.36) stop at an assertion in check_match, each at its own
    line of dl-lookup.c, where 13's (2.41) binds and runs it. `binlens deps --sysroot RELEASE-ROOT` predicts each
    loader's stderr, line for line."""
    import sys

    d = tmp_path
    (d / "lib").mkdir()
    (d / "foo.c").write_text("int foo_one(void){return 1;}\n")
    (d / "v.map").write_text("FOO_1.0 { global: foo_one; local: *; };")
    (d / "main.c").write_text("int foo_one(void);\nint main(void){ return foo_one() - 1; }\n")
    zig = [sys.executable, "-m", "ziglang", "cc", "-target", "x86_64-linux-gnu.2.17"]
    for args in (["-shared", "-fPIC", "-Wl,-soname,libfoo.so.1", "-Wl,--version-script=v.map", "foo.c", "-o",
                  "libfoo.so.1"],
                 ["main.c", "libfoo.so.1", "-Wl,-z,now", "-Wl,-rpath,$ORIGIN/lib", "-o", "app"],
                 ["-shared", "-fPIC", "-Wl,-soname,libfoo.so.1", "foo.c", "-o", "lib/libfoo.so.1"]):
        subprocess.run([*zig, *args], cwd=d, check=True, capture_output=True,
                       env={**os.environ, "ZIG_GLOBAL_CACHE_DIR": str(build.CACHE / "zig-cache")})
    app = d / "app"
    outcomes = set()
    for release in RELEASES:
        root = release_root(fixtures_built, release, "amd64")
        code, real = run_by_loader(root, app)
        r = run_binlens("deps", "--sysroot", str(root), "--format", "json", str(app))
        assert r.returncode in (0, 1), r.stderr
        deps = json.loads(r.stdout)["artifacts"][0]["facts"]["deps"]
        assert deps["loader_warnings"] + deps["loader_errors"] == real, (release, deps, real)
        assert (code == 0) == (deps["loader_errors"] == []), (release, code)
        outcomes.add(code == 0)
    assert outcomes == {True, False}


def test_the_first_symbol_lookup_error_is_the_first_object_relocated(fixtures_built: dict[str, Path],
                                                                     tmp_path: Path) -> None:  # fmt: skip
    """Where several objects import what nothing defines, glibc's loader names the first it relocates: the
    search list sorted into initialisation order (each object before those it needs), walked backwards. The sort
    is not the same in every release: for a program needing libx, liby, libz where libz needs liby and libx,
    Debian 11's loader (2.31: _dl_sort_maps' old algorithm) relocates libx before liby, 12's and 13's (the
    depth-first one of 2.35 on) liby before libx. Each release's loader, run on the program, names one object;
    that object's import is then defined (in libprov.so) and the program run again, until it starts: every
    stop is the line `binlens deps --sysroot RELEASE-ROOT` predicts (before, binlens named the program's own
    import, the first in the search list, whatever the loader said). The program, bound at start-up, imports a
    function and a variable: the variable's relocation (DT_RELA) comes before the function's (DT_JMPREL)."""
    import sys

    d = tmp_path
    needs = {"app": ["libx.so", "liby.so", "libz.so"], "libz.so": ["liby.so", "libx.so"], "libx.so": [],
             "liby.so": []}
    imports = {"app": ["gone_app_fn", "gone_app"], **{lib: [f"gone_{lib[3]}"] for lib in needs if lib != "app"}}
    every = [s for names in imports.values() for s in names]
    zig = [sys.executable, "-m", "ziglang", "cc", "-target", "x86_64-linux-gnu.2.17"]
    env = {**os.environ, "ZIG_GLOBAL_CACHE_DIR": str(build.CACHE / "zig-cache")}

    def cc(*args: str) -> None:
        subprocess.run([*zig, *args], cwd=d, check=True, capture_output=True, env=env)

    def provider(defined: list[str]) -> None:
        (d / "prov.c").write_text("".join(f"int {s};\n" if not s.endswith("_fn") else f"int {s}(void){{return 0;}}\n"
                                          for s in defined) + "int prov_anchor;\n")
        cc("-shared", "-fPIC", "-Wl,-soname,libprov.so", "prov.c", "-o", "libprov.so")

    provider(every)
    for lib in ("libx.so", "liby.so", "libz.so"):  # (those needed first built first)
        sym = imports[lib][0]
        (d / f"{lib}.c").write_text(f"extern int {sym};\nint *{lib[3]}_ref = &{sym};\n")
        cc("-shared", "-fPIC", f"-Wl,-soname,{lib}", f"{lib}.c", "-Wl,--no-as-needed",
           *(f"./{n}" for n in needs[lib]), "./libprov.so", "-Wl,-rpath,$ORIGIN", "-o", lib)
    (d / "app.c").write_text("extern int gone_app; int gone_app_fn(void);\nint *volatile app_ref = &gone_app;\n"
                             "int main(void){ return gone_app_fn() + (app_ref == 0); }\n")
    cc("app.c", "-Wl,--no-as-needed", *(f"./{n}" for n in needs["app"]), "./libprov.so", "-Wl,-z,now",
       "-Wl,-rpath,$ORIGIN", "-o", "app")
    walks = {}
    for release in RELEASES:
        root = release_root(fixtures_built, release, "amd64")
        loader, path = loader_of(root)
        fixed: list[str] = []
        stops = []
        while True:
            provider(fixed)
            ran = subprocess.run([str(loader), "--library-path", path, str(d / "app")], capture_output=True,
                                 text=True, stdin=subprocess.DEVNULL, env={**os.environ, "LC_ALL": "C"}, timeout=60)
            predicted = loader_analyze(d / "app", root)
            real = ran.stderr.splitlines()
            assert predicted == real, (release, fixed, predicted, real)
            if ran.returncode == 0:
                break
            (gone,) = re.findall(r"undefined symbol: (\S+)", ran.stderr)
            stops.append(gone)
            fixed.append(gone)
            assert len(stops) <= len(every), stops
        walks[release] = stops
    assert walks["debian-11"] == ["gone_x", "gone_y", "gone_z", "gone_app", "gone_app_fn"], walks
    assert walks["debian-12"] == walks["debian-13"] == ["gone_y", "gone_x", "gone_z", "gone_app", "gone_app_fn"]


def test_a_loader_with_an_older_c_library_stops_at_its_early_initialisation(fixtures_built: dict[str, Path],
                                                                            tmp_path: Path) -> None:  # fmt: skip
    """A program that needs nothing newer than glibc 2.17, run by each release's loader with Debian 11's
    libc.so.6 (2.31) first on the library path, as a bundled C library is: the loaders of 12 (2.36) and 13 (2.41)
    relocate everything and then stop at their assertion that libc.so.6 has __libc_early_init (2.32 on), where
    Debian 11's own loader runs it. binlens said it would start under every one; now `deps` predicts each
    loader's stderr, line for line, and `explain` of the assertion says two glibc builds are mixed. And the
    other way round, 11's loader with 13's libc.so.6: the versions of ld.so that C library needs, every one."""
    import sys

    (tmp_path / "main.c").write_text("#include <stdio.h>\nint main(void){ return puts(\"started\") < 0; }\n")
    subprocess.run([sys.executable, "-m", "ziglang", "cc", "-target", "x86_64-linux-gnu.2.17", "main.c",
                    "-Wl,-z,lazy", "-o", "app"], cwd=tmp_path, check=True, capture_output=True,
                   env={**os.environ, "ZIG_GLOBAL_CACHE_DIR": str(build.CACHE / "zig-cache")})  # fmt: skip
    app = tmp_path / "app"
    libc = {release: next(p for p in (release_root(fixtures_built, release, "amd64") / d / "libc.so.6"
                                      for d in ("lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu")) if p.exists())
            for release in RELEASES}  # fmt: skip
    outcomes = {}
    for release, other in [(r, "debian-11") for r in RELEASES] + [("debian-11", "debian-13")]:
        root = tmp_path / f"{release}-with-{other}"
        shutil.copytree(release_root(fixtures_built, release, "amd64"), root, symlinks=True)
        (root / "opt" / "old").mkdir(parents=True)
        shutil.copy(libc[other], root / "opt" / "old" / "libc.so.6")
        code, lines = run_by_loader(root, app, f"{root}/opt/old")
        r = run_binlens("deps", "--sysroot", str(root), "--ld-library-path", "/opt/old", "--format", "json", str(app))
        deps = json.loads(r.stdout)["artifacts"][0]["facts"]["deps"]
        # (started by hand, ld.so names itself by the path it was started by; by the kernel, by PT_INTERP)
        started_by = "/" + str(loader_of(root)[0].relative_to(root))
        real = [line.replace(started_by, "/lib64/ld-linux-x86-64.so.2") for line in lines]
        assert deps["loader_warnings"] + deps["loader_errors"] == real, (release, other, deps["loader_errors"], real)
        assert (code == 0) == (deps["loader_errors"] == []) == (r.returncode == 0), (release, other)
        outcomes[(release, other)] = real[:1]
    assert outcomes[("debian-11", "debian-11")] == []
    assert outcomes[("debian-12", "debian-11")] == outcomes[("debian-13", "debian-11")] == [
        "Inconsistency detected by ld.so: dl-call-libc-early-init.c: 37: _dl_call_libc_early_init: Assertion "
        "`sym != NULL' failed!"]
    told = run_binlens("explain", outcomes[("debian-12", "debian-11")][0])
    assert told.returncode == 0 and "__libc_early_init" in told.stdout and "two glibc builds" in told.stdout
    assert "version `GLIBC_2.3" in outcomes[("debian-11", "debian-13")][0], outcomes
    # (libc.so.6 needing a newer ld.so: `explain` says two glibc builds, not "build for an older glibc")
    told = run_binlens("explain", outcomes[("debian-11", "debian-13")][0])
    assert told.returncode == 0 and "two glibc builds" in told.stdout and "zig cc" not in told.stdout, told.stdout


def test_dt_relr_without_its_version_need_is_refused_from_2_36(fixtures_built: dict[str, Path],
                                                               binaries_built: dict[str, Path]) -> None:  # fmt: skip
    """c-unknown-node has DT_RELR relocations and needs libc.so.6, but not GLIBC_ABI_DT_RELR (its need names an
    unknown node instead): the loaders of Debian 12 and 13 (2.36, 2.41) say the missing node and then refuse it
    (`DT_RELR without GLIBC_ABI_DT_RELR dependency`), Debian 11's (2.31) only the node; `deps` predicts each,
    line for line, and `explain` of the refusal names the option that links it right."""
    prog = binaries_built["c-unknown-node"]
    said = {}
    for release in RELEASES:
        root = release_root(fixtures_built, release, "amd64")
        _, real = run_by_loader(root, prog)
        got = loader_analyze(prog, root)
        assert got == real, (release, got, real)
        said[release] = [line for line in real if "DT_RELR without GLIBC_ABI_DT_RELR dependency" in line]
    assert said["debian-11"] == [] and len(said["debian-12"]) == len(said["debian-13"]) == 1, said
    told = run_binlens("explain", said["debian-12"][0])
    assert told.returncode == 0 and "-z,pack-relative-relocs" in told.stdout, told.stdout + told.stderr


def test_programs_exporting_module_entry_points_are_programs(fixtures_built: dict[str, Path],
                                                             tmp_path: Path) -> None:  # fmt: skip
    """The Python interpreter exports the PyInit_ functions of its built-in modules (and node, Node-API's
    napi_ functions): binlens took /usr/bin/python3 for an extension module (`_socket`), so predicted dlopen's
    one error where the loader starting it says every version it lacks. Run by this system's loader with Debian
    11's libc.so.6 and libm.so.6 first on the library path: every line it writes is binlens's prediction, and
    neither program is a module or an addon."""
    from analyzer.facts import loader

    root = release_root(fixtures_built, "debian-11", "amd64")
    lib = [f"{root}/lib/x86_64-linux-gnu"]
    python = os.path.realpath("/usr/bin/python3")
    ran = subprocess.run(["/lib64/ld-linux-x86-64.so.2", "--library-path", lib[0], python, "-c", "pass"],
                         capture_output=True, text=True, stdin=subprocess.DEVNULL, env={"LC_ALL": "C"}, timeout=60)
    got = loader.analyze_path(python, loader.Options(ld_library_path=lib))
    assert ran.returncode == 1 and len(ran.stderr.splitlines()) > 1, ran.stderr
    assert got["python_module"] is None and got["loader_errors"] == ran.stderr.splitlines()
    # a program of ours exporting both entry points (-rdynamic), as node and an embedding program do; the same
    # code as a shared object is a module and an addon
    d = tmp_path
    (d / "e.c").write_text("int PyInit_e(void){ return 1; }\nint napi_register_module_v1(void){ return 2; }\n"
                           "int main(void){ return 0; }\n")
    subprocess.run(["gcc", "-rdynamic", "e.c", "-o", "e"], cwd=d, check=True)
    subprocess.run(["gcc", "-shared", "-fPIC", "e.c", "-o", "e.so"], cwd=d, check=True)
    program, plugin = (loader.analyze_path(str(d / n), loader.Options()) for n in ("e", "e.so"))
    assert (program["python_module"], program["node_addon"]) == (None, False)
    assert (plugin["python_module"], plugin["node_addon"]) == ("e", True)


def loader_analyze(app: Path, root: Path) -> list[str]:
    from analyzer.facts import loader

    return loader.analyze_path(str(app), loader.Options(sysroot=str(root)))["loader_errors"]


def _explains(prog: Path, message: str, node: str, release: str) -> None:
    """`binlens explain --binary PROG` of the loader's own message: it names the missing node, the symbols that
    need it (readelf --dyn-syms: the undefined ones at that version) and releases that ship it, not this one."""
    r = run_binlens("explain", "--binary", str(prog), message)
    assert r.returncode == 0, r.stderr
    syms = subprocess.run(["readelf", "-W", "--dyn-syms", str(prog)], capture_output=True, text=True).stdout
    forcing = set(re.findall(rf"\sUND (\S+)@{re.escape(node)}\b", syms))
    assert forcing and all(f"{sym}@{node}" in r.stdout for sym in forcing), (prog, node, r.stdout)
    ships = re.search(rf"releases that ship {re.escape(node)}: (.*)\.$", r.stdout, re.M)
    if node.split("_")[0] == "GLIBC" and ships:
        assert release not in ships[1].split(", "), (release, ships[1])


# (arch, release) run under qemu in CI: the two that binlens got wrong; BINLENS_FULL_MATRIX=1 runs every one
ARM_RUNS = [(a, r) for a in ("armhf", "arm64") for r in RELEASES] if os.environ.get("BINLENS_FULL_MATRIX") == "1" \
    else [("armhf", "debian-12"), ("armhf", "debian-13")]


@pytest.mark.parametrize(("arch", "release"), ARM_RUNS)
def test_calls_made_inside_each_releases_arm_c_library(fixtures_built: dict[str, Path],
                                                       binaries_built: dict[str, Path], arch: str, release: str
                                                       ) -> None:  # fmt: skip
    """c-libcalls for 32- and 64-bit ARM run by the release's own loader and libraries under qemu-ARCH -strace:
    every call it makes is in its own set or the one binlens reaches through the release's C library. On 32-bit
    ARM three things hid calls: glibc 2.41's __syscall_cancel(a1..a6, nr) takes the number on the stack, and a
    Thumb function's register list (`push {r4, r5, r6, lr}`) counted as one register, so the slot was misread
    (Debian 13: poll and clock_nanosleep missed, and every cancellable call's number 0); decoding in ARM state
    went on one byte, not a word, past the Thumb stub (`bx pc`) before a PLT entry, so the C library's calls of
    malloc, free and the rest through its PLT were lost (getrandom, made by malloc's first call); and a
    word-aligned Thumb BL whose second halfword looks like an A32 BLX was read as one (Debian 12's loader:
    set_robust_list missed)."""
    prog = str(binaries_built["c-libcalls-" + {"armhf": "arm", "arm64": "aarch64"}[arch]])
    root = release_root(fixtures_built, release, arch)
    out = subprocess.run([{"armhf": "qemu-arm", "arm64": "qemu-aarch64"}[arch], "-L", str(root), "-strace", prog],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr[-1000:]
    seen = {m[1] for m in re.finditer(r"^\d+ (\w+)\(", out.stderr, re.M)}
    assert {"getdents64", "read", "write"} <= seen, sorted(seen)  # (made by the C library)
    missing = _not_reached(prog, root, seen)
    assert not missing, sorted(missing)


def _scanned(paths: list[str], root: Path) -> list[dict]:
    """The facts of each program, its libraries resolved in `root`, from one scan sharing one sysroot."""
    from analyzer import pipeline
    from analyzer.facts import Context, loader

    shared = (loader.Options(sysroot=str(root)), loader.Sysroot(str(root)))
    request = pipeline.Request(pipeline.plan(None, ["syscalls"]), Context(loader=shared))
    return [r.entry["facts"] for r in pipeline.scan(paths, request)]


def _not_reached(prog: str, root: Path, seen: set[str], facts: dict | None = None) -> set[str]:
    """The calls seen made that are neither in the program's own set nor reached through its libraries as the
    release's tree (`root`) resolves them (the kernel's signal trampoline's aside); and those of them that the
    loader and the program do not make, missing from the set of the release's C library analysed alone (a
    stripped library is split where its calls land, as its model is: Debian 13's libc.so.6 alone lacked poll,
    connect and clock_nanosleep on x86-64, and read, write and most others on armhf), tagged `alone:`."""
    from test_syscalls import KERNEL_MADE, _facts, _in_sysroot

    f = (facts or _in_sysroot(prog, str(root))[0]["facts"])["syscalls"]
    via = f["via_libraries"]
    assert via["modelled"], via
    (libc,) = [lib for lib in via["by_library"] if lib.endswith("/libc.so.6")]
    libc_made = seen - set(f["names"]) - set(via["loader"]) - KERNEL_MADE
    return (seen - set(f["names"]) - set(via["names"]) - KERNEL_MADE) | \
        {f"alone:{n}" for n in libc_made - set(_facts(root / libc.lstrip("/"))["names"])}


def test_calls_made_inside_each_releases_c_library(fixtures_built: dict[str, Path],
                                                   binaries_built: dict[str, Path], tmp_path: Path) -> None:
    """c-libcalls (stdio, directories, signals, pipes, poll, sockets, sleep) run by each release's own loader with
    the release's libraries, under strace -f: every call it makes is in its own set or the one binlens reaches
    through that release's C library. glibc 2.41 (Debian 13) makes every cancellable call — read, write, poll,
    clock_nanosleep, connect, copy_file_range — through __syscall_cancel(a1..a6, nr), the number its seventh
    argument, on the stack on x86-64, handed on with `push [rsp+0x18]`: binlens missed them all, so a seccomp
    profile it wrote for a program on Debian 13 lacked them. And c-usector, which does next to nothing but need
    libctor.so: glibc 2.41's early initialisation, which the loader calls by name (__libc_early_init), makes
    prlimit64, and binlens did not follow that call. And c-pthread, which needs libpthread.so.0: glibc 2.31's
    (Debian 11) sets up threads from its DT_INIT `_init` (set_tid_address, set_robust_list), a function nothing
    names or calls, which the library's model did not start."""
    from test_syscalls import _strace

    prog = str(binaries_built["c-libcalls-x86_64"])
    small = tmp_path / "c-usector"
    small.write_bytes(binaries_built["c-usector-x86_64"].read_bytes())
    small.chmod(0o755)
    (tmp_path / "libctor.so").write_bytes(binaries_built["libctor-x86_64.so"].read_bytes())  # ($ORIGIN)
    checked = set()
    threads = str(binaries_built["c-pthread-x86_64"])
    for release in RELEASES:
        root = release_root(fixtures_built, release, "amd64")
        ld, path = loader_of(root)
        # the three programs scanned in one run: the release's libraries modelled once
        facts = dict(zip((prog, str(small), threads), _scanned([prog, str(small), threads], root), strict=True))
        seen = _strace([str(ld), "--library-path", path, prog])
        assert {"getdents64", "clock_nanosleep", "write"} <= seen, sorted(seen)
        missing = _not_reached(prog, root, seen, facts[prog])
        assert not missing, (release, sorted(missing))
        seen = _strace([str(ld), "--library-path", path, str(small)])
        assert "statfs" in seen, sorted(seen)
        missing = _not_reached(str(small), root, seen, facts[str(small)])
        assert not missing, (release, "c-usector", sorted(missing))
        seen = _strace([str(ld), "--library-path", path, threads])
        # (the C library analysed alone is no measure here: libpthread makes these calls, not libc.so.6)
        missing = {n for n in _not_reached(threads, root, seen, facts[threads]) if not n.startswith("alone:")}
        assert not missing, (release, "c-pthread", sorted(missing))
        checked.add(release)
    assert checked == set(RELEASES)


def _in_tree(root: Path, path: str) -> bool:
    """Whether `path` names a file inside the release's tree, its links followed inside it (as its kernel would
    follow them from its root)."""
    parts, at, hops = [p for p in path.split("/") if p], root, 0
    while parts:
        part = parts.pop(0)
        nxt = at / part
        if nxt.is_symlink():
            hops += 1
            if hops > 40:
                return False
            target = os.readlink(nxt)
            parts[:0] = [p for p in target.split("/") if p]
            at = root if target.startswith("/") else at
            continue
        if not nxt.exists():
            return False
        at = nxt
    return at.is_file()


LOADER_PROGRAMS = {"amd64": ("c-x86_64-gnu.2.17", "x86_64-linux-gnu"),
                   "arm64": ("c-aarch64-gnu.2.17", "aarch64-linux-gnu"),
                   "armhf": ("c-arm-gnueabihf.2.28", "arm-linux-gnueabihf")}  # fmt: skip


@pytest.mark.parametrize("arch", sorted(LOADER_PROGRAMS))
def test_interpreter_verdicts_equal_each_releases_files(fixtures_built: dict[str, Path],
                                                        binaries_built: dict[str, Path], arch: str) -> None:
    """A program asking for its loader at a path: binlens says a Debian release lacks it (LNK014) exactly when
    the release's own packages, unpacked with its merged-/usr links, have no file there — glibc's own place, the
    multiarch directory, and paths no release has (a Nix store, /opt, /lib64 where glibc uses /lib). Before, a
    program runs wherever its symbol versions are defined, whatever it asked the kernel to load."""
    from analyzer.pipeline import analyze_file

    name, triplet = LOADER_PROGRAMS[arch]
    (entry,) = analyze_file(str(binaries_built[name]))
    facts = entry["facts"]
    loader = facts["interpreter"].rsplit("/", 1)[1]
    candidates = {facts["interpreter"], f"/lib/{triplet}/{loader}", f"/lib/{loader}", f"/lib64/{loader}",
                  f"/opt/cross/{triplet}/lib/{loader}", f"/nix/store/4bl7y8dyy-glibc/lib/{loader}"}
    seen = {True: 0, False: 0}
    for release in RELEASES:
        root = release_root(fixtures_built, release, arch)
        for path in sorted(candidates):
            verdict = compat.compat_facts({**facts, "interpreter": path}, [release])["targets"][release]
            said = [p for p in verdict["problems"] if p["kind"] == "interpreter"]
            there = _in_tree(root, path)
            assert (not said) == there, (release, arch, path, said)
            seen[there] += 1
    assert seen[True] >= 2 * len(RELEASES) and seen[False] >= 3 * len(RELEASES), seen


def test_interpreter_verdict_equals_this_machines_kernel(binaries_built: dict[str, Path]) -> None:
    """The same programs built with their loader named elsewhere, run by this machine's kernel: it starts each
    one binlens says this machine's release has the loader of, and refuses the others (ENOENT)."""
    release = _this_release()
    names = ("c-x86_64-gnu.2.17", "c-interp-multiarch", "c-interp-lib", "c-interp-nix")
    r = run_binlens("scan", "--format", "json", "--fail-on", "never", "--no-cache", "--target", release,
                    *(str(binaries_built[n]) for n in names))
    verdicts = {e["path"]: e["facts"]["compat"]["targets"][release] for e in json.loads(r.stdout)["artifacts"]}
    starts = {}
    for n in names:
        path = binaries_built[n]
        said = [p for p in verdicts[str(path)]["problems"] if p["kind"] == "interpreter"]
        try:
            subprocess.run([str(path)], capture_output=True, timeout=60)
            starts[n] = True
        except FileNotFoundError:
            starts[n] = False
        assert (not said) == starts[n], (n, release, said)
        if n == "c-interp-nix":  # the shell's own words for it, explained: the loader's place, and the fix
            shell = subprocess.run(["bash", "-c", str(path)], capture_output=True, text=True).stderr
            told = run_binlens("explain", "--binary", str(path), shell)
            assert "glibc's loader for this architecture is /lib64/ld-linux-x86-64.so.2" in told.stdout, (shell, told)
            assert "patchelf --set-interpreter /lib64/ld-linux-x86-64.so.2" in told.stdout, told.stdout
    assert set(starts.values()) == {True, False}, starts


def _this_release() -> str:
    """This machine's release as binlens's table names it (the kernel test runs its programs here)."""
    fields = dict(line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line)
    name = f"{fields.get('ID', '').strip(chr(34))}-{fields.get('VERSION_ID', '').strip(chr(34))}"
    if name not in compat.table()["releases"]:
        pytest.skip(f"this machine ({name}) is not a release in binlens's table")
    return name


def test_armhf_loader_refuses_a_soft_float_library(fixtures_built: dict[str, Path], binaries_built: dict[str, Path],
                                                   tmp_path: Path) -> None:
    """Debian 12's armhf loader (under qemu-arm, the release's tree as its root) runs a hard-float program with the
    hard-float libgreet.so.1 and refuses it with the soft-float one swapped in ("cannot open shared object file":
    glibc skips an EABI5 object of the other float ABI); `binlens deps` predicts each, message for message, and
    the soft-float library fails the release (LNK009) and manylinux_2_31_armv7l, as auditwheel's armv7l check.
    Before, deps said the loader would start it and the verdicts said it runs."""
    def root_with(lib: str) -> tuple[Path, Path]:
        root = tmp_path / lib
        shutil.copytree(release_root(fixtures_built, "debian-12", "armhf"), root, symlinks=True)
        return root, root / "lib" / "arm-linux-gnueabihf"

    _float_abi_swaps(binaries_built, "usegreet-gnueabihf", "qemu-arm", root_with, "libgreet-gnueabihf.so",
                     "libgreet-gnueabi.so", ("debian-12", "manylinux_2_31_armv7l"))


def _float_abi_swaps(binaries_built: dict[str, Path], program: str, qemu: str,
                     root_with: Callable[[str], tuple[Path, Path]], good: str, bad: str,
                     targets: tuple[str, ...]) -> None:  # fmt: skip
    """The program under the loader of a root (`root_with(library)`: the root and its library directory) with
    the library of its float ABI as libgreet.so.1, then the one of another: it runs, then the loader refuses it
    ("cannot open shared object file"), and deps predicts each; the other library fails each target (LNK009
    alone), the program's own passes them."""
    prog = binaries_built[program]
    for lib in (good, bad):
        root, libdir = root_with(lib)
        shutil.copyfile(binaries_built[lib], libdir / "libgreet.so.1")
        ran = subprocess.run([qemu, "-L", str(root), str(prog)], capture_output=True, text=True, timeout=60)
        r = run_binlens("deps", "--sysroot", str(root), "--format", "json", str(prog))
        predicted = json.loads(r.stdout)["artifacts"][0]["facts"]["deps"]["loader_errors"]
        if lib == good:
            assert ran.returncode == 0 and ran.stdout == "hello, world\n" and predicted == [], (ran, predicted)
        else:
            assert ran.returncode == 127 and "libgreet.so.1: cannot open shared object file" in ran.stderr, ran
            assert predicted[:1] == ran.stderr.splitlines()[:1], (predicted, ran.stderr)
    for target in targets:
        scan = run_binlens("scan", "--format", "json", "--no-cache", "--target", target, str(binaries_built[bad]))
        findings = json.loads(scan.stdout)["artifacts"][0]["findings"]
        assert scan.returncode == 1 and [f["rule"] for f in findings] == ["LNK009"], (target, findings)
    own = run_binlens("scan", "--no-cache", *(a for t in targets for a in ("--target", t)), str(binaries_built[good]))
    assert own.returncode == 0, own.stdout


def test_execstack_module_verdicts_equal_each_releases_dlopen(fixtures_built: dict[str, Path],
                                                              binaries_built: dict[str, Path]) -> None:
    """An extension module (it exports PyInit_NAME: readelf) whose PT_GNU_STACK asks for an executable stack, and
    the same module without: each release's own loader runs a program that dlopens them as Python imports a
    module, and binlens says a release refuses the module exactly when its dlopen fails (glibc 2.41: Debian 13)
    — before, it "ran" everywhere; `deps --sysroot` predicts dlopen's own message (before: "the loader would
    start it"); the verdict names no family whose later releases refuse it, and a manylinux policy fails it
    (LNK015: its wheels install on such systems too)."""
    mods = [binaries_built["pymod-execstack.so"], binaries_built["pymod.so"]]
    for mod in mods:
        syms = subprocess.run(["readelf", "-W", "--dyn-syms", str(mod)], capture_output=True, text=True).stdout
        assert re.search(r"\sFUNC\s+GLOBAL\s+DEFAULT\s+\d+\s+PyInit_pymod$", syms, re.M), syms
    r = run_binlens("scan", "--format", "json", "--fail-on", "never", "--no-cache", "--target", "manylinux_2_17",
                    *(a for rel in RELEASES for a in ("--target", rel)), *map(str, mods))
    entries = {e["path"]: e["facts"] for e in json.loads(r.stdout)["artifacts"]}
    seen = {True: 0, False: 0}
    for release in RELEASES:
        root = release_root(fixtures_built, release, "amd64")
        loader, path = loader_of(root)
        d = run_binlens("deps", "--sysroot", str(root), "--format", "json", *map(str, mods))
        predicted = {e["path"]: e["facts"]["deps"]["loader_errors"] for e in json.loads(d.stdout)["artifacts"]}
        for mod in mods:
            facts = entries[str(mod)]
            assert facts["plugin"] == "python-extension"
            ran = subprocess.run([str(loader), "--library-path", path, str(binaries_built["c-dlopen"]), str(mod)],
                                 capture_output=True, text=True, timeout=60)
            loads = ran.returncode == 0 and ran.stdout == f"loaded {mod}\n"
            if not loads:
                assert "cannot enable executable stack as shared object requires" in ran.stdout, ran
                # explain, given dlopen's own words as Python's import shows them, names the cause and the fix
                told = run_binlens("explain", "--binary", str(mod), f"ImportError: {ran.stdout.strip()}")
                assert told.returncode == 0 and "glibc 2.41 and later refuse" in told.stdout, told
                assert "PT_GNU_STACK with the X flag: it is the object that asks" in told.stdout, told.stdout
            said = [p for p in facts["compat"]["targets"][release]["problems"] if p["kind"] == "execstack"]
            assert (not said) == loads, (release, mod.name, said, ran.stdout)
            assert predicted[str(mod)] == ([] if loads else [ran.stdout.strip()]), (release, predicted[str(mod)])
            seen[loads] += 1
    assert seen[True] >= 4 and seen[False] >= 1, seen
    refused, fine = (entries[str(m)] for m in mods)
    assert "debian" not in refused["compat"]["oldest"] and refused["compat"]["oldest"]
    assert [p["kind"] for p in refused["compat"]["targets"]["manylinux_2_17"]["problems"]] == ["execstack"]
    assert fine["compat"]["targets"]["manylinux_2_17"]["ok"] and "debian" in fine["compat"]["oldest"]


# Debian releases and architectures whose kernels this suite reads (the mirror it reads has no ppc64el kernel
# packages of Debian 11 and 13)
KERNEL_HEADERS = (("debian-11", "arm64"), ("debian-12", "arm64"), ("debian-13", "arm64"), ("debian-12", "ppc64el"))
KERNEL_ARCHES = {"arm64": "aarch64", "ppc64el": "ppc64le"}


def kernel_page_sizes(release: str, arch: str) -> dict[str, int]:
    """Per kernel flavour the release ships for the architecture (each flavour's newest linux-headers package),
    the page size its .config builds (CONFIG_ARM64_4K_PAGES, CONFIG_PPC_64K_PAGES, ...)."""
    suite = {r: s for r, s, _ in build.DEBIAN_RELEASES}[release]

    def make(out: Path) -> None:
        import tempfile

        options = build.apt_options(suite, arch)
        listed = subprocess.run(["apt-cache", *options, "search", "--names-only", "^linux-headers-[0-9]"],
                                capture_output=True, text=True, check=True).stdout
        newest: dict[str, tuple[tuple[int, ...], str]] = {}
        for line in listed.splitlines():
            m = re.fullmatch(r"linux-headers-(\d+\.\d+\.\d+(?:-\d+|\+deb\d+))-(.+)", line.split()[0])
            if m and not m[2].startswith("common"):
                key = tuple(int(n) for n in re.findall(r"\d+", m[1]))
                if m[2] not in newest or key > newest[m[2]][0]:
                    newest[m[2]] = (key, m[0])
        sizes = {}
        with tempfile.TemporaryDirectory() as tmp:
            for flavour, (_, package) in sorted(newest.items()):
                subprocess.run(["apt-get", *options, "download", package], cwd=tmp, check=True, capture_output=True)
                (deb,) = Path(tmp).glob("*.deb")  # (one at a time)
                config = subprocess.run(f"dpkg-deb --fsys-tarfile '{deb}' | tar -xO --wildcards '*/.config'",
                                        shell=True, capture_output=True, text=True, check=True).stdout
                (size,) = re.findall(r"^CONFIG_(?:ARM64|PPC)_(\d+)K_PAGES=y$", config, re.M)
                sizes[flavour] = int(size) * 1024
                deb.unlink()
        out.write_text(json.dumps(sizes))

    return dict(json.loads(made_once(f"kernel-pages-{release}-{arch}", make).read_text()))


@pytest.mark.parametrize(("release", "arch"), KERNEL_HEADERS)
def test_page_size_table_equals_each_releases_kernels(release: str, arch: str) -> None:
    """The largest page size binlens gives a Debian release for an architecture is that of the largest-paged
    kernel flavour the release ships, read from the flavours' own build configurations (Debian 13's arm64-16k
    among them)."""
    sizes = kernel_page_sizes(release, arch)
    assert len(sizes) >= 1, sizes
    assert compat.page_sizes(release)[KERNEL_ARCHES[arch]] == max(sizes.values()), (release, arch, sizes)


def test_page_size_verdicts_equal_the_loader_under_each_page_size(fixtures_built: dict[str, Path],
                                                                   binaries_built: dict[str, Path],
                                                                   tmp_path: Path) -> None:
    """AArch64 libgreet laid out for 4, 16 and 64 KiB pages, under a program linked against it: each Debian
    release's own loader (qemu-aarch64 with the release's tree as its root, and the page size of the largest-paged
    kernel the release ships: `-p`) loads it or refuses it ("error while loading shared libraries"), and binlens
    says the release runs it (no LNK016) exactly when it loads; at every page size the loader loads it exactly when
    binlens's `page_size_max` is that size or larger; a manylinux policy, whose wheels install on every aarch64
    system, wants the largest page size the architecture's kernels use (64 KiB). Before, a library laid out for 4
    KiB pages ran on every release (RHEL 8's 64 KiB kernels refuse it)."""
    prog = binaries_built["usegreet-aarch64"]
    libs = {name: binaries_built[f"libgreet-aarch64{name}.so"] for name in ("-4k", "-16k", "")}
    facts = {}
    for name, lib in libs.items():
        (entry,) = json.loads(run_binlens("scan", "--format", "json", "--no-cache", "--fail-on", "never",
                                          *(a for rel in RELEASES for a in ("--target", rel)),
                                          "--target", "manylinux_2_28_aarch64", str(lib)).stdout)["artifacts"]
        facts[name] = entry
    seen = {True: 0, False: 0}

    def loads(root: Path, lib: Path, page: int) -> bool:
        shutil.copyfile(lib, root / "lib" / "aarch64-linux-gnu" / "libgreet.so.1")
        ran = subprocess.run(["qemu-aarch64", "-p", str(page), "-L", str(root), str(prog)], capture_output=True,
                             text=True, timeout=60)
        if ran.returncode == 0:
            assert ran.stdout == "hello, world\n", ran
            return True
        assert ran.returncode == 127 and "error while loading shared libraries" in ran.stderr, ran
        return False

    for release in RELEASES:
        root = tmp_path / release
        shutil.copytree(release_root(fixtures_built, release, "arm64"), root, symlinks=True)
        page = max(kernel_page_sizes(release, "arm64").values())
        for name, lib in libs.items():
            loaded = loads(root, lib, page)
            said = [f["rule"] for f in facts[name]["findings"] if f["message"].startswith("is laid out")
                    and release in f["message"]]
            assert facts[name]["facts"]["compat"]["targets"][release]["ok"] == loaded, (release, name)
            assert (said == []) == loaded, (release, name, said)
            seen[loaded] += 1
            if release == "debian-12":
                for size in (4096, 16384, 65536):
                    fits = size <= facts[name]["facts"]["loader"]["page_size_max"]
                    assert (loads(root, lib, size) if size != page else loaded) == fits, (name, size)
                policy = facts[name]["facts"]["compat"]["targets"]["manylinux_2_28_aarch64"]
                assert policy["ok"] == loads(root, lib, 65536), (name, policy)
    assert seen[True] and seen[False], seen  # (both outcomes among the releases: Debian 13 refuses 4 KiB)


def test_riscv_loader_refuses_a_library_of_another_float_abi(binaries_built: dict[str, Path], tmp_path: Path) -> None:
    """Debian's riscv64 loader (its cross C library, under qemu-riscv64) runs a program with the lp64d libgreet.so.1
    and refuses it with a copy marked soft-float (lp64) swapped in ("cannot open shared object file": glibc skips
    an object whose EF_RISCV_FLOAT_ABI is not its own); `binlens deps` predicts each, message for message, and the
    lp64 library fails the releases (LNK009: every one is lp64d) and a manylinux policy. Before, deps said the
    loader would start it and the verdicts said it runs."""
    def root_with(lib: str) -> tuple[Path, Path]:
        root = tmp_path / lib
        shutil.copytree("/usr/riscv64-linux-gnu/lib", root / "lib", symlinks=True)
        return root, root / "lib"

    _float_abi_swaps(binaries_built, "usegreet-riscv64", "qemu-riscv64", root_with, "libgreet-riscv64.so",
                     "libgreet-riscv64-lp64.so", ("debian-13", "manylinux_2_31_riscv64"))


def test_musl_page_size_verdicts_equal_its_loader(fixtures_built: dict[str, Path], binaries_built: dict[str, Path],
                                                  tmp_path: Path) -> None:
    """The same for musl: Debian's musl loader for arm64 (under qemu-aarch64 -p) runs a program over a libgreet.so.1
    laid out for 4 KiB pages at 4 KiB and crashes at 64 KiB (musl maps it without asking, wrongly), and runs the
    one laid out for 64 KiB at both; a musllinux policy, whose wheels install on every musl system of the
    architecture, fails exactly the one that crashes (LNK016; before, it was ok)."""
    root = tmp_path / "root"
    subprocess.run(["dpkg-deb", "-x", str(fixtures_built["musl-arm64.deb"]), str(root)], check=True)
    prog = binaries_built["usegreet-aarch64-musl"]
    for name in ("libgreet-aarch64-musl-4k.so", "libgreet-aarch64-musl.so"):
        lib = binaries_built[name]
        shutil.copyfile(lib, root / "lib" / "libgreet.so.1")
        runs = {}
        for page in (4096, 65536):
            ran = subprocess.run(["qemu-aarch64", "-p", str(page), "-L", str(root), "-E",
                                  f"LD_LIBRARY_PATH={root}/lib", str(prog)], capture_output=True, text=True, timeout=60)
            runs[page] = ran.returncode == 0 and ran.stdout == "hello, world\n"
            assert runs[page] or ran.returncode < 0, ran  # (or killed by a signal: the crash)
        assert runs[4096], name
        scan = run_binlens("scan", "--format", "json", "--no-cache", "--target", "musllinux_1_2", str(lib))
        findings = [f["rule"] for f in json.loads(scan.stdout)["artifacts"][0]["findings"]]
        assert (findings == []) == runs[65536] and findings in ([], ["LNK016"]), (name, findings)
        if name.endswith("-4k.so"):
            assert not runs[65536], name


def test_segment_alignment_verdicts_equal_each_releases_loader(fixtures_built: dict[str, Path],
                                                               binaries_built: dict[str, Path],
                                                               tmp_path: Path) -> None:
    """libgreet with its PT_LOADs' p_align claiming 64 KiB while their layout keeps 4 KiB (a segment patchelf 0.18
    adds), under the program linked against it: each Debian release's own loader runs it or refuses it ("ELF load
    command address/offset not properly aligned": glibc before 2.35, Debian 11), and binlens says a release runs
    it exactly when its loader does (LNK017), `deps --sysroot` over the release's tree predicts the loader's
    message (or none), and the manylinux policies below manylinux_2_35 fail it; the library as linked runs
    everywhere. Before, it ran on debian-8+, and deps said the loader would start it."""
    prog = binaries_built["usegreet"]
    lib = binaries_built["libgreet-palign.so.1"]
    r = run_binlens("scan", "--format", "json", "--no-cache", "--fail-on", "never", "--target", "manylinux_2_17",
                    "--target", "manylinux_2_35", *(a for rel in RELEASES for a in ("--target", rel)), str(lib))
    (entry,) = json.loads(r.stdout)["artifacts"]
    targets = entry["facts"]["compat"]["targets"]
    refused = set()
    for release in RELEASES:
        loader, path = loader_of(release_root(fixtures_built, release, "amd64"))
        for name in ("libgreet-palign.so.1", "libgreet-runpath.so.1"):
            (tmp_path / name).mkdir(exist_ok=True)
            shutil.copyfile(binaries_built[name], tmp_path / name / "libgreet.so.1")
            ran = subprocess.run([str(loader), "--library-path", f"{tmp_path / name}:{path}", str(prog)],
                                 capture_output=True, text=True, timeout=60)
            if name == "libgreet-runpath.so.1":
                assert ran.returncode == 0 and ran.stdout == "hello, world\n", (release, ran)
                continue
            if ran.returncode != 0:
                assert "libgreet.so.1: ELF load command address/offset not properly aligned" in ran.stderr, ran
                refused.add(release)
            said = [p for p in targets[release]["problems"] if p["kind"] == "segment-alignment"]
            assert (not said) == (ran.returncode == 0) and targets[release]["ok"] == (ran.returncode == 0), release
            root = tmp_path / release  # (deps over the release's tree with the library in its multiarch directory)
            shutil.copytree(release_root(fixtures_built, release, "amd64"), root, symlinks=True)
            shutil.copyfile(lib, root / "lib" / "x86_64-linux-gnu" / "libgreet.so.1")
            deps = run_binlens("deps", "--sysroot", str(root), "--format", "json", str(prog))
            predicted = json.loads(deps.stdout)["artifacts"][0]["facts"]["deps"]["loader_errors"]
            assert predicted[:1] == ran.stderr.splitlines()[:1], (release, predicted, ran.stderr)
    assert refused and refused != set(RELEASES), refused  # (both outcomes: Debian 11's glibc 2.31 refuses it)
    assert [f["rule"] for f in entry["findings"] if "manylinux" in f["message"]] == ["LNK017"]
    assert targets["manylinux_2_35"]["ok"] and not targets["manylinux_2_17"]["ok"], targets
