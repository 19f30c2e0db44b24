"""macOS installer packages (xar, as pkgbuild and productbuild write them) as containers: their Payloads (cpio,
odc, gzip-compressed or pbzx) expanded, every Mach-O program's facts equal those of the file libarchive's
bsdtar extracts; damaged packages are one line."""

from __future__ import annotations

import gzip
import json
import lzma
import os
import shutil
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import run_binlens, unpack_mutants
from tests.test_archives import _entries, _same_facts

BSDTAR = shutil.which("bsdtar")
pytestmark = pytest.mark.skipif(BSDTAR is None, reason="libarchive-tools is in the README's apt-get line")


def _payload_tree(binaries_built, root: Path, small: bool = False) -> Path:
    (root / "usr/local/bin").mkdir(parents=True)
    (root / "usr/local/lib").mkdir(parents=True)
    shutil.copy(binaries_built["c-aarch64-macos"], root / "usr/local/bin/tool")
    if not small:
        shutil.copy(binaries_built["go-darwin-fat"], root / "usr/local/bin/gotool")  # a universal binary
    shutil.copy(binaries_built["c-x86_64-macos"], root / "usr/local/lib/helper")
    (root / "usr/local/share").mkdir(parents=True)
    (root / "usr/local/share/README").write_text("a text file\n")
    return root


def _cpio(tree: Path) -> bytes:
    """The tree as pkgbuild archives a Payload: cpio in the portable (odc) format, names starting with ./"""
    names = subprocess.run(["find", "."], cwd=tree, capture_output=True, text=True, check=True).stdout
    return subprocess.run(["cpio", "-o", "-H", "odc", "--quiet"], cwd=tree, input="\n".join(sorted(
        names.split())).encode(), capture_output=True, check=True).stdout


def _pbzx(data: bytes, chunk: int = 1 << 16) -> bytes:
    """pbzx framing as Apple's tools write it (each chunk's flags its uncompressed size; a full chunk's size has
    bit 24 of a 16 MiB chunk, here `chunk`-sized chunks flagged the same way): xz chunks, one stored."""
    out = [b"pbzx", struct.pack(">Q", 1 << 24)]
    pieces = [data[i:i + chunk] for i in range(0, len(data), chunk)]
    for i, piece in enumerate(pieces):
        flags = len(piece) | ((1 << 24) if i < len(pieces) - 1 else 0)
        body = piece if i == 1 else lzma.compress(piece, lzma.FORMAT_XZ, preset=1)  # (the second stored)
        out.append(struct.pack(">QQ", flags, len(body)) + body)
    return b"".join(out)


def _pkg(binaries_built, tmp: Path, payload: str, compression: str, small: bool = False) -> Path:
    """A product archive as productbuild lays it out: Distribution, and a component package tool.pkg with its
    PackageInfo, Bom and Payload; the xar written by bsdtar with the given compression for its files."""
    tree = _payload_tree(binaries_built, tmp / "payload", small)
    cpio = _cpio(tree)
    pkg = tmp / "pkgroot"
    (pkg / "tool.pkg").mkdir(parents=True)
    (pkg / "Distribution").write_text('<?xml version="1.0"?><installer-gui-script minSpecVersion="2"/>\n')
    (pkg / "tool.pkg/PackageInfo").write_text('<pkg-info identifier="org.example.tool" version="1.2.3"/>\n')
    (pkg / "tool.pkg/Bom").write_bytes(b"BOMStore" + bytes(64))
    (pkg / "tool.pkg/Payload").write_bytes(gzip.compress(cpio, mtime=0) if payload == "gzip" else _pbzx(cpio))
    out = tmp / "Tool-1.2.3.pkg"
    subprocess.run([BSDTAR, "--format", "xar", "--options", f"xar:compression={compression}", "-cf", str(out),
                    "-C", str(pkg), "Distribution", "tool.pkg"], check=True)
    return out


@pytest.mark.parametrize("payload,compression", [("gzip", "gzip"), ("pbzx", "none"), ("gzip", "bzip2"),
                                                 ("pbzx", "xz")])
def test_pkg_members_equal_bsdtar(binaries_built, tmp_path, payload, compression):
    pkg = _pkg(binaries_built, tmp_path, payload, compression)
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run([BSDTAR, "-xf", str(pkg), "-C", str(out)], check=True)  # the oracle: libarchive's xar reader
    cpio = out / "tool.pkg/Payload"
    if payload == "pbzx":  # (libarchive reads no pbzx: the chunks the test framed, undone)
        raw, chunks, at = cpio.read_bytes(), [], 12
        while at < len(raw):
            _, length = struct.unpack(">QQ", raw[at:at + 16])
            body = raw[at + 16:at + 16 + length]
            chunks.append(lzma.decompress(body) if body.startswith(b"\xfd7zXZ") else body)
            at += 16 + length
        cpio.write_bytes(b"".join(chunks))
    tree = tmp_path / "tree"
    tree.mkdir()
    subprocess.run([BSDTAR, "-xf", str(cpio), "-C", str(tree)], check=True)  # libarchive's cpio (odc) reader
    prefix = f"{pkg}!tool.pkg/Payload!"
    inside = {p[len(prefix):]: e for p, e in _entries([str(pkg)]).items()}
    theirs = {os.path.relpath(p, tree): e for p, e in _entries([str(tree)]).items()}
    # (the universal binary: one entry per architecture, as for the file)
    assert sorted(inside) == sorted(theirs) == ["usr/local/bin/gotool[arm64]", "usr/local/bin/gotool[x86_64]",
                                                "usr/local/bin/tool", "usr/local/lib/helper"]
    for k, entry in inside.items():
        assert entry["format"] == "MachO"
        _same_facts(entry, theirs[k])


