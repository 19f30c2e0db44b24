"""The `binlens checksec` view: one line per binary in checksec's columns, or checksec's JSON keys, so scripts
written for `checksec --output=json` keep working (checksec 2.6's values: "full"/"partial"/"no", "yes"/"no",
counts as strings)."""

from __future__ import annotations

import json
from typing import Any

COLUMNS = ("RELRO", "STACK CANARY", "NX", "PIE", "RPATH", "RUNPATH", "Symbols", "FORTIFY", "Fortified",
           "Fortifiable", "FILE")  # fmt: skip


def fields(hardening: dict[str, Any]) -> dict[str, str]:
    """checksec's JSON fields of one binary."""

    def yes(value: Any) -> str:
        return "yes" if value else "no"

    fortify = hardening["fortify"]
    return {
        "relro": {"none": "no"}.get(hardening["relro"], hardening["relro"]),
        "canary": yes(hardening["canary"]),
        "nx": yes(hardening["nx"]),
        "pie": hardening["pie"],
        "rpath": yes(hardening["rpath"]),
        "runpath": yes(hardening["runpath"]),
        "symbols": yes(hardening["symbols"]),
        "fortify_source": yes(fortify["source"]),
        "fortified": str(fortify["fortified"]),
        "fortify-able": str(fortify["fortifiable"]),
    }


def _not_elf(e: dict[str, Any]) -> str:
    """Why an entry has no checksec columns: checksec's fields are ELF's; PE and Mach-O mitigations
    are in `binlens scan`'s facts.hardening."""
    return f"{e['format']}: checksec's columns are for ELF; binlens scan shows its hardening"


def render_json(entries: list[dict[str, Any]]) -> str:
    """{path: {checksec's fields}} for every ELF entry (an entry binlens could not read: {"error": ...};
    a PE or Mach-O file: {"format": ..., "note": ...})."""
    out: dict[str, Any] = {}
    for e in entries:
        hardening = e["facts"].get("hardening")
        if e["error"]:
            out[e["path"]] = {"error": e["error"]}
        elif e.get("format") in ("PE", "MachO"):
            out[e["path"]] = {"format": e["format"], "note": _not_elf(e)}
        elif e["facts"].get("kind") == "core":
            out[e["path"]] = {"format": "ELF", "note": "a core dump: a process's memory, not a program"}
        else:
            out[e["path"]] = fields(hardening) if hardening else {}
    return json.dumps(out, indent=1, ensure_ascii=True) + "\n"


def render_text(entries: list[dict[str, Any]]) -> str:
    rows = [list(COLUMNS)]
    for e in entries:
        hardening = e["facts"].get("hardening")
        if e["error"] or not hardening or e.get("format") in ("PE", "MachO"):
            why = e["error"] or (_not_elf(e) if hardening else "a core dump: a process's memory, not a program"
                                 if e["facts"].get("kind") == "core" else "not ELF")
            rows.append(["-"] * (len(COLUMNS) - 1) + [f"{e['path']} ({why})"])
            continue
        f = fields(hardening)
        relro = {"full": "Full RELRO", "partial": "Partial RELRO", "no": "No RELRO"}[f["relro"]]
        pie = {"yes": "PIE enabled", "dso": "DSO", "no": "No PIE", "rel": "REL"}[f["pie"]]
        rows.append([
            relro,
            "Canary found" if f["canary"] == "yes" else "No canary found",
            "NX enabled" if f["nx"] == "yes" else "NX disabled",
            pie,
            "RPATH" if f["rpath"] == "yes" else "No RPATH",
            "RUNPATH" if f["runpath"] == "yes" else "No RUNPATH",
            "Symbols" if f["symbols"] == "yes" else "No Symbols",
            f["fortify_source"].capitalize(),
            f["fortified"],
            f["fortify-able"],
            e["path"],
        ])  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS) - 1)]
    return "".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1] + "\n" for r in rows)
