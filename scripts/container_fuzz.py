#!/usr/bin/env python3
"""A fuzzing campaign over the container readers, through the command line (CI runs bounded in-process
mutants: tests/conftest.py's unpack_mutants, in each reader's tests).

    python scripts/container_fuzz.py [COUNT] [SEED]   # default: 600 mutants, seed 0

Seeds are made from fixture binaries with the tools the tests trust (mksquashfs, bsdtar, 7z, gcab, genisoimage,
tar, zip, makeself, wixl): a snap (gzip and xz, with a program of several blocks, which a worker decompresses),
a macOS package, a 7z, a cabinet, an ISO image, a .tar.gz, a zip, a makeself installer, a Windows Installer
package, a PyInstaller program (fixtures/make_pyinstaller.py's Windows layout), a zipapp inside a tarball and an
AppImage renamed without its suffix. Each mutant (bytes changed at random, sometimes cut short) is scanned alone
by `binlens scan --format json` in a child: exit 0, 1 or 2, one line on stderr for 2, no traceback, an error or
facts for every artifact, under 10 s and 1 GiB of peak memory (the child's own, from wait4). Failures are printed
with the seed and mutant index that replay them; exit 1 when anything failed.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "fixtures"))
LIMIT_SECONDS, LIMIT_BYTES = 10.0, 2**30


def seeds(tmp: Path) -> dict[str, bytes]:
    import build

    built = build.build_all(["go-linux-amd64", "c-rawsys", "c-aarch64-macos", "go-windows-amd64.exe"])
    src = tmp / "src"
    (src / "bin").mkdir(parents=True)
    shutil.copy(built["go-linux-amd64"], src / "bin" / "big")
    shutil.copy(built["c-rawsys"], src / "bin" / "small")
    shutil.copy(built["go-windows-amd64.exe"], src / "bin" / "tool.exe")
    out: dict[str, Path] = {}
    for comp in ("gzip", "xz"):
        out[f"{comp}.snap"] = tmp / f"{comp}.snap"
        subprocess.run(["mksquashfs", str(src), str(out[f"{comp}.snap"]), "-comp", comp, "-noappend", "-quiet",
                        "-no-progress"], check=True, stdout=subprocess.DEVNULL)
    out["a.7z"] = tmp / "a.7z"
    subprocess.run(["7z", "a", "-bd", "-bso0", str(out["a.7z"]), "."], cwd=src, check=True)
    out["a.cab"] = tmp / "a.cab"
    subprocess.run(["gcab", "-c", "-z", str(out["a.cab"]), "bin/small", "bin/tool.exe"], cwd=src, check=True)
    out["a.iso"] = tmp / "a.iso"
    subprocess.run(["genisoimage", "-quiet", "-R", "-o", str(out["a.iso"]), str(src)], check=True)
    out["a.tar.gz"] = tmp / "a.tar.gz"
    subprocess.run(["tar", "-czf", str(out["a.tar.gz"]), "-C", str(src), "."], check=True)
    out["a.zip"] = tmp / "a.zip"
    shutil.make_archive(str(tmp / "a"), "zip", src)
    pkg = tmp / "pkgroot" / "tool.pkg"
    pkg.mkdir(parents=True)
    cpio = subprocess.run(["cpio", "-o", "-H", "odc", "--quiet"], cwd=src, input=b"./bin/small\n./bin/tool.exe\n",
                          capture_output=True, check=True).stdout
    subprocess.run(["gzip", "-n"], input=cpio, stdout=open(pkg / "Payload", "wb"), check=True)  # noqa: SIM115
    out["a.pkg"] = tmp / "a.pkg"
    subprocess.run(["bsdtar", "--format", "xar", "-cf", str(out["a.pkg"]), "-C", str(pkg.parent), "tool.pkg"],
                   check=True)
    out["a.run"] = tmp / "a.run"  # a makeself installer (xz)
    subprocess.run(["makeself", "--quiet", "--xz", str(src), str(out["a.run"]), "fuzz", "./bin/small"], check=True,
                   capture_output=True)
    wxs = tmp / "a.wxs"  # a Windows Installer package (msitools' wixl)
    wxs.write_text('<?xml version="1.0"?><Wix xmlns="http://schemas.microsoft.com/wix/2006/wi"><Product Id="*" '
                   'Name="F" Language="1033" Version="1.0.0" Manufacturer="f" UpgradeCode="12345678-1234-1234-'
                   '1234-123456789012"><Package Compressed="yes"/><Media Id="1" Cabinet="a.cab" EmbedCab="yes"/>'
                   '<Directory Id="TARGETDIR" Name="SourceDir"><Directory Id="ProgramFilesFolder"><Directory '
                   'Id="D" Name="F"><Component Id="C" Guid="11111111-1111-1111-1111-111111111111"><File Id="T" '
                   'Name="tool.exe" Source="bin/tool.exe" KeyPath="yes"/></Component></Directory>'
                   '</Directory></Directory><Feature Id="M" Level="1"><ComponentRef Id="C"/></Feature></Product>'
                   '</Wix>')
    out["a.msi"] = tmp / "a.msi"
    subprocess.run(["wixl", "-o", str(out["a.msi"]), str(wxs)], cwd=src, check=True, capture_output=True)
    pyi = build.build_all(["pyinstaller-windows.exe"])["pyinstaller-windows.exe"]  # a PyInstaller program
    out["pyinstaller.exe"] = pyi
    app = tmp / "zipapp"  # a zipapp installed in a tarball as usr/local/bin/app (a #! script that is a zip)
    (app / "usr" / "local" / "bin").mkdir(parents=True)
    subprocess.run([sys.executable, "-m", "zipapp", str(src), "-m", "tool:main", "-p", "/usr/bin/env python3",
                    "-o", str(app / "usr" / "local" / "bin" / "app")], check=True)
    out["zipapp.tar.gz"] = tmp / "zipapp.tar.gz"
    subprocess.run(["tar", "-czf", str(out["zipapp.tar.gz"]), "-C", str(app), "."], check=True)
    out["tool"] = tmp / "tool"  # an AppImage renamed without its suffix: its runtime's worker reads its payload
    runtime = built["c-rawsys"].read_bytes()
    out["tool"].write_bytes(runtime[:8] + b"AI\x02" + runtime[11:] + out["gzip.snap"].read_bytes())
    return {name: path.read_bytes() for name, path in out.items()}


def main(argv: list[str]) -> int:
    count = int(argv[0]) if argv else 600
    seed = int(argv[1]) if len(argv) > 1 else 0
    failures, worst_time, worst_bytes = 0, 0.0, 0.0
    with tempfile.TemporaryDirectory() as tmp:
        made = seeds(Path(tmp))
        names = sorted(made)
        rng = random.Random(seed)
        for i in range(count):
            name = names[i % len(names)]
            data = bytearray(made[name])
            for _ in range(rng.choice((1, 2, 4, 8, 32))):
                at = rng.randrange(len(data)) if rng.random() < 0.6 else rng.randrange(min(len(data), 8192))
                data[at] = rng.randrange(256)
            if rng.random() < 0.1:
                data = data[: rng.randrange(len(data))]
            path = Path(tmp) / f"mutant-{i}-{name}"
            path.write_bytes(bytes(data))
            code, out, err, took, rss = _single(path)
            worst_time, worst_bytes = max(worst_time, took), max(worst_bytes, rss)
            problem = ""
            if code not in (0, 1, 2) or "Traceback" in err:
                problem = f"exit {code}"
            elif code == 2 and len(err.strip().splitlines()) != 1:
                problem = "not one line"
            elif took >= LIMIT_SECONDS or rss >= LIMIT_BYTES:
                problem = f"{took:.1f} s, {rss / 2**20:.0f} MiB"
            elif code in (0, 1):
                try:
                    arts = json.loads(out)["artifacts"]
                    if not all(a["facts"] or a["error"] for a in arts):
                        problem = "an artifact with neither facts nor an error"
                except ValueError:
                    problem = "no JSON report"
            if problem:
                failures += 1
                print(f"mutant {i} of {name} (seed {seed}): {problem}: {err[-800:]}")
            path.unlink()
    print(f"{count} mutants scanned: {failures} failures, slowest {worst_time:.2f} s, largest "
          f"{worst_bytes / 2**20:.0f} MiB")
    return 1 if failures else 0


def _single(path: Path) -> tuple[int, str, str, float, float]:
    """`binlens scan --format json PATH` in a child: (exit code, stdout, stderr, seconds, its peak memory)."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([sys.executable, "-m", "analyzer", "scan", "--format", "json", "--no-cache",
                                 str(path)], stdout=out, stderr=err, cwd=ROOT)  # fmt: skip
        _, status, usage = os.wait4(proc.pid, 0)
        code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text = out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace")
    return code, *text, time.monotonic() - started, usage.ru_maxrss * 1024


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
