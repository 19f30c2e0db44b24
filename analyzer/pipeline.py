"""The pipeline: paths -> subjects -> facts -> findings -> report entries.

Each entry is a plain dict in the shape of the JSON report's `artifacts[]`
items; `--format json` prints exactly these. Which facts are computed is
decided once per run (`plan`), from the fact registry, `--facts`, and the
facts the enabled rules read.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import os
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, NamedTuple

from analyzer import budget, load
from analyzer import facts as registry
from analyzer.errors import AnalyzerError, path_text
from analyzer.load.elf import Buffer
from analyzer.load.sources import unpacking

if TYPE_CHECKING:
    from concurrent.futures import Future, ProcessPoolExecutor

    from analyzer.load.archives import Limits
    from analyzer.policy.rules import Policy

def plan(policy: Policy | None, asked: Sequence[str] = (), extra: Sequence[str] = ()) -> tuple[registry.Provider, ...]:
    """The providers a run computes: `asked` (`--facts`; the defaults when empty), `extra` (what the
    command itself needs), and the default facts the policy's rules read. A rule over an opt-in fact
    (the DEP rules over `deps`) runs when that fact is computed, never makes it computed."""
    defaults = set(registry.default_names())
    names = set(asked or defaults) | set(extra)
    if policy is not None:
        keys = policy.fact_keys
        names |= defaults if keys is None else registry.providers_of(keys) & defaults
        names |= {"compat", "budget"}  # policy inputs: the targets and the size budgets
    return registry.resolve(names)


TIME_BUDGET = 600.0  # seconds per file, by default: far beyond any real binary (the largest take seconds)


def sha256_hex(data: Buffer) -> str:
    """The hex sha256 of bytes or a mapped file, hashed 64 MiB at a time: a time budget's signal is handled
    between the pieces (one call over a huge sparse file would run to its end first)."""
    h = hashlib.sha256()
    with memoryview(data) as view:
        for at in range(0, len(view), 1 << 26):
            h.update(view[at:at + (1 << 26)])
    return h.hexdigest()


@dataclass(frozen=True)
class Request:
    """What a run computes for each artifact; sent to the worker processes once per task."""

    providers: tuple[registry.Provider, ...] = field(default_factory=lambda: registry.resolve(registry.default_names()))
    context: registry.Context = field(default_factory=registry.Context)
    encode: bool = False  # JSON-encode each entry where it is made (in the worker)
    time_budget: float = TIME_BUDGET  # seconds per file (0: none); past it the file is that artifact's error
    memory_budget: int = 0  # bytes of address space per file beyond the process's own (0: none)
    platform: str = ""  # os/arch[/variant] chosen in multi-platform images (--platform)
    image: str = ""  # the image chosen in a file of several, by a name or tag (--image)
    dask: str = ""  # a Dask scheduler address or local[:N]: the tasks run there (--dask)
    digest: bool = True  # each entry's sha256 (False: None, for a view that shows none: `deps` text)
    limits: tuple[int | None, ...] = ()  # containers' limits (total, member, ratio, members, depth; None: default)

    @classmethod
    def for_policy(cls, policy: Policy, asked: Sequence[str] = (), encode: bool = False,
                   time_budget: float = 0, memory_budget: int = 0) -> Request:  # fmt: skip
        return cls(plan(policy, asked), registry.Context(policy=policy), encode, time_budget or TIME_BUDGET,
                   memory_budget)  # fmt: skip

    @property
    def computed(self) -> list[str]:
        """The providers' names, as the report's `facts_computed` lists them."""
        return [p.name for p in self.providers]


class Result(NamedTuple):
    """One entry after rules: the entry (or, when encoded in the worker, its JSON text) and its findings."""

    path: str
    entry: dict[str, Any] | None
    json_text: str | None
    findings: list[dict[str, Any]]
    cached: bool = False  # the facts came from the result cache
    format: str | None = None
    error: str | None = None
    # what a container a worker unpacked holds installed (_packages_found): its packages and their binaries'
    # owners, for this process's reports; a result carrying it and no entry is no artifact (scan() takes it)
    installed: Any = None

    @property
    def payload(self) -> dict[str, Any] | str:
        """What the reporters take: the entry, or its JSON text."""
        return self.json_text if self.json_text is not None else self.entry  # type: ignore[return-value]


def artifact_facts(art: load.Artifact, request: Request) -> dict[str, Any]:
    """The requested facts of one opened artifact."""
    with warnings.catch_warnings():
        # LIEF warns when a hostile file holds values its enums do not know; we read the numbers.
        warnings.simplefilter("ignore", RuntimeWarning)
        return registry.compute(art, art.format, request.providers, request.context)


def _entry(
    path: str, data: Buffer | None, fmt: str | None, facts: dict[str, Any] | None, error: str | None,
    digest: str | None = None, hashed: bool = True,
) -> dict[str, Any]:
    return {
        "path": path,
        "sha256": digest or (sha256_hex(data) if data is not None and hashed else None),
        "size": len(data) if data is not None else None,
        "format": fmt,
        "error": error,
        "facts": facts or {},
        "findings": [],
    }


def analyze_file(path: str, request: Request | None = None, lazy: bool = False,
                 digested: Digested | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """Report entries for one file (several for a fat Mach-O), without findings. With `lazy`, an entry from the
    result cache may hold its facts still pickled (bytes): finish() reads them only when its findings and JSON
    text are not cached too. `digested`: the file's digest when the caller took it already (_results).

    Raises AnalyzerError when the file cannot be opened as a binary at all.
    """
    request = request or Request()
    from analyzer import cache as result_cache

    store = result_cache.current()
    if store is not None and any(p.name in result_cache.READS_OTHER_FILES for p in request.providers):
        store = None  # facts that depend on other files (the libraries) are not the file's own: not kept
    key = digest = None
    data: Buffer | None = None  # the file's bytes, when read for its digest: opened once
    if store is not None:  # the content's digest first: an unchanged file's facts are reused
        digest, data, known = digested or _digest(path)
        key = store.key(digest, path, result_cache.facts_key(request), _layer(path))
        hit = store.get(key)
        if hit is not None:
            entries = _cached_entries(path, key, hit)
            return entries if lazy else [_facts_read(e) for e in entries]
        if known:
            raise AnalyzerError("its facts left the result cache during the scan: scan again", path)
    elif "!" in path and request.digest:
        from analyzer.load.archives import pending, written_digest

        listed = pending(path)
        if listed is None or listed[2] not in ("ar", "squashfs"):  # (a zip member is inflated here; a library's
            load._member(path)  # member is read where it lies, a squashfs member into memory: hashed as read)
        digest = written_digest(path)  # taken as the member was inflated or listed: not hashed again
    out = []
    with budget.time_budget(request.time_budget, path), budget.memory_budget(request.memory_budget, path):
        if os.environ.get(FAULT_STALL) == path:
            import time

            for _ in range(72000):  # as a parser caught in a loop would
                time.sleep(0.05)
        if os.environ.get(FAULT_SPIN) == path:  # as a native parser caught in a loop would: no Python runs
            hashlib.pbkdf2_hmac("sha256", b"", b"", (1 << 31) - 1)  # (minutes of one C call)
        for art in load.open_artifacts(path, data=data):
            try:
                facts = artifact_facts(art, request)
            except (AnalyzerError, budget.Overtime, MemoryError):
                raise
            except Exception as e:  # a parser surprise on hostile input: one line, not a traceback
                raise AnalyzerError(f"corrupt {art.format} file ({type(e).__name__}: {e})", art.path) from None
            # the whole file's digest, taken for the cache key, is this artifact's (not a fat file's slice's)
            same = digest is not None and art.path == path
            out.append(_entry(art.path, art.data, art.format, facts, None, digest if same else None, request.digest))
            bundle, carried = _bundled(art, request)
            if bundle is not None:
                facts["bundle"] = bundle  # (what it carries, listed after it)
                if facts.get("compat"):  # where it runs: where all it loads runs
                    from analyzer.policy.compat import with_carried

                    facts["compat"] = with_carried(facts["compat"], [e["facts"].get("compat") for e in carried
                                                                     if e["format"] == art.format])
            out.extend(carried)
            if _payload_here(art, path):
                out.extend(_unpacked_here(path, request))
    if result_cache.took_other_files():
        store = None  # (facts that depend on other files, libraries beside it, which may come and go: not kept)
    if (layer := _layer(path)) is not None:  # the image layer that added it: after `error`, before the facts
        out = [{**{k: e[k] for k in ("path", "sha256", "size", "format", "error")}, "layer": layer,
                "facts": e["facts"], "findings": e["findings"]} for e in out]
    if store is not None and key is not None:
        _cache_entries(store, key, path, out)
    return out


def _cached_entries(path: str, key: str, hit: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The entries of a file as the result cache keeps them (_cache_entries): as _entry made them, key order
    included, their facts still pickled."""
    return [{"path": path + e["slice"], **{k: e[k] for k in ("sha256", "size", "format", "error", "layer", "facts")
                                           if k in e},
             "findings": [], "_cached": True, "_ckey": f"{key}:{i}", "_slices": len(hit)}
            for i, e in enumerate(hit)]  # fmt: skip


