#!/usr/bin/env python3
"""Peak memory of scanning a large container image: a `docker save` tarball of about 2 GB made of this machine's
/usr/lib/x86_64-linux-gnu three times over (three layers, each the tree under another prefix), scanned with
`binlens scan --format jsonl --no-cache`. The peak resident set of the scan and of its worker processes (wait4)
is printed against the aim of 500 MB, with the time and the image's size.

    python bench/image_memory.py [SOURCE_DIR]      # default /usr/lib/x86_64-linux-gnu; needs 3x its size x2 free
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

AIM = 500 << 20


def main(argv: list[str]) -> int:
    source = Path(argv[0] if argv else "/usr/lib/x86_64-linux-gnu")
    with tempfile.TemporaryDirectory(prefix="binlens-bench-image-") as tmp:
        root = Path(tmp) / "image"
        root.mkdir()
        layers = []
        for i, prefix in enumerate(("usr/lib/x86_64-linux-gnu", "opt/a/lib", "opt/b/lib")):
            (root / f"l{i}").mkdir()
            layer = root / f"l{i}" / "layer.tar"
            subprocess.run(["tar", "-cf", str(layer), "--transform", f"s,^\\.,{prefix},", "-C", str(source), "."],
                           check=True, stderr=subprocess.DEVNULL)  # fmt: skip
            layers.append(f"l{i}/layer.tar")
        (root / "manifest.json").write_text(json.dumps([{"Config": "c.json", "RepoTags": ["bench:1"],
                                                        "Layers": layers}]))  # fmt: skip
        (root / "c.json").write_text("{}")
        image = Path(tmp) / "image.tar"
        subprocess.run(["tar", "-cf", str(image), "-C", str(root), "."], check=True)
        subprocess.run(["rm", "-rf", str(root)], check=True)
        size = image.stat().st_size
        print(f"image {size / 2**30:.2f} GiB ({source} x3, docker save)")
        worst = 0
        for fmt in ("jsonl", "json"):
            start = time.perf_counter()
            proc = subprocess.Popen([sys.executable, "-m", "analyzer", "scan", "--format", fmt, "--no-cache",
                                     "--fail-on", "never", "-o", os.devnull, str(image)])  # fmt: skip
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            took = time.perf_counter() - start
            peak = usage.ru_maxrss * 1024
            worst = max(worst, peak)
            print(f"  --format {fmt:<5}  exit {proc.returncode}, {took:5.1f} s, peak resident set (the scan and its "
                  f"workers) {peak / 2**20:4.0f} MiB, aim {AIM >> 20} MiB: {'met' if peak < AIM else 'missed'}")
        return 0 if worst < AIM else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
