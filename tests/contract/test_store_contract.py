"""The store port: the in-memory fake keeps the manifest, archive and runs as the SQLite store does.

The real side is :class:`rollkeeper.store.StateStore` on a real SQLite file; the fake is
:class:`tests.fakes.FakeStore`. Every assertion goes through the ``BackupStore`` port, and reads
back through the readers both share (``manifest``, ``device``, ``runs``, ``run_failures``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import pytest

from rollkeeper.domain.folder_summary import FolderStat, names_fingerprint
from rollkeeper.ports import BackupStore
from rollkeeper.store import ARCHIVED, EXCLUDED, FAILED, PENDING, StateStore
from rollkeeper.store.phone_folders import FolderSummary
from rollkeeper.store.records import (
    DeviceRecord,
    ManifestEntry,
    RunCounts,
    RunRecord,
    utc_now_text,
)
from tests.fakes import FakeStore

PHONE = "U1"
FOLDER = "/DCIM/100APPLE"
OTHER_FOLDER = "/DCIM/101APPLE"
MOMENT = datetime(2024, 5, 1, 12, tzinfo=UTC)


class StoreUnderTest(BackupStore, Protocol):
    """The port, plus the readers the tests read it back with."""

    def manifest(
        self, udid: str | None = None, *, present_only: bool = False
    ) -> list[ManifestEntry]: ...

    def device(self, udid: str) -> DeviceRecord | None: ...

    def runs(self, udid: str | None = None, limit: int = 50) -> list[RunRecord]: ...

    def run_failures(self, run_id: int) -> list[tuple[str, str, str]]: ...


@pytest.fixture(params=["fake", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreUnderTest]:
    """The in-memory fake, or the real store on a SQLite file."""
    if request.param == "fake":
        yield FakeStore()
        return
    real = StateStore.open(tmp_path / "state.sqlite3")
    try:
        yield real
    finally:
        real.close()


def observe(store: StoreUnderTest, folder: str, *files: tuple[str, int, int]) -> None:
    """Observe files given as (name, size, birth time), modified time = birth time."""
    store.observe_files(PHONE, folder, [(name, size, birth, birth) for name, size, birth in files])


def archive(store: StoreUnderTest, entry: ManifestEntry, path: str, content_hash: str) -> None:
    store.record_archived(
        entry.id,
        relative_path=path,
        content_hash=content_hash,
        hash_algorithm="blake3",
        size=entry.size,
        origin="backup",
        capture_time=None,
        capture_source=None,
    )


def test_new_files_are_pending_and_present(store: StoreUnderTest) -> None:
    """Observed files are present, pending, with the identity they were observed with."""
    observe(store, FOLDER, ("IMG_0001.HEIC", 100, 1_000), ("IMG_0002.JPG", 50, 2_000))
    observe(store, OTHER_FOLDER, ("IMG_0101.MOV", 900, 3_000))
    present = store.present_files(PHONE, FOLDER)
    assert sorted(present) == ["IMG_0001.HEIC", "IMG_0002.JPG"]
    first = present["IMG_0001.HEIC"]
    assert (first.size, first.birth_time_ns, first.modified_time_ns) == (100, 1_000, 1_000)
    assert (first.status, first.present, first.folder) == (PENDING, True, FOLDER)
    assert first.phone_path == f"{FOLDER}/IMG_0001.HEIC"
    assert present["IMG_0002.JPG"].id != first.id
    assert store.known_folders(PHONE) == [FOLDER, OTHER_FOLDER]
    assert store.known_folders("another phone") == []
    assert store.status_counts(PHONE) == {PENDING: 3}


def test_the_same_identity_observed_again_keeps_its_status(store: StoreUnderTest) -> None:
    """Seeing a known file again changes nothing about it (same id, same status and reason)."""
    observe(store, FOLDER, ("IMG_0002.JPG", 5, 7))
    entry = store.present_files(PHONE, FOLDER)["IMG_0002.JPG"]
    store.set_file_status(entry.id, FAILED, "read_error")
    observe(store, FOLDER, ("IMG_0002.JPG", 5, 7))
    again = store.present_files(PHONE, FOLDER)["IMG_0002.JPG"]
    assert (again.id, again.status, again.failure_reason) == (entry.id, FAILED, "read_error")


def test_another_identity_under_a_present_name_retires_the_old_one(store: StoreUnderTest) -> None:
    """A name seen with another size or birth time is a new file; the old identity is kept,
    absent, with its status (the archive never forgets a file)."""
    observe(store, FOLDER, ("IMG_0001.HEIC", 100, 1_000))
    first = store.present_files(PHONE, FOLDER)["IMG_0001.HEIC"]
    archive(store, first, "2020/2020-01/IMG_0001.HEIC", "aa")
    observe(store, FOLDER, ("IMG_0001.HEIC", 200, 2_000))
    second = store.present_files(PHONE, FOLDER)["IMG_0001.HEIC"]
    assert second.id != first.id
    assert (second.status, second.size) == (PENDING, 200)
    entries = {entry.id: entry for entry in store.manifest(PHONE)}
    assert (entries[first.id].present, entries[first.id].status) == (False, ARCHIVED)
    assert [entry.id for entry in store.manifest(PHONE, present_only=True)] == [second.id]
    assert store.count_archived_not_present(PHONE) == 1


def test_files_no_longer_listed_become_absent_and_can_come_back(store: StoreUnderTest) -> None:
    """mark_absent counts only files that were present; an absent identity observed again is
    present once more with the status it had."""
    observe(store, FOLDER, ("A.JPG", 1, 1), ("B.JPG", 2, 2), ("C.JPG", 3, 3))
    entry = store.present_files(PHONE, FOLDER)["B.JPG"]
    store.set_file_status(entry.id, EXCLUDED, "screenshot")
    assert store.mark_absent(PHONE, FOLDER, ["B.JPG", "NEVER_SEEN.JPG"]) == 1
    assert store.mark_absent(PHONE, FOLDER, ["B.JPG"]) == 0
    assert sorted(store.present_files(PHONE, FOLDER)) == ["A.JPG", "C.JPG"]
    observe(store, FOLDER, ("B.JPG", 2, 2))
    back = store.present_files(PHONE, FOLDER)["B.JPG"]
    assert (back.id, back.status, back.failure_reason) == (entry.id, EXCLUDED, "screenshot")


def test_a_folder_gone_from_the_phone_takes_its_files_with_it(store: StoreUnderTest) -> None:
    """mark_folder_absent marks every present file of the folder absent and says how many;
    the folder is no longer known, the other stays."""
    observe(store, FOLDER, ("A.JPG", 1, 1), ("B.JPG", 2, 2))
    observe(store, OTHER_FOLDER, ("C.JPG", 3, 3))
    assert store.mark_folder_absent(PHONE, FOLDER) == 2
    assert store.mark_folder_absent(PHONE, FOLDER) == 0
    assert store.present_files(PHONE, FOLDER) == {}
    assert store.known_folders(PHONE) == [OTHER_FOLDER]
    store.touch_present(PHONE, OTHER_FOLDER)
    assert sorted(store.present_files(PHONE, OTHER_FOLDER)) == ["C.JPG"]


def test_recording_a_file_archived_vouches_for_its_path(store: StoreUnderTest) -> None:
    """record_archived creates the archive record (or keeps the one already at that path),
    marks the phone file archived there and clears its failure reason."""
    observe(store, FOLDER, ("A.JPG", 10, 1), ("B.JPG", 10, 2))
    present = store.present_files(PHONE, FOLDER)
    store.set_file_status(present["A.JPG"].id, FAILED, "read_error")
    archive(store, present["A.JPG"], "2024/2024-01/A.JPG", "hash-a")
    archived = store.present_files(PHONE, FOLDER)["A.JPG"]
    assert (archived.status, archived.archive_path, archived.content_hash) == (
        ARCHIVED,
        "2024/2024-01/A.JPG",
        "hash-a",
    )
    assert archived.failure_reason == ""
    record = store.archive_entry("2024/2024-01/A.JPG")
    assert record is not None
    assert (record.content_hash, record.size, record.origin) == ("hash-a", 10, "backup")
    assert store.archive_entry("2024/2024-01/NOPE.JPG") is None
    # The same content at a second path: the first path (by name) answers for the hash.
    archive(store, present["B.JPG"], "2024/2024-01/0-copy.JPG", "hash-a")
    by_hash = store.archive_entry_by_hash("hash-a")
    assert by_hash is not None and by_hash.relative_path == "2024/2024-01/0-copy.JPG"
    assert store.archive_entry_by_hash("hash-none") is None
    # Recording again at a vouched-for path keeps the record that is there.
    archive(store, present["B.JPG"], "2024/2024-01/A.JPG", "hash-b")
    kept = store.archive_entry("2024/2024-01/A.JPG")
    assert kept is not None and kept.content_hash == "hash-a"
    assert store.status_counts(PHONE) == {ARCHIVED: 2}


class _Abort(Exception):
    """Raised inside a transaction to roll it back."""


def test_a_transaction_records_many_files_at_once_and_rolls_back_whole(
    store: StoreUnderTest,
) -> None:
    """Records made inside one transaction are seen inside it (a later group dedups against
    an earlier one) and kept when it ends; an exception undoes every one of them, and an inner
    transaction that fails undoes only its own writes."""
    observe(store, FOLDER, ("A.JPG", 10, 1), ("B.JPG", 10, 2), ("C.JPG", 10, 3))
    present = store.present_files(PHONE, FOLDER)
    with store.transaction():
        archive(store, present["A.JPG"], "2024/A.JPG", "hash-a")
        assert store.archive_entry_by_hash("hash-a") is not None
        with pytest.raises(_Abort), store.transaction():
            archive(store, present["B.JPG"], "2024/B.JPG", "hash-b")
            raise _Abort
        assert store.archive_entry("2024/B.JPG") is None
    assert store.status_counts(PHONE) == {ARCHIVED: 1, PENDING: 2}
    with pytest.raises(_Abort), store.transaction():
        archive(store, present["C.JPG"], "2024/C.JPG", "hash-c")
        archive(store, present["B.JPG"], "2024/B.JPG", "hash-b")
        raise _Abort
    assert store.archive_entry("2024/C.JPG") is None
    assert store.archive_entry_by_hash("hash-b") is None
    assert store.status_counts(PHONE) == {ARCHIVED: 1, PENDING: 2}


def test_status_counts_count_only_files_on_the_phone(store: StoreUnderTest) -> None:
    """status_counts groups present files by status; absent files are not counted."""
    observe(store, FOLDER, ("A.JPG", 1, 1), ("B.JPG", 2, 2), ("C.JPG", 3, 3))
    present = store.present_files(PHONE, FOLDER)
    store.set_file_status(present["A.JPG"].id, FAILED, "size_mismatch")
    store.set_file_status(present["B.JPG"].id, EXCLUDED, "video")
    store.mark_absent(PHONE, FOLDER, ["C.JPG"])
    assert store.status_counts(PHONE) == {FAILED: 1, EXCLUDED: 1}
    assert store.count_archived_not_present(PHONE) == 0


def test_runs_open_close_and_remember_their_failures(store: StoreUnderTest) -> None:
    """start_run gives increasing ids; finish_run writes the outcome and counts, and only a
    complete run becomes the phone's last complete one; failures come back in order."""
    store.record_device_seen(PHONE, name="Ana's iPhone")
    first = store.start_run(PHONE)
    store.add_run_failure(first, f"{FOLDER}/A.JPG", "read_error", "AFC status 4")
    store.add_run_failure(first, f"{FOLDER}/../x", "separator")
    store.finish_run(first, "complete", RunCounts(files_found=3, files_copied=2))
    second = store.start_run(PHONE)
    assert second > first
    assert [run.outcome for run in store.runs(PHONE)] == ["running", "complete"]
    store.finish_run(second, "incomplete", RunCounts(files_failed=1), "1 failed")
    runs = store.runs(PHONE)
    assert [(run.id, run.outcome, run.error) for run in runs] == [
        (second, "incomplete", "1 failed"),
        (first, "complete", ""),
    ]
    assert (runs[1].files_found, runs[1].files_copied, runs[0].files_failed) == (3, 2, 1)
    assert runs[0].finished_at is not None
    device = store.device(PHONE)
    assert device is not None and device.last_complete_run_id == first
    assert store.run_failures(first) == [
        (f"{FOLDER}/A.JPG", "read_error", "AFC status 4"),
        (f"{FOLDER}/../x", "separator", ""),
    ]
    assert store.run_failures(second) == []


