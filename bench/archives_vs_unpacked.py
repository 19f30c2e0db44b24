#!/usr/bin/env python3
"""Benchmark: scanning containers directly against scanning their unpacked trees, and the result cache.

    python bench/archives_vs_unpacked.py

1. Debian's coreutils .deb (fixture cache): `binlens scan --format json pkg.deb` against the same scan of the
   tree `dpkg-deb -x` made (the unpack itself not timed). Aim: at most 1.2x.
2. numpy's manylinux wheel against its `unzip` tree. Aim: at most 1.2x.
3. The result cache: /usr/lib/x86_64-linux-gnu scanned with an empty cache, then again. Aim: the second at
   least 10x faster.
(And, without an aim, coreutils' .deb built again with dpkg-deb -Znone, -Zgzip and -Zzstd (what the xz
stream's decompression alone costs), and coreutils as a snap against its unsquashfs tree, where squashfs-tools is
installed.)
Each after one untimed pass (the page cache warm); ratios printed, for the .deb with CPU times and the bound
its CPU time sets on this machine's cores. binlens as a wheel installs it (bytecode
compiled: timing.wheel_install).
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "fixtures"), str(ROOT / "bench")]

from timing import alternating, alternating_cpu, timed, timed_cpu, wheel_install  # noqa: E402


def main() -> None:
    import build

    fx = build.build_all()
    installed = wheel_install(str(ROOT))  # what users run: a wheel install, bytecode compiled
    binlens = [installed, "scan", "--format", "json", "-o", "/dev/null", "--fail-on", "never", "--no-cache"]
    with tempfile.TemporaryDirectory() as tmp:
        deb = str(fx["coreutils.deb"])
        subprocess.run(["dpkg-deb", "-x", deb, f"{tmp}/deb"], check=True)
        print("coreutils .deb, median of 7 rounds")
        med = alternating_cpu({"scan the .deb": [[*binlens, deb]], "scan its dpkg-deb -x tree": [[*binlens,
                              f"{tmp}/deb"]]}, "scan its dpkg-deb -x tree", 7)  # fmt: skip
        _deb_floor(deb, tmp, med["scan its dpkg-deb -x tree"])
        # (no aim) the same package built again by dpkg-deb with each compression: what the .deb's ratio owes to
        # xz's one block alone (liblzma's CPU, on the cores the analysis uses) against what reading any package costs
        shutil.copytree(f"{tmp}/deb", f"{tmp}/rebuilt", symlinks=True)
        subprocess.run(["dpkg-deb", "-e", deb, f"{tmp}/rebuilt/DEBIAN"], check=True)
        repacked = {}
        for comp in ("none", "gzip", "zstd"):
            repacked[f"the .deb repacked ({comp})"] = [[*binlens, f"{tmp}/coreutils-{comp}.deb"]]
            subprocess.run(["dpkg-deb", "--root-owner-group", f"-Z{comp}", "-b", f"{tmp}/rebuilt",
                            f"{tmp}/coreutils-{comp}.deb"], check=True, stdout=subprocess.DEVNULL)
        print("coreutils .deb built again with each compression (no aim), median of 7 rounds")
        alternating({**repacked, "scan its dpkg-deb -x tree": [[*binlens, f"{tmp}/deb"]]}, "scan its dpkg-deb -x tree",
                    7)
        whl = str(fx["numpy-2.2.6-cp311-cp311-manylinux_2_17_x86_64.whl"])
        subprocess.run(["unzip", "-q", whl, "-d", f"{tmp}/whl"], check=True)
        print("numpy wheel, median of 7 rounds")
        alternating({"scan the wheel": [[*binlens, whl]], "scan its unzip tree": [[*binlens, f"{tmp}/whl"]]},
                    "scan its unzip tree", 7)
        if shutil.which("mksquashfs"):  # (squashfs-tools: in the README's apt-get line)
            snap = f"{tmp}/coreutils_9.1_amd64.snap"
            subprocess.run(["mksquashfs", f"{tmp}/deb", snap, "-comp", "xz", "-noappend", "-quiet", "-no-progress"],
                           check=True, stdout=subprocess.DEVNULL)
            subprocess.run(["unsquashfs", "-quiet", "-no-progress", "-d", f"{tmp}/snap", snap], check=True,
                           stdout=subprocess.DEVNULL)
            print("coreutils as a snap (xz), median of 7 rounds (no aim; its programs of a block or more are "
                  "decompressed by the workers, the smaller ones in the main process)")
            alternating({"scan the snap": [[*binlens, snap]], "scan its unsquashfs tree": [[*binlens, f"{tmp}/snap"]]},
                        "scan its unsquashfs tree", 7)
        timed([[*binlens, "/usr/lib/x86_64-linux-gnu"]])  # page cache
        pairs = []
        for i in range(3):  # a fresh cache each time: the first scan fills it, the second reuses it
            cache = f"{tmp}/cache{i}"
            cached = [installed, "scan", "--format", "json", "-o", "/dev/null", "--fail-on", "never",
                      "--cache-dir", cache, "/usr/lib/x86_64-linux-gnu"]
            pairs.append((timed([cached]), timed([cached])))
            shutil.rmtree(cache, ignore_errors=True)
        first, second = statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)
        print(f"result cache over /usr/lib/x86_64-linux-gnu, median of 3: first {first:.2f} s, second {second:.2f} s, "
              f"speed-up {first / second:.1f}x  (pairs: {', '.join(f'{a:.2f}/{b:.2f}' for a, b in pairs)})")


def _deb_floor(deb: str, tmp: str, tree: tuple[float, float]) -> None:
    """A lower bound on the wall time of the .deb's scan from CPU time alone: it does at least the tree's work
    (its CPU time) and decompresses the data member's xz stream, one block, which liblzma decodes on one core
    (`xz -dc`'s CPU time); no schedule of that CPU time is shorter than it over the cores. (A bound, not the
    floor: the serial start-up, which the tree's scan spends with a core idle, comes on top where nothing
    overlaps it.)"""
    import os

    member = subprocess.run(["ar", "t", deb], capture_output=True, text=True, check=True).stdout.split()
    data = next(m for m in member if m.startswith("data.tar"))
    subprocess.run(["ar", "x", deb, data], cwd=tmp, check=True)
    if not data.endswith(".xz"):
        return
    xz = min(timed_cpu([["xz", "-dc", f"{tmp}/{data}"]])[1] for _ in range(5))
    cores = len(os.sched_getaffinity(0))
    floor = (tree[1] + xz) / cores
    print(f"the .deb's CPU-time bound on {cores} cores: (the tree's CPU {tree[1]:.2f} s + xz -dc of {data} "
          f"{xz:.2f} s) / {cores} = {floor:.2f} s, {floor / tree[0]:.2f} x the tree's wall time (aim 1.2)")


if __name__ == "__main__":
    main()
