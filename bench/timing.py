"""What the benchmark scripts share: timing commands after a warm-up pass, and printing ratios."""

from __future__ import annotations

import subprocess
import time


def timed(cmds: list[list[str]], env: dict[str, str] | None = None, cwd: str | None = None) -> float:
    """Wall time of running the commands one after another, output discarded."""
    start = time.perf_counter()
    for cmd in cmds:
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, env=env, cwd=cwd)
    return time.perf_counter() - start


def compare(runs: dict[str, list[list[str]]], baseline: str, env: dict[str, str] | None = None,
            cwd: str | None = None) -> dict[str, float]:
    """One untimed pass of each (the page cache warmed for all), then the timed pass; ratios printed."""
    for cmds in runs.values():
        timed(cmds, env, cwd)
    times = {name: timed(cmds, env, cwd) for name, cmds in runs.items()}
    width = max(len(n) for n in runs)
    for name, t in times.items():
        print(f"{name:<{width}}  {t:7.2f} s   ratio to {baseline} {t / times[baseline]:5.2f}")
    return times
