"""glibc's ld.so: ld.so.cache, ld.so.conf without a cache, the default and glibc-hwcaps directories,
DF_1_NODEFLIB, version checks, and its messages (dl-load.c, dl-cache.c, dl-version.c, dl-lookup.c)."""

from __future__ import annotations

import posixpath
import re
from typing import TYPE_CHECKING

from analyzer.facts.linkage import EF_ARM_ABI_FLOAT_HARD, psabi_loader
from analyzer.load.elf import DF_1_NODEFLIB, EM_X86_64

if TYPE_CHECKING:
    from analyzer.facts.loader.linkmap import Hit, LinkMap, LoadedObject, RelocationTables
    from analyzer.load.elf import ELFFile, Relocation

ISA_ORDER = ("x86-64-baseline", "x86-64-v2", "x86-64-v3", "x86-64-v4")
EM_PPC64, EM_S390 = 21, 22
EM_386, EM_ARM, EM_AARCH64 = 3, 40, 183
ARM_LEVELS = ("armv8-a", "armv8.1-a")  # an ARMv8 CPU: AArch64's levels, and v8l for a 32-bit ARM program
# e_machine -> its glibc-hwcaps subdirectories, lowest first (POWER's only for little-endian: powerpc64le's)
HWCAPS = {
    EM_X86_64: ("x86-64-v2", "x86-64-v3", "x86-64-v4"),
    EM_PPC64: ("power9", "power10"),
    EM_S390: ("z13", "z14", "z15", "z16"),
}
# --isa-level's values: the baseline (no glibc-hwcaps level, on any architecture), each architecture's levels
ISA_LEVELS = ("baseline", *ISA_ORDER, *HWCAPS[EM_PPC64], *HWCAPS[EM_S390], *ARM_LEVELS)  # (settings' ISA_LEVELS)
CACHE_FLAG_ELF_LIBC6 = 0x3  # FLAG_ELF_LIBC6 in the entry's type bits
# the hwcap field of an ld.so.cache entry (glibc before 2.37): x86's hwcap bits (sysdeps/x86/dl-hwcap.h), its
# platforms from bit 48 (i586, i686, haswell, xeon_phi), tls at bit 63, bit 62 a glibc-hwcaps entry
X86_HWCAP_BITS = {"sse2": 0, "x86_64": 1, "avx512_1": 2}
X86_PLATFORM_BITS = {"i586": 48, "i686": 49, "haswell": 50, "xeon_phi": 51}
X86_PLATFORM_MASK = 0xF << 48
CACHE_HWCAP_TLS, CACHE_HWCAP_EXTENSION = 1 << 63, 1 << 62
GLIBC_HWCAPS_FROM = (2, 33)  # the first release that searches glibc-hwcaps subdirectories
LEGACY_HWCAPS_UNTIL = (2, 37)  # the release that stopped searching the legacy ones (tls, the platform, hwcap names)
MAX_LOADER_BYTES = 16 << 20  # of the interpreter read for its release string
_RELEASE = re.compile(rb"release version (\d+)\.(\d+)")
_FILE_RELEASE = re.compile(r"ld-(\d+)\.(\d+)\.so")


def hwcaps_levels(machine: int, little_endian: bool, isa_level: str) -> tuple[str, ...]:
    """The glibc-hwcaps subdirectories a CPU of `isa_level` supports, best first: its architecture's levels up to
    it; none at the baseline or at a level of another architecture (the most conservative CPU)."""
    levels = HWCAPS.get(machine, ()) if machine != EM_PPC64 or little_endian else ()
    if isa_level not in levels:
        return ()
    return tuple(reversed(levels[: levels.index(isa_level) + 1]))


def _x86_rank(isa_level: str) -> int:
    """0 for the x86-64 baseline (or any other architecture's level), 1-3 for x86-64-v2 to -v4."""
    return ISA_ORDER.index(isa_level) if isa_level in ISA_ORDER else 0


def release_in(path: str) -> tuple[int, int] | None:
    try:
        with open(path, "rb") as fh:
            m = _RELEASE.search(fh.read(MAX_LOADER_BYTES))
    except OSError:
        return None
    return (int(m[1]), int(m[2])) if m else None


