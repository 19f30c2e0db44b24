"""Go module graphs offline: go.mod/go.work/go.sum parsing, MVS with graph pruning, conflicts with who asked
for what, workspace skew, and drift between a binary's build info and its go.mod (`binlens gomod`)."""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analyzer.errors import AnalyzerError
from analyzer.facts.gomod.modfile import MAX_FILE, ModFile, ModFileError, parse_gomod, parse_gowork
from analyzer.facts.gomod.mvs import (
    DIRTY,
    PRUNED,
    Graph,
    GraphError,
    Loader,
    LoadError,
    MainModule,
    Mod,
    Requirements,
    _build_list_error,
    fmt_mod,
)
from analyzer.facts.gomod.sources import (
    GraphSource,
    ProxySource,
    VendorList,
    escape,
    modcache_source,
    read_bounded,
)
from analyzer.facts.gomod.versions import go_compare, mod_sorted

# loaded module versions from which analyze(background=True) makes the conflicts in a forked child (below this
# they take a few milliseconds, less than the fork; docs/benchmarks.md has the measurements)
FORK_AT = 1000


def read_file(path: Path) -> bytes:
    try:
        data = read_bounded(path, MAX_FILE)
    except FileNotFoundError:
        raise AnalyzerError("no such file", str(path)) from None
    except OSError as e:
        raise AnalyzerError(os.strerror(e.errno or 2), str(path)) from None
    if len(data) > MAX_FILE:
        raise ModFileError(f"file too large (over {MAX_FILE} bytes)", str(path))
    return data


def _goflags_words(goflags: str) -> list[str]:
    try:
        return shlex.split(goflags)
    except ValueError:
        return goflags.split()


def mod_mode_from(goflags: str) -> str | None:
    """-mod=... from GOFLAGS, as the go command reads it (the last one wins)."""
    mode = None
    words = _goflags_words(goflags)
    for i, w in enumerate(words):
        if w.startswith(("-mod=", "--mod=")):
            mode = w.split("=", 1)[1]
        elif w in ("-mod", "--mod") and i + 1 < len(words):
            mode = words[i + 1]
    return mode


def _modfile(goflags: str) -> bool:
    """Whether GOFLAGS sets -modfile (the go command would read another file than DIR/go.mod)."""
    return any(w.lstrip("-").split("=", 1)[0] == "modfile" for w in _goflags_words(goflags) if w.startswith("-"))


@dataclass
class Setup:
    """What `binlens gomod DIR` works on: the main module(s), the module source and the mode."""

    loader: Loader
    graph_source: GraphSource | None = None
    notes: list[str] = field(default_factory=list)


def find_work(directory: Path, env: dict[str, str]) -> Path | None:
    gowork = env.get("GOWORK", "")
    if gowork == "off":
        return None
    if gowork:
        p = Path(gowork)
        if not p.is_absolute():
            raise AnalyzerError("GOWORK must be an absolute path or 'off'", gowork)
        return p
    w = directory / "go.work"
    return w if w.is_file() else None


def source_from(proxy: str | None, modcache: str | None, env: dict[str, str]) -> ProxySource | None:
    if proxy:
        if not Path(proxy).is_dir():
            raise AnalyzerError("not a directory", proxy)
        return ProxySource(proxy)
    if modcache:
        if not Path(modcache).is_dir():
            raise AnalyzerError("not a directory", modcache)
        return modcache_source(modcache)
    for entry in env.get("GOPROXY", "").replace("|", ",").split(","):
        if entry.startswith("file://"):
            return ProxySource(entry[len("file://"):], label=entry.rstrip("/"))
    mc = env.get("GOMODCACHE") or os.path.join(env.get("GOPATH", "").split(os.pathsep)[0]
                                               or os.path.join(env.get("HOME", "/nonexistent"), "go"), "pkg", "mod")
    return modcache_source(mc) if Path(mc).is_dir() else None


