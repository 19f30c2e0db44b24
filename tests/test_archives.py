"""Containers of artifacts as inputs: every member's facts equal those of the same file after a trusted
unpack (dpkg-deb -x, unzip, ar p, tar, layer-by-layer extraction of an image), member names `outer!inner`,
hostile containers refused with one line each, and nothing written outside the private unpack directory."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import build
import pytest
from groundtruth import build_apk, build_rpm

from analyzer import pipeline
from analyzer.errors import AnalyzerError
from tests.conftest import ROOT, made_once, run_binlens, starts_with


def _entries(paths: list[str], request: pipeline.Request | None = None) -> dict[str, dict]:
    return {r.entry["path"]: r.entry for r in pipeline.scan(paths, request or pipeline.Request(), jobs=1) if r.entry}


def _same_facts(member: dict, unpacked: dict) -> None:
    assert member["error"] is None and unpacked["error"] is None, (member["error"], unpacked["error"])
    assert member["sha256"] == unpacked["sha256"] and member["format"] == unpacked["format"]
    assert member["facts"] == unpacked["facts"], member["path"]


def _compare(container: str, tree: Path, request: pipeline.Request | None = None) -> int:
    inside = _entries([container], request)
    outside = _entries([str(tree)])
    names = {p.split("!", 1)[1]: e for p, e in inside.items()}
    plain = {os.path.relpath(p, tree): e for p, e in outside.items()}
    assert names.keys() == plain.keys(), sorted(set(names) ^ set(plain))[:10]
    for k in names:
        _same_facts(names[k], plain[k])
    return len(names)


@pytest.mark.parametrize("name", ["coreutils.deb", "libc6-dbg.deb", "libc6-arm64-cross.deb", "perl-base.deb"])
def test_deb_members_equal_dpkg_deb_x(fixtures_built, tmp_path, name):
    """Debian packages as apt-get download fetches them: programs, a debug-symbols package (separate debug
    files), a cross C library for AArch64, and perl-base (perl5.36.0 a hard link to perl in its data.tar)."""
    deb = fixtures_built[name]
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp_path / "root")], check=True)
    assert _compare(str(deb), tmp_path / "root") > 10


def test_streamed_members_give_the_same_report_for_any_jobs(fixtures_built):
    """A package named on the command line is streamed into the workers as it is unpacked: the report is the
    same, byte for byte, with one process, two, or four."""
    deb = str(fixtures_built["coreutils.deb"])
    reports = {j: run_binlens("scan", deb, "--format", "json", "--no-cache", "--jobs", j).stdout for j in "124"}
    assert reports["1"] == reports["2"] == reports["4"] and reports["1"].count('"path":') > 100


@pytest.mark.parametrize("inflate", ["isal", "zlib"])
def test_wheel_members_equal_unzip(fixtures_built, tmp_path, monkeypatch, inflate):
    """A wheel's binaries are inflated by the process that analyses each (ISA-L's inflate when python-isal is
    installed, zlib's otherwise): their bytes, digests and facts equal unzip's."""
    from analyzer.load import archives

    if inflate == "isal":
        assert archives._isal() is not None  # a test dependency: this path is the one users run
    monkeypatch.setattr(archives, "USE_ISAL", inflate == "isal")
    whl = fixtures_built["numpy-2.2.6-cp311-cp311-manylinux_2_17_x86_64.whl"]
    subprocess.run(["unzip", "-q", str(whl), "-d", str(tmp_path / "root")], check=True)
    assert _compare(str(whl), tmp_path / "root") > 10


def test_streamed_wheel_gives_the_same_report_for_any_jobs(fixtures_built):
    """Its members inflated by the workers, the largest handed out first: the report is the same, byte for
    byte, with one process, two, or four."""
    whl = str(fixtures_built["numpy-2.2.6-cp311-cp311-manylinux_2_17_x86_64.whl"])
    reports = {j: run_binlens("scan", whl, "--format", "json", "--no-cache", "--jobs", j).stdout for j in "124"}
    assert reports["1"] == reports["2"] == reports["4"] and reports["1"].count('"path":') > 30


@pytest.mark.parametrize("compress", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED])
def test_corrupt_zip_member_data_is_that_members_error(binaries_built, tmp_path, compress):
    """A member whose data is damaged (the zip's directory intact) is found so where it is inflated, by the
    worker analysing it: that member's error entry, as `unzip -t` finds it; the other members are analysed and
    the gate fails."""
    elf = binaries_built["go-linux-amd64"].read_bytes()  # (damage past the first bytes the main process reads)
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w") as z:
        for n in ("bin/a", "bin/b"):
            z.writestr(n, elf, compress_type=compress)
    with zipfile.ZipFile(good) as zf:
        info = zf.getinfo("bin/b")
    data = bytearray(good.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start + info.compress_size // 2] ^= 0x55
    bad = tmp_path / "bad.zip"
    bad.write_bytes(bytes(data))
    oracle = subprocess.run(["unzip", "-t", str(bad)], capture_output=True, text=True)
    assert oracle.returncode != 0 and "bin/b" in oracle.stdout and "bin/a" in oracle.stdout
    r = run_binlens("scan", str(bad), "--format", "json")
    assert r.stdout, r.stderr
    arts = {a["path"]: a for a in json.loads(r.stdout)["artifacts"]}
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert arts[f"{bad}!bin/a"]["error"] is None and arts[f"{bad}!bin/a"]["format"] == "ELF"
    problem = arts[f"{bad}!bin/b"]["error"]
    assert problem.startswith("corrupt or truncated zip member (") and "\n" not in problem, problem


@pytest.mark.parametrize("isal", [True, False])
def test_zip_members_read_whole_equal_zipfiles_read(binaries_built, tmp_path, monkeypatch, isal):
    """read_zip_member (the manylinux verdict's reading of a wheel's libraries when no scan inflated them):
    stored and deflated members equal what zipfile reads, with ISA-L's inflater and zlib's; a member whose data
    does not match its CRC-32, or is cut short, is an UnpackError, not other bytes."""
    from analyzer.load import archives

    monkeypatch.setattr(archives, "USE_ISAL", isal)
    data = binaries_built["c-rawsys"].read_bytes()
    path = tmp_path / "w.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(zipfile.ZipInfo("stored.so"), data, zipfile.ZIP_STORED)
        z.writestr(zipfile.ZipInfo("deflated.so"), data, zipfile.ZIP_DEFLATED)
    with zipfile.ZipFile(path) as z:
        infos = {i.filename: i for i in z.infolist()}
        for info in infos.values():
            assert archives.read_zip_member(str(path), info) == z.read(info) == data
    raw = bytearray(path.read_bytes())
    at = raw.index(data[:64])  # (the stored member's bytes: one flipped)
    raw[at + 100] ^= 0xFF
    bad = tmp_path / "bad.zip"
    bad.write_bytes(raw)
    with pytest.raises(archives.UnpackError):
        archives.read_zip_member(str(bad), infos["stored.so"])
    cut = tmp_path / "cut.zip"
    cut.write_bytes(path.read_bytes()[: infos["deflated.so"].header_offset + 200])
    with pytest.raises((archives.UnpackError, *archives.zlib_error())):
        archives.read_zip_member(str(cut), infos["deflated.so"])


def test_static_library_members_equal_ar_p(tmp_path):
    lib = "/usr/lib/x86_64-linux-gnu/libc_nonshared.a"
    names = subprocess.run(["ar", "t", lib], capture_output=True, text=True, check=True).stdout.split()
    root = tmp_path / "root"
    root.mkdir()
    for n in names:  # each object by name (ar p gives the first of a repeated name, which binlens names plainly)
        (root / n).write_bytes(subprocess.run(["ar", "p", lib, n], capture_output=True, check=True).stdout)
    assert _compare(lib, root) == len(set(names))


def test_static_library_members_are_read_in_place(binaries_built, tmp_path):
    """A static library's members are read from the library by the process analysing each (ar is not
    compressed): the scan writes one table into its unpack directory, not one file per member (strace sees the
    creations), and the report is the same for one process and two."""
    elves = sorted(p for p in binaries_built.values() if starts_with(p, b"\x7fELF"))[:40]
    lib = str(tmp_path / "libfixtures.a")
    subprocess.run(["ar", "rc", lib, *map(str, elves)], check=True)
    members = subprocess.run(["ar", "t", lib], capture_output=True, text=True, check=True).stdout.split()
    assert len(members) == len(elves) > 20
    log = tmp_path / "strace.log"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parent.parent), NO_COLOR="1")
    r = subprocess.run(["strace", "-f", "-qq", "-e", "trace=openat", "-o", str(log), os.sys.executable, "-m",
                        "analyzer", "scan", lib, "--format", "json", "--no-cache", "--jobs", "2"],
                       capture_output=True, text=True, env=env)
    assert r.returncode in (0, 1), r.stderr
    created = [line for line in log.read_text().splitlines() if "binlens-unpack-" in line and "O_CREAT" in line]
    assert len(created) == 1 and created[0].split('"')[1].endswith(".members.json"), created
    assert len(json.loads(r.stdout)["artifacts"]) == len(members)
    one = run_binlens("scan", lib, "--format", "json", "--no-cache", "--jobs", "1").stdout
    assert one == r.stdout


@pytest.mark.parametrize("flag,suffix", [("-z", ".tar.gz"), ("-J", ".tar.xz"), ("-j", ".tar.bz2"), ("", ".tar")])
def test_tarballs_of_every_compression_equal_tar_x(binaries_built, tmp_path, flag, suffix):
    src = tmp_path / "src"
    (src / "bin").mkdir(parents=True)
    for n in ("c-rawsys", "go-linux-amd64", "c-x86_64-gnu.2.34"):
        if n in binaries_built:
            shutil.copy(binaries_built[n], src / "bin" / n)
    (src / "README").write_text("not a binary")
    ball = tmp_path / f"dist{suffix}"
    subprocess.run(["tar", *([flag] if flag else []), "-cf", str(ball), "-C", str(src), "."], check=True)
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run(["tar", "-xf", str(ball), "-C", str(out)], check=True)
    assert _compare(str(ball), out) >= 2


@pytest.mark.parametrize("fmt", ["gnu", "pax"])
def test_long_member_names_in_gnu_and_pax_tarballs(binaries_built, tmp_path, fmt):
    """A member path of 300 characters (a GNU long-name header, or a pax record) reads as tar -x reads it."""
    src = tmp_path / "src"
    deep = src / "/".join(["d" * 60] * 4) / ("p" * 50)
    deep.parent.mkdir(parents=True)
    shutil.copy(binaries_built["c-rawsys"], deep)
    ball = tmp_path / f"long-{fmt}.tar.xz"
    subprocess.run(["tar", f"--format={fmt}", "-cJf", str(ball), "-C", str(src), "."], check=True)
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run(["tar", "-xf", str(ball), "-C", str(out)], check=True)
    assert _compare(str(ball), out) == 1 and len(str(deep.relative_to(src))) > 290


def _layer(files: dict[str, bytes | None]) -> bytes:
    """A layer tar: None marks a whiteout (`.wh.name`), '.wh..wh..opq' an opaque directory."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data or b"")
            info.mode = 0o755
            tf.addfile(info, io.BytesIO(data or b""))
    return gzip.compress(buf.getvalue(), compresslevel=6, mtime=0)  # (9, the default, took 10 s of the suite)


def _layer_with_links(links: dict[str, str], files: dict[str, bytes | None]) -> bytes:
    """A layer tar (pax, for names of any length) holding symlinks (path → target) and files (None: empty)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, target in links.items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tf.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data or b""), 0o755
            tf.addfile(info, io.BytesIO(data or b""))
    return gzip.compress(buf.getvalue(), compresslevel=1, mtime=0)


def _blob_store(root: Path):
    """An OCI layout's blobs/sha256 under `root`: put(data) stores a blob and gives its `sha256:` digest."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> str:
        d = hashlib.sha256(data).hexdigest()
        (blobs / d).write_bytes(data)
        return "sha256:" + d

    return put


def _image(tmp: Path, layers: list[bytes], kind: str, nested: int = 0, config: bytes = b"{}") -> Path:
    """An OCI layout directory, an OCI layout tar, or a `docker save` tarball holding `layers` (an OCI layout's
    manifest behind `nested` image indexes), with `config` as its config."""
    root = tmp / f"img-{kind}"
    put = _blob_store(root)

    digests = [put(layer) for layer in layers]
    if kind == "docker":
        droot = tmp / "docker"
        droot.mkdir()
        names = []
        for i, layer in enumerate(layers):
            (droot / f"l{i}").mkdir()
            (droot / f"l{i}" / "layer.tar").write_bytes(gzip.decompress(layer))
            names.append(f"l{i}/layer.tar")
        named = f"{hashlib.sha256(config).hexdigest()}.json"  # (docker save names it by its digest)
        (droot / "manifest.json").write_text(json.dumps([{"Config": named, "RepoTags": ["t:1"], "Layers": names}]))
        (droot / named).write_bytes(config)
        out = tmp / "docker.tar"
        subprocess.run(["tar", "-cf", str(out), "-C", str(droot), "."], check=True)
        return out
    cfg = put(config)
    manifest = json.dumps({"schemaVersion": 2, "config": {"digest": cfg, "size": len(config)},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                       "digest": d, "size": len(x)} for d, x in zip(digests, layers, strict=True)]})
    m = put(manifest.encode())
    for _ in range(nested):
        m = put(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                            "manifests": [{"digest": m, "size": 1}]}).encode())
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{"digest": m, "size": 1}]}))
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    if kind == "oci-dir":
        return root
    if kind in ("oci-top-tar", "oci-top-tgz"):  # a layout directory tarred as a directory (`tar -czf x.tgz dir/`)
        out = tmp / ("oci.tar" if kind == "oci-top-tar" else "oci.tgz")
        subprocess.run(["tar", "-czf" if kind == "oci-top-tgz" else "-cf", str(out), "-C", str(tmp), root.name],
                       check=True)
        return out
    if kind in ("oci-zip", "oci-top-zip"):  # zipped at its root, or as a directory (a CI system's artifact)
        out = tmp / "oci.zip"
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
            for f in sorted(root.rglob("*")):
                z.write(f, f.relative_to(root if kind == "oci-zip" else tmp))
        return out
    out = tmp / "oci.tar"
    subprocess.run(["tar", "-cf", str(out), "-C", str(root), "."], check=True)
    return out


def _extract_layers(tmp: Path, layers: list[bytes], *flags: str) -> Path:
    """The trusted unpack of an image: tar extracts each layer in order into tmp/fs, whiteouts applied as the
    OCI spec says (`.wh.name` removes the name, `.wh..wh..opq` what its directory held before)."""
    fs = tmp / "fs"
    fs.mkdir()
    for i, layer in enumerate(layers):
        lt = tmp / f"layer{i}.tar.gz"
        lt.write_bytes(layer)
        for n in subprocess.run(["tar", "-tzf", str(lt)], capture_output=True, text=True, check=True).stdout.split():
            base, parent = os.path.basename(n), os.path.dirname(n)
            gone = fs / parent if base == ".wh..wh..opq" else \
                fs / parent / base[4:] if base.startswith(".wh.") else None
            if gone is not None and os.path.lexists(gone):  # (a whiteout of nothing there: no rm to start)
                subprocess.run(["rm", "-rf", str(gone)], check=True)  # (rm: trees of any depth)
        subprocess.run(["tar", "-xzf", str(lt), "-C", str(fs), "--exclude=*.wh.*", *flags], check=True)
    return fs


@pytest.mark.parametrize("kind", ["oci-dir", "oci-tar", "docker", "oci-top-tar", "oci-top-tgz", "oci-zip",
                                  "oci-top-zip"])
def test_image_final_filesystem_equals_layer_by_layer_extraction(binaries_built, tmp_path, kind):
    """Each layout an image is shipped in — a directory, tarred at its root or as a directory (plain or
    compressed), zipped (as CI systems upload a directory), `docker save` — is read as the image: its final
    filesystem, not each layer's files (a removed program was reported from the layer that had it)."""
    a, b, c = (binaries_built[n].read_bytes() for n in ("c-rawsys", "go-linux-amd64", "c-x86_64-gnu.2.34"))
    layers = [
        _layer({"usr/bin/a": a, "usr/bin/b": b, "opt/x/c": c, "opt/x/d": a}),
        _layer({"usr/bin/.wh.b": None, "opt/x/.wh..wh..opq": None, "opt/x/e": c}),
        _layer({"usr/bin/b": c}),
    ]
    img = _image(tmp_path, layers, kind)
    fs = _extract_layers(tmp_path, layers)
    n = _compare(str(img), fs)
    assert n == 3  # usr/bin/a, usr/bin/b (from layer 3), opt/x/e: opt/x/c and d gone with the opaque directory


def _zip(path: Path, members: dict[str, bytes], compress: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compress) as z:
        for n, d in members.items():
            z.writestr(zipfile.ZipInfo(n), d)
    return path


