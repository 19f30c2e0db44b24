"""The wheel ships the rule catalogue and the data tables: install it elsewhere and use them."""

from __future__ import annotations

import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

from conftest import ROOT


def test_wheel_ships_rules_and_data(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    # build from a copy: setuptools leaves build/ and *.egg-info in the tree it builds
    src = tmp_path / "src"
    skip = shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info", "__pycache__", ".*_cache")
    shutil.copytree(ROOT, src, ignore=skip)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(src)],
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("binlens-*.whl")
    import zipfile

    assert "analyzer/rules/catalogue.json" in zipfile.ZipFile(wheel).namelist()  # (the catalogue, parsed)
    env_dir = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    py = env_dir / "bin" / "python"
    target = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # the wheel's files, unpacked as an installer would (no network, no pip in the new venv)
    subprocess.run([sys.executable, "-m", "zipfile", "-e", str(wheel), target], check=True)
    # the dependencies from this environment, as a plain path: its .pth files (an editable
    # install of binlens among them) are not processed, so `analyzer` comes from the wheel
    deps = sysconfig.get_paths()["purelib"]
    Path(target, "deps.pth").write_text("\n".join([deps, *site.getsitepackages()]) + "\n")
    run = dict(cwd=tmp_path, capture_output=True, text=True)
    where = subprocess.run([str(py), "-c", "import analyzer; print(analyzer.__file__)"], **run)
    assert where.stdout.startswith(target), where.stdout + where.stderr
    rules = subprocess.run([str(py), "-m", "analyzer", "rules"], **run)
    assert rules.returncode == 0, rules.stderr
    assert "SYM001" in rules.stdout and "LNK004" in rules.stdout
    targets = subprocess.run([str(py), "-m", "analyzer", "targets"], **run)
    assert "rhel-8" in targets.stdout
    scan = subprocess.run([str(py), "-m", "analyzer", "scan", "--target", "debian-12", "/bin/ls"], **run)
    assert scan.returncode in (0, 1), scan.stderr
    assert "verdict" in scan.stdout
