"""musl's loader (ldso/dynlink.c): its path file, names it answers for itself, no version checks,
every symbol bound at start-up, and its messages."""

from __future__ import annotations

import posixpath
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from analyzer.facts.loader.linkmap import Hit, LinkMap, LoadedObject, RelocationTables
    from analyzer.load.elf import ELFFile, Relocation

# names musl's loader resolves to itself (dynlink.c: libc, libpthread, librt, libm, libdl, libutil, libxnet)
RESERVED = re.compile(r"^lib(c|pthread|rt|m|dl|util|xnet)\.so(\..*)?$")
BUILTIN_PATH = ("/lib", "/usr/local/lib", "/usr/lib")


class Musl:
    name = "musl"
    checks_versions = False
    checks_float_abi = False
    binds_at_start = True
    expands_needed = False
    warns_copy_size = False
    reports_every_failure = True  # (dynlink.c's error() at start-up: print, mark the failure, go on)
    takes_first_file = True  # (path_open: the first file that opens; map_library then fails with ENOEXEC)

    def unloadable_library(self, program: str, name: str, path: str, why: str, needed_by: str, dlopened: bool) -> str:
        return f"Error loading shared library {name}: Exec format error (needed by {needed_by})"

    def __init__(self, main_elf: ELFFile) -> None:
        self.arch = posixpath.basename(main_elf.interpreter or "")[len("ld-musl-") : -len(".so.1")]

    def other_cpus(self, link_map: LinkMap, name: str, tried: list[str]) -> list[dict[str, str]]:
        return []  # (musl searches no CPU-specific subdirectory)

    def subdirs(self, link_map: LinkMap, directory: str) -> list[str]:
        return [directory]

    def path(self, link_map: LinkMap) -> list[str]:
        """/etc/ld-musl-ARCH.path (newlines or colons), else the built-in default."""
        host_path = link_map.sysroot.host(f"/etc/ld-musl-{self.arch}.path")
        if host_path:
            try:
                with open(host_path, encoding="utf-8", errors="replace") as f:
                    return [d for d in f.read().replace("\n", ":").split(":") if d]
            except OSError:
                pass
        return list(BUILTIN_PATH)

    def search(self, link_map: LinkMap, name: str, req: LoadedObject, log: list[str]) -> Hit | None:
        """load_library's order: LD_LIBRARY_PATH first; then the search path of the object that needs it and of
        each object that brought that one in (its RUNPATH, else its RPATH: musl tells them apart in neither
        precedence nor inheritance); then the musl path. The first file it opens ends the search."""
        if link_map.opts.ld_library_path:
            found = link_map.search_dirs(name, link_map.dirs(link_map.opts.ld_library_path, link_map.main),
                                         "LD_LIBRARY_PATH", log)  # fmt: skip
            if found or link_map.stopped_at_file():
                return found
        o: LoadedObject | None = req
        while o is not None:
            if entries := o.runpath or o.rpath:
                found = link_map.search_dirs(name, link_map.dirs(entries, o),
                                             f"{'RUNPATH' if o.runpath else 'RPATH'} of {o.name}", log)  # fmt: skip
                if found or link_map.stopped_at_file():
                    return found
            o = o.loader
        return self.default_search(link_map, name, req, log)

    def default_search(self, link_map: LinkMap, name: str, requester: LoadedObject, log: list[str]) -> Hit | None:
        for d in self.path(link_map):
            hit = link_map.try_path(d.rstrip("/") + "/" + name, log)
            if hit:
                return hit[0], hit[1], "musl path"
            if link_map.stopped_at_file():
                return None
        return None

    def refuses_exec_stack(self, link_map: LinkMap) -> bool:
        return False  # (musl's loader does not look at PT_GNU_STACK)

    def dlopen_exec_stack(self, name: str) -> str:
        return ""

    def refuses_p_align(self, link_map: LinkMap) -> bool:
        return False  # (musl's loader maps by the page size alone)

    def asserts_versioned_lookup(self, link_map: LinkMap) -> bool:
        return False  # (musl ignores symbol versions)

    def versioned_lookup_assertion(self, link_map: LinkMap) -> str:
        return ""

    def answers_for(self, name: str) -> bool:
        return bool(RESERVED.match(name))

    def missing_library(self, program: str, name: str, needed_by: str) -> str:
        return f"Error loading shared library {name}: No such file or directory (needed by {needed_by})"

    def undefined_symbol(self, program: str, obj: str, symbol: str, version: str | None) -> str:
        return f"Error relocating {obj}: {symbol}: symbol not found"

    def dlopen_undefined(self, obj: str, symbol: str, version: str | None) -> str:
        return f"Error relocating {obj}: {symbol}: symbol not found"

    def early_init_failure(self, link_map: LinkMap) -> str | None:
        return None  # (musl's loader is its C library)

    def relocation_order(self, link_map: LinkMap) -> list[LoadedObject]:
        """reloc_all(app.next), then the program (its copy relocations need its libraries relocated): the
        libraries in load order; dlopen relocates the object opened, then what it brought in, in that order."""
        objects = link_map.objects
        dlopened = link_map.dlopened
        return objects if dlopened else [*objects[1:], objects[0]]

    def lookups(self, tables: RelocationTables, now: bool) -> list[Relocation]:
        """do_relocs on DT_JMPREL, DT_REL, DT_RELA in turn: every entry, PLT ones included (musl binds all at
        start-up)."""
        rela, rel, plt, _, _ = tables
        return [*plt, *rel, *rela]

    def dlopen_missing(self, name: str, needed_by: str) -> str:
        return self.missing_library("", name, needed_by)  # (musl's dlerror says what its loader says)
