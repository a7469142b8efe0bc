"""The ``status --json`` document (its shape is documented in docs/status.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rollkeeper.status.archive_truth import ArchiveTruthStatus
from rollkeeper.status.library import icloud_only_as_dict, library_as_dict
from rollkeeper.status.report import (
    ArchiveCheckStatus,
    DeviceBackupStatus,
    OffsiteStatus,
    StatusReport,
)
from rollkeeper.store.device_backups import DeviceBackupRecord
from rollkeeper.store.reports import run_as_dict

#: Version of the ``--json`` document; bumped when a field changes meaning or goes away.
JSON_VERSION = 1


def iso(moment: datetime | None) -> str | None:
    """An aware moment as UTC ISO 8601 text to the second (None stays None)."""
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
                "scanning": phone.progress.scanning,
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
                    "since": iso(assessment.staleness.since),
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
                "device_backup": device_backup_dict(phone.device_backup),
                "library": library_as_dict(phone.library),
                "originals_only_in_icloud": icloud_only_as_dict(phone.library),
            }
        )
    return {
        "version": JSON_VERSION,
        "generated_at": iso(report.generated_at),
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
        "archive": {
            "files": report.archive_files,
            "bytes": report.archive_bytes,
            "path": None if report.archive_path is None else str(report.archive_path),
            "free_bytes": report.archive_free_bytes,
            **_archive_truth_dict(report.archive_truth),
        },
        "archive_check": _archive_check_dict(report.archive_check),
        "offsite": _offsite_dict(report.offsite),
        "devices": devices,
    }


def _archive_truth_dict(truth: ArchiveTruthStatus | None) -> dict[str, Any]:
    """The archive's availability and findings (docs/archive-truth.md)."""
    state = None if truth is None else truth.state
    findings = {} if truth is None else truth.findings
    return {
        "available": None if state is None else state.available,
        "problem": None if state is None or state.problem is None else state.problem.value,
        "reason": "" if state is None else state.reason,
        "archive_id": None if state is None else (state.archive_id or None),
        "findings": {
            name: findings.get(name, 0)
            for name in ("open", "lost", "restored", "followed", "forgotten")
        },
        "open": [] if truth is None else truth.open_paths,
        "lost": [] if truth is None else truth.lost_paths,
    }


def _archive_check_dict(check: ArchiveCheckStatus | None) -> dict[str, Any] | None:
    if check is None:
        return None
    return {
        "report_path": str(check.report_path),
        "checked_at": iso(check.checked_at),
        "unresolved_count": len(check.unresolved),
        "unresolved": check.unresolved[:100],
        "archive_unreachable": check.archive_unreachable,
        "error": check.error,
    }


def _offsite_dict(offsite: OffsiteStatus | None) -> dict[str, Any] | None:
    if offsite is None:
        return None
    return {
        "engine": offsite.engine,
        "destination": offsite.destination,
        "last_copy": None if offsite.last_copy is None else offsite.last_copy.as_dict(),
        "last_attempt": None if offsite.last_attempt is None else offsite.last_attempt.as_dict(),
        "last_check": None if offsite.last_check is None else offsite.last_check.as_dict(),
        "stale": {
            "stale": offsite.staleness.stale,
            "since": iso(offsite.staleness.since),
            "age_days": round(offsite.staleness.age.total_seconds() / 86400, 2),
            "never_completed": offsite.staleness.never_completed,
        },
        "stale_after_days": offsite.stale_after_days,
        "warnings": list(offsite.warnings),
    }


def device_backup_dict(status: DeviceBackupStatus | None) -> dict[str, Any] | None:
    """A phone's device backups in ``status --json``."""
    if status is None:
        return None

    def record(item: DeviceBackupRecord | None) -> dict[str, Any] | None:
        if item is None:
            return None
        return {
            "id": item.id,
            "outcome": item.outcome,
            "trigger": item.trigger,
            "started_at": iso(item.started_at),
            "finished_at": iso(item.finished_at),
            "snapshot": item.snapshot_id,
            "files": item.files,
            "bytes": item.bytes,
            "added_bytes": item.added_bytes,
            "encrypted": item.encrypted,
            "camera_roll_files": item.camera_roll_files,
            "error": item.error,
        }

    assessment = status.assessment
    return {
        "enabled": status.enabled,
        "overdue": assessment.overdue,
        "age_hours": None
        if assessment.age is None
        else round(assessment.age.total_seconds() / 3600, 2),
        "encrypted": None if status.last_completed is None else status.last_completed.encrypted,
        "last_attempt": record(status.last_attempt),
        "last_completed": record(status.last_completed),
        "notes": list(assessment.notes),
    }
