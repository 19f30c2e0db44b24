"""manylinux targets apply the whole PEP 600 policy as auditwheel does (versions per namespace, the library
whitelist, blacklisted symbols, the x86-64 baseline, libraries bundled beside the binary): the best policy
binlens finds equals what `auditwheel show` says, for every Linux fixture wrapped in a wheel and for a real
wheel whose extensions load libraries bundled through $ORIGIN."""

from __future__ import annotations

import re
import tempfile
import zipfile
from pathlib import Path

import pytest
from conftest import run_binlens, starts_with
from groundtruth import AUDITWHEEL_ARCH, auditwheel_tag, wheel_of

from analyzer import pipeline
from analyzer.errors import AnalyzerError
from analyzer.policy import compat, config

POLICIES = compat.table()["manylinux"]


MUSL = "musllinux_1_2"  # (auditwheel's one musllinux policy since 6.2; it takes a binary for musl only when it
# needs musl's C library by Alpine's name, libc.musl-ARCH.so.1: one needing musl's own name, libc.so, as zig links
# it, which musl's loader answers for, auditwheel calls "linux")


def _request() -> pipeline.Request:
    cfg = config.Config()
    cfg.set("targets", [*POLICIES, MUSL])
    return pipeline.Request.for_policy(config.build_policy(cfg))


def _passing(entry: dict, arch: str, but: tuple[str, ...] = ()) -> set[str]:
    """The policies the entry holds for binlens (problems of the kinds `but` not counted)."""
    alpine = any(n.startswith("libc.musl-") for n in entry["facts"].get("needed", ()))
    return {t for t, v in entry["facts"]["compat"]["targets"].items() if all(p["kind"] in but for p in v["problems"])
            and (alpine if t == MUSL else arch in POLICIES[t]["arches"])}


def _best(passing: set[str]) -> str:
    """The policy auditwheel would pick among those satisfied: the highest priority (the oldest manylinux one),
    else the musllinux one."""
    many = passing - {MUSL}
    return max(many, key=lambda t: POLICIES[t]["priority"]) if many else MUSL if MUSL in passing else "linux"


def test_best_policy_equals_auditwheel_on_every_fixture(binaries_built: dict[str, Path], tmp_path: Path) -> None:
    request = _request()
    compared = set()
    for name, path in binaries_built.items():
        if not starts_with(path, b"\x7fELF"):
            continue
        (entry, *_) = pipeline.analyze_file(str(path), request)
        facts = entry["facts"]
        if facts["arch"] not in AUDITWHEEL_ARCH or facts["os"]["name"] not in ("linux", "unknown"):
            continue
        if facts["kind"] == "relocatable":
            continue
        if facts["linkage"] == "dynamic" and not facts["needed"]:
            continue  # links no libc at all: auditwheel refuses it ("couldn't detect libc")
        if facts["arch"] == "aarch64" and "libc.so" in facts["needed"]:
            continue  # (musl's own name, as zig links it: auditwheel's lddtree, searching this machine's library
            # directories for it, opens glibc's libc.so there, a linker script, and stops with ELFError)
        arch = AUDITWHEEL_ARCH[facts["arch"]]
        expected = auditwheel_tag(wheel_of(path, arch, tmp_path))
        # what auditwheel does not read: PT_INTERP (a program asking for a loader no manylinux system has, a Nix
        # store's, holds its policy there: LNK014, checked against the kernel and the releases' own packages in
        # test_distros), and Go's GOAMD64 (it reads the GNU property note, which Go does not write: LNK008,
        # checked against the Go runtime under qemu's CPUs in test_go), and a layout for smaller pages than the
        # architecture's kernels use (LNK016, checked against glibc's loader under qemu's page sizes in
        # test_distros), nor a p_align the layout does not keep (LNK017, checked against each Debian release's
        # loader in test_distros) — the same otherwise
        unread = tuple(k for k in ("interpreter", "isa", "page-size", "segment-alignment")
                       if any(p["kind"] == k for p in facts["compat"]["problems"])
                       and (k != "isa" or not facts["elf"]["x86_isa_needed"]))
        if unread:
            # (every policy fails, but those from manylinux_2_35 for a p_align glibc 2.35 no longer checks)
            floor = compat._vkey("2.35") if unread == ("segment-alignment",) else (999,)
            assert all(compat._vkey(compat.resolve_cached(t).glibc or "0") >= floor for t in _passing(entry, arch))
            assert _best(_passing(entry, arch, unread)) == expected, name
            compared.update(unread)
            continue
        assert _best(_passing(entry, arch)) == expected, (name, facts["compat"]["problems"][:3])
        compared.add(expected)
    # the comparison covers passing and failing verdicts
    assert "linux" in compared and len(compared) >= 5, compared


