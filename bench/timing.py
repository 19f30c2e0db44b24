"""What the benchmark scripts share: timing commands after a warm-up pass, and printing ratios."""

from __future__ import annotations

import subprocess
import time


def timed(cmds: list[list[str]]) -> float:
    """Wall time of running the commands one after another, output discarded."""
    start = time.perf_counter()
    for cmd in cmds:
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def compare(runs: dict[str, list[list[str]]], baseline: str) -> dict[str, float]:
    """One untimed pass of each (the page cache warmed for all), then the timed pass; ratios printed."""
    for cmds in runs.values():
        timed(cmds)
    times = {name: timed(cmds) for name, cmds in runs.items()}
    width = max(len(n) for n in runs)
    for name, t in times.items():
        print(f"{name:<{width}}  {t:7.2f} s   ratio to {baseline} {t / times[baseline]:5.2f}")
    return times
