"""What a backup run needs from the config: the archive, its layout, the file filter, and what
to do with the phone's Photos library."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rollkeeper.domain.filters import FileFilter


@dataclass(frozen=True, slots=True)
class LibraryRunSettings:
    """What a run does with the phone's Photos library (``[library]``)."""

    #: Where each phone's library snapshot is kept (``<state folder>/library``).
    snapshot_root: Path
    refresh_hours: float = 24.0
    max_bytes: int = 10 * 10**9
    sidecars: bool = True
    max_sidecar_drop_percent: float = 5.0
    album_folders: bool = False
    #: Read the library now whatever ``refresh_hours`` says (``backup-now --refresh-library``).
    force_refresh: bool = False


@dataclass(frozen=True, slots=True)
class BackupSettings:
    """What a run needs from the config."""

    archive_root: Path
    layout: str
    file_filter: FileFilter = field(default_factory=FileFilter)
    #: None: the library is not read (``[library] enabled = false``, or a caller without it).
    library: LibraryRunSettings | None = None
    #: Stat every file when the last full check is this many days old
    #: (``schedule.full_check_days``).
    full_check_days: float = 7.0
