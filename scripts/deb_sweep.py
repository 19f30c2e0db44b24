#!/usr/bin/env python3
"""Debian packages as apt-get download fetches them, each scanned as a .deb against the scan of the tree
`dpkg-deb -x` makes of it (CI checks four packages: tests/test_archives.py).

    python scripts/deb_sweep.py [--jobs N] [PACKAGE ...]

Downloads each package (default: DEFAULT, programs and libraries of many builders — C, C++, Go, Rust, static
libraries and objects, debug files, cross libraries) into the fixture cache, runs `binlens scan --format json`
on the .deb and on its unpacked tree, and compares member by member: the same names (`pkg.deb!path` against
`path` in the tree), and for each the same format, sha256, error and facts. Prints one line per package and each
difference; exit 1 when any differs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("BINLENS_FIXTURE_CACHE", Path.home() / ".cache" / "binlens-fixtures")) / "deb-sweep"

DEFAULT = (
    # C programs and libraries
    "coreutils", "bash", "busybox", "openssh-client", "curl", "libcurl4", "git", "vim-tiny", "util-linux",
    "procps", "iproute2", "tar", "gzip", "xz-utils", "zstd", "libzstd1", "libssl3", "openssl", "gpgv",
    "sqlite3", "libsqlite3-0", "libc-bin", "libc6", "libc6-dev", "libc6-i386", "libc6-x32", "libgcc-s1",
    "dash", "findutils", "grep", "sed", "diffutils", "file", "libmagic1", "strace", "gdb", "valgrind",
    "nginx-core", "redis-tools", "libxml2", "libpcre2-8-0", "zlib1g", "zlib1g-dev", "libbz2-1.0",
    # C++
    "libstdc++6", "libstdc++-12-dev", "cmake", "libicu72", "libprotobuf32", "nodejs", "libnode108",
    # Python and Perl
    "python3.11-minimal", "libpython3.11-minimal", "libpython3.11-stdlib", "perl-base", "python3-numpy",
    # Go
    "runc", "restic", "age", "containerd",
    # Rust
    "ripgrep", "fd-find", "rust-coreutils", "hyperfine",
    # compilers, static libraries, objects
    "binutils-x86-64-linux-gnu", "libbinutils", "gcc-12", "cpp-12", "libgcc-12-dev", "libasan8",
    # other architectures and debug files
    "libc6-arm64-cross", "libc6-armhf-cross", "libstdc++6-arm64-cross", "libc6-dbg", "qemu-user",
)  # fmt: skip


def download(packages: list[str]) -> dict[str, Path]:
    CACHE.mkdir(parents=True, exist_ok=True)
    have = {p.name.split("_")[0]: p for p in CACHE.glob("*.deb")}
    want = [p for p in packages if p not in have]
    for name in want:  # (one at a time: a name this release lacks is reported and skipped)
        run = subprocess.run(["apt-get", "download", name], cwd=CACHE, capture_output=True, text=True)
        if run.returncode:
            print(f"{name}: apt-get download failed: {run.stderr.strip().splitlines()[-1:]}")
    have = {p.name.split("_")[0]: p for p in CACHE.glob("*.deb")}
    return {p: have[p] for p in packages if p in have}


def scan(path: str, jobs: str) -> dict[str, dict]:
    out = subprocess.run([sys.executable, "-m", "analyzer", "scan", "--format", "json", "--no-cache", "--jobs", jobs,
                          "--fail-on", "never", path], capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    if out.returncode == 2 and "no ELF, PE or Mach-O files found" in out.stderr:
        return {}  # (a package of no binaries: an architecture-independent one)
    if out.returncode:
        raise SystemExit(f"binlens scan {path}: exit {out.returncode}: {out.stderr.strip()[-500:]}")
    return {a["path"]: a for a in json.loads(out.stdout)["artifacts"]}


def compare(deb: Path, jobs: str) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["dpkg-deb", "-x", str(deb), tmp], check=True)
        inside = {p.split("!", 1)[1]: a for p, a in scan(str(deb), jobs).items() if "!" in p}
        plain = {os.path.relpath(p, tmp): a for p, a in scan(tmp, jobs).items()}
    out = [f"only in the .deb: {n}" for n in sorted(inside.keys() - plain.keys())]
    out += [f"only in the tree: {n}" for n in sorted(plain.keys() - inside.keys())]
    for name in sorted(inside.keys() & plain.keys()):
        a, b = inside[name], plain[name]
        for key in ("format", "sha256", "error", "facts"):
            if a.get(key) != b.get(key):
                detail = ""
                if key == "facts" and isinstance(a.get(key), dict) and isinstance(b.get(key), dict):
                    keys = sorted(k for k in a[key].keys() | b[key].keys() if a[key].get(k) != b[key].get(k))
                    detail = f" ({', '.join(keys)})"
                out.append(f"{name}: {key} differs{detail}: {str(a.get(key))[:200]} | {str(b.get(key))[:200]}")
    out.append(f"({len(inside)} members)")
    return out


def main() -> int:
    args = sys.argv[1:]
    jobs = "2"
    if "--jobs" in args:
        i = args.index("--jobs")
        jobs = args[i + 1]
        del args[i : i + 2]
    debs = download(args or list(DEFAULT))
    failures = 0
    for deb in debs.values():
        lines = compare(deb, jobs)
        bad = lines[:-1]
        failures += bool(bad)
        print(f"{deb.name:60} {lines[-1]} {'DIFFERS' if bad else 'same'}", flush=True)
        for line in bad[:20]:
            print(f"    {line}")
    print(f"== {len(debs)} packages, {failures} with differences")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
