"""`binlens explain "<error>"`: read pasted errors about starting a program, and explain each.

Understands glibc's ld.so (cannot open shared object file, version not found,
symbol lookup error, invalid ELF header / file too short / wrong ELF class,
kernel too old, its warnings, static TLS, mapping refusals), dlerror() as
Python's `import` and ctypes show it, musl's loader (Error loading shared
library, Error relocating), the shells (bash, sh, `-bash:` login shells;
illegal instructions), chroot, container runtimes (`exec /app: no such file or
directory`, `exec format error`), macOS's dyld and Windows' loader dialogs.
Every line is read on its own, and every error found is explained, in the
order pasted.
"""

from __future__ import annotations

import os
import posixpath
import re
from typing import Any

from analyzer.errors import AnalyzerError
from analyzer.facts.loader.linkmap import NODE_API

MAX_LINES = 1000  # a pasted log longer than this is read up to here
MAX_LINE = 4096  # characters of one line (longer ones are cut): every pattern stays linear

# (kind, a word every such line holds, pattern): the word is found first with `in`, so a long line without it
# costs one scan; the patterns anchor their captures on fixed words
PATTERNS = [
    ("missing-library", "cannot open shared object file", re.compile(r"(?:error while loading shared libraries: |OSError: |ImportError: |^|\s)(?P<lib>[^\s:]+): cannot open shared object file(?:: (?P<errno>[^\n]+))?")),
    ("no-version-info", "no version information available", re.compile(r"(?P<lib>[^\s:]+): no version information available \(required by (?P<by>[^)]+)\)")),
    ("copy-size", "has different size in shared object", re.compile(r"(?:(?P<prog>[^\s:]+): )?Symbol `(?P<symbol>[^']+)' has different size in shared object")),
    ("static-tls", "static TLS block", re.compile(r"(?P<lib>[^\s:]+): cannot allocate memory in static TLS block")),
    ("map-segment", "failed to map segment", re.compile(r"(?P<lib>[^\s:]+): failed to map segment from shared object(?:: (?P<errno>[^\n]+))?")),
    ("map-segment", "cannot map zero-fill pages", re.compile(r"(?P<lib>[^\s:]+): (?P<zero>cannot map zero-fill pages)(?:: (?P<errno>[^\n]+))?")),
    ("unversioned-assert", "check_match: Assertion", re.compile(r"dl-lookup\.c: \d+: check_match: Assertion `version->filename == NULL")),
    ("textrel", "cannot restore segment prot", re.compile(r"(?P<lib>[^\s:]+): cannot restore segment prot after reloc(?:: (?P<errno>[^\n]+))?")),
    ("missing-library", "Error loading shared library", re.compile(r"Error loading shared library (?P<lib>[^\s:]+): No such file or directory(?: \(needed by (?P<by>[^)]+)\))?")),
    ("weak-version", "weak version", re.compile(r"(?P<lib>[^\s:]+): weak version `(?P<version>[^']+)' not found \(required by (?P<by>[^)]+)\)")),
    ("libc-early-init", "_dl_call_libc_early_init", re.compile(r"dl-call-libc-early-init\.c: \d+: _dl_call_libc_early_init: Assertion")),
    ("relr-unannounced", "DT_RELR without", re.compile(r"(?P<lib>[^\s:]+): DT_RELR without GLIBC_ABI_DT_RELR dependency")),
    ("missing-version", "not found (required by", re.compile(r"(?P<lib>[^\s:]+): version `(?P<version>[^']+)' not found \(required by (?P<by>[^)]+)\)")),
    ("undefined-symbol", "undefined symbol", re.compile(r"(?:symbol lookup error: )?(?P<by>[^\s:]+): undefined symbol: (?P<symbol>[^,\s]+)(?:, version (?P<version>\S+))?")),
    ("undefined-symbol", "with link time reference", re.compile(r"(?P<by>[^\s:]+): symbol (?P<symbol>[^\s,]+),? version (?P<version>\S+) not defined in file (?P<lib>[^\s:]+) with link time reference")),
    ("undefined-symbol", "symbol not found", re.compile(r"Error relocating (?P<by>[^\s:]+): (?P<symbol>[^\s:]+): symbol not found")),
    ("bad-library", "ELF", re.compile(r"(?P<lib>[^\s:]+): (?P<why>invalid ELF header|wrong ELF class: \S+|ELF file OS ABI invalid|ELF file ABI version invalid|ELF file data encoding not (?:little|big)-endian|ELF file version (?:ident )?does not match current one|only ET_DYN and ET_EXEC can be loaded|cannot dynamically load position-independent executable|cannot dynamically load executable)")),
    ("bad-library", "file too short", re.compile(r"(?P<lib>[^\s:]+): (?P<why>file too short)")),
    ("dyld-missing-library", "Library not loaded", re.compile(r"dyld(?:\[\d+\])?: Library not loaded: (?P<lib>\S+)")),
    ("dyld-symbol", "Symbol not found", re.compile(r"dyld(?:\[\d+\])?: (?:lazy )?[Ss]ymbol not found: (?P<symbol>\S+)")),
    ("windows-missing-dll", ".dll", re.compile(r"(?:because (?P<lib>[^\s]+\.dll) was not found|can't start because (?P<lib2>[^\s]+\.dll) is missing)", re.I)),
    ("windows-entry-point", "could not be located", re.compile(r"procedure entry point (?P<symbol>\S+) could not be located in the dynamic link library (?P<lib>.+?)\.?$")),
    ("windows-bad-image", "0xc000007b", re.compile(r"unable to start correctly \(0xc000007b\)", re.I)),
    ("windows-dll-load", "DLL load failed", re.compile(r"DLL load failed(?: while importing (?P<mod>\w+))?: (?P<why>.+?)\.?$")),
    ("kernel-too-old", "kernel too old", re.compile(r"FATAL: kernel too old")),
    ("illegal-instruction", "llegal", re.compile(r"(?:Illegal instruction|illegal hardware instruction|uncaught target signal 4 \(Illegal instruction\))")),
    ("exec-stack", "cannot enable executable stack", re.compile(r"(?P<lib>[^\s:]+): cannot enable executable stack as shared object requires(?:: (?P<why>Invalid argument|Permission denied))?")),
    ("page-size", "ELF load command", re.compile(r"(?P<lib>[^\s:]+): ELF load command (?P<why>address/offset not page-aligned|alignment not page-aligned|address/offset not properly aligned)")),
    ("exec-format", "xec format error", re.compile(r"(?P<prog>[^\s:]*):? ?(?:cannot execute binary file: )?[Ee]xec format error")),
    ("not-started", "o such file or directory", re.compile(r"(?:exec:? \"?|failed to run command [‘']|: )(?P<prog>[^\s:\"'‘’]+)[\"'’]?:? (?:cannot execute: )?(?:stat \S+: )?[Nn]o such file or directory")),
    ("not-started", "bad ELF interpreter", re.compile(r"(?P<prog>[^\s:]+): (?P<interp>/[^\s:]+): bad ELF interpreter: No such file or directory")),
    ("not-started", "required file not found", re.compile(r"(?P<prog>[^\s:]+): cannot execute: required file not found")),
    ("not-started", "not found", re.compile(r"^(?:-?\w+: )?(?:\d+: )?(?:line \d+: )?(?P<prog>[^\s:]+): not found$")),
]  # fmt: skip


def parse_all(text: str) -> list[dict[str, Any]]:
    """Every error the text holds, in order: {kind, line, and what it names}."""
    found = []
    for line in text.splitlines()[:MAX_LINES]:
        line = line.strip()[:MAX_LINE]
        for kind, word, pattern in PATTERNS:
            if word not in line:
                continue
            m = pattern.search(line)
            if m:
                found.append({"kind": kind, "line": line, **{k: v for k, v in m.groupdict().items() if v}})
                break
    return found


