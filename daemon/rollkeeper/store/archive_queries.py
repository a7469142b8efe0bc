"""Queries over the archive and the manifest that verify, scrub and find need.

The SQL lives in :class:`~rollkeeper.store.archive_files.ArchiveFileRepository` and
:class:`~rollkeeper.store.manifest.ManifestRepository`, on the store's one connection (and so in
its transactions); these functions are the names verify, scrub and find call them by.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Sequence
from datetime import datetime

from rollkeeper.store.records import ArchiveEntry, FoundPhoneFile
from rollkeeper.store.state import StateStore

__all__ = [
    "FoundPhoneFile",
    "entries_inside_archive",
    "entries_stored_since",
    "find_phone_files",
    "largest_entry_size",
    "least_recently_verified",
    "mark_verified_many",
    "mark_verify_failed_many",
    "oldest_verification",
    "sample_entries",
]


def entries_stored_since(store: StateStore, since: datetime) -> list[ArchiveEntry]:
    """Archive records stored at or after ``since`` (an aware datetime), by path."""
    return store.archive_repository.entries_stored_since(since)


def sample_entries(store: StateStore, count: int) -> list[ArchiveEntry]:
    """``count`` archive records chosen at random by SQLite (all of them when there are fewer)."""
    return store.archive_repository.sample_entries(count)


def least_recently_verified(store: StateStore) -> Generator[ArchiveEntry, None, None]:
    """Archive records lazily, never-verified first, then oldest ``verified_at`` (close the
    generator with ``contextlib.closing`` to release the cursor early)."""
    return store.archive_repository.least_recently_verified()


def entries_inside_archive(store: StateStore) -> int:
    """How many records point inside the archive folder (not adopted by absolute path)."""
    return store.archive_repository.entries_inside_archive()


def largest_entry_size(store: StateStore) -> int:
    """The size of the largest archived file (0 for an empty archive)."""
    return store.archive_repository.largest_entry_size()


def oldest_verification(store: StateStore) -> str | None:
    """The oldest ``verified_at`` in the archive (None when empty or something is unverified)."""
    return store.archive_repository.oldest_verification()


def mark_verified_many(
    store: StateStore, relative_paths: Iterable[str], now: datetime | None = None
) -> None:
    """Stamp many files as re-hashed and matching, in one transaction (one fsync, not one each)."""
    store.archive_repository.mark_verified_many(relative_paths, now)


def mark_verify_failed_many(
    store: StateStore, relative_paths: Iterable[str], now: datetime | None = None
) -> None:
    """Note that a re-hash found these files missing, changed or unreadable (one transaction)."""
    store.archive_repository.mark_verify_failed_many(relative_paths, now)


def find_phone_files(
    store: StateStore,
    *,
    name_globs: Sequence[str] = (),
    udid: str | None = None,
    capture_date_prefix: str | None = None,
    limit: int | None = None,
) -> list[FoundPhoneFile]:
    """Manifest entries whose name matches any of the globs (SQLite GLOB, case-insensitive),
    of one phone and capture date (``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD`` prefix)."""
    return store.manifest_repository.find(
        name_globs=name_globs, udid=udid, capture_date_prefix=capture_date_prefix, limit=limit
    )
