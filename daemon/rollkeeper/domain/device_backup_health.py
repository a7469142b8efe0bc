"""What ``status`` says of a phone's device backups: overdue or not, and what to know.

Pure, like the rest of :mod:`rollkeeper.domain`: the facts come from the state (the
``device_backups`` rows), the words go to ``status`` and the status page. Kept apart from
:mod:`rollkeeper.domain.health`, whose rules are the photo backup's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class DeviceBackupFacts:
    """What status knows of a phone's device backups (mobilebackup2 snapshots)."""

    enabled: bool
    every_hours: float
    #: How the newest attempt ended (``running``, ``completed``, ``passcode_timeout`` ...).
    last_outcome: str | None
    last_completed_at: datetime | None
    #: Of the newest completed snapshot: None when unknown.
    encrypted: bool | None
    camera_roll_files: int | None


@dataclass(frozen=True, slots=True)
class DeviceBackupAssessment:
    """The device-backup lines of ``status``: overdue or not, and what to know about restore."""

    overdue: bool
    age: timedelta | None
    notes: tuple[str, ...]


def assess_device_backup(facts: DeviceBackupFacts, now: datetime) -> DeviceBackupAssessment:
    """Staleness (none completed in twice ``every_hours``) and the notes a user needs."""
    age = None if facts.last_completed_at is None else now - facts.last_completed_at
    overdue = facts.enabled and (age is None or age > timedelta(hours=2 * facts.every_hours))
    notes: list[str] = []
    if facts.last_outcome == "running":
        notes.append(
            "device backup under way: if the iPhone asks, enter your passcode on the iPhone "
            "to start the device backup"
        )
    elif facts.last_outcome == "passcode_timeout":
        notes.append(
            "the last device backup waited for the passcode and gave up; it is tried again at "
            "the next plug-in (enter your passcode on the iPhone when it asks)"
        )
    elif facts.last_outcome == "disk_full":
        notes.append("the last device backup stopped: not enough free disk space for it")
    elif facts.last_outcome in ("unplugged", "failed"):
        notes.append(f"the last device backup did not finish ({facts.last_outcome})")
    if facts.encrypted is True:
        notes.append(
            "encrypted on the iPhone (Encrypt local backup): restoring it needs that backup "
            "password; rollkeeper never knows it"
        )
    elif facts.encrypted is False:
        notes.append(
            "not encrypted: saved passwords, Health and Wi-Fi data are not in it (turn on "
            "Encrypt local backup on the iPhone via Finder or idevicebackup2 to include them)"
        )
    if facts.camera_roll_files == 0:
        notes.append(
            "the camera roll is not in it: with iCloud Photos on, the iPhone leaves it out of "
            "computer backups; the photo archive holds the photos"
        )
    if overdue and facts.enabled:
        notes.append("device backup overdue: plug the iPhone in and unlock it")
    return DeviceBackupAssessment(overdue=overdue, age=age, notes=tuple(notes))