def test_bundled_libraries_of_a_real_wheel(fixtures_built: dict[str, Path], tmp_path: Path) -> None:
    """numpy's extensions need libscipy_openblas and libgfortran from numpy.libs/ ($ORIGIN RPATH): auditwheel
    counts them as bundled, and so does binlens when it finds them beside the extension."""
    wheel = fixtures_built["numpy-2.2.6-cp311-cp311-manylinux_2_17_x86_64.whl"]
    expected = auditwheel_tag(wheel)
    tree = tmp_path / "unpacked"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(tree)
    request = _request()
    members = [p for p in tree.rglob("*.so") if starts_with(p, b"\x7fELF") and ".libs" not in p.parts[-2]]
    assert members
    passing = set(POLICIES)
    bundled_seen = False
    for member in members:
        (entry,) = pipeline.analyze_file(str(member), request)
        passing &= _passing(entry, "x86_64")
        bundled_seen |= any(".libs" in lib for lib in entry["facts"]["needed"]) or bool(entry["facts"]["rpath"])
    assert bundled_seen
    assert _best(passing) == expected


def _retagged(wheel: Path, tag: str, where: Path) -> Path:
    """The wheel with the same files under another platform tag: in its name (what pip reads) and its WHEEL."""
    out = where / wheel.name.replace(wheel.stem.rsplit("-", 1)[1], tag)
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith(".dist-info/WHEEL"):
                data = b"".join(b"Tag: py3-none-" + tag.encode() + b"\n" if line.startswith(b"Tag:") else line
                                for line in data.splitlines(keepends=True))
            dst.writestr(info, data)
    return out


TAGGED = ["c-x86_64-gnu.2.17", "c-x86_64-gnu.2.28", "c-x86_64-gnu.2.34", "cpp-x86_64-gxx", "c-x86_64-zlib",
          "c-x86_64-v3", "c-aarch64-gnu.2.17", "c-i386-gnu.2.17", "usegreet", "musl-app"]


def test_a_wheels_platform_tags_are_checked_as_auditwheel_would(binaries_built: dict[str, Path],
                                                                tmp_path: Path) -> None:  # fmt: skip
    """A wheel's platform tag is where pip installs it: every binary in it is checked against its tags. A program
    wrapped in a wheel tagged with the policy `auditwheel show` says it is consistent with passes; tagged with the
    policy just older (one auditwheel says it is not consistent with), or with a manylinux tag when auditwheel
    finds none, it fails the gate with the reasons; tagged for another architecture, too."""
    oldest_first = sorted(POLICIES, key=lambda t: -POLICIES[t]["priority"])
    checked = set()
    for name in TAGGED:
        path = binaries_built[name]
        (entry,) = pipeline.analyze_file(str(path), _request())
        arch = AUDITWHEEL_ARCH[entry["facts"]["arch"]]
        where = tmp_path / name
        where.mkdir()
        expected = auditwheel_tag(wheel_of(path, arch, where))
        if expected in POLICIES:
            at = oldest_first.index(expected)
            cases = [(expected, arch, True)] + ([(oldest_first[at - 1], arch, False)] if at else [])
        else:  # "linux" (no policy), or a musllinux one: no manylinux tag holds
            cases = [("manylinux_2_28", arch, False)]
            if expected.startswith("musllinux"):
                cases.append((expected, arch, True))
        # the newest policy holds when the consistent one does; another architecture's tag never does
        cases.append(("manylinux_2_39", arch, expected in POLICIES) if arch == "x86_64" else
                     (expected if expected in POLICIES else "manylinux_2_39", "x86_64", False))
        for policy, tag_arch, holds in cases:
            tag = f"{policy}_{tag_arch}"
            wheel = _retagged(wheel_of(path, arch, where), tag, where)
            (member,) = [r.entry for r in pipeline.scan([str(wheel)], pipeline.Request.for_policy(
                config.build_policy(config.Config())), jobs=1)]
            verdict = member["facts"]["compat"]["targets"][tag]
            assert verdict["ok"] == holds, (name, expected, tag, verdict["problems"][:2])
            failed = [f for f in member["findings"] if f["evidence"].get("wheel_tag") == tag]
            assert bool(failed) != holds and all(f["severity"] == "error" for f in failed), (name, tag, failed)
            # the same tag named as a target (as auditwheel's --plat takes it): the same verdict for the program
            cfg = config.Config()
            cfg.set("targets", [tag])
            request = pipeline.Request.for_policy(config.build_policy(cfg))
            if tag_arch not in POLICIES[policy]["arches"]:  # a tag no wheel can have: refused, the arches named
                with pytest.raises(AnalyzerError, match=f"{policy} has no architecture {tag_arch} "):
                    pipeline.analyze_file(str(path), request)
                continue
            (plain,) = pipeline.analyze_file(str(path), request)
            target = plain["facts"]["compat"]["targets"][tag]
            assert target["ok"] == holds, (name, tag, target["problems"][:2])
            assert ({p["kind"] for p in target["problems"]} == {"arch"}) == (tag_arch != arch), (name, tag)
            checked.add((holds, policy == expected, tag_arch == arch))
    assert checked >= {(True, True, True), (False, False, True), (False, True, False)}, checked


