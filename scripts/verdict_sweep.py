#!/usr/bin/env python3
"""binlens's release verdicts against each Debian release's own loader, on the x86-64 ELF files of any tree
(CI checks the fixtures: tests/test_distros.py).

    python scripts/verdict_sweep.py [DIR ...]     (default: /usr)

For every x86-64 program and library under the directories and every release of fixtures/build.py's
DEBIAN_RELEASES: `binlens scan --target RELEASE` names the GLIBC, GLIBCXX, CXXABI and GCC nodes the release
lacks; the release's ld.so, run with `--list` and the release's C and C++ runtime first in its path, says which
of those nodes it cannot find for the file itself (`required by FILE`: the file's other libraries come from
this machine and are not the release's). A node the loader misses that binlens did not name is a verdict that
says "runs" where it does not: printed, and exit 1. Nodes binlens names that the loader does not reach (it
stopped at a missing library first) are counted apart.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "fixtures")]

RUNTIME = re.compile(r"^(GLIBC|GLIBCXX|CXXABI|GCC)_")
NOT_FOUND = re.compile(r"version `([^']+)' not found \(required by ([^)]+)\)")


def x86_64_elf_files(dirs: list[str]) -> list[Path]:
    out = []
    for d in dirs:
        for p in sorted(Path(d).rglob("*")):
            if p.is_file() and not p.is_symlink():
                with open(p, "rb") as f:
                    head = f.read(20)
                if head[:4] == b"\x7fELF" and head[4] == 2 and head[18] == 62 and head[16] in (2, 3):
                    out.append(p)
    return out


def main(dirs: list[str]) -> int:
    import build
    from test_distros import RELEASES, loader_of, release_root

    fixtures = build.build_all()
    files = x86_64_elf_files(dirs or ["/usr"])
    scan = subprocess.run([sys.executable, "-m", "analyzer", "scan", "--format", "json", "--no-cache", "--fail-on",
                           "never", *(a for r in RELEASES for a in ("--target", r)), *map(str, files)],
                          capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    verdicts = {e["path"]: e["facts"].get("compat", {}).get("targets", {})
                for e in json.loads(scan.stdout)["artifacts"]}  # fmt: skip
    wrong = extra = checked = 0
    for release in RELEASES:
        loader, path = loader_of(release_root(fixtures, release, "amd64"))
        for f in files:
            verdict = verdicts.get(str(f), {}).get(release)
            if not verdict:
                continue
            listed = subprocess.run([str(loader), "--library-path", path, "--list", str(f)], capture_output=True,
                                    text=True, errors="replace")  # fmt: skip
            missing = {n for n, by in NOT_FOUND.findall(listed.stdout + listed.stderr)
                       if RUNTIME.match(n) and by == str(f)}  # fmt: skip
            said = {p["node"] for p in verdict["problems"]
                    if p["kind"] in ("version", "unknown-node") and RUNTIME.match(p.get("node", ""))}  # fmt: skip
            checked += 1
            if missing - said:
                wrong += 1
                print(f"{release} {f}: the loader misses {sorted(missing - said)}; binlens named {sorted(said)}")
            extra += bool(said - missing)
    print(f"== {len(files)} files, {checked} verdicts, {wrong} that miss a node, {extra} naming nodes the loader "
          "did not reach")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
