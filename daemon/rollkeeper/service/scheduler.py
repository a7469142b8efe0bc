"""The backup service: turns attach/detach events into scheduled, retried backup runs.

APScheduler 3.x's ``AsyncIOScheduler`` holds one job per phone (id ``backup:<udid>``). An attach
schedules it after a debounce (tapping Trust re-plugs the phone), with ``max_instances=1`` and
``coalesce`` so a burst of events makes one run. A run that cannot start because the phone is
locked (also: in USB Restricted Mode, or not unlocked since it restarted) or its Trust dialog is
pending is retried every ``retry_initial_seconds`` while the phone stays attached; a dropped
connection or a stuck phone is retried with exponential backoff up to ``retry_max_seconds``;
"Don't Trust", and a phone that refuses even a fresh pairing, stop the retries until the phone is
plugged in again.
SQLite, not the job store, is the source of truth: nothing about jobs survives a restart, and
the attached phones are rediscovered from usbmuxd's Listen stream.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import structlog
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from rollkeeper.device.errors import (
    PhoneUnavailableError,
    TrustDeniedError,
    UsbmuxdUnavailableError,
)
from rollkeeper.device.events import AttachedPhone
from rollkeeper.device.session import PhoneInfo, SessionSettings
from rollkeeper.device_backup.coordinator import DeviceBackups
from rollkeeper.domain.archive_state import ARCHIVE_UNAVAILABLE
from rollkeeper.domain.filters import device_selected
from rollkeeper.domain.health import STATE_DISCONNECTED, unseen_phone_state
from rollkeeper.importer.job import BackupRun, BackupSettings, Progress, RunResult
from rollkeeper.service.archive_wait import ArchiveWaiter
from rollkeeper.service.phone_backup import back_up_phone
from rollkeeper.store import StateStore

log = structlog.get_logger("rollkeeper.service")

#: Runs with failed files are retried this many times while the phone stays attached.
INCOMPLETE_RETRIES = 3
#: States that end when the user does something on the phone (unlock it, tap Trust): retried
#: at ``retry_initial_seconds`` for as long as the phone stays attached.
WAITING_FOR_THE_USER = frozenset(
    {"waiting_for_unlock", "waiting_for_trust", "usb_restricted", "waiting_for_first_unlock"}
)


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    """What the service needs of the config; replaced as a whole on a reload."""

    backup: BackupSettings
    session: SessionSettings
    debounce_seconds: float = 2.0
    retry_initial_seconds: float = 5.0
    retry_max_seconds: float = 300.0
    #: An attached phone is backed up again this often (``schedule.attached_rescan_hours``).
    attached_rescan_hours: float = 6.0
    archive_recheck_seconds: float = 60.0
    include_devices: tuple[str, ...] = ()
    exclude_devices: tuple[str, ...] = ()


@dataclass(slots=True)
class _PhoneState:
    """What the service remembers about an attached phone (forgotten on detach)."""

    attached: AttachedPhone
    failures: int = 0
    incomplete_runs: int = 0
    trust_denied: bool = False
    #: Its last run found the archive unavailable: run again when the archive is back.
    waiting_for_archive: bool = False
    task: asyncio.Task[None] | None = None
    run: BackupRun | None = None
    finished: asyncio.Event = field(default_factory=asyncio.Event)


def job_id(udid: str) -> str:
    """The scheduler job id of a phone's backup."""
    return f"backup:{udid}"


def rescan_job_id(udid: str) -> str:
    """The scheduler job id of an attached phone's periodic re-scan."""
    return f"rescan:{udid}"


