"""7-Zip archives, Microsoft cabinets and ISO 9660 images (read with libarchive, the archives extra) as
containers: every member's facts equal those of the file 7-Zip or cabextract extracts; a type-1 AppImage is
its runtime and its ISO image's files; encrypted, truncated and bomb archives are one line each."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import made_once, run_binlens, unpack_mutants
from tests.test_archives import _entries, _same_facts

TOOLS = {t: shutil.which(t) for t in ("7z", "gcab", "cabextract", "genisoimage")}
pytestmark = pytest.mark.skipif(None in TOOLS.values(), reason="p7zip-full, gcab, cabextract and genisoimage are "
                                                               "in the README's apt-get line")


def _release(binaries_built, root: Path) -> Path:
    """A Windows and Linux release tree: PE programs (64- and 32-bit), an ELF program, a hard link, a text
    file."""
    (root / "bin").mkdir(parents=True)
    (root / "lib").mkdir()
    shutil.copy(binaries_built["go-windows-amd64.exe"], root / "bin" / "tool.exe")
    shutil.copy(binaries_built["c-x86_64-gnu.2.34"], root / "bin" / "tool")
    os.link(root / "bin" / "tool", root / "bin" / "tool-again")
    shutil.copy(binaries_built["c-i386-windows-gnu.exe"], root / "lib" / "helper32.exe")
    (root / "README.txt").write_text("read me\n")
    return root


def _same_as(container: Path, tree: Path) -> int:
    inside = {p.split("!", 1)[1]: e for p, e in _entries([str(container)]).items()}
    plain = {os.path.relpath(p, tree): e for p, e in _entries([str(tree)]).items()}
    assert inside.keys() == plain.keys(), sorted(set(inside) ^ set(plain))
    for k in inside:
        _same_facts(inside[k], plain[k])
    return len(inside)


@pytest.mark.parametrize("method", ["-m0=LZMA2", "-m0=BZip2", "-m0=Deflate", "-m0=Copy", "-m0=BCJ -m1=LZMA"])
def test_7z_members_equal_7zip(binaries_built, tmp_path, method):
    """7-Zip archives of the methods 7-Zip writes for programs (solid LZMA2, BZip2, Deflate, stored, LZMA
    behind the x86 branch filter): members, names and facts equal 7-Zip's own extraction. (PPMd is not here:
    Debian 12's libarchive 3.6.2 calls a solid PPMd block's last member damaged: docs/archives.md.)"""
    src = _release(binaries_built, tmp_path / "src")
    archive = tmp_path / "release.7z"
    subprocess.run(["7z", "a", "-bd", "-bso0", *method.split(), str(archive), "."], cwd=src, check=True)
    out = tmp_path / "out"
    subprocess.run(["7z", "x", "-bd", "-bso0", f"-o{out}", str(archive)], check=True)
    assert _same_as(archive, out) >= 4


@pytest.mark.parametrize("compress", [True, False])
def test_cabinet_members_equal_cabextract(binaries_built, tmp_path, compress):
    """Cabinets (MSZIP-compressed, as gcab and makecab write them, or stored): members equal cabextract's."""
    src = _release(binaries_built, tmp_path / "src")
    cab = tmp_path / "release.cab"
    files = ["bin/tool.exe", "bin/tool", "lib/helper32.exe", "README.txt"]
    subprocess.run(["gcab", "-c", *(["-z"] if compress else []), str(cab), *files], cwd=src, check=True)
    out = tmp_path / "out"
    subprocess.run(["cabextract", "-q", "-d", str(out), str(cab)], check=True)
    assert _same_as(cab, out) == 3  # (the three programs; README.txt is none)


def test_iso_members_equal_7zip_and_type1_appimage(binaries_built, tmp_path):
    """An ISO 9660 image (Rock Ridge and Joliet names): members equal 7-Zip's extraction; a type-1 AppImage
    (its runtime in the image's system area, marked AI\\x01) is its runtime's entry, then the image's files."""
    src = _release(binaries_built, tmp_path / "src")
    iso = tmp_path / "release.iso"
    subprocess.run(["genisoimage", "-quiet", "-R", "-J", "-o", str(iso), str(src)], check=True)
    out = tmp_path / "out"
    subprocess.run(["7z", "x", "-bd", "-bso0", f"-o{out}", str(iso)], check=True)
    assert _same_as(iso, out) >= 4
    runtime = binaries_built["c-rawsys"].read_bytes()
    assert len(runtime) < 32768  # (the system area)
    image = bytearray(iso.read_bytes())
    image[:len(runtime)] = runtime[:8] + b"AI\x01" + runtime[11:]
    app = tmp_path / "Tool.AppImage"
    app.write_bytes(bytes(image))
    entries = _entries([str(app)])
    first = next(iter(entries))
    assert first == str(app) and entries[first]["format"] == "ELF" and entries[first]["error"] is None
    assert {p.split("!", 1)[1] for p in entries if "!" in p} == {os.path.relpath(p, out)
                                                                 for p in _entries([str(out)])}


