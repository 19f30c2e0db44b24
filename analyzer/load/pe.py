"""Reading PE/COFF: one bounded reader for every PE fact, the size facts and the Go build info.

Names follow the Microsoft PE format specification ("PE Format", learn.microsoft.com),
so the spec and the code read side by side. `PEFile(data, path)` checks, before
anything else reads the file, that every header, section and table it claims
lies inside the file, and raises one `AnalyzerError` naming the problem when
not. Every count read from the file is bounded before it is used.
"""

from __future__ import annotations

import struct
from functools import cached_property

from analyzer.errors import AnalyzerError, name_text, require
from analyzer.load.elf import Buffer
from analyzer.records import Record

TYPE_CHECKING = False  # typing is not imported at run time (analyzer/records.py says why)
if TYPE_CHECKING:
    from typing import Any

PE_SIGNATURE = b"PE\0\0"
PE32_MAGIC, PE32PLUS_MAGIC = 0x10B, 0x20B
IMAGE_FILE_DLL = 0x2000
SECTION_HEADER_SIZE = 40
COFF_SYMBOL_SIZE = 18

# data directory indexes (Optional Header Data Directories)
DIR_EXPORT, DIR_IMPORT, DIR_RESOURCE, DIR_EXCEPTION, DIR_SECURITY, DIR_BASERELOC, DIR_DEBUG = range(7)
DIR_LOAD_CONFIG, DIR_DELAY_IMPORT = 10, 13

MAX_DLLS = 4096  # import descriptors read before the table is taken as hostile
MAX_THUNKS = 1 << 16  # names imported from one DLL
MAX_IMPORTS = 1 << 18  # names imported in all (4,096 descriptors naming one table of 65,536 took minutes, GBs)
MAX_NAME = 4096  # bytes of one imported name
MAX_DEBUG_ENTRIES = 64

# IMAGE_FILE_MACHINE_* -> the spec's name without the prefix
MACHINE_NAMES = {
    0x0: "UNKNOWN", 0x184: "ALPHA", 0x284: "ALPHA64", 0x1D3: "AM33", 0x8664: "AMD64", 0x1C0: "ARM",
    0x1C4: "ARMNT", 0xAA64: "ARM64", 0xEBC: "EBC", 0x14C: "I386", 0x200: "IA64", 0x6232: "LOONGARCH32",
    0x6264: "LOONGARCH64", 0x9041: "M32R", 0x266: "MIPS16", 0x366: "MIPSFPU", 0x466: "MIPSFPU16",
    0x1F0: "POWERPC", 0x1F1: "POWERPCFP", 0x1F2: "POWERPCBE", 0x166: "R4000", 0x1A2: "SH3", 0x1A3: "SH3DSP",
    0x1A6: "SH4", 0x1A8: "SH5", 0x1C2: "THUMB", 0x169: "WCEMIPSV2", 0xA641: "ARM64EC", 0xA64E: "ARM64X",
    0x3A64: "CHPE_X86", 0x5032: "RISCV32", 0x5064: "RISCV64", 0x5128: "RISCV128",
}  # fmt: skip
# IMAGE_SUBSYSTEM_* -> the spec's name without the prefix
SUBSYSTEM_NAMES = {
    0: "UNKNOWN", 1: "NATIVE", 2: "WINDOWS_GUI", 3: "WINDOWS_CUI", 5: "OS2_CUI", 7: "POSIX_CUI",
    8: "NATIVE_WINDOWS", 9: "WINDOWS_CE_GUI", 10: "EFI_APPLICATION", 11: "EFI_BOOT_SERVICE_DRIVER",
    12: "EFI_RUNTIME_DRIVER", 13: "EFI_ROM", 14: "XBOX", 16: "WINDOWS_BOOT_APPLICATION", 17: "XBOX_CODE_CATALOG",
}  # fmt: skip


class PESection(Record):
    """One section header; `name` has a "/N" long name looked up in the COFF string table."""

    index: int  # type: ignore[assignment]  # a field: tuple.index is not used on it
    name_bytes: bytes
    virtual_size: int
    virtual_address: int
    size_of_raw_data: int
    pointer_to_raw_data: int
    characteristics: int

    @property
    def name(self) -> str:
        return name_text(self.name_bytes)


