#!/usr/bin/env python3
"""binlens's manylinux verdict against `auditwheel show` on popular wheels as PyPI serves them (CI checks the
fixtures, numpy's and a Rust wheel: tests/test_manylinux.py).

    python scripts/wheel_sweep.py [--arch aarch64] [PROJECT...]

Downloads each project's newest CPython 3.11 manylinux wheel for the architecture (x86_64 unless --arch; not
musllinux: auditwheel reads those only on a musl system) (pip download, into the fixture cache),
then compares the policy auditwheel says each wheel is consistent with to the oldest policy every binary in it
holds for binlens (libraries bundled in the wheel counted as auditwheel counts them). Prints one line per
wheel; exit 1 when any differs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "fixtures"), str(ROOT / "tests"), str(ROOT)]

PROJECTS = ["bcrypt", "cffi", "charset-normalizer", "cryptography", "google-crc32c", "greenlet", "grpcio", "jiter",
            "lxml", "markupsafe", "msgpack", "orjson", "pillow", "psycopg2-binary", "pydantic-core", "pyyaml",
            "regex", "rpds-py", "ruff", "scipy", "tokenizers", "uv", "uvloop", "watchfiles", "zstandard"]


def platforms(arch: str) -> list[str]:
    """The platform tags pip is told to take (the newest wheel of one of them)."""
    return ["manylinux1_" + arch, "manylinux2014_" + arch, *(f"manylinux_2_{m}_{arch}" for m in (17, 24, 27, 28,
                                                                                                  31, 34, 35, 39))]


def main(argv: list[str]) -> int:
    arch = argv[argv.index("--arch") + 1] if "--arch" in argv else "x86_64"
    projects = [a for a in argv if not a.startswith("--") and a != arch] or PROJECTS
    import build
    from groundtruth import auditwheel_tag

    from analyzer import pipeline
    from analyzer.policy import compat, config

    policies = compat.table()["manylinux"]
    cfg = config.Config()
    cfg.set("targets", list(policies))
    request = pipeline.Request.for_policy(config.build_policy(cfg))
    where = build.CACHE / f"wheel-sweep-{arch}"
    where.mkdir(parents=True, exist_ok=True)
    differ = 0
    for project in projects:
        before = set(where.glob("*.whl"))
        fetched = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                                  "--python-version", "3.11", *(a for p in platforms(arch) for a in ("--platform", p)),
                                  "-d", str(where), project], capture_output=True, text=True)
        if fetched.returncode != 0:  # (not every project builds every architecture)
            print(f"none     {project}: PyPI has no CPython 3.11 manylinux wheel for {arch}")
            continue
        got = set(where.glob("*.whl")) - before or {w for w in where.glob("*.whl")
                                                     if w.name.lower().startswith(project.replace("-", "_"))}
        for wheel in sorted(got):
            if wheel.name.endswith("-any.whl"):  # (a pure wheel: polars ships its native code in another project)
                print(f"pure     {wheel.name}: no binary to hold to a policy")
                continue
            expected = auditwheel_tag(wheel)
            common: set[str] | None = None
            for r in pipeline.scan([str(wheel)], request, jobs=2):
                e = r.entry
                if not e or e.get("error") or e["facts"].get("kind") == "relocatable":
                    continue
                ok = {t for t, v in e["facts"]["compat"]["targets"].items() if v["ok"] and t in policies}
                common = ok if common is None else common & ok
            best = max(common, key=lambda t: policies[t]["priority"]) if common else "linux"
            differ += best != expected
            print(f"{'same' if best == expected else 'DIFFERS'}  {wheel.name}: auditwheel {expected}, binlens {best}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
