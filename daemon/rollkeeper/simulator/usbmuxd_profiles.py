"""How particular usbmuxd builds behave: what their Attached records hold, when they show a phone.

A :class:`UsbmuxdProfile` is chosen when the simulator starts (``Simulator(usbmuxd_profile=...)``,
``rollkeeper simulate --usbmuxd-profile``):

* ``generic``: the simulator's own blend (the default): ``USBSerialNumber`` but no ``UDID`` key,
  every phone shown at once. No real build does exactly this.
* ``linux-usbmuxd``: libimobiledevice's usbmuxd (``src/client.c``,
  ``create_device_attached_plist``): the properties are exactly ``ConnectionSpeed``,
  ``ConnectionType``, ``DeviceID``, ``LocationID``, ``ProductID`` and ``SerialNumber`` (the UDID,
  with the hyphen usbmuxd inserts into a 24-digit serial, ``src/usb.c``). A phone is made visible
  only when the preflight (``src/preflight.c``) is done with it: at once when usbmuxd holds a pair
  record the phone accepts (or one it cannot check before its first unlock), only after the
  Trust dialog was accepted otherwise, and never when lockdownd refuses the connection (USB
  Restricted Mode). See :func:`linux_preflight`.
* ``macos-usbmuxd``: also ``UDID`` and ``USBSerialNumber`` (tidevice's ``_usbmux.py`` and its
  tests), and every USB phone listed a second time as a ``Network`` device with the same UDID
  and its own DeviceID, carrying ``NetworkAddress`` data (a sockaddr whose first byte is its
  length; idevice ``usbmuxd/des.rs``).
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from rollkeeper.simulator.pairing import trusted_host_from_record
from rollkeeper.simulator.phone import TrustPolicy
from rollkeeper.simulator.runtime import EventLog, PhoneRuntime

log = structlog.get_logger(__name__)

#: Apple's USB product id of recent iPhones ("iPhone 5/5C/5S/6/SE/7/8/X/XR" in usbmuxd).
IPHONE_PRODUCT_ID = 0x12A8


@dataclass(frozen=True)
class UsbmuxdProfile:
    """What one usbmuxd build puts in its Attached records, and when it announces a phone."""

    name: str
    #: ``UDID`` among the properties (macOS).
    udid_key: bool = False
    #: ``USBSerialNumber`` (the serial without the hyphen) among the USB properties.
    usb_serial_number_key: bool = False
    #: Every USB phone is listed again as a Network device with the same UDID (macOS).
    network_twin: bool = False
    #: A phone is announced only when the preflight is done with it (Linux).
    preflight: bool = False
    #: ``ConnectionSpeed`` of a USB phone, bits per second (480000000 is USB 2).
    connection_speed: int = 480_000_000


USBMUXD_PROFILES: dict[str, UsbmuxdProfile] = {
    "generic": UsbmuxdProfile("generic", usb_serial_number_key=True),
    "linux-usbmuxd": UsbmuxdProfile("linux-usbmuxd", preflight=True),
    "macos-usbmuxd": UsbmuxdProfile(
        "macos-usbmuxd", udid_key=True, usb_serial_number_key=True, network_twin=True
    ),
}


def usbmuxd_profile(name: str) -> UsbmuxdProfile:
    """The profile called ``name``; :raises KeyError: with the known names."""
    try:
        return USBMUXD_PROFILES[name]
    except KeyError:
        raise KeyError(
            f"no usbmuxd profile {name!r}; known: {', '.join(sorted(USBMUXD_PROFILES))}"
        ) from None


def network_address(device_id: int) -> bytes:
    """A ``sockaddr_in`` for 192.0.2.x (a documentation range): libusbmuxd copies it verbatim."""
    address = socket.inet_aton(f"192.0.2.{device_id % 250 + 1}")
    return struct.pack("<BBH4s8x", 16, 2, 0, address)


def attached_properties(
    profile: UsbmuxdProfile, runtime: PhoneRuntime, device_id: int, connection_type: str
) -> dict[str, Any]:
    """The ``Properties`` of one Attached record of a phone, as this usbmuxd build sends them."""
    identity = runtime.state.identity
    properties: dict[str, Any] = {
        "ConnectionType": connection_type,
        "DeviceID": device_id,
        "SerialNumber": identity.udid,
    }
    if profile.udid_key:
        properties["UDID"] = identity.udid
    if connection_type == "USB":
        properties |= {
            "ConnectionSpeed": profile.connection_speed,
            "LocationID": 0x01100000 + device_id,
            "ProductID": IPHONE_PRODUCT_ID,
        }
        if profile.usb_serial_number_key:
            properties["USBSerialNumber"] = identity.udid.replace("-", "")
    else:
        service_name = f"{identity.wifi_address}@fe80::1._apple-mobdev2._tcp.local."
        properties |= {
            "EscapedFullServiceName": service_name,
            "InterfaceIndex": 2,
            "NetworkAddress": network_address(device_id),
        }
    return properties


@dataclass
class PreflightHooks:
    """What the preflight needs from the simulator around it (all called on its loop)."""

    events: EventLog
    #: usbmuxd's pair records by UDID (the preflight reads them, and adds its own).
    pair_records: dict[str, bytes]
    #: Pair the phone with usbmuxd's own host (the record usbmuxd then serves).
    pair_with_usbmuxd_host: Callable[[PhoneRuntime], None]
    #: Announce the phone to clients (Attached).
    announce: Callable[[PhoneRuntime], None]
    #: The phone re-enumerates on USB after Trust (detach, attach with a new DeviceID).
    reenumerate: Callable[[PhoneRuntime], None]


def _trusts_usbmuxd_record(runtime: PhoneRuntime, record: bytes | None) -> bool:
    if record is None:
        return False
    import plistlib

    try:
        host = trusted_host_from_record(plistlib.loads(record))
    except (ValueError, plistlib.InvalidFileException):
        return False
    return host.host_id in runtime.trusted_hosts


async def linux_preflight(runtime: PhoneRuntime, hooks: PreflightHooks) -> None:
    """Linux usbmuxd's preflight of a phone just attached on USB; announces it when done.

    The order of ``src/preflight.c``: lockdownd must answer (USB Restricted Mode refuses: the
    phone is never shown); a pair record the phone accepts shows it at once; a StartSession
    refused with PasswordProtected (before the first unlock) counts as paired and shows it too.
    Otherwise usbmuxd waits for the user: the dialog can be answered only on an unlocked phone
    once it has appeared (``trust_prompt_delay_seconds`` after plug-in). Trust makes usbmuxd
    pair with its own host record, the phone re-enumerates and is then shown as paired; Don't
    Trust leaves it invisible until it is plugged in again.
    """
    state = runtime.state
    udid = runtime.udid
    events = hooks.events
    events.record("preflight_started", udid)
    if state.usb_restricted:
        events.record("preflight_failed", udid, reason="lockdownd refused the connection")
        return
    record = hooks.pair_records.get(udid)
    if _trusts_usbmuxd_record(runtime, record) or (
        record is not None and not state.unlocked_since_boot
    ):
        hooks.announce(runtime)
        events.record("preflight_finished", udid, paired=True)
        return
    if state.trust is TrustPolicy.PAIRED:
        # A phone that trusts every host (the simulator's PAIRED) pairs without a dialog.
        hooks.pair_with_usbmuxd_host(runtime)
        hooks.announce(runtime)
        events.record("preflight_finished", udid, paired=True)
        return
    events.record("preflight_waiting_for_trust", udid)
    await runtime.unlocked.wait()
    loop = asyncio.get_running_loop()
    shown_at = state.plugged_at + state.trust_prompt_delay_seconds
    if shown_at > loop.time():
        # The simulated user taps as soon as the dialog is on the screen.
        await asyncio.sleep(shown_at - loop.time())
    if state.trust is TrustPolicy.DENY:
        events.record("pair_denied", udid, host_id="usbmuxd")
        events.record("preflight_failed", udid, reason="the user denied the trust dialog")
        return
    hooks.pair_with_usbmuxd_host(runtime)
    events.record("preflight_paired", udid)
    log.info("preflight_paired", udid=udid)
    if state.reenumerate_on_trust:
        # The phone comes back under a new DeviceID; that attach's preflight then shows it.
        hooks.reenumerate(runtime)
        return
    hooks.announce(runtime)
    events.record("preflight_finished", udid, paired=True)
