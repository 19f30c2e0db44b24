"""PE facts: machine, subsystem, imports, minimum OS version, sections."""

from __future__ import annotations

import struct
from typing import Any

from analyzer.formats import Artifact

# IMAGE_FILE_MACHINE_* -> the architecture names used for ELF too.
PE_ARCH = {
    0x14C: "i386",
    0x8664: "x86_64",
    0xAA64: "aarch64",
    0x1C0: "arm",
    0x1C4: "arm",
    0x5064: "riscv64",
    0x6264: "loongarch64",
    0x200: "ia64",
    0xA641: "arm64ec",
}


def _section_name(section: Any) -> str:
    """The section's name, with a "/N" long name looked up in the COFF string table."""
    coff = section.coff_string
    return coff.string if coff is not None and coff.string else section.name


def facts(art: Artifact) -> dict[str, Any]:
    """arch, bits, endian and the `pe` block for one PE artifact."""
    b = art.binary
    d = art.data
    lfanew = struct.unpack_from("<I", d, 0x3C)[0]
    machine = struct.unpack_from("<H", d, lfanew + 4)[0]
    opt = b.optional_header
    pe32plus = struct.unpack_from("<H", d, lfanew + 24)[0] == 0x20B
    imports: dict[str, list[str]] = {}
    for imp in b.imports:
        names = imports.setdefault(imp.name, [])
        for entry in imp.entries:
            names.append(f"ordinal {entry.ordinal}" if entry.is_ordinal else entry.name)
    delay: dict[str, list[str]] = {}
    for imp in b.delay_imports:
        names = delay.setdefault(imp.name, [])
        for entry in imp.entries:
            names.append(f"ordinal {entry.ordinal}" if entry.is_ordinal else entry.name)
    return {
        "arch": PE_ARCH.get(machine, f"pe{machine:#x}"),
        "bits": 64 if pe32plus else 32,
        "endian": "little",
        "pe": {
            "machine": str(b.header.machine).rsplit(".", 1)[-1],
            "machine_value": machine,
            "format": "PE32+" if pe32plus else "PE32",
            "subsystem": str(opt.subsystem).rsplit(".", 1)[-1],
            "dll": bool(struct.unpack_from("<H", d, lfanew + 22)[0] & 0x2000),
            "min_os_version": f"{opt.major_operating_system_version}.{opt.minor_operating_system_version}",
            "min_subsystem_version": f"{opt.major_subsystem_version}.{opt.minor_subsystem_version}",
            "imports": imports,
            "delay_imports": delay,
        },
        "sections": [
            {
                "name": _section_name(s),
                "offset": s.pointerto_raw_data,
                "size": s.sizeof_raw_data,
                "virtual_address": s.virtual_address,
                "virtual_size": s.virtual_size,
                "characteristics": s.characteristics,
            }
            for s in b.sections
        ],
    }
