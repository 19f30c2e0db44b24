"""Rules as data: load rules/*.toml (and users' rule files), evaluate their CEL conditions, make findings.

A rule is a condition over the JSON facts, in the Common Expression Language
(the `common-expression-language` package: compiled once, about a microsecond
an evaluation against a prepared context, and parse errors that point at the
column). A rule with `each` makes one finding per matching item of a list:

    each = "facts.compat.problems"          # a CEL list
    condition = 'item.kind == "version"'    # over `item`, `facts`, `config`

Variables: `facts` (the artifact's facts, without the bulky
`versioned_imports`), `config` (the run's settings: `targets`, `arch`,
`require_static`, ...), `artifact` (`path`, `format`, `error`: an artifact
that could not be analyzed has no facts, and only rules that read no `facts`
see it). Messages are templates: `{item.reason}`,
`{facts.rpath}`; lists are joined with ", ".
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from analyzer.errors import AnalyzerError
from analyzer.policy.settings import SEVERITIES

__all__ = ["SEVERITIES", "Policy", "Rule", "evaluate", "describe"]
FAMILIES = {
    "LNK": "linkage",
    "SYM": "symbol versions",
    "DEP": "dependencies",
    "SYS": "system calls",
    "STR": "strippable sections",
    "GO": "Go",
    "MOD": "Go modules",
    "ART": "artifacts",
    "HRD": "hardening",
}
_ID = re.compile(r"^([A-Z]{2,4})(\d{3})$")
_FIELDS = ("id", "name", "severity", "title", "condition", "message", "what", "why", "example", "fix")


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    severity: str
    title: str
    condition: str
    message: str
    what: str
    why: str
    example: str
    fix: str
    each: str | None = None
    formats: tuple[str, ...] = ("ELF", "PE", "MachO")
    source: str = "builtin"

    @property
    def family(self) -> str:
        return _ID.match(self.id)[1] if _ID.match(self.id) else self.id  # type: ignore[index]

    def ran_on(self, entry: dict[str, Any]) -> bool:
        """Whether the rule applies to a report entry: its format, and every fact its condition names present
        (the GO rules do not run on a C program, the DEP rules without `deps`)."""
        if entry.get("format") not in self.formats:
            return False
        keys = _fact_keys((self.expression,))
        if not entry.get("facts"):
            return not re.search(r"\bfacts\b", self.expression)
        return keys is None or all(k in entry["facts"] for k in keys)

    @property
    def expression(self) -> str:
        """The one CEL expression evaluated per artifact."""
        if self.each:
            return f"({self.each}).filter(item, {self.condition})"
        return self.condition


MAX_EXPRESSION = 16384  # characters of a rule's condition or `each` expression


def _rule_from(raw: dict[str, Any], source: str) -> Rule:
    missing = [f for f in _FIELDS if not isinstance(raw.get(f), str) or not raw.get(f, "").strip()]
    rid = raw.get("id", "?")
    if missing:
        raise AnalyzerError(f"rule {rid}: missing or empty {', '.join(missing)}", source)
    if not _ID.match(rid):
        raise AnalyzerError(f"rule {rid}: an id is a family prefix and three digits (LNK001)", source)
    if raw["severity"] not in SEVERITIES:
        raise AnalyzerError(f"rule {rid}: severity must be one of {', '.join(SEVERITIES)}", source)
    unknown = set(raw) - set(_FIELDS) - {"each", "formats"}
    if unknown:
        raise AnalyzerError(f"rule {rid}: unknown field(s) {', '.join(sorted(unknown))}", source)
    for field_name in ("condition", "each"):
        if len(str(raw.get(field_name) or "")) > MAX_EXPRESSION:
            # the CEL library recurses on long operator chains and crashes the process (30,000 `+` terms):
            # real conditions are under 1 KiB, so far beyond that is an error in the rule file
            raise AnalyzerError(f"rule {rid}: {field_name} is longer than {MAX_EXPRESSION} characters", source)
    return Rule(
        **{k: raw[k].strip() if isinstance(raw[k], str) else raw[k] for k in _FIELDS},
        each=raw.get("each"),
        formats=tuple(raw.get("formats", ("ELF", "PE", "MachO"))),
        source=source,
    )


def parse_toml(text: str, source: str) -> dict[str, Any]:
    """A TOML document, or AnalyzerError naming `source` (syntax, nesting too deep, integers too long)."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise AnalyzerError(f"TOML error: {e}", source) from None
    except RecursionError:
        raise AnalyzerError("TOML error: nested too deeply", source) from None
    except ValueError as e:  # an integer of more than 4,300 digits
        raise AnalyzerError(f"TOML error: {str(e).split(';')[0]}", source) from None


