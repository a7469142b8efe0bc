"""The ``[device_backup]`` section: full device backups (mobilebackup2) as snapshots.

Off by default: a device backup is everything on the phone (apps' data, messages, settings),
it takes disk, and from iOS 16.1 the phone asks for its passcode before each one, so it only
runs when the user is there (right after a plug-in, or on command).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field, ValidationInfo

from rollkeeper.config.field_types import (
    Section,
    StrictFlag,
    StrictNumber,
    StrictText,
    StrictWhole,
    expand_path_value,
)

#: The folder made next to the archive folder when ``path`` is empty.
DEFAULT_FOLDER_NAME = "rollkeeper-device-backups"


def _validate_path(value: str, info: ValidationInfo) -> str:
    if not value:
        return value
    return str(expand_path_value(value, info))


class DeviceBackupSettings(Section):
    section_help = (
        'Full device backups (what Finder\'s "Back Up Now" makes), kept as point-in-time snapshots.'
    )

    enabled: StrictFlag = Field(
        default=False,
        description=(
            "Make a full backup of the phone (apps' data, messages, settings, and the camera "
            "roll unless iCloud Photos is on) after the photo import, at most every "
            "every_hours. From iOS 16.1 the phone asks for its passcode before each one."
        ),
    )
    path: Annotated[StrictText, AfterValidator(_validate_path)] = Field(
        default="",
        description=(
            'Where the snapshots go ("" = a rollkeeper-device-backups folder next to the '
            "archive folder, on the same disk). It must be outside the archive folder."
        ),
    )
    every_hours: StrictNumber = Field(
        default=24.0,
        gt=0,
        allow_inf_nan=False,
        description=(
            "The least time between two device backups of one phone: the photo import runs "
            "at every plug-in, the device backup at most this often."
        ),
    )
    keep: StrictWhole = Field(
        default=7,
        ge=1,
        description=("Snapshots kept per phone; the oldest go only after a new one has completed."),
    )


def device_backup_root(settings: DeviceBackupSettings, archive_path: Path) -> Path:
    """The folder snapshots go in; ValueError if it is inside the archive folder."""
    root = Path(settings.path) if settings.path else archive_path.parent / DEFAULT_FOLDER_NAME
    resolved_root = root.expanduser().resolve()
    resolved_archive = archive_path.expanduser().resolve()
    if resolved_root == resolved_archive or resolved_archive in resolved_root.parents:
        raise ValueError(
            f"[device_backup] path {root} is inside the archive folder {archive_path}: "
            "device backups are not photos; put them beside the archive"
        )
    return root
