"""The scheduled scrub: rotation, byte bound, idle I/O, and the real APScheduler job."""

from __future__ import annotations

import asyncio
import functools
import itertools
import math
import os
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from rollkeeper import bootstrap
from rollkeeper.archive.crontab import CrontabError, crontab_days, crontab_trigger
from rollkeeper.archive.iopriority import LINUX_IDLE_PRIORITY, idle_io_priority, linux_io_priority
from rollkeeper.archive.scrub import (
    SCRUB_JOB_ID,
    ArchiveScrubber,
    RotationBudget,
    ScrubReport,
    count_runs,
    rotation_budget,
    schedule_scrub,
    select_batch,
)
from rollkeeper.archive.verify import EntryCheck
from rollkeeper.importer.hashing import HASH_ALGORITHM, hash_file
from rollkeeper.store import ArchiveEntry, StateStore
from tests.archive_helpers import archive_file as shared_archive_file

STORED = datetime(2020, 1, 1, tzinfo=UTC)
#: A Sunday at 04:00 UTC, when "0 4 * * 0" fires.
FIRST_RUN = datetime(2026, 11, 29, 4, 0, tzinfo=UTC)
WEEKLY = "0 4 * * 0"


def archive_file(store: StateStore, root: Path, relative: str, content: bytes) -> None:
    shared_archive_file(store, root, relative, content, now=STORED)


@pytest.fixture
def archive(tmp_path: Path) -> tuple[Path, StateStore, dict[str, int]]:
    """An archive of 12 files of uneven sizes; returns (root, store, size by path)."""
    root = tmp_path / "archive"
    store = StateStore.open(tmp_path / "state.sqlite3")
    sizes = {}
    for index, size in enumerate(
        [
            5_000,
            80_000,
            12_000,
            64_000,
            3_000,
            150_000,
            20_000,
            9_000,
            45_000,
            1_000,
            70_000,
            33_000,
        ]
    ):
        relative = f"2024/2024-{index % 12 + 1:02d}/IMG_{index:04d}.HEIC"
        archive_file(store, root, relative, os.urandom(size))
        sizes[relative] = size
    return root, store, sizes


class FakeClock:
    """An injected clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_weekly_cron_fires_four_times_in_four_weeks() -> None:
    """count_runs counts a weekly cron's firings in a span, counting one that falls at the span's
    start."""
    trigger = crontab_trigger(WEEKLY, timezone=UTC)
    assert count_runs(trigger, FIRST_RUN - timedelta(hours=1), FIRST_RUN + timedelta(weeks=4)) == 5
    assert count_runs(trigger, FIRST_RUN, FIRST_RUN + timedelta(weeks=4)) == 4


def test_the_scrub_covers_the_whole_archive_within_its_rotation_and_its_byte_bound(
    archive: tuple[Path, StateStore, dict[str, int]],
) -> None:
    """Over three rotations every file is verified within the first one and never waits longer than
    a rotation, each run stays within its byte bound, and the database's oldest stamp agrees."""
    root, store, sizes = archive
    total, largest = sum(sizes.values()), max(sizes.values())
    rotation_weeks = 4
    budget = math.ceil(total / rotation_weeks) + largest  # what weekly runs need
    clock = FakeClock(FIRST_RUN)
    scrubber = ArchiveScrubber(
        store,
        root,
        bytes_per_run=budget,
        rotation_weeks=rotation_weeks,
        cron=WEEKLY,
        timezone=UTC,
        clock=clock,
    )
    verified_at: dict[str, list[datetime]] = {path: [] for path in sizes}
    for week in range(3 * rotation_weeks):
        clock.now = FIRST_RUN + timedelta(weeks=week)
        report = scrubber.run_once(clock.now)
        assert not report.has_findings
        assert report.budget is not None and report.budget.sufficient
        assert report.budget.runs_per_rotation == rotation_weeks
        assert 0 < report.bytes_checked <= budget
        for path in report.verified_paths:
            verified_at[path].append(clock.now)
    for path, moments in verified_at.items():
        # Every file is checked in the first rotation, and then never waits longer than it.
        assert moments, f"{path} never verified"
        assert moments[0] < FIRST_RUN + timedelta(weeks=rotation_weeks)
        gaps = [later - earlier for earlier, later in itertools.pairwise(moments)]
        assert all(gap <= timedelta(weeks=rotation_weeks) for gap in gaps), (path, gaps)
    # The database agrees: the oldest stamp is within the last rotation.
    oldest = min(entry.verified_at or "" for entry in store.archive_entries())
    assert datetime.fromisoformat(oldest) > clock.now - timedelta(weeks=rotation_weeks)


