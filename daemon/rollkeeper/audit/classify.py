"""The class of each file of a phone: pure, the caller did the I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rollkeeper.audit.library import IcloudOnly
    from rollkeeper.store.state import ManifestEntry

#: File classes, in the order the text report lists them.
ARCHIVED = "archived"
ARCHIVE_DAMAGED = "archive_damaged"
PENDING = "pending"
FAILED = "failed"
EXCLUDED = "excluded"
NOT_ON_PHONE = "not_on_phone"
CLASSES: tuple[str, ...] = (ARCHIVED, ARCHIVE_DAMAGED, PENDING, FAILED, EXCLUDED, NOT_ON_PHONE)
#: Classes that mean "not backed up": any of them makes the exit status 1.
PROBLEM_CLASSES = frozenset({ARCHIVE_DAMAGED, PENDING, FAILED})


@dataclass(frozen=True, slots=True)
class AuditedFile:
    """One file of the phone (or asset of its library) and its class."""

    phone_path: str
    size: int | None
    file_class: str
    reason: str = ""
    archive_path: str | None = None


@dataclass(slots=True)
class PhoneAudit:
    """The audit of one phone."""

    udid: str
    name: str = ""
    model: str = ""
    ios_version: str = ""
    files: list[AuditedFile] = field(default_factory=list)
    #: ``read`` (the Photos library was read), else ``unknown``.
    photos_library: str = "unknown"
    photos_library_detail: str = ""
    #: The originals only in iCloud, by name and date (when the library was read).
    icloud_only: list[IcloudOnly] = field(default_factory=list)

    def count(self, file_class: str) -> int:
        """How many files are in one class."""
        return sum(1 for item in self.files if item.file_class == file_class)

    @property
    def complete(self) -> bool:
        """True when nothing on the phone is pending, failed or damaged in the archive."""
        return not any(item.file_class in PROBLEM_CLASSES for item in self.files)


# -- pure classification -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PhoneEntry:
    """A file found on the phone now: its checked name and stat'ed identity, or a rejection."""

    folder: str
    name: str
    size: int = 0
    birth_time_ns: int = 0
    rejection: str = ""
    detail: str = ""

    @property
    def phone_path(self) -> str:
        """The full phone-side path."""
        return f"{self.folder}/{self.name}"


@dataclass(frozen=True, slots=True)
class ArchiveCheck:
    """What the archive on disk says about one archived manifest entry."""

    damaged_reason: str  # "" when the file is in place


def classify(
    entry: PhoneEntry,
    manifest: Mapping[tuple[str, str, int, int], ManifestEntry],
    exclusion: str | None,
    archive_check: ArchiveCheck | None,
) -> AuditedFile:
    """The class of one phone file (pure: the caller did the I/O).

    ``manifest`` maps identities (folder, name, size, birth time) to entries; ``exclusion`` is
    the current filter's reason to leave the file out; ``archive_check`` is the on-disk check of
    the matching archived entry.
    """
    if entry.rejection:
        reason = entry.rejection + (f": {entry.detail}" if entry.detail else "")
        return AuditedFile(entry.phone_path, None, FAILED, reason)
    known = manifest.get((entry.folder, entry.name, entry.size, entry.birth_time_ns))
    if known is not None and known.status == "archived":
        if archive_check is not None and archive_check.damaged_reason:
            return AuditedFile(
                entry.phone_path,
                entry.size,
                ARCHIVE_DAMAGED,
                archive_check.damaged_reason,
                known.archive_path,
            )
        return AuditedFile(entry.phone_path, entry.size, ARCHIVED, "", known.archive_path)
    if exclusion is not None:
        return AuditedFile(entry.phone_path, entry.size, EXCLUDED, exclusion)
    if known is None:
        return AuditedFile(entry.phone_path, entry.size, PENDING, "new_since_last_backup")
    if known.status == "failed":
        return AuditedFile(entry.phone_path, entry.size, FAILED, known.failure_reason or "failed")
    if known.status == "icloud_only":
        # Listed, but its read fails and the library marks the original as only in iCloud.
        return AuditedFile(
            entry.phone_path, entry.size, NOT_ON_PHONE, "original_not_on_phone (iCloud: unreadable)"
        )
    return AuditedFile(entry.phone_path, entry.size, PENDING, "not_copied_yet")
