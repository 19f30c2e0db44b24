"""Per-file budgets (`--time-budget`, `--memory-budget`): past either, the file is that artifact's error and the
scan goes on. The time a process spends importing a module for the first time is its own, not the file's: an
import is never interrupted (a native module cut off in its initialisation aborts the process: LIEF's, 0.4-0.6 s,
did under budgets below that), and the large ones imported as a file needs them (LIEF for Mach-O, capstone for
system calls: `imported`) do not count against the file's budget, which therefore does not depend on which
worker process, and which file in it, happened to need them first."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType, ModuleType
from typing import Any

from analyzer.errors import AnalyzerError


class Overtime(BaseException):
    """Raised by the timer when a file has taken longer than the run's time budget: not an Exception, so that
    no handler of a parser's or a rule's surprises takes it for theirs (a rule's evaluation reported it as
    `rule LNK012 (rules/linkage.toml): cannot evaluate: Overtime`)."""


@contextmanager
def time_budget(seconds: float, path: str) -> Iterator[None]:
    """Raise AnalyzerError (that file's error) when the body runs longer than `seconds`. In a process's main
    thread (the scan's own, a pool worker's) the timer is a signal; in another thread (a Dask worker runs its
    tasks in one) a watchdog thread raises the error in it. Either interrupts Python code between two bytecodes
    (a signal also a blocking system call), outside an import; a call into native code is interrupted when it
    returns."""
    global _TIMED
    main = threading.current_thread() is threading.main_thread()
    if seconds <= 0 or (_TIMED if main else _DOG is not None and _DOG.armed()):
        yield  # (inside a budget already: the one budget covers the file's digest, facts and findings)
        return
    if not main:
        dog = _watchdog()
        limit = None
        try:
            try:
                limit = _cpu_backstop(seconds) if BACKSTOP else None  # (a Dask worker of one thread: backstop_here)
                dog.arm(seconds)  # (an end as soon as it is armed is caught here too)
                yield
            finally:
                while True:  # (an end sent as disarm is called is raised as it begins, before its own handling:
                    try:  # the thread stayed armed, every later budget of it was taken for a nested one, and the
                        dog.disarm()  # stale end escaped one of them as itself, one budget in a few thousand)
                        break
                    except Overtime:
                        continue
                _restore_cpu(limit)  # (disarmed: no end comes any more)
        except Overtime:  # (also one that came as the body ended, before the disarming: the file's error still)
            raise AnalyzerError(f"analysis took longer than the time budget ({seconds:g} s)", path) from None
        return
    import signal

    def expired(signum: int, frame: FrameType | None) -> None:
        if not _TIMED:  # (the body is over: its end raced the timer)
            return
        if _PAUSED or _importing(frame):
            signal.setitimer(signal.ITIMER_REAL, 0.01)  # (ask again when the import is done)
        elif _entering_or_leaving(frame) or (frame is not None and frame.f_code is expired.__code__):
            # (ask again when the body runs, or is over; also when the timer asked again comes while this very
            # handler still runs, on a busy machine: raised there, the end left the handler into the `with`'s
            # own frames and escaped it as itself, one budget of microseconds in a few thousand)
            signal.setitimer(signal.ITIMER_REAL, 1e-4)
        else:
            raise Overtime

    previous = signal.signal(signal.SIGALRM, expired)
    _TIMED = over = True
    cpu = None
    guarded = False
    try:
        cpu = _cpu_backstop(seconds) if BACKSTOP else None
        guarded = GUARD and not BACKSTOP and _guard(seconds, path)
        signal.setitimer(signal.ITIMER_REAL, seconds)
        yield
        over = False
    except Overtime:
        pass
    finally:
        while True:  # (a timer that ends as the body does may raise here once, before the first line: again)
            try:
                _TIMED = False
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)
                _restore_cpu(cpu)
                cpu = None
                if guarded:
                    _guard_off()
                    guarded = False
                break
            except Overtime:
                continue
    if over:
        raise AnalyzerError(f"analysis took longer than the time budget ({seconds:g} s)", path)


BACKSTOP = False  # a pool worker process: a file's time budget is backed by a CPU-time limit (backstop_here)
GUARD = False  # the command line's own process: a file's time budget is backed by a guard process (_guard)
WALL_BACKSTOP = False  # a Dask worker of several threads: backed by faulthandler's timer (backstop_threads)
GUARD_MARGIN = 5.0  # seconds at least past a file's budget before the guard stops the process
_GUARD_FD: int | None = None  # the pipe to the guard process, in the process it guards


def _guard(seconds: float, path: str) -> bool:
    """Back the budget of a file analysed in the command's own process (a file named alone, a small scan), where
    no per-file CPU limit fits, with a guard: a process forked once that, told the file and its deadline (the
    budget and as much again, at least GUARD_MARGIN seconds more), stops this process when the deadline passes with the
    file unfinished — a native parser's loop, which no timer reaches — after writing the file's one-line error
    (the process then ends killed, status 137, instead of never). False when no guard could be started."""
    global _GUARD_FD
    import time

    if _GUARD_FD is None:
        try:
            read, write = os.pipe()
            pid = os.fork()
        except OSError:
            return False
        if pid == 0:
            os.close(write)
            _guard_loop(read, os.getppid())
        os.close(read)
        _GUARD_FD = write
    limit = seconds + max(GUARD_MARGIN, seconds)  # (a first import of LIEF is not the file's: seconds of margin)
    line = f"{time.monotonic() + limit!r}\t{limit:g}\t{seconds:g}\t{path}".replace("\n", "\\n") + "\n"
    try:
        os.write(_GUARD_FD, line.encode("utf-8", "surrogateescape"))
    except OSError:
        return False
    return True


def _guard_off() -> None:
    if _GUARD_FD is not None:
        try:
            os.write(_GUARD_FD, b"\n")
        except OSError:
            pass


def _guard_loop(fd: int, parent: int) -> None:
    """The guard process: read deadlines, stop the guarded process when one passes; end with it (end of file)."""
    import select
    import signal
    import time

    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # (Ctrl-C is the guarded process's to answer)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.close(1)  # (the report's output is the guarded process's: a reader waits for its end, not this one's)
        buf, deadline, told = b"", None, b""
        while True:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not select.select([fd], [], [], wait)[0]:
                os.write(2, told)
                os.kill(parent, signal.SIGKILL)
                break
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if not line:
                    deadline = None
                    continue
                at, limit, seconds, path = line.split(b"\t", 3)
                deadline = float(at)
                told = (b"binlens: " + path + b": analysis did not end " + limit + b" s after it began (its time "
                        b"budget: " + seconds + b" s): a loop in native code, which no timer reaches; stopped\n")
    finally:
        os._exit(0)


def _forget_guard() -> None:
    """A process forked from a guarded one (a pool's worker) is not that process: it drops the pipe."""
    global _GUARD_FD, GUARD
    if _GUARD_FD is not None:
        try:
            os.close(_GUARD_FD)
        except OSError:
            pass
    _GUARD_FD, GUARD = None, False


def backstop_here() -> None:
    """In a worker process of the local pool (its initializer), or a Dask worker that runs one task at a time:
    a file whose analysis spins in native code, where neither timer reaches (a parser's loop that never returns
    to Python), is stopped by the kernel when the process has spent the file's budget and as much again of CPU
    time beyond what it had (RLIMIT_CPU: SIGXCPU ends the process, core dumps off), and the pool (or Dask, as
    the worker's death) makes a dead worker's file that file's error. Not in a Dask worker of several threads:
    the process's CPU time is then theirs together, and would end a slow file's worker for another's work."""
    import resource

    global BACKSTOP
    BACKSTOP = True
    resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))


