"""SQLite state: phones, the manifest of their files, the archive's content, and runs."""

from rollkeeper.store.state import (
    ARCHIVED,
    EXCLUDED,
    FAILED,
    PENDING,
    ArchiveEntry,
    DeviceRecord,
    ManifestEntry,
    RunCounts,
    RunRecord,
    StateDamagedError,
    StateStore,
)

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
]
