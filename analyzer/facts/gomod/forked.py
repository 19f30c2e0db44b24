"""One part of a report made on the second core: a child forked from this process computes it (from the objects
this process holds at the fork, without copying them) while this process goes on with the rest.

The child sends the part as text (JSON) through a pipe and leaves with os._exit (no handlers, no buffers of the
parent flushed). Where no child can be forked (no os.fork, another thread running: a fork would copy its locks
held) or the child fails, the part is made here, by the same function: the report is the same either way
(tests/test_gomod.py compares them byte for byte)."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from typing import Any

_encode = json.JSONEncoder(separators=(",", ":")).encode  # (the JSON report's encoding: analyzer/report/json.py)


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
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: make the part, write it, leave
            code = 1
            try:
                os.close(r)
                view = memoryview(_encode(make()).encode())
                while view:
                    view = view[os.write(w, view):]
                code = 0
            except BaseException:  # noqa: BLE001 (whatever it was, the parent makes the part itself)
                pass
            finally:
                os._exit(code)
        os.close(w)
        self._pid, self._fd = pid, r

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
            with os.fdopen(self._fd, "rb") as fh:
                data = fh.read()
        finally:
            self._fd = -1
            _, status = os.waitpid(self._pid, 0)
            self._pid = 0
        return data.decode() if os.waitstatus_to_exitcode(status) == 0 else None

    def __del__(self) -> None:
        # never collected (the run stopped on an error first): the child, its pipe closed, leaves; it is reaped
        if self._pid:
            os.close(self._fd)
            os.waitpid(self._pid, 0)
            self._pid = 0
