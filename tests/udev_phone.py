"""Run ``rollkeeper`` under umockdev with a fake iPhone on a fake USB bus, plugged on signal.

``umockdev-wrapper python -m tests.udev_phone SERIAL -- ROLLKEEPER-ARGS`` preloads umockdev (a
fake sysfs and udev netlink for this process only) and runs rollkeeper's own command line in
this process. SIGUSR1 plugs in an Apple keyboard (vendor 05ac, a HID interface only) and an
iPhone (``usb_device`` 05ac:12a8 with USB serial SERIAL, its usbmux interface of class 255,
subclass 254, protocol 2, and its camera interface) as the kernel would announce them; SIGUSR2
removes the iPhone. Signals, not a pipe: umockdev's preload library serializes the file system
calls it traps, so a thread blocked reading a pipe would stall the whole process.

Debian's python3-gi lives in the system's dist-packages; it is appended to ``sys.path`` after
the venv's own packages so nothing else is shadowed (as tests/integration/test_udev.py does).
"""

from __future__ import annotations

import importlib
import signal
import sys
from typing import Any

SYSTEM_DIST_PACKAGES = "/usr/lib/python3/dist-packages"


def _pairs(mapping: dict[str, str]) -> list[str]:
    return [item for pair in mapping.items() for item in pair]


def iphone_device(serial: str) -> tuple[dict[str, str], dict[str, str]]:
    """(sysfs attributes, udev properties) of an iPhone's ``usb_device``."""
    attributes = {"idVendor": "05ac", "idProduct": "12a8", "serial": serial, "product": "iPhone"}
    properties = {
        "DEVTYPE": "usb_device",
        "PRODUCT": "5ac/12a8/1502",
        "ID_VENDOR_ID": "05ac",
        "ID_MODEL_ID": "12a8",
        "ID_SERIAL_SHORT": serial,
    }
    return attributes, properties


def interface(
    class_subclass_protocol: tuple[int, int, int],
) -> tuple[dict[str, str], dict[str, str]]:
    """(sysfs attributes, udev properties) of a ``usb_interface`` of an Apple device."""
    klass, subclass, protocol = class_subclass_protocol
    attributes = {
        "bInterfaceClass": f"{klass:02x}",
        "bInterfaceSubClass": f"{subclass:02x}",
        "bInterfaceProtocol": f"{protocol:02x}",
    }
    properties = {
        "DEVTYPE": "usb_interface",
        "PRODUCT": "5ac/12a8/1502",
        "INTERFACE": f"{klass}/{subclass}/{protocol}",
    }
    return attributes, properties


class FakeBus:
    """The umockdev testbed and the devices on it."""

    def __init__(self, serial: str) -> None:
        sys.path.append(SYSTEM_DIST_PACKAGES)
        # Imported by name: the system's gi has no type information for the venv's mypy.
        gi: Any = importlib.import_module("gi")
        gi.require_version("UMockdev", "1.0")
        umockdev: Any = importlib.import_module("gi.repository.UMockdev")
        self.testbed: Any = umockdev.Testbed.new()
        self.serial = serial
        self.iphone: list[str] = []

    def _add(
        self, name: str, parent: str | None, record: tuple[dict[str, str], dict[str, str]]
    ) -> str:
        attributes, properties = record
        path: str = self.testbed.add_device(
            "usb", name, parent, _pairs(attributes), _pairs(properties)
        )
        return path

    def plug(self) -> None:
        """The iPhone appears, then (usbmuxd configured it) its usbmux interface."""
        device = self._add("1-1", None, iphone_device(self.serial))
        # The usbmux interface, and the PTP camera interface every iPhone also has.
        mux = self._add("1-1:4.1", device, interface((255, 254, 2)))
        camera = self._add("1-1:4.0", device, interface((6, 1, 1)))
        self.iphone = [mux, camera, device]

    def keyboard(self) -> None:
        """An Apple keyboard: vendor 05ac, a HID interface, no usbmux interface."""
        attributes = {"idVendor": "05ac", "idProduct": "024f", "product": "Magic Keyboard"}
        properties = {"DEVTYPE": "usb_device", "PRODUCT": "5ac/24f/100"}
        keyboard = self._add("1-2", None, (attributes, properties))
        hid_attributes, hid_properties = interface((3, 1, 1))
        hid_properties["PRODUCT"] = "5ac/24f/100"
        self._add("1-2:1.0", keyboard, (hid_attributes, hid_properties))

    def unplug(self) -> None:
        """The iPhone's interfaces and device go away."""
        for path in self.iphone:
            self.testbed.uevent(path, "remove")
        self.iphone = []


def main(argv: list[str]) -> int:
    """``SERIAL -- ROLLKEEPER-ARGS``: the fake bus, then rollkeeper in this process."""
    serial, separator, *arguments = argv
    assert separator == "--", "usage: SERIAL -- ROLLKEEPER-ARGS"
    bus = FakeBus(serial)

    def plug(_signal: int, _frame: object) -> None:
        bus.keyboard()
        bus.plug()

    def unplug(_signal: int, _frame: object) -> None:
        bus.unplug()

    signal.signal(signal.SIGUSR1, plug)
    signal.signal(signal.SIGUSR2, unplug)
    from rollkeeper.cli import main as rollkeeper_main

    return rollkeeper_main(arguments)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