def test_header_numbers_are_digits_as_ar_and_cpio_read_them(binaries_built, tmp_path):
    """A size field with a sign, `_`, `0x` or a blank inside: ar says the library is malformed or no archive,
    GNU cpio "Malformed number" (or skips it as junk), dpkg-deb "invalid character"; binlens, one line naming
    the file, exit 2, in seconds. A negative ar member size sent binlens back over the same header forever;
    Python's int() took the rest as numbers."""
    elf = binaries_built["c-rawsys"]
    lib = tmp_path / "lib.a"
    subprocess.run(["ar", "rc", str(lib), str(elf)], check=True)
    data = lib.read_bytes()
    (tmp_path / "usr/bin").mkdir(parents=True)
    shutil.copy(elf, tmp_path / "usr/bin/app")
    cpio = {fmt: subprocess.run(["cpio", "-o", "-H", fmt], input=b"usr/bin/app\n", cwd=tmp_path,
                                capture_output=True, check=True).stdout for fmt in ("newc", "odc")}
    cases = []
    for i, field in enumerate((b"-60", b"1_0", b"+" + str(elf.stat().st_size).encode())):
        bad = tmp_path / f"bad{i}.a"
        bad.write_bytes(data[:56] + field.ljust(10) + data[66:])  # the first member's size (after the magic)
        oracle = subprocess.run(["ar", "t", str(bad)], capture_output=True, text=True)
        assert oracle.returncode != 0 and ("not recognized" in oracle.stderr or "malformed" in oracle.stderr), oracle
        cases.append((bad, f"corrupt ar member header (a number field reads {field.ljust(10).decode()!r})"))
    pkg = tmp_path / "pkg"
    (pkg / "DEBIAN").mkdir(parents=True)
    (pkg / "DEBIAN" / "control").write_text("Package: t\nVersion: 1\nArchitecture: amd64\nMaintainer: m <m@x>\n"
                                             "Description: d\n")
    shutil.copytree(tmp_path / "usr", pkg / "usr")
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(pkg), str(tmp_path / "t.deb")], check=True,
                   capture_output=True)
    deb = (tmp_path / "t.deb").read_bytes()
    bad = tmp_path / "bad.deb"
    bad.write_bytes(deb[:120] + b"-132".ljust(10) + deb[130:])  # control.tar's size (after debian-binary)
    oracle = subprocess.run(["dpkg-deb", "-c", str(bad)], capture_output=True, text=True)
    assert oracle.returncode != 0 and "invalid character '-'" in oracle.stderr, oracle
    cases.append((bad, "corrupt ar member header (a number field reads '-132      ')"))
    for fmt, at, field in (("newc", 54, b"-0000001"), ("newc", 54, b"0x000010"), ("newc", 54, b" 0000010"),
                           ("odc", 65, b"-0000000001")):
        bad = tmp_path / f"bad-{fmt}-{len(cases)}.cpio"
        bad.write_bytes(cpio[fmt][:at] + field + cpio[fmt][at + len(field):])
        oracle = subprocess.run(["cpio", "-it"], stdin=bad.open("rb"), capture_output=True, text=True)
        assert "Malformed number" in oracle.stderr or "junk" in oracle.stderr, oracle
        cases.append((bad, f"corrupt cpio header (a number field reads {field.decode()!r})"))
    for bad, problem in cases:
        r = subprocess.run([sys.executable, "-m", "analyzer", "scan", str(bad)], capture_output=True, text=True,
                           timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert r.returncode == 2 and r.stderr == f"binlens: {bad}: {problem}\n", (bad, r.stderr)
    assert run_binlens("scan", str(lib)).returncode in (0, 1)  # (the library before the damage: its member)


def test_hostile_containers_are_refused_in_seconds(binaries_built, tmp_path):
    elf = binaries_built["c-rawsys"].read_bytes()
    # zip slip: never written, never named; an absolute name is taken from the top, as unzip takes it
    slip = _zip(tmp_path / "slip.zip", {"../../evil": elf, "/abs/evil": elf, "ok/bin": elf})
    ents = _entries([str(slip)])
    assert list(ents) == [f"{slip}!abs/evil", f"{slip}!ok/bin"]
    # a compression bomb: 1 GiB of zeros behind an ELF header (the large inputs are made once: made_once)
    def make_bomb(path: Path) -> None:
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            big = zipfile.ZipInfo("big", date_time=(2024, 1, 1, 0, 0, 0))
            big.compress_type = zipfile.ZIP_DEFLATED
            with z.open(big, "w", force_zip64=True) as w:
                w.write(binaries_built["c-rawsys"].read_bytes()[:64])
                for _ in range(1024):
                    w.write(b"\0" * (1 << 20))

    bomb = made_once("bomb.zip", make_bomb)
    r = run_binlens("scan", str(bomb))
    assert r.returncode == 2 and "compression bomb" in r.stderr and str(bomb) in r.stderr
    # a tar.xz stream bomb: a program, then 512 MiB of zeros that are no binary (skipped, but only by
    # decompressing them): refused from the member's header; before, decompressed to the end
    def make_stream(path: Path) -> None:
        zeros = tmp_path / "zeros"
        (zeros / "bin").mkdir(parents=True)
        (zeros / "bin" / "app").write_bytes(binaries_built["c-rawsys"].read_bytes())
        with open(zeros / "data", "wb") as f:
            f.truncate(512 << 20)
        tar = subprocess.Popen(["tar", "-cf", "-", "-C", str(zeros), "bin", "data"], stdout=subprocess.PIPE)
        with open(path, "wb") as out:
            subprocess.run(["xz", "-0", "-T2"], stdin=tar.stdout, stdout=out, check=True)
        assert tar.wait() == 0

    stream = made_once("zeros.tar.xz", make_stream)
    assert stream.stat().st_size < (512 << 20) // 200
    r = run_binlens("scan", str(stream))
    assert r.returncode == 2 and "compression bomb" in r.stderr and str(stream) in r.stderr, r.stderr
    # a header extension bomb: a GNU long name and a pax record set declared 16 MiB long (tarfile reads such a
    # header's data whole: a 260 KB .tar.xz of a 1 GiB long name took 2 GB); refused from the header
    for kind in (tarfile.GNUTYPE_LONGNAME, tarfile.XHDTYPE):
        bomb_hdr = tarfile.TarInfo("././@LongLink" if kind == tarfile.GNUTYPE_LONGNAME else "./PaxHeaders/x")
        bomb_hdr.type, bomb_hdr.size = kind, 16 << 20
        raw = bomb_hdr.tobuf(format=tarfile.GNU_FORMAT)[:512] + b"a" * (16 << 20) + bytes(1024)
        ext = tmp_path / f"ext-{kind.decode()}.tar.xz"
        ext.write_bytes(subprocess.run(["xz", "-0", "-T2"], input=raw, capture_output=True, check=True).stdout)
        r = run_binlens("scan", str(ext))
        assert r.returncode == 2 and "tar header extension of 16777216 bytes" in r.stderr, r.stderr
    # a member of a type tar does not know, declaring 1 GiB of data: tarfile skips it by decompressing it all,
    # outside every count (a 1 MB gzip took 2 s to say "no ELF files", and the look for an image 8 s more);
    # refused from its header, as a tarball, an image's layer and a sysroot
    def make_skipped(path: Path) -> None:
        import zlib

        head = tarfile.TarInfo("odd")
        head.type, head.size = b"Z", 1 << 30
        squeeze = zlib.compressobj(1, zlib.DEFLATED, 31)
        with open(path, "wb") as out:
            out.write(squeeze.compress(head.tobuf(format=tarfile.GNU_FORMAT)))
            for _ in range(1 << 10):
                out.write(squeeze.compress(bytes(1 << 20)))
            out.write(squeeze.flush())

    skipped = made_once("unknown-type.tar.gz", make_skipped)
    (tmp_path / "skipped").mkdir()
    layered = _image(tmp_path / "skipped", [skipped.read_bytes()], "oci-dir")
    for args in (("scan", str(skipped)), ("deps", "--sysroot", str(skipped)), ("scan", str(layered)),
                 ("deps", "--sysroot", str(layered))):
        r = run_binlens(*args)
        assert r.returncode == 2 and "compression bomb" in r.stderr and len(r.stderr.splitlines()) == 1, \
            (args, r.stderr)
    # names read into memory, declared huge: an RPM payload's cpio name of 4 GiB, an ar long-name table of 9 MiB
    import struct

    lead, header = b"\xed\xab\xee\xdb" + bytes(92), b"\x8e\xad\xe8\x01" + bytes(4) + struct.pack(">II", 0, 0)
    cpio = b"070701" + b"00000000" * 11 + b"FFFFFFFF" + b"00000000" + b"a" * (1 << 20)
    rpm = tmp_path / "bad-1.0-1.x86_64.rpm"
    rpm.write_bytes(lead + header + header + subprocess.run(["xz"], input=cpio, capture_output=True).stdout)
    ar = tmp_path / "libbad.a"
    ar.write_bytes(b"!<arch>\n" + b"//".ljust(48) + str(9 << 20).encode().ljust(10) + b"`\n" + bytes(9 << 20))
    for bad, words in ((rpm, "cpio member name of 4294967295 bytes"), (ar, f"long-name table of {9 << 20} bytes")):
        r = run_binlens("scan", str(bad))
        assert r.returncode == 2 and words in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr
    # 100,000 empty members
    def make_many(path: Path) -> None:
        with zipfile.ZipFile(path, "w") as z:
            for i in range(100_000):
                z.writestr(zipfile.ZipInfo(f"e{i}", date_time=(2024, 1, 1, 0, 0, 0)), b"")

    many = made_once("many.zip", make_many)
    r = run_binlens("scan", str(many))
    assert r.returncode == 2 and "members" in r.stderr
    # nesting deeper than the limit
    inner = _zip(tmp_path / "n0.zip", {"bin": elf})
    for i in range(1, 7):
        inner = _zip(tmp_path / f"n{i}.zip", {f"n{i - 1}.zip": inner.read_bytes()})
    ents = _entries([str(inner)])
    errs = [e for e in ents.values() if e["error"]]
    assert errs and "nested deeper" in errs[0]["error"]
    # symlinks in a tar are not followed, nor written
    link = tmp_path / "link.tar"
    with tarfile.open(link, "w") as tf:
        s = tarfile.TarInfo("escape")
        s.type, s.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(s)
        f = tarfile.TarInfo("bin/ok")
        f.size = len(elf)
        tf.addfile(f, io.BytesIO(elf))
    assert list(_entries([str(link)])) == [f"{link}!bin/ok"]


def test_bad_containers_are_one_line_errors(binaries_built, tmp_path):
    elf = binaries_built["c-rawsys"].read_bytes()
    good = tmp_path / "good.tar.gz"
    with tarfile.open(good, "w:gz") as tf:
        info = tarfile.TarInfo("bin/x")
        info.size = len(elf)
        tf.addfile(info, io.BytesIO(elf))
    trunc = tmp_path / "trunc.tar.gz"
    trunc.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    enc = tmp_path / "enc.zip"
    enc.write_bytes(_zip(tmp_path / "plain.zip", {"bin": elf}).read_bytes())
    data = bytearray(enc.read_bytes())
    data[6] |= 1  # the encrypted flag of the local header
    cd = data.rfind(b"PK\x01\x02")
    data[cd + 8] |= 1  # and of the central directory entry
    enc.write_bytes(bytes(data))
    img = _image(tmp_path, [_layer({"bin/x": elf})], "oci-dir")
    for blob in (img / "blobs" / "sha256").iterdir():
        if starts_with(blob, b"\x1f\x8b"):
            blob.unlink()
    lost = tmp_path / "lost"  # (an index naming a manifest the layout does not hold)
    shutil.copytree(img, lost)
    index = json.loads((lost / "index.json").read_text())
    index["manifests"][0]["digest"] = "sha256:" + "1" * 64
    (lost / "index.json").write_text(json.dumps(index))
    for bad, words in ((trunc, "truncated"), (enc, "encrypted"), (img, "missing layer"),
                       (lost, f"the image names a missing blob {'1' * 64}")):
        r = run_binlens("scan", str(bad))
        assert r.returncode == 2 and "Traceback" not in r.stderr and str(bad) in r.stderr, r.stderr
        assert words in r.stderr.lower() and len(r.stderr.strip().splitlines()) == 1, r.stderr
    # platforms that are no object, or name no string, are no platform (not "corrupt oci (AttributeError...)")
    (tmp_path / "odd").mkdir()
    odd = _image(tmp_path / "odd", [_layer({"bin/x": elf})], "oci-dir")
    index = json.loads((odd / "index.json").read_text())
    index["manifests"] = [dict(index["manifests"][0], platform=p) for p in ("linux", ["a"], {"os": 1}, {})]
    (odd / "index.json").write_text(json.dumps(index))
    r = run_binlens("scan", str(odd), "--format", "json")
    assert r.returncode in (0, 1) and [a["path"] for a in json.loads(r.stdout)["artifacts"]] == [f"{odd}!bin/x"], \
        r.stderr
    # inside a directory: that container's error entry, the scan goes on, the gate fails
    d = tmp_path / "dir"
    d.mkdir()
    shutil.copy(trunc, d / "trunc.tar.gz")
    shutil.copy(good, d / "good.tar.gz")
    r = run_binlens("scan", str(d), "--format", "json")
    arts = json.loads(r.stdout)["artifacts"]
    assert r.returncode == 1 and [a["path"] for a in arts] == [f"{d}/good.tar.gz!bin/x", f"{d}/trunc.tar.gz"]
    assert arts[1]["error"] and "truncated" in arts[1]["error"]


def test_nothing_is_written_outside_the_unpack_directory(fixtures_built, tmp_path):
    deb = fixtures_built["coreutils.deb"]
    before = set(os.listdir(tmp_path))
    env = dict(os.environ, TMPDIR=str(tmp_path))
    r = subprocess.run([os.sys.executable, "-m", "analyzer", "scan", str(deb)], capture_output=True, text=True,
                       env={**env, "PYTHONPATH": str(Path(__file__).parent.parent)})
    assert r.returncode in (0, 1) and set(os.listdir(tmp_path)) == before  # the unpack directory is gone


def test_member_names_work_in_go(fixtures_built, binaries_built, tmp_path):
    ball = tmp_path / "go.tar.gz"
    with tarfile.open(ball, "w:gz") as tf:
        tf.add(binaries_built["go-linux-amd64"], arcname="bin/app")
    r = run_binlens("go", str(ball))
    assert r.returncode == 0 and r.stdout.startswith(f"{ball}!bin/app: go1."), r.stdout
    with pytest.raises(AnalyzerError):
        list(pipeline.scan([str(tmp_path / "missing.deb")]))


@pytest.mark.parametrize("compression,member", [("zstd", "data.tar.zst"), ("gzip", "data.tar.gz"),
                                                 ("none", "data.tar")])
def test_rebuilt_deb_equals_dpkg_deb_x(fixtures_built, tmp_path, compression, member):
    """A .deb rebuilt with zstd (as Ubuntu ships them), gzip, or none: members equal dpkg-deb -x of it."""
    root = tmp_path / "pkg"
    subprocess.run(["dpkg-deb", "-R", str(fixtures_built["coreutils.deb"]), str(root)], check=True)
    deb = tmp_path / f"coreutils-{compression}.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", f"-Z{compression}", "-z1", "-b", str(root), str(deb)],
                   check=True, capture_output=True)
    assert member in subprocess.run(["ar", "t", str(deb)], capture_output=True, text=True, check=True).stdout.split()
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp_path / "x")], check=True)
    assert _compare(str(deb), tmp_path / "x") > 100


@pytest.mark.parametrize("payload", ["xzdio", "gzdio", "zstdio"])
def test_rpm_members_equal_rpm2cpio(binaries_built, tmp_path, payload):
    """An RPM built by rpmbuild (payload compressed as RPM distributions do): members equal
    `rpm2cpio | cpio -id`."""
    src = tmp_path / "payload"
    (src / "usr" / "bin").mkdir(parents=True)
    for n in ("c-rawsys", "c-x86_64-gnu.2.34"):
        shutil.copy(binaries_built[n], src / "usr" / "bin" / n)
    os.link(src / "usr" / "bin" / "c-rawsys", src / "usr" / "bin" / "c-rawsys-too")  # (a hard link: cpio sets)
    rpm = build_rpm(tmp_path, src, ["/usr/bin/c-rawsys", "/usr/bin/c-rawsys-too", "/usr/bin/c-x86_64-gnu.2.34"],
                    payload)
    out = tmp_path / "x"
    out.mkdir()
    subprocess.run(f"rpm2cpio {rpm} | cpio -id --quiet", shell=True, cwd=out, check=True)
    assert (out / "usr/bin/c-rawsys-too").stat().st_nlink == 2
    assert _compare(str(rpm), out) == 3


def test_alpine_apk_concatenated_gzip_streams(binaries_built, tmp_path):
    """An Alpine .apk: gzip members concatenated (signature, control, data), one tar stream in all."""
    apk = build_apk(tmp_path / "t-1.0-r0.apk", b"pkgname = t\n",
                    {"usr/bin/t": binaries_built["c-x86_64-musl-static"].read_bytes()})
    out = tmp_path / "x"
    out.mkdir()
    subprocess.run(["tar", "-xzf", str(apk), "-C", str(out)], check=True)
    assert _compare(str(apk), out) == 1


def _deb_layer(deb: Path, merged_usr: bool) -> bytes:
    """A gzip layer of a package's files (dpkg-deb -x); with merged_usr, /lib moved under /usr with a
    symlinked /lib, as Debian's usrmerge lays a system out, and the C library, when there, a hard link of
    another name (tar stores that name first, sorted: libc.so.6 is the link). Made once per package (its
    fixture directory names its source's digest)."""
    def make(out: Path) -> None:
        root = out.with_name(out.name + ".root")
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
        if merged_usr:
            for d in ("lib", "lib64"):
                if (root / d).is_dir():
                    (root / "usr" / d).mkdir(parents=True, exist_ok=True)
                    subprocess.run(["cp", "-a", f"{root / d}/.", str(root / "usr" / d)], check=True)
                    shutil.rmtree(root / d)
                    (root / d).symlink_to(f"usr/{d}")
            libc = root / "usr/lib/x86_64-linux-gnu/libc.so.6"
            if libc.is_file():
                os.link(libc, libc.parent / "libc-first.so")
        subprocess.run(["tar", "--sort=name", "-czf", str(out), "-C", str(root), "."], check=True)
        shutil.rmtree(root)

    return made_once(f"layer-{deb.parent.name}-{'merged' if merged_usr else 'plain'}.tar.gz", make).read_bytes()


@pytest.mark.parametrize("kind", ["oci-dir", "docker", "oci-top-zip"])
def test_image_as_sysroot_equals_the_unpacked_tree(fixtures_built, tmp_path, kind):
    """`deps --sysroot image` resolves every program as `deps --sysroot` does on the image unpacked
    layer by layer with tar (merged /usr, a whiteout removing a library: the loader error predicted; the C
    library a hard link, which was left out of the image's tree before)."""
    layers = [_deb_layer(fixtures_built["libc6.deb"], True),
              _deb_layer(fixtures_built["coreutils.deb"], False),
              _layer({"usr/lib/x86_64-linux-gnu/.wh.libm.so.6": None})]
    img = _image(tmp_path, layers, kind)
    fs = _extract_layers(tmp_path, layers, "--keep-directory-symlink")
    progs = ["/bin/ls", "/bin/cat", "/usr/bin/sort"]
    r = run_binlens("deps", *progs, "--sysroot", str(img), "--format", "json")
    assert r.returncode in (0, 1), r.stderr
    def named(a: dict) -> dict:  # the program as each run names it: the image member or the unpacked file
        return json.loads(json.dumps(a["facts"]["deps"]).replace(json.dumps(a["path"])[1:-1], "PROGRAM"))

    mine = {a["path"].split("!", 1)[1]: named(a) for a in json.loads(r.stdout)["artifacts"]}
    t = run_binlens("deps", *(str(fs / p.lstrip("/")) for p in progs), "--sysroot", str(fs), "--format", "json")
    theirs = {os.path.relpath(a["path"], fs): named(a) for a in json.loads(t.stdout)["artifacts"]}
    for d in theirs.values():
        assert d.pop("sysroot") == str(fs)
    for d in mine.values():
        assert d.pop("sysroot") == str(img)
    assert subprocess.run(["tar", "-tvzf", str(tmp_path / "layer0.tar.gz"), "./usr/lib/x86_64-linux-gnu/libc.so.6"],
                          capture_output=True, text=True, check=True).stdout.startswith("h")  # fmt: skip
    assert mine == theirs and set(mine) == {p.lstrip("/") for p in progs}
    # cat needs only libc; ls also libselinux, which is not in this image: the loader's own message
    assert mine["bin/cat"]["loader_errors"] == [] and "libselinux.so.1: cannot open shared object file" in \
        mine["bin/ls"]["loader_errors"][0]
    # every program of the image, when none is named
    every = run_binlens("deps", "--sysroot", str(img), "--format", "json")
    names = [a["path"] for a in json.loads(every.stdout)["artifacts"]]
    assert f"{img}!bin/ls" in names and len(names) > 100


def _set_as_sysroot_equals_tree(containers: list[Path], fs: Path, progs: list[str]) -> dict[str, dict]:
    """`deps PROGS --sysroot C1 --sysroot C2...` resolves each program as `deps` does in the tree `fs` the trusted
    tools made of the containers (each program named by the container that wrote it last); the tree's deps facts
    by program."""
    r = run_binlens("deps", *progs, *(x for c in containers for x in ("--sysroot", str(c))), "--format", "json")
    assert r.returncode in (0, 1), r.stderr
    t = run_binlens("deps", *(str(fs / p.lstrip("/")) for p in progs), "--sysroot", str(fs), "--format", "json")

    def named(a: dict) -> dict:
        return json.loads(json.dumps(a["facts"]["deps"]).replace(json.dumps(a["path"])[1:-1], "PROGRAM"))

    mine = {a["path"]: named(a) for a in json.loads(r.stdout)["artifacts"]}
    theirs = {os.path.relpath(a["path"], fs): named(a) for a in json.loads(t.stdout)["artifacts"]}
    assert set(mine) == {f"{containers[-1]}!{p.lstrip('/')}" for p in progs}
    for d in mine.values():
        assert d.pop("sysroot") == ",".join(str(c) for c in containers)
    for d in theirs.values():
        assert d.pop("sysroot") == str(fs)
    assert {k.split("!", 1)[1]: v for k, v in mine.items()} == theirs
    return theirs


