"""Input sources: what the user names (files, directories) as the files to analyze.

Archives and container images will be sources too: each yields (name shown to
users, how to open it, named explicitly or found).
"""

from __future__ import annotations

import os


def walk(root: str) -> list[str]:
    """Every regular file below `root` (symlinks not followed), sorted by path; binaries or not.

    Iterative, so a tree of any depth is walked (no recursion limit). Sniffing is left to the caller, so that
    it can be spread over worker processes.
    """
    found: list[str] = []
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda d: d.name)
        except OSError:
            continue
        subfolders = []
        for entry in entries:
            try:
                if entry.is_symlink():
                    continue
                if entry.is_dir():
                    subfolders.append(entry.path)
                elif entry.is_file():
                    found.append(entry.path)
            except OSError:
                continue
        stack.extend(reversed(subfolders))
    return sorted(found, key=_walk_order)


def _walk_order(path: str) -> list[str]:
    """A depth-first, name-ordered walk's order: compare paths component by component."""
    return path.split(os.sep)


def expand(paths: list[str]) -> list[tuple[str, bool]]:
    """(file, named explicitly) for every path; directories are walked (binaries or not)."""
    out: list[tuple[str, bool]] = []
    for p in paths:
        if os.path.isdir(p):
            out.extend((f, False) for f in walk(p))
        else:
            out.append((p, True))
    return out