def _main_module_checks(mains: list[MainModule], work: ModFile | None, work_path: Path | None, root: Path,
                        local_go: str | None) -> GraphError | None:
    """What the go command checks in the main modules' files before loading anything: the module path, and
    (for its own release's table, with --go) the godebug lines."""
    from analyzer.facts.gomod.modfile import check_godebug, check_import_path, go_quote

    def short(p: str) -> str:
        rel = os.path.relpath(p, root.resolve())
        return rel if len(rel) < len(p) else p

    if local_go:
        if work is not None and work_path is not None:
            for g in work.godebug:
                if problem := check_godebug(g.value, g.extra, local_go):
                    return GraphError(f"error loading go.work:\n{short(str(work_path))}:{g.line}: {problem}",
                                      str(work_path), g.line, kind="godebug")
        else:
            for m in mains:
                for g in m.modfile.godebug:
                    if problem := check_godebug(g.value, g.extra, local_go):
                        return GraphError(f"error loading go.mod:\n{short(m.modfile.name)}:{g.line}: {problem}",
                                          m.modfile.name, g.line, kind="godebug")
    for m in mains:
        if problem := check_import_path(m.path):
            return GraphError(f"malformed module path {go_quote(m.path)}: {problem}", m.modfile.name,
                              m.modfile.module_line, kind="module-path")
    return None


def _sums(files: list[tuple[Path, str]]) -> dict[Mod, list[tuple[str, str]]]:
    """go.sum lines by (path, version): each with the name the go command gives its file in messages."""
    from analyzer.facts.gomod.modfile import parse_gosum

    out: dict[Mod, list[tuple[str, str]]] = {}
    for f, label in files:
        if f.is_file():
            for k, h in parse_gosum(read_file(f), str(f)).items():
                out.setdefault(k, []).append((label, h))
    return out