@pytest.mark.parametrize("name", ["numpy-2.2.6-cp311-cp311-manylinux_2_17_x86_64.whl",
                                  "numpy-2.2.6-cp311-cp311-manylinux_2_17_aarch64.whl"])
def test_a_real_wheel_keeps_its_tags_promise(fixtures_built: dict[str, Path], name: str) -> None:
    """numpy's wheels as PyPI serves them, scanned as they are: auditwheel says each is consistent with its
    tag, and every binary in it holds the tag — the libraries its extensions load from numpy.libs/ through
    $ORIGIN counted as bundled, as auditwheel counts them, found among the wheel's own members."""
    wheel = fixtures_built[name]
    tag = wheel.name[:-4].rsplit("-", 1)[1]
    assert auditwheel_tag(wheel) == "manylinux_2_17" and tag in ("manylinux_2_17_x86_64", "manylinux_2_17_aarch64")
    entries = [r.entry for r in pipeline.scan([str(wheel)], pipeline.Request.for_policy(
        config.build_policy(config.Config())), jobs=1)]
    for e in entries:
        assert not [f for f in e["findings"] if f["severity"] == "error"], e["path"]
        if e["facts"]["kind"] == "relocatable":  # objects of a static library: not loaded, as auditwheel skips them
            assert tag not in e["facts"]["compat"]["targets"], e["path"]
            continue
        assert e["facts"]["compat"]["targets"][tag]["ok"], (e["path"], e["facts"]["compat"]["problems"][:2])
    assert sum(e["facts"]["kind"] != "relocatable" for e in entries) > 20
    assert any(lib.startswith("libscipy_openblas") and lib not in POLICIES["manylinux_2_17"]["lib_whitelist"]
               for e in entries for lib in e["facts"].get("needed", ()))


def test_weak_references_are_optional_as_auditwheel_counts_them(fixtures_built: dict[str, Path]) -> None:
    """A Rust extension as PyPI serves it (bcrypt, built by maturin for manylinux2014): Rust's standard library
    references glibc 2.18's __cxa_thread_atexit_impl weakly (readelf: WEAK, UND, no version), which the
    manylinux_2_5 to _2_17 policies blacklist. auditwheel does not count a weak reference (optional: resolved
    only where libc has it) and says the wheel is consistent with its tag; binlens failed every such wheel (ruff,
    uv, cryptography, tokenizers...) with SYM008. Now it holds the tag, as auditwheel says."""
    import subprocess

    wheel = fixtures_built["bcrypt-5.0.0-cp39-abi3-manylinux2014_x86_64.manylinux_2_17_x86_64.whl"]
    assert auditwheel_tag(wheel) == "manylinux_2_17"
    with zipfile.ZipFile(wheel) as z, tempfile.TemporaryDirectory() as tmp:
        (ext,) = [n for n in z.namelist() if n.endswith(".so")]
        z.extract(ext, tmp)
        syms = subprocess.run(["readelf", "-W", "--dyn-syms", f"{tmp}/{ext}"], capture_output=True, text=True,
                              check=True).stdout
    assert re.search(r"NOTYPE\s+WEAK\s+DEFAULT\s+UND __cxa_thread_atexit_impl$", syms, re.M), syms
    assert "__cxa_thread_atexit_impl" in POLICIES["manylinux_2_17"]["blacklist"]["libc.so.6"]
    (entry,) = [r.entry for r in pipeline.scan([str(wheel)], pipeline.Request.for_policy(
        config.build_policy(config.Config())), jobs=1)]
    assert entry["path"].endswith(ext)
    tags = [t for t in entry["facts"]["compat"]["targets"] if t.startswith("manylinux")]
    assert tags and all(entry["facts"]["compat"]["targets"][t]["ok"] for t in tags), entry["facts"]["compat"]
    assert not [f for f in entry["findings"] if f["severity"] == "error"], entry["findings"]


