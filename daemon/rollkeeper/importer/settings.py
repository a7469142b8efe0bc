"""What a backup run needs from the config: the archive, its layout, and the file filter."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rollkeeper.domain.filters import FileFilter


@dataclass(frozen=True, slots=True)
class BackupSettings:
    """What a run needs from the config."""

    archive_root: Path
    layout: str
    file_filter: FileFilter = field(default_factory=FileFilter)
