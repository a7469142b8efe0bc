"""One-shot backup of the phones attached now (``rollkeeper backup-now``).

The same :class:`~rollkeeper.importer.job.BackupRun` as the service, without the scheduler: the
phones attached now are backed up concurrently, a rich progress bar shows bytes and ETA on a
terminal, and the outcome says, per phone, whether everything is in the archive.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import structlog

from rollkeeper import bootstrap
from rollkeeper.config import Config
from rollkeeper.device.errors import PhoneUnavailableError, UsbmuxdUnavailableError
from rollkeeper.device.events import (
    USBMUXD_REQUEST_ERRORS,
    list_attached,
    usbmuxd_unreachable_message,
)
from rollkeeper.device.recording import SessionRecorder
from rollkeeper.device.session import PhoneInfo
from rollkeeper.domain.archive_state import ARCHIVE_UNAVAILABLE
from rollkeeper.domain.display import printable
from rollkeeper.domain.filters import device_selected
from rollkeeper.host.permissions import set_private_umask
from rollkeeper.host.single_instance import AlreadyRunningError
from rollkeeper.importer.job import Progress
from rollkeeper.service.loop_errors import install_loop_error_handler
from rollkeeper.service.phone_backup import back_up_phone
from rollkeeper.status.library import ICLOUD_ADVICE
from rollkeeper.store import RunCounts, StateStore

log = structlog.get_logger("rollkeeper.backup_now")

#: Why a phone is skipped when ``--device`` names others (it is left out of the outcome).
NOT_REQUESTED = "not_requested"
#: The run's counts in the ``--json`` document, by the names it has always used.
JSON_COUNTS: tuple[str, ...] = (
    "files_found",
    "files_copied",
    "bytes_copied",
    "files_already_archived",
    "files_deduplicated",
    "files_excluded",
    "files_failed",
    "files_pending",
    "items_rejected",
    "files_restored",
    "files_lost",
)


@dataclass
class PhoneOutcome:
    """How the backup of one phone ended."""

    udid: str
    name: str = ""
    outcome: str = "not_started"
    run_id: int | None = None
    #: What the run did (all zero when no run started).
    counts: RunCounts = field(default_factory=RunCounts)
    problem: str = ""
    hint: str = ""
    failures: list[dict[str, str]] = field(default_factory=list)
    #: Originals the phone's library says are only in iCloud, and the first few names.
    originals_only_in_icloud: int = 0
    icloud_examples: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The phone's part of ``backup-now --json``: the run's counts side by side with the
        rest, as the document has always had them."""
        document: dict[str, Any] = {
            "udid": self.udid,
            "name": self.name,
            "outcome": self.outcome,
            "run_id": self.run_id,
            "problem": self.problem,
            "hint": self.hint,
            "failures": [dict(failure) for failure in self.failures],
            "originals_only_in_icloud": self.originals_only_in_icloud,
            "originals_only_in_icloud_examples": list(self.icloud_examples),
        }
        document.update(
            (name, value) for name, value in asdict(self.counts).items() if name in JSON_COUNTS
        )
        return document


@dataclass
class BackupNowOutcome:
    """The result of ``backup-now``: complete only when every phone's run was complete."""

    complete: bool = False
    problem: str = ""
    phones: list[PhoneOutcome] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The ``backup-now --json`` document."""
        return {
            "complete": self.complete,
            "problem": self.problem,
            "phones": [phone.as_dict() for phone in self.phones],
        }

    def summary_lines(self) -> list[str]:
        """A human summary, one phone per paragraph."""
        lines: list[str] = []
        if self.problem:
            lines.append(f"rollkeeper: {self.problem}")
        for phone in self.phones:
            label = phone.name or phone.udid
            counts = phone.counts
            if phone.outcome == "complete":
                restored = (
                    f"{counts.files_restored} restored (missing or damaged in the archive), "
                    if counts.files_restored
                    else ""
                )
                lines.append(
                    f"{label}: backed up — {counts.files_found} files on the phone, "
                    f"{counts.files_copied} copied ({counts.bytes_copied / 1e6:.1f} MB), "
                    f"{restored}"
                    f"{counts.files_already_archived + counts.files_deduplicated} already in the "
                    f"archive, {counts.files_excluded} excluded by filters"
                )
            elif phone.problem.startswith(ARCHIVE_UNAVAILABLE + ":"):
                reason = phone.problem.removeprefix(ARCHIVE_UNAVAILABLE + ":").strip()
                lines.append(f"{label}: NOT backed up — {reason}")
            elif phone.outcome == "not_started":
                lines.append(f"{label}: not backed up — {phone.problem}. {phone.hint}".rstrip())
            else:
                lines.append(
                    f"{label}: NOT completely backed up ({phone.outcome}) — "
                    f"{counts.files_failed} failed, {counts.files_pending} pending, "
                    f"{counts.files_copied} copied this time"
                    + (f"; {phone.problem}" if phone.problem else "")
                )
                for failure in phone.failures[:20]:
                    lines.append(f"  {failure['phone_path']}: {failure['reason']}")
                if len(phone.failures) > 20:
                    lines.append(
                        f"  ... and {len(phone.failures) - 20} more (rollkeeper history --failed)"
                    )
            if phone.originals_only_in_icloud:
                lines.append(
                    f"  {phone.originals_only_in_icloud:,} originals are only in iCloud: "
                    f"{ICLOUD_ADVICE} (`rollkeeper status` names them)"
                )
                lines.extend(f"    {printable(name, 120)}" for name in phone.icloud_examples[:5])
            lines.extend(_notes(counts))
        return lines


def _notes(counts: RunCounts) -> list[str]:
    """The lines under a phone's summary about files lost from the archive and refused items."""
    notes: list[str] = []
    if counts.files_lost:
        notes.append(
            f"  {counts.files_lost} archived file(s) are LOST: missing from the archive "
            "and no longer on the phone (`rollkeeper status` lists them; "
            "`rollkeeper forget PATH` if removed on purpose)"
        )
    if counts.items_rejected:
        notes.append(
            f"  {counts.items_rejected} item(s) on the phone were refused as unsafe "
            "(see the log or `rollkeeper history --failed`)"
        )
    return notes


