"""What rollkeeper does with the behaviours of real phones, through a real service process.

Each test plays one behaviour seen on real devices (docs/simulator.md, "Real phones") with the
simulator and checks what the user is told (``rollkeeper status``, the state database) and what
ends up in the archive: USB Restricted Mode and a phone not unlocked since it restarted (named
states, retried when they end), a phone that forgot this computer (Invalid HostID), a folder
refused with PERM_DENIED, a file whose read fails midway, and SD-card imports in ``1xxIMPRT``.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rollkeeper.importer.hashing import hash_file
from rollkeeper.simulator import AfcFaults, SimulatorThread, TrustPolicy
from rollkeeper.store import StateStore
from tests import media
from tests.service_process import ServiceProcess, rollkeeper_command

UDID = "00008110-000A1B2C3D4E5F60"


def status(config_path: Path) -> dict[str, Any]:
    """``rollkeeper status --json``, parsed."""
    completed = subprocess.run(
        rollkeeper_command("--config", str(config_path), "status", "--json"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    document: dict[str, Any] = json.loads(completed.stdout)
    return document


def status_text(config_path: Path) -> str:
    """``rollkeeper status`` as the user reads it."""
    completed = subprocess.run(
        rollkeeper_command("--config", str(config_path), "status"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return completed.stdout


def archived_hashes(archive: Path) -> set[str]:
    """The hashes of every file in the archive, work folder excluded."""
    return {
        hash_file(path)
        for path in archive.rglob("*")
        if path.is_file() and ".rollkeeper" not in path.relative_to(archive).parts
    }


def test_usb_restricted_mode_is_told_and_backed_up_once_unlocked(
    simulator: SimulatorThread,
    start_service: Callable[..., ServiceProcess],
    config_path: Path,
    tmp_path: Path,
) -> None:
    """A phone plugged in after an hour locked (charging overnight) is shown as refusing USB data
    until unlocked, retried at the short interval, and backed up once it is unlocked."""
    roll = media.make_camera_roll(tmp_path / "phone")
    service = start_service()
    simulator.add_phone(UDID, roll.root, locked=True, locked_for_seconds=5 * 3600)

    service.wait_for("phone_unavailable", udid=UDID, state="usb_restricted", count=2)
    text = status_text(config_path)
    assert "refuses USB data until you unlock it" in text
    retries = service.named("backup_scheduled", udid=UDID, reason="usb_restricted")
    assert {event["delay_seconds"] for event in retries} == {0.3}, "no backoff while waiting"

    simulator.unlock(UDID)
    finished = service.wait_for("backup_finished", udid=UDID)[0]
    assert finished["outcome"] == "complete"
    assert finished["files_copied"] == len(roll.files)
    assert service.terminate() == 0


def test_a_phone_not_unlocked_since_it_restarted_is_told_and_backed_up_after(
    simulator: SimulatorThread,
    start_service: Callable[..., ServiceProcess],
    config_path: Path,
    tmp_path: Path,
) -> None:
    """A phone that restarted overnight is shown as waiting for its first unlock (not as an error
    or a Trust question) and is backed up once its passcode was entered."""
    roll = media.make_camera_roll(tmp_path / "phone")
    service = start_service()
    simulator.add_phone(UDID, roll.root, restarted=True)

    service.wait_for("phone_unavailable", udid=UDID, state="waiting_for_first_unlock")
    document = status(config_path)
    [phone] = document["devices"]
    assert phone["state"]["name"] == "waiting_for_first_unlock"
    assert "restarted" in status_text(config_path)

    simulator.unlock(UDID)
    finished = service.wait_for("backup_finished", udid=UDID)[0]
    assert finished["outcome"] == "complete"
    assert service.terminate() == 0


def test_a_phone_that_forgot_this_computer_is_paired_again_once(
    simulator: SimulatorThread,
    start_service: Callable[..., ServiceProcess],
    config_path: Path,
    tmp_path: Path,
) -> None:
    """After "Reset Location & Privacy" the phone refuses our record (Invalid HostID): the user is
    told the phone no longer trusts this computer, Trust is asked once more, and after it the
    phone (re-enumerated) is backed up with nothing copied twice."""
    roll = media.make_camera_roll(tmp_path / "phone")
    service = start_service()
    simulator.add_phone(UDID, roll.root)
    service.wait_for("backup_finished", udid=UDID, outcome="complete")
    simulator.unplug(UDID)
    service.wait_for("phone_detached", udid=UDID)
    # The phone forgets its hosts; usbmuxd keeps the stale record; a new pairing asks again.
    simulator.revoke_trust(UDID, then=TrustPolicy.ACCEPT, pending_polls=3)
    mark = simulator.mark()
    simulator.plug(UDID)

    forgot = service.wait_for(
        "phone_unavailable",
        udid=UDID,
        state="waiting_for_trust",
        predicate=lambda event: "no longer trusts" in event["hint"],
    )[0]
    assert forgot["state"] == "waiting_for_trust"
    assert service.named("pair_record_rejected", udid=UDID)
    second = service.wait_for("backup_finished", udid=UDID, count=2)[1]
    assert second["outcome"] == "complete"
    assert second["files_copied"] == 0
    # The phone trusted this computer anew once (it re-enumerates only then), and the service
    # logged that pairing, even when the re-enumeration cut the record's hand-over to usbmuxd.
    assert len(simulator.events.events("reenumerating", UDID, after=mark)) == 1
    assert service.named("phone_paired", udid=UDID, again=True)
    assert service.terminate() == 0


def test_a_refused_folder_is_not_taken_for_deleted_and_keeps_the_backup_incomplete(
    simulator: SimulatorThread,
    start_service: Callable[..., ServiceProcess],
    config_path: Path,
    tmp_path: Path,
) -> None:
    """A folder the phone refuses to list (PERM_DENIED) inside a readable DCIM: its files already
    backed up are not marked gone from the phone, the run is not "complete" (its content is
    unknown), and the run says which folder was refused."""
    first = media.make_camera_roll(tmp_path / "phone")
    second = media.make_camera_roll(tmp_path / "phone", folder="101APPLE", first_number=100)
    service = start_service()
    simulator.add_phone(UDID, first.root)
    assert service.wait_for("backup_finished", udid=UDID)[0]["outcome"] == "complete"
    simulator.unplug(UDID)
    service.wait_for("phone_detached", udid=UDID)
    simulator.set_faults(UDID, AfcFaults(permission_denied={"/DCIM/101APPLE"}))
    simulator.plug(UDID)

    again = service.wait_for("backup_finished", udid=UDID, count=2)[1]

    assert again["outcome"] == "incomplete"
    store = StateStore.open(tmp_path / "state" / "state.sqlite3", read_only=True)
    try:
        assert store.count_archived_not_present(UDID) == 0
        present = {entry.name for entry in store.manifest(UDID, present_only=True)}
        assert {item.name for item in second.files} <= present
        [last, *_] = store.runs(UDID)
        assert "/DCIM/101APPLE" in last.error
        assert ("/DCIM/101APPLE", "unlistable_folder") in {
            (path, reason) for path, reason, _detail in store.run_failures(last.id)
        }
    finally:
        store.close()
    [phone] = status(config_path)["devices"]
    assert phone["archived_not_on_phone"] == 0
    assert service.terminate() == 0


def test_a_file_whose_read_fails_midway_fails_alone_and_resumes_where_it_broke(
    simulator: SimulatorThread,
    start_service: Callable[..., ServiceProcess],
    tmp_path: Path,
) -> None:
    """An iCloud-optimized original lists and stats fine but its read fails midway: that file
    fails with an I/O error, every other file is archived, the run is incomplete; the retry
    starts at the partial's end and asks nothing again of what already arrived."""
    roll = media.make_camera_roll(tmp_path / "phone", big_video_bytes=9 * 1024 * 1024)
    video = max(roll.files, key=lambda item: item.size)
    broken_at = 5 * 1024 * 1024 + 17
    service = start_service()
    simulator.add_phone(
        UDID, roll.root, faults=AfcFaults(io_error_after_bytes={video.phone_path: broken_at})
    )

    first = service.wait_for("backup_finished", udid=UDID)[0]
    retried = service.wait_for("backup_finished", udid=UDID, count=2)[1]

    assert first["outcome"] == retried["outcome"] == "incomplete"
    assert first["files_failed"] == 1 and first["files_copied"] == len(roll.files) - 1
    stored = archived_hashes(tmp_path / "archive")
    assert {hash_file(item.host_path) for item in roll.files if item is not video} <= stored
    assert hash_file(video.host_path) not in stored
    # Every byte before the failure came once: the retry read nothing of it again.
    assert simulator.afc_bytes_served(UDID)[video.phone_path] == broken_at
    store = StateStore.open(tmp_path / "state" / "state.sqlite3", read_only=True)
    try:
        [entry] = [item for item in store.manifest(UDID) if item.name == video.name]
        # AFC's IO_ERROR is how an offloaded original fails: io_error, failed (so pending)
        # unless the Photos library marks the original as only in iCloud.
        assert (entry.status, entry.failure_reason) == ("failed", "io_error")
    finally:
        store.close()
    assert service.terminate() == 0


