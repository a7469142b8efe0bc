"""``rollkeeper status [--json] [--check]``: is everything backed up, and if not, why not.

Works whether or not the service runs: it reads the state database read-only (WAL readers
never block the service), probes the service's instance lock without taking it, and loads the
config to say whether it is usable. The words come from :mod:`rollkeeper.domain.health`, so status
never says "backed up" unless the last run was complete and nothing on the phone is pending or
failed. The JSON shape is documented in docs/status.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from rollkeeper.domain.health import (
    STATE_BACKING_UP,
    STATE_DISCONNECTED,
    CheckLevel,
    CheckResult,
    PhoneAssessment,
    PhoneFacts,
    archive_check_findings,
    assess_phone,
    estimate_remaining,
    overall_check,
    printable,
)
from rollkeeper.domain.units import format_bytes, format_duration
from rollkeeper.store.reports import FileCounts, Reports, parse_timestamp, run_as_dict
from rollkeeper.store.state import DeviceRecord, RunRecord, StateDamagedError, StateStore

if TYPE_CHECKING:
    from rollkeeper.config import Config

#: Version of the ``--json`` document; bumped when a field changes meaning or goes away.
JSON_VERSION = 1
#: Used when the config cannot be loaded (the config's own default is the same).
DEFAULT_STALE_AFTER_DAYS = 7.0

DESCRIPTION = """\
Show whether the phones rollkeeper knows are backed up, what each is doing now, and anything
that needs you: a service that is not running, a broken config, failed files, a phone not
backed up for too long. Works whether or not the service runs.

A phone is "backed up" only when its last backup run was complete and nothing the phone showed
at its last scan is pending or failed.

--check prints one line and exits 0 (OK), 1 (warning: a phone not backed up for
stale_after_days, failed files, Trust refused) or 2 (critical: the last run failed, the service
is not running, the config is broken, the archive check found damaged files), for cron, Nagios
or Uptime Kuma. --json shows everything for scripts (docs/status.md).
"""

#: Width of the labels of a phone's lines in the text output.
LABEL_WIDTH = 16

_STATE_WORDS = {
    "disconnected": "not connected",
    "connected": "connected",
    "up_to_date": "connected, nothing new to copy",
    "waiting_for_unlock": "waiting for you to unlock the phone",
    "waiting_for_trust": 'waiting for you to tap "Trust" on the phone',
    "trust_denied": "the phone refused to trust this computer: unplug it, plug it in, tap Trust",
    "error": "error",
    "excluded": "left out by [filters] include_devices / exclude_devices",
}

_VERDICT_WORDS = {
    "backed_up": "backed up",
    "backing_up": "backing up now",
    "not_backed_up": "NOT fully backed up",
    "never_backed_up": "never backed up completely",
    "excluded": "not backed up: left out by the config's filters",
}


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    """Whether the service holds its instance lock (it runs), and its pid when known."""

    running: bool
    pid: int | None
    lock_path: Path


@dataclass(frozen=True, slots=True)
class ConfigStatus:
    """Which config file was loaded and every problem with it."""

    path: Path | None
    problems: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Progress:
    """How far the backup under way has come."""

    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int
    remaining: timedelta | None


@dataclass(frozen=True, slots=True)
class PhoneStatus:
    """Everything ``status`` shows about one phone."""

    device: DeviceRecord
    #: The state to show: the recorded one, or ``disconnected`` when the service is not running
    #: (a recorded state is only true while its service lives).
    state: str
    assessment: PhoneAssessment
    counts: FileCounts
    archived_files: int
    archived_bytes: int
    archived_not_on_phone: int
    last_run: RunRecord | None
    current_run: RunRecord | None
    progress: Progress | None


@dataclass(frozen=True, slots=True)
class ArchiveCheckStatus:
    """The last archive check (scrub) that found something, and what of it is still open."""

    report_path: Path
    checked_at: datetime | None
    unresolved: list[str]
    archive_unreachable: bool
    error: str | None = None


@dataclass(frozen=True, slots=True)
class StatusReport:
    """The whole answer of ``status``, before it is rendered as text or JSON."""

    generated_at: datetime
    service: ServiceStatus
    config: ConfigStatus
    state_path: Path
    state_exists: bool
    state_problem: str | None
    stale_after_days: float
    archive_files: int
    archive_bytes: int
    phones: list[PhoneStatus] = field(default_factory=list)
    archive_check: ArchiveCheckStatus | None = None
    check: CheckResult = field(default_factory=lambda: CheckResult(CheckLevel.OK, ""))


# -- locating config, state and service --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Context:
    """Where the config and the state are, and the config's problems (shared by commands)."""

    #: The loaded config, or None when it is broken.
    config: Config | None
    config_status: ConfigStatus
    state_path: Path
    stale_after_days: float


