"""`binlens diff OLD NEW`: what changed between two binaries, two releases — packages, wheels, tarballs, images
or directories, every artifact in them — or two JSON reports of releases.

Artifacts are paired by path, else by their place inside the release (the member name after `outer!`, the
path below a directory: `app_1.0.deb!usr/bin/app` with `app_1.1.deb!usr/bin/app`), else — in a directory of
packages, where a new release renames them — by the place with each package's version taken out of its name
(`pool/app_1.0-1_amd64.deb!usr/bin/app` with `pool/app_1.0-2_amd64.deb!usr/bin/app`, when only one artifact on
each side has that place), else by file name (releases usually live in different folders); fat slices by their
`[arch]` suffix.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from analyzer.errors import AnalyzerError


def _key(entry: dict[str, Any]) -> str:
    return os.path.basename(entry["path"])


def load_side(path: str, request: Any) -> list[dict[str, Any]]:
    """Report entries for one side (see load)."""
    return load(path, request)[0]


def load(path: str, request: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Report entries for one side: a JSON report as it is, a binary analyzed now, or every artifact of a
    release (a container or a directory) scanned now; and the OS packages installed in its images (the JSON
    report's `installed`)."""
    from analyzer.load import archives, installed

    archives.INSTALLED.clear()  # (the other side's)
    archives.OWNERS.clear()
    archives.CONTAINER_OWNERS.clear()
    entries = _load_entries(path, request)
    if isinstance(entries, tuple):
        return entries
    return entries, installed.section()


def _installed_problem(value: Any) -> str | None:
    """What makes a JSON report's `installed` unusable, or None."""
    if not isinstance(value, dict):
        return " is not an object"
    for image, found in value.items():
        if isinstance(found, dict) and not isinstance(found.get("platform"), str | None):
            return f"[{json.dumps(image)}].platform is not a string or null"
        packages = found.get("packages") if isinstance(found, dict) else None
        if not isinstance(packages, list) or not all(
                isinstance(p, dict) and all(isinstance(p.get(k), str) for k in ("type", "name", "version"))
                and all(isinstance(p.get(k), str | None) for k in ("arch", "release", "epoch")) for p in packages):
            return f"[{json.dumps(image)}] has no list of packages (type, name, version strings; arch, release, " \
                   "epoch strings or null)"
    return None


def _load_entries(path: str, request: Any) -> list[dict[str, Any]] | tuple[list[dict[str, Any]], dict[str, Any]]:
    from analyzer import pipeline
    from analyzer.load import archives
    from analyzer.load.sources import named_container

    if named_container(path) is not None:  # a member of a container (`app.deb!usr/bin/app`)
        return [r.entry for r in pipeline.scan([path], request) if r.entry]
    if os.path.isdir(path) or archives.kind_of(path) is not None:  # a release: every artifact in it
        scanned = [r.entry for r in pipeline.scan([path], request) if r.entry]
        if not scanned:
            raise AnalyzerError("no ELF, PE or Mach-O files found", path)
        return scanned
    try:
        with open(path, "rb") as f:
            head = f.read(1)
    except OSError as e:
        raise AnalyzerError(f"cannot read: {e.strerror or e}", path) from None
    if head == b"{":
        try:
            with open(path, encoding="utf-8") as f:
                report = json.load(f, parse_constant=_no_constant)
        except RecursionError:
            raise AnalyzerError("not a binlens JSON report (nested too deeply)", path) from None
        except ValueError as e:
            raise AnalyzerError(f"not a binlens JSON report ({e})", path) from None
        entries = report.get("artifacts") if isinstance(report, dict) else None
        if not isinstance(entries, list):
            raise AnalyzerError("not a binlens JSON report (no artifacts list)", path)
        for i, entry in enumerate(entries):
            problem = _entry_problem(entry)
            if problem:
                raise AnalyzerError(f"not a binlens JSON report: artifacts[{i}]{problem}", path)
        problem = _installed_problem(report.get("installed", {}))
        if problem:
            raise AnalyzerError(f"not a binlens JSON report: installed{problem}", path)
        return entries, report.get("installed", {})
    return [pipeline.finish(e, request).entry or {} for e in pipeline.analyze_file(path, request)]


