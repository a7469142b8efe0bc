""" "Backed up" is what this run saw in the archive (issue 13), in-process against the simulator
through the real pymobiledevice3 client, a real SQLite file and real files."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from rollkeeper.archive.identity import marker_path
from rollkeeper.device.session import SessionSettings
from rollkeeper.importer.hashing import hash_file
from rollkeeper.importer.job import BackupSettings, RunResult
from rollkeeper.service.phone_backup import back_up_phone
from rollkeeper.simulator import SimulatorThread
from rollkeeper.store import StateStore
from tests import media

UDID = "00008110-00BB0000000000B3"
LAYOUT = "{year}/{year}-{month}/{name}"


@dataclass
class Setup:
    roll: media.CameraRoll
    archive: Path
    store: StateStore
    session: SessionSettings
    backup: BackupSettings

    async def run(self) -> RunResult:
        turn = await back_up_phone(UDID, self.store, self.session, self.backup)
        assert turn.result is not None
        return turn.result

    def archived(self) -> dict[str, str]:
        """Archive path -> recorded hash, for every archived phone file."""
        return {
            entry.archive_path: entry.content_hash or ""
            for entry in self.store.manifest(UDID)
            if entry.archive_path
        }


@pytest.fixture
async def setup(simulator: SimulatorThread, tmp_path: Path) -> AsyncIterator[Setup]:
    roll = media.make_camera_roll(tmp_path / "phone")
    simulator.add_phone(UDID, roll.root, name="Ana's iPhone")
    archive = tmp_path / "mount" / "photos"
    archive.mkdir(parents=True)
    store = StateStore.open(tmp_path / "state.sqlite3")
    session = SessionSettings(usbmux_address=simulator.address, pairing_dir=tmp_path / "pairing")
    backup = BackupSettings(archive_root=archive, layout=LAYOUT)
    try:
        yield Setup(roll, archive, store, session, backup)
    finally:
        store.close()


def tree(folder: Path) -> list[tuple[str, bytes]]:
    """Every entry under ``folder`` with its bytes (folders as b''), to compare byte for byte."""
    found = []
    for path in sorted(folder.rglob("*")):
        found.append((str(path.relative_to(folder)), path.read_bytes() if path.is_file() else b""))
    return found


async def test_a_first_run_marks_the_archive_and_records_its_identity(setup: Setup) -> None:
    """The first run into an existing folder writes the marker, and the state records its id."""
    result = await setup.run()
    assert result.complete
    marker = json.loads(marker_path(setup.archive).read_text())
    recorded = setup.store.archive_truth.recorded_identity()
    assert recorded is not None and recorded.archive_id == marker["archive_id"]
    assert marker["format_version"] == 1 and marker["filesystem"]


async def test_a_removed_archive_fails_the_run_and_writes_nothing(setup: Setup) -> None:
    """With the archive folder gone (its mount point left empty, then gone too) a run is
    failed as archive_unavailable and creates nothing; put back, the next run copies
    nothing and is complete."""
    assert (await setup.run()).complete
    moved = setup.archive.parent.parent / "unplugged-disk"
    setup.archive.rename(moved)
    mount_point = setup.archive.parent
    before = tree(mount_point)

    empty = await setup.run()
    assert empty.outcome == "failed"
    assert empty.error.startswith("archive_unavailable: archive ")
    assert "is the disk mounted?" in empty.error
    assert tree(mount_point) == before
    assert not setup.archive.exists()

    mount_point.rmdir()
    gone = await setup.run()
    assert gone.outcome == "failed" and "not found" in gone.error
    assert not mount_point.exists()

    mount_point.mkdir()
    moved.rename(setup.archive)
    back = await setup.run()
    assert back.complete and back.counts.files_copied == 0
    assert back.counts.files_restored == 0


async def test_an_empty_folder_where_the_archive_was_is_not_a_new_archive(setup: Setup) -> None:
    """An empty folder at the archive's path (the unmounted disk's mount point) is refused:
    no marker is written into it and no photo is copied there."""
    assert (await setup.run()).complete
    setup.archive.rename(setup.archive.parent / "elsewhere")
    setup.archive.mkdir()
    result = await setup.run()
    assert result.outcome == "failed" and "no archive marker" in result.error
    assert list(setup.archive.iterdir()) == []


async def test_a_deleted_and_a_flipped_file_are_restored_and_the_flip_quarantined(
    setup: Setup,
) -> None:
    """A file deleted from the archive and another flipped by one byte (same size, so found by
    its ctime) are both copied again from the phone with their recorded hashes; the flipped
    copy sits in quarantine; the run counts 2 restored and is complete."""
    assert (await setup.run()).complete
    recorded = setup.archived()
    deleted, flipped = sorted(path for path in recorded if path.endswith((".HEIC", ".JPG")))[:2]
    (setup.archive / deleted).unlink()
    target = setup.archive / flipped
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))

    result = await setup.run()
    assert result.complete
    assert result.counts.files_restored == 2 and result.counts.files_copied == 0
    for path in (deleted, flipped):
        assert hash_file(setup.archive / path) == recorded[path]
    quarantined = list((setup.archive / ".rollkeeper" / "quarantine").rglob(Path(flipped).name))
    assert len(quarantined) == 1 and quarantined[0].read_bytes() == bytes(data)
    findings = {f.relative_path: f for f in setup.store.archive_truth.findings()}
    assert findings[deleted].state == "restored" and findings[flipped].state == "restored"
    assert findings[flipped].quarantine_path

    again = await setup.run()
    assert again.complete and again.counts.files_restored == 0


async def test_a_moved_file_is_followed_not_copied_again(setup: Setup) -> None:
    """A file the user moved inside the archive is found by its content: the record follows
    it and nothing is copied."""
    assert (await setup.run()).complete
    path = sorted(setup.archived())[0]
    new_place = setup.archive / "Sorted" / Path(path).name
    new_place.parent.mkdir()
    os.rename(setup.archive / path, new_place)

    result = await setup.run()
    assert result.complete
    assert result.counts.files_copied == 0 and result.counts.files_restored == 0
    assert not (setup.archive / path).exists()
    assert f"Sorted/{Path(path).name}" in setup.archived()
    finding = setup.store.archive_truth.finding(path)
    assert finding is not None and finding.state == "followed"


async def test_a_file_gone_from_both_is_lost_until_forgotten(setup: Setup) -> None:
    """A file missing from the archive that the phone no longer holds is lost (counted);
    once forgotten it is never reported again."""
    assert (await setup.run()).complete
    item = setup.roll.by_name("IMG_0003.JPG")
    path = next(p for p in setup.archived() if p.endswith("IMG_0003.JPG"))
    (setup.archive / path).unlink()
    (setup.roll.root / item.phone_path.lstrip("/")).unlink()

    result = await setup.run()
    assert result.counts.files_lost == 1
    finding = setup.store.archive_truth.finding(path)
    assert finding is not None and finding.state == "lost"

    setup.store.archive_truth.forget(path, finding.content_hash)
    after = await setup.run()
    assert after.counts.files_lost == 0 and after.complete
    forgotten = setup.store.archive_truth.finding(path)
    assert forgotten is not None and forgotten.state == "forgotten"


async def test_another_archive_at_the_path_is_refused(setup: Setup) -> None:
    """A marker with another id at the archive path (another disk mounted there) is refused,
    naming both ids, and nothing is written into it."""
    assert (await setup.run()).complete
    marker = marker_path(setup.archive)
    document = json.loads(marker.read_text())
    document["archive_id"] = "someone-elses"
    marker.write_text(json.dumps(document))
    before = tree(setup.archive)
    result = await setup.run()
    assert result.outcome == "failed"
    assert "another archive (id someone-elses" in result.error
    assert tree(setup.archive) == before
