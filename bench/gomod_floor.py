#!/usr/bin/env python3
"""The floor under `binlens gomod` in Python: the least work that writes its report's build list and conflicts.

    python bench/gomod_floor.py REQUIREMENTS.marshal OUT [--graph]

bench/gomod_vs_go.py times it beside the go command and binlens. REQUIREMENTS is a marshal file that
gomod_vs_go.py writes once (untimed) from binlens's loaded graph: the main module's requirements and every
loaded module version's requirement list, already parsed — less than binlens reads (its cache of parsed go.mod
files is checked file by file against each file's size and mtime: this file is not). This program then does only
what any program writing the report must: one breadth-first walk that takes the maximum version of every path
(versions compared as integer triples: the bench's universe has only vX.Y.Z), records who asked for every
version and the first asker of every module (for the shortest paths), and writes the build list and every
conflict (each version, its askers, one shortest path, the winner) as compact JSON; with --graph, the
`go mod graph` edges too. No pruning, replacement, exclusion or go.sum check, no validation, no rules, no
command-line framework: it is not a correct `gomod`, only a lower bound on the time of one. It imports nothing
but the standard library's json and marshal.
"""

from __future__ import annotations

import json
import marshal
import sys


def _key(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v[1:].split("."))


def main() -> None:
    data, out, graph = sys.argv[1], sys.argv[2], "--graph" in sys.argv[3:]
    with open(data, "rb") as fh:
        main_path, roots, required = marshal.loads(fh.read())
    main = (main_path, "")
    req: dict[tuple[str, str], list[tuple[str, str]]] = {main: roots}
    order, seen, i = [main], {main}, 0
    selected: dict[str, str] = {}
    first: dict[tuple[str, str], tuple[str, str] | None] = {main: None}
    asked: dict[str, dict[str, list[tuple[str, str]]]] = {}
    while i < len(order):
        m = order[i]
        i += 1
        reqs = req.get(m)
        if reqs is None:
            reqs = req[m] = required.get(m, ())
        for r in reqs:
            p, v = r
            cur = selected.get(p)
            if cur is None or _key(cur) < _key(v):
                selected[p] = v
            by_version = asked.get(p)
            if by_version is None:
                asked[p] = {v: [m]}
            elif v in by_version:
                by_version[v].append(m)
            else:
                by_version[v] = [m]
            if r not in seen:
                seen.add(r)
                first[r] = m
                order.append(r)
    names = {m: f"{m[0]}@{m[1]}" if m[1] else m[0] for m in order}
    chains: dict[tuple[str, str], list[str]] = {}

    def chain(m: tuple[str, str]) -> list[str]:
        c = chains.get(m)
        if c is None:
            parent = first[m]
            c = chains[m] = (chain(parent) if parent is not None else []) + [names[m]]
        return c

    conflicts = []
    for p in sorted(asked):
        by_version = asked[p]
        if len(by_version) < 2:
            continue
        s = selected[p]
        requested = [{"version": v, "by": [names[m] for m in by_version[v]],
                      "path": chain(by_version[v][0]) + [f"{p}@{v}"], "selected": v == s}
                     for v in sorted(by_version, key=_key)]
        winners = by_version.get(s, [])
        conflicts.append({"module": p, "selected": s, "requested": requested,
                          "why": {"version": s, "by": [names[m] for m in winners],
                                  "path": chain(winners[0]) + [f"{p}@{s}"] if winners else []}})
    report = {"selected": [{"path": p, "version": selected[p]} for p in sorted(selected)], "conflicts": conflicts}
    if graph:
        report["graph"] = [[names[m], names[r]] for m in order for r in req[m]]
    with open(out, "w") as fh:
        fh.write(json.JSONEncoder(separators=(",", ":")).encode(report))


if __name__ == "__main__":
    main()
