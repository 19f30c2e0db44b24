"""binlens diff: every difference it reports comes from facts the other tests hold to readelf and go."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import build
from conftest import run_binlens, starts_with
from elfcompare import expected_version_max
from groundtruth import readelf


def _diff(*args: str) -> tuple[int, dict]:
    proc = run_binlens("diff", "--format", "json", *args)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def test_diff_of_two_c_builds(fixtures_built: dict[str, Path]) -> None:
    old, new = fixtures_built["c-x86_64-gnu.2.17"], fixtures_built["usegreet"]
    code, result = _diff(str(old), str(new))
    assert code == 0
    (pair,) = result["pairs"]
    assert pair["size"]["delta"] == new.stat().st_size - old.stat().st_size
    ro, rn = readelf(str(old)), readelf(str(new))
    assert pair["libraries"]["added"] == [lib for lib in rn.needed if lib not in ro.needed]
    assert pair["libraries"]["removed"] == [lib for lib in ro.needed if lib not in rn.needed]
    vo, vn = expected_version_max(ro.version_needs), expected_version_max(rn.version_needs)
    expected = {ns: [vo.get(ns, "").split("_")[-1] or None, vn.get(ns, "").split("_")[-1] or None]
                for ns in set(vo) | set(vn) if vo.get(ns) != vn.get(ns)}  # fmt: skip
    assert pair["version_max"] == expected
    sizes_o = {name: size for name, _, size, _ in ro.sections}
    sizes_n = {name: size for name, _, size, _ in rn.sections}
    for name, change in pair["sections"].items():
        assert (change["old"], change["new"]) == (sizes_o.get(name), sizes_n.get(name))


def test_diff_says_where_each_side_runs(fixtures_built: dict[str, Path]) -> None:
    """Of two builds, the change of where the binary runs (per family the oldest release, as each side's own
    scan says): from glibc 2.17's symbols to 2.34's every family moves to a later release; a build asking for
    a Nix store's loader runs on no release (this machine's kernel refuses it: test_distros) — before, diff
    showed only the interpreter's new path and the highest GLIBC node."""
    base = fixtures_built["c-x86_64-gnu.2.17"]
    for other in ("c-x86_64-gnu.2.34", "c-interp-nix"):
        new = fixtures_built[other]
        code, result = _diff(str(base), str(new))
        (pair,) = result["pairs"]
        scans = [json.loads(run_binlens("scan", "--format", "json", "--no-cache", str(p)).stdout)["artifacts"][0]
                 for p in (base, new)]
        before, after = (a["facts"]["compat"]["oldest"] for a in scans)
        assert pair["runs_on"] == {f: [before.get(f), after.get(f)] for f in sorted(set(before) | set(after))
                                   if before.get(f) != after.get(f)}
        assert pair["runs_on"] and (other != "c-interp-nix" or after == {})
        text = run_binlens("diff", str(base), str(new)).stdout
        assert "runs on: ubuntu-18.04+ -> " + ("no ubuntu" if after == {} else f"{after['ubuntu']}+") in text, text


def test_diff_of_two_go_builds(fixtures_built: dict[str, Path]) -> None:
    old, new = fixtures_built["gomx-app-go1.21.13"], fixtures_built["gomx-app"]
    _, result = _diff(str(old), str(new))
    go = result["pairs"][0]["go"]
    gobin = str(build.go_binary())
    ref = [json.loads(subprocess.run([gobin, "version", "-m", "-json", str(p)], capture_output=True,
                                     text=True).stdout) for p in (old, new)]  # fmt: skip
    assert go["version"] == [ref[0]["GoVersion"], ref[1]["GoVersion"]]
    so = {s["Key"]: s.get("Value", "") for s in ref[0]["Settings"]}
    sn = {s["Key"]: s.get("Value", "") for s in ref[1]["Settings"]}
    assert go["settings"] == {k: [so.get(k), sn.get(k)] for k in sorted(set(so) | set(sn)) if so.get(k) != sn.get(k)}
    assert go["deps"] == {}  # the same modules at the same versions


