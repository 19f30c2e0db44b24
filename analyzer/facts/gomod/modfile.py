"""go.mod, go.work, go.sum, vendor/modules.txt and `go mod graph` text, read as the go command reads them
(golang.org/x/mod/modfile): every directive, block and single forms, quoted paths, `// indirect`,
`// Deprecated:` and retraction rationales. Errors are `FILE:LINE: message`, as the go command prints them."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from analyzer.errors import AnalyzerError
from analyzer.facts.gomod.versions import _parse_semver, semver_canonical, semver_major

MAX_FILE = 16 << 20  # the go command refuses a go.mod over 16 MiB in a module zip; we bound every file read
MAX_LINES = 1_000_000
_GO_VERSION = re.compile(r"^([1-9][0-9]*)\.(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))?([a-z]+[0-9]+)?$")
_LAX_GO_VERSION = re.compile(r"^v?(([1-9][0-9]*)\.(0|[1-9][0-9]*))([^0-9].*)$")
_TOOLCHAIN = re.compile(r"^default$|^go1($|\.)")
_DEPRECATED = re.compile(r"(?s)(?:^|\n\n)Deprecated: *(.*?)(?:$|\n\n)")
_PUNCT = "()[]{},"


class ModFileError(AnalyzerError):
    """A go.mod/go.work/go.sum that the go command would refuse; the message is FILE:LINE: problem."""

    def __init__(self, message: str, path: str | None = None, line: int = 0, col: int = 0) -> None:
        self.line, self.col = line, col
        super().__init__(message, path)

    def __str__(self) -> str:
        problem = self.problem.replace("\n\t", "; ").replace("\n", "; ")  # one line, as every binlens error
        if self.path and self.line:
            return f"{self.path}:{self.line}:{self.col}: {problem}" if self.col > 1 else \
                f"{self.path}:{self.line}: {problem}"
        return f"{self.path}: {problem}" if self.path else problem

    def __reduce__(self) -> tuple[type, tuple[str, str | None, int, int]]:  # type: ignore[override]
        return (type(self), (self.problem, self.path, self.line, self.col))


@dataclass(frozen=True)
class Require:
    path: str
    version: str
    indirect: bool = False
    line: int = 0


@dataclass(frozen=True)
class Replace:
    old_path: str
    old_version: str  # '' for every version
    new_path: str
    new_version: str  # '' for a directory
    line: int = 0

    @property
    def is_dir(self) -> bool:
        return self.new_version == ""


@dataclass(frozen=True)
class Retract:
    low: str
    high: str
    rationale: str
    line: int = 0


@dataclass(frozen=True)
class Directive:
    """A one-argument directive (go, toolchain, tool, ignore, use, godebug, exclude as path+version)."""

    value: str
    line: int = 0
    extra: str = ""


@dataclass
class ModFile:
    name: str
    module: str | None = None
    module_line: int = 0
    deprecated: str = ""
    go: str | None = None
    go_line: int = 0
    toolchain: str | None = None
    toolchain_line: int = 0
    godebug: list[Directive] = field(default_factory=list)  # value=key, extra=value
    require: list[Require] = field(default_factory=list)
    exclude: list[Require] = field(default_factory=list)
    replace: list[Replace] = field(default_factory=list)
    retract: list[Retract] = field(default_factory=list)
    tool: list[Directive] = field(default_factory=list)
    ignore: list[Directive] = field(default_factory=list)
    use: list[Directive] = field(default_factory=list)  # go.work only
    needs_fix: bool = False  # a version written in a form the go command rewrites (v1.2 for v1.2.0)
    keep_all: bool = False  # lax, but keep the replace/exclude/toolchain lines the go command ignores

    def line_of_require(self, path: str) -> int:
        for r in self.require:
            if r.path == path:
                return r.line
        return 0


# ---------------------------------------------------------------- lexing


@dataclass
class _Line:
    tokens: list[str]
    line: int
    before: list[str]  # comment lines just above
    suffix: list[str]  # a comment at the end of the line
    col: int = 1  # where its first token starts (1-based, in characters), as the go command counts


@dataclass
class _Block:
    verb: str
    line: int
    before: list[str]
    suffix: list[str]
    lines: list[_Line]


_SPECIAL = re.compile(r"[()\[\]{},\"`/]")
_TOKEN = re.compile(
    r"""[ \t\r]+|(//.*)|(/\*)|([()\[\]{},])|("(?:[^"\\\n]|\\.)*"|`[^`]*`)|(["`])"""
    r"""|((?:(?!//|/\*)[^ \t\r()\[\]{},"`])+)"""
)


