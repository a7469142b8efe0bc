"""The udev path under umockdev: pyudev sees a fake Apple USB device come and go.

umockdev's preload library (run through ``umockdev-wrapper``) gives the process a fake sysfs and
a fake udev netlink socket; its GObject API (``UMockdev.Testbed``) adds devices and sends
uevents. The real :class:`AppleUsbWatcher` (real pyudev, real libudev) and the real
:class:`UsbmuxdWatchdog` run inside that process; the usbmuxd they probe is a real UNIX socket
(a listening stand-in owned by the test) or a path where nothing listens.

The scenario runs in a subprocess because umockdev must be preloaded before libudev loads, and
its results come back as one JSON line.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="udev exists on Linux only")

# Debian's python3-gi lives here; the venv's Python 3.11 loads it (same ABI), and the scenario
# appends it to sys.path after the venv's own packages so that nothing else is shadowed.
SYSTEM_DIST_PACKAGES = "/usr/lib/python3/dist-packages"

SCENARIO = r"""
import json, sys, threading
sys.path.append(SYSTEM_DIST_PACKAGES)
import gi
gi.require_version("UMockdev", "1.0")
from gi.repository import UMockdev
from structlog.testing import capture_logs
from rollkeeper.device.udev import AppleUsbWatcher, UsbmuxdWatchdog, usbmuxd_reachable

config = json.loads(sys.argv[1])
CEILING = 30.0  # seconds; a ceiling on waiting for events, never a pacing

testbed = UMockdev.Testbed.new()
events, notifications = [], []
event_arrived = threading.Condition()

def notify(title, body):
    notifications.append({"title": title, "body": body})

watchdog = UsbmuxdWatchdog(
    reachable=lambda: usbmuxd_reachable(config["usbmuxd"], 0.5),
    notify=notify,
    address=config["usbmuxd"],
    grace_seconds=config["grace_seconds"],
    poll_interval_seconds=0.05,
)

def on_event(event):
    with event_arrived:
        events.append(event)
        event_arrived.notify_all()
    watchdog.handle(event)

def wait_for_events(count):
    with event_arrived:
        if not event_arrived.wait_for(lambda: len(events) >= count, timeout=CEILING):
            raise SystemExit(f"only {len(events)} of {count} udev events arrived")

with capture_logs() as logs:
    watcher = AppleUsbWatcher(on_event)
    watcher.start()
    sys_paths = []
    for device in config["devices"]:
        attributes = [item for pair in device["attributes"].items() for item in pair]
        properties = [item for pair in device["properties"].items() for item in pair]
        # add_device announces the device with an "add" uevent, as the kernel would.
        sys_paths.append(testbed.add_device("usb", device["name"], None, attributes, properties))
    wait_for_events(config["expected_apple_events"])
    present = watcher.present_devices()
    # The sysfs entry is still there when umockdev sends "remove"; real udev sends the
    # properties it recorded, which is what the watcher reads for a removal.
    for sys_path in sys_paths:
        testbed.uevent(sys_path, "remove")
    wait_for_events(2 * config["expected_apple_events"])
    if not watchdog.wait_idle(CEILING):
        raise SystemExit("the usbmuxd check did not finish")
    watcher.stop()
    watchdog.close()

print(json.dumps({
    "events": [
        {"action": e.action, "product_id": e.product_id, "serial": e.serial,
         "sys_path": e.sys_path, "mobile": e.is_mobile_device}
        for e in events
    ],
    "present": [e.product_id for e in present],
    "notifications": notifications,
    "logs": [{k: v for k, v in entry.items() if isinstance(v, (str, int, float, bool))}
             for entry in logs],
}))
""".replace("SYSTEM_DIST_PACKAGES", repr(SYSTEM_DIST_PACKAGES))

COLDPLUG_SCENARIO = r"""
import json, sys
sys.path.append(SYSTEM_DIST_PACKAGES)
import gi
gi.require_version("UMockdev", "1.0")
from gi.repository import UMockdev
from structlog.testing import capture_logs
from rollkeeper.device.udev import UsbmuxdGuard

