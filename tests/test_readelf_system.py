"""binlens' ELF facts equal readelf's on a deterministic sample of the machine's own binaries."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import system_elf_sample
from elfcompare import assert_matches_readelf
from groundtruth import readelf, readelf_path

from analyzer.pipeline import analyze_file

pytestmark = pytest.mark.skipif(readelf_path() is None, reason="binutils readelf not installed")

SAMPLE = system_elf_sample()


@pytest.mark.parametrize("path", SAMPLE, ids=SAMPLE)
def test_system_binary_matches_readelf(path: str) -> None:
    (entry,) = analyze_file(path)
    assert entry["error"] is None
    assert_matches_readelf(entry["facts"], readelf(path))


def test_sample_is_large_enough() -> None:
    assert len(SAMPLE) >= 200


def test_version_definitions_and_defined_symbols_match_readelf() -> None:
    """The reader's .gnu.version_d and defined .dynsym entries, for the coming loader model."""
    import glob
    import os
    import re
    import subprocess

    from analyzer import load

    # the host's own libraries first, then other multiarch directories; each file once
    host = sorted(glob.glob("/usr/lib/x86_64-linux-gnu/lib*.so.*"))
    candidates = list(dict.fromkeys(host + sorted(glob.glob("/usr/lib/*-linux-gnu/lib*.so.*"))))
    files = [p for p in candidates if os.path.isfile(p) and not os.path.islink(p)]
    libs = files[:: max(1, len(files) // 60)][:60]  # spread over the alphabet, each file once
    checked = 0
    for path in libs:
        out = subprocess.run(["readelf", "-VW", "--dyn-syms", path], capture_output=True, text=True).stdout
        expected = re.findall(
            r"^\s*(?:0x)?[0-9a-f]+: Rev: \d+\s+Flags: (\S+)\s+Index: (\d+)\s+Cnt: \d+\s+Name: (\S+)", out, re.M
        )
        elf = load.open_artifacts(path)[0].binary
        got = [(d.index, d.names[0]) for d in elf.version_defs]
        assert got == [(int(i), n) for _, i, n in expected], path
        dynsyms = out.split("Symbol table '.dynsym'", 1)[-1].split("\n\n", 1)[0]
        rows = [line.split() for line in dynsyms.splitlines() if re.match(r"^\s*\d+: ", line)]
        defined = [r[7].split("@")[0] for r in rows[1:] if len(r) >= 8 and r[6] != "UND"]
        mine = [s.name for s in elf.dynamic_symbols() if s.st_shndx != 0]
        assert mine == defined, path
        checked += bool(expected)
    assert checked >= 10  # 19 of the 60 on a Debian 12 machine define versions


def _file_kind(path: str, out: str) -> str:
    """binlens' `kind` for what file(1) printed."""
    for words, kind in (("pie executable", "pie-executable"), ("shared object", "shared-library"),
                        ("relocatable", "relocatable"), ("executable", "executable")):  # fmt: skip
        if words in out:
            return kind
    pytest.fail(f"{path}: file(1) says {out.strip()!r}, which this test does not know")


def test_debug_companions_are_read_as_file_and_readelf_read_them(tmp_path: Path) -> None:
    """`objcopy --only-keep-debug` files (what -dbgsym packages put under /usr/lib/debug/.build-id):
    the program headers stay, the contents of PT_INTERP and PT_DYNAMIC do not."""
    import subprocess

    checked = 0
    for path in ["/bin/ls", *SAMPLE[::25]]:
        companion = tmp_path / (Path(path).name + ".debug")
        if subprocess.run(["objcopy", "--only-keep-debug", path, str(companion)]).returncode != 0:
            continue
        (entry,) = analyze_file(str(companion))
        assert entry["error"] is None, entry["error"]
        facts = entry["facts"]
        out = subprocess.run(["file", "-b", str(companion)], capture_output=True, text=True).stdout
        assert facts["kind"] == _file_kind(str(companion), out), (path, out)
        assert facts["interpreter"] == readelf(str(companion)).interpreter, path
        # no linkage (a static program's companion too, though `file` calls it "statically linked"): not run
        assert facts["linkage"] is None and facts["needed"] == [] and facts["libc"] is None, path
        checked += 1
    assert checked >= 10


def _elfclassify(path: str | Path, what: str) -> bool:
    import subprocess

    return subprocess.run(["eu-elfclassify", f"--{what}", str(path)]).returncode == 0


def _qemu_core(where: Path) -> Path:
    """A core dump of a real process: static busybox under qemu-user, which writes the guest's core itself
    (`qemu_<program>_<date>-<pid>.core` in its directory), whatever the kernel's core_pattern."""
    import resource
    import subprocess

    soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    if hard == 0:
        pytest.skip("core dumps are forbidden here (RLIMIT_CORE hard limit 0)")
    # (the guest's core is 10 MB; qemu then dies of the signal itself, and the kernel may write qemu's core
    # beside it under core_pattern "core": bounded too)
    limit = 64 << 20 if hard == resource.RLIM_INFINITY else min(hard, 64 << 20)

    def allow() -> None:
        resource.setrlimit(resource.RLIMIT_CORE, (limit, hard))

    done = subprocess.run(["qemu-x86_64", "/bin/busybox", "sh", "-c", "kill -SEGV $$"], cwd=where,
                          preexec_fn=allow, capture_output=True)
    assert done.returncode == -11, done
    for host in where.glob("core*"):
        host.unlink()
    (core,) = where.glob("qemu_busybox_*.core")
    return core


def test_what_does_not_run_is_what_eu_elfclassify_does_not_load(tmp_path: Path,
                                                               binaries_built: dict[str, Path]) -> None:
    """`linkage` is null exactly for the files elfutils' `eu-elfclassify --loadable` says are not loadable —
    system programs and libraries, debug-info companions of dynamic and static programs, object files, a core
    dump — and such a file is said to run nowhere (before, a core dump, an object file and every companion got
    "runs on ubuntu-18.04+, debian-8+, ...", a static program's companion was "static" with glibc, and a
    kernel-written core's RWX mapping was an HRD007 error)."""
    import json
    import subprocess

    from conftest import run_binlens

    files: list[Path] = [Path(p) for p in SAMPLE[::6]]
    for path in ["/bin/busybox", "/bin/ls", *SAMPLE[3::25]]:  # busybox: Debian's static build
        companion = tmp_path / (Path(path).name + ".debug")
        subprocess.run(["objcopy", "--only-keep-debug", path, str(companion)], check=True)
        files.append(companion)
    files += [binaries_built[n] for n in ("obj-gcc-x86_64.o", "obj-aarch64.o", "obj-gxx-types.o")]
    files.append(_qemu_core(tmp_path))
    done = run_binlens("scan", *map(str, files), "--format", "json", "--fail-on", "never", "--no-cache")
    assert done.returncode == 0, done.stderr
    entries = {e["path"]: e for e in json.loads(done.stdout)["artifacts"]}
    kinds = set()
    for path in files:
        e = entries[str(path)]
        assert e["error"] is None, (path, e["error"])
        facts, loads = e["facts"], _elfclassify(path, "loadable")
        assert (facts["linkage"] is not None) == loads, (path, facts["linkage"])
        if loads:
            assert facts["compat"]["oldest"] or facts["glibc_component"], path  # (glibc's own: no release)
            continue
        kinds.add("companion" if path.suffix == ".debug" else facts["kind"])
        assert facts["compat"]["oldest"] == {} and facts["libc"] is None, path
        assert _elfclassify(path, "core") == (facts["kind"] == "core"), path
        if facts["kind"] == "core":
            assert "hardening" not in facts and not e["findings"], path
    assert kinds == {"companion", "relocatable", "core"}
    nowhere = [str(p) for p in files if entries[str(p)]["facts"]["linkage"] is None]
    text = run_binlens("scan", *nowhere, "--no-cache").stdout
    assert "runs on" not in text and text.count("verdict") == len(nowhere), text


def test_kind_and_linkage_match_file() -> None:
    """`file`, another tool's reading of the same headers, names the kind of object and its linkage."""
    import shutil
    import subprocess

    if shutil.which("file") is None:
        pytest.skip("file not installed")
    import hashlib

    from groundtruth import tool_output

    # `file -b`'s answers kept in the fixture cache under each file's digest, file's and its magic database's
    magic = Path("/usr/share/misc/magic.mgc")
    db = hashlib.sha256(magic.read_bytes()).hexdigest()[:12] if magic.exists() else "none"
    checked = 0
    for path in SAMPLE:
        facts = analyze_file(path)[0]["facts"]
        out = tool_output(f"file-b-{db}", ("file",), path,
                          lambda p: subprocess.run(["file", "-b", p], capture_output=True, text=True).stdout)
        if facts["kind"] == "pie-executable" and "shared object" in out:
            # libmagic says "pie executable" only with DF_1_PIE; a program linked without the flag (an
            # interpreter, no SONAME: docs/json-report.md `kind`) is still a program to binlens
            assert facts["interpreter"] and facts["soname"] is None, path
            assert not facts["loader"]["dt_flags_1"] & 0x08000000, path
        else:
            assert facts["kind"] == _file_kind(path, out), path
        if not facts["loader"]["dynamic_in_file"]:  # a debug-info companion: `file` still says "dynamically"
            assert facts["linkage"] is None and "with debug_info" in out, path
            continue
        for words, linkage in (("static-pie linked", "static-pie"), ("statically linked", "static"),
                               ("dynamically linked", "dynamic")):  # fmt: skip
            if words in out:
                pie = bool(facts["loader"]["dt_flags_1"] & 0x08000000)
                if linkage == "static-pie" and not pie:
                    # libmagic calls any interpreter-less ET_DYN with a DT_FLAGS_1 entry static-pie,
                    # plugins that need nothing among them; binlens asks for DF_1_PIE, as the linker
                    # writes it for -static-pie
                    assert facts["linkage"] == "dynamic" and not facts["needed"], path
                else:
                    assert facts["linkage"] == linkage, path
                checked += 1
                break
    assert checked >= 200


def test_glibc_components_are_what_debian_builds_from_glibc(binaries_built: dict[str, Path]) -> None:
    """`glibc_component` is true of every ELF object that needs GLIBC_PRIVATE in the packages Debian builds from
    its glibc source (libc6: libc, libm, the NSS and iconv modules; libc-bin: getent, iconv, pldd; the i386 and
    x32 C libraries...), and of no other object that needs it (a program built here that reads
    __libc_enable_secure): dpkg says which files are glibc's. Those components raise no SYM005 (their own build's
    libc meets the need) and no release is said to run them; the program does."""
    import os
    import subprocess

    from analyzer import pipeline
    from analyzer.policy import config
    from analyzer.report import verdict

    installed = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${source:Package}\n"], capture_output=True,
                               text=True, check=True).stdout.splitlines()  # fmt: skip
    built = sorted(line.split()[0] for line in installed if line.split()[1:] == ["glibc"])
    assert {"libc6", "libc-bin"} <= set(built)
    listed = subprocess.run(["dpkg", "-L", *built], capture_output=True, text=True, check=True).stdout.split("\n")
    ours = {os.path.realpath(p) for p in listed if os.path.isfile(p)}
    request = pipeline.Request.for_policy(config.build_policy(config.Config()))
    seen = {True: 0, False: 0}
    # and libraries of other sources that define GLIBC nodes too (gprofng's interposers, which binutils brings;
    # libxcrypt's libcrypt.so.1): not glibc's
    others = subprocess.run(["dpkg", "-L", "libgprofng0", "libcrypt1"], capture_output=True, text=True,
                            check=True).stdout.split("\n")  # fmt: skip
    candidates = sorted(ours) + SAMPLE + [p for p in others if os.path.isfile(p)] + \
        [str(binaries_built["c-glibc-private"])]
    foreign_nodes = 0
    for path in dict.fromkeys(os.path.realpath(p) for p in candidates):
        with open(path, "rb") as fh:
            if fh.read(4) != b"\x7fELF":
                continue
        (entry,) = [pipeline.finish(e, request).entry for e in pipeline.analyze_file(path, request)]
        facts = entry["facts"]
        if "GLIBC_PRIVATE" not in facts["version_unnumbered"]:  # (glibc's own or not: no private need to meet,
            # but for the loader, which defines the private interface)
            assert facts["glibc_component"] == ("GLIBC_PRIVATE" in facts["version_definitions"]), path
            assert not facts["glibc_component"] or path in ours, path
            foreign_nodes += path not in ours and any(n.startswith("GLIBC_2") for n in facts["version_definitions"])
            continue
        assert facts["glibc_component"] == (path in ours), path
        assert bool([f for f in entry["findings"] if f["rule"] == "SYM005"]) == (path not in ours), path
        # no release is said to run it: only the C library of its own build does
        assert (verdict(facts) == "part of glibc: runs only with the C library of its own build") == (path in ours)
        seen[path in ours] += 1
    assert seen[True] > 200 and seen[False] >= 1, seen  # (libc6's shared objects and iconv modules; the program)
    assert foreign_nodes >= 2  # (libcrypt.so.1 and gprofng's libraries define GLIBC nodes)
