"""The library tables: each phone's last applied Photos library read, its reads, the sidecars.

``library_assets`` holds what the last *applied* read of a phone's library said of each asset
(a suspect read is recorded in ``library_reads`` but changes nothing here), so ``status`` can
name the originals only in iCloud without the phone, and a run can date a file that carries no
date of its own. ``library_sidecars`` keeps every version of every sidecar rollkeeper wrote,
with the facts it carried: the newest one says what the file on disk must still be for
rollkeeper to rewrite it, and the older ones remember an album removed on the phone.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from rollkeeper.store.database import Database
from rollkeeper.store.records import ARCHIVED, utc_now_text

#: Manifest status of a listed file the phone cannot read whose original the library marks as
#: only in iCloud: not pending, not failed (nothing on the phone is left to copy), retried.
ICLOUD_ONLY = "icloud_only"
#: Manifest failure reason of a read that failed the way an offloaded original fails (I/O).
IO_ERROR_REASON = "io_error"

#: Why an asset counts as only in iCloud (the SQL below; ``reason`` of :class:`CloudOnlyAsset`).
_CLOUD_ONLY_REASON = f"""
    CASE
        WHEN a.original_local = 0 THEN 'marked_not_local'
        WHEN p.failure_reason = '{IO_ERROR_REASON}' THEN 'unreadable'
        WHEN a.original_local IS NULL AND a.phone_folder IS NOT NULL AND p.id IS NULL
            THEN 'not_listed'
        ELSE ''
    END
"""
_ARCHIVED = f"""
    EXISTS (SELECT 1 FROM phone_files f WHERE f.udid = a.udid AND f.folder = a.phone_folder
            AND f.name = a.phone_name AND f.status = '{ARCHIVED}')
"""
_FROM_ASSETS = """
    FROM library_assets a
    LEFT JOIN phone_files p ON p.udid = a.udid AND p.folder = a.phone_folder
        AND p.name = a.phone_name AND p.present = 1
    WHERE a.udid = ?
"""


@dataclass(frozen=True, slots=True)
class StoredAsset:
    """One row of ``library_assets``."""

    uuid: str
    phone_folder: str | None
    phone_name: str | None
    original_filename: str | None
    created_utc: str | None
    utc_offset_seconds: int | None
    favorite: bool
    hidden: bool
    trashed: bool
    original_local: bool | None
    albums: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CloudOnlyAsset:
    """An original that is only in iCloud, by name and date, and how rollkeeper knows."""

    uuid: str
    name: str
    phone_path: str | None
    created_utc: str | None
    utc_offset_seconds: int | None
    #: ``marked_not_local`` (the library says so), ``unreadable`` (listed, read failed with an
    #: I/O error), ``not_listed`` (the library lists it, the phone's folder does not).
    reason: str


@dataclass(frozen=True, slots=True)
class LibraryCounts:
    """A phone's assets, how many of their originals are archived, and how many only in iCloud."""

    assets: int
    archived: int
    cloud_only: int


@dataclass(frozen=True, slots=True)
class LibraryReadRecord:
    """One row of ``library_reads``."""

    id: int
    udid: str
    read_at: str
    snapshot: str
    snapshot_taken_at: str | None
    outcome: str
    detail: str
    generation: str
    degraded: tuple[str, ...]
    assets: int
    sidecars_written: int
    sidecars_left_alone: int
    sidecars_dropping: int
    sidecars_total: int


@dataclass(frozen=True, slots=True)
class SidecarVersion:
    """The newest sidecar rollkeeper wrote beside one archived file."""

    relative_path: str
    version: int
    content_hash: str
    facts: dict[str, object]


_READ_COLUMNS = (
    "id, udid, read_at, snapshot, snapshot_taken_at, outcome, detail, generation, degraded,"
    " assets, sidecars_written, sidecars_left_alone, sidecars_dropping, sidecars_total"
)


