"""The restructure into load/facts/policy/report (issue 9) changed no fact: the JSON report of the fixtures
and a system sample is byte-identical to the one binlens printed before it, except the fields listed in
CHANGED, each with the reason. The earlier binlens is taken from git history and run from a temporary tree."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, run_binlens, system_elf_sample

BEFORE = "52198403c31376947baeec02036ca098adf1b319"  # the last commit before the restructure
# report fields that differ from BEFORE on purpose
CHANGED = {
    "facts_computed": "new: the providers the fact registry ran",
    "evidence": "keys sorted: CEL returned maps in hash-seed order, so BEFORE itself varied between runs",
    "policy.rules": "the rules added since BEFORE (their findings are new too)",
    "findings[].fingerprint": "new: the finding's identity for baselines and SARIF (issue 10)",
    "GO006, GO009": "GO006 split: end of life is GO009, a warning in the default profile (issue 10)",
    "compat, findings": "of artifacts that need special nodes (GLIBC_ABI_DT_RELR, CXXABI_LDBL_1.3): BEFORE "
    "never checked them and said such a binary runs where it does not (issue 10)",
    "os": "new: the OS a binary is for (issue 10)",
    "hardening": "new: exploit mitigations (issue 14); none for core dumps (their segments are a process's "
    "mappings)",
    "libc": "of static glibc programs: BEFORE said none (issue 10)",
    "go.linkage.link_mode, static_glibc, cgo_evidence": "of Go programs a C linker linked: BEFORE looked at .comment "
    "only, and searched static files for glibc's tunables itself (issue 10)",
    "strip_savings": "of files with GNU build-attribute notes: BEFORE left out the note merging strip does under "
    "--strip-unneeded and --strip-all; of relocatable objects: BEFORE predicted none; of PA-RISC files: BEFORE "
    "missed BFD's rule that two segments never share a page there; of files whose .shstrtab precedes .symtab (Go "
    "up to 1.21, old links): BEFORE kept the file's order where strip writes .shstrtab last (issue 16)",
    "compat.notes, compat.targets[].notes": "new: what does not stop a binary on a target (probed system calls, "
    "issue 11)",
    "libc, compat, findings, deps": "of binaries for other systems than Linux: BEFORE called OpenBSD's libc musl and "
    "Solaris' glibc, and gave them Linux verdicts (issue 10)",
    "version_definitions, glibc_component": "new: the nodes an object defines, and whether it is part of glibc",
    "plugin": "new: a module its host loads with dlopen (a Python extension, a Node.js addon)",
    "findings (glibc's own)": "of glibc's own components (libc.so.6, gconv modules): their GLIBC_PRIVATE needs are "
    "met by their own build's libc, and no longer fail the gate (SYM005)",
    "version_unnumbered[*_PRIVATE].symbols": "data copied in by a copy relocation is named too (BEFORE: none)",
    "compat.oldest, linkage, libc, loader.dynamic_in_file": "of files that do not run (objects, core dumps, "
    "debug-info companions, bare-metal programs, programs asking for a loader no distribution has there, "
    "soft-float ARM objects on armhf releases, dlopened modules that want an executable stack, programs for more "
    "than a baseline x86-64 CPU on releases with no known baseline, Go programs for more than their architecture's "
    "baseline CPU): BEFORE "
    "named the releases they \"run on\"; a static program's companion was static with glibc",
    "sections[].type": "LLVM's own section types (.llvm_addrsig) as GNU readelf names them, LOOS+0xfff4c03 "
    "(BEFORE: llvm-readelf's names)",
}
CHECKED = ("GLIBC", "GLIBCXX", "CXXABI", "GCC")
# the names BEFORE gave LLVM's section types 0x6fff4c00 and up, in order
_LLVM_TYPES = ("LLVM_ODRTAB", "LLVM_LINKER_OPTIONS", "LLVM_CALL_GRAPH_PROFILE", "LLVM_ADDRSIG",
               "LLVM_DEPENDENT_LIBRARIES", "LLVM_SYMPART", "LLVM_PART_EHDR", "LLVM_PART_PHDR", "LLVM_BB_ADDR_MAP_V0",
               "LLVM_CALL_GRAPH_PROFILE", "LLVM_BB_ADDR_MAP", "LLVM_OFFLOADING", "LLVM_LTO")  # fmt: skip


def _report(tree: Path, paths: list[str], cwd: Path) -> list[str]:
    env = dict(os.environ, PYTHONPATH=str(tree), NO_COLOR="1")
    proc = subprocess.run([sys.executable, "-m", "analyzer", "scan", "--format", "json", "--jobs", "1", *paths],
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=900)  # fmt: skip
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    return proc.stdout.splitlines()


def _normalised(line: str, new: dict, old_rules: set[str]) -> str:
    """One report line with the CHANGED fields made comparable: new facts dropped, evidence sorted, and the
    fields the issue-10 fixes change dropped for the artifacts they change (`new`: the new report's facts)."""
    data = json.loads(line.rstrip(","))
    facts = data.get("facts", {})
    facts.pop("os", None)
    facts.pop("hardening", None)
    facts.pop("version_definitions", None)
    facts.pop("glibc_component", None)
    facts.pop("plugin", None)
    for node, entry in (facts.get("version_unnumbered") or {}).items():
        if node.endswith("_PRIVATE"):
            entry.pop("symbols", None)
    if new.get("glibc_component"):
        data["findings"] = [f for f in data.get("findings", []) if f["rule"] != "SYM005"]
    compat = facts.get("compat") or {}
    compat.pop("notes", None)
    if new.get("linkage") is None or (new.get("os") or {}).get("name") == "none" or _loader_elsewhere(new) \
            or _soft_float(new) or _execstack_plugin(new) or _above_baseline(new) or _small_pages(new) \
            or (new.get("loader") or {}).get("p_align_kept") is False:
        compat.pop("oldest", None)
        for key in ("linkage", "libc"):
            facts.pop(key, None)
        (facts.get("loader") or {}).pop("dynamic_in_file", None)
    (facts.get("loader") or {}).pop("page_size_max", None)
    (facts.get("loader") or {}).pop("p_align_kept", None)
    for verdict in (compat.get("targets") or {}).values():
        verdict.pop("notes", None)
    if any(s["name"].startswith(".gnu.build.attributes") for s in new.get("sections") or []):
        facts.pop("strip_savings", None)
    for sec in facts.get("sections") or []:
        if sec.get("type", "").startswith("LLVM_"):
            sec["type"] = f"LOOS+{0x6FFF4C00 - 0x60000000 + _LLVM_TYPES.index(sec['type']):#x}"
    names = [sec["name"] for sec in new.get("sections") or []]
    shstrtab_first = ".symtab" in names and ".shstrtab" in names and names.index(".shstrtab") < names.index(".symtab")
    if (new.get("elf") or {}).get("e_type") == "ET_REL" or (new.get("elf") or {}).get("e_machine") == "EM_PARISC":
        facts.pop("strip_savings", None)
    elif shstrtab_first:
        facts.pop("strip_savings", None)
    os_name = new.get("os", {}).get("name", "unknown")
    if new.get("linkage") in ("static", "static-pie"):
        facts.pop("libc", None)
    go_linkage = (facts.get("go") or {}).get("linkage")
    if go_linkage and ((new.get("go") or {}).get("linkage") or {}).get("link_mode") == "external":
        for key in ("link_mode", "static_glibc", "cgo_evidence"):
            go_linkage.pop(key, None)
    data["findings"] = [f for f in data.get("findings", []) if f["rule"] in old_rules - {"GO006"}]
    for f in data["findings"]:
        f["evidence"] = json.loads(json.dumps(f["evidence"], sort_keys=True))
        f.pop("fingerprint", None)
        if f["rule"] == "SYM005":  # (its symbols: see version_unnumbered)
            f.pop("message", None)
            f["evidence"].pop("symbols", None)
    needs = [n for nodes in facts.get("version_needs", {}).values() for n in nodes]
    if any(_special(n) for n in needs) or os_name not in ("linux", "unknown"):
        for key in ("compat", "libc", "deps"):
            facts.pop(key, None)
        data.pop("findings", None)
    return json.dumps(data)


def _loader_elsewhere(facts: dict) -> bool:
    """A program asking for its loader where glibc distributions do not have it (a Nix store's)."""
    from analyzer.policy import compat

    if not facts.get("interpreter") or facts.get("libc") != "glibc":
        return False
    places = compat._loader_places(compat.needs_of(facts), compat.resolve_cached("rhel-9"))
    return places is not None and facts["interpreter"] not in places


def _soft_float(facts: dict) -> bool:
    """A soft-float (armel) EABI5 object the loader loads: every 32-bit ARM release in the table is armhf; or a
    riscv64 one not of the lp64d float ABI, which every riscv64 release is."""
    flags = (facts.get("elf") or {}).get("e_flags", 0)
    if facts.get("linkage") != "dynamic":
        return False
    return (facts.get("arch") == "arm" and flags >> 24 == 5 and not flags & 0x400) or \
        (facts.get("arch") == "riscv64" and flags & 0x6 != 0x4)


def _execstack_plugin(facts: dict) -> bool:
    """A module its host dlopens that wants an executable stack: glibc 2.41's dlopen refuses it."""
    from analyzer.facts.linkage import exec_stack_wanted_of

    return bool(facts.get("plugin")) and exec_stack_wanted_of(facts)


def _small_pages(facts: dict) -> bool:
    """Laid out for smaller pages than some kernels of its architecture use (aarch64 linked for 4 KiB pages)."""
    from analyzer.policy import compat

    return compat._small_pages(compat.needs_of(facts))


def _above_baseline(facts: dict) -> bool:
    """Needs more than a baseline x86-64 CPU (its property note, or Go's GOAMD64): a release binlens has no
    baseline for now counts as any x86-64 CPU."""
    from analyzer.policy import compat

    isa = compat._isa_needed(facts.get("arch"), (facts.get("elf") or {}).get("x86_isa_needed") or [], facts)
    return isa not in (None, "x86-64-baseline") or compat._go_level(facts) is not None


def _special(node: str) -> bool:
    """A node of a checked namespace that is not NAMESPACE_<number> (nor *_PRIVATE)."""
    import re

    ns = next((n for n in sorted(CHECKED, key=len, reverse=True) if node.startswith(n + "_")), None)
    rest = node[len(ns) + 1 :] if ns else ""
    return bool(ns) and rest != "PRIVATE" and not re.fullmatch(r"\d+(\.\d+)*", rest)


def test_json_report_equals_the_one_before_the_restructure(binaries_built: dict[str, Path], tmp_path: Path) -> None:
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", BEFORE + "^{commit}"],
                            capture_output=True, text=True)  # fmt: skip
    assert commit.returncode == 0, "the commit before the restructure must be in the clone's history"
    before = tmp_path / "before"
    before.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", BEFORE, "analyzer", "rules"],
                             capture_output=True, check=True)  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(before)], input=archive.stdout, check=True)
    (before / "analyzer" / "rules").symlink_to(before / "rules")  # the package-dir mapping of the wheel
    paths = [str(p) for p in binaries_built.values()] + system_elf_sample(60)
    old = _report(before, paths, tmp_path)
    new = _report(ROOT, paths, tmp_path)
    assert len(old) == len(new)
    head_old, head_new = (json.loads(text[0].removesuffix(',"artifacts":[') + "}") for text in (old, new))
    head_new.pop("facts_computed")
    # rules added since BEFORE are new in policy.rules; none of BEFORE's may be gone
    head_new["policy"]["rules"] = [r for r in head_new["policy"]["rules"] if r in head_old["policy"]["rules"]]
    assert head_old == head_new
    for a, b in zip(old[1:], new[1:], strict=True):
        if a == b:
            continue
        new = json.loads(b.rstrip(","))["facts"]
        old_rules = set(head_old["policy"]["rules"])
        assert _normalised(a, new, old_rules) == _normalised(b, new, old_rules)  # no other field may differ