def _cache_entries(store: Any, key: str, path: str, out: list[dict[str, Any]]) -> None:
    """Keep a file's entries in the result cache under `key`, the facts pickled on their own (a re-scan may never
    read them); each entry learns its key (finish keeps its findings beside it)."""
    import pickle

    store.put(key, [{**{k: (pickle.dumps(v, protocol=5) if k == "facts" else v) for k, v in e.items()
                        if k not in ("path", "findings")}, "slice": e["path"][len(path):]} for e in out])
    for i, made in enumerate(out):
        made["_ckey"], made["_slices"] = f"{key}:{i}", len(out)


def _bundled(art: load.Artifact, request: Request) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The entries of the binaries a PyInstaller one-file program carries (`app!libpython3.11.so.1.0`), after
    the program's own: they, not its bootloader, decide where it runs (analyzer/load/pyinstaller.py). A member
    that cannot be read is that member's error; an archive that cannot be read at all, the program's. With
    `deps` or `syscalls`, each is resolved as the bootloader has it loaded: extracted to one directory
    (`/tmp/_MEIxxxxxx` to the loader, as PyInstaller names it) that LD_LIBRARY_PATH names first. With them, the
    program's `bundle` fact: what kind, the Python version and library its cookie names, how many binaries."""
    if art.format == "MachO" and art.binary is None:
        return None, []  # (opened unparsed: its signature's place is not known; no caller asks that of a scan)
    from analyzer.load import pyinstaller

    try:
        bundle = pyinstaller.find(art.data, art.format, art.binary)
        if bundle is None:
            return None, []
        from analyzer.load.archives import Limits

        found = pyinstaller.members(art.data, bundle, load.sniff, container_limits(request.limits) or Limits())
        if {p.name for p in request.providers} & {"deps", "syscalls"}:  # (resolved as the bootloader loads them)
            carried = _bundled_extracted(art.path, found, request)
        else:
            carried = [e for m, got in found for e in _bundled_entry(f"{art.path}!{m.name}", got, None, request)]
        import re

        at = len(art.path) + 1  # (each carried binary once: a fat one's slices are `name[arm64]`, `name[x86_64]`)
        shown = {re.sub(r"\[[^\]/]*\]$", "", e["path"][at:]) for e in carried}
        return {"kind": "pyinstaller", "python": bundle.python_version, "python_library": bundle.python_lib,
                "binaries": len(shown)}, carried
    except pyinstaller.BundleError as e:
        raise AnalyzerError(str(e), art.path) from None


def _payload_here(art: load.Artifact, path: str) -> bool:
    """Whether `art` is an AppImage's runtime whose payload the process analysing it reads: a local file whose name
    does not say it is an AppImage (one that does, and one inside a container, are unpacked where they are found:
    the scan's main process). The main process walks a directory by names alone, so a renamed AppImage (`tool`,
    `nvim`) is known only here, by its first bytes; and kept here, with its runtime's entry in the result cache, a
    re-scan answers it without reading it."""
    if art.format != "ELF" or art.path != path or "!" in path or "://" in path or path.lower().endswith(".appimage"):
        return False
    from analyzer.load.archives import appimage_type

    return appimage_type(bytes(art.data[:16])) is not None


