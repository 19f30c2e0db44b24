#!/usr/bin/env python3
"""Benchmark: scanning containers directly against scanning their unpacked trees, and the result cache.

    python bench/archives_vs_unpacked.py

1. Debian's coreutils .deb (fixture cache): `binlens scan --format json pkg.deb` against the same scan of the
   tree `dpkg-deb -x` made (the unpack itself not timed). Aim: at most 1.2x.
2. numpy's manylinux wheel against its `unzip` tree. Aim: at most 1.2x.
3. The result cache: /usr/lib/x86_64-linux-gnu scanned with an empty cache, then again. Aim: the second at
   least 10x faster.
Each after one untimed pass (the page cache warm); ratios printed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "fixtures"), str(ROOT / "bench")]

from timing import compare, timed  # noqa: E402


def main() -> None:
    import build

    fx = build.build_all()
    binlens = [sys.executable, "-m", "analyzer", "scan", "--format", "json", "-o", "/dev/null", "--fail-on",
               "never", "--no-cache"]
    with tempfile.TemporaryDirectory() as tmp:
        deb = str(fx["coreutils.deb"])
        subprocess.run(["dpkg-deb", "-x", deb, f"{tmp}/deb"], check=True)
        print("coreutils .deb")
        compare({"scan the .deb": [[*binlens, deb]], "scan its dpkg-deb -x tree": [[*binlens, f"{tmp}/deb"]]},
                "scan its dpkg-deb -x tree")
        whl = str(fx["numpy-2.2.6-cp311-cp311-manylinux_2_17_x86_64.whl"])
        subprocess.run(["unzip", "-q", whl, "-d", f"{tmp}/whl"], check=True)
        print("numpy wheel")
        compare({"scan the wheel": [[*binlens, whl]], "scan its unzip tree": [[*binlens, f"{tmp}/whl"]]},
                "scan its unzip tree")
        cache = f"{tmp}/cache"
        cached = [sys.executable, "-m", "analyzer", "scan", "--format", "json", "-o", "/dev/null", "--fail-on",
                  "never", "--cache-dir", cache, "/usr/lib/x86_64-linux-gnu"]
        timed([[*binlens, "/usr/lib/x86_64-linux-gnu"]])  # page cache
        first = timed([cached])
        second = timed([cached])
        print(f"result cache over /usr/lib/x86_64-linux-gnu: first {first:.2f} s, second {second:.2f} s, "
              f"speed-up {first / second:.1f}x")
        shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    main()