def test_pkg_in_a_directory_and_damaged(binaries_built, tmp_path):
    """Found by name in a release directory; a truncated package and a damaged Payload are that package's
    error (one line, the gate fails); named on the command line, exit 2."""
    pkg = _pkg(binaries_built, tmp_path, "gzip", "gzip", small=True)
    rel = tmp_path / "rel"
    rel.mkdir()
    shutil.copy(pkg, rel / "Tool-1.2.3.pkg")
    r = run_binlens("scan", str(rel), "--format", "json")
    paths = [a["path"] for a in json.loads(r.stdout)["artifacts"]]
    assert f"{rel}/Tool-1.2.3.pkg!tool.pkg/Payload!usr/local/bin/tool" in paths and len(paths) == 2, r.stderr
    cut = rel / "Cut.pkg"
    cut.write_bytes(pkg.read_bytes()[:300])
    r = run_binlens("scan", str(rel), "--format", "json")
    errors = {a["path"]: a["error"] for a in json.loads(r.stdout)["artifacts"] if a["error"]}
    assert r.returncode == 1 and list(errors) == [str(cut)] and "\n" not in errors[str(cut)], errors
    r = run_binlens("scan", str(cut))
    assert r.returncode == 2 and r.stderr.startswith(f"binlens: {cut}: ") and r.stderr.count("\n") == 1, r.stderr
    # a Payload whose compressed data is damaged: the Payload's error, named after it
    bad = tmp_path / "bad"
    shutil.copytree(tmp_path / "pkgroot", bad)
    data = bytearray((bad / "tool.pkg/Payload").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (bad / "tool.pkg/Payload").write_bytes(bytes(data))
    damaged = tmp_path / "Damaged.pkg"
    subprocess.run([BSDTAR, "--format", "xar", "-cf", str(damaged), "-C", str(bad), "Distribution", "tool.pkg"],
                   check=True)
    r = run_binlens("scan", str(damaged), "--format", "json")
    assert r.returncode in (1, 2) and "Traceback" not in r.stderr, r.stderr
    if r.returncode == 1:
        errors = {a["path"]: a["error"] for a in json.loads(r.stdout)["artifacts"] if a["error"]}
        assert f"{damaged}!tool.pkg/Payload" in errors, errors
    else:
        assert r.stderr.startswith(f"binlens: {damaged}") and r.stderr.count("\n") == 1, r.stderr
    os.remove(cut)
    # a table of contents of four million empty elements (16 MB, 15 KB compressed): as a tree, gigabytes; refused
    # from its count, the package's one line
    toc = b'<?xml version="1.0"?><xar><toc>' + b"<a/>" * 4_000_000 + b"</toc></xar>"
    packed = __import__("zlib").compress(toc, 9)
    flood = tmp_path / "flood.pkg"
    flood.write_bytes(b"xar!" + struct.pack(">HHQQI", 28, 1, len(packed), len(toc), 0) + packed)
    r = run_binlens("scan", str(flood))
    assert r.returncode == 2 and r.stderr == (
        f"binlens: {flood}: a xar table of contents of more than 500000 elements\n"), r.stderr


def test_pkg_mutants_give_members_or_one_line(binaries_built, tmp_path):
    """Tables of contents with numbers, types and encodings changed and pieces cut (recompressed, so the xar
    reader meets them), and raw bytes changed: every mutant gives members or an UnpackError of one line, never
    another exception, quickly."""
    import random
    import re
    import zlib

    seeds = []
    for payload, compression in (("gzip", "gzip"), ("pbzx", "none")):
        (tmp_path / payload).mkdir()
        seeds.append(_pkg(binaries_built, tmp_path / payload, payload, compression, small=True).read_bytes())
    rng = random.Random(4242)
    def mutants() -> Iterator[bytes]:
        for _ in range(120):
            data = rng.choice(seeds)
            size, version, packed, _, check = struct.unpack(">HHQQI", data[4:28])
            toc = zlib.decompress(data[size:size + packed]).decode()
            for _ in range(rng.choice((1, 2, 3))):
                pick = rng.random()
                if pick < 0.5:
                    m = rng.choice(list(re.finditer(r"\d+", toc)))
                    value = rng.choice((0, 1, 10 ** rng.randrange(1, 19), int(m.group()) + rng.randrange(-5, 5)))
                    toc = toc[:m.start()] + str(value) + toc[m.end():]
                elif pick < 0.7:
                    toc = toc.replace(rng.choice(("file</type>", "directory</type>")),
                                      rng.choice(("file</type>", "directory</type>", "symlink</type>")), 1)
                elif pick < 0.85:
                    toc = toc.replace("application/x-gzip", rng.choice((
                        "application/x-bzip2", "application/x-xz", "application/octet-stream", "x/y")), 1)
                else:
                    at = rng.randrange(len(toc))
                    toc = toc[:at] + toc[at + rng.randrange(1, 40):]
            z = zlib.compress(toc.encode())
            mutant = bytearray(data[:4] + struct.pack(">HHQQI", size, version, len(z), len(toc.encode()), check)
                               + data[28:size] + z + data[size + packed:])
            if rng.random() < 0.3:
                for _ in range(rng.choice((1, 4, 16))):
                    mutant[rng.randrange(len(mutant))] = rng.randrange(256)
            yield bytes(mutant)

    unpack_mutants(tmp_path, mutants())