def _unpacked_here(path: str, request: Request) -> list[dict[str, Any]]:
    """The entries of what a container the scan's main process did not unpack holds (a renamed AppImage's
    payload, after its runtime's entries; a zipapp or an installer found under a name no container has), named
    as that process names members (`tool!usr/bin/app`): unpacked here, into a private directory, with the run's
    limits; a container that cannot be read is one entry, its error, under its name. Kept in the file's own
    result-cache row, so that an unchanged one is answered without reading it."""
    import tempfile

    from analyzer.load import archives
    from analyzer.load.sources import environ_set

    root = tempfile.mkdtemp(prefix="binlens-unpacked-here-")
    try:
        with environ_set(archives.UNPACK_ENV, root):
            unpacker = archives.Unpacker(root, container_limits(request.limits))
            try:
                try:
                    members = list(unpacker.iter_expand(path))
                finally:
                    unpacker.close_packs()
            except archives.UnpackError as e:
                return [_entry(path, None, "archive", None, str(e))]
            out = []
            for name in members:
                out += _payload_member(name, request)
            return out
    finally:
        archives.remove_tree(root)


def _payload_member(name: str, request: Request) -> list[dict[str, Any]]:
    """One member of a payload unpacked here: its entries (one per slice of a fat Mach-O), the error of a
    container in it that could not be unpacked, or its own problem; nothing for a file that is no binary."""
    from analyzer.load.archives import member_error

    problem = member_error(name)
    if problem is not None:
        return [_entry(name, None, "archive", None, problem)]
    kind = load.sniff_file(name)
    return [] if kind is None else _bundled_entry(name, None, None, request, kind)


MEIPASS = "/tmp/_MEIxxxxxx"  # where a PyInstaller bootloader extracts its archive, as the loader sees it


def _bundled_extracted(program: str, found: Iterator[tuple[Any, bytes | str]],
                       request: Request) -> list[dict[str, Any]]:
    """The bundled binaries written to a private directory, as the bootloader writes them before it loads
    libpython, then each resolved there: its own directory its $ORIGIN, the extraction directory first on the
    library path, the run's sysroot after it."""
    import dataclasses
    import shutil
    import tempfile

    from analyzer.facts.loader import Options

    opts, shared = request.context.loader if request.context.loader is not None else (Options(), None)
    if shared is None:
        from analyzer.facts.loader import Sysroot

        shared = Sysroot(opts.sysroot)
    tmp = tempfile.mkdtemp(prefix="binlens-meipass-")
    try:
        written: list[tuple[str, str | None, bytes | str]] = []
        for m, got in found:
            host = None
            if not isinstance(got, str):
                from analyzer.load.archives import clean_name

                rel = clean_name(m.name)
                if rel is not None:
                    host = os.path.join(tmp, rel)
                    try:
                        os.makedirs(os.path.dirname(host), exist_ok=True)
                        with open(host, "wb") as fh:
                            fh.write(got)
                    except OSError:  # (a hostile archive: a name below a file of the same name, twice over...)
                        host = None  # its facts without the loader's view of it
            written.append((m.name, host, got))
        view = shared.overlay(MEIPASS, tmp)
        view.workers = 1  # (no pool of library modellers forked for each of dozens of binaries: one by one here)
        out = []
        for name, host, got in written:
            shown = f"{program}!{name}"
            rel = os.path.relpath(host, tmp) if host else ""
            member_opts = dataclasses.replace(
                opts, ld_library_path=[MEIPASS, *opts.ld_library_path], program=shown,
                install_dir=os.path.dirname(f"{MEIPASS}/{rel}"))  # fmt: skip
            context = request.context._replace(loader=(member_opts, view))
            out += _bundled_entry(shown, got, host, dataclasses.replace(request, context=context))
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _bundled_entry(name: str, got: bytes | str | None, host: str | None, request: Request,
                   kind: str | None = None) -> list[dict[str, Any]]:
    """One bundled binary's entries (one per slice of a fat Mach-O): its facts (opened from `host`, the file it
    was written to, when there is one; from `name` itself when its bytes are not given, `kind` its sniffed kind),
    or its problem."""
    if isinstance(got, str):
        return [_entry(name, None, "archive", None, got)]
    opened = host or name
    try:
        out = []
        for inner in load.open_artifacts(opened, data=got):
            facts = artifact_facts(inner, request)
            out.append(_entry(name + inner.path[len(opened):], inner.data, inner.format, facts, None, None,
                              request.digest))
        return out
    except (budget.Overtime, MemoryError):
        raise
    except Exception as e:  # noqa: BLE001 - its one line (a parser surprise on hostile input: with its type)
        kind = kind or load.sniff(bytes((got or b"")[:8]))
        problem = e.problem if isinstance(e, AnalyzerError) else f"corrupt file ({type(e).__name__}: {e})"
        return [_entry(name, got, "MachO" if kind == "MachOFat" else kind, None, problem, None, request.digest)]


Digested = tuple[str, "Buffer | None", bool]


def _digest(path: str) -> Digested:
    """(the content's sha256, its bytes when read for it, whether the digest came from an unchanged container's
    member list instead)."""
    from analyzer import cache as result_cache
    from analyzer.load.archives import member_digest, pending, written_digest

    if "!" in path:
        written = written_digest(path)  # a library's member listed with its digest: not hashed again
        if written is not None:
            return written, load.read_file(path), False
        listed = pending(path)
        if listed is not None and listed[2] == "squashfs":  # decompressed into memory, its digest taken then
            data = load.read_file(path)
            return written_digest(path) or sha256_hex(data), data, False
        if load._member(path) == path:
            known = member_digest(path)
            if known is not None:  # a member of an unchanged container, not unpacked again
                return known[0], None, True
        else:
            written = written_digest(path)  # taken as the member was inflated: not hashed again
            if written is not None:
                return written, load.read_file(path), False
    store = result_cache.current()
    if store is not None and load.is_plain(path):  # unchanged since its digest was taken: not read at all
        digest, data = result_cache.file_digest(store, path, _read_and_hash)
        return digest, data, False
    return (*_read_and_hash(path), False)


