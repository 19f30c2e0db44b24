"""Run configuration: [tool.binlens] in pyproject.toml or binlens.toml, merged with the command line."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analyzer import policy
from analyzer.errors import AnalyzerError

KEYS = {
    "profile",
    "targets",
    "fail-on",
    "arch",
    "require-static",
    "enable",
    "disable",
    "severity",
    "rules",
    "suppress",
    "baseline",
    "min-go",
    "max-size",
    "budget",
    "max-growth",
    "size-baseline",
}


@dataclass
class Config:
    profile: str = "default"
    targets: list[str] = field(default_factory=list)
    fail_on: str = "error"
    arch: str = ""
    require_static: bool | None = None
    enable: list[str] = field(default_factory=list)
    disable: list[str] = field(default_factory=list)
    severity: dict[str, str] = field(default_factory=dict)
    rules: list[str] = field(default_factory=list)
    suppress: list[dict[str, str]] = field(default_factory=list)
    baseline: str | None = None
    min_go: str = ""
    max_size: int = 0
    budgets: list[dict[str, Any]] = field(default_factory=list)
    max_growth: float = 0.0
    size_baseline: str | None = None
    source: str = "defaults"


def find_config(start: Path) -> Path | None:
    """binlens.toml, else a pyproject.toml with [tool.binlens], in `start` or its parents."""
    for d in (start, *start.parents):
        if (d / "binlens.toml").is_file():
            return d / "binlens.toml"
        pp = d / "pyproject.toml"
        if pp.is_file():
            try:
                if "binlens" in tomllib.loads(pp.read_text()).get("tool", {}):
                    return pp
            except (tomllib.TOMLDecodeError, OSError):
                pass
    return None


def load(path: Path | None) -> Config:
    """The configuration in `path` (None: defaults); AnalyzerError for an invalid one."""
    if path is None:
        return Config()
    src = str(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as e:
        raise AnalyzerError(f"cannot read config: {e.strerror or e}", src) from None
    except tomllib.TOMLDecodeError as e:
        raise AnalyzerError(f"TOML error: {e}", src) from None
    if path.name == "pyproject.toml":
        data = data.get("tool", {}).get("binlens", {})
    unknown = set(data) - KEYS
    if unknown:
        raise AnalyzerError(f"unknown setting(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(KEYS))})", src)
    cfg = Config(source=src)

    def typed(key: str, kind: type, default: Any) -> Any:
        value = data.get(key, default)
        if not isinstance(value, kind):
            raise AnalyzerError(f"setting '{key}' must be a {kind.__name__}", src)
        return value

    cfg.profile = typed("profile", str, cfg.profile)
    cfg.targets = typed("targets", list, [])
    cfg.fail_on = typed("fail-on", str, cfg.fail_on)
    cfg.arch = typed("arch", str, "")
    cfg.require_static = data.get("require-static")
    cfg.enable = typed("enable", list, [])
    cfg.disable = typed("disable", list, [])
    cfg.severity = typed("severity", dict, {})
    base = path.parent
    cfg.rules = [str(base / r) for r in typed("rules", list, [])]
    cfg.suppress = typed("suppress", list, [])
    cfg.min_go = typed("min-go", str, "")
    cfg.max_size = parse_size(data.get("max-size", 0), src)
    cfg.budgets = typed("budget", list, [])
    for b in cfg.budgets:
        if not isinstance(b, dict) or not isinstance(b.get("path"), str) or "max-size" not in b:
            raise AnalyzerError("each [[budget]] needs a path glob and a max-size", src)
        b["max-size"] = parse_size(b["max-size"], src)
    growth = data.get("max-growth", 0)
    if not isinstance(growth, int | float):
        raise AnalyzerError("setting 'max-growth' must be a number (percent)", src)
    cfg.max_growth = float(growth)
    sb = data.get("size-baseline")
    cfg.size_baseline = str(base / sb) if isinstance(sb, str) else None
    accepted = data.get("baseline")
    cfg.baseline = str(base / accepted) if isinstance(accepted, str) else None
    for s in cfg.suppress:
        if not isinstance(s, dict) or not all(
            isinstance(s.get(k), str) and s.get(k) for k in ("path", "rule", "reason")
        ):
            raise AnalyzerError("each [[suppress]] needs a path glob, a rule id and a written reason", src)
    return cfg


def build_policy(cfg: Config, extra_rule_files: list[str]) -> policy.Policy:
    """The rules, severities, settings and suppressions a run applies."""
    src = cfg.source
    profiles = policy.profiles()
    if cfg.profile not in profiles:
        raise AnalyzerError(f"unknown profile '{cfg.profile}' (known: {', '.join(profiles)})", src)
    prof = profiles[cfg.profile]
    rules = policy.builtin_rules()
    for f in [*cfg.rules, *extra_rule_files]:
        rules.extend(policy.load_rule_file(f))
    ids = [r.id for r in rules]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise AnalyzerError(f"rule id(s) defined twice: {', '.join(dup)}", src)
    known = set(ids)
    named = [*cfg.enable, *cfg.disable, *cfg.severity, *(s["rule"] for s in cfg.suppress)]
    unknown = sorted({r for r in named if r not in known})
    if unknown:
        raise AnalyzerError(f"unknown rule id(s): {', '.join(unknown)}", src)
    for rid, sev in {**prof.get("severity", {}), **cfg.severity}.items():
        if sev not in policy.SEVERITIES:
            raise AnalyzerError(f"severity of {rid} must be one of {', '.join(policy.SEVERITIES)}", src)
    if cfg.fail_on not in (*policy.SEVERITIES, "never"):
        raise AnalyzerError(f"fail-on must be one of {', '.join(policy.SEVERITIES)} or never", src)
    disabled = (set(prof.get("disable", [])) | set(cfg.disable)) - set(cfg.enable)
    settings: dict[str, Any] = {"targets": list(cfg.targets), "arch": cfg.arch, "require_static": False}
    settings.update(_go_settings(cfg.min_go, src))
    settings.update(max_size=cfg.max_size, max_growth=cfg.max_growth)
    settings.update(prof.get("settings", {}))
    if cfg.require_static is not None:
        settings["require_static"] = bool(cfg.require_static)
    return policy.Policy(
        rules=tuple(r for r in rules if r.id not in disabled),
        severity={**prof.get("severity", {}), **cfg.severity},
        settings=settings,
        suppressions=tuple(policy.Suppression(s["path"], s["rule"], s["reason"]) for s in cfg.suppress),
        budgets=tuple((b["path"], b["max-size"]) for b in cfg.budgets),
        size_baseline=_size_baseline(cfg.size_baseline) if cfg.size_baseline else {},
    )


def _go_settings(min_go: str, src: str) -> dict[str, Any]:
    """min_go and its comparable number; the oldest supported Go minor (two behind the latest)."""
    import tomllib as toml
    from importlib import resources

    from analyzer.facts.gobuildinfo import parse_version

    number = 0
    if min_go:
        parsed = parse_version(min_go if min_go.startswith("go") else "go" + min_go)
        if parsed is None:
            raise AnalyzerError(f"min-go must be a Go version such as 1.22.7, not '{min_go}'", src)
        number = parsed["number"]
    latest = toml.loads(resources.files("analyzer").joinpath("data/go.toml").read_text())["latest"]
    return {"min_go": min_go, "min_go_number": number, "go_supported_minor": int(latest.split(".")[1]) - 1}


def parse_size(value: Any, src: str) -> int:
    """Bytes from 123, "123", "10k", "25MiB", "1.5 MB" (k/M/G are powers of 1024)."""
    import re

    if isinstance(value, int) and value >= 0:
        return value
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)(?:i?B)?\s*", str(value))
    if not m:
        raise AnalyzerError(f"not a size: '{value}' (bytes, or a number with k, M or G)", src)
    return int(float(m[1]) * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[m[2].lower()])


def _size_baseline(path: str) -> dict[str, int]:
    """path and file name -> size, from a previous `binlens scan --format json` report."""
    import json
    import os

    try:
        report = json.loads(Path(path).read_text())
        out: dict[str, int] = {}
        for a in report["artifacts"]:
            if a.get("size") is not None:
                out.setdefault(a["path"], a["size"])
                out.setdefault(os.path.basename(a["path"]), a["size"])
        return out
    except OSError as e:
        raise AnalyzerError(f"cannot read size baseline: {e.strerror or e}", path) from None
    except (ValueError, KeyError, TypeError):
        raise AnalyzerError("not a binlens JSON report", path) from None