def parse(text: str) -> dict[str, Any]:
    """The first error of the text; AnalyzerError when there is none binlens knows."""
    found = parse_all(text)
    if not found:
        raise AnalyzerError(
            "not an error binlens knows (the dynamic loader's, glibc's or musl's; dlopen's as Python shows it; "
            "the shell's or a container runtime's for a program that does not start)"
        )
    return found[0]


def releases_with(node: str, rolling: bool = False) -> list[str]:
    """The distribution releases (the non-rolling ones, else the rolling ones) whose libraries define `node`."""
    from analyzer.facts.symvers import split_node
    from analyzer.policy import compat

    split = split_node(node, compat.CHECKED_NAMESPACES)
    if not split:
        return []
    ns, version = split
    out = []
    for name, r in compat.table()["releases"].items():
        if bool(r["rolling"]) != rolling or r["family"] == "rhubi":
            continue
        if any(version in a["nodes"].get(ns, []) for a in r["arches"].values()):
            out.append(name)
    return out


# os-release IDs whose releases the targets table names otherwise, and the families named by the major version
_FAMILY = {"amzn": "amazonlinux", "rocky": "rockylinux", "ol": "oraclelinux", "opensuse-leap": "opensuse",
           "centos": "centos-stream"}
_BY_MAJOR = ("rhel", "almalinux", "rockylinux", "oraclelinux", "centos-stream")


def release_of(root: str) -> tuple[str, str] | None:
    """The distribution release (a --target name) a root's os-release says it is — usr/lib/os-release, or
    etc/os-release when it is a file of its own (a symlink there may lead out of the root) — and its own
    `ID-VERSION_ID`; or None. A release binlens does not list is taken as the one its ID_LIKE names with the same
    version, when binlens lists that (CentOS Linux 7: `ID_LIKE="rhel fedora"`, so rhel-7: a rebuild of it, with
    its C library); never another version."""
    import os

    from analyzer.load.installed import OS_RELEASE, OS_RELEASE_MAX, distro
    from analyzer.policy import compat

    files = {}
    for rel in reversed(OS_RELEASE):  # (usr/lib's first: etc/'s is most often a symlink to it)
        f = os.path.join(root, rel)
        if os.path.isfile(f) and not os.path.islink(f):
            with open(f, "rb") as fh:
                files[rel] = fh.read(OS_RELEASE_MAX)
            break
    fields = distro(files, ("ID", "VERSION_ID", "ID_LIKE"))
    own = f"{fields.get('id', '')}-{fields.get('version_id', '')}"
    for ident in [fields.get("id", ""), *fields.get("id_like", "").split()]:
        family = _FAMILY.get(ident, ident)
        version = fields.get("version_id", "")
        if family in _BY_MAJOR:
            version = version.split(".")[0]
        name = f"{family}{'' if family == 'centos-stream' else '-'}{version}"
        if family and version and name in compat.table()["releases"]:
            return name, own
    return None


class Context:
    """What explain knows besides the text: the binary's loader facts and the target, when given (or, for a
    sysroot, the release its os-release names)."""

    def __init__(self, binary: str | None, sysroot: str, target: str | None,
                 cpu: tuple[str, str] = ("baseline", "other")) -> None:
        self.deps: dict[str, Any] | None = None
        self.facts: dict[str, Any] = {}
        self.binary = binary
        self.carried: dict[str, dict[str, Any]] = {}  # a PyInstaller program's binaries: name → their deps facts
        if binary:
            from analyzer import pipeline
            from analyzer.facts import loader

            (entry, *_) = pipeline.analyze_file(binary)
            self.facts = entry["facts"]
            if entry["format"] == "ELF" and self.facts.get("os", {}).get("name") in ("linux", "unknown"):
                opts = loader.Options(sysroot=sysroot, isa_level=cpu[0], cpu_vendor=cpu[1])
                self.deps = loader.analyze_path(binary, opts)
                if self.facts.get("bundle"):  # what it extracts and loads, resolved as its bootloader has them
                    from analyzer import facts

                    shared = (opts, loader.Sysroot(sysroot))
                    request = pipeline.Request(facts.resolve(["deps"]), facts.Context(loader=shared))
                    self.carried = {e["path"][len(entry["path"]) + 1:]: e["facts"]["deps"]
                                    for e in pipeline.analyze_file(binary, request)[1:] if "deps" in e["facts"]}
        self.sysroot = sysroot
        self.target = None
        self.release = None  # the distribution release the sysroot's os-release names, when it names one binlens knows
        self.shown = None  # that os-release's own ID-VERSION_ID
        if target:
            from analyzer.policy import compat

            self.target = compat.resolve(target)
        elif sysroot != "/":  # (the root the loader saw; not this machine, where the error may not have happened)
            from analyzer.policy import compat

            found = release_of(sysroot)
            self.release, self.shown = found if found else (None, None)
            self.target = compat.resolve(self.release) if self.release else None

    @property
    def arch(self) -> str:
        return str(self.facts.get("arch") or "x86_64")


def explain_error(text: str, binary: str | None = None, sysroot: str = "/", target: str | None = None,
                  cpu: tuple[str, str] = ("baseline", "other")) -> list[str]:
    """Lines of explanation for every error in a pasted text, using the binary, sysroot, target and the CPU the
    program ran on (--isa-level, --cpu-vendor) when given."""
    errors = parse_all(text)
    if not errors:
        parse(text)  # raises the one-line "not an error binlens knows"
    ctx = Context(binary, sysroot, target, cpu)
    out: list[str] = []
    unloaded: list[tuple[int, str]] = []  # musl's missing libraries said so far: (their number, the name)
    for i, err in enumerate(errors):
        if len(errors) > 1:
            out += ([""] if i else []) + [f"[{i + 1}/{len(errors)}] {err['line']}"]
        if _musl(err) and err["kind"] == "missing-library" and all(lib != err["lib"] for _, lib in unloaded):
            unloaded.append((i + 1, err["lib"]))
        elif _musl(err) and err["kind"] == "undefined-symbol" and unloaded:
            names = ", ".join(f"{lib} ([{n}])" for n, lib in unloaded)
            out.append(f"Probably a consequence of the missing {names}: musl's loader goes on past a library it "
                       "cannot load and then says every symbol that library would have defined. Fix that first; "
                       "if this line stays, it is a problem of its own:")
        out += EXPLAIN[err["kind"]](err, ctx)
    return out


def _musl(err: dict[str, Any]) -> bool:
    """Whether the line is musl's loader's (Alpine Linux and other musl systems)."""
    return err["line"].startswith(("Error relocating ", "Error loading shared library "))


_MUSL_LIBC = re.compile(r"(?:libc\.musl-|ld-musl-)[\w]+\.so\.1")


def _musl_binary_on_glibc(err: dict[str, Any], ctx: Context) -> list[str]:
    """For a binary built against musl loaded on a glibc system (a musl build of an npm addon, a musllinux wheel's
    extension, an Alpine program copied over): what it is, and the fixes (else nothing). Known from the library
    it misses (musl's own: libc.musl-ARCH.so.1) or from the binary (--binary: its libc is musl)."""
    if _musl(err) or not (_MUSL_LIBC.fullmatch(os.path.basename(err.get("lib", ""))) or ctx.facts.get("libc") ==
                          "musl"):
        return []
    return [
        f"{err.get('by') or 'The binary'} was built against musl (Alpine Linux, a musllinux wheel, npm's -musl "
        "builds of an addon), and this system's C library is glibc: musl's library is not here, and a library "
        "or extension loaded into a glibc program cannot bring its own C library.",
        "Fixes for a musl binary on glibc:",
        "  - install the glibc build instead: a manylinux wheel; for npm, the -gnu optional dependency (npm picks "
        "the build for the system it installs on: reinstall there, not in an Alpine stage, and do not copy "
        "node_modules across);",
        f"  - or build it for glibc (`zig cc -target {ctx.arch or 'x86_64'}-linux-gnu`), or link it statically;",
        "  - or run it on a musl-based image (Alpine).",
    ]


