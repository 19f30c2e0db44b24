"""binlens: static analysis of build artifacts (ELF, PE, Mach-O)."""

__version__ = "0.1.0"  # the one place the version is written; pyproject reads it from here
