"""The command line: thin. Parses options, runs the pipeline, maps errors to exit codes."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import click

from analyzer import __version__
from analyzer.errors import AnalyzerError, path_text
from analyzer.policy.settings import CPU_VENDORS, ISA_LEVELS

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
# click checks nothing about paths: binlens opens them itself and names the file and the problem in one line
ANY_PATH = click.Path(readable=False)
FILE_PATH = click.Path(dir_okay=False, readable=False)


def wants_color(output: str | None) -> bool:
    """Colour only for a terminal: not for a file (`-o`), a pipe, or with NO_COLOR set."""
    import os

    return output is None and sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def _emit(text: str | list[str], output: str | None) -> None:
    """Write a report (its text, or its text in pieces: report.render_pieces) to the file or standard output."""
    if output:
        try:
            with open(output, "w", encoding="utf-8") as f:
                f.writelines([text] if isinstance(text, str) else text)
        except OSError as e:
            raise AnalyzerError(f"cannot write: {e.strerror or e}", output) from None
    else:
        try:
            if isinstance(text, str):
                click.echo(text, nl=False)
            else:
                sys.stdout.writelines(text)
            sys.stdout.flush()
        except OSError as e:  # a full disk, a closed pipe
            raise AnalyzerError(f"cannot write: {e.strerror or e}", "standard output") from None


def _sysroot_set(sysroots: tuple[str, ...]) -> str:
    """The last of the --sysroot given (the one a single one is), after checking them all: each exists, and
    several are containers (applied in order as one filesystem: a set of packages installed together)."""
    from analyzer.load import archives

    for sysroot in sysroots:
        if not os.path.exists(sysroot):
            raise AnalyzerError("sysroot does not exist or is not a directory", sysroot)
        if len(sysroots) > 1 and archives.kind_of(sysroot) is None:
            raise AnalyzerError("a sysroot given with others must be a container (image, tarball, package)",
                                sysroot)
    return sysroots[-1]


def _member_of_a_sysroot(member: str, outer: str, command: str) -> None:
    """AnalyzerError unless `outer` is a container binlens makes a sysroot of (an image — a layout directory, a
    tar, a zip holding one —, a tarball, a .deb): a member of any other (a zip of programs, a snap, a 7z, an RPM)
    has no filesystem around it to resolve its libraries in."""
    from analyzer.load import archives

    kind = "oci" if os.path.isdir(outer) else archives.kind_of(outer)
    if kind in ("oci", "tar", "deb", "rpm", "squashfs", "appimage") or (kind == "zip" and archives.is_image(outer)):
        return
    raise AnalyzerError(f"a member of {outer}, which is no image, tarball, package or filesystem image to resolve "
                        f"it in: extract it and run `{command}` on the program where it is installed", member)


def _policy(opts: dict[str, Any]) -> tuple[Any, Any]:
    """The run's Config and Policy: the config file, then the command line over it."""
    from analyzer.policy import compat, config

    cfg = config.resolve(opts)
    for name in cfg.targets:
        compat.resolve(name)  # an unknown target is a usage error, before any work
    pol = config.build_policy(cfg)
    if cfg.baseline:
        from dataclasses import replace

        pol = replace(pol, baseline=config.load_baseline(cfg.baseline))
    return cfg, pol


@contextmanager
def _progress() -> Iterator[Callable[..., None] | None]:
    """A progress bar on standard error when it is a terminal (files done of all, bytes, rate, time left), erased
    when the scan ends; nothing on a pipe, in a file or with NO_COLOR."""
    import os

    if not sys.stderr.isatty() or os.environ.get("NO_COLOR"):
        yield None
        return
    import time

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn("scanning"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[volume]}"),
                   TimeRemainingColumn(), console=Console(stderr=True), transient=True)  # fmt: skip
    task = bar.add_task("scan", total=None, volume="")
    start = time.monotonic()

    def mb(n: int) -> str:
        return f"{n / 1e6:.1f} MB" if n < 1e9 else f"{n / 1e9:.2f} GB"

    def advance(done: int, total: int, done_bytes: int = 0, total_bytes: int = 0) -> None:
        rate = done_bytes / max(time.monotonic() - start, 1e-3)
        volume = f"{mb(done_bytes)} of {mb(total_bytes)}, {mb(int(rate))}/s" if total_bytes else ""
        bar.update(task, completed=done, total=total, volume=volume)

    with bar:
        yield advance


def _write_baseline(results: list[Any], path: str, base: str) -> None:
    import json

    from analyzer.policy.rules import normalised_path

    entries = [
        {"path": normalised_path(r.path, base), "rule": f["rule"], "fingerprint": f["fingerprint"],
         "message": f["message"]}
        for r in results
        for f in r.findings
        if not f.get("suppressed")
    ]  # fmt: skip
    text = json.dumps({"binlens_baseline": 2, "findings": entries}, indent=1) + "\n"
    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as e:
        raise AnalyzerError(f"cannot write: {e.strerror or e}", path) from None