def _read_and_hash(path: str) -> tuple[str, Buffer]:
    data = load.read_file(path)
    return sha256_hex(data), data


def _results(path: str, request: Request) -> list[Result]:
    """The file's results: from its findings row alone when the result cache has it and the run encodes
    entries (the facts row is not read), else through analyze_file (the digest taken once)."""
    with budget.time_budget(request.time_budget, path):  # (the digest too: a huge file's hashing is bounded)
        return _results_timed(path, request)


def _results_timed(path: str, request: Request) -> list[Result]:
    from analyzer import cache as result_cache

    store = result_cache.current()
    if store is None or not request.encode or any(p.name in result_cache.READS_OTHER_FILES
                                                  for p in request.providers):  # fmt: skip
        return [finish(e, request) for e in analyze_file(path, request, lazy=True)]
    digested = _digest(path)
    key = store.key(digested[0], path, result_cache.facts_key(request), _layer(path))
    row: Any = store.get(result_cache.findings_key(f"{key}:0", request))
    if row is not None and len(row) == 3 and row[1] is not None and row[2][2] == 1:
        return [_from_row(path, row)]
    return [finish(e, request) for e in analyze_file(path, request, lazy=True, digested=digested)]


def _layer(path: str) -> str | None:
    """The image layer that added this member (None: not an image's member)."""
    if "!" not in path:
        return None
    from analyzer.load.archives import member_layer

    return member_layer(path)


def _from_row(path: str, row: Any) -> Result:
    """A file's result from its findings row (the findings, the JSON text, its format and error)."""
    findings, text, (fmt, error, _) = row
    return Result(path_text(path), None, text, findings, True, fmt, error)


def _ready_row(path: str) -> Any:
    """The findings row of a container's member, read with its container's member list (None: it was not)."""
    cache = budget.loaded("analyzer.cache")
    return cache.READY.pop(path, None) if cache is not None and cache.READY else None


def _facts_read(entry: dict[str, Any]) -> dict[str, Any]:
    """The entry with its facts unpickled, if they came from the result cache still pickled."""
    if isinstance(entry.get("facts"), bytes):
        import pickle

        entry["facts"] = pickle.loads(entry["facts"])
    return entry


def _container_found(path: str) -> bool:
    """Whether a file found in a walk that is no binary is a container the walk did not know by its name: a zip
    or a makeself installer behind a `#!` line (a zipapp, a PEX file, an installer put on the PATH as `tool`)."""
    if "!" in path or "://" in path:
        return False
    from analyzer.load import archives

    if path.lower().endswith(archives.EXTENSIONS):
        return False  # (the main process unpacked it, or it is none)
    import zipfile

    fh = load.open_regular(path)  # (looked at as sniffing looks; its head, and a zip's end record)
    if fh is None:
        return False
    with fh:
        try:
            head = fh.read(264)
            if not head.startswith(b"#!"):
                return False
            if archives.makeself_head(head):
                return True
            return zipfile.is_zipfile(fh)
        except OSError:
            return False


def _found_container(path: str, request: Request) -> list[Result]:
    """A container found under another name (_container_found): its members' results, through the result cache
    as a file's are (kept under the container's digest: an unchanged one is not read again)."""
    from analyzer import cache as result_cache

    store = result_cache.current()
    if store is not None and any(p.name in result_cache.READS_OTHER_FILES for p in request.providers):
        store = None
    key = None
    with budget.time_budget(request.time_budget, path):
        if store is not None:
            digest, _, _ = _digest(path)
            key = store.key(digest, path, result_cache.facts_key(request), None)
            hit = store.get(key)
            kept = store.get(key + ":installed") if hit is not None else None  # (a miss without it: read again)
            if hit is not None and kept:
                return [finish(e, request) for e in _cached_entries(path, key, hit)] + _packages_found(path, kept[0])
        with budget.memory_budget(request.memory_budget, path):
            if os.environ.get(FAULT_STALL) == path:
                import time

                for _ in range(72000):  # as an unpacking caught in a loop would
                    time.sleep(0.05)
            out = _unpacked_here(path, request)
            held = _taken_installed(path)
        if result_cache.took_other_files():
            store = None
        if store is not None and key is not None:  # (none at all too: a re-scan reads it no more)
            _cache_entries(store, key, path, out)
            store.put(key + ":installed", [held])
        return [finish(e, request) for e in out] + _packages_found(path, held)


def _taken_installed(path: str) -> dict[str, Any]:
    """What the container at `path`, unpacked in this process by _unpacked_here, holds installed (the packages
    of it and of the containers in it, and the owners of their binaries), taken out of this process's tables:
    plain data, for the process that makes the reports (a worker's tables are not its) and the result cache."""
    from analyzer.load import archives

    found = {n: archives.INSTALLED.pop(n) for n in list(archives.INSTALLED)
             if n == path or n.startswith(path + archives.SEP)}  # fmt: skip
    owners = {m: list(o) for m, o in archives.OWNERS.items() if o[0] in found}
    for table in (archives.OWNERS, archives.CONTAINER_OWNERS):
        for m in [m for m, o in table.items() if o[0] in found]:
            del table[m]
    return {"installed": found, "owners": owners} if found else {}


def _packages_found(path: str, held: dict[str, Any]) -> list[Result]:
    """A result carrying what a container holds installed to the scan's main process (no artifact), or none."""
    return [Result(path_text(path), None, None, [], False, None, None, held)] if held else []


