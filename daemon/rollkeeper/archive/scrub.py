"""The scheduled scrub: re-verify the archive a bounded number of bytes at a time.

Each run takes the files verified longest ago (never-verified first) until the run's byte budget
is spent, re-hashes them at idle I/O priority in a worker thread, stamps the matching ones as
verified and reports the rest. Because a file that matched becomes the most recently verified,
successive runs walk round the whole archive; with a budget of at least

    archive bytes / runs per rotation + the largest file

(the largest file is the slack lost when the next file does not fit), every file is re-verified
within ``scrub_rotation_weeks``. :func:`~rollkeeper.archive.rotation.rotation_budget` computes this
from the cron cadence and each run warns (``scrub_budget_too_small``) when the configured budget
falls short; :mod:`rollkeeper.archive.rotation` holds that arithmetic and the choice of a run's
files, this module the runs themselves and their cron job.

A file larger than the whole budget is still taken when it is first in line, alone, so a long
video cannot stall the rotation forever. Missing or changed files are not stamped: they stay
first in line and are reported again on every run until someone looks at them.

The scheduled run happens entirely in a worker thread, on its own SQLite connection, so the
service's event loop never waits on the sort, the hashing or the write.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path

import structlog
from apscheduler.job import Job
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from rollkeeper.archive.crontab import crontab_trigger
from rollkeeper.archive.iopriority import idle_io_priority
from rollkeeper.archive.rotation import (
    MAX_COUNTED_RUNS,
    RotationBudget,
    count_runs,
    needed_bytes_per_run,
    rotation_budget,
    select_batch,
)
from rollkeeper.archive.verify import (
    EntryCheck,
    VerifyReport,
    archive_is_reachable,
    check_entry,
)
from rollkeeper.domain.archive_state import ArchiveProblem
from rollkeeper.store.archive_queries import (
    entries_inside_archive,
    largest_entry_size,
    least_recently_verified,
    mark_verified_many,
    mark_verify_failed_many,
    oldest_verification,
)
from rollkeeper.store.state import ArchiveEntry, StateStore

log = structlog.get_logger(__name__)

#: The APScheduler job id of the scrub (one per service).
SCRUB_JOB_ID = "scrub"

#: How late a scrub may still start after its time (a laptop asleep at 03:00 scrubs on waking).
SCRUB_MISFIRE_GRACE_SECONDS = 12 * 3600

Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class ScrubReport:
    """What one scrub run checked and found."""

    started_at: datetime
    finished_at: datetime | None = None
    files_checked: int = 0
    bytes_checked: int = 0
    bytes_per_run: int = 0
    io_priority: str = "unavailable"
    archive_unreachable: bool = False
    missing: list[EntryCheck] = field(default_factory=list)
    changed: list[EntryCheck] = field(default_factory=list)
    unreadable: list[EntryCheck] = field(default_factory=list)
    verified_paths: list[str] = field(default_factory=list)
    budget: RotationBudget | None = None
    oldest_verified_at: str | None = None

    @property
    def has_findings(self) -> bool:
        """True when something needs a human: damage, or an archive that is not there."""
        return self.archive_unreachable or bool(self.missing or self.changed or self.unreadable)

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready summary (for ``status`` and notifications)."""

        def paths(checks: list[EntryCheck]) -> list[str]:
            return [check.relative_path for check in checks]

        budget = self.budget
        return {
            "started_at": self.started_at.isoformat(),
            "finished_at": None if self.finished_at is None else self.finished_at.isoformat(),
            "files_checked": self.files_checked,
            "bytes_checked": self.bytes_checked,
            "bytes_per_run": self.bytes_per_run,
            "io_priority": self.io_priority,
            "archive_unreachable": self.archive_unreachable,
            "missing": paths(self.missing),
            "changed": paths(self.changed),
            "unreadable": paths(self.unreadable),
            "oldest_verified_at": self.oldest_verified_at,
            "runs_per_rotation": None if budget is None else budget.runs_per_rotation,
            "needed_bytes_per_run": None if budget is None else budget.needed_bytes_per_run,
            "budget_sufficient": None if budget is None else budget.sufficient,
        }


