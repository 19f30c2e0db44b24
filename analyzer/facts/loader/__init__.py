"""Will it load: resolve dependencies in a sysroot as glibc's ld.so does, and predict its errors.

Nothing is executed. The model follows glibc's dl-load.c / dl-deps.c /
dl-version.c / dl-lookup.c:

- objects are loaded breadth-first from the main program's DT_NEEDED;
- a name with a '/' is a path; otherwise, in order: the DT_RPATH of the
  requesting object and of each object that loaded it up to the main program
  (each only if that object has no DT_RUNPATH), then the main program's
  DT_RPATH; LD_LIBRARY_PATH; the requesting object's own DT_RUNPATH;
  /etc/ld.so.cache; the default directories (the last two skipped with
  DF_1_NODEFLIB); `$ORIGIN`, `$LIB` and `$PLATFORM` are expanded; each
  directory's glibc-hwcaps subdirectories (up to the ISA level asked for) come
  before it;
- a candidate of another class, byte order or machine is skipped, as ld.so
  skips it;
- a name already loaded (by its path or its SONAME) is not loaded again;
- then every object's version needs are checked against the version
  definitions of the object with that SONAME, in load order;
- then symbols are bound: every undefined, non-weak dynamic symbol is looked up
  in the global scope (the main program, then the load order) for a
  definition whose version matches; references from relocations processed at
  start-up fail at start-up, PLT references only when called (unless
  BIND_NOW).

Paths are resolved inside the sysroot: symbolic links are followed within it,
never out of it.
"""

from __future__ import annotations

import os
import posixpath
import re
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from analyzer import load
from analyzer.errors import AnalyzerError
from analyzer.load import Artifact
from analyzer.load.elf import ELFFile

if TYPE_CHECKING:
    from analyzer.facts import Context

DT_NEEDED, DT_RPATH, DT_RUNPATH, DT_SONAME, DT_FLAGS, DT_FLAGS_1 = 1, 15, 29, 14, 30, 0x6FFFFFFB
DT_RELA, DT_RELASZ, DT_REL, DT_RELSZ, DT_JMPREL, DT_PLTRELSZ, DT_PLTREL = 7, 8, 17, 18, 23, 2, 20
DF_1_NODEFLIB, DF_1_NOW, DF_BIND_NOW = 0x800, 0x1, 0x8
VER_FLG_WEAK = 0x2
MAX_OBJECTS = 4096  # a dependency graph larger than this is treated as hostile
MAX_LINKS = 40  # symbolic links followed before "too many levels" (ELOOP), as the kernel does

# e_machine -> (the multiarch triplet of Debian's default directories, $PLATFORM, $LIB)
MULTIARCH = {
    62: ("x86_64-linux-gnu", "x86_64", "lib64"),
    3: ("i386-linux-gnu", "i686", "lib"),
    183: ("aarch64-linux-gnu", "aarch64", "lib64"),
    40: ("arm-linux-gnueabihf", "v7l", "lib"),
    243: ("riscv64-linux-gnu", "riscv64", "lib64"),
    21: ("powerpc64le-linux-gnu", "power8", "lib64"),
    22: ("s390x-linux-gnu", "z196", "lib64"),
    8: ("mips64el-linux-gnuabi64", "mips64", "lib64"),
    258: ("loongarch64-linux-gnu", "loongarch64", "lib64"),
}
HWCAPS = {62: ("x86-64-v4", "x86-64-v3", "x86-64-v2"), 21: ("power10", "power9"), 22: ("z16", "z15", "z14", "z13")}
ISA_ORDER = ("x86-64-baseline", "x86-64-v2", "x86-64-v3", "x86-64-v4")
# names musl's loader resolves to itself (dynlink.c: libc, libpthread, librt, libm, libdl, libutil, libxnet)
MUSL_RESERVED = re.compile(r"^lib(c|pthread|rt|m|dl|util|xnet)\.so(\..*)?$")


