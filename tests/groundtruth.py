"""Ground truth from tools others wrote: binutils readelf and objdump, parsed here.

Nothing in this module knows binlens' code; it turns the tools' text output into
plain data that the tests compare with binlens' facts.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def lipo_path() -> str | None:
    """LLVM's lipo (Debian's llvm package names it after the LLVM release)."""
    return shutil.which("llvm-lipo") or shutil.which("llvm-lipo-14") or shutil.which("llvm-lipo-16")


def readelf_path() -> str | None:
    """binutils-multiarch installs a readelf that reads every architecture."""
    return shutil.which("readelf")


@dataclass
class ReadelfFacts:
    interpreter: str | None = None
    needed: list[str] = field(default_factory=list)
    rpath: list[str] = field(default_factory=list)
    runpath: list[str] = field(default_factory=list)
    soname: str | None = None
    version_needs: dict[str, list[str]] = field(default_factory=dict)
    version_index: dict[int, tuple[str, str]] = field(default_factory=dict)
    version_definitions: list[str] = field(default_factory=list)  # the nodes defined, the BASE one left out
    sections: list[tuple[str, str, int, int]] = field(default_factory=list)  # name, type, size, offset
    undefined: list[tuple[str, str | None]] = field(default_factory=list)  # symbol, version
    notes: str = ""
    header: str = ""
    gnu_stack: str | None = None  # the flags column of PT_GNU_STACK ("RW", "RWE"), None when absent
    relro: bool = False
    dyn_flags: list[str] = field(default_factory=list)  # the words of FLAGS and FLAGS_1, and TEXTREL/BIND_NOW tags
    loads: list[tuple[int, int, int]] = field(default_factory=list)  # each PT_LOAD's offset, address, alignment


_SECTION = re.compile(
    r"^\s*\[\s*(\d+)\]\s(.*?)\s+([0-9a-f]{8,16})\s([0-9a-f]{6,})\s([0-9a-f]{6,})\s([0-9a-f]{2})\s"
    r"\s*([A-Za-z]*)\s+(\d+)\s+(\d+)\s+(\d+)$"
)
_DYN = re.compile(r"^\s*0x[0-9a-f]+\s+\((\w+)\)\s+(.*)$")
_VERNEED_FILE = re.compile(r"^\s*(?:0x)?[0-9a-f]+:\s+Version: \d+\s+File: (\S+)\s+Cnt: \d+")
_VERNEED_AUX = re.compile(r"^\s*0x[0-9a-f]+:\s+Name: (\S+)\s+Flags: .*Version: (\d+)$")
_VERDEF = re.compile(r"^\s*(?:0x)?[0-9a-f]+: Rev: \d+\s+Flags: (.*?)\s+Index: \d+\s+Cnt: \d+\s+Name: (\S+)$")
_DYNSYM = re.compile(r"^\s*\d+: [0-9a-f]+\s+\d+\s+\w+\s+(\w+)\s+\w+\s+(\w+)\s+(\S+?)(?: \((\d+)\))?$")


def readelf(path: str, extra: tuple[str, ...] = ()) -> ReadelfFacts:
    """readelf -hlSdVW --dyn-syms -n, parsed into the fields binlens reports."""
    out = subprocess.run(
        ["readelf", "-hlSdVWn", "--dyn-syms", *extra, path],
        capture_output=True,
        text=True,
        errors="replace",
        check=False,
    ).stdout
    facts = ReadelfFacts(notes=out, header=out)
    current_file = None
    in_verneed = False
    in_dynsym = False
    for line in out.splitlines():
        if re.match(r"^\s+GNU_STACK\s", line):
            fields = line.split()  # type, offset, vaddr, paddr, filesz, memsz, flags (1 or 2 words), align
            facts.gnu_stack = "".join(fields[6:-1])
            continue
        if re.match(r"^\s+GNU_RELRO\s", line):
            facts.relro = True
            continue
        if re.match(r"^\s+LOAD\s+0x", line):
            fields = line.split()
            facts.loads.append((int(fields[1], 16), int(fields[2], 16), int(fields[-1], 16)))
            continue
        if "[Requesting program interpreter:" in line:
            facts.interpreter = line.split(": ", 1)[1].rstrip("]")
            continue
        m = _SECTION.match(line)
        if m and not in_dynsym:
            idx = int(m[1])
            if idx == 0:
                continue
            name_type = m[2].strip().split(None, 1)
            name, stype = (name_type[0], name_type[1]) if len(name_type) == 2 else ("", name_type[0])
            size = int(m[5], 16)
            facts.sections.append((name, stype, 0 if stype == "NOBITS" else size, int(m[4], 16)))
            continue
        m = _DYN.match(line)
        if m:
            tag, rest = m[1], m[2]
            value = rest[rest.find("[") + 1 : rest.rfind("]")] if "[" in rest else rest
            if tag == "NEEDED":
                facts.needed.append(value)
            elif tag == "SONAME":
                facts.soname = value
            elif tag == "RPATH":
                facts.rpath.extend(value.split(":"))
            elif tag == "RUNPATH":
                facts.runpath.extend(value.split(":"))
            elif tag in ("FLAGS", "FLAGS_1"):
                facts.dyn_flags.extend(rest.replace("Flags:", "").split())
            elif tag in ("TEXTREL", "BIND_NOW"):
                facts.dyn_flags.append(tag)
            continue
        if line.startswith("Version needs section"):
            in_verneed = True
            continue
        if line.startswith(("Version definition section", "Version symbols section", "Symbol table")):
            in_verneed = False
        m = _VERDEF.match(line)
        if m and "BASE" not in m[1].split(" | "):
            facts.version_definitions.append(m[2])
        if line.startswith("Symbol table '.dynsym'"):
            in_dynsym = True
            continue
        if in_dynsym and not line.strip():
            in_dynsym = False
        if in_verneed:
            m = _VERNEED_FILE.match(line)
            if m:
                current_file = m[1]
                facts.version_needs.setdefault(current_file, [])
                continue
            m = _VERNEED_AUX.match(line)
            if m and current_file is not None:
                facts.version_needs[current_file].append(m[1])
                facts.version_index[int(m[2])] = (current_file, m[1])
            continue
        if in_dynsym:
            m = _DYNSYM.match(line)
            if m and m[2] == "UND":
                name = m[3]
                version = None
                if "@" in name:
                    name, version = name.split("@", 1)
                    version = version.lstrip("@")
                facts.undefined.append((name, version))
    return facts


def objdump_pe_imports(path: str) -> dict[str, list[str]]:
    """DLL name -> imported names (or 'ordinal N') from `objdump -p`."""
    out = subprocess.run(["objdump", "-p", path], capture_output=True, text=True, errors="replace", check=False).stdout
    imports: dict[str, list[str]] = {}
    current: list[str] | None = None
    in_table = False
    for line in out.splitlines():
        if line.startswith("\tDLL Name: "):
            current = imports.setdefault(line.split(": ", 1)[1].strip(), [])
            in_table = False
            continue
        if current is not None and "vma:" in line.lower() and "Hint/Ord" in line:
            in_table = True
            continue
        if in_table:
            parts = line.split()
            if not parts:
                in_table = False
                current = None
                continue
            # "\t<vma>  <hint>  <name>" or "\t<vma>  <ordinal>  <none> ..." for ordinal imports, the ordinal
            # in hexadecimal ("00000006f": 111, as llvm-readobj prints it in decimal)
            if len(parts) >= 3 and parts[2] != "<none>":
                current.append(parts[2])
            elif len(parts) >= 2:
                current.append(f"ordinal {int(parts[1], 16)}")
    return imports


def llvm_readobj_coff_imports(path: str, tool: str) -> dict[str, list[str]]:
    """DLL name -> imported names (or 'ordinal N') from `llvm-readobj --coff-imports`."""
    out = subprocess.run(
        [tool, "--coff-imports", path], capture_output=True, text=True, errors="replace", check=False
    ).stdout
    imports: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in out.splitlines():
        line = line.strip()
        if line.startswith(("Import {", "DelayImport {")):
            current = None
        elif line.startswith("Name: ") and current is None:
            current = imports.setdefault(line[6:], [])
        elif line.startswith("Symbol: ") and current is not None:
            name = line[8:].rsplit(" (", 1)[0]
            current.append(name if name else f"ordinal {line.rsplit('(', 1)[1].rstrip(')')}")
        elif line == "}":
            current = None
    return imports


AUDITWHEEL_ARCH = {"x86_64": "x86_64", "i386": "i686", "aarch64": "aarch64"}  # binlens arch -> wheel arch


def auditwheel_tag(wheel: Path) -> str:
    """The policy `auditwheel show` says a wheel is consistent with ("manylinux_2_17", or "linux"); kept in the
    fixture cache by the wheel's bytes and auditwheel's version (tool_output)."""
    import re
    import sys
    from importlib.metadata import version

    def show(path: str) -> str:
        auditwheel = str(Path(sys.executable).parent / "auditwheel")
        out = subprocess.run([auditwheel, "show", path], capture_output=True, text=True)
        m = re.search(r'platform tag:\s*"([^"]+)"', out.stdout)
        assert m, f"auditwheel show {path}: {out.stdout}{out.stderr}"
        return m[1]

    tag = tool_output(f"auditwheel-show-{version('auditwheel')}", (), str(wheel), show)
    return re.sub(r"_(x86_64|i686|aarch64|ppc64le|s390x|armv7l|riscv64)$", "", tag)


def wheel_of(binary: Path, arch: str, where: Path) -> Path:
    """A minimal wheel holding `binary` as an extension module, for `auditwheel show`."""
    import base64
    import hashlib
    import zipfile

    files = {
        f"fx/{binary.name}.so": binary.read_bytes(),
        "fx-1.0.dist-info/WHEEL": f"Wheel-Version: 1.0\nGenerator: binlens-tests\nRoot-Is-Purelib: false\n"
        f"Tag: py3-none-linux_{arch}\n".encode(),
        "fx-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: fx\nVersion: 1.0\n",
    }
    digest = {p: base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b"=").decode() for p, d in files.items()}
    record = "".join(f"{p},sha256={digest[p]},{len(d)}\n" for p, d in files.items()) + "fx-1.0.dist-info/RECORD,,\n"
    out = where / f"fx-1.0-py3-none-linux_{arch}.whl"
    with zipfile.ZipFile(out, "w") as z:  # (the same bytes every time: auditwheel's answer is kept by them)
        for p, d in [*files.items(), ("fx-1.0.dist-info/RECORD", record.encode())]:
            z.writestr(zipfile.ZipInfo(p, date_time=(1980, 1, 1, 0, 0, 0)), d)
    return out


@functools.cache
def _tools_digest(tools: tuple[str, ...]) -> str:
    """What identifies the installed tools: the sha256 of each one's file (a script and the programs it runs)."""
    h = hashlib.sha256()
    for t in tools:
        found = shutil.which(t)
        h.update(t.encode() + b"\0" + (Path(found).resolve().read_bytes() if found else b"(none)"))
    return h.hexdigest()[:20]


