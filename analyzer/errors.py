"""The one error type binlens raises for bad input or bad usage, and how names read from files become text."""

import re


class AnalyzerError(Exception):
    """An input or usage problem, reported to the user as one line and exit code 2.

    The message names the file (when there is one) and the problem; it never
    carries a traceback.
    """

    def __init__(self, message: str, path: str | None = None) -> None:
        self.path = path
        self.problem = message = brief(message)
        super().__init__(f"{path}: {message}" if path else message)

    def __reduce__(self) -> tuple[type, tuple[str, str | None]]:
        # keep (problem, path) apart across process boundaries
        return (type(self), (self.problem, self.path))


PROBLEM_MAX = 1000  # characters of a problem said: a message quoting what a hostile file holds stays one line


def brief(message: str) -> str:
    """`message` as one line (its lines joined by a space) of at most PROBLEM_MAX characters (what follows is left
    out and said to be)."""
    if len(message) <= PROBLEM_MAX and "\n" not in message:
        return message
    line = " ".join(part.strip() for part in message.split("\n"))  # (the go command's hints: "\n\tgo work use")
    return line if len(line) <= PROBLEM_MAX else f"{line[:PROBLEM_MAX]}... ({len(line) - PROBLEM_MAX} more characters)"


def require(cond: bool, path: str, problem: str) -> None:
    """Raise AnalyzerError(problem, path) unless `cond`: the structural checks' one-liner."""
    if not cond:
        raise AnalyzerError(problem, path)


NAME_ERRORS = "backslashreplace"  # bytes that are not UTF-8 in a name read from a file become the text \xNN
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def name_text(raw: bytes) -> str:
    r"""A name read from a file (a section, library, symbol, path) as text: UTF-8, with every byte that is not
    UTF-8 written as the four characters \xNN. So every fact is valid text for the rule engine, JSON and every
    output, and such a byte stays visible; a real backslash in a name reads the same (documented). Control
    characters are written the same way: no name can move a terminal's cursor or break an XML report."""
    text = raw.decode("utf-8", NAME_ERRORS)
    return _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}", text) if _CONTROL.search(text) else text


def path_text(path: str) -> str:
    r"""A file's name as reports show it: the name itself, or, when it holds bytes that are not UTF-8 (Python
    keeps them as lone surrogates) or control characters, name_text's form (\xNN for each). The file is still
    read by its real name; only what is shown, printed and handed to the rules is text."""
    if path.isprintable():
        try:
            path.encode("utf-8")
            return path
        except UnicodeEncodeError:
            pass
    return name_text(path.encode("utf-8", "surrogateescape"))


def texts(value: object) -> object:
    """`value` (facts: dicts, lists, tuples, strings, numbers) with every string that holds a file name's bytes that
    are not UTF-8, or control characters, written as path_text writes it: the facts that name files on the disk
    (a sysroot's libraries, the paths searched) are text for the rule engine, JSON and every output."""
    if isinstance(value, str):
        return value if value.isprintable() else path_text(value)
    if isinstance(value, dict):
        return {k: texts(v) for k, v in value.items()}
    if isinstance(value, list):
        return [texts(v) for v in value]
    if isinstance(value, tuple):
        return tuple(texts(v) for v in value)
    return value
