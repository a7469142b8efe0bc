"""The power-cut filesystem keeps exactly what was synced: its model, held on a real mount.

Each test writes through a real FUSE mount (:class:`PowerCutDisk`), cuts the power, mounts
again and looks at what is left. Outside CI a machine without FUSE skips these with the reason;
in CI they fail instead (see :func:`require_fuse`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.harness import wait_until
from tests.reliability.power_cut import FSYNC_REMOVED_SHIM
from tests.reliability.power_cut_disk import (
    PowerCutDisk,
    is_mounted,
    require_fuse,
    sync_folder,
)


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[PowerCutDisk]:
    """A mounted power-cut disk in tmp_path (unmounted at the end, whatever happened)."""
    require_fuse()
    with PowerCutDisk(tmp_path) as mounted:
        yield mounted
    assert not is_mounted(mounted.mount_point)


def write_synced(path: Path, data: bytes) -> None:
    """Create or replace ``path``'s content and fsync it (its name is its folder's business)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(descriptor, data)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def test_synced_bytes_survive_a_cut_and_later_writes_do_not(disk: PowerCutDisk) -> None:
    """A file comes back with its bytes as of its last fsync: overwrites and appends since go."""
    root = disk.mount_point
    write_synced(root / "photo", b"A" * 10_000)
    sync_folder(root)
    descriptor = os.open(root / "photo", os.O_WRONLY)
    os.pwrite(descriptor, b"B" * 5000, 3000)
    os.pwrite(descriptor, b"C" * 9000, 10_000)
    os.close(descriptor)
    assert (root / "photo").stat().st_size == 19_000
    disk.cut()
    assert disk.remount().startswith("rebuilt files=1 ")
    assert (root / "photo").read_bytes() == b"A" * 10_000


def test_a_truncate_not_synced_is_undone(disk: PowerCutDisk) -> None:
    """Truncating a synced file (and writing it again) is taken back by a cut."""
    root = disk.mount_point
    write_synced(root / "state", bytes(range(256)) * 64)
    sync_folder(root)
    with (root / "state").open("r+b") as stream:
        stream.truncate(100)
        stream.write(b"new")
    disk.cut()
    disk.remount()
    assert (root / "state").read_bytes() == bytes(range(256)) * 64


def test_a_new_name_is_durable_only_after_its_folder_is_synced(disk: PowerCutDisk) -> None:
    """An fsync'ed file whose folder was not synced is gone; one whose folder was is kept."""
    root = disk.mount_point
    (root / "kept").mkdir()
    (root / "lost").mkdir()
    sync_folder(root)
    write_synced(root / "kept" / "file", b"kept")
    write_synced(root / "lost" / "file", b"lost")
    sync_folder(root / "kept")
    disk.cut()
    disk.remount()
    assert (root / "kept" / "file").read_bytes() == b"kept"
    assert not (root / "lost" / "file").exists()
    assert (root / "lost").is_dir()


def test_a_file_never_synced_comes_back_empty_under_a_synced_name(disk: PowerCutDisk) -> None:
    """Its name was made durable by the folder's fsync, its bytes never were."""
    root = disk.mount_point
    (root / "unsynced").write_bytes(b"x" * 5000)
    sync_folder(root)
    disk.cut()
    disk.remount()
    assert (root / "unsynced").read_bytes() == b""


def test_rename_and_link_wait_for_the_folder_fsync(disk: PowerCutDisk) -> None:
    """Without the folder's fsync a rename and a link are undone; with it, both are kept."""
    root = disk.mount_point
    write_synced(root / "a.partial", b"content")
    sync_folder(root)
    os.link(root / "a.partial", root / "linked")
    os.rename(root / "a.partial", root / "renamed")
    disk.cut()
    disk.remount()
    assert sorted(os.listdir(root)) == ["a.partial"]
    os.link(root / "a.partial", root / "linked")
    os.rename(root / "a.partial", root / "renamed")
    sync_folder(root)
    disk.cut()
    disk.remount()
    assert sorted(os.listdir(root)) == ["linked", "renamed"]
    assert (root / "renamed").stat().st_ino == (root / "linked").stat().st_ino
    assert (root / "renamed").stat().st_nlink == 2  # the model's own link is not counted
    assert (root / "linked").read_bytes() == b"content"


