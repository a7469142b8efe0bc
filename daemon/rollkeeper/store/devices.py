"""The ``devices`` table: the phones rollkeeper has seen and what each is doing now."""

from __future__ import annotations

from datetime import datetime

from rollkeeper.store.database import Database
from rollkeeper.store.records import DEVICE_COLUMNS, DeviceRecord, utc_now_text


class DeviceRepository:
    """Reads and writes of the ``devices`` table, on a store's one connection."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def record_device_seen(
        self,
        udid: str,
        *,
        name: str | None = None,
        product_type: str | None = None,
        product_version: str | None = None,
        now: datetime | None = None,
    ) -> None:
        """Note that a phone is attached now; remember its name, model and iOS version."""
        stamp = utc_now_text(now)
        self._database.execute(
            "INSERT INTO devices (udid, first_seen_at, last_seen_at, state_changed_at)"
            " VALUES (?, ?, ?, ?)"
            " ON CONFLICT (udid) DO UPDATE SET last_seen_at = excluded.last_seen_at",
            (udid, stamp, stamp, stamp),
        )
        for column, value in (
            ("name", name),
            ("product_type", product_type),
            ("product_version", product_version),
        ):
            if value is not None:
                self._database.execute(
                    f"UPDATE devices SET {column} = ? WHERE udid = ?",
                    (value, udid),
                )

    def set_device_state(
        self, udid: str, state: str, detail: str = "", now: datetime | None = None
    ) -> None:
        """Record what a phone is doing now (``connected``, ``waiting_for_trust`` ...)."""
        stamp = utc_now_text(now)
        self._database.execute(
            "INSERT INTO devices (udid, first_seen_at, last_seen_at, state_changed_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (udid) DO NOTHING",
            (udid, stamp, stamp, stamp),
        )
        self._database.execute(
            "UPDATE devices SET state = ?, state_detail = ?, state_changed_at = ? WHERE udid = ?",
            (state, detail, stamp, udid),
        )

    def set_device_progress(
        self, udid: str, files_done: int, files_total: int, bytes_done: int, bytes_total: int
    ) -> None:
        """Record how far the current backup of a phone has come (for ``status``)."""
        self._database.execute(
            "UPDATE devices SET progress_files_done = ?, progress_files_total = ?,"
            " progress_bytes_done = ?, progress_bytes_total = ? WHERE udid = ?",
            (files_done, files_total, bytes_done, bytes_total, udid),
        )

    def mark_complete(self, run_id: int, stamp: str) -> None:
        """The phone of run ``run_id`` had a complete backup in that run, at ``stamp``.

        Called inside the transaction that closes the run, so the two never disagree.
        """
        self._database.execute(
            "UPDATE devices SET last_complete_run_id = ?, last_complete_at = ?"
            " WHERE udid = (SELECT udid FROM runs WHERE id = ?)",
            (run_id, stamp, run_id),
        )

    def device(self, udid: str) -> DeviceRecord | None:
        """One phone's record, or None if never seen."""
        row = self._database.execute(
            f"SELECT {DEVICE_COLUMNS} FROM devices WHERE udid = ?", (udid,)
        ).fetchone()
        return None if row is None else DeviceRecord(*row)

    def devices(self) -> list[DeviceRecord]:
        """Every phone ever seen, most recently seen first."""
        rows = self._database.execute(
            f"SELECT {DEVICE_COLUMNS} FROM devices ORDER BY last_seen_at DESC"
        ).fetchall()
        return [DeviceRecord(*row) for row in rows]

    def known_udids(self) -> list[str]:
        """Every phone in the database, by UDID."""
        rows = self._database.execute("SELECT udid FROM devices ORDER BY udid").fetchall()
        return [str(row[0]) for row in rows]

    def mark_all_devices_disconnected(self, now: datetime | None = None) -> None:
        """At start-up nothing is attached yet: clear states left by a previous process."""
        self._database.execute(
            "UPDATE devices SET state = 'disconnected', state_detail = '', state_changed_at = ?"
            " WHERE state != 'disconnected'",
            (utc_now_text(now),),
        )