def test_a_budget_too_small_for_the_rotation_is_computed_and_warned(
    archive: tuple[Path, StateStore, dict[str, int]],
) -> None:
    """A byte budget too small for the rotation is found to be so and warned once, with the bytes
    per run that would be needed."""
    root, store, sizes = archive
    total, largest = sum(sizes.values()), max(sizes.values())
    trigger = crontab_trigger(WEEKLY, timezone=UTC)
    needed = math.ceil(total / 8) + largest
    enough = rotation_budget(trigger, FIRST_RUN, 8, total, largest, needed)
    short = rotation_budget(trigger, FIRST_RUN, 8, total, largest, needed - 1)
    assert enough.runs_per_rotation == 8 and enough.sufficient
    assert short.needed_bytes_per_run == needed and not short.sufficient
    # A rotation shorter than the cron's period can never be met.
    assert not rotation_budget(trigger, FIRST_RUN, 0.5, total, largest, total).sufficient

    scrubber = ArchiveScrubber(
        store, root, bytes_per_run=10_000, rotation_weeks=8, cron=WEEKLY, timezone=UTC
    )
    with structlog.testing.capture_logs() as logs:
        report = scrubber.run_once(FIRST_RUN)
    assert report.budget is not None and not report.budget.sufficient
    warnings = [entry for entry in logs if entry["event"] == "scrub_budget_too_small"]
    assert len(warnings) == 1
    assert warnings[0]["needed_bytes_per_run"] == needed
    assert warnings[0]["bytes_per_run"] == 10_000
    assert report.as_dict()["budget_sufficient"] is False


def test_the_byte_bound_holds_and_a_file_larger_than_it_goes_alone() -> None:
    """A batch takes the oldest files first, strictly in order, within the byte bound; a file larger
    than the bound goes alone."""

    def entry(path: str, size: int) -> ArchiveEntry:
        return ArchiveEntry(path, "h", HASH_ALGORITHM, size, "backup", "t", None)

    entries = [entry("a", 40), entry("b", 50), entry("c", 30), entry("d", 5)]
    assert [e.relative_path for e in select_batch(entries, 100)] == ["a", "b"]
    assert [e.relative_path for e in select_batch(entries, 90)] == ["a", "b"]
    # Oldest first, strictly: "c" does not fit after "a" and "b", so nothing skips ahead.
    assert [e.relative_path for e in select_batch(entries, 89)] == ["a"]
    huge = [entry("video", 10_000), entry("small", 1)]
    assert [e.relative_path for e in select_batch(huge, 100)] == ["video"]
    assert select_batch([], 100) == []


def test_damage_is_reported_every_run_until_fixed_and_never_stamped(
    archive: tuple[Path, StateStore, dict[str, int]],
) -> None:
    """Changed and missing files are reported on every run until fixed and are never stamped as
    verified."""
    root, store, sizes = archive
    damaged, deleted = sorted(sizes)[0], sorted(sizes)[1]
    content = bytearray((root / damaged).read_bytes())
    content[0] ^= 0xFF
    (root / damaged).write_bytes(bytes(content))
    (root / deleted).unlink()
    scrubber = ArchiveScrubber(store, root, bytes_per_run=10**9, rotation_weeks=4)
    for week in range(2):
        with structlog.testing.capture_logs() as logs:
            report = scrubber.run_once(FIRST_RUN + timedelta(weeks=week))
        assert report.has_findings
        assert [check.relative_path for check in report.changed] == [damaged]
        assert [check.relative_path for check in report.missing] == [deleted]
        events = {entry["event"] for entry in logs}
        assert {"scrub_file_changed", "scrub_file_missing", "scrub_finished"} <= events
    for path in (damaged, deleted):
        entry = store.archive_entry(path)
        assert entry is not None and entry.verified_at is not None
        assert datetime.fromisoformat(entry.verified_at) == STORED