# the /proc/cpuinfo flags of each x86-64 level, as glibc's get_isa_level checks them (SSE3 is "pni", LZCNT "abm")
X86_LEVEL_FLAGS = (
    ("x86-64-v2", {"cx16", "lahf_lm", "popcnt", "pni", "sse4_1", "sse4_2", "ssse3"}),
    ("x86-64-v3", {"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"}),
    ("x86-64-v4", {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}),
)


def host_cpu(cpuinfo: str = "/proc/cpuinfo") -> tuple[str, str]:
    """This machine's CPU as --isa-level and --cpu-vendor name it, from the kernel's /proc/cpuinfo (its first
    processor's flags, which the kernel shows only when the system can use them); a machine that shows no x86
    flags is x86-64-baseline, other."""
    flags: set[str] = set()
    vendor = ""
    try:
        with open(cpuinfo, encoding="ascii", errors="replace") as fh:
            for line in fh.read(1 << 20).splitlines():
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "flags" and not flags:
                    flags = set(value.split())
                elif key == "vendor_id" and not vendor:
                    vendor = value.strip()
    except OSError:
        pass
    level = ISA_ORDER[0]
    for name, need in X86_LEVEL_FLAGS:
        if not need <= flags:
            break
        level = name
    return level, "intel" if vendor == "GenuineIntel" else "other"


def target_cpu(isa_level: str, cpu_vendor: str) -> tuple[str, str]:
    """--isa-level and --cpu-vendor with `host` replaced by this machine's."""
    if "host" not in (isa_level, cpu_vendor):
        return isa_level, cpu_vendor
    level, vendor = host_cpu()
    return (level if isa_level == "host" else isa_level), (vendor if cpu_vendor == "host" else cpu_vendor)


def platform(machine: int, isa_level: str, cpu_vendor: str, hard_float: bool = False) -> str | None:
    """$PLATFORM (and the legacy platform subdirectory) as glibc's ld.so sets it for the target CPU: on x86-64 the
    kernel's AT_PLATFORM, x86_64, unless the CPU is Intel's with AVX2, FMA, BMI1/2, LZCNT, MOVBE and POPCNT (all
    in x86-64-v3), which glibc calls haswell (init_cpu_features); i686 on i386; aarch64; for an armhf program the
    kernel's v7l, or v8l on an ARMv8 CPU (--isa-level armv8-a, armv8.1-a); None on the others (the kernel gives
    none, or it depends on the CPU model, which binlens does not know)."""
    if machine == EM_X86_64:
        return "haswell" if cpu_vendor == "intel" and _x86_rank(isa_level) >= 2 else "x86_64"
    if machine == EM_ARM:
        return ("v8l" if isa_level in ARM_LEVELS else "v7l") if hard_float else None
    return {EM_386: "i686", EM_AARCH64: "aarch64"}.get(machine)


def legacy_hwcaps(machine: int, isa_level: str, cpu_vendor: str, hard_float: bool = False) -> list[str]:
    """The hardware capability names glibc (up to 2.36) searches subdirectories for, by bit (HWCAP_IMPORTANT):
    x86_64 always on x86-64, with avx512_1 on an Intel CPU with AVX512 F/CD/BW/DQ/VL (x86-64-v4); sse2 on i386;
    atomics on an AArch64 CPU with the ARMv8.1 atomics (LSE: --isa-level armv8.1-a); vfp and neon for an armhf
    program (its ABI needs VFP; every ARMv7 core Debian's armhf runs on but a few Cortex-A9s has NEON). Other
    architectures' names depend on CPU features binlens does not model (armel's, POWER's altivec and dfp,
    s390's): none."""
    if machine == EM_X86_64:
        return ["x86_64", "avx512_1"] if cpu_vendor == "intel" and _x86_rank(isa_level) >= 3 else ["x86_64"]
    if machine == EM_AARCH64:
        return ["atomics"] if isa_level == "armv8.1-a" else []
    if machine == EM_ARM:
        return ["vfp", "neon"] if hard_float else []
    return ["sse2"] if machine == EM_386 else []


def legacy_subdirs(platform_name: str | None, hwcaps: list[str]) -> list[str]:
    """_dl_important_hwcaps before 2.37: every combination of tls, the platform and the hwcap names (the highest
    bit first), most specific first, the directory itself ("") last."""
    parts = ["tls", *([platform_name] if platform_name else []), *reversed(hwcaps)]
    n = len(parts)
    subdirs = ("/".join(p for i, p in enumerate(parts) if mask >> (n - 1 - i) & 1)
               for mask in range((1 << n) - 1, -1, -1))
    return list(dict.fromkeys(subdirs))  # (the platform x86_64 and the hwcap x86_64 name one directory twice)


