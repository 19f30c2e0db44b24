"""The command line: thin. Parses options, runs the pipeline, maps errors to exit codes."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from analyzer import __version__
from analyzer.errors import AnalyzerError

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
# the modules under analyzer/report (listed here so `binlens --help` need not import them)
FORMATS = ("text", "json", "sarif", "junit", "markdown")


def _emit(text: str, output: str | None) -> None:
    if output:
        try:
            with open(output, "w", encoding="utf-8") as f:
                f.write(text)
        except OSError as e:
            raise AnalyzerError(f"cannot write: {e.strerror or e}", output) from None
    else:
        click.echo(text, nl=False)


def _policy(opts: dict[str, Any]) -> tuple[Any, Any]:
    """The run's Config and Policy: the config file, then the command line over it."""
    import json
    from pathlib import Path

    from analyzer import compat, config

    cfg_path = Path(opts["config"]) if opts.get("config") else config.find_config(Path.cwd())
    if opts.get("config") and not Path(opts["config"]).is_file():
        raise AnalyzerError("no such config file", opts["config"])
    cfg = config.load(cfg_path)
    if opts.get("profile"):
        cfg.profile = opts["profile"]
    if opts.get("target"):
        cfg.targets = list(opts["target"])
    if opts.get("fail_on"):
        cfg.fail_on = opts["fail_on"]
    if opts.get("arch"):
        cfg.arch = opts["arch"]
    if opts.get("require_static") is not None:
        cfg.require_static = opts["require_static"]
    if opts.get("baseline"):
        cfg.baseline = opts["baseline"]
    if opts.get("min_go"):
        cfg.min_go = opts["min_go"]
    if opts.get("max_size"):
        cfg.max_size = config.parse_size(opts["max_size"], "--max-size")
    if opts.get("max_growth") is not None:
        cfg.max_growth = opts["max_growth"]
    if opts.get("size_baseline"):
        cfg.size_baseline = opts["size_baseline"]
    for name in cfg.targets:
        compat.resolve(name)  # an unknown target is a usage error, before any work
    pol = config.build_policy(cfg, list(opts.get("rules") or ()))
    if cfg.baseline:
        try:
            data = json.loads(Path(cfg.baseline).read_text())
            keys = frozenset(f"{x['path']}\x00{x['rule']}\x00{x['message']}" for x in data["findings"])
        except OSError as e:
            raise AnalyzerError(f"cannot read baseline: {e.strerror or e}", cfg.baseline) from None
        except (ValueError, KeyError, TypeError):
            raise AnalyzerError("not a binlens baseline file (write one with --write-baseline)", cfg.baseline) from None
        from dataclasses import replace

        pol = replace(pol, baseline=keys)
    return cfg, pol


