"""The words of each notification: the title and body shown for a success, failure or overdue.

Kept apart from the channels so the desktop notification says the same thing whichever
notifier shows it, and apart from the policy so changing a sentence cannot change who is told.
Device names and error texts are untrusted and pass through :func:`clean_text` here.
"""

from __future__ import annotations

from datetime import UTC, datetime

from rollkeeper.domain.units import format_bytes
from rollkeeper.notify.notices import RunNotice, clean_text


def success_message(report: RunNotice) -> tuple[str, str]:
    """Title and body for a run that ended normally (honest when it left files behind)."""
    name = clean_text(report.device_name) or report.udid
    if report.files_failed or report.files_pending or report.outcome != "complete":
        # Honest words: the caller calls this for a run that ended normally, but only a
        # complete run is "backed up".
        title = f"Backup of {name} finished, not complete"
        body = (
            f"{report.files_copied} files copied ({format_bytes(report.bytes_copied)}); "
            f"{report.files_pending} pending, {report.files_failed} failed."
        )
    else:
        title = f"{name} is backed up"
        if report.files_copied:
            body = f"{report.files_copied} new files copied ({format_bytes(report.bytes_copied)})."
        else:
            body = "Nothing new to copy."
    return title, body


def failure_message(report: RunNotice) -> tuple[str, str]:
    """Title and body for a failed run, with its (cleaned) reason and counts."""
    name = clean_text(report.device_name) or report.udid
    title = f"Backup of {name} failed"
    reason = clean_text(report.error, 200) if report.error else "unknown error"
    body = (
        f"{reason}. {report.files_copied} files copied, {report.files_pending} pending, "
        f"{report.files_failed} failed."
    )
    return title, body


def stale_message(
    udid: str, device_name: str, last_complete_at: datetime | None
) -> tuple[str, str]:
    """Title and body for a phone that has gone too long without a complete backup."""
    name = clean_text(device_name) or udid
    if last_complete_at is None:
        title = f"{name} has never been backed up completely"
        body = "Plug it in, unlock it and tap Trust; see `rollkeeper status`."
    else:
        day = last_complete_at.astimezone(UTC).strftime("%Y-%m-%d")
        title = f"No backup of {name} since {day}"
        body = "Plug the phone in to back it up; see `rollkeeper status`."
    return title, body
