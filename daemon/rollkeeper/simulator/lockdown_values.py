"""What the simulated phone's lockdownd reports: GetValue's values, by domain and by session.

Before a session, lockdownd answers only the public keys (what ``ideviceinfo -s`` shows on real
phones); inside one, every default-domain value and the few other domains clients commonly
read. The values follow the phone's :class:`~rollkeeper.simulator.phone.PhoneIdentity` where
it says something (name, model, iOS version); the rest are fixed values shaped like an
iPhone 14 Pro's. Value *types* are those of real phones (go-ios ``ios/rsd_test.go`` and pasted
dumps): ``ProtocolVersion`` and ``DeviceColor`` strings, ``ChipID``/``BoardId``/
``UniqueChipID``/``DieID`` integers, ``TimeZoneOffsetFromUTC``/``TimeIntervalSince1970`` reals,
``SupportedDeviceFamilies`` an array of integers, ``NonVolatileRAM`` a dict of data.

:data:`PHONE_PROFILES` are the phone generations tests run under (``phone_profile(name, ...)``
builds the identity): an older phone with a 40-hex-digit UDID on iOS 15, and current ones on
iOS 18 and on the 26.x version numbers.
"""

from __future__ import annotations

import dataclasses
import os
import time
import uuid
from typing import Any

from rollkeeper.simulator.pairing import device_public_key_pem
from rollkeeper.simulator.phone import PhoneIdentity
from rollkeeper.simulator.runtime import PhoneRuntime

#: Phone generations, by profile name. Sourced: iPhone15,2 / D73AP and the versions 18.4.1,
#: 18.5 and 26.5 (go-ios ``devices.json``), the two UDID shapes (40 hex digits on older
#: phones, 8-16 on A12 and later). Build numbers and the iPhone 7 and 16 Pro model values are
#: plausible, not read off those phones.
PHONE_PROFILES: dict[str, PhoneIdentity] = {
    "iphone-ios15": PhoneIdentity(
        udid="3f6c0d9b2a8e4c1d7f5a9b3e2c8d1f4a6b7c9e0d",
        product_type="iPhone9,1",
        product_version="15.8.3",
        build_version="19H386",
        serial_number="F4GSXXXXHG7F",
        wifi_address="b8:c1:11:2a:3b:4c",
        hardware_model="D10AP",
        hardware_platform="t8010",
        cpu_architecture="arm64",
        chip_id=0x8010,
        board_id=8,
        model_number="MN8X2",
        firmware_version="iBoot-7459.140.15",
        name_before_session=False,
    ),
    "iphone-ios18": PhoneIdentity(
        udid="00008120-001A2B3C4D5E6F70",
        product_type="iPhone15,2",
        product_version="18.5",
        build_version="22F76",
        name_before_session=False,
    ),
    "iphone-ios26": PhoneIdentity(
        udid="00008140-000E2D3A1C4B801E",
        product_type="iPhone17,1",
        product_version="26.5",
        build_version="23F77",
        serial_number="K7QXXXXXXXXX",
        wifi_address="3c:06:30:aa:bb:cc",
        hardware_model="D93AP",
        hardware_platform="t8140",
        chip_id=0x8140,
        board_id=4,
        model_number="MYMC3",
        firmware_version="iBoot-13822.0.196",
        name_before_session=False,
    ),
}


def phone_profile(profile: str, udid: str | None = None, name: str = "iPhone") -> PhoneIdentity:
    """The identity of a phone of generation ``profile``, with its own UDID and name if given.

    :raises KeyError: no such profile (the names are :data:`PHONE_PROFILES`' keys).
    """
    try:
        template = PHONE_PROFILES[profile]
    except KeyError:
        raise KeyError(
            f"no phone profile {profile!r}; known: {', '.join(sorted(PHONE_PROFILES))}"
        ) from None
    return dataclasses.replace(template, udid=udid or template.udid, name=name)


#: Keys lockdownd answers before a session exists (what ``ideviceinfo -s`` shows on real
#: phones); everything else needs StartSession.
PUBLIC_KEYS = frozenset(
    {
        "BasebandCertId",
        "BasebandKeyHashInformation",
        "BasebandSerialNumber",
        "BasebandVersion",
        "BoardId",
        "BuildVersion",
        "ChipID",
        "CPUArchitecture",
        "DeviceClass",
        "DeviceColor",
        "DeviceName",
        "DevicePublicKey",
        "DieID",
        "HardwareModel",
        "HasSiDP",
        "PartitionType",
        "ProductName",
        "ProductType",
        "ProductVersion",
        "ProductionSOC",
        "ProtocolVersion",
        "TelephonyCapability",
        "UniqueChipID",
        "UniqueDeviceID",
        "WiFiAddress",
    }
)


