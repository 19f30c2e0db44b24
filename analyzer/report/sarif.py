"""SARIF 2.1.0: one run, the rule catalogue in tool.driver.rules, one result per finding."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from analyzer.policy.rules import Rule

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVEL = {"error": "error", "warning": "warning", "note": "note"}


FAT_SLICE = re.compile(r"\[[A-Za-z0-9_#]+\]$")  # app[arm64]: a slice of a fat Mach-O


def _uri(path: str, fmt: str | None) -> str:
    """The artifact's file as a URI: absolute paths as file:// URIs, relative ones percent-encoded; only a fat
    slice's `[cpu]` suffix is dropped, never a `[` that is part of the name."""
    base = FAT_SLICE.sub("", path) if fmt == "MachO" else path
    p = Path(base)
    return p.as_uri() if p.is_absolute() else quote(base)


def _location(a: dict[str, Any], evidence: Any = None) -> dict[str, Any]:
    # a finding about a line of a text file (go.mod, go.work) points there
    if isinstance(evidence, dict) and isinstance(evidence.get("file"), str) and evidence["file"]:
        line = evidence.get("line")
        return {"physicalLocation": {"artifactLocation": {"uri": _uri(evidence["file"], None)},
                                     "region": {"startLine": line if isinstance(line, int) and line > 0 else 1}}}
    # a binary has no lines: the region is the whole file, which GitHub code scanning shows at line 1
    return {"physicalLocation": {"artifactLocation": {"uri": _uri(a["path"], a.get("format"))},
                                 "region": {"startLine": 1}}}  # fmt: skip


PARTS = (("What it checks", "what"), ("Why it matters", "why"), ("Example", "example"), ("Fix", "fix"))


def rule_help(rule: Rule) -> str:
    """The rule's documentation in Markdown (help.markdown)."""
    return "\n".join(f"## {title}\n{getattr(rule, key)}\n" for title, key in PARTS)


def rule_help_text(rule: Rule) -> str:
    """The same in plain text (help.text), for viewers that show no Markdown."""
    return "\n".join(f"{title}: {getattr(rule, key).replace('`', '')}" for title, key in PARTS)


def render(report: dict[str, Any], detailed: bool = False, rules: Sequence[Rule] = ()) -> str:
    index = {r.id: i for i, r in enumerate(rules)}
    results = []
    notifications: list[dict[str, Any]] = []
    for a in report["artifacts"]:
        for f in a.get("findings", []):
            result: dict[str, Any] = {
                "ruleId": f["rule"],
                "level": LEVEL[f["severity"]],
                "message": {"text": f["message"]},
                "locations": [_location(a, f["evidence"])],
                "partialFingerprints": {"binlens/v1": f["fingerprint"]},
                "properties": {"artifact": a["path"], "fix": f["fix"], "evidence": f["evidence"]},
            }
            if f["rule"] in index:
                result["ruleIndex"] = index[f["rule"]]
            if f.get("suppressed"):
                result["suppressions"] = [{"kind": "external", "justification": f["suppressed"]}]
            if f.get("baselined"):
                result["baselineState"] = "unchanged"
            results.append(result)
        if a.get("error"):  # the tool could not analyze it: a notification (and, with ART001, a failing result)
            notifications.append({"level": "error", "message": {"text": f"{a['path']}: {a['error']}"},
                                  "locations": [_location(a)]})  # fmt: skip
    driver = {
        "name": "binlens",
        "version": report["tool"]["version"],
        "informationUri": "https://pypi.org/project/binlens/",
        "rules": [
            {
                "id": r.id,
                "name": r.name,
                "shortDescription": {"text": r.title},
                "fullDescription": {"text": r.what},
                "help": {"text": rule_help_text(r), "markdown": rule_help(r)},
                "defaultConfiguration": {"level": LEVEL[r.severity]},
            }
            for r in rules
        ],
    }
    invocation = {"executionSuccessful": not notifications, "toolExecutionNotifications": notifications}
    run = {"tool": {"driver": driver}, "invocations": [invocation], "results": results}
    sarif = {"$schema": SCHEMA, "version": "2.1.0", "runs": [run]}
    return json.dumps(sarif, indent=2) + "\n"
