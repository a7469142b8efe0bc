"""Desktop notifications: ``notify-send`` on Linux, ``osascript`` (Notification Center) on macOS.

The platform notifier runs as an asyncio subprocess, so a slow or hung desktop never blocks the
service; it is given :data:`DESKTOP_TIMEOUT_SECONDS` and then killed. Without a desktop session
(no session bus, no ``notify-send``) this degrades to one ``desktop_notification_unavailable``
debug event, so a headless server stays quiet. Every failure is a logged warning, never raised.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from collections.abc import Mapping
from pathlib import Path

from rollkeeper.host.logs import get_logger
from rollkeeper.notify.processes import kill_group

log = get_logger(__name__)

#: How long the platform notifier may take before it is given up.
DESKTOP_TIMEOUT_SECONDS = 10.0


class DesktopNotifier:
    """Shows a title and a body with the platform's notifier, if this session has one.

    ``environ`` is where ``PATH`` and the session bus are looked up and what the notifier
    inherits; ``platform`` is ``sys.platform``'s spelling (``darwin`` picks ``osascript``).
    """

    def __init__(self, environ: Mapping[str, str], platform: str) -> None:
        self._environ = environ
        self._platform = platform
        self._unavailable_logged = False

    def command(self, title: str, body: str, urgent: bool) -> list[str] | None:
        """The argv that shows the notification, or None where there is no desktop."""
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

    async def show(self, title: str, body: str, *, urgent: bool) -> None:
        """Show one notification; a missing desktop or a failing notifier is only logged."""
        command = self.command(title, body, urgent)
        if command is None:
            if not self._unavailable_logged:
                self._unavailable_logged = True
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
            kill_group(process, signal.SIGKILL)
            await process.wait()
            log.warning("desktop_notification_failed", error="timed out")
            return
        if process.returncode != 0:
            log.warning(
                "desktop_notification_failed",
                exit_code=process.returncode,
                error=errors.decode("utf-8", "replace").strip()[:500],
            )
