"""Shared test helpers: the fixture set, the system sample, binlens as a subprocess."""

from __future__ import annotations

import atexit
import functools
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "fixtures"))

import zygote  # noqa: E402  (tests/zygote.py: where the run_binlens processes are kept)

# The suite imports the package in hundreds of processes (every `python -m analyzer` subprocess, the Dask workers):
# its bytecode is written once, here, before any starts. Where PYTHONDONTWRITEBYTECODE is set (this project's
# machines set it) nothing else writes it, and each process compiled the package again (80 ms of its 150). The
# test modules' assertion rewriting is kept too (pytest writes it only where bytecode may be written: 3 s a worker).
sys.dont_write_bytecode = False


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # (the controller: before the workers start)
        import compileall

        for package in ("analyzer", "rules"):
            compileall.compile_dir(str(ROOT / package), quiet=1)
        _temporary_files_in_memory(config)


RAM_TMP, RAM_ROOM = "/dev/shm", 8 << 30
RAM_PREFIX = "binlens-tests-"


def _temporary_files_in_memory(config: pytest.Config) -> None:
    """The tests' temporary directories (pytest's basetemp, handed to each worker by xdist) and the temporary
    files of every process they start (TMPDIR: binlens' unpack directories, go builds) on a RAM file system,
    when there is one with RAM_ROOM free and neither --basetemp nor BINLENS_TEST_TMP=disk was given: the suite
    writes gigabytes of small files, and on this project's machines the disk's write-back stalled it (warm runs:
    5:08 on disk; 4:26 and 4:45 in memory, the same hour). A passed test's directory is removed when it ends
    (pyproject's tmp_path_retention_policy); the whole is removed after a run that passed, kept after one that
    failed, and what a run that died left behind is removed by the next."""
    import shutil

    if config.option.basetemp or os.environ.get("BINLENS_TEST_TMP") == "disk":
        return
    try:
        st = os.statvfs(RAM_TMP)
        for old in os.listdir(RAM_TMP):  # (left by a run that died: its process is gone)
            pid = old.removeprefix(RAM_PREFIX).partition("-")[0]
            if old.startswith(RAM_PREFIX) and pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
                shutil.rmtree(os.path.join(RAM_TMP, old), ignore_errors=True)
    except OSError:
        return
    if st.f_bavail * st.f_frsize < RAM_ROOM or not os.access(RAM_TMP, os.W_OK):
        return
    root = Path(tempfile.mkdtemp(prefix=f"{RAM_PREFIX}{os.getpid()}-", dir=RAM_TMP))
    (root / "tmp").mkdir()
    config.option.basetemp = str(root / "base")
    os.environ["TMPDIR"] = str(root / "tmp")
    tempfile.tempdir = None  # (gettempdir reads TMPDIR again)
    config.stash[_RAM_ROOT] = root


_RAM_ROOT = pytest.StashKey[Path]()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    import shutil

    root = session.config.stash.get(_RAM_ROOT, None)
    if root is not None and exitstatus == 0:
        shutil.rmtree(root, ignore_errors=True)
    if _OWN_CACHE and not hasattr(session.config, "workerinput"):
        shutil.rmtree(os.environ["BINLENS_TEST_CACHE"], ignore_errors=True)


@functools.cache
def _system_elves() -> tuple[str, ...]:
    """Every ELF file under /usr/bin and /usr/lib, sorted: walked once per test session."""
    from analyzer.load import sniff_file
    from analyzer.load.sources import walk

    return tuple(p for root in ("/usr/bin", "/usr/lib") for p in walk(root) if sniff_file(p) == "ELF")