def _run(paths: list[str], opts: dict[str, Any], detailed: bool, jobs: int | None) -> None:
    if paths and paths[0].endswith((".deb", ".udeb", ".ddeb")) and not opts.get("check_loading"):
        from analyzer.load.archives import decompress_early

        decompress_early(paths[0])  # (its xz stream decompressed while the rest loads)
    from analyzer import pipeline, report
    from analyzer.policy.config import containers, limits_given

    fmt = opts["fmt"]
    cfg, pol = _policy(opts)
    request = pipeline.Request.for_policy(pol, cfg.facts, encode=fmt in ("json", "jsonl"),
                                          time_budget=cfg.time_budget, memory_budget=cfg.memory_budget)
    if cfg.dask and "analyzer.load.archives" in sys.modules:
        sys.modules["analyzer.load.archives"].cancel_early()  # (a local cluster's workers fork from a lone thread)
    if cfg.platform or cfg.image or cfg.dask or limits_given(cfg):
        from dataclasses import replace

        request = replace(request, dask=cfg.dask, **containers(cfg))
    from analyzer import cache as result_cache

    stack = None
    try:
        with _cache_env("" if cfg.no_cache else (cfg.cache_dir or result_cache.default_dir())):
            if cfg.check_loading:
                paths, request, stack = _check_loading(paths, request, pol, cfg)
            if fmt == "jsonl" and not opts.get("write_baseline"):
                _stream_jsonl(paths, request, cfg, pol, opts.get("output"), jobs)
                return
            with _progress() as progress:
                done = list(pipeline.scan(paths, request, jobs=jobs, progress=progress))
    finally:
        if stack is not None:
            stack.close()
    hits = sum(1 for d in done if d.cached)
    if hits and sys.stderr.isatty():  # at a terminal, as the progress bar: the report is the same either way
        print(f"binlens: {hits} of {len(done)} artifacts' facts reused from the result cache", file=sys.stderr)
    if not done and paths:
        raise AnalyzerError("no ELF, PE or Mach-O files found", ", ".join(paths))
    shown = [d for d in done if _fails_gate(d.findings, cfg.fail_on)] if cfg.failing_only else done
    rep = report.envelope([d.payload for d in shown], request.computed)
    rep["policy"] = {
        "profile": cfg.profile,
        "targets": cfg.targets,
        "fail_on": cfg.fail_on,
        "rules": [r.id for r in pol.rules],
    }
    _emit(report.render_pieces(fmt, rep, detailed, pol.rules, wants_color(opts.get("output"))), opts.get("output"))
    if opts.get("write_baseline"):
        _write_baseline(done, opts["write_baseline"], pol.base)
        return  # recording the findings is the job: they do not fail this run
    if any(_fails_gate(d.findings, cfg.fail_on) for d in done):
        raise SystemExit(EXIT_FINDINGS)


@contextmanager
def _cache_env(directory: str) -> Iterator[None]:
    """The result cache the run's processes use ("" none), through the environment the workers inherit."""
    from analyzer import cache as result_cache
    from analyzer.load.sources import environ_set

    with environ_set(result_cache.ENV, directory):
        yield


def _check_loading(paths: list[str], request: Any, pol: Any, cfg: Any) -> tuple[list[str], Any, Any]:
    """--check-loading: the container image named is unpacked whole as a sysroot and its dynamic programs are
    the artifacts, each resolved there (the `deps` facts; the DEP rules judge them)."""
    from contextlib import ExitStack
    from dataclasses import replace

    from analyzer import facts, pipeline
    from analyzer.facts import loader
    from analyzer.load import archives

    if len(paths) == 1 and not os.path.lexists(paths[0]):
        raise AnalyzerError("no such file", paths[0])
    if len(paths) != 1 or (archives.kind_of(paths[0]) is None and not os.path.isdir(paths[0])):
        raise click.UsageError("--check-loading takes one container image (OCI layout, docker save), tarball, .deb, "
                               "RPM or SquashFS image, or a root filesystem directory")
    stack = ExitStack()
    if archives.kind_of(paths[0]) is None:  # a root filesystem directory: its programs where they lie
        from analyzer.load.sources import tree_programs

        tree, names = paths[0], tree_programs(paths[0])
    else:
        try:
            choice = {"limits": request.limits, "platform": request.platform, "image": request.image}
            tree, names = stack.enter_context(_image_sysroot(paths[0], [], choice))
        except BaseException:
            stack.close()
            raise
    from analyzer.facts.loader.glibc import target_cpu

    level, vendor = target_cpu(cfg.isa_level, cfg.cpu_vendor)
    from analyzer.load.archives import WORKDIR
    from analyzer.load.sources import image_env

    env = image_env(tree)  # (what the image's config sets for every program: LD_LIBRARY_PATH, LD_PRELOAD,
    # LD_BIND_NOW, and where they start)
    opts = loader.Options(sysroot=tree, sysroot_name=paths[0], isa_level=level, cpu_vendor=vendor,
                          ld_library_path=[p for p in env.get("LD_LIBRARY_PATH", "").split(":") if p],
                          preload=[env["LD_PRELOAD"]] if env.get("LD_PRELOAD") else [],
                          bind_now=bool(env.get("LD_BIND_NOW")), cwd=env.get(WORKDIR))  # fmt: skip
    providers = pipeline.plan(pol, cfg.facts, extra=("deps",))
    request = replace(request, providers=providers,
                      context=facts.Context(policy=pol, loader=(opts, loader.Sysroot(tree))))
    if not names:
        stack.close()
        raise AnalyzerError(f"no dynamically linked program in the {'image' if tree != paths[0] else 'tree'}",
                            paths[0])
    return names, request, stack


def _stream_jsonl(paths: list[str], request: Any, cfg: Any, pol: Any, output: str | None, jobs: int | None) -> None:
    """--format jsonl: each artifact's line written as soon as it is done (in input order), then the summary
    line; nothing of the scan is held but the counts, so memory stays flat on any number of artifacts."""
    from analyzer import pipeline, report
    from analyzer.report.json import summary_line
    from analyzer.report.summary import Tally

    tally = Tally()
    failed = False
    try:
        out = open(output, "w", encoding="utf-8") if output else sys.stdout  # noqa: SIM115
    except OSError as e:
        raise AnalyzerError(f"cannot write: {e.strerror or e}", output) from None
    try:
        with _progress() as progress:
            for d in pipeline.scan(paths, request, jobs=jobs, progress=progress):
                fails = _fails_gate(d.findings, cfg.fail_on)
                failed = failed or fails
                tally.add(json.loads(d.json_text) if d.json_text is not None else d.entry, d.findings)
                if cfg.failing_only and not fails:
                    continue
                out.write(d.json_text if d.json_text is not None else json.dumps(d.entry))
                out.write("\n")
                out.flush()
        if tally.artifacts == 0 and paths:
            raise AnalyzerError("no ELF, PE or Mach-O files found", ", ".join(paths))
        head = report.envelope([], request.computed)
        head.pop("artifacts")
        head["policy"] = {"profile": cfg.profile, "targets": cfg.targets, "fail_on": cfg.fail_on,
                          "rules": [r.id for r in pol.rules]}
        out.write(summary_line(head, tally.as_dict()))
        out.flush()
    except BrokenPipeError:
        raise SystemExit(EXIT_FINDINGS if failed else 0) from None
    finally:
        if output:
            out.close()
    if failed:
        raise SystemExit(EXIT_FINDINGS)


