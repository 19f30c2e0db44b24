"""makeself self-extracting installers (`tool.run`, `install.sh`, `.bin`: a shell script, then compressed tar
archives), as vendors ship Linux software: every member's facts equal those of the same file after the
installer's own script extracted it (`--noexec --target`), for each compression makeself writes; an encrypted,
truncated or damaged one is one line."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.conftest import bad_input_is_one_line, run_binlens
from tests.test_archives import _compare

MAKESELF = shutil.which("makeself")
pytestmark = pytest.mark.skipif(MAKESELF is None, reason="makeself is in the README's apt-get line")


def _tree(root: Path) -> Path:
    """Programs, a library, a wheel with native code (a container inside the installer) and the setup script."""
    (root / "bin").mkdir(parents=True)
    (root / "lib").mkdir()
    for src, dst in (("/bin/ls", "bin/ls"), ("/bin/cat", "bin/cat"), ("/bin/true", "lib/true")):
        shutil.copy(src, root / dst)
    with zipfile.ZipFile(root / "lib" / "tool-1.0-py3-none-any.whl", "w") as z:
        z.writestr("tool/_native.so", Path("/bin/ls").read_bytes())
    (root / "setup.sh").write_text("#!/bin/sh\necho installed\n")
    (root / "setup.sh").chmod(0o755)
    return root


def _makeself(tmp: Path, out: str, *options: str) -> Path:
    src = _tree(tmp / "src") if not (tmp / "src").exists() else tmp / "src"
    run = tmp / out
    subprocess.run([MAKESELF, "--quiet", *options, str(src), str(run), "binlens test", "./setup.sh"], check=True,
                   capture_output=True)
    return run


def _extracted(run: Path, tmp: Path) -> Path:
    """The installer's own extraction (its script, without running the setup command)."""
    target = tmp / f"{run.name}-extracted"
    subprocess.run(["sh", str(run), "--noexec", "--quiet", "--accept", "--target", str(target)], check=True,
                   capture_output=True, stdin=subprocess.DEVNULL, timeout=60)
    return target


@pytest.mark.parametrize("options", [(), ("--bzip2",), ("--xz",), ("--zstd",), ("--nocomp",)],
                         ids=["gzip", "bzip2", "xz", "zstd", "none"])
def test_members_equal_the_installers_own_extraction(tmp_path, options):
    run = _makeself(tmp_path, "tool.run", *options)
    assert _compare(str(run), _extracted(run, tmp_path)) == 4  # three programs and the wheel's library


def test_an_older_script_that_counts_its_lines_itself(tmp_path):
    """Before makeself 2.4 the script had no `skip=` line: `offset=`head -n 402 "$0" | wc -c``. Made from 2.4's
    by taking the line out and writing its number in (the script still extracts itself)."""
    run = _makeself(tmp_path, "new.run")
    lines = run.read_bytes().split(b"\n")
    (at,) = [i for i, line in enumerate(lines) if line.startswith(b'skip="')]
    skip = int(lines[at][6:-1])
    script = [line.replace(b'head -n "$skip"', b'head -n %d' % (skip - 1)) for line in lines[:skip]]
    old = tmp_path / "old.run"
    old.write_bytes(b"\n".join(script[:at] + script[at + 1:] + lines[skip:]))
    assert b'"$skip"' not in b"\n".join(script[:at] + script[at + 1:])
    assert _compare(str(old), _extracted(old, tmp_path)) == 4


