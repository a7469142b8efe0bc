"""The pure parts of notifying: which run outcomes are announced, the rate limit, the words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rollkeeper.notify.messages import stale_message, success_message
from rollkeeper.notify.notices import RunNotice
from rollkeeper.notify.policy import RateLimiter, run_announcement

START = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _notice(outcome: str, **changes: object) -> RunNotice:
    values: dict[str, object] = {"udid": "U1", "device_name": "Ann", "run_id": 1}
    values.update(changes)
    return RunNotice(outcome=outcome, **values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("outcome", "files_failed", "files_pending", "event"),
    [
        ("complete", 0, 0, "success"),
        ("failed", 0, 3, "failure"),
        ("incomplete", 2, 1, "failure"),
        ("incomplete", 0, 7, None),
        ("interrupted", 0, 7, None),
    ],
)
def test_run_announcement_follows_the_outcome(
    outcome: str, files_failed: int, files_pending: int, event: str | None
) -> None:
    """Complete is a success; failed, or failed files, a failure; only pending files: nothing."""
    notice = _notice(outcome, files_failed=files_failed, files_pending=files_pending)
    assert run_announcement(notice)[0] == event


def test_a_failure_for_failed_files_gets_a_reason_that_counts_them() -> None:
    """Without an error text, the failure says how many files could not be copied."""
    _event, one = run_announcement(_notice("incomplete", files_failed=1))
    _event, two = run_announcement(_notice("incomplete", files_failed=2))
    _event, given = run_announcement(_notice("failed", files_failed=2, error="disk full"))
    assert one.error == "1 file could not be copied"
    assert two.error == "2 files could not be copied"
    assert given.error == "disk full"


def test_the_rate_limit_holds_one_kind_per_subject_until_the_interval_passed() -> None:
    """A repeat within the interval is held back; other kinds and phones are not; 0 = always."""
    now = [START]
    interval = [60.0]
    limits = RateLimiter(lambda: now[0], lambda: interval[0])
    assert limits.allow("failure", "U1")
    assert not limits.allow("failure", "U1")
    assert limits.allow("failure", "U2")
    assert limits.allow("success", "U1")
    now[0] += timedelta(minutes=60)
    assert limits.allow("failure", "U1")
    limits.clear("failure", "U1")
    assert limits.allow("failure", "U1")
    interval[0] = 0.0
    assert limits.allow("failure", "U1")


def test_messages_use_decimal_units_and_clean_device_names() -> None:
    """Sizes read like a file manager's, and a control character in a name never gets shown."""
    title, body = success_message(_notice("complete", files_copied=2, bytes_copied=3_400_000))
    assert (title, body) == ("Ann is backed up", "2 new files copied (3.4 MB).")
    title, _body = stale_message("U1", "Ann\x1b[31m", None)
    assert "\x1b" not in title
    assert title.endswith("has never been backed up completely")
