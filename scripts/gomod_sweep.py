"""The full oracle sweep for `binlens gomod`: thousands of seeded random module universes, each compared with
`go list -m -json all` and `go mod graph` of the real go command (CI runs a sample in tests/test_gomod.py);
with --retractions, also each universe's retracted and deprecated modules against `go list -m -u -retracted`.

    python scripts/gomod_sweep.py [--go 1.27.3] [--seeds 2000] [--start 10000] [--retractions]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "fixtures"), str(ROOT / "tests"), str(ROOT)]  # (fixtures/build.py, not PyPA's build)

import gouniverse  # noqa: E402
from gouniverse import compare  # noqa: E402
from test_gomod import _go, mine  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--go", default="1.27.3")
    ap.add_argument("--seeds", type=int, default=2000)
    ap.add_argument("--start", type=int, default=10000)
    ap.add_argument("--retractions", action="store_true")
    a = ap.parse_args()
    gouniverse.CACHE_GO_VIEWS = False  # (the sweep asks the go command every time, and keeps nothing)
    go = _go(a.go)
    max_go = "1.21.13" if a.go.startswith("1.21") else "1.27"
    runs = bad = 0
    kinds = [dict(), dict(broken=True, readonly=True), dict(workspace=True, broken=True)]
    for i in range(a.seeds):
        seed = a.start + i
        with tempfile.TemporaryDirectory() as t:
            n, problems = compare(go, seed, Path(t), mine=lambda *x: mine(*x, strip_dot=a.go.startswith("1.21"),
                                                                                     local_go=a.go),
                                  max_go=max_go, **kinds[i % 3],
                                  **({"missing_sums": (i // 3) % 2 == 1} if i % 3 == 1 else {}))
        if a.retractions and i % 3 != 2:  # (a module of its own: the workspace kind is left out)
            with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as t:
                n += 1
                problems += _retractions(go, seed, Path(t), a.go, max_go, kinds[i % 3])
        runs += n
        bad += len(problems)
        for p in problems:
            print(p[:800])
    print(f"{runs} go command runs over {a.seeds} universes: {bad} differences")
    return 1 if bad else 0


def _retractions(go: Path, seed: int, t: Path, version: str, max_go: str, kind: dict[str, bool]) -> list[str]:
    from gouniverse import go_env, go_retractions, random_universe, write_universe

    from analyzer.facts import gomod

    root = t / "retractions"
    proxy, src = write_universe(random_universe(seed, max_go=max_go, broken=kind.get("broken", False)), root)
    env = go_env(go, proxy, root / "home", GOFLAGS="-modcacherw -mod=mod", GOWORK="off")
    theirs = go_retractions(go, src / "main0", env)
    if theirs is None:
        return []
    try:
        rep = gomod.analyze(str(src / "main0"), proxy=str(proxy), env={"GOWORK": "off", "GOFLAGS": "-mod=mod"},
                            use_cache=False, tree=str(root), local_go=version)
    except Exception as e:  # noqa: BLE001 - the sweep reports it
        return [f"seed {seed} retractions: binlens {e!r}"]
    mine = {(x["module"], x["version"], x["kind"], x["rationale"]) for x in rep["retracted"]}
    return [] if mine == theirs else [f"seed {seed} retractions\n go      {sorted(theirs)}\n binlens {sorted(mine)}"]


if __name__ == "__main__":
    sys.exit(main())
