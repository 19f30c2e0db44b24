"""Rebuild classification of two Go binaries (`binlens diff`), checked against the go command's build cache:
the program is built once, then rebuilt with one setting changed; `go build -x` shows whether any package
other than main was compiled (recompile) or only main and the link ran (relink). binlens, reading only the
two binaries, must predict the same."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from gouniverse import Version, go_env, write_proxy
from test_gomod import _go

from tests.conftest import made_once, run_binlens

# the build cache lives as long as this test module in one process (a variant compiled by an earlier run must not
# be a cache hit; the cases' variants all differ); no fmt, so the standard library compiled is the runtime
MAIN = 'package main\n\nimport "example.com/a"\n\nvar v = "dev"\n\nfunc main() { println(a.V, v) }\n'
COMPILE = re.compile(r"/compile(?:\.exe)? .*? -p (\S+) ")


@pytest.fixture(scope="module")
def gocache(tmp_path_factory):
    """A build cache holding what the baseline build compiles (the runtime and the rest for the default settings),
    copied from the fixture cache, where it is made once per Go release and program: each case still builds the
    baseline first, so what a case compiles is what its change makes the go command compile, as before, without
    every worker compiling the runtime first (6 s)."""
    import shutil

    dest = tmp_path_factory.mktemp("gocache")
    shutil.copytree(_seed(), dest, dirs_exist_ok=True)
    return dest


def _seed() -> Path:
    import hashlib
    import tempfile

    go = _go("1.27.3")

    def make(cache: Path) -> None:
        with tempfile.TemporaryDirectory() as work:
            (Path(work) / "w").mkdir()
            go, src, env = _setup(Path(work) / "w", cache)
            _build(go, src, env, Path(work) / "out", [])

    return made_once(f"gocache-{hashlib.sha256(f'{go}|{MAIN}'.encode()).hexdigest()[:16]}", make)


def _setup(tmp: Path, cache: Path) -> tuple[Path, Path, dict[str, str]]:
    proxy = tmp / "proxy"
    write_proxy(proxy, [Version("example.com/a", "v1.0.0", "1.22"), Version("example.com/a", "v1.1.0", "1.22")])
    src = tmp / "src"
    src.mkdir()
    (src / "go.mod").write_text("module example.com/m\n\ngo 1.22\n\nrequire example.com/a v1.0.0\n")
    (src / "main.go").write_text(MAIN)
    go = _go("1.27.3")
    env = go_env(go, proxy, tmp / "home", GOFLAGS="-modcacherw -mod=mod -buildvcs=false", GOCACHE=str(cache))
    return go, src, env


def _build(go: Path, src: Path, env: dict[str, str], out: Path, args: list[str]) -> set[str]:
    """Build with -x; the import paths of the packages the compiler ran for."""
    r = subprocess.run([str(go), "build", "-x", "-o", str(out), *args], cwd=src, env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    return set(COMPILE.findall(r.stderr))


CASES = [
    # (name, extra go build args, env changes, go.mod rewrite)
    ("ldflags", ["-ldflags=-X main.v=release"], {}, None),
    ("godebug", [], {}, "godebug panicnil=1\n"),
    ("goamd64", [], {"GOAMD64": "v2"}, None),
    ("dependency", [], {}, "require example.com/a v1.1.0\n"),
    ("cgo-enabled", [], {"CGO_ENABLED": "1"}, None),
]


@pytest.mark.parametrize("name,args,env_change,gomod_extra", CASES, ids=[c[0] for c in CASES])
def test_rebuild_classification_matches_the_build_cache(name, args, env_change, gomod_extra, tmp_path, gocache):
    go, src, env = _setup(tmp_path, gocache)
    _build(go, src, env, tmp_path / "base", [])
    _build(go, src, env, tmp_path / "base", [])  # the cache is warm: nothing compiles twice
    gomod = src / "go.mod"
    if gomod_extra:
        text = gomod.read_text()
        gomod.write_text(text.replace("require example.com/a v1.0.0\n", "") + gomod_extra
                         if gomod_extra.startswith("require") else text + gomod_extra)
    compiled = _build(go, src, {**env, **env_change}, tmp_path / "new", args)
    deps_compiled = compiled - {"main"}
    r = run_binlens("diff", str(tmp_path / "base"), str(tmp_path / "new"), "--format", "json")
    assert r.returncode in (0, 1), r.stderr
    pair = json.loads(r.stdout)["pairs"][0]
    rb = pair["go"]["rebuild"]
    if rb["verdict"] == "relink":
        assert not deps_compiled, (name, deps_compiled)
        assert "main" in compiled  # the main package's build info changed
    elif rb["verdict"] == "recompile":
        assert deps_compiled, (name, rb)
    else:
        assert rb["verdict"] == "recompile-possible", rb
    assert rb["reasons"], rb
    text = run_binlens("diff", str(tmp_path / "base"), str(tmp_path / "new")).stdout
    assert "Go rebuild:" in text


def test_identical_rebuild_is_a_cache_hit(tmp_path, gocache):
    go, src, env = _setup(tmp_path, gocache)
    _build(go, src, env, tmp_path / "one", [])
    compiled = _build(go, src, env, tmp_path / "two", [])
    assert compiled == set()
    r = run_binlens("diff", str(tmp_path / "one"), str(tmp_path / "two"), "--format", "json")
    rep = json.loads(r.stdout)
    assert rep["pairs"][0]["go"]["rebuild"]["verdict"] == "identical"
