"""What the go command does not say about a module graph: every module wanted at several versions with who
asked for each and why the selected one won, versions only the unpruned graph shows, major-version splits,
dependencies' replaces the main module ignores, local-path replaces, retracted or deprecated versions
selected, go.sum gaps and mismatches, workspace skew (a module selected at one version by the workspace and
another by a member alone: compiled twice), and drift between a binary's build info and the build list."""

from __future__ import annotations

import os
import re
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from analyzer.facts.gomod.modfile import ModFileError, canonical_version, parse_gomod, parse_gosum
from analyzer.facts.gomod.mvs import UNPRUNED, Graph, Loader, LoadError, Mod, Names, fmt_mod
from analyzer.facts.gomod.sources import ProxySource, SourceError, escape, read_bounded
from analyzer.facts.gomod.versions import (
    from_toolchain,
    go_compare,
    go_lang,
    semver_compare,
    semver_prerelease,
    versions_sorted,
)

MAX_ZIP = 500 << 20  # the go command's own limit on a module zip
MAX_SUM = 64 << 20  # a go.sum larger than this is cut (and its last line then reads as malformed)


def _requests(g: Graph) -> dict[str, dict[str, list[Mod]]]:
    """path → version → the loaded modules whose go.mod requires that version, in graph (BFS) order."""
    required = g.required
    return _askers((m, required.get(m, ())) for m in g.walk_breadth_first())


def _askers(lists: Iterator[tuple[Mod, Sequence[Mod]]]) -> dict[str, dict[str, list[Mod]]]:
    """path → version → the modules (in the order given) whose requirement lists name that version."""
    out: dict[str, dict[str, list[Mod]]] = {}
    for m, reqs in lists:
        for path, version in reqs:
            by_version = out.get(path)
            if by_version is None:
                out[path] = {version: [m]}
            else:
                askers = by_version.get(version)
                if askers is None:
                    by_version[version] = [m]
                else:
                    askers.append(m)
    return out


def _unpruned_requests(ld: Loader, roots: list[Mod]) -> dict[str, dict[str, list[Mod]]]:
    """_requests of the unpruned graph (readModGraph with every module unpruned), without building that Graph:
    the full requirement closure from the main module, breadth first, through the summaries loaded already."""
    return _askers(_closure(ld, roots))


def _closure(ld: Loader, roots: list[Mod]) -> Iterator[tuple[Mod, Sequence[Mod]]]:
    main = (ld.mains[0].path, "")
    seen = {main}
    queue = deque([main])
    known = ld.loaded_summaries()
    while queue:
        m = queue.popleft()
        if m is main:
            reqs = roots
        else:
            s = known.get(m) or ld.summary(m)
            if isinstance(s, LoadError):
                continue
            reqs = s.require
        yield m, reqs
        for r in reqs:
            if r not in seen and r[1] != "none":
                seen.add(r)
                queue.append(r)


def shortest_paths(g: Graph, names: Names) -> Callable[[Mod], list[str] | None]:
    """One shortest chain of requirements from a main module to a module the graph reaches, as names (None when
    it does not reach it); each chain made once, from its first asker's."""
    parent = g.first_askers()
    chains: dict[Mod, list[str]] = {}

    def chain(m: Mod) -> list[str] | None:
        if m not in parent:
            return None
        todo: list[Mod] = []
        cur: Mod | None = m
        while cur is not None and cur not in chains:
            todo.append(cur)
            cur = parent[cur]
        c = chains[cur] if cur is not None else []
        for t in reversed(todo):
            c = chains[t] = c + [names[t]]
        return c

    return chain