def parse_rules(text: str, source: str, check: bool = True) -> list[Rule]:
    """Rules from one TOML text; AnalyzerError (naming `source`) for TOML or rule errors. `check`: compile
    every condition now (a user's rule file: its errors before any work); the shipped catalogue's conditions
    are compiled when first evaluated (the tests compile every one of them)."""
    data = parse_toml(text, source)
    rules = [_rule_from(r, source) for r in data.get("rule", [])]
    if check:
        for r in rules:
            compile_rule(r)
    return rules


def builtin_rules() -> list[Rule]:
    """The shipped catalogue, in id order."""
    out: list[Rule] = []
    for name, data in catalogue_tables().items():
        if name != "profiles.toml":
            out.extend(_rule_from(r, f"rules/{name}") for r in data.get("rule", []))
    return sorted(out, key=lambda r: r.id)


SNAPSHOT = "catalogue.json"  # the catalogue's TOML files parsed, and a digest of them (scripts/gen_rules_doc.py)


def catalogue_tables(snapshot: bool = True) -> dict[str, dict[str, Any]]:
    """File name -> the parsed TOML of each file of the shipped catalogue (rules/*.toml), by name: from the
    snapshot beside them when it was made from these very bytes (TOML parsing was 12 ms of every run's
    start), else parsed."""
    where = _catalogue()
    texts = {e.name: e.read_bytes() for e in sorted(where.iterdir(), key=lambda p: p.name) if e.name.endswith(".toml")}
    digest = catalogue_digest(texts)
    if snapshot:
        if digest in _TABLES:  # (a run reads it for its profiles and for its rules: the snapshot parsed once)
            return _TABLES[digest]
        import json

        try:
            kept = json.loads((where / SNAPSHOT).read_bytes())
            if kept["digest"] == digest and isinstance(kept["files"], dict):
                tables: dict[str, dict[str, Any]] = kept["files"]
                _TABLES[digest] = tables
                return tables
        except (OSError, ValueError, KeyError, TypeError):
            pass
    return {name: parse_toml(data.decode(), f"rules/{name}") for name, data in texts.items()}


_TABLES: dict[str, dict[str, dict[str, Any]]] = {}  # the catalogue's digest -> its snapshot's tables (read only)


def catalogue_digest(texts: dict[str, bytes]) -> str:
    """The digest of the catalogue's files (name and bytes, in name order) a snapshot is valid for."""
    import hashlib

    h = hashlib.sha256()
    for name in sorted(texts):
        h.update(b"%d:%s\0%d:" % (len(name), name.encode(), len(texts[name])) + texts[name])
    return h.hexdigest()


def load_rule_file(path: str) -> list[Rule]:
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise AnalyzerError(f"cannot read rule file: {e.strerror or e}", path) from None
    return parse_rules(text, path)


def _catalogue() -> Path:
    """The shipped catalogue's directory: the analyzer.rules package (rules/ here, inside the wheel's analyzer/;
    found from its module, as importlib.resources would, without that module's imports: zipfile and more)."""
    import analyzer.rules

    return Path(analyzer.rules.__file__).parent


def profiles() -> dict[str, Any]:
    data: dict[str, Any] = catalogue_tables()["profiles.toml"]["profile"]
    return data


_compiled: dict[str, Any] = {}


def _cel() -> Any:
    """The CEL binding without its command-line REPL: the package's __init__ imports `cel.cli`, which pulls in
    typer, rich, prompt_toolkit and pygments (0.3 s of every process that evaluates a rule, each worker
    included) for an interactive shell binlens never starts. A placeholder stands in for that one module."""
    import sys

    if "cel" not in sys.modules:
        import types

        sys.modules.setdefault("cel.cli", types.ModuleType("cel.cli"))
    import cel

    return cel


def compile_rule(rule: Rule) -> Any:
    """The compiled CEL program of a rule (cached per process); AnalyzerError with the CEL message."""
    expr = rule.expression
    prog = _compiled.get(expr)
    if prog is None:
        cel = _cel()
        try:
            prog = cel.compile(expr)
        except ValueError as e:
            detail = str(e).split("ERROR: ", 1)[-1].replace("\n", " ")
            detail = detail if len(detail) <= 300 else detail[:300] + "..."  # the message quotes the expression
            raise AnalyzerError(f"rule {rule.id}: condition does not compile: {detail}", rule.source) from None
        _compiled[expr] = prog
    return prog


