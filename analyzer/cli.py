"""The command line: thin. Parses options, runs the pipeline, maps errors to exit codes."""

from __future__ import annotations

import sys

import click

from analyzer import __version__
from analyzer.errors import AnalyzerError

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


def _emit(text: str, output: str | None) -> None:
    if output:
        try:
            with open(output, "w", encoding="utf-8") as f:
                f.write(text)
        except OSError as e:
            raise AnalyzerError(f"cannot write: {e.strerror or e}", output) from None
    else:
        click.echo(text, nl=False)


def _run(paths: list[str], fmt: str, output: str | None, detailed: bool, jobs: int | None) -> None:
    from analyzer import pipeline, report

    if fmt == "json":
        from analyzer.report.json import encode_entry

        entries = list(pipeline.scan(paths, jobs=jobs, finish=encode_entry))
    else:
        entries = list(pipeline.scan(paths, jobs=jobs))
    if not entries and paths:
        raise AnalyzerError("no ELF, PE or Mach-O files found", ", ".join(paths))
    _emit(report.get(fmt)(pipeline.report(entries), detailed), output)


format_option = click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True, help="Output format."
)
output_option = click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the report to FILE instead of standard output.",
)


class _Group(click.Group):
    """Turns AnalyzerError into one line on stderr and exit code 2."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except AnalyzerError as e:
            click.echo(f"binlens: {e}", err=True)
            ctx.exit(EXIT_ERROR)
        except KeyboardInterrupt:
            click.echo("binlens: interrupted", err=True)
            ctx.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="binlens")
def main() -> None:
    """binlens: static analysis of build artifacts (ELF, PE, Mach-O).

    Nothing it analyzes is ever executed.
    """


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@format_option
@output_option
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(1, 64),
    default=None,
    help="Worker processes for many files (default: one per core).",
)
def scan(paths: tuple[str, ...], fmt: str, output: str | None, jobs: int | None) -> None:
    """Analyze files and directories (recursively) of binaries."""
    _run(list(paths), fmt, output, detailed=False, jobs=jobs)


@main.command()
@click.argument("path", type=click.Path())
@format_option
@output_option
def inspect(path: str, fmt: str, output: str | None) -> None:
    """Every fact about one artifact, for people."""
    import os

    if os.path.isdir(path):
        raise AnalyzerError("is a directory (inspect takes one file; use scan)", path)
    _run([path], fmt, output, detailed=True, jobs=1)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
