"""The answer of ``status`` as data, before it is rendered as text or JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from rollkeeper.domain.device_backup_health import DeviceBackupAssessment
from rollkeeper.domain.health import (
    CheckLevel,
    CheckResult,
    PhoneAssessment,
    Staleness,
)
from rollkeeper.status.archive_truth import ArchiveTruthStatus
from rollkeeper.status.library import LibraryStatus
from rollkeeper.store.device_backups import DeviceBackupRecord
from rollkeeper.store.offsite_runs import OffsiteRunRecord
from rollkeeper.store.reports import FileCounts
from rollkeeper.store.state import DeviceRecord, RunRecord


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
    #: The scan is still going on: the totals are what was found so far (no ETA).
    scanning: bool = False


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
    #: The newest device backup attempt and completed snapshot, and what status says of them.
    device_backup: DeviceBackupStatus | None = None
    #: The phone's Photos library: last read, archived photos, originals only in iCloud.
    library: LibraryStatus | None = None


@dataclass(frozen=True, slots=True)
class DeviceBackupStatus:
    """A phone's device backups (mobilebackup2 snapshots) as ``status`` shows them."""

    enabled: bool
    last_attempt: DeviceBackupRecord | None
    last_completed: DeviceBackupRecord | None
    assessment: DeviceBackupAssessment


@dataclass(frozen=True, slots=True)
class ArchiveCheckStatus:
    """The last archive check (scrub) that found something, and what of it is still open."""

    report_path: Path
    checked_at: datetime | None
    unresolved: list[str]
    archive_unreachable: bool
    error: str | None = None


@dataclass(frozen=True, slots=True)
class OffsiteStatus:
    """The offsite copies, when ``[offsite]`` is configured: the last copy, the last attempt,
    the last check, how old the copy is and what needs you."""

    engine: str
    destination: str
    last_copy: OffsiteRunRecord | None
    last_attempt: OffsiteRunRecord | None
    last_check: OffsiteRunRecord | None
    staleness: Staleness
    stale_after_days: float
    warnings: tuple[str, ...]


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
    offsite: OffsiteStatus | None = None
    #: The archive folder of the config (None when the config is broken) and the free space of
    #: its file system (None when the folder cannot be reached).
    archive_path: Path | None = None
    archive_free_bytes: int | None = None
    check: CheckResult = field(default_factory=lambda: CheckResult(CheckLevel.OK, ""))
    #: Whether the archive is there and what is in question in it (None: no state yet).
    archive_truth: ArchiveTruthStatus | None = None
