"""Markdown for a CI step summary or a pull-request comment."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from analyzer.report import plural, totals, verdict

ICON = {"error": "❌", "warning": "⚠️", "note": "ℹ️"}
# a GitHub comment holds 65,536 characters; the cut note and a margin stay below it
LIMIT = 65_536 - 1_000


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(report: dict[str, Any], detailed: bool = False, rules: Sequence[Any] = ()) -> str:
    lines = [
        "## binlens",
        "",
        f"{plural(len(report['artifacts']), 'artifact')}: {totals(report)}",
        "",
        "| artifact | arch | linkage | verdict | findings |",
        "| --- | --- | --- | --- | --- |",
    ]
    for a in report["artifacts"]:
        f = a["facts"]
        if a.get("error"):
            lines.append(f"| `{_cell(a['path'])}` | | | unreadable: {_cell(a['error'])} | |")
            continue
        live = [x for x in a.get("findings", []) if not x.get("suppressed") and not x.get("baselined")]
        summary = ", ".join(
            f"{ICON[s]} {n}" for s in ("error", "warning", "note") if (n := sum(1 for x in live if x["severity"] == s))
        )
        lines.append(
            f"| `{_cell(a['path'])}` | {f.get('arch', '')} | {f.get('linkage') or ''} | "
            f"{_cell(verdict(f) or '')} | {summary or '✅'} |"
        )
    detail = [(a, x) for a in report["artifacts"] for x in a.get("findings", [])]
    if detail:
        lines += ["", "### Findings", ""]
        for a, x in detail:
            state = (
                " (suppressed: " + x["suppressed"] + ")"
                if x.get("suppressed")
                else (" (baselined)" if x.get("baselined") else "")
            )
            lines.append(f"- {ICON[x['severity']]} **{x['rule']}** `{a['path']}`: {_cell(x['message'])}{state}  ")
            lines.append(f"  Fix: {_cell(x['fix'])}")
    return _capped(lines)


def _capped(lines: list[str]) -> str:
    """The lines, cut to fit a GitHub comment, with a note of how much was left out."""
    text = "\n".join(lines) + "\n"
    if len(text) <= LIMIT:
        return text
    kept, size = [], 0
    for line in lines:
        if size + len(line) + 1 > LIMIT:
            break
        kept.append(line)
        size += len(line) + 1
    cut_rows = sum(1 for line in lines[len(kept) :] if line.startswith("| `"))
    cut_findings = sum(1 for line in lines[len(kept) :] if line.startswith("- "))
    note = (
        f"\n… cut here to fit a GitHub comment (65,536 characters): {cut_rows} more artifacts and {cut_findings} "
        "more findings are in the full report (`--format json`), or use `--failing-only`."
    )
    return "\n".join(kept) + "\n" + note + "\n"
