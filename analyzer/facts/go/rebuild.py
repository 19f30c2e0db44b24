"""What the go command's build cache does when a Go binary is rebuilt with the other binary's settings: from
two binaries' build info, classify every difference as the cache sees it (cmd/go/internal/work: every action
ID starts with the toolchain version; a package's compile action hashes GOOS/GOARCH, the arch level,
GOEXPERIMENT, -trimpath, its flags, cgo flags, its files and its imports' content; the link action hashes
-ldflags, -buildmode, DefaultGODEBUG; only the main package hashes the build info text, so a change in the
VCS stamp, in -ldflags or in GODEBUG recompiles the main package and relinks, nothing else)."""

from __future__ import annotations

from typing import Any

# settings in every package's compile action: all of them are recompiled
RECOMPILE_ALL = {
    "GOOS": "the target OS", "GOARCH": "the target architecture", "GOAMD64": "the amd64 level",
    "GOARM": "the ARM level", "GOARM64": "the arm64 level", "GO386": "the 386 floating point mode",
    "GOMIPS": "the MIPS float mode", "GOMIPS64": "the MIPS64 float mode", "GOPPC64": "the ppc64 level",
    "GORISCV64": "the riscv64 profile", "GOWASM": "the wasm features", "GOEXPERIMENT": "the experiments",
    "GOFIPS140": "the FIPS 140 module", "-trimpath": "-trimpath (package directories in every hash)",
    "-race": "-race", "-msan": "-msan", "-asan": "-asan", "-compiler": "the compiler",
    "-gccgoflags": "-gccgoflags",
}
# settings in the compile action of some packages
RECOMPILE_SOME = {
    "-gcflags": "-gcflags: the packages its patterns match (all of them for all=)",
    "-asmflags": "-asmflags: packages with assembly that its patterns match",
    "-pgo": "-pgo: every package the profile covers",
    "-cover": "-cover: the covered packages",
    "-covermode": "-covermode: the covered packages",
    "-buildmode": "-buildmode: code generation for position-independent or shared builds",
}
# settings that may change which files make up a package (then those packages and their importers recompile)
FILE_SET = {
    "-tags": "-tags: packages with files whose build constraints name a changed tag",
    "CGO_ENABLED": "CGO_ENABLED: packages with cgo files (net, os/user, runtime/cgo) and what imports them",
    "CGO_CPPFLAGS": "CGO_CPPFLAGS: packages with cgo files", "CGO_CFLAGS": "CGO_CFLAGS: packages with cgo files",
    "CGO_CXXFLAGS": "CGO_CXXFLAGS: packages with cgo files", "CGO_LDFLAGS": "CGO_LDFLAGS: packages with cgo files",
}
# settings only the link action (and the main package's build info) hashes
RELINK = {"-ldflags": "-ldflags", "DefaultGODEBUG": "DefaultGODEBUG (godebug lines, //go:debug)",
          "-linkshared": "-linkshared"}
RANK = {"identical": 0, "relink": 1, "recompile-possible": 2, "recompile": 3}


def _dep_map(go: dict[str, Any]) -> dict[str, tuple[str, str | None, str]]:
    out = {}
    for d in go.get("deps") or []:
        r = d.get("replace")
        out[d["path"]] = (d["version"], f"{r['path']} {r['version']}".strip() if r else None, (r or d).get("sum", ""))
    return out


def classify(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """{verdict, reasons: [{what, old, new, effect, detail}]}: verdict is the strongest effect —
    'recompile' (dependencies recompiled), 'recompile-possible' (depends on files binlens cannot see),
    'relink' (main package and link only) or 'identical' (a cache hit)."""
    reasons: list[dict[str, Any]] = []

    def add(what: str, a: Any, b: Any, effect: str, detail: str) -> None:
        reasons.append({"what": what, "old": a, "new": b, "effect": effect, "detail": detail})

    va, vb = (old.get("version") or ""), (new.get("version") or "")
    if va != vb:
        add("go version", va or None, vb or None, "recompile",
            "another toolchain: every action ID starts with the go command's version, nothing is reused")
    sa, sb = old.get("settings") or {}, new.get("settings") or {}
    for k in sorted(set(sa) | set(sb)):
        a, b = sa.get(k), sb.get(k)
        if a == b or (k.startswith("CGO_") and k != "CGO_ENABLED" and not a and not b):
            continue  # cgo flags recorded empty once cgo is on: nothing to compile differently
        if k in RECOMPILE_ALL:
            add(k, a, b, "recompile", f"{RECOMPILE_ALL[k]}: in every package's compile action")
        elif k in RECOMPILE_SOME:
            add(k, a, b, "recompile", RECOMPILE_SOME[k])
        elif k in FILE_SET:
            add(k, a, b, "recompile-possible", FILE_SET[k])
        elif k in RELINK:
            add(k, a, b, "relink", f"{RELINK[k]}: in the link action only")
        elif k.startswith("vcs"):
            add(k, a, b, "relink", "the VCS stamp: in the main package's build info only")
        else:
            add(k, a, b, "recompile-possible", "a build setting binlens does not classify")
    da, db = _dep_map(old), _dep_map(new)
    for p in sorted(set(da) | set(db)):
        a, b = da.get(p), db.get(p)
        if a == b:
            continue
        if a is None or b is None:
            add(f"module {p}", a and a[0], b and b[0], "recompile",
                "a module added or removed: the packages importing it recompile")
        elif a[:2] != b[:2]:
            add(f"module {p}", a[0] + (f" => {a[1]}" if a[1] else ""), b[0] + (f" => {b[1]}" if b[1] else ""),
                "recompile", "another version: its packages and every package importing them recompile")
        else:
            add(f"module {p}", a[2], b[2], "recompile", "same version, other content (h1 sum)")
    ma, mb = old.get("main") or {}, new.get("main") or {}
    if ma.get("path") != mb.get("path"):
        add("main module", ma.get("path"), mb.get("path"), "recompile", "another main module: another program")
    elif (ma.get("version"), ma.get("sum")) != (mb.get("version"), mb.get("sum")):
        add("main module version", ma.get("version"), mb.get("version"), "relink",
            "the main module's version: in the main package's build info only")
    verdict = max((r["effect"] for r in reasons), key=RANK.__getitem__, default="identical")
    local = [p for p, (v, r, s) in db.items() if r and not s]
    note = (f"local replacements ({', '.join(sorted(local))}) have no sum: changes to their files are invisible"
            if local else None)
    return {"verdict": verdict, "reasons": reasons, "note": note}
