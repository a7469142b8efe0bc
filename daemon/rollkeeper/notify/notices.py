"""What a finished run tells the notifier, the names of the events, and cleaning device text.

Every channel (desktop, hooks, health-check pings) speaks about the same few events and reads
the same :class:`RunNotice`, so they live here, apart from any one channel. Device names come
from the phone and are untrusted: :func:`clean_text` is how they are made safe to show.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from rollkeeper.domain.display import printable

#: Event names: the ``ROLLKEEPER_EVENT`` of hooks and the ``kind`` of log events.
EVENT_SUCCESS = "success"
EVENT_FAILURE = "failure"
EVENT_STALE = "stale"
EVENT_ALERT = "alert"
#: An offsite copy (or check) failed: desktop and the ``on_failure`` hook.
EVENT_OFFSITE_FAILURE = "offsite_failure"

#: Device names are untrusted: cut and cleaned before they reach a notification.
NAME_LIMIT = 80


class RunCountsLike(Protocol):
    """The counts of a run (:class:`rollkeeper.store.RunCounts`), as far as notices need them."""

    @property
    def files_copied(self) -> int: ...
    @property
    def bytes_copied(self) -> int: ...
    @property
    def files_failed(self) -> int: ...
    @property
    def files_pending(self) -> int: ...


@dataclass(frozen=True, slots=True)
class RunNotice:
    """What a finished backup run tells the notifier."""

    udid: str
    device_name: str
    run_id: int | None
    outcome: str
    files_copied: int = 0
    bytes_copied: int = 0
    files_failed: int = 0
    files_pending: int = 0
    error: str = ""

    @classmethod
    def from_counts(
        cls,
        udid: str,
        device_name: str,
        run_id: int | None,
        outcome: str,
        counts: RunCountsLike,
        error: str = "",
    ) -> RunNotice:
        """A notice from a run's outcome and its :class:`~rollkeeper.store.RunCounts`."""
        return cls(
            udid=udid,
            device_name=device_name,
            run_id=run_id,
            outcome=outcome,
            files_copied=counts.files_copied,
            bytes_copied=counts.bytes_copied,
            files_failed=counts.files_failed,
            files_pending=counts.files_pending,
            error=error,
        )


def clean_text(value: str, limit: int = NAME_LIMIT) -> str:
    """A device-supplied string made safe to show: no control characters, bounded length."""
    return printable(value, limit)