def unique_chip_id(udid: str) -> int:
    """The ECID encoded in a modern UDID (``CHIPID-ECID``), else a stable number from the UDID."""
    digits = udid.replace("-", "")
    if len(digits) == 24:
        try:
            return int(digits[8:], 16)
        except ValueError:
            pass
    return int.from_bytes(uuid.uuid5(uuid.NAMESPACE_OID, udid).bytes[:7], "big")


def _die_id(udid: str) -> int:
    """A stable 64-bit number from the UDID (real phones report their die's id)."""
    return int.from_bytes(uuid.uuid5(uuid.NAMESPACE_URL, udid).bytes[:8], "big") >> 1


def lockdown_values(runtime: PhoneRuntime, *, in_session: bool) -> dict[str, Any]:
    """The default-domain values of the phone (all of them in a session, else the public ones)."""
    state = runtime.state
    identity = state.identity
    values: dict[str, Any] = {
        "ActivationState": "Activated",
        "BasebandVersion": "2.60.01",
        "BluetoothAddress": "a0:b1:c2:d3:e4:f6",
        "BoardId": identity.board_id,
        "BuildVersion": identity.build_version,
        "CPUArchitecture": identity.cpu_architecture,
        "ChipID": identity.chip_id,
        "DeviceClass": identity.device_class,
        "DeviceColor": "1",
        "DeviceName": identity.name,
        "DevicePublicKey": device_public_key_pem(runtime.device_key),
        "DieID": _die_id(identity.udid),
        "FirmwareVersion": identity.firmware_version,
        "HardwareModel": identity.hardware_model,
        "HardwarePlatform": identity.hardware_platform,
        "HasSiDP": True,
        "HostAttached": True,
        "ModelNumber": identity.model_number,
        "NonVolatileRAM": {
            "auto-boot": b"true",
            "backlight-level": b"1481",
            "boot-args": b"",
        },
        "PartitionType": "GUID_partition_scheme",
        "PasswordProtected": state.locked,
        "ProductName": "iPhone OS",
        "ProductType": identity.product_type,
        "ProductVersion": identity.product_version,
        "ProductionSOC": True,
        "ProtocolVersion": "2",
        "RegionInfo": "LL/A",
        "SerialNumber": identity.serial_number,
        "SupportedDeviceFamilies": [1],
        "TelephonyCapability": True,
        "TimeIntervalSince1970": time.time(),
        "TimeZone": "Europe/Berlin",
        "TimeZoneOffsetFromUTC": 3600.0,
        "TrustedHostAttached": bool(runtime.trusted_hosts),
        "UniqueChipID": unique_chip_id(identity.udid),
        "UniqueDeviceID": identity.udid,
        "Uses24HourClock": True,
        "WiFiAddress": identity.wifi_address,
    }
    if in_session:
        return values
    public = PUBLIC_KEYS if identity.name_before_session else PUBLIC_KEYS - {"DeviceName"}
    return {key: value for key, value in values.items() if key in public}


def domain_values(runtime: PhoneRuntime, domain: str) -> dict[str, Any] | None:
    """Values of the few non-default domains clients commonly read, or None if unknown."""
    media_bytes = _folder_bytes(runtime.state.media_root)
    domains: dict[str, dict[str, Any]] = {
        "com.apple.disk_usage": {
            "TotalDiskCapacity": 128_000_000_000,
            "TotalDataCapacity": 110_000_000_000,
            "TotalDataAvailable": max(0, 110_000_000_000 - media_bytes),
            "AmountDataAvailable": max(0, 110_000_000_000 - media_bytes),
            "AmountDataReserved": 200_000_000,
            "CameraUsage": media_bytes,
        },
        "com.apple.mobile.backup": {
            "WillEncrypt": runtime.state.backup.will_encrypt,
            "RequiresEncrypt": False,
        },
        "com.apple.mobile.battery": {
            "BatteryCurrentCapacity": 87,
            "BatteryIsCharging": True,
            "ExternalChargeCapable": True,
            "ExternalConnected": True,
            "FullyCharged": False,
        },
    }
    return domains.get(domain)


def _folder_bytes(root: os.PathLike[str] | str) -> int:
    """Bytes under the media folder (disk usage is only a courtesy value: errors count as 0)."""
    total = 0
    for folder, _subfolders, files in os.walk(root):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                continue
    return total