def test_set_of_debs_as_sysroot_equals_dpkg_deb_x(fixtures_built, tmp_path):
    """`deps --sysroot libc6.deb --sysroot coreutils.deb`: the packages installed together (in that order) are the
    sysroot; each program resolves as in the tree `dpkg-deb -x` makes of both, and is named by its package."""
    debs = [fixtures_built["libc6.deb"], fixtures_built["coreutils.deb"]]
    fs = tmp_path / "fs"
    for deb in debs:
        subprocess.run(["dpkg-deb", "-x", str(deb), str(fs)], check=True)
    theirs = _set_as_sysroot_equals_tree(debs, fs, ["/bin/ls", "/bin/cat", "/usr/bin/sort"])
    assert theirs["bin/cat"]["loader_errors"] == []  # libc6.deb's C library is found: the set is one filesystem
    # a directory among several sysroots: refused, one line
    bad = run_binlens("deps", "/bin/ls", "--sysroot", str(fs), "--sysroot", str(debs[1]))
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and str(fs) in bad.stderr


def test_set_of_rpms_as_sysroot_equals_rpm2cpio(fixtures_built, tmp_path):
    """`deps --sysroot libc.rpm --sysroot coreutils.rpm`: RPMs (rpmbuild's, of the files of Debian's libc6 and
    coreutils: symlinks, directories and the C library) installed together are the sysroot, as a set of .debs
    is; each program resolves as in the tree `rpm2cpio | cpio -idm` makes of both. (An RPM was no sysroot:
    `not an image, tarball or .deb`.)"""
    rpms = []
    for name in ("libc6", "coreutils"):
        def make(path: Path, name: str = name) -> None:  # (rpmbuild takes seconds: made once, fixture cache)
            import tempfile

            with tempfile.TemporaryDirectory() as tmp:
                tree = Path(tmp) / "tree"
                subprocess.run(["dpkg-deb", "-x", str(fixtures_built[f"{name}.deb"]), str(tree)], check=True)
                tops = sorted(f"/{p.name}" for p in tree.iterdir())
                shutil.copy(build_rpm(Path(tmp) / "build", tree, tops, payload="gzdio", name=name), path)

        rpms.append(made_once(f"{name}-from-deb.rpm", make))
    fs = tmp_path / "fs"
    fs.mkdir()
    for rpm in rpms:
        cpio = subprocess.run(["rpm2cpio", str(rpm)], capture_output=True, check=True).stdout
        subprocess.run(["cpio", "-idm", "--quiet", "--no-absolute-filenames"], input=cpio, cwd=fs, check=True)
    theirs = _set_as_sysroot_equals_tree(rpms, fs, ["/bin/ls", "/bin/cat", "/usr/bin/sort"])
    assert theirs["bin/cat"]["loader_errors"] == []  # the C library of the first RPM is found
    r = run_binlens("deps", f"{rpms[1]}!bin/ls")  # (the advice for a member of an RPM is to resolve it there)
    assert r.returncode == 2 and f"binlens deps --sysroot {rpms[1]} /bin/ls" in r.stderr, r.stderr
    cut = tmp_path / "cut.rpm"  # (its payload cut short: one line naming it)
    cut.write_bytes(rpms[1].read_bytes()[:300_000])
    r = run_binlens("deps", "--sysroot", str(cut), "/bin/ls")
    assert r.returncode == 2 and r.stderr.startswith(f"binlens: {cut}: corrupt or truncated RPM (") and \
        r.stderr.count("\n") == 1, r.stderr


def test_check_loading_reports_every_program_that_would_fail(fixtures_built, tmp_path):
    """`scan IMAGE --check-loading`: every dynamic program of the image resolved in the image; those the loader
    would refuse fail the gate (DEP001 here: ls needs libselinux, which the image lacks), with the same deps
    facts as `deps --sysroot IMAGE`."""
    core = tmp_path / "core"
    subprocess.run(["dpkg-deb", "-x", str(fixtures_built["coreutils.deb"]), str(core)], check=True)
    three = {n: (core / n).read_bytes() for n in ("bin/ls", "bin/cat", "usr/bin/sort")}  # a small image: quick
    layers = [_deb_layer(fixtures_built["libc6.deb"], True), _layer(three)]
    img = _image(tmp_path, layers, "docker")
    r = run_binlens("scan", str(img), "--check-loading", "--format", "json")
    assert r.returncode == 1, r.stderr
    arts = {a["path"]: a for a in json.loads(r.stdout)["artifacts"]}
    ls, cat = arts[f"{img}!bin/ls"], arts[f"{img}!bin/cat"]
    # the missing library (DEP001) and the symbols nothing then defines (DEP003)
    assert {f["rule"] for f in ls["findings"] if f["rule"].startswith("DEP")} == {"DEP001", "DEP003"}
    assert not [f for f in cat["findings"] if f["rule"].startswith("DEP")]
    d = json.loads(run_binlens("deps", "/bin/ls", "--sysroot", str(img), "--format", "json").stdout)
    assert d["artifacts"][0]["facts"]["deps"] == ls["facts"]["deps"]
    for bad_args in ((str(img), str(img)), (str(core), str(core)), (str(core / "bin" / "ls"),)):
        bad = run_binlens("scan", *bad_args, "--check-loading")
        assert bad.returncode == 2 and "--check-loading takes one" in bad.stderr and "root filesystem directory" \
            in bad.stderr, bad.stderr
    (tmp_path / "empty").mkdir()  # a tree with no program, and a path that is not there: one line each
    for where, problem in ((tmp_path / "empty", "no dynamically linked program in the tree"),
                           (tmp_path / "absent", "no such file")):
        bad = run_binlens("scan", str(where), "--check-loading")
        assert bad.returncode == 2 and bad.stderr == f"binlens: {where}: {problem}\n", bad.stderr