def conflicts(ld: Loader, g: Graph, rs_roots: list[Mod], pruning: str,
              final: Graph | None = None) -> list[dict[str, Any]]:
    """Every module path required at more than one version in the loaded graph: each version, who asked for
    it, one shortest path from a main module to the asker, the selected version and what made it win."""
    req = _requests(g)
    names = ld.names
    chain = shortest_paths(g, names)
    unpruned: dict[str, dict[str, list[Mod]]] = {}
    if pruning != UNPRUNED and not ld.workspace:
        # (only the versions the loaded graph does not name are wanted from the unpruned view: only modules whose
        # requirements it did not load ask for them, so only theirs are counted)
        loaded = g.required
        walked = {m for m in g.walk_breadth_first() if m in loaded}
        unpruned = _askers(item for item in _closure(ld, rs_roots) if item[0] not in walked)
    chosen = (final or g).selected
    out = []
    for path in sorted(set(req) | set(unpruned) if unpruned else req):
        if path == "go" or path == "toolchain":
            continue
        versions = req.get(path, {})
        more = unpruned.get(path)
        extra = {v: by for v, by in more.items() if v not in versions} if more else {}
        if len(versions) + len(extra) < 2:
            continue
        selected = chosen.get(path, "none")
        requests = []
        for v in versions_sorted(path, versions):
            by = versions[v]
            requests.append({
                "version": v,
                "by": [names[m] for m in by],
                "path": (chain(by[0]) or [names[by[0]]]) + [names[(path, v)]],
                "selected": v == selected,
            })
        winners = versions.get(selected, [])
        out.append({
            "module": path,
            "selected": selected,
            "requested": requests,
            "why": {"version": selected, "by": [names[m] for m in winners],
                    "path": (chain(winners[0]) or []) + [names[(path, selected)]] if winners else []},
            "unpruned_only": [{"version": v, "by": [names[m] for m in extra[v]]}
                              for v in versions_sorted(path, extra)],
            "line": _main_line(ld, path),
        })
    return out


def _main_line(ld: Loader, path: str) -> dict[str, Any] | None:
    for m in ld.mains:
        line = m.modfile.line_of_require(path)
        if line:
            return {"file": m.modfile.name, "line": line}
    return None


def why(ld: Loader, g: Graph, module: str, final: Graph | None = None) -> dict[str, Any]:
    """`--why MODULE`: the selected version, the requirement that made it win and the path to it."""
    path = module.split("@")[0]
    req = _requests(g).get(path, {})
    selected = (final or g).sel(path)
    winners = req.get(selected, [])
    return {
        "module": path,
        "selected": None if selected == "none" else selected,
        "by": [fmt_mod(m) for m in winners],
        "path": (shortest_paths(g, ld.names)(winners[0]) or []) + [fmt_mod((path, selected))] if winners else [],
        "requested": [{"version": v, "by": [fmt_mod(m) for m in req[v]]} for v in versions_sorted(path, req)],
    }


_MAJOR = re.compile(r"^(.*?)(/v[2-9][0-9]*|/v[1-9][0-9]+|\.v[0-9]+)$")


def major_splits(build_list: list[Mod]) -> list[dict[str, Any]]:
    """Module paths of one project at several major versions (x and x/v2 both in the build)."""
    groups: dict[str, list[Mod]] = {}
    for p, v in build_list:
        m = _MAJOR.match(p)
        groups.setdefault(m[1] if m else p, []).append((p, v))
    return [{"module": base, "versions": [fmt_mod(m) for m in mods]}
            for base, mods in sorted(groups.items()) if len(mods) > 1]


def _dep_gomod(ld: Loader, m: Mod, words: tuple[bytes, ...] = ()) -> Any:
    """A dependency's go.mod with every directive kept; None when it cannot be read, or when it has none of
    `words` (a cheap test before a full parse)."""
    if ld.source is None or not m[1]:
        return None
    flags = ld.gomod_flags.get(m)
    if flags is not None and words and not (flags[0] if words == (b"replace",) else flags[1]):
        return None  # the cache says this go.mod has no such line: not read again
    try:
        data = ld.read_gomod(m)
        if words and not any(w in data for w in words):
            return None
        return parse_gomod(data, f"{fmt_mod(m)}/go.mod", strict=False, keep_all=True)
    except (SourceError, ModFileError):
        return None


def ignored_replaces(ld: Loader, build_list: list[Mod]) -> list[dict[str, Any]]:
    """Replaces in selected dependencies' go.mod files: the go command ignores them, silently. Each says
    whether the main module (or go.work) mirrors it."""
    out = []
    selected = dict(build_list)
    for m in build_list:
        if not m[1] or m[0] in ld.main_paths:
            continue
        actual = ld.replacement(m)
        f = _dep_gomod(ld, actual[0] if actual and actual[0][1] else m, (b"replace",))
        if f is None:
            continue
        for r in f.replace:
            target = (r.old_path, r.old_version)
            probe = (r.old_path, r.old_version or selected.get(r.old_path, ""))
            mine = ld.replacement(probe) if probe[1] else None
            new = (r.new_path, r.new_version)
            out.append({
                "module": fmt_mod(m),
                "old": fmt_mod(target),
                "new": fmt_mod(new),
                "line": r.line,
                "mirrored": mine is not None and mine[0] == new,
                "main_replacement": fmt_mod(mine[0]) if mine is not None else None,
            })
    return out


