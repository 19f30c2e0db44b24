"""Record classes (`class Section(Record): index: int ...`) as typing.NamedTuple makes them, without importing
typing: the modules `binlens go` needs are imported in every short run, and typing alone is a third of their
import time. Type checkers see typing.NamedTuple itself."""

from __future__ import annotations

import collections

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NamedTuple as Record
else:
    _KEPT = ("__annotations__", "__module__", "__qualname__", "__dict__", "__weakref__", "__orig_bases__")

    class _RecordType(type):
        """Fields from the class's annotations (in order, trailing ones with defaults), a collections.namedtuple
        made of them, and the class body's methods, properties and docstring set on it."""

        def __new__(mcls, name: str, bases: tuple[type, ...], ns: dict[str, object]) -> type:
            if not bases:
                return super().__new__(mcls, name, bases, ns)
            fields = list(ns.get("__annotations__", {}))  # type: ignore[call-overload]
            defaults = [ns[f] for f in fields if f in ns]
            if any(f in ns for f in fields[: len(fields) - len(defaults)]):
                raise TypeError(f"{name}: a field without a default follows one with a default")
            cls = collections.namedtuple(name, fields, defaults=defaults, module=str(ns["__module__"]))
            for key, value in ns.items():
                if key not in fields and key not in _KEPT:
                    setattr(cls, key, value)
            cls.__qualname__ = str(ns.get("__qualname__", name))
            return cls

    class Record(metaclass=_RecordType):
        pass