def tool_output(name: str, tools: tuple[str, ...], path: str, run: Callable[[str], Any]) -> Any:
    """`run(path)`'s answer (a tool's parsed output, plain JSON data), kept in the fixture cache under the file's
    sha256 and the tools' own digest: the tool ran on these very bytes, in this very version, on an earlier
    run. BINLENS_FRESH_ORACLES=1 runs every tool again. (checksec and hardening-check take most of a minute
    over the fixtures and the machine sample; read back, a second.)"""
    import build

    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    f = build.CACHE / "oracles" / name / f"{_tools_digest(tools)}-{digest}.json"
    if not os.environ.get("BINLENS_FRESH_ORACLES"):
        try:
            return json.loads(f.read_text())
        except (OSError, ValueError):
            pass
    value = run(path)
    f.parent.mkdir(parents=True, exist_ok=True)
    tmp = f.with_name(f".{f.name}.{os.getpid()}.{threading.get_ident()}")
    tmp.write_text(json.dumps(value))
    os.replace(tmp, f)
    return value


def build_rpm(tmp: Path, root: Path, files: list[str], payload: str = "xzdio", name: str = "t", version: str = "1",
              release: str = "1", epoch: int | None = None) -> Path:
    """An RPM that rpmbuild makes of the files under `root` (its payload compressed with `payload`: xzdio, gzdio,
    zstdio), nothing stripped or added."""
    top = tmp / "rpmbuild"
    for d in ("SPECS", "BUILDROOT", "RPMS", "SOURCES", "BUILD"):
        (top / d).mkdir(parents=True, exist_ok=True)
    spec = top / "SPECS" / f"{name}.spec"
    listed = "\n".join(files)
    spec.write_text(f"""Name: {name}
Version: {version}
Release: {release}
{f"Epoch: {epoch}" if epoch is not None else ""}
Summary: t
License: MIT
%define _binary_payload w9.{payload}
%define __strip /bin/true
%define __brp_strip /bin/true
%define debug_package %{{nil}}
%define _build_id_links none
%description
t
%install
mkdir -p %{{buildroot}}
cp -a {root}/. %{{buildroot}}/
%files
{listed}
""")
    r = subprocess.run(["rpmbuild", "--define", f"_topdir {top}", "--nodeps", "-bb", str(spec)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-1500:]
    (rpm,) = (top / "RPMS").rglob(f"{name}-*.rpm")
    return rpm


def build_apk(out: Path, pkginfo: bytes, files: dict[str, bytes]) -> Path:
    """An Alpine .apk as abuild lays it out: gzip members concatenated (signature, control with .PKGINFO, data),
    the first two tar streams cut before their end-of-archive blocks."""
    import gzip
    import io
    import tarfile

    parts = []
    for members in ({".SIGN.RSA.key.rsa.pub": b"sig"}, {".PKGINFO": pkginfo}, files):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
            for n, d in members.items():
                info = tarfile.TarInfo(n)
                info.size = len(d)
                tf.addfile(info, io.BytesIO(d))
        data = buf.getvalue()
        if members is not files:
            data = data.rstrip(b"\0")
            data += b"\0" * ((512 - len(data) % 512) % 512)
        parts.append(gzip.compress(data, mtime=0))
    out.write_bytes(b"".join(parts))
    return out
