"""Device backups through rollkeeper's runner against the simulated phone: snapshots, the
rename-only writes, unplug mid-backup, pruning, encryption, iCloud Photos, 208 and 105."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pyiosbackup.backup import Backup  # type: ignore[import-untyped]
from pymobiledevice3.services.mobilebackup2 import Mobilebackup2Service

from rollkeeper.device.session import PhoneSession, SessionSettings, open_session
from rollkeeper.device_backup.coordinator import DeviceBackups, DeviceBackupSettings
from rollkeeper.device_backup.manifest import inspect_backup
from rollkeeper.device_backup.runner import DeviceBackupOutcome, run_device_backup
from rollkeeper.device_backup.snapshots import SnapshotFolder, clone_tree
from rollkeeper.simulator import SimulatorThread, short_socket_folder
from rollkeeper.simulator.phone import PhoneState
from rollkeeper.store import StateStore
from tests import media


@pytest.fixture(autouse=True)
def collect_orphaned_requests() -> Iterator[None]:
    """Collect garbage after each test here: an unplug mid-backup leaves pymobiledevice3
    requests whose futures failed unobserved, and asyncio reports those when they are
    collected, which must be in this test, not in whichever test runs next."""
    yield
    gc.collect()


UDID = "00008120-001A2B3C4D5E6F70"


@pytest.fixture
def simulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimulatorThread]:
    """A simulator on a short UNIX socket, exported to this process."""
    folder = short_socket_folder()
    try:
        with SimulatorThread(socket_path=folder / "usbmuxd") as running:
            monkeypatch.setenv("USBMUXD_SOCKET_ADDRESS", running.address)
            yield running
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def tree_digest(folder: Path) -> dict[str, tuple[int, str]]:
    """relative path -> (inode, sha256) of every file: bytes and identity of a snapshot."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            found[str(path.relative_to(folder))] = (
                path.stat().st_ino,
                hashlib.sha256(path.read_bytes()).hexdigest(),
            )
    return found


def file_id(domain: str, relative_path: str) -> str:
    """sha1(domain-relativePath)."""
    return hashlib.sha1(f"{domain}-{relative_path}".encode()).hexdigest()


