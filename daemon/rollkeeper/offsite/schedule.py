"""When the service copies the archive offsite: after each complete backup, at most every N hours.

A complete backup asks for a copy (:meth:`OffsiteSchedule.backup_completed`). The copy starts
at once when the last copy started at least ``min_interval_hours`` ago, else when that interval
is over: one job (id ``offsite_copy``) on the service's APScheduler, never two at once, so a day
of plug-ins makes one copy and the day's last photos still go offsite within the interval. At
start-up, a complete backup newer than the last copy (the service stopped before its copy)
asks again. The state database, not the job store, is the memory: nothing here survives a
restart but the ``offsite_runs`` rows.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from rollkeeper.host.logs import get_logger
from rollkeeper.offsite.job import OffsiteJob
from rollkeeper.store.offsite_runs import COMPLETE, COPY, FAILED, INTERRUPTED
from rollkeeper.store.records import parse_timestamp
from rollkeeper.store.state import StateStore

log = get_logger(__name__)

#: The scheduler job id of the pending offsite copy.
JOB_ID = "offsite_copy"
#: Outcomes of copies that ran the engine (a skipped copy does not count against the interval).
_RAN = (COMPLETE, FAILED, INTERRUPTED)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class OffsiteSchedule:
    """Copies after complete backups, at most every ``min_interval_hours``.

    ``job`` returns the offsite job for the settings in force (None: no offsite copies
    configured), so a config reload applies from the next copy.
    """

    def __init__(
        self,
        job: Callable[[], OffsiteJob | None],
        store: StateStore,
        scheduler: Any,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._job = job
        self._store = store
        self._scheduler = scheduler
        self._clock = clock
        self._running: asyncio.Task[None] | None = None
        #: Set every time a copy run ends (tests wait on it).
        self.copy_finished = asyncio.Event()

    def start(self) -> None:
        """At service start: runs left ``running`` are closed as interrupted, and a complete
        backup newer than the last copy asks for one."""
        interrupted = self._store.offsite_repository.close_unfinished(self._clock())
        if interrupted:
            log.warning("offsite_runs_interrupted", count=interrupted)
        if self._job() is None:
            return
        last_backup = max(
            (
                moment
                for moment in (
                    parse_timestamp(device.last_complete_at) for device in self._store.devices()
                )
                if moment is not None
            ),
            default=None,
        )
        last_copy = self._store.offsite_repository.last(COPY, (COMPLETE,))
        copied_at = parse_timestamp(last_copy.started_at) if last_copy is not None else None
        if last_backup is not None and (copied_at is None or copied_at < last_backup):
            self.backup_completed()

    def backup_completed(self) -> None:
        """A backup ended complete: copy now, or when the interval since the last copy is over."""
        job = self._job()
        if job is None:
            return
        now = self._clock()
        last = self._store.offsite_repository.last(COPY, _RAN)
        due = now
        if last is not None:
            started = parse_timestamp(last.started_at)
            if started is not None:
                due = max(now, started + timedelta(hours=job.plan.min_interval_hours))
        pending = self._scheduler.get_job(JOB_ID)
        if pending is not None and pending.next_run_time is not None:
            return  # one copy is already coming; it will take this backup too
        self._scheduler.add_job(
            self._copy_job,
            trigger="date",
            run_date=due,
            id=JOB_ID,
            name="offsite copy",
            replace_existing=True,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
        log.info("offsite_copy_scheduled", at=due.isoformat(), delay_seconds=(due - now).seconds)

    async def _copy_job(self) -> None:
        job = self._job()
        if job is None:
            return
        self._running = asyncio.current_task()
        try:
            await job.copy("backup")
        except Exception:  # a bug here must not stop the service's backups
            log.exception("offsite_copy_crashed")
        finally:
            self._running = None
            self.copy_finished.set()

    async def stop(self) -> None:
        """At service stop: no new copy; a copy under way is stopped (the engine gets SIGINT and
        its run is recorded as interrupted)."""
        with contextlib.suppress(Exception):
            self._scheduler.remove_job(JOB_ID)
        task = self._running
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
