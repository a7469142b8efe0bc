"""What udev's records of Apple USB devices say: the device (vendor, product, serial) and its
usbmux interface, and the UDID a phone's USB serial stands for.

A whole ``usb_device`` is an :class:`AppleUsbEvent` (enough to say "usbmuxd is not running").

usbmuxd talks to a phone through one USB interface: vendor-specific class 255, subclass 254,
protocol 2 (``src/usb.c``: ``INTERFACE_CLASS``/``_SUBCLASS``/``_PROTOCOL``). Matching that
interface, and not Apple's vendor id alone, keeps Apple keyboards, mice and a Mac's internal
devices out: they share vendor 05ac but have no usbmux interface. The interface exists once the
phone runs the USB configuration that holds it (usbmuxd switches to it: "Changing configuration
of device 1-18: 1 -> 4" in its logs), so seeing it means usbmuxd is at work on the phone.

The kernel's uevent of a ``usb_interface`` carries ``INTERFACE=255/254/2`` and the device's
``PRODUCT=5ac/12a8/1502``; the serial is on the parent ``usb_device`` (``ID_SERIAL_SHORT``, or
the sysfs ``serial``). A removal carries the uevent's properties only, which is enough.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

#: Apple's USB vendor id, as udev spells it.
APPLE_VENDOR_ID = "05ac"

#: USB product ids of iPhones, iPads and iPods in normal mode: usbmuxd's own range
#: (PID_RANGE_LOW/PID_RANGE_MAX in its source). Other Apple USB devices (keyboards, a Mac's
#: internal camera or trackpad when Linux runs on a Mac) are none of usbmuxd's business.
MOBILE_PRODUCT_ID_RANGE = range(0x1290, 0x12AF + 1)


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


#: The usbmux interface: (class, subclass, protocol) as the kernel's INTERFACE= spells them.
USBMUX_INTERFACE = "255/254/2"
#: Apple's vendor id as the kernel's PRODUCT= spells it (no leading zero).
APPLE_PRODUCT_PREFIX = "5ac/"
_SYSFS_INTERFACE = {"bInterfaceClass": "ff", "bInterfaceSubClass": "fe", "bInterfaceProtocol": "02"}


@dataclass(frozen=True)
class UsbmuxInterfaceEvent:
    """A phone's usbmux interface appeared (``add``) or went away (``remove``).

    ``serial`` is the phone's USB serial number (None when udev did not say, as on a removal);
    ``sys_path`` names the interface across add and remove.
    """

    action: str
    serial: str | None
    sys_path: str

    @property
    def udid(self) -> str | None:
        """The UDID usbmuxd will report for this phone, when the serial is known."""
        return None if self.serial is None else udid_from_usb_serial(self.serial)


def udid_from_usb_serial(serial: str) -> str:
    """The UDID usbmuxd reports for a USB serial: a 24-digit serial gets the hyphen after its
    eighth digit (usbmuxd ``src/usb.c``), a 40-digit one is the UDID as it is."""
    serial = serial.strip()
    if len(serial) == 24 and "-" not in serial:
        return f"{serial[:8]}-{serial[8:]}"
    return serial


def same_phone(first: str, second: str) -> bool:
    """Whether a UDID and a serial (either spelling) name the same phone."""
    return first.replace("-", "").casefold() == second.replace("-", "").casefold()


def is_usbmux_interface(properties: Mapping[str, str], attributes: Mapping[str, str]) -> bool:
    """Whether udev's record of a ``usb_interface`` is an Apple device's usbmux interface."""
    product = properties.get("PRODUCT", "").lower()
    if not product.startswith(APPLE_PRODUCT_PREFIX):
        return False
    interface = properties.get("INTERFACE")
    if interface is not None:
        return interface == USBMUX_INTERFACE
    return all(
        attributes.get(name, "").lower() == value for name, value in _SYSFS_INTERFACE.items()
    )


def usbmux_interface_event(
    action: str,
    properties: Mapping[str, str],
    attributes: Mapping[str, str],
    parent_serial: str | None,
    sys_path: str,
) -> UsbmuxInterfaceEvent | None:
    """The event for a ``usb_interface`` udev record, or None when it is no usbmux interface."""
    if properties.get("DEVTYPE", "usb_interface") != "usb_interface":
        return None
    if not is_usbmux_interface(properties, attributes):
        return None
    return UsbmuxInterfaceEvent(action=action, serial=parent_serial or None, sys_path=sys_path)
