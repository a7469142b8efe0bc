"""The ``offsite_runs`` table: one row per run of the offsite engine (restic or rclone).

A copy run is opened before the engine starts and closed with what it did (snapshot id, bytes
added, exit code, error), so a run cut short by a crash stays visible as ``running`` until the
next service start closes it as ``interrupted``. ``status`` reads the last copy, the last
attempt and the last check from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rollkeeper.store.database import Database
from rollkeeper.store.records import parse_timestamp, utc_now_text

#: Kinds of run.
COPY = "copy"
CHECK = "check"

#: Outcomes of a run.
RUNNING = "running"
COMPLETE = "complete"
FAILED = "failed"
SKIPPED = "skipped"
INTERRUPTED = "interrupted"


@dataclass(frozen=True, slots=True)
class OffsiteRunRecord:
    """One offsite run as stored."""

    id: int
    kind: str
    engine: str
    destination: str
    trigger: str
    started_at: str
    finished_at: str | None
    outcome: str
    exit_code: int | None
    snapshot_id: str
    bytes_added: int | None
    files_new: int | None
    error: str

    @property
    def duration_seconds(self) -> float | None:
        """How long the run took, or None while it runs."""
        started = parse_timestamp(self.started_at)
        finished = parse_timestamp(self.finished_at)
        if started is None or finished is None:
            return None
        return round((finished - started).total_seconds(), 3)

    def as_dict(self) -> dict[str, object]:
        """The JSON form (``status --json``, ``offsite status --json``)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "engine": self.engine,
            "destination": self.destination,
            "trigger": self.trigger,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "outcome": self.outcome,
            "exit_code": self.exit_code,
            "snapshot_id": self.snapshot_id,
            "bytes_added": self.bytes_added,
            "files_new": self.files_new,
            "duration_seconds": self.duration_seconds,
            "error": self.error,
        }


OFFSITE_COLUMNS = ", ".join(OffsiteRunRecord.__slots__)


class OffsiteRunRepository:
    """Reads and writes of ``offsite_runs``, on a store's one connection."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def start(
        self, kind: str, engine: str, destination: str, trigger: str, now: datetime | None = None
    ) -> int:
        """Open a run row; returns its id."""
        cursor = self._database.execute(
            "INSERT INTO offsite_runs (kind, engine, destination, trigger, started_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (kind, engine, destination, trigger, utc_now_text(now)),
        )
        assert cursor.lastrowid is not None
        return int(cursor.lastrowid)

    def finish(
        self,
        run_id: int,
        outcome: str,
        *,
        exit_code: int | None = None,
        snapshot_id: str = "",
        bytes_added: int | None = None,
        files_new: int | None = None,
        error: str = "",
        now: datetime | None = None,
    ) -> None:
        """Close a run with what it did."""
        self._database.execute(
            "UPDATE offsite_runs SET finished_at = ?, outcome = ?, exit_code = ?,"
            " snapshot_id = ?, bytes_added = ?, files_new = ?, error = ? WHERE id = ?",
            (
                utc_now_text(now),
                outcome,
                exit_code,
                snapshot_id,
                bytes_added,
                files_new,
                error,
                run_id,
            ),
        )

    def close_unfinished(self, now: datetime | None = None) -> int:
        """Runs left ``running`` by a process that died are ``interrupted``; returns how many."""
        cursor = self._database.execute(
            "UPDATE offsite_runs SET outcome = ?, finished_at = ? WHERE outcome = ?",
            (INTERRUPTED, utc_now_text(now), RUNNING),
        )
        return cursor.rowcount

    def runs(self, kind: str | None = None, limit: int = 20) -> list[OffsiteRunRecord]:
        """The latest runs (of one kind), newest first."""
        query = f"SELECT {OFFSITE_COLUMNS} FROM offsite_runs"
        parameters: list[object] = []
        if kind is not None:
            query += " WHERE kind = ?"
            parameters.append(kind)
        query += " ORDER BY id DESC LIMIT ?"
        parameters.append(limit)
        return [OffsiteRunRecord(*row) for row in self._database.execute(query, parameters)]

    def run(self, run_id: int) -> OffsiteRunRecord | None:
        """One run by its id."""
        row = self._database.execute(
            f"SELECT {OFFSITE_COLUMNS} FROM offsite_runs WHERE id = ?", (run_id,)
        ).fetchone()
        return None if row is None else OffsiteRunRecord(*row)

    def first(self, kind: str) -> OffsiteRunRecord | None:
        """The oldest run of ``kind`` (when offsite copies began)."""
        row = self._database.execute(
            f"SELECT {OFFSITE_COLUMNS} FROM offsite_runs WHERE kind = ? ORDER BY id LIMIT 1",
            (kind,),
        ).fetchone()
        return None if row is None else OffsiteRunRecord(*row)

    def last(self, kind: str, outcomes: tuple[str, ...] = ()) -> OffsiteRunRecord | None:
        """The newest run of ``kind`` (with one of ``outcomes``, when given)."""
        query = f"SELECT {OFFSITE_COLUMNS} FROM offsite_runs WHERE kind = ?"
        parameters: list[object] = [kind]
        if outcomes:
            query += f" AND outcome IN ({', '.join('?' for _ in outcomes)})"
            parameters.extend(outcomes)
        row = self._database.execute(query + " ORDER BY id DESC LIMIT 1", parameters).fetchone()
        return None if row is None else OffsiteRunRecord(*row)
