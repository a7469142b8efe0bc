"""A re-plug never misses a changed phone file: a real service process, the simulator, real files.

A photo replaced under its old name (another size; the same size with another birth time) moves
its folder's stat and is copied at the next plug-in, kept beside the old one. A file rewritten
in place leaves its folder's stat alone: the rotating check finds it within ceil(files / slice)
plug-ins, and the full check at the first plug-in after ``schedule.full_check_days``. A phone
that stays attached is scanned again every ``schedule.attached_rescan_hours``.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rollkeeper.importer.hashing import hash_file
from rollkeeper.simulator import SimulatorThread
from rollkeeper.store.records import utc_now_text
from tests import media
from tests.service_process import ServiceProcess, write_config

UDID = "00008110-000A1B2C3D4E5F60"


def archive_hashes(archive: Path) -> list[str]:
    """The hash of every file in the archive (work folder excluded), one per file."""
    return [
        hash_file(path)
        for path in sorted(archive.rglob("*"))
        if path.is_file() and ".rollkeeper" not in path.relative_to(archive).parts
    ]


def replug(simulator: SimulatorThread, service: ServiceProcess, plug_ins: int) -> dict[str, object]:
    """Unplug and plug the phone again; the run of plug-in number ``plug_ins`` (counted from
    the first)."""
    simulator.unplug(UDID)
    service.wait_for("phone_detached", udid=UDID, count=plug_ins - 1)
    simulator.plug(UDID)
    return service.wait_for("backup_finished", udid=UDID, count=plug_ins)[plug_ins - 1]


def test_a_photo_replaced_under_its_name_is_copied_at_the_next_plug_in(
    simulator: SimulatorThread, start_service: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    """IMG_0003 deleted and another saved under its name, with another size; later IMG_0004
    replaced by a photo of the same size and another birth time: each is copied at the next
    plug-in (the rest is not), and the archive holds both versions of each."""
    roll = media.make_camera_roll(tmp_path / "phone")
    service = start_service()
    simulator.add_phone(UDID, roll.root)
    first = service.wait_for("backup_finished", udid=UDID)[0]
    assert first["files_copied"] == len(roll.files)

    replaced = roll.by_name("IMG_0003.JPG").host_path
    old_hash, old_size = hash_file(replaced), replaced.stat().st_size
    replaced.unlink()
    media.make_blob(replaced, old_size + 1_000, seed="another photo")
    second = replug(simulator, service, 2)
    assert (second["outcome"], second["files_copied"]) == ("complete", 1)
    hashes = archive_hashes(tmp_path / "archive")
    assert old_hash in hashes and hash_file(replaced) in hashes

    same_size = roll.by_name("IMG_0004.PNG").host_path
    size, old_hash = same_size.stat().st_size, hash_file(same_size)
    old_time = same_size.stat().st_mtime_ns
    same_size.unlink()
    media.make_blob(same_size, size, seed="another screenshot")
    os.utime(same_size, ns=(old_time + 3_600 * 10**9, old_time + 3_600 * 10**9))
    assert same_size.stat().st_size == size
    third = replug(simulator, service, 3)
    assert (third["outcome"], third["files_copied"]) == ("complete", 1)
    hashes = archive_hashes(tmp_path / "archive")
    assert old_hash in hashes and hash_file(same_size) in hashes
    assert len(hashes) == len(roll.files) + 2
    assert service.terminate() == 0


def small_phone(root: Path, files: int) -> list[Path]:
    """``files`` small files in one folder, named in order."""
    return [
        media.make_blob(root / "DCIM" / "100APPLE" / f"IMG_{number:04d}.JPG", 2_000)
        for number in range(1, files + 1)
    ]


def rewrite_in_place(path: Path) -> None:
    """Append to a file and keep its times: its folder's stat does not move, its size does."""
    folder_before = os.stat(path.parent)
    times = path.stat()
    with path.open("ab") as handle:
        handle.write(b"rewritten in place" * 50)
    os.utime(path, ns=(times.st_atime_ns, times.st_mtime_ns))
    folder_after = os.stat(path.parent)
    assert (folder_after.st_mtime_ns, folder_after.st_nlink) == (
        folder_before.st_mtime_ns,
        folder_before.st_nlink,
    ), "the premise: the folder's stat is unchanged"