@dataclass
class Obj:
    """One object in the link map."""

    name: str  # as the loader names it: the path it was opened by
    needed_as: str
    elf: ELFFile
    found_by: str
    loader: Obj | None
    real: str  # the host path of the file read
    needed: list[str] = field(default_factory=list)
    rpath: list[str] = field(default_factory=list)
    runpath: list[str] = field(default_factory=list)
    soname: str | None = None
    flags: int = 0
    flags_1: int = 0
    origin: str = ""  # $ORIGIN: the directory the object was opened from, in the sysroot's namespace


@dataclass
class Options:
    sysroot: str = "/"
    ld_library_path: list[str] = field(default_factory=list)
    isa_level: str = "x86-64-baseline"
    program: str | None = None  # the name the program is run by (argv[0]) in messages


def _ident(elf: ELFFile) -> tuple[int, str, int]:
    return elf.bits, elf.e, elf.e_machine


def _dyn_strings(elf: ELFFile, tag: int) -> list[str]:
    return [elf.dynstr(v) for t, v in elf.dynamic if t == tag]


def parse_ld_so_cache(data: bytes) -> list[tuple[int, str, str, int]]:
    """(flags, name, path, hwcap) entries of a glibc ld.so.cache ("glibc-ld.so.cache1.1" format,
    alone or after the old "ld.so-1.7.0" one)."""
    magic = b"glibc-ld.so.cache1.1"
    at = data.find(magic)
    if at < 0 or at + 48 > len(data):
        raise ValueError("not a glibc ld.so.cache")
    nlibs = struct.unpack_from("<I", data, at + 20)[0]
    if at + 48 + 24 * nlibs > len(data):
        raise ValueError("truncated ld.so.cache")

    def string(off: int) -> str:  # string offsets count from the new-format header
        start = at + off
        end = data.find(b"\0", start)
        return data[start:end].decode("utf-8", "surrogateescape") if 0 <= start < len(data) and end > 0 else ""

    out = []
    for i in range(nlibs):
        flags, key, value, _, hwcap = struct.unpack_from("<iIIIQ", data, at + 48 + 24 * i)
        out.append((flags, string(key), string(value), hwcap))
    return out


