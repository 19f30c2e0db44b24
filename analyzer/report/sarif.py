"""SARIF 2.1.0: one run, the rule catalogue in tool.driver.rules, one result per finding."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from analyzer.policy.rules import Rule

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVEL = {"error": "error", "warning": "warning", "note": "note"}


def _uri(path: str) -> str:
    base = path.split("[", 1)[0]  # a fat slice's path names the file
    p = Path(base)
    return p.as_uri() if p.is_absolute() else base


def rule_help(rule: Rule) -> str:
    parts = [("What it checks", rule.what), ("Why it matters", rule.why), ("Example", rule.example), ("Fix", rule.fix)]
    return "\n".join(f"## {title}\n{text}\n" for title, text in parts)


def render(report: dict[str, Any], detailed: bool = False, rules: Sequence[Rule] = ()) -> str:
    index = {r.id: i for i, r in enumerate(rules)}
    results = []
    for a in report["artifacts"]:
        for f in a.get("findings", []):
            result: dict[str, Any] = {
                "ruleId": f["rule"],
                "level": LEVEL[f["severity"]],
                "message": {"text": f["message"]},
                "locations": [{"physicalLocation": {"artifactLocation": {"uri": _uri(a["path"])}}}],
                "properties": {"artifact": a["path"], "fix": f["fix"], "evidence": f["evidence"]},
            }
            if f["rule"] in index:
                result["ruleIndex"] = index[f["rule"]]
            if f.get("suppressed"):
                result["suppressions"] = [{"kind": "external", "justification": f["suppressed"]}]
            if f.get("baselined"):
                result["baselineState"] = "unchanged"
            results.append(result)
        if a.get("error"):
            results.append(
                {
                    "ruleId": "binlens/unreadable",
                    "level": "error",
                    "message": {"text": a["error"]},
                    "locations": [{"physicalLocation": {"artifactLocation": {"uri": _uri(a["path"])}}}],
                }
            )
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
                "help": {"text": rule_help(r), "markdown": rule_help(r)},
                "defaultConfiguration": {"level": LEVEL[r.severity]},
            }
            for r in rules
        ],
    }
    sarif = {"$schema": SCHEMA, "version": "2.1.0", "runs": [{"tool": {"driver": driver}, "results": results}]}
    return json.dumps(sarif, indent=2) + "\n"
