"""The service's device backups: when one starts, what it tells the user, what it records.

The scheduler calls in at four moments (:class:`DeviceBackupHook`): a phone was plugged in, a
photo import of it ended, an import is about to start, the phone went away. After a complete
import the coordinator applies the attended rule (:mod:`rollkeeper.domain.device_backup_policy`)
and, if it allows, starts the device backup as a task of its own, so the import's job ends at
once and never waits for it. An import about to start over the same phone stops a running device
backup first (the two never run over one phone at once; the snapshot is untouched and the next
plug-in makes one). On iOS 16.1+ the user is told at once, once, to enter the passcode; an
unanswered prompt (error 208) ends the attempt without a retry until the next plug-in.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import structlog

from rollkeeper.device.errors import PhoneUnavailableError, UsbmuxdUnavailableError
from rollkeeper.device.session import SessionSettings, open_session
from rollkeeper.device_backup.runner import DeviceBackupOutcome, run_device_backup
from rollkeeper.device_backup.snapshots import SnapshotFolder
from rollkeeper.domain.device_backup_policy import (
    COMMAND,
    PLUG_IN,
    DeviceBackupFacts,
    asks_for_passcode,
    refusal,
)
from rollkeeper.store import StateStore

log = structlog.get_logger("rollkeeper.device_backup")

PASSCODE_TITLE = "Enter your passcode on the iPhone"
Alert = Callable[[str, str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class DeviceBackupSettings:
    """What device backups take from the config (replaced whole on a reload)."""

    enabled: bool
    root: Path
    every_hours: float
    keep: int


def _utc_now() -> datetime:
    return datetime.now(UTC)


class DeviceBackups:
    """Starts, records and stops the device backups of the service's phones."""

    def __init__(
        self,
        settings: DeviceBackupSettings,
        store: StateStore,
        alert: Alert | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.settings = settings
        self._store = store
        self._alert = alert
        self._clock = clock
        self._tasks: dict[str, asyncio.Task[DeviceBackupOutcome | None]] = {}
        self._tried: set[str] = set()
        #: Every outcome, in order (tests and the command wait on ``finished``).
        self.outcomes: list[DeviceBackupOutcome] = []
        self.finished = asyncio.Event()
        # An attempt still "running" belongs to a process that died (only one holds the lock).
        store.device_backup_repository.abandon_running(clock())

    def apply_settings(self, settings: DeviceBackupSettings) -> None:
        """Use new settings from the next device backup on."""
        self.settings = settings

    # -- the scheduler's hook ----------------------------------------------------------------

    def phone_attached(self, udid: str) -> None:
        """A plug-in: the phone may be asked once more (the user is there again)."""
        self._tried.discard(udid)

    async def phone_detached(self, udid: str) -> None:
        """The phone went away: its device backup (if any) ends; the snapshot is untouched."""
        await self._stop(udid)

    async def before_import(self, udid: str) -> None:
        """An import of the phone starts: it never waits, so a device backup gives way."""
        if self.running(udid):
            log.info("device_backup_preempted", udid=udid)
            await self._stop(udid)

    def import_finished(self, udid: str, complete: bool, session: SessionSettings) -> None:
        """A photo import ended: start the device backup if the attended rule allows."""
        if self.running(udid):
            return
        last = self._store.device_backup_repository.last_completed(udid)
        facts = DeviceBackupFacts(
            enabled=self.settings.enabled,
            trigger=PLUG_IN,
            now=self._clock(),
            every_hours=self.settings.every_hours,
            last_completed_at=None if last is None else last.finished_at,
            tried_since_plug_in=udid in self._tried,
            import_complete=complete,
        )
        reason = refusal(facts)
        if reason is not None:
            if reason != "disabled":
                log.info("device_backup_not_started", udid=udid, reason=reason)
            return
        self._tried.add(udid)
        self._tasks[udid] = asyncio.create_task(
            self.back_up(udid, session, trigger=PLUG_IN), name=f"device-backup:{udid}"
        )

    def running(self, udid: str) -> bool:
        """A device backup of this phone is in flight."""
        task = self._tasks.get(udid)
        return task is not None and not task.done()

    async def stop_all(self) -> None:
        """Shutdown: end every device backup (working copies are discarded by the next one)."""
        for udid in list(self._tasks):
            await self._stop(udid)

    async def _stop(self, udid: str) -> None:
        task = self._tasks.pop(udid, None)
        if task is None or task.done():
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    # -- one device backup -------------------------------------------------------------------

    async def back_up(
        self,
        udid: str,
        session_settings: SessionSettings,
        *,
        trigger: str = COMMAND,
        on_progress: Callable[[float], None] | None = None,
    ) -> DeviceBackupOutcome | None:
        """Open a session and make one device backup; None if the phone could not be reached."""
        repository = self._store.device_backup_repository
        backup_id: int | None = None
        outcome: DeviceBackupOutcome | None = None
        try:
            async with open_session(udid, session_settings) as session:
                info = session.info
                self._store.record_device_seen(
                    udid,
                    name=info.name,
                    product_type=info.product_type,
                    product_version=info.product_version,
                    now=self._clock(),
                )
                backup_id = repository.start(udid, trigger, self._clock())
                if asks_for_passcode(info.product_version):
                    await self._ask_for_passcode(udid, info.name)
                folder = SnapshotFolder(self.settings.root)
                outcome = await run_device_backup(
                    session.lockdown,
                    folder,
                    udid,
                    keep=self.settings.keep,
                    clock=self._clock,
                    on_progress=on_progress,
                )
                # Recorded before the session closes: an unplug while it closes must not turn a
                # snapshot that is complete on disk into an "unplugged" row (the next plug-in
                # would then make another one within every_hours). No await lies between the
                # backup's return and this write, so a cancellation cannot land between them.
                self._record(backup_id, outcome)
        except (PhoneUnavailableError, UsbmuxdUnavailableError) as error:
            log.info("device_backup_skipped", udid=udid, reason=type(error).__name__)
            if outcome is not None:
                return self._finished(udid, outcome)
            if backup_id is not None:
                repository.finish(backup_id, "unplugged", now=self._clock(), error=str(error))
            return None
        except asyncio.CancelledError:
            if outcome is not None:
                # The snapshot was made and recorded; only closing the session was cut short.
                self._finished(udid, outcome)
                raise
            log.warning("device_backup_ended", udid=udid, outcome="unplugged", error="stopped")
            if backup_id is not None:
                repository.finish(
                    backup_id,
                    "unplugged",
                    now=self._clock(),
                    error="stopped before it finished (unplugged, or a photo import started)",
                )
            raise
        assert outcome is not None
        return self._finished(udid, outcome)

    def _finished(self, udid: str, outcome: DeviceBackupOutcome) -> DeviceBackupOutcome:
        if outcome.outcome == "passcode_timeout":
            # One notification was sent when the prompt showed; none now, and no retry.
            log.warning("device_backup_passcode_timeout", udid=udid)
        self.outcomes.append(outcome)
        self.finished.set()
        return outcome

    async def _ask_for_passcode(self, udid: str, name: str) -> None:
        body = f"to start the device backup of {name or udid}"
        log.warning("device_backup_passcode_needed", udid=udid)
        if self._alert is not None:
            with contextlib.suppress(Exception):
                await self._alert(PASSCODE_TITLE, body)

    def _record(self, backup_id: int, outcome: DeviceBackupOutcome) -> None:
        self._store.device_backup_repository.finish(
            backup_id,
            outcome.outcome,
            now=outcome.finished_at,
            snapshot_id=outcome.snapshot_id,
            files=outcome.files,
            size=outcome.bytes,
            added_bytes=outcome.added_bytes,
            files_received=outcome.files_received,
            encrypted=outcome.encrypted,
            camera_roll_files=outcome.camera_roll_files,
            error=outcome.error,
        )