@pytest.mark.parametrize("kind", ["oci-dir", "docker"])
def test_check_loading_uses_the_images_environment(fixtures_built, tmp_path, kind):
    """An image whose config sets LD_LIBRARY_PATH=/opt/app/lib for its programs (as many do for a bundled
    library directory), holding /opt/app/bin/app that needs /opt/app/lib/libapp.so and has no RPATH: the program
    loads in the container, so `scan IMAGE --check-loading` and `deps --sysroot IMAGE` find libapp.so through
    LD_LIBRARY_PATH (before: DEP001, a failure that is not one; DEP005 warns that it loads only so); with
    LD_PRELOAD set there too, the preloaded library is mapped (items of Env that are no NAME=value string are
    left out, a value ends at a NUL). The real loader, chrooted in the image's layers extracted by tar, with the
    config's environment: it loads; without it, it does not."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.c").write_text("int app_value(void){return 1;}\n")
    (src / "p.c").write_text("int preloaded_value(void){return 2;}\n")
    (src / "m.c").write_text("int app_value(void);\nint main(void){ return app_value() - 1; }\n")
    for args in (["-shared", "-fPIC", "-Wl,-soname,libapp.so", "a.c", "-o", "libapp.so"],
                 ["-shared", "-fPIC", "p.c", "-o", "libpre.so"], ["m.c", "-L.", "-lapp", "-o", "app"]):
        subprocess.run(["gcc", *args], cwd=src, check=True)
    files = {"opt/app/bin/app": (src / "app").read_bytes(), "opt/app/lib/libapp.so": (src / "libapp.so").read_bytes(),
             "opt/app/lib/libpre.so": (src / "libpre.so").read_bytes()}
    layers = [_deb_layer(fixtures_built["libc6.deb"], True), _layer(files)]
    env = {"PATH": "/usr/bin:/bin", "LD_LIBRARY_PATH": "/opt/app/lib", "LD_PRELOAD": "libpre.so"}
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "config": {"Env": [*(f"{k}={v}" for k, v in env.items()), 1, "NO_EQUALS", "X=\0y"]}}).encode()
    img = _image(tmp_path, layers, kind, config=config)
    fs = _extract_layers(tmp_path, layers)
    def inside() -> None:  # (chrooted in the child itself: chroot(8) would be started with the environment too)
        os.chroot(fs)
        os.chdir("/")

    ran = subprocess.run(["/opt/app/bin/app"], capture_output=True, text=True, env=env, preexec_fn=inside)
    bare = subprocess.run(["/opt/app/bin/app"], capture_output=True, text=True, env={}, preexec_fn=inside)
    assert ran.returncode == 0 and ran.stderr == "" and bare.returncode == 127 and "libapp.so" in bare.stderr
    r = run_binlens("scan", str(img), "--check-loading", "--format", "json")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    app = {a["path"]: a for a in json.loads(r.stdout)["artifacts"]}[f"{img}!opt/app/bin/app"]
    # (found through LD_LIBRARY_PATH only: DEP005's warning stands, as for --ld-library-path; no error)
    assert {f["rule"] for f in app["findings"] if f["rule"].startswith("DEP")} == {"DEP005"}, app["findings"]
    libs = {lib["name"]: lib for lib in app["facts"]["deps"]["libraries"]}
    assert libs["libapp.so"]["found_by"] == "LD_LIBRARY_PATH" and libs["libpre.so"]["found_by"].startswith("LD_PRELOAD")
    d = json.loads(run_binlens("deps", "/opt/app/bin/app", "--sysroot", str(img), "--format", "json").stdout)
    assert d["artifacts"][0]["facts"]["deps"]["loader_errors"] == []


@pytest.mark.parametrize("kind", ["oci-dir", "docker"])
def test_check_loading_binds_now_where_the_image_says_so(fixtures_built, tmp_path, kind):
    """An image whose config sets LD_BIND_NOW=1 (a hardened image's choice), holding a program that calls a
    function its library no longer defines, on a path its run does not take: glibc binds every function at
    start-up under it, so the program stops before main in its container; `scan IMAGE --check-loading` and `deps
    --sysroot IMAGE` say so (DEP003 at start-up, the loader's line), where without that setting the program
    starts (DEP003 at first call: the failure waits for the call). The real loader, chrooted in the image's
    layers, with and without the config's environment."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.c").write_text("int app_value(void){return 1;}\nint later(void){return 2;}\n")
    (src / "a2.c").write_text("int app_value(void){return 1;}\n")
    (src / "m.c").write_text("int app_value(void); int later(void);\n"
                             "int main(int argc, char **argv){ return argc > 5 ? later() : app_value() - 1; }\n")
    for args in (["-shared", "-fPIC", "-Wl,-soname,libapp.so", "a.c", "-o", "libapp.so"],
                 ["m.c", "-L.", "-lapp", "-Wl,-rpath,/opt/app/lib", "-o", "app"],
                 ["-shared", "-fPIC", "-Wl,-soname,libapp.so", "a2.c", "-o", "libapp.so"]):
        subprocess.run(["gcc", *args], cwd=src, check=True)
    files = {"opt/app/bin/app": (src / "app").read_bytes(), "opt/app/lib/libapp.so": (src / "libapp.so").read_bytes()}
    layers = [_deb_layer(fixtures_built["libc6.deb"], True), _layer(files)]
    fs = _extract_layers(tmp_path, layers)

    def inside() -> None:
        os.chroot(fs)
        os.chdir("/")

    for bind_now in (False, True):
        env = {"PATH": "/usr/bin:/bin", **({"LD_BIND_NOW": "1"} if bind_now else {})}
        config = json.dumps({"architecture": "amd64", "os": "linux",
                             "config": {"Env": [f"{k}={v}" for k, v in env.items()]}}).encode()
        (tmp_path / str(bind_now)).mkdir()
        img = _image(tmp_path / str(bind_now), layers, kind, config=config)
        ran = subprocess.run(["/opt/app/bin/app"], capture_output=True, text=True, env=env, preexec_fn=inside)
        assert (ran.returncode == 127) == bind_now, ran.stderr
        r = run_binlens("scan", str(img), "--check-loading", "--format", "json", "--no-cache")
        assert r.returncode == 1, r.stdout[-2000:] + r.stderr  # (DEP003 either way: an import nothing defines)
        app = {a["path"]: a for a in json.loads(r.stdout)["artifacts"]}[f"{img}!opt/app/bin/app"]
        (dep3,) = [f["message"] for f in app["findings"] if f["rule"] == "DEP003"]
        assert dep3.endswith("fails at start-up" if bind_now else "fails at first call"), dep3
        deps = app["facts"]["deps"]
        (later,) = [b for b in deps["bindings"] if b["symbol"] == "later"]
        assert later["binds_to"] is None and later["when"] == ("start-up" if bind_now else "first call")
        d = json.loads(run_binlens("deps", "/opt/app/bin/app", "--sysroot", str(img), "--format", "json").stdout)
        # (the program named as binlens names the image's member, where the loader has its path in the image)
        said = [line.replace(f"{img}!opt/", "/opt/") for line in deps["loader_errors"]]
        assert d["artifacts"][0]["facts"]["deps"]["loader_errors"] == deps["loader_errors"]
        assert said == ran.stderr.splitlines(), (said, ran.stderr)


@pytest.mark.parametrize("kind", ["oci-dir", "docker"])
def test_check_loading_opens_relative_paths_from_the_images_working_directory(fixtures_built, tmp_path, kind):
    """A program that needs its library by a relative path (`lib/libapp.so`, linked by path), in an image whose
    config's WorkingDir is /opt/app: its processes start there, so the program loads; with WorkingDir / it
    does not. `scan IMAGE --check-loading` and `deps --sysroot IMAGE` open the path from the config's WorkingDir
    (before: from /, a failure in both). The real loader, chrooted in the image's layers, started in each."""
    src = tmp_path / "src"
    (src / "lib").mkdir(parents=True)
    (src / "a.c").write_text("int app_value(void){return 1;}\n")
    (src / "m.c").write_text("int app_value(void);\nint main(void){ return app_value() - 1; }\n")
    subprocess.run(["gcc", "-shared", "-fPIC", "-Wl,-soname,lib/libapp.so", "a.c", "-o", "lib/libapp.so"], cwd=src,
                   check=True)  # fmt: skip
    subprocess.run(["gcc", "m.c", "lib/libapp.so", "-o", "app"], cwd=src, check=True)
    files = {"opt/app/bin/app": (src / "app").read_bytes(),
             "opt/app/lib/libapp.so": (src / "lib" / "libapp.so").read_bytes()}
    layers = [_deb_layer(fixtures_built["libc6.deb"], True), _layer(files)]
    fs = _extract_layers(tmp_path, layers)
    for workdir in ("/opt/app", "/"):
        def inside(at: str = workdir) -> None:
            os.chroot(fs)
            os.chdir(at)

        config = json.dumps({"architecture": "amd64", "os": "linux",
                             "config": {"Env": ["PATH=/usr/bin:/bin"], "WorkingDir": workdir}}).encode()
        (tmp_path / workdir.replace("/", "_")).mkdir()
        img = _image(tmp_path / workdir.replace("/", "_"), layers, kind, config=config)
        ran = subprocess.run(["/opt/app/bin/app"], capture_output=True, text=True, env={}, preexec_fn=inside)
        r = run_binlens("scan", str(img), "--check-loading", "--format", "json", "--no-cache")
        app = {a["path"]: a for a in json.loads(r.stdout)["artifacts"]}[f"{img}!opt/app/bin/app"]
        said = [line.replace(f"{img}!opt/", "/opt/") for line in app["facts"]["deps"]["loader_errors"]]
        assert said == ran.stderr.splitlines() and (ran.returncode == 0) == (workdir == "/opt/app"), (said, ran)
        d = json.loads(run_binlens("deps", "/opt/app/bin/app", "--sysroot", str(img), "--format", "json").stdout)
        assert d["artifacts"][0]["facts"]["deps"]["loader_errors"] == app["facts"]["deps"]["loader_errors"]


def test_an_images_settings_of_the_wrong_shape_are_left_out():
    """An image config whose Env and WorkingDir are not what the OCI spec says (a number, a relative path, a NUL
    inside, a list of non-strings, no config at all): what can be read is, the rest is left out, no error."""
    from analyzer.load.archives import WORKDIR, config_env

    assert config_env({"config": {"Env": 5, "WorkingDir": 7}}) == {}
    assert config_env({"config": {"Env": [1, None, "A=b"], "WorkingDir": "rel/dir"}}) == {"A": "b"}
    assert config_env({"config": {"WorkingDir": "/app\0junk"}}) == {WORKDIR: "/app"}
    assert config_env([]) == config_env({"config": None}) == {}


def test_each_member_names_the_layer_that_added_it(binaries_built, tmp_path):
    a, c = binaries_built["c-rawsys"].read_bytes(), binaries_built["c-x86_64-gnu.2.34"].read_bytes()
    layers = [_layer({"usr/bin/a": a, "usr/bin/b": a}), _layer({"usr/bin/b": c})]
    digests = ["sha256:" + hashlib.sha256(x).hexdigest() for x in layers]
    for kind, want in (("oci-dir", digests), ("docker", ["l0/layer.tar", "l1/layer.tar"])):
        (tmp_path / kind).mkdir()
        img = _image(tmp_path / kind, layers, kind)
        arts = {a["path"].split("!", 1)[1]: a for a in
                json.loads(run_binlens("scan", str(img), "--format", "json", "--no-cache").stdout)["artifacts"]}
        assert arts["usr/bin/a"]["layer"] == want[0] and arts["usr/bin/b"]["layer"] == want[1], kind
        assert list(arts["usr/bin/a"])[:7] == ["path", "sha256", "size", "format", "error", "layer", "facts"]


def test_layer_of_a_cached_member_is_this_images(binaries_built, tmp_path):
    """The result cache keeps a member's facts with the layer that added it: a rebuilt image whose layer holds the
    same file at the same path, under the same image name, reports its own layer, as a scan without the cache
    does (it reported the first image's)."""
    a, b = binaries_built["c-rawsys"].read_bytes(), binaries_built["c-x86_64-gnu.2.34"].read_bytes()
    cache, img = tmp_path / "cache", tmp_path / "img"
    seen = []
    for n, first in enumerate(({"usr/bin/a": a}, {"usr/bin/a": a, "etc/motd": b"rebuilt"})):
        (tmp_path / str(n)).mkdir()
        shutil.rmtree(img, ignore_errors=True)
        shutil.copytree(_image(tmp_path / str(n), [_layer(first), _layer({"usr/bin/b": b})], "oci-dir"), img)
        both = []
        for flag in (("--cache-dir", str(cache)), ("--no-cache",)):
            r = run_binlens("scan", str(img), "--format", "json", *flag)
            assert r.returncode in (0, 1), r.stderr
            both.append({x["path"]: x["layer"] for x in json.loads(r.stdout)["artifacts"]})
        assert both[0] == both[1], n
        seen.append(both[0])
    assert seen[0][f"{img}!usr/bin/a"] != seen[1][f"{img}!usr/bin/a"]
    assert seen[0][f"{img}!usr/bin/b"] == seen[1][f"{img}!usr/bin/b"]


def _multi_platform(root: Path, platforms: dict[str, dict[str, bytes]]) -> list[dict]:
    """An OCI layout at `root` of one image for several linux platforms (arch[/variant] → its one layer's files),
    and a buildx attestation manifest; index.json's manifests."""
    put = _blob_store(root)
    manifests = []
    for platform, files in platforms.items():
        arch, _, variant = platform.partition("/")
        layer = put(_layer(files))
        m = put(json.dumps({"schemaVersion": 2, "config": {"digest": put(b"{}"), "size": 2},
                            "layers": [{"digest": layer, "size": 1}]}).encode())
        manifests.append({"digest": m, "size": 1, "platform": {"os": "linux", "architecture": arch,
                                                               **({"variant": variant} if variant else {})}})
    attestation = put(json.dumps({"schemaVersion": 2, "config": {"digest": put(b"{}"), "size": 2},
                                  "layers": []}).encode())
    manifests.append({"digest": attestation, "size": 1, "platform": {"os": "unknown", "architecture": "unknown"},
                      "annotations": {"vnd.docker.reference.type": "attestation-manifest"}})
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": manifests}))
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return manifests


def test_platform_chosen_in_a_multi_platform_index(binaries_built, tmp_path):
    """--platform chooses an image of a multi-platform index, for every command that reads images (scan, deps,
    syscalls, explain, diff). Without it the image's one platform is read — the only manifest the file holds (a
    `docker save` of one pulled platform keeps the whole index) — and an image of several is the image's error
    naming them: reading one would leave the others' binaries unaudited, and choosing this machine's would
    make the report depend on where it runs. buildx's attestation manifests (unknown/unknown) are no platform."""
    amd, arm = binaries_built["c-x86_64-musl-static"].read_bytes(), binaries_built["c-aarch64-musl-static"].read_bytes()
    dynamic = binaries_built["c-aarch64-gnu.2.17"].read_bytes()  # (a program for --check-loading to resolve)
    root = tmp_path / "multi"
    manifests = _multi_platform(root, {"amd64": {"bin/amd64": amd}, "arm64": {"bin/arm64": arm, "bin/dyn": dynamic}})

    def members(*extra: str, image: Path = root) -> list[str]:
        r = run_binlens("scan", str(image), "--format", "json", "--no-cache", *extra)
        assert r.returncode in (0, 1), r.stderr
        return [a["path"].split("!", 1)[1] for a in json.loads(r.stdout)["artifacts"]]

    assert members("--platform", "linux/arm64") == ["bin/arm64", "bin/dyn"]
    assert members("--platform", "linux/amd64") == ["bin/amd64"]
    assert members("--platform", "linux/arm64", "--check-loading") == ["bin/dyn"]
    # the platform read is told: the JSON report's `installed` (its config's word, else its index's), the SBOM's
    # subject
    r = run_binlens("scan", str(root), "--platform", "linux/arm64", "--format", "json", "--no-cache")
    assert json.loads(r.stdout)["installed"][str(root)]["platform"] == "linux/arm64", r.stderr
    both = "2 platforms in one image (linux/amd64, linux/arm64): choose one with --platform"
    r = run_binlens("scan", str(root))
    assert r.returncode == 2 and r.stderr == f"binlens: {root}: {both}\n", r.stderr
    r = run_binlens("scan", str(root), "--platform", "linux/s390x")
    assert r.returncode == 2 and "no manifest for platform linux/s390x" in r.stderr and "linux/arm64" in r.stderr
    arm = tmp_path / "arm"  # (variants: linux/arm names both, linux/arm/v7 one)
    _multi_platform(arm, {"arm/v6": {"bin/v6": amd}, "arm/v7": {"bin/v7": amd}})
    assert members("--platform", "linux/arm/v7", image=arm) == ["bin/v7"]
    r = run_binlens("scan", str(arm), "--platform", "linux/arm")
    assert r.returncode == 2 and "2 variants of platform linux/arm in the image index (linux/arm/v6, " \
        "linux/arm/v7): name one" in r.stderr, r.stderr

    # the other commands that read an image: the same choice, the same error without one
    r = run_binlens("syscalls", "--sysroot", str(root), "--platform", "linux/arm64", "/bin/arm64", "--format", "json")
    assert r.returncode == 0, r.stderr
    assert [a["facts"]["arch"] for a in json.loads(r.stdout)["artifacts"]] == ["aarch64"]
    r = run_binlens("syscalls", f"{root}!bin/arm64", "--platform", "linux/arm64", "--format", "json")
    assert r.returncode == 0 and len(json.loads(r.stdout)["artifacts"]) == 1, r.stderr
    r = run_binlens("explain", "--sysroot", str(root), "--platform", "linux/arm64", "--binary", "/bin/amd64", "x")
    assert r.returncode == 2 and "no such file in the image: /bin/amd64" in r.stderr, r.stderr
    for cmd in (["syscalls", "--sysroot", str(root), "/bin/arm64"], ["deps", "--sysroot", str(root)],
                ["explain", "--sysroot", str(root), "--binary", "/bin/arm64", "x"], ["diff", str(root), str(root)]):
        r = run_binlens(*cmd)
        assert r.returncode == 2 and both in r.stderr and r.stderr.count("\n") == 1, (cmd, r.stderr)
    r = run_binlens("diff", str(root), str(root), "--platform", "linux/arm64", "--format", "json")
    assert r.returncode == 0, r.stderr
    assert [p["old"].split("!", 1)[1] for p in json.loads(r.stdout)["pairs"]] == ["bin/arm64", "bin/dyn"]

    # a file holding one platform's blobs: that platform, whatever this machine is (x86-64 here)
    amd_manifest = root / "blobs" / "sha256" / manifests[0]["digest"].split(":")[1]
    amd_manifest.unlink()
    assert members() == ["bin/arm64", "bin/dyn"]
    r = run_binlens("syscalls", "--sysroot", str(root), "/bin/arm64")
    assert r.returncode == 0, r.stderr


def test_diff_of_two_images_says_the_platform_changed(binaries_built, tmp_path):
    """`binlens diff` of an image and its rebuild for another platform says so (JSON `packages.platform`, the
    text's `platform: linux/amd64 -> linux/arm64`): its binaries pair with none (another architecture), and
    nothing else in the report said why."""
    old, new = tmp_path / "old", tmp_path / "new"
    _multi_platform(old, {"amd64": {"bin/app": binaries_built["c-x86_64-musl-static"].read_bytes()}})
    _multi_platform(new, {"arm64": {"bin/app": binaries_built["c-aarch64-musl-static"].read_bytes()}})
    r = run_binlens("diff", str(old), str(new), "--format", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["packages"]["platform"] == [{"image": str(new), "old": "linux/amd64",
                                                             "new": "linux/arm64"}]
    assert "platform: linux/amd64 -> linux/arm64\n" in run_binlens("diff", str(old), str(new)).stdout


def test_go_and_checksec_choose_the_platform_too(binaries_built, tmp_path):
    """`binlens go` and `binlens checksec` read a multi-platform image for --platform (or binlens.toml's
    platform, which `binlens go FILE...` honours on its fast path too): as `go version -m` and checksec's
    columns of that platform's files."""
    goamd, goarm = (binaries_built[n] for n in ("go-linux-amd64", "go-linux-arm64"))
    root = tmp_path / "multi"
    _multi_platform(root, {"amd64": {"bin/app": goamd.read_bytes()}, "arm64": {"bin/app": goarm.read_bytes()}})
    expected = {arch: subprocess.run([str(build.go_binary()), "version", "-m", str(f)], capture_output=True, text=True,
                                     check=True).stdout.replace(f"{f}:", f"{root}!bin/app:", 1)
                for arch, f in (("amd64", goamd), ("arm64", goarm))}  # fmt: skip
    for arch in ("amd64", "arm64"):
        r = run_binlens("go", str(root), "--platform", f"linux/{arch}")
        assert r.returncode == 0 and r.stdout == expected[arch], r.stderr
    r = run_binlens("go", str(root))
    assert r.returncode == 2 and "2 platforms in one image (linux/amd64, linux/arm64)" in r.stderr, r.stderr
    (tmp_path / "binlens.toml").write_text('platform = "linux/arm64"\n')
    told = subprocess.run([sys.executable, "-m", "analyzer", "go", str(root), str(goamd)], capture_output=True,
                          text=True, cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(ROOT)))  # fmt: skip
    assert told.returncode == 0 and told.stdout.startswith(expected["arm64"]), told.stderr
    r = run_binlens("checksec", str(root), "--platform", "linux/arm64", "--format", "json")
    assert r.returncode == 0 and list(json.loads(r.stdout)) == [f"{root}!bin/app"], r.stderr


def test_member_names_not_utf8_with_markup_and_control_characters(binaries_built, tmp_path):
    """Member names are names read from a file: bytes that are not UTF-8 and control characters become \\xNN
    (docs/json-report.md), `[/]`, `<&>` stay text; every format is written and the rules run."""
    elf = binaries_built["c-rawsys"].read_bytes()
    ball = tmp_path / "n.tar"
    with tarfile.open(ball, "w", encoding="utf-8", errors="surrogateescape") as tf:
        for n in ("a\udcff[/]b", "c\x1b[31m<&>"):
            info = tarfile.TarInfo(n)
            info.size = len(elf)
            tf.addfile(info, io.BytesIO(elf))
    for fmt in ("text", "json", "jsonl", "sarif", "junit", "markdown"):
        r = run_binlens("scan", str(ball), "--format", fmt, "--fail-on", "never")
        assert r.returncode == 0 and "Traceback" not in r.stderr, (fmt, r.stderr[-500:])
        assert "\x1b" not in r.stdout, fmt
    paths = [a["path"] for a in json.loads(run_binlens("scan", str(ball), "--format", "json").stdout)["artifacts"]]
    assert paths == [f"{ball}!a\\xff[/]b", f"{ball}!c\\x1b[31m<&>"]


def test_java_classes_are_not_fat_mach_o(fixtures_built, binaries_built, tmp_path):
    """A Java class file starts with 0xCAFEBABE, as a Mach-O fat file does (then its major version, 45 and up,
    where a fat file has its slice count): file(1) calls it Java, and so does binlens: a jar of classes holds
    no binary, a class named on the command line is not one, and a folder with the jar reports only its
    program (143,000 classes of a cloud SDK were reported as broken Mach-O files)."""
    jar = fixtures_built["commons-cli.jar"]
    out = tmp_path / "classes"
    subprocess.run(["unzip", "-q", str(jar), "-d", str(out)], check=True)
    cls = next(p for p in sorted(out.rglob("*.class")))
    assert "Java class" in subprocess.run(["file", "-b", str(cls)], capture_output=True, text=True).stdout
    one = run_binlens("scan", str(cls))
    assert one.returncode == 2 and "not an ELF, PE or Mach-O file" in one.stderr
    none = run_binlens("scan", str(jar))
    assert none.returncode == 2 and "no ELF, PE or Mach-O files found" in none.stderr
    folder = tmp_path / "dist"
    folder.mkdir()
    shutil.copy(jar, folder / "lib.jar")
    shutil.copy(binaries_built["c-rawsys"], folder / "app")
    report = json.loads(run_binlens("scan", str(folder), "--format", "json", "--no-cache").stdout)
    assert [a["path"] for a in report["artifacts"]] == [str(folder / "app")]


def test_compressed_members_are_expanded_only_when_they_hold_a_tar(binaries_built, tmp_path):
    """Inside a tarball, a .tar.gz and a .tar.xz are expanded (their programs scanned), while gzip and xz files
    of text (man pages) are seen to hold no tar from their first bytes and are not written out at all."""
    import io
    import lzma

    elf = binaries_built["c-rawsys"].read_bytes()

    def tar_of(members: dict[str, bytes]) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tf:
            for name, data in members.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
        return buf.getvalue()

    page = b".TH LS 1\n" + b"list directory contents, and so on and so forth\n" * 200
    outer = tmp_path / "outer.tar"
    outer.write_bytes(tar_of({
        "a.tar.gz": gzip.compress(tar_of({"bin/a": elf}), mtime=0),
        "b.tar.xz": lzma.compress(tar_of({"bin/b": elf})),
        "man/ls.1.gz": gzip.compress(page, mtime=0),
        "man/ls.1.xz": lzma.compress(page),
    }))  # fmt: skip
    assert sorted(_entries([str(outer)])) == [f"{outer}!a.tar.gz!bin/a", f"{outer}!b.tar.xz!bin/b"]
    from analyzer.load import archives

    assert archives._compressed_non_tar(gzip.compress(page, mtime=0)[:264])
    assert archives._compressed_non_tar(lzma.compress(page)[:264])
    assert not archives._compressed_non_tar(gzip.compress(tar_of({"bin/a": elf}), mtime=0)[:264])


def test_limits_are_configurable(binaries_built, tmp_path):
    """Each container limit set on the command line or in binlens.toml: a container just over it is that
    container's one-line error (exit 2), one at it is scanned; the member count is `tar -t`'s."""
    elf = binaries_built["c-rawsys"].read_bytes()
    ball = tmp_path / "three.tar.gz"
    with tarfile.open(ball, "w:gz") as tf:
        for n in ("bin/a", "bin/b", "bin/c"):
            info = tarfile.TarInfo(n)
            info.size = len(elf)
            tf.addfile(info, io.BytesIO(elf))
    count = len(subprocess.run(["tar", "-tzf", str(ball)], capture_output=True, text=True, check=True)
                .stdout.split())
    over = run_binlens("scan", str(ball), "--unpack-members", str(count - 1))
    assert over.returncode == 2 and f"more than {count - 1} members (the limit)" in over.stderr
    assert len(over.stderr.strip().splitlines()) == 1 and str(ball) in over.stderr
    assert run_binlens("scan", str(ball), "--unpack-members", str(count), "--fail-on", "never").returncode == 0
    total = run_binlens("scan", str(ball), "--unpack-total", str(2 * len(elf)))
    assert total.returncode == 2 and f"more than {2 * len(elf)} bytes unpacked (the limit)" in total.stderr
    member = run_binlens("scan", str(ball), "--unpack-member", str(len(elf) - 1))
    assert member.returncode == 2 and f"is {len(elf)} bytes, over the limit of {len(elf) - 1}" in member.stderr
    nested = _zip(tmp_path / "outer.zip", {"inner.zip": _zip(tmp_path / "inner.zip", {"bin": elf}).read_bytes()})
    deep = run_binlens("scan", str(nested), "--unpack-depth", "0", "--format", "json", "--fail-on", "never")
    (entry,) = json.loads(deep.stdout)["artifacts"]
    assert entry["path"] == f"{nested}!inner.zip" and "nested deeper than 0" in entry["error"]
    assert "Traceback" not in deep.stderr
    # the same limit from binlens.toml; a value that is not a count is the config file's error
    (tmp_path / "binlens.toml").write_text(f"unpack-members = {count - 1}\n")
    r = run_binlens("scan", str(ball), "--config", str(tmp_path / "binlens.toml"))
    assert r.returncode == 2 and "members (the limit)" in r.stderr
    (tmp_path / "binlens.toml").write_text("unpack-ratio = -1\n")
    r = run_binlens("scan", str(ball), "--config", str(tmp_path / "binlens.toml"))
    assert r.returncode == 2 and "unpack-ratio" in r.stderr and "whole number" in r.stderr


def _deb(path: Path, data_name: str, data: bytes) -> Path:
    """A .deb laid out as dpkg-deb writes it (ar names without GNU ar's trailing slash)."""
    def member(name: str, body: bytes) -> bytes:
        hdr = f"{name:<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(body):<10}`\n".encode()
        return hdr + body + (b"\n" if len(body) % 2 else b"")

    control = io.BytesIO()
    with tarfile.open(fileobj=control, mode="w:gz") as tf:
        info = tarfile.TarInfo("./control")
        text = b"Package: x\nVersion: 1\nArchitecture: amd64\nMaintainer: t <t@t>\nDescription: t\n"
        info.size = len(text)
        tf.addfile(info, io.BytesIO(text))
    path.write_bytes(b"!<arch>\n" + member("debian-binary", b"2.0\n") + member("control.tar.gz", control.getvalue())
                     + member(data_name, data))
    return path


def test_deb_data_compression_lzma_read_and_unknown_refused(binaries_built, tmp_path):
    """data.tar.lzma (lzma's own format, which dpkg still reads) is read as dpkg-deb -x reads it; data.tar.lz4,
    which neither reads, is one line naming the member and the problem — not an empty package."""
    import lzma

    plain = io.BytesIO()
    with tarfile.open(fileobj=plain, mode="w") as tf:
        tf.add(binaries_built["c-rawsys"], arcname="./usr/bin/x")
    old = _deb(tmp_path / "old.deb", "data.tar.lzma", lzma.compress(plain.getvalue(), format=lzma.FORMAT_ALONE))
    subprocess.run(["dpkg-deb", "-x", str(old), str(tmp_path / "x")], check=True)
    assert _compare(str(old), tmp_path / "x") == 1
    lz4 = _deb(tmp_path / "lz4.deb", "data.tar.lz4", b"\x04\x22\x4d\x18" + b"\x00" * 64)
    assert subprocess.run(["dpkg-deb", "-x", str(lz4), str(tmp_path / "y")], capture_output=True).returncode != 0
    r = run_binlens("scan", str(lz4))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert f"{lz4}: data.tar.lz4: unknown compression" in r.stderr


def test_a_tarball_is_no_image_for_holding_a_manifest_json(binaries_built, tmp_path):
    """A tarball with a manifest.json at its top that lists no images (a browser extension's, a web app's) is a
    tarball: its binaries as tar extracts them. It was taken for a `docker save` image and refused ("not a docker
    save manifest"); one that lists images with the wrong types is the image's one-line error (a string of tags
    was read as its characters). And a plain tar's members count once against the limit: they were counted on
    the look for an image's files too, so a tar of 700 members was over a limit of 1,000 that its gzip was not."""
    elf = binaries_built["c-rawsys"].read_bytes()

    def tarball(name: str, manifest: bytes, extra: int = 0) -> Path:
        out = tmp_path / name
        with tarfile.open(out, "w") as tf:
            for member, data in (("manifest.json", manifest), ("bin/x", elf),
                                 *((f"data/{i}", b"") for i in range(extra))):
                info = tarfile.TarInfo(member)
                info.size, info.mode = len(data), 0o755
                tf.addfile(info, io.BytesIO(data))
        return out

    for i, manifest in enumerate((b'{"manifest_version": 3, "name": "ext"}', b'["a", "b"]', b"{not json")):
        t = tarball(f"t{i}.tar", manifest)
        (tmp_path / f"x{i}").mkdir()
        subprocess.run(["tar", "-xf", str(t), "-C", str(tmp_path / f"x{i}")], check=True)
        assert _compare(str(t), tmp_path / f"x{i}") == 1
    bad = tarball("bad.tar", b'[{"RepoTags": "a:1", "Layers": ["l/layer.tar"]}]')
    r = run_binlens("scan", str(bad))
    assert r.returncode == 2 and r.stderr == f"binlens: {bad}: manifest.json is not a docker save manifest (a list " \
        "of objects whose RepoTags and Layers are lists of strings)\n", r.stderr
    # compressed, and starting as an image would (its first file manifest.json): looked at as one, then read as
    # the tarball it is, its bytes counted once against the limit
    big = tarball("big.tar", b'{"name": "ext"}')
    with tarfile.open(big, "a") as tf:
        info = tarfile.TarInfo("data/noise")
        info.size = 1 << 20
        tf.addfile(info, io.BytesIO(os.urandom(1 << 20)))
    subprocess.run(["gzip", "-k", str(big)], check=True)
    r = run_binlens("scan", f"{big}.gz", "--unpack-total", "1600k", "--format", "json")
    assert r.returncode in (0, 1) and [a["path"] for a in json.loads(r.stdout)["artifacts"]] == [f"{big}.gz!bin/x"], \
        r.stderr
    many = tarball("many.tar", b"{}", extra=700)
    subprocess.run(["gzip", "-k", str(many)], check=True)
    for t in (many, Path(f"{many}.gz")):
        r = run_binlens("scan", str(t), "--unpack-members", "1000", "--format", "json")
        assert r.returncode in (0, 1) and len(json.loads(r.stdout)["artifacts"]) == 1, (t, r.stderr)


def test_an_image_layout_in_a_directory_is_read_as_the_image(binaries_built, tmp_path):
    """An OCI layout directory inside a directory scanned (a release's `docker buildx --output type=oci,tar=false`)
    is read as the image, its members `DIR/layout!usr/bin/a` as tar's layer-by-layer extraction has them: its
    blobs were walked as loose files (compressed layers no name marked as tarballs), and the image's binaries
    were missing from the scan without a word. One that cannot be read is that image's error and fails the gate."""
    a, b = (binaries_built[n].read_bytes() for n in ("c-rawsys", "c-x86_64-gnu.2.34"))
    layers = [_layer({"usr/bin/a": a, "usr/bin/b": b}), _layer({"usr/bin/.wh.b": None})]
    release = tmp_path / "release"
    (release / "images").mkdir(parents=True)
    img = _image(release / "images", layers, "oci-dir")
    shutil.copy(binaries_built["c-rawsys"], release / "tool")
    tree = _extract_layers(tmp_path, layers)
    found = _entries([str(release)])
    assert sorted(found) == [f"{img}!usr/bin/a", f"{release}/tool"]
    _same_facts(found[f"{img}!usr/bin/a"], _entries([str(tree / "usr/bin/a")])[str(tree / "usr/bin/a")])
    (img / "index.json").write_text("{")
    r = run_binlens("scan", str(release), "--format", "json")
    arts = {x["path"]: x for x in json.loads(r.stdout)["artifacts"]}
    assert r.returncode == 1 and sorted(arts) == [str(img), f"{release}/tool"], r.stderr
    assert "index.json" in arts[str(img)]["error"]


def test_packages_of_other_ecosystems_in_a_directory_are_read(binaries_built, tmp_path):
    """Found in a directory, the packages other ecosystems ship native code in are read as containers, as a .deb
    or a wheel is: a NuGet package (a zip: runtimes/win-x64/native/*.dll), a conda package (a zip holding
    pkg-*.tar.zst), a Ruby gem (a tar holding data.tar.gz), an iOS app (.ipa) and an Android App Bundle (.aab) —
    their binaries as unzip and tar extract them. They were passed over by name, their binaries missing from the
    scan without a word."""
    dll, so = binaries_built["mingw-default.exe"].read_bytes(), binaries_built["libmf-musl.so"].read_bytes()
    d = tmp_path / "dist"
    d.mkdir()
    _zip(d / "Acme.Native.1.0.0.nupkg", {"runtimes/win-x64/native/acme.dll": dll, "Acme.nuspec": b"<package/>"})
    inner = tmp_path / "pkg-acme-1.0-0.tar.zst"
    (tmp_path / "conda" / "lib").mkdir(parents=True)
    (tmp_path / "conda" / "lib" / "libacme.so").write_bytes(so)
    subprocess.run(["tar", "--zstd", "-cf", str(inner), "-C", str(tmp_path / "conda"), "lib"], check=True)
    _zip(d / "acme-1.0-0.conda", {"metadata.json": b"{}", inner.name: inner.read_bytes()})
    (tmp_path / "gem" / "ext").mkdir(parents=True)
    (tmp_path / "gem" / "ext" / "acme.so").write_bytes(so)
    subprocess.run(["tar", "-czf", str(tmp_path / "data.tar.gz"), "-C", str(tmp_path / "gem"), "ext"], check=True)
    subprocess.run(["tar", "-cf", str(d / "acme-1.0.gem"), "-C", str(tmp_path), "data.tar.gz"], check=True)
    # an iOS app (a zip: Payload/NAME.app/NAME, Mach-O) and an Android App Bundle (a zip: base/lib/ABI/*.so)
    macho = binaries_built["c-aarch64-macos"].read_bytes()
    _zip(d / "Acme-1.0.ipa", {"Payload/Acme.app/Acme": macho, "Payload/Acme.app/Info.plist": b"<plist/>"})
    _zip(d / "acme-1.0.aab", {"base/lib/arm64-v8a/libacme.so": so, "BundleConfig.pb": b""})
    found = _entries([str(d)])
    assert sorted(found) == [f"{d}/Acme-1.0.ipa!Payload/Acme.app/Acme",
                             f"{d}/Acme.Native.1.0.0.nupkg!runtimes/win-x64/native/acme.dll",
                             f"{d}/acme-1.0-0.conda!{inner.name}!lib/libacme.so",
                             f"{d}/acme-1.0.aab!base/lib/arm64-v8a/libacme.so",
                             f"{d}/acme-1.0.gem!data.tar.gz!ext/acme.so"]
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run(["unzip", "-q", str(d / "Acme.Native.1.0.0.nupkg"), "-d", str(out / "nupkg")], check=True)
    (out / "conda").mkdir()
    subprocess.run(["unzip", "-q", str(d / "acme-1.0-0.conda"), "-d", str(out / "conda")], check=True)
    subprocess.run(["tar", "--zstd", "-xf", str(out / "conda" / inner.name), "-C", str(out / "conda")], check=True)
    (out / "gem").mkdir()
    subprocess.run(["tar", "-xf", str(d / "acme-1.0.gem"), "-C", str(out / "gem")], check=True)
    subprocess.run(["tar", "-xzf", str(out / "gem" / "data.tar.gz"), "-C", str(out / "gem")], check=True)
    for member, there in ((f"{d}/Acme.Native.1.0.0.nupkg!runtimes/win-x64/native/acme.dll",
                           out / "nupkg/runtimes/win-x64/native/acme.dll"),
                          (f"{d}/acme-1.0-0.conda!{inner.name}!lib/libacme.so", out / "conda/lib/libacme.so"),
                          (f"{d}/acme-1.0.gem!data.tar.gz!ext/acme.so", out / "gem/ext/acme.so")):
        _same_facts(found[member], _entries([str(there)])[str(there)])


def test_compressed_image_tarballs_are_images(binaries_built, tmp_path):
    """`docker save img | gzip > img.tar.gz` (docker load takes it, and an OCI layout tar compressed alike) is the
    image: its final filesystem, whiteouts applied, as tar's layer-by-layer extraction has it — for a scan and as
    a sysroot. It was read as a tarball: each layer's files, those a later layer removes among them, and no
    sysroot at all. A compressed tarball that does not start as an image still streams as one."""
    a, b = (binaries_built[n].read_bytes() for n in ("c-rawsys", "c-x86_64-gnu.2.34"))
    layers = [_layer({"usr/bin/a": a, "usr/bin/b": b}), _layer({"usr/bin/.wh.b": None})]
    tree = _extract_layers(tmp_path, layers)
    for kind, squeeze in (("docker", "gzip"), ("oci-tar", "xz")):
        (tmp_path / kind).mkdir()
        img = _image(tmp_path / kind, layers, kind)
        subprocess.run([squeeze, "-k", str(img)], check=True)
        packed = Path(f"{img}.{'gz' if squeeze == 'gzip' else 'xz'}")
        assert _compare(str(packed), tree) == 1
        plain, squeezed = (run_binlens("deps", "--sysroot", str(x), "/usr/bin/a", "--format", "json")
                           for x in (img, packed))  # fmt: skip
        assert squeezed.stdout == plain.stdout.replace(str(img), str(packed)) and plain.returncode == \
            squeezed.returncode, squeezed.stderr


def test_deps_of_a_package_points_at_sysroot(fixtures_built):
    """`deps pkg.deb` resolves nothing on this machine: one line saying to give it as --sysroot, exit 2."""
    deb = fixtures_built["coreutils.deb"]
    r = run_binlens("deps", str(deb))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert f"binlens deps --sysroot {deb}" in r.stderr and str(deb) in r.stderr


def test_uncompressed_layers_are_read_in_place(binaries_built, tmp_path):
    """A `docker save` image's layers are uncompressed tars: their binaries are listed where they lie, not
    copied out (strace sees no file created per binary), each with the layer that added it."""
    a, c = (binaries_built[n].read_bytes() for n in ("c-rawsys", "c-x86_64-gnu.2.34"))
    layers = [_layer({f"usr/bin/p{i}": a for i in range(12)}), _layer({"usr/bin/p0": c, "usr/bin/.wh.p1": None})]
    img = _image(tmp_path, layers, "docker")
    log = tmp_path / "strace.log"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parent.parent), NO_COLOR="1")
    r = subprocess.run(["strace", "-f", "-qq", "-e", "trace=openat", "-o", str(log), os.sys.executable, "-m",
                        "analyzer", "scan", str(img), "--format", "json", "--no-cache"],
                       capture_output=True, text=True, env=env)
    arts = {a["path"].split("!", 1)[1]: a for a in json.loads(r.stdout)["artifacts"]}
    assert sorted(arts) == sorted(f"usr/bin/p{i}" for i in range(12) if i != 1)
    assert arts["usr/bin/p0"]["layer"] == "l1/layer.tar" and arts["usr/bin/p2"]["layer"] == "l0/layer.tar"
    assert arts["usr/bin/p0"]["facts"]["interpreter"] and not arts["usr/bin/p2"]["facts"]["interpreter"]
    created = [line.split('"')[1] for line in log.read_text().splitlines()
               if "binlens-unpack-" in line and "O_CREAT" in line]
    # the layers copied out of the image tarball (its manifest is read where it lies), one table: no file for any
    # of the 11 binaries
    assert len(created) == len(layers) + 1 and sum(p.endswith(".members.json") for p in created) == 1, created


