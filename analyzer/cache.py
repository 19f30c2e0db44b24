"""The result cache: an artifact's facts kept by its content, so that a re-audit of an unchanged release
reads each file once (for its sha256) and reuses what was computed.

SQLite under the user's cache directory (`$XDG_CACHE_HOME/binlens/results.sqlite`, `--cache-dir`,
`--no-cache`), in WAL mode with a busy timeout, so concurrent runs and the worker processes of one run share it
without corrupting it (SQLite's own locking). The key is the content's sha256, the artifact's name (some facts
depend on it: size budgets by path), binlens' code (its version and the size and mtime of its own files: a
changed checkout is another binlens), and everything else that changes facts: the providers computed, the
policy's settings, budgets and size baseline, and the loader's options. Findings are not kept: the rules run
each time (suppressions and baselines may have changed)."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import sqlite3
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

ENV = "BINLENS_CACHE_DIR"  # set by the command line for the worker processes ("" disables)
# providers whose facts depend on files other than the artifact (the libraries a loader would map): a request
# computing one keeps nothing in the cache, whose key is the artifact's content (syscalls keeps each library's
# own model instead, keyed by that library's content: analyzer/facts/syscalls/libraries.py)
READS_OTHER_FILES = frozenset({"deps", "syscalls"})
# the same for one artifact: a provider whose facts of it looked at other files (compat, for libraries bundled
# beside it) says so with read_other_files(); analyze_file then keeps nothing of it (took_other_files)
_OTHER_FILES = [False]


def read_other_files() -> None:
    """The facts being computed for the current artifact depend on files besides it: do not keep them."""
    _OTHER_FILES[0] = True


def took_other_files() -> bool:
    """Whether the artifact just analysed read other files (read_other_files); cleared for the next one."""
    took, _OTHER_FILES[0] = _OTHER_FILES[0], False
    return took

# findings rows of the members of unchanged containers, read in one batch by the process listing them: a task
# whose row is here is answered where it is listed, not sent to a worker (pipeline._parallel); emptied per scan
READY: dict[str, Any] = {}
MAX_VALUE = 64 << 20  # an entry larger than this is not kept


def default_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "binlens")


@cache
def code_fingerprint() -> str:
    """binlens' version and its own files (name, size, mtime): facts computed by other code never match."""
    from analyzer import __version__

    h = hashlib.sha256(__version__.encode())
    root = Path(__file__).parent
    for p in sorted(root.rglob("*")):
        if p.suffix in (".py", ".json", ".toml") and "__pycache__" not in p.parts:
            st = p.stat()
            h.update(f"{p.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return h.hexdigest()


def _per_object(table: dict[int, tuple[Any, str]], obj: Any, make: Callable[[Any], str]) -> str:
    """make(obj), once per object (a worker unpickles a request and its policy once per chunk of tasks). The
    object is kept with its value, so an id reused by another object after the first was freed is never taken
    for it."""
    known = table.get(id(obj))
    if known is not None and known[0] is obj:
        return known[1]
    if len(table) > 64:
        table.clear()
    value = make(obj)
    table[id(obj)] = (obj, value)
    return value


_FACTS_KEYS: dict[int, tuple[Any, str]] = {}


def facts_key(request: Any) -> str:
    """What, besides the content and the name, decides an artifact's facts."""
    return _per_object(_FACTS_KEYS, request, _facts_key)


def _facts_key(request: Any) -> str:
    ctx = request.context
    pol = ctx.policy
    material = [
        code_fingerprint(),
        [p.name for p in request.providers],
        None if pol is None else [sorted(pol.settings.items(), key=str), list(pol.budgets),
                                  sorted(pol.size_baseline.items())],
        None if ctx.loader is None else repr(ctx.loader[0]),
        [request.time_budget, request.memory_budget],  # a file over a budget is an error, not facts
    ]
    return hashlib.sha256(json.dumps(material, default=repr, sort_keys=True).encode()).hexdigest()


def _wal(conn: sqlite3.Connection) -> None:
    """The database in WAL mode (a setting kept in the file). Switching needs the file to itself, and SQLite
    answers "database is locked" at once, without waiting, while another process opens the new file: the
    workers of a first scan start together, and one of them lost the cache for the whole scan that way (half
    the rows missing). The mode is read first, and the switch tried again for a while."""
    import time

    for attempt in range(100):
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                return
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError:
            if attempt == 99:
                raise
            time.sleep(0.05)


class ResultCache:
    def __init__(self, directory: str) -> None:
        os.makedirs(directory, exist_ok=True)
        self.file = os.path.join(directory, "results.sqlite")
        self._conn: sqlite3.Connection | None = None
        self.db  # noqa: B018 - opened now: a directory where no database can be made is no cache
        self.pending: dict[str, bytes] = {}  # rows put and not yet written: written together, in one transaction
        self.pending_digests: dict[str, str] = {}

    @property
    def db(self) -> sqlite3.Connection:
        """This process's connection, opened on first use (and again after close(): before a fork)."""
        if self._conn is None:
            # check_same_thread off: a fork may come from another thread (Dask's cluster forks its workers from
            # its loop thread while this one waits), and the rows are written before it (_before_fork)
            conn = sqlite3.connect(self.file, timeout=60, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=60000")
            _wal(conn)
            # WAL with NORMAL: a commit is not synced to the disk, a checkpoint is; a crash loses the last rows of
            # a cache, never its consistency (one fsync per kept row made a first scan 60 % slower than --no-cache)
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, entries BLOB NOT NULL)")
            # local files' digests by what stat says of them (stat_key below)
            conn.execute("CREATE TABLE IF NOT EXISTS digests (key TEXT PRIMARY KEY, sha256 TEXT NOT NULL)")
            self._conn = conn
        return self._conn

    def close(self) -> None:
        """Its rows written and its connection closed (it opens again when used)."""
        self.flush()
        if self._conn is not None:
            try:
                self._conn.close()
            except sqlite3.Error:
                pass
            self._conn = None

    @staticmethod
    def key(sha256: str, name: str, fkey: str, layer: str | None = None) -> str:
        """An entry's key: its content, its name, the options that change facts and, for an image's member, the
        layer that added it (reported with the facts: the same file at the same path may come from another
        layer of a rebuilt image)."""
        where = name if layer is None else f"{name}\0{layer}"
        return hashlib.sha256(f"{sha256}\0{where}\0{fkey}".encode("utf-8", "surrogateescape")).hexdigest()

    def get(self, key: str) -> list[dict[str, Any]] | None:
        # pickled: facts keep their exact types (tuples, integer keys) as the providers made them; the file is
        # the user's own, in their cache directory
        try:
            blob = self.pending.get(key)
            if blob is None:
                row = self.db.execute("SELECT entries FROM results WHERE key = ?", (key,)).fetchone()
                blob = row[0] if row else None
            value = pickle.loads(blob) if blob is not None else None
            return value if isinstance(value, list) else None
        except Exception:  # noqa: BLE001 - a damaged or busy cache is a miss, never an error
            return None

    def get_many(self, keys: list[str]) -> dict[str, Any]:
        """key → value of the keys that have a row (read in batches; a damaged row is left out)."""
        out: dict[str, Any] = {}
        try:
            for i in range(0, len(keys), 500):
                batch = keys[i : i + 500]
                marks = ",".join("?" * len(batch))
                for k, blob in self.db.execute(f"SELECT key, entries FROM results WHERE key IN ({marks})", batch):
                    try:
                        out[k] = pickle.loads(blob)
                    except Exception:  # noqa: BLE001 - a damaged row is a miss
                        continue
        except sqlite3.Error:
            return {}
        for k in keys:
            if k in self.pending:
                out[k] = pickle.loads(self.pending[k])
        return out

    def missing(self, keys: list[str]) -> set[str]:
        """The keys without a row (read in batches, nothing unpickled)."""
        have: set[str] = set()
        try:
            for i in range(0, len(keys), 500):
                batch = keys[i : i + 500]
                marks = ",".join("?" * len(batch))
                have.update(k for (k,) in self.db.execute(f"SELECT key FROM results WHERE key IN ({marks})", batch))
        except sqlite3.Error:
            return set(keys)
        return set(keys) - have - set(self.pending)

    def put(self, key: str, entries: list[dict[str, Any]]) -> None:
        """Keep `entries` under `key`: written with the next rows, by 64 (a transaction per row made a first
        scan slower than --no-cache), or at flush()."""
        try:
            blob = pickle.dumps(entries, protocol=5)
        except (pickle.PicklingError, TypeError, ValueError):
            return
        if len(blob) <= MAX_VALUE:
            self.pending[key] = blob
            if len(self.pending) >= 64:
                self.flush()

    def digest(self, key: str) -> str | None:
        """The sha256 remembered under a stat_key (None: not remembered, or a damaged or busy cache)."""
        known = self.pending_digests.get(key)
        if known is not None:
            return known
        try:
            row = self.db.execute("SELECT sha256 FROM digests WHERE key = ?", (key,)).fetchone()
        except sqlite3.Error:
            return None
        return row[0] if row and isinstance(row[0], str) else None

    def put_digest(self, key: str, sha256: str) -> None:
        self.pending_digests[key] = sha256
        if len(self.pending_digests) >= 256:
            self.flush()

    def flush(self) -> None:
        if not self.pending and not self.pending_digests:
            return
        rows, self.pending = list(self.pending.items()), {}
        digests, self.pending_digests = list(self.pending_digests.items()), {}
        try:
            with self.db:  # one transaction
                self.db.execute("BEGIN")
                self.db.executemany("INSERT OR REPLACE INTO results (key, entries) VALUES (?, ?)", rows)
                self.db.executemany("INSERT OR REPLACE INTO digests (key, sha256) VALUES (?, ?)", digests)
        except sqlite3.Error:
            pass


RACY_NS = 2_000_000_000  # a file changed this recently may change again within the same clock tick


def stat_key(path: str) -> str | None:
    """The key under which a local file's digest is remembered: its name and what stat says of it (device, inode,
    size, modification and change times: writing a file, or setting its times back, moves its change time).
    None for a file changed in the last two seconds — another change in the same tick of the file system's
    clock could leave every time as it is (git calls such index entries racy) — or one that cannot be read."""
    import time

    try:
        st = os.stat(path)
    except OSError:
        return None
    if max(st.st_mtime_ns, st.st_ctime_ns) > time.time_ns() - RACY_NS:
        return None
    return hashlib.sha256(f"stat\0{path}\0{st.st_dev}\0{st.st_ino}\0{st.st_size}\0{st.st_mtime_ns}\0"
                          f"{st.st_ctime_ns}".encode("utf-8", "surrogateescape")).hexdigest()


def file_digest(store: ResultCache, path: str, read: Callable[[str], tuple[str, Any]]) -> tuple[str, Any]:
    """(sha256, what `read` gave besides) of a local file: the digest remembered under its stat_key when it is
    unchanged since (nothing read: None besides), else `read(path)`'s, remembered for the next time."""
    skey = stat_key(path)
    known = store.digest(skey) if skey is not None else None
    if known is not None:
        return known, None
    digest, extra = read(path)
    if skey is not None:
        store.put_digest(skey, digest)
    return digest, extra


def keep(kind: str, sha256: str, extra: str, make: Any, worth: Any = lambda value: True) -> Any:
    """A value computed from one file's content alone (`make()`), kept in the cache under that content's
    digest, `kind`, `extra` and binlens' code; made when missing (or when there is no cache), and kept when
    `worth(value)` says so."""
    store = current()
    if store is None:
        return make()
    key = hashlib.sha256(f"{kind}\0{sha256}\0{extra}\0{code_fingerprint()}".encode()).hexdigest()
    hit = store.get(key)
    if hit is not None and len(hit) == 1:
        return hit[0]
    value = make()
    if worth(value):
        store.put(key, [value])
        store.flush()
    return value


_OPEN: dict[str, ResultCache | None] = {}


def _before_fork() -> None:
    """Before this process forks (the local pool's workers, `--dask local`'s, the syscalls command's library
    models): its rows written and its connections closed, to be opened again on use, here and in the child. An
    SQLite connection open across a fork breaks the locking of every connection the child opens to that file —
    SQLite's per-process lock bookkeeping is copied with it, claiming locks the child does not hold — and two
    processes then write over each other's WAL frames: a scan's workers lost half their rows in one run of three
    that way (test)."""
    for store in _OPEN.values():
        if store is not None:
            store.close()


os.register_at_fork(before=_before_fork)


def flush() -> None:
    """Write the rows this process put and has not written yet (at the end of a chunk of tasks, of a run)."""
    for store in _OPEN.values():
        if store is not None:
            store.flush()


def current() -> ResultCache | None:
    """This process's cache, as the environment names it (None: no cache, and none under fault injection)."""
    directory = os.environ.get(ENV, "")  # one lookup a call: this runs a few times for every file
    if not directory:
        return None
    if directory not in _OPEN:
        if any(os.environ.get(f"BINLENS_FAULT_{k}") for k in ("STALL", "KILL", "SPIN")):
            _OPEN[directory] = None  # set for the whole process by the tests that inject faults
        else:
            try:
                _OPEN[directory] = ResultCache(directory)
            except (OSError, sqlite3.Error):
                _OPEN[directory] = None  # an unwritable cache directory: work without one
    return _OPEN[directory]


_POLICY_KEYS: dict[int, tuple[Any, str]] = {}


def _policy_key(pol: Any) -> str:
    material = None if pol is None else [
        [(r.id, r.expression, r.message, r.severity, r.formats, r.name, r.fix) for r in pol.rules],
        sorted(pol.severity.items()), sorted(pol.settings.items(), key=str),
        [(s.rule, s.path, s.reason) for s in pol.suppressions], sorted(pol.baseline), pol.base,
    ]
    return hashlib.sha256(json.dumps(material, default=repr).encode()).hexdigest()


def findings_key(key: str, request: Any) -> str:
    """The key of an entry's findings (and its JSON text): its facts' key and everything the rules read
    besides — the rules themselves, severities, settings, suppressions, the baseline. Not the report's format:
    a JSON run's row (findings and text) serves an SBOM's or a text report's run, and one of those runs' rows
    (no text) a JSON run's findings, which writes the text in."""
    pk = _per_object(_POLICY_KEYS, request.context.policy, _policy_key)
    return hashlib.sha256(f"{key}\0{pk}".encode()).hexdigest()
