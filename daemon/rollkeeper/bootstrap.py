"""The composition root: config in, adapters and settings out. Nothing else builds adapters.

Commands and the service runtime ask this module for a state store, the service settings, the
notifier; tests use the same functions with a temporary config, so what runs in a test is what
runs for the user.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import structlog

from rollkeeper.config import Config
from rollkeeper.device.session import SessionSettings
from rollkeeper.domain.files import MediaKind
from rollkeeper.domain.filters import FileFilter
from rollkeeper.host.permissions import ensure_private_dir
from rollkeeper.host.single_instance import InstanceLock
from rollkeeper.importer.job import BackupSettings
from rollkeeper.service.scheduler import ServiceSettings
from rollkeeper.store import StateDamagedError, StateStore

log = structlog.get_logger("rollkeeper.app")


def usbmux_address(config: Config) -> str | None:
    """The usbmuxd address: the config's, else None (pymobiledevice3 then reads
    ``USBMUXD_SOCKET_ADDRESS`` or uses the OS default)."""
    return config.device.usbmux_address or None


def backup_settings(config: Config) -> BackupSettings:
    """What a backup run needs from the config."""
    filters = config.filters
    return BackupSettings(
        archive_root=Path(config.archive.path),
        layout=config.archive.layout,
        file_filter=FileFilter(
            media_kinds=frozenset(MediaKind(kind) for kind in filters.media_kinds),
            since=filters.since,
            screenshots=filters.screenshots,
        ),
    )


def session_settings(config: Config) -> SessionSettings:
    """How to reach phones."""
    return SessionSettings(
        usbmux_address=usbmux_address(config),
        pairing_dir=Path(config.device.pairing_dir),
    )


def service_settings(config: Config) -> ServiceSettings:
    """Everything the backup service takes from the config."""
    schedule = config.schedule
    return ServiceSettings(
        backup=backup_settings(config),
        session=session_settings(config),
        debounce_seconds=schedule.debounce_seconds,
        retry_initial_seconds=schedule.retry_initial_seconds,
        retry_max_seconds=schedule.retry_max_seconds,
        include_devices=tuple(config.filters.include_devices),
        exclude_devices=tuple(config.filters.exclude_devices),
    )


def state_lock_path(config: Config) -> Path:
    """The single-instance lock beside the state database."""
    state = Path(config.state.path)
    return state.with_name(state.name + ".lock")


def scrub_report_path(config: Config) -> Path:
    """Where the service keeps the findings of the last scrub that found something."""
    state = Path(config.state.path)
    return state.with_name(state.name + ".scrub.json")


def acquire_instance_lock(config: Config) -> InstanceLock:
    """Take the single-instance lock beside the state database (creating its folder 0700).

    Raises :class:`~rollkeeper.host.single_instance.AlreadyRunningError` when another rollkeeper
    holds it.
    """
    lock_path = state_lock_path(config)
    ensure_private_dir(lock_path.parent)
    lock = InstanceLock(lock_path)
    lock.acquire()
    return lock


def open_state(config: Config) -> StateStore:
    """Open the state database; a damaged one is moved aside and a new one started.

    The archive is the real record: the importer recognises files already in place by their
    hash, so a lost manifest costs one read of the phone's files and never a duplicate. A
    missing (or empty) file is said out loud too: on a first start that is expected, later it
    means the state was deleted and the next run rebuilds it.
    """
    path = Path(config.state.path)
    existed = path.exists() and path.stat().st_size > 0
    try:
        store = StateStore.open(path)
        verdict = store.integrity_check()
        if verdict == "ok":
            if not existed:
                log.info(
                    "state_database_created",
                    path=str(path),
                    action="files already in the archive are recognised by their hash",
                )
            return store
        store.close()
        reason = f"integrity check: {verdict}"
    except StateDamagedError as error:
        reason = error.reason
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    damaged = path.with_name(f"{path.name}.damaged-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        candidate = Path(str(path) + suffix)
        if candidate.exists():
            os.replace(candidate, Path(str(damaged) + suffix))
    log.error(
        "state_database_damaged",
        path=str(path),
        reason=reason,
        moved_to=str(damaged),
        action="starting a new state database; archived files are recognised by their hash",
    )
    return StateStore.open(path)