def loader_release(link_map: LinkMap) -> tuple[int, int] | None:
    """The glibc release of the program's interpreter in the sysroot: the name of the file it links to
    (ld-2.31.so, up to 2.33), else its "release version 2.36" string (from 2.33); read once per sysroot; None when
    there is no interpreter or nothing names a release (then glibc-hwcaps are searched, legacy subdirectories
    not)."""
    rtld = link_map.rtld
    if rtld is None:
        return None
    key = ("glibc-release", rtld.host_path)
    memo = link_map.sysroot.memo
    if key not in memo:
        named = _FILE_RELEASE.fullmatch(posixpath.basename(rtld.host_path))
        memo[key] = (int(named[1]), int(named[2])) if named else release_in(rtld.host_path)
    release: tuple[int, int] | None = memo[key]
    return release


def _searches_legacy(link_map: LinkMap) -> bool:
    """Whether the sysroot's loader is a glibc before 2.37 (legacy hwcap subdirectories and cache entries)."""
    release = loader_release(link_map)
    return release is not None and release < LEGACY_HWCAPS_UNTIL


def _legacy_of(elf: ELFFile, isa_level: str, cpu_vendor: str) -> list[str]:
    """The legacy hwcap subdirectories a CPU's loader searches in each directory of a program, most specific
    first (the directory itself left out)."""
    hard = bool(elf.e_flags & EF_ARM_ABI_FLOAT_HARD)
    return legacy_subdirs(platform(elf.e_machine, isa_level, cpu_vendor, hard),
                          legacy_hwcaps(elf.e_machine, isa_level, cpu_vendor, hard))[:-1]


EXECSTACK_REFUSED = (2, 41)  # dlopen refuses a module that needs an executable stack from this release on
VERSIONED_LOOKUP_ACCEPTED = (2, 41)  # check_match no longer asserts on a library without symbol versions (measured)
CHECK_MATCH_LINE = {(2, 31): 111, (2, 36): 107}  # that assertion's line in dl-lookup.c (Debian's loaders, measured)
OLD_SORT_WORK = 10_000_000  # steps times maps: the most of the old sort binlens does (a few hundred milliseconds)
EARLY_INIT_FROM = (2, 32)  # ld.so calls libc.so.6's __libc_early_init@GLIBC_PRIVATE after relocating, from here
# its words when the libc.so.6 loaded has none (dl-call-libc-early-init.c; the same line in 2.36 and 2.41, measured)
EARLY_INIT_ASSERTION = ("Inconsistency detected by ld.so: dl-call-libc-early-init.c: 37: _dl_call_libc_early_init: "
                        "Assertion `sym != NULL' failed!")
RELR_CHECKED_FROM = (2, 36)  # DT_RELR without a need of GLIBC_ABI_DT_RELR refused from this release on
DFS_SORT_FROM = (2, 35)  # _dl_sort_maps' depth-first algorithm (glibc.rtld.dynamic_sort=2) the default from here
P_ALIGN_RELAXED = (2, 35)  # the loader checks a PT_LOAD's layout against the page size alone from this release on


def host_loader_release(link_map: LinkMap) -> tuple[int, int] | None:
    """The glibc release of the loader a module runs under: the program's interpreter, or for a module (no
    interpreter of its own) the sysroot's loader at the psABI's place for its architecture."""
    if link_map.rtld is not None:
        return loader_release(link_map)
    elf = link_map.main_elf
    path = psabi_loader(elf.e_machine, elf.bits, elf.byte_order == "<", elf.e_flags)
    host = link_map.sysroot.host(path) if path else None
    if not host:
        return None
    key = ("glibc-release", host)
    memo = link_map.sysroot.memo
    if key not in memo:
        named = _FILE_RELEASE.fullmatch(posixpath.basename(host))
        memo[key] = (int(named[1]), int(named[2])) if named else release_in(host)
    release: tuple[int, int] | None = memo[key]
    return release