class ArchiveScrubber:
    """Rotates verification through the archive, a bounded number of bytes per run.

    ``store`` is a read-write store on the state database. :meth:`run_once` uses it on the
    calling thread. :meth:`run_in_worker` (what the scheduled job awaits) does the whole run in
    a worker thread on a second store that ``open_worker_store`` opens (the composition root
    passes it; the store is closed afterwards): SQLite connections belong to the thread that
    made them, and choosing the batch sorts every row (about half a second at 400,000 files),
    which must not stall the service's event loop. WAL mode lets the two connections work side
    by side; the scrub writes in one short transaction. ``cron`` (a crontab string) is the
    cadence used to check the budget against the rotation; :func:`schedule_scrub` sets it too.
    """

    def __init__(
        self,
        store: StateStore,
        archive_root: Path,
        *,
        bytes_per_run: int,
        rotation_weeks: float,
        cron: str | None = None,
        timezone: tzinfo | str | None = None,
        clock: Clock = _utc_now,
        open_worker_store: Callable[[], StateStore] | None = None,
    ) -> None:
        if bytes_per_run <= 0:
            raise ValueError("scrub_bytes_per_run must be positive")
        if rotation_weeks <= 0:
            raise ValueError("scrub_rotation_weeks must be positive")
        self.store = store
        self.archive_root = archive_root
        self.bytes_per_run = bytes_per_run
        self.rotation_weeks = rotation_weeks
        self.clock = clock
        self._open_worker_store = open_worker_store
        self.trigger: CronTrigger | None = (
            None if cron is None else crontab_trigger(cron, timezone=timezone)
        )

    # -- the three steps of a run ---------------------------------------------------------

    def plan(
        self, store: StateStore, now: datetime
    ) -> tuple[list[ArchiveEntry], RotationBudget | None]:
        """Choose this run's files, least recently verified first, and check the budget."""
        with closing(least_recently_verified(store)) as entries:
            batch = select_batch(entries, self.bytes_per_run)
        budget = None
        if self.trigger is not None:
            _, archive_bytes = store.archive_size()
            budget = rotation_budget(
                self.trigger,
                now,
                self.rotation_weeks,
                archive_bytes,
                largest_entry_size(store),
                self.bytes_per_run,
            )
        return batch, budget

    def check(self, batch: list[ArchiveEntry]) -> tuple[str, list[EntryCheck]]:
        """Re-hash the batch at idle I/O priority (file I/O only, no database)."""
        with idle_io_priority() as priority:
            return priority, [check_entry(self.archive_root, entry) for entry in batch]

    def record(
        self,
        store: StateStore,
        now: datetime,
        budget: RotationBudget | None,
        priority: str,
        checks: list[EntryCheck],
    ) -> ScrubReport:
        """Stamp matches as verified (one transaction), log findings, build the report."""
        # Filed by outcome as ``verify`` files them: one rule for what counts as checked.
        tally = VerifyReport()
        for check in checks:
            tally.add(check)
        report = ScrubReport(
            started_at=now,
            files_checked=tally.checked,
            bytes_checked=tally.bytes_checked,
            bytes_per_run=self.bytes_per_run,
            io_priority=priority,
            missing=tally.missing,
            changed=tally.changed,
            unreadable=tally.unreadable,
            verified_paths=tally.matched,
            budget=budget,
        )
        mark_verified_many(store, report.verified_paths, now)
        # Remembered so that `freeable` never calls a file in question safe to delete.
        mark_verify_failed_many(
            store,
            [
                check.relative_path
                for check in (*report.missing, *report.changed, *report.unreadable)
            ],
            now,
        )
        report.oldest_verified_at = oldest_verification(store)
        report.finished_at = self.clock()
        self._log(report)
        return report

    # -- whole runs -------------------------------------------------------------------------

    def run_once(self, now: datetime) -> ScrubReport:
        """One scrub run, entirely on the calling thread with ``store`` (tests, manual runs)."""
        return self._run(self.store, now)

    async def run_in_worker(self, now: datetime) -> ScrubReport:
        """One scrub run in a worker thread on its own connection; the event loop only waits."""
        return await asyncio.to_thread(self._run_on_own_connection, now)

    def _run_on_own_connection(self, now: datetime) -> ScrubReport:
        if self._open_worker_store is None:
            raise RuntimeError(
                "this scrubber was built without open_worker_store: it can only run_once"
            )
        store = self._open_worker_store()
        try:
            return self._run(store, now)
        finally:
            store.close()

    def _run(self, store: StateStore, now: datetime) -> ScrubReport:
        # Only files recorded inside the archive folder depend on it being there; files adopted
        # from elsewhere are checked where they are.
        if entries_inside_archive(store) > 0 and not (
            archive_is_reachable(self.archive_root) and self._identity_matches(store)
        ):
            return self._unreachable(now)
        batch, budget = self.plan(store, now)
        priority, checks = self.check(batch)
        return self.record(store, now, budget, priority, checks)

    def _identity_matches(self, store: StateStore) -> bool:
        """The archive carries the state's marker (docs/archive-truth.md): another disk at the
        path, or an empty mount point, is not checked file by file."""
        from rollkeeper.archive.identity import ArchiveGuard

        state = ArchiveGuard(self.archive_root).check(store.archive_truth)
        return state.available or state.problem in (ArchiveProblem.NEW, ArchiveProblem.UPGRADE)

    def _unreachable(self, now: datetime) -> ScrubReport:
        # An unmounted disk would make every file "missing": say the one true thing instead,
        # and stamp nothing.
        report = ScrubReport(started_at=now, bytes_per_run=self.bytes_per_run)
        report.archive_unreachable = True
        report.finished_at = self.clock()
        log.error("scrub_archive_unreachable", archive=str(self.archive_root))
        return report

    def _log(self, report: ScrubReport) -> None:
        budget = report.budget
        if budget is not None and not budget.sufficient:
            log.warning(
                "scrub_budget_too_small",
                bytes_per_run=budget.bytes_per_run,
                needed_bytes_per_run=budget.needed_bytes_per_run,
                runs_per_rotation=budget.runs_per_rotation,
                rotation_weeks=self.rotation_weeks,
                archive_bytes=budget.archive_bytes,
            )
        for check in report.missing:
            log.error("scrub_file_missing", path=check.relative_path, detail=check.detail)
        for check in report.changed:
            log.error(
                "scrub_file_changed",
                path=check.relative_path,
                expected_size=check.expected_size,
                actual_size=check.actual_size,
                expected_hash=check.expected_hash,
                actual_hash=check.actual_hash,
                detail=check.detail,
            )
        for check in report.unreadable:
            log.error("scrub_file_unreadable", path=check.relative_path, detail=check.detail)
        log.info(
            "scrub_finished",
            files_checked=report.files_checked,
            bytes_checked=report.bytes_checked,
            bytes_per_run=report.bytes_per_run,
            io_priority=report.io_priority,
            missing=len(report.missing),
            changed=len(report.changed),
            unreadable=len(report.unreadable),
            oldest_verified_at=report.oldest_verified_at,
        )