def _json_list(text: object) -> tuple[str, ...]:
    try:
        value = json.loads(str(text))
    except ValueError:
        return ()
    return tuple(str(item) for item in value) if isinstance(value, list) else ()


def _read_record(row: tuple[object, ...]) -> LibraryReadRecord:
    return LibraryReadRecord(
        id=int(str(row[0])),
        udid=str(row[1]),
        read_at=str(row[2]),
        snapshot=str(row[3]),
        snapshot_taken_at=None if row[4] is None else str(row[4]),
        outcome=str(row[5]),
        detail=str(row[6]),
        generation=str(row[7]),
        degraded=_json_list(row[8]),
        assets=int(str(row[9])),
        sidecars_written=int(str(row[10])),
        sidecars_left_alone=int(str(row[11])),
        sidecars_dropping=int(str(row[12])),
        sidecars_total=int(str(row[13])),
    )


def _optional_int(value: object) -> int | None:
    return None if value is None else int(str(value))


class LibraryRepository:
    """Reads and writes of the library tables, on a store's one connection."""

    def __init__(self, database: Database) -> None:
        self._database = database

    # -- assets ------------------------------------------------------------------------------

    def replace_assets(self, udid: str, assets: Iterable[StoredAsset]) -> None:
        """What an applied read says of a phone's assets, replacing the last one (one
        transaction: a crash leaves the old read or the new one)."""
        with self._database.transaction():
            self._database.execute("DELETE FROM library_assets WHERE udid = ?", (udid,))
            self._database.executemany(
                "INSERT OR REPLACE INTO library_assets (udid, uuid, phone_folder, phone_name,"
                " original_filename, created_utc, utc_offset_seconds, favorite, hidden, trashed,"
                " original_local, albums) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    (
                        udid,
                        asset.uuid,
                        asset.phone_folder,
                        asset.phone_name,
                        asset.original_filename,
                        asset.created_utc,
                        asset.utc_offset_seconds,
                        int(asset.favorite),
                        int(asset.hidden),
                        int(asset.trashed),
                        None if asset.original_local is None else int(asset.original_local),
                        json.dumps(list(asset.albums), ensure_ascii=False),
                    )
                    for asset in assets
                ),
            )

    def asset_at(self, udid: str, folder: str, name: str) -> StoredAsset | None:
        """The asset whose original is ``folder/name`` on the phone, if the library has one."""
        row = self._database.execute(
            "SELECT uuid, phone_folder, phone_name, original_filename, created_utc,"
            " utc_offset_seconds, favorite, hidden, trashed, original_local, albums"
            " FROM library_assets WHERE udid = ? AND phone_folder = ? AND phone_name = ?"
            " ORDER BY uuid LIMIT 1",
            (udid, folder, name),
        ).fetchone()
        if row is None:
            return None
        return StoredAsset(
            uuid=str(row[0]),
            phone_folder=None if row[1] is None else str(row[1]),
            phone_name=None if row[2] is None else str(row[2]),
            original_filename=None if row[3] is None else str(row[3]),
            created_utc=None if row[4] is None else str(row[4]),
            utc_offset_seconds=_optional_int(row[5]),
            favorite=bool(row[6]),
            hidden=bool(row[7]),
            trashed=bool(row[8]),
            original_local=None if row[9] is None else bool(row[9]),
            albums=_json_list(row[10]),
        )

    def settle_offloaded(self, udid: str) -> int:
        """Present files of a phone that failed to read and whose original the library marks
        as only in iCloud become :data:`ICLOUD_ONLY`; returns how many changed."""
        cursor = self._database.execute(
            f"UPDATE phone_files SET status = '{ICLOUD_ONLY}'"
            " WHERE udid = ? AND present = 1 AND status = 'failed'"
            f" AND failure_reason IN ('read_error', '{IO_ERROR_REASON}') AND EXISTS ("
            "  SELECT 1 FROM library_assets a WHERE a.udid = phone_files.udid"
            "  AND a.phone_folder = phone_files.folder AND a.phone_name = phone_files.name"
            "  AND a.original_local = 0)",
            (udid,),
        )
        return cursor.rowcount

    # -- what is only in iCloud ----------------------------------------------------------------

    def cloud_only(self, udid: str, limit: int | None = None) -> list[CloudOnlyAsset]:
        """The originals of a phone only in iCloud and not archived, by name (see
        :class:`CloudOnlyAsset` for the reasons)."""
        query = (
            "SELECT * FROM (SELECT a.uuid, coalesce(a.original_filename, a.phone_name, a.uuid),"
            " CASE WHEN a.phone_folder IS NULL THEN NULL"
            " ELSE a.phone_folder || '/' || a.phone_name END,"
            f" a.created_utc, a.utc_offset_seconds, {_CLOUD_ONLY_REASON} AS reason"
            f" {_FROM_ASSETS} AND NOT {_ARCHIVED}) WHERE reason != '' ORDER BY 2, 1"
        )
        parameters: list[object] = [udid]
        if limit is not None:
            query += " LIMIT ?"
            parameters.append(limit)
        return [
            CloudOnlyAsset(
                uuid=str(row[0]),
                name=str(row[1]),
                phone_path=None if row[2] is None else str(row[2]),
                created_utc=None if row[3] is None else str(row[3]),
                utc_offset_seconds=_optional_int(row[4]),
                reason=str(row[5]),
            )
            for row in self._database.execute(query, parameters)
        ]

    def counts(self, udid: str) -> LibraryCounts:
        """Assets of the phone's last applied read, archived originals, originals only in iCloud."""
        row = self._database.execute(
            f"SELECT count(*), coalesce(sum(archived), 0), coalesce(sum(reason != ''), 0)"
            f" FROM (SELECT {_ARCHIVED} AS archived,"
            f" CASE WHEN {_ARCHIVED} THEN '' ELSE {_CLOUD_ONLY_REASON} END AS reason"
            f" {_FROM_ASSETS})",
            (udid,),
        ).fetchone()
        return LibraryCounts(int(row[0]), int(row[1]), int(row[2]))

    # -- reads -------------------------------------------------------------------------------

    def record_read(self, record: LibraryReadRecord, now: datetime | None = None) -> int:
        """Remember one read (its ``id`` and ``read_at`` are filled in here); returns its id."""
        cursor = self._database.execute(
            "INSERT INTO library_reads (udid, read_at, snapshot, snapshot_taken_at, outcome,"
            " detail, generation, degraded, assets, sidecars_written, sidecars_left_alone,"
            " sidecars_dropping, sidecars_total) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.udid,
                utc_now_text(now),
                record.snapshot,
                record.snapshot_taken_at,
                record.outcome,
                record.detail,
                record.generation,
                json.dumps(list(record.degraded), ensure_ascii=False),
                record.assets,
                record.sidecars_written,
                record.sidecars_left_alone,
                record.sidecars_dropping,
                record.sidecars_total,
            ),
        )
        assert cursor.lastrowid is not None
        return int(cursor.lastrowid)

    def last_read(self, udid: str) -> LibraryReadRecord | None:
        """The newest read of a phone's library, whatever came of it."""
        row = self._database.execute(
            f"SELECT {_READ_COLUMNS} FROM library_reads WHERE udid = ? ORDER BY id DESC LIMIT 1",
            (udid,),
        ).fetchone()
        return None if row is None else _read_record(tuple(row))

    # -- sidecars ------------------------------------------------------------------------------

    def latest_sidecar(self, relative_path: str) -> SidecarVersion | None:
        """The newest sidecar version written beside an archived file, if any."""
        row = self._database.execute(
            "SELECT relative_path, version, content_hash, facts FROM library_sidecars"
            " WHERE relative_path = ? ORDER BY version DESC LIMIT 1",
            (relative_path,),
        ).fetchone()
        if row is None:
            return None
        try:
            facts = json.loads(str(row[3]))
        except ValueError:
            facts = {}
        return SidecarVersion(
            str(row[0]), int(row[1]), str(row[2]), facts if isinstance(facts, dict) else {}
        )

    def sidecar_versions(self, relative_path: str) -> int:
        """How many versions of a sidecar rollkeeper wrote."""
        row = self._database.execute(
            "SELECT count(*) FROM library_sidecars WHERE relative_path = ?", (relative_path,)
        ).fetchone()
        return int(row[0])

    def add_sidecar_version(
        self,
        relative_path: str,
        content_hash: str,
        facts: dict[str, object],
        now: datetime | None = None,
    ) -> int:
        """Record a sidecar just written (after its rename); returns its version number."""
        with self._database.transaction():
            row = self._database.execute(
                "SELECT coalesce(max(version), 0) FROM library_sidecars WHERE relative_path = ?",
                (relative_path,),
            ).fetchone()
            version = int(row[0]) + 1
            self._database.execute(
                "INSERT INTO library_sidecars (relative_path, version, content_hash, facts,"
                " written_at) VALUES (?, ?, ?, ?, ?)",
                (
                    relative_path,
                    version,
                    content_hash,
                    json.dumps(facts, ensure_ascii=False, sort_keys=True),
                    utc_now_text(now),
                ),
            )
        return version

    def replace_sidecar_notes(
        self, udid: str, notes: Iterable[tuple[str, str]], now: datetime | None = None
    ) -> None:
        """The sidecars this read of a phone left alone, ``(relative_path, reason)``."""
        stamp = utc_now_text(now)
        with self._database.transaction():
            self._database.execute("DELETE FROM library_sidecar_notes WHERE udid = ?", (udid,))
            self._database.executemany(
                "INSERT OR REPLACE INTO library_sidecar_notes (udid, relative_path, reason,"
                " noted_at) VALUES (?, ?, ?, ?)",
                ((udid, path, reason, stamp) for path, reason in notes),
            )

    def sidecar_notes(self, udid: str, limit: int = 100) -> list[tuple[str, str]]:
        """``(relative_path, reason)`` of the sidecars the last read of a phone left alone."""
        rows = self._database.execute(
            "SELECT relative_path, reason FROM library_sidecar_notes WHERE udid = ?"
            " ORDER BY relative_path LIMIT ?",
            (udid, limit),
        ).fetchall()
        return [(str(path), str(reason)) for path, reason in rows]

    # -- album folders -----------------------------------------------------------------------

    def album_links(self) -> dict[str, tuple[str, str]]:
        """``link_path -> (target_path, kind)`` of every link rollkeeper made under Albums/."""
        rows = self._database.execute(
            "SELECT link_path, target_path, kind FROM library_album_links"
        ).fetchall()
        return {str(link): (str(target), str(kind)) for link, target, kind in rows}

    def set_album_link(self, link_path: str, target_path: str, kind: str) -> None:
        """Remember a link just made."""
        self._database.execute(
            "INSERT OR REPLACE INTO library_album_links (link_path, target_path, kind)"
            " VALUES (?, ?, ?)",
            (link_path, target_path, kind),
        )

    def forget_album_link(self, link_path: str) -> None:
        """Forget a link removed (or no longer ours)."""
        self._database.execute("DELETE FROM library_album_links WHERE link_path = ?", (link_path,))

    def albums_by_archive_path(self) -> dict[str, set[str]]:
        """Album titles of every archived file, over every phone's last applied read."""
        rows = self._database.execute(
            "SELECT f.archive_path, a.albums FROM library_assets a JOIN phone_files f"
            " ON f.udid = a.udid AND f.folder = a.phone_folder AND f.name = a.phone_name"
            f" AND f.status = '{ARCHIVED}' WHERE a.albums != '[]' AND f.archive_path IS NOT NULL"
        ).fetchall()
        found: dict[str, set[str]] = {}
        for path, albums in rows:
            found.setdefault(str(path), set()).update(_json_list(albums))
        return found
