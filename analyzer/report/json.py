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
    head = {k: v for k, v in report.items() if k != "artifacts"}
    parts = [_encode(head)[:-1], ',"artifacts":[\n']
    parts.append(",\n".join(a if isinstance(a, str) else _encode(a) for a in report["artifacts"]))
    parts.append("\n]}\n")
    return "".join(parts)
