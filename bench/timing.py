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


def alternating(runs: dict[str, list[list[str]]], baseline: str, rounds: int,
                env: dict[str, str] | None = None, cwd: str | None = None) -> dict[str, float]:
    """Each entry's commands once per round, entries in turn (a busy moment hits all alike), after one untimed
    pass; the median of the rounds printed with its ratio to the baseline's."""
    import statistics

    for cmds in runs.values():
        timed(cmds, env, cwd)
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, cmds in runs.items():
            samples[name].append(timed(cmds, env, cwd))
    med = {name: statistics.median(ts) for name, ts in samples.items()}
    width = max(len(n) for n in runs)
    for name, t in med.items():
        print(f"{name:<{width}}  {t * 1000:7.1f} ms   ratio to {baseline} {t / med[baseline]:5.2f}")
    return med


def timed_cpu(cmds: list[list[str]], env: dict[str, str] | None = None, cwd: str | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of running the commands one after another: the CPU time (user + system) of
    every process they ran that was waited for (their workers included: each reaps its own)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = timed(cmds, env, cwd)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def alternating_cpu(runs: dict[str, list[list[str]]], baseline: str, rounds: int,
                    env: dict[str, str] | None = None, cwd: str | None = None) -> dict[str, tuple[float, float]]:
    """alternating() with the CPU time of each run too: medians of (wall, CPU) printed, with the cores the run
    kept busy on average (CPU / wall) and its wall ratio to the baseline's."""
    import statistics

    for cmds in runs.values():
        timed(cmds, env, cwd)
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, cmds in runs.items():
            samples[name].append(timed_cpu(cmds, env, cwd))
    med = {name: (statistics.median(w for w, _ in ts), statistics.median(c for _, c in ts))
           for name, ts in samples.items()}
    width = max(len(n) for n in runs)
    for name, (w, c) in med.items():
        print(f"{name:<{width}}  {w:6.2f} s wall  {c:6.2f} s CPU ({c / w:4.2f} cores)   ratio to {baseline} "
              f"{w / med[baseline][0]:5.2f}")
    return med


def wheel_install(root: str) -> str:
    """binlens as a user installs it, beside this checkout's dependencies: a wheel of the checkout unpacked into a
    fresh virtual environment, its bytecode compiled (as pip does at install time), its `binlens` script, and
    this environment's site-packages on its path for click, LIEF and the rest (a .pth there is not run, so the
    checkout's editable-install hook stays out). The path of its `binlens` script."""
    import glob
    import os
    import site
    import sys
    import tempfile
    import zipfile

    top = tempfile.mkdtemp(prefix="binlens-wheel-")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", top, root],
                   check=True)
    venv = os.path.join(top, "venv")
    subprocess.run([os.path.join(sys.base_prefix, "bin", "python3"), "-m", "venv", "--without-pip", venv], check=True)
    python = os.path.join(venv, "bin", "python")
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    with zipfile.ZipFile(glob.glob(os.path.join(top, "*.whl"))[0]) as z:
        z.extractall(purelib)
    with open(os.path.join(purelib, "zz-deps.pth"), "w") as f:
        f.write("\n".join(site.getsitepackages()) + "\n")
    subprocess.run([python, "-m", "compileall", "-q", os.path.join(purelib, "analyzer")], check=True)
    script = os.path.join(venv, "bin", "binlens")
    with open(script, "w") as f:  # what pip writes for the console script
        f.write(f"#!{python}\nimport re\nimport sys\nfrom analyzer.entry import main\nif __name__ == '__main__':\n"
                "    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n    sys.exit(main())\n")
    os.chmod(script, 0o755)
    return script
