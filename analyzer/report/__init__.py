"""Reporters: one function per output format, each turning a report dict into text."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Reporter = Callable[[dict[str, Any], bool], str]


def get(name: str) -> Reporter:
    """The reporter for a --format name."""
    if name == "json":
        from analyzer.report import json as mod
    else:
        from analyzer.report import text as mod  # type: ignore[no-redef]
    return mod.render
