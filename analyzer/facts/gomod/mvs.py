"""The module graph and minimal version selection, offline, as cmd/go/internal/modload computes them for
`go list -m all` and `go mod graph`: graph pruning by go version (go ≥ 1.17 modules expose only their own
requirements; older ones drag in their whole closure), workspaces, the main modules' replaces and excludes,
the `go@`/`toolchain@` nodes, and the root update the go command makes in memory when a root is not the
selected version (`expandGraph`). Modules are (path, version) pairs; a main module has version ''."""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from analyzer.facts.gomod.modfile import ModFile, ModFileError, Replace, parse_gomod, parse_lax_fast
from analyzer.facts.gomod.sources import ProxySource, SourceError, read_bounded
from analyzer.facts.gomod.versions import cmp_version, go_compare, mod_sorted, semver_key

Mod = tuple[str, str]
PRUNED, UNPRUNED, WORKSPACE = "pruned", "unpruned", "workspace"
GO_STRICT = "1.21"  # from this go version a go.mod's go line is a requirement on go@
EXPLICIT_INDIRECT = "1.17"  # from this go version the module graph is pruned
MAX_GOMOD = 16 << 20  # a go.mod larger than this is refused (the go command's own limit in module zips)
MAX_MODULES = 200_000  # module versions loaded in one graph: a bound against hostile universes
DIRTY = "updates to go.mod needed; to update it:\n\tgo mod tidy"  # (its plain form: setup words the others)


class Source(Protocol):
    label: str

    def gomod(self, path: str, version: str) -> bytes: ...

    def versions(self, path: str) -> list[str]: ...


def fmt_mod(m: Mod) -> str:
    return f"{m[0]}@{m[1]}" if m[1] else m[0]


class Names(dict[Mod, str]):
    """fmt_mod of each module, spelled once: `names[m]` (a graph of 10,000 modules has 47,000 edges, and the
    conflicts name the same askers again and again)."""

    def __missing__(self, m: Mod) -> str:
        text = self[m] = f"{m[0]}@{m[1]}" if m[1] else m[0]
        return text


def pruning_for(go: str) -> str:
    return UNPRUNED if go_compare(go, EXPLICIT_INDIRECT) < 0 else PRUNED


@dataclass
class Summary:
    module: str
    go: str
    pruning: str
    require: list[Mod]
    toolchain: str = ""
    deprecated: str = ""
    retract: list[tuple[str, str, str]] = field(default_factory=list)


class LoadError(Exception):
    """A module version whose requirements cannot be read: the go command's words, without the 'go: '."""

    def __init__(self, mod: Mod, message: str, actual: Mod | None = None, plain: bool = False) -> None:
        self.mod, self.message, self.actual = mod, message, actual
        self.plain = plain  # not a module error: printed after the module as is (a TooNewError)
        super().__init__(message)


class GraphError(Exception):
    """The go command would fail: `text` is its message after 'go: '."""

    def __init__(self, text: str, file: str | None = None, line: int = 0, kind: str = "graph") -> None:
        self.text, self.file, self.line, self.kind = text, file, line, kind
        super().__init__(text)


def summary_from(m: Mod, f: ModFile) -> Summary:
    go = f.go or ""
    s = Summary(
        module=f.module or "",
        go=go,
        pruning=pruning_for(go) if go else UNPRUNED,
        require=[(r.path, r.version) for r in f.require],
        toolchain=f.toolchain or "",
        deprecated=f.deprecated,
        retract=[(r.low, r.high, r.rationale) for r in f.retract],
    )
    if go and go_compare(go, GO_STRICT) >= 0:
        s.require.append(("go", go))
    return s


def gomod_h1(data: bytes) -> str:
    """dirhash.Hash1 of one file named go.mod: the go.sum hash of `path version/go.mod`."""
    import base64
    import hashlib

    digest = hashlib.sha256(f"{hashlib.sha256(data).hexdigest()}  go.mod\n".encode()).digest()
    return "h1:" + base64.b64encode(digest).decode()


