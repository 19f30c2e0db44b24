"""A set of an image's relative paths that finds those under a directory (what a whiteout removes) without an
entry per ancestor: kept sorted, the paths under `d` are the ones between `d/` and `d0` ('0' follows '/').
An index by every ancestor holds a string per directory level of each path, so a member 2,000 directories deep
cost 4 MB; this holds each path once."""

from __future__ import annotations

from bisect import bisect_left, insort


class PathSet:
    def __init__(self) -> None:
        self._sorted: list[str] = []
        self._set: set[str] = set()

    def __contains__(self, path: str) -> bool:
        return path in self._set

    def __len__(self) -> int:
        return len(self._set)

    def add(self, path: str) -> None:
        if path not in self._set:
            self._set.add(path)
            insort(self._sorted, path)

    def discard(self, path: str) -> None:
        if path in self._set:
            self._set.remove(path)
            del self._sorted[bisect_left(self._sorted, path)]

    def has_under(self, directory: str) -> bool:
        """Whether a path inside `directory` is in the set."""
        i = bisect_left(self._sorted, directory + "/")
        return i < len(self._sorted) and self._sorted[i].startswith(directory + "/")

    def under(self, directory: str) -> list[str]:
        """The paths inside `directory` ("" is the top: all of them), in sorted order."""
        if not directory:
            return list(self._sorted)
        lo = bisect_left(self._sorted, directory + "/")
        return self._sorted[lo:bisect_left(self._sorted, directory + "0", lo)]