def _glibc_program_on_musl(err: dict[str, Any], ctx: Context) -> list[str]:
    """For musl's loader running a program built against glibc: what it is, and the fixes (else nothing). Known
    from the binary (--binary: its interpreter or libc.so.6), or from the symbol alone when it is one of glibc's
    _FORTIFY_SOURCE variants (`__printf_chk`, from glibc's list: analyzer/data/fortify.json)."""
    if not _musl(err):
        return []
    from analyzer.facts.hardening import fortifiable

    symbol = err.get("symbol", "")
    fortified = symbol.startswith("__") and symbol.endswith("_chk") and symbol[2:-4] in fortifiable()
    if ctx.facts.get("libc") == "glibc":
        why = f"{err['by']} is linked against glibc (binlens scan says libc glibc)"
    elif fortified and not ctx.facts:
        why = f"{symbol} is glibc's _FORTIFY_SOURCE variant of {symbol[2:-4]}, so {err['by']} was built against glibc"
    else:
        return []
    return [
        f"This is musl's loader (Alpine Linux, or another musl system), and {why}: musl defines neither glibc's "
        "versioned symbols nor its fortified and GNU-only functions, so one program fails here for many symbols "
        "(gcompat, `apk add gcompat`, supplies only some).",
        "Fixes for a glibc program on musl:",
        f"  - build it for musl: in an Alpine image, or `zig cc -target {ctx.arch}-linux-musl`, or a musllinux wheel;",
        "  - or link it statically (for Go: CGO_ENABLED=0);",
        "  - or run it on a glibc-based image (Debian slim, distroless base, UBI) instead of Alpine.",
    ]


def _missing_library(err: dict[str, Any], ctx: Context) -> list[str]:
    lib = err["lib"]
    errno = (err.get("errno") or "").strip()
    if errno and errno != "No such file or directory":
        return _unopened_library(lib, errno)
    lines = [f"The loader could not find {lib}" + (f", needed by {err['by']}." if "by" in err else ".")]
    if "OSError" in err["line"] or "ImportError" in err["line"]:
        lines = [f"dlopen() could not find {lib} (Python's ctypes or import loads it at run time, so the program"
                 " started and failed only there)."]  # fmt: skip
    if glibc := _glibc_program_on_musl(err, ctx):
        return lines + glibc  # (the loader modelled for --binary is glibc's, not the one that printed this)
    if musl := _musl_binary_on_glibc(err, ctx):
        return lines + musl
    if ctx.deps:
        for miss in ctx.deps["missing"]:
            if miss["name"] == lib:
                lines.append(f"{miss['needed_by']} needs it; the loader looked in:")
                lines += [f"  {t}" for t in miss["tried"]] or ["  (no directory: no RPATH, RUNPATH or default)"]
                for other in miss.get("other_cpus", ()):  # (binlens predicts for the baseline CPU here)
                    lines.append(f"It is there for another CPU only: {other['path']} — the loader of a CPU that "
                                 f"searches {other['subdirectory']} takes it: the program loads on such a machine, "
                                 "not on one whose CPU lacks it.")
    where = f"on Alpine: apk add so:{lib}" if _musl(err) else f"for Debian: apt-file search {lib}"
    return lines + [
        "Fixes:",
        f"  - install the package that ships {lib} on the target ({where});",
        "  - or ship it beside the program and link with -Wl,-rpath,'$ORIGIN/../lib' (DT_RUNPATH);",
        "  - or link it statically; for Go, build with CGO_ENABLED=0 if it came in through cgo.",
    ]


def _older_glibc_advice(node: str, ctx: Context) -> list[str]:
    """How to build for an older glibc: for the target's glibc when one is named, else for the oldest deployed."""
    from analyzer.policy import compat

    if node == "GLIBC_ABI_DT_RELR":
        return ["  - link without -z pack-relative-relocs (the linker adds GLIBC_ABI_DT_RELR for it);"]
    needed = node.removeprefix("GLIBC_")
    target = ctx.target
    if target is not None and target.glibc and compat._vkey(target.glibc) < compat._vkey(needed):
        return [f"  - build against glibc {target.glibc}, what {target.name} ships: an image or sysroot of it, or"
                f" `zig cc -target {ctx.arch}-linux-gnu.{target.glibc}`;"]  # fmt: skip
    return [f"  - build against the glibc of the oldest system you deploy to (older than {needed}): its image or a"
            f" sysroot, or `zig cc -target {ctx.arch}-linux-gnu.X.Y` with its version (binlens targets lists them);"]


def _python_package_advice(by: str) -> list[str]:
    """For an extension module of an installed Python package (…/site-packages/PKG/…): where such a file comes from
    and how to get one this system runs."""
    m = re.search(r"/(?:site|dist)-packages/([A-Za-z0-9_.-]+)/", by)
    if m is None:
        return []
    return [f"  - it is an extension module of the Python package directory {m[1]}/ (site-packages): pip installed a"
            " wheel built for a newer system, or the environment was built on one and copied here (a virtualenv or"
            " an image layer from a newer base image); reinstall its distribution on this system (`pip install"
            " --force-reinstall --no-cache-dir DIST`, DIST as the *.dist-info beside it names it: pip then picks a"
            " wheel whose platform tag this system satisfies) or build it here (`--no-binary DIST`); `binlens scan`"
            " of the wheel says whether its tag promises more than its binaries need;"]  # fmt: skip


def _other_libc(lib: str, ctx: Context) -> str:
    """", but its libc.so.6 is glibc 2.31 (...)" when the C library the error names, in the sysroot, is another
    release's than the one its os-release names (a library copied or swapped into an image); else ""."""
    from analyzer.facts.loader import glibc
    from analyzer.facts.loader.sysroot import Sysroot

    if not posixpath.basename(lib).startswith("libc.so") or ctx.target is None:
        return ""
    host = Sysroot(ctx.sysroot).host(lib)
    release = glibc.release_in(host) if host else None
    if release is None or f"{release[0]}.{release[1]}" == ctx.target.glibc:
        return ""
    return (f"; but the {lib} there is glibc {release[0]}.{release[1]} (its release string), not that release's "
            "own: a C library copied or swapped into it")


def _missing_version(err: dict[str, Any], ctx: Context) -> list[str]:
    version, lib = err["version"], err["lib"]
    if version.startswith("GLIBC_") and _glibc_part(err["by"]) and _glibc_part(lib):
        # (one part of glibc needing another's newer version: two builds, not a program built too new)
        return [f"{err['by']} is part of glibc and needs {version} of {lib}, another part of glibc, which does not "
                f"define it: {posixpath.basename(err['by'])} comes from a newer glibc build than {lib}. The loader "
                "and the C library's files come from two glibc builds."] + \
            _found_elsewhere(ctx, err["by"], "error") + _MIXED_FIXES
    lines = [f"{err['by']} requires version node {version} from {lib}, and the {lib} the loader found "
             "does not define it: the library is older than the one the program was linked against."]  # fmt: skip
    carried = _carried(err["by"], ctx)
    deps = ctx.carried[carried] if carried else ctx.deps
    if carried:
        lines.append(f"It is {ctx.binary}!{carried}, a library the PyInstaller program {ctx.binary} carries: its"
                     f" bootloader extracts it to a _MEI directory and loads it from there.")
    if deps:
        used = [b for b in deps["bindings"] if b["version"] == version]
        own = [b for b in used if _same_object(b["object"], err["by"], carried and f"{ctx.binary}!{carried}")]
        lines += [f"  {b['object']} uses {b['symbol']}@{version}" for b in own or used]
    ships = releases_with(version)
    rolling = [] if ships else releases_with(version, rolling=True)
    if ships:
        lines.append(f"Distribution releases that ship {version}: {', '.join(ships)}.")
    elif rolling:
        lines.append(f"No stable distribution release ships {version}; rolling ones do: {', '.join(rolling)}.")
    elif version.startswith(("GLIBC_", "GLIBCXX_", "CXXABI_")):
        lines.append(f"No distribution release binlens knows ships {version}: the program was linked against a "
                     "library newer than any release's, or its version needs are damaged.")
    if ctx.release and ctx.target is not None and ctx.target.glibc and version.startswith("GLIBC_"):
        seen = f"{ctx.release} (its os-release)" if ctx.shown == ctx.release else \
            f"{ctx.shown} (its os-release; taken as {ctx.release}, which its ID_LIKE names)"
        lines.append(f"The root the loader saw is {seen}, with glibc {ctx.target.glibc}{_other_libc(lib, ctx)}.")
    lines.append("Fixes:")
    lines += _python_package_advice(err["by"])
    if carried:
        lines.append("  - PyInstaller bundles the libpython and libraries of the machine that built the program: build"
                     " it on the oldest distribution you deploy to (its container image, or a manylinux one), so that"
                     f" nothing it carries needs more than that; `binlens scan {ctx.binary} --target RELEASE` checks"
                     " every binary it carries;")
    if version.startswith("GLIBC_"):
        lines += _older_glibc_advice(version, ctx)
        where = f"run it where {version} exists (a newer release); or " if ships or rolling else ""
        lines.append(f"  - or {where}link statically with musl, or for Go build with CGO_ENABLED=0.")
    elif version.startswith(("GLIBCXX_", "CXXABI_", "GCC_")):
        lines += [
            "  - the program was built with a newer GCC than the target's libstdc++/libgcc_s: build with the"
            " target's compiler, or link with -static-libstdc++ -static-libgcc;",
            "  - or ship the newer libstdc++.so.6 beside the program ($ORIGIN RUNPATH).",
        ]
    else:
        lines += [
            f"  - install or ship the {lib} that defines {version} (the release the program was linked against);",
            f"  - or rebuild the program against the {lib} the target has.",
        ]
    return lines


