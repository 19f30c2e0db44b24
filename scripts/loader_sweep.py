#!/usr/bin/env python3
"""The loader model against this machine's own loader, on files nobody built for binlens (CI runs samples:
tests/test_ldso.py, tests/test_pyext.py).

    python scripts/loader_sweep.py [--wheels] [DIR ...]     (default: /usr)

DIR: every program (an ELF file with an interpreter) and every plugin (a Python extension module, a Node.js
addon) under the directories, as `scan --check-loading` picks them, resolved by binlens for this machine's
CPU; each one binlens says would not load is run through the real loader (`ld.so --list` for a program, this
interpreter's own dlopen with RTLD_NOW for a Python extension module of its ABI), and printed with the loader's
verdict: a program that loads is a false failure.
--wheels: every ELF file of the wheels scripts/wheel_sweep.py downloaded (the fixture cache's wheel-sweep-x86_64),
unpacked, against `ld.so --list`: the libraries mapped and their paths must be binlens's, and a file the loader
maps is one binlens must not fail for a missing library (symbol binding, which --list does not do, is shown
apart).
Exit 1 on any difference.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "fixtures")]

LDSO = "/lib64/ld-linux-x86-64.so.2"


def _verdict(path: str) -> tuple[dict[str, object], list[str]]:
    from test_ldso import host_options

    from analyzer.facts import loader

    got = loader.analyze_path(path, loader.Options(**host_options()))
    return got, got["loader_errors"]


def _real_loads(path: str, got: dict[str, object]) -> tuple[bool, str]:
    """Whether the real loader loads it, and what it said."""
    if got.get("python_module"):
        import sysconfig

        if not path.endswith((sysconfig.get_config_var("EXT_SUFFIX"), ".abi3.so")):
            return False, "(an extension module of another Python: not this interpreter's to load)"
        code = f"import ctypes, os\nctypes.CDLL({path!r}, os.RTLD_NOW)"
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        return proc.returncode == 0, proc.stderr.strip().splitlines()[-1:][0] if proc.stderr.strip() else ""
    proc = subprocess.run([LDSO, "--list", path], capture_output=True, text=True, timeout=60, env={})
    return proc.returncode == 0, proc.stderr.strip()


def sweep_tree(dirs: list[str]) -> int:
    from analyzer.load.sources import tree_programs

    differ = checked = 0
    for top in dirs:
        for path in tree_programs(top):  # (the programs and plugins, as `scan --check-loading` picks them)
            checked += 1
            try:
                got, errors = _verdict(path)
            except Exception as e:  # noqa: BLE001 (another OS's program: not the Linux loaders' to model)
                print(f"skip     {path}: {e}")
                continue
            if not errors:
                continue
            loads, said = _real_loads(path, got)
            differ += loads
            print(f"{'DIFFERS' if loads else 'agrees '}  {path}: binlens {errors[0]!r}; the loader: "
                  f"{'loads it' if loads else said}")
    print(f"{checked} programs and plugins, {differ} that binlens fails and the loader loads")
    return differ


def sweep_wheels() -> int:
    import build
    from test_ldso import ld_list

    differ = checked = 0
    for wheel in sorted((build.CACHE / "wheel-sweep-x86_64").glob("*.whl")):
        if wheel.name.endswith("-any.whl"):
            continue
        with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(wheel) as z:
            z.extractall(tmp)
            for root, _, files in os.walk(tmp):
                for name in sorted(files):
                    path = os.path.join(root, name)
                    with open(path, "rb") as fh:
                        if fh.read(4) != b"\x7fELF":
                            continue
                    checked += 1
                    expected = ld_list(path)
                    got, errors = _verdict(path)
                    if expected is None:
                        continue  # (the loader maps it not: binlens's verdict is checked by sweep_tree's way)
                    mine = {d["name"]: d["path"] for d in got["libraries"] if d["name"] != os.path.basename(LDSO)}
                    unbound = [e for e in errors if "undefined symbol" in e]
                    if mine != expected or [e for e in errors if e not in unbound]:
                        differ += 1
                        print(f"DIFFERS  {wheel.name} {path[len(tmp):]}: {errors[:1]}",
                              {k: (mine.get(k), expected.get(k)) for k in set(mine) | set(expected)
                               if mine.get(k) != expected.get(k)})
                    elif unbound:
                        print(f"binding  {wheel.name} {path[len(tmp):]}: {unbound[0]} (ld.so --list binds nothing)")
    print(f"{checked} ELF files of the downloaded wheels, {differ} mapped otherwise than ld.so --list maps them")
    return differ


def main(argv: list[str]) -> int:
    dirs = [a for a in argv if not a.startswith("--")]
    differ = sweep_wheels() if "--wheels" in argv else 0
    if dirs or "--wheels" not in argv:
        differ += sweep_tree(dirs or ["/usr"])
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
