"""One program's link map, built as the dynamic loader builds it; glibc's and musl's differences are
their `Flavour` (analyzer.facts.loader.glibc and .musl).

The steps every loader shares:

- objects are loaded breadth-first from the main program's DT_NEEDED;
- a name with a '/' is a path; otherwise, in order: the DT_RPATH of the
  requesting object and of each object that loaded it up to the main program
  (each only if that object has no DT_RUNPATH), then the main program's
  DT_RPATH; LD_LIBRARY_PATH; the requesting object's own DT_RUNPATH; then the
  flavour's own places (glibc: ld.so.cache and the default directories; musl:
  its path file); `$ORIGIN`, `$LIB` and `$PLATFORM` are expanded;
- a candidate of another class, byte order or machine is skipped, as ld.so
  skips it;
- a name already loaded (by its path or its SONAME) is not loaded again;
- then version needs are checked (glibc) and symbols are bound: every
  undefined, non-weak dynamic symbol is looked up in the global scope (the
  main program, then the load order) for a definition whose version matches;
  references from relocations processed at start-up fail at start-up, PLT
  references only when called (unless BIND_NOW; musl binds all at start-up).
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from analyzer.facts.linkage import (
    DEBIAN_TRIPLETS,
    EF_ARM_ABI_FLOAT_HARD,
    EF_RISCV_FLOAT_ABI,
    EM_ARM,
    EM_MIPS,
    EM_RISCV,
    NODE_ADDON_MARKS,
    DynamicInfo,
    dynamic_info,
    exec_stack_wanted,
    p_align_kept,
)
from analyzer.facts.loader.sysroot import Sysroot
from analyzer.load.elf import (
    DT_VERNEED,
    ET_DYN,
    PT_GNU_STACK,
    VER_FLG_WEAK,
    ELFFile,
    Relocation,
)

MAX_OBJECTS = 4096  # a dependency graph larger than this is treated as hostile
DT_MIPS_GOTSYM, STO_MIPS_PLT = 0x70000013, 0x8
DT_RELR = 36

# e_machine -> ($PLATFORM, $LIB); the multiarch triplet of Debian's default directories: DEBIAN_TRIPLETS
PLATFORM_LIB = {62: ("x86_64", "lib64"), 3: ("i686", "lib"), 183: ("aarch64", "lib64"), 40: ("v7l", "lib"),
                243: ("riscv64", "lib64"), 21: ("power8", "lib64"), 22: ("z196", "lib64"), 8: ("mips64", "lib64"),
                258: ("loongarch64", "lib64")}  # fmt: skip
MULTIARCH = {m: (DEBIAN_TRIPLETS[m], *PLATFORM_LIB[m]) for m in PLATFORM_LIB}  # (triplet, $PLATFORM, $LIB)

Hit = tuple[str, ELFFile, str]  # (the path the loader opened, the ELF, which rule found it)
PYTHON_HOST = "(the Python interpreter)"  # binds_to of the C API symbols a Python extension leaves to its host
# the libraries beside libc that every CPython interpreter on Linux links (configure's LIBM, in its SYSLIBS: the
# interpreter does floating-point maths), so they are in the global scope of every module it imports: an
# extension module calling log2 without linking libm itself imports (brotli's _brotli, pandas' timedeltas)
PYTHON_HOST_LIBRARIES = ("libm.so.6",)
NODE_HOST = "(the Node.js runtime)"  # binds_to of what a Node.js addon leaves to the node program that loads it
# the names one of which a Node.js addon's dynamic string table holds: its entry point, or what it registers with
# what the node program exports to its addons: Node-API, libuv, V8's and node's own C++ API (node links them in)
NODE_API = ("napi_", "node_api_", "uv_", "node_module_register", "_ZN4node", "_ZNK4node", "_ZN2v8", "_ZNK2v8")


@dataclass
class Options:
    sysroot: str = "/"
    ld_library_path: list[str] = field(default_factory=list)
    isa_level: str = "baseline"  # glibc-hwcaps levels up to this one (glibc.ISA_LEVELS)
    cpu_vendor: str = "other"  # "intel": glibc's haswell platform and avx512_1 hwcap at x86-64-v3/v4
    program: str | None = None  # the name the program is run by (argv[0]) in messages
    host: str | None = None  # a program that dlopens this one (a plugin): its link map binds first
    install_dir: str | None = None  # where the program will live in the sysroot ($ORIGIN); default: where it is
    sysroot_name: str | None = None  # what the report calls the sysroot (an image unpacked to a temporary one)
    bind: bool = True  # False: resolve the libraries only (`deps --no-bind`, as `ld.so --list`): no symbols
    preload: list[str] = field(default_factory=list)  # LD_PRELOAD: loaded after the program, before its libraries
    bind_now: bool = False  # LD_BIND_NOW set: glibc binds every object's PLT at start-up, as with -z now
    cwd: str | None = None  # the directory the program is started from, for relative paths (None: /; `deps`
    # passes its own working directory, as the program would be started from there)


@dataclass
class LoadedObject:
    """One object in the link map."""

    name: str  # as the loader names it: the path it was opened by
    needed_as: str
    elf: ELFFile
    found_by: str
    loader: LoadedObject | None  # the object whose DT_NEEDED brought it in
    host_path: str  # the host path of the file read
    dyn: DynamicInfo
    origin: str = ""  # $ORIGIN: the directory the object was opened from, in the sysroot's namespace

    @property
    def needed(self) -> tuple[str, ...]:
        return self.dyn.needed

    @property
    def rpath(self) -> tuple[str, ...]:
        return self.dyn.rpath

    @property
    def runpath(self) -> tuple[str, ...]:
        return self.dyn.runpath

    @property
    def soname(self) -> str | None:
        return self.dyn.soname


def wants_exec_stack(elf: ELFFile) -> bool:
    stack = next((s for s in elf.segments if s.p_type == PT_GNU_STACK), None)
    return exec_stack_wanted(elf.e_machine, None if stack is None else stack.p_flags)


def _same_float_abi(elf: ELFFile, main: ELFFile) -> bool:
    """glibc's VALID_FLOAT_ABI (sysdeps/arm/dl-machine.h), for the loader of the program's float ABI: an EABI5
    object must carry the hard-float flag for the armhf loader and lack it for the armel one (an object of
    another EABI version passes either). On RISC-V (elf_machine_matches_host, sysdeps/riscv/dl-machine.h) the
    object's EF_RISCV_FLOAT_ABI must be the loader's: an lp64 (soft-float) library is skipped by the lp64d
    loader."""
    if elf.e_machine == EM_RISCV:
        return elf.e_flags & EF_RISCV_FLOAT_ABI == main.e_flags & EF_RISCV_FLOAT_ABI
    if elf.e_flags >> 24 != 5 or main.e_flags >> 24 != 5:
        return True
    return bool(elf.e_flags & EF_ARM_ABI_FLOAT_HARD) == bool(main.e_flags & EF_ARM_ABI_FLOAT_HARD)


class Flavour(Protocol):
    """What one C library's loader does its own way."""

    name: str
    checks_versions: bool  # version needs checked against version definitions (glibc yes, musl no)
    checks_float_abi: bool  # ARM EABI5, RISC-V: a library of another float ABI skipped (glibc yes, musl no)
    binds_at_start: bool  # every symbol bound at start-up, whatever BIND_NOW says (musl)
    expands_needed: bool  # $ORIGIN, $LIB, $PLATFORM in a DT_NEEDED path expanded (glibc yes; musl opens it as it is)

    def subdirs(self, link_map: LinkMap, directory: str) -> list[str]:
        """The directories searched for one directory of a path list (glibc: its glibc-hwcaps levels first)."""
        ...

    def default_search(self, link_map: LinkMap, name: str, requester: LoadedObject, log: list[str]) -> Hit | None:
        """Where the library is found after RPATH, LD_LIBRARY_PATH and RUNPATH failed."""
        ...

    def other_cpus(self, link_map: LinkMap, name: str, tried: list[str]) -> list[dict[str, str]]:
        """Copies of a library not found in the CPU-specific subdirectories another CPU's loader searches."""
        ...

    def answers_for(self, name: str) -> bool:
        """Names the loader resolves to itself, whatever the file system holds."""
        ...

    def missing_library(self, program: str, name: str, needed_by: str) -> str: ...

    def refuses_exec_stack(self, link_map: LinkMap) -> bool:
        """Whether dlopen refuses an object that needs an executable stack (glibc 2.41 and later)."""
        ...

    def dlopen_exec_stack(self, name: str) -> str: ...

    def refuses_p_align(self, link_map: LinkMap) -> bool:
        """Whether the loader refuses a library whose PT_LOAD p_align its layout does not keep (glibc before
        2.35)."""
        ...

    warns_copy_size: bool  # glibc: a copy relocation whose definition is larger than the program's copy

    def asserts_versioned_lookup(self, link_map: LinkMap) -> bool:
        """Whether a versioned reference looked up in a library without symbol versions stops the loader at an
        assertion (glibc before 2.41)."""
        ...

    def versioned_lookup_assertion(self, link_map: LinkMap) -> str: ...

    def undefined_symbol(self, program: str, obj: str, symbol: str, version: str | None) -> str: ...

    def dlopen_undefined(self, obj: str, symbol: str, version: str | None) -> str:
        """dlerror()'s text when a dlopened object (a Python extension) cannot bind a symbol."""
        ...

    def dlopen_missing(self, name: str, needed_by: str) -> str:
        """dlerror()'s text when a library a dlopened object needs is not found."""
        ...

    reports_every_failure: bool  # musl: every library and relocation it cannot do, then it stops (glibc: the first)
    takes_first_file: bool  # musl: the first file of the name it can open is the library, loadable or not

    def search(self, link_map: LinkMap, name: str, req: LoadedObject, log: list[str]) -> Hit | None:
        """Where the loader finds a library `name` (no slash) that `req` needs: its search order."""
        ...

    def unloadable_library(self, program: str, name: str, path: str, why: str, needed_by: str, dlopened: bool) -> str:
        """The loader's message for a library found as `path` that it cannot load (`why`: glibc's words)."""
        ...

    def relocation_order(self, link_map: LinkMap) -> list[LoadedObject]:
        """The objects in the order the loader relocates them (and so meets their undefined symbols)."""
        ...

    def early_init_failure(self, link_map: LinkMap) -> str | None:
        """What the loader says when, everything relocated, it cannot initialise the C library it loaded."""
        ...

    def lookups(self, tables: RelocationTables, now: bool) -> list[Relocation]:
        """An object's relocations in the order its loader processes them at start-up (`now`: its PLT's too)."""
        ...


