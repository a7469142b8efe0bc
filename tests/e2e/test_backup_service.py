"""Plug in -> a verified, incremental backup: a real service process, the simulator, real files.

Every test drives ``rollkeeper run`` as a subprocess against the protocol-level simulator through
the unmodified pymobiledevice3 client, and checks the archive on disk and the state database.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from rollkeeper.importer.hashing import hash_file
from rollkeeper.simulator import SimulatorThread
from rollkeeper.simulator.lockdown_values import phone_profile
from rollkeeper.simulator.phone import AfcFaults, TrustPolicy
from rollkeeper.store import StateStore
from tests import media
from tests.service_process import ServiceProcess

UDID = "00008110-000A1B2C3D4E5F60"
OTHER_UDID = "00008030-0011223344556677"


def archive_files(archive: Path) -> dict[str, str]:
    """Relative path -> hash of every file in the archive, work folder excluded."""
    return {
        str(path.relative_to(archive)): hash_file(path)
        for path in sorted(archive.rglob("*"))
        if path.is_file() and ".rollkeeper" not in path.relative_to(archive).parts
    }


def work_partials(archive: Path) -> list[Path]:
    """The partial files in the archive's work folder: files whose copy has not finished."""
    return sorted((archive / ".rollkeeper").rglob("*.partial"))


