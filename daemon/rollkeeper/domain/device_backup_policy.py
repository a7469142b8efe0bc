"""When a device backup may start: the attended rule, in pure code.

From iOS 16.1 a phone asks for its passcode before every full backup and the host hears
nothing until it is entered or, about three minutes later, error 208 arrives. So a device
backup starts only when the user is there: right after a plug-in of an unlocked, trusted phone
(once its photo import has completed), or on command; after a plug-in at most once per
``every_hours``; and at most one attempt per plug-in, so an unanswered prompt is never shown
again until the phone is plugged in again (no prompt loop through the night).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

PLUG_IN = "plug_in"
COMMAND = "command"
#: iOS versions from this one on ask for the passcode before each backup.
PASSCODE_FROM = (16, 1)


@dataclass(frozen=True, slots=True)
class DeviceBackupFacts:
    """What the decision looks at, gathered by the service."""

    enabled: bool
    trigger: str
    now: datetime
    every_hours: float
    last_completed_at: datetime | None
    #: A device backup was already tried since this plug-in (whatever its outcome).
    tried_since_plug_in: bool
    #: The photo import of this plug-in ended complete (a plug-in waits for it).
    import_complete: bool


def refusal(facts: DeviceBackupFacts) -> str | None:
    """None to start a device backup now, else why not (a short word for the log)."""
    if facts.trigger == COMMAND:
        return None
    if not facts.enabled:
        return "disabled"
    if not facts.import_complete:
        return "photo_import_not_complete"
    if facts.tried_since_plug_in:
        return "already_tried_since_plug_in"
    if facts.last_completed_at is not None and facts.now - facts.last_completed_at < timedelta(
        hours=facts.every_hours
    ):
        return "not_due"
    return None


def asks_for_passcode(product_version: str) -> bool:
    """Whether this iOS version shows the passcode prompt before a backup (16.1 and later)."""
    parts: list[int] = []
    for piece in product_version.split(".")[:2]:
        if not piece.isdigit():
            break
        parts.append(int(piece))
    while len(parts) < 2:
        parts.append(0)
    return bool(product_version) and tuple(parts) >= PASSCODE_FROM


def is_overdue(last_completed_at: datetime | None, every_hours: float, now: datetime) -> bool:
    """A phone's device backup is overdue when none completed in twice ``every_hours``."""
    if last_completed_at is None:
        return True
    return now - last_completed_at > timedelta(hours=2 * every_hours)