def test_a_phone_keeps_what_it_said_and_shows_its_state(store: StoreUnderTest) -> None:
    """A later sighting without a name keeps the name; state and progress read back."""
    assert store.device(PHONE) is None
    store.record_device_seen(PHONE, name="Ana's iPhone", product_type="iPhone15,2")
    store.record_device_seen(PHONE, product_version="17.5")
    store.set_device_state(PHONE, "backing_up", "scanning")
    store.set_device_progress(PHONE, 1, 4, 100, 400)
    device = store.device(PHONE)
    assert device is not None
    assert (device.name, device.product_type, device.product_version) == (
        "Ana's iPhone",
        "iPhone15,2",
        "17.5",
    )
    assert (device.state, device.state_detail) == ("backing_up", "scanning")
    assert (
        device.progress_files_done,
        device.progress_files_total,
        device.progress_bytes_done,
        device.progress_bytes_total,
    ) == (1, 4, 100, 400)
    store.set_device_state("U2", "waiting_for_trust", "tap Trust")
    other = store.device("U2")
    assert other is not None and other.state == "waiting_for_trust"


# -- folder summaries and the rotating check (store/phone_folders.py) --------------------------


def test_a_folder_summary_reads_back_with_whether_a_file_is_not_archived(
    store: StoreUnderTest,
) -> None:
    """A recorded summary reads back as written; has_unarchived says whether some present file
    of the folder is not archived (it follows the files' statuses without a new summary), and a
    forgotten folder has none."""
    observe(store, FOLDER, ("A.JPG", 1, 1), ("B.JPG", 2, 2))
    summary = FolderSummary(FOLDER, FolderStat(5, 4, 128), names_fingerprint(["A.JPG", "B.JPG"]), 2)
    store.record_folder_summaries(PHONE, [summary], MOMENT)
    assert store.folder_summaries(PHONE) == {FOLDER: replace(summary, has_unarchived=True)}
    for entry in store.present_files(PHONE, FOLDER).values():
        archive(store, entry, f"2024/2024-01/{entry.name}", f"hash-{entry.name}")
    assert store.folder_summaries(PHONE)[FOLDER].has_unarchived is False
    store.touch_folders(PHONE, [FOLDER], MOMENT)
    assert store.folder_summaries("other phone") == {}
    store.forget_folders(PHONE, [FOLDER])
    assert store.folder_summaries(PHONE) == {}


