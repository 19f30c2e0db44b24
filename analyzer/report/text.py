"""The terminal view: a compact summary per artifact, or every fact with `detailed`.

Plain text unless the caller says the stream it writes to is a terminal that
wants colour; laid out to read at 80 columns.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence
from typing import Any

from analyzer.report import plural, totals, verdict

WIDTH = 80  # the summary is laid out for 80 columns, terminal or not


class Line:
    """A line of styled spans (text, style): rich's Text where a console renders it, its plain text where a
    file or a pipe takes it as it is — rich is imported only when something must be rendered by it."""

    __slots__ = ("spans",)

    def __init__(self, text: str = "", style: str | None = None) -> None:
        self.spans: list[tuple[str, str | None]] = [(text, style)]  # (the first: the whole line's style, as rich's)

    def append(self, text: str, style: str | None = None) -> Line:
        self.spans.append((text, style))
        return self

    def __add__(self, other: Line) -> Line:
        joined = Line()
        joined.spans = self.spans + other.spans  # (rich's sum: the left's style over all, the right's a span)
        return joined

    @property
    def plain(self) -> str:
        return "".join(t for t, _ in self.spans)

    def rich(self) -> Any:
        from rich.text import Text

        (first, base), *rest = self.spans
        out = Text(first, style=base or "")
        for text, style in rest:
            out.append(text, style=style)
        return out


def _rich_console(buf: io.StringIO, styled: bool) -> Any:
    """Styled for a terminal; no escape codes at all (no colour, no bold) for a file or a pipe. Never markup
    nor emoji codes: what is printed holds names from the files (a library called `lib[/x].so` is that name,
    not a closing tag; `:cat:` is not a cat)."""
    from rich.console import Console

    return Console(
        file=buf,
        force_terminal=styled,
        color_system="auto" if styled else None,
        width=None if styled else WIDTH,
        markup=False,
        emoji=False,
        highlight=False,
        soft_wrap=False,
    )


def _rich_form(line: Any) -> Any:
    return line.rich() if isinstance(line, Line) else line


class _Styled:
    """The console for a terminal: rich's, given rich's Text for each Line."""

    def __init__(self, buf: io.StringIO) -> None:
        self.console = _rich_console(buf, True)

    def print(self, line: Any, soft_wrap: bool | None = None, **options: Any) -> None:
        self.console.print(_rich_form(line), soft_wrap=soft_wrap, **options)


class _Plain:
    """The console for a file or a pipe, without styles: a line rich would write as it is — printed whole
    (soft_wrap=True) and holding no tab or control character, or ASCII and shorter than the width it wraps
    at — is written as it is (rich's rendering of each line costs a fifth of a millisecond: 1.5 s of a text
    report of /usr/bin; importing rich, 30 ms of every run); anything else (a table, a line rich wraps or whose
    tabs it expands) goes to rich's console, made when first needed, writing to the same buffer."""

    def __init__(self, buf: io.StringIO) -> None:
        self.buf = buf
        self.console: Any = None

    def print(self, line: Any, soft_wrap: bool | None = None, **options: Any) -> None:
        text = line.plain if isinstance(line, Line) else line
        if isinstance(text, str) and text.isprintable() and (soft_wrap or (len(text) < WIDTH and text.isascii())):
            self.buf.write(text + "\n")
            return
        self.by_rich(line, soft_wrap, **options)

    def by_rich(self, line: Any, soft_wrap: bool | None = None, **options: Any) -> None:
        """The line as rich writes it without styles (its console made when first needed)."""
        if self.console is None:
            self.console = _rich_console(self.buf, False)
        self.console.print(_rich_form(line), soft_wrap=soft_wrap, **options)


Console = _Styled | _Plain


def _console(buf: io.StringIO, styled: bool) -> Console:
    return _Styled(buf) if styled else _Plain(buf)


