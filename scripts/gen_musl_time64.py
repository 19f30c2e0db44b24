#!/usr/bin/env python3
"""Generate analyzer/data/musl_time64.json: the symbols a 32-bit musl program imports for 64-bit time, which
musl defines from 1.2.0 on (its release notes: "time_t is now 64-bit on all archs"); musl 1.1 has none of them,
so a program importing one fails there (`Error relocating ...: __clock_gettime64: symbol not found`).

Source: musl's own headers as the ziglang wheel pinned in pyproject's `test` extra ships them
(lib/libc/include/generic-musl; MIT): every `__REDIR(name, __name_time64)` under `_REDIR_TIME64`, which the
32-bit architectures' bits/alltypes.h turn on.

    python scripts/gen_musl_time64.py            # write the file
    python scripts/gen_musl_time64.py --check    # exit 1 when the committed file differs from a fresh one
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "analyzer" / "data" / "musl_time64.json"


def headers() -> Path:
    import ziglang

    return Path(ziglang.__file__).parent / "lib" / "libc" / "include" / "generic-musl"


def generate() -> str:
    zig = subprocess.run([sys.executable, "-m", "ziglang", "version"], capture_output=True, text=True,
                         check=True).stdout.strip()
    redirected: dict[str, str] = {}
    for header in sorted(headers().rglob("*.h")):
        for old, new in re.findall(r"__REDIR\((\w+), (\w+)\);", header.read_text()):
            redirected[new] = old
    data = {"introduced": "1.2", "source": f"musl's headers (__REDIR under _REDIR_TIME64) as zig {zig} ships "
            "them (MIT)", "symbols": dict(sorted(redirected.items()))}
    return json.dumps(data, indent=1) + "\n"


def main() -> int:
    from generated import write_or_check

    return write_or_check(OUT, generate, "gen_musl_time64.py")


if __name__ == "__main__":
    sys.exit(main())
