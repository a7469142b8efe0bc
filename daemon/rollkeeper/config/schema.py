"""The config schema: every setting, its type, its default and the words a user reads about it.

The ``description`` of each field is the comment written above it in the starter config
(``rollkeeper config init``) and in ``config.example.toml``, so the words live in one place.
The sections are defined by group (:mod:`.archive_settings`, :mod:`.device_settings`,
:mod:`.schedule_settings`, :mod:`.reporting_settings`, :mod:`.offsite_settings`,
:mod:`.web_settings`) from the building blocks in :mod:`.field_types`; this module assembles them
into :class:`Config`, in the order the starter config lists them, and still exports every name it
did when it held them all.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from rollkeeper.config.archive_settings import ArchiveSettings, validate_layout
from rollkeeper.config.device_backup_settings import DeviceBackupSettings
from rollkeeper.config.device_settings import DeviceSettings, StateSettings
from rollkeeper.config.field_types import (
    AbsolutePath,
    Section,
    StrictFlag,
    StrictNumber,
    StrictText,
    StrictWhole,
    WritableFile,
    WritableFolder,
    folder_problem,
)
from rollkeeper.config.library_settings import LibrarySettings
from rollkeeper.config.offsite_settings import OffsiteSettings
from rollkeeper.config.paths import default_state_dir
from rollkeeper.config.reporting_settings import LoggingSettings, NotificationSettings
from rollkeeper.config.schedule_settings import FilterSettings, ScheduleSettings
from rollkeeper.config.web_settings import WebSettings

__all__ = [
    "SECTIONS",
    "AbsolutePath",
    "ArchiveSettings",
    "Config",
    "DeviceBackupSettings",
    "DeviceSettings",
    "FilterSettings",
    "LibrarySettings",
    "LoggingSettings",
    "NotificationSettings",
    "OffsiteSettings",
    "ScheduleSettings",
    "Section",
    "StateSettings",
    "StrictFlag",
    "StrictNumber",
    "StrictText",
    "StrictWhole",
    "WebSettings",
    "WritableFile",
    "WritableFolder",
    "environment_defaults",
    "folder_problem",
    "validate_layout",
]


class Config(BaseModel):
    """The whole rollkeeper configuration; immutable, so a reload swaps it as one value."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)

    archive: ArchiveSettings = Field(default_factory=ArchiveSettings)
    state: StateSettings = Field(default_factory=StateSettings)
    device: DeviceSettings = Field(default_factory=DeviceSettings)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    filters: FilterSettings = Field(default_factory=FilterSettings)
    notifications: NotificationSettings = Field(default_factory=NotificationSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    device_backup: DeviceBackupSettings = Field(default_factory=DeviceBackupSettings)
    offsite: OffsiteSettings = Field(default_factory=OffsiteSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    library: LibrarySettings = Field(default_factory=LibrarySettings)


#: Section name -> model, in the order the starter config lists them.
SECTIONS: dict[str, type[Section]] = {
    name: field.annotation  # type: ignore[misc]
    for name, field in Config.model_fields.items()
}


def environment_defaults(environ: Mapping[str, str]) -> dict[str, dict[str, Path]]:
    """Defaults that depend on the environment (XDG folders, HOME), for the loader to fill in
    before validation so that ``load_config(..., environ=...)`` never reads ``os.environ``."""
    state_dir = default_state_dir(environ)
    return {
        "state": {"path": state_dir / "state.sqlite3"},
        "device": {"pairing_dir": state_dir / "pairing"},
    }