# an object's dynamic relocation tables, as ELFFile.relocation_tables reads them: DT_RELA's, DT_REL's, DT_JMPREL's,
# whether the last are Rela entries, whether all were read whole
RelocationTables = tuple[list[Relocation], list[Relocation], list[Relocation], bool, bool]


class LinkMap:
    """One program's link map, as its loader would build it."""

    def __init__(self, main_path: str, main_elf: ELFFile, opts: Options, sysroot: Sysroot, flavour: Flavour) -> None:
        self.opts = opts
        self.flavour = flavour
        origin, sysroot = _program_origin(main_path, opts, sysroot)
        self.sysroot = sysroot
        # the loader opens a relative path (a DT_NEEDED `lib/libfoo.so` linked by path without a soname, a
        # relative RPATH entry, an empty one, `.` in LD_LIBRARY_PATH) from the process's working directory
        self.cwd = opts.cwd or "/"
        self.main_elf = main_elf
        self.program = opts.program or main_path
        self.triplet, self.platform, self.lib = MULTIARCH.get(main_elf.e_machine, ("", "", "lib"))
        from analyzer.facts.loader.glibc import EF_ARM_ABI_FLOAT_HARD, platform

        # the target CPU's where binlens knows it (glibc names an Intel CPU of x86-64-v3 haswell; ARMv8 is v8l)
        self.platform = platform(main_elf.e_machine, opts.isa_level, opts.cpu_vendor,
                                 bool(main_elf.e_flags & EF_ARM_ABI_FLOAT_HARD)) or self.platform
        if self.triplet and sysroot.host(f"/lib/{self.triplet}"):  # Debian's ld.so: $LIB is the multiarch dir
            self.lib = f"lib/{self.triplet}"
        self.main = self._object(self.program, self.program, main_elf, "main program", None, main_path)
        self.main.origin = origin
        self.objects: list[LoadedObject] = [self.main]
        self.errors: list[str] = []  # what the loader prints: the first failure (glibc), every one (musl)
        self.warnings: list[str] = []  # what it prints and goes on (glibc: a library without version information)
        self.unversioned: list[dict[str, str]] = []  # version needs met by a library without version definitions
        self.copy_sizes: list[dict[str, Any]] = []  # copy relocations of data the library now defines larger
        self.missing: list[dict[str, Any]] = []  # every library not found (as ldd lists them), not only the first
        self.version_problems: list[dict[str, str]] = []  # every version node no loaded library defines
        self.tried: dict[str, list[str]] = {}
        self.bad_file: tuple[str, str] | None = None
        self.rtld: LoadedObject | None = None  # the loader itself: loaded first, entered in the list when needed
        self.host_scope: list[LoadedObject] = []  # --host: the host program's link map, searched first
        self._host_libraries: list[LoadedObject] | None = None  # PYTHON_HOST_LIBRARIES found (on first need)
        self._refuses: bool | None = None  # whether dlopen refuses an object needing an executable stack
        # a Python extension module (it exports PyInit_NAME): the interpreter that imports it provides the C API
        # (Py*, _Py*), and dlopens it with RTLD_NOW, so every reference binds when it is imported. Not a program
        # (PT_INTERP): the interpreter itself, or gdb, export the PyInit_ functions of their built-in modules and
        # are run, not imported
        plugin = main_elf.interpreter is None
        self.python_module = next(
            (
                s.name[len("PyInit_") :]
                for s in main_elf.dynamic_symbols()
                if s.st_shndx and s.name.startswith("PyInit_")
            ),
            None,
        ) if plugin and main_elf.dynstr_has(b"PyInit_") else None  # fmt: skip
        # a Node.js addon (a .node file: it exports napi_register_module_v1, or node_register_module_vN, or
        # registers itself with napi_module_register or node_module_register from a constructor): the node
        # program that loads it (process.dlopen, lazy binding) provides Node-API, libuv and V8; not node itself
        self.node_addon = plugin and any(main_elf.dynstr_has(m) for m in NODE_ADDON_MARKS)
        interp = main_elf.interpreter
        if interp:
            elf, _ = sysroot.open(interp)
            if elf is not None:
                self.rtld = self._object(interp, interp, elf, "interpreter", None, sysroot.host(interp) or interp)

    def _object(
        self, name: str, needed_as: str, elf: ELFFile, found_by: str, loader: LoadedObject | None, host_path: str
    ) -> LoadedObject:
        return LoadedObject(  # ($ORIGIN of an object opened by a relative path: glibc prefixes the working directory)
            name, needed_as, elf, found_by, loader, host_path, dynamic_info(elf),
            posixpath.dirname(self.at_cwd(name) if loader is not None else name),
        )

    # ---------------------------------------------------------------- search

    def expand(self, entry: str, o: LoadedObject) -> str | None:
        """A path-list entry with $ORIGIN, $LIB and $PLATFORM expanded; None when another token is left."""
        for token, value in (("ORIGIN", o.origin), ("LIB", self.lib), ("PLATFORM", self.platform)):
            entry = entry.replace("${" + token + "}", value).replace("$" + token, value)
        return entry if "$" not in entry else None

    def dirs(self, entries: tuple[str, ...] | list[str], o: LoadedObject) -> list[str]:
        out = []
        for e in entries:
            expanded = self.expand(e, o) if e else "."
            if expanded is not None:
                out.append(expanded)
        return out

    def compatible(self, elf: ELFFile) -> bool:
        main = self.main_elf
        same = (elf.bits, elf.byte_order, elf.e_machine) == (main.bits, main.byte_order, main.e_machine)
        if same and elf.e_machine in (EM_ARM, EM_RISCV) and self.flavour.checks_float_abi \
                and not _same_float_abi(elf, main):
            return False
        return same and elf.ei_osabi in (0, 3) and elf.e_type == ET_DYN

    def at_cwd(self, path: str) -> str:
        """Where a path the loader opens lies: a relative one from the working directory."""
        return path if path.startswith("/") else posixpath.join(self.cwd, path)

    def try_path(self, path: str, log: list[str]) -> tuple[str, ELFFile] | None:
        """The library at `path` (named so, opened from the working directory when relative) if it is one the
        program can use; a file that is there but no ELF object is remembered, because ld.so stops at it."""
        log.append(path)
        elf, why = self.sysroot.open(self.at_cwd(path), 64 if self.main_elf.bits == 64 else 52)
        if elf is not None and self.compatible(elf):
            return path, elf
        if elf is None and why != "No such file or directory" and self.bad_file is None:
            self.bad_file = (path, why or "invalid ELF header")
        return None

    def search_dirs(self, name: str, dirs: list[str], how: str, log: list[str]) -> Hit | None:
        for d in dirs:
            for sub in self.flavour.subdirs(self, d):
                hit = self.try_path(sub.rstrip("/") + "/" + name, log)
                if hit:
                    return hit[0], hit[1], how
                if self.stopped_at_file():
                    return None
        return None

    def stopped_at_file(self) -> bool:
        """Whether the search ends at the file it could not load (musl's: the first file it opens is the one)."""
        return self.flavour.takes_first_file and self.bad_file is not None

    def _rpath_chain(self, name: str, req: LoadedObject, log: list[str]) -> Hit | None:
        """DT_RPATH of the requester and of each object that loaded it (none with a RUNPATH), then the program's."""
        if req.runpath:
            return None
        chain: LoadedObject | None = req
        while chain is not None:
            if chain.rpath and not chain.runpath:
                found = self.search_dirs(name, self.dirs(chain.rpath, chain), f"RPATH of {chain.name}", log)
                if found:
                    return found
            chain = chain.loader
        main = self.main
        if main is not req and main.rpath and not main.runpath and req.loader is None:
            return self.search_dirs(name, self.dirs(main.rpath, main), "RPATH of the program", log)
        return None

    def needed_path(self, name: str, req: LoadedObject) -> str | None:
        """A needed name that is a path, as the loader opens it: glibc expands its dynamic string tokens for the
        object that needs it (python-build-standalone's pythons need $ORIGIN/../lib/libpython3.X.so.1.0), and
        names the expanded path when it is not there; None for a token it does not know (nothing opened)."""
        return self.expand(name, req) if "$" in name and self.flavour.expands_needed else name

    def find(self, name: str, req: LoadedObject) -> Hit | None:
        """Where the loader finds `name` needed by `req`, and which rule found it; None when nowhere."""
        log = self.tried.setdefault(f"{req.name}:{name}", [])
        if "/" in name:
            path = self.needed_path(name, req)
            hit = self.try_path(path, log) if path is not None else None
            return (hit[0], hit[1], "path") if hit else None
        return self.flavour.search(self, name, req, log)

    def glibc_search(self, name: str, req: LoadedObject, log: list[str]) -> Hit | None:
        """glibc's order (dl-load.c's _dl_map_object): the RPATH chain (no RUNPATH on the requester), then
        LD_LIBRARY_PATH, then the requester's own RUNPATH, then the cache and default directories."""
        found = self._rpath_chain(name, req, log)
        if found is None and self.opts.ld_library_path:
            found = self.search_dirs(name, self.dirs(self.opts.ld_library_path, self.main), "LD_LIBRARY_PATH", log)
        if found is None and req.runpath:
            found = self.search_dirs(name, self.dirs(req.runpath, req), f"RUNPATH of {req.name}", log)
        return found or self.flavour.default_search(self, name, req, log)

    # ---------------------------------------------------------------- the link map

    def load(self) -> None:
        """Map every dependency breadth-first. The loader stops at the first library it cannot load (that error
        is recorded); the map goes on past it, so that every missing library is found, as `ldd` lists them."""
        self._check_stack(self.main)
        queue = [self.main]
        for name, source in self._preloads():  # (glibc's rtld: mapped before the program's DT_NEEDED, and first in
            self._preload(name, source, queue)  # the search order after it; their own needs after the program's)
        while queue and len(self.objects) < MAX_OBJECTS:
            req = queue.pop(0)
            for name in req.needed:
                self._load_one(name, req, queue)

    def _preloads(self) -> list[tuple[str, str]]:
        """The libraries to load before the program's own, and where each is named: LD_PRELOAD (--preload:
        separated by spaces or colons), then, for glibc, the sysroot's /etc/ld.so.preload (white space or colons,
        `#` comments)."""
        out = [(n, "LD_PRELOAD") for item in self.opts.preload  # (a C string: up to a NUL)
               for n in re.split(r"[ :]", item.split("\0", 1)[0]) if n]  # fmt: skip
        if self.flavour.name == "glibc" and (host := self.sysroot.host("/etc/ld.so.preload")):
            try:
                with open(host, "rb") as fh:
                    text = fh.read(1 << 20).split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            except OSError:
                text = ""
            text = re.sub(r"#[^\n]*", " ", text)
            out += [(n, "/etc/ld.so.preload") for n in re.split(r"[ \t\n:]", text) if n]
        return out[:MAX_OBJECTS]  # (each is searched for: a file of thousands of names costs no more than a map)

    def _preload(self, name: str, source: str, queue: list[LoadedObject]) -> None:
        """Map a preloaded library as a need of the program; one that cannot be loaded is glibc's warning, and
        the program goes on without it (musl's loader says nothing)."""
        if self._loaded(name):
            return
        self.bad_file = None
        found = self.find(name, self.main)
        if found is None:  # (a plugin's host printed it when it started, not at the plugin's dlopen)
            if self.flavour.name == "glibc" and not self.dlopened:
                why = self.bad_file[1] if self.bad_file else "cannot open shared object file"
                self.warnings.append(f"ERROR: ld.so: object '{name}' from {source} cannot be preloaded ({why}): "
                                     "ignored.")
            return
        path, elf, how = found
        host_path = self.sysroot.host(self.at_cwd(path)) or path
        if any(o.host_path == host_path for o in self.objects):
            return
        o = self._object(path, name, elf, f"{source} ({how})", self.main, host_path)
        self.objects.append(o)
        queue.append(o)

    def _enter_rtld(self, name: str, req: LoadedObject) -> None:
        assert self.rtld is not None
        self.rtld.needed_as, self.rtld.loader = name, req
        self.objects.append(self.rtld)

    def _load_one(self, name: str, req: LoadedObject, queue: list[LoadedObject]) -> bool:
        """Load `name` for `req`; False when the loader would stop here."""
        if self._loaded(name):
            return True
        if self.flavour.answers_for(name):  # the loader's own libc answers for this name
            if self.rtld is not None and self.rtld not in self.objects:
                self._enter_rtld(name, req)
            return True
        if self.rtld is not None and name in (self.rtld.soname, self.rtld.name):
            self._enter_rtld(name, req)
            return True
        self.bad_file = None
        found = self.find(name, req)
        if found is None:
            tried = list(self.tried.get(f"{req.name}:{name}", []))
            again = any(m["name"] == name for m in self.missing)
            if not again:
                self.missing.append({"name": name, "needed_by": req.name, "tried": tried,
                                     "other_cpus": self.flavour.other_cpus(self, name, tried)})
            # (musl's loader goes on and says so for every object that needs it; glibc's stops at the first)
            if not self.every_failure and (self.errors or again):
                return False
            dlopened = self.dlopened  # (dlerror's text: ImportError's, node's)
            if self.bad_file is not None:
                bad, why = self.bad_file
                self.errors.append(self.flavour.unloadable_library(self.program, name, bad, why, req.name, dlopened))
            else:
                shown = (self.needed_path(name, req) if "/" in name else name) or name  # (as the loader names it)
                self.errors.append(self.flavour.dlopen_missing(shown, req.name) if dlopened else
                                   self.flavour.missing_library(self.program, shown, req.name))
            return False
        path, elf, how = found
        host_path = self.sysroot.host(self.at_cwd(path)) or path
        if any(o.host_path == host_path for o in self.objects):  # the same file by another name
            return True
        o = self._object(path, name, elf, how, req, host_path)
        self.objects.append(o)
        queue.append(o)
        self._check_stack(o)
        self._check_p_align(o, name)
        return True

    def _check_p_align(self, o: LoadedObject, name: str) -> None:
        """A library whose PT_LOAD address and offset are not congruent modulo its p_align: glibc before 2.35
        refuses it as it maps it, in its own words."""
        if self.errors or not self.flavour.refuses_p_align(self) or p_align_kept(o.elf, "shared-library") is not False:
            return
        why = "ELF load command address/offset not properly aligned"
        dlopened = self.dlopened
        self.errors.append(f"{name}: {why}" if dlopened else
                           f"{self.program}: error while loading shared libraries: {name}: {why}")

    def _check_stack(self, o: LoadedObject) -> None:
        """A module dlopened by its host (a Python extension, a Node.js addon) that, or one of whose libraries,
        needs an executable stack: glibc 2.41's dlopen refuses it as it maps that object."""
        if self.errors or not self.dlopened or not wants_exec_stack(o.elf):
            return
        if self._refuses is None:
            self._refuses = self.flavour.refuses_exec_stack(self)
        if self._refuses:
            self.errors.append(self.flavour.dlopen_exec_stack(o.name))

    def _loaded(self, name: str) -> bool:
        return any(o.needed_as == name or o.soname == name or o.name == name for o in self.objects[1:])

    def by_soname(self, name: str) -> LoadedObject | None:
        return next((o for o in self.objects[1:] if o.soname == name or o.needed_as == name), None)

    def check_versions(self) -> None:
        """Version needs of every object, in load order (glibc's dl-version.c): all of them are recorded. At
        start-up the loader says every one it cannot meet, each object's in turn, and then stops (rtld's
        version_check_doit: _dl_check_all_versions, verbose, under _dl_receive_error, then _exit(1)); with them,
        in the same order, what it warns of and goes on: a library without version definitions (`no version
        information available`, once per version needed) and a weak version need unmet (`weak version ... not
        found`). From the first unmet need on, what it says is in `errors`, what came before in `warnings`.
        dlopen checks quietly and fails at the first (a Python extension, a Node.js addon). Nothing is said when
        loading stopped before (a library not found)."""
        if not self.flavour.checks_versions:
            return
        dlopened = self.dlopened
        said = not self.errors  # (whether the loader gets this far)
        stopped = False

        def say(line: str, stops: bool) -> None:
            nonlocal stopped
            if not said or (dlopened and (self.errors or not stops)):
                return
            stopped = stopped or stops
            (self.errors if stopped else self.warnings).append(line)

        for o in self.objects:
            for need in o.elf.version_needs:
                lib = self.by_soname(need.file)
                if lib is None:
                    continue
                if not lib.elf.version_defs:  # (glibc's match_symbol: nothing to check against: it warns, at
                    # start-up, and goes on; a reference binds to the library's unversioned definitions)
                    self.unversioned.append({"object": o.name, "library": lib.name})
                    for _ in need.aux:  # (once per version needed)
                        say(f"{self.program}: {lib.name}: no version information available (required by {o.name})",
                            False)  # fmt: skip
                    continue
                defined = {d.names[0] for d in lib.elf.version_defs if d.names}
                for vname, _, vflags in need.aux:
                    if vname in defined:
                        continue
                    if vflags & VER_FLG_WEAK:
                        say(f"{self.program}: {lib.name}: weak version `{vname}' not found (required by {o.name})",
                            False)  # fmt: skip
                        continue
                    self.version_problems.append({"object": o.name, "library": lib.name, "version": vname})
                    say(f"{self.program}: {lib.name}: version `{vname}' not found (required by {o.name})", True)
            if self._relr_unannounced(o):  # (a fatal error: the loader says nothing more; the rest is recorded)
                why = "DT_RELR without GLIBC_ABI_DT_RELR dependency"
                if said and not (dlopened and self.errors):
                    self.errors.append(f"{o.name}: {why}" if dlopened else
                                       f"{self.program}: error while loading shared libraries: {o.name}: {why}")
                said = False

    def _relr_unannounced(self, o: LoadedObject) -> bool:
        """glibc 2.36 on, at the end of an object's version checks: one that needs versions, needs libc.so.* and
        has DT_RELR relocations but no need of GLIBC_ABI_DT_RELR (the version that says the loader must apply
        them) is refused (dl-version.c; linkers add the need with -z pack-relative-relocs)."""
        from analyzer.facts.loader.glibc import RELR_CHECKED_FROM, host_loader_release

        tags = {tag for tag, _ in o.elf.dynamic}
        if DT_RELR not in tags or DT_VERNEED not in tags or not any(n.startswith("libc.so.") for n in o.needed):
            return False
        if any(vname == "GLIBC_ABI_DT_RELR" for need in o.elf.version_needs for vname, _, _ in need.aux):
            return False
        release = host_loader_release(self)  # (a module's: the loader of the program that dlopens it)
        return release is not None and release >= RELR_CHECKED_FROM

    # ---------------------------------------------------------------- symbol binding

    def _memo(self, what: str, o: LoadedObject, compute: Callable[[LoadedObject], Any]) -> Any:
        key = (what, o.host_path)
        if key not in self.sysroot.memo:
            self.sysroot.memo[key] = compute(o)
        return self.sysroot.memo[key]

    def bind(self) -> list[dict[str, Any]]:
        """Every undefined reference: where it binds, or why it cannot; errors for start-up failures."""
        seen = {o.host_path for o in self.host_scope}
        objects = [*self.host_scope, *(o for o in self.objects if o.host_path not in seen)]
        scope = [(o, self._memo("defs", o, definitions)) for o in objects]
        out: list[dict[str, Any]] = []
        failing: dict[int, dict[int, str]] = {}
        for o in self.objects:
            rows, fails = self._bind_object(o, scope)
            out.extend(rows)
            if fails:
                failing[id(o)] = fails
        if failing and (self.every_failure or not self.errors):
            self._lookup_errors(failing)
        return out

    @property
    def dlopened(self) -> bool:
        """Whether the object analysed is a plugin its host dlopens (a Python extension module, a Node.js addon):
        dlerror's words, dlopen's checks, no start-up of its own."""
        return self.python_module is not None or self.node_addon

    @property
    def every_failure(self) -> bool:
        """Whether the loader prints every failure before it stops (musl's, starting a program; not its dlopen)."""
        return self.flavour.reports_every_failure and not self.dlopened

    def binds_now(self, o: LoadedObject) -> bool:
        """Whether the object's PLT is bound at start-up: BIND_NOW, LD_BIND_NOW, a loader that always does
        (musl), or a Python extension (imported with RTLD_NOW)."""
        return o.dyn.now or self.opts.bind_now or self.flavour.binds_at_start or self.python_module is not None

    def _lookup_errors(self, failing: dict[int, dict[int, str]]) -> None:
        """The messages of the symbol lookups that fail at start-up, in the order the loader meets them: object by
        object in its relocation order, relocation by relocation in its tables' order (MIPS: the global GOT
        first); glibc's stops at the first, musl's prints one for every relocation it cannot do."""
        for o in self.flavour.relocation_order(self):
            fails = failing.get(id(o))
            if not fails:
                continue
            met = [*sorted(i for i in self._memo("mips-got", o, mips_got_at_start) if i in fails),
                   *(r[2] for r in self.flavour.lookups(o.elf.relocation_tables(), self.binds_now(o)) if r[2] in fails)]
            met += sorted(set(fails) - set(met))  # (a table not read whole: what it did not say, in symbol order)
            for index in met:
                self.errors.append(fails[index])
                if not self.every_failure:
                    return

    def direct_dependencies(self) -> dict[int, list[LoadedObject]]:
        """id(object) -> the loaded objects its DT_NEEDED names, in its order, each once (glibc's l_initfini of
        each object), for every object of the map."""
        by_name: dict[str, LoadedObject] = {}
        for x in self.objects[1:]:  # (the first object a name finds, as _loaded finds it)
            for name in (x.needed_as, x.soname, x.name):
                if name:
                    by_name.setdefault(name, x)
        out: dict[int, list[LoadedObject]] = {}
        for o in self.objects:
            deps = out[id(o)] = []
            for name in o.needed:
                dep = by_name.get(name)
                if dep is not None and dep is not o and all(d is not dep for d in deps):
                    deps.append(dep)
        return out

    def _bind_object(
        self, o: LoadedObject, scope: list[tuple[LoadedObject, Definitions]]
    ) -> tuple[list[dict[str, Any]], dict[int, str]]:
        # version index -> the version name the reference needs
        wanted = {other & 0x7FFF: vname for need in o.elf.version_needs for vname, other, _ in need.aux}
        # the versions whose library has no symbol versions at all (no .gnu.version): glibc's check_match asserts
        # that this never happens, before 2.41 (in every release binlens measured: 2.31, 2.36)
        bare = {other & 0x7FFF: lib.name for need in o.elf.version_needs for _, other, _ in need.aux
                if (lib := self.by_soname(need.file)) is not None and not lib.elf.versym and not lib.elf.version_defs
                and self.flavour.asserts_versioned_lookup(self)}  # fmt: skip
        versym = o.elf.versym
        at_start, plt, whole, _ = self._memo("relocated", o, relocated_symbols)
        # a symbol no relocation refers to is never looked up (GCC 13's <iostream> makes one,
        # std::ios_base_library_init, only to require GLIBCXX_3.4.32); unless a table was not read whole, or on
        # MIPS, whose loader binds the global GOT entries (DT_MIPS_GOTSYM on) without relocations
        told = whole and o.elf.e_machine != EM_MIPS
        got = self._memo("mips-got", o, mips_got_at_start)
        now = self.binds_now(o)
        out = []
        fails: dict[int, str] = {}  # symbol index -> the loader's message when its lookup stops it
        for index, name, info in self._memo("undef", o, lambda x: x.elf.undefined_symbols()):
            weak = info >> 4 == 2
            vindex = versym[index] & 0x7FFF if index < len(versym) else 0
            version = wanted.get(vindex)
            target = lookup(name, version, o, scope)
            binds_to = target.name if target else self._left_to_host(name, version)
            asserts = vindex in bare and target is not None and target.name == bare[vindex]
            if asserts:
                binds_to = None  # (the loader stops at the assertion, weak reference or not: it never binds)
            when = "never" if told and index not in at_start and index not in plt else \
                "start-up" if now or index in at_start or index in got else "first call"
            out.append({"object": o.name, "symbol": name, "version": version, "binds_to": binds_to, "weak": weak,
                        "when": when})
            if binds_to is None and (not weak or asserts) and when == "start-up":
                if asserts:
                    fails[index] = self.flavour.versioned_lookup_assertion(self)
                elif self.dlopened:  # imported or required: dlopen's error, as
                    # Python's ImportError and node's ERR_DLOPEN_FAILED show it
                    fails[index] = self.flavour.dlopen_undefined(o.name, name, version)
                else:
                    fails[index] = self.flavour.undefined_symbol(self.program, o.name, name, version)
        return out, fails

    def check_copies(self) -> None:
        """The program's copy relocations (data of a library the program holds a copy of, sized at link time):
        glibc warns, as it copies, where the definition the loader binds is larger than the program's copy (its
        dl-machine.h: only the program's size is copied; the library's code then uses the truncated copy)."""
        if not self.flavour.warns_copy_size or self.errors:
            return
        o = self.main
        copies = self._memo("relocated", o, relocated_symbols)[3]
        if not copies:
            return
        wanted = {other & 0x7FFF: vname for need in o.elf.version_needs for vname, other, _ in need.aux}
        symbols = {s.index: s for s in o.elf.dynamic_symbols()}
        versym = o.elf.versym
        scope = [(lib, definitions(lib)) for lib in self.objects[1:]]  # (the executable is not searched)
        for index in copies:
            ref = symbols.get(index)
            if ref is None:
                continue
            version = wanted.get(versym[index] & 0x7FFF) if index < len(versym) else None
            target = lookup(ref.name, version, o, scope)
            size = _defined_size(target, ref.name, version) if target is not None else None
            if size is not None and size > ref.st_size:
                self.copy_sizes.append({"symbol": ref.name, "library": target.name,  # type: ignore[union-attr]
                                        "program_size": int(ref.st_size), "library_size": size})
                self.warnings.append(f"{self.program}: Symbol `{ref.name}' has different size in shared object, "
                                     "consider re-linking")

    def check_early_init(self) -> None:
        """After relocation, before any constructor: the C library's early initialisation (glibc 2.32 on)."""
        if not self.errors and (failure := self.flavour.early_init_failure(self)):
            self.errors.append(failure)

    def _left_to_host(self, name: str, version: str | None) -> str | None:
        """PYTHON_HOST for the Python C API of an extension module bound without a --host, and for what the
        interpreter's libm defines (PYTHON_HOST_LIBRARIES); NODE_HOST for what a Node.js addon takes from node
        (Node-API, libuv, V8); else None."""
        if self.host_scope:
            return None
        if self.python_module is not None and (name.startswith(("Py", "_Py")) or any(
                lookup(name, version, self.main, [(o, definitions(o))]) for o in self._python_host_libraries())):
            return PYTHON_HOST
        if self.node_addon and name.startswith(NODE_API):
            return NODE_HOST
        return None

    def _python_host_libraries(self) -> list[LoadedObject]:
        """PYTHON_HOST_LIBRARIES as the interpreter's loader finds them in this root (the default search: ld.so.cache
        and the default directories), those it has; looked up once per link map."""
        if self._host_libraries is None:
            self._host_libraries = []
            bad = self.bad_file  # (a search of the interpreter's, not of this program's: nothing of it is recorded)
            for lib in PYTHON_HOST_LIBRARIES:
                hit = self.flavour.default_search(self, lib, self.main, [])
                if hit is not None:
                    path, elf, how = hit
                    host = self.sysroot.host(path) or path
                    self._host_libraries.append(self._object(path, lib, elf, how, None, host))
            self.bad_file = bad
        return self._host_libraries


