"""The one error type binlens raises for bad input or bad usage."""


class AnalyzerError(Exception):
    """An input or usage problem, reported to the user as one line and exit code 2.

    The message names the file (when there is one) and the problem; it never
    carries a traceback.
    """

    def __init__(self, message: str, path: str | None = None) -> None:
        self.path = path
        self.problem = message
        super().__init__(f"{path}: {message}" if path else message)

    def __reduce__(self) -> tuple[type, tuple[str, str | None]]:
        # keep (problem, path) apart across process boundaries
        return (type(self), (self.problem, self.path))


def require(cond: bool, path: str, problem: str) -> None:
    """Raise AnalyzerError(problem, path) unless `cond`: the structural checks' one-liner."""
    if not cond:
        raise AnalyzerError(problem, path)
