"""binlens: static analysis of build artifacts (ELF, PE, Mach-O)."""

__version__ = "0.1.0"  # the one place the version is written; pyproject reads it from here


def data_text(name: str) -> str:
    """A data file shipped in the package (`data/targets.json`), as text. Found beside this module, as
    importlib.resources would find it in an installed or editable package, without that module's imports."""
    import os

    with open(os.path.join(os.path.dirname(__file__), name), encoding="utf-8") as f:
        return f.read()