def setup(directory: str, *, proxy: str | None = None, modcache: str | None = None, graph: str | None = None,
          env: dict[str, str] | None = None, workspace: bool | None = None, tree: str | None = None,
          local_go: str | None = None, cache: Any = None) -> Setup:
    """Read DIR's go.mod, or the go.work that applies (GOWORK, or DIR/go.work), and choose the module source."""
    env = dict(os.environ) if env is None else env
    root = Path(directory)
    if not root.exists():
        raise AnalyzerError("no such file or directory", directory)
    if root.is_file():
        root = root.parent
    explicit_mode = mod_mode_from(env.get("GOFLAGS", ""))
    if explicit_mode not in (None, "", "mod", "readonly", "vendor"):  # (the go command's words)
        raise AnalyzerError(f"-mod={explicit_mode} not supported (can be '', 'mod', 'readonly', or 'vendor')",
                            "GOFLAGS")
    if _modfile(env.get("GOFLAGS", "")):
        raise AnalyzerError("-modfile (an alternate go.mod) is not read by binlens: give the module directory of "
                            "the go.mod to analyse", "GOFLAGS")
    mode = explicit_mode or "readonly"
    work_path = None if workspace is False else find_work(root, env)
    mains: list[MainModule] = []
    work: ModFile | None = None
    fatal: GraphError | None = None
    # what binlens may read: --tree, else the go.work's directory (GOWORK may name one above DIR), else DIR
    given = Path(tree).resolve() if tree else work_path.parent.resolve() if work_path else root.resolve()
    if work_path is not None:
        work = parse_gowork(read_file(work_path), str(work_path))
        wdir = work_path.parent
        for u in work.use:
            d = (wdir / u.value).resolve()
            if not d.is_relative_to(given):  # (the go command would read it; binlens reads what it is given)
                raise ModFileError(f"cannot load module {u.value} listed in go.work file: {d} is outside {given} "
                                   "(binlens reads only the given directories; --tree names a wider one)",
                                   str(work_path), u.line)
            gm = d / "go.mod"
            if not gm.is_file():
                raise ModFileError(f"cannot load module {u.value} listed in go.work file: open {gm}: "
                                   "no such file or directory", str(work_path), u.line)
            f = parse_gomod(read_file(gm), str(gm))
            if not f.module:
                raise ModFileError("no module declaration in go.mod. To specify the module path:\n"
                                   "\tgo mod edit -module=example.com/mod", str(gm))
            if any(m.path == f.module for m in mains):
                raise ModFileError(f"module {f.module} appears multiple times in workspace", str(work_path), u.line)
            mains.append(MainModule(f.module, d, f))
            mv, wv = f.go or "1.16", work.go or "1.18"
            if fatal is None and go_compare(mv, wv) > 0 and go_compare(mv, "1.21") >= 0:
                rel = os.path.relpath(d, root.resolve())
                verb = "lists" if work.go else "implicitly requires"
                shown = rel if len(rel) < len(str(d)) else str(d)  # base.ShortPath
                fatal = GraphError(f"module {shown} listed in go.work "
                                   f"file requires go >= {mv}, but go.work {verb} go {wv}; to download and use go "
                                   f"{mv}:\n\tgo work use", str(work_path), u.line, kind="work")
        if mode == "mod":
            raise AnalyzerError(f'-mod may only be set to readonly or vendor when in workspace mode, but it is set to '
                             f'"{mode}"\n\tRemove the -mod flag to use the default readonly value, \n\tor set '
                             'GOWORK=off to disable workspace mode.', "GOFLAGS")
    else:
        gm = root / "go.mod"
        if not gm.is_file():
            raise AnalyzerError("no go.mod (and no go.work) here", str(root))
        f = parse_gomod(read_file(gm), str(gm))
        if not f.module:
            raise ModFileError("no module declaration in go.mod. To specify the module path:\n"
                               "\tgo mod edit -module=example.com/mod", str(gm))
        mains.append(MainModule(f.module, root.resolve(), f))
    vendor = None
    if work_path is None:
        vfile = mains[0].dir / "vendor" / "modules.txt"
        if explicit_mode is None and (mains[0].dir / "vendor").is_dir() and mains[0].modfile.go and \
                go_compare(mains[0].modfile.go, "1.14") >= 0 and not _vendor_for_workspace(vfile):
            mode = "vendor"  # the go command's default with a vendor directory (setDefaultBuildMod: not for a
            # go.mod without a go line, nor for a vendor directory `go work vendor` made)
        if mode == "vendor" or (vfile.is_file() and not (proxy or modcache or graph)):
            try:
                vendor = VendorList(str(vfile)) if vfile.exists() else None
            except OSError as e:
                raise AnalyzerError(os.strerror(e.errno or 2), str(vfile)) from None
    gsrc = GraphSource(graph) if graph else None
    src = None if gsrc else source_from(proxy, modcache, env)
    if work_path is not None:
        sums = _sums([(m.dir / "go.sum", str(m.dir / "go.sum")) for m in mains]
                     + [(Path(str(work_path) + ".sum"), "go.work.sum")])
    else:
        sums = _sums([(mains[0].dir / "go.sum", "go.sum")])
    note = "; GOTOOLCHAIN=" + env["GOTOOLCHAIN"] if env.get("GOTOOLCHAIN") not in (None, "", "auto") else ""
    fatal = fatal or _main_module_checks(mains, work, work_path, root, local_go)
    if local_go and fatal is None:
        for m in mains:
            if m.modfile.go and go_compare(m.modfile.go, local_go) > 0:
                what = "go.mod" if work_path is None else f"module {m.path}"
                fatal = GraphError(f"{what} requires go >= {m.modfile.go} (running go {local_go}{note})",
                                   m.modfile.name, m.modfile.go_line, kind="toolchain")
    loader = Loader(mains, src, work=work, work_dir=work_path.parent.resolve() if work_path else None,
                    mod_mode=mode, tree=given, sums=sums,
                    local_go=local_go, toolchain_note=note,
                    cache=cache if isinstance(src, ProxySource) else None)
    if fatal is not None and loader.fatal is None:
        loader.fatal = fatal
    loader.vendor = vendor
    loader.dirty_text = _dirty_text(explicit_mode, mode, mains, work_path)
    return Setup(loader, gsrc)


def _dirty_text(explicit: str | None, mode: str, mains: list[MainModule], work_path: Path | None) -> str:
    """The go command's `updates to go.mod needed` in its three forms (goModDirtyError): naming the -mod GOFLAGS
    gives, or the reason a vendor directory beside go.mod was not used (setDefaultBuildMod), or neither."""
    if explicit:
        return f"updates to go.mod needed, disabled by -mod={explicit}; to update it:\n\tgo mod tidy"
    if work_path is None and mains and mode == "readonly" and (mains[0].dir / "vendor").is_dir():
        go = mains[0].modfile.go
        reason = ("Outside workspace mode, but vendor directory is for a workspace."
                  if go and go_compare(go, "1.14") >= 0 else
                  f"Go version in go.mod is {go or 'unspecified'}, so vendor directory was not used.")
        return f"updates to go.mod needed, disabled by -mod=readonly\n\t({reason})\n\tto update it:\n\tgo mod tidy"
    return DIRTY


