"""rollkeeper's configuration: one TOML file, validated, with every problem pinned to FILE:LINE.

Import everything from here (``from rollkeeper.config import Config, load_config``); the
submodules are the schema (:mod:`.schema`, assembled from the section modules
``*_settings.py`` and :mod:`.field_types`), loading and error mapping (:mod:`.loader`), the
key-position scanner (:mod:`.positions`), platform paths (:mod:`.paths`) and the commented
starter config (:mod:`.template`). The live reloader is :mod:`rollkeeper.config.watch`.

The names are imported lazily: ``rollkeeper.config.paths`` (pure, no pydantic) can be used
without paying for the schema, which only the names that need it import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rollkeeper.config.errors import (
        ConfigError,
        ConfigProblem,
    )
    from rollkeeper.config.loader import (
        load_config,
        parse_config_bytes,
    )
    from rollkeeper.config.overrides import (
        ENVIRONMENT_PREFIX,
        environment_overrides,
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
        OffsiteSettings,
        ScheduleSettings,
        StateSettings,
    )

#: Where each name lives: imported on first use (PEP 562), so importing this package
#: costs nothing until a name is used.
_HOMES: dict[str, str] = {
    "ConfigError": "rollkeeper.config.errors",
    "ConfigProblem": "rollkeeper.config.errors",
    "ENVIRONMENT_PREFIX": "rollkeeper.config.overrides",
    "environment_overrides": "rollkeeper.config.overrides",
    "load_config": "rollkeeper.config.loader",
    "parse_config_bytes": "rollkeeper.config.loader",
    "CONFIG_PATH_VARIABLE": "rollkeeper.config.paths",
    "default_config_path": "rollkeeper.config.paths",
    "default_state_dir": "rollkeeper.config.paths",
    "expand_path": "rollkeeper.config.paths",
    "resolve_config_path": "rollkeeper.config.paths",
    "SECTIONS": "rollkeeper.config.schema",
    "ArchiveSettings": "rollkeeper.config.schema",
    "Config": "rollkeeper.config.schema",
    "DeviceSettings": "rollkeeper.config.schema",
    "FilterSettings": "rollkeeper.config.schema",
    "LoggingSettings": "rollkeeper.config.schema",
    "NotificationSettings": "rollkeeper.config.schema",
    "OffsiteSettings": "rollkeeper.config.schema",
    "ScheduleSettings": "rollkeeper.config.schema",
    "StateSettings": "rollkeeper.config.schema",
}

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
    "OffsiteSettings",
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


def __getattr__(name: str) -> Any:
    """Import a name from its submodule the first time it is asked for."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
