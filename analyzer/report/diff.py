"""The `binlens diff` view: what changed, as text or Markdown."""

from __future__ import annotations

from typing import Any


def _signed(n: int) -> str:
    return f"{n:+d}"


def _shown(value: Any) -> str:
    """A value of one side; what one side lacks is "none"."""
    return "none" if value is None else str(value)


def _unchanged(p: dict[str, Any]) -> bool:
    """A pair in which nothing this view shows differs."""
    go = p["go"]
    return not (p["size"]["delta"] or p.get("identity") or p["categories"] or p["sections"]
                or p["libraries"]["added"] or p["libraries"]["removed"] or p["version_max"] or p.get("runs_on")
                or p["findings"]["added"] or p["findings"]["gone"]
                or (go and (go["version"] or go["settings"] or go["deps"])))


def render(result: dict[str, Any], markdown: bool = False) -> str:
    """A diff result (analyzer.diff.diff) for people: text, or Markdown for a pull-request comment. Of two
    releases, the artifacts in which nothing differs are counted in one line, not listed."""
    lines: list[str] = ["## binlens diff", ""] if markdown else []
    bullet = "- " if markdown else "  "
    pairs = result["pairs"]
    same = [_unchanged(p) for p in pairs] if len(pairs) > 1 else [False] * len(pairs)
    for p, unchanged in zip(pairs, same, strict=True):
        if unchanged:
            continue
        s = p["size"]
        head = f"{p['old']} -> {p['new']}: {s['old']} -> {s['new']} bytes ({_signed(s['delta'])}"
        head += f", {s['growth_percent']:+.2f}%)" if s["growth_percent"] is not None else ")"
        lines.append(f"### {head}" if markdown else head)
        for name, (a, b) in p.get("identity", {}).items():
            lines.append(f"{bullet}{name}: {_shown(a)} -> {_shown(b)}")
        for name, c in p["categories"].items():
            lines.append(f"{bullet}size {name}: {_shown(c['old'])} -> {_shown(c['new'])} ({_signed(c['delta'])})")
        for name, c in sorted(p["sections"].items(), key=lambda kv: -abs(kv[1]["delta"]))[:12]:
            lines.append(f"{bullet}section {name}: {_shown(c['old'])} -> {_shown(c['new'])} ({_signed(c['delta'])})")
        for lib in p["libraries"]["added"]:
            lines.append(f"{bullet}library added: {lib}")
        for lib in p["libraries"]["removed"]:
            lines.append(f"{bullet}library removed: {lib}")
        for ns, (a, b) in p["version_max"].items():
            lines.append(f"{bullet}highest {ns}: {_shown(a)} -> {_shown(b)}")
        runs_on = p.get("runs_on", {})
        if runs_on:
            from analyzer.report import MAJOR_FAMILIES

            shown = [f"{f'{a}+' if a else 'no ' + f} -> {f'{b}+' if b else 'no ' + f}"
                     for f in MAJOR_FAMILIES if f in runs_on for a, b in [runs_on[f]]]
            others = len(runs_on) - len(shown)
            lines.append(f"{bullet}runs on: " + ", ".join(shown + ([f"{others} other families"] if others else [])))
        for f in p["findings"]["added"]:
            lines.append(f"{bullet}finding added: {f['rule']} {f['message']}")
        for f in p["findings"]["gone"]:
            lines.append(f"{bullet}finding gone: {f['rule']} {f['message']}")
        go = p["go"]
        if go:
            if go["version"]:
                lines.append(f"{bullet}Go: {_shown(go['version'][0])} -> {_shown(go['version'][1])}")
            for k, (a, b) in go["settings"].items():
                lines.append(f"{bullet}Go setting {k}: {_shown(a)} -> {_shown(b)}")
            for k, (a, b) in go["deps"].items():
                lines.append(f"{bullet}Go module {k}: {_shown(a)} -> {_shown(b)}")
            rb = go.get("rebuild")
            if rb and rb["verdict"] != "identical":
                why = "; ".join(f"{r['what']} ({r['detail']})" for r in rb["reasons"] if r["effect"] == rb["verdict"])
                text = {"relink": "relinked only (the main package's build info recompiled, no dependency)",
                        "recompile": "recompiled, because", "recompile-possible": "may recompile, because"}
                lines.append(f"{bullet}Go rebuild: {text[rb['verdict']]}" + ("" if rb["verdict"] == "relink"
                                                                           else f" {why}"))
                if rb.get("note"):
                    lines.append(f"{bullet}Go rebuild note: {rb['note']}")
        if markdown:
            lines.append("")
    if any(same):
        lines.append(f"{bullet if markdown else ''}unchanged: {sum(same)} of {len(pairs)} artifacts")
    packages = result.get("packages") or {}
    for d in packages.get("distro", []):
        lines.append(f"{bullet if markdown else ''}distribution: {_shown(d['old'])} -> {_shown(d['new'])}")
    for d in packages.get("platform", []):
        lines.append(f"{bullet if markdown else ''}platform: {_shown(d['old'])} -> {_shown(d['new'])}")
    from analyzer.load.installed import LANGUAGES

    for verb in ("changed", "added", "removed"):
        for p in packages.get(verb, []):
            what = f"{p['name']}" + (f" ({p['arch']})" if p.get("arch") else "") \
                + (f" ({LANGUAGES[p['type']][1]}, in {p['location']})" if p["type"] in LANGUAGES else "")
            version = f"{p['old']} -> {p['new']}" if verb == "changed" else p["version"]
            lines.append(f"{bullet if markdown else ''}package {verb}: {what} {version}")
    for path in result["removed"]:
        lines.append(f"{bullet if markdown else ''}removed: {path}")
    for path in result["added"]:
        lines.append(f"{bullet if markdown else ''}added: {path}")
    return "\n".join(lines) + "\n"
