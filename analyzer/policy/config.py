"""Run configuration: [tool.binlens] in pyproject.toml or binlens.toml, merged with the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from analyzer.errors import AnalyzerError
from analyzer.policy import rules as rules_mod
from analyzer.policy.settings import (
    BY_KEY,
    CONTAINER_SETTINGS,
    SETTINGS,
    option_given,
    parse_config_value,
    parse_option_value,
)


class Config:
    """A run's settings (one attribute per entry of analyzer.policy.settings.SETTINGS) and where they came from."""

    def __init__(self, source: str = "defaults") -> None:
        self.source = source
        self.values: dict[str, Any] = {s.name: s.fresh_default() for s in SETTINGS}

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["values"][name]
        except KeyError:
            raise AttributeError(name) from None

    def set(self, name: str, value: Any) -> None:
        if name not in self.values:
            raise KeyError(name)
        self.values[name] = value


def find_config(start: Path) -> Path | None:
    """binlens.toml, else a pyproject.toml with [tool.binlens], in `start` or its parents.

    A pyproject.toml that does not mention binlens is not ours, whatever it holds; one that does must parse
    (AnalyzerError with the file and line), so a typo never turns the gate off in silence."""
    for d in (start, *start.parents):
        if (d / "binlens.toml").is_file():
            return d / "binlens.toml"
        pp = d / "pyproject.toml"
        try:
            raw = pp.read_bytes() if pp.is_file() else b""
        except OSError:
            continue
        if b"binlens" not in raw:
            continue
        data = _parse_toml(raw, str(pp))
        if "binlens" in data.get("tool", {}):
            return pp
    return None


def _parse_toml(raw: bytes, src: str) -> dict[str, Any]:
    """A TOML document, or AnalyzerError naming the file and the line."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise AnalyzerError(f"not UTF-8 text (line {line})", src) from None
    return rules_mod.parse_toml(text, src)


def load(path: Path | None) -> Config:
    """The configuration in `path` (None: defaults); AnalyzerError for an invalid one."""
    if path is None:
        return Config()
    src = str(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise AnalyzerError(f"cannot read config: {e.strerror or e}", src) from None
    data = _parse_toml(raw, src)
    if path.name == "pyproject.toml":
        data = data.get("tool", {}).get("binlens", {})
    unknown = set(data) - set(BY_KEY)
    if unknown:
        known = ", ".join(sorted(BY_KEY))
        raise AnalyzerError(f"unknown setting(s) {', '.join(sorted(unknown))} (known: {known})", src)
    cfg = Config(source=src)
    for key, value in data.items():
        setting = BY_KEY[key]
        cfg.set(setting.name, parse_config_value(setting, value, src, path.parent))
    return cfg


def resolve(opts: dict[str, Any]) -> Config:
    """A run's Config: the config file (`config` in opts, else found from the current directory up), then the
    command line's options over it."""
    if opts.get("config") and not Path(opts["config"]).is_file():
        there = Path(opts["config"]).exists()
        raise AnalyzerError("not a regular file (a config file is TOML)" if there else "no such config file",
                            opts["config"])
    cfg_path = Path(opts["config"]) if opts.get("config") else find_config(Path.cwd())
    return merge_options(load(cfg_path), opts)


def limits_given(cfg: Config) -> tuple[int | None, ...]:
    """The containers' limits a Config sets (pipeline.Request.limits): () when it sets none."""
    given = tuple(getattr(cfg, n) for n in CONTAINER_SETTINGS[2:])
    return given if any(v is not None for v in given) else ()


def containers(cfg: Config) -> dict[str, Any]:
    """What a Config asks of the containers a run reads, as pipeline.Request's fields: `limits` (those given, or
    ()), `platform` and `image`."""
    return {"limits": limits_given(cfg), "platform": cfg.platform, "image": cfg.image}


def merge_options(cfg: Config, opts: dict[str, Any]) -> Config:
    """The command line's options over the config file's values (rule files add to the file's)."""
    for s in SETTINGS:
        if s.key is None or not option_given(s, opts.get(s.name)):
            continue
        value = parse_option_value(s, opts[s.name])
        cfg.set(s.name, cfg.values[s.name] + value if s.kind == "paths" else value)
    return cfg