def test_diff_of_two_reports_and_limits(fixtures_built: dict[str, Path], tmp_path: Path) -> None:
    for release, name in (("v1", "go-linux-amd64-sw"), ("v2", "go-linux-amd64")):
        folder = tmp_path / release
        folder.mkdir()
        (folder / "app").write_bytes(fixtures_built[name].read_bytes())
        (folder / "tool").write_bytes(fixtures_built["c-x86_64-gnu.2.17"].read_bytes())
        if release == "v2":
            (folder / "extra").write_bytes(fixtures_built["usegreet"].read_bytes())
        run_binlens("scan", "--format", "json", "--output", str(tmp_path / f"{release}.json"), str(folder))
    code, result = _diff(str(tmp_path / "v1.json"), str(tmp_path / "v2.json"))
    assert code == 0
    pairs = {Path(p["new"]).name: p for p in result["pairs"]}
    assert set(pairs) == {"app", "tool"}
    assert result["added"] == [str(tmp_path / "v2" / "extra")]
    app = pairs["app"]
    grown = fixtures_built["go-linux-amd64"].stat().st_size - fixtures_built["go-linux-amd64-sw"].stat().st_size
    assert app["size"]["delta"] == grown and pairs["tool"]["size"]["delta"] == 0
    assert app["go"]["settings"] == {"-ldflags": ["-s -w", None]}
    over = run_binlens("diff", "--max-growth", "10", str(tmp_path / "v1.json"), str(tmp_path / "v2.json"))
    assert over.returncode == 1 and "over limit" in over.stdout
    md = run_binlens("diff", "--format", "markdown", str(tmp_path / "v1.json"), str(tmp_path / "v2.json")).stdout
    assert md.startswith("## binlens diff") and "Go setting -ldflags" in md


def test_diff_bad_input(tmp_path: Path) -> None:
    not_report = tmp_path / "other.json"
    not_report.write_text('{"hello": 1}')
    empty = tmp_path / "empty"
    empty.mkdir()
    truncated = tmp_path / "trunc.deb"
    truncated.write_bytes(b"!<arch>\ndebian-binary   0           0     0     100644  4         `\n2.0\n"
                          b"data.tar.xz     0           0     0     100644  99999     `\n\xfd7zXZ")
    for args, expected in (
        (["/nonexistent", "/bin/ls"], "cannot read"),
        ([str(not_report), "/bin/ls"], "not a binlens JSON report"),
        ([str(empty), "/bin/ls"], "no ELF, PE or Mach-O files found"),  # a release with nothing to compare
        ([str(truncated), "/bin/ls"], "truncated"),
    ):
        proc = run_binlens("diff", *args)
        assert proc.returncode == 2 and expected in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_malformed_reports_are_one_line_errors(fixtures_built: dict[str, Path], tmp_path: Path) -> None:
    """Reports given to diff that are not what binlens writes (NaN sizes, wrong types, missing keys, nesting
    3,000 deep): one line naming the report and the field, exit 2. A real report still diffs."""
    import json

    good = run_binlens("scan", "--format", "json", str(fixtures_built["go-linux-amd64-sw"]))

    def variant(change: Any) -> str:
        data = json.loads(good.stdout)
        change(data["artifacts"][0])
        return json.dumps(data)

    cases = {
        "nan": (variant(lambda e: e.update(size=float("nan"))), "NaN"),
        "artifacts": ('{"artifacts": 3}', "no artifacts list"),
        "deep": ('{"artifacts":' + "[" * 3000 + "]" * 3000 + "}", "nested too deeply"),
        "facts": (variant(lambda e: e.update(facts=5)), ".facts is not an object"),
        "size": (variant(lambda e: e.update(size="x")), ".size is not int or null"),
        "finding": (variant(lambda e: e.update(findings=[{"rule": 1, "message": "m"}])), ".findings[0].rule"),
        "section": (variant(lambda e: e["facts"]["sections"][0].pop("size")), ".facts.sections[0] has no size"),
        "go-dep": (variant(lambda e: e["facts"]["go"].update(deps=[None])), ".facts.go.deps[0] is not an object"),
        "entry": ('{"artifacts": [7]}', "artifacts[0] is not an artifact entry"),
        "installed": ('{"installed": {"img.tar": {"packages": [{"name": 3}]}}, "artifacts": []}',
                      'installed["img.tar"] has no list of packages'),
        "installed-type": ('{"installed": [], "artifacts": []}', "installed is not an object"),
        "installed-arch": ('{"installed": {"i": {"packages": [{"type": "deb", "name": "a", "version": "1", '
                           '"arch": 5}]}}, "artifacts": []}', 'installed["i"] has no list of packages'),
    }
    for name, (text, expected) in cases.items():
        f = tmp_path / f"{name}.json"
        f.write_text(text)
        proc = run_binlens("diff", str(f), str(f))
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, (name, proc.stderr[-400:])
        assert str(f) in proc.stderr and expected in proc.stderr, (name, proc.stderr)
    ok = tmp_path / "ok.json"
    ok.write_text(good.stdout)
    assert run_binlens("diff", str(ok), str(ok)).returncode == 0


