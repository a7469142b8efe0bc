"""Every part of the running service, built from one config and wired together, none started.

:class:`~rollkeeper.service.runtime.ServiceRuntime` only starts and stops what
:func:`build_service_parts` hands it, in order; it builds nothing itself. The libraries behind
the parts (APScheduler, pymobiledevice3, pyudev, watchdog) are imported inside the functions, so
that importing the composition root stays cheap for the commands that only read.
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
from rollkeeper.bootstrap.state import open_state_for_writing

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
    from rollkeeper.service.health import StaleNoticeLedger
    from rollkeeper.service.scheduler import BackupService
    from rollkeeper.store import StateStore


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
    from rollkeeper.service.health import StaleNoticeLedger, ledger_path
    from rollkeeper.service.scheduler import BackupService

    environment = os.environ if environ is None else environ
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
