"""The `binlens gomod` views: a text summary with the conflict table (and `--why`), and DOT of the graph."""

from __future__ import annotations

import json
from typing import Any


def _mod(m: dict[str, Any]) -> str:
    s = m["path"] + (f" {m['version']}" if m["version"] else "")
    if m.get("replace"):
        r = m["replace"]
        s += f" => {r['path']}" + (f" {r['version']}" if r["version"] else "")
    return s


def render_text(rep: dict[str, Any], findings: list[dict[str, Any]]) -> str:
    out: list[str] = []
    mains = ", ".join(m["path"] for m in rep["main_modules"])
    where = f"workspace {rep['workspace']}" if rep["workspace"] else rep["main_modules"][0]["go_mod"]
    out.append(f"{where}: {mains}")
    out.append(f"  source: {rep['source'] or '(none)'}   mode: -mod={rep['mode']}")
    nonmain = [m for m in rep["selected"] if not m["main"]]
    out.append(f"  build list: {len(nonmain)} module(s), {len(rep['graph'])} requirement edge(s)")
    if rep["error"]:
        out.append("  error: " + rep["error"]["message"].replace("\n", "\n    "))
    if rep.get("why"):
        w = rep["why"]
        out.append("")
        if w["selected"] is None:
            out.append(f"why {w['module']}: not in the module graph")
        else:
            by = ", ".join(w["by"]) or "(root)"
            out.append(f"why {w['module']} {w['selected']}: required at that version by {by}")
            if w["path"]:
                out.append("  " + " -> ".join(w["path"]))
            for r in w["requested"]:
                out.append(f"  requested {r['version']} by {', '.join(r['by'])}")
    if rep["conflicts"]:
        out.append("")
        out.append("module versions requested (selected marked *):")
        width = max(len(c["module"]) for c in rep["conflicts"])
        for c in rep["conflicts"]:
            rows = [("*" if r["selected"] else " ", r["version"], ", ".join(r["by"]), "") for r in c["requested"]]
            rows += [(" ", r["version"], ", ".join(r["by"]), " (unpruned graph only)") for r in c["unpruned_only"]]
            for i, (mark, version, by, tail) in enumerate(rows):
                name = c["module"] if i == 0 else ""
                out.append(f"  {name:<{width}}  {mark}{version:<12} by {by}{tail}")
    if rep["skew"]:
        out.append("")
        out.append("workspace skew (compiled twice: once per version):")
        for s in rep["skew"]:
            out.append(f"  {s['module']}: workspace {s['workspace']} ({', '.join(s['workspace_by'])}); "
                       f"{s['member']} alone {s['member_version']} ({', '.join(s['member_by'])})")
    for d in rep["drift"]:
        out.append("")
        out.append(f"{d['binary']} ({d['go_version']}, {d['main_module']}) against the build list:")
        if not (d["changes"] or d["sums"] or d["toolchain"]):
            out.append("  no drift")
        for c in d["changes"] + d["sums"]:
            out.append(f"  {c['module']}: {c['kind']}: binary {c.get('binary')}, now {c.get('now', c.get('go_sum'))}")
        for t in d["toolchain"]:
            out.append(f"  {t['file']}:{t['line']}: {t['directive']} ({t['kind']}, binary {t['binary']})")
    if findings:
        out.append("")
        for f in findings:
            if not f.get("suppressed"):
                out.append(f"{f['severity']}: {f['rule']} {f['message']}")
    return "\n".join(out) + "\n"


def _q(s: str) -> str:
    return json.dumps(s)


def render_dot(rep: dict[str, Any], module: str | None = None) -> str:
    """The requirement graph in DOT, as modgraphviz draws it: selected versions green, others grey;
    with MODULE, only the edges into and out of that module's versions."""
    selected = {m["path"]: m["version"] for m in rep["selected"]}
    edges = rep["graph"]
    if module:
        edges = [e for e in edges if e[0].split("@")[0] == module or e[1].split("@")[0] == module]
    nodes = sorted({n for e in edges for n in e})
    out = ["digraph gomod {", "  node [shape=box];"]
    for n in nodes:
        path, _, version = n.partition("@")
        chosen = path in selected and (selected[path] == version or not version)
        out.append(f"  {_q(n)} [color={'green' if chosen else 'gray'}];")
    for a, b in edges:
        out.append(f"  {_q(a)} -> {_q(b)};")
    out.append("}")
    return "\n".join(out) + "\n"