def test_compressed_tarball_members_go_to_one_pack(binaries_built, tmp_path):
    """A compressed tarball's binaries are appended to one pack file, each listed in a table as it is written
    (the workers start on the first while the rest are decompressed): strace sees the pack and its table
    created, no file per binary; the report equals that of the same files unpacked by tar, for any --jobs."""
    elves = sorted((p for p in binaries_built.values() if starts_with(p, b"\x7fELF")),
                   key=lambda p: p.stat().st_size)[:20]  # (small ones: the test compresses them)
    src = tmp_path / "src"
    src.mkdir()
    for i, e in enumerate(elves):
        shutil.copy(e, src / f"{i:02d}-{e.name}")
    ball = tmp_path / "release.tar.xz"
    subprocess.run(["tar", "-cJf", str(ball), "-C", str(src), "."], check=True)
    log = tmp_path / "strace.log"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parent.parent), NO_COLOR="1")
    r = subprocess.run(["strace", "-f", "-qq", "-e", "trace=openat", "-o", str(log), os.sys.executable, "-m",
                        "analyzer", "scan", str(ball), "--format", "json", "--no-cache", "--jobs", "2"],
                       capture_output=True, text=True, env=env)
    created = {line.split('"')[1] for line in log.read_text().splitlines()
               if "binlens-unpack-" in line and "O_CREAT" in line}
    assert len(created) == 2 and {os.path.splitext(p)[1] for p in created} == {".pack", ".jsonl"}, created
    assert r.stdout == run_binlens("scan", str(ball), "--format", "json", "--no-cache", "--jobs", "1").stdout
    (tmp_path / "x").mkdir()
    subprocess.run(["tar", "-xJf", str(ball), "-C", str(tmp_path / "x")], check=True)
    assert _compare(str(ball), tmp_path / "x") == len(elves)


def test_large_listed_members_are_mapped_or_copied_out(binaries_built, tmp_path, monkeypatch):
    """A listed member larger than what is read into memory is mapped when it starts on a page boundary (a
    pack aligns such members) and copied out to a file of its own when it does not (a static library's): the
    facts and digests equal those of the members read into memory, and of the same files unpacked by tar."""
    from analyzer.load import archives

    elves = sorted((p for p in binaries_built.values() if starts_with(p, b"\x7fELF")),
                   key=lambda p: p.stat().st_size)[:6]
    src = tmp_path / "src"
    src.mkdir()
    for i, e in enumerate(elves):
        shutil.copy(e, src / f"{i}-{e.name}")
    mapped, copied = [], []
    monkeypatch.setattr(archives, "_inflate", lambda ref, f, name, real=archives._inflate: (
        copied.append(name), real(ref, f, name))[1])
    ball, lib = tmp_path / "r.tar.gz", tmp_path / "libr.a"
    subprocess.run(["tar", "-czf", str(ball), "-C", str(src), "."], check=True)
    subprocess.run(["ar", "rc", str(lib), *sorted(str(p) for p in src.iterdir())], check=True)
    read = {c: _entries([str(c)]) for c in (ball, lib)}
    monkeypatch.setattr(archives, "READ_IN_PLACE", 1024)  # every member is "large" now
    real_bytes = archives.member_bytes
    monkeypatch.setattr(archives, "member_bytes", lambda ref, head=0: (
        lambda got: (mapped.append(ref[0]) if got is not None and not head else None, got)[1])(real_bytes(ref, head)))
    for c in (ball, lib):
        large = _entries([str(c)])
        assert large.keys() == read[c].keys() and len(large) == len(elves)
        for k in large:
            _same_facts(large[k], read[c][k])
    assert _compare(str(ball), src) == len(elves)
    # the pack's members mapped; the library's copied out (not on a page boundary)
    assert any(m.endswith(".pack") for m in mapped) and not any(m == str(lib) for m in mapped)
    assert sum(n.startswith(f"{lib}!") for n in copied) == len(elves)


