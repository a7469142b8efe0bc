"""The "Apple device but no usbmuxd" decision, the usbmuxd probe, and udev event parsing.

The decision is tested with a scripted reachability check and an injected clock (no waiting);
the probe against real sockets. The whole path through pyudev runs under umockdev in
tests/integration/test_udev.py.
"""

from __future__ import annotations

import itertools
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from rollkeeper.device.udev import (
    AppleUsbEvent,
    UsbmuxdWatchdog,
    apple_usb_event_from_udev,
    parse_usbmuxd_address,
    resolve_usbmuxd_address,
    usbmuxd_reachable,
)

IPHONE_ADD = AppleUsbEvent("add", "12a8", "00008030001A2B3C4D5E6F70", "/sys/devices/usb1/1-1")
IPHONE_REMOVE = AppleUsbEvent("remove", "12a8", "00008030001A2B3C4D5E6F70", "/sys/devices/usb1/1-1")
KEYBOARD_ADD = AppleUsbEvent("add", "024f", None, "/sys/devices/usb1/1-2")


def ticking_clock() -> Callable[[], float]:
    """Each reading is one second later: the grace period runs out after a few checks."""
    counter = itertools.count()
    return lambda: float(next(counter))


class Recorder:
    def __init__(self, answers: Iterator[bool]) -> None:
        self.answers = answers
        self.checks = 0
        self.notifications: list[tuple[str, str]] = []
        self.unreachable_events: list[AppleUsbEvent] = []

    def reachable(self) -> bool:
        self.checks += 1
        return next(self.answers)

    def notify(self, title: str, body: str) -> None:
        self.notifications.append((title, body))


def make_watchdog(recorder: Recorder, **overrides: object) -> UsbmuxdWatchdog:
    options: dict[str, object] = {
        "reachable": recorder.reachable,
        "notify": recorder.notify,
        "address": "/var/run/usbmuxd",
        "grace_seconds": 3.0,
        "poll_interval_seconds": 0.0,
        "on_unreachable": recorder.unreachable_events.append,
        "clock": ticking_clock(),
    }
    options.update(overrides)
    return UsbmuxdWatchdog(**options)  # type: ignore[arg-type]


def run_one(watchdog: UsbmuxdWatchdog, event: AppleUsbEvent) -> None:
    watchdog.handle(event)
    assert watchdog.wait_idle(timeout=30)


def test_unreachable_usbmuxd_is_logged_and_notified_once_per_outage() -> None:
    """An iPhone plugged in while usbmuxd stays unreachable past the grace period is logged as an
    error and notified once per outage, with the address and how to install usbmuxd."""
    recorder = Recorder(itertools.repeat(False))
    watchdog = make_watchdog(recorder)

    with capture_logs() as logs:
        run_one(watchdog, IPHONE_ADD)
        # Tapping Trust re-plugs the phone: the same outage must not notify twice.
        run_one(watchdog, IPHONE_REMOVE)
        run_one(watchdog, IPHONE_ADD)

    assert len(recorder.notifications) == 1
    title, body = recorder.notifications[0]
    assert "usbmuxd" in title
    assert "/var/run/usbmuxd" in body and "sudo apt install usbmuxd" in body
    assert recorder.unreachable_events == [IPHONE_ADD]
    errors = [entry for entry in logs if entry["event"] == "usbmuxd_unreachable"]
    assert len(errors) == 1
    assert errors[0]["log_level"] == "error"
    assert errors[0]["serial"] == IPHONE_ADD.serial
    assert recorder.checks > 1  # it retried within the grace period before speaking up


def test_usbmuxd_that_comes_up_within_the_grace_period_is_fine() -> None:
    """A usbmuxd that comes up within the grace period causes no notification, only a debug line."""
    # usbmuxd's own udev rule starts it on the same plug-in: the first checks may fail.
    recorder = Recorder(iter([False, True]))
    watchdog = make_watchdog(recorder, grace_seconds=100.0)

    with capture_logs() as logs:
        run_one(watchdog, IPHONE_ADD)

    assert recorder.notifications == []
    assert [entry["event"] for entry in logs] == ["apple_usb_device_seen"]
    assert logs[0]["log_level"] == "debug"


def test_a_new_outage_after_usbmuxd_was_back_is_reported_again() -> None:
    """Once usbmuxd was back, a fresh outage is notified again: the limit is one per outage."""
    recorder = Recorder(iter([False] * 4 + [True] + [False] * 4))
    watchdog = make_watchdog(recorder)

    run_one(watchdog, IPHONE_ADD)  # outage: reported
    run_one(watchdog, IPHONE_ADD)  # usbmuxd back: fine
    run_one(watchdog, IPHONE_ADD)  # gone again: reported again

    assert len(recorder.notifications) == 2


def test_other_apple_devices_and_removals_are_not_checked() -> None:
    """Other Apple devices and removals cause no check and no notification."""
    recorder = Recorder(itertools.repeat(False))
    watchdog = make_watchdog(recorder)

    run_one(watchdog, KEYBOARD_ADD)
    run_one(watchdog, IPHONE_REMOVE)

    assert recorder.checks == 0
    assert recorder.notifications == []


