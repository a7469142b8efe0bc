"""The ``[state]`` and ``[device]`` sections: rollkeeper's own records, and how it reaches phones.

Both default into the state folder (the SQLite state file, the pairing records), whose place
depends on the platform and on ``XDG_STATE_HOME``: the starter config shows those keys
commented out, and the loader fills them from its environment
(:func:`rollkeeper.config.schema.environment_defaults`).
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, Field, ValidationInfo

from rollkeeper.config.field_types import (
    Section,
    StrictNumber,
    StrictText,
    WritableFile,
    WritableFolder,
    expand_path_value,
)
from rollkeeper.config.paths import default_state_dir


def _validate_usbmux_address(value: str, info: ValidationInfo) -> str:
    if not value:
        return value
    if ":" in value:
        host, _, port = value.rpartition(":")
        if not host or ":" in host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(
                f"{value!r} is neither HOST:PORT nor an absolute socket path (/var/run/usbmuxd)"
            )
        return value
    path = expand_path_value(value, info)
    return str(path)


class StateSettings(Section):
    section_help = "rollkeeper's own records: which files are archived, runs, known phones."
    platform_defaults: ClassVar[dict[str, str]] = {
        "path": "~/.local/state/rollkeeper/state.sqlite3"
    }

    path: WritableFile = Field(
        default_factory=lambda: default_state_dir() / "state.sqlite3",
        description=(
            "The SQLite state file. Default: state.sqlite3 in $XDG_STATE_HOME/rollkeeper "
            "(~/.local/state/rollkeeper) on Linux, ~/Library/Application Support/rollkeeper "
            "on macOS. Keep it off the archive disk if that disk is sometimes unplugged."
        ),
    )


class DeviceSettings(Section):
    section_help = "How rollkeeper reaches phones."
    platform_defaults: ClassVar[dict[str, str]] = {
        "pairing_dir": "~/.local/state/rollkeeper/pairing"
    }

    usbmux_address: Annotated[StrictText, AfterValidator(_validate_usbmux_address)] = Field(
        default="",
        description=(
            "The usbmuxd socket: an absolute path or HOST:PORT. Empty means "
            "$USBMUXD_SOCKET_ADDRESS, else the system's usbmuxd (/var/run/usbmuxd)."
        ),
    )
    pairing_dir: WritableFolder = Field(
        default_factory=lambda: default_state_dir() / "pairing",
        description=(
            "Where the pairing records made when you tap Trust are kept (folder 0700, files "
            "0600). Default: pairing in the state folder (see [state] path)."
        ),
    )
    connection_types: tuple[Literal["USB", "Network"], ...] = Field(
        default=("USB",),
        min_length=1,
        description=('Which connections to back up over: "USB", "Network" (Wi-Fi sync), or both.'),
    )
    unseen_phone_seconds: StrictNumber = Field(
        default=10.0,
        gt=0,
        allow_inf_nan=False,
        description=(
            "Linux: how long an iPhone may be on USB without usbmuxd showing it (its Trust "
            "dialog unanswered, or locked) before you are told to unlock it and tap Trust."
        ),
    )
    pair_timeout_seconds: StrictNumber = Field(
        default=60.0,
        gt=0,
        allow_inf_nan=False,
        description=(
            "How long one pairing attempt waits for you to tap Trust on the phone before "
            "it is retried."
        ),
    )