def backstop_threads() -> None:
    """In a Dask worker that runs several tasks at once, where a CPU-time limit cannot serve (the process's CPU
    time is its threads' together): a file whose analysis spins in native code never disarms its budget, and
    faulthandler's timer, whose own C thread needs no GIL, ends the process (dumping its threads' stacks to
    stderr, then _exit) when a thread's file is its budget and as much again, at least 2 s, past its start (the
    CPU-time limit of a worker of one thread allows 1 s: wall time also runs while the machine is busy elsewhere;
    time a thread spends importing LIEF or capstone is not counted, see pause);
    Dask makes the worker's death the file's error, as for the other workers. The timer is the process's
    one: a worker's own use of faulthandler.dump_traceback_later is replaced."""
    global WALL_BACKSTOP
    WALL_BACKSTOP = True


def _restore_cpu(limit: tuple[int, int] | None) -> None:
    if limit is not None:
        import resource

        resource.setrlimit(resource.RLIMIT_CPU, limit)


def _cpu_backstop(seconds: float) -> tuple[int, int] | None:
    """Lower the process's CPU-time limit to what it has spent, plus `seconds` and as much again (at least 1 s);
    the limit before, to put back (None: left as it was, the hard limit being lower)."""
    import math
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    used = resource.getrusage(resource.RUSAGE_SELF)
    at = math.ceil(used.ru_utime + used.ru_stime + seconds + max(1.0, seconds))
    if (hard != resource.RLIM_INFINITY and at > hard) or (soft != resource.RLIM_INFINITY and at > soft):
        return None
    resource.setrlimit(resource.RLIMIT_CPU, (at, hard))
    return soft, hard