config = json.loads(sys.argv[1])
testbed = UMockdev.Testbed.new()
device = config["devices"][0]
# Plugged in before the service starts: its "add" uevent happened with nobody listening.
testbed.add_device(
    "usb", device["name"], None,
    [item for pair in device["attributes"].items() for item in pair],
    [item for pair in device["properties"].items() for item in pair],
)
notifications = []
with capture_logs() as logs:
    guard = UsbmuxdGuard(
        config["usbmuxd"], lambda title, body: notifications.append(title),
        grace_seconds=config["grace_seconds"],
    )
    started = guard.start()
    if not guard.watchdog.wait_idle(30.0):
        raise SystemExit("the usbmuxd check did not finish")
    guard.stop()
print(json.dumps({
    "started": started,
    "notifications": notifications,
    "logs": [{k: v for k, v in entry.items() if isinstance(v, (str, int, float, bool))}
             for entry in logs],
}))
""".replace("SYSTEM_DIST_PACKAGES", repr(SYSTEM_DIST_PACKAGES))

IPHONE = {
    "name": "1-1",
    "attributes": {
        "idVendor": "05ac",
        "idProduct": "12a8",
        "serial": "00008030001A2B3C4D5E6F70",
        "manufacturer": "Apple Inc.",
        "product": "iPhone",
    },
    # What udev records for a real iPhone (kernel PRODUCT plus usb_id's ID_* properties).
    "properties": {
        "DEVTYPE": "usb_device",
        "PRODUCT": "5ac/12a8/1502",
        "ID_VENDOR_ID": "05ac",
        "ID_MODEL_ID": "12a8",
        "ID_SERIAL_SHORT": "00008030001A2B3C4D5E6F70",
        "BUSNUM": "001",
        "DEVNUM": "007",
    },
}

APPLE_KEYBOARD = {
    "name": "1-2",
    "attributes": {"idVendor": "05ac", "idProduct": "024f", "product": "Magic Keyboard"},
    "properties": {"DEVTYPE": "usb_device", "PRODUCT": "5ac/24f/100"},
}

OTHER_VENDOR_DISK = {
    "name": "1-3",
    "attributes": {"idVendor": "0781", "idProduct": "5581", "product": "USB disk"},
    "properties": {"DEVTYPE": "usb_device", "PRODUCT": "781/5581/100"},
}


def umockdev_unavailable_reason() -> str | None:
    """Why the scenario cannot run here, or None. Checked by really importing, not guessing."""
    if shutil.which("umockdev-wrapper") is None:
        return "umockdev-wrapper not found (Debian package `umockdev`; .ci/run installs it)"
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys; sys.path.append({SYSTEM_DIST_PACKAGES!r}); import gi; "
            "gi.require_version('UMockdev', '1.0'); from gi.repository import UMockdev",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if probe.returncode != 0:
        last_line = (probe.stderr.strip().splitlines() or ["no output"])[-1]
        return (
            "umockdev's GObject bindings do not load in this Python "
            f"(Debian packages `python3-gi gir1.2-umockdev-1.0`): {last_line}"
        )
    return None


@pytest.fixture(scope="module")
def umockdev() -> None:
    reason = umockdev_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture
def short_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="rk-udev-") as name:
        yield Path(name)


@pytest.fixture
def listening_usbmuxd(short_dir: Path) -> Iterator[str]:
    """A UNIX stream socket that accepts connections where usbmuxd's would be."""
    path = short_dir / "usbmuxd"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(16)  # the kernel completes connects into the backlog: no accept loop needed
    yield str(path)
    server.close()