class Sysroot:
    """Files inside a sysroot, read once each; paths are the loader's (absolute inside the sysroot)."""

    def __init__(self, root: str) -> None:
        if not os.path.isdir(root):
            raise AnalyzerError("sysroot does not exist or is not a directory", root)
        self.root = os.path.realpath(root)
        self.elves: dict[str, tuple[ELFFile | None, str]] = {}
        self._cache: list[tuple[int, str, str, int]] | None = None
        # per file, whatever the program: what it defines, imports, and relocates at start-up
        self.memo: dict[tuple[str, str], Any] = {}

    def host(self, path: str) -> str | None:
        """The host path of `path` inside the sysroot, links resolved inside it; None when missing."""
        parts = [p for p in path.split("/") if p]
        resolved: list[str] = []
        links = 0
        while parts:
            part = parts.pop(0)
            if part == ".":
                continue
            if part == "..":
                if resolved:
                    resolved.pop()
                continue
            candidate = os.path.join(self.root, *resolved, part)
            if os.path.islink(candidate):
                links += 1
                if links > MAX_LINKS:
                    return None  # ELOOP
                target = os.readlink(candidate)
                if target.startswith("/"):
                    resolved = []
                parts = [p for p in target.split("/") if p] + parts
                continue
            if not os.path.exists(candidate):
                return None
            resolved.append(part)
        return os.path.join(self.root, *resolved)

    def open(self, path: str, header_size: int = 64) -> tuple[ELFFile | None, str | None]:
        """(the ELF at `path`, or None with the reason ld.so gives: it reads a whole ELF header first,
        so a shorter file is "file too short" whatever it holds)."""
        real = self.host(path)
        if real is None or not os.path.isfile(real):
            return None, "No such file or directory"
        if os.path.getsize(real) < header_size:
            return None, "file too short"
        if real in self.elves:
            elf, why = self.elves[real]
            return elf, why
        try:
            (art,) = load.open_artifacts(real)[:1]
            if art.format != "ELF":
                result: tuple[ELFFile | None, str] = (None, "invalid ELF header")
            else:
                result = (art.binary, "")
        except AnalyzerError as e:
            result = (None, "file too short" if "truncated" in e.problem else "invalid ELF header")
        self.elves[real] = result
        return result

    def conf_dirs(self) -> list[str]:
        """The directories of /etc/ld.so.conf and the files it includes (globs), in order."""
        import glob as globmod

        out: list[str] = []
        seen: set[str] = set()

        def read(path: str, depth: int) -> None:
            real = self.host(path)
            if real is None or depth > 8 or real in seen:
                return
            seen.add(real)
            try:
                with open(real, encoding="utf-8", errors="replace") as f:
                    lines = f.read().splitlines()
            except OSError:
                return
            for line in lines:
                line = line.split("#", 1)[0].strip()
                if line.startswith("include "):
                    pattern = line.split(None, 1)[1]
                    if not pattern.startswith("/"):
                        pattern = posixpath.join(posixpath.dirname(path), pattern)
                    for inc in sorted(globmod.glob(self.root + pattern)):
                        read("/" + os.path.relpath(inc, self.root), depth + 1)
                elif line:
                    out.extend(d for d in line.replace(",", " ").split() if d.startswith("/"))

        read("/etc/ld.so.conf", 0)
        return out

    def cache(self) -> list[tuple[int, str, str, int]]:
        if self._cache is None:
            real = self.host("/etc/ld.so.cache")
            self._cache = []
            if real:
                try:
                    with open(real, "rb") as f:
                        self._cache = parse_ld_so_cache(f.read())
                except (OSError, ValueError):
                    self._cache = []
        return self._cache