def test_found_in_a_walk_by_name_and_bytes(tmp_path):
    """In a directory, `.run`, `.sh` and `.bin` files are looked at: makeself's are read, a plain shell script
    is passed over; inside a tarball too."""
    run = _makeself(tmp_path, "tool.run")
    d = tmp_path / "release"
    d.mkdir()
    for name in ("tool.run", "install.sh", "tool-linux.bin"):
        shutil.copy(run, d / name)
    (d / "plain.sh").write_text("#!/bin/sh\necho hello\n")
    with tarfile.open(d / "bundle.tar.gz", "w:gz") as t:
        t.add(run, "dist/tool.run")
    report = json.loads(run_binlens("scan", "--format", "json", "--no-cache", "--fail-on", "never", str(d),
                                    check=True).stdout)
    outers = sorted({a["path"].rsplit("!", 1)[0] for a in report["artifacts"] if "_native.so" not in a["path"]})
    assert outers == sorted([f"{d}/{n}" for n in ("tool.run", "install.sh", "tool-linux.bin")] +
                            [f"{d}/bundle.tar.gz!dist/tool.run"])
    assert not any(a["error"] for a in report["artifacts"])


def test_encrypted_truncated_and_damaged_are_one_line(tmp_path):
    enc = _makeself(tmp_path, "enc.run", "--ssl-encrypt", "--ssl-passwd", "secret")
    run = _makeself(tmp_path, "tool.run", "--xz")
    data = run.read_bytes()
    cut = tmp_path / "cut.run"
    cut.write_bytes(data[:len(data) - 1000])
    bad = bytearray(data)
    bad[len(data) // 2:len(data) // 2 + 64] = bytes(64)
    damaged = tmp_path / "damaged.run"
    damaged.write_bytes(bytes(bad))
    assert subprocess.run(["sh", str(damaged), "--noexec", "--quiet", "--nox11", "--target", str(tmp_path / "x")],
                          capture_output=True).returncode != 0  # (its own script refuses it too)
    for f, problem in ((enc, "encrypted makeself archive"), (cut, "truncated makeself archive"),
                       (damaged, "corrupt")):
        bad_input_is_one_line(f, problem, tmp_path / f"in-{f.name}")


def test_a_long_license_before_the_archive(tmp_path):
    """`--license`: the license text is in the script, before the lines that say where the archive is (here
    400 KB of it): found all the same."""
    lic = tmp_path / "LICENSE"
    lic.write_text("The license of this software, one line of many.\n" * 8000)
    run = _makeself(tmp_path, "licensed.run", "--license", str(lic))
    assert run.read_bytes().index(b'\nfilesizes="') > 64 << 10
    assert _compare(str(run), _extracted(run, tmp_path)) == 4


def test_renamed_installers_pair_in_a_release_diff(tmp_path):
    """A new release renames its installer (tool-1.0-linux.run → tool-1.1-linux.run): its members pair."""
    run = _makeself(tmp_path, "tool.run")
    for side, version in (("old", "1.0"), ("new", "1.1")):
        (tmp_path / side).mkdir()
        shutil.copy(run, tmp_path / side / f"tool-{version}-linux.run")
    result = json.loads(run_binlens("diff", str(tmp_path / "old"), str(tmp_path / "new"), "--format", "json").stdout)
    below = len(str(tmp_path / "old")) + 1
    pairs = {(p["old"][below:], p["new"][below:]) for p in result["pairs"]}
    assert pairs == {(f"tool-1.0-linux.run!{m}", f"tool-1.1-linux.run!{m}")
                     for m in ("bin/cat", "bin/ls", "lib/true", "lib/tool-1.0-py3-none-any.whl!tool/_native.so")}
    assert result["removed"] == [] and result["added"] == []


def test_a_script_that_claims_too_many_lines(tmp_path):
    """`skip` past the limit on script lines, or past the file's end: one line each, at once."""
    run = _makeself(tmp_path, "tool.run")
    data = run.read_bytes()
    at = data.index(b'\nskip="') + 7
    end = data.index(b'"', at)
    for value, problem in ((b"999999999999", "a makeself script of 999999999999 lines"),
                           (b"%d" % (data.count(b"\n") + 10), "truncated makeself script")):
        f = tmp_path / f"skip-{len(value)}.run"
        f.write_bytes(data[:at] + value + data[end:])
        r = run_binlens("scan", "--no-cache", str(f))
        assert r.returncode == 2 and r.stderr.startswith(f"binlens: {f}: {problem}"), r.stderr
