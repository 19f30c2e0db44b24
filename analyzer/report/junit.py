"""JUnit XML: one testcase per artifact and rule family that ran on it; a failure for findings that fail the gate
(at or above --fail-on, neither suppressed nor baselined); the others are the testcase's output."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any

from analyzer.policy.rules import FAMILIES, SEVERITIES, Rule


def _fails(finding: dict[str, Any], fail_on: str) -> bool:
    if finding.get("suppressed") or finding.get("baselined") or fail_on == "never":
        return False
    return SEVERITIES.index(finding["severity"]) >= SEVERITIES.index(fail_on)


def render(report: dict[str, Any], detailed: bool = False, rules: Sequence[Rule] = ()) -> str:
    fail_on = report.get("policy", {}).get("fail_on", "error")
    suite = ET.Element("testsuite", name="binlens")
    tests = failures = errors = 0
    for a in report["artifacts"]:
        if a.get("error"):
            case = ET.SubElement(suite, "testcase", classname=a["path"], name="load")
            ET.SubElement(case, "error", message=a["error"]).text = a["error"]
            tests += 1
            errors += 1
            continue
        for fam in sorted({r.family for r in rules if r.ran_on(a)}):
            case = ET.SubElement(suite, "testcase", classname=a["path"], name=f"{fam} ({FAMILIES.get(fam, fam)})")
            tests += 1
            found = [f for f in a.get("findings", []) if f["rule"].startswith(fam)]
            counting = [f for f in found if _fails(f, fail_on)]
            if counting:
                failures += 1
                text = "\n".join(f"{f['severity']} {f['rule']}: {f['message']}\n  fix: {f['fix']}" for f in counting)
                ET.SubElement(case, "failure", message=counting[0]["message"], type=counting[0]["severity"]).text = text
            passing = [f for f in found if f not in counting]
            if passing:
                out = "\n".join(f"{f['severity']} {f['rule']} ({_state(f)}): {f['message']}" for f in passing)
                ET.SubElement(case, "system-out").text = out
    suite.set("tests", str(tests))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _state(finding: dict[str, Any]) -> str:
    if finding.get("suppressed"):
        return "suppressed"
    return "baselined" if finding.get("baselined") else "below --fail-on"
