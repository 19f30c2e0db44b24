"""The `binlens go` view: one artifact's build info as `go version -m` prints it."""

from __future__ import annotations

from typing import Any


def version_m(path: str, go: dict[str, Any]) -> str:
    """One artifact as `go version -m` prints it."""
    if go.get("modinfo") is None or go.get("build_info") == "damaged":  # go version -m prints nothing for it
        state = f"build info {go['build_info']}" + (f": {go['error']}" if go.get("error") else "")
        if go.get("pclntab"):
            state += f"; pclntab {go['pclntab']}"
        return f"{path}: {go.get('version') or 'unknown Go version'} ({state})\n"
    from analyzer.facts.go.buildinfo import modinfo_string, parse_modinfo

    # go version -m parses the text and writes it back (BuildInfo.String), so quoting is Go's, not the file's
    body = modinfo_string(parse_modinfo(go["modinfo"])).rstrip("\n")
    return f"{path}: {go['version']}\n" + ("\t" + body.replace("\n", "\n\t") + "\n" if body else "")
