"""binlens: static analysis of build artifacts (ELF, PE, Mach-O)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("binlens")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
