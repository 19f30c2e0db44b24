"""The command line end to end: JSON contract, text view, options, exit codes."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path

from click.testing import CliRunner
from conftest import assert_died_alone, run_binlens, starts_with
from groundtruth import lipo_path

from analyzer.cli import main

ARTIFACT_FIELDS = {"path", "sha256", "size", "format", "error", "facts", "findings"}


def test_json_report_contract(fixtures_built: dict[str, Path]) -> None:
    paths = [fixtures_built[n] for n in ("c-x86_64-gnu.2.17", "go-windows-amd64.exe", "go-darwin-fat")]
    proc = run_binlens("scan", "--format", "json", *map(str, paths))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["schema_version"] == 1
    assert report["tool"]["name"] == "binlens" and report["tool"]["version"]
    arts = report["artifacts"]
    assert [a["format"] for a in arts] == ["ELF", "PE", "MachO", "MachO"]
    for a in arts:
        assert set(a) == ARTIFACT_FIELDS
        assert a["error"] is None and a["findings"] == []
    for a, p in zip(arts[:2], paths[:2], strict=True):
        sha = subprocess.run(["sha256sum", str(p)], capture_output=True, text=True).stdout.split()[0]
        assert a["sha256"] == sha
        assert a["size"] == p.stat().st_size


def test_text_view_is_plain_and_fits_80_columns(fixtures_built: dict[str, Path]) -> None:
    names = ("cpp-x86_64-gxx", "c-x86_64-windows-gnu.exe", "go-darwin-fat", "usegreet")
    proc = run_binlens("scan", *(str(fixtures_built[n]) for n in names))
    assert proc.returncode == 0, proc.stderr
    assert "\x1b[" not in proc.stdout
    for line in proc.stdout.splitlines():
        if not line.startswith("/"):  # headings are the paths, left whole
            assert len(line) <= 80, line
    assert "max GLIBCXX" in proc.stdout
    assert "runpath      $ORIGIN/../lib" in proc.stdout
    slices = subprocess.run(
        [lipo_path() or "llvm-lipo", "-archs", str(fixtures_built["go-darwin-fat"])], capture_output=True, text=True
    )
    assert slices.returncode == 0, slices.stderr
    assert f"{3 + len(slices.stdout.split())} artifacts" in proc.stdout  # three thin files and each slice


def test_text_summary_agrees_with_json(fixtures_built: dict[str, Path]) -> None:
    path = str(fixtures_built["c-x86_64-gnu.2.34"])
    facts = json.loads(run_binlens("scan", "--format", "json", path).stdout)["artifacts"][0]["facts"]
    text = run_binlens("scan", path).stdout
    assert f"linkage      {facts['linkage']}" in text
    assert f"interpreter  {facts['interpreter']}" in text
    glibc = facts["version_max"]["GLIBC"]
    assert f"max GLIBC    {glibc['version']}  forced by {', '.join(glibc['symbols'][:1])}" in text


def test_inspect_shows_every_section(fixtures_built: dict[str, Path]) -> None:
    path = str(fixtures_built["c-aarch64-gnu.2.17"])
    facts = json.loads(run_binlens("inspect", "--format", "json", path).stdout)["artifacts"][0]["facts"]
    text = run_binlens("inspect", path).stdout
    for s in facts["sections"]:
        assert s["name"] in text
    assert "float" not in facts["elf"]["flags"]  # aarch64 defines no e_flags


def test_output_file(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    result = CliRunner().invoke(main, ["scan", "--format", "json", "--output", str(out), "/bin/ls"])
    assert result.exit_code == 0, result.output
    assert result.output == ""
    assert json.loads(out.read_text())["artifacts"][0]["path"] == "/bin/ls"


def test_inspect_rejects_a_directory(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["inspect", str(tmp_path)])
    assert result.exit_code == 2
    assert "is a directory" in result.output


def test_directory_scan_skips_non_binaries_and_recurses(fixtures_built: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "app").write_bytes(fixtures_built["c-x86_64-gnu.2.17"].read_bytes())
    (tmp_path / "a" / "readme.txt").write_text("not a binary")
    (tmp_path / "a" / "link").symlink_to(tmp_path / "a" / "b" / "app")
    report = json.loads(run_binlens("scan", "--format", "json", str(tmp_path)).stdout)
    assert [a["path"] for a in report["artifacts"]] == [str(tmp_path / "a" / "b" / "app")]


def test_parallel_scan_keeps_order_and_equals_serial(binaries_built: dict[str, Path]) -> None:
    paths = [str(p) for p in binaries_built.values()]
    serial = json.loads(run_binlens("scan", "--format", "json", "--jobs", "1", *paths).stdout)
    parallel = json.loads(run_binlens("scan", "--format", "json", "--jobs", "2", *paths).stdout)
    assert serial == parallel


def _on_terminal(*args: str, no_color: bool = False, columns: str | None = None) -> tuple[bytes, int]:
    """binlens run with a pseudo-terminal as stdout and stderr: (what it wrote there, its exit code)."""
    import os
    import pty
    import sys

    from conftest import ROOT

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("NO_COLOR", None)
    if no_color:
        env["NO_COLOR"] = "1"
    if columns:
        env["COLUMNS"] = columns
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(sys.executable, [sys.executable, "-m", "analyzer", *args], env)
    out = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    return out, os.waitstatus_to_exitcode(status)


def test_colours_on_a_terminal_only_without_no_color(fixtures_built: dict[str, Path]) -> None:
    """On a terminal the view is coloured; NO_COLOR (or a pipe, tested above) makes it plain."""
    assert b"\x1b[" in _on_terminal("scan", "/bin/ls", columns="100")[0]
    assert b"\x1b[" not in _on_terminal("scan", "/bin/ls", columns="100", no_color=True)[0]


def test_other_commands_bad_input_is_one_line_exit_2(tmp_path: Path) -> None:
    """go on a non-Go file, deps with a missing sysroot or a missing program, inspect on nothing."""
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    cases = [
        (["go", "/bin/ls"], "not a Go executable"),
        (["deps", "--sysroot", str(tmp_path / "nowhere"), "/bin/ls"], "sysroot does not exist"),
        (["deps", str(tmp_path / "missing")], "no such file"),
        (["go", str(text)], "not an ELF, PE or Mach-O file"),
        (["inspect", str(tmp_path / "missing")], "no such file"),
    ]
    for args, expected in cases:
        proc = run_binlens(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0] and "Traceback" not in proc.stderr, (args, proc.stderr)


def test_usage_errors_are_one_line_exit_2() -> None:
    """Unknown options and commands, bad option values, missing arguments: one line naming the command,
    click's own message and where help is; no usage block. Plain `binlens` still prints its help."""
    cases = [
        (["scan", "--bogus", "x"], "binlens scan: No such option '--bogus'"),
        (["scan", "--format", "nope", "x"], "binlens scan: Invalid value for '--format'"),
        (["scan", "--jobs", "0", "x"], "binlens scan: Invalid value for '--jobs'"),
        (["nosuch"], "binlens: No such command 'nosuch'"),
        (["--bogus"], "binlens: No such option '--bogus'"),
        (["inspect"], "binlens inspect: Missing argument 'PATH'"),
        (["diff", "only-one"], "binlens diff: Missing argument"),
    ]
    for args, expected in cases:
        proc = run_binlens(*args)
        assert proc.returncode == 2 and proc.stdout == "", (args, proc.stdout)
        assert proc.stderr.count("\n") == 1 and proc.stderr.startswith(expected), (args, proc.stderr)
        assert proc.stderr.rstrip().endswith("--help')"), proc.stderr
    assert "Usage: binlens" in run_binlens().stdout + run_binlens().stderr


