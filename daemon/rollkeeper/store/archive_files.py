"""The ``archive_files`` table: every file in the archive that rollkeeper vouches for.

The importer adds a row in the transaction that marks the phone file archived; adopt and
lost-state recovery add rows for files found on disk; verify and scrub stamp ``verified_at``
when a re-hash matched. Paths are relative to the archive root, or absolute for files adopted
from outside it (see :mod:`rollkeeper.archive.locations`).
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Sequence
from datetime import datetime

from rollkeeper.store.database import Database
from rollkeeper.store.records import (
    ARCHIVE_COLUMNS,
    ARCHIVED,
    ArchiveEntry,
    PhoneFileCopy,
    parse_timestamp,
    utc_now_text,
)


class ArchiveFileRepository:
    """Reads and writes of the ``archive_files`` table, on a store's one connection."""

    def __init__(self, database: Database) -> None:
        self._database = database

    # -- writes ------------------------------------------------------------------------------

    def add_stored(
        self,
        relative_path: str,
        content_hash: str,
        hash_algorithm: str,
        size: int,
        origin: str,
        stamp: str,
    ) -> None:
        """The importer stored (or found) a file at ``relative_path``; an existing row stays.

        One statement of the transaction that also marks the phone file archived (see
        ``StateStore.record_archived``).
        """
        self._database.execute(
            "INSERT INTO archive_files (relative_path, content_hash, hash_algorithm, size,"
            " origin, stored_at, verified_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (relative_path) DO NOTHING",
            (relative_path, content_hash, hash_algorithm, size, origin, stamp, stamp),
        )

    def add_archive_entry(
        self,
        relative_path: str,
        content_hash: str,
        hash_algorithm: str,
        size: int,
        origin: str,
        now: datetime | None = None,
    ) -> None:
        """Vouch for a file found in the archive (adopted, or rebuilt after lost state)."""
        stamp = utc_now_text(now)
        self._database.execute(
            "INSERT INTO archive_files (relative_path, content_hash, hash_algorithm, size, origin,"
            " stored_at, verified_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (relative_path) DO UPDATE SET content_hash = excluded.content_hash,"
            " hash_algorithm = excluded.hash_algorithm, size = excluded.size,"
            " verified_at = excluded.verified_at",
            (relative_path, content_hash, hash_algorithm, size, origin, stamp, stamp),
        )

    def mark_verified(self, relative_path: str, now: datetime | None = None) -> None:
        """Note that a file was re-hashed and matched."""
        self._database.execute(
            "UPDATE archive_files SET verified_at = ? WHERE relative_path = ?",
            (utc_now_text(now), relative_path),
        )

    def mark_verified_many(
        self, relative_paths: Iterable[str], now: datetime | None = None
    ) -> None:
        """Stamp many files as re-hashed and matching, in one transaction (one fsync, not one
        each)."""
        stamp = utc_now_text(now)
        paths = list(relative_paths)
        if not paths:
            return
        with self._database.transaction():
            self._database.executemany(
                "UPDATE archive_files SET verified_at = ? WHERE relative_path = ?",
                [(stamp, path) for path in paths],
            )

    def mark_verify_failed_many(
        self, relative_paths: Iterable[str], now: datetime | None = None
    ) -> None:
        """Note that a re-hash found these files missing, changed or unreadable (one
        transaction). ``verified_at`` keeps the last match; ``freeable`` never lists a file
        whose last check failed."""
        stamp = utc_now_text(now)
        paths = list(relative_paths)
        if not paths:
            return
        with self._database.transaction():
            self._database.executemany(
                "UPDATE archive_files SET verify_failed_at = ? WHERE relative_path = ?",
                [(stamp, path) for path in paths],
            )

    # -- single records ------------------------------------------------------------------------

    def archive_entry(self, relative_path: str) -> ArchiveEntry | None:
        """The archive record at a path, or None when rollkeeper does not vouch for it."""
        row = self._database.execute(
            f"SELECT {ARCHIVE_COLUMNS} FROM archive_files WHERE relative_path = ?",
            (relative_path,),
        ).fetchone()
        return None if row is None else ArchiveEntry(*row)

    def archive_entry_by_hash(self, content_hash: str) -> ArchiveEntry | None:
        """Some archive file with this content, or None."""
        row = self._database.execute(
            f"SELECT {ARCHIVE_COLUMNS} FROM archive_files WHERE content_hash = ?"
            " ORDER BY relative_path LIMIT 1",
            (content_hash,),
        ).fetchone()
        return None if row is None else ArchiveEntry(*row)

    # -- many records ------------------------------------------------------------------------

    def archive_entries(self) -> list[ArchiveEntry]:
        """Every archive record, by path."""
        rows = self._database.execute(
            f"SELECT {ARCHIVE_COLUMNS} FROM archive_files ORDER BY relative_path"
        ).fetchall()
        return [ArchiveEntry(*row) for row in rows]

    def entries_stored_since(self, since: datetime) -> list[ArchiveEntry]:
        """Archive records stored at or after ``since`` (an aware datetime), by path."""
        rows = self._database.execute(
            f"SELECT {ARCHIVE_COLUMNS} FROM archive_files WHERE stored_at >= ?"
            " ORDER BY relative_path",
            (utc_now_text(since),),
        )
        return [ArchiveEntry(*row) for row in rows]

    def sample_entries(self, count: int) -> list[ArchiveEntry]:
        """``count`` records chosen at random by SQLite (all of them when there are fewer)."""
        rows = self._database.execute(
            f"SELECT {ARCHIVE_COLUMNS} FROM archive_files ORDER BY random() LIMIT ?", (count,)
        )
        return sorted((ArchiveEntry(*row) for row in rows), key=lambda entry: entry.relative_path)

    def recently_stored(self, extensions: Sequence[str], limit: int) -> list[ArchiveEntry]:
        """The ``limit`` records stored last whose name ends in ``.EXT`` for one of
        ``extensions`` (any case), newest first, each content once (the newest path with it).

        For the status page's strip of the newest photos. ``stored_at`` has no index: the scan
        is one pass over the table (tens of milliseconds at 150,000 rows), done once per page
        load, not per poll.
        """
        if not extensions or limit <= 0:
            return []
        matches = " OR ".join("relative_path LIKE ?" for _ in extensions)
        rows = self._database.execute(
            f"SELECT {ARCHIVE_COLUMNS} FROM archive_files WHERE ({matches})"
            " ORDER BY stored_at DESC, relative_path DESC LIMIT ?",
            (*(f"%.{extension}" for extension in extensions), limit * 4),
        )
        newest: dict[str, ArchiveEntry] = {}
        for row in rows:
            entry = ArchiveEntry(*row)
            newest.setdefault(entry.content_hash, entry)
            if len(newest) == limit:
                break
        return list(newest.values())

    def least_recently_verified(self) -> Generator[ArchiveEntry, None, None]:
        """Archive records lazily, never-verified first, then oldest ``verified_at``.

        SQLite sorts NULL first in ascending order, so never-verified rows lead. Ties are broken
        by path so the rotation order is stable from run to run. The caller stops reading once
        its byte budget is spent; close the generator (``contextlib.closing``) to release the
        cursor early.
        """
        cursor = self._database.execute(
            f"SELECT {ARCHIVE_COLUMNS} FROM archive_files ORDER BY verified_at, relative_path"
        )
        try:
            for row in cursor:
                yield ArchiveEntry(*row)
        finally:
            cursor.close()

    def unresolved_archive_paths(self, paths: Iterable[str], since: datetime) -> list[str]:
        """Of archive paths an archive check flagged at ``since``, those still in question: the
        database still vouches for them and they were not verified again after ``since`` (a
        later ``rollkeeper verify`` or scrub that matched them settles them)."""
        unresolved: list[str] = []
        for path in paths:
            row = self._database.execute(
                "SELECT verified_at FROM archive_files WHERE relative_path = ?", (path,)
            ).fetchone()
            if row is None:
                continue  # no longer vouched for: dealt with
            verified = parse_timestamp(row[0])
            if verified is None or verified <= since:
                unresolved.append(path)
        return unresolved

    def present_files_with_copies(self, udid: str | None = None) -> list[PhoneFileCopy]:
        """Every file the phones' last listings showed, with its archive record if it has one
        (what ``freeable`` decides from), by phone, folder and name."""
        query = (
            "SELECT pf.udid, pf.folder, pf.name, pf.size, pf.birth_time_ns, pf.capture_time,"
            " pf.status, pf.archive_path, af.size, af.verified_at, af.verify_failed_at"
            " FROM phone_files pf LEFT JOIN archive_files af"
            " ON af.relative_path = pf.archive_path WHERE pf.present = 1"
        )
        parameters: list[object] = []
        if udid is not None:
            query += " AND pf.udid = ?"
            parameters.append(udid)
        query += " ORDER BY pf.udid, pf.folder, pf.name"
        return [PhoneFileCopy(*row) for row in self._database.execute(query, parameters)]

    # -- aggregates ----------------------------------------------------------------------------

    def archive_size(self) -> tuple[int, int]:
        """(files, bytes) the archive holds according to the database."""
        row = self._database.execute(
            "SELECT count(*), coalesce(sum(size), 0) FROM archive_files"
        ).fetchone()
        return int(row[0]), int(row[1])

    def device_archive_size(self, udid: str) -> tuple[int, int]:
        """(files, bytes) in the archive that came from this phone (each archive file once)."""
        row = self._database.execute(
            "SELECT count(*), coalesce(sum(size), 0) FROM archive_files WHERE relative_path IN"
            " (SELECT archive_path FROM phone_files WHERE udid = ? AND status = ?"
            " AND archive_path IS NOT NULL)",
            (udid, ARCHIVED),
        ).fetchone()
        return int(row[0]), int(row[1])

    def entries_inside_archive(self) -> int:
        """How many records point inside the archive folder (not adopted by absolute path)."""
        row = self._database.execute(
            "SELECT count(*) FROM archive_files WHERE substr(relative_path, 1, 1) != '/'"
        ).fetchone()
        return int(row[0])

    def largest_entry_size(self) -> int:
        """The size of the largest archived file (0 for an empty archive)."""
        row = self._database.execute("SELECT coalesce(max(size), 0) FROM archive_files").fetchone()
        return int(row[0])

    def oldest_verification(self) -> str | None:
        """The oldest ``verified_at`` in the archive (None when empty or something is
        unverified)."""
        row = self._database.execute(
            "SELECT verified_at FROM archive_files ORDER BY verified_at LIMIT 1"
        ).fetchone()
        return None if row is None or row[0] is None else str(row[0])
