"""PE facts: machine, subsystem, imports, minimum OS version, sections."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from analyzer.load import Artifact
from analyzer.load.pe import PEFile

if TYPE_CHECKING:
    from analyzer.facts import Context

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


def facts(art: Artifact) -> dict[str, Any]:
    """arch, bits, endian and the `pe` block for one PE artifact."""
    pe: PEFile = art.binary
    opt = pe.optional_header
    return {
        "arch": PE_ARCH.get(pe.machine, f"pe{pe.machine:#x}"),
        "bits": 64 if pe.pe32plus else 32,
        "endian": "little",
        "pe": {
            "machine": pe.machine_name,
            "machine_value": pe.machine,
            "format": "PE32+" if pe.pe32plus else "PE32",
            "subsystem": pe.subsystem_name,
            "dll": pe.is_dll,
            "min_os_version": f"{opt.major_operating_system_version}.{opt.minor_operating_system_version}",
            "min_subsystem_version": f"{opt.major_subsystem_version}.{opt.minor_subsystem_version}",
            "imports": pe.imports,
            "delay_imports": pe.delay_imports,
        },
        "sections": [
            {
                "name": s.name,
                "offset": s.pointer_to_raw_data,
                "size": s.size_of_raw_data,
                "virtual_address": s.virtual_address,
                "virtual_size": s.virtual_size,
                "characteristics": s.characteristics,
            }
            for s in pe.sections
        ],
    }


def provide(art: Artifact, known: dict[str, Any], context: Context) -> dict[str, Any]:
    return facts(art)