def test_removed_names_come_back_until_their_folder_is_synced(disk: PowerCutDisk) -> None:
    """unlink and rmdir are names too: undone by a cut unless the folder was synced."""
    root = disk.mount_point
    (root / "folder").mkdir()
    write_synced(root / "file", b"still here")
    sync_folder(root)
    (root / "file").unlink()
    (root / "folder").rmdir()
    disk.cut()
    disk.remount()
    assert (root / "file").read_bytes() == b"still here"
    assert (root / "folder").is_dir()


def test_a_new_folder_needs_its_parent_synced(disk: PowerCutDisk) -> None:
    """A folder synced with its file inside, but not named durably in its parent, is gone."""
    root = disk.mount_point
    (root / "new").mkdir()
    write_synced(root / "new" / "file", b"x")
    sync_folder(root / "new")
    disk.cut()
    disk.remount()
    assert os.listdir(root) == []


def test_write_back_makes_a_subtree_durable_and_nothing_else(disk: PowerCutDisk) -> None:
    """The system's own writeback of one folder keeps its files, not the other folders'."""
    root = disk.mount_point
    (root / "state").mkdir()
    (root / "archive").mkdir()
    sync_folder(root)
    (root / "state" / "db").write_bytes(b"records")
    (root / "archive" / "photo").write_bytes(b"pixels")
    assert disk.write_back("state") == "written back 2"
    disk.cut()
    disk.remount()
    assert (root / "state" / "db").read_bytes() == b"records"
    assert not (root / "archive" / "photo").exists()


def test_after_the_cut_every_operation_fails(disk: PowerCutDisk) -> None:
    """Once the power is cut the disk is gone: writes, reads and listings fail with EIO."""
    root = disk.mount_point
    write_synced(root / "file", b"x")
    disk.cut()
    with pytest.raises(OSError) as raised:
        (root / "other").write_bytes(b"y")
    assert raised.value.errno == errno.EIO
    with pytest.raises(OSError) as listed:
        os.listdir(root)
    assert listed.value.errno == errno.EIO


def test_a_clean_unmount_keeps_everything(disk: PowerCutDisk) -> None:
    """Without a cut nothing is taken back: unmounting is a clean shutdown."""
    root = disk.mount_point
    (root / "folder").mkdir()
    (root / "folder" / "file").write_bytes(b"never synced")
    assert disk.remount() == "unmounted"
    assert (root / "folder" / "file").read_bytes() == b"never synced"


