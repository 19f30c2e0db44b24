"""Fuzzing in CI: hypothesis drives structure-aware mutations (fixtures/mutate.py: the header fields each reader
trusts set to hurtful values, byte flips, cuts, blocks copied over tables) of one fixture per reader: ELF 32/64,
little and big endian, relocatable objects (COMDAT groups, MIPS64 relocations), Go, PE32 and PE32+, Mach-O and
fat Mach-O. Every mutant gives facts or one AnalyzerError
naming the file, never another exception. The budget here is bounded (derandomized, so CI is reproducible);
scripts/fuzz_campaign.py runs the long campaign (10,000 mutants and more, through the CLI), and the mutants it
found crashing are replayed below by their seed."""

from __future__ import annotations

import json
import random
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import mutate  # fixtures/mutate.py
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer import pipeline
from analyzer.errors import AnalyzerError

SOURCES = ["c-x86_64-gnu.2.34", "c-i386-gnu.2.17", "c-s390x-gnu.2.28", "go-linux-ppc64", "go-linux-amd64-sw",
           "c-x86_64-windows-gnu.exe", "c-i386-windows-gnu.exe", "c-x86_64-macos", "go-darwin-fat",
           "c-x86_64-musl-static", "obj-gxx-types.o", "obj-mips64el.o"]  # fmt: skip
# (source, seed) of mutants the long campaign found breaking a reader, replayed on every run
CRASHERS: list[tuple[str, int]] = []
BUDGET = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])  # fmt: skip
SYSCALLS = pipeline.Request(pipeline.plan(None, ["syscalls"]))


def _check(data: bytes, seed: int, request: pipeline.Request | None = None) -> None:
    blob = mutate.mutate(data, random.Random(seed))
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "mutant")
        Path(path).write_bytes(blob)
        try:
            entries = pipeline.analyze_file(path, request or pipeline.Request())
        except AnalyzerError as e:
            assert path in str(e) and "\n" not in str(e), (seed, str(e))
        else:
            assert entries and all(e["facts"] for e in entries), seed


@pytest.mark.parametrize("source", SOURCES)
def test_mutants_give_facts_or_one_error(binaries_built: dict[str, Path], source: str) -> None:
    data = binaries_built[source].read_bytes()

    @BUDGET
    @given(seed=st.integers(0, 2**32 - 1))
    def run(seed: int) -> None:
        _check(data, seed)

    run()


@pytest.mark.parametrize("source", ["c-x86_64-musl-static", "go-linux-amd64-sw", "c-s390x-gnu.2.28"])
def test_mutants_through_the_syscall_inventory(binaries_built: dict[str, Path], source: str) -> None:
    data = binaries_built[source].read_bytes()

    @BUDGET
    @given(seed=st.integers(0, 2**32 - 1))
    def run(seed: int) -> None:
        _check(data, seed, SYSCALLS)

    run()


@pytest.mark.parametrize("case", CRASHERS or [None])
def test_crashers_found_by_the_campaign_stay_fixed(binaries_built: dict[str, Path], case: tuple[str, int] | None
                                                  ) -> None:  # fmt: skip
    if case is None:
        assert not CRASHERS  # the campaign has found none since the list was last emptied
        return
    source, seed = case
    _check(binaries_built[source].read_bytes(), seed)


def _text_mutant(text: str, rng: random.Random) -> str:
    """A text file with characters replaced, deleted, duplicated or a span repeated: for the TOML and JSON
    inputs (rule files, config, reports for diff, baselines)."""
    chars = list(text)
    for _ in range(rng.randrange(1, 12)):
        if not chars:
            break
        at = rng.randrange(len(chars))
        what = rng.randrange(4)
        if what == 0:
            chars[at] = rng.choice('"[]{}=,.:\\\n#\'0123456789abcxyz \x00\u00e9')
        elif what == 1:
            del chars[at : at + rng.randrange(1, 40)]
        elif what == 2:
            chars.insert(at, chars[at] * rng.randrange(1, 200))
        else:
            span = chars[at : at + rng.randrange(1, 400)]
            chars[at:at] = span * rng.randrange(1, 20)
    return "".join(chars)