def test_report_file_has_no_colour_when_run_at_a_terminal(tmp_path: Path) -> None:
    """`-o FILE` at a terminal: the terminal is not where the report goes, so the file is plain."""
    out = tmp_path / "report.txt"
    assert _on_terminal("scan", "-o", str(out), "/bin/ls")[1] == 0
    text = out.read_text()
    assert "/bin/ls" in text and "\x1b[" not in text


def test_inspect_shows_go_facts_and_readelf_section_sizes(fixtures_built: dict[str, Path]) -> None:
    """inspect promises every fact: the Go build info as `go version -m` lists it, and section sizes as readelf
    prints them (a NOBITS section's .bss size too, not the 0 bytes it takes in the file)."""
    import re

    import build

    path = str(fixtures_built["gomx-app"])
    shown = run_binlens("inspect", path).stdout
    reference = subprocess.run([str(build.go_binary()), "version", "-m", path], capture_output=True, text=True).stdout
    for line in reference.splitlines()[1:]:
        kind, *rest = line.split("\t")[1:]
        if kind == "path":
            assert rest[0] in shown, line
        elif kind == "build":  # go version -m quotes a value with spaces: -ldflags="-X main.version=1.2.3"
            key, _, value = rest[0].partition("=")
            assert f"{key}={value.strip(chr(34))}" in shown, line
        elif kind in ("dep", "mod"):
            assert rest[0] in shown, line
    sections = subprocess.run(["readelf", "-SW", path], capture_output=True, text=True).stdout
    bss = int(re.search(r"\] \.bss\s+NOBITS\s+\S+\s+\S+\s+(\S+)", sections)[1], 16)
    assert re.search(rf"^\.bss\s+NOBITS\s+WA\s+\S+\s+{bss}$", shown, re.M)


