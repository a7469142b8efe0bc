"""SQLite state: phones, the manifest of their files, the archive's content, and runs."""

from rollkeeper.store.database import StateDamagedError
from rollkeeper.store.migrations import StateTooNewError
from rollkeeper.store.records import (
    ARCHIVED,
    EXCLUDED,
    FAILED,
    PENDING,
    ArchiveEntry,
    DeviceRecord,
    ManifestEntry,
    RunCounts,
    RunRecord,
)
from rollkeeper.store.state import StateStore

__all__ = [
    "ARCHIVED",
    "EXCLUDED",
    "FAILED",
    "PENDING",
    "ArchiveEntry",
    "DeviceRecord",
    "ManifestEntry",
    "RunCounts",
    "RunRecord",
    "StateDamagedError",
    "StateStore",
    "StateTooNewError",
]