def _one_error_or_value(load: Any, text: str, name: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            load(str(path))
        except AnalyzerError as e:
            assert str(path) in str(e) and "\n" not in str(e), str(e)


ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("kind", ["rules", "config", "report", "baseline", "go.mod", "go.work", "go.sum"])
def test_text_inputs_give_a_value_or_one_error(binaries_built: dict[str, Path], kind: str) -> None:
    """Rule files, configuration files, JSON reports for `diff`, baselines: mutated, each is read or one
    AnalyzerError naming the file."""
    from analyzer import diff, report
    from analyzer.policy import config, rules

    if kind == "rules":
        good, name = (ROOT / "rules" / "linkage.toml").read_text(), "extra.toml"
        load = rules.load_rule_file
    elif kind == "config":
        good, name = ('targets = ["debian-12", "rhel-8"]\nprofile = "release"\nmax-size = "10M"\n'
                      '[[suppress]]\npath = "dist/*"\nrule = "LNK006"\nreason = "known"\n'), "binlens.toml"  # fmt: skip
        load = lambda p: config.build_policy(config.load(Path(p)))  # noqa: E731
    elif kind == "report":
        entries = [pipeline.analyze_file(str(binaries_built["c-rawsys"]))[0]]
        good, name = json.dumps(report.envelope(entries)), "report.json"
        load = lambda p: diff.load_side(p, pipeline.Request())  # noqa: E731
    elif kind.startswith("go."):
        from test_gomod import RICH

        from analyzer.facts import gomod

        good, name = {"go.mod": RICH, "go.work": "go 1.23\n\nuse (\n\t.\n\t./sub\n)\n\nreplace example.com/x v1.0.0 => "
                                                 "../x\n", "go.sum": "example.com/a v1.0.0 h1:AAAA=\n"
                                                 "example.com/a v1.0.0/go.mod h1:BBBB=\n"}[kind], kind

        def load(p: str) -> None:
            d = Path(p).parent
            if kind != "go.mod":
                (d / "go.mod").write_text("module example.com/m\n\ngo 1.22\n\nrequire example.com/a v1.0.0\n")
            gomod.analyze(str(d), proxy=str(d), env={}, local_go="1.27.3")
    else:
        good, name = ('{"binlens_baseline": 2, "findings": [{"path": "a", "rule": "LNK006", "fingerprint": "f"}]}',
                      "baseline.json")  # fmt: skip
        load = config.load_baseline

    @BUDGET
    @given(seed=st.integers(0, 2**32 - 1))
    def run(seed: int) -> None:
        _one_error_or_value(load, _text_mutant(good, random.Random(seed)), name)

    run()


def _containers(elf: bytes, tmp: Path) -> dict[str, bytes]:
    """Small real containers holding one binary: the archive readers' seeds."""
    import gzip
    import io
    import subprocess
    import tarfile
    import zipfile

    def tar(mode: str) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode=mode) as tf:
            info = tarfile.TarInfo("usr/bin/app")
            info.size = len(elf)
            tf.addfile(info, io.BytesIO(elf))
        return buf.getvalue()

    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("pkg/_native.so", elf)
    (tmp / "data.tar.gz").write_bytes(tar("w:gz"))
    (tmp / "debian-binary").write_text("2.0\n")
    (tmp / "control.tar.gz").write_bytes(gzip.compress(tar("w"), mtime=0))
    subprocess.run(["ar", "rc", str(tmp / "p.deb"), str(tmp / "debian-binary"), str(tmp / "control.tar.gz"),
                    str(tmp / "data.tar.gz")], check=True, capture_output=True)
    import zstandard

    return {"t.tar.gz": tar("w:gz"), "t.tar.xz": tar("w:xz"), "t.tar": tar("w"), "t.whl": zbuf.getvalue(),
            "p.deb": (tmp / "p.deb").read_bytes(), "t.tar.zst": zstandard.ZstdCompressor().compress(tar("w"))}


@pytest.mark.parametrize("kind", ["t.tar.gz", "t.tar.xz", "t.tar.zst", "t.tar", "t.whl", "p.deb"])
def test_container_mutants_give_members_or_one_error(binaries_built: dict[str, Path], kind: str) -> None:
    """Tarballs, wheels and .debs with bytes flipped, cut, repeated: scanned, each gives its members' entries
    or one AnalyzerError naming the container; never a traceback, a hang or a write outside the unpack
    directory."""
    with tempfile.TemporaryDirectory() as tmp:
        seed_bytes = _containers(binaries_built["c-rawsys"].read_bytes()[:4096], Path(tmp))[kind]
        seed = Path(tmp) / f"seed-{kind}"
        seed.write_bytes(seed_bytes)  # the unmutated container gives its member (an error for all would pass below)
        (entry,) = [r.entry for r in pipeline.scan([str(seed)], pipeline.Request(), jobs=1) if r.entry]
        assert entry["path"] == f"{seed}!" + ("pkg/_native.so" if kind == "t.whl" else "usr/bin/app")

    @BUDGET
    @given(seed=st.integers(0, 2**32 - 1))
    def run(seed: int) -> None:
        rng = random.Random(seed)
        data = bytearray(seed_bytes)
        for _ in range(rng.randrange(1, 8)):
            at = rng.randrange(len(data))
            what = rng.randrange(3)
            if what == 0:
                data[at] = rng.randrange(256)
            elif what == 1:
                del data[at:]
                if not data:
                    data += b"\0"
            else:
                data[at:at] = data[at : at + rng.randrange(1, 64)] * rng.randrange(1, 8)
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / kind
            path.write_bytes(bytes(data))
            try:
                for r in pipeline.scan([str(path)], pipeline.Request(), jobs=1):
                    assert r.entry is None or r.entry["path"].startswith(str(path))
            except AnalyzerError as e:
                assert str(path) in str(e) and "\n" not in str(e), str(e)

    run()


