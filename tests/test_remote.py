"""Inputs named by URL, read through fsspec: a folder served over HTTP by Python's http.server and the same
folder as a file:// URL scan exactly as the folder does (the report names the URLs); a container behind a URL
is unpacked like a local one; a missing URL, an unknown protocol and a protocol whose package is missing are
one-line errors."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import run_binlens


@pytest.fixture()
def served(binaries_built: dict[str, Path], fixtures_built: dict[str, Path],
           tmp_path: Path) -> Iterator[tuple[str, Path]]:  # fmt: skip
    """(base URL, folder): three programs and Debian's coreutils package, served by `python -m http.server`."""
    d = tmp_path / "dist"
    d.mkdir()
    for name in ("c-rawsys", "go-linux-amd64-sw", "c-x86_64-gnu.2.34"):
        shutil.copy(binaries_built[name], d / name)
    shutil.copy(fixtures_built["coreutils.deb"], d / "coreutils.deb")
    server = subprocess.Popen([sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1"], cwd=d,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)  # fmt: skip
    assert server.stdout is not None
    port = re.search(r"port (\d+)", server.stdout.readline())[1]  # type: ignore[index]
    try:
        yield f"http://127.0.0.1:{port}/", d
    finally:
        server.kill()
        server.wait()


def test_a_served_folder_scans_as_the_folder(served: tuple[str, Path]) -> None:
    base, d = served
    local = run_binlens("scan", str(d) + "/", "--format", "json", "--no-cache")
    for url in (base, d.as_uri() + "/"):
        remote = run_binlens("scan", url, "--format", "json", "--no-cache")
        assert remote.returncode == local.returncode, remote.stderr
        assert remote.stdout.replace(url, str(d) + "/") == local.stdout
        assert f'"path":"{url}coreutils.deb!bin/ls"' in remote.stdout  # members named under the URL


def test_one_url_and_its_errors(served: tuple[str, Path]) -> None:
    base, d = served
    one = run_binlens("scan", base + "c-rawsys", "--format", "json", "--no-cache")
    assert one.returncode == 0 and one.stdout.replace(base, str(d) + "/") == run_binlens(
        "scan", str(d / "c-rawsys"), "--format", "json", "--no-cache").stdout  # fmt: skip
    for url, problem in ((base + "missing", "no such file"), ("s3://bucket/app", "Install s3fs"),
                         ("nosuchproto://x/y", "cannot read this URL")):  # fmt: skip
        bad = run_binlens("scan", url)
        assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
        assert url in bad.stderr and problem in bad.stderr


def test_a_member_named_by_url(served: tuple[str, Path]) -> None:
    """`URL!member`, as a scan of the URL names the member: that member alone, its entry the local member's; a
    name the package has no binary of is one line, exit 2."""
    base, d = served
    url, local = base + "coreutils.deb!bin/ls", str(d / "coreutils.deb") + "!bin/ls"
    remote = run_binlens("scan", url, "--format", "json", "--no-cache")
    assert remote.returncode == 0, remote.stderr
    assert remote.stdout.replace(url, local) == run_binlens("scan", local, "--format", "json", "--no-cache").stdout
    assert remote.stdout.count('"path":') == 1
    bad = run_binlens("scan", base + "coreutils.deb!bin/nothing")
    assert bad.returncode == 2 and bad.stderr == (f"binlens: {base}coreutils.deb!bin/nothing: no binary or container "
                                                  f"of that name in {base}coreutils.deb\n"), bad.stderr


def test_urls_on_a_dask_cluster(served: tuple[str, Path], cluster: tuple[str, list]) -> None:
    """The workers of a real cluster fetch what they analyse (the URL is the task); the report equals the local
    scan of the folder, byte for byte once the names are mapped."""
    base, d = served
    address, _ = cluster
    remote = run_binlens("scan", base, "--format", "json", "--no-cache", "--dask", address)
    local = run_binlens("scan", str(d) + "/", "--format", "json", "--no-cache")
    assert remote.returncode == local.returncode, remote.stderr[-2000:]
    assert remote.stdout.replace(base, str(d) + "/") == local.stdout
