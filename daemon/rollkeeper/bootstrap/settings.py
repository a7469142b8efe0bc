"""What the importer, the phone session and the scheduler take from the config.

Plain values only (no sockets, no files). The types live with their adapters, which import
pymobiledevice3 and APScheduler; they are imported inside the functions so that commands
which only read the state (``status``, ``history``) do not pay for them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rollkeeper.config import Config
    from rollkeeper.device.recording import SessionRecorder
    from rollkeeper.device.session import SessionSettings
    from rollkeeper.device_backup.coordinator import DeviceBackupSettings
    from rollkeeper.importer.job import BackupSettings
    from rollkeeper.offsite.engines import OffsitePlan
    from rollkeeper.service.scheduler import ServiceSettings


def usbmux_address(config: Config) -> str | None:
    """The usbmuxd address: the config's, else None (pymobiledevice3 then reads
    ``USBMUXD_SOCKET_ADDRESS`` or uses the OS default)."""
    return config.device.usbmux_address or None


def backup_settings(config: Config, *, refresh_library: bool = False) -> BackupSettings:
    """What a backup run needs from the config: the archive, its layout, the filters, and the
    ``[library]`` settings (None when the library is off); ``refresh_library`` reads the
    library now whatever ``refresh_hours`` says (``backup-now --refresh-library``)."""
    from rollkeeper.domain.files import MediaKind
    from rollkeeper.domain.filters import FileFilter
    from rollkeeper.importer.job import BackupSettings
    from rollkeeper.importer.settings import LibraryRunSettings

    filters = config.filters
    options = config.library
    library = None
    if options.enabled:
        library = LibraryRunSettings(
            snapshot_root=Path(config.state.path).parent / "library",
            refresh_hours=options.refresh_hours,
            max_bytes=int(options.max_size_gb * 1e9),
            sidecars=options.sidecars,
            max_sidecar_drop_percent=options.max_sidecar_drop_percent,
            album_folders=options.album_folders,
            force_refresh=refresh_library,
        )
    return BackupSettings(
        archive_root=Path(config.archive.path),
        layout=config.archive.layout,
        file_filter=FileFilter(
            media_kinds=frozenset(MediaKind(kind) for kind in filters.media_kinds),
            since=filters.since,
            screenshots=filters.screenshots,
        ),
        library=library,
        full_check_days=config.schedule.full_check_days,
    )


def session_settings(config: Config) -> SessionSettings:
    """How to reach phones: the usbmuxd address and our private pairing folder."""
    from rollkeeper.device.session import SessionSettings

    return SessionSettings(
        usbmux_address=usbmux_address(config),
        pairing_dir=Path(config.device.pairing_dir),
    )


def service_settings(config: Config) -> ServiceSettings:
    """Everything the backup service takes from the config (replaced whole on a reload)."""
    from rollkeeper.service.scheduler import ServiceSettings

    schedule = config.schedule
    return ServiceSettings(
        backup=backup_settings(config),
        session=session_settings(config),
        debounce_seconds=schedule.debounce_seconds,
        retry_initial_seconds=schedule.retry_initial_seconds,
        retry_max_seconds=schedule.retry_max_seconds,
        attached_rescan_hours=schedule.attached_rescan_hours,
        archive_recheck_seconds=schedule.archive_recheck_seconds,
        include_devices=tuple(config.filters.include_devices),
        exclude_devices=tuple(config.filters.exclude_devices),
    )


def session_recorder(path: Path) -> SessionRecorder:
    """The recorder of ``backup-now --record PATH``: every phone's answers, redacted, in one
    private file (docs/simulator.md, "Recording a real phone")."""
    from rollkeeper.device.recording import SessionRecorder

    return SessionRecorder(path)


def offsite_plan(config: Config) -> OffsitePlan | None:
    """The offsite copy settings as plain values; None when no engine is configured."""
    from rollkeeper.offsite.engines import OffsitePlan

    offsite = config.offsite
    if not offsite.engine:
        return None
    return OffsitePlan(
        engine=offsite.engine,
        destination=offsite.repository if offsite.engine == "restic" else offsite.remote,
        executable=offsite.executable,
        password_file=offsite.password_file,
        environment_file=offsite.environment_file,
        retention=tuple(offsite.retention),
        extra_arguments=tuple(offsite.extra_arguments),
        min_interval_hours=offsite.min_interval_hours,
        stale_after_days=offsite.stale_after_days,
    )


def device_backup_settings(config: Config) -> DeviceBackupSettings:
    """What device backups take from the config; ValueError if the folder is in the archive."""
    from rollkeeper.config.device_backup_settings import device_backup_root
    from rollkeeper.device_backup.coordinator import DeviceBackupSettings

    section = config.device_backup
    return DeviceBackupSettings(
        enabled=section.enabled,
        root=device_backup_root(section, Path(config.archive.path)),
        every_hours=section.every_hours,
        keep=section.keep,
    )
