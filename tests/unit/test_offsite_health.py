"""The offsite copy's staleness and warnings (rollkeeper.domain.health.offsite_findings), and
how they weigh in status --check: warnings, never critical."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rollkeeper.domain.health import CheckLevel, offsite_findings, overall_check

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
WEEK = timedelta(days=7)


def findings(**facts: object) -> tuple[bool, list[str]]:
    values: dict[str, object] = {
        "last_copy_at": NOW - timedelta(days=1),
        "last_attempt_outcome": "complete",
        "last_attempt_error": "",
        "first_attempt_at": NOW - timedelta(days=30),
        "now": NOW,
        "stale_after": WEEK,
    }
    values.update(facts)
    stale, warnings = offsite_findings(**values)  # type: ignore[arg-type]
    return stale.stale, warnings


def test_a_recent_copy_is_fine_and_an_old_one_is_stale() -> None:
    """A copy a day old says nothing; one eight days old is stale, with its date."""
    assert findings() == (False, [])
    stale, warnings = findings(last_copy_at=NOW - timedelta(days=8))
    assert stale and warnings == ["no offsite copy since 2025-05-24"]


def test_a_failed_or_skipped_last_attempt_is_said_with_its_reason() -> None:
    """The last attempt's failure (or skip for an unmounted archive) is a warning of its own,
    with the engine's words, even while the last good copy is recent."""
    _, warnings = findings(
        last_attempt_outcome="failed", last_attempt_error="Fatal: wrong password"
    )
    assert warnings == ["the last offsite copy failed: Fatal: wrong password"]
    _, warnings = findings(last_attempt_outcome="skipped", last_attempt_error="archive unavailable")
    assert warnings == ["the last offsite copy skipped: archive unavailable"]


def test_never_copied_is_said_at_once_and_counts_from_the_first_attempt() -> None:
    """Configured but never run: warned at once. Attempts that never succeeded: stale once the
    first attempt is older than stale_after, counted from it."""
    stale, warnings = findings(last_copy_at=None, last_attempt_outcome=None, first_attempt_at=None)
    assert not stale and warnings == [
        "no offsite copy has been made yet (`rollkeeper offsite run`)"
    ]
    stale, warnings = findings(last_copy_at=None, last_attempt_outcome="failed")
    assert stale and "no offsite copy since the first attempt on 2025-05-02" in warnings


def test_offsite_trouble_is_a_warning_never_critical() -> None:
    """With the service running and no phone trouble, an offsite warning makes --check exit 1."""
    result = overall_check(
        service_running=True,
        config_problems=(),
        state_problem=None,
        phones=(),
        offsite_warnings=["no offsite copy since 2025-05-24"],
    )
    assert result.level is CheckLevel.WARNING and result.exit_code == 1
    assert result.summary == "WARNING: no offsite copy since 2025-05-24"
