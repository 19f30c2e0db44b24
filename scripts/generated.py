"""What the data generators share: write the generated file, or with --check say whether the committed one is
what the sources give now (the suite runs the check)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path


def write_or_check(out: Path, generate: Callable[[], str], script: str) -> int:
    """Exit status: 0 written, or unchanged under --check; 1 when the committed file differs."""
    text = generate()
    if "--check" in sys.argv:
        if out.read_text() != text:
            print(f"{out} differs from what the sources give now: run scripts/{script}", file=sys.stderr)
            return 1
        return 0
    out.write_text(text)
    return 0
