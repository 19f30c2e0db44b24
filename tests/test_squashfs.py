"""SquashFS images as containers — snaps, AppImages, plain .squashfs files: every member's facts equal those of
the same file after unsquashfs (squashfs-tools) extracted it; an AppImage's payload found where libappimage
finds it and its files' bytes as libappimage reads them; damaged and hostile images are one line each."""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import random
import shutil
import subprocess
import tarfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import made_once, run_binlens, unpack_mutants
from tests.test_archives import _compare, _entries, _same_facts

MKSQUASHFS = shutil.which("mksquashfs")
pytestmark = pytest.mark.skipif(MKSQUASHFS is None, reason="squashfs-tools is in the README's apt-get line")


def _tree(fixtures_built, root: Path) -> Path:
    """coreutils as dpkg-deb -x writes it, with what squashfs stores otherwise: a hard link to a program, a
    symlink, an empty file, a file of exactly one 4 KiB block, and a wheel (a container inside the image)."""
    subprocess.run(["dpkg-deb", "-x", str(fixtures_built["coreutils.deb"]), str(root)], check=True)
    os.link(root / "bin" / "cat", root / "usr" / "bin" / "cat-again")
    os.symlink("../../bin/ls", root / "usr" / "bin" / "ls-link")
    (root / "empty").write_bytes(b"")
    (root / "one-block").write_bytes(bytes(range(256)) * 16)
    (root / "usr" / "lib").mkdir(exist_ok=True)
    with zipfile.ZipFile(root / "usr" / "lib" / "tool-1.0-py3-none-any.whl", "w") as z:
        z.writestr("tool/_native.so", (root / "bin" / "ls").read_bytes())
    return root


def _coreutils_image(fixtures_built, *options: str) -> Path:
    """The tree _tree makes, as mksquashfs writes it with `options`: made once per options (fixture cache), as
    compressing 18 MB with xz takes seconds."""
    def make(path: Path) -> None:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            _squash(_tree(fixtures_built, Path(tmp) / "src"), path, *options)

    return made_once(f"coreutils-{'_'.join(o.strip('-') for o in options)}.sqfs", make)


def _squash(tree: Path, out: Path, *options: str) -> Path:
    subprocess.run([MKSQUASHFS, str(tree), str(out), "-noappend", "-quiet", "-no-progress", *options], check=True,
                   stdout=subprocess.DEVNULL)
    return out


def _unsquash(image: Path, dest: Path, offset: int = 0) -> Path:
    subprocess.run(["unsquashfs", "-quiet", "-no-progress", "-o", str(offset), "-d", str(dest), str(image)],
                   check=True, stdout=subprocess.DEVNULL)
    return dest


@pytest.mark.parametrize("options", [
    ("-comp", "xz"),  # what snapcraft writes
    ("-comp", "gzip", "-b", "4096", "-tailends", "-always-use-fragments"),  # many blocks, tails in fragments
    ("-comp", "zstd", "-noI", "-noD", "-noF", "-no-fragments"),  # stored blocks, every file in whole blocks
    ("-comp", "xz", "-Xbcj", "x86", "-b", "1M"),  # xz with a branch filter, the largest blocks
], ids=["xz", "gzip-4k-fragments", "zstd-stored", "xz-bcj-1m"])
def test_squashfs_members_equal_unsquashfs(fixtures_built, tmp_path, options):
    """Programs, a hard link (both names, the same bytes), a wheel inside the image, read from squashfs images
    of every layout mksquashfs writes: names, digests and facts equal unsquashfs's extraction."""
    image = tmp_path / "cu.snap"
    shutil.copy(_coreutils_image(fixtures_built, *options), image)
    tree = _unsquash(image, tmp_path / "out")
    assert _compare(str(image), tree) > 100
    names = _entries([str(image)])
    assert f"{image}!usr/lib/tool-1.0-py3-none-any.whl!tool/_native.so" in names
    assert names[f"{image}!usr/bin/cat-again"]["sha256"] == names[f"{image}!bin/cat"]["sha256"]


def _libappimage() -> ctypes.CDLL:
    lib = ctypes.CDLL("libappimage.so.1.0abi1")  # libappimage1.0abi1: the AppImage project's own reader
    lib.appimage_get_type.argtypes = [ctypes.c_char_p, ctypes.c_bool]
    lib.appimage_get_payload_offset.argtypes = [ctypes.c_char_p]
    lib.appimage_get_payload_offset.restype = ctypes.c_int64
    lib.appimage_list_files.argtypes = [ctypes.c_char_p]
    lib.appimage_list_files.restype = ctypes.POINTER(ctypes.c_char_p)
    lib.appimage_read_file_into_buffer_following_symlinks.argtypes = [
        ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(ctypes.POINTER(ctypes.c_char)),
        ctypes.POINTER(ctypes.c_ulong)]
    return lib