_TIME_BUDGET_CODE = time_budget.__wrapped__.__code__  # type: ignore[attr-defined]
_TIMED = False  # a time budget runs (in the main thread)
_PAUSED = False  # its clock is stopped (uncharged)


def _entering_or_leaving(frame: FrameType | None) -> bool:
    """Whether this innermost frame is time_budget's own or contextlib's around it, as the budget's `with`
    begins or ends: raised there, the budget's end would escape the `with` as itself, not as the file's error
    (seen with budgets of microseconds). (A thread waiting for the memory budget's turn, in this module's
    code, is not: its time budget ends while it waits.)"""
    return frame is not None and (frame.f_code is _TIME_BUDGET_CODE
                                  or frame.f_code.co_filename == contextmanager.__code__.co_filename)


def _importing(frame: FrameType | None) -> bool:
    """Whether the thread of this (innermost) frame is importing a module."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


@contextmanager
def uncharged() -> Iterator[None]:
    """The calling thread's time budget, if one runs, stops for the body."""
    global _PAUSED
    if threading.current_thread() is not threading.main_thread():
        dog = _DOG
        if dog is None or not dog.armed() or dog.paused():  # (no budget, or stopped already: nested)
            yield
            return
        try:
            dog.pause()
            yield
        finally:
            dog.resume()
        return
    if not _TIMED or _PAUSED:
        yield
        return
    import signal

    _PAUSED = True  # (from here the timer's signal, if it comes, asks again later: nothing is raised)
    left = 0.0
    try:
        left = signal.setitimer(signal.ITIMER_REAL, 0)[0]
        yield
    finally:
        _PAUSED = False
        if _TIMED:  # (what was left; ended already: at once)
            signal.setitimer(signal.ITIMER_REAL, left if left > 0 else 1e-6)


def loaded(name: str) -> ModuleType | None:
    """Module `name` if it is imported in full, else None. A module another thread is importing now is in
    sys.modules already, without the names its code has not reached (a Dask worker's two threads: one read
    `analyzer.cache.READY` while the other imported it, and the chunk failed); the calling thread cannot have
    used it yet, since its own import would have waited for the other's."""
    mod = sys.modules.get(name)
    if mod is None or getattr(getattr(mod, "__spec__", None), "_initializing", False):
        return None
    return mod