def run_scenario(
    usbmuxd: str,
    devices: list[dict[str, Any]],
    expected_apple_events: int,
    grace: float = 0.5,
    scenario: str = SCENARIO,
) -> dict[str, Any]:
    config = {
        "usbmuxd": usbmuxd,
        "devices": devices,
        "expected_apple_events": expected_apple_events,
        "grace_seconds": grace,
    }
    environment = {**os.environ}
    environment.pop("USBMUXD_SOCKET_ADDRESS", None)
    completed = subprocess.run(
        ["umockdev-wrapper", sys.executable, "-c", scenario, json.dumps(config)],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
    )
    assert completed.returncode == 0, completed.stderr + completed.stdout
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def events_named(result: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [entry for entry in result["logs"] if entry.get("event") == name]


@pytest.mark.usefixtures("umockdev")
def test_iphone_without_usbmuxd_is_an_error_and_a_notification(short_dir: Path) -> None:
    """An iPhone plugged in with no usbmuxd listening is seen through pyudev, coming and going, and
    causes one error and one notification saying how to install and start usbmuxd."""
    missing = str(short_dir / "no-usbmuxd-here")

    result = run_scenario(missing, [IPHONE], expected_apple_events=1)

    assert [(e["action"], e["product_id"], e["serial"]) for e in result["events"]] == [
        ("add", "12a8", "00008030001A2B3C4D5E6F70"),
        # The removal is recognised from udev's properties alone.
        ("remove", "12a8", "00008030001A2B3C4D5E6F70"),
    ]
    assert result["present"] == ["12a8"]
    assert len(result["notifications"]) == 1
    notification = result["notifications"][0]
    assert notification["title"] == "iPhone plugged in, but usbmuxd is not running"
    assert missing in notification["body"]
    assert "sudo apt install usbmuxd" in notification["body"]
    assert "sudo systemctl start usbmuxd" in notification["body"]
    errors = events_named(result, "usbmuxd_unreachable")
    assert len(errors) == 1
    assert errors[0]["log_level"] == "error"
    assert errors[0]["usbmuxd"] == missing
    assert errors[0]["serial"] == "00008030001A2B3C4D5E6F70"
    assert events_named(result, "apple_usb_device_seen") == []


@pytest.mark.usefixtures("umockdev")
def test_iphone_with_usbmuxd_listening_is_only_a_debug_line(listening_usbmuxd: str) -> None:
    """An iPhone plugged in while usbmuxd listens logs one debug line and notifies nothing."""
    result = run_scenario(listening_usbmuxd, [IPHONE], expected_apple_events=1)

    assert [e["action"] for e in result["events"]] == ["add", "remove"]
    assert result["notifications"] == []
    assert events_named(result, "usbmuxd_unreachable") == []
    seen = events_named(result, "apple_usb_device_seen")
    assert len(seen) == 1
    assert seen[0]["log_level"] == "debug"
    assert {entry["log_level"] for entry in result["logs"]} == {"debug"}


@pytest.mark.usefixtures("umockdev")
def test_other_apple_and_foreign_usb_devices_never_alarm(short_dir: Path) -> None:
    """An Apple keyboard and another vendor's disk never raise the alarm: the disk makes no event,
    the keyboard is not a phone."""
    result = run_scenario(
        str(short_dir / "no-usbmuxd-here"),
        [APPLE_KEYBOARD, OTHER_VENDOR_DISK],
        expected_apple_events=1,
    )

    # The disk is not Apple's: no event at all. The keyboard is Apple's but not a phone.
    assert [(e["action"], e["product_id"], e["mobile"]) for e in result["events"]] == [
        ("add", "024f", False),
        ("remove", "024f", False),
    ]
    assert result["notifications"] == []
    assert events_named(result, "usbmuxd_unreachable") == []


@pytest.mark.usefixtures("umockdev")
def test_a_phone_plugged_in_before_the_service_started_is_checked_too(short_dir: Path) -> None:
    """A phone plugged in before the service started is checked at start, and usbmuxd missing raises
    the alarm."""
    missing = str(short_dir / "no-usbmuxd-here")

    result = run_scenario(missing, [IPHONE], 0, scenario=COLDPLUG_SCENARIO)

    assert result["started"] is True
    assert result["notifications"] == ["iPhone plugged in, but usbmuxd is not running"]
    assert len(events_named(result, "usbmuxd_unreachable")) == 1


@pytest.mark.usefixtures("umockdev")
def test_a_phone_plugged_in_before_the_service_with_usbmuxd_up_is_fine(
    listening_usbmuxd: str,
) -> None:
    """A phone plugged in before the service started, with usbmuxd up, logs one debug line and
    notifies nothing."""
    result = run_scenario(listening_usbmuxd, [IPHONE], 0, scenario=COLDPLUG_SCENARIO)

    assert result["started"] is True
    assert result["notifications"] == []
    assert len(events_named(result, "apple_usb_device_seen")) == 1