# ---------------------------------------------------------------- Go build info in isolation

# characters that matter to the build-info text (separators, quotes, escapes) and a few non-ASCII ones whose
# printability Go and Python agree on (letters, a mark, a symbol; no-break space, zero-width space, line separator)
_MODINFO_ALPHABET = "ab./=\t \"`\\\r\nxuU07'\x01\x7f\u00e9\u0301\u00a0\u200b\u2028\U0001f600"
_MODINFO_LINE = st.tuples(
    st.sampled_from(["path\t", "mod\t", "dep\t", "=>\t", "build\t", "build\t\"", "build\t`", "", "dep\ta\tv1\t"]),
    st.text(alphabet=_MODINFO_ALPHABET, max_size=24),
    st.sampled_from(["\n", "\n", "\n", ""]),
).map("".join)


def test_build_info_text_equals_go_parse_build_info(binaries_built: dict[str, Path]) -> None:
    """The module-info text parser and its writer against Go's own (runtime/debug.ParseBuildInfo and
    BuildInfo.String, what `go version -m` prints, in the go-parsebuildinfo oracle): texts built from
    hurtful lines and mutants of real build info; each is refused by both or read by both and written back
    byte for byte alike."""
    import subprocess

    from analyzer.facts.go import buildinfo

    real = [pipeline.analyze_file(str(binaries_built[n]))[0]["facts"]["go"]["modinfo"]
            for n in ("gomx-app", "gomx-vcs-dirty", "go-linux-cgo-amd64")]  # fmt: skip
    texts: list[str] = []

    @BUDGET
    @given(lines=st.lists(_MODINFO_LINE, max_size=8), base=st.sampled_from(real), seed=st.integers(0, 2**32 - 1))
    def run(lines: list[str], base: str, seed: int) -> None:
        texts.append("".join(lines))
        texts.append(_text_mutant(base, random.Random(seed)))

    run()
    texts += real
    proc = subprocess.run([str(binaries_built["go-parsebuildinfo"])], input=json.dumps(texts), capture_output=True,
                          text=True, check=True)  # fmt: skip
    for text, ref in zip(texts, json.loads(proc.stdout), strict=True):
        try:
            mine: str | None = buildinfo.modinfo_string(buildinfo.parse_modinfo(text))
        except buildinfo.GoInfoError:
            mine = None
        assert (mine is not None) == ref["ok"], (text, ref["error"])
        if mine is not None:
            assert mine == ref["string"], text


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not out[-1] & 0x80:
            return bytes(out)


def test_build_info_headers_give_strings_or_one_error() -> None:
    """The build-info header decoder alone, over every layout it knows (Go 1.18+ inline varints, Go 1.13-1.17
    pointers to string headers in either byte order and width): lying lengths, pointers anywhere, truncation.
    It gives (version, module text) or GoInfoError, never another exception."""
    from analyzer.facts.go import buildinfo

    @BUDGET
    @given(ptr_size=st.sampled_from([4, 8, 0, 3, 255]), flags=st.integers(0, 3),
           pointers=st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1)),
           lengths=st.tuples(st.integers(0, 2**70), st.integers(0, 2**70)), payload=st.binary(max_size=300),
           cut=st.integers(0, 400), base=st.sampled_from([0, 0x1000, 2**63]))  # fmt: skip
    def run(ptr_size: int, flags: int, pointers: tuple[int, int], lengths: tuple[int, int], payload: bytes, cut: int,
            base: int) -> None:  # fmt: skip
        order = ">" if flags & 1 else "<"
        ptrs = b"".join((p % 2 ** (8 * max(ptr_size, 4) if ptr_size in (4, 8) else 64)).to_bytes(
            ptr_size if ptr_size in (4, 8) else 8, "big" if order == ">" else "little") for p in pointers)[:16]
        body = _uvarint(lengths[0]) + payload[:20] + _uvarint(lengths[1]) + payload if flags & 2 else payload
        blob = (buildinfo.MAGIC + bytes([ptr_size, flags]) + ptrs.ljust(16, b"\0") + body)[: 32 + cut]
        image = buildinfo.Image(blob, [(base, len(blob), 0)], (base, len(blob)))
        try:
            found = buildinfo.decode(image)
        except buildinfo.GoInfoError:
            return
        assert found is None or all(isinstance(x, str) for x in found)

    run()