def test_hostile_libarchive_formats_are_one_line(binaries_built, tmp_path):
    """An encrypted 7z, a truncated one, a cabinet cut short, and a 7z bomb (a program's header, then 1 GiB
    of zeros: 150 KB): one line each, exit 2; in a directory, that archive's error entry."""
    src = _release(binaries_built, tmp_path / "src")
    secret = tmp_path / "secret.7z"
    subprocess.run(["7z", "a", "-bd", "-bso0", "-pSECRET", "-mhe=off", str(secret), "."], cwd=src, check=True)
    r = run_binlens("scan", str(secret))
    assert r.returncode == 2 and r.stderr.startswith(f"binlens: {secret}: encrypted 7-Zip archive (") and \
        r.stderr.count("\n") == 1, r.stderr
    whole = tmp_path / "whole.7z"
    subprocess.run(["7z", "a", "-bd", "-bso0", str(whole), "."], cwd=src, check=True)
    cut = tmp_path / "cut.7z"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    assert subprocess.run(["7z", "t", str(cut)], capture_output=True).returncode != 0
    r = run_binlens("scan", str(cut))
    assert r.returncode == 2 and r.stderr.startswith(f"binlens: {cut}: ") and r.stderr.count("\n") == 1, r.stderr
    cab = tmp_path / "cut.cab"
    subprocess.run(["gcab", "-c", "-z", str(cab), "bin/tool.exe"], cwd=src, check=True)
    cab.write_bytes(cab.read_bytes()[:-5000])
    r = run_binlens("scan", str(cab))
    assert r.returncode == 2 and r.stderr.startswith(f"binlens: {cab}: ") and r.stderr.count("\n") == 1, r.stderr
    elf = binaries_built["c-rawsys"].read_bytes()

    def make_bomb(path: Path) -> None:
        big = path.with_name("big")
        with open(big, "wb") as f:
            f.write(elf[:64])
            for _ in range(1024):
                f.write(bytes(1 << 20))
        subprocess.run(["7z", "a", "-bd", "-bso0", "-mx=1", str(path.with_suffix(".7z")), str(big)], check=True)
        os.replace(path.with_suffix(".7z"), path)
        big.unlink()

    bomb = made_once("bomb.7z", make_bomb)
    assert bomb.stat().st_size < (1 << 30) // 200
    r = run_binlens("scan", str(bomb))
    assert r.returncode == 2 and "compression bomb" in r.stderr and str(bomb) in r.stderr, r.stderr
    rel = tmp_path / "rel"
    rel.mkdir()
    shutil.copy(cut, rel / "cut.7z")
    shutil.copy(whole, rel / "whole.7z")
    r = run_binlens("scan", str(rel), "--format", "json")
    arts = {a["path"]: a["error"] for a in json.loads(r.stdout)["artifacts"]}
    assert r.returncode == 1 and arts[f"{rel}/cut.7z"] and f"{rel}/whole.7z!bin/tool.exe" in arts, arts