def imported(name: str) -> ModuleType:
    """Module `name`, its first import not counted against the calling thread's time budget."""
    mod = loaded(name)
    if mod is not None:
        return mod
    import importlib

    with uncharged():  # (one another thread imports now: waited for, as an import statement would)
        return importlib.import_module(name)


class _Watchdog:
    """The time budgets of threads other than the main one: one thread waits for the earliest deadline and
    raises Overtime in the thread whose deadline it is (PyThreadState_SetAsyncExc), again every 0.1 s until
    that thread disarms, later while it imports a module; arming and disarming take a lock and no wake-up but
    when the deadline comes before the watchdog's next one (a budget's deadlines only move later)."""

    def __init__(self) -> None:
        import ctypes  # noqa: F401 - (imported now, not by the first budget's end: that import delayed it)

        # The threads under a budget take the lock itself (`with` a C lock: acquired and entered in one step),
        # never the Condition, whose Python-level __enter__ an Overtime could interrupt just after acquiring:
        # the lock was then held for ever and the watchdog, waiting for it, never woke again.
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)  # (the watchdog's own thread waits on it)
        self._deadlines: dict[int, float] = {}  # thread id → when its budget ends
        self._paused: dict[int, float] = {}  # thread id → since when its clock is stopped (uncharged)
        self._fired: set[int] = set()  # threads sent Overtime, until they disarm
        self._ends: dict[int, float] = {}  # thread id → when the process ends if it has not disarmed (WALL_BACKSTOP)
        self._wake_at = float("inf")  # the watchdog's next wake-up (inf: waits to be told)
        self._thread: Any = None
        previous = sys.unraisablehook

        def dropped(unraisable: Any) -> None:  # (one raised where Python drops it is sent again: no message)
            if unraisable.exc_type is not Overtime:
                previous(unraisable)

        sys.unraisablehook = dropped

    def armed(self) -> bool:
        return threading.get_ident() in self._deadlines

    def paused(self) -> bool:
        return threading.get_ident() in self._paused

    def arm(self, seconds: float) -> None:
        import time

        with self._lock:
            at = time.monotonic() + seconds
            self._deadlines[threading.get_ident()] = at
            if WALL_BACKSTOP:
                self._ends[threading.get_ident()] = at + max(seconds, 2.0)
                self._backstop()
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, name="binlens-time-budget", daemon=True)
                self._thread.start()
            self._wake(at)

    def _wake(self, at: float) -> None:
        if at < self._wake_at:
            self._wake_at = at
            self._cond.notify()

    def disarm(self) -> None:
        """The calling thread's budget ended; an Overtime sent to it and not yet raised is withdrawn (one raised
        while this runs is taken here: the body is over)."""
        tid = threading.get_ident()
        while True:
            try:
                with self._lock:
                    self._deadlines.pop(tid, None)
                    self._paused.pop(tid, None)
                    self._withdraw(tid)
                    if self._ends.pop(tid, None) is not None:
                        self._backstop()
                return
            except Overtime:
                continue

    def _withdraw(self, tid: int) -> None:
        if tid in self._fired:
            self._fired.discard(tid)
            _async_raise(tid, None)

    def pause(self) -> None:
        """Stop the calling thread's clock; an Overtime sent and not yet raised is withdrawn (sent again when
        the clock, resumed, runs out again)."""
        import time

        tid = threading.get_ident()
        with self._lock:
            self._paused[tid] = time.monotonic()
            self._withdraw(tid)
            if tid in self._ends:
                self._backstop()

    def resume(self) -> None:
        import time

        tid = threading.get_ident()
        with self._lock:
            since = self._paused.pop(tid, None)
            if since is not None and tid in self._deadlines:
                self._deadlines[tid] += time.monotonic() - since
                self._wake(self._deadlines[tid])
                if tid in self._ends:
                    self._ends[tid] += time.monotonic() - since
                    self._backstop()

    def _backstop(self) -> None:
        """(The lock held.) faulthandler's timer set for the earliest end of a thread not paused, or cancelled."""
        import faulthandler
        import time

        ends = [end for tid, end in self._ends.items() if tid not in self._paused]
        if not ends:
            faulthandler.cancel_dump_traceback_later()
            return
        try:
            faulthandler.dump_traceback_later(max(0.001, min(ends) - time.monotonic()), exit=True)
        except (RuntimeError, ValueError, OSError):  # (no stderr to write the stacks to: the timer is not set)
            pass

    def _watch(self) -> None:
        import time

        with self._cond:
            while True:
                now = time.monotonic()
                frames: dict[int, FrameType] | None = None
                for tid, at in list(self._deadlines.items()):
                    if at <= now and tid not in self._paused:
                        if frames is None:
                            frames = sys._current_frames()
                        if _importing(frames.get(tid)) or _entering_or_leaving(frames.get(tid)):
                            self._deadlines[tid] = now + 0.001  # (asked again soon)
                            continue
                        self._deadlines[tid] = now + 0.1  # (sent again every 0.1 s until disarmed: one raised
                        self._fired.add(tid)  # where Python drops it, in a gc callback or a __del__, is not the last)
                        _async_raise(tid, Overtime)
                self._wake_at = min((at for tid, at in self._deadlines.items() if tid not in self._paused),
                                    default=float("inf"))
                self._cond.wait(None if self._wake_at == float("inf") else self._wake_at - now)