class _ProgressDisplay:
    """A rich progress bar per phone (bytes, speed, ETA), on standard error."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
        from rich.progress import (
            Progress as RichProgress,
        )

        self._progress = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[files]}"),
            transient=False,
        )
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> _ProgressDisplay:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def update(self, progress: Progress) -> None:
        task = self._tasks.get(progress.udid)
        if task is None:
            task = self._progress.add_task(
                progress.device_name or progress.udid, total=progress.bytes_total or None, files=""
            )
            self._tasks[progress.udid] = task
        # While the scan goes on the totals still grow: no total, so no ETA is shown.
        found = " found so far (still scanning)" if progress.scanning else ""
        self._progress.update(
            task,
            total=None if progress.scanning else progress.bytes_total or None,
            completed=progress.bytes_done,
            files=f"{progress.files_done}/{progress.files_total} files{found}",
        )


async def _back_up_one(
    config: Config,
    store: StateStore,
    udid: str,
    devices: list[str] | None,
    full_rescan: bool,
    display: _ProgressDisplay | None,
    recorder: SessionRecorder | None = None,
    refresh_library: bool = False,
) -> PhoneOutcome | None:
    """One attached phone; None when ``--device`` named other phones only."""
    outcome = PhoneOutcome(udid=udid)

    def admit(info: PhoneInfo) -> str | None:
        outcome.name = info.name
        if devices and not device_selected(udid, info.name, devices, ()):
            return NOT_REQUESTED
        filters = config.filters
        if not device_selected(udid, info.name, filters.include_devices, filters.exclude_devices):
            return "excluded"
        return None

    try:
        turn = await back_up_phone(
            udid,
            store,
            bootstrap.session_settings(config),
            bootstrap.backup_settings(config, refresh_library=refresh_library),
            admit=admit,
            on_progress=display.update if display is not None else None,
            full_rescan=full_rescan,
            recorder=recorder,
        )
    except PhoneUnavailableError as error:
        store.set_device_state(udid, error.state, error.hint)
        outcome.problem = str(error)
        outcome.hint = error.hint
        return outcome
    if turn.skipped == NOT_REQUESTED:
        return None
    result = turn.result
    if result is None:
        outcome.outcome = "excluded"
        outcome.problem = "excluded by [filters] include_devices/exclude_devices"
        return outcome
    outcome.outcome = result.outcome
    outcome.run_id = result.run_id
    outcome.problem = result.error
    outcome.counts = result.counts
    outcome.originals_only_in_icloud = result.originals_only_in_icloud
    outcome.icloud_examples = result.icloud_examples
    outcome.failures = [
        {"phone_path": path, "reason": reason, "detail": detail}
        for path, reason, detail in store.run_failures(result.run_id)
    ]
    return outcome


async def back_up_attached(
    config: Config,
    devices: list[str] | None = None,
    full_rescan: bool = False,
    show_progress: bool = False,
    record: Path | None = None,
    refresh_library: bool = False,
) -> BackupNowOutcome:
    """Back up every attached phone (or those named in ``devices``) once; with ``record``, write
    a redacted recording of every phone's answers there (docs/simulator.md); with
    ``refresh_library``, read each phone's Photos library whatever ``refresh_hours`` says."""
    set_private_umask()
    install_loop_error_handler(asyncio.get_running_loop())
    result = BackupNowOutcome()
    try:
        lock = bootstrap.acquire_instance_lock(config)
    except AlreadyRunningError as error:
        result.problem = (
            f"{error}. The service backs up attached phones by itself; "
            "see `rollkeeper status`, or stop the service to use backup-now"
        )
        return result
    store = bootstrap.open_state(config)
    recorder = bootstrap.session_recorder(record) if record is not None else None
    try:
        address = bootstrap.usbmux_address(config)
        try:
            attached = await list_attached(address, frozenset(config.device.connection_types))
        except USBMUXD_REQUEST_ERRORS as error:
            result.problem = usbmuxd_unreachable_message(address, error)
            return result
        if not attached:
            result.problem = "no iPhone is attached (plug it in, unlock it, and try again)"
            return result
        display = _ProgressDisplay() if show_progress else None
        with display if display is not None else contextlib.nullcontext():
            outcomes = await asyncio.gather(
                *(
                    _back_up_one(
                        config,
                        store,
                        phone.udid,
                        devices,
                        full_rescan,
                        display,
                        recorder,
                        refresh_library,
                    )
                    for phone in attached
                ),
                return_exceptions=True,
            )
        for phone, outcome in zip(attached, outcomes, strict=True):
            if isinstance(outcome, UsbmuxdUnavailableError):
                result.phones.append(PhoneOutcome(udid=phone.udid, problem=str(outcome)))
            elif isinstance(outcome, BaseException):
                raise outcome
            elif outcome is not None:
                result.phones.append(outcome)
        if not result.phones:
            result.problem = f"none of the attached iPhones matches {', '.join(devices or [])}"
        result.complete = (
            bool(result.phones)
            and all(phone.outcome in ("complete", "excluded") for phone in result.phones)
            and any(phone.outcome == "complete" for phone in result.phones)
        )
        return result
    finally:
        if recorder is not None:
            recorder.close()
        store.close()
        lock.release()
