"""The result cache: a second scan reuses every unchanged file's facts and prints the same report, byte for
byte, as a scan without the cache; concurrent scans share it without corrupting it; a damaged cache is a miss."""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from test_cli import _on_terminal

from tests.conftest import ROOT, run_binlens, starts_with


def _rows(cache: Path) -> int:
    return sqlite3.connect(cache / "results.sqlite").execute("SELECT count(*) FROM results").fetchone()[0]


def _tree(binaries_built: dict[str, Path], tmp: Path) -> Path:
    d = tmp / "release"
    d.mkdir()
    for n in ("c-rawsys", "go-linux-amd64", "c-x86_64-gnu.2.34", "c-x86_64-musl-static", "go-linux-arm64"):
        shutil.copy(binaries_built[n], d / n)
    return d


def test_second_scan_reuses_facts_and_prints_the_same(binaries_built, tmp_path):
    d = _tree(binaries_built, tmp_path)
    cache = tmp_path / "cache"
    plain = run_binlens("scan", str(d), "--format", "json", "--no-cache")
    first = run_binlens("scan", str(d), "--format", "json", "--cache-dir", str(cache))
    second = run_binlens("scan", str(d), "--format", "json", "--cache-dir", str(cache))
    # one row of facts and one of findings (with the entry's JSON text) per artifact
    assert first.stdout == plain.stdout == second.stdout and _rows(cache) == 10
    # at a terminal the reuse is said on stderr (the report goes to -o)
    seen, _ = _on_terminal("scan", str(d), "--cache-dir", str(cache), "-o", str(tmp_path / "r.txt"))
    assert b"5 of 5 artifacts' facts reused" in seen
    text = [run_binlens("scan", str(d), "--cache-dir", str(cache), *a).stdout for a in ((), ("--no-cache",))]
    assert text[0] == text[1]
    # a changed file is read again; the others still come from the cache
    (d / "c-rawsys").write_bytes((d / "c-rawsys").read_bytes() + b"\0")
    third = run_binlens("scan", str(d), "--format", "json", "--cache-dir", str(cache))
    # the text runs took each artifact's findings from the JSON run's row; one changed artifact adds its two
    assert _rows(cache) == 12
    assert third.stdout == run_binlens("scan", str(d), "--format", "json", "--no-cache").stdout
    # options that change facts are part of the key: another target is another computation
    run_binlens("scan", str(d), "--format", "json", "--cache-dir", str(cache), "-t", "rhel-8")
    assert _rows(cache) == 22


def test_a_json_rescan_reads_only_the_findings_rows(binaries_built, tmp_path):
    """A re-scan that prints JSON answers each unchanged file from its findings row (findings, the entry's JSON
    text, its format and error): with every facts row deleted from the cache, the same bytes; a text re-scan,
    which needs the facts (the summary), reads them again and keeps them anew. The other way round, a cache a
    text scan filled (findings rows without JSON text) gives a JSON scan the findings, and that scan writes each
    row's text in: a JSON re-scan then answers from the findings rows alone again."""
    d = _tree(binaries_built, tmp_path)
    cache = tmp_path / "cache"
    first = run_binlens("scan", str(d), "--format", "json", "--cache-dir", str(cache))
    db = sqlite3.connect(cache / "results.sqlite")
    facts_rows = [k for (k, v) in db.execute("SELECT key, entries FROM results") if b"slice" in v]
    assert len(facts_rows) == 5
    db.executemany("DELETE FROM results WHERE key = ?", [(k,) for k in facts_rows])
    db.commit()
    assert _rows(cache) == 5
    again = run_binlens("scan", str(d), "--format", "json", "--cache-dir", str(cache))
    assert again.stdout == first.stdout and _rows(cache) == 5
    text = run_binlens("scan", str(d), "--cache-dir", str(cache))
    assert text.stdout == run_binlens("scan", str(d), "--no-cache").stdout and _rows(cache) == 10
    other = tmp_path / "other"
    run_binlens("scan", str(d), "--cache-dir", str(other))
    assert _rows(other) == 10
    assert run_binlens("scan", str(d), "--format", "json", "--cache-dir", str(other)).stdout == first.stdout
    db = sqlite3.connect(other / "results.sqlite")
    db.executemany("DELETE FROM results WHERE key = ?",
                   [(k,) for (k, v) in db.execute("SELECT key, entries FROM results") if b"slice" in v])
    db.commit()
    assert _rows(other) == 5
    assert run_binlens("scan", str(d), "--format", "json", "--cache-dir", str(other)).stdout == first.stdout
    assert _rows(other) == 5


