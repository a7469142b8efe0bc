"""The ``phone_files`` table: the manifest of every phone file identity and what became of it.

An identity is (phone, folder, name, size, birth time): the same name with another size or birth
time is another file (``IMG_9999`` rolled over to ``IMG_0001``). ``present`` says whether the
phone's last listing showed it; nothing here ever deletes a row, so "archived, no longer on the
phone" stays known.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from rollkeeper.store.database import Database
from rollkeeper.store.records import (
    ARCHIVED,
    EXCLUDED,
    FAILED,
    MANIFEST_COLUMNS,
    PENDING,
    FailedFile,
    FileCounts,
    FoundPhoneFile,
    ManifestEntry,
    manifest_entry,
    utc_now_text,
)


class ManifestRepository:
    """Reads and writes of the ``phone_files`` table, on a store's one connection."""

    def __init__(self, database: Database) -> None:
        self._database = database

    # -- what the phone holds ----------------------------------------------------------------

    def present_files(self, udid: str, folder: str) -> dict[str, ManifestEntry]:
        """The files the phone's last listing of ``folder`` showed, by name."""
        rows = self._database.execute(
            f"SELECT {MANIFEST_COLUMNS} FROM phone_files"
            " WHERE udid = ? AND folder = ? AND present = 1",
            (udid, folder),
        ).fetchall()
        return {str(row[3]): manifest_entry(row) for row in rows}

    def known_folders(self, udid: str) -> list[str]:
        """Folders of the phone with at least one present file in the manifest."""
        rows = self._database.execute(
            "SELECT DISTINCT folder FROM phone_files WHERE udid = ? AND present = 1", (udid,)
        ).fetchall()
        return sorted(str(row[0]) for row in rows)

    def mark_absent(
        self, udid: str, folder: str, names: Iterable[str], now: datetime | None = None
    ) -> int:
        """Mark files of ``folder`` that the phone no longer lists; returns how many."""
        stamp = utc_now_text(now)
        count = 0
        for name in names:
            cursor = self._database.execute(
                "UPDATE phone_files SET present = 0, last_seen_at = ?"
                " WHERE udid = ? AND folder = ? AND name = ? AND present = 1",
                (stamp, udid, folder, name),
            )
            count += cursor.rowcount
        return count

    def mark_folder_absent(self, udid: str, folder: str, now: datetime | None = None) -> int:
        """The whole folder is gone from the phone: mark all its files absent."""
        cursor = self._database.execute(
            "UPDATE phone_files SET present = 0, last_seen_at = ?"
            " WHERE udid = ? AND folder = ? AND present = 1",
            (utc_now_text(now), udid, folder),
        )
        return cursor.rowcount

    def observe_file(
        self,
        udid: str,
        folder: str,
        name: str,
        size: int,
        birth_time_ns: int,
        modified_time_ns: int,
        now: datetime | None = None,
    ) -> ManifestEntry:
        """Record one stat'ed phone file as present; return its manifest entry."""
        self.observe_files(udid, folder, [(name, size, birth_time_ns, modified_time_ns)], now)
        row = self._database.execute(
            f"SELECT {MANIFEST_COLUMNS} FROM phone_files WHERE udid = ? AND folder = ?"
            " AND name = ? AND size = ? AND birth_time_ns = ?",
            (udid, folder, name, size, birth_time_ns),
        ).fetchone()
        return manifest_entry(row)

    def observe_files(
        self,
        udid: str,
        folder: str,
        files: Iterable[tuple[str, int, int, int]],
        now: datetime | None = None,
    ) -> None:
        """Record stat'ed phone files ``(name, size, birth_time_ns, modified_time_ns)`` as
        present and checked now (``last_seen_at``, ``checked_at``), in one transaction.

        A name that was present with another identity (size or birth time) is a different file
        (IMG_9999 rolled over to IMG_0001): the old identity is marked absent and kept.
        """
        stamp = utc_now_text(now)
        insert = (
            "INSERT INTO phone_files (udid, folder, name, size, birth_time_ns,"
            " modified_time_ns, status, present, first_seen_at, last_seen_at, checked_at)"
            " VALUES (?, ?, ?, ?, ?, ?, 'pending', 1, ?, ?, ?)"
            " ON CONFLICT (udid, folder, name, size, birth_time_ns)"
            " DO UPDATE SET present = 1, last_seen_at = excluded.last_seen_at,"
            " checked_at = excluded.checked_at"
        )
        listed = list(files)
        with self._database.transaction():
            present = {
                str(row[0])
                for row in self._database.execute(
                    "SELECT name FROM phone_files WHERE udid = ? AND folder = ? AND present = 1",
                    (udid, folder),
                )
            }
            seen: dict[str, int] = {}
            for name, *_ in listed:
                seen[name] = seen.get(name, 0) + 1
            # A name no present row has, listed once, has no old identity to retire: such
            # files (all of them on a first scan) are inserted in one executemany.
            fresh = [item for item in listed if item[0] not in present and seen[item[0]] == 1]
            self._database.executemany(
                insert,
                (
                    (udid, folder, name, size, birth_time_ns, modified_time_ns, stamp, stamp, stamp)
                    for name, size, birth_time_ns, modified_time_ns in fresh
                ),
            )
            for name, size, birth_time_ns, modified_time_ns in listed:
                if name not in present and seen[name] == 1:
                    continue
                self._database.execute(
                    "UPDATE phone_files SET present = 0 WHERE udid = ? AND folder = ? AND name = ?"
                    " AND present = 1 AND NOT (size = ? AND birth_time_ns = ?)",
                    (udid, folder, name, size, birth_time_ns),
                )
                self._database.execute(
                    insert,
                    (
                        udid,
                        folder,
                        name,
                        size,
                        birth_time_ns,
                        modified_time_ns,
                        stamp,
                        stamp,
                        stamp,
                    ),
                )

    def touch_present(self, udid: str, folder: str, now: datetime | None = None) -> None:
        """Stamp every present file of a folder as seen now (one statement, not one per file)."""
        self._database.execute(
            "UPDATE phone_files SET last_seen_at = ? WHERE udid = ? AND folder = ? AND present = 1",
            (utc_now_text(now), udid, folder),
        )

    # -- what became of each file -------------------------------------------------------------

    def set_file_status(self, file_id: int, status: str, failure_reason: str = "") -> None:
        """Mark a manifest entry pending, failed (with a reason) or excluded."""
        self._database.execute(
            "UPDATE phone_files SET status = ?, failure_reason = ? WHERE id = ?",
            (status, failure_reason, file_id),
        )

    def mark_archived(
        self,
        file_id: int,
        *,
        relative_path: str,
        content_hash: str,
        capture_time: str | None,
        capture_source: str | None,
        stamp: str,
    ) -> None:
        """The phone file is archived at ``relative_path`` (one statement of the transaction in
        which the archive's own row is written: see ``StateStore.record_archived``)."""
        self._database.execute(
            "UPDATE phone_files SET status = 'archived', archive_path = ?, content_hash = ?,"
            " capture_time = ?, capture_source = ?, failure_reason = '', archived_at = ?"
            " WHERE id = ?",
            (relative_path, content_hash, capture_time, capture_source, stamp, file_id),
        )

    # -- reading it back ----------------------------------------------------------------------

    def manifest(
        self, udid: str | None = None, *, present_only: bool = False
    ) -> list[ManifestEntry]:
        """Manifest entries, optionally for one phone and only those on the phone now."""
        query = f"SELECT {MANIFEST_COLUMNS} FROM phone_files WHERE 1 = 1"
        parameters: list[object] = []
        if udid is not None:
            query += " AND udid = ?"
            parameters.append(udid)
        if present_only:
            query += " AND present = 1"
        query += " ORDER BY udid, folder, name"
        return [manifest_entry(row) for row in self._database.execute(query, parameters)]

    def count_archived_not_present(self, udid: str) -> int:
        """Archived files of a phone that its last listing no longer showed (counted in SQL,
        not by loading every entry of the manifest).

        The archive is add-only, so these stay: deleted on the phone, or offloaded to iCloud.
        """
        row = self._database.execute(
            "SELECT count(*) FROM phone_files WHERE udid = ? AND present = 0 AND status = ?",
            (udid, ARCHIVED),
        ).fetchone()
        return int(row[0])

    def status_counts(self, udid: str) -> dict[str, int]:
        """How many present files of a phone are in each status.

        Counted without reading the rows of archived files (every run ends with this on a
        phone of maybe 100,000 of them): the others come from the partial index of files not
        archived, the archived are the rest of the present files (counted on an index).
        """
        rows = self._database.execute(
            "SELECT status, count(*) FROM phone_files INDEXED BY phone_files_not_archived"
            " WHERE udid = ? AND present = 1 AND status != 'archived' GROUP BY status",
            (udid,),
        ).fetchall()
        counts = {str(status): int(count) for status, count in rows}
        total = self._database.execute(
            "SELECT count(*) FROM phone_files WHERE udid = ? AND present = 1", (udid,)
        ).fetchone()
        archived = int(total[0]) - sum(counts.values())
        if archived:
            counts[ARCHIVED] = archived
        return counts

    def file_counts(self, udid: str) -> FileCounts:
        """How many files the phone showed at its last scan, archived, pending, failed, excluded."""
        row = self._database.execute(
            "SELECT count(*),"
            " coalesce(sum(status = ?), 0), coalesce(sum(status = ?), 0),"
            " coalesce(sum(status = ?), 0), coalesce(sum(status = ?), 0)"
            " FROM phone_files WHERE udid = ? AND present = 1",
            (ARCHIVED, PENDING, FAILED, EXCLUDED, udid),
        ).fetchone()
        return FileCounts(*(int(value) for value in row))

    def archived_per_month(self, udid: str, extensions: Sequence[str]) -> list[tuple[str, int]]:
        """(``YYYY-MM``, count) of this phone's archived files named ``*.EXT`` for one of
        ``extensions``, by the month of capture (local time of capture), oldest month first.

        Every archived file of the phone counts, also those no longer on it; each archive file
        once. Edit renders (``IMG_E1234.HEIC``) are left out: Photos counts an edited photo
        once, and so should a chart set against the library's counts.
        """
        if not extensions:
            return []
        matches = " OR ".join("name LIKE ?" for _ in extensions)
        rows = self._database.execute(
            "SELECT substr(capture_time, 1, 7) AS month, count(DISTINCT archive_path)"
            " FROM phone_files WHERE udid = ? AND status = ? AND capture_time IS NOT NULL"
            f" AND archive_path IS NOT NULL AND ({matches}) AND name NOT GLOB '*_E[0-9]*'"
            " GROUP BY month ORDER BY month",
            (udid, ARCHIVED, *(f"%.{extension}" for extension in extensions)),
        )
        return [(str(month), int(count)) for month, count in rows]

    def failed_files(self, udid: str, limit: int = 1000) -> list[FailedFile]:
        """Files on the phone now whose copy failed, with the reason, by path."""
        rows = self._database.execute(
            "SELECT folder, name, size, failure_reason FROM phone_files"
            " WHERE udid = ? AND present = 1 AND status = ? ORDER BY folder, name LIMIT ?",
            (udid, FAILED, limit),
        ).fetchall()
        return [FailedFile(f"{row[0]}/{row[1]}", int(row[2]), str(row[3])) for row in rows]

    def find(
        self,
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
            for row in self._database.execute(query, parameters)
        ]