def _entry_shape(e: tuple[Any, ...]) -> bool:
    """Whether a cached go.mod entry has the shape this binlens writes (one written otherwise is a miss)."""
    return type(e[0]) is type(e[1]) is type(e[2]) is type(e[3]) is type(e[6]) is str and type(e[4]) is list \
        and type(e[5]) is list and type(e[7]) is tuple


def _fast_summary(module: str | None, go: str | None, reqs: list[Mod]) -> Summary:
    s = Summary(module or "", go or "", pruning_for(go) if go else UNPRUNED, reqs)
    if go and go_compare(go, GO_STRICT) >= 0:
        reqs.append(("go", go))
    return s


class Graph:
    """mvs.Graph: requirement edges of loaded modules and the maximum version of every path seen."""

    def __init__(self, roots: list[Mod]) -> None:
        self.roots = list(roots)
        self.required: dict[Mod, list[Mod]] = {}
        self.is_root: dict[Mod, bool] = {}
        self.selected: dict[str, str] = {}
        self._order: list[Mod] | None = None  # walk_breadth_first's, until another module is loaded
        self._parent: dict[Mod, Mod | None] = {}  # (and its first askers)
        for m in roots:
            self.is_root[m] = True
            self._see(m)

    def _see(self, m: Mod) -> None:
        if cmp_version(m[0], self.selected.get(m[0], "none"), m[1]) < 0:
            self.selected[m[0]] = m[1]

    def require(self, m: Mod, reqs: list[Mod]) -> None:
        self.required[m] = reqs
        self._order = None
        selected, is_root = self.selected, self.is_root
        for d in reqs:
            if d not in is_root:
                is_root[d] = False
            path, v = d
            cur = selected.get(path)
            if cur is None:
                if v != "none":
                    selected[path] = v
            elif cur != v and cur != "" and (v == "" or (semver_key(cur) < semver_key(v) if path != "go" and path
                                                         != "toolchain" else cmp_version(path, cur, v) < 0)):
                selected[path] = v

    def sel(self, path: str) -> str:
        return self.selected.get(path, "none")

    def build_list(self) -> list[Mod]:
        seen: set[str] = set()
        out: list[Mod] = []
        for p, _ in self.roots:
            if p in seen:
                continue
            v = self.sel(p)
            if v != "none":
                out.append((p, v))
            seen.add(p)
        return out + mod_sorted((p, v) for p, v in self.selected.items() if p not in seen)

    def walk_breadth_first(self) -> list[Mod]:
        """The loaded modules breadth first from the roots (made once: the edges and the requesters' tables of
        one graph both walk it)."""
        if self._order is None:
            self._order = self._walk()
        return self._order

    def _walk(self) -> list[Mod]:
        queue = deque(m for m in self.roots if m[1] != "none")
        parent: dict[Mod, Mod | None] = dict.fromkeys(queue)
        order = []
        required = self.required
        while queue:
            m = queue.popleft()
            order.append(m)
            for r in required.get(m, ()):
                if r not in parent and r[1] != "none":
                    parent[r] = m
                    queue.append(r)
        self._parent = parent
        return order

    def first_askers(self) -> dict[Mod, Mod | None]:
        """For every module walk_breadth_first reaches, the module that asked for it first in that walk (None
        for a root): the links of one shortest chain of requirements from a root to it."""
        self.walk_breadth_first()
        return self._parent

    def find_path(self, pred: Any) -> list[Mod]:
        first: dict[Mod, Mod | None] = {m: None for m in self.roots}
        queue = deque(self.roots)
        while queue:
            m = queue.popleft()
            if pred(m):
                path = [m]
                prev = first[m]
                while prev is not None and prev[0] != "":
                    path.append(prev)
                    prev = first[prev]
                return path[::-1]
            for r in self.required.get(m, ()):
                if r not in first:
                    first[r] = m
                    queue.append(r)
        return []

    def edges(self) -> list[tuple[Mod, Mod]]:
        """`go mod graph`: breadth first from the roots, each loaded module's requirements in go.mod order."""
        return [(m, r) for m in self.walk_breadth_first() for r in self.required.get(m, ())]


