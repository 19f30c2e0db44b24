"""Windows Installer packages (.msi) as containers: the files of their embedded cabinets, named where they install;
every member's facts equal those of the file msitools' msiextract extracts, in packages msitools' wixl builds
(32-bit and x64 layouts, nested folders); damaged packages are one line each."""

from __future__ import annotations

import json
import random
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import bad_input_is_one_line, run_binlens, unpack_mutants
from tests.test_archives import _compare

WIXL, MSIEXTRACT = shutil.which("wixl"), shutil.which("msiextract")
pytestmark = pytest.mark.skipif(WIXL is None or MSIEXTRACT is None, reason="wixl and msitools: README apt-get")

WXS = """<?xml version="1.0" encoding="utf-8"?>
<Wix xmlns="http://schemas.microsoft.com/wix/2006/wi">
  <Product Id="*" Name="Binlens Test" Language="1033" Version="1.2.3" Manufacturer="binlens"
           UpgradeCode="12345678-1234-1234-1234-123456789012">
    <Package InstallerVersion="200" Compressed="yes" InstallScope="perMachine"/>
    <Media Id="1" Cabinet="app.cab" EmbedCab="yes"/>
    <Directory Id="TARGETDIR" Name="SourceDir">
      <Directory Id="{folder}">
        <Directory Id="INSTALLDIR" Name="Binlens Test">
          <Component Id="MainExe" Guid="11111111-1111-1111-1111-111111111111" {win64}>
            <File Id="AppExe" Name="app.exe" Source="app.exe" KeyPath="yes"/>
          </Component>
          <Directory Id="BinDir" Name="bin">
            <Directory Id="DeepDir" Name="plug ins">
              <Component Id="Plugin" Guid="33333333-3333-3333-3333-333333333333" {win64}>
                <File Id="PluginDll" Name="go-plugin.exe" Source="go.exe" KeyPath="yes"/>
              </Component>
            </Directory>
            <Component Id="Helper" Guid="22222222-2222-2222-2222-222222222222" {win64}>
              <File Id="HelperExe" Name="helper-tool.exe" Source="helper.exe" KeyPath="yes"/>
              <File Id="Readme" Name="README.txt" Source="README.txt"/>
            </Component>
          </Directory>
        </Directory>
      </Directory>
    </Directory>
    <Feature Id="Main" Level="1">
      <ComponentRef Id="MainExe"/><ComponentRef Id="Helper"/><ComponentRef Id="Plugin"/>
    </Feature>
  </Product>
</Wix>
"""


def _msi(binaries_built, tmp: Path, x64: bool) -> Path:
    src = tmp / ("src64" if x64 else "src32")
    src.mkdir()
    shutil.copy(binaries_built["c-x86_64-windows-gnu.exe"], src / "app.exe")
    shutil.copy(binaries_built["c-i386-windows-gnu.exe"], src / "helper.exe")
    shutil.copy(binaries_built["go-windows-amd64.exe"], src / "go.exe")
    (src / "README.txt").write_text("not a binary\n")
    (src / "app.wxs").write_text(WXS.format(folder="ProgramFiles64Folder" if x64 else "ProgramFilesFolder",
                                            win64='Win64="yes"' if x64 else ""))
    out = tmp / ("app-x64.msi" if x64 else "app.msi")
    subprocess.run([WIXL, *(["-a", "x64"] if x64 else []), "-o", str(out), "app.wxs"], cwd=src, check=True,
                   capture_output=True)
    return out


@pytest.mark.parametrize("x64", [False, True], ids=["x86", "x64"])
def test_members_equal_msiextract(binaries_built, tmp_path, x64):
    msi = _msi(binaries_built, tmp_path, x64)
    tree = tmp_path / "extracted"
    subprocess.run([MSIEXTRACT, "-C", str(tree), str(msi)], check=True, capture_output=True)
    top = tree if x64 else tree / "Program Files"  # (as msiextract names ProgramFilesFolder and the 64-bit one)
    assert (top / "Binlens Test" / "bin" / "plug ins" / "go-plugin.exe").is_file()
    assert _compare(str(msi), tree) == 3


