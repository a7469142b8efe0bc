"""rollkeeper's configuration: one TOML file, validated, with every problem pinned to FILE:LINE.

Import everything from here (``from rollkeeper.config import Config, load_config``); the
submodules are the schema (:mod:`.schema`, assembled from the section modules
``*_settings.py`` and :mod:`.field_types`), loading and error mapping (:mod:`.loader`), the
key-position scanner (:mod:`.positions`), platform paths (:mod:`.paths`) and the commented
starter config (:mod:`.template`). The live reloader is :mod:`rollkeeper.config.watch`.
"""

from __future__ import annotations

from rollkeeper.config.errors import ConfigError, ConfigProblem
from rollkeeper.config.loader import (
    ENVIRONMENT_PREFIX,
    environment_overrides,
    load_config,
    parse_config_bytes,
)
from rollkeeper.config.paths import (
    CONFIG_PATH_VARIABLE,
    default_config_path,
    default_state_dir,
    expand_path,
    resolve_config_path,
)
from rollkeeper.config.schema import (
    SECTIONS,
    ArchiveSettings,
    Config,
    DeviceSettings,
    FilterSettings,
    LoggingSettings,
    NotificationSettings,
    ScheduleSettings,
    StateSettings,
)

__all__ = [
    "CONFIG_PATH_VARIABLE",
    "ENVIRONMENT_PREFIX",
    "SECTIONS",
    "ArchiveSettings",
    "Config",
    "ConfigError",
    "ConfigProblem",
    "DeviceSettings",
    "FilterSettings",
    "LoggingSettings",
    "NotificationSettings",
    "ScheduleSettings",
    "StateSettings",
    "default_config_path",
    "default_state_dir",
    "environment_overrides",
    "expand_path",
    "load_config",
    "parse_config_bytes",
    "resolve_config_path",
]
