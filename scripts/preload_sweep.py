#!/usr/bin/env python3
"""The loader model against this machine's loader with one shared object preloaded into a program: every line.

    python scripts/preload_sweep.py [--into /bin/true] [FILE-OR-DIR ...]
        (default: the Python extension modules of /usr/lib/python3/dist-packages and of this interpreter's
        site-packages)

Each shared object is run as `ld.so --preload OBJECT PROGRAM`: its libraries are mapped after the program and
its references bound in the program's link map, so an extension module preloaded into /bin/true finds no
Python: its data references to the interpreter (PyExc_TypeError, _Py_NoneStruct) fail at start-up, in the order
the loader relocates the objects, its function references wait for a first call. The loader's stderr must be
`binlens deps --preload OBJECT PROGRAM`'s warnings and errors, line for line. The program is run (/bin/true by
default), and so are the preloaded objects' constructors. Exit 1 on any difference.
"""

from __future__ import annotations

import argparse
import glob
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

LDSO = "/lib64/ld-linux-x86-64.so.2"


def _objects(paths: list[str]) -> list[str]:
    found: list[str] = []
    for p in paths:
        found += glob.glob(os.path.join(p, "**", "*.so"), recursive=True) if os.path.isdir(p) else [p]
    return sorted({p for p in found if not os.path.islink(p) and os.path.isfile(p)})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*",
                        default=["/usr/lib/python3/dist-packages", sysconfig.get_paths()["purelib"]])
    parser.add_argument("--into", default="/bin/true")
    args = parser.parse_args()
    from analyzer.facts import loader

    sysroot = loader.Sysroot("/")
    same = differ = said = 0
    for obj in _objects(args.paths):
        try:
            got = loader.analyze_path(args.into, loader.Options(preload=[obj], cwd=os.getcwd()), sysroot)
        except Exception as e:  # (the program itself cannot be read: nothing to compare)
            print(f"{args.into}: {e}")
            return 2
        predicted = got["loader_warnings"] + got["loader_errors"]
        try:
            ran = subprocess.run([LDSO, "--preload", obj, args.into], capture_output=True, text=True,
                                 stdin=subprocess.DEVNULL, timeout=30, env={"LC_ALL": "C"})
        except subprocess.TimeoutExpired:
            print(f"{obj}: the program did not end within 30 s (not compared)")
            continue
        if ran.stderr.splitlines() == predicted:
            same += 1
            said += bool(predicted)
        else:
            differ += 1
            print(f"{obj}: exit {ran.returncode}\n  binlens: {predicted}\n  loader:  {ran.stderr.splitlines()}")
    print(f"{same} equal ({said} of them with the loader's messages), {differ} different")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
