"""A process that has imported binlens and forks one child per `run_binlens` call (tests/conftest.py).

A binlens run in the suite is a new process; most of one's time was Python importing binlens (click, the
pipeline: about 0.1 s of a 0.15 s run, over a thousand runs). This process imports them once and forks: each
child is a process of its own, given the caller's arguments, environment, working directory and output files,
runs `binlens` as `python -m analyzer` would, and exits as Python exits (non-daemon threads joined, atexit
handlers run, streams flushed). What a fork cannot give a child — the hash seed, the locale and PYTHON*
settings read at start-up — conftest handles: it starts two of these with different seeds and alternates
between them, and runs binlens as a new interpreter whenever the environment asks for other start-up settings
(or BINLENS_TEST_FRESH=1 is set).

    python tests/zygote.py SOCKET_NAME      (an abstract Unix socket; prints "ready" when it listens)

Each request: one message holding pickle((args, env, cwd)) with three file descriptors (stdin, stdout, stderr);
the child answers its pid (8 bytes) and, when it is done, its exit status (8 bytes)."""

from __future__ import annotations

import importlib.util
import os
import pickle
import signal
import socket
import struct
import sys
import types

PRELOAD = ("analyzer.entry", "analyzer.cli", "analyzer.pipeline", "analyzer.report.text", "analyzer.report.json",
           "analyzer.load.archives", "analyzer.policy.config", "analyzer.cache", "elftools.elf.elffile", "capstone",
           # what a scan of one ELF file imports as it goes (the default facts, the rules' CEL): a run 48 -> 30 ms
           "analyzer.facts.elf", "analyzer.facts.go.buildinfo", "analyzer.facts.go.linkage", "analyzer.facts.hardening",
           "analyzer.facts.linkage", "analyzer.facts.os", "analyzer.facts.size", "analyzer.facts.symvers",
           "analyzer.load.pe", "analyzer.load.pyinstaller", "analyzer.load.remote", "analyzer.policy.compat")


def _child(conn: socket.socket) -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # (binlens waits for its own children)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    msg, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
    args, env, cwd = pickle.loads(msg)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    conn.sendall(struct.pack("q", os.getpid()))
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    spec = importlib.util.find_spec("analyzer.__main__")
    assert spec is not None and spec.origin is not None
    main = types.ModuleType("__main__")  # (as `python -m analyzer` names it: a spawned process skips it)
    main.__spec__, main.__file__ = spec, spec.origin
    sys.modules["__main__"] = main
    sys.argv = [spec.origin, *(os.fsdecode(a) for a in args)]
    sys.path[0] = cwd  # (`-m` puts the working directory first)
    code = _run()
    import threading

    threading._shutdown()  # type: ignore[attr-defined]  # as the interpreter does at exit, in its order
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            code = code or 120  # (Python's own status when flushing its streams fails at exit)
    try:
        conn.sendall(struct.pack("q", code))
    finally:
        os._exit(code)


def _run() -> int:
    from analyzer.entry import main

    try:
        main()
    except SystemExit as e:
        if e.code is None:
            return 0
        if isinstance(e.code, int):
            return e.code
        print(e.code, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        import traceback

        traceback.print_exc()
        return 130
    except BaseException:  # noqa: BLE001 - printed as the interpreter prints an uncaught one
        import traceback

        traceback.print_exc()
        return 1
    return 0


def serve(name: str) -> None:
    for module in PRELOAD:
        __import__(module)
    from analyzer.policy.rules import _cel

    _cel()  # (the CEL binding, without its command-line REPL, as a run imports it)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind("\0" + name)
    server.listen(64)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # (children reaped by the kernel)
    parent = os.getppid()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 1)
    os.close(null)
    server.settimeout(1.0)
    while True:
        try:
            conn, _ = server.accept()
        except TimeoutError:
            if os.getppid() != parent:  # gone with the test process that started it
                return
            continue
        conn.settimeout(None)
        if os.fork() == 0:
            server.close()
            try:
                _child(conn)
            finally:
                os._exit(70)
        conn.close()


if __name__ == "__main__":
    serve(sys.argv[1])
