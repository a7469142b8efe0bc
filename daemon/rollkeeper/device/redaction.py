"""What a recording of a real phone may keep: names as their shape, values by an allow-list.

A recording made on a real phone (``rollkeeper backup-now --record FILE``) is meant to be
shared, so nothing in it may say whose phone it is or what is in the photos:

* **Names** keep their shape: the folder pattern (``100APPLE``, ``101IMPRT``, ``202401__``), the
  extension, the length, the camera's prefix (``IMG``, ``IMG_E``, ``DSC``...) and which names share
  a number (``IMG_1234.HEIC`` and ``IMG_E1234.HEIC`` stay one photo), but not the numbers
  themselves (renumbered from 1 in each folder) nor any other letters (``x``).
* **Contents** are replaced by their sizes and SHA-256 hashes.
* **Times** (stat times, the moment of each request) are kept: they are what the open questions
  about real phones are about.
* **Lockdown values** are kept only for keys that describe the model and the software
  (:data:`KEPT_LOCKDOWN_KEYS`); every other value is reduced to its type and length, and the
  UDID becomes a stand-in of the same shape.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

#: Lockdown keys whose values describe the model and software, not the owner or the unit.
KEPT_LOCKDOWN_KEYS = frozenset(
    {
        "ActivationState",
        "BuildVersion",
        "CPUArchitecture",
        "DeviceClass",
        "DeviceColor",
        "HardwareModel",
        "HardwarePlatform",
        "HasSiDP",
        "PartitionType",
        "PasswordProtected",
        "ProductName",
        "ProductType",
        "ProductVersion",
        "ProductionSOC",
        "ProtocolVersion",
        "SupportedDeviceFamilies",
        "TelephonyCapability",
        "TrustedHostAttached",
    }
)
#: Letter runs kept in names: cameras' and Photos' own prefixes and markers, never a person's.
KEPT_NAME_WORDS = frozenset(
    {"IMG", "E", "O", "DSC", "DSCF", "MVI", "PXL", "DJI", "GOPR", "FullSizeRender"}
)
#: DCIM folder names kept as they are: ``100APPLE``, ``101IMPRT``, ``202401__`` and the like.
_KEPT_FOLDER = re.compile(r"^(\d{3}[A-Z]{5}|\d{6}_{2}|\d{3}_{5})$")
_RUNS = re.compile(r"[A-Za-z]+|\d+|[^A-Za-z\d]+")
_EXTENSION = re.compile(r"^[A-Za-z0-9]{1,5}$")


def content_summary(data: bytes | bytearray) -> dict[str, Any]:
    """Bytes as a recording keeps them: their size and SHA-256."""
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def value_shape(value: Any) -> dict[str, Any]:
    """A value as a recording keeps an identifying one: its type and length, nothing else."""
    if isinstance(value, bytes | str | list | dict):
        return {"type": type(value).__name__, "length": len(value)}
    return {"type": type(value).__name__}


def udid_stand_in(udid: str, number: int = 1) -> str:
    """A UDID of the same shape (40 hex digits, or 8-16 with the hyphen), all zeros but its
    last digits: ``00000000-0000000000000001``."""
    digits = udid.replace("-", "")
    stand_in = f"{number:0{len(digits)}x}"[-len(digits) :]
    if "-" in udid:
        head = udid.index("-")
        return f"{stand_in[:head]}-{stand_in[head:]}"
    return stand_in


def redact_lockdown_values(values: dict[str, Any], udid_stand_in_text: str) -> dict[str, Any]:
    """Lockdown's values with only :data:`KEPT_LOCKDOWN_KEYS` kept as they are."""
    redacted: dict[str, Any] = {}
    for key, value in sorted(values.items()):
        if key == "UniqueDeviceID":
            redacted[key] = udid_stand_in_text
        elif key in KEPT_LOCKDOWN_KEYS and isinstance(value, str | int | float | bool | list):
            redacted[key] = value
        else:
            redacted[key] = {"redacted": value_shape(value)}
    return redacted


class NameRedactor:
    """Maps a phone's real paths to stand-ins of the same shape, consistently for a recording."""

    def __init__(self) -> None:
        self._paths: dict[str, str] = {"/": "/", "/DCIM": "/DCIM"}
        #: Per folder (stand-in path): real digit runs -> their renumbered stand-ins.
        self._numbers: dict[str, dict[str, str]] = {}

    def path(self, real: str) -> str:
        """The stand-in of a real phone path (``/DCIM/100APPLE/IMG_0001.HEIC``)."""
        known = self._paths.get(real)
        if known is not None:
            return known
        parent, _, name = real.rstrip("/").rpartition("/")
        parent_stand_in = self.path(parent or "/")
        stand_in = parent_stand_in.rstrip("/") + "/" + self.name(parent_stand_in, name)
        self._paths[real] = stand_in
        return stand_in

    def name(self, folder_stand_in: str, name: str) -> str:
        """The stand-in of one name in a folder (named by its own stand-in)."""
        if folder_stand_in == "/DCIM" and _KEPT_FOLDER.match(name):
            return name
        stem, dot, extension = name.rpartition(".")
        if not dot or not stem or not _EXTENSION.match(extension):
            stem, dot, extension = name, "", ""
        numbers = self._numbers.setdefault(folder_stand_in, {})
        pieces = []
        for run in _RUNS.findall(stem):
            if run.isdigit():
                if run not in numbers:
                    numbers[run] = f"{len(numbers) + 1:0{len(run)}d}"[-len(run) :]
                pieces.append(numbers[run])
            elif run.isalpha():
                pieces.append(run if run in KEPT_NAME_WORDS else _letters(run))
            else:
                pieces.append(_other(run))
        return "".join(pieces) + dot + extension


def _letters(run: str) -> str:
    return "".join("X" if character.isupper() else "x" for character in run)


def _other(run: str) -> str:
    # Separators stay (they carry the shape); anything else (control characters, non-ASCII
    # letters of a person's name) becomes "~", one per character.
    return "".join(character if character in "_-. " else "~" for character in run)
