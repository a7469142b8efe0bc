"""Private folders and files on a real filesystem (modes are checked, not assumed)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from rollkeeper.host.permissions import (
    ensure_private_dir,
    make_private,
    write_private_file,
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_ensure_private_dir_creates_missing_parents_private(tmp_path: Path) -> None:
    """ensure_private_dir creates each missing folder 0700 and leaves the mode of an existing parent
    alone."""
    tmp_path.chmod(0o755)
    target = tmp_path / "state" / "rollkeeper" / "pairing"

    assert ensure_private_dir(target) == target

    assert mode(tmp_path) == 0o755  # an existing parent is not ours to change
    for folder in (tmp_path / "state", tmp_path / "state" / "rollkeeper", target):
        assert mode(folder) == 0o700


def test_ensure_private_dir_tightens_an_existing_folder(tmp_path: Path) -> None:
    """ensure_private_dir tightens an existing 0755 folder to 0700."""
    target = tmp_path / "state"
    target.mkdir(mode=0o755)
    target.chmod(0o755)

    ensure_private_dir(target)

    assert mode(target) == 0o700


def test_ensure_private_dir_refuses_a_file_in_the_way(tmp_path: Path) -> None:
    """ensure_private_dir raises NotADirectoryError when a file stands where a folder, or one of its
    parents, should be."""
    (tmp_path / "state").write_text("not a folder")

    with pytest.raises(NotADirectoryError):
        ensure_private_dir(tmp_path / "state")
    with pytest.raises(NotADirectoryError):
        ensure_private_dir(tmp_path / "state" / "below")


def test_write_private_file_is_0600_whatever_the_umask(tmp_path: Path) -> None:
    """write_private_file writes 0600 even under umask 000, and leaves no temporary file behind."""
    target = tmp_path / "pair.plist"
    previous = os.umask(0o000)
    try:
        write_private_file(target, b"secret")
    finally:
        os.umask(previous)

    assert target.read_bytes() == b"secret"
    assert mode(target) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["pair.plist"]  # no temporary left behind


def test_write_private_file_replaces_and_tightens(tmp_path: Path) -> None:
    """write_private_file replaces an existing 0644 file's content and tightens it to 0600."""
    target = tmp_path / "pair.plist"
    target.write_bytes(b"old")
    target.chmod(0o644)

    write_private_file(target, b"new")

    assert target.read_bytes() == b"new"
    assert mode(target) == 0o600


def test_make_private(tmp_path: Path) -> None:
    """make_private sets a file to 0600 and a folder to 0700."""
    database = tmp_path / "state.db"
    database.write_bytes(b"")
    database.chmod(0o644)
    folder = tmp_path / "pairing"
    folder.mkdir()
    folder.chmod(0o755)

    make_private(database)
    make_private(folder)

    assert mode(database) == 0o600
    assert mode(folder) == 0o700


def test_private_umask_covers_files_made_by_anyone_in_the_process(tmp_path: Path) -> None:
    """After set_private_umask, files created by any library in the process, SQLite's included, are
    0600."""
    # In a child, so that the test process keeps its own umask.
    code = (
        "import sys, sqlite3\n"
        "from rollkeeper.host.permissions import set_private_umask\n"
        "set_private_umask()\n"
        "sqlite3.connect(sys.argv[1]).execute('create table t (x)')\n"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "state.db")], check=True, timeout=60)

    assert mode(tmp_path / "state.db") == 0o600
