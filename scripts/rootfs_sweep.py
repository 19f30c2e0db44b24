#!/usr/bin/env python3
"""`binlens scan ROOT --check-loading` against the root filesystem's own loader, run in it (as root: chroot).

    sudo python scripts/rootfs_sweep.py ROOT [--baseline]   # e.g. debootstrap --variant=minbase bookworm ROOT

For every program and plugin binlens resolves in ROOT, `chroot ROOT /lib64/ld-linux-x86-64.so.2 --list` of it
(x86-64 roots) must map the same libraries from the same paths, and a program binlens says fails to load (a DEP
error) must be one that loader fails to list. Prints each difference and a count; exit 1 on any. binlens predicts
for this machine's CPU (--isa-level host --cpu-vendor host); with --baseline, for its default CPU, and the loader
sees this one made a baseline x86-64 CPU (GLIBC_TUNABLES masks out SSE4.2, AVX2 and AVX-512).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> int:
    baseline = "--baseline" in argv
    argv = [a for a in argv if a != "--baseline"]
    if len(argv) != 1:
        print(__doc__)
        return 2
    tree = argv[0].rstrip("/")
    # the loader runs on this machine's CPU: binlens predicts for it (glibc-hwcaps, haswell: docs/deps.md), or
    # both see a baseline CPU
    cpu = [] if baseline else ["--isa-level", "host", "--cpu-vendor", "host"]
    env = {"GLIBC_TUNABLES": "glibc.cpu.hwcaps=-SSE4_2,-AVX2,-AVX512F,-AVX512CD,-AVX512BW,-AVX512DQ,-AVX512VL"} \
        if baseline else None
    out = subprocess.run([sys.executable, "-m", "analyzer", "scan", tree, "--check-loading", "--format", "json",
                          "--no-cache", "--fail-on", "never", *cpu], capture_output=True, text=True, cwd=ROOT,
                         check=True)
    compared = differ = 0
    for a in json.loads(out.stdout)["artifacts"]:
        deps = a["facts"].get("deps")
        if not deps:
            continue
        inside = a["path"][len(tree):]
        listed = subprocess.run([shutil.which("chroot") or "/usr/sbin/chroot", tree, "/lib64/ld-linux-x86-64.so.2",
                                 "--list", inside], capture_output=True, text=True, env=env)
        theirs = {m[1]: m[2] for m in re.finditer(r"^\s+(\S+) => (\S+) \(0x", listed.stdout, re.M)}
        mine = {x["name"]: x["path"] for x in deps["libraries"] if x["name"] != "ld-linux-x86-64.so.2"}
        fails = any(f["rule"].startswith("DEP") and f["severity"] == "error" for f in a["findings"])
        compared += 1
        if (listed.returncode != 0) != fails or (listed.returncode == 0 and mine != theirs):
            differ += 1
            print(f"{inside}: loader {'fails' if listed.returncode else 'maps'} {theirs}; binlens "
                  f"{'fails' if fails else 'maps'} {mine}")
    print(f"{compared} programs and plugins compared, {differ} differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
