"""Go: the build info every Go binary embeds (`buildinfo`) and what it says about linkage (`linkage`).

The go.mod/go.sum/go.work module graph will live here too, as its own subject kind.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from analyzer.errors import AnalyzerError

TYPE_CHECKING = False  # typing is not imported at run time (analyzer/records.py says why)

if TYPE_CHECKING:
    from typing import Any

    from analyzer.facts import Context
    from analyzer.load import Artifact


def provide(art: Artifact, known: dict[str, Any], context: Context) -> dict[str, Any] | None:
    """The `go` facts: build info, build ID, pclntab, and `go.linkage` from them and the format facts."""
    from analyzer.facts.go import buildinfo, linkage

    go = buildinfo.facts(art)
    if go is None:
        return None
    go["linkage"] = linkage.facts(art, known, go)
    return {"go": go}


def build_infos(paths: list[str], choice: Callable[[], dict[str, Any]] | None = None
                ) -> Iterator[tuple[str, dict[str, Any]]]:  # fmt: skip
    """(artifact name, build info) of every Go binary under `paths`, read without any other fact (Mach-O
    is not handed to LIEF). A file named explicitly that is not a Go binary is an AnalyzerError; inside a
    directory, files that are not (readable) binaries are passed over. `choice`: what is asked of the
    containers read (pipeline.Request's limits, platform and image), asked only when there is one."""
    import os

    from analyzer import load
    from analyzer.facts.go import buildinfo

    if all(load.is_plain(p) and os.path.isfile(p) and load.sniff_file(p) for p in paths):
        # binaries named one by one (no directory, container or URL to expand): the readers of containers are
        # not even imported (`go version -m` on a few files is all start-up)
        yield from _build_infos([(p, True) for p in paths], load, buildinfo)
        return
    from analyzer.load.sources import unpacking
    from analyzer.pipeline import container_limits

    asked: dict[str, Any] = choice() if choice else {"limits": (), "platform": "", "image": ""}
    with unpacking(paths, container_limits(asked["limits"]), asked["platform"], image=asked["image"]) as tasks:
        yield from _build_infos(tasks, load, buildinfo)


def _build_infos(tasks: Iterable[tuple[str, bool]], load: Any, buildinfo: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, explicit in tasks:
        if not explicit and load.sniff_file(path) is None:
            continue
        try:
            arts = load.open_artifacts(path, parse=False)
        except AnalyzerError:
            if explicit:
                raise
            continue
        found = [(a.path, buildinfo.facts(a)) for a in arts]
        if explicit and not any(go for _, go in found):
            raise AnalyzerError("not a Go executable", path)
        yield from ((name, go) for name, go in found if go)