Definitions = dict[str, list[tuple[str | None, bool]]]  # symbol -> [(version name or None, hidden)]


def lookup(
    name: str, version: str | None, requester: LoadedObject, scope: list[tuple[LoadedObject, Definitions]]
) -> LoadedObject | None:
    """The first object in the global scope, other than the requester, that defines `name` at `version`
    (an unversioned reference takes any non-hidden definition; an unversioned definition serves any version)."""
    for lib, table in scope:
        if lib is requester:
            continue
        if any(_serves(defined, hidden, version) for defined, hidden in table.get(name, [])):
            return lib
    return None


def _serves(defined: str | None, hidden: bool, version: str | None) -> bool:
    """Whether a definition (at version `defined`, `hidden` from unversioned references) serves a reference."""
    return (not hidden) if version is None else defined in (version, None)


def _definition(o: LoadedObject, s: Any, names: dict[int, str]) -> tuple[str | None, bool] | None:
    """(version name or None, hidden) of a dynamic symbol the object defines for others, else None (undefined,
    local, of hidden or internal visibility)."""
    if s.st_shndx == 0 or s.binding == 0 or (s.st_other & 3) in (1, 2):
        return None
    versym = o.elf.versym
    v = versym[s.index] if s.index < len(versym) else 1
    # "hidden" for an unversioned reference: glibc's check_match takes a definition at the first version node
    # (index 2) or none (index 1) even when it is not the default one (old programs bind to the oldest version),
    # and a later node's only when it is the default
    return (names.get(v & 0x7FFF) if (v & 0x7FFF) > 1 else None), bool(v & 0x8000) and (v & 0x7FFF) >= 3