def _carried(by: str, ctx: Context) -> str | None:
    """The name of the binary a PyInstaller program carries that a loader error's object is (it was loaded from
    the directory its bootloader extracts to: `/tmp/_MEIabc123/libpython3.11.so.1.0`), or None."""
    m = re.search(r"/_MEI[^/]*/(.+)$", by)
    return m[1] if m and m[1] in ctx.carried else None


def _same_object(name: str, by: str, carried: str | None) -> bool:
    """Whether a binding's object is the one the error names (a carried binary: its name in the program)."""
    return name == (carried or by) or (not carried and name.rsplit("/", 1)[-1] == by.rsplit("/", 1)[-1])


_NODE_HINT = ("It is a Node.js addon: Node-API (napi_*), libuv and V8 come from the node that loads it. A napi_* "
              "symbol node lacks means the addon needs a newer Node-API version than this node has (node --version); "
              "a V8 or node C++ symbol, that it was built against another node: `npm rebuild` (node-gyp) builds it "
              "for this one; anything else is the addon's own dependency: `binlens deps --host $(which node)` binds "
              "it against that node.")


def _undefined_symbol(err: dict[str, Any], ctx: Context) -> list[str]:
    symbol, version = err["symbol"], err.get("version")
    if err.get("lib"):  # (an older glibc loader's words: the file the version belongs to lacks the symbol at it)
        lines = [f"{err['by']} refers to {symbol}@{version}, a version of {err['lib']}, and the {err['lib']} the "
                 f"loader found has that version but not {symbol} at it (older glibc loaders' words; newer ones "
                 f"say `undefined symbol: {symbol}, version {version}`)."]  # fmt: skip
    else:
        lines = [f"{err['by']} refers to {symbol}" + (f"@{version}" if version else "") + ", and no loaded object "
                 "defines it."]  # fmt: skip
    if version == "GLIBC_PRIVATE":
        return lines + _mixed_glibc(err, ctx)
    if err.get("lib") and version and version.startswith("GLIBC_") and err["lib"] in _MOVED_INTO_LIBC:
        return lines + [
            f"glibc's newer releases moved the functions of libpthread, libdl, librt and libutil into libc.so.6 "
            f"(2.34 completed it), keeping the old libraries' version nodes: {err['lib']} is from such a release, "
            f"and the loader that ran the program is older and still looks for {symbol} there. The C library's "
            "files come from two releases.",
            *_MIXED_FIXES,
        ]
    if err.get("lib"):
        return lines + [
            f"So it is another build or release of {err['lib']} than the one {err['by']} was linked against: "
            f"typically one of several copies, reached first through LD_LIBRARY_PATH or an application's own "
            "library directory.",
            "Fixes:",
            f"  - see which {err['lib']} is loaded (`binlens deps --binary PROGRAM` with the same LD_LIBRARY_PATH "
            "as --ld-library-path, or LD_DEBUG=libs), and take the directory of the wrong copy out of "
            "LD_LIBRARY_PATH;",
            f"  - or ship the {err['lib']} it was linked against beside it ($ORIGIN RUNPATH).",
        ]
    if glibc := _glibc_program_on_musl(err, ctx):
        return lines + glibc  # (the loader modelled for --binary is glibc's, not the one that printed this)
    if musl := _musl_binary_on_glibc(err, ctx):
        return lines + musl
    if ctx.deps:
        if ctx.deps.get("python_module") or symbol.startswith(("Py", "_Py")):
            lines.append("It is a Python extension module: the C API comes from the interpreter that imports it; "
                         "`binlens deps --host $(which python3)` binds it against that interpreter.")  # fmt: skip
        elif ctx.deps.get("node_addon") or symbol.startswith(NODE_API):
            lines.append(_NODE_HINT)
        libs = [f"{lib['name']} ({lib['path']})" for lib in ctx.deps["libraries"]]
        lines.append("Objects searched, in the loader's order: the program, then " + (", ".join(libs) or "none") + ".")
    elif symbol.startswith(("Py", "_Py")):
        lines.append("A Python C API symbol: the extension was built for another Python (version, or debug/free-"
                     "threaded build) than the one importing it.")  # fmt: skip
    elif symbol.startswith(NODE_API):
        lines.append(_NODE_HINT)
    return lines + [
        "Fixes:",
        "  - the library that defines it is missing or older than at link time: install or ship the right one;",
        "  - if it is defined in a library the program does not link directly, add that library to the link;",
        "  - a symbol with a version must be defined with that version node (check the library's version script).",
    ]


_GLIBC_PARTS = re.compile(r"^(?:ld-linux[\w.-]*|ld64|ld|libc|libm|libmvec|libpthread|libdl|librt|libutil|libanl|"
                          r"libresolv|libnsl|libnss_\w+|libcrypt|libBrokenLocale|libc_malloc_debug|libthread_db)"
                          r"(?:-[\d.]+)?\.so(?:\.\d+)*$")
_MOVED_INTO_LIBC = ("libpthread.so.0", "libdl.so.2", "librt.so.1", "libutil.so.1", "libanl.so.1")
_MIXED_FIXES = [
    "Fixes:",
    "  - LD_LIBRARY_PATH, LD_PRELOAD or an RPATH/RUNPATH reaching a directory with another glibc's libraries (a "
    "bundled or copied glibc, a toolchain's sysroot): take it out; to run the program on that glibc, start it with "
    "that glibc's own loader: `DIR/ld-linux-x86-64.so.2 --library-path DIR PROGRAM` (the loader's name on this "
    "architecture: `binlens scan PROGRAM` shows its interpreter);",
    "  - a copied libc.so.6 or a half-done upgrade: the C library package holds the loader and libc.so.6 of one "
    "release: reinstall it;",
    "  - a program that needs a newer glibc than the system's: a newer release or its container, not its libc.so.6 "
    "alone (`binlens scan PROGRAM` says which releases it runs on).",
]


def _glibc_part(path: str) -> bool:
    """Whether the file is one of glibc's (the loader, libc.so.6, libm, libpthread, the NSS modules, ...)."""
    return bool(_GLIBC_PARTS.match(posixpath.basename(path)))


