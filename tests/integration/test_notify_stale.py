"""The staleness job against a real state database: the on_stale hook once per stale period."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog

from rollkeeper.config import NotificationSettings, ScheduleSettings
from rollkeeper.notify.notifier import Notifier
from rollkeeper.service.health import StaleNoticeLedger, check_staleness, ledger_path
from rollkeeper.store import RunCounts, StateStore

DAY0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def _calls(directory: Path) -> list[dict[str, str]]:
    calls = []
    for path in sorted(directory.glob("call.*")):
        calls.append(dict(line.split("=", 1) for line in path.read_text().splitlines()))
    return calls


async def test_stale_hook_fires_once_per_stale_period_and_survives_restarts(
    tmp_path: Path,
) -> None:
    """The on_stale hook fires once per stale period per phone, even across new Notifiers (a 0600
    ledger remembers), and a complete backup starts a new stale stretch."""
    calls = tmp_path / "calls"
    calls.mkdir()
    hook = f'env | grep "^ROLLKEEPER_" | sort > "{calls}/call.$$"'
    state_path = tmp_path / "state" / "state.sqlite3"
    store = StateStore.open(state_path)
    store.record_device_seen("U1", name="Ann's iPhone", now=DAY0)
    run_id = store.start_run("U1", now=DAY0)
    store.finish_run(run_id, "complete", RunCounts(files_found=3, files_copied=3), now=DAY0)
    store.record_device_seen("U2", name="Bob's iPhone", now=DAY0 + timedelta(days=5))

    settings = NotificationSettings(desktop=False, on_stale=hook, min_interval_minutes=0)
    schedule = ScheduleSettings(stale_after_days=7)

    async def check(now: datetime) -> list[str]:
        # A new Notifier each time: the once-per-period rule must not depend on memory.
        notifier = Notifier(settings, lambda: now, environ={"PATH": os.environ["PATH"]})
        findings = await check_staleness(store, notifier, schedule, now)
        assert await notifier.wait_idle(30)
        return [finding.udid for finding in findings if finding.notified]

    assert await check(DAY0 + timedelta(days=6)) == []
    with structlog.testing.capture_logs() as events:
        assert await check(DAY0 + timedelta(days=7)) == ["U1"]
    [stale_event] = [event for event in events if event["event"] == "backups_stale"]
    assert stale_event["udid"] == "U1"
    assert stale_event["never_completed"] is False
    # Checked every few hours for the rest of the period: silence, until Bob's phone, first
    # seen on day 5 and never backed up, goes stale on day 12.
    for hours in range(1, 5 * 24, 7):
        assert await check(DAY0 + timedelta(days=7, hours=hours)) == []
    assert await check(DAY0 + timedelta(days=12)) == ["U2"]
    for hours in range(1, 2 * 24, 7):
        assert await check(DAY0 + timedelta(days=12, hours=hours)) == []
    # Another whole period after each notice: one reminder each.
    assert await check(DAY0 + timedelta(days=14)) == ["U1"]
    assert await check(DAY0 + timedelta(days=19)) == ["U2"]

    by_phone: dict[str, list[dict[str, str]]] = {}
    for call in _calls(calls):
        by_phone.setdefault(call["ROLLKEEPER_UDID"], []).append(call)
    assert len(by_phone["U1"]) == 2
    assert len(by_phone["U2"]) == 2
    assert by_phone["U1"][0]["ROLLKEEPER_EVENT"] == "stale"
    assert by_phone["U1"][0]["ROLLKEEPER_DEVICE_NAME"] == "Ann's iPhone"
    assert by_phone["U1"][0]["ROLLKEEPER_LAST_COMPLETE_AT"] == DAY0.isoformat()
    assert by_phone["U2"][0]["ROLLKEEPER_LAST_COMPLETE_AT"] == ""

    ledger = ledger_path(state_path)
    assert stat.S_IMODE(ledger.stat().st_mode) == 0o600
    assert set(StaleNoticeLedger(ledger).load()) == {"U1", "U2"}

    # A complete backup ends U1's stretch; when it goes stale again it is announced at once.
    day20 = DAY0 + timedelta(days=20)
    run_id = store.start_run("U1", now=day20)
    store.finish_run(run_id, "complete", RunCounts(), now=day20)
    assert await check(day20 + timedelta(days=1)) == []
    assert "U1" not in StaleNoticeLedger(ledger).load()
    # (Bob's phone, still never backed up, gets its third weekly reminder the same day.)
    assert sorted(await check(day20 + timedelta(days=7))) == ["U1", "U2"]


async def test_a_damaged_ledger_costs_one_repeat_not_the_check(tmp_path: Path) -> None:
    """A damaged stale-notice ledger is logged and costs one repeated notice, not the check, and is
    written anew."""
    state_path = tmp_path / "state.sqlite3"
    store = StateStore.open(state_path)
    store.record_device_seen("U1", name="Ann", now=DAY0)
    ledger_path(state_path).write_text("{not json")
    notifier = Notifier(NotificationSettings(desktop=False), lambda: DAY0, environ={})
    with structlog.testing.capture_logs() as events:
        findings = await check_staleness(
            store, notifier, ScheduleSettings(stale_after_days=1), DAY0 + timedelta(days=2)
        )
    assert [finding.notified for finding in findings] == [True]
    assert any(event["event"] == "stale_ledger_unreadable" for event in events)
    assert set(StaleNoticeLedger(ledger_path(state_path)).load()) == {"U1"}


async def test_the_staleness_job_runs_on_a_real_scheduler(tmp_path: Path) -> None:
    """The staleness job runs hourly on a real APScheduler and notifies the stale phone once; adding
    the job again replaces it."""
    import asyncio

    from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from rollkeeper.service.health import STALENESS_JOB_ID, add_staleness_job

    calls = tmp_path / "calls"
    calls.mkdir()
    store = StateStore.open(tmp_path / "state.sqlite3")
    real_now = datetime.now(UTC)
    store.record_device_seen("U1", name="Ann", now=real_now - timedelta(days=3))
    hook = f'env | grep "^ROLLKEEPER_" | sort > "{calls}/call.$$"'
    notifier = Notifier(
        NotificationSettings(desktop=False, on_stale=hook), environ={"PATH": os.environ["PATH"]}
    )
    schedule = ScheduleSettings(stale_after_days=2)
    finished: asyncio.Queue[JobExecutionEvent] = asyncio.Queue()
    scheduler = AsyncIOScheduler(timezone=UTC)
    scheduler.add_listener(finished.put_nowait, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    scheduler.start()
    try:
        add_staleness_job(
            scheduler, store, notifier, lambda: schedule, first_check_delay=timedelta(0)
        )
        job = scheduler.get_job(STALENESS_JOB_ID)
        assert job.trigger.interval == timedelta(hours=1)
        event = await asyncio.wait_for(finished.get(), 30)
        assert event.exception is None
        assert [finding.udid for finding in event.retval] == ["U1"]
        assert await notifier.wait_idle(30)
        # Adding it again (a config reload) replaces the job instead of doubling it.
        add_staleness_job(scheduler, store, notifier, lambda: schedule)
        assert [job.id for job in scheduler.get_jobs()] == [STALENESS_JOB_ID]
    finally:
        scheduler.shutdown(wait=False)
        store.close()
    assert len(_calls(calls)) == 1


async def test_a_phone_left_out_by_the_config_is_never_announced_stale(tmp_path: Path) -> None:
    """Of two phones past stale_after, the one the config's filters leave out gets no finding."""
    store = StateStore.open(tmp_path / "state.sqlite3")
    store.record_device_seen("U1", name="Ann", now=DAY0)
    store.record_device_seen("U2", name="Work phone", now=DAY0)
    notifier = Notifier(NotificationSettings(desktop=False), lambda: DAY0, environ={})
    findings = await check_staleness(
        store,
        notifier,
        ScheduleSettings(stale_after_days=1),
        DAY0 + timedelta(days=2),
        selected=lambda udid, name: name != "Work phone",
    )
    assert [finding.udid for finding in findings] == ["U1"]
