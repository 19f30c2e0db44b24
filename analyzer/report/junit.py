"""JUnit XML: one testcase per artifact and rule family; a failure for findings that count."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any

from analyzer.policy.rules import FAMILIES, Rule


def render(report: dict[str, Any], detailed: bool = False, rules: Sequence[Rule] = ()) -> str:
    families = sorted({r.family for r in rules})
    suite = ET.Element("testsuite", name="binlens")
    tests = failures = errors = 0
    for a in report["artifacts"]:
        if a.get("error"):
            case = ET.SubElement(suite, "testcase", classname=a["path"], name="load")
            ET.SubElement(case, "error", message=a["error"]).text = a["error"]
            tests += 1
            errors += 1
            continue
        for fam in families:
            case = ET.SubElement(suite, "testcase", classname=a["path"], name=f"{fam} ({FAMILIES.get(fam, fam)})")
            tests += 1
            found = [f for f in a.get("findings", []) if f["rule"].startswith(fam)]
            counting = [f for f in found if not f.get("suppressed") and not f.get("baselined")]
            if counting:
                failures += 1
                text = "\n".join(f"{f['severity']} {f['rule']}: {f['message']}\n  fix: {f['fix']}" for f in counting)
                ET.SubElement(case, "failure", message=counting[0]["message"], type=counting[0]["severity"]).text = text
            elif found:
                out = "\n".join(
                    f"{f['rule']} ({'suppressed' if f.get('suppressed') else 'baselined'}): {f['message']}"
                    for f in found
                )
                ET.SubElement(case, "system-out").text = out
    suite.set("tests", str(tests))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
