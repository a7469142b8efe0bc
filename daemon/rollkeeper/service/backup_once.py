"""One-shot backup of the phones attached now (``rollkeeper backup-now``).

The same :class:`~rollkeeper.importer.job.BackupRun` as the service, without the scheduler: the
phones attached now are backed up concurrently, a rich progress bar shows bytes and ETA on a
terminal, and the outcome says, per phone, whether everything is in the archive.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

import structlog

from rollkeeper import bootstrap
from rollkeeper.config import Config
from rollkeeper.device.errors import PhoneUnavailableError, UsbmuxdUnavailableError
from rollkeeper.device.events import describe_usbmux_address, list_attached, usbmuxd_fix_hint
from rollkeeper.device.session import open_session
from rollkeeper.domain.filters import device_selected
from rollkeeper.host.permissions import set_private_umask
from rollkeeper.host.single_instance import AlreadyRunningError
from rollkeeper.importer.job import BackupRun, Progress
from rollkeeper.store import StateStore

log = structlog.get_logger("rollkeeper.backup_now")


@dataclass
class PhoneOutcome:
    """How the backup of one phone ended."""

    udid: str
    name: str = ""
    outcome: str = "not_started"
    run_id: int | None = None
    files_found: int = 0
    files_copied: int = 0
    bytes_copied: int = 0
    files_already_archived: int = 0
    files_deduplicated: int = 0
    files_excluded: int = 0
    files_failed: int = 0
    files_pending: int = 0
    items_rejected: int = 0
    problem: str = ""
    hint: str = ""
    failures: list[dict[str, str]] = field(default_factory=list)


@dataclass
class BackupNowOutcome:
    """The result of ``backup-now``: complete only when every phone's run was complete."""

    complete: bool = False
    problem: str = ""
    phones: list[PhoneOutcome] = field(default_factory=list)

    def summary_lines(self) -> list[str]:
        """A human summary, one phone per paragraph."""
        lines: list[str] = []
        if self.problem:
            lines.append(f"rollkeeper: {self.problem}")
        for phone in self.phones:
            label = phone.name or phone.udid
            if phone.outcome == "complete":
                lines.append(
                    f"{label}: backed up — {phone.files_found} files on the phone, "
                    f"{phone.files_copied} copied ({phone.bytes_copied / 1e6:.1f} MB), "
                    f"{phone.files_already_archived + phone.files_deduplicated} already in the "
                    f"archive, {phone.files_excluded} excluded by filters"
                )
            elif phone.outcome == "not_started":
                lines.append(f"{label}: not backed up — {phone.problem}. {phone.hint}".rstrip())
            else:
                lines.append(
                    f"{label}: NOT completely backed up ({phone.outcome}) — "
                    f"{phone.files_failed} failed, {phone.files_pending} pending, "
                    f"{phone.files_copied} copied this time"
                    + (f"; {phone.problem}" if phone.problem else "")
                )
                for failure in phone.failures[:20]:
                    lines.append(f"  {failure['phone_path']}: {failure['reason']}")
                if len(phone.failures) > 20:
                    lines.append(
                        f"  ... and {len(phone.failures) - 20} more (rollkeeper history --failed)"
                    )
            if phone.items_rejected:
                lines.append(
                    f"  {phone.items_rejected} item(s) on the phone were refused as unsafe "
                    "(see the log or `rollkeeper history --failed`)"
                )
        return lines


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
        self._progress.update(
            task,
            total=progress.bytes_total or None,
            completed=progress.bytes_done,
            files=f"{progress.files_done}/{progress.files_total} files",
        )


async def _back_up_one(
    config: Config,
    store: StateStore,
    udid: str,
    devices: list[str] | None,
    full_rescan: bool,
    display: _ProgressDisplay | None,
) -> PhoneOutcome | None:
    outcome = PhoneOutcome(udid=udid)
    try:
        async with open_session(udid, bootstrap.session_settings(config)) as session:
            outcome.name = session.info.name
            if devices and not device_selected(udid, session.info.name, devices, ()):
                return None
            if not device_selected(
                udid,
                session.info.name,
                config.filters.include_devices,
                config.filters.exclude_devices,
            ):
                outcome.outcome = "excluded"
                outcome.problem = "excluded by [filters] include_devices/exclude_devices"
                return outcome
            run = BackupRun(
                store,
                bootstrap.backup_settings(config),
                session,
                on_progress=display.update if display is not None else None,
                full_rescan=full_rescan,
            )
            result = await run.run()
    except PhoneUnavailableError as error:
        store.set_device_state(udid, error.state, error.hint)
        outcome.problem = str(error)
        outcome.hint = error.hint
        return outcome
    counts = result.counts
    outcome.outcome = result.outcome
    outcome.run_id = result.run_id
    outcome.problem = result.error
    for name in (
        "files_found",
        "files_copied",
        "bytes_copied",
        "files_already_archived",
        "files_deduplicated",
        "files_excluded",
        "files_failed",
        "files_pending",
        "items_rejected",
    ):
        setattr(outcome, name, getattr(counts, name))
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
) -> BackupNowOutcome:
    """Back up every attached phone (or those named in ``devices``) once."""
    set_private_umask()
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
    try:
        address = bootstrap.usbmux_address(config)
        try:
            attached = await list_attached(address, frozenset(config.device.connection_types))
        except Exception as error:
            result.problem = (
                f"cannot reach usbmuxd at {describe_usbmux_address(address)} "
                f"({type(error).__name__}); {usbmuxd_fix_hint()}"
            )
            return result
        if not attached:
            result.problem = "no iPhone is attached (plug it in, unlock it, and try again)"
            return result
        display = _ProgressDisplay() if show_progress else None
        with display if display is not None else contextlib.nullcontext():
            outcomes = await asyncio.gather(
                *(
                    _back_up_one(config, store, phone.udid, devices, full_rescan, display)
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
        store.close()
        lock.release()