def test_concurrent_scans_share_the_cache(binaries_built, tmp_path):
    d = _tree(binaries_built, tmp_path)
    cache = tmp_path / "cache"
    env = dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1")
    procs = [subprocess.Popen([sys.executable, "-m", "analyzer", "scan", str(d), "--format", "json", "--cache-dir",
                               str(cache), "-j", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env) for _ in range(4)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode in (0, 1) for p in procs), [o[1] for o in outs]
    assert len({o[0] for o in outs}) == 1
    db = sqlite3.connect(cache / "results.sqlite")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("SELECT count(*) FROM results").fetchone()[0] == 10


def test_damaged_cache_is_a_miss(binaries_built, tmp_path):
    d = _tree(binaries_built, tmp_path)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "results.sqlite").write_bytes(b"not a database" * 100)
    r = run_binlens("scan", str(d), "--format", "json", "--cache-dir", str(cache))
    assert r.returncode in (0, 1) and "Traceback" not in r.stderr
    assert r.stdout == run_binlens("scan", str(d), "--format", "json", "--no-cache").stdout


@pytest.mark.parametrize("kind", ["tar.gz", "zip", "a", "docker"])
def test_an_unchanged_container_is_not_unpacked_again(binaries_built, tmp_path, kind):
    """A tarball (or a zip, whose members the workers inflate, or an image whose uncompressed layer holds a hard
    link) scanned again with the cache: every member's facts and findings reused, the container read once for
    its digest and not unpacked; the report is the one a scan without the cache prints."""
    d = _tree(binaries_built, tmp_path)
    deb = tmp_path / f"release.{kind}"
    if kind == "docker":  # (docker save's layers are plain tars, read in place: a hard link was not listed)
        import io
        import tarfile

        from test_archives import _image

        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tf:
            for f in sorted(d.iterdir()):
                tf.add(f, arcname=f"bin/{f.name}")
            link = tarfile.TarInfo("bin/again")
            link.type, link.linkname = tarfile.LNKTYPE, "bin/c-rawsys"
            tf.addfile(link)
        (tmp_path / "img").mkdir()
        deb = _image(tmp_path / "img", [gzip.compress(buf.getvalue())], "docker")
    elif kind == "zip":
        with zipfile.ZipFile(deb, "w", zipfile.ZIP_DEFLATED) as zf:
            for f in sorted(d.iterdir()):
                zf.write(f, f.name)
    elif kind == "a":  # a static library's members are read in place: the first scan writes only their table
        subprocess.run(["ar", "rc", str(deb), *sorted(str(f) for f in d.iterdir())], check=True)
    else:
        subprocess.run(["tar", "-czf", str(deb), "-C", str(d), "."], check=True)
    cache = tmp_path / "cache"
    plain = run_binlens("scan", str(deb), "--format", "json", "--no-cache")
    first = run_binlens("scan", str(deb), "--format", "json", "--cache-dir", str(cache))
    rows = _rows(cache)
    members = len(json.loads(plain.stdout)["artifacts"])
    # facts and findings per member, the package's member list, and an image's distribution and packages
    assert rows == 2 * members + 1 + (kind == "docker")
    # the second scan unpacks nothing: strace sees no member written (only the list of their digests)
    log = tmp_path / "strace.log"
    env = dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1")
    second = subprocess.run(["strace", "-f", "-qq", "-e", "trace=openat", "-o", str(log), sys.executable, "-m",
                             "analyzer", "scan", str(deb), "--format", "json", "--cache-dir", str(cache)],
                            capture_output=True, text=True, env=env)
    assert plain.stdout == first.stdout == second.stdout and _rows(cache) == rows
    written = [line for line in log.read_text().splitlines()
               if "binlens-unpack-" in line and "O_CREAT" in line and not re.search(r'\.members"', line)]
    assert written == [], written[:3]
    # the first scan did write them (the check above can see writes)
    log.unlink()
    subprocess.run(["strace", "-f", "-qq", "-e", "trace=openat", "-o", str(log), sys.executable, "-m", "analyzer",
                    "scan", str(deb), "--format", "json", "--no-cache"], capture_output=True, text=True, env=env)
    assert any("binlens-unpack-" in line and "O_CREAT" in line for line in log.read_text().splitlines())


