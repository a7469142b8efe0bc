"""Linux only: see Apple USB devices come and go through udev, and speak up when usbmuxd is absent.

usbmuxd's Listen stream is how rollkeeper learns about phones, on Linux and macOS alike. Its one
blind spot is usbmuxd itself: when it is not installed or not running, a plugged-in phone is
simply never announced and the service would stay silent. udev sees the USB device regardless,
so on Linux the service watches for Apple devices (USB vendor 05ac) and, when an iPhone/iPad
appears while usbmuxd stays unreachable for a few seconds, logs an error and notifies the user
with the exact fix. When usbmuxd answers, udev is worth only a debug line.

On macOS this module is not used, by design: usbmuxd is part of the system there. pyudev is
imported lazily so that importing this module never fails on a machine without libudev.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import structlog

from rollkeeper.device.udev_records import (
    APPLE_VENDOR_ID,
    MOBILE_PRODUCT_ID_RANGE,
    AppleUsbEvent,
    UsbmuxInterfaceEvent,
    apple_usb_event_from_udev,
    usbmux_interface_event,
)
from rollkeeper.device.usbmuxd_address import (
    DEFAULT_USBMUXD_SOCKET,
    USBMUXD_ADDRESS_VARIABLE,
    parse_usbmuxd_address,
    resolve_usbmuxd_address,
    usbmuxd_fix_text,
    usbmuxd_reachable,
)

__all__ = [
    "APPLE_VENDOR_ID",
    "DEFAULT_USBMUXD_SOCKET",
    "MOBILE_PRODUCT_ID_RANGE",
    "USBMUXD_ADDRESS_VARIABLE",
    "AppleUsbEvent",
    "AppleUsbWatcher",
    "UsbmuxInterfaceEvent",
    "UsbmuxdGuard",
    "UsbmuxdWatchdog",
    "apple_usb_event_from_udev",
    "parse_usbmuxd_address",
    "resolve_usbmuxd_address",
    "usbmuxd_fix_text",
    "usbmuxd_reachable",
]

log = structlog.get_logger(__name__)

#: How long an Apple device may wait for usbmuxd before the user is told. usbmuxd is usually
#: started by its own udev rule when the phone appears, so it needs a moment.
DEFAULT_GRACE_SECONDS = 5.0
DEFAULT_POLL_INTERVAL_SECONDS = 0.25


class AppleUsbWatcher:
    """Watches udev for Apple USB devices and calls ``on_event`` for each add and remove.

    ``on_interface`` (optional) hears about phones' usbmux interfaces the same way
    (:mod:`rollkeeper.device.udev_interfaces`): what says a phone is there for usbmuxd to serve.
    pyudev's monitor runs in its own daemon thread: the callbacks are called from that thread,
    so hand events to an asyncio loop with ``loop.call_soon_threadsafe``. An exception in a
    callback is logged and the watcher carries on.
    """

    def __init__(
        self,
        on_event: Callable[[AppleUsbEvent], None],
        on_interface: Callable[[UsbmuxInterfaceEvent], None] | None = None,
    ) -> None:
        self._on_event = on_event
        self._on_interface = on_interface
        self._observer: Any = None
        self._monitor: Any = None

    def start(self) -> None:
        """Start listening. Events that happen after this returns are delivered."""
        if self._observer is not None:
            return
        import pyudev  # lazily: Linux only, and libudev may be missing elsewhere

        context = pyudev.Context()
        monitor = pyudev.Monitor.from_netlink(context)
        # Whole devices for on_event; their interfaces only matter when on_interface listens.
        if self._on_interface is None:
            monitor.filter_by(subsystem="usb", device_type="usb_device")
        else:
            monitor.filter_by(subsystem="usb")
        # Enable receiving before returning, so that no event between start() and the
        # thread's first poll is lost.
        monitor.start()
        observer = pyudev.MonitorObserver(
            monitor, callback=self._handle_device, name="rollkeeper-udev"
        )
        observer.start()
        self._monitor = monitor
        self._observer = observer
        log.debug("udev_watch_started")

    def stop(self) -> None:
        """Stop listening and wait for the watcher thread to end."""
        observer, self._observer = self._observer, None
        if observer is None:
            return
        observer.send_stop()
        # Never wait on ourselves: stop() may be called from on_event.
        if observer is not threading.current_thread():
            observer.join()
        log.debug("udev_watch_stopped")

    def present_devices(self) -> list[AppleUsbEvent]:
        """The Apple devices plugged in right now, as ``add`` events (udev reports only changes,
        so a phone already attached when the service starts is found this way)."""
        import pyudev

        context = pyudev.Context()
        events = []
        for device in context.list_devices(subsystem="usb", DEVTYPE="usb_device"):
            event = _event_from_device("add", device)
            if event is not None:
                events.append(event)
        return events

    def present_interfaces(self) -> list[UsbmuxInterfaceEvent]:
        """The phones' usbmux interfaces present right now, as ``add`` events."""
        import pyudev

        context = pyudev.Context()
        events = []
        for device in context.list_devices(subsystem="usb", DEVTYPE="usb_interface"):
            event = _interface_event_from_device("add", device)
            if event is not None:
                events.append(event)
        return events

    def _handle_device(self, device: Any) -> None:
        try:
            if device.device_type == "usb_interface":
                self._handle_interface(device)
                return
            event = _event_from_device(str(device.action), device)
            if event is None:
                return
            log.debug(
                "apple_usb_device_event",
                action=event.action,
                product_id=event.product_id,
                serial=event.serial,
                sys_path=event.sys_path,
            )
            self._on_event(event)
        except Exception as error:  # the watcher thread must survive a bad handler
            log.exception("udev_event_handler_failed", error=str(error))

    def _handle_interface(self, device: Any) -> None:
        if self._on_interface is None:
            return
        event = _interface_event_from_device(str(device.action), device)
        if event is None:
            return
        log.debug(
            "usbmux_interface_event",
            action=event.action,
            serial=event.serial,
            sys_path=event.sys_path,
        )
        self._on_interface(event)


