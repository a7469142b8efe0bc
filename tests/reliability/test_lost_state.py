"""Lost or damaged state: the service starts, says so, and the next run writes no duplicate.

One chain of real ``rollkeeper run`` processes against one phone: a first process backs up;
then, before each next start, the state database is deleted, truncated, or corrupted (its
header, or pages in the middle), and the phone gains new photos. Each new process must start,
log what it found (``state_database_damaged`` with the file moved aside, or
``state_database_created`` for a missing one), back the phone up completely, and leave an
archive where every content is stored once: files already there are recognised by their hash
(``origin = rebuilt``), not written again under another name.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rollkeeper.importer.hashing import hash_file
from rollkeeper.simulator import SimulatorThread
from rollkeeper.store import StateStore
from tests import media
from tests.reliability.harness import check_archive
from tests.service_process import ServiceProcess

UDID = "00008110-00AA0000000000F1"


def delete(path: Path) -> str:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return "state_database_created"


def truncate(path: Path) -> str:
    with path.open("r+b") as stream:
        stream.truncate(path.stat().st_size // 2)
    return "state_database_damaged"


def corrupt_header(path: Path) -> str:
    with path.open("r+b") as stream:
        stream.write(b"this is not SQLite at all")
    return "state_database_damaged"


def corrupt_pages(path: Path) -> str:
    size = path.stat().st_size
    with path.open("r+b") as stream:
        # Every page after the first one (the schema) gets garbage in its middle.
        for offset in range(4096 + 1000, size, 4096):
            stream.seek(offset)
            stream.write(os.urandom(1500))
    return "state_database_damaged"


@pytest.mark.slow
def test_deleted_truncated_or_corrupted_state_costs_no_duplicate(
    simulator: SimulatorThread, start_service: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    """A state database deleted, truncated or corrupted between runs is reported at start (a damaged
    one moved aside) and the next run completes without storing any content twice."""
    state = tmp_path / "state" / "state.sqlite3"
    archive = tmp_path / "archive"
    phone = tmp_path / "phone"
    on_phone: set[str] = set()

    def new_photos(number: int) -> None:
        roll = media.make_camera_roll(
            phone,
            first_number=10 * number + 1,
            file_time=datetime(2024, 5, 1, tzinfo=UTC) + timedelta(days=number),
        )
        on_phone.update(hash_file(item.host_path) for item in roll.files)

    new_photos(0)
    service = start_service()
    simulator.add_phone(UDID, phone)
    assert service.wait_for("backup_finished", udid=UDID)[0]["outcome"] == "complete"
    assert service.terminate() == 0
    files_before = check_archive(archive, state, on_phone, UDID).files

    for number, damage in enumerate((delete, truncate, corrupt_header, corrupt_pages), start=1):
        expected_event = damage(state)
        new_photos(number)
        service = start_service()
        noticed = service.wait_for(expected_event)[0]
        assert noticed["path"] == str(state), noticed
        finished = service.wait_for("backup_finished", udid=UDID)[0]
        assert finished["outcome"] == "complete", (damage.__name__, finished)
        # Only the new roll was written; what the archive held was recognised by its hash.
        assert finished["files_copied"] == 10, (damage.__name__, finished)
        assert service.terminate() == 0
        check = check_archive(archive, state, on_phone, UDID)
        assert check.problems == [], (damage.__name__, check.problems)
        assert check.files == files_before + 10
        files_before = check.files
        store = StateStore.open(state, read_only=True)
        origins = {entry.origin for entry in store.archive_entries()}
        store.close()
        assert "rebuilt" in origins
        if expected_event == "state_database_damaged":
            assert Path(noticed["moved_to"]).exists()
