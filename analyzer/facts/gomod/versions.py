"""Version order as the go command has it: semantic versions for modules (golang.org/x/mod/semver),
Go release order for the `go` and `toolchain` pseudo-modules (cmd/go/internal/gover)."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any, NamedTuple

_IDENT = re.compile(r"[0-9A-Za-z-]+")


def _num(s: str) -> str | None:
    """A decimal without a superfluous leading zero, or None."""
    if not s.isdigit() or not s.isascii() or (len(s) > 1 and s[0] == "0"):
        return None
    return s


class _Semver(NamedTuple):
    major: str
    minor: str
    patch: str
    pre: str  # with its leading '-', or ''


@functools.lru_cache(maxsize=65536)
def _parse_semver(v: str) -> _Semver | None:
    if not v.startswith("v"):
        return None
    core, plus, build = v[1:].partition("+")
    if plus and not all(_IDENT.fullmatch(x) for x in build.split(".")):
        return None
    core, dash, pre = core.partition("-")
    parts = core.split(".")
    if len(parts) > 3 or any(_num(p) is None for p in parts):
        return None
    if (dash or plus) and len(parts) != 3:
        return None  # v1.2-pre and v1+meta are not valid
    if dash:
        idents = pre.split(".")
        for x in idents:
            if not _IDENT.fullmatch(x) or (x.isdigit() and len(x) > 1 and x[0] == "0"):
                return None
    parts += ["0"] * (3 - len(parts))
    return _Semver(parts[0], parts[1], parts[2], "-" + pre if dash else "")


def semver_valid(v: str) -> bool:
    return _parse_semver(v) is not None


def semver_canonical(v: str) -> str:
    """vMAJOR.MINOR.PATCH[-PRE], build metadata dropped (semver.Canonical); '' when invalid."""
    p = _parse_semver(v)
    if p is None:
        return ""
    return f"v{p.major}.{p.minor}.{p.patch}{p.pre}"


def semver_major(v: str) -> str:
    p = _parse_semver(v)
    return f"v{p.major}" if p else ""


def semver_prerelease(v: str) -> str:
    p = _parse_semver(v)
    return p.pre if p else ""


def _cmp_int(x: str, y: str) -> int:
    if x == y:
        return 0
    if len(x) != len(y):
        return -1 if len(x) < len(y) else 1
    return -1 if x < y else 1


def _cmp_pre(x: str, y: str) -> int:
    if x == y:
        return 0
    if not x:
        return 1
    if not y:
        return -1
    xs, ys = x[1:].split("."), y[1:].split(".")
    for dx, dy in zip(xs, ys, strict=False):
        if dx == dy:
            continue
        nx, ny = dx.isdigit(), dy.isdigit()
        if nx != ny:
            return -1 if nx else 1
        if nx:
            return _cmp_int(dx, dy)
        return -1 if dx < dy else 1
    return -1 if len(xs) < len(ys) else (1 if len(xs) > len(ys) else 0)


@functools.lru_cache(maxsize=65536)
def semver_key(v: str) -> tuple[Any, ...]:
    """A key ordering versions as semver.Compare does (invalid lowest, equal keys for equal versions)."""
    p = _parse_semver(v)
    if p is None:
        return (-1,)
    if not p.pre:
        pre: tuple[Any, ...] = (1,)
    else:
        pre = (0, *((0, int(x), "") if x.isdigit() else (1, 0, x) for x in p.pre[1:].split(".")))
    return (0, int(p.major), int(p.minor), int(p.patch), pre)


def semver_compare(v: str, w: str) -> int:
    """semver.Compare: an invalid version is below every valid one and equal to another invalid one."""
    p, q = _parse_semver(v), _parse_semver(w)
    if p is None or q is None:
        return 0 if p is q else (-1 if p is None else 1)
    for a, b in ((p.major, q.major), (p.minor, q.minor), (p.patch, q.patch)):
        c = _cmp_int(a, b)
        if c:
            return c
    return _cmp_pre(p.pre, q.pre)


class _GoVersion(NamedTuple):
    major: str
    minor: str
    patch: str
    kind: str
    pre: str


_EMPTY_GO = _GoVersion("", "", "", "", "")
_GO = re.compile(r"(0|[1-9][0-9]*)(?:\.(0|[1-9][0-9]*)(?:\.(0|[1-9][0-9]*)|([a-z]+)(0|[1-9][0-9]*)?)?)?")


@functools.lru_cache(maxsize=4096)
def parse_go(x: str) -> _GoVersion:
    """gover.Parse: 1.21 < 1.21rc1 < 1.21.0; a language version below 1.21 means its .0 release."""
    m = _GO.fullmatch(x)
    if not m:
        return _EMPTY_GO
    major, minor, patch, kind, pre = m.groups()
    if minor is None:
        return _GoVersion(major, "0", "0", "", "")
    if patch is None and kind is None:
        return _GoVersion(major, minor, "0" if _cmp_int(minor, "21") < 0 else "", "", "")
    return _GoVersion(major, minor, patch or "", kind or "", pre or "")


def go_valid(x: str) -> bool:
    return parse_go(x) != _EMPTY_GO


@functools.lru_cache(maxsize=4096)
def go_compare(x: str, y: str) -> int:
    vx, vy = parse_go(x), parse_go(y)
    for a, b in ((vx.major, vy.major), (vx.minor, vy.minor), (vx.patch, vy.patch)):
        c = _cmp_int(a, b)
        if c:
            return c
    if vx.kind != vy.kind:
        return -1 if vx.kind < vy.kind else 1
    return _cmp_int(vx.pre, vy.pre)


def go_lang(x: str) -> str:
    """The language version: 1.21.3 → 1.21."""
    v = parse_go(x)
    if not v.minor or (v.major == "1" and v.minor == "0"):
        return v.major
    return f"{v.major}.{v.minor}"


def from_toolchain(name: str) -> str:
    """gover.FromToolchain: go1.21.3-custom → 1.21.3; '' when it is not a Go toolchain name."""
    if "/" in name or "\\" in name or not name.startswith("go"):
        return ""
    v = re.split(r"[ \t-]", name[2:], maxsplit=1)[0]
    return v if go_valid(v) else ""


def _toolchain_version(name: str) -> str:
    return name if go_valid(name) else from_toolchain(name)


def mod_compare(path: str, x: str, y: str) -> int:
    """gover.ModCompare."""
    if path == "go":
        return go_compare(x, y)
    if path == "toolchain":
        return go_compare(_toolchain_version(x), _toolchain_version(y))
    return semver_compare(x, y)


def cmp_version(path: str, x: str, y: str) -> int:
    """modload's cmpVersion: the empty version (a main module) is above every other."""
    if y == "":
        return 0 if x == "" else -1
    if x == "":
        return 1
    if path != "go" and path != "toolchain":
        kx, ky = semver_key(x), semver_key(y)
        return 0 if kx == ky else (-1 if kx < ky else 1)
    return mod_compare(path, x, y)