def _bundled_wheel(ext: Path, a: Path, b: Path, where: Path, m: Path | None = None) -> Path:
    """pkg/ext.cpython-311-x86_64-linux-gnu.so and its bundled pkg.libs/libwa.so and libwb.so (and libwm.so, `m`),
    tagged manylinux_2_17_x86_64."""
    import base64
    import hashlib

    files = {"pkg/ext.cpython-311-x86_64-linux-gnu.so": ext.read_bytes(), "pkg.libs/libwa.so": a.read_bytes(),
             "pkg.libs/libwb.so": b.read_bytes(), **({"pkg.libs/libwm.so": m.read_bytes()} if m else {}),
             "pkg-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: binlens-tests\nRoot-Is-Purelib: false\n"
                                        b"Tag: cp311-cp311-manylinux_2_17_x86_64\n",
             "pkg-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: pkg\nVersion: 1.0\n"}
    digest = {p: base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b"=").decode() for p, d in files.items()}
    record = "".join(f"{p},sha256={digest[p]},{len(d)}\n" for p, d in files.items()) + "pkg-1.0.dist-info/RECORD,,\n"
    where.mkdir()
    out = where / "pkg-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"
    with zipfile.ZipFile(out, "w") as z:
        for p, d in [*files.items(), ("pkg-1.0.dist-info/RECORD", record.encode())]:
            z.writestr(zipfile.ZipInfo(p, date_time=(1980, 1, 1, 0, 0, 0)), d)
    return out


def test_a_bundled_librarys_siblings_load_through_the_rpath_of_what_loads_it(binaries_built: dict[str, Path],
                                                                              tmp_path: Path) -> None:
    """A wheel's bundled library with no RPATH of its own that needs a sibling (scipy's libgfortran needing its
    libquadmath): the loader finds the sibling through the DT_RPATH of the extension module that loads the
    library (`ld.so --list` of the extension), and auditwheel says the wheel is consistent with its tag. binlens
    failed the library ("needs libquadmath..., which manylinux_2_27 does not allow"), so scipy's wheel. Loaded
    through a DT_RUNPATH instead (not searched for what the library needs), the sibling is not found: the loader
    says so, and so does binlens (auditwheel, which takes any library in the wheel as found, does not)."""
    import subprocess

    a, b = binaries_built["libwa-bundled.so"], binaries_built["libwb-bundled.so"]
    policy = pipeline.Request.for_policy(config.build_policy(config.Config()))
    for dtag, loads in (("rpath", True), ("runpath", False)):
        wheel = _bundled_wheel(binaries_built[f"ext-{dtag}.so"], a, b, tmp_path / dtag)
        tree = tmp_path / f"{dtag}-tree"
        with zipfile.ZipFile(wheel) as z:
            z.extractall(tree)
        listed = subprocess.run(["/lib64/ld-linux-x86-64.so.2", "--list",
                                 str(tree / "pkg/ext.cpython-311-x86_64-linux-gnu.so")], capture_output=True, text=True)
        found = re.search(r"libwb\.so => (\S+)", listed.stdout)
        assert bool(found and found[1].endswith("pkg.libs/libwb.so")) == loads, listed.stdout + listed.stderr
        if loads:  # (consistent with its tag, or with an older policy, which holds it too)
            consistent = auditwheel_tag(wheel)
            assert POLICIES[consistent]["priority"] >= POLICIES["manylinux_2_17"]["priority"], consistent
        entries = {r.entry["path"].split("!", 1)[1]: r.entry for r in pipeline.scan([str(wheel)], policy, jobs=1)}
        assert set(entries) == {"pkg/ext.cpython-311-x86_64-linux-gnu.so", "pkg.libs/libwa.so", "pkg.libs/libwb.so"}
        verdicts = {n: e["facts"]["compat"]["targets"]["manylinux_2_17_x86_64"] for n, e in entries.items()}
        assert verdicts["pkg.libs/libwa.so"]["ok"] == loads, verdicts["pkg.libs/libwa.so"]
        assert verdicts["pkg/ext.cpython-311-x86_64-linux-gnu.so"]["ok"] and verdicts["pkg.libs/libwb.so"]["ok"]
        if not loads:
            assert [p["library"] for p in verdicts["pkg.libs/libwa.so"]["problems"]] == ["libwb.so"]


