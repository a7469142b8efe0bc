"""Read-only queries behind ``status``, ``history`` and ``audit``, over the state schema.

:mod:`rollkeeper.store.state` owns the schema and every write; this module only reads, on the
connection of a (usually read-only) :class:`~rollkeeper.store.state.StateStore`, so one command
sees one consistent snapshot and never blocks the service (WAL readers do not block writers).
Queries are aggregate or bounded (``LIMIT``): ``status`` on a 150k-file manifest must stay fast.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime

from rollkeeper.store.state import ARCHIVED, EXCLUDED, FAILED, PENDING, RunRecord, StateStore

_RUN_COLUMNS = ", ".join(RunRecord.__slots__)


@dataclass(frozen=True, slots=True)
class FileCounts:
    """Files the phone showed at its last scan (``present``), by manifest status."""

    on_phone: int
    archived: int
    pending: int
    failed: int
    excluded: int


@dataclass(frozen=True, slots=True)
class FailedFile:
    """A file on the phone whose copy failed, and why."""

    phone_path: str
    size: int
    reason: str


@dataclass(frozen=True, slots=True)
class RunFailure:
    """One failure recorded in a run (a file, or an item rejected before it became one)."""

    run_id: int
    phone_path: str
    reason: str
    detail: str


class Reports:
    """Read-only report queries on one SQLite connection."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    @classmethod
    def for_store(cls, store: StateStore) -> Reports:
        """Queries on ``store``'s own connection (one snapshot with the store's own reads)."""
        # The store exposes no public connection; reading through it keeps one connection per
        # command. Only SELECTs run here.
        return cls(store._connection)

    def file_counts(self, udid: str) -> FileCounts:
        """How many files the phone showed at its last scan, archived, pending, failed, excluded."""
        row = self._connection.execute(
            "SELECT count(*),"
            " coalesce(sum(status = ?), 0), coalesce(sum(status = ?), 0),"
            " coalesce(sum(status = ?), 0), coalesce(sum(status = ?), 0)"
            " FROM phone_files WHERE udid = ? AND present = 1",
            (ARCHIVED, PENDING, FAILED, EXCLUDED, udid),
        ).fetchone()
        return FileCounts(*(int(value) for value in row))

    def archived_not_on_phone(self, udid: str) -> int:
        """Files of this phone the archive keeps that the phone no longer lists (deleted on the
        phone, or offloaded to iCloud): the archive is add-only, so they stay."""
        row = self._connection.execute(
            "SELECT count(*) FROM phone_files WHERE udid = ? AND present = 0 AND status = ?",
            (udid, ARCHIVED),
        ).fetchone()
        return int(row[0])

    def last_finished_run(self, udid: str) -> RunRecord | None:
        """The newest run of a phone that has ended (any outcome but ``running``)."""
        row = self._connection.execute(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE udid = ? AND outcome != 'running'"
            " ORDER BY id DESC LIMIT 1",
            (udid,),
        ).fetchone()
        return None if row is None else RunRecord(*row)

    def running_run(self, udid: str) -> RunRecord | None:
        """The run of a phone still marked ``running`` (under way, or left by a dead process)."""
        row = self._connection.execute(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE udid = ? AND outcome = 'running'"
            " ORDER BY id DESC LIMIT 1",
            (udid,),
        ).fetchone()
        return None if row is None else RunRecord(*row)

    def device_archive_size(self, udid: str) -> tuple[int, int]:
        """(files, bytes) in the archive that came from this phone (each archive file once)."""
        row = self._connection.execute(
            "SELECT count(*), coalesce(sum(size), 0) FROM archive_files WHERE relative_path IN"
            " (SELECT archive_path FROM phone_files WHERE udid = ? AND status = ?"
            " AND archive_path IS NOT NULL)",
            (udid, ARCHIVED),
        ).fetchone()
        return int(row[0]), int(row[1])

    def failed_files(self, udid: str, limit: int = 1000) -> list[FailedFile]:
        """Files on the phone now whose copy failed, with the reason, by path."""
        rows = self._connection.execute(
            "SELECT folder, name, size, failure_reason FROM phone_files"
            " WHERE udid = ? AND present = 1 AND status = ? ORDER BY folder, name LIMIT ?",
            (udid, FAILED, limit),
        ).fetchall()
        return [FailedFile(f"{row[0]}/{row[1]}", int(row[2]), str(row[3])) for row in rows]

    def runs(
        self,
        udid: str | None = None,
        *,
        with_failures_only: bool = False,
        limit: int = 20,
    ) -> list[RunRecord]:
        """Runs, newest first; ``with_failures_only`` keeps failed runs and runs with failures."""
        query = f"SELECT {_RUN_COLUMNS} FROM runs WHERE 1 = 1"
        parameters: list[object] = []
        if udid is not None:
            query += " AND udid = ?"
            parameters.append(udid)
        if with_failures_only:
            query += (
                " AND (outcome = 'failed' OR files_failed > 0 OR items_rejected > 0"
                " OR EXISTS (SELECT 1 FROM run_failures WHERE run_failures.run_id = runs.id))"
            )
        query += " ORDER BY id DESC LIMIT ?"
        parameters.append(limit)
        return [RunRecord(*row) for row in self._connection.execute(query, parameters)]

    def run_failures(self, run_ids: Iterable[int], limit_per_run: int = 1000) -> list[RunFailure]:
        """Failures recorded in the given runs, in the order they happened."""
        failures: list[RunFailure] = []
        for run_id in run_ids:
            rows = self._connection.execute(
                "SELECT phone_path, reason, detail FROM run_failures WHERE run_id = ?"
                " ORDER BY rowid LIMIT ?",
                (run_id, limit_per_run),
            ).fetchall()
            failures.extend(RunFailure(run_id, str(a), str(b), str(c)) for a, b, c in rows)
        return failures

    def unresolved_archive_paths(self, paths: Iterable[str], since: datetime) -> list[str]:
        """Of archive paths an archive check flagged at ``since``, those still in question: the
        database still vouches for them and they were not verified again after ``since`` (a
        later ``rollkeeper verify`` or scrub that matched them settles them)."""
        unresolved: list[str] = []
        for path in paths:
            row = self._connection.execute(
                "SELECT verified_at FROM archive_files WHERE relative_path = ?", (path,)
            ).fetchone()
            if row is None:
                continue  # no longer vouched for: dealt with
            verified = parse_timestamp(row[0])
            if verified is None or verified <= since:
                unresolved.append(path)
        return unresolved

    def known_udids(self) -> list[str]:
        """Every phone in the database."""
        rows = self._connection.execute("SELECT udid FROM devices ORDER BY udid").fetchall()
        return [str(row[0]) for row in rows]


def parse_timestamp(text: str | None) -> datetime | None:
    """A stored ISO 8601 timestamp (aware, UTC), or None for NULL or empty."""
    return datetime.fromisoformat(text) if text else None


def run_duration_seconds(run: RunRecord) -> float | None:
    """How long a finished run took, or None while it runs."""
    started = parse_timestamp(run.started_at)
    finished = parse_timestamp(run.finished_at)
    if started is None or finished is None:
        return None
    return round((finished - started).total_seconds(), 3)


def run_as_dict(run: RunRecord) -> dict[str, object]:
    """A run as the JSON object of ``status --json`` and ``history --json`` (docs/status.md)."""
    values: dict[str, object] = asdict(run)
    values["duration_seconds"] = run_duration_seconds(run)
    return values