def test_an_unmounted_archive_is_one_finding_and_stamps_nothing(
    archive: tuple[Path, StateStore, dict[str, int]],
) -> None:
    """An archive folder left empty by an unmounted disk is one finding, not a missing file per
    entry, and stamps nothing."""
    root, store, _ = archive
    root.rename(root.with_name("elsewhere"))
    root.mkdir()
    scrubber = ArchiveScrubber(store, root, bytes_per_run=10**9, rotation_weeks=4)
    report = scrubber.run_once(FIRST_RUN)
    assert report.archive_unreachable and report.has_findings
    assert report.missing == [] and report.files_checked == 0
    assert {entry.verified_at for entry in store.archive_entries()} == {
        STORED.isoformat(timespec="milliseconds")
    }


def test_an_empty_archive_scrubs_quietly(tmp_path: Path) -> None:
    """An empty archive scrubs without findings and with a sufficient budget."""
    root = tmp_path / "archive"
    root.mkdir()
    store = StateStore.open(tmp_path / "state.sqlite3")
    scrubber = ArchiveScrubber(store, root, bytes_per_run=100, rotation_weeks=4, cron=WEEKLY)
    report = scrubber.run_once(FIRST_RUN)
    assert not report.has_findings and report.files_checked == 0
    assert report.budget is not None and report.budget.sufficient


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ioprio is Linux's interface")
def test_hashing_thread_runs_at_idle_io_priority_and_gets_its_priority_back() -> None:
    """The hashing thread runs at idle I/O priority and gets its own priority back afterwards."""
    seen: dict[str, object] = {}

    def worker() -> None:
        seen["before"] = linux_io_priority()
        with idle_io_priority() as applied:
            seen["applied"] = applied
            seen["inside"] = linux_io_priority()
        seen["after"] = linux_io_priority()

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen["applied"] == "idle"
    assert seen["inside"] == LINUX_IDLE_PRIORITY
    assert seen["after"] == seen["before"]


def test_crontab_day_numbers_keep_their_crontab_meaning() -> None:
    """Crontab day numbers keep their crontab meaning (0 and 7 are Sunday), unlike APScheduler's
    from_crontab, and bad lines are refused."""
    thursday = datetime(2026, 11, 26, tzinfo=UTC)

    def next_day(expression: str) -> str:
        fire: datetime = crontab_trigger(expression, timezone=UTC).get_next_fire_time(
            None, thursday
        )
        return fire.strftime("%a")

    # APScheduler 3's own from_crontab would run "0 4 * * 0" on Mondays.
    assert next_day("0 4 * * 0") == "Sun"
    assert next_day("0 4 * * 7") == "Sun"
    assert next_day("0 4 * * sun") == "Sun"
    assert next_day("0 4 * * 1") == "Mon"
    assert crontab_days("1-5") == [1, 2, 3, 4, 5]
    assert crontab_days("5-7") == [0, 5, 6]
    assert crontab_days("*/2") == [0, 2, 4, 6]
    for bad in ("0 4 * *", "0 4 * * 8", "0 4 * * 5-2", "61 4 * * *", "0 4 * * mon-"):
        with pytest.raises(CrontabError):
            crontab_trigger(bad, timezone=UTC)