def _place(path: str, root: str | None) -> str | None:
    """Where an artifact sits in its release: the path below a directory (a container's members in it keep the
    container's name: two packages may hold the same path), else the member name inside a container."""
    if root == "":  # (containers named relative to the working directory: the path is the place)
        return path
    if root:
        top = root.rstrip("/") + "/"
        if path.startswith(top):
            return path[len(top):]
    if "!" in path:
        return path.split("!", 1)[1]
    return None


def _unversioned(place: str, program: bool = False) -> str | None:
    """A place with the version taken out of each container's name in it, or None when nothing was taken out.
    `program`: the artifact carries others (a PyInstaller program): its own name is versioned as a container's,
    as an AppImage's is."""
    parts = place.split("!")
    if len(parts) == 1 and not (program or place.lower().endswith(".appimage")):  # (a container and a program)
        return None
    if len(parts) == 1:
        parts.append("")
    out = []
    for seg in parts[:-1]:
        folder, slash, base = seg.rpartition("/")
        out.append(folder + slash + package_key(base))
    key = "!".join([*out, parts[-1]]) if parts[-1] else out[0]
    return key if key != place else None


_VERSION = re.compile(r"v?\d[\w.+~]*")
_KNOWN = (".tar.gz", ".tar.xz", ".tar.bz2", ".tar.zst", ".tgz", ".txz", ".tbz2", ".tzst", ".tar", ".zip", ".jar",
          ".aar", ".war", ".egg", ".whl", ".deb", ".udeb", ".ddeb", ".ipk", ".rpm", ".apk", ".snap", ".appimage",
          ".squashfs", ".sqfs", ".sfs")


def package_key(name: str) -> str:
    """A package's file name with its version replaced by `*`, by each format's naming convention: Debian's
    name_version_arch.deb (a snap's name_version_arch.snap alike), a wheel's
    name-version(-build)-python-abi-platform.whl, RPM's name-version-release.arch.rpm, Alpine's
    name-version-rN.apk; elsewhere (tarballs, zips, jars, AppImages) each `-`/`_`-separated word that starts
    with a digit (or v and a digit)."""
    low = name.lower()
    ext = next((e for e in _KNOWN if low.endswith(e)), "")
    stem = name[:len(name) - len(ext)]
    if ext in (".deb", ".udeb", ".ddeb", ".ipk", ".snap") and len(words := stem.split("_")) == 3:
        return f"{words[0]}_*_{words[2]}{ext}"
    if ext == ".whl" and len(words := stem.split("-")) in (5, 6):
        return "-".join([words[0], "*", *words[-3:]]) + ext
    if ext == ".rpm":
        body, dot, arch = stem.rpartition(".")
        if dot and len(words := body.split("-")) >= 3:
            return "-".join([*words[:-2], "*"]) + f".{arch}{ext}"
    if ext == ".apk" and len(words := stem.split("-")) >= 3 and re.fullmatch(r"r\d+", words[-1]):
        return "-".join([*words[:-2], "*"]) + ext
    return "".join("*" if _VERSION.fullmatch(w) else w for w in re.split(r"([-_])", stem)) + ext


def _shared_folder(entries: list[dict[str, Any]]) -> str | None:
    """The folder that a report's containers share, when it has members of more than one container (a report of
    a release directory): their places are the paths below it, the container's name included, so that two
    packages holding the same path are not crossed. None otherwise (one container: its members' names)."""
    outers = {e["path"].split("!", 1)[0] for e in entries if "!" in e["path"]}
    if len(outers) < 2:
        return None
    try:
        return os.path.commonpath([os.path.dirname(o) for o in outers])
    except ValueError:  # (absolute and relative paths mixed)
        return None


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number binlens writes")


# the shape of every report field diff reads: a type, a tuple of them, or {key: shape} / [shape] / ("map", shape)
_STR, _INT = (str,), (int,)
_OPT_STR = (str, type(None))
_MODULE = {"path": _STR, "version": _STR}
_SHAPE: dict[str, Any] = {
    "path": _STR,
    "size": (int, type(None)),
    "findings": [{"rule": _STR, "message": _STR}],
    "facts": {
        "needed": [_STR],
        "pe": {"imports": [_STR]},
        "macho": {"dylibs": [{"name": _STR}]},
        "sections": [{"name": _STR, "size": _INT}],
        "size": {"categories": ("map", _INT)},
        "version_max": ("map", {"version": _STR}),
        "compat": {"oldest": ("map", _STR)},
        "os": {"name": _OPT_STR},
        "go": {"version": _OPT_STR, "settings": ("map", _STR),
               "deps": [{**_MODULE, "replace": {**_MODULE}}]},
    },
}  # fmt: skip