def _async_raise(tid: int, exc: type[BaseException] | None) -> None:
    """Raise `exc` in thread `tid` at its next bytecode (None: withdraw one not raised yet)."""
    import ctypes

    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(tid), None if exc is None else ctypes.py_object(exc))


_DOG: _Watchdog | None = None  # this process's watchdog, made by the first budget of a thread not the main one
_DOG_MADE = threading.Lock()


def _watchdog() -> _Watchdog:
    global _DOG
    with _DOG_MADE:
        if _DOG is None:
            _DOG = _Watchdog()
        return _DOG


@contextmanager
def memory_budget(limit: int, path: str) -> Iterator[None]:
    """Raise AnalyzerError (that file's error) when the body needs more than `limit` bytes of address space
    beyond what the process uses already (the file's mapping included): the soft RLIMIT_AS, lowered for the
    body and put back after it."""
    if limit <= 0:
        try:
            yield
        except MemoryError:  # (no budget: what the machine has ran out; the file's error, not a traceback)
            raise AnalyzerError("analysis ran out of memory", path) from None
        return
    import resource

    turn: Any = _MEMORY_TURN  # (a C RLock: typeshed lacks its _recursion_count)
    held = turn._recursion_count()  # (how often this thread holds it already: nested budgets)
    try:  # (the limit is the process's: threads analysing at once, as a Dask worker's, take turns under it)
        while not turn.acquire(timeout=0.05):  # (a time budget running out is raised while waiting)
            pass
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        with open("/proc/self/statm") as f:
            used = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        bound = used + limit if hard == resource.RLIM_INFINITY else min(used + limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (bound, hard))
        try:
            yield
        except MemoryError:
            raise AnalyzerError(f"analysis needed more memory than the memory budget ({limit} bytes)", path) from None
        finally:
            resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    finally:  # (taken again by this thread: put back, also when a budget's end came just as it was taken)
        while turn._recursion_count() > held:
            turn.release()


_MEMORY_TURN = threading.RLock()  # held by the thread whose memory budget is the process's limit (nested: its own)


def _after_fork() -> None:
    """A forked child has no watchdog thread (it starts its own when a budget needs one), and its one thread
    holds no budget."""
    global _DOG, _DOG_MADE, _MEMORY_TURN
    _DOG = None
    _DOG_MADE = threading.Lock()
    _MEMORY_TURN = threading.RLock()


os.register_at_fork(after_in_child=_after_fork)
os.register_at_fork(after_in_child=_forget_guard)
