"""Scale-out on Dask: a real `dask scheduler` and two `dask worker` processes on this machine; a scan through
them prints, byte for byte, what a local scan prints; a worker killed in the middle of a scan loses nothing."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import ROOT, assert_died_alone, run_binlens


def _folder(binaries_built: dict[str, Path], tmp: Path, n: int, below: int = 0) -> Path:
    """The first n binaries by name (those smaller than `below` bytes, when given)."""
    d = tmp / "bins"
    d.mkdir()
    chosen = [(name, p) for name, p in sorted(binaries_built.items()) if not below or p.stat().st_size < below]
    for name, path in chosen[:n]:
        shutil.copy(path, d / name)
    return d


def test_scan_on_a_dask_cluster_equals_a_local_scan(binaries_built, tmp_path, shared_cluster):
    address, _ = shared_cluster
    d = _folder(binaries_built, tmp_path, 30)
    ball = tmp_path / "dist.tar.gz"
    subprocess.run(["tar", "-czf", str(ball), "-C", str(d), "."], check=True)
    local = run_binlens("scan", str(d), str(ball), "--format", "json", "--no-cache")
    remote = run_binlens("scan", str(d), str(ball), "--format", "json", "--no-cache", "--dask", address)
    assert remote.returncode == local.returncode and remote.stdout == local.stdout, remote.stderr[-2000:]
    lc = run_binlens("scan", str(d), str(ball), "--format", "json", "--no-cache", "--dask", "local:2")
    assert lc.returncode == local.returncode and lc.stdout == local.stdout, lc.stderr[-2000:]


def test_a_worker_killed_mid_scan_loses_nothing(binaries_built, tmp_path, cluster):
    address, workers = cluster
    d = _folder(binaries_built, tmp_path, 150)
    local = run_binlens("scan", str(d), "--format", "json", "--no-cache")
    env = dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1")
    scan = subprocess.Popen([sys.executable, "-m", "analyzer", "scan", str(d), "--format", "json", "--no-cache",
                             "--dask", address], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    time.sleep(2.0)  # the cluster is at work
    assert scan.poll() is None  # the kill below happens in the middle of the scan
    workers[0].send_signal(signal.SIGKILL)
    out, err = scan.communicate(timeout=600)
    assert scan.returncode == local.returncode, err[-2000:]
    assert out == local.stdout
    paths = [a["path"] for a in json.loads(out)["artifacts"]]
    assert len(paths) == len(set(paths)) == len(json.loads(local.stdout)["artifacts"])


def test_a_file_that_kills_its_workers_is_its_own_error(binaries_built, tmp_path):
    """A file whose worker dies each time it is analysed (SIGKILL, as the OOM killer or a crash in a native
    parser would): Distributed gives up on its chunk (KilledWorker) after the retries the scheduler allows; the
    chunk's files then go one by one, and that file alone is an error entry (ART001), every other file as in a
    local scan (before: KilledWorker's traceback, no report)."""
    d = _folder(binaries_built, tmp_path, 24)
    victim = str(sorted(d.iterdir())[17])  # (in a chunk of eight: sent alone, others beside it on its worker)
    local = run_binlens("scan", str(d), "--format", "json", "--no-cache")
    killed = run_binlens("scan", str(d), "--format", "json", "--no-cache", "--dask", "local:2",
                         env=dict(os.environ, BINLENS_FAULT_KILL=victim,  # (given up after one death: quicker)
                                  DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES="0"))
    assert killed.returncode == 1 and "Traceback" not in killed.stderr, killed.stderr[-2000:]
    assert_died_alone(local.stdout, killed.stdout, victim)


def test_a_file_spinning_in_native_code_is_its_own_error(binaries_built, tmp_path):
    """A file whose analysis never returns from a C call (BINLENS_FAULT_SPIN: OpenSSL's PBKDF2 of 2^31 rounds,
    as a native parser caught in a loop), where neither timer reaches: a Dask worker that runs one task at a
    time backs the file's budget with a CPU-time limit as the pool's workers do, so the kernel ends the worker,
    and the file is its error (before: the scan hung until `timeout`)."""
    d = _folder(binaries_built, tmp_path, 12)
    spins = str(sorted(d.iterdir())[5])
    local = run_binlens("scan", str(d), "--format", "json", "--no-cache")
    proc = run_binlens("scan", "--time-budget", "1", "--format", "json", "--no-cache", "--dask", "local:2", str(d),
                       prefix=["timeout", "150"], env=dict(os.environ, BINLENS_FAULT_SPIN=spins,
                                                            DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES="0"))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert_died_alone(local.stdout, proc.stdout, spins)


def test_a_local_cluster_beside_another_prints_nothing_of_it(binaries_built, tmp_path):
    """`--dask local` on a machine where port 8787 (Distributed's default for the scheduler's HTTP server) is
    taken, as by another cluster: the scan's stderr is empty (before: Distributed's warning that the port is in
    use, four lines on every such scan)."""
    import socket

    d = _folder(binaries_built, tmp_path, 3)
    taken = socket.socket()
    taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        taken.bind(("", 8787))
        taken.listen()
    except OSError:  # (in use already: by another test's cluster, which is the case this test makes)
        taken.close()
        taken = None
    try:
        r = run_binlens("scan", str(d), "--no-cache", "--dask", "local:1")
    finally:
        if taken is not None:
            taken.close()
    assert r.returncode in (0, 1) and r.stderr == "", r.stderr


def test_workers_of_several_threads(binaries_built, tmp_path):
    """A Dask worker of two threads analyses two files at once, in one process. (1) A tarball's members: the
    scan's environment (where the members were unpacked) is the process's, set for each chunk; it was put back
    by the first thread done while the other still analysed members, which were then left out of the report
    (every second scan of these 150). (2) A memory budget (the process's address-space limit, lowered for a
    file's analysis and put back after it) is taken in turns; two threads lowered and restored it out of order
    and left it lowered, so the worker's next files ran out of memory (`resource.getrlimit` in each worker after
    the scan says). Each report is the local one."""
    import resource

    from distributed import Client

    from tests.conftest import _dask_cluster

    d = _folder(binaries_built, tmp_path, 150, below=200_000)
    ball = tmp_path / "dist.tar.gz"
    subprocess.run(["tar", "-czf", str(ball), "-C", str(d), "."], check=True)
    budgets = ("--memory-budget", "3G", "--time-budget", "300")
    local = [run_binlens("scan", str(ball), "--format", "json", "--no-cache"),
             run_binlens("scan", str(d), "--format", "json", "--no-cache", *budgets)]
    with _dask_cluster(tmp_path, threads=2) as (address, _):
        for _ in range(2):
            remote = run_binlens("scan", str(ball), "--format", "json", "--no-cache", "--dask", address)
            assert remote.returncode == local[0].returncode and remote.stdout == local[0].stdout, remote.stderr[-2000:]
        remote = run_binlens("scan", str(d), "--format", "json", "--no-cache", *budgets, "--dask", address)
        assert remote.returncode == local[1].returncode and remote.stdout == local[1].stdout, remote.stderr[-2000:]
        with Client(address, timeout=30) as c:
            limits = c.run(resource.getrlimit, resource.RLIMIT_AS)
    assert len(limits) == 2 and {tuple(v) for v in limits.values()} == {resource.getrlimit(resource.RLIMIT_AS)}, limits


def test_the_workers_keep_their_results_in_the_cache(binaries_built, tmp_path, shared_cluster):
    """Each chunk's rows are written by the worker that made them (a worker may be gone before its next chunk):
    a second scan through the cluster reuses every artifact's facts and prints the same."""
    address, _ = shared_cluster
    d = _folder(binaries_built, tmp_path, 5)
    cache = tmp_path / "cache"
    first = run_binlens("scan", str(d), "--format", "json", "--cache-dir", str(cache), "--dask", address)
    import sqlite3

    rows = sqlite3.connect(cache / "results.sqlite").execute("SELECT count(*) FROM results").fetchone()[0]
    assert rows == 10, first.stderr[-2000:]  # facts and findings of each of the five
    second = run_binlens("scan", str(d), "--format", "json", "--cache-dir", str(cache), "--dask", "local:2")
    assert second.stdout == first.stdout == run_binlens("scan", str(d), "--format", "json", "--no-cache").stdout


def test_a_named_deb_on_a_local_cluster_forks_its_workers(fixtures_built, tmp_path):
    """`scan pkg.deb --dask local:2`: the package's early decompression thread is stopped before the local
    cluster starts, so its workers are forked from a process running one thread (with the thread alive they
    were spawned: a new interpreter each, strace saw them exec'd); the report is the local scan's."""
    deb = str(fixtures_built["coreutils.deb"])
    log = tmp_path / "strace.log"
    env = dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1")
    r = subprocess.run(["strace", "-f", "-qq", "-e", "trace=execve", "-o", str(log), sys.executable, "-m", "analyzer",
                        "scan", deb, "--dask", "local:2", "--format", "json", "--no-cache"],
                       capture_output=True, text=True, env=env)
    pythons = [line for line in log.read_text().splitlines() if "execve(" in line and "= -1" not in line
               and "python" in line.split("execve(", 1)[1].split(",", 1)[0]]
    assert len(pythons) == 1, pythons  # binlens itself, nothing more
    assert r.stdout == run_binlens("scan", deb, "--format", "json", "--no-cache").stdout


def test_a_cluster_without_workers_is_an_error_not_a_hang(binaries_built, tmp_path):
    """A scheduler no worker has joined: the scan waits BINLENS_DASK_WAIT seconds (default 30) for one, then
    says so in one line (exit 2); `local:0` asks for no worker at all: refused before any start. Both waited for
    ever before."""
    from tests.conftest import DASK

    sched_file = tmp_path / "scheduler.json"
    sched = subprocess.Popen([str(DASK), "scheduler", "--scheduler-file", str(sched_file), "--host", "127.0.0.1",
                              "--port", "0", "--no-dashboard"], env=dict(os.environ, PYTHONPATH=str(ROOT)),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if sched_file.exists() and sched_file.stat().st_size:
                break
            time.sleep(0.1)
        address = json.loads(sched_file.read_text())["address"]
        r = run_binlens("scan", "--dask", address, str(binaries_built["c-rawsys"]),
                        env=dict(os.environ, BINLENS_DASK_WAIT="0.5"), prefix=["timeout", "120"])
        assert r.returncode == 2 and r.stderr == f"binlens: {address}: no Dask worker joined the scheduler in 0.5 s\n"
    finally:
        sched.kill()
        sched.wait()
    r = run_binlens("scan", "--dask", "local:0", str(binaries_built["c-rawsys"]), prefix=["timeout", "120"])
    assert r.returncode == 2 and r.stderr == "binlens: local:0: local[:N] takes a number of workers, 1 or more\n"


HALF_IMPORTED = """
import importlib.machinery, sys, threading
from analyzer import pipeline, scale

started, go = threading.Event(), threading.Event()


class Hold:  # analyzer.cache's import, stopped after the module is in sys.modules and before its code runs
    def find_spec(self, name, path, target=None):
        if name != "analyzer.cache":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        run = spec.loader.exec_module

        def held(module):
            started.set()
            go.wait()
            run(module)

        spec.loader.exec_module = held
        return spec


sys.meta_path.insert(0, Hold())
other = threading.Thread(target=lambda: __import__("analyzer.cache"), daemon=True)
other.start()
started.wait()


def show(step):
    try:
        print(step())
    except Exception as e:
        print(repr(e))


show(lambda: pipeline._ready_row("a"))
show(lambda: scale._run_chunk([("a", True)], work=lambda t: t[0], env={"BINLENS_UNPACK_DIR": "/one"}))
go.set()
other.join()
show(lambda: scale._run_chunk([("b", True)], work=lambda t: t[0], env={"BINLENS_UNPACK_DIR": "/two"}))
sys.modules["analyzer.cache"].flush = lambda: 1 / 0  # (a chunk's end that raises, whatever the cause)
show(lambda: scale._run_chunk([("c", True)], work=lambda t: t[0], env={"BINLENS_UNPACK_DIR": "/one"}))
sys.modules["analyzer.cache"].flush = lambda: None
show(lambda: scale._run_chunk([("d", True)], work=lambda t: t[0], env={"BINLENS_UNPACK_DIR": "/two"}))
"""


def test_a_module_another_thread_is_importing(tmp_path):
    """A Dask worker of two threads, on its first files: one thread imports analyzer.cache while the other
    ends a chunk, which asks whether the cache is in use (its rows to write, a container's member rows). The
    half-imported module is not used (before: AttributeError, "partially initialized module 'analyzer.cache'
    has no attribute 'READY'", the chunk failed and Dask ran it again), and a chunk's end always counts it out
    (before: the error skipped that, so the next scan's chunks on that worker waited for ever: the scan hung
    one time in about twenty on a new cluster; the chunk's end also counts it out when writing the cache
    raises). In a fresh interpreter, so that the import is a first one."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-c", HALF_IMPORTED], capture_output=True, text=True, env=env, timeout=30,
                       cwd=tmp_path)
    shown = "None\n['a']\n['b']\nZeroDivisionError('division by zero')\n['d']\n"
    assert (r.returncode, r.stdout) == (0, shown), r.stderr[-2000:]


def test_a_file_spinning_in_native_code_on_workers_of_several_threads(binaries_built, tmp_path, monkeypatch):
    """As above, on workers of two threads (`dask worker --nthreads 2`), where a CPU-time limit cannot serve (the
    process's CPU time is its threads' together): faulthandler's timer, whose C thread needs no GIL, ends the
    worker when a thread's file is its budget and as much again (at least 2 s) past its start, and the file is
    its error, every other file as in a local scan (before: the scan hung until `timeout`)."""
    from tests.conftest import _dask_cluster

    d = _folder(binaries_built, tmp_path, 12)
    spins = str(sorted(d.iterdir())[5])
    local = run_binlens("scan", "--format", "json", "--no-cache", str(d))
    monkeypatch.setenv("BINLENS_FAULT_SPIN", spins)  # (the workers' own environment: they analyse it)
    monkeypatch.setenv("DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES", "0")
    with _dask_cluster(tmp_path, threads=2) as (address, _):
        env = {k: v for k, v in os.environ.items() if k != "BINLENS_FAULT_SPIN"}
        proc = run_binlens("scan", "--time-budget", "1", "--format", "json", "--no-cache", "--dask", address, str(d),
                           prefix=["timeout", "200"], env=env)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert_died_alone(local.stdout, proc.stdout, spins)
