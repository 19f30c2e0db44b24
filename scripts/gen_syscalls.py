#!/usr/bin/env python3
"""Generate analyzer/data/syscalls.json: system-call numbers per ABI and the Linux release that added each.

Sources (named in the output):
- numbers: the `system-calls` package from PyPI (Marcin Juszkiewicz's hrw/syscalls-table, MIT), the version
  pinned in pyproject's `test` extra; its tables are generated from the kernel's own headers for every
  architecture (ABI offsets included: mips o32 4000+, n64 5000+, n32 6000+, x32 0x40000000|n, ARM OABI
  0x900000+n, ARM-private 0x0f0000+n).
- "introduced in": the man-pages project's syscalls(2) table as Debian ships it (manpages-dev,
  /usr/share/man/man2/syscalls.2.gz), which covers Linux up to 5.14; the corrections and the calls added
  after 5.14 are listed in LATER below, each with where it comes from.
- the first release of each architecture's port (glibc's arch_minimum_kernel, which is where a
  program for that architecture can start): PORTS below.

    python scripts/gen_syscalls.py            # write the file
    python scripts/gen_syscalls.py --check    # exit 1 when the committed file differs from a fresh one
"""

from __future__ import annotations

import gzip
import importlib
import json
import re
import sys
from importlib.metadata import version
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "analyzer" / "data" / "syscalls.json"
MANPAGE = Path("/usr/share/man/man2/syscalls.2.gz")
UNIMPLEMENTED = Path("/usr/share/man/man2/unimplemented.2.gz")  # the calls no kernel implements

# binlens ABI key -> the system-calls table that numbers it
TABLES = {
    "x86_64": "x86_64", "x32": "x32", "i386": "i386", "arm": "arm", "armoabi": "armoabi", "aarch64": "arm64",
    "riscv64": "riscv64", "ppc": "powerpc", "ppc64": "powerpc64", "s390": "s390", "s390x": "s390x",
    "mipso32": "mipso32", "mipsn64": "mips64", "mipsn32": "mips64n32", "loongarch64": "loongarch64",
}  # fmt: skip

# The first Linux release a program of this ABI can run on (glibc sysdeps/unix/sysv/linux/*/configure
# arch_minimum_kernel; the port's first release where glibc has no minimum of its own).
PORTS = {"aarch64": "3.7", "riscv64": "4.15", "loongarch64": "5.19", "ppc64le": "3.10", "x32": "3.4"}

# Calls man-pages' table does not date correctly or at all (it stops at Linux 5.14), with the source.
LATER = {
    "membarrier": ("4.3", "membarrier(2) VERSIONS: the syscalls(2) row says 3.17, the call's own page 4.3"),
    "process_mrelease": ("5.15", "kernel v5.15 arch/x86/entry/syscalls/syscall_64.tbl (448)"),
    "futex_waitv": ("5.16", "kernel v5.16 (449); hrw/syscalls-table commit '5.16-rc1 added futex_waitv'"),
    "set_mempolicy_home_node": ("5.17", "kernel v5.17 (450)"),
    "cachestat": ("6.5", "kernel v6.5 (451); hrw/syscalls-table commit '6.4 added cachestat' (merged for 6.5)"),
    "fchmodat2": ("6.6", "kernel v6.6 (452); hrw/syscalls-table commit '6.6-rc added fchmodat2()'"),
    "map_shadow_stack": ("6.6", "kernel v6.6 (453); hrw/syscalls-table commit '6.6-rc ... map_shadow_stack()'"),
    "futex_wake": ("6.7", "kernel v6.7 (454)"),
    "futex_wait": ("6.7", "kernel v6.7 (455)"),
    "futex_requeue": ("6.7", "kernel v6.7 (456)"),
    "statmount": ("6.8", "kernel v6.8 (457)"),
    "listmount": ("6.8", "kernel v6.8 (458)"),
    "lsm_get_self_attr": ("6.8", "kernel v6.8 (459)"),
    "lsm_set_self_attr": ("6.8", "kernel v6.8 (460)"),
    "lsm_list_modules": ("6.8", "kernel v6.8 (461)"),
    "mseal": ("6.10", "kernel v6.10 (462)"),
    "uretprobe": ("6.11", "kernel v6.11 x86-64 syscall_64.tbl (335)"),
    "setxattrat": ("6.13", "kernel v6.13 (463)"),
    "getxattrat": ("6.13", "kernel v6.13 (464)"),
    "listxattrat": ("6.13", "kernel v6.13 (465)"),
    "removexattrat": ("6.13", "kernel v6.13 (466)"),
    "open_tree_attr": ("6.15", "kernel v6.15 (467)"),
    "file_getattr": ("6.17", "kernel v6.17 (468)"),
    "file_setattr": ("6.17", "kernel v6.17 (469)"),
    "listns": ("6.19", "hrw/syscalls-table commit '6.19-rc1 added listns() and uprobe()'"),
    "uprobe": ("6.19", "hrw/syscalls-table commit '6.19-rc1 added listns() and uprobe()'"),
    "rseq_slice_yield": ("7.0", "hrw/syscalls-table commit 'Kernel 7.0 introduced rseq_slice_yield'"),
    "pread64": ("2.2", "syscalls(2) notes: added as pread in 2.2, renamed pread64 in 2.6 (same number)"),
    "pwrite64": ("2.2", "syscalls(2) notes: added as pwrite in 2.2, renamed pwrite64 in 2.6 (same number)"),
    "mount_setattr": ("5.12", "kernel v5.12 (442); mount_setattr(2) VERSIONS"),
    **{f"{n}": ("5.1", "kernel v5.1: the 64-bit time_t calls for 32-bit ABIs (403-423)") for n in (
        "clock_adjtime64", "clock_getres_time64", "clock_gettime64", "clock_nanosleep_time64", "clock_settime64",
        "futex_time64", "io_pgetevents_time64", "mq_timedreceive_time64", "mq_timedsend_time64", "ppoll_time64",
        "pselect6_time64", "recvmmsg_time64", "rt_sigtimedwait_time64", "sched_rr_get_interval_time64",
        "semtimedop_time64", "timer_gettime64", "timer_settime64", "timerfd_gettime64", "timerfd_settime64",
        "utimensat_time64")},
    "riscv_hwprobe": ("6.4", "kernel v6.4 arch/riscv/include/uapi/asm/unistd.h (258)"),
}  # fmt: skip

