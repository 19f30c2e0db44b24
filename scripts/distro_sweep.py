#!/usr/bin/env python3
"""The full sweep of tests/test_distros.py's table check (CI runs amd64 and arm64): for every Debian release
of fixtures/build.py's DEBIAN_RELEASES and every architecture binlens's table has for it, the release's libc6,
libstdc++6 and libgcc-s1 (its current point release, from deb.debian.org) are unpacked and every version node
their libraries define (readelf -V) is set against the nodes the table gives the release.

    python scripts/distro_sweep.py

Prints, per release and architecture, nodes the table has and the release lacks (a "runs" verdict that would
not run: a failure) and nodes the release defines that the table has not seen (the safe side: listed). Exit 1
when any release lacks a node the table has.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "fixtures"), str(ROOT / "tests"), str(ROOT)]


def main() -> int:
    import build
    from test_distros import TABLE_ARCH, defined_nodes, table_nodes

    from analyzer.policy import compat

    failed = 0
    for release, suite, versions in build.DEBIAN_RELEASES:
        arches = compat.table()["releases"][release]["arches"]
        for arch, table_arch in TABLE_ARCH.items():
            if table_arch not in arches:
                continue
            with tempfile.TemporaryDirectory() as tmp:
                try:
                    for pkg, version in zip(("libc6", "libstdc++6", "libgcc-s1"), versions, strict=True):
                        subprocess.run(["apt-get", *build.apt_options(suite, arch), "download", f"{pkg}={version}"],
                                       cwd=tmp, check=True, capture_output=True)
                except subprocess.CalledProcessError as e:
                    print(f"{release} {arch}: not downloaded ({e.stderr.decode().strip().splitlines()[-1]})")
                    continue
                for deb in Path(tmp).glob("*.deb"):
                    subprocess.run(["dpkg-deb", "-x", str(deb), f"{tmp}/root"], check=True)
                real = {n for n in defined_nodes(Path(tmp) / "root") if not n.endswith("_PRIVATE")
                        and n.split("_", 1)[0] in ("GLIBC", "GLIBCXX", "CXXABI", "GCC")}
            table = table_nodes(release, arch)
            lacking, unseen = sorted(table - real), sorted(real - table)
            failed += bool(lacking)
            print(f"{release} {arch}: {len(table)} nodes in the table, {len(real)} defined; "
                  f"the release lacks {lacking or 'none'}; the table has not seen {unseen or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
