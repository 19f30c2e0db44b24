"""One part of a report made on the second core: a child forked from this process computes it (from the objects
this process holds at the fork, without copying them) while this process goes on with the rest.

The child writes the part as text (JSON) into a file in memory and leaves with os._exit (no handlers, no buffers
of the parent flushed). Where no child can be forked (no os.fork, another thread running: a fork would copy its locks
held) or the child fails, the part is made here, by the same function: the report is the same either way
(tests/test_gomod.py compares them byte for byte)."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from typing import Any

from analyzer.report.json import encode_entry as _encode  # (the JSON report's own compact encoding)


def can_fork() -> bool:
    return hasattr(os, "fork") and threading.active_count() == 1


class Forked:
    """`make()`'s value, computed in a child forked now; text() is its JSON, value() the value itself."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._text: str | None = None
        self._pid = 0
        self._fd = -1
        if not can_fork():
            return
        # (a file in memory, not a pipe: the child writes it all at once and leaves, whenever the parent reads)
        fd = os.memfd_create("binlens-part", os.MFD_CLOEXEC) if hasattr(os, "memfd_create") else _temporary()
        pid = os.fork()
        if pid == 0:  # the child: make the part, write it, leave
            code = 1
            try:
                view = memoryview(_encode(make()).encode())
                while view:
                    view = view[os.write(fd, view):]
                code = 0
            except BaseException:  # noqa: BLE001 (whatever it was, the parent makes the part itself)
                pass
            finally:
                os._exit(code)
        self._pid, self._fd = pid, fd

    def text(self) -> str:
        """The value as JSON text (compact separators, as the JSON report writes it)."""
        if self._text is None:
            got = self._collect()
            self._text = got if got is not None else _encode(self._make())
        return self._text

    def value(self) -> Any:
        if self._text is None:
            self._text = self._collect()
            if self._text is None:
                value = self._make()
                self._text = _encode(value)
                return value
        return json.loads(self._text)

    def _collect(self) -> str | None:
        """The child's text (None where there was no child, or it failed); the child reaped."""
        if not self._pid:
            return None
        try:
            _, status = os.waitpid(self._pid, 0)
            self._pid = 0
            if os.waitstatus_to_exitcode(status) != 0:
                return None
            data = os.pread(self._fd, os.fstat(self._fd).st_size, 0)
            return data.decode()
        finally:
            os.close(self._fd)
            self._fd = -1

    def __del__(self) -> None:
        # never collected (the run stopped on an error first): the child is reaped, its file closed
        if self._pid:
            os.waitpid(self._pid, 0)
            os.close(self._fd)
            self._pid = 0


def _temporary() -> int:
    import tempfile

    return os.dup(tempfile.TemporaryFile().fileno())
