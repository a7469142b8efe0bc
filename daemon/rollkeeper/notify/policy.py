"""Who is told what: which run outcomes are announced, and how often one kind may repeat.

Run outcomes: ``complete`` is a success. ``failed``, and ``incomplete`` with failed files, are
failures: files that could not be copied need the user. A run that only left files pending
(unplugged, stopped, ``interrupted``) resumes by itself and is not announced; if it never does,
the staleness check (:mod:`rollkeeper.service.health`) speaks up.

Rate limiting: desktop notifications and hooks of one kind for one subject (a phone, or an
alert's title) are sent at most once per ``min_interval_minutes`` (0 = always); a success clears
the limit on failures so the next failure is announced at once. Health-check pings are never
rate limited: they are the heartbeat. The limit lives in memory; the stale notice's
once-per-period rule survives restarts through :mod:`rollkeeper.service.health`'s ledger.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from rollkeeper.host.logs import get_logger
from rollkeeper.notify.notices import EVENT_FAILURE, EVENT_SUCCESS, RunNotice

log = get_logger(__name__)


def run_announcement(report: RunNotice) -> tuple[str | None, RunNotice]:
    """Which event a finished run is announced as (None: not at all), and the notice to send.

    A failure for failed files without an error text gets one that says how many.
    """
    if report.outcome == "complete":
        return EVENT_SUCCESS, report
    if report.outcome == "failed" or report.files_failed:
        if not report.error and report.files_failed:
            noun = "file" if report.files_failed == 1 else "files"
            report = replace(report, error=f"{report.files_failed} {noun} could not be copied")
        return EVENT_FAILURE, report
    return None, report


class RateLimiter:
    """When each kind of notice was last sent for each subject, and whether another may go now.

    ``clock`` returns aware UTC datetimes; ``interval_minutes`` is read at every decision, so a
    config reload changes the limit at once.
    """

    def __init__(
        self, clock: Callable[[], datetime], interval_minutes: Callable[[], float]
    ) -> None:
        self._clock = clock
        self._interval_minutes = interval_minutes
        self._last_sent: dict[tuple[str, str], datetime] = {}

    def allow(self, kind: str, subject: str) -> bool:
        """True (and remembered as sent now) unless the same notice went out too recently."""
        now = self._clock()
        minutes = self._interval_minutes()
        interval = timedelta(minutes=max(minutes, 0.0))
        last = self._last_sent.get((kind, subject))
        if last is not None and interval > timedelta(0) and now - last < interval:
            log.info(
                "notification_suppressed",
                kind=kind,
                udid=subject,
                last_sent_at=last.isoformat(),
                min_interval_minutes=minutes,
            )
            return False
        self._last_sent[(kind, subject)] = now
        return True

    def clear(self, kind: str, subject: str) -> None:
        """Forget the last notice of ``kind`` for ``subject``: the next one goes out at once."""
        self._last_sent.pop((kind, subject), None)