@dataclass
class MainModule:
    path: str
    dir: Path
    modfile: ModFile


@dataclass
class Requirements:
    pruning: str
    roots: list[Mod]
    direct: set[str]
    graph: Graph | None = None  # loaded once (readModGraph), with the error the loading met
    error: LoadError | None = None


class Loader:
    """One main module (or one workspace) and its module source: the go command's modload state."""

    def __init__(self, mains: list[MainModule], source: Source | None, *, work: ModFile | None = None,
                 work_dir: Path | None = None, mod_mode: str = "readonly", tree: Path | None = None,
                 sums: dict[Mod, list[tuple[str, str]]] | None = None, local_go: str | None = None,
                 toolchain_note: str = "", cache: Any = None) -> None:
        self.mains = mains
        self.sums = sums or {}  # (path, version/go.mod) → [(go.sum file as go names it, h1)]
        self.sum_error: GraphError | None = None  # go.sum contradicts a go.mod read: the go command stops
        self.local_go = local_go  # the go command that would run (--go): newer go lines are its error
        self.toolchain_note = toolchain_note
        self.cwd = (work_dir if work is not None and work_dir else mains[0].dir if mains else Path.cwd())
        self.source = source
        self.work = work
        self.work_dir = work_dir
        self.mod_mode = mod_mode
        self.tree = (tree or (work_dir if work and work_dir else mains[0].dir)).resolve()
        self.main_paths = {m.path: m for m in mains}
        self.errors: list[GraphError] = []  # reported like base.Errorf: the command goes on, then fails
        self.excluded: set[Mod] = {(e.path, e.version) for m in mains for e in m.modfile.exclude}
        self.fatal: GraphError | None = None  # the go command stops before loading anything
        self._replaces = True  # (until the replace maps are read: below)
        try:
            self.work_replace = self._replace_map(work) if work else {}
            self.mod_replace = [(m, self._replace_map(m.modfile)) for m in mains]
            if work is not None:
                self._check_workspace_replaces()
        except GraphError as e:
            self.work_replace, self.mod_replace, self.fatal = {}, [], e
        # (most graphs replace nothing: then no module's replacement is looked up, in go.work or any go.mod)
        self._replaces = bool(self.work_replace) or any(rmap for _, rmap in self.mod_replace)
        self._summaries: dict[Mod, Summary | LoadError] = {}
        self._raw: dict[Mod, Summary | LoadError] = {}
        self.gomod_bytes: dict[Mod, bytes] = {}  # every go.mod read from the source, for the report's checks
        self.gomod_h1: dict[Mod, str] = {}
        self.gomod_flags: dict[Mod, tuple[bool, bool]] = {}  # (has replace lines, has retract/Deprecated)
        self.cache: Any = cache
        self.names = Names()
        self.no_sum = False  # (_verify: a go.mod was read that go.sum, when there is one, has no line for)
        self.dirty_text = DIRTY  # (setup gives the go command's form for the mode and the vendor directory)
        self.vendor: Any = None  # vendor/modules.txt (sources.VendorList) when the module has one

    @property
    def workspace(self) -> bool:
        return self.work is not None

    @staticmethod
    def _replace_map(f: ModFile) -> dict[Mod, tuple[Mod, Replace]]:
        out: dict[Mod, tuple[Mod, Replace]] = {}
        for r in f.replace:
            key, new = (r.old_path, r.old_version), (r.new_path, r.new_version)
            prev = out.get(key)
            if prev and prev[0] != new:
                raise GraphError(f"conflicting replacements for {fmt_mod(key)}:\n\t{fmt_mod(prev[0])}\n\t"
                                 f"{fmt_mod(new)}", f.name, r.line, kind="replace")
            out[key] = (new, r)
        return out

    def _check_workspace_replaces(self) -> None:
        """The workspace modules' go.mod replaces must agree where go.work does not replace the path."""
        by_work = {old[0] for old in self.work_replace}
        seen: dict[Mod, tuple[Mod, MainModule]] = {}
        for main, rmap in self.mod_replace:
            for old, (new, r) in rmap.items():
                if old[0] in by_work:
                    continue
                if new[1] == "" and not os.path.isabs(new[0]):
                    new = (os.path.normpath(os.path.join(main.dir, new[0])), "")
                prev = seen.get(old)
                if prev is not None and prev[1] is not main and prev[0] != new:
                    raise GraphError(f"conflicting replacements for {fmt_mod(old)}:\n\t{fmt_mod(prev[0])}\n\t"
                                     f"{fmt_mod(new)}\nuse \"go work edit -replace {fmt_mod(old)}=[override]\" to "
                                     "resolve", main.modfile.name, r.line, kind="replace")
                seen[old] = (new, main)
        for old in self.work_replace:
            if old[1] == "" and old[0] in self.main_paths:
                self.errors.append(GraphError(
                    f"workspace module {old[0]} is replaced at all versions in the go.work file. To fix, remove "
                    "the replacement from the go.work file or specify the version at which to replace the module.",
                    self.work.name if self.work else None, self.work_replace[old][1].line, kind="replace"))

    # ------------------------------------------------------------ replacements

    def replacement(self, m: Mod) -> tuple[Mod, Path, Replace] | None:
        """replacementFrom: the replacement of m, the directory a relative path is taken from, and the line."""
        if not self._replaces or (m[1] == "" and m[0] in self.main_paths):
            return None
        hit = self.work_replace.get(m) or self.work_replace.get((m[0], ""))
        if hit:
            assert self.work_dir is not None
            return hit[0], self.work_dir, hit[1]
        found: tuple[Mod, Path, Replace] | None = None
        for main, rmap in self.mod_replace:
            exact = rmap.get(m)
            hit, frm = (exact, m[1]) if exact else (rmap.get((m[0], "")), "")
            if not hit:
                continue
            # cmd/go compares with a "found from" that it never sets: only an exact replacement that differs
            # from an earlier module's is an error, and otherwise the last workspace module's replacement wins
            if found is not None and frm != "" and found[0] != hit[0]:
                first = found[1] / "go.mod"
                self.errors.append(GraphError(
                    f"conflicting replacements found for {fmt_mod(m)} in workspace modules defined by "
                    f"{first} and {main.dir / 'go.mod'}", str(main.dir / "go.mod"), hit[1].line, kind="replace"))
                return found
            found = (hit[0], main.dir, hit[1])
        return found

    def display_replacement(self, m: Mod) -> Mod | None:
        """The replacement as `go list -m` prints it (a directory relative to go.work in a workspace)."""
        r = self.replacement(m)
        if r is None:
            return None
        new, root, _ = r
        if new[1] or os.path.isabs(new[0]) or not self.workspace or root == self.work_dir:
            return new
        assert self.work_dir is not None
        rel = os.path.relpath(os.path.normpath(root / new[0]), self.work_dir)
        return (rel if rel.startswith(("../", "/")) or rel == ".." else "./" + rel if rel != "." else ".", "")

    def actual(self, m: Mod) -> Mod:
        """The module whose go.mod gives m's requirements: m, its replacement, or (path, '') for a directory."""
        return self._resolve(m)

    def _resolve(self, m: Mod) -> Mod:
        r = self.replacement(m)
        if r is None:
            return m
        new, root, _ = r
        if new[1]:
            return new
        return (os.path.normpath(root / new[0]), "")

    # ------------------------------------------------------------ summaries

    def _short(self, p: Path) -> str:
        """base.ShortPath: relative to the directory the command runs in, when that is shorter."""
        try:
            rel = os.path.relpath(p, self.cwd)
        except ValueError:
            return str(p)
        return rel if len(rel) < len(str(p)) else str(p)  # (both name the same file: rel is from cwd)

    def _read_dir_gomod(self, m: Mod, dirpath: str) -> Summary | LoadError:
        name = Path(dirpath) / "go.mod"
        try:
            real = name.resolve()
        except (OSError, RuntimeError):
            real = name
        if not real.is_relative_to(self.tree):
            return LoadError(m, f"reading {name}: outside {self.tree} (binlens reads only the given directories)")
        try:
            data = read_bounded(real, MAX_GOMOD)
        except OSError as e:
            return LoadError(m, f"reading {self._short(name)}: open {name}: {os.strerror(e.errno or 2).lower()}")
        try:
            f = parse_gomod(data, str(name), strict=False)
        except ModFileError as e:
            return LoadError(m, f"parsing {name}: {e}")
        return summary_from(m, f)

    def raw_summary(self, m: Mod) -> Summary | LoadError:
        if m[0] in ("go", "toolchain"):
            if m[0] == "go" and go_compare(m[1], GO_STRICT) >= 0:
                return Summary(m[0], "", PRUNED, [("toolchain", "go" + m[1])])
            return Summary(m[0], "", PRUNED, [])
        if m[1] == "" and self.workspace and m[0] in self.main_paths:
            return summary_from(m, self.main_paths[m[0]].modfile)
        if m in self._raw:
            return self._raw[m]
        if m[1] == "":
            s = self._read_dir_gomod(m, m[0])
        elif self.source is None:
            s = LoadError(m, "no module source (give --proxy, --modcache or --graph)")
        else:
            s = self._source_summary(m)
        if isinstance(s, Summary) and self.local_go and s.go and go_compare(s.go, GO_STRICT) >= 0 \
                and go_compare(s.go, self.local_go) > 0:
            what = f"./{os.path.relpath(m[0], self.tree)}" if m[1] == "" else fmt_mod(m)
            s = LoadError(m, f"module {what} requires go >= {s.go} (running go {self.local_go}"
                             f"{self.toolchain_note})", plain=True)
        self._raw[m] = s
        return s

    def _source_summary(self, m: Mod) -> Summary | LoadError:
        """A dependency's summary from the module source, through the cache of parsed go.mod files."""
        assert self.source is not None
        st = file = None
        if self.cache is not None and isinstance(self.source, ProxySource):
            try:
                file = self.source.mod_file(*m)
                st = os.stat(file)
            except (OSError, SourceError):
                file = None
            hit = self.cache.get(file, st, 8) if file and st else None
            if hit is not None and _entry_shape(hit):  # (its requirements as the summary's, go@ node included)
                module, go, toolchain, deprecated, reqs, retract, h1, flags = hit
                self.gomod_h1[m], self.gomod_flags[m] = h1, flags
                if self.sums:
                    self._verify(m, h1)
                return Summary(module, go, pruning_for(go) if go else UNPRUNED, reqs, toolchain, deprecated, retract)
        try:
            data = self.source.gomod(*m)
        except SourceError as e:
            return LoadError(m, str(e))
        self.gomod_bytes[m] = data
        h1 = self.gomod_h1[m] = gomod_h1(data)
        flags = self.gomod_flags[m] = (b"replace" in data, b"retract" in data or b"Deprecated" in data)
        self._verify(m, h1)
        fast = parse_lax_fast(data)
        try:
            entry: tuple[Any, ...]
            if fast:
                module, go, reqs = fast
                s = _fast_summary(module, go, list(reqs))
            else:
                s = summary_from(m, parse_gomod(data, "go.mod", strict=False))
            entry = (s.module, s.go, s.toolchain, s.deprecated, s.require, s.retract, h1, flags)
        except ModFileError as e:
            return LoadError(m, f"parsing go.mod: {e}")
        if self.cache is not None and file and st:
            self.cache.put(file, st, entry)
        return s

    def _verify(self, m: Mod, h: str) -> None:
        """go.sum's line for this go.mod, when there is one, must match what was read (checkModSum)."""
        have = self.sums.get((m[0], m[1] + "/go.mod"))
        if not have:
            self.no_sum = True  # (a go.mod read that go.sum has no line for: -mod=readonly's error, compute says)
            return
        if self.sum_error is not None:
            return
        for file, vh in have:
            if vh != h and vh.startswith("h1:"):
                self.sum_error = GraphError(f"verifying {m[0]}@{m[1]}/go.mod: checksum mismatch\n\tdownloaded: {h}\n"
                                            f"\t{file}:     {vh}", kind="sum")
                return

    def h1_of(self, m: Mod) -> str:
        """The h1 hash of a module version's go.mod (cached, or from the source); SourceError without one."""
        h = self.gomod_h1.get(m)
        if h is None:
            h = self.gomod_h1[m] = gomod_h1(self.read_gomod(m))
        return h

    def read_gomod(self, m: Mod) -> bytes:
        """A module version's go.mod from the source (read once per run); SourceError when it has none."""
        data = self.gomod_bytes.get(m)
        if data is None:
            if self.source is None:
                raise SourceError("no module source")
            data = self.gomod_bytes[m] = self.source.gomod(*m)
        return data

    def loaded_summaries(self) -> dict[Mod, Summary | LoadError]:
        """summary()'s answers so far, by module (to look up before asking it)."""
        return self._summaries

    def summary(self, m: Mod) -> Summary | LoadError:
        """goModSummary: the requirements of m, from its replacement's go.mod, without excluded versions."""
        known = self._summaries.get(m)
        if known is not None:
            return known
        if len(self._summaries) >= MAX_MODULES:
            raise GraphError(f"more than {MAX_MODULES} module versions in the graph", kind="limit")
        if m[0] in ("go", "toolchain"):
            s = self.raw_summary(m)
        else:
            actual = self._resolve(m) if self._replaces else m
            s = self.raw_summary(actual)
            if isinstance(s, LoadError):
                shown = (self.display_replacement(m) or actual) if not actual[1] else actual
                s = LoadError(m, s.message, None if s.plain else shown, s.plain)
            elif actual[1]:
                if not s.module:
                    s = LoadError(m, "parsing go.mod: missing module line", actual)
                elif s.module not in (m[0], actual[0]):
                    s = LoadError(m, f"parsing go.mod:\n\tmodule declares its path as: {s.module}\n"
                                     f"\t        but was required as: {m[0]}", actual)
            if isinstance(s, Summary) and self.excluded and any(r in self.excluded for r in s.require):
                s = Summary(s.module, s.go, s.pruning, [r for r in s.require if r not in self.excluded],
                            s.toolchain, s.deprecated, s.retract)
        self._summaries[m] = s
        return s

    # ------------------------------------------------------------ roots and graph

    def initial_requirements(self) -> Requirements:
        if self.workspace:
            assert self.work is not None
            roots: list[Mod] = [(m.path, "") for m in self.mains]
            roots.append(("go", self.work.go or "1.18"))
            if self.work.toolchain:
                roots.append(("toolchain", self.work.toolchain))
            direct = {r.path for m in self.mains for r in m.modfile.require if not r.indirect}
            pruning = WORKSPACE
        else:
            f = self.mains[0].modfile
            roots, direct = [], {"go"}
            for r in f.require:
                if (r.path, r.version) in self.excluded:
                    continue
                roots.append((r.path, r.version))
                if not r.indirect:
                    direct.add(r.path)
            roots.append(("go", f.go or "1.16"))
            if f.toolchain:
                roots.append(("toolchain", f.toolchain))
            pruning = pruning_for(f.go or "1.16")
        roots = mod_sorted(roots)
        if pruning == PRUNED and self._redundant(roots):
            # loadModFile updates redundant roots before anything is loaded: a requirement on the main module
            # itself is dropped and a path listed twice keeps its highest version (go mod graph's -mod=mod)
            main, best = self.mains[0].path, {}
            for p, v in roots:
                if p != main:
                    best[p] = v  # sorted: the last is the highest
            roots = [(p, best.pop(p)) for p, _ in roots if p in best]
        return Requirements(pruning, roots, direct)

    def _redundant(self, roots: list[Mod]) -> bool:
        main = self.mains[0].path
        return any(p == main or (i and roots[i - 1][0] == p) for i, (p, _) in enumerate(roots))

    def read_graph(self, pruning: str, roots: list[Mod]) -> tuple[Graph, LoadError | None]:
        """readModGraph."""
        main = (self.mains[0].path, "")
        g = Graph(roots if self.workspace else [main])
        if not self.workspace:
            g.require(main, roots)
        loading: set[tuple[Mod, str]] = set()
        loaded: set[Mod] = set()
        failed: dict[Mod, LoadError] = {}
        queue: deque[tuple[Mod, str]] = deque()

        def enqueue(m: Mod, p: str) -> None:
            if m[1] == "none" or (m, p) in loading:
                return
            loading.add((m, p))
            queue.append((m, p))

        def drain() -> None:
            while queue:
                batch = list(queue)
                queue.clear()
                for m, p in batch:
                    step(m, p)

        def step(m: Mod, p: str) -> None:
            s = self.summary(m)
            if isinstance(s, LoadError):
                failed[m] = s
                return
            if m not in loaded:
                loaded.add(m)
                g.require(m, s.require)
            if p != PRUNED or s.pruning == UNPRUNED:
                nxt = UNPRUNED if p == UNPRUNED else s.pruning
                for r in s.require:  # (enqueue's, inline: one call fewer for each of tens of thousands)
                    if r[1] != "none" and (r, nxt) not in loading:
                        loading.add((r, nxt))
                        queue.append((r, nxt))

        for m in roots:
            enqueue(m, pruning)
        drain()
        if pruning == WORKSPACE:
            has_deps = {m[0] for m in roots}
            seen: set[Mod] = set()
            while True:
                needs: set[Mod] = set()
                for p in has_deps:
                    m = (p, g.sel(p))
                    if m not in seen:
                        needs.add(m)
                        continue
                    for r in g.required.get(m, ()):
                        s = (r[0], g.sel(r[0]))
                        if cmp_version(r[0], s[1], r[1]) > 0 and s not in seen:
                            needs.add(s)
                if not needs:
                    break
                for m in mod_sorted(needs):
                    enqueue(m, WORKSPACE)
                    seen.add(m)
                    has_deps.add(m[0])
                drain()
        err = None
        if failed:
            path = g.find_path(lambda m: m in failed)
            err = failed[path[-1]] if path else next(iter(failed.values()))
            err = LoadError(err.mod, _build_list_error(path or [err.mod], err), err.actual)
        return g, err

    def graph(self, rs: Requirements) -> tuple[Graph, LoadError | None]:
        if rs.graph is None:
            rs.graph, rs.error = self.read_graph(rs.pruning, rs.roots)
        return rs.graph, rs.error

    def _roots_selected(self, rs: Requirements, g: Graph) -> bool:
        roots = [(m.path, "") for m in self.mains] if self.workspace else g.required.get((self.mains[0].path, ""), [])
        return all(g.sel(p) == v for p, v in roots)

    def expand(self, rs: Requirements) -> tuple[Requirements, Graph, LoadError | GraphError | None]:
        """expandGraph: load the graph; when a root is not its path's selected version, update the roots."""
        g, err = self.graph(rs)
        if err is not None or self._roots_selected(rs, g) or self.workspace:
            return rs, g, err
        try:
            new = self._update_pruned(rs) if rs.pruning == PRUNED else self._update_unpruned(rs, g)
        except LoadError as e:
            return rs, g, e
        if isinstance(new, GraphError):
            return rs, g, new
        g2, err2 = self.graph(new)
        return new, g2, err2

    def _update_pruned(self, rs: Requirements) -> Requirements | GraphError:
        upgraded = False
        roots = rs.roots
        main = self.mains[0].path
        while True:
            if upgraded:
                if self.mod_mode != "mod":
                    return GraphError(self.dirty_text, self.mains[0].modfile.name, kind="dirty")
                rs = Requirements(PRUNED, roots, rs.direct)
            g, err = self.graph(rs)
            if err is not None:
                raise err
            roots, upgraded, in_roots = [], False, {main}
            for p, v in rs.roots:
                if p in in_roots:
                    continue
                s = g.sel(p)
                roots.append((p, s))
                in_roots.add(p)
                upgraded |= s != v
            if not upgraded:
                break
        if roots == rs.roots:
            return rs  # unchanged: keep its loaded graph
        return Requirements(PRUNED, roots, rs.direct)

    def _update_unpruned(self, rs: Requirements, g: Graph) -> Requirements | GraphError:
        if self.mod_mode != "mod":
            return GraphError(self.dirty_text, self.mains[0].modfile.name, kind="dirty")
        root_paths: list[str] = []
        in_roots: set[str] = set()
        for p, v in rs.roots:
            if p not in in_roots and g.sel(p) == v:
                root_paths.append(p)
                in_roots.add(p)
        keep = g.build_list()[1:]
        for p, _ in keep:
            if p in rs.direct and p not in in_roots:
                root_paths.append(p)
                in_roots.add(p)
        return Requirements(UNPRUNED, self._req((self.mains[0].path, ""), root_paths, keep), rs.direct)

    def _required(self, m: Mod, keep: list[Mod]) -> list[Mod]:
        if m[1] == "" and m[0] in self.main_paths:
            return keep
        if m[1] == "none":
            return []
        s = self.summary(m)
        if isinstance(s, LoadError):
            raise s
        return s.require

    def _req(self, main: Mod, base: list[str], keep: list[Mod]) -> list[Mod]:
        """mvs.Req: the minimal requirement list that keeps the build list, with `base` paths listed."""
        g = Graph([main])
        queue, seen = deque([main]), {main}
        while queue:
            m = queue.popleft()
            reqs = self._required(m, keep)
            g.require(m, reqs)
            for r in reqs:
                if r not in seen:
                    seen.add(r)
                    queue.append(r)
        blist = g.build_list()
        mx = {p: v for p, v in blist}
        cache: dict[Mod, list[Mod]] = {main: []}
        post: list[Mod] = []

        def walk(m: Mod) -> None:
            if m in cache:
                return
            cache[m] = self._required(m, keep)
            stack = [(m, iter(cache[m]))]
            while stack:
                cur, it = stack[-1]
                nxt = next(it, None)
                if nxt is None:
                    stack.pop()
                    post.append(cur)
                elif nxt not in cache:
                    cache[nxt] = self._required(nxt, keep)
                    stack.append((nxt, iter(cache[nxt])))

        for m in blist:
            walk(m)
        have: set[Mod] = set()

        def mark(m: Mod) -> None:
            stack = [m]
            while stack:
                x = stack.pop()
                if x in have:
                    continue
                have.add(x)
                stack.extend(cache.get(x, ()))

        out: list[Mod] = []
        done: set[str] = set()
        for p in base:
            if p in done:
                continue
            m = (p, mx.get(p, "none"))
            out.append(m)
            mark(m)
            done.add(p)
        for m in reversed(post):
            if mx.get(m[0]) != m[1] or m in have:
                continue
            out.append(m)
            mark(m)
        out.sort(key=lambda m: m[0])
        return out


def _build_list_error(stack: list[Mod], err: LoadError) -> str:
    """mvs.BuildListError text: the chain of requirements down to the module that failed."""
    while stack and stack[0][1] == "":
        stack = stack[1:]
    if not stack:
        return err.message
    lines = [f"{fmt_mod(m)} requires\n\t" for m in stack[:-1]]
    m = stack[-1]
    if err.actual is not None and err.actual != m:
        last = f"{fmt_mod(m)} (replaced by {fmt_mod(err.actual)}): {err.message}"
    else:
        last = f"{fmt_mod(m)}: {err.message}"
    return "".join(lines) + last
