#!/usr/bin/env python3
"""Benchmark: `binlens gomod` against the go command on one large module universe.

    python bench/gomod_vs_go.py [MODULES] [VERSIONS]

A seeded universe of MODULES modules × VERSIONS versions (default 2,000 × 5 = 10,000 module versions, each
requiring four others; a fifth of them go 1.16, so unpruned closures), written as a GOPROXY file tree in the
fixture cache; the main module requires 40 of them and is made tidy by the go command first. Timed, start-up
included, after one untimed pass, medians of 7 alternating rounds: `go list -m all` and `go mod graph` (module
cache warm), `go list -m all`
with an empty module cache (what a fresh CI job pays), and `binlens gomod --format json` (the build list, the
graph, conflicts with the unpruned view, and every other check). Ratios to `go list -m all`.

Beside them, the floor (bench/gomod_floor.py): the least work in Python that writes the report's build list
and conflicts (and, second, its graph too) from requirement lists parsed beforehand, as a lower bound on what
any Python `gomod` can take here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "fixtures"), str(ROOT / "tests"), str(ROOT)]

from timing import alternating, timed  # noqa: E402


def main() -> None:
    import build
    from gouniverse import go_env, large_universe, write_universe
    from test_gomod import _go

    modules = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    versions = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    root = build.CACHE / f"bench-gomod-{modules}x{versions}"
    if not (root / "src" / "main0" / "go.sum").exists():
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        proxy, src = write_universe(large_universe(1, modules, versions), root)
    proxy, src = root / "proxy", root / "src" / "main0"
    go = _go("1.27.3")
    home = Path(tempfile.mkdtemp())
    env = go_env(go, proxy, home)
    tidy = {**env, "GOFLAGS": "-modcacherw -mod=mod"}
    subprocess.run([str(go), "list", "-m", "all"], cwd=src, env=tidy, check=True, capture_output=True)
    floor_data = root / "floor.marshal"
    if not floor_data.exists():
        _floor_data(src, proxy, floor_data)
    floor = [sys.executable, str(ROOT / "bench" / "gomod_floor.py"), str(floor_data), os.devnull]
    binlens = [sys.executable, "-m", "analyzer", "gomod", str(src), "--proxy", str(proxy), "--format", "json",
               "--fail-on", "never", "-o", os.devnull]
    runs = {
        "go list -m all": [[str(go), "list", "-m", "all"]],
        "go mod graph": [[str(go), "mod", "graph"]],
        "binlens gomod": [binlens],
        "floor: build list, conflicts": [floor],
        "floor: and the graph": [floor + ["--graph"]],
    }
    print(f"{modules} modules x {versions} versions; main module tidy; medians of 7 alternating rounds")
    times = alternating(runs, "go list -m all", 7, env=env, cwd=str(src))
    cold = []
    for _ in range(3):
        mc = Path(tempfile.mkdtemp())
        cold.append(timed([[str(go), "list", "-m", "all"]], {**env, "GOMODCACHE": str(mc)}, str(src)))
        shutil.rmtree(mc, ignore_errors=True)
    c = sorted(cold)[1]
    ratio = times["binlens gomod"] / c
    print(f"{'go list -m all, empty module cache':<34}  {c:7.2f} s   binlens gomod / this {ratio:5.2f}")
    shutil.rmtree(home, ignore_errors=True)


def _floor_data(src: Path, proxy: Path, out: Path) -> None:
    """bench/gomod_floor.py's input: the main module's requirements and every loaded module version's requirement
    list, from binlens's own load of the graph (the go@ and toolchain@ nodes left out)."""
    import marshal

    from analyzer.facts import gomod

    res = gomod.compute(gomod.setup(str(src), proxy=str(proxy), env={}))
    main = res.loader.mains[0].path

    def plain(reqs: list[tuple[str, str]]) -> list[tuple[str, str]]:
        return [r for r in reqs if r[0] not in ("go", "toolchain")]

    required = {m: plain(r) for m, r in res.graph.required.items() if m[1]}
    out.write_bytes(marshal.dumps((main, plain(res.graph.required[(main, "")]), required)))


if __name__ == "__main__":
    main()