def system_elf_sample(limit: int = 300) -> list[str]:
    """A deterministic sample of ELF files under /usr/bin and /usr/lib: every k-th, sorted."""
    files = _system_elves()
    step = max(1, len(files) // limit)
    return list(files[::step][:limit])


# binlens keeps its result cache (and go.mod cache) under XDG_CACHE_HOME: the suite's own, fresh each session,
# so no test depends on what an earlier run left there
# (made by the process that starts the session, xdist's workers inheriting it; removed when the session ends:
# each run left one behind, 1,277 of them, 1.7 GB, on this project's machine)
_OWN_CACHE = "BINLENS_TEST_CACHE" not in os.environ
os.environ.setdefault("BINLENS_TEST_CACHE", tempfile.mkdtemp(prefix="binlens-test-cache-"))
os.environ["XDG_CACHE_HOME"] = os.environ["BINLENS_TEST_CACHE"]


def unpack_mutants(tmp: Path, mutants: Iterable[bytes], name: str = "mutant") -> dict[str, int]:
    """Each mutant container unpacked (in process, within 64 MiB): its members, or an UnpackError of one line —
    never another exception — in under 10 s each (a hang guard, not a speed measure). How many gave members and
    how many an error; both must happen for the mutants to have tested anything."""
    import shutil
    import time

    from analyzer.load.archives import Limits, Unpacker, UnpackError

    outcomes = {"members": 0, "error": 0}
    for i, mutant in enumerate(mutants):
        f, root = tmp / name, tmp / "mutant-unpacked"  # (a name: what some containers are known by)
        f.write_bytes(mutant)
        root.mkdir()
        started = time.monotonic()
        try:
            Unpacker(str(root), Limits(total_bytes=64 << 20)).expand(str(f))
            outcomes["members"] += 1
        except UnpackError as e:
            assert str(e) and "\n" not in str(e), repr(e)
            outcomes["error"] += 1
        assert time.monotonic() - started < 10, f"mutant {i}"
        shutil.rmtree(root)
    assert outcomes["members"] and outcomes["error"], outcomes
    return outcomes


def made_once(name: str, make: Callable[[Path], None]) -> Path:
    """A large input that `make(path)` writes (a compression bomb, 100,000 members; a file or a directory), kept in
    the fixture cache under the name and the sha256 of make's own source: made again when that code changes, else
    read back. Two workers making it at once: the first one's stays."""
    import hashlib
    import inspect

    import build

    key = hashlib.sha256(inspect.getsource(make).encode()).hexdigest()[:20]
    path = build.CACHE / "inputs" / f"{key}-{name}"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        make(tmp)
        try:
            os.replace(tmp, path)
        except OSError:  # (a directory another worker put there first)
            if not path.exists():
                raise
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    return path


def starts_with(path: Path, magic: bytes) -> bool:
    """Whether the file begins with those bytes (read: those bytes alone, not the file)."""
    with open(path, "rb") as f:
        return f.read(len(magic)) == magic


def assert_died_alone(clean: str, killed: str, victim: str) -> None:
    """Two JSON reports of one scan, clean and with the worker analysing `victim` killed: the same artifacts in
    the same order, the victim's entry the error of a worker that died (ART001), every other entry unchanged."""
    before, after = json.loads(clean)["artifacts"], json.loads(killed)["artifacts"]
    assert [a["path"] for a in before] == [a["path"] for a in after] and victim in [a["path"] for a in after]
    for a, b in zip(before, after, strict=True):
        if a["path"] == victim:
            assert b["error"].startswith("the process analysing it died")
            assert [f["rule"] for f in b["findings"]] == ["ART001"]
        else:
            assert a == b


def run_binlens(*args: str | bytes, check: bool = False, prefix: list[str] | None = None,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """binlens as a process of its own (`python -m analyzer`), output captured; `prefix` wraps the command;
    `env` replaces the environment (PYTHONPATH and NO_COLOR are added). Forked from a process that has
    imported binlens (tests/zygote.py) unless a prefix, start-up settings of another interpreter (PYTHON*,
    the locale) or BINLENS_TEST_FRESH=1 ask for a new interpreter."""
    env = dict(env if env is not None else os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1")
    command = [*(prefix or []), sys.executable, "-m", "analyzer", *args]
    if prefix is None and _ZYGOTES.usable(env) and (done := _ZYGOTES.run(command, args, env, check)) is not None:
        return done
    return subprocess.run(command, capture_output=True, text=True, env=env, check=check, timeout=600)


class _Zygotes:
    """Two tests/zygote.py processes of this test process, with different hash seeds, taking turns: two runs
    of one test compare a report made under one seed with one made under another, as new interpreters did."""

    STARTUP = ("PYTHON", "LC_", "LANG")  # what an interpreter reads as it starts, which a fork cannot change

    def __init__(self) -> None:
        self.names: list[str] = []
        self.startup: dict[str, str] = {}
        self.turn = 0
        self.pid = 0
        self.started: list[subprocess.Popen[bytes]] = []
        import threading

        self.lock = threading.Lock()

    def _settings(self, env: dict[str, str]) -> dict[str, str]:
        return {k: v for k, v in env.items() if k.startswith(self.STARTUP)}

    def usable(self, env: dict[str, str]) -> bool:
        if os.environ.get("BINLENS_TEST_FRESH") == "1":
            return False
        with self.lock:
            if self.pid != os.getpid():
                self._start()
        return bool(self.names) and self._settings(env) == self.startup

    def _start(self) -> None:
        import secrets

        self.pid, self.names = os.getpid(), []
        env = dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1")
        self.startup = self._settings(env)
        for _ in range(2):
            name = f"binlens-zygote-{os.getpid()}-{secrets.token_hex(8)}"
            seed = str(secrets.randbelow(1 << 32))
            proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "zygote.py"), name],
                                    env={**env, "PYTHONHASHSEED": seed} if "PYTHONHASHSEED" not in env else env,
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)  # fmt: skip
            assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
            proc.stdout.close()
            self.names.append(name)
            if not self.started:
                atexit.register(self.stop)
            self.started.append(proc)

    def run(self, command: list, args: tuple, env: dict[str, str], check: bool
            ) -> subprocess.CompletedProcess[str] | None:  # fmt: skip
        """The run, forked; None when the server is gone (started again for the next run)."""
        import locale
        import pickle
        import signal
        import socket
        import struct

        name = self.names[self.turn % len(self.names)]
        self.turn += 1
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn, open(os.devnull, "rb") as stdin, \
                tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:  # fmt: skip
            try:
                conn.connect("\0" + name)
            except OSError:
                self.pid = 0
                return None
            socket.send_fds(conn, [pickle.dumps((list(args), env, os.getcwd()))],
                            [stdin.fileno(), out.fileno(), err.fileno()])
            conn.settimeout(600)

            def word() -> int | None:
                got = b""
                while len(got) < 8:
                    more = conn.recv(8 - len(got))
                    if not more:
                        return None
                    got += more
                return struct.unpack("q", got)[0]

            pid = None
            try:
                pid = word()
                code = word()
            except TimeoutError:
                if pid is not None:
                    os.kill(pid, signal.SIGKILL)
                raise subprocess.TimeoutExpired(command, 600) from None
            if code is None:  # (killed: no status was written)
                code = -signal.SIGKILL
            texts = []
            for f in (out, err):
                f.seek(0)
                data = f.read().decode(locale.getpreferredencoding(False))
                texts.append(data.replace("\r\n", "\n").replace("\r", "\n"))
        done = subprocess.CompletedProcess(command, code, texts[0], texts[1])
        if check:
            done.check_returncode()
        return done

    def stop(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


# one per test process, however this module is imported (as `conftest`, and by some tests as `tests.conftest`)
_ZYGOTES: _Zygotes = getattr(zygote, "clients", None) or _Zygotes()
zygote.clients = _ZYGOTES  # type: ignore[attr-defined]


def bad_input_is_one_line(f: Path, problem: str, walk: Path) -> None:
    """`f` named on the command line: exit 2 and one line, `binlens: F: PROBLEM...`; found in the directory
    `walk` (where it is copied): its entry's error, and the gate fails (exit 1)."""
    import json
    import shutil

    r = run_binlens("scan", "--no-cache", str(f))
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith(f"binlens: {f}: {problem}"), r.stderr
    walk.mkdir()
    shutil.copy(f, walk / f.name)
    r = run_binlens("scan", "--no-cache", "--format", "json", str(walk))
    assert r.returncode == 1, r.stderr
    (entry,) = json.loads(r.stdout)["artifacts"]
    assert entry["error"].startswith(problem), entry


def capped_scan(target: str | Path, *flags: str) -> subprocess.CompletedProcess[str]:
    """`binlens scan TARGET --format json --no-cache FLAGS` under 1 GiB of address space (far less than a runaway
    allocation needs) and a 120 s limit: a hostile input must stay within both."""
    import resource

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    return subprocess.run([sys.executable, "-m", "analyzer", "scan", str(target), "--format", "json", "--no-cache",
                           *flags], capture_output=True, text=True, timeout=120, preexec_fn=cap,
                          env=dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1"))  # fmt: skip


@pytest.fixture(scope="session")
def fixtures_built() -> dict[str, Path]:
    """Every fixture binary, built (or taken from the cache) by fixtures/build.py."""
    import build  # fixtures/build.py

    return build.build_all()


@pytest.fixture(scope="session")
def binaries_built(fixtures_built: dict[str, Path]) -> dict[str, Path]:
    """Every fixture that is one binary file: not a downloaded wheel or package, not a sysroot directory."""
    import build

    return {n: p for n, p in fixtures_built.items()
            if p.is_file() and not {"wheel", "archive", "distro"} & build.BY_NAME[n].tags}


DASK = Path(sys.executable).parent / "dask"


@contextmanager
def _dask_cluster(where: Path, threads: int = 1) -> Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:
    """A scheduler and two workers of `threads` threads, killed at the end; yields (address, worker processes)."""
    sched_file = where / "scheduler.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    procs = [subprocess.Popen([str(DASK), "scheduler", "--scheduler-file", str(sched_file), "--host", "127.0.0.1",
                               "--port", "0", "--no-dashboard"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)]
    try:
        for _ in range(100):
            if sched_file.exists() and sched_file.stat().st_size:
                break
            time.sleep(0.1)
        workers = [subprocess.Popen([str(DASK), "worker", "--scheduler-file", str(sched_file), "--nworkers", "1",
                                     "--nthreads", str(threads), "--no-dashboard", "--host", "127.0.0.1"], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(2)]
        procs += workers
        address = json.loads(sched_file.read_text())["address"]
        from distributed import Client

        with Client(address, timeout=30) as c:
            c.wait_for_workers(2, timeout=60)
        yield address, workers
    finally:
        for p in procs:
            p.kill()
            p.wait()


@pytest.fixture()
def cluster(tmp_path: Path) -> Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:
    """A scheduler and two single-threaded workers of the test's own (it may kill them)."""
    with _dask_cluster(tmp_path) as started:
        yield started


@pytest.fixture(scope="module")
def shared_cluster(tmp_path_factory: pytest.TempPathFactory
                   ) -> Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:  # fmt: skip
    """One scheduler and two workers for the tests of a module that only scan through them (each names its own
    inputs and cache directory): started once, not once per test."""
    with _dask_cluster(tmp_path_factory.mktemp("dask")) as started:
        yield started
