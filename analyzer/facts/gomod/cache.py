"""A cache of parsed dependency go.mod files across runs, for large module graphs.

A module version's go.mod never changes (the proxy protocol and the module cache are immutable by design), so
what binlens needs from it — module path, go line, requirements, retractions, deprecation, its h1 hash and
whether it has replace/retract lines — is kept per source directory, keyed by each file's size and mtime, with
the latest version each module's `list` file names (a list that grows is a new key), in the user's cache
directory (`$XDG_CACHE_HOME/binlens/gomod`, `--cache-dir`, `--no-cache`). A run reads one
file instead of thousands. Written atomically (a temporary file renamed over the old one): concurrent runs
never see a torn file, the last writer wins. Only graphs that read at least MIN_READS go.mod files write it."""

from __future__ import annotations

import marshal
import os
import zlib
from pathlib import Path
from typing import Any

FORMAT = 2  # 2: a summary's requirements with its go@ node
MIN_READS = 500
MAX_CACHE = 256 << 20


def default_dir(env: dict[str, str]) -> Path:
    base = env.get("XDG_CACHE_HOME") or os.path.join(env.get("HOME") or os.path.expanduser("~"), ".cache")
    return Path(base) / "binlens" / "gomod"


class SummaryCache:
    """Entries by file path: (size, mtime_ns, entry); `entry` is plain data (marshal-able)."""

    def __init__(self, directory: Path, source_root: str) -> None:
        # (a file per source directory, named by checksums of its path: two directories whose checksums collide
        # share a file, which costs misses, not errors: entries are keyed by each go.mod's own path)
        name = f"{FORMAT}\0{source_root}".encode()
        self.file = directory / f"{zlib.crc32(name):08x}{zlib.adler32(name):08x}.marshal"
        self.entries: dict[str, tuple[int, int, Any]] = {}
        self.added = 0
        self.reads = 0
        try:
            with open(self.file, "rb") as fh:
                data = fh.read(MAX_CACHE + 1)
            if len(data) <= MAX_CACHE:
                loaded = marshal.loads(data)
                if isinstance(loaded, dict) and loaded.get("format") == FORMAT and type(loaded["entries"]) is dict:
                    self.entries = loaded["entries"]
        except (OSError, ValueError, EOFError, TypeError, KeyError):
            self.entries = {}  # a missing or damaged cache is an empty one

    def get(self, path: str, st: os.stat_result, width: int) -> Any:
        """The entry kept for the file at `path` as it is now (its size and mtime), when it is a tuple of `width`
        items (anything else, as in a cache file some other program wrote, is a miss); else None."""
        self.reads += 1
        hit = self.entries.get(path)
        if type(hit) is tuple and len(hit) == 3 and hit[0] == st.st_size and hit[1] == st.st_mtime_ns \
                and type(hit[2]) is tuple and len(hit[2]) == width:
            return hit[2]
        return None

    def put(self, path: str, st: os.stat_result, entry: Any) -> None:
        self.entries[path] = (st.st_size, st.st_mtime_ns, entry)
        self.added += 1

    def save(self) -> None:
        if not self.added or self.reads < MIN_READS:
            return
        try:
            data = marshal.dumps({"format": FORMAT, "entries": self.entries})
            if len(data) > MAX_CACHE:
                return
            self.file.parent.mkdir(parents=True, exist_ok=True)
            import tempfile

            fd, tmp = tempfile.mkstemp(dir=self.file.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, self.file)
        except OSError:
            pass  # a cache that cannot be written is no cache, not an error