# ---------------------------------------------------------------- the loader's files: ld.so.cache, ld.so.conf


def test_ld_so_cache_mutants_give_entries_or_not_a_cache(binaries_built: dict[str, Path]) -> None:
    """The host's ld.so.cache (written by ldconfig) mutated, in a sysroot: the parser gives entries or
    ValueError, and resolving a program's libraries in that sysroot gives facts (a damaged cache is as good as
    none to the loader model), never an exception."""
    from analyzer.facts import loader
    from analyzer.facts.loader import linkmap, sysroot

    good = Path("/etc/ld.so.cache").read_bytes()
    program = str(binaries_built["c-x86_64-gnu.2.34"])

    @BUDGET
    @given(seed=st.integers(0, 2**32 - 1), nlibs=st.sampled_from([None, 0, 1, 2**18, 2**18 + 1, 2**32 - 1]),
           string_at=st.integers(0, 2**32 - 1))  # fmt: skip
    def run(seed: int, nlibs: int | None, string_at: int) -> None:
        blob = bytearray(mutate.mutate(good, random.Random(seed)) if seed % 3 else good)
        at = blob.find(b"glibc-ld.so.cache1.1")
        if at >= 0 and nlibs is not None and at + 24 <= len(blob):
            blob[at + 20 : at + 24] = nlibs.to_bytes(4, "little")
        if at >= 0 and at + 60 <= len(blob):
            blob[at + 52 : at + 56] = string_at.to_bytes(4, "little")  # the first entry's name offset
        try:
            entries = sysroot.parse_ld_so_cache(bytes(blob))
        except ValueError:
            entries = None
        assert entries is None or all(isinstance(e[1], str) and isinstance(e[2], str) for e in entries)
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "etc").mkdir()
            (Path(tmp) / "etc" / "ld.so.cache").write_bytes(bytes(blob))
            facts = loader.analyze_path(program, linkmap.Options(), sysroot.Sysroot(tmp))
            assert isinstance(facts, dict)

    run()


def test_ld_so_conf_mutants_stay_inside_the_sysroot() -> None:
    """ld.so.conf and the files it includes, mutated (include loops and globs, `..`, absolute and relative
    patterns, long lines): the directories are read or the file skipped, never an exception, and no include
    is read from outside the sysroot (a file planted beside the sysroot names a directory that must not appear)."""
    from analyzer.facts.loader import sysroot

    good = ("# comment\ninclude /etc/ld.so.conf.d/*.conf\n/usr/local/lib\ninclude ../../outside/*.conf\n"
            "include ld.so.conf\n/opt/a, /opt/b\ninclude /etc/ld.so.conf.d/../ld.so.conf.d/*\n")  # fmt: skip

    @BUDGET
    @given(seed=st.integers(0, 2**32 - 1))
    def run(seed: int) -> None:
        rng = random.Random(seed)
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "root"
            (root / "etc" / "ld.so.conf.d").mkdir(parents=True)
            (Path(tmp) / "outside").mkdir()
            (Path(tmp) / "outside" / "x.conf").write_text("/escaped\n")
            (root / "etc" / "ld.so.conf").write_text(_text_mutant(good, rng), encoding="utf-8", errors="surrogatepass")
            (root / "etc" / "ld.so.conf.d" / "a.conf").write_text(_text_mutant(good, rng), encoding="utf-8",
                                                                   errors="surrogatepass")  # fmt: skip
            dirs = sysroot.Sysroot(str(root)).conf_dirs()
            assert all(isinstance(d, str) and d.startswith("/") for d in dirs)
            assert "/escaped" not in dirs

    run()


_INTERNAL = ("AttributeError", "TypeError", "KeyError", "IndexError", "RecursionError", "UnicodeError")
_JSON_VALUES: list[Any] = [None, 0, -1, 1 << 70, "", "x", "sha256:" + "0" * 64, "../../etc/passwd", [], [1], {},
                           {"a": 1}, True, 1.5, ["a:1"], {"os": "linux"}]