def test_a_file_rewritten_in_place_is_found_within_the_rotating_bound(
    simulator: SimulatorThread, start_service: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    """130 files, slice 64: the file checked last, rewritten in place (its folder's stat
    unchanged), is found by the rotating check within ceil(130 / 64) = 3 plug-ins, not at the
    first (no folder stat sees it), and copied then."""
    files = small_phone(tmp_path / "phone", 130)
    service = start_service()
    simulator.add_phone(UDID, tmp_path / "phone")
    service.wait_for("backup_finished", udid=UDID)
    rewrite_in_place(files[-1])
    found_at = None
    for plug_in in range(2, 2 + 4):
        run = replug(simulator, service, plug_in)
        scan = service.wait_for("scan_finished", udid=UDID, count=plug_in)[plug_in - 1]
        assert scan["rotating_checks"] == 64
        if run["files_copied"]:
            found_at = plug_in - 1
            break
    assert found_at is not None and 1 < found_at <= 3
    assert hash_file(files[-1]) in archive_hashes(tmp_path / "archive")
    assert service.terminate() == 0


def test_the_full_check_finds_it_at_the_first_plug_in_after_the_period(
    simulator: SimulatorThread, start_service: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    """The same rewrite, with the last full check moved 7 days into the past (the clock as the
    service will see it at the next plug-in): that plug-in stats every file and copies it."""
    files = small_phone(tmp_path / "phone", 130)
    service = start_service()
    simulator.add_phone(UDID, tmp_path / "phone")
    service.wait_for("backup_finished", udid=UDID)
    rewrite_in_place(files[-1])
    week_ago = utc_now_text(datetime.now(UTC) - timedelta(days=7))
    with sqlite3.connect(tmp_path / "state" / "state.sqlite3", isolation_level=None) as state:
        state.execute("UPDATE devices SET full_check_at = ? WHERE udid = ?", (week_ago, UDID))
    run = replug(simulator, service, 2)
    assert run["files_copied"] == 1
    service.wait_for("full_check_due", udid=UDID)
    scan = service.wait_for("scan_finished", udid=UDID, count=2)[1]
    assert (scan["rotating_checks"], scan["stat_requests"]) == (0, 130)
    # The check is recorded: the next plug-in is an ordinary re-plug again.
    third = replug(simulator, service, 3)
    assert third["files_copied"] == 0
    assert service.wait_for("scan_finished", udid=UDID, count=3)[2]["rotating_checks"] == 64
    assert service.terminate() == 0


def test_a_phone_that_stays_attached_is_scanned_again(
    simulator: SimulatorThread, start_service: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    """With ``attached_rescan_hours`` short, a photo saved while the phone stays plugged in
    (an AirDrop) is copied by the next periodic scan, with no re-plug."""
    config = write_config(
        tmp_path / "rescan.toml",
        tmp_path,
        schedule={"attached_rescan_hours": 1 / 3600},
    )
    files = small_phone(tmp_path / "phone", 3)
    service = start_service(config=config)
    simulator.add_phone(UDID, tmp_path / "phone")
    service.wait_for("backup_finished", udid=UDID)
    arrived = media.make_blob(files[0].parent / "IMG_0100.JPG", 3_000)
    rescan = service.wait_for("backup_scheduled", udid=UDID, reason="attached_rescan")[0]
    assert rescan["delay_seconds"] == 0
    copied = service.wait_for("backup_finished", udid=UDID, files_copied=1)[0]
    assert copied["outcome"] == "complete"
    assert hash_file(arrived) in archive_hashes(tmp_path / "archive")
    assert service.named("phone_detached", udid=UDID) == []
    assert service.terminate() == 0
