#!/usr/bin/env python3
"""`binlens checksec` against checksec 2.6 (`checksec --dir`) on the same directory, in one run: prints both
wall times and the ratio to checksec (below 1 is faster).

    python bench/checksec_vs_checksec.py [DIR]      (default /usr/bin)
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import compare  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> int:
    folder = argv[0] if argv else "/usr/bin"
    compare(
        {
            "checksec --dir": [["checksec", "--output=json", f"--dir={folder}"]],
            "binlens checksec": [[sys.executable, "-m", "analyzer", "checksec", "--format", "json", folder]],
        },
        baseline="checksec --dir",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