def build_policy(cfg: Config) -> rules_mod.Policy:
    """The rules, severities, settings and suppressions a run applies."""
    src = cfg.source if cfg.source != "defaults" else None  # errors name the config file, when there is one
    profiles = rules_mod.profiles()
    if cfg.profile not in profiles:
        raise AnalyzerError(f"unknown profile '{cfg.profile}' (known: {', '.join(profiles)})", src)
    prof = profiles[cfg.profile]
    rules = rules_mod.builtin_rules()
    for f in cfg.rules:
        rules.extend(rules_mod.load_rule_file(f))
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
        if sev not in rules_mod.SEVERITIES:
            raise AnalyzerError(f"severity of {rid} must be one of {', '.join(rules_mod.SEVERITIES)}", src)
    if cfg.fail_on not in (*rules_mod.SEVERITIES, "never"):
        raise AnalyzerError(f"fail-on must be one of {', '.join(rules_mod.SEVERITIES)} or never", src)
    disabled = (set(prof.get("disable", [])) | set(cfg.disable)) - set(cfg.enable)
    settings: dict[str, Any] = {s.name: cfg.values[s.name] for s in SETTINGS if s.rule_visible}
    settings["require_static"] = False
    settings.update(_go_settings(cfg.min_go, src))
    settings.update(prof.get("settings", {}))
    if cfg.require_static is not None:
        settings["require_static"] = bool(cfg.require_static)
    return rules_mod.Policy(
        rules=tuple(r for r in rules if r.id not in disabled),
        severity={**prof.get("severity", {}), **cfg.severity},
        settings=settings,
        suppressions=tuple(rules_mod.Suppression(s["path"], s["rule"], s["reason"]) for s in cfg.suppress),
        budgets=tuple((b["path"], b["max-size"]) for b in cfg.budgets),
        size_baseline=_size_baseline(cfg.size_baseline) if cfg.size_baseline else {},
        base=str(Path(src).parent) if src else ".",
    )


def _go_settings(min_go: str, src: str | None) -> dict[str, Any]:
    """min_go and its comparable number; the oldest supported Go minor (two behind the latest)."""
    import tomllib as toml

    from analyzer import data_text

    number = 0
    if min_go:
        from analyzer.facts.go.buildinfo import parse_version

        parsed = parse_version(min_go if min_go.startswith("go") else "go" + min_go)
        if parsed is None:
            raise AnalyzerError(f"min-go must be a Go version such as 1.22.7, not '{min_go}'", src)
        number = parsed["number"]
    latest = toml.loads(data_text("data/go.toml"))["latest"]
    return {"min_go": min_go, "min_go_number": number, "go_supported_minor": int(latest.split(".")[1]) - 1}


MAX_SIZE = (1 << 63) - 1  # the largest file size a filesystem reports


def parse_size(value: Any, src: str) -> int:
    """Bytes from 123, "123", "10k", "25MiB", "1.5 MB" (k/M/G are powers of 1024)."""
    import re

    if isinstance(value, int):
        if 0 <= value <= MAX_SIZE:
            return value
        raise AnalyzerError(f"not a size: {'a negative number' if value < 0 else 'a number over 8 EiB'}", src)
    text = str(value)
    m = re.fullmatch(r"\s*(\d{1,20}(?:\.\d{1,20})?)\s*([kKmMgG]?)(?:i?B)?\s*", text[:100])
    if not m:
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise AnalyzerError(f"not a size: '{shown}' (bytes up to 8 EiB, or a number with k, M or G)", src)
    size = int(float(m[1]) * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[m[2].lower()])
    if size > MAX_SIZE:
        raise AnalyzerError(f"not a size: '{m[0].strip()}' is more than 8 EiB", src)
    return size


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
    except RecursionError:
        raise AnalyzerError("not a binlens JSON report (nested too deeply)", path) from None
    except (ValueError, KeyError, TypeError):
        raise AnalyzerError("not a binlens JSON report", path) from None


def load_baseline(path: str) -> frozenset[str]:
    """The keys (rules_mod.baseline_key) of the findings a baseline file accepts. Every field it reads is
    checked: a hand-edited or hostile file is one line naming it and the problem, never a traceback."""
    import json

    def bad(problem: str = "not a binlens baseline file (write one with --write-baseline)") -> AnalyzerError:
        return AnalyzerError(problem, path)

    try:
        data = json.loads(Path(path).read_text())
    except OSError as e:
        raise AnalyzerError(f"cannot read baseline: {e.strerror or e}", path) from None
    except (ValueError, RecursionError):
        raise bad() from None
    if not isinstance(data, dict) or "binlens_baseline" not in data:
        raise bad()
    if data["binlens_baseline"] != 2:
        raise bad("a baseline of an older binlens (keyed on messages): write it again")
    findings = data.get("findings")
    if not isinstance(findings, list):
        raise bad("not a binlens baseline file: `findings` must be a list")
    keys = []
    for i, x in enumerate(findings, 1):
        if not isinstance(x, dict) or not all(isinstance(x.get(k), str) for k in ("path", "rule", "fingerprint")):
            raise bad(f"not a binlens baseline file: finding {i} needs text `path`, `rule` and `fingerprint`")
        keys.append(rules_mod.baseline_key(x["path"], x["rule"], x["fingerprint"]))
    return frozenset(keys)
