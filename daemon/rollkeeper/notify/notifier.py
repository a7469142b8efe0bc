"""Telling the user what happened: desktop notifications, hook commands and health-check pings.

A backup that silently stopped is the failure this module exists to prevent, and a backup that
a notification slowed down or broke would be a new failure, so every delivery here:

* never raises into the caller (each failure is a logged warning),
* never blocks the event loop (hooks and the platform notifier are asyncio subprocesses, the
  HTTP ping runs in a worker thread), and
* never slows a backup: the public methods decide what to send, start the deliveries as
  background tasks and return at once. :meth:`Notifier.wait_idle` waits for them (tests,
  shutdown); :meth:`Notifier.aclose` also stops hooks still running at shutdown.

Channels:

* **Desktop**: ``notify-send`` (freedesktop notifications) on Linux, ``osascript`` (Notification
  Center) on macOS. Without a desktop session (no session bus, no ``notify-send``) it degrades
  to one ``desktop_notification_unavailable`` debug event, so a headless server stays quiet.
* **Hooks**: ``on_success``, ``on_failure``, ``on_stale`` are run with ``sh -c`` in a new
  process group with ``ROLLKEEPER_*`` variables (see :data:`HOOK_VARIABLES` and
  docs/notifications.md). A hook still running after ``hook_timeout_seconds`` gets SIGTERM,
  then SIGKILL, sent to its whole process group. Its output is logged (``hook_finished``).
* **Health check**: ``healthcheck_url`` is pinged (HTTP POST) after a successful run and
  ``<url>/fail`` after a failed one, healthchecks.io style. Network trouble is a warning.

Rate limiting: desktop notifications and hooks of one kind for one phone are sent at most once
per ``min_interval_minutes`` (0 = always); a success clears the limit on failures so the next
failure is announced at once. Health-check pings are never rate limited: they are the
heartbeat. The limit lives in memory; the stale notice's once-per-period rule survives restarts
through :mod:`rollkeeper.service.health`'s ledger.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from rollkeeper.domain.health import printable
from rollkeeper.host.logs import get_logger

log = get_logger(__name__)

#: Event names: the ``ROLLKEEPER_EVENT`` of hooks and the ``kind`` of log events.
EVENT_SUCCESS = "success"
EVENT_FAILURE = "failure"
EVENT_STALE = "stale"
EVENT_ALERT = "alert"

#: Every variable a hook may find in its environment (documented in docs/notifications.md).
HOOK_VARIABLES: tuple[str, ...] = (
    "ROLLKEEPER_EVENT",
    "ROLLKEEPER_UDID",
    "ROLLKEEPER_DEVICE_NAME",
    "ROLLKEEPER_RUN_ID",
    "ROLLKEEPER_OUTCOME",
    "ROLLKEEPER_FILES_COPIED",
    "ROLLKEEPER_BYTES_COPIED",
    "ROLLKEEPER_FILES_FAILED",
    "ROLLKEEPER_FILES_PENDING",
    "ROLLKEEPER_ERROR",
    "ROLLKEEPER_LAST_COMPLETE_AT",
)

#: Variables of systemd's and launchd's protocols that a hook must not inherit (a hook calling
#: systemd-notify would otherwise speak for the service).
_SERVICE_MANAGER_VARIABLES = frozenset(
    {"NOTIFY_SOCKET", "WATCHDOG_PID", "WATCHDOG_USEC", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"}
)

#: How long the platform notifier and a health-check ping may take before they are given up.
DESKTOP_TIMEOUT_SECONDS = 10.0
PING_TIMEOUT_SECONDS = 10.0
#: Time between SIGTERM and SIGKILL for a hook past its timeout.
HOOK_KILL_GRACE_SECONDS = 2.0
#: Hook output kept for the log; more is cut (a chatty hook must not flood the journal).
HOOK_OUTPUT_LIMIT = 8192
#: Device names are untrusted: cut and cleaned before they reach a notification.
NAME_LIMIT = 80


class NotificationSettingsLike(Protocol):
    """The config's ``[notifications]`` section, as far as this module reads it."""

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


class RunCountsLike(Protocol):
    """The counts of a run (:class:`rollkeeper.store.RunCounts`), as far as notices need them."""

    @property
    def files_copied(self) -> int: ...
    @property
    def bytes_copied(self) -> int: ...
    @property
    def files_failed(self) -> int: ...
    @property
    def files_pending(self) -> int: ...


