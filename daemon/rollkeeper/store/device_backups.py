"""The ``device_backups`` table: every device backup attempt, and the snapshot it made."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rollkeeper.store.database import Database
from rollkeeper.store.records import parse_timestamp, utc_now_text

_COLUMNS = (
    "id, udid, started_at, finished_at, outcome, trigger, snapshot_id, files, bytes,"
    " added_bytes, files_received, encrypted, camera_roll_files, error"
)


@dataclass(frozen=True, slots=True)
class DeviceBackupRecord:
    """One device backup attempt."""

    id: int
    udid: str
    started_at: datetime
    finished_at: datetime | None
    outcome: str
    trigger: str
    snapshot_id: str | None
    files: int
    bytes: int
    added_bytes: int
    files_received: int
    encrypted: bool | None
    camera_roll_files: int | None
    error: str


def _record(row: tuple[object, ...]) -> DeviceBackupRecord:
    started = parse_timestamp(str(row[2]))
    assert started is not None
    encrypted = row[11]
    return DeviceBackupRecord(
        id=int(str(row[0])),
        udid=str(row[1]),
        started_at=started,
        finished_at=parse_timestamp(row[3] if isinstance(row[3], str) else None),
        outcome=str(row[4]),
        trigger=str(row[5]),
        snapshot_id=row[6] if isinstance(row[6], str) else None,
        files=int(str(row[7])),
        bytes=int(str(row[8])),
        added_bytes=int(str(row[9])),
        files_received=int(str(row[10])),
        encrypted=None if encrypted is None else bool(encrypted),
        camera_roll_files=None if row[12] is None else int(str(row[12])),
        error=str(row[13]),
    )


class DeviceBackupRepository:
    """Reads and writes of ``device_backups`` on a store's one connection."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def start(self, udid: str, trigger: str, now: datetime | None = None) -> int:
        """A new attempt, ``running``; its id."""
        cursor = self._database.execute(
            "INSERT INTO device_backups (udid, started_at, trigger) VALUES (?, ?, ?)",
            (udid, utc_now_text(now), trigger),
        )
        return int(cursor.lastrowid or 0)

    def finish(
        self,
        backup_id: int,
        outcome: str,
        *,
        now: datetime | None = None,
        snapshot_id: str | None = None,
        files: int = 0,
        size: int = 0,
        added_bytes: int = 0,
        files_received: int = 0,
        encrypted: bool | None = None,
        camera_roll_files: int | None = None,
        error: str = "",
    ) -> None:
        """Record how an attempt ended."""
        self._database.execute(
            "UPDATE device_backups SET finished_at = ?, outcome = ?, snapshot_id = ?, files = ?,"
            " bytes = ?, added_bytes = ?, files_received = ?, encrypted = ?,"
            " camera_roll_files = ?, error = ? WHERE id = ?",
            (
                utc_now_text(now),
                outcome,
                snapshot_id,
                files,
                size,
                added_bytes,
                files_received,
                None if encrypted is None else int(encrypted),
                camera_roll_files,
                error,
                backup_id,
            ),
        )

    def abandon_running(self, now: datetime | None = None) -> None:
        """Attempts still ``running`` from a process that died: they ended unfinished."""
        self._database.execute(
            "UPDATE device_backups SET outcome = 'failed', finished_at = ?,"
            " error = 'the service stopped during the backup' WHERE outcome = 'running'",
            (utc_now_text(now),),
        )

    def last(self, udid: str) -> DeviceBackupRecord | None:
        """The newest attempt for a phone (any outcome)."""
        row = self._database.execute(
            f"SELECT {_COLUMNS} FROM device_backups WHERE udid = ? ORDER BY id DESC LIMIT 1",
            (udid,),
        ).fetchone()
        return None if row is None else _record(tuple(row))

    def last_completed(self, udid: str) -> DeviceBackupRecord | None:
        """The newest completed backup of a phone."""
        row = self._database.execute(
            f"SELECT {_COLUMNS} FROM device_backups WHERE udid = ? AND outcome = 'completed'"
            " ORDER BY id DESC LIMIT 1",
            (udid,),
        ).fetchone()
        return None if row is None else _record(tuple(row))

    def history(self, udid: str | None = None, limit: int = 100) -> list[DeviceBackupRecord]:
        """Attempts, newest first (one phone's, or every phone's)."""
        if udid is None:
            rows = self._database.execute(
                f"SELECT {_COLUMNS} FROM device_backups ORDER BY id DESC LIMIT ?", (limit,)
            ).fetchall()
        else:
            rows = self._database.execute(
                f"SELECT {_COLUMNS} FROM device_backups WHERE udid = ? ORDER BY id DESC LIMIT ?",
                (udid, limit),
            ).fetchall()
        return [_record(tuple(row)) for row in rows]
