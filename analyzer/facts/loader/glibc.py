"""glibc's ld.so: ld.so.cache, ld.so.conf without a cache, the default and glibc-hwcaps directories,
DF_1_NODEFLIB, version checks, and its messages (dl-load.c, dl-cache.c, dl-version.c, dl-lookup.c)."""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING

from analyzer.load.elf import DF_1_NODEFLIB, EM_X86_64

if TYPE_CHECKING:
    from analyzer.facts.loader.linkmap import Hit, LinkMap, LoadedObject

ISA_ORDER = ("x86-64-baseline", "x86-64-v2", "x86-64-v3", "x86-64-v4")
# e_machine -> the glibc-hwcaps subdirectories, best first
HWCAPS = {
    EM_X86_64: ("x86-64-v4", "x86-64-v3", "x86-64-v2"),
    21: ("power10", "power9"),  # EM_PPC64
    22: ("z16", "z15", "z14", "z13"),  # EM_S390
}
CACHE_FLAG_ELF_LIBC6 = 0x3  # FLAG_ELF_LIBC6 in the entry's type bits


class Glibc:
    name = "glibc"
    checks_versions = True
    binds_at_start = False

    def subdirs(self, link_map: LinkMap, directory: str) -> list[str]:
        """The directory's glibc-hwcaps levels the CPU supports (up to --isa-level on x86-64), then itself."""
        machine = link_map.main_elf.e_machine
        levels = HWCAPS.get(machine, ())
        if machine == EM_X86_64:
            top = ISA_ORDER.index(link_map.opts.isa_level) if link_map.opts.isa_level in ISA_ORDER else 0
            levels = tuple(lv for lv in levels if ISA_ORDER.index(lv) <= top)
        return [posixpath.join(directory, "glibc-hwcaps", lv) for lv in levels] + [directory]

    def default_dirs(self, link_map: LinkMap) -> list[str]:
        multi = [f"/lib/{link_map.triplet}", f"/usr/lib/{link_map.triplet}"] if link_map.triplet else []
        return [*multi, "/lib", "/usr/lib"]

    def _hwcap_ok(self, link_map: LinkMap, path: str) -> bool:
        level = path.split("/glibc-hwcaps/", 1)[1].split("/", 1)[0]
        return level not in ISA_ORDER or ISA_ORDER.index(level) <= ISA_ORDER.index(link_map.opts.isa_level)

    def _from_cache(self, link_map: LinkMap, name: str, log: list[str]) -> Hit | None:
        for flags, key, value, _ in link_map.sysroot.cache_entries(name):
            if key != name or flags & CACHE_FLAG_ELF_LIBC6 != CACHE_FLAG_ELF_LIBC6:
                continue
            if "/glibc-hwcaps/" in value and not self._hwcap_ok(link_map, value):
                continue
            hit = link_map.try_path(value, log)
            if hit:
                return hit[0], hit[1], "ld.so.cache"
        return None

    def default_search(self, link_map: LinkMap, name: str, requester: LoadedObject, log: list[str]) -> Hit | None:
        """ld.so.cache (or, without a cache, the directories ld.so.conf lists), then the default directories;
        none of them for an object linked with -z nodefaultlib."""
        if requester.dyn.flags_1 & DF_1_NODEFLIB:
            return None
        if not link_map.sysroot.cache():
            found = link_map.search_dirs(name, link_map.sysroot.conf_dirs(), "ld.so.conf directory", log)
            if found:
                return found
        return self._from_cache(link_map, name, log) or link_map.search_dirs(
            name, self.default_dirs(link_map), "default directory", log
        )

    def answers_for(self, name: str) -> bool:
        return False

    def missing_library(self, program: str, name: str, needed_by: str) -> str:
        return f"{program}: error while loading shared libraries: {name}: cannot open shared object file: " \
               "No such file or directory"  # fmt: skip

    def undefined_symbol(self, program: str, obj: str, symbol: str, version: str | None) -> str:
        suffix = f", version {version}" if version else ""
        return f"{program}: symbol lookup error: {obj}: undefined symbol: {symbol}{suffix}"

    def dlopen_undefined(self, obj: str, symbol: str, version: str | None) -> str:
        suffix = f", version {version}" if version else ""
        return f"{obj}: undefined symbol: {symbol}{suffix}"

    def dlopen_missing(self, name: str, needed_by: str) -> str:
        return f"{name}: cannot open shared object file: No such file or directory"