def local_replaces(ld: Loader) -> list[dict[str, Any]]:
    """Replaces to a directory in the main module(s) or go.work: their content is in no go.sum and no build
    info records it (a binary shows `(devel)` for them)."""
    out = []
    files = ([ld.work] if ld.work else []) + [m.modfile for m in ld.mains]
    for f in files:
        assert f is not None
        for r in f.replace:
            if r.is_dir:
                out.append({"old": fmt_mod((r.old_path, r.old_version)), "dir": r.new_path, "file": f.name,
                            "line": r.line})
    return out


def _latest(ld: Loader, path: str) -> str | None:
    """The latest version of a module in the source (releases before pre-releases), as @latest finds it."""
    src = ld.source
    if not isinstance(src, ProxySource):
        return None
    cache, file = ld.cache, None
    if cache is not None:  # (the answer kept with the parsed go.mod files, by the list file's size and mtime)
        try:
            file = src.list_file(path)
            st = os.stat(file)
        except (OSError, SourceError):
            file = None
        else:
            hit = cache.get(file, st, 1)
            if hit is not None:
                return hit[0]
    vs = [canonical_version(v) for v in src.versions(path)]
    vs = [v for v in vs if v]
    releases = [v for v in vs if not semver_prerelease(v)]
    pool = releases or vs
    best = None
    if pool:
        best = pool[0]
        for v in pool[1:]:
            if semver_compare(v, best) > 0:
                best = v
    if file is not None:
        cache.put(file, st, (best,))
    return best


def retracted_deprecated(ld: Loader, build_list: list[Mod]) -> list[dict[str, Any]]:
    """Selected versions retracted by the module's latest go.mod, and modules whose latest go.mod says
    `// Deprecated:` (the go command reports these only in `go list -m -u -retracted`)."""
    out = []
    for p, v in build_list:
        if not v or p in ld.main_paths:
            continue
        if ld.replacement((p, "")) is not None:
            continue  # a module replaced at every version is never checked, as in the go command
        latest = _latest(ld, p)
        if latest is None:
            continue
        found = _latest_gomod(ld, (p, latest))
        if found is None:
            continue
        retracts, deprecated = found
        for low, high, rationale in retracts:
            if semver_compare(low, v) <= 0 <= semver_compare(high, v):
                out.append({"module": p, "version": v, "kind": "retracted", "latest": latest,
                            "interval": [low, high], "rationale": rationale})
                break
        if deprecated:
            out.append({"module": p, "version": v, "kind": "deprecated", "latest": latest,
                        "rationale": deprecated})
    return out


def _latest_gomod(ld: Loader, m: Mod) -> tuple[list[tuple[str, str, str]], str] | None:
    """The retractions and deprecation of a module's latest version m, from its go.mod, or from its
    replacement's where the main module replaces that version (queryLatestVersionIgnoringRetractions: another
    module version's go.mod, or a directory's); None where there is none to read, or nothing of either."""
    r = ld.replacement(m)
    if r is not None and not r[0][1]:
        s = ld.raw_summary(ld.actual(m))
        return None if isinstance(s, LoadError) else (s.retract, s.deprecated)
    f = _dep_gomod(ld, r[0] if r is not None else m, (b"retract", b"Deprecated"))
    return None if f is None else ([(x.low, x.high, x.rationale) for x in f.retract], f.deprecated)


def h1(files: list[tuple[str, bytes]]) -> str:
    """dirhash.Hash1: sha256 of the lines "<hex sha256>  <name>\\n" over the files sorted by name, base64."""
    import base64
    import hashlib

    summary = "".join(f"{hashlib.sha256(d).hexdigest()}  {n}\n" for n, d in sorted(files))
    return "h1:" + base64.b64encode(hashlib.sha256(summary.encode()).digest()).decode()


