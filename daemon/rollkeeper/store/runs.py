"""The ``runs`` and ``run_failures`` tables: one row per backup run, and why files failed in it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from rollkeeper.store.database import Database
from rollkeeper.store.records import RUN_COLUMNS, RunCounts, RunFailure, RunRecord, utc_now_text


class RunRepository:
    """Reads and writes of ``runs`` and ``run_failures``, on a store's one connection."""

    def __init__(self, database: Database) -> None:
        self._database = database

    # -- writes ------------------------------------------------------------------------------

    def start_run(self, udid: str, now: datetime | None = None) -> int:
        """Open a run row for a phone; returns its id."""
        cursor = self._database.execute(
            "INSERT INTO runs (udid, started_at) VALUES (?, ?)", (udid, utc_now_text(now))
        )
        assert cursor.lastrowid is not None
        return int(cursor.lastrowid)

    def write_outcome(
        self, run_id: int, outcome: str, counts: RunCounts, error: str, stamp: str
    ) -> None:
        """Close a run's row with its outcome and counts (one statement of the transaction in
        which ``StateStore.finish_run`` also updates the phone of a complete run)."""
        self._database.execute(
            "UPDATE runs SET finished_at = ?, outcome = ?, files_found = ?, files_copied = ?,"
            " bytes_copied = ?, files_already_archived = ?, files_deduplicated = ?,"
            " files_excluded = ?, files_failed = ?, files_pending = ?,"
            " files_not_on_phone = ?, items_rejected = ?, error = ?, files_restored = ?,"
            " files_lost = ? WHERE id = ?",
            (
                stamp,
                outcome,
                counts.files_found,
                counts.files_copied,
                counts.bytes_copied,
                counts.files_already_archived,
                counts.files_deduplicated,
                counts.files_excluded,
                counts.files_failed,
                counts.files_pending,
                counts.files_not_on_phone,
                counts.items_rejected,
                error,
                counts.files_restored,
                counts.files_lost,
                run_id,
            ),
        )

    def add_run_failure(self, run_id: int, phone_path: str, reason: str, detail: str = "") -> None:
        """Remember why one file (or rejected item) failed in a run."""
        self._database.execute(
            "INSERT INTO run_failures (run_id, phone_path, reason, detail) VALUES (?, ?, ?, ?)",
            (run_id, phone_path, reason, detail),
        )

    def close_unfinished_runs(self, now: datetime | None = None) -> int:
        """Runs left 'running' by a process that died are 'interrupted'; returns how many."""
        cursor = self._database.execute(
            "UPDATE runs SET outcome = 'interrupted', finished_at = ? WHERE outcome = 'running'",
            (utc_now_text(now),),
        )
        return cursor.rowcount

    # -- reads -------------------------------------------------------------------------------

    def runs(
        self,
        udid: str | None = None,
        *,
        with_failures_only: bool = False,
        limit: int = 50,
    ) -> list[RunRecord]:
        """The latest runs, newest first; ``with_failures_only`` keeps failed runs and runs
        with failures."""
        query = f"SELECT {RUN_COLUMNS} FROM runs WHERE 1 = 1"
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
        return [RunRecord(*row) for row in self._database.execute(query, parameters)]

    def last_finished_run(self, udid: str) -> RunRecord | None:
        """The newest run of a phone that has ended (any outcome but ``running``)."""
        row = self._database.execute(
            f"SELECT {RUN_COLUMNS} FROM runs WHERE udid = ? AND outcome != 'running'"
            " ORDER BY id DESC LIMIT 1",
            (udid,),
        ).fetchone()
        return None if row is None else RunRecord(*row)

    def running_run(self, udid: str) -> RunRecord | None:
        """The run of a phone still marked ``running`` (under way, or left by a dead process)."""
        row = self._database.execute(
            f"SELECT {RUN_COLUMNS} FROM runs WHERE udid = ? AND outcome = 'running'"
            " ORDER BY id DESC LIMIT 1",
            (udid,),
        ).fetchone()
        return None if row is None else RunRecord(*row)

    def run_failures(self, run_id: int, limit: int | None = None) -> list[tuple[str, str, str]]:
        """(phone path, reason, detail) of each failure in a run, in the order they happened."""
        query = (
            "SELECT phone_path, reason, detail FROM run_failures WHERE run_id = ? ORDER BY rowid"
        )
        parameters: list[object] = [run_id]
        if limit is not None:
            query += " LIMIT ?"
            parameters.append(limit)
        rows = self._database.execute(query, parameters).fetchall()
        return [(str(a), str(b), str(c)) for a, b, c in rows]

    def failures_of_runs(
        self, run_ids: Iterable[int], limit_per_run: int = 1000
    ) -> list[RunFailure]:
        """Failures recorded in the given runs, run by run, in the order they happened."""
        failures: list[RunFailure] = []
        for run_id in run_ids:
            failures.extend(
                RunFailure(run_id, path, reason, detail)
                for path, reason, detail in self.run_failures(run_id, limit_per_run)
            )
        return failures