def _version_names(o: LoadedObject) -> dict[int, str]:
    return {d.index: d.names[0] for d in o.elf.version_defs if d.names}


def definitions(o: LoadedObject) -> Definitions:
    """symbol -> [(version name or None, hidden: not for an unversioned reference)] of the object's defined,
    visible dynamic symbols (made once per file read: a run's programs share their libraries' ELFFile objects,
    through the sysroot; not to be changed)."""
    made: Definitions | None = o.elf.__dict__.get("_binlens_definitions")
    if made is not None:
        return made
    defs: Definitions = {}
    names = _version_names(o)
    for s in o.elf.dynamic_symbols():
        if (found := _definition(o, s, names)) is not None:
            defs.setdefault(s.name, []).append(found)
    o.elf.__dict__["_binlens_definitions"] = defs
    return defs


# each machine's copy relocation (R_*_COPY), by e_machine: x86-64, i386, AArch64, ARM, POWER (64 and 32), s390,
# RISC-V, MIPS, LoongArch
COPY_RELOCATIONS = {62: 5, 3: 5, 183: 1024, 40: 20, 21: 19, 20: 19, 22: 9, 243: 4, 8: 126, 258: 4}


def _defined_size(lib: LoadedObject, name: str, version: str | None) -> int | None:
    """st_size of the library's definition of `name` that a reference at `version` binds to, as lookup picks."""
    names = _version_names(lib)
    for s in lib.elf.dynamic_symbols():
        if s.name == name and (found := _definition(lib, s, names)) is not None and _serves(*found, version):
            return int(s.st_size)
    return None