@dataclass(frozen=True)
class Suppression:
    path: str  # a glob
    rule: str
    reason: str


@dataclass(frozen=True)
class Policy:
    """Everything a run decides: which rules, their severities, the settings the conditions read."""

    rules: tuple[Rule, ...]
    severity: dict[str, str] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    suppressions: tuple[Suppression, ...] = ()
    baseline: frozenset[str] = frozenset()  # keys of accepted findings (baseline_key)
    budgets: tuple[tuple[str, int], ...] = ()  # (path glob, max bytes)
    base: str = "."  # paths in findings' keys are relative to it: the config file's directory, else the cwd
    size_baseline: dict[str, int] = field(default_factory=dict)  # path (and file name) -> size in a previous report

    def severity_of(self, rule: Rule) -> str:
        return self.severity.get(rule.id, rule.severity)

    @property
    def fact_keys(self) -> frozenset[str] | None:
        """The top-level facts the rules' expressions name; None when one uses `facts` whole."""
        return _fact_keys(tuple(r.expression for r in self.rules))


@cache
def _fact_keys(expressions: tuple[str, ...]) -> frozenset[str] | None:
    keys: set[str] = set()
    for expr in expressions:
        # every use of `facts` must be `facts.<name>`; anything else (facts[...], has(facts), f(facts)) takes all
        if len(re.findall(r"\bfacts\b", expr)) != len(re.findall(r"\bfacts\.(\w+)", expr)):
            return None
        keys.update(re.findall(r"\bfacts\.(\w+)", expr))
    return frozenset(keys)


def _render(template: str, scope: dict[str, Any]) -> str:
    def value(m: re.Match[str]) -> str:
        cur: Any = scope
        for part in m[1].split("."):
            if isinstance(cur, dict) and part in cur:
                cur = cur[part]
            else:
                return m[0]
        if isinstance(cur, list):
            return ", ".join(str(x) for x in cur)
        return "none" if cur is None else str(cur)  # (JSON's null, not Python's None)

    return re.sub(r"\{([A-Za-z_][\w.]*)\}", value, template)


