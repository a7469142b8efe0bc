"""Collect what ``status`` shows: the config, the service's lock, the state, the last scrub.

Reads only, and never raises for a broken setup: a broken config, a missing or unreadable state
database and a damaged scrub report are each part of the answer. The state database is opened
read-only (WAL readers never block the service), and the instance lock is probed without being
taken.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from rollkeeper import bootstrap
from rollkeeper.domain.archive_health import archive_check_findings, archive_truth_findings
from rollkeeper.domain.device_backup_health import DeviceBackupFacts, assess_device_backup
from rollkeeper.domain.filters import device_selected
from rollkeeper.domain.health import (
    SCANNING_DETAIL,
    STATE_BACKING_UP,
    STATE_DISCONNECTED,
    PhoneFacts,
    assess_phone,
    estimate_remaining,
    offsite_findings,
    overall_check,
)
from rollkeeper.host.single_instance import InstanceLock
from rollkeeper.status.archive_truth import ArchiveTruthStatus, archive_truth_status
from rollkeeper.status.library import LibraryStatus, library_status
from rollkeeper.status.report import (
    ArchiveCheckStatus,
    ConfigStatus,
    DeviceBackupStatus,
    OffsiteStatus,
    PhoneStatus,
    Progress,
    ServiceStatus,
    StatusReport,
)
from rollkeeper.store.archive_truth import LOST, OPEN
from rollkeeper.store.offsite_runs import CHECK, COMPLETE, COPY
from rollkeeper.store.records import parse_required_timestamp
from rollkeeper.store.reports import Reports, parse_timestamp
from rollkeeper.store.state import DeviceRecord, StateDamagedError, StateStore

if TYPE_CHECKING:
    from rollkeeper.config import Config


def read_archive_check(state_path: Path, reports: Reports | None) -> ArchiveCheckStatus | None:
    """The last archive check (scrub) that found something, and which of its files nothing has
    verified since; None when no check has found anything."""
    path = bootstrap.scrub_report_path(state_path)
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


def archive_free_bytes(archive_path: Path | None) -> int | None:
    """Free bytes on the archive folder's file system; None when the folder is not there (an
    unmounted disk's mount point would report the wrong disk, so only the folder itself counts)."""
    if archive_path is None or not archive_path.is_dir():
        return None
    try:
        return shutil.disk_usage(archive_path).free
    except OSError:
        return None


def service_status(state_path: Path) -> ServiceStatus:
    """Whether a service holds the lock of this state database (never takes the lock)."""
    lock_path = bootstrap.state_lock_path(state_path)
    running = InstanceLock.is_held(lock_path)
    pid = InstanceLock.holder_pid(lock_path) if running else None
    return ServiceStatus(running=running, pid=pid, lock_path=lock_path)


def _phone_status(
    device: DeviceRecord,
    reports: Reports,
    service_running: bool,
    now: datetime,
    stale_after: timedelta,
    config: Config | None,
    library: LibraryStatus | None = None,
    archive_in_question: bool = False,
) -> PhoneStatus:
    state = device.state if service_running else STATE_DISCONNECTED
    counts = reports.file_counts(device.udid)
    last_run = reports.last_finished_run(device.udid)
    current_run = reports.running_run(device.udid) if service_running else None
    facts = PhoneFacts(
        udid=device.udid,
        name=device.name,
        state=state,
        first_seen_at=parse_required_timestamp(device.first_seen_at),
        last_complete_at=parse_timestamp(device.last_complete_at),
        last_finished_outcome=None if last_run is None else last_run.outcome,
        pending=counts.pending,
        failed=counts.failed,
        excluded=_excluded(device, config),
        icloud_only=library.counts.cloud_only if library is not None else 0,
        warn_icloud_only=config.library.warn_icloud_only if config is not None else True,
        library_suspect=library is not None and library.suspect,
        archive_in_question=archive_in_question,
    )
    progress = None
    if state == STATE_BACKING_UP:
        started = parse_required_timestamp(
            current_run.started_at if current_run is not None else device.state_changed_at
        )
        scanning = device.state_detail == SCANNING_DETAIL
        progress = Progress(
            files_done=device.progress_files_done,
            files_total=device.progress_files_total,
            bytes_done=device.progress_bytes_done,
            bytes_total=device.progress_bytes_total,
            # While the scan goes on the totals still grow: an estimate would be wrong.
            remaining=None
            if scanning
            else estimate_remaining(
                device.progress_bytes_done, device.progress_bytes_total, now - started
            ),
            scanning=scanning,
        )
    archived_files, archived_bytes = reports.device_archive_size(device.udid)
    return PhoneStatus(
        device_backup=device_backup_status(reports, device.udid, config, now),
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
        library=library,
    )


def device_backup_status(
    reports: Reports, udid: str, config: Config | None, now: datetime
) -> DeviceBackupStatus | None:
    """The phone's device backups, or None when it never had one and they are off."""
    section = config.device_backup if config is not None else None
    enabled = bool(section is not None and section.enabled)
    attempt = reports.last_device_backup(udid)
    completed = reports.last_completed_device_backup(udid)
    if attempt is None and not enabled:
        return None
    facts = DeviceBackupFacts(
        enabled=enabled,
        every_hours=float(section.every_hours) if section is not None else 24.0,
        last_outcome=None if attempt is None else attempt.outcome,
        last_completed_at=None if completed is None else completed.finished_at,
        encrypted=None if completed is None else completed.encrypted,
        camera_roll_files=None if completed is None else completed.camera_roll_files,
    )
    return DeviceBackupStatus(enabled, attempt, completed, assess_device_backup(facts, now))


