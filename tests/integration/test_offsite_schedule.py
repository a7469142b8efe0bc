"""When the service copies offsite: after a complete backup, at most every min_interval_hours,
one pending copy at a time; on the real APScheduler (paused, so nothing runs) and a real store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from rollkeeper.offsite.engines import OffsitePlan
from rollkeeper.offsite.job import OffsiteJob
from rollkeeper.offsite.schedule import JOB_ID, OffsiteSchedule
from rollkeeper.store import RunCounts, StateStore

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def world(
    tmp_path: Path,
) -> AsyncIterator[tuple[StateStore, AsyncIOScheduler, dict[str, Any]]]:
    store = StateStore.open(tmp_path / "state.sqlite3")
    scheduler = AsyncIOScheduler(timezone=UTC)
    scheduler.start(paused=True)
    settings: dict[str, Any] = {"plan": OffsitePlan("restic", "/r", min_interval_hours=6.0)}
    try:
        yield store, scheduler, settings
    finally:
        scheduler.shutdown(wait=False)
        store.close()


def schedule_for(
    store: StateStore, scheduler: AsyncIOScheduler, settings: dict[str, Any], tmp_path: Path
) -> OffsiteSchedule:
    def job() -> OffsiteJob | None:
        plan = settings["plan"]
        return None if plan is None else OffsiteJob(plan, store, tmp_path, clock=lambda: NOW)

    return OffsiteSchedule(job, store, scheduler, clock=lambda: NOW)


def due(scheduler: AsyncIOScheduler) -> datetime | None:
    pending = scheduler.get_job(JOB_ID)
    return None if pending is None else pending.next_run_time


async def test_the_first_copy_is_due_at_once_and_the_next_after_the_interval(
    world: tuple[StateStore, AsyncIOScheduler, dict[str, Any]], tmp_path: Path
) -> None:
    """With no copy yet, a complete backup asks for one now; after a copy started an hour ago,
    the next is due when the six-hour interval is over, and a second backup before then adds
    no second copy."""
    store, scheduler, settings = world
    offsite = schedule_for(store, scheduler, settings, tmp_path)
    offsite.backup_completed()
    assert due(scheduler) == NOW
    scheduler.remove_job(JOB_ID)

    run = store.offsite_repository.start("copy", "restic", "/r", "backup", NOW - timedelta(hours=1))
    store.offsite_repository.finish(run, "complete", exit_code=0, now=NOW - timedelta(minutes=50))
    offsite.backup_completed()
    assert due(scheduler) == NOW + timedelta(hours=5)
    offsite.backup_completed()
    assert len(scheduler.get_jobs()) == 1 and due(scheduler) == NOW + timedelta(hours=5)


async def test_a_skipped_copy_does_not_count_and_off_means_nothing(
    world: tuple[StateStore, AsyncIOScheduler, dict[str, Any]], tmp_path: Path
) -> None:
    """A copy skipped for an unmounted archive does not start the interval (the next backup
    copies at once); with [offsite] off nothing is ever scheduled."""
    store, scheduler, settings = world
    run = store.offsite_repository.start("copy", "restic", "/r", "backup", NOW - timedelta(hours=1))
    store.offsite_repository.finish(run, "skipped", error="archive unavailable", now=NOW)
    offsite = schedule_for(store, scheduler, settings, tmp_path)
    offsite.backup_completed()
    assert due(scheduler) == NOW
    scheduler.remove_job(JOB_ID)
    settings["plan"] = None
    offsite.backup_completed()
    assert scheduler.get_jobs() == []


async def test_at_start_up_a_backup_newer_than_the_last_copy_asks_for_one(
    world: tuple[StateStore, AsyncIOScheduler, dict[str, Any]], tmp_path: Path
) -> None:
    """A copy left running by a dead service is closed as interrupted; a complete backup after
    the last complete copy schedules a copy (the service stopped before making it)."""
    store, scheduler, settings = world
    copy = store.offsite_repository.start("copy", "restic", "/r", "backup", NOW - timedelta(days=2))
    store.offsite_repository.finish(copy, "complete", exit_code=0, now=NOW - timedelta(days=2))
    left = store.offsite_repository.start("copy", "restic", "/r", "backup", NOW - timedelta(days=1))
    store.record_device_seen("U", name="Ana", now=NOW - timedelta(days=3))
    backup = store.start_run("U", NOW - timedelta(hours=3))
    store.finish_run(backup, "complete", RunCounts(), now=NOW - timedelta(hours=3))
    settings["plan"] = OffsitePlan("restic", "/r", min_interval_hours=0.0)

    schedule_for(store, scheduler, settings, tmp_path).start()

    record = store.offsite_repository.run(left)
    assert record is not None and record.outcome == "interrupted"
    assert due(scheduler) == NOW