def _summary_rows(facts: dict[str, Any]) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = [
        ("arch", f"{facts.get('arch')} ({facts.get('bits')}-bit, {facts.get('endian')} endian)")
    ]
    if facts.get("os"):
        rows.append(("os", facts["os"]["name"]))
    if "elf" in facts:
        rows.append(("type", f"{facts['elf']['e_type']} ({facts.get('kind')})"))
        rows.append(("linkage", str(facts.get("linkage") or "none")))
        if facts.get("interpreter"):
            rows.append(("interpreter", facts["interpreter"]))
        rows.append(("libc", str(facts.get("libc") or "none")))
        if facts.get("soname"):
            rows.append(("soname", facts["soname"]))
        if facts.get("needed"):
            rows.append(("needed", ", ".join(facts["needed"])))
        for key in ("rpath", "runpath"):
            if facts.get(key):
                rows.append((key, ":".join(facts[key])))
        vmax = facts.get("version_max", {})
        for ns in ("GLIBC", "GLIBCXX", "CXXABI"):
            if ns in vmax:
                syms = vmax[ns]["symbols"]
                shown = ", ".join(syms[:4]) + (f" (+{len(syms) - 4} more)" if len(syms) > 4 else "")
                rows.append((f"max {ns}", f"{vmax[ns]['version']}" + (f"  forced by {shown}" if shown else "")))
        if facts.get("version_unnumbered"):
            rows.append(("other nodes", ", ".join(facts["version_unnumbered"])))
    elif "pe" in facts:
        pe = facts["pe"]
        rows.append(("type", f"{pe['format']} {pe['subsystem']}" + (" DLL" if pe["dll"] else "")))
        rows.append(("min OS", pe["min_os_version"]))
        rows.append(("imports", ", ".join(pe["imports"]) or "none"))
    elif "macho" in facts:
        m = facts["macho"]
        rows.append(("type", m["filetype"]))
        if m["minos"]:
            rows.append(("min OS", f"{m['platform']} {m['minos']} (SDK {m['sdk']})"))
        rows.append(("dylibs", ", ".join(d["name"] for d in m["dylibs"]) or "none"))
    if facts.get("bundle"):
        b = facts["bundle"]
        rows.append(("bundle", f"PyInstaller one-file: Python {b['python']} ({b['python_library']}); the "
                               f"{b['binaries']} binaries it carries follow"))
    return rows


def _details(console: Console, facts: dict[str, Any]) -> None:
    elf = facts.get("elf")
    if elf:
        flags = elf["flags"]
        extra = [f"e_flags {elf['e_flags']:#x}"] + [f"{k}={v}" for k, v in flags.items() if v is not None]
        console.print(f"  osabi: {elf['osabi']}  " + "  ".join(extra))
        if elf["abi_tag"]:
            console.print(f"  ABI tag: {elf['abi_tag']['os']} >= {elf['abi_tag']['kernel']}")
        if elf["build_id"]:
            console.print(f"  build-id: {elf['build_id']}")
        if elf["x86_isa_needed"]:
            console.print(f"  x86 ISA needed: {', '.join(elf['x86_isa_needed'])}")
        for lib, nodes in facts.get("version_needs", {}).items():
            console.print(f"  {lib} needs: {', '.join(nodes)}")
    if facts.get("os"):
        console.print(
            f"  os: {facts['os']['name']} ({', '.join(facts['os']['evidence']) or 'nothing in the file says'})"
        )
    if facts.get("go"):
        _go_details(console, facts["go"])
    if facts.get("sections"):
        rows = [
            (
                s["name"],
                str(s.get("type", s.get("segment", ""))),
                str(s.get("flags", "")),
                f"{s['offset']:#x}",
                str(s.get("sh_size", s["size"])),  # readelf's size: a NOBITS section's (.bss) too
            )
            for s in facts["sections"]
        ]
        if len(rows) > LONG_TABLE:
            _plain_table(console, rows)
            return
        from rich.table import Table

        table = Table(title=None, box=None, pad_edge=False, show_edge=False)
        for col in SECTION_COLUMNS:
            table.add_column(col, justify="right" if col in ("offset", "size") else "left")
        for row in rows:
            table.add_row(*row)
        console.print(table)


SECTION_COLUMNS = ("name", "type", "flags", "offset", "size")
LONG_TABLE = 1000  # rows past which rich's table layout (quadratic in practice) gives way to plain lines


def _plain_table(console: Console, rows: Sequence[tuple[str, ...]]) -> None:
    """A long section table as plain aligned lines, written in one piece (70,000 sections: a second,
    where rich's table takes minutes)."""
    widths = [max(len(col), *(len(r[i]) for r in rows)) for i, col in enumerate(SECTION_COLUMNS)]

    def line(cells: tuple[str, ...]) -> str:
        padded = (c.rjust(w) if i >= 3 else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True)))
        return "  ".join(padded)

    text = "\n".join(line(r).rstrip() for r in [SECTION_COLUMNS, *rows])
    console.print(text, soft_wrap=True, highlight=False, markup=False)


def _go_details(out: Console, go: dict[str, Any]) -> None:
    """The Go facts: toolchain, modules, build settings, build ID and how it was linked (lines kept whole, as
    `go version -m` prints them)."""
    console = _Whole(out)
    console.print(f"  Go {go.get('version') or 'version unknown'}  build info {go['build_info']}"
                  + (f" ({go['error']})" if go.get("error") else ""))  # fmt: skip
    if go.get("path"):
        console.print(f"    path {go['path']}")
    if go.get("main"):
        console.print(f"    main {go['main']['path']} {go['main']['version']}")
    for dep in go.get("deps", []):
        replaced = f" => {dep['replace']['path']} {dep['replace']['version']}" if dep.get("replace") else ""
        console.print(f"    dep  {dep['path']} {dep['version']}{replaced}")
    for key in go.get("settings_order", []):
        console.print(f"    build {key}={go['settings'][key]}")
    if go.get("build_id"):
        console.print(f"    build ID {go['build_id']}")
    link = go.get("linkage") or {}
    if link:
        console.print(f"    linkage: cgo {link.get('cgo')}, link mode {link.get('link_mode')}, "
                      f"static glibc {link.get('static_glibc')}, netgo {link.get('netgo')}")  # fmt: skip