def _mixed_glibc(err: dict[str, Any], ctx: Context) -> list[str]:
    """A GLIBC_PRIVATE reference not bound: the parts of one glibc call each other through symbols at that
    version, which only the same build defines."""
    by = err["by"]
    if not _glibc_part(by):
        return [f"GLIBC_PRIVATE is glibc's internal interface: {by} is not part of glibc and runs only with the "
                "exact glibc build it was linked against. Rebuild it without the private symbol."]
    whose = f"whose {err['lib']} defines" if err.get("lib") else "whose other parts (the loader, for most) define"
    lines = [f"GLIBC_PRIVATE is the interface between the parts of one glibc build: {by} belongs to a build "
             f"{whose} {err['symbol']}, and the glibc files the loader put beside it do not. The dynamic loader and "
             f"{posixpath.basename(by)} come from two glibc builds."]
    return lines + _found_elsewhere(ctx, by, "error") + _MIXED_FIXES


def _found_elsewhere(ctx: Context, path: str, what: str) -> list[str]:
    """With --binary: where binlens finds the library the message names by that path, when it finds it elsewhere
    (the message's copy came through LD_LIBRARY_PATH, LD_PRELOAD or another root); else nothing."""
    if not ctx.deps or not posixpath.isabs(path):
        return []
    name = posixpath.basename(path)
    found = next((lib["path"] for lib in ctx.deps.get("libraries", []) if lib["name"] == name), None)
    if found is None or found == path:
        return []
    return [f"For {ctx.binary}, binlens finds {name} at {found} (its interpreter "
            f"{ctx.facts.get('interpreter') or 'none'}): the {path} of the {what} was reached through "
            "LD_LIBRARY_PATH, LD_PRELOAD or another root."]


def _unopened_library(lib: str, errno: str) -> list[str]:
    """A library the loader found but could not open (the errno after `cannot open shared object file`)."""
    if errno == "Permission denied":
        return [f"The loader found {lib} but may not read it: the file lacks read permission for this user, a "
                "directory on its path lacks search (x) permission, or a security module (SELinux, AppArmor) "
                "denies it. (glibc says so for a path it was given; where it searches directories, a file it may "
                "not read counts as not there.)",
                "Fixes:",
                f"  - `namei -l {lib}` shows the permissions along the path: make the library readable (chmod a+r) "
                "and its directories searchable (chmod a+x) for the user the program runs as;",
                f"  - SELinux: `ls -Z {lib}` and `restorecon -v {lib}` (a file moved, not copied, keeps its old "
                "label); AppArmor: the program's profile must allow reading it."]
    return [f"The loader found {lib} but could not open it: {errno}.",
            f"Check it: `ls -l {lib}` and `namei -l {lib}` (a symbolic link loop or to a directory, a path through "
            "a file)."]


def _no_version_info(err: dict[str, Any], ctx: Context) -> list[str]:
    lib, by = err["lib"], err["by"]
    lines = [f"A warning, not an error: {by} was linked against a {posixpath.basename(lib)} that has symbol "
             f"versions, and the {lib} the loader found has none (built without the library's version script: a "
             "locally built or bundled copy). glibc goes on and binds the program's references to the library's "
             "unversioned symbols; what the program needs and this build lacks fails when it is looked up (an "
             "`undefined symbol` error, at start-up or at the first call).",
             "If this is the last line and the program then stops: `Inconsistency detected by ld.so: ... "
             "check_match: Assertion` follows from the same cause: a library with no symbol versions at all, "
             "which glibc before 2.41 does not bind a versioned reference to."]
    return lines + _found_elsewhere(ctx, lib, "warning") + [
        "Fixes:",
        f"  - use the {posixpath.basename(lib)} the program was built against (the distribution's): take the "
        "directory of the other copy out of LD_LIBRARY_PATH or the program's RUNPATH;",
        "  - or build the bundled copy with its version script (the project's own build does: a configure or cmake "
        "option for a shared library usually keeps it).",
    ]


def _weak_version(err: dict[str, Any], ctx: Context) -> list[str]:
    lib, by, version = err["lib"], err["by"], err["version"]
    return [f"A warning, not an error: {by} needs version {version} of {posixpath.basename(lib)} only weakly (its "
            "version need is flagged VER_FLG_WEAK, as some toolchains flag a version every reference to which is "
            f"weak), and the {lib} the loader found lacks it. The program starts; what it takes weakly at "
            f"{version} is not there (its address is null), and a program that checks before calling goes on "
            "without it.",
            f"To have it, install the {posixpath.basename(lib)} that defines {version} (`binlens scan` on the "
            "library lists the versions it defines)."] + _found_elsewhere(ctx, lib, "warning")


def _libc_early_init(err: dict[str, Any], ctx: Context) -> list[str]:
    lines = ["The loader (glibc 2.32 or later) relocated everything and then found no __libc_early_init in the "
             "libc.so.6 it loaded: that libc.so.6 is from an older glibc release than the loader (before 2.32). "
             "The loader and libc.so.6 come from two glibc builds: a bundled or copied libc.so.6 reached through "
             "LD_LIBRARY_PATH or the program's own library directory, most often."]
    if ctx.deps:
        libc = next((lib["path"] for lib in ctx.deps.get("libraries", []) if lib["name"] == "libc.so.6"), None)
        if libc is not None:
            lines.append(f"For {ctx.binary}, binlens finds libc.so.6 at {libc} (its interpreter "
                         f"{ctx.facts.get('interpreter') or 'none'}, glibc {ctx.deps.get('loader_release') or '?'}).")
    return lines + _MIXED_FIXES


def _relr_unannounced(err: dict[str, Any], ctx: Context) -> list[str]:
    lib = err["lib"]
    return [f"{lib} was linked with packed relative relocations (DT_RELR) without the version need "
            "GLIBC_ABI_DT_RELR that says the loader must apply them, and glibc 2.36 and later refuse such an object "
            "(an older loader would ignore DT_RELR and crash later). It was linked by a linker or an option that "
            "packs them without adding the need: lld's --pack-dyn-relocs=relr, or a linker older than that "
            "convention.",
            "Fixes:",
            "  - link it again with -Wl,-z,pack-relative-relocs (GNU ld 2.38 and later, lld 15 and later add the "
            "need when linking against glibc 2.36 or later; `readelf -V` then lists GLIBC_ABI_DT_RELR);",
            "  - or link it without packed relocations (drop --pack-dyn-relocs=relr or -z pack-relative-relocs): "
            "it then runs on older glibc releases too."]


_VC_RUNTIME = re.compile(r"^(?:vcruntime\d+(?:_\d)?|msvcp\d+(?:_\w+)?|concrt\d+|vcomp\d+|vccorlib\d+|ucrtbase|"
                         r"api-ms-win-crt-[\w-]+)\.dll$", re.I)
_OLD_VC_RUNTIME = re.compile(r"^msvc[rp](\d+)\.dll$", re.I)  # (msvcr100.dll: Visual C++ 2010's)
_MINGW_RUNTIME = re.compile(r"^(?:libgcc_s_\w+-1|libstdc\+\+-6|libwinpthread-1|libgfortran-\d+|libgomp-1|"
                            r"libquadmath-0)\.dll$", re.I)


def _windows_dll_advice(lib: str) -> list[str]:
    """What a DLL of that name is, and where it comes from."""
    name = lib.replace("\\", "/").rsplit("/", 1)[-1]
    if _VC_RUNTIME.match(name):
        return [f"{name} is part of Microsoft's Visual C++ runtime (the Universal CRT for api-ms-win-crt-*): install "
                "the Visual C++ Redistributable for Visual Studio 2015-2022 of the program's architecture (x64, "
                "x86 or ARM64), or link the runtime statically (/MT), or ship its DLLs beside the program."]
    if _OLD_VC_RUNTIME.match(name):
        return [f"{name} is an older Visual C++ runtime's: install that version's redistributable (the number is "
                "its version: 100 is Visual Studio 2010, 120 is 2013), or rebuild with a current toolset."]
    if _MINGW_RUNTIME.match(name):
        return [f"{name} is MinGW-w64's (GCC's) runtime: ship it beside the program, or link it in (-static-libgcc "
                "-static-libstdc++, or -static)."]
    return [f"Windows looks for {name} in the program's directory, System32, the Windows directory, the current "
            "directory and then PATH: ship it beside the program."]


