"""`binlens syscalls`: the text view of the syscalls facts, and seccomp profiles made from them."""

from __future__ import annotations

import json
from typing import Any

# Groups for the text view (a name in none of them is "other"); after strace's TRACE_* classes.
GROUPS: dict[str, tuple[str, ...]] = {
    "file": ("open", "openat", "openat2", "creat", "close", "close_range", "read", "write", "pread64", "pwrite64",
             "readv", "writev", "preadv", "pwritev", "preadv2", "pwritev2", "lseek", "_llseek", "stat", "fstat",
             "lstat", "newfstatat", "fstatat64", "stat64", "fstat64", "lstat64", "statx", "access", "faccessat",
             "faccessat2", "fcntl", "fcntl64", "ioctl", "dup", "dup2", "dup3", "pipe", "pipe2", "getdents64",
             "readlink", "readlinkat", "unlink", "unlinkat", "rename", "renameat", "renameat2", "mkdir", "mkdirat",
             "rmdir", "chdir", "fchdir", "getcwd", "chmod", "fchmod", "fchmodat", "fchmodat2", "chown", "fchown",
             "fchownat", "lchown", "truncate", "ftruncate", "fsync", "fdatasync", "sendfile", "splice",
             "copy_file_range", "utimensat", "flock", "statfs", "fstatfs", "memfd_create", "eventfd2", "inotify_init1",
             "inotify_add_watch", "inotify_rm_watch", "poll", "ppoll", "select", "pselect6", "epoll_create1",
             "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2", "io_uring_setup", "io_uring_enter",
             "io_uring_register", "mknodat", "symlinkat", "linkat", "fallocate", "fadvise64", "umask"),
    "process": ("clone", "clone3", "fork", "vfork", "execve", "execveat", "exit", "exit_group", "wait4", "waitid",
                "getpid", "getppid", "gettid", "kill", "tkill", "tgkill", "set_tid_address", "prctl", "arch_prctl",
                "set_thread_area", "setuid", "setgid", "setgroups", "getuid", "geteuid", "getgid", "getegid",
                "setsid", "setpgid", "getpgid", "prlimit64", "getrlimit", "setrlimit", "uname", "sched_yield",
                "sched_getaffinity", "sched_setaffinity", "pidfd_open", "pidfd_send_signal", "pidfd_getfd",
                "capget", "capset", "getrusage", "rseq", "seccomp", "unshare", "setns", "personality"),
    "signal": ("rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigreturn", "sigaltstack", "rt_sigsuspend",
               "rt_sigtimedwait", "rt_sigqueueinfo", "signalfd4", "restart_syscall", "pause"),
    "memory": ("mmap", "mmap2", "munmap", "mprotect", "madvise", "mremap", "brk", "mincore", "mlock", "munlock",
               "membarrier", "set_mempolicy", "get_mempolicy", "mbind", "process_madvise", "mseal"),
    "time": ("clock_gettime", "clock_gettime64", "clock_getres", "clock_nanosleep", "nanosleep", "gettimeofday",
             "time", "timer_create", "timer_settime", "timer_settime64", "timer_delete", "timer_gettime",
             "setitimer", "getitimer", "timerfd_create", "timerfd_settime", "alarm"),
    "sync": ("futex", "futex_time64", "futex_waitv", "futex_wait", "futex_wake", "set_robust_list",
             "get_robust_list"),
    "network": ("socket", "socketpair", "connect", "accept", "accept4", "bind", "listen", "sendto", "recvfrom",
                "sendmsg", "recvmsg", "sendmmsg", "recvmmsg", "shutdown", "getsockname", "getpeername",
                "setsockopt", "getsockopt", "socketcall"),
}  # fmt: skip
GROUP_OF = {name: group for group, names in GROUPS.items() for name in names}
# Always allowed by an exported profile: the runtime starting the program (execve), and what the kernel or
# libc does on every program's behalf (signal return, restarted calls, exit).
EXTRAS = ("execve", "exit", "exit_group", "restart_syscall", "rt_sigreturn")