def _vendor_for_workspace(modules_txt: Path) -> bool:
    """modulesTextIsForWorkspace: vendor/modules.txt that `go work vendor` wrote (its first line, within its first
    512 bytes, `## workspace` among annotations separated by ';')."""
    try:
        first = read_bounded(modules_txt, 511)[:512].split(b"\n", 1)[0].decode("utf-8", "replace")
    except OSError:
        return False
    return first.startswith("## ") and any(e.strip() == "workspace" for e in first[3:].split(";"))


@dataclass
class Result:
    """The go command's view: the build list (`go list -m all`), the edges (`go mod graph`), its error."""

    loader: Loader
    requirements: Requirements
    graph: Graph
    error: GraphError | LoadError | None
    initial: Requirements
    graph_error: GraphError | LoadError | None = None
    initial_graph: Graph | None = None  # before the root update: who asked for what, as go.mod says
    list_graph: Graph | None = None  # `go list -m all`'s graph where it is not `go mod graph`'s (-mod=readonly)

    def build_list(self) -> list[Mod]:
        return [m for m in (self.list_graph or self.graph).build_list() if m[0] not in ("go", "toolchain")]

    def selected(self) -> list[dict[str, Any]]:
        out = []
        for m in self.build_list():
            r = self.loader.display_replacement(m)
            out.append({"path": m[0], "version": m[1], "main": m[1] == "" and m[0] in self.loader.main_paths,
                        "replace": {"path": r[0], "version": r[1]} if r else None})
        return out

    def edges(self) -> list[list[str]]:
        names, required = self.loader.names, self.graph.required
        return [[names[m], names[r]] for m in self.graph.walk_breadth_first() for r in required.get(m, ())]


def compute(s: Setup) -> Result:
    """The module graph as `go mod graph` loads it (always -mod=mod outside a workspace: the roots updated in
    memory), and the error `go list -m all` would stop with under the mode GOFLAGS sets."""
    ld = s.loader
    if s.graph_source is not None:
        return _from_saved_graph(s)
    initial = ld.initial_requirements()
    if not ld.mains:
        empty = GraphError("cannot match \"all\": no modules were found in the current workspace; see 'go help work'",
                           ld.work.name if ld.work else None, kind="workspace")
        return Result(ld, initial, Graph([]), empty, initial, None)
    if ld.fatal is not None:
        return Result(ld, initial, Graph([(m.path, "") for m in ld.mains]), ld.fatal, initial, ld.fatal)
    if ld.vendor is not None and (ld.mod_mode == "vendor" or ld.source is None):
        return _vendor_result(ld, initial)
    mode, ld.mod_mode = ld.mod_mode, "mod"
    err0: GraphError | LoadError | None
    err: GraphError | LoadError | None
    # a requirement on the main module itself: -mod=mod drops it from the roots before loading anything, but
    # -mod=readonly loads it as it is (its replacement's or the source's go.mod), for `go list -m all` only
    main = ld.mains[0].path if not ld.workspace else ""
    own = [(r.path, r.version) for r in ld.mains[0].modfile.require if r.path == main] if main else []
    list_graph: Graph | None = None
    list_err: LoadError | None = None
    try:
        g0, err0 = ld.graph(initial)
        rs, g, err = ld.expand(initial)
        if mode != "mod" and own and initial.pruning == PRUNED:
            list_graph, list_err = ld.read_graph(PRUNED, mod_sorted([*initial.roots, *own]))
        read0 = list(ld.loaded_summaries())  # (the go.mod files the loads read)
    finally:
        ld.mod_mode = mode
    if ld.sum_error is not None:
        err = err0 = ld.sum_error
    graph_error: GraphError | LoadError | None = err
    err = err or list_err
    if mode == "readonly" and not ld.workspace and ld.sum_error is None:
        missing = _sum_missing(ld, list_graph or g0, read0)
        if missing is not None:
            err = missing  # (the graph as go.mod states it is still the one read: err0 stays)
    if err0 is None and err is None and mode != "mod" and not ld.workspace and dirty(ld, initial, rs):
        err = GraphError(ld.dirty_text, ld.mains[0].modfile.name, kind="dirty")
    if err is None and ld.errors:
        err = ld.errors[0]
    if err is None:
        err = _missing_info(ld, g)
    res = Result(ld, rs, g, err, initial)
    res.graph_error = graph_error or (ld.errors[0] if ld.errors else None)
    res.initial_graph = g0 if err0 is None else g
    res.list_graph = list_graph
    return res