def _appimage(runtime: bytes, payload: Path, out: Path) -> Path:
    """A type-2 AppImage as appimagetool lays one out: the runtime (an ELF marked AI\\x02 in its header's
    padding), the squashfs image right after it."""
    out.write_bytes(runtime[:8] + b"AI\x02" + runtime[11:] + payload.read_bytes())
    out.chmod(0o755)
    return out


def test_appimage_is_its_runtime_and_its_payload(fixtures_built, binaries_built, tmp_path):
    """An AppImage is a program (its runtime, which users start) and the files it mounts: the runtime's entry
    first, then the payload's members — found where libappimage finds the payload, each member's bytes those
    libappimage reads, its facts those of unsquashfs's extraction at that offset."""
    runtime = binaries_built["c-x86_64-musl-static"].read_bytes()
    payload = _coreutils_image(fixtures_built, "-comp", "xz")
    app = _appimage(runtime, payload, tmp_path / "Tool-x86_64.AppImage")
    lib = _libappimage()
    assert lib.appimage_get_type(str(app).encode(), False) == 2
    offset = lib.appimage_get_payload_offset(str(app).encode())
    assert offset == len(runtime)
    entries = _entries([str(app)])
    tree = _unsquash(app, tmp_path / "out", offset)
    inside = {p.split("!", 1)[1]: e for p, e in entries.items() if "!" in p}
    plain = {os.path.relpath(p, tree): e for p, e in _entries([str(tree)]).items()}
    assert inside.keys() == plain.keys() and len(inside) > 100
    for k in inside:
        _same_facts(inside[k], plain[k])
    first = next(iter(entries))
    assert first == str(app) and entries[first]["format"] == "ELF" and entries[first]["error"] is None
    assert entries[first]["sha256"] == hashlib.sha256(app.read_bytes()).hexdigest()
    listed = lib.appimage_list_files(str(app).encode())
    files = []
    while listed[len(files)]:
        files.append(listed[len(files)].decode())
    assert set(inside) - {"usr/lib/tool-1.0-py3-none-any.whl!tool/_native.so"} <= set(files)
    for rel in ("bin/cat", "usr/bin/cat-again", "usr/bin/sha256sum", "usr/lib/tool-1.0-py3-none-any.whl"):
        buf, size = ctypes.POINTER(ctypes.c_char)(), ctypes.c_ulong()
        assert lib.appimage_read_file_into_buffer_following_symlinks(str(app).encode(), rel.encode(),
                                                                      ctypes.byref(buf), ctypes.byref(size))
        data = ctypes.string_at(buf, size.value)
        if rel in inside:
            assert inside[rel]["sha256"] == hashlib.sha256(data).hexdigest()
    # the gate sees the bundled programs: a CLI scan lists them after the runtime, and a directory holding the
    # AppImage (found by its name) does too
    r = run_binlens("scan", str(tmp_path / "Tool-x86_64.AppImage"), "--format", "json", "--no-cache")
    paths = [a["path"] for a in json.loads(r.stdout)["artifacts"]]
    assert r.returncode == 0 and paths[0] == str(app) and f"{app}!bin/cat" in paths
    shutil.rmtree(tmp_path / "out")
    found = [p for p in _entries([str(tmp_path)]) if p.startswith(str(app))]
    assert found == list(entries)


