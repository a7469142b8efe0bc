"""The re-plug's rules: the names' fingerprint, the rotating slice and the bound it gives, the
full check after ``schedule.full_check_days``.

The rules are pure (rollkeeper.domain.folder_summary); the bound is counted in scans of the
reconciler on the fakes of our own ports with an injected clock (tests/fakes.py, held to the
real adapters by tests/contract/). The same bound runs against the real service and the
simulator in tests/e2e/test_replug_changes.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rollkeeper.domain.folder_summary import (
    FolderStat,
    full_check_due,
    names_fingerprint,
    rotating_slice_size,
)
from rollkeeper.importer.reconcile import ManifestReconciler
from rollkeeper.store import ARCHIVED, PENDING
from tests.fakes import FakeClock, FakePhoneFiles, FakeStore

UDID = "U1"
MOMENT = datetime(2024, 5, 1, 12, tzinfo=UTC)


def test_the_fingerprint_depends_on_the_names_not_their_order() -> None:
    """The same names in another order give the same fingerprint; one name more, or another
    name, gives another."""
    assert names_fingerprint(["B.JPG", "A.JPG"]) == names_fingerprint(["A.JPG", "B.JPG"])
    assert names_fingerprint(["A.JPG"]) != names_fingerprint(["A.JPG", "B.JPG"])
    assert names_fingerprint(["AB.JPG"]) != names_fingerprint(["A", "B.JPG"])


def test_the_slice_is_at_least_64_and_a_fiftieth_rounded_up() -> None:
    """max(64, ceil(files / 50)): 64 for small phones, 2,000 at 100,000 files."""
    assert [rotating_slice_size(count) for count in (1, 3_200, 3_201, 100_000)] == [
        64,
        64,
        65,
        2_000,
    ]


def test_a_full_check_is_due_when_never_done_or_the_period_has_passed() -> None:
    """Never done: due. Done less than the period ago: not due; the period or more: due."""
    assert full_check_due(None, MOMENT, 7)
    assert not full_check_due(MOMENT, MOMENT + timedelta(days=6, hours=23), 7)
    assert full_check_due(MOMENT, MOMENT + timedelta(days=7), 7)


def test_a_stat_without_every_field_never_vouches_for_a_folder() -> None:
    """A folder stat missing a field is not complete."""
    assert FolderStat(1, 2, 3).complete
    assert not FolderStat(1, None, 3).complete


def phone_of(files: int, per_folder: int = 500) -> FakePhoneFiles:
    phone = FakePhoneFiles()
    for number in range(files):
        folder = f"/DCIM/{100 + number // per_folder}APPLE"
        phone.add_file(f"{folder}/IMG_{number:05d}.JPG", b"x", 1_000 + number)
    return phone


async def backed_up(phone: FakePhoneFiles, clock: FakeClock) -> FakeStore:
    """A store in which every file of the phone is archived, after the first scan."""
    store = FakeStore()
    await ManifestReconciler(store, UDID, clock).scan(phone)
    for entry in store.manifest(UDID, present_only=True):
        store.set_file_status(entry.id, ARCHIVED)
    return store


async def scans_until_found(
    store: FakeStore, phone: FakePhoneFiles, clock: FakeClock, path: str, limit: int
) -> int:
    """Scan (one hour apart) until the rewritten file is pending; how many scans it took."""
    for scan in range(1, limit + 1):
        clock.advance(3600)
        result = await ManifestReconciler(store, UDID, clock).scan(phone)
        if any(entry.phone_path == path and entry.status == PENDING for entry in result.present):
            return scan
    return limit + 1


async def test_a_file_rewritten_in_place_is_found_within_50_scans() -> None:
    """The bound of the rotating check: on a phone of 3,250 files (slice 65), a file rewritten
    in place (its folder's stat unchanged) just after its own check is found within
    ceil(3,250 / 65) = 50 scans, and not by the folder stat (it is not found at once)."""
    clock = FakeClock(MOMENT)
    phone = phone_of(3_250)
    store = await backed_up(phone, clock)
    # Every file has had one check; the file that comes last in the order is the worst case.
    order = store.least_recently_checked(UDID, 3_250)
    last = order[-1]
    path = f"{last.folder}/{last.name}"
    phone.add_file(path, b"rewritten in place", 77)
    found = await scans_until_found(store, phone, clock, path, limit=60)
    assert 1 < found <= 50


async def test_the_full_check_finds_it_after_the_period_whatever_the_rotation() -> None:
    """A file the rotation would reach only in many scans is found by the first scan after
    ``full_check_days``, which stats every file."""
    clock = FakeClock(MOMENT)
    phone = phone_of(3_250)
    store = await backed_up(phone, clock)
    last = store.least_recently_checked(UDID, 3_250)[-1]
    path = f"{last.folder}/{last.name}"
    phone.add_file(path, b"rewritten in place", 77)
    clock.advance(3 * 24 * 3600)
    reconciler = ManifestReconciler(store, UDID, clock, full_check_days=3)
    result = await reconciler.scan(phone)
    assert result.full_rescan
    assert [entry.phone_path for entry in result.present if entry.status == PENDING] == [path]
    clock.advance(3600)
    later = await ManifestReconciler(store, UDID, clock, full_check_days=3).scan(phone)
    assert not later.full_rescan