def _windows_missing_dll(err: dict[str, Any], ctx: Context) -> list[str]:
    lib = err.get("lib") or err.get("lib2") or "the DLL"
    lines = [f"Windows could not find {lib}, which the program (or a DLL it loads) imports."]
    imports = ((ctx.facts.get("pe") or {}).get("imports") or {}) if ctx.facts else {}
    if ctx.facts:
        direct = any(k.lower() == lib.lower() for k in imports)
        how = "itself" if direct else "not itself: a DLL it loads does (or it loads it at run time, LoadLibrary)"
        lines.append(f"{ctx.binary} imports it {how}" + (f"; its imports: {', '.join(sorted(imports))}." if imports
                                                        else "."))  # fmt: skip
    return lines + ["Fixes:", *(f"  - {line}" for line in _windows_dll_advice(lib))]


def _windows_entry_point(err: dict[str, Any], ctx: Context) -> list[str]:
    lib, symbol = err["lib"], err["symbol"]
    lines = [f"A DLL the program (or one of its DLLs) imports {symbol} from does not export it: an older or another "
             "build than the one linked against was found first — an old copy in the program's directory, System32 "
             "or a directory on PATH (a MinGW libstdc++-6.dll from another program's installation is a common one). "
             f"Windows names in this message either that DLL or, since Windows 10, the module importing it: {lib}."]
    imports = ((ctx.facts.get("pe") or {}).get("imports") or {}) if ctx.facts else {}
    sources = sorted(d for d, names in imports.items() if symbol in names)
    if sources:
        lines.append(f"{ctx.binary} imports {symbol} from {', '.join(sources)}.")
    return lines + ["Fixes:",
                    "  - put the DLL the program was built with beside it (the program's directory is searched first);",
                    *(f"  - {line}" for line in _windows_dll_advice(sources[0] if sources else lib))]


def _windows_bad_image(err: dict[str, Any], ctx: Context) -> list[str]:
    return ["0xc000007b (STATUS_INVALID_IMAGE_FORMAT): Windows found a DLL for the other word size first — a 32-bit "
            "DLL for a 64-bit program or the reverse — in the program's directory, System32/SysWOW64 or on PATH.",
            "Fixes: `binlens scan DIR` shows each DLL's machine (arch); keep only the program's architecture's "
            "beside it, and take the other directory off PATH."]


def _windows_dll_load(err: dict[str, Any], ctx: Context) -> list[str]:
    module, why = err.get("mod") or "the extension module", err.get("why", "")
    if "procedure" in why:
        return [f"Python imported {module}, a Windows extension module, and a DLL it needs lacks a function it uses "
                "(`The specified procedure could not be found`): another version of that DLL was found first.",
                "Fixes: reinstall the package's wheel for this Python; a DLL of the same name earlier on the search "
                "path (the program's directory, System32, os.add_dll_directory's) is the usual cause."]
    return [f"Python could not load {module} or a DLL it needs (`{why}`): since Python 3.8, PATH is not searched "
            "for an extension module's DLLs — only the module's directory, System32 and the directories added with "
            "os.add_dll_directory().",
            "Fixes: `binlens scan` of the .pyd lists its imports (pe.imports): put the missing DLL beside the "
            "module, or add its directory with os.add_dll_directory(); a Visual C++ runtime DLL: install the "
            "Visual C++ Redistributable."]


def _dyld_missing_library(err: dict[str, Any], ctx: Context) -> list[str]:
    lib = err["lib"]
    lines = [f"macOS's loader (dyld) could not load {lib} (its `Reason:` lines say each path it tried)."]
    macho = (ctx.facts.get("macho") or {}) if ctx.facts else {}
    if lib.startswith("@rpath/"):
        rpaths = macho.get("rpaths") or []
        lines.append("@rpath is each LC_RPATH of the program (and of the library that loads it), in order: "
                     + (f"{ctx.binary}'s are {', '.join(rpaths)}." if ctx.facts and rpaths else
                        f"{ctx.binary} has none." if ctx.facts else "`otool -l PROGRAM` lists them (LC_RPATH)."))
    elif lib.startswith(("@executable_path/", "@loader_path/")):
        lines.append(f"{lib.split('/', 1)[0]} is the directory of the program (@executable_path) or of the binary "
                     "that loads the library (@loader_path): the file is not there beside it.")
    else:
        lines.append("An absolute install name: the library is expected at that very path (a Homebrew or MacPorts "
                     "prefix, a framework) on the machine it runs on.")
    return lines + [
        "Fixes:",
        "  - ship the library inside the app (Contents/Frameworks) and point at it: `install_name_tool -change OLD "
        "@rpath/NAME PROGRAM` and `install_name_tool -add_rpath @executable_path/../Frameworks PROGRAM`;",
        "  - or install what provides it at that path (brew install ...), or link it statically.",
    ]


def _dyld_symbol(err: dict[str, Any], ctx: Context) -> list[str]:
    return [f"macOS's loader (dyld) found the library but not {err['symbol']} in it (the `Expected in:` line names "
            "it): the library is older than the one the program was linked against, or the program was built for a "
            "newer macOS than it runs on (a system library's symbol added later).",
            "Fixes: build with the oldest macOS you deploy to as the deployment target (-mmacosx-version-min, "
            "MACOSX_DEPLOYMENT_TARGET; `binlens scan` shows the binary's minos), or ship the library version it "
            "was built against."]


def _illegal_instruction(err: dict[str, Any], ctx: Context) -> list[str]:
    lines = ["The CPU met an instruction it does not have (SIGILL; a shell's exit status 132): the program, or a "
             "library it loads, was built for a newer CPU than the one it ran on — -march=native or an "
             "x86-64-v3/v4 build (AVX2, AVX-512), a wheel or prebuilt library built with AVX, a Go program built "
             "with GOARM64, GOPPC64 or GORISCV64 above the CPU's level (GOAMD64 above it refuses to start, with its "
             "own message), ARMv8.1 atomics on an older ARM core — or it ran a deliberate trap (ud2, "
             "__builtin_trap: a failed check in hardened code)."]
    if ctx.facts:
        from analyzer.policy import compat

        isa = compat._isa_needed(ctx.facts.get("arch"), (ctx.facts.get("elf") or {}).get("x86_isa_needed") or [],
                                 ctx.facts)  # fmt: skip
        go = compat._go_level(ctx.facts)
        if isa and isa != "x86-64-baseline":
            lines.append(f"{ctx.binary} says it needs {isa} (its GNU property note, or Go's GOAMD64): a CPU below "
                         "that level fails so.")
        elif go:
            lines.append(f"{ctx.binary} is a Go program built with {go[0]}={go[1]}: a CPU below that level fails so.")
        else:
            lines.append(f"{ctx.binary} claims no CPU level above its architecture's baseline (compilers record it "
                         "only when asked, -mneeded): the instruction may be in a library it loads (`binlens deps "
                         "--binary` lists them) or a trap in its code (`gdb` at the fault shows which).")
    return lines + [
        "Fixes:",
        "  - build for the oldest CPU you deploy to (-march=x86-64 or x86-64-v2, GOAMD64=v1, GOARM64=v8.0), or ship "
        "per-level builds (glibc-hwcaps subdirectories: the loader picks the library for the CPU);",
        "  - check the machine: `ld.so --help` lists the glibc-hwcaps levels this CPU supports; `binlens scan "
        "--isa-level LEVEL` checks a tree against one.",
    ]