async def test_schedule_scrub_registers_one_weekly_cron_job(
    archive: tuple[Path, StateStore, dict[str, int]],
) -> None:
    """schedule_scrub registers one coalesced, single-instance cron job, replaced on a reload, and
    the scrubber checks its budget against that trigger."""
    root, store, _ = archive
    scheduler = AsyncIOScheduler(timezone=UTC)
    scrubber = ArchiveScrubber(store, root, bytes_per_run=10**6, rotation_weeks=8)

    async def on_findings(report: ScrubReport) -> None:
        raise AssertionError("not run in this test")

    schedule_scrub(scheduler, scrubber, "30 3 * * 7", on_findings)  # at start-up
    scheduler.start(paused=True)
    try:
        job = schedule_scrub(scheduler, scrubber, WEEKLY, on_findings)  # a config reload
        jobs = scheduler.get_jobs()
    finally:
        scheduler.shutdown(wait=False)
    assert [j.id for j in jobs] == [SCRUB_JOB_ID]
    assert str(jobs[0].trigger) == str(job.trigger)
    assert job.id == SCRUB_JOB_ID
    assert isinstance(job.trigger, CronTrigger)
    fields = {field.name: str(field) for field in job.trigger.fields}
    assert (fields["minute"], fields["hour"], fields["day_of_week"]) == ("0", "4", "sun")
    assert job.trigger.get_next_fire_time(None, datetime(2026, 11, 26, tzinfo=UTC)) == FIRST_RUN
    assert job.max_instances == 1 and job.coalesce is True
    # The scrubber checks its budget against the cadence it was scheduled with.
    assert scrubber.trigger is job.trigger


async def test_the_scheduled_job_hashes_off_the_loop_and_hands_findings_over(
    archive: tuple[Path, StateStore, dict[str, int]],
) -> None:
    """The scheduled job plans and hashes in a worker thread, not on the loop, hands its findings
    over, and stamps every file but the damaged one."""
    root, store, sizes = archive
    damaged = sorted(sizes)[3]
    (root / damaged).write_bytes(b"overwritten")
    clock = FakeClock(FIRST_RUN + timedelta(weeks=30))
    worker_threads: dict[str, int] = {}

    class ObservedScrubber(ArchiveScrubber):
        def plan(
            self, store: StateStore, now: datetime
        ) -> tuple[list[ArchiveEntry], RotationBudget | None]:
            worker_threads["plan"] = threading.get_ident()
            return super().plan(store, now)

        def check(self, batch: list[ArchiveEntry]) -> tuple[str, list[EntryCheck]]:
            worker_threads["check"] = threading.get_ident()
            return super().check(batch)

    scrubber = ObservedScrubber(
        store,
        root,
        bytes_per_run=10**9,
        rotation_weeks=8,
        clock=clock,
        open_worker_store=functools.partial(bootstrap.open_state_for_writing, store.path),
    )
    reports: list[ScrubReport] = []
    found = asyncio.Event()

    async def on_findings(report: ScrubReport) -> None:
        reports.append(report)
        found.set()

    scheduler = AsyncIOScheduler(timezone=UTC)
    job = schedule_scrub(scheduler, scrubber, WEEKLY, on_findings)
    scheduler.start()
    try:
        job.modify(next_run_time=datetime.now(UTC))  # run it now, through the real executor
        await asyncio.wait_for(found.wait(), timeout=30)
    finally:
        scheduler.shutdown(wait=False)

    (report,) = reports
    assert [check.relative_path for check in report.changed] == [damaged]
    assert report.files_checked == len(sizes)
    assert report.started_at == clock.now
    # The loop thread neither sorts the archive nor hashes: both happen in the worker.
    assert set(worker_threads) == {"plan", "check"}
    assert threading.get_ident() not in worker_threads.values()
    stamps = {entry.relative_path: entry.verified_at for entry in store.archive_entries()}
    assert stamps[damaged] == STORED.isoformat(timespec="milliseconds")
    others = {stamp for path, stamp in stamps.items() if path != damaged}
    assert others == {clock.now.isoformat(timespec="milliseconds")}


def test_adopted_files_elsewhere_scrub_while_the_archive_is_still_empty(tmp_path: Path) -> None:
    """Adopted files outside the archive are scrubbed while the archive is still empty, which is not
    taken for an unreachable archive."""
    root = tmp_path / "archive"
    root.mkdir()
    outside = tmp_path / "old" / "DSC_0001.JPG"
    outside.parent.mkdir()
    outside.write_bytes(b"adopted")
    store = StateStore.open(tmp_path / "state.sqlite3")
    store.add_archive_entry(str(outside), hash_file(outside), HASH_ALGORITHM, 7, "adopted", STORED)
    report = ArchiveScrubber(store, root, bytes_per_run=100, rotation_weeks=4).run_once(FIRST_RUN)
    assert not report.archive_unreachable and not report.has_findings
    assert report.verified_paths == [str(outside)]