def test_bundled_libraries_load_through_the_rpath_of_the_whole_chain_that_loads_them(
        binaries_built: dict[str, Path], tmp_path: Path) -> None:  # fmt: skip
    """Two links deeper (pyproj's wheel: its modules need libproj, which needs libcurl, which needs libnghttp2,
    none of the libraries with a path of its own): the extension module (DT_RPATH $ORIGIN/../pkg.libs) needs
    libwm, libwm needs libwa, libwa needs libwb. The loader looks for libwa's and libwb's in the DT_RPATH of each
    object up the chain that loaded the one asking (`ld.so --list` of the module lists all three in pkg.libs),
    and auditwheel holds the wheel to its tag. binlens failed libwa ("needs libwb.so, which manylinux_2_17 does
    not allow"): it looked one link up only, where libwm has no RPATH. With the module's DT_RUNPATH instead
    (searched for the module's own needs only), libwm's libwa is not found: the loader says so, and binlens
    fails libwm and libwa."""
    import subprocess

    a, b, m = (binaries_built[f"libw{x}-bundled.so"] for x in "abm")
    policy = pipeline.Request.for_policy(config.build_policy(config.Config()))
    for dtag, loads in (("rpath", True), ("runpath", False)):
        wheel = _bundled_wheel(binaries_built[f"ext-deep-{dtag}.so"], a, b, tmp_path / dtag, m)
        tree = tmp_path / f"{dtag}-tree"
        with zipfile.ZipFile(wheel) as z:
            z.extractall(tree)
        listed = subprocess.run(["/lib64/ld-linux-x86-64.so.2", "--list",
                                 str(tree / "pkg/ext.cpython-311-x86_64-linux-gnu.so")], capture_output=True, text=True)
        found = {lib for lib in ("libwm", "libwa", "libwb")
                 if re.search(rf"{lib}\.so => \S+/pkg\.libs/{lib}\.so", listed.stdout)}
        if loads:
            assert found == {"libwm", "libwa", "libwb"}, listed.stdout + listed.stderr
        else:
            assert "libwa.so: cannot open shared object file" in listed.stderr, listed.stdout + listed.stderr
        if loads:
            consistent = auditwheel_tag(wheel)
            assert POLICIES[consistent]["priority"] >= POLICIES["manylinux_2_17"]["priority"], consistent
        entries = {r.entry["path"].split("!", 1)[1]: r.entry for r in pipeline.scan([str(wheel)], policy, jobs=1)}
        verdicts = {n: e["facts"]["compat"]["targets"]["manylinux_2_17_x86_64"] for n, e in entries.items()}
        failed = {n.split("/")[-1]: [p["library"] for p in v["problems"]] for n, v in verdicts.items() if not v["ok"]}
        assert failed == ({} if loads else {"libwm.so": ["libwa.so"], "libwa.so": ["libwb.so"]}), failed


def _minos(path: Path) -> dict[str, tuple[int, ...]]:
    """Per slice (llvm-objdump's arch name), the minimum macOS its LC_BUILD_VERSION or LC_VERSION_MIN_MACOSX
    says, as llvm-objdump prints the load commands."""
    import re
    import subprocess

    out = subprocess.run(["llvm-objdump", "--macho", "--private-headers", "--arch=all", str(path)],
                         capture_output=True, text=True, check=True).stdout
    found: dict[str, tuple[int, ...]] = {}
    arch, cmd = "thin", ""
    for line in out.splitlines():
        if m := re.search(r"\(architecture (\w+)\)", line):
            arch = m[1]
        if m := re.match(r"\s+cmd (\w+)$", line):
            cmd = m[1]
        m = re.match(r"\s+(minos|version) (\d+(?:\.\d+)*)$", line)
        if m and (cmd, m[1]) in (("LC_BUILD_VERSION", "minos"), ("LC_VERSION_MIN_MACOSX", "version")):
            found.setdefault(arch, tuple(int(x) for x in m[2].split(".")))
    return found