@dataclass(frozen=True, slots=True)
class RunNotice:
    """What a finished backup run tells the notifier."""

    udid: str
    device_name: str
    run_id: int | None
    outcome: str
    files_copied: int = 0
    bytes_copied: int = 0
    files_failed: int = 0
    files_pending: int = 0
    error: str = ""

    @classmethod
    def from_counts(
        cls,
        udid: str,
        device_name: str,
        run_id: int | None,
        outcome: str,
        counts: RunCountsLike,
        error: str = "",
    ) -> RunNotice:
        """A notice from a run's outcome and its :class:`~rollkeeper.store.RunCounts`."""
        return cls(
            udid=udid,
            device_name=device_name,
            run_id=run_id,
            outcome=outcome,
            files_copied=counts.files_copied,
            bytes_copied=counts.bytes_copied,
            files_failed=counts.files_failed,
            files_pending=counts.files_pending,
            error=error,
        )


def _utc_now() -> datetime:
    return datetime.now(UTC)


def clean_text(value: str, limit: int = NAME_LIMIT) -> str:
    """A device-supplied string made safe to show: no control characters, bounded length."""
    return printable(value, limit)


def format_bytes(count: int) -> str:
    """Bytes for people: ``1.5 GB`` (decimal units, like Finder and most file managers)."""
    value = float(count)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{count} B"  # pragma: no cover - the loop always returns


