"""Reconciling a scan with the manifest: which names get a stat, the canary, what is recorded.

Unit tests on the fakes of our own ports (tests/fakes.py, held to the real adapters by
tests/contract/); the same paths run end to end against the simulator and SQLite in tests/e2e
(request counts of a re-plug) and tests/reliability.
"""

from __future__ import annotations

from rollkeeper.importer.reconcile import ManifestReconciler, names_to_stat
from rollkeeper.store import ARCHIVED, EXCLUDED, FAILED, PENDING
from rollkeeper.store.records import ManifestEntry
from tests.fakes import FakeClock, FakePhoneFiles, FakeStore

UDID = "U1"
FIRST = "/DCIM/100APPLE"
SECOND = "/DCIM/101APPLE"


def entry(name: str, status: str, entry_id: int = 1) -> ManifestEntry:
    return ManifestEntry(entry_id, UDID, FIRST, name, 1, 1, 1, status, True, None, None, "")


def phone_with(files: dict[str, int]) -> FakePhoneFiles:
    """A fake phone holding files of the given sizes (content: that many bytes)."""
    phone = FakePhoneFiles()
    for number, (path, size) in enumerate(sorted(files.items())):
        phone.add_file(path, b"x" * size, 1_000 + number)
    return phone


def archive_everything(store: FakeStore) -> None:
    for item in store.manifest(UDID, present_only=True):
        store.set_file_status(item.id, ARCHIVED)


async def test_the_first_scan_stats_every_file_and_records_it_pending() -> None:
    """A phone never seen: every listed file is stat'ed once (and each folder itself) and
    recorded as pending."""
    phone = phone_with(
        {f"{FIRST}/IMG_0001.JPG": 10, f"{FIRST}/IMG_0002.JPG": 20, f"{SECOND}/A.MOV": 5}
    )
    store = FakeStore()
    result = await ManifestReconciler(store, UDID, FakeClock()).scan(phone)
    assert (result.listing_requests, result.folder_stat_requests, result.stat_requests) == (
        3,
        2,
        3,
    )
    assert phone.requests["GET_FILE_INFO"] == 2 + 3
    assert [(item.phone_path, item.size, item.status) for item in result.present] == [
        (f"{FIRST}/IMG_0001.JPG", 10, PENDING),
        (f"{FIRST}/IMG_0002.JPG", 20, PENDING),
        (f"{SECOND}/A.MOV", 5, PENDING),
    ]
    assert result.folders == [FIRST, SECOND]


async def test_a_replug_with_nothing_new_lists_and_stats_each_folder_and_the_slice() -> None:
    """Once everything is archived, a scan lists each folder, stats each folder itself and the
    rotating slice (here every file: a phone this small is within the 64 of the minimum), and
    reads no folder's manifest; the archived files are counted, not held."""
    phone = phone_with(
        {f"{FIRST}/IMG_0001.JPG": 10, f"{FIRST}/IMG_0002.JPG": 20, f"{SECOND}/A.MOV": 5}
    )
    store = FakeStore()
    await ManifestReconciler(store, UDID, FakeClock()).scan(phone)
    archive_everything(store)
    phone.requests.clear()
    result = await ManifestReconciler(store, UDID, FakeClock()).scan(phone)
    assert phone.requests == {"READ_DIR": 3, "GET_FILE_INFO": 2 + 3}
    assert (result.full_rescan, result.present, result.archived_folder_files) == (False, [], 3)
    assert (result.unchanged_folders, result.rotating_checks) == (2, 3)


async def test_a_photo_replaced_under_the_same_name_is_a_new_file() -> None:
    """IMG_0001 deleted and another saved under its name (another size): the folder's stat
    moved, so every file of that folder is stat'ed, the new identity is pending and the
    archived one is kept, absent; the untouched folder is skipped on its summary."""
    path = f"{FIRST}/IMG_0001.JPG"
    phone = phone_with({path: 10, f"{FIRST}/IMG_0002.JPG": 20, f"{SECOND}/A.MOV": 5})
    store = FakeStore()
    await ManifestReconciler(store, UDID, FakeClock()).scan(phone)
    archive_everything(store)
    phone.remove_file(path)
    phone.add_file(path, b"y" * 11, 5_000)
    result = await ManifestReconciler(store, UDID, FakeClock()).scan(phone)
    assert [(item.name, item.size, item.status) for item in result.present] == [
        ("IMG_0001.JPG", 11, PENDING),
        ("IMG_0002.JPG", 20, ARCHIVED),
    ]
    assert result.unchanged_folders == 1
    assert store.count_archived_not_present(UDID) == 1