def test_sd_card_imports_in_impr_folders_are_backed_up_beside_the_camera_roll(
    simulator: SimulatorThread,
    start_service: Callable[..., ServiceProcess],
    tmp_path: Path,
) -> None:
    """A ``1xxIMPRT`` folder (photos imported from an SD card: camera names, raw files beside
    their JPEGs) beside ``1xxAPPLE`` is backed up too, raw files included, and a camera's
    IMG_0001 with other content than the phone's keeps both."""
    roll = media.make_camera_roll(tmp_path / "phone")
    imported = tmp_path / "phone" / "DCIM" / "100IMPRT"
    taken = datetime(2024, 3, 9, 10, 0, tzinfo=UTC)
    files = [
        media.make_jpeg(imported / "IMG_0001.JPG", taken.replace(tzinfo=None), seed="camera"),
        media.make_jpeg(imported / "DSC_0002.JPG", taken.replace(tzinfo=None), seed="dsc"),
        media.make_blob(imported / "DSC_0002.NEF", 40_000, seed="raw"),
        media.make_blob(imported / "_DSC0003.ARW", 30_000, seed="arw"),
    ]
    for path in files:
        media.set_file_time(path, taken)
    service = start_service()
    simulator.add_phone(UDID, roll.root)

    finished = service.wait_for("backup_finished", udid=UDID)[0]

    assert finished["outcome"] == "complete"
    assert finished["files_copied"] == len(roll.files) + len(files)
    stored = archived_hashes(tmp_path / "archive")
    assert {hash_file(path) for path in files} <= stored
    assert {hash_file(item.host_path) for item in roll.files} <= stored
    assert service.terminate() == 0
