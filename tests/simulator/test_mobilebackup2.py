"""The simulated phone's mobilebackup2, driven by unmodified pymobiledevice3 and idevicebackup2."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from pymobiledevice3.exceptions import NotEnoughDiskSpaceError, PyMobileDevice3Exception
from pymobiledevice3.lockdown import create_using_usbmux
from pymobiledevice3.services.mobilebackup2 import Mobilebackup2Service

from rollkeeper.simulator import SimulatorThread
from rollkeeper.simulator.phone import PhoneState
from tests import media

UDID = "00008120-001A2B3C4D5E6F70"


def file_id(domain: str, relative_path: str) -> str:
    """How a backup names a file: sha1 of ``domain-relativePath``."""
    return hashlib.sha1(f"{domain}-{relative_path}".encode()).hexdigest()


def cli_environment(simulator: SimulatorThread, pair_records: Path) -> dict[str, str]:
    """pymobiledevice3's CLI pointed at the simulator, with its pair records kept in tmp."""
    return {**os.environ, "USBMUXD_SOCKET_ADDRESS": simulator.address, "HOME": str(pair_records)}


def run_cli_backup(
    simulator: SimulatorThread, target: Path, home: Path
) -> subprocess.CompletedProcess[str]:
    """``pymobiledevice3 backup2 backup TARGET``, the unmodified command."""
    command = [sys.executable, "-m", "pymobiledevice3", "backup2", "backup", str(target)]
    return subprocess.run(
        command,
        env=cli_environment(simulator, home),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def camera_roll_rows(backup_folder: Path) -> dict[str, str]:
    """relativePath -> fileID of the CameraRollDomain rows of a Manifest.db."""
    connection = sqlite3.connect(backup_folder / "Manifest.db")
    try:
        rows = connection.execute(
            "SELECT relativePath, fileID FROM Files WHERE domain = 'CameraRollDomain'"
        ).fetchall()
    finally:
        connection.close()
    return {str(path): str(identifier) for path, identifier in rows}


@pytest.mark.slow
def test_pymobiledevice3_cli_backs_up_the_camera_roll_by_file_id(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """`pymobiledevice3 backup2 backup` completes; every photo is in Manifest.db under
    CameraRollDomain with fileID = sha1(domain-path), stored byte for byte at xx/fileID; a
    second run is incremental (only the metadata is sent again)."""
    roll = media.make_camera_roll(tmp_path / "phone")
    simulator.add_phone(UDID, roll.root)
    target = tmp_path / "backup"
    target.mkdir()
    first = run_cli_backup(simulator, target, tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    backup_folder = target / UDID
    rows = camera_roll_rows(backup_folder)
    assert len(rows) == len(roll.files)
    for item in roll.files:
        relative = "Media" + item.phone_path
        expected_id = file_id("CameraRollDomain", relative)
        assert rows[relative] == expected_id
        stored = backup_folder / expected_id[:2] / expected_id
        assert stored.read_bytes() == item.host_path.read_bytes()
    assert simulator.phone_snapshot(UDID)  # the phone is still there
    sent_first = simulator.update_phone(UDID, lambda phone: phone.backup.last_backup_files_sent)
    assert sent_first >= len(roll.files)

    second = run_cli_backup(simulator, target, tmp_path)
    assert second.returncode == 0, second.stderr[-2000:]
    finished = simulator.events.events("backup_finished", UDID)
    assert [event.details["incremental"] for event in finished] == [False, True]
    assert finished[1].details["files_sent"] == 0


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("idevicebackup2") is None, reason="libimobiledevice-utils absent")
def test_idevicebackup2_backup_succeeds(simulator: SimulatorThread, tmp_path: Path) -> None:
    """libimobiledevice's `idevicebackup2 backup` (a second, independent client) reports
    "Backup Successful." and stores the camera roll under the same file IDs."""
    roll = media.make_camera_roll(tmp_path / "phone")
    simulator.add_phone(UDID, roll.root)
    target = tmp_path / "backup"
    target.mkdir()
    environment = {**os.environ, "USBMUXD_SOCKET_ADDRESS": simulator.libimobiledevice_address}
    done = subprocess.run(
        ["idevicebackup2", "-u", UDID, "backup", str(target)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "Backup Successful." in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]
    rows = camera_roll_rows(target / UDID)
    for item in roll.files:
        identifier = file_id("CameraRollDomain", "Media" + item.phone_path)
        assert (
            target / UDID / identifier[:2] / identifier
        ).read_bytes() == item.host_path.read_bytes()
    assert len(rows) == len(roll.files)


async def api_backup(simulator: SimulatorThread, target: Path, pairing: Path) -> None:
    """pymobiledevice3's own ``Mobilebackup2Service.backup`` (the API the CLI uses)."""
    lockdown = await create_using_usbmux(
        serial=UDID, usbmux_address=simulator.address, pairing_records_cache_folder=pairing
    )
    try:
        async with Mobilebackup2Service(lockdown) as service:
            await service.backup(full=False, backup_directory=target)
    finally:
        await lockdown.close()


def test_passcode_prompt_is_silent_then_error_208(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """With the iOS 16.1+ passcode prompt, the phone sends nothing until its (configurable)
    wait runs out, then ErrorCode 208; no file was uploaded."""
    roll = media.make_camera_roll(tmp_path / "phone")

    def prompt(phone: PhoneState) -> None:
        phone.backup.passcode_prompt = True
        phone.backup.passcode_wait_seconds = 0.5

    simulator.add_phone(UDID, roll.root)
    simulator.update_phone(UDID, prompt)
    target = tmp_path / "backup"
    with pytest.raises(PyMobileDevice3Exception, match="'ErrorCode': 208"):
        asyncio.run(api_backup(simulator, target, tmp_path / "pairing"))
    assert simulator.events.events("backup_passcode_requested", UDID)
    assert simulator.events.events("backup_passcode_timeout", UDID)
    assert not list((target / UDID).glob("??/*"))


def test_entering_the_passcode_lets_the_backup_go_on(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """The prompt waits; once the passcode is entered the backup completes."""
    roll = media.make_camera_roll(tmp_path / "phone")
    simulator.add_phone(UDID, roll.root)
    simulator.update_phone(UDID, lambda phone: setattr(phone.backup, "passcode_prompt", True))
    mark = simulator.mark()

    async def back_up_and_answer() -> None:
        backup = asyncio.create_task(api_backup(simulator, tmp_path / "backup", tmp_path / "p"))
        await asyncio.to_thread(simulator.wait_for, "backup_passcode_requested", UDID, after=mark)
        assert await asyncio.to_thread(simulator.enter_passcode, UDID)
        await asyncio.wait_for(backup, 60)

    asyncio.run(back_up_and_answer())
    assert simulator.events.events("backup_finished", UDID)
    assert camera_roll_rows(tmp_path / "backup" / UDID)


def test_a_full_host_disk_gets_a_purge_request_then_error_105(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """A backup larger than the host's free space: the phone asks the host to purge
    (DLMessagePurgeDiskSpace), pymobiledevice3 cannot, and the phone ends with 105."""
    roll = media.make_camera_roll(tmp_path / "phone")
    simulator.add_phone(UDID, roll.root)
    simulator.update_phone(
        UDID, lambda phone: setattr(phone.backup, "claimed_upload_bytes", 1 << 60)
    )
    with pytest.raises(NotEnoughDiskSpaceError):
        asyncio.run(api_backup(simulator, tmp_path / "backup", tmp_path / "pairing"))
    assert simulator.events.events("backup_purge_requested", UDID)
    assert simulator.events.events("backup_disk_full", UDID)
