"""The running service makes device backups after the photo import, at most every every_hours."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from rollkeeper.device_backup.snapshots import SnapshotFolder
from rollkeeper.simulator import SimulatorThread
from rollkeeper.simulator.phone import PhoneState
from tests import media
from tests.service_process import ServiceProcess, write_config

UDID = "00008110-000A1B2C3D4E5F60"


def tree_digest(folder: Path) -> dict[str, tuple[int, str]]:
    """relative path -> (inode, sha256) of every file under ``folder``."""
    return {
        str(path.relative_to(folder)): (
            path.stat().st_ino,
            hashlib.sha256(path.read_bytes()).hexdigest(),
        )
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def position(service: ServiceProcess, name: str, occurrence: int = 0) -> int:
    """Where the ``occurrence``-th event ``name`` is in the service's log."""
    found = [index for index, event in enumerate(service.events) if event.get("event") == name]
    return found[occurrence]


def config_with(tmp_path: Path, every_hours: float) -> Path:
    """The test config with device backups on, into tmp_path/device-backups."""
    return write_config(
        tmp_path / "config.toml",
        tmp_path,
        notifications={"desktop": False},
        device_backup={
            "enabled": True,
            "path": str(tmp_path / "device-backups"),
            "every_hours": every_hours,
            "keep": 7,
        },
    )


@pytest.mark.slow
def test_plug_in_imports_photos_then_makes_a_device_backup_at_most_every_every_hours(
    simulator: SimulatorThread, start_service: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    """Plug in: the photo import completes first, then a device backup completes whose
    Manifest.db lists the camera roll under CameraRollDomain with the phone's bytes. A second
    plug-in within every_hours makes none. After the period (every_hours lowered on the fly),
    with one new photo, a second snapshot completes, the first is byte-for-byte unchanged and
    the second costs little disk."""
    config = config_with(tmp_path, every_hours=24.0)
    roll = media.make_camera_roll(tmp_path / "phone", big_video_bytes=2_000_000)
    service = start_service(config=config)
    simulator.add_phone(UDID, roll.root, name="Ana's iPhone")
    completed = service.wait_for("device_backup_completed", udid=UDID)[0]
    assert position(service, "backup_finished") < position(service, "device_backup_started")
    assert service.named("backup_finished", udid=UDID)[0]["outcome"] == "complete"

    folder = SnapshotFolder(tmp_path / "device-backups")
    first = folder.snapshots(UDID)
    assert [snapshot.snapshot_id for snapshot in first] == [completed["snapshot"]]
    backup_folder = first[0].backup_folder
    connection = sqlite3.connect(backup_folder / "Manifest.db")
    rows = dict(
        connection.execute(
            "SELECT relativePath, fileID FROM Files WHERE domain = 'CameraRollDomain'"
        ).fetchall()
    )
    connection.close()
    assert len(rows) == len(roll.files)
    for item in roll.files:
        identifier = rows["Media" + item.phone_path]
        assert (
            identifier
            == hashlib.sha1(f"CameraRollDomain-Media{item.phone_path}".encode()).hexdigest()
        )
        assert (
            backup_folder / identifier[:2] / identifier
        ).read_bytes() == item.host_path.read_bytes()
    first_digest = tree_digest(first[0].folder)

    simulator.unplug(UDID)
    simulator.plug(UDID)
    service.wait_for("backup_finished", udid=UDID, count=2)
    skipped = service.wait_for("device_backup_not_started", udid=UDID)[0]
    assert skipped["reason"] == "not_due"
    assert len(folder.snapshots(UDID)) == 1

    config_with(tmp_path, every_hours=0.0001)
    service.wait_for("config_reloaded")
    new_photo = roll.root / "DCIM" / "100APPLE" / "IMG_0900.JPG"
    new_photo.write_bytes(roll.files[0].host_path.read_bytes() + b"new photo")
    simulator.unplug(UDID)
    simulator.plug(UDID)
    second = service.wait_for("device_backup_completed", udid=UDID, count=2)[1]
    snapshots = folder.snapshots(UDID)
    assert [snapshot.snapshot_id for snapshot in snapshots] == [
        completed["snapshot"],
        second["snapshot"],
    ]
    assert tree_digest(first[0].folder) == first_digest
    identifier = hashlib.sha1(b"CameraRollDomain-Media/DCIM/100APPLE/IMG_0900.JPG").hexdigest()
    stored = snapshots[1].backup_folder / identifier[:2] / identifier
    assert stored.read_bytes() == new_photo.read_bytes()
    # The second snapshot costs the new photo and the new metadata, not a second copy.
    assert second["added_bytes"] < completed["added_bytes"] / 4
    assert service.terminate() == 0


@pytest.mark.slow
def test_unplug_mid_backup_then_next_plug_in_completes(
    simulator: SimulatorThread, start_service: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    """The cable comes out during the service's first device backup: no snapshot exists, the
    attempt is recorded as unplugged; the next plug-in completes a device backup."""
    config = config_with(tmp_path, every_hours=24.0)
    roll = media.make_camera_roll(tmp_path / "phone", big_video_bytes=3_000_000)
    service = start_service(config=config)
    simulator.add_phone(UDID, roll.root, plugged=False)

    def cut(phone: PhoneState) -> None:
        phone.backup.unplug_after_bytes = 1_500_000

    simulator.update_phone(UDID, cut)
    simulator.plug(UDID)
    ended = service.wait_for("device_backup_ended", udid=UDID)[0]
    assert ended["outcome"] == "unplugged"
    assert SnapshotFolder(tmp_path / "device-backups").snapshots(UDID) == []
    simulator.plug(UDID)
    service.wait_for("device_backup_completed", udid=UDID)
    assert len(SnapshotFolder(tmp_path / "device-backups").snapshots(UDID)) == 1
    assert service.terminate() == 0
