"""Facts: one module per concern, and the registry that says which provider makes which fact.

A provider is a function `provide(subject, known, context) -> dict | None`:
it reads the subject (an opened artifact today; an archive member, an image or
a Go module directory as those inputs land), the facts computed before it
(`known`, for the ones it `needs`) and the run's context (the policy, the
loader options), and returns top-level fact keys to merge into the subject's
facts (None when it has nothing to say about this subject).

The pipeline computes only what is asked for: the default facts, the facts
`--facts` names, and the facts the enabled rules read (rules name them in
their CEL conditions: `facts.compat`, `facts.go`), each with the providers it
needs first. An expensive fact (symbol binding today; syscalls next) costs
nothing when nobody asks for it.

To add a fact: write `analyzer/facts/NAME.py` with a `provide` function and add
one `Provider` line below.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable

from analyzer.records import Record

TYPE_CHECKING = False  # typing is not imported at run time (analyzer/records.py says why)
if TYPE_CHECKING:
    from typing import Any

BINARY_KINDS = ("ELF", "PE", "MachO")


class Provider(Record):
    name: str  # what `--facts` and the report's `facts_computed` call it
    function: str  # "module:function", imported on first use
    kinds: tuple[str, ...]  # the subject kinds (binary formats today) it applies to
    provides: tuple[str, ...]  # the top-level fact keys it writes
    needs: tuple[str, ...] = ()  # providers whose facts it reads
    expensive: bool = False  # costs more than reading headers: never computed unless asked for
    default: bool = True  # part of a default scan's report
    doc: str = ""

    def load(self) -> Callable[[Any, dict[str, Any], Context], dict[str, Any] | None]:
        module, _, attr = self.function.partition(":")
        fn: Callable[[Any, dict[str, Any], Context], dict[str, Any] | None] = getattr(
            importlib.import_module(module), attr
        )
        return fn


class Context(Record):
    """What providers may read besides the subject: the run's policy and the loader model's options."""

    policy: Any = None  # analyzer.policy.rules.Policy, or None when no rules run (binlens go --format json)
    loader: Any = None  # (analyzer.facts.loader.Options, Sysroot) for `deps`


# In dependency order, which is also the order of the keys in the JSON report.
REGISTRY: tuple[Provider, ...] = (
    Provider("elf", "analyzer.facts.elf:provide", ("ELF",), ("arch", "bits", "endian", "elf", "sections"),
             doc="architecture, e_flags, notes (build-id, ABI tag, x86 ISA level), sections"),
    Provider("linkage", "analyzer.facts.linkage:provide", ("ELF",),
             ("kind", "linkage", "interpreter", "libc", "needed", "rpath", "runpath", "soname", "loader", "plugin"),
             needs=("elf",), doc="static / static-pie / dynamic, interpreter, libc, DT_NEEDED, RPATH, RUNPATH, SONAME"),
    Provider("symvers", "analyzer.facts.symvers:provide", ("ELF",),
             ("version_needs", "versioned_imports", "version_max", "version_unnumbered", "version_definitions",
              "glibc_component"),
             doc="version needs, versioned imports, the highest node per namespace, version definitions"),
    Provider("pe", "analyzer.facts.pe:provide", ("PE",), ("arch", "bits", "endian", "pe", "sections"),
             doc="machine, subsystem, imports, minimum OS version, sections"),
    Provider("macho", "analyzer.facts.macho:provide", ("MachO",), ("arch", "bits", "endian", "macho", "sections"),
             doc="CPU type, file type, dylibs, minimum OS and SDK, sections"),
    Provider("size", "analyzer.facts.size:provide", BINARY_KINDS, ("size", "strip_savings"), expensive=True,
             doc="bytes per category and the exact savings of strip and Go's -s -w"),
    Provider("go", "analyzer.facts.go:provide", BINARY_KINDS, ("go",),
             needs=("elf", "linkage", "pe", "macho"),
             doc="Go build info, build ID and Go linkage facts"),
    Provider("os", "analyzer.facts.os:provide", BINARY_KINDS, ("os",), needs=("elf", "linkage", "pe", "macho", "go"),
             doc="the operating system it is for, and the evidence"),
    Provider("hardening", "analyzer.facts.hardening:provide", BINARY_KINDS, ("hardening",),
             needs=("elf", "linkage", "go"), doc="exploit mitigations: RELRO, canary, NX, PIE, FORTIFY, CET, ..."),
    Provider("deps", "analyzer.facts.loader:provide", ("ELF",), ("deps",), needs=("elf", "linkage", "os"),
             expensive=True, default=False,
             doc="libraries resolved in a sysroot as ld.so does, symbol binding, predicted loader errors"),
    Provider("syscalls", "analyzer.facts.syscalls:provide", ("ELF",), ("syscalls",), needs=("elf", "go"),
             expensive=True, default=False,
             doc="raw system-call sites, their numbers and names per ABI, wrappers, the kernel they need"),
    Provider("compat", "analyzer.policy.compat:provide", BINARY_KINDS, ("compat",),
             needs=("elf", "linkage", "symvers", "os", "go"),
             doc="per target whether it runs, and the oldest release per distribution family (ELF); per platform "
                 "tag of the wheel it ships in, whether it keeps the tag's promise"),
    Provider("budget", "analyzer.facts.size:provide_budget", BINARY_KINDS, ("size",), needs=("size",),
             doc="the size budget and growth that apply to the artifact"),
)  # fmt: skip
BY_NAME = {p.name: p for p in REGISTRY}


def names() -> list[str]:
    return [p.name for p in REGISTRY]


def providers_of(keys: Iterable[str]) -> set[str]:
    """The providers that write any of these top-level fact keys."""
    wanted = set(keys)
    return {p.name for p in REGISTRY if wanted & set(p.provides)}


def resolve(requested: Iterable[str]) -> tuple[Provider, ...]:
    """The providers to run for `requested` names, with everything they need, in registry order."""
    todo = list(requested)
    chosen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in chosen:
            continue
        if name not in BY_NAME:
            from analyzer.errors import AnalyzerError

            raise AnalyzerError(f"unknown fact '{name}' (known: {', '.join(names())})")
        chosen.add(name)
        todo.extend(BY_NAME[name].needs)
    return tuple(p for p in REGISTRY if p.name in chosen)


def default_names() -> list[str]:
    return [p.name for p in REGISTRY if p.default]


def compute(subject: Any, kind: str, providers: tuple[Provider, ...], context: Context) -> dict[str, Any]:
    """The facts of one subject: each provider that applies to its kind, in order."""
    known: dict[str, Any] = {}
    for p in providers:
        if kind in p.kinds:
            out = p.load()(subject, known, context)
            if out:
                known.update(out)
    return known
