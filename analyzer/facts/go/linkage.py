"""Go-specific linkage facts: cgo, netgo/osusergo, internal or external linking, static glibc, arch levels."""

from __future__ import annotations

import re
from typing import Any

from analyzer.load import Artifact
from analyzer.load.elf import ELFFile, find

ARCH_LEVEL_KEYS = ("GOAMD64", "GOARM", "GOARM64", "GO386", "GOMIPS", "GOMIPS64", "GOPPC64", "GORISCV64", "GOWASM")
# glibc's tunables name themselves in every static glibc (2.26+); musl has none of them
LIBC_NAMES = ("libc.so.6", "libpthread.so.0", "libc.so", "libSystem.B.dylib", "msvcrt.dll", "ucrtbase.dll")


def _ldflag(ldflags: str, name: str) -> str | None:
    """The value of -name in an -ldflags string (quoted values taken whole)."""
    m = re.search(rf"(?:^|\s)-{name}[= ](?:'([^']*)'|\"([^\"]*)\"|(\S+))", ldflags)
    return next((g for g in m.groups() if g is not None), None) if m else None


# GOARCH -> the architecture names binlens reports for the header
GOARCH_ARCH = {"amd64": "x86_64", "386": "i386", "arm64": "aarch64", "arm": "arm", "riscv64": "riscv64",
               "ppc64le": "ppc64le", "ppc64": "ppc64", "s390x": "s390x", "mips64le": "mips64el", "mips64": "mips64",
               "mipsle": "mipsel", "mips": "mips", "loong64": "loongarch64", "wasm": "wasm"}  # fmt: skip
GOOS_FORMATS = {"linux": "ELF", "freebsd": "ELF", "netbsd": "ELF", "openbsd": "ELF", "android": "ELF",
                "dragonfly": "ELF", "solaris": "ELF", "illumos": "ELF", "windows": "PE", "darwin": "MachO",
                "ios": "MachO"}  # fmt: skip


def header_mismatch(art: Artifact, facts: dict[str, Any], settings: dict[str, str]) -> list[str]:
    """Where GOOS/GOARCH in the build info disagree with the binary's own header (a mis-set GOARCH)."""
    out = []
    goarch, goos = settings.get("GOARCH"), settings.get("GOOS")
    if goarch in GOARCH_ARCH and GOARCH_ARCH[goarch] != facts.get("arch"):
        out.append(f"GOARCH={goarch} but the header says {facts.get('arch')}")
    if goos in GOOS_FORMATS and GOOS_FORMATS[goos] != art.format:
        out.append(f"GOOS={goos} but the file is {art.format}")
    return out


def _external_linker_marks(art: Artifact, facts: dict[str, Any], comment: bytes | None) -> bool:
    """What the C toolchain leaves and Go's internal linker never writes: a .comment naming GCC or clang, the
    C runtime's .note.ABI-tag, or crt1.o's import of __libc_start_main (stripped files keep the last two)."""
    if comment and re.search(rb"GCC:|clang", comment):
        return True
    if (facts.get("elf") or {}).get("abi_tag"):
        return True
    return _imports(art, "__libc_start_main")


def _imports(art: Artifact, name: str) -> bool:
    """Whether the ELF file imports `name` (an undefined dynamic symbol): read here, not from the symbol-version
    facts, so that the `go` facts need only the headers (deps and os need them; they need no symbol list)."""
    elf: ELFFile = art.binary
    return elf.dynstr_has(name.encode()) and any(n == name for _, n, _ in elf.undefined_symbols())


def facts(art: Artifact, facts: dict[str, Any], go: dict[str, Any]) -> dict[str, Any]:
    """The `go.linkage` facts, from the build settings and from evidence in the binary itself."""
    settings = go.get("settings", {})
    tags = [t for t in settings.get("-tags", "").split(",") if t]
    ldflags = settings.get("-ldflags", "")
    evidence: list[str] = []
    if settings.get("CGO_ENABLED") == "1":
        evidence.append("CGO_ENABLED=1")
    libc_imports = [n for n in facts.get("needed", []) if n in LIBC_NAMES]
    evidence += [f"imports {n}" for n in libc_imports]
    comment = None
    static_glibc = False
    if art.format == "ELF":
        elf: ELFFile = art.binary
        strtab = next((s for s in elf.sections if s.name == ".strtab"), None)
        if (
            strtab is not None
            and find(art.data, b"\0x_cgo_init\0", strtab.sh_offset, strtab.sh_offset + strtab.sh_size) >= 0
        ):
            evidence.append("x_cgo_init symbol (runtime/cgo)")
        sec = next((s for s in elf.sections if s.name == ".comment"), None)
        if sec is not None:
            comment = bytes(art.data[sec.sh_offset : sec.sh_offset + min(sec.sh_size, 4096)]).replace(b"\0", b"\n")
        # only cgo links a C library; the linkage facts tell static glibc from its crt note and tunables
        if evidence and facts.get("linkage") in ("static", "static-pie") and facts.get("libc") == "glibc":
            static_glibc = True
            evidence.append("static glibc")
    cgo = bool(evidence)
    mode = _ldflag(ldflags, "linkmode")
    if mode is None and art.format == "ELF":
        mode = "external" if _external_linker_marks(art, facts, comment) else "internal"
    extld = _ldflag(ldflags, "extldflags") or ""
    return {
        "cgo": cgo,
        "cgo_evidence": evidence,
        "tags": tags,
        "netgo": "netgo" in tags,
        "osusergo": "osusergo" in tags,
        "link_mode": mode,
        "extldflags_static": "-static" in extld,
        "static_glibc": static_glibc,
        "arch_level": {k: settings[k] for k in ARCH_LEVEL_KEYS if k in settings},
        "trimpath": settings.get("-trimpath") == "true",
        "header_mismatch": header_mismatch(art, facts, settings),
        "buildmode": settings.get("-buildmode"),
    }
