"""Scale-out on Dask (`binlens scan --dask ADDRESS|local[:N]`, the `dask` extra): the same tasks as a local
scan, run by Dask workers, results back in input order and identical to a local run.

Tasks go in chunks (one future per chunk), handed out as a local scan hands them to its pool (the largest
files first, results in input order), so that scheduling costs little per file; each chunk carries the
environment the analysis reads (where containers were unpacked, the result cache): workers on one machine, or
on machines sharing the filesystem, find the files by the same paths. A worker that dies mid-scan loses its
chunk; Dask runs it again on another worker, as many times as the scheduler allows (its allowed failures), and
a chunk lost each time goes again one task at a time: a file whose workers die when it runs alone is that
file's error, as in a local scan. Every artifact is reported once."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from analyzer.errors import AnalyzerError

PASSED_ENV = ("BINLENS_UNPACK_DIR", "BINLENS_UNPACK_ERRORS", "BINLENS_CACHE_DIR")


def _run_chunk(chunk: list[tuple[str, bool]], work: Callable[[tuple[str, bool]], Any],
               env: dict[str, str]) -> list[Any]:
    """`work` over the chunk with the scan's environment set: the process's, shared by a worker's threads, so
    chunks of one scan run at once under it and a chunk of another scan (another environment) waits for them to
    end (before, the first thread to finish restored the environment under the other: its members were not
    found, and left out of the report)."""
    from analyzer import budget
    from analyzer.pipeline import _flush_cache, _run_task

    threads = _worker_threads()  # (a native parser's endless loop: this worker is ended, the file's error)
    if threads == 1 and not budget.BACKSTOP:
        budget.backstop_here()  # (by the kernel, at a CPU-time limit)
    elif threads > 1 and not budget.WALL_BACKSTOP:
        budget.backstop_threads()  # (by faulthandler's timer)
    with _SET.turn:
        while _SET.running and _SET.env != env:
            _SET.turn.wait()
        if not _SET.running:
            _SET.env, _SET.replaced = env, {k: os.environ.get(k) for k in PASSED_ENV}
            os.environ.update(env)
            for k in PASSED_ENV:
                if k not in env:
                    os.environ.pop(k, None)
        _SET.running += 1
    try:
        return [_run_task(t, work) for t in chunk]
    finally:
        with _SET.turn:
            try:
                _flush_cache()  # the rows this worker put for the chunk (a worker may be gone before the next one)
            finally:  # (the chunk is over whatever the flush raised: a count left up held every later scan's
                _SET.running -= 1  # chunks waiting for ever)
                if not _SET.running:
                    for k, v in _SET.replaced.items():
                        if v is None:
                            os.environ.pop(k, None)
                        else:
                            os.environ[k] = v
                    _SET.turn.notify_all()


def _worker_threads() -> int:
    """How many tasks this Dask worker runs at once (binlens's local clusters: one); 0 outside a worker."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return 0
    state = getattr(worker, "state", worker)
    return int(getattr(state, "nthreads", 0) or 0)


class _ScanEnvironment:
    """A worker process's threads: the scan environment set, how many chunks run under it, what it replaced."""

    def __init__(self) -> None:
        self.turn = threading.Condition()  # taken to change any of these, waited on for another scan's turn
        self.env: dict[str, str] | None = None
        self.running = 0
        self.replaced: dict[str, str | None] = {}


_SET = _ScanEnvironment()


def _client(address: str) -> Any:
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise AnalyzerError("--dask needs the dask extra: pip install 'binlens[dask]'", address) from None
    if address == "local" or address.startswith("local:"):
        n = address.partition(":")[2]
        if n and (not n.isdigit() or int(n) < 1):
            raise AnalyzerError("local[:N] takes a number of workers, 1 or more", address)
        import threading

        import dask

        # Workers forked from this process start in a tenth of the time of spawned ones (binlens is imported
        # already), so fork when nothing but this thread runs here: the cluster's own loop thread forks while this
        # one waits in the constructor, so no lock can be held at the fork. A worker the nanny restarts later is
        # spawned (the setting is read at each start). Dask's sampling profiler (every 10 ms) is off: it cost the
        # workers' analysis about a twentieth of its time.
        method = "fork" if threading.active_count() == 1 else "spawn"
        with dask.config.set({"distributed.worker.multiprocessing-method": method,
                              "distributed.worker.profile.enabled": False}):
            cluster = LocalCluster(n_workers=int(n or os.cpu_count() or 1), threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=50,
                                   scheduler_kwargs={"dashboard_address": ":0"})  # (its HTTP server on any port:
            # on 8787, the default, a second cluster on the machine warned on stderr that the port was taken)
        return Client(cluster)
    try:
        client = Client(address, timeout=30)
    except (OSError, TimeoutError) as e:
        raise AnalyzerError(f"cannot reach the Dask scheduler ({e})", address) from None
    wait = _worker_wait()
    try:  # (tasks handed to a scheduler without workers would wait for ever)
        client.wait_for_workers(1, timeout=wait)
    except (OSError, TimeoutError):
        client.close()
        raise AnalyzerError(f"no Dask worker joined the scheduler in {wait:g} s", address) from None
    return client


def _worker_wait() -> float:
    """Seconds a scan waits for the first worker of a scheduler that has none: BINLENS_DASK_WAIT, else 30."""
    try:
        return max(0.1, float(os.environ.get("BINLENS_DASK_WAIT", "30")))
    except ValueError:
        return 30.0


@contextmanager
def dask_workers(address: str) -> Iterator[tuple[Callable[..., Any], int, tuple[type[BaseException], ...]]]:
    """A way to hand a chunk of tasks to the cluster at `address` (a function of the chunk and the work to do
    on each task, returning the future of the list of results), how many worker threads it has, and the
    exceptions of a chunk the cluster gave up on (Distributed's KilledWorker: the workers running it died, as
    many times as the scheduler allows); the client (and a local cluster) closed on leaving. The local scan's
    hand-out (analyzer.pipeline._parallel) decides what goes when, here as there."""
    client = _client(address)
    cluster = getattr(client, "cluster", None)
    try:
        env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}

        def submit(chunk: list[tuple[str, bool]], work: Callable[[tuple[str, bool]], Any]) -> Any:
            return client.submit(_run_chunk, chunk, work=work, env=env, pure=False, retries=2)

        from distributed import KilledWorker

        yield submit, max(1, sum(client.nthreads().values())), (KilledWorker,)
    finally:
        client.close()
        if cluster is not None and address.startswith("local"):
            cluster.close()