def kernel_verdicts(entries: list[dict[str, Any]], targets: dict[str, Any]) -> list[dict[str, Any]]:
    """Per artifact and target: whether the target's kernel has every call made without a fallback, and the
    probed calls it lacks (the program does without them)."""
    from analyzer.facts.syscalls import version_key

    out = []
    for e in entries:
        f = (e.get("facts") or {}).get("syscalls")
        if not f or not f.get("supported"):
            continue
        hard = f["kernel_floor"]["hard"]
        for name, target in targets.items():
            kernel = target.kernel
            row: dict[str, Any] = {"path": e["path"], "target": name, "kernel": kernel}
            if kernel is None:
                row.update(ok=None, reason=f"{name} names no kernel")
            else:
                short = bool(hard["version"]) and version_key(hard["version"]) > version_key(kernel)
                row.update(ok=not short, syscall=hard["syscall"] if short else None,
                           needed=hard["version"] if short else None,
                           probed=[p["name"] for p in f["kernel_floor"]["probed"]
                                   if version_key(p["introduced"]) > version_key(kernel)])  # fmt: skip
            out.append(row)
    return out


def render_text(entries: list[dict[str, Any]], verdicts: list[dict[str, Any]] | None = None) -> str:
    out = []
    for e in entries:
        if e.get("error"):
            out.append(f"{e['path']}: error: {e['error']}\n")
            continue
        f = e["facts"].get("syscalls")
        if not f:
            out.append(f"{e['path']}: not an ELF binary (no system-call model)\n")
            continue
        if not f.get("supported"):
            out.append(f"{e['path']}: {f['reason']}\n")
            continue
        out.append(_one(e["path"], e["facts"], f))
        for v in verdicts or []:
            if v["path"] == e["path"]:
                out.append(_verdict(v))
    return "".join(out)


def _verdict(v: dict[str, Any]) -> str:
    if v["ok"] is None:
        return f"  {v['target']}: {v['reason']}\n"
    line = f"  {v['target']} (Linux {v['kernel']}): "
    line += "has every call" if v["ok"] else f"lacks {v['syscall']} (Linux {v['needed']})"
    if v.get("probed"):
        line += f"; tries and does without {', '.join(v['probed'])}"
    return line + "\n"


