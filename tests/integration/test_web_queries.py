"""The store's read queries behind the status page, on a real SQLite file: the newest photos
of the archive and a phone's archived photos per month of capture."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from rollkeeper.store import StateStore
from rollkeeper.store.reports import Reports
from rollkeeper.web.page_data import PHOTO_EXTENSIONS

AT = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
PHONE = "00008110-000A1B2C3D4E5F60"
OTHER = "00008030-0011223344556677"


def _archive(
    store: StateStore,
    udid: str,
    name: str,
    *,
    month: str,
    content_hash: str,
    minute: int,
    path: str | None = None,
) -> int:
    entry = store.observe_file(udid, "/DCIM/100APPLE", name, 100 + minute, minute, 0)
    store.record_archived(
        entry.id,
        relative_path=path or f"{month[:4]}/{month}/{name}",
        content_hash=content_hash,
        hash_algorithm="blake3",
        size=100 + minute,
        origin="backup",
        capture_time=f"{month}-15T08:00:00",
        capture_source="exif",
        now=AT + timedelta(minutes=minute),
    )
    return entry.id


def _store(tmp_path: Path) -> StateStore:
    store = StateStore.open(tmp_path / "state.sqlite3")
    store.record_device_seen(PHONE, name="Ann's iPhone", now=AT)
    store.record_device_seen(OTHER, name="Ben's iPhone", now=AT)
    _archive(store, PHONE, "IMG_0001.HEIC", month="2024-01", content_hash="a" * 64, minute=1)
    _archive(store, PHONE, "IMG_0001.MOV", month="2024-01", content_hash="b" * 64, minute=2)
    _archive(store, PHONE, "IMG_0002.jpg", month="2024-03", content_hash="c" * 64, minute=3)
    _archive(store, PHONE, "IMG_E0002.JPG", month="2024-03", content_hash="d" * 64, minute=4)
    _archive(store, PHONE, "IMG_0003.AAE", month="2024-03", content_hash="e" * 64, minute=5)
    # Ben's phone had a copy of Ann's first photo (same content): one archive file, one entry.
    _archive(
        store,
        OTHER,
        "IMG_0100.HEIC",
        month="2024-02",
        content_hash="a" * 64,
        minute=6,
        path="2024/2024-02/IMG_0100.HEIC",
    )
    return store


def test_the_newest_photos_come_newest_first_each_content_once(tmp_path: Path) -> None:
    """Photos only (no video, no sidecar), newest first, each content once (the newest path
    holding it), at most the number asked for."""
    store = _store(tmp_path)
    try:
        reports = Reports.for_store(store)
        newest = reports.recently_stored(PHOTO_EXTENSIONS, 10)
        assert [entry.relative_path for entry in newest] == [
            "2024/2024-02/IMG_0100.HEIC",
            "2024/2024-03/IMG_E0002.JPG",
            "2024/2024-03/IMG_0002.jpg",
        ]
        assert [entry.relative_path for entry in reports.recently_stored(PHOTO_EXTENSIONS, 2)] == [
            "2024/2024-02/IMG_0100.HEIC",
            "2024/2024-03/IMG_E0002.JPG",
        ]
        assert reports.recently_stored(PHOTO_EXTENSIONS, 0) == []
    finally:
        store.close()


def test_archived_photos_per_month_count_one_phone_originals_only(tmp_path: Path) -> None:
    """A phone's archived photos by month of capture: its own files only, photos only (any
    case of extension), edit renders left out, and a file that has left the phone still
    counts (it is still archived)."""
    store = _store(tmp_path)
    try:
        reports = Reports.for_store(store)
        assert reports.archived_per_month(PHONE, PHOTO_EXTENSIONS) == [
            ("2024-01", 1),
            ("2024-03", 1),
        ]
        assert reports.archived_per_month(OTHER, PHOTO_EXTENSIONS) == [("2024-02", 1)]
        store.mark_folder_absent(PHONE, "/DCIM/100APPLE")
        assert reports.archived_per_month(PHONE, PHOTO_EXTENSIONS) == [
            ("2024-01", 1),
            ("2024-03", 1),
        ]
    finally:
        store.close()
