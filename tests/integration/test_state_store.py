"""The state store against real SQLite files."""

from __future__ import annotations

import random
import sqlite3
import stat
from pathlib import Path

import pytest

from rollkeeper.store import RunCounts, StateDamagedError, StateStore
from rollkeeper.store.archive_queries import largest_entry_size
from rollkeeper.store.migrations import MIGRATIONS, schema_version
from rollkeeper.store.reports import Reports


def test_new_database_is_private_wal_and_migrated(tmp_path: Path) -> None:
    """A new state database is 0600 in a 0700 folder, in WAL mode, and migrated to the latest
    schema."""
    path = tmp_path / "state" / "state.sqlite3"
    store = StateStore.open(path)
    store.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    connection = sqlite3.connect(path)
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert schema_version(connection) == len(MIGRATIONS)


def test_same_name_with_other_identity_is_a_new_file(tmp_path: Path) -> None:
    """The same name with another size and birth time is a new pending file, while the old one stays
    archived and is marked no longer present."""
    store = StateStore.open(tmp_path / "s.sqlite3")
    first = store.observe_file("U1", "/DCIM/100APPLE", "IMG_0001.HEIC", 100, 1_000, 1_000)
    store.record_archived(
        first.id,
        relative_path="2020/2020-01/IMG_0001.HEIC",
        content_hash="aa",
        hash_algorithm="blake3",
        size=100,
        origin="backup",
        capture_time=None,
        capture_source=None,
    )
    second = store.observe_file("U1", "/DCIM/100APPLE", "IMG_0001.HEIC", 200, 2_000, 2_000)
    assert second.id != first.id
    assert second.status == "pending"
    present = store.present_files("U1", "/DCIM/100APPLE")
    assert present["IMG_0001.HEIC"].id == second.id
    entries = store.manifest("U1")
    assert {entry.id: entry.present for entry in entries} == {first.id: False, second.id: True}
    assert [e.status for e in entries if e.id == first.id] == ["archived"]


def test_observing_the_same_identity_again_keeps_its_status(tmp_path: Path) -> None:
    """Observing a file of the same identity again returns its row, with its status and reason
    kept."""
    store = StateStore.open(tmp_path / "s.sqlite3")
    entry = store.observe_file("U1", "/DCIM/100APPLE", "IMG_0002.JPG", 5, 7, 7)
    store.set_file_status(entry.id, "failed", "read_error")
    again = store.observe_file("U1", "/DCIM/100APPLE", "IMG_0002.JPG", 5, 7, 7)
    assert again.id == entry.id
    assert again.status == "failed"
    assert again.failure_reason == "read_error"


def test_complete_run_updates_the_device(tmp_path: Path) -> None:
    """A complete run becomes the phone's last complete run, and a later incomplete one does not
    replace it."""
    store = StateStore.open(tmp_path / "s.sqlite3")
    store.record_device_seen("U1", name="Ana's iPhone", product_type="iPhone15,2")
    run_id = store.start_run("U1")
    store.finish_run(run_id, "complete", RunCounts(files_found=3, files_copied=3))
    device = store.device("U1")
    assert device is not None
    assert device.name == "Ana's iPhone"
    assert device.last_complete_run_id == run_id
    incomplete = store.start_run("U1")
    store.finish_run(incomplete, "incomplete", RunCounts(files_failed=1))
    device = store.device("U1")
    assert device is not None and device.last_complete_run_id == run_id


def test_unfinished_runs_become_interrupted(tmp_path: Path) -> None:
    """A run left unfinished by a stopped process is closed as interrupted at the next open."""
    store = StateStore.open(tmp_path / "s.sqlite3")
    run_id = store.start_run("U1")
    store.close()
    store = StateStore.open(tmp_path / "s.sqlite3")
    assert store.close_unfinished_runs() == 1
    assert store.runs("U1")[0].id == run_id
    assert store.runs("U1")[0].outcome == "interrupted"


def test_read_only_store_cannot_write_and_sees_writes(tmp_path: Path) -> None:
    """A read-only store sees another connection's writes and cannot write itself."""
    path = tmp_path / "s.sqlite3"
    writer = StateStore.open(path)
    reader = StateStore.open(path, read_only=True)
    writer.record_device_seen("U1", name="x")
    assert [d.udid for d in reader.devices()] == ["U1"]
    with pytest.raises(sqlite3.OperationalError):
        reader.record_device_seen("U2")


def test_garbage_file_is_reported_as_damaged(tmp_path: Path) -> None:
    """A file that is not a database is reported as damaged, naming the file."""
    path = tmp_path / "s.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StateDamagedError) as caught:
        StateStore.open(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("seed", range(12))
def test_pages_overwritten_with_garbage_are_damaged_never_a_crash(
    tmp_path: Path, seed: int
) -> None:
    """A state whose pages were overwritten with random bytes opens as a store or is reported
    damaged (StateDamagedError, which the service moves aside); never another exception, even
    when SQLite's message quotes bytes that are not UTF-8 ("malformed database schema ... near
    <garbage>": two of these seeds), which Python cannot decode."""
    path = tmp_path / "state.sqlite3"
    store = StateStore.open(path)
    for number in range(40):
        store.record_device_seen(f"00008110-{number:016X}", name=f"phone {number}")
    store.close()
    randomness = random.Random(seed)
    size = path.stat().st_size
    with path.open("r+b") as stream:
        # 300 random bytes in every KiB after the first page's header (the schema's text
        # among them, where SQLite's message quotes what it could not parse)
        for offset in range(1024 + 100, size, 1024):
            stream.seek(offset)
            stream.write(randomness.randbytes(300))
    try:
        damaged = StateStore.open(path)
    except StateDamagedError as error:
        assert error.reason
        return
    verdicts = (damaged.integrity_check(), damaged.integrity_check(quick=True))
    damaged.close()
    assert all(isinstance(verdict, str) and verdict for verdict in verdicts)


def test_reports_and_archive_queries_run_on_the_stores_own_connection(tmp_path: Path) -> None:
    """The queries behind status, history and verify share the store's one connection: inside
    a transaction not yet committed they already see its writes, which another connection to
    the same file does not."""
    path = tmp_path / "s.sqlite3"
    store = StateStore.open(path)
    other = StateStore.open(path, read_only=True)
    with store.transaction():
        store.record_device_seen("U1", name="x")
        store.add_archive_entry("2024/a.jpg", "aa", "blake3", 5, "adopted")
        assert Reports.for_store(store).known_udids() == ["U1"]
        assert largest_entry_size(store) == 5
        assert other.devices() == []
    assert [device.udid for device in other.devices()] == ["U1"]
