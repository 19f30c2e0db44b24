"""Will it load: resolve dependencies in a sysroot as the dynamic loader does, and predict its errors.

Nothing is executed. `linkmap` builds the link map with the steps every loader
shares; `glibc` and `musl` are the two loaders' own search places, checks and
messages; `sysroot` reads files inside a sysroot (links resolved inside it) and
ld.so.cache; `explain` reads a pasted loader error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from analyzer import load
from analyzer.errors import AnalyzerError, texts
from analyzer.facts.loader.linkmap import LinkMap, Options, program_flavour
from analyzer.facts.loader.sysroot import Sysroot, parse_ld_so_cache
from analyzer.load import Artifact
from analyzer.load.elf import ELFFile

if TYPE_CHECKING:
    from analyzer.facts import Context

__all__ = ["Options", "Sysroot", "analyze", "analyze_path", "parse_ld_so_cache", "provide"]


def provide(art: Artifact, known: dict[str, Any], context: Context) -> dict[str, Any] | None:
    """The `deps` fact, in the context's sysroot (default: the host's root); none for other systems' programs."""
    if (known.get("os") or {}).get("name", "unknown") not in ("linux", "unknown"):
        return None
    opts, sysroot = context.loader if context.loader is not None else (Options(), None)
    return {"deps": texts(analyze(art, opts, sysroot))}  # file names as text (errors.texts)


def analyze_path(path: str, opts: Options, sysroot: Sysroot | None = None) -> dict[str, Any]:
    """The `deps` facts of the program at `path` (a host path)."""
    return analyze(load.open_artifacts(path)[0], opts, sysroot)


def _dead_search_paths(link_map: LinkMap) -> list[dict[str, str]]:
    """Absolute RPATH and RUNPATH entries that name nothing in the sysroot."""
    dead = []
    for o in link_map.objects:
        for kind, entries in (("RPATH", o.rpath), ("RUNPATH", o.runpath)):
            for d in link_map.dirs(entries, o):
                if d.startswith("/") and link_map.sysroot.host(d) is None:
                    dead.append({"object": o.name, "path": d, "kind": kind})
    return dead


def analyze(art: Artifact, opts: Options, sysroot: Sysroot | None = None) -> dict[str, Any]:
    """The `deps` facts of the program `art` (opened from a host path) in `opts.sysroot`.

    Pass one `Sysroot` for many programs: each library is then read once per run."""
    sysroot = sysroot or Sysroot(opts.sysroot)
    if art.format != "ELF":
        raise AnalyzerError("deps resolves ELF programs only", art.path)
    elf: ELFFile = art.binary
    from analyzer.facts.os import elf_os

    os_name = elf_os(elf)[0]
    if os_name not in ("linux", "unknown"):
        raise AnalyzerError(f"deps models the Linux loaders (glibc's, musl's); this program is for {os_name}", art.path)
    link_map = LinkMap(art.path, elf, opts, sysroot, program_flavour(elf))
    if opts.host:
        link_map.host_scope = _host_objects(opts, sysroot)
    # the libraries are resolved whatever happens to the interpreter, so the facts show the whole tree
    link_map.load()
    bindings: list[dict[str, Any]] = []
    if opts.bind:  # --no-bind: the libraries only, as `ld.so --list` maps them (no versions, no symbols)
        link_map.check_versions()
        bindings = link_map.bind()
        link_map.check_copies()
        link_map.check_early_init()
    interp = elf.interpreter
    interp_found = None if not interp else sysroot.open(interp)[0] is not None
    if interp_found is False:
        # the kernel fails first, before any loader runs: exec returns ENOENT, and no loader says anything (what
        # it would have found stays in the facts: missing, version_problems, undefined)
        link_map.errors[:] = [f"{link_map.program}: {interp}: No such file or directory (the interpreter)"]
        link_map.warnings.clear()
    return {
        "sysroot": opts.sysroot_name or sysroot.root,
        "interpreter": {"path": interp, "found": interp_found},
        "libraries": [
            {
                "name": o.needed_as,
                "path": o.name,
                "found_by": o.found_by,
                "needed_by": o.loader.name if o.loader else None,
                "soname": o.soname,
            }
            for o in link_map.objects[1:]
        ],
        "missing": link_map.missing,
        "version_problems": link_map.version_problems,
        "unversioned": link_map.unversioned,
        "copy_sizes": link_map.copy_sizes,
        "bindings": bindings,
        # (a symbol no relocation refers to is never looked up: it cannot fail)
        "undefined": [b for b in bindings if b["binds_to"] is None and not b["weak"] and b["when"] != "never"],
        "loader_errors": link_map.errors,
        "loader_warnings": link_map.warnings,
        "dead_search_paths": _dead_search_paths(link_map),
        "flavour": link_map.flavour.name,
        "python_module": link_map.python_module,
        "node_addon": link_map.node_addon,
        "host": opts.host,
        "bound": opts.bind,
        "cpu": {"isa_level": opts.isa_level, "vendor": opts.cpu_vendor, "platform": link_map.platform or None},
        "loader_release": _release(link_map),
    }


def _release(link_map: LinkMap) -> str | None:
    """The glibc release of the sysroot's loader, as binlens read it ("2.36"), or None (musl, or not named)."""
    from analyzer.facts.loader import glibc

    if link_map.flavour.name != "glibc":
        return None
    release = glibc.loader_release(link_map)
    return f"{release[0]}.{release[1]}" if release else None


def _host_objects(opts: Options, sysroot: Sysroot) -> list[Any]:
    """The link map of --host PROGRAM (the program that dlopens the one analyzed), in load order."""
    from dataclasses import replace

    host = load.open_artifacts(opts.host)[0] if opts.host else None
    if host is None or host.format != "ELF":
        raise AnalyzerError("the host must be an ELF program", opts.host)
    elf: ELFFile = host.binary
    link_map = LinkMap(host.path, elf, replace(opts, host=None, program=None), sysroot, program_flavour(elf))
    link_map.load()
    return link_map.objects
