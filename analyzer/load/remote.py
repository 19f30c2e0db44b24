"""Inputs named by URL (`s3://bucket/release/`, `gs://...`, `https://host/app.deb`, `file:///srv/dist/`), read
through fsspec (installed with the `dask` extra; `s3fs`, `gcsfs` for their protocols).

A URL is a name like a container member's: the file behind it is copied on first use into the scan's private
unpack directory (or, on a Dask worker that does not share it, a directory of that process's own) and analysed
there, so the process that analyses a file is the one that fetches it — on a cluster, the workers read the
object store, not the machine that started the scan. The report names the URL. A URL that names a directory
(a prefix) stands for every file below it, sorted.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import re
import shutil
import tempfile
from typing import Any

from analyzer.errors import AnalyzerError

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")
_copies: dict[str, str] = {}  # URL -> local copy, per process
_own_dir: list[str] = []


def is_url(path: str) -> bool:
    return bool(_URL.match(path))


def _fs(url: str) -> tuple[Any, str]:
    try:
        import fsspec
    except ImportError:
        raise AnalyzerError("reading URLs needs fsspec: pip install 'binlens[dask]'", url) from None
    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as e:  # no package for the protocol, or an unknown protocol
        raise AnalyzerError(f"cannot read this URL: {_one_line(e)}", url) from None


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= 300 else text[:300] + "..."


def expand(url: str) -> list[str]:
    """The file URLs a URL stands for: itself, or every file below it when it names a directory."""
    fs, root = _fs(url)
    try:
        if not fs.isdir(root):
            if not fs.exists(root):
                raise AnalyzerError("no such file", url)
            return [url]
        protocol = url.split("://", 1)[0]
        return [f"{protocol}://{p}" if "://" not in p else p
                for p in sorted(fs.find(root)) if p.rstrip("/") != root.rstrip("/")]  # fmt: skip
    except AnalyzerError:
        raise
    except Exception as e:  # noqa: BLE001 - every filesystem's own errors (network, permission, parse)
        raise AnalyzerError(f"cannot list: {_one_line(e)}", url) from None


def _directory() -> str:
    from analyzer.load.archives import UNPACK_ENV

    shared = os.environ.get(UNPACK_ENV)
    if shared and os.path.isdir(shared):
        return os.path.join(shared, "urls")
    if not _own_dir:  # a worker that does not see the scan's directory (another machine)
        _own_dir.append(tempfile.mkdtemp(prefix="binlens-urls-"))
        atexit.register(shutil.rmtree, _own_dir[0], True)
    return _own_dir[0]


def local_copy(url: str) -> str:
    """The local file holding the URL's bytes, fetched once per process (bounded as one container member is)."""
    if url in _copies and os.path.exists(_copies[url]):
        return _copies[url]
    from analyzer.load.archives import Limits

    limit = Limits().member_bytes
    fs, root = _fs(url)
    folder = _directory()
    os.makedirs(folder, exist_ok=True)
    target = os.path.join(folder, hashlib.sha256(url.encode()).hexdigest()[:32])
    if not os.path.exists(target):
        partial = f"{target}.{os.getpid()}.part"
        try:
            with fs.open(root, "rb") as src, open(partial, "wb") as out:
                copied = 0
                while chunk := src.read(1 << 20):
                    copied += len(chunk)
                    if copied > limit:
                        raise AnalyzerError(f"larger than {limit} bytes", url)
                    out.write(chunk)
            os.replace(partial, target)  # atomic: two workers fetching the same URL write one file
        except AnalyzerError:
            raise
        except FileNotFoundError:
            raise AnalyzerError("no such file", url) from None
        except Exception as e:  # noqa: BLE001 - every filesystem's own errors (network, permission)
            raise AnalyzerError(f"cannot read: {_one_line(e)}", url) from None
        finally:
            if os.path.exists(partial):
                os.unlink(partial)
    _copies[url] = target
    return target
