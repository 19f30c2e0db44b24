"""Every setting of a scan, declared once.

From this table come the command-line options of `scan` and `inspect`
(analyzer.cli), the keys of `binlens.toml` / `[tool.binlens]` and their
validation (analyzer.policy.config), the values rule conditions read as
`config.NAME` (Policy.settings), and the settings table of docs/policy.md
(scripts/gen_rules_doc.py). tests/test_settings.py fails when they disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analyzer.errors import AnalyzerError

SEVERITIES = ("note", "warning", "error")
# --isa-level's values (analyzer.facts.loader.glibc.ISA_LEVELS, without importing it; a test keeps them equal)
ISA_LEVELS = ("baseline", "x86-64-baseline", "x86-64-v2", "x86-64-v3", "x86-64-v4", "power9", "power10", "z13", "z14",
              "z15", "z16", "armv8-a", "armv8.1-a")
CPU_VENDORS = ("other", "intel")  # --cpu-vendor's values (and host: this machine's)
# analyzer.report.FORMATS, without importing it
FORMAT_NAMES = ("text", "json", "jsonl", "sarif", "junit", "markdown", "cyclonedx", "spdx")


@dataclass(frozen=True)
class Setting:
    name: str  # the Config attribute and, for rule-visible settings, `config.NAME`
    kind: str  # str | choice | list | bool | float | size | count | path | paths | severities | tables
    help: str
    default: Any = None
    key: str | None = None  # the config-file key; None: command line only
    flag: str | None = None  # the command-line option; None: config file only
    short: str | None = None
    choices: tuple[str, ...] = ()
    metavar: str | None = None
    rule_visible: bool = False  # rule conditions read it as config.NAME
    check: Callable[[Any, str], Any] | None = None  # further validation of a config-file value
    normalise: Callable[[Any, str], Any] | None = None  # validates and normalises a value from either source

    def fresh_default(self) -> Any:
        return list(self.default) if isinstance(self.default, list) else (
            dict(self.default) if isinstance(self.default, dict) else self.default)  # fmt: skip


def _arch(value: Any, src: str) -> Any:
    from analyzer.facts.elf import ARCH_ALIASES, arch_name

    if not value:
        return value
    name = arch_name(value)
    if name is None:
        raise AnalyzerError(
            f"unknown architecture '{value}' (binlens' names: x86_64, i386, aarch64, arm, riscv64, ppc64le, s390x, "
            f"...; also {', '.join(sorted(ARCH_ALIASES))})",
            src,
        )
    return name


def _go_version(value: Any, src: str) -> Any:
    import re

    if value and not re.fullmatch(r"(go)?1\.\d{1,3}(\.\d{1,4})?((rc|beta)\d{1,3})?", value):
        raise AnalyzerError(f"not a Go version: '{value}' (1.22.7, 1.22, go1.23rc1)", src)
    return value


def _percent(value: Any, src: str) -> Any:
    """--max-growth: a finite number of percent from 0 (nan made STR004 unevaluable; below 0, every file failed)."""
    if value is not None and not 0 <= value < float("inf"):
        raise AnalyzerError(f"max-growth must be a number of percent from 0, not {value:g}", src)
    return value


MAX_SECONDS = 1e9  # the longest time budget taken (31 years: none, in effect; 1e308 overflowed the timer)


def _seconds(value: Any, src: str) -> Any:
    """--time-budget: seconds from 0 (0: the default) to MAX_SECONDS (nan and inf were a traceback, a negative
    number no budget at all)."""
    if value is not None and not 0 <= value <= MAX_SECONDS:
        raise AnalyzerError(f"time-budget must be a number of seconds from 0 to {MAX_SECONDS:g}, not {value:g}", src)
    return value


def _suppressions(value: Any, src: str) -> Any:
    for s in value:
        if not isinstance(s, dict) or not all(
            isinstance(s.get(k), str) and s.get(k) for k in ("path", "rule", "reason")
        ):
            raise AnalyzerError("each [[suppress]] needs a path glob, a rule id and a written reason", src)
    return value


def _budgets(value: Any, src: str) -> Any:
    from analyzer.policy.config import parse_size

    for b in value:
        if not isinstance(b, dict) or not isinstance(b.get("path"), str) or "max-size" not in b:
            raise AnalyzerError("each [[budget]] needs a path glob and a max-size", src)
        b["max-size"] = parse_size(b["max-size"], src)
    return value


SETTINGS: tuple[Setting, ...] = (
    Setting("fmt", "choice", "Output format.", "text", flag="--format", choices=FORMAT_NAMES),
    Setting("output", "path", "Write the report to FILE instead of standard output.", flag="--output", short="-o",
            metavar="FILE"),
    Setting("targets", "list", "A distribution release (debian-12, rhel-8), glibc-X.Y or a platform tag "
            "(manylinux_2_28, musllinux_1_2); repeatable. See `binlens targets`.", [], key="targets", flag="--target",
            short="-t", metavar="NAME", rule_visible=True),
    Setting("arch", "str", "The architecture every artifact must be built for (x86_64, or amd64, arm64, ...).", "",
            key="arch", flag="--arch", rule_visible=True, normalise=_arch),
    Setting("require_static", "bool", "Demand static binaries (LNK003).", None, key="require-static",
            flag="--require-static/--allow-dynamic", rule_visible=True),
    Setting("profile", "str", "Rule profile: default, release, static.", "default", key="profile", flag="--profile"),
    Setting("max_size", "size", "Size budget for every artifact (STR003): bytes, or 10M, 512k.", 0, key="max-size",
            flag="--max-size", metavar="SIZE", rule_visible=True),
    Setting("size_baseline", "path", "A previous JSON report: artifacts that grew beyond --max-growth fail STR004.",
            key="size-baseline", flag="--size-baseline", metavar="REPORT"),
    Setting("max_growth", "float", "Growth over --size-baseline allowed before STR004 (default 0: any growth).", 0.0,
            key="max-growth", flag="--max-growth", metavar="PERCENT", rule_visible=True, normalise=_percent),
    Setting("time_budget", "float", "Seconds one file may take before it becomes that artifact's error (ART001) "
            "and the scan goes on (default 600).", 0.0, key="time-budget", flag="--time-budget", metavar="SECONDS",
            normalise=_seconds),
    Setting("memory_budget", "size", "Memory one file may take (beyond the process's own; 2G, 512M) before it "
            "becomes that artifact's error (ART001) and the scan goes on (default: no bound).", 0,
            key="memory-budget", flag="--memory-budget", metavar="SIZE"),
    Setting("check_loading", "bool", "For a container image (or tarball, .deb), or a root filesystem directory, "
            "named on the command line: resolve every dynamic program (and Python extension module and Node.js "
            "addon) in its final filesystem as the loader would there, and report those that would fail to load "
            "(the DEP rules).", False,
            key="check-loading", flag="--check-loading"),
    Setting("isa_level", "choice", "With --check-loading: the target CPU's level (glibc-hwcaps directories up to "
            "it: x86-64-v2 to -v4, power9, power10, z13 to z16; armv8-a, armv8.1-a (with atomics): ARMv8; "
            "baseline: none; host: this machine's; docs/deps.md).",
            "baseline", key="isa-level", flag="--isa-level", choices=(*ISA_LEVELS, "host")),
    Setting("cpu_vendor", "choice", "With --check-loading: the target CPU's maker (glibc names an Intel CPU of "
            "x86-64-v3 haswell: $PLATFORM and, before glibc 2.37, a library subdirectory; host: this machine's).",
            "other", key="cpu-vendor", flag="--cpu-vendor", choices=(*CPU_VENDORS, "host")),
    Setting("dask", "str", "Run the analysis on a Dask cluster: a scheduler address (tcp://host:8786) or local[:N] "
            "for a local cluster of N worker processes (pip install 'binlens[dask]'; paths must be visible to the "
            "workers).", "", key="dask", flag="--dask", metavar="ADDRESS"),
    Setting("platform", "str", "The platform (os/arch[/variant]: linux/arm64) chosen in a multi-platform image "
            "(default: the image's one platform; several are the image's error).", "", key="platform",
            flag="--platform", metavar="OS/ARCH"),
    Setting("image", "str", "The image chosen in a file of several (`docker save a b`, an OCI layout naming "
            "several): a name or tag it is given there (a:1).", "", key="image", flag="--image", metavar="NAME"),
    Setting("unpack_total", "size", "Bytes a container named or found may unpack in all, those inside it counted "
            "(16G, 500M), before it is that container's error (default 16G).", None, key="unpack-total",
            flag="--unpack-total", metavar="SIZE"),
    Setting("unpack_member", "size", "Bytes one member of a container may unpack to (default 4G).", None,
            key="unpack-member", flag="--unpack-member", metavar="SIZE"),
    Setting("unpack_ratio", "count", "Bytes unpacked per compressed byte of a container before it is taken for a "
            "compression bomb (default 200).", None, key="unpack-ratio", flag="--unpack-ratio", metavar="N"),
    Setting("unpack_members", "count", "Members read from one container, those inside it counted (default "
            "65536).", None, key="unpack-members", flag="--unpack-members", metavar="N"),
    Setting("unpack_depth", "count", "Containers inside containers, levels deep (default 4).", None,
            key="unpack-depth", flag="--unpack-depth", metavar="N"),
    Setting("cache_dir", "str", "Where the result cache lives (default: $XDG_CACHE_HOME/binlens): facts of "
            "unchanged files are reused, keyed by their sha256.", key="cache-dir", flag="--cache-dir", metavar="DIR"),
    Setting("no_cache", "bool", "Compute every fact; read and write no result cache.", False, key="no-cache",
            flag="--no-cache"),
    Setting("min_go", "str", "The oldest Go toolchain a Go binary may be built with (GO006), e.g. 1.22.7.", "",
            key="min-go", flag="--min-go", metavar="VERSION", rule_visible=True, normalise=_go_version),
    Setting("fail_on", "choice", "Exit 1 when a finding is at or above this severity (default: error).", "error",
            key="fail-on", flag="--fail-on", choices=(*SEVERITIES, "never")),
    Setting("failing_only", "bool", "Report only the artifacts with findings that fail the gate (any format; the "
            "exit code still judges every artifact).", False, key="failing-only", flag="--failing-only"),
    Setting("rules", "paths", "A TOML file of extra rules, in the catalogue's format; repeatable.", [], key="rules",
            flag="--rules"),
    Setting("config", "path", "A binlens.toml or pyproject.toml (default: found from the current directory up).",
            flag="--config"),
    Setting("baseline", "path", "Accept the findings recorded in FILE: only new ones count.", key="baseline",
            flag="--baseline"),
    Setting("write_baseline", "path", "Record this run's findings in FILE, for --baseline.", flag="--write-baseline"),
    Setting("facts", "list", "Facts to compute besides those the rules read (default: every default fact); "
            "comma-separated or repeated. See docs/json-report.md.", [], key="facts", flag="--facts",
            metavar="NAME,..."),
    Setting("enable", "list", "Rule ids to enable on top of the profile.", [], key="enable"),
    Setting("disable", "list", "Rule ids to disable.", [], key="disable"),
    Setting("severity", "severities", "Rule id -> severity (note, warning, error).", {}, key="severity"),
    Setting("suppress", "tables", "[[suppress]] path glob, rule id and a written reason.", [], key="suppress",
            check=_suppressions),
    Setting("budgets", "tables", "[[budget]] path glob and max-size.", [], key="budget", check=_budgets),
)  # fmt: skip
BY_NAME = {s.name: s for s in SETTINGS}
BY_KEY = {s.key: s for s in SETTINGS if s.key}
# what is asked of the containers a run reads (every command that reads them takes these options)
CONTAINER_SETTINGS = ("platform", "image", "unpack_total", "unpack_member", "unpack_ratio", "unpack_members",
                      "unpack_depth")  # fmt: skip


def _string(s: Setting, value: Any, src: str, base: Path) -> Any:
    if not isinstance(value, str):
        raise _wrong(s, "a string", src)
    if s.choices and value not in s.choices:
        raise _wrong(s, f"one of {', '.join(s.choices)}", src)
    return value


def _strings(s: Setting, value: Any, src: str, base: Path) -> Any:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _wrong(s, "a list of strings", src)
    return [str(base / v) for v in value] if s.kind == "paths" else value


def _boolean(s: Setting, value: Any, src: str, base: Path) -> Any:
    if not isinstance(value, bool):
        raise _wrong(s, "true or false", src)
    return value


def _number(s: Setting, value: Any, src: str, base: Path) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _wrong(s, "a number", src)
    return float(value)


def _count(s: Setting, value: Any, src: str, base: Path) -> Any:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1 << 40:
        raise _wrong(s, "a whole number from 0", src)
    return value


def _size(s: Setting, value: Any, src: str, base: Path) -> Any:
    from analyzer.policy.config import parse_size

    return parse_size(value, src)


def _path(s: Setting, value: Any, src: str, base: Path) -> Any:
    if not isinstance(value, str):
        raise _wrong(s, "a path", src)
    return str(base / value)


def _severities(s: Setting, value: Any, src: str, base: Path) -> Any:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise _wrong(s, "a table of rule ids to severities", src)
    return value


def _tables(s: Setting, value: Any, src: str, base: Path) -> Any:
    if not isinstance(value, list):
        raise _wrong(s, "an array of tables", src)
    return s.check(value, src) if s.check else value


def _wrong(s: Setting, what: str, src: str) -> AnalyzerError:
    return AnalyzerError(f"setting '{s.key}' must be {what}", src)


# kind -> the parser of a config-file value of that kind
PARSERS: dict[str, Callable[[Setting, Any, str, Path], Any]] = {
    "str": _string, "choice": _string, "list": _strings, "paths": _strings, "bool": _boolean, "float": _number,
    "size": _size, "count": _count, "path": _path, "severities": _severities, "tables": _tables,
}  # fmt: skip


def parse_config_value(s: Setting, value: Any, src: str, base: Path) -> Any:
    """A config-file value checked against its kind; paths made relative to the file's directory `base`."""
    parsed = PARSERS[s.kind](s, value, src, base)
    return s.normalise(parsed, src) if s.normalise else parsed


def parse_option_value(s: Setting, value: Any) -> Any:
    """A command-line value as the config would hold it."""
    from analyzer.policy.config import parse_size

    if s.normalise:
        return s.normalise(value, s.flag or s.name)
    if s.kind == "size":
        return parse_size(value, s.flag or s.name)
    if s.name == "facts":
        return [name for v in value for name in v.split(",") if name]
    if s.kind in ("list", "paths"):
        return list(value)
    return value


def option_given(s: Setting, value: Any) -> bool:
    """Whether the command line set this option (click gives None or () when it did not)."""
    return value is not None and value != ()
