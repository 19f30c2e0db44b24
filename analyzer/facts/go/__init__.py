"""Go: the build info every Go binary embeds (`buildinfo`) and what it says about linkage (`linkage`).

The go.mod/go.sum/go.work module graph will live here too, as its own subject kind.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