# Tables that name a call differently from man-pages: the table's name -> syscalls(2)'s row.
ALIASES = {"arm_fadvise64_64": "fadvise64_64"}

# Numbered in Linux 6.1's headers (Debian's linux-libc-dev) but no longer in the tables of 7.2: removed in
# between (bdflush: a stub since 2.6; uselib: a.out libraries; idle: i386, no entry point).
REMOVED_SINCE_6_1 = ("bdflush", "uselib", "idle")

ROW = re.compile(r"^\\fB(?P<name>\w+)\\fP\(2\)\t(?P<version>[0-9.]+)[^\t]*(?:\t(?P<notes>.*))?$")


def manpage_versions(text: str) -> dict[str, dict[str, str]]:
    """name -> {"introduced": version, "removed": version?} from syscalls(2)'s table."""
    lines = text.splitlines()
    out: dict[str, dict[str, str]] = {}
    i = 0
    while i < len(lines):
        m = ROW.match(lines[i])
        i += 1
        if not m:
            continue
        notes = m["notes"] or ""
        if notes == "T{":  # a multi-line note ends at T}
            parts = []
            while i < len(lines) and lines[i] != "T}":
                parts.append(lines[i])
                i += 1
            notes = " ".join(parts)
        row = {"introduced": m["version"]}
        removed = re.search(r"Removed in ([0-9.]+)", notes)
        if removed:
            row["removed"] = removed[1]
        if notes:
            row["notes"] = re.sub(r"\\f[BIRP]", "", notes)
        out.setdefault(m["name"], row)
    return out


def unimplemented(text: str) -> list[str]:
    """The names in unimplemented(2)'s NAME section."""
    section = text.split(".SH NAME", 1)[1].split(".SH", 1)[0]
    return re.findall(r"\b(\w+)\b(?=,|\s+\\-)", section)


def generate() -> str:
    tables: dict[str, dict[str, int]] = {}
    for abi, table in TABLES.items():
        module = importlib.import_module(f"system_calls.tables.{table}")
        tables[abi] = dict(sorted(getattr(module, f"syscalls_{table}").items()))
    linux = importlib.import_module("system_calls.linux_version").linux_version
    man = manpage_versions(gzip.decompress(MANPAGE.read_bytes()).decode())
    for name in unimplemented(gzip.decompress(UNIMPLEMENTED.read_bytes()).decode()):
        man.setdefault(name, {})["unimplemented"] = "unimplemented(2)"
    # the calls the tables number, and the removed ones (no longer numbered, still in older headers)
    gone = {n for n, row in man.items() if "removed" in row or "unimplemented" in row}
    names = sorted({n for t in tables.values() for n in t} | gone | set(REMOVED_SINCE_6_1))
    kernel: dict[str, dict[str, str]] = {}
    for name in names:
        row = dict(man.get(name, man.get(ALIASES.get(name, ""), {})))
        if name in REMOVED_SINCE_6_1:
            row["removed"] = "6.2-7.2"
        if name in LATER:
            row["introduced"], row["source"] = LATER[name]
        elif "introduced" in row:
            row["source"] = "syscalls(2)"
        if row:
            kernel[name] = row
    doc = {
        "sources": {
            "numbers": f"system-calls {version('system-calls')} (hrw/syscalls-table, MIT), Linux {linux}",
            "kernel": f"man-pages syscalls(2) from Debian manpages-dev {_manpages_version()}, plus LATER "
            "in scripts/gen_syscalls.py",
        },
        "ports": PORTS,
        "abis": tables,
        "kernel": kernel,
    }
    return json.dumps(doc, indent=1, sort_keys=True) + "\n"


def _manpages_version() -> str:
    status = Path("/var/lib/dpkg/status").read_text(errors="replace")
    m = re.search(r"^Package: manpages-dev\n(?:.+\n)*?Version: (\S+)", status, re.M)
    return m[1] if m else "unknown"


def main() -> int:
    from generated import write_or_check

    status = write_or_check(OUT, generate, "gen_syscalls.py")
    if "--check" not in sys.argv:
        print(OUT)
    return status


if __name__ == "__main__":
    sys.exit(main())
