"""One device backup of one phone: working copy, mobilebackup2, snapshot, prune.

The phone leads a mobilebackup2 backup and the host only answers it (:mod:`.safe_link`). How
it ends is one of a few outcomes the service reasons about:

- ``completed``: the phone sent ErrorCode 0 and Status.plist says "finished"; the working
  copy became a snapshot and snapshots beyond ``keep`` were pruned;
- ``passcode_timeout``: ErrorCode 208 "Device locked" — from iOS 16.1 the phone asks for its
  passcode before every backup and gives up after about three minutes of silence;
- ``disk_full``: ErrorCode 105, after the phone asked the host to purge space;
- ``unplugged``: the connection dropped; the working copy stays for the next run to discard;
- ``failed``: any other error the phone reported, or a backup folder that does not verify.

In every case but ``completed`` no snapshot changes: the last complete one stays as it was.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from pymobiledevice3.exceptions import (
    ConnectionTerminatedError,
    NotEnoughDiskSpaceError,
    PyMobileDevice3Exception,
)

from rollkeeper.device_backup.manifest import inspect_backup
from rollkeeper.device_backup.safe_link import LinkEvents, SnapshotBackupService
from rollkeeper.device_backup.snapshots import (
    SnapshotFolder,
    SnapshotSummary,
    snapshot_id_for,
    tree_usage,
)

log = structlog.get_logger(__name__)

ERROR_DEVICE_LOCKED = 208
ERROR_NOT_ENOUGH_SPACE = 105
_ERROR_CODE = re.compile(r"'ErrorCode': (\d+)")


@dataclass(slots=True)
class DeviceBackupOutcome:
    """How one device backup ended (what the store records and status shows)."""

    udid: str
    outcome: str
    started_at: datetime
    finished_at: datetime
    snapshot_id: str | None = None
    files: int = 0
    bytes: int = 0
    added_bytes: int = 0
    files_received: int = 0
    encrypted: bool | None = None
    camera_roll_files: int | None = None
    error: str = ""
    pruned: list[str] = field(default_factory=list)


def _utc_now() -> datetime:
    return datetime.now(UTC)


async def run_device_backup(
    lockdown: Any,
    folder: SnapshotFolder,
    udid: str,
    *,
    keep: int,
    clock: Callable[[], datetime] = _utc_now,
    on_progress: Callable[[float], None] | None = None,
) -> DeviceBackupOutcome:
    """Back up the phone behind ``lockdown`` into a new snapshot under ``folder``."""
    started = clock()
    working, link_mode = await asyncio.to_thread(folder.begin, udid)
    events = LinkEvents()
    outcome = DeviceBackupOutcome(
        udid=udid, outcome="failed", started_at=started, finished_at=started
    )
    log.info("device_backup_started", udid=udid, link_mode=link_mode)

    def progress(value: Any) -> None:
        if on_progress is not None and isinstance(value, int | float):
            on_progress(float(value))

    try:
        failure = await _receive(lockdown, working, events, progress)
    finally:
        await asyncio.to_thread(events.flusher.wait)
    if failure is not None:
        return _ended(outcome, failure[0], failure[1], clock)
    backup_folder = working / udid
    contents = await asyncio.to_thread(inspect_backup, backup_folder)
    if contents.problems:
        return _ended(outcome, "failed", "; ".join(contents.problems), clock)
    finished = clock()
    previous = folder.latest(udid)
    seen: set[tuple[int, int]] = set()
    if previous is not None:
        await asyncio.to_thread(tree_usage, previous.backup_folder, seen)
    added = await asyncio.to_thread(tree_usage, backup_folder, seen)
    summary = SnapshotSummary(
        udid=udid,
        snapshot_id=snapshot_id_for(finished),
        started_at=started.isoformat(),
        finished_at=finished.isoformat(),
        files=contents.stored_files,
        bytes=contents.stored_bytes,
        encrypted=contents.encrypted,
        camera_roll_files=-1 if contents.camera_roll_files is None else contents.camera_roll_files,
        files_received=events.files_received,
        bytes_received=events.bytes_received,
        added_bytes=added,
        link_mode=link_mode,
    )
    snapshot = await asyncio.to_thread(folder.complete, udid, summary, list(events.written))
    outcome.pruned = await asyncio.to_thread(folder.prune, udid, keep)
    outcome.outcome = "completed"
    outcome.finished_at = finished
    outcome.snapshot_id = snapshot.snapshot_id
    outcome.files = summary.files
    outcome.bytes = summary.bytes
    outcome.added_bytes = added
    outcome.files_received = events.files_received
    outcome.encrypted = contents.encrypted
    outcome.camera_roll_files = contents.camera_roll_files
    log.info(
        "device_backup_completed",
        udid=udid,
        snapshot=snapshot.snapshot_id,
        files=summary.files,
        bytes=summary.bytes,
        added_bytes=added,
        files_received=events.files_received,
        encrypted=contents.encrypted,
        pruned=len(outcome.pruned),
    )
    return outcome


async def _receive(
    lockdown: Any, working: Path, events: LinkEvents, progress: Callable[[Any], None]
) -> tuple[str, str] | None:
    """Let the phone send its backup into ``working``; (outcome, error) if it did not finish."""
    try:
        async with SnapshotBackupService(lockdown, events) as service:
            await service.backup(full=False, backup_directory=working, progress_callback=progress)
    except NotEnoughDiskSpaceError as error:
        return "disk_full", str(error)
    except ConnectionTerminatedError as error:
        return "unplugged", str(error) or "the connection dropped"
    except PyMobileDevice3Exception as error:
        code = _error_code(str(error))
        if code == ERROR_DEVICE_LOCKED:
            return "passcode_timeout", "the passcode was not entered"
        if code == ERROR_NOT_ENOUGH_SPACE:
            return "disk_full", str(error)
        return "failed", f"{type(error).__name__}: {error}"
    except (ConnectionError, EOFError, asyncio.IncompleteReadError) as error:
        return "unplugged", f"{type(error).__name__}: {error}"
    return None


def _ended(
    outcome: DeviceBackupOutcome, kind: str, error: str, clock: Callable[[], datetime]
) -> DeviceBackupOutcome:
    outcome.outcome = kind
    outcome.error = error
    outcome.finished_at = clock()
    log.warning("device_backup_ended", udid=outcome.udid, outcome=kind, error=error[:300])
    return outcome


def _error_code(text: str) -> int | None:
    """The ErrorCode in pymobiledevice3's "The device reported an error: {...}"."""
    match = _ERROR_CODE.search(text)
    return int(match.group(1)) if match else None
