"""What a recording keeps of a phone's names and values, and what it replaces."""

from __future__ import annotations

from rollkeeper.device.redaction import (
    NameRedactor,
    redact_lockdown_values,
    udid_stand_in,
)


def test_names_keep_their_shape_and_their_photo_but_not_their_number_or_words() -> None:
    """A name keeps its length, extension, camera prefix and Photos markers; its number is
    renumbered per folder, consistently (a Live Photo and its edit stay one photo), and any
    other letters (a name someone typed) become x."""
    names = NameRedactor()
    assert names.path("/DCIM/100APPLE/IMG_4711.HEIC") == "/DCIM/100APPLE/IMG_0001.HEIC"
    assert names.path("/DCIM/100APPLE/IMG_4711.MOV") == "/DCIM/100APPLE/IMG_0001.MOV"
    assert names.path("/DCIM/100APPLE/IMG_E4711.HEIC") == "/DCIM/100APPLE/IMG_E0001.HEIC"
    assert names.path("/DCIM/100APPLE/IMG_4712.JPG") == "/DCIM/100APPLE/IMG_0002.JPG"
    assert names.path("/DCIM/100APPLE/Anna birthday 2.jpg") == "/DCIM/100APPLE/Xxxx xxxxxxxx 3.jpg"
    # Folders of the camera roll and of SD-card imports keep their pattern; numbering restarts
    # in each folder.
    assert names.path("/DCIM/101IMPRT/DSC_4711.NEF") == "/DCIM/101IMPRT/DSC_0001.NEF"
    assert names.path("/DCIM/202401__/IMG_0099.HEIC") == "/DCIM/202401__/IMG_0001.HEIC"


def test_lockdown_values_keep_the_model_and_drop_the_owner() -> None:
    """Model and software values stay; the name, serial, addresses and keys are reduced to their
    type and length; the UDID becomes a stand-in of the same shape."""
    udid = "00008140-000E2D3A1C4B801E"
    values: dict[str, object] = {
        "ProductType": "iPhone17,1",
        "ProductVersion": "26.5",
        "DeviceName": "Ana's iPhone",
        "SerialNumber": "K7QX12345678",
        "WiFiAddress": "3c:06:30:aa:bb:cc",
        "DevicePublicKey": b"-----BEGIN RSA PUBLIC KEY-----",
        "UniqueChipID": 1234567,
        "UniqueDeviceID": udid,
    }
    stand_in = udid_stand_in(udid)

    redacted = redact_lockdown_values(values, stand_in)

    assert redacted["ProductType"] == "iPhone17,1" and redacted["ProductVersion"] == "26.5"
    assert redacted["DeviceName"] == {"redacted": {"type": "str", "length": 12}}
    assert redacted["DevicePublicKey"] == {"redacted": {"type": "bytes", "length": 30}}
    assert redacted["UniqueChipID"] == {"redacted": {"type": "int"}}
    assert redacted["UniqueDeviceID"] == "00000000-0000000000000001"
    assert "Ana" not in repr(redacted) and "K7QX" not in repr(redacted)
    old = "3f6c0d9b2a8e4c1d7f5a9b3e2c8d1f4a6b7c9e0d"
    assert udid_stand_in(old, 2) == "0" * 39 + "2"