def schedule_scrub(
    scheduler: AsyncIOScheduler,
    scrubber: ArchiveScrubber,
    cron: str,
    on_findings: Callable[[ScrubReport], Awaitable[None]],
) -> Job:
    """Add (or replace) the ``scrub`` cron job; returns the APScheduler job.

    ``cron`` is a five-field crontab string with crontab's day numbers (Sunday = 0), in the
    scheduler's time zone. The job runs one scrub via :meth:`ArchiveScrubber.run_in_worker` and
    awaits ``on_findings`` when the report has findings. A scrub that raises is logged
    (``scrub_failed``) and the service carries on; the next run tries again.
    """
    trigger = crontab_trigger(cron, timezone=scheduler.timezone)
    scrubber.trigger = trigger

    async def scrub_job() -> None:
        try:
            report = await scrubber.run_in_worker(scrubber.clock())
        except Exception as error:
            log.exception("scrub_failed", error=f"{type(error).__name__}: {error}")
            return
        if report.has_findings:
            await on_findings(report)

    return scheduler.add_job(
        scrub_job,
        trigger=trigger,
        id=SCRUB_JOB_ID,
        name="archive scrub",
        replace_existing=True,
        max_instances=1,
        coalesce=True,
        misfire_grace_time=SCRUB_MISFIRE_GRACE_SECONDS,
    )


# The rotation's names were defined here before it had a module of its own.
__all__ = [
    "MAX_COUNTED_RUNS",
    "SCRUB_JOB_ID",
    "ArchiveScrubber",
    "RotationBudget",
    "ScrubReport",
    "count_runs",
    "needed_bytes_per_run",
    "rotation_budget",
    "schedule_scrub",
    "select_batch",
]
