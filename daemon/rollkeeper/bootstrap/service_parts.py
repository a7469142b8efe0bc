"""Every part of the running service, built from one config and wired together, none started.

:class:`~rollkeeper.service.runtime.ServiceRuntime` only starts and stops what
:func:`build_service_parts` hands it, in order; it builds nothing itself. The libraries behind
the parts (APScheduler, pymobiledevice3, pyudev, watchdog, aiohttp) are imported inside the
functions, so that importing the composition root stays cheap for the commands that only read.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from rollkeeper.bootstrap.settings import (
    device_backup_settings,
    service_settings,
    usbmux_address,
)
from rollkeeper.bootstrap.state import (
    open_state_for_writing,
    open_state_read_only,
    thumbnail_cache_path,
)

_Event = TypeVar("_Event")

if TYPE_CHECKING:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from rollkeeper.archive.scrub import ArchiveScrubber
    from rollkeeper.config import Config, ConfigError
    from rollkeeper.config.watch import ConfigWatcher
    from rollkeeper.device.events import UsbmuxEvents
    from rollkeeper.device.udev import UsbmuxdGuard
    from rollkeeper.device.unseen_phones import UnseenPhoneWatch
    from rollkeeper.host.sd_notify import ServiceNotifier
    from rollkeeper.importer.job import RunResult
    from rollkeeper.notify.notifier import Notifier
    from rollkeeper.offsite.job import OffsiteJob
    from rollkeeper.offsite.schedule import OffsiteSchedule
    from rollkeeper.service.archive_wait import ArchiveWaiter
    from rollkeeper.service.health import StaleNoticeLedger
    from rollkeeper.service.scheduler import BackupService
    from rollkeeper.store import StateStore
    from rollkeeper.store.offsite_runs import OffsiteRunRecord
    from rollkeeper.store.records import ArchiveEntry
    from rollkeeper.web.server import WebServer


@dataclass(frozen=True, slots=True)
class ServiceHooks:
    """What the runtime wants to hear from the parts (its own methods, wired in here)."""

    #: One line for systemd's STATUS= ("backing up Ann's iPhone: 12/40").
    on_status: Callable[[str], None]
    #: A backup run ended (notifications, hooks).
    on_run_finished: Callable[[RunResult], Awaitable[None]]
    #: The config file changed and loads (called on the watcher's thread).
    on_config_changed: Callable[[Config], None]
    #: The config file changed and is broken (called on the watcher's thread).
    on_config_broken: Callable[[ConfigError], None]
    #: The config in force now (the offsite copies read it at each copy); None: the config the
    #: parts were built with.
    current_config: Callable[[], Config] | None = None


@dataclass(frozen=True, slots=True)
class ServiceParts:
    """The adapters of one running service, wired to each other and to the runtime's hooks."""

    store: StateStore
    scheduler: AsyncIOScheduler
    backups: BackupService
    scrubber: ArchiveScrubber
    alerts: Notifier
    usbmuxd_guard: UsbmuxdGuard
    phone_events: UsbmuxEvents
    #: Linux: phones udev sees on USB that usbmuxd does not show ("unlock it and tap Trust").
    unseen_phones: UnseenPhoneWatch
    #: Which stale stretch of which phone was announced (``<state db>.notices.json``).
    stale_notices: StaleNoticeLedger
    #: None when the service runs on defaults (no file to watch).
    config_watcher: ConfigWatcher | None
    #: Offsite copies after complete backups (does nothing while ``[offsite]`` is off).
    offsite: OffsiteSchedule
    #: The status page; None unless ``[web] enabled = true``.
    web: WebServer | None = None


def systemd_notifier(environ: Mapping[str, str] | None = None) -> ServiceNotifier:
    """sd_notify to systemd (READY=1, STATUS=, WATCHDOG=1); a no-op outside a notify unit."""
    from rollkeeper.host.sd_notify import ServiceNotifier

    return ServiceNotifier.from_environment(os.environ if environ is None else environ)


def notifier(config: Config, environ: Mapping[str, str] | None = None) -> Notifier:
    """Desktop notifications, hooks and health pings as the config's ``[notifications]`` says;
    hooks inherit ``environ``."""
    from rollkeeper.notify.notifier import Notifier

    return Notifier(config.notifications, environ=os.environ if environ is None else environ)