def _tokens(text: str, name: str, lineno: int) -> tuple[list[str], str | None]:
    """The tokens of one line and its trailing comment (golang.org/x/mod/modfile's lexer, line by line)."""
    if not _SPECIAL.search(text):  # the common line: words and spaces
        out = text.split()
        if not text.isprintable() and any(not w.isprintable() for w in out):
            bad = next(c for w in out for c in w if not c.isprintable())
            raise ModFileError(f"unexpected input character {bad!r}", name, lineno)
        return out, None
    out = []
    for m in _TOKEN.finditer(text):
        comment, block, punct, quoted, open_quote, word = m.groups()
        if comment is not None:
            return out, comment
        if block is not None:
            raise ModFileError("mod files must use // comments, not /* */ comments", name, lineno)
        if open_quote is not None:
            raise ModFileError("unexpected newline in string", name, lineno)
        tok = punct or quoted or word
        if tok:
            if word and not word.isprintable():
                bad = next(c for c in word if not c.isprintable())
                raise ModFileError(f"unexpected input character {bad!r}", name, lineno)
            out.append(tok)
    return out, None


def _lex(data: bytes, name: str) -> list[_Line | _Block]:
    if len(data) > MAX_FILE:
        raise ModFileError(f"file too large ({len(data)} bytes, at most {MAX_FILE})", name)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ModFileError(f"invalid UTF-8 at byte {e.start}", name) from None
    if "\x00" in text:
        raise ModFileError("unexpected NUL byte", name)
    rows = text.split("\n")
    if len(rows) > MAX_LINES:
        raise ModFileError(f"too many lines ({len(rows)}, at most {MAX_LINES})", name)
    out: list[_Line | _Block] = []
    comments: list[str] = []
    block: _Block | None = None
    for lineno, row in enumerate(rows, 1):
        toks, comment = _tokens(row, name, lineno)
        if not toks:
            if comment is not None:
                comments.append(comment)
            else:
                comments = []  # a blank line ends a comment group
            continue
        suffix = [comment] if comment is not None else []
        if block is not None:
            if toks == [")"]:
                block = None
                comments = []
                continue
            if "(" in toks or ")" in toks:
                raise ModFileError("syntax error (unterminated block started at "
                                   f"{name}:{block.line}:{len(block.verb) + 2})", name, lineno)
            block.lines.append(_Line(toks, lineno, comments, suffix, len(row) - len(row.lstrip(" \t\r")) + 1))
            comments = []
            continue
        if len(toks) == 2 and toks[1] == "(" and toks[0] not in _PUNCT:
            block = _Block(toks[0], lineno, comments, suffix, [])
            out.append(block)
        elif len(toks) == 3 and toks[1:] == ["(", ")"]:
            out.append(_Block(toks[0], lineno, comments, suffix, []))
        else:
            if toks[0] in _PUNCT or "(" in toks or ")" in toks:
                raise ModFileError(f"syntax error near {toks[0] if toks[0] in _PUNCT else toks[-1]}", name, lineno)
            out.append(_Line(toks, lineno, comments, suffix, len(row) - len(row.lstrip(" \t\r")) + 1))
        comments = []
    if block is not None:
        raise ModFileError(f"syntax error (unterminated block started at {name}:{block.line}:"
                           f"{len(block.verb) + 2})", name, len(rows))
    return out


def _comment_text(before: list[str], suffix: list[str]) -> str:
    return "\n".join(c[2:].strip() for c in before + suffix if c.startswith("//"))


# ---------------------------------------------------------------- directives


def _string(tok: str, name: str, line: int) -> str:
    if tok and tok[0] in "\"`":
        # (imported here: a quoted token is rare, and the build-info reader imports the binary loaders)
        from analyzer.facts.go.buildinfo import GoInfoError, go_unquote

        try:
            return go_unquote(tok)
        except GoInfoError as e:
            raise ModFileError(f"invalid quoted string: {e}", name, line) from None
    return tok


