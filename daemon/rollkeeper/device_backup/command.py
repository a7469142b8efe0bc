"""``rollkeeper device-backup``'s work: one device backup now, in the foreground.

Takes the instance lock (the service must not be running: it would import the phone's photos
at the same time), finds the phone, and makes one snapshot through the same
:class:`~rollkeeper.device_backup.coordinator.DeviceBackups` as the service, with a progress
bar on a terminal and the passcode prompt said on standard error.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import Any

from pymobiledevice3.exceptions import PyMobileDevice3Exception

from rollkeeper import bootstrap
from rollkeeper.config import Config
from rollkeeper.device.events import describe_usbmux_address, list_attached
from rollkeeper.device_backup.coordinator import DeviceBackups
from rollkeeper.domain.device_backup_policy import COMMAND
from rollkeeper.domain.units import format_bytes
from rollkeeper.host.permissions import set_private_umask
from rollkeeper.host.single_instance import AlreadyRunningError
from rollkeeper.service.loop_errors import install_loop_error_handler

_HINTS = {
    "passcode_timeout": "the passcode was not entered on the iPhone in time; run it again",
    "disk_full": "not enough free disk space for the device backup",
    "unplugged": "the iPhone was unplugged or the connection dropped; plug it in and run it again",
}


def _result(outcome: str, summary: str, **extra: Any) -> dict[str, Any]:
    return {"outcome": outcome, "summary": summary, **extra}


async def device_backup_now(
    config: Config, device: str | None, *, show_progress: bool
) -> dict[str, Any]:
    """Make one device backup; a JSON-ready dict with ``outcome`` and ``summary``."""
    set_private_umask()
    install_loop_error_handler(asyncio.get_running_loop())
    try:
        settings = bootstrap.device_backup_settings(config)
    except ValueError as error:
        return _result("failed", str(error))
    try:
        lock = bootstrap.acquire_instance_lock(config)
    except AlreadyRunningError as error:
        return _result("failed", f"{error}. Stop the service to run device-backup by hand.")
    store = bootstrap.open_state(config)
    try:
        address = bootstrap.usbmux_address(config)
        try:
            attached = await list_attached(address, frozenset(config.device.connection_types))
        except (OSError, PyMobileDevice3Exception) as error:
            where = describe_usbmux_address(address)
            return _result("failed", f"cannot reach usbmuxd at {where} ({type(error).__name__})")
        udids = [phone.udid for phone in attached if device in (None, phone.udid)]
        if not udids:
            return _result("failed", "no such iPhone is attached (plug it in and unlock it)")

        async def alert(title: str, body: str) -> None:
            print(f"{title} {body}", file=sys.stderr)

        backups = DeviceBackups(settings, store, alert=alert)
        bar = _Bar() if show_progress else None
        with bar if bar is not None else contextlib.nullcontext():
            outcome = await backups.back_up(
                udids[0],
                bootstrap.session_settings(config),
                trigger=COMMAND,
                on_progress=None if bar is None else bar.update,
            )
        if outcome is None:
            return _result(
                "failed", "the iPhone could not be reached (locked or not trusted?)", udid=udids[0]
            )
        if outcome.outcome != "completed":
            hint = _HINTS.get(outcome.outcome, outcome.error)
            return _result(
                outcome.outcome,
                f"device backup {outcome.outcome}: {hint}",
                udid=outcome.udid,
                error=outcome.error,
            )
        return _result(
            "completed",
            f"snapshot {outcome.snapshot_id}: {outcome.files:,} files, "
            f"{format_bytes(outcome.bytes)}"
            f" ({format_bytes(outcome.added_bytes)} new on disk), "
            f"{'encrypted' if outcome.encrypted else 'not encrypted'}",
            udid=outcome.udid,
            snapshot=outcome.snapshot_id,
            files=outcome.files,
            bytes=outcome.bytes,
            added_bytes=outcome.added_bytes,
            encrypted=outcome.encrypted,
            camera_roll_files=outcome.camera_roll_files,
            path=str(settings.root / outcome.udid / str(outcome.snapshot_id)),
        )
    finally:
        store.close()
        lock.release()


class _Bar:
    """A percentage bar on standard error (the phone reports its own progress)."""

    def __enter__(self) -> _Bar:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("device backup"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
        )
        self._progress.__enter__()
        self._task = self._progress.add_task("backup", total=100)
        return self

    def update(self, percent: float) -> None:
        self._progress.update(self._task, completed=max(0.0, min(100.0, percent)))

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(None, None, None)