def canonical(value: Any) -> Any:
    """A value from CEL with every map's keys sorted: CEL hands maps back in an order that follows the
    process's hash seed, and the same input must give the same bytes."""
    if isinstance(value, dict):
        return {k: canonical(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, list):
        return [canonical(v) for v in value]
    return value


def evaluate(policy: Policy, entry: dict[str, Any]) -> list[dict[str, Any]]:
    """The findings of one report entry under `policy`, suppressed ones marked."""
    cel = _cel()

    facts = entry["facts"]
    artifact = {"path": entry["path"], "format": entry["format"], "error": entry["error"]}
    # an entry without facts (one that could not be analyzed) is seen by the rules over `artifact` only
    rules = [r for r in policy.rules if facts or not re.search(r"\bfacts\b", r.expression)]
    # Converting facts into CEL values costs in proportion to their size: pass only what the rules read.
    wanted = policy.fact_keys
    visible = {k: v for k, v in facts.items() if (k in wanted if wanted is not None else k != "versioned_imports")}
    if "deps" in visible:  # every binding of every object is too bulky to convert; rules read deps.undefined
        visible["deps"] = {k: v for k, v in visible["deps"].items() if k != "bindings"}
    ctx = cel.Context()
    ctx.add_variable("facts", visible)
    ctx.add_variable("config", policy.settings)
    ctx.add_variable("artifact", artifact)
    npath = normalised_path(entry["path"], policy.base)
    findings: list[dict[str, Any]] = []
    for rule in rules:
        if entry["format"] not in rule.formats:
            continue
        try:
            items = _each(rule, ctx, policy.settings, artifact) if rule.each else \
                ([None] if compile_rule(rule).execute(ctx) is True else [])
        except Exception as e:  # a condition naming a fact this artifact lacks, a type error
            raise AnalyzerError(
                f"rule {rule.id} ({rule.source}): cannot evaluate: {type(e).__name__} {e}", entry["path"]
            ) from None
        for item in items:
            scope = {"facts": facts, "config": policy.settings, "item": item, "artifact": artifact}
            evidence = canonical(item) if item is not None else {}
            finding = {
                "rule": rule.id,
                "name": rule.name,
                "severity": policy.severity_of(rule),
                "message": _render(rule.message, scope),
                "evidence": evidence,
                "fix": rule.fix,
                "fingerprint": fingerprint(rule.id, evidence),
                "suppressed": None,
            }
            for s in policy.suppressions:
                if s.rule == rule.id and (fnmatch.fnmatch(npath, s.path) or fnmatch.fnmatch(entry["path"], s.path)):
                    finding["suppressed"] = s.reason
                    break
            findings.append(finding)
    return findings


PER_ITEM = True  # False: every `each` rule through CEL's filter (the tests compare both ways)


def _each(rule: Rule, ctx: Any, settings: dict[str, Any], artifact: dict[str, Any]) -> list[Any]:
    """`(each).filter(item, condition)`, the items of a rule's list its condition holds for. The CEL binding's
    comprehensions copy their result at every step, so a filter costs the square of the items it keeps (1,180
    go.sum gaps of one module graph took 1.3 s, 10,000 items minutes); so the list is evaluated alone and the
    condition once per item, in a context of its own (the item, and the settings or the artifact where the
    condition names them): linear. A condition that reads the facts (whose conversion per item would cost the
    square again), a list that is no list, or a condition that is not a boolean (the filter's own error) is
    left to the filter."""
    cond = rule.condition
    names = _NAMES.get(cond)
    if names is None:
        names = _NAMES[cond] = {n for n in ("facts", "config", "artifact") if re.search(rf"\b{n}\b", cond)}
    if not PER_ITEM or "facts" in names:
        return list(compile_rule(rule).execute(ctx))
    each, test = _part(rule.each or "[]"), _part(cond)
    listed = each.execute(ctx) if each is not None and test is not None else None
    if not isinstance(listed, list) or test is None:
        return list(compile_rule(rule).execute(ctx))
    if not listed or cond.strip() == "true":
        return listed
    own = _cel().Context()
    for name, value in (("config", settings), ("artifact", artifact)):
        if name in names:
            own.add_variable(name, value)
    kept = []
    for item in listed:
        own.add_variable("item", item)
        holds = test.execute(own)
        if holds is not True and holds is not False:
            return list(compile_rule(rule).execute(ctx))
        if holds:
            kept.append(item)
    return kept


_NAMES: dict[str, set[str]] = {}  # a condition -> the variables besides `item` it names (facts, config, artifact)


def _part(text: str) -> Any:
    """A compiled part of a rule (its list or its condition alone), cached as compile_rule caches rules; None
    when it does not compile alone (the rule is then left to its filter)."""
    prog = _compiled.get(text)
    if prog is None:
        try:
            prog = _compiled[text] = _cel().compile(text)
        except ValueError:
            return None
    return prog


def normalised_path(path: str, base: str) -> str:
    """The artifact's path relative to `base`, '/'-separated (a fat slice keeps its `[cpu]`): ./build/app,
    build/app and /abs/build/app are the same artifact for baselines and suppressions."""
    import os

    file, bracket, cpu = path.partition("[")
    relative = os.path.relpath(os.path.abspath(file), os.path.abspath(base)).replace(os.sep, "/")
    return relative + bracket + cpu


def fingerprint(rule: str, evidence: Any) -> str:
    """A finding's identity across rebuilds: its rule and the words of its evidence (strings and lists of
    strings: a node, a library, a target, symbol names), not its numbers (byte counts, sizes) nor its message."""
    import hashlib
    import json

    def stable(value: Any) -> bool:
        return isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))

    if isinstance(evidence, dict):
        words: Any = {k: v for k, v in evidence.items() if stable(v)}
    else:
        words = evidence if stable(evidence) else None
    return hashlib.sha256(json.dumps([rule, words], sort_keys=True).encode()).hexdigest()[:32]


def baseline_key(path: str, rule: str, finding_fingerprint: str) -> str:
    """How a finding is recognised in a baseline file (written by --write-baseline, read by --baseline):
    the normalised path, the rule, the fingerprint."""
    return f"{path}\x00{rule}\x00{finding_fingerprint}"


def describe(rule: Rule) -> str:
    """A rule's documentation, as `binlens rules ID` prints it and docs/rules.md holds it."""
    lines = [
        f"{rule.id} {rule.name} ({rule.severity}): {rule.title}",
        "",
        "What it checks",
        f"  {rule.what}",
        "",
        "Why it matters",
        f"  {rule.why}",
        "",
        "Example",
        f"  {rule.example}",
        "",
        "Fix",
        f"  {rule.fix}",
        "",
        "Condition (CEL)",
        f"  {rule.expression}",
    ]
    return "\n".join(lines)