def test_diff_of_two_releases_reuses_their_facts(binaries_built, tmp_path):
    """`binlens diff` of two releases reads the facts of their members from the result cache as scan does: the
    first diff keeps the new release's, the second unpacks neither tarball (strace sees no member written), and
    each prints what a diff without the cache prints, in each format; what a scan kept serves a diff (after a
    scan of both, a diff adds no row)."""
    d = _tree(binaries_built, tmp_path)
    old, new = tmp_path / "v1.tar.gz", tmp_path / "v2.tar.gz"
    subprocess.run(["tar", "-czf", str(old), "-C", str(d), "."], check=True)
    shutil.copy(binaries_built["c-x86_64-gnu.2.17"], d / "c-x86_64-gnu.2.34")  # (an older build of one program)
    subprocess.run(["tar", "-czf", str(new), "-C", str(d), "."], check=True)
    cache = tmp_path / "cache"
    plain = run_binlens("diff", str(old), str(new), "--format", "json", "--no-cache")
    first = run_binlens("diff", str(old), str(new), "--format", "json", "--cache-dir", str(cache))
    assert plain.returncode == first.returncode == 0 and plain.stdout == first.stdout, first.stderr
    assert _rows(cache) > 0
    plain = run_binlens("diff", str(old), str(new), "--no-cache")
    again = tmp_path / "again"
    for side in (old, new):
        assert run_binlens("scan", str(side), "--cache-dir", str(again), "--fail-on", "never").returncode == 0
    scanned = _rows(again)
    assert run_binlens("diff", str(old), str(new), "--cache-dir", str(again)).stdout == plain.stdout
    assert _rows(again) == scanned
    log = tmp_path / "strace.log"
    env = dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1")
    second = subprocess.run(["strace", "-f", "-qq", "-e", "trace=openat", "-o", str(log), sys.executable, "-m",
                             "analyzer", "diff", str(old), str(new), "--format", "text", "--cache-dir", str(cache)],
                            capture_output=True, text=True, env=env)  # fmt: skip
    assert second.stdout == plain.stdout
    written = [line for line in log.read_text().splitlines()
               if "binlens-unpack-" in line and "O_CREAT" in line and not re.search(r'\.members"', line)]
    assert written == [], written[:3]
    assert "c-x86_64-gnu.2.34" in plain.stdout


def _app_with_its_library(fixtures_built, tmp_path: Path) -> Path:
    """app/bin/usegreet, which finds app/lib/libgreet.so.1 through its RUNPATH $ORIGIN/../lib."""
    app = tmp_path / "app"
    (app / "bin").mkdir(parents=True)
    (app / "lib").mkdir()
    shutil.copy(fixtures_built["usegreet"], app / "bin" / "usegreet")
    shutil.copy(fixtures_built["libgreet-runpath.so.1"], app / "lib" / "libgreet.so.1")
    return app