def test_diff_of_two_releases_pairs_every_member(fixtures_built: dict[str, Path], tmp_path: Path) -> None:
    """Two .debs of a release — the second rebuilt by dpkg-deb with /bin/ls given one section more and
    /usr/bin/yes removed — and the same two as directories: every binary paired by its place in the release,
    the one removed named, the changed one's size and new section as stat and readelf say."""
    deb = fixtures_built["coreutils.deb"]
    old_tree, root = tmp_path / "old", tmp_path / "root"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(old_tree)], check=True)
    subprocess.run(["dpkg-deb", "-R", str(deb), str(root)], check=True)
    note = tmp_path / "note"
    note.write_bytes(b"binlens" * 100)
    subprocess.run(["objcopy", "--add-section", f".binlens={note}", str(root / "bin/ls")], check=True)
    (root / "usr/bin/yes").unlink()
    new = tmp_path / "new.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "-z1", "-b", str(root), str(new)], check=True,
                   capture_output=True)  # (gzip -1: quick to make; the compression is not what is tested)
    elves = sorted(str(p.relative_to(old_tree)) for p in old_tree.rglob("*")
                   if p.is_file() and not p.is_symlink() and starts_with(p, b"\x7fELF"))
    assert "usr/bin/yes" in elves and len(elves) > 50

    _, result = _diff(str(deb), str(new))
    assert result["removed"] == [f"{deb}!usr/bin/yes"] and result["added"] == []
    assert sorted(p["old"].split("!", 1)[1] for p in result["pairs"]) == [e for e in elves if e != "usr/bin/yes"]
    assert all(p["old"].split("!", 1)[1] == p["new"].split("!", 1)[1] for p in result["pairs"])
    ls = next(p for p in result["pairs"] if p["new"] == f"{new}!bin/ls")
    subprocess.run(["dpkg-deb", "-x", str(new), str(tmp_path / "x")], check=True)
    new_ls = tmp_path / "x" / "bin" / "ls"
    assert ls["size"]["delta"] == new_ls.stat().st_size - (old_tree / "bin/ls").stat().st_size > 0
    added = {name: size for name, _, size, _ in readelf(str(new_ls)).sections if name == ".binlens"}
    assert ls["sections"][".binlens"] == {"old": None, "new": added[".binlens"], "delta": added[".binlens"]}

    from analyzer.report.diff import render  # (the text view of the same result: the CLI's is tested above)

    text = render(result).splitlines()  # people: what changed, the rest counted
    assert text[0].startswith(f"{deb}!bin/ls -> {new}!bin/ls: ") and "section .binlens: none -> " in "\n".join(text)
    assert f"unchanged: {len(elves) - 2} of {len(elves) - 1} artifacts" in text
    assert text[-1] == f"removed: {deb}!usr/bin/yes"

    _, by_dir = _diff(str(old_tree), str(tmp_path / "x"))  # directories: paired by the path below each
    assert by_dir["removed"] == [f"{old_tree}/usr/bin/yes"] and by_dir["added"] == []
    assert sorted(p["old"][len(str(old_tree)) + 1:] for p in by_dir["pairs"]) == \
        sorted(p["old"].split("!", 1)[1] for p in result["pairs"])


