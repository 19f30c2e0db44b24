"""Mach-O facts: cputype, filetype, dylibs, minimum OS and SDK, sections."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from analyzer.load import Artifact
from analyzer.load.macho import CPU_TYPE_NAMES, MACHO_MAGICS, command_string, segment_names

if TYPE_CHECKING:
    from analyzer.facts import Context

MACHO_ARCH = {
    "x86_64": "x86_64",
    "i386": "i386",
    "arm64": "aarch64",
    "arm": "arm",
    "arm64_32": "arm64_32",
    "ppc": "ppc",
    "ppc64": "ppc64",
}
# load command -> how the dylib is linked
DYLIB_KIND = {0xC: "load", 0x80000018: "weak", 0x8000001F: "reexport", 0x20: "lazy", 0x80000023: "upward"}
FILETYPES = {
    1: "MH_OBJECT",
    2: "MH_EXECUTE",
    3: "MH_FVMLIB",
    4: "MH_CORE",
    5: "MH_PRELOAD",
    6: "MH_DYLIB",
    7: "MH_DYLINKER",
    8: "MH_BUNDLE",
    9: "MH_DYLIB_STUB",
    10: "MH_DSYM",
    11: "MH_KEXT_BUNDLE",
    12: "MH_FILESET",
}
# LC_VERSION_MIN_* -> platform
VERSION_MIN_PLATFORM = {0x24: "macos", 0x25: "ios", 0x2F: "tvos", 0x30: "watchos"}


def _version(v: list[int] | tuple[int, ...]) -> str:
    parts = list(v)
    while len(parts) > 2 and parts[-1] == 0:
        parts.pop()
    return ".".join(str(p) for p in parts)


def facts(art: Artifact) -> dict[str, Any]:
    """arch, bits, endian and the `macho` block for one (thin) Mach-O artifact."""
    b = art.binary
    h = b.header
    magic = art.data[:4]
    order, bits = MACHO_MAGICS[bytes(magic)]
    cputype = int(h.cpu_type) & 0xFFFFFFFF
    cpu = CPU_TYPE_NAMES.get(cputype, f"cpu{cputype:#x}")
    dylibs = [
        {
            "name": command_string(lib, order),
            "kind": DYLIB_KIND.get(int(lib.command) & 0xFFFFFFFF, "load"),
            "current_version": _version(lib.current_version),
            "compatibility_version": _version(lib.compatibility_version),
        }
        for lib in b.libraries
    ]
    platform = minos = sdk = None
    if b.has_build_version:
        bv = b.build_version
        platform = str(bv.platform).rsplit(".", 1)[-1].lower()
        minos, sdk = _version(bv.minos), _version(bv.sdk)
    elif b.has_version_min:
        vm = b.version_min
        platform = VERSION_MIN_PLATFORM.get(int(vm.command) & 0xFFFFFFFF)
        minos, sdk = _version(vm.version), _version(vm.sdk)
    return {
        "arch": MACHO_ARCH.get(cpu, cpu),
        "bits": bits,
        "endian": "little" if magic[0] in (0xCE, 0xCF) else "big",
        "macho": {
            "cputype": cpu,
            "cputype_value": cputype,
            "cpusubtype": int(h.cpu_subtype),
            "filetype": FILETYPES.get(int(h.file_type), str(int(h.file_type))),
            "dylibs": dylibs,
            "rpaths": [command_string(r, order) for r in b.rpaths],
            "platform": platform,
            "minos": minos,
            "sdk": sdk,
            "uuid": bytes(b.uuid.uuid).hex() if b.has_uuid else None,
        },
        "sections": [
            {
                "segment": names[i][0] if i < len(names) else "",
                "name": names[i][1] if i < len(names) else "",
                "offset": s.offset,
                "size": 0 if int(s.type) in (0x1, 0xC, 0x12) else s.size,
                "address": s.virtual_address,
            }
            for seg in b.segments
            for names in [segment_names(seg, bits)[1]]
            for i, s in enumerate(seg.sections)
        ],
    }


def provide(art: Artifact, known: dict[str, Any], context: Context) -> dict[str, Any]:
    return facts(art)
