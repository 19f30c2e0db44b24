"""Scale-out on Dask (`binlens scan --dask ADDRESS|local[:N]`, the `dask` extra): the same tasks as a local
scan, run by Dask workers, results back in input order and identical to a local run.

Tasks go in chunks (one future per chunk) so that scheduling costs little per file; each chunk carries the
environment the analysis reads (where containers were unpacked, the result cache): workers on one machine, or
on machines sharing the filesystem, find the files by the same paths. A worker that dies mid-scan loses its
chunk; Dask runs it again on another worker, so every artifact is reported once."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

from analyzer.errors import AnalyzerError

CHUNK = 16
PASSED_ENV = ("BINLENS_UNPACK_DIR", "BINLENS_UNPACK_ERRORS", "BINLENS_CACHE_DIR")


def _run_chunk(chunk: list[tuple[str, bool]], work: Callable[[tuple[str, bool]], Any],
               env: dict[str, str]) -> list[Any]:
    saved = {k: os.environ.get(k) for k in PASSED_ENV}
    os.environ.update(env)
    for k in PASSED_ENV:
        if k not in env:
            os.environ.pop(k, None)
    try:
        return [work(t) for t in chunk]
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _client(address: str) -> Any:
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise AnalyzerError("--dask needs the dask extra: pip install 'binlens[dask]'", address) from None
    if address == "local" or address.startswith("local:"):
        n = address.partition(":")[2]
        if n and not n.isdigit():
            raise AnalyzerError("local[:N] takes a number of workers", address)
        cluster = LocalCluster(n_workers=int(n or os.cpu_count() or 1), threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=50)
        return Client(cluster)
    try:
        return Client(address, timeout=30)
    except (OSError, TimeoutError) as e:
        raise AnalyzerError(f"cannot reach the Dask scheduler ({e})", address) from None


def run_on_dask(tasks: list[tuple[str, bool]], work: Callable[[tuple[str, bool]], Any],
                address: str) -> Iterator[Any]:
    """The results of `work` over `tasks`, in input order, computed by the cluster at `address`."""
    client = _client(address)
    cluster = getattr(client, "cluster", None)
    try:
        env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
        threads = max(1, sum(client.nthreads().values()))
        # larger chunks on larger scans (less scheduling per file), never so large that a worker idles at the end
        size = max(CHUNK, min(4 * CHUNK, len(tasks) // (threads * 40)))
        chunks = [tasks[i : i + size] for i in range(0, len(tasks), size)]
        futures = client.map(_run_chunk, chunks, work=work, env=env, pure=False, retries=2)
        for fut in futures:
            yield from fut.result()
    finally:
        client.close()
        if cluster is not None and address.startswith("local"):
            cluster.close()
