"""The ``phone_folders`` table and the re-check order of ``phone_files``: what a re-plug reads.

A re-plug with nothing new must cost about what listing the folders costs, so what it reads
from SQLite is one query for every folder of the phone (:meth:`PhoneFolderRepository.summaries`:
the folder's stat and listing fingerprint as last seen, and whether it holds a file that is not
archived, answered from a partial index without reading a file's row) and one short query for
the rotating check's slice (:meth:`PhoneFolderRepository.least_recently_checked`, again from a
partial index). What it writes is one row per folder (``last_seen_at``) and one per file of the
slice (``checked_at``); no statement touches every file of the phone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from rollkeeper.domain.folder_summary import FolderStat
from rollkeeper.store.database import Database
from rollkeeper.store.records import utc_now_text


@dataclass(frozen=True, slots=True)
class FolderSummary:
    """What a phone folder's last listing showed, and whether all its files are archived."""

    folder: str
    stat: FolderStat
    names_fingerprint: str
    #: Present manifest rows of the folder (equal to its checked names when nothing was
    #: refused or vanished at the last scan).
    file_count: int
    #: Some present file of the folder is pending, failed or excluded.
    has_unarchived: bool = False


@dataclass(frozen=True, slots=True)
class CheckedFile:
    """A settled file of the rotating check: its row and the identity the manifest holds."""

    id: int
    folder: str
    name: str
    size: int
    birth_time_ns: int


class PhoneFolderRepository:
    """Reads and writes of folder summaries and of the rotating check's order."""

    def __init__(self, database: Database) -> None:
        self._database = database

    # -- folder summaries -----------------------------------------------------------------

    def folder_summaries(self, udid: str) -> dict[str, FolderSummary]:
        """Every folder summary of a phone, by folder, in one query."""
        rows = self._database.execute(
            "SELECT f.folder, f.stat_mtime_ns, f.stat_nlink, f.stat_size, f.names_fingerprint,"
            " f.file_count, EXISTS (SELECT 1 FROM phone_files p INDEXED BY"
            " phone_files_not_archived WHERE p.udid = f.udid AND p.folder = f.folder"
            " AND p.present = 1 AND p.status != 'archived')"
            " FROM phone_folders f WHERE f.udid = ?",
            (udid,),
        ).fetchall()
        return {
            str(row[0]): FolderSummary(
                folder=str(row[0]),
                stat=FolderStat(row[1], row[2], row[3]),
                names_fingerprint=str(row[4]),
                file_count=int(row[5]),
                has_unarchived=bool(row[6]),
            )
            for row in rows
        }

    def record_folder_summaries(
        self, udid: str, summaries: Iterable[FolderSummary], now: datetime | None = None
    ) -> None:
        """Write (or replace) the summaries of folders scanned in full, seen now."""
        stamp = utc_now_text(now)
        self._database.executemany(
            "INSERT INTO phone_folders (udid, folder, stat_mtime_ns, stat_nlink, stat_size,"
            " names_fingerprint, file_count, last_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (udid, folder) DO UPDATE SET stat_mtime_ns = excluded.stat_mtime_ns,"
            " stat_nlink = excluded.stat_nlink, stat_size = excluded.stat_size,"
            " names_fingerprint = excluded.names_fingerprint,"
            " file_count = excluded.file_count, last_seen_at = excluded.last_seen_at",
            [
                (
                    udid,
                    summary.folder,
                    summary.stat.mtime_ns,
                    summary.stat.nlink,
                    summary.stat.size,
                    summary.names_fingerprint,
                    summary.file_count,
                    stamp,
                )
                for summary in summaries
            ],
        )

    def touch_folders(self, udid: str, folders: Sequence[str], now: datetime | None = None) -> None:
        """Stamp folders whose summary still holds as seen now (one row each, no file row)."""
        stamp = utc_now_text(now)
        self._database.executemany(
            "UPDATE phone_folders SET last_seen_at = ? WHERE udid = ? AND folder = ?",
            [(stamp, udid, folder) for folder in folders],
        )

    def forget_folders(self, udid: str, folders: Sequence[str]) -> None:
        """Drop the summaries of folders gone from the phone (or no longer to be trusted)."""
        self._database.executemany(
            "DELETE FROM phone_folders WHERE udid = ? AND folder = ?",
            [(udid, folder) for folder in folders],
        )

    # -- the rotating check ---------------------------------------------------------------

    def least_recently_checked(self, udid: str, limit: int) -> list[CheckedFile]:
        """Up to ``limit`` settled present files of the DCIM folders, least recently stat'ed
        first (never stat'ed since the migration first; then by row id, so the order is
        total). The Photos library's files (``/PhotoData/...``) are the library step's."""
        rows = self._database.execute(
            "SELECT id, folder, name, size, birth_time_ns FROM phone_files"
            " INDEXED BY phone_files_check_order"
            " WHERE udid = ? AND present = 1 AND status IN ('archived', 'excluded')"
            " AND folder GLOB '/DCIM/*' ORDER BY checked_at, id LIMIT ?",
            (udid, limit),
        ).fetchall()
        return [
            CheckedFile(int(row[0]), str(row[1]), str(row[2]), int(row[3]), int(row[4]))
            for row in rows
        ]

    def mark_checked(self, file_ids: Iterable[int], now: datetime | None = None) -> None:
        """The files were stat'ed now and matched the manifest."""
        stamp = utc_now_text(now)
        self._database.executemany(
            "UPDATE phone_files SET checked_at = ? WHERE id = ?",
            [(stamp, file_id) for file_id in file_ids],
        )

    # -- the full check -------------------------------------------------------------------

    def full_check_at(self, udid: str) -> str | None:
        """When every file of the phone was last stat'ed (UTC text), or None."""
        row = self._database.execute(
            "SELECT full_check_at FROM devices WHERE udid = ?", (udid,)
        ).fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def record_full_check(self, udid: str, now: datetime | None = None) -> None:
        """Every file of the phone was stat'ed now."""
        self._database.execute(
            "UPDATE devices SET full_check_at = ? WHERE udid = ?", (utc_now_text(now), udid)
        )