def _run(paths: list[str], opts: dict[str, Any], detailed: bool, jobs: int | None) -> None:
    import json
    from functools import partial

    from analyzer import pipeline, report

    fmt = opts["fmt"]
    cfg, pol = _policy(opts)
    finish = partial(pipeline.finish_entry, policy=pol, encode=fmt == "json")
    done = list(pipeline.scan(paths, jobs=jobs, finish=finish))
    if not done and paths:
        raise AnalyzerError("no ELF, PE or Mach-O files found", ", ".join(paths))
    rep = pipeline.report([d.payload for d in done])
    rep["policy"] = {
        "profile": cfg.profile,
        "targets": cfg.targets,
        "fail_on": cfg.fail_on,
        "rules": [r.id for r in pol.rules],
    }
    _emit(report.get(fmt)(rep, detailed, pol.rules), opts.get("output"))
    findings = [(d, f) for d in done for f in d.findings]
    if opts.get("write_baseline"):
        entries = []
        for d, f in findings:
            path = d.payload["path"] if isinstance(d.payload, dict) else json.loads(d.payload)["path"]
            if not f.get("suppressed"):
                entries.append({"path": path, "rule": f["rule"], "message": f["message"]})
        text = json.dumps({"binlens_baseline": 1, "findings": entries}, indent=1) + "\n"
        try:
            with open(opts["write_baseline"], "w", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as e:
            raise AnalyzerError(f"cannot write: {e.strerror or e}", opts["write_baseline"]) from None
    if cfg.fail_on != "never":
        from analyzer.policy import SEVERITIES

        floor = SEVERITIES.index(cfg.fail_on)
        if any(
            SEVERITIES.index(f["severity"]) >= floor and not f.get("suppressed") and not f.get("baselined")
            for _, f in findings
        ):
            raise SystemExit(EXIT_FINDINGS)


def analysis_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The options shared by scan and inspect."""
    options = [
        click.option(
            "--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True, help="Output format."
        ),
        click.option(
            "--output",
            "-o",
            type=click.Path(dir_okay=False),
            default=None,
            help="Write the report to FILE instead of standard output.",
        ),
        click.option(
            "--target",
            "-t",
            multiple=True,
            metavar="NAME",
            help="A distribution release (debian-12, rhel-8), glibc-X.Y or a platform tag "
            "(manylinux_2_28, musllinux_1_2); repeatable. See `binlens targets`.",
        ),
        click.option("--arch", default=None, help="The architecture every artifact must be built for (x86_64, ...)."),
        click.option(
            "--require-static/--allow-dynamic", "require_static", default=None, help="Demand static binaries (LNK003)."
        ),
        click.option("--profile", default=None, help="Rule profile: default, release, static."),
        click.option(
            "--max-size",
            default=None,
            metavar="SIZE",
            help="Size budget for every artifact (STR003): bytes, or 10M, 512k.",
        ),
        click.option(
            "--size-baseline",
            type=click.Path(dir_okay=False),
            default=None,
            metavar="REPORT",
            help="A previous JSON report: artifacts that grew beyond --max-growth fail STR004.",
        ),
        click.option(
            "--max-growth",
            type=float,
            default=None,
            metavar="PERCENT",
            help="Growth over --size-baseline allowed before STR004 (default 0: any growth).",
        ),
        click.option(
            "--min-go",
            default=None,
            metavar="VERSION",
            help="The oldest Go toolchain a Go binary may be built with (GO006), e.g. 1.22.7.",
        ),
        click.option(
            "--fail-on",
            type=click.Choice(["error", "warning", "note", "never"]),
            default=None,
            help="Exit 1 when a finding is at or above this severity (default: error).",
        ),
        click.option(
            "--rules",
            "rules",
            multiple=True,
            type=click.Path(dir_okay=False),
            help="A TOML file of extra rules, in the catalogue's format; repeatable.",
        ),
        click.option(
            "--config",
            type=click.Path(dir_okay=False),
            default=None,
            help="A binlens.toml or pyproject.toml (default: found from the current directory up).",
        ),
        click.option(
            "--baseline",
            type=click.Path(dir_okay=False),
            default=None,
            help="Accept the findings recorded in FILE: only new ones count.",
        ),
        click.option(
            "--write-baseline",
            type=click.Path(dir_okay=False),
            default=None,
            help="Record this run's findings in FILE, for --baseline.",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


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
@analysis_options
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(1, 64),
    default=None,
    help="Worker processes for many files (default: one per core).",
)
def scan(paths: tuple[str, ...], jobs: int | None, **opts: Any) -> None:
    """Analyze files and directories (recursively) of binaries.

    Exit code: 0 when no finding is at or above --fail-on, 1 when one is, 2 for
    a usage or input error.
    """
    _run(list(paths), opts, detailed=False, jobs=jobs)


@main.command()
@click.argument("path", type=click.Path())
@analysis_options
def inspect(path: str, **opts: Any) -> None:
    """Every fact about one artifact, for people."""
    import os

    if os.path.isdir(path):
        raise AnalyzerError("is a directory (inspect takes one file; use scan)", path)
    _run([path], opts, detailed=True, jobs=1)


@main.command()
@click.argument("rule_id", required=False)
@click.option("--rules", "rules", multiple=True, type=click.Path(dir_okay=False), help="Extra rule files.")
def rules(rule_id: str | None, rules: tuple[str, ...]) -> None:
    """List the rule catalogue, or explain one rule."""
    from analyzer import policy

    catalogue = policy.builtin_rules()
    for f in rules:
        catalogue.extend(policy.load_rule_file(f))
    if rule_id is None:
        for r in catalogue:
            click.echo(f"{r.id}  {r.severity:<7}  {r.name:<24} {r.title}")
        return
    found = next((r for r in catalogue if r.id == rule_id.upper() or r.name == rule_id), None)
    if found is None:
        raise AnalyzerError(f"unknown rule id '{rule_id}' (see `binlens rules`)")
    click.echo(policy.explain(found))


def go_version_m(path: str, go: dict[str, Any]) -> str:
    """One artifact as `go version -m` prints it."""
    if go.get("modinfo") is None:
        state = f"build info {go['build_info']}" + (f": {go['error']}" if go.get("error") else "")
        return f"{path}: {go.get('version') or 'unknown Go version'} ({state}; pclntab {go.get('pclntab')})\n"
    body = go["modinfo"].rstrip("\n")
    return f"{path}: {go['version']}\n" + ("\t" + body.replace("\n", "\n\t") + "\n" if body else "")


@main.command(name="go")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text: as `go version -m`; json: the report with every fact.",
)
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None, help="Write to FILE.")
def go_command(paths: tuple[str, ...], fmt: str, output: str | None) -> None:
    """Go build info of Go binaries, as `go version -m` prints it (every slice of a fat file)."""
    import os

    from analyzer import pipeline, report

    if fmt == "json":
        entries = [e for e in pipeline.scan(list(paths)) if e["facts"].get("go") or e["error"]]
        for p in paths:
            if not os.path.isdir(p) and not any(e["path"].split("[")[0] == p for e in entries):
                raise AnalyzerError("not a Go executable", p)
        _emit(report.get("json")(pipeline.report(entries), True, ()), output)
        return
    # text: only the build info is needed, so files are opened without LIEF and without other facts
    from analyzer import formats
    from analyzer.facts import gobuildinfo

    out = []
    for path, explicit in pipeline.expand(list(paths)):
        if not explicit and formats.sniff_file(path) is None:
            continue
        try:
            arts = formats.load(path, parse=False)
        except AnalyzerError:
            if explicit:
                raise
            continue
        found = [(a.path, gobuildinfo.facts(a)) for a in arts]
        if explicit and not any(go for _, go in found):
            raise AnalyzerError("not a Go executable", path)
        out += [go_version_m(name, go) for name, go in found if go]
    _emit("".join(out), output)


@main.command(name="diff")
@click.argument("old", type=click.Path())
@click.argument("new", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None, help="Write to FILE.")
@click.option("--target", "-t", multiple=True, metavar="NAME", help="Targets for the findings of binaries.")
@click.option("--profile", default=None, help="Rule profile for the findings of binaries.")
@click.option("--config", type=click.Path(dir_okay=False), default=None, help="A binlens.toml or pyproject.toml.")
@click.option("--max-size", default=None, metavar="SIZE", help="Exit 1 when a new artifact is larger (10M, 512k).")
@click.option(
    "--max-growth",
    type=float,
    default=None,
    metavar="PERCENT",
    help="Exit 1 when an artifact grew by more than PERCENT.",
)
def diff_command(old: str, new: str, fmt: str, output: str | None, **opts: Any) -> None:
    """What changed between two binaries, or two JSON reports of releases.

    Size by category and by section, libraries added or removed, highest
    symbol versions, findings added or gone, Go version, settings and modules.
    Exit 1 when --max-size or --max-growth (or the config's) is exceeded.
    """
    import json
    from functools import partial

    from analyzer import config, pipeline
    from analyzer import diff as diffmod

    cfg, pol = _policy({"target": opts["target"], "profile": opts["profile"], "config": opts["config"]})
    finish = partial(pipeline.finish_entry, policy=pol)
    result = diffmod.diff(diffmod.load_side(old, finish), diffmod.load_side(new, finish))
    max_size = config.parse_size(opts["max_size"], "--max-size") if opts["max_size"] else cfg.max_size
    max_growth = opts["max_growth"] if opts["max_growth"] is not None else (cfg.max_growth or None)
    result["over_limits"] = diffmod.over_limits(result, max_size, max_growth)
    if fmt == "json":
        text = json.dumps(result, indent=1) + "\n"
    else:
        text = diffmod.render_text(result, markdown=fmt == "markdown")
        if result["over_limits"]:
            text += "".join(f"over limit: {line}\n" for line in result["over_limits"])
    _emit(text, output)
    if result["over_limits"]:
        raise SystemExit(EXIT_FINDINGS)


def _deps_text(path: str, deps: dict[str, Any]) -> str:
    """The dependency tree and the predicted loader errors, for people."""
    lines = [f"{path}"]
    interp = deps["interpreter"]
    if interp["path"]:
        lines.append(f"  interpreter {interp['path']}" + ("" if interp["found"] else "  NOT FOUND in the sysroot"))
    depth = {path: 0}
    for lib in deps["libraries"]:
        level = depth.get(lib["needed_by"] or path, 0) + 1
        depth[lib["path"]] = level
        lines.append(f"{'  ' * level}{lib['name']} => {lib['path']}  [{lib['found_by']}]")
    for miss in deps["missing"]:
        lines.append(f"  {miss['name']} => not found (needed by {miss['needed_by']}); tried:")
        lines += [f"      {t}" for t in miss["tried"]]
    lazy = [b for b in deps["undefined"] if b["when"] == "first call"]
    for b in lazy:
        version = f"@{b['version']}" if b["version"] else ""
        lines.append(f"  undefined {b['symbol']}{version} in {b['object']}: fails when first called (lazy binding)")
    if deps["loader_errors"]:
        lines.append("the loader would stop with:")
        lines += [f"  {e}" for e in deps["loader_errors"]]
    else:
        lines.append("the loader would start it" + (" (with lazy failures above)" if lazy else ""))
    return "\n".join(lines) + "\n"


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--sysroot", default="/", show_default=True, type=click.Path(), help="The root the loader sees.")
@click.option("--ld-library-path", default="", metavar="PATHS", help="LD_LIBRARY_PATH, colon-separated.")
@click.option(
    "--isa-level",
    type=click.Choice(["x86-64-baseline", "x86-64-v2", "x86-64-v3", "x86-64-v4"]),
    default="x86-64-baseline",
    show_default=True,
    help="The CPU level glibc-hwcaps directories are searched up to.",
)
@click.option("--program-name", default=None, help="argv[0] in the predicted messages (default: PATH).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None, help="Write to FILE.")
def deps(
    paths: tuple[str, ...],
    sysroot: str,
    ld_library_path: str,
    isa_level: str,
    program_name: str | None,
    fmt: str,
    output: str | None,
) -> None:
    """Resolve programs' libraries as the dynamic loader would, bind their symbols, predict its errors.

    Nothing is run. Exit 1 when the loader would refuse to start the program.
    """
    from analyzer import ldso, pipeline, report

    opts = ldso.Options(sysroot=sysroot, ld_library_path=[p for p in ld_library_path.split(":") if p],
                        isa_level=isa_level, program=program_name)  # fmt: skip
    _, pol = _policy({"target": (), "config": None})
    shared = ldso.Sysroot(sysroot)  # every library read once, whatever the number of programs
    entries, failed = [], False
    for path in paths:
        (entry,) = pipeline.analyze_file(path)[:1]
        if entry["format"] != "ELF":
            raise AnalyzerError("deps resolves ELF programs only", path)
        entry["facts"]["deps"] = ldso.analyze(path, opts, shared)
        entries.append(pipeline.finish_entry(entry, pol).payload)
        failed = failed or bool(entry["facts"]["deps"]["loader_errors"])
    if fmt == "json":
        _emit(report.get("json")(pipeline.report(entries), True, pol.rules), output)
    else:
        text = ""
        for entry in entries:
            text += _deps_text(opts.program or entry["path"], entry["facts"]["deps"])
            text += "".join(f"  {f['severity']} {f['rule']}: {f['message']}\n"
                            for f in entry["findings"] if f["rule"].startswith("DEP"))  # fmt: skip
        _emit(text, output)
    if failed:
        raise SystemExit(EXIT_FINDINGS)


@main.command()
@click.argument("error_text")
@click.option("--binary", type=click.Path(), default=None, help="The program the error came from.")
@click.option("--sysroot", default="/", show_default=True, type=click.Path(), help="The root the loader saw.")
def explain(error_text: str, binary: str | None, sysroot: str) -> None:
    """Explain a pasted dynamic-loader error (glibc or musl), with fixes."""
    from analyzer import explain as explain_mod

    click.echo("\n".join(explain_mod.explain(error_text, binary, sysroot)))


@main.command()
def targets() -> None:
    """List the distribution releases and platform tags --target accepts."""
    from analyzer import compat

    for name in compat.target_names():
        t = compat.resolve(name)
        arches = ", ".join(sorted(t.arches))
        click.echo(f"{name:<22} glibc {t.glibc or '-':<6} {arches}")
    click.echo("glibc-X.Y              any glibc version (GLIBC nodes only)")
    click.echo("musllinux_1_X          musl")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