def relocated_symbols(o: LoadedObject) -> tuple[frozenset[int], frozenset[int], bool, tuple[int, ...]]:
    """The dynamic symbol indices the relocations refer to: those processed at start-up (DT_RELA, DT_REL), those
    of the PLT (DT_JMPREL: at start-up only with BIND_NOW), whether every table was read whole, and the symbols of
    the copy relocations (R_*_COPY), in table order."""
    start, plt, whole = o.elf.dynamic_relocations()
    copy = COPY_RELOCATIONS.get(o.elf.e_machine)
    copies = tuple(r[2] for r in start if r[1] == copy and r[2])
    return frozenset(r[2] for r in start), frozenset(r[2] for r in plt), whole, copies


def mips_got_at_start(o: LoadedObject) -> frozenset[int]:
    """MIPS: the undefined symbols of the global GOT (DT_MIPS_GOTSYM on) that glibc's loader binds at start-up,
    without a relocation: all but a function with a lazy-binding stub (st_value set, not a PLT one), which waits
    for its first call unless the object is bound now (elf_machine_got_rel). Empty elsewhere."""
    elf = o.elf
    gotsym = dict(elf.dynamic).get(DT_MIPS_GOTSYM) if elf.e_machine == EM_MIPS else None
    if gotsym is None:
        return frozenset()
    return frozenset(s.index for s in elf.dynamic_symbols() if s.index >= gotsym and s.st_shndx == 0
                     and not (s.type == 2 and s.st_value and not s.st_other & STO_MIPS_PLT))


