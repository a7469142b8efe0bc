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

import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

log = structlog.get_logger(__name__)

#: Apple's USB vendor id, as udev spells it.
APPLE_VENDOR_ID = "05ac"

#: USB product ids of iPhones, iPads and iPods in normal mode: usbmuxd's own range
#: (PID_RANGE_LOW/PID_RANGE_MAX in its source). Other Apple USB devices (keyboards, a Mac's
#: internal camera or trackpad when Linux runs on a Mac) are none of usbmuxd's business.
MOBILE_PRODUCT_ID_RANGE = range(0x1290, 0x12AF + 1)

#: Where usbmuxd listens when nothing else is said (the same default as pymobiledevice3's).
DEFAULT_USBMUXD_SOCKET = "/var/run/usbmuxd"
USBMUXD_ADDRESS_VARIABLE = "USBMUXD_SOCKET_ADDRESS"

#: How long an Apple device may wait for usbmuxd before the user is told. usbmuxd is usually
#: started by its own udev rule when the phone appears, so it needs a moment.
DEFAULT_GRACE_SECONDS = 5.0
DEFAULT_POLL_INTERVAL_SECONDS = 0.25


@dataclass(frozen=True)
class AppleUsbEvent:
    """An Apple USB device was plugged in (``action == "add"``) or out (``"remove"``).

    ``product_id`` is four lowercase hex digits (``"12a8"``). ``serial`` is the USB serial
    number, which for an iPhone is its UDID (without the dash on recent models); it is ``None``
    when udev did not record one. ``sys_path`` identifies the device across add and remove.
    """

    action: str
    product_id: str
    serial: str | None
    sys_path: str

    @property
    def is_mobile_device(self) -> bool:
        """True for an iPhone, iPad or iPod (a device usbmuxd would serve)."""
        try:
            return int(self.product_id, 16) in MOBILE_PRODUCT_ID_RANGE
        except ValueError:
            return False


def apple_usb_event_from_udev(
    action: str, properties: Mapping[str, str], attributes: Mapping[str, str], sys_path: str
) -> AppleUsbEvent | None:
    """Build an event from a udev device's properties, or ``None`` if it is not an Apple device.

    Properties are read first because they survive a removal (udev sends them with the
    ``remove`` event, when the sysfs attributes are already gone): ``ID_VENDOR_ID`` and
    ``ID_MODEL_ID`` from udev's usb_id builtin, else the kernel's ``PRODUCT=5ac/12a8/1502``.
    The sysfs attributes ``idVendor``/``idProduct``/``serial`` are the last resort.
    """
    vendor_id, product_id = _ids_from_properties(properties)
    if vendor_id is None:
        vendor_id = attributes.get("idVendor")
    if product_id is None:
        product_id = attributes.get("idProduct")
    if vendor_id is None or vendor_id.lower() != APPLE_VENDOR_ID or product_id is None:
        return None
    serial = properties.get("ID_SERIAL_SHORT") or attributes.get("serial") or None
    return AppleUsbEvent(
        action=action, product_id=product_id.lower(), serial=serial, sys_path=sys_path
    )


def _ids_from_properties(properties: Mapping[str, str]) -> tuple[str | None, str | None]:
    vendor_id = properties.get("ID_VENDOR_ID")
    product_id = properties.get("ID_MODEL_ID")
    if vendor_id and product_id:
        return vendor_id, product_id
    product = properties.get("PRODUCT", "")
    parts = product.split("/")
    if len(parts) >= 2 and all(parts[:2]):
        return parts[0].zfill(4), parts[1].zfill(4)
    return None, None


class AppleUsbWatcher:
    """Watches udev for Apple USB devices and calls ``on_event`` for each add and remove.

    pyudev's monitor runs in its own daemon thread: ``on_event`` is called from that thread,
    so hand events to an asyncio loop with ``loop.call_soon_threadsafe``. An exception in
    ``on_event`` is logged and the watcher carries on.
    """

    def __init__(self, on_event: Callable[[AppleUsbEvent], None]) -> None:
        self._on_event = on_event
        self._observer: Any = None
        self._monitor: Any = None

    def start(self) -> None:
        """Start listening. Events that happen after this returns are delivered."""
        if self._observer is not None:
            return
        import pyudev  # lazily: Linux only, and libudev may be missing elsewhere

        context = pyudev.Context()
        monitor = pyudev.Monitor.from_netlink(context)
        # Whole devices only: a phone's USB interfaces would otherwise repeat each event.
        monitor.filter_by(subsystem="usb", device_type="usb_device")
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

    def _handle_device(self, device: Any) -> None:
        try:
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