def _excluded(device: DeviceRecord, config: Config | None) -> bool:
    """Whether the config leaves this phone out (else what the service last recorded)."""
    if config is None:
        return device.state == "excluded"
    filters = config.filters
    return not device_selected(
        device.udid, device.name, filters.include_devices, filters.exclude_devices
    )


def offsite_status(
    config: Config | None, store: StateStore | None, now: datetime
) -> OffsiteStatus | None:
    """The offsite copies as recorded, when the config has them on (None otherwise)."""
    if config is None or not config.offsite.engine:
        return None
    offsite = config.offsite
    repository = store.offsite_repository if store is not None else None
    last_copy = repository.last(COPY, (COMPLETE,)) if repository is not None else None
    last_attempt = repository.last(COPY) if repository is not None else None
    last_check = repository.last(CHECK) if repository is not None else None
    first = repository.first(COPY) if repository is not None else None
    staleness, warnings = offsite_findings(
        last_copy_at=None if last_copy is None else parse_timestamp(last_copy.started_at),
        last_attempt_outcome=None if last_attempt is None else last_attempt.outcome,
        last_attempt_error="" if last_attempt is None else last_attempt.error,
        first_attempt_at=None if first is None else parse_timestamp(first.started_at),
        now=now,
        stale_after=timedelta(days=offsite.stale_after_days),
    )
    if last_check is not None and last_check.outcome != COMPLETE:
        warnings.append(
            f"the last check of the offsite copy {last_check.outcome}: {last_check.error}"
        )
    return OffsiteStatus(
        engine=offsite.engine,
        destination=offsite.repository if offsite.engine == "restic" else offsite.remote,
        last_copy=last_copy,
        last_attempt=last_attempt,
        last_check=last_check,
        staleness=staleness,
        stale_after_days=offsite.stale_after_days,
        warnings=tuple(warnings),
    )


def gather_status(
    config_cli_value: str | None, environ: Mapping[str, str], now: datetime
) -> StatusReport:
    """Collect everything ``status`` shows. Reads only; never raises for a broken setup."""
    loaded = bootstrap.load_config_leniently(config_cli_value, environ, quick=True)
    state_path = loaded.state_path
    if loaded.config is not None:
        stale_after_days = float(loaded.config.schedule.stale_after_days)
    else:
        # A broken config still has the schema's default threshold: the phones are judged.
        from rollkeeper.config import ScheduleSettings

        stale_after_days = float(ScheduleSettings().stale_after_days)
    service = service_status(state_path)
    stale_after = timedelta(days=stale_after_days)
    phones: list[PhoneStatus] = []
    state_problem: str | None = None
    state_exists = state_path.exists()
    archive_files = archive_bytes = 0
    archive_check: ArchiveCheckStatus | None = None
    offsite: OffsiteStatus | None = None
    truth: ArchiveTruthStatus | None = None
    if state_exists:
        try:
            store = bootstrap.open_state_read_only(state_path)
        except StateDamagedError as error:
            state_problem = error.reason
        except OSError as error:
            state_problem = error.strerror or str(error)
        else:
            try:
                reports = Reports.for_store(store)
                truth = archive_truth_status(
                    None if loaded.config is None else Path(loaded.config.archive.path), store
                )
                archive_files, archive_bytes = store.archive_size()
                phones = [
                    _phone_status(
                        device,
                        reports,
                        service.running,
                        now,
                        stale_after,
                        loaded.config,
                        library_status(store, device.udid),
                        truth.in_question,
                    )
                    for device in store.devices()
                ]
                archive_check = read_archive_check(state_path, reports)
                offsite = offsite_status(loaded.config, store, now)
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
    if truth is not None:
        truth_critical, truth_warnings = archive_truth_findings(
            unavailable_reason="" if truth.state is None else truth.state.reason,
            open_findings=truth.findings.get(OPEN, 0),
            lost=truth.findings.get(LOST, 0),
        )
        archive_critical = truth_critical + archive_critical
        archive_warnings = truth_warnings + archive_warnings
    if offsite is None and not state_exists:
        offsite = offsite_status(loaded.config, None, now)
    check = overall_check(
        service_running=service.running,
        config_problems=loaded.problems,
        state_problem=state_problem,
        phones=[phone.assessment for phone in phones],
        archive_critical=archive_critical,
        archive_warnings=archive_warnings,
        offsite_warnings=() if offsite is None else offsite.warnings,
    )
    archive_path = None if loaded.config is None else Path(loaded.config.archive.path)
    return StatusReport(
        generated_at=now,
        service=service,
        config=ConfigStatus(loaded.path, loaded.problems),
        state_path=state_path,
        state_exists=state_exists,
        state_problem=state_problem,
        stale_after_days=stale_after_days,
        archive_files=archive_files,
        archive_bytes=archive_bytes,
        phones=phones,
        archive_check=archive_check,
        offsite=offsite,
        archive_path=archive_path,
        archive_free_bytes=archive_free_bytes(archive_path),
        check=check,
        archive_truth=truth,
    )
