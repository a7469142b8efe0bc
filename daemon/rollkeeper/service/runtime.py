"""The service's life: start in order, run until a signal, stop in reverse order, exit 0.

It builds nothing itself: the composition root
(:func:`rollkeeper.bootstrap.build_service_parts`) hands it every part, wired. Start: private
umask, the single-instance lock, the state database, the scheduler, the backup service,
usbmuxd's Listen stream, the config watcher, udev (Linux), the status page (when ``[web]``
enables it). READY=1 goes to systemd once the first attempt to listen for phones has been
made. SIGTERM or SIGINT: STOPPING=1, no new runs, the file in flight may finish within
``stop_grace_seconds``, then everything closes and the process exits 0. A second SIGINT
cancels at once (a cancelled copy keeps its ``.partial``; no half file ever has a final
name). SIGHUP reloads the config.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

import structlog

from rollkeeper import bootstrap
from rollkeeper.archive.scrub import ScrubReport, schedule_scrub
from rollkeeper.bootstrap import ServiceHooks, ServiceParts
from rollkeeper.config import Config, ConfigError, load_config
from rollkeeper.config.watch import ConfigWatcher
from rollkeeper.device.events import describe_usbmux_address
from rollkeeper.domain.filters import device_selected
from rollkeeper.host.logs import configure_logging
from rollkeeper.host.permissions import set_private_umask, write_private_file
from rollkeeper.host.single_instance import AlreadyRunningError
from rollkeeper.importer.job import RunResult
from rollkeeper.notify.notifier import RunNotice
from rollkeeper.service.health import add_staleness_job
from rollkeeper.service.loop_errors import install_loop_error_handler

log = structlog.get_logger("rollkeeper.runtime")

#: How long a file in flight may take to finish after SIGTERM before it is cancelled.
STOP_GRACE_SECONDS = 10.0


class ServiceRuntime:
    """One running service; :meth:`run` returns the process exit code."""

    def __init__(
        self,
        config: Config,
        config_path: Path | None,
        environ: Mapping[str, str] | None = None,
        stop_grace_seconds: float = STOP_GRACE_SECONDS,
    ) -> None:
        self._config = config
        self._config_path = config_path
        self._environ = os.environ if environ is None else environ
        self._stop_grace_seconds = stop_grace_seconds
        self._stop = asyncio.Event()
        self._interrupts = 0
        self._notifier = bootstrap.systemd_notifier(self._environ)
        self._parts: ServiceParts | None = None
        self._watcher: ConfigWatcher | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._run_listeners: list[Callable[[RunResult], Awaitable[None]]] = []
        self._scrub_listeners: list[Callable[[ScrubReport], Awaitable[None]]] = []

    @property
    def _running_parts(self) -> ServiceParts:
        """The parts of the service; signals, reloads and callbacks only come once they exist."""
        if self._parts is None:
            raise RuntimeError("the service's parts are not built yet")
        return self._parts

    # -- signals ---------------------------------------------------------------------------

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.add_signal_handler(signal.SIGTERM, self._on_stop_signal, "SIGTERM")
        loop.add_signal_handler(signal.SIGINT, self._on_stop_signal, "SIGINT")
        loop.add_signal_handler(signal.SIGHUP, self._on_reload_signal)

    def _on_stop_signal(self, name: str) -> None:
        self._interrupts += 1
        if self._interrupts == 1:
            log.info("stop_requested", signal=name)
            self._stop.set()
            return
        log.warning("stop_now_requested", signal=name)
        self._running_parts.backups.cancel_now()

    def _on_reload_signal(self) -> None:
        log.info("reload_requested", signal="SIGHUP")
        self._notifier.reloading()
        if self._watcher is not None:
            self._watcher.request_reload()
        self._notifier.status(self._idle_status())
        self._notifier.send("READY=1")

    # -- config reload ---------------------------------------------------------------------

    def _config_changed(self, config: Config) -> None:
        """Called on the watcher's thread: hand the new config to the loop."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._apply_config, config)

    def _config_broken(self, error: ConfigError) -> None:
        log.error(
            "config_invalid",
            path=str(self._config_path),
            problems=[str(problem) for problem in error.problems],
            action="keeping the running config",
        )

    def _apply_config(self, config: Config) -> None:
        old = self._config
        self._config = config
        with contextlib.suppress(ValueError):
            configure_logging(config.logging.level, config.logging.format)
        parts = self._running_parts
        parts.backups.apply_settings(bootstrap.service_settings(config))
        if parts.backups.device_backups is not None:
            with contextlib.suppress(ValueError):
                parts.backups.device_backups.apply_settings(
                    bootstrap.device_backup_settings(config)
                )
        self._apply_scrub_settings(parts, config)
        parts.alerts.update_settings(config.notifications)
        if old.device.usbmux_address != config.device.usbmux_address:
            log.warning("restart_needed", key="device.usbmux_address")
        if old.state.path != config.state.path:
            log.warning("restart_needed", key="state.path")
        if parts.web is not None:
            parts.web.apply_settings(config.web, Path(config.archive.path))
        elif config.web.enabled:
            log.warning("restart_needed", key="web.enabled")
        log.info("config_reloaded", path=str(self._config_path))

    def _device_selected(self, udid: str, name: str) -> bool:
        """Whether the config in force backs this phone up (stale notices skip the others)."""
        filters = self._config.filters
        return device_selected(udid, name, filters.include_devices, filters.exclude_devices)

    def _apply_scrub_settings(self, parts: ServiceParts, config: Config) -> None:
        """A new scrub schedule or budget applies from the next scrub run."""
        schedule = config.schedule
        parts.scrubber.archive_root = Path(config.archive.path)
        parts.scrubber.bytes_per_run = schedule.scrub_bytes_per_run
        parts.scrubber.rotation_weeks = schedule.scrub_rotation_weeks
        try:
            schedule_scrub(parts.scheduler, parts.scrubber, schedule.scrub_cron, self._scrubbed)
        except ValueError as error:
            log.error("scrub_schedule_invalid", cron=schedule.scrub_cron, error=str(error))

    async def _scrubbed(self, report: ScrubReport) -> None:
        """A scrub found something: keep the report for ``status`` and tell the user."""
        findings = report.as_dict()
        path = bootstrap.scrub_report_path(self._config)
        with contextlib.suppress(OSError):
            write_private_file(path, json.dumps(findings, default=str, indent=2).encode())
        log.error(
            "scrub_findings",
            report_path=str(path),
            **{key: value for key, value in findings.items() if isinstance(value, int | str)},
        )
        await self._running_parts.alerts.alert(
            "rollkeeper: archive check found problems",
            f"The scheduled check of the archive found damaged or missing files; see {path} "
            "and run `rollkeeper verify`.",
        )
        for listener in self._scrub_listeners:
            with contextlib.suppress(Exception):
                await listener(report)

    # -- main ------------------------------------------------------------------------------

    def _idle_status(self) -> str:
        if self._parts is not None and self._parts.backups.busy():
            return "backing up"
        return "idle, waiting for an iPhone"

    async def run(self) -> int:
        """Run the service until stopped; returns the exit code."""
        set_private_umask()
        config = self._config
        try:
            lock = bootstrap.acquire_instance_lock(config)
        except AlreadyRunningError as error:
            log.error("already_running", detail=str(error))
            print(f"rollkeeper: {error}", file=sys.stderr)
            return 1
        self._loop = asyncio.get_running_loop()
        install_loop_error_handler(self._loop)
        store = bootstrap.open_state(config)
        parts: ServiceParts | None = None
        events_task: asyncio.Task[None] | None = None
        guard_started = False
        web_started = False
        try:
            parts = bootstrap.build_service_parts(
                config,
                store,
                self._loop,
                ServiceHooks(
                    on_status=self._notifier.status,
                    on_run_finished=self._run_finished,
                    on_config_changed=self._config_changed,
                    on_config_broken=self._config_broken,
                    current_config=lambda: self._config,
                ),
                config_path=self._config_path,
                environ=self._environ,
            )
            self._parts = parts
            interrupted = store.close_unfinished_runs()
            if interrupted:
                log.warning("previous_runs_interrupted", count=interrupted)
            store.mark_all_devices_disconnected()
            parts.scheduler.start()
            parts.offsite.start()
            schedule_scrub(
                parts.scheduler, parts.scrubber, config.schedule.scrub_cron, self._scrubbed
            )
            add_staleness_job(
                parts.scheduler,
                store,
                parts.alerts,
                lambda: self._config.schedule,
                selected=self._device_selected,
                ledger=parts.stale_notices,
            )
            guard_started = await asyncio.to_thread(parts.usbmuxd_guard.start)
            self._install_signals(self._loop)
            events = parts.phone_events
            events_task = asyncio.create_task(events.run(), name="usbmux-events")
            self._start_config_watcher(parts)
            web_started = await _start_web(parts)
            # READY once usbmuxd was reached or found missing: the service is up either way
            # and keeps trying, and its status says which.
            await events.first_attempt_done.wait()
            log.info(
                "service_ready",
                pid=os.getpid(),
                usbmuxd=describe_usbmux_address(bootstrap.usbmux_address(config)),
                archive=str(config.archive.path),
                state=str(config.state.path),
                config=str(self._config_path) if self._config_path else "defaults",
            )
            self._notifier.ready()
            self._notifier.status(
                self._idle_status() if events.listening.is_set() else "waiting for usbmuxd"
            )
            watchdog_task = self._start_watchdog()
            await self._stop.wait()
            self._notifier.stopping()
            self._notifier.status("stopping")
            log.info("service_stopping")
            await parts.backups.stop(self._stop_grace_seconds)
            await parts.offsite.stop()
            await parts.alerts.aclose()
            if watchdog_task is not None:
                watchdog_task.cancel()
        finally:
            await _stop_web(parts, web_started)
            if parts is not None:
                parts.phone_events.stop()
                parts.unseen_phones.close()
            if events_task is not None:
                events_task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await events_task
            if self._watcher is not None:
                await asyncio.to_thread(self._watcher.stop)
            if parts is not None and guard_started:
                await asyncio.to_thread(parts.usbmuxd_guard.stop)
            if parts is not None and parts.scheduler.running:
                parts.scheduler.shutdown(wait=False)
            store.close()
            lock.release()
            self._notifier.close()
        log.info("service_stopped")
        return 0

    def _start_config_watcher(self, parts: ServiceParts) -> None:
        watcher = parts.config_watcher
        if watcher is None or self._config_path is None:
            return
        watcher.start()
        self._watcher = watcher
        # An edit between the start-up load and the watcher's start would go unseen: load once
        # more and apply only if the file now says something else (a forced reload here would
        # announce a "reload" of an unchanged config).
        try:
            current = load_config(self._config_path, self._environ)
        except ConfigError as error:
            self._config_broken(error)
            return
        if current != self._config:
            self._apply_config(current)

    def _start_watchdog(self) -> asyncio.Task[None] | None:
        interval = self._notifier.watchdog_interval_seconds
        if interval is None:
            return None

        async def keep_alive() -> None:
            while True:
                self._notifier.watchdog_ping()
                await asyncio.sleep(interval)

        return asyncio.create_task(keep_alive(), name="sd-watchdog")

    async def _run_finished(self, result: RunResult) -> None:
        if self._running_parts.backups.repeated_outage:
            # The archive is still unavailable: the user was told at the outage's first run.
            log.info("archive_outage_already_told", udid=result.udid, run_id=result.run_id)
            for listener in self._run_listeners:
                await listener(result)
            return
        if result.outcome == "complete":
            # After each complete backup, a copy offsite (at most every N hours).
            self._running_parts.offsite.backup_completed()
        await self._running_parts.alerts.run_finished(
            RunNotice.from_counts(
                udid=result.udid,
                device_name=result.device_name,
                run_id=result.run_id,
                outcome=result.outcome,
                counts=result.counts,
                error=result.error,
            )
        )
        for listener in self._run_listeners:
            with contextlib.suppress(Exception):
                await listener(result)


async def _start_web(parts: ServiceParts) -> bool:
    """Start the status page if the config enables it; whether it listens."""
    if parts.web is None:
        return False
    return await parts.web.start()


async def _stop_web(parts: ServiceParts | None, started: bool) -> None:
    """Stop the status page first: its live streams end before the parts they read go."""
    if started and parts is not None and parts.web is not None:
        await parts.web.stop()


def run_service(config_argument: str | None, environ: Mapping[str, str] | None = None) -> int:
    """Load the config (``--config``, ``$ROLLKEEPER_CONFIG`` or the default path) and run the
    service in the foreground; returns the exit code (1 when the config cannot be used)."""
    environment = os.environ if environ is None else environ
    loaded = bootstrap.load_config_leniently(config_argument, environment)
    config = bootstrap.config_or_say_why(loaded)
    if config is None:
        return 1
    configure_logging(config.logging.level, config.logging.format)
    runtime = ServiceRuntime(config, loaded.path, environment)
    return asyncio.run(runtime.run())