def _zip_hash(src: ProxySource, m: Mod) -> str | None:
    import zipfile

    f = src.root / escape(m[0]) / "@v" / (escape(m[1]) + ".zip")
    try:
        if f.stat().st_size > MAX_ZIP:
            return None
        with zipfile.ZipFile(f) as z:
            total, files = 0, []
            for info in z.infolist():
                if info.is_dir():
                    continue
                total += info.file_size
                if total > MAX_ZIP:
                    return None
                files.append((info.filename, z.read(info)))
        return h1(files)
    except (OSError, zipfile.BadZipFile, RuntimeError, ValueError):
        return None


def gosum_check(ld: Loader, loaded: list[Mod]) -> list[dict[str, Any]]:
    """go.sum against the module versions whose go.mod the go command reads (the loaded graph): a missing
    `/go.mod` line (a -mod=readonly build fails) and hashes that differ from the module source's content
    (recomputed: h1 of go.mod, and of the zip where go.sum has its line)."""
    out: list[dict[str, Any]] = []
    src = ld.source if isinstance(ld.source, ProxySource) else None
    # a workspace checks the union of its members' go.sum files and go.work.sum (as the go command does)
    groups = [[main.dir / "go.sum"] for main in ld.mains]
    if ld.work is not None:
        groups = [[main.dir / "go.sum" for main in ld.mains] + [Path(ld.work.name + ".sum")]]
    for files in groups:
        sums: dict[tuple[str, str], str] = {}
        sumfile = files[-1]
        try:
            for f in files:
                if f.is_file():
                    for k, v in parse_gosum(read_bounded(f, MAX_SUM), str(f)).items():
                        sums.setdefault(k, v)
        except (OSError, ModFileError) as e:
            out.append({"module": None, "kind": "unreadable", "file": str(sumfile), "detail": str(e)})
            continue
        main_paths, known_h1 = ld.main_paths, ld.gomod_h1
        for m in loaded:
            if not m[1] or m[0] in main_paths:  # (GONOSUMDB/GOPRIVATE spare no module its go.sum line: they
                # name what the checksum database is not asked about; -mod=readonly still needs the line)
                continue
            r = ld.replacement(m)
            actual = r[0] if r else m
            if not actual[1]:
                continue  # a directory: no sum
            key = (actual[0], actual[1] + "/go.mod")
            have = sums.get(key)
            if have is None:
                # a zip line is needed only for modules that provide packages (binlens does not load packages):
                # only a missing go.mod line of a module whose go.mod is read is a gap
                out.append({"module": fmt_mod(m), "kind": "missing", "file": str(sumfile),
                            "key": f"{key[0]} {key[1]}"})
            elif src is not None:
                want = known_h1.get(actual)
                if want is None:
                    try:
                        want = ld.h1_of(actual)
                    except SourceError:
                        want = have
                if want != have:
                    out.append({"module": fmt_mod(m), "kind": "mismatch", "file": str(sumfile),
                                "key": f"{key[0]} {key[1]}", "go_sum": have, "source": want})
            have = sums.get(actual)
            if have is not None and src is not None:
                zip_h1 = _zip_hash(src, actual)
                if zip_h1 is not None and zip_h1 != have:
                    out.append({"module": fmt_mod(m), "kind": "mismatch", "file": str(sumfile),
                                "key": f"{actual[0]} {actual[1]}", "go_sum": have, "source": zip_h1})
    return out


def skew(ws_list: list[Mod], ws_graph: Graph, members: list[tuple[str, Any, list[Mod], Graph]]) -> list[dict]:
    """A workspace build and a member's own build (GOWORK=off) selecting a module at different versions:
    `go build` in the member directory and in the workspace compiles its packages (and every package that
    imports them) twice, at two versions."""
    ws = dict(ws_list)
    ws_req = _requests(ws_graph)
    out = []
    for member, modfile, mlist, mgraph in members:
        mreq = _requests(mgraph)
        for p, v in mlist:
            if not v or p not in ws or ws[p] in ("", v):
                continue
            out.append({
                "module": p,
                "workspace": ws[p],
                "member": member,
                "member_version": v,
                "workspace_by": [fmt_mod(m) for m in ws_req.get(p, {}).get(ws[p], [])],
                "member_by": [fmt_mod(m) for m in mreq.get(p, {}).get(v, [])],
                "file": modfile.name,
                "line": modfile.line_of_require(p) or modfile.module_line,
            })
    return out