def _fails_gate(findings: list[dict[str, Any]], fail_on: str) -> bool:
    """A finding at or above --fail-on that is neither suppressed nor baselined."""
    from analyzer.policy.rules import SEVERITIES

    if fail_on == "never":
        return False
    floor = SEVERITIES.index(fail_on)
    return any(
        SEVERITIES.index(f["severity"]) >= floor and not f.get("suppressed") and not f.get("baselined")
        for f in findings
    )


def _click_option(s: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The click option of one setting (analyzer.policy.settings)."""
    names = [s.flag] + ([s.short] if s.short else []) + [s.name]
    kw: dict[str, Any] = {"help": s.help, "default": None}
    if s.metavar:
        kw["metavar"] = s.metavar
    if s.kind == "choice":
        kw["type"] = click.Choice(s.choices)
        if s.key is None:
            kw.update(default=s.default, show_default=True)
    elif s.kind == "bool" and "/" not in s.flag:
        kw["is_flag"] = True
    elif s.kind == "float":
        kw["type"] = float
    elif s.kind == "count":
        kw["type"] = click.IntRange(0, 1 << 40)
    elif s.kind in ("path", "paths"):
        kw["type"] = FILE_PATH
    if s.kind in ("list", "paths"):
        kw["multiple"] = True
    return click.option(*names, **kw)


def analysis_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The options shared by scan and inspect: one per command-line setting."""
    from analyzer.policy.settings import SETTINGS

    for s in reversed([s for s in SETTINGS if s.flag]):
        f = _click_option(s)(f)
    return f


def container_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--platform, --image and the --unpack-* limits, for the commands besides scan and inspect that read
    containers (deps, syscalls, explain, diff, go, checksec): the same settings, binlens.toml's too."""
    from analyzer.policy.settings import CONTAINER_SETTINGS

    return _setting_options(*CONTAINER_SETTINGS)(f)


def cpu_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--isa-level and --cpu-vendor: the CPU the loader runs on (deps, syscalls; scan's are its settings)."""
    f = click.option("--cpu-vendor", type=click.Choice([*CPU_VENDORS, "host"]), default="other",
                     show_default=True,
                     help="The target CPU's maker: glibc names an Intel CPU of x86-64-v3 or above haswell ($PLATFORM "
                          "and, before glibc 2.37, a library subdirectory; avx512_1 too at x86-64-v4). host: this "
                          "machine's.")(f)
    return click.option("--isa-level", type=click.Choice([*ISA_LEVELS, "host"]), default="baseline",
                        show_default=True,
                        help="The target CPU's level: glibc-hwcaps directories are searched up to it (x86-64-v2 to "
                             "-v4, power9, power10, z13 to z16; armv8-a, armv8.1-a (with atomics): ARMv8; baseline: "
                             "none; host: this machine's).")(f)


def _setting_options(*names: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The options of those settings (analyzer.policy.settings), as scan has them."""
    from analyzer.policy.settings import SETTINGS

    def add(f: Callable[..., Any]) -> Callable[..., Any]:
        for s in reversed([s for s in SETTINGS if s.name in names]):
            f = _click_option(s)(f)
        return f

    return add


def _containers(opts: dict[str, Any]) -> dict[str, Any]:
    """What is asked of the containers a command reads, the command line over the config file's, as
    pipeline.Request's fields: `limits` (those given, or ()), `platform` and `image`."""
    from analyzer.policy import config

    return config.containers(config.resolve({k: opts.get(k) for k in config.CONTAINER_SETTINGS}))


def _image_sysroot(containers: str | list[str], programs: list[str], choice: dict[str, Any]) -> Any:
    """sources.image_sysroot within what is asked of the containers (_containers)."""
    from analyzer.load.sources import image_sysroot
    from analyzer.pipeline import container_limits

    return image_sysroot(containers, programs, container_limits(choice["limits"]), choice["platform"],
                         choice["image"])  # fmt: skip


def _usage_error(e: click.UsageError, ctx: click.Context) -> NoReturn:
    """A usage error as one line on stderr (click prints the usage, a hint and the error on
    four), then exit code 2."""
    where = e.ctx.command_path if e.ctx is not None else ctx.command_path
    message = " ".join(e.format_message().split())
    click.echo(f"{where}: {message} (see '{where} --help')", err=True)
    ctx.exit(EXIT_ERROR)


class _Group(click.Group):
    """Turns AnalyzerError and usage errors into one line on stderr and exit code 2."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as e:
            _usage_error(e, ctx)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as e:
            _usage_error(e, ctx)
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
    from analyzer import budget

    budget.GUARD = True  # (a file analysed in this process has its budget backed by a guard process)


@main.command()
@click.argument("paths", nargs=-1, required=True, type=ANY_PATH)
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
@click.argument("path", type=ANY_PATH)
@analysis_options
def inspect(path: str, **opts: Any) -> None:
    """Every fact about one artifact, for people."""
    import os

    if os.path.isdir(path):
        raise AnalyzerError("is a directory (inspect takes one file; use scan)", path)
    _run([path], opts, detailed=True, jobs=1)


@main.command()
@click.argument("rule_id", required=False)
@click.option("--rules", "rules", multiple=True, type=FILE_PATH, help="Extra rule files.")
def rules(rule_id: str | None, rules: tuple[str, ...]) -> None:
    """List the rule catalogue, or explain one rule."""
    from analyzer.policy import rules as rules_mod

    catalogue = rules_mod.builtin_rules()
    for f in rules:
        catalogue.extend(rules_mod.load_rule_file(f))
    if rule_id is None:
        for r in catalogue:
            click.echo(f"{r.id}  {r.severity:<7}  {r.name:<24} {r.title}")
        return
    found = next((r for r in catalogue if r.id == rule_id.upper() or r.name == rule_id), None)
    if found is None:
        raise AnalyzerError(f"unknown rule id '{rule_id}' (see `binlens rules`)")
    click.echo(rules_mod.describe(found))


@main.command(name="go")
@click.argument("paths", nargs=-1, required=True, type=ANY_PATH)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text: as `go version -m`; json: the report with every fact.",
)
@click.option("--output", "-o", type=FILE_PATH, default=None, help="Write to FILE.")
@container_options
def go_command(paths: tuple[str, ...], fmt: str, output: str | None, **containers: Any) -> None:
    """Go build info of Go binaries, as `go version -m` prints it (every slice of a fat file)."""
    import os

    if fmt == "json":
        from analyzer import pipeline, report

        request = pipeline.Request(**_containers(containers))
        results = pipeline.scan(list(paths), request)
        entries = [e for e in (r.entry for r in results) if e and (e["facts"].get("go") or e["error"])]
        for p in paths:
            if not os.path.isdir(p) and not any(e["path"].split("[")[0] == path_text(p) for e in entries):
                raise AnalyzerError("not a Go executable", p)
        _emit(report.render("json", report.envelope(entries, request.computed), True), output)
        return
    # text: only the build info is needed (`binlens go FILE...` without options comes here without click:
    # analyzer/entry.py)
    from analyzer.report.go import version_m_text, write_stdout

    text = version_m_text(list(paths), lambda: _containers(containers))
    if output:
        _emit(text, output)
    else:
        write_stdout(text)


@main.command(name="checksec")
@click.argument("paths", nargs=-1, required=True, type=ANY_PATH)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text: checksec's columns; json: checksec's JSON keys (`checksec --output=json`).")  # fmt: skip
@click.option("--output", "-o", type=FILE_PATH, default=None, help="Write to FILE.")
@click.option("--jobs", "-j", type=click.IntRange(1, 64), default=None, help="Worker processes for many files.")
@container_options
def checksec_command(paths: tuple[str, ...], fmt: str, output: str | None, jobs: int | None,
                     **containers: Any) -> None:  # fmt: skip
    """Exploit mitigations of ELF binaries in checksec's layout (RELRO, canary, NX, PIE, RPATH, RUNPATH, symbols,
    FORTIFY); only the facts it needs are computed. Directories are walked."""
    from analyzer import pipeline
    from analyzer.report import checksec

    request = pipeline.Request(pipeline.plan(None, ["hardening"]), **_containers(containers))
    entries = [r.entry for r in pipeline.scan(list(paths), request, jobs=jobs) if r.entry]
    _emit(checksec.render_json(entries) if fmt == "json" else checksec.render_text(entries), output)


@main.command(name="syscalls")
@click.argument("paths", nargs=-1, required=True, type=ANY_PATH)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--seccomp", type=click.Choice(["oci", "docker"]), default=None,
              help="Write an allow-list seccomp profile of every binary's system calls instead of the report.")
@click.option("--target", "-t", "targets", multiple=True, metavar="NAME",
              help="Say whether the kernel of each target release (rhel-8, debian-12, ...) has the calls.")
@click.option("--sysroot", "sysroots", multiple=True, default=("/",), show_default=True, type=ANY_PATH,
              help="Where a dynamic program's libraries are resolved (as `binlens deps` does): a directory, or a "
                   "container image (OCI layout, docker save), tarball, .deb, RPM or SquashFS image whose final "
                   "filesystem is used (PATHS are then paths in it). Given more than once: containers applied in "
                   "that order as one filesystem.")
@click.option("--output", "-o", type=FILE_PATH, default=None, help="Write to FILE.")
@click.option("--jobs", "-j", type=click.IntRange(1, 64), default=None, help="Worker processes for many files.")
@click.option("--cache-dir", type=ANY_PATH, default=None,
              help="Where each library's model is kept, by its content (default: the result cache's directory).")
@click.option("--no-cache", is_flag=True, help="Model every library anew; keep nothing.")
@cpu_options
@container_options
def syscalls_command(paths: tuple[str, ...], fmt: str, seccomp: str | None, targets: tuple[str, ...],
                     sysroots: tuple[str, ...], output: str | None, jobs: int | None, cache_dir: str | None,
                     no_cache: bool, isa_level: str, cpu_vendor: str, **containers: Any) -> None:  # fmt: skip
    """System calls of ELF binaries: sites per trap instruction, numbers and names per ABI (through wrappers such
    as syscall() and Go's syscall.Syscall), the calls a dynamic program reaches through its libraries
    (resolved in --sysroot), unresolved sites, the kernel release they need, Docker's default profile's
    verdicts. Exit 2 when a named file cannot be read."""
    from analyzer.load import archives
    from analyzer.load.sources import named_container
    from analyzer.policy import compat

    kernels = {t: compat.resolve(t) for t in targets}  # an unknown target is a usage error, before any work
    choice = _containers(containers)
    sysroot = _sysroot_set(sysroots)  # (one given twice silently kept the last: libc missing, too few calls)
    run = (fmt, seccomp, kernels, output, jobs, cache_dir, no_cache, choice, (isa_level, cpu_vendor))
    if archives.kind_of(sysroot) is not None:  # an image: the programs and their libraries are the image's
        with _image_sysroot(list(sysroots), list(paths), choice) as (tree, names):
            _syscalls(tuple(names), tree, *run)
        return
    outers = {named_container(p) for p in paths}
    image = next(iter(outers)) if len(outers) == 1 else None
    if sysroot == "/" and image is not None and archives.is_image(image):
        # members of one image: the programs and their libraries are the image's (as with --sysroot IMAGE)
        inside = ["/" + p[len(image) + 1 :] for p in paths]
        with _image_sysroot(image, inside, choice) as (tree, names):
            _syscalls(tuple(names), tree, *run)
        return
    outer = next((o for o in outers if o is not None), None)
    if outer is not None and sysroot == "/" and sys.stderr.isatty():
        print(f"binlens: libraries are resolved in /; to resolve them inside {outer}: `binlens syscalls --sysroot "
              f"{outer} /PATH`", file=sys.stderr)  # fmt: skip
    _syscalls(paths, sysroot, *run)


def _syscalls(paths: tuple[str, ...], sysroot: str, fmt: str, seccomp: str | None, kernels: dict[str, Any],
              output: str | None, jobs: int | None, cache_dir: str | None, no_cache: bool,
              choice: dict[str, Any], cpu: tuple[str, str]) -> None:  # fmt: skip
    from analyzer import cache as result_cache
    from analyzer import facts, pipeline, report
    from analyzer.facts import loader
    from analyzer.facts.loader.glibc import target_cpu
    from analyzer.report import syscalls as view

    level, vendor = target_cpu(*cpu)
    shared = (loader.Options(sysroot=sysroot, isa_level=level, cpu_vendor=vendor),
              loader.Sysroot(sysroot))  # each library modelled once
    shared[1].workers = jobs or min(os.cpu_count() or 1, 8)  # a program's libraries modelled side by side
    request = pipeline.Request(pipeline.plan(None, ["syscalls"]), facts.Context(loader=shared), **choice)
    with _cache_env("" if no_cache else (cache_dir or result_cache.default_dir())):
        entries = [r.entry for r in pipeline.scan(list(paths), request, jobs=jobs) if r.entry]
    verdicts = view.kernel_verdicts(entries, kernels)
    if seccomp:
        # a profile that leaves out a binary it cannot read would stop that binary: none is written
        for e in entries:
            f = (e.get("facts") or {}).get("syscalls")
            if not e.get("error") and not (f and f.get("supported")):
                why = f["reason"] if f else "not an ELF binary (no system-call model)"
                raise AnalyzerError(f"no seccomp profile can cover it: {why}", e["path"])
        _emit(view.profile(entries, seccomp), output)
    elif fmt == "json":
        rep = report.envelope(entries, request.computed)
        if kernels:
            rep["kernel_verdicts"] = verdicts
        _emit(report.render("json", rep, True), output)
    else:
        _emit(view.render_text(entries, verdicts), output)
    if any(e.get("error") for e in entries):
        sys.exit(2)


@main.command(name="gomod")
@click.argument("directory", required=False, default=".", type=ANY_PATH)
@click.option("--proxy", type=ANY_PATH, default=None, help="A GOPROXY file tree (the file:// layout) for go.mod files.")
@click.option("--modcache", type=ANY_PATH, default=None, help="A module cache (GOMODCACHE) for go.mod files.")
@click.option("--graph", "graph_file", type=FILE_PATH, default=None, help="A saved `go mod graph` output.")
@click.option("--binary", "binaries", multiple=True, type=ANY_PATH, help="Compare a Go binary's build info.")
@click.option("--why", "why_module", default=None, metavar="MODULE", help="Why MODULE is at its selected version.")
@click.option("--min-go", default=None, metavar="VERSION", help="Findings for a toolchain line older than this.")
@click.option("--go", "local_go", default=None, metavar="VERSION",
              help="The go command that would run (1.23.4): a newer go line is its error, as the go command says; "
                   "the go and toolchain lines it would write into go.mod.")
@click.option("--tree", type=ANY_PATH, default=None,
              help="The directory binlens may read local replacements from (default: DIRECTORY).")
@click.option("--cache-dir", type=ANY_PATH, default=None,
              help="Where parsed go.mod files of large graphs are kept (default: $XDG_CACHE_HOME/binlens/gomod).")
@click.option("--no-cache", is_flag=True, help="Read every go.mod; keep nothing.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "sarif"]), default="text", show_default=True)
@click.option("--dot", "dot", is_flag=False, flag_value="", default=None, metavar="[MODULE]",
              help="Write the graph (or MODULE's neighbourhood) in DOT instead of the report.")
@click.option("--profile", default=None, help="Rule profile (default, release, ...).")
@click.option("--fail-on", type=click.Choice(["error", "warning", "note", "never"]), default="error",
              show_default=True)
@click.option("--output", "-o", type=FILE_PATH, default=None, help="Write to FILE.")
def gomod_command(directory: str, proxy: str | None, modcache: str | None, graph_file: str | None,
                  binaries: tuple[str, ...], why_module: str | None, min_go: str | None, local_go: str | None,
                  tree: str | None, cache_dir: str | None, no_cache: bool,
                  fmt: str, dot: str | None, profile: str | None, fail_on: str, output: str | None) -> None:  # noqa: E501
    """The Go module graph of DIRECTORY (its go.mod, or the go.work that applies) computed offline as the go
    command does (`go list -m all`, `go mod graph`): version conflicts with who asked for what, workspace skew,
    go.sum gaps, retracted or deprecated versions, ignored replaces, and drift of --binary against go.mod.
    go.mod files come from --proxy, --modcache, --graph, GOPROXY=file://... or GOMODCACHE. Exit 1 on
    findings at --fail-on or above, 2 when a file cannot be read or parsed."""
    from analyzer.facts import gomod

    with gomod.gc_paused():  # (the graph's and the report's objects: no cycle collection needed, docs/benchmarks.md)
        _gomod(directory, proxy, modcache, graph_file, binaries, why_module, min_go, local_go, tree, cache_dir,
               no_cache, fmt, dot, profile, fail_on, output)


def _gomod(directory: str, proxy: str | None, modcache: str | None, graph_file: str | None,
           binaries: tuple[str, ...], why_module: str | None, min_go: str | None, local_go: str | None,
           tree: str | None, cache_dir: str | None, no_cache: bool,
           fmt: str, dot: str | None, profile: str | None, fail_on: str, output: str | None) -> None:
    from analyzer import report
    from analyzer.facts import gomod
    from analyzer.policy import rules as rules_mod
    from analyzer.report import gomod as view

    bins = []
    if binaries:
        from analyzer.facts.go import build_infos

        bins = list(build_infos(list(binaries)))
    # (json: a large graph's conflicts made by a second process meanwhile: facts/gomod/forked.py)
    rep = gomod.analyze(directory, proxy=proxy, modcache=modcache, graph=graph_file, binaries=bins,
                        why_module=why_module, min_go=min_go, tree=tree, local_go=local_go, cache_dir=cache_dir,
                        use_cache=not no_cache, background=dot is None and fmt == "json")
    conflicts = rep["conflicts"]
    forked = not isinstance(conflicts, list)
    _, pol = _policy({"profile": profile} if profile else {})
    # the rules see only the parts of the report their expressions name (the graph of a large module is tens of
    # thousands of edges: converting it for CEL would cost more than computing it)
    named = " ".join(r.expression for r in pol.rules if "gomod" in r.formats)
    if forked and "gomod.conflicts" in named:
        rep["conflicts"] = conflicts = conflicts.value()
        forked = False
    visible = {k: v for k, v in rep.items() if f"gomod.{k}" in named}
    findings = rules_mod.evaluate(pol, {"path": directory, "format": "gomod", "error": None,
                                        "facts": {"gomod": visible}})
    entry: dict[str, Any] = {"path": directory, "format": "gomod", "error": None, "facts": {"gomod": rep},
                             "findings": findings}
    if dot is not None:
        _emit(view.render_dot(rep, dot or None), output)
    elif fmt == "json" and forked:
        # the report is encoded around a token where the conflicts go, then their text is put in its place
        token = f'"binlens-conflicts-{os.urandom(16).hex()}"'
        rep["conflicts"] = token[1:-1]
        pieces = report.render_pieces("json", report.envelope([entry], ["gomod"]), True)
        at = next(i for i, p in enumerate(pieces) if token in p)
        before, _, after = pieces[at].partition(token)
        pieces[at:at + 1] = [before, conflicts.text(), after]
        _emit(pieces, output)
    elif fmt == "json":
        full = report.envelope([entry], ["gomod"])
        _emit(report.render("json", full, True), output)
    elif fmt == "sarif":
        _emit(report.render("sarif", report.envelope([entry], ["gomod"]), True, pol.rules), output)
    else:
        _emit(view.render_text(rep, findings), output)
    if _fails_gate(findings, fail_on):
        sys.exit(1)


@main.command(name="diff")
@click.argument("old", type=ANY_PATH)
@click.argument("new", type=ANY_PATH)
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
@click.option("--output", "-o", type=FILE_PATH, default=None, help="Write to FILE.")
@click.option("--target", "-t", multiple=True, metavar="NAME", help="Targets for the findings of binaries.")
@click.option("--profile", default=None, help="Rule profile for the findings of binaries.")
@click.option("--config", type=FILE_PATH, default=None, help="A binlens.toml or pyproject.toml.")
@click.option("--max-size", default=None, metavar="SIZE", help="Exit 1 when a new artifact is larger (10M, 512k).")
@click.option(
    "--max-growth",
    type=float,
    default=None,
    metavar="PERCENT",
    help="Exit 1 when an artifact grew by more than PERCENT.",
)
@container_options
@_setting_options("cache_dir", "no_cache")
def diff_command(old: str, new: str, fmt: str, output: str | None, **opts: Any) -> None:
    """What changed between two binaries, two releases, or two JSON reports of releases.

    A release is a package, wheel, tarball, image or directory: its artifacts are
    paired by their place in it. Size by category and by section, libraries added
    or removed, highest symbol versions, findings added or gone, Go version,
    settings and modules, artifacts added or removed. Exit 1 when --max-size or
    --max-growth (or the config's) is exceeded. The facts of files scanned before
    come from the result cache, as scan's do.
    """
    import json
    from dataclasses import replace

    from analyzer import cache as result_cache
    from analyzer import diff as diffmod
    from analyzer import pipeline
    from analyzer.policy import config
    from analyzer.report import diff as diff_view

    cfg, pol = _policy({"targets": opts["target"], "profile": opts["profile"], "config": opts["config"],
                        "cache_dir": opts["cache_dir"], "no_cache": opts["no_cache"],
                        **{k: opts[k] for k in config.CONTAINER_SETTINGS}})  # fmt: skip
    request = replace(pipeline.Request.for_policy(pol), **config.containers(cfg))
    with _cache_env("" if cfg.no_cache else (cfg.cache_dir or result_cache.default_dir())):
        (old_entries, old_installed), (new_entries, new_installed) = (diffmod.load(side, request)
                                                                      for side in (old, new))  # fmt: skip
    result = diffmod.diff(old_entries, new_entries, old if os.path.isdir(old) else None,
                          new if os.path.isdir(new) else None, old_installed, new_installed)
    max_size = config.parse_size(opts["max_size"], "--max-size") if opts["max_size"] else cfg.max_size
    max_growth = opts["max_growth"] if opts["max_growth"] is not None else (cfg.max_growth or None)
    result["over_limits"] = diffmod.over_limits(result, max_size, max_growth)
    if fmt == "json":
        text = json.dumps(result, indent=1) + "\n"
    else:
        text = diff_view.render(result, markdown=fmt == "markdown")
        if result["over_limits"]:
            text += "".join(f"over limit: {line}\n" for line in result["over_limits"])
    _emit(text, output)
    if result["over_limits"]:
        raise SystemExit(EXIT_FINDINGS)


@main.command()
@click.argument("paths", nargs=-1, required=False)
@click.option("--sysroot", "sysroots", multiple=True, default=("/",), show_default=True, type=ANY_PATH,
              help="The root the loader sees: a directory, or a container image (OCI layout, docker save), "
                   "tarball, .deb, RPM or SquashFS image whose final filesystem is used (PATHS are then paths in "
                   "it; none: "
                   "every program in it). Given more than once: containers applied in that order as one "
                   "filesystem (a set of .debs or RPMs installed together).")
@click.option("--ld-library-path", default="", metavar="PATHS", help="LD_LIBRARY_PATH, colon-separated.")
@click.option("--preload", default="", metavar="LIBS",
              help="LD_PRELOAD: libraries loaded before the program's own, separated by spaces or colons (the "
                   "sysroot's /etc/ld.so.preload is read too).")  # fmt: skip
@click.option("--cwd", default=None, metavar="DIR",
              help="The directory the program is started from, where the loader opens relative paths (a DT_NEEDED "
                   "linked by path, a relative RPATH or LD_LIBRARY_PATH entry) (default: this one; in an image, "
                   "its config's WorkingDir; in another sysroot: /).")
@click.option("--bind-now", is_flag=True,
              help="LD_BIND_NOW: every function bound at start-up, as if each object were linked with -z now "
                   "(a function nothing defines then stops the program before main, not at its first call).")
@cpu_options
@click.option("--program-name", default=None, help="argv[0] in the predicted messages (default: PATH).")
@click.option(
    "--install-dir",
    default=None,
    metavar="DIR",
    help="Where the program will live in the sysroot ($ORIGIN); its own directory's files are seen there "
    "(default: where it is on this machine).",
)
@click.option(
    "--host",
    type=FILE_PATH,
    default=None,
    metavar="PROGRAM",
    help="For a plugin: the program that loads it (python3 for an extension module); its link map binds first.",
)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--output", "-o", type=FILE_PATH, default=None, help="Write to FILE.")
@click.option("--jobs", "-j", type=click.IntRange(1, 64), default=None, help="Worker processes for many programs.")
@click.option("--no-bind", is_flag=True,
              help="Resolve the libraries only, as `ld.so --list` maps them: no version checks, no symbol binding, "
                   "no other facts and no rules.")  # fmt: skip
@container_options
def deps(
    paths: tuple[str, ...],
    sysroots: tuple[str, ...],
    ld_library_path: str,
    preload: str,
    cwd: str | None,
    bind_now: bool,
    isa_level: str,
    cpu_vendor: str,
    program_name: str | None,
    install_dir: str | None,
    host: str | None,
    fmt: str,
    output: str | None,
    jobs: int | None,
    no_bind: bool,
    **containers: Any,
) -> None:
    """Resolve programs' libraries as the dynamic loader would, bind their symbols, predict its errors.

    Nothing is run. Exit 1 when the loader would refuse to start the program.
    """
    import os

    from analyzer.load import archives

    choice = _containers(containers)
    sysroot = _sysroot_set(sysroots)
    if archives.kind_of(sysroot) is not None:
        shown = ",".join(sysroots)
        with _image_sysroot(list(sysroots), list(paths), choice) as (tree, names):
            if not names:
                raise AnalyzerError("no dynamically linked program in the image", shown)
            from analyzer.load.sources import image_env

            env = image_env(tree)  # (the image's own settings, unless given here)
            _deps(tuple(names), tree, ld_library_path or env.get("LD_LIBRARY_PATH", ""), (isa_level, cpu_vendor),
                  program_name, install_dir, host, fmt, output, shown=shown, jobs=jobs, bind=not no_bind,
                  preload=preload or env.get("LD_PRELOAD", ""), bind_now=bind_now or bool(env.get("LD_BIND_NOW")),
                  cwd=cwd or env.get(archives.WORKDIR) or "/")
        return
    if not paths:
        raise click.UsageError("give the programs to resolve (or a container image as --sysroot)")
    from analyzer.load.archives import kind_of
    from analyzer.load.sources import named_container

    for p in paths:
        if (outer := named_container(p)) is not None:
            _member_of_a_sysroot(p, outer, "binlens deps")
            raise AnalyzerError(f"a member of {outer}: resolve it inside its container with `binlens deps --sysroot "
                                f"{outer} /{p[len(outer) + 1:]}` (several --sysroot: layered)", p)
        if not os.path.exists(p):
            raise AnalyzerError("no such file", p)
        if os.path.isfile(p) and kind_of(p) in ("tar", "deb", "rpm"):  # its programs resolve inside it, not here
            raise AnalyzerError(f"an image, tarball, .deb or RPM: resolve the programs in it with "
                                f"`binlens deps --sysroot {p}`", p)
    _deps(paths, sysroot, ld_library_path, (isa_level, cpu_vendor), program_name, install_dir, host, fmt, output,
          jobs=jobs, bind=not no_bind, preload=preload, bind_now=bind_now,
          cwd=cwd or (os.getcwd() if os.path.realpath(sysroot) == "/" else "/"))


def _deps(paths: tuple[str, ...], sysroot: str, ld_library_path: str, cpu: tuple[str, str], program_name: str | None,
          install_dir: str | None, host: str | None, fmt: str, output: str | None, shown: str | None = None,
          jobs: int | None = None, bind: bool = True, preload: str = "", bind_now: bool = False,
          cwd: str | None = None) -> None:
    from analyzer import facts, load, pipeline, report
    from analyzer.facts import loader
    from analyzer.facts.loader.glibc import target_cpu
    from analyzer.report import deps as deps_view

    level, vendor = target_cpu(*cpu)
    opts = loader.Options(sysroot=sysroot, ld_library_path=[p for p in ld_library_path.split(":") if p],
                          isa_level=level, cpu_vendor=vendor, program=program_name, host=host,
                          install_dir=install_dir, sysroot_name=shown, bind=bind,
                          preload=[preload] if preload else [], bind_now=bind_now, cwd=cwd)  # fmt: skip
    _, pol = _policy({"config": None})
    shared = loader.Sysroot(sysroot)  # every library read once, whatever the number of programs
    digest = fmt == "json"  # the text view shows no digest: none taken (the whole file read for nothing)
    if bind:
        request = pipeline.Request(pipeline.plan(pol, extra=("deps",)),
                                   facts.Context(policy=pol, loader=(opts, shared)), digest=digest)  # fmt: skip
    else:  # the libraries only: the facts deps needs, no rules (they read facts not computed)
        request = pipeline.Request(facts.resolve(["deps"]), facts.Context(loader=(opts, shared)), digest=digest)
    for path in paths:  # what is not an ELF program is refused before any work, in the order given
        kind = load.sniff(bytes(load.read_file(path, head=8)))  # a member of an image (symbolic links followed) too
        if kind is None:
            load.open_artifacts(path)  # says why, as for any file
        if kind != "ELF":
            raise AnalyzerError("deps resolves ELF programs only", path)
    # in worker processes for many programs (each worker reads each library once)
    entries = [r.entry for r in pipeline.scan(list(paths), request, jobs=jobs) if r.entry is not None]
    failed = False
    named = set(paths)
    for entry in entries:  # each program named, and after it the binaries it carries (a PyInstaller program's)
        if entry["error"] is not None:  # (a bundled binary that cannot be read: the program's named are errors)
            raise AnalyzerError(entry["error"], entry["path"])
        if "deps" not in entry["facts"]:  # the provider models Linux loaders only
            if entry["path"] not in named:
                continue  # (a bundled binary for another system)
            os_name = entry["facts"]["os"]["name"]
            raise AnalyzerError(f"deps models the Linux loaders (glibc's, musl's); this program is for {os_name}",
                                entry["path"])
        failed = failed or bool(entry["facts"]["deps"]["loader_errors"])
    entries = [e for e in entries if "deps" in e["facts"]]
    if fmt == "json":
        _emit(report.render("json", report.envelope(entries, request.computed), True, pol.rules if bind else ()),
              output)  # fmt: skip
    else:
        _emit(deps_view.render(entries, opts.program), output)
    if failed:
        raise SystemExit(EXIT_FINDINGS)


class _TextCommand(click.Command):
    """A command whose argument is pasted text: a token that is not one of its options (`-bash: ./app: ...`
    starts with a dash) is text, never a cluster of short options."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        names = {n for p in self.params if isinstance(p, click.Option) for n in (*p.opts, *p.secondary_opts)}
        names |= {"--help", "-h"}
        options, text, i = [], [], 0
        while i < len(args):
            token = args[i]
            name = token.split("=", 1)[0]
            if name in names:
                takes_value = name not in ("--help", "-h") and "=" not in token
                options += args[i : i + 2] if takes_value else [token]
                i += 2 if takes_value else 1
            else:
                text.append(token)
                i += 1
        return super().parse_args(ctx, [*options, "--", *text])


@main.command(cls=_TextCommand)
@click.argument("error_text", nargs=-1, required=True)
@click.option("--binary", type=ANY_PATH, default=None,
              help="The program the error came from (with a container image as --sysroot: its path in the image; "
                   "or named as a member, `app.tar!usr/bin/app`).")
@click.option("--sysroot", "sysroots", multiple=True, default=("/",), show_default=True, type=ANY_PATH,
              help="The root the loader saw: a directory, or a container image (OCI layout, docker save), tarball, "
                   ".deb, RPM or SquashFS image whose final filesystem is used. Given more than once: containers "
                   "applied in that order as one filesystem.")
@click.option("--target", "-t", default=None, metavar="NAME", help="Where it must run: advice for that release.")
@cpu_options
@container_options
def explain(error_text: tuple[str, ...], binary: str | None, sysroots: tuple[str, ...], target: str | None,
            isa_level: str, cpu_vendor: str, **containers: Any) -> None:  # fmt: skip
    """Explain pasted errors of a program that does not start (loader, dlopen, shell, container); `-` reads them
    from standard input. Every error in the text is explained."""
    from analyzer.facts.loader.explain import MAX_LINE, MAX_LINES, explain_error
    from analyzer.facts.loader.glibc import target_cpu
    from analyzer.load import archives
    from analyzer.load.sources import named_container

    cpu = target_cpu(isa_level, cpu_vendor)

    if error_text == ("-",):
        text = sys.stdin.read(MAX_LINE * MAX_LINES)
    else:
        text = "\n".join(error_text)
    sysroot = _sysroot_set(sysroots) if sysroots != ("/",) else "/"
    if binary and sysroot == "/" and (outer := named_container(binary)) is not None:
        _member_of_a_sysroot(binary, outer, "binlens explain --binary")
        sysroot, binary, sysroots = outer, "/" + binary[len(outer) + 1 :], (outer,)  # (its container's files)
    if archives.kind_of(sysroot) is not None:  # an image: the program and its libraries in it, its os-release
        with _image_sysroot(list(sysroots), [binary] if binary else [], _containers(containers)) as (tree, names):
            click.echo("\n".join(explain_error(text, names[0] if binary else None, tree, target, cpu)))
        return
    click.echo("\n".join(explain_error(text, binary, sysroot, target, cpu)))


@main.command()
def targets() -> None:
    """List the distribution releases and platform tags --target accepts."""
    from analyzer.policy import compat

    for name in compat.target_names():
        t = compat.resolve(name)
        arches = ", ".join(sorted(t.arches))
        click.echo(f"{name:<22} glibc {t.glibc or '-':<6} {arches}")
    click.echo("glibc-X.Y              any glibc version (GLIBC nodes only)")
    click.echo("musllinux_1_X          musl")
    click.echo("POLICY_ARCH            a platform tag with its architecture (manylinux_2_17_x86_64)")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