def load_context(config_cli_value: str | None, environ: Mapping[str, str]) -> Context:
    """Load the config (remembering its problems) and find the state database.

    A broken config must not hide the state: the state path is then read from the file's
    ``[state] path`` as written, else the platform default, so ``status`` still shows the
    phones while it reports the config error.
    """
    from rollkeeper.config import ConfigError, load_config, resolve_config_path

    config_path = resolve_config_path(config_cli_value, environ)
    try:
        config = load_config(config_path, environ)
    except ConfigError as error:
        return Context(
            config=None,
            config_status=ConfigStatus(config_path, tuple(str(p) for p in error.problems)),
            state_path=_fallback_state_path(config_path, environ),
            stale_after_days=DEFAULT_STALE_AFTER_DAYS,
        )
    return Context(
        config=config,
        config_status=ConfigStatus(config_path, ()),
        state_path=Path(config.state.path),
        stale_after_days=float(config.schedule.stale_after_days),
    )


def _fallback_state_path(config_path: Path | None, environ: Mapping[str, str]) -> Path:
    from rollkeeper.config import default_state_dir, expand_path

    if config_path is not None:
        try:
            document = tomllib.loads(config_path.read_text(encoding="utf-8"))
            written = document["state"]["path"]
            if isinstance(written, str) and written:
                expanded = expand_path(written, environ)
                if os.path.isabs(expanded):
                    return Path(expanded)
        except (OSError, ValueError, KeyError, TypeError):
            pass
    return default_state_dir(environ) / "state.sqlite3"


def scrub_report_path_for(state_path: Path) -> Path:
    """Where the service keeps the last archive check that found something
    (``<state db>.scrub.json``, written by the service's scheduled scrub)."""
    return state_path.with_name(state_path.name + ".scrub.json")


