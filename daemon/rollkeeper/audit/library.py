"""What the phone's Photos library says, for the audit: its assets, the originals beyond DCIM
it names (listed and stat'ed afresh), and which originals are only in iCloud.

The library is copied from the phone into a private temporary folder
(:class:`~rollkeeper.library.snapshot.LibrarySnapshots`: the same checks as a backup's
snapshot) and read with the backup's reader, every value untrusted. The audit writes nothing
outside that folder.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from rollkeeper.audit.classify import PhoneEntry
from rollkeeper.device.scan import check_stat, checked_names
from rollkeeper.domain.files import stem_of
from rollkeeper.domain.library import LibraryAsset, library_capture_date
from rollkeeper.library.reader import LibraryReader
from rollkeeper.library.schema import LibraryUnreadableError
from rollkeeper.library.snapshot import LIBRARY_PATH, LibrarySnapshots
from rollkeeper.ports import FileNotOnPhoneError, PhoneFiles, PhoneReadError

#: The largest library the audit copies (the backup's own limit is in the config).
AUDIT_MAX_BYTES = 10 * 10**9

__all__ = ["LIBRARY_PATH", "AuditLibrary", "IcloudOnly", "read_library"]


@dataclass(frozen=True, slots=True)
class IcloudOnly:
    """An original only in iCloud, as the audit names it."""

    name: str
    uuid: str
    phone_path: str | None
    captured_at: str | None
    reason: str


@dataclass(slots=True)
class AuditLibrary:
    """The library as the audit saw it (``assets`` None: it could not be read, and why)."""

    assets: list[LibraryAsset] | None
    detail: str = ""
    generation: str = ""
    degraded: list[str] = field(default_factory=list)
    #: The files of CPLAssets folders the library names, listed and stat'ed now.
    library_files: list[PhoneEntry] = field(default_factory=list)


async def read_library(files: PhoneFiles) -> AuditLibrary:
    """Copy and read the phone's library; list the CPLAssets files it names."""
    with tempfile.TemporaryDirectory(prefix="rollkeeper-audit-") as folder:
        snapshots = LibrarySnapshots(Path(folder) / "library", AUDIT_MAX_BYTES)
        snapshot = await snapshots.refresh(files)
        if snapshot.database is None:
            return AuditLibrary(None, snapshot.detail or f"{LIBRARY_PATH} cannot be read")
        try:
            read = await asyncio.to_thread(LibraryReader(snapshot.database).read)
        except LibraryUnreadableError as error:
            return AuditLibrary(
                None, f"{LIBRARY_PATH}: not a library rollkeeper can read ({error})"
            )
    found = AuditLibrary(read.assets, "", read.generation, list(read.degraded))
    found.library_files = await _cpl_files(files, read.assets)
    return found


async def _cpl_files(files: PhoneFiles, assets: list[LibraryAsset]) -> list[PhoneEntry]:
    """The CPLAssets files whose stems are the library's assets, stat'ed (rejections kept)."""
    stems: dict[str, set[str]] = {}
    for asset in assets:
        if asset.in_cpl_assets and asset.folder and asset.filename:
            stems.setdefault(asset.folder, set()).add(stem_of(asset.filename))
    entries: list[PhoneEntry] = []
    for folder in sorted(stems):
        try:
            listed = await files.list_folder(folder)
        except FileNotOnPhoneError:
            continue
        except PhoneReadError as error:
            parent, _, name = folder.rpartition("/")
            entries.append(
                PhoneEntry(parent, name, rejection="unlistable_folder", detail=str(error))
            )
            continue
        for name in sorted(checked_names(folder, listed, [])):
            if stem_of(name) in stems[folder]:
                entry = await _stat_entry(files, folder, name)
                if entry is not None:
                    entries.append(entry)
    return entries


async def _stat_entry(files: PhoneFiles, folder: str, name: str) -> PhoneEntry | None:
    """One listed file as the audit sees it (None: gone since the listing)."""
    try:
        raw = await files.stat(f"{folder}/{name}")
    except FileNotOnPhoneError:
        return None
    except PhoneReadError as error:
        return PhoneEntry(folder, name, rejection="stat_failed", detail=str(error))
    outcome = check_stat(name, raw)
    if outcome.rejection:
        return PhoneEntry(folder, name, rejection=outcome.rejection, detail=outcome.detail)
    return PhoneEntry(folder, name, outcome.size, outcome.birth_time_ns)


def icloud_only(
    assets: list[LibraryAsset], listed: set[str], unreadable: set[str]
) -> list[IcloudOnly]:
    """The originals only in iCloud: marked not local by the library, listed but unreadable
    (the backup found an I/O error), or named by the library and absent from the phone's
    folder when the library does not say (``listed``: the phone paths listed now)."""
    found: list[IcloudOnly] = []
    for asset in assets:
        path = asset.phone_path
        if asset.original_local is False:
            reason = "marked_not_local"
        elif path is not None and path in unreadable:
            reason = "unreadable"
        elif (
            asset.original_local is None
            and not asset.trashed  # a deleted asset's missing file says nothing of iCloud
            and path is not None
            and path not in listed
        ):
            reason = "not_listed"
        else:
            continue
        date = library_capture_date(asset)
        captured = None
        if date is not None:
            captured = date.local.isoformat(timespec="seconds")
            if date.utc_offset is not None:
                total = int(date.utc_offset.total_seconds()) // 60
                sign = "+" if total >= 0 else "-"
                captured += f"{sign}{abs(total) // 60:02d}:{abs(total) % 60:02d}"
        found.append(IcloudOnly(asset.display_name, asset.uuid, path, captured, reason))
    return sorted(found, key=lambda item: (item.name, item.uuid))