def _event_from_device(action: str, device: Any) -> AppleUsbEvent | None:
    properties = {str(key): str(device.properties[key]) for key in device.properties}
    attributes: dict[str, str] = {}
    if action != "remove":  # sysfs is gone after a removal: do not even try
        for name in ("idVendor", "idProduct", "serial"):
            value = device.attributes.get(name)
            if value is not None:
                attributes[name] = value.decode("ascii", errors="replace").strip()
    return apple_usb_event_from_udev(action, properties, attributes, str(device.sys_path))


def usbmuxd_reachable(address: str | None, timeout: float) -> bool:
    """True when something accepts a connection at usbmuxd's address within ``timeout`` seconds.

    ``address`` follows pymobiledevice3: ``host:port`` is TCP, anything else a UNIX socket
    path; libimobiledevice's ``UNIX:/path`` spelling is accepted too. ``None`` means
    ``$USBMUXD_SOCKET_ADDRESS``, else ``/var/run/usbmuxd``.
    """
    family, target = parse_usbmuxd_address(resolve_usbmuxd_address(address))
    connection = socket.socket(family, socket.SOCK_STREAM)
    connection.settimeout(timeout)
    try:
        connection.connect(target)
    except OSError:
        return False
    finally:
        connection.close()
    return True


def resolve_usbmuxd_address(address: str | None, environ: Mapping[str, str] | None = None) -> str:
    """The address actually used: the given one, else the environment's, else the default."""
    if address:
        return address
    env = os.environ if environ is None else environ
    return env.get(USBMUXD_ADDRESS_VARIABLE) or DEFAULT_USBMUXD_SOCKET


def parse_usbmuxd_address(address: str) -> tuple[socket.AddressFamily, str | tuple[str, int]]:
    """``(family, target)`` for ``socket.connect``; see :func:`usbmuxd_reachable`."""
    if address.startswith("UNIX:"):
        return socket.AF_UNIX, address[len("UNIX:") :]
    if ":" in address:
        host, _, port = address.rpartition(":")
        return socket.AF_INET, (host.strip("[]"), int(port))
    return socket.AF_UNIX, address


def usbmuxd_fix_text(address: str) -> tuple[str, str]:
    """The notification's (title, body): what is wrong and the exact commands that fix it."""
    title = "iPhone plugged in, but usbmuxd is not running"
    body = (
        f"rollkeeper cannot reach usbmuxd at {address}, so it cannot see the phone. "
        "Install and start it: Debian/Ubuntu `sudo apt install usbmuxd`, "
        "Fedora `sudo dnf install usbmuxd`, Arch `sudo pacman -S usbmuxd`; "
        "then unplug and plug the phone in again (its udev rule starts usbmuxd), "
        "or run `sudo systemctl start usbmuxd`. If usbmuxd listens elsewhere, set "
        "[device] usbmux_address in the config."
    )
    return title, body


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
    called from a worker thread.
    """

    def __init__(
        self,
        usbmux_address: str | None,
        notify: Callable[[str, str], None],
        grace_seconds: float = DEFAULT_GRACE_SECONDS,
        on_unreachable: Callable[[AppleUsbEvent], None] | None = None,
    ) -> None:
        address = resolve_usbmuxd_address(usbmux_address)
        self.watchdog = UsbmuxdWatchdog(
            reachable=lambda: usbmuxd_reachable(address, timeout=1.0),
            notify=notify,
            address=address,
            grace_seconds=grace_seconds,
            on_unreachable=on_unreachable,
        )
        self.watcher = AppleUsbWatcher(self.watchdog.handle)
        self._started = False

    def start(self) -> bool:
        """Start watching; False when udev is not available here (nothing else to do then)."""
        if sys.platform != "linux":
            return False
        try:
            self.watcher.start()
            present = self.watcher.present_devices()
        except (ImportError, OSError) as error:
            # No libudev (a minimal container) or no netlink: backups still work via usbmuxd.
            log.info("udev_unavailable", error=str(error))
            return False
        self._started = True
        for event in present:
            self.watchdog.handle(event)
        return True

    def stop(self) -> None:
        """Stop the watcher and any check in progress."""
        if self._started:
            self.watcher.stop()
            self._started = False
        self.watchdog.close()