class Glibc:
    name = "glibc"
    checks_versions = True
    checks_float_abi = True
    binds_at_start = False
    expands_needed = True
    warns_copy_size = True
    reports_every_failure = False  # (the first failure is fatal: _dl_signal_error, no one to catch it)
    takes_first_file = False

    def search(self, link_map: LinkMap, name: str, req: LoadedObject, log: list[str]) -> Hit | None:
        return link_map.glibc_search(name, req, log)

    def unloadable_library(self, program: str, name: str, path: str, why: str, needed_by: str, dlopened: bool) -> str:
        return f"{path}: {why}" if dlopened else f"{program}: error while loading shared libraries: {path}: {why}"

    def __init__(self) -> None:
        self._legacy: list[str] | None = None  # the program's legacy hwcap subdirectories, once known

    def subdirs(self, link_map: LinkMap, directory: str) -> list[str]:
        """The directory's glibc-hwcaps levels the CPU supports (up to --isa-level on x86-64; from glibc 2.33),
        then, before glibc 2.37, its legacy hwcap subdirectories that exist (ld.so skips a missing one after its
        first try), then itself."""
        out = [posixpath.join(directory, "glibc-hwcaps", lv) for lv in self._levels(link_map)]
        if _searches_legacy(link_map):
            if self._legacy is None:
                self._legacy = _legacy_of(link_map.main_elf, link_map.opts.isa_level, link_map.opts.cpu_vendor)
            out += [d for d in (posixpath.join(directory, sub) for sub in self._legacy) if link_map.sysroot.is_dir(d)]
        return out + [directory]

    def other_cpus(self, link_map: LinkMap, name: str, tried: list[str]) -> list[dict[str, str]]:
        """Copies of a library not found that lie in a CPU-specific subdirectory of a directory searched, which
        another CPU's loader searches: each with the subdirectory (`glibc-hwcaps/x86-64-v3`, `haswell`...)."""
        elf = link_map.main_elf
        top = HWCAPS.get(elf.e_machine, ("baseline",))[-1]  # (the most capable CPU's levels: all of them)
        subs = [f"glibc-hwcaps/{lv}" for lv in self._levels(link_map, top)]
        if _searches_legacy(link_map):
            for vendor, level in (("intel", "x86-64-v4"), ("other", "baseline"), ("other", "armv8.1-a")):
                subs += _legacy_of(elf, level, vendor)
        seen = set(tried)
        out: list[dict[str, str]] = []
        for directory in dict.fromkeys(posixpath.dirname(t) for t in tried):
            for sub in dict.fromkeys(subs):
                path = posixpath.join(directory, sub, name)
                if path in seen or not link_map.sysroot.is_dir(posixpath.join(directory, sub)):
                    continue
                found, _ = link_map.sysroot.open(path, 64 if elf.bits == 64 else 52)
                if found is not None and link_map.compatible(found):
                    seen.add(path)
                    out.append({"path": path, "subdirectory": sub})
        return out

    def default_dirs(self, link_map: LinkMap) -> list[str]:
        multi = [f"/lib/{link_map.triplet}", f"/usr/lib/{link_map.triplet}"] if link_map.triplet else []
        return [*multi, "/lib", "/usr/lib"]

    def _levels(self, link_map: LinkMap, isa_level: str | None = None) -> tuple[str, ...]:
        """The glibc-hwcaps subdirectories the CPU (of --isa-level, or of `isa_level`) supports, best first
        (none before glibc 2.33)."""
        release = loader_release(link_map)
        if release is not None and release < GLIBC_HWCAPS_FROM:
            return ()
        elf = link_map.main_elf
        return hwcaps_levels(elf.e_machine, elf.byte_order == "<", isa_level or link_map.opts.isa_level)

    def _legacy_entry_ok(self, link_map: LinkMap, hwcap: int) -> bool:
        """Whether glibc before 2.37 takes an ld.so.cache entry of a legacy hwcap subdirectory on this CPU
        (dl-cache.c): tls always, hwcap bits only those the CPU has, a platform bit only the CPU's own (x86: the
        bits binlens knows; other machines' entries are taken as they come)."""
        machine = link_map.main_elf.e_machine
        if machine not in (EM_X86_64, EM_386) or not hwcap & ~CACHE_HWCAP_TLS or hwcap & CACHE_HWCAP_EXTENSION:
            return True
        opts = link_map.opts
        have = sum(1 << X86_HWCAP_BITS[n] for n in legacy_hwcaps(machine, opts.isa_level, opts.cpu_vendor))
        plat = X86_PLATFORM_BITS.get(platform(machine, opts.isa_level, opts.cpu_vendor) or "")
        platforms = hwcap & X86_PLATFORM_MASK
        if platforms and (plat is None or platforms != 1 << plat):
            return False
        return not hwcap & ~(have | X86_PLATFORM_MASK | CACHE_HWCAP_TLS)

    def _from_cache(self, link_map: LinkMap, name: str, log: list[str]) -> Hit | None:
        """The one entry ld.so takes from the cache (dl-cache.c, search_cache): of the glibc-hwcaps entries (listed
        first), the best level the CPU supports; else the first other entry — before 2.37 one of a legacy hwcap
        subdirectory only when the CPU has those capabilities, from 2.37 none of those. Only that file is tried:
        when it is missing the search goes on in the default directories."""
        levels = self._levels(link_map)
        legacy = _searches_legacy(link_map)
        best, best_priority = None, len(levels)
        for flags, key, value, hwcap in link_map.sysroot.cache_entries(name):
            if key != name or flags & CACHE_FLAG_ELF_LIBC6 != CACHE_FLAG_ELF_LIBC6:
                continue
            if "/glibc-hwcaps/" in value or hwcap & CACHE_HWCAP_EXTENSION:
                level = value.split("/glibc-hwcaps/", 1)[-1].split("/", 1)[0]
                if level in levels and levels.index(level) < best_priority:
                    best, best_priority = value, levels.index(level)
                continue
            if best is not None:
                break
            if hwcap and not (legacy and self._legacy_entry_ok(link_map, hwcap)):
                continue
            best = value
            break
        if best is None:
            return None
        hit = link_map.try_path(best, log)
        return (hit[0], hit[1], "ld.so.cache") if hit else None

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

    def early_init_failure(self, link_map: LinkMap) -> str | None:
        """From 2.32, once everything is relocated, ld.so looks up __libc_early_init at GLIBC_PRIVATE in the
        libc.so.6 it loaded and asserts that it is there: a libc.so.6 of an older release than the loader (a
        bundled copy, reached through LD_LIBRARY_PATH or an application's own library directory) stops the
        program with that assertion. (A module dlopened into a running program initialises no new libc.)"""
        from analyzer.facts.loader.linkmap import definitions

        release = loader_release(link_map)
        if release is None or release < EARLY_INIT_FROM or link_map.dlopened:
            return None
        libc = next((o for o in link_map.objects[1:] if (o.soname or "").startswith("libc.so.")), None)
        if libc is None or any(v == "GLIBC_PRIVATE" for v, _ in definitions(libc).get("__libc_early_init", [])):
            return None
        return EARLY_INIT_ASSERTION

    def relocation_order(self, link_map: LinkMap) -> list[LoadedObject]:
        """dl_main's (and dl_open's) relocation loop: the initialisation order (l_initfini: each object before
        the objects it needs, as _dl_sort_maps sorts the search list) walked backwards, so that the program
        comes last; the loader itself is not among them (it relocated itself first)."""
        objects = link_map.objects
        deps = link_map.direct_dependencies()
        release = loader_release(link_map)
        dlopened = link_map.dlopened
        if release is None or release >= DFS_SORT_FROM:
            order = sort_maps_dfs(objects, deps, None if dlopened else objects[0])
        else:  # (the program stays first: only l_initfini[1:] is sorted, at start-up)
            order = objects[:1] + sort_maps_old(objects[1:], deps) if not dlopened else sort_maps_old(objects, deps)
        return [o for o in reversed(order) if o is not link_map.rtld]

    def lookups(self, tables: RelocationTables, now: bool) -> list[Relocation]:
        """ELF_DYNAMIC_RELOCATE: DT_REL's range, then DT_RELA's, each followed by DT_JMPREL when its entries are
        of that kind and the object is bound now (lazily, the PLT waits for each function's first call)."""
        rela, rel, plt, plt_rela, _ = tables
        plt = plt if now else []
        return [*rel, *(plt if not plt_rela else []), *rela, *(plt if plt_rela else [])]

    def refuses_exec_stack(self, link_map: LinkMap) -> bool:
        """dlopen refuses an object that needs an executable stack (glibc 2.41 on; before, it made the stack
        executable)."""
        release = host_loader_release(link_map)
        return release is not None and release >= EXECSTACK_REFUSED

    def dlopen_exec_stack(self, name: str) -> str:
        return f"{name}: cannot enable executable stack as shared object requires: Invalid argument"

    def asserts_versioned_lookup(self, link_map: LinkMap) -> bool:
        """A versioned reference looked up in the library its version names, when that library has no symbol
        versions at all (no .gnu.version: it calls nothing of the C library), stops the loader at an assertion
        in check_match (glibc 2.31 and 2.36, as Debian builds them; 2.41 accepts the definition). Assumed for a
        release binlens does not know."""
        release = host_loader_release(link_map)
        return release is None or release < VERSIONED_LOOKUP_ACCEPTED

    def versioned_lookup_assertion(self, link_map: LinkMap) -> str:
        """The loader's words for that assertion; the line of dl-lookup.c is each release's own (measured for
        2.31 and 2.36; left out for another release)."""
        line = CHECK_MATCH_LINE.get(host_loader_release(link_map) or (0, 0))
        return (f"Inconsistency detected by ld.so: dl-lookup.c: {line if line else '?'}: check_match: Assertion "
                "`version->filename == NULL || ! _dl_name_match_p (version->filename, map)' failed!")

    def refuses_p_align(self, link_map: LinkMap) -> bool:
        """A PT_LOAD's address and offset must be congruent modulo its p_align (before 2.35; from 2.35 modulo
        the page size alone)."""
        release = host_loader_release(link_map)
        return release is not None and release < P_ALIGN_RELAXED