@functools.lru_cache(maxsize=65536)
def _path_major(path: str) -> str:
    if path.startswith("gopkg.in/"):
        m = re.search(r"\.(v(?:0|[1-9][0-9]*))(-unstable)?$", path)
        return "." + m[1] + (m[2] or "") if m else ""
    m = re.search(r"/(v[2-9]|v[1-9][0-9]+)$", path)
    return "/" + m[1] if m else ""


@functools.lru_cache(maxsize=65536)
def check_path_major(version: str, path: str) -> str | None:
    """module.CheckPathMajor: the problem with `version` for a module `path`, or None."""
    pm = _path_major(path)
    if pm.startswith(".v"):
        pm = pm.removesuffix("-unstable")
    if version.startswith("v0.0.0-") and pm == ".v1":
        return None
    major = semver_major(version)
    if pm == "":
        if major in ("v0", "v1") or version.endswith("+incompatible"):
            return None
        want = "v0 or v1"
    else:
        if major == pm[1:]:
            return None
        want = pm[1:]
    return f'version "{version}" invalid: should be {want}, not {major}'


@functools.lru_cache(maxsize=65536)
def canonical_version(v: str) -> str:
    """module.CanonicalVersion: semver.Canonical keeping +incompatible."""
    c = semver_canonical(v)
    if c and v.endswith("+incompatible") and _parse_semver(v):
        return c + "+incompatible"
    return c


def _version(verb: str, path: str, tok: str, name: str, line: int, f: ModFile | None = None) -> str:
    t = _string(tok, name, line)
    cv = canonical_version(t)
    if not cv:
        where = f"{verb} {path}" if path else verb
        raise ModFileError(f'{where}: version "{t}" invalid: must be of the form v1.2.3', name, line)
    if f is not None and cv != t:
        f.needs_fix = True
    return cv


def is_directory_path(ns: str) -> bool:
    """modfile.IsDirectoryPath: a replacement with no version must be a directory."""
    return (ns in (".", "..") or ns.startswith(("./", "../", "/", ".\\", "..\\"))
            or (len(ns) >= 2 and ns[1] == ":" and ns[0].isalpha()))


def _replace(args: list[str], verb: str, name: str, line: int) -> Replace:
    arrow = 1 if len(args) >= 2 and args[1] == "=>" else 2
    if len(args) < arrow + 2 or len(args) > arrow + 3 or args[arrow] != "=>":
        raise ModFileError(f"usage: {verb} module/path [v1.2.3] => other/module v1.4\n"
                           f"\t or {verb} module/path [v1.2.3] => ../local/directory", name, line)
    old = _string(args[0], name, line)
    v = ""
    if arrow == 2:
        v = _version(verb, old, args[1], name, line)
        if problem := check_path_major(v, old):
            raise ModFileError(f"{verb} {old}: {problem}", name, line)
    ns = _string(args[arrow + 1], name, line)
    nv = ""
    if len(args) == arrow + 2:
        if not is_directory_path(ns):
            if "@" in ns:
                raise ModFileError("replacement module must match format 'path version', not 'path@version'",
                                   name, line)
            raise ModFileError("replacement module without version must be directory path "
                               "(rooted or starting with . or ..)", name, line)
        if "\\" in ns:
            raise ModFileError("replacement directory appears to be Windows path (on a non-windows system)",
                               name, line)
    else:
        nv = _version(verb, ns, args[arrow + 2], name, line)
        if is_directory_path(ns):
            raise ModFileError(f"replacement module directory path {ns!r} cannot have version", name, line)
    return Replace(old, v, ns, nv, line)


def _retract(args: list[str], name: str, line: int) -> tuple[str, str, list[str]]:
    if not args or args[0] == "(":
        raise ModFileError("expected '[' or version", name, line)
    if args[0] != "[":
        v = _version("retract", "", args[0], name, line)
        return v, v, args[1:]
    if len(args) < 2:
        raise ModFileError("expected version after '['", name, line)
    low = _version("retract", "", args[1], name, line)
    if len(args) < 3 or args[2] != ",":
        raise ModFileError("expected ',' after version", name, line)
    if len(args) < 4:
        raise ModFileError("expected version after ','", name, line)
    high = _version("retract", "", args[3], name, line)
    if len(args) < 5 or args[4] != "]":
        raise ModFileError("expected ']' after version", name, line)
    return low, high, args[5:]