def _interface_event_from_device(action: str, device: Any) -> UsbmuxInterfaceEvent | None:
    properties = {str(key): str(device.properties[key]) for key in device.properties}
    attributes: dict[str, str] = {}
    serial: str | None = None
    if action != "remove":  # sysfs is gone after a removal: properties only
        for name in ("bInterfaceClass", "bInterfaceSubClass", "bInterfaceProtocol"):
            value = device.attributes.get(name)
            if value is not None:
                attributes[name] = value.decode("ascii", errors="replace").strip()
        parent = device.find_parent("usb", "usb_device")
        if parent is not None:
            serial = parent.properties.get("ID_SERIAL_SHORT")
            if not serial:
                raw = parent.attributes.get("serial")
                serial = raw.decode("ascii", errors="replace").strip() if raw else None
    return usbmux_interface_event(action, properties, attributes, serial, str(device.sys_path))


def _event_from_device(action: str, device: Any) -> AppleUsbEvent | None:
    properties = {str(key): str(device.properties[key]) for key in device.properties}
    attributes: dict[str, str] = {}
    if action != "remove":  # sysfs is gone after a removal: do not even try
        for name in ("idVendor", "idProduct", "serial"):
            value = device.attributes.get(name)
            if value is not None:
                attributes[name] = value.decode("ascii", errors="replace").strip()
    return apple_usb_event_from_udev(action, properties, attributes, str(device.sys_path))