def test_facts_that_read_other_files_are_not_kept(fixtures_built, tmp_path):
    """`deps` depends on the libraries as well as the program: a scan computing it keeps nothing, so removing
    the library a program loads is seen by the next scan (a cache keyed by the program alone would say it is
    still found)."""
    app, cache = _app_with_its_library(fixtures_built, tmp_path), tmp_path / "cache"

    def errors() -> list[str]:
        out = run_binlens("scan", str(app / "bin" / "usegreet"), "--facts", "deps", "--format", "json",
                          "--cache-dir", str(cache))  # fmt: skip
        return json.loads(out.stdout)["artifacts"][0]["facts"]["deps"]["loader_errors"]

    assert errors() == []
    (app / "lib" / "libgreet.so.1").unlink()
    assert any("libgreet.so.1: cannot open shared object file" in e for e in errors())
    assert not cache.exists() or _rows(cache) == 0


def test_libraries_bundled_beside_are_looked_for_again(fixtures_built, tmp_path):
    """A manylinux verdict counts the libraries found through the binary's own $ORIGIN RUNPATH as bundled
    (auditwheel's rule): that depends on files besides the binary, so the result cache does not keep it. With the
    library removed, or a wheel rebuilt without its `numpy.libs/` under the same name, the next scan with the cache
    fails the gate as a scan without it does (it reused the first verdict and passed)."""
    app, cache = _app_with_its_library(fixtures_built, tmp_path), tmp_path / "cache"

    def scan(*args: str) -> dict[str, set[str]]:
        reports = [json.loads(run_binlens("scan", *args, "--format", "json", *flag).stdout)
                   for flag in (("--cache-dir", str(cache)), ("--no-cache",))]
        got = [{a["path"]: {f"{f['rule']} {f['evidence'].get('library')}" for f in a["findings"]
                            if f["rule"] == "LNK012"} for a in r["artifacts"]} for r in reports]
        assert got[0] == got[1]
        return got[0]

    program = str(app / "bin" / "usegreet")
    assert scan(program, "--target", "manylinux_2_17") == {program: set()}
    (app / "lib" / "libgreet.so.1").unlink()
    assert scan(program, "--target", "manylinux_2_17") == {program: {"LNK012 libgreet.so.1"}}

    wheel = fixtures_built["numpy-2.2.6-cp311-cp311-manylinux_2_17_x86_64.whl"]
    mine = tmp_path / "dist" / wheel.name
    mine.parent.mkdir()
    shutil.copy(wheel, mine)
    assert not any(scan(str(mine)).values())
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(mine, "w") as dst:  # the same wheel without numpy.libs/
        for info in src.infolist():
            if not info.filename.startswith("numpy.libs/"):
                dst.writestr(info, src.read(info))
    failed = {f for fs in scan(str(mine)).values() for f in fs}
    with zipfile.ZipFile(wheel) as z:
        removed = {n.rsplit("/", 1)[1] for n in z.namelist() if n.startswith("numpy.libs/")}
    needed = {lib for a in json.loads(run_binlens("scan", str(mine), "--format", "json", "--no-cache").stdout)[
        "artifacts"] for lib in a["facts"].get("needed", ())}
    assert failed == {f"LNK012 {lib}" for lib in removed & needed} and failed


def test_library_models_are_kept_by_their_content(tmp_path):
    """`binlens syscalls` of a dynamic program keeps each library's model (by the library's content): the next
    run reads them and prints the same report as a run without the cache."""
    cache = tmp_path / "cache"
    first = run_binlens("syscalls", "--format", "json", "--cache-dir", str(cache), "/usr/bin/ls")
    kept = _rows(cache)
    second = run_binlens("syscalls", "--format", "json", "--cache-dir", str(cache), "/usr/bin/ls")
    plain = run_binlens("syscalls", "--format", "json", "--no-cache", "/usr/bin/ls")
    assert first.returncode == 0 and first.stdout == second.stdout == plain.stdout
    assert kept >= 3 and _rows(cache) == kept  # libc, libselinux, libpcre2, the loader; nothing added the 2nd time


