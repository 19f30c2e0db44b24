#!/usr/bin/env python3
"""Regenerate analyzer/data/targets.json from the pep600_compliance data.

    python scripts/gen_targets.py [DATA_DIR]    (default: ../shared/data/pep600_compliance)

The input is mayeut/pep600_compliance (MIT): per architecture and distribution
release, the glibc version and the symbol-version nodes its libc, libstdc++ and
libgcc_s export; the manylinux policies; EOL.rst for end-of-life dates. The
output keeps, per release and architecture, the glibc version and every GLIBC,
GLIBCXX, CXXABI and GCC node (numbered ones and special ones such as
GLIBC_ABI_DT_RELR), plus EOL dates; and for each special GLIBC node the glibc
release from which on every release in the data defines it (`glibc_special`,
for bare glibc-X.Y targets; a distribution's backport to an older glibc does
not lower it). The attribution goes in its `source` field.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "analyzer" / "data" / "targets.json"
NAMESPACES = ("GLIBC", "GLIBCXX", "CXXABI", "GCC")
# rhel-N is Red Hat's UBI image, with AlmaLinux and Rocky Linux (binary compatible) for arches UBI lacks
ALIASES = {"rhel": ("rhubi", "almalinux", "rockylinux")}
ROLLING = {
    "experimental",
    "testing",
    "unstable",
    "rawhide",
    "sisyphus",
    "devel",
    "rolling",
    "cauldron",
    "tumbleweed",
    "current",
    "latest",
}


def _numeric(node: str) -> bool:
    return re.fullmatch(r"\d+(\.\d+)*", node) is not None


def _vkey(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version))


def _glibc_special(releases: dict[str, dict]) -> dict[str, dict[str, str]]:
    """arch -> special GLIBC node -> the lowest glibc from which on every release of that arch in the data
    defines it (a node some newer release still lacks gets none: binlens then calls it unknown)."""
    out: dict[str, dict[str, str]] = {}
    arches = sorted({arch for r in releases.values() for arch in r["arches"]})
    for arch in arches:
        rows = [(a["glibc"], set(a["nodes"]["GLIBC"])) for r in releases.values()
                for name, a in r["arches"].items() if name == arch and a["glibc"]]  # fmt: skip
        for node in sorted({n for _, nodes in rows for n in nodes if not _numeric(n)}):
            lacking = [_vkey(g) for g, nodes in rows if node not in nodes]
            having = sorted({g for g, nodes in rows if node in nodes and all(_vkey(g) > k for k in lacking)},
                            key=_vkey)  # fmt: skip
            if having:
                out.setdefault(arch, {})[f"GLIBC_{node}"] = having[0]
    return out


def _eol(data: Path) -> dict[str, dict[str, str | None]]:
    out: dict[str, dict[str, str | None]] = {}
    for m in re.finditer(
        r'^\s+"([\w.-]+) ([\w.-]+)", "([^"]*)", "([^"]*)", "([^"]*)"', (data / "EOL.rst").read_text(), re.M
    ):
        family, release, eol, lts, elts = m.groups()
        out[f"{family}-{release}"] = {"eol": eol or None, "lts": lts or None, "elts": elts or None}
    return out


def generate(data: Path) -> dict:
    cache = data / "cache"
    eol = _eol(data)
    releases: dict[str, dict] = {}
    for arch_dir in sorted(p for p in cache.iterdir() if p.is_dir()):
        for f in sorted(arch_dir.glob("*.json")):
            name = f.stem
            if name.startswith("manylinux"):
                continue
            raw = json.loads(f.read_text())
            family, _, release = name.partition("-")
            entry = releases.setdefault(
                name,
                {
                    "family": family,
                    "release": release,
                    "rolling": release in ROLLING,
                    **eol.get(name, {"eol": None, "lts": None, "elts": None}),
                    "arches": {},
                },
            )
            entry["arches"][arch_dir.name] = {
                "glibc": raw.get("glibc_version"),
                "nodes": {ns: list(raw.get("symbols", {}).get(ns, [])) for ns in NAMESPACES},
            }
    for alias, sources in ALIASES.items():
        for name in sorted(releases):
            family, _, release = name.partition("-")
            if family != sources[0]:
                continue
            merged = {
                "family": alias,
                "release": release,
                "rolling": False,
                "alias_of": [],
                "arches": {},
                **{k: releases[name].get(k) for k in ("eol", "lts", "elts")},
            }
            for src in sources:
                other = releases.get(f"{src}-{release}")
                if other:
                    merged["alias_of"].append(f"{src}-{release}")
                    for arch, value in other["arches"].items():
                        merged["arches"].setdefault(arch, value)
            releases[f"{alias}-{release}"] = merged
    manylinux = {}
    for policy in json.loads((cache / "current-policies.json").read_text()):
        if not policy["symbol_versions"]:
            continue
        manylinux[policy["name"]] = {
            "aliases": policy["aliases"],
            "priority": policy["priority"],
            # the whole PEP 600 policy, as auditwheel applies it: every namespace it lists (LIBATOMIC and ZLIB
            # too), the libraries a wheel may link without bundling, the symbols it may not import from them
            "lib_whitelist": sorted(policy["lib_whitelist"]),
            "blacklist": {lib: sorted(syms) for lib, syms in sorted(policy.get("blacklist", {}).items())},
            "arches": {
                arch: {"glibc": None, "nodes": {ns: list(vs) for ns, vs in sorted(v.items())}}
                for arch, v in policy["symbol_versions"].items()
            },
        }
    return {
        "source": "mayeut/pep600_compliance, commit 2d70275ac1292c0f8750c0863df9d367a4967ebd (2026-08-08), "
        "folders cache/ and EOL.rst; MIT License, Copyright (c) 2020 Matthieu Darbois",
        "generated_by": "scripts/gen_targets.py",
        "releases": dict(sorted(releases.items())),
        "manylinux": manylinux,
        "glibc_special": _glibc_special({k: v for k, v in releases.items() if "alias_of" not in v}),
    }


def main(argv: list[str]) -> int:
    data = Path(argv[0]) if argv else ROOT.parent / "shared" / "data" / "pep600_compliance"
    OUT.write_text(json.dumps(generate(data), indent=1, sort_keys=False) + "\n")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