def drift(ld: Loader, build_list: list[Mod], binary: str, go: dict[str, Any]) -> dict[str, Any]:
    """A binary's build info against the build list the directory selects now."""
    selected = dict(build_list)
    changes: list[dict[str, Any]] = []
    deps = go.get("deps") or []
    seen = set()
    for d in deps:
        p, v = d["path"], d["version"]
        seen.add(p)
        now = selected.get(p)
        rep = d.get("replace")
        cur = ld.display_replacement((p, now)) if now else None
        if now is None:
            changes.append({"module": p, "kind": "removed", "binary": v, "now": None})
            continue
        if now != v:
            changes.append({"module": p, "kind": "version", "binary": v, "now": now})
        brep = (rep["path"], rep["version"] if rep["version"] != "(devel)" else "") if rep else None
        if (brep or None) != (cur or None):
            changes.append({"module": p, "kind": "replace", "binary": fmt_mod(brep) if brep else None,
                            "now": fmt_mod(cur) if cur else None})
    direct = {r.path for m in ld.mains for r in m.modfile.require if not r.indirect}
    for p in sorted(direct - seen):
        if p in selected:
            changes.append({"module": p, "kind": "added", "binary": None, "now": selected[p]})
    sums = _sum_drift(ld, deps)
    version = (go.get("version") or "").split(" ")[0]
    gov = version[2:] if version.startswith("go") else ""
    toolchain = []
    for m in ld.mains:
        f = m.modfile
        if gov and f.go and go_compare(f.go, gov) > 0:
            toolchain.append({"kind": "go-line-newer", "file": f.name, "line": f.go_line, "directive": f.go,
                              "binary": version})
        if gov and f.toolchain and f.toolchain.startswith("go") and f.toolchain[2:] != gov:
            toolchain.append({"kind": "toolchain-differs", "file": f.name, "line": f.toolchain_line,
                              "directive": f.toolchain, "binary": version})
    main = go.get("main") or {}
    return {
        "binary": binary,
        "main_module": main.get("path"),
        "same_main_module": main.get("path") in ld.main_paths,
        "go_version": version or None,
        "changes": sorted(changes, key=lambda c: (c["module"], c["kind"])),
        "sums": sums,
        "toolchain": toolchain,
    }