def test_sqlite_in_wal_mode_works_and_keeps_its_synced_commits(disk: PowerCutDisk) -> None:
    """WAL needs its -shm memory-mapped and shared between processes: a second process reads
    the first one's commits through it; after a cut a commit made with synchronous=FULL is
    there and the database passes integrity_check."""
    root = disk.mount_point
    sync_folder(root)
    database = root / "state.sqlite3"
    connection = sqlite3.connect(database, isolation_level=None)
    assert connection.execute("PRAGMA journal_mode = WAL").fetchone()[0] == "wal"
    connection.execute("PRAGMA synchronous = FULL")
    connection.execute("CREATE TABLE files (name TEXT)")
    connection.execute("INSERT INTO files VALUES ('IMG_0001.HEIC')")
    reader = subprocess.run(
        [sys.executable, "-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
         "print(c.execute('SELECT count(*) FROM files').fetchone()[0])", str(database)],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert reader.stdout.strip() == "1"
    assert (root / "state.sqlite3-shm").exists()
    connection.execute("PRAGMA synchronous = OFF")
    connection.execute("INSERT INTO files VALUES ('not synced')")
    disk.cut()
    with contextlib.suppress(sqlite3.Error):
        connection.close()  # its last checkpoint meets a dead disk
    disk.remount()
    reopened = sqlite3.connect(database)
    try:
        assert reopened.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        names = [row[0] for row in reopened.execute("SELECT name FROM files")]
    finally:
        reopened.close()
    assert names == ["IMG_0001.HEIC"]


def test_the_fsync_removed_shim_skips_only_partial_files(disk: PowerCutDisk) -> None:
    """The test-only switch of the bite test: with it a ``.partial``'s fsync does nothing,
    while any other file's fsync still makes its bytes durable."""
    root = disk.mount_point
    sync_folder(root)
    script = (
        "import os, sys\n"
        "for name in ('a.partial', 'b.sqlite3'):\n"
        "    descriptor = os.open(os.path.join(sys.argv[1], name), os.O_WRONLY | os.O_CREAT)\n"
        "    os.write(descriptor, b'bytes'); os.fsync(descriptor); os.close(descriptor)\n"
        "descriptor = os.open(sys.argv[1], os.O_RDONLY); os.fsync(descriptor)\n"
    )
    environment = {**os.environ, "PYTHONPATH": str(FSYNC_REMOVED_SHIM)}
    subprocess.run([sys.executable, "-c", script, str(root)], env=environment, check=True)
    disk.cut()
    disk.remount()
    assert (root / "a.partial").read_bytes() == b""
    assert (root / "b.sqlite3").read_bytes() == b"bytes"


def test_a_disk_without_hard_links_refuses_link_as_exfat_does(tmp_path: Path) -> None:
    """``hard_links=False`` answers link(2) with EPERM (rollkeeper's cue to rename instead)."""
    require_fuse()
    with PowerCutDisk(tmp_path, hard_links=False) as disk:
        (disk.mount_point / "file").write_bytes(b"x")
        with pytest.raises(PermissionError):
            os.link(disk.mount_point / "file", disk.mount_point / "link")
        os.rename(disk.mount_point / "file", disk.mount_point / "renamed")
        assert os.listdir(disk.mount_point) == ["renamed"]


def test_no_mount_outlives_a_killed_filesystem_process(tmp_path: Path) -> None:
    """kill -9 of the filesystem process: the mount goes away by itself (auto_unmount)."""
    require_fuse()
    disk = PowerCutDisk(tmp_path)
    try:
        disk.mount()
        assert disk.process_id is not None
        os.kill(disk.process_id, signal.SIGKILL)
        wait_until(lambda: not is_mounted(disk.mount_point), 30.0, "the mount to go away")
    finally:
        disk.close()
    assert not is_mounted(disk.mount_point)


def test_leaving_the_context_unmounts_even_after_a_failure(tmp_path: Path) -> None:
    """A test that fails inside ``with PowerCutDisk(...)`` leaves no mount behind."""
    require_fuse()
    with pytest.raises(RuntimeError), PowerCutDisk(tmp_path) as disk:
        descriptor = os.open(disk.mount_point / "open file", os.O_WRONLY | os.O_CREAT)
        try:
            raise RuntimeError("a failing test")
        finally:
            os.close(descriptor)
    assert not is_mounted(disk.mount_point)


def test_a_new_state_database_and_its_closed_run_survive_a_cut(disk: PowerCutDisk) -> None:
    """A state database created in a new folder, with one run closed, is all there after a
    power cut: the folder, the file's name and the run's records were made durable by the
    store itself, not by a later writeback."""
    from rollkeeper.store import RunCounts, StateStore

    state_path = disk.mount_point / "state" / "rollkeeper" / "state.sqlite3"
    store = StateStore.open(state_path)
    run_id = store.start_run("U1")
    store.finish_run(run_id, "complete", RunCounts(files_found=3, files_copied=3))
    disk.cut()
    with contextlib.suppress(sqlite3.Error, OSError):
        store.close()
    disk.remount()
    reopened = StateStore.open(state_path)
    try:
        assert reopened.integrity_check() == "ok"
        runs = reopened.runs("U1")
        assert [(run.id, run.outcome, run.files_copied) for run in runs] == [
            (run_id, "complete", 3)
        ]
    finally:
        reopened.close()
