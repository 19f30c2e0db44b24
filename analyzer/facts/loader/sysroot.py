"""The files a loader sees: a sysroot whose symbolic links resolve inside it, read once each; ld.so.cache."""

from __future__ import annotations

import os
import posixpath
import struct
from typing import Any

from analyzer import load
from analyzer.errors import AnalyzerError, name_text
from analyzer.load.elf import ELFFile

MAX_CACHE_ENTRIES = 1 << 18  # ld.so.cache entries (a distribution's has a few thousand)
MAX_CONF_BYTES = 1 << 20  # of one ld.so.conf file
MAX_MEMO_PATHS = 1 << 18  # resolved paths remembered per sysroot
MAX_LINKS = 40  # symbolic links followed before "too many levels" (ELOOP), as the kernel does


def parse_ld_so_cache(data: bytes) -> list[tuple[int, str, str, int]]:
    """(flags, name, path, hwcap) entries of a glibc ld.so.cache ("glibc-ld.so.cache1.1" format,
    alone or after the old "ld.so-1.7.0" one)."""
    magic = b"glibc-ld.so.cache1.1"
    at = data.find(magic)
    if at < 0 or at + 48 > len(data):
        raise ValueError("not a glibc ld.so.cache")
    nlibs = struct.unpack_from("<I", data, at + 20)[0]
    if at + 48 + 24 * nlibs > len(data):
        raise ValueError("truncated ld.so.cache")
    if nlibs > MAX_CACHE_ENTRIES:
        raise ValueError("an ld.so.cache with more entries than any system has")
    strings: dict[int, str] = {}

    def string(off: int) -> str:  # string offsets count from the new-format header; each read once, bounded
        if off not in strings:
            start = at + off
            end = data.find(b"\0", start, start + 4096) if 0 <= start < len(data) else -1
            strings[off] = name_text(data[start:end]) if end > 0 else ""
        return strings[off]

    out = []
    for i in range(nlibs):
        flags, key, value, _, hwcap = struct.unpack_from("<iIIIQ", data, at + 48 + 24 * i)
        out.append((flags, string(key), string(value), hwcap))
    return out


_SHARED: dict[str, Sysroot] = {}  # this process's sysroots, by token


def _shared(root: str, token: str, overlays: tuple[tuple[str, str], ...], workers: int) -> Sysroot:
    """The Sysroot a pickled one names: the same object each time in one process (its files read once)."""
    import copy

    base = _SHARED.get(token)
    if base is None:
        base = Sysroot(root)
        base.token, base.workers = token, workers
        _SHARED.clear()  # one run at a time in a worker: the last run's files are not needed any more
        _SHARED[token] = base
    if not overlays:
        return base
    view = copy.copy(base)
    view.overlays = overlays
    return view