def sort_maps_dfs(maps: list[LoadedObject], deps: dict[int, list[LoadedObject]],
                  program: LoadedObject | None) -> list[LoadedObject]:
    """_dl_sort_maps_dfs: a depth-first walk from each map, last to first, along its direct dependencies (never
    into the program, l_main_map), each map placed before everything its walk reached (reverse post-order)."""
    inside = {id(m) for m in maps}
    visited: set[int] = set()
    post: list[LoadedObject] = []
    first = program
    for root in reversed(maps):
        if id(root) in visited:
            continue
        visited.add(id(root))
        stack = [(root, iter(deps.get(id(root), [])))]
        while stack:
            node, children = stack[-1]
            child = next((c for c in children if id(c) not in visited and c is not first and id(c) in inside),
                         None)  # fmt: skip
            if child is None:
                post.append(node)
                stack.pop()
            else:
                visited.add(id(child))
                stack.append((child, iter(deps.get(id(child), []))))
    return post[::-1]


def sort_maps_old(maps: list[LoadedObject], deps: dict[int, list[LoadedObject]]) -> list[LoadedObject]:
    """_dl_sort_maps before 2.35: each map moved behind the last map after it that needs it, with its counter of
    visits against dependency cycles, as dl-sort-maps.c does (the maps as numbers, each one's dependents found
    by list.index). A long chain listed backwards costs glibc n^3 steps: past OLD_SORT_WORK, the depth-first
    order, which is a valid initialisation order too, though not the one the old loader would take."""
    n = len(maps)
    if n <= 1:
        return list(maps)
    number = {id(m): j for j, m in enumerate(maps)}
    dependents: list[list[int]] = [[] for _ in range(n)]
    for j, m in enumerate(maps):
        for d in deps.get(id(m), []):
            if id(d) in number and number[id(d)] != j:
                dependents[number[id(d)]].append(j)
    order = list(range(n))
    seen = [0] * n
    i = 0
    for _ in range(OLD_SORT_WORK // n):  # (each step reads the list once for each dependent)
        seen[i] += 1
        this = order[i]
        k = i
        for j in dependents[this]:
            try:
                k = max(k, order.index(j, i + 1))
            except ValueError:  # (before it)
                pass
        if k > i:  # move it behind order[k]
            del order[i]
            order.insert(k, this)
            if seen[i + 1] > n - i:
                i += 1
                seen[i:] = [0] * (n - i)
            else:
                seen.insert(k, seen.pop(i))
            continue
        i += 1
        if i == n:
            return [maps[j] for j in order]
        seen[i:] = [0] * (n - i)
    return sort_maps_dfs(maps, deps, None)  # (a chain of hundreds of libraries each needing the next, listed backwards)