class OptionalHeader(Record):
    """The fields of the optional header binlens reads (PE32 and PE32+ alike)."""

    magic: int
    image_base: int
    section_alignment: int
    file_alignment: int
    major_operating_system_version: int
    minor_operating_system_version: int
    major_subsystem_version: int
    minor_subsystem_version: int
    subsystem: int
    dll_characteristics: int


class PEFile:
    """A PE image read from a buffer: COFF header, optional header, data directories, sections."""

    def __init__(self, data: Buffer, path: str = "") -> None:
        self.data = data
        self.path = path
        size = self.size = len(data)
        require(size >= 64, path, f"truncated DOS header ({size} bytes)")
        self.e_lfanew = lfanew = struct.unpack_from("<I", data, 0x3C)[0]
        require(lfanew + 24 <= size, path, f"truncated: PE header at {lfanew:#x} is past end of file (size {size})")
        require(data[lfanew : lfanew + 4] == PE_SIGNATURE, path, "not a PE file (MZ header without a PE signature)")
        coff = struct.unpack_from("<HHIIIHH", data, lfanew + 4)
        self.machine, self.number_of_sections, _, self.pointer_to_symbol_table = coff[:4]
        self.number_of_symbols, self.size_of_optional_header, self.characteristics = coff[4:]
        opt = self.optional_header_offset = lfanew + 24
        opt_size = self.size_of_optional_header
        require(opt + opt_size <= size, path, f"truncated optional header (size {size})")
        require(opt_size >= 2, path, "missing optional header")
        magic = struct.unpack_from("<H", data, opt)[0]
        require(magic in (PE32_MAGIC, PE32PLUS_MAGIC), path, f"bad optional header magic {magic:#x}")
        self.pe32plus = magic == PE32PLUS_MAGIC
        self.section_table_offset = table = opt + opt_size
        nsec = self.number_of_sections
        require(
            table + SECTION_HEADER_SIZE * nsec <= size,
            path,
            f"truncated: {nsec} section headers end past end of file (size {size})",
        )
        self.optional_header = self._optional_header(opt, opt_size, magic)
        self.data_directories = self._data_directories(opt, opt_size)
        self.coff_string_table = self._coff_string_table()
        self.sections = [self._section(i) for i in range(nsec)]
        for s in self.sections:
            if s.size_of_raw_data and s.pointer_to_raw_data + s.size_of_raw_data > size:
                raise AnalyzerError(
                    f"truncated: section {s.index} ({s.pointer_to_raw_data:#x}+{s.size_of_raw_data:#x}) "
                    f"ends past end of file (size {size})",
                    path,
                )
        cert_off, cert_size = self.directory(DIR_SECURITY)  # the one directory addressed by file offset
        if cert_size and cert_off + cert_size > size:
            raise AnalyzerError(
                f"truncated: certificate table ({cert_off:#x}+{cert_size:#x}) ends past end of file (size {size})", path
            )

    # ---------------------------------------------------------------- headers

    def _optional_header(self, opt: int, opt_size: int, magic: int) -> OptionalHeader:
        d = self.data
        # fields past a short optional header read as 0, as LIEF and the loader treat them
        head = bytes(d[opt : opt + min(opt_size, 96 if magic == PE32_MAGIC else 112)]).ljust(112, b"\0")
        if magic == PE32_MAGIC:
            image_base = struct.unpack_from("<I", head, 28)[0]
        else:
            image_base = struct.unpack_from("<Q", head, 24)[0]
        sect_align, file_align, os_major, os_minor, _, _, sub_major, sub_minor = struct.unpack_from(
            "<IIHHHHHH", head, 32
        )
        subsystem, dll_chars = struct.unpack_from("<HH", head, 68)
        return OptionalHeader(magic, image_base, sect_align, file_align, os_major, os_minor, sub_major, sub_minor,
                              subsystem, dll_chars)  # fmt: skip

    def _data_directories(self, opt: int, opt_size: int) -> list[tuple[int, int]]:
        count_at, dirs_at = (opt + 92, opt + 96) if not self.pe32plus else (opt + 108, opt + 112)
        end = opt + opt_size
        if count_at + 4 > end:
            return []
        count = min(struct.unpack_from("<I", self.data, count_at)[0], 16, max(0, (end - dirs_at) // 8))
        return [struct.unpack_from("<II", self.data, dirs_at + 8 * i) for i in range(count)]

    def directory(self, index: int) -> tuple[int, int]:
        """(RVA, size) of a data directory; (0, 0) when the header has no such entry."""
        return self.data_directories[index] if index < len(self.data_directories) else (0, 0)

    def _coff_string_table(self) -> bytes:
        """The COFF string table after the symbol table (long section names, symbol names); b"" without."""
        if not self.pointer_to_symbol_table:
            return b""
        at = self.pointer_to_symbol_table + COFF_SYMBOL_SIZE * self.number_of_symbols
        require(
            at + 4 <= self.size,
            self.path,
            f"truncated: COFF symbol table at {self.pointer_to_symbol_table:#x} ends past end of file "
            f"(size {self.size})",
        )
        length = struct.unpack_from("<I", self.data, at)[0]
        require(
            at + length <= self.size,
            self.path,
            f"truncated: COFF string table at {at:#x} ends past end of file (size {self.size})",
        )
        return bytes(self.data[at : at + length])

    @property
    def coff_string_table_offset(self) -> int | None:
        if not self.pointer_to_symbol_table:
            return None
        return self.pointer_to_symbol_table + COFF_SYMBOL_SIZE * self.number_of_symbols

    def _section(self, i: int) -> PESection:
        at = self.section_table_offset + SECTION_HEADER_SIZE * i
        raw = bytes(self.data[at : at + 8]).rstrip(b"\0")
        names = self.coff_string_table
        if raw.startswith(b"/") and raw[1:].isdigit() and int(raw[1:]) < len(names):
            off = int(raw[1:])
            end = names.find(b"\0", off)
            long_name = names[off : end if end >= 0 else len(names)]
            raw = long_name or raw
        vsize, va, raw_size, raw_ptr = struct.unpack_from("<IIII", self.data, at + 8)
        chars = struct.unpack_from("<I", self.data, at + 36)[0]
        return PESection(i, raw, vsize, va, raw_size, raw_ptr, chars)

    @property
    def is_dll(self) -> bool:
        return bool(self.characteristics & IMAGE_FILE_DLL)

    @property
    def machine_name(self) -> str:
        return MACHINE_NAMES.get(self.machine, f"UNKNOWN_{self.machine:#x}")

    @property
    def subsystem_name(self) -> str:
        sub = self.optional_header.subsystem
        return SUBSYSTEM_NAMES.get(sub, f"UNKNOWN_{sub}")

    # ---------------------------------------------------------------- addresses

    def rva_to_offset(self, rva: int) -> int | None:
        """The file offset of an RVA, through the section that maps it; None when no section does."""
        for s in self.sections:
            if s.virtual_address <= rva < s.virtual_address + max(s.virtual_size, s.size_of_raw_data):
                off = s.pointer_to_raw_data + (rva - s.virtual_address)
                return off if off < self.size else None
        return None

    def _cstring(self, rva: int, limit: int = MAX_NAME) -> str | None:
        off = self.rva_to_offset(rva)
        if off is None:
            return None
        end = self.data.find(b"\0", off, min(self.size, off + limit))
        if end < 0:
            return None
        return name_text(bytes(self.data[off:end]))

    def _u32(self, off: int) -> int | None:
        return struct.unpack_from("<I", self.data, off)[0] if 0 <= off and off + 4 <= self.size else None

    # ---------------------------------------------------------------- imports

    def _thunk_names(self, table_rva: int, room: int = MAX_THUNKS) -> list[str]:
        """The names (or "ordinal N") of an import lookup table (at most `room` + 1 of them, MAX_THUNKS)."""
        width = 8 if self.pe32plus else 4
        ordinal_flag = 1 << (width * 8 - 1)
        out: list[str] = []
        off = self.rva_to_offset(table_rva)
        most = min(MAX_THUNKS, room + 1)
        while off is not None and off + width <= self.size and len(out) < most:
            value = struct.unpack_from("<Q" if width == 8 else "<I", self.data, off)[0]
            if value == 0:
                break
            if value & ordinal_flag:
                out.append(f"ordinal {value & 0xFFFF}")
            else:
                name = self._cstring((value & 0x7FFFFFFF) + 2)  # after the 2-byte hint
                if name is None:
                    break
                out.append(name)
            off += width
        return out

    def _import_descriptors(self, index: int, entry_size: int, read: Any) -> dict[str, list[str]]:
        """DLL name -> names, over the descriptor array of data directory `index`; `read(offset)` gives a
        descriptor's (name RVA, lookup table RVA), or None for the all-zero terminator."""
        rva, size = self.directory(index)
        out: dict[str, list[str]] = {}
        off = self.rva_to_offset(rva) if rva and size else None
        total = 0
        for _ in range(MAX_DLLS):
            if off is None or off + entry_size > self.size:
                break
            descriptor = read(off)
            if descriptor is None:
                break
            name_rva, table_rva = descriptor
            dll = self._cstring(name_rva)
            if dll is None:
                break
            names = self._thunk_names(table_rva, MAX_IMPORTS - total) if table_rva else []
            total += len(names)
            if total > MAX_IMPORTS:
                raise AnalyzerError(f"more than {MAX_IMPORTS} imported names (descriptors naming the same table "
                                    "over and over?)", self.path)
            out.setdefault(dll, []).extend(names)
            off += entry_size
        return out

    @cached_property
    def imports(self) -> dict[str, list[str]]:
        """DLL name -> imported names, from the import directory (the lookup table, else the address table)."""

        def read(off: int) -> tuple[int, int] | None:
            lookup, _, _, name_rva, address = struct.unpack_from("<IIIII", self.data, off)
            return (name_rva, lookup or address) if lookup or name_rva or address else None

        return self._import_descriptors(DIR_IMPORT, 20, read)

    @cached_property
    def delay_imports(self) -> dict[str, list[str]]:
        """DLL name -> names, from the delay-load import directory."""

        def read(off: int) -> tuple[int, int] | None:
            attributes, name_rva, _, address, names = struct.unpack_from("<IIIII", self.data, off)
            if not (name_rva or address or names):
                return None
            base = 0 if attributes & 1 else self.optional_header.image_base  # version 1 descriptors hold VAs
            return name_rva - base, (names - base if names else 0)

        return self._import_descriptors(DIR_DELAY_IMPORT, 32, read)

    # ---------------------------------------------------------------- load config

    def load_config(self) -> dict[str, int | None] | None:
        """SecurityCookie, SEHandlerTable, SEHandlerCount and GuardFlags of IMAGE_LOAD_CONFIG_DIRECTORY (a field
        its Size does not reach is None); None when there is no load config or it lies outside the file."""
        rva, size = self.directory(DIR_LOAD_CONFIG)
        off = self.rva_to_offset(rva) if rva and size else None
        if off is None or off + 4 > self.size:
            return None
        declared = struct.unpack_from("<I", self.data, off)[0]
        length = min(declared, size if size >= 4 else declared, self.size - off)
        # field -> (offset in PE32, offset in PE32+, width in PE32, width in PE32+)
        layout = {"security_cookie": (0x3C, 0x58, 4, 8), "se_handler_table": (0x40, 0x60, 4, 8),
                  "se_handler_count": (0x44, 0x68, 4, 8), "guard_flags": (0x58, 0x90, 4, 4)}  # fmt: skip
        out: dict[str, int | None] = {"size": declared}
        for name, (at32, at64, w32, w64) in layout.items():
            at, width = (at64, w64) if self.pe32plus else (at32, w32)
            out[name] = (
                struct.unpack_from("<Q" if width == 8 else "<I", self.data, off + at)[0]
                if at + width <= length
                else None
            )
        return out

    # ---------------------------------------------------------------- debug directory

    def debug_entries(self) -> list[tuple[int, int, int]]:
        """(type, size of data, file offset of data) of each IMAGE_DEBUG_DIRECTORY entry."""
        rva, size = self.directory(DIR_DEBUG)
        out: list[tuple[int, int, int]] = []
        for i in range(min(size // 28, MAX_DEBUG_ENTRIES)):
            entry = self.rva_to_offset(rva + 28 * i)
            if entry is None or entry + 28 > self.size:
                break
            dtype, dsize, _, raw_ptr = struct.unpack_from("<IIII", self.data, entry + 12)
            out.append((dtype, dsize, raw_ptr))
        return out

    @property
    def overlay_offset(self) -> int:
        """Where the bytes no section maps start (the certificate table and appended data lie there)."""
        ends = [s.pointer_to_raw_data + s.size_of_raw_data for s in self.sections if s.size_of_raw_data]
        return max(ends, default=self.section_table_offset + SECTION_HEADER_SIZE * self.number_of_sections)