#: (usbmuxd build, phone generation, size of the big video): the simulator's generic blend with
#: a 300 MiB video, and every real usbmuxd build with every phone generation (docs/simulator.md,
#: "Profiles") with a smaller one.
PROFILES = [
    pytest.param("generic", None, 300 * 1024 * 1024, id="generic"),
    *(
        pytest.param(usbmuxd, phone, 24 * 1024 * 1024, id=f"{usbmuxd}-{phone}")
        for usbmuxd in ("linux-usbmuxd", "macos-usbmuxd")
        for phone in ("iphone-ios15", "iphone-ios18", "iphone-ios26")
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize(("usbmuxd_profile", "phone", "big_video_bytes"), PROFILES)
def test_plug_in_backs_up_every_file_once_into_its_date_folder(
    simulator: SimulatorThread,
    start_service: Callable[..., ServiceProcess],
    tmp_path: Path,
    phone: str | None,
    big_video_bytes: int,
) -> None:
    """Plugging a phone in copies every file once, with its bytes, into the folder of its capture
    month (a group's members share one folder), leaves no partial behind and records each file as
    archived: under every usbmuxd build and with every phone generation."""
    roll = media.make_camera_roll(tmp_path / "phone", big_video_bytes=big_video_bytes)
    service = start_service()
    identity = phone_profile(phone, name="Ana's iPhone") if phone is not None else None
    udid = identity.udid if identity is not None else UDID
    simulator.add_phone(udid, roll.root, name="Ana's iPhone", identity=identity)
    finished = service.wait_for("backup_finished", udid=udid, timeout=120)[0]
    assert finished["outcome"] == "complete"
    assert finished["files_copied"] == len(roll.files)

    archive = tmp_path / "archive"
    stored = archive_files(archive)
    assert len(stored) == len(roll.files), "every file once, nothing twice"
    by_name = {Path(relative).name: relative for relative in stored}
    for expected in roll.files:
        relative = by_name[expected.name]
        folder_date = expected.group_capture_local or expected.capture_local
        assert relative == f"{folder_date:%Y}/{folder_date:%Y-%m}/{expected.name}", expected
        assert stored[relative] == hash_file(expected.host_path)
    for members in roll.groups().values():
        assert len({Path(by_name[member.name]).parent for member in members}) == 1
    assert work_partials(archive) == [], "every partial was placed under its final name"

    store = StateStore.open(tmp_path / "state" / "state.sqlite3", read_only=True)
    entries = store.manifest(udid)
    assert {entry.status for entry in entries} == {"archived"}
    assert all(store.archive_entry(entry.archive_path or "") for entry in entries)
    device = store.device(udid)
    assert device is not None and device.name == "Ana's iPhone"
    if identity is not None:
        assert device.product_version == identity.product_version
    store.close()
    assert service.terminate() == 0


def test_replug_copies_only_new_files_and_nothing_new_costs_no_per_file_stat(
    simulator: SimulatorThread, start_service: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    """A replug copies only the files added since the last run; with nothing new it lists the
    folders, stats each folder itself and the rotating check's slice, and reads nothing."""
    roll = media.make_camera_roll(tmp_path / "phone")
    service = start_service()
    simulator.add_phone(UDID, roll.root)
    service.wait_for("backup_finished", udid=UDID)

    simulator.unplug(UDID)
    service.wait_for("phone_detached", udid=UDID)
    added = media.make_camera_roll(tmp_path / "phone", first_number=100)
    simulator.plug(UDID)
    second = service.wait_for("backup_finished", count=2, udid=UDID)[1]
    assert second["outcome"] == "complete"
    assert second["files_copied"] == len(added.files)

    simulator.unplug(UDID)
    service.wait_for("phone_detached", udid=UDID, count=2)
    simulator.reset_counts(UDID)
    simulator.plug(UDID)
    third = service.wait_for("backup_finished", count=3, udid=UDID)[2]
    assert third["files_copied"] == 0
    requests = simulator.afc_request_counts(UDID)
    # One listing of /DCIM and one of its folder, the folder's own stat, and the rotating
    # check: at least 64 settled files (here every file: the phone holds fewer).
    assert requests["READ_DIR"] == 2
    assert requests["GET_FILE_INFO"] == 1 + min(64, len(roll.files) + len(added.files))
    assert requests["READ"] == 0
    assert service.terminate() == 0


def test_same_names_with_new_content_keep_both_versions(
    simulator: SimulatorThread, start_service: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    """A phone erased and refilled under the same names keeps both contents in the archive, the old
    and the new."""
    first = media.make_camera_roll(tmp_path / "phone")
    service = start_service()
    simulator.add_phone(UDID, first.root)
    service.wait_for("backup_finished", udid=UDID)
    old_hashes = {item.name: hash_file(item.host_path) for item in first.files}

    simulator.unplug(UDID)
    service.wait_for("phone_detached", udid=UDID)
    # The phone was erased and filled again: the same names, other content and times.
    shutil.rmtree(tmp_path / "phone" / "DCIM")
    from datetime import UTC, datetime

    second = media.make_camera_roll(tmp_path / "phone", file_time=datetime(2025, 6, 1, tzinfo=UTC))
    simulator.plug(UDID)
    finished = service.wait_for("backup_finished", count=2, udid=UDID)[1]
    assert finished["outcome"] == "complete"
    stored = archive_files(tmp_path / "archive")
    stored_hashes = set(stored.values())
    for item in second.files:
        assert hash_file(item.host_path) in stored_hashes
        assert old_hashes[item.name] in stored_hashes
    assert service.terminate() == 0


def test_unplug_mid_video_resumes_at_the_partial_offset(
    simulator: SimulatorThread, start_service: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    """An unplug in the middle of a video leaves only a partial in the work folder, nothing under a
    final name; the next plug resumes at the partial's end, so the phone sends at most the chunk
    in flight twice."""
    root = tmp_path / "phone"
    video = media.make_blob(root / "DCIM" / "100APPLE" / "IMG_0001.MOV", 40 * 1024 * 1024)
    phone_path = "/DCIM/100APPLE/IMG_0001.MOV"
    cut_at = 17 * 1024 * 1024 + 12345
    service = start_service()
    simulator.add_phone(UDID, root, faults=AfcFaults(unplug_after_bytes={phone_path: cut_at}))
    service.wait_for("phone_detached", udid=UDID)
    service.wait_for("backup_finished", udid=UDID, outcome="interrupted")
    # The cut video is only a partial in the work folder: no final name holds part of it.
    assert archive_files(tmp_path / "archive") == {}
    [partial] = work_partials(tmp_path / "archive")
    kept_bytes = partial.stat().st_size
    assert 0 < kept_bytes <= cut_at

    simulator.set_faults(UDID, AfcFaults())
    simulator.reset_counts(UDID)
    simulator.plug(UDID)
    finished = service.wait_for("backup_finished", udid=UDID, outcome="complete")[0]
    assert finished["files_copied"] == 1
    resumed = service.wait_for("partial_resumed", udid=UDID)[0]
    assert resumed["offset"] == kept_bytes, "the copy resumed at the end of the partial"
    # Everything before the last chunk written survived the unplug.
    assert resumed["offset"] >= cut_at - 2 * 4 * 1024 * 1024
    served_again = simulator.afc_bytes_served(UDID)[phone_path]
    assert served_again == video.stat().st_size - resumed["offset"]
    # Bytes the phone had to send twice: at most the one chunk in flight when the cable went.
    read_twice = served_again - (video.stat().st_size - cut_at)
    assert 0 <= read_twice <= 4 * 1024 * 1024
    stored = archive_files(tmp_path / "archive")
    assert list(stored.values()) == [hash_file(video)]
    assert service.terminate() == 0


def test_locked_then_unlocked_phone_is_retried_and_shown(
    simulator: SimulatorThread, start_service: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    """A locked phone is recorded as waiting for unlock and is backed up once it is unlocked."""
    roll = media.make_camera_roll(tmp_path / "phone")
    service = start_service()
    simulator.add_phone(UDID, roll.root, locked=True)
    service.wait_for("phone_unavailable", udid=UDID, state="waiting_for_unlock")
    store = StateStore.open(tmp_path / "state" / "state.sqlite3", read_only=True)
    device = store.device(UDID)
    assert device is not None and device.state == "waiting_for_unlock"
    simulator.unlock(UDID)
    finished = service.wait_for("backup_finished", udid=UDID)[0]
    assert finished["outcome"] == "complete"
    device = store.device(UDID)
    assert device is not None and device.state == "up_to_date"
    store.close()
    assert service.terminate() == 0


def test_trust_dialog_pending_then_accepted(
    simulator: SimulatorThread, start_service: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    """A phone whose Trust dialog is still open is shown as waiting for trust, then backed up once
    trusted, with its pair record 0600 in a 0700 folder of ours."""
    roll = media.make_camera_roll(tmp_path / "phone")
    service = start_service()
    simulator.add_phone(UDID, roll.root, trust=TrustPolicy.ACCEPT, pending_polls=2)
    service.wait_for("phone_unavailable", udid=UDID, state="waiting_for_trust")
    finished = service.wait_for("backup_finished", udid=UDID)[0]
    assert finished["outcome"] == "complete"
    pairing = tmp_path / "pairing"
    assert (pairing.stat().st_mode & 0o777) == 0o700
    records = [path for path in pairing.iterdir() if path.is_file()]
    assert records, "the pair record is kept in our own folder"
    assert all((path.stat().st_mode & 0o777) == 0o600 for path in records)
    assert service.terminate() == 0


def test_dont_trust_stops_retrying_until_replugged(
    simulator: SimulatorThread, start_service: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    """After Don't Trust the service schedules no retry; replugging the phone, now trusting, backs
    it up."""
    roll = media.make_camera_roll(tmp_path / "phone")
    service = start_service()
    simulator.add_phone(UDID, roll.root, trust=TrustPolicy.DENY, pending_polls=0)
    service.wait_for("phone_unavailable", udid=UDID, state="trust_denied")
    store = StateStore.open(tmp_path / "state" / "state.sqlite3", read_only=True)
    device = store.device(UDID)
    assert device is not None and device.state == "trust_denied"
    # No retry is scheduled after Don't Trust: the only schedule is the one from the attach.
    assert len(service.named("backup_scheduled", udid=UDID)) == 1
    simulator.set_trust(UDID, TrustPolicy.ACCEPT, pending_polls=0)
    simulator.unplug(UDID)
    service.wait_for("phone_detached", udid=UDID)
    simulator.plug(UDID)
    finished = service.wait_for("backup_finished", udid=UDID)[0]
    assert finished["outcome"] == "complete"
    # By now any retry scheduled after Don't Trust is in the log too: there was none. The first
    # two schedules are the two attaches (tapping Trust then re-enumerates the phone: more may
    # follow).
    reasons = [event["reason"] for event in service.named("backup_scheduled", udid=UDID)]
    assert reasons[:2] == ["attached", "attached"]
    assert "trust_denied" not in reasons
    store.close()
    assert service.terminate() == 0


def test_two_phones_at_once_are_both_backed_up(
    simulator: SimulatorThread, start_service: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    """Two phones plugged in at once are both backed up and each is recorded under its own name."""
    first = media.make_camera_roll(tmp_path / "phone-a")
    second = media.make_camera_roll(tmp_path / "phone-b", first_number=500)
    service = start_service()
    simulator.add_phone(UDID, first.root, name="Ana's iPhone")
    simulator.add_phone(OTHER_UDID, second.root, name="Bo's iPhone")
    service.wait_for("backup_finished", udid=UDID, outcome="complete")
    service.wait_for("backup_finished", udid=OTHER_UDID, outcome="complete")
    stored = set(archive_files(tmp_path / "archive").values())
    for item in (*first.files, *second.files):
        assert hash_file(item.host_path) in stored
    store = StateStore.open(tmp_path / "state" / "state.sqlite3", read_only=True)
    names = {device.udid: device.name for device in store.devices()}
    assert names == {UDID: "Ana's iPhone", OTHER_UDID: "Bo's iPhone"}
    store.close()
    assert service.terminate() == 0


def test_a_phone_excluded_by_udid_is_not_touched(
    simulator: SimulatorThread, start_service: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    """A phone excluded by UDID gets no session (no Trust dialog, no AFC request) and none of its
    files is archived, while the other phone is backed up."""
    from tests.service_process import write_config

    config = write_config(
        tmp_path / "exclude.toml", tmp_path, filters={"exclude_devices": [OTHER_UDID]}
    )
    excluded = media.make_camera_roll(tmp_path / "phone-excluded")
    included = media.make_camera_roll(tmp_path / "phone-included", first_number=700)
    service = start_service(config=config)
    simulator.add_phone(OTHER_UDID, excluded.root, trust=TrustPolicy.ACCEPT, pending_polls=100)
    simulator.add_phone(UDID, included.root)
    service.wait_for("device_not_selected", udid=OTHER_UDID)
    service.wait_for("backup_finished", udid=UDID, outcome="complete")
    # Not even a session: an untrusted excluded phone never shows the Trust dialog.
    assert simulator.afc_request_counts(OTHER_UDID) == {}
    assert not service.named("phone_unavailable", udid=OTHER_UDID)
    stored = set(archive_files(tmp_path / "archive").values())
    assert not {hash_file(item.host_path) for item in excluded.files} & stored
    assert service.terminate() == 0