def test_diff_says_what_the_artifact_became_and_counts_in_words(fixtures_built: dict[str, Path]) -> None:
    old, new = str(fixtures_built["c-x86_64-gnu.2.17"]), str(fixtures_built["c-x86_64-musl-static"])
    text = run_binlens("diff", old, new).stdout
    assert "linkage: dynamic -> static" in text and "libc: glibc -> none" in text
    assert "None" not in text
    one = run_binlens("scan", "--fail-on", "never", str(fixtures_built["libgreet-runpath.so.1"])).stdout
    assert "1 artifact; 0 errors, " in one and "1 artifacts" not in one


def test_unknown_profile_lists_the_known_ones() -> None:
    import tomllib

    from conftest import ROOT

    known = ", ".join(tomllib.loads((ROOT / "rules" / "profiles.toml").read_text())["profile"])
    proc = run_binlens("scan", "--profile", "defaults", "/bin/true")
    assert proc.returncode == 2 and proc.stderr == f"binlens: unknown profile 'defaults' (known: {known})\n"


def test_progress_on_a_terminal_only(binaries_built: dict[str, Path], tmp_path: Path) -> None:
    """A directory scan at a terminal draws a progress bar on stderr (the report goes to -o here); through a pipe
    stderr stays empty; the summary line ends the report either way."""
    folder = tmp_path / "many"
    folder.mkdir()
    for name, path in list(binaries_built.items())[:40]:
        (folder / name).write_bytes(path.read_bytes())
    out = tmp_path / "report.txt"
    seen, _ = _on_terminal("scan", "--fail-on", "never", "-o", str(out), str(folder))
    assert b"scanning" in seen and b"/40" in seen and b" MB of " in seen and b"MB/s" in seen
    assert out.read_text().rstrip().splitlines()[-1].startswith("40 artifacts")
    piped = run_binlens("scan", "--fail-on", "never", str(folder))
    assert piped.stderr == "" and piped.stdout.rstrip().splitlines()[-1].startswith("40 artifacts")