def _archive_check(state_path: Path, reports: Reports | None) -> ArchiveCheckStatus | None:
    path = scrub_report_path_for(state_path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        return ArchiveCheckStatus(path, None, [], False, error=str(error))
    if not isinstance(document, dict):
        return ArchiveCheckStatus(path, None, [], False, error="not a JSON object")
    stamp = document.get("finished_at") or document.get("started_at")
    try:
        checked_at = datetime.fromisoformat(stamp) if isinstance(stamp, str) else None
    except ValueError:
        checked_at = None
    if checked_at is None:
        return ArchiveCheckStatus(path, None, [], False, error="no time in the report")
    if checked_at.tzinfo is None:
        checked_at = checked_at.replace(tzinfo=UTC)
    flagged = [
        str(item)
        for key in ("missing", "changed", "unreadable")
        for item in (document.get(key) or [])
        if isinstance(item, str)
    ]
    unresolved = (
        reports.unresolved_archive_paths(flagged, checked_at) if reports is not None else flagged
    )
    return ArchiveCheckStatus(
        report_path=path,
        checked_at=checked_at,
        unresolved=unresolved,
        archive_unreachable=bool(document.get("archive_unreachable")),
    )


def lock_path_for(state_path: Path) -> Path:
    """The service's instance lock next to the state database (``<state db>.lock``)."""
    return state_path.with_name(state_path.name + ".lock")


def service_status(state_path: Path) -> ServiceStatus:
    """Whether a service holds the lock of this state database (never takes the lock)."""
    from rollkeeper.host.single_instance import InstanceLock

    lock_path = lock_path_for(state_path)
    running = InstanceLock.is_held(lock_path)
    pid = InstanceLock.holder_pid(lock_path) if running else None
    return ServiceStatus(running=running, pid=pid, lock_path=lock_path)


# -- gathering ---------------------------------------------------------------------------------


def _timestamp(text: str) -> datetime:
    moment = parse_timestamp(text)
    if moment is None:  # the schema makes these columns NOT NULL
        raise ValueError("missing timestamp")
    return moment


def _phone_status(
    device: DeviceRecord,
    reports: Reports,
    service_running: bool,
    now: datetime,
    stale_after: timedelta,
    config: Config | None,
) -> PhoneStatus:
    state = device.state if service_running else STATE_DISCONNECTED
    counts = reports.file_counts(device.udid)
    last_run = reports.last_finished_run(device.udid)
    current_run = reports.running_run(device.udid) if service_running else None
    facts = PhoneFacts(
        udid=device.udid,
        name=device.name,
        state=state,
        first_seen_at=_timestamp(device.first_seen_at),
        last_complete_at=parse_timestamp(device.last_complete_at),
        last_finished_outcome=None if last_run is None else last_run.outcome,
        pending=counts.pending,
        failed=counts.failed,
        excluded=_excluded(device, config),
    )
    progress = None
    if state == STATE_BACKING_UP:
        started = _timestamp(
            current_run.started_at if current_run is not None else device.state_changed_at
        )
        progress = Progress(
            files_done=device.progress_files_done,
            files_total=device.progress_files_total,
            bytes_done=device.progress_bytes_done,
            bytes_total=device.progress_bytes_total,
            remaining=estimate_remaining(
                device.progress_bytes_done, device.progress_bytes_total, now - started
            ),
        )
    archived_files, archived_bytes = reports.device_archive_size(device.udid)
    return PhoneStatus(
        device=device,
        state=state,
        assessment=assess_phone(facts, now, stale_after),
        counts=counts,
        archived_files=archived_files,
        archived_bytes=archived_bytes,
        archived_not_on_phone=reports.archived_not_on_phone(device.udid),
        last_run=last_run,
        current_run=current_run,
        progress=progress,
    )


def _excluded(device: DeviceRecord, config: Config | None) -> bool:
    """Whether the config leaves this phone out (else what the service last recorded)."""
    if config is None:
        return device.state == "excluded"
    from rollkeeper.domain.filters import device_selected

    filters = config.filters
    return not device_selected(
        device.udid, device.name, filters.include_devices, filters.exclude_devices
    )


def gather_status(
    config_cli_value: str | None, environ: Mapping[str, str], now: datetime
) -> StatusReport:
    """Collect everything ``status`` shows. Reads only; never raises for a broken setup."""
    context = load_context(config_cli_value, environ)
    service = service_status(context.state_path)
    stale_after = timedelta(days=context.stale_after_days)
    phones: list[PhoneStatus] = []
    state_problem: str | None = None
    state_exists = context.state_path.exists()
    archive_files = archive_bytes = 0
    archive_check: ArchiveCheckStatus | None = None
    if state_exists:
        try:
            store = StateStore.open(context.state_path, read_only=True)
        except StateDamagedError as error:
            state_problem = error.reason
        except OSError as error:
            state_problem = error.strerror or str(error)
        else:
            try:
                reports = Reports.for_store(store)
                archive_files, archive_bytes = store.archive_size()
                phones = [
                    _phone_status(
                        device, reports, service.running, now, stale_after, context.config
                    )
                    for device in store.devices()
                ]
                archive_check = _archive_check(context.state_path, reports)
            except (sqlite3.Error, ValueError) as error:
                state_problem = str(error)
                phones = []
            finally:
                store.close()
    archive_critical: list[str] = []
    archive_warnings: list[str] = []
    if archive_check is not None and archive_check.checked_at is not None:
        completes = [
            moment
            for moment in (parse_timestamp(phone.device.last_complete_at) for phone in phones)
            if moment is not None
        ]
        archive_critical, archive_warnings = archive_check_findings(
            unresolved_damaged=len(archive_check.unresolved),
            archive_unreachable=archive_check.archive_unreachable,
            checked_at=archive_check.checked_at,
            latest_complete_at=max(completes, default=None),
        )
    check = overall_check(
        service_running=service.running,
        config_problems=context.config_status.problems,
        state_problem=state_problem,
        phones=[phone.assessment for phone in phones],
        archive_critical=archive_critical,
        archive_warnings=archive_warnings,
    )
    return StatusReport(
        generated_at=now,
        service=service,
        config=context.config_status,
        state_path=context.state_path,
        state_exists=state_exists,
        state_problem=state_problem,
        stale_after_days=context.stale_after_days,
        archive_files=archive_files,
        archive_bytes=archive_bytes,
        phones=phones,
        archive_check=archive_check,
        check=check,
    )


# -- rendering ---------------------------------------------------------------------------------


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat(timespec="seconds")


def status_as_dict(report: StatusReport) -> dict[str, Any]:
    """The ``status --json`` document (docs/status.md)."""
    devices = []
    for phone in report.phones:
        device = phone.device
        assessment = phone.assessment
        progress = None
        if phone.progress is not None:
            remaining = phone.progress.remaining
            progress = {
                "files_done": phone.progress.files_done,
                "files_total": phone.progress.files_total,
                "bytes_done": phone.progress.bytes_done,
                "bytes_total": phone.progress.bytes_total,
                "eta_seconds": None if remaining is None else round(remaining.total_seconds()),
            }
        devices.append(
            {
                "udid": device.udid,
                "name": device.name,
                "model": device.product_type,
                "ios_version": device.product_version,
                "first_seen_at": device.first_seen_at,
                "last_seen_at": device.last_seen_at,
                "last_complete_backup_at": device.last_complete_at,
                "verdict": assessment.verdict,
                "backed_up": assessment.verdict == "backed_up",
                "level": assessment.level.name.lower(),
                "reasons": list(assessment.reasons),
                "stale": {
                    "stale": assessment.staleness.stale,
                    "since": _iso(assessment.staleness.since),
                    "age_days": round(assessment.staleness.age.total_seconds() / 86400, 2),
                    "never_completed": assessment.staleness.never_completed,
                },
                "state": {
                    "name": phone.state,
                    "recorded": device.state,
                    "detail": device.state_detail,
                    "since": device.state_changed_at,
                    "progress": progress,
                },
                "files": {
                    "on_phone": phone.counts.on_phone,
                    "archived": phone.counts.archived,
                    "pending": phone.counts.pending,
                    "failed": phone.counts.failed,
                    "excluded": phone.counts.excluded,
                },
                "archived_not_on_phone": phone.archived_not_on_phone,
                "archived": {"files": phone.archived_files, "bytes": phone.archived_bytes},
                "last_run": None if phone.last_run is None else run_as_dict(phone.last_run),
                "current_run": (
                    None if phone.current_run is None else run_as_dict(phone.current_run)
                ),
            }
        )
    return {
        "version": JSON_VERSION,
        "generated_at": _iso(report.generated_at),
        "check": {
            "level": report.check.level.name.lower(),
            "exit_code": report.check.exit_code,
            "summary": report.check.summary,
        },
        "service": {
            "running": report.service.running,
            "pid": report.service.pid,
            "lock_path": str(report.service.lock_path),
        },
        "config": {
            "path": None if report.config.path is None else str(report.config.path),
            "ok": not report.config.problems,
            "problems": list(report.config.problems),
        },
        "state": {
            "path": str(report.state_path),
            "exists": report.state_exists,
            "error": report.state_problem,
        },
        "settings": {"stale_after_days": report.stale_after_days},
        "archive": {"files": report.archive_files, "bytes": report.archive_bytes},
        "archive_check": _archive_check_dict(report.archive_check),
        "devices": devices,
    }


def _archive_check_dict(check: ArchiveCheckStatus | None) -> dict[str, Any] | None:
    if check is None:
        return None
    return {
        "report_path": str(check.report_path),
        "checked_at": _iso(check.checked_at),
        "unresolved_count": len(check.unresolved),
        "unresolved": check.unresolved[:100],
        "archive_unreachable": check.archive_unreachable,
        "error": check.error,
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
        line = (
            f"backing up: {progress.files_done:,} of {_plural(progress.files_total, 'file')}, "
            f"{format_bytes(progress.bytes_done)} of {format_bytes(progress.bytes_total)}"
        )
        if progress.remaining is not None:
            line += f", about {format_duration(progress.remaining)} left"
        return line
    words = _STATE_WORDS.get(phone.state, phone.state.replace("_", " "))
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
    write(
        f"Archive:   {_plural(report.archive_files, 'file')}, "
        f"{format_bytes(report.archive_bytes)}\n"
    )
    check = report.archive_check
    if check is not None and check.checked_at is not None and check.unresolved:
        write(
            f"           archive check {local_time(_iso(check.checked_at))}: "
            f"{_plural(len(check.unresolved), 'file')} damaged or missing, not verified "
            "since: run `rollkeeper verify`\n"
        )
        for path in check.unresolved[:10]:
            write(f"             {printable(path, 200)}\n")
        if len(check.unresolved) > 10:
            write(f"             ... and {len(check.unresolved) - 10:,} more (--json)\n")
    if not report.state_exists:
        write("\nNo backup yet: plug in a phone, unlock it and tap Trust.\n")
    elif not report.phones and not report.state_problem:
        write("\nNo phone seen yet: plug in a phone, unlock it and tap Trust.\n")
    for phone in report.phones:
        _render_phone(phone, report.service.running, write)
    write(f"\n{report.check.summary}\n")


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
    field("Backup", _VERDICT_WORDS.get(assessment.verdict, assessment.verdict))
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
    for reason in assessment.reasons:
        write(f"  ! {reason}\n")
    if counts.failed:
        write("    which files and why: `rollkeeper history --failed`\n")


def run_status(
    args: argparse.Namespace,
    *,
    environ: Mapping[str, str],
    now: datetime,
    out: TextIO,
) -> int:
    """The command with its world injected (environment, clock, output) for tests."""
    report = gather_status(getattr(args, "config", None), environ, now)
    if args.json:
        json.dump(status_as_dict(report), out, indent=2)
        out.write("\n")
    elif args.check:
        out.write(report.check.summary + "\n")
    else:
        render_text(report, out)
    return report.check.exit_code if args.check else 0


def handle(args: argparse.Namespace) -> int:
    """Entry point from the command line."""
    return run_status(args, environ=os.environ, now=datetime.now(UTC), out=sys.stdout)


def register(subparsers: Any) -> None:
    """Add ``status`` to the ``rollkeeper`` command line."""
    parser = subparsers.add_parser(
        "status",
        help="is everything backed up? (works with or without the service running)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the status as JSON for scripts (shape: docs/status.md)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="print one line and exit 0 OK, 1 warning, 2 critical (for monitoring)",
    )
    parser.set_defaults(handler=handle)
