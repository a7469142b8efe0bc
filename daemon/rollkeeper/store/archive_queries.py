"""Queries over the archive and the manifest that verify, scrub and find need.

They run on the same connection (and so the same transactions) as :class:`StateStore`, over the
same schema; they live here rather than in :mod:`rollkeeper.store.state` so that module stays the
importer's. No schema of its own: every table and column used is created by migration 1.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from rollkeeper.store.state import ArchiveEntry, StateStore, utc_now_text

_ARCHIVE_COLUMNS = ", ".join(ArchiveEntry.__slots__)


def _connection(store: StateStore) -> sqlite3.Connection:
    # StateStore exposes no public connection; sharing its connection keeps one transaction
    # scope and one writer per process instead of a second connection racing the first.
    return store._connection


@dataclass(frozen=True, slots=True)
class FoundPhoneFile:
    """A manifest entry matched by ``rollkeeper find``, with what is known of its capture."""

    udid: str
    device_name: str
    folder: str
    name: str
    size: int
    status: str
    present: bool
    archive_path: str | None
    content_hash: str | None
    capture_time: str | None
    capture_source: str | None


def entries_stored_since(store: StateStore, since: datetime) -> list[ArchiveEntry]:
    """Archive records stored at or after ``since`` (an aware datetime), by path."""
    rows = _connection(store).execute(
        f"SELECT {_ARCHIVE_COLUMNS} FROM archive_files WHERE stored_at >= ? ORDER BY relative_path",
        (utc_now_text(since),),
    )
    return [ArchiveEntry(*row) for row in rows]


def sample_entries(store: StateStore, count: int) -> list[ArchiveEntry]:
    """``count`` archive records chosen at random by SQLite (all of them when there are fewer)."""
    rows = _connection(store).execute(
        f"SELECT {_ARCHIVE_COLUMNS} FROM archive_files ORDER BY random() LIMIT ?", (count,)
    )
    return sorted((ArchiveEntry(*row) for row in rows), key=lambda entry: entry.relative_path)


def least_recently_verified(store: StateStore) -> Generator[ArchiveEntry, None, None]:
    """Archive records lazily, never-verified first, then oldest ``verified_at``.

    SQLite sorts NULL first in ascending order, so never-verified rows lead. Ties are broken by
    path so the rotation order is stable from run to run. The caller stops
    reading once its byte budget is spent; close the generator (``contextlib.closing``) to
    release the cursor early.
    """
    cursor = _connection(store).execute(
        f"SELECT {_ARCHIVE_COLUMNS} FROM archive_files ORDER BY verified_at, relative_path"
    )
    try:
        for row in cursor:
            yield ArchiveEntry(*row)
    finally:
        cursor.close()


def entries_inside_archive(store: StateStore) -> int:
    """How many records point inside the archive folder (not adopted by absolute path)."""
    row = (
        _connection(store)
        .execute("SELECT count(*) FROM archive_files WHERE substr(relative_path, 1, 1) != '/'")
        .fetchone()
    )
    return int(row[0])


def largest_entry_size(store: StateStore) -> int:
    """The size of the largest archived file (0 for an empty archive)."""
    row = _connection(store).execute("SELECT coalesce(max(size), 0) FROM archive_files").fetchone()
    return int(row[0])


def oldest_verification(store: StateStore) -> str | None:
    """The oldest ``verified_at`` in the archive (None when empty or something is unverified)."""
    row = (
        _connection(store)
        .execute("SELECT verified_at FROM archive_files ORDER BY verified_at LIMIT 1")
        .fetchone()
    )
    return None if row is None or row[0] is None else str(row[0])


def mark_verified_many(
    store: StateStore, relative_paths: Iterable[str], now: datetime | None = None
) -> None:
    """Stamp many files as re-hashed and matching, in one transaction (one fsync, not one each)."""
    stamp = utc_now_text(now)
    paths = list(relative_paths)
    if not paths:
        return
    with store.transaction():
        _connection(store).executemany(
            "UPDATE archive_files SET verified_at = ? WHERE relative_path = ?",
            [(stamp, path) for path in paths],
        )


def find_phone_files(
    store: StateStore,
    *,
    name_globs: Sequence[str] = (),
    udid: str | None = None,
    capture_date_prefix: str | None = None,
    limit: int | None = None,
) -> list[FoundPhoneFile]:
    """Manifest entries whose name matches any of the globs (case-insensitive), phone and date.

    ``name_globs`` use SQLite GLOB syntax (``*``, ``?``, ``[...]``), matched against the lower-
    cased name; none means any name. ``capture_date_prefix`` is ``YYYY``, ``YYYY-MM`` or
    ``YYYY-MM-DD`` matched against the start of ``capture_time`` (ISO 8601 in the local time
    of capture, as the layout uses).
    """
    query = (
        "SELECT p.udid, coalesce(d.name, ''), p.folder, p.name, p.size, p.status, p.present,"
        " p.archive_path, p.content_hash, p.capture_time, p.capture_source"
        " FROM phone_files p LEFT JOIN devices d ON d.udid = p.udid WHERE 1 = 1"
    )
    parameters: list[object] = []
    if name_globs:
        query += " AND (" + " OR ".join("lower(p.name) GLOB ?" for _ in name_globs) + ")"
        parameters.extend(glob.lower() for glob in name_globs)
    if udid is not None:
        query += " AND p.udid = ?"
        parameters.append(udid)
    if capture_date_prefix is not None:
        query += " AND substr(p.capture_time, 1, ?) = ?"
        parameters.extend([len(capture_date_prefix), capture_date_prefix])
    query += " ORDER BY p.capture_time IS NULL, p.capture_time, p.udid, p.folder, p.name"
    if limit is not None:
        query += " LIMIT ?"
        parameters.append(limit)
    return [
        FoundPhoneFile(
            udid=str(row[0]),
            device_name=str(row[1]),
            folder=str(row[2]),
            name=str(row[3]),
            size=int(row[4]),
            status=str(row[5]),
            present=bool(row[6]),
            archive_path=None if row[7] is None else str(row[7]),
            content_hash=None if row[8] is None else str(row[8]),
            capture_time=None if row[9] is None else str(row[9]),
            capture_source=None if row[10] is None else str(row[10]),
        )
        for row in _connection(store).execute(query, parameters)
    ]
