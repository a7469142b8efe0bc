"""Phone attach and detach events from usbmuxd's Listen stream, with reconnect and backoff.

pymobiledevice3 offers no iterator: after ``listen()`` each ``receive_device_state_update()``
updates ``mux.devices``, and we diff that list. usbmuxd closing the socket (restart, or on Linux a
replug) raises ``MuxException``; a missing socket raises ``ConnectionFailedToUsbmuxdError``. Both
lead to a reconnect after a growing delay, and a missing usbmuxd is logged once, with the fix,
not once per attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from xml.parsers.expat import ExpatError

import structlog
from pymobiledevice3 import usbmux
from pymobiledevice3.exceptions import (
    ConnectionFailedToUsbmuxdError,
    MuxException,
    PyMobileDevice3Exception,
)

log = structlog.get_logger("rollkeeper.events")


@dataclass(frozen=True, slots=True)
class AttachedPhone:
    """A phone usbmuxd reports: its UDID (serial) and how it is connected (USB or Network)."""

    udid: str
    connection_type: str


def describe_usbmux_address(address: str | None) -> str:
    """The usbmuxd address in use, as the user would recognise it."""
    if address:
        return address
    environment = os.environ.get("USBMUXD_SOCKET_ADDRESS")
    if environment:
        return environment
    return "/var/run/usbmuxd"


def usbmuxd_fix_hint() -> str:
    """How to get usbmuxd running on this platform."""
    if sys.platform == "darwin":
        return "usbmuxd is part of macOS; check that the iPhone is plugged in and unlocked"
    return (
        "install and start usbmuxd: `sudo apt install usbmuxd` (Debian/Ubuntu) or "
        "`sudo dnf install usbmuxd`; it starts when an iPhone is plugged in "
        "(`systemctl status usbmuxd`)"
    )


#: What one request to usbmuxd (:func:`list_attached`) raises when usbmuxd is missing or not
#: well: pymobiledevice3's own errors (refused, closed, malformed packet), socket errors, a bad
#: ``host:port`` address (ValueError), and a garbled reply while it is decoded (plistlib raises
#: ValueError or ExpatError; a reply without an expected key, KeyError). Anything else is a bug
#: of ours and is not dressed up as "cannot reach usbmuxd".
USBMUXD_REQUEST_ERRORS: tuple[type[Exception], ...] = (
    PyMobileDevice3Exception,
    OSError,
    EOFError,
    ValueError,
    KeyError,
    ExpatError,
)


def usbmuxd_unreachable_message(address: str | None, error: BaseException) -> str:
    """One line for a one-shot command that could not ask usbmuxd which phones are attached."""
    return (
        f"cannot reach usbmuxd at {describe_usbmux_address(address)} "
        f"({type(error).__name__}); {usbmuxd_fix_hint()}"
    )


class UsbmuxEvents:
    """Follows usbmuxd and calls back on attach and detach, until :meth:`stop`.

    ``on_attach`` and ``on_detach`` are awaited in order on the event loop. When the connection
    to usbmuxd is lost, every phone known so far is reported detached: nothing can reach it.
    """

    def __init__(
        self,
        usbmux_address: str | None,
        on_attach: Callable[[AttachedPhone], Awaitable[None]],
        on_detach: Callable[[str], Awaitable[None]],
        connection_types: frozenset[str] = frozenset({"USB"}),
        initial_backoff_seconds: float = 0.5,
        maximum_backoff_seconds: float = 30.0,
    ) -> None:
        self._address = usbmux_address
        self._on_attach = on_attach
        self._on_detach = on_detach
        self._connection_types = connection_types
        self._initial_backoff = initial_backoff_seconds
        self._maximum_backoff = maximum_backoff_seconds
        self._stopping = asyncio.Event()
        self._attached: dict[str, AttachedPhone] = {}
        #: Set while a Listen connection is up; tests and readiness wait on it.
        self.listening = asyncio.Event()
        #: Set once the first attempt to reach usbmuxd has succeeded or failed.
        self.first_attempt_done = asyncio.Event()
        self.usbmuxd_reachable: bool | None = None

    @property
    def attached(self) -> dict[str, AttachedPhone]:
        """Phones attached right now, by UDID."""
        return dict(self._attached)

    def stop(self) -> None:
        """Ask :meth:`run` to return."""
        self._stopping.set()

    async def run(self) -> None:
        """Listen, reconnecting with backoff, until :meth:`stop` is called."""
        backoff = self._initial_backoff
        address = describe_usbmux_address(self._address)
        while not self._stopping.is_set():
            mux = None
            try:
                mux = await usbmux.create_mux(usbmux_address=self._address)
                await mux.listen()  # type: ignore[no-untyped-call]
                if self.usbmuxd_reachable is False:
                    log.info("usbmuxd_reachable", address=address)
                self.usbmuxd_reachable = True
                self.listening.set()
                self.first_attempt_done.set()
                backoff = self._initial_backoff
                await self._follow(mux)
            except ConnectionFailedToUsbmuxdError:
                if self.usbmuxd_reachable is not False:
                    log.error(
                        "usbmuxd_unreachable",
                        address=address,
                        fix=usbmuxd_fix_hint(),
                    )
                self.usbmuxd_reachable = False
                self.first_attempt_done.set()
            except (MuxException, ConnectionError, EOFError, OSError) as error:
                log.warning("usbmuxd_connection_lost", address=address, error=str(error))
                self.first_attempt_done.set()
            finally:
                self.listening.clear()
                if mux is not None:
                    with contextlib.suppress(Exception):
                        await mux.close()  # type: ignore[no-untyped-call]
                await self._detach_all()
            if self._stopping.is_set():
                break
            log.debug("usbmuxd_reconnect_scheduled", address=address, delay_seconds=backoff)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), backoff)
            backoff = min(backoff * 2, self._maximum_backoff)

    async def _follow(self, mux: usbmux.MuxConnection) -> None:
        """Receive device updates until the stream ends or we are stopped."""
        stop_waiter = asyncio.ensure_future(self._stopping.wait())
        try:
            while not self._stopping.is_set():
                update = asyncio.ensure_future(
                    mux.receive_device_state_update()  # type: ignore[no-untyped-call]
                )
                done, _ = await asyncio.wait(
                    {update, stop_waiter}, return_when=asyncio.FIRST_COMPLETED
                )
                if update not in done:
                    update.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await update
                    return
                update.result()
                await self._reconcile(mux.devices)
        finally:
            stop_waiter.cancel()

    async def _reconcile(self, devices: list[usbmux.MuxDevice]) -> None:
        """Diff usbmuxd's device list with ours and report the changes."""
        now: dict[str, AttachedPhone] = {}
        for device in devices:
            if device.connection_type not in self._connection_types:
                continue
            # A phone on USB and Wi-Fi at once appears twice; USB wins.
            if device.serial in now and now[device.serial].connection_type == "USB":
                continue
            now[device.serial] = AttachedPhone(device.serial, device.connection_type)
        for udid in list(self._attached):
            if udid not in now:
                del self._attached[udid]
                log.info("phone_detached", udid=udid)
                await self._on_detach(udid)
        for udid, phone in now.items():
            if udid not in self._attached:
                self._attached[udid] = phone
                log.info("phone_attached", udid=udid, connection_type=phone.connection_type)
                await self._on_attach(phone)

    async def _detach_all(self) -> None:
        for udid in list(self._attached):
            del self._attached[udid]
            reason = "service_stopping" if self._stopping.is_set() else "usbmuxd_connection_lost"
            log.info("phone_detached", udid=udid, reason=reason)
            await self._on_detach(udid)


async def list_attached(
    usbmux_address: str | None, connection_types: frozenset[str] = frozenset({"USB"})
) -> list[AttachedPhone]:
    """The phones attached now (one ListDevices request), for one-shot commands."""
    devices = await usbmux.list_devices(usbmux_address=usbmux_address)
    seen: dict[str, AttachedPhone] = {}
    for device in devices:
        if device.connection_type in connection_types and device.serial not in seen:
            seen[device.serial] = AttachedPhone(device.serial, device.connection_type)
    return list(seen.values())
