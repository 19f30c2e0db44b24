#!/usr/bin/env python3
"""Regenerate analyzer/data/fortify.json: the functions glibc fortifies (it exports __NAME_chk), read from a
libc.so.6 the way checksec and hardening-check read the host's, but once, with the source named.

    python scripts/gen_fortify.py [LIBC]     (default: /lib/x86_64-linux-gnu/libc.so.6)
    python scripts/gen_fortify.py --check    (exit 1 when the data file differs from what LIBC gives)
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "analyzer" / "data" / "fortify.json"
DEFAULT_LIBC = "/lib/x86_64-linux-gnu/libc.so.6"


def generate(libc: str) -> dict:
    symbols = subprocess.run(["readelf", "--dyn-syms", "-W", libc], capture_output=True, text=True, check=True).stdout
    # as checksec strips them: every leading underscore, then the _chk suffix (____longjmp_chk -> longjmp)
    names = sorted({m.lstrip("_") for m in re.findall(r" (_\w+)_chk@@\S+$", symbols, re.M)})
    banner = re.search(rb"GNU C Library [^\n\0]*version [\d.]+", Path(libc).read_bytes())
    version = banner[0].decode() if banner else "unknown version"
    return {"source": f"{libc}: {version}", "generated_by": "scripts/gen_fortify.py", "fortifiable": names}


def main(argv: list[str]) -> int:
    check = "--check" in argv
    args = [a for a in argv if a != "--check"]
    data = generate(args[0] if args else DEFAULT_LIBC)
    text = json.dumps(data, indent=1) + "\n"
    if check:
        current = json.loads(OUT.read_text())
        return 0 if current["fortifiable"] == data["fortifiable"] else 1
    OUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