def _url_host(url: str) -> str:
    # The path of a healthchecks.io URL is its secret: log the host only.
    return urlsplit(url).netloc


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
        self._clock = clock
        self._environ: Mapping[str, str] = os.environ if environ is None else environ
        self._platform = platform or sys.platform
        self._last_sent: dict[tuple[str, str], datetime] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # Alerts asked for from other threads (the udev watchdog), not yet finished.
        self._thread_requests: set[concurrent.futures.Future[None]] = set()
        self._thread_requests_lock = threading.Lock()
        self._hook_processes: set[asyncio.subprocess.Process] = set()
        self._desktop_unavailable_logged = False

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

        ``complete`` is a success. ``failed``, and ``incomplete`` with failed files, are
        failures: files that could not be copied need the user. A run that only left files
        pending (unplugged, stopped, ``interrupted``) resumes by itself and is not announced;
        if it never does, the staleness check speaks up.
        """
        if report.outcome == "complete":
            await self.run_succeeded(report)
        elif report.outcome == "failed" or report.files_failed:
            if not report.error and report.files_failed:
                noun = "file" if report.files_failed == 1 else "files"
                report = replace(report, error=f"{report.files_failed} {noun} could not be copied")
            await self.run_failed(report)
        else:
            log.debug(
                "run_not_announced", udid=report.udid, run_id=report.run_id, outcome=report.outcome
            )

    async def run_succeeded(self, report: RunNotice) -> None:
        """A backup run finished; announce it (desktop, ``on_success``, health-check ping)."""
        self._last_sent.pop((EVENT_FAILURE, report.udid), None)
        name = clean_text(report.device_name) or report.udid
        if report.files_failed or report.files_pending or report.outcome != "complete":
            # Honest words: the caller calls this for a run that ended normally, but only a
            # complete run is "backed up".
            title = f"Backup of {name} finished, not complete"
            body = (
                f"{report.files_copied} files copied ({format_bytes(report.bytes_copied)}); "
                f"{report.files_pending} pending, {report.files_failed} failed."
            )
        else:
            title = f"{name} is backed up"
            if report.files_copied:
                body = (
                    f"{report.files_copied} new files copied ({format_bytes(report.bytes_copied)})."
                )
            else:
                body = "Nothing new to copy."
        self._ping(EVENT_SUCCESS, report)
        if self._allowed(EVENT_SUCCESS, report.udid):
            self._dispatch(EVENT_SUCCESS, title, body, self._settings.on_success, _run_env(report))

    async def run_failed(self, report: RunNotice) -> None:
        """A backup run failed; announce it (desktop, ``on_failure``, ``<url>/fail`` ping)."""
        name = clean_text(report.device_name) or report.udid
        title = f"Backup of {name} failed"
        reason = clean_text(report.error, 200) if report.error else "unknown error"
        body = (
            f"{reason}. {report.files_copied} files copied, {report.files_pending} pending, "
            f"{report.files_failed} failed."
        )
        self._ping(EVENT_FAILURE, report)
        if self._allowed(EVENT_FAILURE, report.udid):
            self._dispatch(EVENT_FAILURE, title, body, self._settings.on_failure, _run_env(report))

    async def backups_stale(
        self, udid: str, device_name: str, last_complete_at: datetime | None
    ) -> None:
        """A phone has gone too long without a complete backup (``on_stale``)."""
        name = clean_text(device_name) or udid
        if last_complete_at is None:
            title = f"{name} has never been backed up completely"
            body = "Plug it in, unlock it and tap Trust; see `rollkeeper status`."
        else:
            day = last_complete_at.astimezone(UTC).strftime("%Y-%m-%d")
            title = f"No backup of {name} since {day}"
            body = "Plug the phone in to back it up; see `rollkeeper status`."
        env = {
            "ROLLKEEPER_EVENT": EVENT_STALE,
            "ROLLKEEPER_UDID": udid,
            "ROLLKEEPER_DEVICE_NAME": device_name,
            "ROLLKEEPER_LAST_COMPLETE_AT": (
                "" if last_complete_at is None else last_complete_at.astimezone(UTC).isoformat()
            ),
        }
        if self._allowed(EVENT_STALE, udid):
            self._dispatch(EVENT_STALE, title, body, self._settings.on_stale, env)

    async def alert(self, title: str, body: str) -> None:
        """A problem with no phone or run attached ("usbmuxd is not running"): desktop only."""
        if self._allowed(EVENT_ALERT, title):
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

    async def wait_idle(self, timeout: float | None = None) -> bool:
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

    async def aclose(self, timeout: float = 5.0) -> None:
        """At shutdown: give deliveries ``timeout`` seconds, then stop hooks and cancel the rest."""
        if await self.wait_idle(timeout):
            return
        for process in list(self._hook_processes):
            _kill_group(process, signal.SIGKILL)
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- decisions -----------------------------------------------------------------------------

    def _allowed(self, kind: str, subject: str) -> bool:
        now = self._clock()
        interval = timedelta(minutes=max(self._settings.min_interval_minutes, 0.0))
        last = self._last_sent.get((kind, subject))
        if last is not None and interval > timedelta(0) and now - last < interval:
            log.info(
                "notification_suppressed",
                kind=kind,
                udid=subject,
                last_sent_at=last.isoformat(),
                min_interval_minutes=self._settings.min_interval_minutes,
            )
            return False
        self._last_sent[(kind, subject)] = now
        return True

    def _dispatch(
        self, kind: str, title: str, body: str, hook: str, hook_env: Mapping[str, str]
    ) -> None:
        udid = hook_env.get("ROLLKEEPER_UDID", "")
        log.info("notification_sent", kind=kind, udid=udid or None, title=title)
        if self._settings.desktop:
            self._spawn(self._desktop(title, body, urgent=kind in (EVENT_FAILURE, EVENT_ALERT)))
        if hook.strip():
            self._spawn(self._run_hook(kind, hook, hook_env))

    def _ping(self, kind: str, report: RunNotice) -> None:
        url = self._settings.healthcheck_url
        if not url:
            return
        target = url if kind == EVENT_SUCCESS else url.rstrip("/") + "/fail"
        body = (
            f"rollkeeper {kind}: udid={report.udid} run_id={report.run_id} "
            f"outcome={report.outcome} copied={report.files_copied} "
            f"failed={report.files_failed} pending={report.files_pending}"
        )
        if report.error:
            body += f" error={clean_text(report.error, 300)}"
        self._spawn(self._send_ping(kind, target, body, report.udid, report.run_id))

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

    # -- channels ------------------------------------------------------------------------------

    def _desktop_command(self, title: str, body: str, urgent: bool) -> list[str] | None:
        path = self._environ.get("PATH", os.defpath)
        if self._platform == "darwin":
            osascript = shutil.which("osascript", path=path)
            if osascript is None:
                return None
            # Title and body go in as arguments, never into the script text: a phone named
            # '" & do shell script "...' must stay a name.
            return [
                osascript,
                "-e",
                "on run argv",
                "-e",
                "display notification (item 2 of argv) with title (item 1 of argv)",
                "-e",
                "end run",
                title,
                body,
            ]
        notify_send = shutil.which("notify-send", path=path)
        if notify_send is None or not self._has_session_bus():
            return None
        return [
            notify_send,
            "--app-name=rollkeeper",
            f"--urgency={'critical' if urgent else 'normal'}",
            "--",
            title,
            body,
        ]

    def _has_session_bus(self) -> bool:
        if self._environ.get("DBUS_SESSION_BUS_ADDRESS"):
            return True
        runtime_dir = self._environ.get("XDG_RUNTIME_DIR")
        return bool(runtime_dir) and Path(runtime_dir or "", "bus").exists()

    async def _desktop(self, title: str, body: str, *, urgent: bool) -> None:
        command = self._desktop_command(title, body, urgent)
        if command is None:
            if not self._desktop_unavailable_logged:
                self._desktop_unavailable_logged = True
                log.debug("desktop_notification_unavailable", platform=self._platform)
            return
        try:
            process = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                env=dict(self._environ),
                start_new_session=True,
            )
        except OSError as error:
            log.warning("desktop_notification_failed", error=str(error))
            return
        try:
            _, errors = await asyncio.wait_for(process.communicate(), DESKTOP_TIMEOUT_SECONDS)
        except TimeoutError:
            _kill_group(process, signal.SIGKILL)
            await process.wait()
            log.warning("desktop_notification_failed", error="timed out")
            return
        if process.returncode != 0:
            log.warning(
                "desktop_notification_failed",
                exit_code=process.returncode,
                error=errors.decode("utf-8", "replace").strip()[:500],
            )

    async def _run_hook(self, kind: str, command: str, hook_env: Mapping[str, str]) -> None:
        timeout = self._settings.hook_timeout_seconds
        env = {
            name: value
            for name, value in self._environ.items()
            # The service manager's channels are the service's, not the hook's.
            if name not in _SERVICE_MANAGER_VARIABLES
        }
        # Variables from an earlier event never leak into this one.
        for name in HOOK_VARIABLES:
            env[name] = ""
        env.update({name: value.replace("\0", "") for name, value in hook_env.items()})
        env["ROLLKEEPER_EVENT"] = kind
        run_id_text = hook_env.get("ROLLKEEPER_RUN_ID", "")
        fields = {
            "kind": kind,
            "udid": hook_env.get("ROLLKEEPER_UDID") or None,
            # An integer, like the run_id of every other event.
            "run_id": int(run_id_text) if run_id_text.isdigit() else None,
        }
        loop = asyncio.get_running_loop()
        started = loop.time()
        # Output goes to an unlinked temporary file, not a pipe: a child the hook leaves in the
        # background keeps a pipe open and would hold up the wait for the hook itself.
        with tempfile.TemporaryFile(prefix="rollkeeper-hook-") as output_file:
            try:
                process = await asyncio.create_subprocess_exec(
                    "/bin/sh",
                    "-c",
                    command,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=output_file,
                    stderr=asyncio.subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                )
            except OSError as error:
                log.warning("hook_failed_to_start", error=str(error), **fields)
                return
            self._hook_processes.add(process)
            log.info("hook_started", pid=process.pid, **fields)
            timed_out = False
            try:
                await asyncio.wait_for(process.wait(), timeout)
            except TimeoutError:
                timed_out = True
                log.warning("hook_timed_out", pid=process.pid, timeout_seconds=timeout, **fields)
                _kill_group(process, signal.SIGTERM)
                try:
                    await asyncio.wait_for(process.wait(), HOOK_KILL_GRACE_SECONDS)
                except TimeoutError:
                    _kill_group(process, signal.SIGKILL)
                    await process.wait()
                # Whatever of the group survived SIGTERM (the shell gone, children left) goes.
                _kill_group(process, signal.SIGKILL)
            finally:
                self._hook_processes.discard(process)
            output_file.seek(0)
            output = output_file.read(HOOK_OUTPUT_LIMIT + 1)
        truncated = len(output) > HOOK_OUTPUT_LIMIT
        text = output[:HOOK_OUTPUT_LIMIT].decode("utf-8", "replace")
        report = log.warning if timed_out or process.returncode != 0 else log.info
        report(
            "hook_finished",
            exit_code=process.returncode,
            timed_out=timed_out,
            duration_seconds=round(loop.time() - started, 3),
            output=text,
            output_truncated=truncated,
            **fields,
        )

    async def _send_ping(
        self, kind: str, url: str, body: str, udid: str, run_id: int | None
    ) -> None:
        try:
            status = await asyncio.to_thread(_post, url, body)
        except (urllib.error.URLError, OSError, ValueError) as error:
            reason = getattr(error, "reason", None) or error
            log.warning(
                "healthcheck_ping_failed",
                kind=kind,
                host=_url_host(url),
                udid=udid,
                run_id=run_id,
                error=str(reason),
            )
            return
        log.info(
            "healthcheck_pinged",
            kind=kind,
            host=_url_host(url),
            status=status,
            udid=udid,
            run_id=run_id,
        )


def _run_env(report: RunNotice) -> dict[str, str]:
    return {
        "ROLLKEEPER_UDID": report.udid,
        "ROLLKEEPER_DEVICE_NAME": report.device_name,
        "ROLLKEEPER_RUN_ID": "" if report.run_id is None else str(report.run_id),
        "ROLLKEEPER_OUTCOME": report.outcome,
        "ROLLKEEPER_FILES_COPIED": str(report.files_copied),
        "ROLLKEEPER_BYTES_COPIED": str(report.bytes_copied),
        "ROLLKEEPER_FILES_FAILED": str(report.files_failed),
        "ROLLKEEPER_FILES_PENDING": str(report.files_pending),
        "ROLLKEEPER_ERROR": report.error,
    }


def _kill_group(process: asyncio.subprocess.Process, signal_number: int) -> None:
    # The hook runs in its own session, so its pid is its process group id.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal_number)


def _post(url: str, body: str) -> int:
    request = urllib.request.Request(
        url,
        data=body.encode("utf-8"),
        method="POST",
        headers={"Content-Type": "text/plain; charset=utf-8", "User-Agent": "rollkeeper"},
    )
    with urllib.request.urlopen(request, timeout=PING_TIMEOUT_SECONDS) as response:
        status: int = response.status
        return status
