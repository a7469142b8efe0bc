"""What udev's records say about Apple devices: the usbmux interface, and a serial's UDID."""

from __future__ import annotations

from rollkeeper.device.udev_records import (
    is_usbmux_interface,
    same_phone,
    udid_from_usb_serial,
    usbmux_interface_event,
)

IPHONE_PRODUCT = {"PRODUCT": "5ac/12a8/1502", "DEVTYPE": "usb_interface"}


def test_a_24_digit_serial_gets_usbmuxds_hyphen_and_a_40_digit_one_stays() -> None:
    """The kernel's 24-digit serial becomes the 8-16 UDID usbmuxd reports; an older phone's
    40-digit serial is its UDID as it is; both spellings name the same phone."""
    assert udid_from_usb_serial("00008110000A1B2C3D4E5F60") == "00008110-000A1B2C3D4E5F60"
    old = "3f6c0d9b2a8e4c1d7f5a9b3e2c8d1f4a6b7c9e0d"
    assert udid_from_usb_serial(old) == old
    assert same_phone("00008110-000A1B2C3D4E5F60", "00008110000a1b2c3d4e5f60")
    assert not same_phone("00008110-000A1B2C3D4E5F60", "00008110-000A1B2C3D4E5F61")


def test_only_apples_class_255_254_2_interface_is_a_usbmux_interface() -> None:
    """The usbmux interface is vendor 05ac with class 255, subclass 254, protocol 2; Apple's other
    interfaces (camera, HID, another vendor-specific one) and other vendors' are not."""
    assert is_usbmux_interface({**IPHONE_PRODUCT, "INTERFACE": "255/254/2"}, {})
    assert not is_usbmux_interface({**IPHONE_PRODUCT, "INTERFACE": "6/1/1"}, {})
    assert not is_usbmux_interface({**IPHONE_PRODUCT, "INTERFACE": "255/253/1"}, {})
    keyboard = {"PRODUCT": "5ac/24f/100", "DEVTYPE": "usb_interface", "INTERFACE": "3/1/1"}
    assert not is_usbmux_interface(keyboard, {})
    other_vendor = {"PRODUCT": "781/5581/100", "INTERFACE": "255/254/2"}
    assert not is_usbmux_interface(other_vendor, {})
    # Without the uevent's INTERFACE, sysfs's attributes decide.
    sysfs = {"bInterfaceClass": "ff", "bInterfaceSubClass": "fe", "bInterfaceProtocol": "02"}
    assert is_usbmux_interface(IPHONE_PRODUCT, sysfs)


def test_an_interface_event_names_the_phone_by_the_udid_usbmuxd_will_report() -> None:
    """An added usbmux interface with its parent's serial names the phone; a whole device record
    is no interface event."""
    event = usbmux_interface_event(
        "add", {**IPHONE_PRODUCT, "INTERFACE": "255/254/2"}, {}, "00008110000A1B2C3D4E5F60", "/s"
    )
    assert event is not None and event.udid == "00008110-000A1B2C3D4E5F60"
    device = {"PRODUCT": "5ac/12a8/1502", "DEVTYPE": "usb_device", "INTERFACE": "255/254/2"}
    assert usbmux_interface_event("add", device, {}, "X", "/d") is None
