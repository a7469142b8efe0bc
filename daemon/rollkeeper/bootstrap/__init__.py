"""The composition root: config in, adapters and settings out. Nothing else builds adapters.

The service and every command get what they work with from here, built from one
:class:`~rollkeeper.config.Config`; tests use the same functions with a temporary config, so
what runs in a test is what runs for the user.

* :mod:`.command_config` — the config a command runs with, and the one way a broken config is
  told (:func:`load_command_config`; :func:`load_config_leniently` for ``status``/``history``,
  which must show the state even then); :func:`command_logging`.
* :mod:`.settings` — what the importer (:func:`backup_settings`), the phone session
  (:func:`session_settings`) and the scheduler (:func:`service_settings`) take from the config.
* :mod:`.state` — the state database: the service's store under the single-instance lock
  (:func:`acquire_instance_lock`, :func:`open_state`), read-only stores for the commands that
  only read (:func:`open_state_read_only`), and stores for the writers that may run beside the
  service (:func:`open_state_for_writing`: ``verify``, ``adopt``, the scrub's thread).
* :mod:`.service_parts` — every part of the running service, wired, none started
  (:func:`build_service_parts`), the notifiers, and the status page (:func:`web_server`).

Importing this package is cheap: the heavy libraries (pymobiledevice3, APScheduler, watchdog)
are imported inside the functions that build with them, so ``status`` and ``--help`` stay fast.

The names are imported lazily, each from its submodule on first use, so a command pays only
for the parts it uses.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rollkeeper.bootstrap.archive import archive_availability, archive_guard
    from rollkeeper.bootstrap.command_config import (
        CONFIG_UNUSABLE,
        LoadedConfig,
        command_logging,
        config_or_say_why,
        load_command_config,
        load_config_leniently,
    )
    from rollkeeper.bootstrap.service_parts import (
        ServiceHooks,
        ServiceParts,
        build_service_parts,
        notifier,
        offsite_job,
        scrubber,
        systemd_notifier,
        web_server,
    )
    from rollkeeper.bootstrap.settings import (
        backup_settings,
        device_backup_settings,
        offsite_plan,
        service_settings,
        session_recorder,
        session_settings,
        usbmux_address,
    )
    from rollkeeper.bootstrap.state import (
        acquire_instance_lock,
        open_state,
        open_state_for_writing,
        open_state_read_only,
        scrub_report_path,
        state_lock_path,
        state_path,
        thumbnail_cache_path,
    )

#: Where each name lives: imported on first use (PEP 562), so importing this package
#: costs nothing until a name is used.
_HOMES: dict[str, str] = {
    "archive_availability": "rollkeeper.bootstrap.archive",
    "archive_guard": "rollkeeper.bootstrap.archive",
    "CONFIG_UNUSABLE": "rollkeeper.bootstrap.command_config",
    "LoadedConfig": "rollkeeper.bootstrap.command_config",
    "command_logging": "rollkeeper.bootstrap.command_config",
    "config_or_say_why": "rollkeeper.bootstrap.command_config",
    "load_command_config": "rollkeeper.bootstrap.command_config",
    "load_config_leniently": "rollkeeper.bootstrap.command_config",
    "ServiceHooks": "rollkeeper.bootstrap.service_parts",
    "ServiceParts": "rollkeeper.bootstrap.service_parts",
    "build_service_parts": "rollkeeper.bootstrap.service_parts",
    "notifier": "rollkeeper.bootstrap.service_parts",
    "offsite_job": "rollkeeper.bootstrap.service_parts",
    "scrubber": "rollkeeper.bootstrap.service_parts",
    "systemd_notifier": "rollkeeper.bootstrap.service_parts",
    "web_server": "rollkeeper.bootstrap.service_parts",
    "backup_settings": "rollkeeper.bootstrap.settings",
    "device_backup_settings": "rollkeeper.bootstrap.settings",
    "offsite_plan": "rollkeeper.bootstrap.settings",
    "service_settings": "rollkeeper.bootstrap.settings",
    "session_recorder": "rollkeeper.bootstrap.settings",
    "session_settings": "rollkeeper.bootstrap.settings",
    "usbmux_address": "rollkeeper.bootstrap.settings",
    "acquire_instance_lock": "rollkeeper.bootstrap.state",
    "open_state": "rollkeeper.bootstrap.state",
    "open_state_for_writing": "rollkeeper.bootstrap.state",
    "open_state_read_only": "rollkeeper.bootstrap.state",
    "scrub_report_path": "rollkeeper.bootstrap.state",
    "state_lock_path": "rollkeeper.bootstrap.state",
    "state_path": "rollkeeper.bootstrap.state",
    "thumbnail_cache_path": "rollkeeper.bootstrap.state",
}

__all__ = [
    "CONFIG_UNUSABLE",
    "LoadedConfig",
    "ServiceHooks",
    "ServiceParts",
    "acquire_instance_lock",
    "archive_availability",
    "archive_guard",
    "backup_settings",
    "build_service_parts",
    "command_logging",
    "config_or_say_why",
    "device_backup_settings",
    "load_command_config",
    "load_config_leniently",
    "notifier",
    "offsite_job",
    "offsite_plan",
    "open_state",
    "open_state_for_writing",
    "open_state_read_only",
    "scrub_report_path",
    "scrubber",
    "service_settings",
    "session_recorder",
    "session_settings",
    "state_lock_path",
    "state_path",
    "systemd_notifier",
    "thumbnail_cache_path",
    "usbmux_address",
    "web_server",
]


def __getattr__(name: str) -> Any:
    """Import a name from its submodule the first time it is asked for."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
