"""The values the state database holds, as the rest of rollkeeper sees them.

Plain frozen records and the few status names, with no SQL: the repositories of this package
turn rows into these, and the importer, the commands and the fakes of the tests use them.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime

#: Phone file statuses in the manifest.
PENDING = "pending"
ARCHIVED = "archived"
FAILED = "failed"
EXCLUDED = "excluded"


def utc_now_text(moment: datetime | None = None) -> str:
    """An aware UTC timestamp as ISO 8601 text, the one format the database stores."""
    return (moment or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="milliseconds")


def parse_timestamp(text: str | None) -> datetime | None:
    """A stored ISO 8601 timestamp (aware, UTC), or None for NULL or empty."""
    return datetime.fromisoformat(text) if text else None


def parse_required_timestamp(text: str) -> datetime:
    """A timestamp that must be there (a NOT NULL column, a ledger's entry): ValueError when
    it is empty or not ISO 8601."""
    moment = parse_timestamp(text)
    if moment is None:
        raise ValueError("missing timestamp")
    return moment


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    """A phone rollkeeper has seen, and what it is doing now."""

    udid: str
    name: str
    product_type: str
    product_version: str
    first_seen_at: str
    last_seen_at: str
    state: str
    state_detail: str
    state_changed_at: str
    progress_files_done: int
    progress_files_total: int
    progress_bytes_done: int
    progress_bytes_total: int
    last_complete_run_id: int | None
    last_complete_at: str | None


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    """One phone file identity and what became of it."""

    id: int
    udid: str
    folder: str
    name: str
    size: int
    birth_time_ns: int
    modified_time_ns: int
    status: str
    present: bool
    archive_path: str | None
    content_hash: str | None
    failure_reason: str

    @property
    def phone_path(self) -> str:
        """The full phone-side path."""
        return f"{self.folder}/{self.name}"


@dataclass(frozen=True, slots=True)
class ArchiveEntry:
    """A file in the archive that rollkeeper vouches for."""

    relative_path: str
    content_hash: str
    hash_algorithm: str
    size: int
    origin: str
    stored_at: str
    verified_at: str | None


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One backup run of one phone."""

    id: int
    udid: str
    started_at: str
    finished_at: str | None
    outcome: str
    files_found: int
    files_copied: int
    bytes_copied: int
    files_already_archived: int
    files_deduplicated: int
    files_excluded: int
    files_failed: int
    files_pending: int
    files_not_on_phone: int
    items_rejected: int
    error: str
    files_restored: int = 0
    files_lost: int = 0


@dataclass(slots=True)
class RunCounts:
    """What a run did, filled in as it goes and written when it ends."""

    files_found: int = 0
    files_copied: int = 0
    bytes_copied: int = 0
    files_already_archived: int = 0
    files_deduplicated: int = 0
    files_excluded: int = 0
    files_failed: int = 0
    files_pending: int = 0
    files_not_on_phone: int = 0
    items_rejected: int = 0
    #: Files missing or damaged in the archive, copied again from the phone and verified.
    files_restored: int = 0
    #: Files missing from the archive that the phone no longer holds (open findings).
    files_lost: int = 0


@dataclass(frozen=True, slots=True)
class FileCounts:
    """Files the phone showed at its last scan (``present``), by manifest status."""

    on_phone: int
    archived: int
    pending: int
    failed: int
    excluded: int


@dataclass(frozen=True, slots=True)
class FailedFile:
    """A file on the phone whose copy failed, and why."""

    phone_path: str
    size: int
    reason: str


@dataclass(frozen=True, slots=True)
class RunFailure:
    """One failure recorded in a run (a file, or an item rejected before it became one)."""

    run_id: int
    phone_path: str
    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class FoundPhoneFile:
    """A manifest entry matched by ``rollkeeper find``, with what is known of its capture."""

    udid: str
    device_name: str
    folder: str
    name: str
    size: int
    status: str
    present: bool
    archive_path: str | None
    content_hash: str | None
    capture_time: str | None
    capture_source: str | None


DEVICE_COLUMNS = ", ".join(DeviceRecord.__slots__)
MANIFEST_COLUMNS = (
    "id, udid, folder, name, size, birth_time_ns, modified_time_ns, status, present, "
    "archive_path, content_hash, failure_reason"
)


@dataclass(frozen=True, slots=True)
class PhoneFileCopy:
    """A file on the phone (present at its last listing) and its archive record, if any."""

    udid: str
    folder: str
    name: str
    size: int
    birth_time_ns: int
    capture_time: str | None
    status: str
    archive_path: str | None
    archived_size: int | None
    verified_at: str | None
    verify_failed_at: str | None


ARCHIVE_COLUMNS = ", ".join(ArchiveEntry.__slots__)
RUN_COLUMNS = ", ".join(RunRecord.__slots__)


def manifest_entry(row: sqlite3.Row | tuple[object, ...]) -> ManifestEntry:
    """A row of :data:`MANIFEST_COLUMNS` as a :class:`ManifestEntry`."""
    values = tuple(row)
    return ManifestEntry(
        id=int(values[0]),
        udid=str(values[1]),
        folder=str(values[2]),
        name=str(values[3]),
        size=int(values[4]),
        birth_time_ns=int(values[5]),
        modified_time_ns=int(values[6]),
        status=str(values[7]),
        present=bool(values[8]),
        archive_path=None if values[9] is None else str(values[9]),
        content_hash=None if values[10] is None else str(values[10]),
        failure_reason=str(values[11]),
    )
