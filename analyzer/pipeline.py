"""The pipeline: path -> artifacts -> facts -> report entries.

Each entry is a plain dict in the shape of the JSON report's `artifacts[]`
items; `--format json` prints exactly these.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, Any, NamedTuple

from analyzer import formats
from analyzer.elffile import Buffer
from analyzer.errors import AnalyzerError

if TYPE_CHECKING:
    from analyzer.policy import Policy

SCHEMA_VERSION = 1


def artifact_facts(art: formats.Artifact) -> dict[str, Any]:
    """Every default fact of one opened artifact."""
    with warnings.catch_warnings():
        # LIEF warns when a hostile file holds values its enums do not know; we read the numbers.
        warnings.simplefilter("ignore", RuntimeWarning)
        facts = _facts_by_format(art)
    from analyzer.facts import gobuildinfo, golinkage, size

    facts.update(size.facts(art))

    go = gobuildinfo.facts(art)
    if go is not None:
        go["linkage"] = golinkage.facts(art, facts, go)
        facts["go"] = go
    return facts


def _facts_by_format(art: formats.Artifact) -> dict[str, Any]:
    if art.format == "ELF":
        from analyzer.facts import elf, linkage, symvers

        f = elf.facts(art)
        f.update(linkage.facts(art, f["elf"]["e_type"]))
        f.update(symvers.facts(art))
        return f
    if art.format == "PE":
        from analyzer.facts import pe

        return pe.facts(art)
    from analyzer.facts import macho

    return macho.facts(art)


def _entry(
    path: str, data: Buffer | None, fmt: str | None, facts: dict[str, Any] | None, error: str | None
) -> dict[str, Any]:
    return {
        "path": path,
        "sha256": hashlib.sha256(data).hexdigest() if data is not None else None,
        "size": len(data) if data is not None else None,
        "format": fmt,
        "error": error,
        "facts": facts or {},
        "findings": [],
    }


def analyze_file(path: str) -> list[dict[str, Any]]:
    """Report entries for one file (several for a fat Mach-O).

    Raises AnalyzerError when the file cannot be opened as a binary at all.
    """
    out = []
    for art in formats.load(path):
        try:
            facts = artifact_facts(art)
        except AnalyzerError:
            raise
        except Exception as e:  # a parser surprise on hostile input: one line, not a traceback
            raise AnalyzerError(f"corrupt {art.format} file ({type(e).__name__}: {e})", art.path) from None
        out.append(_entry(art.path, art.data, art.format, facts, None))
    return out


def _analyze_found(path: str) -> list[dict[str, Any]]:
    """For files found in a directory: nothing for non-binaries; a failure becomes an entry with `error` set."""
    kind = formats.sniff_file(path)
    if kind is None:
        return []
    try:
        return analyze_file(path)
    except AnalyzerError as e:
        return [_entry(path, None, "MachO" if kind == "MachOFat" else kind, None, e.problem)]


def expand(paths: list[str]) -> list[tuple[str, bool]]:
    """(file, named explicitly) for every path; directories are walked (binaries or not)."""
    out: list[tuple[str, bool]] = []
    for p in paths:
        if os.path.isdir(p):
            out.extend((f, False) for f in formats.walk(p))
        else:
            out.append((p, True))
    return out


def _identity(entry: dict[str, Any]) -> Any:
    return entry


def _analyze(task: tuple[str, bool], finish: Callable[[dict[str, Any]], Any] = _identity) -> list[Any] | AnalyzerError:
    path, explicit = task
    if not explicit:
        return [finish(e) for e in _analyze_found(path)]
    try:
        return [finish(e) for e in analyze_file(path)]
    except AnalyzerError as e:
        return e


def scan(
    paths: list[str], jobs: int | None = None, finish: Callable[[dict[str, Any]], Any] = _identity
) -> Iterator[Any]:
    """Report entries for every binary under `paths`, in input order.

    A file named explicitly that is not a readable binary raises AnalyzerError;
    inside a directory it becomes an entry with `error` set and the scan goes on,
    and files that are not binaries at all are passed over. `finish` (a
    module-level function, so it can run in the worker processes) is applied
    to each entry where it is made: the JSON reporter encodes entries there.
    """
    tasks = expand(paths)
    for f, explicit in tasks:
        if explicit and not os.path.exists(f):  # fail fast, before any work
            raise AnalyzerError("no such file", f)
    work = partial(_analyze, finish=finish)
    workers = jobs if jobs is not None else min(os.cpu_count() or 1, 8)
    if workers <= 1 or len(tasks) < 16:
        yield from _unpack(map(work, tasks))
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        chunk = max(1, min(256, len(tasks) // (workers * 16)))
        yield from _unpack(pool.map(work, tasks, chunksize=chunk))


def _unpack(results: Iterable[list[Any] | AnalyzerError]) -> Iterator[Any]:
    for result in results:
        if isinstance(result, AnalyzerError):
            raise result
        yield from result


def report(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The whole JSON report around the artifact entries."""
    from analyzer import __version__

    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "binlens", "version": __version__},
        "artifacts": entries,
    }


class Finished(NamedTuple):
    """One entry after rules: the entry (or its JSON text) and its findings, for exit codes and baselines."""

    payload: Any
    findings: list[dict[str, Any]]


def baseline_key(path: str, finding: dict[str, Any]) -> str:
    return f"{path}\x00{finding['rule']}\x00{finding['message']}"


def size_budget(path: str, size: int, policy: Policy) -> dict[str, Any]:
    """The budget that applies to `path` (the first matching glob, else --max-size) and the growth
    against the same artifact in a previous report (matched by path, else by file name)."""
    import fnmatch

    budget = next((limit for glob, limit in policy.budgets if fnmatch.fnmatch(path, glob)), None)
    if budget is None and policy.settings.get("max_size"):
        budget = policy.settings["max_size"]
    before = policy.size_baseline.get(path) or policy.size_baseline.get(os.path.basename(path))
    growth = None if not before else round(100.0 * (size - before) / before, 2)
    return {"budget": budget, "baseline_size": before, "growth_percent": growth}


def finish_entry(entry: dict[str, Any], policy: Policy, encode: bool = False) -> Finished:
    """Add the compat facts and the findings to an entry (in the worker), optionally encode it."""
    from analyzer import compat
    from analyzer import policy as policy_mod

    if entry["format"] == "ELF" and entry["facts"]:
        entry["facts"]["compat"] = compat.compat_facts(entry["facts"], policy.settings.get("targets", []))
    if "size" in entry["facts"]:
        entry["facts"]["size"].update(size_budget(entry["path"], entry["facts"]["size"]["file"], policy))
    findings = policy_mod.evaluate(policy, entry)
    for f in findings:
        f["baselined"] = baseline_key(entry["path"], f) in policy.baseline
    entry["findings"] = findings
    if encode:
        from analyzer.report.json import encode_entry

        return Finished(encode_entry(entry), findings)
    return Finished(entry, findings)
