"""The JSON report: the public contract documented in docs/json-report.md.

Written one artifact per line: compact enough to encode fast (the C encoder)
and to keep large scans small, yet easy to grep and to diff.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

_encode = json.JSONEncoder(separators=(",", ":")).encode


def encode_entry(entry: dict[str, Any]) -> str:
    """One artifact entry as JSON text; scans call it in their worker processes."""
    return _encode(entry)


def render(report: dict[str, Any], detailed: bool = False, rules: Sequence[Any] = ()) -> str:
    """The report as JSON text (every fact, whatever `detailed` says).

    Artifact entries may arrive already encoded (as str) by `encode_entry`.
    """
    return "".join(pieces(report))


def pieces(report: dict[str, Any]) -> list[str]:
    """render()'s text in pieces, to be written one after another (a scan's report of 50 MB is not joined into
    one string twice first)."""
    head = {k: v for k, v in report.items() if k != "artifacts"}
    parts = [_encode(head)[:-1], ',"artifacts":[\n']
    for i, a in enumerate(report["artifacts"]):
        if i:
            parts.append(",\n")
        parts.append(a if isinstance(a, str) else _encode(a))
    parts.append("\n]}\n")
    return parts


def summary_line(head: dict[str, Any], summary: dict[str, Any]) -> str:
    """The last line of `--format jsonl`: the report's head (schema, tool, facts computed, policy) and the
    scan's summary (analyzer.report.summary)."""
    return _encode({"summary": {**head, **summary}}) + "\n"


def render_lines(report: dict[str, Any]) -> str:
    """`--format jsonl` of a report held whole: one artifact per line, then the summary line (a scan streams
    the same lines as it goes: analyzer.cli)."""
    from analyzer.report.summary import Tally

    tally = Tally()
    lines = []
    for a in report["artifacts"]:
        entry = json.loads(a) if isinstance(a, str) else a
        tally.add(entry, entry.get("findings", []))
        lines.append((a if isinstance(a, str) else _encode(a)) + "\n")
    head = {k: v for k, v in report.items() if k != "artifacts"}
    return "".join(lines) + summary_line(head, tally.as_dict())