def test_a_killed_worker_is_that_files_error(binaries_built: dict[str, Path], tmp_path: Path) -> None:
    """--jobs 2 over a directory where the worker analysing one file is killed (SIGKILL, as the OOM killer
    would): that file's entry carries the error and fails the gate (ART001); every other file is reported
    exactly as in a clean run. Named on the command line, the file is a one-line error with exit 2."""
    import shutil

    folder = tmp_path / "bins"
    folder.mkdir()
    for name, path in sorted(binaries_built.items())[:24]:
        shutil.copy(path, folder / name)
    victim = str(sorted(folder.iterdir())[5])
    clean = run_binlens("scan", "--format", "json", "--jobs", "2", str(folder))
    killed = run_binlens("scan", "--format", "json", "--jobs", "2", str(folder),
                         prefix=["env", f"BINLENS_FAULT_KILL={victim}"])  # fmt: skip
    assert killed.returncode == 1 and killed.stderr == "", killed.stderr[-500:]
    assert_died_alone(clean.stdout, killed.stdout, victim)
    files = sorted(str(p) for p in folder.iterdir())
    named = run_binlens("scan", "--jobs", "2", *files, prefix=["env", f"BINLENS_FAULT_KILL={victim}"])
    assert named.returncode == 2 and named.stderr.count("\n") == 1 and victim in named.stderr, named.stderr


def test_jsonl_streams_the_json_reports_entries_then_a_summary(binaries_built: dict[str, Path], tmp_path: Path) -> None:
    """--format jsonl: the entries of --format json, one per line in the same order (any --jobs), then one
    summary line whose counts are those of the entries."""
    folder = tmp_path / "many"
    folder.mkdir()
    for name, path in list(binaries_built.items())[:30]:
        (folder / name).write_bytes(path.read_bytes())
    (folder / "broken").write_bytes(b"\x7fELF" + b"\0" * 10)
    whole = json.loads(run_binlens("scan", str(folder), "--format", "json").stdout)
    lines = [run_binlens("scan", str(folder), "--format", "jsonl", "-j", j).stdout for j in ("1", "2")]
    assert lines[0] == lines[1]
    rows = [json.loads(x) for x in lines[0].splitlines()]
    assert rows[:-1] == whole["artifacts"]
    s = rows[-1]["summary"]
    assert s["artifacts"] == len(whole["artifacts"]) and s["errors"] == 1
    assert s["by_format"] == dict(sorted(Counter(a["format"] for a in whole["artifacts"]).items()))
    counted = Counter(f["rule"] for a in whole["artifacts"] for f in a["findings"]
                      if not f["suppressed"] and not f.get("baselined"))
    assert s["by_rule"] == dict(sorted(counted.items()))
    assert s["facts_computed"] == whole["facts_computed"] and s["policy"] == whole["policy"]
    text = run_binlens("scan", str(folder)).stdout.splitlines()
    assert "summary" in text and any(x.startswith("  format") for x in text)


def test_a_small_scan_starts_no_worker_pool(tmp_path: Path) -> None:
    """A handful of small files (at most 32 files and 1 MiB) is analysed in the command's own process, sooner than
    a pool of workers starts (strace sees one process made: the guard of the files' budgets, budget._guard);
    more starts the pool; `--jobs` asks for one anyway. The report is the same bytes each way."""
    import os
    import shutil
    import sys

    from conftest import ROOT

    small = [p for p in sorted(Path("/usr/bin").iterdir())
             if p.is_file() and not p.is_symlink() and p.stat().st_size < 30_000 and starts_with(p, b"\x7fELF")]
    assert len(small) >= 40

    def forks(d: Path, *extra: str) -> tuple[int, str]:
        log = tmp_path / "clone.log"
        env = dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1")
        out = subprocess.run(["strace", "-f", "-qq", "-e", "trace=clone,clone3,fork,vfork", "-o", str(log),
                              sys.executable, "-m", "analyzer", "scan", "--format", "json", "--no-cache", *extra,
                              str(d)], capture_output=True, text=True, env=env)
        made = [line for line in log.read_text().splitlines() if "CLONE_THREAD" not in line and "= " in line
                and not line.rstrip().endswith("= -1")]
        return len(made), out.stdout

    reports = []
    for n, extra, started in ((20, (), False), (40, (), True), (20, ("--jobs", "2"), True)):
        d = tmp_path / f"d{n}{len(extra)}"
        d.mkdir()
        for p in small[:n]:
            shutil.copy(p, d / p.name)
        made, report = forks(d, *extra)
        assert (made > 1) == started and made >= 1, (n, extra, made)
        if n == 20:
            reports.append(report.replace(str(d), "D"))
    assert reports[0] == reports[1]