def _copy_size(err: dict[str, Any], ctx: Context) -> list[str]:
    symbol = err["symbol"]
    lines = [f"A warning, and a real danger: {err.get('prog') or 'the program'} was linked against a library "
             f"whose data object {symbol} was smaller, and holds a copy of it (a copy relocation: non-PIC code "
             "refers to library data at a fixed address). The library it loaded now defines it larger: glibc copies "
             "only the program's size, and the library's own code then uses that short copy, reading and writing "
             "past its end."]
    for c in (ctx.deps or {}).get("copy_sizes", ()):
        if c["symbol"] == symbol:
            lines.append(f"For {ctx.binary}: {c['program_size']} bytes in the program, {c['library_size']} in "
                         f"{c['library']}.")
    return lines + [
        "Fixes:",
        "  - rebuild the program against the library it runs with (or the library it was built against: the "
        "version the program expects);",
        "  - a library that changes the size of exported data breaks its ABI: it should change its SONAME, or "
        "export the data through functions; a program built as PIE (-fPIE) makes no copy relocations.",
    ]


def _unversioned_assert(err: dict[str, Any], ctx: Context) -> list[str]:
    return [
        "glibc's loader (before 2.41) met a versioned reference to a library that has no symbol versions at all "
        "(no .gnu.version: rebuilt without its version script, and calling nothing of the C library), and stopped "
        "at this assertion instead of binding it. The `no version information available` warning just before it "
        "names the library.",
        "Fixes: use the library the program was built against (take the other copy off LD_LIBRARY_PATH or the "
        "RUNPATH), or build that library with its version script; `binlens deps --binary PROGRAM` predicts it "
        "(DEP007).",
    ]


def _static_tls(err: dict[str, Any], ctx: Context) -> list[str]:
    lib = err["lib"]
    lines = [f"{lib} uses thread-local storage in the initial-exec model (static TLS), which must fit in the "
             "room glibc keeps beside the threads' blocks at start-up; it was loaded later, by dlopen (Python's "
             "import, a plugin), and that room was already taken or too small for it."]
    tls = _static_tls_of(ctx.sysroot, lib)
    if tls is not None:
        lines.append(f"{lib} here: {tls[0]} bytes of TLS" + (", flagged DF_STATIC_TLS" if tls[1] else "") + ".")
    return lines + [
        "Fixes:",
        f"  - load it at start-up instead: `LD_PRELOAD={lib} PROGRAM` (or, in Python, import the package that "
        "holds it before the others);",
        "  - give dlopen more room: GLIBC_TUNABLES=glibc.rtld.optional_static_tls=BYTES (glibc 2.32 and later);",
        "  - or build the library with the global-dynamic TLS model (-ftls-model=global-dynamic, or without "
        "-ftls-model=initial-exec).",
    ]


def _static_tls_of(sysroot: str, lib: str) -> tuple[int, bool] | None:
    """The TLS segment's size of the library the error names, and whether it asks for static TLS (DT_FLAGS'
    DF_STATIC_TLS), when the file is there to read."""
    from analyzer.load.elf import ELFFile

    path = lib if sysroot in ("", "/") else posixpath.join(sysroot, lib.lstrip("/"))
    if not posixpath.isabs(lib) or not os.path.isfile(path):
        return None
    try:
        import mmap

        with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            elf = ELFFile(data, path)  # (mapped: a library of gigabytes is not read for its headers)
            size = sum(seg.p_memsz for seg in elf.segments if seg.p_type == 7)  # PT_TLS
            flagged = bool(dict(elf.dynamic).get(30, 0) & 0x10)
            del elf
        return size, flagged
    except Exception:  # noqa: BLE001 - a file that is not a readable ELF (or an empty one): nothing to add
        return None


def _map_segment(err: dict[str, Any], ctx: Context) -> list[str]:
    lib = err["lib"]
    errno = f" ({err['errno'].strip()})" if err.get("errno") else ""
    if err.get("zero"):
        return [f"The loader mapped {lib} but the kernel refused the memory for its zero-initialised data (.bss, "
                f"the part of a segment past its file bytes){errno}: a memory limit (ulimit -v, a cgroup, "
                "overcommit off), or headers asking for more address space than there is (a corrupt file).",
                "Fixes:",
                f"  - `ulimit -v` and the container's memory limit; `binlens scan {lib}` checks the file's "
                "segments (LOAD p_memsz)."]
    return [
        f"The loader opened {lib} but the kernel refused to map its code{errno}: most often the file lies on a "
        "file system mounted noexec (/tmp, /dev/shm, a home directory or a container volume; a PyInstaller "
        "one-file program unpacks its libraries into $TMPDIR), or a security module denies executable mappings "
        "there; else the file's headers ask for more address space than there is (a corrupt file).",
        "Fixes:",
        f"  - `findmnt -T {posixpath.dirname(lib) or '.'}` shows the mount and its options: put the library on a "
        "file system mounted exec, or remount it so;",
        "  - a PyInstaller program: TMPDIR=/var/tmp (or any exec mount) for its unpacking; Python packages in a "
        "noexec home: install them elsewhere;",
        f"  - `binlens scan {lib}` checks the file itself.",
    ]


def _textrel(err: dict[str, Any], ctx: Context) -> list[str]:
    lib = err["lib"]
    return [
        f"{lib} has text relocations (DT_TEXTREL: code not built position-independent), so the loader must "
        "make its code writable to relocate it and executable again after; the system refused the second step "
        "(SELinux's execmod denial, or a kernel that forbids writable-then-executable memory).",
        "Fixes:",
        "  - rebuild the library from objects compiled with -fPIC (binlens scan reports DT_TEXTREL: "
        "`loader.textrel`);",
        f"  - SELinux, as a stopgap: `chcon -t textrel_shlib_t {lib}` (or semanage fcontext + restorecon).",
    ]


def _bad_library(err: dict[str, Any], ctx: Context) -> list[str]:
    why = err["why"]
    if why == "invalid ELF header" and os.path.basename(err["lib"]) == "libc.so" and (musl := _musl_binary_on_glibc(
            err, ctx)):
        return [f"The loader found {err['lib']}, a linker script on a glibc system, where the binary needs "
                "musl's C library by that name.", *musl]
    cause = ("it is for another word size (a 32-bit library for a 64-bit program, or the reverse)" if "class" in why
             else "its OS/ABI byte (e_ident) names another system (a FreeBSD or Solaris library) or GNU extensions "
             "newer than this loader" if "OS ABI" in why
             else "its ABI version (e_ident) asks for features newer than this loader" if "ABI version" in why
             else "it is for a machine of the other byte order" if "encoding" in why
             else "it is a program, not a shared library: glibc 2.30 and later do not dlopen an executable, even "
             "a position-independent one" if "executable" in why or "ET_DYN" in why
             else "a truncated download, a text stub (a linker script), or not a library at all")  # fmt: skip
    return [f"The loader found {err['lib']} but it is not a usable ELF shared object ({why}): {cause}.",
            "Fixes: replace the file with the library built for the program's architecture; remove the wrong one "
            "from the search path (RPATH, RUNPATH, LD_LIBRARY_PATH) if another is meant."]  # fmt: skip


def _exec_format(err: dict[str, Any], ctx: Context) -> list[str]:
    lines = [f"The kernel does not know how to run {err.get('prog') or 'the program'}: it is for another "
             "architecture or operating system, or a script without a #! line."]  # fmt: skip
    if ctx.facts:
        os_name = ctx.facts.get("os", {}).get("name", "unknown")
        lines.append(f"The binary is {ctx.facts.get('arch')} ({ctx.facts.get('bits')}-bit) for {os_name}.")
    return lines + [
        "Fixes:",
        "  - build for the machine it runs on (GOARCH/GOOS, a --target triple; binlens scan --arch checks it);",
        "  - or run it under emulation (qemu-user with binfmt_misc, docker --platform).",
    ]