def test_squashfs_inside_containers_and_directories(fixtures_built, binaries_built, tmp_path):
    """A snap in a tarball, an AppImage in a zip (written out to be expanded, not left for a worker to inflate
    as a program), both found by name in a directory walk."""
    small = tmp_path / "small"
    (small / "bin").mkdir(parents=True)
    shutil.copy(binaries_built["c-rawsys"], small / "bin" / "tool")
    snap = _squash(small, tmp_path / "tool_1.0_amd64.snap", "-comp", "xz")
    app = _appimage(binaries_built["c-x86_64-musl-static"].read_bytes(), snap, tmp_path / "tool.AppImage")
    with tarfile.open(tmp_path / "release.tar.gz", "w:gz") as t:
        t.add(snap, "dist/tool_1.0_amd64.snap")
    with zipfile.ZipFile(tmp_path / "release.zip", "w", zipfile.ZIP_DEFLATED) as z:
        z.write(app, "dist/tool.AppImage")
    assert list(_entries([str(tmp_path / "release.tar.gz")])) == [
        f"{tmp_path}/release.tar.gz!dist/tool_1.0_amd64.snap!bin/tool"]
    assert list(_entries([str(tmp_path / "release.zip")])) == [
        f"{tmp_path}/release.zip!dist/tool.AppImage", f"{tmp_path}/release.zip!dist/tool.AppImage!bin/tool"]
    walked = [p for p in _entries([str(tmp_path)]) if "!" in p or p.endswith((".snap", ".AppImage"))]
    assert walked == [f"{tmp_path}/release.tar.gz!dist/tool_1.0_amd64.snap!bin/tool",
                      f"{tmp_path}/release.zip!dist/tool.AppImage",
                      f"{tmp_path}/release.zip!dist/tool.AppImage!bin/tool", f"{app}", f"{app}!bin/tool",
                      f"{snap}!bin/tool"]


@pytest.mark.parametrize("comp", ["lzo", "lz4"])
def test_squashfs_compressions_not_read_are_one_line(binaries_built, tmp_path, comp):
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(binaries_built["c-rawsys"], src / "tool")
    image = _squash(src, tmp_path / "x.squashfs", "-comp", comp)
    r = run_binlens("scan", str(image))
    assert r.returncode == 2 and r.stderr.strip() == (
        f"binlens: {image}: squashfs compressed with {comp} (binlens reads gzip, lzma, xz and zstd)"), r.stderr


