"""Reporters: one module per output format, each a `render(report, detailed, rules, color) -> str`.

The views of the other commands live here too: `deps` (the dependency tree),
`go` (as `go version -m`), `diff`. To add a format: write
`analyzer/report/NAME.py` with a `render` function and add one line to FORMATS.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

TYPE_CHECKING = False  # typing is not imported at run time (analyzer/records.py says why)
if TYPE_CHECKING:
    from typing import Any


class Reporter:
    """`render(report, detailed, rules, color)`: the report as text in one format.

    `color` says whether the stream it is written to is a terminal that wants
    colour (never for a file, a pipe, or with NO_COLOR); only `text` uses it.
    """

    __call__: Callable[..., str]


def _text(report: dict[str, Any], detailed: bool, rules: Sequence[Any], color: bool) -> str:
    from analyzer.report import text

    return text.render(report, detailed, rules, color)


def _json(report: dict[str, Any], detailed: bool, rules: Sequence[Any], color: bool) -> str:
    from analyzer.report import json

    return json.render(report, detailed, rules)


def _jsonl(report: dict[str, Any], detailed: bool, rules: Sequence[Any], color: bool) -> str:
    from analyzer.report import json as json_report

    return json_report.render_lines(report)


def _sarif(report: dict[str, Any], detailed: bool, rules: Sequence[Any], color: bool) -> str:
    from analyzer.report import sarif

    return sarif.render(report, detailed, rules)


def _junit(report: dict[str, Any], detailed: bool, rules: Sequence[Any], color: bool) -> str:
    from analyzer.report import junit

    return junit.render(report, detailed, rules)


def _markdown(report: dict[str, Any], detailed: bool, rules: Sequence[Any], color: bool) -> str:
    from analyzer.report import markdown

    return markdown.render(report, detailed, rules)


def _cyclonedx(report: dict[str, Any], detailed: bool, rules: Sequence[Any], color: bool) -> str:
    from analyzer.report import cyclonedx, sbom

    sbom.require_libraries()
    return cyclonedx.render(report, detailed, rules)


def _spdx(report: dict[str, Any], detailed: bool, rules: Sequence[Any], color: bool) -> str:
    from analyzer.report import sbom, spdx

    sbom.require_libraries()
    return spdx.render(report, detailed, rules)


SCHEMA_VERSION = 1


def envelope(entries: Sequence[dict[str, Any] | str], computed: Sequence[str] = ()) -> dict[str, Any]:
    """The whole JSON report around the artifact entries (here, not in the pipeline: `gomod` makes one too, and
    imports no scan machinery for it)."""
    from analyzer import __version__, budget

    out: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "binlens", "version": __version__},
        "facts_computed": list(computed),
    }
    if getattr(budget.loaded("analyzer.load.archives"), "INSTALLED", None):
        from analyzer.load import installed

        out["installed"] = installed.section()  # (the OS packages of the images scanned)
    out["artifacts"] = list(entries)
    return out


# --format name -> renderer (each imports its module on first use, so `binlens --help` imports none)
FORMATS: dict[str, Callable[[dict[str, Any], bool, Sequence[Any], bool], str]] = {
    "text": _text,
    "json": _json,
    "jsonl": _jsonl,
    "sarif": _sarif,
    "junit": _junit,
    "markdown": _markdown,
    "cyclonedx": _cyclonedx,
    "spdx": _spdx,
}


def render(
    name: str, report: dict[str, Any], detailed: bool = False, rules: Sequence[Any] = (), color: bool = False
) -> str:
    """The report in the --format called `name`."""
    return FORMATS[name](report, detailed, rules, color)


def render_pieces(
    name: str, report: dict[str, Any], detailed: bool = False, rules: Sequence[Any] = (), color: bool = False
) -> list[str]:
    """render()'s text in pieces to be written one after another (JSON: the artifacts' texts as they are)."""
    if name == "json":
        from analyzer.report import json

        return json.pieces(report)
    return [render(name, report, detailed, rules, color)]


def plural(n: int, word: str) -> str:
    """"1 error", "2 errors"."""
    return f"{n} {word}" + ("" if n == 1 else "s")


def totals(report: dict[str, Any]) -> str:
    """"3 errors, 1 warning, 0 notes" (and what was set aside) for a report's findings that count."""
    c = counts(report)
    line = f"{plural(c['error'], 'error')}, {plural(c['warning'], 'warning')}, {plural(c['note'], 'note')}"
    if c["suppressed"] or c["baselined"]:
        line += f" ({c['suppressed']} suppressed, {c['baselined']} baselined)"
    return line


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


MAJOR_FAMILIES = ("ubuntu", "debian", "rhel", "amazonlinux", "fedora", "opensuse")  # the families a verdict names
NOT_RUN = {  # the verdict of an ELF file with no linkage, by its kind
    "relocatable": "an object file: not run or loaded itself (what it needs is settled when it is linked)",
    "core": "a core dump: not a program",
    "unknown": "not a program or a library (its ELF type is none of them)",
    "debug": "debug information only (objcopy --only-keep-debug): the program's code is not in this file, "
             "so neither is what it needs",
}


def verdict(facts: dict[str, Any]) -> str | None:
    """One line: where an ELF artifact runs (oldest release per major family) and which targets fail."""
    compat = facts.get("compat")
    if not compat:
        return None
    targets = compat.get("targets", {})
    verdicts = [f"{word} on {', '.join(names)}" for word, names in
                (("ok", [n for n, t in targets.items() if t["ok"]]), ("FAILS", [n for n, t in targets.items()
                                                                            if not t["ok"]])) if names]
    if "elf" not in facts:  # a Mach-O or PE file in a wheel: its tags only
        return "; ".join(verdicts) or None
    os_name = (facts.get("os") or {}).get("name", "unknown")
    if os_name not in ("linux", "unknown"):
        named = ", ".join(targets)
        built = "for no operating system (no system-call instruction in its code: firmware, a kernel, a boot " \
                "stage)" if os_name == "none" else f"for {os_name}"
        return f"built {built}: no Linux distribution runs it" + (f"; FAILS on {named}" if named else "")
    if facts.get("linkage") is None:
        return "; ".join([NOT_RUN.get(facts.get("kind", ""), NOT_RUN["debug"]), *verdicts])
    oldest = compat.get("oldest", {})
    parts = [f"{oldest[f]}+" for f in MAJOR_FAMILIES if f in oldest]
    if facts.get("glibc_component") and "GLIBC_PRIVATE" in facts.get("version_unnumbered", {}):
        line = "part of glibc: runs only with the C library of its own build"  # (no release is that, for sure)
    else:
        line = "runs on " + ", ".join(parts) if parts else "runs on no glibc distribution in the table"
    return "; ".join([line, *verdicts])