def _analyze_found(path: str, request: Request) -> list[Result]:
    """For files found in a directory: nothing for non-binaries; a failure becomes an entry with `error` set."""
    from analyzer.load.archives import member_error

    sniffed = "://" not in path  # (a URL is fetched first: its failure is this file's error)
    kind, head = load.sniff_head(path) if sniffed else (None, b"")
    # a container that could not be unpacked, or a member that broke a limit (a binary is never a container: a
    # file or member found as one has no unpacking error to look for)
    problem = member_error(path) if kind is None else None
    if problem is None and "://" in path:
        try:
            load._member(path)  # a URL listed under a prefix: fetched here, its failure this file's error
        except AnalyzerError as e:
            problem = e.problem
    if problem is not None:
        return [finish(_entry(path, None, "archive", None, problem), request)]
    if not sniffed:
        kind = load.sniff_file(path)
    if kind is None and not head and load.member_missing(path):
        return [finish(_entry(path, None, "archive", None, "member not found where its container was unpacked"),
                       request)]
    if kind is None:
        if not head.startswith(b"#!") or not _container_found(path):
            return []
        try:
            return _found_container(path, request)
        except AnalyzerError as e:  # (over the time or memory budget: that file's error, as a binary's)
            return [finish(_entry(path, None, "archive", None, e.problem), request)]
    try:
        found = _results(path, request)
    except AnalyzerError as e:
        return [finish(_entry(path, None, "MachO" if kind == "MachOFat" else kind, None, e.problem), request)]
    if kind == "ELF" and path.lower().endswith(".appimage") and load.is_plain(path):
        problem = member_error(path)  # an AppImage is a program and a container: its payload's unpacking error
        if problem is not None:
            found.append(finish(_entry(path, None, "archive", None, problem), request))
    return found


def finish(entry: dict[str, Any], request: Request) -> Result:
    """The entry's findings under the request's policy (in the worker), optionally JSON-encoded; both kept in
    the result cache (when there is one) under the entry's facts and the policy."""
    entry["path"] = path_text(entry["path"])  # a name that is not UTF-8 is shown, and given to the rules, as text
    ckey = entry.pop("_ckey", None)
    cached = bool(entry.pop("_cached", False))
    slices = entry.pop("_slices", 0)
    if ckey is not None:
        from analyzer import cache as result_cache

        store = result_cache.current()
        fkey = result_cache.findings_key(ckey, request)
        hit: Any = store.get(fkey) if store is not None and cached else None
        if hit is not None and len(hit) == 3:
            findings, text, _ = hit
            entry["findings"] = findings
            if request.encode and text is not None:
                return Result(entry["path"], None, text, findings, True, entry["format"], entry["error"])
            if not request.encode:
                return Result(entry["path"], _facts_read(entry), None, findings, True, entry["format"],
                              entry["error"])  # fmt: skip
        result = _finish(_facts_read(entry), request, cached)
        if store is not None and (hit is None or request.encode):  # (a row's text is never taken out)
            # (findings, text, (format, error, slices)): _results answers from this row alone
            store.put(fkey, [result.findings, result.json_text, (entry["format"], entry["error"], slices)])  # type: ignore[list-item]
        return result
    return _finish(_facts_read(entry), request, cached)


def _finish(entry: dict[str, Any], request: Request, cached: bool) -> Result:
    policy = request.context.policy
    findings: list[dict[str, Any]] = []
    if policy is not None:
        from analyzer.policy import rules

        findings = rules.evaluate(policy, entry)
        npath = rules.normalised_path(entry["path"], policy.base)
        for f in findings:
            f["baselined"] = rules.baseline_key(npath, f["rule"], f["fingerprint"]) in policy.baseline
    entry["findings"] = findings
    if request.encode:
        from analyzer.report.json import encode_entry

        return Result(entry["path"], None, encode_entry(entry), findings, cached, entry["format"], entry["error"])
    return Result(entry["path"], entry, None, findings, cached, entry["format"], entry["error"])


def _analyze(task: tuple[str, bool], request: Request) -> list[Result] | AnalyzerError:
    try:
        return _analyze_task(task, request)
    except budget.Overtime:  # (a budget's end that escaped its `with` as it began or ended: the file's all the same)
        return _died(task, request, f"analysis took longer than the time budget ({request.time_budget:g} s)")


def _analyze_task(task: tuple[str, bool], request: Request) -> list[Result] | AnalyzerError:
    path, explicit = task
    row = _ready_row(path)
    if row is not None:
        return [_from_row(path, row)]
    if not explicit:
        return _analyze_found(path, request)
    try:
        from analyzer import cache

        if cache.current() is not None and load.is_plain(path) and load.sniff_file(path) is None:
            load.open_artifacts(path, parse=False)  # its one-line error, before the result cache hashes all of it
        results = _results(path, request)
    except AnalyzerError as e:
        return e
    for r in results:  # a renamed AppImage named here whose payload cannot be read: as one named .AppImage, exit 2
        if r.format == "archive" and r.error is not None and path_text(path) == r.path:
            return AnalyzerError(r.error, path)
    return results


def scan(
    paths: list[str],
    request: Request | None = None,
    jobs: int | None = None,
    progress: Callable[..., None] | None = None,
) -> Iterator[Result]:
    """Results for every binary under `paths`, in input order.

    A file named explicitly that is not a readable binary raises AnalyzerError;
    inside a directory it becomes an entry with `error` set and the scan goes on,
    and files that are not binaries at all are passed over. Facts, findings and
    (when asked) the JSON text of each entry are made in the worker processes.
    `progress(done, total, bytes_done, bytes_total)` is called in this process as each file is done.
    """
    request = request or Request()
    from analyzer.load import remote
    from analyzer.load.sources import named_container

    for p in paths:  # fail fast, before any work (a URL is checked when it is listed)
        if not remote.is_url(p) and not os.path.exists(p) and load._member(p) == p and named_container(p) is None \
                and load.bundled_member(p) is None:
            raise AnalyzerError("no such file", p)
    try:
        with unpacking(paths, container_limits(request.limits), platform=request.platform, request=request,
                       image=request.image) as tasks:
            for r in _scan_tasks(tasks, request, jobs, progress):
                if r.installed is not None:  # (a container a worker unpacked holds packages: for the reports)
                    from analyzer.load import archives as unpacked

                    unpacked.INSTALLED.update(r.installed["installed"])
                    unpacked.OWNERS.update((m, (o[0], o[1])) for m, o in r.installed["owners"].items())
                    if r.entry is None and r.json_text is None:
                        continue
                if (archives := budget.loaded("analyzer.load.archives")) is not None:
                    _installed_owner(archives, r.path)
                yield r
    finally:
        _flush_cache()  # this process's rows: container member lists, the tasks it ran itself
        cache = budget.loaded("analyzer.cache")
        if cache is not None:
            cache.READY.clear()