class BackupService:
    """Schedules and runs backups of attached phones."""

    def __init__(
        self,
        settings: ServiceSettings,
        store: StateStore,
        scheduler: AsyncIOScheduler,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_status: Callable[[str], None] | None = None,
        on_run_finished: Callable[[RunResult], Awaitable[None]] | None = None,
        alert: Callable[[str, str], Awaitable[None]] | None = None,
        device_backups: DeviceBackups | None = None,
    ) -> None:
        self._settings = settings
        self._store = store
        self._scheduler = scheduler
        self._clock = clock
        self._on_status = on_status
        self._on_run_finished = on_run_finished
        self._alert = alert
        #: Device backups (mobilebackup2) start after a complete import; None when unused.
        self.device_backups = device_backups
        self._phones: dict[str, _PhoneState] = {}
        self._stopping = False
        #: Set every time a run ends (tests and ``backup-now`` wait on it).
        self.run_finished = asyncio.Event()
        self.results: list[RunResult] = []
        #: Waits for an unavailable archive to come back (set by the composition root).
        self.archive_waiter: ArchiveWaiter | None = None
        #: The archive is unavailable and the user has been told (once per outage).
        self._archive_outage = False
        #: The run being reported is another failure of an outage already told.
        self.repeated_outage = False

    # -- settings --------------------------------------------------------------------------

    @property
    def settings(self) -> ServiceSettings:
        """The settings in force (the next run uses them)."""
        return self._settings

    def apply_settings(self, settings: ServiceSettings) -> None:
        """Use new settings from the next run on (a run in flight keeps its own)."""
        self._settings = settings
        log.info(
            "settings_applied",
            archive=str(settings.backup.archive_root),
            layout=settings.backup.layout,
        )

    # -- events ----------------------------------------------------------------------------

    async def on_attach(self, phone: AttachedPhone) -> None:
        """A phone appeared: remember it and schedule its backup after the debounce."""
        if self._stopping:
            return
        self._phones[phone.udid] = _PhoneState(attached=phone)
        self._store.record_device_seen(phone.udid, now=self._clock())
        self._store.set_device_state(phone.udid, "connected", "", self._clock())
        if self.device_backups is not None:
            self.device_backups.phone_attached(phone.udid)
        self._schedule(phone.udid, self._settings.debounce_seconds, reason="attached")
        self._schedule_rescans(phone.udid)

    async def on_detach(self, udid: str) -> None:
        """A phone went away: drop its pending job and stop its run (partials are kept)."""
        state = self._phones.pop(udid, None)
        for job in (job_id(udid), rescan_job_id(udid)):
            with contextlib.suppress(JobLookupError):
                self._scheduler.remove_job(job)
        if state is not None and state.task is not None and not state.task.done():
            state.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await state.task
        if self.device_backups is not None:
            await self.device_backups.phone_detached(udid)
        self._store.set_device_state(udid, "disconnected", "", self._clock())
        self._report_status()

    async def on_unseen(self, udid: str) -> None:
        """udev shows the phone and usbmuxd does not (Linux): say what the phone waits for.

        A phone never backed up here is most likely waiting for Trust; one backed up before
        most likely refuses USB data until unlocked. Told in ``status`` and once on the desktop.
        """
        if self._stopping or udid in self._phones:
            return
        known = self._store.device(udid)
        state, hint = unseen_phone_state(known is not None and known.last_complete_at is not None)
        self._store.record_device_seen(udid, now=self._clock())
        self._store.set_device_state(udid, state, hint, self._clock())
        log.warning("phone_unavailable", udid=udid, state=state, hint=hint, detail="unseen")
        if self._alert is not None:
            name = known.name if known is not None and known.name else "An iPhone"
            await self._alert(f"{name} is plugged in but not connected", hint)

    async def on_unseen_resolved(self, udid: str, how: str) -> None:
        """An unseen phone was shown by usbmuxd (its attach says the rest) or unplugged."""
        if how == "unplugged" and udid not in self._phones:
            self._store.set_device_state(udid, STATE_DISCONNECTED, "", self._clock())

    # -- scheduling ------------------------------------------------------------------------

    def _schedule(self, udid: str, delay_seconds: float, reason: str) -> None:
        run_date = datetime.now(UTC) + timedelta(seconds=max(0.0, delay_seconds))
        self._scheduler.add_job(
            self._backup_job,
            trigger="date",
            run_date=run_date,
            args=[udid],
            id=job_id(udid),
            name=f"back up {udid}",
            replace_existing=True,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
        log.info(
            "backup_scheduled", udid=udid, delay_seconds=round(delay_seconds, 3), reason=reason
        )

    def _schedule_rescans(self, udid: str) -> None:
        """While the phone stays attached, back it up again every ``attached_rescan_hours``
        (an interval job of its own, removed on detach)."""
        hours = self._settings.attached_rescan_hours
        self._scheduler.add_job(
            self._rescan_job,
            trigger="interval",
            seconds=hours * 3600,
            args=[udid],
            id=rescan_job_id(udid),
            name=f"re-scan attached {udid}",
            replace_existing=True,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )

    async def _rescan_job(self, udid: str) -> None:
        """The interval job: schedule a backup now unless one is running or already due."""
        state = self._phones.get(udid)
        if state is None or self._stopping or state.task is not None:
            return
        if self._scheduler.get_job(job_id(udid)) is not None:
            return
        self._schedule(udid, 0.0, reason="attached_rescan")

    def _retry_delay(self, state: _PhoneState, error: PhoneUnavailableError | None) -> float:
        settings = self._settings
        if error is not None and error.state in WAITING_FOR_THE_USER:
            # The user may act any moment: ask again at the short interval, not with backoff.
            return settings.retry_initial_seconds
        delay = settings.retry_initial_seconds * (2 ** max(0, state.failures - 1))
        return float(min(delay, settings.retry_max_seconds))

    # -- the job -----------------------------------------------------------------------------

    async def _backup_job(self, udid: str) -> None:
        """The scheduled job: back up one phone once, then decide about a retry."""
        state = self._phones.get(udid)
        if state is None or self._stopping or state.trust_denied:
            return
        state.task = asyncio.current_task()
        state.finished.clear()
        if self.device_backups is not None:
            await self.device_backups.before_import(udid)
        try:
            await self._backup_once(udid, state)
        finally:
            state.task = None
            state.run = None
            state.finished.set()
            self._report_status()

    def _certainly_excluded(self, udid: str) -> bool:
        """Excluded by UDID, or by the name the phone had when last seen: then not even a
        session is opened (an untrusted excluded phone must not show the Trust dialog)."""
        settings = self._settings
        known = self._store.device(udid)
        name = known.name if known is not None else ""
        if udid in settings.exclude_devices or (name and name in settings.exclude_devices):
            return True
        if settings.include_devices and name:
            return not device_selected(udid, name, settings.include_devices, ())
        return False

    async def _backup_once(self, udid: str, state: _PhoneState) -> None:
        settings = self._settings
        if self._certainly_excluded(udid):
            log.info("device_not_selected", udid=udid)
            self._store.set_device_state(udid, "excluded", "excluded by the config")
            return

        def admit(info: PhoneInfo) -> str | None:
            return self._admit(udid, info)

        def started(run: BackupRun, info: PhoneInfo) -> None:
            state.run = run
            self._report_status(f"backing up {info.name}")

        try:
            turn = await back_up_phone(
                udid,
                self._store,
                settings.session,
                settings.backup,
                admit=admit,
                clock=self._clock,
                on_progress=self._progress,
                on_run_created=started,
            )
        except TrustDeniedError as error:
            state.trust_denied = True
            self._phone_unavailable(udid, error)
            return
        except PhoneUnavailableError as error:
            state.failures += 1
            self._phone_unavailable(udid, error)
            if error.retry and udid in self._phones and not self._stopping:
                self._schedule(udid, self._retry_delay(state, error), reason=error.state)
            return
        except UsbmuxdUnavailableError as error:
            log.error("usbmuxd_unreachable", udid=udid, address=error.address)
            return
        if turn.result is not None:
            await self._after_run(udid, state, turn.result)

    def _admit(self, udid: str, info: PhoneInfo) -> str | None:
        """Once the session says who the phone is: ``excluded`` when the config leaves it out
        by name, else None (back it up)."""
        settings = self._settings
        # Seen first: the name is what keeps an excluded phone from even a session next
        # time (an untrusted excluded phone must not show the Trust dialog again).
        self._store.record_device_seen(
            udid,
            name=info.name,
            product_type=info.product_type,
            product_version=info.product_version,
            now=self._clock(),
        )
        if not device_selected(udid, info.name, settings.include_devices, settings.exclude_devices):
            log.info("device_not_selected", udid=udid, device=info.name)
            self._store.set_device_state(udid, "excluded", "excluded by the config")
            return "excluded"
        return None

    async def _after_run(self, udid: str, state: _PhoneState, result: RunResult) -> None:
        """A run ended: tell whoever listens, and retry an incomplete one (a few times) while
        the phone stays attached."""
        state.failures = 0
        self._note_archive_outage(state, result)
        self.results.append(result)
        self.run_finished.set()
        if self._on_run_finished is not None:
            await self._on_run_finished(result)
        if self.device_backups is not None and udid in self._phones and not self._stopping:
            self.device_backups.import_finished(
                udid, result.outcome == "complete", self._settings.session
            )
        if result.outcome == "incomplete" and udid in self._phones and not self._stopping:
            state.incomplete_runs += 1
            if state.incomplete_runs <= INCOMPLETE_RETRIES:
                delay = min(
                    self._settings.retry_initial_seconds * 2**state.incomplete_runs,
                    self._settings.retry_max_seconds,
                )
                self._schedule(udid, delay, reason="incomplete")

    def _note_archive_outage(self, state: _PhoneState, result: RunResult) -> None:
        """A run that found the archive unavailable waits for it (docs/archive-truth.md)."""
        if result.outcome == "failed" and result.error.startswith(ARCHIVE_UNAVAILABLE + ":"):
            self.repeated_outage = self._archive_outage
            self._archive_outage = True
            state.waiting_for_archive = True
            if self.archive_waiter is not None and not self._stopping:
                self.archive_waiter.begin()
            return
        self.repeated_outage = False
        if result.outcome != "interrupted":
            self._archive_outage = False

    def archive_returned(self) -> None:
        """The archive is there again: back up every attached phone that waited for it."""
        for udid, state in self._phones.items():
            if state.waiting_for_archive and not self._stopping:
                state.waiting_for_archive = False
                self._schedule(udid, self._settings.debounce_seconds, reason="archive_available")

    def _phone_unavailable(self, udid: str, error: PhoneUnavailableError) -> None:
        # State first, then the log line: whoever reacts to the line finds the state written.
        self._store.set_device_state(udid, error.state, error.hint, self._clock())
        log.warning(
            "phone_unavailable",
            udid=udid,
            state=error.state,
            hint=error.hint,
            detail=str(error),
        )

    def _progress(self, progress: Progress) -> None:
        self._report_status(
            f"backing up {progress.device_name}: {progress.files_done}/{progress.files_total}"
        )

    def _report_status(self, text: str | None = None) -> None:
        if self._on_status is None:
            return
        if text is None:
            busy = [udid for udid, state in self._phones.items() if state.task is not None]
            text = f"backing up {len(busy)} phone(s)" if busy else "idle"
        with contextlib.suppress(Exception):
            self._on_status(text)

    # -- shutdown ----------------------------------------------------------------------------

    def busy(self) -> bool:
        """True while any run is in flight."""
        return any(state.task is not None for state in self._phones.values())

    async def stop(self, grace_seconds: float) -> None:
        """Start no new run; let runs end after their file in flight, then cancel the rest.

        A cancelled transfer keeps its ``.partial`` (a prefix of the phone file) for the next
        run, and nothing is ever left half-written under a final name.
        """
        self._stopping = True
        if self.archive_waiter is not None:
            await self.archive_waiter.stop()
        self._remove_phone_jobs()
        if self.device_backups is not None:
            await self.device_backups.stop_all()
        running = [state for state in self._phones.values() if state.task is not None]
        for state in running:
            if state.run is not None:
                state.run.request_stop()
        tasks = [state.task for state in running if state.task is not None]
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=grace_seconds)
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if pending:
            log.warning("runs_cancelled_at_shutdown", count=len(pending))

    def _remove_phone_jobs(self) -> None:
        """Take every phone's backup and re-scan jobs off the scheduler (shutting down)."""
        for udid in list(self._phones):
            for job in (job_id(udid), rescan_job_id(udid)):
                with contextlib.suppress(JobLookupError):
                    self._scheduler.remove_job(job)

    def cancel_now(self) -> None:
        """Cancel every run at once (a second interrupt)."""
        self._stopping = True
        for state in self._phones.values():
            if state.task is not None:
                state.task.cancel()