_GOMOD_VERBS = {"module", "go", "toolchain", "godebug", "require", "exclude", "replace", "retract", "tool", "ignore"}
_GOWORK_VERBS = {"go", "toolchain", "godebug", "use", "replace"}


def _add(f: ModFile, verb: str, args: list[str], ln: _Line, block: _Block | None, strict: bool, work: bool) -> None:
    name, line = f.name, ln.line
    if not strict and verb not in ("go", "module", "retract", "require", "ignore"):
        if not (f.keep_all and verb in ("replace", "exclude", "toolchain")):
            return
        try:
            _add(f, verb, args, ln, block, True, work)
        except ModFileError:
            pass  # the go command never reads these in a dependency: a bad one is not an error there
        return
    if verb not in (_GOWORK_VERBS if work else _GOMOD_VERBS):
        raise ModFileError(f"unknown directive: {verb}", name, line)

    def err(msg: str) -> ModFileError:
        return ModFileError(msg, name, line)

    if verb == "go":
        if f.go is not None:
            raise err("repeated go statement")
        if len(args) != 1:
            raise err("go directive expects exactly one argument")
        v = args[0]
        if not _GO_VERSION.match(v):
            m = None if strict else _LAX_GO_VERSION.match(v)
            if not m:
                raise err(f"invalid go version '{v}': must match format 1.23.0")
            v = m[1]
        f.go, f.go_line = v, line
    elif verb == "toolchain":
        if f.toolchain is not None:
            raise err("repeated toolchain statement")
        if len(args) != 1:
            raise err("toolchain directive expects exactly one argument")
        if not _TOOLCHAIN.match(args[0]):
            raise err(f"invalid toolchain version '{args[0]}': must match format go1.23.0 or default")
        f.toolchain, f.toolchain_line = args[0], line
    elif verb == "module":
        if f.module is not None:
            raise err("repeated module statement")
        text = _comment_text(ln.before, ln.suffix)
        if block is not None and not ln.before and not ln.suffix:
            text = _comment_text(block.before, block.suffix)
        m = _DEPRECATED.search(text)
        f.deprecated = m[1] if m else ""
        if len(args) != 1:
            raise err("usage: module module/path")
        f.module, f.module_line = _string(args[0], name, line), line
    elif verb == "godebug":
        if len(args) != 1 or any(c in args[0] for c in "\"`',") or "=" not in args[0]:
            raise err("usage: godebug key=value")
        k, _, v = args[0].partition("=")
        f.godebug.append(Directive(k, line, v))
    elif verb in ("require", "exclude"):
        if len(args) != 2:
            raise err(f"usage: {verb} module/path v1.2.3")
        path = _string(args[0], name, line)
        v = _version(verb, path, args[1], name, line, f)
        if problem := check_path_major(v, path):
            raise err(f"{verb} {path}: {problem}")
        if verb == "require":
            words = ln.suffix[0][2:].split() if ln.suffix else []
            indirect = words == ["indirect"] or (len(words) > 1 and words[0] == "indirect;")
            f.require.append(Require(path, v, indirect, line))
        else:
            f.exclude.append(Require(path, v, False, line))
    elif verb == "replace":
        f.replace.append(_replace(args, verb, name, line))
    elif verb == "retract":
        text = _comment_text(ln.before, ln.suffix)
        if block is not None and not ln.before and not ln.suffix:
            text = _comment_text(block.before, block.suffix)
        try:
            low, high, rest = _retract(args, name, line)
        except ModFileError:
            if strict:
                raise
            return
        if rest and strict:
            raise err(f"unexpected token after version: {rest[0]!r}")
        f.retract.append(Retract(low, high, text, line))
    elif verb in ("tool", "ignore", "use"):
        if len(args) != 1:
            if verb == "use":
                raise err("usage: use local/dir")
            raise err(f"{verb} directive expects exactly one argument")
        target = f.use if verb == "use" else (f.tool if verb == "tool" else f.ignore)
        target.append(Directive(_string(args[0], name, line), line))


def _add_at(f: ModFile, verb: str, args: list[str], ln: _Line, block: _Block | None, strict: bool,
            work: bool) -> None:
    try:
        _add(f, verb, args, ln, block, strict, work)
    except ModFileError as e:
        if e.line == ln.line and not e.col:
            e.col = ln.col
        raise


