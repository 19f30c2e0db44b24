"""Reporters: one module per output format, each a `render(report, detailed, rules) -> str`."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

from analyzer.policy import Rule

Reporter = Callable[[dict[str, Any], bool, Sequence[Rule]], str]


def get(name: str) -> Reporter:
    """The reporter for a --format name."""
    module = importlib.import_module(f"analyzer.report.{name}")
    render: Reporter = module.render
    return render


def counts(report: dict[str, Any]) -> dict[str, int]:
    """Findings per severity that count (not suppressed, not baselined), and those set aside."""
    out = {"error": 0, "warning": 0, "note": 0, "suppressed": 0, "baselined": 0}
    for a in report["artifacts"]:
        for f in a.get("findings", []):
            if f.get("suppressed"):
                out["suppressed"] += 1
            elif f.get("baselined"):
                out["baselined"] += 1
            else:
                out[f["severity"]] += 1
    return out


def verdict(facts: dict[str, Any]) -> str | None:
    """One line: where an ELF artifact runs (oldest release per major family) and which targets fail."""
    compat = facts.get("compat")
    if not compat:
        return None
    major = ("ubuntu", "debian", "rhel", "amazonlinux", "fedora", "opensuse")
    oldest = compat.get("oldest", {})
    parts = [f"{oldest[f]}+" for f in major if f in oldest]
    line = "runs on " + ", ".join(parts) if parts else "runs on no glibc distribution in the table"
    failing = [name for name, t in compat.get("targets", {}).items() if not t["ok"]]
    passing = [name for name, t in compat.get("targets", {}).items() if t["ok"]]
    if passing:
        line += "; ok on " + ", ".join(passing)
    if failing:
        line += "; FAILS on " + ", ".join(failing)
    return line