def mod_sort_key(path: str, version: str) -> tuple[str, _SortVersion]:
    """A key that orders (path, version) pairs as gover.ModSort does."""
    return (path, _SortVersion(path, version))


class _SortVersion:
    __slots__ = ("path", "version", "suffix")

    def __init__(self, path: str, version: str) -> None:
        self.path = path
        self.version, slash, rest = version.partition("/")
        self.suffix = slash + rest

    def __lt__(self, other: _SortVersion) -> bool:
        if self.version != other.version:
            return mod_compare(self.path, self.version, other.version) < 0
        return self.suffix < other.suffix

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _SortVersion) and (self.version, self.suffix) == (other.version, other.suffix)


def mod_sorted(mods: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The modules in gover.ModSort's order. Where no two different versions of a path compare equal (build
    metadata, `+incompatible` beside its release, an invalid version beside another: rare), every key is a plain
    tuple of cached semver keys; else each comparison goes through ModCompare, as gover.ModSort's does."""
    items = list(mods)
    keys = _plain_keys(items)
    if keys is None:
        return sorted(items, key=lambda m: mod_sort_key(*m))
    return [items[i] for i in sorted(range(len(items)), key=keys.__getitem__)]


def versions_sorted(path: str, versions: Iterable[str]) -> list[str]:
    """One path's versions in gover.ModSort's order (mod_sorted's)."""
    vs = list(versions)
    if len(vs) < 2:
        return vs
    if path != "go" and path != "toolchain":
        keys: dict[str, tuple[Any, ...]] = {}
        base_of: dict[tuple[Any, ...], str] = {}
        for v in vs:
            base, slash, rest = v.partition("/")
            k = semver_key(base)
            if base_of.setdefault(k, base) != base:
                break
            keys[v] = (k, slash + rest)
        else:
            return sorted(vs, key=keys.__getitem__)
    return [v for _, v in mod_sorted((path, v) for v in vs)]


def _plain_keys(items: list[tuple[str, str]]) -> list[tuple[Any, ...]] | None:
    keys: list[tuple[Any, ...]] = []
    base_of: dict[tuple[str, tuple[Any, ...]], str] = {}
    for path, version in items:
        if path == "go" or path == "toolchain":
            keys.append((path, _SortVersion(path, version), ""))
            continue
        base, slash, rest = version.partition("/")
        k = semver_key(base)
        if base_of.setdefault((path, k), base) != base:
            return None  # two versions ModCompare holds equal: their order is gover.ModSort's comparison's
        keys.append((path, k, slash + rest))
    return keys


def mod_max(path: str, versions: list[str] | set[str]) -> str:
    return functools.reduce(lambda a, b: b if cmp_version(path, a, b) < 0 else a, versions)