class _Whole:
    """A console whose lines are never wrapped (values such as DefaultGODEBUG are copied whole)."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def print(self, text: str) -> None:
        self.console.print(text, soft_wrap=True, highlight=False, markup=False)


SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "note": "blue"}


def _findings(console: Console, findings: list[dict[str, Any]]) -> None:
    order = {"error": 0, "warning": 1, "note": 2}
    for f in sorted(findings, key=lambda f: (order[f["severity"]], f["rule"])):
        tag = f["severity"]
        if f.get("suppressed"):
            tag = "suppressed"
        elif f.get("baselined"):
            tag = "baselined"
        head = Line(f"  {tag:<10} ", style=SEVERITY_STYLE.get(tag, "dim")) + Line(f"{f['rule']}  ", style="bold")
        indent = len(head.plain)
        lines = textwrap.wrap(f["message"], WIDTH - indent, break_on_hyphens=False) or [""]
        console.print(head + Line(lines[0]), soft_wrap=True)
        for more in lines[1:]:
            console.print(" " * indent + more, soft_wrap=True)
        if tag in ("error", "warning", "note"):
            for more in textwrap.wrap("fix: " + f["fix"], WIDTH - indent, break_on_hyphens=False):
                console.print(Line(" " * indent + more, style="dim"), soft_wrap=True)


def render(report: dict[str, Any], detailed: bool = False, rules: Sequence[Any] = (), color: bool = False) -> str:
    """The report as text for people: per artifact a summary and a verdict, its findings, then totals.

    `color`: the caller writes to a terminal that wants colour (see analyzer.cli.wants_color)."""
    buf = io.StringIO()
    console = _console(buf, color)
    errors = 0
    owner = {path: f"{p['name']} {p['version']} ({p['type']}" + (f", {p['arch']})" if p.get("arch") else ")")
             for found in (report.get("installed") or {}).values() for p in found["packages"]
             for path in p.get("artifacts", ())}  # (an image's binary: the OS package that installed it)
    for a in report["artifacts"]:
        head = Line(a["path"], style="bold")
        if a["error"]:
            errors += 1
            head.append(f"  error: {a['error']}", style="red")
            console.print(head, soft_wrap=True)
            continue
        head.append(f"  {a['format']}  {a['size']} bytes", style="dim")
        console.print(head, soft_wrap=True)
        rows = _summary_rows(a["facts"])
        if a["path"] in owner:
            rows.append(("package", owner[a["path"]]))
        line = verdict(a["facts"])
        if line:
            rows.append(("verdict", line))
        width = max(len(k) for k, _ in rows)
        for key, value in rows:
            lines = textwrap.wrap(value, max(20, WIDTH - width - 4), break_on_hyphens=False) or [""]
            console.print(Line(f"  {key:<{width}}  ", style="cyan") + Line(lines[0]), soft_wrap=True)
            for more in lines[1:]:
                console.print(" " * (width + 4) + more, soft_wrap=True, highlight=False)
        if detailed:
            _details(console, a["facts"])
        _findings(console, a.get("findings", []))
    n = len(report["artifacts"])
    if n > 1:  # a scan of many: what they add up to
        from analyzer.report.summary import Tally

        tally = Tally()
        for a in report["artifacts"]:
            tally.add(a, a.get("findings", []))
        console.print(Line("summary", style="bold"))
        for line in tally.table():
            console.print(line, soft_wrap=True, highlight=False)
    for image, found in (report.get("installed") or {}).items():  # (the OS packages of an image scanned)
        if not found["packages"]:
            continue
        from analyzer.load.installed import LANGUAGES, release_name

        system = release_name(found["distro"], " ")
        where = f" in {image}" if len(report["installed"]) > 1 else ""
        groups = [("OS packages", [p for p in found["packages"] if p["type"] not in LANGUAGES])]
        groups += [(title, [p for p in found["packages"] if p["type"] == kind])
                   for kind, (title, _) in LANGUAGES.items()]
        for title, group in groups:
            if not group:
                continue
            kinds = "" if title != "OS packages" else " " + ", ".join(sorted({p["type"] for p in group}))
            owned = sum(1 for p in group if p.get("artifacts"))
            line = f"  {title:<15}{len(group)}{kinds} ({owned} with binaries)" \
                   + (f", {system}" if system and title == "OS packages" else "") + where
            console.print(Line(line), soft_wrap=True)  # (names from the image: never markup)
    summary = plural(n, "artifact") + (f", {errors} unreadable" if errors else "") + "; " + totals(report)
    console.print(Line(summary, style="bold"))
    return buf.getvalue()