def _shape_problem(value: Any, shape: Any, where: str) -> str | None:
    """Where `value` does not have `shape` (missing keys and nulls of nested objects are allowed)."""
    if isinstance(shape, dict):
        if value is None:
            return None
        if not isinstance(value, dict):
            return f"{where} is not an object"
        for key, sub in shape.items():
            if key in value:
                problem = _shape_problem(value[key], sub, f"{where}.{key}")
                if problem:
                    return problem
        return None
    if isinstance(shape, list):
        if not isinstance(value, list):
            return f"{where} is not a list"
        return next((p for i, v in enumerate(value) if (p := _item_problem(v, shape[0], f"{where}[{i}]"))), None)
    if shape and shape[0] == "map":
        if not isinstance(value, dict):
            return f"{where} is not an object"
        return next((p for k, v in value.items() if (p := _item_problem(v, shape[1], f"{where}.{k}"))), None)
    if isinstance(value, bool) or not isinstance(value, shape):
        return f"{where} is not {' or '.join('null' if t is type(None) else t.__name__ for t in shape)}"
    return None


def _item_problem(value: Any, shape: Any, where: str) -> str | None:
    """An element of a list or map: an object element needs every key of its shape (but `replace`)."""
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            return f"{where} is not an object"
        missing = [k for k in shape if k != "replace" and k not in value]
        if missing:
            return f"{where} has no {missing[0]}"
    return _shape_problem(value, shape, where)


def _entry_problem(entry: Any) -> str | None:
    if not isinstance(entry, dict) or "path" not in entry:
        return " is not an artifact entry"
    return _shape_problem(entry, _SHAPE, "")


def _pairs(old: list[dict[str, Any]], new: list[dict[str, Any]], old_root: str | None = None,
           new_root: str | None = None) -> tuple[list[tuple[Any, Any]], list[str], list[str]]:
    if len(old) == len(new) == 1:
        return [(old[0], new[0])], [], []
    by_path = {e["path"]: e for e in old}
    by_place = {k: e for e in old if (k := _place(e["path"], old_root)) is not None}
    by_name = {_key(e): e for e in old}
    renamed = _renamed(old, new, old_root, new_root, set(by_place))
    pairs, used = [], set()
    for e in new:
        place = _place(e["path"], new_root)
        match = by_path.get(e["path"]) or (by_place.get(place) if place is not None else None) \
            or renamed.get(id(e))
        if match is None and not by_place:  # (within releases, a file only in one is not its namesake's)
            match = by_name.get(_key(e))
        if match is not None and id(match) not in used:
            used.add(id(match))
            pairs.append((match, e))
    paired_new = {id(n) for _, n in pairs}
    only_old = [e["path"] for e in old if id(e) not in used]
    only_new = [e["path"] for e in new if id(e) not in paired_new]
    return pairs, only_old, only_new


def _renamed(old: list[dict[str, Any]], new: list[dict[str, Any]], old_root: str | None, new_root: str | None,
             old_places: set[str]) -> dict[int, dict[str, Any]]:
    """New artifacts whose place is not in the old release, paired with the old one whose place is the same once
    the versions are taken out of the package names — only where that place is one artifact's on each side
    (two versions of a package in one release pair with nothing)."""
    new_places = {p for e in new if (p := _place(e["path"], new_root)) is not None}

    def keyed(side: list[dict[str, Any]], root: str | None, other: set[str]) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for e in side:
            place = _place(e["path"], root)
            carries = bool((e.get("facts") or {}).get("bundle"))
            key = _unversioned(place, carries) if place is not None and place not in other else None
            if key is not None:
                out.setdefault(key, []).append(e)
        return out

    olds, news = keyed(old, old_root, new_places), keyed(new, new_root, old_places)
    return {id(n[0]): o[0] for k, n in news.items() if len(n) == 1 and len(o := olds.get(k, [])) == 1}


def _changes(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """key -> [old, new] for keys whose values differ (missing is null)."""
    return {k: [old.get(k), new.get(k)] for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)}