def test_damaged_libarchive_formats_are_members_or_one_line(binaries_built, tmp_path):
    """Bytes changed at random in a 7z, a cabinet and an ISO image: members or one UnpackError line, never
    another exception, quickly; libarchive's warnings ("Multivolume cabinet file is unsupported") are not
    printed beside binlens's one line."""
    import random


    src = _release(binaries_built, tmp_path / "src")
    seeds = []
    for name, make in (("a.7z", ["7z", "a", "-bd", "-bso0"]), ("a.cab", ["gcab", "-c", "-z"]),
                       ("a.iso", ["genisoimage", "-quiet", "-R", "-o"])):
        out = tmp_path / name
        args = [str(out), "bin/tool", "bin/tool.exe"] if name != "a.iso" else [str(out), str(src / "bin")]
        subprocess.run([*make, *args], cwd=src, check=True)
        seeds.append(out.read_bytes())
    rng = random.Random(77)

    def mutants() -> Iterator[bytes]:
        for _ in range(200):
            mutant = bytearray(rng.choice(seeds))
            for _ in range(rng.choice((1, 4, 16))):
                at = rng.randrange(len(mutant)) if rng.random() < 0.5 else rng.randrange(min(len(mutant), 4096))
                mutant[at] = rng.randrange(256)
            yield bytes(mutant)

    unpack_mutants(tmp_path, mutants())
    # a cabinet numbered in a set (iCabinet, its header's last word) whose data is damaged: libarchive warns
    # first (through Python's logging, whose last-resort handler printed it), then fails
    numbered = bytearray(seeds[1])
    numbered[35] = 0x62
    numbered[len(numbered) // 2] ^= 0xFF
    cab = tmp_path / "numbered.cab"
    cab.write_bytes(bytes(numbered))
    r = run_binlens("scan", str(cab))
    assert r.returncode == 2 and r.stderr.startswith(f"binlens: {cab}: corrupt cabinet") and \
        r.stderr.count("\n") == 1, r.stderr


def test_without_libarchive_a_7z_is_one_line_that_says_so(binaries_built, tmp_path):
    """Where the archives extra (libarchive-c, or the system's libarchive) is missing, a 7z named on the command
    line is one line saying what to install; the scan of a directory holding one gives that archive's error."""
    from tests.conftest import ROOT

    blocked = tmp_path / "blocked" / "libarchive"
    blocked.mkdir(parents=True)
    (blocked / "__init__.py").write_text("raise ImportError('libarchive-c is not installed')\n")
    src = _release(binaries_built, tmp_path / "src")
    archive = tmp_path / "rel" / "release.7z"
    archive.parent.mkdir()
    subprocess.run(["7z", "a", "-bd", "-bso0", str(archive), "bin/tool"], cwd=src, check=True)
    prefix = ["env", f"PYTHONPATH={blocked.parent}:{ROOT}"]
    r = run_binlens("scan", str(archive), prefix=prefix)
    assert r.returncode == 2 and r.stderr == (
        f"binlens: {archive}: a 7-Zip archive: reading it needs libarchive (pip install 'binlens[archives]', and "
        "the system's libarchive13)\n"), r.stderr
    r = run_binlens("scan", str(archive.parent), "--format", "json", prefix=prefix)
    assert r.returncode == 1 and json.loads(r.stdout)["artifacts"][0]["error"].startswith("a 7-Zip archive: ")


@pytest.mark.parametrize("locale", ["C.UTF-8", "C"])
def test_names_in_no_charset_or_another_are_kept(binaries_built, tmp_path, locale):
    """Names that are not plain ASCII, in any locale (LC_ALL=C included): a 7z's UTF-16 `café` as 7-Zip extracts
    it, an ISO image's Rock Ridge name in Latin-1 bytes as those bytes (\\xNN where they are not UTF-8, with its
    `<&[` and control characters), and a cabinet's name libarchive cannot convert named by its place (`#1`) —
    never left out of the audit (in LC_ALL=C the 7z's program was missing, and the cabinet's in every locale;
    the ISO image was a TypeError)."""
    from analyzer.errors import name_text

    prog = binaries_built["c-rawsys"]
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(prog, src / "café")
    raw = b"caf\xe9<&[x]\x01"
    shutil.copy(prog, os.path.join(os.fsencode(src), raw))
    seven, iso, cab = tmp_path / "a.7z", tmp_path / "a.iso", tmp_path / "a.cab"
    subprocess.run(["7z", "a", "-bd", "-bso0", str(seven), "café"], cwd=src, check=True)
    subprocess.run(["genisoimage", "-quiet", "-R", "-o", str(iso), str(src)], check=True)
    subprocess.run(["gcab", "-c", str(cab), os.fsdecode(raw)], cwd=src, check=True)
    out = tmp_path / "out"
    subprocess.run(["7z", "x", "-bd", "-bso0", f"-o{out}", str(seven)], check=True)
    subprocess.run(["cabextract", "-q", "-d", str(tmp_path / "cabout"), str(cab)], check=True)
    (extracted,) = (tmp_path / "cabout").iterdir()
    env = {k: v for k, v in os.environ.items() if k not in ("LANG", "LC_ALL", "LC_CTYPE")}
    expected = {seven: {p.name for p in out.iterdir()},
                iso: {"café", name_text(raw)},
                cab: {"#1"}}
    for archive, names in expected.items():
        r = run_binlens("scan", str(archive), "--format", "json", "--no-cache", env={**env, "LC_ALL": locale})
        arts = json.loads(r.stdout)["artifacts"]
        assert r.returncode == 0 and {a["path"].split("!", 1)[1] for a in arts} == names, (archive, r.stderr)
        assert all(a["sha256"] == hashlib.sha256(prog.read_bytes()).hexdigest() for a in arts)
    assert hashlib.sha256(extracted.read_bytes()).hexdigest() == hashlib.sha256(prog.read_bytes()).hexdigest()
