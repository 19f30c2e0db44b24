"""The JSON report: the public contract documented in docs/json-report.md."""

from __future__ import annotations

import json
from typing import Any


def render(report: dict[str, Any], detailed: bool = False) -> str:
    """The report as indented JSON (every fact, whatever `detailed` says)."""
    return json.dumps(report, indent=2) + "\n"