def _one(path: str, facts: dict[str, Any], f: dict[str, Any]) -> str:
    c = f["convention"]
    lines = [f"{path}: {f['abi']} ({c['instruction']}, number in {c['number']}, arguments "
             f"{' '.join(c['arguments'])}; seccomp {c['seccomp']})"]  # fmt: skip
    traps = ", ".join(f"{n} {ins}" for ins, n in f["site_counts"].items()) or "none"
    calls = sum(1 for s in f["sites"] if s["kind"] == "call")
    lines.append(f"  sites: {traps}; {calls} calls of wrappers ({', '.join(sorted(f['wrappers'])) or 'none'})")
    via = f.get("via_libraries")
    if via and via.get("modelled"):
        lines.append(f"  through its libraries ({len(via['names'])}, the loader's included): {' '.join(via['names'])}")
        opened = [i for i in via["incomplete"] if "opens at run time" in i]
        if len(via["incomplete"]) > len(opened):
            lines.append(f"  libraries: {len(via['incomplete']) - len(opened)} reached functions with unresolved sites")
        lines.extend(f"  incomplete: {i}" for i in opened)
        if via.get("missing_libraries"):
            lines.append(f"  libraries not found: {' '.join(via['missing_libraries'])}")
    elif via:
        lines.append(f"  through its libraries: not modelled ({via['reason']})")
    elif facts.get("linkage") == "dynamic":
        lines.append("  dynamic: the libraries' own system calls are not included (binlens syscalls --sysroot)")
    groups: dict[str, list[str]] = {}
    for name in f["names"]:
        groups.setdefault(GROUP_OF.get(name, "other"), []).append(name)
    lines.append(f"  system calls ({len(f['names'])}):")
    for group in (*GROUPS, "other"):
        if group in groups:
            lines.append(f"    {group + ':':9} {' '.join(groups[group])}")
    for other, names in f["by_abi"].items():
        if other != f["abi"]:
            lines.append(f"  through the {other} entry: {' '.join(names)}")
    if f["unknown_numbers"]:
        lines.append("  numbers no table names: " + ", ".join(f"{u['number']:#x} ({u['abi']})"
                                                               for u in f["unknown_numbers"]))  # fmt: skip
    u = f["unresolved"]
    if u["count"]:
        lines.append(f"  unresolved: {u['count']} sites in {', '.join(u['functions'])}")
    k = f["kernel_floor"]
    hard = k.get("hard") or {}
    if hard.get("version"):
        why = f"{hard['syscall']}" if hard["syscall"] else f"the {f['abi']} port"
        lines.append(f"  kernel: Linux >= {hard['version']} ({why})")
    if k["undated"]:
        lines.append(f"  undated (no release known): {' '.join(k['undated'])}")
    if k.get("probed"):
        lines.append("  probed, done without on older kernels: " +
                     ", ".join(f"{p['name']} ({p['introduced']})" for p in k["probed"]))  # fmt: skip
    refused = [d for d in f.get("docker_default", []) if d["verdict"] != "kernel"]
    if refused:
        lines.append(
            "  Docker's default seccomp profile: "
            + "; ".join(f"{d['name']} {d['detail']}{' (probed)' if d['probed'] else ''}" for d in refused)
        )
    else:
        lines.append("  Docker's default seccomp profile: allows every call")
    if f.get("budget_exceeded"):
        lines.append("  incomplete: the time budget ran out")
    return "\n".join(lines) + "\n"


def profile(entries: list[dict[str, Any]], flavour: str) -> str:
    """An allow-list seccomp profile for every binary in `entries`: the OCI runtime-spec `linux.seccomp`
    shape, or Docker's (archMap, per-rule comments). Names, not numbers; the compat architecture is listed
    when a binary enters through it (int 0x80 in x86-64 code)."""
    names: set[str] = set(EXTRAS)
    arches: dict[str, set[str]] = {}
    for e in entries:
        f = (e.get("facts") or {}).get("syscalls")
        if not f or not f.get("supported"):
            continue
        main = f["convention"]["seccomp"]
        subs = arches.setdefault(main, set())
        for other in f["by_abi"]:
            if other != f["abi"]:
                from analyzer.facts.syscalls import seccomp_arch

                token = seccomp_arch(other, True)
                if token != main:
                    subs.add(token)
        names.update(f["names"])
        names.update((f.get("via_libraries") or {}).get("names", []))
    own = sorted(names - set(EXTRAS))
    doc: dict[str, Any] = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1}
    if flavour == "docker":
        doc["archMap"] = [{"architecture": a, "subArchitectures": sorted(s)} for a, s in sorted(arches.items())]
        doc["syscalls"] = [
            {"names": own, "action": "SCMP_ACT_ALLOW", "comment": "found in the binaries by binlens"},
            {"names": sorted(EXTRAS), "action": "SCMP_ACT_ALLOW", "comment": "needed to start and end any program"},
        ]
    else:
        doc["architectures"] = sorted({a for a in arches} | {s for v in arches.values() for s in v})
        doc["syscalls"] = [{"names": own, "action": "SCMP_ACT_ALLOW"},
                           {"names": sorted(EXTRAS), "action": "SCMP_ACT_ALLOW"}]  # fmt: skip
    if not own:
        doc["syscalls"] = doc["syscalls"][1:]
    return json.dumps(doc, indent=2) + "\n"
