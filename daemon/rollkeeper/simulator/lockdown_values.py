"""What the simulated phone's lockdownd reports: GetValue's values, by domain and by session.

Before a session, lockdownd answers only the public keys (what ``ideviceinfo -s`` shows on real
phones); inside one, every default-domain value and the few other domains clients commonly
read. The values follow the phone's :class:`~rollkeeper.simulator.phone.PhoneIdentity` where
it says something (name, model, iOS version); the rest are fixed values shaped like an
iPhone 14 Pro's.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from rollkeeper.simulator.pairing import device_public_key_pem
from rollkeeper.simulator.runtime import PhoneRuntime

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


def lockdown_values(runtime: PhoneRuntime, *, in_session: bool) -> dict[str, Any]:
    """The default-domain values of the phone (all of them in a session, else the public ones)."""
    state = runtime.state
    identity = state.identity
    values: dict[str, Any] = {
        "ActivationState": "Activated",
        "BasebandVersion": "2.60.01",
        "BluetoothAddress": "a0:b1:c2:d3:e4:f6",
        "BoardId": 12,
        "BuildVersion": identity.build_version,
        "CPUArchitecture": "arm64e",
        "ChipID": 33056,
        "DeviceClass": identity.device_class,
        "DeviceColor": "1",
        "DeviceName": identity.name,
        "DevicePublicKey": device_public_key_pem(runtime.device_key),
        "FirmwareVersion": "iBoot-10151.122.1",
        "HardwareModel": "D73AP",
        "HardwarePlatform": "t8120",
        "HasSiDP": True,
        "HostAttached": True,
        "ModelNumber": "MQ0G3",
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
        "TimeZone": "Europe/Berlin",
        "TrustedHostAttached": bool(runtime.trusted_hosts),
        "UniqueChipID": unique_chip_id(identity.udid),
        "UniqueDeviceID": identity.udid,
        "Uses24HourClock": True,
        "WiFiAddress": identity.wifi_address,
    }
    if in_session:
        return values
    return {key: value for key, value in values.items() if key in PUBLIC_KEYS}


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
