"""``status`` for people: one block for the service, config, state and archive, then one per
phone. Untrusted text (phone names, error messages) goes through ``printable``."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TextIO

from rollkeeper.domain.display import printable
from rollkeeper.domain.units import format_bytes, format_duration
from rollkeeper.status.document import iso
from rollkeeper.status.library import render_library, verdict_words
from rollkeeper.status.report import PhoneStatus, StatusReport
from rollkeeper.store.reports import parse_timestamp

LABEL_WIDTH = 16

#: What each recorded phone state means, in words (the status page shows the same).
STATE_WORDS = {
    "disconnected": "not connected",
    "connected": "connected",
    "up_to_date": "connected, nothing new to copy",
    "waiting_for_unlock": "waiting for you to unlock the phone",
    "waiting_for_trust": 'waiting for you to tap "Trust" on the phone',
    "usb_restricted": "the phone refuses USB data until you unlock it (locked for over an hour)",
    "waiting_for_first_unlock": "waiting for you to unlock the phone once (it restarted)",
    "trust_denied": "the phone refused to trust this computer: unplug it, plug it in, tap Trust",
    "error": "error",
    "excluded": "left out by [filters] include_devices / exclude_devices",
}

#: What each verdict of :func:`rollkeeper.domain.health.assess_phone` means, in words.
VERDICT_WORDS = {
    "backed_up": "backed up",
    "backing_up": "backing up now",
    "not_backed_up": "NOT fully backed up",
    "never_backed_up": "never backed up completely",
    "excluded": "not backed up: left out by the config's filters",
}


def local_time(text: str | None) -> str:
    """A stored timestamp in the local time zone, to the minute."""
    moment = parse_timestamp(text)
    if moment is None:
        return "never"
    return moment.astimezone().strftime("%Y-%m-%d %H:%M %Z").strip()


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def _state_line(phone: PhoneStatus, service_running: bool) -> str:
    if phone.progress is not None:
        progress = phone.progress
        found = " found so far (still scanning)" if progress.scanning else ""
        line = (
            f"backing up: {progress.files_done:,} of {_plural(progress.files_total, 'file')}"
            f"{found}, "
            f"{format_bytes(progress.bytes_done)} of {format_bytes(progress.bytes_total)}"
        )
        if progress.remaining is not None:
            line += f", about {format_duration(progress.remaining)} left"
        return line
    words = STATE_WORDS.get(phone.state, phone.state.replace("_", " "))
    if phone.device.state_detail and phone.state == phone.device.state:
        words += f" ({printable(phone.device.state_detail, 300)})"
    if not service_running and phone.device.state not in ("disconnected", ""):
        words += " (the service is not running)"
    return words


def render_text(report: StatusReport, out: TextIO) -> None:
    """``status`` for people."""
    write = out.write
    if report.service.running:
        pid = f" (pid {report.service.pid})" if report.service.pid else ""
        write(f"Service:   running{pid}\n")
    else:
        write("Service:   NOT running - start it: systemctl --user start rollkeeper\n")
    config_name = str(report.config.path) if report.config.path else "(no file: defaults)"
    if report.config.problems:
        write(f"Config:    {config_name}: BROKEN\n")
        for problem in report.config.problems:
            write(f"           {problem}\n")
    else:
        write(f"Config:    {config_name}: OK\n")
    write(f"State:     {report.state_path}\n")
    if report.state_problem:
        write(f"           UNREADABLE: {report.state_problem}\n")
    _render_archive(report, write)
    _render_offsite(report, write)
    if not report.state_exists:
        write("\nNo backup yet: plug in a phone, unlock it and tap Trust.\n")
    elif not report.phones and not report.state_problem:
        write("\nNo phone seen yet: plug in a phone, unlock it and tap Trust.\n")
    for phone in report.phones:
        _render_phone(phone, report.service.running, write)
    write(f"\n{report.check.summary}\n")


def _render_archive(report: StatusReport, write: Any) -> None:
    """The archive's size, and the files its last check found damaged that nothing verified
    since (the first ten)."""
    free = (
        ""
        if report.archive_free_bytes is None
        else f" ({format_bytes(report.archive_free_bytes)} free on its disk)"
    )
    write(
        f"Archive:   {_plural(report.archive_files, 'file')}, "
        f"{format_bytes(report.archive_bytes)}{free}\n"
    )
    _render_archive_truth(report, write)
    check = report.archive_check
    if check is None or check.checked_at is None or not check.unresolved:
        return
    write(
        f"           archive check {local_time(iso(check.checked_at))}: "
        f"{_plural(len(check.unresolved), 'file')} damaged or missing, not verified "
        "since: run `rollkeeper verify`\n"
    )
    for path in check.unresolved[:10]:
        write(f"             {printable(path, 200, escape=True)}\n")
    if len(check.unresolved) > 10:
        write(f"             ... and {len(check.unresolved) - 10:,} more (--json)\n")


def _render_archive_truth(report: StatusReport, write: Any) -> None:
    """Whether the archive is there, and the files missing, damaged or lost in it."""
    truth = report.archive_truth
    if truth is None:
        return
    if truth.state is not None and not truth.state.available:
        write(f"           NOT AVAILABLE: {printable(truth.state.reason, 400)}\n")
    findings = truth.findings
    if findings.get("open"):
        write(
            f"           {_plural(findings['open'], 'file')} missing or damaged, restored at"
            " the next plug-in of its phone\n"
        )
        for path in truth.open_paths[:10]:
            write(f"             {printable(path, 200, escape=True)}\n")
    if findings.get("lost"):
        write(
            f"           {_plural(findings['lost'], 'file')} LOST (missing, no longer on the"
            " phone; `rollkeeper forget PATH` if removed on purpose)\n"
        )
        for path in truth.lost_paths[:10]:
            write(f"             {printable(path, 200, escape=True)}\n")
    if findings.get("restored"):
        write(f"           {_plural(findings['restored'], 'file')} restored so far\n")


def _render_phone(phone: PhoneStatus, service_running: bool, write: Any) -> None:
    device = phone.device
    assessment = phone.assessment

    def field(label: str, value: str) -> None:
        write(f"  {label + ':':<{LABEL_WIDTH}} {value}\n")

    title = printable(device.name, 80) or "(unnamed phone)"
    model = ", ".join(
        part
        for part in (
            printable(device.product_type, 40),
            f"iOS {printable(device.product_version, 40)}" if device.product_version else "",
        )
        if part
    )
    write(f"\n{title}" + (f" ({model})" if model else "") + f"  {device.udid}\n")
    field(
        "Backup",
        verdict_words(VERDICT_WORDS.get(assessment.verdict, assessment.verdict), phone.library),
    )
    last_complete = local_time(device.last_complete_at)
    if assessment.staleness.stale:
        last_complete += f" ({format_duration(assessment.staleness.age)} ago: too long)"
    field("Last complete", last_complete)
    field("Now", _state_line(phone, service_running))
    field("Last seen", local_time(device.last_seen_at))
    counts = phone.counts
    field(
        "On the phone",
        f"{_plural(counts.on_phone, 'file')} at the last scan: {counts.archived:,} archived, "
        f"{counts.pending:,} pending, {counts.failed:,} failed, {counts.excluded:,} excluded",
    )
    if phone.archived_not_on_phone:
        field(
            "Gone from phone",
            f"{_plural(phone.archived_not_on_phone, 'file')} kept in the archive "
            "(deleted on the phone, or offloaded to iCloud)",
        )
    field(
        "Archived",
        f"{_plural(phone.archived_files, 'file')}, {format_bytes(phone.archived_bytes)}",
    )
    run = phone.last_run
    if run is not None:
        summary = (
            f"#{run.id} {run.outcome}, {local_time(run.finished_at)}: "
            f"{run.files_copied:,} copied ({format_bytes(run.bytes_copied)}), "
            f"{run.files_failed:,} failed, {run.files_pending:,} pending"
        )
        if run.error:
            summary += f"; {printable(run.error, 300)}"
        field("Last run", summary)
    if phone.device_backup is not None:
        field("Device backup", _device_backup_words(phone))
        for note in phone.device_backup.assessment.notes:
            write(f"    {note}\n")
    render_library(phone.library, field, write)
    for reason in assessment.reasons:
        write(f"  ! {reason}\n")
    if counts.failed:
        write("    which files and why: `rollkeeper history --failed`\n")


def _device_backup_words(phone: PhoneStatus) -> str:
    """The last complete device backup of a phone that has them: when, how much, encrypted."""
    assert phone.device_backup is not None
    completed = phone.device_backup.last_completed
    if completed is None:
        return "none yet"
    age = phone.device_backup.assessment.age
    ago = f" ({format_duration(age)} ago)" if age is not None else ""
    lock = "encrypted" if completed.encrypted else "not encrypted"
    return (
        f"{local_time(iso_text(completed.finished_at))}{ago}: "
        f"{_plural(completed.files, 'file')}, {format_bytes(completed.bytes)}, {lock}"
    )


def iso_text(moment: datetime | None) -> str | None:
    """A stored moment as the ISO text :func:`local_time` reads."""
    return None if moment is None else moment.isoformat()


def _render_offsite(report: StatusReport, write: Any) -> None:
    """``Offsite:`` the last copy and how old it is, like a phone's last backup."""
    offsite = report.offsite
    if offsite is None:
        return
    where = f"{offsite.engine} {printable(offsite.destination, 120)}"
    copy = offsite.last_copy
    if copy is None:
        write(f"Offsite:   no copy yet ({where})\n")
    else:
        line = f"Offsite:   last copy {local_time(copy.finished_at or copy.started_at)} ({where}"
        if copy.snapshot_id:
            line += f", snapshot {printable(copy.snapshot_id, 40)}"
        if copy.bytes_added is not None:
            line += f", +{format_bytes(copy.bytes_added)}"
        line += ")"
        if offsite.staleness.stale:
            line += f", {format_duration(offsite.staleness.age)} ago: too long"
        write(line + "\n")
    for warning in offsite.warnings:
        write(f"           ! {warning}\n")