def test_hostile_squashfs_is_refused_in_bounds(binaries_built, tmp_path):
    """A bomb (a program's header, then 1 GiB of zeros, a few KB as squashfs), a truncated image, a member count
    over the limit, and an AppImage whose payload is not where its runtime ends: one line each."""
    elf = binaries_built["c-rawsys"].read_bytes()

    def make_bomb(path: Path) -> None:
        src = path.with_name(path.name + ".src")
        src.mkdir()
        with open(src / "big", "wb") as f:
            f.write(elf[:64])
            for _ in range(1024):
                f.write(bytes(1 << 20))
        _squash(src, path, "-comp", "xz", "-no-sparse")
        shutil.rmtree(src)

    bomb = made_once("bomb.squashfs", make_bomb)
    assert bomb.stat().st_size < (1 << 30) // 200
    started = time.monotonic()
    r = run_binlens("scan", str(bomb))
    assert r.returncode == 2 and "compression bomb" in r.stderr and str(bomb) in r.stderr, r.stderr
    assert time.monotonic() - started < 60  # (a hang guard, not a speed measure)
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    for i in range(40):
        (src / "d" / f"f{i}").write_bytes(elf)
    image = _squash(src, tmp_path / "many.sqfs", "-comp", "gzip")
    r = run_binlens("scan", str(image), "--unpack-members", "20")
    assert r.returncode == 2 and "more than 20 members (the limit)" in r.stderr, r.stderr
    cut = tmp_path / "cut.sqfs"
    used = int.from_bytes(image.read_bytes()[40:48], "little")  # (the image is padded to 4 KiB after it)
    cut.write_bytes(image.read_bytes()[: used // 2])
    oracle = subprocess.run(["unsquashfs", "-l", str(cut)], capture_output=True, text=True)
    assert oracle.returncode != 0
    r = run_binlens("scan", str(cut))
    assert r.returncode == 2 and r.stderr.startswith(f"binlens: {cut}: truncated squashfs image"), r.stderr
    moved = tmp_path / "moved.AppImage"
    moved.write_bytes(elf[:8] + b"AI\x02" + elf[11:] + bytes(100) + image.read_bytes())
    r = run_binlens("scan", str(moved))
    assert r.returncode == 2 and r.stderr.strip() == (
        f"binlens: {moved}: no squashfs image where one should start"), r.stderr


def test_damaged_squashfs_is_its_members_or_one_line(binaries_built, tmp_path):
    """Bytes changed at random in the superblock and the metadata (inode, directory, fragment tables) of a
    small image: every mutant gives members or an UnpackError (one line), never another exception, within the
    limits, quickly."""
    src = tmp_path / "src"
    (src / "bin").mkdir(parents=True)
    for i, name in enumerate(("c-rawsys", "c-x86_64-musl-static")):
        shutil.copy(binaries_built[name], src / "bin" / f"t{i}")
    (src / "bin" / "small").write_bytes(b"\x7fELF" + bytes(300))
    os.link(src / "bin" / "t0", src / "bin" / "t0-link")
    image = _squash(src, tmp_path / "base.sqfs", "-comp", "gzip", "-b", "4096", "-tailends")
    data = image.read_bytes()
    inode_table = int.from_bytes(data[64:72], "little")
    rng = random.Random(1729)

    def mutants() -> Iterator[bytes]:
        for _ in range(300):
            mutant = bytearray(data)
            for _ in range(rng.choice((1, 2, 4, 8))):
                at = rng.randrange(0, 96) if rng.random() < 0.3 else rng.randrange(inode_table, len(data))
                mutant[at] = rng.randrange(256)
            yield bytes(mutant)

    unpack_mutants(tmp_path, mutants())


def test_squashfs_reports_are_the_same_from_the_cache_and_any_jobs(fixtures_built, binaries_built, tmp_path):
    """An AppImage and a snap in a directory: the same report, byte for byte, with one process or two, and
    when the result cache answers the second scan (the runtime's entry given again before the members it knows)."""
    payload = _coreutils_image(fixtures_built, "-comp", "gzip")
    release = tmp_path / "release"
    release.mkdir()
    _appimage(binaries_built["c-x86_64-musl-static"].read_bytes(), payload, release / "Tool.AppImage")
    shutil.copy(payload, release / "tool_1.0_amd64.snap")
    args = ("scan", str(release), "--format", "json", "--fail-on", "never")
    plain = run_binlens(*args, "--no-cache", "--jobs", "1").stdout
    assert plain.count('"path":') > 200 and f'"path":"{release}/Tool.AppImage"' in plain
    assert run_binlens(*args, "--no-cache", "--jobs", "2").stdout == plain
    cache = str(tmp_path / "cache")
    assert [run_binlens(*args, "--cache-dir", cache).stdout for _ in range(2)] == [plain, plain]


def test_renamed_snaps_and_appimages_pair_in_a_release_diff(binaries_built, tmp_path):
    """A new release renames its snap (name_version_arch.snap, as snapcraft names it) and its AppImage
    (Name-version-arch.AppImage): their members pair across the rename, and so does the AppImage's runtime
    (an artifact of its own, outside any container's name)."""
    small, big = binaries_built["c-rawsys"], binaries_built["c-x86_64-gnu.2.34"]
    runtime = binaries_built["c-x86_64-musl-static"].read_bytes()
    for side, version, prog in (("old", "1.0", small), ("new", "1.1", big)):
        (tmp_path / side / "src" / "bin").mkdir(parents=True)
        shutil.copy(prog, tmp_path / side / "src" / "bin" / "tool")
        snap = _squash(tmp_path / side / "src", tmp_path / side / f"tool_{version}_amd64.snap", "-comp", "xz")
        _appimage(runtime, snap, tmp_path / side / f"Tool-{version}-x86_64.AppImage")
        shutil.rmtree(tmp_path / side / "src")
    r = run_binlens("diff", str(tmp_path / "old"), str(tmp_path / "new"), "--format", "json")
    result = json.loads(r.stdout)
    below = len(str(tmp_path / "old")) + 1
    pairs = {(p["old"][below:], p["new"][below:]) for p in result["pairs"]}
    assert pairs == {("Tool-1.0-x86_64.AppImage", "Tool-1.1-x86_64.AppImage"),
                     ("Tool-1.0-x86_64.AppImage!bin/tool", "Tool-1.1-x86_64.AppImage!bin/tool"),
                     ("tool_1.0_amd64.snap!bin/tool", "tool_1.1_amd64.snap!bin/tool")}, r.stderr
    assert result["removed"] == [] and result["added"] == []


def test_a_damaged_program_in_a_snap_is_that_members_error(binaries_built, tmp_path):
    """A program of a block or more is decompressed by the process that analyses it (its blocks are its own):
    damage in its data is found there, that member's error entry, as unsquashfs finds it; the other members are
    analysed and the gate fails. The report is the same for any --jobs."""
    src = tmp_path / "src"
    (src / "bin").mkdir(parents=True)
    shutil.copy(binaries_built["go-linux-amd64"], src / "bin" / "big")  # (megabytes: whole blocks)
    shutil.copy(binaries_built["c-rawsys"], src / "bin" / "small")  # (a fragment's tail)
    image = _squash(src, tmp_path / "good.snap", "-comp", "gzip")
    data = bytearray(image.read_bytes())
    data[96 + 600_000] ^= 0xFF  # (inside bin/big's blocks: the first file's data follows the superblock)
    bad = tmp_path / "bad.snap"
    bad.write_bytes(bytes(data))
    big = subprocess.run(["unsquashfs", "-cat", str(bad), "bin/big"], capture_output=True)
    small = subprocess.run(["unsquashfs", "-cat", str(bad), "bin/small"], capture_output=True)
    assert big.returncode != 0 and small.returncode == 0 and small.stdout == (src / "bin" / "small").read_bytes()
    reports = {j: run_binlens("scan", str(bad), "--format", "json", "--no-cache", "--jobs", j) for j in "12"}
    assert reports["1"].stdout == reports["2"].stdout
    r = reports["2"]
    arts = {a["path"]: a for a in json.loads(r.stdout)["artifacts"]}
    assert r.returncode == 1 and arts[f"{bad}!bin/small"]["error"] is None, r.stderr
    problem = arts[f"{bad}!bin/big"]["error"]
    assert problem.startswith("corrupt or truncated squashfs member (") and "\n" not in problem, problem


def test_a_squashfs_root_filesystem_is_a_sysroot(fixtures_built, tmp_path):
    """A SquashFS image of a root filesystem (Debian's libc6 and coreutils files: its symlinks, directories and
    the C library), as live systems and firmware ship one, is a sysroot: each program resolves as in the tree
    unsquashfs extracts of it. (It was `not an image, tarball or .deb`.)"""
    from tests.test_archives import _set_as_sysroot_equals_tree

    root = tmp_path / "root"
    for name in ("libc6", "coreutils"):
        subprocess.run(["dpkg-deb", "-x", str(fixtures_built[f"{name}.deb"]), str(root)], check=True)
    image = _squash(root, tmp_path / "rootfs.squashfs", "-comp", "gzip")
    tree = _unsquash(image, tmp_path / "out")
    theirs = _set_as_sysroot_equals_tree([image], tree, ["/bin/ls", "/bin/cat", "/usr/bin/sort"])
    assert theirs["bin/cat"]["loader_errors"] == []  # the image's C library is found
    r = run_binlens("deps", f"{image}!bin/ls")  # (the advice for one of its members is to resolve it there)
    assert r.returncode == 2 and f"binlens deps --sysroot {image} /bin/ls" in r.stderr, r.stderr
    cut = tmp_path / "cut.squashfs"  # (cut short: one line naming it)
    cut.write_bytes(image.read_bytes()[:100_000])
    r = run_binlens("deps", "--sysroot", str(cut), "/bin/ls")
    assert r.returncode == 2 and r.stderr.startswith(f"binlens: {cut}: truncated squashfs image (") and \
        r.stderr.count("\n") == 1, r.stderr


def test_a_damaged_appimage_found_in_a_walk_fails_the_gate(binaries_built, tmp_path):
    """A `.AppImage` in a directory whose payload is cut short: its runtime's entry, then the payload's error
    under its name, and the gate fails — before, it was its runtime alone and passed (the walk's unpacking error
    was looked for only for files that are no binary; an AppImage is both)."""
    src = tmp_path / "src" / "bin"
    src.mkdir(parents=True)
    shutil.copy(binaries_built["c-rawsys"], src / "tool")
    runtime = binaries_built["c-x86_64-musl-static"].read_bytes()
    good = _appimage(runtime, _squash(tmp_path / "src", tmp_path / "p.sqfs", "-comp", "xz"), tmp_path / "A.AppImage")
    cut = tmp_path / "damaged"
    cut.mkdir()
    data = good.read_bytes()
    (cut / "Cut.AppImage").write_bytes(data[:len(data) - 4096])
    named = run_binlens("scan", "--no-cache", str(cut / "Cut.AppImage"))
    assert named.returncode == 2 and named.stderr.count("\n") == 1, named.stderr
    r = run_binlens("scan", "--no-cache", "--format", "json", str(cut))
    assert r.returncode == 1, r.stderr
    got = [(a["path"], a["format"], a["error"]) for a in json.loads(r.stdout)["artifacts"]]
    problem = named.stderr.removeprefix(f"binlens: {cut / 'Cut.AppImage'}: ").strip()
    assert got == [(f"{cut}/Cut.AppImage", "ELF", None), (f"{cut}/Cut.AppImage", "archive", problem)], got


def test_a_renamed_appimage_is_its_runtime_and_its_payload(binaries_built, tmp_path):
    """An AppImage renamed without its suffix (`tool`, as people put one on their PATH) found in a directory was
    its runtime alone: the programs it carries passed the gate unseen. Its payload is now read where its runtime is
    analysed, and every report is the one of the same bytes named `.AppImage` (whose members equal unsquashfs's
    extraction: test_appimage_is_its_runtime_and_its_payload), byte for byte but the name: found in a directory
    (with one worker or two, and from the result cache, which does not open it again), and named on the command
    line (scan, deps, syscalls, inspect). Cut short: the payload's error after its runtime in a directory (the gate
    fails), one line and exit 2 when named — as for one named `.AppImage`."""
    from tests.test_result_cache import _opened

    src = tmp_path / "src"
    (src / "bin").mkdir(parents=True)
    shutil.copy(binaries_built["c-rawsys"], src / "bin" / "tool")
    shutil.copy(binaries_built["c-x86_64-gnu.2.34"], src / "bin" / "helper")
    with zipfile.ZipFile(src / "tool-1.0-py3-none-any.whl", "w") as z:  # (a container in the payload)
        z.write(binaries_built["cpp-x86_64-gxx"], "tool/_native.so")
    runtime = binaries_built["c-x86_64-musl-static"].read_bytes()
    payload = _squash(src, tmp_path / "p.sqfs", "-comp", "xz")
    named, renamed = tmp_path / "named", tmp_path / "renamed"
    named.mkdir()
    renamed.mkdir()
    _appimage(runtime, payload, named / "Tool.AppImage")
    shutil.copy(named / "Tool.AppImage", renamed / "tool")
    made = time.time()

    def same(*args: str, code: int = 0) -> None:
        a = run_binlens(*args, str(named / "Tool.AppImage") if "--dir" not in args else str(named))
        b = run_binlens(*(x for x in args if x != "--dir"), str(renamed / "tool") if "--dir" not in args
                        else str(renamed))
        assert a.returncode == b.returncode == code, (a.stderr, b.stderr)
        assert b.stdout == a.stdout.replace(str(named / "Tool.AppImage"), str(renamed / "tool")), b.stdout[:2000]

    walk = run_binlens("scan", "--no-cache", "--format", "json", str(named))
    paths = [a["path"] for a in json.loads(walk.stdout)["artifacts"]]
    assert paths[0] == f"{named}/Tool.AppImage" and sorted(paths[1:]) == [f"{named}/Tool.AppImage!{m}" for m in (
        "bin/helper", "bin/tool", "tool-1.0-py3-none-any.whl!tool/_native.so")], paths
    a = walk.stdout.replace(str(named / "Tool.AppImage"), str(renamed / "tool")).replace(str(named), str(renamed))
    for jobs in ("1", "2"):
        assert run_binlens("scan", "--no-cache", "--format", "json", "--jobs", jobs, str(renamed)).stdout == a
    same("scan", "--no-cache", "--format", "json")
    for command in ("deps", "syscalls", "inspect"):
        same(command)
    time.sleep(max(0.0, 2.1 - (time.time() - made)))  # (older than the result cache's racy window)
    cache = ("--cache-dir", str(tmp_path / "cache"))
    first = run_binlens("scan", *cache, "--format", "json", str(renamed))
    second, log = _opened(tmp_path, "scan", *cache, "--format", "json", str(renamed))
    assert first.stdout == second.stdout == a and not [line for line in log if str(renamed) in line]
    cut = tmp_path / "cut"
    cut.mkdir()
    data = (renamed / "tool").read_bytes()
    (cut / "tool").write_bytes(data[:len(data) - 4096])
    one = run_binlens("scan", "--no-cache", str(cut / "tool"))
    assert one.returncode == 2 and one.stderr.startswith(f"binlens: {cut / 'tool'}: truncated squashfs image"), \
        one.stderr
    assert one.stderr.count("\n") == 1
    r = run_binlens("scan", "--no-cache", "--format", "json", str(cut))
    got = [(a["path"], a["format"], a["error"]) for a in json.loads(r.stdout)["artifacts"]]
    problem = one.stderr.removeprefix(f"binlens: {cut / 'tool'}: ").strip()
    assert r.returncode == 1 and got == [(f"{cut}/tool", "ELF", None), (f"{cut}/tool", "archive", problem)], got
