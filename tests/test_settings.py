"""Settings are declared once (analyzer/policy/settings.py): the command line, the config file, what rules
read and the docs must all follow the table; adding a setting to one and not the others fails here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from analyzer.cli import main
from analyzer.errors import AnalyzerError
from analyzer.policy import config
from analyzer.policy.settings import SETTINGS

# a valid config-file value for every kind
SAMPLE_VALUES = {
    "str": "x86_64", "choice": "warning", "list": ["debian-12"], "bool": True, "float": 5.0, "size": "10M", "count": 3,
    "path": "base.json", "paths": [], "severities": {"LNK004": "note"}, "tables": [],
}  # fmt: skip


def _option_names(command: str) -> set[str]:
    cmd = main.commands[command]
    options = [p for p in cmd.params if p.param_type_name == "option"]
    return {opt for p in options for opt in (*p.opts, *p.secondary_opts)} - {"--help", "-h"}


@pytest.mark.parametrize("command", ["scan", "inspect"])
def test_command_line_options_are_the_settings_with_flags(command: str) -> None:
    expected = {name for s in SETTINGS if s.flag for name in (*s.flag.split("/"), *([s.short] if s.short else []))}
    extra = {"--jobs", "-j"} if command == "scan" else set()
    assert _option_names(command) == expected | extra


def test_config_file_accepts_exactly_the_settings_keys(tmp_path: Path) -> None:
    keys = [s for s in SETTINGS if s.key]
    (tmp_path / "base.json").write_text('{"artifacts": [], "findings": []}')
    cfg_file = tmp_path / "binlens.toml"
    lines = []
    for s in keys:
        value = SAMPLE_VALUES[s.kind]
        if s.kind == "choice":  # (a value of its own that is not its default)
            value = next(c for c in s.choices if c != s.default)
        if s.name == "targets":
            value = ["debian-12"]
        elif s.name == "profile":
            value = "release"
        elif s.name == "min_go":
            value = "1.22.7"
        elif s.name in ("enable", "disable"):
            value = ["LNK004"]
        elif s.name == "facts":
            value = ["deps"]
        elif s.name == "rules":
            (tmp_path / "extra.toml").write_text("")
            value = ["extra.toml"]
        lines.append(f"{s.key} = {_toml(value)}")
    cfg_file.write_text("\n".join(lines) + "\n")
    cfg = config.load(cfg_file)
    for s in keys:
        assert cfg.values[s.name] != s.default or s.kind == "tables", s.key
    pol = config.build_policy(cfg)
    for s in SETTINGS:
        assert (s.name in pol.settings) == s.rule_visible, s.name
    cfg_file.write_text("not-a-setting = 1\n")
    with pytest.raises(AnalyzerError, match="unknown setting"):
        config.load(cfg_file)


@pytest.mark.parametrize("setting", [s for s in SETTINGS if s.key and s.kind not in ("size",)], ids=lambda s: s.key)
def test_each_key_rejects_a_wrong_type_naming_the_key(setting: object, tmp_path: Path) -> None:
    cfg_file = tmp_path / "binlens.toml"
    wrong = "{ a = 1 }" if setting.kind != "severities" else "[1]"  # type: ignore[attr-defined]
    cfg_file.write_text(f"{setting.key} = {wrong}\n")  # type: ignore[attr-defined]
    with pytest.raises(AnalyzerError) as err:
        config.load(cfg_file)
    assert str(cfg_file) in str(err.value)


def test_docs_settings_table_is_current() -> None:
    assert subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_rules_doc.py"), "--check"]).returncode == 0


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    return str(value)


def test_format_names_are_the_reporters() -> None:
    from analyzer.policy.settings import FORMAT_NAMES
    from analyzer.report import FORMATS

    assert tuple(FORMATS) == FORMAT_NAMES


def test_every_kind_has_a_parser() -> None:
    from analyzer.policy.settings import PARSERS

    assert {s.kind for s in SETTINGS} <= set(PARSERS)
