#!/usr/bin/env python3
"""Every ELF file under the given directories (default /usr) against checksec 2.6 and hardening-check, as
tests/test_hardening.py does for its sample; prints each difference and a count.

    python scripts/hardening_sweep.py [DIR ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "fixtures")]

from analyzer.load import sniff_file  # noqa: E402
from analyzer.load.sources import walk  # noqa: E402


def main(argv: list[str]) -> int:
    import test_hardening

    paths = [p for d in (argv or ["/usr"]) for p in walk(d) if sniff_file(p) == "ELF"]
    test_hardening._elf_paths = lambda _built: paths  # the sweep's own file list
    test_hardening.MIN_SAMPLE = (0, 0)  # (CI's sample size: a sweep of a small folder is a sweep too)
    try:
        test_hardening.test_agrees_with_checksec_and_hardening_check({})
    except AssertionError as e:
        print(e)
        return 1
    print(f"{len(paths)} files: no difference")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
