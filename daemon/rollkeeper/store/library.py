"""The library tables: each phone's last applied Photos library read, its reads, the sidecars.

``library_assets`` holds what the last *applied* read of a phone's library said of each asset
(a suspect read is recorded in ``library_reads`` but changes nothing here), so ``status`` can
name the originals only in iCloud without the phone, and a run can date a file that carries no
date of its own. The sidecars and album links are :mod:`.library_sidecars`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
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
        WHEN a.original_local IS NULL AND a.trashed = 0 AND a.phone_folder IS NOT NULL
            AND p.id IS NULL
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


_READ_COLUMNS = (
    "id, udid, read_at, snapshot, snapshot_taken_at, outcome, detail, generation, degraded,"
    " assets, sidecars_written, sidecars_left_alone, sidecars_dropping, sidecars_total"
)


def json_list(text: object) -> tuple[str, ...]:
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
        degraded=json_list(row[8]),
        assets=int(str(row[9])),
        sidecars_written=int(str(row[10])),
        sidecars_left_alone=int(str(row[11])),
        sidecars_dropping=int(str(row[12])),
        sidecars_total=int(str(row[13])),
    )


def _optional_int(value: object) -> int | None:
    return None if value is None else int(str(value))


def _optional_text(value: object) -> str | None:
    return None if value is None else str(value)


_ASSET_COLUMNS = (
    "a.uuid, a.phone_folder, a.phone_name, a.original_filename, a.created_utc,"
    " a.utc_offset_seconds, a.favorite, a.hidden, a.trashed, a.original_local, a.albums"
)


def _stored_asset(row: tuple[object, ...]) -> StoredAsset:
    return StoredAsset(
        uuid=str(row[0]),
        phone_folder=_optional_text(row[1]),
        phone_name=_optional_text(row[2]),
        original_filename=_optional_text(row[3]),
        created_utc=_optional_text(row[4]),
        utc_offset_seconds=_optional_int(row[5]),
        favorite=bool(row[6]),
        hidden=bool(row[7]),
        trashed=bool(row[8]),
        original_local=None if row[9] is None else bool(row[9]),
        albums=json_list(row[10]),
    )


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
            f"SELECT {_ASSET_COLUMNS} FROM library_assets a"
            " WHERE a.udid = ? AND a.phone_folder = ? AND a.phone_name = ?"
            " ORDER BY a.uuid LIMIT 1",
            (udid, folder, name),
        ).fetchone()
        return None if row is None else _stored_asset(tuple(row))

    def archive_paths(self, udid: str) -> dict[str, str]:
        """Phone path -> archive path of every archived file of a phone (present or not)."""
        rows = self._database.execute(
            "SELECT folder, name, archive_path FROM phone_files"
            " WHERE udid = ? AND status = ? AND archive_path IS NOT NULL",
            (udid, ARCHIVED),
        ).fetchall()
        return {f"{folder}/{name}": str(path) for folder, name, path in rows}

    def other_phones_assets(self, udid: str) -> dict[str, list[StoredAsset]]:
        """Archive path -> the assets of *other* phones stored as that file (a file stored once
        for assets of several phones carries all their albums)."""
        rows = self._database.execute(
            f"SELECT f.archive_path, {_ASSET_COLUMNS} FROM library_assets a JOIN phone_files f"
            " ON f.udid = a.udid AND f.folder = a.phone_folder AND f.name = a.phone_name"
            f" AND f.status = '{ARCHIVED}' WHERE a.udid != ? AND f.archive_path IS NOT NULL",
            (udid,),
        ).fetchall()
        found: dict[str, list[StoredAsset]] = {}
        for row in rows:
            found.setdefault(str(row[0]), []).append(_stored_asset(tuple(row[1:])))
        return found

    def favourite_paths(self, udid: str) -> frozenset[str] | None:
        """Phone paths of the originals of a phone's favourite assets, or None while no read of
        its library was ever applied (then favourites are not known)."""
        applied = self._database.execute(
            "SELECT 1 FROM library_reads WHERE udid = ? AND outcome = 'applied' LIMIT 1", (udid,)
        ).fetchone()
        if applied is None:
            return None
        rows = self._database.execute(
            "SELECT phone_folder, phone_name FROM library_assets WHERE udid = ? AND favorite = 1"
            " AND phone_folder IS NOT NULL AND phone_name IS NOT NULL",
            (udid,),
        ).fetchall()
        return frozenset(f"{folder}/{name}" for folder, name in rows)

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

    def photos_per_month(self, udid: str, extensions: Sequence[str]) -> dict[str, int] | None:
        """``YYYY-MM`` -> how many photos the phone's library holds from that month of capture
        (local time of capture, as the archive's months are counted), or None when no read of
        its library was ever applied. Photos are assets whose name ends in ``.EXT`` for one of
        ``extensions``; Recently Deleted is left out, as Photos leaves it out of the library."""
        applied = self._database.execute(
            "SELECT 1 FROM library_reads WHERE udid = ? AND outcome = 'applied' LIMIT 1", (udid,)
        ).fetchone()
        if applied is None:
            return None
        if not extensions:
            return {}
        name = "coalesce(a.phone_name, a.original_filename, '')"
        matches = " OR ".join(f"{name} LIKE ?" for _ in extensions)
        rows = self._database.execute(
            "SELECT strftime('%Y-%m', a.created_utc,"
            " printf('%+d seconds', coalesce(a.utc_offset_seconds, 0))) AS month, count(*)"
            f" FROM library_assets a WHERE a.udid = ? AND a.trashed = 0 AND ({matches})"
            " AND month IS NOT NULL GROUP BY month",
            (udid, *(f"%.{extension}" for extension in extensions)),
        )
        return {str(month): int(count) for month, count in rows}

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
