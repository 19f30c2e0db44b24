"""The `binlens` command (and `python -m analyzer`).

`binlens go FILE...` with nothing but file names is what people run on many files in scripts, where start-up is
most of the time: it is answered here, without importing the command-line framework (click and the command
definitions are a fifth of that run). `binlens scan PKG.deb` starts decompressing the package's data.tar.xz
here, before the rest loads (analyzer/load/early.py). Anything else — an option, `--`, `--help`, another
command — goes to analyzer.cli, which answers `go` the same way (tests/test_go.py runs both on the same files,
errors included)."""

import sys

EXIT_ERROR = 2


def main() -> None:
    args = sys.argv[1:]
    if len(args) > 1 and args[0] == "go" and not any(a.startswith("-") or not a for a in args[1:]):
        sys.exit(_go(args[1:]))
    if args[:1] == ["scan"] and not {"--check-loading", "--dask"} & set(args):
        debs = [a for a in args[1:] if a.endswith((".deb", ".udeb", ".ddeb"))]
        if len(debs) == 1:  # (its xz stream decompressed from here, while click and the command load)
            from analyzer.load.early import decompress_early

            decompress_early(debs[0])
    from analyzer.cli import main as cli

    cli(prog_name="binlens")


def _go(paths: list[str]) -> int:
    from analyzer.errors import AnalyzerError
    from analyzer.report.go import version_m_text, write_stdout

    def choice() -> dict[str, object]:  # (a container among the paths: binlens.toml's --platform and the rest)
        from analyzer.policy import config

        return config.containers(config.resolve({}))

    try:
        write_stdout(version_m_text(paths, choice))
    except AnalyzerError as e:
        sys.stderr.write(f"binlens: {e}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        sys.stderr.write("binlens: interrupted\n")
        return 130
    return 0