def _libraries(facts: dict[str, Any]) -> list[str]:
    if "needed" in facts:
        return list(facts["needed"])
    if "pe" in facts:
        return list(facts["pe"]["imports"])
    if "macho" in facts:
        return [d["name"] for d in facts["macho"]["dylibs"]]
    return []


def _percent(old: int, new: int) -> float | None:
    return round(100.0 * (new - old) / old, 2) if old else None


def _deltas(old: dict[str, int], new: dict[str, int]) -> dict[str, dict[str, Any]]:
    return {k: {"old": a, "new": b, "delta": (b or 0) - (a or 0)} for k, (a, b) in _changes(old, new).items()}


def _go_version_shown(dep: dict[str, Any] | None) -> str | None:
    """A module's version as `go version -m` shows it, with its replacement."""
    if dep is None:
        return None
    r = dep.get("replace")
    return dep["version"] + (f" => {r['path']} {r['version']}".rstrip() if r else "")


def _go_changes(old_go: dict[str, Any] | None, new_go: dict[str, Any] | None) -> dict[str, Any] | None:
    """Go version, build settings and module versions that differ; None when neither side is Go."""
    if not old_go and not new_go:
        return None
    old_go, new_go = old_go or {}, new_go or {}
    old_deps = {d["path"]: _go_version_shown(d) for d in old_go.get("deps", [])}
    new_deps = {d["path"]: _go_version_shown(d) for d in new_go.get("deps", [])}
    versions = [old_go.get("version"), new_go.get("version")]
    from analyzer.facts.go.rebuild import classify

    return {
        "rebuild": classify(old_go, new_go) if old_go and new_go else None,
        "version": None if versions[0] == versions[1] else versions,
        "settings": _changes(old_go.get("settings", {}), new_go.get("settings", {})),
        "deps": {p: [old_deps.get(p), new_deps.get(p)] for p in sorted(set(old_deps) | set(new_deps))
                 if old_deps.get(p) != new_deps.get(p)},
    }  # fmt: skip


def _finding_changes(old: dict[str, Any], new: dict[str, Any]) -> dict[str, list[dict[str, str]]]:
    old_found = {(f["rule"], f["message"]) for f in old.get("findings", [])}
    new_found = {(f["rule"], f["message"]) for f in new.get("findings", [])}
    return {"added": [{"rule": r, "message": m} for r, m in sorted(new_found - old_found)],
            "gone": [{"rule": r, "message": m} for r, m in sorted(old_found - new_found)]}  # fmt: skip


def _identity(facts: dict[str, Any]) -> dict[str, Any]:
    """What the artifact is: a change here (dynamic -> static, glibc -> musl) matters before any size."""
    return {
        "arch": facts.get("arch"),
        "os": (facts.get("os") or {}).get("name"),
        "kind": facts.get("kind"),
        "linkage": facts.get("linkage"),
        "libc": facts.get("libc"),
        "interpreter": facts.get("interpreter"),
    }


