"""What a whole scan adds up to: artifacts by format, architecture, linkage and libc, the highest GLIBC node,
errors, and findings by severity and by rule. The text report ends with it; `--format jsonl` ends with it as
its last line."""

from __future__ import annotations

from collections import Counter
from typing import Any


def _glibc_key(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.removeprefix("GLIBC_").split(".") if x.isdigit())


class Tally:
    """Counts fed one artifact at a time, so that a streamed scan keeps nothing else."""

    def __init__(self) -> None:
        self.artifacts = 0
        self.errors = 0
        self.counters: dict[str, Counter[str]] = {k: Counter() for k in ("format", "arch", "linkage", "libc")}
        self.glibc: str | None = None
        self.severity: Counter[str] = Counter()
        self.rules: Counter[str] = Counter()

    def add(self, entry: dict[str, Any] | None, findings: list[dict[str, Any]], fmt: str | None = None,
            error: str | None = None) -> None:
        self.artifacts += 1
        facts = (entry or {}).get("facts") or {}
        fmt = (entry or {}).get("format", fmt)
        error = (entry or {}).get("error", error)
        if error:
            self.errors += 1
        self.counters["format"][fmt or "?"] += 1
        if facts:
            self.counters["arch"][str(facts.get("arch") or "?")] += 1
            self.counters["linkage"][str(facts.get("linkage") or "-")] += 1
            self.counters["libc"][str(facts.get("libc") or "-")] += 1
            g = ((facts.get("version_max") or {}).get("GLIBC") or {}).get("version")
            if g and (self.glibc is None or _glibc_key(g) > _glibc_key(self.glibc)):
                self.glibc = g
        for f in findings:
            kind = "suppressed" if f.get("suppressed") else "baselined" if f.get("baselined") else f["severity"]
            self.severity[kind] += 1
            if kind == f["severity"]:
                self.rules[f["rule"]] += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "artifacts": self.artifacts,
            "errors": self.errors,
            **{f"by_{k}": dict(sorted(c.items())) for k, c in self.counters.items()},
            "highest_glibc": self.glibc,
            "findings": {k: self.severity.get(k, 0) for k in ("error", "warning", "note", "suppressed", "baselined")},
            "by_rule": dict(sorted(self.rules.items())),
        }

    def table(self) -> list[str]:
        """Lines of the text report's summary table."""
        d = self.as_dict()
        out = []
        for k in ("format", "arch", "linkage", "libc"):
            items = d[f"by_{k}"]
            if items:
                ranked = sorted(items.items(), key=lambda x: (-x[1], x[0]))
                out.append(f"  {k:<15}" + ", ".join(f"{n} {v}" for v, n in ranked))
        if d["highest_glibc"]:
            out.append(f"  {'highest GLIBC':<15}{d['highest_glibc']}")
        if d["by_rule"]:
            out.append(f"  {'findings':<15}" + ", ".join(f"{r} {n}" for r, n in d["by_rule"].items()))
        return out
