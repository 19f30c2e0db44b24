#!/usr/bin/env python3
"""Regenerate docs/rules.md from the rule catalogue (rules/*.toml).

python scripts/gen_rules_doc.py          # write docs/rules.md
python scripts/gen_rules_doc.py --check  # exit 1 when docs/rules.md is stale
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analyzer.policy import rules as policy  # noqa: E402

OUT = ROOT / "docs" / "rules.md"


def render() -> str:
    rules = policy.builtin_rules()
    lines = [
        "# Rule reference",
        "",
        "Generated from `rules/*.toml` by `scripts/gen_rules_doc.py`; do not edit by hand.",
        "",
        "| id | name | severity | title |",
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| [{r.id}](#{r.id.lower()}) | {r.name} | {r.severity} | {r.title} |" for r in rules]
    for r in rules:
        lines += [
            "",
            f"## {r.id}",
            "",
            f"**{r.name}** ({r.severity}): {r.title}",
            "",
            "### What it checks",
            "",
            r.what,
            "",
            "### Why it matters",
            "",
            r.why,
            "",
            "### Example",
            "",
            r.example,
            "",
            "### Fix",
            "",
            r.fix,
            "",
            "### Condition",
            "",
            "```",
            r.expression,
            "```",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        return 0 if OUT.exists() and OUT.read_text() == text else 1
    OUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
