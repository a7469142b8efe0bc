"""A hostile phone: bad names, lying stats, growing files, read errors, far and huge numbers.

A real ``rollkeeper run`` process backs up a simulated phone whose listing and replies are
hostile (the simulator's fault injection) beside an ordinary camera roll. Checked: nothing is
written outside the archive (the whole temporary tree is compared before and after, and the
places the ``../`` names point at stay empty); each refused item is logged once per run with its
reason (``item_rejected`` for what the scan refuses, ``file_failed`` for what fails while being
copied); everything else is backed up with its hash; the service stays up and backs up the next
phone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rollkeeper.importer.hashing import hash_file
from rollkeeper.simulator import SimulatorThread
from rollkeeper.simulator.phone import AfcFaults, HostileEntry
from rollkeeper.store import ARCHIVED, StateStore
from tests import media
from tests.reliability.harness import archive_files, snapshot_tree, stray_partials
from tests.service_process import ServiceProcess

UDID = "00008110-00AA0000000000E1"
OTHER_UDID = "00008110-00AA0000000000E2"
FOLDER = "/DCIM/100APPLE"
NS_2100 = int(datetime(2100, 6, 1, 12, tzinfo=UTC).timestamp()) * 10**9

#: Entries that exist only in the listing, and the reason each must be refused with.
HOSTILE_NAMES: list[tuple[HostileEntry, str]] = [
    (HostileEntry("../../../../../../tmp/rollkeeper-escape.JPG"), "separator"),
    (HostileEntry("/etc/rollkeeper-escape.JPG"), "separator"),
    (HostileEntry("IMG_7001\x1b[31m.JPG"), "control_character"),
    (HostileEntry("IMG_7002\n.JPG"), "control_character"),
    (HostileEntry("A" * 4096 + ".JPG"), "too_long"),
    (HostileEntry(".IMG_7003.JPG"), "hidden"),
    (HostileEntry("IMG_7004.JPG", kind="S_IFLNK", link_target="/etc/shadow"), "symbolic_link"),
    (HostileEntry("IMG_7005.JPG", kind="S_IFDIR"), "folder_where_file_expected"),
]


def _make_phone(root: Path) -> tuple[AfcFaults, dict[str, str], dict[str, str]]:
    """Faults, the reasons expected per phone path, and the hashes that must be archived."""
    media.make_camera_roll(root)
    folder = root / "DCIM" / "100APPLE"
    for number in range(8001, 8011):
        media.make_blob(folder / f"IMG_{number}.JPG", 50_000 + number, seed=f"hostile/{number}")
    path = f"{FOLDER}/IMG_{{}}.JPG".format
    faults = AfcFaults(
        grows_by_bytes={path(8002): 100},
        read_error_after_bytes={path(8003): 20_000},
        stat_missing_keys={
            path(8004): {"st_size"},
            path(8005): {"st_birthtime", "st_mtime"},
            path(8006): {"st_ifmt", "st_blocks", "st_nlink"},
        },
        # Beyond what SQLite can store: the size is refused, the time clamped (year 2262).
        stat_size={path(8001): 1000, path(8010): 2**64},
        stat_birthtime_ns={path(8007): 0, path(8008): NS_2100, path(8009): 2**64 + 5},
        stat_mtime_ns={path(8007): 0, path(8008): NS_2100, path(8009): 2**64 + 5},
        hostile_entries={
            FOLDER: [entry for entry, _reason in HOSTILE_NAMES]
            # A NUL splits the name in the listing: "IMG_7006" (not media) and "/../x.JPG".
            + [HostileEntry("IMG_7006\x00/../rollkeeper-escape.JPG")],
            "/DCIM": [HostileEntry("../../rollkeeper-escape", kind="S_IFDIR")],
        },
    )
    expected_reasons = {
        path(8001): "size_mismatch",
        path(8002): "size_mismatch",
        path(8003): "read_error",
        path(8004): "stat_without_size",
        path(8005): "stat_without_times",
        path(8010): "stat_size_out_of_range",
    }
    refused = set(expected_reasons)
    wanted = {
        "/" + str(item.relative_to(root)): hash_file(item)
        for item in sorted(folder.iterdir())
        if "/" + str(item.relative_to(root)) not in refused
    }
    return faults, expected_reasons, wanted


@pytest.mark.slow
def test_hostile_phone_writes_nothing_outside_the_archive_and_backs_up_the_rest(
    simulator: SimulatorThread, start_service: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    """A hostile phone (escaping names, lying stats, growing files, read errors, far dates) gets
    nothing written outside the archive, each refused item logged once with its reason, and the
    rest backed up; the service then serves the next phone."""
    faults, failing, wanted = _make_phone(tmp_path / "phone")
    archive = tmp_path / "archive"
    changing = [archive, tmp_path / "state", tmp_path / "pairing"]
    before = snapshot_tree(tmp_path, skip=changing)
    escapes = [
        Path("/tmp/rollkeeper-escape.JPG"),
        Path("/etc/rollkeeper-escape.JPG"),
        tmp_path.parent / "rollkeeper-escape.JPG",
        archive.parent / "rollkeeper-escape",
    ]
    assert not any(path.exists() for path in escapes)

    service = start_service()
    simulator.add_phone(UDID, tmp_path / "phone", faults=faults)
    finished = service.wait_for("backup_finished", udid=UDID)[0]
    assert finished["outcome"] == "incomplete"
    run_id = finished["run_id"]

    # Each refused item once, with its reason, in this run.
    rejected = service.named("item_rejected", udid=UDID, run_id=run_id)
    failed = service.named("file_failed", udid=UDID, run_id=run_id)
    reasons = Counter(event["reason"] for event in rejected)
    for _entry, reason in HOSTILE_NAMES:
        assert reasons[reason] >= 1, (reason, rejected)
    per_path = Counter(event["phone_path"] for event in rejected + failed)
    assert [path for path, count in per_path.items() if count > 1] == []
    by_path = {event["phone_path"]: event["reason"] for event in rejected + failed}
    for phone_path, reason in failing.items():
        assert by_path.get(phone_path) == reason, (phone_path, by_path)
    refused_count = len(HOSTILE_NAMES) + 2 + len(failing)  # + the NUL piece, the /DCIM folder
    assert len(rejected) + len(failed) == refused_count, sorted(by_path.items())

    # The rest is backed up, each file once with its hash; the far dates are kept as dates.
    stored = archive_files(archive)
    assert sorted(stored.values()) == sorted(wanted.values())
    folders = {Path(relative).parts[0] for relative in stored}
    assert {"1970", "2100", "2262"} <= folders, folders
    assert stray_partials(archive) == []

    # Nothing outside the archive changed, and no escape target exists.
    assert snapshot_tree(tmp_path, skip=changing) == before
    assert not any(path.exists() for path in escapes)
    for path in archive.rglob("*"):
        assert path.resolve().is_relative_to(archive.resolve()), path
        assert not path.is_symlink(), path

    store = StateStore.open(tmp_path / "state" / "state.sqlite3", read_only=True)
    statuses = {entry.phone_path: entry.status for entry in store.manifest(UDID)}
    store.close()
    for phone_path in failing:
        assert statuses.get(phone_path, "not in manifest") != ARCHIVED

    # The service is still up and backs up the next phone.
    other = media.make_camera_roll(tmp_path / "other-phone", first_number=300)
    simulator.add_phone(OTHER_UDID, other.root)
    assert service.wait_for("backup_finished", udid=OTHER_UDID)[0]["outcome"] == "complete"
    assert service.process.poll() is None
    assert service.terminate() == 0