def scrubber(config: Config, store: StateStore) -> ArchiveScrubber:
    """The archive scrub with the config's budget; its worker thread writes through a second
    store on the same database (WAL lets the two work side by side)."""
    from rollkeeper.archive.scrub import ArchiveScrubber

    schedule = config.schedule
    return ArchiveScrubber(
        store,
        Path(config.archive.path),
        bytes_per_run=schedule.scrub_bytes_per_run,
        rotation_weeks=schedule.scrub_rotation_weeks,
        open_worker_store=functools.partial(open_state_for_writing, store.path),
    )


def offsite_sources(config: Config) -> list[Path]:
    """What the offsite engine copies besides the archive: the device-backup snapshots, when
    device backups are on and their folder exists (restic only: rclone copies one tree)."""
    from rollkeeper.bootstrap.settings import device_backup_settings

    if not config.device_backup.enabled or config.offsite.engine != "restic":
        return []
    try:
        root = device_backup_settings(config).root
    except ValueError:
        return []
    return [root] if root.is_dir() else []


def offsite_job(
    config: Config,
    store: StateStore,
    alerts: Notifier | None,
    environ: Mapping[str, str] | None = None,
) -> OffsiteJob | None:
    """The offsite copy job for the config's ``[offsite]`` section (None when it is off), on
    the archive, alerting through ``alerts`` when a run fails."""
    from rollkeeper.bootstrap.archive import archive_availability
    from rollkeeper.bootstrap.settings import offsite_plan
    from rollkeeper.offsite.job import OffsiteJob

    plan = offsite_plan(config)
    if plan is None:
        return None
    on_failure = None
    if alerts is not None:

        async def on_failure(record: OffsiteRunRecord) -> None:
            await alerts.offsite_failed(
                record.kind, record.engine, record.id, record.outcome, record.error
            )

    return OffsiteJob(
        plan,
        store,
        Path(config.archive.path),
        sources=offsite_sources(config),
        # The archive identity check (docs/archive-truth.md): marker, id, file system.
        archive_check=archive_availability(store),
        on_failure=on_failure,
        environ=os.environ if environ is None else environ,
    )


def web_server(
    config: Config, config_path: Path | None, environ: Mapping[str, str] | None = None
) -> WebServer | None:
    """The status page as ``[web]`` says (None when it is off). It serves the document that
    ``status --json`` makes, gathered the same way (the same config file and environment), and
    reads the state through read-only stores of its own, never the service's connection."""
    if not config.web.enabled:
        return None
    from datetime import UTC, datetime

    from rollkeeper.status.document import status_as_dict
    from rollkeeper.status.gather import gather_status
    from rollkeeper.store.reports import Reports
    from rollkeeper.web.page_data import page_document
    from rollkeeper.web.server import WebServer
    from rollkeeper.web.thumbnails import ThumbnailMaker

    environment = dict(os.environ if environ is None else environ)
    config_argument = None if config_path is None else str(config_path)
    state_path = Path(config.state.path)

    def status_document() -> dict[str, Any]:
        return status_as_dict(gather_status(config_argument, environment, datetime.now(UTC)))

    def find_entry(archive_id: str) -> ArchiveEntry | None:
        if not state_path.exists():
            return None
        store = open_state_read_only(state_path)
        try:
            return Reports.for_store(store).archive_entry_by_hash(archive_id)
        finally:
            store.close()

    return WebServer(
        config.web,
        status_document=status_document,
        page_document=functools.partial(page_document, state_path),
        find_entry=find_entry,
        thumbnails=ThumbnailMaker(thumbnail_cache_path(state_path)),
        archive_root=Path(config.archive.path),
    )