class Sysroot:
    """Files inside a sysroot, read once each; paths are the loader's (absolute inside the sysroot)."""

    def __init__(self, root: str) -> None:
        if not os.path.isdir(root):
            raise AnalyzerError("sysroot does not exist or is not a directory", root)
        self.root = os.path.realpath(root)
        self.elves: dict[str, tuple[ELFFile | None, str]] = {}  # host path -> (the ELF, or why it is none)
        self._cache: list[tuple[int, str, str, int]] | None = None
        self._cache_index: dict[str, list[tuple[int, str, str, int]]] | None = None
        self._conf: list[str] | None = None
        self._paths: dict[str, str | None] = {}  # loader path -> host path (None: missing), see _lookup
        self._dirs: dict[str, bool] = {}  # loader path -> whether it is a directory (paths under no overlay)
        # per file, whatever the program: what it defines, imports, and relocates at start-up
        self.memo: dict[tuple[str, str], Any] = {}
        self.overlays: tuple[tuple[str, str], ...] = ()  # (loader path, host directory) seen before the sysroot
        self.workers = 1  # processes one file's analysis may use at once (the syscalls reach's library models)
        self.token = os.urandom(8).hex()  # names this sysroot in the worker processes (see __reduce__)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled (once per chunk of tasks, inside the run's request) as its name only: a worker process keeps
        one Sysroot per run, so each library is read and modelled once per worker, not once per chunk."""
        return (_shared, (self.root, self.token, self.overlays, self.workers))

    def __copy__(self) -> Sysroot:
        view = object.__new__(Sysroot)
        view.__dict__.update(self.__dict__)
        return view

    def overlay(self, at: str, host_dir: str) -> Sysroot:
        """A view of this sysroot in which loader paths under `at` (a program's $ORIGIN) are looked up from the
        host directory `host_dir` first (the program's own directory: the libraries it bundles, `..` included);
        the files read and the ld.so.cache are shared."""
        import copy

        self.cache_entries("")  # parsed and indexed once, shared by every view
        self.conf_dirs()
        view = copy.copy(self)
        view.overlays = ((at.rstrip("/") or "/", os.path.realpath(host_dir)), *self.overlays)
        return view

    def host(self, path: str) -> str | None:
        """The host path of `path` as the loader sees it: an overlaid directory first, then the sysroot; links
        resolved inside the tree they are in; None when missing."""
        for at, host_dir in self.overlays:
            if path == at or path.startswith(at.rstrip("/") + "/"):
                # the program's own tree, as it lies on this machine: `..` climbs from its directory there
                candidate = os.path.normpath(os.path.join(host_dir, path[len(at) :].lstrip("/")))
                if os.path.exists(candidate):
                    return candidate
        parts = [p for p in path.split("/") if p]
        if "." in parts or ".." in parts:  # `..` after a link climbs from the link's target: no shortcut
            return _resolve(self.root, path)
        return self._lookup("/" + "/".join(parts))

    def _lookup(self, path: str) -> str | None:
        """_resolve with the directories memoised: each directory's links are followed once per run (a
        library searched in 300 directories behind a chain of 39 links followed 300 x 39 links per name)."""
        hit = self._paths.get(path, False)
        if hit is not False:
            return hit  # type: ignore[return-value]
        parent, name = posixpath.split(path)
        if not name:
            result: str | None = self.root
        else:
            parent_host = self._lookup(parent) if parent != "/" else self.root
            if parent_host is None:
                result = None
            else:  # the parent holds no link any more: only `name` can be one
                inside = os.path.relpath(parent_host, self.root)
                result = _resolve(self.root, posixpath.join("/", "" if inside == "." else inside, name))
        if len(self._paths) < MAX_MEMO_PATHS:
            self._paths[path] = result
        return result

    def is_dir(self, path: str) -> bool:
        """Whether `path` is a directory as the loader sees it (asked once per run, outside the overlays)."""
        if any(path == at or path.startswith(at.rstrip("/") + "/") for at, _ in self.overlays):
            host = self.host(path)
            return host is not None and os.path.isdir(host)
        hit = self._dirs.get(path)
        if hit is None:
            host = self.host(path)
            hit = host is not None and os.path.isdir(host)
            if len(self._dirs) < MAX_MEMO_PATHS:
                self._dirs[path] = hit
        return hit

    def open(self, path: str, header_size: int = 64) -> tuple[ELFFile | None, str | None]:
        """(the ELF at `path`, or None with the reason ld.so gives: it reads a whole ELF header first,
        so a shorter file is "file too short" whatever it holds)."""
        host_path = self.host(path)
        if host_path is None or not os.path.isfile(host_path):
            return None, "No such file or directory"
        if os.path.getsize(host_path) < header_size:
            return None, "file too short"
        if host_path in self.elves:
            elf, why = self.elves[host_path]
            return elf, why
        try:
            (art,) = load.open_artifacts(host_path)[:1]
            if art.format != "ELF":
                result: tuple[ELFFile | None, str] = (None, "invalid ELF header")
            else:
                result = (art.binary, "")
        except AnalyzerError as e:
            result = (None, "file too short" if "truncated" in e.problem else "invalid ELF header")
        self.elves[host_path] = result
        return result

    def conf_dirs(self) -> list[str]:
        """The directories of /etc/ld.so.conf and the files it includes (globs), in order; read once per
        sysroot (the loader model asks for every library it searches)."""
        if self._conf is None:
            self._conf = self._read_conf()
        return self._conf

    def _read_conf(self) -> list[str]:
        import glob as globmod

        out: list[str] = []
        seen: set[str] = set()

        def read(path: str, depth: int) -> None:
            host_path = self.host(path)
            if host_path is None or depth > 8 or host_path in seen:
                return
            seen.add(host_path)
            try:
                with open(host_path, encoding="utf-8", errors="replace") as f:
                    lines = f.read(MAX_CONF_BYTES).splitlines()  # a larger file is read up to the bound
            except OSError:
                return
            for line in lines:
                # ldconfig reads C strings: a line ends at a NUL byte (glob would refuse the name)
                line = line.split("\0", 1)[0].split("#", 1)[0].strip()
                if line.startswith("include "):
                    pattern = line.split(None, 1)[1]
                    if not pattern.startswith("/"):
                        pattern = posixpath.join(posixpath.dirname(path), pattern)
                    # `..` stops at the sysroot's / (as it does for the loader inside it), never climbs out
                    pattern = posixpath.normpath("/" + pattern)
                    for inc in sorted(globmod.glob(self.root.rstrip("/") + pattern)):
                        read("/" + os.path.relpath(inc, self.root), depth + 1)
                elif line:
                    out.extend(d for d in line.replace(",", " ").split() if d.startswith("/"))

        read("/etc/ld.so.conf", 0)
        return out

    def cache(self) -> list[tuple[int, str, str, int]]:
        if self._cache is None:
            host_path = self.host("/etc/ld.so.cache")
            self._cache = []
            if host_path:
                try:
                    with open(host_path, "rb") as f:
                        self._cache = parse_ld_so_cache(f.read(MAX_CACHE_ENTRIES * 24 + (16 << 20)))
                except (OSError, ValueError):
                    self._cache = []
        return self._cache

    def cache_entries(self, name: str) -> list[tuple[int, str, str, int]]:
        """The ld.so.cache entries for the library `name`, in the cache's order (indexed once per sysroot: a
        lookup scanned the whole cache)."""
        if self._cache_index is None:
            index: dict[str, list[tuple[int, str, str, int]]] = {}
            for entry in self.cache():
                index.setdefault(entry[1], []).append(entry)
            self._cache_index = index
        return self._cache_index.get(name, [])


def _resolve(root: str, path: str) -> str | None:
    """The host path of `path` inside the tree at `root`, symbolic links followed inside it (an absolute target
    starts again at `root`, never at the host's /); None when missing or looping."""
    parts = [p for p in path.split("/") if p]
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == ".":
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        if os.path.islink(candidate):
            links += 1
            if links > MAX_LINKS:
                return None  # ELOOP
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p] + parts
            continue
        if not os.path.exists(candidate):
            return None
        resolved.append(part)
    return os.path.join(root, *resolved)