def test_plain_text_report_is_what_rich_writes(binaries_built: dict[str, Path]) -> None:
    """For a file or a pipe the text report writes the lines rich would write as they are, without importing
    rich; rich is the oracle: a quarter of the fixtures' report (summary and detailed view), and the same report
    with the names and messages made awkward — longer than the 80 columns rich wraps at, exactly at them, wide
    (CJK) characters, tabs, control characters, trailing spaces, empty — and each of those lines alone, printed
    whole or wrapped, plain and styled, equal rich rendering each line itself. A scan printing text to a pipe
    does not import rich."""
    from analyzer.report import text

    probe = ("import sys; sys.argv = ['binlens', 'scan', '--no-cache', *sys.argv[1:]]\n"
             "from analyzer.entry import main\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in sys.modules if m.startswith('rich')), file=sys.stderr)")  # fmt: skip
    seen = subprocess.run([sys.executable, "-c", probe, str(binaries_built["c-rawsys"]),
                           str(binaries_built["go-linux-amd64"])], capture_output=True, text=True, check=True,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))  # fmt: skip
    assert seen.stderr.strip() == "[]" and "summary" in seen.stdout, seen.stderr[-2000:]

    r = run_binlens("scan", *map(str, sorted(binaries_built.values())[::4]), "--format", "json", "--fail-on",
                    "never", check=True)  # fmt: skip
    report = json.loads(r.stdout)
    awkward = ["", " ", "x" * 78, "x" * 79, "x" * 80, "x" * 81, "word " * 30, "tail   ", "\u540d\u524d" * 30,
               "\u540d" * 39, "\u540d" * 40, "a\tb", "bell\x07", "ünïcödé " * 12, "[bold]x[/] :cat:", "é" * 79,
               "e\u0301" * 50, "  lead", "line\nbreak"]  # fmt: skip
    odd = json.loads(r.stdout)
    for i, a in enumerate(odd["artifacts"]):
        s = awkward[i % len(awkward)]
        a["path"] = s + a["path"]
        for f in a.get("findings", []):
            f["message"] = s + f["message"] + s
        if a.get("error"):
            a["error"] = s
    assert any(a.get("findings") for a in report["artifacts"])

    class Rich(text._Plain):  # (every line through rich)
        print = text._Plain.by_rich

    for line in awkward:  # each line alone, printed whole or wrapped at the width, plain and styled
        for made in (line, text.Line(line, "bold"), text.Line("  key  ", "cyan") + text.Line(line)):
            for soft_wrap in (True, False, None):
                fast, oracle = text._Plain(io.StringIO()), Rich(io.StringIO())
                fast.print(made, soft_wrap=soft_wrap)
                oracle.print(made, soft_wrap=soft_wrap)
                assert fast.buf.getvalue() == oracle.buf.getvalue(), (line, soft_wrap)
    for rep in (report, odd):
        for detailed in (False, True):
            fast = text.render(rep, detailed)
            text._Plain, plain = Rich, text._Plain  # type: ignore[misc]
            try:
                assert fast == text.render(rep, detailed)
            finally:
                text._Plain = plain  # type: ignore[misc]
