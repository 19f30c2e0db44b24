"""The `binlens go` view: one artifact's build info as `go version -m` prints it."""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported at run time (analyzer/records.py says why)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


def version_m(path: str, go: dict[str, Any]) -> str:
    """One artifact as `go version -m` prints it."""
    if go.get("modinfo") is None or go.get("build_info") == "damaged":  # go version -m prints nothing for it
        state = f"build info {go['build_info']}" + (f": {go['error']}" if go.get("error") else "")
        if go.get("pclntab"):
            state += f"; pclntab {go['pclntab']}"
        return f"{path}: {go.get('version') or 'unknown Go version'} ({state})\n"
    from analyzer.facts.go.buildinfo import modinfo_string, parse_modinfo

    # go version -m parses the text and writes it back (BuildInfo.String), so quoting is Go's, not the file's;
    # the facts hold that parse already, unless a setting's key came twice (the facts keep its last value)
    settings, order = go["settings"], go["settings_order"]
    if len(order) == len(settings) and go.get("error") is None:
        info = {"path": go["path"], "main": go["main"], "deps": go["deps"],
                "settings": [(k, settings[k]) for k in order]}
    else:
        info = parse_modinfo(go["modinfo"])
    body = modinfo_string(info).rstrip("\n")
    return f"{path}: {go['version']}\n" + ("\t" + body.replace("\n", "\n\t") + "\n" if body else "")


def version_m_text(paths: list[str], choice: Callable[[], dict[str, Any]] | None = None) -> str:
    """`go version -m PATHS...`: only the build info is read, so files are opened without LIEF and without other
    facts (AnalyzerError for a file named explicitly that is not a Go binary). `choice`: see build_infos."""
    from analyzer.facts.go import build_infos

    return "".join(version_m(name, go) for name, go in build_infos(paths, choice))


def write_stdout(text: str) -> None:
    """The text on standard output as it is (a name with escape sequences included, as `go version -m` prints
    it); a full disk or a closed pipe is an AnalyzerError."""
    import sys

    from analyzer.errors import AnalyzerError

    try:
        try:
            sys.stdout.write(text)
        except UnicodeEncodeError:  # a name that is not UTF-8, where the output's encoding is strict: its bytes,
            sys.stdout.flush()      # as `go version -m` prints them
            sys.stdout.buffer.write(text.encode(sys.stdout.encoding or "utf-8", "surrogateescape"))
        sys.stdout.flush()
    except OSError as e:
        raise AnalyzerError(f"cannot write: {e.strerror or e}", "standard output") from None
