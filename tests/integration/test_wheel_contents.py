"""The wheel built from the source tree installs the package ``rollkeeper`` and nothing else.

The source folder is ``daemon/``, but ``daemon`` is also the import name of python-daemon: the
wheel must not provide a top-level ``daemon``. The wheel is built the way a user's
``pip install .`` builds it (pip, build isolation, the setuptools backend of pyproject.toml)
from a copy of the working tree, so that the checkout gets no ``build/`` folder and a stale
``build/`` left in it (setuptools reuses one) cannot put old modules into the wheel.
"""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPOSITORY = Path(__file__).resolve().parents[2]
#: What a build of the package does not read: version control, venvs, caches, build output.
NOT_SOURCE = shutil.ignore_patterns(
    ".git",
    ".venv",
    ".venvs",
    "__pycache__",
    "*.egg-info",
    "build",
    "dist",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
    "results",
)
#: Ceiling for the build (setuptools may be downloaded into the isolated build environment).
BUILD_TIMEOUT_SECONDS = 600


def _build_wheel(tmp_path: Path) -> Path:
    source = tmp_path / "source"
    shutil.copytree(REPOSITORY, source, ignore=NOT_SOURCE)
    wheels = tmp_path / "wheels"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(wheels), str(source)],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_SECONDS,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    [wheel] = wheels.glob("rollkeeper-*.whl")
    return wheel


def test_the_wheel_holds_only_rollkeeper_with_its_main_module_and_console_script(
    tmp_path: Path,
) -> None:
    """Every module of the wheel is under rollkeeper/ (no top-level daemon), it has
    rollkeeper/__main__.py (``python -m rollkeeper``), and its one console script is
    ``rollkeeper = rollkeeper.cli:main``."""
    with zipfile.ZipFile(_build_wheel(tmp_path)) as wheel:
        names = wheel.namelist()
        [dist_info] = {name.split("/", 1)[0] for name in names if ".dist-info/" in name}
        entry_points = wheel.read(f"{dist_info}/entry_points.txt").decode("utf-8")
        top_level = (
            wheel.read(f"{dist_info}/top_level.txt").decode("utf-8").split()
            if f"{dist_info}/top_level.txt" in names
            else None
        )

    modules = [name for name in names if name.endswith(".py")]
    assert "rollkeeper/__init__.py" in modules
    assert "rollkeeper/__main__.py" in modules
    assert "rollkeeper/cli.py" in modules
    assert [name for name in modules if not name.startswith("rollkeeper/")] == []
    top_levels = {name.split("/", 1)[0] for name in names}
    assert "daemon" not in top_levels
    assert top_levels - {dist_info} == {"rollkeeper"}
    if top_level is not None:
        assert top_level == ["rollkeeper"]

    parser = configparser.ConfigParser()
    parser.read_string(entry_points)
    assert dict(parser["console_scripts"]) == {"rollkeeper": "rollkeeper.cli:main"}