def test_releases_as_directories_of_packages_pair_within_each_package(binaries_built: dict[str, Path],
                                                                      tmp_path: Path) -> None:
    """Two release directories, each with two tarballs holding the same path (usr/bin/x, a different program in
    each): every member is paired with the one of its own package, none with its namesake in the other — the
    directories scanned now, or their JSON reports."""
    progs = {"a": binaries_built["c-rawsys"], "b": binaries_built["c-x86_64-gnu.2.34"]}
    for side in ("old", "new"):
        (tmp_path / side).mkdir()
        for pkg, prog in progs.items():
            tree = tmp_path / f"t-{side}-{pkg}" / "usr" / "bin"
            tree.mkdir(parents=True)
            (tree / "x").write_bytes(prog.read_bytes())
            subprocess.run(["tar", "-czf", str(tmp_path / side / f"{pkg}.tar.gz"), "-C", str(tree.parent.parent),
                            "."], check=True)
    _, result = _diff(str(tmp_path / "old"), str(tmp_path / "new"))
    below = len(str(tmp_path / "old")) + 1  # (old/ and new/: the same length)
    pairs = {(p["old"][below:], p["new"][below:]): p["size"]["delta"] for p in result["pairs"]}
    assert pairs == {("a.tar.gz!usr/bin/x", "a.tar.gz!usr/bin/x"): 0, ("b.tar.gz!usr/bin/x", "b.tar.gz!usr/bin/x"): 0}
    assert result["added"] == result["removed"] == []
    for side in ("old", "new"):  # the same releases as JSON reports (a.tar.gz's x was paired with b.tar.gz's)
        run_binlens("scan", str(tmp_path / side), "--format", "json", "-o", str(tmp_path / f"{side}.json"))
    _, from_reports = _diff(str(tmp_path / "old.json"), str(tmp_path / "new.json"))
    assert from_reports["pairs"] == result["pairs"] and from_reports["added"] == from_reports["removed"] == []


def test_release_directories_pair_packages_renamed_by_a_new_version(binaries_built: dict[str, Path],
                                                                    tmp_path: Path) -> None:
    """A new release renames its packages (app-1.0-linux-amd64.tar.gz → app-1.1-…, pkg_1.0-1_amd64.deb →
    pkg_1.0-2_amd64.deb, as dpkg-deb -b names them): their members pair across the rename, the sizes as stat
    says; a package of another architecture pairs with nothing, and one present at two versions in the new
    release (which would be a guess) neither."""
    small, big = binaries_built["c-rawsys"], binaries_built["c-x86_64-gnu.2.34"]

    def tarball(path: Path, member: str, prog: Path) -> None:
        tree = tmp_path / "t" / path.name
        (tree / member).parent.mkdir(parents=True)
        shutil.copy(prog, tree / member)
        subprocess.run(["tar", "-czf", str(path), "-C", str(tree), "."], check=True)

    def deb(folder: Path, version: str, arch: str, prog: Path) -> str:
        root = tmp_path / "d" / f"{folder.name}-{version}-{arch}"
        (root / "DEBIAN").mkdir(parents=True)
        (root / "usr/bin").mkdir(parents=True)
        (root / "DEBIAN/control").write_text(f"Package: pkg\nVersion: {version}\nArchitecture: {arch}\n"
                                             "Maintainer: binlens <binlens@example.org>\nDescription: test\n")
        shutil.copy(prog, root / "usr/bin/p")
        subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(root), str(folder)], check=True,
                       capture_output=True)  # (a folder: dpkg-deb names the package name_version_arch.deb)
        return f"pkg_{version}_{arch}.deb"

    old, new = tmp_path / "old", tmp_path / "new"
    for side in (old, new):
        side.mkdir()
    tarball(old / "app-1.0-linux-amd64.tar.gz", "usr/bin/app", small)
    tarball(new / "app-1.1-linux-amd64.tar.gz", "usr/bin/app", big)
    assert deb(old, "1.0-1", "amd64", small) in os.listdir(old)
    deb(new, "1.0-2", "amd64", small)
    deb(new, "1.0-2", "arm64", small)
    tarball(old / "dup-1.0.tar.gz", "bin/d", small)
    tarball(new / "dup-1.1.tar.gz", "bin/d", small)
    tarball(new / "dup-1.2.tar.gz", "bin/d", small)
    _, result = _diff(str(old), str(new))
    below = len(str(old)) + 1  # (old/ and new/: the same length)
    pairs = {(p["old"][below:], p["new"][below:]): p["size"]["delta"] for p in result["pairs"]}
    assert pairs == {
        ("app-1.0-linux-amd64.tar.gz!usr/bin/app", "app-1.1-linux-amd64.tar.gz!usr/bin/app"):
            big.stat().st_size - small.stat().st_size,
        ("pkg_1.0-1_amd64.deb!usr/bin/p", "pkg_1.0-2_amd64.deb!usr/bin/p"): 0,
    }
    assert [p[below:] for p in result["removed"]] == ["dup-1.0.tar.gz!bin/d"]
    assert sorted(p[below:] for p in result["added"]) == ["dup-1.1.tar.gz!bin/d", "dup-1.2.tar.gz!bin/d",
                                                          "pkg_1.0-2_arm64.deb!usr/bin/p"]