def _sum_missing(ld: Loader, g: Graph, read: list[Mod]) -> LoadError | None:
    """Under -mod=readonly (outside a workspace) the go command reads no dependency's go.mod that go.sum has no
    `/go.mod` line for (goModSummary: `missing go.sum entry for go.mod file`): its first such failure, breadth
    first, with the chain of requirements to it, when it comes before any other failure of the load."""
    if ld.sums and not ld.no_sum:
        return None  # (every go.mod read had its line: nothing to look for)
    failing: dict[Mod, LoadError | None] = {}
    sums, summaries = ld.sums, ld.loaded_summaries()
    for m in read:
        if not m[1] or m[0] in ("go", "toolchain"):
            continue
        actual = ld.actual(m)
        if actual[1] and (actual[0], actual[1] + "/go.mod") not in sums:
            failing[m] = LoadError(m, f"missing go.sum entry for go.mod file; to add it:\n\tgo mod download {m[0]}",
                                   actual)
        elif isinstance(summaries.get(m), LoadError):
            failing[m] = None  # (another failure: the load's own error says it)
    if not any(failing.values()):
        return None
    path = g.find_path(lambda m: m in failing)
    first = failing.get(path[-1]) if path else None
    if first is None:
        return None
    return LoadError(first.mod, _build_list_error(path, first), first.actual)


def _vendor_result(ld: Loader, initial: Requirements) -> Result:
    """-mod=vendor (or vendor/modules.txt as the only module source): the graph the go command builds from
    vendor/modules.txt (Requirements.initVendor) and its consistency check against go.mod
    (checkVendorConsistency); the go command refuses `go list -m all` here, binlens lists the vendored build."""
    v = ld.vendor
    assert v is not None
    main = ld.mains[0]
    f = main.modfile
    g = Graph([(main.path, "")])
    problems: list[str] = []

    def problem(m: Mod, detail: str) -> None:
        problems.append(f"\n\t{fmt_mod(m)}: {detail}")

    pre114 = go_compare(f.go or "1.16", "1.14") < 0
    for req in f.require:
        m = (req.path, req.version)
        if m not in v.explicit:
            if pre114:
                if req.path in v.version and v.version[req.path] != req.version:
                    problem(m, f"is explicitly required in go.mod, but vendor/modules.txt indicates "
                               f"{req.path}@{v.version[req.path]}")
            else:
                problem(m, "is explicitly required in go.mod, but not marked as explicit in vendor/modules.txt")
    seen: set[Mod] = set()
    for r in f.replace:
        old = (r.old_path, r.old_version)
        if old in seen:
            continue
        seen.add(old)
        new = (r.new_path, r.new_version)
        vr = v.replacement.get(old)
        if vr is None:
            if pre114 and (not r.old_version or v.version.get(r.old_path) != r.old_version):
                continue
            problem(old, "is replaced in go.mod, but not marked as replaced in vendor/modules.txt")
        elif vr != new:
            problem(old, f"is replaced by {fmt_mod(new)} in go.mod, but marked as replaced by {fmt_mod(vr)} in "
                         "vendor/modules.txt")
    required = {(r.path, r.version) for r in f.require}
    for m in v.modules:
        if m in v.explicit and m not in required:
            problem(m, "is marked as explicit in vendor/modules.txt, but not explicitly required in go.mod")
    for m in v.replaced:
        if ld.replacement(m) is None:
            problem(m, "is marked as replaced in vendor/modules.txt, but not replaced in go.mod")
    err: GraphError | None = None
    if problems:
        err = GraphError(f"inconsistent vendoring in {main.dir}:{''.join(problems)}\n\n\tTo ignore the vendor "
                         "directory, use -mod=readonly or -mod=mod.\n\tTo sync the vendor directory, run:\n\t\t"
                         "go mod vendor", f.name, kind="vendor")
    if initial.pruning == PRUNED:
        roots = dict(initial.roots)
        missing = [m for m in v.modules if roots.get(m[0]) != m[1] and m[0] != main.path]
        if missing and err is None:
            err = GraphError("".join(f"vendored module {fmt_mod(m)} should be required explicitly in go.mod\n"
                                     for m in missing) + DIRTY,
                             f.name, kind="vendor")
        g.require((main.path, ""), initial.roots)
    else:
        node = ("vendor/modules.txt", "")
        g.require((main.path, ""), [*initial.roots, node])
        g.require(node, list(v.modules))
    res = Result(ld, initial, g, err, initial, None)
    res.initial_graph = g
    return res


