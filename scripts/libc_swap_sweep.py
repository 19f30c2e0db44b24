#!/usr/bin/env python3
"""The loader model against this machine's loader run with another release's C library first on the library
path (a bundled libc.so.6, an LD_LIBRARY_PATH left pointing at an old tree): every line it writes.

    python scripts/libc_swap_sweep.py [--release debian-11] [--run-starting] [DIR ...]   (default: /usr/bin)

Every glibc program under the directories (ELF files with an interpreter, links left out) is resolved by binlens
with the release's /lib/x86_64-linux-gnu and /usr/lib/x86_64-linux-gnu (its libc6, libstdc++6 and libgcc-s1,
unpacked in the fixture cache by tests/test_distros.py) as LD_LIBRARY_PATH. Each one binlens says would not start
is run by this machine's ld.so with that library path and the argument --version; its stderr must be binlens's
`loader_warnings` + `loader_errors`, line for line. The ones binlens says would start are only counted, unless
--run-starting runs them too (they then run, with --version: the loader must print nothing of its own).
A program bound at start-up that binlens says stops at glibc's early-initialisation assertion (libc.so.6 older
than the loader) may crash before it, in the old C library's IFUNC resolvers: counted apart, as a failure told in
other words. Exit 1 on any other difference.
"""

from __future__ import annotations

import argparse
import glob
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "fixtures")]

LDSO = "/lib64/ld-linux-x86-64.so.2"


def _programs(dirs: list[str]) -> list[str]:
    out = []
    for d in dirs:
        for name in sorted(os.listdir(d)):
            path = os.path.join(d, name)
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            with open(path, "rb") as fh:
                if fh.read(4) == b"\x7fELF":
                    out.append(path)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="*", default=["/usr/bin"])
    parser.add_argument("--release", default="debian-11")
    parser.add_argument("--run-starting", action="store_true")
    args = parser.parse_args()
    import build

    trees = glob.glob(str(build.CACHE / "inputs" / f"*release-root-{args.release}-amd64-*"))
    if not trees:
        print(f"no unpacked {args.release} tree in the fixture cache: run tests/test_distros.py first")
        return 2
    libs = [f"{trees[0]}/lib/x86_64-linux-gnu", f"{trees[0]}/usr/lib/x86_64-linux-gnu"]
    from analyzer.facts import loader

    sysroot = loader.Sysroot("/")
    from analyzer.facts.loader.glibc import EARLY_INIT_ASSERTION

    same = differ = starting = crashed = 0
    for path in _programs(args.dirs):
        try:
            got = loader.analyze_path(path, loader.Options(ld_library_path=libs), sysroot)
        except Exception:  # (not a program binlens resolves: another system's, a damaged file)
            continue
        if got["flavour"] != "glibc" or not got["interpreter"]["path"]:
            continue
        predicted = got["loader_warnings"] + got["loader_errors"]
        if not got["loader_errors"]:
            starting += 1
            if not args.run_starting:
                continue
        ran = subprocess.run([LDSO, "--library-path", ":".join(libs), path, "--version"], capture_output=True,
                             text=True, stdin=subprocess.DEVNULL, timeout=30, env={"LC_ALL": "C"})
        real = ran.stderr.splitlines() if got["loader_errors"] else \
            [line for line in ran.stderr.splitlines() if line.startswith((path + ":", "Inconsistency"))]
        if real == predicted:
            same += 1
        elif ran.returncode < 0 and predicted == [EARLY_INIT_ASSERTION]:  # (bound at start-up: the old libc's IFUNC
            crashed += 1  # resolvers ran against the newer loader's data and crashed before the assertion)
        else:
            differ += 1
            print(f"{path}: exit {ran.returncode}\n  binlens: {predicted}\n  loader:  {real}")
    print(f"{same} equal, {differ} different, {crashed} crashed where binlens says the early-initialisation "
          f"assertion stops them; {starting} binlens says would start"
          + ("" if args.run_starting else " (not run)"))
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
