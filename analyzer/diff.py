"""`binlens diff OLD NEW`: what changed between two binaries, or between two JSON reports of releases.

Artifacts of two reports are paired by path, else by file name (releases
usually live in different folders); fat slices by their `[arch]` suffix.
"""

from __future__ import annotations

import json
import os
from typing import Any

from analyzer.errors import AnalyzerError


def _key(entry: dict[str, Any]) -> str:
    return os.path.basename(entry["path"])


def load_side(path: str, request: Any) -> list[dict[str, Any]]:
    """Report entries for one side: a JSON report as it is, or a binary analyzed now."""
    from analyzer import pipeline

    try:
        with open(path, "rb") as f:
            head = f.read(1)
    except OSError as e:
        raise AnalyzerError(f"cannot read: {e.strerror or e}", path) from None
    if head == b"{":
        try:
            with open(path, encoding="utf-8") as f:
                report = json.load(f)
            entries: list[dict[str, Any]] = report["artifacts"]
            return entries
        except (ValueError, KeyError, TypeError):
            raise AnalyzerError("not a binlens JSON report", path) from None
    return [pipeline.finish(e, request).entry or {} for e in pipeline.analyze_file(path, request)]


def _pairs(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> tuple[list[tuple[Any, Any]], list[str], list[str]]:
    if len(old) == len(new) == 1:
        return [(old[0], new[0])], [], []
    by_path = {e["path"]: e for e in old}
    by_name = {_key(e): e for e in old}
    pairs, used = [], set()
    for e in new:
        match = by_path.get(e["path"]) or by_name.get(_key(e))
        if match is not None and id(match) not in used:
            used.add(id(match))
            pairs.append((match, e))
    paired_new = {id(n) for _, n in pairs}
    only_old = [e["path"] for e in old if id(e) not in used]
    only_new = [e["path"] for e in new if id(e) not in paired_new]
    return pairs, only_old, only_new


def _changes(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """key -> [old, new] for keys whose values differ (missing is null)."""
    return {k: [old.get(k), new.get(k)] for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)}


def _libraries(facts: dict[str, Any]) -> list[str]:
    if "needed" in facts:
        return list(facts["needed"])
    if "pe" in facts:
        return list(facts["pe"]["imports"])
    if "macho" in facts:
        return [d["name"] for d in facts["macho"]["dylibs"]]
    return []


def _percent(old: int, new: int) -> float | None:
    return round(100.0 * (new - old) / old, 2) if old else None


def _deltas(old: dict[str, int], new: dict[str, int]) -> dict[str, dict[str, Any]]:
    return {k: {"old": a, "new": b, "delta": (b or 0) - (a or 0)} for k, (a, b) in _changes(old, new).items()}


def compare(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The differences between two report entries of the same artifact."""
    fo, fn = old.get("facts", {}), new.get("facts", {})
    so, sn = old.get("size") or 0, new.get("size") or 0
    lo, ln = _libraries(fo), _libraries(fn)
    sec_o = {s["name"]: s["size"] for s in fo.get("sections", [])}
    sec_n = {s["name"]: s["size"] for s in fn.get("sections", [])}
    cat_o = fo.get("size", {}).get("categories", {})
    cat_n = fn.get("size", {}).get("categories", {})
    vmax = _changes({k: v["version"] for k, v in fo.get("version_max", {}).items()},
                    {k: v["version"] for k, v in fn.get("version_max", {}).items()})  # fmt: skip
    find_o = {(f["rule"], f["message"]) for f in old.get("findings", [])}
    find_n = {(f["rule"], f["message"]) for f in new.get("findings", [])}
    out: dict[str, Any] = {
        "old": old["path"],
        "new": new["path"],
        "size": {"old": so, "new": sn, "delta": sn - so, "growth_percent": _percent(so, sn)},
        "categories": _deltas(cat_o, cat_n),
        "sections": _deltas(sec_o, sec_n),
        "libraries": {"added": [x for x in ln if x not in lo], "removed": [x for x in lo if x not in ln]},
        "version_max": vmax,
        "findings": {"added": [{"rule": r, "message": m} for r, m in sorted(find_n - find_o)],
                     "gone": [{"rule": r, "message": m} for r, m in sorted(find_o - find_n)]},
        "go": None,
    }  # fmt: skip
    go_o, go_n = fo.get("go"), fn.get("go")
    if go_o or go_n:
        go_o, go_n = go_o or {}, go_n or {}
        deps_o = {d["path"]: d for d in go_o.get("deps", [])}
        deps_n = {d["path"]: d for d in go_n.get("deps", [])}

        def show(d: dict[str, Any] | None) -> str | None:
            if d is None:
                return None
            r = d.get("replace")
            return d["version"] + (f" => {r['path']} {r['version']}".rstrip() if r else "")

        versions = [go_o.get("version"), go_n.get("version")]
        out["go"] = {
            "version": None if versions[0] == versions[1] else versions,
            "settings": _changes(go_o.get("settings", {}), go_n.get("settings", {})),
            "deps": {p: [show(deps_o.get(p)), show(deps_n.get(p))] for p in sorted(set(deps_o) | set(deps_n))
                     if show(deps_o.get(p)) != show(deps_n.get(p))},
        }  # fmt: skip
    return out


def diff(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> dict[str, Any]:
    pairs, only_old, only_new = _pairs(old, new)
    return {
        "schema_version": 1,
        "pairs": [compare(a, b) for a, b in pairs],
        "removed": only_old,
        "added": only_new,
    }


def over_limits(result: dict[str, Any], max_size: int, max_growth: float | None) -> list[str]:
    """Why the diff fails a configured budget or growth threshold (empty when it does not)."""
    out = []
    for p in result["pairs"]:
        size = p["size"]
        if max_size and size["new"] > max_size:
            out.append(f"{p['new']}: {size['new']} bytes, over the budget of {max_size}")
        if max_growth is not None and size["growth_percent"] is not None and size["growth_percent"] > max_growth:
            out.append(f"{p['new']}: grew {size['growth_percent']}%, over {max_growth}%")
    return out