def test_a_policy_key_is_never_taken_for_another_policys():
    """The findings key of a policy is remembered by the policy object's id, with the object: another policy
    that got the same id after the first was freed (a worker unpickles a policy per chunk of tasks) has its
    own key, not the first one's."""
    from dataclasses import replace

    from analyzer import cache, pipeline
    from analyzer.facts import Context
    from analyzer.policy import config

    first = config.build_policy(config.merge_options(config.load(None), {}))
    other = replace(first, settings={**first.settings, "max_glibc": "2.17"})
    key_first = cache.findings_key("k", pipeline.Request(context=Context(policy=first)))
    key_other = cache.findings_key("k", pipeline.Request(context=Context(policy=other)))
    assert key_first != key_other
    cache._POLICY_KEYS[id(other)] = (first, cache._POLICY_KEYS[id(first)][1])  # as if `other` reused the id
    assert cache.findings_key("k", pipeline.Request(context=Context(policy=other))) == key_other


def test_no_connection_crosses_a_fork(tmp_path, monkeypatch):
    """SQLite connections must not cross a fork (the child's own connections would share the parent's lock
    bookkeeping and two processes would write over each other's WAL frames: a scan's workers lost half their rows
    that way). Before a fork the process writes its rows and closes its connection; parent and child each open
    their own on use; rows written by both, and by children writing at once, all reach the file."""
    from analyzer import cache

    monkeypatch.setenv(cache.ENV, str(tmp_path))
    store = cache.current()
    assert store is not None
    store.put("p" * 64, [{"from": "parent"}])  # pending in the parent at the fork: written before it
    children = []
    for c in range(3):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # a child: nothing open from the parent; 640 rows, ten transactions, beside its siblings
            try:
                mine = cache.current()
                fresh = mine is not None and mine._conn is None
                for i in range(640):
                    mine.put(f"{c}-{i}".rjust(64, "0"), [{"from": c, "i": i}])
                mine.flush()
                os.write(w, b"fresh" if fresh else b"inherited")
            finally:
                os._exit(0)
        os.close(w)
        children.append((pid, r))
    for i in range(640):  # the parent writes at the same time
        store.put(f"p-{i}".rjust(64, "0"), [{"from": "parent", "i": i}])
    store.flush()
    said = []
    for pid, r in children:
        said.append(os.read(r, 20))
        os.waitpid(pid, 0)
    assert said == [b"fresh"] * 3
    assert _rows(tmp_path) == 1 + 4 * 640
    assert store.get("p" * 64) == [{"from": "parent"}] and store.get("2-639".rjust(64, "0")) == [{"from": 2, "i": 639}]


