""" "Backed up" is what the archive holds (issue 13): real ``rollkeeper`` processes (``run``,
``backup-now``, ``status``, ``verify``, ``forget``) against the simulator, real files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rollkeeper.importer.hashing import hash_file
from rollkeeper.simulator import SimulatorThread
from tests import media
from tests.service_process import (
    ServiceProcess,
    rollkeeper_command,
    service_environment,
    write_config,
)

UDID = "00008110-000A1B2C3D4E5F13"


def archive_files(archive: Path) -> dict[str, str]:
    """Relative path -> hash of every file in the archive, work folder excluded."""
    return {
        str(path.relative_to(archive)): hash_file(path)
        for path in sorted(archive.rglob("*"))
        if path.is_file() and ".rollkeeper" not in path.relative_to(archive).parts
    }


def tree(folder: Path) -> list[tuple[str, bytes]]:
    """Every entry under ``folder`` with its bytes, to compare byte for byte."""
    if not folder.exists():
        return []
    return [
        (str(path.relative_to(folder)), path.read_bytes() if path.is_file() else b"")
        for path in sorted(folder.rglob("*"))
    ]


class Cli:
    """``rollkeeper --config C ...`` as a subprocess against the simulator."""

    def __init__(self, simulator: SimulatorThread, config: Path) -> None:
        self.environment = service_environment(simulator.address)
        self.config = config

    def __call__(self, *arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            rollkeeper_command("--config", str(self.config), *arguments),
            env=self.environment,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    def status(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self("status", "--json").stdout)
        return document


def configured(tmp_path: Path, archive: Path, **schedule: float) -> Path:
    return write_config(
        tmp_path / "config.toml",
        tmp_path,
        archive={"path": str(archive)},
        schedule={"archive_recheck_seconds": 600.0, **schedule},
    )


def test_backup_now_refuses_a_missing_archive_and_creates_nothing(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """Archive folder removed after a complete backup (the mount point left empty, then the
    mount point removed too): backup-now exits non-zero saying the archive is not found, the
    mount point is as before, status --json says no phone is backed up and why; the folder put
    back, the next backup-now copies nothing and exits 0."""
    mount_point = tmp_path / "media" / "disk"
    archive = mount_point / "photos"
    archive.mkdir(parents=True)
    cli = Cli(simulator, configured(tmp_path, archive))
    roll = media.make_camera_roll(tmp_path / "phone")
    simulator.add_phone(UDID, roll.root, name="Ana's iPhone")
    first = cli("backup-now")
    assert first.returncode == 0, first.stdout + first.stderr
    unplugged = tmp_path / "unplugged"
    archive.rename(unplugged)
    before = tree(mount_point)

    empty = cli("backup-now")
    assert empty.returncode != 0
    assert f"archive {archive} not found: is the disk mounted?" in empty.stdout
    assert tree(mount_point) == before and not archive.exists()
    document = cli.status()
    [device] = document["devices"]
    assert device["backed_up"] is False
    assert device["last_run"]["error"].startswith("archive_unavailable: ")
    assert document["archive"]["available"] is False
    assert "is the disk mounted?" in document["archive"]["reason"]
    check = cli("status", "--check")
    assert check.returncode == 2 and "not found: is the disk mounted?" in check.stdout

    mount_point.rmdir()
    gone = cli("backup-now")
    assert gone.returncode != 0 and "not found" in gone.stdout
    assert not mount_point.exists()

    mount_point.mkdir()
    unplugged.rename(archive)
    back = cli("backup-now")
    assert back.returncode == 0, back.stdout + back.stderr
    assert " 0 copied" in back.stdout
    assert cli.status()["archive"]["available"] is True


def test_moved_files_are_followed_forget_is_honoured_and_another_disk_refused(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """A file moved inside the archive is followed (nothing copied); a file deleted and
    forgotten is neither restored nor lost; a different archive at the path is refused."""
    archive = tmp_path / "photos"
    archive.mkdir()
    cli = Cli(simulator, configured(tmp_path, archive))
    roll = media.make_camera_roll(tmp_path / "phone")
    simulator.add_phone(UDID, roll.root, name="Ana's iPhone")
    assert cli("backup-now").returncode == 0
    stored = sorted(archive_files(archive))
    moved, forgotten = stored[0], stored[1]
    (archive / "Sorted").mkdir()
    os.rename(archive / moved, archive / "Sorted" / Path(moved).name)
    (archive / forgotten).unlink()
    told = cli("forget", forgotten)
    assert told.returncode == 0 and "forgotten" in told.stdout

    after = cli("backup-now", "--json")
    assert after.returncode == 0, after.stdout + after.stderr
    [phone] = json.loads(after.stdout)["phones"]
    assert phone["files_copied"] == 0 and phone["files_restored"] == 0
    assert phone["files_lost"] == 0
    assert not (archive / forgotten).exists()
    assert f"Sorted/{Path(moved).name}" in archive_files(archive)

    other = tmp_path / "other-disk"
    other.mkdir()
    (other / ".rollkeeper").mkdir()
    (other / ".rollkeeper" / "archive.json").write_text(
        json.dumps({"archive_id": "another-disk", "created_at": "2026-01-01", "format_version": 1})
    )
    archive.rename(tmp_path / "photos-away")
    other.rename(archive)
    before = tree(archive)
    refused = cli("backup-now")
    assert refused.returncode != 0
    assert "holds another archive (id another-disk" in refused.stdout
    assert tree(archive) == before


def test_the_service_restores_a_deleted_and_a_flipped_file_and_verify_is_clean(
    simulator: SimulatorThread, tmp_path: Path, start_service: Callable[..., ServiceProcess]
) -> None:
    """With the running service: an archived file deleted and another flipped by one byte are
    restored at the next plug-in (hashes equal the phone's), the flipped copy sits in
    quarantine, the run counts 2 restored, and verify is clean afterwards."""
    archive = tmp_path / "archive"
    config = configured(tmp_path, archive)
    roll = media.make_camera_roll(tmp_path / "phone")
    service = start_service(config=config)
    simulator.add_phone(UDID, roll.root, name="Ana's iPhone")
    assert service.wait_for("backup_finished", udid=UDID)[0]["outcome"] == "complete"
    simulator.unplug(UDID)
    service.wait_for("phone_detached", udid=UDID)
    stored = archive_files(archive)
    deleted, flipped = sorted(path for path in stored if path.endswith(".HEIC"))[:2]
    (archive / deleted).unlink()
    data = bytearray((archive / flipped).read_bytes())
    data[len(data) // 3] ^= 0x01
    (archive / flipped).write_bytes(bytes(data))

    simulator.plug(UDID)
    second = service.wait_for("backup_finished", count=2, udid=UDID)[1]
    assert second["outcome"] == "complete"
    assert second["files_restored"] == 2 and second["files_copied"] == 0
    by_name = {item.name: item for item in roll.files}
    for path in (deleted, flipped):
        assert hash_file(archive / path) == hash_file(by_name[Path(path).name].host_path)
    [quarantined] = (archive / ".rollkeeper" / "quarantine").rglob(Path(flipped).name)
    assert quarantined.read_bytes() == bytes(data)
    assert service.terminate() == 0
    verify = Cli(simulator, config)("verify", "--all")
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_the_service_waits_for_an_archive_whose_parent_appears_later(
    simulator: SimulatorThread, tmp_path: Path, start_service: Callable[..., ServiceProcess]
) -> None:
    """The archive's parent is missing at start-up: the service starts anyway, the plug-in's
    run fails as archive_unavailable writing nothing (a re-plug in the same outage fails again
    without a second notification), and once the folder appears the service backs the waiting
    phone up without a re-plug (here through the timer fallback)."""
    parent = tmp_path / "disk"
    archive = parent / "photos"
    config = configured(tmp_path, archive, archive_recheck_seconds=0.3)
    roll = media.make_camera_roll(tmp_path / "phone")
    service = start_service(config=config)
    simulator.add_phone(UDID, roll.root, name="Ana's iPhone")
    first = service.wait_for("backup_finished", udid=UDID)[0]
    assert first["outcome"] == "failed"
    service.wait_for("archive_wait_started")
    assert not parent.exists()
    # A re-plug during the same outage fails again, and is not told again.
    simulator.unplug(UDID)
    service.wait_for("phone_detached", udid=UDID)
    simulator.plug(UDID)
    assert service.wait_for("backup_finished", count=2, udid=UDID)[1]["outcome"] == "failed"
    service.wait_for("archive_outage_already_told", udid=UDID)
    assert not parent.exists()

    archive.mkdir(parents=True)
    service.wait_for("archive_available_again")
    third = service.wait_for("backup_finished", count=3, udid=UDID)[2]
    assert third["outcome"] == "complete"
    assert third["files_copied"] == len(roll.files)
    assert service.terminate() == 0


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("mount") is None, reason="mounting needs root"
)
def test_the_service_notices_a_mount_without_a_timer(
    simulator: SimulatorThread, tmp_path: Path, start_service: Callable[..., ServiceProcess]
) -> None:
    """With a long timer, mounting a disk at the archive's mount point is noticed through the
    mount table (POLLPRI on /proc/self/mountinfo) and the waiting phone is backed up; the
    disk's archive folder is there when the disk is."""
    mount_point = tmp_path / "mnt"
    mount_point.mkdir()
    archive = mount_point / "photos"
    config = configured(tmp_path, archive)
    roll = media.make_camera_roll(tmp_path / "phone")
    service = start_service(config=config)
    simulator.add_phone(UDID, roll.root, name="Ana's iPhone")
    assert service.wait_for("backup_finished", udid=UDID)[0]["outcome"] == "failed"
    service.wait_for("archive_wait_started")
    # The disk is made ready elsewhere (its own mount is a first change that finds nothing
    # at the archive path), then shown at the mount point with the archive already on it.
    staging = tmp_path / "staging"
    staging.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(staging)], check=True)
    try:
        (staging / "photos").mkdir()
        subprocess.run(["mount", "--bind", str(staging), str(mount_point)], check=True)
        event = service.wait_for("archive_available_again")[0]
        assert event["via"] == "mount"
        second = service.wait_for("backup_finished", count=2, udid=UDID)[1]
        assert second["outcome"] == "complete"
        assert second["files_copied"] == len(roll.files)
        assert service.terminate() == 0
    finally:
        subprocess.run(["umount", str(mount_point)], check=False)
        subprocess.run(["umount", str(staging)], check=False)