def _parse(data: bytes, name: str, strict: bool, work: bool, keep_all: bool = False) -> ModFile:
    f = ModFile(name, keep_all=keep_all)
    for item in _lex(data, name):
        if isinstance(item, _Block):
            if item.verb not in (_GOWORK_VERBS if work else _GOMOD_VERBS) and strict:
                raise ModFileError(f"unknown block type: {item.verb}", name, item.line)
            for ln in item.lines:
                _add_at(f, item.verb, ln.tokens, ln, item, strict, work)
        else:
            _add_at(f, item.tokens[0], item.tokens[1:], item, None, strict, work)
    return f


def parse_gomod(data: bytes, name: str, strict: bool = True, keep_all: bool = False) -> ModFile:
    """A go.mod: strict for a main module (unknown directives are errors), lax for a dependency's (with
    keep_all, the directives the go command ignores there are kept, for the report)."""
    return _parse(data, name, strict, work=False, keep_all=keep_all)


def parse_gowork(data: bytes, name: str) -> ModFile:
    f = _parse(data, name, True, work=True)
    return f


# ---------------------------------------------------------------- go.sum, vendor/modules.txt, go mod graph


def parse_gosum(data: bytes, name: str) -> dict[tuple[str, str], str]:
    """{(path, version or version/go.mod): h1:...}; a malformed line is an error, as `go` says."""
    if len(data) > MAX_FILE * 4:
        raise ModFileError(f"file too large ({len(data)} bytes)", name)
    out: dict[tuple[str, str], str] = {}
    for lineno, row in enumerate(data.decode("utf-8", "replace").split("\n"), 1):
        f = row.split()
        if not f:
            continue
        if len(f) != 3:
            raise ModFileError(f"malformed go.sum:\n{name}:{lineno}: wrong number of fields {len(f)}", name)
        out.setdefault((f[0], f[1]), f[2])
    return out


def parse_vendor(data: bytes, name: str) -> tuple[list[tuple[str, str, str, str]], set[str]]:
    """vendor/modules.txt: [(path, version, replace path, replace version)] and the explicit paths."""
    mods: list[tuple[str, str, str, str]] = []
    explicit: set[str] = set()
    for lineno, row in enumerate(data.decode("utf-8", "replace").split("\n"), 1):
        if row.startswith("# "):
            f = row[2:].split()
            if len(f) >= 2 and f[1].startswith("v") and "=>" not in f[:1]:
                rp = rv = ""
                if len(f) >= 4 and f[2] == "=>":
                    rp, rv = f[3], f[4] if len(f) > 4 else ""
                mods.append((f[0], f[1], rp, rv))
            elif len(f) >= 3 and f[1] == "=>":
                mods.append((f[0], "", f[2], f[3] if len(f) > 3 else ""))
            elif f and not f[0].startswith("v"):
                if len(f) < 2:
                    raise ModFileError(f"malformed module line: {row!r}", name, lineno)
        elif row.startswith("## "):
            if mods and "explicit" in row[3:].replace(";", " ").split():
                explicit.add(mods[-1][0])
    return mods, explicit


def node(text: str) -> tuple[str, str]:
    path, _, version = text.partition("@")
    return path, version


def parse_graph(data: bytes, name: str) -> list[tuple[tuple[str, str], tuple[str, str]]]:
    """`go mod graph` output: [((from path, version), (to path, version))]."""
    edges = []
    for lineno, row in enumerate(data.decode("utf-8", "replace").split("\n"), 1):
        f = row.split()
        if not f:
            continue
        if len(f) != 2:
            raise ModFileError(f"expected two fields (from to), found {len(f)}", name, lineno)
        edges.append((node(f[0]), node(f[1])))
    return edges


_FAST_REFUSE = re.compile(rb"[\"`\[\]{},\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\xff]|/\*")