def test_damaged_packages(binaries_built, tmp_path):
    """Cut short, or an OLE file that holds no installer database, named .msi: one line, and the entry's error
    in a directory; a Word-style OLE file not named as an installer is passed over. Mutants of the package's
    bytes: members or one line each."""
    msi = _msi(binaries_built, tmp_path, False)
    data = msi.read_bytes()
    cut = tmp_path / "cut.msi"
    cut.write_bytes(data[:len(data) // 3])
    bad_input_is_one_line(cut, "corrupt MSI", tmp_path / "walk1")
    import olefile

    ole = tmp_path / "plain.msi"  # an OLE file whose only stream is not an installer's
    shutil.copy(msi, ole)
    with olefile.OleFileIO(str(ole), write_mode=True) as f:  # (renaming streams is not olefile's: blank the pool)
        for entry in f.listdir():
            if entry[0].startswith("\u4840") and f.get_size("/".join(entry)) >= 8:
                f.write_stream("/".join(entry), bytes(f.get_size("/".join(entry))))
    bad_input_is_one_line(ole, "corrupt MSI", tmp_path / "walk2")
    doc = tmp_path / "walk3"
    doc.mkdir()
    shutil.copy(msi, doc / "report.doc")
    shutil.copy(binaries_built["c-i386-windows-gnu.exe"], doc / "tool.exe")
    report = json.loads(run_binlens("scan", "--format", "json", "--no-cache", str(doc), check=True).stdout)
    assert [a["path"] for a in report["artifacts"]] == [str(doc / "tool.exe")]
    rng = random.Random(3)
    mutants = []
    for _ in range(40):
        b = bytearray(data)
        for _ in range(rng.randint(1, 4)):  # the compound file's header, or the end: its directory and tables
            at = rng.randrange(0, 512) if rng.random() < 0.3 else rng.randrange(len(b) - 16384, len(b))
            b[at] = rng.randrange(256)
        mutants.append(bytes(b))
    unpack_mutants(tmp_path, mutants, name="mutant.msi")


def test_without_olefile_a_package_is_one_line_that_says_so(binaries_built, tmp_path):
    """Where the archives extra (olefile) is missing, an MSI named on the command line is one line saying what to
    install, not a 'corrupt' package; in a directory, that package's error."""
    from tests.conftest import ROOT

    blocked = tmp_path / "blocked" / "olefile"
    blocked.mkdir(parents=True)
    (blocked / "__init__.py").write_text("raise ImportError('olefile is not installed')\n")
    msi = _msi(binaries_built, tmp_path, False)
    prefix = ["env", f"PYTHONPATH={blocked.parent}:{ROOT}"]
    r = run_binlens("scan", str(msi), prefix=prefix)
    assert (r.returncode, r.stderr) == (2, f"binlens: {msi}: an MSI package: reading it needs olefile (pip install "
                                           "'binlens[archives]')\n")
    r = run_binlens("scan", str(msi.parent), "--format", "json", prefix=prefix)
    assert r.returncode == 1
    errors = [a["error"] for a in json.loads(r.stdout)["artifacts"] if a["error"]]
    assert errors == ["an MSI package: reading it needs olefile (pip install 'binlens[archives]')"]


PEAK = """import resource, subprocess, sys
r = subprocess.run(sys.argv[1:])
sys.stderr.write(f"peak {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}\\n")
sys.exit(r.returncode)"""


def test_a_large_cabinet_is_copied_not_held_in_memory(binaries_built, tmp_path):
    """A package whose cabinet holds 48 MiB of incompressible bytes beside a program is unpacked (in one process,
    --jobs 1) within 16 MiB of the peak memory of the same package holding 1 MiB: the cabinet is copied out of
    the compound file along its sector chain, a megabyte at a time (olefile's reader held the whole stream, two or
    three times over while joining its sectors: 48 MiB came to about +130 MiB). The program's facts still equal
    those of the file msiextract extracts."""
    peaks = {}
    for mib in (1, 48):
        src = tmp_path / f"src{mib}"
        src.mkdir()
        shutil.copy(binaries_built["c-x86_64-windows-gnu.exe"], src / "app.exe")
        (src / "blob.bin").write_bytes(random.Random(mib).randbytes(mib << 20))
        (src / "app.wxs").write_text(WXS.replace('<File Id="Readme" Name="README.txt" Source="README.txt"/>',
                                                 '<File Id="Blob" Name="blob.bin" Source="blob.bin"/>')
                                     .replace('Source="go.exe"', 'Source="app.exe"')
                                     .replace('Source="helper.exe"', 'Source="app.exe"')
                                     .format(folder="ProgramFiles64Folder", win64='Win64="yes"'))
        msi = tmp_path / f"big{mib}.msi"
        subprocess.run([WIXL, "-a", "x64", "-o", str(msi), "app.wxs"], cwd=src, check=True, capture_output=True)
        assert msi.stat().st_size > mib << 20
        r = run_binlens("scan", "--jobs", "1", "--no-cache", "--fail-on", "never", "-o", "/dev/null", str(msi),
                        prefix=[sys.executable, "-c", PEAK])
        assert r.returncode == 0, r.stderr
        peaks[mib] = int(r.stderr.split("peak ")[1]) << 10
    assert peaks[48] - peaks[1] < 16 << 20, peaks
    tree = tmp_path / "extracted"
    subprocess.run([MSIEXTRACT, "-C", str(tree), str(msi)], check=True, capture_output=True)
    assert _compare(str(msi), tree) == 3


def _patched(data: bytes, fixes: list[tuple[int, bytes]]) -> bytes:
    b = bytearray(data)
    for at, value in fixes:
        b[at:at + len(value)] = value
    return bytes(b)


def test_a_broken_sector_chain_of_a_cabinet_is_one_line(binaries_built, tmp_path):
    """The cabinet's chain of sectors in the compound file's FAT cut after its first sector, and its directory
    entry's size raised past the end of the file: one line each, naming the problem."""
    import olefile

    msi = _msi(binaries_built, tmp_path, False)
    data = msi.read_bytes()
    with olefile.OleFileIO(str(msi)) as ole:
        ss, fat = ole.sectorsize, ole.fat
        cab = max((e for e in ole.direntries if e is not None and e.entry_type == olefile.STGTY_STREAM),
                  key=lambda e: e.size)  # (the cabinet: the package's largest stream)
        assert cab.size > 4 * ss
        first = cab.isectStart
        difat = struct.unpack_from("<109I", data, 76)  # the header's FAT sectors (a small file: all of them)
        fat_at = (difat[first * 4 // ss] + 1) * ss + first * 4 % ss  # where the FAT says what follows `first`
        chain = [ole.first_dir_sector]
        while fat[chain[-1]] != olefile.ENDOFCHAIN:
            chain.append(fat[chain[-1]])
        per = ss // 128  # directory entries per sector
        size_at = (chain[cab.sid // per] + 1) * ss + cab.sid % per * 128 + 120
    cut = tmp_path / "cut-chain.msi"
    cut.write_bytes(_patched(data, [(fat_at, struct.pack("<I", olefile.ENDOFCHAIN))]))
    bad_input_is_one_line(cut, "corrupt MSI (a cabinet's sector chain ends early or leaves the file)", tmp_path / "w1")
    grown = tmp_path / "grown.msi"
    grown.write_bytes(_patched(data, [(size_at, struct.pack("<I", cab.size + len(data)))]))
    bad_input_is_one_line(grown, "corrupt MSI (a stream of", tmp_path / "w2")