def _json_mutant(doc: Any, rng: random.Random) -> Any:
    """A JSON document with a value somewhere in it replaced by one of another type, a key removed, or an item
    repeated: the shapes a reader of index.json, manifests and manifest.json must not trust."""
    doc = json.loads(json.dumps(doc))
    for _ in range(rng.randrange(1, 4)):
        holders: list[tuple[Any, Any]] = []
        stack = [doc]
        while stack:
            node = stack.pop()
            keys = list(node) if isinstance(node, dict) else range(len(node)) if isinstance(node, list) else []
            for k in keys:
                holders.append((node, k))
                stack.append(node[k])
        if not holders:
            return json.loads(json.dumps(rng.choice(_JSON_VALUES)))
        node, key = rng.choice(holders)
        what = rng.randrange(3)
        if what == 0 or not isinstance(node, (dict, list)):
            node[key] = json.loads(json.dumps(rng.choice(_JSON_VALUES)))  # (a copy: later rounds change it)
        elif what == 1:
            del node[key]
        elif isinstance(node, list):
            node.append(json.loads(json.dumps(node[key])))
        else:
            node[f"{key}2"] = json.loads(json.dumps(node[key]))
    return doc


def _image_layout(elf: bytes, root: Path) -> dict[str, Path]:
    """An OCI layout directory of one image (index → manifest → config and one gzip layer holding usr/bin/app)
    with a docker save manifest.json beside it: the JSON documents an image reader trusts, by name."""
    from test_archives import _blob_store, _layer

    put = _blob_store(root)
    layer = put(_layer({"usr/bin/app": elf}))
    config = put(b'{"architecture": "amd64", "os": "linux"}')
    manifest = json.dumps({"schemaVersion": 2, "config": {"digest": config, "size": 1},
                           "layers": [{"digest": layer, "size": 1}]}).encode()
    digest = put(manifest)
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"digest": digest, "size": len(manifest), "platform": {"os": "linux", "architecture": "amd64"},
         "annotations": {"org.opencontainers.image.ref.name": "app:1"}}]}))
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (root / "manifest.json").write_text(json.dumps([{"Config": f"blobs/sha256/{config[7:]}", "RepoTags": ["app:1"],
                                                     "Layers": [f"blobs/sha256/{layer[7:]}"]}]))
    return {"index.json": root / "index.json", "manifest": root / "blobs" / "sha256" / digest[7:],
            "manifest.json": root / "manifest.json"}


@pytest.mark.parametrize("document", ["index.json", "manifest", "manifest.json"])
def test_image_document_mutants_give_members_or_one_error(binaries_built: dict[str, Path], document: str) -> None:
    """An image's JSON documents with values of other types, keys missing, items repeated — index.json and the
    manifest of an OCI layout (directory, tar, zip), a docker save's manifest.json (tar, zip) — scanned (with
    --platform, --image or neither): the image's members or one AnalyzerError naming it, its words binlens's
    own (never a Python exception's name: "corrupt oci (AttributeError: ...)" was one), never a traceback."""
    import subprocess

    elf = binaries_built["c-rawsys"].read_bytes()[:4096]
    with tempfile.TemporaryDirectory() as tmp:
        docs = _image_layout(elf, Path(tmp) / "seed")
        good = json.loads(docs[document].read_text())
    requests = [pipeline.Request(), pipeline.Request(platform="linux/amd64"), pipeline.Request(image="app:1")]

    @BUDGET
    @given(seed=st.integers(0, 2**32 - 1))
    def run(seed: int) -> None:
        rng = random.Random(seed)
        with tempfile.TemporaryDirectory() as d:
            root = Path(d) / "img"
            files = _image_layout(elf, root)
            files[document].write_text(json.dumps(_json_mutant(good, rng)))
            if document == "manifest.json":  # (a docker save: the tar without oci-layout and index.json)
                (root / "oci-layout").unlink()
                (root / "index.json").unlink()
            target = root
            shape = rng.choice(("tar", "zip") if document == "manifest.json" else ("dir", "tar", "zip"))
            if shape == "tar":
                target = Path(d) / "img.tar"
                subprocess.run(["tar", "-cf", str(target), "-C", str(root), "."], check=True)
            elif shape == "zip":  # (below a top directory, as a CI system zips one)
                target = Path(d) / "img.zip"
                with zipfile.ZipFile(target, "w") as z:
                    for f in sorted(root.rglob("*")):
                        z.write(f, f.relative_to(root.parent))
            try:
                for r in pipeline.scan([str(target)], rng.choice(requests), jobs=1):
                    assert r.entry is None or r.entry["path"].startswith(str(target))
            except AnalyzerError as e:
                message = str(e)
                assert str(target) in message and "\n" not in message, message
                assert not any(name in message for name in _INTERNAL), message

    run()
