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
  (:func:`build_service_parts`), and the notifiers.

Importing this package is cheap: the heavy libraries (pymobiledevice3, APScheduler, watchdog)
are imported inside the functions that build with them, so ``status`` and ``--help`` stay fast.
"""

from __future__ import annotations

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
    scrubber,
    systemd_notifier,
)
from rollkeeper.bootstrap.settings import (
    backup_settings,
    device_backup_settings,
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
)

__all__ = [
    "CONFIG_UNUSABLE",
    "LoadedConfig",
    "ServiceHooks",
    "ServiceParts",
    "acquire_instance_lock",
    "backup_settings",
    "build_service_parts",
    "command_logging",
    "config_or_say_why",
    "device_backup_settings",
    "load_command_config",
    "load_config_leniently",
    "notifier",
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
    "usbmux_address",
]
