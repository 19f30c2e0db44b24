"""Where go.mod files of dependencies come from, offline: a GOPROXY file tree (`file://` layout), a module
cache (GOMODCACHE/cache/download has the same layout), or a saved `go mod graph` output. Every read is
bounded and stays inside the directory given."""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path

from analyzer.facts.gomod.modfile import MAX_FILE, ModFileError, node, parse_graph

_UPPER = re.compile("[A-Z]")


def escape(s: str) -> str:
    """module.EscapePath/EscapeVersion: every upper-case letter becomes '!' and its lower case."""
    return _UPPER.sub(lambda m: "!" + m[0].lower(), s) if _UPPER.search(s) else s


def read_bounded(path: str | os.PathLike[str], limit: int) -> bytes:
    """A regular file's first limit+1 bytes (the caller tells "too large"); a FIFO, device or directory is an
    OSError, never a read that blocks."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        chunks, left = [], limit + 1
        while left > 0:
            b = os.read(fd, min(left, 1 << 20))
            if not b:
                break
            chunks.append(b)
            left -= len(b)
        return b"".join(chunks)
    finally:
        os.close(fd)


class SourceError(Exception):
    """A module's go.mod could not be read; the text is the go command's reason."""


class ProxySource:
    """A GOPROXY file tree: <root>/<escaped path>/@v/<escaped version>.mod, list, .info."""

    def __init__(self, root: str, label: str | None = None) -> None:
        self.root = Path(root).resolve()
        self.label = label or f"file://{self.root}"
        self._checked: dict[str, str | None] = {}  # module path -> check_module_path's problem (once a path)
        self._prefix: dict[str, str] = {}  # a good module path -> its @v directory, with the '/'

    def _file(self, path: str, name: str) -> str:
        if ".." in path.split("/") or path.startswith("/") or "\x00" in path or "\x00" in name:
            raise SourceError(f"malformed module path {path!r}")
        return f"{self.root}/{escape(path)}/@v/{name}"

    def _mod(self, path: str, version: str) -> str:
        """The .mod file of a module version (its path checked and escaped once: a graph asks for each path's
        versions)."""
        prefix = self._prefix.get(path)
        if prefix is None:
            problem = self._checked.get(path, "")
            if problem == "":
                problem = self._checked[path] = check_module_path(path)
            if problem:
                raise SourceError(f'malformed module path "{path}": {problem}')
            prefix = self._prefix[path] = self._file(path, "")
        if "\x00" in version:
            raise SourceError(f"malformed module path {path!r}")  # (as _file says it)
        return prefix + escape(version) + ".mod"

    def mod_file(self, path: str, version: str) -> str:
        return self._mod(path, version)

    def gomod(self, path: str, version: str) -> bytes:
        f = self._mod(path, version)
        try:
            data = read_bounded(f, MAX_FILE)
        except OSError as e:
            url = f"{self.label}/{escape(path)}/@v/{escape(version)}.mod"
            raise SourceError(f"reading {url}: {os.strerror(e.errno or 2).lower()}") from None
        if len(data) > MAX_FILE:
            raise SourceError(f"reading {self.label}/{escape(path)}/@v/{escape(version)}.mod: go.mod larger than "
                              f"{MAX_FILE} bytes")
        return data

    def list_file(self, path: str) -> str:
        return self._file(path, "list")

    def versions(self, path: str) -> list[str]:
        try:
            text = read_bounded(self.list_file(path), MAX_FILE).decode("utf-8", "replace")
        except (OSError, SourceError):
            return []
        return [w.split()[0] for w in text.splitlines() if w.split()]

    def has_info(self, path: str, version: str) -> bool:
        try:
            return os.path.isfile(self._file(path, escape(version) + ".info"))
        except SourceError:
            return False


def check_module_path(path: str) -> str | None:
    """The first problem module.CheckPath finds that a proxy would refuse to fetch for, or None."""
    if not path:
        return "empty string"
    first = path.split("/", 1)[0]
    if first.startswith("-"):
        return "leading dash in first path element"
    for elem in path.split("/"):
        if elem == "":
            return "double slash" if "//" in path else "trailing slash" if path.endswith("/") else "leading slash"
        if elem.startswith("."):
            return "leading dot in path element"
        if elem.endswith("."):
            return "trailing dot in path element"
    if "." not in first:
        return "missing dot in first path element"
    if first != first.lower():
        return f'invalid char "{next(c for c in first if c.isupper())}"'
    return None


class VendorList:
    """vendor/modules.txt as the go command reads it (modload.readVendorList): the vendored modules that
    provide packages, their versions, `## explicit` marks, go versions and replacements."""

    def __init__(self, file: str) -> None:
        from analyzer.facts.gomod.versions import mod_compare, semver_valid

        self.file = file
        data = read_bounded(file, MAX_FILE)
        if len(data) > MAX_FILE:
            raise ModFileError("file too large", file)
        self.modules: list[tuple[str, str]] = []  # vendorList: in file order, the highest version of a path
        self.version: dict[str, str] = {}
        self.explicit: set[tuple[str, str]] = set()
        self.replacement: dict[tuple[str, str], tuple[str, str]] = {}
        self.replaced: list[tuple[str, str]] = []
        mod: tuple[str, str] | None = None
        for line in data.decode("utf-8", "replace").split("\n"):
            if line.startswith("# "):
                f = line.split()
                if len(f) < 3:
                    continue
                if semver_valid(f[2]):
                    mod, rest = (f[1], f[2]), f[3:]
                elif f[2] == "=>":
                    mod, rest = (f[1], ""), f[2:]
                else:
                    mod = None
                    continue
                if len(rest) >= 2 and rest[0] == "=>":
                    if len(rest) == 2:
                        self.replacement[mod] = (rest[1], "")
                        self.replaced.append(mod)
                    elif len(rest) == 3 and semver_valid(rest[2]):
                        self.replacement[mod] = (rest[1], rest[2])
                        self.replaced.append(mod)
                continue
            if mod is None:
                continue
            if line.startswith("## "):
                if any(e.strip() == "explicit" for e in line[3:].split(";")):
                    self.explicit.add(mod)
                continue
            f = line.split()
            if len(f) == 1 and not line.startswith("#"):
                v = self.version.get(mod[0])
                if v is None or mod_compare(mod[0], v, mod[1]) < 0:
                    self.modules.append(mod)
                    self.version[mod[0]] = mod[1]


def modcache_source(modcache: str) -> ProxySource:
    return ProxySource(str(Path(modcache) / "cache" / "download"))


class GraphSource:
    """A saved `go mod graph`: the requirements of every module whose go.mod the go command loaded."""

    def __init__(self, file: str) -> None:
        try:
            data = read_bounded(file, MAX_FILE * 4)
        except OSError as e:
            raise ModFileError(os.strerror(e.errno or 2), file) from None
        if len(data) > MAX_FILE * 4:
            raise ModFileError("file too large", file)
        self.file = file
        self.edges = parse_graph(data, file)
        self.required: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for a, b in self.edges:
            self.required.setdefault(a, []).append(b)
        self.label = file

    def roots(self) -> list[tuple[str, str]]:
        """The main modules: nodes without a version that start edges, in order of appearance."""
        seen: list[tuple[str, str]] = []
        for a, _ in self.edges:
            if a[1] == "" and a[0] not in ("go", "toolchain") and a not in seen:
                seen.append(a)
        return seen

    def requirements(self, path: str, version: str) -> list[tuple[str, str]] | None:
        return self.required.get((path, version))

    def versions(self, path: str) -> list[str]:
        return []


__all__ = ["GraphSource", "ProxySource", "SourceError", "escape", "modcache_source", "node"]