def _installed_owner(archives: Any, path: str) -> None:
    """The installed package owning a binary reported (an entry of archives.OWNERS) when the package database of
    a directory tree scanned lists it, or lists the container holding it (a static library's object: the
    innermost container listed): the listed file's content checked against the package's digest of it here,
    once per file (while the workers go on), not when the tree's databases were read."""
    if archives.DIRECTORY_OWNERS:
        file = path.rsplit("[", 1)[0] if path.endswith("]") else path  # (a fat file's slice: its file's)
        at = len(file)
        while at > 0:
            key = file[:at]
            if (listed := archives.DIRECTORY_OWNERS.get(key)) is not None:
                if key not in archives.DIRECTORY_VERDICTS:
                    from analyzer.load import installed

                    tree, real, candidates = listed
                    index = installed.verify(archives.INSTALLED[tree], real, candidates, _disk_digest)
                    archives.DIRECTORY_VERDICTS[key] = None if index is None else (tree, index)
                if (owner := archives.DIRECTORY_VERDICTS[key]) is not None:
                    archives.OWNERS[file] = owner
                return
            at = file.rfind(archives.SEP, 0, at)


def _disk_digest(path: str, algo: str) -> str | None:
    """The digest (md5, sha256) of a file of a directory tree, as its package database names one (None when it
    cannot be read); with a result cache, remembered under the file's stat identity, as its sha256 is."""
    import hashlib

    from analyzer import cache as result_cache

    if algo not in ("md5", "sha256"):
        return None
    store = result_cache.current()
    skey = result_cache.stat_key(path) if store is not None else None
    if store is not None and skey is not None and (known := store.digest(f"{skey}:{algo}")) is not None:
        return known
    fh = load.open_regular(path)
    if fh is None:
        return None
    with fh:
        try:
            h = hashlib.new(algo, usedforsecurity=False)
            while chunk := fh.read(1 << 20):
                h.update(chunk)
        except OSError:
            return None
    if store is not None and skey is not None:
        store.put_digest(f"{skey}:{algo}", h.hexdigest())
    return h.hexdigest()


def container_limits(given: tuple[int | None, ...]) -> Limits | None:
    """The containers' limits a run asked for (each None keeps its default), or None for the defaults."""
    if not given:
        return None
    from dataclasses import fields

    from analyzer.load.archives import Limits

    default = Limits()
    return Limits(*(getattr(default, f.name) if v is None else v for v, f in zip(given, fields(Limits), strict=True)))


