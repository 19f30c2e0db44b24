#!/usr/bin/env python3
"""The full Go matrix: every older Go release (fixtures/build.py's GO_OLDER) on every GOOS/GOARCH, built and
checked against the go command's own readers (`go version -m`, its -json form, `go tool buildid`) and the
headers, as tests/test_go.py does for CI's sample of them (GO_OLDER_SAMPLE).

    python scripts/go_matrix_sweep.py [PYTEST ARGS ...]

The first run builds the 27 fixtures CI does not (about 12 s each on two cores) into the fixture cache.
Exit status: pytest's.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> int:
    env = {**os.environ, "BINLENS_FULL_MATRIX": "1"}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_go.py",
                           *argv], cwd=ROOT, env=env).returncode  # fmt: skip


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