class UsbmuxdWatchdog:
    """Decides what an Apple device appearing means: fine, or "usbmuxd is missing".

    Feed it every :class:`AppleUsbEvent` (:meth:`handle`). When an iPhone/iPad appears, it
    checks in a worker thread whether usbmuxd is reachable, retrying for ``grace_seconds``
    (usbmuxd is often started by the very same plug-in). If usbmuxd answers, that is a debug
    line. If not, it logs ``usbmuxd_unreachable`` at error level and calls
    ``notify(title, body)`` with the fix. It says so once until usbmuxd has been seen again,
    so a phone re-plugged for Trust does not notify twice.

    ``reachable`` is a no-argument check (e.g. ``lambda: usbmuxd_reachable(address, 1.0)``);
    ``on_unreachable`` lets the service record the state for ``rollkeeper status``.
    """

    def __init__(
        self,
        *,
        reachable: Callable[[], bool],
        notify: Callable[[str, str], None],
        address: str,
        grace_seconds: float = DEFAULT_GRACE_SECONDS,
        poll_interval_seconds: float = DEFAULT_POLL_INTERVAL_SECONDS,
        on_unreachable: Callable[[AppleUsbEvent], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reachable = reachable
        self._notify = notify
        self._address = address
        self._grace_seconds = grace_seconds
        self._poll_interval_seconds = poll_interval_seconds
        self._on_unreachable = on_unreachable
        self._clock = clock
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._checker: threading.Thread | None = None
        self._reported_unreachable = False

    def handle(self, event: AppleUsbEvent) -> None:
        """React to one udev event; returns at once (the check runs in a worker thread)."""
        if event.action != "add":
            return
        if not event.is_mobile_device:
            log.debug("apple_usb_device_ignored", product_id=event.product_id)
            return
        with self._lock:
            if self._closed.is_set():
                return
            if self._checker is not None and self._checker.is_alive():
                return  # one check answers for every device that appeared meanwhile
            self._checker = threading.Thread(
                target=self._check, args=(event,), name="rollkeeper-usbmuxd-check", daemon=True
            )
            self._checker.start()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no check is running; True if idle (for an orderly shutdown, and tests)."""
        with self._lock:
            checker = self._checker
        if checker is None:
            return True
        checker.join(timeout)
        return not checker.is_alive()

    def close(self) -> None:
        """Stop a check in progress (without reporting) and refuse new ones."""
        self._closed.set()
        self.wait_idle()

    def _check(self, event: AppleUsbEvent) -> None:
        deadline = self._clock() + self._grace_seconds
        while not self._closed.is_set():
            if self._reachable():
                log.debug(
                    "apple_usb_device_seen",
                    serial=event.serial,
                    product_id=event.product_id,
                    usbmuxd=self._address,
                )
                self._reported_unreachable = False
                return
            if self._clock() >= deadline:
                break
            # Interruptible pacing between connection attempts; close() ends it at once.
            self._closed.wait(self._poll_interval_seconds)
        if self._closed.is_set() or self._reported_unreachable:
            return
        self._reported_unreachable = True
        title, body = usbmuxd_fix_text(self._address)
        log.error(
            "usbmuxd_unreachable",
            serial=event.serial,
            product_id=event.product_id,
            usbmuxd=self._address,
            waited_seconds=self._grace_seconds,
            fix=body,
        )
        if self._on_unreachable is not None:
            self._on_unreachable(event)
        try:
            self._notify(title, body)
        except Exception as error:  # a broken notifier must not hide the log line above
            log.exception("usbmuxd_notification_failed", error=str(error))


class UsbmuxdGuard:
    """The watcher and the watchdog wired together: what the service starts on Linux.

    ``start()`` returns False (and the service simply goes without it) on macOS, or where
    pyudev or libudev cannot be loaded. Apple devices already plugged in when it starts are
    checked too, so a phone attached before the service came up is not missed. ``notify`` is
    called from a worker thread, ``on_interface`` (phones' usbmux interfaces, present ones
    included) from udev's thread.
    """

    def __init__(
        self,
        usbmux_address: str | None,
        notify: Callable[[str, str], None],
        grace_seconds: float = DEFAULT_GRACE_SECONDS,
        on_unreachable: Callable[[AppleUsbEvent], None] | None = None,
        on_interface: Callable[[UsbmuxInterfaceEvent], None] | None = None,
    ) -> None:
        self._on_interface = on_interface
        address = resolve_usbmuxd_address(usbmux_address)
        self.watchdog = UsbmuxdWatchdog(
            reachable=lambda: usbmuxd_reachable(address, timeout=1.0),
            notify=notify,
            address=address,
            grace_seconds=grace_seconds,
            on_unreachable=on_unreachable,
        )
        self.watcher = AppleUsbWatcher(self.watchdog.handle, on_interface)
        self._started = False

    def start(self) -> bool:
        """Start watching; False when udev is not available here (nothing else to do then)."""
        if sys.platform != "linux":
            return False
        try:
            self.watcher.start()
            present = self.watcher.present_devices()
            interfaces = self.watcher.present_interfaces() if self._on_interface else []
        except (ImportError, OSError) as error:
            # No libudev (a minimal container) or no netlink: backups still work via usbmuxd.
            log.info("udev_unavailable", error=str(error))
            return False
        self._started = True
        for event in present:
            self.watchdog.handle(event)
        if self._on_interface is not None:
            for interface in interfaces:
                self._on_interface(interface)
        return True

    def stop(self) -> None:
        """Stop the watcher and any check in progress."""
        if self._started:
            self.watcher.stop()
            self._started = False
        self.watchdog.close()