class Model:
    """One program's link map, as ld.so would build it."""

    def __init__(self, main_path: str, main_elf: ELFFile, opts: Options, sysroot: Sysroot) -> None:
        self.opts = opts
        self.sys = sysroot
        self.main_elf = main_elf
        self.program = opts.program or main_path
        self.triplet, self.platform, self.lib = MULTIARCH.get(main_elf.e_machine, ("", "", "lib"))
        if self.triplet and sysroot.host(f"/lib/{self.triplet}"):  # Debian's ld.so: $LIB is the multiarch dir
            self.lib = f"lib/{self.triplet}"
        self.main = self._obj(self.program, self.program, main_elf, "main program", None, main_path)
        # the program's $ORIGIN is where it really is (the kernel hands ld.so its real path)
        where = os.path.dirname(os.path.realpath(main_path))
        if sysroot.root != "/" and (where + "/").startswith(sysroot.root + "/"):
            where = "/" + os.path.relpath(where, sysroot.root)
        self.main.origin = where
        self.objects: list[Obj] = [self.main]
        self.errors: list[str] = []
        self.missing: list[dict[str, Any]] = []
        self.tried: dict[str, list[str]] = {}
        self.bad_file: tuple[str, str] | None = None
        self.rtld: Obj | None = None  # ld.so itself: loaded first, entered in the list when needed
        interp = main_elf.interpreter
        if interp:
            elf, _ = sysroot.open(interp)
            if elf is not None:
                self.rtld = self._obj(interp, interp, elf, "interpreter", None, sysroot.host(interp) or interp)

    def _obj(self, name: str, needed_as: str, elf: ELFFile, found_by: str, loader: Obj | None, real: str) -> Obj:
        o = Obj(name, needed_as, elf, found_by, loader, real, origin=posixpath.dirname(name))
        o.needed = _dyn_strings(elf, DT_NEEDED)
        o.rpath = [p for v in _dyn_strings(elf, DT_RPATH) for p in v.split(":")]
        o.runpath = [p for v in _dyn_strings(elf, DT_RUNPATH) for p in v.split(":")]
        sonames = _dyn_strings(elf, DT_SONAME)
        o.soname = sonames[0] if sonames else None
        o.flags = sum(v for t, v in elf.dynamic if t == DT_FLAGS)
        o.flags_1 = sum(v for t, v in elf.dynamic if t == DT_FLAGS_1)
        return o

    # ---------------------------------------------------------------- search

    def _expand(self, entry: str, o: Obj) -> str | None:
        for token, value in (("ORIGIN", o.origin), ("LIB", self.lib), ("PLATFORM", self.platform)):
            entry = entry.replace("${" + token + "}", value).replace("$" + token, value)
        return entry if "$" not in entry else None

    def _dirs(self, entries: list[str], o: Obj) -> list[str]:
        out = []
        for e in entries:
            expanded = self._expand(e, o) if e else "."
            if expanded is not None:
                out.append(expanded)
        return out

    def _hwcaps(self, d: str) -> list[str]:
        levels = HWCAPS.get(self.main_elf.e_machine, ())
        if self.main_elf.e_machine == 62:
            top = ISA_ORDER.index(self.opts.isa_level) if self.opts.isa_level in ISA_ORDER else 0
            levels = tuple(lv for lv in levels if ISA_ORDER.index(lv) <= top)
        return [posixpath.join(d, "glibc-hwcaps", lv) for lv in levels] + [d]

    def _compatible(self, elf: ELFFile) -> bool:
        return _ident(elf) == _ident(self.main_elf) and elf.ei_osabi in (0, 3) and elf.e_type == 3

    def _try(self, path: str, log: list[str]) -> tuple[str, ELFFile] | None:
        log.append(path)
        elf, why = self.sys.open(path, 64 if self.main_elf.bits == 64 else 52)
        if elf is not None and self._compatible(elf):
            return path, elf
        if elf is None and why != "No such file or directory" and self.bad_file is None:
            self.bad_file = (
                path,
                why or "invalid ELF header",
            )  # ld.so stops at a file that is there but is no ELF object
        return None

    def _search_dirs(self, name: str, dirs: list[str], how: str, log: list[str]) -> tuple[str, ELFFile, str] | None:
        for d in dirs:
            for sub in self._hwcaps(d):
                hit = self._try(sub.rstrip("/") + "/" + name, log)
                if hit:
                    return hit[0], hit[1], how
        return None

    def default_dirs(self) -> list[str]:
        multi = [f"/lib/{self.triplet}", f"/usr/lib/{self.triplet}"] if self.triplet else []
        return [*multi, "/lib", "/usr/lib"]

    @property
    def musl(self) -> bool:
        interp = self.main_elf.interpreter or ""
        return posixpath.basename(interp).startswith("ld-musl-")

    def musl_dirs(self) -> list[str]:
        """musl's path: /etc/ld-musl-ARCH.path (newlines or colons) or its built-in default."""
        arch = posixpath.basename(self.main_elf.interpreter or "")[len("ld-musl-") : -len(".so.1")]
        real = self.sys.host(f"/etc/ld-musl-{arch}.path")
        if real:
            try:
                with open(real, encoding="utf-8", errors="replace") as f:
                    return [d for d in f.read().replace("\n", ":").split(":") if d]
            except OSError:
                pass
        return ["/lib", "/usr/local/lib", "/usr/lib"]

    def find(self, name: str, req: Obj) -> tuple[str, ELFFile, str] | None:
        """Where ld.so finds `name` needed by `req`, and which rule found it; None when nowhere."""
        log = self.tried.setdefault(f"{req.name}:{name}", [])
        if "/" in name:
            hit = self._try(name, log)
            return (hit[0], hit[1], "path") if hit else None
        if not req.runpath:
            chain: Obj | None = req
            while chain is not None:
                if chain.rpath and not chain.runpath:
                    found = self._search_dirs(name, self._dirs(chain.rpath, chain), f"RPATH of {chain.name}", log)
                    if found:
                        return found
                chain = chain.loader
            if self.main is not req and self.main.rpath and not self.main.runpath and req.loader is None:
                found = self._search_dirs(name, self._dirs(self.main.rpath, self.main), "RPATH of the program", log)
                if found:
                    return found
        if self.opts.ld_library_path:
            found = self._search_dirs(name, self._dirs(self.opts.ld_library_path, self.main), "LD_LIBRARY_PATH", log)
            if found:
                return found
        if req.runpath:
            found = self._search_dirs(name, self._dirs(req.runpath, req), f"RUNPATH of {req.name}", log)
            if found:
                return found
        if self.musl:  # musl: no cache, no hwcaps, its own path list
            for d in self.musl_dirs():
                hit = self._try(d.rstrip("/") + "/" + name, log)
                if hit:
                    return hit[0], hit[1], "musl path"
            return None
        if req.flags_1 & DF_1_NODEFLIB:
            return None
        if not self.sys.cache():  # no cache: the directories ld.so.conf lists
            found = self._search_dirs(name, self.sys.conf_dirs(), "ld.so.conf directory", log)
            if found:
                return found
        for flags, key, value, _ in self.sys.cache():
            if key == name and flags & 0x3 == 0x3:
                if "/glibc-hwcaps/" in value and not self._hwcap_ok(value):
                    continue
                hit = self._try(value, log)
                if hit:
                    return hit[0], hit[1], "ld.so.cache"
        return self._search_dirs(name, self.default_dirs(), "default directory", log)

    def _hwcap_ok(self, path: str) -> bool:
        level = path.split("/glibc-hwcaps/", 1)[1].split("/", 1)[0]
        return level not in ISA_ORDER or ISA_ORDER.index(level) <= ISA_ORDER.index(self.opts.isa_level)

    # ---------------------------------------------------------------- the link map

    def load(self) -> None:
        """Map every dependency breadth-first, recording the first error ld.so would stop at."""
        queue = [self.main]
        while queue and len(self.objects) < MAX_OBJECTS:
            req = queue.pop(0)
            for name in req.needed:
                if self._loaded(name):
                    continue
                if self.musl and MUSL_RESERVED.match(name):  # musl's libc answers for these names itself
                    if self.rtld is not None and self.rtld not in self.objects:
                        self.rtld.needed_as, self.rtld.loader = name, req
                        self.objects.append(self.rtld)
                    continue
                if self.rtld is not None and name in (self.rtld.soname, self.rtld.name):
                    self.rtld.needed_as, self.rtld.loader = name, req
                    self.objects.append(self.rtld)
                    continue
                self.bad_file = None
                found = self.find(name, req)
                if found is None and self.bad_file is not None:
                    bad, why = self.bad_file
                    self.missing.append(
                        {"name": name, "needed_by": req.name, "tried": self.tried.get(f"{req.name}:{name}", [])}
                    )
                    self.errors.append(f"{self.program}: error while loading shared libraries: {bad}: {why}")
                    return
                if found is None:
                    self.missing.append({"name": name, "needed_by": req.name,
                                         "tried": list(self.tried.get(f"{req.name}:{name}", []))})  # fmt: skip
                    if self.musl:
                        self.errors.append(f"Error loading shared library {name}: No such file or directory "
                                           f"(needed by {req.name})")  # fmt: skip
                    else:
                        self.errors.append(
                            f"{self.program}: error while loading shared libraries: {name}: "
                            "cannot open shared object file: No such file or directory"
                        )
                    return
                path, elf, how = found
                real = self.sys.host(path) or path
                if any(o.real == real for o in self.objects):  # the same file by another name
                    continue
                o = self._obj(path, name, elf, how, req, real)
                self.objects.append(o)
                queue.append(o)

    def _loaded(self, name: str) -> bool:
        return any(o.needed_as == name or o.soname == name or o.name == name for o in self.objects[1:])

    def by_soname(self, name: str) -> Obj | None:
        return next((o for o in self.objects[1:] if o.soname == name or o.needed_as == name), None)

    def check_versions(self) -> None:
        """Version needs of every object, in load order (dl-version.c); musl checks none."""
        if self.musl:
            return
        for o in self.objects:
            for need in o.elf.version_needs:
                lib = self.by_soname(need.file)
                if lib is None:
                    continue
                defined = {d.names[0] for d in lib.elf.version_defs if d.names}
                for vname, _, vflags in need.aux:
                    if vname not in defined and not vflags & VER_FLG_WEAK:
                        self.errors.append(
                            f"{self.program}: {lib.name}: version `{vname}' not found (required by {o.name})"
                        )
                        return

    # ---------------------------------------------------------------- symbol binding

    def _memo(self, what: str, o: Obj, compute: Any) -> Any:
        key = (what, o.real)
        if key not in self.sys.memo:
            self.sys.memo[key] = compute(o)
        return self.sys.memo[key]

    def _definitions(self, o: Obj) -> dict[str, list[tuple[str | None, bool]]]:
        return self._memo("defs", o, self._compute_definitions)

    def _compute_definitions(self, o: Obj) -> dict[str, list[tuple[str | None, bool]]]:
        """symbol -> [(version name or None, hidden)] of its defined dynamic symbols."""
        defs: dict[str, list[tuple[str | None, bool]]] = {}
        names = {d.index: d.names[0] for d in o.elf.version_defs if d.names}
        versym = o.elf.versym
        for s in o.elf.dynamic_symbols():
            if s.st_shndx == 0 or s.binding == 0 or (s.st_other & 3) in (1, 2):  # undefined, local, hidden
                continue
            v = versym[s.index] if s.index < len(versym) else 1
            defs.setdefault(s.name, []).append((names.get(v & 0x7FFF) if (v & 0x7FFF) > 1 else None, bool(v & 0x8000)))
        return defs

    def _startup_symbols(self, o: Obj) -> set[int]:
        return self._memo("startup", o, self._compute_startup)

    def _compute_startup(self, o: Obj) -> set[int]:
        """Indices of dynamic symbols referenced by relocations ld.so processes at start-up."""
        elf = o.elf
        dyn = dict(elf.dynamic)
        out: set[int] = set()
        rela = dyn.get(DT_PLTREL, DT_RELA) == DT_RELA
        tables = [(dyn.get(DT_RELA), dyn.get(DT_RELASZ), True), (dyn.get(DT_REL), dyn.get(DT_RELSZ), False)]
        now = bool(o.flags & DF_BIND_NOW) or bool(o.flags_1 & DF_1_NOW)
        if now:
            tables.append((dyn.get(DT_JMPREL), dyn.get(DT_PLTRELSZ), rela))
        for addr, size, is_rela in tables:
            if not addr or not size:
                continue
            off = elf.vaddr_to_offset(addr)
            if off is None or off + size > elf.size:
                continue
            ent = (24 if is_rela else 16) if elf.bits == 64 else (12 if is_rela else 8)
            for i in range(min(size // ent, 1 << 22)):
                if elf.bits == 64:
                    info = struct.unpack_from(elf.e + "Q", elf.data, off + i * ent + 8)[0]
                    out.add(info >> 32)
                else:
                    info = struct.unpack_from(elf.e + "I", elf.data, off + i * ent + 4)[0]
                    out.add(info >> 8)
        return out

    def bind(self) -> list[dict[str, Any]]:
        """Every undefined reference: where it binds, or why it cannot; errors for start-up failures."""
        defs = [(o, self._definitions(o)) for o in self.objects]
        out = []
        for o in self.objects:
            by_index = {}
            for need in o.elf.version_needs:
                for vname, other, _ in need.aux:
                    by_index[other & 0x7FFF] = (need.file, vname)
            versym = o.elf.versym
            startup = self._startup_symbols(o)
            now = bool(o.flags & DF_BIND_NOW) or bool(o.flags_1 & DF_1_NOW) or self.musl  # musl binds all at once
            for index, name, info in self._memo("undef", o, lambda x: x.elf.undefined_symbols()):
                weak = info >> 4 == 2
                want = by_index.get(versym[index] & 0x7FFF) if index < len(versym) else None
                target = None
                for lib, table in defs:
                    if lib is o:
                        continue
                    for defined_version, hidden in table.get(name, []):
                        if want is None:
                            if not hidden:
                                target = lib
                        elif defined_version == want[1] or defined_version is None:
                            target = lib
                        if target:
                            break
                    if target:
                        break
                at_start = now or index in startup
                out.append({"object": o.name, "symbol": name, "version": want[1] if want else None,
                            "binds_to": target.name if target else None, "weak": weak,
                            "when": "start-up" if at_start else "first call"})  # fmt: skip
                if target is None and not weak and at_start and not self.errors:
                    if self.musl:
                        self.errors.append(f"Error relocating {o.name}: {name}: symbol not found")
                    else:
                        suffix = f", version {want[1]}" if want else ""
                        self.errors.append(
                            f"{self.program}: symbol lookup error: {o.name}: undefined symbol: {name}{suffix}"
                        )
        return out


def provide(art: Artifact, known: dict[str, Any], context: Context) -> dict[str, Any]:
    """The `deps` fact, in the context's sysroot (default: the host's root)."""
    opts, sysroot = context.loader if context.loader is not None else (Options(), None)
    return {"deps": analyze(art, opts, sysroot)}


def analyze_path(path: str, opts: Options, sysroot: Sysroot | None = None) -> dict[str, Any]:
    """The `deps` facts of the program at `path` (a host path)."""
    return analyze(load.open_artifacts(path)[0], opts, sysroot)


def analyze(art: Artifact, opts: Options, sysroot: Sysroot | None = None) -> dict[str, Any]:
    """The `deps` facts of the program `art` (opened from a host path) in `opts.sysroot`.

    Pass one `Sysroot` for many programs: each library is then read once per run."""
    sysroot = sysroot or Sysroot(opts.sysroot)
    path = art.path
    if art.format != "ELF":
        raise AnalyzerError("deps resolves ELF programs only", path)
    elf: ELFFile = art.binary
    model = Model(path, elf, opts, sysroot)
    interp = elf.interpreter
    interp_found = None
    # the libraries are resolved whatever happens to the interpreter, so the facts show the whole tree
    model.load()
    if not model.errors:
        model.check_versions()
    bindings = model.bind() if not model.errors else []
    if interp:
        interp_elf, _ = sysroot.open(interp)
        interp_found = interp_elf is not None
        if not interp_found:
            # the kernel fails first, before any loader runs: exec returns ENOENT
            model.errors.insert(0, f"{model.program}: {interp}: No such file or directory (the interpreter)")
    dead = []
    for o in model.objects:
        for kind, entries in (("RPATH", o.rpath), ("RUNPATH", o.runpath)):
            for d in model._dirs(entries, o):
                if d.startswith("/") and sysroot.host(d) is None:
                    dead.append({"object": o.name, "path": d, "kind": kind})
    return {
        "sysroot": sysroot.root,
        "interpreter": {"path": interp, "found": interp_found},
        "libraries": [
            {
                "name": o.needed_as,
                "path": o.name,
                "found_by": o.found_by,
                "needed_by": o.loader.name if o.loader else None,
                "soname": o.soname,
            }
            for o in model.objects[1:]
        ],  # fmt: skip
        "missing": model.missing,
        "bindings": bindings,
        "undefined": [b for b in bindings if b["binds_to"] is None and not b["weak"]],
        "loader_errors": model.errors,
        "dead_search_paths": dead,
        "flavour": "musl" if model.musl else "glibc",
    }
