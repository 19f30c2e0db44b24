"""The repository keeps its promises about itself: README commands, CI script."""

from __future__ import annotations

import re

from conftest import ROOT


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```sh\n(.*?)\n```", text, re.S)


def test_readme_starts_with_two_commands() -> None:
    commands = _readme_commands()
    assert len(commands) >= 2
    install, tests = commands[0], commands[1]
    assert "binlens scan" in install
    assert "pytest" in tests


def test_ci_runs_exactly_the_readme_test_command() -> None:
    test_command = _readme_commands()[1].strip()
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_command in ci_lines


def test_every_package_is_in_the_wheel() -> None:
    """pyproject lists the packages explicitly: every directory of analyzer/ with an __init__.py is among
    them, so a `pip install .` (not only an editable one) has all of binlens."""
    import tomllib

    root = ROOT
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(root).parts) for p in (root / "analyzer").rglob("__init__.py")}
    assert found - listed == set(), sorted(found - listed)