def dirty(ld: Loader, initial: Requirements, rs: Requirements) -> bool:
    """The go command would rewrite go.mod: a root moves, a line names an excluded or non-canonical version, or
    the toolchain line is one it drops (the go line implies it, or it names no toolchain it can run)."""
    from analyzer.facts.gomod.analysis import toolchain_written

    f = ld.mains[0].modfile
    if f.needs_fix or any((r.path, r.version) in ld.excluded for r in f.require):
        return True
    if f.go and f.toolchain and toolchain_written(ld, f.go, f.toolchain) != f.toolchain:
        return True
    return [m for m in rs.roots] != [m for m in initial.roots]


def _missing_info(ld: Loader, g: Graph) -> GraphError | None:
    """`go list -m all` reads each selected version's .info: one no source has is its error. Not for a replaced
    module: its replacement's .info is read too, but a failure is only that module's `Error` in `go list -m
    -json` (exit 0), whatever the replacement (a module version, a fork, a chain `a => b v1`, `b => a v1`)."""
    src = ld.source
    if not isinstance(src, ProxySource):
        return None
    for m in g.build_list():
        if m[1] == "" or m[0] in ("go", "toolchain") or ld.replacement(m) is not None:
            continue
        if not src.has_info(*m):
            return GraphError(f"{fmt_mod(m)}: reading {src.label}/{escape(m[0])}/@v/{escape(m[1])}.info: "
                              "no such file or directory", kind="missing")
    return None


def _from_saved_graph(s: Setup) -> Result:
    gs = s.graph_source
    assert gs is not None
    roots = gs.roots() or [(s.loader.mains[0].path, "")]
    g = Graph(roots)
    for m in [*roots, *(b for _, b in gs.edges)]:
        if m in gs.required and m not in g.required:
            g.require(m, gs.required[m])
    for a in gs.required:
        if a not in g.required:
            g.is_root.setdefault(a, False)
            g.require(a, gs.required[a])
    rs = Requirements("saved", list(g.required.get(roots[0], [])), set())
    return Result(s.loader, rs, g, None, rs)


__all__ = ["Result", "Setup", "compute", "setup", "parse_gomod", "parse_gowork"]


@contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cycle collector off for a while: a graph of 10,000 modules is hundreds of thousands of tuples,
    lists and dicts (no cycles among them that outlive a run), and the collector's full passes over them took
    0.3 s of a 1 s run (measured on bench/gomod_vs_go.py's universe). Reference counting still frees them."""
    import gc

    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def analyze(directory: str, *, proxy: str | None = None, modcache: str | None = None, graph: str | None = None,
            binaries: list[tuple[str, dict[str, Any]]] | None = None, why_module: str | None = None,
            env: dict[str, str] | None = None, min_go: str | None = None, tree: str | None = None,
            local_go: str | None = None, cache_dir: str | None = None, use_cache: bool = True,
            background: bool = False) -> dict[str, Any]:
    """The `gomod` report of a module directory or workspace (docs/json-report.md, "gomod report"). With
    `background`, the conflicts of a graph of FORK_AT module versions or more are made by a child process while
    this one makes the rest: `report["conflicts"]` is then a forked.Forked (its text() the list's JSON)."""
    env = dict(os.environ) if env is None else env
    s = setup(directory, proxy=proxy, modcache=modcache, graph=graph, env=env, tree=tree, local_go=local_go)
    if use_cache and isinstance(s.loader.source, ProxySource):
        from analyzer.facts.gomod.cache import SummaryCache, default_dir

        s.loader.cache = SummaryCache(Path(cache_dir) if cache_dir else default_dir(env), str(s.loader.source.root))
    try:
        return _analyze(s, env, proxy, modcache, tree, binaries, why_module, min_go, directory, background)
    except GraphError as e:
        if e.kind != "limit":
            raise
        # (binlens' own bound against hostile universes, not the go command's: the run's one-line error)
        main = s.loader.work.name if s.loader.work else s.loader.mains[0].modfile.name if s.loader.mains else directory
        raise AnalyzerError(e.text, e.file or main) from None
    finally:
        if s.loader.cache is not None:
            s.loader.cache.save()


def _analyze(s: Setup, env: dict[str, str], proxy: str | None, modcache: str | None, tree: str | None,
             binaries: list[tuple[str, dict[str, Any]]] | None, why_module: str | None, min_go: str | None,
             directory: str, background: bool = False) -> dict[str, Any]:
    from analyzer.facts.gomod import analysis as an

    res = compute(s)
    ld = res.loader
    blist = res.build_list()
    f0 = ld.work or ld.mains[0].modfile
    report: dict[str, Any] = {
        "directory": directory,
        "workspace": ld.work.name if ld.work else None,
        "main_modules": [{"path": m.path, "dir": str(m.dir), "go_mod": m.modfile.name, "go": m.modfile.go,
                          "toolchain": m.modfile.toolchain} for m in ld.mains],
        "go": f0.go,
        "toolchain": f0.toolchain,
        "mode": ld.mod_mode,
        "source": getattr(ld.source, "label", None) or (s.graph_source.label if s.graph_source else None),
        "error": _error_text(res.error),
        "graph_error": _error_text(res.graph_error),
        "selected": res.selected(),
        "graph": [],  # (made below, while a child makes the conflicts)
    }
    asked = res.initial_graph or res.graph

    def conflicts() -> list[dict[str, Any]]:
        out = an.conflicts(ld, asked, res.initial.roots, res.initial.pruning, res.graph)
        for c in out:
            c["file"], c["line"] = (c["line"] or {}).get("file"), (c["line"] or {}).get("line")
        return out

    if background and len(res.graph.required) >= FORK_AT:
        from analyzer.facts.gomod.forked import Forked

        asked.walk_breadth_first()  # (made once, before the fork: the graph's edges below walk it too)
        report["conflicts"] = Forked(conflicts)
    else:
        report["conflicts"] = conflicts()
    report["graph"] = res.edges()
    report["major_splits"] = an.major_splits(blist)
    report["local_replaces"] = an.local_replaces(ld)
    report["ignored_replaces"] = an.ignored_replaces(ld, blist) if s.graph_source is None else []
    report["retracted"] = an.retracted_deprecated(ld, blist) if s.graph_source is None else []
    loaded = mod_sorted(m for m in res.graph.required if m[1] and m[0] not in ("go", "toolchain"))
    report["go_sum"] = an.gosum_check(ld, loaded) if s.graph_source is None else []
    report["tidy"] = an.tidy_changes(ld, res.initial.roots, res.requirements.roots, blist)
    report["min_go"] = an.min_go_check(ld, min_go)
    report["skew"] = _skew(s, res, env, proxy, modcache, tree) if ld.work and s.graph_source is None else []
    report["drift"] = [an.drift(ld, blist, name, go) for name, go in (binaries or [])]
    report["why"] = an.why(ld, asked, why_module, res.graph) if why_module else None
    # flat lists for the rules (each finding one item, with the file and line it points at)
    report["drift_changes"] = [{**c, "binary_file": d["binary"], "file": ld.mains[0].modfile.name,
                                "line": ld.mains[0].modfile.line_of_require(c["module"]) or None}
                               for d in report["drift"] for c in d["changes"] + d["sums"]]
    report["toolchain_drift"] = [{**t, "binary_file": d["binary"]} for d in report["drift"] for t in d["toolchain"]]
    return report


def _error_text(e: Any) -> dict[str, Any] | None:
    if e is None:
        return None
    text = getattr(e, "text", None) or getattr(e, "message", None) or str(e)
    return {"message": "go: " + text, "file": getattr(e, "file", None), "line": getattr(e, "line", 0) or None,
            "kind": getattr(e, "kind", "graph")}


def _skew(s: Setup, res: Result, env: dict[str, str], proxy: str | None, modcache: str | None,
          tree: str | None) -> list[dict[str, Any]]:
    from analyzer.facts.gomod import analysis as an

    members = []
    for m in s.loader.mains:
        sub = setup(str(m.dir), proxy=proxy, modcache=modcache, env={**env, "GOWORK": "off"},
                    tree=tree or str(s.loader.tree), cache=s.loader.cache)
        # a member alone is loaded as the go command would in its directory (go mod graph semantics)
        r = compute(sub)
        members.append((m.path, m.modfile, r.build_list(), r.graph))
    return an.skew(res.build_list(), res.graph, members)
