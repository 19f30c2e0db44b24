"""The `binlens deps` view: the dependency tree and the loader's predicted errors, for people."""

from __future__ import annotations

from typing import Any


def render_tree(path: str, deps: dict[str, Any]) -> str:
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
        lines += [f"    there for another CPU only: {o['path']} (its {o['subdirectory']}: --isa-level, --cpu-vendor)"
                  for o in miss.get("other_cpus", ())]
    lazy = [b for b in deps["undefined"] if b["when"] == "first call"]
    for b in lazy:
        version = f"@{b['version']}" if b["version"] else ""
        lines.append(f"  undefined {b['symbol']}{version} in {b['object']}: fails when first called (lazy binding)")
    if deps.get("loader_warnings"):
        lines.append("the loader would warn:")
        lines += [f"  {w}" for w in deps["loader_warnings"]]
    if deps["loader_errors"]:
        lines.append("the loader would stop with:")
        lines += [f"  {e}" for e in deps["loader_errors"]]
    else:
        lines.append("the loader would start it" + (" (with lazy failures above)" if lazy else ""))
    return "\n".join(lines) + "\n"


def render(entries: list[dict[str, Any]], program: str | None = None) -> str:
    """Every program's tree, each followed by its DEP findings."""
    text = ""
    for entry in entries:
        text += render_tree(program or entry["path"], entry["facts"]["deps"])
        text += "".join(f"  {f['severity']} {f['rule']}: {f['message']}\n"
                        for f in entry["findings"] if f["rule"].startswith("DEP"))  # fmt: skip
    return text