def compare(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The differences between two report entries of the same artifact."""
    old_facts, new_facts = old.get("facts", {}), new.get("facts", {})
    old_size, new_size = old.get("size") or 0, new.get("size") or 0
    old_libs, new_libs = _libraries(old_facts), _libraries(new_facts)

    def sections(facts: dict[str, Any]) -> dict[str, int]:
        return {s["name"]: s["size"] for s in facts.get("sections", [])}

    def categories(facts: dict[str, Any]) -> dict[str, int]:
        return dict(facts.get("size", {}).get("categories", {}))

    def highest(facts: dict[str, Any]) -> dict[str, str]:
        return {ns: v["version"] for ns, v in facts.get("version_max", {}).items()}

    return {
        "old": old["path"],
        "new": new["path"],
        "identity": _changes(_identity(old_facts), _identity(new_facts)),
        "size": {"old": old_size, "new": new_size, "delta": new_size - old_size,
                 "growth_percent": _percent(old_size, new_size)},
        "categories": _deltas(categories(old_facts), categories(new_facts)),
        "sections": _deltas(sections(old_facts), sections(new_facts)),
        "libraries": {"added": [x for x in new_libs if x not in old_libs],
                      "removed": [x for x in old_libs if x not in new_libs]},
        "version_max": _changes(highest(old_facts), highest(new_facts)),
        # where it runs: per distribution family, the oldest release (a family gone: it runs on none of them)
        "runs_on": _changes((old_facts.get("compat") or {}).get("oldest") or {},
                            (new_facts.get("compat") or {}).get("oldest") or {}),
        "findings": _finding_changes(old, new),
        "go": _go_changes(old_facts.get("go"), new_facts.get("go")),
    }  # fmt: skip


def diff(old: list[dict[str, Any]], new: list[dict[str, Any]], old_root: str | None = None,
         new_root: str | None = None, old_installed: dict[str, Any] | None = None,
         new_installed: dict[str, Any] | None = None) -> dict[str, Any]:
    """The pairs' differences and what only one side has; `old_root`/`new_root`: the directories the sides
    were scanned from (their artifacts paired by the path below them; for a report of several containers, the
    folder they share); `*_installed`: the OS packages of each side's images (`packages` when either has some)."""
    pairs, only_old, only_new = _pairs(old, new, old_root or _shared_folder(old), new_root or _shared_folder(new))
    out: dict[str, Any] = {
        "schema_version": 1,
        "pairs": [compare(a, b) for a, b in pairs],
        "removed": only_old,
        "added": only_new,
    }
    if old_installed or new_installed:
        out["packages"] = package_changes(old_installed or {}, new_installed or {})
    return out


def _image_place(image: str) -> str:
    """Where an image lies in its side: the member name after the outermost container (`rel.tar!img.tar` →
    `img.tar`), or "" for the image the side is."""
    from analyzer.load.archives import SEP

    return image.split(SEP, 1)[1] if SEP in image else ""


def package_changes(old: dict[str, Any], new: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The OS packages added to, removed from, or at another version in each image of NEW against OLD's image
    at the same place (one image on each side: those two), by type, name and architecture; and the images whose
    distribution (os-release) or platform (os/arch: the image rebuilt for another) changed."""
    from analyzer.load.packages import shown_version

    def keyed(found: dict[str, Any]) -> dict[tuple[str, str, str, str], str]:
        return {(p["type"], p["name"], p.get("arch") or "", p.get("location") or ""): shown_version(p)
                for p in found.get("packages", [])}  # (a Python package: in its site-packages directory)

    if len(old) == 1 and len(new) == 1:
        images = [(next(iter(new)), next(iter(old.values())), next(iter(new.values())))]
    else:
        by_place = {_image_place(i): f for i, f in old.items()}
        images = [(i, by_place.get(_image_place(i), {}), f) for i, f in new.items()]
        new_places = {_image_place(i) for i in new}
        images += [(i, f, {}) for i, f in old.items() if _image_place(i) not in new_places]
    from analyzer.load.installed import release_name

    def system(found: dict[str, Any]) -> str | None:
        d = found.get("distro")
        return release_name({k: str(v) for k, v in d.items()}, " ") or None if isinstance(d, dict) else None

    out: dict[str, list[dict[str, Any]]] = {"added": [], "removed": [], "changed": [], "distro": [], "platform": []}
    for image, before, after in sorted(images, key=lambda x: x[0]):
        if before and after and system(before) != system(after):
            out["distro"].append({"image": image, "old": system(before), "new": system(after)})
        if before and after and before.get("platform") != after.get("platform"):
            out["platform"].append({"image": image, "old": before.get("platform"), "new": after.get("platform")})
        a, b = keyed(before), keyed(after)
        for key in sorted(a.keys() | b.keys()):
            kind, name, arch, location = key
            row = {"image": image, "type": kind, "name": name, "arch": arch or None,
                   **({"location": location} if location else {})}
            if key not in a:
                out["added"].append({**row, "version": b[key]})
            elif key not in b:
                out["removed"].append({**row, "version": a[key]})
            elif a[key] != b[key]:
                out["changed"].append({**row, "old": a[key], "new": b[key]})
    return out


def over_limits(result: dict[str, Any], max_size: int, max_growth: float | None) -> list[str]:
    """Why the diff fails a configured budget or growth threshold (empty when it does not)."""
    out = []
    for p in result["pairs"]:
        size = p["size"]
        if max_size and size["new"] > max_size:
            out.append(f"{p['new']}: {size['new']} bytes, over the budget of {max_size}")
        if max_growth is not None and size["growth_percent"] is not None and size["growth_percent"] > max_growth:
            out.append(f"{p['new']}: grew {size['growth_percent']}%, over {max_growth}%")
    return out