def test_truncated_in_place_containers_are_one_line_errors(binaries_built, tmp_path):
    """Containers whose members are read where they lie: a static library cut short (its member headers lie
    about what follows) and a `docker save` image whose layer is cut inside a binary are one line each, exit 2;
    inside a directory the library is that container's error entry."""
    elf = binaries_built["c-rawsys"].read_bytes()
    src = tmp_path / "src"
    src.mkdir()
    for n in ("a", "b"):
        (src / n).write_bytes(elf)
    lib = tmp_path / "libcut.a"
    subprocess.run(["ar", "rc", str(lib), str(src / "a"), str(src / "b")], check=True)
    lib.write_bytes(lib.read_bytes()[: -len(elf) // 2])
    layer = gzip.decompress(_layer({"usr/bin/a": elf, "usr/bin/b": elf}))
    droot = tmp_path / "docker"
    (droot / "l0").mkdir(parents=True)
    (droot / "l0" / "layer.tar").write_bytes(layer[: layer.rfind(elf[:64]) + 100])  # cut inside usr/bin/b
    (droot / "manifest.json").write_text(json.dumps([{"Config": "c.json", "RepoTags": ["t:1"],
                                                      "Layers": ["l0/layer.tar"]}]))
    (droot / "c.json").write_text("{}")
    img = tmp_path / "cut-image.tar"
    subprocess.run(["tar", "-cf", str(img), "-C", str(droot), "."], check=True)
    for bad, words in ((lib, "truncated ar archive"), (img, "truncated")):
        r = run_binlens("scan", str(bad))
        assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert str(bad) in r.stderr and words in r.stderr.lower(), r.stderr
    d = tmp_path / "dir"
    d.mkdir()
    shutil.copy(lib, d / lib.name)
    r = run_binlens("scan", str(d), "--format", "json")
    (entry,) = json.loads(r.stdout)["artifacts"]
    assert r.returncode == 1 and entry["format"] == "archive" and "truncated ar archive" in entry["error"]


def _xz_threads() -> list:
    import threading

    return [t for t in threading.enumerate() if t.name == "binlens-xz" and t.is_alive()]


def test_xz_streams_are_read_ahead_as_xz_reads_them(binaries_built, tmp_path):
    """An xz stream is decompressed by a thread ahead of the tar reader: a tarball made of two xz streams one
    after the other (as `xz` writes concatenated files, with stream padding) gives what `tar -xJf` gives; one
    cut short is a one-line "truncated" error, which `xz -t` confirms; a limit broken in the middle of the
    stream stops the thread (nothing left running after the scan)."""
    src = tmp_path / "src"
    (src / "bin").mkdir(parents=True)
    for n in ("c-rawsys", "c-x86_64-gnu.2.34", "go-linux-amd64"):
        shutil.copy(binaries_built[n], src / "bin" / n)
    plain = tmp_path / "dist.tar"
    subprocess.run(["tar", "-cf", str(plain), "-C", str(src), "."], check=True)
    data = plain.read_bytes()
    cut = len(data) // 3
    halves = [subprocess.run(["xz", "-c", "--block-size=65536"], input=part, capture_output=True, check=True).stdout
              for part in (data[:cut], data[cut:])]
    ball = tmp_path / "two-streams.tar.xz"
    ball.write_bytes(halves[0] + b"\0" * 8 + halves[1])  # (stream padding: a multiple of four null bytes)
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run(["tar", "-xJf", str(ball), "-C", str(out)], check=True)
    assert _compare(str(ball), out) == 3 and not _xz_threads()
    trunc = tmp_path / "trunc.tar.xz"
    trunc.write_bytes(halves[0] + halves[1][: len(halves[1]) // 2])
    assert subprocess.run(["xz", "-t", str(trunc)], capture_output=True).returncode != 0
    r = run_binlens("scan", str(trunc))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and str(trunc) in r.stderr, r.stderr
    assert "truncated" in r.stderr
    from analyzer.load.archives import Limits, Unpacker, UnpackError

    (src / "zeros").write_bytes(bytes(64 << 20))  # after the programs: still being decompressed at the error
    long = tmp_path / "long.tar.xz"
    subprocess.run(["tar", "-cJf", str(long), "-C", str(src), "bin/c-rawsys", "bin/go-linux-amd64", "zeros"],
                   check=True)
    small = Limits(member_bytes=binaries_built["go-linux-amd64"].stat().st_size - 1)
    (tmp_path / "u").mkdir()
    with pytest.raises(UnpackError, match="over the limit"):
        list(Unpacker(str(tmp_path / "u"), small).iter_expand(str(long)))
    assert not _xz_threads()


def test_named_deb_is_decompressed_while_binlens_loads(fixtures_built):
    """`binlens scan pkg.deb` starts decompressing the package's data.tar.xz before the rest of the command is
    loaded; the unpacking takes that stream over (nothing left running or open afterwards) and the report is
    the one read without the early start."""
    from analyzer.load import archives

    deb = str(fixtures_built["coreutils.deb"])
    before = _entries([deb])
    archives.decompress_early(deb)
    early = list(archives._EARLY.values())
    assert len(early) == 1 and early[0]._thread.is_alive()
    assert _entries([deb]) == before and not archives._EARLY
    assert early[0]._owned.closed and not _xz_threads()
    archives.decompress_early(str(fixtures_built["go-linux-amd64"]))  # not a package: nothing started
    assert not archives._EARLY
    # the command starts it from its entry point, before the command-line framework is imported (the module that
    # does it imports nothing heavy), once: the report is the same
    r = run_binlens("scan", "--format", "json", "--no-cache", deb, env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"})
    order = [line.split("|")[-1].strip() for line in r.stderr.splitlines() if line.startswith("import time:")]
    assert order.index("analyzer.load.early") < order.index("click") < order.index("analyzer.load.archives")
    assert [a["path"] for a in json.loads(r.stdout)["artifacts"]] == list(before)


def test_a_name_twice_in_a_container_is_two_artifacts(binaries_built, tmp_path):
    """`tar -r` appends a second bin/x to a tarball (and a zip can repeat a name): each copy is its own artifact
    with its own bytes — the first `bin/x`, the second `bin/x#2` — equal to what `tar --occurrence=N`
    extracts, the same for any --jobs. (Both were reported under one name with the last copy's bytes.)"""
    first, second = binaries_built["c-rawsys"], binaries_built["c-x86_64-gnu.2.34"]
    for n, prog in ((1, first), (2, second)):
        (tmp_path / f"d{n}" / "bin").mkdir(parents=True)
        shutil.copy(prog, tmp_path / f"d{n}" / "bin" / "x")
    plain = tmp_path / "dup.tar"
    subprocess.run(["tar", "-cf", str(plain), "-C", str(tmp_path / "d1"), "bin/x"], check=True)
    subprocess.run(["tar", "-rf", str(plain), "-C", str(tmp_path / "d2"), "bin/x"], check=True)
    ball = tmp_path / "dup.tar.gz"
    ball.write_bytes(gzip.compress(plain.read_bytes(), mtime=0))
    for n in (1, 2):
        (tmp_path / f"x{n}").mkdir()
        subprocess.run(["tar", "-xzf", str(ball), "-C", str(tmp_path / f"x{n}"), f"--occurrence={n}", "bin/x"],
                       check=True)
    import warnings

    zipped = tmp_path / "dup.zip"
    with warnings.catch_warnings(), zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as z:
        warnings.simplefilter("ignore")  # (zipfile warns of the duplicate name it is asked to write)
        z.write(first, "bin/x")
        z.write(second, "bin/x")
    for container in (ball, zipped):
        got = _entries([str(container)])
        assert list(got) == [f"{container}!bin/x", f"{container}!bin/x#2"]
        for name, n in (("bin/x", 1), ("bin/x#2", 2)):
            (extracted,) = _entries([str(tmp_path / f"x{n}" / "bin" / "x")]).values()
            _same_facts(got[f"{container}!{name}"], extracted)
        reports = {j: run_binlens("scan", str(container), "--format", "json", "--no-cache", "--jobs", j).stdout
                   for j in "12"}
        assert reports["1"] == reports["2"] and reports["1"].count('"path":') == 2
        twice = [r.entry["path"] for r in pipeline.scan([str(container)] * 2, pipeline.Request(), jobs=1)]
        assert twice == list(got) * 2  # (named twice on the command line: listed twice alike, not bin/x#3)


def _linked_layer(files: dict[str, bytes | str]) -> bytes:
    """A gzip layer tar: bytes are a regular file, a str the name of the earlier member it is a hard link to."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.mode = 0o755
            if isinstance(data, str):
                info.type, info.linkname = tarfile.LNKTYPE, data
                tf.addfile(info)
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return gzip.compress(buf.getvalue(), mtime=0)


@pytest.mark.parametrize("kind", ["tarball", "docker", "oci-dir"])
def test_hard_links_are_every_name_tar_x_makes(binaries_built, tmp_path, kind):
    """A hard link in a tarball or an image layer (perl and perl5.36.0 in Debian's perl-base) is another name of a
    binary before it: reported under every name tar -x makes, with the same bytes, each counted against the
    limits (it was skipped: its name missing from the audit); a link to a later member, or out of the
    container, is nothing (tar -x cannot make it)."""
    a, b = binaries_built["c-rawsys"].read_bytes(), binaries_built["c-x86_64-gnu.2.34"].read_bytes()
    layers = [_linked_layer({"usr/bin/a": a, "usr/bin/a2": "usr/bin/a", "usr/bin/out": "../../etc/passwd",
                             "usr/bin/early": "usr/bin/b", "usr/bin/b": b}),
              _linked_layer({"usr/lib/b": b, "usr/lib/b-again": "usr/lib/b"})]
    fs = tmp_path / "fs"
    fs.mkdir()
    for i, layer in enumerate(layers):
        lt = tmp_path / f"layer{i}.tar.gz"
        lt.write_bytes(layer)
        subprocess.run(["tar", "-xzf", str(lt), "-C", str(fs)], capture_output=True)  # (it refuses two links)
    assert (fs / "usr/bin/a2").stat().st_ino == (fs / "usr/bin/a").stat().st_ino
    assert not (fs / "usr/bin/early").exists() and not (fs / "usr/bin/out").exists()
    if kind == "tarball":
        container = tmp_path / "release.tar.gz"
        subprocess.run(["tar", "-czf", str(container), "-C", str(fs), "."], check=True)
        assert "link to" in subprocess.run(["tar", "-tvzf", str(container)], capture_output=True, text=True).stdout
    else:
        container = _image(tmp_path, layers, kind)
    assert _compare(str(container), fs) == 5


@pytest.mark.parametrize("kind", ["zipapp", "executable-jar"])
def test_zips_behind_a_prefix(binaries_built, tmp_path, kind):
    """A zip behind a prefix is a zip: a Python zipapp (`python -m zipapp -p`, a #! line first) and a "fully
    executable" jar (a launcher script first, as Spring Boot writes them) holding native libraries: their
    members equal unzip's extraction (unzip skips the prefix, with a warning)."""
    import sys
    import warnings

    src = tmp_path / "src"
    (src / "lib").mkdir(parents=True)
    shutil.copy(binaries_built["c-x86_64-gnu.2.34"], src / "lib" / "libnative.so")
    (src / "__main__.py").write_text("print('hi')\n")
    if kind == "zipapp":
        out = tmp_path / "app.pyz"
        subprocess.run([sys.executable, "-m", "zipapp", str(src), "-o", str(out), "-p", "/usr/bin/env python3"],
                       check=True)
    else:
        plain = tmp_path / "plain.jar"
        with warnings.catch_warnings(), zipfile.ZipFile(plain, "w", zipfile.ZIP_DEFLATED) as z:
            z.write(src / "lib" / "libnative.so", "lib/linux-x86_64/libnative.so")
            z.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n")
        out = tmp_path / "app.jar"
        out.write_bytes(b"#!/bin/bash\nexec java -jar \"$0\" \"$@\"\nexit 0\n" + plain.read_bytes())
    x = tmp_path / "x"
    x.mkdir()
    subprocess.run(["unzip", "-qo", str(out), "-d", str(x)], capture_output=True)  # (exit 1: the prefix warning)
    assert _compare(str(out), x) == 1


def test_a_hard_link_to_a_container_inside_is_expanded_under_both_names(binaries_built, tmp_path):
    """A tarball holding a tarball and a hard link to it: both names are containers, each expanded (as a scan of
    the tree tar -x makes expands both files)."""
    inner = tmp_path / "inner"
    (inner / "bin").mkdir(parents=True)
    shutil.copy(binaries_built["c-rawsys"], inner / "bin" / "x")
    tree = tmp_path / "tree"
    tree.mkdir()
    subprocess.run(["tar", "-czf", str(tree / "a.tar.gz"), "-C", str(inner), "."], check=True)
    os.link(tree / "a.tar.gz", tree / "b.tar.gz")
    outer = tmp_path / "outer.tar"
    subprocess.run(["tar", "-cf", str(outer), "-C", str(tree), "a.tar.gz", "b.tar.gz"], check=True)
    assert "link to a.tar.gz" in subprocess.run(["tar", "-tvf", str(outer)], capture_output=True, text=True).stdout
    x = tmp_path / "x"
    x.mkdir()
    subprocess.run(["tar", "-xf", str(outer), "-C", str(x)], check=True)
    assert _compare(str(outer), x) == 2  # a.tar.gz!bin/x and b.tar.gz!bin/x


def test_many_copies_of_one_name_cost_a_lookup_or_two_each(tmp_path, monkeypatch):
    """2,000 copies of bin/x in one tarball: bin/x, bin/x#2 ... bin/x#2000, each copy's name found with at most
    two lookups of the names kept (counted afresh per copy, 20,000 copies took 30 s of unpacking; now 1.3 s)."""
    from analyzer.load import archives

    elf = b"\x7fELF\x02\x01\x01" + bytes(57)
    ball = tmp_path / "dups.tar"
    with tarfile.open(ball, "w") as tf:
        for _ in range(2000):
            info = tarfile.TarInfo("bin/x")
            info.size = len(elf)
            tf.addfile(info, io.BytesIO(elf))
    lookups = 0

    class Counted(set):
        def __contains__(self, item: object) -> bool:
            nonlocal lookups
            lookups += 1
            return super().__contains__(item)

    u = archives.Unpacker(str(tmp_path / "u"))
    (tmp_path / "u").mkdir()
    real_expand = u._expand

    def expand(*args):  # (the names kept, counted: set after iter_expand starts a container afresh)
        u._names = Counted()
        return real_expand(*args)

    monkeypatch.setattr(u, "_expand", expand)
    names = u.expand(str(ball))
    assert names == [f"{ball}!bin/x"] + [f"{ball}!bin/x#{k}" for k in range(2, 2001)]
    assert lookups <= 2 * len(names), lookups


def test_whiteouts_of_directories_among_many_files(binaries_built, tmp_path):
    """A layer whiting out a directory deep in another, an opaque directory, and 3,000 whiteouts of names that
    are not there: the final filesystem equals layer-by-layer extraction (the whiteouts find what lies under a
    directory in an index of directories, not by reading every path: 20,000 whiteouts over 20,000 files took
    41 s of unpacking, now 1.4 s)."""
    a = binaries_built["c-rawsys"].read_bytes()
    first = {f"opt/{d}/sub/f{i}": a for d in ("p", "q", "r") for i in range(3)}
    first.update({"usr/bin/a": a, "usr/lib/x": a})
    second = {"opt/.wh.p": None, "opt/q/.wh..wh..opq": None, "opt/q/new": a,
              **{f"nowhere/.wh.g{i}": None for i in range(3000)}}
    layers = [_layer(first), _layer(second)]
    img = _image(tmp_path, layers, "docker")
    assert _compare(str(img), _extract_layers(tmp_path, layers)) == 6  # opt/r's three, opt/q/new, usr/bin/a, usr/lib/x


def test_members_thousands_of_directories_deep(binaries_built, tmp_path):
    """3,000 symlinks and 4 of 150 binaries 1,000 directories deep, half of them whited out by a later layer (a
    whiteout and an opaque directory): the image's final filesystem equals tar's layer-by-layer extraction,
    under a 1 GiB cap. (Indexed by every ancestor directory, a path that deep held a megabyte of strings: 3 GB
    for this 300 KB image, 22 GB and 84 s for 5,000 symlinks.)"""
    from conftest import capped_scan

    a = binaries_built["c-rawsys"].read_bytes()
    deep = "d/" * 1000
    layer = _layer_with_links

    def members(img: Path) -> list[str]:
        proc = capped_scan(img)
        assert proc.returncode in (0, 1) and not proc.stderr, proc.stderr[-2000:]
        return sorted(e["path"].split("!", 1)[1] for e in json.loads(proc.stdout)["artifacts"])

    # the layers with 5 of the symlinks, against tar (which takes 0.4 s for each path that deep)
    binaries = {f"deep/{d}/{i}/{deep if i < 2 else ''}f": a for d in "ab" for i in range(75)}
    whiteouts = {"deep/.wh.a": None, "links/.wh..wh..opq": None}
    few = [layer({f"links/{i}/{deep}L": "/usr" for i in range(5)}, binaries), layer({}, whiteouts)]
    tree = _extract_layers(tmp_path, few)
    (tmp_path / "few").mkdir()
    (tmp_path / "many").mkdir()
    files = sorted(subprocess.run(["find", str(tree), "-type", "f", "-printf", "%P\\n"], capture_output=True,
                                  text=True, check=True).stdout.splitlines())  # fmt: skip
    subprocess.run(["rm", "-rf", str(tree)], check=True)  # (pytest's clean-up of old runs recurses: too deep)
    assert members(_image(tmp_path / "few", few, "oci-tar")) == files and len(files) == 75
    many = [layer({f"links/{i}/{deep}L": "/usr" for i in range(3000)}, binaries), layer({}, whiteouts)]
    assert members(_image(tmp_path / "many", many, "oci-tar")) == files


def test_an_image_tree_deeper_than_pythons_recursion_as_sysroot(binaries_built, tmp_path):
    """An image holding a program 1,500 directories deep, used as a sysroot (written out as a tree): syscalls,
    deps and scan --check-loading answer, and the tree is removed afterwards (shutil.rmtree recursed once per
    level: a RecursionError traceback, and the temporary directory left behind)."""
    a = binaries_built["c-x86_64-gnu.2.34"].read_bytes()  # (a dynamic program: what --check-loading looks at)
    img = _image(tmp_path, [_layer({"deep/" + "d/" * 1500 + "t": a, "usr/bin/t": a})], "oci-tar")
    (tmp_path / "tmp").mkdir()
    env = dict(os.environ, TMPDIR=str(tmp_path / "tmp"))
    for args in (("syscalls", "--sysroot", str(img), "/usr/bin/t"), ("deps", "--sysroot", str(img), "/usr/bin/t"),
                 ("scan", "--check-loading", "--no-cache", str(img))):
        r = run_binlens(*args, env=env)
        assert r.returncode in (0, 1) and not r.stderr and f"{img}!usr/bin/t" in r.stdout, (args, r.stderr[-1500:])
        assert os.listdir(tmp_path / "tmp") == [], args


def test_an_image_sysroots_paths_are_bounded_work(binaries_built, tmp_path):
    """Writing an image's tree, as a sysroot, is bounded work, each bound a one-line error (exit 2) in seconds:
    a member's path through 40 chained symlinks whose 4,000-byte targets go back and forth (64,000 steps each:
    100 such members took 19 s, 20,000 an hour) is refused by the walk's budget (16 steps per member allowed;
    checked with a lower members limit: at the default, 1,048,576 steps, it takes 1.7 s); a symlink target longer than
    PATH_MAX (no filesystem holds it) is named, not quoted in a 5,000-character line; and as many directories
    may be made for members' paths as there may be members (200 members 1,000 directories deep made 200,000)."""
    from analyzer.load import archives

    a = binaries_built["c-x86_64-gnu.2.34"].read_bytes()
    links = {f"s{k}": "x/../" * 800 + f"s{k + 1}" for k in range(40)}
    img = _image(tmp_path / "walk", [_layer_with_links({**links, "s40": "x"}, {"x/k": None, **{f"s0/m{i}": None
                                                                                            for i in range(100)},
                                                                    "usr/bin/t": a})], "oci-tar")  # fmt: skip
    (tmp_path / "u").mkdir()
    unpacker, fs = archives.Unpacker(str(tmp_path / "u"), archives.Limits(members=4096)), str(tmp_path / "fs")
    with pytest.raises(archives.UnpackError) as e:  # (as many steps as a limit of 4,096 members allows)
        unpacker.materialize(str(img), fs)
    assert str(e.value) == "paths through more than 65536 directories and links (the limit: links that go back and " \
        "forth?)"
    img = _image(tmp_path / "long", [_layer_with_links({"l": "x/" * 2100}, {"usr/bin/t": a})], "oci-tar")
    r = run_binlens("deps", "--sysroot", str(img), "/usr/bin/t")
    assert r.returncode == 2 and r.stderr == f"binlens: {img}: symlink l cannot be made (File name too long)\n"
    deep = _image(tmp_path / "deep", [_layer_with_links({}, {f"{i}/" + "d/" * 100 + "f": None for i in range(20)})],
                  "oci-tar")
    for members, ok in ((2000, False), (2030, True)):  # 20 members making 2,020 directories
        (tmp_path / f"fs{members}").mkdir()
        (tmp_path / f"u{members}").mkdir()
        u = archives.Unpacker(str(tmp_path / f"u{members}"), archives.Limits(members=members))
        if ok:
            u.materialize(str(deep), str(tmp_path / f"fs{members}"))
            continue
        with pytest.raises(archives.UnpackError) as e:
            u.materialize(str(deep), str(tmp_path / f"fs{members}"))
        assert str(e.value) == "more than 2000 directories made for members' paths (the limit)"


@pytest.mark.parametrize("kind", ["oci-dir", "oci-tar"])
def test_an_image_sysroot_is_bounded_as_its_scan_is(binaries_built, tmp_path, kind):
    """Written out as a sysroot, an image is held to the same compression-ratio bound as a scan of it: a layer of
    16 MiB of zeros (16 KB stored) is a compression bomb for both (the sysroot had no ratio bound, and took an
    OCI layout directory as 1 byte: a layout of 20,000 layers naming one blob was 10 s of unpacking, a real
    layout directory of over 1 GiB unpacked was refused as a bomb)."""
    a = binaries_built["c-x86_64-gnu.2.34"].read_bytes()
    img = _image(tmp_path, [_layer({"usr/bin/t": a, "zeros": bytes(16 << 20)})], kind)
    said = f"binlens: {img}: unpacks to over 200 times its size (a compression bomb?)\n"
    for args in (("scan", str(img)), ("deps", "--sysroot", str(img), "/usr/bin/t")):
        r = run_binlens(*args)
        assert r.returncode == 2 and r.stderr == said, (args, r.stderr)


def test_image_indexes_nested_deeper_are_followed_to_a_bound(binaries_built, tmp_path):
    """An OCI layout whose manifest is behind three image indexes (the spec allows any depth; binlens followed
    two, and what a deeper one named was silently nothing: no binaries, no error) gives its final filesystem,
    equal to tar's layer-by-layer extraction; behind 17 it is one line naming the bound, for scan and deps."""
    a, b = (binaries_built[n].read_bytes() for n in ("c-rawsys", "c-x86_64-gnu.2.34"))
    layers = [_layer({"usr/bin/a": a, "usr/bin/b": b})]
    (tmp_path / "deep").mkdir()
    assert _compare(str(_image(tmp_path / "deep", layers, "oci-dir", nested=3)), _extract_layers(tmp_path, layers)) == 2
    (tmp_path / "deeper").mkdir()
    img = _image(tmp_path / "deeper", layers, "oci-tar", nested=17)
    for args in (("scan", str(img)), ("deps", "--sysroot", str(img), "/usr/bin/b")):
        r = run_binlens(*args)
        assert r.returncode == 2 and r.stderr == f"binlens: {img}: image indexes nested more than 16 deep\n", r.stderr


def test_image_json_nested_too_deeply_or_broken(binaries_built, tmp_path):
    """An image's JSON documents nested deeper than Python's recursion limit, or not JSON: an OCI index.json so
    is one line naming index.json (in a tar it named the unpacker's copy, a hash, and nesting read as "corrupt
    or truncated tar"), as is a manifest blob; a docker config so is only unread (the platform, which nothing
    needs: the image is still tar's layer-by-layer extraction); a manifest.json so is no image (a tarball: tar's
    extraction of it, where it was "corrupt or truncated tar")."""
    a = binaries_built["c-rawsys"].read_bytes()
    layers = [_layer({"usr/bin/a": a})]
    deep = b"[" * 100_000
    cases = [(tar, doc, problem) for tar in (False, True)
             for doc, problem in ((b'{"manifests":' + deep, "JSON nested too deeply"),
                                  (b'{"manifests":', "Expecting value: line 1 column 14 (char 13)"))]
    for i, (tar, doc, problem) in enumerate(cases):
        (tmp_path / f"index{i}").mkdir()
        img = root = _image(tmp_path / f"index{i}", layers, "oci-dir")
        (root / "index.json").write_bytes(doc)
        if tar:
            img = tmp_path / f"index{i}" / "oci.tar"
            subprocess.run(["tar", "-cf", str(img), "-C", str(root), "."], check=True)
        r = run_binlens("scan", str(img))
        assert r.returncode == 2 and r.stderr == f"binlens: {img}: cannot read index.json: {problem}\n", r.stderr
    # a manifest blob nested too deeply: named by its digest
    root = tmp_path / "manifest"
    root.mkdir()
    put = _blob_store(root)
    m = put(deep)
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{"digest": m, "size": 1}]}))
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    r = run_binlens("scan", str(root))
    assert r.returncode == 2 and r.stderr == f"binlens: {root}: cannot read blob {m}: JSON nested too deeply\n", \
        r.stderr
    # docker save with its config nested too deeply: the image, its platform untold
    (tmp_path / "docker").mkdir()
    img = _image(tmp_path / "docker", layers, "docker")
    droot = tmp_path / "docker" / "docker"
    config = json.loads((droot / "manifest.json").read_text())[0]["Config"]
    (droot / config).write_bytes(b'{"a":' * 100_000)
    subprocess.run(["tar", "-cf", str(img), "-C", str(droot), "."], check=True)
    assert _compare(str(img), _extract_layers(tmp_path, layers)) == 1
    # a manifest.json nested too deeply at a tarball's top: a tarball
    t = tmp_path / "t.tar"
    with tarfile.open(t, "w") as tf:
        for member, data in (("manifest.json", deep), ("bin/x", a)):
            info = tarfile.TarInfo(member)
            info.size, info.mode = len(data), 0o755
            tf.addfile(info, io.BytesIO(data))
    (tmp_path / "x").mkdir()
    subprocess.run(["tar", "-xf", str(t), "-C", str(tmp_path / "x")], check=True)
    assert _compare(str(t), tmp_path / "x") == 1


def test_a_file_of_several_images_is_read_for_the_one_named(binaries_built, tmp_path):
    """`docker save a b` writes one tarball of two images (manifest.json lists both; a docker 25 save or an OCI
    layout names each in index.json's annotations): binlens read the first as the whole file, the second's
    binaries silently missing. Now it is one line naming them (exit 2), and `--image NAME` reads the one a name
    or tag names — as tar's layer-by-layer extraction of it, for scan and as a sysroot; one image under two
    tags is one image."""
    a, b = (binaries_built[n].read_bytes() for n in ("c-rawsys", "c-x86_64-gnu.2.34"))
    la, lb = _layer({"usr/bin/a": a}), _layer({"usr/bin/b": b})
    root = tmp_path / "save"
    root.mkdir()
    for name, layer in (("la", la), ("lb", lb)):
        (root / name).mkdir()
        (root / name / "layer.tar").write_bytes(gzip.decompress(layer))

    def save(entries: list[dict], to: str) -> Path:
        (root / "manifest.json").write_text(json.dumps(entries))
        subprocess.run(["tar", "-cf", str(tmp_path / to), "-C", str(root), "."], check=True)
        return tmp_path / to

    two = save([{"Config": "c.json", "RepoTags": ["a:1"], "Layers": ["la/layer.tar"]},
                {"Config": "c.json", "RepoTags": ["b:1", "b:latest"], "Layers": ["la/layer.tar", "lb/layer.tar"]}],
               "two.tar")
    r = run_binlens("scan", str(two))
    assert r.returncode == 2 and r.stderr == f"binlens: {two}: 2 images in one file (a:1; b:1, b:latest): choose " \
        "one with --image NAME\n", r.stderr
    from dataclasses import replace

    for image, layers in (("b:latest", [la, lb]), ("a:1", [la])):
        (tmp_path / image).mkdir()
        tree = _extract_layers(tmp_path / image, layers)
        assert _compare(str(two), tree, replace(pipeline.Request(), image=image)) == len(layers)
    r = run_binlens("scan", str(two), "--image", "c:1")
    assert r.returncode == 2 and r.stderr == f"binlens: {two}: no image named c:1 in the file (it has: a:1; b:1, " \
        "b:latest)\n", r.stderr
    for image, ok in (("a:1", False), ("b:1", True)):  # (deps: the sysroot is the image named)
        r = run_binlens("deps", "--sysroot", str(two), "--image", image, "/usr/bin/b", "--format", "json")
        if ok:
            assert r.returncode in (0, 1) and json.loads(r.stdout)["artifacts"][0]["path"] == f"{two}!usr/bin/b"
        else:
            assert r.returncode == 2 and "no such file in the image: /usr/bin/b" in r.stderr, r.stderr
    (root / "c.json").write_text('{"architecture": "arm64", "os": "linux", "variant": "v8", "config": {}}')
    r = run_binlens("scan", str(save(json.loads((root / "manifest.json").read_text()), "again.tar")), "--image",
                    "a:1", "--format", "json")  # (the platform a docker save's config gives, in the report)
    assert json.loads(r.stdout)["installed"][str(tmp_path / "again.tar")]["platform"] == "linux/arm64/v8", r.stderr
    one = save([{"Config": "c.json", "RepoTags": ["b:1"], "Layers": ["la/layer.tar", "lb/layer.tar"]},
                {"Config": "c.json", "RepoTags": ["b:2"], "Layers": ["la/layer.tar", "lb/layer.tar"]}], "one.tar")
    assert _compare(str(one), _extract_layers(tmp_path, [la, lb])) == 2
    # an OCI layout naming two images (as docker 25 and containerd write it), and one image under two names
    (tmp_path / "x").mkdir()
    lay = _image(tmp_path / "x", [la], "oci-dir")
    index = json.loads((lay / "index.json").read_text())
    m = index["manifests"][0]
    other = dict(m, digest="sha256:" + "0" * 64)
    for entries, ok in (([m, other], False), ([m, m], True)):
        index["manifests"] = [dict(e, annotations={"io.containerd.image.name": f"docker.io/library/i{k}:1"})
                              for k, e in enumerate(entries)]
        (lay / "index.json").write_text(json.dumps(index))
        r = run_binlens("scan", str(lay), "--format", "json")
        if ok:
            assert r.returncode in (0, 1) and [e["path"] for e in json.loads(r.stdout)["artifacts"]] == \
                [f"{lay}!usr/bin/a"], r.stderr
        else:
            assert r.returncode == 2 and "2 images in one file (docker.io/library/i0:1; docker.io/library/i1:1)" \
                in r.stderr, r.stderr
            r = run_binlens("scan", str(lay), "--format", "json", "--image", "docker.io/library/i0:1")
            assert r.returncode in (0, 1) and [e["path"] for e in json.loads(r.stdout)["artifacts"]] == \
                [f"{lay}!usr/bin/a"], r.stderr


def test_a_layers_file_replaces_a_directory_with_all_it_holds(binaries_built, tmp_path):
    """A later layer's file or symlink where an earlier one had a directory replaces that directory with all it
    held (docker and containerd remove it; tar's --recursive-unlink is the trusted unpack): a scan listed the
    binaries still under it, `deps --sysroot` refused the image as corrupt (a file opened over a directory), and
    the package database under a replaced directory was still read."""
    a, b = (binaries_built[n].read_bytes() for n in ("c-rawsys", "c-x86_64-gnu.2.34"))
    status = b"Package: t\nStatus: install ok installed\nVersion: 1.0\nArchitecture: amd64\n\n"
    first = _layer_with_links({}, {"opt/x/a": a, "opt/x/sub/b": b, "opt/y/a": a, "usr/bin/t": b,
                                   "var/lib/dpkg/status": status})
    second = _layer_with_links({"opt/y": "x"}, {"opt/x": b, "var/lib/dpkg": None})
    tree = _extract_layers(tmp_path, [first, second], "--recursive-unlink")
    assert sorted(p.relative_to(tree).as_posix() for p in tree.rglob("*") if not p.is_dir()) == \
        ["opt/x", "opt/y", "usr/bin/t", "var/lib/dpkg"]
    (tmp_path / "i").mkdir()
    img = _image(tmp_path / "i", [first, second], "oci-tar")
    assert _compare(str(img), tree) == 2  # opt/x and usr/bin/t
    r = run_binlens("scan", str(img), "--format", "json")
    assert json.loads(r.stdout)["installed"][str(img)]["packages"] == [], r.stderr
    r = run_binlens("deps", "--sysroot", str(img), "/opt/x", "--format", "json")
    assert r.returncode in (0, 1) and [e["path"] for e in json.loads(r.stdout)["artifacts"]] == [f"{img}!opt/x"], \
        r.stderr
    (tmp_path / "j").mkdir()  # (the database, before its directory was replaced, is read)
    r = run_binlens("scan", str(_image(tmp_path / "j", [first], "oci-tar")), "--format", "json")
    assert [p["name"] for p in next(iter(json.loads(r.stdout)["installed"].values()))["packages"]] == ["t"]


def test_absolute_member_names_are_read_as_tar_extracts_them(binaries_built, tmp_path):
    """A tarball (or a layer) whose members have absolute names: tar extracts them from the top ("Removing
    leading `/'"), and docker applies a layer's so; binlens skipped them, so their binaries were missing from the
    audit. A name climbing out with `..` is skipped, as tar skips it. The members equal tar's extraction."""
    a, b = (binaries_built[n].read_bytes() for n in ("c-rawsys", "c-x86_64-gnu.2.34"))
    ball = tmp_path / "abs.tar"
    with tarfile.open(ball, "w") as tf:
        for name, data in (("/usr/bin/a", a), ("//opt/b", b), ("../up/evil", a), ("usr/bin/ok", b)):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tf.addfile(info, io.BytesIO(data))
    out = tmp_path / "x"
    out.mkdir()
    tar = subprocess.run(["tar", "-xf", str(ball), "-C", str(out)], capture_output=True, text=True)
    assert "Removing leading" in tar.stderr and "../up/evil" in tar.stderr and not (tmp_path / "up").exists()
    assert _compare(str(ball), out) == 3  # usr/bin/a, opt/b, usr/bin/ok
    img = _image(tmp_path, [_layer({"/usr/bin/a": a})], "oci-tar")
    r = run_binlens("deps", "--sysroot", str(img), "/usr/bin/a", "--format", "json")
    assert r.returncode in (0, 1) and [e["path"] for e in json.loads(r.stdout)["artifacts"]] == [f"{img}!usr/bin/a"]


def _layer_in_order(members: list[tuple[str, bytes | None]]) -> bytes:
    """A gzip layer of files (None: empty) in exactly the order given (whiteout markers anywhere among them)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data or b""), 0o755
            tf.addfile(info, io.BytesIO(data or b""))
    return gzip.compress(buf.getvalue(), mtime=0)


def test_a_layers_whiteouts_reach_only_lower_layers(binaries_built, tmp_path):
    """A layer's whiteouts remove what lower layers put, never what the layer itself puts, wherever the marker
    stands in its tar (the OCI image spec): a file written before its directory's opaque marker, or before a
    whiteout of that directory, was dropped — missing from the scan, from `deps --sysroot`, and a package database
    so written was not read. Against tar's extraction with the whiteouts applied first, and dpkg-query."""
    a, b = (binaries_built[n].read_bytes() for n in ("c-rawsys", "c-x86_64-gnu.2.34"))
    status = b"Package: t\nStatus: install ok installed\nVersion: 1.0\nArchitecture: amd64\n\n"
    first = _layer({"opt/x/old": a, "opt/x/sub/old": a, "opt/y/old": a, "var/lib/dpkg/status": b""})
    second = _layer_in_order([("opt/x/new", b), ("opt/x/sub/new", a), ("opt/x/.wh..wh..opq", None),
                              ("opt/y/new", b), ("opt/.wh.y", None),
                              ("var/lib/dpkg/status", status), ("var/lib/dpkg/.wh..wh..opq", None)])
    tree = _extract_layers(tmp_path, [first, second])
    assert sorted(p.relative_to(tree).as_posix() for p in tree.rglob("*") if p.is_file()) == \
        ["opt/x/new", "opt/x/sub/new", "opt/y/new", "var/lib/dpkg/status"]
    (tmp_path / "i").mkdir()
    img = _image(tmp_path / "i", [first, second], "oci-tar")
    assert _compare(str(img), tree) == 3
    listed = subprocess.run(["dpkg-query", f"--admindir={tree}/var/lib/dpkg", "-W", "-f", "${Package}\n"],
                            capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
    r = run_binlens("scan", str(img), "--format", "json")
    assert [p["name"] for p in json.loads(r.stdout)["installed"][str(img)]["packages"]] == listed == ["t"]
    r = run_binlens("deps", "--sysroot", str(img), "/opt/x/new", "/opt/y/new", "--format", "json")
    assert r.returncode in (0, 1) and len(json.loads(r.stdout)["artifacts"]) == 2, r.stderr


def test_images_are_written_out_as_sysroots_within_the_limits_asked(binaries_built, tmp_path):
    """An image read as a sysroot is written out within the limits asked for — `scan --check-loading` the scan's
    (--unpack-members and the rest), `deps`, `syscalls` and `explain --sysroot IMAGE` their own options, each
    or binlens.toml's: an image over them is that one line (they were the defaults whatever was asked, so a
    large image could not be read at all), and a limit it is within changes nothing."""
    a = binaries_built["c-x86_64-gnu.2.34"].read_bytes()
    img = _image(tmp_path, [_layer({f"usr/bin/t{i}": a for i in range(8)})], "oci-tar")
    over = f"binlens: {img}: more than 5 members (the limit)\n"
    for cmd in (["scan", "--check-loading", str(img)], ["deps", "--sysroot", str(img)],
                ["syscalls", "--sysroot", str(img), "/usr/bin/t0"],
                ["explain", "--sysroot", str(img), "--binary", "/usr/bin/t0", "x"]):
        tight = run_binlens(*cmd, "--unpack-members", "5")
        assert tight.returncode == 2 and tight.stderr == over, (cmd, tight.stderr)
    (tmp_path / "binlens.toml").write_text("unpack-members = 5\n")
    told = subprocess.run([sys.executable, "-m", "analyzer", "deps", "--sysroot", str(img)], capture_output=True,
                          text=True, cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(ROOT)))  # fmt: skip
    assert told.returncode == 2 and told.stderr == over, told.stderr
    plain, roomy = (run_binlens("scan", "--check-loading", *extra, str(img), "--format", "json")
                    for extra in ((), ("--unpack-members", "100")))
    assert roomy.stdout == plain.stdout and len(json.loads(plain.stdout)["artifacts"]) == 8, plain.stderr


def test_running_out_of_memory_is_not_called_damage(binaries_built, tmp_path, monkeypatch):
    """Memory running out while an image is read (injected: every one found is bounded now) is that image's
    error in those words, not "corrupt tar (MemoryError: )" as before."""
    from analyzer.load import archives, installed

    def exhausted(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(installed, "read", exhausted)
    img = _image(tmp_path, [_layer({"usr/bin/t": binaries_built["c-rawsys"].read_bytes()})], "oci-tar")
    (tmp_path / "unpack").mkdir()
    with pytest.raises(archives.UnpackError) as e:
        archives.Unpacker(str(tmp_path / "unpack")).expand(str(img))
    assert str(e.value) == "tar needs more memory to read than this process may take"


def test_a_member_nowhere_to_be_found_is_its_error_not_a_skip(monkeypatch, tmp_path):
    """A task naming a container's member that the analysing process cannot find — not where the scan's
    environment says members were unpacked, not left for it to read from its container, not known by its
    digest — is that member's error entry. Before, it was taken for a file that is no binary and left out of
    the report: what a Dask worker did to a tarball's members when another of its threads had put the scan's
    environment back (tests/test_dask.py)."""
    monkeypatch.delenv("BINLENS_UNPACK_DIR", raising=False)
    name = f"{tmp_path / 'dist.tar.gz'}!usr/bin/app"
    got = pipeline._analyze((name, False), pipeline.Request())
    assert not isinstance(got, AnalyzerError)
    assert [(r.path, r.format, r.error) for r in got] == [
        (name, "archive", "member not found where its container was unpacked")]


def test_a_member_named_on_the_command_line(fixtures_built, binaries_built, tmp_path):
    """`outer!inner`, as reports name members, is accepted wherever a path is: scan, inspect, checksec,
    syscalls, go and diff analyse that member alone (its facts those of the file dpkg-deb -x writes), a nested
    container's name gives its members, the k-th copy of a repeated name is `name#k` (as tar --occurrence=k),
    and a name the container has no binary of, or a prefix that is no container, is a one-line error (exit 2).
    deps says how to resolve the member inside its container."""
    deb = str(fixtures_built["coreutils.deb"])
    subprocess.run(["dpkg-deb", "-x", deb, str(tmp_path / "x")], check=True)
    (entry, unpacked) = (json.loads(run_binlens("scan", p, "--format", "json", "--no-cache").stdout)["artifacts"]
                         for p in (f"{deb}!bin/ls", str(tmp_path / "x" / "bin" / "ls")))
    assert [a["path"] for a in entry] == [f"{deb}!bin/ls"]
    _same_facts(entry[0], unpacked[0])
    unpacked = unpacked[0]
    for spelled in ("./bin/ls", "/bin/ls"):  # as `tar -t` lists it, as the root of the installed system
        again = json.loads(run_binlens("scan", f"{deb}!{spelled}", "--format", "json", "--no-cache").stdout)
        assert again["artifacts"] == entry, spelled
    for command in ("inspect", "checksec", "syscalls"):
        r = run_binlens(command, f"{deb}!bin/ls")
        assert r.returncode in (0, 1) and f"{deb}!bin/ls" in r.stdout and not r.stderr, (command, r.stderr)
    r = run_binlens("diff", f"{deb}!bin/ls", str(tmp_path / "x" / "bin" / "ls"), "--format", "json")
    ((pair,),) = (json.loads(r.stdout)["pairs"],)
    assert r.returncode == 0 and pair["old"] == f"{deb}!bin/ls" and pair["size"]["delta"] == 0
    assert pair["identity"] == pair["sections"] == pair["categories"] == {}, pair
    # nested: a tarball holding the .deb and, twice, a Go program
    ball = tmp_path / "release.tar"
    with tarfile.open(ball, "w") as tf:
        tf.add(deb, arcname="pkg/coreutils.deb")
        tf.add(binaries_built["go-linux-amd64"], arcname="bin/app")
        tf.add(binaries_built["c-rawsys"], arcname="bin/app")
    runs = [run_binlens("scan", f"{ball}!pkg/coreutils.deb", "--format", "json", *cache).stdout
            for cache in (["--no-cache"], ["--cache-dir", str(tmp_path / "c")], ["--cache-dir", str(tmp_path / "c")])]
    assert runs[0] == runs[1] == runs[2]  # (the third answered by the result cache, the nested .deb not unpacked)
    got = [a["path"] for a in json.loads(runs[0])["artifacts"]]
    assert len(got) > 100 and all(p.startswith(f"{ball}!pkg/coreutils.deb!") for p in got)
    assert f"{ball}!pkg/coreutils.deb!bin/ls" in got
    r = run_binlens("go", f"{ball}!bin/app")
    assert r.returncode == 0 and r.stdout.startswith(f"{ball}!bin/app: go1."), r.stdout
    r = run_binlens("go", f"{ball}!bin/app#2")  # the second copy is the C program
    assert r.returncode == 2 and r.stderr == f"binlens: {ball}!bin/app#2: not a Go executable\n", r.stderr
    for bad, problem in ((f"{deb}!usr/share/doc/coreutils/copyright", f"no binary or container of that name in {deb}"),
                         (f"{deb}!bin/nothing", f"no binary or container of that name in {deb}"),
                         (f"{unpacked['path']}!x",
                          f"{unpacked['path']} is not a container (a package, archive or image) to name a member of")):
        r = run_binlens("scan", bad)
        assert r.returncode == 2 and r.stderr == f"binlens: {bad}: {problem}\n", r.stderr
    r = run_binlens("deps", f"{deb}!bin/ls")
    assert r.returncode == 2 and f"binlens deps --sysroot {deb} /bin/ls" in r.stderr
    # a member of a container binlens cannot make a sysroot of (a zip of programs): no advice that then fails
    plain_zip = _zip(tmp_path / "tools.zip", {"bin/ls": (tmp_path / "x" / "bin" / "ls").read_bytes()})
    r = run_binlens("deps", f"{plain_zip}!bin/ls")
    assert r.returncode == 2 and r.stderr == (
        f"binlens: {plain_zip}!bin/ls: a member of {plain_zip}, which is no image, tarball, package or filesystem "
        "image to resolve it in: extract it and run `binlens deps` on the program where it is installed\n"), r.stderr
    r = run_binlens("explain", "--binary", f"{plain_zip}!bin/ls", "bin/ls: version `GLIBC_2.99' not found")
    assert r.returncode == 2 and r.stderr == (
        f"binlens: {plain_zip}!bin/ls: a member of {plain_zip}, which is no image, tarball, package or filesystem "
        "image to resolve it in: extract it and run `binlens explain --binary` on the program where it is "
        "installed\n"), r.stderr


def test_an_image_is_told_from_a_tarball(fixtures_built, binaries_built, tmp_path):
    """archives.is_image: an OCI layout (directory or tar) and a `docker save` tarball are images; a tarball of
    files, a compressed one and a .deb are not."""
    from analyzer.load import archives

    layer = _layer({"bin/a": binaries_built["c-rawsys"].read_bytes()})
    for kind in ("oci-dir", "oci-tar", "docker"):
        (tmp_path / kind).mkdir()
        assert archives.is_image(str(_image(tmp_path / kind, [layer], kind))), kind
    plain = tmp_path / "plain.tar"
    subprocess.run(["tar", "-cf", str(plain), "-C", str(binaries_built["c-rawsys"].parent), "."], check=True)
    (tmp_path / "layer.tar.gz").write_bytes(layer)
    for other in (plain, tmp_path / "layer.tar.gz", fixtures_built["coreutils.deb"]):
        assert not archives.is_image(str(other)), other


def test_compressed_programs_are_their_one_member(binaries_built, tmp_path):
    """One program compressed, as releases ship them (`tool-linux-amd64.gz`, `.xz`, `.bz2`, `.zst`): its one
    member, named as gunzip/unxz name what they write, its facts those of the file the compressor's own
    decompressor writes; found in a directory and inside a tarball; a compressed man page is no program; a
    bomb (a program's header, then 1 GiB of zeros) is refused. (They were passed over in a directory, and an
    error when named.)"""
    prog = binaries_built["c-x86_64-gnu.2.34"]
    rel = tmp_path / "rel"
    rel.mkdir()
    plain = tmp_path / "plain"
    plain.mkdir()
    for tool, suffix in (("gzip", "gz"), ("xz", "xz"), ("bzip2", "bz2"), ("zstd", "zst")):
        packed = rel / f"tool-{tool}.{suffix}"
        packed.write_bytes(subprocess.run([tool, "-c", str(prog)], capture_output=True, check=True).stdout)
        out = subprocess.run([tool, "-dc", str(packed)], capture_output=True, check=True).stdout  # the oracle
        (plain / f"tool-{tool}").write_bytes(out)
    (rel / "tool.1.gz").write_bytes(gzip.compress(b".TH TOOL 1\n" * 100))  # a man page: no program
    names = _entries([str(rel)])
    assert sorted(names) == sorted(f"{rel}/tool-{t}.{s}!tool-{t}" for t, s in (("gzip", "gz"), ("xz", "xz"),
                                                                                ("bzip2", "bz2"), ("zstd", "zst")))
    theirs = _entries([str(plain)])
    for path, entry in names.items():
        _same_facts(entry, theirs[f"{plain}/{path.rsplit('!', 1)[1]}"])
    shutil.copy(rel / "tool-gzip.gz", tmp_path / "renamed")  # named on the command line: by its bytes
    assert list(_entries([str(tmp_path / "renamed")])) == [f"{tmp_path}/renamed!renamed"]
    with tarfile.open(tmp_path / "release.tar", "w") as t:
        t.add(rel / "tool-xz.xz", "bin/tool-xz.xz")
        t.add(rel / "tool.1.gz", "man/tool.1.gz")
    assert list(_entries([str(tmp_path / "release.tar")])) == [f"{tmp_path}/release.tar!bin/tool-xz.xz!tool-xz"]

    def make_bomb(path: Path) -> None:
        squeeze = __import__("zlib").compressobj(9, 8, 31)
        with open(path, "wb") as out:
            out.write(squeeze.compress(prog.read_bytes()[:64]))
            for _ in range(1024):
                out.write(squeeze.compress(bytes(1 << 20)))
            out.write(squeeze.flush())

    cut = tmp_path / "cut.gz"  # (a compressed program cut short: one line naming it)
    cut.write_bytes((rel / "tool-gzip.gz").read_bytes()[:2000])
    r = run_binlens("scan", str(cut))
    assert r.returncode == 2 and r.stderr.startswith(f"binlens: {cut}: corrupt or truncated compressed (") and \
        r.stderr.count("\n") == 1, r.stderr
    bomb = made_once("bomb-program.gz", make_bomb)
    r = run_binlens("scan", str(bomb))
    assert r.returncode == 2 and "compression bomb" in r.stderr and str(bomb) in r.stderr, r.stderr


def test_a_pex_found_in_a_directory_is_its_members(binaries_built, tmp_path):
    """A PEX file (pex, pinned in the test extra: a zipapp carrying the wheels it resolved, as Pants and pex
    users ship Python applications) in a directory was passed over — not named like a zip, and a #! script — and
    a release directory holding one had "no ELF, PE or Mach-O files": its native libraries are now its members,
    found in a walk as when named, each equal to the file unzip extracts (unzip skips the #! line)."""
    from groundtruth import wheel_of

    wheels = tmp_path / "wheels"
    wheels.mkdir()
    wheel_of(binaries_built["c-x86_64-gnu.2.34"], "x86_64", wheels)
    release = tmp_path / "release"
    release.mkdir()
    pex = release / "app.pex"
    subprocess.run([str(Path(sys.executable).parent / "pex"), "--no-pypi", "-f", str(wheels), "fx", "-o", str(pex),
                    "--python-shebang", "/usr/bin/env python3"], check=True, capture_output=True)
    assert pex.read_bytes().startswith(b"#!/usr/bin/env python3\n")
    x = tmp_path / "x"
    subprocess.run(["unzip", "-qo", str(pex), "-d", str(x)], capture_output=True)  # (exit 1: the prefix warning)
    assert _compare(str(pex), x) >= 1
    walked = _entries([str(release)])
    named = _entries([str(pex)])
    assert list(walked) == list(named) and f"{pex}!.deps/fx-1.0-py3-none-linux_x86_64.whl/fx/c-x86_64-gnu.2.34.so" \
        in walked
    for k in walked:
        _same_facts(walked[k], named[k])


def test_containers_found_under_other_names_are_their_members(binaries_built, tmp_path):
    """A zipapp, a PEX file and a makeself installer put on the PATH under a plain name (`app`, `tool`,
    `installer`) were passed over in a directory — no container's name, and #! scripts: the native code they
    carry is now their members, found where the file is analysed, the same report as the same bytes named
    `.pyz`, `.pex` and `.run` (each equal to unzip's or the installer's own extraction: the tests above) with
    one worker or two, and from the result cache, which does not read them again; a damaged one is its error and
    fails the gate; a plain script stays nothing."""
    from groundtruth import wheel_of
    from test_makeself import _makeself
    from test_result_cache import _opened

    src = tmp_path / "src"
    (src / "lib").mkdir(parents=True)
    shutil.copy(binaries_built["c-x86_64-gnu.2.34"], src / "lib" / "libnative.so")
    (src / "__main__.py").write_text("print('hi')\n")
    named, renamed = tmp_path / "named", tmp_path / "renamed"
    named.mkdir()
    renamed.mkdir()
    subprocess.run([sys.executable, "-m", "zipapp", str(src), "-o", str(named / "app.pyz"), "-p",
                    "/usr/bin/env python3"], check=True)
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    wheel_of(binaries_built["c-rawsys"], "x86_64", wheels)
    subprocess.run([str(Path(sys.executable).parent / "pex"), "--no-pypi", "-f", str(wheels), "fx", "-o",
                    str(named / "tool.pex"), "--python-shebang", "/usr/bin/env python3"], check=True,
                   capture_output=True)
    shutil.move(_makeself(tmp_path, "installer.run"), named / "installer.run")
    names = {"app.pyz": "app", "tool.pex": "tool", "installer.run": "installer"}
    for old, new in names.items():
        shutil.copy(named / old, renamed / new)
    (renamed / "plain").write_text("#!/bin/sh\necho plain\n")  # (a script that is no container)
    made = time.time()

    def as_renamed(text: str) -> str:
        text = text.replace(str(named), str(renamed))
        for old, new in names.items():
            text = text.replace(f"{renamed}/{old}", f"{renamed}/{new}")
        return text

    want = as_renamed(run_binlens("scan", "--no-cache", "--format", "json", str(named)).stdout)
    paths = [a["path"] for a in json.loads(want)["artifacts"]]
    assert {p.split("!")[0] for p in paths} == {f"{renamed}/{n}" for n in names.values()}, paths
    for jobs in ("1", "2"):
        assert run_binlens("scan", "--no-cache", "--format", "json", "--jobs", jobs, str(renamed)).stdout == want
    time.sleep(max(0.0, 2.1 - (time.time() - made)))  # (older than the result cache's racy window)
    cache = ("--cache-dir", str(tmp_path / "cache"))
    first = run_binlens("scan", *cache, "--format", "json", str(renamed))
    second, log = _opened(tmp_path, "scan", *cache, "--format", "json", str(renamed))
    assert first.stdout == second.stdout == want and not [line for line in log if str(renamed) in line]
    stalled = run_binlens("scan", "--no-cache", "--format", "json", "--time-budget", "1", str(renamed),
                          prefix=["env", f"BINLENS_FAULT_STALL={renamed / 'app'}"])  # (its unpacking hangs)
    assert stalled.returncode == 1 and "Traceback" not in stalled.stderr, stalled.stderr
    got = {a["path"]: a["error"] for a in json.loads(stalled.stdout)["artifacts"]}
    assert got[str(renamed / "app")] == "analysis took longer than the time budget (1 s)"
    assert {p.split("!")[0] for p, e in got.items() if e is None} == {str(renamed / "tool"), str(renamed / "installer")}
    data = bytearray((named / "app.pyz").read_bytes())  # (zipapp stores its files: a byte of the library flipped)
    data[len(data) // 2] ^= 0xFF
    for d, name in ((tmp_path / "bad-named", "app.pyz"), (tmp_path / "bad-renamed", "app")):
        d.mkdir()
        (d / name).write_bytes(bytes(data))
    a = run_binlens("scan", "--no-cache", "--format", "json", str(tmp_path / "bad-named"))
    b = run_binlens("scan", "--no-cache", "--format", "json", str(tmp_path / "bad-renamed"))
    assert a.returncode == b.returncode == 1
    assert b.stdout == a.stdout.replace(f"{tmp_path}/bad-named/app.pyz", f"{tmp_path}/bad-renamed/app")
    assert [x["error"] for x in json.loads(b.stdout)["artifacts"]][0].startswith("corrupt")


def test_a_zipapp_inside_a_container_is_its_members(binaries_built, tmp_path):
    """A zipapp installed in an image, a package, a tarball or a zip (`usr/local/bin/app`, or `app.pyz`: a PEX
    file copied into an image, as Pants users deploy) was passed over — a #! script, read past: the native code
    it carries is now its members, equal to those of the same zipapp scanned on its own (whose members equal
    unzip's extraction: test_zips_behind_a_prefix), in a tar, a .deb dpkg-deb builds, a docker save image and a
    zip alike. A plain script, and a #! file over a megabyte that is no zip, stay nothing, with nothing left in
    the unpack directory."""
    from analyzer.load.archives import PROBE_IN_MEMORY

    src = tmp_path / "src"
    (src / "lib").mkdir(parents=True)
    shutil.copy(binaries_built["c-x86_64-gnu.2.34"], src / "lib" / "libnative.so")
    (src / "__main__.py").write_text("print('hi')\n")
    app = tmp_path / "app.pyz"
    subprocess.run([sys.executable, "-m", "zipapp", str(src), "-o", str(app), "-p", "/usr/bin/env python3"],
                   check=True)
    alone = {p.split("!", 1)[1]: e for p, e in _entries([str(app)]).items()}
    assert list(alone) == ["lib/libnative.so"]
    files = {"usr/local/bin/app": app.read_bytes(), "opt/tool/app.pyz": app.read_bytes(),
             "usr/bin/plain": b"#!/bin/sh\necho plain\n",
             "usr/bin/large": b"#!/bin/sh\n: " + random.Random(1).randbytes(PROBE_IN_MEMORY).hex().encode()}
    tree = tmp_path / "tree"
    for rel, data in files.items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_bytes(data)
    tarball = tmp_path / "release.tar.gz"
    subprocess.run(["tar", "-czf", str(tarball), "-C", str(tree), "."], check=True)
    (tree / "DEBIAN").mkdir()
    (tree / "DEBIAN" / "control").write_text("Package: za\nVersion: 1\nArchitecture: amd64\nMaintainer: a <a@b>\n"
                                             "Description: a zipapp\n")
    deb = tmp_path / "za_1_amd64.deb"
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", str(tree), str(deb)], check=True,
                   capture_output=True)
    shutil.rmtree(tree / "DEBIAN")
    (tmp_path / "img").mkdir()
    image = _image(tmp_path / "img", [_layer(files)], "docker")
    zipped = tmp_path / "release.zip"
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as z:
        for rel, data in files.items():
            z.writestr(rel, data)
    for container in (tarball, deb, image, zipped):
        found = _entries([str(container)])
        assert sorted(p.split("!", 1)[1] for p in found) == ["opt/tool/app.pyz!lib/libnative.so",
                                                             "usr/local/bin/app!lib/libnative.so"], container
        for e in found.values():
            _same_facts(e, alone["lib/libnative.so"])
    from analyzer.load.archives import Unpacker

    root = tmp_path / "unpacked"
    root.mkdir()
    names = list(Unpacker(str(root)).iter_expand(str(tarball)))
    assert not [n for n in names if "plain" in n or "large" in n]
    assert not [f for f in os.listdir(root) if f.endswith(".probe")]


def test_a_zip_directory_larger_than_the_limit_is_refused_before_it_is_read(tmp_path):
    """A zip whose central directory lists two million entries (108 MB: a Python object per entry when zipfile
    reads it, over 1 GiB) is refused from its end record, as the members limit says, under a 1 GiB cap; and so is
    a jar or a wheel named on the command line for an SBOM (their metadata is read from the same directory)."""
    from conftest import capped_scan

    def make_directory(path: Path) -> None:
        import struct

        local = struct.pack("<4s5H3I2H", b"PK\x03\x04", 20, 0, 0, 0, 0, 0, 0, 0, 1, 0) + b"e"
        n = 2_000_000
        entries = b"".join(struct.pack("<4s6H3I5H2I", b"PK\x01\x02", 20, 20, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0,
                                       0, 0) + b"e%07d" % i for i in range(n))  # (every entry: the one local file)
        end = struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, len(entries), len(local), 0)
        z64 = struct.pack("<4sQ2H2I4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, n, n, len(entries), len(local))
        loc = struct.pack("<4sIQI", b"PK\x06\x07", 0, len(local) + len(entries), 1)
        path.write_bytes(local + entries + z64 + loc + end)

    big = made_once("directory-2m.zip", make_directory)
    for name in ("big.zip", "big.jar", "big.whl"):
        target = tmp_path / name
        target.symlink_to(big)
        for fmt in ("json", "cyclonedx"):
            proc = capped_scan(target, "--format", fmt)
            said = f"binlens: {target}: more than 65536 members (the limit)\n"
            assert proc.returncode == 2 and proc.stderr == said, (name, fmt, proc.stderr[-500:])


def test_check_loading_resolves_the_plugins_the_images_runtimes_load(fixtures_built, tmp_path):
    """`scan IMAGE --check-loading` resolves, beside its programs, what its runtimes load as plugins — Python
    extension modules (in a site- or dist-packages directory) and Node.js addons — each in the image: an addon
    built for a C library newer than the image's fails the gate (the "version `GLIBC_2.x' not found" a container
    hits when a wheel or a prebuilt addon was built elsewhere); other libraries are not plugins. Ground truth: the
    image's own loader, `ld.so --list` with the image's library directory and no cache, on its tree."""
    ok = fixtures_built["node_ok.node"].read_bytes()
    assert b"GLIBC_2.2.5" in ok
    files = {"usr/src/app/node_modules/ok/build/Release/ok.node": ok,
             "usr/src/app/node_modules/new/build/Release/new.node": ok.replace(b"GLIBC_2.2.5", b"GLIBC_2.9.9"),
             "usr/lib/python3/dist-packages/fx/_c.cpython-311-x86_64-linux-gnu.so":
                 fixtures_built["pyext_ok.so"].read_bytes(),
             "usr/src/app/node_modules/ok/build/Release/libhelper.so": fixtures_built["pyext_ok.so"].read_bytes()}
    layers = [_deb_layer(fixtures_built["libc6.deb"], False), _layer(files)]
    img = _image(tmp_path, layers, "docker")
    r = run_binlens("scan", str(img), "--check-loading", "--format", "json")
    arts = {a["path"].split("!", 1)[1]: a for a in json.loads(r.stdout)["artifacts"]}
    helper = "usr/src/app/node_modules/ok/build/Release/libhelper.so"  # (a library there, no plugin)
    plugins = sorted(set(files) - {helper})
    assert set(plugins) <= set(arts) and helper not in arts  # (beside the libc6 layer's programs: libc.so.6)
    tree = tmp_path / "tree"
    subprocess.run(["dpkg-deb", "-x", str(fixtures_built["libc6.deb"]), str(tree)], check=True)
    for rel, data in files.items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_bytes(data)
    loader = tree / "lib" / "x86_64-linux-gnu" / "ld-linux-x86-64.so.2"
    for rel in plugins:
        listed = subprocess.run([str(loader), "--inhibit-cache", "--library-path", str(tree / "lib/x86_64-linux-gnu"),
                                 "--list", str(tree / rel)], capture_output=True, text=True)  # fmt: skip
        fails = "not found" in listed.stdout + listed.stderr
        assert fails == (rel.endswith("new.node")), (rel, listed.stdout, listed.stderr)
        errors = [f for f in arts[rel]["findings"] if f["rule"].startswith("DEP") and f["severity"] == "error"]
        assert bool(errors) == fails, (rel, errors)
        if fails:
            assert "GLIBC_2.9.9" in " ".join(f["message"] for f in errors)
    assert r.returncode == 1
    # the same root filesystem as a directory (a chroot, debootstrap's, an image unpacked): its programs and
    # plugins resolved where they lie, as in the image (--check-loading took containers only)
    t = run_binlens("scan", str(tree), "--check-loading", "--format", "json")
    assert t.returncode == 1, t.stderr
    in_tree = {os.path.relpath(a["path"], tree): a for a in json.loads(t.stdout)["artifacts"]}
    assert set(in_tree) == set(arts)
    for rel, a in in_tree.items():
        assert [(x["name"], x["path"]) for x in a["facts"]["deps"]["libraries"]] == \
            [(x["name"], x["path"]) for x in arts[rel]["facts"]["deps"]["libraries"]], rel
        assert [f["rule"] for f in a["findings"]] == [f["rule"] for f in arts[rel]["findings"]], rel