def _scan_tasks(
    tasks: Iterable[tuple[str, bool]],
    request: Request,
    jobs: int | None,
    progress: Callable[..., None] | None,
) -> Iterator[Result]:
    """The results of the tasks, in their order. Tasks come as containers are unpacked: the workers start on the
    first members while the main process writes the rest (with a progress bar the whole list is made first: the
    bar's totals need it)."""
    work = partial(_analyze, request=request)
    if progress is not None:
        tasks = list(tasks)
    report = report_done(progress, len(tasks), tasks) if isinstance(tasks, list) else report_done(None, 0)
    if request.dask:  # the local pool's hand-out (large files first, in-order results) with the cluster's workers
        from analyzer.scale import dask_workers

        with dask_workers(request.dask) as (submit, slots, lost):
            yield from _unpack(_parallel(iter(tasks), work, slots, _growing(), request, submit, lost), report)
        return
    workers = jobs if jobs is not None else min(os.cpu_count() or 1, 8)
    it = iter(tasks)
    head = list(itertools.islice(it, 16))
    small = False
    if jobs is None and workers > 1 and len(head) == 16 and (size := _bytes(head)) < SMALL_SCAN[1]:
        # a few small files are done sooner here than a pool of workers starts (unless --jobs asks for one)
        more = list(itertools.islice(it, SMALL_SCAN[0] + 1 - len(head)))
        head += more
        small = len(head) <= SMALL_SCAN[0] and size + _bytes(more) < SMALL_SCAN[1]
    if workers <= 1 or len(head) < 16 or small:
        yield from _unpack(map(work, itertools.chain(head, it)), report)  # (scan() writes the cache's rows)
        return
    if isinstance(tasks, list):  # known in advance: even chunks
        chunk = max(1, min(256, len(tasks) // (workers * 16)))
        sizes: Iterator[int] = itertools.repeat(chunk)
    else:
        sizes = _growing()
    yield from _unpack(_parallel(itertools.chain(head, it), work, workers, sizes, request), report)


def _growing() -> Iterator[int]:
    """Chunk sizes for tasks that come as they are found: small chunks first (both workers busy at once), then
    larger ones."""
    return itertools.chain((1, 1, 2, 2, 4, 4, 8, 8, 16, 16, 32, 32), itertools.repeat(64))


SMALL_SCAN = (32, 1 << 20)  # at most this many files and bytes: analysed in this process, no pool started


def _bytes(tasks: Sequence[tuple[str, bool]]) -> float:
    """What the tasks' files hold (a URL's size is not known here: counted as more than any small scan)."""
    total = 0
    for path, _ in tasks:
        if "://" in path:
            return float("inf")
        try:
            total += load.size_of(path)
        except OSError:
            pass
    return total


def report_done(progress: Callable[..., None] | None, total: int,
                tasks: Sequence[tuple[str, bool]] = ()) -> Callable[[int], None]:
    """The per-task callback: progress(files done, files, bytes done, bytes) — the sizes taken (only when there
    is a progress bar) from the files, members included, before the scan starts."""
    cumulative = [0]
    if progress is not None:
        for path, _ in tasks:
            try:  # a URL counts as nothing: its bytes are fetched where it is analysed, not here
                cumulative.append(cumulative[-1] + (0 if "://" in path else load.size_of(path)))
            except OSError:
                cumulative.append(cumulative[-1])

    def report(done: int) -> None:
        if progress is not None:
            at = cumulative[min(done, len(cumulative) - 1)]
            progress(done, total, at, cumulative[-1])

    return report


FAULT_KILL = "BINLENS_FAULT_KILL"  # fault injection for the tests: the worker given this path kills itself
FAULT_SPIN = "BINLENS_FAULT_SPIN"  # fault injection for the tests: the analysis of this path spins in native code
FAULT_STALL = "BINLENS_FAULT_STALL"  # fault injection for the tests: the analysis of this path stalls (a hang)


def _run_task(task: tuple[str, bool], work: Callable[[tuple[str, bool]], Any]) -> Any:
    """One task in a worker process."""
    if os.environ.get(FAULT_KILL) == task[0]:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer would
    return work(task)


def _run_chunk(tasks: list[tuple[str, bool]], work: Callable[[tuple[str, bool]], Any]) -> list[Any]:
    try:
        return [_run_task(t, work) for t in tasks]
    finally:
        _flush_cache()


def _flush_cache() -> None:
    """Write the result-cache rows this process holds (when it has a cache open at all)."""
    cache = budget.loaded("analyzer.cache")
    if cache is not None:
        cache.flush()


def _parallel(
    tasks: Iterator[tuple[str, bool]], work: Callable[[tuple[str, bool]], Any], workers: int, sizes: Iterator[int],
    request: Request, submit: Callable[[list[tuple[str, bool]], Callable[..., Any]], Any] | None = None,
    lost: tuple[type[BaseException], ...] = (),
) -> Iterator[list[Result] | AnalyzerError]:
    """The results of `work` over `tasks` in input order, from worker processes (a pool of `workers` started
    here, or the `workers` slots `submit(chunk, work)` hands a chunk to: a Dask cluster's); chunks of the given
    sizes are handed out as the tasks come, a few per worker ahead. A file among the next LOOKAHEAD tasks that holds a
    worker's share of their bytes or more is handed out first, alone (balanced by bytes: a core is not left
    idle at the end while one worker reads the largest file last; pulling every large file forward was
    measured slower over /usr/lib, 5.3 s against 4.6 s). When a worker dies (killed, out of memory, a crash
    in a native parser) the pool breaks: the files not yet done go on one at a time in a fresh pool, and a
    file whose worker dies again when it runs alone is that file's error. A chunk `submit` reports `lost` (the
    cluster gave up on it: its workers died running it, each time) goes again one task at a time, and a task
    lost alone is that file's error."""
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    pool = None
    if submit is None:
        pool = started = ProcessPoolExecutor(max_workers=workers, initializer=budget.backstop_here)

        def to_pool(chunk: list[tuple[str, bool]], work: Callable[[tuple[str, bool]], Any]) -> Future[Any]:
            return started.submit(_run_chunk, chunk, work)

        submit = to_pool
    numbered = enumerate(tasks)
    ahead: deque[tuple[int, tuple[str, bool], int]] = deque()  # read, not handed out: (index, task, size)
    where: dict[int, tuple[Future[Any], int, tuple[str, bool]]] = {}  # index → its chunk's future, place, task
    out_at = handed = 0  # the next index to yield; chunks handed out and not yet yielded in full
    ready: dict[int, tuple[tuple[str, bool], Any]] = {}  # index → its task and findings row: no worker needed
    read_to = -1  # the index of the last task read
    done_reading = False
    want = 0  # the size of the next chunk, once drawn from `sizes`
    limit = workers * 4
    got: tuple[Any, Any] = (None, None)  # the last chunk's future and its results

    def read() -> bool:
        """Read one more task; whether the one after it can be read at once (see _size)."""
        nonlocal done_reading, read_to
        nxt = next(numbered, None)
        if nxt is None:
            done_reading = True
            return False
        read_to = nxt[0]
        row = _ready_row(nxt[1][0])
        if row is not None:  # (its row came with its container's member list: no worker needed)
            ready[nxt[0]] = (nxt[1], row)
            return True
        size, cheap = _size(nxt[1][0])
        ahead.append((nxt[0], nxt[1], size))
        return cheap

    try:
        while True:
            # hand out while a worker slot is free: tasks cheap to list are read ahead (up to LOOKAHEAD) to find
            # the large ones; a streamed container's members only as a chunk needs them (the workers start on
            # the first while the rest are decompressed); the next task to yield always goes out
            while handed < limit or (ahead and ahead[0][0] == out_at):
                want = want or next(sizes)
                cheap = True
                while (len(ahead) < want or (cheap and len(ahead) < LOOKAHEAD)) and not done_reading \
                        and read_to < out_at + LOOKAHEAD * 4:  # (answered results held here: bounded)
                    cheap = read()
                if not ahead:
                    break
                big = max(range(len(ahead)), key=lambda i: ahead[i][2])
                if big and handed < limit and _goes_first(ahead[big][2], sum(a[2] for a in ahead), workers):
                    picked = [ahead[big]]
                    del ahead[big]
                else:
                    picked = [ahead.popleft() for _ in range(min(want, len(ahead)))]
                    want = 0
                chunk = [t for _, t, _ in picked]
                try:
                    fut = submit(chunk, work)
                except BrokenProcessPool:  # a worker died while the work was being handed out
                    fut = _broken()
                for place, (i, t, _) in enumerate(picked):
                    where[i] = (fut, place, t)
                handed += 1
            # every slot busy: read ahead while the next result is not in (a large file among the tasks read
            # goes out first when a slot frees)
            while not done_reading and len(ahead) < LOOKAHEAD and out_at in where and not where[out_at][0].done():
                read()
            if out_at in ready:
                (path, _), row = ready.pop(out_at)
                yield [_from_row(path, row)]
                out_at += 1
                continue
            if out_at not in where:
                if not done_reading:  # (only answered tasks were read: read on)
                    read()
                    continue
                return
            fut, place, _ = where[out_at]
            try:
                if fut is not got[0]:  # (a chunk's results asked for once: a Dask future's answer is a round trip)
                    try:
                        got = (fut, fut.result())
                    except lost:
                        chunk = [t for _, _, t in sorted((v for v in where.values() if v[0] is fut),
                                                         key=lambda v: v[1])]  # (its tasks, by place)
                        got = (fut, _alone(chunk, work, submit, lost, request))
                results = got[1]
            except BrokenProcessPool:
                assert pool is not None  # (a Dask cluster runs a dead worker's chunk again: retries)
                _shutdown(pool)
                from analyzer import cache as result_cache

                for task, row in ready.values():  # (a fresh pool's workers, forked from here, answer them)
                    result_cache.READY[task[0]] = row
                left = sorted([(i, where[i][2]) for i in where] + [(i, t) for i, t, _ in ahead]
                              + [(i, t) for i, (t, _) in ready.items()])
                rest = [t for _, t in left] + [t for _, t in numbered]  # not yet yielded, in input order
                yield from _one_by_one(rest, work, workers, request)
                return
            del where[out_at]
            out_at += 1
            if place == len(results) - 1:
                handed -= 1
            yield results[place]
    finally:
        if pool is not None:
            _shutdown(pool)


LOOKAHEAD = 64  # tasks read ahead of those handed out, to find large files among them
BIG_FILE = 4 << 20  # a file this large among them, and at least a worker's share of their bytes, goes first, alone


def _alone(chunk: list[tuple[str, bool]], work: Callable[[tuple[str, bool]], Any], submit: Callable[..., Any],
           lost: tuple[type[BaseException], ...], request: Request) -> list[list[Result] | AnalyzerError]:
    """The results of a chunk the cluster lost, each task sent alone; one lost again (perhaps beside the task that
    killed the worker they shared: the scheduler holds each task the dead worker held to blame) is sent once more,
    when the others are done, and lost then it is that file's error."""
    futures = [submit([t], work) for t in chunk]
    results: list[list[Result] | AnalyzerError | None] = []
    for fut in futures:
        try:
            results.append(fut.result()[0])
        except lost:
            results.append(None)
    for i, task in enumerate(chunk):
        if results[i] is None:
            try:
                results[i] = submit([task], work).result()[0]
            except lost:
                results[i] = _died(task, request)
    return [r for r in results if r is not None]


def _goes_first(size: int, ahead: int, workers: int) -> bool:
    """Whether a file of `size` bytes, among tasks read ahead holding `ahead` bytes, is handed out before them."""
    return size >= max(BIG_FILE, ahead // workers)


def _size(path: str) -> tuple[int, bool]:
    """A task's size, and whether the next task can be read at once: after a file, or a member of a zip or ar
    file (random access: a member costs its own bytes), not after a member of a compressed stream (a tarball,
    a .deb, an RPM), whose next member this process must decompress first."""
    if "://" in path:
        return 0, True
    if "!" in path:  # a member (known, listed or written), else a file whose name has a "!"
        from analyzer.load.archives import member_size

        try:
            return member_size(path), _random_access(path.split("!", 1)[0])
        except OSError:
            pass
    try:
        return os.path.getsize(path), True
    except OSError:
        return 0, True


@functools.lru_cache(maxsize=64)
def _random_access(container: str) -> bool:
    from analyzer.load.archives import kind_of

    return kind_of(container) in ("zip", "ar", "squashfs", "appimage")  # (a squashfs binary: its inode, one block)


def _broken() -> Future[Any]:
    """A future that failed as a broken pool's do."""
    from concurrent.futures import Future
    from concurrent.futures.process import BrokenProcessPool

    fut: Future[Any] = Future()
    fut.set_exception(BrokenProcessPool("a worker died"))
    return fut


def _submit(pool: ProcessPoolExecutor, fn: Callable[..., Any], items: Sequence[Any], work: Any) -> list[Future[Any]]:
    """Futures of fn(item, work) for each item, as many as the pool took before a worker died (a dead
    worker breaks the pool, and submit then raises)."""
    from concurrent.futures.process import BrokenProcessPool

    futures: list[Future[Any]] = []
    try:
        for item in items:
            futures.append(pool.submit(fn, item, work))
    except BrokenProcessPool:
        pass
    return futures


def _shutdown(pool: ProcessPoolExecutor) -> None:
    try:
        pool.shutdown(wait=True, cancel_futures=True)
    except OSError:  # a broken pool has closed its queues already
        pass


def _one_by_one(
    tasks: list[tuple[str, bool]], work: Callable[[tuple[str, bool]], Any], workers: int, request: Request
) -> Iterator[list[Result] | AnalyzerError]:
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    at = 0
    while at < len(tasks):
        pool = ProcessPoolExecutor(max_workers=workers, initializer=budget.backstop_here)
        broke = False
        try:
            futures = _submit(pool, _run_task, tasks[at:], work)
            broke = len(futures) < len(tasks) - at  # a worker died while the tasks were handed out
            for fut in futures:
                try:
                    result = fut.result()
                except BrokenProcessPool:
                    broke = True
                    break
                yield result
                at += 1
        finally:
            _shutdown(pool)
        if not broke:
            return
        # the pool broke at tasks[at]: alone, it shows whether it is the file that kills its worker
        alone = ProcessPoolExecutor(max_workers=1, initializer=budget.backstop_here)
        try:
            result = alone.submit(_run_task, tasks[at], work).result()
        except BrokenProcessPool:
            result = _died(tasks[at], request)
        finally:
            _shutdown(alone)
        yield result
        at += 1


def _died(task: tuple[str, bool], request: Request,
          problem: str = "the process analysing it died (killed, out of memory, a crash or an endless loop in a "
                         "parser)",
          ) -> list[Result] | AnalyzerError:
    """The result for a file whose analysis ended with `problem` (by default: its worker process died)."""
    path, explicit = task
    if explicit:
        return AnalyzerError(problem, path)
    kind = load.sniff_file(path)
    if kind is None:
        return []
    return [finish(_entry(path, None, "MachO" if kind == "MachOFat" else kind, None, problem), request)]


def _unpack(results: Iterable[list[Result] | AnalyzerError], report: Callable[[int], None]) -> Iterator[Result]:
    for done, result in enumerate(results, 1):
        if isinstance(result, AnalyzerError):
            raise result
        yield from result
        report(done)