def _not_started(err: dict[str, Any], ctx: Context) -> list[str]:
    prog = err.get("prog", "the program")
    if not ctx.facts and err.get("interp"):  # (bash before 5.1: `bad ELF interpreter`, the loader named)
        return [f"{prog} exists, but its interpreter {err['interp']} (PT_INTERP, the dynamic loader) is not in the "
                "system it ran on: the kernel fails before any loader runs.",
                "Fixes:",
                "  - a glibc program on a musl system (Alpine) or in a scratch image, or a 64-bit program on a "
                "32-bit-only system: build it statically (CGO_ENABLED=0 for Go, -static, or musl), or install "
                "the C library it needs;",
                "  - binlens explain again with --binary PROGRAM (and --sysroot for a container's root) checks the "
                "interpreter against that root."]
    if not ctx.facts:
        return [
            f"{prog} could not be started: either the file is not there, or it is (a dynamically linked program)"
            " and its interpreter (PT_INTERP, the dynamic loader) is not: the kernel reports both as 'No such file"
            " or directory'.",
            "Check: ls -l the program; readelf -l it for the interpreter ([Requesting program interpreter]); or run"
            " binlens explain again with --binary PROGRAM (and --sysroot for a container's root).",
            "Fixes for a missing interpreter:",
            "  - a glibc program on Alpine (musl) or in a scratch image: build it statically or for musl;",
            "  - for Go: CGO_ENABLED=0; a script: fix its #! line (CRLF line ends make it look for 'sh\\r').",
        ]
    interp = ctx.facts.get("interpreter")
    found = bool(ctx.deps and ctx.deps["interpreter"]["found"])
    from analyzer.facts.linkage import psabi_loader_of

    std = psabi_loader_of(ctx.facts) if ctx.facts.get("libc") == "glibc" else None
    if interp and not found and std and interp != std:
        return [
            f"The program exists, but it asks the kernel for its loader at {interp}, where glibc distributions do "
            f"not put it (glibc's loader for this architecture is {std}): a Nix or Guix store path, a toolchain's "
            "own directory, or a mistyped -Wl,--dynamic-linker. The kernel fails before any loader runs, and says "
            "the file is missing.",
            "Fixes:",
            f"  - set the standard loader after the build: `patchelf --set-interpreter {std} PROGRAM`;",
            "  - or link with the toolchain's default loader (no --dynamic-linker), or statically.",
        ]
    if interp and not found:
        return [
            f"The program exists, but its interpreter {interp} is not in the system it ran on: the kernel fails"
            " before any loader runs, and says the file is missing.",
            "Fixes:",
            f"  - {'a glibc program on a musl system or a scratch image' if 'ld-linux' in interp else 'the loader it names is not installed'}:"
            " build it statically (CGO_ENABLED=0 for Go, -static, or musl), or install the C library it needs;",
            "  - check the build's target: binlens scan shows the interpreter and libc.",
        ]
    what = f"its interpreter {interp} is present" if interp else "it needs no interpreter (statically linked)"
    return [
        f"The binary given is fine to start here: {what}. So the path run was not this file: check the path "
        "and the working directory (a missing ./, a volume not mounted, a file copied to another place), or a"
        " script's #! line.",
    ]


def _kernel_too_old(err: dict[str, Any], ctx: Context) -> list[str]:
    kernel = ((ctx.facts.get("elf") or {}).get("abi_tag") or {}).get("kernel")
    return [
        "glibc refused to start: the running kernel is older than the one the C library was configured for"
        + (f" ({kernel}, the binary's .note.ABI-tag)." if kernel else " (the binary's .note.ABI-tag)."),
        "Fixes: link against a glibc built for an older kernel (the target's own toolchain or a sysroot of it),"
        " or run on a newer kernel.",
    ]


def _exec_stack(err: dict[str, Any], ctx: Context) -> list[str]:
    lib = err["lib"]
    lines = [f"{lib} asks for an executable stack (its PT_GNU_STACK has the X flag, or it has none on an "
             "architecture whose default stack is executable), and dlopen would not make the process's stack "
             "executable, so the module (an extension module, an addon, a plugin) was not loaded."]
    if err.get("why") == "Permission denied":
        lines.append("Permission denied: the system forbids executable stacks (SELinux's execmem or a hardened "
                     "kernel), whatever the glibc release.")
    else:
        lines.append("Invalid argument: glibc 2.41 and later refuse such a module in dlopen (Debian 13, Fedora "
                     "42, Ubuntu 25.04 and later); glibc 2.40 and older made the stack executable and loaded it.")
    if ctx.facts:
        from analyzer.facts.linkage import exec_stack_wanted_of

        stack = (ctx.facts.get("loader") or {}).get("gnu_stack")
        wants = exec_stack_wanted_of(ctx.facts)
        said = "no PT_GNU_STACK" if stack is None else "PT_GNU_STACK with the X flag" if stack.get("executable") \
            else "a PT_GNU_STACK without the X flag"
        lines.append(f"{ctx.binary} has {said}: " + ("it is the object that asks." if wants else
                     "it does not ask itself; a library it loads does (binlens deps names it)."))
    lines += [
        "Fixes:",
        "  - relink with -Wl,-z,noexecstack (assembly sources need `.section .note.GNU-stack,\"\",@progbits`);",
        "  - or clear the flag in the built file: `patchelf --clear-execstack FILE` (patchelf 0.18+) or "
        "`execstack -c FILE`;",
        "  - as a stopgap only, GLIBC_TUNABLES=glibc.rtld.execstack=2 loads it again where the glibc has that "
        "setting (`ld.so --list-tunables` shows glibc.rtld.execstack with max 2: Debian 13's does).",
    ]
    return lines


def _page_size(err: dict[str, Any], ctx: Context) -> list[str]:
    lib = err["lib"]
    if err["why"] == "address/offset not properly aligned":
        lines = [f"{lib}'s PT_LOAD alignment (p_align) claims more than its segments keep: glibc before 2.35 wants "
                 "each segment's address and offset congruent modulo its p_align (a segment patchelf 0.18 added is "
                 "the known cause); glibc 2.35 and later load it."]
    else:
        lines = [f"{lib} is laid out for smaller pages than the running kernel uses (`getconf PAGESIZE`): its "
                 "PT_LOAD segments' addresses and offsets (before glibc 2.35, their alignment too) are not multiples "
                 "of the page size, so the loader cannot map it. aarch64 kernels use 4, 16 or 64 KiB pages (RHEL 8's "
                 "64 KiB, Apple-silicon machines 16 KiB), ppc64le kernels 64 KiB."]
    page = (ctx.facts.get("loader") or {}).get("page_size_max") if ctx.facts else None
    if page:
        lines.append(f"{ctx.binary} is laid out for pages of at most {page // 1024} KiB.")
    lines += [
        "Fixes:",
        "  - relink with -Wl,-z,max-page-size=65536 (the default of GNU ld and lld on aarch64 and ppc64: a flag "
        "setting 4096 is the usual cause);",
        "  - a library an old patchelf rewrote (auditwheel repair before patchelf 0.12): repair it again with a "
        "current patchelf, which aligns what it adds to the architecture's largest page.",
    ]
    return lines


EXPLAIN = {
    "missing-library": _missing_library,
    "missing-version": _missing_version,
    "no-version-info": _no_version_info,
    "weak-version": _weak_version,
    "libc-early-init": _libc_early_init,
    "relr-unannounced": _relr_unannounced,
    "static-tls": _static_tls,
    "map-segment": _map_segment,
    "textrel": _textrel,
    "unversioned-assert": _unversioned_assert,
    "copy-size": _copy_size,
    "illegal-instruction": _illegal_instruction,
    "dyld-missing-library": _dyld_missing_library,
    "dyld-symbol": _dyld_symbol,
    "windows-missing-dll": _windows_missing_dll,
    "windows-entry-point": _windows_entry_point,
    "windows-bad-image": _windows_bad_image,
    "windows-dll-load": _windows_dll_load,
    "undefined-symbol": _undefined_symbol,
    "bad-library": _bad_library,
    "exec-format": _exec_format,
    "not-started": _not_started,
    "kernel-too-old": _kernel_too_old,
    "exec-stack": _exec_stack,
    "page-size": _page_size,
}