MAC_HOSTS = [(10, v) for v in range(9, 17)] + [(m, 0) for m in range(11, 17)]


@pytest.mark.parametrize("name,slices", [("c-aarch64-macos", {"arm64"}), ("c-x86_64-macos", {"x86_64"}),
                                         ("go-darwin-fat", {"x86_64", "arm64"})])
def test_macos_wheel_tags_are_checked_as_pip_installs_them(binaries_built: dict[str, Path], tmp_path: Path,
                                                           name: str, slices: set[str]) -> None:  # fmt: skip
    """A Mach-O extension in a wheel tagged macosx_X_Y_ARCH keeps the tag's promise when every Mac that pip
    installs the tag on (packaging.tags.mac_platforms: the oracle, over Intel Macs from 10.9 and Apple silicon
    from 11.0 to 16) has its code: a slice of its architecture whose minimum macOS (llvm-objdump) is no newer
    than the Mac's. Else the gate fails (LNK013 for the macOS version, LNK009 for a missing slice)."""
    from packaging.tags import mac_platforms

    path = binaries_built[name]
    minos = _minos(path)
    floor = {a: minos.get(a, minos.get("thin")) for a in slices}
    assert all(floor.values()), minos
    policy = config.build_policy(config.Config())
    verdicts = set()
    for version in ((10, 9), (11, 0), (12, 0), (13, 0), (14, 0), (15, 0), (16, 0)):
        for word in ("arm64", "x86_64", "universal2", "intel"):
            tag = f"macosx_{version[0]}_{version[1]}_{word}"
            installs = [(v, h) for h in ("x86_64", "arm64") for v in MAC_HOSTS
                        if (h == "x86_64" or v >= (11, 0)) and tag in set(mac_platforms(v, h))]
            holds = bool(installs) and all(h in floor and floor[h] <= v for v, h in installs)
            wheel = tmp_path / f"m-1.0-py3-none-{tag}.whl"
            with zipfile.ZipFile(wheel, "w") as z:
                z.writestr("m/_native.so", path.read_bytes())
            entries = [r.entry for r in pipeline.scan([str(wheel)], pipeline.Request.for_policy(policy), jobs=1)]
            got = all(e["facts"]["compat"]["targets"][tag]["ok"] for e in entries)
            assert got == holds, (name, tag, [p for e in entries for p in e["facts"]["compat"]["problems"]])
            rules = {f["rule"] for e in entries for f in e["findings"] if f["evidence"].get("wheel_tag") == tag}
            assert bool(rules) != holds and rules <= {"LNK009", "LNK013"}, (tag, rules)
            verdicts.add((holds, frozenset(rules)))
    assert {v[0] for v in verdicts} == {True, False}, verdicts


def test_windows_wheel_tags_and_formats_a_tag_does_not_load(binaries_built: dict[str, Path],
                                                          tmp_path: Path) -> None:  # fmt: skip
    """win32, win_amd64 and win_arm64 promise the PE machine pip installs them on (packaging.tags' platform of
    each Windows); a PE, Mach-O or ELF file in a wheel whose tags are for another system is not loaded there and
    not checked (a manylinux wheel may carry a Windows launcher)."""
    from packaging.tags import platform_tags  # noqa: F401 - (the tags are named by PEP 425: win32, win_amd64)

    policy = config.build_policy(config.Config())
    machines = {"c-x86_64-windows-gnu.exe": "win_amd64", "c-i386-windows-gnu.exe": "win32"}
    for name, own in machines.items():
        for tag in ("win32", "win_amd64", "win_arm64", "manylinux_2_17_x86_64", "macosx_11_0_x86_64"):
            wheel = tmp_path / f"w-1.0-py3-none-{tag}.whl"
            with zipfile.ZipFile(wheel, "w") as z:
                z.writestr("w/_native.pyd", binaries_built[name].read_bytes())
            (entry,) = [r.entry for r in pipeline.scan([str(wheel)], pipeline.Request.for_policy(policy), jobs=1)]
            targets = (entry["facts"].get("compat") or {}).get("targets", {})
            if tag.startswith("win"):
                assert targets[tag]["ok"] == (tag == own), (name, tag, targets)
                assert bool(entry["findings"]) != (tag == own) and {f["rule"] for f in entry["findings"]} <= {"LNK009"}
            else:
                assert tag not in targets and not entry["findings"], (name, tag, entry["findings"])