def _opened(tmp: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """The run, and the files it opened to read them whole (a walk's sniffing opens each file with O_NOFOLLOW for
    its first bytes: not counted)."""
    log = tmp / "open.log"
    env = dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1")
    run = subprocess.run(["strace", "-f", "-qq", "-e", "trace=openat", "-o", str(log), sys.executable, "-m",
                          "analyzer", *args], capture_output=True, text=True, env=env)
    return run, [line for line in log.read_text().splitlines()
                 if "O_NOFOLLOW" not in line and "O_DIRECTORY" not in line and "ENOENT" not in line]


def test_an_unchanged_file_is_not_read_again(binaries_built, tmp_path):
    """A file's digest is remembered with what stat says of it (device, inode, size, modification and change
    times): scanned again unchanged, it is not even opened. Changing its content — its size and modification
    time set back as they were — moves its change time, and it is read again; so is a file changed in the two
    seconds before its digest was taken (a change in the same clock tick could leave every time as it was)."""
    import hashlib
    import time

    d = _tree(binaries_built, tmp_path)
    copied = time.monotonic()
    cache = tmp_path / "cache"
    plain = run_binlens("scan", str(d), "--format", "json", "--no-cache").stdout
    time.sleep(max(0.0, 2.1 - (time.monotonic() - copied)))  # older than the racy window
    args = ("scan", str(d), "--format", "json", "--cache-dir", str(cache))
    first = run_binlens(*args)
    second, log = _opened(tmp_path, *args)
    assert second.stdout == first.stdout == plain
    assert not [line for line in log if str(d) in line]
    # same size, same modification time, other content
    victim = d / "c-rawsys"
    st = victim.stat()
    blob = bytearray(victim.read_bytes())
    blob[-1] ^= 0xFF
    victim.write_bytes(bytes(blob))
    changed = time.monotonic()
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert victim.stat().st_size == st.st_size and victim.stat().st_mtime_ns == st.st_mtime_ns
    racy, log = _opened(tmp_path, *args)  # changed just now: read again, not remembered
    assert any(str(victim) in line for line in log)
    shown = {a["path"]: a["sha256"] for a in json.loads(racy.stdout)["artifacts"]}
    assert shown[str(victim)] == hashlib.sha256(bytes(blob)).hexdigest()
    time.sleep(max(0.0, 2.1 - (time.monotonic() - changed)))
    settled, log = _opened(tmp_path, *args)  # no longer racy: its change time says it is another file
    assert any(str(victim) in line for line in log)
    assert settled.stdout == racy.stdout == run_binlens("scan", str(d), "--format", "json", "--no-cache").stdout
    again, log = _opened(tmp_path, *args)  # remembered now
    assert again.stdout == settled.stdout and not any(str(victim) in line for line in log)


def test_a_cache_that_is_busy_when_opened_is_opened_again(tmp_path, monkeypatch):
    """SQLite can answer "database is locked" at once, without waiting, to a process opening a database that
    others are opening or checkpointing: in three first scans of eight over /usr/lib one worker got that, ran
    without its cache for the whole scan, and half the rows were missing. Opening is tried again; the busy
    answer is injected here (the race is rare on a small scan)."""
    import sqlite3

    from analyzer import cache

    real = sqlite3.connect
    busy = {"left": 3}

    class Busy:
        def __init__(self, conn: sqlite3.Connection) -> None:
            self.conn = conn

        def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
            if sql.startswith("PRAGMA journal_mode") and busy["left"]:
                busy["left"] -= 1
                raise sqlite3.OperationalError("database is locked")
            return self.conn.execute(sql, *args)

        def __getattr__(self, name: str) -> object:
            return getattr(self.conn, name)

        def __enter__(self) -> sqlite3.Connection:
            return self.conn.__enter__()

        def __exit__(self, *exc: object) -> object:
            return self.conn.__exit__(*exc)

    monkeypatch.setattr(cache.sqlite3, "connect", lambda *a, **k: Busy(real(*a, **k)))
    monkeypatch.setenv(cache.ENV, str(tmp_path))
    monkeypatch.setattr(cache, "_OPEN", {})
    store = cache.current()
    assert store is not None and busy["left"] == 0
    store.put("k" * 64, [{"kept": True}])
    store.flush()
    assert _rows(tmp_path) == 1


def test_unchanged_container_is_answered_without_workers(binaries_built, tmp_path):
    """A re-scan of an unchanged container reads its members' findings rows with its member list, in one batch,
    and answers them where they are listed: no worker process is started (strace sees no fork), where the first
    scan of the same 40 members starts the pool; the report is the one a scan without the cache prints."""
    elves = sorted(p for p in binaries_built.values() if starts_with(p, b"\x7fELF"))[:40]
    ball = tmp_path / "release.tar.gz"
    subprocess.run(["tar", "-czf", str(ball), "-C", "/", *[str(p)[1:] for p in elves]], check=True)
    cache = tmp_path / "cache"
    env = dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1")
    args = [sys.executable, "-m", "analyzer", "scan", str(ball), "--format", "json", "--fail-on", "never"]
    plain = subprocess.run([*args, "--no-cache"], capture_output=True, text=True, env=env).stdout
    forks = []
    for _ in range(2):
        log = tmp_path / "strace.log"
        r = subprocess.run(["strace", "-f", "-qq", "-e", "trace=clone,clone3,fork,vfork", "-o", str(log), *args,
                            "--cache-dir", str(cache), "--jobs", "2"], capture_output=True, text=True, env=env)
        assert r.stdout == plain, r.stderr
        forks.append(sum(1 for line in log.read_text().splitlines() if "clone" in line and "CLONE_THREAD" not in line))
    assert forks[0] >= 2 and forks[1] == 0, forks