async def test_a_file_rewritten_in_place_is_found_by_the_rotating_check() -> None:
    """Content written over a listed name leaves the folder's stat alone; the rotating check
    stats it, sees another identity and compares its folder file by file."""
    path = f"{FIRST}/IMG_0001.JPG"
    phone = phone_with({path: 10, f"{FIRST}/IMG_0002.JPG": 20})
    store = FakeStore()
    await ManifestReconciler(store, UDID, FakeClock()).scan(phone)
    archive_everything(store)
    phone.add_file(path, b"z" * 12, 1_000)
    result = await ManifestReconciler(store, UDID, FakeClock()).scan(phone)
    assert [(item.name, item.size, item.status) for item in result.present] == [
        ("IMG_0001.JPG", 12, PENDING),
        ("IMG_0002.JPG", 20, ARCHIVED),
    ]


async def test_a_phone_erased_and_refilled_under_the_same_names_is_rescanned() -> None:
    """A phone erased and filled again: every folder's stat moved, so every name is stat'ed
    again and the new files are recorded as new identities (the archived ones are kept,
    absent)."""
    path = f"{FIRST}/IMG_0001.JPG"
    phone = phone_with({path: 10, f"{FIRST}/IMG_0002.JPG": 20})
    store = FakeStore()
    await ManifestReconciler(store, UDID, FakeClock()).scan(phone)
    archive_everything(store)
    refilled = phone_with({path: 11, f"{FIRST}/IMG_0002.JPG": 21})
    refilled.folder_mtime_ns[FIRST] += 10**9
    result = await ManifestReconciler(store, UDID, FakeClock()).scan(refilled)
    assert [(item.name, item.size, item.status) for item in result.present] == [
        ("IMG_0001.JPG", 11, PENDING),
        ("IMG_0002.JPG", 21, PENDING),
    ]
    assert store.count_archived_not_present(UDID) == 2


async def test_what_the_phone_no_longer_lists_becomes_absent() -> None:
    """A file deleted on the phone and a whole folder gone are marked absent, not forgotten."""
    phone = phone_with(
        {f"{FIRST}/IMG_0001.JPG": 10, f"{FIRST}/IMG_0002.JPG": 20, f"{SECOND}/A.MOV": 5}
    )
    store = FakeStore()
    await ManifestReconciler(store, UDID, FakeClock()).scan(phone)
    smaller = phone_with({f"{FIRST}/IMG_0001.JPG": 10})
    result = await ManifestReconciler(store, UDID, FakeClock()).scan(smaller)
    assert [item.name for item in result.present] == ["IMG_0001.JPG"]
    assert store.known_folders(UDID) == [FIRST]
    assert {item.name: item.present for item in store.manifest(UDID)} == {
        "IMG_0001.JPG": True,
        "IMG_0002.JPG": False,
        "A.MOV": False,
    }


async def test_a_name_that_is_not_utf8_is_refused_and_never_stated() -> None:
    """A name that is not UTF-8 is refused with its reason and never stat'ed; nothing about it
    reaches the manifest."""
    phone = phone_with({f"{FIRST}/IMG_0001.JPG": 10})
    phone.add_raw_name(FIRST, b"IMG_\xfe.JPG")
    store = FakeStore()
    result = await ManifestReconciler(store, UDID, FakeClock()).scan(phone)
    assert [(item.phone_path, item.reason) for item in result.rejected] == [
        (f"{FIRST}/IMG_\\xfe.JPG", "name_not_utf8")
    ]
    assert phone.requests["GET_FILE_INFO"] == 1 + 1
    assert [item.name for item in store.manifest(UDID)] == ["IMG_0001.JPG"]


def test_only_unsettled_or_unknown_names_need_a_stat() -> None:
    """Archived and excluded names are settled; pending, failed and new ones are stat'ed, in
    listing order; a full rescan stats everything."""
    known = {
        "A.JPG": entry("A.JPG", ARCHIVED),
        "B.JPG": entry("B.JPG", EXCLUDED),
        "C.JPG": entry("C.JPG", FAILED),
        "D.JPG": entry("D.JPG", PENDING),
    }
    names = ["E.JPG", "D.JPG", "C.JPG", "B.JPG", "A.JPG"]
    assert names_to_stat(names, known, full_rescan=False) == ["E.JPG", "D.JPG", "C.JPG"]
    assert names_to_stat(names, known, full_rescan=True) == names