def test_a_pex_files_wheels_keep_their_tags_promise(binaries_built: dict[str, Path], tmp_path: Path) -> None:
    """A PEX file carries the wheels pex resolved installed under their file names (`.deps/fx-1.0-py3-none-
    manylinux_2_17_x86_64.whl/fx/...`): their tags say where the PEX file runs, and are checked as the wheel's own.
    A program needing GLIBC_2.34 (auditwheel finds it consistent with a newer policy only), wrapped in a wheel
    tagged manylinux_2_17 and carried in a PEX file (pex 2.105.2 builds it): its verdict for the tag fails with the
    wheel's own reasons and findings — before, a PEX file's members were checked against no tag, and passed."""
    import subprocess
    import sys

    path = binaries_built["c-x86_64-gnu.2.34"]
    assert auditwheel_tag(wheel_of(path, "x86_64", tmp_path)) not in ("linux", "manylinux_2_17")
    tag = "manylinux_2_17_x86_64"
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    wheel = _retagged(wheel_of(path, "x86_64", tmp_path), tag, wheels)
    pex = tmp_path / "app.pex"
    subprocess.run([str(Path(sys.executable).parent / "pex"), "--no-pypi", "-f", str(wheels), "fx", "-o", str(pex),
                    "--python-shebang", "/usr/bin/env python3"], check=True, capture_output=True)
    assert f".deps/{wheel.name}/fx/" in subprocess.run(["unzip", "-l", str(pex)], capture_output=True,
                                                        text=True).stdout  # (pex's layout, as unzip lists it)
    request = pipeline.Request.for_policy(config.build_policy(config.Config()))
    (alone,) = [r.entry for r in pipeline.scan([str(wheel)], request, jobs=1)]
    carried = [r.entry for r in pipeline.scan([str(pex)], request, jobs=1) if f"!.deps/{wheel.name}/" in r.path]
    assert len(carried) == 1
    verdict = carried[0]["facts"]["compat"]["targets"][tag]
    assert not verdict["ok"] and verdict == alone["facts"]["compat"]["targets"][tag]
    tagged = [(f["rule"], f["message"]) for f in carried[0]["findings"] if f["evidence"].get("wheel_tag") == tag]
    assert tagged and tagged == [(f["rule"], f["message"]) for f in alone["findings"]
                                 if f["evidence"].get("wheel_tag") == tag]


def test_musl_time64_table_and_a_32_bit_musl_build(binaries_built: dict[str, Path]) -> None:
    """analyzer/data/musl_time64.json is what scripts/gen_musl_time64.py reads from musl's own headers (every
    __REDIR under _REDIR_TIME64); an i386 program zig builds against musl 1.2 imports clock_gettime by its
    64-bit name (readelf), so it fails musllinux_1_1 (SYM009; before: ok there) and holds musllinux_1_2; an
    x86-64 musl program, whose time was always 64-bit, imports none and holds both."""
    import json
    import subprocess
    import sys

    gen = subprocess.run([sys.executable, str(Path(__file__).parent.parent / "scripts" / "gen_musl_time64.py"),
                          "--check"], capture_output=True, text=True)
    assert gen.returncode == 0, gen.stderr
    prog = binaries_built["c-i386-musl-time64"]
    syms = subprocess.run(["readelf", "-W", "--dyn-syms", str(prog)], capture_output=True, text=True).stdout
    assert " UND __clock_gettime64" in syms, syms
    r = run_binlens("scan", "--format", "json", "--fail-on", "never", "--no-cache", "--target", "musllinux_1_1",
                    "--target", "musllinux_1_2", str(prog), str(binaries_built["musl-app"]))
    new, wide = (a["facts"]["compat"]["targets"] for a in json.loads(r.stdout)["artifacts"])
    assert [p["kind"] for p in new["musllinux_1_1"]["problems"]] == ["musl-version"]
    assert new["musllinux_1_1"]["problems"][0]["symbols"] == ["__clock_gettime64"] and new["musllinux_1_2"]["ok"]
    assert wide["musllinux_1_1"]["ok"] and wide["musllinux_1_2"]["ok"]