def _program_origin(main_path: str, opts: Options, sysroot: Sysroot) -> tuple[str, Sysroot]:
    """The program's $ORIGIN as the loader will see it, and the sysroot it sees it in. The kernel hands ld.so the
    program's real path: inside the sysroot that is where it is; with --install-dir, where it will be installed;
    outside, where it is on this machine. In the last two cases its own directory is overlaid there, so the
    libraries it bundles ($ORIGIN/../lib) are found beside it."""
    from analyzer.load import _member

    where = os.path.dirname(os.path.realpath(_member(main_path)))  # a container's member: where it was unpacked
    if opts.install_dir:
        at = "/" + opts.install_dir.strip("/")
        return at, sysroot.overlay(at, where)
    if sysroot.root == "/" or (where + "/").startswith(sysroot.root + "/"):
        return ("/" + os.path.relpath(where, sysroot.root)) if sysroot.root != "/" else where, sysroot
    return where, sysroot.overlay(where, where)


def program_flavour(main_elf: ELFFile) -> Flavour:
    """musl's loader for a program whose interpreter is ld-musl-*, else glibc's."""
    from analyzer.facts.loader import glibc, musl

    if posixpath.basename(main_elf.interpreter or "").startswith("ld-musl-"):
        return musl.Musl(main_elf)
    return glibc.Glibc()
