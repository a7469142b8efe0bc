"""The pure rules behind "backed up", "stale" and the --check exit codes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rollkeeper.domain.health import (
    CheckLevel,
    PhoneFacts,
    StaleNotice,
    assess_phone,
    estimate_remaining,
    is_complete,
    overall_check,
    stale_notice_due,
    staleness,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
WEEK = timedelta(days=7)


def _facts(**changes: object) -> PhoneFacts:
    values: dict[str, object] = {
        "udid": "U1",
        "name": "Ann's iPhone",
        "state": "disconnected",
        "first_seen_at": NOW - timedelta(days=30),
        "last_complete_at": NOW - timedelta(days=1),
        "last_finished_outcome": "complete",
        "pending": 0,
        "failed": 0,
    }
    values.update(changes)
    return PhoneFacts(**values)  # type: ignore[arg-type]


def test_staleness_counts_from_the_last_complete_backup() -> None:
    """A phone becomes stale when its last complete backup is stale_after old, not a moment
    before."""
    fresh = staleness(NOW - timedelta(days=6, hours=23), NOW - timedelta(days=99), NOW, WEEK)
    assert not fresh.stale
    old = staleness(NOW - WEEK, NOW - timedelta(days=99), NOW, WEEK)
    assert old.stale
    assert old.age == WEEK
    assert not old.never_completed


def test_a_phone_never_backed_up_is_stale_from_when_it_was_first_seen() -> None:
    """A phone never backed up is stale counting from when it was first seen."""
    result = staleness(None, NOW - timedelta(days=8), NOW, WEEK)
    assert result.stale
    assert result.never_completed
    assert result.since == NOW - timedelta(days=8)


def test_zero_stale_after_turns_staleness_off() -> None:
    """A stale_after of zero turns staleness off."""
    assert not staleness(None, NOW - timedelta(days=800), NOW, timedelta(0)).stale


def test_a_clock_behind_the_database_does_not_give_negative_ages() -> None:
    """A clock behind the database's times gives an age of zero, not a negative one, and no
    staleness."""
    result = staleness(NOW + timedelta(hours=1), NOW, NOW, WEEK)
    assert result.age == timedelta(0)
    assert not result.stale


@pytest.mark.parametrize(
    ("pending", "failed", "complete"), [(0, 0, True), (1, 0, False), (0, 1, False)]
)
def test_complete_means_nothing_pending_or_failed(
    pending: int, failed: int, complete: bool
) -> None:
    """A run is complete only with nothing pending and nothing failed."""
    assert is_complete(pending, failed) is complete


def test_backed_up_needs_a_complete_last_run_and_nothing_pending_or_failed() -> None:
    """A phone is backed up only after a complete last run with nothing pending or failed; otherwise
    it is not backed up, never backed up, or backing up."""
    assert assess_phone(_facts(), NOW, WEEK).verdict == "backed_up"
    assert assess_phone(_facts(pending=3), NOW, WEEK).verdict == "not_backed_up"
    assert assess_phone(_facts(failed=1), NOW, WEEK).verdict == "not_backed_up"
    interrupted = _facts(last_finished_outcome="interrupted")
    assert assess_phone(interrupted, NOW, WEEK).verdict == "not_backed_up"
    never = _facts(last_complete_at=None, last_finished_outcome=None, pending=10)
    assert assess_phone(never, NOW, WEEK).verdict == "never_backed_up"
    running = _facts(state="backing_up", pending=10)
    assert assess_phone(running, NOW, WEEK).verdict == "backing_up"


def test_levels_per_phone() -> None:
    """A failed run or an error state is critical; Don't Trust, failed files or staleness warn; an
    interrupted run that will resume is OK."""
    assert assess_phone(_facts(), NOW, WEEK).level is CheckLevel.OK
    failed_run = assess_phone(_facts(last_finished_outcome="failed"), NOW, WEEK)
    assert failed_run.level is CheckLevel.CRITICAL
    assert failed_run.reasons == ("last backup of Ann's iPhone failed",)
    assert assess_phone(_facts(state="error"), NOW, WEEK).level is CheckLevel.CRITICAL
    assert assess_phone(_facts(state="trust_denied"), NOW, WEEK).level is CheckLevel.WARNING
    failed_files = assess_phone(_facts(failed=2), NOW, WEEK)
    assert failed_files.level is CheckLevel.WARNING
    assert failed_files.reasons == ("2 files of Ann's iPhone failed",)
    stale = assess_phone(_facts(last_complete_at=NOW - timedelta(days=8)), NOW, WEEK)
    assert stale.level is CheckLevel.WARNING
    assert stale.reasons == ("no complete backup of Ann's iPhone since 2026-11-18",)
    # An unplugged run resumes next time: not an alarm by itself (staleness catches it later).
    resumable = _facts(last_finished_outcome="interrupted", pending=5)
    assert assess_phone(resumable, NOW, WEEK).level is CheckLevel.OK


def test_overall_check_lines_and_exit_codes() -> None:
    """The overall check exits with the worst level (0 OK, 1 warning, 2 critical) and its summary
    names the worst reasons."""
    fine = assess_phone(_facts(), NOW, WEEK)
    stale = assess_phone(_facts(udid="U2", name="Bob", last_complete_at=NOW - WEEK), NOW, WEEK)
    ok = overall_check(service_running=True, config_problems=[], state_problem=None, phones=[fine])
    assert (ok.exit_code, ok.summary) == (0, "OK: 1 of 1 phone backed up")
    warning = overall_check(
        service_running=True, config_problems=[], state_problem=None, phones=[fine, stale]
    )
    assert warning.exit_code == 1
    assert warning.summary == "WARNING: no complete backup of Bob since 2026-11-19"
    down = overall_check(
        service_running=False, config_problems=[], state_problem=None, phones=[fine, stale]
    )
    assert down.exit_code == 2
    assert down.summary == (
        "CRITICAL: rollkeeper service is not running; no complete backup of Bob since 2026-11-19"
    )
    broken = overall_check(
        service_running=True,
        config_problems=["c.toml:3: archive.path: must be absolute", "c.toml:9: x: unknown"],
        state_problem=None,
        phones=[],
    )
    assert broken.exit_code == 2
    assert "config is broken: c.toml:3: archive.path: must be absolute (and 1 more)" in (
        broken.summary
    )
    empty = overall_check(service_running=True, config_problems=[], state_problem=None, phones=[])
    assert (empty.exit_code, empty.summary) == (0, "OK: service running; no phone seen yet")


def test_stale_notice_fires_once_per_period() -> None:
    """The stale notice fires once per stale_after period, again for a new stale stretch after a
    complete backup, and never for a fresh phone."""
    since = NOW - timedelta(days=8)
    current = staleness(since, since, NOW, WEEK)
    assert stale_notice_due(current, None, NOW, WEEK)
    sent = StaleNotice(since=since, fired_at=NOW)
    assert not stale_notice_due(current, sent, NOW + timedelta(days=6), WEEK)
    later = staleness(since, since, NOW + WEEK, WEEK)
    assert stale_notice_due(later, sent, NOW + WEEK, WEEK)
    # A complete backup in between starts a new stretch, announced as soon as it goes stale.
    new_since = NOW - timedelta(days=7, hours=1)
    assert stale_notice_due(
        staleness(new_since, since, NOW, WEEK), StaleNotice(since, NOW), NOW, WEEK
    )
    assert not stale_notice_due(staleness(NOW, since, NOW, WEEK), None, NOW, WEEK)


def test_estimate_remaining() -> None:
    """The time remaining is extrapolated from the bytes done so far, and is None when nothing is
    done, no time has passed, or the total is exceeded."""
    assert estimate_remaining(50, 100, timedelta(seconds=10)) == timedelta(seconds=10)
    assert estimate_remaining(0, 100, timedelta(seconds=10)) is None
    assert estimate_remaining(50, 100, timedelta(0)) is None
    assert estimate_remaining(150, 100, timedelta(seconds=10)) is None


def test_archive_check_findings() -> None:
    """A damaged file found by the archive check is critical and an unreachable archive a warning,
    which a complete backup after the check clears."""
    from rollkeeper.domain.archive_health import archive_check_findings

    checked = NOW - timedelta(hours=1)
    assert archive_check_findings(
        unresolved_damaged=0, archive_unreachable=False, checked_at=checked, latest_complete_at=None
    ) == ([], [])
    critical, warnings = archive_check_findings(
        unresolved_damaged=1, archive_unreachable=True, checked_at=checked, latest_complete_at=None
    )
    assert critical == [
        "archive check on 2026-11-26 found 1 damaged or missing file; run `rollkeeper verify`"
    ]
    assert warnings == ["the archive folder was unreachable at the archive check on 2026-11-26"]
    # A complete backup after the check wrote to the archive: it is reachable again.
    assert archive_check_findings(
        unresolved_damaged=0, archive_unreachable=True, checked_at=checked, latest_complete_at=NOW
    ) == ([], [])


def test_backed_up_is_never_said_while_the_archive_is_in_question() -> None:
    """A complete last run is "backed up" only while the archive is there and holds no open
    or lost finding; the archive's own problems are critical (unavailable, lost files) or a
    warning (files the next plug-in restores)."""
    from rollkeeper.domain.archive_health import archive_truth_findings

    fine = assess_phone(_facts(), NOW, timedelta(days=7))
    assert fine.verdict == "backed_up"
    doubted = assess_phone(_facts(archive_in_question=True), NOW, timedelta(days=7))
    assert doubted.verdict != "backed_up"
    critical, warnings = archive_truth_findings(
        unavailable_reason="archive /media/disk/photos not found: is the disk mounted?",
        open_findings=2,
        lost=1,
    )
    assert critical[0] == "archive /media/disk/photos not found: is the disk mounted?"
    assert "1 archived file lost" in critical[1]
    assert warnings == ["2 archived files missing or damaged, restored at the next plug-in"]
    assert archive_truth_findings(unavailable_reason="", open_findings=0, lost=0) == ([], [])