def test_close_ends_a_check_at_once_without_reporting() -> None:
    """close ends a check in progress at once, without reporting, and a closed watchdog starts no
    new check."""
    started = threading.Event()

    def reachable() -> bool:
        started.set()
        return False

    notifications: list[tuple[str, str]] = []
    watchdog = UsbmuxdWatchdog(
        reachable=reachable,
        notify=lambda title, body: notifications.append((title, body)),
        address="/var/run/usbmuxd",
        grace_seconds=3600.0,
        poll_interval_seconds=3600.0,
    )
    watchdog.handle(IPHONE_ADD)
    assert started.wait(timeout=30)

    watchdog.close()  # would hang for an hour if the pacing wait were not interruptible

    assert watchdog.wait_idle(timeout=0)
    assert notifications == []
    watchdog.handle(IPHONE_ADD)  # closed: no new check
    assert watchdog.wait_idle(timeout=0)


def test_a_failing_notifier_does_not_hide_the_error() -> None:
    """A notifier that raises is logged after the usbmuxd error, which is still logged."""

    def broken_notify(title: str, body: str) -> None:
        raise RuntimeError("no desktop session")

    recorder = Recorder(itertools.repeat(False))
    watchdog = make_watchdog(recorder, notify=broken_notify)

    with capture_logs() as logs:
        run_one(watchdog, IPHONE_ADD)

    assert [entry["event"] for entry in logs] == [
        "usbmuxd_unreachable",
        "usbmuxd_notification_failed",
    ]


# -- the probe, against real sockets ------------------------------------------------------------


@pytest.fixture
def short_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="rk-mux-") as name:
        yield Path(name)


def test_reachable_unix_socket(short_dir: Path) -> None:
    """The probe finds a listening UNIX socket reachable (also written UNIX:path), and a closed or
    missing one unreachable."""
    path = short_dir / "usbmuxd"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))
        server.listen(4)
        assert usbmuxd_reachable(str(path), timeout=5)
        assert usbmuxd_reachable(f"UNIX:{path}", timeout=5)  # libimobiledevice's spelling
    # Closed: the file is still there but nobody listens.
    assert not usbmuxd_reachable(str(path), timeout=5)
    assert not usbmuxd_reachable(str(short_dir / "missing"), timeout=5)


def test_reachable_tcp_address() -> None:
    """The probe finds a listening TCP address reachable, and the same port once closed
    unreachable."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        port = server.getsockname()[1]
        assert usbmuxd_reachable(f"127.0.0.1:{port}", timeout=5)
    assert not usbmuxd_reachable(f"127.0.0.1:{port}", timeout=5)


def test_address_resolution_follows_pymobiledevice3() -> None:
    """The usbmuxd address is the configured one, else USBMUXD_SOCKET_ADDRESS, else
    /var/run/usbmuxd, and parses into UNIX or TCP as pymobiledevice3 does."""
    assert resolve_usbmuxd_address("/tmp/mux", {}) == "/tmp/mux"
    assert resolve_usbmuxd_address(None, {"USBMUXD_SOCKET_ADDRESS": "127.0.0.1:27015"}) == (
        "127.0.0.1:27015"
    )
    assert resolve_usbmuxd_address("", {}) == "/var/run/usbmuxd"
    assert parse_usbmuxd_address("/var/run/usbmuxd") == (socket.AF_UNIX, "/var/run/usbmuxd")
    assert parse_usbmuxd_address("UNIX:/tmp/m") == (socket.AF_UNIX, "/tmp/m")
    assert parse_usbmuxd_address("localhost:27015") == (socket.AF_INET, ("localhost", 27015))


# -- udev properties --------------------------------------------------------------------------


def test_event_from_kernel_product_alone() -> None:
    """A removal carries only properties; the kernel's PRODUCT drops leading zeros."""
    event = apple_usb_event_from_udev(
        "remove", {"PRODUCT": "5ac/12a8/1502", "DEVTYPE": "usb_device"}, {}, "/sys/x"
    )
    assert event == AppleUsbEvent("remove", "12a8", None, "/sys/x")
    assert event.is_mobile_device


def test_event_prefers_udev_ids_and_serial() -> None:
    """udev's vendor, model and serial properties win over the sysfs attributes, the model read in
    lower case."""
    event = apple_usb_event_from_udev(
        "add",
        {"ID_VENDOR_ID": "05ac", "ID_MODEL_ID": "12A8", "ID_SERIAL_SHORT": "abc"},
        {"idVendor": "05ac", "idProduct": "ffff", "serial": "other"},
        "/sys/x",
    )
    assert event == AppleUsbEvent("add", "12a8", "abc", "/sys/x")


def test_event_from_sysfs_attributes_when_properties_are_missing() -> None:
    """Without udev properties the sysfs attributes give the product and the serial."""
    event = apple_usb_event_from_udev(
        "add", {}, {"idVendor": "05ac", "idProduct": "12ab", "serial": "s"}, "/sys/x"
    )
    assert event == AppleUsbEvent("add", "12ab", "s", "/sys/x")


def test_other_vendors_are_not_apple_events() -> None:
    """Devices of other vendors, or without any ids, are not Apple events, and an unknown product is
    not a mobile device."""
    assert apple_usb_event_from_udev("add", {"PRODUCT": "781/5581/100"}, {}, "/sys/x") is None
    assert apple_usb_event_from_udev("add", {}, {}, "/sys/x") is None
    assert not AppleUsbEvent("add", "zz", None, "/sys/x").is_mobile_device
