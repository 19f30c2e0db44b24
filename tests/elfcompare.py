"""Field-by-field comparison of binlens ELF facts with parsed readelf output."""

from __future__ import annotations

from typing import Any

from groundtruth import ReadelfFacts

from analyzer.facts.symvers import parse_node


def expected_version_max(version_needs: dict[str, list[str]]) -> dict[str, str]:
    """The highest node per namespace over readelf's version-needs names."""
    best: dict[str, tuple[tuple[int, ...], str]] = {}
    for nodes in version_needs.values():
        for node in nodes:
            parsed = parse_node(node)
            if parsed and (parsed[0] not in best or parsed[1] > best[parsed[0]][0]):
                best[parsed[0]] = (parsed[1], node)
    return {ns: node for ns, (_, node) in best.items()}


def expected_page_size_max(loads: list[tuple[int, int, int]], library: bool) -> int | None:
    """From readelf's PT_LOAD lines: the largest power of two (at most 64 KiB) dividing every segment's address
    less its offset and, for a library glibc's loader maps, its alignment; None without any."""
    if not loads:
        return None
    values = [v - o for o, v, _ in loads] + ([a for _, _, a in loads] if library else [])
    return min([65536] + [abs(x) & -abs(x) for x in values if x])


def assert_matches_readelf(facts: dict[str, Any], ref: ReadelfFacts) -> None:
    assert facts["interpreter"] == ref.interpreter
    assert facts["needed"] == ref.needed
    assert facts["rpath"] == ref.rpath
    assert facts["runpath"] == ref.runpath
    assert facts["soname"] == ref.soname
    assert facts["version_needs"] == ref.version_needs
    assert facts["version_definitions"] == ref.version_definitions
    assert {ns: v["node"] for ns, v in facts["version_max"].items()} == expected_version_max(ref.version_needs)
    assert [(s["name"], s["type"], s["size"], s["offset"]) for s in facts["sections"]] == ref.sections
    got_imports = [(i["symbol"], i["version"]) for i in facts["versioned_imports"]]
    assert got_imports == ref.undefined
    # the symbols said to force each maximum are exactly the imports at that node
    for ns, v in facts["version_max"].items():
        assert v["symbols"] == sorted({s for s, ver in ref.undefined if ver == v["node"]}), ns

    loader = facts["loader"]
    words = set(ref.dyn_flags)
    assert loader["bind_now"] == bool(words & {"BIND_NOW", "NOW"})
    assert loader["textrel"] == ("TEXTREL" in words)
    assert loader["nodeflib"] == ("NODEFLIB" in words)
    assert loader["relro"] == ref.relro
    assert loader["page_size_max"] == expected_page_size_max(ref.loads, facts["kind"] == "shared-library")
    kept = all((v - o) % a == 0 if a else v == o for o, v, a in ref.loads)  # (p_align 0: glibc wants them equal)
    assert loader["p_align_kept"] == (kept if facts["kind"] == "shared-library" and ref.loads else None)
    if ref.gnu_stack is None:
        assert loader["gnu_stack"] is None
    else:
        assert loader["gnu_stack"] == {"executable": "E" in ref.gnu_stack}