def _sum_drift(ld: Loader, deps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for main in ld.mains:
        f = main.dir / "go.sum"
        try:
            sums = parse_gosum(read_bounded(f, MAX_SUM), str(f)) if f.is_file() else {}
        except (OSError, ModFileError):
            continue
        for d in deps:
            rep = d.get("replace")
            m = (rep["path"], rep["version"]) if rep else (d["path"], d["version"])
            have_sum = (rep or d).get("sum") or ""
            if not have_sum or not m[1] or m[1] == "(devel)":
                continue
            now = sums.get(m)
            if now is None:
                out.append({"module": fmt_mod(m), "kind": "not-in-go.sum", "binary": have_sum, "file": str(f)})
            elif now != have_sum:
                out.append({"module": fmt_mod(m), "kind": "mismatch", "binary": have_sum, "go_sum": now,
                            "file": str(f)})
    return out


def tidy_changes(ld: Loader, initial_roots: list[Mod], roots: list[Mod],
                 build_list: list[Mod] | None = None) -> list[dict[str, Any]]:
    """The go.mod lines `go` rewrites under -mod=mod (a CI build with -mod=readonly fails instead). A go.mod
    without a go line (read as go 1.16, unpruned) gets one naming the running go's version (`--go`), and, as
    the graph is pruned from then on, every module of the build list as a requirement (modload's
    addGoStmt and convertPruning: "promote every module in the build list to a root")."""
    if ld.workspace:
        return []
    f = ld.mains[0].modfile
    before: dict[str, str | None] = {}
    for p, v in initial_roots:
        before.setdefault(p, v)
    after: dict[str, str | None] = dict(roots)
    out: list[dict[str, Any]] = []
    if not f.go and build_list is not None:
        before["go"] = after["go"] = None  # (no line: the go@1.16 root binlens reads it as is no line's)
        out.append({"module": "go", "from": None, "to": ld.local_go, "line": f.module_line, "file": f.name,
                    "reason": "no go line: the go command adds one naming its own version" +
                              ("" if ld.local_go else " (give --go to name it)")})
        if ld.local_go is None or go_compare(ld.local_go, "1.17") >= 0:
            after = {p: v for p, v in build_list if p not in ld.main_paths}
            # (the new go@ root requires its own toolchain: the toolchain root is the higher of the two)
            tc, own = f.toolchain, f"go{ld.local_go}" if ld.local_go else None
            after["go"], after["toolchain"] = None, own if own and (not tc or go_compare(
                from_toolchain(own), from_toolchain(tc) or "0") > 0) else tc
    after["toolchain"] = toolchain_written(ld, after.get("go") or f.go or ld.local_go, after.get("toolchain"))
    before["toolchain"] = f.toolchain or None
    moved: set[str] = set()
    for r in f.require:
        if r.path == ld.mains[0].path:
            out.append({"module": r.path, "from": r.version, "to": None, "line": r.line, "file": f.name,
                        "reason": "a requirement on the main module itself: the line is dropped"})
        elif (r.path, r.version) in ld.excluded:
            to = after.get(r.path) if r.path not in before else None
            out.append({"module": r.path, "from": r.version, "to": to, "line": r.line, "file": f.name,
                        "reason": "excluded version: the requirement moves to the version the graph selects"
                                  if to else "excluded version: the line is dropped"})
            if to:
                moved.add(r.path)  # (its line now names the version the graph selects: one change, not two)
    for p in sorted(set(before) | set(after)):
        b, a = before.get(p), after.get(p)
        if b == a or p in moved:
            continue
        line = f.go_line if p == "go" else (f.toolchain_line if p == "toolchain" else f.line_of_require(p))
        reason = ("a dependency needs a newer go" if p == "go" else
                  "the toolchain line as the go command writes it with the go line (one the go line implies, or "
                  "one it cannot run, is dropped)" if p == "toolchain" else
                  "every module of the build list a requirement, the graph pruned now that go.mod names a go "
                  "version" if not f.go else "the graph selects a higher version" if a else "redundant root dropped")
        out.append({"module": p, "from": b, "to": a, "line": line, "file": f.name, "reason": reason})
    if f.needs_fix:
        out.append({"module": None, "from": None, "to": None, "line": 0, "file": f.name,
                    "reason": "a version is not canonical (v1.2 for v1.2.0)"})
    return out


def toolchain_written(ld: Loader, go: str | None, root: str | None) -> str | None:
    """The toolchain line the go command writes into go.mod with the go line `go` (UpdateGoModFromReqs): none
    where the go line implies it or it names no toolchain the go command can run; and, where the go command that
    runs is older than Go 1.25 (`--go`: binlens cannot know it otherwise, and Go 1.25 stopped doing so), its own
    release where it writes a new go line of 1.21 or later and the toolchain is older than itself."""
    f = ld.mains[0].modfile
    if not go:
        return f.toolchain or None
    toolchain = root or f"go{go}"
    local = ld.local_go
    if local and go != f.go and go_compare(local, "1.25") < 0 and go_compare(go, "1.21") >= 0 \
            and go_lang(local) != local and go_compare(local, from_toolchain(toolchain) or "0") > 0:
        toolchain = f"go{local}"
    if toolchain == f"go{go}" or not from_toolchain(toolchain) or go_compare(from_toolchain(toolchain), "1.21") < 0:
        return None
    return toolchain


def min_go_check(ld: Loader, min_go: str | None) -> list[dict[str, Any]]:
    if not min_go:
        return []
    out = []
    for f in ([ld.work] if ld.work else []) + [m.modfile for m in ld.mains]:
        assert f is not None
        if f.toolchain and f.toolchain.startswith("go") and go_compare(f.toolchain[2:], min_go) < 0:
            out.append({"file": f.name, "line": f.toolchain_line, "directive": f.toolchain, "min_go": min_go})
    return out


__all__ = ["conflicts", "drift", "gosum_check", "ignored_replaces", "local_replaces", "major_splits",
           "retracted_deprecated", "skew", "tidy_changes", "toolchain_written", "why", "Path"]