def test_the_rotating_check_takes_the_least_recently_checked_settled_files(
    store: StoreUnderTest,
) -> None:
    """least_recently_checked gives settled present files of the DCIM folders only (not the
    library's), those stat'ed longest ago first (then by row); mark_checked sends them to the
    back of the order."""
    observe(store, FOLDER, ("A.JPG", 1, 1), ("B.JPG", 2, 2), ("C.JPG", 3, 3), ("P.JPG", 4, 4))
    present = store.present_files(PHONE, FOLDER)
    for name in ("A.JPG", "B.JPG"):
        archive(store, present[name], f"2024/2024-01/{name}", f"hash-{name}")
    store.set_file_status(present["C.JPG"].id, EXCLUDED, "screenshot")
    first = store.least_recently_checked(PHONE, 2)
    assert [item.name for item in first] == ["A.JPG", "B.JPG"]
    assert (first[0].size, first[0].birth_time_ns, first[0].folder) == (1, 1, FOLDER)
    library = "/PhotoData/CPLAssets/group1"
    observe(store, library, ("L.JPG", 9, 9))
    archive(store, store.present_files(PHONE, library)["L.JPG"], "2024/2024-01/L.JPG", "hash-l")
    store.mark_checked([first[0].id], datetime.now(UTC) + timedelta(days=1))
    assert [item.name for item in store.least_recently_checked(PHONE, 10)] == [
        "B.JPG",
        "C.JPG",
        "A.JPG",
    ]


def test_the_full_check_is_remembered_per_phone(store: StoreUnderTest) -> None:
    """full_check_at is None until record_full_check, then the moment recorded."""
    store.record_device_seen(PHONE, now=MOMENT)
    assert store.full_check_at(PHONE) is None
    store.record_full_check(PHONE, MOMENT)
    assert store.full_check_at(PHONE) == utc_now_text(MOMENT)