def build_service_parts(
    config: Config,
    store: StateStore,
    loop: asyncio.AbstractEventLoop,
    hooks: ServiceHooks,
    *,
    config_path: Path | None,
    environ: Mapping[str, str] | None = None,
) -> ServiceParts:
    """Build every part of the service on ``loop``, with ``store`` (opened under the instance
    lock). Nothing is started: no job scheduled, no socket opened, no thread running."""
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from rollkeeper.config.watch import ConfigWatcher
    from rollkeeper.device.udev import UsbmuxdGuard
    from rollkeeper.device_backup.coordinator import DeviceBackups
    from rollkeeper.offsite.schedule import OffsiteSchedule
    from rollkeeper.service.health import StaleNoticeLedger, ledger_path
    from rollkeeper.service.scheduler import BackupService

    environment = os.environ if environ is None else environ
    current_config = hooks.current_config or (lambda: config)
    # The scheduler's zone is the host's: the scrub's crontab line is in local time.
    scheduler = AsyncIOScheduler(event_loop=loop)
    alerts = notifier(config, environment)
    backups = BackupService(
        service_settings(config),
        store,
        scheduler,
        on_status=hooks.on_status,
        on_run_finished=hooks.on_run_finished,
        alert=alerts.alert,
        device_backups=DeviceBackups(device_backup_settings(config), store, alert=alerts.alert),
    )
    backups.archive_waiter = _archive_waiter(backups, store)
    phone_events, unseen = _phone_events(config, backups, loop)
    watcher = None
    if config_path is not None:
        watcher = ConfigWatcher(
            config_path, hooks.on_config_changed, hooks.on_config_broken, environ=environment
        )
    return ServiceParts(
        store=store,
        scheduler=scheduler,
        backups=backups,
        scrubber=scrubber(config, store),
        alerts=alerts,
        usbmuxd_guard=UsbmuxdGuard(
            usbmux_address(config),
            alerts.alert_from_thread(loop),
            on_interface=functools.partial(_to_loop, loop, unseen.interface_event),
        ),
        phone_events=phone_events,
        unseen_phones=unseen,
        stale_notices=StaleNoticeLedger(ledger_path(store.path)),
        config_watcher=watcher,
        offsite=OffsiteSchedule(
            lambda: offsite_job(current_config(), store, alerts, environment), store, scheduler
        ),
        web=web_server(config, config_path, environment),
    )


def _archive_waiter(backups: BackupService, store: StateStore) -> ArchiveWaiter:
    """The wait for an unavailable archive: the identity check of the archive in force."""
    from rollkeeper.archive.identity import ArchiveGuard, may_create_implicitly, truth_knows_files
    from rollkeeper.domain.archive_state import ArchiveProblem
    from rollkeeper.service.archive_wait import ArchiveWaiter

    async def is_available() -> bool:
        root = backups.settings.backup.archive_root
        truth = store.archive_truth
        recorded, known = truth.recorded_identity(), truth_knows_files(truth)
        state = await asyncio.to_thread(ArchiveGuard(root).look, recorded, known)
        if state.problem is ArchiveProblem.NEW:
            return bool(state.marker_id) or may_create_implicitly(root)
        return state.available or state.problem is ArchiveProblem.UPGRADE

    return ArchiveWaiter(
        is_available,
        backups.archive_returned,
        recheck_seconds=lambda: backups.settings.archive_recheck_seconds,
    )


def _phone_events(
    config: Config, backups: BackupService, loop: asyncio.AbstractEventLoop
) -> tuple[UsbmuxEvents, UnseenPhoneWatch]:
    """usbmuxd's Listen stream for the backups, and the watch of phones udev sees that usbmuxd
    does not show (it hears usbmuxd's attaches and detaches too)."""
    from rollkeeper.device.events import AttachedPhone, UsbmuxEvents
    from rollkeeper.device.unseen_phones import UnseenPhoneWatch

    # The watch calls back synchronously on the loop; the service's reactions are coroutines.
    running: set[asyncio.Task[None]] = set()

    def start(coroutine: Coroutine[Any, Any, None]) -> None:
        task = loop.create_task(coroutine)
        running.add(task)
        task.add_done_callback(running.discard)

    def unseen(udid: str) -> None:
        start(backups.on_unseen(udid))

    def resolved(udid: str, how: str) -> None:
        start(backups.on_unseen_resolved(udid, how))

    def attached_udids() -> list[str]:
        return list(events.attached)

    watch = UnseenPhoneWatch(
        attached=attached_udids,
        listening=lambda: events.listening.is_set(),
        on_unseen=unseen,
        on_resolved=resolved,
        grace_seconds=config.device.unseen_phone_seconds,
    )

    async def on_attach(phone: AttachedPhone) -> None:
        watch.usbmuxd_attached(phone.udid)
        await backups.on_attach(phone)

    async def on_detach(udid: str) -> None:
        await backups.on_detach(udid)
        watch.usbmuxd_detached(udid)

    events = UsbmuxEvents(
        usbmux_address(config),
        on_attach,
        on_detach,
        connection_types=frozenset(config.device.connection_types),
    )
    return events, watch


def _to_loop(
    loop: asyncio.AbstractEventLoop, handler: Callable[[_Event], None], event: _Event
) -> None:
    """Hand an event from another thread (udev's) to ``handler`` on ``loop``."""
    loop.call_soon_threadsafe(handler, event)
