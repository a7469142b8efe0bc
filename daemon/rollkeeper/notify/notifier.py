"""The notifier: turns run outcomes and alerts into desktop notices, hooks and health pings.

A backup that silently stopped is the failure this package exists to prevent, and a backup that
a notification slowed down or broke would be a new failure, so every delivery here:

* never raises into the caller (each failure is a logged warning),
* never blocks the event loop (hooks and the platform notifier are asyncio subprocesses, the
  HTTP ping runs in a worker thread), and
* never slows a backup: the public methods decide what to send, start the deliveries as
  background tasks and return at once. :meth:`Notifier.wait_idle` waits for them (tests,
  shutdown); :meth:`Notifier.aclose` also stops hooks still running at shutdown.

This module only decides and dispatches. Who is told what is :mod:`.policy`, the words are
:mod:`.messages`, and the channels are :mod:`.desktop`, :mod:`.hooks` and :mod:`.healthcheck`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import sys
import threading
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from rollkeeper.host.logs import get_logger
from rollkeeper.notify.desktop import DesktopNotifier
from rollkeeper.notify.healthcheck import ping_body, ping_target, send_ping
from rollkeeper.notify.hooks import (
    HOOK_OUTPUT_LIMIT,
    HOOK_VARIABLES,
    HookRunner,
    run_environment,
    stale_environment,
)
from rollkeeper.notify.messages import (
    failure_message,
    stale_message,
    success_message,
)
from rollkeeper.notify.notices import (
    EVENT_ALERT,
    EVENT_FAILURE,
    EVENT_OFFSITE_FAILURE,
    EVENT_STALE,
    EVENT_SUCCESS,
    RunNotice,
    clean_text,
)
from rollkeeper.notify.policy import RateLimiter, run_announcement

# Names callers have imported from this module since before the package was split up.
__all__ = [
    "HOOK_OUTPUT_LIMIT",
    "HOOK_VARIABLES",
    "NotificationSettingsLike",
    "Notifier",
    "RunNotice",
]

log = get_logger(__name__)


class NotificationSettingsLike(Protocol):
    """The config's ``[notifications]`` section, as far as this package reads it."""

    @property
    def desktop(self) -> bool: ...
    @property
    def on_success(self) -> str: ...
    @property
    def on_failure(self) -> str: ...
    @property
    def on_stale(self) -> str: ...
    @property
    def hook_timeout_seconds(self) -> float: ...
    @property
    def healthcheck_url(self) -> str: ...
    @property
    def min_interval_minutes(self) -> float: ...


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Notifier:
    """Sends desktop notifications, runs hooks and pings health checks; never fails a caller.

    ``settings`` is the config's notifications section (replace it with
    :meth:`update_settings` when the config reloads). ``clock`` returns aware UTC datetimes and
    is what rate limiting reads. ``environ`` is the environment hooks inherit and where the
    session bus is looked up (default ``os.environ``); ``platform`` picks the desktop notifier
    (default ``sys.platform``).
    """

    def __init__(
        self,
        settings: NotificationSettingsLike,
        clock: Callable[[], datetime] = _utc_now,
        *,
        environ: Mapping[str, str] | None = None,
        platform: str | None = None,
    ) -> None:
        self._settings = settings
        environ = os.environ if environ is None else environ
        self._limits = RateLimiter(clock, lambda: self._settings.min_interval_minutes)
        self._desktop = DesktopNotifier(environ, platform or sys.platform)
        self._hooks = HookRunner(environ)
        self._tasks: set[asyncio.Task[None]] = set()
        # Alerts asked for from other threads (the udev watchdog), not yet finished.
        self._thread_requests: set[concurrent.futures.Future[None]] = set()
        self._thread_requests_lock = threading.Lock()

    @property
    def settings(self) -> NotificationSettingsLike:
        """The settings in force."""
        return self._settings

    def update_settings(self, settings: NotificationSettingsLike) -> None:
        """Use new settings from now on (a live config reload); deliveries under way go on."""
        self._settings = settings

    # -- the public events -----------------------------------------------------------------

    async def run_finished(self, report: RunNotice) -> None:
        """Announce a finished run by its outcome; the one call a backup job needs to make.

        See :func:`rollkeeper.notify.policy.run_announcement` for which outcomes are announced.
        """
        event, report = run_announcement(report)
        if event == EVENT_SUCCESS:
            await self.run_succeeded(report)
        elif event == EVENT_FAILURE:
            await self.run_failed(report)
        else:
            log.debug(
                "run_not_announced", udid=report.udid, run_id=report.run_id, outcome=report.outcome
            )

    async def run_succeeded(self, report: RunNotice) -> None:
        """A backup run finished; announce it (desktop, ``on_success``, health-check ping)."""
        self._limits.clear(EVENT_FAILURE, report.udid)
        title, body = success_message(report)
        self._ping(EVENT_SUCCESS, report)
        if self._limits.allow(EVENT_SUCCESS, report.udid):
            hook = self._settings.on_success
            self._dispatch(EVENT_SUCCESS, title, body, hook, run_environment(report))

    async def run_failed(self, report: RunNotice) -> None:
        """A backup run failed; announce it (desktop, ``on_failure``, ``<url>/fail`` ping)."""
        title, body = failure_message(report)
        self._ping(EVENT_FAILURE, report)
        if self._limits.allow(EVENT_FAILURE, report.udid):
            hook = self._settings.on_failure
            self._dispatch(EVENT_FAILURE, title, body, hook, run_environment(report))

    async def backups_stale(
        self, udid: str, device_name: str, last_complete_at: datetime | None
    ) -> None:
        """A phone has gone too long without a complete backup (``on_stale``)."""
        title, body = stale_message(udid, device_name, last_complete_at)
        env = stale_environment(udid, device_name, last_complete_at)
        if self._limits.allow(EVENT_STALE, udid):
            self._dispatch(EVENT_STALE, title, body, self._settings.on_stale, env)

    async def offsite_failed(
        self, kind: str, engine: str, run_id: int | None, outcome: str, error: str
    ) -> None:
        """An offsite copy or check failed (desktop, and ``on_failure`` with ROLLKEEPER_EVENT
        ``offsite_failure``); the archive itself is fine, its second copy is not."""
        what = "check of the offsite copy" if kind == "check" else "offsite copy"
        title = f"rollkeeper: {what} failed"
        body = clean_text(error, 300) or "see `rollkeeper offsite status`"
        env = {
            "ROLLKEEPER_RUN_ID": "" if run_id is None else str(run_id),
            "ROLLKEEPER_OUTCOME": outcome,
            "ROLLKEEPER_ERROR": f"{engine}: {error}",
        }
        if self._limits.allow(EVENT_OFFSITE_FAILURE, kind):
            self._dispatch(EVENT_OFFSITE_FAILURE, title, body, self._settings.on_failure, env)

    async def alert(self, title: str, body: str) -> None:
        """A problem with no phone or run attached ("usbmuxd is not running"): desktop only."""
        if self._limits.allow(EVENT_ALERT, title):
            self._dispatch(EVENT_ALERT, clean_text(title, 120), clean_text(body, 400), "", {})

    def alert_from_thread(self, loop: asyncio.AbstractEventLoop) -> Callable[[str, str], None]:
        """A plain ``notify(title, body)`` for code running in other threads (the udev
        watchdog): it hands the alert to ``loop`` and returns at once, never raising."""

        def notify(title: str, body: str) -> None:
            coroutine = self.alert(title, body)
            try:
                future = asyncio.run_coroutine_threadsafe(coroutine, loop)
            except RuntimeError as error:  # the loop is closed: the service is stopping
                coroutine.close()
                log.warning("notification_dropped", title=title, error=str(error))
                return
            with self._thread_requests_lock:
                self._thread_requests.add(future)
            future.add_done_callback(self._thread_request_done)

        return notify

    def _thread_request_done(self, future: concurrent.futures.Future[None]) -> None:
        with self._thread_requests_lock:
            self._thread_requests.discard(future)

    # -- waiting and stopping ----------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """True while some delivery is still under way."""
        with self._thread_requests_lock:
            if self._thread_requests:
                return True
        return bool(self._tasks)

    async def wait_idle(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109 - documented: False on expiry, never raises
        """Wait until every delivery started so far has ended; False if ``timeout`` ran out."""
        with self._thread_requests_lock:
            requests = [asyncio.wrap_future(future) for future in self._thread_requests]
        if requests:
            _done, still_pending = await asyncio.wait(requests, timeout=timeout)
            if still_pending:
                return False
        while self._tasks:
            pending = set(self._tasks)
            _done, still_pending = await asyncio.wait(pending, timeout=timeout)
            if still_pending:
                return False
        return True

    async def aclose(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109 - a grace period, then hooks are killed
        """At shutdown: give deliveries ``timeout`` seconds, then stop hooks and cancel the rest."""
        if await self.wait_idle(timeout):
            return
        self._hooks.kill_all()
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- dispatching ---------------------------------------------------------------------------

    def _dispatch(
        self, kind: str, title: str, body: str, hook: str, hook_env: Mapping[str, str]
    ) -> None:
        udid = hook_env.get("ROLLKEEPER_UDID", "")
        log.info("notification_sent", kind=kind, udid=udid or None, title=title)
        if self._settings.desktop:
            urgent = kind in (EVENT_FAILURE, EVENT_ALERT, EVENT_OFFSITE_FAILURE)
            self._spawn(self._desktop.show(title, body, urgent=urgent))
        if hook.strip():
            timeout = self._settings.hook_timeout_seconds
            self._spawn(self._hooks.run(kind, hook, hook_env, timeout))

    def _ping(self, kind: str, report: RunNotice) -> None:
        url = self._settings.healthcheck_url
        if not url:
            return
        body = ping_body(kind, report)
        self._spawn(send_ping(kind, ping_target(url, kind), body, report.udid, report.run_id))

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            # A bug here must not stay invisible, and must not reach the backup either.
            log.error(
                "notification_delivery_crashed",
                error=repr(error),
                exc_info=(type(error), error, error.__traceback__),
            )
