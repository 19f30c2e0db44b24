"""Python extension modules: the C API is the host interpreter's, every reference binds when the module is
imported (Python dlopens with RTLD_NOW), and the predicted error is the one Python's import prints. The oracle
is the interpreter running these tests, importing the same files."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

from conftest import run_binlens

from analyzer.facts import loader


def _import_error(directory: Path, module: str) -> str | None:
    """What `import module` from `directory` raises as ImportError (None when the import gets past dlopen)."""
    code = (f"import sys; sys.path.insert(0, {str(directory)!r})\n"
            f"try:\n import {module}\nexcept ImportError as e:\n print(e)\nexcept Exception:\n pass")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    return out.stdout.strip() or None


def test_undefined_symbol_of_an_extension_is_the_import_error(fixtures_built: dict[str, Path]) -> None:
    path = fixtures_built["pyext_missing.so"]
    expected = _import_error(path.parent, "pyext_missing")
    assert expected and "undefined symbol" in expected
    deps = loader.analyze_path(str(path), loader.Options())
    assert deps["python_module"] == "pyext_missing"
    assert deps["loader_errors"] == [expected]
    assert [b["symbol"] for b in deps["undefined"]] == ["binlens_missing_function"]  # not the C API


def test_a_missing_library_of_an_extension_is_the_import_error(fixtures_built: dict[str, Path]) -> None:
    """An extension module needing a library nothing finds: Python's ImportError is dlopen's own text (no
    program's "error while loading shared libraries" around it), and binlens predicts that text."""
    path = fixtures_built["pyext_ok_needs_absent.so"]
    expected = _import_error(path.parent, "pyext_ok_needs_absent")
    assert expected and "libbinlens_absent.so.1" in expected
    deps = loader.analyze_path(str(path), loader.Options())
    assert deps["python_module"] == "pyext_ok" and deps["loader_errors"] == [expected]


def test_c_api_is_left_to_the_interpreter(fixtures_built: dict[str, Path]) -> None:
    path = fixtures_built["pyext_ok.so"]
    assert _import_error(path.parent, "pyext_ok") is None  # dlopen succeeds
    deps = loader.analyze_path(str(path), loader.Options())
    assert deps["loader_errors"] == [] and deps["undefined"] == []
    assert {b["symbol"]: b["binds_to"] for b in deps["bindings"]}["PyLong_FromLong"] == loader.linkmap.PYTHON_HOST
    report = json.loads(run_binlens("deps", "--format", "json", str(path)).stdout)
    assert not [f for f in report["artifacts"][0]["findings"] if f["rule"] == "DEP003"]


def test_the_interpreters_libm_is_left_to_it(fixtures_built: dict[str, Path]) -> None:
    """An extension module calling libm's log2 without linking libm (brotli's _brotli and pandas' timedeltas
    module as PyPI ships them): every CPython on Linux links libm, which is so in the global scope of what it
    imports, and the import gets past dlopen (this interpreter importing it is the oracle). binlens binds log2
    to the interpreter; before, it predicted `undefined symbol: log2` and DEP003 (fails at import). A function
    the interpreter's libraries do not define is still the import error (pyext_missing, above)."""
    path = fixtures_built["pyext_libm.so"]
    dynamic = subprocess.run(["readelf", "-dW", "--dyn-syms", str(path)], capture_output=True, text=True).stdout
    assert "libm.so" not in dynamic and re.search(r"UND log2$", dynamic, re.M)  # (the case: log2, no libm)
    assert _import_error(path.parent, "pyext_libm") is None
    deps = loader.analyze_path(str(path), loader.Options())
    assert deps["loader_errors"] == [] and deps["undefined"] == []
    assert {b["symbol"]: b["binds_to"] for b in deps["bindings"]}["log2"] == loader.linkmap.PYTHON_HOST
    report = json.loads(run_binlens("deps", "--format", "json", str(path)).stdout)
    assert not [f for f in report["artifacts"][0]["findings"] if f["rule"] == "DEP003"]


def test_host_program_binds_the_c_api(fixtures_built: dict[str, Path]) -> None:
    """--host python3: the C API binds to the object that defines it in the interpreter's own link map
    (libpython, as the real loader lists it, or the executable itself when Python is linked statically)."""
    python = str(Path(sys.executable).resolve())
    listed = subprocess.run(["/lib64/ld-linux-x86-64.so.2", "--list", python], capture_output=True, text=True).stdout
    m = re.search(r"libpython\S* => (\S+)", listed)
    definer = str(Path(m[1]).resolve()) if m else python
    nm = subprocess.run(["nm", "-D", "--defined-only", definer], capture_output=True, text=True).stdout
    assert re.search(r" T PyLong_FromLong$", nm, re.M)
    deps = loader.analyze_path(str(fixtures_built["pyext_ok.so"]), loader.Options(host=python))
    bound = {b["symbol"]: b["binds_to"] for b in deps["bindings"]}["PyLong_FromLong"]
    assert bound is not None and str(Path(bound).resolve()) == definer


def test_a_real_wheel_imports_where_binlens_says_it_loads(fixtures_built: dict[str, Path], tmp_path: Path) -> None:
    """numpy's extensions, unpacked: Python imports numpy from there, and binlens predicts no loader error and
    no undefined symbol for any of them (their OpenBLAS comes from numpy.libs through $ORIGIN)."""
    with zipfile.ZipFile(fixtures_built["numpy-2.2.6-cp311-cp311-manylinux_2_17_x86_64.whl"]) as z:
        z.extractall(tmp_path)
    code = f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import numpy; print(numpy.__version__)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "2.2.6"
    extensions = [p for p in (tmp_path / "numpy").rglob("*.so")]
    assert len(extensions) > 10
    sysroot = loader.Sysroot("/")
    for ext in extensions:
        deps = loader.analyze_path(str(ext), loader.Options(), sysroot)
        assert deps["python_module"] and deps["loader_errors"] == [] and deps["undefined"] == [], ext