def parse_lax_fast(data: bytes) -> tuple[str | None, str | None, list[tuple[str, str]]] | None:
    """(module, go, requirements) of a dependency's go.mod in the common plain form (ASCII, no quotes, no
    brackets, canonical versions, no retract/ignore/Deprecated), read with str.split: what the graph needs.
    None when anything is unusual: the caller then reads it with parse_gomod(strict=False), which gives the
    same answer or the go command's error."""
    if len(data) > MAX_FILE or _FAST_REFUSE.search(data) or b"Deprecated" in data:
        return None
    module = go = None
    reqs: list[tuple[str, str]] = []
    block: str | None = None
    for row in data.decode("ascii").split("\n"):
        toks = (row.split("//", 1)[0] if "/" in row else row).split()
        if not toks:
            continue
        if block is not None:
            if toks[0] == ")":
                if len(toks) != 1:
                    return None
                block = None
                continue
            verb, args = block, toks
        elif len(toks) == 2 and toks[1] == "(":
            block = toks[0]
            continue
        else:
            verb, args = toks[0], toks[1:]
        if verb == "require":
            if len(args) != 2:
                return None
            p, v = args
            if canonical_version(v) != v or check_path_major(v, p) or "(" in p or ")" in p:
                return None
            reqs.append((p, v))
        elif "(" in verb or ")" in verb or "(" in args or ")" in args:
            return None
        elif verb == "module":
            if module is not None or len(args) != 1:
                return None
            module = args[0]
        elif verb == "go":
            if go is not None or len(args) != 1 or not _GO_VERSION.match(args[0]):
                return None
            go = args[0]
        elif verb in ("ignore", "retract"):
            return None
    if block is not None:
        return None
    return module, go, reqs


_BAD_WINDOWS = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}


def check_import_path(path: str) -> str | None:
    """module.CheckImportPath: the problem with a main module's path, or None (the go command refuses to load
    a main module whose path fails it: `malformed module path "x": ...`)."""
    if not path:
        return "empty string"
    if path[0] == "-":
        return "leading dash"
    if "//" in path:
        return "double slash"
    if path.endswith("/"):
        return "trailing slash"
    for elem in path.split("/"):
        if elem == "":
            return "empty path element"
        if elem.count(".") == len(elem):
            return f"invalid path element {go_quote(elem)}"
        if elem.endswith("."):
            return "trailing dot in path element"
        for c in elem:
            if not (c.isascii() and (c.isalnum() or c in "-._~+")):
                return f"invalid char {go_quote(c, rune=True)}"
        short = elem.split(".", 1)[0]
        if short.upper() in _BAD_WINDOWS:
            return f"{go_quote(short)} disallowed as path element component on Windows"
        tilde = short.rfind("~")
        if 0 <= tilde < len(short) - 1 and short[tilde + 1:].isdigit():
            return "trailing tilde and digits in path element"
    return None


def go_quote(s: str, rune: bool = False) -> str:
    """strconv.Quote (QuoteRune with rune=True) for the printable text these messages carry."""
    import json

    body = json.dumps(s, ensure_ascii=False)[1:-1]
    return f"'{body}'" if rune else f'"{body}"'


@functools.lru_cache(maxsize=1)
def _godebugs() -> dict[str, object]:
    import json

    from analyzer import data_text

    return json.loads(data_text("data/godebugs.json"))


def check_godebug(key: str, value: str, local_go: str) -> str | None:
    """modload.CheckGodebug for the go command `local_go` (its release's table, analyzer/data/godebugs.json);
    None when the setting is accepted or when the table is not that release's (nothing is claimed then)."""
    from analyzer.facts.gomod.versions import go_compare, go_lang, go_valid

    for ch, what in ((" \t", "space"), (",", "comma")):
        if any(c in key for c in ch):
            return f"key contains {what}"
        if any(c in value for c in ch):
            return f"value contains {what}"
    if key == "default":
        if not value.startswith("go") or not go_valid(value[2:]):
            return "value for default= must be goVERSION"
        if go_compare(value[2:], local_go) > 0:
            return f"default={value} too new (toolchain is go{local_go})"
        return None
    table = _godebugs()
    if go_lang(str(table["go"])) != go_lang(local_go):
        return None
    if key in table["known"]:  # type: ignore[operator]
        return None
    for info in table["removed"]:  # type: ignore[attr-defined]
        if info["name"] == key:
            if value in info["old"]:
                return (f"removed GODEBUG {go_quote(key)} set to old value {go_quote(value)} "
                        f"(https://go.dev/doc/godebug#go-1{info['removed']})")
            return None
    return f"unknown godebug {go_quote(key)}"