class Clock:
    """A clock the test moves (snapshot names are by completion second)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def back_up(
    simulator: SimulatorThread, tmp_path: Path, folder: SnapshotFolder, clock: Clock, keep: int = 7
) -> DeviceBackupOutcome:
    """One device backup through open_session + run_device_backup (what the service does)."""
    settings = SessionSettings(usbmux_address=simulator.address, pairing_dir=tmp_path / "pairing")

    async def once() -> DeviceBackupOutcome:
        async with open_session(UDID, settings) as session:
            return await run_device_backup(session.lockdown, folder, UDID, keep=keep, clock=clock)

    return asyncio.run(once())


def test_second_snapshot_shares_unchanged_files_and_never_touches_the_first(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """Two backups: the second is its own complete snapshot, the camera roll's files are hard
    links to the first's, a photo whose bytes changed is a new inode, and the first snapshot
    is byte-for-byte and inode-for-inode unchanged."""
    roll = media.make_camera_roll(tmp_path / "phone")
    simulator.add_phone(UDID, roll.root)
    folder = SnapshotFolder(tmp_path / "device-backups")
    clock = Clock()
    first = back_up(simulator, tmp_path, folder, clock)
    assert first.outcome == "completed", first.error
    assert first.camera_roll_files == len(roll.files)
    snapshot_one = folder.snapshots(UDID)[0]
    before = tree_digest(snapshot_one.folder)

    changed = roll.files[0]
    changed.host_path.write_bytes(b"edited on the phone" + os.urandom(100))
    os.utime(changed.host_path, (1_800_000_000, 1_800_000_000))
    second = back_up(simulator, tmp_path, folder, clock)
    assert second.outcome == "completed", second.error
    assert tree_digest(snapshot_one.folder) == before
    one, two = folder.snapshots(UDID)
    assert one.snapshot_id == first.snapshot_id and two.snapshot_id == second.snapshot_id
    changed_id = file_id("CameraRollDomain", "Media" + changed.phone_path)
    new_copy = two.backup_folder / changed_id[:2] / changed_id
    old_copy = one.backup_folder / changed_id[:2] / changed_id
    assert new_copy.read_bytes() == changed.host_path.read_bytes()
    assert new_copy.stat().st_ino != old_copy.stat().st_ino
    for item in roll.files[1:]:
        identifier = file_id("CameraRollDomain", "Media" + item.phone_path)
        shared = two.backup_folder / identifier[:2] / identifier
        assert (
            shared.stat().st_ino == (one.backup_folder / identifier[:2] / identifier).stat().st_ino
        )
        assert shared.read_bytes() == item.host_path.read_bytes()
    assert second.added_bytes < first.added_bytes


def test_pymobiledevice3s_own_device_link_would_change_the_previous_snapshot(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """Why the writes are renames: stock Mobilebackup2Service writing into a hard-linked working
    copy rewrites the linked inodes (the previous snapshot's metadata and changed files)."""
    roll = media.make_camera_roll(tmp_path / "phone")
    simulator.add_phone(UDID, roll.root)
    folder = SnapshotFolder(tmp_path / "device-backups")
    assert back_up(simulator, tmp_path, folder, Clock()).outcome == "completed"
    snapshot = folder.snapshots(UDID)[0]
    before = tree_digest(snapshot.folder)
    working = tmp_path / "stock" / UDID
    working.mkdir(parents=True)
    clone_tree(snapshot.backup_folder, working)
    # Link the plists too, as a naive snapshotter would.
    for name in ("Status.plist", "Manifest.plist", "Info.plist"):
        (working / name).unlink()
        os.link(snapshot.backup_folder / name, working / name)
    roll.files[0].host_path.write_bytes(b"changed" * 100)

    async def stock_backup() -> None:
        settings = SessionSettings(simulator.address, tmp_path / "pairing")
        async with (
            open_session(UDID, settings) as session,
            Mobilebackup2Service(session.lockdown) as service,
        ):
            await service.backup(full=False, backup_directory=working.parent)

    asyncio.run(stock_backup())
    assert tree_digest(snapshot.folder) != before


def test_unplug_mid_backup_leaves_the_last_snapshot_whole_and_the_next_backup_completes(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """The cable comes out part-way through the second backup: it ends "unplugged", the first
    snapshot is unchanged and still verifies, and after plugging in the next backup completes."""
    roll = media.make_camera_roll(tmp_path / "phone", big_video_bytes=3_000_000)
    simulator.add_phone(UDID, roll.root)
    folder = SnapshotFolder(tmp_path / "device-backups")
    clock = Clock()
    assert back_up(simulator, tmp_path, folder, clock).outcome == "completed"
    snapshot = folder.snapshots(UDID)[0]
    before = tree_digest(snapshot.folder)
    for item in roll.files:
        item.host_path.write_bytes(item.host_path.read_bytes() + b"x")

    def cut(phone: PhoneState) -> None:
        phone.backup.unplug_after_bytes = 1_000_000

    simulator.update_phone(UDID, cut)
    stopped = back_up(simulator, tmp_path, folder, clock)
    assert stopped.outcome == "unplugged"
    assert [item.snapshot_id for item in folder.snapshots(UDID)] == [snapshot.snapshot_id]
    assert tree_digest(snapshot.folder) == before
    assert inspect_backup(snapshot.backup_folder).problems == ()

    simulator.plug(UDID)
    resumed = back_up(simulator, tmp_path, folder, clock)
    assert resumed.outcome == "completed", resumed.error
    latest = folder.latest(UDID)
    assert latest is not None and latest.snapshot_id == resumed.snapshot_id
    for item in roll.files:
        identifier = file_id("CameraRollDomain", "Media" + item.phone_path)
        assert (
            latest.backup_folder / identifier[:2] / identifier
        ).read_bytes() == item.host_path.read_bytes()
    assert tree_digest(snapshot.folder) == before


def test_keep_prunes_the_oldest_only_after_a_new_snapshot_completes(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """With keep = 2 a third completed backup removes the first; a failed one removes none."""
    roll = media.make_camera_roll(tmp_path / "phone")
    simulator.add_phone(UDID, roll.root)
    folder = SnapshotFolder(tmp_path / "device-backups")
    clock = Clock()
    ids = [back_up(simulator, tmp_path, folder, clock, keep=2).snapshot_id for _ in range(2)]
    simulator.update_phone(
        UDID, lambda phone: setattr(phone.backup, "claimed_upload_bytes", 1 << 60)
    )
    full = back_up(simulator, tmp_path, folder, clock, keep=2)
    assert full.outcome == "disk_full"
    assert [snapshot.snapshot_id for snapshot in folder.snapshots(UDID)] == ids
    simulator.update_phone(UDID, lambda phone: setattr(phone.backup, "claimed_upload_bytes", None))
    third = back_up(simulator, tmp_path, folder, clock, keep=2)
    assert third.pruned == [ids[0]]
    assert [snapshot.snapshot_id for snapshot in folder.snapshots(UDID)] == [
        ids[1],
        third.snapshot_id,
    ]


def test_pyiosbackup_reads_rollkeepers_snapshot(simulator: SimulatorThread, tmp_path: Path) -> None:
    """pymobiledevice3's backup reader (pyiosbackup) opens the snapshot and returns each photo's
    bytes from CameraRollDomain."""
    roll = media.make_camera_roll(tmp_path / "phone")
    simulator.add_phone(UDID, roll.root)
    folder = SnapshotFolder(tmp_path / "device-backups")
    assert back_up(simulator, tmp_path, folder, Clock()).outcome == "completed"
    snapshot = folder.snapshots(UDID)[0]
    backup = Backup.from_path(snapshot.backup_folder)
    for item in roll.files:
        entry = backup.get_entry_by_domain_and_path("CameraRollDomain", "Media" + item.phone_path)
        assert entry.read_bytes() == item.host_path.read_bytes()
    unpacked = Mobilebackup2Service.unback_with_pyiosbackup(snapshot.backup_folder)
    assert (unpacked / "CameraRollDomain" / ("Media" + roll.files[0].phone_path)).is_file()


def test_encrypted_and_icloud_photos_backups_say_so(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """An encrypted backup is recorded as encrypted (its Manifest.db is unreadable without the
    password, its files are stored); with iCloud Photos the camera roll is left out."""
    roll = media.make_camera_roll(tmp_path / "phone")
    simulator.add_phone(UDID, roll.root)

    def encrypt(phone: PhoneState) -> None:
        phone.backup.will_encrypt = True

    simulator.update_phone(UDID, encrypt)
    folder = SnapshotFolder(tmp_path / "encrypted")
    encrypted = back_up(simulator, tmp_path, folder, Clock())
    assert encrypted.outcome == "completed", encrypted.error
    assert encrypted.encrypted is True and encrypted.camera_roll_files is None
    assert encrypted.files >= len(roll.files)

    def icloud(phone: PhoneState) -> None:
        phone.backup.will_encrypt = False
        phone.backup.icloud_photos = True

    simulator.update_phone(UDID, icloud)
    plain = back_up(simulator, tmp_path, SnapshotFolder(tmp_path / "icloud"), Clock())
    assert plain.outcome == "completed" and plain.encrypted is False
    assert plain.camera_roll_files == 0


def test_unanswered_passcode_prompt_notifies_once_and_is_not_retried(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """iOS 17 with a passcode: one "enter your passcode" alert when the backup starts, ErrorCode
    208 ends it as passcode_timeout, and the next import of the same plug-in starts none; a new
    plug-in may ask again."""
    roll = media.make_camera_roll(tmp_path / "phone")
    simulator.add_phone(UDID, roll.root)

    def prompt(phone: PhoneState) -> None:
        phone.backup.passcode_prompt = True
        phone.backup.passcode_wait_seconds = 0.3

    simulator.update_phone(UDID, prompt)
    store = StateStore.open(tmp_path / "state.sqlite3")
    alerts: list[tuple[str, str]] = []
    session = SessionSettings(simulator.address, tmp_path / "pairing")

    async def scenario() -> None:
        async def alert(title: str, body: str) -> None:
            alerts.append((title, body))

        backups = DeviceBackups(
            DeviceBackupSettings(True, tmp_path / "device-backups", 24.0, 7), store, alert=alert
        )
        backups.phone_attached(UDID)
        backups.import_finished(UDID, True, session)
        await asyncio.wait_for(backups.finished.wait(), 60)
        backups.finished.clear()
        backups.import_finished(UDID, True, session)  # the same plug-in: no second attempt
        assert not backups.running(UDID)

    asyncio.run(scenario())
    last = store.device_backup_repository.last(UDID)
    assert last is not None and last.outcome == "passcode_timeout"
    assert len(alerts) == 1 and "passcode" in alerts[0][0].lower()
    assert len(simulator.events.events("backup_passcode_requested", UDID)) == 1
    assert not SnapshotFolder(tmp_path / "device-backups").snapshots(UDID)
    store.close()


def test_an_import_about_to_start_stops_the_device_backup_of_that_phone(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """The photo import never waits: a device backup in flight (here waiting at the passcode
    prompt) is stopped when an import of the same phone is about to start, no snapshot is
    made, and the attempt is recorded as stopped."""
    roll = media.make_camera_roll(tmp_path / "phone")
    simulator.add_phone(UDID, roll.root)

    def prompt(phone: PhoneState) -> None:
        phone.backup.passcode_prompt = True
        phone.backup.passcode_wait_seconds = 60.0

    simulator.update_phone(UDID, prompt)
    mark = simulator.mark()
    store = StateStore.open(tmp_path / "state.sqlite3")
    session = SessionSettings(simulator.address, tmp_path / "pairing")

    async def scenario() -> None:
        backups = DeviceBackups(
            DeviceBackupSettings(True, tmp_path / "device-backups", 24.0, 7), store
        )
        backups.phone_attached(UDID)
        backups.import_finished(UDID, True, session)
        assert backups.running(UDID)
        await asyncio.to_thread(simulator.wait_for, "backup_passcode_requested", UDID, after=mark)
        await asyncio.wait_for(backups.before_import(UDID), 10)
        assert not backups.running(UDID)

    asyncio.run(scenario())
    last = store.device_backup_repository.last(UDID)
    assert last is not None and last.outcome == "unplugged" and "import" in last.error
    assert not SnapshotFolder(tmp_path / "device-backups").snapshots(UDID)
    store.close()


def test_an_unplug_while_the_session_closes_keeps_the_completed_snapshot_recorded(
    simulator: SimulatorThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The phone goes away just after the snapshot completed, while the session is closing (the
    service cancels the backup's task, and the cancellation lands in the close): the attempt
    stays recorded as completed with its snapshot, not as "unplugged", so the next plug-in
    within every_hours makes no second one."""
    roll = media.make_camera_roll(tmp_path / "phone")
    simulator.add_phone(UDID, roll.root)
    store = StateStore.open(tmp_path / "state.sqlite3")
    session = SessionSettings(simulator.address, tmp_path / "pairing")
    real_close = PhoneSession.close

    async def close_then_cancelled(self: PhoneSession) -> None:
        await real_close(self)
        raise asyncio.CancelledError

    monkeypatch.setattr(PhoneSession, "close", close_then_cancelled)

    async def scenario() -> None:
        backups = DeviceBackups(
            DeviceBackupSettings(True, tmp_path / "device-backups", 24.0, 7), store
        )
        backups.phone_attached(UDID)
        backups.import_finished(UDID, True, session)
        await asyncio.wait_for(backups.finished.wait(), 60)
        await backups.phone_detached(UDID)
        backups.phone_attached(UDID)
        backups.import_finished(UDID, True, session)
        assert not backups.running(UDID)

    asyncio.run(scenario())
    last = store.device_backup_repository.last(UDID)
    snapshots = SnapshotFolder(tmp_path / "device-backups").snapshots(UDID)
    assert last is not None and last.outcome == "completed"
    assert [snapshot.snapshot_id for snapshot in snapshots] == [last.snapshot_id]
    store.close()
